/* Weight and activity regularisation against Keras 3 (references from
 * tests/keras/ref_layers.py): the loss of small regularised models from
 * evaluate (one batch and two batches), test_on_batch and train_on_batch,
 * within 1e-5. Keras adds l1 * sum|w| + l2 * sum w^2 for each trainable
 * weight and, per layer call, the activity penalty divided by the batch size;
 * a frozen layer's weights are not penalised. Also checks the penalties by
 * hand on a tiny model. */
#include "lmtest.h"
#include "refs.h"
#include <lamina/lamina.h>
#include <lamina/model.h>

/* ---- the generator of ref_layers.py: values in [-1, 1] on a 1e-6 grid ---- */

static uint64_t kg_fnv1a(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static uint64_t kg_hash(uint64_t seed, int64_t i) {
    const uint64_t M = 0xffffffffu;
    uint64_t x = ((uint64_t)i * 2654435761u + seed * 40503u + 12345u) & M;
    x ^= x >> 15;
    x = (x * 2246822519u) & M;
    x ^= x >> 13;
    x = (x * 3266489917u) & M;
    x ^= x >> 16;
    return x % 2000001u;
}

static void kg_fill(lm_tensor *t, uint64_t seed, double scale, double offset) {
    float *p = lm_tensor_f32(t);
    for (int64_t i = 0; i < lm_tensor_numel(t); i++)
        p[i] = (float)(((double)kg_hash(seed, i) / 1000000.0 - 1.0) * scale + offset);
}

/* ---- the models of reg_models() in ref_layers.py ---- */

static lm_model *reg_dense(void) {
    lm_model *m = lm_sequential(NULL);
    lm_add(m, lm_input(LM_SHAPE(5)));
    lm_add(m, lm_dense(4, .activation = LM_TANH, .kernel_regularizer = &lm_l2(0.01),
                       .bias_regularizer = &lm_l1(0.02),
                       .activity_regularizer = &lm_l1_l2(0.001, 0.002)));
    lm_add(m, lm_dense(3, .kernel_regularizer = &lm_l1_l2(0.01, 0.01)));
    return m;
}

static lm_model *reg_conv_bn(void) {
    lm_model *m = lm_sequential(NULL);
    lm_add(m, lm_input(LM_SHAPE(5, 5, 2)));
    lm_add(m, lm_conv2d(3, LM_SIZE(3, 3), .kernel_regularizer = &lm_l2(0.02),
                        .activity_regularizer = &lm_l1(0.003)));
    lm_add(m, lm_batch_normalization(.gamma_regularizer = &lm_l1(0.05),
                                     .beta_regularizer = &lm_l2(0.04)));
    lm_add(m, lm_flatten());
    lm_add(m, lm_dense(2, .bias_regularizer = &lm_l2(0.1)));
    return m;
}

static lm_model *reg_embedding_frozen(void) {
    lm_model *m = lm_sequential(NULL);
    lm_add(m, lm_input(LM_SHAPE(4)));
    lm_add(m, lm_embedding(10, 3, .embeddings_regularizer = &lm_l2(0.05)));
    lm_add(m, lm_flatten());
    lm_add(m, lm_dense(4, .kernel_regularizer = &lm_l2(0.3), .trainable = LM_FALSE));
    lm_add(m, lm_dense(2, .activation = LM_SOFTMAX, .kernel_regularizer = &lm_l1(0.01)));
    return m;
}

typedef struct rcase {
    const char *name;
    lm_model *(*build)(void);
    lm_shape x, y;
    lm_loss loss;
    int vocab;
} rcase;

/* evaluate (batch N and N/2), test_on_batch and train_on_batch against
 * [evaluate, evaluate, test_on_batch, train_on_batch] from Keras. */
static void run_case(const rcase *rc) {
    lm_model *m = rc->build();
    lm_ctx *ctx = lm_model_ctx(m);
    uint64_t seed = kg_fnv1a(rc->name);
    CHECK_MSG(lm_model_status(m) == LM_OK, "%s: %s", rc->name, lm_model_error(m));
    lm_tensor *x = lm_tensor_new(ctx, LM_F32, rc->x), *y = lm_tensor_new(ctx, LM_F32, rc->y);
    lm_tensor *ref = ref_load(ctx, "layers", rc->name, "ref");
    kg_fill(x, seed, 1.0, 0.0);
    if (rc->vocab)
        for (int64_t i = 0; i < lm_tensor_numel(x); i++)
            lm_tensor_set(x, i, (double)(kg_hash(seed, i) % (uint64_t)rc->vocab));
    kg_fill(y, seed + 7919, 1.0, 0.0);
    if (rc->loss == LM_CATEGORICAL_CROSSENTROPY) { /* one-hot of the row's argmax */
        int64_t n = rc->y.dims[0], c = rc->y.dims[1];
        float *p = lm_tensor_f32(y);
        for (int64_t i = 0; i < n; i++) {
            int64_t best = 0;
            for (int64_t j = 1; j < c; j++)
                if (p[i * c + j] > p[i * c + best]) best = j;
            for (int64_t j = 0; j < c; j++) p[i * c + j] = j == best ? 1.0f : 0.0f;
        }
    }
    int nw = lm_model_weight_count(m);
    for (int i = 0, k = 2; i < lm_model_layer_count(m); i++) {
        lm_layer *l = lm_model_layer(m, i);
        for (int j = 0; j < lm_layer_weight_count(l); j++, k++) {
            const char *wn = lm_layer_weight_name(l, j);
            bool one = !strcmp(wn, "moving_variance") || !strcmp(wn, "gamma");
            kg_fill(lm_layer_weight(l, j), seed + 7919 * (uint64_t)k, 0.5, one ? 1.0 : 0.0);
        }
    }
    CHECK(nw > 0);
    CHECK_STATUS(lm_compile(m, .optimizer = lm_sgd(.learning_rate = 0.05), .loss = rc->loss),
                 LM_OK);
    int n = (int)rc->x.dims[0];
    double v[4] = {NAN, NAN, NAN, NAN};
    CHECK(lm_evaluate(m, x, y, &v[0], 1, .batch_size = n, .verbose = LM_SILENT) >= 1);
    CHECK(lm_evaluate(m, x, y, &v[1], 1, .batch_size = n / 2, .verbose = LM_SILENT) >= 1);
    CHECK(lm_test_on_batch(m, x, y, NULL, &v[2], 1) >= 1);
    CHECK(lm_train_on_batch(m, x, y, NULL, &v[3], 1) >= 1);
    CHECK_MSG(lm_model_status(m) == LM_OK, "%s: %s", rc->name, lm_model_error(m));
    static const char *const what[4] = {"evaluate", "evaluate (2 batches)", "test_on_batch",
                                        "train_on_batch"};
    for (int i = 0; ref && i < 4; i++) {
        double want = lm_tensor_get(ref, i);
        CHECK_MSG(fabs(v[i] - want) <= 1e-5 * fmax(1.0, fabs(want)), "%s %s: %.8g, Keras %.8g",
                  rc->name, what[i], v[i], want);
        if (getenv("LM_VERBOSE"))
            fprintf(stderr, "  %-22s %-22s %.8g (Keras %.8g)\n", rc->name, what[i], v[i], want);
    }
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_tensor_free(ref);
    lm_model_free(m);
}

static void test_keras_losses(void) {
    static const rcase cases[] = {
        {"reg_dense", reg_dense, LM_SHAPE(8, 5), LM_SHAPE(8, 3), LM_MSE, 0},
        {"reg_conv_bn", reg_conv_bn, LM_SHAPE(6, 5, 5, 2), LM_SHAPE(6, 2), LM_MSE, 0},
        {"reg_embedding_frozen", reg_embedding_frozen, LM_SHAPE(8, 4), LM_SHAPE(8, 2),
         LM_CATEGORICAL_CROSSENTROPY, 10},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
}

/* By hand: Dense(1, no bias, kernel (2, 1) = [1, -2]) with kernel l1 0.5 and
 * activity l2 0.25 on x = [[1, 1], [2, 0]] (outputs -1 and 2), y = 0, MSE:
 * data loss (1 + 4) / 2 = 2.5; kernel penalty 0.5 * 3 = 1.5; activity
 * 0.25 * (1 + 4) / batch 2 = 0.625. Total 4.625. */
static void test_by_hand(void) {
    lm_model *m = lm_sequential(NULL);
    lm_ctx *ctx = lm_model_ctx(m);
    lm_add(m, lm_input(LM_SHAPE(2)));
    lm_add(m, lm_dense(1, .use_bias = LM_FALSE, .kernel_regularizer = &lm_l1(0.5),
                       .activity_regularizer = &lm_l2(0.25)));
    lm_tensor *k = lm_layer_weight(lm_model_layer(m, 0), 0);
    CHECK(k != NULL);
    if (!k) {
        lm_model_free(m);
        return;
    }
    lm_tensor_set(k, 0, 1.0);
    lm_tensor_set(k, 1, -2.0);
    const float xv[4] = {1, 1, 2, 0}, yv[2] = {0, 0};
    lm_tensor *x = lm_tensor_from_data(ctx, LM_F32, LM_SHAPE(2, 2), xv, sizeof xv);
    lm_tensor *y = lm_tensor_from_data(ctx, LM_F32, LM_SHAPE(2, 1), yv, sizeof yv);
    CHECK_STATUS(lm_compile(m, .optimizer = lm_sgd(), .loss = LM_MSE), LM_OK);
    double loss = NAN;
    CHECK(lm_test_on_batch(m, x, y, NULL, &loss, 1) >= 1);
    CHECK_NEAR(loss, 4.625, 1e-6);
    /* Frozen, the kernel is not penalised; the activity penalty stays. */
    CHECK_STATUS(lm_layer_set_trainable(lm_model_layer(m, 0), false), LM_OK);
    CHECK_STATUS(lm_compile(m, .optimizer = lm_sgd(), .loss = LM_MSE), LM_OK);
    CHECK(lm_test_on_batch(m, x, y, NULL, &loss, 1) >= 1);
    CHECK_NEAR(loss, 3.125, 1e-6);
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_model_free(m);
}

int main(void) {
    RUN(test_keras_losses);
    RUN(test_by_hand);
    return lmt_summary("test_regularizers");
}
