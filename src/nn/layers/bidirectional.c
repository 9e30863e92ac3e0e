/* Bidirectional: Keras's wrapper running a recurrent layer forwards and a
 * mirror of it backwards (go_backwards flipped), inner[0] named
 * "forward_<layer>" and inner[1] "backward_<layer>", weights in that order.
 * As Keras does, the backward sequence output (in processing order) is
 * reversed back before the merge; with return_state the outputs are
 * [merged, forward states..., backward states...]. A call may take an
 * initial state for both directions: (x, forward states..., backward states...). */
#include "io/keras_config.h"
#include "nn/nn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Defined in recurrent.c. */
bool lm_rnn_layer_is(const lm_layer *l);
int lm_rnn_layer_states(const lm_layer *l);
bool lm_rnn_layer_returns_sequences(const lm_layer *l);
bool lm_rnn_layer_returns_state(const lm_layer *l);
bool lm_rnn_layer_goes_backwards(const lm_layer *l);
lm_layer *lm_rnn_layer_mirror(const lm_layer *l, const char *name);

typedef struct bi_cfg {
    lm_merge_mode merge_mode;
} bi_cfg;

/* Keras's automatic name for the wrapped layer (its own counter in the
 * model, as the wrapped layer takes a name when Keras creates it). */
static lm_status inner_base(lm_layer *l, char *buf, size_t len) {
    lm_model *m = l->model;
    const char *base = l->inner[0]->vt->base_name;
    int k = 0;
    while (k < m->n_names && strcmp(m->names[k].base, base)) k++;
    if (k == m->n_names) {
        if (k == 64) return lm_fail(l->ctx, LM_ERR_ARG, "%s: too many layer kinds", l->name);
        snprintf(m->names[k].base, sizeof m->names[k].base, "%s", base);
        m->names[k].count = 0;
        m->n_names++;
    }
    if (m->names[k].count == 0)
        snprintf(buf, len, "%s", base);
    else
        snprintf(buf, len, "%s_%d", base, m->names[k].count);
    m->names[k].count++;
    return LM_OK;
}

static lm_status set_name(lm_layer *l, const char *prefix, const char *base) {
    size_t pl = strlen(prefix);
    if (!strncmp(base, prefix, pl)) base += pl; /* Keras's removeprefix */
    char buf[160];
    snprintf(buf, sizeof buf, "%s%s", prefix, base);
    char *s = strdup(buf);
    if (!s) return LM_ERR_OOM;
    free(l->name);
    l->name = s;
    return LM_OK;
}

static lm_status bi_build(lm_layer *l, int n_in, const lm_shape *in) {
    (void)n_in;
    char base[96], b[96];
    lm_layer *f = l->inner[0];
    if (in[0].ndim != 3 || in[0].dims[2] < 1)
        return lm_fail(l->ctx, LM_ERR_SHAPE,
                       "%s: Bidirectional(%s) expects a 3-D input (batch, timesteps, features) "
                       "with known features, got input shape %s",
                       l->name, f->vt->class_name, lm_shape_str(in[0], b, sizeof b));
    if (f->name)
        snprintf(base, sizeof base, "%s", f->name);
    else if (inner_base(l, base, sizeof base))
        return LM_ERR_ARG;
    if (set_name(l->inner[0], "forward_", base) || set_name(l->inner[1], "backward_", base))
        return LM_ERR_OOM;
    for (int k = 0; k < 2; k++) {
        lm_layer *c = l->inner[k];
        c->ctx = l->ctx;
        c->model = l->model;
        if (!c->built) {
            lm_status st = c->vt->build(c, 1, in);
            if (st) return st;
            c->built = true;
        }
    }
    return LM_OK;
}

/* Reverses axis 1 of a (batch, T, units) node: transpose, gather, transpose. */
static lm_node *reverse_time(lm_layer *l, lm_graph *g, lm_node *y) {
    int64_t T = y->shape.dims[1];
    char b[96];
    if (T < 0) {
        lm_fail(l->ctx, LM_ERR_SHAPE,
                "Bidirectional with return_sequences needs a known number of timesteps, got "
                "output %s",
                lm_shape_str(y->shape, b, sizeof b));
        return NULL;
    }
    lm_tensor *idx = lm_tensor_new(l->ctx, LM_I32, LM_SHAPE(T));
    if (!idx) return NULL;
    for (int64_t t = 0; t < T; t++) lm_tensor_set(idx, t, (double)(T - 1 - t));
    lm_node *ci = lm_constant(g, idx);
    lm_tensor_free(idx);
    static const int perm[3] = {1, 0, 2};
    lm_node *tm = lm_op_transpose(g, y, perm);
    return lm_op_transpose(g, lm_op_gather(g, tm, ci), perm);
}

/* Calls inner layer c under the scope "<wrapper>/<inner>". */
static lm_status call_inner(lm_layer *l, lm_layer *c, lm_graph *g, int n_in, lm_node *const *in,
                            int *n_out, lm_node **out) {
    char scope[200];
    snprintf(scope, sizeof scope, "%s/%s", l->name, c->name);
    lm_graph_set_scope(g, scope);
    lm_status st = c->vt->call(c, g, n_in, in, n_out, out);
    lm_graph_set_scope(g, l->name);
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lm_ctx_error(l->ctx));
        return lm_fail(l->ctx, st, "%s: %s", c->name, msg);
    }
    return LM_OK;
}

static lm_status bi_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                         lm_node **out) {
    bi_cfg *cfg = l->cfg;
    lm_layer *f = l->inner[0], *bk = l->inner[1];
    int S = lm_rnn_layer_states(f);
    if (n_in != 1 && n_in != 1 + 2 * S)
        return lm_fail(l->ctx, LM_ERR_ARG,
                       "Bidirectional(%s) takes the input and an initial_state of %d tensors "
                       "(%d for each direction), got %d state tensor%s",
                       f->vt->class_name, 2 * S, S, n_in - 1, n_in == 2 ? "" : "s");
    lm_node *fin[4] = {in[0]}, *bin[4] = {in[0]};
    for (int i = 0; n_in > 1 && i < S; i++) {
        fin[1 + i] = in[1 + i];
        bin[1 + i] = in[1 + S + i];
    }
    int nf = 0, nb = 0, n_call = n_in > 1 ? 1 + S : 1;
    lm_node *yf[4] = {NULL}, *yb[4] = {NULL};
    lm_status st = call_inner(l, f, g, n_call, fin, &nf, yf);
    if (!st) st = call_inner(l, bk, g, n_call, bin, &nb, yb);
    if (st) return st;
    if (!yf[0] || !yb[0]) return LM_OK; /* a graph error, reported by the caller */
    lm_node *y = yf[0], *yr = yb[0], *o = NULL;
    if (lm_rnn_layer_returns_sequences(f) && !(yr = reverse_time(l, g, yr)))
        return lm_graph_status(g) ? LM_OK : LM_ERR_SHAPE;
    switch (cfg->merge_mode) {
    case LM_MERGE_CONCAT:
        o = lm_op_concat(g, 2, (lm_node *[]){y, yr}, -1);
        break;
    case LM_MERGE_SUM:
        o = lm_op_add(g, y, yr);
        break;
    case LM_MERGE_MUL:
        o = lm_op_mul(g, y, yr);
        break;
    case LM_MERGE_AVE:
        o = lm_op_scale(g, lm_op_add(g, y, yr), 0.5f, 0);
        break;
    }
    out[0] = o;
    *n_out = 1;
    if (lm_rnn_layer_returns_state(f)) {
        for (int i = 1; i < nf; i++) out[(*n_out)++] = yf[i];
        for (int i = 1; i < nb; i++) out[(*n_out)++] = yb[i];
    }
    return LM_OK;
}

/* The wrapped layer's entry named prefix + its name (an unbuilt wrapper's
 * inner layers are not renamed yet), with zero_output_for_mask forced to
 * return_sequences as Keras's Bidirectional does. */
static cJSON *inner_entry(const lm_layer *c, const char *prefix) {
    cJSON *e = lm_kc_layer_entry(c);
    cJSON *cfg = e ? cJSON_GetObjectItemCaseSensitive(e, "config") : NULL;
    if (!cfg) return e;
    const char *n = c->name ? c->name : c->vt->base_name;
    char buf[200];
    snprintf(buf, sizeof buf, "%s%s", strncmp(n, prefix, strlen(prefix)) ? prefix : "", n);
    if (lm_kc_put_str(cfg, "name", buf) ||
        lm_kc_put_bool(cfg, "zero_output_for_mask", lm_rnn_layer_returns_sequences(c))) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

static lm_status bi_get_config(const lm_layer *l, cJSON *k) {
    static const char *const modes[] = {"concat", "sum", "mul", "ave"};
    const bi_cfg *c = l->cfg;
    lm_status st = lm_kc_put_str(k, "merge_mode", modes[c->merge_mode]);
    if (!st) st = lm_kc_put(k, "layer", inner_entry(l->inner[0], "forward_"));
    if (!st) st = lm_kc_put(k, "backward_layer", inner_entry(l->inner[1], "backward_"));
    return st;
}

static const lm_layer_vt bidirectional_vt = {.class_name = "Bidirectional",
                                             .base_name = "bidirectional",
                                             .min_in = 1,
                                             .max_in = 5,
                                             .build = bi_build,
                                             .call = bi_call,
                                             .get_config = bi_get_config};

lm_layer *lm_bidirectional_(lm_layer *layer, lm_bidirectional_opts o) {
    if (!layer) return NULL;
    /* Only a fresh recurrent layer can be wrapped (a model owns a used one). */
    if (layer->model) return NULL;
    /* Keras makes the backward copy with go_backwards true, so a backward
     * layer to wrap would give two layers reading the same way: an error. */
    if (!lm_rnn_layer_is(layer) || lm_rnn_layer_goes_backwards(layer) ||
        (int)o.merge_mode < LM_MERGE_CONCAT || o.merge_mode > LM_MERGE_AVE) {
        lm_layer_free(layer);
        return NULL;
    }
    bi_cfg c = {o.merge_mode};
    lm_layer *l = lm_layer_alloc(&bidirectional_vt, &c, sizeof c, o.name, o.input_shape,
                                 o.input_dim, o.trainable);
    lm_layer *back = l ? lm_rnn_layer_mirror(layer, NULL) : NULL;
    if (!back) {
        lm_layer_free(l);
        lm_layer_free(layer);
        return NULL;
    }
    l->inner[0] = layer;
    l->inner[1] = back;
    /* An input shape given to the wrapped layer defines a Sequential model's input. */
    if (!l->has_input_shape && layer->has_input_shape) {
        l->has_input_shape = true;
        l->input_shape = layer->input_shape;
    }
    /* Freezing the wrapper freezes both directions (Keras's trainable setter). */
    if (!l->trainable) layer->trainable = back->trainable = false;
    return l;
}
