/* compile: the optimizer, losses and metrics; and the training graph built
 * on the first fit or evaluate, once the labels' dtype and shape are known:
 * label and sample-weight placeholders, the weighted loss reduced as Keras
 * reduces it ("sum over batch size"), regularisation penalties, gradients
 * written straight into one flat vector, and the metric states. */
#include "core/tensor_impl.h"
#include "nn/train.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const loss_names[LM_LOSS_COUNT] = {
    [LM_MEAN_SQUARED_ERROR] = "mean_squared_error",
    [LM_MEAN_ABSOLUTE_ERROR] = "mean_absolute_error",
    [LM_HUBER] = "huber",
    [LM_BINARY_CROSSENTROPY] = "binary_crossentropy",
    [LM_CATEGORICAL_CROSSENTROPY] = "categorical_crossentropy",
    [LM_SPARSE_CATEGORICAL_CROSSENTROPY] = "sparse_categorical_crossentropy"};

lm_loss lm_loss_from_name(const char *name) {
    if (!name) return LM_LOSS_NONE;
    if (!strcmp(name, "mse")) return LM_MEAN_SQUARED_ERROR;
    if (!strcmp(name, "mae")) return LM_MEAN_ABSOLUTE_ERROR;
    if (!strcmp(name, "huber_loss")) return LM_HUBER;
    for (int k = 1; k < LM_LOSS_COUNT; k++)
        if (!strcmp(name, loss_names[k])) return (lm_loss)k;
    return LM_LOSS_NONE;
}

static const char *const metric_names[LM_METRIC_COUNT] = {
    [LM_ACCURACY] = "accuracy",
    [LM_BINARY_ACCURACY] = "binary_accuracy",
    [LM_CATEGORICAL_ACCURACY] = "categorical_accuracy",
    [LM_SPARSE_CATEGORICAL_ACCURACY] = "sparse_categorical_accuracy",
    [LM_TOP_K_CATEGORICAL_ACCURACY] = "top_k_categorical_accuracy",
    [LM_SPARSE_TOP_K_CATEGORICAL_ACCURACY] = "sparse_top_k_categorical_accuracy",
    [LM_METRIC_MAE] = "mean_absolute_error",
    [LM_METRIC_MSE] = "mean_squared_error",
    [LM_PRECISION] = "precision",
    [LM_RECALL] = "recall"};

lm_metric lm_metric_from_name(const char *name) {
    if (!name) return LM_METRIC_NONE;
    if (!strcmp(name, "acc")) return LM_ACCURACY;
    if (!strcmp(name, "mae")) return LM_METRIC_MAE;
    if (!strcmp(name, "mse")) return LM_METRIC_MSE;
    for (int k = 1; k < LM_METRIC_COUNT; k++)
        if (!strcmp(name, metric_names[k])) return (lm_metric)k;
    return LM_METRIC_NONE;
}

lm_optimizer *lm_model_optimizer(lm_model *m) {
    return m && m->train ? m->train->opt : NULL;
}

/* Gives each trainable weight its own storage again (before the flat
 * vectors go away). */
static void unflatten(lm_train *t) {
    for (int i = 0; i < t->n_train; i++) {
        lm_tensor *v = t->train_w[i]->value;
        size_t bytes = (size_t)lm_tensor_numel(v) * sizeof(float);
        void *own = lm_aalloc(bytes);
        if (own) lm_tensor_move_storage(v, own, true);
        /* On OOM the weight keeps pointing into flat_p, which is then leaked
         * rather than freed under it. */
        else
            t->flat_p = NULL;
    }
}

/* Drops the training graph and sessions, keeping the compile options. */
void lm_train_reset(lm_model *m) {
    lm_train *t = m->train;
    if (!t) return;
    unflatten(t);
    lm_session_free(t->s_train);
    lm_session_free(t->s_eval);
    lm_session_free(t->s_pred);
    t->s_train = t->s_eval = t->s_pred = NULL;
    for (int o = 0; o < LM_MAX_IO; o++) {
        for (int k = 0; k < t->n_metrics[o]; k++) lm_metric_state_free(t->ms[o][k]);
        t->n_metrics[o] = 0;
    }
    free(t->train_w);
    t->train_w = NULL;
    t->n_train = 0;
    lm_afree(t->flat_p);
    lm_afree(t->flat_g);
    t->flat_p = t->flat_g = NULL;
    t->ready = false;
}

void lm_train_free(lm_model *m) {
    if (!m->train) return;
    lm_train_reset(m);
    lm_optimizer_free(m->train->opt);
    free(m->train);
    m->train = NULL;
}

static lm_train *train_state(lm_model *m) {
    if (!m->train) m->train = calloc(1, sizeof *m->train);
    return m->train;
}

lm_status lm_compile_(lm_model *m, lm_compile_opts o) {
    if (!m) {
        lm_optimizer_free(o.optimizer);
        return LM_ERR_ARG;
    }
    lm_train *t = train_state(m);
    if (!t) {
        lm_optimizer_free(o.optimizer);
        return lm_fail(m->ctx, LM_ERR_OOM, "compile: out of memory");
    }
    lm_train_reset(m);
    if (o.optimizer != t->opt) lm_optimizer_free(t->opt);
    t->opt = o.optimizer ? o.optimizer : lm_rmsprop();
    if (!t->opt) return lm_fail(m->ctx, LM_ERR_OOM, "compile: out of memory");
    if (m->err) return m->err;
    for (int i = 0; i < LM_MAX_IO; i++) {
        lm_loss l = o.losses ? o.losses[i < m->n_outputs ? i : 0] : o.loss;
        if (o.losses && i >= m->n_outputs) l = LM_LOSS_NONE;
        if ((int)l < 0 || l >= LM_LOSS_COUNT)
            return lm_fail(m->ctx, LM_ERR_ARG, "compile: unknown loss %d", (int)l);
        t->loss[i] = l;
        t->loss_weight[i] = o.loss_weights && i < m->n_outputs ? o.loss_weights[i] : 1.0;
    }
    t->from_logits = o.from_logits;
    t->huber_delta = o.huber_delta > 0 ? o.huber_delta : 1.0;
    t->top_k = o.top_k > 0 ? o.top_k : 5;
    t->threshold = o.threshold > 0 ? o.threshold : 0.5;
    t->n_metric_kinds = 0;
    for (int i = 0; o.metrics && o.metrics[i] != LM_METRIC_NONE; i++) {
        if (o.metrics[i] < 0 || o.metrics[i] >= LM_METRIC_COUNT)
            return lm_fail(m->ctx, LM_ERR_ARG, "compile: unknown metric %d", (int)o.metrics[i]);
        if (t->n_metric_kinds == LM_MAX_METRICS)
            return lm_fail(m->ctx, LM_ERR_ARG, "compile: at most %d metrics", LM_MAX_METRICS);
        t->metric_kinds[t->n_metric_kinds++] = o.metrics[i];
    }
    t->compiled = true;
    return LM_OK;
}

/* Per-sample loss of one output. */
static lm_node *loss_op(lm_graph *g, lm_train *t, lm_loss kind, lm_node *y, lm_node *p) {
    switch (kind) {
    case LM_MEAN_SQUARED_ERROR:
        return lm_op_mse(g, y, p);
    case LM_MEAN_ABSOLUTE_ERROR:
        return lm_op_mae(g, y, p);
    case LM_HUBER:
        return lm_op_huber(g, y, p, (float)t->huber_delta);
    case LM_BINARY_CROSSENTROPY:
        return lm_op_binary_crossentropy(g, y, p, t->from_logits);
    case LM_CATEGORICAL_CROSSENTROPY:
        return lm_op_categorical_crossentropy(g, y, p, t->from_logits);
    case LM_SPARSE_CATEGORICAL_CROSSENTROPY:
        return lm_op_sparse_categorical_crossentropy(g, y, p, t->from_logits);
    default:
        return NULL;
    }
}

/* l1 * sum|w| + l2 * sum w^2 */
static lm_node *penalty(lm_graph *g, lm_node *w, lm_regularizer r) {
    lm_node *p = NULL;
    if (r.l1 != 0)
        p = lm_op_scale(g, lm_op_sum(g, lm_op_abs(g, w), 0, NULL, false), (float)r.l1, 0);
    if (r.l2 != 0) {
        lm_node *q =
            lm_op_scale(g, lm_op_sum(g, lm_op_square(g, w), 0, NULL, false), (float)r.l2, 0);
        p = p ? lm_op_add(g, p, q) : q;
    }
    return p;
}

static bool is_sparse(lm_loss l) {
    return l == LM_SPARSE_CATEGORICAL_CROSSENTROPY;
}

lm_status lm_train_prepare(lm_model *m, int n_y, const lm_tensor *const *y) {
    lm_train *t = m->train;
    if (!t || !t->compiled)
        return lm_fail(m->ctx, LM_ERR_STATE, "%s: call lm_compile before fit or evaluate", m->name);
    if (m->err) return m->err;
    if (n_y != m->n_outputs)
        return lm_fail(m->ctx, LM_ERR_ARG, "%s: the model has %d outputs, %d label arrays given",
                       m->name, m->n_outputs, n_y);
    if (t->ready) {
        bool same = true;
        for (int i = 0; i < n_y; i++) same = same && t->y_ndim[i] == lm_tensor_ndim(y[i]);
        if (same) return LM_OK;
        lm_train_reset(m);
    }
    bool any_loss = false;
    for (int i = 0; i < n_y; i++) any_loss = any_loss || t->loss[i] != LM_LOSS_NONE;
    if (!any_loss) return lm_fail(m->ctx, LM_ERR_STATE, "%s: compile was given no loss", m->name);

    lm_graph *g = m->g;
    lm_node *total = NULL;
    t->sw_ph = lm_placeholder(g, LM_F32, LM_SHAPE(-1), "sample_weight");
    for (int i = 0; i < n_y; i++) {
        lm_node *pred = m->outputs[i]->node;
        lm_shape ys = lm_tensor_shape(y[i]);
        ys.dims[0] = -1;
        t->y_ndim[i] = ys.ndim;
        t->y_dt[i] = is_sparse(t->loss[i]) ? LM_I32 : LM_F32;
        char nm[32];
        snprintf(nm, sizeof nm, "y_true_%d", i);
        t->y_ph[i] = lm_placeholder(g, t->y_dt[i], ys, nm);
        if (t->loss[i] == LM_LOSS_NONE) continue;
        lm_graph_set_scope(g, "loss");
        lm_node *per = loss_op(g, t, t->loss[i], t->y_ph[i], pred);
        lm_graph_set_scope(g, NULL);
        if (!per) break;
        /* Sample weights broadcast over any axes the per-sample loss has beyond the batch. */
        lm_node *sw = t->sw_ph;
        if (per->shape.ndim > 1) {
            lm_shape s = {per->shape.ndim, {-1}};
            for (int d = 1; d < s.ndim; d++) s.dims[d] = 1;
            sw = lm_op_reshape(g, sw, s);
        }
        lm_node *li = lm_op_mean(g, lm_op_mul(g, per, sw), 0, NULL, false);
        if (t->loss_weight[i] != 1.0) li = lm_op_scale(g, li, (float)t->loss_weight[i], 0);
        total = total ? lm_op_add(g, total, li) : li;
    }
    if (lm_graph_status(g)) {
        /* A loss that does not fit the labels poisons only this graph: report
         * it and rebuild the model's graph so the model stays usable. */
        lm_status gs = lm_graph_status(g);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lm_graph_error(g));
        lm_model_rebuild(m);
        return lm_fail(m->ctx, gs, "%s", msg);
    }

    /* Regularisation: weight penalties and activity penalties. */
    lm_weight **all = NULL;
    size_t nw = (size_t)(unsigned)lm_model_weights(m, NULL, 0);
    if (nw && !(all = malloc(nw * sizeof *all)))
        return lm_fail(m->ctx, LM_ERR_OOM, "out of memory");
    lm_model_weights(m, all, (int)nw);
    /* Keras regularises trainable weights only (Layer._get_regularization_losses). */
    for (size_t i = 0; i < nw; i++)
        if (all[i]->has_reg && all[i]->trainable)
            total = lm_op_add(g, total, penalty(g, all[i]->var, all[i]->reg));
    for (int c = 0; c < m->n_calls; c++)
        if (m->calls[c].act_penalty) total = lm_op_add(g, total, m->calls[c].act_penalty);
    t->loss_node = total;

    /* Trainable weights, laid end to end in one flat vector. */
    t->train_w = malloc((nw ? nw : 1) * sizeof *t->train_w);
    if (!t->train_w) {
        free(all);
        return lm_fail(m->ctx, LM_ERR_OOM, "out of memory");
    }
    t->n_train = 0;
    t->n_params = 0;
    for (size_t i = 0; i < nw; i++)
        if (all[i]->trainable) {
            t->train_w[t->n_train++] = all[i];
            t->n_params += lm_tensor_numel(all[i]->value);
        }
    free(all);
    size_t nv = (size_t)(unsigned)t->n_train + 1;
    lm_node **vars = malloc(nv * sizeof *vars);
    lm_node **outs = malloc((nv + LM_MAX_IO) * sizeof *outs);
    int64_t *sizes = malloc(nv * sizeof *sizes);
    t->flat_p = lm_aalloc((size_t)t->n_params * sizeof(float));
    t->flat_g = lm_aalloc((size_t)t->n_params * sizeof(float));
    lm_status st = LM_OK;
    if (!vars || !outs || !sizes || !t->flat_p || !t->flat_g) {
        st = lm_fail(m->ctx, LM_ERR_OOM, "out of memory preparing training");
        goto done;
    }
    for (int i = 0; i < t->n_train; i++) {
        vars[i] = t->train_w[i]->var;
        sizes[i] = lm_tensor_numel(t->train_w[i]->value);
    }
    if ((st = lm_grad(g, total, t->n_train, vars, outs + 1 + m->n_outputs))) {
        st = lm_fail(m->ctx, st, "%s", lm_ctx_error(m->ctx));
        goto done;
    }
    /* Sessions: [loss, outputs..., gradients...] for training, [loss, outputs...] to evaluate. */
    outs[0] = total;
    for (int i = 0; i < m->n_outputs; i++) outs[1 + i] = m->outputs[i]->node;
    int64_t off = 0;
    for (int i = 0; i < t->n_train; i++) {
        lm_tensor_move_storage(t->train_w[i]->value, t->flat_p + off, false);
        off += sizes[i];
    }
    /* Sessions built earlier hold the old addresses of those weights. */
    lm_session_free(t->s_pred);
    t->s_pred = NULL;
    t->s_train = lm_session_new(g, 1 + m->n_outputs + t->n_train, outs);
    t->s_eval = lm_session_new(g, 1 + m->n_outputs, outs);
    if (!t->s_train || !t->s_eval) {
        st = lm_fail(m->ctx, LM_ERR_STATE, "%s", lm_ctx_error(m->ctx));
        goto done;
    }
    lm_session_set_training(t->s_train, true);
    off = 0;
    for (int i = 0; i < t->n_train && !st; i++) {
        st = lm_session_bind_output(t->s_train, 1 + m->n_outputs + i, t->flat_g + off,
                                    (size_t)sizes[i] * sizeof(float));
        off += sizes[i];
    }
    if (!st) st = lm_optimizer_build(t->opt, m->ctx, t->n_train, sizes);
    if (st) {
        st = lm_fail(m->ctx, st, "%s", lm_ctx_error(m->ctx));
        goto done;
    }

    /* Metrics, named "<output>_<metric>" when there are several outputs. */
    t->n_names = 0;
    snprintf(t->metric_names[t->n_names++], 64, "loss");
    for (int i = 0; i < m->n_outputs; i++) {
        lm_shape ps = m->outputs[i]->shape, ys = lm_tensor_shape(y[i]);
        int64_t pps = 1, tps = 1;
        for (int d = 1; d < ps.ndim; d++) pps *= ps.dims[d];
        for (int d = 1; d < ys.ndim; d++) tps *= ys.dims[d];
        lm_metric_state_ctx mc = {t->loss[i], pps, tps, t->y_dt[i], t->top_k, t->threshold, ps, ys};
        for (int k = 0; k < t->n_metric_kinds; k++) {
            lm_metric_state *ms = lm_metric_state_new(t->metric_kinds[k], &mc, m->ctx);
            if (!ms) {
                st = lm_fail(m->ctx, LM_ERR_ARG, "compile: %s", lm_ctx_error(m->ctx));
                goto done;
            }
            t->ms[i][t->n_metrics[i]++] = ms;
            if (m->n_outputs == 1)
                snprintf(t->metric_names[t->n_names++], 64, "%s", lm_metric_state_name(ms));
            else
                snprintf(t->metric_names[t->n_names++], 64, "%s_%s",
                         m->outputs[i]->layer ? m->outputs[i]->layer->name : "output",
                         lm_metric_state_name(ms));
        }
    }
    t->ready = true;
done:
    free(vars);
    free(outs);
    free(sizes);
    if (st) lm_train_reset(m);
    return st;
}

lm_session *lm_train_predict_session(lm_model *m) {
    if (!m->train && !train_state(m)) {
        lm_fail(m->ctx, LM_ERR_OOM, "out of memory");
        return NULL;
    }
    lm_train *t = m->train;
    if (t->s_pred) return t->s_pred;
    lm_node *outs[LM_MAX_IO];
    for (int i = 0; i < m->n_outputs; i++) outs[i] = m->outputs[i]->node;
    t->s_pred = lm_session_new(m->g, m->n_outputs, outs);
    if (!t->s_pred) lm_fail(m->ctx, LM_ERR_STATE, "%s", lm_ctx_error(m->ctx));
    return t->s_pred;
}

const char *lm_model_metric_name(const lm_model *m, int i) {
    if (!m || !m->train || i < 0 || i >= m->train->n_names) return NULL;
    return m->train->metric_names[i];
}
