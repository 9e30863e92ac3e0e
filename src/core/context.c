#include "core/core.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int default_threads(void) {
    const char *env = getenv("LAMINA_NUM_THREADS");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (*end == '\0' && n >= 1 && n <= LM_MAX_THREADS) return (int)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > LM_MAX_THREADS) n = LM_MAX_THREADS;
    return (int)n;
}

lm_ctx *lm_ctx_new(void) {
    lm_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->nthreads = default_threads();
    ctx->isa_max = ctx->isa = lm_cpu_detect();
    ctx->flush_denormals = true;
    lm_rng_seed(&ctx->rng, 0);
    ctx->gemm = lm_gemm_new(ctx->isa, ctx->nthreads);
    if (!ctx->gemm) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

void lm_ctx_free(lm_ctx *ctx) {
    if (!ctx) return;
    lm_gemm_free(ctx->gemm);
    free(ctx);
}

lm_status lm_ctx_set_threads(lm_ctx *ctx, int n) {
    if (!ctx) return LM_ERR_ARG;
    if (n < 1 || n > LM_MAX_THREADS)
        return lm_fail(ctx, LM_ERR_ARG, "thread count %d is outside [1, %d]", n, LM_MAX_THREADS);
    if (n > ctx->nthreads) {
        /* GEMM packing buffers are sized per thread; grow them now, not in a step. */
        lm_gemm *g = lm_gemm_new(ctx->isa, n);
        if (!g) return lm_fail(ctx, LM_ERR_OOM, "out of memory creating GEMM buffers");
        lm_gemm_free(ctx->gemm);
        ctx->gemm = g;
    }
    ctx->nthreads = n;
    return LM_OK;
}

int lm_ctx_threads(const lm_ctx *ctx) {
    return ctx ? ctx->nthreads : 1;
}

lm_status lm_ctx_seed(lm_ctx *ctx, uint64_t seed) {
    if (!ctx) return LM_ERR_ARG;
    lm_rng_seed(&ctx->rng, seed);
    return LM_OK;
}

const char *lm_ctx_error(const lm_ctx *ctx) {
    return ctx ? ctx->err : "no context";
}

void lm_ctx_clear_error(lm_ctx *ctx) {
    if (ctx) ctx->err[0] = '\0';
}

const char *lm_ctx_isa(const lm_ctx *ctx) {
    return ctx ? lm_isa_name(ctx->isa) : "generic";
}

lm_status lm_ctx_set_isa(lm_ctx *ctx, const char *isa) {
    if (!ctx || !isa) return LM_ERR_ARG;
    lm_isa want;
    if (!strcmp(isa, "avx512"))
        want = LM_ISA_AVX512;
    else if (!strcmp(isa, "avx2"))
        want = LM_ISA_AVX2;
    else if (!strcmp(isa, "generic"))
        want = LM_ISA_GENERIC;
    else
        return lm_fail(ctx, LM_ERR_ARG, "unknown kernel set \"%s\"", isa);
    if (want > ctx->isa_max)
        return lm_fail(ctx, LM_ERR_UNSUPPORTED, "this CPU does not support %s", isa);
    lm_gemm *g = lm_gemm_new(want, ctx->nthreads);
    if (!g) return lm_fail(ctx, LM_ERR_OOM, "out of memory creating GEMM buffers");
    lm_gemm_free(ctx->gemm);
    ctx->gemm = g;
    ctx->isa = want;
    return LM_OK;
}

lm_status lm_ctx_set_flush_denormals(lm_ctx *ctx, bool on) {
    if (!ctx) return LM_ERR_ARG;
    ctx->flush_denormals = on;
    return LM_OK;
}
