/* The compiled state of a model, shared by compile.c and fit.c. */
#ifndef LM_TRAIN_H
#define LM_TRAIN_H

#include "nn/metrics.h"
#include "nn/nn.h"
#include "optim/optim.h"

#define LM_MAX_METRICS 12

struct lm_train {
    /* compile options */
    bool compiled;
    lm_optimizer *opt;
    lm_loss loss[LM_MAX_IO];
    double loss_weight[LM_MAX_IO];
    bool from_logits;
    double huber_delta;
    int n_metric_kinds;
    lm_metric metric_kinds[LM_MAX_METRICS];
    int top_k;
    double threshold;

    /* training graph, built for the label signature of the first fit/evaluate */
    bool ready;
    lm_dtype y_dt[LM_MAX_IO];
    int y_ndim[LM_MAX_IO];
    lm_node *y_ph[LM_MAX_IO];
    lm_node *sw_ph;
    lm_node *loss_node;
    int n_train;
    lm_weight **train_w;
    float *flat_p, *flat_g; /* trainable weights and their gradients, end to end */
    int64_t n_params;
    lm_session *s_train, *s_eval;
    int n_metrics[LM_MAX_IO];
    lm_metric_state *ms[LM_MAX_IO][LM_MAX_METRICS];
    char metric_names[LM_MAX_IO * LM_MAX_METRICS + 1][64];
    int n_names; /* "loss" first */

    /* inference */
    lm_session *s_pred;
};

/* Builds the loss, gradient and metric machinery for labels of these dtypes
 * and shapes (N, ...). No-op when already built for the same signature. */
lm_status lm_train_prepare(lm_model *m, int n_y, const lm_tensor *const *y);
/* Session computing the outputs (built on first use). */
lm_session *lm_train_predict_session(lm_model *m);

#endif
