/* Parity of SimpleRNN, LSTM, GRU and Bidirectional with Keras 3, references
 * from tests/keras/ref_rnn_layers.py: every output within 1e-5, gradients of
 * sum_k sum(y_k * R_k) for the input, the initial states and every weight
 * within 1e-4; and the examples' stacked LSTM model (predict, one SGD step,
 * predict again) within 1e-5.
 *
 * Each case builds a one-layer functional model taking (x, initial
 * states...) and differentiates its graph (m->g) with lm_grad. Inputs,
 * weights and R are not stored: they come from the hash gen() shared with
 * the generator script (ref_layers.py). */
#include "lmtest.h"
#include "nn/nn.h"
#include "refs.h"
#include <lamina/lamina.h>
#include <lamina/model.h>

#define FAM "rnn_layers"
enum { N = 2, T = 5, FEAT = 3 };

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

static void kg_fill(lm_tensor *t, uint64_t seed, double scale) {
    float *p = lm_tensor_f32(t);
    for (int64_t i = 0; i < lm_tensor_numel(t); i++)
        p[i] = (float)(((double)kg_hash(seed, i) / 1000000.0 - 1.0) * scale);
}

/* ---- the cases of ref_rnn_layers.py ---- */

typedef struct pcase {
    const char *name;
    int n_states; /* initial-state inputs */
    int units;
} pcase;

static const pcase cases[] = {
    {"simple", 0, 4},
    {"simple_seq", 0, 4},
    {"simple_back_seq", 0, 3},
    {"simple_relu_state_h0", 1, 4},
    {"simple_linear_nobias", 0, 3},
    {"lstm", 0, 4},
    {"lstm_seq_state", 0, 3},
    {"lstm_back", 0, 4},
    {"lstm_back_seq", 0, 3},
    {"lstm_init_state", 2, 3},
    {"lstm_acts", 0, 3},
    {"lstm_nobias", 0, 3},
    {"gru", 0, 4},
    {"gru_seq", 0, 3},
    {"gru_v1_seq", 0, 3},
    {"gru_v1_nobias", 0, 3},
    {"gru_back_state_h0", 1, 3},
    {"gru_acts", 0, 3},
    {"bi_lstm_concat", 0, 3},
    {"bi_lstm_ave", 0, 3},
    {"bi_gru_sum", 0, 3},
    {"bi_simple_mul", 0, 3},
    {"bi_gru_v1_concat", 0, 2},
    {"bi_lstm_state", 4, 3},
    {"bi_simple_state_ave", 2, 3},
};

/* The layer of each case, configured as in ref_rnn_layers.py. */
static lm_layer *make(const char *n) {
#define C(nm, expr)                                                                                \
    if (!strcmp(n, nm)) return expr
    C("simple", lm_simple_rnn(4));
    C("simple_seq", lm_simple_rnn(4, .return_sequences = true));
    C("simple_back_seq", lm_simple_rnn(3, .go_backwards = true, .return_sequences = true));
    C("simple_relu_state_h0", lm_simple_rnn(4, .activation = LM_RELU, .return_state = true));
    C("simple_linear_nobias", lm_simple_rnn(3, .activation = LM_LINEAR, .activations_set = true,
                                            .use_bias = LM_FALSE, .return_sequences = true));
    C("lstm", lm_lstm(4));
    C("lstm_seq_state", lm_lstm(3, .return_sequences = true, .return_state = true));
    C("lstm_back", lm_lstm(4, .go_backwards = true));
    C("lstm_back_seq", lm_lstm(3, .go_backwards = true, .return_sequences = true));
    C("lstm_init_state", lm_lstm(3, .return_state = true));
    C("lstm_acts", lm_lstm(3, .activation = LM_RELU, .recurrent_activation = LM_HARD_SIGMOID,
                           .return_sequences = true));
    C("lstm_nobias", lm_lstm(3, .use_bias = LM_FALSE));
    C("gru", lm_gru(4));
    C("gru_seq", lm_gru(3, .return_sequences = true));
    C("gru_v1_seq", lm_gru(3, .reset_after = LM_FALSE, .return_sequences = true));
    C("gru_v1_nobias", lm_gru(3, .reset_after = LM_FALSE, .use_bias = LM_FALSE));
    C("gru_back_state_h0", lm_gru(3, .go_backwards = true, .return_state = true));
    C("gru_acts", lm_gru(3, .activation = LM_SIGMOID, .recurrent_activation = LM_HARD_SIGMOID,
                         .return_sequences = true));
    C("bi_lstm_concat", lm_bidirectional(lm_lstm(3, .return_sequences = true)));
    C("bi_lstm_ave", lm_bidirectional(lm_lstm(3), .merge_mode = LM_MERGE_AVE));
    C("bi_gru_sum",
      lm_bidirectional(lm_gru(3, .return_sequences = true), .merge_mode = LM_MERGE_SUM));
    C("bi_simple_mul",
      lm_bidirectional(lm_simple_rnn(3, .return_sequences = true), .merge_mode = LM_MERGE_MUL));
    C("bi_gru_v1_concat", lm_bidirectional(lm_gru(2, .reset_after = LM_FALSE)));
    C("bi_lstm_state",
      lm_bidirectional(lm_lstm(3, .return_sequences = true, .return_state = true)));
    C("bi_simple_state_ave",
      lm_bidirectional(lm_simple_rnn(3, .return_state = true), .merge_mode = LM_MERGE_AVE));
#undef C
    return NULL;
}

/* Compares got with the next numel(got) values of the flat reference. */
static void compare(const char *cas, const char *what, lm_tensor *got, lm_tensor *ref, int64_t *off,
                    double tol) {
    int64_t n = got ? lm_tensor_numel(got) : 0;
    bool fits = got && *off + n <= lm_tensor_numel(ref);
    CHECK_MSG(fits, "%s %s: reference too short", cas, what);
    if (!fits) return;
    lm_tensor *want =
        lm_tensor_wrap(lm_tensor_ctx(ref), LM_F32, lm_tensor_shape(got), lm_tensor_f32(ref) + *off);
    double e = ref_max_rel_err(got, want);
    CHECK_MSG(e <= tol, "%s %s: max rel err %.3g > %.1g", cas, what, e, tol);
    if (getenv("LM_VERBOSE")) fprintf(stderr, "  %-22s %-18s max rel err %.2e\n", cas, what, e);
    lm_tensor_free(want);
    *off += n;
}

#define MAXO 8

static void run_case(const pcase *pc) {
    lm_model *m = lm_functional(NULL);
    lm_ctx *ctx = lm_model_ctx(m);
    uint64_t seed = kg_fnv1a(pc->name);
    lm_tensor *ref = ref_load(ctx, FAM, pc->name, "ref");
    lm_tensor *x[5] = {NULL}, *r[MAXO] = {NULL};
    lm_session *s = NULL;
    CHECK_MSG(ref != NULL, "%s: no reference", pc->name);
    int n_in = 1 + pc->n_states;
    lm_kt *in[5], *outs[MAXO] = {NULL};
    in[0] = lm_model_input(m, LM_SHAPE(T, FEAT), "x");
    x[0] = lm_tensor_new(ctx, LM_F32, LM_SHAPE(N, T, FEAT));
    kg_fill(x[0], seed, 1.0);
    for (int i = 1; i < n_in; i++) {
        in[i] = lm_model_input(m, LM_SHAPE(pc->units), NULL);
        x[i] = lm_tensor_new(ctx, LM_F32, LM_SHAPE(N, pc->units));
        kg_fill(x[i], seed + 7919 * (uint64_t)i, 1.0);
    }
    lm_layer *l = make(pc->name);
    CHECK_MSG(l != NULL, "%s: constructor failed", pc->name);
    int n_out = lm_call_multi(l, n_in, in, MAXO, outs);
    CHECK_MSG(n_out > 0 && lm_model_set_outputs(m, n_out, outs) == LM_OK, "%s: %s", pc->name,
              lm_model_error(m));
    if (n_out <= 0 || !ref) goto out;

    /* Weights in get_weights order, then one R per output. */
    uint64_t k = (uint64_t)n_in;
    for (int i = 0; i < lm_layer_weight_count(l); i++, k++)
        kg_fill(lm_layer_weight(l, i), seed + 7919 * k, 0.5);
    lm_graph *g = m->g;
    lm_node *loss = NULL;
    for (int o = 0; o < n_out; o++, k++) {
        lm_shape ys = outs[o]->node->shape;
        ys.dims[0] = N;
        r[o] = lm_tensor_new(ctx, LM_F32, ys);
        kg_fill(r[o], seed + 7919 * k, 1.0);
        int axes[LM_MAX_DIMS];
        for (int d = 0; d < ys.ndim; d++) axes[d] = d;
        lm_node *t =
            lm_op_sum(g, lm_op_mul(g, outs[o]->node, lm_constant(g, r[o])), ys.ndim, axes, false);
        loss = loss ? lm_op_add(g, loss, t) : t;
    }
    lm_node *wrt[24], *grads[24] = {NULL};
    const char *names[24];
    int nw = 0;
    for (int i = 0; i < n_in; i++) names[nw] = i ? "state" : "x", wrt[nw++] = m->inputs[i]->node;
    lm_weight *ws[16];
    int n_w = lm_model_weights(m, ws, 16);
    for (int i = 0; i < n_w; i++) names[nw] = ws[i]->name, wrt[nw++] = ws[i]->var;
    CHECK_STATUS(lm_grad(g, loss, nw, wrt, grads), LM_OK);
    lm_node *nodes[MAXO + 24];
    for (int o = 0; o < n_out; o++) nodes[o] = outs[o]->node;
    for (int i = 0; i < nw; i++) nodes[n_out + i] = grads[i];
    s = lm_session_new(g, n_out + nw, nodes);
    CHECK_MSG(s != NULL, "%s: session: %s", pc->name, lm_ctx_error(ctx));
    if (!s) goto out;
    for (int i = 0; i < n_in; i++) lm_session_feed(s, m->inputs[i]->node, x[i]);
    CHECK_STATUS(lm_session_run(s), LM_OK);

    int64_t off = 0;
    for (int o = 0; o < n_out; o++) {
        char what[48];
        snprintf(what, sizeof what, "output %d", o);
        compare(pc->name, what, lm_session_output(s, o), ref, &off, 1e-5);
    }
    for (int i = 0; i < nw; i++) {
        char what[48];
        snprintf(what, sizeof what, "grad %d %s", i, names[i]);
        compare(pc->name, what, lm_session_output(s, n_out + i), ref, &off, 1e-4);
    }
    CHECK_MSG(off == lm_tensor_numel(ref), "%s: compared %lld of %lld reference values", pc->name,
              (long long)off, (long long)lm_tensor_numel(ref));
out:
    lm_session_free(s);
    for (int i = 0; i < 5; i++) lm_tensor_free(x[i]);
    for (int o = 0; o < MAXO; o++) lm_tensor_free(r[o]);
    lm_tensor_free(ref);
    lm_model_free(m);
}

static void test_layers(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
}

/* The examples' model: LSTM(50, return_sequences) -> LSTM(50) -> Dense(1):
 * predict, one SGD step (lr 0.1, mse), predict again. */
static void test_stacked_lstm(void) {
    lm_model *m = lm_sequential(NULL);
    lm_ctx *ctx = lm_model_ctx(m);
    uint64_t seed = kg_fnv1a("stacked_lstm");
    lm_add(m, lm_lstm(50, .return_sequences = true, .input_shape = LM_SHAPE(10, 1)));
    lm_add(m, lm_lstm(50));
    lm_add(m, lm_dense(1));
    CHECK_MSG(lm_model_status(m) == LM_OK, "stacked: %s", lm_model_error(m));
    CHECK(lm_model_count_params(m, false) == 10400 + 20200 + 51);
    lm_tensor *ref = ref_load(ctx, FAM, "stacked_lstm", "ref");
    lm_tensor *x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(4, 10, 1));
    lm_tensor *y = lm_tensor_new(ctx, LM_F32, LM_SHAPE(4, 1));
    kg_fill(x, seed, 1.0);
    kg_fill(y, seed + 7919, 1.0);
    for (int i = 0; i < lm_model_weight_count(m); i++)
        kg_fill(lm_model_weight(m, i), seed + 7919 * (uint64_t)(2 + i), 0.125);
    lm_tensor *before = lm_predict(m, x, .verbose = LM_SILENT);
    CHECK_MSG(before != NULL, "stacked: %s", lm_model_error(m));
    CHECK_STATUS(lm_compile(m, .optimizer = lm_sgd(.learning_rate = 0.1), .loss = LM_MSE), LM_OK);
    double loss = NAN;
    CHECK_MSG(lm_train_on_batch(m, x, y, NULL, &loss, 1) >= 1, "stacked: %s", lm_model_error(m));
    lm_tensor *after = lm_predict(m, x, .verbose = LM_SILENT);
    if (ref && before && after) {
        int64_t off = 0;
        compare("stacked_lstm", "predict", before, ref, &off, 1e-5);
        CHECK_NEAR(loss, lm_tensor_get(ref, off), 1e-5);
        off++;
        compare("stacked_lstm", "predict after step", after, ref, &off, 1e-5);
        CHECK(off == lm_tensor_numel(ref));
    }
    lm_tensor_free(before);
    lm_tensor_free(after);
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_tensor_free(ref);
    lm_model_free(m);
}

int main(void) {
    RUN(test_layers);
    RUN(test_stacked_lstm);
    return lmt_summary("test_parity_rnn_layers");
}
