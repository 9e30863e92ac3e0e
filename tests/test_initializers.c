/* Initializers: Keras's fan rules and distributions, checked by the moments
 * of large draws; orthogonality; constants; seeds; names. */
#include <lamina/lamina.h>
#include "lmtest.h"

static lm_ctx *ctx;

static void moments(lm_tensor *t, double *mean, double *var, double *absmax) {
    double s = 0, s2 = 0, mx = 0;
    int64_t n = lm_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v = lm_tensor_get(t, i);
        s += v;
        s2 += v * v;
        mx = fmax(mx, fabs(v));
    }
    *mean = s / n;
    *var = s2 / n - *mean * *mean;
    *absmax = mx;
}

/* A (fan_in, fan_out) = (400, 600) kernel: check each kind's variance and bound. */
static void variance_scaling(void) {
    struct {
        lm_initializer init;
        double var, bound; /* bound 0: unbounded check skipped */
    } cases[] = {
        {lm_glorot_uniform(), 2.0 / 1000, sqrt(6.0 / 1000)},
        {lm_glorot_normal(), 2.0 / 1000, 2 * sqrt(2.0 / 1000) / 0.87962566103423978},
        {lm_he_uniform(), 2.0 / 400, sqrt(6.0 / 400)},
        {lm_he_normal(), 2.0 / 400, 2 * sqrt(2.0 / 400) / 0.87962566103423978},
        {lm_lecun_uniform(), 1.0 / 400, sqrt(3.0 / 400)},
        {lm_lecun_normal(), 1.0 / 400, 2 * sqrt(1.0 / 400) / 0.87962566103423978},
        {lm_random_normal(), 0.05 * 0.05, 0},
        {lm_random_uniform(), 0.1 * 0.1 / 12, 0.05},
        {lm_truncated_normal(.stddev = 0.1), 0.1 * 0.1 * 0.774, 0.2},
    };
    lm_tensor *t = lm_tensor_new(ctx, LM_F32, LM_SHAPE(400, 600));
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        CHECK_STATUS(lm_initializer_apply(cases[k].init, t), LM_OK);
        double mean, var, mx;
        moments(t, &mean, &var, &mx);
        CHECK_MSG(fabs(mean) < 0.05 * sqrt(cases[k].var), "%s: mean %g",
                  lm_init_name(cases[k].init.kind), mean);
        CHECK_MSG(fabs(var / cases[k].var - 1) < 0.02, "%s: variance %g, want %g",
                  lm_init_name(cases[k].init.kind), var, cases[k].var);
        if (cases[k].bound > 0)
            CHECK_MSG(mx <= cases[k].bound * (1 + 1e-6), "%s: |w| reaches %g > %g",
                      lm_init_name(cases[k].init.kind), mx, cases[k].bound);
    }
    lm_tensor_free(t);
}

/* Convolution kernels: fans include the receptive field (3 * 3). */
static void conv_fans(void) {
    lm_tensor *t = lm_tensor_new(ctx, LM_F32, LM_SHAPE(3, 3, 64, 128));
    lm_initializer_apply(lm_he_uniform(), t);
    double mean, var, mx;
    moments(t, &mean, &var, &mx);
    CHECK_NEAR(var / (2.0 / (9 * 64)), 1.0, 0.03);
    CHECK(mx <= sqrt(6.0 / (9 * 64)) * (1 + 1e-6));
    lm_tensor_free(t);
}

static void orthogonal(void) {
    int64_t shapes[2][2] = {{20, 8}, {8, 20}};
    for (int s = 0; s < 2; s++) {
        int64_t r = shapes[s][0], c = shapes[s][1];
        lm_tensor *t = lm_tensor_new(ctx, LM_F32, LM_SHAPE(r, c));
        CHECK_STATUS(lm_initializer_apply(lm_orthogonal(.gain = 2.0), t), LM_OK);
        /* The smaller dimension's vectors are orthogonal with norm gain. */
        int64_t n = r < c ? r : c;
        double worst = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) {
                double dot = 0;
                for (int64_t k = 0; k < (r < c ? c : r); k++)
                    dot += r >= c ? lm_tensor_get(t, k * c + i) * lm_tensor_get(t, k * c + j)
                                  : lm_tensor_get(t, i * c + k) * lm_tensor_get(t, j * c + k);
                worst = fmax(worst, fabs(dot - (i == j ? 4.0 : 0.0)));
            }
        CHECK_MSG(worst < 1e-5, "orthogonal %lldx%lld: off by %g", (long long)r, (long long)c,
                  worst);
        lm_tensor_free(t);
    }
    lm_tensor *v = lm_tensor_new(ctx, LM_F32, LM_SHAPE(5));
    CHECK(lm_initializer_apply(lm_orthogonal(), v) != LM_OK);
    lm_tensor_free(v);
}

static void constants_and_seeds(void) {
    lm_tensor *t = lm_tensor_new(ctx, LM_F32, LM_SHAPE(3, 4)),
              *u = lm_tensor_new(ctx, LM_F32, LM_SHAPE(3, 4));
    lm_initializer_apply(lm_ones(), t);
    CHECK(lm_tensor_get(t, 11) == 1);
    lm_initializer_apply(lm_constant_init(0.25), t);
    CHECK(lm_tensor_get(t, 5) == 0.25f);
    lm_initializer_apply(lm_zeros(), t);
    CHECK(lm_tensor_get(t, 0) == 0);
    /* An initializer with its own seed repeats whatever the context did. */
    lm_initializer_apply(lm_glorot_normal(.seed = 5, .has_seed = true), t);
    lm_tensor_random_uniform(u, 0, 1);
    lm_initializer_apply(lm_glorot_normal(.seed = 5, .has_seed = true), u);
    bool same = true;
    for (int i = 0; i < 12; i++) same = same && lm_tensor_get(t, i) == lm_tensor_get(u, i);
    CHECK(same);
    lm_tensor *it = lm_tensor_new(ctx, LM_I32, LM_SHAPE(2));
    CHECK(lm_initializer_apply(lm_ones(), it) != LM_OK);
    CHECK(lm_initializer_apply(lm_ones(), NULL) == LM_ERR_ARG);
    lm_tensor_free(it);
    lm_tensor_free(t);
    lm_tensor_free(u);
}

static void names(void) {
    CHECK(!strcmp(lm_init_name(LM_INIT_HE_NORMAL), "he_normal"));
    CHECK(lm_init_from_name("GlorotUniform") == LM_INIT_GLOROT_UNIFORM);
    CHECK(lm_init_from_name("truncated_normal") == LM_INIT_TRUNCATED_NORMAL);
    CHECK(lm_init_from_name("bogus") == -1);
    CHECK(lm_init_name((lm_init_kind)99) == NULL);
}

int main(void) {
    ctx = lm_ctx_new();
    lm_ctx_seed(ctx, 11);
    RUN(variance_scaling);
    RUN(conv_fans);
    RUN(orthogonal);
    RUN(constants_and_seeds);
    RUN(names);
    lm_ctx_free(ctx);
    return lmt_summary("initializers");
}
