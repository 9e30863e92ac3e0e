/* EarlyStopping (keras/src/callbacks/early_stopping.py): stops when the
 * monitored quantity has not improved by min_delta for patience epochs, after
 * start_from_epoch warm-up epochs; with restore_best_weights the weights of
 * the best epoch are put back when training ends, whether it stopped early
 * or not, as Keras 3 does. */
#include "nn/callbacks/cb_impl.h"
#include <stdlib.h>

typedef struct es_state {
    lm_early_stopping_opts o;
    lm_monitor mo;
    int wait, stopped_epoch, best_epoch;
    bool has_best, warned;
    double best;
    void *best_w; /* snapshot of the best weights */
    size_t best_bytes;
    bool has_best_w;
} es_state;

static void es_train_begin(lm_callback *cb, lm_model *m, const lm_logs *logs) {
    (void)m, (void)logs;
    es_state *s = cb->state;
    /* Reusable across fits, as in Keras. */
    s->wait = s->stopped_epoch = s->best_epoch = 0;
    s->has_best = s->has_best_w = false;
    cb->err = LM_OK;
}

static void es_epoch_end(lm_callback *cb, lm_model *m, int epoch, lm_logs *logs) {
    es_state *s = cb->state;
    if (lm_monitor_resolve(&s->mo, cb, m, "EarlyStopping")) return;
    double cur;
    if (!lm_logs_find(logs, s->mo.name, &cur)) {
        char keys[1024];
        lm_cb_warn(&s->warned,
                   "Early stopping conditioned on metric `%s` which is not available. Available "
                   "metrics are: %s",
                   s->mo.name, lm_logs_keys_str(logs, keys, sizeof keys));
        return;
    }
    if (epoch < s->o.start_from_epoch) return;
    cur = lm_log_value(cur);
    if (s->o.restore_best_weights && !s->has_best_w) {
        /* Until an epoch improves, the first monitored one counts as best. */
        if (lm_weights_snapshot(m, &s->best_w, &s->best_bytes)) {
            lm_cb_fail(cb, m, LM_ERR_OOM, "EarlyStopping: %s", lm_ctx_error(m->ctx));
            return;
        }
        s->has_best_w = true;
        s->best_epoch = epoch;
    }
    s->wait++;
    if (lm_monitor_better(&s->mo, cur, s->has_best, s->best)) {
        s->best = cur;
        s->has_best = true;
        s->best_epoch = epoch;
        if (s->o.restore_best_weights && lm_weights_snapshot(m, &s->best_w, &s->best_bytes)) {
            lm_cb_fail(cb, m, LM_ERR_OOM, "EarlyStopping: %s", lm_ctx_error(m->ctx));
            return;
        }
        /* The wait restarts only when the baseline is beaten too. */
        if (!s->o.has_baseline || lm_monitor_better(&s->mo, cur, true, s->o.baseline)) s->wait = 0;
        return;
    }
    if (s->wait >= s->o.patience && epoch > 0) {
        s->stopped_epoch = epoch;
        lm_model_stop_training(m);
    }
}

static void es_train_end(lm_callback *cb, lm_model *m, const lm_logs *logs) {
    (void)logs;
    es_state *s = cb->state;
    if (s->stopped_epoch > 0 && s->o.verbose > 0)
        printf("Epoch %d: early stopping\n", s->stopped_epoch + 1);
    if (s->o.restore_best_weights && s->has_best_w) {
        if (s->o.verbose > 0)
            printf("Restoring model weights from the end of the best epoch: %d.\n",
                   s->best_epoch + 1);
        if (lm_weights_restore(m, s->best_w, s->best_bytes))
            lm_cb_fail(cb, m, LM_ERR_STATE, "EarlyStopping: %s", lm_ctx_error(m->ctx));
    }
    fflush(stdout);
}

static void es_destroy(lm_callback *cb) {
    es_state *s = cb->state;
    free(s->best_w);
}

static const lm_callback_vt es_vt = {.on_train_begin = es_train_begin,
                                     .on_epoch_end = es_epoch_end,
                                     .on_train_end = es_train_end,
                                     .destroy = es_destroy};

lm_callback *lm_early_stopping_(lm_early_stopping_opts o) {
    lm_callback *cb = lm_cb_alloc(&es_vt, sizeof(es_state));
    if (!cb) return NULL;
    es_state *s = cb->state;
    s->o = o;
    if (s->o.patience < 0) s->o.patience = 0;
    lm_monitor_init(&s->mo, o.monitor, o.mode, o.min_delta);
    s->o.monitor = NULL; /* the caller's string need not outlive the call */
    return cb;
}
