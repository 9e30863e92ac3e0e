/* Parity of the elementwise ops and activations with Keras 3 (JAX backend):
 * outputs within 1e-5 and input gradients (vector-Jacobian products for the
 * saved upstream R) within 1e-4, relative to max(1, |reference|), for every
 * kernel set this CPU runs. References: tests/keras/ref_elementwise.py. */
#include <lamina/lamina.h>
#include <string.h>
#include "lmtest.h"
#include "refs.h"

#define FAM   "elementwise"
#define TOL_Y 1e-5
#define TOL_G 1e-4

static lm_ctx *ctx;

typedef struct pcase {
    const char *name;
    const char *op; /* op name, or "act:<keras name>" for lm_op_activation */
    float f0, f1;
} pcase;

static const pcase binary_cases[] = {
    {"add_same", "add", 0, 0},        {"add_row", "add", 0, 0},
    {"add_mid", "add", 0, 0},         {"add_outer", "add", 0, 0},
    {"add_scalar", "add", 0, 0},      {"sub_row", "sub", 0, 0},
    {"sub_row_first", "sub", 0, 0},   {"mul_row", "mul", 0, 0},
    {"mul_col", "mul", 0, 0},         {"div_row", "div", 0, 0},
    {"div_outer", "div", 0, 0},       {"maximum_ties", "maximum", 0, 0},
    {"maximum_row", "maximum", 0, 0}, {"minimum_ties", "minimum", 0, 0},
    {"minimum_col", "minimum", 0, 0},
};

static const pcase unary_cases[] = {
    {"neg", "neg", 0, 0},
    {"square", "square", 0, 0},
    {"sqrt", "sqrt", 0, 0},
    {"exp", "exp", 0, 0},
    {"log", "log", 0, 0},
    {"abs", "abs", 0, 0},
    {"pow_2", "pow", 2, 0},
    {"pow_3", "pow", 3, 0},
    {"pow_half", "pow", 0.5f, 0},
    {"pow_inv", "pow", -1, 0},
    {"pow_general", "pow", 1.7f, 0},
    {"pow_neg_general", "pow", -2.5f, 0},
    {"scale", "scale", -1.5f, 0.25f},
    {"clip", "clip", -0.5f, 0.4f},
    {"relu", "relu", 0, 0},
    {"leaky_relu", "leaky_relu", 0.2f, 0},
    {"leaky_relu_03", "leaky_relu", 0.3f, 0},
    {"elu", "elu", 1, 0},
    {"elu_07", "elu", 0.7f, 0},
    {"selu", "selu", 0, 0},
    {"gelu_exact", "gelu", 0, 0},
    {"gelu_tanh", "gelu", 1, 0},
    {"sigmoid", "sigmoid", 0, 0},
    {"hard_sigmoid", "hard_sigmoid", 0, 0},
    {"tanh", "tanh", 0, 0},
    {"softplus", "softplus", 0, 0},
    {"softsign", "softsign", 0, 0},
    {"silu", "silu", 0, 0},
    {"exponential", "exp", 0, 0},
    {"wide_sigmoid", "sigmoid", 0, 0},
    {"wide_tanh", "tanh", 0, 0},
    {"wide_softplus", "softplus", 0, 0},
    {"wide_silu", "silu", 0, 0},
    {"wide_gelu_exact", "gelu", 0, 0},
    {"wide_gelu_tanh", "gelu", 1, 0},
    {"wide_elu", "elu", 1, 0},
    {"wide_selu", "selu", 0, 0},
    {"wide_exp", "exp", 0, 0},
    {"wide_log", "log", 0, 0},
    {"act_linear", "act:linear", 0, 0},
    {"act_relu", "act:relu", 0, 0},
    {"act_sigmoid", "act:sigmoid", 0, 0},
    {"act_tanh", "act:tanh", 0, 0},
    {"act_softmax", "act:softmax", 0, 0},
    {"act_leaky_relu", "act:leaky_relu", 0, 0},
    {"act_elu", "act:elu", 0, 0},
    {"act_selu", "act:selu", 0, 0},
    {"act_gelu", "act:gelu", 0, 0},
    {"act_hard_sigmoid", "act:hard_sigmoid", 0, 0},
    {"act_softplus", "act:softplus", 0, 0},
    {"act_softsign", "act:softsign", 0, 0},
    {"act_silu", "act:silu", 0, 0},
    {"act_swish", "act:swish", 0, 0},
    {"act_exponential", "act:exponential", 0, 0},
    {"act_log_softmax", "act:log_softmax", 0, 0},
};

static lm_node *build(lm_graph *g, const pcase *c, lm_node **x) {
    const char *op = c->op;
    if (!strncmp(op, "act:", 4)) {
        int a = lm_activation_from_name(op + 4);
        CHECK_MSG(a >= 0, "activation %s unknown", op + 4);
        return a < 0 ? NULL : lm_op_activation(g, x[0], (lm_activation)a);
    }
    if (!strcmp(op, "add")) return lm_op_add(g, x[0], x[1]);
    if (!strcmp(op, "sub")) return lm_op_sub(g, x[0], x[1]);
    if (!strcmp(op, "mul")) return lm_op_mul(g, x[0], x[1]);
    if (!strcmp(op, "div")) return lm_op_div(g, x[0], x[1]);
    if (!strcmp(op, "maximum")) return lm_op_maximum(g, x[0], x[1]);
    if (!strcmp(op, "minimum")) return lm_op_minimum(g, x[0], x[1]);
    if (!strcmp(op, "neg")) return lm_op_neg(g, x[0]);
    if (!strcmp(op, "square")) return lm_op_square(g, x[0]);
    if (!strcmp(op, "sqrt")) return lm_op_sqrt(g, x[0]);
    if (!strcmp(op, "exp")) return lm_op_exp(g, x[0]);
    if (!strcmp(op, "log")) return lm_op_log(g, x[0]);
    if (!strcmp(op, "abs")) return lm_op_abs(g, x[0]);
    if (!strcmp(op, "pow")) return lm_op_pow(g, x[0], c->f0);
    if (!strcmp(op, "scale")) return lm_op_scale(g, x[0], c->f0, c->f1);
    if (!strcmp(op, "clip")) return lm_op_clip(g, x[0], c->f0, c->f1);
    if (!strcmp(op, "relu")) return lm_op_relu(g, x[0]);
    if (!strcmp(op, "leaky_relu")) return lm_op_leaky_relu(g, x[0], c->f0);
    if (!strcmp(op, "elu")) return lm_op_elu(g, x[0], c->f0);
    if (!strcmp(op, "selu")) return lm_op_selu(g, x[0]);
    if (!strcmp(op, "gelu")) return lm_op_gelu(g, x[0], c->f0 != 0);
    if (!strcmp(op, "sigmoid")) return lm_op_sigmoid(g, x[0]);
    if (!strcmp(op, "hard_sigmoid")) return lm_op_hard_sigmoid(g, x[0]);
    if (!strcmp(op, "tanh")) return lm_op_tanh(g, x[0]);
    if (!strcmp(op, "softplus")) return lm_op_softplus(g, x[0]);
    if (!strcmp(op, "softsign")) return lm_op_softsign(g, x[0]);
    if (!strcmp(op, "silu")) return lm_op_silu(g, x[0]);
    return NULL;
}

static double worst_y, worst_g;
static const char *worst_y_case = "", *worst_g_case = "";

/* Runs one case: n inputs named in[], gradients named gin[]. */
static void run_case(const pcase *c, int n, const char *const *in, const char *const *gin) {
    lm_tensor *xv[2] = {NULL}, *gref[2] = {NULL};
    lm_tensor *yref = ref_load(ctx, FAM, c->name, "y"), *r = ref_load(ctx, FAM, c->name, "r");
    bool ok = yref && r;
    for (int i = 0; i < n; i++) {
        xv[i] = ref_load(ctx, FAM, c->name, in[i]);
        gref[i] = ref_load(ctx, FAM, c->name, gin[i]);
        ok = ok && xv[i] && gref[i];
    }
    CHECK_MSG(ok, "%s: reference arrays missing", c->name);
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x[2] = {NULL}, *grads[2] = {NULL};
    for (int i = 0; ok && i < n; i++)
        x[i] = lm_placeholder(g, LM_F32, lm_tensor_shape(xv[i]), in[i]);
    lm_node *y = ok ? build(g, c, x) : NULL;
    lm_session *s = NULL;
    if (y && lm_gradients(g, y, lm_constant(g, r), n, x, grads) == LM_OK) {
        lm_node *outs[3] = {y, grads[0], grads[1]};
        s = lm_session_new(g, n + 1, outs);
    }
    CHECK_MSG(s, "%s: %s / %s", c->name, lm_graph_error(g), lm_ctx_error(ctx));
    for (int i = 0; s && i < n; i++) lm_session_feed(s, x[i], xv[i]);
    if (s && lm_session_run(s) == LM_OK) {
        double ey = ref_max_rel_err(lm_session_output(s, 0), yref);
        CHECK_MSG(ey <= TOL_Y, "%s [%s]: output error %g", c->name, lm_ctx_isa(ctx), ey);
        if (!(ey <= worst_y)) worst_y = ey, worst_y_case = c->name;
        for (int i = 0; i < n; i++) {
            double eg = ref_max_rel_err(lm_session_output(s, i + 1), gref[i]);
            CHECK_MSG(eg <= TOL_G, "%s [%s]: gradient %s error %g", c->name, lm_ctx_isa(ctx),
                      gin[i], eg);
            if (!(eg <= worst_g)) worst_g = eg, worst_g_case = c->name;
        }
    } else if (s) {
        CHECK_MSG(false, "%s: run failed: %s", c->name, lm_ctx_error(ctx));
    }
    lm_session_free(s);
    lm_graph_free(g);
    for (int i = 0; i < 2; i++) {
        lm_tensor_free(xv[i]);
        lm_tensor_free(gref[i]);
    }
    lm_tensor_free(yref);
    lm_tensor_free(r);
}

static void run_all(void) {
    static const char *const bin_in[] = {"a", "b", 0, 0}, *const bin_g[] = {"ga", "gb", 0, 0};
    static const char *const un_in[] = {"x"}, *const un_g[] = {"gx"};
    for (size_t i = 0; i < sizeof binary_cases / sizeof *binary_cases; i++)
        run_case(&binary_cases[i], 2, bin_in, bin_g);
    for (size_t i = 0; i < sizeof unary_cases / sizeof *unary_cases; i++)
        run_case(&unary_cases[i], 1, un_in, un_g);
}

/* Every kernel set the CPU supports gives the same answers within tolerance. */
static void parity_every_isa(void) {
    static const char *const isas[] = {"generic", "avx2", "avx512"};
    for (int k = 0; k < 3; k++) {
        if (lm_ctx_set_isa(ctx, isas[k]) != LM_OK) {
            printf("%s: not supported here, skipped\n", isas[k]);
            continue;
        }
        worst_y = worst_g = 0;
        run_all();
        printf("%-8s worst output error %.3g (%s), worst gradient error %.3g (%s)\n", isas[k],
               worst_y, worst_y_case, worst_g, worst_g_case);
    }
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(parity_every_isa);
    lm_ctx_free(ctx);
    return lmt_summary("parity_elementwise");
}
