/* Optimizers with Keras's update formulas and defaults, and learning-rate
 * schedules. A model takes ownership of the optimizer given to lm_compile. */
#ifndef LAMINA_OPTIMIZERS_H
#define LAMINA_OPTIMIZERS_H

#include <stdbool.h>
#include <stdint.h>
#include "lamina/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lm_optimizer lm_optimizer;
typedef struct lm_schedule lm_schedule;

/* Learning rate as a function of the step (iterations done). The optimizer
 * given a schedule owns it. Constructors return NULL only when out of memory;
 * a schedule made from invalid arguments (decay_steps <= 0, a negative rate,
 * boundaries not increasing) evaluates to NaN, and lm_optimizer_build of its
 * optimizer fails with the reason. */
lm_schedule *lm_exponential_decay(double initial_learning_rate, int64_t decay_steps,
                                  double decay_rate, bool staircase);
/* values has n + 1 entries: values[i] applies while step <= boundaries[i]. */
lm_schedule *lm_piecewise_constant_decay(int n, const int64_t *boundaries, const double *values);
/* Cosine decay from initial to initial * alpha over decay_steps (Keras
 * CosineDecay without warmup). */
lm_schedule *lm_cosine_decay(double initial_learning_rate, int64_t decay_steps, double alpha);
/* Learning rate of a schedule at a step (NaN for NULL or an invalid schedule). */
double lm_schedule_value(const lm_schedule *s, int64_t step);
void lm_schedule_free(lm_schedule *s);

/* Options shared by every optimizer; zero fields take Keras's defaults (so a
 * hyperparameter cannot be asked to be exactly 0 where its default is not).
 * Constructors accept any value and return NULL only when out of memory;
 * lm_optimizer_build rejects invalid ones (negative rates or norms, betas or
 * rho outside [0, 1), momentum outside [0, 1], more than one clipping
 * option) with a message naming the optimizer and the value. */
#define LM_OPTIMIZER_COMMON                                                                        \
    double learning_rate;   /* default: the optimizer's own (0.001, SGD 0.01) */                   \
    lm_schedule *schedule;  /* overrides learning_rate; owned by the optimizer */                  \
    double clipnorm;        /* clip each gradient to this L2 norm */                               \
    double clipvalue;       /* clip each gradient element to [-v, v] */                            \
    double global_clipnorm; /* clip all gradients together to this L2 norm */                      \
    double weight_decay     /* decoupled decay, lr * wd * w, before the update */

typedef struct lm_sgd_opts {
    LM_OPTIMIZER_COMMON;
    double momentum;
    bool nesterov;
} lm_sgd_opts;
lm_optimizer *lm_sgd_(lm_sgd_opts o);
#define lm_sgd(...) lm_sgd_((lm_sgd_opts){__VA_ARGS__})

typedef struct lm_adam_opts {
    LM_OPTIMIZER_COMMON;
    double beta_1;  /* default 0.9 */
    double beta_2;  /* default 0.999 */
    double epsilon; /* default 1e-7 */
    bool amsgrad;
} lm_adam_opts;
lm_optimizer *lm_adam_(lm_adam_opts o);
#define lm_adam(...) lm_adam_((lm_adam_opts){__VA_ARGS__})
/* AdamW: Adam with weight_decay defaulting to 0.004, as Keras. */
lm_optimizer *lm_adamw_(lm_adam_opts o);
#define lm_adamw(...) lm_adamw_((lm_adam_opts){__VA_ARGS__})

typedef struct lm_rmsprop_opts {
    LM_OPTIMIZER_COMMON;
    double rho; /* default 0.9 */
    double momentum;
    double epsilon; /* default 1e-7 */
    bool centered;
} lm_rmsprop_opts;
lm_optimizer *lm_rmsprop_(lm_rmsprop_opts o);
#define lm_rmsprop(...) lm_rmsprop_((lm_rmsprop_opts){__VA_ARGS__})

typedef struct lm_adagrad_opts {
    LM_OPTIMIZER_COMMON;
    double initial_accumulator_value; /* default 0.1 */
    double epsilon;                   /* default 1e-7 */
} lm_adagrad_opts;
lm_optimizer *lm_adagrad_(lm_adagrad_opts o);
#define lm_adagrad(...) lm_adagrad_((lm_adagrad_opts){__VA_ARGS__})

/* An optimizer from its Keras name ("adam", "sgd", "rmsprop", "adagrad",
 * "adamw") with default options; NULL if unknown. */
lm_optimizer *lm_optimizer_from_name(const char *name);
/* Keras name of the optimizer ("adam"); NULL for NULL. */
const char *lm_optimizer_name(const lm_optimizer *o);
/* The learning rate the next step uses (NaN for NULL). */
double lm_optimizer_learning_rate(const lm_optimizer *o);
/* Sets a constant learning rate >= 0 (dropping any schedule); LM_ERR_ARG for
 * NULL or a negative or NaN rate. */
lm_status lm_optimizer_set_learning_rate(lm_optimizer *o, double lr);
/* Steps taken so far (-1 for NULL). A build with other variable sizes
 * restarts the state and the count. */
int64_t lm_optimizer_iterations(const lm_optimizer *o);
/* Frees an optimizer not handed to a model. NULL is a no-op. */
void lm_optimizer_free(lm_optimizer *o);

#ifdef __cplusplus
}
#endif
#endif
