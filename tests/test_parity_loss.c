/* Parity of the per-sample losses with Keras 3 (references from
 * tests/keras/ref_loss.py): loss values within 1e-5 and gradients of
 * sum(y * R) for y_pred and float y_true within 1e-4, relative
 * (ref_max_rel_err). y_true and y_pred are fed to placeholders with an
 * unknown batch. */
#include "lmtest.h"
#include "refs.h"
#include <lamina/lamina.h>
#include <string.h>

#define FWD_TOL  1e-5
#define GRAD_TOL 1e-4

enum { MSE, MAE, HUBER, BCE, CCE, SCCE };

typedef struct pcase {
    const char *name;
    int loss;
    bool logits;
    float delta;
} pcase;

static const pcase cases[] = {
    {"mse", MSE, false, 0},
    {"mse_3d", MSE, false, 0},
    {"mse_expand_rank1", MSE, false, 0},
    {"mse_squeeze_pred", MSE, false, 0},
    {"mae", MAE, false, 0},
    {"mae_long", MAE, false, 0},
    {"huber", HUBER, false, 0.5f},
    {"huber_delta1", HUBER, false, 1.0f},
    {"bce", BCE, false, 0},
    {"bce_hard_labels", BCE, false, 0},
    {"bce_logits", BCE, true, 0},
    {"bce_logits_3d", BCE, true, 0},
    {"cce", CCE, false, 0},
    {"cce_soft", CCE, false, 0},
    {"cce_logits", CCE, true, 0},
    {"cce_logits_long", CCE, true, 0},
    {"scce_int32", SCCE, false, 0},
    {"scce_int32_logits", SCCE, true, 0},
    {"scce_int64_trailing1_logits", SCCE, true, 0},
    {"scce_float_labels", SCCE, false, 0},
};

static lm_ctx *ctx;
static double worst_fwd, worst_grad;

static lm_node *build(lm_graph *g, const pcase *c, lm_node *t, lm_node *p) {
    switch (c->loss) {
    case MSE:
        return lm_op_mse(g, t, p);
    case MAE:
        return lm_op_mae(g, t, p);
    case HUBER:
        return lm_op_huber(g, t, p, c->delta);
    case BCE:
        return lm_op_binary_crossentropy(g, t, p, c->logits);
    case CCE:
        return lm_op_categorical_crossentropy(g, t, p, c->logits);
    default:
        return lm_op_sparse_categorical_crossentropy(g, t, p, c->logits);
    }
}

static lm_node *ph_like(lm_graph *g, const lm_tensor *v, const char *name) {
    lm_shape s = lm_tensor_shape(v);
    s.dims[0] = -1; /* batch known only when fed */
    return lm_placeholder(g, lm_tensor_dtype(v), s, name);
}

static void run_case(const pcase *c) {
    lm_graph *g = lm_graph_new(ctx);
    lm_tensor *t = ref_load(ctx, "loss", c->name, "t"), *p = ref_load(ctx, "loss", c->name, "p");
    lm_tensor *r = ref_load(ctx, "loss", c->name, "r");
    lm_session *s = NULL;
    CHECK_MSG(t && p && r, "%s: missing references", c->name);
    if (!t || !p || !r) goto done;
    bool grad_t = lm_tensor_dtype(t) == LM_F32 && c->loss != SCCE;
    lm_node *tn = ph_like(g, t, "y_true"), *pn = ph_like(g, p, "y_pred");
    lm_node *y = build(g, c, tn, pn);
    CHECK_MSG(y != NULL, "%s: build: %s", c->name, lm_graph_error(g));
    if (!y) goto done;
    lm_node *rn = lm_placeholder(g, LM_F32, lm_node_shape(y), "R");
    lm_node *wrt[2] = {pn, tn}, *outs[3] = {y, NULL, NULL};
    CHECK_STATUS(lm_gradients(g, y, rn, grad_t ? 2 : 1, wrt, outs + 1), LM_OK);
    int nout = grad_t ? 3 : 2;
    const char *names[3] = {"y", "gp", "gt"};
    s = lm_session_new(g, nout, outs);
    CHECK_MSG(s != NULL, "%s: session: %s", c->name, lm_ctx_error(ctx));
    if (!s) goto done;
    CHECK_STATUS(lm_session_feed(s, tn, t), LM_OK);
    CHECK_STATUS(lm_session_feed(s, pn, p), LM_OK);
    CHECK_STATUS(lm_session_feed(s, rn, r), LM_OK);
    lm_status st = lm_session_run(s);
    CHECK_MSG(st == LM_OK, "%s: run: %s", c->name, lm_ctx_error(ctx));
    if (st) goto done;
    for (int k = 0; k < nout; k++) {
        lm_tensor *want = ref_load(ctx, "loss", c->name, names[k]);
        double e = ref_max_rel_err(lm_session_output(s, k), want);
        CHECK_MSG(e <= (k ? GRAD_TOL : FWD_TOL), "%s.%s: max rel err %g", c->name, names[k], e);
        double *w = k ? &worst_grad : &worst_fwd;
        if (!(e <= *w)) *w = e;
        lm_tensor_free(want);
    }
done:
    lm_session_free(s);
    lm_tensor_free(t);
    lm_tensor_free(p);
    lm_tensor_free(r);
    lm_graph_free(g);
}

static void parity_cases(void) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i]);
    fprintf(stderr, "worst relative error: loss %.3g, gradient %.3g\n", worst_fwd, worst_grad);
}

/* The same cases on one thread with the portable kernel set. */
static void parity_one_thread(void) {
    int nt = lm_ctx_threads(ctx);
    lm_ctx_set_threads(ctx, 1);
    lm_ctx_set_isa(ctx, "generic");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i]);
    lm_ctx_set_threads(ctx, nt);
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(parity_cases);
    RUN(parity_one_thread);
    lm_ctx_free(ctx);
    return lmt_summary("parity_loss");
}
