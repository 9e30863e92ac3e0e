/* Internal core helpers shared by every module: error reporting into the
 * context, aligned allocation and small utilities. */
#ifndef LM_CORE_H
#define LM_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lamina/context.h"
#include "lamina/tensor.h"
#include "core/rng.h"
#include "cpu/cpu.h"
#include "cpu/gemm.h"

#define LM_ALIGN       64
#define LM_MAX_THREADS 256

#if defined(__GNUC__)
#define LM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LM_PRINTF(a, b)
#endif

struct lm_ctx {
    int nthreads;
    lm_isa isa;     /* kernel set in use */
    lm_isa isa_max; /* best the CPU supports */
    lm_rng rng;
    lm_gemm *gemm;
    bool flush_denormals; /* kernels run with FTZ/DAZ (default true) */
    char err[1024];
};

/* Sets flush-to-zero and denormals-are-zero for the calling thread when the
 * context asks for it; returns the previous mode for lm_fp_leave. */
unsigned lm_fp_enter(const lm_ctx *ctx);
void lm_fp_leave(unsigned saved);
/* Sets the same mode in the OpenMP worker threads. */
void lm_fp_workers(const lm_ctx *ctx, int nthreads);

/* Records a formatted message in ctx (if not NULL) and returns s, so that
 * error paths read `return lm_fail(ctx, LM_ERR_SHAPE, "...", ...);`. */
lm_status lm_fail(lm_ctx *ctx, lm_status s, const char *fmt, ...) LM_PRINTF(3, 4);
lm_status lm_vfail(lm_ctx *ctx, lm_status s, const char *fmt, va_list ap);

/* 64-byte aligned allocation of n bytes (n may be 0); NULL on failure. Free with lm_afree. */
void *lm_aalloc(size_t n);
void lm_afree(void *p);

/* Overflow-checked products for sizes taken from untrusted headers: returns 0
 * and stores a*b in *out, or returns -1 on overflow. */
int lm_mul_size(size_t a, size_t b, size_t *out);

#define LM_PRAGMA_(x) _Pragma(#x)
/* "omp parallel for" over i in [0, n) when cond holds, a plain loop
 * otherwise: libgomp allocates and frees a thread team even for a region
 * that an if clause serialises (about 260 ns here), longer than many small
 * kernels take. The body (the last argument, in braces) holds no pragma. */
#define LM_PAR_FOR(cond, nt, i, n, ...)                                                            \
    do {                                                                                           \
        if (cond) {                                                                                \
            LM_PRAGMA_(omp parallel for num_threads(nt) schedule(static))                          \
            for (int64_t i = 0; i < (n); i++) __VA_ARGS__                                          \
        } else {                                                                                   \
            for (int64_t i = 0; i < (n); i++) __VA_ARGS__                                          \
        }                                                                                          \
    } while (0)

/* "omp parallel" over the block when cond holds, the block on this thread
 * otherwise (for the same reason; omp_get_thread_num() is then 0). */
#define LM_PARALLEL(cond, nt, ...)                                                                 \
    do {                                                                                           \
        if (cond) {                                                                                \
            LM_PRAGMA_(omp parallel num_threads(nt))                                               \
            __VA_ARGS__                                                                            \
        } else                                                                                     \
            __VA_ARGS__                                                                            \
    } while (0)

static inline int64_t lm_min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}
static inline int64_t lm_max64(int64_t a, int64_t b) {
    return a > b ? a : b;
}

#endif
