/* Backward-only ops of batch_norm and layer_norm. They read the statistics
 * the forward kernel saved in its aux memory: per channel (batch norm) or per
 * row (layer norm) mean and 1/sqrt(var + eps), and for batch norm a flag
 * telling whether the batch statistics were used (a training run).
 *
 * norm_param_grad(gy, x, fwd) -> dgamma = sum over rows of gy * xhat, and
 *   keeps dbeta = sum over rows of gy in its aux (norm_beta_grad copies it
 *   out), so that one pass gives both and batch_norm_grad reuses them.
 * batch_norm_grad(gy, x, fwd, param_grad[, gamma]) -> dx.
 * layer_norm_grad(gy, x, fwd[, gamma]) -> dx, fused per row. */
#include "graph/graph_impl.h"
#include "ops/norm_impl.h"
#include <string.h>

/* gy and x have the same shape; the node input `fi` is a forward op of `want`. */
static lm_status check_grad_inputs(lm_infer *s, int fi, int want) {
    char a[96], b[96];
    lm_shape gy = s->in[0], x = s->in[1];
    const lm_node *f = s->node->in[fi];
    if (f->op != want)
        return lm_infer_fail(s, LM_ERR_ARG, "input %d must be a %s node, got %s", fi,
                             lm_op_get(want)->name, lm_op_get(f->op)->name);
    bool same = gy.ndim == x.ndim && gy.ndim >= 1;
    for (int i = 0; same && i < gy.ndim; i++)
        if (gy.dims[i] >= 0 && x.dims[i] >= 0 && gy.dims[i] != x.dims[i]) same = false;
    if (!same)
        return lm_infer_fail(s, LM_ERR_SHAPE, "gradient %s and input %s differ", lm_shp(gy, a),
                             lm_shp(x, b));
    if (s->in_dt[0] != LM_F32 || s->in_dt[1] != LM_F32)
        return lm_infer_fail(s, LM_ERR_DTYPE, "needs float32 inputs, got %s and %s",
                             lm_dtype_name(s->in_dt[0]), lm_dtype_name(s->in_dt[1]));
    return LM_OK;
}

/* ---- norm_param_grad ---- */

static lm_status infer_norm_param_grad(lm_infer *s) {
    int want = s->p->kind == NORM_KIND_LAYER ? LM_OP_LAYER_NORM : LM_OP_BATCH_NORM;
    lm_status st = check_grad_inputs(s, 2, want);
    if (st) return st;
    s->out = (lm_shape){1, {s->in[1].dims[s->in[1].ndim - 1]}};
    s->out_dt = LM_F32;
    return LM_OK;
}

static size_t aux_norm_param_grad(const lm_kcall *c) {
    return (size_t)c->out.n * sizeof(float);
}

static size_t ws_norm_param_grad(const lm_kcall *c) {
    int64_t C = norm_channels(&c->in[1]), rows = norm_rows(&c->in[1]);
    return (size_t)(norm_tiling(rows, C).nch * 2 * C) * sizeof(double);
}

static lm_status k_norm_param_grad(lm_kcall *c) {
    const float *gy = lm_f(&c->in[0]), *x = lm_f(&c->in[1]);
    int64_t C = norm_channels(&c->in[1]), rows = norm_rows(&c->in[1]);
    norm_tiles tl = norm_tiling(rows, C);
    int64_t nch = tl.nch, ncb = tl.ncb;
    bool layer = c->p->kind == NORM_KIND_LAYER;
    const float *mean = c->in_aux[2], *istd = mean ? mean + (layer ? rows : C) : NULL;
    float *dgamma = lm_f(&c->out), *dbeta = c->aux;
    double *ws = c->ws;
    int nt = c->env->nthreads;
    /* Tiled as the batch moments (norm_tiling). */
    LM_PAR_FOR(nt > 1 && rows * C >= NORM_PAR_MIN, nt, t, nch * ncb, {
        int64_t ch = t / ncb, c0 = (t % ncb) * tl.cbw, w = lm_min64(C - c0, tl.cbw);
        int64_t r0 = rows * ch / nch, r1 = rows * (ch + 1) / nch;
        double *restrict sg = ws + ch * 2 * C + c0, *restrict sb = sg + C;
        for (int64_t j = 0; j < w; j++) sg[j] = sb[j] = 0;
        for (int64_t r = r0; r < r1; r++) {
            const float *restrict g = gy + r * C + c0, *restrict xr = x + r * C + c0;
            if (layer) {
                float m = mean[r], is = istd[r];
                for (int64_t j = 0; j < w; j++) {
                    sg[j] += (double)(g[j] * ((xr[j] - m) * is));
                    sb[j] += (double)g[j];
                }
            } else {
                const float *restrict m = mean + c0; /* istd applied after the sum */
                for (int64_t j = 0; j < w; j++) {
                    sg[j] += (double)g[j] * ((double)xr[j] - (double)m[j]);
                    sb[j] += (double)g[j];
                }
            }
        }
    });
    for (int64_t j = 0; j < C; j++) {
        double G = 0, B = 0;
        for (int64_t ch = 0; ch < nch; ch++) {
            G += ws[ch * 2 * C + j];
            B += ws[ch * 2 * C + C + j];
        }
        dgamma[j] = (float)(layer ? G : G * (double)istd[j]);
        dbeta[j] = (float)B;
    }
    return LM_OK;
}

const lm_op_def lm_opdef_norm_param_grad = {.name = "norm_param_grad",
                                            .min_in = 3,
                                            .max_in = 3,
                                            .flags = LM_OPF_GRAD_ONLY,
                                            .infer = infer_norm_param_grad,
                                            .aux_bytes = aux_norm_param_grad,
                                            .ws_bytes = ws_norm_param_grad,
                                            .kernel = {k_norm_param_grad}};

/* ---- norm_beta_grad(param_grad): the dbeta kept in norm_param_grad's aux ---- */

static lm_status infer_norm_beta_grad(lm_infer *s) {
    const lm_node *pg = s->node->in[0];
    if (pg->op != LM_OP_NORM_PARAM_GRAD)
        return lm_infer_fail(s, LM_ERR_ARG, "input must be a norm_param_grad node, got %s",
                             lm_op_get(pg->op)->name);
    s->out = s->in[0];
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_norm_beta_grad(lm_kcall *c) {
    if (c->out.n) memcpy(c->out.p, c->in_aux[0], (size_t)c->out.n * sizeof(float));
    return LM_OK;
}

const lm_op_def lm_opdef_norm_beta_grad = {.name = "norm_beta_grad",
                                           .min_in = 1,
                                           .max_in = 1,
                                           .flags = LM_OPF_GRAD_ONLY,
                                           .infer = infer_norm_beta_grad,
                                           .kernel = {k_norm_beta_grad}};

/* ---- batch_norm_grad ---- */

/* Checks the optional gamma input i against the channels of x. */
static lm_status check_gamma(lm_infer *s, int i) {
    char a[96], b[96];
    lm_shape x = s->in[1];
    bool has = s->p->kind & NORM_GAMMA;
    if (s->n_in != i + has)
        return lm_infer_fail(s, LM_ERR_ARG, "got %d inputs, expected %d", s->n_in, i + has);
    int64_t C = x.dims[x.ndim - 1];
    if (has && (s->in[i].ndim != 1 || (C >= 0 && s->in[i].dims[0] != C)))
        return lm_infer_fail(s, LM_ERR_SHAPE, "gamma %s does not match input %s",
                             lm_shp(s->in[i], a), lm_shp(x, b));
    return LM_OK;
}

static lm_status infer_batch_norm_grad(lm_infer *s) {
    lm_status st = check_grad_inputs(s, 2, LM_OP_BATCH_NORM);
    if (!st && s->node->in[3]->op != LM_OP_NORM_PARAM_GRAD)
        return lm_infer_fail(s, LM_ERR_ARG, "input 3 must be a norm_param_grad node, got %s",
                             lm_op_get(s->node->in[3]->op)->name);
    if (!st) st = check_gamma(s, 4);
    if (st) return st;
    s->out = s->in[1];
    s->out_dt = LM_F32;
    return LM_OK;
}

/* Per-channel coefficients: a = gamma * istd, mean(gy), b = a * istd * mean(gy * xhat). */
static size_t ws_batch_norm_grad(const lm_kcall *c) {
    return (size_t)(3 * norm_channels(&c->out)) * sizeof(float);
}

static lm_status k_batch_norm_grad(lm_kcall *c) {
    const float *gy = lm_f(&c->in[0]), *x = lm_f(&c->in[1]);
    const float *gamma = (c->p->kind & NORM_GAMMA) ? lm_f(&c->in[4]) : NULL;
    int64_t C = norm_channels(&c->out), rows = norm_rows(&c->out);
    const float *mean = c->in_aux[2], *istd = mean + C;
    bool batch = istd[C] != 0;
    const float *sg = lm_f(&c->in[3]), *sb = c->in_aux[3];
    float *a = c->ws, *mg = a + C, *b = mg + C, *dx = lm_f(&c->out);
    int nt = c->env->nthreads;
    float inv_n = rows ? 1.0f / (float)rows : 0.0f;
    for (int64_t j = 0; j < C; j++) {
        a[j] = gamma ? gamma[j] * istd[j] : istd[j];
        mg[j] = batch ? sb[j] * inv_n : 0.0f;
        b[j] = batch ? a[j] * istd[j] * (sg[j] * inv_n) : 0.0f;
    }
    /* dx = a * (gy - mean(gy) - xhat * mean(gy * xhat)); only a * gy at inference. */
    LM_PAR_FOR(nt > 1 && rows * C >= NORM_PAR_MIN, nt, r, rows, {
        const float *restrict g = gy + r * C, *restrict xr = x + r * C;
        float *restrict d = dx + r * C;
        for (int64_t j = 0; j < C; j++) d[j] = a[j] * (g[j] - mg[j]) - b[j] * (xr[j] - mean[j]);
    });
    return LM_OK;
}

const lm_op_def lm_opdef_batch_norm_grad = {.name = "batch_norm_grad",
                                            .min_in = 4,
                                            .max_in = 5,
                                            .flags = LM_OPF_GRAD_ONLY,
                                            .infer = infer_batch_norm_grad,
                                            .ws_bytes = ws_batch_norm_grad,
                                            .kernel = {k_batch_norm_grad}};

/* ---- layer_norm_grad ---- */

static lm_status infer_layer_norm_grad(lm_infer *s) {
    lm_status st = check_grad_inputs(s, 2, LM_OP_LAYER_NORM);
    if (!st) st = check_gamma(s, 3);
    if (st) return st;
    s->out = s->in[1];
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_layer_norm_grad(lm_kcall *c) {
    const float *gy = lm_f(&c->in[0]), *x = lm_f(&c->in[1]);
    const float *gamma = (c->p->kind & NORM_GAMMA) ? lm_f(&c->in[3]) : NULL;
    int64_t C = norm_channels(&c->out), rows = norm_rows(&c->out);
    const float *mean = c->in_aux[2], *istd = mean + rows;
    float *dx = lm_f(&c->out);
    int nt = c->env->nthreads;
    if (C == 0) return LM_OK;
#pragma omp parallel for num_threads(nt) if (nt > 1 && rows * C >= NORM_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *restrict g = gy + r * C, *restrict xr = x + r * C;
        float *restrict d = dx + r * C;
        float m = mean[r], is = istd[r];
        /* With g' = gy * gamma: dx = istd * (g' - mean(g') - xhat * mean(g' * xhat)). */
        double s1 = 0, s2 = 0;
        if (gamma) {
#pragma omp simd reduction(+ : s1, s2)
            for (int64_t j = 0; j < C; j++) {
                float gg = g[j] * gamma[j];
                s1 += gg;
                s2 += gg * ((xr[j] - m) * is);
            }
        } else {
#pragma omp simd reduction(+ : s1, s2)
            for (int64_t j = 0; j < C; j++) {
                s1 += g[j];
                s2 += g[j] * ((xr[j] - m) * is);
            }
        }
        float m1 = (float)(s1 / (double)C), m2 = (float)(s2 / (double)C);
        if (gamma)
            for (int64_t j = 0; j < C; j++)
                d[j] = is * (g[j] * gamma[j] - m1 - ((xr[j] - m) * is) * m2);
        else
            for (int64_t j = 0; j < C; j++) d[j] = is * (g[j] - m1 - ((xr[j] - m) * is) * m2);
    }
    return LM_OK;
}

const lm_op_def lm_opdef_layer_norm_grad = {.name = "layer_norm_grad",
                                            .min_in = 3,
                                            .max_in = 4,
                                            .flags = LM_OPF_GRAD_ONLY,
                                            .infer = infer_layer_norm_grad,
                                            .kernel = {k_layer_norm_grad}};
