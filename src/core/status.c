#include "core/core.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *lm_status_str(lm_status s) {
    switch (s) {
    case LM_OK:
        return "ok";
    case LM_ERR_ARG:
        return "invalid argument";
    case LM_ERR_SHAPE:
        return "shape mismatch";
    case LM_ERR_DTYPE:
        return "dtype mismatch";
    case LM_ERR_OOM:
        return "out of memory";
    case LM_ERR_IO:
        return "input/output error";
    case LM_ERR_FORMAT:
        return "malformed data";
    case LM_ERR_UNSUPPORTED:
        return "unsupported";
    case LM_ERR_STATE:
        return "invalid state";
    case LM_ERR_NUMERIC:
        return "numeric error";
    }
    return "unknown status";
}

lm_status lm_vfail(lm_ctx *ctx, lm_status s, const char *fmt, va_list ap) {
    if (!ctx) return s;
    /* Format aside first: the arguments may include the current message. */
    char msg[sizeof ctx->err];
    vsnprintf(msg, sizeof msg, fmt, ap);
    memcpy(ctx->err, msg, sizeof msg);
    return s;
}

lm_status lm_fail(lm_ctx *ctx, lm_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lm_vfail(ctx, s, fmt, ap);
    va_end(ap);
    return s;
}

void *lm_aalloc(size_t n) {
    /* aligned_alloc wants a multiple of the alignment, and a non-zero size. */
    size_t r = (n + LM_ALIGN - 1) / LM_ALIGN * LM_ALIGN;
    if (r < n) return NULL;
    if (r == 0) r = LM_ALIGN;
    return aligned_alloc(LM_ALIGN, r);
}

void lm_afree(void *p) {
    free(p);
}

int lm_mul_size(size_t a, size_t b, size_t *out) {
    if (a && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}
