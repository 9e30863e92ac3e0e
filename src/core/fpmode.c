/* Denormal handling: kernels run with flush-to-zero and denormals-are-zero
 * (as TensorFlow and XLA do), because subnormal values, common in optimizer
 * moments of dead units, make SSE/AVX arithmetic up to a hundred times
 * slower. The caller's mode is restored on the way out. */
#include "core/core.h"
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define LM_HAVE_MXCSR 1
#endif
#ifdef _OPENMP
#include <omp.h>
#else
static int omp_get_thread_num(void) {
    return 0;
}
#endif

unsigned lm_fp_enter(const lm_ctx *ctx) {
#ifdef LM_HAVE_MXCSR
    unsigned old = _mm_getcsr();
    if (ctx && ctx->flush_denormals) _mm_setcsr(old | 0x8040); /* FTZ | DAZ */
    return old;
#else
    (void)ctx;
    return 0;
#endif
}

void lm_fp_leave(unsigned saved) {
#ifdef LM_HAVE_MXCSR
    _mm_setcsr(saved);
#else
    (void)saved;
#endif
}

void lm_fp_workers(const lm_ctx *ctx, int nthreads) {
#ifdef LM_HAVE_MXCSR
    if (!ctx || nthreads < 2) return;
    bool on = ctx->flush_denormals;
    /* Pool threads keep their mode between regions, so it is set once per
     * plan; the calling thread (number 0) is handled by lm_fp_enter. */
#pragma omp parallel num_threads(nthreads)
    {
        if (omp_get_thread_num() != 0)
            _mm_setcsr(on ? (_mm_getcsr() | 0x8040) : (_mm_getcsr() & ~0x8040u));
    }
#else
    (void)ctx;
    (void)nthreads;
#endif
}
