/* Float math the compiler can vectorise (reductions, softmax and losses):
 * exp of non-positive arguments, log and log1p on the ranges the losses use,
 * and row kernels (max, sum, sum of exp). libm's expf/logf are calls that
 * keep loops scalar; these are plain arithmetic on floats and their bits,
 * accurate to a few ulp (Cephes polynomials). */
#ifndef LM_REDUCE_VMATH_H
#define LM_REDUCE_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define LM_VL 16 /* lanes of the accumulator arrays: one AVX-512 register */

/* Loops with selects on floats stay scalar under GCC's default -ftrapping-math
 * (if-conversion would evaluate compares that may trap); omp simd allows it. */
#define LM_SIMD _Pragma("omp simd")

static inline float lm_bits_f(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

static inline int32_t lm_f_bits(float f) {
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i;
}

/* c ? a : b by bit masks, where both a and b are computed anyway: a float
 * select lets the compiler move each arm's arithmetic under a branch. */
static inline float lm_vsel(int c, float a, float b) {
    uint32_t m = 0u - (uint32_t)(c != 0);
    return lm_bits_f((int32_t)(((uint32_t)lm_f_bits(a) & m) | ((uint32_t)lm_f_bits(b) & ~m)));
}

/* exp(x) for x <= 0 (softmax after subtracting the max, sigmoid of -|x|),
 * subnormal results included. Arguments are clamped at -104, whose exp
 * rounds to 0. The clamp is an unsigned min on the bits (negative floats
 * order like their bits): a float select would let the compiler branch around
 * the constant-folded clamped path, and branches over float operations (which
 * may trap) keep the loop scalar. A NaN with the sign bit set gives 0;
 * callers see NaN inputs through the row max anyway. */
static inline float lm_vexp_neg(float x) {
    uint32_t xb = (uint32_t)lm_f_bits(x), lob = 0xC2D00000u; /* -104.0f */
    x = lm_bits_f((int32_t)(xb > lob ? lob : xb));
    /* n = round(x / ln 2) by the 1.5 * 2^23 trick; n in [-150, 0]. */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* 2^n as two normal factors 2^h * 2^(n-h), read from t's low bits (a
     * float-to-int conversion would be UB for NaN). */
    int32_t ni = (int32_t)((uint32_t)lm_f_bits(t) - (uint32_t)lm_f_bits(12582912.0f));
    int32_t h = ni / 2;
    float s1 = lm_bits_f((int32_t)((uint32_t)(h + 127) << 23));
    float s2 = lm_bits_f((int32_t)((uint32_t)(ni - h + 127) << 23));
    return p * s1 * s2;
}

/* log(x) for normal positive x (clipped probabilities, 1 + u); NaN stays NaN. */
static inline float lm_vlog(float x) {
    int32_t b = lm_f_bits(x);
    int32_t e = ((b >> 23) & 0xff) - 126;
    float m = lm_bits_f((b & 0x007fffff) | 0x3f000000); /* [0.5, 1) */
    /* Below sqrt(1/2): use 2m and e - 1, so that m - 1 lies in [-0.29, 0.41]. */
    int32_t small = m < 0.707106781186547524f ? 1 : 0;
    float ef = (float)(e - small);
    m = m + (small ? m : 0.0f) - 1.0f;
    float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    y += -2.12194440e-4f * ef;
    y += -0.5f * z;
    float r = m + y + 0.693359375f * ef;
    return lm_vsel(x != x, x, r);
}

/* log(1 + u) for u in [0, 1], keeping the digits of small u. */
static inline float lm_vlog1p(float u) {
    float w = 1.0f + u;
    float d = w - 1.0f;
    /* log(w) is exact for w's value; (u - d) / w corrects for rounding 1 + u. */
    return lm_vlog(w) + (u - d) / w;
}

/* softplus(x) = log(1 + exp(x)) as jnp.logaddexp(x, 0) computes it. */
static inline float lm_vsoftplus(float x) {
    return (x > 0 ? x : 0.0f) + lm_vlog1p(lm_vexp_neg(-fabsf(x)));
}

/* max(a, v) that keeps a NaN from either side, as jnp.max. */
static inline float lm_max_nan(float a, float v) {
    return ((v > a) | (v != v)) ? v : a;
}

/* Largest element, NaN if any is NaN (as jnp.max), -inf for n == 0. */
static inline float lm_row_max(const float *restrict x, int64_t n) {
    if (n < LM_VL) { /* short rows: lanes would cost more than they save */
        float r = -INFINITY;
        for (int64_t i = 0; i < n; i++) r = lm_max_nan(r, x[i]);
        return r;
    }
    float m[LM_VL];
    for (int j = 0; j < LM_VL; j++) m[j] = -INFINITY;
    int64_t i = 0;
    for (; i + LM_VL <= n; i += LM_VL) {
        LM_SIMD
        for (int j = 0; j < LM_VL; j++) {
            float v = x[i + j];
            m[j] = lm_max_nan(m[j], v);
        }
    }
    for (; i < n; i++) m[0] = lm_max_nan(m[0], x[i]);
    float r = m[0];
    for (int j = 1; j < LM_VL; j++) r = lm_max_nan(r, m[j]);
    return r;
}

/* Sum in float lanes over blocks of 64 per lane, blocks added in double:
 * error stays near float rounding of the result even for long rows. */
static inline double lm_row_sum(const float *restrict x, int64_t n) {
    if (n < LM_VL) {
        float r = 0;
        for (int64_t i = 0; i < n; i++) r += x[i];
        return r;
    }
    double t = 0;
    int64_t i = 0;
    const int64_t blk = LM_VL * 64;
    while (i < n) {
        int64_t end = n - i > blk ? i + blk : n;
        float a[LM_VL] = {0};
        for (; i + LM_VL <= end; i += LM_VL)
            for (int j = 0; j < LM_VL; j++) a[j] += x[i + j];
        for (; i < end; i++) a[0] += x[i];
        float s = 0;
        for (int j = 0; j < LM_VL; j++) s += a[j];
        t += s;
    }
    return t;
}

/* sum(exp(x - m)), also writing exp(x - m) to y when y is not NULL. */
static inline float lm_row_sumexp(const float *restrict x, float m, float *restrict y, int64_t n) {
    float a[LM_VL] = {0};
    int64_t i = 0;
    if (y) {
        for (; i + LM_VL <= n; i += LM_VL)
            for (int j = 0; j < LM_VL; j++) {
                float e = lm_vexp_neg(x[i + j] - m);
                y[i + j] = e;
                a[j] += e;
            }
        for (; i < n; i++) a[0] += y[i] = lm_vexp_neg(x[i] - m);
    } else {
        for (; i + LM_VL <= n; i += LM_VL)
            for (int j = 0; j < LM_VL; j++) a[j] += lm_vexp_neg(x[i + j] - m);
        for (; i < n; i++) a[0] += lm_vexp_neg(x[i] - m);
    }
    float s = 0;
    for (int j = 0; j < LM_VL; j++) s += a[j];
    return s;
}

/* Short rows (classes of a classifier, often 10 or 1) are handled in chunks
 * of rows: transcendental functions run in one flat loop over the chunk, which
 * vectorises across row boundaries, and only cheap per-row passes remain. */
#define LM_ROW_CHUNK 1024 /* elements per chunk (a stack buffer) */
#define LM_LONG_ROW  128  /* rows at least this long use in-row lanes instead */

/* Rows per chunk for rows of length D (at least one). */
static inline int64_t lm_rows_per_chunk(int64_t D) {
    return D > 0 && D < LM_ROW_CHUNK ? LM_ROW_CHUNK / D : 1;
}

/* y = exp(y) for y <= 0, in place. */
static inline void lm_vexp_neg_inplace(float *restrict y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = lm_vexp_neg(y[i]);
}

#endif
