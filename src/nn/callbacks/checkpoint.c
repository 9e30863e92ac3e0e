/* ModelCheckpoint (keras/src/callbacks/model_checkpoint.py): saves after
 * every epoch to a path formatted from the epoch (1-based) and the logs,
 * optionally only when the monitored quantity improves. Without
 * save_weights_only a ".keras" path gets the whole model (lm_save, as Keras's
 * model.save); other paths get lm_save_weights' file. The best value is kept
 * across fits, as Keras keeps it. */
#include "nn/callbacks/cb_impl.h"
#include "lamina/saving.h"
#include <stdlib.h>
#include <string.h>

typedef struct ckpt_state {
    char *filepath;
    lm_checkpoint_opts o;
    lm_monitor mo;
    bool has_best, warned;
    double best;
} ckpt_state;

static void ckpt_train_begin(lm_callback *cb, lm_model *m, const lm_logs *logs) {
    (void)m, (void)logs;
    cb->err = LM_OK;
}

/* Keras _should_save_model, with its messages. */
static bool should_save(ckpt_state *s, int epoch, const lm_logs *logs, const char *path) {
    if (!s->o.save_best_only) {
        if (s->o.verbose > 0) printf("\nEpoch %d: saving model to %s\n", epoch + 1, path);
        return true;
    }
    double cur;
    if (!lm_logs_find(logs, s->mo.name, &cur)) {
        lm_cb_warn(&s->warned, "Can save best model only with %s available.", s->mo.name);
        return true;
    }
    cur = lm_log_value(cur);
    char best[64];
    if (s->has_best)
        snprintf(best, sizeof best, "%.5f", s->best);
    else
        snprintf(best, sizeof best, "None");
    if (lm_monitor_better(&s->mo, cur, s->has_best, s->best)) {
        if (s->o.verbose > 0)
            printf("\nEpoch %d: %s improved from %s to %.5f, saving model to %s\n", epoch + 1,
                   s->mo.name, best, cur, path);
        s->best = cur;
        s->has_best = true;
        return true;
    }
    if (s->o.verbose > 0)
        printf("\nEpoch %d: %s did not improve from %s\n", epoch + 1, s->mo.name, best);
    return false;
}

static void ckpt_epoch_end(lm_callback *cb, lm_model *m, int epoch, lm_logs *logs) {
    ckpt_state *s = cb->state;
    if (lm_monitor_resolve(&s->mo, cb, m, "ModelCheckpoint")) return;
    char path[4096], err[256];
    if (lm_format_path(s->filepath, epoch + 1, logs, path, sizeof path, err, sizeof err)) {
        lm_cb_fail(cb, m, LM_ERR_ARG,
                   "ModelCheckpoint: failed to format this callback filepath: \"%s\". Reason: %s",
                   s->filepath, err);
        return;
    }
    bool save = should_save(s, epoch, logs, path);
    fflush(stdout);
    if (!save) return;
    lm_status st = lm_mkdirs(m->ctx, path, true);
    size_t n = strlen(path);
    bool whole = !s->o.save_weights_only && n > 6 && !strcmp(path + n - 6, ".keras");
    if (!st) st = whole ? lm_save(m, path) : lm_save_weights(m, path);
    if (st) {
        lm_cb_fail(cb, m, st, "ModelCheckpoint: %s", lm_ctx_error(m->ctx));
        return;
    }
    if (s->o.verbose > 0) printf("\nEpoch %d: finished saving model to %s\n", epoch + 1, path);
    fflush(stdout);
}

static void ckpt_destroy(lm_callback *cb) {
    ckpt_state *s = cb->state;
    free(s->filepath);
}

static const lm_callback_vt ckpt_vt = {
    .on_train_begin = ckpt_train_begin, .on_epoch_end = ckpt_epoch_end, .destroy = ckpt_destroy};

lm_callback *lm_model_checkpoint_(const char *filepath, lm_checkpoint_opts o) {
    if (!filepath || !*filepath) return NULL;
    lm_callback *cb = lm_cb_alloc(&ckpt_vt, sizeof(ckpt_state));
    if (!cb) return NULL;
    ckpt_state *s = cb->state;
    s->o = o;
    s->o.monitor = NULL;
    lm_monitor_init(&s->mo, o.monitor, o.mode, 0);
    if (!(s->filepath = strdup(filepath))) {
        lm_callback_free(cb);
        return NULL;
    }
    return cb;
}
