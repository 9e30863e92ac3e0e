/* Recurrent ops, shared parts: activations the compiler can vectorise, the
 * shape rules, the views that take the packed output apart, the extraction of
 * input gradients, and the simple RNN cell (layout in rnn_impl.h). */
#include "ops/rnn_vmath.h"
#include <stdio.h>

static const rnn_vec rnn_vec_generic = RNN_VEC_TABLE;

const rnn_vec *rnn_vec_for(lm_isa isa) {
    if (isa >= LM_ISA_AVX512 && rnn_vec_avx512.act_rows) return &rnn_vec_avx512;
    if (isa >= LM_ISA_AVX2 && rnn_vec_avx2.act_rows) return &rnn_vec_avx2;
    return &rnn_vec_generic;
}

static bool act_supported(int a) {
    return a == LM_ACT_TANH || a == LM_ACT_SIGMOID || a == LM_ACT_RELU || a == LM_ACT_LINEAR ||
           a == LM_ACT_HARD_SIGMOID;
}

lm_rnn_opts rnn_resolve(lm_rnn_opts o, bool gru) {
    if (!o.activations_set) {
        if (o.activation == LM_ACT_LINEAR) o.activation = LM_ACT_TANH;
        if (o.recurrent_activation == LM_ACT_LINEAR) o.recurrent_activation = LM_ACT_SIGMOID;
        o.activations_set = true;
    }
    if (gru && !o.reset_after_set) {
        o.reset_after = true;
        o.reset_after_set = true;
    }
    return o;
}

lm_params rnn_params(lm_rnn_opts o, const lm_node *bias, const lm_node *h0, const lm_node *c0,
                     int states, int bias_rows) {
    lm_params p = lm_params_zero();
    p.rnn = o;
    p.kind = (bias ? RNN_HAS_BIAS : 0) | (h0 ? RNN_HAS_H0 : 0) | (c0 ? RNN_HAS_C0 : 0);
    p.axis = states;
    p.depth = bias_rows;
    return p;
}

/* ---- shape rules ---- */

/* "input (2, 5, 4), kernel (4, 12), ..." for messages. */
static const char *cell_shapes(const lm_infer *s, char *buf, size_t len) {
    static const char *const names[] = {"input", "kernel", "recurrent kernel"};
    char b[96];
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < s->n_in && k < len; i++) {
        const char *nm = i < 3                                            ? names[i]
                         : i == rnn_input_index(s->p->kind, RNN_HAS_BIAS) ? "bias"
                         : i == rnn_input_index(s->p->kind, RNN_HAS_H0)   ? "h0"
                                                                          : "c0";
        int w = snprintf(buf + k, len - k, "%s%s %s", i ? ", " : "", nm, lm_shp(s->in[i], b));
        if (w < 0) break;
        k += (size_t)w;
    }
    return buf;
}

static bool dim_ne(int64_t a, int64_t b) {
    return a >= 0 && b >= 0 && a != b;
}

lm_status rnn_infer_cell(lm_infer *s, int gates) {
    char all[600];
    const lm_params *p = s->p;
    int S = p->axis;
    if (s->n_in < 3)
        return lm_infer_fail(s, LM_ERR_ARG, "needs input, kernel and recurrent kernel");
    int want = 3 + !!(p->kind & RNN_HAS_BIAS) + !!(p->kind & RNN_HAS_H0) + !!(p->kind & RNN_HAS_C0);
    if (s->n_in != want)
        return lm_infer_fail(s, LM_ERR_ARG, "expected %d inputs, got %d", want, s->n_in);
    for (int i = 0; i < s->n_in; i++)
        if (s->in_dt[i] != LM_F32)
            return lm_infer_fail(s, LM_ERR_DTYPE, "needs float32 inputs, input %d is %s (%s)", i,
                                 lm_dtype_name(s->in_dt[i]), cell_shapes(s, all, sizeof all));
    for (int k = 0; k < 2; k++) {
        int a = k ? p->rnn.recurrent_activation : p->rnn.activation;
        if (!act_supported(a))
            return lm_infer_fail(s, LM_ERR_ARG,
                                 "%s %s is not supported (tanh, sigmoid, relu, linear and "
                                 "hard_sigmoid are); inputs %s",
                                 k ? "recurrent activation" : "activation",
                                 a >= 0 && a < LM_ACT_COUNT ? lm_activation_name((lm_activation)a)
                                                            : "(invalid)",
                                 cell_shapes(s, all, sizeof all));
    }
    lm_shape x = s->in[0], K = s->in[1], R = s->in[2];
    if (x.ndim != 3)
        return lm_infer_fail(s, LM_ERR_SHAPE, "input must be (batch, steps, features); got %s",
                             cell_shapes(s, all, sizeof all));
    if (K.ndim != 2 || R.ndim != 2)
        return lm_infer_fail(s, LM_ERR_SHAPE, "kernel and recurrent kernel must be 2-D; got %s",
                             cell_shapes(s, all, sizeof all));
    int64_t N = x.dims[0], T = x.dims[1], F = x.dims[2], H = R.dims[0];
    int64_t G = H >= 0 ? gates * H : -1;
    if (dim_ne(R.dims[1], G) || dim_ne(K.dims[1], G) || dim_ne(K.dims[0], F) ||
        dim_ne(K.dims[1], R.dims[1]))
        return lm_infer_fail(s, LM_ERR_SHAPE,
                             "need kernel (features, %d * units) and recurrent kernel (units, %d "
                             "* units); got %s",
                             gates, gates, cell_shapes(s, all, sizeof all));
    int ib = rnn_input_index(p->kind, RNN_HAS_BIAS);
    if (ib >= 0) {
        lm_shape b = s->in[ib];
        bool ok = p->depth == 2 ? b.ndim == 2 && !dim_ne(b.dims[0], 2) && !dim_ne(b.dims[1], G)
                                : b.ndim == 1 && !dim_ne(b.dims[0], G);
        if (!ok)
            return lm_infer_fail(s, LM_ERR_SHAPE, "bias must be (%s%d * units); got %s",
                                 p->depth == 2 ? "2, " : "", gates,
                                 cell_shapes(s, all, sizeof all));
    }
    for (int bit = RNN_HAS_H0; bit <= RNN_HAS_C0; bit <<= 1) {
        int i = rnn_input_index(p->kind, bit);
        if (i < 0) continue;
        lm_shape h = s->in[i];
        if (h.ndim != 2 || dim_ne(h.dims[0], N) || dim_ne(h.dims[1], H))
            return lm_infer_fail(s, LM_ERR_SHAPE, "initial state %s must be (batch, units); got %s",
                                 bit == RNN_HAS_H0 ? "h0" : "c0", cell_shapes(s, all, sizeof all));
    }
    s->out = LM_SHAPE(N, T >= 0 ? T + S : -1, H);
    s->out_dt = LM_F32;
    return LM_OK;
}

lm_status rnn_infer_grad(lm_infer *s) {
    char a[96], b[96];
    lm_shape x = s->in[0], K = s->in[1], R = s->in[2];
    if (x.ndim != 3 || K.ndim != 2 || R.ndim != 2)
        return lm_infer_fail(s, LM_ERR_SHAPE, "input %s and kernel %s do not fit", lm_shp(x, a),
                             lm_shp(K, b));
    rnn_dims d = {x.dims[0], x.dims[1], x.dims[2], R.dims[0], R.dims[1]};
    int64_t off[RNN_G_END + 1];
    rnn_grad_layout(&d, s->p->depth, s->p->axis, off);
    bool known = d.N >= 0 && d.T >= 0 && d.F >= 0 && d.H >= 0 && d.G >= 0;
    s->out = LM_SHAPE(known ? off[RNN_G_END] : -1);
    s->out_dt = LM_F32;
    return LM_OK;
}

/* ---- rnn_sequence / rnn_state: parts of the packed output ----
 * Params: axis = S (states), kind = -1 for the sequence, else the state (0 h, 1 c). */

static lm_status infer_rnn_part(lm_infer *s) {
    char a[96];
    lm_shape pk = s->in[0];
    int S = s->p->axis;
    if (pk.ndim != 3 || (pk.dims[1] >= 0 && pk.dims[1] < S) || s->p->kind >= S)
        return lm_infer_fail(s, LM_ERR_SHAPE, "packed recurrent output %s has no part %d",
                             lm_shp(pk, a), s->p->kind);
    if (s->p->kind < 0)
        s->out = LM_SHAPE(pk.dims[0], pk.dims[1] >= 0 ? pk.dims[1] - S : -1, pk.dims[2]);
    else
        s->out = LM_SHAPE(pk.dims[0], pk.dims[2]);
    s->out_dt = LM_F32;
    return LM_OK;
}

/* Offset of part `kind` in a packed (N, T + S, H) buffer. */
static int64_t part_offset(const lm_tv *pk, int S, int kind) {
    int64_t N = pk->d[0], T = pk->d[1] - S, H = pk->d[2];
    return kind < 0 ? 0 : N * T * H + kind * N * H;
}

static lm_status k_rnn_sequence(lm_kcall *c) {
    (void)c; /* a view of the packed output's prefix */
    return LM_OK;
}

static lm_status k_rnn_state(lm_kcall *c) {
    if (c->out.n)
        memcpy(c->out.p, lm_f(&c->in[0]) + part_offset(&c->in[0], c->p->axis, c->p->kind),
               (size_t)c->out.n * sizeof(float));
    return LM_OK;
}

static lm_status grad_rnn_part(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    lm_node *in[2] = {gy, n->in[0]};
    gx[0] = lm_node_make(g, LM_OP_RNN_OUTPUT_GRAD, 2, in, &n->p);
    return LM_OK;
}

const lm_op_def lm_opdef_rnn_sequence = {.name = "rnn_sequence",
                                         .min_in = 1,
                                         .max_in = 1,
                                         .flags = LM_OPF_ALIAS,
                                         .infer = infer_rnn_part,
                                         .kernel = {k_rnn_sequence},
                                         .grad = grad_rnn_part};

const lm_op_def lm_opdef_rnn_state = {.name = "rnn_state",
                                      .min_in = 1,
                                      .max_in = 1,
                                      .infer = infer_rnn_part,
                                      .kernel = {k_rnn_state},
                                      .grad = grad_rnn_part};

/* rnn_output_grad(gy, packed): zeros shaped like packed with gy in its part. */
static lm_status infer_rnn_output_grad(lm_infer *s) {
    s->out = s->in[1];
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_rnn_output_grad(lm_kcall *c) {
    float *y = lm_f(&c->out);
    if (!c->out.n) return LM_OK;
    int64_t off = part_offset(&c->out, c->p->axis, c->p->kind), n = c->in[0].n;
    memset(y, 0, (size_t)off * sizeof *y);
    if (n) memcpy(y + off, lm_f(&c->in[0]), (size_t)n * sizeof *y);
    memset(y + off + n, 0, (size_t)(c->out.n - off - n) * sizeof *y);
    return LM_OK;
}

const lm_op_def lm_opdef_rnn_output_grad = {.name = "rnn_output_grad",
                                            .min_in = 2,
                                            .max_in = 2,
                                            .flags = LM_OPF_GRAD_ONLY,
                                            .infer = infer_rnn_output_grad,
                                            .kernel = {k_rnn_output_grad}};

static lm_node *rnn_part(lm_graph *g, lm_node *pk, int states, int kind) {
    lm_params p = lm_params_zero();
    p.axis = states;
    p.kind = kind;
    return lm_node_make(g, kind < 0 ? LM_OP_RNN_SEQUENCE : LM_OP_RNN_STATE, 1, &pk, &p);
}

lm_node *rnn_build(lm_graph *g, int op, lm_node *x, lm_node *kernel, lm_node *recurrent,
                   lm_node *bias, lm_node *h0, lm_node *c0, const lm_params *p, lm_node **h_last,
                   lm_node **c_last) {
    if (h_last) *h_last = NULL;
    if (c_last) *c_last = NULL;
    if (!g) return NULL;
    lm_node *in[6] = {x, kernel, recurrent};
    int k = 3;
    if (bias) in[k++] = bias;
    if (h0) in[k++] = h0;
    if (c0) in[k++] = c0;
    lm_node *pk = lm_node_make(g, op, k, in, p);
    if (!pk) return NULL;
    int S = p->axis;
    lm_node *y = rnn_part(g, pk, S, p->rnn.return_sequences ? -1 : 0);
    if (h_last) *h_last = p->rnn.return_sequences ? rnn_part(g, pk, S, 0) : y;
    if (c_last && S > 1) *c_last = rnn_part(g, pk, S, 1);
    return y;
}

/* ---- rnn_param_grad(packed gradient, like, x, kernel, recurrent): piece
 * p.kind of a packed input gradient, shaped like `like`; p.depth = bias rows ---- */

static lm_status infer_rnn_param_grad(lm_infer *s) {
    char a[96];
    if (s->in[0].ndim != 1 || s->p->kind < 0 || s->p->kind >= RNN_G_END)
        return lm_infer_fail(s, LM_ERR_SHAPE, "packed gradient %s has no piece %d",
                             lm_shp(s->in[0], a), s->p->kind);
    s->out = s->in[1];
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_rnn_param_grad(lm_kcall *c) {
    rnn_dims d = {c->in[2].d[0], c->in[2].d[1], c->in[2].d[2], c->in[4].d[0], c->in[4].d[1]};
    int64_t off[RNN_G_END + 1];
    rnn_grad_layout(&d, c->p->depth, 2, off);
    int piece = c->p->kind;
    if (off[piece + 1] - off[piece] != c->out.n || off[piece + 1] > c->in[0].n)
        return lm_kernel_fail(c, LM_ERR_SHAPE, "piece %d of %lld floats does not fit %lld", piece,
                              (long long)c->out.n, (long long)c->in[0].n);
    if (c->out.n) memcpy(c->out.p, lm_f(&c->in[0]) + off[piece], (size_t)c->out.n * sizeof(float));
    return LM_OK;
}

const lm_op_def lm_opdef_rnn_param_grad = {.name = "rnn_param_grad",
                                           .min_in = 5,
                                           .max_in = 5,
                                           .flags = LM_OPF_GRAD_ONLY,
                                           .infer = infer_rnn_param_grad,
                                           .kernel = {k_rnn_param_grad}};

/* rnn_input_grad(packed gradient, x): the dx piece, a view (it comes first). */
static lm_status infer_rnn_input_grad(lm_infer *s) {
    s->out = s->in[1];
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_rnn_input_grad(lm_kcall *c) {
    (void)c;
    return LM_OK;
}

const lm_op_def lm_opdef_rnn_input_grad = {.name = "rnn_input_grad",
                                           .min_in = 2,
                                           .max_in = 2,
                                           .flags = LM_OPF_ALIAS | LM_OPF_GRAD_ONLY,
                                           .infer = infer_rnn_input_grad,
                                           .kernel = {k_rnn_input_grad}};

lm_status rnn_grad(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx, int grad_op) {
    lm_params bp = n->p;
    bp.perm[0] = RNN_DY_PACKED;
    if (gy->op == LM_OP_RNN_OUTPUT_GRAD && gy->in[1] == n) {
        /* The gradient of one part alone: read it without the zero padding. */
        bp.perm[0] = gy->p.kind < 0 ? RNN_DY_SEQ : gy->p.kind == 0 ? RNN_DY_H : RNN_DY_C;
        gy = gy->in[0];
    }
    lm_node *in[5] = {n->in[0], n->in[1], n->in[2], n, gy};
    lm_node *pk = lm_node_make(g, grad_op, 5, in, &bp);
    if (!pk) return g->err ? g->err : LM_ERR_ARG;
    int piece[LM_MAX_INPUTS] = {RNN_G_X, RNN_G_KERNEL, RNN_G_RECURRENT};
    int k = 3;
    if (n->p.kind & RNN_HAS_BIAS) piece[k++] = RNN_G_BIAS;
    if (n->p.kind & RNN_HAS_H0) piece[k++] = RNN_G_H0;
    if (n->p.kind & RNN_HAS_C0) piece[k++] = RNN_G_C0;
    lm_node *xin[2] = {pk, n->in[0]};
    gx[0] = lm_node_make(g, LM_OP_RNN_INPUT_GRAD, 2, xin, NULL);
    for (int i = 1; i < n->n_in; i++) {
        lm_params p = lm_params_zero();
        p.kind = piece[i];
        p.depth = n->p.depth;
        lm_node *pin[5] = {pk, n->in[i], n->in[0], n->in[1], n->in[2]};
        gx[i] = lm_node_make(g, LM_OP_RNN_PARAM_GRAD, 5, pin, &p);
    }
    return LM_OK;
}

/* ---- shared pieces of the kernels ---- */

void rnn_my_cols(int64_t G, int64_t *j0, int64_t *j1) {
#ifdef _OPENMP
    int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
    int64_t t = 0, nt = 1;
#endif
    /* Whole vectors per thread. */
    *j0 = t ? (G * t / nt) & ~(int64_t)15 : 0;
    *j1 = t + 1 < nt ? (G * (t + 1) / nt) & ~(int64_t)15 : G;
}

void rnn_project(lm_kcall *c, const rnn_dims *d, int64_t n0, int64_t n1, float *P, int gnt) {
    const int ib = rnn_input_index(c->p->kind, RNN_HAS_BIAS);
    lm_gemm_epilogue ep = {ib >= 0 ? lm_f(&c->in[ib]) : NULL, LM_GEMM_LINEAR};
    if (n1 <= n0 || d->T == 0) return;
    lm_sgemm(c->env->gemm, gnt, false, false, (n1 - n0) * d->T, d->G, d->F, 1.0f,
             lm_f(&c->in[0]) + n0 * d->T * d->F, d->F, lm_f(&c->in[1]), d->G, 0.0f,
             P + n0 * d->T * d->G, d->G, ib >= 0 ? &ep : NULL);
}

void rnn_final_state(const rnn_dims *d, const float *seq, const float *init, float *last,
                     int64_t n0, int64_t n1) {
    const int64_t T = d->T, H = d->H;
    for (int64_t n = n0; n < n1; n++)
        memcpy(last + n * H, T ? seq + (n * T + T - 1) * H : init + n * H,
               (size_t)H * sizeof *last);
}

void rnn_bwd_prepare(lm_kcall *c, const rnn_dims *d, const float *h0, float *XH, float *RT,
                     int64_t n0, int64_t n1) {
    const int64_t T = d->T, H = d->H, F = d->F, G = d->G, W = rnn_xh_width(d);
    const float *x = lm_f(&c->in[0]), *R = lm_f(&c->in[2]), *hseq = lm_f(&c->in[3]);
    const bool back = c->p->rnn.go_backwards;
    for (int64_t n = n0; n < n1; n++)
        for (int64_t s = 0; s < T; s++) {
            const int64_t t = rnn_t(d, back, s);
            float *row = XH + (n * T + t) * W;
            memcpy(row, x + (n * T + t) * F, (size_t)F * sizeof *row);
            memcpy(row + F, s ? hseq + (n * T + s - 1) * H : h0 + n * H, (size_t)H * sizeof *row);
            row[F + H] = 1.0f;
        }
    int64_t j0, j1;
    rnn_my_cols(G, &j0, &j1);
    for (int64_t i = 0; i < H; i++)
        for (int64_t j = j0; j < j1; j++) RT[j * H + i] = R[i * G + j];
#pragma omp barrier
}

/* b[j] = sum over rows of g[r * G + j], for j in [j0, j1). */
static void colsum(const float *restrict g, int64_t rows, int64_t G, int64_t j0, int64_t j1,
                   float *restrict b) {
    memset(b + j0, 0, (size_t)(j1 - j0) * sizeof *b);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = j0; j < j1; j++) b[j] += g[r * G + j];
}

void rnn_bwd_finish(lm_kcall *c, const rnn_dims *d, const float *dGx, const float *dGr,
                    const float *XH, int bias_rows, float *out, const int64_t *off, int64_t n0,
                    int64_t n1, int gnt) {
    const int64_t T = d->T, NT = d->N * T, F = d->F, G = d->G, H = d->H, W = rnn_xh_width(d);
    lm_gemm *gm = c->env->gemm;
    if (n1 > n0 && T)
        lm_sgemm(gm, gnt, false, true, (n1 - n0) * T, F, G, 1.0f, dGx + n0 * T * G, G,
                 lm_f(&c->in[1]), G, 0.0f, out + off[RNN_G_X] + n0 * T * F, F, NULL);
#pragma omp barrier
    int64_t j0, j1;
    rnn_my_cols(G, &j0, &j1);
    if (j1 <= j0) return;
    float *dK = out + off[RNN_G_KERNEL], *dR = out + off[RNN_G_RECURRENT];
    float *dB = out + off[RNN_G_BIAS];
    if (NT == 0) {
        /* No steps: no gradient (and no buffers to read). */
        for (int64_t i = 0; i < F; i++) memset(dK + i * G + j0, 0, (size_t)(j1 - j0) * 4);
        for (int64_t i = 0; i < H; i++) memset(dR + i * G + j0, 0, (size_t)(j1 - j0) * 4);
        for (int k = 0; k < bias_rows; k++) memset(dB + k * G + j0, 0, (size_t)(j1 - j0) * 4);
        return;
    }
    if (dGr == dGx && bias_rows == 1) { /* [dK; dR; db] = [x, h_prev, 1]^T dG */
        lm_sgemm(gm, gnt, true, false, W, j1 - j0, NT, 1.0f, XH, W, dGx + j0, G, 0.0f, dK + j0, G,
                 NULL);
        return;
    }
    lm_sgemm(gm, gnt, true, false, F, j1 - j0, NT, 1.0f, XH, W, dGx + j0, G, 0.0f, dK + j0, G,
             NULL);
    if (dGr)
        lm_sgemm(gm, gnt, true, false, H, j1 - j0, NT, 1.0f, XH + F, W, dGr + j0, G, 0.0f, dR + j0,
                 G, NULL);
    colsum(dGx, NT, G, j0, j1, dB);
    if (bias_rows > 1) colsum(dGr, NT, G, j0, j1, dB + G);
}

/* ---- simple RNN: h_s = act(x_t K + b + h_{s-1} R) ----
 * aux: h0 copy (N, H); workspace: the pre-activations (N, T, H) by input step.
 * As for every cell, each thread of a team runs its block of batch rows
 * through the input projection and every step; the backward splits the
 * weight gradients by columns after one barrier. */

static lm_status infer_simple_rnn(lm_infer *s) {
    return rnn_infer_cell(s, 1);
}

static size_t aux_simple_rnn(const lm_kcall *c) {
    rnn_dims d = rnn_dims_of(c);
    return (size_t)(d.N * d.H) * sizeof(float);
}

static size_t ws_simple_rnn(const lm_kcall *c) {
    rnn_dims d = rnn_dims_of(c);
    return (size_t)(d.N * d.T * d.H) * sizeof(float);
}

static void simple_fwd_rows(lm_kcall *c, const rnn_dims *d, int64_t n0, int64_t n1, float *Z,
                            const float *h0c, int gnt) {
    const int64_t T = d->T, H = d->H, m = n1 - n0;
    const float *R = lm_f(&c->in[2]);
    float *hseq = lm_f(&c->out);
    const bool back = c->p->rnn.go_backwards;
    const int act = c->p->rnn.activation;
    const rnn_vec *vf = rnn_vec_for(c->env->isa);
    if (m <= 0) return;
    for (int64_t s = 0; s < T; s++) {
        const int64_t t = rnn_t(d, back, s);
        const float *hp = s ? hseq + (n0 * T + s - 1) * H : h0c + n0 * H;
        if (s || (c->p->kind & RNN_HAS_H0)) /* a zero initial state adds nothing */
            lm_sgemm(c->env->gemm, gnt, false, false, m, H, H, 1.0f, hp, s ? T * H : H, R, H, 1.0f,
                     Z + (n0 * T + t) * H, T * H, NULL);
        for (int64_t n = n0; n < n1; n++)
            memcpy(hseq + (n * T + s) * H, Z + (n * T + t) * H, (size_t)H * sizeof *hseq);
        vf->act_rows(act, m, hseq + (n0 * T + s) * H, T * H, H);
    }
}

static lm_status k_simple_rnn(lm_kcall *c) {
    rnn_dims d = rnn_dims_of(c);
    const int ih = rnn_input_index(c->p->kind, RNN_HAS_H0);
    if (d.N == 0) return LM_OK;
    float *Z = c->ws, *h0c = c->aux, *hseq = lm_f(&c->out);
    const float *h0 = ih >= 0 ? lm_f(&c->in[ih]) : NULL;
    int nt = rnn_threads(c, &d), gnt = nt > 1 ? 1 : c->env->nthreads;
    LM_PARALLEL(nt > 1, nt, {
        int64_t n0, n1;
        rnn_my_rows(d.N, &n0, &n1);
        if (n1 > n0) {
            rnn_copy_or_zero(h0c + n0 * d.H, h0 ? h0 + n0 * d.H : NULL, (n1 - n0) * d.H);
            rnn_project(c, &d, n0, n1, Z, gnt);
            simple_fwd_rows(c, &d, n0, n1, Z, h0c, gnt);
            rnn_final_state(&d, hseq, h0c, hseq + d.N * d.T * d.H, n0, n1);
        }
    });
    return LM_OK;
}

static lm_status grad_simple_rnn(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    return rnn_grad(g, n, gy, gx, LM_OP_SIMPLE_RNN_GRAD);
}

const lm_op_def lm_opdef_simple_rnn = {.name = "simple_rnn",
                                       .min_in = 3,
                                       .max_in = 5,
                                       .infer = infer_simple_rnn,
                                       .aux_bytes = aux_simple_rnn,
                                       .ws_bytes = ws_simple_rnn,
                                       .kernel = {k_simple_rnn},
                                       .grad = grad_simple_rnn};

/* Backward: inputs (x, kernel, recurrent, forward, d packed); workspace dZ
 * (N, T, H) by input step, XH (N, T, F + H + 1) and R^T (H, H). */
static size_t ws_simple_rnn_grad(const lm_kcall *c) {
    rnn_dims d = rnn_dims_of(c);
    return (size_t)(d.N * d.T * (d.G + rnn_xh_width(&d)) + d.G * d.H) * sizeof(float);
}

static void simple_bwd_rows(lm_kcall *c, const rnn_dims *d, int64_t n0, int64_t n1, float *dZ,
                            float *dh, const float *RT, const float *dseq, int gnt) {
    const int64_t T = d->T, H = d->H, m = n1 - n0;
    const float *hseq = lm_f(&c->in[3]);
    const bool back = c->p->rnn.go_backwards;
    const int act = c->p->rnn.activation;
    const rnn_vec *vf = rnn_vec_for(c->env->isa);
    if (m <= 0) return;
    for (int64_t s = T - 1; s >= 0; s--) {
        const int64_t t = rnn_t(d, back, s);
        for (int64_t n = n0; n < n1; n++) {
            float *dz = dZ + (n * T + t) * H;
            const float *dhn = dh + n * H;
            if (dseq) {
                const float *ds = dseq + (n * T + s) * H;
                for (int64_t j = 0; j < H; j++) dz[j] = dhn[j] + ds[j];
            } else {
                memcpy(dz, dhn, (size_t)H * sizeof *dz);
            }
            vf->act_grad(act, dz, hseq + (n * T + s) * H, H);
        }
        if (s || (c->p->kind & RNN_HAS_H0)) /* dh0 only for an h0 input */
            lm_sgemm(c->env->gemm, gnt, false, false, m, H, H, 1.0f, dZ + (n0 * T + t) * H, T * H,
                     RT, H, 0.0f, dh + n0 * H, H, NULL);
    }
}

static lm_status k_simple_rnn_grad(lm_kcall *c) {
    rnn_dims d = rnn_dims_of(c);
    int64_t off[RNN_G_END + 1];
    rnn_grad_layout(&d, c->p->depth, 1, off);
    float *out = lm_f(&c->out);
    if (!c->out.n) return LM_OK;
    if (d.N == 0) {
        memset(out, 0, (size_t)c->out.n * sizeof *out);
        return LM_OK;
    }
    const int64_t NT = d.N * d.T, NTH = NT * d.H;
    float *dZ = c->ws, *XH = dZ + NTH, *RT = XH + NT * rnn_xh_width(&d), *dh = out + off[RNN_G_H0];
    const float *h0c = c->in_aux[3];
    rnn_dy dy = rnn_dy_of(c, &d);
    int nt = rnn_threads(c, &d), gnt = nt > 1 ? 1 : c->env->nthreads;
    LM_PARALLEL(nt > 1, nt, {
        int64_t n0, n1;
        rnn_my_rows(d.N, &n0, &n1);
        rnn_copy_or_zero(dh + n0 * d.H, dy.h ? dy.h + n0 * d.H : NULL, (n1 - n0) * d.H);
        rnn_bwd_prepare(c, &d, h0c, XH, RT, n0, n1);
        simple_bwd_rows(c, &d, n0, n1, dZ, dh, RT, dy.seq, gnt);
        rnn_bwd_finish(c, &d, dZ, dZ, XH, 1, out, off, n0, n1, gnt);
    });
    return LM_OK;
}

const lm_op_def lm_opdef_simple_rnn_grad = {.name = "simple_rnn_grad",
                                            .min_in = 5,
                                            .max_in = 5,
                                            .flags = LM_OPF_GRAD_ONLY,
                                            .infer = rnn_infer_grad,
                                            .ws_bytes = ws_simple_rnn_grad,
                                            .kernel = {k_simple_rnn_grad}};

lm_node *lm_op_simple_rnn(lm_graph *g, lm_node *x, lm_node *kernel, lm_node *recurrent,
                          lm_node *bias, lm_node *h0, lm_rnn_opts o, lm_node **h_last) {
    lm_params p = rnn_params(rnn_resolve(o, false), bias, h0, NULL, 1, 1);
    return rnn_build(g, LM_OP_SIMPLE_RNN, x, kernel, recurrent, bias, h0, NULL, &p, h_last, NULL);
}
