/* Parity with Keras for convolution and pooling: outputs (1e-5) and the
 * gradients with respect to the input and the kernel (1e-4) for the arrays
 * written by tests/keras/ref_conv.py. */
#include "lmtest.h"
#include "refs.h"
#include <lamina/ops.h>

#define FAM "conv"

static lm_ctx *ctx;

typedef struct {
    const char *name;
    int rank;
    lm_conv_opts o;
} conv_case;

static const conv_case conv_cases[] = {
    {"conv2d_valid", 2, {.padding = LM_PAD_VALID}},
    {"conv2d_same_s2", 2, {.strides = {2, 2}, .padding = LM_PAD_SAME}},
    {"conv2d_same_k4_s2", 2, {.strides = {2, 2}, .padding = LM_PAD_SAME}},
    {"conv2d_dilation2", 2, {.dilation = {2, 2}, .padding = LM_PAD_SAME}},
    {"conv2d_dilation_valid", 2, {.dilation = {2, 3}, .padding = LM_PAD_VALID}},
    {"conv2d_groups2", 2, {.groups = 2, .padding = LM_PAD_VALID}},
    {"conv2d_strides_12", 2, {.strides = {1, 2}, .padding = LM_PAD_SAME}},
    {"conv2d_cin1", 2, {.padding = LM_PAD_VALID}},
    {"conv2d_pointwise", 2, {.padding = LM_PAD_VALID}},
    {"conv1d_valid", 1, {.padding = LM_PAD_VALID}},
    {"conv1d_causal_d2", 1, {.dilation = {2}, .padding = LM_PAD_CAUSAL}},
    {"conv1d_same_s2", 1, {.strides = {2}, .padding = LM_PAD_SAME}},
    {"conv1d_groups2", 1, {.groups = 2, .padding = LM_PAD_VALID}},
};

typedef struct {
    const char *name;
    int kind; /* 0 max2d, 1 avg2d, 2 max1d, 3 avg1d */
    lm_pool_opts o;
} pool_case;

static const pool_case pool_cases[] = {
    {"max2d_valid", 0, {.size = {2, 2}, .padding = LM_PAD_VALID}},
    {"max2d_same_s2", 0, {.size = {3, 3}, .strides = {2, 2}, .padding = LM_PAD_SAME}},
    {"max2d_strides", 0, {.size = {2, 3}, .strides = {1, 2}, .padding = LM_PAD_VALID}},
    {"avg2d_same_s2", 1, {.size = {3, 3}, .strides = {2, 2}, .padding = LM_PAD_SAME}},
    {"avg2d_valid", 1, {.size = {2, 3}, .strides = {2, 1}, .padding = LM_PAD_VALID}},
    {"avg2d_same", 1, {.size = {2, 2}, .strides = {1, 1}, .padding = LM_PAD_SAME}},
    {"max1d_same_s2", 2, {.size = {3}, .strides = {2}, .padding = LM_PAD_SAME}},
    {"max1d_valid", 2, {.size = {2}, .padding = LM_PAD_VALID}},
    {"avg1d_same_s2", 3, {.size = {3}, .strides = {2}, .padding = LM_PAD_SAME}},
    {"avg1d_valid", 3, {.size = {2}, .padding = LM_PAD_VALID}},
};

static double worst_fwd, worst_grad;

/* Compares a Lamina output with reference <case>.<name>. */
static void compare(const char *cas, const char *name, lm_tensor *got, double tol) {
    lm_tensor *want = ref_load(ctx, FAM, cas, name);
    double e = ref_max_rel_err(got, want);
    CHECK_MSG(e <= tol, "%s.%s: max relative error %g > %g", cas, name, e, tol);
    double *w = tol < 1e-4 ? &worst_fwd : &worst_grad;
    if (e > *w) *w = e;
    lm_tensor_free(want);
}

/* A variable holding a copy of the reference array <case>.<name>. */
static lm_node *ref_variable(lm_graph *g, const char *cas, const char *name) {
    lm_tensor *t = ref_load(ctx, FAM, cas, name);
    if (!t) return NULL;
    lm_node *v = lm_variable(g, name, LM_F32, lm_tensor_shape(t));
    if (v) lm_tensor_assign(lm_variable_value(v), t);
    lm_tensor_free(t);
    return v;
}

/* Runs y and its gradients with respect to xs for upstream <case>.r. */
static void run_and_compare(lm_graph *g, const char *cas, lm_node *y, int n, lm_node **xs,
                            const char *const *gnames) {
    lm_tensor *rt = ref_load(ctx, FAM, cas, "r");
    CHECK_MSG(y && rt, "%s: build failed: %s", cas, lm_graph_error(g));
    if (!y || !rt) {
        lm_tensor_free(rt);
        return;
    }
    lm_node *grads[2], *outs[3] = {y};
    CHECK_STATUS(lm_gradients(g, y, lm_constant(g, rt), n, xs, grads), LM_OK);
    for (int i = 0; i < n; i++) outs[i + 1] = grads[i];
    lm_session *s = lm_session_new(g, n + 1, outs);
    CHECK_MSG(s, "%s: session: %s", cas, lm_ctx_error(ctx));
    if (s) {
        CHECK_STATUS(lm_session_run(s), LM_OK);
        compare(cas, "y", lm_session_output(s, 0), 1e-5);
        for (int i = 0; i < n; i++) compare(cas, gnames[i], lm_session_output(s, i + 1), 1e-4);
    }
    lm_session_free(s);
    lm_tensor_free(rt);
}

static void conv_parity(void) {
    static const char *const gnames[2] = {"gx", "gw"};
    for (size_t i = 0; i < sizeof conv_cases / sizeof *conv_cases; i++) {
        const conv_case *c = &conv_cases[i];
        lm_graph *g = lm_graph_new(ctx);
        lm_node *x = ref_variable(g, c->name, "x"), *w = ref_variable(g, c->name, "w");
        lm_node *y = c->rank == 2 ? lm_op_conv2d(g, x, w, c->o) : lm_op_conv1d(g, x, w, c->o);
        lm_node *xs[2] = {x, w};
        run_and_compare(g, c->name, y, 2, xs, gnames);
        lm_graph_free(g);
    }
}

static void pool_parity(void) {
    static const char *const gnames[1] = {"gx"};
    for (size_t i = 0; i < sizeof pool_cases / sizeof *pool_cases; i++) {
        const pool_case *c = &pool_cases[i];
        lm_graph *g = lm_graph_new(ctx);
        lm_node *x = ref_variable(g, c->name, "x"), *y = NULL;
        switch (c->kind) {
        case 0:
            y = lm_op_max_pool2d(g, x, c->o);
            break;
        case 1:
            y = lm_op_avg_pool2d(g, x, c->o);
            break;
        case 2:
            y = lm_op_max_pool1d(g, x, c->o);
            break;
        default:
            y = lm_op_avg_pool1d(g, x, c->o);
            break;
        }
        run_and_compare(g, c->name, y, 1, &x, gnames);
        lm_graph_free(g);
    }
}

/* The same references on one thread and on the generic kernels. */
static void single_thread_generic(void) {
    CHECK_STATUS(lm_ctx_set_threads(ctx, 1), LM_OK);
    CHECK_STATUS(lm_ctx_set_isa(ctx, "generic"), LM_OK);
    conv_parity();
    pool_parity();
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(conv_parity);
    RUN(pool_parity);
    RUN(single_thread_generic);
    printf("conv parity: worst relative error %.3g (outputs), %.3g (gradients)\n", worst_fwd,
           worst_grad);
    lm_ctx_free(ctx);
    return lmt_summary("parity_conv");
}
