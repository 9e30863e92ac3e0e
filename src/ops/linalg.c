/* Matrix products on the packed GEMM: batched matmul with broadcasting batch
 * axes, and the fused dense op act(x @ w + b) whose bias and relu run in the
 * GEMM epilogue while the tile is in cache. */
#include "graph/graph_impl.h"
#include "ops/elementwise.h"
#include <math.h>
#include <string.h>

/* ---- matmul ---- */

static lm_status infer_matmul(lm_infer *s) {
    char a[96], b[96];
    lm_shape A = s->in[0], B = s->in[1];
    if (s->in_dt[0] != LM_F32 || s->in_dt[1] != LM_F32)
        return lm_infer_fail(s, LM_ERR_DTYPE, "needs float32 inputs, got %s and %s",
                             lm_dtype_name(s->in_dt[0]), lm_dtype_name(s->in_dt[1]));
    if (A.ndim < 2 || B.ndim < 2)
        return lm_infer_fail(s, LM_ERR_SHAPE, "inputs need at least 2 dimensions, got %s and %s",
                             lm_shp(A, a), lm_shp(B, b));
    int64_t M = A.dims[A.ndim - (s->p->ta ? 1 : 2)], K1 = A.dims[A.ndim - (s->p->ta ? 2 : 1)];
    int64_t K2 = B.dims[B.ndim - (s->p->tb ? 1 : 2)], N = B.dims[B.ndim - (s->p->tb ? 2 : 1)];
    if (K1 >= 0 && K2 >= 0 && K1 != K2)
        return lm_infer_fail(
            s, LM_ERR_SHAPE, "inner dimensions differ: %s%s and %s%s (%lld vs %lld)", lm_shp(A, a),
            s->p->ta ? "^T" : "", lm_shp(B, b), s->p->tb ? "^T" : "", (long long)K1, (long long)K2);
    lm_shape ba = {A.ndim - 2, {0}}, bb = {B.ndim - 2, {0}}, bo;
    memcpy(ba.dims, A.dims, sizeof(int64_t) * (size_t)ba.ndim);
    memcpy(bb.dims, B.dims, sizeof(int64_t) * (size_t)bb.ndim);
    lm_status st = lm_infer_broadcast(s, ba, bb, &bo);
    if (st) return st;
    if (bo.ndim + 2 > LM_MAX_DIMS) return lm_infer_fail(s, LM_ERR_SHAPE, "too many dimensions");
    bo.dims[bo.ndim++] = M;
    bo.dims[bo.ndim++] = N;
    s->out = bo;
    s->out_dt = LM_F32;
    return LM_OK;
}

/* Offset of batch index b of an operand whose batch axes broadcast to out's. */
static int64_t batch_offset(const lm_tv *t, const lm_tv *out, int64_t b) {
    int nb = t->ndim - 2, ob = out->ndim - 2;
    int64_t off = 0, stride = t->d[t->ndim - 1] * t->d[t->ndim - 2];
    for (int i = ob - 1; i >= 0; i--) {
        int64_t idx = b % out->d[i];
        b /= out->d[i];
        int ti = i - (ob - nb);
        if (ti < 0) continue;
        if (t->d[ti] != 1) off += idx * stride;
        stride *= t->d[ti];
    }
    return off;
}

static lm_status k_matmul(lm_kcall *c) {
    const lm_tv *A = &c->in[0], *B = &c->in[1];
    lm_tv *C = &c->out;
    bool ta = c->p->ta, tb = c->p->tb;
    int64_t M = C->d[C->ndim - 2], N = C->d[C->ndim - 1];
    int64_t K = A->d[A->ndim - (ta ? 2 : 1)];
    int64_t lda = A->d[A->ndim - 1], ldb = B->d[B->ndim - 1];
    int64_t nbatch = (M * N != 0) ? C->n / (M * N) : 0;
    const float *a = lm_f(A), *b = lm_f(B);
    float *y = lm_f(C);
    int nt = c->env->nthreads;
    if (nbatch == 0) return LM_OK;
    /* An unbatched right operand: fold the batch into M, one GEMM. */
    if (B->ndim == 2 && !ta && (A->n == nbatch * M * K)) {
        lm_sgemm(c->env->gemm, nt, false, tb, nbatch * M, N, K, 1.0f, a, lda, b, ldb, 0.0f, y, N,
                 NULL);
        return LM_OK;
    }
    if (nbatch >= nt && M * N * K < (int64_t)1 << 18) {
        /* Many small products: one per thread, each single-threaded. */
        LM_PAR_FOR(nt > 1, nt, i, nbatch, {
            lm_sgemm(c->env->gemm, 1, ta, tb, M, N, K, 1.0f, a + batch_offset(A, C, i), lda,
                     b + batch_offset(B, C, i), ldb, 0.0f, y + i * M * N, N, NULL);
        });
        return LM_OK;
    }
    for (int64_t i = 0; i < nbatch; i++)
        lm_sgemm(c->env->gemm, nt, ta, tb, M, N, K, 1.0f, a + batch_offset(A, C, i), lda,
                 b + batch_offset(B, C, i), ldb, 0.0f, y + i * M * N, N, NULL);
    return LM_OK;
}

/* Collapses leading axes: (..., k) -> (-1, k). */
static lm_node *rows(lm_graph *g, lm_node *x) {
    if (x->shape.ndim == 2) return x;
    return lm_op_reshape(g, x, LM_SHAPE(-1, x->shape.dims[x->shape.ndim - 1]));
}

static lm_status grad_matmul(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    lm_node *A = n->in[0], *B = n->in[1];
    bool ta = n->p.ta, tb = n->p.tb;
    if (B->shape.ndim == 2 && A->shape.ndim > 2 && !ta) {
        /* Batched x @ w: dW from the collapsed rows, dX keeps x's shape. */
        gx[0] = lm_op_matmul(g, gy, B, false, !tb);
        lm_node *ar = rows(g, A), *gr = rows(g, gy);
        gx[1] = tb ? lm_op_matmul(g, gr, ar, true, false) : lm_op_matmul(g, ar, gr, true, false);
        return LM_OK;
    }
    lm_node *da = ta ? lm_op_matmul(g, B, gy, tb, true) : lm_op_matmul(g, gy, B, false, !tb);
    lm_node *db = tb ? lm_op_matmul(g, gy, A, true, ta) : lm_op_matmul(g, A, gy, !ta, false);
    gx[0] = lm_unbroadcast(g, da, A);
    gx[1] = lm_unbroadcast(g, db, B);
    return LM_OK;
}

const lm_op_def lm_opdef_matmul = {.name = "matmul",
                                   .min_in = 2,
                                   .max_in = 2,
                                   .infer = infer_matmul,
                                   .kernel = {k_matmul},
                                   .grad = grad_matmul};

lm_node *lm_op_matmul(lm_graph *g, lm_node *a, lm_node *b, bool transpose_a, bool transpose_b) {
    lm_params p = lm_params_zero();
    p.ta = transpose_a;
    p.tb = transpose_b;
    lm_node *in[2] = {a, b};
    return lm_node_make(g, LM_OP_MATMUL, 2, in, &p);
}

/* ---- activations applied from the output: relu, sigmoid, tanh ---- */

static bool fusable(int act) {
    return act == LM_ACT_LINEAR || act == LM_ACT_RELU || act == LM_ACT_SIGMOID ||
           act == LM_ACT_TANH;
}

/* The registry op computing an activation, for the shared vectorised kernels. */
static int act_op(int act) {
    return act == LM_ACT_RELU ? LM_OP_RELU : act == LM_ACT_SIGMOID ? LM_OP_SIGMOID : LM_OP_TANH;
}

/* y = act(y) in place with the elementwise family's SIMD loops, in chunks
 * over threads for large tensors. */
void lm_apply_activation(float *y, int64_t n, int act, const lm_kenv *env) {
    if (act == LM_ACT_LINEAR) return;
    const lm_elem_kernels *k = lm_elem_kernels_for(env->isa);
    lm_params p = lm_params_zero();
    int op = act_op(act), nt = env->nthreads;
    int64_t chunks = (n + LM_ELEM_CHUNK - 1) / LM_ELEM_CHUNK;
    LM_PAR_FOR(nt > 1 && chunks > 1, nt, c, chunks, {
        int64_t o = c * LM_ELEM_CHUNK, len = lm_min64(LM_ELEM_CHUNK, n - o);
        k->unary(op, &p, len, y + o, y + o);
    });
}

/* gy * act'(.) written in terms of the activation's output y. */
static lm_status infer_act_grad_y(lm_infer *s) {
    char a[96], b[96];
    if (s->in[0].ndim != s->in[1].ndim)
        return lm_infer_fail(s, LM_ERR_SHAPE, "gradient %s and output %s differ",
                             lm_shp(s->in[0], a), lm_shp(s->in[1], b));
    s->out = s->in[1];
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_act_grad_y(lm_kcall *c) {
    const float *gy = lm_f(&c->in[0]), *y = lm_f(&c->in[1]);
    float *gx = lm_f(&c->out);
    int64_t n = c->out.n;
    if (c->p->act == LM_ACT_LINEAR) {
        memcpy(gx, gy, (size_t)n * sizeof *gx);
        return LM_OK;
    }
    const lm_elem_kernels *k = lm_elem_kernels_for(c->env->isa);
    lm_params p = lm_params_zero();
    int op = act_op(c->p->act), nt = c->env->nthreads;
    int64_t chunks = (n + LM_ELEM_CHUNK - 1) / LM_ELEM_CHUNK;
    LM_PAR_FOR(nt > 1 && chunks > 1, nt, ch, chunks, {
        int64_t o = ch * LM_ELEM_CHUNK, len = lm_min64(LM_ELEM_CHUNK, n - o);
        k->unary_grad(op, &p, len, gy + o, y + o, gx + o);
    });
    return LM_OK;
}

const lm_op_def lm_opdef_act_grad_y = {.name = "act_grad_y",
                                       .min_in = 2,
                                       .max_in = 2,
                                       .flags = LM_OPF_GRAD_ONLY,
                                       .infer = infer_act_grad_y,
                                       .kernel = {k_act_grad_y}};

lm_node *lm_act_grad_y(lm_graph *g, lm_node *gy, lm_node *y, int act) {
    if (act == LM_ACT_LINEAR) return gy;
    if (act == LM_ACT_RELU && gy && gy->op == LM_OP_MAX_POOL_GRAD && gy->in[2] == y) {
        /* ReLU then max pooling: at a window's argmax the ReLU's output is the
         * pooled value, so masking the pooled gradient by (pooled > 0) before
         * scattering it gives the same result on a tensor the window's size
         * smaller (the unmasked scatter is then never run). */
        lm_node *masked = lm_act_grad_y(g, gy->in[0], gy->in[1], act);
        lm_node *in[3] = {masked, gy->in[1], gy->in[2]};
        return masked ? lm_node_make(g, LM_OP_MAX_POOL_GRAD, 3, in, &gy->p) : NULL;
    }
    lm_params p = lm_params_zero();
    p.act = act;
    lm_node *in[2] = {gy, y};
    return lm_node_make(g, LM_OP_ACT_GRAD_Y, 2, in, &p);
}

/* ---- dense: act(x @ w + b) ---- */

static lm_status infer_dense(lm_infer *s) {
    char a[96], b[96], c[96];
    lm_shape x = s->in[0], w = s->in[1];
    if (!fusable(s->p->act))
        return lm_infer_fail(s, LM_ERR_ARG,
                             "activation %d cannot be fused (linear, relu, sigmoid, tanh can)",
                             s->p->act);
    if (s->in_dt[0] != LM_F32 || s->in_dt[1] != LM_F32)
        return lm_infer_fail(s, LM_ERR_DTYPE, "needs float32 inputs");
    if (x.ndim < 1 || w.ndim != 2)
        return lm_infer_fail(s, LM_ERR_SHAPE, "input %s and kernel %s do not fit", lm_shp(x, a),
                             lm_shp(w, b));
    int64_t in = x.dims[x.ndim - 1];
    if (in >= 0 && in != w.dims[0])
        return lm_infer_fail(s, LM_ERR_SHAPE,
                             "input last dimension %lld does not match kernel %s (input %s)",
                             (long long)in, lm_shp(w, b), lm_shp(x, a));
    if (s->n_in == 3 && (s->in[2].ndim != 1 || s->in[2].dims[0] != w.dims[1]))
        return lm_infer_fail(s, LM_ERR_SHAPE, "bias %s does not match kernel %s",
                             lm_shp(s->in[2], c), lm_shp(w, b));
    s->out = x;
    s->out.dims[x.ndim - 1] = w.dims[1];
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_dense(lm_kcall *c) {
    const lm_tv *x = &c->in[0], *w = &c->in[1];
    int64_t K = w->d[0], N = w->d[1], M = K ? x->n / K : c->out.n / (N ? N : 1);
    lm_gemm_epilogue ep = {c->n_in == 3 ? lm_f(&c->in[2]) : NULL,
                           c->p->act == LM_ACT_RELU ? LM_GEMM_RELU : LM_GEMM_LINEAR};
    lm_sgemm(c->env->gemm, c->env->nthreads, false, false, M, N, K, 1.0f, lm_f(x), K, lm_f(w), N,
             0.0f, lm_f(&c->out), N, &ep);
    if (c->p->act != LM_ACT_RELU) lm_apply_activation(lm_f(&c->out), c->out.n, c->p->act, c->env);
    return LM_OK;
}

static lm_status grad_dense(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    lm_node *x = n->in[0], *w = n->in[1];
    lm_node *gz = lm_act_grad_y(g, gy, n, n->p.act);
    gx[0] = lm_op_matmul(g, gz, w, false, true);
    gx[1] = lm_op_matmul(g, rows(g, x), rows(g, gz), true, false);
    if (n->n_in == 3) gx[2] = lm_unbroadcast(g, gz, n->in[2]);
    return LM_OK;
}

const lm_op_def lm_opdef_dense = {.name = "dense",
                                  .min_in = 2,
                                  .max_in = 3,
                                  .infer = infer_dense,
                                  .kernel = {k_dense},
                                  .grad = grad_dense};

lm_node *lm_op_dense(lm_graph *g, lm_node *x, lm_node *w, lm_node *b, lm_activation act) {
    lm_params p = lm_params_zero();
    p.act = act;
    lm_node *in[3] = {x, w, b};
    return lm_node_make(g, LM_OP_DENSE, b ? 3 : 2, in, &p);
}

/* ---- bias_act: act(x + b), b along the last axis ---- */

static lm_status infer_bias_act(lm_infer *s) {
    char a[96], b[96];
    if (!fusable(s->p->act))
        return lm_infer_fail(s, LM_ERR_ARG,
                             "activation %d cannot be fused (linear, relu, sigmoid, tanh can)",
                             s->p->act);
    lm_shape x = s->in[0], bs = s->in[1];
    if (x.ndim < 1 || bs.ndim != 1 || (x.dims[x.ndim - 1] >= 0 && x.dims[x.ndim - 1] != bs.dims[0]))
        return lm_infer_fail(s, LM_ERR_SHAPE, "bias %s does not match input %s", lm_shp(bs, b),
                             lm_shp(x, a));
    s->out = x;
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_bias_act(lm_kcall *c) {
    const float *x = lm_f(&c->in[0]), *b = lm_f(&c->in[1]);
    float *y = lm_f(&c->out);
    int64_t N = c->in[1].n, rows = N ? c->out.n / N : 0;
    int nt = c->env->nthreads;
    LM_PAR_FOR(nt > 1 && c->out.n > 65536, nt, r, rows, {
        for (int64_t j = 0; j < N; j++) y[r * N + j] = x[r * N + j] + b[j];
    });
    lm_apply_activation(y, c->out.n, c->p->act, c->env);
    return LM_OK;
}

static lm_status grad_bias_act(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    lm_node *gz = lm_act_grad_y(g, gy, n, n->p.act);
    gx[0] = gz;
    gx[1] = lm_unbroadcast(g, gz, n->in[1]);
    return LM_OK;
}

const lm_op_def lm_opdef_bias_act = {.name = "bias_act",
                                     .min_in = 2,
                                     .max_in = 2,
                                     .infer = infer_bias_act,
                                     .kernel = {k_bias_act},
                                     .grad = grad_bias_act};

lm_node *lm_op_bias_act(lm_graph *g, lm_node *x, lm_node *b, lm_activation act) {
    lm_params p = lm_params_zero();
    p.act = act;
    lm_node *in[2] = {x, b};
    return lm_node_make(g, LM_OP_BIAS_ACT, 2, in, &p);
}
