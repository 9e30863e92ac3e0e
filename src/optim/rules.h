/* Private to src/optim: the fused per-optimizer update loops (rules.c) and
 * the schedule checks used by lm_optimizer_build (schedule.c). */
#ifndef LM_OPTIM_RULES_H
#define LM_OPTIM_RULES_H

#include "optim/optim.h"

/* Vectors shorter than this run on one thread: below it the fork costs more
 * than the memory-bound update saves. */
#define LM_OPT_PAR_MIN 65536

/* Elements per block of an update (rules_impl.h): the block's temporaries stay in L1. */
#define LM_RULE_BLK 256

/* Pointers of the range being updated (params, grads, up to three slots). */
typedef struct lm_rule_ptrs {
    float *w;
    const float *g;
    float *s0, *s1, *s2;
} lm_rule_ptrs;

struct lm_opt_step;
/* One rule over elements [lo, lo + nb) of a range, nb <= LM_RULE_BLK. */
typedef void (*lm_rule_block_fn)(const lm_optimizer *o, const struct lm_opt_step *s,
                                 const lm_rule_ptrs *p, int64_t lo, int nb);
/* Every rule's block loop, compiled for one ISA (rules.c, rules_avx2.c, rules_avx512.c). */
typedef struct lm_rule_blocks {
    lm_rule_block_fn sgd, adam, rmsprop, adagrad;
} lm_rule_blocks;
extern const lm_rule_blocks lm_rule_blocks_generic, lm_rule_blocks_avx2, lm_rule_blocks_avx512;

/* Scalars of one step, computed once by the dispatcher. */
typedef struct lm_opt_step {
    const lm_rule_blocks *blocks; /* the loops for this CPU */
    float lr;
    float gscale;    /* clipnorm / global_clipnorm factor; 1 when unclipped */
    float clipvalue; /* +INFINITY when unclipped */
    float wd;        /* used when has_wd */
    bool has_wd;
    float alpha;              /* Adam: lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) */
    float one_m_b1, one_m_b2; /* Adam: 1 - beta */
    float rho, one_m_rho;     /* RMSprop */
    float momentum;           /* SGD, RMSprop */
    float epsilon;
    int nthreads;
} lm_opt_step;

/* Each updates params[off, off + n) and the optimizer's slots over the same
 * range from grads (clipped and decayed on the fly). */
void lm_rule_sgd(lm_optimizer *o, const lm_opt_step *s, float *params, const float *grads,
                 int64_t off, int64_t n);
void lm_rule_adam(lm_optimizer *o, const lm_opt_step *s, float *params, const float *grads,
                  int64_t off, int64_t n);
void lm_rule_rmsprop(lm_optimizer *o, const lm_opt_step *s, float *params, const float *grads,
                     int64_t off, int64_t n);
void lm_rule_adagrad(lm_optimizer *o, const lm_opt_step *s, float *params, const float *grads,
                     int64_t off, int64_t n);

/* Sum of squares in double (vectorised, threaded above LM_OPT_PAR_MIN). */
double lm_opt_sumsq(const float *g, int64_t n, int nthreads);

/* LM_OK, or the reason the schedule is unusable recorded in ctx, prefixed by
 * the optimizer's name. */
lm_status lm_schedule_check(const lm_schedule *s, lm_ctx *ctx, const char *who);

#endif
