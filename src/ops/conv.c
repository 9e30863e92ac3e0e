/* Convolutions, channels last: conv2d, conv1d (the same kernels with H = 1)
 * and the two backward-only ops, conv2d_backprop_input and
 * conv2d_backprop_filter, which serve both ranks. The arithmetic lives in
 * src/cpu/im2col.c; here are the shape rules, workspace sizes and gradients.
 *
 * Params: conv (strides, dilation, groups with defaults filled in, padding)
 * and kind (0: 2-D, 1: 1-D). The backward ops copy the forward node's. */
#include "graph/graph_impl.h"
#include "cpu/im2col.h"
#include <string.h>

static const char *pad_name(int pad) {
    return pad == LM_PAD_SAME ? "same" : pad == LM_PAD_CAUSAL ? "causal" : "valid";
}

/* Geometry from the input and kernel shapes (dims may be -1 at build time). */
static void geom_of(const lm_params *p, const int64_t *x, const int64_t *w, lm_conv_geom *g) {
    const lm_conv_opts *o = &p->conv;
    memset(g, 0, sizeof *g);
    if (p->kind == 1) { /* (N, W, C) with (K, CG, O) */
        g->N = x[0], g->H = 1, g->W = x[1], g->C = x[2];
        g->KH = 1, g->KW = w[0], g->CG = w[1], g->O = w[2];
        g->sh = 1, g->sw = o->strides[0], g->dh = 1, g->dw = o->dilation[0];
    } else {
        g->N = x[0], g->H = x[1], g->W = x[2], g->C = x[3];
        g->KH = w[0], g->KW = w[1], g->CG = w[2], g->O = w[3];
        g->sh = o->strides[0], g->sw = o->strides[1], g->dh = o->dilation[0],
        g->dw = o->dilation[1];
    }
    g->G = o->groups;
    g->OG = g->O >= 0 ? g->O / g->G : -1;
    g->OH = lm_conv_out_size(g->H, g->KH, g->sh, g->dh, o->padding == LM_PAD_SAME, &g->pt);
    g->OW = lm_conv_out_size(g->W, g->KW, g->sw, g->dw, o->padding, &g->pl);
}

static lm_shape out_shape(const lm_params *p, const lm_conv_geom *g) {
    return p->kind == 1 ? LM_SHAPE(g->N, g->OW, g->O) : LM_SHAPE(g->N, g->OH, g->OW, g->O);
}

/* Checks x and w and fills the geometry; shared by the forward and backward rules. */
static lm_status check_conv(lm_infer *s, lm_shape x, lm_shape w, lm_conv_geom *g) {
    char a[96], b[96];
    const lm_conv_opts *o = &s->p->conv;
    const int rank = s->p->kind == 1 ? 3 : 4;
    for (int i = 0; i < 2; i++)
        if (s->in_dt[i] != LM_F32)
            return lm_infer_fail(s, LM_ERR_DTYPE, "needs float32 inputs, got %s and %s",
                                 lm_dtype_name(s->in_dt[0]), lm_dtype_name(s->in_dt[1]));
    if (x.ndim != rank || w.ndim != rank)
        return lm_infer_fail(s, LM_ERR_SHAPE,
                             "input %s and kernel %s must both have %d dimensions (%s)",
                             lm_shp(x, a), lm_shp(w, b), rank,
                             rank == 3 ? "N, W, C and K, C/groups, filters"
                                       : "N, H, W, C and KH, KW, C/groups, filters");
    int nsp = rank - 2;
    for (int i = 0; i < nsp; i++)
        if (o->strides[i] < 1 || o->dilation[i] < 1)
            return lm_infer_fail(s, LM_ERR_ARG,
                                 "strides and dilation must be positive, got strides %d, %d and "
                                 "dilation %d, %d (input %s, kernel %s)",
                                 o->strides[0], o->strides[1], o->dilation[0], o->dilation[1],
                                 lm_shp(x, a), lm_shp(w, b));
    if (o->groups < 1)
        return lm_infer_fail(s, LM_ERR_ARG, "groups must be positive, got %d (input %s, kernel %s)",
                             o->groups, lm_shp(x, a), lm_shp(w, b));
    if (o->padding != LM_PAD_VALID && o->padding != LM_PAD_SAME &&
        !(o->padding == LM_PAD_CAUSAL && rank == 3))
        return lm_infer_fail(
            s, LM_ERR_ARG, "padding %d is not valid or same%s (input %s, kernel %s)",
            (int)o->padding, rank == 3 ? " or causal" : "", lm_shp(x, a), lm_shp(w, b));
    for (int i = 0; i < rank; i++)
        if (w.dims[i] < 0)
            return lm_infer_fail(s, LM_ERR_SHAPE, "kernel %s must have a static shape (input %s)",
                                 lm_shp(w, b), lm_shp(x, a));
    for (int i = 0; i < nsp; i++)
        if (w.dims[i] < 1)
            return lm_infer_fail(s, LM_ERR_SHAPE, "kernel %s has an empty window (input %s)",
                                 lm_shp(w, b), lm_shp(x, a));
    geom_of(s->p, x.dims, w.dims, g);
    if (g->C >= 0 && g->C != g->CG * g->G)
        return lm_infer_fail(s, LM_ERR_SHAPE,
                             "input channels %lld do not match kernel %s with groups %d "
                             "(input %s; the kernel holds C/groups input channels)",
                             (long long)g->C, lm_shp(w, b), o->groups, lm_shp(x, a));
    if (g->O % g->G)
        return lm_infer_fail(s, LM_ERR_SHAPE,
                             "filters %lld of kernel %s are not divisible by groups %d (input %s)",
                             (long long)g->O, lm_shp(w, b), o->groups, lm_shp(x, a));
    if (g->OH == -2 || g->OW == -2)
        return lm_infer_fail(s, LM_ERR_SHAPE,
                             "input %s is smaller than kernel %s dilated by (%d, %d) with "
                             "padding %s",
                             lm_shp(x, a), lm_shp(w, b), o->dilation[0],
                             rank == 3 ? 1 : o->dilation[1], pad_name(o->padding));
    return LM_OK;
}

static lm_status infer_conv(lm_infer *s) {
    lm_conv_geom g;
    lm_status st = check_conv(s, s->in[0], s->in[1], &g);
    if (st) return st;
    char a[96], b[96];
    /* Fused epilogue: an optional bias (filters) and a fusable activation. */
    if (s->n_in == 3 && (s->in[2].ndim != 1 || s->in[2].dims[0] != g.O || s->in_dt[2] != LM_F32))
        return lm_infer_fail(s, LM_ERR_SHAPE, "bias %s does not match kernel %s",
                             lm_shp(s->in[2], a), lm_shp(s->in[1], b));
    int act = s->p->act;
    if (act != LM_ACT_LINEAR && act != LM_ACT_RELU && act != LM_ACT_SIGMOID && act != LM_ACT_TANH)
        return lm_infer_fail(
            s, LM_ERR_ARG, "activation %d cannot be fused (linear, relu, sigmoid, tanh can)", act);
    s->out = out_shape(s->p, &g);
    s->out_dt = LM_F32;
    return LM_OK;
}

/* Threads the workspace has room for (sized for the thread count at plan time). */
static int fit_threads(const lm_kcall *c, size_t per_thread) {
    int nt = c->env->nthreads < 1 ? 1 : c->env->nthreads;
    if (per_thread && c->ws_bytes / per_thread < (size_t)nt) nt = (int)(c->ws_bytes / per_thread);
    return nt < 1 ? 1 : nt;
}

static int kcall_threads(const lm_kcall *c) {
    return c->env->nthreads < 1 ? 1 : c->env->nthreads;
}

static size_t ws_conv(const lm_kcall *c) {
    lm_conv_geom g;
    geom_of(c->p, c->in[0].d, c->in[1].d, &g);
    return lm_conv_fwd_ws(&g, kcall_threads(c), c->env->isa);
}

static lm_status k_conv(lm_kcall *c) {
    lm_conv_geom g;
    geom_of(c->p, c->in[0].d, c->in[1].d, &g);
    int nt = fit_threads(c, lm_conv_fwd_ws(&g, 1, c->env->isa));
    if (c->ws_bytes < lm_conv_fwd_ws(&g, 1, c->env->isa))
        return lm_kernel_fail(c, LM_ERR_STATE, "workspace of %zu bytes is too small", c->ws_bytes);
    g.bias = c->n_in == 3 ? lm_f(&c->in[2]) : NULL;
    g.relu = c->p->act == LM_ACT_RELU;
    lm_conv_fwd(&g, lm_f(&c->in[0]), lm_f(&c->in[1]), lm_f(&c->out), c->env->gemm, nt, c->env->isa,
                c->ws);
    if (c->p->act == LM_ACT_SIGMOID || c->p->act == LM_ACT_TANH)
        lm_apply_activation(lm_f(&c->out), c->out.n, c->p->act, c->env);
    return LM_OK;
}

/* ---- conv2d_backprop_input(dy, w, x): dx shaped like x (x only gives the shape) ---- */

/* dy must have the shape the forward op gives for x and w. */
static lm_status check_dy(lm_infer *s, lm_shape dy, lm_dtype dt, const lm_conv_geom *g) {
    char a[96], b[96];
    lm_shape want = out_shape(s->p, g);
    bool ok = dy.ndim == want.ndim;
    for (int i = 0; ok && i < want.ndim; i++)
        if (dy.dims[i] >= 0 && want.dims[i] >= 0 && dy.dims[i] != want.dims[i]) ok = false;
    if (dt != LM_F32 || !ok)
        return lm_infer_fail(s, LM_ERR_SHAPE, "output gradient %s (%s) does not match %s",
                             lm_shp(dy, a), lm_dtype_name(dt), lm_shp(want, b));
    return LM_OK;
}

static lm_status infer_bwd_input(lm_infer *s) {
    lm_conv_geom g;
    lm_infer t = *s; /* check_conv reads the dtypes of inputs 0 and 1 as x's and w's */
    t.in_dt[0] = s->in_dt[2];
    lm_status st = check_conv(&t, s->in[2], s->in[1], &g);
    if (st == LM_OK) st = check_dy(s, s->in[0], s->in_dt[0], &g);
    if (st) return st;
    s->out = s->in[2];
    s->out_dt = LM_F32;
    return LM_OK;
}

static size_t ws_bwd_input(const lm_kcall *c) {
    lm_conv_geom g;
    geom_of(c->p, c->in[2].d, c->in[1].d, &g);
    return lm_conv_bwd_input_ws(&g, kcall_threads(c));
}

static lm_status k_bwd_input(lm_kcall *c) {
    lm_conv_geom g;
    geom_of(c->p, c->in[2].d, c->in[1].d, &g);
    size_t per = lm_conv_bwd_input_ws(&g, 1);
    if (c->ws_bytes < per)
        return lm_kernel_fail(c, LM_ERR_STATE, "workspace of %zu bytes is too small", c->ws_bytes);
    lm_conv_bwd_input(&g, lm_f(&c->in[0]), lm_f(&c->in[1]), lm_f(&c->out), c->env->gemm,
                      fit_threads(c, per), c->ws);
    return LM_OK;
}

const lm_op_def lm_opdef_conv2d_backprop_input = {.name = "conv2d_backprop_input",
                                                  .min_in = 3,
                                                  .max_in = 3,
                                                  .flags = LM_OPF_GRAD_ONLY,
                                                  .infer = infer_bwd_input,
                                                  .ws_bytes = ws_bwd_input,
                                                  .kernel = {k_bwd_input}};

/* ---- conv2d_backprop_filter(x, dy, w): dw shaped like w (w only gives the shape) ---- */

static lm_status infer_bwd_filter(lm_infer *s) {
    lm_conv_geom g;
    lm_infer t = *s;
    t.in_dt[1] = s->in_dt[2];
    lm_status st = check_conv(&t, s->in[0], s->in[2], &g);
    if (st == LM_OK) st = check_dy(s, s->in[1], s->in_dt[1], &g);
    if (st) return st;
    s->out = s->in[2];
    s->out_dt = LM_F32;
    return LM_OK;
}

static size_t ws_bwd_filter(const lm_kcall *c) {
    lm_conv_geom g;
    geom_of(c->p, c->in[0].d, c->in[2].d, &g);
    return lm_conv_bwd_filter_ws(&g, kcall_threads(c));
}

static lm_status k_bwd_filter(lm_kcall *c) {
    lm_conv_geom g;
    geom_of(c->p, c->in[0].d, c->in[2].d, &g);
    size_t per = lm_conv_bwd_filter_ws(&g, 1);
    if (c->ws_bytes < per)
        return lm_kernel_fail(c, LM_ERR_STATE, "workspace of %zu bytes is too small", c->ws_bytes);
    lm_conv_bwd_filter(&g, lm_f(&c->in[0]), lm_f(&c->in[1]), lm_f(&c->out), c->env->gemm,
                       fit_threads(c, per), c->env->isa, c->ws);
    return LM_OK;
}

const lm_op_def lm_opdef_conv2d_backprop_filter = {.name = "conv2d_backprop_filter",
                                                   .min_in = 3,
                                                   .max_in = 3,
                                                   .flags = LM_OPF_GRAD_ONLY,
                                                   .infer = infer_bwd_filter,
                                                   .ws_bytes = ws_bwd_filter,
                                                   .kernel = {k_bwd_filter}};

/* ---- conv2d, conv1d ---- */

static lm_status grad_conv(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    lm_node *x = n->in[0], *w = n->in[1];
    gy = lm_act_grad_y(g, gy, n, n->p.act);
    if (n->n_in == 3) gx[2] = lm_unbroadcast(g, gy, n->in[2]);
    lm_params p = n->p;
    p.act = LM_ACT_LINEAR;
    lm_node *a[3] = {gy, w, x}, *b[3] = {x, gy, w};
    /* Two independent ops: the session only runs the input gradient when it is needed. */
    gx[0] = lm_node_make(g, LM_OP_CONV2D_BACKPROP_INPUT, 3, a, &p);
    gx[1] = lm_node_make(g, LM_OP_CONV2D_BACKPROP_FILTER, 3, b, &p);
    return LM_OK;
}

const lm_op_def lm_opdef_conv2d = {.name = "conv2d",
                                   .min_in = 2,
                                   .max_in = 3,
                                   .infer = infer_conv,
                                   .ws_bytes = ws_conv,
                                   .kernel = {k_conv},
                                   .grad = grad_conv};

const lm_op_def lm_opdef_conv1d = {.name = "conv1d",
                                   .min_in = 2,
                                   .max_in = 3,
                                   .infer = infer_conv,
                                   .ws_bytes = ws_conv,
                                   .kernel = {k_conv},
                                   .grad = grad_conv};

static lm_node *conv_make(lm_graph *g, int op, lm_node *x, lm_node *w, lm_node *b,
                          lm_activation act, lm_conv_opts o, int kind) {
    lm_params p = lm_params_zero();
    for (int i = 0; i < 2; i++) {
        if (o.strides[i] == 0 || (kind == 1 && i == 1)) o.strides[i] = 1;
        if (o.dilation[i] == 0 || (kind == 1 && i == 1)) o.dilation[i] = 1;
    }
    if (o.groups == 0) o.groups = 1;
    p.conv = o;
    p.kind = kind;
    p.act = act;
    lm_node *in[3] = {x, w, b};
    return lm_node_make(g, op, b ? 3 : 2, in, &p);
}

lm_node *lm_op_conv2d(lm_graph *g, lm_node *x, lm_node *w, lm_conv_opts o) {
    return conv_make(g, LM_OP_CONV2D, x, w, NULL, LM_ACT_LINEAR, o, 0);
}

lm_node *lm_op_conv1d(lm_graph *g, lm_node *x, lm_node *w, lm_conv_opts o) {
    return conv_make(g, LM_OP_CONV1D, x, w, NULL, LM_ACT_LINEAR, o, 1);
}

lm_node *lm_op_conv2d_bias_act(lm_graph *g, lm_node *x, lm_node *w, lm_node *b, lm_conv_opts o,
                               lm_activation act) {
    return conv_make(g, LM_OP_CONV2D, x, w, b, act, o, 0);
}

lm_node *lm_op_conv1d_bias_act(lm_graph *g, lm_node *x, lm_node *w, lm_node *b, lm_conv_opts o,
                               lm_activation act) {
    return conv_make(g, LM_OP_CONV1D, x, w, b, act, o, 1);
}
