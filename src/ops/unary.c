/* Unary elementwise ops and activations: one shape rule, one kernel and one
 * backward rule shared by every row, switching on the node's op. Derivatives
 * run as a single fused backward op, unary_grad(gy, t) = gy * f'(.), reading
 * t = the forward output where f' is cheaper from it (relu, sigmoid, tanh,
 * exp, sqrt) and the forward input otherwise.
 *
 * Params: pow f[0] = exponent; scale f[0] = s, f[1] = t; clip f[0] = lo,
 * f[1] = hi; leaky_relu and elu f[0] = alpha; gelu flag = approximate.
 * unary_grad copies the forward node's params, with kind = its op. */
#include "graph/graph_impl.h"
#include "ops/elementwise.h"
#include <math.h>

/* The portable build of the loops. */
#define EK_TABLE lm_elem_kernels_generic
#include "ops/elementwise_kern.h"

const lm_elem_kernels *lm_elem_kernels_for(lm_isa isa) {
    if (isa >= LM_ISA_AVX512 && lm_elem_kernels_avx512.unary) return &lm_elem_kernels_avx512;
    if (isa >= LM_ISA_AVX2 && lm_elem_kernels_avx2.unary) return &lm_elem_kernels_avx2;
    return &lm_elem_kernels_generic;
}

bool lm_unary_grad_uses_output(int op) {
    return op == LM_OP_RELU || op == LM_OP_SIGMOID || op == LM_OP_TANH || op == LM_OP_EXP ||
           op == LM_OP_SQRT;
}

/* Ops whose loops cost more than a load and a store: worth threads sooner. */
static bool costly(int op) {
    switch (op) {
    case LM_OP_NEG:
    case LM_OP_SQUARE:
    case LM_OP_ABS:
    case LM_OP_SCALE:
    case LM_OP_CLIP:
    case LM_OP_RELU:
    case LM_OP_LEAKY_RELU:
    case LM_OP_HARD_SIGMOID:
        return false;
    default:
        return true;
    }
}

/* ---- shape rule: float32 in, same shape out; parameters checked here so
 * that nodes made directly through lm_node_make are checked too ---- */

static lm_status check_params(lm_infer *s, int op) {
    const float *f = s->p->f;
    char a[96];
    lm_shp(s->in[0], a);
    switch (op) {
    case LM_OP_POW:
        if (!isfinite(f[0]))
            return lm_infer_fail(s, LM_ERR_ARG, "exponent %g is not finite (input %s)",
                                 (double)f[0], a);
        break;
    case LM_OP_SCALE:
        if (!isfinite(f[0]) || !isfinite(f[1]))
            return lm_infer_fail(s, LM_ERR_ARG, "scale %g and shift %g must be finite (input %s)",
                                 (double)f[0], (double)f[1], a);
        break;
    case LM_OP_CLIP:
        if (isnan(f[0]) || isnan(f[1]) || f[0] > f[1])
            return lm_infer_fail(s, LM_ERR_ARG, "bounds lo %g and hi %g need lo <= hi (input %s)",
                                 (double)f[0], (double)f[1], a);
        break;
    case LM_OP_LEAKY_RELU:
    case LM_OP_ELU:
        if (!isfinite(f[0]))
            return lm_infer_fail(s, LM_ERR_ARG, "alpha %g is not finite (input %s)", (double)f[0],
                                 a);
        break;
    default:
        break;
    }
    return LM_OK;
}

static lm_status infer_unary(lm_infer *s) {
    char a[96];
    if (s->in_dt[0] != LM_F32)
        return lm_infer_fail(s, LM_ERR_DTYPE, "needs a float32 input, got %s %s",
                             lm_dtype_name(s->in_dt[0]), lm_shp(s->in[0], a));
    lm_status st = check_params(s, s->node->op);
    if (st) return st;
    s->out = s->in[0];
    s->out_dt = LM_F32;
    return LM_OK;
}

/* ---- kernels: chunks of LM_ELEM_CHUNK, threaded only for large tensors ---- */

static lm_status k_unary(lm_kcall *c) {
    const lm_elem_kernels *K = lm_elem_kernels_for(c->env->isa);
    const float *x = lm_f(&c->in[0]);
    float *y = lm_f(&c->out);
    int64_t n = c->out.n, nch = (n + LM_ELEM_CHUNK - 1) / LM_ELEM_CHUNK;
    int op = c->node->op, nt = c->env->nthreads;
    int64_t min_par = costly(op) ? 8192 : 65536;
    LM_PAR_FOR(nt > 1 && n > min_par, nt, i, nch, {
        int64_t o = i * LM_ELEM_CHUNK;
        K->unary(op, c->p, lm_min64(LM_ELEM_CHUNK, n - o), x + o, y + o);
    });
    return LM_OK;
}

/* unary_grad(gy, t): inputs of the same shape. */
static lm_status infer_unary_grad(lm_infer *s) {
    char a[96], b[96];
    bool same = s->in[0].ndim == s->in[1].ndim;
    for (int i = 0; same && i < s->in[0].ndim; i++)
        if (s->in[0].dims[i] >= 0 && s->in[1].dims[i] >= 0 && s->in[0].dims[i] != s->in[1].dims[i])
            same = false;
    if (!same || s->in_dt[0] != LM_F32 || s->in_dt[1] != LM_F32)
        return lm_infer_fail(s, LM_ERR_SHAPE, "gradient %s %s and input %s %s differ",
                             lm_dtype_name(s->in_dt[0]), lm_shp(s->in[0], a),
                             lm_dtype_name(s->in_dt[1]), lm_shp(s->in[1], b));
    s->out = s->in[1];
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_unary_grad(lm_kcall *c) {
    const lm_elem_kernels *K = lm_elem_kernels_for(c->env->isa);
    const float *gy = lm_f(&c->in[0]), *t = lm_f(&c->in[1]);
    float *y = lm_f(&c->out);
    int64_t n = c->out.n, nch = (n + LM_ELEM_CHUNK - 1) / LM_ELEM_CHUNK;
    int op = c->p->kind, nt = c->env->nthreads;
    int64_t min_par = costly(op) ? 8192 : 65536;
    LM_PAR_FOR(nt > 1 && n > min_par, nt, i, nch, {
        int64_t o = i * LM_ELEM_CHUNK;
        K->unary_grad(op, c->p, lm_min64(LM_ELEM_CHUNK, n - o), gy + o, t + o, y + o);
    });
    return LM_OK;
}

const lm_op_def lm_opdef_unary_grad = {.name = "unary_grad",
                                       .min_in = 2,
                                       .max_in = 2,
                                       .flags = LM_OPF_GRAD_ONLY,
                                       .infer = infer_unary_grad,
                                       .kernel = {k_unary_grad}};

/* ---- backward rule ---- */

static lm_status grad_unary(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    if (n->op == LM_OP_NEG) {
        gx[0] = lm_op_neg(g, gy);
    } else if (n->op == LM_OP_SCALE) {
        gx[0] = lm_op_scale(g, gy, n->p.f[0], 0.0f);
    } else {
        lm_params p = n->p;
        p.kind = n->op;
        lm_node *in[2] = {gy, lm_unary_grad_uses_output(n->op) ? n : n->in[0]};
        gx[0] = lm_node_make(g, LM_OP_UNARY_GRAD, 2, in, &p);
    }
    return LM_OK;
}

#define UNARY_ROW(nm)                                                                              \
    const lm_op_def lm_opdef_##nm = {.name = #nm,                                                  \
                                     .min_in = 1,                                                  \
                                     .max_in = 1,                                                  \
                                     .infer = infer_unary,                                         \
                                     .kernel = {k_unary},                                          \
                                     .grad = grad_unary};

UNARY_ROW(neg)
UNARY_ROW(square)
UNARY_ROW(sqrt)
UNARY_ROW(exp)
UNARY_ROW(log)
UNARY_ROW(abs)
UNARY_ROW(pow)
UNARY_ROW(scale)
UNARY_ROW(clip)
UNARY_ROW(relu)
UNARY_ROW(leaky_relu)
UNARY_ROW(elu)
UNARY_ROW(selu)
UNARY_ROW(gelu)
UNARY_ROW(sigmoid)
UNARY_ROW(hard_sigmoid)
UNARY_ROW(tanh)
UNARY_ROW(softplus)
UNARY_ROW(softsign)
UNARY_ROW(silu)

/* ---- constructors ---- */

static lm_node *unary(lm_graph *g, int op, lm_node *x, float f0, float f1, bool flag) {
    lm_params p = lm_params_zero();
    p.f[0] = f0;
    p.f[1] = f1;
    p.flag = flag;
    return lm_node_make(g, op, 1, &x, &p);
}

lm_node *lm_op_neg(lm_graph *g, lm_node *x) {
    return unary(g, LM_OP_NEG, x, 0, 0, false);
}
lm_node *lm_op_square(lm_graph *g, lm_node *x) {
    return unary(g, LM_OP_SQUARE, x, 0, 0, false);
}
lm_node *lm_op_sqrt(lm_graph *g, lm_node *x) {
    return unary(g, LM_OP_SQRT, x, 0, 0, false);
}
lm_node *lm_op_exp(lm_graph *g, lm_node *x) {
    return unary(g, LM_OP_EXP, x, 0, 0, false);
}
lm_node *lm_op_log(lm_graph *g, lm_node *x) {
    return unary(g, LM_OP_LOG, x, 0, 0, false);
}
lm_node *lm_op_abs(lm_graph *g, lm_node *x) {
    return unary(g, LM_OP_ABS, x, 0, 0, false);
}
lm_node *lm_op_pow(lm_graph *g, lm_node *x, float p) {
    return unary(g, LM_OP_POW, x, p, 0, false);
}
lm_node *lm_op_scale(lm_graph *g, lm_node *x, float s, float t) {
    return unary(g, LM_OP_SCALE, x, s, t, false);
}
lm_node *lm_op_clip(lm_graph *g, lm_node *x, float lo, float hi) {
    return unary(g, LM_OP_CLIP, x, lo, hi, false);
}
lm_node *lm_op_relu(lm_graph *g, lm_node *x) {
    return unary(g, LM_OP_RELU, x, 0, 0, false);
}
lm_node *lm_op_leaky_relu(lm_graph *g, lm_node *x, float alpha) {
    return unary(g, LM_OP_LEAKY_RELU, x, alpha, 0, false);
}
lm_node *lm_op_elu(lm_graph *g, lm_node *x, float alpha) {
    return unary(g, LM_OP_ELU, x, alpha, 0, false);
}
lm_node *lm_op_selu(lm_graph *g, lm_node *x) {
    return unary(g, LM_OP_SELU, x, 0, 0, false);
}
lm_node *lm_op_gelu(lm_graph *g, lm_node *x, bool approximate) {
    return unary(g, LM_OP_GELU, x, 0, 0, approximate);
}
lm_node *lm_op_sigmoid(lm_graph *g, lm_node *x) {
    return unary(g, LM_OP_SIGMOID, x, 0, 0, false);
}
lm_node *lm_op_hard_sigmoid(lm_graph *g, lm_node *x) {
    return unary(g, LM_OP_HARD_SIGMOID, x, 0, 0, false);
}
lm_node *lm_op_tanh(lm_graph *g, lm_node *x) {
    return unary(g, LM_OP_TANH, x, 0, 0, false);
}
lm_node *lm_op_softplus(lm_graph *g, lm_node *x) {
    return unary(g, LM_OP_SOFTPLUS, x, 0, 0, false);
}
lm_node *lm_op_softsign(lm_graph *g, lm_node *x) {
    return unary(g, LM_OP_SOFTSIGN, x, 0, 0, false);
}
lm_node *lm_op_silu(lm_graph *g, lm_node *x) {
    return unary(g, LM_OP_SILU, x, 0, 0, false);
}
