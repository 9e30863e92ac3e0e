/* Models: Sequential and functional construction. A model is a list of call
 * records (layer, input tensors, output tensors); its graph is built from
 * them, incrementally while layers are added, or again from scratch after
 * lm_pop or a deferred input shape. Layers own their weights; graphs refer to
 * them through shared variables. */
#include "core/tensor_impl.h"
#include "nn/nn.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lm_status lm_model_fail(lm_model *m, lm_status s, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m->err == LM_OK) {
        m->err = s;
        snprintf(m->errmsg, sizeof m->errmsg, "%s", msg);
    }
    lm_fail(m->ctx, s, "%s", msg);
    return s;
}

static lm_model *model_new(const char *name, bool sequential) {
    lm_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->ctx = lm_ctx_new();
    m->name = strdup(name ? name : sequential ? "sequential" : "functional");
    m->g = m->ctx ? lm_graph_new(m->ctx) : NULL;
    if (!m->ctx || !m->name || !m->g) {
        lm_graph_free(m->g);
        lm_ctx_free(m->ctx);
        free(m->name);
        free(m);
        return NULL;
    }
    m->sequential = sequential;
    return m;
}

lm_model *lm_sequential(const char *name) {
    return model_new(name, true);
}

lm_model *lm_functional(const char *name) {
    return model_new(name, false);
}

void lm_model_free(lm_model *m) {
    if (!m) return;
    lm_train_free(m);
    for (int i = 0; i < m->n_layers; i++) lm_layer_free(m->layers[i]);
    lm_layer_free(m->input_layer);
    for (int i = 0; i < m->n_kts; i++) {
        free(m->kts[i]->name);
        free(m->kts[i]);
    }
    free(m->kts);
    free(m->layers);
    free(m->calls);
    lm_graph_free(m->g);
    lm_ctx_free(m->ctx);
    free(m->name);
    free(m);
}

/* Keras-style unique names: base, base_1, base_2... per model. */
static lm_status auto_name(lm_model *m, lm_layer *l, const char *base) {
    int k = 0;
    while (k < m->n_names && strcmp(m->names[k].base, base)) k++;
    if (k == m->n_names) {
        if (m->n_names == 64) return lm_model_fail(m, LM_ERR_ARG, "too many layer kinds");
        snprintf(m->names[k].base, sizeof m->names[k].base, "%s", base);
        m->names[k].count = 0;
        m->n_names++;
    }
    char buf[64];
    if (m->names[k].count == 0)
        snprintf(buf, sizeof buf, "%s", base);
    else
        snprintf(buf, sizeof buf, "%s_%d", base, m->names[k].count);
    m->names[k].count++;
    l->name = strdup(buf);
    return l->name ? LM_OK : lm_model_fail(m, LM_ERR_OOM, "out of memory naming a layer");
}

static lm_kt *kt_new(lm_model *m, lm_node *node, lm_layer *layer, int call, int index) {
    if (m->n_kts == m->cap_kts) {
        int cap = m->cap_kts ? 2 * m->cap_kts : 32;
        lm_kt **k = realloc(m->kts, (size_t)cap * sizeof *k);
        if (!k) return NULL;
        m->kts = k;
        m->cap_kts = cap;
    }
    lm_kt *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->m = m;
    t->node = node;
    t->shape = node ? node->shape : (lm_shape){0, {0}};
    t->layer = layer;
    t->call = call;
    t->index = index;
    t->input = -1;
    m->kts[m->n_kts++] = t;
    return t;
}

/* Takes ownership of a layer for this model, naming it if needed. */
static lm_status attach(lm_model *m, lm_layer *l) {
    if (l->model == m) return LM_OK;
    if (l->model) return lm_model_fail(m, LM_ERR_ARG, "layer %s belongs to another model", l->name);
    if (!l->name && auto_name(m, l, l->vt->base_name)) return m->err;
    for (int i = 0; i < m->n_layers; i++)
        if (!strcmp(m->layers[i]->name, l->name))
            return lm_model_fail(
                m, LM_ERR_ARG, "all layers of a model must have unique names; \"%s\" is used twice",
                l->name);
    if (m->n_layers == m->cap_layers) {
        int cap = m->cap_layers ? 2 * m->cap_layers : 16;
        lm_layer **ls = realloc(m->layers, (size_t)cap * sizeof *ls);
        if (!ls) return lm_model_fail(m, LM_ERR_OOM, "out of memory adding a layer");
        m->layers = ls;
        m->cap_layers = cap;
    }
    m->layers[m->n_layers++] = l;
    l->model = m;
    l->ctx = m->ctx;
    for (int i = 0; i < 2; i++)
        if (l->inner[i]) {
            l->inner[i]->ctx = m->ctx;
            l->inner[i]->model = m;
        }
    return LM_OK;
}

static lm_kt *add_input(lm_model *m, lm_shape shape_with_batch, lm_dtype dt, const char *name) {
    if (m->n_inputs == LM_MAX_IO) {
        lm_model_fail(m, LM_ERR_ARG, "too many model inputs");
        return NULL;
    }
    char buf[64];
    if (!name) {
        lm_layer tmp;
        memset(&tmp, 0, sizeof tmp);
        if (auto_name(m, &tmp, "input_layer")) return NULL;
        snprintf(buf, sizeof buf, "%s", tmp.name);
        free(tmp.name);
        name = buf;
    }
    lm_node *ph = lm_placeholder(m->g, dt, shape_with_batch, name);
    if (!ph) {
        lm_model_fail(m, lm_graph_status(m->g), "%s", lm_graph_error(m->g));
        return NULL;
    }
    lm_kt *t = kt_new(m, ph, NULL, -1, 0);
    if (!t || !(t->name = strdup(name))) {
        lm_model_fail(m, LM_ERR_OOM, "out of memory adding an input");
        return NULL;
    }
    t->input = m->n_inputs;
    m->inputs[m->n_inputs++] = t;
    return t;
}

/* Adds the ops of call record ci to the graph: builds the layer on first
 * use, binds its weights, calls it, and adds its activity penalty. */
static lm_status apply_call(lm_model *m, int ci) {
    lm_call_rec *c = &m->calls[ci];
    lm_layer *l = c->layer;
    lm_graph *g = m->g;
    lm_node *in[LM_MAX_IO], *out[LM_MAX_IO] = {NULL};
    lm_shape shapes[LM_MAX_IO];
    for (int i = 0; i < c->n_in; i++) {
        in[i] = c->in[i]->node;
        shapes[i] = in[i]->shape;
    }
    lm_graph_set_scope(g, l->name);
    lm_status st = LM_OK;
    if (!l->built) {
        if (l->vt->build) st = l->vt->build(l, c->n_in, shapes);
        if (st) {
            lm_graph_set_scope(g, NULL);
            return lm_model_fail(m, st, "%s", lm_ctx_error(m->ctx));
        }
        l->built = true;
    }
    st = lm_layer_bind(l, g);
    for (int i = 0; !st && i < 2; i++)
        if (l->inner[i]) st = lm_layer_bind(l->inner[i], g);
    int n_out = 0;
    if (!st) st = l->vt->call(l, g, c->n_in, in, &n_out, out);
    /* Keras (Layer.__call__): the penalty of every output, divided by its batch size. */
    c->act_penalty = NULL;
    for (int o = 0; !st && l->has_activity_reg && o < n_out && out[o]; o++) {
        lm_node *y = out[o], *p = NULL;
        int nd = y->shape.ndim, rest[LM_MAX_DIMS];
        for (int k = 1; k < nd; k++) rest[k - 1] = k;
        const double coef[2] = {l->activity_reg.l1, l->activity_reg.l2}; /* |y|, y^2 */
        for (int k = 0; k < 2; k++) {
            if (coef[k] == 0) continue;
            lm_node *v = k == 0 ? lm_op_abs(g, y) : lm_op_square(g, y);
            /* sum / batch = mean over the batch of the per-sample sums. */
            if (nd > 1) v = lm_op_sum(g, v, nd - 1, rest, false);
            v = nd > 0 ? lm_op_mean(g, v, 0, NULL, false) : v;
            v = lm_op_scale(g, v, (float)coef[k], 0);
            p = p ? lm_op_add(g, p, v) : v;
        }
        if (p) c->act_penalty = c->act_penalty ? lm_op_add(g, c->act_penalty, p) : p;
    }
    lm_graph_set_scope(g, NULL);
    if (lm_graph_status(g)) return lm_model_fail(m, lm_graph_status(g), "%s", lm_graph_error(g));
    if (st) return lm_model_fail(m, st, "%s: %s", l->name, lm_ctx_error(m->ctx));
    if (n_out < 1 || n_out > LM_MAX_IO)
        return lm_model_fail(m, LM_ERR_STATE, "%s: produced %d outputs", l->name, n_out);
    for (int i = 0; i < n_out; i++) {
        if (c->out[i]) {
            c->out[i]->node = out[i];
            c->out[i]->shape = out[i]->shape;
        } else {
            c->out[i] = kt_new(m, out[i], l, ci, i);
            if (!c->out[i]) return lm_model_fail(m, LM_ERR_OOM, "out of memory");
        }
    }
    c->n_out = n_out;
    return LM_OK;
}

static lm_status push_call(lm_model *m, lm_layer *l, int n_in, lm_kt *const *in) {
    if (m->n_calls == m->cap_calls) {
        int cap = m->cap_calls ? 2 * m->cap_calls : 16;
        lm_call_rec *c = realloc(m->calls, (size_t)cap * sizeof *c);
        if (!c) return lm_model_fail(m, LM_ERR_OOM, "out of memory");
        m->calls = c;
        m->cap_calls = cap;
    }
    lm_call_rec *c = &m->calls[m->n_calls++];
    memset(c, 0, sizeof *c);
    c->layer = l;
    c->n_in = n_in;
    for (int i = 0; i < n_in; i++) c->in[i] = in ? in[i] : NULL;
    return LM_OK;
}

/* Sequential: the input of call i is the output of call i-1 (or the input). */
static lm_status seq_apply_from(lm_model *m, int first) {
    for (int i = first; i < m->n_calls; i++) {
        m->calls[i].in[0] = i == 0 ? m->inputs[0] : m->calls[i - 1].out[0];
        lm_status st = apply_call(m, i);
        if (st) return st;
    }
    m->n_outputs = m->n_calls ? 1 : 0;
    m->outputs[0] = m->n_calls ? m->calls[m->n_calls - 1].out[0] : NULL;
    m->built = m->n_inputs > 0;
    return LM_OK;
}

/* Rebuilds the graph from the call records (after lm_pop or a deferred build). */
static lm_status rebuild(lm_model *m) {
    lm_train_reset(m);
    lm_graph *g = lm_graph_new(m->ctx);
    if (!g) return lm_model_fail(m, LM_ERR_OOM, "out of memory");
    lm_dtype dts[LM_MAX_IO]; /* the inputs' nodes die with the old graph */
    for (int i = 0; i < m->n_inputs; i++) dts[i] = m->inputs[i]->node->dt;
    lm_graph_free(m->g);
    m->g = g;
    for (int i = 0; i < m->n_layers; i++) {
        m->layers[i]->bound = NULL;
        for (int k = 0; k < 2; k++)
            if (m->layers[i]->inner[k]) m->layers[i]->inner[k]->bound = NULL;
    }
    for (int i = 0; i < m->n_inputs; i++) {
        lm_kt *t = m->inputs[i];
        t->node = lm_placeholder(g, dts[i], t->shape, t->name);
        if (!t->node) return lm_model_fail(m, lm_graph_status(g), "%s", lm_graph_error(g));
    }
    if (m->sequential) return seq_apply_from(m, 0);
    for (int i = 0; i < m->n_calls; i++) {
        lm_status st = apply_call(m, i);
        if (st) return st;
    }
    return LM_OK;
}

lm_status lm_model_rebuild(lm_model *m) {
    return m->err ? m->err : rebuild(m);
}

lm_status lm_add(lm_model *m, lm_layer *l) {
    if (!m) {
        lm_layer_free(l);
        return LM_ERR_ARG;
    }
    if (!l) return lm_model_fail(m, LM_ERR_ARG, "add: the layer is NULL (a constructor failed)");
    if (!m->sequential) {
        lm_layer_free(l);
        return lm_model_fail(m, LM_ERR_STATE, "add: %s is not a Sequential model", m->name);
    }
    if (m->err) {
        lm_layer_free(l); /* the first error stands; keep the model as it was */
        return m->err;
    }
    if (!strcmp(l->vt->class_name, "InputLayer")) {
        if (m->n_calls || m->n_inputs) {
            lm_layer_free(l);
            return lm_model_fail(m, LM_ERR_STATE,
                                 "add: an Input layer must come first in a Sequential model");
        }
        m->input_layer = l;
        l->model = m;
        l->ctx = m->ctx;
        if (!l->name && auto_name(m, l, "input_layer")) return m->err;
        return add_input(m, l->input_shape, l->input_dtype, l->name) ? LM_OK : m->err;
    }
    lm_status st = attach(m, l);
    if (st) {
        if (l->model != m) lm_layer_free(l);
        return st;
    }
    if (!m->n_inputs && !m->n_calls && l->has_input_shape &&
        !add_input(m, l->input_shape, LM_F32, NULL))
        return m->err;
    if ((st = push_call(m, l, 1, NULL))) return st;
    return m->n_inputs ? seq_apply_from(m, m->n_calls - 1) : LM_OK;
}

lm_status lm_pop(lm_model *m) {
    if (!m) return LM_ERR_ARG;
    if (!m->sequential) return lm_model_fail(m, LM_ERR_STATE, "pop: not a Sequential model");
    if (!m->n_calls) return lm_model_fail(m, LM_ERR_STATE, "pop: the model has no layers");
    lm_layer *l = m->calls[--m->n_calls].layer;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i] == l) {
            memmove(m->layers + i, m->layers + i + 1,
                    (size_t)(m->n_layers - i - 1) * sizeof *m->layers);
            m->n_layers--;
            break;
        }
    lm_layer_free(l);
    return m->n_inputs ? rebuild(m) : LM_OK;
}

lm_status lm_model_ensure_built(lm_model *m, int n_x, const lm_shape *x_shapes) {
    if (m->err) return m->err;
    if (m->built) return LM_OK;
    if (!m->sequential)
        return lm_model_fail(m, LM_ERR_STATE, "%s: call lm_model_set_outputs first", m->name);
    if (!m->n_calls) return lm_model_fail(m, LM_ERR_STATE, "%s: the model has no layers", m->name);
    if (n_x != 1)
        return lm_model_fail(m, LM_ERR_ARG, "%s: a Sequential model takes one input", m->name);
    lm_shape s = x_shapes[0];
    if (s.ndim < 1)
        return lm_model_fail(m, LM_ERR_SHAPE, "%s: input data needs a batch axis", m->name);
    s.dims[0] = -1;
    if (!add_input(m, s, LM_F32, NULL)) return m->err;
    return seq_apply_from(m, 0);
}

lm_kt *lm_model_input(lm_model *m, lm_shape shape, const char *name) {
    if (!m) return NULL;
    if (m->sequential) {
        lm_model_fail(m, LM_ERR_STATE, "input: use lm_add(m, lm_input(...)) for Sequential models");
        return NULL;
    }
    if (shape.ndim < 0 || shape.ndim >= LM_MAX_DIMS) {
        lm_model_fail(m, LM_ERR_SHAPE, "input: %d dimensions (at most %d)", shape.ndim,
                      LM_MAX_DIMS - 1);
        return NULL;
    }
    lm_shape s = {shape.ndim + 1, {-1}};
    for (int i = 0; i < shape.ndim; i++) s.dims[i + 1] = shape.dims[i];
    return add_input(m, s, LM_F32, name);
}

int lm_call_multi(lm_layer *l, int n_in, lm_kt *const *xs, int max_out, lm_kt **outs) {
    if (!l || n_in < 1 || !xs || !xs[0]) {
        if (xs && n_in > 0 && xs[0]) lm_model_fail(xs[0]->m, LM_ERR_ARG, "call: layer is NULL");
        if (!(l && l->model)) lm_layer_free(l);
        return -1;
    }
    lm_model *m = xs[0]->m;
    if (m->err) {
        if (!l->model) lm_layer_free(l);
        return -1;
    }
    for (int i = 0; i < n_in; i++)
        if (!xs[i] || xs[i]->m != m) {
            lm_model_fail(m, LM_ERR_ARG, "call: input %d is NULL or from another model", i);
            return -1;
        }
    if (n_in < l->vt->min_in || n_in > l->vt->max_in) {
        lm_model_fail(m, LM_ERR_ARG, "%s: takes %d to %d inputs, got %d",
                      l->name ? l->name : l->vt->class_name, l->vt->min_in, l->vt->max_in, n_in);
        if (!l->model) lm_layer_free(l);
        return -1;
    }
    if (attach(m, l)) {
        if (l->model != m) lm_layer_free(l);
        return -1;
    }
    if (push_call(m, l, n_in, xs) || apply_call(m, m->n_calls - 1)) return -1;
    lm_call_rec *c = &m->calls[m->n_calls - 1];
    for (int i = 0; i < c->n_out && i < max_out; i++) outs[i] = c->out[i];
    return c->n_out;
}

lm_kt *lm_call_n(lm_layer *l, int n, lm_kt *const *xs) {
    lm_kt *out = NULL;
    return lm_call_multi(l, n, xs, 1, &out) > 0 ? out : NULL;
}

lm_kt *lm_call(lm_layer *l, lm_kt *x) {
    return lm_call_n(l, 1, &x);
}

lm_status lm_model_set_outputs(lm_model *m, int n, lm_kt *const *outs) {
    if (!m) return LM_ERR_ARG;
    if (m->err) return m->err;
    if (m->sequential) return lm_model_fail(m, LM_ERR_STATE, "set_outputs: not a functional model");
    if (n < 1 || n > LM_MAX_IO || !outs)
        return lm_model_fail(m, LM_ERR_ARG, "set_outputs: between 1 and %d outputs", LM_MAX_IO);
    if (!m->n_inputs) return lm_model_fail(m, LM_ERR_STATE, "set_outputs: the model has no inputs");
    for (int i = 0; i < n; i++) {
        if (!outs[i] || outs[i]->m != m)
            return lm_model_fail(m, LM_ERR_ARG, "set_outputs: output %d is NULL or foreign", i);
        m->outputs[i] = outs[i];
    }
    m->n_outputs = n;
    m->built = true;
    lm_train_reset(m);
    return LM_OK;
}

lm_shape lm_kt_shape(const lm_kt *t) {
    lm_shape s = {0, {0}};
    return t ? t->shape : s;
}

/* ---- inspection ---- */

lm_ctx *lm_model_ctx(lm_model *m) {
    return m ? m->ctx : NULL;
}
const char *lm_model_name(const lm_model *m) {
    return m ? m->name : "";
}
const char *lm_model_error(const lm_model *m) {
    if (!m) return "no model";
    return m->err ? m->errmsg : lm_ctx_error(m->ctx);
}
lm_status lm_model_status(const lm_model *m) {
    return m ? m->err : LM_ERR_ARG;
}
int lm_model_layer_count(const lm_model *m) {
    return m ? m->n_layers : 0;
}
lm_layer *lm_model_layer(lm_model *m, int i) {
    return m && i >= 0 && i < m->n_layers ? m->layers[i] : NULL;
}
lm_layer *lm_model_get_layer(lm_model *m, const char *name) {
    if (!m || !name) return NULL;
    for (int i = 0; i < m->n_layers; i++)
        if (!strcmp(m->layers[i]->name, name)) return m->layers[i];
    return NULL;
}

/* Weights of a layer and its wrapped layers, in Keras order. */
static int layer_weights(lm_layer *l, lm_weight **out, int n, int max) {
    for (int k = 0; k < 2; k++)
        if (l->inner[k]) n = layer_weights(l->inner[k], out, n, max);
    for (int i = 0; i < l->n_weights; i++) {
        if (out && n < max) out[n] = &l->w[i];
        n++;
    }
    return n;
}

int lm_model_weights(lm_model *m, lm_weight **out, int max) {
    int n = 0;
    for (int i = 0; i < m->n_layers; i++) n = layer_weights(m->layers[i], out, n, max);
    return n;
}

int lm_model_weight_count(const lm_model *m) {
    return m ? lm_model_weights((lm_model *)m, NULL, 0) : 0;
}

lm_tensor *lm_model_weight(lm_model *m, int i) {
    if (!m || i < 0) return NULL;
    int n = lm_model_weights(m, NULL, 0);
    if (i >= n) return NULL;
    lm_weight **w = malloc((size_t)n * sizeof *w);
    if (!w) return NULL;
    lm_model_weights(m, w, n);
    lm_tensor *t = w[i]->value;
    free(w);
    return t;
}

int64_t lm_model_count_params(const lm_model *m, bool trainable_only) {
    if (!m) return -1;
    int n = lm_model_weights((lm_model *)m, NULL, 0);
    lm_weight **w = malloc((size_t)(n ? n : 1) * sizeof *w);
    if (!w) return -1;
    lm_model_weights((lm_model *)m, w, n);
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        if (!trainable_only || w[i]->trainable) total += lm_tensor_numel(w[i]->value);
    free(w);
    return total;
}

lm_status lm_model_set_weights(lm_model *m, int n, lm_tensor *const *vals) {
    if (!m) return LM_ERR_ARG;
    int have = lm_model_weights(m, NULL, 0);
    if (n != have || (n && !vals))
        return lm_fail(m->ctx, LM_ERR_ARG, "set_weights: %s has %d weights, %d given", m->name,
                       have, n);
    lm_weight **w = malloc((size_t)(n ? n : 1) * sizeof *w);
    if (!w) return lm_fail(m->ctx, LM_ERR_OOM, "out of memory");
    lm_model_weights(m, w, n);
    lm_status st = LM_OK;
    for (int i = 0; i < n && !st; i++) {
        char a[96], b[96];
        lm_shape want = lm_tensor_shape(w[i]->value), got = lm_tensor_shape(vals[i]);
        bool same = vals[i] && want.ndim == got.ndim;
        for (int d = 0; same && d < want.ndim; d++) same = want.dims[d] == got.dims[d];
        if (!same)
            st = lm_fail(m->ctx, LM_ERR_SHAPE, "set_weights: weight %d (%s) has shape %s, given %s",
                         i, w[i]->name, lm_shape_str(want, a, sizeof a),
                         vals[i] ? lm_shape_str(got, b, sizeof b) : "NULL");
    }
    for (int i = 0; i < n && !st; i++) st = lm_tensor_assign(w[i]->value, vals[i]);
    free(w);
    return st;
}

/* ---- the Input layer of Sequential models ---- */

static const lm_layer_vt input_vt = {.class_name = "InputLayer", .base_name = "input_layer"};

lm_layer *lm_input_(lm_shape shape, lm_input_opts o) {
    if (shape.ndim < 0 || shape.ndim >= LM_MAX_DIMS) return NULL;
    lm_layer *l = lm_layer_alloc(&input_vt, NULL, 0, o.name, shape, 0, LM_DEFAULT);
    if (!l) return NULL;
    if (shape.ndim == 0) l->input_shape = LM_SHAPE(-1);
    l->has_input_shape = true;
    l->input_dtype = o.dtype;
    return l;
}
