/* Metric state: running values accumulated over batches, as Keras metrics. */
#ifndef LM_METRICS_H
#define LM_METRICS_H

#include "lamina/model.h"

typedef struct lm_metric_state lm_metric_state;

/* What a metric needs to know about its output: per-sample sizes, shapes
 * and the label dtype (Keras resolves "accuracy" from the shapes alone, not
 * the loss). */
typedef struct lm_metric_state_ctx {
    lm_loss loss;
    int64_t pred_per_sample; /* elements of y_pred per sample */
    int64_t true_per_sample; /* elements of y_true per sample */
    lm_dtype true_dtype;     /* LM_F32 or LM_I32 */
    int top_k;
    double threshold;
    /* Full shapes (dim 0 is the batch, ignored): Keras resolves "accuracy"
     * and splits rows from ranks and last dims. ndim 0 means unknown: then
     * predictions count as (N, pred_per_sample) and labels as (N,) when
     * there is one per row of predictions. */
    lm_shape pred_shape, true_shape;
} lm_metric_state_ctx;

/* New state for a metric; NULL (with a message in ctx) if it does not fit the output. */
lm_metric_state *lm_metric_state_new(lm_metric kind, const lm_metric_state_ctx *mc, lm_ctx *ctx);
/* Keras's name for it in logs: the name metrics=["..."] gives ("accuracy",
 * "mae", "mse", "precision", "top_k_categorical_accuracy"...). */
const char *lm_metric_state_name(const lm_metric_state *s);
void lm_metric_state_reset(lm_metric_state *s);
/* Adds a batch of n samples (sample_weight may be NULL). */
void lm_metric_state_update(lm_metric_state *s, const float *y_pred, const void *y_true, int64_t n,
                            const float *sample_weight);
double lm_metric_state_result(const lm_metric_state *s);
void lm_metric_state_free(lm_metric_state *s);

#endif
