/* dropout, batch_norm and layer_norm: argument and shape errors, zero-sized
 * tensors, exact values, dropout statistics and reproducibility, and
 * thread-count independence of the batch statistics. */
#include "lmtest.h"
#include <lamina/lamina.h>
#include <math.h>

static lm_ctx *ctx;

static lm_node *var(lm_graph *g, const char *name, lm_shape s, const float *v) {
    lm_node *n = lm_variable(g, name, LM_F32, s);
    if (n && v) lm_tensor_copy_from(lm_variable_value(n), v, (size_t)lm_shape_numel(s) * 4);
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

static void dropout_errors(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(2, 3), "x");
    CHECK_FAILS(g, lm_op_dropout(g, x, 1.0f, 0), "dropout", "rate 1", "[0, 1)", "(2, 3)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 3), "x");
    CHECK_FAILS(g, lm_op_dropout(g, x, -0.1f, 0), "dropout", "rate -0.1", "(None, 3)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_placeholder(g, LM_F32, LM_SHAPE(4), "x");
    CHECK_FAILS(g, lm_op_dropout(g, x, NAN, 0), "dropout", "rate nan");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_placeholder(g, LM_I32, LM_SHAPE(4, 2), "x");
    CHECK_FAILS(g, lm_op_dropout(g, x, 0.5f, 0), "dropout", "float32", "int32", "(4, 2)");
    /* Sticky: a later op given the NULL returns NULL, keeping the first message. */
    CHECK(lm_op_dropout(g, NULL, 0.5f, 0) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "int32");
    lm_graph_free(g);
}

static void batch_norm_errors(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 4), "x");
    lm_node *c4 = var(g, "c4", LM_SHAPE(4), NULL), *c3 = var(g, "c3", LM_SHAPE(3), NULL);
    lm_node *mm = var(g, "mm", LM_SHAPE(4), NULL), *mv = var(g, "mv", LM_SHAPE(4), NULL);
    lm_node *m2 = var(g, "m2", LM_SHAPE(1, 4), NULL);
    lm_node *d4 = lm_variable(g, "d4", LM_F64, LM_SHAPE(4));
    CHECK(lm_op_batch_norm(g, x, c4, c4, mm, mv, 0.99f, 1e-3f) != NULL);
    CHECK(lm_graph_status(g) == LM_OK);
    lm_graph_free(g);

    /* Each failure in a fresh graph, so that its message is the first. */
    for (int t = 0; t < 9; t++) {
        g = lm_graph_new(ctx);
        x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 4), "x");
        lm_node *xi = lm_placeholder(g, LM_I32, LM_SHAPE(2, 4), "xi");
        lm_node *x0 = lm_placeholder(g, LM_F32, LM_SCALAR, "x0");
        c4 = var(g, "c4", LM_SHAPE(4), NULL);
        c3 = var(g, "c3", LM_SHAPE(3), NULL);
        mm = var(g, "mm", LM_SHAPE(4), NULL);
        mv = var(g, "mv", LM_SHAPE(4), NULL);
        m2 = var(g, "m2", LM_SHAPE(1, 4), NULL);
        d4 = lm_variable(g, "d4", LM_F64, LM_SHAPE(4));
        lm_node *ph = lm_placeholder(g, LM_F32, LM_SHAPE(4), "mv_ph");
        switch (t) {
        case 0:
            CHECK_FAILS(g, lm_op_batch_norm(g, x, c3, c4, mm, mv, 0.99f, 1e-3f), "batch_norm",
                        "gamma (3,)", "(None, 4)");
            break;
        case 1:
            CHECK_FAILS(g, lm_op_batch_norm(g, x, c4, c3, mm, mv, 0.99f, 1e-3f), "batch_norm",
                        "beta (3,)", "(None, 4)");
            break;
        case 2:
            CHECK_FAILS(g, lm_op_batch_norm(g, x, c4, c4, m2, mv, 0.99f, 1e-3f), "batch_norm",
                        "moving_mean (1, 4)", "(None, 4)");
            break;
        case 3:
            CHECK_FAILS(g, lm_op_batch_norm(g, x, NULL, NULL, mm, ph, 0.99f, 1e-3f), "batch_norm",
                        "moving_var must be a variable", "placeholder", "(None, 4)");
            break;
        case 4:
            CHECK_FAILS(g, lm_op_batch_norm(g, x, d4, NULL, mm, mv, 0.99f, 1e-3f), "batch_norm",
                        "gamma (4,) must be float32", "float64");
            break;
        case 5:
            CHECK_FAILS(g, lm_op_batch_norm(g, xi, NULL, NULL, mm, mv, 0.99f, 1e-3f), "batch_norm",
                        "float32", "int32", "(2, 4)");
            break;
        case 6:
            CHECK_FAILS(g, lm_op_batch_norm(g, x0, NULL, NULL, mm, mv, 0.99f, 1e-3f), "batch_norm",
                        "input () needs at least one axis");
            break;
        case 7:
            CHECK_FAILS(g, lm_op_batch_norm(g, x, NULL, NULL, mm, mv, 0.99f, -1.0f), "batch_norm",
                        "epsilon -1", "(None, 4)");
            break;
        case 8:
            CHECK_FAILS(g, lm_op_batch_norm(g, x, NULL, NULL, mm, mv, NAN, 1e-3f), "batch_norm",
                        "momentum nan", "(None, 4)");
            break;
        }
        lm_graph_free(g);
    }

    /* A NULL moving statistic is an error naming the op. */
    g = lm_graph_new(ctx);
    x = lm_placeholder(g, LM_F32, LM_SHAPE(2, 4), "x");
    mm = var(g, "mm", LM_SHAPE(4), NULL);
    CHECK_FAILS(g, lm_op_batch_norm(g, x, NULL, NULL, mm, NULL, 0.99f, 1e-3f), "batch_norm",
                "input 2 is NULL");
    lm_graph_free(g);

    /* Shapes only known at run time are checked when the session plans. */
    g = lm_graph_new(ctx);
    x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, -1), "x");
    c4 = var(g, "c4", LM_SHAPE(4), NULL);
    mm = var(g, "mm", LM_SHAPE(4), NULL);
    mv = var(g, "mv", LM_SHAPE(4), NULL);
    lm_node *y = lm_op_batch_norm(g, x, c4, NULL, mm, mv, 0.99f, 1e-3f);
    CHECK(y != NULL);
    lm_session *s = lm_session_new(g, 1, &y);
    lm_tensor *bad = lm_tensor_new(ctx, LM_F32, LM_SHAPE(2, 5));
    CHECK_STATUS(lm_session_feed(s, x, bad), LM_OK);
    CHECK_STATUS(lm_session_run(s), LM_ERR_SHAPE);
    CHECK_CONTAINS(lm_ctx_error(ctx), "batch_norm");
    CHECK_CONTAINS(lm_ctx_error(ctx), "moving_mean (4,)");
    CHECK_CONTAINS(lm_ctx_error(ctx), "(2, 5)");
    lm_tensor_free(bad);
    lm_session_free(s);
    lm_graph_free(g);
}

static void layer_norm_errors(void) {
    for (int t = 0; t < 5; t++) {
        lm_graph *g = lm_graph_new(ctx);
        lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 2, 6), "x");
        lm_node *xi = lm_placeholder(g, LM_I64, LM_SHAPE(3, 6), "xi");
        lm_node *x0 = lm_placeholder(g, LM_F32, LM_SCALAR, "x0");
        lm_node *c6 = var(g, "c6", LM_SHAPE(6), NULL), *c2 = var(g, "c2", LM_SHAPE(2), NULL);
        switch (t) {
        case 0:
            CHECK_FAILS(g, lm_op_layer_norm(g, x, c2, c6, 1e-3f), "layer_norm", "gamma (2,)",
                        "(None, 2, 6)");
            break;
        case 1:
            CHECK_FAILS(g, lm_op_layer_norm(g, x, NULL, c2, 1e-3f), "layer_norm", "beta (2,)",
                        "(None, 2, 6)");
            break;
        case 2:
            CHECK_FAILS(g, lm_op_layer_norm(g, xi, NULL, NULL, 1e-3f), "layer_norm", "float32",
                        "int64", "(3, 6)");
            break;
        case 3:
            CHECK_FAILS(g, lm_op_layer_norm(g, x0, NULL, NULL, 1e-3f), "layer_norm",
                        "needs at least one axis");
            break;
        case 4:
            CHECK_FAILS(g, lm_op_layer_norm(g, x, c6, c6, INFINITY), "layer_norm", "epsilon inf",
                        "(None, 2, 6)");
            break;
        }
        lm_graph_free(g);
    }
}

/* Runs y (and optional extra outputs) once; returns the session. */
static lm_session *run(lm_graph *g, int n, lm_node **outs, bool training) {
    lm_session *s = lm_session_new(g, n, outs);
    CHECK(s != NULL);
    if (!s) return NULL;
    lm_session_set_training(s, training);
    CHECK_STATUS(lm_session_run(s), LM_OK);
    return s;
}

static void exact_values(void) {
    /* batch norm at inference: (x - mm) / sqrt(mv) * gamma + beta, eps 0. */
    lm_graph *g = lm_graph_new(ctx);
    float xv[] = {1, 2, 3, 4}, mmv[] = {1, 2}, mvv[] = {4, 1}, gv[] = {2, 1}, bv[] = {0.5f, -1};
    lm_node *x = var(g, "x", LM_SHAPE(2, 2), xv), *mm = var(g, "mm", LM_SHAPE(2), mmv);
    lm_node *mv = var(g, "mv", LM_SHAPE(2), mvv), *ga = var(g, "g", LM_SHAPE(2), gv);
    lm_node *be = var(g, "b", LM_SHAPE(2), bv);
    lm_node *y = lm_op_batch_norm(g, x, ga, be, mm, mv, 0.9f, 0.0f);
    lm_session *s = run(g, 1, &y, false);
    float want[] = {0.5f, -1.0f, 2.5f, 1.0f};
    for (int i = 0; s && i < 4; i++)
        CHECK_NEAR(lm_tensor_get(lm_session_output(s, 0), i), want[i], 1e-6);
    CHECK_NEAR(lm_tensor_get(lm_variable_value(mm), 0), 1.0, 0); /* untouched at inference */
    lm_session_free(s);

    /* Training: batch mean 2 and 3, biased variance 1 and 1. */
    s = run(g, 1, &y, true);
    float want_t[] = {-2 + 0.5f, -1 - 1.0f, 2 + 0.5f, 1 - 1.0f};
    for (int i = 0; s && i < 4; i++)
        CHECK_NEAR(lm_tensor_get(lm_session_output(s, 0), i), want_t[i], 1e-6);
    /* moving = moving * 0.9 + batch * 0.1 */
    CHECK_NEAR(lm_tensor_get(lm_variable_value(mm), 0), 0.9 * 1 + 0.1 * 2, 1e-6);
    CHECK_NEAR(lm_tensor_get(lm_variable_value(mm), 1), 0.9 * 2 + 0.1 * 3, 1e-6);
    CHECK_NEAR(lm_tensor_get(lm_variable_value(mv), 0), 0.9 * 4 + 0.1 * 1, 1e-6);
    CHECK_NEAR(lm_tensor_get(lm_variable_value(mv), 1), 0.9 * 1 + 0.1 * 1, 1e-6);
    lm_session_free(s);
    lm_graph_free(g);

    /* layer norm of 1..4: mean 2.5, variance 1.25. */
    g = lm_graph_new(ctx);
    x = var(g, "x", LM_SHAPE(1, 4), xv);
    y = lm_op_layer_norm(g, x, NULL, NULL, 0.0f);
    s = run(g, 1, &y, false);
    for (int i = 0; s && i < 4; i++)
        CHECK_NEAR(lm_tensor_get(lm_session_output(s, 0), i), (xv[i] - 2.5) / sqrt(1.25), 1e-6);
    lm_session_free(s);
    lm_graph_free(g);

    /* dropout outside training is the identity, even with a rate. */
    g = lm_graph_new(ctx);
    x = var(g, "x", LM_SHAPE(4), xv);
    y = lm_op_dropout(g, x, 0.9f, 1);
    s = run(g, 1, &y, false);
    for (int i = 0; s && i < 4; i++) CHECK(lm_tensor_get(lm_session_output(s, 0), i) == xv[i]);
    lm_session_free(s);
    lm_graph_free(g);
}

/* Builds f(x) and its gradients w.r.t. every variable given, runs in training mode. */
static void zero_case(lm_shape xs, int which) {
    lm_graph *g = lm_graph_new(ctx);
    int64_t C = xs.dims[xs.ndim - 1];
    lm_node *x = var(g, "x", xs, NULL), *ga = var(g, "g", LM_SHAPE(C), NULL);
    lm_node *be = var(g, "b", LM_SHAPE(C), NULL), *mm = var(g, "mm", LM_SHAPE(C), NULL);
    lm_node *mv = var(g, "mv", LM_SHAPE(C), NULL);
    lm_tensor_fill(lm_variable_value(mv), 1.0);
    lm_tensor_fill(lm_variable_value(mm), 0.25);
    lm_node *y = which == 0   ? lm_op_batch_norm(g, x, ga, be, mm, mv, 0.9f, 1e-3f)
                 : which == 1 ? lm_op_layer_norm(g, x, ga, be, 1e-3f)
                              : lm_op_dropout(g, x, 0.5f, 3);
    lm_node *wrt[3] = {x, ga, be}, *gr[3] = {NULL};
    int nw = which == 2 ? 1 : 3;
    CHECK_STATUS(lm_grad(g, y, nw, wrt, gr), LM_OK);
    lm_node *outs[4] = {y, gr[0], gr[1], gr[2]};
    lm_session *s = run(g, nw + 1, outs, true);
    if (s) {
        CHECK(lm_tensor_numel(lm_session_output(s, 0)) == 0);
        for (int k = 1; k < nw; k++)
            for (int64_t i = 0; i < C; i++)
                CHECK(lm_tensor_get(lm_session_output(s, k + 1), i) == 0);
        if (which == 0 && C > 0) CHECK(lm_tensor_get(lm_variable_value(mm), 0) == 0.25);
    }
    lm_session_free(s);
    lm_graph_free(g);
}

static void zero_sized(void) {
    zero_case(LM_SHAPE(0, 4), 0);
    zero_case(LM_SHAPE(2, 0, 3), 0);
    zero_case(LM_SHAPE(0, 4), 1);
    zero_case(LM_SHAPE(3, 0), 1);
    zero_case(LM_SHAPE(0, 5), 2);
    zero_case(LM_SHAPE(2, 0), 0);
}

/* Shapes unknown when building: gradients build, then run on fed shapes. */
static void unknown_dims(void) {
    for (int which = 0; which < 2; which++) {
        lm_graph *g = lm_graph_new(ctx);
        lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, -1), "x");
        float gv[] = {2, 2, 2, 2}; /* uniform, so that sum(y) does not depend on x */
        lm_node *ga = var(g, "g", LM_SHAPE(4), gv), *be = var(g, "b", LM_SHAPE(4), NULL);
        lm_node *mm = var(g, "mm", LM_SHAPE(4), NULL), *mv = var(g, "mv", LM_SHAPE(4), NULL);
        lm_node *y = which ? lm_op_layer_norm(g, x, ga, be, 1e-3f)
                           : lm_op_batch_norm(g, x, ga, be, mm, mv, 0.9f, 1e-3f);
        lm_node *wrt[3] = {x, ga, be}, *gr[3] = {NULL};
        CHECK_STATUS(lm_grad(g, y, 3, wrt, gr), LM_OK);
        lm_node *outs[4] = {y, gr[0], gr[1], gr[2]};
        lm_session *s = lm_session_new(g, 4, outs);
        CHECK(s != NULL);
        lm_tensor *xt = lm_tensor_new(ctx, LM_F32, LM_SHAPE(3, 4));
        lm_tensor_random_uniform(xt, -1, 1);
        if (s) {
            lm_session_feed(s, x, xt);
            lm_session_set_training(s, true);
            CHECK_STATUS(lm_session_run(s), LM_OK);
            /* d/dbeta of sum(y) is the row count; d/dx of sum(y) is 0. */
            for (int j = 0; j < 4; j++)
                CHECK_NEAR(lm_tensor_get(lm_session_output(s, 3), j), 3, 1e-6);
            for (int i = 0; i < 12; i++)
                CHECK_NEAR(lm_tensor_get(lm_session_output(s, 1), i), 0, 1e-5);
        }
        lm_tensor_free(xt);
        lm_session_free(s);
        lm_graph_free(g);
    }
}

/* One training run of dropout over x (all ones); returns a copy of the output. */
static lm_tensor *dropout_run(lm_tensor *xt, float rate, uint64_t seed, uint64_t step, int threads,
                              int which) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_placeholder(g, LM_F32, lm_tensor_shape(xt), "x");
    lm_node *y = lm_op_dropout(g, x, rate, seed);
    if (which == 1) y = lm_op_dropout(g, x, rate, seed); /* a second node, same seed */
    lm_ctx_set_threads(ctx, threads);
    lm_session *s = lm_session_new(g, 1, &y);
    lm_session_feed(s, x, xt);
    lm_session_set_training(s, true);
    lm_session_set_steps(s, step);
    lm_tensor *out = NULL;
    if (lm_session_run(s) == LM_OK) out = lm_tensor_clone(lm_session_output(s, 0));
    CHECK(out != NULL);
    lm_session_free(s);
    lm_graph_free(g);
    return out;
}

static bool same(const lm_tensor *a, const lm_tensor *b) {
    if (!a || !b || lm_tensor_numel(a) != lm_tensor_numel(b)) return false;
    for (int64_t i = 0; i < lm_tensor_numel(a); i++)
        if (lm_tensor_get(a, i) != lm_tensor_get(b, i)) return false;
    return true;
}

static void dropout_statistics(void) {
    int nt0 = lm_ctx_threads(ctx);
    lm_tensor *x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(1024, 1024));
    lm_tensor_fill(x, 1.0);
    const float rates[] = {0.1f, 0.3f, 0.5f, 0.9f};
    for (int k = 0; k < 4; k++) {
        lm_tensor *y = dropout_run(x, rates[k], 5, 0, nt0, 0);
        if (!y) continue;
        int64_t n = lm_tensor_numel(y), kept = 0, bad = 0;
        float scaled = 1.0f / (1.0f - rates[k]);
        for (int64_t i = 0; i < n; i++) {
            double v = lm_tensor_get(y, i);
            if (v != 0) {
                kept++;
                bad += v != scaled;
            }
        }
        double frac = (double)kept / (double)n;
        CHECK_MSG(fabs(frac - (1.0 - rates[k])) < 0.003, "rate %g: kept %.5f", rates[k], frac);
        CHECK(bad == 0);
        lm_tensor_free(y);
    }
    /* The mask depends on the seed, the node and the step, not on the threads. */
    lm_tensor *a = dropout_run(x, 0.5f, 5, 3, 1, 0), *b = dropout_run(x, 0.5f, 5, 3, 4, 0);
    lm_tensor *c = dropout_run(x, 0.5f, 5, 4, 4, 0), *d = dropout_run(x, 0.5f, 6, 3, 4, 0);
    lm_tensor *e = dropout_run(x, 0.5f, 5, 3, 4, 1);
    CHECK(same(a, b));
    /* The AVX-512 mask kernel gives the generic kernel's bits (odd size: a scalar tail). */
    lm_tensor *xo = lm_tensor_new(ctx, LM_F32, LM_SHAPE(3, 4099));
    lm_tensor_fill(xo, 1.0);
    if (lm_ctx_set_isa(ctx, "avx512") == LM_OK) {
        lm_tensor *v = dropout_run(xo, 0.3f, 11, 2, 2, 0);
        CHECK_STATUS(lm_ctx_set_isa(ctx, "generic"), LM_OK);
        lm_tensor *s = dropout_run(xo, 0.3f, 11, 2, 2, 0);
        CHECK(same(v, s));
        lm_tensor_free(v);
        lm_tensor_free(s);
        lm_ctx_set_isa(ctx, "avx512");
    }
    lm_tensor_free(xo);
    CHECK(!same(a, c));
    CHECK(!same(a, d));
    CHECK(!same(a, e));
    lm_tensor *all[] = {a, b, c, d, e};
    for (int i = 0; i < 5; i++) lm_tensor_free(all[i]);
    lm_tensor_free(x);
    lm_ctx_set_threads(ctx, nt0);
}

/* Batch statistics on a big tensor with a large mean: close to a double
 * reference, and bit-identical for 1 and 4 threads. */
static void batch_norm_big(void) {
    int nt0 = lm_ctx_threads(ctx);
    const int64_t R = 2000, C = 70;
    lm_tensor *xt = lm_tensor_new(ctx, LM_F32, LM_SHAPE(R / 10, 10, C));
    lm_ctx_seed(ctx, 9);
    lm_tensor_random_normal(xt, 1000.0, 0.5);
    float *xp = lm_tensor_f32(xt);
    lm_tensor *outs[2] = {NULL, NULL};
    float mvs[2][70];
    for (int t = 0; t < 2; t++) {
        lm_ctx_set_threads(ctx, t ? 4 : 1);
        lm_graph *g = lm_graph_new(ctx);
        lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 10, C), "x");
        lm_node *mm = var(g, "mm", LM_SHAPE(C), NULL), *mv = var(g, "mv", LM_SHAPE(C), NULL);
        lm_node *y = lm_op_batch_norm(g, x, NULL, NULL, mm, mv, 0.0f, 1e-3f);
        lm_session *s = lm_session_new(g, 1, &y);
        lm_session_feed(s, x, xt);
        lm_session_set_training(s, true);
        CHECK_STATUS(lm_session_run(s), LM_OK);
        outs[t] = lm_tensor_clone(lm_session_output(s, 0));
        lm_tensor_copy_to(lm_variable_value(mv), mvs[t], sizeof mvs[t]);
        if (t == 0) {
            /* momentum 0: the moving statistics are the batch statistics. */
            for (int64_t c = 0; c < C; c++) {
                double m = 0, v = 0;
                for (int64_t r = 0; r < R; r++) m += xp[r * C + c];
                m /= (double)R;
                for (int64_t r = 0; r < R; r++) v += (xp[r * C + c] - m) * (xp[r * C + c] - m);
                v /= (double)R;
                CHECK_NEAR(lm_tensor_get(lm_variable_value(mm), c), m, 1e-6);
                CHECK_NEAR(mvs[0][c], v, 1e-5);
            }
        }
        lm_session_free(s);
        lm_graph_free(g);
    }
    CHECK(same(outs[0], outs[1]));
    CHECK(memcmp(mvs[0], mvs[1], sizeof mvs[0]) == 0);
    lm_tensor_free(outs[0]);
    lm_tensor_free(outs[1]);
    lm_tensor_free(xt);
    lm_ctx_set_threads(ctx, nt0);
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(dropout_errors);
    RUN(batch_norm_errors);
    RUN(layer_norm_errors);
    RUN(exact_values);
    RUN(zero_sized);
    RUN(unknown_dims);
    RUN(dropout_statistics);
    RUN(batch_norm_big);
    lm_ctx_free(ctx);
    return lmt_summary("ops_norm");
}
