/* Internal interface between the GEMM driver (gemm.c) and its per-ISA kernel
 * sets (gemm_avx512.c, gemm_avx2.c, portable C in gemm.c). */
#ifndef LM_GEMM_KERNELS_H
#define LM_GEMM_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

/* One block for the macro-kernel: C[0:m, 0:n] = alpha * a @ b + beta * C, then
 * bias and relu. a is cut into micro-panels of mr rows and b into panels of nr
 * columns; strides let one kernel read packed panels or the caller's matrices:
 *   a(i, k) of row panel p    = a[p * psa + i * rsa + k * csa]
 *   b(k, j) of column panel q = b[q * psb + k * rsb + j]   (j contiguous)
 * Panels at the m / n edge are partial; b is only read inside its n columns. */
typedef struct lm_sgemm_block {
    int64_t m, n, kc;
    const float *a;
    int64_t rsa, csa, psa;
    const float *b;
    int64_t rsb, psb;
    bool prefetch_b; /* a large product (B packed): prefetch B, C and A in software */
    float *c;
    int64_t ldc;
    float alpha, beta; /* beta == 0: C is not read */
    const float *bias; /* n values, or NULL */
    bool relu;
} lm_sgemm_block;

typedef struct lm_sgemm_kernels {
    int mr, nr;     /* micro-tile */
    int kc, nc, mc; /* blocking: B block kc x nc stays in L2; mc rows of A packed at a time */
    int vec;        /* SIMD width in floats; threads split N in multiples of it */
    bool pack_a_nt; /* also pack A without transpose (kernel needs packed A) */
    bool pack_b_nt; /* always pack B without transpose (kernel needs packed B) */
    /* for ir (mr rows): for jr (nr columns): micro-kernel */
    void (*block)(const lm_sgemm_block *blk);
    /* op(B)[0:kc, 0:n] into ceil(n/nr) panels of kc x nr, zero-padded columns.
     * B points at op(B)(0, 0): B[k * ldb + j], or with tb B[j * ldb + k]. */
    void (*pack_b)(bool tb, int64_t kc, int64_t n, const float *B, int64_t ldb, float *dst);
    /* op(A)[0:m, 0:kc] into ceil(m/mr) panels of kc x mr (k-major), zero-padded rows.
     * A points at op(A)(0, 0): A[i * lda + k], or with ta A[k * lda + i]. */
    void (*pack_a)(bool ta, int64_t m, int64_t kc, const float *A, int64_t lda, float *dst);
} lm_sgemm_kernels;

/* Function pointers are NULL when the file was built without its ISA flags. */
extern const lm_sgemm_kernels lm_sgemm_kernels_avx512;
extern const lm_sgemm_kernels lm_sgemm_kernels_avx2;

#endif
