/* Keras models: Sequential and functional construction, compile, fit,
 * evaluate, predict, the summary table and the training history. */
#ifndef LAMINA_MODEL_H
#define LAMINA_MODEL_H

#include <stdbool.h>
#include <stdio.h>
#include "lamina/layers.h"
#include "lamina/optimizers.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lm_model lm_model;
typedef struct lm_kt lm_kt; /* a symbolic tensor of a functional model (Keras tensor) */
typedef struct lm_history lm_history;
typedef struct lm_callback lm_callback;
typedef struct lm_logs lm_logs;

/* ---- construction ---- */
/* New Sequential model with its own context (threads, seed 0, errors); NULL
 * only when memory runs out. name NULL gives "sequential". */
lm_model *lm_sequential(const char *name);
/* New functional model: declare inputs with lm_model_input, call layers on
 * them with lm_call, finish with lm_model_set_outputs. name NULL gives "functional". */
lm_model *lm_functional(const char *name);
/* Frees the model, its layers, optimizer and sessions. NULL is a no-op. */
void lm_model_free(lm_model *m);

/* Appends a layer to a Sequential model (the model owns it). Shape errors
 * name the layer and the shapes and are also kept for lm_compile / lm_fit. */
lm_status lm_add(lm_model *m, lm_layer *l);
/* Removes the last layer of a Sequential model. */
lm_status lm_pop(lm_model *m);

/* keras.Input: a model input of the given shape without the batch. */
lm_kt *lm_model_input(lm_model *m, lm_shape shape, const char *name);
/* Calls a layer on a symbolic tensor (a layer called twice shares weights). */
lm_kt *lm_call(lm_layer *l, lm_kt *x);
/* Calls a layer on several tensors (merge layers). */
lm_kt *lm_call_n(lm_layer *l, int n, lm_kt *const *xs);
/* Calls a layer that returns several tensors (an RNN with return_state):
 * writes up to max_out of them and returns how many it has, or -1. */
int lm_call_multi(lm_layer *l, int n_in, lm_kt *const *xs, int max_out, lm_kt **outs);
/* Declares the outputs of a functional model; the model is then built. */
lm_status lm_model_set_outputs(lm_model *m, int n, lm_kt *const *outs);
/* Shape of a symbolic tensor, -1 for the batch. */
lm_shape lm_kt_shape(const lm_kt *t);

/* ---- inspection ---- */
lm_ctx *lm_model_ctx(lm_model *m); /* the model's context: threads, seed */
const char *lm_model_name(const lm_model *m);
/* First error met while building or training ("" if none) and its status. */
const char *lm_model_error(const lm_model *m);
lm_status lm_model_status(const lm_model *m);
/* Writes Keras's summary table. */
lm_status lm_summary(lm_model *m, FILE *f);
int lm_model_layer_count(const lm_model *m);
lm_layer *lm_model_layer(lm_model *m, int i);
lm_layer *lm_model_get_layer(lm_model *m, const char *name);
/* The optimizer given to lm_compile (owned by the model), or NULL. */
lm_optimizer *lm_model_optimizer(lm_model *m);
/* Number of parameters (all, or trainable only). */
int64_t lm_model_count_params(const lm_model *m, bool trainable_only);
/* All weights in Keras's model.weights order (layer by layer). */
int lm_model_weight_count(const lm_model *m);
lm_tensor *lm_model_weight(lm_model *m, int i);
/* Copies n tensors into the model's weights in that order (get_weights order). */
lm_status lm_model_set_weights(lm_model *m, int n, lm_tensor *const *w);

/* ---- compile ---- */
typedef enum lm_loss {
    LM_LOSS_NONE = 0,
    LM_MEAN_SQUARED_ERROR,
    LM_MEAN_ABSOLUTE_ERROR,
    LM_HUBER,
    LM_BINARY_CROSSENTROPY,
    LM_CATEGORICAL_CROSSENTROPY,
    LM_SPARSE_CATEGORICAL_CROSSENTROPY,
    LM_LOSS_COUNT
} lm_loss;
#define LM_MSE LM_MEAN_SQUARED_ERROR
#define LM_MAE LM_MEAN_ABSOLUTE_ERROR

typedef enum lm_metric {
    LM_METRIC_NONE = 0, /* terminates a metric list */
    LM_ACCURACY,        /* resolved from the loss and shapes, as Keras does */
    LM_BINARY_ACCURACY,
    LM_CATEGORICAL_ACCURACY,
    LM_SPARSE_CATEGORICAL_ACCURACY,
    LM_TOP_K_CATEGORICAL_ACCURACY,
    LM_SPARSE_TOP_K_CATEGORICAL_ACCURACY,
    LM_METRIC_MAE,
    LM_METRIC_MSE,
    LM_PRECISION,
    LM_RECALL,
    LM_METRIC_COUNT
} lm_metric;
/* LM_METRICS(LM_ACCURACY, LM_METRIC_MAE): a terminated metric list. */
#define LM_METRICS(...) ((const lm_metric[]){__VA_ARGS__, LM_METRIC_NONE})

/* Loss from its Keras name ("mse", "categorical_crossentropy", ...); 0 if unknown. */
lm_loss lm_loss_from_name(const char *name);
/* Metric from its Keras name ("accuracy", "mae", "top_k_categorical_accuracy"...); 0 if unknown. */
lm_metric lm_metric_from_name(const char *name);

typedef struct lm_compile_opts {
    lm_optimizer *optimizer;    /* owned by the model; default rmsprop, as Keras */
    lm_loss loss;               /* for every output, unless losses is given */
    const lm_loss *losses;      /* one per output */
    const double *loss_weights; /* one per output, default 1 */
    bool from_logits;
    double huber_delta; /* default 1.0 */
    const lm_metric *metrics;
    int top_k;        /* for top-k metrics, default 5 */
    double threshold; /* binary accuracy, precision, recall; default 0.5 */
} lm_compile_opts;
lm_status lm_compile_(lm_model *m, lm_compile_opts o);
#define lm_compile(m, ...) lm_compile_((m), (lm_compile_opts){__VA_ARGS__})

/* ---- training and inference ---- */
#define LM_SILENT (-1) /* .verbose: no output (0 means the default, 1) */

typedef struct lm_fit_opts {
    int epochs;              /* default 1 */
    int batch_size;          /* default 32 */
    int verbose;             /* 1 progress bar (default), 2 a line per epoch, LM_SILENT */
    double validation_split; /* the last fraction of the data, as Keras */
    lm_tensor *validation_x, *validation_y;
    lm_flag shuffle;            /* default true: reshuffled every epoch */
    const double *class_weight; /* indexed by class, n_class_weight entries */
    int n_class_weight;
    lm_tensor *sample_weight; /* (N,) */
    int initial_epoch;
    lm_callback *const *callbacks; /* NULL-terminated, see LM_CALLBACKS */
} lm_fit_opts;
/* LM_CALLBACKS(cb1, cb2): a NULL-terminated callback list (the caller keeps
 * ownership of the callbacks). */
#define LM_CALLBACKS(...) ((lm_callback *const[]){__VA_ARGS__, NULL})

/* Trains the model; returns the history (free with lm_history_free), or NULL
 * with the message in lm_model_error. x and y hold all samples along axis 0. */
lm_history *lm_fit_(lm_model *m, lm_tensor *x, lm_tensor *y, lm_fit_opts o);
#define lm_fit(m, x, y, ...) lm_fit_((m), (x), (y), (lm_fit_opts){__VA_ARGS__})
/* As lm_fit for models with several inputs or outputs. */
lm_history *lm_fit_multi(lm_model *m, int n_x, lm_tensor *const *x, int n_y, lm_tensor *const *y,
                         lm_fit_opts o);

typedef struct lm_eval_opts {
    int batch_size; /* default 32 */
    int verbose;    /* 1 progress bar (default), LM_SILENT */
    lm_tensor *sample_weight;
    lm_callback *const *callbacks;
} lm_eval_opts;
/* Loss and metrics over the data: writes up to max values into out (the loss
 * first, then the metrics in lm_model_metric_name order) and returns how many
 * there are, or -1 on error. */
int lm_evaluate_(lm_model *m, lm_tensor *x, lm_tensor *y, double *out, int max, lm_eval_opts o);
#define lm_evaluate(m, x, y, out, max, ...)                                                        \
    lm_evaluate_((m), (x), (y), (out), (max), (lm_eval_opts){__VA_ARGS__})
int lm_evaluate_multi(lm_model *m, int n_x, lm_tensor *const *x, int n_y, lm_tensor *const *y,
                      double *out, int max, lm_eval_opts o);
/* Name of the i-th value lm_evaluate returns ("loss", "accuracy", ...). */
const char *lm_model_metric_name(const lm_model *m, int i);

typedef struct lm_predict_opts {
    int batch_size; /* default 32 */
    int verbose;    /* LM_SILENT or 1 (default) */
    lm_callback *const *callbacks;
} lm_predict_opts;
/* Outputs for every sample (first output); a new tensor to free, or NULL. */
lm_tensor *lm_predict_(lm_model *m, lm_tensor *x, lm_predict_opts o);
#define lm_predict(m, x, ...) lm_predict_((m), (x), (lm_predict_opts){__VA_ARGS__})
/* All outputs of a model with several inputs or outputs; returns the count or -1. */
int lm_predict_multi(lm_model *m, int n_x, lm_tensor *const *x, int max_out, lm_tensor **out,
                     lm_predict_opts o);

/* One gradient step on one batch; writes the loss and metrics like lm_evaluate. */
int lm_train_on_batch(lm_model *m, lm_tensor *x, lm_tensor *y, lm_tensor *sample_weight,
                      double *out, int max);
/* Loss and metrics of one batch without training. */
int lm_test_on_batch(lm_model *m, lm_tensor *x, lm_tensor *y, lm_tensor *sample_weight, double *out,
                     int max);
/* Outputs of one batch. */
lm_tensor *lm_predict_on_batch(lm_model *m, lm_tensor *x);

/* ---- history ---- */
int lm_history_epochs(const lm_history *h); /* epochs recorded */
int lm_history_key_count(const lm_history *h);
const char *lm_history_key(const lm_history *h, int i); /* "loss", "val_accuracy", ... */
/* The value of key at epoch index i (0-based), NaN if absent. */
double lm_history_get(const lm_history *h, const char *key, int i);
void lm_history_free(lm_history *h);

#ifdef __cplusplus
}
#endif
#endif
