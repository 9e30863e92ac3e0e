/* The layer base: allocation, weights, binding to a model's graph, and the
 * public accessors. */
#include "core/tensor_impl.h"
#include "nn/nn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lm_layer *lm_layer_alloc(const lm_layer_vt *vt, const void *cfg, size_t cfg_size, const char *name,
                         lm_shape input_shape, int64_t input_dim, lm_flag trainable) {
    lm_layer *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->vt = vt;
    l->trainable = trainable != LM_FALSE;
    if (cfg_size) {
        l->cfg = malloc(cfg_size);
        if (!l->cfg) {
            free(l);
            return NULL;
        }
        memcpy(l->cfg, cfg, cfg_size);
    }
    if (name) {
        l->name = strdup(name);
        if (!l->name) {
            free(l->cfg);
            free(l);
            return NULL;
        }
    }
    /* input_dim / input_shape describe the sample; the batch dim is prepended. */
    if (input_shape.ndim > 0 && input_shape.ndim < LM_MAX_DIMS) {
        l->has_input_shape = true;
        l->input_shape.ndim = input_shape.ndim + 1;
        l->input_shape.dims[0] = -1;
        for (int i = 0; i < input_shape.ndim; i++) l->input_shape.dims[i + 1] = input_shape.dims[i];
    } else if (input_dim > 0) {
        l->has_input_shape = true;
        l->input_shape = LM_SHAPE(-1, input_dim);
    }
    return l;
}

void lm_layer_free(lm_layer *l) {
    if (!l) return;
    if (l->vt && l->vt->destroy) l->vt->destroy(l);
    for (int i = 0; i < l->n_weights; i++) lm_tensor_free(l->w[i].value);
    lm_layer_free(l->inner[0]);
    lm_layer_free(l->inner[1]);
    free(l->cfg);
    free(l->name);
    free(l);
}

int lm_layer_add_weight(lm_layer *l, const char *name, lm_shape shape, lm_initializer init,
                        lm_init_kind dflt, const lm_regularizer *reg, bool trainable) {
    if (l->n_weights >= LM_MAX_WEIGHTS) {
        lm_fail(l->ctx, LM_ERR_ARG, "%s: too many weights", l->name);
        return -1;
    }
    lm_model *m = l->model;
    if (m && m->limit_params) { /* a model read from a file: see lm_model.param_budget */
        int64_t n = 1;
        for (int i = 0; i < shape.ndim && n <= m->param_budget; i++)
            n = shape.dims[i] > 0 && n <= INT64_MAX / shape.dims[i] ? n * shape.dims[i] : INT64_MAX;
        if (n > m->param_budget) {
            char b[96];
            lm_fail(l->ctx, LM_ERR_ARG,
                    "%s: weight %s of shape %s is larger than the model's file allows", l->name,
                    name, lm_shape_str(shape, b, sizeof b));
            return -1;
        }
        m->param_budget -= n;
    }
    lm_tensor *t = lm_tensor_new(l->ctx, LM_F32, shape);
    if (!t) return -1;
    if (init.kind == LM_INIT_DEFAULT) init.kind = dflt;
    if (lm_init_fill(init, t, l->ctx) != LM_OK) {
        lm_tensor_free(t);
        return -1;
    }
    lm_weight *w = &l->w[l->n_weights];
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", name);
    w->value = t;
    w->trainable = trainable && l->trainable;
    if (reg && (reg->l1 != 0 || reg->l2 != 0)) {
        w->has_reg = true;
        w->reg = *reg;
    }
    return l->n_weights++;
}

lm_status lm_layer_bind(lm_layer *l, lm_graph *g) {
    if (l->bound == g) return LM_OK;
    for (int i = 0; i < l->n_weights; i++) {
        char nm[160];
        snprintf(nm, sizeof nm, "%s/%s", l->name, l->w[i].name);
        l->w[i].var = lm_variable_shared(g, nm, l->w[i].value);
        if (!l->w[i].var) return lm_graph_status(g);
    }
    l->bound = g;
    return LM_OK;
}

const char *lm_layer_name(const lm_layer *l) {
    return l && l->name ? l->name : "";
}
const char *lm_layer_class(const lm_layer *l) {
    return l ? l->vt->class_name : "";
}
/* Weights of a layer and its wrapped layers (Bidirectional), in Keras order:
 * the wrapped layers' first, as lm_model_weights lists them. */
static int weight_total(const lm_layer *l) {
    int n = l->n_weights;
    for (int k = 0; k < 2; k++)
        if (l->inner[k]) n += weight_total(l->inner[k]);
    return n;
}
static lm_weight *weight_at(const lm_layer *l, int i) {
    if (!l || i < 0) return NULL;
    for (int k = 0; k < 2; k++)
        if (l->inner[k]) {
            int n = weight_total(l->inner[k]);
            if (i < n) return weight_at(l->inner[k], i);
            i -= n;
        }
    return i < l->n_weights ? (lm_weight *)&l->w[i] : NULL;
}

int lm_layer_weight_count(const lm_layer *l) {
    return l ? weight_total(l) : 0;
}
lm_tensor *lm_layer_weight(lm_layer *l, int i) {
    lm_weight *w = weight_at(l, i);
    return w ? w->value : NULL;
}
const char *lm_layer_weight_name(const lm_layer *l, int i) {
    lm_weight *w = weight_at(l, i);
    return w ? w->name : NULL;
}
bool lm_layer_weight_trainable(const lm_layer *l, int i) {
    lm_weight *w = weight_at(l, i);
    return w && w->trainable;
}

lm_status lm_layer_set_weights(lm_layer *l, int n, lm_tensor *const *w) {
    if (!l) return LM_ERR_ARG;
    if (!l->built)
        return lm_fail(l->ctx, LM_ERR_STATE, "%s: set_weights before the layer is built",
                       lm_layer_name(l));
    if (n != weight_total(l) || (n && !w))
        return lm_fail(l->ctx, LM_ERR_ARG, "%s: expects %d weights, got %d", lm_layer_name(l),
                       weight_total(l), n);
    for (int i = 0; i < n; i++) {
        char a[96], b[96];
        lm_weight *lw = weight_at(l, i);
        lm_shape want = lm_tensor_shape(lw->value), got = lm_tensor_shape(w[i]);
        bool same = w[i] && want.ndim == got.ndim;
        for (int d = 0; same && d < want.ndim; d++) same = want.dims[d] == got.dims[d];
        if (!same)
            return lm_fail(l->ctx, LM_ERR_SHAPE,
                           "%s: weight %d (%s) has shape %s, the value given has %s",
                           lm_layer_name(l), i, lw->name, lm_shape_str(want, a, sizeof a),
                           w[i] ? lm_shape_str(got, b, sizeof b) : "NULL");
    }
    for (int i = 0; i < n; i++) {
        lm_status s = lm_tensor_assign(weight_at(l, i)->value, w[i]);
        if (s) return s;
    }
    return LM_OK;
}

lm_status lm_layer_set_trainable(lm_layer *l, bool trainable) {
    if (!l) return LM_ERR_ARG;
    l->trainable = trainable;
    for (int i = 0; i < l->n_weights; i++)
        if (strcmp(l->w[i].name, "moving_mean") && strcmp(l->w[i].name, "moving_variance"))
            l->w[i].trainable = trainable;
    for (int k = 0; k < 2; k++) /* Bidirectional: both directions */
        if (l->inner[k]) lm_layer_set_trainable(l->inner[k], trainable);
    if (l->model) lm_train_reset(l->model);
    if (l->model && l->built && l->vt->call_reads_trainable && l->model->n_inputs)
        return lm_model_rebuild(l->model);
    return LM_OK;
}
