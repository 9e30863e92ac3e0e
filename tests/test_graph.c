/* Graph building, sticky errors, sessions (feeding, replanning for a new
 * batch size, memory reuse, no allocation per step) and autodiff plumbing. */
#include <lamina/lamina.h>
#include <malloc.h>
#include "lmtest.h"

static lm_ctx *ctx;

static void fill_seq(lm_tensor *t, float scale) {
    float *p = lm_tensor_f32(t);
    for (int64_t i = 0; i < lm_tensor_numel(t); i++) p[i] = scale * (float)((i * 7) % 11 - 5);
}

static void build_errors_are_sticky(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 784), "x");
    lm_node *w = lm_variable(g, "w", LM_F32, LM_SHAPE(100, 64));
    lm_node *y = lm_op_matmul(g, x, w, false, false);
    CHECK(y == NULL);
    CHECK(lm_graph_status(g) == LM_ERR_SHAPE);
    CHECK_CONTAINS(lm_graph_error(g), "matmul");
    CHECK_CONTAINS(lm_graph_error(g), "(None, 784)");
    CHECK_CONTAINS(lm_graph_error(g), "(100, 64)");
    /* Later ops on the NULL keep the first message. */
    lm_node *z = lm_op_dense(g, y, w, NULL, LM_ACT_RELU);
    CHECK(z == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "matmul");
    lm_node *outs[1] = {x};
    CHECK(lm_session_new(g, 1, outs) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "matmul");
    lm_node *gr;
    CHECK(lm_grad(g, x, 1, &w, &gr) != LM_OK);
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    CHECK(lm_variable(g, "v", LM_F32, LM_SHAPE(2)) != NULL);
    CHECK(lm_variable(g, "v", LM_F32, LM_SHAPE(3)) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "\"v\" is already used");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 4), "x");
    lm_node *b = lm_variable(g, "b", LM_F32, LM_SHAPE(5));
    CHECK(lm_op_bias_act(g, x, b, LM_ACT_RELU) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "bias_act: bias (5,) does not match input (None, 4)");
    lm_graph_free(g);

    /* Scoped messages name the layer. */
    g = lm_graph_new(ctx);
    x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 784), "x");
    w = lm_variable(g, "kernel", LM_F32, LM_SHAPE(100, 64));
    lm_graph_set_scope(g, "dense_1");
    CHECK(lm_op_dense(g, x, w, NULL, LM_ACT_LINEAR) == NULL);
    CHECK_CONTAINS(lm_graph_error(g),
                   "dense_1/dense: input last dimension 784 does not match kernel (100, 64)");
    lm_graph_free(g);

    /* Nodes of another graph and NULL graphs. */
    lm_graph *g1 = lm_graph_new(ctx), *g2 = lm_graph_new(ctx);
    lm_node *a = lm_variable(g1, "a", LM_F32, LM_SHAPE(2, 2));
    lm_node *c = lm_variable(g2, "c", LM_F32, LM_SHAPE(2, 2));
    CHECK(lm_op_matmul(g1, a, c, false, false) == NULL);
    CHECK_CONTAINS(lm_graph_error(g1), "another graph");
    CHECK(lm_op_matmul(NULL, a, a, false, false) == NULL);
    CHECK(lm_placeholder(g2, LM_F32, LM_SHAPE(2, -5), "p") == NULL);
    CHECK(lm_graph_new(NULL) == NULL);
    lm_graph_free(g1);
    lm_graph_free(g2);
}

/* y = relu(x @ w + b) against a direct computation, for several batch sizes. */
static void session_runs_and_replans(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 5), "x");
    lm_node *w = lm_variable(g, "w", LM_F32, LM_SHAPE(5, 3));
    lm_node *b = lm_variable(g, "b", LM_F32, LM_SHAPE(3));
    fill_seq(lm_variable_value(w), 0.1f);
    fill_seq(lm_variable_value(b), 0.05f);
    lm_node *y = lm_op_dense(g, x, w, b, LM_ACT_RELU);
    CHECK(lm_node_shape(y).dims[0] == -1 && lm_node_shape(y).dims[1] == 3);
    lm_session *s = lm_session_new(g, 1, &y);
    CHECK_STATUS(lm_session_run(s), LM_ERR_STATE);
    CHECK_CONTAINS(lm_ctx_error(ctx), "placeholder x was not fed");
    const float *W = lm_tensor_f32(lm_variable_value(w)), *B = lm_tensor_f32(lm_variable_value(b));
    int batches[4] = {4, 7, 4, 1};
    for (int t = 0; t < 4; t++) {
        int n = batches[t];
        lm_tensor *xt = lm_tensor_new(ctx, LM_F32, LM_SHAPE(n, 5));
        fill_seq(xt, 0.3f);
        CHECK_STATUS(lm_session_feed(s, x, xt), LM_OK);
        CHECK_STATUS(lm_session_run(s), LM_OK);
        lm_tensor *out = lm_session_output(s, 0);
        CHECK(lm_tensor_dim(out, 0) == n && lm_tensor_dim(out, 1) == 3);
        const float *X = lm_tensor_f32(xt);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < 3; j++) {
                float r = B[j];
                for (int k = 0; k < 5; k++) r += X[i * 5 + k] * W[k * 3 + j];
                CHECK_NEAR(lm_tensor_get(out, i * 3 + j), r > 0 ? r : 0, 1e-5);
            }
        lm_tensor_free(xt);
    }
    CHECK(lm_session_steps(s) == 4);
    lm_session_free(s);
    lm_graph_free(g);
}

static void feed_errors(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 5), "x");
    lm_node *w = lm_variable(g, "w", LM_F32, LM_SHAPE(5, 3));
    lm_node *y = lm_op_matmul(g, x, w, false, false);
    lm_session *s = lm_session_new(g, 1, &y);
    lm_tensor *bad = lm_tensor_new(ctx, LM_F32, LM_SHAPE(4, 6));
    CHECK_STATUS(lm_session_feed(s, x, bad), LM_ERR_SHAPE);
    CHECK_CONTAINS(lm_ctx_error(ctx), "x expects shape (None, 5), got (4, 6)");
    lm_tensor *it = lm_tensor_new(ctx, LM_I32, LM_SHAPE(4, 5));
    CHECK_STATUS(lm_session_feed(s, x, it), LM_ERR_DTYPE);
    CHECK_CONTAINS(lm_ctx_error(ctx), "expects float32, got int32");
    lm_tensor *big = lm_tensor_new(ctx, LM_F32, LM_SHAPE(5, 4));
    int perm[2] = {1, 0};
    lm_tensor *tr = lm_tensor_transpose(big, perm);
    CHECK_STATUS(lm_session_feed(s, x, tr), LM_ERR_ARG);
    CHECK_CONTAINS(lm_ctx_error(ctx), "not contiguous");
    CHECK_STATUS(lm_session_feed(s, w, big), LM_ERR_ARG);
    CHECK_CONTAINS(lm_ctx_error(ctx), "not a placeholder");
    CHECK_STATUS(lm_session_feed(s, NULL, big), LM_ERR_ARG);
    CHECK_STATUS(lm_session_feed(NULL, x, big), LM_ERR_ARG);
    CHECK(lm_session_new(g, 0, NULL) == NULL);
    CHECK(lm_session_output(s, 5) == NULL);
    CHECK_STATUS(lm_session_run(NULL), LM_ERR_ARG);
    lm_tensor_free(tr);
    lm_tensor_free(big);
    lm_tensor_free(it);
    lm_tensor_free(bad);
    lm_session_free(s);
    lm_graph_free(g);
}

/* A chain of 12 dense layers: the planner reuses blocks instead of giving
 * each activation its own, a steady run allocates nothing, and 1 or 2
 * threads give the same numbers. */
static void planner_reuses_memory(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 256), "x"), *h = x;
    for (int i = 0; i < 12; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "w%d", i);
        lm_node *w = lm_variable(g, nm, LM_F32, LM_SHAPE(256, 256));
        lm_tensor_random_uniform(lm_variable_value(w), -0.06, 0.06);
        h = lm_op_dense(g, h, w, NULL, LM_ACT_TANH);
    }
    lm_session *s = lm_session_new(g, 1, &h);
    lm_tensor *xt = lm_tensor_new(ctx, LM_F32, LM_SHAPE(64, 256));
    lm_tensor_random_uniform(xt, -1, 1);
    CHECK_STATUS(lm_session_feed(s, x, xt), LM_OK);
    CHECK_STATUS(lm_session_run(s), LM_OK);
    size_t block = 64 * 256 * sizeof(float);
    CHECK_MSG(lm_session_arena_bytes(s) <= 3 * block, "arena %zu bytes for blocks of %zu",
              lm_session_arena_bytes(s), block);
    lm_tensor *first = lm_tensor_clone(lm_session_output(s, 0));
#ifdef __GLIBC__
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < 10; i++) lm_session_run(s);
    struct mallinfo2 after = mallinfo2();
    CHECK_MSG(after.uordblks == before.uordblks && after.hblkhd == before.hblkhd,
              "heap grew from %zu to %zu bytes over 10 runs", before.uordblks, after.uordblks);
#endif
    int threads = lm_ctx_threads(ctx);
    lm_ctx_set_threads(ctx, threads == 1 ? 2 : 1);
    CHECK_STATUS(lm_session_run(s), LM_OK);
    lm_ctx_set_threads(ctx, threads);
    CHECK(lm_tensor_numel(first) == 64 * 256);
    double worst = 0;
    for (int64_t i = 0; i < lm_tensor_numel(first); i++)
        worst =
            fmax(worst, fabs(lm_tensor_get(first, i) - lm_tensor_get(lm_session_output(s, 0), i)));
    CHECK_MSG(worst < 1e-5, "1 and 2 threads differ by %g", worst);
    lm_tensor_free(first);
    lm_session_free(s);
    lm_tensor_free(xt);
    lm_graph_free(g);
}

/* Gradients of a variable that does not reach the loss are zeros; the loss
 * gradient of itself is ones; a shared sub-expression sums both paths. */
static void gradient_plumbing(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *a = lm_variable(g, "a", LM_F32, LM_SHAPE(2, 2));
    lm_node *u = lm_variable(g, "unused", LM_F32, LM_SHAPE(3));
    fill_seq(lm_variable_value(a), 0.5f);
    lm_node *p = lm_op_matmul(g, a, a, false, false); /* a used twice */
    lm_node *wrt[3] = {a, u, p}, *gr[3];
    CHECK_STATUS(lm_grad(g, p, 3, wrt, gr), LM_OK);
    lm_session *s = lm_session_new(g, 3, gr);
    CHECK_STATUS(lm_session_run(s), LM_OK);
    const float *A = lm_tensor_f32(lm_variable_value(a));
    /* d sum(A A) / dA[i][j] = sum_k A[j][k] + sum_k A[k][i] */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            float want = A[j * 2] + A[j * 2 + 1] + A[i] + A[2 + i];
            CHECK_NEAR(lm_tensor_get(lm_session_output(s, 0), i * 2 + j), want, 1e-6);
        }
    for (int i = 0; i < 3; i++) CHECK(lm_tensor_get(lm_session_output(s, 1), i) == 0);
    for (int i = 0; i < 4; i++) CHECK(lm_tensor_get(lm_session_output(s, 2), i) == 1);
    lm_session_free(s);
    CHECK_STATUS(lm_grad(g, NULL, 1, wrt, gr), LM_ERR_ARG);
    lm_graph_free(g);
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(build_errors_are_sticky);
    RUN(session_runs_and_replans);
    RUN(feed_errors);
    RUN(planner_reuses_memory);
    RUN(gradient_plumbing);
    lm_ctx_free(ctx);
    return lmt_summary("graph");
}
