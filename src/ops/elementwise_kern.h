/* Elementwise loops, included once per ISA by unary.c (portable),
 * elementwise_avx2.c and elementwise_avx512.c, each defining EK_TABLE as the
 * name of its lm_elem_kernels table. Each op is a plain loop over restrict
 * pointers with the switch outside, and the transcendental functions are
 * branch-free polynomials (Cephes-style, within 2 ulp of libm) so that gcc
 * vectorises them; libm's expf/tanhf/erff are scalar calls. The formulas
 * follow Keras 3 on JAX (jax.nn), including the derivatives at kinks. */
#include "ops/elementwise.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#ifndef EK_TABLE
#error "define EK_TABLE before including elementwise_kern.h"
#endif

#define EK_INLINE static inline __attribute__((always_inline))

/* a * b + c, fused where the ISA has FMA (gcc does not contract in ISO C mode). */
#ifdef __FMA__
#define EK_FMA(a, b, c) fmaf(a, b, c)
#else
#define EK_FMA(a, b, c) ((a) * (b) + (c))
#endif

EK_INLINE float ek_from_bits(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

EK_INLINE int32_t ek_to_bits(float f) {
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i;
}

/* c ? a : b on the bits. Under gcc's default -ftrapping-math a float ?:
 * followed by arithmetic becomes a branch that blocks vectorisation; integer
 * masks do not. */
EK_INLINE float ek_sel(int c, float a, float b) {
    int32_t m = -(int32_t)(c != 0);
    return ek_from_bits((m & ek_to_bits(a)) | (~m & ek_to_bits(b)));
}

/* exp(x): x = k ln2 + r with |r| <= ln2 / 2 (Cody-Waite), a degree-6
 * polynomial for exp(r), and 2^k applied in two halves so that results in
 * the denormal range and overflow to inf come out right. */
EK_INLINE float ek_exp(float x) {
    float xc = ek_sel(x > 88.8f, 88.8f, x);
    xc = ek_sel(xc < -104.0f, -104.0f, xc);
    xc = ek_sel(xc != xc, 0.0f, xc); /* NaN: computed on 0, restored below */
    float kf = EK_FMA(xc, 1.44269504088896341f, 12582912.0f) - 12582912.0f; /* round */
    float r = EK_FMA(kf, -0.693359375f, xc);
    r = EK_FMA(kf, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = EK_FMA(p, r, 1.3981999507e-3f);
    p = EK_FMA(p, r, 8.3334519073e-3f);
    p = EK_FMA(p, r, 4.1665795894e-2f);
    p = EK_FMA(p, r, 1.6666665459e-1f);
    p = EK_FMA(p, r, 5.0000001201e-1f);
    p = EK_FMA(p, r * r, r + 1.0f);
    int32_t k = (int32_t)kf, k1 = k / 2, k2 = k - k1;
    float y = p * ek_from_bits((k1 + 127) << 23) * ek_from_bits((k2 + 127) << 23);
    return ek_sel(x != x, x, y);
}

/* exp(x) - 1 without cancellation near 0: a Taylor polynomial inside
 * |x| < 0.5 (truncation below 1e-8 relative), exp(x) - 1 outside. */
EK_INLINE float ek_expm1(float x) {
    float p = 1.0f / 40320;
    p = EK_FMA(p, x, 1.0f / 5040);
    p = EK_FMA(p, x, 1.0f / 720);
    p = EK_FMA(p, x, 1.0f / 120);
    p = EK_FMA(p, x, 1.0f / 24);
    p = EK_FMA(p, x, 1.0f / 6);
    p = EK_FMA(p, x, 0.5f);
    float small = EK_FMA(p, x * x, x);
    float big = ek_exp(x) - 1.0f;
    return ek_sel(fabsf(x) < 0.5f, small, big);
}

/* log(x) for float32, Cephes logf: x = m 2^e with m in [sqrt(1/2), sqrt(2)). */
EK_INLINE float ek_log(float x) {
    int tiny = x < 1.17549435e-38f; /* denormals: scale into the normal range */
    float xs = ek_sel(tiny, x * 8388608.0f, x);
    int32_t ix = ek_to_bits(xs);
    float e = (float)(((ix >> 23) & 0xff) - 126) - ek_sel(tiny, 23.0f, 0.0f);
    float m = ek_from_bits((ix & 0x007fffff) | 0x3f000000); /* [0.5, 1) */
    int lo = m < 0.707106781186547524f;
    e = e - ek_sel(lo, 1.0f, 0.0f);
    m = ek_sel(lo, m + m - 1.0f, m - 1.0f);
    float z = m * m;
    float p = 7.0376836292e-2f;
    p = EK_FMA(p, m, -1.1514610310e-1f);
    p = EK_FMA(p, m, 1.1676998740e-1f);
    p = EK_FMA(p, m, -1.2420140846e-1f);
    p = EK_FMA(p, m, 1.4249322787e-1f);
    p = EK_FMA(p, m, -1.6668057665e-1f);
    p = EK_FMA(p, m, 2.0000714765e-1f);
    p = EK_FMA(p, m, -2.4999993993e-1f);
    p = EK_FMA(p, m, 3.3333331174e-1f);
    float y = p * m * z;
    y = EK_FMA(e, -2.12194440e-4f, y);
    y = EK_FMA(z, -0.5f, y);
    float r = m + y;
    r = EK_FMA(e, 0.693359375f, r);
    r = ek_sel(x == INFINITY, x, r);
    r = ek_sel(x == 0.0f, -INFINITY, r);
    return ek_sel((x < 0.0f) | (x != x), NAN, r);
}

/* log(1 + u) for u >= 0, accurate for small u: log(w) * u / (w - 1), w = 1 + u. */
EK_INLINE float ek_log1p(float u) {
    float w = 1.0f + u;
    float d = w - 1.0f;
    float r = ek_log(w) * (u / ek_sel(d == 0.0f, 1.0f, d));
    return ek_sel(d == 0.0f, u, r);
}

/* tanh: Cephes tanhf, an odd polynomial below 0.625, 1 - 2 / (exp(2|x|) + 1) above. */
EK_INLINE float ek_tanh(float x) {
    float ax = fabsf(x);
    float big = 1.0f - 2.0f / (ek_exp(ax + ax) + 1.0f);
    float z = x * x;
    float p = -5.70498872745e-3f;
    p = EK_FMA(p, z, 2.06390887954e-2f);
    p = EK_FMA(p, z, -5.37397155531e-2f);
    p = EK_FMA(p, z, 1.33314422036e-1f);
    p = EK_FMA(p, z, -3.33332819422e-1f);
    float small = EK_FMA(p * z, ax, ax);
    return copysignf(ek_sel(ax < 0.625f, small, big), x);
}

/* erfc as XLA computes it for JAX: 1 - x T(x^2) below |x| = 1, else
 * exp(-x^2) P(1/x^2) / |x| (Cephes erfcf coefficients, two ranges), with x^2
 * split exactly (Dekker) so that exp(-x^2) keeps full precision in the tail.
 * Within 2e-7 relative over the float range. */
EK_INLINE float ek_erfc(float x) {
    float ax = fabsf(x), x2 = x * x;
    float t = 7.853861353153693e-5f;
    t = EK_FMA(t, x2, -8.010193625184903e-4f);
    t = EK_FMA(t, x2, 5.188327685732524e-3f);
    t = EK_FMA(t, x2, -2.685381193529856e-2f);
    t = EK_FMA(t, x2, 1.128358514861418e-1f);
    t = EK_FMA(t, x2, -3.761262582423300e-1f);
    t = EK_FMA(t, x2, 1.128379165726710e+0f);
    float small = 1.0f - x * t;
    float ac = ek_sel(ax < 1.0f, 1.0f, ek_sel(ax > 10.0f, 10.0f, ax)); /* erfc(10) is 0 in float */
    float a2 = ac * ac;
    float xh = ek_from_bits(ek_to_bits(ac) & (int32_t)0xfffff000), xl = ac - xh;
    float lo = ((xh * xh - a2) + 2.0f * xh * xl) + xl * xl; /* ac^2 = a2 + lo exactly */
    float z = ek_exp(-a2) * (1.0f - lo);
    float q = 1.0f / ac, y = q * q;
    float p = 2.326819970068386e-2f;
    p = EK_FMA(p, y, -1.387039388740657e-1f);
    p = EK_FMA(p, y, 3.687424674597105e-1f);
    p = EK_FMA(p, y, -5.824733027278666e-1f);
    p = EK_FMA(p, y, 6.210004621745983e-1f);
    p = EK_FMA(p, y, -4.944515323274145e-1f);
    p = EK_FMA(p, y, 3.404879937665872e-1f);
    p = EK_FMA(p, y, -2.741127028184656e-1f);
    p = EK_FMA(p, y, 5.638259427386472e-1f);
    float r = -1.047766399936249e+1f;
    r = EK_FMA(r, y, 1.297719955372516e+1f);
    r = EK_FMA(r, y, -7.495518717768503e+0f);
    r = EK_FMA(r, y, 2.921019019210786e+0f);
    r = EK_FMA(r, y, -1.015265279202700e+0f);
    r = EK_FMA(r, y, 4.218463358204948e-1f);
    r = EK_FMA(r, y, -2.820767439740514e-1f);
    r = EK_FMA(r, y, 5.641895067754075e-1f);
    float v = ek_sel(ax > 10.0f, 0.0f, z * q * ek_sel(ax < 2.0f, p, r));
    v = ek_sel(x < 0, 2.0f - v, v);
    return ek_sel(ax < 1.0f, small, ek_sel(x != x, x, v));
}

EK_INLINE float ek_sigmoid(float x) {
    return 1.0f / (1.0f + ek_exp(-x));
}

#define EK_SELU_ALPHA     1.6732632423543772848170429916717f
#define EK_SELU_SCALE     1.0507009873554804934193349852946f
#define EK_SQRT_2_OVER_PI 0.7978845608028654f
#define EK_SQRT_HALF      0.7071067811865476f
#define EK_INV_SQRT_2PI   0.3989422804014327f

/* Loop over i < n with y[i] = expression. */
#define EK_MAP(expr)                                                                               \
    do {                                                                                           \
        for (int64_t i = 0; i < n; i++) y[i] = (expr);                                             \
    } while (0)

EK_INLINE float ek_max(float a, float b) {
    return ek_sel((a > b) | (a != a), a, b); /* NaN propagates, as jnp.maximum */
}
EK_INLINE float ek_min(float a, float b) {
    return ek_sel((a < b) | (a != a), a, b);
}

/* The six binary ops with operands given as expressions A and B. */
#define EK_BINARY(A, B)                                                                            \
    switch (op) {                                                                                  \
    case LM_OP_ADD:                                                                                \
        EK_MAP(A + B);                                                                             \
        break;                                                                                     \
    case LM_OP_SUB:                                                                                \
        EK_MAP(A - B);                                                                             \
        break;                                                                                     \
    case LM_OP_MUL:                                                                                \
        EK_MAP(A *B);                                                                              \
        break;                                                                                     \
    case LM_OP_DIV:                                                                                \
        EK_MAP(A / B);                                                                             \
        break;                                                                                     \
    case LM_OP_MAXIMUM:                                                                            \
        EK_MAP(ek_max(A, B));                                                                      \
        break;                                                                                     \
    case LM_OP_MINIMUM:                                                                            \
        EK_MAP(ek_min(A, B));                                                                      \
        break;                                                                                     \
    default:                                                                                       \
        break;                                                                                     \
    }

EK_INLINE void ek_binary_row(int op, int64_t n, const float *restrict a, int64_t sa,
                             const float *restrict b, int64_t sb, float *restrict y) {
    if (sa && sb) {
        EK_BINARY(a[i], b[i]);
    } else if (sa) {
        const float bv = b[0];
        EK_BINARY(a[i], bv);
    } else if (sb) {
        const float av = a[0];
        EK_BINARY(av, b[i]);
    } else {
        const float av = a[0], bv = b[0];
        EK_BINARY(av, bv);
    }
}

/* Share of the gradient going to a for maximum (sign 1) or minimum (sign
 * -1): 1 where a wins, 0.5 at ties (as JAX splits it), 0 where b wins. */
EK_INLINE float ek_win(float a, float b, float sign) {
    return ek_sel((a - b) * sign > 0, 1.0f, ek_sel(a == b, 0.5f, 0.0f));
}

#define EK_BINARY_GRAD(A, B)                                                                       \
    switch (op * 2 + which) {                                                                      \
    case LM_OP_DIV * 2 + 0:                                                                        \
        EK_MAP(gy[i] / B);                                                                         \
        break;                                                                                     \
    case LM_OP_DIV * 2 + 1:                                                                        \
        EK_MAP(-gy[i] * A / (B * B));                                                              \
        break;                                                                                     \
    case LM_OP_MAXIMUM * 2 + 0:                                                                    \
        EK_MAP(gy[i] * ek_win(A, B, 1.0f));                                                        \
        break;                                                                                     \
    case LM_OP_MAXIMUM * 2 + 1:                                                                    \
        EK_MAP(gy[i] * ek_win(B, A, 1.0f));                                                        \
        break;                                                                                     \
    case LM_OP_MINIMUM * 2 + 0:                                                                    \
        EK_MAP(gy[i] * ek_win(A, B, -1.0f));                                                       \
        break;                                                                                     \
    case LM_OP_MINIMUM * 2 + 1:                                                                    \
        EK_MAP(gy[i] * ek_win(B, A, -1.0f));                                                       \
        break;                                                                                     \
    default:                                                                                       \
        EK_MAP(0.0f);                                                                              \
        break;                                                                                     \
    }

EK_INLINE void ek_binary_grad_row(int op, int which, int64_t n, const float *restrict gy,
                                  const float *restrict a, int64_t sa, const float *restrict b,
                                  int64_t sb, float *restrict y) {
    if (sa && sb) {
        EK_BINARY_GRAD(a[i], b[i]);
    } else if (sa) {
        const float bv = b[0];
        EK_BINARY_GRAD(a[i], bv);
    } else if (sb) {
        const float av = a[0];
        EK_BINARY_GRAD(av, b[i]);
    } else {
        const float av = a[0], bv = b[0];
        EK_BINARY_GRAD(av, bv);
    }
}

/* Rows r < rows: y[r * n + i] from a[r * ra + i * sa] and b[r * rb + i * sb];
 * many short rows (a bias of 10) cost one call. */
static void ek_binary(int op, int64_t rows, int64_t n, const float *a, int64_t ra, int64_t sa,
                      const float *b, int64_t rb, int64_t sb, float *y) {
    for (int64_t r = 0; r < rows; r++)
        ek_binary_row(op, n, a + r * ra, sa, b + r * rb, sb, y + r * n);
}

static void ek_binary_grad(int op, int which, int64_t rows, int64_t n, const float *gy,
                           const float *a, int64_t ra, int64_t sa, const float *b, int64_t rb,
                           int64_t sb, float *y) {
    for (int64_t r = 0; r < rows; r++)
        ek_binary_grad_row(op, which, n, gy + r * n, a + r * ra, sa, b + r * rb, sb, y + r * n);
}

EK_INLINE float ek_elu(float x, float alpha) {
    return ek_sel(x > 0, x, alpha * ek_expm1(x));
}

EK_INLINE float ek_gelu_tanh(float x) {
    float u = EK_SQRT_2_OVER_PI * (x + 0.044715f * (x * x * x));
    return x * (0.5f * (1.0f + ek_tanh(u)));
}

EK_INLINE float ek_gelu_erf(float x) {
    return 0.5f * x * ek_erfc(-x * EK_SQRT_HALF); /* as jax.nn.gelu */
}

EK_INLINE float ek_hard_sigmoid(float x) {
    float m = x + 3.0f;
    m = ek_sel(m < 0, 0.0f, m);
    m = ek_sel(m > 6.0f, 6.0f, m);
    return m / 6.0f;
}

EK_INLINE float ek_softplus(float x) {
    return ek_sel(x > 0, x, 0.0f) + ek_log1p(ek_exp(-fabsf(x)));
}

static void ek_pow(float p, int64_t n, const float *restrict x, float *restrict y) {
    if (p == 2.0f)
        EK_MAP(x[i] * x[i]);
    else if (p == 1.0f)
        EK_MAP(x[i]);
    else if (p == 3.0f)
        EK_MAP(x[i] * x[i] * x[i]);
    else if (p == 0.5f)
        EK_MAP(sqrtf(x[i]));
    else if (p == -1.0f)
        EK_MAP(1.0f / x[i]);
    else
        EK_MAP(powf(x[i], p));
}

static void ek_unary(int op, const lm_params *prm, int64_t n, const float *restrict x,
                     float *restrict y) {
    const float f0 = prm->f[0], f1 = prm->f[1];
    switch (op) {
    case LM_OP_NEG:
        EK_MAP(-x[i]);
        break;
    case LM_OP_SQUARE:
        EK_MAP(x[i] * x[i]);
        break;
    case LM_OP_SQRT:
        EK_MAP(sqrtf(x[i]));
        break;
    case LM_OP_EXP:
        EK_MAP(ek_exp(x[i]));
        break;
    case LM_OP_LOG:
        EK_MAP(ek_log(x[i]));
        break;
    case LM_OP_ABS:
        EK_MAP(fabsf(x[i]));
        break;
    case LM_OP_POW:
        ek_pow(f0, n, x, y);
        break;
    case LM_OP_SCALE:
        EK_MAP(x[i] * f0 + f1);
        break;
    case LM_OP_CLIP:
        EK_MAP(ek_min(ek_max(x[i], f0), f1));
        break;
    case LM_OP_RELU:
        EK_MAP(ek_sel(x[i] < 0, 0.0f, x[i]));
        break;
    case LM_OP_LEAKY_RELU:
        EK_MAP(ek_sel(x[i] >= 0, x[i], f0 * x[i]));
        break;
    case LM_OP_ELU:
        EK_MAP(ek_elu(x[i], f0));
        break;
    case LM_OP_SELU:
        EK_MAP(EK_SELU_SCALE * ek_elu(x[i], EK_SELU_ALPHA));
        break;
    case LM_OP_GELU:
        if (prm->flag)
            EK_MAP(ek_gelu_tanh(x[i]));
        else
            EK_MAP(ek_gelu_erf(x[i]));
        break;
    case LM_OP_SIGMOID:
        EK_MAP(ek_sigmoid(x[i]));
        break;
    case LM_OP_HARD_SIGMOID:
        EK_MAP(ek_hard_sigmoid(x[i]));
        break;
    case LM_OP_TANH:
        EK_MAP(ek_tanh(x[i]));
        break;
    case LM_OP_SOFTPLUS:
        EK_MAP(ek_softplus(x[i]));
        break;
    case LM_OP_SOFTSIGN:
        EK_MAP(x[i] / (fabsf(x[i]) + 1.0f));
        break;
    case LM_OP_SILU:
        EK_MAP(x[i] * ek_sigmoid(x[i]));
        break;
    default:
        break;
    }
}

/* Derivatives (JAX's rules: jnp.clip and jnp.maximum split ties 0.5/0.5,
 * relu'(0) = 0, leaky_relu'(0) = 1, elu'(0) = alpha, abs'(0) = 1). */

EK_INLINE float ek_clip_d(float x, float lo, float hi) {
    float dlo = ek_sel(x > lo, 1.0f, ek_sel(x == lo, 0.5f, 0.0f));
    float m = ek_max(x, lo);
    float dhi = ek_sel(m < hi, 1.0f, ek_sel(m == hi, 0.5f, 0.0f));
    return dlo * dhi;
}

EK_INLINE float ek_elu_d(float x, float alpha) {
    return ek_sel(x > 0, 1.0f, alpha * ek_exp(x));
}

/* 1 - tanh(u)^2 as 4E / (1 + E)^2 with E = exp(-2|u|): no cancellation where
 * tanh(u) rounds to +-1, so the tail of the derivative keeps its precision. */
EK_INLINE float ek_gelu_tanh_d(float x) {
    float x2 = x * x;
    float u = EK_SQRT_2_OVER_PI * (x + 0.044715f * (x2 * x));
    float e = ek_exp(-2.0f * fabsf(u)), inv = 1.0f / (1.0f + e);
    float t = copysignf((1.0f - e) * inv, u), sech2 = 4.0f * e * inv * inv;
    float du = EK_SQRT_2_OVER_PI * (1.0f + 3.0f * 0.044715f * x2);
    return 0.5f * (1.0f + t) + 0.5f * x * sech2 * du;
}

EK_INLINE float ek_gelu_erf_d(float x) {
    return 0.5f * ek_erfc(-x * EK_SQRT_HALF) + x * EK_INV_SQRT_2PI * ek_exp(-0.5f * x * x);
}

EK_INLINE float ek_hard_sigmoid_d(float x) {
    float m = x + 3.0f; /* JAX tests x + 3 against (0, 6) */
    return ek_sel((m > 0) & (m < 6.0f), 1.0f / 6.0f, 0.0f);
}

/* s (1 + x (1 - s)) with s and 1 - s both from E = exp(-|x|), so 1 - s keeps
 * its precision where s rounds to 1. */
EK_INLINE float ek_silu_d(float x) {
    float e = ek_exp(-fabsf(x)), d = 1.0f / (1.0f + e);
    int pos = x >= 0;
    float s = ek_sel(pos, d, e * d), sn = ek_sel(pos, e * d, d);
    return s * (1.0f + x * sn);
}

EK_INLINE float ek_softsign_d(float x) {
    float d = 1.0f + fabsf(x);
    return 1.0f / (d * d);
}

static void ek_pow_d(float p, int64_t n, const float *restrict gy, const float *restrict x,
                     float *restrict y) {
    if (p == 2.0f)
        EK_MAP(gy[i] * (2.0f * x[i]));
    else if (p == 1.0f)
        EK_MAP(gy[i]);
    else if (p == 3.0f)
        EK_MAP(gy[i] * (3.0f * (x[i] * x[i])));
    else if (p == 0.5f)
        EK_MAP(gy[i] * (0.5f / sqrtf(x[i])));
    else if (p == -1.0f)
        EK_MAP(gy[i] * (-1.0f / (x[i] * x[i])));
    else
        EK_MAP(gy[i] * (p * powf(x[i], p - 1.0f)));
}

/* t is the op's output for relu, sigmoid, tanh, exp and sqrt (see
 * lm_unary_grad_uses_output), its input otherwise. */
static void ek_unary_grad(int op, const lm_params *prm, int64_t n, const float *restrict gy,
                          const float *restrict t, float *restrict y) {
    const float f0 = prm->f[0], f1 = prm->f[1];
    switch (op) {
    case LM_OP_NEG:
        EK_MAP(-gy[i]);
        break;
    case LM_OP_SCALE:
        EK_MAP(gy[i] * f0);
        break;
    case LM_OP_SQUARE:
        EK_MAP(gy[i] * (2.0f * t[i]));
        break;
    case LM_OP_SQRT:
        EK_MAP(gy[i] * (0.5f / t[i]));
        break;
    case LM_OP_EXP:
        EK_MAP(gy[i] * t[i]);
        break;
    case LM_OP_LOG:
        EK_MAP(gy[i] / t[i]);
        break;
    case LM_OP_ABS:
        EK_MAP(ek_sel(t[i] >= 0, gy[i], -gy[i]));
        break;
    case LM_OP_POW:
        ek_pow_d(f0, n, gy, t, y);
        break;
    case LM_OP_CLIP:
        EK_MAP(gy[i] * ek_clip_d(t[i], f0, f1));
        break;
    case LM_OP_RELU:
        EK_MAP(ek_sel(t[i] > 0, gy[i], 0.0f));
        break;
    case LM_OP_LEAKY_RELU:
        EK_MAP(ek_sel(t[i] >= 0, gy[i], gy[i] * f0));
        break;
    case LM_OP_ELU:
        EK_MAP(gy[i] * ek_elu_d(t[i], f0));
        break;
    case LM_OP_SELU:
        EK_MAP(gy[i] * (EK_SELU_SCALE * ek_elu_d(t[i], EK_SELU_ALPHA)));
        break;
    case LM_OP_GELU:
        if (prm->flag)
            EK_MAP(gy[i] * ek_gelu_tanh_d(t[i]));
        else
            EK_MAP(gy[i] * ek_gelu_erf_d(t[i]));
        break;
    case LM_OP_SIGMOID:
        EK_MAP(gy[i] * (t[i] * (1.0f - t[i])));
        break;
    case LM_OP_HARD_SIGMOID:
        EK_MAP(gy[i] * ek_hard_sigmoid_d(t[i]));
        break;
    case LM_OP_TANH:
        EK_MAP((gy[i] + gy[i] * t[i]) * (1.0f - t[i]));
        break; /* as JAX */
    case LM_OP_SOFTPLUS:
        EK_MAP(gy[i] * ek_sigmoid(t[i]));
        break;
    case LM_OP_SOFTSIGN:
        EK_MAP(gy[i] * ek_softsign_d(t[i]));
        break;
    case LM_OP_SILU:
        EK_MAP(gy[i] * ek_silu_d(t[i]));
        break;
    default:
        EK_MAP(0.0f);
        break;
    }
}

const lm_elem_kernels EK_TABLE = {ek_binary, ek_binary_grad, ek_unary, ek_unary_grad};
