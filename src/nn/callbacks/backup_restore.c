/* BackupAndRestore (keras/src/callbacks/backup_and_restore.py): at every
 * epoch end the model's weights, the optimizer's state (iterations, learning
 * rate, slots) and the number of finished epochs go atomically into one file
 * of backup_dir; a fit with the same directory restores them once its
 * training graph and optimizer exist and continues with the next epoch. A
 * successful fit deletes the file and, if then empty, the directory (Keras
 * removes the whole tree; Lamina leaves files it did not write). */
/* BackupAndRestore (keras/src/callbacks/backup_and_restore.py): at every
 * epoch end, as Keras, backup_dir/latest.weights.h5 (save_weights: the
 * model's weights and the optimizer's variables, in Keras's layout) and
 * backup_dir/training_metadata.json ({"epoch": N, "batch": 0}), each written
 * atomically. The weights file also records the epoch (a "lamina_epoch" root
 * attribute, which Keras ignores), so a crash between the two writes cannot
 * pair weights with another epoch; a backup written by Keras resumes from
 * its JSON. A fit with the same directory restores them once its training
 * graph and optimizer exist and continues with the next epoch; a backup
 * without the full optimizer state of this model's optimizer fails the fit
 * rather than resuming with a fresh one. A successful fit deletes both files
 * and, if then empty, the directory (Keras removes the whole tree; Lamina
 * leaves files it did not write). */
#include "io/keras_weights.h"
#include "nn/callbacks/cb_impl.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WEIGHTS_FILE  "latest.weights.h5"
#define METADATA_FILE "training_metadata.json"

typedef struct bar_state {
    char *dir, *path, *meta;
} bar_state;

static const char *WHO = "BackupAndRestore";

static void bar_epoch_end(lm_callback *cb, lm_model *m, int epoch, lm_logs *logs) {
    (void)logs;
    bar_state *s = cb->state;
    if (!lm_model_optimizer(m)) {
        lm_cb_fail(cb, m, LM_ERR_STATE, "%s: %s has no optimizer", WHO, m->name);
        return;
    }
    lm_h5_io_opts o = {.who = WHO, .src = s->path, .optimizer = true, .epoch = epoch + 1};
    char json[64];
    snprintf(json, sizeof json, "{\"epoch\": %d, \"batch\": 0}", epoch + 1);
    lm_status st = lm_mkdirs(m->ctx, s->dir, false);
    if (!st) st = lm_h5_save_weights_file(m, s->path, &o);
    if (!st) st = lm_write_file_atomic(m->ctx, WHO, s->meta, json, strlen(json));
    if (st) lm_cb_fail(cb, m, st, "%s", lm_ctx_error(m->ctx));
}

/* Keras's training_metadata.json: {"epoch": N, ...}; -1 when unreadable. */
static int metadata_epoch(lm_model *m, const char *path) {
    void *data;
    size_t len;
    if (lm_read_file_all(m->ctx, WHO, path, 1 << 20, &data, &len)) return -1;
    cJSON *j = cJSON_ParseWithLength(data, len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "epoch");
    int epoch = cJSON_IsNumber(e) && e->valuedouble >= 0 && e->valuedouble <= (1 << 30) &&
                        e->valuedouble == (int)e->valuedouble
                    ? (int)e->valuedouble
                    : -1;
    cJSON_Delete(j);
    free(data);
    return epoch;
}

static bool exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 || errno != ENOENT;
}

static int bar_resume(lm_callback *cb, lm_model *m) {
    bar_state *s = cb->state;
    cb->err = LM_OK;
    if (!exists(s->path)) return -1; /* nothing to resume */
    if (!lm_model_optimizer(m)) {
        lm_cb_fail(cb, m, LM_ERR_STATE, "%s: %s has no optimizer", WHO, m->name);
        return -1;
    }
    int64_t epoch = -1;
    lm_h5_io_opts o = {.who = WHO,
                       .src = s->path,
                       .optimizer = true,
                       .strict_optimizer = true,
                       .epoch_out = &epoch};
    lm_status st = lm_h5_load_weights_file(m, s->path, &o);
    if (st) {
        lm_cb_fail(cb, m, st, "%s", lm_ctx_error(m->ctx));
        return -1;
    }
    if (epoch < 0 && exists(s->meta)) {
        if ((epoch = metadata_epoch(m, s->meta)) < 0) {
            lm_cb_fail(cb, m, LM_ERR_IO, "%s: %s holds no valid epoch", WHO, s->meta);
            return -1;
        }
    }
    return epoch < 0 ? 0 : (int)epoch; /* Keras: weights without metadata start at 0 */
}

static void bar_train_end(lm_callback *cb, lm_model *m, const lm_logs *logs) {
    (void)m, (void)logs;
    bar_state *s = cb->state;
    unlink(s->path);
    unlink(s->meta);
    rmdir(s->dir); /* fails harmlessly when other files are there */
}

static void bar_destroy(lm_callback *cb) {
    bar_state *s = cb->state;
    free(s->dir);
    free(s->path);
    free(s->meta);
}

static const lm_callback_vt bar_vt = {.on_epoch_end = bar_epoch_end,
                                      .on_train_end = bar_train_end,
                                      .resume_epoch = bar_resume,
                                      .destroy = bar_destroy};

lm_callback *lm_backup_and_restore(const char *backup_dir) {
    if (!backup_dir || !*backup_dir) return NULL; /* Keras: "Empty `backup_dir` argument passed" */
    lm_callback *cb = lm_cb_alloc(&bar_vt, sizeof(bar_state));
    if (!cb) return NULL;
    bar_state *s = cb->state;
    size_t n = strlen(backup_dir) + sizeof METADATA_FILE + 1;
    s->dir = strdup(backup_dir);
    s->path = malloc(n);
    s->meta = malloc(n);
    if (!s->dir || !s->path || !s->meta) {
        lm_callback_free(cb);
        return NULL;
    }
    snprintf(s->path, n, "%s/%s", backup_dir, WEIGHTS_FILE);
    snprintf(s->meta, n, "%s/%s", backup_dir, METADATA_FILE);
    return cb;
}
