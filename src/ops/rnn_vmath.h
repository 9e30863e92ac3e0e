/* Activations of the recurrent cells as loops the compiler can vectorise,
 * included by rnn.c (baseline ISA), rnn_avx2.c and rnn_avx512.c (compiled
 * for those ISAs), each of which builds an rnn_vec table from these bodies.
 * libm calls would keep the loops scalar, so exp, sigmoid and tanh are
 * written here (Cephes polynomials, a few ulp). */
#ifndef LM_RNN_VMATH_H
#define LM_RNN_VMATH_H

#include "ops/rnn_impl.h"

static inline float rnn_bits_f(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

static inline int32_t rnn_f_bits(float f) {
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i;
}

/* Float selects would make the loops branchy (float operations may trap),
 * so selects work on bit patterns: m is all ones to pick a, zero to pick b. */
static inline float rnn_blend(int32_t m, float a, float b) {
    return rnn_bits_f((rnn_f_bits(a) & m) | (rnn_f_bits(b) & ~m));
}

/* All ones where x is NaN. */
static inline int32_t rnn_nan_mask(float x) {
    return -(int32_t)((rnn_f_bits(x) & 0x7fffffff) > 0x7f800000);
}

/* Fused multiply-add where the ISA has it (fmaf would be a libm call without). */
#if defined(__FMA__)
#define RNN_FMA(a, b, c) fmaf(a, b, c)
#else
#define RNN_FMA(a, b, c) ((a) * (b) + (c))
#endif

/* exp(x) for x <= 0, a few ulp (Cephes polynomial). Arguments below
 * -87.33 (as bits: negative floats order like their unsigned bits) are
 * clamped there, so 2^n stays normal; exp of them gives FLT_MIN instead of
 * a smaller number, which sigmoid and tanh do not notice. */
static inline float rnn_exp_neg(float x) {
    uint32_t xb = (uint32_t)rnn_f_bits(x), lob = 0xC2AEAC4Fu; /* -87.3365 */
    x = rnn_bits_f((int32_t)(xb > lob ? lob : xb));
    float t = RNN_FMA(x, 1.44269504088896341f, 12582912.0f); /* round(x / ln 2) + 1.5 * 2^23 */
    float n = t - 12582912.0f;
    float r = RNN_FMA(n, -0.693359375f, x);
    r = RNN_FMA(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = RNN_FMA(p, r, 1.3981999507e-3f);
    p = RNN_FMA(p, r, 8.3334519073e-3f);
    p = RNN_FMA(p, r, 4.1665795894e-2f);
    p = RNN_FMA(p, r, 1.6666665459e-1f);
    p = RNN_FMA(p, r, 5.0000001201e-1f);
    p = RNN_FMA(p, r * r, r) + 1.0f;
    /* 2^n from t's low bits (no float-to-int cast of NaN); n in [-126, 0]. */
    int32_t ni = (int32_t)((uint32_t)rnn_f_bits(t) - (uint32_t)rnn_f_bits(12582912.0f));
    return p * rnn_bits_f((int32_t)((uint32_t)(ni + 127) << 23));
}

/* 1 / (1 + e) or e / (1 + e) with e = exp(-|x|) <= 1: no overflow, full accuracy. */
static inline float rnn_sigmoid1(float x) {
    int32_t xb = rnn_f_bits(x);
    float e = rnn_exp_neg(rnn_bits_f(xb | (int32_t)0x80000000));
    float r = 1.0f / (1.0f + e), er = e * r;
    float y = rnn_blend(-(int32_t)((uint32_t)xb >> 31), er, r);
    return rnn_blend(rnn_nan_mask(x), x, y);
}

/* Cephes tanhf: an odd polynomial below 0.625, (1 - e) / (1 + e) with
 * e = exp(-2|x|) above. */
static inline float rnn_tanh1(float x) {
    int32_t xb = rnn_f_bits(x), ab = xb & 0x7fffffff;
    float a = rnn_bits_f(ab), z = x * x;
    float e = rnn_exp_neg(-2.0f * a);
    float t = (1.0f - e) / (1.0f + e);
    float big = rnn_bits_f(rnn_f_bits(t) | (xb & (int32_t)0x80000000));
    float p = -5.70498872745e-3f;
    p = RNN_FMA(p, z, 2.06390887954e-2f);
    p = RNN_FMA(p, z, -5.37397155531e-2f);
    p = RNN_FMA(p, z, 1.33314422036e-1f);
    p = RNN_FMA(p, z, -3.33332819422e-1f);
    float small = RNN_FMA(x * z, p, x);
    float y = rnn_blend(-(int32_t)(ab < 0x3F200000), small, big); /* 0.625f */
    return rnn_blend(rnn_nan_mask(x), x, y);
}

/* Keras 3: relu6(x + 3) / 6, clamped on the bits of x + 3. */
static inline float rnn_hard_sigmoid1(float x) {
    int32_t vb = rnn_f_bits(x + 3.0f);
    vb &= ~-(int32_t)((uint32_t)vb >> 31);  /* negative: 0 */
    vb = vb < 0x40C00000 ? vb : 0x40C00000; /* above 6: 6 */
    return rnn_blend(rnn_nan_mask(x), x, rnn_bits_f(vb) / 6.0f);
}

static void rnn_act_n(int act, float *restrict y, int64_t n) {
    switch (act) {
    case LM_ACT_TANH:
        for (int64_t i = 0; i < n; i++) y[i] = rnn_tanh1(y[i]);
        break;
    case LM_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++) y[i] = rnn_sigmoid1(y[i]);
        break;
    case LM_ACT_RELU:
        for (int64_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        break;
    case LM_ACT_HARD_SIGMOID:
        for (int64_t i = 0; i < n; i++) y[i] = rnn_hard_sigmoid1(y[i]);
        break;
    default:
        break; /* linear */
    }
}

/* Vector loops leave a scalar remainder, which costs about as much as a
 * whole vector of exp and division. Row kernels therefore run the vector
 * loop over the first n - n % RNN_VL floats of each row and gather the rows'
 * remainders into buffers of RNN_TB floats, which one more vector loop
 * finishes (zero padded to whole vectors). */
#define RNN_VL 16
#define RNN_TB 256

static int64_t rnn_round_vl(int64_t n) {
    return (n + RNN_VL - 1) / RNN_VL * RNN_VL;
}

static void rnn_act_rows_body(int act, int64_t m, float *restrict y, int64_t ld, int64_t n) {
    const int64_t nm = n & ~(int64_t)(RNN_VL - 1), r = n - nm;
    if (act == LM_ACT_LINEAR) return;
    float b[RNN_TB];
    int64_t cnt = 0, first = 0;
    for (int64_t i = 0; i <= m; i++) {
        if (r && cnt && (i == m || cnt + r > RNN_TB)) {
            memset(b + cnt, 0, (size_t)(rnn_round_vl(cnt) - cnt) * sizeof *b);
            rnn_act_n(act, b, rnn_round_vl(cnt));
            for (int64_t k = first; k < i; k++)
                memcpy(y + k * ld + nm, b + (k - first) * r, (size_t)r * sizeof *b);
            cnt = 0;
            first = i;
        }
        if (i == m) break;
        rnn_act_n(act, y + i * ld, nm);
        if (r) {
            memcpy(b + cnt, y + i * ld + nm, (size_t)r * sizeof *b);
            cnt += r;
        }
    }
}

static void rnn_act_grad_body(int act, float *restrict d, const float *restrict y, int64_t n) {
    switch (act) {
    case LM_ACT_TANH:
        for (int64_t i = 0; i < n; i++) d[i] *= 1.0f - y[i] * y[i];
        break;
    case LM_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++) d[i] *= y[i] * (1.0f - y[i]);
        break;
    case LM_ACT_RELU:
        for (int64_t i = 0; i < n; i++) d[i] = y[i] > 0.0f ? d[i] : 0.0f;
        break;
    case LM_ACT_HARD_SIGMOID: /* slope 1/6 where 0 < y < 1 */
        for (int64_t i = 0; i < n; i++) {
            int32_t yb = rnn_f_bits(y[i]);
            d[i] = rnn_blend(-(int32_t)((yb > 0) & (yb < 0x3F800000)), d[i] / 6.0f, 0.0f);
        }
        break;
    default:
        break;
    }
}

/* Parts of sigmoid(x) = num / den with den = 1 + exp(-|x|) in [1, 2]. */
static inline float rnn_sigmoid_num(float x, float e) {
    return rnn_blend(-(int32_t)((uint32_t)rnn_f_bits(x) >> 31), e, 1.0f);
}

/* tanh(x) = sign(x) (1 - e) r with e = exp(-2|x|), r = 1 / (1 + e): within
 * 3e-8 absolute near 0 (where rnn_tanh1 switches to a polynomial for
 * relative accuracy, which gates and states do not need). */
static inline float rnn_tanh_from(float x, float e, float r) {
    return rnn_bits_f(rnn_f_bits((1.0f - e) * r) | (rnn_f_bits(x) & (int32_t)0x80000000));
}

/* The Keras defaults (tanh, sigmoid): one pass over z_i, z_f, z_g, z_o, c_prev
 * writing the gates back and c, a(c), h. The four gate denominators (each in
 * [1, 2]) share one division: 1/d_i = (d_f d_g d_o) / (d_i d_f d_g d_o). A
 * NaN gate input reaches c (and so h) through nanp; the exp clamps would
 * otherwise hide it. */
static void rnn_lstm_ts(float *restrict zi, float *restrict zf, float *restrict zg,
                        float *restrict zo, const float *restrict cp, float *restrict cc,
                        float *restrict ac, float *restrict h, int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        float xi = zi[j], xf = zf[j], xg = zg[j], xo = zo[j];
        float ei = rnn_exp_neg(-fabsf(xi)), ef = rnn_exp_neg(-fabsf(xf));
        float eg = rnn_exp_neg(-2.0f * fabsf(xg)), eo = rnn_exp_neg(-fabsf(xo));
        float di = 1.0f + ei, df = 1.0f + ef, dg = 1.0f + eg, dO = 1.0f + eo;
        float p01 = di * df, p23 = dg * dO, inv = 1.0f / (p01 * p23);
        float q01 = inv * p23, q23 = inv * p01;
        float i = rnn_sigmoid_num(xi, ei) * (q01 * df), f = rnn_sigmoid_num(xf, ef) * (q01 * di);
        float o = rnn_sigmoid_num(xo, eo) * (q23 * dg), g = rnn_tanh_from(xg, eg, q23 * dO);
        float nanp = (xi + xf + xg + xo) * 0.0f;
        float c = RNN_FMA(f, cp[j], RNN_FMA(i, g, nanp));
        float ec = rnn_exp_neg(-2.0f * fabsf(c)), a = rnn_tanh_from(c, ec, 1.0f / (1.0f + ec));
        a = rnn_blend(rnn_nan_mask(c), c, a);
        zi[j] = i, zf[j] = f, zg[j] = g, zo[j] = o;
        cc[j] = c, ac[j] = a, h[j] = o * a;
    }
}

static void rnn_lstm_fwd_rows_body(int act, int ract, int64_t m, int64_t H, float *restrict z,
                                   int64_t ldz, const float *restrict cp, int64_t ldcp,
                                   float *restrict cc, float *restrict ac, float *restrict h,
                                   int64_t ldh) {
    if (act != LM_ACT_TANH || ract != LM_ACT_SIGMOID) {
        /* Other activations segment by segment. */
        rnn_act_rows_body(ract, m, z, ldz, 2 * H);
        rnn_act_rows_body(act, m, z + 2 * H, ldz, H);
        rnn_act_rows_body(ract, m, z + 3 * H, ldz, H);
        for (int64_t i = 0; i < m; i++) {
            const float *restrict zi = z + i * ldz, *restrict zf = zi + H,
                                  *restrict zg = zi + 2 * H;
            const float *restrict cpi = cp + i * ldcp;
            float *restrict cci = cc + i * ldh, *restrict aci = ac + i * ldh;
            for (int64_t j = 0; j < H; j++) aci[j] = cci[j] = zf[j] * cpi[j] + zi[j] * zg[j];
        }
        rnn_act_rows_body(act, m, ac, ldh, H);
        for (int64_t i = 0; i < m; i++) {
            const float *restrict zo = z + i * ldz + 3 * H, *restrict aci = ac + i * ldh;
            float *restrict hi = h + i * ldh;
            for (int64_t j = 0; j < H; j++) hi[j] = zo[j] * aci[j];
        }
        return;
    }
    const int64_t nm = H & ~(int64_t)(RNN_VL - 1), r = H - nm;
    float b[8][RNN_TB]; /* zi zf zg zo cp | cc ac h */
    int64_t cnt = 0, first = 0;
    for (int64_t i = 0; i <= m; i++) {
        if (r && cnt && (i == m || cnt + r > RNN_TB)) {
            int64_t n = rnn_round_vl(cnt);
            for (int k = 0; k < 5; k++) memset(b[k] + cnt, 0, (size_t)(n - cnt) * sizeof(float));
            rnn_lstm_ts(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], n);
            for (int64_t k = first; k < i; k++) {
                float *zk = z + k * ldz + nm;
                float *dst[7] = {zk,
                                 zk + H,
                                 zk + 2 * H,
                                 zk + 3 * H,
                                 cc + k * ldh + nm,
                                 ac + k * ldh + nm,
                                 h + k * ldh + nm};
                for (int q = 0; q < 7; q++)
                    memcpy(dst[q], b[q < 4 ? q : q + 1] + (k - first) * r,
                           (size_t)r * sizeof(float));
            }
            cnt = 0;
            first = i;
        }
        if (i == m) break;
        float *zi = z + i * ldz;
        const float *cpi = cp + i * ldcp;
        float *cci = cc + i * ldh, *aci = ac + i * ldh, *hi = h + i * ldh;
        rnn_lstm_ts(zi, zi + H, zi + 2 * H, zi + 3 * H, cpi, cci, aci, hi, nm);
        if (r) {
            const float *src[5] = {zi + nm, zi + H + nm, zi + 2 * H + nm, zi + 3 * H + nm,
                                   cpi + nm};
            for (int k = 0; k < 5; k++) memcpy(b[k] + cnt, src[k], (size_t)r * sizeof(float));
            cnt += r;
        }
    }
}

static void rnn_lstm_bwd_row_body(int act, int ract, const float *restrict z,
                                  const float *restrict cp, const float *restrict ac,
                                  const float *restrict ds, float *restrict dh, float *restrict dc,
                                  float *restrict dz, int64_t H) {
    const float *restrict zi = z, *restrict zf = z + H, *restrict zg = z + 2 * H,
                          *restrict zo = z + 3 * H;
    float *restrict di = dz, *restrict df = dz + H, *restrict dg = dz + 2 * H,
                    *restrict dO = dz + 3 * H;
    if (act == LM_ACT_TANH && ract == LM_ACT_SIGMOID) {
        for (int64_t j = 0; j < H; j++) {
            float i = zi[j], f = zf[j], g = zg[j], o = zo[j], a = ac[j];
            float h = dh[j] + ds[j], c = dc[j] + h * o * (1.0f - a * a);
            dO[j] = h * a * o * (1.0f - o);
            di[j] = c * g * i * (1.0f - i);
            df[j] = c * cp[j] * f * (1.0f - f);
            dg[j] = c * i * (1.0f - g * g);
            dc[j] = c * f;
        }
        return;
    }
    for (int64_t j = 0; j < H; j++) {
        dh[j] += ds[j];
        dO[j] = dh[j] * zo[j];
    }
    rnn_act_grad_body(act, dO, ac, H); /* dh o a'(c) */
    for (int64_t j = 0; j < H; j++) {
        float c = dc[j] + dO[j];
        dO[j] = dh[j] * ac[j];
        di[j] = c * zg[j];
        df[j] = c * cp[j];
        dg[j] = c * zi[j];
        dc[j] = c * zf[j];
    }
    rnn_act_grad_body(ract, di, zi, 2 * H);
    rnn_act_grad_body(act, dg, zg, H);
    rnn_act_grad_body(ract, dO, zo, H);
}

#define RNN_VEC_TABLE                                                                              \
    { rnn_act_rows_body, rnn_act_grad_body, rnn_lstm_fwd_rows_body, rnn_lstm_bwd_row_body }

#endif
