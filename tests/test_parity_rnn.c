/* Parity with Keras SimpleRNN, LSTM and GRU: outputs and final states (1e-5)
 * and the gradients of sum(y * ry) + sum(h * rh) + sum(c * rc) with respect to
 * the input, the weights and the initial states (1e-4), for the arrays
 * written by tests/keras/ref_rnn.py. */
#include "lmtest.h"
#include "refs.h"
#include <lamina/ops.h>

#define FAM "rnn"

static lm_ctx *ctx;

typedef struct {
    const char *name;
    int kind; /* 0 simple, 1 lstm, 2 gru */
    bool bias, h0, c0;
    lm_rnn_opts o;
} rnn_case;

#define SEQ        .return_sequences = true
#define BACK       .go_backwards = true
#define ACTS(a, r) .activation = a, .recurrent_activation = r, .activations_set = true

static const rnn_case cases[] = {
    {"simple_seq", 0, true, false, false, {SEQ}},
    {"simple_back_h0_relu", 0, true, true, false, {BACK, ACTS(LM_ACT_RELU, 0)}},
    {"simple_back_seq_nobias", 0, false, false, false, {SEQ, BACK}},
    {"lstm_seq", 1, true, false, false, {SEQ}},
    {"lstm_last_h0_c0", 1, true, true, true, {0}},
    {"lstm_back_seq_states", 1, true, true, true, {SEQ, BACK}},
    {"lstm_hard_sigmoid_relu_nobias",
     1,
     false,
     false,
     false,
     {SEQ, ACTS(LM_ACT_RELU, LM_ACT_HARD_SIGMOID)}},
    {"gru_seq", 2, true, true, false, {SEQ}},
    {"gru_last_back", 2, true, false, false, {BACK}},
    {"gru_before_seq", 2, true, true, false, {SEQ, .reset_after_set = true}},
    {"gru_before_back_nobias", 2, false, false, false, {BACK, .reset_after_set = true}},
    {"gru_linear_hard_sigmoid", 2, true, false, false, {SEQ, ACTS(0, LM_ACT_HARD_SIGMOID)}},
    {"lstm_wide", 1, true, true, true, {SEQ}},
    {"gru_wide", 2, true, true, false, {SEQ}},
    {"simple_wide", 0, true, false, false, {SEQ}},
};

static double worst_fwd, worst_grad, case_fwd, case_grad;

static void compare(const char *cas, const char *name, lm_tensor *got, double tol) {
    lm_tensor *want = ref_load(ctx, FAM, cas, name);
    double e = ref_max_rel_err(got, want);
    CHECK_MSG(e <= tol, "%s.%s: max relative error %g > %g", cas, name, e, tol);
    double *w = tol < 1e-4 ? &worst_fwd : &worst_grad, *cw = tol < 1e-4 ? &case_fwd : &case_grad;
    if (e > *w) *w = e;
    if (e > *cw) *cw = e;
    lm_tensor_free(want);
}

/* A variable (or constant) holding a copy of reference <case>.<name>. */
static lm_node *ref_node(lm_graph *g, const char *cas, const char *name, bool constant) {
    lm_tensor *t = ref_load(ctx, FAM, cas, name);
    if (!t) return NULL;
    lm_node *v = constant ? lm_constant(g, t) : lm_variable(g, name, LM_F32, lm_tensor_shape(t));
    if (v && !constant) lm_tensor_assign(lm_variable_value(v), t);
    lm_tensor_free(t);
    return v;
}

/* sum(y * r) with r from <case>.<rname>. */
static lm_node *weighted_sum(lm_graph *g, const char *cas, lm_node *y, const char *rname) {
    return lm_op_sum(g, lm_op_mul(g, y, ref_node(g, cas, rname, true)), 0, NULL, false);
}

static void run_case(const rnn_case *k) {
    const char *cas = k->name;
    lm_graph *g = lm_graph_new(ctx);
    const char *names[6] = {"x", "kernel", "recurrent"};
    int n = 3;
    if (k->bias) names[n++] = "bias";
    if (k->h0) names[n++] = "h0";
    if (k->c0) names[n++] = "c0";
    lm_node *v[6], *in[6] = {NULL};
    for (int i = 0; i < n; i++) {
        v[i] = ref_node(g, cas, names[i], false);
        in[i] = v[i];
    }
    lm_node *x = in[0], *K = in[1], *R = in[2], *b = k->bias ? in[3] : NULL;
    lm_node *h0 = k->h0 ? in[3 + k->bias] : NULL, *c0 = k->c0 ? in[4 + k->bias] : NULL;
    lm_node *y, *h = NULL, *c = NULL;
    if (k->kind == 1)
        y = lm_op_lstm(g, x, K, R, b, h0, c0, k->o, &h, &c);
    else if (k->kind == 2)
        y = lm_op_gru(g, x, K, R, b, h0, k->o, &h);
    else
        y = lm_op_simple_rnn(g, x, K, R, b, h0, k->o, &h);
    lm_node *loss = lm_op_add(g, weighted_sum(g, cas, y, "ry"), weighted_sum(g, cas, h, "rh"));
    if (c) loss = lm_op_add(g, loss, weighted_sum(g, cas, c, "rc"));
    CHECK_MSG(loss, "%s: build failed: %s", cas, lm_graph_error(g));
    lm_node *grads[6], *outs[9];
    if (!loss || lm_grad(g, loss, n, v, grads) != LM_OK) {
        CHECK_MSG(false, "%s: gradients failed: %s", cas, lm_ctx_error(ctx));
        lm_graph_free(g);
        return;
    }
    int no = 0;
    outs[no++] = y;
    outs[no++] = h;
    if (c) outs[no++] = c;
    for (int i = 0; i < n; i++) outs[no++] = grads[i];
    lm_session *s = lm_session_new(g, no, outs);
    case_fwd = case_grad = 0;
    CHECK_MSG(s && lm_session_run(s) == LM_OK, "%s: run failed: %s", cas, lm_ctx_error(ctx));
    if (s) {
        int o = 0;
        compare(cas, "y", lm_session_output(s, o++), 1e-5);
        compare(cas, "h", lm_session_output(s, o++), 1e-5);
        if (c) compare(cas, "c", lm_session_output(s, o++), 1e-5);
        for (int i = 0; i < n; i++) {
            char gname[32];
            snprintf(gname, sizeof gname, "d%s", names[i]);
            compare(cas, gname, lm_session_output(s, o++), 1e-4);
        }
        printf("%-32s outputs %.2g, gradients %.2g\n", cas, case_fwd, case_grad);
    }
    lm_session_free(s);
    lm_graph_free(g);
}

static void parity_all(void) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i]);
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(parity_all);
    printf("rnn parity: worst output error %.3g, worst gradient error %.3g\n", worst_fwd,
           worst_grad);
    lm_ctx_free(ctx);
    return lmt_summary("parity_rnn");
}
