/* Shape ops: transpose, slice, pad, concat, repeat and their backward helpers
 * (slice_grad, concat_grad, repeat_grad). They only move bytes, so the
 * kernels work on every dtype through its element size; only repeat_grad
 * does arithmetic (float32).
 *
 * Params: transpose perm; slice begin/size (size -1: to the end; with a 2nd
 * input, the sizes are that input's shape); slice_grad begin; pad begin =
 * before, size = after, f[0] = value; concat axis; concat_grad axis, kind
 * (0: offset counted from the start, 1: from the end), begin[0] = the known
 * part of the offset; repeat depth = copies. */
#include "graph/graph_impl.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Bytes a kernel moves before it is worth spreading over threads. */
#define PAR_BYTES ((int64_t)1 << 18)

static int64_t prod(const int64_t *d, int n) {
    int64_t p = 1;
    for (int i = 0; i < n; i++) p *= d[i];
    return p;
}

/* "(1, 2, 3)" for messages. */
static const char *ivec(const int64_t *v, int n, char buf[static 96]) {
    int k = snprintf(buf, 96, "(");
    for (int i = 0; i < n && k < 80; i++)
        k += snprintf(buf + k, (size_t)(96 - k), i ? ", %lld" : "%lld", (long long)v[i]);
    if (k < 94) snprintf(buf + k, (size_t)(96 - k), n == 1 ? ",)" : ")");
    return buf;
}

/* A constructor argument error, prefixed like inference errors. */
static lm_node *arg_fail(lm_graph *g, const char *op, const char *fmt, ...) LM_PRINTF(3, 4);
static lm_node *arg_fail(lm_graph *g, const char *op, const char *fmt, ...) {
    char msg[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lm_graph_fail(g, LM_ERR_ARG, "%s%s%s: %s", g->scope, g->scope[0] ? "/" : "", op, msg);
}

static lm_shape tv_shape(const lm_tv *t) {
    lm_shape s = {t->ndim, {0}};
    memcpy(s.dims, t->d, sizeof(int64_t) * (size_t)t->ndim);
    return s;
}

/* Copies the box of shape s at offset b inside a contiguous tensor of shape
 * d to (to_big) or from a contiguous tensor of shape s. */
static void box_copy(char *big, const int64_t *d, char *small, const int64_t *s, const int64_t *b,
                     int nd, size_t es, bool to_big, int nt) {
    (void)nt; /* unused without OpenMP */
    int64_t sn = prod(s, nd);
    if (sn == 0) return;
    /* Axes after k are whole, so each row of the box is one contiguous run. */
    int k = nd - 1;
    while (k >= 0 && s[k] == d[k]) k--;
    if (k < 0) {
        if (to_big)
            memcpy(big, small, (size_t)sn * es);
        else
            memcpy(small, big, (size_t)sn * es);
        return;
    }
    int64_t bstr[LM_MAX_DIMS];
    bstr[nd - 1] = 1;
    for (int i = nd - 2; i >= 0; i--) bstr[i] = bstr[i + 1] * d[i + 1];
    int64_t run = s[k] * bstr[k], rows = sn / run;
    size_t rb = (size_t)run * es;
#pragma omp parallel for num_threads(nt) if (nt > 1 && rows > 1 && sn * (int64_t)es > PAR_BYTES)   \
    schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = b[k] * bstr[k], q = r;
        for (int i = k - 1; i >= 0; i--) {
            off += (b[i] + q % s[i]) * bstr[i];
            q /= s[i];
        }
        char *bp = big + (size_t)off * es, *sp = small + (size_t)r * rb;
        if (to_big)
            memcpy(bp, sp, rb);
        else
            memcpy(sp, bp, rb);
    }
}

/* ---- transpose ---- */

/* Axis perm[i] normalised, or -1 when out of range. */
static int perm_axis(const int *perm, int i, int nd) {
    int a = perm[i] < 0 ? perm[i] + nd : perm[i];
    return a >= 0 && a < nd ? a : -1;
}

static lm_status infer_transpose(lm_infer *s) {
    char a[96], b[96];
    lm_shape x = s->in[0];
    int64_t pv[LM_MAX_DIMS];
    bool used[LM_MAX_DIMS] = {false}, ok = true;
    for (int i = 0; i < x.ndim; i++) {
        pv[i] = s->p->perm[i];
        int ax = perm_axis(s->p->perm, i, x.ndim);
        if (ax < 0 || used[ax])
            ok = false;
        else
            used[ax] = true;
    }
    if (!ok)
        return lm_infer_fail(s, LM_ERR_ARG, "perm %s is not a permutation of the axes of input %s",
                             ivec(pv, x.ndim, b), lm_shp(x, a));
    s->out.ndim = x.ndim;
    for (int i = 0; i < x.ndim; i++) s->out.dims[i] = x.dims[perm_axis(s->p->perm, i, x.ndim)];
    s->out_dt = s->in_dt[0];
    return LM_OK;
}

/* A transpose reduced to its essentials: unit axes dropped and axes that stay
 * neighbours merged. od: output dims, is: input stride of each output axis. */
typedef struct tp_plan {
    int m;
    int64_t od[LM_MAX_DIMS], is[LM_MAX_DIMS], os[LM_MAX_DIMS];
} tp_plan;

static void tp_simplify(const lm_tv *x, const int *perm, tp_plan *t) {
    int nd = x->ndim, q[LM_MAX_DIMS], r = 0;
    for (int i = 0; i < nd; i++) {
        int a = perm_axis(perm, i, nd);
        if (x->d[a] != 1) q[r++] = a; /* output order of the non-unit input axes */
    }
    int64_t istr[LM_MAX_DIMS];
    istr[nd > 0 ? nd - 1 : 0] = 1;
    for (int a = nd - 2; a >= 0; a--) istr[a] = istr[a + 1] * x->d[a + 1];
    /* Groups of output axes that are adjacent in the input's memory. */
    int gstart[LM_MAX_DIMS], glen[LM_MAX_DIMS], m = 0;
    for (int i = 0; i < r; i++) {
        if (i && istr[q[i - 1]] == istr[q[i]] * x->d[q[i]]) {
            glen[m - 1]++;
        } else {
            gstart[m] = i;
            glen[m++] = 1;
        }
    }
    t->m = m;
    for (int j = 0; j < m; j++) {
        int last = q[gstart[j] + glen[j] - 1];
        t->od[j] = 1;
        for (int k = 0; k < glen[j]; k++) t->od[j] *= x->d[q[gstart[j] + k]];
        t->is[j] = istr[last]; /* a merged group steps like its innermost axis */
    }
    if (m) t->os[m - 1] = 1;
    for (int j = m - 2; j >= 0; j--) t->os[j] = t->os[j + 1] * t->od[j + 1];
}

/* Output rows that are contiguous runs of the input. */
static void tp_rows(const char *in, char *out, const tp_plan *t, size_t es, int nt) {
    (void)nt;
    int m = t->m;
    int64_t inner = t->od[m - 1], rows = 1;
    for (int j = 0; j < m - 1; j++) rows *= t->od[j];
    size_t rb = (size_t)inner * es;
#pragma omp parallel for num_threads(nt) if (nt > 1 && rows * (int64_t)rb > PAR_BYTES)             \
    schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = 0, q = r;
        for (int j = m - 2; j >= 0; j--) {
            off += (q % t->od[j]) * t->is[j];
            q /= t->od[j];
        }
        memcpy(out + (size_t)r * rb, in + (size_t)off * es, rb);
    }
}

/* One tile: rows [a0, a1) of output axis a (input stride 1) by columns
 * [l0, l1) of the last output axis (output stride 1). */
#define TP_TILE 32
#define DEFINE_TILE(SUF, T)                                                                        \
    static void tile_##SUF(const void *vin, void *vout, int64_t a0, int64_t a1, int64_t l0,        \
                           int64_t l1, int64_t oa, int64_t sl) {                                   \
        const T *in = vin;                                                                         \
        T *out = vout;                                                                             \
        for (int64_t ia = a0; ia < a1; ia++) {                                                     \
            const T *restrict src = in + ia;                                                       \
            T *restrict dst = out + ia * oa;                                                       \
            for (int64_t il = l0; il < l1; il++) dst[il] = src[il * sl];                           \
        }                                                                                          \
    }
DEFINE_TILE(u8, uint8_t)
DEFINE_TILE(u16, uint16_t)
DEFINE_TILE(u32, uint32_t)
DEFINE_TILE(u64, uint64_t)

/* In src/ops/shape_avx2.c, same contract as tile_u32. */
void lm_transpose_tile_f32_avx2(const void *vin, void *vout, int64_t a0, int64_t a1, int64_t l0,
                                int64_t l1, int64_t oa, int64_t sl);

static void tp_tiled(const char *in, char *out, const tp_plan *t, int a, size_t es, lm_isa isa,
                     int nt) {
    (void)nt;
    void (*tile)(const void *, void *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t) =
        es == 1   ? tile_u8
        : es == 2 ? tile_u16
        : es == 4 ? tile_u32
                  : tile_u64;
    if (es == 4 && isa >= LM_ISA_AVX2) tile = lm_transpose_tile_f32_avx2;
    int m = t->m, l = m - 1;
    int64_t na = t->od[a], nl = t->od[l];
    int64_t ta = (na + TP_TILE - 1) / TP_TILE, tl = (nl + TP_TILE - 1) / TP_TILE, outer = 1;
    for (int j = 0; j < m; j++)
        if (j != a && j != l) outer *= t->od[j];
    int64_t tiles = outer * ta * tl;
#pragma omp parallel for num_threads(nt) if (nt > 1 && outer * na * nl * (int64_t)es > PAR_BYTES)  \
    schedule(static)
    for (int64_t k = 0; k < tiles; k++) {
        int64_t l0 = (k % tl) * TP_TILE, a0 = (k / tl % ta) * TP_TILE, o = k / tl / ta;
        int64_t ioff = 0, ooff = 0;
        for (int j = m - 1; j >= 0; j--) {
            if (j == a || j == l) continue;
            int64_t ix = o % t->od[j];
            o /= t->od[j];
            ioff += ix * t->is[j];
            ooff += ix * t->os[j];
        }
        tile(in + (size_t)ioff * es, out + (size_t)ooff * es, a0,
             a0 + TP_TILE < na ? a0 + TP_TILE : na, l0, l0 + TP_TILE < nl ? l0 + TP_TILE : nl,
             t->os[a], t->is[l]);
    }
}

static lm_status k_transpose(lm_kcall *c) {
    const lm_tv *x = &c->in[0];
    size_t es = lm_dtype_size(x->dt);
    int nt = c->env->nthreads;
    if (x->n == 0) return LM_OK;
    tp_plan t;
    tp_simplify(x, c->p->perm, &t);
    if (t.m <= 1) {
        memcpy(c->out.p, x->p, (size_t)x->n * es);
    } else if (t.is[t.m - 1] == 1) {
        tp_rows(x->p, c->out.p, &t, es, nt);
    } else {
        int a = 0; /* the output axis that is the input's innermost */
        while (t.is[a] != 1) a++;
        tp_tiled(x->p, c->out.p, &t, a, es, c->env->isa, nt);
    }
    return LM_OK;
}

static lm_status grad_transpose(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    int nd = n->shape.ndim, inv[LM_MAX_DIMS];
    for (int i = 0; i < nd; i++) inv[perm_axis(n->p.perm, i, nd)] = i;
    gx[0] = lm_op_transpose(g, gy, inv);
    return LM_OK;
}

const lm_op_def lm_opdef_transpose = {.name = "transpose",
                                      .min_in = 1,
                                      .max_in = 1,
                                      .infer = infer_transpose,
                                      .kernel = {k_transpose},
                                      .grad = grad_transpose};

lm_node *lm_op_transpose(lm_graph *g, lm_node *x, const int *perm) {
    if (!g) return NULL;
    lm_params p = lm_params_zero();
    if (x) {
        int nd = x->shape.ndim;
        for (int i = 0; i < nd; i++) p.perm[i] = perm ? perm[i] : nd - 1 - i;
    }
    return lm_node_make(g, LM_OP_TRANSPOSE, 1, &x, &p);
}

/* ---- slice and its backward, slice_grad ---- */

static lm_status infer_slice(lm_infer *s) {
    char a[96], b[96], c[96];
    lm_shape x = s->in[0];
    const int64_t *bg = s->p->begin, *sz = s->p->size;
    bool like = s->n_in == 2;
    if (like && s->in[1].ndim != x.ndim)
        return lm_infer_fail(s, LM_ERR_SHAPE, "input %s and size source %s differ in rank",
                             lm_shp(x, a), lm_shp(s->in[1], b));
    s->out.ndim = x.ndim;
    for (int i = 0; i < x.ndim; i++) {
        int64_t z = like ? s->in[1].dims[i] : sz[i], d = x.dims[i];
        if (bg[i] < 0 || (!like && z < -1) || (d >= 0 && (bg[i] > d || (z >= 0 && bg[i] + z > d))))
            return lm_infer_fail(s, LM_ERR_SHAPE, "begin %s size %s is out of range for input %s",
                                 ivec(bg, x.ndim, a),
                                 like ? lm_shp(s->in[1], b) : ivec(sz, x.ndim, b), lm_shp(x, c));
        s->out.dims[i] = z >= 0 || d < 0 || like ? z : d - bg[i];
    }
    s->out_dt = s->in_dt[0];
    return LM_OK;
}

static lm_status k_slice(lm_kcall *c) {
    const lm_tv *x = &c->in[0];
    box_copy(x->p, x->d, c->out.p, c->out.d, c->p->begin, x->ndim, lm_dtype_size(x->dt), false,
             c->env->nthreads);
    return LM_OK;
}

static lm_node *slice_grad(lm_graph *g, lm_node *gy, lm_node *x, const int64_t *begin) {
    lm_params p = lm_params_zero();
    memcpy(p.begin, begin, sizeof p.begin);
    lm_node *in[2] = {gy, x};
    return lm_node_make(g, LM_OP_SLICE_GRAD, 2, in, &p);
}

static lm_status grad_slice(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    gx[0] = slice_grad(g, gy, n->in[0], n->p.begin);
    return LM_OK;
}

const lm_op_def lm_opdef_slice = {.name = "slice",
                                  .min_in = 1,
                                  .max_in = 2,
                                  .infer = infer_slice,
                                  .kernel = {k_slice},
                                  .grad = grad_slice};

lm_node *lm_op_slice(lm_graph *g, lm_node *x, const int64_t *begin, const int64_t *size) {
    if (!g) return NULL;
    lm_params p = lm_params_zero();
    if (x) {
        char a[96];
        if (!begin || !size)
            return arg_fail(g, "slice", "begin or size is NULL (input %s)", lm_shp(x->shape, a));
        memcpy(p.begin, begin, sizeof(int64_t) * (size_t)x->shape.ndim);
        memcpy(p.size, size, sizeof(int64_t) * (size_t)x->shape.ndim);
    }
    return lm_node_make(g, LM_OP_SLICE, 1, &x, &p);
}

/* x[begin : begin + like.shape]: the sizes are only known at run time. */
static lm_node *slice_like(lm_graph *g, lm_node *x, const int64_t *begin, lm_node *like) {
    lm_params p = lm_params_zero();
    memcpy(p.begin, begin, sizeof p.begin);
    lm_node *in[2] = {x, like};
    return lm_node_make(g, LM_OP_SLICE, 2, in, &p);
}

/* slice_grad(gy, x): zeros shaped like x with gy placed at begin. */
static lm_status infer_slice_grad(lm_infer *s) {
    char a[96], b[96], c[96];
    lm_shape gy = s->in[0], x = s->in[1];
    bool ok = gy.ndim == x.ndim;
    for (int i = 0; ok && i < x.ndim; i++)
        if (s->p->begin[i] < 0 ||
            (gy.dims[i] >= 0 && x.dims[i] >= 0 && s->p->begin[i] + gy.dims[i] > x.dims[i]))
            ok = false;
    if (!ok)
        return lm_infer_fail(s, LM_ERR_SHAPE, "gradient %s at begin %s does not fit input %s",
                             lm_shp(gy, a), ivec(s->p->begin, x.ndim, b), lm_shp(x, c));
    s->out = x;
    s->out_dt = s->in_dt[0];
    return LM_OK;
}

static lm_status k_slice_grad(lm_kcall *c) {
    const lm_tv *gy = &c->in[0];
    size_t es = lm_dtype_size(c->out.dt);
    memset(c->out.p, 0, (size_t)c->out.n * es);
    box_copy(c->out.p, c->out.d, gy->p, gy->d, c->p->begin, gy->ndim, es, true, c->env->nthreads);
    return LM_OK;
}

const lm_op_def lm_opdef_slice_grad = {.name = "slice_grad",
                                       .min_in = 2,
                                       .max_in = 2,
                                       .flags = LM_OPF_GRAD_ONLY,
                                       .infer = infer_slice_grad,
                                       .kernel = {k_slice_grad}};

/* ---- pad ---- */

static lm_status infer_pad(lm_infer *s) {
    char a[96], b[96], c[96];
    lm_shape x = s->in[0];
    s->out = x;
    for (int i = 0; i < x.ndim; i++) {
        if (s->p->begin[i] < 0 || s->p->size[i] < 0)
            return lm_infer_fail(s, LM_ERR_ARG, "negative padding: before %s after %s for input %s",
                                 ivec(s->p->begin, x.ndim, a), ivec(s->p->size, x.ndim, b),
                                 lm_shp(x, c));
        if (x.dims[i] >= 0) s->out.dims[i] = x.dims[i] + s->p->begin[i] + s->p->size[i];
    }
    s->out_dt = s->in_dt[0];
    return LM_OK;
}

static void fill_value(lm_tv *y, double v) {
    int64_t n = y->n;
    switch (y->dt) {
    case LM_F32: {
        float *p = y->p, f = (float)v;
        for (int64_t i = 0; i < n; i++) p[i] = f;
        break;
    }
    case LM_F64: {
        double *p = y->p;
        for (int64_t i = 0; i < n; i++) p[i] = v;
        break;
    }
    case LM_I32: {
        int32_t *p = y->p, f = (int32_t)v;
        for (int64_t i = 0; i < n; i++) p[i] = f;
        break;
    }
    case LM_I64: {
        int64_t *p = y->p, f = (int64_t)v;
        for (int64_t i = 0; i < n; i++) p[i] = f;
        break;
    }
    default:
        memset(y->p, (uint8_t)v, (size_t)n);
        break;
    }
}

static lm_status k_pad(lm_kcall *c) {
    const lm_tv *x = &c->in[0];
    fill_value(&c->out, c->p->f[0]);
    box_copy(c->out.p, c->out.d, x->p, x->d, c->p->begin, x->ndim, lm_dtype_size(x->dt), true,
             c->env->nthreads);
    return LM_OK;
}

static lm_status grad_pad(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    gx[0] = slice_like(g, gy, n->p.begin, n->in[0]);
    return LM_OK;
}

const lm_op_def lm_opdef_pad = {.name = "pad",
                                .min_in = 1,
                                .max_in = 1,
                                .infer = infer_pad,
                                .kernel = {k_pad},
                                .grad = grad_pad};

lm_node *lm_op_pad(lm_graph *g, lm_node *x, const int64_t *before, const int64_t *after,
                   float value) {
    if (!g) return NULL;
    lm_params p = lm_params_zero();
    p.f[0] = value;
    if (x) {
        char a[96];
        if (!before || !after)
            return arg_fail(g, "pad", "before or after is NULL (input %s)", lm_shp(x->shape, a));
        memcpy(p.begin, before, sizeof(int64_t) * (size_t)x->shape.ndim);
        memcpy(p.size, after, sizeof(int64_t) * (size_t)x->shape.ndim);
    }
    return lm_node_make(g, LM_OP_PAD, 1, &x, &p);
}

/* ---- concat and its backward, concat_grad ---- */

/* "(2, 3), (2, 4)": every input shape, for messages. */
static const char *shapes_list(const lm_infer *s, int from, char *buf, size_t len) {
    size_t k = 0;
    buf[0] = '\0';
    for (int i = from; i < s->n_in && k + 4 < len; i++) {
        char b[96];
        int w = snprintf(buf + k, len - k, "%s%s", i > from ? ", " : "", lm_shp(s->in[i], b));
        if (w < 0) break;
        k += (size_t)w;
    }
    return buf;
}

static lm_status infer_concat(lm_infer *s) {
    char all[800];
    lm_shape x0 = s->in[0];
    int ax;
    if (x0.ndim == 0)
        return lm_infer_fail(s, LM_ERR_SHAPE, "cannot join scalars (inputs %s)",
                             shapes_list(s, 0, all, sizeof all));
    if (lm_infer_axis(s, s->p->axis, x0.ndim, &ax)) {
        return lm_infer_fail(s, LM_ERR_ARG, "axis %d is out of range for inputs %s", s->p->axis,
                             shapes_list(s, 0, all, sizeof all));
    }
    lm_shape out = x0;
    out.dims[ax] = 0;
    for (int i = 0; i < s->n_in; i++) {
        lm_shape xi = s->in[i];
        if (s->in_dt[i] != s->in_dt[0])
            return lm_infer_fail(s, LM_ERR_DTYPE, "input %d is %s, input 0 is %s (inputs %s)", i,
                                 lm_dtype_name(s->in_dt[i]), lm_dtype_name(s->in_dt[0]),
                                 shapes_list(s, 0, all, sizeof all));
        bool ok = xi.ndim == x0.ndim;
        for (int d = 0; ok && d < x0.ndim; d++) {
            if (d == ax) continue;
            if (xi.dims[d] >= 0 && out.dims[d] >= 0 && xi.dims[d] != out.dims[d])
                ok = false;
            else if (out.dims[d] < 0)
                out.dims[d] = xi.dims[d];
        }
        if (!ok)
            return lm_infer_fail(s, LM_ERR_SHAPE,
                                 "inputs %s differ on an axis other than the joined axis %d",
                                 shapes_list(s, 0, all, sizeof all), ax);
        out.dims[ax] = out.dims[ax] < 0 || xi.dims[ax] < 0 ? -1 : out.dims[ax] + xi.dims[ax];
    }
    s->out = out;
    s->out_dt = s->in_dt[0];
    return LM_OK;
}

static lm_status k_concat(lm_kcall *c) {
    int ax = c->p->axis < 0 ? c->p->axis + c->out.ndim : c->p->axis;
    size_t es = lm_dtype_size(c->out.dt);
    int64_t b[LM_MAX_DIMS] = {0};
    for (int i = 0; i < c->n_in; i++) {
        const lm_tv *x = &c->in[i];
        box_copy(c->out.p, c->out.d, x->p, x->d, b, x->ndim, es, true, c->env->nthreads);
        b[ax] += x->d[ax];
    }
    return LM_OK;
}

/* concat_grad(gy, x_i, extra...): the part of gy that came from x_i. Its
 * offset along the axis is begin[0] plus the sizes of the extra inputs
 * (counted from the start), or what remains once they, begin[0] and x_i are
 * taken from the end (kind 1). The extra inputs are the other concat inputs
 * whose size is unknown at build time. */
static int64_t concat_offset(const lm_params *p, const lm_shape *in, int n_in, int ax) {
    int64_t off = p->begin[0];
    for (int j = 2; j < n_in; j++) off += in[j].dims[ax];
    if (p->kind == 1) off = in[0].dims[ax] - off - in[1].dims[ax];
    return off;
}

static lm_status infer_concat_grad(lm_infer *s) {
    char all[800];
    lm_shape gy = s->in[0], x = s->in[1];
    int ax;
    if (lm_infer_axis(s, s->p->axis, x.ndim, &ax)) return LM_ERR_ARG;
    bool ok = gy.ndim == x.ndim, known = true;
    for (int j = 0; j < s->n_in; j++)
        if (s->in[j].ndim != x.ndim || s->in[j].dims[ax] < 0) known = false;
    if (ok && known) {
        int64_t off = concat_offset(s->p, s->in, s->n_in, ax);
        ok = off >= 0 && off + x.dims[ax] <= gy.dims[ax];
    }
    if (!ok)
        return lm_infer_fail(s, LM_ERR_SHAPE, "gradient and inputs %s do not fit along axis %d",
                             shapes_list(s, 0, all, sizeof all), ax);
    s->out = x;
    s->out_dt = s->in_dt[0];
    return LM_OK;
}

static lm_status k_concat_grad(lm_kcall *c) {
    const lm_tv *gy = &c->in[0];
    int ax = c->p->axis < 0 ? c->p->axis + gy->ndim : c->p->axis;
    lm_shape in[8];
    for (int j = 0; j < c->n_in; j++) in[j] = tv_shape(&c->in[j]);
    int64_t b[LM_MAX_DIMS] = {0};
    b[ax] = concat_offset(c->p, in, c->n_in, ax);
    box_copy(gy->p, gy->d, c->out.p, c->out.d, b, gy->ndim, lm_dtype_size(gy->dt), false,
             c->env->nthreads);
    return LM_OK;
}

const lm_op_def lm_opdef_concat_grad = {.name = "concat_grad",
                                        .min_in = 2,
                                        .max_in = LM_MAX_INPUTS,
                                        .flags = LM_OPF_GRAD_ONLY,
                                        .infer = infer_concat_grad,
                                        .kernel = {k_concat_grad}};

static lm_status grad_concat(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    int k = n->n_in, ax = n->p.axis < 0 ? n->p.axis + n->shape.ndim : n->p.axis;
    if (k == 1) {
        gx[0] = gy;
        return LM_OK;
    }
    for (int i = 0; i < k; i++) {
        /* Count from the side with fewer unknown sizes: at most 3 extra inputs. */
        int unk[2] = {0, 0};
        for (int j = 0; j < k; j++)
            if (j != i && n->in[j]->shape.dims[ax] < 0) unk[j > i]++;
        int side = unk[1] < unk[0];
        lm_params p = lm_params_zero();
        p.axis = ax;
        p.kind = side;
        lm_node *in[LM_MAX_INPUTS] = {gy, n->in[i]};
        int m = 2;
        for (int j = side ? i + 1 : 0; j < (side ? k : i); j++) {
            int64_t d = n->in[j]->shape.dims[ax];
            if (d >= 0)
                p.begin[0] += d;
            else
                in[m++] = n->in[j];
        }
        gx[i] = lm_node_make(g, LM_OP_CONCAT_GRAD, m, in, &p);
    }
    return LM_OK;
}

const lm_op_def lm_opdef_concat = {.name = "concat",
                                   .min_in = 1,
                                   .max_in = LM_MAX_INPUTS,
                                   .infer = infer_concat,
                                   .kernel = {k_concat},
                                   .grad = grad_concat};

lm_node *lm_op_concat(lm_graph *g, int n, lm_node *const *xs, int axis) {
    if (!g) return NULL;
    if (n < 1 || n > LM_MAX_INPUTS || !xs)
        return arg_fail(g, "concat", "takes 1 to %d inputs, got %d%s", LM_MAX_INPUTS, n,
                        xs ? "" : " (xs is NULL)");
    lm_params p = lm_params_zero();
    p.axis = axis;
    return lm_node_make(g, LM_OP_CONCAT, n, xs, &p);
}

/* ---- repeat: (B, F) -> (B, n, F), as Keras RepeatVector ---- */

static lm_status infer_repeat(lm_infer *s) {
    char a[96];
    lm_shape x = s->in[0];
    if (x.ndim != 2)
        return lm_infer_fail(s, LM_ERR_SHAPE, "input %s is not (batch, features)", lm_shp(x, a));
    if (s->p->depth < 0)
        return lm_infer_fail(s, LM_ERR_ARG, "negative repeat count %d for input %s", s->p->depth,
                             lm_shp(x, a));
    s->out = (lm_shape){3, {x.dims[0], s->p->depth, x.dims[1]}};
    s->out_dt = s->in_dt[0];
    return LM_OK;
}

static lm_status k_repeat(lm_kcall *c) {
    const lm_tv *x = &c->in[0];
    int64_t B = x->d[0], n = c->out.d[1];
    size_t row = (size_t)x->d[1] * lm_dtype_size(x->dt);
    const char *xp = x->p;
    char *y = c->out.p;
    int nt = c->env->nthreads;
    LM_PAR_FOR(nt > 1 && c->out.n * 4 > PAR_BYTES, nt, b, B, {
        for (int64_t r = 0; r < n; r++) memcpy(y + (size_t)(b * n + r) * row, xp + b * row, row);
    });
    return LM_OK;
}

static lm_status infer_repeat_grad(lm_infer *s) {
    char a[96];
    lm_shape gy = s->in[0];
    if (gy.ndim != 3 || s->in_dt[0] != LM_F32)
        return lm_infer_fail(s, LM_ERR_SHAPE,
                             "gradient %s (%s) is not float32 (batch, n, features)", lm_shp(gy, a),
                             lm_dtype_name(s->in_dt[0]));
    s->out = (lm_shape){2, {gy.dims[0], gy.dims[2]}};
    s->out_dt = LM_F32;
    return LM_OK;
}

/* Sum over axis 1. */
static lm_status k_repeat_grad(lm_kcall *c) {
    const lm_tv *gy = &c->in[0];
    int64_t B = gy->d[0], n = gy->d[1], F = gy->d[2];
    const float *g = lm_f(gy);
    float *y = lm_f(&c->out);
    int nt = c->env->nthreads;
    LM_PAR_FOR(nt > 1 && gy->n * 4 > PAR_BYTES, nt, b, B, {
        float *restrict yb = y + b * F;
        for (int64_t f = 0; f < F; f++) yb[f] = 0;
        for (int64_t r = 0; r < n; r++) {
            const float *restrict gr = g + (b * n + r) * F;
            for (int64_t f = 0; f < F; f++) yb[f] += gr[f];
        }
    });
    return LM_OK;
}

const lm_op_def lm_opdef_repeat_grad = {.name = "repeat_grad",
                                        .min_in = 1,
                                        .max_in = 1,
                                        .flags = LM_OPF_GRAD_ONLY,
                                        .infer = infer_repeat_grad,
                                        .kernel = {k_repeat_grad}};

static lm_status grad_repeat(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    (void)n;
    gx[0] = lm_node_make(g, LM_OP_REPEAT_GRAD, 1, &gy, NULL);
    return LM_OK;
}

const lm_op_def lm_opdef_repeat = {.name = "repeat",
                                   .min_in = 1,
                                   .max_in = 1,
                                   .infer = infer_repeat,
                                   .kernel = {k_repeat},
                                   .grad = grad_repeat};

lm_node *lm_op_repeat(lm_graph *g, lm_node *x, int n) {
    lm_params p = lm_params_zero();
    p.depth = n;
    return lm_node_make(g, LM_OP_REPEAT, 1, &x, &p);
}
