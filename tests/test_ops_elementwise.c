/* Elementwise ops and activations: bad inputs (each error names the op and
 * the shapes), zero-sized tensors, exact values, special values, the
 * broadcasting paths against a naive loop, and every kernel set against
 * double-precision formulas. */
#include <lamina/lamina.h>
#include <math.h>
#include <string.h>
#include "lmtest.h"

static lm_ctx *ctx;

/* ---- helpers ---- */

static lm_tensor *tensor(lm_shape s, const float *v) {
    lm_tensor *t = lm_tensor_new(ctx, LM_F32, s);
    if (v) lm_tensor_copy_from(t, v, (size_t)lm_tensor_numel(t) * sizeof(float));
    return t;
}

static lm_node *cnst(lm_graph *g, lm_shape s, const float *v) {
    lm_tensor *t = tensor(s, v);
    lm_node *n = lm_constant(g, t);
    lm_tensor_free(t);
    return n;
}

/* Runs outputs ys[0..n-1] once and returns copies (NULL on failure). */
static void eval(lm_graph *g, int n, lm_node **ys, lm_tensor **out) {
    lm_session *s = lm_session_new(g, n, ys);
    bool ok = s && lm_session_run(s) == LM_OK;
    CHECK_MSG(ok, "run failed: %s", lm_ctx_error(ctx));
    for (int i = 0; i < n; i++) out[i] = ok ? lm_tensor_clone(lm_session_output(s, i)) : NULL;
    lm_session_free(s);
}

static lm_tensor *eval1(lm_graph *g, lm_node *y) {
    lm_tensor *t = NULL;
    eval(g, 1, &y, &t);
    return t;
}

/* Back to the best kernel set this CPU has. */
static void best_isa(void) {
    if (lm_ctx_set_isa(ctx, "avx512") != LM_OK && lm_ctx_set_isa(ctx, "avx2") != LM_OK)
        lm_ctx_set_isa(ctx, "generic");
}

static float get(const lm_tensor *t, int64_t i) {
    return t ? (float)lm_tensor_get(t, i) : NAN;
}

/* ---- every unary op and activation, by one signature ---- */

typedef struct uop {
    const char *name;
    lm_node *(*make)(lm_graph *g, lm_node *x, float f0, float f1);
    float f0, f1;
    double (*f)(double x, double f0, double f1);  /* double-precision reference */
    double (*df)(double x, double f0, double f1); /* its derivative */
    double lo, hi;                                /* input range for accuracy tests */
} uop;

#define MK1(nm)                                                                                    \
    static lm_node *mk_##nm(lm_graph *g, lm_node *x, float f0, float f1) {                         \
        (void)f0;                                                                                  \
        (void)f1;                                                                                  \
        return lm_op_##nm(g, x);                                                                   \
    }
MK1(neg)
MK1(square)
MK1(sqrt)
MK1(exp)
MK1(log)
MK1(abs)
MK1(relu)
MK1(selu)
MK1(sigmoid)
MK1(hard_sigmoid)
MK1(tanh)
MK1(softplus)
MK1(softsign)
MK1(silu)
static lm_node *mk_pow(lm_graph *g, lm_node *x, float f0, float f1) {
    (void)f1;
    return lm_op_pow(g, x, f0);
}
static lm_node *mk_scale(lm_graph *g, lm_node *x, float f0, float f1) {
    return lm_op_scale(g, x, f0, f1);
}
static lm_node *mk_clip(lm_graph *g, lm_node *x, float f0, float f1) {
    return lm_op_clip(g, x, f0, f1);
}
static lm_node *mk_leaky_relu(lm_graph *g, lm_node *x, float f0, float f1) {
    (void)f1;
    return lm_op_leaky_relu(g, x, f0);
}
static lm_node *mk_elu(lm_graph *g, lm_node *x, float f0, float f1) {
    (void)f1;
    return lm_op_elu(g, x, f0);
}
static lm_node *mk_gelu(lm_graph *g, lm_node *x, float f0, float f1) {
    (void)f1;
    return lm_op_gelu(g, x, f0 != 0);
}

#define PI     3.14159265358979323846
#define SELU_A 1.6732632423543772848170429916717
#define SELU_S 1.0507009873554804934193349852946
static double sig(double x) {
    return 1 / (1 + exp(-x));
}
static double r_neg(double x, double a, double b) {
    (void)a, (void)b;
    return -x;
}
static double d_neg(double x, double a, double b) {
    (void)x, (void)a, (void)b;
    return -1;
}
static double r_square(double x, double a, double b) {
    (void)a, (void)b;
    return x * x;
}
static double d_square(double x, double a, double b) {
    (void)a, (void)b;
    return 2 * x;
}
static double r_sqrt(double x, double a, double b) {
    (void)a, (void)b;
    return sqrt(x);
}
static double d_sqrt(double x, double a, double b) {
    (void)a, (void)b;
    return 0.5 / sqrt(x);
}
static double r_exp(double x, double a, double b) {
    (void)a, (void)b;
    return exp(x);
}
static double r_log(double x, double a, double b) {
    (void)a, (void)b;
    return log(x);
}
static double d_log(double x, double a, double b) {
    (void)a, (void)b;
    return 1 / x;
}
static double r_abs(double x, double a, double b) {
    (void)a, (void)b;
    return fabs(x);
}
static double d_abs(double x, double a, double b) {
    (void)a, (void)b;
    return x >= 0 ? 1 : -1;
}
static double r_pow(double x, double p, double b) {
    (void)b;
    return pow(x, p);
}
static double d_pow(double x, double p, double b) {
    (void)b;
    return p * pow(x, p - 1);
}
static double r_scale(double x, double s, double t) {
    return x * s + t;
}
static double d_scale(double x, double s, double t) {
    (void)x, (void)t;
    return s;
}
static double r_clip(double x, double lo, double hi) {
    return fmin(fmax(x, lo), hi);
}
static double d_clip(double x, double lo, double hi) {
    return x > lo && x < hi ? 1 : (x == lo || x == hi ? 0.5 : 0);
}
static double r_relu(double x, double a, double b) {
    (void)a, (void)b;
    return x > 0 ? x : 0;
}
static double d_relu(double x, double a, double b) {
    (void)a, (void)b;
    return x > 0 ? 1 : 0;
}
static double r_leaky(double x, double a, double b) {
    (void)b;
    return x >= 0 ? x : a * x;
}
static double d_leaky(double x, double a, double b) {
    (void)b;
    return x >= 0 ? 1 : a;
}
static double r_elu(double x, double a, double b) {
    (void)b;
    return x > 0 ? x : a * expm1(x);
}
static double d_elu(double x, double a, double b) {
    (void)b;
    return x > 0 ? 1 : a * exp(x);
}
static double r_selu(double x, double a, double b) {
    (void)a, (void)b;
    return SELU_S * r_elu(x, SELU_A, 0);
}
static double d_selu(double x, double a, double b) {
    (void)a, (void)b;
    return SELU_S * d_elu(x, SELU_A, 0);
}
static double r_gelu(double x, double approx, double b) {
    (void)b;
    if (approx != 0) return 0.5 * x * (1 + tanh(sqrt(2 / PI) * (x + 0.044715 * x * x * x)));
    return 0.5 * x * erfc(-x / sqrt(2.0));
}
static double d_gelu(double x, double approx, double b) {
    (void)b;
    if (approx != 0) {
        double c = sqrt(2 / PI), t = tanh(c * (x + 0.044715 * x * x * x));
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x);
    }
    return 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-0.5 * x * x) / sqrt(2 * PI);
}
static double r_sigmoid(double x, double a, double b) {
    (void)a, (void)b;
    return sig(x);
}
static double d_sigmoid(double x, double a, double b) {
    (void)a, (void)b;
    return sig(x) * (1 - sig(x));
}
static double r_hsig(double x, double a, double b) {
    (void)a, (void)b;
    return fmin(fmax(x + 3, 0), 6) / 6;
}
static double d_hsig(double x, double a, double b) {
    (void)a, (void)b;
    return x > -3 && x < 3 ? 1.0 / 6 : 0;
}
static double r_tanh(double x, double a, double b) {
    (void)a, (void)b;
    return tanh(x);
}
static double d_tanh(double x, double a, double b) {
    (void)a, (void)b;
    return 1 - tanh(x) * tanh(x);
}
static double r_softplus(double x, double a, double b) {
    (void)a, (void)b;
    return fmax(x, 0) + log1p(exp(-fabs(x)));
}
static double r_softsign(double x, double a, double b) {
    (void)a, (void)b;
    return x / (1 + fabs(x));
}
static double d_softsign(double x, double a, double b) {
    (void)a, (void)b;
    return 1 / ((1 + fabs(x)) * (1 + fabs(x)));
}
static double r_silu(double x, double a, double b) {
    (void)a, (void)b;
    return x * sig(x);
}
static double d_silu(double x, double a, double b) {
    (void)a, (void)b;
    return sig(x) * (1 + x * (1 - sig(x)));
}

static const uop uops[] = {
    {"neg", mk_neg, 0, 0, r_neg, d_neg, -5, 5},
    {"square", mk_square, 0, 0, r_square, d_square, -5, 5},
    {"sqrt", mk_sqrt, 0, 0, r_sqrt, d_sqrt, 1e-3, 100},
    {"exp", mk_exp, 0, 0, r_exp, r_exp, -87, 88},
    {"log", mk_log, 0, 0, r_log, d_log, 1e-30, 1e30},
    {"abs", mk_abs, 0, 0, r_abs, d_abs, -5, 5},
    {"pow", mk_pow, 2, 0, r_pow, d_pow, -5, 5},
    {"pow", mk_pow, 3, 0, r_pow, d_pow, -5, 5},
    {"pow", mk_pow, 0.5f, 0, r_pow, d_pow, 1e-3, 100},
    {"pow", mk_pow, -1, 0, r_pow, d_pow, 0.01, 100},
    {"pow", mk_pow, 1.7f, 0, r_pow, d_pow, 0.01, 100},
    {"pow", mk_pow, 1, 0, r_pow, d_pow, -5, 5},
    {"scale", mk_scale, -1.5f, 0.25f, r_scale, d_scale, -5, 5},
    {"clip", mk_clip, -0.5f, 0.4f, r_clip, d_clip, -1, 1},
    {"relu", mk_relu, 0, 0, r_relu, d_relu, -5, 5},
    {"leaky_relu", mk_leaky_relu, 0.2f, 0, r_leaky, d_leaky, -5, 5},
    {"elu", mk_elu, 0.7f, 0, r_elu, d_elu, -20, 5},
    {"selu", mk_selu, 0, 0, r_selu, d_selu, -20, 5},
    {"gelu", mk_gelu, 0, 0, r_gelu, d_gelu, -10, 10},
    {"gelu", mk_gelu, 1, 0, r_gelu, d_gelu, -10, 10},
    {"sigmoid", mk_sigmoid, 0, 0, r_sigmoid, d_sigmoid, -30, 30},
    {"hard_sigmoid", mk_hard_sigmoid, 0, 0, r_hsig, d_hsig, -5, 5},
    {"tanh", mk_tanh, 0, 0, r_tanh, d_tanh, -10, 10},
    {"softplus", mk_softplus, 0, 0, r_softplus, r_sigmoid, -40, 40},
    {"softsign", mk_softsign, 0, 0, r_softsign, d_softsign, -10, 10},
    {"silu", mk_silu, 0, 0, r_silu, d_silu, -30, 30},
};
#define N_UOPS (int)(sizeof uops / sizeof *uops)

/* ---- bad inputs ---- */

typedef lm_node *(*bin_fn)(lm_graph *, lm_node *, lm_node *);
static const struct {
    const char *name;
    bin_fn fn;
} bops[] = {{"add", lm_op_add}, {"sub", lm_op_sub},         {"mul", lm_op_mul},
            {"div", lm_op_div}, {"maximum", lm_op_maximum}, {"minimum", lm_op_minimum}};

static void binary_shape_and_dtype_errors(void) {
    for (int k = 0; k < 6; k++) {
        lm_graph *g = lm_graph_new(ctx);
        lm_node *a = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 3), "a");
        lm_node *b = lm_variable(g, "b", LM_F32, LM_SHAPE(4));
        CHECK(bops[k].fn(g, a, b) == NULL);
        CHECK(lm_graph_status(g) == LM_ERR_SHAPE);
        char want[96];
        snprintf(want, sizeof want, "%s: shapes (None, 3) and (4,) cannot be broadcast together",
                 bops[k].name);
        CHECK_CONTAINS(lm_graph_error(g), want);
        lm_graph_free(g);

        g = lm_graph_new(ctx);
        a = lm_variable(g, "a", LM_I32, LM_SHAPE(2, 3));
        b = lm_variable(g, "b", LM_F32, LM_SHAPE(3));
        CHECK(bops[k].fn(g, b, a) == NULL);
        CHECK(lm_graph_status(g) == LM_ERR_DTYPE);
        snprintf(want, sizeof want, "%s: needs float32 inputs, got float32 (3,) and int32 (2, 3)",
                 bops[k].name);
        CHECK_CONTAINS(lm_graph_error(g), want);
        lm_graph_free(g);
    }
    /* Broadcasting against an unknown batch, and a mismatch found only at run time. */
    lm_graph *g = lm_graph_new(ctx);
    lm_node *a = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 3), "a");
    lm_node *b = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 1), "b");
    lm_node *y = lm_op_mul(g, a, b);
    CHECK(y && lm_node_shape(y).dims[0] == -1 && lm_node_shape(y).dims[1] == 3);
    lm_session *s = lm_session_new(g, 1, &y);
    lm_tensor *ta = tensor(LM_SHAPE(2, 3), NULL), *tb = tensor(LM_SHAPE(4, 1), NULL);
    lm_session_feed(s, a, ta);
    lm_session_feed(s, b, tb);
    CHECK_STATUS(lm_session_run(s), LM_ERR_SHAPE);
    CHECK_CONTAINS(lm_ctx_error(ctx), "mul: shapes (2, 3) and (4, 1) cannot be broadcast");
    lm_session_free(s);
    lm_tensor_free(ta);
    lm_tensor_free(tb);
    lm_graph_free(g);
}

static void unary_dtype_and_param_errors(void) {
    for (int k = 0; k < N_UOPS; k++) {
        lm_graph *g = lm_graph_new(ctx);
        lm_node *x = lm_variable(g, "x", LM_I64, LM_SHAPE(2, 2));
        CHECK(uops[k].make(g, x, uops[k].f0, uops[k].f1) == NULL);
        CHECK(lm_graph_status(g) == LM_ERR_DTYPE);
        char want[96];
        snprintf(want, sizeof want, "%s: needs a float32 input, got int64 (2, 2)", uops[k].name);
        CHECK_CONTAINS(lm_graph_error(g), want);
        lm_graph_free(g);
    }
    struct {
        lm_node *(*make)(lm_graph *, lm_node *, float, float);
        float f0, f1;
        const char *msg;
    } bad[] = {
        {mk_clip, 1, -1, "clip: bounds lo 1 and hi -1 need lo <= hi (input (None, 5))"},
        {mk_clip, NAN, 1, "clip: bounds lo nan and hi 1 need lo <= hi (input (None, 5))"},
        {mk_pow, INFINITY, 0, "pow: exponent inf is not finite (input (None, 5))"},
        {mk_pow, NAN, 0, "pow: exponent nan is not finite"},
        {mk_scale, 1, NAN, "scale: scale 1 and shift nan must be finite (input (None, 5))"},
        {mk_scale, -INFINITY, 0, "scale: scale -inf and shift 0 must be finite"},
        {mk_leaky_relu, NAN, 0, "leaky_relu: alpha nan is not finite (input (None, 5))"},
        {mk_elu, INFINITY, 0, "elu: alpha inf is not finite (input (None, 5))"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        lm_graph *g = lm_graph_new(ctx);
        lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 5), "x");
        CHECK(bad[k].make(g, x, bad[k].f0, bad[k].f1) == NULL);
        CHECK(lm_graph_status(g) == LM_ERR_ARG);
        CHECK_CONTAINS(lm_graph_error(g), bad[k].msg);
        lm_graph_free(g);
    }
    /* Infinite clip bounds are fine: a one-sided clip. */
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = cnst(g, LM_SHAPE(3), (const float[]){-2, 0.5f, 7});
    lm_tensor *t = eval1(g, lm_op_clip(g, x, -INFINITY, 1));
    CHECK(get(t, 0) == -2 && get(t, 1) == 0.5f && get(t, 2) == 1);
    lm_tensor_free(t);
    lm_graph_free(g);
}

static void null_inputs_and_sticky_errors(void) {
    lm_graph *g = lm_graph_new(ctx);
    CHECK(lm_op_relu(g, NULL) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "relu: input 0 is NULL");
    lm_graph_free(g);
    g = lm_graph_new(ctx);
    lm_node *a = lm_variable(g, "a", LM_F32, LM_SHAPE(2, 3));
    lm_node *b = lm_variable(g, "b", LM_F32, LM_SHAPE(2));
    lm_node *y = lm_op_sigmoid(g, lm_op_add(g, a, b));
    CHECK(y == NULL);
    CHECK(lm_op_maximum(g, y, a) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "add: shapes (2, 3) and (2,) cannot be broadcast");
    lm_graph_free(g);
    CHECK(lm_op_add(NULL, NULL, NULL) == NULL);
    CHECK(lm_op_tanh(NULL, NULL) == NULL);
    CHECK(lm_op_activation(NULL, NULL, LM_ACT_RELU) == NULL);
}

static void activation_names(void) {
    for (int a = 0; a < LM_ACT_COUNT; a++) {
        const char *n = lm_activation_name((lm_activation)a);
        CHECK_MSG(n && lm_activation_from_name(n) == a, "activation %d name %s", a, n);
    }
    CHECK(!strcmp(lm_activation_name(LM_ACT_SILU), "silu"));
    CHECK(!strcmp(lm_activation_name(LM_ACT_EXP), "exponential"));
    CHECK(lm_activation_from_name("swish") == LM_ACT_SILU);
    CHECK(lm_activation_from_name("gelu") == LM_ACT_GELU);
    CHECK(lm_activation_from_name("Relu") == -1);
    CHECK(lm_activation_from_name("") == -1);
    CHECK(lm_activation_from_name(NULL) == -1);
    CHECK(lm_activation_name(LM_ACT_COUNT) == NULL);
    CHECK(lm_activation_name((lm_activation)-1) == NULL);

    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_variable(g, "x", LM_F32, LM_SHAPE(2, 3));
    CHECK(lm_op_activation(g, x, LM_ACT_LINEAR) == x);
    CHECK(lm_op_activation(g, x, (lm_activation)99) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "activation: unknown activation 99");
    lm_graph_free(g);
    g = lm_graph_new(ctx);
    CHECK(lm_op_activation(g, NULL, LM_ACT_LINEAR) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "activation linear: input is NULL");
    x = lm_variable(g, "x", LM_I32, LM_SHAPE(4));
    CHECK(lm_op_activation(g, x, LM_ACT_GELU) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "activation linear: input is NULL"); /* first kept */
    lm_graph_free(g);
    g = lm_graph_new(ctx);
    x = lm_variable(g, "x", LM_I32, LM_SHAPE(4));
    CHECK(lm_op_activation(g, x, LM_ACT_GELU) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "gelu: needs a float32 input, got int32 (4,)");
    lm_graph_free(g);
}

/* ---- zero-sized tensors ---- */

static void zero_sized(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *a = lm_variable(g, "a", LM_F32, LM_SHAPE(0, 3));
    lm_node *b = lm_variable(g, "b", LM_F32, LM_SHAPE(3));
    lm_node *y = lm_op_maximum(g, lm_op_gelu(g, a, false), lm_op_exp(g, b));
    lm_node *z = lm_op_add(g, lm_op_sqrt(g, lm_op_sigmoid(g, y)), b);
    CHECK(z && lm_node_shape(z).ndim == 2 && lm_node_shape(z).dims[0] == 0);
    lm_node *gr[2];
    CHECK_STATUS(lm_grad(g, z, 2, (lm_node *[]){a, b}, gr), LM_OK);
    lm_node *outs[3] = {z, gr[0], gr[1]};
    lm_tensor *r[3];
    eval(g, 3, outs, r);
    CHECK(r[0] && lm_tensor_numel(r[0]) == 0);
    CHECK(r[1] && lm_tensor_numel(r[1]) == 0);
    CHECK(r[2] && lm_tensor_numel(r[2]) == 3 && get(r[2], 0) == 0 && get(r[2], 2) == 0);
    for (int i = 0; i < 3; i++) lm_tensor_free(r[i]);
    lm_graph_free(g);
    g = lm_graph_new(ctx);
    a = lm_variable(g, "a", LM_F32, LM_SHAPE(0));
    lm_tensor *t = eval1(g, lm_op_relu(g, lm_op_mul(g, a, lm_scalar(g, 2))));
    CHECK(t && lm_tensor_numel(t) == 0);
    lm_tensor_free(t);
    lm_graph_free(g);
}

/* ---- exact values ---- */

static void binary_values(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *a = cnst(g, LM_SHAPE(2, 3), (const float[]){1, -2, 3, 4, 5, -6});
    lm_node *b = cnst(g, LM_SHAPE(3), (const float[]){2, 4, -8});
    lm_node *c = cnst(g, LM_SHAPE(2, 1), (const float[]){10, -1});
    lm_node *ys[6] = {lm_op_add(g, a, b), lm_op_sub(g, b, a),     lm_op_mul(g, a, c),
                      lm_op_div(g, a, b), lm_op_maximum(g, a, b), lm_op_minimum(g, c, b)};
    const float want[6][6] = {{3, 2, -5, 6, 9, -14},    {1, 6, -11, -2, -1, -2},
                              {10, -20, 30, -4, -5, 6}, {0.5f, -0.5f, -0.375f, 2, 1.25f, 0.75f},
                              {2, 4, 3, 4, 5, -6},      {2, 4, -8, -1, -1, -8}};
    lm_tensor *r[6];
    eval(g, 6, ys, r);
    for (int k = 0; k < 6; k++)
        for (int i = 0; i < 6; i++)
            CHECK_MSG(get(r[k], i) == want[k][i], "op %d element %d: %g, want %g", k, i,
                      get(r[k], i), want[k][i]);
    for (int k = 0; k < 6; k++) lm_tensor_free(r[k]);
    lm_graph_free(g);
}

static void unary_values(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = cnst(g, LM_SHAPE(5), (const float[]){-3, -1, 0, 1, 3});
    lm_node *ys[] = {lm_op_relu(g, x),        lm_op_leaky_relu(g, x, 0.2f),
                     lm_op_elu(g, x, 1),      lm_op_selu(g, x),
                     lm_op_gelu(g, x, false), lm_op_gelu(g, x, true),
                     lm_op_sigmoid(g, x),     lm_op_hard_sigmoid(g, x),
                     lm_op_tanh(g, x),        lm_op_softplus(g, x),
                     lm_op_softsign(g, x),    lm_op_silu(g, x),
                     lm_op_clip(g, x, -1, 2), lm_op_scale(g, x, 2, 1),
                     lm_op_abs(g, x),         lm_op_square(g, x),
                     lm_op_neg(g, x)};
    /* Values from Keras 3 / JAX in float32. */
    const float want[][5] = {
        {0, 0, 0, 1, 3},
        {-0.600000024f, -0.200000003f, 0, 1, 3},
        {-0.950212955f, -0.63212055f, 0, 1, 3},
        {-1.67056882f, -1.11133075f, 0, 1.05070102f, 3.15210295f},
        {-0.00404969603f, -0.158655271f, 0, 0.841344714f, 2.99595022f},
        {-0.00363734365f, -0.158807963f, 0, 0.841192007f, 2.99636269f},
        {0.0474258736f, 0.268941432f, 0.5f, 0.731058598f, 0.952574134f},
        {0, 0.333333343f, 0.5f, 0.666666687f, 1},
        {-0.995054722f, -0.761594176f, 0, 0.761594176f, 0.995054722f},
        {0.048587352f, 0.313261688f, 0.693147182f, 1.31326175f, 3.04858732f},
        {-0.75f, -0.5f, 0, 0.5f, 0.75f},
        {-0.142277628f, -0.268941432f, 0, 0.731058598f, 2.85772228f},
        {-1, -1, 0, 1, 2},
        {-5, -1, 1, 3, 7},
        {3, 1, 0, 1, 3},
        {9, 1, 0, 1, 9},
        {3, 1, 0, -1, -3},
    };
    int n = (int)(sizeof ys / sizeof *ys);
    lm_tensor *r[17];
    eval(g, n, ys, r);
    for (int k = 0; k < n; k++)
        for (int i = 0; i < 5; i++)
            CHECK_MSG(fabs(get(r[k], i) - want[k][i]) <= 2e-7 * fmax(1, fabs(want[k][i])),
                      "%s(%g) = %.9g, want %.9g", lm_node_op(ys[k]), i - 2.0, get(r[k], i),
                      want[k][i]);
    for (int k = 0; k < n; k++) lm_tensor_free(r[k]);
    lm_graph_free(g);
}

/* NaN propagates as in JAX; infinities and the edges of exp and log. */
static void special_values(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = cnst(g, LM_SHAPE(5), (const float[]){NAN, INFINITY, -INFINITY, 0, -0.0f});
    lm_node *ys[] = {lm_op_exp(g, x),
                     lm_op_log(g, x),
                     lm_op_sigmoid(g, x),
                     lm_op_tanh(g, x),
                     lm_op_softplus(g, x),
                     lm_op_relu(g, x),
                     lm_op_clip(g, x, -1, 1),
                     lm_op_maximum(g, x, lm_scalar(g, 1)),
                     lm_op_minimum(g, lm_scalar(g, 1), x),
                     lm_op_gelu(g, x, false),
                     lm_op_elu(g, x, 1)};
    const float want[][5] = {
        {NAN, INFINITY, 0, 1, 1},
        {NAN, INFINITY, NAN, -INFINITY, -INFINITY},
        {NAN, 1, 0, 0.5f, 0.5f},
        {NAN, 1, -1, 0, 0},
        {NAN, INFINITY, 0, 0.6931472f, 0.6931472f},
        {NAN, INFINITY, 0, 0, 0},
        {NAN, 1, -1, 0, 0},
        {NAN, INFINITY, 1, 1, 1},
        {NAN, 1, -INFINITY, 0, 0},
        {NAN, INFINITY, NAN, 0, 0},
        {NAN, INFINITY, -1, 0, 0},
    };
    int n = (int)(sizeof ys / sizeof *ys);
    lm_tensor *r[11];
    eval(g, n, ys, r);
    for (int k = 0; k < n; k++)
        for (int i = 0; i < 5; i++) {
            float v = get(r[k], i), w = want[k][i];
            bool ok = isnan(w) ? isnan(v) : (v == w || fabsf(v - w) <= 1e-6f);
            CHECK_MSG(ok, "%s element %d: %g, want %g", lm_node_op(ys[k]), i, v, w);
        }
    for (int k = 0; k < n; k++) lm_tensor_free(r[k]);
    /* exp at the overflow and denormal edges, log of denormals: with the
     * context's flush-to-zero off, denormals are computed exactly. */
    lm_node *e = cnst(g, LM_SHAPE(4), (const float[]){88.72f, 88.73f, -100, -104});
    lm_node *l = cnst(g, LM_SHAPE(3), (const float[]){1e-45f, 1e-40f, 3.4e38f});
    lm_node *o[2] = {lm_op_exp(g, e), lm_op_log(g, l)};
    lm_ctx_set_flush_denormals(ctx, false);
    eval(g, 2, o, r);
    lm_ctx_set_flush_denormals(ctx, true);
    CHECK_NEAR(get(r[0], 0) / 3.3931804e38, 1, 1e-6);
    CHECK(isinf(get(r[0], 1)));
    CHECK_NEAR(get(r[0], 2) / exp(-100.0), 1, 0.05); /* denormal: few significant bits */
    CHECK(get(r[0], 3) == 0);
    CHECK_NEAR(get(r[1], 0), log((double)1e-45f), 1e-6);
    CHECK_NEAR(get(r[1], 1), log((double)1e-40f), 1e-6);
    CHECK_NEAR(get(r[1], 2), log((double)3.4e38f), 1e-6);
    lm_tensor_free(r[0]);
    lm_tensor_free(r[1]);
    /* By default denormals flush to zero, as in TensorFlow. */
    eval(g, 2, o, r);
    CHECK(get(r[0], 2) == 0);
    CHECK(isinf(get(r[1], 0)) && get(r[1], 0) < 0);
    lm_tensor_free(r[0]);
    lm_tensor_free(r[1]);
    lm_graph_free(g);
}

/* ---- broadcasting paths against a naive loop, exact ---- */

static float naive(int op, float a, float b) {
    switch (op) {
    case 0:
        return a + b;
    case 1:
        return a - b;
    case 2:
        return a * b;
    case 3:
        return a / b;
    case 4:
        return a > b ? a : b;
    default:
        return a < b ? a : b;
    }
}

static int64_t bidx(lm_shape s, lm_shape o, const int64_t *idx) {
    int64_t off = 0;
    for (int i = 0; i < s.ndim; i++) {
        int oi = i + o.ndim - s.ndim;
        off = off * s.dims[i] + (s.dims[i] == 1 ? 0 : idx[oi]);
    }
    return off;
}

/* Derivative shares of a and b for maximum (k 4), minimum (5) and div (3). */
static void naive_d(int k, float a, float b, double *da, double *db) {
    if (k == 3) {
        *da = 1.0 / b;
        *db = -(double)a / ((double)b * b);
    } else {
        bool aw = k == 4 ? a > b : a < b;
        *da = a == b ? 0.5 : aw;
        *db = a == b ? 0.5 : !aw;
    }
}

static void check_broadcast(lm_shape sa, lm_shape sb) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *a = lm_variable(g, "a", LM_F32, sa), *b = lm_variable(g, "b", LM_F32, sb);
    lm_tensor_random_uniform(lm_variable_value(a), -2, 2);
    lm_tensor_random_uniform(lm_variable_value(b), 0.5, 2);
    float *pa = lm_tensor_f32(lm_variable_value(a)), *pb = lm_tensor_f32(lm_variable_value(b));
    for (int64_t i = 0; i < lm_shape_numel(sa); i += 3) pa[i] = pb[0]; /* some ties */
    lm_node *ys[12];
    for (int k = 0; k < 6; k++) ys[k] = bops[k].fn(g, a, b);
    for (int k = 3; k < 6; k++)
        CHECK_STATUS(lm_grad(g, ys[k], 2, (lm_node *[]){a, b}, ys + 6 + 2 * (k - 3)), LM_OK);
    lm_tensor *r[12];
    eval(g, 12, ys, r);
    lm_shape o = lm_node_shape(ys[0]);
    int64_t n = lm_shape_numel(o), idx[LM_MAX_DIMS] = {0}, bad = 0;
    int64_t na = lm_shape_numel(sa), nb = lm_shape_numel(sb);
    double *ga = calloc((size_t)(3 * (na + nb)), sizeof(double)), *gb = ga + 3 * na;
    for (int64_t i = 0; i < n; i++) {
        int64_t ia = bidx(sa, o, idx), ib = bidx(sb, o, idx);
        float va = pa[ia], vb = pb[ib];
        for (int k = 0; k < 6; k++)
            if (!r[k] || get(r[k], i) != naive(k, va, vb)) bad++;
        for (int k = 3; k < 6; k++) {
            double da, db;
            naive_d(k, va, vb, &da, &db);
            ga[(k - 3) * na + ia] += da;
            gb[(k - 3) * nb + ib] += db;
        }
        for (int d = o.ndim - 1; d >= 0; d--) {
            if (++idx[d] < o.dims[d]) break;
            idx[d] = 0;
        }
    }
    double worst = 0;
    for (int k = 0; k < 3; k++) {
        for (int64_t i = 0; r[6 + 2 * k] && i < na; i++)
            worst = fmax(worst, fabs(get(r[6 + 2 * k], i) - ga[k * na + i]) /
                                    fmax(1, fabs(ga[k * na + i])));
        for (int64_t i = 0; r[7 + 2 * k] && i < nb; i++)
            worst = fmax(worst, fabs(get(r[7 + 2 * k], i) - gb[k * nb + i]) /
                                    fmax(1, fabs(gb[k * nb + i])));
    }
    char s1[96], s2[96];
    /* Gradients of broadcast inputs are float32 sums of up to n / nb terms. */
    double tol = 1e-5 * fmax(1, (double)n / (double)(na < nb ? na : nb) / 1000);
    CHECK_MSG(bad == 0 && worst < tol, "%s op %s: %lld mismatches, gradient error %g (%s)",
              lm_shape_str(sa, s1, 96), lm_shape_str(sb, s2, 96), (long long)bad, worst,
              lm_ctx_isa(ctx));
    free(ga);
    for (int k = 0; k < 12; k++) lm_tensor_free(r[k]);
    lm_graph_free(g);
}

static void broadcast_paths(void) {
    const lm_shape pairs[][2] = {
        {LM_SHAPE(7), LM_SHAPE(7)},
        {LM_SHAPE(3, 5), LM_SCALAR},
        {LM_SCALAR, LM_SHAPE(3, 5)},
        {LM_SHAPE(4, 6), LM_SHAPE(6)},
        {LM_SHAPE(6), LM_SHAPE(4, 6)},
        {LM_SHAPE(4, 6), LM_SHAPE(4, 1)},
        {LM_SHAPE(5, 1), LM_SHAPE(1, 3)},
        {LM_SHAPE(2, 3, 4), LM_SHAPE(3, 1)},
        {LM_SHAPE(2, 1, 4), LM_SHAPE(3, 4)},
        {LM_SHAPE(2, 3, 1, 5), LM_SHAPE(3, 4, 1)},
        {LM_SHAPE(1, 1, 5), LM_SHAPE(2, 1, 1)},
        {LM_SHAPE(1, 1), LM_SHAPE(1)},
        {LM_SHAPE(3, 1, 2, 1), LM_SHAPE(1, 4, 1, 3)},
        /* chunked rows, threads (above 32K elements), long rows split in pieces */
        {LM_SHAPE(3, 40000), LM_SHAPE(40000)},
        {LM_SHAPE(70001), LM_SCALAR},
        {LM_SHAPE(300, 211), LM_SHAPE(300, 1)},
        {LM_SHAPE(2, 33000), LM_SHAPE(2, 33000)},
        {LM_SHAPE(5, 200, 100), LM_SHAPE(200, 1)},
        {LM_SHAPE(3, 1, 20000), LM_SHAPE(2, 1)},
    };
    static const char *const isas[] = {"generic", "avx2", "avx512"};
    for (int k = 0; k < 3; k++) {
        if (lm_ctx_set_isa(ctx, isas[k]) != LM_OK) continue;
        for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++)
            check_broadcast(pairs[i][0], pairs[i][1]);
    }
    best_isa();
}

/* Gradients of the broadcasting ops (summed over broadcast axes, ties split)
 * against a naive reference, exact up to summation order. */
static void broadcast_gradients(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *a = cnst(g, LM_SHAPE(2, 3), (const float[]){1, 2, 3, 0, 2, 5});
    lm_node *b = cnst(g, LM_SHAPE(3), (const float[]){1, 2, 4});
    lm_node *y[4] = {lm_op_maximum(g, a, b), lm_op_minimum(g, a, b), lm_op_div(g, a, b),
                     lm_op_sub(g, a, b)};
    lm_node *gr[8];
    for (int k = 0; k < 4; k++)
        CHECK_STATUS(lm_grad(g, y[k], 2, (lm_node *[]){a, b}, gr + 2 * k), LM_OK);
    lm_tensor *r[8];
    eval(g, 8, gr, r);
    const float want[8][6] = {
        {0.5f, 0.5f, 0, 0, 0.5f, 1},
        {1.5f, 1, 1}, /* maximum: ties split */
        {0.5f, 0.5f, 1, 1, 0.5f, 0},
        {0.5f, 1, 1}, /* minimum */
        {1, 0.5f, 0.25f, 1, 0.5f, 0.25f},
        {-1, -1, -0.5f}, /* div: -sum(a) / b^2 */
        {1, 1, 1, 1, 1, 1},
        {-2, -2, -2}, /* sub */
    };
    for (int k = 0; k < 8; k++)
        for (int i = 0; i < (k % 2 ? 3 : 6); i++)
            CHECK_MSG(get(r[k], i) == want[k][i], "gradient %d element %d: %g, want %g", k, i,
                      get(r[k], i), want[k][i]);
    for (int k = 0; k < 8; k++) lm_tensor_free(r[k]);
    lm_graph_free(g);
}

/* ---- every kernel set against double precision ---- */

static void accuracy_case(const uop *u, int64_t n, double *worst_y, double *worst_g) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_variable(g, "x", LM_F32, LM_SHAPE(n));
    lm_node *gy = lm_variable(g, "gy", LM_F32, LM_SHAPE(n));
    float *px = lm_tensor_f32(lm_variable_value(x)), *pg = lm_tensor_f32(lm_variable_value(gy));
    bool logscale = u->lo > 0 && u->hi / u->lo > 1e3;
    for (int64_t i = 0; i < n; i++) {
        double t = (double)i / (double)(n - 1);
        px[i] = (float)(logscale ? u->lo * pow(u->hi / u->lo, t) : u->lo + (u->hi - u->lo) * t);
        pg[i] = (float)(0.5 + (double)(i % 7) / 7);
    }
    lm_node *y = u->make(g, x, u->f0, u->f1), *gx;
    CHECK_STATUS(lm_gradients(g, y, gy, 1, &x, &gx), LM_OK);
    lm_node *outs[2] = {y, gx};
    lm_tensor *r[2];
    eval(g, 2, outs, r);
    for (int64_t i = 0; r[0] && r[1] && i < n; i++) {
        double xv = px[i];
        double fy = u->f(xv, u->f0, u->f1), fg = pg[i] * u->df(xv, u->f0, u->f1);
        double ey = fabs(get(r[0], i) - fy) / fmax(1, fabs(fy));
        double eg = fabs(get(r[1], i) - fg) / fmax(1, fabs(fg));
        if (!(ey <= *worst_y)) *worst_y = ey;
        if (!(eg <= *worst_g)) *worst_g = eg;
    }
    lm_tensor_free(r[0]);
    lm_tensor_free(r[1]);
    lm_graph_free(g);
}

static void accuracy_every_isa(void) {
    static const char *const isas[] = {"generic", "avx2", "avx512"};
    for (int k = 0; k < 3; k++) {
        if (lm_ctx_set_isa(ctx, isas[k]) != LM_OK) continue;
        for (int u = 0; u < N_UOPS; u++) {
            double wy = 0, wg = 0;
            accuracy_case(&uops[u], 100003, &wy, &wg); /* odd size: vector tails, threads */
            CHECK_MSG(wy <= 5e-7 && wg <= 5e-7, "%s(%g) on %s: output error %.3g, gradient %.3g",
                      uops[u].name, uops[u].f0, isas[k], wy, wg);
            if (getenv("LM_VERBOSE"))
                printf("%-8s %-12s %5g  output %.3g  gradient %.3g\n", isas[k], uops[u].name,
                       uops[u].f0, wy, wg);
        }
    }
    best_isa();
}

int main(void) {
    ctx = lm_ctx_new();
    lm_ctx_seed(ctx, 7);
    RUN(binary_shape_and_dtype_errors);
    RUN(unary_dtype_and_param_errors);
    RUN(null_inputs_and_sticky_errors);
    RUN(activation_names);
    RUN(zero_sized);
    RUN(binary_values);
    RUN(unary_values);
    RUN(special_values);
    RUN(broadcast_paths);
    RUN(broadcast_gradients);
    RUN(accuracy_every_isa);
    lm_ctx_free(ctx);
    return lmt_summary("ops_elementwise");
}
