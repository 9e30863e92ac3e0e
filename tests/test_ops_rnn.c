/* simple_rnn, lstm and gru: argument, shape and dtype errors, run-time shape
 * errors, zero-sized batches and sequences, exact values, go_backwards order,
 * and results independent of the thread count. */
#include "lmtest.h"
#include <lamina/lamina.h>
#include <math.h>

static lm_ctx *ctx;

static lm_node *var(lm_graph *g, const char *name, lm_shape s, const float *v) {
    lm_node *n = lm_variable(g, name, LM_F32, s);
    if (n && v) lm_tensor_copy_from(lm_variable_value(n), v, (size_t)lm_shape_numel(s) * 4);
    return n;
}

/* A variable filled with U[-1, 1). */
static lm_node *rvar(lm_graph *g, const char *name, lm_shape s) {
    lm_node *n = lm_variable(g, name, LM_F32, s);
    if (n) lm_tensor_random_uniform(lm_variable_value(n), -1, 1);
    return n;
}

/* The construction failed with a message containing every given piece. */
#define CHECK_FAILS(g, node, ...)                                                                  \
    do {                                                                                           \
        const char *pieces_[] = {__VA_ARGS__};                                                     \
        CHECK((node) == NULL);                                                                     \
        for (size_t i_ = 0; i_ < sizeof pieces_ / sizeof *pieces_; i_++)                           \
            CHECK_CONTAINS(lm_graph_error(g), pieces_[i_]);                                        \
    } while (0)

static const lm_rnn_opts defaults = {0};

static void shape_errors(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x2 = var(g, "x2", LM_SHAPE(2, 3), NULL), *k = var(g, "k", LM_SHAPE(3, 16), NULL);
    lm_node *r = var(g, "r", LM_SHAPE(4, 16), NULL);
    CHECK_FAILS(g, lm_op_lstm(g, x2, k, r, NULL, NULL, NULL, defaults, NULL, NULL), "lstm",
                "(batch, steps, features)", "input (2, 3)", "kernel (3, 16)",
                "recurrent kernel (4, 16)");
    lm_graph_free(g);

    /* Kernel rows must be the features; columns 4 * units. */
    g = lm_graph_new(ctx);
    lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 5, 3), "x");
    k = var(g, "k", LM_SHAPE(2, 16), NULL);
    r = var(g, "r", LM_SHAPE(4, 16), NULL);
    CHECK_FAILS(g, lm_op_lstm(g, x, k, r, NULL, NULL, NULL, defaults, NULL, NULL), "lstm",
                "input (None, 5, 3)", "kernel (2, 16)", "recurrent kernel (4, 16)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 5, 3), "x");
    k = var(g, "k", LM_SHAPE(3, 12), NULL);
    r = var(g, "r", LM_SHAPE(4, 12), NULL);
    CHECK_FAILS(g, lm_op_lstm(g, x, k, r, NULL, NULL, NULL, defaults, NULL, NULL), "lstm",
                "4 * units", "kernel (3, 12)", "recurrent kernel (4, 12)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 5, 3), "x");
    k = var(g, "k", LM_SHAPE(3, 4), NULL);
    r = var(g, "r", LM_SHAPE(4, 5), NULL);
    CHECK_FAILS(g, lm_op_simple_rnn(g, x, k, r, NULL, NULL, defaults, NULL), "simple_rnn",
                "1 * units", "kernel (3, 4)", "recurrent kernel (4, 5)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 5, 3), "x");
    k = var(g, "k", LM_SHAPE(3, 4), NULL);
    r = var(g, "r", LM_SHAPE(4, 4, 1), NULL);
    CHECK_FAILS(g, lm_op_simple_rnn(g, x, k, r, NULL, NULL, defaults, NULL), "simple_rnn", "2-D",
                "recurrent kernel (4, 4, 1)");
    lm_graph_free(g);
}

static void bias_and_state_errors(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(2, 5, 3), "x");
    lm_node *k = var(g, "k", LM_SHAPE(3, 16), NULL), *r = var(g, "r", LM_SHAPE(4, 16), NULL);
    lm_node *b8 = var(g, "b8", LM_SHAPE(8), NULL);
    CHECK_FAILS(g, lm_op_lstm(g, x, k, r, b8, NULL, NULL, defaults, NULL, NULL), "lstm",
                "bias must be (4 * units)", "bias (8,)", "input (2, 5, 3)");
    lm_graph_free(g);

    /* GRU: reset_after wants (2, 3H), reset before (3H). */
    g = lm_graph_new(ctx);
    x = lm_placeholder(g, LM_F32, LM_SHAPE(2, 5, 3), "x");
    k = var(g, "k", LM_SHAPE(3, 12), NULL);
    r = var(g, "r", LM_SHAPE(4, 12), NULL);
    lm_node *b12 = var(g, "b12", LM_SHAPE(12), NULL), *b2 = var(g, "b2", LM_SHAPE(2, 12), NULL);
    CHECK_FAILS(g, lm_op_gru(g, x, k, r, b12, NULL, defaults, NULL), "gru",
                "bias must be (2, 3 * units)", "bias (12,)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_placeholder(g, LM_F32, LM_SHAPE(2, 5, 3), "x");
    k = var(g, "k", LM_SHAPE(3, 12), NULL);
    r = var(g, "r", LM_SHAPE(4, 12), NULL);
    b12 = var(g, "b12", LM_SHAPE(12), NULL);
    b2 = var(g, "b2", LM_SHAPE(2, 12), NULL);
    lm_rnn_opts before = {.reset_after_set = true};
    CHECK(lm_op_gru(g, x, k, r, b12, NULL, before, NULL) != NULL);
    CHECK(lm_op_gru(g, x, k, r, b2, NULL, defaults, NULL) != NULL);
    CHECK_FAILS(g, lm_op_gru(g, x, k, r, b2, NULL, before, NULL), "gru", "bias must be (3 * units)",
                "bias (2, 12)");
    lm_graph_free(g);

    /* Initial states: (batch, units). */
    g = lm_graph_new(ctx);
    x = lm_placeholder(g, LM_F32, LM_SHAPE(2, 5, 3), "x");
    k = var(g, "k", LM_SHAPE(3, 16), NULL);
    r = var(g, "r", LM_SHAPE(4, 16), NULL);
    lm_node *h3 = var(g, "h3", LM_SHAPE(3, 4), NULL), *h4 = var(g, "h4", LM_SHAPE(2, 4), NULL);
    lm_node *c5 = var(g, "c5", LM_SHAPE(2, 5), NULL);
    CHECK_FAILS(g, lm_op_lstm(g, x, k, r, NULL, h3, NULL, defaults, NULL, NULL), "lstm",
                "initial state h0", "h0 (3, 4)", "input (2, 5, 3)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_placeholder(g, LM_F32, LM_SHAPE(2, 5, 3), "x");
    k = var(g, "k", LM_SHAPE(3, 16), NULL);
    r = var(g, "r", LM_SHAPE(4, 16), NULL);
    h4 = var(g, "h4", LM_SHAPE(2, 4), NULL);
    c5 = var(g, "c5", LM_SHAPE(2, 5), NULL);
    lm_node *hl = x, *cl = x;
    CHECK_FAILS(g, lm_op_lstm(g, x, k, r, NULL, h4, c5, defaults, &hl, &cl), "lstm",
                "initial state c0", "c0 (2, 5)", "h0 (2, 4)");
    CHECK(hl == NULL && cl == NULL);
    lm_graph_free(g);
}

static void dtype_and_argument_errors(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_placeholder(g, LM_I32, LM_SHAPE(2, 5, 3), "x");
    lm_node *k = var(g, "k", LM_SHAPE(3, 12), NULL), *r = var(g, "r", LM_SHAPE(4, 12), NULL);
    CHECK_FAILS(g, lm_op_gru(g, x, k, r, NULL, NULL, defaults, NULL), "gru", "float32", "int32",
                "input (2, 5, 3)");
    /* Sticky: later ops given the NULL return NULL, keeping the first message. */
    lm_node *h = x;
    CHECK(lm_op_gru(g, NULL, k, r, NULL, NULL, defaults, &h) == NULL);
    CHECK(h == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "int32");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_placeholder(g, LM_F32, LM_SHAPE(2, 5, 3), "x");
    k = var(g, "k", LM_SHAPE(3, 4), NULL);
    r = var(g, "r", LM_SHAPE(4, 4), NULL);
    lm_rnn_opts elu = {.activation = LM_ACT_ELU};
    CHECK_FAILS(g, lm_op_simple_rnn(g, x, k, r, NULL, NULL, elu, NULL), "simple_rnn",
                "activation elu is not supported", "input (2, 5, 3)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_placeholder(g, LM_F32, LM_SHAPE(2, 5, 3), "x");
    k = var(g, "k", LM_SHAPE(3, 16), NULL);
    r = var(g, "r", LM_SHAPE(4, 16), NULL);
    lm_rnn_opts sm = {.recurrent_activation = LM_ACT_SOFTMAX};
    CHECK_FAILS(g, lm_op_lstm(g, x, k, r, NULL, NULL, NULL, sm, NULL, NULL), "lstm",
                "recurrent activation softmax is not supported");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    k = var(g, "k", LM_SHAPE(3, 16), NULL);
    r = var(g, "r", LM_SHAPE(4, 16), NULL);
    CHECK_FAILS(g, lm_op_lstm(g, NULL, k, r, NULL, NULL, NULL, defaults, NULL, NULL), "lstm",
                "input 0 is NULL");
    lm_graph_free(g);
    CHECK(lm_op_lstm(NULL, NULL, NULL, NULL, NULL, NULL, NULL, defaults, NULL, NULL) == NULL);
}

/* Shapes checked again when the batch and steps are only known at run time. */
static void run_time_shape_error(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, -1, 3), "x");
    lm_node *h0 = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 4), "h0");
    lm_node *k = rvar(g, "k", LM_SHAPE(3, 12)), *r = rvar(g, "r", LM_SHAPE(4, 12));
    lm_node *y = lm_op_gru(g, x, k, r, NULL, h0, defaults, NULL);
    CHECK(y != NULL);
    lm_shape ys = lm_node_shape(y);
    CHECK(ys.ndim == 2 && ys.dims[0] == -1 && ys.dims[1] == 4);
    lm_session *s = lm_session_new(g, 1, &y);
    lm_tensor *xv = lm_tensor_new(ctx, LM_F32, LM_SHAPE(2, 5, 3));
    lm_tensor *hv = lm_tensor_new(ctx, LM_F32, LM_SHAPE(3, 4));
    lm_session_feed(s, x, xv);
    lm_session_feed(s, h0, hv);
    CHECK_STATUS(lm_session_run(s), LM_ERR_SHAPE);
    CHECK_CONTAINS(lm_ctx_error(ctx), "gru");
    CHECK_CONTAINS(lm_ctx_error(ctx), "h0 (3, 4)");
    CHECK_CONTAINS(lm_ctx_error(ctx), "input (2, 5, 3)");
    lm_tensor *hv2 = lm_tensor_new(ctx, LM_F32, LM_SHAPE(2, 4));
    lm_session_feed(s, h0, hv2);
    CHECK_STATUS(lm_session_run(s), LM_OK);
    lm_tensor_free(xv);
    lm_tensor_free(hv);
    lm_tensor_free(hv2);
    lm_session_free(s);
    lm_graph_free(g);
}

/* Runs outputs (and gradients of sum(outs[0]) w.r.t. wrt) and checks every value is finite. */
static lm_session *run_all(lm_graph *g, int n, lm_node **outs) {
    lm_session *s = lm_session_new(g, n, outs);
    CHECK_MSG(s && lm_session_run(s) == LM_OK, "run: %s", lm_ctx_error(ctx));
    return s;
}

/* Batch 0 and sequences of length 0 run, forwards and backwards. */
static void zero_sized(void) {
    for (int kind = 0; kind < 3; kind++)
        for (int zt = 0; zt < 2; zt++) {
            int64_t N = zt ? 2 : 0, T = zt ? 0 : 4, H = 3,
                    G = (kind == 0   ? 1
                         : kind == 1 ? 4
                                     : 3) *
                        H;
            lm_graph *g = lm_graph_new(ctx);
            lm_node *x = rvar(g, "x", LM_SHAPE(N, T, 2)), *k = rvar(g, "k", LM_SHAPE(2, G));
            lm_node *r = rvar(g, "r", LM_SHAPE(H, G)), *b = rvar(g, "b", LM_SHAPE(G));
            lm_node *h0 = rvar(g, "h0", LM_SHAPE(N, H)), *c0 = rvar(g, "c0", LM_SHAPE(N, H));
            lm_rnn_opts o = {.return_sequences = true, .reset_after_set = true};
            lm_node *hl = NULL, *cl = NULL, *y;
            if (kind == 0)
                y = lm_op_simple_rnn(g, x, k, r, b, h0, o, &hl);
            else if (kind == 1)
                y = lm_op_lstm(g, x, k, r, b, h0, c0, o, &hl, &cl);
            else
                y = lm_op_gru(g, x, k, r, b, h0, o, &hl);
            lm_node *loss =
                lm_op_add(g, lm_op_sum(g, y, 0, NULL, false), lm_op_sum(g, hl, 0, NULL, false));
            if (cl) loss = lm_op_add(g, loss, lm_op_sum(g, cl, 0, NULL, false));
            lm_node *wrt[5] = {x, k, r, b, h0}, *gr[5];
            CHECK_STATUS(lm_grad(g, loss, 5, wrt, gr), LM_OK);
            lm_node *outs[8] = {y, hl, gr[0], gr[1], gr[2], gr[3], gr[4], cl ? cl : hl};
            lm_session *s = run_all(g, 8, outs);
            if (s) {
                lm_tensor *ys = lm_session_output(s, 0), *hs = lm_session_output(s, 1);
                CHECK(lm_tensor_dim(ys, 0) == N && lm_tensor_dim(ys, 1) == T &&
                      lm_tensor_dim(ys, 2) == H);
                CHECK(lm_tensor_dim(hs, 0) == N && lm_tensor_dim(hs, 1) == H);
                const float *h0v = lm_tensor_f32(lm_variable_value(h0));
                const float *c0v = lm_tensor_f32(lm_variable_value(c0));
                const float *clv = lm_tensor_f32(lm_session_output(s, 7));
                for (int64_t i = 0; i < N * H; i++) {
                    /* No steps: the final states are the initial ones, and the
                     * gradient of h0 is the upstream one (1). */
                    CHECK_NEAR(lm_tensor_f32(hs)[i], h0v[i], 1e-7);
                    if (cl) CHECK_NEAR(clv[i], c0v[i], 1e-7);
                    CHECK_NEAR(lm_tensor_f32(lm_session_output(s, 6))[i], 1.0, 1e-7);
                }
                for (int j = 3; j < 6; j++) {
                    lm_tensor *gw = lm_session_output(s, j);
                    for (int64_t i = 0; i < lm_tensor_numel(gw); i++)
                        CHECK_NEAR(lm_tensor_f32(gw)[i], 0.0, 1e-7);
                }
            }
            lm_session_free(s);
            lm_graph_free(g);
        }
}

/* h_s = h_{s-1} * 0.5 + 2 x + 1, linear, forwards and backwards. */
static void simple_rnn_values(void) {
    const float xv[3] = {1, 2, 3}, kv = 2, rv = 0.5f, bv = 1;
    const float fwd[3] = {3, 6.5f, 10.25f}, back[3] = {7, 8.5f, 7.25f};
    for (int gb = 0; gb < 2; gb++) {
        lm_graph *g = lm_graph_new(ctx);
        lm_node *x = var(g, "x", LM_SHAPE(1, 3, 1), xv), *k = var(g, "k", LM_SHAPE(1, 1), &kv);
        lm_node *r = var(g, "r", LM_SHAPE(1, 1), &rv), *b = var(g, "b", LM_SHAPE(1), &bv);
        lm_rnn_opts o = {.return_sequences = true, .go_backwards = gb, .activations_set = true};
        lm_node *hl, *y = lm_op_simple_rnn(g, x, k, r, b, NULL, o, &hl);
        lm_node *outs[2] = {y, hl};
        lm_session *s = run_all(g, 2, outs);
        if (s) {
            const float *want = gb ? back : fwd, *got = lm_tensor_f32(lm_session_output(s, 0));
            for (int i = 0; i < 3; i++) CHECK_NEAR(got[i], want[i], 1e-6);
            CHECK_NEAR(lm_tensor_f32(lm_session_output(s, 1))[0], want[2], 1e-6);
        }
        lm_session_free(s);
        lm_graph_free(g);
    }
}

static double sigm(double x) {
    return 1 / (1 + exp(-x));
}

/* Zero weights: the gates are the bias alone, i = f = o = sigmoid(0.3),
 * g = tanh(1), so c_s = f c_{s-1} + i g and h_s = o tanh(c_s). */
static void lstm_values(void) {
    const float bv[4] = {0.3f, 0.3f, 1.0f, 0.3f}, c0v = 0.5f, h0v = 0.25f;
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = var(g, "x", LM_SHAPE(1, 3, 2), NULL), *k = var(g, "k", LM_SHAPE(2, 4), NULL);
    lm_node *r = var(g, "r", LM_SHAPE(1, 4), NULL), *b = var(g, "b", LM_SHAPE(4), bv);
    lm_node *h0 = var(g, "h0", LM_SHAPE(1, 1), &h0v), *c0 = var(g, "c0", LM_SHAPE(1, 1), &c0v);
    lm_rnn_opts o = {.return_sequences = true};
    lm_node *hl, *cl, *y = lm_op_lstm(g, x, k, r, b, h0, c0, o, &hl, &cl);
    lm_node *outs[3] = {y, hl, cl};
    lm_session *s = run_all(g, 3, outs);
    if (s) {
        double gate = sigm(0.3), c = c0v;
        for (int t = 0; t < 3; t++) {
            c = gate * c + gate * tanh(1.0);
            CHECK_NEAR(lm_tensor_f32(lm_session_output(s, 0))[t], gate * tanh(c), 1e-6);
        }
        CHECK_NEAR(lm_tensor_f32(lm_session_output(s, 1))[0], gate * tanh(c), 1e-6);
        CHECK_NEAR(lm_tensor_f32(lm_session_output(s, 2))[0], c, 1e-6);
    }
    lm_session_free(s);
    lm_graph_free(g);
}

/* GRU with zero kernels: z = r = sigmoid(b), hh = tanh(b_h + r * b_rec_h),
 * h = z h_prev + (1 - z) hh (reset_after). */
static void gru_values(void) {
    const float bv[6] = {0.2f, -0.1f, 0.4f, 0.1f, 0.3f, 0.5f}, h0v = -0.5f;
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = var(g, "x", LM_SHAPE(1, 2, 1), NULL), *k = var(g, "k", LM_SHAPE(1, 3), NULL);
    lm_node *r = var(g, "r", LM_SHAPE(1, 3), NULL), *b = var(g, "b", LM_SHAPE(2, 3), bv);
    lm_node *h0 = var(g, "h0", LM_SHAPE(1, 1), &h0v);
    lm_rnn_opts o = {.return_sequences = true};
    lm_node *y = lm_op_gru(g, x, k, r, b, h0, o, NULL);
    lm_session *s = run_all(g, 1, &y);
    if (s) {
        double z = sigm(0.2 + 0.1), rr = sigm(-0.1 + 0.3), hh = tanh(0.4 + rr * 0.5), h = h0v;
        for (int t = 0; t < 2; t++) {
            h = z * h + (1 - z) * hh;
            CHECK_NEAR(lm_tensor_f32(lm_session_output(s, 0))[t], h, 1e-6);
        }
    }
    lm_session_free(s);
    lm_graph_free(g);
}

/* Builds one cell type with random weights, runs outputs and all gradients
 * with nt threads, and returns copies of every result in res. */
static int threaded_run(int kind, bool after, bool seq_only, int nt, lm_tensor **res) {
    lm_ctx_set_threads(ctx, nt);
    lm_ctx_seed(ctx, 99);
    int64_t N = 64, T = 7, F = 5, H = 16, G = (kind == 0 ? 1 : kind == 1 ? 4 : 3) * H;
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = rvar(g, "x", LM_SHAPE(N, T, F)), *k = rvar(g, "k", LM_SHAPE(F, G));
    lm_node *r = rvar(g, "r", LM_SHAPE(H, G));
    lm_node *b = kind == 2 && after ? rvar(g, "b", LM_SHAPE(2, G)) : rvar(g, "b", LM_SHAPE(G));
    lm_node *h0 = rvar(g, "h0", LM_SHAPE(N, H)), *c0 = rvar(g, "c0", LM_SHAPE(N, H));
    lm_rnn_opts o = {.return_sequences = true,
                     .go_backwards = true,
                     .reset_after = after,
                     .reset_after_set = true};
    lm_node *hl, *cl = NULL, *y;
    if (kind == 0)
        y = lm_op_simple_rnn(g, x, k, r, b, h0, o, &hl);
    else if (kind == 1)
        y = lm_op_lstm(g, x, k, r, b, h0, c0, o, &hl, &cl);
    else
        y = lm_op_gru(g, x, k, r, b, h0, o, &hl);
    lm_node *sq = lm_op_square(g, y);
    /* seq_only: the backward reads the sequence gradient alone, else a packed one. */
    lm_node *loss = lm_op_sum(g, sq, 0, NULL, false);
    if (!seq_only) loss = lm_op_add(g, loss, lm_op_sum(g, hl, 0, NULL, false));
    if (cl && !seq_only) loss = lm_op_add(g, loss, lm_op_sum(g, cl, 0, NULL, false));
    lm_node *wrt[6] = {x, k, r, b, h0, c0}, *outs[7];
    int nw = cl ? 6 : 5;
    CHECK_STATUS(lm_grad(g, loss, nw, wrt, outs + 1), LM_OK);
    outs[0] = y;
    lm_session *s = run_all(g, nw + 1, outs);
    for (int i = 0; i <= nw; i++) res[i] = s ? lm_tensor_clone(lm_session_output(s, i)) : NULL;
    lm_session_free(s);
    lm_graph_free(g);
    return nw + 1;
}

static void thread_independent(void) {
    for (int kind = 0; kind < 8; kind++) {
        lm_tensor *one[7], *many[7];
        int cell = kind % 4 > 2 ? 2 : kind % 4;
        int n = threaded_run(cell, kind % 4 == 2, kind >= 4, 1, one);
        threaded_run(cell, kind % 4 == 2, kind >= 4, 4, many);
        for (int i = 0; i < n; i++) {
            double worst = 0;
            for (int64_t e = 0; one[i] && many[i] && e < lm_tensor_numel(one[i]); e++) {
                double a = lm_tensor_f32(one[i])[e], b = lm_tensor_f32(many[i])[e];
                double d = fabs(a - b) / (fabs(b) > 1 ? fabs(b) : 1);
                if (d > worst) worst = d;
            }
            CHECK_MSG(one[i] && many[i] && worst < 1e-5, "cell %d output %d differs by %g", kind, i,
                      worst);
            lm_tensor_free(one[i]);
            lm_tensor_free(many[i]);
        }
    }
    lm_ctx_set_threads(ctx, 1);
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(shape_errors);
    RUN(bias_and_state_errors);
    RUN(dtype_and_argument_errors);
    RUN(run_time_shape_error);
    RUN(zero_sized);
    RUN(simple_rnn_values);
    RUN(lstm_values);
    RUN(gru_values);
    RUN(thread_independent);
    lm_ctx_free(ctx);
    return lmt_summary("ops_rnn");
}
