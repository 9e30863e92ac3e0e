/* Internals shared by the callbacks: weight snapshots, the monitored
 * quantity logic of Keras's MonitorCallback, Python-style number formatting
 * and small file helpers. (Weights files: src/io/keras_weights.h.) */
#ifndef LM_CB_IMPL_H
#define LM_CB_IMPL_H

#include "nn/train.h"
#include <stdio.h>

/* ---- callback objects ---- */
/* A callback with vt and a calloc'd state of state_size bytes; NULL on OOM. */
lm_callback *lm_cb_alloc(const lm_callback_vt *vt, size_t state_size);
/* Records a failure of the callback (the message goes to the model's
 * context); fit reports it and stops. Returns s. */
lm_status lm_cb_fail(lm_callback *cb, lm_model *m, lm_status s, const char *fmt, ...)
    LM_PRINTF(4, 5);

/* The value of key in the logs, if present. */
bool lm_logs_find(const lm_logs *l, const char *key, double *v);
/* "loss,val_loss": the keys joined by commas, as Keras lists them. */
const char *lm_logs_keys_str(const lm_logs *l, char *buf, size_t n);
/* A Python UserWarning on stderr, shown once per callback (*warned). */
void lm_cb_warn(bool *warned, const char *fmt, ...) LM_PRINTF(2, 3);

/* Sets the optimizer's rate as Keras's setter does: refused (failing the
 * callback) when the optimizer was built with a schedule. */
lm_status lm_cb_set_lr(lm_callback *cb, lm_model *m, lm_optimizer *opt, double lr, const char *cls);

/* ---- weight snapshots (EarlyStopping's best weights) ---- */
/* All weights copied end to end into *buf (malloc'd, *bytes long). */
lm_status lm_weights_snapshot(lm_model *m, void **buf, size_t *bytes);
lm_status lm_weights_restore(lm_model *m, const void *buf, size_t bytes);

/* ---- monitored quantities (Keras MonitorCallback) ---- */
typedef struct lm_monitor {
    char name[48];
    lm_monitor_mode mode;
    double min_delta; /* signed as Keras: negative when minimising */
    int dir;          /* +1 greater is better, -1 less, 0 not resolved yet */
} lm_monitor;
void lm_monitor_init(lm_monitor *mo, const char *monitor, lm_monitor_mode mode, double min_delta);
/* Resolves the direction at the first epoch end, as Keras does: min/max
 * modes, "loss"/"val_loss", or the model's metric of that name. Fails the
 * callback when auto mode cannot tell. */
lm_status lm_monitor_resolve(lm_monitor *mo, lm_callback *cb, lm_model *m, const char *cls);
/* Keras _is_improvement: op(current - min_delta, reference), compared in
 * float32 as JAX does; always true without a reference. */
bool lm_monitor_better(const lm_monitor *mo, double current, bool has_ref, double ref);

/* ---- formatting ---- */
/* The value Keras logs carry: a float32 metric as a Python float. */
static inline double lm_log_value(double v) {
    return (double)(float)v;
}
/* Python's repr() of a float: shortest round-trip digits ("0.1", "1e-05",
 * "nan", "inf", "3.0"). Returns buf. */
char *lm_pyfloat(double v, char *buf, size_t n);
/* Python str.format of a file path with {epoch} (an int) and log values
 * (floats): {name}, {name:02d}, {name:.2f}, {name:e}, {name:g}, {{ and }}.
 * On error writes a message into err and returns LM_ERR_ARG. */
lm_status lm_format_path(const char *fmt, int epoch, const lm_logs *logs, char *out, size_t n,
                         char *err, size_t errn);
/* mkdir -p of the directory part of path (dir_of_file) or of path itself. */
lm_status lm_mkdirs(lm_ctx *ctx, const char *path, bool dir_of_file);

#endif
