/* Convolution kernels on channels-last tensors: im2col / col2im, the three
 * convolution passes (forward, input gradient, filter gradient) on the
 * packed GEMM, and a direct AVX-512 forward for small kernels. A 1-D
 * convolution is the 2-D one with H = KH = 1. Nothing here allocates: the
 * callers pass a workspace of the size the *_ws functions return. */
#ifndef LM_IM2COL_H
#define LM_IM2COL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cpu/gemm.h"

typedef struct lm_conv_geom {
    int64_t N, H, W, C;   /* input (N, H, W, C) */
    int64_t KH, KW;       /* kernel window */
    int64_t G, CG, O, OG; /* groups, C / G, output channels, O / G */
    int64_t OH, OW;       /* output (N, OH, OW, O) */
    int64_t sh, sw, dh, dw;
    int64_t pt, pl; /* implicit zero rows / columns before the input */
    /* Forward epilogue, applied while the outputs are in registers / cache:
     * bias (O values) added, then relu when set. */
    const float *bias;
    bool relu;
} lm_conv_geom;

/* Output size along one axis for an input of size in, window k, stride s,
 * dilation d and padding mode pad (lm_padding); *before receives the padding
 * added before the input. Returns -1 when in is unknown (-1) and -2 when the
 * dilated window does not fit a "valid" input. */
int64_t lm_conv_out_size(int64_t in, int64_t k, int64_t s, int64_t d, int pad, int64_t *before);

/* Rows of the im2col matrix: one per output pixel, K = KH * KW * CG columns. */
static inline int64_t lm_conv_k(const lm_conv_geom *g) {
    return g->KH * g->KW * g->CG;
}

/* Writes the im2col rows of output pixels [p0, p1) (flattened over N, OH,
 * OW) for group grp into col, (p1 - p0) x K, zeros for padding. */
void lm_im2col(const lm_conv_geom *g, const float *x, int64_t grp, int64_t p0, int64_t p1,
               float *col);
/* Adds the im2col rows of pixels [p0, p1), group grp, back into dx. */
void lm_col2im(const lm_conv_geom *g, const float *col, int64_t grp, int64_t p0, int64_t p1,
               float *dx);

/* y = conv(x, w): x (N, H, W, C), w (KH, KW, CG, O), y (N, OH, OW, O). */
size_t lm_conv_fwd_ws(const lm_conv_geom *g, int nt, lm_isa isa);
void lm_conv_fwd(const lm_conv_geom *g, const float *x, const float *w, float *y, lm_gemm *gemm,
                 int nt, lm_isa isa, void *ws);
/* dx = conv^T(dy, w). */
size_t lm_conv_bwd_input_ws(const lm_conv_geom *g, int nt);
void lm_conv_bwd_input(const lm_conv_geom *g, const float *dy, const float *w, float *dx,
                       lm_gemm *gemm, int nt, void *ws);
/* dw = im2col(x)^T @ dy, summed over the batch. */
size_t lm_conv_bwd_filter_ws(const lm_conv_geom *g, int nt);
void lm_conv_bwd_filter(const lm_conv_geom *g, const float *x, const float *dy, float *dw,
                        lm_gemm *gemm, int nt, lm_isa isa, void *ws);

/* Largest window (KH * KW * C) of the direct kernels. */
#define LM_CONV_DIRECT_MAXK 32

/* Direct forward for groups == 1 and K <= LM_CONV_DIRECT_MAXK on pixels
 * [p0, p1): every output pixel accumulates its window in registers. Worth it
 * when K is small (one input channel), where im2col would only add traffic. */
void lm_conv_direct_avx512(const lm_conv_geom *g, const float *x, const float *w, float *y,
                           int64_t p0, int64_t p1);
/* Filter gradient of group grp over output pixels [p0, p1), into (or, with
 * accumulate, added to) dw, for K <= LM_CONV_DIRECT_MAXK: the sums stay in
 * registers and x is read in place, where the packed GEMM's tiles would be
 * mostly empty and im2col would cost more than the product. */
void lm_conv_wgrad_direct_avx512(const lm_conv_geom *g, const float *x, const float *dy, float *dw,
                                 int64_t grp, int64_t p0, int64_t p1, bool accumulate);

#endif
