/* Training callbacks: Keras's built-in ones and user functions called at the
 * train, epoch and batch boundaries. The caller owns callbacks and frees them
 * with lm_callback_free after the last fit that uses them. */
#ifndef LAMINA_CALLBACKS_H
#define LAMINA_CALLBACKS_H

#include "lamina/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- logs: the metric values passed to callbacks ---- */
int lm_logs_count(const lm_logs *l);
const char *lm_logs_key(const lm_logs *l, int i);
double lm_logs_value(const lm_logs *l, int i);
/* Value of a key, NaN if absent. */
double lm_logs_get(const lm_logs *l, const char *key);

typedef enum lm_monitor_mode { LM_MODE_AUTO = 0, LM_MODE_MIN, LM_MODE_MAX } lm_monitor_mode;

typedef struct lm_early_stopping_opts {
    const char *monitor; /* default "val_loss" */
    double min_delta;
    int patience;
    int verbose;
    lm_monitor_mode mode;
    double baseline;
    bool has_baseline;
    bool restore_best_weights; /* at train end, stopped early or not (Keras 3) */
    int start_from_epoch;
} lm_early_stopping_opts;
lm_callback *lm_early_stopping_(lm_early_stopping_opts o);
#define lm_early_stopping(...) lm_early_stopping_((lm_early_stopping_opts){__VA_ARGS__})

typedef struct lm_checkpoint_opts {
    const char *monitor; /* default "val_loss" */
    int verbose;
    bool save_best_only;
    bool save_weights_only;
    lm_monitor_mode mode;
} lm_checkpoint_opts;
/* Saves after every epoch to filepath, which may hold Keras-style fields:
 * "ckpt-{epoch:02d}-{val_loss:.2f}.weights.h5" (epoch counts from 1).
 * Without save_weights_only a path ending in ".keras" gets the whole model
 * (lm_save); any other path gets lm_save_weights' file (so it must end in
 * ".weights.h5", or the save fails the fit). */
lm_callback *lm_model_checkpoint_(const char *filepath, lm_checkpoint_opts o);
#define lm_model_checkpoint(path, ...)                                                             \
    lm_model_checkpoint_((path), (lm_checkpoint_opts){__VA_ARGS__})

typedef struct lm_csv_logger_opts {
    char separator; /* default ',' */
    bool append;
} lm_csv_logger_opts;
lm_callback *lm_csv_logger_(const char *filename, lm_csv_logger_opts o);
#define lm_csv_logger(f, ...) lm_csv_logger_((f), (lm_csv_logger_opts){__VA_ARGS__})

typedef struct lm_reduce_lr_opts {
    const char *monitor; /* default "val_loss" */
    double factor;       /* default 0.1 */
    int patience;        /* default 10; negative for 0 */
    int verbose;
    lm_monitor_mode mode;
    double min_delta; /* default 1e-4 */
    int cooldown;
    double min_lr;
} lm_reduce_lr_opts;
/* Adds "learning_rate" to the epoch's logs (and history), as Keras does.
 * factor >= 1 fails the fit that uses it. */
lm_callback *lm_reduce_lr_on_plateau_(lm_reduce_lr_opts o);
#define lm_reduce_lr_on_plateau(...) lm_reduce_lr_on_plateau_((lm_reduce_lr_opts){__VA_ARGS__})

/* schedule(epoch, current_lr, user) gives the learning rate for the epoch;
 * "learning_rate" joins the epoch's logs. */
typedef double (*lm_lr_schedule_fn)(int epoch, double lr, void *user);
lm_callback *lm_learning_rate_scheduler(lm_lr_schedule_fn schedule, void *user, int verbose);

/* Stops training when the loss becomes NaN or infinite. */
lm_callback *lm_terminate_on_nan(void);

/* At the end of every epoch, as Keras: backup_dir/latest.weights.h5 (the
 * weights and the optimizer's variables, Keras's layout, which also records
 * the epoch) and backup_dir/training_metadata.json ({"epoch": N, "batch": 0}),
 * each written atomically. A later fit with the same directory (also one
 * Keras wrote) resumes from the last finished epoch with the same optimizer
 * state; a backup of another optimizer or model fails the fit. When training
 * finishes both files are deleted, and backup_dir too if nothing else is in
 * it. */
lm_callback *lm_backup_and_restore(const char *backup_dir);

/* ---- user callbacks ---- */
typedef struct lm_callback_fns {
    void *user;
    void (*on_train_begin)(lm_model *m, const lm_logs *logs, void *user);
    void (*on_train_end)(lm_model *m, const lm_logs *logs, void *user);
    void (*on_epoch_begin)(lm_model *m, int epoch, const lm_logs *logs, void *user);
    void (*on_epoch_end)(lm_model *m, int epoch, const lm_logs *logs, void *user);
    void (*on_train_batch_begin)(lm_model *m, int batch, const lm_logs *logs, void *user);
    void (*on_train_batch_end)(lm_model *m, int batch, const lm_logs *logs, void *user);
    void (*on_test_begin)(lm_model *m, const lm_logs *logs, void *user);
    void (*on_test_end)(lm_model *m, const lm_logs *logs, void *user);
    void (*on_predict_begin)(lm_model *m, const lm_logs *logs, void *user);
    void (*on_predict_end)(lm_model *m, const lm_logs *logs, void *user);
} lm_callback_fns;
lm_callback *lm_lambda_callback(lm_callback_fns fns);

/* Frees a callback. NULL is a no-op. */
void lm_callback_free(lm_callback *cb);

/* Asks a running fit to stop after the current batch (Keras model.stop_training). */
void lm_model_stop_training(lm_model *m);

/* ---- weights files (checkpoints) ---- */
/* Keras's model.save_weights: path must end in ".weights.h5". Writes Keras 3's
 * layout (layers/<layer>/vars/<i>, and optimizer/vars/<i> once compiled), which
 * keras.Model.load_weights reads, atomically (temporary file in the same
 * folder, fsync, rename). */
lm_status lm_save_weights(lm_model *m, const char *path);
/* Keras's model.load_weights, into a built model of the same structure: a
 * ".weights.h5" file (Keras 3's or Lamina's), the weights of a ".keras"
 * archive, or a legacy Keras ".h5"/".hdf5" file. Layers are matched by
 * class and position, as Keras matches them; a compiled model also gets the
 * optimizer's state (iterations, learning rate, slots) from a Keras 3 layout
 * file that has it, so training resumes where it stopped. A damaged file
 * (checksums), one whose shapes or dtypes differ, or one using soft or
 * external links fails with a message and leaves the model and optimizer as
 * they were. */
lm_status lm_load_weights(lm_model *m, const char *path);

#ifdef __cplusplus
}
#endif
#endif
