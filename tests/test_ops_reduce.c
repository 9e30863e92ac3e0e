/* Reductions, global pools and softmax: argument, shape and dtype errors
 * (with their messages), zero-sized tensors, exact values (keepdims, NaN,
 * ties, large logits), the multi-threaded and general kernel paths against
 * naive double loops, and gradients with a batch known only at run time. */
#include "lmtest.h"
#include <lamina/lamina.h>
#include <math.h>
#include <stdint.h>

static lm_ctx *ctx;

/* Runs outs with ph[i] fed val[i]; res[k] receives a copy of output k. */
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

static lm_tensor *from(lm_shape s, const float *v) {
    return lm_tensor_from_data(ctx, LM_F32, s, v, (size_t)lm_shape_numel(s) * sizeof(float));
}

/* Evaluates a one-input graph built by fn on the value x; returns output 0. */
typedef lm_node *(*build1)(lm_graph *g, lm_node *x);

static lm_tensor *eval1(lm_tensor *x, build1 fn) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *ph = lm_placeholder(g, lm_tensor_dtype(x), lm_tensor_shape(x), "x");
    lm_node *y = fn(g, ph);
    lm_tensor *res = NULL;
    if (!y) {
        fprintf(stderr, "build: %s\n", lm_graph_error(g));
    } else if (run(g, 1, &y, 1, &ph, &x, &res) != LM_OK) {
        fprintf(stderr, "run: %s\n", lm_ctx_error(ctx));
    }
    lm_graph_free(g);
    return res;
}

/* ---- errors at build time ---- */

static void bad_axes(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_variable(g, "x", LM_F32, LM_SHAPE(2, 3));
    CHECK(lm_op_sum(g, x, 1, (int[]){2}, false) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "sum: axis 2 is out of range for input (2, 3)");
    /* Sticky: later constructors given NULL keep the first message. */
    CHECK(lm_op_mean(g, NULL, 0, NULL, false) == NULL);
    CHECK(lm_op_softmax(g, NULL, -1) == NULL);
    CHECK(lm_op_global_avg_pool(g, NULL) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "sum: axis 2");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_variable(g, "x", LM_F32, LM_SHAPE(2, 3));
    CHECK(lm_op_mean(g, x, 2, (int[]){1, -1}, true) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "mean: axis -1 is repeated (axes 1, -1) for input (2, 3)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_variable(g, "x", LM_F32, LM_SHAPE(2, 3));
    CHECK(lm_op_max(g, x, 1, (int[]){-3}, false) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "max: axis -3 is out of range for input (2, 3)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_variable(g, "x", LM_F32, LM_SHAPE(2, 3));
    CHECK(lm_op_max(g, x, 9, (int[]){0, 1, 0, 1, 0, 1, 0, 1, 0}, false) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "max: invalid axes (n_axes 9) for input (2, 3)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_variable(g, "x", LM_F32, LM_SHAPE(2, 3));
    CHECK(lm_op_sum(g, x, 1, NULL, false) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "sum: invalid axes (n_axes 1, axes NULL) for input (2, 3)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_variable(g, "x", LM_F32, LM_SHAPE(2, 3));
    CHECK(lm_op_argmax(g, x, 2) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "argmax: axis 2 is out of range for input (2, 3)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_variable(g, "x", LM_F32, LM_SHAPE(2, 3));
    CHECK(lm_op_log_softmax(g, x, -3) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "log_softmax: axis -3 is out of range for input (2, 3)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_scalar(g, 1.0f);
    CHECK(lm_op_softmax(g, x, 0) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "softmax: needs at least 1 dimension, got ()");
    lm_graph_free(g);
}

static void bad_dtype_and_shape(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_variable(g, "x", LM_I32, LM_SHAPE(2, 3));
    CHECK(lm_op_sum(g, x, 0, NULL, false) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "sum: needs a float32 input, got int32 (2, 3)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_variable(g, "x", LM_F64, LM_SHAPE(4));
    CHECK(lm_op_argmax(g, x, 0) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "argmax: needs a float32 input, got float64 (4,)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_variable(g, "x", LM_I64, LM_SHAPE(4, 2));
    CHECK(lm_op_softmax(g, x, -1) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "softmax: needs a float32 input, got int64 (4, 2)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_variable(g, "x", LM_F32, LM_SHAPE(2, 0, 3));
    CHECK(lm_op_max(g, x, 1, (int[]){1}, false) == NULL);
    CHECK_CONTAINS(lm_graph_error(g),
                   "max: cannot reduce over the zero-sized axis 1 of input (2, 0, 3)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_variable(g, "x", LM_F32, LM_SHAPE(3, 0));
    CHECK(lm_op_argmax(g, x, -1) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "argmax: cannot take argmax over the zero-sized axis 1");
    CHECK_CONTAINS(lm_graph_error(g), "(3, 0)");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_variable(g, "x", LM_F32, LM_SHAPE(4, 3));
    CHECK(lm_op_global_avg_pool(g, x) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "global_avg_pool: input (4, 3) needs at least 3 dimensions");
    lm_graph_free(g);

    g = lm_graph_new(ctx);
    x = lm_variable(g, "x", LM_F32, LM_SHAPE(5));
    CHECK(lm_op_global_max_pool(g, x) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "global_max_pool: input (5,) needs at least 3 dimensions");
    lm_graph_free(g);
}

/* A max over a zero-sized axis known only at run time fails at the run. */
static void bad_runtime_shape(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *ph = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 3), "x");
    lm_node *y = lm_op_max(g, ph, 1, (int[]){0}, false);
    CHECK(y != NULL);
    lm_tensor *x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(0, 3)), *res;
    CHECK_STATUS(run(g, 1, &y, 1, &ph, &x, &res), LM_ERR_SHAPE);
    CHECK_CONTAINS(lm_ctx_error(ctx), "max: cannot reduce over the zero-sized axis 0");
    lm_tensor_free(x);
    lm_graph_free(g);
}

/* ---- values ---- */

static const float m23[6] = {1, 2, 3, 4, 5, 6};

static lm_node *b_sum0(lm_graph *g, lm_node *x) {
    return lm_op_sum(g, x, 1, (int[]){0}, false);
}
static lm_node *b_sum1k(lm_graph *g, lm_node *x) {
    return lm_op_sum(g, x, 1, (int[]){1}, true);
}
static lm_node *b_sum_all(lm_graph *g, lm_node *x) {
    return lm_op_sum(g, x, 0, NULL, false);
}
static lm_node *b_mean0k(lm_graph *g, lm_node *x) {
    return lm_op_mean(g, x, 1, (int[]){-2}, true);
}
static lm_node *b_max1(lm_graph *g, lm_node *x) {
    return lm_op_max(g, x, 1, (int[]){1}, false);
}
static lm_node *b_argmax1(lm_graph *g, lm_node *x) {
    return lm_op_argmax(g, x, 1);
}
static lm_node *b_argmax0(lm_graph *g, lm_node *x) {
    return lm_op_argmax(g, x, 0);
}
static lm_node *b_softmax(lm_graph *g, lm_node *x) {
    return lm_op_softmax(g, x, -1);
}
static lm_node *b_log_softmax(lm_graph *g, lm_node *x) {
    return lm_op_log_softmax(g, x, -1);
}
static lm_node *b_gap(lm_graph *g, lm_node *x) {
    return lm_op_global_avg_pool(g, x);
}
static lm_node *b_gmp(lm_graph *g, lm_node *x) {
    return lm_op_global_max_pool(g, x);
}

static void exact_values(void) {
    lm_tensor *x = from(LM_SHAPE(2, 3), m23), *y;
    y = eval1(x, b_sum0);
    CHECK(y && shape_is(y, LM_SHAPE(3)));
    if (y) CHECK(lm_tensor_get(y, 0) == 5 && lm_tensor_get(y, 1) == 7 && lm_tensor_get(y, 2) == 9);
    lm_tensor_free(y);
    y = eval1(x, b_sum1k);
    CHECK(y && shape_is(y, LM_SHAPE(2, 1)));
    if (y) CHECK(lm_tensor_get(y, 0) == 6 && lm_tensor_get(y, 1) == 15);
    lm_tensor_free(y);
    y = eval1(x, b_sum_all);
    CHECK(y && shape_is(y, LM_SCALAR));
    if (y) CHECK(lm_tensor_get(y, 0) == 21);
    lm_tensor_free(y);
    y = eval1(x, b_mean0k);
    CHECK(y && shape_is(y, LM_SHAPE(1, 3)));
    if (y) CHECK(lm_tensor_get(y, 0) == 2.5 && lm_tensor_get(y, 2) == 4.5);
    lm_tensor_free(y);
    y = eval1(x, b_max1);
    if (y) CHECK(lm_tensor_get(y, 0) == 3 && lm_tensor_get(y, 1) == 6);
    lm_tensor_free(y);
    y = eval1(x, b_argmax0);
    CHECK(y && lm_tensor_dtype(y) == LM_I64 && shape_is(y, LM_SHAPE(3)));
    if (y) CHECK(lm_tensor_get(y, 0) == 1 && lm_tensor_get(y, 2) == 1);
    lm_tensor_free(y);
    lm_tensor_free(x);

    /* Ties give the first index; NaN wins (as jnp.argmax and jnp.max). */
    const float tie[8] = {1, 3, 3, 0, 2, NAN, 7, NAN};
    x = from(LM_SHAPE(2, 4), tie);
    y = eval1(x, b_argmax1);
    if (y) CHECK(lm_tensor_get(y, 0) == 1 && lm_tensor_get(y, 1) == 1);
    lm_tensor_free(y);
    y = eval1(x, b_max1);
    if (y) CHECK(lm_tensor_get(y, 0) == 3 && isnan(lm_tensor_get(y, 1)));
    lm_tensor_free(y);
    lm_tensor_free(x);

    /* softmax of [0, ln 3] is [1/4, 3/4]; huge and -inf logits stay finite. */
    const float sm[6] = {0, logf(3.0f), 1000, 1000, -INFINITY, 0};
    x = from(LM_SHAPE(3, 2), sm);
    y = eval1(x, b_softmax);
    if (y) {
        CHECK_NEAR(lm_tensor_get(y, 0), 0.25, 1e-6);
        CHECK_NEAR(lm_tensor_get(y, 1), 0.75, 1e-6);
        CHECK(lm_tensor_get(y, 2) == 0.5 && lm_tensor_get(y, 3) == 0.5);
        CHECK(lm_tensor_get(y, 4) == 0 && lm_tensor_get(y, 5) == 1);
    }
    lm_tensor_free(y);
    y = eval1(x, b_log_softmax);
    if (y) {
        CHECK_NEAR(lm_tensor_get(y, 0), -log(4.0), 1e-6);
        CHECK_NEAR(lm_tensor_get(y, 2), -log(2.0), 1e-6);
        CHECK(isinf(lm_tensor_get(y, 4)) && lm_tensor_get(y, 5) == 0);
    }
    lm_tensor_free(y);
    lm_tensor_free(x);

    /* Global pools: (1, 2, 2, 2) -> (1, 2). */
    const float pool[8] = {1, -1, 2, -2, 3, -3, 6, -4};
    x = from(LM_SHAPE(1, 2, 2, 2), pool);
    y = eval1(x, b_gap);
    CHECK(y && shape_is(y, LM_SHAPE(1, 2)));
    if (y) CHECK(lm_tensor_get(y, 0) == 3 && lm_tensor_get(y, 1) == -2.5);
    lm_tensor_free(y);
    y = eval1(x, b_gmp);
    if (y) CHECK(lm_tensor_get(y, 0) == 6 && lm_tensor_get(y, 1) == -1);
    lm_tensor_free(y);
    lm_tensor_free(x);
}

/* ---- zero-sized tensors ---- */

static lm_node *b_mean0(lm_graph *g, lm_node *x) {
    return lm_op_mean(g, x, 1, (int[]){0}, false);
}

static void zero_sized(void) {
    lm_tensor *x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(0, 3)), *y;
    y = eval1(x, b_sum0); /* sum over an empty axis: zeros */
    CHECK(y && shape_is(y, LM_SHAPE(3)));
    if (y) CHECK(lm_tensor_get(y, 0) == 0 && lm_tensor_get(y, 2) == 0);
    lm_tensor_free(y);
    y = eval1(x, b_mean0); /* 0 / 0 as jnp.mean */
    if (y) CHECK(isnan(lm_tensor_get(y, 1)));
    lm_tensor_free(y);
    y = eval1(x, b_sum1k);
    CHECK(y && shape_is(y, LM_SHAPE(0, 1)));
    lm_tensor_free(y);
    y = eval1(x, b_max1);
    CHECK(y && shape_is(y, LM_SHAPE(0)));
    lm_tensor_free(y);
    y = eval1(x, b_argmax1);
    CHECK(y && shape_is(y, LM_SHAPE(0)));
    lm_tensor_free(y);
    y = eval1(x, b_softmax);
    CHECK(y && shape_is(y, LM_SHAPE(0, 3)));
    lm_tensor_free(y);
    lm_tensor_free(x);
    x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(0, 2, 2, 4));
    y = eval1(x, b_gmp);
    CHECK(y && shape_is(y, LM_SHAPE(0, 4)));
    lm_tensor_free(y);
    lm_tensor_free(x);

    /* Gradients through empty batches. */
    lm_graph *g = lm_graph_new(ctx);
    lm_node *ph = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 3), "x");
    lm_node *outs[4] = {lm_op_mean(g, ph, 1, (int[]){1}, false), NULL, NULL, NULL};
    lm_node *s =
        lm_op_sum(g, lm_op_max(g, lm_op_softmax(g, ph, 1), 1, (int[]){1}, true), 0, NULL, false);
    CHECK_STATUS(lm_grad(g, s, 1, &ph, outs + 1), LM_OK);
    CHECK_STATUS(lm_grad(g, outs[0], 1, &ph, outs + 2), LM_OK);
    outs[3] = s;
    lm_tensor *res[4];
    x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(0, 3));
    CHECK_STATUS(run(g, 4, outs, 1, &ph, &x, res), LM_OK);
    if (res[1]) CHECK(shape_is(res[1], LM_SHAPE(0, 3)) && shape_is(res[2], LM_SHAPE(0, 3)));
    if (res[3]) CHECK(lm_tensor_get(res[3], 0) == 0);
    for (int k = 0; k < 4; k++) lm_tensor_free(res[k]);
    lm_tensor_free(x);
    lm_graph_free(g);
}

/* ---- kernel paths against naive double sums ---- */

/* Sum, mean and max of a (A, B, C, D) tensor over the axes in mask, naively. */
static double naive(const float *x, const int64_t *d, const bool *mask, int64_t o, int kind) {
    double acc = kind == 2 ? -INFINITY : 0;
    int64_t cnt = 0, idx[4], oi = 0;
    for (int64_t i = 0; i < d[0] * d[1] * d[2] * d[3]; i++) {
        int64_t r = i, off = 0;
        for (int k = 3; k >= 0; k--) {
            idx[k] = r % d[k];
            r /= d[k];
        }
        for (int k = 0; k < 4; k++)
            if (!mask[k]) off = off * d[k] + idx[k];
        if (off != o) continue;
        oi++;
        cnt++;
        acc = kind == 2 ? fmax(acc, x[i]) : acc + x[i];
    }
    (void)oi;
    return kind == 1 ? acc / (double)cnt : acc;
}

static void kernel_paths(void) {
    const int64_t d[4] = {3, 5, 4, 7};
    lm_shape s = LM_SHAPE(3, 5, 4, 7);
    lm_tensor *x = lm_tensor_new(ctx, LM_F32, s);
    lm_ctx_seed(ctx, 7);
    lm_tensor_random_uniform(x, -1, 3);
    const float *xp = lm_tensor_f32(x);
    /* Patterns: last, leading, middle, two groups, three groups, all. */
    static const int pats[][5] = {{1, 3}, {1, 0}, {2, 1, 2}, {2, 0, 2}, {3, 0, 2, 3}, {0}};
    for (size_t p = 0; p < sizeof pats / sizeof *pats; p++) {
        int na = pats[p][0];
        bool mask[4] = {na == 0, na == 0, na == 0, na == 0};
        for (int i = 0; i < na; i++) mask[pats[p][1 + i]] = true;
        for (int kind = 0; kind < 3; kind++) {
            lm_graph *g = lm_graph_new(ctx);
            lm_node *ph = lm_placeholder(g, LM_F32, s, "x");
            lm_node *y = kind == 0   ? lm_op_sum(g, ph, na, pats[p] + 1, false)
                         : kind == 1 ? lm_op_mean(g, ph, na, pats[p] + 1, false)
                                     : lm_op_max(g, ph, na, pats[p] + 1, false);
            lm_tensor *res;
            CHECK_STATUS(run(g, 1, &y, 1, &ph, &x, &res), LM_OK);
            double worst = 0;
            for (int64_t o = 0; res && o < lm_tensor_numel(res); o++) {
                double want = naive(xp, d, mask, o, kind);
                double e = fabs(lm_tensor_get(res, o) - want) / fmax(1, fabs(want));
                if (e > worst) worst = e;
            }
            CHECK_MSG(worst < 1e-6, "pattern %zu kind %d: error %g", p, kind, worst);
            lm_tensor_free(res);
            lm_graph_free(g);
        }
    }
    lm_tensor_free(x);
}

/* Long rows and columns take the threaded chunk and tile paths. */
static void long_reductions(void) {
    int nt = lm_ctx_threads(ctx);
    lm_ctx_set_threads(ctx, 4);
    lm_tensor *x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(2, 300000));
    lm_ctx_seed(ctx, 3);
    lm_tensor_random_uniform(x, 0, 2);
    const float *xp = lm_tensor_f32(x);
    double want[2] = {0, 0}, mx[2] = {-1, -1};
    for (int r = 0; r < 2; r++)
        for (int64_t i = 0; i < 300000; i++) {
            want[r] += xp[r * 300000 + i];
            mx[r] = fmax(mx[r], xp[r * 300000 + i]);
        }
    lm_tensor *y = eval1(x, b_max1);
    if (y) CHECK(lm_tensor_get(y, 0) == mx[0] && lm_tensor_get(y, 1) == mx[1]);
    lm_tensor_free(y);
    lm_graph *g = lm_graph_new(ctx);
    lm_node *ph = lm_placeholder(g, LM_F32, LM_SHAPE(2, 300000), "x");
    lm_node *outs[1] = {lm_op_sum(g, ph, 1, (int[]){1}, false)};
    lm_tensor *res;
    CHECK_STATUS(run(g, 1, outs, 1, &ph, &x, &res), LM_OK);
    if (res) {
        CHECK_NEAR(lm_tensor_get(res, 0) / want[0], 1, 1e-6);
        CHECK_NEAR(lm_tensor_get(res, 1) / want[1], 1, 1e-6);
    }
    lm_tensor_free(res);
    lm_graph_free(g);
    /* Columns: (300000, 2) summed over axis 0. */
    lm_tensor *xt = lm_tensor_reshape(x, LM_SHAPE(300000, 2));
    double cw[2] = {0, 0};
    for (int64_t i = 0; i < 600000; i++) cw[i % 2] += xp[i];
    y = eval1(xt, b_sum0);
    if (y) {
        CHECK_NEAR(lm_tensor_get(y, 0) / cw[0], 1, 1e-6);
        CHECK_NEAR(lm_tensor_get(y, 1) / cw[1], 1, 1e-6);
    }
    lm_tensor_free(y);
    lm_tensor_free(xt);
    lm_tensor_free(x);
    lm_ctx_set_threads(ctx, nt);
}

/* max's gradient is split among ties, as jax.grad of jnp.max. */
static void max_grad_ties(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *ph = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 4), "x");
    lm_node *y = lm_op_sum(g, lm_op_max(g, ph, 1, (int[]){1}, false), 0, NULL, false), *gx;
    CHECK_STATUS(lm_grad(g, y, 1, &ph, &gx), LM_OK);
    const float v[8] = {1, 3, 3, 0, 2, 2, 2, 2};
    lm_tensor *x = from(LM_SHAPE(2, 4), v), *res;
    CHECK_STATUS(run(g, 1, &gx, 1, &ph, &x, &res), LM_OK);
    if (res) {
        CHECK(lm_tensor_get(res, 0) == 0 && lm_tensor_get(res, 1) == 0.5);
        CHECK(lm_tensor_get(res, 2) == 0.5 && lm_tensor_get(res, 4) == 0.25);
    }
    lm_tensor_free(res);
    lm_tensor_free(x);
    lm_graph_free(g);
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(bad_axes);
    RUN(bad_dtype_and_shape);
    RUN(bad_runtime_shape);
    RUN(exact_values);
    RUN(zero_sized);
    RUN(kernel_paths);
    RUN(long_reductions);
    RUN(max_grad_ties);
    lm_ctx_free(ctx);
    return lmt_summary("ops_reduce");
}
