/* fit, evaluate, predict and the on-batch calls. Batches are gathered into
 * staging tensors allocated once per call; a run of the training session
 * writes the loss, outputs and gradients (straight into the flat gradient
 * vector), the optimizer updates the flat parameters, and metric states,
 * callbacks and the progress bar see the running logs. */
#include "core/tensor_impl.h"
#include "nn/progbar.h"
#include "nn/train.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct dataset {
    int n_x, n_y;
    lm_tensor *x[LM_MAX_IO], *y[LM_MAX_IO]; /* converted (owned when own_*) */
    bool own_x[LM_MAX_IO], own_y[LM_MAX_IO];
    float *sw;      /* per-sample weights (class and sample weights), or NULL */
    int64_t n;      /* samples */
    int64_t *index; /* rows in use (a shuffled order or a split) */
} dataset;

typedef struct staging {
    int n_x, n_y;
    lm_tensor *x[LM_MAX_IO], *y[LM_MAX_IO], *sw; /* copy buffers (batch rows) */
    lm_tensor *dx[LM_MAX_IO], *dy[LM_MAX_IO];    /* views into the data itself */
    bool direct; /* this batch is fed from dx/dy (consecutive rows): no copy */
    int64_t batch;
} staging;

static void dataset_free(dataset *d) {
    for (int i = 0; i < d->n_x; i++)
        if (d->own_x[i]) lm_tensor_free(d->x[i]);
    for (int i = 0; i < d->n_y; i++)
        if (d->own_y[i]) lm_tensor_free(d->y[i]);
    free(d->sw);
    free(d->index);
    memset(d, 0, sizeof *d);
}

static void staging_free(staging *s) {
    for (int i = 0; i < s->n_x; i++) lm_tensor_free(s->x[i]);
    for (int i = 0; i < s->n_y; i++) lm_tensor_free(s->y[i]);
    for (int i = 0; i < LM_MAX_IO; i++) {
        lm_tensor_free(s->dx[i]);
        lm_tensor_free(s->dy[i]);
    }
    lm_tensor_free(s->sw);
    memset(s, 0, sizeof *s);
}

/* A contiguous tensor of dtype dt with t's contents (t itself when it fits). */
static lm_tensor *as_dtype(lm_tensor *t, lm_dtype dt, bool *own) {
    if (lm_tensor_dtype(t) == dt && lm_tensor_is_contiguous(t)) {
        *own = false;
        return t;
    }
    *own = true;
    return lm_tensor_cast(t, dt);
}

static lm_status check_inputs(lm_model *m, const char *fn, int n_x, lm_tensor *const *x) {
    if (n_x != m->n_inputs)
        return lm_fail(m->ctx, LM_ERR_ARG, "%s: %s has %d inputs, %d arrays given", fn, m->name,
                       m->n_inputs, n_x);
    for (int i = 0; i < n_x; i++) {
        if (!x[i]) return lm_fail(m->ctx, LM_ERR_ARG, "%s: input array %d is NULL", fn, i);
        lm_shape want = m->inputs[i]->shape, got = lm_tensor_shape(x[i]);
        bool ok = want.ndim == got.ndim;
        for (int d = 1; ok && d < want.ndim; d++)
            ok = want.dims[d] < 0 || want.dims[d] == got.dims[d];
        if (!ok) {
            char a[96], b[96];
            return lm_fail(m->ctx, LM_ERR_SHAPE,
                           "%s: input %s of %s expects data of shape %s, got %s", fn,
                           m->inputs[i]->name, m->name, lm_shape_str(want, a, sizeof a),
                           lm_shape_str(got, b, sizeof b));
        }
    }
    return LM_OK;
}

/* Validates and converts the arrays; y and sample weights are optional. */
static lm_status dataset_init(lm_model *m, const char *fn, dataset *d, int n_x, lm_tensor *const *x,
                              int n_y, lm_tensor *const *y, lm_tensor *sample_weight,
                              const double *class_weight, int n_class_weight) {
    memset(d, 0, sizeof *d);
    if (n_x < 1 || !x || !x[0]) return lm_fail(m->ctx, LM_ERR_ARG, "%s: x is NULL", fn);
    lm_shape xs[LM_MAX_IO];
    for (int i = 0; i < n_x && i < LM_MAX_IO; i++) {
        if (!x[i]) return lm_fail(m->ctx, LM_ERR_ARG, "%s: input array %d is NULL", fn, i);
        xs[i] = lm_tensor_shape(x[i]);
        if (xs[i].ndim < 1)
            return lm_fail(m->ctx, LM_ERR_SHAPE, "%s: input data needs a sample axis", fn);
    }
    lm_status st = lm_model_ensure_built(m, n_x, xs);
    if (st) return st;
    if ((st = check_inputs(m, fn, n_x, x))) return st;
    d->n = lm_tensor_dim(x[0], 0);
    if (d->n == 0) return lm_fail(m->ctx, LM_ERR_ARG, "%s: the dataset is empty (0 samples)", fn);
    for (int i = 1; i < n_x; i++)
        if (lm_tensor_dim(x[i], 0) != d->n)
            return lm_fail(m->ctx, LM_ERR_SHAPE, "%s: input arrays have %lld and %lld samples", fn,
                           (long long)d->n, (long long)lm_tensor_dim(x[i], 0));
    for (int i = 0; i < n_y; i++) {
        if (!y || !y[i]) return lm_fail(m->ctx, LM_ERR_ARG, "%s: label array %d is NULL", fn, i);
        if (lm_tensor_ndim(y[i]) < 1 || lm_tensor_dim(y[i], 0) != d->n)
            return lm_fail(m->ctx, LM_ERR_SHAPE, "%s: x has %lld samples but y has %lld", fn,
                           (long long)d->n, (long long)lm_tensor_dim(y[i], 0));
    }
    d->n_x = n_x;
    d->n_y = n_y;
    for (int i = 0; i < n_x; i++)
        if (!(d->x[i] = as_dtype(x[i], m->inputs[i]->node->dt, &d->own_x[i]))) goto oom;
    for (int i = 0; i < n_y; i++)
        if (!(d->y[i] = as_dtype(y[i], m->train->y_dt[i], &d->own_y[i]))) goto oom;
    if (sample_weight || class_weight) {
        if (sample_weight && (lm_tensor_numel(sample_weight) != d->n))
            return lm_fail(m->ctx, LM_ERR_SHAPE,
                           "%s: sample_weight has %lld values for %lld samples", fn,
                           (long long)lm_tensor_numel(sample_weight), (long long)d->n);
        if (!(d->sw = malloc((size_t)d->n * sizeof *d->sw))) goto oom;
        for (int64_t i = 0; i < d->n; i++)
            d->sw[i] = sample_weight ? (float)lm_tensor_get(sample_weight, i) : 1.0f;
        if (class_weight && n_y > 0) {
            /* The class of a sample: its integer label, or the argmax of a one-hot row. */
            lm_tensor *yt = y[0];
            int64_t per = lm_tensor_numel(yt) / d->n;
            for (int64_t i = 0; i < d->n; i++) {
                int64_t cls = 0;
                if (per == 1)
                    cls = (int64_t)llround(lm_tensor_get(yt, i));
                else
                    for (int64_t k = 1; k < per; k++)
                        if (lm_tensor_get(yt, i * per + k) > lm_tensor_get(yt, i * per + cls))
                            cls = k;
                if (cls < 0 || cls >= n_class_weight)
                    return lm_fail(m->ctx, LM_ERR_ARG, "%s: class %lld has no class_weight entry",
                                   fn, (long long)cls);
                d->sw[i] *= (float)class_weight[cls];
            }
        }
    }
    if (!(d->index = malloc((size_t)d->n * sizeof *d->index))) goto oom;
    for (int64_t i = 0; i < d->n; i++) d->index[i] = i;
    return LM_OK;
oom:
    return lm_fail(m->ctx, LM_ERR_OOM, "%s: out of memory converting the data", fn);
}

static lm_status staging_init(lm_model *m, staging *s, const dataset *d, int64_t batch) {
    memset(s, 0, sizeof *s);
    s->batch = batch;
    for (int i = 0; i < d->n_x; i++) {
        lm_shape sh = lm_tensor_shape(d->x[i]);
        sh.dims[0] = batch;
        if (!(s->x[i] = lm_tensor_new(m->ctx, lm_tensor_dtype(d->x[i]), sh))) goto oom;
        if (!(s->dx[i] =
                  lm_tensor_wrap(m->ctx, lm_tensor_dtype(d->x[i]), sh, lm_tensor_data(d->x[i]))))
            goto oom;
        s->n_x++;
    }
    for (int i = 0; i < d->n_y; i++) {
        lm_shape sh = lm_tensor_shape(d->y[i]);
        sh.dims[0] = batch;
        if (!(s->y[i] = lm_tensor_new(m->ctx, lm_tensor_dtype(d->y[i]), sh))) goto oom;
        if (!(s->dy[i] =
                  lm_tensor_wrap(m->ctx, lm_tensor_dtype(d->y[i]), sh, lm_tensor_data(d->y[i]))))
            goto oom;
        s->n_y++;
    }
    if (!(s->sw = lm_tensor_new(m->ctx, LM_F32, LM_SHAPE(batch)))) goto oom;
    return LM_OK;
oom:
    staging_free(s);
    return lm_fail(m->ctx, LM_ERR_OOM, "out of memory for batch buffers");
}

/* Bytes of one sample of a data array. */
static size_t row_bytes(lm_tensor *t) {
    int64_t rows = lm_tensor_dim(t, 0);
    return (size_t)(rows ? lm_tensor_numel(t) / rows : 0) * lm_dtype_size(lm_tensor_dtype(t));
}

/* Makes rows index[start .. start+n) the current batch: consecutive rows (no
 * shuffling) are viewed in place, others are copied into the buffers. */
static void gather(const dataset *d, staging *s, int64_t start, int64_t n) {
    const int64_t *ix = d->index + start;
    bool direct = n > 0;
    for (int64_t r = 1; r < n && direct; r++) direct = ix[r] == ix[0] + r;
    s->direct = direct;
    for (int i = 0; i < d->n_x + d->n_y; i++) {
        lm_tensor *src = i < d->n_x ? d->x[i] : d->y[i - d->n_x];
        size_t row = row_bytes(src);
        const char *sp = lm_tensor_cdata(src);
        if (direct) {
            lm_tensor *v = i < d->n_x ? s->dx[i] : s->dy[i - d->n_x];
            lm_shape sh = lm_tensor_shape(src);
            sh.dims[0] = n;
            lm_tensor_rebind(v, (char *)sp + (size_t)ix[0] * row, lm_tensor_dtype(src), sh.ndim,
                             sh.dims);
            continue;
        }
        char *dp = lm_tensor_data(i < d->n_x ? s->x[i] : s->y[i - d->n_x]);
        for (int64_t r = 0; r < n; r++) memcpy(dp + r * row, sp + ix[r] * row, row);
    }
    float *w = lm_tensor_f32(s->sw);
    for (int64_t r = 0; r < n; r++) w[r] = d->sw ? d->sw[ix[r]] : 1.0f;
}

/* The current batch's tensor for input i (labels follow the inputs). */
static lm_tensor *current(staging *s, int i) {
    if (i < s->n_x) return s->direct ? s->dx[i] : s->x[i];
    return s->direct ? s->dy[i - s->n_x] : s->y[i - s->n_x];
}

/* Feeds the current batch (n rows) to a session. */
static lm_status feed(lm_model *m, lm_session *sess, staging *s, int64_t n, lm_tensor **views,
                      bool labels) {
    lm_train *t = m->train;
    lm_status st = LM_OK;
    for (int i = 0; i < s->n_x + (labels ? s->n_y + 1 : 0) && !st; i++) {
        bool sw = i == s->n_x + s->n_y;
        lm_tensor *full = sw ? s->sw : current(s, i);
        lm_node *ph = i < s->n_x ? m->inputs[i]->node : !sw ? t->y_ph[i - s->n_x] : t->sw_ph;
        lm_tensor *v = full;
        /* Copied short batches use views of the buffers' first n rows. */
        if (n != lm_tensor_dim(full, 0)) {
            if (!views[i]) views[i] = lm_tensor_slice(full, 0, 0, n, 1);
            v = views[i];
        }
        if (!v) return lm_fail(m->ctx, LM_ERR_OOM, "out of memory");
        st = lm_session_feed(sess, ph, v);
    }
    return st ? lm_fail(m->ctx, st, "%s", lm_ctx_error(m->ctx)) : LM_OK;
}

static void free_views(lm_tensor **views, int n) {
    for (int i = 0; i < n; i++) {
        lm_tensor_free(views[i]);
        views[i] = NULL;
    }
}

static void metrics_reset(lm_train *t, int n_out) {
    for (int o = 0; o < n_out; o++)
        for (int k = 0; k < t->n_metrics[o]; k++) lm_metric_state_reset(t->ms[o][k]);
}

static void metrics_update(lm_model *m, lm_session *sess, staging *s, int64_t n) {
    lm_train *t = m->train;
    for (int o = 0; o < m->n_outputs; o++) {
        const float *pred = lm_tensor_f32(lm_session_output(sess, 1 + o));
        for (int k = 0; k < t->n_metrics[o]; k++)
            lm_metric_state_update(t->ms[o][k], pred, lm_tensor_cdata(current(s, s->n_x + o)), n,
                                   NULL);
    }
}

/* logs <- prefix + "loss" and every metric. */
static void metrics_logs(lm_model *m, lm_logs *logs, const char *prefix, double loss) {
    lm_train *t = m->train;
    char key[64];
    snprintf(key, sizeof key, "%sloss", prefix);
    lm_logs_set(logs, key, loss);
    int idx = 1;
    for (int o = 0; o < m->n_outputs; o++)
        for (int k = 0; k < t->n_metrics[o]; k++, idx++) {
            snprintf(key, sizeof key, "%s%s", prefix, t->metric_names[idx]);
            lm_logs_set(logs, key, lm_metric_state_result(t->ms[o][k]));
        }
}

#define FOR_CALLBACKS(cbs, hook, ...)                                                              \
    do {                                                                                           \
        for (int ci_ = 0; (cbs) && (cbs)[ci_]; ci_++)                                              \
            if ((cbs)[ci_]->vt->hook) (cbs)[ci_]->vt->hook((cbs)[ci_], __VA_ARGS__);               \
    } while (0)

/* Loss and metrics over a dataset with the evaluation session. */
static lm_status eval_loop(lm_model *m, dataset *d, int64_t batch, int verbose,
                           lm_callback *const *cbs, double *loss_out) {
    lm_train *t = m->train;
    staging s;
    lm_status st = staging_init(m, &s, d, batch);
    if (st) return st;
    lm_tensor *views[2 * LM_MAX_IO + 1] = {NULL};
    int64_t steps = (d->n + batch - 1) / batch;
    lm_progbar *pb = verbose > 0 ? lm_progbar_new(stdout, steps, verbose) : NULL;
    lm_logs logs;
    lm_logs_clear(&logs);
    FOR_CALLBACKS(cbs, on_test_begin, m, &logs);
    metrics_reset(t, m->n_outputs);
    double sum = 0;
    int64_t seen = 0;
    for (int64_t b = 0; b < steps && !st; b++) {
        int64_t n = lm_min64(batch, d->n - b * batch);
        gather(d, &s, b * batch, n);
        if ((st = feed(m, t->s_eval, &s, n, views, true))) break;
        if ((st = lm_session_run(t->s_eval))) {
            st = lm_fail(m->ctx, st, "%s", lm_ctx_error(m->ctx));
            break;
        }
        sum += lm_tensor_get(lm_session_output(t->s_eval, 0), 0) * (double)n;
        seen += n;
        metrics_update(m, t->s_eval, &s, n);
        if (pb) {
            lm_logs_clear(&logs);
            metrics_logs(m, &logs, "", sum / (double)seen);
            lm_progbar_update(pb, b + 1, &logs, b + 1 == steps);
        }
    }
    *loss_out = seen ? sum / (double)seen : NAN;
    lm_logs_clear(&logs);
    metrics_logs(m, &logs, "", *loss_out);
    FOR_CALLBACKS(cbs, on_test_end, m, &logs);
    lm_progbar_free(pb);
    free_views(views, 2 * LM_MAX_IO + 1);
    staging_free(&s);
    return st;
}

/* Runs the training session on the fed batch and applies the optimizer. */
static lm_status train_step(lm_model *m) {
    lm_train *t = m->train;
    lm_status st = lm_session_run(t->s_train);
    if (st) return lm_fail(m->ctx, st, "%s", lm_ctx_error(m->ctx));
    unsigned fp = lm_fp_enter(m->ctx);
    st = lm_optimizer_step(t->opt, t->flat_p, t->flat_g, lm_ctx_threads(m->ctx));
    lm_fp_leave(fp);
    if (st) return lm_fail(m->ctx, st, "%s", lm_ctx_error(m->ctx));
    return LM_OK;
}

static void shuffle(int64_t *idx, int64_t n, uint64_t seed) {
    lm_rng r;
    lm_rng_seed(&r, seed);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(lm_rng_next(&r) % (uint64_t)(i + 1));
        int64_t tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
    }
}

lm_history *lm_fit_multi(lm_model *m, int n_x, lm_tensor *const *x, int n_y, lm_tensor *const *y,
                         lm_fit_opts o) {
    if (!m) return NULL;
    if (m->err) return NULL;
    if (!m->train || !m->train->compiled) {
        lm_fail(m->ctx, LM_ERR_STATE, "fit: %s must be compiled first (call lm_compile)", m->name);
        return NULL;
    }
    int epochs = o.epochs > 0 ? o.epochs : 1;
    int64_t batch = o.batch_size > 0 ? o.batch_size : 32;
    int verbose = o.verbose == 0 ? 1 : o.verbose < 0 ? 0 : o.verbose;
    if (o.validation_split < 0 || o.validation_split >= 1) {
        lm_fail(m->ctx, LM_ERR_ARG, "fit: validation_split %g is outside [0, 1)",
                o.validation_split);
        return NULL;
    }
    if (x && x[0] && lm_tensor_ndim(x[0]) >= 1) {
        lm_shape xs[LM_MAX_IO];
        for (int i = 0; i < n_x && i < LM_MAX_IO; i++)
            if (x[i]) xs[i] = lm_tensor_shape(x[i]);
        if (lm_model_ensure_built(m, n_x, xs)) return NULL;
    }
    if (!y || n_y < 1 || !y[0]) {
        lm_fail(m->ctx, LM_ERR_ARG, "fit: y is NULL");
        return NULL;
    }
    if (lm_train_prepare(m, n_y, (const lm_tensor *const *)y)) return NULL;
    lm_train *t = m->train;
    dataset all, val;
    memset(&val, 0, sizeof val);
    if (dataset_init(m, "fit", &all, n_x, x, n_y, y, o.sample_weight, o.class_weight,
                     o.n_class_weight))
        goto fail_data;
    /* validation_split takes the last fraction, before any shuffling (Keras). */
    int64_t n_train = all.n;
    bool has_val = false;
    if (o.validation_x && o.validation_y) {
        lm_tensor *vx[1] = {o.validation_x}, *vy[1] = {o.validation_y};
        if (dataset_init(m, "fit validation_data", &val, 1, vx, 1, vy, NULL, NULL, 0))
            goto fail_data;
        has_val = true;
    } else if (o.validation_split > 0) {
        n_train = (int64_t)floor((double)all.n * (1.0 - o.validation_split));
        if (n_train < 1 || n_train >= all.n) {
            lm_fail(m->ctx, LM_ERR_ARG, "fit: validation_split %g leaves %lld training samples",
                    o.validation_split, (long long)n_train);
            goto fail_data;
        }
        val = all; /* shares the arrays of `all` */
        for (int i = 0; i < LM_MAX_IO; i++) val.own_x[i] = val.own_y[i] = false;
        val.sw = NULL;
        val.n = all.n - n_train;
        val.index = malloc((size_t)val.n * sizeof *val.index);
        if (!val.index) {
            lm_fail(m->ctx, LM_ERR_OOM, "out of memory");
            goto fail_data;
        }
        for (int64_t i = 0; i < val.n; i++) val.index[i] = n_train + i;
        has_val = true;
    }
    all.n = n_train;

    staging s;
    if (staging_init(m, &s, &all, batch)) goto fail_data;
    lm_history *h = lm_history_new();
    if (!h) {
        lm_fail(m->ctx, LM_ERR_OOM, "out of memory");
        staging_free(&s);
        goto fail_data;
    }
    lm_tensor *views[2 * LM_MAX_IO + 1] = {NULL};
    int64_t steps = (all.n + batch - 1) / batch;
    uint64_t shuffle_seed = lm_rng_next(&m->ctx->rng);
    lm_callback *const *cbs = o.callbacks;
    lm_logs logs;
    lm_logs_clear(&logs);
    m->stop_training = false;
    int first = o.initial_epoch;
    for (int ci = 0; cbs && cbs[ci]; ci++)
        if (cbs[ci]->vt->resume_epoch) {
            int e = cbs[ci]->vt->resume_epoch(cbs[ci], m);
            if (e > first) first = e;
        }
    /* Per-step randomness (dropout) continues where a resumed run left off. */
    lm_session_set_steps(t->s_train, (uint64_t)first * (uint64_t)steps);
    FOR_CALLBACKS(cbs, on_train_begin, m, &logs);
    lm_status st = LM_OK;
    /* A callback that cannot start (invalid options, an unreadable backup
     * or CSV file) fails the fit before any training, as Keras raises. */
    for (int ci = 0; cbs && cbs[ci] && !st; ci++)
        if (cbs[ci]->err) st = lm_fail(m->ctx, cbs[ci]->err, "%s", lm_ctx_error(m->ctx));
    for (int e = first; e < epochs && !st && !m->stop_training; e++) {
        lm_logs_clear(&logs);
        FOR_CALLBACKS(cbs, on_epoch_begin, m, e, &logs);
        if (verbose && epochs > 1) printf("Epoch %d/%d\n", e + 1, epochs);
        fflush(stdout);
        for (int64_t i = 0; i < all.n; i++) all.index[i] = i;
        if (o.shuffle != LM_FALSE) shuffle(all.index, all.n, lm_hash64(shuffle_seed, (uint64_t)e));
        lm_progbar *pb = verbose ? lm_progbar_new(stdout, steps, verbose) : NULL;
        metrics_reset(t, m->n_outputs);
        double sum = 0;
        int64_t seen = 0;
        for (int64_t b = 0; b < steps && !st; b++) {
            int64_t n = lm_min64(batch, all.n - b * batch);
            lm_logs_clear(&logs);
            FOR_CALLBACKS(cbs, on_train_batch_begin, m, (int)b, &logs);
            gather(&all, &s, b * batch, n);
            if ((st = feed(m, t->s_train, &s, n, views, true)) || (st = train_step(m))) break;
            sum += lm_tensor_get(lm_session_output(t->s_train, 0), 0) * (double)n;
            seen += n;
            metrics_update(m, t->s_train, &s, n);
            lm_logs_clear(&logs);
            metrics_logs(m, &logs, "", sum / (double)seen);
            FOR_CALLBACKS(cbs, on_train_batch_end, m, (int)b, &logs);
            if (pb) lm_progbar_update(pb, b + 1, &logs, false);
            if (m->stop_training) break;
        }
        free_views(views, 2 * LM_MAX_IO + 1);
        if (!st) {
            lm_logs_clear(&logs);
            metrics_logs(m, &logs, "", seen ? sum / (double)seen : NAN);
            if (has_val) {
                lm_logs train_logs = logs;
                double vloss;
                st = eval_loop(m, &val, batch, 0, cbs, &vloss);
                logs = train_logs;
                metrics_logs(m, &logs, "val_", vloss);
            }
        }
        /* Keras's order: callbacks see the epoch's logs first and may add to
         * them ("learning_rate"); History and the progress bar's final line
         * come after them, so their messages print between bar and line. */
        if (!st) {
            FOR_CALLBACKS(cbs, on_epoch_end, m, e, &logs);
            if (lm_history_append(h, e, &logs)) st = lm_fail(m->ctx, LM_ERR_OOM, "out of memory");
            if (pb) lm_progbar_update(pb, steps, &logs, true);
        }
        lm_progbar_free(pb);
        for (int ci = 0; cbs && cbs[ci] && !st; ci++)
            if (cbs[ci]->err) st = lm_fail(m->ctx, cbs[ci]->err, "%s", lm_ctx_error(m->ctx));
    }
    if (!st) FOR_CALLBACKS(cbs, on_train_end, m, &logs);
    staging_free(&s);
    dataset_free(&val); /* a split shares the arrays of `all` and owns only its index */
    dataset_free(&all);
    if (st) {
        lm_history_free(h);
        return NULL;
    }
    return h;
fail_data:
    dataset_free(&val);
    dataset_free(&all);
    return NULL;
}

lm_history *lm_fit_(lm_model *m, lm_tensor *x, lm_tensor *y, lm_fit_opts o) {
    return lm_fit_multi(m, 1, &x, 1, &y, o);
}

int lm_evaluate_multi(lm_model *m, int n_x, lm_tensor *const *x, int n_y, lm_tensor *const *y,
                      double *out, int max, lm_eval_opts o) {
    if (!m || m->err) return -1;
    if (!m->train || !m->train->compiled) {
        lm_fail(m->ctx, LM_ERR_STATE, "evaluate: %s must be compiled first", m->name);
        return -1;
    }
    if (x && x[0] && lm_tensor_ndim(x[0]) >= 1) {
        lm_shape xs[LM_MAX_IO];
        for (int i = 0; i < n_x && i < LM_MAX_IO; i++)
            if (x[i]) xs[i] = lm_tensor_shape(x[i]);
        if (lm_model_ensure_built(m, n_x, xs)) return -1;
    }
    if (!y || n_y < 1 || !y[0]) {
        lm_fail(m->ctx, LM_ERR_ARG, "evaluate: y is NULL");
        return -1;
    }
    if (lm_train_prepare(m, n_y, (const lm_tensor *const *)y)) return -1;
    dataset d;
    if (dataset_init(m, "evaluate", &d, n_x, x, n_y, y, o.sample_weight, NULL, 0)) {
        dataset_free(&d);
        return -1;
    }
    double loss;
    int verbose = o.verbose == 0 ? 1 : o.verbose < 0 ? 0 : o.verbose;
    lm_status st =
        eval_loop(m, &d, o.batch_size > 0 ? o.batch_size : 32, verbose, o.callbacks, &loss);
    dataset_free(&d);
    if (st) return -1;
    lm_logs logs;
    lm_logs_clear(&logs);
    metrics_logs(m, &logs, "", loss);
    for (int i = 0; i < logs.n && i < max && out; i++) out[i] = logs.val[i];
    return logs.n;
}

int lm_evaluate_(lm_model *m, lm_tensor *x, lm_tensor *y, double *out, int max, lm_eval_opts o) {
    return lm_evaluate_multi(m, 1, &x, 1, &y, out, max, o);
}

int lm_predict_multi(lm_model *m, int n_x, lm_tensor *const *x, int max_out, lm_tensor **out,
                     lm_predict_opts o) {
    if (!m || m->err) return -1;
    dataset d;
    if (dataset_init(m, "predict", &d, n_x, x, 0, NULL, NULL, NULL, 0)) {
        dataset_free(&d);
        return -1;
    }
    lm_session *sess = lm_train_predict_session(m);
    int64_t batch = o.batch_size > 0 ? o.batch_size : 32;
    staging s;
    if (!sess || staging_init(m, &s, &d, batch)) {
        dataset_free(&d);
        return -1;
    }
    lm_tensor *res[LM_MAX_IO] = {NULL};
    lm_status st = LM_OK;
    for (int i = 0; i < m->n_outputs && !st; i++) {
        lm_shape sh = m->outputs[i]->shape;
        sh.dims[0] = d.n;
        if (!(res[i] = lm_tensor_new(m->ctx, LM_F32, sh)))
            st = lm_fail(m->ctx, LM_ERR_OOM, "predict: out of memory for the outputs");
    }
    lm_tensor *views[2 * LM_MAX_IO + 1] = {NULL};
    int64_t steps = (d.n + batch - 1) / batch;
    int verbose = o.verbose == 0 ? 1 : o.verbose < 0 ? 0 : o.verbose;
    lm_progbar *pb = verbose ? lm_progbar_new(stdout, steps, verbose) : NULL;
    lm_logs logs;
    lm_logs_clear(&logs);
    FOR_CALLBACKS(o.callbacks, on_predict_begin, m, &logs);
    for (int64_t b = 0; b < steps && !st; b++) {
        int64_t n = lm_min64(batch, d.n - b * batch);
        gather(&d, &s, b * batch, n);
        if ((st = feed(m, sess, &s, n, views, false))) break;
        if ((st = lm_session_run(sess))) {
            st = lm_fail(m->ctx, st, "%s", lm_ctx_error(m->ctx));
            break;
        }
        for (int i = 0; i < m->n_outputs; i++) {
            lm_tensor *po = lm_session_output(sess, i);
            size_t bytes = (size_t)lm_tensor_numel(po) * sizeof(float);
            size_t row = bytes / (size_t)n;
            memcpy((char *)lm_tensor_data(res[i]) + (size_t)(b * batch) * row, lm_tensor_data(po),
                   bytes);
        }
        if (pb) lm_progbar_update(pb, b + 1, &logs, b + 1 == steps);
    }
    FOR_CALLBACKS(o.callbacks, on_predict_end, m, &logs);
    lm_progbar_free(pb);
    free_views(views, 2 * LM_MAX_IO + 1);
    staging_free(&s);
    dataset_free(&d);
    if (st) {
        for (int i = 0; i < m->n_outputs; i++) lm_tensor_free(res[i]);
        return -1;
    }
    for (int i = 0; i < m->n_outputs; i++) {
        if (i < max_out && out)
            out[i] = res[i];
        else
            lm_tensor_free(res[i]);
    }
    return m->n_outputs;
}

lm_tensor *lm_predict_(lm_model *m, lm_tensor *x, lm_predict_opts o) {
    lm_tensor *out = NULL;
    return lm_predict_multi(m, 1, &x, 1, &out, o) > 0 ? out : NULL;
}

/* One batch through the training or evaluation session. */
static int on_batch(lm_model *m, lm_tensor *x, lm_tensor *y, lm_tensor *sw, double *out, int max,
                    bool train) {
    if (!m || m->err) return -1;
    if (!m->train || !m->train->compiled) {
        lm_fail(m->ctx, LM_ERR_STATE, "%s_on_batch: %s must be compiled first",
                train ? "train" : "test", m->name);
        return -1;
    }
    if (x && lm_tensor_ndim(x) >= 1) {
        lm_shape xs = lm_tensor_shape(x);
        if (lm_model_ensure_built(m, 1, &xs)) return -1;
    }
    if (!y) {
        lm_fail(m->ctx, LM_ERR_ARG, "on_batch: y is NULL");
        return -1;
    }
    if (lm_train_prepare(m, 1, (const lm_tensor *const *)&y)) return -1;
    dataset d;
    if (dataset_init(m, train ? "train_on_batch" : "test_on_batch", &d, 1, &x, 1, &y, sw, NULL,
                     0)) {
        dataset_free(&d);
        return -1;
    }
    staging s;
    if (staging_init(m, &s, &d, d.n)) {
        dataset_free(&d);
        return -1;
    }
    lm_train *t = m->train;
    lm_session *sess = train ? t->s_train : t->s_eval;
    lm_tensor *views[2 * LM_MAX_IO + 1] = {NULL};
    gather(&d, &s, 0, d.n);
    lm_status st = feed(m, sess, &s, d.n, views, true);
    if (!st) {
        if (train)
            st = train_step(m);
        else if ((st = lm_session_run(sess)))
            st = lm_fail(m->ctx, st, "%s", lm_ctx_error(m->ctx));
    }
    int n = -1;
    if (!st) {
        metrics_reset(t, m->n_outputs);
        metrics_update(m, sess, &s, d.n);
        lm_logs logs;
        lm_logs_clear(&logs);
        metrics_logs(m, &logs, "", lm_tensor_get(lm_session_output(sess, 0), 0));
        for (int i = 0; i < logs.n && i < max && out; i++) out[i] = logs.val[i];
        n = logs.n;
    }
    staging_free(&s);
    dataset_free(&d);
    return n;
}

int lm_train_on_batch(lm_model *m, lm_tensor *x, lm_tensor *y, lm_tensor *sample_weight,
                      double *out, int max) {
    return on_batch(m, x, y, sample_weight, out, max, true);
}

int lm_test_on_batch(lm_model *m, lm_tensor *x, lm_tensor *y, lm_tensor *sample_weight, double *out,
                     int max) {
    return on_batch(m, x, y, sample_weight, out, max, false);
}

lm_tensor *lm_predict_on_batch(lm_model *m, lm_tensor *x) {
    lm_predict_opts o = {.verbose = LM_SILENT};
    if (x && lm_tensor_ndim(x) >= 1) o.batch_size = (int)lm_tensor_dim(x, 0);
    return lm_predict_(m, x, o);
}

void lm_model_stop_training(lm_model *m) {
    if (m) m->stop_training = true;
}
