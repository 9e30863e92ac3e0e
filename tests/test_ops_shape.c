/* Shape and indexing ops: argument and shape errors (with their messages),
 * run-time errors, zero-sized tensors, exact values against naive loops, and
 * gradients when the batch is only known at run time. */
#include "lmtest.h"
#include <lamina/lamina.h>
#include <stdint.h>

static lm_ctx *ctx;

/* A float32 placeholder of shape s fed with 0, 1, 2, ... */
static lm_tensor *iota(lm_dtype dt, lm_shape s) {
    lm_tensor *t = lm_tensor_new(ctx, dt, s);
    for (int64_t i = 0; i < lm_tensor_numel(t); i++) lm_tensor_set(t, i, (double)(i % 251));
    return t;
}

/* Runs outs with ph[i] fed val[i]; res[k] receives a copy of output k.
 * Returns the status of the run. */
static lm_status run(lm_graph *g, int n, lm_node **outs, int nf, lm_node **ph, lm_tensor **val,
                     lm_tensor **res) {
    for (int k = 0; k < n; k++) res[k] = NULL;
    lm_session *s = lm_session_new(g, n, outs);
    if (!s) return LM_ERR_STATE;
    for (int i = 0; i < nf; i++) lm_session_feed(s, ph[i], val[i]);
    lm_status st = lm_session_run(s);
    for (int k = 0; k < n && st == LM_OK; k++) res[k] = lm_tensor_clone(lm_session_output(s, k));
    lm_session_free(s);
    return st;
}

static bool shape_is(const lm_tensor *t, lm_shape s) {
    lm_shape a = lm_tensor_shape(t);
    if (a.ndim != s.ndim) return false;
    for (int i = 0; i < s.ndim; i++)
        if (a.dims[i] != s.dims[i]) return false;
    return true;
}

/* ---- errors at build time ---- */

static void bad_transpose(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_variable(g, "x", LM_F32, LM_SHAPE(2, 3, 4));
    CHECK(lm_op_transpose(g, x, (int[]){0, 0, 1}) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "transpose");
    CHECK_CONTAINS(lm_graph_error(g), "(2, 3, 4)");
    CHECK_CONTAINS(lm_graph_error(g), "(0, 0, 1)");
    lm_graph_free(g);
    g = lm_graph_new(ctx);
    x = lm_variable(g, "x", LM_F32, LM_SHAPE(2, 3, 4));
    CHECK(lm_op_transpose(g, x, (int[]){0, 1, 3}) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "(0, 1, 3)");
    /* NULL reverses the axes. */
    lm_graph *g2 = lm_graph_new(ctx);
    lm_node *y = lm_op_transpose(g2, lm_variable(g2, "x", LM_F32, LM_SHAPE(2, 3, 4)), NULL);
    CHECK(y && lm_node_shape(y).dims[0] == 4 && lm_node_shape(y).dims[2] == 2);
    lm_graph_free(g2);
    /* Sticky: a NULL input keeps the first message. */
    CHECK(lm_op_transpose(g, NULL, (int[]){1, 0}) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "(0, 1, 3)");
    lm_graph_free(g);
}

static void bad_concat(void) {
    struct {
        lm_shape a, b;
        lm_dtype bt;
        int axis;
        const char *want[3];
    } cases[] = {
        {LM_SHAPE(2, 3), LM_SHAPE(2, 3, 1), LM_F32, 1, {"concat", "(2, 3)", "(2, 3, 1)"}},
        {LM_SHAPE(2, 3), LM_SHAPE(3, 3), LM_F32, 1, {"concat", "(2, 3)", "(3, 3)"}},
        {LM_SHAPE(2, 3), LM_SHAPE(2, 3), LM_I32, 0, {"concat", "int32", "(2, 3)"}},
        {LM_SHAPE(2, 3), LM_SHAPE(2, 3), LM_F32, 2, {"concat", "axis 2", "(2, 3)"}},
        {LM_SCALAR, LM_SCALAR, LM_F32, 0, {"concat", "scalars", "()"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        lm_graph *g = lm_graph_new(ctx);
        lm_node *x[2] = {lm_variable(g, "a", LM_F32, cases[i].a),
                         lm_variable(g, "b", cases[i].bt, cases[i].b)};
        CHECK(lm_op_concat(g, 2, x, cases[i].axis) == NULL);
        for (int k = 0; k < 3; k++) CHECK_CONTAINS(lm_graph_error(g), cases[i].want[k]);
        lm_graph_free(g);
    }
    lm_graph *g = lm_graph_new(ctx);
    CHECK(lm_op_concat(g, 0, NULL, 0) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "concat: takes 1 to 8 inputs, got 0");
    lm_graph_free(g);
}

static void bad_slice(void) {
    struct {
        int64_t b[2], s[2];
        const char *want;
    } cases[] = {
        {{3, 0}, {2, -1}, "begin (3, 0) size (2, -1) is out of range for input (4, 5)"},
        {{-1, 0}, {1, 1}, "begin (-1, 0) size (1, 1)"},
        {{0, 0}, {-2, 1}, "size (-2, 1)"},
        {{0, 6}, {-1, -1}, "begin (0, 6)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        lm_graph *g = lm_graph_new(ctx);
        lm_node *x = lm_variable(g, "x", LM_F32, LM_SHAPE(4, 5));
        CHECK(lm_op_slice(g, x, cases[i].b, cases[i].s) == NULL);
        CHECK_CONTAINS(lm_graph_error(g), "slice: ");
        CHECK_CONTAINS(lm_graph_error(g), cases[i].want);
        lm_graph_free(g);
    }
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_variable(g, "x", LM_F32, LM_SHAPE(4, 5));
    CHECK(lm_op_slice(g, x, NULL, (int64_t[]){1, 1}) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "slice: begin or size is NULL (input (4, 5))");
    lm_graph_free(g);
}

static void bad_pad(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_variable(g, "x", LM_F32, LM_SHAPE(4, 5));
    CHECK(lm_op_pad(g, x, (int64_t[]){1, -1}, (int64_t[]){0, 0}, 0) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "pad: negative padding: before (1, -1) after (0, 0)");
    CHECK_CONTAINS(lm_graph_error(g), "(4, 5)");
    lm_graph_free(g);
    g = lm_graph_new(ctx);
    x = lm_variable(g, "x", LM_F32, LM_SHAPE(4, 5));
    CHECK(lm_op_pad(g, x, (int64_t[]){1, 1}, NULL, 0) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "pad: before or after is NULL (input (4, 5))");
    lm_graph_free(g);
}

static void bad_gather(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *p = lm_variable(g, "p", LM_F32, LM_SHAPE(5, 2));
    lm_node *i = lm_variable(g, "i", LM_F32, LM_SHAPE(3));
    CHECK(lm_op_gather(g, p, i) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "gather: indices (3,) are float32, not int32 or int64");
    CHECK_CONTAINS(lm_graph_error(g), "(5, 2)");
    lm_graph_free(g);
    g = lm_graph_new(ctx);
    p = lm_variable(g, "p", LM_F32, LM_SCALAR);
    i = lm_variable(g, "i", LM_I32, LM_SHAPE(3));
    CHECK(lm_op_gather(g, p, i) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "gather: cannot gather from params () with indices (3,)");
    lm_graph_free(g);
}

static void bad_one_hot(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *i = lm_variable(g, "i", LM_F32, LM_SHAPE(3));
    CHECK(lm_op_one_hot(g, i, 4) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "one_hot: indices (3,) are float32");
    lm_graph_free(g);
    g = lm_graph_new(ctx);
    i = lm_variable(g, "i", LM_I64, LM_SHAPE(3));
    CHECK(lm_op_one_hot(g, i, -2) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "one_hot: negative depth -2 for indices (3,)");
    lm_graph_free(g);
}

static void bad_repeat(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_variable(g, "x", LM_F32, LM_SHAPE(2, 3, 4));
    CHECK(lm_op_repeat(g, x, 2) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "repeat: input (2, 3, 4) is not (batch, features)");
    lm_graph_free(g);
    g = lm_graph_new(ctx);
    x = lm_variable(g, "x", LM_F32, LM_SHAPE(2, 3));
    CHECK(lm_op_repeat(g, x, -1) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "repeat: negative repeat count -1 for input (2, 3)");
    lm_graph_free(g);
}

/* ---- errors at run time ---- */

static void runtime_errors(void) {
    /* Indices out of range: a status and a message, nothing read. */
    int32_t bad[][3] = {{0, 7, 1}, {0, -6, 1}};
    for (int k = 0; k < 2; k++) {
        lm_graph *g = lm_graph_new(ctx);
        lm_node *p = lm_variable(g, "p", LM_F32, LM_SHAPE(5, 2));
        lm_node *i = lm_placeholder(g, LM_I32, LM_SHAPE(3), "i");
        lm_node *y = lm_op_gather(g, p, i), *gp;
        /* The upstream gradient is fed, so gather_grad runs without the forward op. */
        lm_node *r = lm_placeholder(g, LM_F32, LM_SHAPE(3, 2), "r");
        CHECK_STATUS(lm_gradients(g, y, r, 1, &p, &gp), LM_OK);
        lm_tensor *rv = lm_tensor_new(ctx, LM_F32, LM_SHAPE(3, 2));
        lm_tensor *iv = lm_tensor_from_data(ctx, LM_I32, LM_SHAPE(3), bad[k], sizeof bad[k]);
        lm_tensor *res[2];
        lm_node *outs[2] = {y, gp}, *ph[2] = {i, r};
        lm_tensor *fv[2] = {iv, rv};
        CHECK_STATUS(run(g, 2, outs, 2, ph, fv, res), LM_ERR_ARG);
        CHECK_CONTAINS(lm_ctx_error(ctx), "gather");
        CHECK_CONTAINS(lm_ctx_error(ctx), k ? "index -6 at position 1" : "index 7 at position 1");
        CHECK_CONTAINS(lm_ctx_error(ctx), "params (5, 2) (5 rows)");
        /* The backward kernel checks too. */
        CHECK_STATUS(run(g, 1, &gp, 2, ph, fv, res), LM_ERR_ARG);
        CHECK_CONTAINS(lm_ctx_error(ctx), "gather_grad");
        CHECK_CONTAINS(lm_ctx_error(ctx), "index");
        lm_tensor_free(iv);
        lm_tensor_free(rv);
        lm_graph_free(g);
    }
    /* A slice that no longer fits the fed batch. */
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 5), "x");
    lm_node *y = lm_op_slice(g, x, (int64_t[]){2, 0}, (int64_t[]){-1, -1});
    CHECK(y != NULL);
    lm_tensor *xv = iota(LM_F32, LM_SHAPE(1, 5)), *res;
    CHECK_STATUS(run(g, 1, &y, 1, &x, &xv, &res), LM_ERR_SHAPE);
    CHECK_CONTAINS(lm_ctx_error(ctx), "slice: begin (2, 0) size (-1, -1) is out of range for "
                                      "input (1, 5)");
    lm_tensor_free(xv);
    lm_graph_free(g);
    /* Concat inputs whose known dims disagree once the batch is fed. */
    g = lm_graph_new(ctx);
    lm_node *a = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 2), "a");
    lm_node *b = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 3), "b");
    y = lm_op_concat(g, 2, (lm_node *[]){a, b}, 1);
    lm_tensor *v[2] = {iota(LM_F32, LM_SHAPE(2, 2)), iota(LM_F32, LM_SHAPE(3, 3))};
    CHECK_STATUS(run(g, 1, &y, 2, (lm_node *[]){a, b}, v, &res), LM_ERR_SHAPE);
    CHECK_CONTAINS(lm_ctx_error(ctx), "concat: inputs (2, 2), (3, 3) differ");
    lm_tensor_free(v[0]);
    lm_tensor_free(v[1]);
    lm_graph_free(g);
}

/* ---- zero-sized tensors ---- */

static void zero_sized(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *e = lm_placeholder(g, LM_F32, LM_SHAPE(0, 3), "e");
    /* Variables: lm_tensor_is_contiguous refuses (2, 0) tensors, so they cannot be fed. */
    lm_node *z = lm_variable(g, "z", LM_F32, LM_SHAPE(2, 0));
    lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(2, 3), "x");
    lm_node *i0 = lm_variable(g, "i0", LM_I64, LM_SHAPE(2, 0));
    lm_node *p0 = lm_placeholder(g, LM_F32, LM_SHAPE(0, 4), "p0");
    lm_node *e0 = lm_placeholder(g, LM_I32, LM_SHAPE(0), "e0");
    lm_node *outs[] = {
        lm_op_transpose(g, e, (int[]){1, 0}),
        lm_op_concat(g, 2, (lm_node *[]){z, x}, 1),
        lm_op_slice(g, x, (int64_t[]){1, 0}, (int64_t[]){0, -1}),
        lm_op_pad(g, e, (int64_t[]){1, 0}, (int64_t[]){0, 1}, 2.0f),
        lm_op_gather(g, x, i0),
        lm_op_gather(g, p0, e0),
        lm_op_one_hot(g, e0, 3),
        lm_op_one_hot(g, i0, 0),
        lm_op_repeat(g, x, 0),
        lm_op_repeat(g, e, 2),
    };
    lm_shape want[] = {LM_SHAPE(3, 0),    LM_SHAPE(2, 3),   LM_SHAPE(0, 3), LM_SHAPE(1, 4),
                       LM_SHAPE(2, 0, 3), LM_SHAPE(0, 4),   LM_SHAPE(0, 3), LM_SHAPE(2, 0, 0),
                       LM_SHAPE(2, 0, 3), LM_SHAPE(0, 2, 3)};
    enum { N = sizeof outs / sizeof *outs };
    /* Gradients flowing through empty tensors are zeros. */
    lm_node *gx[2], *gz;
    CHECK_STATUS(lm_grad(g, lm_op_repeat(g, x, 0), 1, &x, gx), LM_OK);
    CHECK_STATUS(
        lm_grad(g, lm_op_slice(g, x, (int64_t[]){0, 3}, (int64_t[]){-1, 0}), 1, &x, gx + 1), LM_OK);
    CHECK_STATUS(lm_grad(g, outs[1], 1, &z, &gz), LM_OK);
    lm_node *all[N + 3];
    for (int k = 0; k < N; k++) all[k] = outs[k];
    all[N] = gx[0];
    all[N + 1] = gx[1];
    all[N + 2] = gz;
    lm_node *ph[] = {e, x, p0, e0};
    lm_tensor *val[4], *res[N + 3];
    for (int k = 0; k < 4; k++) val[k] = iota(lm_node_dtype(ph[k]), lm_node_shape(ph[k]));
    CHECK_MSG(lm_graph_status(g) == LM_OK, "%s", lm_graph_error(g));
    lm_status st = run(g, N + 3, all, 4, ph, val, res);
    CHECK_MSG(st == LM_OK, "run: %s", lm_ctx_error(ctx));
    for (int k = 0; k < N && res[0]; k++) CHECK_MSG(shape_is(res[k], want[k]), "output %d", k);
    if (res[0]) {
        for (int k = 0; k < 6; k++) CHECK(lm_tensor_get(res[1], k) == k); /* the x part */
        for (int k = 0; k < 4; k++) CHECK(lm_tensor_get(res[3], k) == 2.0);
        for (int k = 0; k < 6; k++) CHECK(lm_tensor_get(res[N], k) == 0.0);
        for (int k = 0; k < 6; k++) CHECK(lm_tensor_get(res[N + 1], k) == 0.0);
        CHECK(shape_is(res[N + 2], LM_SHAPE(2, 0)));
    }
    for (int k = 0; k < N + 3; k++) lm_tensor_free(res[k]);
    for (int k = 0; k < 4; k++) lm_tensor_free(val[k]);
    lm_graph_free(g);
}

/* ---- exact values ---- */

/* Transposes of every permutation of a 4-D tensor, in each element size,
 * against a naive loop; then large ones that take the threaded paths. */
static void check_transpose(lm_dtype dt, lm_shape s, const int *perm) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_placeholder(g, dt, s, "x");
    lm_node *y = lm_op_transpose(g, x, perm);
    lm_tensor *xv = iota(dt, s), *yv = NULL;
    CHECK_STATUS(run(g, 1, &y, 1, &x, &xv, &yv), LM_OK);
    int nd = s.ndim;
    int64_t str[LM_MAX_DIMS], od[LM_MAX_DIMS], idx[LM_MAX_DIMS] = {0};
    str[nd - 1] = 1;
    for (int i = nd - 2; i >= 0; i--) str[i] = str[i + 1] * s.dims[i + 1];
    for (int i = 0; i < nd; i++) od[i] = s.dims[perm[i]];
    int bad = 0;
    for (int64_t k = 0; yv && k < lm_tensor_numel(yv); k++) {
        int64_t off = 0;
        for (int i = 0; i < nd; i++) off += idx[i] * str[perm[i]];
        if (lm_tensor_get(yv, k) != (double)(off % 251)) bad++;
        for (int i = nd - 1; i >= 0 && ++idx[i] == od[i]; i--) idx[i] = 0;
    }
    CHECK_MSG(yv && bad == 0, "transpose %s perm (%d %d %d %d): %d wrong", lm_dtype_name(dt),
              perm[0], perm[1], nd > 2 ? perm[2] : -1, nd > 3 ? perm[3] : -1, bad);
    lm_tensor_free(xv);
    lm_tensor_free(yv);
    lm_graph_free(g);
}

static void transpose_values(void) {
    lm_dtype dts[] = {LM_F32, LM_U8, LM_I64, LM_F64};
    for (int d = 0; d < 4; d++)
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++)
                for (int c = 0; c < 4; c++) {
                    int e = 6 - a - b - c;
                    if (a == b || a == c || b == c || e < 0 || e > 3 || e == a || e == b || e == c)
                        continue;
                    check_transpose(dts[d], LM_SHAPE(3, 5, 7, 9), (int[]){a, b, c, e});
                    check_transpose(dts[d], LM_SHAPE(2, 1, 33, 40), (int[]){a, b, c, e});
                }
    /* The portable tile, where the default one is SIMD. */
    char isa[16];
    snprintf(isa, sizeof isa, "%s", lm_ctx_isa(ctx));
    CHECK_STATUS(lm_ctx_set_isa(ctx, "generic"), LM_OK);
    check_transpose(LM_F32, LM_SHAPE(2, 1, 33, 40), (int[]){0, 3, 2, 1});
    check_transpose(LM_F32, LM_SHAPE(3, 5, 7, 9), (int[]){2, 0, 3, 1});
    CHECK_STATUS(lm_ctx_set_isa(ctx, isa), LM_OK);
    lm_ctx_set_threads(ctx, 4);
    check_transpose(LM_F32, LM_SHAPE(64, 130, 67), (int[]){0, 2, 1});
    check_transpose(LM_F32, LM_SHAPE(64, 130, 67), (int[]){2, 1, 0});
    check_transpose(LM_F32, LM_SHAPE(8, 28, 28, 64), (int[]){0, 3, 1, 2});
    check_transpose(LM_U8, LM_SHAPE(300, 1000), (int[]){1, 0});
    check_transpose(LM_F32, LM_SHAPE(300, 2, 500), (int[]){1, 0, 2});
    lm_ctx_set_threads(ctx, 1);
}

static void other_values(void) {
    lm_ctx_set_threads(ctx, 3);
    lm_graph *g = lm_graph_new(ctx);
    lm_node *a = lm_placeholder(g, LM_I32, LM_SHAPE(2, 2), "a");
    lm_node *b = lm_placeholder(g, LM_I32, LM_SHAPE(2, 1), "b");
    lm_node *p = lm_placeholder(g, LM_F32, LM_SHAPE(4, 2), "p");
    lm_node *i = lm_placeholder(g, LM_I64, LM_SHAPE(2, 2), "i");
    lm_node *y[] = {
        lm_op_concat(g, 2, (lm_node *[]){a, b}, 1),
        lm_op_pad(g, b, (int64_t[]){1, 0}, (int64_t[]){0, 2}, -3.0f),
        lm_op_gather(g, p, i),
        lm_op_one_hot(g, i, 3),
        lm_op_repeat(g, p, 2),
        NULL,
    };
    lm_node *r = lm_placeholder(g, LM_F32, LM_SHAPE(2, 2, 2), "r");
    CHECK_STATUS(lm_gradients(g, y[2], r, 1, &p, &y[5]), LM_OK);
    int32_t av[] = {1, 2, 3, 4}, bv[] = {5, 6};
    float pv[] = {0, 1, 10, 11, 20, 21, 30, 31}, rv[] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t iv[] = {3, -4, 3, 1};
    lm_tensor *v[] = {lm_tensor_from_data(ctx, LM_I32, LM_SHAPE(2, 2), av, sizeof av),
                      lm_tensor_from_data(ctx, LM_I32, LM_SHAPE(2, 1), bv, sizeof bv),
                      lm_tensor_from_data(ctx, LM_F32, LM_SHAPE(4, 2), pv, sizeof pv),
                      lm_tensor_from_data(ctx, LM_I64, LM_SHAPE(2, 2), iv, sizeof iv),
                      lm_tensor_from_data(ctx, LM_F32, LM_SHAPE(2, 2, 2), rv, sizeof rv)};
    lm_tensor *res[6];
    CHECK_STATUS(run(g, 6, y, 5, (lm_node *[]){a, b, p, i, r}, v, res), LM_OK);
    if (res[0]) {
        double cat[] = {1, 2, 5, 3, 4, 6};
        double pad[] = {-3, -3, -3, 5, -3, -3, 6, -3, -3};
        double gat[] = {30, 31, 0, 1, 30, 31, 10, 11};
        double hot[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
        double rep[] = {0, 1, 0, 1, 10, 11, 10, 11};
        double gp[] = {3, 4, 7, 8, 0, 0, 1 + 5, 2 + 6}; /* row 3 picked twice */
        for (int k = 0; k < 6; k++) CHECK(lm_tensor_get(res[0], k) == cat[k]);
        for (int k = 0; k < 9; k++) CHECK(lm_tensor_get(res[1], k) == pad[k]);
        for (int k = 0; k < 8; k++) CHECK(lm_tensor_get(res[2], k) == gat[k]);
        for (int k = 0; k < 12; k++) CHECK(lm_tensor_get(res[3], k) == hot[k]);
        for (int k = 0; k < 8; k++) CHECK(lm_tensor_get(res[4], k) == rep[k]);
        for (int k = 0; k < 8; k++) CHECK(lm_tensor_get(res[5], k) == gp[k]);
        CHECK(shape_is(res[1], LM_SHAPE(3, 3)) && shape_is(res[3], LM_SHAPE(2, 2, 3)) &&
              shape_is(res[4], LM_SHAPE(4, 2, 2)));
    }
    for (int k = 0; k < 6; k++) lm_tensor_free(res[k]);
    for (int k = 0; k < 5; k++) lm_tensor_free(v[k]);
    lm_graph_free(g);

    /* A large embedding gradient: threads own row blocks of the scatter-add. */
    g = lm_graph_new(ctx);
    p = lm_variable(g, "p", LM_F32, LM_SHAPE(1000, 64));
    i = lm_placeholder(g, LM_I32, LM_SHAPE(4096), "i");
    lm_node *gp;
    CHECK_STATUS(lm_grad(g, lm_op_gather(g, p, i), 1, &p, &gp), LM_OK);
    lm_tensor *ix = lm_tensor_new(ctx, LM_I32, LM_SHAPE(4096)), *gv;
    for (int k = 0; k < 4096; k++) lm_tensor_set(ix, k, (k * 7) % 1000 - (k % 3 ? 0 : 1000));
    CHECK_STATUS(run(g, 1, &gp, 1, &i, &ix, &gv), LM_OK);
    int64_t count[1000] = {0}, bad = 0;
    for (int k = 0; k < 4096; k++) count[(k * 7) % 1000]++;
    for (int64_t k = 0; gv && k < 64000; k++)
        if (lm_tensor_get(gv, k) != (double)count[k / 64]) bad++;
    CHECK_MSG(gv && bad == 0, "%lld wrong embedding gradients", (long long)bad);
    lm_tensor_free(ix);
    lm_tensor_free(gv);
    lm_graph_free(g);
    lm_ctx_set_threads(ctx, 1);
}

/* ---- gradients with the batch known only at run time ---- */

/* Concat along the unknown axis of 8 inputs, some known and some not: each
 * input's gradient is its own part of the upstream gradient. Two batch sizes,
 * so the session plans twice. */
static void unknown_batch_concat(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x[8], *gx[8];
    for (int k = 0; k < 8; k++)
        x[k] = lm_placeholder(g, LM_F32, LM_SHAPE(k % 3 ? -1 : k + 1, 2), NULL);
    lm_node *y = lm_op_concat(g, 8, x, 0);
    CHECK(lm_node_shape(y).dims[0] == -1);
    lm_node *r = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 2), "r");
    CHECK_STATUS(lm_gradients(g, y, r, 8, x, gx), LM_OK);
    lm_session *s = lm_session_new(g, 8, gx);
    /* Fed tensors stay alive until they are re-bound: keep both batches. */
    lm_tensor *xv[2][8] = {{NULL}}, *rv[2] = {NULL};
    for (int batch = 1; batch <= 2 && s; batch++) {
        int64_t total = 0, off[8];
        for (int k = 0; k < 8; k++) {
            int64_t rows = k % 3 ? batch * (k + 2) : k + 1;
            xv[batch - 1][k] = iota(LM_F32, LM_SHAPE(rows, 2));
            lm_session_feed(s, x[k], xv[batch - 1][k]);
            off[k] = total;
            total += rows;
        }
        rv[batch - 1] = iota(LM_F32, LM_SHAPE(total, 2));
        lm_session_feed(s, r, rv[batch - 1]);
        CHECK_STATUS(lm_session_run(s), LM_OK);
        for (int k = 0; k < 8; k++) {
            lm_tensor *o = lm_session_output(s, k);
            int bad = !shape_is(o, lm_tensor_shape(xv[batch - 1][k]));
            for (int64_t e = 0; !bad && e < lm_tensor_numel(o); e++)
                if (lm_tensor_get(o, e) != (double)((off[k] * 2 + e) % 251)) bad++;
            CHECK_MSG(!bad, "batch %d input %d", batch, k);
        }
    }
    lm_session_free(s);
    for (int b = 0; b < 2; b++) {
        for (int k = 0; k < 8; k++) lm_tensor_free(xv[b][k]);
        lm_tensor_free(rv[b]);
    }
    lm_graph_free(g);
}

/* Pad and slice on the unknown batch axis, differentiated. */
static void unknown_batch_pad_slice(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 3), "x");
    lm_node *p = lm_op_pad(g, x, (int64_t[]){2, 1}, (int64_t[]){3, 0}, 9.0f);
    lm_node *y = lm_op_slice(g, p, (int64_t[]){1, 1}, (int64_t[]){-1, 2});
    CHECK(lm_node_shape(y).dims[0] == -1 && lm_node_shape(y).dims[1] == 2);
    lm_node *r = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 2), "r"), *gx;
    CHECK_STATUS(lm_gradients(g, y, r, 1, &x, &gx), LM_OK);
    /* x (4, 3) -> p (9, 4) -> y (8, 2) = p[1:9, 1:3]; x sits at p[2:6, 1:4]. */
    lm_tensor *v[2] = {iota(LM_F32, LM_SHAPE(4, 3)), iota(LM_F32, LM_SHAPE(8, 2))}, *res[2];
    lm_node *outs[2] = {y, gx};
    CHECK_STATUS(run(g, 2, outs, 2, (lm_node *[]){x, r}, v, res), LM_OK);
    if (res[0]) {
        CHECK(shape_is(res[0], LM_SHAPE(8, 2)) && shape_is(res[1], LM_SHAPE(4, 3)));
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 2; j++) {
                int pi = i + 1, pj = j + 1;
                bool in = pi >= 2 && pi < 6 && pj >= 1;
                double want = in ? (pi - 2) * 3 + (pj - 1) : 9.0;
                CHECK(lm_tensor_get(res[0], i * 2 + j) == want);
            }
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 3; j++) {
                int yi = i + 2 - 1, yj = j + 1 - 1; /* x[i, j] = p[i+2, j+1] = y[i+1, j] */
                double want = yj < 2 ? yi * 2 + yj : 0.0;
                CHECK(lm_tensor_get(res[1], i * 3 + j) == want);
            }
    }
    for (int k = 0; k < 2; k++) {
        lm_tensor_free(res[k]);
        lm_tensor_free(v[k]);
    }
    lm_graph_free(g);
}

int main(void) {
    ctx = lm_ctx_new();
    lm_ctx_set_threads(ctx, 1);
    RUN(bad_transpose);
    RUN(bad_concat);
    RUN(bad_slice);
    RUN(bad_pad);
    RUN(bad_gather);
    RUN(bad_one_hot);
    RUN(bad_repeat);
    RUN(runtime_errors);
    RUN(zero_sized);
    RUN(transpose_values);
    RUN(other_values);
    RUN(unknown_batch_concat);
    RUN(unknown_batch_pad_slice);
    lm_ctx_free(ctx);
    return lmt_summary("ops_shape");
}
