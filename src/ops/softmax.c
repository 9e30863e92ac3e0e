/* Softmax and log-softmax over one axis (params: axis, negative counts from
 * the end), stable as jax.nn computes them: the row max is subtracted before
 * exp. Backward helpers from the output y:
 *   softmax_grad(gy, y)     = y * (gy - sum(gy * y))
 *   log_softmax_grad(gy, y) = gy - exp(y) * sum(gy)
 * The tensor is seen as x[outer, axis, inner]: contiguous rows when the axis
 * is last (the common case), column tiles otherwise. */
#include "graph/graph_impl.h"
#include "ops/reduce_vmath.h"
#include <math.h>

#define TW 64 /* columns per tile when the axis is not last */

typedef struct sm_lay {
    int64_t O, A, I;
} sm_lay;

static sm_lay sm_layout(const lm_tv *t, int axis) {
    int ax = axis < 0 ? axis + t->ndim : axis;
    sm_lay L = {1, t->d[ax], 1};
    for (int i = 0; i < ax; i++) L.O *= t->d[i];
    for (int i = ax + 1; i < t->ndim; i++) L.I *= t->d[i];
    return L;
}

static lm_status infer_softmax(lm_infer *s) {
    char a[96];
    if (s->in_dt[0] != LM_F32)
        return lm_infer_fail(s, LM_ERR_DTYPE, "needs a float32 input, got %s %s",
                             lm_dtype_name(s->in_dt[0]), lm_shp(s->in[0], a));
    if (s->in[0].ndim < 1)
        return lm_infer_fail(s, LM_ERR_SHAPE, "needs at least 1 dimension, got %s",
                             lm_shp(s->in[0], a));
    int ax = s->p->axis < 0 ? s->p->axis + s->in[0].ndim : s->p->axis;
    if (ax < 0 || ax >= s->in[0].ndim)
        return lm_infer_fail(s, LM_ERR_ARG, "axis %d is out of range for input %s", s->p->axis,
                             lm_shp(s->in[0], a));
    s->out = s->in[0];
    s->out_dt = LM_F32;
    return LM_OK;
}

/* One tile of w columns (stride I between axis steps). */
static void sm_tile(const float *x, float *y, int64_t A, int64_t I, int64_t w, bool log) {
    float m[TW], s[TW];
    for (int64_t j = 0; j < w; j++) {
        m[j] = x[j];
        s[j] = 0;
    }
    for (int64_t a = 1; a < A; a++) {
        const float *restrict xr = x + a * I;
        LM_SIMD
        for (int64_t j = 0; j < w; j++) m[j] = lm_max_nan(m[j], xr[j]);
    }
    for (int64_t a = 0; a < A; a++) {
        const float *restrict xr = x + a * I;
        float *restrict yr = y + a * I;
        if (log)
            for (int64_t j = 0; j < w; j++) s[j] += lm_vexp_neg(xr[j] - m[j]);
        else
            for (int64_t j = 0; j < w; j++) s[j] += yr[j] = lm_vexp_neg(xr[j] - m[j]);
    }
    if (log)
        for (int64_t j = 0; j < w; j++) s[j] = logf(s[j]);
    for (int64_t a = 0; a < A; a++) {
        const float *restrict xr = x + a * I;
        float *restrict yr = y + a * I;
        if (log)
            for (int64_t j = 0; j < w; j++) yr[j] = (xr[j] - m[j]) - s[j];
        else
            for (int64_t j = 0; j < w; j++) yr[j] = yr[j] / s[j];
    }
}

/* Rows along the last axis. Long rows run max, exp-sum and scale in lanes;
 * short ones go by chunks of rows so that exp vectorises across rows. */
static void softmax_rows(const float *x, float *y, int64_t O, int64_t A, bool log, int nt) {
    if (A >= LM_LONG_ROW) {
        LM_PAR_FOR(nt > 1 && O * A > 32768, nt, o, O, {
            const float *restrict xr = x + o * A;
            float *restrict yr = y + o * A;
            float m = lm_row_max(xr, A);
            if (log) {
                float l = logf(lm_row_sumexp(xr, m, NULL, A));
                for (int64_t i = 0; i < A; i++) yr[i] = (xr[i] - m) - l;
            } else {
                float s = lm_row_sumexp(xr, m, yr, A);
                for (int64_t i = 0; i < A; i++) yr[i] = yr[i] / s;
            }
        });
        return;
    }
    int64_t rpc = lm_rows_per_chunk(A), nch = (O + rpc - 1) / rpc;
    LM_PAR_FOR(nt > 1 && O * A > 32768, nt, ch, nch, {
        int64_t r0 = ch * rpc, nr = lm_min64(rpc, O - r0);
        const float *xc = x + r0 * A;
        float *yc = y + r0 * A, e[LM_ROW_CHUNK], m[LM_ROW_CHUNK];
        float *buf = log ? e : yc; /* exp(x - max); log_softmax keeps y for later */
        for (int64_t r = 0; r < nr; r++) {
            m[r] = lm_row_max(xc + r * A, A);
            for (int64_t i = 0; i < A; i++) buf[r * A + i] = xc[r * A + i] - m[r];
        }
        lm_vexp_neg_inplace(buf, nr * A);
        for (int64_t r = 0; r < nr; r++) {
            const float *xr = xc + r * A;
            float *br = buf + r * A, *yr = yc + r * A, s = (float)lm_row_sum(br, A);
            if (log) {
                float l = logf(s);
                for (int64_t i = 0; i < A; i++) yr[i] = (xr[i] - m[r]) - l;
            } else {
                for (int64_t i = 0; i < A; i++) yr[i] = br[i] / s;
            }
        }
    });
}

static lm_status softmax_fwd(lm_kcall *c, bool log) {
    const float *x = lm_f(&c->in[0]);
    float *y = lm_f(&c->out);
    sm_lay L = sm_layout(&c->in[0], c->p->axis);
    int nt = c->env->nthreads;
    if (c->out.n == 0) return LM_OK;
    if (L.I == 1) {
        softmax_rows(x, y, L.O, L.A, log, nt);
        return LM_OK;
    }
    int64_t nti = (L.I + TW - 1) / TW;
    LM_PAR_FOR(nt > 1 && c->out.n > 32768, nt, t, L.O * nti, {
        int64_t o = t / nti, i0 = (t % nti) * TW;
        int64_t off = o * L.A * L.I + i0;
        sm_tile(x + off, y + off, L.A, L.I, lm_min64(TW, L.I - i0), log);
    });
    return LM_OK;
}

static lm_status k_softmax(lm_kcall *c) {
    return softmax_fwd(c, false);
}
static lm_status k_log_softmax(lm_kcall *c) {
    return softmax_fwd(c, true);
}

/* ---- backward helpers ---- */

static lm_status infer_softmax_grad(lm_infer *s) {
    char a[96], b[96];
    bool same = s->in[0].ndim == s->in[1].ndim;
    for (int i = 0; same && i < s->in[0].ndim; i++)
        if (s->in[0].dims[i] >= 0 && s->in[1].dims[i] >= 0 && s->in[0].dims[i] != s->in[1].dims[i])
            same = false;
    if (!same)
        return lm_infer_fail(s, LM_ERR_SHAPE, "gradient %s and output %s differ",
                             lm_shp(s->in[0], a), lm_shp(s->in[1], b));
    s->out = s->in[1];
    s->out_dt = LM_F32;
    return LM_OK;
}

/* sum(a * b) in float lanes. */
static inline float row_dot(const float *restrict a, const float *restrict b, int64_t n) {
    if (n < LM_VL) {
        float r = 0;
        for (int64_t i = 0; i < n; i++) r += a[i] * b[i];
        return r;
    }
    float acc[LM_VL] = {0};
    int64_t i = 0;
    for (; i + LM_VL <= n; i += LM_VL)
        for (int j = 0; j < LM_VL; j++) acc[j] += a[i + j] * b[i + j];
    for (; i < n; i++) acc[0] += a[i] * b[i];
    float s = 0;
    for (int j = 0; j < LM_VL; j++) s += acc[j];
    return s;
}

static lm_status softmax_bwd(lm_kcall *c, bool log) {
    const float *gy = lm_f(&c->in[0]), *y = lm_f(&c->in[1]);
    float *gx = lm_f(&c->out);
    sm_lay L = sm_layout(&c->in[1], c->p->axis);
    int nt = c->env->nthreads;
    if (c->out.n == 0) return LM_OK;
    if (L.I == 1) {
        /* Rows by chunks: exp(y) in one flat loop, then per-row sums. */
        int64_t A = L.A, rpc = lm_rows_per_chunk(A), nch = (L.O + rpc - 1) / rpc;
        LM_PAR_FOR(nt > 1 && c->out.n > 32768, nt, ch, nch, {
            int64_t r0 = ch * rpc, nr = lm_min64(rpc, L.O - r0);
            const float *restrict g = gy + r0 * A, *restrict yr = y + r0 * A;
            float *restrict d = gx + r0 * A;
            if (log)
                for (int64_t i = 0; i < nr * A; i++) d[i] = lm_vexp_neg(yr[i]);
            for (int64_t r = 0; r < nr; r++) {
                const float *gr = g + r * A, *ys = yr + r * A;
                float *dr = d + r * A;
                if (log) {
                    float s = (float)lm_row_sum(gr, A);
                    for (int64_t i = 0; i < A; i++) dr[i] = gr[i] - dr[i] * s;
                } else {
                    float s = row_dot(gr, ys, A);
                    for (int64_t i = 0; i < A; i++) dr[i] = ys[i] * (gr[i] - s);
                }
            }
        });
        return LM_OK;
    }
    int64_t nti = (L.I + TW - 1) / TW;
    LM_PAR_FOR(nt > 1 && c->out.n > 32768, nt, t, L.O * nti, {
        int64_t o = t / nti, i0 = (t % nti) * TW, w = lm_min64(TW, L.I - i0);
        int64_t off = o * L.A * L.I + i0;
        float s[TW];
        for (int64_t j = 0; j < w; j++) s[j] = 0;
        for (int64_t a = 0; a < L.A; a++) {
            const float *restrict g = gy + off + a * L.I, *restrict yr = y + off + a * L.I;
            if (log)
                for (int64_t j = 0; j < w; j++) s[j] += g[j];
            else
                for (int64_t j = 0; j < w; j++) s[j] += g[j] * yr[j];
        }
        for (int64_t a = 0; a < L.A; a++) {
            const float *restrict g = gy + off + a * L.I, *restrict yr = y + off + a * L.I;
            float *restrict d = gx + off + a * L.I;
            if (log)
                for (int64_t j = 0; j < w; j++) d[j] = g[j] - lm_vexp_neg(yr[j]) * s[j];
            else
                for (int64_t j = 0; j < w; j++) d[j] = yr[j] * (g[j] - s[j]);
        }
    });
    return LM_OK;
}

static lm_status k_softmax_grad(lm_kcall *c) {
    return softmax_bwd(c, false);
}
static lm_status k_log_softmax_grad(lm_kcall *c) {
    return softmax_bwd(c, true);
}

const lm_op_def lm_opdef_softmax_grad = {.name = "softmax_grad",
                                         .min_in = 2,
                                         .max_in = 2,
                                         .flags = LM_OPF_GRAD_ONLY,
                                         .infer = infer_softmax_grad,
                                         .kernel = {k_softmax_grad}};

const lm_op_def lm_opdef_log_softmax_grad = {.name = "log_softmax_grad",
                                             .min_in = 2,
                                             .max_in = 2,
                                             .flags = LM_OPF_GRAD_ONLY,
                                             .infer = infer_softmax_grad,
                                             .kernel = {k_log_softmax_grad}};

static lm_status grad_softmax(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    lm_node *in[2] = {gy, n};
    int op = n->op == LM_OP_SOFTMAX ? LM_OP_SOFTMAX_GRAD : LM_OP_LOG_SOFTMAX_GRAD;
    gx[0] = lm_node_make(g, op, 2, in, &n->p);
    return LM_OK;
}

const lm_op_def lm_opdef_softmax = {.name = "softmax",
                                    .min_in = 1,
                                    .max_in = 1,
                                    .infer = infer_softmax,
                                    .kernel = {k_softmax},
                                    .grad = grad_softmax};

const lm_op_def lm_opdef_log_softmax = {.name = "log_softmax",
                                        .min_in = 1,
                                        .max_in = 1,
                                        .infer = infer_softmax,
                                        .kernel = {k_log_softmax},
                                        .grad = grad_softmax};

lm_node *lm_op_softmax(lm_graph *g, lm_node *x, int axis) {
    lm_params p = lm_params_zero();
    p.axis = axis;
    return lm_node_make(g, LM_OP_SOFTMAX, 1, &x, &p);
}

lm_node *lm_op_log_softmax(lm_graph *g, lm_node *x, int axis) {
    lm_params p = lm_params_zero();
    p.axis = axis;
    return lm_node_make(g, LM_OP_LOG_SOFTMAX, 1, &x, &p);
}
