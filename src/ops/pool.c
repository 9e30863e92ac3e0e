/* Max and average pooling, channels last (NHWC; 1-D as H = 1), with their
 * backward-only ops. Max pooling saves, per output element, the spatial index
 * of the winning input cell (int32, aux memory) for max_pool_grad. Average
 * pooling with "same" padding divides by the number of real cells, as
 * TensorFlow does.
 *
 * Params: pool (size, strides with defaults filled in, padding) and kind
 * (0: 2-D, 1: 1-D). The backward ops copy the forward node's. */
#include "graph/graph_impl.h"
#include "cpu/pool_kern.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#include <string.h>

static void geom_of(const lm_params *p, const int64_t *x, lm_conv_geom *g) {
    const lm_pool_opts *o = &p->pool;
    memset(g, 0, sizeof *g);
    if (p->kind == 1) {
        g->N = x[0], g->H = 1, g->W = x[1], g->C = x[2];
        g->KH = 1, g->KW = o->size[0], g->sh = 1, g->sw = o->strides[0];
    } else {
        g->N = x[0], g->H = x[1], g->W = x[2], g->C = x[3];
        g->KH = o->size[0], g->KW = o->size[1], g->sh = o->strides[0], g->sw = o->strides[1];
    }
    g->dh = g->dw = g->G = 1;
    g->CG = g->O = g->OG = g->C;
    g->OH = lm_conv_out_size(g->H, g->KH, g->sh, 1, o->padding, &g->pt);
    g->OW = lm_conv_out_size(g->W, g->KW, g->sw, 1, o->padding, &g->pl);
}

static lm_shape out_shape(const lm_params *p, const lm_conv_geom *g) {
    return p->kind == 1 ? LM_SHAPE(g->N, g->OW, g->C) : LM_SHAPE(g->N, g->OH, g->OW, g->C);
}

static lm_status check_pool(lm_infer *s, lm_shape x, lm_dtype dt, lm_conv_geom *g) {
    char a[96];
    const lm_pool_opts *o = &s->p->pool;
    const int rank = s->p->kind == 1 ? 3 : 4, nsp = rank - 2;
    if (dt != LM_F32)
        return lm_infer_fail(s, LM_ERR_DTYPE, "needs a float32 input, got %s (input %s)",
                             lm_dtype_name(dt), lm_shp(x, a));
    if (x.ndim != rank)
        return lm_infer_fail(s, LM_ERR_SHAPE, "input %s must have %d dimensions (%s)", lm_shp(x, a),
                             rank, rank == 3 ? "N, W, C" : "N, H, W, C");
    for (int i = 0; i < nsp; i++)
        if (o->size[i] < 1 || o->strides[i] < 1)
            return lm_infer_fail(s, LM_ERR_ARG,
                                 "pool size and strides must be positive, got size %d, %d and "
                                 "strides %d, %d (input %s)",
                                 o->size[0], o->size[1], o->strides[0], o->strides[1],
                                 lm_shp(x, a));
    if (o->padding != LM_PAD_VALID && o->padding != LM_PAD_SAME)
        return lm_infer_fail(s, LM_ERR_ARG, "padding %d is not valid or same (input %s)",
                             (int)o->padding, lm_shp(x, a));
    geom_of(s->p, x.dims, g);
    if (g->OH == -2 || g->OW == -2)
        return lm_infer_fail(s, LM_ERR_SHAPE,
                             "input %s is smaller than the pool size %d x %d with padding valid",
                             lm_shp(x, a), (int)g->KH, (int)g->KW);
    return LM_OK;
}

static lm_status infer_pool(lm_infer *s) {
    lm_conv_geom g;
    lm_status st = check_pool(s, s->in[0], s->in_dt[0], &g);
    if (st) return st;
    s->out = out_shape(s->p, &g);
    s->out_dt = LM_F32;
    return LM_OK;
}

static int nthreads_for(const lm_kcall *c, int64_t work) {
    int nt = c->env->nthreads;
    return nt > 1 && work > 32768 ? nt : 1;
}

/* This thread's share [*a, *b) of n items. */
static void share(int64_t n, int64_t *a, int64_t *b) {
#ifdef _OPENMP
    int t = omp_get_thread_num(), T = omp_get_num_threads();
#else
    int t = 0, T = 1;
#endif
    *a = n * t / T, *b = n * (t + 1) / T;
}

/* ---- max pooling ---- */

static size_t aux_max_pool(const lm_kcall *c) {
    return (size_t)c->out.n * sizeof(int32_t);
}

static lm_status k_max_pool(lm_kcall *c) {
    lm_conv_geom g;
    geom_of(c->p, c->in[0].d, &g);
    if (g.H * g.W > INT32_MAX)
        return lm_kernel_fail(c, LM_ERR_SHAPE, "input images of %lld cells are too large",
                              (long long)(g.H * g.W));
    const float *x = lm_f(&c->in[0]);
    float *y = lm_f(&c->out);
    int32_t *arg = c->aux;
    const bool avx512 = c->env->isa >= LM_ISA_AVX512;
    const int64_t rows = g.N * g.OH;
    int nt = nthreads_for(c, c->out.n * g.KH * g.KW);
    LM_PARALLEL(nt > 1, nt, {
        int64_t r0, r1;
        share(rows, &r0, &r1);
        if (avx512)
            lm_pool_max_fwd_avx512(&g, x, y, arg, r0, r1);
        else
            lm_pool_max_fwd(&g, x, y, arg, r0, r1);
    });
    return LM_OK;
}

/* max_pool_grad(dy, y, x): dy routed to the saved argmax cells; x gives the shape. */
static lm_status infer_max_pool_grad(lm_infer *s) {
    char a[96], b[96];
    lm_conv_geom g;
    lm_status st = check_pool(s, s->in[2], s->in_dt[2], &g);
    if (st) return st;
    lm_shape want = out_shape(s->p, &g), dy = s->in[0];
    bool ok = dy.ndim == want.ndim && s->in_dt[0] == LM_F32;
    for (int i = 0; ok && i < dy.ndim; i++)
        if (dy.dims[i] >= 0 && want.dims[i] >= 0 && dy.dims[i] != want.dims[i]) ok = false;
    if (!ok)
        return lm_infer_fail(s, LM_ERR_SHAPE, "output gradient %s (%s) does not match %s",
                             lm_shp(dy, a), lm_dtype_name(s->in_dt[0]), lm_shp(want, b));
    /* The argmax comes from input 1's aux memory: it must be this pooling. */
    const lm_node *fw = s->node ? s->node->in[1] : NULL;
    bool is_pool = fw && (fw->op == LM_OP_MAX_POOL2D || fw->op == LM_OP_MAX_POOL1D) &&
                   fw->in[0] == s->node->in[2] && fw->p.kind == s->p->kind &&
                   !memcmp(&fw->p.pool, &s->p->pool, sizeof fw->p.pool);
    if (!is_pool)
        return lm_infer_fail(s, LM_ERR_ARG,
                             "input 1 must be the max pooling of input 2 %s with the same options",
                             lm_shp(s->in[2], a));
    s->out = s->in[2];
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_max_pool_grad(lm_kcall *c) {
    lm_conv_geom g;
    geom_of(c->p, c->in[2].d, &g);
    const float *dy = lm_f(&c->in[0]);
    const int32_t *arg = c->in_aux[1];
    float *dx = lm_f(&c->out);
    if (!arg && c->in[0].n)
        return lm_kernel_fail(c, LM_ERR_STATE,
                              "input 1 is not a max pooling node with saved state");
    const bool avx512 = c->env->isa >= LM_ISA_AVX512;
    int nt = nthreads_for(c, c->out.n);
    LM_PARALLEL(nt > 1, nt, {
        int64_t n0, n1;
        share(g.N, &n0, &n1);
        if (avx512)
            lm_pool_max_bwd_avx512(&g, dy, arg, dx, n0, n1);
        else
            lm_pool_max_bwd(&g, dy, arg, dx, n0, n1);
    });
    return LM_OK;
}

const lm_op_def lm_opdef_max_pool_grad = {.name = "max_pool_grad",
                                          .min_in = 3,
                                          .max_in = 3,
                                          .flags = LM_OPF_GRAD_ONLY,
                                          .infer = infer_max_pool_grad,
                                          .kernel = {k_max_pool_grad}};

static lm_status grad_max_pool(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    lm_node *in[3] = {gy, n, n->in[0]};
    gx[0] = lm_node_make(g, LM_OP_MAX_POOL_GRAD, 3, in, &n->p);
    return LM_OK;
}

const lm_op_def lm_opdef_max_pool2d = {.name = "max_pool2d",
                                       .min_in = 1,
                                       .max_in = 1,
                                       .infer = infer_pool,
                                       .aux_bytes = aux_max_pool,
                                       .kernel = {k_max_pool},
                                       .grad = grad_max_pool};

const lm_op_def lm_opdef_max_pool1d = {.name = "max_pool1d",
                                       .min_in = 1,
                                       .max_in = 1,
                                       .infer = infer_pool,
                                       .aux_bytes = aux_max_pool,
                                       .kernel = {k_max_pool},
                                       .grad = grad_max_pool};

/* ---- average pooling ---- */

static lm_status k_avg_pool(lm_kcall *c) {
    lm_conv_geom g;
    geom_of(c->p, c->in[0].d, &g);
    const float *x = lm_f(&c->in[0]);
    float *y = lm_f(&c->out);
    const bool avx512 = c->env->isa >= LM_ISA_AVX512;
    int nt = nthreads_for(c, c->out.n * g.KH * g.KW);
    LM_PARALLEL(nt > 1, nt, {
        int64_t r0, r1;
        share(g.N * g.OH, &r0, &r1);
        if (avx512)
            lm_pool_avg_fwd_avx512(&g, x, y, r0, r1);
        else
            lm_pool_avg_fwd(&g, x, y, r0, r1);
    });
    return LM_OK;
}

/* avg_pool_grad(dy, x): each window's gradient spread evenly over its real cells. */
static lm_status infer_avg_pool_grad(lm_infer *s) {
    char a[96], b[96];
    lm_conv_geom g;
    lm_status st = check_pool(s, s->in[1], s->in_dt[1], &g);
    if (st) return st;
    lm_shape want = out_shape(s->p, &g), dy = s->in[0];
    bool ok = dy.ndim == want.ndim && s->in_dt[0] == LM_F32;
    for (int i = 0; ok && i < dy.ndim; i++)
        if (dy.dims[i] >= 0 && want.dims[i] >= 0 && dy.dims[i] != want.dims[i]) ok = false;
    if (!ok)
        return lm_infer_fail(s, LM_ERR_SHAPE, "output gradient %s (%s) does not match %s",
                             lm_shp(dy, a), lm_dtype_name(s->in_dt[0]), lm_shp(want, b));
    s->out = s->in[1];
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_avg_pool_grad(lm_kcall *c) {
    lm_conv_geom g;
    geom_of(c->p, c->in[1].d, &g);
    const float *dy = lm_f(&c->in[0]);
    float *dx = lm_f(&c->out);
    const bool avx512 = c->env->isa >= LM_ISA_AVX512;
    int nt = nthreads_for(c, c->out.n);
    LM_PARALLEL(nt > 1, nt, {
        int64_t n0, n1;
        share(g.N, &n0, &n1);
        if (avx512)
            lm_pool_avg_bwd_avx512(&g, dy, dx, n0, n1);
        else
            lm_pool_avg_bwd(&g, dy, dx, n0, n1);
    });
    return LM_OK;
}

const lm_op_def lm_opdef_avg_pool_grad = {.name = "avg_pool_grad",
                                          .min_in = 2,
                                          .max_in = 2,
                                          .flags = LM_OPF_GRAD_ONLY,
                                          .infer = infer_avg_pool_grad,
                                          .kernel = {k_avg_pool_grad}};

static lm_status grad_avg_pool(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    lm_node *in[2] = {gy, n->in[0]};
    gx[0] = lm_node_make(g, LM_OP_AVG_POOL_GRAD, 2, in, &n->p);
    return LM_OK;
}

const lm_op_def lm_opdef_avg_pool2d = {.name = "avg_pool2d",
                                       .min_in = 1,
                                       .max_in = 1,
                                       .infer = infer_pool,
                                       .kernel = {k_avg_pool},
                                       .grad = grad_avg_pool};

const lm_op_def lm_opdef_avg_pool1d = {.name = "avg_pool1d",
                                       .min_in = 1,
                                       .max_in = 1,
                                       .infer = infer_pool,
                                       .kernel = {k_avg_pool},
                                       .grad = grad_avg_pool};

/* ---- constructors ---- */

static lm_node *pool_make(lm_graph *g, int op, lm_node *x, lm_pool_opts o, int kind) {
    lm_params p = lm_params_zero();
    if (kind == 1) o.size[1] = 1, o.strides[1] = 1;
    for (int i = 0; i < 2; i++)
        if (o.strides[i] == 0) o.strides[i] = o.size[i];
    p.pool = o;
    p.kind = kind;
    return lm_node_make(g, op, 1, &x, &p);
}

lm_node *lm_op_max_pool2d(lm_graph *g, lm_node *x, lm_pool_opts o) {
    return pool_make(g, LM_OP_MAX_POOL2D, x, o, 0);
}

lm_node *lm_op_avg_pool2d(lm_graph *g, lm_node *x, lm_pool_opts o) {
    return pool_make(g, LM_OP_AVG_POOL2D, x, o, 0);
}

lm_node *lm_op_max_pool1d(lm_graph *g, lm_node *x, lm_pool_opts o) {
    return pool_make(g, LM_OP_MAX_POOL1D, x, o, 1);
}

lm_node *lm_op_avg_pool1d(lm_graph *g, lm_node *x, lm_pool_opts o) {
    return pool_make(g, LM_OP_AVG_POOL1D, x, o, 1);
}
