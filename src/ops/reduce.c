/* Reductions over a set of axes: sum, mean and max (with keepdims), argmax
 * over one axis, the global pools built on mean and max, and the backward
 * helpers reduce_grad (sum and mean: broadcast back) and max_grad.
 *
 * Params: axes[naxes] as given (negative counts from the end, naxes == 0
 * reduces every axis), keepdims; argmax uses axis; reduce_grad uses kind
 * (0 sum, 1 mean).
 *
 * Kernels merge adjacent axes of the same kind (dropping size-1 axes), so
 * most reductions become x[outer, red, inner] -> y[outer, inner]: a row
 * reduction when inner == 1, column tiles otherwise. Other patterns (two or
 * more reduced groups) take a general single-threaded path. Sums run in
 * float lanes over short blocks whose results are added in double. */
#include "graph/graph_impl.h"
#include "ops/reduce_vmath.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { RK_SUM = 0, RK_MEAN = 1 };

/* ---- axes ---- */

static void axes_str(const lm_params *p, char *buf, size_t len) {
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < p->naxes && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%d", i ? ", " : "", p->axes[i]);
}

/* Reduced-axis mask of p's axes against an input of rank ndim; fails naming
 * the input shape when an axis is out of range or repeated. */
static lm_status axes_mask(lm_infer *s, const lm_params *p, lm_shape x, bool *mask) {
    char a[96], b[64];
    for (int i = 0; i < x.ndim; i++) mask[i] = p->naxes == 0;
    for (int i = 0; i < p->naxes; i++) {
        int ax = p->axes[i] < 0 ? p->axes[i] + x.ndim : p->axes[i];
        if (ax < 0 || ax >= x.ndim) {
            axes_str(p, b, sizeof b);
            return lm_infer_fail(s, LM_ERR_ARG, "axis %d is out of range for input %s (axes %s)",
                                 p->axes[i], lm_shp(x, a), b);
        }
        if (mask[ax]) {
            axes_str(p, b, sizeof b);
            return lm_infer_fail(s, LM_ERR_ARG, "axis %d is repeated (axes %s) for input %s",
                                 p->axes[i], b, lm_shp(x, a));
        }
        mask[ax] = true;
    }
    return LM_OK;
}

/* Mask for kernels: the axes were validated at inference. */
static void kmask(const lm_params *p, int ndim, bool *mask) {
    for (int i = 0; i < ndim; i++) mask[i] = p->naxes == 0;
    for (int i = 0; i < p->naxes; i++) mask[p->axes[i] < 0 ? p->axes[i] + ndim : p->axes[i]] = true;
}

static lm_shape reduced_shape(lm_shape x, const bool *mask, bool keepdims) {
    lm_shape o = {0, {0}};
    for (int i = 0; i < x.ndim; i++) {
        if (!mask[i])
            o.dims[o.ndim++] = x.dims[i];
        else if (keepdims)
            o.dims[o.ndim++] = 1;
    }
    return o;
}

/* ---- layout: merged groups of kept and reduced axes ---- */

typedef struct rlay {
    int n;
    int64_t d[LM_MAX_DIMS];
    bool r[LM_MAX_DIMS];
    bool simple;               /* at most one reduced group */
    int64_t outer, red, inner; /* when simple */
    int64_t count;             /* reduced elements per output element */
} rlay;

static void rlay_make(const lm_tv *x, const lm_params *p, rlay *L) {
    bool mask[LM_MAX_DIMS];
    kmask(p, x->ndim, mask);
    L->n = 0;
    L->count = 1;
    for (int i = 0; i < x->ndim; i++) {
        if (mask[i]) L->count *= x->d[i];
        if (x->d[i] == 1) continue;
        if (L->n && L->r[L->n - 1] == mask[i]) {
            L->d[L->n - 1] *= x->d[i];
        } else {
            L->d[L->n] = x->d[i];
            L->r[L->n++] = mask[i];
        }
    }
    int groups = 0;
    for (int k = 0; k < L->n; k++) groups += L->r[k];
    L->simple = groups <= 1;
    L->outer = L->red = L->inner = 1;
    bool after = false;
    for (int k = 0; k < L->n; k++) {
        if (L->r[k]) {
            L->red = L->d[k];
            after = true;
        } else if (after) {
            L->inner *= L->d[k];
        } else {
            L->outer *= L->d[k];
        }
    }
}

/* Output offset strides of the merged axes (0 on reduced ones). */
static void rlay_ostrides(const rlay *L, int64_t *ostr) {
    int64_t st = 1;
    for (int k = L->n - 1; k >= 0; k--) {
        ostr[k] = L->r[k] ? 0 : st;
        if (!L->r[k]) st *= L->d[k];
    }
}

/* Walks x in order, keeping the output offset of each element in *off. */
typedef struct odo {
    int n;
    int64_t idx[LM_MAX_DIMS], d[LM_MAX_DIMS], st[LM_MAX_DIMS], off;
} odo;

static void odo_init(odo *o, const rlay *L) {
    memset(o, 0, sizeof *o);
    o->n = L->n;
    memcpy(o->d, L->d, sizeof o->d);
    rlay_ostrides(L, o->st);
}

static inline void odo_next(odo *o) {
    for (int k = o->n - 1; k >= 0; k--) {
        o->idx[k]++;
        o->off += o->st[k];
        if (o->idx[k] < o->d[k]) return;
        o->off -= o->st[k] * o->d[k];
        o->idx[k] = 0;
    }
}

#define NCHUNK_MAX 64
#define TILE_W     256

/* Column tiles: enough to feed the threads, at least 16 columns wide. */
static int64_t tile_width(int64_t outer, int64_t inner, int nt) {
    int64_t w = TILE_W;
    while (w > LM_VL && outer * ((inner + w - 1) / w) < nt) w /= 2;
    return w;
}

/* ---- sum and mean ---- */

static void sum_rows(const float *x, float *y, int64_t O, int64_t R, double div, int nt) {
    if (O >= nt || R < 65536) {
        LM_PAR_FOR(nt > 1 && O * R > 65536, nt, o, O,
                   { y[o] = (float)(lm_row_sum(x + o * R, R) / div); });
        return;
    }
    /* Few long rows: fixed chunks summed in order, so results do not depend on nt. */
    int64_t nch = NCHUNK_MAX, len = (R + nch - 1) / nch;
    for (int64_t o = 0; o < O; o++) {
        const float *xr = x + o * R;
        double part[NCHUNK_MAX];
        LM_PAR_FOR(nt > 1, nt, ch, nch, {
            int64_t b = ch * len, e = lm_min64(R, b + len);
            part[ch] = b < e ? lm_row_sum(xr + b, e - b) : 0;
        });
        double t = 0;
        for (int64_t ch = 0; ch < nch; ch++) t += part[ch];
        y[o] = (float)(t / div);
    }
}

static void sum_cols(const float *x, float *y, int64_t O, int64_t R, int64_t I, double div,
                     int nt) {
    int64_t w0 = tile_width(O, I, nt), nti = (I + w0 - 1) / w0;
    LM_PAR_FOR(nt > 1 && O * R * I > 65536, nt, t, O * nti, {
        int64_t o = t / nti, i0 = (t % nti) * w0, w = lm_min64(w0, I - i0);
        const float *xb = x + o * R * I + i0;
        double dacc[TILE_W];
        float facc[TILE_W];
        for (int64_t j = 0; j < w; j++) dacc[j] = 0;
        for (int64_t r0 = 0; r0 < R; r0 += 64) {
            int64_t r1 = lm_min64(R, r0 + 64);
            for (int64_t j = 0; j < w; j++) facc[j] = 0;
            for (int64_t r = r0; r < r1; r++) {
                const float *restrict row = xb + r * I;
                for (int64_t j = 0; j < w; j++) facc[j] += row[j];
            }
            for (int64_t j = 0; j < w; j++) dacc[j] += facc[j];
        }
        float *yo = y + o * I + i0;
        for (int64_t j = 0; j < w; j++) yo[j] = (float)(dacc[j] / div);
    });
}

static size_t ws_sum(const lm_kcall *c) {
    rlay L;
    rlay_make(&c->in[0], c->p, &L);
    return L.simple ? 0 : (size_t)c->out.n * sizeof(double);
}

static lm_status k_sum_mean(lm_kcall *c, bool mean) {
    const lm_tv *xt = &c->in[0];
    const float *x = lm_f(xt);
    float *y = lm_f(&c->out);
    int nt = c->env->nthreads;
    if (c->out.n == 0) return LM_OK;
    if (xt->n == 0) { /* reduced over a zero-sized axis: 0, or 0 / 0 for the mean */
        for (int64_t i = 0; i < c->out.n; i++) y[i] = mean ? NAN : 0.0f;
        return LM_OK;
    }
    rlay L;
    rlay_make(xt, c->p, &L);
    double div = mean ? (double)L.count : 1.0;
    if (L.simple && L.inner == 1) {
        sum_rows(x, y, L.outer, L.red, div, nt);
    } else if (L.simple) {
        sum_cols(x, y, L.outer, L.red, L.inner, div, nt);
    } else {
        double *acc = c->ws;
        memset(acc, 0, (size_t)c->out.n * sizeof *acc);
        odo o;
        odo_init(&o, &L);
        for (int64_t i = 0; i < xt->n; i++, odo_next(&o)) acc[o.off] += x[i];
        for (int64_t i = 0; i < c->out.n; i++) y[i] = (float)(acc[i] / div);
    }
    return LM_OK;
}

static lm_status k_sum(lm_kcall *c) {
    return k_sum_mean(c, false);
}
static lm_status k_mean(lm_kcall *c) {
    return k_sum_mean(c, true);
}

static lm_status infer_reduce(lm_infer *s) {
    bool mask[LM_MAX_DIMS];
    char a[96];
    if (s->in_dt[0] != LM_F32)
        return lm_infer_fail(s, LM_ERR_DTYPE, "needs a float32 input, got %s %s",
                             lm_dtype_name(s->in_dt[0]), lm_shp(s->in[0], a));
    lm_status st = axes_mask(s, s->p, s->in[0], mask);
    if (st) return st;
    if (s->node->op == LM_OP_MAX)
        for (int i = 0; i < s->in[0].ndim; i++)
            if (mask[i] && s->in[0].dims[i] == 0)
                return lm_infer_fail(s, LM_ERR_SHAPE,
                                     "cannot reduce over the zero-sized axis %d of input %s", i,
                                     lm_shp(s->in[0], a));
    s->out = reduced_shape(s->in[0], mask, s->p->keepdims);
    s->out_dt = LM_F32;
    return LM_OK;
}

/* ---- reduce_grad(gy, x): gy broadcast back over the reduced axes of x,
 * divided by the count for the mean ---- */

static lm_status infer_reduce_grad(lm_infer *s) {
    bool mask[LM_MAX_DIMS];
    char a[96], b[96];
    lm_status st = axes_mask(s, s->p, s->in[1], mask);
    if (st) return st;
    lm_shape want = reduced_shape(s->in[1], mask, s->p->keepdims);
    int64_t n1 = lm_shape_numel(want), n0 = lm_shape_numel(s->in[0]);
    if (n1 >= 0 && n0 >= 0 && n1 != n0)
        return lm_infer_fail(s, LM_ERR_SHAPE, "gradient %s does not fit input %s",
                             lm_shp(s->in[0], a), lm_shp(s->in[1], b));
    s->out = s->in[1];
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_reduce_grad(lm_kcall *c) {
    const float *gy = lm_f(&c->in[0]);
    float *gx = lm_f(&c->out);
    int nt = c->env->nthreads;
    if (c->out.n == 0) return LM_OK;
    rlay L;
    rlay_make(&c->in[1], c->p, &L);
    /* As JAX's transpose of the mean: gy / n, in float. */
    float cnt = (float)L.count;
    bool mean = c->p->kind == RK_MEAN;
    if (L.simple) {
        int64_t O = L.outer, R = L.red, I = L.inner;
        LM_PAR_FOR(nt > 1 && c->out.n > 65536, nt, t, O * R, {
            const float *restrict g = gy + (t / R) * I;
            float *restrict o = gx + t * I;
            if (mean)
                for (int64_t i = 0; i < I; i++) o[i] = g[i] / cnt;
            else
                for (int64_t i = 0; i < I; i++) o[i] = g[i];
        });
        return LM_OK;
    }
    odo o;
    odo_init(&o, &L);
    for (int64_t i = 0; i < c->out.n; i++, odo_next(&o)) gx[i] = mean ? gy[o.off] / cnt : gy[o.off];
    return LM_OK;
}

const lm_op_def lm_opdef_reduce_grad = {.name = "reduce_grad",
                                        .min_in = 2,
                                        .max_in = 2,
                                        .flags = LM_OPF_GRAD_ONLY,
                                        .infer = infer_reduce_grad,
                                        .kernel = {k_reduce_grad}};

static lm_status grad_sum_mean(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    lm_params p = n->p;
    p.kind = n->op == LM_OP_MEAN ? RK_MEAN : RK_SUM;
    lm_node *in[2] = {gy, n->in[0]};
    gx[0] = lm_node_make(g, LM_OP_REDUCE_GRAD, 2, in, &p);
    return LM_OK;
}

const lm_op_def lm_opdef_sum = {.name = "sum",
                                .min_in = 1,
                                .max_in = 1,
                                .infer = infer_reduce,
                                .ws_bytes = ws_sum,
                                .kernel = {k_sum},
                                .grad = grad_sum_mean};

const lm_op_def lm_opdef_mean = {.name = "mean",
                                 .min_in = 1,
                                 .max_in = 1,
                                 .infer = infer_reduce,
                                 .ws_bytes = ws_sum,
                                 .kernel = {k_mean},
                                 .grad = grad_sum_mean};

/* ---- max ---- */

static void max_rows(const float *x, float *y, int64_t O, int64_t R, int nt) {
    if (O >= nt || R < 65536) {
        LM_PAR_FOR(nt > 1 && O * R > 65536, nt, o, O, { y[o] = lm_row_max(x + o * R, R); });
        return;
    }
    int64_t nch = NCHUNK_MAX, len = (R + nch - 1) / nch;
    for (int64_t o = 0; o < O; o++) {
        const float *xr = x + o * R;
        float part[NCHUNK_MAX];
        LM_PAR_FOR(nt > 1, nt, ch, nch, {
            int64_t b = ch * len, e = lm_min64(R, b + len);
            part[ch] = lm_row_max(xr + b, b < e ? e - b : 0);
        });
        float m = part[0];
        for (int64_t ch = 1; ch < nch; ch++) m = lm_max_nan(m, part[ch]);
        y[o] = m;
    }
}

static void max_cols(const float *x, float *y, int64_t O, int64_t R, int64_t I, int nt) {
    int64_t w0 = tile_width(O, I, nt), nti = (I + w0 - 1) / w0;
    LM_PAR_FOR(nt > 1 && O * R * I > 65536, nt, t, O * nti, {
        int64_t o = t / nti, i0 = (t % nti) * w0, w = lm_min64(w0, I - i0);
        const float *xb = x + o * R * I + i0;
        float *restrict m = y + o * I + i0;
        for (int64_t j = 0; j < w; j++) m[j] = xb[j];
        for (int64_t r = 1; r < R; r++) {
            const float *restrict row = xb + r * I;
            LM_SIMD
            for (int64_t j = 0; j < w; j++) m[j] = lm_max_nan(m[j], row[j]);
        }
    });
}

static lm_status k_max(lm_kcall *c) {
    const lm_tv *xt = &c->in[0];
    const float *x = lm_f(xt);
    float *y = lm_f(&c->out);
    if (c->out.n == 0) return LM_OK;
    rlay L;
    rlay_make(xt, c->p, &L);
    if (L.simple && L.inner == 1) {
        max_rows(x, y, L.outer, L.red, c->env->nthreads);
    } else if (L.simple) {
        max_cols(x, y, L.outer, L.red, L.inner, c->env->nthreads);
    } else {
        for (int64_t i = 0; i < c->out.n; i++) y[i] = -INFINITY;
        odo o;
        odo_init(&o, &L);
        for (int64_t i = 0; i < xt->n; i++, odo_next(&o)) y[o.off] = lm_max_nan(y[o.off], x[i]);
    }
    return LM_OK;
}

/* ---- max_grad(gy, x, y): gy to the positions holding the max, split equally
 * among ties (as jax.grad of jnp.max); ws holds the tie counts ---- */

static lm_status infer_max_grad(lm_infer *s) {
    lm_status st = infer_reduce_grad(s);
    if (st) return st;
    char a[96], b[96];
    int64_t n2 = lm_shape_numel(s->in[2]), n0 = lm_shape_numel(s->in[0]);
    if (n2 >= 0 && n0 >= 0 && n2 != n0)
        return lm_infer_fail(s, LM_ERR_SHAPE, "gradient %s and max %s differ", lm_shp(s->in[0], a),
                             lm_shp(s->in[2], b));
    return LM_OK;
}

static size_t ws_max_grad(const lm_kcall *c) {
    return (size_t)c->in[0].n * sizeof(float);
}

static lm_status k_max_grad(lm_kcall *c) {
    const float *gy = lm_f(&c->in[0]), *x = lm_f(&c->in[1]), *y = lm_f(&c->in[2]);
    float *gx = lm_f(&c->out), *cnt = c->ws;
    int64_t ny = c->in[0].n;
    int nt = c->env->nthreads;
    if (c->out.n == 0) return LM_OK;
    rlay L;
    rlay_make(&c->in[1], c->p, &L);
    memset(cnt, 0, (size_t)ny * sizeof *cnt);
    if (L.simple) {
        int64_t O = L.outer, R = L.red, I = L.inner;
        LM_PAR_FOR(nt > 1 && c->out.n > 65536, nt, o, O, {
            for (int64_t r = 0; r < R; r++) {
                const float *restrict xr = x + (o * R + r) * I, *restrict yo = y + o * I;
                float *restrict co = cnt + o * I;
                for (int64_t i = 0; i < I; i++) co[i] += xr[i] == yo[i] ? 1.0f : 0.0f;
            }
        });
        for (int64_t i = 0; i < ny; i++) cnt[i] = cnt[i] > 0 ? gy[i] / cnt[i] : 0.0f;
        LM_PAR_FOR(nt > 1 && c->out.n > 65536, nt, t, O * R, {
            int64_t o = t / R;
            const float *restrict xr = x + t * I, *restrict yo = y + o * I,
                                  *restrict go = cnt + o * I;
            float *restrict gr = gx + t * I;
            for (int64_t i = 0; i < I; i++) gr[i] = lm_vsel(xr[i] == yo[i], go[i], 0.0f);
        });
        return LM_OK;
    }
    odo o;
    odo_init(&o, &L);
    for (int64_t i = 0; i < c->out.n; i++, odo_next(&o)) cnt[o.off] += x[i] == y[o.off];
    for (int64_t i = 0; i < ny; i++) cnt[i] = cnt[i] > 0 ? gy[i] / cnt[i] : 0.0f;
    odo_init(&o, &L);
    for (int64_t i = 0; i < c->out.n; i++, odo_next(&o))
        gx[i] = x[i] == y[o.off] ? cnt[o.off] : 0.0f;
    return LM_OK;
}

const lm_op_def lm_opdef_max_grad = {.name = "max_grad",
                                     .min_in = 3,
                                     .max_in = 3,
                                     .flags = LM_OPF_GRAD_ONLY,
                                     .infer = infer_max_grad,
                                     .ws_bytes = ws_max_grad,
                                     .kernel = {k_max_grad}};

static lm_status grad_max(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    lm_node *in[3] = {gy, n->in[0], n};
    gx[0] = lm_node_make(g, LM_OP_MAX_GRAD, 3, in, &n->p);
    return LM_OK;
}

const lm_op_def lm_opdef_max = {.name = "max",
                                .min_in = 1,
                                .max_in = 1,
                                .infer = infer_reduce,
                                .kernel = {k_max},
                                .grad = grad_max};

/* ---- argmax over one axis (int64; the first of equal maxima, or the first
 * NaN, as jnp.argmax) ---- */

static lm_status infer_argmax(lm_infer *s) {
    char a[96];
    lm_shape x = s->in[0];
    if (s->in_dt[0] != LM_F32)
        return lm_infer_fail(s, LM_ERR_DTYPE, "needs a float32 input, got %s %s",
                             lm_dtype_name(s->in_dt[0]), lm_shp(x, a));
    int ax = s->p->axis < 0 ? s->p->axis + x.ndim : s->p->axis;
    if (ax < 0 || ax >= x.ndim)
        return lm_infer_fail(s, LM_ERR_ARG, "axis %d is out of range for input %s", s->p->axis,
                             lm_shp(x, a));
    if (x.dims[ax] == 0)
        return lm_infer_fail(s, LM_ERR_SHAPE,
                             "cannot take argmax over the zero-sized axis %d of %s", ax,
                             lm_shp(x, a));
    s->out.ndim = 0;
    for (int i = 0; i < x.ndim; i++)
        if (i != ax) s->out.dims[s->out.ndim++] = x.dims[i];
    s->out_dt = LM_I64;
    return LM_OK;
}

static lm_status k_argmax(lm_kcall *c) {
    const lm_tv *xt = &c->in[0];
    const float *x = lm_f(xt);
    int64_t *y = c->out.p;
    int ax = c->p->axis < 0 ? c->p->axis + xt->ndim : c->p->axis;
    int64_t O = 1, R = xt->d[ax], I = 1;
    for (int i = 0; i < ax; i++) O *= xt->d[i];
    for (int i = ax + 1; i < xt->ndim; i++) I *= xt->d[i];
    int nt = c->env->nthreads;
    if (c->out.n == 0) return LM_OK;
    LM_PAR_FOR(nt > 1 && xt->n > 65536, nt, t, O * I, {
        int64_t o = t / I, i = t % I;
        const float *xp = x + o * R * I + i;
        int64_t best = 0;
        float bv = xp[0];
        for (int64_t r = 1; r < R && bv == bv; r++) {
            float v = xp[r * I];
            if (v > bv || v != v) {
                bv = v;
                best = r;
            }
        }
        y[t] = best;
    });
    return LM_OK;
}

const lm_op_def lm_opdef_argmax = {.name = "argmax",
                                   .min_in = 1,
                                   .max_in = 1,
                                   .flags = LM_OPF_NONDIFF,
                                   .infer = infer_argmax,
                                   .kernel = {k_argmax}};

/* ---- constructors ---- */

static lm_node *make_reduce(lm_graph *g, int op, const char *name, lm_node *x, int n_axes,
                            const int *axes, bool keepdims) {
    if (!g) return NULL;
    if (x && (n_axes < 0 || n_axes > LM_MAX_DIMS || (n_axes > 0 && !axes))) {
        char a[96];
        return lm_graph_fail(g, LM_ERR_ARG, "%s: invalid axes (n_axes %d%s) for input %s", name,
                             n_axes, n_axes > 0 && !axes ? ", axes NULL" : "", lm_shp(x->shape, a));
    }
    lm_params p = lm_params_zero();
    p.naxes = x ? n_axes : 0;
    for (int i = 0; i < p.naxes; i++) p.axes[i] = axes[i];
    p.keepdims = keepdims;
    return lm_node_make(g, op, 1, &x, &p);
}

lm_node *lm_op_sum(lm_graph *g, lm_node *x, int n_axes, const int *axes, bool keepdims) {
    return make_reduce(g, LM_OP_SUM, "sum", x, n_axes, axes, keepdims);
}

lm_node *lm_op_mean(lm_graph *g, lm_node *x, int n_axes, const int *axes, bool keepdims) {
    return make_reduce(g, LM_OP_MEAN, "mean", x, n_axes, axes, keepdims);
}

lm_node *lm_op_max(lm_graph *g, lm_node *x, int n_axes, const int *axes, bool keepdims) {
    return make_reduce(g, LM_OP_MAX, "max", x, n_axes, axes, keepdims);
}

lm_node *lm_op_argmax(lm_graph *g, lm_node *x, int axis) {
    lm_params p = lm_params_zero();
    p.axis = axis;
    return lm_node_make(g, LM_OP_ARGMAX, 1, &x, &p);
}

/* Mean or max over axes 1 .. ndim-2 of (N, ..., C). */
static lm_node *global_pool(lm_graph *g, lm_node *x, int op, const char *name) {
    if (!g) return NULL;
    if (!x) return lm_node_make(g, op, 1, &x, NULL); /* sticky error, or "input is NULL" */
    char a[96];
    if (x->shape.ndim < 3)
        return lm_graph_fail(g, LM_ERR_SHAPE,
                             "%s: input %s needs at least 3 dimensions (batch, ..., channels)",
                             name, lm_shp(x->shape, a));
    int axes[LM_MAX_DIMS];
    for (int i = 1; i < x->shape.ndim - 1; i++) axes[i - 1] = i;
    return make_reduce(g, op, name, x, x->shape.ndim - 2, axes, false);
}

lm_node *lm_op_global_avg_pool(lm_graph *g, lm_node *x) {
    return global_pool(g, x, LM_OP_MEAN, "global_avg_pool");
}

lm_node *lm_op_global_max_pool(lm_graph *g, lm_node *x) {
    return global_pool(g, x, LM_OP_MAX, "global_max_pool");
}
