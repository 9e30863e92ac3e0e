/* Pooling loops, channels last, written for the auto-vectoriser (the
 * channel loop is innermost and branch-free). Included by src/ops/pool.c
 * (portable build) and src/cpu/pool_avx512.c (the same code compiled for
 * AVX-512), which is why everything here is static. A 1-D pooling is the
 * 2-D one with H = KH = 1; the geometry is an lm_conv_geom with C = O. */
#ifndef LM_POOL_KERN_H
#define LM_POOL_KERN_H

#include <string.h>
#include "cpu/im2col.h"

/* Window of output (oh, ow) clipped to the input: rows [h0, h1), columns [w0, w1). */
static inline void lm_pool_window(const lm_conv_geom *g, int64_t oh, int64_t ow, int64_t *h0,
                                  int64_t *h1, int64_t *w0, int64_t *w1) {
    int64_t a = oh * g->sh - g->pt, b = ow * g->sw - g->pl;
    *h0 = a < 0 ? 0 : a;
    *h1 = a + g->KH < g->H ? a + g->KH : g->H;
    *w0 = b < 0 ? 0 : b;
    *w1 = b + g->KW < g->W ? b + g->KW : g->W;
}

/* Running max of 16 channels over a window, in locals the compiler keeps in
 * registers (the window loop is outside, so arrays in memory would be
 * reloaded for every cell). */
static inline void lm_pool_max16(const float *xn, int64_t W, int64_t C, int64_t h0, int64_t h1,
                                 int64_t w0, int64_t w1, float *restrict m, int32_t *restrict a) {
    float mv[16];
    int32_t av[16];
    const float *x0 = xn + (h0 * W + w0) * C;
    for (int j = 0; j < 16; j++) mv[j] = x0[j], av[j] = (int32_t)(h0 * W + w0);
    for (int64_t ih = h0; ih < h1; ih++)
        for (int64_t iw = w0; iw < w1; iw++) {
            const float *xp = xn + (ih * W + iw) * C;
            const int32_t idx = (int32_t)(ih * W + iw);
            for (int j = 0; j < 16; j++) { /* a mask, not a branch */
                const int32_t gt = -(int32_t)(xp[j] > mv[j]);
                mv[j] = xp[j] > mv[j] ? xp[j] : mv[j];
                av[j] = (idx & gt) | (av[j] & ~gt);
            }
        }
    for (int j = 0; j < 16; j++) m[j] = mv[j], a[j] = av[j];
}

/* Max over output rows [r0, r1) of (N * OH); arg gets the winning cell
 * (ih * W + iw, the first one on ties). */
static inline void lm_pool_max_fwd(const lm_conv_geom *g, const float *x, float *y, int32_t *arg,
                                   int64_t r0, int64_t r1) {
    const int64_t C = g->C, W = g->W;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / g->OH, oh = r % g->OH;
        const float *xn = x + n * g->H * W * C;
        for (int64_t ow = 0; ow < g->OW; ow++) {
            float *restrict m = y + (r * g->OW + ow) * C;
            int32_t *restrict a = arg + (r * g->OW + ow) * C;
            int64_t h0, h1, w0, w1, c0 = 0;
            lm_pool_window(g, oh, ow, &h0, &h1, &w0, &w1);
            for (; c0 + 16 <= C; c0 += 16)
                lm_pool_max16(xn + c0, W, C, h0, h1, w0, w1, m + c0, a + c0);
            for (int64_t ch = c0; ch < C; ch++) { /* leftover channels, one by one */
                float mv = xn[(h0 * W + w0) * C + ch];
                int32_t av = (int32_t)(h0 * W + w0);
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) {
                        const float v = xn[(ih * W + iw) * C + ch];
                        if (v > mv) mv = v, av = (int32_t)(ih * W + iw);
                    }
                m[ch] = mv, a[ch] = av;
            }
        }
    }
}

/* Windows that never overlap, and whether they also cover every input cell
 * (then the backward passes write each cell once and need no zeroing). */
static inline bool lm_pool_disjoint(const lm_conv_geom *g, bool *covers) {
    bool disjoint = g->sh >= g->KH && g->sw >= g->KW;
    *covers = disjoint && g->sh == g->KH && g->sw == g->KW && g->OH * g->sh - g->pt >= g->H &&
              g->OW * g->sw - g->pl >= g->W && g->pt == 0 && g->pl == 0;
    return disjoint;
}

/* dx of images [n0, n1): each window's gradient goes to its saved winner. */
static inline void lm_pool_max_bwd(const lm_conv_geom *g, const float *dy, const int32_t *arg,
                                   float *dx, int64_t n0, int64_t n1) {
    const int64_t C = g->C, img = g->H * g->W * C;
    bool covers, disjoint = lm_pool_disjoint(g, &covers);
    for (int64_t n = n0; n < n1; n++) {
        float *d = dx + n * img;
        if (!covers) memset(d, 0, (size_t)img * sizeof *d);
        for (int64_t oh = 0; oh < g->OH; oh++)
            for (int64_t ow = 0; ow < g->OW; ow++) {
                const int64_t o = ((n * g->OH + oh) * g->OW + ow) * C;
                const float *restrict gy = dy + o;
                const int32_t *restrict a = arg + o;
                int64_t h0, h1, w0, w1;
                lm_pool_window(g, oh, ow, &h0, &h1, &w0, &w1);
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) {
                        float *restrict dp = d + (ih * g->W + iw) * C;
                        const int32_t idx = (int32_t)(ih * g->W + iw);
                        if (disjoint)
                            for (int64_t ch = 0; ch < C; ch++) dp[ch] = a[ch] == idx ? gy[ch] : 0;
                        else
                            for (int64_t ch = 0; ch < C; ch++) dp[ch] += a[ch] == idx ? gy[ch] : 0;
                    }
            }
    }
}

/* Mean over the real cells of each window, output rows [r0, r1). */
static inline void lm_pool_avg_fwd(const lm_conv_geom *g, const float *x, float *y, int64_t r0,
                                   int64_t r1) {
    const int64_t C = g->C;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / g->OH, oh = r % g->OH;
        const float *xn = x + n * g->H * g->W * C;
        for (int64_t ow = 0; ow < g->OW; ow++) {
            float *restrict s = y + (r * g->OW + ow) * C;
            int64_t h0, h1, w0, w1;
            lm_pool_window(g, oh, ow, &h0, &h1, &w0, &w1);
            for (int64_t ch = 0; ch < C; ch++) s[ch] = 0.0f;
            for (int64_t ih = h0; ih < h1; ih++)
                for (int64_t iw = w0; iw < w1; iw++) {
                    const float *restrict xp = xn + (ih * g->W + iw) * C;
                    for (int64_t ch = 0; ch < C; ch++) s[ch] += xp[ch];
                }
            const float inv = 1.0f / (float)((h1 - h0) * (w1 - w0));
            for (int64_t ch = 0; ch < C; ch++) s[ch] *= inv;
        }
    }
}

/* dx of images [n0, n1): each window's gradient spread over its real cells. */
static inline void lm_pool_avg_bwd(const lm_conv_geom *g, const float *dy, float *dx, int64_t n0,
                                   int64_t n1) {
    const int64_t C = g->C, img = g->H * g->W * C;
    bool covers, disjoint = lm_pool_disjoint(g, &covers);
    for (int64_t n = n0; n < n1; n++) {
        float *d = dx + n * img;
        if (!covers) memset(d, 0, (size_t)img * sizeof *d);
        for (int64_t oh = 0; oh < g->OH; oh++)
            for (int64_t ow = 0; ow < g->OW; ow++) {
                const float *restrict gy = dy + ((n * g->OH + oh) * g->OW + ow) * C;
                int64_t h0, h1, w0, w1;
                lm_pool_window(g, oh, ow, &h0, &h1, &w0, &w1);
                const float inv = 1.0f / (float)((h1 - h0) * (w1 - w0));
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) {
                        float *restrict dp = d + (ih * g->W + iw) * C;
                        if (disjoint)
                            for (int64_t ch = 0; ch < C; ch++) dp[ch] = gy[ch] * inv;
                        else
                            for (int64_t ch = 0; ch < C; ch++) dp[ch] += gy[ch] * inv;
                    }
            }
    }
}

/* The same loops compiled for AVX-512 (src/cpu/pool_avx512.c). */
void lm_pool_max_fwd_avx512(const lm_conv_geom *g, const float *x, float *y, int32_t *arg,
                            int64_t r0, int64_t r1);
void lm_pool_max_bwd_avx512(const lm_conv_geom *g, const float *dy, const int32_t *arg, float *dx,
                            int64_t n0, int64_t n1);
void lm_pool_avg_fwd_avx512(const lm_conv_geom *g, const float *x, float *y, int64_t r0,
                            int64_t r1);
void lm_pool_avg_bwd_avx512(const lm_conv_geom *g, const float *dy, float *dx, int64_t n0,
                            int64_t n1);

#endif
