/* Keras initializers: variance scaling with Keras's fan rules, constants,
 * random draws and orthogonal matrices. */
#include "core/tensor_impl.h"
#include "nn/nn.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const init_names[LM_INIT_COUNT] = {[LM_INIT_GLOROT_UNIFORM] = "glorot_uniform",
                                                      [LM_INIT_GLOROT_NORMAL] = "glorot_normal",
                                                      [LM_INIT_HE_UNIFORM] = "he_uniform",
                                                      [LM_INIT_HE_NORMAL] = "he_normal",
                                                      [LM_INIT_LECUN_UNIFORM] = "lecun_uniform",
                                                      [LM_INIT_LECUN_NORMAL] = "lecun_normal",
                                                      [LM_INIT_ORTHOGONAL] = "orthogonal",
                                                      [LM_INIT_ZEROS] = "zeros",
                                                      [LM_INIT_ONES] = "ones",
                                                      [LM_INIT_CONSTANT] = "constant",
                                                      [LM_INIT_RANDOM_NORMAL] = "random_normal",
                                                      [LM_INIT_RANDOM_UNIFORM] = "random_uniform",
                                                      [LM_INIT_TRUNCATED_NORMAL] =
                                                          "truncated_normal"};

static const char *const init_classes[LM_INIT_COUNT] = {[LM_INIT_GLOROT_UNIFORM] = "GlorotUniform",
                                                        [LM_INIT_GLOROT_NORMAL] = "GlorotNormal",
                                                        [LM_INIT_HE_UNIFORM] = "HeUniform",
                                                        [LM_INIT_HE_NORMAL] = "HeNormal",
                                                        [LM_INIT_LECUN_UNIFORM] = "LecunUniform",
                                                        [LM_INIT_LECUN_NORMAL] = "LecunNormal",
                                                        [LM_INIT_ORTHOGONAL] = "Orthogonal",
                                                        [LM_INIT_ZEROS] = "Zeros",
                                                        [LM_INIT_ONES] = "Ones",
                                                        [LM_INIT_CONSTANT] = "Constant",
                                                        [LM_INIT_RANDOM_NORMAL] = "RandomNormal",
                                                        [LM_INIT_RANDOM_UNIFORM] = "RandomUniform",
                                                        [LM_INIT_TRUNCATED_NORMAL] =
                                                            "TruncatedNormal"};

const char *lm_init_name(lm_init_kind k) {
    return k > 0 && k < LM_INIT_COUNT ? init_names[k] : NULL;
}

const char *lm_init_class_name(lm_init_kind k) {
    return k > 0 && k < LM_INIT_COUNT ? init_classes[k] : NULL;
}

int lm_init_from_name(const char *name) {
    if (!name) return -1;
    for (int k = 1; k < LM_INIT_COUNT; k++)
        if (!strcmp(name, init_names[k]) || !strcmp(name, init_classes[k])) return k;
    return -1;
}

/* Keras compute_fans: receptive field = product of all but the last two dims. */
static void fans(const lm_tensor *t, double *fan_in, double *fan_out) {
    int nd = t->ndim;
    if (nd == 0) {
        *fan_in = *fan_out = 1;
    } else if (nd == 1) {
        *fan_in = *fan_out = (double)t->shape[0];
    } else {
        double rf = 1;
        for (int i = 0; i < nd - 2; i++) rf *= (double)t->shape[i];
        *fan_in = (double)t->shape[nd - 2] * rf;
        *fan_out = (double)t->shape[nd - 1] * rf;
    }
}

/* Draws from the initializer's own seed when it has one, else the context. */
typedef struct draw {
    lm_rng own;
    lm_rng *r;
} draw;

static void fill_fn(lm_tensor *t, draw *d, int kind, double a, double b) {
    float *p = lm_tensor_f32(t);
    int64_t n = lm_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v;
        if (kind == 0)
            v = a + (b - a) * lm_rng_uniform_d(d->r);
        else if (kind == 1)
            v = a + b * lm_rng_normal(d->r);
        else {
            double z;
            do z = lm_rng_normal(d->r);
            while (fabs(z) > 2.0);
            v = a + b * z;
        }
        p[i] = (float)v;
    }
}

/* Orthogonal: QR of a Gaussian matrix (modified Gram-Schmidt in double),
 * signs fixed by R's diagonal, as Keras. */
static lm_status orthogonal(lm_tensor *t, draw *d, double gain, lm_ctx *ctx) {
    if (t->ndim < 2)
        return lm_fail(ctx, LM_ERR_SHAPE, "orthogonal initializer needs at least 2 dimensions");
    int64_t cols = t->shape[t->ndim - 1], rows = lm_tensor_numel(t) / (cols ? cols : 1);
    int64_t big = rows > cols ? rows : cols, small = rows > cols ? cols : rows;
    double *a = malloc(sizeof(double) * (size_t)(big * small));
    if (!a) return lm_fail(ctx, LM_ERR_OOM, "orthogonal initializer: out of memory");
    for (int64_t i = 0; i < big * small; i++) a[i] = lm_rng_normal(d->r);
    /* a is big x small, row-major; orthonormalise its columns. */
    for (int64_t j = 0; j < small; j++) {
        for (int64_t k = 0; k < j; k++) {
            double dot = 0;
            for (int64_t i = 0; i < big; i++) dot += a[i * small + j] * a[i * small + k];
            for (int64_t i = 0; i < big; i++) a[i * small + j] -= dot * a[i * small + k];
        }
        double nrm = 0;
        for (int64_t i = 0; i < big; i++) nrm += a[i * small + j] * a[i * small + j];
        nrm = sqrt(nrm);
        for (int64_t i = 0; i < big; i++) a[i * small + j] = nrm > 0 ? a[i * small + j] / nrm : 0;
    }
    float *p = lm_tensor_f32(t);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            p[r * cols + c] = (float)(gain * (rows >= cols ? a[r * small + c] : a[c * small + r]));
    free(a);
    return LM_OK;
}

lm_status lm_init_fill(lm_initializer init, lm_tensor *t, lm_ctx *ctx) {
    if (!t) return LM_ERR_ARG;
    if (!ctx) ctx = t->ctx;
    if (t->dt != LM_F32 || !lm_tensor_is_contiguous(t))
        return lm_fail(ctx, LM_ERR_DTYPE, "initializers fill contiguous float32 tensors");
    draw d;
    d.r = &ctx->rng;
    if (init.has_seed) {
        lm_rng_seed(&d.own, init.seed);
        d.r = &d.own;
    }
    double fi, fo;
    fans(t, &fi, &fo);
    double n_avg = (fi + fo) / 2, trunc = 0.87962566103423978;
    switch (init.kind) {
    case LM_INIT_GLOROT_UNIFORM:
        fill_fn(t, &d, 0, -sqrt(3 / n_avg), sqrt(3 / n_avg));
        break;
    case LM_INIT_GLOROT_NORMAL:
        fill_fn(t, &d, 2, 0, sqrt(1 / n_avg) / trunc);
        break;
    case LM_INIT_HE_UNIFORM:
        fill_fn(t, &d, 0, -sqrt(6 / fi), sqrt(6 / fi));
        break;
    case LM_INIT_HE_NORMAL:
        fill_fn(t, &d, 2, 0, sqrt(2 / fi) / trunc);
        break;
    case LM_INIT_LECUN_UNIFORM:
        fill_fn(t, &d, 0, -sqrt(3 / fi), sqrt(3 / fi));
        break;
    case LM_INIT_LECUN_NORMAL:
        fill_fn(t, &d, 2, 0, sqrt(1 / fi) / trunc);
        break;
    case LM_INIT_ORTHOGONAL:
        return orthogonal(t, &d, init.gain ? init.gain : 1.0, ctx);
    case LM_INIT_ZEROS:
        return lm_tensor_fill(t, 0);
    case LM_INIT_ONES:
        return lm_tensor_fill(t, 1);
    case LM_INIT_CONSTANT:
        return lm_tensor_fill(t, init.value);
    case LM_INIT_RANDOM_NORMAL:
        fill_fn(t, &d, 1, init.mean, init.stddev ? init.stddev : 0.05);
        break;
    case LM_INIT_RANDOM_UNIFORM:
        if (init.minval == 0 && init.maxval == 0)
            fill_fn(t, &d, 0, -0.05, 0.05);
        else
            fill_fn(t, &d, 0, init.minval, init.maxval);
        break;
    case LM_INIT_TRUNCATED_NORMAL:
        fill_fn(t, &d, 2, init.mean, init.stddev ? init.stddev : 0.05);
        break;
    default:
        return lm_fail(ctx, LM_ERR_ARG, "unknown initializer kind %d", (int)init.kind);
    }
    return LM_OK;
}

lm_status lm_initializer_apply(lm_initializer init, lm_tensor *t) {
    if (!t) return LM_ERR_ARG;
    if (init.kind == LM_INIT_DEFAULT) init.kind = LM_INIT_GLOROT_UNIFORM;
    return lm_init_fill(init, t, t->ctx);
}
