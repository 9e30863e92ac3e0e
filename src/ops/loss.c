/* Losses, one value per sample as Keras 3 computes them before reduction
 * (keras/src/losses/losses.py, keras/src/backend/jax/nn.py): the output is
 * the shape without the last axis. Inputs are (y_true, y_pred), float32.
 *
 * Shapes follow Keras's squeeze_or_expand_to_same_rank: equal shapes, or one
 * side with an extra trailing axis of size 1 (y_true (N,) with y_pred (N, 1)
 * is (N, 1); y_true (N, T) with y_pred (N, T, 1) is (N, T), one loss per
 * sample). Either way both hold the same elements in the same order.
 * sparse_categorical_crossentropy takes class indices (int32, int64, uint8,
 * float32 or float64, truncated as Keras's cast to int32) shaped like y_pred
 * without its last axis, or with a trailing 1; an index outside [0, classes)
 * is a run-time error (Keras would silently give a zero one-hot row).
 *
 * Params: f[0] huber delta, flag from_logits. Backward ops (loss_grad.c)
 * take (gy, y_true, y_pred[, forward node]) and kind (0: gradient for
 * y_true, 1: for y_pred). Categorical losses keep per-row statistics in aux
 * (max and log-sum-exp of the logits, or the sum of the probabilities). */
#include "ops/loss_impl.h"
#include <stdio.h>

/* ---- shapes ---- */

static bool dim_eq(int64_t a, int64_t b) {
    return a < 0 || b < 0 || a == b;
}

static bool prefix_eq(lm_shape a, lm_shape b, int n) {
    for (int i = 0; i < n; i++)
        if (!dim_eq(a.dims[i], b.dims[i])) return false;
    return true;
}

lm_status lm_loss_shape(lm_infer *s, lm_shape *S) {
    char a[96], b[96];
    lm_shape t = s->in[0], p = s->in[1];
    bool ok = false;
    if (t.ndim == p.ndim) {
        ok = prefix_eq(t, p, t.ndim);
        *S = p;
        for (int i = 0; i < p.ndim; i++)
            if (S->dims[i] < 0) S->dims[i] = t.dims[i];
    } else if (t.ndim == p.ndim + 1 && t.dims[t.ndim - 1] == 1) {
        ok = prefix_eq(t, p, p.ndim);
        *S = p.ndim == 1 ? t : p; /* Keras expands a rank-1 y_pred, else squeezes y_true */
    } else if (p.ndim == t.ndim + 1 && p.dims[p.ndim - 1] == 1) {
        ok = prefix_eq(t, p, t.ndim);
        *S = t.ndim == 1 ? p : t;
    }
    if (!ok)
        return lm_infer_fail(s, LM_ERR_SHAPE, "y_true %s and y_pred %s do not match", lm_shp(t, a),
                             lm_shp(p, b));
    if (S->ndim < 1)
        return lm_infer_fail(s, LM_ERR_SHAPE,
                             "y_true %s and y_pred %s need at least 1 dimension (the last is "
                             "averaged or summed over)",
                             lm_shp(t, a), lm_shp(p, b));
    return LM_OK;
}

static lm_status infer_dense_loss(lm_infer *s) {
    char a[96], b[96];
    if (s->in_dt[1] != LM_F32 || s->in_dt[0] != LM_F32)
        return lm_infer_fail(
            s, LM_ERR_DTYPE, "needs float32 y_true and y_pred, got %s %s and %s %s%s",
            lm_dtype_name(s->in_dt[0]), lm_shp(s->in[0], a), lm_dtype_name(s->in_dt[1]),
            lm_shp(s->in[1], b),
            s->in_dt[1] == LM_F32 ? " (cast y_true, or use sparse_categorical_crossentropy for "
                                    "class indices)"
                                  : "");
    if (s->node->op == LM_OP_HUBER && !(s->p->f[0] > 0))
        return lm_infer_fail(s, LM_ERR_ARG, "delta must be positive, got %g", (double)s->p->f[0]);
    lm_shape S;
    lm_status st = lm_loss_shape(s, &S);
    if (st) return st;
    s->out = S;
    s->out.ndim--;
    s->out_dt = LM_F32;
    return LM_OK;
}

lm_status lm_sparse_label_shape(lm_infer *s) {
    char a[96], b[96], c[96], d[96];
    lm_shape t = s->in[0], p = s->in[1];
    lm_dtype dt = s->in_dt[0];
    if (s->in_dt[1] != LM_F32)
        return lm_infer_fail(s, LM_ERR_DTYPE, "needs a float32 y_pred, got %s %s",
                             lm_dtype_name(s->in_dt[1]), lm_shp(p, b));
    if (dt != LM_I32 && dt != LM_I64 && dt != LM_U8 && dt != LM_F32 && dt != LM_F64)
        return lm_infer_fail(s, LM_ERR_DTYPE,
                             "class indices y_true %s are %s (int or float needed)", lm_shp(t, a),
                             lm_dtype_name(dt));
    if (p.ndim < 1)
        return lm_infer_fail(s, LM_ERR_SHAPE, "y_pred %s needs a class axis (y_true %s)",
                             lm_shp(p, b), lm_shp(t, a));
    bool ok = (t.ndim == p.ndim - 1 && prefix_eq(t, p, t.ndim)) ||
              (t.ndim == p.ndim && t.dims[t.ndim - 1] == 1 && prefix_eq(t, p, t.ndim - 1));
    if (!ok) {
        lm_shape w1 = p, w2 = p;
        w1.ndim--;
        w2.dims[p.ndim - 1] = 1;
        return lm_infer_fail(s, LM_ERR_SHAPE,
                             "y_true %s and y_pred %s do not match: class indices need shape %s "
                             "or %s",
                             lm_shp(t, a), lm_shp(p, b), lm_shp(w1, c), lm_shp(w2, d));
    }
    return LM_OK;
}

static lm_status infer_sparse(lm_infer *s) {
    lm_status st = lm_sparse_label_shape(s);
    if (st) return st;
    s->out = s->in[1];
    s->out.ndim--;
    s->out_dt = LM_F32;
    return LM_OK;
}

bool lm_read_label(const lm_tv *t, int64_t r, int64_t D, int64_t *out) {
    double v;
    *out = 0;
    switch (t->dt) {
    case LM_I32:
        v = ((const int32_t *)t->p)[r];
        break;
    case LM_I64: {
        int64_t l = ((const int64_t *)t->p)[r];
        *out = l;
        return l >= 0 && l < D;
    }
    case LM_U8:
        v = ((const uint8_t *)t->p)[r];
        break;
    case LM_F32:
        v = ((const float *)t->p)[r];
        break;
    case LM_F64:
        v = ((const double *)t->p)[r];
        break;
    default:
        return false;
    }
    /* Truncation toward zero, as Keras's cast to int32 (-0.5 is class 0). */
    if (!(v > -1.0 && v < (double)D)) {
        *out = v != v ? INT64_MIN : (int64_t)fmax(fmin(v, 9e18), -9e18);
        return false;
    }
    *out = (int64_t)v;
    return true;
}

lm_status lm_check_labels(lm_kcall *c, const lm_tv *t, int64_t rows, int64_t D) {
    char b[96];
    for (int64_t r = 0; r < rows; r++) {
        int64_t l;
        if (!lm_read_label(t, r, D, &l)) {
            lm_shape ps = {c->in[1].ndim, {0}};
            for (int i = 0; i < ps.ndim; i++) ps.dims[i] = c->in[1].d[i];
            if (l == INT64_MIN)
                return lm_kernel_fail(c, LM_ERR_ARG,
                                      "class index of sample %lld is NaN (y_pred %s, %lld classes)",
                                      (long long)r, lm_shp(ps, b), (long long)D);
            return lm_kernel_fail(c, LM_ERR_ARG,
                                  "class index %lld of sample %lld is out of range [0, %lld) "
                                  "(y_pred %s)",
                                  (long long)l, (long long)r, (long long)D, lm_shp(ps, b));
        }
    }
    return LM_OK;
}

/* ---- per-row means of elementwise losses ---- */

/* Loss terms EXPR(t, p): row_<name> sums a long row in float lanes,
 * flat_<name> writes the terms of n elements (short rows, by chunks). */
#define LOSS_TERM(name, EXPR)                                                                      \
    static inline float row_##name(const float *restrict t, const float *restrict p, int64_t D,    \
                                   float f0) {                                                     \
        float acc[LM_VL] = {0};                                                                    \
        int64_t i = 0;                                                                             \
        (void)f0;                                                                                  \
        for (; i + LM_VL <= D; i += LM_VL)                                                         \
            for (int j = 0; j < LM_VL; j++) {                                                      \
                float tv = t[i + j], pv = p[i + j];                                                \
                acc[j] += (EXPR);                                                                  \
            }                                                                                      \
        for (; i < D; i++) {                                                                       \
            float tv = t[i], pv = p[i];                                                            \
            acc[0] += (EXPR);                                                                      \
        }                                                                                          \
        float s = 0;                                                                               \
        for (int j = 0; j < LM_VL; j++) s += acc[j];                                               \
        return s;                                                                                  \
    }                                                                                              \
    static void flat_##name(const float *restrict t, const float *restrict p, float *restrict o,   \
                            int64_t n, float f0) {                                                 \
        (void)f0;                                                                                  \
        for (int64_t i = 0; i < n; i++) {                                                          \
            float tv = t[i], pv = p[i];                                                            \
            o[i] = (EXPR);                                                                         \
        }                                                                                          \
    }

static inline float sq(float v) {
    return v * v;
}

static inline float huber_el(float t, float p, float delta) {
    float e = p - t, a = fabsf(e);
    return lm_vsel(a <= delta, 0.5f * (e * e), delta * a - 0.5f * (delta * delta));
}

static inline float bce_el(float t, float p) {
    float o = lm_clip_prob(p);
    float v = t * lm_vlog(o);
    v += (1.0f - t) * lm_vlog(1.0f - o);
    return -v;
}

/* -t log_sigmoid(x) - (1 - t) log_sigmoid(-x), log_sigmoid(x) = -softplus(-x). */
static inline float bce_logits_el(float t, float x) {
    float l = lm_vlog1p(lm_vexp_neg(-fabsf(x)));
    float sp_pos = (x > 0 ? x : 0.0f) + l, sp_neg = (x < 0 ? -x : 0.0f) + l;
    return t * sp_neg + (1.0f - t) * sp_pos;
}

LOSS_TERM(mse, sq(tv - pv))
LOSS_TERM(mae, fabsf(tv - pv))
LOSS_TERM(huber, huber_el(tv, pv, f0))
LOSS_TERM(bce, bce_el(tv, pv))
LOSS_TERM(bce_logits, bce_logits_el(tv, pv))

typedef float (*row_fn)(const float *, const float *, int64_t, float);
typedef void (*flat_fn)(const float *, const float *, float *, int64_t, float);

/* Mean over the last axis of an elementwise loss: sum, then / D as jnp.mean. */
static lm_status k_dense_mean(lm_kcall *c, row_fn row, flat_fn flat) {
    const float *t = lm_f(&c->in[0]), *p = lm_f(&c->in[1]);
    float *y = lm_f(&c->out);
    int64_t rows = c->out.n, D = rows ? c->in[1].n / rows : 0;
    int64_t rpc = lm_rows_per_chunk(D), nch = (rows + rpc - 1) / rpc;
    float f0 = c->p->f[0];
    int nt = c->env->nthreads;
    LM_PAR_FOR(nt > 1 && c->in[1].n > 32768, nt, ch, nch, {
        int64_t r0 = ch * rpc, nr = lm_min64(rpc, rows - r0);
        const float *tc = t + r0 * D, *pc = p + r0 * D;
        if (D >= LM_LONG_ROW || D == 0) {
            for (int64_t r = 0; r < nr; r++)
                y[r0 + r] = row(tc + r * D, pc + r * D, D, f0) / (float)D;
        } else {
            float buf[LM_ROW_CHUNK];
            flat(tc, pc, buf, nr * D, f0);
            for (int64_t r = 0; r < nr; r++)
                y[r0 + r] = (float)lm_row_sum(buf + r * D, D) / (float)D;
        }
    });
    return LM_OK;
}

static lm_status k_mse(lm_kcall *c) {
    return k_dense_mean(c, row_mse, flat_mse);
}
static lm_status k_mae(lm_kcall *c) {
    return k_dense_mean(c, row_mae, flat_mae);
}
static lm_status k_huber(lm_kcall *c) {
    return k_dense_mean(c, row_huber, flat_huber);
}
static lm_status k_bce(lm_kcall *c) {
    return c->p->flag ? k_dense_mean(c, row_bce_logits, flat_bce_logits)
                      : k_dense_mean(c, row_bce, flat_bce);
}

/* ---- categorical cross-entropy ---- */

/* Row statistics of a chunk of nr rows of logits: st[r] = [max, log-sum-exp].
 * e (nr * D floats, short rows only) is scratch for exp(x - max). */
static void logit_stats(const float *x, int64_t nr, int64_t D, float *st, float *e) {
    if (D >= LM_LONG_ROW || D == 0) {
        for (int64_t r = 0; r < nr; r++) {
            float *s = st + r * LM_LOSS_AUX_PER_ROW, m = lm_row_max(x + r * D, D);
            s[0] = m;
            s[1] = logf(lm_row_sumexp(x + r * D, m, NULL, D));
        }
        return;
    }
    for (int64_t r = 0; r < nr; r++) {
        const float *xr = x + r * D;
        float m = lm_row_max(xr, D);
        st[r * LM_LOSS_AUX_PER_ROW] = m;
        for (int64_t k = 0; k < D; k++) e[r * D + k] = xr[k] - m;
    }
    lm_vexp_neg_inplace(e, nr * D);
    for (int64_t r = 0; r < nr; r++)
        st[r * LM_LOSS_AUX_PER_ROW + 1] = logf((float)lm_row_sum(e + r * D, D));
}

/* -sum(t * log(clip(p / s))) with s = sum(p) for nr rows; st[r][0] gets s. */
static void cce_probs_rows(const float *t, const float *p, int64_t nr, int64_t D, float *st,
                           float *y, float *q) {
    for (int64_t r = 0; r < nr; r++) st[r * LM_LOSS_AUX_PER_ROW] = (float)lm_row_sum(p + r * D, D);
    if (D >= LM_LONG_ROW || D == 0) {
        for (int64_t r = 0; r < nr; r++) {
            const float *restrict tr = t + r * D, *restrict pr = p + r * D;
            float s = st[r * LM_LOSS_AUX_PER_ROW], acc[LM_VL] = {0}, v = 0;
            int64_t i = 0;
            for (; i + LM_VL <= D; i += LM_VL)
                for (int j = 0; j < LM_VL; j++)
                    acc[j] += tr[i + j] * lm_vlog(lm_clip_prob(pr[i + j] / s));
            for (; i < D; i++) acc[0] += tr[i] * lm_vlog(lm_clip_prob(pr[i] / s));
            for (int j = 0; j < LM_VL; j++) v += acc[j];
            y[r] = -v;
        }
        return;
    }
    for (int64_t r = 0; r < nr; r++)
        for (int64_t k = 0; k < D; k++) q[r * D + k] = p[r * D + k] / st[r * LM_LOSS_AUX_PER_ROW];
    for (int64_t i = 0; i < nr * D; i++) q[i] = t[i] * lm_vlog(lm_clip_prob(q[i]));
    for (int64_t r = 0; r < nr; r++) y[r] = -(float)lm_row_sum(q + r * D, D);
}

static size_t aux_rows(const lm_kcall *c) {
    return (size_t)c->out.n * LM_LOSS_AUX_PER_ROW * sizeof(float);
}

static lm_status k_cce(lm_kcall *c) {
    const float *t = lm_f(&c->in[0]), *p = lm_f(&c->in[1]);
    float *y = lm_f(&c->out), *aux = c->aux;
    int64_t rows = c->out.n, D = rows ? c->in[1].n / rows : 0;
    int64_t rpc = lm_rows_per_chunk(D), nch = (rows + rpc - 1) / rpc;
    bool logits = c->p->flag;
    int nt = c->env->nthreads;
    LM_PAR_FOR(nt > 1 && c->in[1].n > 32768, nt, ch, nch, {
        int64_t r0 = ch * rpc, nr = lm_min64(rpc, rows - r0);
        const float *tc = t + r0 * D, *pc = p + r0 * D;
        float *st = aux + r0 * LM_LOSS_AUX_PER_ROW, buf[LM_ROW_CHUNK];
        if (!logits) {
            cce_probs_rows(tc, pc, nr, D, st, y + r0, buf);
            continue;
        }
        /* -sum(t * log_softmax(x)), log_softmax = (x - max) - lse as jax.nn. */
        logit_stats(pc, nr, D, st, buf);
        for (int64_t r = 0; r < nr; r++) {
            const float *restrict tr = tc + r * D, *restrict xr = pc + r * D;
            float m = st[r * LM_LOSS_AUX_PER_ROW], lse = st[r * LM_LOSS_AUX_PER_ROW + 1];
            float acc[LM_VL] = {0}, v = 0;
            int64_t i = 0;
            for (; i + LM_VL <= D; i += LM_VL)
                for (int j = 0; j < LM_VL; j++) acc[j] += tr[i + j] * ((xr[i + j] - m) - lse);
            for (; i < D; i++) acc[0] += tr[i] * ((xr[i] - m) - lse);
            for (int j = 0; j < LM_VL; j++) v += acc[j];
            y[r0 + r] = -v;
        }
    });
    return LM_OK;
}

/* Sparse: -log_prob[label] (Keras sums the one-hot product, which is the same
 * value). */
static lm_status k_sparse(lm_kcall *c) {
    const float *p = lm_f(&c->in[1]);
    float *y = lm_f(&c->out), *aux = c->aux;
    int64_t rows = c->out.n, D = rows ? c->in[1].n / rows : 0;
    int64_t rpc = lm_rows_per_chunk(D), nch = (rows + rpc - 1) / rpc;
    bool logits = c->p->flag;
    int nt = c->env->nthreads;
    lm_status s = lm_check_labels(c, &c->in[0], rows, D);
    if (s) return s;
    LM_PAR_FOR(nt > 1 && c->in[1].n > 32768, nt, ch, nch, {
        int64_t r0 = ch * rpc, nr = lm_min64(rpc, rows - r0);
        float *st = aux + r0 * LM_LOSS_AUX_PER_ROW, buf[LM_ROW_CHUNK];
        if (logits) logit_stats(p + r0 * D, nr, D, st, buf);
        for (int64_t r = 0; r < nr; r++) {
            const float *x = p + (r0 + r) * D;
            float *sr = st + r * LM_LOSS_AUX_PER_ROW;
            int64_t l;
            lm_read_label(&c->in[0], r0 + r, D, &l);
            if (logits) {
                y[r0 + r] = -((x[l] - sr[0]) - sr[1]);
            } else {
                sr[0] = (float)lm_row_sum(x, D);
                y[r0 + r] = -lm_vlog(lm_clip_prob(x[l] / sr[0]));
            }
        }
    });
    return LM_OK;
}

/* ---- backward rules ---- */

static lm_node *grad_node(lm_graph *g, int op, lm_node *n, lm_node *gy, int which, int n_in) {
    lm_params p = n->p;
    p.kind = which;
    lm_node *in[4] = {gy, n->in[0], n->in[1], n};
    return lm_node_make(g, op, n_in, in, &p);
}

static int grad_op_of(int op) {
    switch (op) {
    case LM_OP_MSE:
        return LM_OP_MSE_GRAD;
    case LM_OP_MAE:
        return LM_OP_MAE_GRAD;
    case LM_OP_HUBER:
        return LM_OP_HUBER_GRAD;
    case LM_OP_BINARY_CROSSENTROPY:
        return LM_OP_BINARY_CROSSENTROPY_GRAD;
    case LM_OP_CATEGORICAL_CROSSENTROPY:
        return LM_OP_CATEGORICAL_CROSSENTROPY_GRAD;
    default:
        return LM_OP_SPARSE_CATEGORICAL_CROSSENTROPY_GRAD;
    }
}

static lm_status grad_loss(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    int op = grad_op_of(n->op);
    /* Categorical losses also read the forward node's row statistics. */
    int n_in =
        n->op == LM_OP_CATEGORICAL_CROSSENTROPY || n->op == LM_OP_SPARSE_CATEGORICAL_CROSSENTROPY
            ? 4
            : 3;
    /* Class indices get no gradient. */
    gx[0] =
        n->op == LM_OP_SPARSE_CATEGORICAL_CROSSENTROPY ? NULL : grad_node(g, op, n, gy, 0, n_in);
    gx[1] = grad_node(g, op, n, gy, 1, n_in);
    return LM_OK;
}

#define LOSS_ROW(nm, kern, inf, auxf)                                                              \
    const lm_op_def lm_opdef_##nm = {.name = #nm,                                                  \
                                     .min_in = 2,                                                  \
                                     .max_in = 2,                                                  \
                                     .infer = inf,                                                 \
                                     .aux_bytes = auxf,                                            \
                                     .kernel = {kern},                                             \
                                     .grad = grad_loss};

LOSS_ROW(mse, k_mse, infer_dense_loss, NULL)
LOSS_ROW(mae, k_mae, infer_dense_loss, NULL)
LOSS_ROW(huber, k_huber, infer_dense_loss, NULL)
LOSS_ROW(binary_crossentropy, k_bce, infer_dense_loss, NULL)
LOSS_ROW(categorical_crossentropy, k_cce, infer_dense_loss, aux_rows)
LOSS_ROW(sparse_categorical_crossentropy, k_sparse, infer_sparse, aux_rows)

/* ---- constructors ---- */

static lm_node *make_loss(lm_graph *g, int op, lm_node *t, lm_node *p, bool from_logits,
                          float delta) {
    lm_params pr = lm_params_zero();
    pr.flag = from_logits;
    pr.f[0] = delta;
    lm_node *in[2] = {t, p};
    return lm_node_make(g, op, 2, in, &pr);
}

lm_node *lm_op_mse(lm_graph *g, lm_node *y_true, lm_node *y_pred) {
    return make_loss(g, LM_OP_MSE, y_true, y_pred, false, 0);
}

lm_node *lm_op_mae(lm_graph *g, lm_node *y_true, lm_node *y_pred) {
    return make_loss(g, LM_OP_MAE, y_true, y_pred, false, 0);
}

lm_node *lm_op_huber(lm_graph *g, lm_node *y_true, lm_node *y_pred, float delta) {
    return make_loss(g, LM_OP_HUBER, y_true, y_pred, false, delta);
}

lm_node *lm_op_binary_crossentropy(lm_graph *g, lm_node *y_true, lm_node *y_pred,
                                   bool from_logits) {
    return make_loss(g, LM_OP_BINARY_CROSSENTROPY, y_true, y_pred, from_logits, 0);
}

lm_node *lm_op_categorical_crossentropy(lm_graph *g, lm_node *y_true, lm_node *y_pred,
                                        bool from_logits) {
    return make_loss(g, LM_OP_CATEGORICAL_CROSSENTROPY, y_true, y_pred, from_logits, 0);
}

lm_node *lm_op_sparse_categorical_crossentropy(lm_graph *g, lm_node *y_true, lm_node *y_pred,
                                               bool from_logits) {
    return make_loss(g, LM_OP_SPARSE_CATEGORICAL_CROSSENTROPY, y_true, y_pred, from_logits, 0);
}
