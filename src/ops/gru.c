/* GRU over a whole sequence, gates in Keras order z, r, h:
 *   reset_after:  m = h_{s-1} R + b_rec,  z = ra(xz + mz), r = ra(xr + mr),
 *                 hh = a(xh + r mh)
 *   reset before: z = ra(xz + h R_z), r = ra(xr + h R_r), hh = a(xh + (r h) R_h)
 *   h_s = z h_{s-1} + (1 - z) hh
 * where x_ = x_t K + b_in. The input projection of every step is one GEMM;
 * each step adds one GEMM (reset_after) or two.
 *
 * aux (floats): z, r, hh after activation (N, T, 3H) by input step; u (N, T, H)
 * by input step, mh (reset_after) or r h_{s-1} (reset before); copy of h0 (N, H).
 * workspace (reset_after): m for the rows of every thread (N, 3H). */
#include "ops/rnn_impl.h"

typedef struct gru_aux {
    float *gates, *u, *h0;
} gru_aux;

static gru_aux gru_aux_at(float *base, const rnn_dims *d) {
    gru_aux a;
    a.gates = base;
    a.u = a.gates + d->N * d->T * d->G;
    a.h0 = a.u + d->N * d->T * d->H;
    return a;
}

static lm_status infer_gru(lm_infer *s) {
    return rnn_infer_cell(s, 3);
}

static size_t aux_gru(const lm_kcall *c) {
    rnn_dims d = rnn_dims_of(c);
    return (size_t)(d.N * d.T * (d.G + d.H) + d.N * d.H) * sizeof(float);
}

static size_t ws_gru(const lm_kcall *c) {
    rnn_dims d = rnn_dims_of(c);
    return c->p->rnn.reset_after ? (size_t)(d.N * d.G) * sizeof(float) : 0;
}

/* Mixes the candidate into the state: h = z hp + (1 - z) hh. */
static void gru_mix(const float *restrict z, const float *restrict hh, const float *restrict hp,
                    float *restrict h, int64_t H) {
    for (int64_t j = 0; j < H; j++) h[j] = z[j] * hp[j] + (1.0f - z[j]) * hh[j];
}

static void gru_fwd_rows(lm_kcall *c, const rnn_dims *d, int64_t n0, int64_t n1, const gru_aux *a,
                         float *M, int gnt) {
    const int64_t T = d->T, H = d->H, G = d->G, m = n1 - n0;
    const float *R = lm_f(&c->in[2]);
    const int ib = rnn_input_index(c->p->kind, RNN_HAS_BIAS);
    const float *brec = ib >= 0 && c->p->rnn.reset_after ? lm_f(&c->in[ib]) + G : NULL;
    float *hseq = lm_f(&c->out);
    const bool back = c->p->rnn.go_backwards, after = c->p->rnn.reset_after;
    const int act = c->p->rnn.activation, ract = c->p->rnn.recurrent_activation;
    const rnn_vec *vf = rnn_vec_for(c->env->isa);
    lm_gemm *gm = c->env->gemm;
    lm_gemm_epilogue ep = {brec, LM_GEMM_LINEAR};
    for (int64_t s = 0; s < T; s++) {
        const int64_t t = rnn_t(d, back, s), ldh = s ? T * H : H;
        const float *hp0 = s ? hseq + (n0 * T + s - 1) * H : a->h0 + n0 * H;
        float *g0 = a->gates + (n0 * T + t) * G;
        if (after) {
            lm_sgemm(gm, gnt, false, false, m, G, H, 1.0f, hp0, ldh, R, G, 0.0f, M + n0 * G, G,
                     brec ? &ep : NULL);
            for (int64_t n = n0; n < n1; n++) {
                float *restrict z = a->gates + (n * T + t) * G;
                const float *restrict mr = M + n * G;
                for (int64_t j = 0; j < 2 * H; j++) z[j] += mr[j];
            }
            vf->act_rows(ract, m, g0, T * G, 2 * H);
            for (int64_t n = n0; n < n1; n++) {
                float *restrict u = a->u + (n * T + t) * H;
                float *restrict hh = a->gates + (n * T + t) * G + 2 * H;
                const float *restrict mh = M + n * G + 2 * H, *restrict r = hh - H;
                for (int64_t j = 0; j < H; j++) {
                    u[j] = mh[j];
                    hh[j] += r[j] * u[j];
                }
            }
            vf->act_rows(act, m, g0 + 2 * H, T * G, H);
        } else {
            lm_sgemm(gm, gnt, false, false, m, 2 * H, H, 1.0f, hp0, ldh, R, G, 1.0f, g0, T * G,
                     NULL);
            vf->act_rows(ract, m, g0, T * G, 2 * H);
            for (int64_t n = n0; n < n1; n++) {
                const float *restrict r = a->gates + (n * T + t) * G + H;
                const float *restrict hp = hp0 + (n - n0) * ldh;
                float *restrict u = a->u + (n * T + t) * H;
                for (int64_t j = 0; j < H; j++) u[j] = r[j] * hp[j];
            }
            lm_sgemm(gm, gnt, false, false, m, H, H, 1.0f, a->u + (n0 * T + t) * H, T * H,
                     R + 2 * H, G, 1.0f, g0 + 2 * H, T * G, NULL);
            vf->act_rows(act, m, g0 + 2 * H, T * G, H);
        }
        for (int64_t n = n0; n < n1; n++) {
            const float *z = a->gates + (n * T + t) * G;
            gru_mix(z, z + 2 * H, hp0 + (n - n0) * ldh, hseq + (n * T + s) * H, H);
        }
    }
}

static lm_status k_gru(lm_kcall *c) {
    rnn_dims d = rnn_dims_of(c);
    const int ih = rnn_input_index(c->p->kind, RNN_HAS_H0);
    if (d.N == 0) return LM_OK;
    gru_aux a = gru_aux_at(c->aux, &d);
    float *hseq = lm_f(&c->out);
    const float *h0 = ih >= 0 ? lm_f(&c->in[ih]) : NULL;
    int nt = rnn_threads(c, &d), gnt = nt > 1 ? 1 : c->env->nthreads;
    LM_PARALLEL(nt > 1, nt, {
        int64_t n0, n1, H = d.H;
        rnn_my_rows(d.N, &n0, &n1);
        if (n1 > n0) {
            rnn_copy_or_zero(a.h0 + n0 * H, h0 ? h0 + n0 * H : NULL, (n1 - n0) * H);
            rnn_project(c, &d, n0, n1, a.gates, gnt);
            gru_fwd_rows(c, &d, n0, n1, &a, c->ws, gnt);
            rnn_final_state(&d, hseq, a.h0, hseq + d.N * d.T * H, n0, n1);
        }
    });
    return LM_OK;
}

static lm_status grad_gru(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    return rnn_grad(g, n, gy, gx, LM_OP_GRU_GRAD);
}

const lm_op_def lm_opdef_gru = {.name = "gru",
                                .min_in = 3,
                                .max_in = 5,
                                .infer = infer_gru,
                                .aux_bytes = aux_gru,
                                .ws_bytes = ws_gru,
                                .kernel = {k_gru},
                                .grad = grad_gru};

/* ---- backward: inputs (x, kernel, recurrent, forward, d packed) ----
 * workspace: dGx (N, T, 3H), the gradients of x_; dGr (N, T, 3H), those of m
 * (reset_after) or, reset before, dU (N, H) for r h; XH (N, T, F + H + 1) by
 * input step; R^T (3H, H). The dh0 piece of the output carries dh between
 * steps. */

static size_t ws_gru_grad(const lm_kcall *c) {
    rnn_dims d = rnn_dims_of(c);
    int64_t NT = d.N * d.T;
    int64_t second = c->p->rnn.reset_after ? NT * d.G : d.N * d.H;
    return (size_t)(NT * (d.G + rnn_xh_width(&d)) + second + d.G * d.H) * sizeof(float);
}

/* dz and dhh from dh for one row; dh becomes the direct carry dh z. */
static void gru_dmix(const float *restrict z, const float *restrict hh, const float *restrict hp,
                     float *restrict dh, float *restrict dz, float *restrict da, int64_t H) {
    for (int64_t j = 0; j < H; j++) {
        dz[j] = dh[j] * (hp[j] - hh[j]);
        da[j] = dh[j] * (1.0f - z[j]);
        dh[j] *= z[j];
    }
}

static void gru_bwd_rows(lm_kcall *c, const rnn_dims *d, int64_t n0, int64_t n1, const gru_aux *a,
                         const float *XH, const float *RT, float *dGx, float *dGr, float *dhc,
                         const float *dseq, int gnt) {
    const int64_t T = d->T, H = d->H, G = d->G, W = rnn_xh_width(d), m = n1 - n0;
    const bool back = c->p->rnn.go_backwards, after = c->p->rnn.reset_after;
    const int act = c->p->rnn.activation, ract = c->p->rnn.recurrent_activation;
    const rnn_vec *vf = rnn_vec_for(c->env->isa);
    lm_gemm *gm = c->env->gemm;
    const bool want_h0 = c->p->kind & RNN_HAS_H0;
    if (m <= 0) return;
    for (int64_t s = T - 1; s >= 0; s--) {
        const int64_t t = rnn_t(d, back, s);
        for (int64_t n = n0; n < n1; n++) {
            const int64_t row = n * T + t;
            const float *z = a->gates + row * G, *hp = XH + row * W + d->F;
            float *dh = dhc + n * H, *dx = dGx + row * G;
            if (dseq) {
                const float *ds = dseq + (n * T + s) * H;
                for (int64_t j = 0; j < H; j++) dh[j] += ds[j];
            }
            gru_dmix(z, z + 2 * H, hp, dh, dx, dx + 2 * H, H);
            vf->act_grad(act, dx + 2 * H, z + 2 * H, H); /* d(pre-activation of hh) */
            if (after) {
                const float *restrict r = z + H, *restrict u = a->u + row * H;
                float *restrict da = dx + 2 * H, *restrict dr = dx + H,
                                *restrict dx2 = dGr + row * G;
                for (int64_t j = 0; j < H; j++) {
                    dr[j] = da[j] * u[j];
                    dx2[2 * H + j] = da[j] * r[j];
                }
                vf->act_grad(ract, dx, z, 2 * H);
                memcpy(dx2, dx, (size_t)(2 * H) * sizeof *dx2);
            }
        }
        if (after) {
            if (s || want_h0) /* dh0 only for an h0 input */
                lm_sgemm(gm, gnt, false, false, m, H, G, 1.0f, dGr + (n0 * T + t) * G, T * G, RT, H,
                         1.0f, dhc + n0 * H, H, NULL);
            continue;
        }
        /* Reset before: dU = d(pre hh) R_h^T, then dr = dU h, dh += dU r. */
        lm_sgemm(gm, gnt, false, false, m, H, H, 1.0f, dGx + (n0 * T + t) * G + 2 * H, T * G,
                 RT + 2 * H * H, H, 0.0f, dGr + n0 * H, H, NULL);
        for (int64_t n = n0; n < n1; n++) {
            const int64_t row = n * T + t;
            const float *restrict z = a->gates + row * G, *restrict hp = XH + row * W + d->F,
                                  *restrict du = dGr + n * H;
            float *restrict dx = dGx + row * G, *restrict dh = dhc + n * H;
            for (int64_t j = 0; j < H; j++) {
                dx[H + j] = du[j] * hp[j];
                dh[j] += du[j] * z[H + j];
            }
            vf->act_grad(ract, dx, z, 2 * H);
        }
        if (s || want_h0)
            lm_sgemm(gm, gnt, false, false, m, H, 2 * H, 1.0f, dGx + (n0 * T + t) * G, T * G, RT, H,
                     1.0f, dhc + n0 * H, H, NULL);
    }
}

/* Reset before: this thread's columns of dR_zr = h_prev^T dG_zr and dR_h = (r h)^T dG_h. */
static void gru_dr_before(lm_kcall *c, const rnn_dims *d, const gru_aux *a, const float *XH,
                          const float *dGx, float *dR, int gnt) {
    const int64_t NT = d->N * d->T, H = d->H, G = d->G, W = rnn_xh_width(d);
    int64_t j0, j1;
    rnn_my_cols(G, &j0, &j1);
    if (NT == 0 || j1 <= j0) return; /* rnn_bwd_finish zeroed dR */
    int64_t z1 = j1 < 2 * H ? j1 : 2 * H, h0 = j0 > 2 * H ? j0 : 2 * H;
    if (z1 > j0)
        lm_sgemm(c->env->gemm, gnt, true, false, H, z1 - j0, NT, 1.0f, XH + d->F, W, dGx + j0, G,
                 0.0f, dR + j0, G, NULL);
    if (j1 > h0)
        lm_sgemm(c->env->gemm, gnt, true, false, H, j1 - h0, NT, 1.0f, a->u, H, dGx + h0, G, 0.0f,
                 dR + h0, G, NULL);
}

static lm_status k_gru_grad(lm_kcall *c) {
    rnn_dims d = rnn_dims_of(c);
    const bool after = c->p->rnn.reset_after;
    int64_t off[RNN_G_END + 1];
    rnn_grad_layout(&d, c->p->depth, 1, off);
    float *out = lm_f(&c->out);
    if (!c->out.n) return LM_OK;
    if (d.N == 0) {
        memset(out, 0, (size_t)c->out.n * sizeof *out);
        return LM_OK;
    }
    const int64_t NT = d.N * d.T, H = d.H, G = d.G;
    gru_aux a = gru_aux_at(c->in_aux[3], &d);
    float *dGx = c->ws, *dGr = dGx + NT * G, *XH = dGr + (after ? NT * G : d.N * H);
    float *RT = XH + NT * rnn_xh_width(&d), *dhc = out + off[RNN_G_H0];
    rnn_dy dy = rnn_dy_of(c, &d);
    int nt = rnn_threads(c, &d), gnt = nt > 1 ? 1 : c->env->nthreads;
    LM_PARALLEL(nt > 1, nt, {
        int64_t n0, n1;
        rnn_my_rows(d.N, &n0, &n1);
        rnn_copy_or_zero(dhc + n0 * H, dy.h ? dy.h + n0 * H : NULL, (n1 - n0) * H);
        rnn_bwd_prepare(c, &d, a.h0, XH, RT, n0, n1);
        gru_bwd_rows(c, &d, n0, n1, &a, XH, RT, dGx, dGr, dhc, dy.seq, gnt);
        rnn_bwd_finish(c, &d, dGx, after ? dGr : NULL, XH, c->p->depth, out, off, n0, n1, gnt);
        if (!after) gru_dr_before(c, &d, &a, XH, dGx, out + off[RNN_G_RECURRENT], gnt);
    });
    return LM_OK;
}

const lm_op_def lm_opdef_gru_grad = {.name = "gru_grad",
                                     .min_in = 5,
                                     .max_in = 5,
                                     .flags = LM_OPF_GRAD_ONLY,
                                     .infer = rnn_infer_grad,
                                     .ws_bytes = ws_gru_grad,
                                     .kernel = {k_gru_grad}};

lm_node *lm_op_gru(lm_graph *g, lm_node *x, lm_node *kernel, lm_node *recurrent, lm_node *bias,
                   lm_node *h0, lm_rnn_opts o, lm_node **h_last) {
    lm_rnn_opts r = rnn_resolve(o, true);
    lm_params p = rnn_params(r, bias, h0, NULL, 1, r.reset_after ? 2 : 1);
    return rnn_build(g, LM_OP_GRU, x, kernel, recurrent, bias, h0, NULL, &p, h_last, NULL);
}
