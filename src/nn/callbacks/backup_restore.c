/* BackupAndRestore (keras/src/callbacks/backup_and_restore.py): at every
 * epoch end the model's weights, the optimizer's state (iterations, learning
 * rate, slots) and the number of finished epochs go atomically into one file
 * of backup_dir; a fit with the same directory restores them once its
 * training graph and optimizer exist and continues with the next epoch. A
 * successful fit deletes the file and, if then empty, the directory (Keras
 * removes the whole tree; Lamina leaves files it did not write). */
#include "nn/callbacks/cb_impl.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BACKUP_FILE "latest.lmw"
#define MAX_EXTRA   (LM_OPT_MAX_SLOTS + 4)

typedef struct bar_state {
    char *dir, *path;
} bar_state;

static const char *WHO = "BackupAndRestore";

static void bar_epoch_end(lm_callback *cb, lm_model *m, int epoch, lm_logs *logs) {
    (void)logs;
    bar_state *s = cb->state;
    lm_optimizer *opt = lm_model_optimizer(m);
    if (!opt) {
        lm_cb_fail(cb, m, LM_ERR_STATE, "%s: %s has no optimizer", WHO, m->name);
        return;
    }
    int nw = lm_model_weight_names(m, NULL, NULL, 0), cap = nw + MAX_EXTRA;
    lm_wrec *recs = malloc((size_t)cap * sizeof *recs);
    char(*names)[LM_WNAME] = malloc((size_t)cap * sizeof *names);
    lm_tensor **tmp = calloc((size_t)cap, sizeof *tmp);
    lm_status st = LM_OK;
    int n = -1;
    if (recs && names && tmp) n = lm_wfile_model_records(m, recs, names, 0, cap, tmp);
    if (n < 0) {
        st = lm_cb_fail(cb, m, LM_ERR_OOM, "%s: out of memory", WHO);
        goto done;
    }
    int64_t finished = epoch + 1, iters = opt->iterations, kind = opt->kind;
    double lr = opt->lr;
    recs[n++] = (lm_wrec){"training/epoch", LM_I64, LM_SCALAR, &finished};
    recs[n++] = (lm_wrec){"optimizer/kind", LM_I64, LM_SCALAR, &kind};
    recs[n++] = (lm_wrec){"optimizer/iterations", LM_I64, LM_SCALAR, &iters};
    /* A schedule is a function of iterations: only a constant rate is state. */
    if (!opt->schedule) recs[n++] = (lm_wrec){"optimizer/learning_rate", LM_F64, LM_SCALAR, &lr};
    for (int k = 0; k < opt->n_slots; k++) {
        snprintf(names[n], LM_WNAME, "optimizer/%s", opt->slot_name[k]);
        recs[n] = (lm_wrec){names[n], LM_F32, LM_SHAPE(opt->n_params), opt->slot[k]};
        n++;
    }
    if (!(st = lm_mkdirs(m->ctx, s->dir, false)))
        st = lm_wfile_write(m->ctx, WHO, s->path, LM_WFILE_BACKUP, n, recs);
    if (st) lm_cb_fail(cb, m, st, "%s", lm_ctx_error(m->ctx));
done:
    for (int i = 0; tmp && i < cap; i++) lm_tensor_free(tmp[i]);
    free(tmp);
    free(names);
    free(recs);
}

static const lm_wrec *want(lm_callback *cb, lm_model *m, const lm_wfile *f, const char *path,
                           const char *name, lm_dtype dt, int64_t numel) {
    const lm_wrec *r = lm_wfile_find(f, name);
    if (!r)
        lm_cb_fail(cb, m, LM_ERR_IO, "%s: %s lacks %s", WHO, path, name);
    else if (r->dt != dt || lm_shape_numel(r->shape) != numel) {
        lm_cb_fail(cb, m, LM_ERR_SHAPE,
                   "%s: %s holds %s as %lld %s values; this model and optimizer need %lld %s", WHO,
                   path, name, (long long)lm_shape_numel(r->shape), lm_dtype_name(r->dt),
                   (long long)numel, lm_dtype_name(dt));
        r = NULL;
    }
    return r;
}

static int64_t get_i64(const lm_wrec *r) {
    int64_t v;
    memcpy(&v, r->data, sizeof v);
    return v;
}

static int bar_resume(lm_callback *cb, lm_model *m) {
    bar_state *s = cb->state;
    cb->err = LM_OK;
    struct stat sb;
    if (stat(s->path, &sb) && errno == ENOENT) return -1; /* nothing to resume */
    lm_optimizer *opt = lm_model_optimizer(m);
    if (!opt) {
        lm_cb_fail(cb, m, LM_ERR_STATE, "%s: %s has no optimizer", WHO, m->name);
        return -1;
    }
    lm_wfile f;
    if (lm_wfile_read(m->ctx, WHO, s->path, LM_WFILE_BACKUP, &f)) {
        lm_cb_fail(cb, m, LM_ERR_IO, "%s", lm_ctx_error(m->ctx));
        return -1;
    }
    int epoch = -1;
    /* Check the optimizer records before the weights are overwritten. */
    const lm_wrec *re = want(cb, m, &f, s->path, "training/epoch", LM_I64, 1);
    const lm_wrec *rk = re ? want(cb, m, &f, s->path, "optimizer/kind", LM_I64, 1) : NULL;
    const lm_wrec *ri = rk ? want(cb, m, &f, s->path, "optimizer/iterations", LM_I64, 1) : NULL;
    const lm_wrec *rl = lm_wfile_find(&f, "optimizer/learning_rate");
    const lm_wrec *slots[LM_OPT_MAX_SLOTS] = {NULL};
    bool ok = ri != NULL;
    if (ok && get_i64(rk) != (int64_t)opt->kind) {
        lm_cb_fail(cb, m, LM_ERR_STATE, "%s: %s was written with another optimizer than %s's %s",
                   WHO, s->path, m->name, lm_optimizer_name(opt));
        ok = false;
    }
    if (ok && (get_i64(re) < 0 || get_i64(ri) < 0 || get_i64(re) > (int64_t)1 << 30)) {
        lm_cb_fail(cb, m, LM_ERR_IO, "%s: %s holds an invalid epoch or iteration count", WHO,
                   s->path);
        ok = false;
    }
    if (ok && rl && (rl->dt != LM_F64 || lm_shape_numel(rl->shape) != 1)) {
        lm_cb_fail(cb, m, LM_ERR_IO, "%s: %s holds an invalid learning rate", WHO, s->path);
        ok = false;
    }
    for (int k = 0; ok && k < opt->n_slots; k++) {
        char nm[LM_WNAME];
        snprintf(nm, sizeof nm, "optimizer/%s", opt->slot_name[k]);
        ok = (slots[k] = want(cb, m, &f, s->path, nm, LM_F32, opt->n_params)) != NULL;
    }
    if (ok && lm_wfile_load_model(m, WHO, s->path, &f, 0)) {
        lm_cb_fail(cb, m, LM_ERR_SHAPE, "%s", lm_ctx_error(m->ctx));
        ok = false;
    }
    if (ok) {
        for (int k = 0; k < opt->n_slots; k++)
            memcpy(opt->slot[k], slots[k]->data, (size_t)opt->n_params * sizeof(float));
        opt->iterations = get_i64(ri);
        if (rl) {
            double lr;
            memcpy(&lr, rl->data, sizeof lr);
            lm_optimizer_set_learning_rate(opt, lr);
        }
        epoch = (int)get_i64(re);
    }
    lm_wfile_free(&f);
    return epoch;
}

static void bar_train_end(lm_callback *cb, lm_model *m, const lm_logs *logs) {
    (void)m, (void)logs;
    bar_state *s = cb->state;
    unlink(s->path);
    rmdir(s->dir); /* fails harmlessly when other files are there */
}

static void bar_destroy(lm_callback *cb) {
    bar_state *s = cb->state;
    free(s->dir);
    free(s->path);
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
    size_t n = strlen(backup_dir) + sizeof BACKUP_FILE + 1;
    s->dir = strdup(backup_dir);
    s->path = malloc(n);
    if (!s->dir || !s->path) {
        lm_callback_free(cb);
        return NULL;
    }
    snprintf(s->path, n, "%s/%s", backup_dir, BACKUP_FILE);
    return cb;
}
