/* Parity of reductions, global pools and softmax with Keras 3 (references
 * from tests/keras/ref_reduce.py): forward outputs within 1e-5 and gradients
 * of sum(y * R) within 1e-4, relative (ref_max_rel_err). Inputs are fed to
 * placeholders with an unknown batch, so the backward ops take their shapes
 * at run time. */
#include "lmtest.h"
#include "refs.h"
#include <lamina/lamina.h>

#define FWD_TOL  1e-5
#define GRAD_TOL 1e-4

enum { SUM, MEAN, MAX, ARGMAX, GAP, GMP, SOFTMAX, LOG_SOFTMAX };

typedef struct pcase {
    const char *name;
    int op;
    int naxes; /* axis for argmax and softmax in axes[0] */
    int axes[3];
    bool keepdims;
} pcase;

static const pcase cases[] = {
    {"sum_last", SUM, 1, {-1}, false},
    {"sum_outer_keep", SUM, 2, {0, 2}, true},
    {"sum_all", SUM, 0, {0}, false},
    {"sum_lead", SUM, 1, {0}, false},
    {"sum_long_rows", SUM, 1, {1}, false},
    {"sum_long_cols", SUM, 1, {0}, false},
    {"mean_middle", MEAN, 1, {1}, false},
    {"mean_lead_keep", MEAN, 1, {0}, true},
    {"mean_neg_axes", MEAN, 2, {-1, -2}, false},
    {"mean_all", MEAN, 0, {0}, false},
    {"max_last", MAX, 1, {-1}, false},
    {"max_middle", MAX, 1, {1}, false},
    {"max_outer_keep", MAX, 2, {0, 2}, true},
    {"max_long", MAX, 1, {-1}, false},
    {"max_ties", MAX, 1, {-1}, false},
    {"max_ties_cols", MAX, 1, {0}, false},
    {"argmax_last", ARGMAX, 1, {-1}, false},
    {"argmax_middle", ARGMAX, 1, {1}, false},
    {"argmax_ties", ARGMAX, 1, {-1}, false},
    {"global_avg_pool2d", GAP, 0, {0}, false},
    {"global_max_pool2d", GMP, 0, {0}, false},
    {"global_avg_pool1d", GAP, 0, {0}, false},
    {"global_max_pool1d", GMP, 0, {0}, false},
    {"global_avg_pool3d", GAP, 0, {0}, false},
    {"softmax_last", SOFTMAX, 1, {-1}, false},
    {"softmax_middle", SOFTMAX, 1, {1}, false},
    {"softmax_large", SOFTMAX, 1, {-1}, false},
    {"log_softmax_last", LOG_SOFTMAX, 1, {-1}, false},
    {"log_softmax_first", LOG_SOFTMAX, 1, {0}, false},
    {"log_softmax_large", LOG_SOFTMAX, 1, {-1}, false},
};

static lm_ctx *ctx;
static double worst_fwd, worst_grad;

/* A reference array; a 0-d array (which the loader may read as (1,)) is
 * viewed as a scalar when the output is one. */
static lm_tensor *load_like(const char *cas, const char *name, lm_shape like) {
    lm_tensor *t = ref_load(ctx, "reduce", cas, name);
    if (t && like.ndim == 0 && lm_tensor_ndim(t) == 1 && lm_tensor_numel(t) == 1) {
        lm_tensor *v = lm_tensor_reshape(t, LM_SCALAR);
        lm_tensor_free(t);
        t = v;
    }
    return t;
}

static lm_node *build(lm_graph *g, const pcase *c, lm_node *x) {
    switch (c->op) {
    case SUM:
        return lm_op_sum(g, x, c->naxes, c->axes, c->keepdims);
    case MEAN:
        return lm_op_mean(g, x, c->naxes, c->axes, c->keepdims);
    case MAX:
        return lm_op_max(g, x, c->naxes, c->axes, c->keepdims);
    case ARGMAX:
        return lm_op_argmax(g, x, c->axes[0]);
    case GAP:
        return lm_op_global_avg_pool(g, x);
    case GMP:
        return lm_op_global_max_pool(g, x);
    case SOFTMAX:
        return lm_op_softmax(g, x, c->axes[0]);
    default:
        return lm_op_log_softmax(g, x, c->axes[0]);
    }
}

static void run_case(const pcase *c) {
    lm_graph *g = lm_graph_new(ctx);
    lm_tensor *x = ref_load(ctx, "reduce", c->name, "x"), *r = NULL, *want = NULL;
    lm_session *s = NULL;
    bool grad = c->op != ARGMAX;
    CHECK_MSG(x != NULL, "%s: no input", c->name);
    if (!x) goto done;
    lm_shape xs = lm_tensor_shape(x);
    xs.dims[0] = -1; /* batch known only when fed */
    lm_node *ph = lm_placeholder(g, LM_F32, xs, "x");
    lm_node *y = build(g, c, ph), *outs[2] = {y, NULL}, *rn = NULL;
    CHECK_MSG(y != NULL, "%s: build: %s", c->name, lm_graph_error(g));
    if (!y) goto done;
    if (grad) {
        r = load_like(c->name, "r", lm_node_shape(y));
        CHECK(r != NULL);
        if (!r) goto done;
        rn = lm_placeholder(g, LM_F32, lm_node_shape(y), "R");
        CHECK_STATUS(lm_gradients(g, y, rn, 1, &ph, outs + 1), LM_OK);
    }
    s = lm_session_new(g, grad ? 2 : 1, outs);
    CHECK_MSG(s != NULL, "%s: session: %s", c->name, lm_ctx_error(ctx));
    if (!s) goto done;
    CHECK_STATUS(lm_session_feed(s, ph, x), LM_OK);
    if (rn)
        CHECK_MSG(lm_session_feed(s, rn, r) == LM_OK, "%s: feed R: %s", c->name, lm_ctx_error(ctx));
    lm_status st = lm_session_run(s);
    CHECK_MSG(st == LM_OK, "%s: run: %s", c->name, lm_ctx_error(ctx));
    if (st) goto done;
    for (int k = 0; k < (grad ? 2 : 1); k++) {
        want = load_like(c->name, k ? "gx" : "y", lm_tensor_shape(lm_session_output(s, k)));
        double e = ref_max_rel_err(lm_session_output(s, k), want);
        CHECK_MSG(e <= (k ? GRAD_TOL : FWD_TOL), "%s.%s: max rel err %g", c->name, k ? "gx" : "y",
                  e);
        double *w = k ? &worst_grad : &worst_fwd;
        if (!(e <= *w)) *w = e;
        lm_tensor_free(want);
    }
done:
    lm_session_free(s);
    lm_tensor_free(x);
    lm_tensor_free(r);
    lm_graph_free(g);
}

static void parity_cases(void) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i]);
    fprintf(stderr, "worst relative error: forward %.3g, gradient %.3g\n", worst_fwd, worst_grad);
}

/* The same cases with one thread and with the portable kernel set. */
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
    return lmt_summary("parity_reduce");
}
