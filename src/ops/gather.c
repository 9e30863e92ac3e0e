/* Indexing ops: gather (embedding lookup on axis 0), its backward
 * gather_grad (a scatter-add of rows), and one_hot. Indices are int32 or
 * int64; a negative index counts from the end as in keras.ops.take, and any
 * index outside [-rows, rows) is a run-time error (never read). one_hot reads
 * params.depth. */
#include "graph/graph_impl.h"
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define PAR_BYTES ((int64_t)1 << 18)

static bool is_index_dtype(lm_dtype dt) {
    return dt == LM_I32 || dt == LM_I64;
}

static int64_t index_at(const lm_tv *t, int64_t i) {
    return t->dt == LM_I32 ? ((const int32_t *)t->p)[i] : ((const int64_t *)t->p)[i];
}

static lm_shape tv_shape(const lm_tv *t) {
    lm_shape s = {t->ndim, {0}};
    memcpy(s.dims, t->d, sizeof(int64_t) * (size_t)t->ndim);
    return s;
}

/* Checks every index against rows; fails naming the first bad one. */
static lm_status check_indices(lm_kcall *c, const lm_tv *idx, const lm_tv *params) {
    int64_t rows = params->d[0];
    for (int64_t i = 0; i < idx->n; i++) {
        int64_t k = index_at(idx, i);
        if (k < -rows || k >= rows) {
            char a[96], b[96];
            return lm_kernel_fail(c, LM_ERR_ARG,
                                  "index %lld at position %lld of indices %s is out of range for "
                                  "params %s (%lld rows)",
                                  (long long)k, (long long)i, lm_shp(tv_shape(idx), a),
                                  lm_shp(tv_shape(params), b), (long long)rows);
        }
    }
    return LM_OK;
}

/* Output shape indices.shape + params.shape[1:]. */
static lm_status gathered_shape(lm_infer *s, lm_shape params, lm_shape idx, lm_dtype idt,
                                lm_shape *out) {
    char a[96], b[96];
    if (!is_index_dtype(idt))
        return lm_infer_fail(s, LM_ERR_DTYPE, "indices %s are %s, not int32 or int64 (params %s)",
                             lm_shp(idx, a), lm_dtype_name(idt), lm_shp(params, b));
    if (params.ndim < 1 || idx.ndim + params.ndim - 1 > LM_MAX_DIMS)
        return lm_infer_fail(s, LM_ERR_SHAPE, "cannot gather from params %s with indices %s",
                             lm_shp(params, a), lm_shp(idx, b));
    *out = idx;
    for (int i = 1; i < params.ndim; i++) out->dims[out->ndim++] = params.dims[i];
    return LM_OK;
}

/* ---- gather(params, indices) ---- */

static lm_status infer_gather(lm_infer *s) {
    s->out_dt = s->in_dt[0];
    return gathered_shape(s, s->in[0], s->in[1], s->in_dt[1], &s->out);
}

static lm_status k_gather(lm_kcall *c) {
    const lm_tv *params = &c->in[0], *idx = &c->in[1];
    lm_status st = check_indices(c, idx, params);
    if (st) return st;
    int64_t rows = params->d[0], n = idx->n;
    size_t es = lm_dtype_size(params->dt), row = es;
    for (int i = 1; i < params->ndim; i++) row *= (size_t)params->d[i];
    const char *p = params->p;
    char *y = c->out.p;
    int nt = c->env->nthreads;
    (void)nt; /* unused without OpenMP */
#pragma omp parallel for num_threads(nt) if (nt > 1 && n * (int64_t)row > PAR_BYTES)               \
    schedule(static)
    for (int64_t i = 0; i < n; i++) {
        int64_t k = index_at(idx, i);
        if (k < 0) k += rows;
        memcpy(y + (size_t)i * row, p + (size_t)k * row, row);
    }
    return LM_OK;
}

/* gather_grad(gy, indices, params): zeros shaped like params with each row of
 * gy added into the row its index picked. */
static lm_status infer_gather_grad(lm_infer *s) {
    char a[96], b[96], c[96];
    lm_shape want = {0, {0}};
    lm_status st = gathered_shape(s, s->in[2], s->in[1], s->in_dt[1], &want);
    if (st) return st;
    bool ok = s->in_dt[0] == LM_F32 && s->in[0].ndim == want.ndim;
    for (int i = 0; ok && i < want.ndim; i++)
        if (want.dims[i] >= 0 && s->in[0].dims[i] >= 0 && want.dims[i] != s->in[0].dims[i])
            ok = false;
    if (!ok)
        return lm_infer_fail(s, LM_ERR_SHAPE,
                             "gradient %s (%s) does not fit indices %s and params %s",
                             lm_shp(s->in[0], a), lm_dtype_name(s->in_dt[0]), lm_shp(s->in[1], b),
                             lm_shp(s->in[2], c));
    s->out = s->in[2];
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_gather_grad(lm_kcall *c) {
    const lm_tv *gy = &c->in[0], *idx = &c->in[1];
    lm_tv *gp = &c->out;
    lm_status st = check_indices(c, idx, gp);
    if (st) return st;
    int64_t rows = gp->d[0], n = idx->n, F = rows ? gp->n / rows : 0;
    const float *g = lm_f(gy);
    float *y = lm_f(gp);
    int nt = c->env->nthreads;
    if (nt > rows) nt = rows > 0 ? (int)rows : 1;
        /* Each thread owns a block of rows and scans all indices: no two threads
         * add into the same row, and each row sums in index order. */
#pragma omp parallel num_threads(nt) if (nt > 1 && n * F * 4 > PAR_BYTES)
    {
        int t = 0, T = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        T = omp_get_num_threads();
#endif
        int64_t r0 = rows * t / T, r1 = rows * (t + 1) / T;
        memset(y + r0 * F, 0, (size_t)((r1 - r0) * F) * sizeof *y);
        for (int64_t i = 0; i < n; i++) {
            int64_t k = index_at(idx, i);
            if (k < 0) k += rows;
            if (k < r0 || k >= r1) continue;
            float *restrict yr = y + k * F;
            const float *restrict gr = g + i * F;
            for (int64_t f = 0; f < F; f++) yr[f] += gr[f];
        }
    }
    return LM_OK;
}

const lm_op_def lm_opdef_gather_grad = {.name = "gather_grad",
                                        .min_in = 3,
                                        .max_in = 3,
                                        .flags = LM_OPF_GRAD_ONLY,
                                        .infer = infer_gather_grad,
                                        .kernel = {k_gather_grad}};

static lm_status grad_gather(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    lm_node *in[3] = {gy, n->in[1], n->in[0]};
    gx[0] = lm_node_make(g, LM_OP_GATHER_GRAD, 3, in, NULL);
    gx[1] = NULL;
    return LM_OK;
}

const lm_op_def lm_opdef_gather = {.name = "gather",
                                   .min_in = 2,
                                   .max_in = 2,
                                   .infer = infer_gather,
                                   .kernel = {k_gather},
                                   .grad = grad_gather};

lm_node *lm_op_gather(lm_graph *g, lm_node *params, lm_node *indices) {
    lm_node *in[2] = {params, indices};
    return lm_node_make(g, LM_OP_GATHER, 2, in, NULL);
}

/* ---- one_hot: indices outside [0, depth) give a zero row, as keras.ops.one_hot ---- */

static lm_status infer_one_hot(lm_infer *s) {
    char a[96];
    lm_shape x = s->in[0];
    if (!is_index_dtype(s->in_dt[0]))
        return lm_infer_fail(s, LM_ERR_DTYPE, "indices %s are %s, not int32 or int64", lm_shp(x, a),
                             lm_dtype_name(s->in_dt[0]));
    if (s->p->depth < 0)
        return lm_infer_fail(s, LM_ERR_ARG, "negative depth %d for indices %s", s->p->depth,
                             lm_shp(x, a));
    if (x.ndim >= LM_MAX_DIMS)
        return lm_infer_fail(s, LM_ERR_SHAPE, "indices %s have too many dimensions", lm_shp(x, a));
    s->out = x;
    s->out.dims[s->out.ndim++] = s->p->depth;
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_one_hot(lm_kcall *c) {
    const lm_tv *idx = &c->in[0];
    int64_t depth = c->p->depth;
    float *y = lm_f(&c->out);
    memset(y, 0, (size_t)c->out.n * sizeof *y);
    for (int64_t i = 0; i < idx->n; i++) {
        int64_t k = index_at(idx, i);
        if (k >= 0 && k < depth) y[i * depth + k] = 1.0f;
    }
    return LM_OK;
}

const lm_op_def lm_opdef_one_hot = {.name = "one_hot",
                                    .min_in = 1,
                                    .max_in = 1,
                                    .flags = LM_OPF_NONDIFF,
                                    .infer = infer_one_hot,
                                    .kernel = {k_one_hot}};

lm_node *lm_op_one_hot(lm_graph *g, lm_node *indices, int depth) {
    lm_params p = lm_params_zero();
    p.depth = depth;
    return lm_node_make(g, LM_OP_ONE_HOT, 1, &indices, &p);
}
