/* Convolution and pooling: argument and shape errors, kernel-time errors,
 * zero-sized tensors, exact values on small inputs, and the three
 * convolution passes against a naive reference on sizes that use several
 * threads, im2col tiles and every kernel path (direct, pointwise, GEMM). */
#include "lmtest.h"
#include <lamina/lamina.h>
#include "graph/graph_impl.h"
#include "cpu/cpu.h"

static lm_ctx *ctx;

static lm_node *ph(lm_graph *g, lm_shape s) {
    return lm_placeholder(g, LM_F32, s, NULL);
}

/* Expects op to have failed with a message holding each of the substrings. */
#define CHECK_ERR(g, node, ...)                                                                    \
    do {                                                                                           \
        const char *subs_[] = {__VA_ARGS__};                                                       \
        CHECK((node) == NULL);                                                                     \
        for (size_t i_ = 0; i_ < sizeof subs_ / sizeof *subs_; i_++)                               \
            CHECK_CONTAINS(lm_graph_error(g), subs_[i_]);                                          \
    } while (0)

static void conv_errors(void) {
    lm_conv_opts o = {0};
    lm_graph *g = lm_graph_new(ctx);
    CHECK_ERR(g, lm_op_conv2d(g, ph(g, LM_SHAPE(2, 5, 5)), ph(g, LM_SHAPE(3, 3, 1, 4)), o),
              "conv2d", "(2, 5, 5)", "(3, 3, 1, 4)", "4 dimensions");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    CHECK_ERR(g, lm_op_conv2d(g, ph(g, LM_SHAPE(2, 5, 5, 3)), ph(g, LM_SHAPE(3, 3, 2, 4)), o),
              "conv2d", "(2, 5, 5, 3)", "(3, 3, 2, 4)", "channels");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    lm_conv_opts og = {.groups = 2};
    CHECK_ERR(g, lm_op_conv2d(g, ph(g, LM_SHAPE(2, 5, 5, 4)), ph(g, LM_SHAPE(3, 3, 2, 5)), og),
              "conv2d", "(2, 5, 5, 4)", "(3, 3, 2, 5)", "groups 2");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    og.groups = 3; /* 4 channels do not split into 3 groups */
    CHECK_ERR(g, lm_op_conv2d(g, ph(g, LM_SHAPE(2, 5, 5, 4)), ph(g, LM_SHAPE(3, 3, 1, 6)), og),
              "conv2d", "(2, 5, 5, 4)", "(3, 3, 1, 6)", "groups 3");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    og.groups = -1;
    CHECK_ERR(g, lm_op_conv2d(g, ph(g, LM_SHAPE(2, 5, 5, 4)), ph(g, LM_SHAPE(3, 3, 4, 6)), og),
              "conv2d", "groups must be positive", "(2, 5, 5, 4)", "(3, 3, 4, 6)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    lm_conv_opts os = {.strides = {-1, 1}};
    CHECK_ERR(g, lm_op_conv2d(g, ph(g, LM_SHAPE(1, 5, 5, 1)), ph(g, LM_SHAPE(3, 3, 1, 1)), os),
              "conv2d", "strides", "(1, 5, 5, 1)", "(3, 3, 1, 1)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    lm_conv_opts od = {.dilation = {1, -2}};
    CHECK_ERR(g, lm_op_conv2d(g, ph(g, LM_SHAPE(1, 5, 5, 1)), ph(g, LM_SHAPE(3, 3, 1, 1)), od),
              "conv2d", "dilation", "(1, 5, 5, 1)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    lm_conv_opts oc = {.padding = LM_PAD_CAUSAL};
    CHECK_ERR(g, lm_op_conv2d(g, ph(g, LM_SHAPE(1, 5, 5, 1)), ph(g, LM_SHAPE(3, 3, 1, 1)), oc),
              "conv2d", "padding 2", "(1, 5, 5, 1)", "(3, 3, 1, 1)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    lm_conv_opts op = {.padding = (lm_padding)7};
    CHECK_ERR(g, lm_op_conv1d(g, ph(g, LM_SHAPE(1, 5, 1)), ph(g, LM_SHAPE(3, 1, 1)), op), "conv1d",
              "padding 7", "(1, 5, 1)", "(3, 1, 1)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    lm_conv_opts ov = {.dilation = {2, 1}};
    CHECK_ERR(g, lm_op_conv2d(g, ph(g, LM_SHAPE(1, 4, 9, 1)), ph(g, LM_SHAPE(3, 3, 1, 1)), ov),
              "conv2d", "smaller", "(1, 4, 9, 1)", "(3, 3, 1, 1)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    lm_node *xi = lm_placeholder(g, LM_I32, LM_SHAPE(1, 5, 5, 1), "xi");
    CHECK_ERR(g, lm_op_conv2d(g, xi, ph(g, LM_SHAPE(3, 3, 1, 1)), o), "conv2d", "float32", "int32");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    CHECK_ERR(g, lm_op_conv2d(g, ph(g, LM_SHAPE(-1, 5, 5, 1)), ph(g, LM_SHAPE(3, -1, 1, 1)), o),
              "conv2d", "static shape", "(3, ");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    CHECK_ERR(g, lm_op_conv1d(g, ph(g, LM_SHAPE(2, 5, 5, 1)), ph(g, LM_SHAPE(3, 1, 1)), o),
              "conv1d", "(2, 5, 5, 1)", "(3, 1, 1)", "3 dimensions");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    CHECK_ERR(g, lm_op_conv1d(g, ph(g, LM_SHAPE(2, 2, 3)), ph(g, LM_SHAPE(3, 3, 1)), o), "conv1d",
              "smaller", "(2, 2, 3)", "(3, 3, 1)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    CHECK_ERR(g, lm_op_conv2d(g, ph(g, LM_SHAPE(2, 5, 5, 1)), ph(g, LM_SHAPE(0, 3, 1, 4)), o),
              "conv2d", "empty window", "(0, 3, 1, 4)", "(2, 5, 5, 1)");
    lm_graph_free(g);

    /* A NULL input: a message the first time, then quiet NULLs. */
    g = lm_graph_new(ctx);
    CHECK_ERR(g, lm_op_conv2d(g, NULL, ph(g, LM_SHAPE(3, 3, 1, 1)), o), "conv2d", "NULL");
    lm_graph_free(g);

    /* Scoped messages carry the layer name. */
    g = lm_graph_new(ctx);
    lm_graph_set_scope(g, "conv2d_1");
    CHECK_ERR(g, lm_op_conv2d(g, ph(g, LM_SHAPE(2, 5, 5, 3)), ph(g, LM_SHAPE(3, 3, 2, 4)), o),
              "conv2d_1/conv2d:");
    lm_graph_free(g);
}

static void backward_op_errors(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_params p = lm_params_zero();
    p.conv = (lm_conv_opts){.strides = {1, 1}, .dilation = {1, 1}, .groups = 1};
    lm_node *x = ph(g, LM_SHAPE(2, 5, 5, 3)), *w = ph(g, LM_SHAPE(3, 3, 3, 4));
    lm_node *bad_dy = ph(g, LM_SHAPE(2, 4, 3, 4));
    lm_node *a[3] = {bad_dy, w, x};
    CHECK_ERR(g, lm_node_make(g, LM_OP_CONV2D_BACKPROP_INPUT, 3, a, &p), "conv2d_backprop_input",
              "(2, 4, 3, 4)", "(2, 3, 3, 4)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = ph(g, LM_SHAPE(2, 5, 5, 3)), w = ph(g, LM_SHAPE(3, 3, 3, 4));
    lm_node *b[3] = {x, ph(g, LM_SHAPE(2, 3, 3, 5)), w};
    CHECK_ERR(g, lm_node_make(g, LM_OP_CONV2D_BACKPROP_FILTER, 3, b, &p), "conv2d_backprop_filter",
              "(2, 3, 3, 5)", "(2, 3, 3, 4)");
    lm_graph_free(g);

    /* max_pool_grad needs the max pooling node itself as input 1. */
    g = lm_graph_new(ctx);
    x = ph(g, LM_SHAPE(1, 4, 4, 2));
    lm_pool_opts po = {.size = {2, 2}};
    lm_node *y = lm_op_avg_pool2d(g, x, po);
    lm_node *c[3] = {y, y, x};
    lm_params pp = y->p;
    CHECK_ERR(g, lm_node_make(g, LM_OP_MAX_POOL_GRAD, 3, c, &pp), "max_pool_grad", "input 1",
              "(1, 4, 4, 2)");
    lm_graph_free(g);
}

static void pool_errors(void) {
    lm_pool_opts o = {.size = {2, 2}};
    lm_graph *g = lm_graph_new(ctx);
    CHECK_ERR(g, lm_op_max_pool2d(g, ph(g, LM_SHAPE(2, 5, 5)), o), "max_pool2d", "(2, 5, 5)",
              "4 dimensions");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    CHECK_ERR(g, lm_op_avg_pool1d(g, ph(g, LM_SHAPE(2, 5, 5, 1)), o), "avg_pool1d", "(2, 5, 5, 1)",
              "3 dimensions");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    lm_pool_opts z = {0};
    CHECK_ERR(g, lm_op_avg_pool2d(g, ph(g, LM_SHAPE(2, 5, 5, 1)), z), "avg_pool2d",
              "must be positive", "(2, 5, 5, 1)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    lm_pool_opts ns = {.size = {2, 2}, .strides = {-1, 1}};
    CHECK_ERR(g, lm_op_max_pool2d(g, ph(g, LM_SHAPE(2, 5, 5, 1)), ns), "max_pool2d", "strides -1",
              "(2, 5, 5, 1)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    lm_pool_opts c = {.size = {2, 2}, .padding = LM_PAD_CAUSAL};
    CHECK_ERR(g, lm_op_max_pool2d(g, ph(g, LM_SHAPE(2, 5, 5, 1)), c), "max_pool2d", "padding 2",
              "(2, 5, 5, 1)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    lm_pool_opts big = {.size = {3, 2}};
    CHECK_ERR(g, lm_op_max_pool2d(g, ph(g, LM_SHAPE(2, 2, 5, 1)), big), "max_pool2d", "smaller",
              "(2, 2, 5, 1)", "3 x 2");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    lm_pool_opts one = {.size = {4}};
    CHECK_ERR(g, lm_op_max_pool1d(g, ph(g, LM_SHAPE(2, 3, 5)), one), "max_pool1d", "smaller",
              "(2, 3, 5)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    lm_node *xi = lm_placeholder(g, LM_I64, LM_SHAPE(1, 4, 4, 1), "xi");
    CHECK_ERR(g, lm_op_avg_pool2d(g, xi, o), "avg_pool2d", "float32", "int64", "(1, 4, 4, 1)");
    lm_graph_free(g);
}

/* Kernel-time failure: max_pool_grad's kernel run without the saved argmax. */
static void kernel_errors(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = ph(g, LM_SHAPE(1, 4, 4, 1));
    lm_pool_opts po = {.size = {2, 2}};
    lm_node *y = lm_op_max_pool2d(g, x, po);
    lm_node *in[3] = {y, y, x};
    lm_node *gx = lm_node_make(g, LM_OP_MAX_POOL_GRAD, 3, in, &y->p);
    CHECK(gx != NULL);
    float dy[4] = {1, 2, 3, 4}, dx[16];
    lm_kenv env = {.ctx = ctx, .gemm = NULL, .nthreads = 1};
    lm_kcall c = {.node = gx, .p = &gx->p, .env = &env, .n_in = 3};
    c.in[0] = (lm_tv){.p = dy, .dt = LM_F32, .ndim = 4, .d = {1, 2, 2, 1}, .n = 4};
    c.in[1] = c.in[0];
    c.in[2] = (lm_tv){.p = NULL, .dt = LM_F32, .ndim = 4, .d = {1, 4, 4, 1}, .n = 16};
    c.out = (lm_tv){.p = dx, .dt = LM_F32, .ndim = 4, .d = {1, 4, 4, 1}, .n = 16};
    CHECK_STATUS(lm_op_get(LM_OP_MAX_POOL_GRAD)->kernel[LM_BACKEND_CPU](&c), LM_ERR_STATE);
    CHECK_CONTAINS(lm_ctx_error(ctx), "saved state");
    lm_graph_free(g);
}

/* Runs y and the gradients of sum(y * r) for r = 1 + index, returning outputs. */
static lm_session *run(lm_graph *g, lm_node *y, int n, lm_node **wrt) {
    lm_node *outs[4] = {y};
    if (n) {
        lm_node *gr[3];
        CHECK_STATUS(lm_gradients(g, y, lm_op_fill_like(g, y, 1.0f), n, wrt, gr), LM_OK);
        for (int i = 0; i < n; i++) outs[i + 1] = gr[i];
    }
    lm_session *s = lm_session_new(g, n + 1, outs);
    CHECK_MSG(s != NULL, "session: %s", lm_ctx_error(ctx));
    if (s) CHECK_STATUS(lm_session_run(s), LM_OK);
    return s;
}

static lm_node *var(lm_graph *g, const char *name, lm_shape s, const float *v) {
    lm_node *n = lm_variable(g, name, LM_F32, s);
    float *p = lm_tensor_f32(lm_variable_value(n));
    for (int64_t i = 0; i < lm_shape_numel(s); i++) p[i] = v ? v[i] : (float)(i + 1);
    return n;
}

static void check_values(lm_tensor *t, const float *want, int64_t n) {
    CHECK(t && lm_tensor_numel(t) == n);
    for (int64_t i = 0; t && i < n; i++) CHECK_NEAR(lm_tensor_f32(t)[i], want[i], 1e-6);
}

static void exact_values(void) {
    lm_graph *g = lm_graph_new(ctx);
    /* x 1..9 (3x3), w = [[1, 0], [0, -1]]: every output is x[i][j] - x[i+1][j+1] = -4. */
    const float w1[4] = {1, 0, 0, -1}, m4[4] = {-4, -4, -4, -4};
    lm_node *x = var(g, "x", LM_SHAPE(1, 3, 3, 1), NULL);
    lm_session *s = run(
        g, lm_op_conv2d(g, x, var(g, "w", LM_SHAPE(2, 2, 1, 1), w1), (lm_conv_opts){0}), 0, NULL);
    if (s) check_values(lm_session_output(s, 0), m4, 4);
    lm_session_free(s);
    lm_graph_free(g);

    /* "same", stride 2 on 4x4 with a 3x3 window of ones: pads 0 before, 1 after. */
    g = lm_graph_new(ctx);
    const float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    x = var(g, "x", LM_SHAPE(1, 4, 4, 1), NULL);
    lm_node *w = var(g, "w", LM_SHAPE(3, 3, 1, 1), ones);
    lm_node *wrt[2] = {x, w};
    s = run(g, lm_op_conv2d(g, x, w, (lm_conv_opts){.strides = {2, 2}, .padding = LM_PAD_SAME}), 2,
            wrt);
    /* rows 0-2 x cols 0-2, rows 0-2 x cols 2-3, rows 2-3 x cols 0-2, rows 2-3 x cols 2-3 */
    const float same[4] = {54, 45, 72, 54};
    /* d/dx: how many windows cover each cell; d/dw: sums of x under each tap. */
    const float gx[16] = {1, 1, 2, 1, 1, 1, 2, 1, 2, 2, 4, 2, 1, 1, 2, 1};
    const float gw[9] = {24, 28, 14, 40, 44, 22, 20, 22, 11};
    if (s) {
        check_values(lm_session_output(s, 0), same, 4);
        check_values(lm_session_output(s, 1), gx, 16);
        check_values(lm_session_output(s, 2), gw, 9);
    }
    lm_session_free(s);
    lm_graph_free(g);

    /* causal conv1d: y[t] = x[t-1] + 10 x[t]. */
    g = lm_graph_new(ctx);
    const float wc[2] = {1, 10}, yc[4] = {10, 21, 32, 43};
    x = var(g, "x", LM_SHAPE(1, 4, 1), NULL);
    s = run(g,
            lm_op_conv1d(g, x, var(g, "w", LM_SHAPE(2, 1, 1), wc),
                         (lm_conv_opts){.padding = LM_PAD_CAUSAL}),
            0, NULL);
    if (s) check_values(lm_session_output(s, 0), yc, 4);
    lm_session_free(s);
    lm_graph_free(g);

    /* max pooling 2x2 on 1..16 and its gradient; average "same" 3x3 stride 2 on 1..9. */
    g = lm_graph_new(ctx);
    x = var(g, "x", LM_SHAPE(1, 4, 4, 1), NULL);
    s = run(g, lm_op_max_pool2d(g, x, (lm_pool_opts){.size = {2, 2}}), 1, &x);
    const float mp[4] = {6, 8, 14, 16}, gmp[16] = {0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1};
    if (s) {
        check_values(lm_session_output(s, 0), mp, 4);
        check_values(lm_session_output(s, 1), gmp, 16);
    }
    lm_session_free(s);
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = var(g, "x", LM_SHAPE(1, 3, 3, 1), NULL);
    s = run(g,
            lm_op_avg_pool2d(
                g, x, (lm_pool_opts){.size = {3, 3}, .strides = {2, 2}, .padding = LM_PAD_SAME}),
            1, &x);
    /* windows of 4 real cells each: (1,2,4,5), (2,3,5,6), (4,5,7,8), (5,6,8,9) */
    const float ap[4] = {3, 4, 6, 7}, gap[9] = {.25, .5, .25, .5, 1, .5, .25, .5, .25};
    if (s) {
        check_values(lm_session_output(s, 0), ap, 4);
        check_values(lm_session_output(s, 1), gap, 9);
    }
    lm_session_free(s);
    lm_graph_free(g);
}

static void zero_sized(void) {
    /* An empty batch, fed at run time, forward and both gradients. */
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = ph(g, LM_SHAPE(-1, 6, 6, 2));
    lm_node *w = var(g, "w", LM_SHAPE(3, 3, 2, 4), NULL);
    lm_node *y = lm_op_conv2d(g, x, w, (lm_conv_opts){.padding = LM_PAD_SAME});
    lm_node *p = lm_op_max_pool2d(g, y, (lm_pool_opts){.size = {2, 2}});
    lm_node *q = lm_op_avg_pool2d(g, p, (lm_pool_opts){.size = {2, 2}, .padding = LM_PAD_SAME});
    lm_node *wrt[2] = {x, w}, *gr[2];
    CHECK_STATUS(lm_gradients(g, q, lm_op_fill_like(g, q, 1.0f), 2, wrt, gr), LM_OK);
    lm_node *outs[3] = {q, gr[0], gr[1]};
    lm_session *s = lm_session_new(g, 3, outs);
    lm_tensor *xt = lm_tensor_new(ctx, LM_F32, LM_SHAPE(0, 6, 6, 2));
    CHECK_STATUS(lm_session_feed(s, x, xt), LM_OK);
    CHECK_STATUS(lm_session_run(s), LM_OK);
    CHECK(lm_tensor_numel(lm_session_output(s, 0)) == 0);
    CHECK(lm_tensor_dim(lm_session_output(s, 0), 1) == 2);
    CHECK(lm_tensor_numel(lm_session_output(s, 1)) == 0);
    lm_tensor *gw = lm_session_output(s, 2);
    CHECK(lm_tensor_numel(gw) == 72);
    double sum = 0;
    for (int i = 0; i < 72; i++) sum += fabs(lm_tensor_f32(gw)[i]);
    CHECK(sum == 0);
    lm_session_free(s);
    lm_tensor_free(xt);
    lm_graph_free(g);

    /* No filters and no channels. */
    g = lm_graph_new(ctx);
    x = var(g, "x", LM_SHAPE(2, 4, 4, 3), NULL);
    y = lm_op_conv2d(g, x, var(g, "w", LM_SHAPE(3, 3, 3, 0), NULL), (lm_conv_opts){0});
    CHECK(y && lm_node_shape(y).dims[3] == 0);
    s = run(g, y, 1, &x);
    if (s) {
        lm_tensor *gx = lm_session_output(s, 1);
        CHECK(lm_tensor_numel(gx) == 96);
        for (int i = 0; i < 96; i++) CHECK(lm_tensor_f32(gx)[i] == 0.0f);
    }
    lm_session_free(s);
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = var(g, "x", LM_SHAPE(2, 4, 0), NULL);
    w = var(g, "w", LM_SHAPE(2, 0, 3), NULL);
    y = lm_op_conv1d(g, x, w, (lm_conv_opts){0});
    s = run(g, y, 1, &w);
    if (s) {
        lm_tensor *yt = lm_session_output(s, 0);
        CHECK(lm_tensor_numel(yt) == 2 * 3 * 3);
        for (int i = 0; i < 18; i++) CHECK(lm_tensor_f32(yt)[i] == 0.0f);
    }
    lm_session_free(s);
    lm_graph_free(g);
}

/* ---- naive reference for the three passes ---- */

typedef struct {
    int N, H, W, C, KH, KW, O, sh, sw, dh, dw, groups;
    lm_padding pad;
} cfg;

static int out_size(int in, int k, int s, int d, lm_padding pad, int *before) {
    int ek = (k - 1) * d + 1;
    if (pad == LM_PAD_SAME) {
        int o = (in + s - 1) / s, tot = (o - 1) * s + ek - in;
        *before = tot > 0 ? tot / 2 : 0;
        return o;
    }
    *before = 0;
    return (in - ek) / s + 1;
}

static void naive_check(const cfg *k) {
    int pt, pl, OH = out_size(k->H, k->KH, k->sh, k->dh, k->pad, &pt),
                OW = out_size(k->W, k->KW, k->sw, k->dw, k->pad, &pl);
    int CG = k->C / k->groups, OG = k->O / k->groups;
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_variable(g, "x", LM_F32, LM_SHAPE(k->N, k->H, k->W, k->C));
    lm_node *w = lm_variable(g, "w", LM_F32, LM_SHAPE(k->KH, k->KW, CG, k->O));
    lm_ctx_seed(ctx, 7);
    lm_tensor_random_uniform(lm_variable_value(x), -1, 1);
    lm_tensor_random_uniform(lm_variable_value(w), -1, 1);
    lm_conv_opts o = {.strides = {k->sh, k->sw},
                      .dilation = {k->dh, k->dw},
                      .groups = k->groups,
                      .padding = k->pad};
    lm_node *y = lm_op_conv2d(g, x, w, o);
    lm_tensor *rt = lm_tensor_new(ctx, LM_F32, LM_SHAPE(k->N, OH, OW, k->O));
    lm_tensor_random_uniform(rt, -1, 1);
    lm_node *wrt[2] = {x, w}, *gr[2];
    CHECK_STATUS(lm_gradients(g, y, lm_constant(g, rt), 2, wrt, gr), LM_OK);
    lm_node *outs[3] = {y, gr[0], gr[1]};
    lm_session *s = lm_session_new(g, 3, outs);
    CHECK(s != NULL);
    if (!s || lm_session_run(s) != LM_OK) {
        CHECK_MSG(0, "run: %s", lm_ctx_error(ctx));
        lm_session_free(s);
        lm_tensor_free(rt);
        lm_graph_free(g);
        return;
    }
    const float *xp = lm_tensor_f32(lm_variable_value(x)),
                *wp = lm_tensor_f32(lm_variable_value(w));
    const float *r = lm_tensor_f32(rt), *yp = lm_tensor_f32(lm_session_output(s, 0));
    const float *gxp = lm_tensor_f32(lm_session_output(s, 1));
    const float *gwp = lm_tensor_f32(lm_session_output(s, 2));
    size_t nx = (size_t)k->N * k->H * k->W * k->C, nw = (size_t)k->KH * k->KW * CG * k->O;
    double *gx = calloc(nx, sizeof *gx), *gw = calloc(nw, sizeof *gw), ey = 0, ex = 0, ew = 0;
    for (int n = 0; n < k->N; n++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int oc = 0; oc < k->O; oc++) {
                    int grp = oc / OG;
                    size_t yi = (((size_t)n * OH + oh) * OW + ow) * k->O + oc;
                    double acc = 0;
                    for (int kh = 0; kh < k->KH; kh++)
                        for (int kw = 0; kw < k->KW; kw++) {
                            int ih = oh * k->sh - pt + kh * k->dh,
                                iw = ow * k->sw - pl + kw * k->dw;
                            if (ih < 0 || ih >= k->H || iw < 0 || iw >= k->W) continue;
                            for (int c = 0; c < CG; c++) {
                                size_t xi = (((size_t)n * k->H + ih) * k->W + iw) * k->C +
                                            (size_t)grp * CG + c;
                                size_t wi = (((size_t)kh * k->KW + kw) * CG + c) * k->O + oc;
                                acc += (double)xp[xi] * wp[wi];
                                gx[xi] += (double)r[yi] * wp[wi];
                                gw[wi] += (double)r[yi] * xp[xi];
                            }
                        }
                    ey = fmax(ey, fabs(acc - yp[yi]) / fmax(1, fabs(acc)));
                }
    for (size_t i = 0; i < nx; i++) ex = fmax(ex, fabs(gx[i] - gxp[i]) / fmax(1, fabs(gx[i])));
    for (size_t i = 0; i < nw; i++) ew = fmax(ew, fabs(gw[i] - gwp[i]) / fmax(1, fabs(gw[i])));
    CHECK_MSG(
        ey < 1e-5 && ex < 1e-5 && ew < 1e-4,
        "x (%d, %d, %d, %d) k %dx%d O %d s %d,%d d %d,%d g %d pad %d: errors y %g dx %g dw %g",
        k->N, k->H, k->W, k->C, k->KH, k->KW, k->O, k->sh, k->sw, k->dh, k->dw, k->groups,
        (int)k->pad, ey, ex, ew);
    free(gx);
    free(gw);
    lm_session_free(s);
    lm_tensor_free(rt);
    lm_graph_free(g);
}

static const cfg naive_cfgs[] = {
    /* MNIST's first layer: direct kernel forward. */
    {32, 28, 28, 1, 3, 3, 32, 1, 1, 1, 1, 1, LM_PAD_VALID},
    {3, 17, 15, 1, 5, 5, 100, 2, 1, 1, 1, 1, LM_PAD_SAME},
    /* Several im2col tiles per thread, groups, strides, dilation. */
    {4, 40, 40, 3, 3, 3, 8, 1, 1, 1, 1, 1, LM_PAD_SAME},
    {3, 23, 21, 8, 3, 3, 12, 2, 2, 1, 1, 2, LM_PAD_SAME},
    {2, 30, 31, 16, 3, 3, 16, 1, 1, 2, 2, 4, LM_PAD_VALID},
    {1, 20, 20, 32, 3, 3, 64, 1, 1, 1, 1, 1, LM_PAD_SAME}, /* N < threads */
    {2, 10, 12, 1, 3, 3, 70, 1, 1, 1, 1, 1, LM_PAD_SAME},  /* register kernels, 3 chunks */
    {2, 9, 9, 2, 3, 3, 12, 2, 1, 1, 2, 1, LM_PAD_SAME},    /* 18 taps, 12 filters */
    {2, 11, 10, 4, 2, 2, 8, 1, 1, 1, 1, 2, LM_PAD_SAME},   /* small windows, groups */
    {5, 9, 11, 24, 1, 1, 40, 1, 1, 1, 1, 1, LM_PAD_VALID}, /* pointwise */
    {2, 9, 11, 6, 1, 1, 4, 2, 2, 1, 1, 1, LM_PAD_VALID},   /* 1x1, strided */
};

static void matches_naive(void) {
    const char *isas[2] = {"generic", NULL};
    int threads[2] = {1, 2};
    for (int a = 0; a < 2; a++)
        for (int t = 0; t < 2; t++) {
            if (isas[a])
                lm_ctx_set_isa(ctx, isas[a]);
            else
                lm_ctx_set_isa(ctx, lm_isa_name(lm_cpu_detect()));
            lm_ctx_set_threads(ctx, threads[t]);
            for (size_t i = 0; i < sizeof naive_cfgs / sizeof *naive_cfgs; i++)
                naive_check(&naive_cfgs[i]);
        }
}

/* ---- pooling against a naive reference ---- */

typedef struct {
    int N, H, W, C, KH, KW, sh, sw;
    lm_padding pad;
    bool avg;
} pcfg;

static void pool_naive_check(const pcfg *k) {
    int pt, pl, OH = out_size(k->H, k->KH, k->sh, 1, k->pad, &pt),
                OW = out_size(k->W, k->KW, k->sw, 1, k->pad, &pl);
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_variable(g, "x", LM_F32, LM_SHAPE(k->N, k->H, k->W, k->C));
    float *xp = lm_tensor_f32(lm_variable_value(x));
    int64_t nx = (int64_t)k->N * k->H * k->W * k->C;
    for (int64_t i = 0; i < nx; i++) xp[i] = (float)((i * 7919) % nx) / (float)nx; /* distinct */
    lm_pool_opts o = {.size = {k->KH, k->KW}, .strides = {k->sh, k->sw}, .padding = k->pad};
    lm_node *y = k->avg ? lm_op_avg_pool2d(g, x, o) : lm_op_max_pool2d(g, x, o);
    lm_tensor *rt = lm_tensor_new(ctx, LM_F32, LM_SHAPE(k->N, OH, OW, k->C));
    lm_tensor_random_uniform(rt, -1, 1);
    lm_node *gx;
    CHECK_STATUS(lm_gradients(g, y, lm_constant(g, rt), 1, &x, &gx), LM_OK);
    lm_node *outs[2] = {y, gx};
    lm_session *s = lm_session_new(g, 2, outs);
    CHECK(s && lm_session_run(s) == LM_OK);
    if (s) {
        const float *yp = lm_tensor_f32(lm_session_output(s, 0)), *r = lm_tensor_f32(rt);
        const float *gp = lm_tensor_f32(lm_session_output(s, 1));
        double *gref = calloc((size_t)nx, sizeof *gref), ey = 0, eg = 0;
        for (int n = 0; n < k->N; n++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++)
                    for (int c = 0; c < k->C; c++) {
                        double acc = k->avg ? 0 : -INFINITY;
                        int64_t best = -1, cnt = 0;
                        for (int ih = oh * k->sh - pt; ih < oh * k->sh - pt + k->KH; ih++)
                            for (int iw = ow * k->sw - pl; iw < ow * k->sw - pl + k->KW; iw++) {
                                if (ih < 0 || ih >= k->H || iw < 0 || iw >= k->W) continue;
                                int64_t xi = (((int64_t)n * k->H + ih) * k->W + iw) * k->C + c;
                                cnt++;
                                if (k->avg)
                                    acc += xp[xi];
                                else if (xp[xi] > acc)
                                    acc = xp[xi], best = xi;
                            }
                        int64_t yi = (((int64_t)n * OH + oh) * OW + ow) * k->C + c;
                        if (k->avg) acc /= (double)cnt;
                        ey = fmax(ey, fabs(acc - yp[yi]));
                        if (!k->avg) gref[best] += r[yi];
                        for (int ih = oh * k->sh - pt; k->avg && ih < oh * k->sh - pt + k->KH; ih++)
                            for (int iw = ow * k->sw - pl; iw < ow * k->sw - pl + k->KW; iw++)
                                if (ih >= 0 && ih < k->H && iw >= 0 && iw < k->W)
                                    gref[(((int64_t)n * k->H + ih) * k->W + iw) * k->C + c] +=
                                        r[yi] / (double)cnt;
                    }
        for (int64_t i = 0; i < nx; i++) eg = fmax(eg, fabs(gref[i] - gp[i]));
        CHECK_MSG(ey < 1e-6 && eg < 1e-5,
                  "%s pool x (%d, %d, %d, %d) %dx%d s %d,%d pad %d: errors y %g dx %g",
                  k->avg ? "avg" : "max", k->N, k->H, k->W, k->C, k->KH, k->KW, k->sh, k->sw,
                  (int)k->pad, ey, eg);
        free(gref);
    }
    lm_session_free(s);
    lm_tensor_free(rt);
    lm_graph_free(g);
}

static const pcfg pool_cfgs[] = {
    {32, 26, 26, 32, 2, 2, 2, 2, LM_PAD_VALID, false}, /* after MNIST's first layer */
    {3, 9, 11, 20, 2, 2, 2, 2, LM_PAD_VALID, false},   /* leftover row and column */
    {3, 9, 11, 20, 3, 3, 2, 2, LM_PAD_SAME, false},    /* overlapping windows */
    {2, 8, 8, 17, 2, 2, 2, 2, LM_PAD_SAME, false},
    {2, 7, 9, 5, 2, 3, 3, 3, LM_PAD_SAME, false}, /* strides > size */
    {32, 26, 26, 32, 2, 2, 2, 2, LM_PAD_VALID, true},
    {3, 9, 11, 20, 3, 3, 2, 2, LM_PAD_SAME, true},
    {3, 9, 11, 33, 2, 3, 1, 2, LM_PAD_VALID, true},
    {2, 7, 9, 5, 2, 3, 3, 3, LM_PAD_SAME, true},
};

static void pool_matches_naive(void) {
    const char *isas[2] = {"generic", NULL};
    for (int a = 0; a < 2; a++)
        for (int t = 1; t <= 2; t++) {
            lm_ctx_set_isa(ctx, isas[a] ? isas[a] : lm_isa_name(lm_cpu_detect()));
            lm_ctx_set_threads(ctx, t);
            for (size_t i = 0; i < sizeof pool_cfgs / sizeof *pool_cfgs; i++)
                pool_naive_check(&pool_cfgs[i]);
        }
}

/* Conv + ReLU (fused) then max pooling: the ReLU gradient is applied to the
 * pooled gradient before the scatter (lm_act_grad_y); gradients of x, w and
 * b must equal those of the same network with the ReLU as an op of its own,
 * for disjoint and overlapping windows. */
static void relu_pool_gradients(void) {
    static const lm_pool_opts pools[] = {{{2, 2}, {0, 0}, LM_PAD_VALID},
                                         {{3, 3}, {2, 2}, LM_PAD_SAME},
                                         {{2, 3}, {1, 2}, LM_PAD_VALID}};
    for (size_t k = 0; k < sizeof pools / sizeof *pools; k++) {
        lm_tensor *got[2][3] = {{NULL}};
        lm_session *ss[2] = {NULL};
        lm_graph *gs[2] = {NULL};
        for (int sep = 0; sep < 2; sep++) {
            lm_graph *g = gs[sep] = lm_graph_new(ctx);
            float xv[2 * 9 * 8 * 3], wv[3 * 3 * 3 * 5], bv[5] = {0.3f, -0.2f, 0.1f, 0, -0.5f};
            for (int i = 0; i < (int)(sizeof xv / sizeof *xv); i++) xv[i] = sinf(0.7f * (float)i);
            for (int i = 0; i < (int)(sizeof wv / sizeof *wv); i++)
                wv[i] = cosf(1.3f * (float)i) / 4;
            lm_node *x = var(g, "x", LM_SHAPE(2, 9, 8, 3), xv),
                    *w = var(g, "w", LM_SHAPE(3, 3, 3, 5), wv);
            lm_node *b = var(g, "b", LM_SHAPE(5), bv);
            lm_conv_opts co = {.padding = LM_PAD_SAME};
            lm_node *z = sep ? lm_op_relu(g, lm_op_conv2d_bias_act(g, x, w, b, co, LM_ACT_LINEAR))
                             : lm_op_conv2d_bias_act(g, x, w, b, co, LM_ACT_RELU);
            lm_node *y = lm_op_max_pool2d(g, z, pools[k]);
            lm_node *wrt[3] = {x, w, b};
            ss[sep] = run(g, y, 3, wrt);
            for (int i = 0; ss[sep] && i < 3; i++) got[sep][i] = lm_session_output(ss[sep], i + 1);
        }
        for (int i = 0; i < 3; i++) {
            lm_tensor *a = got[0][i], *c = got[1][i];
            CHECK(a && c && lm_tensor_numel(a) == lm_tensor_numel(c));
            double worst = 0;
            for (int64_t j = 0; a && c && j < lm_tensor_numel(a); j++)
                worst = fmax(worst, fabs((double)lm_tensor_f32(a)[j] - lm_tensor_f32(c)[j]));
            CHECK_MSG(worst <= 1e-6, "pool %zu, gradient %d: fused ReLU differs by %g", k, i,
                      worst);
        }
        for (int sep = 0; sep < 2; sep++) {
            lm_session_free(ss[sep]);
            lm_graph_free(gs[sep]);
        }
    }
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(conv_errors);
    RUN(backward_op_errors);
    RUN(pool_errors);
    RUN(kernel_errors);
    RUN(exact_values);
    RUN(zero_sized);
    RUN(matches_naive);
    RUN(pool_matches_naive);
    RUN(relu_pool_gradients);
    lm_ctx_free(ctx);
    return lmt_summary("ops_conv");
}
