/* Parity of batch_norm, layer_norm and dropout with Keras 3 (references from
 * tests/keras/ref_norm.py): outputs within 1e-5, gradients within 1e-4,
 * moving statistics after one training call within 1e-5. */
#include "lmtest.h"
#include "refs.h"
#include <lamina/lamina.h>

#define FAM "norm"

static lm_ctx *ctx;

/* Whether the case has an optional array (gamma, beta). */
static bool has(const char *cas, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/keras/%s/%s.%s.npy", ref_dir(), FAM, cas, name);
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* A variable holding a copy of t (NULL t gives NULL). */
static lm_node *var_of(lm_graph *g, const char *name, const lm_tensor *t) {
    if (!t) return NULL;
    lm_node *v = lm_variable(g, name, LM_F32, lm_tensor_shape(t));
    if (v) lm_tensor_assign(lm_variable_value(v), t);
    return v;
}

static void check_err(const char *cas, const char *what, const lm_tensor *got,
                      const lm_tensor *want, double tol) {
    double e = ref_max_rel_err(got, want);
    CHECK_MSG(e <= tol, "%s %s: max rel err %.3g > %.1g", cas, what, e, tol);
    fprintf(stderr, "  %-20s %-8s max rel err %.2e\n", cas, what, e);
}

/* Builds the normalisation of case `cas`, its gradients for the fixed R, runs
 * it once and compares everything the reference holds. */
static void norm_case(const char *cas, bool batch, bool training) {
    lm_graph *g = lm_graph_new(ctx);
    lm_tensor *x = ref_load(ctx, FAM, cas, "x"), *prm = ref_load(ctx, FAM, cas, "params");
    lm_tensor *r = ref_load(ctx, FAM, cas, "r"), *y = ref_load(ctx, FAM, cas, "y");
    lm_tensor *gx = ref_load(ctx, FAM, cas, "gx");
    bool hg = has(cas, "gamma"), hb = has(cas, "beta");
    lm_tensor *gamma = hg ? ref_load(ctx, FAM, cas, "gamma") : NULL;
    lm_tensor *beta = hb ? ref_load(ctx, FAM, cas, "beta") : NULL;
    lm_tensor *gg = hg ? ref_load(ctx, FAM, cas, "ggamma") : NULL;
    lm_tensor *gb = hb ? ref_load(ctx, FAM, cas, "gbeta") : NULL;
    lm_tensor *mm = NULL, *mv = NULL, *mm_new = NULL, *mv_new = NULL;
    if (batch) {
        mm = ref_load(ctx, FAM, cas, "mm");
        mv = ref_load(ctx, FAM, cas, "mv");
        mm_new = ref_load(ctx, FAM, cas, "mm_new");
        mv_new = ref_load(ctx, FAM, cas, "mv_new");
    }
    CHECK_MSG(x && prm && r && y && gx && (!batch || (mm && mv && mm_new && mv_new)) &&
                  (!hg || (gamma && gg)) && (!hb || (beta && gb)),
              "%s: missing reference arrays", cas);
    if (!x || !prm || !r || !y || !gx || (batch && (!mm || !mv || !mm_new || !mv_new))) goto out;

    lm_node *xn = var_of(g, "x", x), *gn = var_of(g, "gamma", gamma), *bn = var_of(g, "beta", beta);
    lm_node *out;
    lm_node *mmn = NULL, *mvn = NULL;
    if (batch) {
        mmn = var_of(g, "moving_mean", mm);
        mvn = var_of(g, "moving_var", mv);
        out = lm_op_batch_norm(g, xn, gn, bn, mmn, mvn, (float)lm_tensor_get(prm, 0),
                               (float)lm_tensor_get(prm, 1));
    } else {
        out = lm_op_layer_norm(g, xn, gn, bn, (float)lm_tensor_get(prm, 0));
    }
    lm_node *wrt[3] = {xn}, *grads[3] = {NULL};
    int nw = 1;
    if (gn) wrt[nw++] = gn;
    if (bn) wrt[nw++] = bn;
    lm_node *rn = lm_constant(g, r);
    CHECK_MSG(out && rn, "%s: build failed: %s", cas, lm_graph_error(g));
    if (!out || !rn) goto out;
    CHECK_STATUS(lm_gradients(g, out, rn, nw, wrt, grads), LM_OK);
    lm_node *outs[4] = {out, grads[0], grads[1], grads[2]};
    lm_session *s = lm_session_new(g, nw + 1, outs);
    CHECK(s != NULL);
    if (!s) goto out;
    lm_session_set_training(s, training);
    CHECK_STATUS(lm_session_run(s), LM_OK);
    check_err(cas, "y", lm_session_output(s, 0), y, 1e-5);
    check_err(cas, "dx", lm_session_output(s, 1), gx, 1e-4);
    int k = 2;
    if (gn) check_err(cas, "dgamma", lm_session_output(s, k++), gg, 1e-4);
    if (bn) check_err(cas, "dbeta", lm_session_output(s, k++), gb, 1e-4);
    if (batch) {
        check_err(cas, "mm_new", lm_variable_value(mmn), mm_new, 1e-5);
        check_err(cas, "mv_new", lm_variable_value(mvn), mv_new, 1e-5);
    }
    lm_session_free(s);
out:;
    lm_tensor *all[] = {x, prm, r, y, gx, gamma, beta, gg, gb, mm, mv, mm_new, mv_new};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) lm_tensor_free(all[i]);
    lm_graph_free(g);
}

static void batch_norm_parity(void) {
    norm_case("bn_train", true, true);
    norm_case("bn_infer", true, false);
    norm_case("bn_train_noscale", true, true);
    norm_case("bn_train_plain", true, true);
    norm_case("bn_train_offset", true, true);
    norm_case("bn_infer_nocenter", true, false);
}

static void layer_norm_parity(void) {
    norm_case("ln", false, true);
    norm_case("ln", false, false); /* layer norm ignores the training flag */
    norm_case("ln_noscale", false, false);
    norm_case("ln_nocenter", false, false);
    norm_case("ln_plain", false, false);
    norm_case("ln_offset", false, false);
}

/* Keras's mask is its own; compare the scaling of kept values, the kept
 * fraction, and the identity at inference. */
static void dropout_semantics(void) {
    lm_tensor *x = ref_load(ctx, FAM, "dropout", "x"),
              *prm = ref_load(ctx, FAM, "dropout", "params");
    lm_tensor *yt = ref_load(ctx, FAM, "dropout", "y_train");
    lm_tensor *yi = ref_load(ctx, FAM, "dropout", "y_infer");
    CHECK(x && prm && yt && yi);
    if (!x || !prm || !yt || !yi) goto out;
    float rate = (float)lm_tensor_get(prm, 0);
    lm_graph *g = lm_graph_new(ctx);
    lm_node *xp = lm_placeholder(g, LM_F32, lm_tensor_shape(x), "x");
    lm_node *y = lm_op_dropout(g, xp, rate, 7);
    lm_session *s = lm_session_new(g, 1, &y);
    CHECK(s != NULL);
    if (s) {
        lm_session_feed(s, xp, x);
        lm_session_set_training(s, true);
        CHECK_STATUS(lm_session_run(s), LM_OK);
        lm_tensor *o = lm_session_output(s, 0);
        int64_t n = lm_tensor_numel(x), kept = 0, kept_k = 0, both = 0;
        double worst = 0;
        for (int64_t i = 0; i < n; i++) {
            double a = lm_tensor_get(o, i), b = lm_tensor_get(yt, i), xv = lm_tensor_get(x, i);
            kept += a != 0;
            kept_k += b != 0;
            if (a != 0 && b != 0) {
                both++;
                worst = fmax(worst, fabs(a - b) / fabs(b));
            }
            if (a != 0) CHECK(a == (float)xv * (1.0f / (1.0f - rate)));
        }
        CHECK_MSG(worst == 0, "kept values differ from Keras by %.3g", worst);
        CHECK(both > 0);
        CHECK_NEAR((double)kept / (double)n, 1.0 - rate, 0.04);
        CHECK_NEAR((double)kept_k / (double)n, 1.0 - rate, 0.04);
        fprintf(stderr, "  dropout: kept %.4f (Keras %.4f), scaling err %.2e\n",
                (double)kept / (double)n, (double)kept_k / (double)n, worst);
        lm_session_set_training(s, false);
        CHECK_STATUS(lm_session_run(s), LM_OK);
        CHECK(ref_max_rel_err(lm_session_output(s, 0), yi) == 0);
    }
    lm_session_free(s);
    lm_graph_free(g);
out:
    lm_tensor_free(x);
    lm_tensor_free(prm);
    lm_tensor_free(yt);
    lm_tensor_free(yi);
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(batch_norm_parity);
    RUN(layer_norm_parity);
    RUN(dropout_semantics);
    lm_ctx_free(ctx);
    return lmt_summary("parity_norm");
}
