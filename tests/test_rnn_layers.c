/* Behaviour of the recurrent layers SimpleRNN, LSTM, GRU and Bidirectional:
 * names and class names, weights (names, shapes, order, default
 * initializers, unit_forget_bias, GRU reset_after), output shapes with
 * return_sequences / return_state, go_backwards and initial_state semantics,
 * Bidirectional naming, weights and freezing, regularizers, training, and
 * every bad argument or input with its message. */
#include "lmtest.h"
#include "nn/nn.h"
#include <lamina/lamina.h>
#include <lamina/model.h>

static bool same_shape(lm_shape a, lm_shape b) {
    if (a.ndim != b.ndim) return false;
    for (int i = 0; i < a.ndim; i++)
        if (a.dims[i] != b.dims[i]) return false;
    return true;
}

#define CHECK_SHAPE(got, want)                                                                     \
    do {                                                                                           \
        char lmt_a_[96], lmt_b_[96];                                                               \
        lm_shape lmt_g_ = (got), lmt_w_ = (want);                                                  \
        CHECK_MSG(same_shape(lmt_g_, lmt_w_), "shape %s, wanted %s",                               \
                  lm_shape_str(lmt_g_, lmt_a_, sizeof lmt_a_),                                     \
                  lm_shape_str(lmt_w_, lmt_b_, sizeof lmt_b_));                                    \
    } while (0)

#define B (-1)

static lm_ctx *g_ctx; /* for tensors outliving a model */

/* Deterministic values in [-1, 1). */
static void fill(lm_tensor *t, unsigned seed) {
    uint32_t s = seed * 2654435761u + 1;
    for (int64_t i = 0; i < lm_tensor_numel(t); i++) {
        s = s * 1664525u + 1013904223u;
        lm_tensor_set(t, i, (double)(s >> 8) / (double)(1u << 23) - 1.0);
    }
}

/* Outputs of one call of l on input shape s (without the batch): their count and shapes. */
static int call_shapes(lm_layer *l, lm_shape s, lm_shape *out, int max) {
    lm_model *m = lm_functional(NULL);
    lm_kt *x = lm_model_input(m, s, NULL), *o[8];
    int n = lm_call_multi(l, 1, &x, 8, o);
    if (n < 0) fprintf(stderr, "  %s\n", lm_model_error(m));
    for (int i = 0; i < n && i < max; i++) out[i] = lm_kt_shape(o[i]);
    lm_model_free(m);
    return n;
}

/* The model error after calling l on inputs of the given shapes. */
static void expect_call_error(lm_layer *l, int n, const lm_shape *s, const char *msg,
                              const char *msg2) {
    lm_model *m = lm_functional(NULL);
    lm_kt *x[4];
    for (int i = 0; i < n; i++) x[i] = lm_model_input(m, s[i], NULL);
    lm_kt *o[8];
    CHECK(lm_call_multi(l, n, x, 8, o) < 0);
    CHECK(lm_model_status(m) != LM_OK);
    CHECK_CONTAINS(lm_model_error(m), msg);
    if (msg2) CHECK_CONTAINS(lm_model_error(m), msg2);
    lm_model_free(m);
}

static void test_names_weights(void) {
    lm_model *m = lm_functional(NULL);
    lm_kt *x = lm_model_input(m, LM_SHAPE(5, 3), NULL);
    lm_layer *ls[] = {lm_simple_rnn(4, .return_sequences = true),
                      lm_lstm(3, .return_sequences = true), lm_gru(2, .return_sequences = true),
                      lm_lstm(2), lm_gru(2, .reset_after = LM_FALSE, .input_dim = 0)};
    lm_kt *h = x;
    for (int i = 0; i < 4; i++) h = lm_call(ls[i], h);
    CHECK_MSG(h != NULL, "%s", lm_model_error(m));
    lm_kt *h2 = lm_call(ls[4], x);
    CHECK(h2 != NULL);
    const char *names[] = {"simple_rnn", "lstm", "gru", "lstm_1", "gru_1"};
    const char *cls[] = {"SimpleRNN", "LSTM", "GRU", "LSTM", "GRU"};
    for (int i = 0; i < 5; i++) {
        CHECK_CONTAINS(lm_layer_name(ls[i]), names[i]);
        CHECK(!strcmp(lm_layer_name(ls[i]), names[i]));
        CHECK(!strcmp(lm_layer_class(ls[i]), cls[i]));
        CHECK(lm_layer_weight_count(ls[i]) == 3);
        CHECK(!strcmp(lm_layer_weight_name(ls[i], 0), "kernel"));
        CHECK(!strcmp(lm_layer_weight_name(ls[i], 1), "recurrent_kernel"));
        CHECK(!strcmp(lm_layer_weight_name(ls[i], 2), "bias"));
        for (int k = 0; k < 3; k++) CHECK(lm_layer_weight_trainable(ls[i], k));
    }
    /* kernel (features, k * units), recurrent_kernel (units, k * units), bias */
    CHECK_SHAPE(lm_tensor_shape(lm_layer_weight(ls[0], 0)), LM_SHAPE(3, 4));
    CHECK_SHAPE(lm_tensor_shape(lm_layer_weight(ls[0], 1)), LM_SHAPE(4, 4));
    CHECK_SHAPE(lm_tensor_shape(lm_layer_weight(ls[0], 2)), LM_SHAPE(4));
    CHECK_SHAPE(lm_tensor_shape(lm_layer_weight(ls[1], 0)), LM_SHAPE(4, 12));
    CHECK_SHAPE(lm_tensor_shape(lm_layer_weight(ls[1], 1)), LM_SHAPE(3, 12));
    CHECK_SHAPE(lm_tensor_shape(lm_layer_weight(ls[1], 2)), LM_SHAPE(12));
    CHECK_SHAPE(lm_tensor_shape(lm_layer_weight(ls[2], 0)), LM_SHAPE(3, 6));
    CHECK_SHAPE(lm_tensor_shape(lm_layer_weight(ls[2], 1)), LM_SHAPE(2, 6));
    CHECK_SHAPE(lm_tensor_shape(lm_layer_weight(ls[2], 2)), LM_SHAPE(2, 6)); /* reset_after */
    CHECK_SHAPE(lm_tensor_shape(lm_layer_weight(ls[3], 2)), LM_SHAPE(8));
    CHECK_SHAPE(lm_tensor_shape(lm_layer_weight(ls[4], 2)), LM_SHAPE(6)); /* reset_after false */
    CHECK_SHAPE(lm_kt_shape(h), LM_SHAPE(B, 2));
    /* Keras's counts: 3*4+4*4+4, 4*(4*3+3*3+3), 3*(3*2+2*2+2*2), 4*(2*2+2*2+2), 3*(3*2+2*2+2) */
    lm_model_set_outputs(m, 1, &h);
    CHECK(lm_model_count_params(m, false) == 32 + 96 + 42 + 40 + 36);
    lm_model_free(m);

    /* use_bias false: two weights */
    m = lm_functional(NULL);
    lm_layer *nb = lm_lstm(3, .use_bias = LM_FALSE, .name = "encoder");
    CHECK(lm_call(nb, lm_model_input(m, LM_SHAPE(4, 2), NULL)) != NULL);
    CHECK(!strcmp(lm_layer_name(nb), "encoder"));
    CHECK(lm_layer_weight_count(nb) == 2);
    lm_model_free(m);
}

static void test_initializers(void) {
    lm_model *m = lm_functional(NULL);
    lm_kt *x = lm_model_input(m, LM_SHAPE(6, 5), NULL);
    enum { H = 4 };
    lm_layer *a = lm_lstm(H), *b = lm_lstm(H, .unit_forget_bias = LM_FALSE),
             *c = lm_lstm(H, .bias_initializer = lm_constant_init(0.5)),
             *d = lm_gru(H, .bias_initializer = lm_constant_init(0.25));
    lm_layer *all[] = {a, b, c, d};
    for (int i = 0; i < 4; i++) CHECK(lm_call(all[i], x) != NULL);
    /* unit_forget_bias: [init(units), ones(units), init(2 * units)] */
    for (int i = 0; i < 4 * H; i++) {
        bool forget = i >= H && i < 2 * H;
        CHECK(lm_tensor_get(lm_layer_weight(a, 2), i) == (forget ? 1.0 : 0.0));
        CHECK(lm_tensor_get(lm_layer_weight(b, 2), i) == 0.0);
        CHECK(lm_tensor_get(lm_layer_weight(c, 2), i) == (forget ? 1.0 : 0.5));
    }
    for (int i = 0; i < 2 * 3 * H; i++) CHECK(lm_tensor_get(lm_layer_weight(d, 2), i) == 0.25);
    /* glorot_uniform kernel: within sqrt(6 / (fan_in + fan_out)), not constant */
    lm_tensor *k = lm_layer_weight(a, 0);
    double lim = sqrt(6.0 / (5 + 4 * H)), lo = 1, hi = -1;
    for (int64_t i = 0; i < lm_tensor_numel(k); i++) {
        double v = lm_tensor_get(k, i);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    CHECK(lo >= -lim && hi <= lim && hi - lo > lim / 2);
    /* orthogonal recurrent kernel (H, 4H): orthonormal rows */
    lm_tensor *r = lm_layer_weight(a, 1);
    for (int i = 0; i < H; i++)
        for (int j = 0; j < H; j++) {
            double dot = 0;
            for (int q = 0; q < 4 * H; q++)
                dot += lm_tensor_get(r, i * 4 * H + q) * lm_tensor_get(r, j * 4 * H + q);
            CHECK_NEAR(dot, i == j ? 1.0 : 0.0, 1e-5);
        }
    lm_model_free(m);
}

static void test_output_shapes(void) {
    lm_shape s[6];
    CHECK(call_shapes(lm_simple_rnn(4), LM_SHAPE(7, 3), s, 6) == 1);
    CHECK_SHAPE(s[0], LM_SHAPE(B, 4));
    CHECK(call_shapes(lm_gru(4, .return_sequences = true), LM_SHAPE(7, 3), s, 6) == 1);
    CHECK_SHAPE(s[0], LM_SHAPE(B, 7, 4));
    CHECK(call_shapes(lm_lstm(5, .return_state = true), LM_SHAPE(7, 3), s, 6) == 3);
    for (int i = 0; i < 3; i++) CHECK_SHAPE(s[i], LM_SHAPE(B, 5));
    CHECK(call_shapes(lm_lstm(5, .return_state = true, .return_sequences = true), LM_SHAPE(7, 3), s,
                      6) == 3);
    CHECK_SHAPE(s[0], LM_SHAPE(B, 7, 5));
    CHECK_SHAPE(s[2], LM_SHAPE(B, 5));
    CHECK(call_shapes(lm_gru(2, .return_state = true), LM_SHAPE(7, 3), s, 6) == 2);
    CHECK(call_shapes(lm_simple_rnn(2, .return_state = true), LM_SHAPE(7, 3), s, 6) == 2);
    /* Bidirectional merges */
    CHECK(call_shapes(lm_bidirectional(lm_lstm(4, .return_sequences = true)), LM_SHAPE(7, 3), s,
                      6) == 1);
    CHECK_SHAPE(s[0], LM_SHAPE(B, 7, 8));
    CHECK(call_shapes(lm_bidirectional(lm_gru(4), .merge_mode = LM_MERGE_SUM), LM_SHAPE(7, 3), s,
                      6) == 1);
    CHECK_SHAPE(s[0], LM_SHAPE(B, 4));
    CHECK(
        call_shapes(lm_bidirectional(lm_lstm(4, .return_state = true), .merge_mode = LM_MERGE_MUL),
                    LM_SHAPE(7, 3), s, 6) == 5);
    for (int i = 0; i < 5; i++) CHECK_SHAPE(s[i], LM_SHAPE(B, 4));
    CHECK(call_shapes(lm_bidirectional(lm_gru(3, .return_state = true, .return_sequences = true)),
                      LM_SHAPE(7, 3), s, 6) == 3);
    CHECK_SHAPE(s[0], LM_SHAPE(B, 7, 6));
    CHECK_SHAPE(s[2], LM_SHAPE(B, 3));
    /* unknown timesteps are fine without reversing a sequence */
    CHECK(call_shapes(lm_lstm(2, .return_sequences = true), LM_SHAPE(-1, 3), s, 6) == 1);
    CHECK_SHAPE(s[0], LM_SHAPE(B, -1, 2));
    CHECK(call_shapes(lm_bidirectional(lm_lstm(2)), LM_SHAPE(-1, 3), s, 6) == 1);
    CHECK_SHAPE(s[0], LM_SHAPE(B, 4));
}

/* Runs a one-input model on x; returns output o (a new tensor). */
static lm_tensor *run(lm_model *m, lm_tensor *x, int o) {
    lm_tensor *out[8] = {NULL};
    int n = lm_predict_multi(m, 1, &x, 8, out, (lm_predict_opts){.verbose = LM_SILENT});
    CHECK_MSG(n > o, "%s", lm_model_error(m));
    for (int i = 0; i < n; i++)
        if (i != o) lm_tensor_free(out[i]);
    return n > o ? out[o] : NULL;
}

static lm_tensor *reversed_time(lm_tensor *x) {
    lm_shape s = lm_tensor_shape(x);
    lm_tensor *r = lm_tensor_new(lm_tensor_ctx(x), LM_F32, s);
    int64_t n = s.dims[0], t = s.dims[1], f = s.dims[2];
    for (int64_t a = 0; a < n; a++)
        for (int64_t b = 0; b < t; b++)
            for (int64_t c = 0; c < f; c++)
                lm_tensor_set(r, (a * t + b) * f + c,
                              lm_tensor_get(x, (a * t + t - 1 - b) * f + c));
    return r;
}

static bool equal(lm_tensor *a, lm_tensor *b, double tol) {
    if (!a || !b || lm_tensor_numel(a) != lm_tensor_numel(b)) return false;
    for (int64_t i = 0; i < lm_tensor_numel(a); i++)
        if (fabs(lm_tensor_get(a, i) - lm_tensor_get(b, i)) > tol) return false;
    return true;
}

/* go_backwards reads the sequence from the end and returns the outputs in
 * processing order: the same as a forward layer on the reversed input. */
static void test_go_backwards(void) {
    lm_layer *(*mk[3])(int, lm_rnn_layer_opts) = {lm_simple_rnn_, lm_lstm_, lm_gru_};
    for (int k = 0; k < 3; k++) {
        lm_model *m = lm_functional(NULL);
        lm_kt *x = lm_model_input(m, LM_SHAPE(6, 3), NULL);
        lm_layer *fw = mk[k](4, (lm_rnn_layer_opts){.return_sequences = true});
        lm_layer *bw =
            mk[k](4, (lm_rnn_layer_opts){.return_sequences = true, .go_backwards = true});
        lm_kt *o[2] = {lm_call(fw, x), lm_call(bw, x)};
        CHECK(lm_model_set_outputs(m, 2, o) == LM_OK);
        for (int i = 0; i < 3; i++)
            lm_tensor_assign(lm_layer_weight(bw, i), lm_layer_weight(fw, i));
        lm_tensor *xv = lm_tensor_new(lm_model_ctx(m), LM_F32, LM_SHAPE(2, 6, 3));
        fill(xv, 7 + k);
        lm_tensor *xr = reversed_time(xv);
        lm_tensor *yb = run(m, xv, 1), *yf = run(m, xr, 0);
        CHECK_MSG(equal(yb, yf, 1e-6), "%s go_backwards", lm_layer_class(fw));
        lm_tensor *yf0 = run(m, xv, 0);
        CHECK(!equal(yb, yf0, 1e-3));
        lm_tensor_free(yb);
        lm_tensor_free(yf);
        lm_tensor_free(yf0);
        lm_tensor_free(xv);
        lm_tensor_free(xr);
        lm_model_free(m);
    }
}

/* initial_state: zeros give the default; other states change the output;
 * return_state's final states are the last output (and cell). */
static void test_initial_state(void) {
    lm_model *m = lm_functional(NULL);
    lm_ctx *ctx = lm_model_ctx(m);
    lm_kt *in[3] = {lm_model_input(m, LM_SHAPE(4, 3), "x"), lm_model_input(m, LM_SHAPE(5), "h"),
                    lm_model_input(m, LM_SHAPE(5), "c")};
    lm_layer *l = lm_lstm(5, .return_state = true);
    lm_kt *o[3];
    CHECK(lm_call_multi(l, 3, in, 3, o) == 3);
    lm_kt *o2 = lm_call(l, in[0]); /* the same layer without a state */
    lm_kt *outs[4] = {o[0], o[1], o[2], o2};
    CHECK(lm_model_set_outputs(m, 4, outs) == LM_OK);
    lm_tensor *x[3] = {lm_tensor_new(ctx, LM_F32, LM_SHAPE(2, 4, 3)),
                       lm_tensor_new(ctx, LM_F32, LM_SHAPE(2, 5)),
                       lm_tensor_new(ctx, LM_F32, LM_SHAPE(2, 5))};
    fill(x[0], 3);
    lm_tensor *y[4] = {NULL};
    CHECK(lm_predict_multi(m, 3, x, 4, y, (lm_predict_opts){.verbose = LM_SILENT}) == 4);
    CHECK(equal(y[0], y[3], 0));
    CHECK(equal(y[0], y[1], 0));
    for (int i = 0; i < 4; i++) lm_tensor_free(y[i]);
    fill(x[1], 4);
    fill(x[2], 5);
    CHECK(lm_predict_multi(m, 3, x, 4, y, (lm_predict_opts){.verbose = LM_SILENT}) == 4);
    CHECK(!equal(y[0], y[3], 1e-4));
    CHECK(!equal(y[1], y[2], 1e-4));
    for (int i = 0; i < 4; i++) lm_tensor_free(y[i]);
    for (int i = 0; i < 3; i++) lm_tensor_free(x[i]);
    lm_model_free(m);
}

static void test_bidirectional(void) {
    lm_model *m = lm_functional(NULL);
    lm_kt *x = lm_model_input(m, LM_SHAPE(5, 3), NULL);
    lm_layer *b1 = lm_bidirectional(lm_lstm(4, .return_sequences = true));
    lm_layer *b2 = lm_bidirectional(lm_lstm(2), .trainable = LM_FALSE);
    lm_layer *plain = lm_lstm(2);
    lm_layer *b3 = lm_bidirectional(lm_gru(2, .name = "enc"), .name = "bi");
    lm_kt *h = lm_call(b1, x);
    lm_kt *o[3] = {lm_call(b2, h), lm_call(plain, h), lm_call(b3, x)};
    CHECK_MSG(o[0] && o[1] && o[2], "%s", lm_model_error(m));
    CHECK(lm_model_set_outputs(m, 3, o) == LM_OK);
    CHECK(!strcmp(lm_layer_name(b1), "bidirectional"));
    CHECK(!strcmp(lm_layer_class(b1), "Bidirectional"));
    CHECK(!strcmp(lm_layer_name(b1->inner[0]), "forward_lstm"));
    CHECK(!strcmp(lm_layer_name(b1->inner[1]), "backward_lstm"));
    CHECK(!strcmp(lm_layer_name(b2), "bidirectional_1"));
    CHECK(!strcmp(lm_layer_name(b2->inner[0]), "forward_lstm_1"));
    CHECK(!strcmp(lm_layer_name(plain), "lstm_2"));
    CHECK(!strcmp(lm_layer_name(b3), "bi"));
    CHECK(!strcmp(lm_layer_name(b3->inner[0]), "forward_enc"));
    CHECK(!strcmp(lm_layer_name(b3->inner[1]), "backward_enc"));
    /* weights: forward then backward, through the wrapper */
    CHECK(lm_layer_weight_count(b1) == 6);
    CHECK(lm_layer_weight(b1, 0) == b1->inner[0]->w[0].value);
    CHECK(lm_layer_weight(b1, 5) == b1->inner[1]->w[2].value);
    CHECK(!strcmp(lm_layer_weight_name(b1, 4), "recurrent_kernel"));
    CHECK(lm_layer_weight(b1, 6) == NULL);
    CHECK_SHAPE(lm_tensor_shape(lm_layer_weight(b2, 3)), LM_SHAPE(8, 8));
    /* 2 * 4*(3*4+4*4+4), 2 * 4*(8*2+2*2+2), 4*(8*2+2*2+2), 2 * 3*(3*2+2*2+2*2) */
    CHECK(lm_model_count_params(m, false) == 256 + 176 + 88 + 84);
    CHECK(lm_model_count_params(m, true) == 256 + 88 + 84);
    for (int i = 0; i < 6; i++) CHECK(!lm_layer_weight_trainable(b2, i));
    CHECK(lm_layer_set_trainable(b2, true) == LM_OK);
    for (int i = 0; i < 6; i++) CHECK(lm_layer_weight_trainable(b2, i));
    CHECK(lm_layer_set_trainable(b1, false) == LM_OK);
    for (int i = 0; i < 6; i++) CHECK(!lm_layer_weight_trainable(b1, i));
    /* set_weights through the wrapper, in Keras's order */
    lm_tensor *w[6];
    for (int i = 0; i < 6; i++) {
        w[i] = lm_tensor_new(lm_model_ctx(m), LM_F32, lm_tensor_shape(lm_layer_weight(b3, i)));
        lm_tensor_fill(w[i], i);
    }
    CHECK(lm_layer_set_weights(b3, 6, w) == LM_OK);
    CHECK(lm_tensor_get(b3->inner[1]->w[0].value, 0) == 3.0);
    CHECK(lm_layer_set_weights(b3, 5, w) != LM_OK);
    CHECK_CONTAINS(lm_ctx_error(lm_model_ctx(m)), "expects 6 weights");
    for (int i = 0; i < 6; i++) lm_tensor_free(w[i]);
    lm_model_free(m);

    /* an input shape on the wrapped layer defines a Sequential model's input */
    m = lm_sequential(NULL);
    lm_add(m, lm_bidirectional(lm_simple_rnn(3, .input_shape = LM_SHAPE(4, 2))));
    CHECK_MSG(lm_model_status(m) == LM_OK, "%s", lm_model_error(m));
    CHECK(lm_model_count_params(m, false) == 2 * (2 * 3 + 3 * 3 + 3));
    lm_model_free(m);
}

static void test_bad_input(void) {
    lm_shape s2[] = {LM_SHAPE(5)};
    expect_call_error(lm_lstm(3), 1, s2, "lstm: LSTM expects a 3-D input", "(None, 5)");
    expect_call_error(lm_simple_rnn(3), 1, s2, "simple_rnn", "(None, 5)");
    lm_shape s4[] = {LM_SHAPE(5, 2, 3)};
    expect_call_error(lm_gru(3), 1, s4, "gru: GRU expects a 3-D input", "(None, 5, 2, 3)");
    expect_call_error(lm_bidirectional(lm_gru(3)), 1, s2, "bidirectional: Bidirectional(GRU)",
                      "(None, 5)");
    /* unknown features cannot size the kernel */
    lm_shape su[] = {LM_SHAPE(5, -1)};
    expect_call_error(lm_lstm(3), 1, su, "lstm", "(None, 5, None)");
    /* initial_state: LSTM needs [h, c]; each (batch, units) */
    lm_shape sh[] = {LM_SHAPE(5, 2), LM_SHAPE(3)};
    expect_call_error(lm_lstm(3), 2, sh, "lstm: LSTM takes the input and an initial_state of 2",
                      "got 1 state tensor");
    lm_shape sbad[] = {LM_SHAPE(5, 2), LM_SHAPE(4)};
    expect_call_error(lm_gru(3), 2, sbad, "gru: initial state 0 must be (batch, 3)", "(None, 4)");
    lm_shape sbi[] = {LM_SHAPE(5, 2), LM_SHAPE(3), LM_SHAPE(3), LM_SHAPE(3)};
    expect_call_error(lm_bidirectional(lm_lstm(3)), 4, sbi, "initial_state of 4 tensors",
                      "got 3 state tensors");
    /* too many inputs for the layer kind */
    lm_shape s3[] = {LM_SHAPE(5, 2), LM_SHAPE(3), LM_SHAPE(3)};
    expect_call_error(lm_gru(3), 3, s3, "takes 1 to 2 inputs", NULL);
    /* features differing from the built kernel on a second call */
    {
        lm_model *m = lm_functional(NULL);
        lm_layer *l = lm_simple_rnn(2);
        CHECK(lm_call(l, lm_model_input(m, LM_SHAPE(4, 3), NULL)) != NULL);
        CHECK(lm_call(l, lm_model_input(m, LM_SHAPE(4, 5), NULL)) == NULL);
        CHECK_CONTAINS(lm_model_error(m), "simple_rnn: SimpleRNN expects input of shape (batch, "
                                          "timesteps, 3), got (None, 4, 5)");
        lm_model_free(m);
    }
    /* activations the fused kernels lack */
    expect_call_error(lm_lstm(3, .activation = LM_ELU), 1, (lm_shape[]){LM_SHAPE(4, 2)},
                      "lstm: activation elu is not supported by LSTM", NULL);
    expect_call_error(lm_gru(3, .recurrent_activation = LM_SOFTSIGN), 1,
                      (lm_shape[]){LM_SHAPE(4, 2)}, "recurrent_activation softsign", NULL);
    /* reversing a backward sequence needs the number of steps */
    expect_call_error(lm_bidirectional(lm_gru(3, .return_sequences = true)), 1,
                      (lm_shape[]){LM_SHAPE(-1, 2)}, "needs a known number of timesteps", NULL);
    /* constructors */
    CHECK(lm_lstm(0) == NULL);
    CHECK(lm_gru(-2) == NULL);
    CHECK(lm_simple_rnn(3, .activation = LM_ACT_COUNT) == NULL);
    CHECK(lm_bidirectional(NULL) == NULL);
    CHECK(lm_bidirectional(lm_dense(3)) == NULL);
    /* Keras: the forward and backward layers must differ in go_backwards */
    CHECK(lm_bidirectional(lm_lstm(3, .go_backwards = true)) == NULL);
    CHECK(lm_bidirectional(lm_lstm(3), .merge_mode = (lm_merge_mode)9) == NULL);
}

/* Regularizers: the penalty of each weight joins the loss. */
static void test_regularizers(void) {
    lm_regularizer k2 = lm_l2(0.01), r1 = lm_l1(0.02), b2 = lm_l2(0.5);
    double loss[2];
    lm_tensor *x = NULL, *y = NULL;
    double penalty = 0;
    for (int v = 0; v < 2; v++) {
        lm_model *m = lm_sequential(NULL);
        lm_layer *l =
            v ? lm_gru(3, .input_shape = LM_SHAPE(4, 2), .kernel_regularizer = &k2,
                       .recurrent_regularizer = &r1, .bias_regularizer = &b2,
                       .bias_initializer = lm_constant_init(0.1))
              : lm_gru(3, .input_shape = LM_SHAPE(4, 2), .bias_initializer = lm_constant_init(0.1));
        lm_add(m, l);
        if (!x) {
            x = lm_tensor_new(g_ctx, LM_F32, LM_SHAPE(6, 4, 2));
            y = lm_tensor_new(g_ctx, LM_F32, LM_SHAPE(6, 3));
            fill(x, 1);
            fill(y, 2);
        }
        for (int i = 0; i < 2; i++) fill(lm_layer_weight(l, i), 10 + i);
        if (v) {
            double sk = 0, sr = 0, sb = 0;
            for (int64_t i = 0; i < lm_tensor_numel(lm_layer_weight(l, 0)); i++)
                sk += pow(lm_tensor_get(lm_layer_weight(l, 0), i), 2);
            for (int64_t i = 0; i < lm_tensor_numel(lm_layer_weight(l, 1)); i++)
                sr += fabs(lm_tensor_get(lm_layer_weight(l, 1), i));
            sb = 2 * 3 * 3 * 0.01;
            penalty = 0.01 * sk + 0.02 * sr + 0.5 * sb;
        }
        CHECK(lm_compile(m, .optimizer = lm_sgd(), .loss = LM_MSE) == LM_OK);
        CHECK(lm_evaluate(m, x, y, &loss[v], 1, .verbose = LM_SILENT) == 1);
        lm_model_free(m);
    }
    CHECK_NEAR(loss[1] - loss[0], penalty, 1e-5);
    lm_tensor_free(x);
    lm_tensor_free(y);
}

/* Training: a stacked LSTM and a Bidirectional GRU learn the mean of a sequence. */
static void test_training(void) {
    for (int v = 0; v < 2; v++) {
        lm_model *m = lm_sequential(NULL);
        lm_ctx_seed(lm_model_ctx(m), 42);
        if (v == 0) {
            lm_add(m, lm_lstm(8, .return_sequences = true, .input_shape = LM_SHAPE(6, 1)));
            lm_add(m, lm_lstm(8));
        } else {
            lm_add(m, lm_bidirectional(lm_gru(6, .return_sequences = true),
                                       .input_shape = LM_SHAPE(6, 1)));
            lm_add(m, lm_bidirectional(lm_simple_rnn(4), .merge_mode = LM_MERGE_AVE));
        }
        lm_add(m, lm_dense(1));
        CHECK_MSG(lm_model_status(m) == LM_OK, "%s", lm_model_error(m));
        lm_tensor *x = lm_tensor_new(g_ctx, LM_F32, LM_SHAPE(64, 6, 1));
        lm_tensor *y = lm_tensor_new(g_ctx, LM_F32, LM_SHAPE(64, 1));
        fill(x, 99);
        for (int i = 0; i < 64; i++) {
            double s = 0;
            for (int t = 0; t < 6; t++) s += lm_tensor_get(x, i * 6 + t);
            lm_tensor_set(y, i, s / 6);
        }
        CHECK(lm_compile(m, .optimizer = lm_adam(.learning_rate = 0.01), .loss = LM_MSE) == LM_OK);
        double before = NAN, after = NAN;
        lm_evaluate(m, x, y, &before, 1, .verbose = LM_SILENT);
        lm_history *h = lm_fit(m, x, y, .epochs = 40, .batch_size = 16, .verbose = LM_SILENT);
        CHECK_MSG(h != NULL, "%s", lm_model_error(m));
        lm_history_free(h);
        lm_evaluate(m, x, y, &after, 1, .verbose = LM_SILENT);
        if (getenv("LM_VERBOSE"))
            fprintf(stderr, "  variant %d: loss %.4f -> %.4f\n", v, before, after);
        CHECK_MSG(after < before / 4, "variant %d: loss %.4f -> %.4f", v, before, after);
        lm_tensor_free(x);
        lm_tensor_free(y);
        lm_model_free(m);
    }
}

int main(void) {
    g_ctx = lm_ctx_new();
    RUN(test_names_weights);
    RUN(test_initializers);
    RUN(test_output_shapes);
    RUN(test_go_backwards);
    RUN(test_initial_state);
    RUN(test_bidirectional);
    RUN(test_bad_input);
    RUN(test_regularizers);
    RUN(test_training);
    lm_ctx_free(g_ctx);
    return lmt_summary("test_rnn_layers");
}
