/* Batch and layer normalisation over the last axis (channels last), with the
 * Keras 3 numerics: biased variance, inv = rsqrt(var + eps) * gamma and
 * y = x * inv + (beta - mean * inv). Statistics accumulate in double.
 *
 * batch_norm inputs: x, moving_mean, moving_var, then gamma and beta when
 * p.kind has NORM_GAMMA / NORM_BETA; f[0] = momentum, f[1] = epsilon.
 * layer_norm inputs: x, then gamma and beta likewise; f[1] = epsilon.
 * The backward-only ops are in norm_grad.c. */
#include "graph/graph_impl.h"
#include "ops/norm_impl.h"
#include <math.h>
#include <string.h>

/* ---- shape rules ---- */

/* Checks a per-channel parameter: float32, shape (C). */
static lm_status check_param(lm_infer *s, int i, const char *what) {
    char a[96], b[96];
    lm_shape x = s->in[0], p = s->in[i];
    int64_t C = x.dims[x.ndim - 1];
    if (s->in_dt[i] != LM_F32)
        return lm_infer_fail(s, LM_ERR_DTYPE, "%s %s must be float32, got %s", what, lm_shp(p, b),
                             lm_dtype_name(s->in_dt[i]));
    if (p.ndim != 1 || (C >= 0 && p.dims[0] >= 0 && p.dims[0] != C))
        return lm_infer_fail(s, LM_ERR_SHAPE, "%s %s does not match the last axis of input %s",
                             what, lm_shp(p, b), lm_shp(x, a));
    return LM_OK;
}

static lm_status check_input(lm_infer *s) {
    char a[96];
    if (s->in_dt[0] != LM_F32)
        return lm_infer_fail(s, LM_ERR_DTYPE, "needs a float32 input, got %s %s",
                             lm_dtype_name(s->in_dt[0]), lm_shp(s->in[0], a));
    if (s->in[0].ndim < 1)
        return lm_infer_fail(s, LM_ERR_SHAPE, "input %s needs at least one axis",
                             lm_shp(s->in[0], a));
    float eps = s->p->f[1];
    if (!(eps >= 0 && isfinite(eps)))
        return lm_infer_fail(s, LM_ERR_ARG, "epsilon %g must be finite and >= 0 (input %s)",
                             (double)eps, lm_shp(s->in[0], a));
    return LM_OK;
}

/* Checks gamma and beta, starting at input `first`. */
static lm_status check_affine(lm_infer *s, int first) {
    int i = first;
    lm_status st = LM_OK;
    if (s->p->kind & NORM_GAMMA) st = check_param(s, i++, "gamma");
    if (!st && (s->p->kind & NORM_BETA)) st = check_param(s, i++, "beta");
    if (!st && i != s->n_in)
        return lm_infer_fail(s, LM_ERR_ARG, "got %d inputs, expected %d", s->n_in, i);
    return st;
}

static lm_status infer_batch_norm(lm_infer *s) {
    char a[96];
    lm_status st = check_input(s);
    if (st) return st;
    if (!isfinite(s->p->f[0]))
        return lm_infer_fail(s, LM_ERR_ARG, "momentum %g is not finite (input %s)",
                             (double)s->p->f[0], lm_shp(s->in[0], a));
    static const char *const names[2] = {"moving_mean", "moving_var"};
    for (int i = 1; i <= 2; i++) {
        if ((st = check_param(s, i, names[i - 1]))) return st;
        /* The kernel updates them in place, so they must own their storage. */
        const lm_node *v = s->node->in[i];
        if (v->op != LM_OP_VARIABLE)
            return lm_infer_fail(s, LM_ERR_ARG, "%s must be a variable, got %s node %s (input %s)",
                                 names[i - 1], lm_op_get(v->op)->name, v->name ? v->name : "",
                                 lm_shp(s->in[0], a));
    }
    if ((st = check_affine(s, 3))) return st;
    s->out = s->in[0];
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status infer_layer_norm(lm_infer *s) {
    lm_status st = check_input(s);
    if (!st) st = check_affine(s, 1);
    if (st) return st;
    s->out = s->in[0];
    s->out_dt = LM_F32;
    return LM_OK;
}

/* ---- batch_norm ---- */

static size_t aux_batch_norm(const lm_kcall *c) {
    return (size_t)(2 * norm_channels(&c->out) + 1) * sizeof(float);
}

/* Partial sums of the moments, then inv and res for the affine pass. */
static size_t ws_batch_norm(const lm_kcall *c) {
    int64_t C = norm_channels(&c->out), rows = norm_rows(&c->out);
    return (size_t)(norm_tiling(rows, C).nch * 2 * C) * sizeof(double) +
           (size_t)(2 * C) * sizeof(float);
}

/* Per-channel shifted sums over rows (shift K = the first row, so the
 * variance does not cancel when |mean| >> std), tiled by norm_tiling. */
static void col_moments(const float *x, int64_t rows, int64_t C, const float *K, double *ws, int nt,
                        float *mean, float *var) {
    norm_tiles tl = norm_tiling(rows, C);
    int64_t nch = tl.nch, ncb = tl.ncb;
    LM_PAR_FOR(nt > 1 && rows * C >= NORM_PAR_MIN, nt, t, nch * ncb, {
        int64_t ch = t / ncb, c0 = (t % ncb) * tl.cbw, w = lm_min64(C - c0, tl.cbw);
        int64_t r0 = rows * ch / nch, r1 = rows * (ch + 1) / nch;
        double *restrict s = ws + ch * 2 * C + c0, *restrict q = s + C;
        const float *restrict k = K + c0;
        for (int64_t j = 0; j < w; j++) s[j] = q[j] = 0;
        for (int64_t r = r0; r < r1; r++) {
            const float *restrict xr = x + r * C + c0;
            for (int64_t j = 0; j < w; j++) {
                double d = (double)xr[j] - (double)k[j];
                s[j] += d;
                q[j] += d * d;
            }
        }
    });
    for (int64_t c = 0; c < C; c++) {
        double S = 0, Q = 0;
        for (int64_t ch = 0; ch < nch; ch++) {
            S += ws[ch * 2 * C + c];
            Q += ws[ch * 2 * C + C + c];
        }
        double m = S / (double)rows, v = Q / (double)rows - m * m;
        mean[c] = (float)(K[c] + m);
        var[c] = (float)(v > 0 ? v : 0);
    }
}

/* y = x * inv[c] + res[c] over rows of C. */
static void affine_rows(const float *x, float *y, int64_t rows, int64_t C, const float *inv,
                        const float *res, int nt) {
    LM_PAR_FOR(nt > 1 && rows * C >= NORM_PAR_MIN, nt, r, rows, {
        const float *restrict xr = x + r * C;
        float *restrict yr = y + r * C;
        for (int64_t c = 0; c < C; c++) yr[c] = xr[c] * inv[c] + res[c];
    });
}

static lm_status k_batch_norm(lm_kcall *c) {
    const float *x = lm_f(&c->in[0]);
    float *mm = lm_f(&c->in[1]), *mv = lm_f(&c->in[2]);
    int kind = c->p->kind, gi = 3;
    const float *gamma = (kind & NORM_GAMMA) ? lm_f(&c->in[gi++]) : NULL;
    const float *beta = (kind & NORM_BETA) ? lm_f(&c->in[gi]) : NULL;
    int64_t C = norm_channels(&c->out), rows = norm_rows(&c->out);
    float mom = c->p->f[0], eps = c->p->f[1];
    float *mean = c->aux, *istd = mean + C, *flag = istd + C;
    double *part = c->ws;
    float *inv = (float *)(part + norm_tiling(rows, C).nch * 2 * C), *res = inv + C;
    int nt = c->env->nthreads;
    bool batch = c->env->training && rows > 0;
    if (batch) {
        col_moments(x, rows, C, x, part, nt, mean, istd);
        for (int64_t j = 0; j < C; j++) {
            float var = istd[j];
            mm[j] = mm[j] * mom + mean[j] * (1.0f - mom);
            mv[j] = mv[j] * mom + var * (1.0f - mom);
            istd[j] = 1.0f / sqrtf(var + eps);
        }
    } else {
        for (int64_t j = 0; j < C; j++) {
            mean[j] = mm[j];
            istd[j] = 1.0f / sqrtf(mv[j] + eps);
        }
    }
    *flag = batch ? 1.0f : 0.0f;
    for (int64_t j = 0; j < C; j++) {
        inv[j] = gamma ? istd[j] * gamma[j] : istd[j];
        res[j] = -mean[j] * inv[j];
        if (beta) res[j] += beta[j];
    }
    affine_rows(x, lm_f(&c->out), rows, C, inv, res, nt);
    return LM_OK;
}

static lm_status grad_batch_norm(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    lm_node *x = n->in[0];
    int kind = n->p.kind, gi = 3;
    lm_node *gamma = (kind & NORM_GAMMA) ? n->in[gi++] : NULL;
    int bi = (kind & NORM_BETA) ? gi : -1;
    lm_params p = lm_params_zero();
    p.kind = NORM_KIND_BATCH;
    lm_node *pin[3] = {gy, x, n};
    lm_node *pg = lm_node_make(g, LM_OP_NORM_PARAM_GRAD, 3, pin, &p);
    lm_node *din[5] = {gy, x, n, pg, gamma};
    p.kind = gamma ? NORM_GAMMA : 0;
    gx[0] = lm_node_make(g, LM_OP_BATCH_NORM_GRAD, gamma ? 5 : 4, din, &p);
    if (gamma) gx[3] = pg;
    if (bi >= 0) gx[bi] = lm_node_make(g, LM_OP_NORM_BETA_GRAD, 1, &pg, NULL);
    return LM_OK; /* the moving statistics get no gradient */
}

const lm_op_def lm_opdef_batch_norm = {.name = "batch_norm",
                                       .min_in = 3,
                                       .max_in = 5,
                                       .infer = infer_batch_norm,
                                       .aux_bytes = aux_batch_norm,
                                       .ws_bytes = ws_batch_norm,
                                       .kernel = {k_batch_norm},
                                       .grad = grad_batch_norm};

lm_node *lm_op_batch_norm(lm_graph *g, lm_node *x, lm_node *gamma, lm_node *beta,
                          lm_node *moving_mean, lm_node *moving_var, float momentum,
                          float epsilon) {
    lm_params p = lm_params_zero();
    p.f[0] = momentum;
    p.f[1] = epsilon;
    lm_node *in[5] = {x, moving_mean, moving_var};
    int n = 3;
    if (gamma) {
        p.kind |= NORM_GAMMA;
        in[n++] = gamma;
    }
    if (beta) {
        p.kind |= NORM_BETA;
        in[n++] = beta;
    }
    return lm_node_make(g, LM_OP_BATCH_NORM, n, in, &p);
}

/* ---- layer_norm ---- */

static size_t aux_layer_norm(const lm_kcall *c) {
    return (size_t)(2 * norm_rows(&c->out)) * sizeof(float);
}

static lm_status k_layer_norm(lm_kcall *c) {
    const float *x = lm_f(&c->in[0]);
    float *y = lm_f(&c->out);
    int kind = c->p->kind, gi = 1;
    const float *gamma = (kind & NORM_GAMMA) ? lm_f(&c->in[gi++]) : NULL;
    const float *beta = (kind & NORM_BETA) ? lm_f(&c->in[gi]) : NULL;
    int64_t C = norm_channels(&c->out), rows = norm_rows(&c->out);
    float eps = c->p->f[1], *mean = c->aux, *istd = mean + rows;
    int nt = c->env->nthreads;
#pragma omp parallel for num_threads(nt) if (nt > 1 && rows * C >= NORM_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *restrict xr = x + r * C;
        float *restrict yr = y + r * C;
        /* Two passes over a row that stays in cache: mean, then centred variance. */
        double s = 0, q = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < C; j++) s += xr[j];
        double m = s / (double)C;
#pragma omp simd reduction(+ : q)
        for (int64_t j = 0; j < C; j++) {
            double d = (double)xr[j] - m;
            q += d * d;
        }
        float mf = (float)m, is = 1.0f / sqrtf((float)(q / (double)C) + eps);
        mean[r] = mf;
        istd[r] = is;
        if (gamma && beta) {
            for (int64_t j = 0; j < C; j++) {
                float inv = is * gamma[j];
                yr[j] = xr[j] * inv + (-mf * inv + beta[j]);
            }
        } else if (gamma) {
            for (int64_t j = 0; j < C; j++) {
                float inv = is * gamma[j];
                yr[j] = xr[j] * inv + -mf * inv;
            }
        } else {
            float res = -mf * is;
            if (beta)
                for (int64_t j = 0; j < C; j++) yr[j] = xr[j] * is + (res + beta[j]);
            else
                for (int64_t j = 0; j < C; j++) yr[j] = xr[j] * is + res;
        }
    }
    return LM_OK;
}

static lm_status grad_layer_norm(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    lm_node *x = n->in[0];
    int kind = n->p.kind, gi = 1;
    lm_node *gamma = (kind & NORM_GAMMA) ? n->in[gi++] : NULL;
    int bi = (kind & NORM_BETA) ? gi : -1;
    lm_params p = lm_params_zero();
    p.kind = gamma ? NORM_GAMMA : 0;
    lm_node *din[4] = {gy, x, n, gamma};
    gx[0] = lm_node_make(g, LM_OP_LAYER_NORM_GRAD, gamma ? 4 : 3, din, &p);
    if (gamma || bi >= 0) {
        p.kind = NORM_KIND_LAYER;
        lm_node *pin[3] = {gy, x, n};
        lm_node *pg = lm_node_make(g, LM_OP_NORM_PARAM_GRAD, 3, pin, &p);
        if (gamma) gx[1] = pg;
        if (bi >= 0) gx[bi] = lm_node_make(g, LM_OP_NORM_BETA_GRAD, 1, &pg, NULL);
    }
    return LM_OK;
}

const lm_op_def lm_opdef_layer_norm = {.name = "layer_norm",
                                       .min_in = 1,
                                       .max_in = 3,
                                       .infer = infer_layer_norm,
                                       .aux_bytes = aux_layer_norm,
                                       .kernel = {k_layer_norm},
                                       .grad = grad_layer_norm};

lm_node *lm_op_layer_norm(lm_graph *g, lm_node *x, lm_node *gamma, lm_node *beta, float epsilon) {
    lm_params p = lm_params_zero();
    p.f[1] = epsilon;
    lm_node *in[3] = {x};
    int n = 1;
    if (gamma) {
        p.kind |= NORM_GAMMA;
        in[n++] = gamma;
    }
    if (beta) {
        p.kind |= NORM_BETA;
        in[n++] = beta;
    }
    return lm_node_make(g, LM_OP_LAYER_NORM, n, in, &p);
}
