/* Optimizer internals: the update runs over flat parameter and gradient
 * vectors (all trainable weights laid end to end), variable by variable for
 * the per-variable options (clipnorm). */
#ifndef LM_OPTIM_H
#define LM_OPTIM_H

#include "core/core.h"
#include "lamina/optimizers.h"

#define LM_OPT_MAX_SLOTS 4

typedef enum lm_opt_kind {
    LM_OPT_SGD,
    LM_OPT_ADAM,
    LM_OPT_ADAMW,
    LM_OPT_RMSPROP,
    LM_OPT_ADAGRAD
} lm_opt_kind;

struct lm_optimizer {
    lm_opt_kind kind;
    double lr;
    lm_schedule *schedule;
    double clipnorm, clipvalue, global_clipnorm, weight_decay;
    int64_t iterations;
    /* hyperparameters (Keras names) */
    double beta_1, beta_2, epsilon, momentum, rho, initial_accumulator_value;
    bool nesterov, amsgrad, centered;
    /* state: one flat vector per slot, laid out like the parameters */
    int n_vars;
    int64_t *offsets, *sizes; /* per variable */
    int64_t n_params;
    int n_slots;
    float *slot[LM_OPT_MAX_SLOTS];
    const char *slot_name[LM_OPT_MAX_SLOTS]; /* Keras variable names: "momentum", "velocity"... */
    lm_isa isa;                              /* the context's at build: which loops run */
};

/* A schedule's Keras class and arguments, for model configs (io/keras_config*.c). */
typedef struct lm_schedule_info {
    const char *class_name; /* "ExponentialDecay", "PiecewiseConstantDecay", "CosineDecay" */
    double initial_learning_rate, decay_rate, alpha;
    int64_t decay_steps;
    bool staircase;
    int n; /* PiecewiseConstantDecay: boundaries[n], values[n + 1] */
    const int64_t *boundaries;
    const double *values;
} lm_schedule_info;
void lm_schedule_get_info(const lm_schedule *s, lm_schedule_info *out);

/* Allocates the state for n_vars variables of the given sizes (zeroing it,
 * or filling initial_accumulator_value). Building again with the same sizes
 * keeps the state. */
lm_status lm_optimizer_build(lm_optimizer *o, lm_ctx *ctx, int n_vars, const int64_t *sizes);
/* One step: applies clipping, decoupled weight decay and the update rule to
 * params from grads (both flat, length n_params; grads may be modified), then
 * increments iterations. */
lm_status lm_optimizer_step(lm_optimizer *o, float *params, float *grads, int nthreads);

#endif
