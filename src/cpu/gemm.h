/* Single-precision GEMM: packed panels, SIMD micro-kernels picked at run
 * time (AVX-512, AVX2, portable C), threads over output tiles. */
#ifndef LM_GEMM_H
#define LM_GEMM_H

#include <stdbool.h>
#include <stdint.h>
#include "cpu/cpu.h"

/* Per-context GEMM state: the chosen kernel set and per-thread packing
 * buffers, allocated once so that a call never allocates. */
typedef struct lm_gemm lm_gemm;

/* Work applied to C after the product, while the tile is in cache. */
typedef enum lm_gemm_act { LM_GEMM_LINEAR = 0, LM_GEMM_RELU = 1 } lm_gemm_act;
typedef struct lm_gemm_epilogue {
    const float *bias; /* N values added to each row of C, or NULL */
    lm_gemm_act act;
} lm_gemm_epilogue;

/* New GEMM state for up to max_threads threads using kernel set isa (lowered to
 * what the CPU supports). Every packing buffer is allocated here, one set per
 * thread, so lm_sgemm never allocates. NULL on OOM. */
lm_gemm *lm_gemm_new(lm_isa isa, int max_threads);
void lm_gemm_free(lm_gemm *G);
/* Kernel set in use. */
lm_isa lm_gemm_isa(const lm_gemm *G);

/* C = alpha * op(A) @ op(B) + beta * C, then the epilogue (may be NULL).
 * Row-major. op(A) is M x K: A is M x K (lda >= K) or, with ta, K x M
 * (lda >= M). op(B) is K x N: B is K x N (ldb >= N) or, with tb, N x K
 * (ldb >= K). C is M x N (ldc >= N). beta == 0 ignores C's old contents
 * (NaN included). Uses up to nthreads threads (<= max_threads; small products
 * use fewer, and for 0.2 s after a thread of the team was seen waiting for a
 * CPU, one: on an oversubscribed machine every join would wait as long). Any
 * of M, N, K may be 0. Not reentrant for one lm_gemm: one call
 * at a time, except that inside an active OpenMP parallel region a call runs
 * on the calling thread alone (as with nthreads == 1) with that thread's own
 * buffers, index omp_get_thread_num(), so the threads of one team may run
 * independent products concurrently (thread numbers >= max_threads fall back
 * to a slow unblocked loop). */
void lm_sgemm(lm_gemm *G, int nthreads, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
              float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
              float *C, int64_t ldc, const lm_gemm_epilogue *ep);

#endif
