/* LearningRateScheduler (keras/src/callbacks/learning_rate_scheduler.py):
 * at each epoch begin, schedule(epoch, current rate) sets the optimizer's
 * rate; at the epoch end "learning_rate" joins the logs. The current rate is
 * handed over as float32, the value Keras reads from its variable. */
#include "nn/callbacks/cb_impl.h"

typedef struct lrs_state {
    lm_lr_schedule_fn fn;
    void *user;
    int verbose;
} lrs_state;

static void lrs_train_begin(lm_callback *cb, lm_model *m, const lm_logs *logs) {
    (void)logs;
    cb->err = LM_OK;
    if (!lm_model_optimizer(m))
        lm_cb_fail(cb, m, LM_ERR_STATE, "LearningRateScheduler: %s has no optimizer", m->name);
}

static void lrs_epoch_begin(lm_callback *cb, lm_model *m, int epoch, const lm_logs *logs) {
    (void)logs;
    lrs_state *s = cb->state;
    lm_optimizer *opt = lm_model_optimizer(m);
    if (!opt) return;
    double lr = s->fn(epoch, lm_log_value(lm_optimizer_learning_rate(opt)), s->user);
    if (lm_cb_set_lr(cb, m, opt, lr, "LearningRateScheduler")) {
        lm_model_stop_training(m); /* at once; fit then reports the error */
        return;
    }
    if (s->verbose > 0) {
        char b[40];
        printf("\nEpoch %d: LearningRateScheduler setting learning rate to %s.\n", epoch + 1,
               lm_pyfloat(lr, b, sizeof b));
        fflush(stdout);
    }
}

static void lrs_epoch_end(lm_callback *cb, lm_model *m, int epoch, lm_logs *logs) {
    (void)cb, (void)epoch;
    lm_optimizer *opt = lm_model_optimizer(m);
    if (opt) lm_logs_set(logs, "learning_rate", lm_log_value(lm_optimizer_learning_rate(opt)));
}

static const lm_callback_vt lrs_vt = {.on_train_begin = lrs_train_begin,
                                      .on_epoch_begin = lrs_epoch_begin,
                                      .on_epoch_end = lrs_epoch_end};

lm_callback *lm_learning_rate_scheduler(lm_lr_schedule_fn schedule, void *user, int verbose) {
    if (!schedule) return NULL;
    lm_callback *cb = lm_cb_alloc(&lrs_vt, sizeof(lrs_state));
    if (!cb) return NULL;
    lrs_state *s = cb->state;
    s->fn = schedule;
    s->user = user;
    s->verbose = verbose;
    return cb;
}
