/* Parity of the shape and indexing ops with Keras 3 (references from
 * tests/keras/ref_shape.py): forward outputs within 1e-5 and gradients of
 * sum(y * R) within 1e-4, relative. Some cases feed placeholders with an
 * unknown batch so the run-time shape paths of the backward ops are used. */
#include "lmtest.h"
#include "refs.h"
#include <lamina/lamina.h>

#define FWD_TOL  1e-5
#define GRAD_TOL 1e-4

static lm_ctx *ctx;

static lm_tensor *ld(const char *cas, const char *name) {
    return ref_load(ctx, "shape", cas, name);
}

/* A placeholder shaped like t; the batch axis is left unknown when asked. */
static lm_node *ph_like(lm_graph *g, const lm_tensor *t, bool unknown_batch) {
    lm_shape s = lm_tensor_shape(t);
    if (unknown_batch && s.ndim > 0) s.dims[0] = -1;
    return lm_placeholder(g, lm_tensor_dtype(t), s, NULL);
}

/* Feeds val[i] to ph[i], runs y and the gradients of sum(y * R) with respect
 * to wrt, and compares them with <case>.y and <case>.<gname[k]>. */
static void compare(const char *cas, lm_graph *g, int nph, lm_node **ph, lm_tensor **val,
                    lm_node *y, int nw, lm_node **wrt, const char *const *gname) {
    lm_node *outs[9] = {y};
    lm_tensor *r = NULL, *want = NULL;
    lm_session *s = NULL;
    lm_node *rn = NULL;
    CHECK_MSG(y != NULL, "%s: build failed: %s", cas, lm_graph_error(g));
    if (!y) goto done;
    if (nw) {
        r = ld(cas, "r");
        CHECK(r != NULL);
        if (!r) goto done;
        /* R is fed like the inputs: y's batch may be unknown until run time. */
        rn = lm_placeholder(g, LM_F32, lm_node_shape(y), "R");
        CHECK_STATUS(lm_gradients(g, y, rn, nw, wrt, outs + 1), LM_OK);
    }
    s = lm_session_new(g, nw + 1, outs);
    CHECK_MSG(s != NULL, "%s: session: %s", cas, lm_ctx_error(ctx));
    if (!s) goto done;
    for (int i = 0; i < nph; i++) CHECK_STATUS(lm_session_feed(s, ph[i], val[i]), LM_OK);
    if (rn) CHECK_STATUS(lm_session_feed(s, rn, r), LM_OK);
    lm_status st = lm_session_run(s);
    CHECK_MSG(st == LM_OK, "%s: run: %s", cas, lm_ctx_error(ctx));
    if (st) goto done;
    for (int k = 0; k <= nw; k++) {
        want = ld(cas, k ? gname[k - 1] : "y");
        double e = ref_max_rel_err(lm_session_output(s, k), want);
        CHECK_MSG(e <= (k ? GRAD_TOL : FWD_TOL), "%s.%s: max rel err %g", cas,
                  k ? gname[k - 1] : "y", e);
        lm_tensor_free(want);
    }
done:
    lm_session_free(s);
    lm_tensor_free(r);
}

static void free_all(int n, lm_tensor **t) {
    for (int i = 0; i < n; i++) lm_tensor_free(t[i]);
}

static void transpose_case(const char *cas) {
    lm_graph *g = lm_graph_new(ctx);
    lm_tensor *x = ld(cas, "x"), *pt = ld(cas, "perm");
    if (x && pt) {
        int perm[LM_MAX_DIMS];
        for (int i = 0; i < lm_tensor_numel(pt); i++) perm[i] = (int)lm_tensor_get(pt, i);
        lm_node *p = ph_like(g, x, false);
        const char *gn[] = {"gx"};
        compare(cas, g, 1, &p, &x, lm_op_transpose(g, p, perm), 1, &p, gn);
    } else {
        CHECK(x && pt);
    }
    lm_tensor_free(x);
    lm_tensor_free(pt);
    lm_graph_free(g);
}

static void concat_case(const char *cas, int n, int axis, bool unknown_batch) {
    lm_graph *g = lm_graph_new(ctx);
    lm_tensor *x[8] = {NULL};
    lm_node *p[8];
    char nm[8][8];
    const char *gn[8];
    bool ok = true;
    for (int i = 0; i < n; i++) {
        snprintf(nm[i], sizeof nm[i], "x%d", i);
        x[i] = ld(cas, nm[i]);
        ok = ok && x[i];
        if (x[i]) p[i] = ph_like(g, x[i], unknown_batch);
        snprintf(nm[i], sizeof nm[i], "gx%d", i);
        gn[i] = nm[i];
    }
    CHECK(ok);
    if (ok) compare(cas, g, n, p, x, lm_op_concat(g, n, p, axis), n, p, gn);
    free_all(n, x);
    lm_graph_free(g);
}

static void slice_case(const char *cas) {
    lm_graph *g = lm_graph_new(ctx);
    lm_tensor *x = ld(cas, "x"), *bt = ld(cas, "begin"), *st = ld(cas, "size");
    if (x && bt && st) {
        int64_t b[LM_MAX_DIMS], z[LM_MAX_DIMS];
        for (int i = 0; i < lm_tensor_numel(bt); i++) {
            b[i] = (int64_t)lm_tensor_get(bt, i);
            z[i] = (int64_t)lm_tensor_get(st, i);
        }
        /* A size reaching the end is also given as -1 ("to the end"). */
        int last = lm_tensor_ndim(x) - 1;
        if (b[last] + z[last] == lm_tensor_dim(x, last)) z[last] = -1;
        lm_node *p = ph_like(g, x, false);
        const char *gn[] = {"gx"};
        compare(cas, g, 1, &p, &x, lm_op_slice(g, p, b, z), 1, &p, gn);
    } else {
        CHECK(x && bt && st);
    }
    lm_tensor_free(x);
    lm_tensor_free(bt);
    lm_tensor_free(st);
    lm_graph_free(g);
}

static void pad_case(const char *cas, bool unknown_batch) {
    lm_graph *g = lm_graph_new(ctx);
    lm_tensor *x = ld(cas, "x"), *wt = ld(cas, "widths"), *vt = ld(cas, "value");
    if (x && wt && vt) {
        int64_t before[LM_MAX_DIMS], after[LM_MAX_DIMS];
        for (int i = 0; i < lm_tensor_ndim(x); i++) {
            before[i] = (int64_t)lm_tensor_get(wt, 2 * i);
            after[i] = (int64_t)lm_tensor_get(wt, 2 * i + 1);
        }
        lm_node *p = ph_like(g, x, unknown_batch);
        const char *gn[] = {"gx"};
        lm_node *y = lm_op_pad(g, p, before, after, (float)lm_tensor_get(vt, 0));
        compare(cas, g, 1, &p, &x, y, 1, &p, gn);
    } else {
        CHECK(x && wt && vt);
    }
    lm_tensor_free(x);
    lm_tensor_free(wt);
    lm_tensor_free(vt);
    lm_graph_free(g);
}

/* gather(params, idx), as keras.ops.take(axis=0) or the Embedding layer. */
static void take_case(const char *cas, const char *pname, const char *gname, bool unknown_batch) {
    lm_graph *g = lm_graph_new(ctx);
    lm_tensor *t[2] = {ld(cas, pname), ld(cas, "idx")};
    if (t[0] && t[1]) {
        lm_node *p[2] = {ph_like(g, t[0], false), ph_like(g, t[1], unknown_batch)};
        const char *gn[] = {gname};
        compare(cas, g, 2, p, t, lm_op_gather(g, p[0], p[1]), 1, p, gn);
    } else {
        CHECK(t[0] && t[1]);
    }
    free_all(2, t);
    lm_graph_free(g);
}

static void parity_transpose(void) {
    transpose_case("transpose_2d");
    transpose_case("transpose_nhwc_nchw");
    transpose_case("transpose_generic");
    transpose_case("transpose_last2");
}

static void parity_concat(void) {
    concat_case("concat_last", 3, -1, true);
    concat_case("concat_first", 2, 0, false);
    concat_case("concat_first", 2, 0, true); /* joined along the unknown axis */
    concat_case("concat_middle", 3, 1, true);
}

static void parity_slice(void) {
    slice_case("slice_3d");
    slice_case("slice_2d");
}

static void parity_pad(void) {
    pad_case("pad_3d", true);
    pad_case("pad_2d_zero", false);
}

static void parity_take(void) {
    take_case("take_int32", "params", "gparams", false);
    take_case("take_int64", "params", "gparams", true);
}

static void parity_embedding(void) {
    take_case("embedding", "w", "gw", true);
}

static void parity_one_hot(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_tensor *idx = ld("one_hot", "idx"), *dt = ld("one_hot", "depth");
    if (idx && dt) {
        lm_node *p = ph_like(g, idx, true);
        compare("one_hot", g, 1, &p, &idx, lm_op_one_hot(g, p, (int)lm_tensor_get(dt, 0)), 0, NULL,
                NULL);
    } else {
        CHECK(idx && dt);
    }
    lm_tensor_free(idx);
    lm_tensor_free(dt);
    lm_graph_free(g);
}

static void parity_repeat_vector(void) {
    lm_graph *g = lm_graph_new(ctx);
    lm_tensor *x = ld("repeat_vector", "x"), *nt = ld("repeat_vector", "n");
    if (x && nt) {
        lm_node *p = ph_like(g, x, true);
        const char *gn[] = {"gx"};
        compare("repeat_vector", g, 1, &p, &x, lm_op_repeat(g, p, (int)lm_tensor_get(nt, 0)), 1, &p,
                gn);
    } else {
        CHECK(x && nt);
    }
    lm_tensor_free(x);
    lm_tensor_free(nt);
    lm_graph_free(g);
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(parity_transpose);
    RUN(parity_concat);
    RUN(parity_slice);
    RUN(parity_pad);
    RUN(parity_take);
    RUN(parity_embedding);
    RUN(parity_one_hot);
    RUN(parity_repeat_vector);
    lm_ctx_free(ctx);
    return lmt_summary("parity_shape");
}
