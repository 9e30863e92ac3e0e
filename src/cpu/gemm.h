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

/* New GEMM state for up to max_threads threads using kernel set isa. NULL on OOM. */
lm_gemm *lm_gemm_new(lm_isa isa, int max_threads);
void lm_gemm_free(lm_gemm *G);
/* Kernel set in use. */
lm_isa lm_gemm_isa(const lm_gemm *G);

/* C = alpha * op(A) @ op(B) + beta * C, then the epilogue (may be NULL).
 * Row-major. op(A) is M x K: A is M x K (lda >= K) or, with ta, K x M
 * (lda >= M). op(B) is K x N: B is K x N (ldb >= N) or, with tb, N x K
 * (ldb >= K). C is M x N (ldc >= N). beta == 0 ignores C's old contents
 * (NaN included). Uses up to nthreads threads (<= max_threads). Any of M, N,
 * K may be 0. Not reentrant for one lm_gemm: one call at a time. */
void lm_sgemm(lm_gemm *G, int nthreads, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
              float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
              float *C, int64_t ldc, const lm_gemm_epilogue *ep);

#endif
