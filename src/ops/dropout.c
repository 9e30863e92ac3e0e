/* Inverted dropout. The keep mask of a training run comes from a counter-based
 * hash of (seed, node, step, element index), so it is the same whatever the
 * thread count, and is kept in aux memory (one byte per element) for the
 * backward op. Parameters: f[0] = rate, seed. */
#include "graph/graph_impl.h"
#include <math.h>
#include <string.h>

/* dropout_avx512.c: m[i] = (lm_hash64(key, i) >> 40) >= thresh for i in [i0, i1). */
void lm_dropout_mask_avx512(uint64_t key, uint64_t thresh, unsigned char *m, int64_t i0,
                            int64_t i1);

/* aux layout: n mask bytes, then one byte telling whether the mask applies. */
static size_t aux_dropout(const lm_kcall *c) {
    return c->p->f[0] > 0 ? (size_t)c->out.n + 1 : 0;
}

static lm_status infer_dropout(lm_infer *s) {
    char a[96];
    float rate = s->p->f[0];
    if (s->in_dt[0] != LM_F32)
        return lm_infer_fail(s, LM_ERR_DTYPE, "needs a float32 input, got %s %s",
                             lm_dtype_name(s->in_dt[0]), lm_shp(s->in[0], a));
    if (!(rate >= 0.0f && rate < 1.0f))
        return lm_infer_fail(s, LM_ERR_ARG, "rate %g is outside [0, 1) (input %s)", (double)rate,
                             lm_shp(s->in[0], a));
    s->out = s->in[0];
    s->out_dt = LM_F32;
    return LM_OK;
}

/* v where keep is 1, +0 where it is 0 (also for inf and NaN, as Keras's
 * select). A bit mask rather than `keep ? v : 0`, which compilers keep as a
 * mispredicted branch instead of vectorising. */
static inline float masked(float v, unsigned char keep) {
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    b &= 0u - (uint32_t)keep;
    memcpy(&v, &b, sizeof v);
    return v;
}

/* Per-run key: mixes the seed, the node and the step. */
static uint64_t dropout_key(const lm_kcall *c) {
    uint64_t node = c->node ? (uint64_t)c->node->id : 0;
    return lm_hash64(lm_hash64(c->p->seed, node), c->env->step);
}

static lm_status k_dropout(lm_kcall *c) {
    const float *restrict x = lm_f(&c->in[0]);
    float *restrict y = lm_f(&c->out);
    int64_t n = c->out.n;
    float rate = c->p->f[0];
    if (!c->env->training || rate <= 0) {
        if (c->aux) ((unsigned char *)c->aux)[n] = 0;
        if (y != x) memcpy(y, x, (size_t)n * sizeof *y);
        return LM_OK;
    }
    unsigned char *restrict m = c->aux;
    uint64_t key = dropout_key(c);
    /* lm_hash_uniform(key, i) >= rate, on the 24 bits it uses: exact, as
     * rate * 2^24 is exact in double. */
    uint64_t thresh = (uint64_t)ceil((double)rate * 16777216.0);
    float scale = 1.0f / (1.0f - rate);
    int nt = c->env->nthreads;
    /* Blocks of 4096 elements, so that every thread's range is a multiple of 8. */
    int64_t nblk = (n + 4095) / 4096;
    LM_PAR_FOR(nt > 1 && n > 32768, nt, b, nblk, {
        int64_t i0 = b * 4096, i1 = lm_min64(n, i0 + 4096);
        if (c->env->isa == LM_ISA_AVX512) {
            lm_dropout_mask_avx512(key, thresh, m, i0, i1);
        } else {
            for (int64_t i = i0; i < i1; i++) m[i] = (lm_hash64(key, (uint64_t)i) >> 40) >= thresh;
        }
    });
    /* A product with 1 / keep, as XLA compiles Keras's x / keep: the same values. */
    LM_PAR_FOR(nt > 1 && n > 65536, nt, i, n, { y[i] = masked(x[i] * scale, m[i]); });
    m[n] = 1;
    return LM_OK;
}

static lm_status grad_dropout(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx) {
    if (n->p.f[0] <= 0) {
        gx[0] = gy;
        return LM_OK;
    }
    lm_node *in[2] = {gy, n};
    gx[0] = lm_node_make(g, LM_OP_DROPOUT_GRAD, 2, in, &n->p);
    return LM_OK;
}

const lm_op_def lm_opdef_dropout = {.name = "dropout",
                                    .min_in = 1,
                                    .max_in = 1,
                                    .infer = infer_dropout,
                                    .aux_bytes = aux_dropout,
                                    .kernel = {k_dropout},
                                    .grad = grad_dropout};

lm_node *lm_op_dropout(lm_graph *g, lm_node *x, float rate, uint64_t seed) {
    lm_params p = lm_params_zero();
    p.f[0] = rate;
    p.seed = seed;
    return lm_node_make(g, LM_OP_DROPOUT, 1, &x, &p);
}

/* ---- dropout_grad(gy, dropout node): gy through the forward's mask ---- */

static lm_status infer_dropout_grad(lm_infer *s) {
    char a[96], b[96];
    const lm_node *f = s->node->in[1];
    if (f->op != LM_OP_DROPOUT)
        return lm_infer_fail(s, LM_ERR_ARG, "input 1 must be a dropout node, got %s",
                             lm_op_get(f->op)->name);
    if (s->in[0].ndim != s->in[1].ndim || lm_shape_numel(s->in[0]) != lm_shape_numel(s->in[1]))
        return lm_infer_fail(s, LM_ERR_SHAPE, "gradient %s and output %s differ",
                             lm_shp(s->in[0], a), lm_shp(s->in[1], b));
    s->out = s->in[1];
    s->out_dt = LM_F32;
    return LM_OK;
}

static lm_status k_dropout_grad(lm_kcall *c) {
    const float *restrict gy = lm_f(&c->in[0]);
    const unsigned char *restrict m = c->in_aux[1];
    float *restrict gx = lm_f(&c->out);
    int64_t n = c->out.n;
    float scale = 1.0f / (1.0f - c->p->f[0]);
    if (!m || !m[n]) {
        memcpy(gx, gy, (size_t)n * sizeof *gx);
        return LM_OK;
    }
    int nt = c->env->nthreads;
    LM_PAR_FOR(nt > 1 && n > 65536, nt, i, n, { gx[i] = masked(gy[i] * scale, m[i]); });
    return LM_OK;
}

const lm_op_def lm_opdef_dropout_grad = {.name = "dropout_grad",
                                         .min_in = 2,
                                         .max_in = 2,
                                         .flags = LM_OPF_GRAD_ONLY,
                                         .infer = infer_dropout_grad,
                                         .kernel = {k_dropout_grad}};
