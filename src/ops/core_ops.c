/* Sources (placeholder, variable, constant) and plumbing ops: cast,
 * fill_like, sum_to_like (the reduction that undoes broadcasting) and reshape. */
#include "graph/graph_impl.h"
#include <string.h>

static lm_status infer_source(lm_infer *s) {
    (void)s; /* sources get their shape when created */
    return LM_OK;
}

const lm_op_def lm_opdef_placeholder = {
    .name = "placeholder", .flags = LM_OPF_SOURCE, .infer = infer_source};
const lm_op_def lm_opdef_variable = {
    .name = "variable", .flags = LM_OPF_SOURCE, .infer = infer_source};
const lm_op_def lm_opdef_constant = {
    .name = "constant", .flags = LM_OPF_SOURCE, .infer = infer_source};

/* ---- cast ---- */

static lm_status infer_cast(lm_infer *s) {
    if (!lm_dtype_size(s->p->dt)) return lm_infer_fail(s, LM_ERR_DTYPE, "invalid target dtype");
    s->out = s->in[0];
    s->out_dt = s->p->dt;
    return LM_OK;
}

static double tv_get(const lm_tv *t, int64_t i) {
    switch (t->dt) {
    case LM_F32:
        return ((const float *)t->p)[i];
    case LM_F64:
        return ((const double *)t->p)[i];
    case LM_I32:
        return ((const int32_t *)t->p)[i];
    case LM_I64:
        return (double)((const int64_t *)t->p)[i];
    case LM_U8:
        return ((const uint8_t *)t->p)[i];
    default:
        return 0;
    }
}

static lm_status k_cast(lm_kcall *c) {
    const lm_tv *x = &c->in[0];
    lm_tv *y = &c->out;
    if (x->dt == y->dt) {
        memcpy(y->p, x->p, (size_t)x->n * lm_dtype_size(x->dt));
        return LM_OK;
    }
    for (int64_t i = 0; i < x->n; i++) {
        double v = tv_get(x, i);
        switch (y->dt) {
        case LM_F32:
            ((float *)y->p)[i] = (float)v;
            break;
        case LM_F64:
            ((double *)y->p)[i] = v;
            break;
        case LM_I32:
            ((int32_t *)y->p)[i] = (int32_t)v;
            break;
        case LM_I64:
            ((int64_t *)y->p)[i] = (int64_t)v;
            break;
        case LM_U8:
            ((uint8_t *)y->p)[i] = (uint8_t)v;
            break;
        default:
            break;
        }
    }
    return LM_OK;
}

static bool is_float(lm_dtype dt) {
    return dt == LM_F32 || dt == LM_F64;
}

static lm_status grad_cast(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    gx[0] = is_float(n->in[0]->dt) ? lm_op_cast(g, gy, n->in[0]->dt) : NULL;
    return LM_OK;
}

const lm_op_def lm_opdef_cast = {.name = "cast",
                                 .min_in = 1,
                                 .max_in = 1,
                                 .infer = infer_cast,
                                 .kernel = {k_cast},
                                 .grad = grad_cast};

lm_node *lm_op_cast(lm_graph *g, lm_node *x, lm_dtype dt) {
    lm_params p = lm_params_zero();
    p.dt = dt;
    return lm_node_make(g, LM_OP_CAST, 1, &x, &p);
}

/* ---- fill_like: f[0] everywhere, float32, shaped like input 0 ---- */

static lm_status infer_fill_like(lm_infer *s) {
    s->out = s->in[0];
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_fill_like(lm_kcall *c) {
    float v = c->p->f[0], *y = lm_f(&c->out);
    for (int64_t i = 0; i < c->out.n; i++) y[i] = v;
    return LM_OK;
}

const lm_op_def lm_opdef_fill_like = {.name = "fill_like",
                                      .min_in = 1,
                                      .max_in = 1,
                                      .flags = LM_OPF_NONDIFF,
                                      .infer = infer_fill_like,
                                      .kernel = {k_fill_like}};

lm_node *lm_op_fill_like(lm_graph *g, lm_node *x, float v) {
    lm_params p = lm_params_zero();
    p.f[0] = v;
    return lm_node_make(g, LM_OP_FILL_LIKE, 1, &x, &p);
}

/* ---- sum_to_like(gx, x): gx summed over the axes x was broadcast along ---- */

static lm_status infer_sum_to_like(lm_infer *s) {
    lm_shape b;
    lm_status st = lm_infer_broadcast(s, s->in[0], s->in[1], &b);
    if (st) return st;
    s->out = s->in[1];
    s->out_dt = s->in_dt[0];
    return LM_OK;
}

static bool sum_trailing(const lm_tv *x, const lm_tv *y, int64_t *rows) {
    for (int i = 0; i < y->ndim; i++) {
        int xi = x->ndim - y->ndim + i;
        if (y->d[i] != x->d[xi] && !(y->d[i] == 1 && i == 0 && y->ndim == 1)) return false;
    }
    if (y->n == 0 || x->n % y->n) return false;
    *rows = x->n / y->n;
    return true;
}

static lm_status k_sum_to_like(lm_kcall *c) {
    const lm_tv *x = &c->in[0];
    lm_tv *y = &c->out;
    const float *xp = lm_f(x);
    float *yp = lm_f(y);
    memset(yp, 0, (size_t)y->n * sizeof *yp);
    if (y->n == 0 || x->n == 0) return LM_OK;
    /* Fast path: x is (rows, y.n) with y matching its trailing part (bias gradients). */
    int64_t rows;
    if (sum_trailing(x, y, &rows)) {
        /* Threads split the columns in whole cache lines, so every column is
         * still summed row after row: the result does not depend on the
         * thread count (and matches Keras's order closely enough that a
         * training run tracks Keras's for hundreds of steps). */
        const int64_t tail = y->n, lines = (tail + 15) / 16;
        const int nt = c->env->nthreads;
        const int64_t parts = nt > 1 && x->n > 65536 ? lm_min64(nt, lines) : 1;
        LM_PAR_FOR(parts > 1, (int)parts, t, parts, {
            const int64_t j0 = lines * t / parts * 16,
                          j1 = lm_min64(tail, lines * (t + 1) / parts * 16);
            for (int64_t r = 0; r < rows; r++) {
                const float *restrict row = xp + r * tail;
                for (int64_t j = j0; j < j1; j++) yp[j] += row[j];
            }
        });
        return LM_OK;
    }
    /* General path: map every x index to its y index (stride 0 on broadcast axes). */
    int64_t ystr[LM_MAX_DIMS] = {0}, st = 1;
    for (int i = y->ndim - 1; i >= 0; i--) {
        int xi = x->ndim - y->ndim + i;
        ystr[xi] = y->d[i] == 1 ? 0 : st;
        st *= y->d[i];
    }
    int64_t idx[LM_MAX_DIMS] = {0}, off = 0;
    for (int64_t i = 0; i < x->n; i++) {
        yp[off] += xp[i];
        for (int d = x->ndim - 1; d >= 0; d--) {
            idx[d]++;
            off += ystr[d];
            if (idx[d] < x->d[d]) break;
            off -= ystr[d] * x->d[d];
            idx[d] = 0;
        }
    }
    return LM_OK;
}

const lm_op_def lm_opdef_sum_to_like = {.name = "sum_to_like",
                                        .min_in = 2,
                                        .max_in = 2,
                                        .flags = LM_OPF_GRAD_ONLY,
                                        .infer = infer_sum_to_like,
                                        .kernel = {k_sum_to_like}};

lm_node *lm_unbroadcast(lm_graph *g, lm_node *gx, lm_node *x) {
    if (!gx || !x) return NULL;
    if (lm_same_static_shape(gx, x)) {
        bool known = true;
        for (int i = 0; i < x->shape.ndim; i++)
            if (x->shape.dims[i] < 0) known = false;
        /* Equal static shapes with an unknown dim could still differ at run
         * time only if x was broadcast along it, which placeholders never are. */
        if (known || x->shape.dims[0] < 0) return gx;
    }
    lm_node *in[2] = {gx, x};
    return lm_node_make(g, LM_OP_SUM_TO_LIKE, 2, in, NULL);
}

/* ---- reshape: a view; target in ishape (0 copies the input dim, -1 infers
 * one dim), or with a second input, that input's shape ---- */

static lm_status infer_reshape(lm_infer *s) {
    char a[96], b[96];
    s->out_dt = s->in_dt[0];
    if (s->n_in == 2) {
        s->out = s->in[1];
        return LM_OK;
    }
    lm_shape in = s->in[0], out = {s->p->indim, {0}};
    if (out.ndim < 0 || out.ndim > LM_MAX_DIMS)
        return lm_infer_fail(s, LM_ERR_SHAPE, "target rank %d out of range", out.ndim);
    int infer_at = -1;
    bool copied[LM_MAX_DIMS] = {false};
    int64_t explicit_prod = 1; /* target dims neither copied nor inferred */
    for (int i = 0; i < out.ndim; i++) {
        int64_t d = s->p->ishape[i];
        if (d == 0 && s->p->kind == 1) { /* flatten: keep this input dim */
            if (i >= in.ndim)
                return lm_infer_fail(s, LM_ERR_SHAPE, "target dim %d copies a missing input dim",
                                     i);
            out.dims[i] = in.dims[i];
            copied[i] = true;
        } else if (d == -1) {
            if (infer_at >= 0)
                return lm_infer_fail(s, LM_ERR_SHAPE, "more than one -1 in the target shape");
            infer_at = i;
        } else if (d < 0) {
            return lm_infer_fail(s, LM_ERR_SHAPE, "invalid target dim %lld", (long long)d);
        } else {
            out.dims[i] = d;
            explicit_prod *= d;
        }
    }
    /* Size of the input not carried over by copied dims; unknown if it has a -1. */
    int64_t rest = 1;
    bool rest_known = true;
    for (int i = 0; i < in.ndim; i++) {
        if (i < out.ndim && copied[i]) continue;
        if (in.dims[i] < 0)
            rest_known = false;
        else
            rest *= in.dims[i];
    }
    if (infer_at >= 0) {
        out.dims[infer_at] = -1;
        if (rest_known) {
            if (explicit_prod == 0 || rest % explicit_prod)
                return lm_infer_fail(s, LM_ERR_SHAPE, "cannot reshape %s into %s", lm_shp(in, a),
                                     lm_shp(out, b));
            out.dims[infer_at] = rest / explicit_prod;
        }
    } else if (rest_known && rest != explicit_prod) {
        return lm_infer_fail(s, LM_ERR_SHAPE, "cannot reshape %s into %s", lm_shp(in, a),
                             lm_shp(out, b));
    }
    s->out = out;
    return LM_OK;
}

static lm_status k_reshape(lm_kcall *c) {
    (void)c; /* the output aliases the input */
    return LM_OK;
}

static lm_status grad_reshape(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    lm_node *in[2] = {gy, n->in[0]};
    gx[0] = lm_node_make(g, LM_OP_RESHAPE, 2, in, NULL);
    return LM_OK;
}

const lm_op_def lm_opdef_reshape = {.name = "reshape",
                                    .min_in = 1,
                                    .max_in = 2,
                                    .flags = LM_OPF_ALIAS,
                                    .infer = infer_reshape,
                                    .kernel = {k_reshape},
                                    .grad = grad_reshape};

lm_node *lm_op_reshape(lm_graph *g, lm_node *x, lm_shape shape) {
    lm_params p = lm_params_zero();
    if (shape.ndim < 0 || shape.ndim > LM_MAX_DIMS) {
        if (!g) return NULL;
        return lm_graph_fail(g, LM_ERR_SHAPE, "reshape: target rank %d out of range", shape.ndim);
    }
    p.indim = shape.ndim;
    memcpy(p.ishape, shape.dims, sizeof p.ishape);
    return lm_node_make(g, LM_OP_RESHAPE, 1, &x, &p);
}

lm_node *lm_op_flatten(lm_graph *g, lm_node *x) {
    lm_params p = lm_params_zero();
    p.indim = 2;
    p.kind = 1; /* ishape 0 copies the input dim */
    p.ishape[0] = 0;
    p.ishape[1] = -1;
    return lm_node_make(g, LM_OP_RESHAPE, 1, &x, &p);
}
