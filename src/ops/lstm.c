/* LSTM over a whole sequence, gates in Keras order i, f, c, o:
 *   z = x_t K + b + h_{s-1} R,  i = ra(z_i), f = ra(z_f), g = a(z_c), o = ra(z_o)
 *   c_s = f c_{s-1} + i g,  h_s = o a(c_s)
 * The input projection of every step is one GEMM; each step adds one GEMM
 * h_{s-1} R (N x H x 4H) and one fused pass over the gates.
 *
 * aux (floats): gates i, f, g, o after activation (N, T, 4H) by input step,
 * c_s and a(c_s) (N, T, H) by processing step, copies of h0 and c0 (N, H). */
#include "ops/rnn_impl.h"

typedef struct lstm_aux {
    float *gates, *cs, *acs, *h0, *c0;
} lstm_aux;

static lstm_aux lstm_aux_at(float *base, const rnn_dims *d) {
    const int64_t NT = d->N * d->T;
    lstm_aux a;
    a.gates = base;
    a.cs = a.gates + NT * d->G;
    a.acs = a.cs + NT * d->H;
    a.h0 = a.acs + NT * d->H;
    a.c0 = a.h0 + d->N * d->H;
    return a;
}

static lm_status infer_lstm(lm_infer *s) {
    return rnn_infer_cell(s, 4);
}

static size_t aux_lstm(const lm_kcall *c) {
    rnn_dims d = rnn_dims_of(c);
    return (size_t)(d.N * d.T * (d.G + 2 * d.H) + 2 * d.N * d.H) * sizeof(float);
}

static void lstm_fwd_rows(lm_kcall *c, const rnn_dims *d, int64_t n0, int64_t n1, const lstm_aux *a,
                          int gnt) {
    const int64_t T = d->T, H = d->H, G = d->G, m = n1 - n0;
    const float *R = lm_f(&c->in[2]);
    float *hseq = lm_f(&c->out);
    const bool back = c->p->rnn.go_backwards;
    const int act = c->p->rnn.activation, ract = c->p->rnn.recurrent_activation;
    const rnn_vec *vf = rnn_vec_for(c->env->isa);
    const bool zero_h0 = !(c->p->kind & RNN_HAS_H0);
    for (int64_t s = 0; s < T; s++) {
        const int64_t t = rnn_t(d, back, s);
        const float *hp = s ? hseq + (n0 * T + s - 1) * H : a->h0 + n0 * H;
        if (s || !zero_h0) /* a zero initial state adds nothing */
            lm_sgemm(c->env->gemm, gnt, false, false, m, G, H, 1.0f, hp, s ? T * H : H, R, G, 1.0f,
                     a->gates + (n0 * T + t) * G, T * G, NULL);
        const float *cp = s ? a->cs + (n0 * T + s - 1) * H : a->c0 + n0 * H;
        const int64_t o = (n0 * T + s) * H;
        vf->lstm_fwd_rows(act, ract, m, H, a->gates + (n0 * T + t) * G, T * G, cp, s ? T * H : H,
                          a->cs + o, a->acs + o, hseq + o, T * H);
    }
}

static lm_status k_lstm(lm_kcall *c) {
    rnn_dims d = rnn_dims_of(c);
    const int ih = rnn_input_index(c->p->kind, RNN_HAS_H0),
              ic = rnn_input_index(c->p->kind, RNN_HAS_C0);
    if (d.N == 0) return LM_OK;
    lstm_aux a = lstm_aux_at(c->aux, &d);
    float *hseq = lm_f(&c->out), *hlast = hseq + d.N * d.T * d.H;
    const float *h0 = ih >= 0 ? lm_f(&c->in[ih]) : NULL, *c0 = ic >= 0 ? lm_f(&c->in[ic]) : NULL;
    int nt = rnn_threads(c, &d), gnt = nt > 1 ? 1 : c->env->nthreads;
    /* Each thread runs its rows from the input projection to the final states. */
    LM_PARALLEL(nt > 1, nt, {
        int64_t n0, n1, H = d.H;
        rnn_my_rows(d.N, &n0, &n1);
        if (n1 > n0) {
            rnn_copy_or_zero(a.h0 + n0 * H, h0 ? h0 + n0 * H : NULL, (n1 - n0) * H);
            rnn_copy_or_zero(a.c0 + n0 * H, c0 ? c0 + n0 * H : NULL, (n1 - n0) * H);
            rnn_project(c, &d, n0, n1, a.gates, gnt);
            lstm_fwd_rows(c, &d, n0, n1, &a, gnt);
            rnn_final_state(&d, hseq, a.h0, hlast, n0, n1);
            rnn_final_state(&d, a.cs, a.c0, hlast + d.N * H, n0, n1);
        }
    });
    return LM_OK;
}

static lm_status grad_lstm(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    return rnn_grad(g, n, gy, gx, LM_OP_LSTM_GRAD);
}

const lm_op_def lm_opdef_lstm = {.name = "lstm",
                                 .min_in = 3,
                                 .max_in = 6,
                                 .infer = infer_lstm,
                                 .aux_bytes = aux_lstm,
                                 .kernel = {k_lstm},
                                 .grad = grad_lstm};

/* ---- backward: inputs (x, kernel, recurrent, forward, d packed) ----
 * workspace: dG (N, T, 4H) gate pre-activation gradients and XH (N, T, F + H
 * + 1) by input step, R^T (4H, H), a zero row (H) for a zero sequence
 * gradient. The dh0 and dc0 pieces of the output carry dh and dc between
 * steps. */

static size_t ws_lstm_grad(const lm_kcall *c) {
    rnn_dims d = rnn_dims_of(c);
    return (size_t)(d.N * d.T * (d.G + rnn_xh_width(&d)) + d.G * d.H + d.H) * sizeof(float);
}

static void lstm_bwd_rows(lm_kcall *c, const rnn_dims *d, int64_t n0, int64_t n1, const lstm_aux *a,
                          float *dG, float *dhc, float *dcc, const float *RT, const float *dseq,
                          const float *zrow, int gnt) {
    const int64_t T = d->T, H = d->H, G = d->G, m = n1 - n0;
    const bool back = c->p->rnn.go_backwards;
    const int act = c->p->rnn.activation, ract = c->p->rnn.recurrent_activation;
    const rnn_vec *vf = rnn_vec_for(c->env->isa);
    const bool want_h0 = c->p->kind & RNN_HAS_H0;
    if (m <= 0) return;
    for (int64_t s = T - 1; s >= 0; s--) {
        const int64_t t = rnn_t(d, back, s);
        for (int64_t n = n0; n < n1; n++) {
            const float *cp = s ? a->cs + (n * T + s - 1) * H : a->c0 + n * H;
            vf->lstm_bwd_row(act, ract, a->gates + (n * T + t) * G, cp, a->acs + (n * T + s) * H,
                             dseq ? dseq + (n * T + s) * H : zrow, dhc + n * H, dcc + n * H,
                             dG + (n * T + t) * G, H);
        }
        if (s || want_h0) /* dh0 only for an h0 input */
            lm_sgemm(c->env->gemm, gnt, false, false, m, H, G, 1.0f, dG + (n0 * T + t) * G, T * G,
                     RT, H, 0.0f, dhc + n0 * H, H, NULL);
    }
}

static lm_status k_lstm_grad(lm_kcall *c) {
    rnn_dims d = rnn_dims_of(c);
    int64_t off[RNN_G_END + 1];
    rnn_grad_layout(&d, 1, 2, off);
    float *out = lm_f(&c->out);
    if (!c->out.n) return LM_OK;
    if (d.N == 0) {
        memset(out, 0, (size_t)c->out.n * sizeof *out);
        return LM_OK;
    }
    const int64_t NT = d.N * d.T;
    lstm_aux a = lstm_aux_at(c->in_aux[3], &d);
    float *dG = c->ws, *XH = dG + NT * d.G, *RT = XH + NT * rnn_xh_width(&d),
          *zrow = RT + d.G * d.H;
    float *dhc = out + off[RNN_G_H0], *dcc = out + off[RNN_G_C0];
    rnn_dy dy = rnn_dy_of(c, &d);
    memset(zrow, 0, (size_t)d.H * sizeof *zrow);
    int nt = rnn_threads(c, &d), gnt = nt > 1 ? 1 : c->env->nthreads;
    LM_PARALLEL(nt > 1, nt, {
        int64_t n0, n1, H = d.H;
        rnn_my_rows(d.N, &n0, &n1);
        rnn_copy_or_zero(dhc + n0 * H, dy.h ? dy.h + n0 * H : NULL, (n1 - n0) * H);
        rnn_copy_or_zero(dcc + n0 * H, dy.c ? dy.c + n0 * H : NULL, (n1 - n0) * H);
        rnn_bwd_prepare(c, &d, a.h0, XH, RT, n0, n1);
        lstm_bwd_rows(c, &d, n0, n1, &a, dG, dhc, dcc, RT, dy.seq, zrow, gnt);
        rnn_bwd_finish(c, &d, dG, dG, XH, 1, out, off, n0, n1, gnt);
    });
    return LM_OK;
}

const lm_op_def lm_opdef_lstm_grad = {.name = "lstm_grad",
                                      .min_in = 5,
                                      .max_in = 5,
                                      .flags = LM_OPF_GRAD_ONLY,
                                      .infer = rnn_infer_grad,
                                      .ws_bytes = ws_lstm_grad,
                                      .kernel = {k_lstm_grad}};

lm_node *lm_op_lstm(lm_graph *g, lm_node *x, lm_node *kernel, lm_node *recurrent, lm_node *bias,
                    lm_node *h0, lm_node *c0, lm_rnn_opts o, lm_node **h_last, lm_node **c_last) {
    lm_params p = rnn_params(rnn_resolve(o, false), bias, h0, c0, 2, 1);
    return rnn_build(g, LM_OP_LSTM, x, kernel, recurrent, bias, h0, c0, &p, h_last, c_last);
}
