/* Binary elementwise ops with NumPy broadcasting: add, sub, mul, div,
 * maximum, minimum, and the backward helper binary_grad.
 *
 * Every call is reduced to rows: dims of size 1 are dropped and neighbouring
 * dims merged wherever every operand stays linear across them, so equal
 * shapes become one row, a scalar operand a row with stride 0, a bias-like
 * (B, N) + (N) operand B rows reusing one vector, and (B, N) + (B, 1) rows
 * with one scalar each. The loops (elementwise_kern.h) get runs of rows,
 * unit or zero strides inside a row, so short rows cost no call each. */
#include "graph/graph_impl.h"
#include "ops/elementwise.h"

/* ---- broadcast plan ---- */

typedef struct bplan {
    int nd;
    int64_t d[LM_MAX_DIMS];
    int64_t sa[LM_MAX_DIMS], sb[LM_MAX_DIMS]; /* element strides, 0 on broadcast dims */
} bplan;

/* Strides of t (contiguous) indexed by out's dims, right-aligned. */
static void strides_in(const lm_tv *t, const lm_tv *out, int64_t *s) {
    int64_t st = 1;
    for (int i = out->ndim - 1; i >= 0; i--) {
        int ti = i - (out->ndim - t->ndim);
        if (ti < 0 || t->d[ti] == 1) {
            s[i] = 0;
        } else {
            s[i] = st;
            st *= t->d[ti];
        }
    }
}

static void bplan_make(bplan *P, const lm_tv *out, const lm_tv *a, const lm_tv *b) {
    int64_t sa[LM_MAX_DIMS], sb[LM_MAX_DIMS];
    strides_in(a, out, sa);
    strides_in(b, out, sb);
    P->nd = 0;
    for (int i = 0; i < out->ndim; i++) {
        int64_t d = out->d[i];
        if (d == 1) continue;
        int j = P->nd - 1;
        if (j >= 0 && P->sa[j] == sa[i] * d && P->sb[j] == sb[i] * d) {
            P->d[j] *= d; /* dims j and i merge into one */
            P->sa[j] = sa[i];
            P->sb[j] = sb[i];
        } else {
            P->d[P->nd] = d;
            P->sa[P->nd] = sa[i];
            P->sb[P->nd] = sb[i];
            P->nd++;
        }
    }
    if (P->nd == 0) { /* a single element */
        P->nd = 1;
        P->d[0] = 1;
        P->sa[0] = P->sb[0] = 0;
    }
}

/* Offsets in a and b of index o over the dims before the last two. */
static void bplan_outer(const bplan *P, int64_t o, int64_t *oa, int64_t *ob) {
    int64_t a = 0, b = 0;
    for (int i = P->nd - 3; i >= 0; i--) {
        int64_t idx = o % P->d[i];
        o /= P->d[i];
        a += idx * P->sa[i];
        b += idx * P->sb[i];
    }
    *oa = a;
    *ob = b;
}

/* Runs the plan in work items of about LM_ELEM_CHUNK elements: several short
 * rows of the second-to-last dim per kernel call, or pieces of one long row.
 * With gy (binary_grad), gy is laid out as out. */
static void bplan_run(const bplan *P, const lm_kcall *c, const lm_elem_kernels *K, const float *gy,
                      const float *a, const float *b, float *y, int which) {
    int nd = P->nd;
    int64_t n = c->out.n, inner = P->d[nd - 1], mid = nd >= 2 ? P->d[nd - 2] : 1;
    int64_t ia = P->sa[nd - 1], ib = P->sb[nd - 1];
    int64_t ra = nd >= 2 ? P->sa[nd - 2] : 0, rb = nd >= 2 ? P->sb[nd - 2] : 0;
    int64_t outer = n / (inner * mid);
    bool split = inner > LM_ELEM_CHUNK; /* long rows: pieces of one row per item */
    int64_t per = split ? 1 : LM_ELEM_CHUNK / inner;
    int64_t pieces = split ? (inner + LM_ELEM_CHUNK - 1) / LM_ELEM_CHUNK : 1;
    int64_t groups = (mid + per - 1) / per, items = outer * groups * pieces;
    int op = gy ? c->p->kind : c->node->op, nt = c->env->nthreads;
    LM_PAR_FOR(nt > 1 && n > 32768, nt, it, items, {
        int64_t o = it / (groups * pieces), m0 = (it / pieces % groups) * per;
        int64_t c0 = (it % pieces) * LM_ELEM_CHUNK, oa, ob;
        int64_t rows = lm_min64(per, mid - m0), len = lm_min64(inner - c0, LM_ELEM_CHUNK);
        bplan_outer(P, o, &oa, &ob);
        oa += m0 * ra + c0 * ia;
        ob += m0 * rb + c0 * ib;
        int64_t oy = (o * mid + m0) * inner + c0;
        if (gy)
            K->binary_grad(op, which, rows, len, gy + oy, a + oa, ra, ia, b + ob, rb, ib, y + oy);
        else
            K->binary(op, rows, len, a + oa, ra, ia, b + ob, rb, ib, y + oy);
    });
}

/* ---- forward ops ---- */

static lm_status infer_binary(lm_infer *s) {
    char a[96], b[96];
    if (s->in_dt[0] != LM_F32 || s->in_dt[1] != LM_F32)
        return lm_infer_fail(s, LM_ERR_DTYPE, "needs float32 inputs, got %s %s and %s %s",
                             lm_dtype_name(s->in_dt[0]), lm_shp(s->in[0], a),
                             lm_dtype_name(s->in_dt[1]), lm_shp(s->in[1], b));
    s->out_dt = LM_F32;
    return lm_infer_broadcast(s, s->in[0], s->in[1], &s->out);
}

static lm_status k_binary(lm_kcall *c) {
    if (c->out.n == 0) return LM_OK;
    bplan P;
    bplan_make(&P, &c->out, &c->in[0], &c->in[1]);
    bplan_run(&P, c, lm_elem_kernels_for(c->env->isa), NULL, lm_f(&c->in[0]), lm_f(&c->in[1]),
              lm_f(&c->out), 0);
    return LM_OK;
}

/* binary_grad(gy, a, b): the gradient of input p.flag (0: a, 1: b) of op
 * p.kind (div, maximum, minimum), at the broadcast shape of gy. */
static lm_node *binary_grad(lm_graph *g, int op, int which, lm_node *gy, lm_node *a, lm_node *b) {
    lm_params p = lm_params_zero();
    p.kind = op;
    p.flag = which;
    lm_node *in[3] = {gy, a, b};
    return lm_node_make(g, LM_OP_BINARY_GRAD, 3, in, &p);
}

static lm_status grad_binary(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    lm_node *a = n->in[0], *b = n->in[1];
    switch (n->op) {
    case LM_OP_ADD:
        gx[0] = lm_unbroadcast(g, gy, a);
        gx[1] = lm_unbroadcast(g, gy, b);
        break;
    case LM_OP_SUB:
        gx[0] = lm_unbroadcast(g, gy, a);
        gx[1] = lm_op_neg(g, lm_unbroadcast(g, gy, b)); /* negate the smaller tensor */
        break;
    case LM_OP_MUL:
        gx[0] = lm_unbroadcast(g, lm_op_mul(g, gy, b), a);
        gx[1] = lm_unbroadcast(g, lm_op_mul(g, gy, a), b);
        break;
    case LM_OP_DIV:
        gx[0] = lm_unbroadcast(g, lm_op_div(g, gy, b), a);
        gx[1] = lm_unbroadcast(g, binary_grad(g, LM_OP_DIV, 1, gy, a, b), b);
        break;
    default: /* maximum, minimum */
        gx[0] = lm_unbroadcast(g, binary_grad(g, n->op, 0, gy, a, b), a);
        gx[1] = lm_unbroadcast(g, binary_grad(g, n->op, 1, gy, a, b), b);
    }
    return LM_OK;
}

#define BINARY_ROW(nm)                                                                             \
    const lm_op_def lm_opdef_##nm = {.name = #nm,                                                  \
                                     .min_in = 2,                                                  \
                                     .max_in = 2,                                                  \
                                     .infer = infer_binary,                                        \
                                     .kernel = {k_binary},                                         \
                                     .grad = grad_binary};

BINARY_ROW(add)
BINARY_ROW(sub)
BINARY_ROW(mul)
BINARY_ROW(div)
BINARY_ROW(maximum)
BINARY_ROW(minimum)

static lm_node *binary(lm_graph *g, int op, lm_node *a, lm_node *b) {
    lm_node *in[2] = {a, b};
    return lm_node_make(g, op, 2, in, NULL);
}

lm_node *lm_op_add(lm_graph *g, lm_node *a, lm_node *b) {
    return binary(g, LM_OP_ADD, a, b);
}
lm_node *lm_op_sub(lm_graph *g, lm_node *a, lm_node *b) {
    return binary(g, LM_OP_SUB, a, b);
}
lm_node *lm_op_mul(lm_graph *g, lm_node *a, lm_node *b) {
    return binary(g, LM_OP_MUL, a, b);
}
lm_node *lm_op_div(lm_graph *g, lm_node *a, lm_node *b) {
    return binary(g, LM_OP_DIV, a, b);
}
lm_node *lm_op_maximum(lm_graph *g, lm_node *a, lm_node *b) {
    return binary(g, LM_OP_MAXIMUM, a, b);
}
lm_node *lm_op_minimum(lm_graph *g, lm_node *a, lm_node *b) {
    return binary(g, LM_OP_MINIMUM, a, b);
}

/* ---- binary_grad ---- */

static lm_status infer_binary_grad(lm_infer *s) {
    char a[96], b[96];
    lm_shape ab;
    lm_status st = lm_infer_broadcast(s, s->in[1], s->in[2], &ab);
    if (st) return st;
    if (ab.ndim != s->in[0].ndim)
        return lm_infer_fail(s, LM_ERR_SHAPE, "gradient %s does not match the broadcast shape %s",
                             lm_shp(s->in[0], a), lm_shp(ab, b));
    s->out = s->in[0];
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_binary_grad(lm_kcall *c) {
    if (c->out.n == 0) return LM_OK;
    bplan P;
    bplan_make(&P, &c->out, &c->in[1], &c->in[2]);
    bplan_run(&P, c, lm_elem_kernels_for(c->env->isa), lm_f(&c->in[0]), lm_f(&c->in[1]),
              lm_f(&c->in[2]), lm_f(&c->out), c->p->flag ? 1 : 0);
    return LM_OK;
}

const lm_op_def lm_opdef_binary_grad = {.name = "binary_grad",
                                        .min_in = 3,
                                        .max_in = 3,
                                        .flags = LM_OPF_GRAD_ONLY,
                                        .infer = infer_binary_grad,
                                        .kernel = {k_binary_grad}};
