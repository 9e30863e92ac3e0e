/* Internals shared by the callbacks and the weights files: the container
 * format of lm_save_weights (also used for BackupAndRestore), the monitored
 * quantity logic of Keras's MonitorCallback, Python-style number formatting
 * and small file helpers. */
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

/* ---- weights container (see weights_file.c for the layout) ---- */
#define LM_WFILE_WEIGHTS 1u /* lm_save_weights */
#define LM_WFILE_BACKUP  2u /* BackupAndRestore: weights, optimizer, epoch */

typedef struct lm_wrec {
    const char *name; /* at most LM_WREC_NAME_MAX bytes */
    lm_dtype dt;
    lm_shape shape;
    const void *data; /* numel * dtype size bytes, C order */
} lm_wrec;
#define LM_WREC_NAME_MAX 1024

/* Writes the records atomically (temporary file in the same directory,
 * fsync, rename, fsync of the directory). who prefixes messages. */
lm_status lm_wfile_write(lm_ctx *ctx, const char *who, const char *path, uint32_t kind, int n,
                         const lm_wrec *recs);

typedef struct lm_wfile {
    uint32_t kind;
    int n;
    lm_wrec *rec; /* names and data point into the buffers below */
    char *names;
    void *payload;
} lm_wfile;
/* Reads and validates a whole file (magic, version, kind, sizes, CRC). */
lm_status lm_wfile_read(lm_ctx *ctx, const char *who, const char *path, uint32_t kind, lm_wfile *f);
void lm_wfile_free(lm_wfile *f);
const lm_wrec *lm_wfile_find(const lm_wfile *f, const char *name);

/* The model's weights in lm_model_weights order with their names
 * ("dense/kernel", wrapped layers as "bidirectional/forward_lstm/kernel").
 * Fills w[] and names[] (each LM_WNAME bytes); returns the count or -1. */
#define LM_WNAME 160
int lm_model_weight_names(lm_model *m, lm_weight **w, char (*names)[LM_WNAME], int max);
/* Checks the records against the model's weights (count, names, dtypes,
 * shapes) and copies them in; nothing is written unless all match. The
 * records are f->rec[first .. first + count of model weights). */
lm_status lm_wfile_load_model(lm_model *m, const char *who, const char *path, const lm_wfile *f,
                              int first);
/* Appends the model's weights to recs (max entries); returns the new count
 * or -1. names must have room for max entries. */
int lm_wfile_model_records(lm_model *m, lm_wrec *recs, char (*names)[LM_WNAME], int n, int max,
                           lm_tensor **tmp);

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
