/* Pooling with AVX-512: the loops of src/cpu/pool_kern.h with each
 * 16-channel block of an output pixel held in registers across its window
 * (the portable loops go through memory once per window cell). */
#include "cpu/pool_kern.h"

#if defined(__AVX512F__)
#include <immintrin.h>

static inline __mmask16 tail_mask(int64_t left) {
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

void lm_pool_max_fwd_avx512(const lm_conv_geom *g, const float *x, float *y, int32_t *arg,
                            int64_t r0, int64_t r1) {
    const int64_t C = g->C, W = g->W;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / g->OH, oh = r % g->OH;
        const float *xn = x + n * g->H * W * C;
        for (int64_t ow = 0; ow < g->OW; ow++) {
            float *m = y + (r * g->OW + ow) * C;
            int32_t *a = arg + (r * g->OW + ow) * C;
            int64_t h0, h1, w0, w1;
            lm_pool_window(g, oh, ow, &h0, &h1, &w0, &w1);
            for (int64_t c0 = 0; c0 < C; c0 += 16) {
                const __mmask16 k = tail_mask(C - c0);
                __m512 mv = _mm512_maskz_loadu_ps(k, xn + (h0 * W + w0) * C + c0);
                __m512i av = _mm512_set1_epi32((int32_t)(h0 * W + w0));
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) {
                        const __m512 v = _mm512_maskz_loadu_ps(k, xn + (ih * W + iw) * C + c0);
                        const __mmask16 gt = _mm512_cmp_ps_mask(v, mv, _CMP_GT_OQ);
                        mv = _mm512_mask_mov_ps(mv, gt, v);
                        av = _mm512_mask_mov_epi32(av, gt,
                                                   _mm512_set1_epi32((int32_t)(ih * W + iw)));
                    }
                _mm512_mask_storeu_ps(m + c0, k, mv);
                _mm512_mask_storeu_epi32(a + c0, k, av);
            }
        }
    }
}

void lm_pool_max_bwd_avx512(const lm_conv_geom *g, const float *dy, const int32_t *arg, float *dx,
                            int64_t n0, int64_t n1) {
    const int64_t C = g->C, W = g->W, img = g->H * W * C;
    bool covers, disjoint = lm_pool_disjoint(g, &covers);
    for (int64_t n = n0; n < n1; n++) {
        float *d = dx + n * img;
        if (!covers) memset(d, 0, (size_t)img * sizeof *d);
        for (int64_t oh = 0; oh < g->OH; oh++)
            for (int64_t ow = 0; ow < g->OW; ow++) {
                const int64_t o = ((n * g->OH + oh) * g->OW + ow) * C;
                int64_t h0, h1, w0, w1;
                lm_pool_window(g, oh, ow, &h0, &h1, &w0, &w1);
                for (int64_t c0 = 0; c0 < C; c0 += 16) {
                    const __mmask16 k = tail_mask(C - c0);
                    const __m512 gv = _mm512_maskz_loadu_ps(k, dy + o + c0);
                    const __m512i av = _mm512_maskz_loadu_epi32(k, arg + o + c0);
                    for (int64_t ih = h0; ih < h1; ih++)
                        for (int64_t iw = w0; iw < w1; iw++) {
                            float *dp = d + (ih * W + iw) * C + c0;
                            const __mmask16 hit = _mm512_cmpeq_epi32_mask(
                                av, _mm512_set1_epi32((int32_t)(ih * W + iw)));
                            __m512 v = _mm512_maskz_mov_ps(hit, gv);
                            if (!disjoint) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, dp));
                            _mm512_mask_storeu_ps(dp, k, v);
                        }
                }
            }
    }
}

void lm_pool_avg_fwd_avx512(const lm_conv_geom *g, const float *x, float *y, int64_t r0,
                            int64_t r1) {
    const int64_t C = g->C, W = g->W;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / g->OH, oh = r % g->OH;
        const float *xn = x + n * g->H * W * C;
        for (int64_t ow = 0; ow < g->OW; ow++) {
            float *s = y + (r * g->OW + ow) * C;
            int64_t h0, h1, w0, w1;
            lm_pool_window(g, oh, ow, &h0, &h1, &w0, &w1);
            const __m512 inv = _mm512_set1_ps(1.0f / (float)((h1 - h0) * (w1 - w0)));
            for (int64_t c0 = 0; c0 < C; c0 += 16) {
                const __mmask16 k = tail_mask(C - c0);
                __m512 sv = _mm512_setzero_ps();
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++)
                        sv = _mm512_add_ps(sv,
                                           _mm512_maskz_loadu_ps(k, xn + (ih * W + iw) * C + c0));
                _mm512_mask_storeu_ps(s + c0, k, _mm512_mul_ps(sv, inv));
            }
        }
    }
}

void lm_pool_avg_bwd_avx512(const lm_conv_geom *g, const float *dy, float *dx, int64_t n0,
                            int64_t n1) {
    const int64_t C = g->C, W = g->W, img = g->H * W * C;
    bool covers, disjoint = lm_pool_disjoint(g, &covers);
    for (int64_t n = n0; n < n1; n++) {
        float *d = dx + n * img;
        if (!covers) memset(d, 0, (size_t)img * sizeof *d);
        for (int64_t oh = 0; oh < g->OH; oh++)
            for (int64_t ow = 0; ow < g->OW; ow++) {
                const float *gy = dy + ((n * g->OH + oh) * g->OW + ow) * C;
                int64_t h0, h1, w0, w1;
                lm_pool_window(g, oh, ow, &h0, &h1, &w0, &w1);
                const __m512 inv = _mm512_set1_ps(1.0f / (float)((h1 - h0) * (w1 - w0)));
                for (int64_t c0 = 0; c0 < C; c0 += 16) {
                    const __mmask16 k = tail_mask(C - c0);
                    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, gy + c0), inv);
                    for (int64_t ih = h0; ih < h1; ih++)
                        for (int64_t iw = w0; iw < w1; iw++) {
                            float *dp = d + (ih * W + iw) * C + c0;
                            _mm512_mask_storeu_ps(
                                dp, k,
                                disjoint ? v : _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, dp)));
                        }
                }
            }
    }
}

#else
/* A compiler without AVX-512: the portable loops. */
void lm_pool_max_fwd_avx512(const lm_conv_geom *g, const float *x, float *y, int32_t *arg,
                            int64_t r0, int64_t r1) {
    lm_pool_max_fwd(g, x, y, arg, r0, r1);
}
void lm_pool_max_bwd_avx512(const lm_conv_geom *g, const float *dy, const int32_t *arg, float *dx,
                            int64_t n0, int64_t n1) {
    lm_pool_max_bwd(g, dy, arg, dx, n0, n1);
}
void lm_pool_avg_fwd_avx512(const lm_conv_geom *g, const float *x, float *y, int64_t r0,
                            int64_t r1) {
    lm_pool_avg_fwd(g, x, y, r0, r1);
}
void lm_pool_avg_bwd_avx512(const lm_conv_geom *g, const float *dy, float *dx, int64_t n0,
                            int64_t n1) {
    lm_pool_avg_bwd(g, dy, dx, n0, n1);
}
#endif
