/* Backward ops of the losses: inputs (gy, y_true, y_pred[, forward node]),
 * kind 0 gives the gradient for y_true, kind 1 for y_pred, in that input's
 * shape. The formulas are the derivatives JAX takes of Keras's expressions,
 * in the same order of float operations where it is cheap: mean's 1 / D is
 * a division of gy, jnp.clip passes half the gradient at its bounds, and
 * abs has derivative sign (0 at 0). */
#include "ops/loss_impl.h"

static lm_status infer_loss_grad(lm_infer *s) {
    char a[96], b[96];
    int which = s->p->kind;
    if (which != 0 && which != 1)
        return lm_infer_fail(s, LM_ERR_ARG, "kind %d is not 0 (y_true) or 1 (y_pred)", which);
    if (s->node->op == LM_OP_SPARSE_CATEGORICAL_CROSSENTROPY_GRAD && which == 0)
        return lm_infer_fail(s, LM_ERR_ARG, "class indices have no gradient");
    bool sparse = s->node->op == LM_OP_SPARSE_CATEGORICAL_CROSSENTROPY_GRAD;
    lm_infer sub = *s; /* the forward rule on (y_true, y_pred) */
    sub.in[0] = s->in[1];
    sub.in[1] = s->in[2];
    sub.in_dt[0] = s->in_dt[1];
    sub.in_dt[1] = s->in_dt[2];
    lm_shape want = s->in[2];
    lm_status st = sparse ? lm_sparse_label_shape(&sub) : lm_loss_shape(&sub, &want);
    if (st) return st;
    want.ndim--;
    int64_t nw = lm_shape_numel(want), ng = lm_shape_numel(s->in[0]);
    if (nw >= 0 && ng >= 0 && nw != ng)
        return lm_infer_fail(s, LM_ERR_SHAPE, "gradient %s does not fit the loss of y_pred %s",
                             lm_shp(s->in[0], a), lm_shp(s->in[2], b));
    s->out = s->in[1 + which];
    s->out_dt = LM_F32;
    return LM_OK;
}

static inline float sign_of(float v) {
    return (float)(v > 0) - (float)(v < 0);
}

/* ---- elementwise losses: d = local(t, p) over a chunk, then d *= gy / D ---- */

typedef void (*local_fn)(const float *restrict t, const float *restrict p, float *restrict d,
                         int64_t n, float f0);

#define LOCAL(name, EXPR)                                                                          \
    static void name(const float *restrict t, const float *restrict p, float *restrict d,          \
                     int64_t n, float f0) {                                                        \
        (void)t, (void)f0;                                                                         \
        LM_SIMD                                                                                    \
        for (int64_t k = 0; k < n; k++) {                                                          \
            float tv = t[k], pv = p[k];                                                            \
            (void)tv;                                                                              \
            d[k] = (EXPR);                                                                         \
        }                                                                                          \
    }

/* d/de of the huber term, e = p - t. */
static inline float huber_de(float e, float delta) {
    return lm_vsel(fabsf(e) <= delta, e, delta * sign_of(e));
}

/* bce = t log(o) + (1 - t) log(1 - o) with o = clip(p); the loss is -bce. */
static inline float bce_dt(float p) {
    float o = lm_clip_prob(p);
    return -(lm_vlog(o) - lm_vlog(1.0f - o));
}

static inline float bce_dp(float t, float p) {
    float o = lm_clip_prob(p);
    return -(lm_clip_pass(p) * (t / o - (1.0f - t) / (1.0f - o)));
}

/* From logits: loss = t softplus(-x) + (1 - t) softplus(x), softplus' = sigmoid. */
static inline float bcel_dt(float x) {
    float l = lm_vlog1p(lm_vexp_neg(-fabsf(x)));
    return ((x < 0 ? -x : 0.0f) + l) - ((x > 0 ? x : 0.0f) + l);
}

static inline float bcel_dp(float t, float x) {
    float e = lm_vexp_neg(-fabsf(x)), inv = 1.0f / (1.0f + e);
    float sp = x >= 0 ? inv : e * inv, sn = x >= 0 ? e * inv : inv; /* sigmoid(x), (-x) */
    return (1.0f - t) * sp - t * sn;
}

LOCAL(mse_t, 2.0f * (tv - pv))
LOCAL(mse_p, 2.0f * (pv - tv))
LOCAL(mae_t, sign_of(tv - pv))
LOCAL(mae_p, -sign_of(tv - pv))
LOCAL(huber_t, -huber_de(pv - tv, f0))
LOCAL(huber_p, huber_de(pv - tv, f0))
LOCAL(bce_t, bce_dt(pv))
LOCAL(bce_p, bce_dp(tv, pv))
LOCAL(bcel_t, bcel_dt(pv))
LOCAL(bcel_p, bcel_dp(tv, pv))

/* Rows of (gy, y_true, y_pred) -> gradient for y_true or y_pred. */
static lm_status grad_scaled(lm_kcall *c, local_fn fn_t, local_fn fn_p) {
    const float *gy = lm_f(&c->in[0]), *t = lm_f(&c->in[1]), *p = lm_f(&c->in[2]);
    float *gx = lm_f(&c->out), f0 = c->p->f[0];
    int64_t rows = c->in[0].n, D = rows ? c->in[2].n / rows : 0;
    int64_t rpc = lm_rows_per_chunk(D), nch = (rows + rpc - 1) / rpc;
    local_fn fn = c->p->kind == 0 ? fn_t : fn_p;
    int nt = c->env->nthreads;
    LM_PAR_FOR(nt > 1 && c->in[2].n > 32768, nt, ch, nch, {
        int64_t r0 = ch * rpc, nr = lm_min64(rpc, rows - r0);
        float *d = gx + r0 * D;
        fn(t + r0 * D, p + r0 * D, d, nr * D, f0);
        for (int64_t r = 0; r < nr; r++) {
            float g = gy[r0 + r] / (float)D; /* jnp.mean's transpose */
            for (int64_t k = 0; k < D; k++) d[r * D + k] *= g;
        }
    });
    return LM_OK;
}

static lm_status k_mse_grad(lm_kcall *c) {
    return grad_scaled(c, mse_t, mse_p);
}
static lm_status k_mae_grad(lm_kcall *c) {
    return grad_scaled(c, mae_t, mae_p);
}
static lm_status k_huber_grad(lm_kcall *c) {
    return grad_scaled(c, huber_t, huber_p);
}
static lm_status k_bce_grad(lm_kcall *c) {
    return c->p->flag ? grad_scaled(c, bcel_t, bcel_p) : grad_scaled(c, bce_t, bce_p);
}

/* ---- categorical: the forward node (input 3) keeps each row's [max, lse]
 * (logits) or [sum] (probabilities) in its aux ---- */

/* d = exp((x - max) - lse), the softmax, for nr rows. */
static void softmax_from_stats(const float *x, const float *st, int64_t nr, int64_t D, float *d) {
    for (int64_t r = 0; r < nr; r++) {
        float m = st[r * LM_LOSS_AUX_PER_ROW], lse = st[r * LM_LOSS_AUX_PER_ROW + 1];
        for (int64_t k = 0; k < D; k++) d[r * D + k] = (x[r * D + k] - m) - lse;
    }
    lm_vexp_neg_inplace(d, nr * D);
}

/* One chunk of nr rows of the categorical gradients; g = gy of the rows. */
static void cce_chunk(const float *t, const float *p, const float *g, const float *st, float *d,
                      int64_t nr, int64_t D, bool logits, bool wrt_t) {
    if (logits && wrt_t) { /* -g log_softmax(x) */
        for (int64_t r = 0; r < nr; r++) {
            float m = st[r * LM_LOSS_AUX_PER_ROW], lse = st[r * LM_LOSS_AUX_PER_ROW + 1];
            for (int64_t k = 0; k < D; k++) d[r * D + k] = -g[r] * ((p[r * D + k] - m) - lse);
        }
    } else if (logits) { /* log_softmax backward of u = -g t: u - softmax sum(u) */
        softmax_from_stats(p, st, nr, D, d);
        for (int64_t r = 0; r < nr; r++) {
            const float *tr = t + r * D;
            float *dr = d + r * D, gts = g[r] * (float)lm_row_sum(tr, D);
            for (int64_t k = 0; k < D; k++) dr[k] = dr[k] * gts - g[r] * tr[k];
        }
    } else if (wrt_t) { /* -g log(clip(p / s)) */
        for (int64_t r = 0; r < nr; r++)
            for (int64_t k = 0; k < D; k++)
                d[r * D + k] = p[r * D + k] / st[r * LM_LOSS_AUX_PER_ROW];
        for (int64_t i = 0; i < nr * D; i++) d[i] = lm_vlog(lm_clip_prob(d[i]));
        for (int64_t r = 0; r < nr; r++)
            for (int64_t k = 0; k < D; k++) d[r * D + k] *= -g[r];
    } else { /* u = dL/dq = -g t / clip(q) clip'(q), q = p / s; dL/dp = (u - sum(u q)) / s */
        for (int64_t r = 0; r < nr; r++) {
            const float *restrict tr = t + r * D, *restrict pr = p + r * D;
            float *restrict dr = d + r * D, s = st[r * LM_LOSS_AUX_PER_ROW], dot = 0;
            LM_SIMD
            for (int64_t k = 0; k < D; k++) {
                float q = pr[k] / s;
                dr[k] = -g[r] * tr[k] / lm_clip_prob(q) * lm_clip_pass(q);
            }
            for (int64_t k = 0; k < D; k++) dot += dr[k] * (pr[k] / s);
            for (int64_t k = 0; k < D; k++) dr[k] = (dr[k] - dot) / s;
        }
    }
}

static lm_status k_cce_grad(lm_kcall *c) {
    const float *gy = lm_f(&c->in[0]), *t = lm_f(&c->in[1]), *p = lm_f(&c->in[2]);
    const float *aux = c->in_aux[3];
    float *gx = lm_f(&c->out);
    int64_t rows = c->in[0].n, D = rows ? c->in[2].n / rows : 0;
    int64_t rpc = lm_rows_per_chunk(D), nch = (rows + rpc - 1) / rpc;
    bool logits = c->p->flag, wrt_t = c->p->kind == 0;
    int nt = c->env->nthreads;
    LM_PAR_FOR(nt > 1 && c->in[2].n > 32768, nt, ch, nch, {
        int64_t r0 = ch * rpc, nr = lm_min64(rpc, rows - r0);
        cce_chunk(t + r0 * D, p + r0 * D, gy + r0, aux + r0 * LM_LOSS_AUX_PER_ROW, gx + r0 * D, nr,
                  D, logits, wrt_t);
    });
    return LM_OK;
}

static lm_status k_sparse_grad(lm_kcall *c) {
    const float *aux = c->in_aux[3];
    const lm_tv *lab = &c->in[1];
    bool logits = c->p->flag;
    int64_t rows = c->in[0].n, D = rows ? c->in[2].n / rows : 0;
    lm_status st0 = lm_check_labels(c, lab, rows, D);
    if (st0) return st0;
    const float *gy = lm_f(&c->in[0]), *p = lm_f(&c->in[2]);
    float *gx = lm_f(&c->out);
    int64_t rpc = lm_rows_per_chunk(D), nch = (rows + rpc - 1) / rpc;
    int nt = c->env->nthreads;
    LM_PAR_FOR(nt > 1 && c->in[2].n > 32768, nt, ch, nch, {
        int64_t r0 = ch * rpc, nr = lm_min64(rpc, rows - r0);
        const float *st = aux + r0 * LM_LOSS_AUX_PER_ROW;
        if (logits) softmax_from_stats(p + r0 * D, st, nr, D, gx + r0 * D);
        for (int64_t r = 0; r < nr; r++) {
            const float *restrict pr = p + (r0 + r) * D;
            float *restrict d = gx + (r0 + r) * D, ct = gy[r0 + r];
            int64_t l;
            lm_read_label(lab, r0 + r, D, &l);
            if (logits) { /* (softmax - onehot) g */
                for (int64_t k = 0; k < D; k++) d[k] *= ct;
                d[l] -= ct;
            } else {
                float s = st[r * LM_LOSS_AUX_PER_ROW], q = pr[l] / s;
                float u = -ct / lm_clip_prob(q) * lm_clip_pass(q), dot = u * q;
                for (int64_t k = 0; k < D; k++) d[k] = -dot / s;
                d[l] = (u - dot) / s;
            }
        }
    });
    return LM_OK;
}

#define GRAD_ROW(nm, kern, n)                                                                      \
    const lm_op_def lm_opdef_##nm = {.name = #nm,                                                  \
                                     .min_in = n,                                                  \
                                     .max_in = n,                                                  \
                                     .flags = LM_OPF_GRAD_ONLY,                                    \
                                     .infer = infer_loss_grad,                                     \
                                     .kernel = {kern}};

GRAD_ROW(mse_grad, k_mse_grad, 3)
GRAD_ROW(mae_grad, k_mae_grad, 3)
GRAD_ROW(huber_grad, k_huber_grad, 3)
GRAD_ROW(binary_crossentropy_grad, k_bce_grad, 3)
GRAD_ROW(categorical_crossentropy_grad, k_cce_grad, 4)
GRAD_ROW(sparse_categorical_crossentropy_grad, k_sparse_grad, 4)
