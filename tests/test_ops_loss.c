/* Losses: shape, dtype and argument errors (with their messages), class
 * indices out of range at run time, zero-sized batches and classes, exact
 * values of each loss (clipping, stable logits, NaN), and the Keras rank
 * rules for y_true and y_pred. */
#include "lmtest.h"
#include <lamina/lamina.h>
#include <math.h>
#include <stdint.h>

static lm_ctx *ctx;

enum { MSE, MAE, HUBER, BCE, BCE_L, CCE, CCE_L, SCCE, SCCE_L };

static lm_node *loss(lm_graph *g, int kind, lm_node *t, lm_node *p) {
    switch (kind) {
    case MSE:
        return lm_op_mse(g, t, p);
    case MAE:
        return lm_op_mae(g, t, p);
    case HUBER:
        return lm_op_huber(g, t, p, 1.0f);
    case BCE:
        return lm_op_binary_crossentropy(g, t, p, false);
    case BCE_L:
        return lm_op_binary_crossentropy(g, t, p, true);
    case CCE:
        return lm_op_categorical_crossentropy(g, t, p, false);
    case CCE_L:
        return lm_op_categorical_crossentropy(g, t, p, true);
    case SCCE:
        return lm_op_sparse_categorical_crossentropy(g, t, p, false);
    default:
        return lm_op_sparse_categorical_crossentropy(g, t, p, true);
    }
}

/* Builds loss(kind) on placeholders shaped like t and p, runs it (and, when
 * gp is not NULL, the gradient for y_pred). Returns the run's status. */
static lm_status eval(int kind, lm_tensor *t, lm_tensor *p, lm_tensor **y, lm_tensor **gp) {
    lm_graph *g = lm_graph_new(ctx);
    lm_shape ts = lm_tensor_shape(t), ps = lm_tensor_shape(p);
    if (ts.ndim) ts.dims[0] = -1;
    if (ps.ndim) ps.dims[0] = -1;
    lm_node *tn = lm_placeholder(g, lm_tensor_dtype(t), ts, "y_true");
    lm_node *pn = lm_placeholder(g, LM_F32, ps, "y_pred");
    lm_node *outs[2] = {loss(g, kind, tn, pn), NULL};
    lm_status st = LM_ERR_SHAPE;
    *y = NULL;
    if (gp) *gp = NULL;
    if (!outs[0]) {
        fprintf(stderr, "build: %s\n", lm_graph_error(g));
        goto done;
    }
    if (gp && (st = lm_grad(g, outs[0], 1, &pn, outs + 1)) != LM_OK) goto done;
    lm_session *s = lm_session_new(g, gp ? 2 : 1, outs);
    lm_session_feed(s, tn, t);
    lm_session_feed(s, pn, p);
    st = lm_session_run(s);
    if (st == LM_OK) {
        *y = lm_tensor_clone(lm_session_output(s, 0));
        if (gp) *gp = lm_tensor_clone(lm_session_output(s, 1));
    }
    lm_session_free(s);
done:
    lm_graph_free(g);
    return st;
}

static lm_tensor *from(lm_shape s, const float *v) {
    return lm_tensor_from_data(ctx, LM_F32, s, v, (size_t)lm_shape_numel(s) * sizeof(float));
}

static bool shape_is(const lm_tensor *t, lm_shape s) {
    lm_shape a = lm_tensor_shape(t);
    if (a.ndim != s.ndim) return false;
    for (int i = 0; i < s.ndim; i++)
        if (a.dims[i] != s.dims[i]) return false;
    return true;
}

/* Expects loss(kind) on variables of the given shapes and dtypes to fail
 * with a message containing each of want[]. */
static void expect_fail(int kind, lm_dtype tdt, lm_shape ts, lm_dtype pdt, lm_shape ps, int nwant,
                        const char *const *want) {
    lm_graph *g = lm_graph_new(ctx);
    lm_node *t = lm_placeholder(g, tdt, ts, "t"), *p = lm_placeholder(g, pdt, ps, "p");
    CHECK(loss(g, kind, t, p) == NULL);
    for (int i = 0; i < nwant; i++) CHECK_CONTAINS(lm_graph_error(g), want[i]);
    lm_graph_free(g);
}

#define FAIL_WITH(kind, tdt, ts, pdt, ps, ...)                                                     \
    expect_fail(kind, tdt, ts, pdt, ps,                                                            \
                (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *)),                     \
                (const char *[]){__VA_ARGS__})

/* ---- errors at build time ---- */

static void bad_shapes(void) {
    FAIL_WITH(CCE, LM_F32, LM_SHAPE(32, 10), LM_F32, LM_SHAPE(32, 5),
              "categorical_crossentropy: y_true (32, 10) and y_pred (32, 5) do not match");
    FAIL_WITH(MSE, LM_F32, LM_SHAPE(4, 3), LM_F32, LM_SHAPE(4),
              "mse: y_true (4, 3) and y_pred (4,)");
    FAIL_WITH(MAE, LM_F32, LM_SHAPE(-1, 3), LM_F32, LM_SHAPE(-1, 4),
              "mae: y_true (None, 3) and y_pred (None, 4) do not match");
    FAIL_WITH(HUBER, LM_F32, LM_SHAPE(8, 2, 1), LM_F32, LM_SHAPE(8, 3),
              "huber: y_true (8, 2, 1) and y_pred (8, 3) do not match");
    FAIL_WITH(BCE, LM_F32, LM_SHAPE(5, 1), LM_F32, LM_SHAPE(5, 2),
              "binary_crossentropy: y_true (5, 1) and y_pred (5, 2) do not match");
    FAIL_WITH(MSE, LM_F32, LM_SCALAR, LM_F32, LM_SCALAR, "mse: y_true () and y_pred ()",
              "at least 1 dimension");
    /* Sparse labels of the wrong shape (one-hot rows, or a wrong batch). */
    FAIL_WITH(SCCE, LM_I32, LM_SHAPE(32, 10), LM_F32, LM_SHAPE(32, 10),
              "sparse_categorical_crossentropy: y_true (32, 10) and y_pred (32, 10) do not match",
              "class indices need shape (32,) or (32, 1)");
    FAIL_WITH(SCCE_L, LM_I64, LM_SHAPE(16), LM_F32, LM_SHAPE(32, 10),
              "sparse_categorical_crossentropy: y_true (16,) and y_pred (32, 10)");
    FAIL_WITH(SCCE, LM_I32, LM_SHAPE(4, 3, 2), LM_F32, LM_SHAPE(4, 3, 5), "(4, 3, 2)", "(4, 3, 5)",
              "(4, 3) or (4, 3, 1)");
    FAIL_WITH(SCCE, LM_I32, LM_SCALAR, LM_F32, LM_SCALAR,
              "sparse_categorical_crossentropy: y_pred () needs a class axis");
}

static void bad_dtypes_and_args(void) {
    FAIL_WITH(BCE, LM_I32, LM_SHAPE(4, 1), LM_F32, LM_SHAPE(4, 1),
              "binary_crossentropy: needs float32 y_true and y_pred, got int32 (4, 1) and "
              "float32 (4, 1)",
              "cast y_true");
    FAIL_WITH(MSE, LM_F32, LM_SHAPE(4, 2), LM_F64, LM_SHAPE(4, 2), "mse: needs float32", "float64");
    FAIL_WITH(SCCE, LM_I32, LM_SHAPE(4), LM_I32, LM_SHAPE(4, 3),
              "sparse_categorical_crossentropy: needs a float32 y_pred, got int32 (4, 3)");
    lm_graph *g = lm_graph_new(ctx);
    lm_node *t = lm_placeholder(g, LM_F32, LM_SHAPE(2, 3), "t"),
            *p = lm_placeholder(g, LM_F32, LM_SHAPE(2, 3), "p");
    CHECK(lm_op_huber(g, t, p, 0.0f) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "huber: delta must be positive, got 0");
    /* Sticky. */
    CHECK(lm_op_mse(g, NULL, p) == NULL);
    CHECK_CONTAINS(lm_graph_error(g), "huber: delta");
    lm_graph_free(g);
}

/* ---- class indices checked at run time ---- */

static void bad_labels(void) {
    const float p[6] = {0.2f, 0.3f, 0.5f, 0.1f, 0.1f, 0.8f};
    lm_tensor *pt = from(LM_SHAPE(2, 3), p), *y, *gp;
    const int32_t l1[2] = {1, 3};
    lm_tensor *t = lm_tensor_from_data(ctx, LM_I32, LM_SHAPE(2), l1, sizeof l1);
    CHECK_STATUS(eval(SCCE_L, t, pt, &y, NULL), LM_ERR_ARG);
    CHECK_CONTAINS(lm_ctx_error(ctx), "sparse_categorical_crossentropy");
    CHECK_CONTAINS(lm_ctx_error(ctx), "class index 3 of sample 1 is out of range [0, 3)");
    CHECK_CONTAINS(lm_ctx_error(ctx), "(2, 3)");
    lm_tensor_free(t);
    const int64_t l2[2] = {-1, 0};
    t = lm_tensor_from_data(ctx, LM_I64, LM_SHAPE(2, 1), l2, sizeof l2);
    CHECK_STATUS(eval(SCCE, t, pt, &y, &gp), LM_ERR_ARG);
    CHECK_CONTAINS(lm_ctx_error(ctx), "class index -1 of sample 0");
    lm_tensor_free(t);
    const float l3[2] = {0, NAN};
    t = from(LM_SHAPE(2), l3);
    CHECK_STATUS(eval(SCCE, t, pt, &y, NULL), LM_ERR_ARG);
    CHECK_CONTAINS(lm_ctx_error(ctx), "class index of sample 1 is NaN");
    lm_tensor_free(t);
    /* Float indices truncate as Keras's cast: 2.7 is class 2, -0.5 is class 0. */
    const float l4[2] = {2.7f, -0.5f};
    t = from(LM_SHAPE(2), l4);
    CHECK_STATUS(eval(SCCE, t, pt, &y, NULL), LM_OK);
    if (y) {
        CHECK_NEAR(lm_tensor_get(y, 0), -log(0.5), 1e-6);
        CHECK_NEAR(lm_tensor_get(y, 1), -log(0.1), 1e-6);
    }
    lm_tensor_free(y);
    lm_tensor_free(t);
    const uint8_t l5[2] = {0, 2};
    t = lm_tensor_from_data(ctx, LM_U8, LM_SHAPE(2), l5, sizeof l5);
    CHECK_STATUS(eval(SCCE_L, t, pt, &y, NULL), LM_OK);
    lm_tensor_free(y);
    lm_tensor_free(t);
    lm_tensor_free(pt);
}

/* ---- values ---- */

static void exact_values(void) {
    const float t22[4] = {1, 2, 3, 4}, ones[4] = {1, 1, 1, 1};
    lm_tensor *t = from(LM_SHAPE(2, 2), t22), *p = from(LM_SHAPE(2, 2), ones), *y, *gp;
    CHECK_STATUS(eval(MSE, t, p, &y, &gp), LM_OK);
    if (y) CHECK(lm_tensor_get(y, 0) == 0.5 && lm_tensor_get(y, 1) == 6.5);
    /* d/dp of mean((t - p)^2) = 2 (p - t) / 2 */
    if (gp) CHECK(lm_tensor_get(gp, 1) == -1 && lm_tensor_get(gp, 3) == -3);
    lm_tensor_free(y);
    lm_tensor_free(gp);
    CHECK_STATUS(eval(MAE, t, p, &y, &gp), LM_OK);
    if (y) CHECK(lm_tensor_get(y, 0) == 0.5 && lm_tensor_get(y, 1) == 2.5);
    if (gp) CHECK(lm_tensor_get(gp, 0) == 0 && lm_tensor_get(gp, 1) == -0.5); /* sign(0) = 0 */
    lm_tensor_free(y);
    lm_tensor_free(gp);
    lm_tensor_free(t);
    lm_tensor_free(p);

    /* huber, delta 1: errors 0.5 and 2 give 0.125 and 1.5. */
    const float ht[2] = {0, 0}, hp[2] = {0.5f, -2};
    t = from(LM_SHAPE(1, 2), ht);
    p = from(LM_SHAPE(1, 2), hp);
    CHECK_STATUS(eval(HUBER, t, p, &y, &gp), LM_OK);
    if (y) CHECK(lm_tensor_get(y, 0) == 0.8125);
    if (gp) CHECK(lm_tensor_get(gp, 0) == 0.25 && lm_tensor_get(gp, 1) == -0.5);
    lm_tensor_free(y);
    lm_tensor_free(gp);
    lm_tensor_free(t);
    lm_tensor_free(p);

    /* bce: p = 0.5 and logit 0 give ln 2; p = 0 with t = 1 is clipped to 1e-7;
     * a huge logit stays finite; NaN stays NaN. */
    const float bt[4] = {1, 1, 0, 1}, bp[4] = {0.5f, 0, 0.5f, NAN};
    t = from(LM_SHAPE(4, 1), bt);
    p = from(LM_SHAPE(4, 1), bp);
    CHECK_STATUS(eval(BCE, t, p, &y, &gp), LM_OK);
    if (y) {
        CHECK_NEAR(lm_tensor_get(y, 0), log(2.0), 1e-6);
        CHECK_NEAR(lm_tensor_get(y, 1), -log((double)1e-7f), 1e-6);
        CHECK(isnan(lm_tensor_get(y, 3)));
    }
    if (gp) CHECK(lm_tensor_get(gp, 1) == 0); /* clipped: no gradient */
    lm_tensor_free(y);
    lm_tensor_free(gp);
    lm_tensor_free(p);
    const float bl[4] = {0, -100, 100, 0};
    p = from(LM_SHAPE(4, 1), bl);
    CHECK_STATUS(eval(BCE_L, t, p, &y, &gp), LM_OK);
    if (y) {
        CHECK_NEAR(lm_tensor_get(y, 0), log(2.0), 1e-6);
        CHECK_NEAR(lm_tensor_get(y, 1), 100, 1e-6);
        CHECK_NEAR(lm_tensor_get(y, 2), 100, 1e-6);
    }
    if (gp) CHECK_NEAR(lm_tensor_get(gp, 0), -0.5, 1e-6); /* sigmoid(0) - 1 */
    lm_tensor_free(y);
    lm_tensor_free(gp);
    lm_tensor_free(t);
    lm_tensor_free(p);

    /* cce divides by the row sum: [1, 1, 2] with t = e2 gives ln 2; logits
     * [0, 0] give ln 2 and [1000, 0] with t = e1 gives 1000. */
    const float ct[3] = {0, 0, 1}, cp[3] = {1, 1, 2};
    t = from(LM_SHAPE(1, 3), ct);
    p = from(LM_SHAPE(1, 3), cp);
    CHECK_STATUS(eval(CCE, t, p, &y, NULL), LM_OK);
    if (y) CHECK_NEAR(lm_tensor_get(y, 0), log(2.0), 1e-6);
    lm_tensor_free(y);
    lm_tensor_free(t);
    lm_tensor_free(p);
    const float lt[4] = {1, 0, 0, 1}, lp[4] = {0, 0, 1000, 0};
    t = from(LM_SHAPE(2, 2), lt);
    p = from(LM_SHAPE(2, 2), lp);
    CHECK_STATUS(eval(CCE_L, t, p, &y, &gp), LM_OK);
    if (y) {
        CHECK_NEAR(lm_tensor_get(y, 0), log(2.0), 1e-6);
        CHECK_NEAR(lm_tensor_get(y, 1), 1000, 1e-6);
    }
    if (gp) CHECK_NEAR(lm_tensor_get(gp, 0), -0.5, 1e-6); /* softmax - t */
    lm_tensor_free(y);
    lm_tensor_free(gp);
    lm_tensor_free(t);

    /* sparse, with the trailing-1 label shape. */
    const int32_t sl[2] = {0, 1};
    t = lm_tensor_from_data(ctx, LM_I32, LM_SHAPE(2, 1), sl, sizeof sl);
    CHECK_STATUS(eval(SCCE_L, t, p, &y, &gp), LM_OK);
    if (y) {
        CHECK_NEAR(lm_tensor_get(y, 0), log(2.0), 1e-6);
        CHECK_NEAR(lm_tensor_get(y, 1), 1000, 1e-6);
    }
    if (gp) CHECK_NEAR(lm_tensor_get(gp, 3), -1, 1e-6);
    lm_tensor_free(y);
    lm_tensor_free(gp);
    lm_tensor_free(t);
    lm_tensor_free(p);
}

/* Keras's squeeze_or_expand_to_same_rank decides which axis is averaged. */
static void rank_rules(void) {
    const float v[6] = {1, 2, 3, 4, 5, 6}, z[6] = {0};
    lm_tensor *t = from(LM_SHAPE(6), v), *p = from(LM_SHAPE(6, 1), z), *y, *gp;
    CHECK_STATUS(eval(MSE, t, p, &y, &gp), LM_OK); /* (6,) with (6, 1): per sample */
    if (y) CHECK(shape_is(y, LM_SHAPE(6)) && lm_tensor_get(y, 5) == 36);
    if (gp) CHECK(shape_is(gp, LM_SHAPE(6, 1)) && lm_tensor_get(gp, 1) == -4);
    lm_tensor_free(y);
    lm_tensor_free(gp);
    lm_tensor_free(t);
    lm_tensor_free(p);
    t = from(LM_SHAPE(2, 3), v);
    p = from(LM_SHAPE(2, 3, 1), z);
    CHECK_STATUS(eval(MAE, t, p, &y, &gp), LM_OK); /* (2, 3) with (2, 3, 1): over axis 1 */
    if (y) CHECK(shape_is(y, LM_SHAPE(2)) && lm_tensor_get(y, 0) == 2 && lm_tensor_get(y, 1) == 5);
    if (gp) CHECK(shape_is(gp, LM_SHAPE(2, 3, 1)));
    lm_tensor_free(y);
    lm_tensor_free(gp);
    lm_tensor_free(t);
    lm_tensor_free(p);
}

/* ---- zero-sized ---- */

static void zero_sized(void) {
    static const int kinds[] = {MSE, MAE, HUBER, BCE, BCE_L, CCE, CCE_L};
    lm_tensor *t = lm_tensor_new(ctx, LM_F32, LM_SHAPE(0, 4)),
              *p = lm_tensor_new(ctx, LM_F32, LM_SHAPE(0, 4));
    lm_tensor *y, *gp;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        CHECK_STATUS(eval(kinds[k], t, p, &y, &gp), LM_OK);
        CHECK(y && shape_is(y, LM_SHAPE(0)) && gp && shape_is(gp, LM_SHAPE(0, 4)));
        lm_tensor_free(y);
        lm_tensor_free(gp);
    }
    lm_tensor_free(t);
    t = lm_tensor_new(ctx, LM_I32, LM_SHAPE(0));
    CHECK_STATUS(eval(SCCE_L, t, p, &y, &gp), LM_OK);
    CHECK(y && shape_is(y, LM_SHAPE(0)));
    lm_tensor_free(y);
    lm_tensor_free(gp);
    lm_tensor_free(t);
    lm_tensor_free(p);
    /* No classes: means over nothing are NaN, sums are 0, any index is out of range. */
    t = lm_tensor_new(ctx, LM_F32, LM_SHAPE(2, 0));
    p = lm_tensor_new(ctx, LM_F32, LM_SHAPE(2, 0));
    CHECK_STATUS(eval(MSE, t, p, &y, &gp), LM_OK);
    if (y) CHECK(shape_is(y, LM_SHAPE(2)) && isnan(lm_tensor_get(y, 0)));
    lm_tensor_free(y);
    lm_tensor_free(gp);
    CHECK_STATUS(eval(CCE_L, t, p, &y, &gp), LM_OK);
    if (y) CHECK(lm_tensor_get(y, 1) == 0);
    lm_tensor_free(y);
    lm_tensor_free(gp);
    lm_tensor_free(t);
    t = lm_tensor_new(ctx, LM_I32, LM_SHAPE(2));
    CHECK_STATUS(eval(SCCE, t, p, &y, NULL), LM_ERR_ARG);
    CHECK_CONTAINS(lm_ctx_error(ctx), "out of range [0, 0)");
    lm_tensor_free(t);
    lm_tensor_free(p);
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(bad_shapes);
    RUN(bad_dtypes_and_args);
    RUN(bad_labels);
    RUN(exact_values);
    RUN(rank_rules);
    RUN(zero_sized);
    lm_ctx_free(ctx);
    return lmt_summary("ops_loss");
}
