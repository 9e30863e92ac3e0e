/* The update rules over a range of the flat parameter vector: the range is
 * cut into blocks of LM_RULE_BLK elements, shared among threads for long
 * ranges, and each block goes to the loops of rules_impl.h compiled for the
 * CPU's ISA (the step's table). Also the gradient norms for clipping. */
#include "optim/rules_impl.h"

const lm_rule_blocks lm_rule_blocks_generic = LM_RULE_BLOCKS_TABLE;

static void run_blocks(lm_rule_block_fn f, const lm_optimizer *o, const lm_opt_step *s,
                       const lm_rule_ptrs *p, int64_t n) {
    const int64_t nblk = (n + BLK - 1) / BLK;
    const int nt = s->nthreads;
    LM_PAR_FOR(nt > 1 && n > LM_OPT_PAR_MIN, nt, b, nblk,
               { f(o, s, p, b * BLK, (int)lm_min64(BLK, n - b * BLK)); });
}

static lm_rule_ptrs ptrs(lm_optimizer *o, float *params, const float *grads, int64_t off) {
    /* An empty parameter vector has NULL buffers; NULL + 0 is still undefined in C. */
    lm_rule_ptrs p = {NULL, NULL, NULL, NULL, NULL};
    if (!params || !grads) return p;
    p.w = params + off;
    p.g = grads + off;
    float **sl[3] = {&p.s0, &p.s1, &p.s2};
    for (int k = 0; k < o->n_slots && k < 3; k++)
        if (o->slot[k]) *sl[k] = o->slot[k] + off;
    return p;
}

void lm_rule_sgd(lm_optimizer *o, const lm_opt_step *s, float *params, const float *grads,
                 int64_t off, int64_t n) {
    lm_rule_ptrs p = ptrs(o, params, grads, off);
    run_blocks(s->blocks->sgd, o, s, &p, n);
}

void lm_rule_adam(lm_optimizer *o, const lm_opt_step *s, float *params, const float *grads,
                  int64_t off, int64_t n) {
    lm_rule_ptrs p = ptrs(o, params, grads, off);
    run_blocks(s->blocks->adam, o, s, &p, n);
}

void lm_rule_rmsprop(lm_optimizer *o, const lm_opt_step *s, float *params, const float *grads,
                     int64_t off, int64_t n) {
    lm_rule_ptrs p = ptrs(o, params, grads, off);
    run_blocks(s->blocks->rmsprop, o, s, &p, n);
}

void lm_rule_adagrad(lm_optimizer *o, const lm_opt_step *s, float *params, const float *grads,
                     int64_t off, int64_t n) {
    lm_rule_ptrs p = ptrs(o, params, grads, off);
    run_blocks(s->blocks->adagrad, o, s, &p, n);
}

/* ---- norms ---- */

/* Eight double lanes so the reduction vectorises without reassociation
 * flags; chunks of 4096 give threads work of equal size. */
static double sumsq_serial(const float *restrict g, int64_t n) {
    double a[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += (double)g[i + k] * (double)g[i + k];
    for (; i < n; i++) a[0] += (double)g[i] * (double)g[i];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

double lm_opt_sumsq(const float *g, int64_t n, int nthreads) {
    if (nthreads <= 1 || n <= LM_OPT_PAR_MIN) return sumsq_serial(g, n);
    const int64_t chunk = 4096, nch = (n + chunk - 1) / chunk;
    double total = 0;
#pragma omp parallel for num_threads(nthreads) reduction(+ : total) schedule(static)
    for (int64_t c = 0; c < nch; c++)
        total += sumsq_serial(g + c * chunk, lm_min64(chunk, n - c * chunk));
    return total;
}
