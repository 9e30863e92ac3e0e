/* Direct convolution with AVX-512 (groups == 1, small windows): each output
 * pixel keeps its channels in registers while the window is read once, so
 * nothing goes through memory but x, w and y. Runs of 4 pixels whose windows
 * lie inside the row share every weight load. */
#include "cpu/im2col.h"

#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>

#define AI       static inline __attribute__((always_inline))
#define WG_BLOCK 512 /* pixels per partial sum of the filter gradient */

/* Stores NP x NV accumulators to yp (row stride O) after the epilogue. */
AI void store_out(__m512 acc[][4], float *yp, int64_t O, const float *bias, bool relu, __mmask16 ml,
                  const int NP, const int NV) {
    __m512 bv[4], zero = _mm512_setzero_ps();
    for (int v = 0; v < NV; v++)
        bv[v] = !bias         ? zero
                : v == NV - 1 ? _mm512_maskz_loadu_ps(ml, bias + 16 * v)
                              : _mm512_loadu_ps(bias + 16 * v);
    for (int i = 0; i < NP; i++)
        for (int v = 0; v < NV; v++) {
            __m512 r = _mm512_add_ps(acc[i][v], bv[v]);
            if (relu) r = _mm512_max_ps(r, zero);
            if (v == NV - 1)
                _mm512_mask_storeu_ps(yp + i * O + 16 * v, ml, r);
            else
                _mm512_storeu_ps(yp + i * O + 16 * v, r);
        }
}

/* NP pixels starting at (n, oh, ow), channels [o0, o0 + 16 NV); the last
 * vector is masked by ml. With inside, every tap of every pixel is within
 * the row (no column checks). */
AI void block(const lm_conv_geom *g, const float *xn, const float *w, float *yp, int64_t oh,
              int64_t ow, int64_t o0, __mmask16 ml, const int NP, const int NV, const bool inside) {
    const int64_t C = g->C, O = g->O, W = g->W, xstep = g->sw * C;
    __m512 acc[4][4];
    for (int i = 0; i < NP; i++)
        for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
    const int64_t ih0 = oh * g->sh - g->pt, iw0 = ow * g->sw - g->pl;
    for (int64_t kh = 0; kh < g->KH; kh++) {
        const int64_t ih = ih0 + kh * g->dh;
        if (ih < 0 || ih >= g->H) continue;
        const float *xr = xn + ih * W * C;
        for (int64_t kw = 0; kw < g->KW; kw++) {
            const int64_t iw = iw0 + kw * g->dw;
            if (!inside && (iw < 0 || iw >= W)) continue;
            const float *xp = xr + iw * C, *wp = w + (kh * g->KW + kw) * C * O + o0;
            for (int64_t ci = 0; ci < C; ci++, wp += O) {
                __m512 wv[4];
                for (int v = 0; v < NV; v++)
                    wv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(ml, wp + 16 * v)
                                        : _mm512_loadu_ps(wp + 16 * v);
                for (int i = 0; i < NP; i++) {
                    __m512 b = _mm512_set1_ps(xp[i * xstep + ci]);
                    for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(b, wv[v], acc[i][v]);
                }
            }
        }
    }
    store_out(acc, yp, O, g->bias ? g->bias + o0 : NULL, g->relu, ml, NP, NV);
}

/* NP pixels whose windows lie wholly inside the input, starting at xo (the
 * first pixel's window origin; the next ones are xstep further): tap k reads
 * xo[toff[k]] and weight row k. */
AI void fast(const float *xo, int64_t xstep, const int64_t *toff, int64_t K, const float *w,
             int64_t O, float *yp, const float *bias, bool relu, __mmask16 ml, const int NP,
             const int NV) {
    __m512 acc[8][4];
    for (int i = 0; i < NP; i++)
        for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k++) {
        const float *wp = w + k * O, *xp = xo + toff[k];
        __m512 wv[4];
        for (int v = 0; v < NV; v++)
            wv[v] =
                v == NV - 1 ? _mm512_maskz_loadu_ps(ml, wp + 16 * v) : _mm512_loadu_ps(wp + 16 * v);
        for (int i = 0; i < NP; i++) {
            __m512 b = _mm512_set1_ps(xp[i * xstep]);
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(b, wv[v], acc[i][v]);
        }
    }
    store_out(acc, yp, O, bias, relu, ml, NP, NV);
}

/* Pixels [a, b) of output row (n, oh), channels [o0, o0 + 16 NV): runs of NP
 * inner pixels share weight loads; the border ones check every tap. */
AI void row(const lm_conv_geom *g, const float *xn, const float *w, float *yrow, int64_t oh,
            int64_t a, int64_t b, int64_t lo, int64_t hi, const int64_t *toff, int64_t o0,
            __mmask16 ml, const int NV) {
    const int NP = NV <= 2 ? 8 : 4;
    const int64_t O = g->O, K = lm_conv_k(g), ih0 = oh * g->sh - g->pt;
    const float *wo = w + o0, *bo = g->bias ? g->bias + o0 : NULL;
    if (ih0 < 0 || ih0 + (g->KH - 1) * g->dh >= g->H) lo = hi = b; /* rows cut by padding */
    const int64_t xstep = g->sw * g->C;
    const float *xr = xn + ih0 * g->W * g->C - g->pl * g->C; /* origin of ow = 0 */
    int64_t ow = a;
    for (; ow < b && ow < lo; ow++)
        block(g, xn, w, yrow + ow * O + o0, oh, ow, o0, ml, 1, NV, false);
    for (; ow + NP <= b && ow + NP <= hi; ow += NP)
        fast(xr + ow * xstep, xstep, toff, K, wo, O, yrow + ow * O + o0, bo, g->relu, ml, NP, NV);
    for (; ow < b && ow < hi; ow++)
        fast(xr + ow * xstep, xstep, toff, K, wo, O, yrow + ow * O + o0, bo, g->relu, ml, 1, NV);
    for (; ow < b; ow++) block(g, xn, w, yrow + ow * O + o0, oh, ow, o0, ml, 1, NV, false);
}

void lm_conv_direct_avx512(const lm_conv_geom *g, const float *x, const float *w, float *y,
                           int64_t p0, int64_t p1) {
    const int64_t O = g->O, OW = g->OW, C = g->C, ext = (g->KW - 1) * g->dw;
    int64_t toff[LM_CONV_DIRECT_MAXK], K = 0;
    for (int64_t kh = 0; kh < g->KH; kh++)
        for (int64_t kw = 0; kw < g->KW; kw++)
            for (int64_t c = 0; c < C && K < LM_CONV_DIRECT_MAXK; c++)
                toff[K++] = (kh * g->dh * g->W + kw * g->dw) * C + c;
    /* Output columns [lo, hi) have every tap inside the input row. */
    int64_t lo = (g->pl + g->sw - 1) / g->sw, hi = 0;
    if (g->W - 1 - ext + g->pl >= 0) hi = (g->W - 1 - ext + g->pl) / g->sw + 1;
    if (hi > OW) hi = OW;
    if (hi < lo) hi = lo;
    for (int64_t o0 = 0; o0 < O; o0 += 64) {
        const int64_t nc = O - o0 < 64 ? O - o0 : 64;
        const int NV = (int)((nc + 15) / 16);
        const int rem = (int)(nc - 16 * (NV - 1));
        const __mmask16 ml = (__mmask16)(rem == 16 ? 0xFFFF : (1u << rem) - 1);
        for (int64_t p = p0; p < p1;) {
            const int64_t ow = p % OW, r = p / OW, oh = r % g->OH, n = r / g->OH;
            const int64_t b = ow + (p1 - p) < OW ? ow + (p1 - p) : OW;
            const float *xn = x + n * g->H * g->W * C;
            float *yrow = y + r * OW * O;
            switch (NV) {
            case 1:
                row(g, xn, w, yrow, oh, ow, b, lo, hi, toff, o0, ml, 1);
                break;
            case 2:
                row(g, xn, w, yrow, oh, ow, b, lo, hi, toff, o0, ml, 2);
                break;
            case 3:
                row(g, xn, w, yrow, oh, ow, b, lo, hi, toff, o0, ml, 3);
                break;
            default:
                row(g, xn, w, yrow, oh, ow, b, lo, hi, toff, o0, ml, 4);
                break;
            }
            p += b - ow;
        }
    }
}

/* Filter gradient of one group on output pixels [p0, p1), taps [k0, k0 + kt),
 * filters [o0, o0 + 16 NV) of the group: the KT x NV sums stay in registers
 * while the pixels stream by. Inner pixels read their window in place
 * (x[origin + toff[k]]); border ones copy it, zeros for padding, into tmp. */
AI void wgrad_chunk(const lm_conv_geom *g, const float *x, const float *dy, float *dw, int64_t grp,
                    int64_t p0, int64_t p1, const int64_t *toff, const int *tkh, const int *tkw,
                    const int *tc, int64_t k0, int kt, int64_t o0, __mmask16 ml, bool accumulate,
                    const int KT, const int NV) {
    static const int64_t iota[24] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                     12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
    const int64_t C = g->C, W = g->W, O = g->O;
    const int64_t eh = (g->KH - 1) * g->dh, ew = (g->KW - 1) * g->dw;
    __m512 acc[24][2];
    float tmp[24] = {0};
    int64_t ow = p0 % g->OW, t = p0 / g->OW, oh = t % g->OH, n = t / g->OH;
    const float *d = dy + p0 * O + grp * g->OG + o0;
    /* Blocks of WG_BLOCK pixels summed from zero, then added to dw: float32
     * error grows with the block, not with the whole batch. */
    for (int64_t pb = p0; pb < p1; pb += WG_BLOCK) {
        const int64_t pe = pb + WG_BLOCK < p1 ? pb + WG_BLOCK : p1;
        for (int k = 0; k < KT; k++)
            for (int v = 0; v < NV; v++) acc[k][v] = _mm512_setzero_ps();
        for (int64_t p = pb; p < pe; p++, d += O) {
            const int64_t ih0 = oh * g->sh - g->pt, iw0 = ow * g->sw - g->pl;
            const float *xo = x + ((n * g->H + ih0) * W + iw0) * C + grp * g->CG, *src;
            const int64_t *off;
            if (ih0 >= 0 && ih0 + eh < g->H && iw0 >= 0 && iw0 + ew < W) {
                src = xo, off = toff + k0;
            } else {
                for (int k = 0; k < kt; k++) {
                    const int64_t ih = ih0 + tkh[k0 + k] * g->dh, iw = iw0 + tkw[k0 + k] * g->dw;
                    tmp[k] = ih < 0 || ih >= g->H || iw < 0 || iw >= W
                                 ? 0.0f
                                 : x[((n * g->H + ih) * W + iw) * C + grp * g->CG + tc[k0 + k]];
                }
                src = tmp, off = iota;
            }
            __m512 dv[2];
            for (int v = 0; v < NV; v++)
                dv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(ml, d + 16 * v)
                                    : _mm512_loadu_ps(d + 16 * v);
            /* Unconditional (taps past kt read a valid dummy): keeps acc in registers. */
            for (int k = 0; k < KT; k++) {
                __m512 b = _mm512_set1_ps(src[off[k]]);
                for (int v = 0; v < NV; v++) acc[k][v] = _mm512_fmadd_ps(b, dv[v], acc[k][v]);
            }
            if (++ow == g->OW) {
                ow = 0;
                if (++oh == g->OH) oh = 0, n++;
            }
        }
        for (int k = 0; k < KT; k++)
            if (k < kt)
                for (int v = 0; v < NV; v++) {
                    float *out = dw + (k0 + k) * O + grp * g->OG + o0 + 16 * v;
                    __mmask16 m = v == NV - 1 ? ml : 0xFFFF;
                    __m512 a = acc[k][v];
                    if (accumulate || pb > p0) a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(m, out));
                    _mm512_mask_storeu_ps(out, m, a);
                }
    }
}

/* Instantiations: KT taps at a time, the smallest that covers what is left. */
#define WG_ARGS g, x, dy, dw, grp, p0, p1, toff, tkh, tkw, tc, k0, kt, o0, ml, accumulate

void lm_conv_wgrad_direct_avx512(const lm_conv_geom *g, const float *x, const float *dy, float *dw,
                                 int64_t grp, int64_t p0, int64_t p1, bool accumulate) {
    /* Entries past K stay 0: a harmless in-window read for the padded taps. */
    int64_t toff[LM_CONV_DIRECT_MAXK + 24] = {0};
    int tkh[LM_CONV_DIRECT_MAXK + 24] = {0}, tkw[LM_CONV_DIRECT_MAXK + 24] = {0},
                                  tc[LM_CONV_DIRECT_MAXK + 24] = {0}, K = 0;
    for (int kh = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++)
            for (int c = 0; c < g->CG && K < LM_CONV_DIRECT_MAXK; c++, K++) {
                toff[K] = (kh * g->dh * g->W + kw * g->dw) * g->C + c;
                tkh[K] = kh, tkw[K] = kw, tc[K] = c;
            }
    for (int64_t o0 = 0; o0 < g->OG; o0 += 32) {
        const int64_t nc = g->OG - o0 < 32 ? g->OG - o0 : 32;
        const int NV = nc > 16 ? 2 : 1;
        const int rem = (int)(nc - 16 * (NV - 1));
        const __mmask16 ml = (__mmask16)(rem == 16 ? 0xFFFF : (1u << rem) - 1);
        for (int k0 = 0; k0 < K;) {
            const int left = K - k0;
            int kt;
            if (NV == 2) {
                kt = left < 12 ? left : 12;
                if (kt <= 3)
                    wgrad_chunk(WG_ARGS, 3, 2);
                else if (kt <= 6)
                    wgrad_chunk(WG_ARGS, 6, 2);
                else if (kt <= 9)
                    wgrad_chunk(WG_ARGS, 9, 2);
                else
                    wgrad_chunk(WG_ARGS, 12, 2);
            } else {
                kt = left < 24 ? left : 24;
                if (kt <= 6)
                    wgrad_chunk(WG_ARGS, 6, 1);
                else if (kt <= 12)
                    wgrad_chunk(WG_ARGS, 12, 1);
                else if (kt <= 18)
                    wgrad_chunk(WG_ARGS, 18, 1);
                else
                    wgrad_chunk(WG_ARGS, 24, 1);
            }
            k0 += kt;
        }
    }
}

#else
/* A compiler without AVX-512: the same result, plainly. */
void lm_conv_direct_avx512(const lm_conv_geom *g, const float *x, const float *w, float *y,
                           int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
        const int64_t ow = p % g->OW, r = p / g->OW, oh = r % g->OH, n = r / g->OH;
        float *yp = y + p * g->O;
        for (int64_t o = 0; o < g->O; o++) yp[o] = 0.0f;
        for (int64_t kh = 0; kh < g->KH; kh++) {
            const int64_t ih = oh * g->sh - g->pt + kh * g->dh;
            for (int64_t kw = 0; ih >= 0 && ih < g->H && kw < g->KW; kw++) {
                const int64_t iw = ow * g->sw - g->pl + kw * g->dw;
                if (iw < 0 || iw >= g->W) continue;
                const float *xp = x + ((n * g->H + ih) * g->W + iw) * g->C;
                const float *wp = w + (kh * g->KW + kw) * g->C * g->O;
                for (int64_t c = 0; c < g->C; c++)
                    for (int64_t o = 0; o < g->O; o++) yp[o] += xp[c] * wp[c * g->O + o];
            }
        }
        for (int64_t o = 0; o < g->O; o++) {
            float v = yp[o] + (g->bias ? g->bias[o] : 0.0f);
            yp[o] = g->relu && v < 0 ? 0.0f : v;
        }
    }
}

void lm_conv_wgrad_direct_avx512(const lm_conv_geom *g, const float *x, const float *dy, float *dw,
                                 int64_t grp, int64_t p0, int64_t p1, bool accumulate) {
    const int64_t K = lm_conv_k(g);
    for (int64_t k = 0; k < K; k++)
        for (int64_t o = 0; o < g->OG; o++)
            if (!accumulate) dw[k * g->O + grp * g->OG + o] = 0.0f;
    for (int64_t p = p0; p < p1; p++) {
        const int64_t ow = p % g->OW, r = p / g->OW, oh = r % g->OH, n = r / g->OH;
        const float *d = dy + p * g->O + grp * g->OG;
        for (int64_t k = 0; k < K; k++) {
            const int64_t c = k % g->CG, kw = k / g->CG % g->KW, kh = k / g->CG / g->KW;
            const int64_t ih = oh * g->sh - g->pt + kh * g->dh,
                          iw = ow * g->sw - g->pl + kw * g->dw;
            if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
            const float xv = x[((n * g->H + ih) * g->W + iw) * g->C + grp * g->CG + c];
            for (int64_t o = 0; o < g->OG; o++) dw[k * g->O + grp * g->OG + o] += xv * d[o];
        }
    }
}
#endif
