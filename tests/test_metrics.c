/* Metric states: names, "accuracy" resolution, hand-computed values, sample
 * weights, tie rules, errors; and the metrics a compiled model reports. */
#include "lmtest.h"
#include "nn/metrics.h"
#include <lamina/lamina.h>

static lm_ctx *ctx;

/* A context for (N, pps) predictions and (N, tps) labels, shapes unknown. */
static lm_metric_state_ctx flat(int64_t pps, int64_t tps, lm_dtype dt) {
    return (lm_metric_state_ctx){.pred_per_sample = pps,
                                 .true_per_sample = tps,
                                 .true_dtype = dt,
                                 .top_k = 5,
                                 .threshold = 0.5};
}

static void test_names(void) {
    const char *want[LM_METRIC_COUNT] = {NULL,
                                         "accuracy",
                                         "binary_accuracy",
                                         "categorical_accuracy",
                                         "sparse_categorical_accuracy",
                                         "top_k_categorical_accuracy",
                                         "sparse_top_k_categorical_accuracy",
                                         "mae",
                                         "mse",
                                         "precision",
                                         "recall"};
    for (int k = 1; k < LM_METRIC_COUNT; k++) {
        bool sparse =
            k == LM_SPARSE_CATEGORICAL_ACCURACY || k == LM_SPARSE_TOP_K_CATEGORICAL_ACCURACY;
        lm_metric_state_ctx mc = flat(4, sparse ? 1 : 4, sparse ? LM_I32 : LM_F32);
        lm_metric_state *s = lm_metric_state_new((lm_metric)k, &mc, ctx);
        CHECK_MSG(s && !strcmp(lm_metric_state_name(s), want[k]), "metric %d: %s", k,
                  s ? lm_metric_state_name(s) : lm_ctx_error(ctx));
        CHECK(lm_metric_state_result(s) == 0); /* divide_no_nan before any update */
        lm_metric_state_free(s);
    }
}

/* Without shapes: (N, 1) predictions are binary, one label per row sparse,
 * same-size labels categorical, (N, T) labels for (N, T*C) sparse per step. */
static void test_accuracy_resolution_flat(void) {
    float p1[4] = {0.9f, 0.2f, 0.6f, 0.4f}, t1[4] = {1, 0, 0, 0};
    lm_metric_state_ctx mc = flat(1, 1, LM_F32);
    lm_metric_state *s = lm_metric_state_new(LM_ACCURACY, &mc, ctx);
    lm_metric_state_update(s, p1, t1, 4, NULL);
    CHECK_NEAR(lm_metric_state_result(s), 0.75, 1e-7); /* binary: 3 of 4 */
    lm_metric_state_free(s);

    float p3[6] = {0.1f, 0.7f, 0.2f, 0.5f, 0.3f, 0.2f};
    int32_t sparse[2] = {1, 2};
    mc = flat(3, 1, LM_I32);
    s = lm_metric_state_new(LM_ACCURACY, &mc, ctx);
    lm_metric_state_update(s, p3, sparse, 2, NULL);
    CHECK_NEAR(lm_metric_state_result(s), 0.5, 1e-7); /* sparse: row 0 right, row 1 wrong */
    lm_metric_state_free(s);

    float onehot[6] = {0, 1, 0, 1, 0, 0};
    mc = flat(3, 3, LM_F32);
    s = lm_metric_state_new(LM_ACCURACY, &mc, ctx);
    lm_metric_state_update(s, p3, onehot, 2, NULL);
    CHECK_NEAR(lm_metric_state_result(s), 1.0, 1e-7); /* categorical */
    lm_metric_state_free(s);

    /* (1, 2, 3) predictions, (1, 2) labels: per-step sparse accuracy */
    int32_t steps[2] = {1, 1};
    mc = flat(6, 2, LM_I32);
    s = lm_metric_state_new(LM_ACCURACY, &mc, ctx);
    CHECK(s != NULL);
    lm_metric_state_update(s, p3, steps, 1, NULL);
    CHECK_NEAR(lm_metric_state_result(s), 0.5, 1e-7);
    lm_metric_state_free(s);

    /* with shapes, Keras's rule: (N, 4, 1) labels and predictions are binary */
    mc = flat(4, 4, LM_F32);
    mc.pred_shape = LM_SHAPE(-1, 4, 1);
    mc.true_shape = LM_SHAPE(2, 4, 1);
    s = lm_metric_state_new(LM_ACCURACY, &mc, ctx);
    float p4[4] = {0.9f, 0.1f, 0.8f, 0.3f}, t4[4] = {1, 0, 0, 0};
    lm_metric_state_update(s, p4, t4, 1, NULL);
    CHECK_NEAR(lm_metric_state_result(s), 0.75, 1e-7);
    lm_metric_state_free(s);
}

/* Weighted means over batches, zero weights, reset. */
static void test_weighted_mean(void) {
    lm_metric_state_ctx mc = flat(2, 2, LM_F32);
    lm_metric_state *s = lm_metric_state_new(LM_METRIC_MAE, &mc, ctx);
    float p[4] = {1, 2, 3, 5}, t[4] = {0, 0, 3, 3}, w[2] = {1, 3};
    lm_metric_state_update(s, p, t, 2, w); /* per-sample MAE 1.5 and 1: (1.5 + 3) / 4 */
    CHECK_NEAR(lm_metric_state_result(s), 4.5 / 4, 1e-7);
    lm_metric_state_update(s, p, t, 2, NULL); /* + (1.5 + 1) over 2 more */
    CHECK_NEAR(lm_metric_state_result(s), 7.0 / 6, 1e-7);
    lm_metric_state_reset(s);
    CHECK(lm_metric_state_result(s) == 0);
    float zero[2] = {0, 0};
    lm_metric_state_update(s, p, t, 2, zero);
    CHECK(lm_metric_state_result(s) == 0);
    lm_metric_state_free(s);

    mc = flat(2, 2, LM_F32);
    s = lm_metric_state_new(LM_METRIC_MSE, &mc, ctx);
    lm_metric_state_update(s, p, t, 2, NULL); /* (1 + 4) / 2 and (0 + 4) / 2 */
    CHECK_NEAR(lm_metric_state_result(s), 2.25, 1e-7);
    lm_metric_state_free(s);

    /* one label broadcast over the sample's predictions ((N, 1) labels) */
    mc = flat(2, 1, LM_F32);
    s = lm_metric_state_new(LM_METRIC_MAE, &mc, ctx);
    float t1[2] = {1, 4};
    lm_metric_state_update(s, p, t1, 2, NULL); /* (0 + 1) / 2, (1 + 1) / 2 */
    CHECK_NEAR(lm_metric_state_result(s), 0.75, 1e-7);
    lm_metric_state_free(s);
}

/* binary_accuracy: y_pred > threshold (strictly), int labels too. */
static void test_binary_threshold(void) {
    lm_metric_state_ctx mc = flat(1, 1, LM_I32);
    mc.threshold = 0.25;
    lm_metric_state *s = lm_metric_state_new(LM_BINARY_ACCURACY, &mc, ctx);
    float p[4] = {0.25f, 0.26f, 0.0f, 1.0f};
    int32_t t[4] = {0, 1, 0, 0};
    lm_metric_state_update(s, p, t, 4, NULL);
    CHECK_NEAR(lm_metric_state_result(s), 0.75, 1e-7);
    lm_metric_state_free(s);
}

/* Ties: argmax takes the first maximum; top-k counts only strictly larger
 * scores against the target; a NaN target score never makes the top k. */
static void test_ties(void) {
    float p[8] = {0.4f, 0.4f, 0.1f, 0.1f, 0.3f, 0.3f, 0.3f, 0.1f};
    int32_t t[2] = {1, 2};
    lm_metric_state_ctx mc = flat(4, 1, LM_I32);
    lm_metric_state *acc = lm_metric_state_new(LM_SPARSE_CATEGORICAL_ACCURACY, &mc, ctx);
    lm_metric_state_update(acc, p, t, 2, NULL);
    CHECK(lm_metric_state_result(acc) == 0); /* argmaxes are 0 and 0 */
    lm_metric_state_free(acc);
    mc.top_k = 1;
    lm_metric_state *top = lm_metric_state_new(LM_SPARSE_TOP_K_CATEGORICAL_ACCURACY, &mc, ctx);
    lm_metric_state_update(top, p, t, 2, NULL);
    CHECK_NEAR(lm_metric_state_result(top), 1.0, 1e-7); /* both tie with the best */
    float q[4] = {0.2f, NAN, 0.1f, 0.0f};
    int32_t tq[1] = {1};
    lm_metric_state_reset(top);
    lm_metric_state_update(top, q, tq, 1, NULL);
    CHECK(lm_metric_state_result(top) == 0);
    lm_metric_state_free(top);

    float onehot[4] = {0, 1, 0, 0};
    mc = flat(4, 4, LM_F32);
    mc.top_k = 2;
    top = lm_metric_state_new(LM_TOP_K_CATEGORICAL_ACCURACY, &mc, ctx);
    float r[4] = {0.5f, 0.1f, 0.2f, 0.2f}; /* target 1 is 4th of 4 */
    lm_metric_state_update(top, r, onehot, 1, NULL);
    CHECK(lm_metric_state_result(top) == 0);
    lm_metric_state_free(top);
}

static void test_precision_recall(void) {
    float p[6] = {0.9f, 0.6f, 0.4f, 0.5f, 0.8f, 0.1f};
    float t[6] = {1, 0, 1, 1, 1, 0};
    float w[2] = {2, 1};
    lm_metric_state_ctx mc = flat(3, 3, LM_F32);
    lm_metric_state *pr = lm_metric_state_new(LM_PRECISION, &mc, ctx);
    lm_metric_state *rc = lm_metric_state_new(LM_RECALL, &mc, ctx);
    /* sample 0 (w 2): tp 1, fp 1, fn 1; sample 1 (w 1): 0.5 is not > 0.5: tp 1, fn 1 */
    lm_metric_state_update(pr, p, t, 2, w);
    lm_metric_state_update(rc, p, t, 2, w);
    CHECK_NEAR(lm_metric_state_result(pr), 3.0 / 5, 1e-7);
    CHECK_NEAR(lm_metric_state_result(rc), 3.0 / 6, 1e-7);
    lm_metric_state_free(pr);
    lm_metric_state_free(rc);
}

static void test_errors(void) {
    lm_metric_state_ctx mc = flat(10, 3, LM_I32);
    CHECK(lm_metric_state_new(LM_SPARSE_CATEGORICAL_ACCURACY, &mc, ctx) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "sparse_categorical_accuracy");
    CHECK_CONTAINS(lm_ctx_error(ctx), "(None, 10)");
    mc = flat(3, 1, LM_F32);
    CHECK(lm_metric_state_new(LM_PRECISION, &mc, ctx) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "precision: labels of shape (None,)");
    mc = flat(4, 2, LM_F32);
    mc.pred_shape = LM_SHAPE(-1, 4);
    mc.true_shape = LM_SHAPE(8, 2);
    CHECK(lm_metric_state_new(LM_METRIC_MAE, &mc, ctx) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx),
                   "mae: labels of shape (8, 2) do not fit predictions of shape (None, 4)");
    mc = flat(4, 4, LM_U8);
    CHECK(lm_metric_state_new(LM_BINARY_ACCURACY, &mc, ctx) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "float32 or int32");
    mc = flat(4, 4, LM_F32);
    CHECK(lm_metric_state_new((lm_metric)99, &mc, ctx) == NULL);
    CHECK(lm_metric_state_new(LM_METRIC_NONE, &mc, ctx) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "unknown metric");
    /* NULL-safe */
    lm_metric_state_update(NULL, NULL, NULL, 1, NULL);
    lm_metric_state_reset(NULL);
    lm_metric_state_free(NULL);
    CHECK(isnan(lm_metric_state_result(NULL)));
    CHECK(!strcmp(lm_metric_state_name(NULL), ""));
}

/* What evaluate reports equals the metrics computed from predict's outputs. */
static void test_compiled_model(void) {
    lm_model *m = lm_sequential("metrics_model");
    lm_add(m, lm_dense(4, .activation = LM_SOFTMAX, .input_shape = LM_SHAPE(3)));
    CHECK_STATUS(
        lm_compile(m, .loss = LM_SPARSE_CATEGORICAL_CROSSENTROPY,
                   .metrics = LM_METRICS(LM_ACCURACY, LM_SPARSE_TOP_K_CATEGORICAL_ACCURACY),
                   .top_k = 2),
        LM_OK);
    enum { N = 50 };
    lm_tensor *x = lm_tensor_new(lm_model_ctx(m), LM_F32, LM_SHAPE(N, 3));
    lm_tensor *y = lm_tensor_new(lm_model_ctx(m), LM_I32, LM_SHAPE(N));
    float *xp = lm_tensor_f32(x);
    int32_t *yp = lm_tensor_data(y);
    for (int i = 0; i < N * 3; i++) xp[i] = (float)((i * 37) % 17) / 8.0f - 1.0f;
    for (int i = 0; i < N; i++) yp[i] = (i * 7) % 4;
    double out[4] = {0};
    int n = lm_evaluate(m, x, y, out, 4, .batch_size = 16, .verbose = LM_SILENT);
    CHECK_MSG(n == 3, "evaluate: %d (%s)", n, lm_model_error(m));
    CHECK(n == 3 && !strcmp(lm_model_metric_name(m, 1), "accuracy") &&
          !strcmp(lm_model_metric_name(m, 2), "sparse_top_k_categorical_accuracy"));
    lm_tensor *pred = lm_predict(m, x, .verbose = LM_SILENT);
    CHECK(pred != NULL);
    if (pred && n == 3) {
        const float *pp = lm_tensor_f32(pred);
        int hit1 = 0, hit2 = 0;
        for (int i = 0; i < N; i++) {
            int best = 0, larger = 0;
            for (int c = 1; c < 4; c++)
                if (pp[i * 4 + c] > pp[i * 4 + best]) best = c;
            for (int c = 0; c < 4; c++) larger += pp[i * 4 + c] > pp[i * 4 + yp[i]];
            hit1 += best == yp[i];
            hit2 += larger < 2;
        }
        CHECK_NEAR(out[1], (double)hit1 / N, 1e-6);
        CHECK_NEAR(out[2], (double)hit2 / N, 1e-6);
    }
    lm_tensor_free(pred);
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_model_free(m);
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(test_names);
    RUN(test_accuracy_resolution_flat);
    RUN(test_weighted_mean);
    RUN(test_binary_threshold);
    RUN(test_ties);
    RUN(test_precision_recall);
    RUN(test_errors);
    RUN(test_compiled_model);
    lm_ctx_free(ctx);
    return lmt_summary("test_metrics");
}
