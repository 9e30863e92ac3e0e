/* ReduceLROnPlateau (keras/src/callbacks/reduce_lr_on_plateau.py): after
 * patience epochs without an improvement of min_delta, multiplies the
 * optimizer's learning rate by factor (not below min_lr), then waits cooldown
 * epochs. Like Keras it adds "learning_rate" (the rate the epoch used, as
 * float32) to the epoch's logs. */
#include "nn/callbacks/cb_impl.h"
#include <math.h>

typedef struct rlr_state {
    lm_reduce_lr_opts o;
    lm_monitor mo;
    bool has_best, warned, bad_factor;
    double best;
    int wait, cooldown_counter;
} rlr_state;

static void rlr_train_begin(lm_callback *cb, lm_model *m, const lm_logs *logs) {
    (void)logs;
    rlr_state *s = cb->state;
    cb->err = LM_OK;
    s->has_best = false;
    s->wait = s->cooldown_counter = 0;
    /* Keras rejects these in the constructor; a C constructor can only say
     * NULL, so the fit that uses the callback fails instead. */
    char f[40];
    if (s->bad_factor)
        lm_cb_fail(cb, m, LM_ERR_ARG,
                   "ReduceLROnPlateau does not support a factor >= 1.0. Received factor=%s",
                   lm_pyfloat(s->o.factor, f, sizeof f));
    else if (!lm_model_optimizer(m))
        lm_cb_fail(cb, m, LM_ERR_STATE, "ReduceLROnPlateau: %s has no optimizer", m->name);
}

static void rlr_epoch_end(lm_callback *cb, lm_model *m, int epoch, lm_logs *logs) {
    rlr_state *s = cb->state;
    lm_optimizer *opt = lm_model_optimizer(m);
    if (!opt || lm_monitor_resolve(&s->mo, cb, m, "ReduceLROnPlateau")) return;
    lm_logs_set(logs, "learning_rate", lm_log_value(lm_optimizer_learning_rate(opt)));
    double cur;
    if (!lm_logs_find(logs, s->mo.name, &cur)) {
        char keys[1024];
        lm_cb_warn(&s->warned,
                   "Learning rate reduction is conditioned on metric `%s` which is not available. "
                   "Available metrics are: %s.",
                   s->mo.name, lm_logs_keys_str(logs, keys, sizeof keys));
        return;
    }
    cur = lm_log_value(cur);
    if (s->cooldown_counter > 0) {
        s->cooldown_counter--;
        s->wait = 0;
    }
    if (lm_monitor_better(&s->mo, cur, s->has_best, s->best)) {
        s->best = cur;
        s->has_best = true;
        s->wait = 0;
        return;
    }
    if (s->cooldown_counter > 0 || ++s->wait < s->o.patience) return;
    /* The rate is a float32 variable in Keras: compare and scale that value. */
    double old_lr = lm_log_value(lm_optimizer_learning_rate(opt));
    if (!(old_lr > (double)(float)s->o.min_lr)) return;
    double new_lr = fmax(old_lr * s->o.factor, s->o.min_lr);
    if (lm_cb_set_lr(cb, m, opt, new_lr, "ReduceLROnPlateau")) return;
    if (s->o.verbose > 0) {
        char b[40];
        printf("\nEpoch %d: ReduceLROnPlateau reducing learning rate to %s.\n", epoch + 1,
               lm_pyfloat(new_lr, b, sizeof b));
        fflush(stdout);
    }
    s->cooldown_counter = s->o.cooldown;
    s->wait = 0;
}

static const lm_callback_vt rlr_vt = {.on_train_begin = rlr_train_begin,
                                      .on_epoch_end = rlr_epoch_end};

lm_callback *lm_reduce_lr_on_plateau_(lm_reduce_lr_opts o) {
    lm_callback *cb = lm_cb_alloc(&rlr_vt, sizeof(rlr_state));
    if (!cb) return NULL;
    rlr_state *s = cb->state;
    s->o = o;
    s->o.monitor = NULL;
    if (s->o.factor == 0) s->o.factor = 0.1;
    if (s->o.patience == 0)
        s->o.patience = 10;
    else if (s->o.patience < 0)
        s->o.patience = 0;
    if (s->o.min_delta == 0) s->o.min_delta = 1e-4;
    s->bad_factor = !(s->o.factor < 1.0);
    lm_monitor_init(&s->mo, o.monitor, o.mode, s->o.min_delta);
    return cb;
}
