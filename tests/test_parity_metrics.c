/* Compiled metrics against keras.metrics.* (tests/keras/ref_metrics.py): the
 * running result after each of 2-3 batches, within 1e-6; and the resolution
 * of "accuracy" from the label and prediction shapes. */
#include "lmtest.h"
#include "nn/metrics.h"
#include "refs.h"

#define FAMILY "metrics"

static lm_ctx *ctx;
static double worst; /* largest relative difference seen */

static bool ref_exists(const char *cas, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/keras/%s/%s.%s.npy", ref_dir(), FAMILY, cas, name);
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

static void parity(const char *cas, lm_metric kind, int k, double threshold) {
    lm_tensor *r = ref_load(ctx, FAMILY, cas, "r");
    CHECK_MSG(r != NULL, "%s: no results", cas);
    if (!r) return;
    lm_metric_state *s = NULL;
    for (int b = 0; b < lm_tensor_numel(r); b++) {
        char pn[16], tn[16], wn[16];
        snprintf(pn, sizeof pn, "p%d", b);
        snprintf(tn, sizeof tn, "t%d", b);
        snprintf(wn, sizeof wn, "w%d", b);
        lm_tensor *p = ref_load(ctx, FAMILY, cas, pn), *t = ref_load(ctx, FAMILY, cas, tn);
        lm_tensor *w = ref_exists(cas, wn) ? ref_load(ctx, FAMILY, cas, wn) : NULL;
        CHECK(p && t);
        if (!p || !t) break;
        lm_shape ps = lm_tensor_shape(p), ts = lm_tensor_shape(t);
        int64_t n = ps.dims[0];
        if (!s) {
            lm_metric_state_ctx mc = {.loss = LM_LOSS_NONE,
                                      .pred_per_sample = lm_tensor_numel(p) / n,
                                      .true_per_sample = lm_tensor_numel(t) / n,
                                      .true_dtype = lm_tensor_dtype(t),
                                      .top_k = k,
                                      .threshold = threshold,
                                      .pred_shape = ps,
                                      .true_shape = ts};
            mc.pred_shape.dims[0] = -1;
            s = lm_metric_state_new(kind, &mc, ctx);
            CHECK_MSG(s != NULL, "%s: %s", cas, lm_ctx_error(ctx));
            if (!s) break;
        }
        lm_metric_state_update(s, lm_tensor_f32(p), lm_tensor_cdata(t), n,
                               w ? lm_tensor_f32(w) : NULL);
        double got = lm_metric_state_result(s), want = lm_tensor_get(r, b);
        worst = fmax(worst, fabs(got - want) / fmax(1.0, fabs(want)));
        CHECK_MSG(fabs(got - want) <= 1e-6 * fmax(1.0, fabs(want)), "%s batch %d: %.9g, Keras %.9g",
                  cas, b, got, want);
        lm_tensor_free(p);
        lm_tensor_free(t);
        lm_tensor_free(w);
    }
    lm_metric_state_free(s);
    lm_tensor_free(r);
}

static void test_accuracy_metrics(void) {
    parity("binary_accuracy", LM_BINARY_ACCURACY, 0, 0.5);
    parity("binary_accuracy_multilabel", LM_BINARY_ACCURACY, 0, 0.5);
    parity("binary_accuracy_rank1_labels", LM_BINARY_ACCURACY, 0, 0.3);
    parity("binary_accuracy_weighted", LM_BINARY_ACCURACY, 0, 0.7);
    parity("categorical_accuracy", LM_CATEGORICAL_ACCURACY, 0, 0.5);
    parity("categorical_accuracy_weighted", LM_CATEGORICAL_ACCURACY, 0, 0.5);
    parity("sparse_categorical_accuracy", LM_SPARSE_CATEGORICAL_ACCURACY, 0, 0.5);
    parity("sparse_categorical_accuracy_n1", LM_SPARSE_CATEGORICAL_ACCURACY, 0, 0.5);
    parity("sparse_categorical_accuracy_float", LM_SPARSE_CATEGORICAL_ACCURACY, 0, 0.5);
    parity("sparse_categorical_accuracy_seq", LM_SPARSE_CATEGORICAL_ACCURACY, 0, 0.5);
}

static void test_top_k(void) {
    parity("top_k_categorical_accuracy", LM_TOP_K_CATEGORICAL_ACCURACY, 5, 0.5);
    parity("top_k_categorical_accuracy_k2", LM_TOP_K_CATEGORICAL_ACCURACY, 2, 0.5);
    parity("sparse_top_k_categorical_accuracy", LM_SPARSE_TOP_K_CATEGORICAL_ACCURACY, 5, 0.5);
    parity("sparse_top_k_categorical_accuracy_k2", LM_SPARSE_TOP_K_CATEGORICAL_ACCURACY, 2, 0.5);
}

static void test_regression(void) {
    parity("mae", LM_METRIC_MAE, 0, 0.5);
    parity("mae_weighted", LM_METRIC_MAE, 0, 0.5);
    parity("mse", LM_METRIC_MSE, 0, 0.5);
    parity("mse_broadcast_label", LM_METRIC_MSE, 0, 0.5);
}

static void test_precision_recall(void) {
    parity("precision", LM_PRECISION, 0, 0.5);
    parity("precision_multilabel_weighted", LM_PRECISION, 0, 0.3);
    parity("recall", LM_RECALL, 0, 0.5);
    parity("recall_multilabel_weighted", LM_RECALL, 0, 0.6);
    parity("precision_empty", LM_PRECISION, 0, 0.5);
}

/* "accuracy" becomes what compile_utils.get_metric picks for these shapes:
 * checked through the values each candidate gives on data where they differ. */
static void test_accuracy_resolution(void) {
    lm_tensor *shapes = ref_load(ctx, FAMILY, "resolve", "shapes");
    lm_tensor *kinds = ref_load(ctx, FAMILY, "resolve", "kind");
    CHECK(shapes && kinds);
    if (!shapes || !kinds) return;
    const lm_metric want_kind[3] = {LM_BINARY_ACCURACY, LM_SPARSE_CATEGORICAL_ACCURACY,
                                    LM_CATEGORICAL_ACCURACY};
    for (int64_t c = 0; c < lm_tensor_dim(kinds, 0); c++) {
        lm_shape ts = {(int)lm_tensor_get(shapes, c * 8), {0}};
        lm_shape ps = {(int)lm_tensor_get(shapes, c * 8 + 4), {0}};
        for (int d = 0; d < ts.ndim; d++)
            ts.dims[d] = (int64_t)lm_tensor_get(shapes, c * 8 + 1 + d);
        for (int d = 0; d < ps.ndim; d++)
            ps.dims[d] = (int64_t)lm_tensor_get(shapes, c * 8 + 5 + d);
        int64_t n = ps.dims[0], pps = lm_shape_numel(ps) / n, tps = lm_shape_numel(ts) / n;
        lm_metric_state_ctx mc = {.pred_per_sample = pps,
                                  .true_per_sample = tps,
                                  .true_dtype = LM_F32,
                                  .top_k = 5,
                                  .threshold = 0.5,
                                  .pred_shape = ps,
                                  .true_shape = ts};
        lm_metric want = want_kind[(int)lm_tensor_get(kinds, c)];
        /* Data on which the three accuracies disagree, scored by each. */
        float *p = malloc((size_t)(n * pps) * sizeof *p),
              *t = malloc((size_t)(n * tps) * sizeof *t);
        for (int64_t i = 0; i < n * pps; i++) p[i] = (float)((i * 7 + 3) % 11) / 11.0f;
        for (int64_t i = 0; i < n * tps; i++) t[i] = (float)((i * 5 + 1) % 3 == 0);
        lm_metric_state *acc = lm_metric_state_new(LM_ACCURACY, &mc, ctx);
        lm_metric_state *ref = lm_metric_state_new(want, &mc, ctx);
        CHECK_MSG(acc && ref, "case %lld: %s", (long long)c, lm_ctx_error(ctx));
        if (acc && ref) {
            lm_metric_state_update(acc, p, t, n, NULL);
            lm_metric_state_update(ref, p, t, n, NULL);
            CHECK_MSG(lm_metric_state_result(acc) == lm_metric_state_result(ref),
                      "case %lld resolves differently from Keras", (long long)c);
            CHECK(!strcmp(lm_metric_state_name(acc), "accuracy"));
            /* and differently from the other two where they give other values */
            for (int o = 0; o < 3; o++) {
                if (want_kind[o] == want) continue;
                lm_metric_state *other = lm_metric_state_new(want_kind[o], &mc, ctx);
                if (!other) continue; /* that metric does not even fit these shapes */
                lm_metric_state_update(other, p, t, n, NULL);
                if (lm_metric_state_result(other) != lm_metric_state_result(ref))
                    CHECK(lm_metric_state_result(acc) != lm_metric_state_result(other));
                lm_metric_state_free(other);
            }
        }
        lm_metric_state_free(acc);
        lm_metric_state_free(ref);
        free(p);
        free(t);
    }
    lm_tensor_free(shapes);
    lm_tensor_free(kinds);
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(test_accuracy_metrics);
    RUN(test_top_k);
    RUN(test_regression);
    RUN(test_precision_recall);
    RUN(test_accuracy_resolution);
    lm_ctx_free(ctx);
    fprintf(stderr, "largest difference from Keras: %.3g\n", worst);
    return lmt_summary("test_parity_metrics");
}
