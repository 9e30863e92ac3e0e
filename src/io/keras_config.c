/* Model configs in Keras 3's schema (config.json of a .keras file, which is
 * also model.to_json()): Sequential with its InputLayer entry, functional
 * models with "inbound_nodes" in Keras 3's format ({"args": [keras tensors],
 * "kwargs": {...}}) and "input_layers" / "output_layers", build_config and
 * compile_config. Reading also takes Keras 2's conventions (nodes as
 * [[layer, node, tensor, kwargs]], batch_input_shape). */
#include "io/keras_config.h"
#include "io/keras_config_compile.h"
#include "io/keras_weights.h"
#include "core/tensor_impl.h"
#include "nn/train.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAYERS     10000 /* bounds the work a crafted config can ask for */
#define MAX_NODES      100000
#define DEFAULT_BUDGET (INT64_C(1) << 31) /* weight elements of a model from a bare config */

static const cJSON *get(const cJSON *o, const char *key) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

/* ---- writing ---- */

/* [null, 28, 28, 1]: the batch (and unknown sizes) as null. */
static cJSON *shape_json(lm_shape s) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < s.ndim; i++) {
        cJSON *d =
            i == 0 || s.dims[i] < 0 ? cJSON_CreateNull() : cJSON_CreateNumber((double)s.dims[i]);
        if (!d || !cJSON_AddItemToArray(a, d)) {
            cJSON_Delete(d);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

static cJSON *shape_obj(const char *key, cJSON *value) {
    cJSON *o = cJSON_CreateObject();
    if (lm_kc_put(o, key, value)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static const char *dtype_name(lm_dtype dt) {
    return dt == LM_I32 ? "int32" : dt == LM_I64 ? "int64" : "float32";
}

/* Keras writes build_config only for layers that have a build method. */
static bool has_build_config(const lm_layer *l) {
    static const char *const none[] = {"Activation",
                                       "Dropout",
                                       "Reshape",
                                       "MaxPooling1D",
                                       "MaxPooling2D",
                                       "AveragePooling1D",
                                       "AveragePooling2D",
                                       "GlobalMaxPooling1D",
                                       "GlobalMaxPooling2D",
                                       "GlobalAveragePooling1D",
                                       "GlobalAveragePooling2D"};
    for (size_t i = 0; i < sizeof none / sizeof *none; i++)
        if (!strcmp(l->vt->class_name, none[i])) return false;
    return l->built;
}

static bool is_recurrent(const lm_layer *l) {
    const char *c = l->vt->class_name;
    return !strcmp(c, "SimpleRNN") || !strcmp(c, "LSTM") || !strcmp(c, "GRU") ||
           !strcmp(c, "Bidirectional");
}

static bool is_merge(const lm_layer *l) {
    return l->vt->max_in == LM_MAX_IO;
}

/* Sets a layer entry's build_config; a built Bidirectional's wrapped
 * layers get theirs too (Keras builds them on the sequence shape). */
static lm_status put_build_config(cJSON *e, const lm_layer *l, cJSON *bc, lm_shape seq) {
    lm_status st = lm_kc_put(e, "build_config", bc);
    if (st || strcmp(l->vt->class_name, "Bidirectional")) return st;
    cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "config");
    static const char *const inner[] = {"layer", "backward_layer"};
    for (int i = 0; i < 2 && !st; i++) {
        cJSON *ie = cJSON_GetObjectItemCaseSensitive(c, inner[i]);
        if (ie) st = lm_kc_put(ie, "build_config", shape_obj("input_shape", shape_json(seq)));
    }
    return st;
}

static cJSON *input_entry(const lm_kt *in, bool functional) {
    cJSON *c = cJSON_CreateObject(), *e = cJSON_CreateObject();
    lm_status st = c && e ? LM_OK : LM_ERR_OOM;
    if (!st) st = lm_kc_put(c, "batch_shape", shape_json(in->shape));
    if (!st) st = lm_kc_put_str(c, "dtype", dtype_name(in->node ? in->node->dt : LM_F32));
    if (!st) st = lm_kc_put_bool(c, "sparse", false);
    if (!st) st = lm_kc_put_bool(c, "ragged", false);
    if (!st) st = lm_kc_put_str(c, "name", in->name);
    if (!st) st = lm_kc_put_bool(c, "optional", false);
    if (!st) st = lm_kc_put_str(e, "module", "keras.layers");
    if (!st) st = lm_kc_put_str(e, "class_name", "InputLayer");
    if (!st) {
        st = lm_kc_put(e, "config", c);
        c = NULL;
    }
    if (!st) st = lm_kc_put_null(e, "registered_name");
    if (!st && functional) st = lm_kc_put_str(e, "name", in->name);
    if (!st && functional) st = lm_kc_put(e, "inbound_nodes", cJSON_CreateArray());
    cJSON_Delete(c);
    if (st) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

static bool push(cJSON *arr, cJSON *item);

static cJSON *seq_config(lm_model *m, lm_status *out) {
    cJSON *c = cJSON_CreateObject(), *layers = cJSON_CreateArray();
    lm_status st = c && layers ? LM_OK : LM_ERR_OOM;
    if (!st) st = lm_kc_put_str(c, "name", m->name);
    if (!st) st = lm_kc_put_bool(c, "trainable", true);
    if (!st) st = lm_kc_put(c, "dtype", lm_kc_dtype_policy());
    if (!st && m->n_inputs) {
        cJSON *e = input_entry(m->inputs[0], false);
        st = e && cJSON_AddItemToArray(layers, e) ? LM_OK : LM_ERR_OOM;
    }
    for (int i = 0; !st && i < m->n_calls; i++) {
        const lm_call_rec *cr = &m->calls[i];
        cJSON *e = lm_kc_layer_entry(cr->layer);
        if (!e) {
            st = LM_ERR_FORMAT; /* the message is in the context */
            break;
        }
        if (has_build_config(cr->layer) && cr->in[0] && cr->in[0]->node)
            st = put_build_config(e, cr->layer,
                                  shape_obj("input_shape", shape_json(cr->in[0]->shape)),
                                  cr->in[0]->shape);
        if (st)
            cJSON_Delete(e);
        else if (!push(layers, e))
            st = LM_ERR_OOM;
    }
    if (!st) {
        st = lm_kc_put(c, "layers", layers);
        layers = NULL;
    }
    if (!st && m->n_inputs) st = lm_kc_put(c, "build_input_shape", shape_json(m->inputs[0]->shape));
    cJSON_Delete(layers);
    *out = st;
    if (st) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* Node index of call ci among its layer's calls (Keras's inbound node). */
static int node_index(const lm_model *m, int ci) {
    int k = 0;
    for (int i = 0; i < ci; i++) k += m->calls[i].layer == m->calls[ci].layer;
    return k;
}

/* [layer, node, tensor] of a symbolic tensor. */
static cJSON *history(const lm_model *m, const lm_kt *t) {
    cJSON *h = cJSON_CreateArray();
    const char *name = t->input >= 0 ? t->name : t->layer->name;
    int node = t->input >= 0 ? 0 : node_index(m, t->call), index = t->input >= 0 ? 0 : t->index;
    if (h && cJSON_AddItemToArray(h, cJSON_CreateString(name)) &&
        cJSON_AddItemToArray(h, cJSON_CreateNumber(node)) &&
        cJSON_AddItemToArray(h, cJSON_CreateNumber(index)))
        return h;
    cJSON_Delete(h);
    return NULL;
}

static cJSON *keras_tensor(const lm_model *m, const lm_kt *t) {
    cJSON *o = cJSON_CreateObject(), *c = cJSON_CreateObject();
    lm_status st = o && c ? LM_OK : LM_ERR_OOM;
    if (!st) st = lm_kc_put(c, "shape", shape_json(t->shape));
    if (!st) st = lm_kc_put_str(c, "dtype", dtype_name(t->node ? t->node->dt : LM_F32));
    if (!st) st = lm_kc_put(c, "keras_history", history(m, t));
    if (!st) st = lm_kc_put_str(o, "class_name", "__keras_tensor__");
    if (!st) {
        st = lm_kc_put(o, "config", c);
        c = NULL;
    }
    cJSON_Delete(c);
    if (st) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static bool push(cJSON *arr, cJSON *item) {
    if (item && cJSON_AddItemToArray(arr, item)) return true;
    cJSON_Delete(item);
    return false;
}

/* {"args": [...], "kwargs": {...}} of one call, as Keras 3 records it. */
static cJSON *node_json(const lm_model *m, const lm_call_rec *c) {
    cJSON *n = cJSON_CreateObject(), *args = cJSON_CreateArray(), *kw = cJSON_CreateObject();
    bool ok = n && args && kw;
    if (ok && is_merge(c->layer)) {
        cJSON *list = cJSON_CreateArray();
        for (int i = 0; list && i < c->n_in; i++) ok = ok && push(list, keras_tensor(m, c->in[i]));
        ok = ok && push(args, list);
    } else if (ok) {
        /* Keras records the call's context arguments: training when call()
         * defaults it to False, mask when call() takes one and the call has
         * a single tensor. */
        const char *cls = c->layer->vt->class_name;
        bool rnn = is_recurrent(c->layer) && strcmp(cls, "Bidirectional");
        bool mask = is_recurrent(c->layer) || !strcmp(cls, "BatchNormalization") ||
                    !strcmp(cls, "GlobalAveragePooling1D");
        ok = push(args, keras_tensor(m, c->in[0]));
        if (ok && c->n_in > 1) { /* initial_state */
            cJSON *st = cJSON_CreateArray();
            for (int i = 1; st && i < c->n_in; i++) ok = ok && push(st, keras_tensor(m, c->in[i]));
            ok = ok && lm_kc_put(kw, "initial_state", st) == LM_OK;
        } else if (ok) {
            if (rnn || !strcmp(cls, "Dropout")) ok = lm_kc_put_bool(kw, "training", false) == LM_OK;
            if (ok && mask) ok = lm_kc_put_null(kw, "mask") == LM_OK;
        }
    }
    if (ok && !lm_kc_put(n, "args", args)) {
        args = NULL;
        if (!lm_kc_put(n, "kwargs", kw)) return n;
        kw = NULL;
    }
    cJSON_Delete(args);
    cJSON_Delete(kw);
    cJSON_Delete(n);
    return NULL;
}

static cJSON *build_config_of(const lm_call_rec *c) {
    if (c->n_in == 1) return shape_obj("input_shape", shape_json(c->in[0]->shape));
    cJSON *list = cJSON_CreateArray();
    for (int i = is_merge(c->layer) ? 0 : 1; list && i < c->n_in; i++)
        if (!push(list, shape_json(c->in[i]->shape))) {
            cJSON_Delete(list);
            return NULL;
        }
    if (is_merge(c->layer)) return shape_obj("input_shape", list);
    cJSON *d = shape_obj("sequences_shape", shape_json(c->in[0]->shape));
    if (d && lm_kc_put(d, "initial_state_shape", list)) {
        cJSON_Delete(d);
        return NULL;
    }
    if (!d) cJSON_Delete(list);
    return d ? shape_obj("shapes_dict", d) : NULL;
}

/* A leaf [name, node, tensor] for one tensor, a list for several. */
static cJSON *io_list(const lm_model *m, int n, lm_kt *const *kts) {
    if (n == 1) return history(m, kts[0]);
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        if (!push(a, history(m, kts[i]))) {
            cJSON_Delete(a);
            return NULL;
        }
    return a;
}

static cJSON *functional_config(lm_model *m, lm_status *out) {
    int cap = m->n_layers + m->n_inputs + 1;
    lm_layer **order = malloc((size_t)cap * sizeof *order);
    int *ins = malloc((size_t)cap * sizeof *ins);
    cJSON *c = cJSON_CreateObject(), *layers = cJSON_CreateArray();
    int n = order && ins ? lm_keras_layer_order(m, order, ins, cap) : -1;
    lm_status st = c && layers && n >= 0 && n <= cap ? LM_OK : LM_ERR_OOM;
    if (!st) st = lm_kc_put_str(c, "name", m->name);
    if (!st) st = lm_kc_put_bool(c, "trainable", true);
    for (int i = 0; !st && i < n; i++) {
        if (!order[i]) {
            if (!push(layers, input_entry(m->inputs[ins[i]], true))) st = LM_ERR_OOM;
            continue;
        }
        lm_layer *l = order[i];
        cJSON *e = lm_kc_layer_entry(l), *nodes = cJSON_CreateArray();
        const lm_call_rec *first = NULL;
        if (!e || !nodes) st = e ? LM_ERR_OOM : LM_ERR_FORMAT; /* FORMAT: message in the context */
        for (int k = 0; !st && k < m->n_calls; k++) {
            if (m->calls[k].layer != l) continue;
            if (!first) first = &m->calls[k];
            if (!push(nodes, node_json(m, &m->calls[k]))) st = LM_ERR_OOM;
        }
        if (!st && first && has_build_config(l))
            st = put_build_config(e, l, build_config_of(first), first->in[0]->shape);
        if (!st) st = lm_kc_put_str(e, "name", l->name);
        if (!st) {
            st = lm_kc_put(e, "inbound_nodes", nodes);
            nodes = NULL;
        }
        cJSON_Delete(nodes);
        if (!st && !push(layers, e))
            st = LM_ERR_OOM;
        else if (st)
            cJSON_Delete(e);
    }
    if (!st) {
        st = lm_kc_put(c, "layers", layers);
        layers = NULL;
    }
    if (!st) st = lm_kc_put(c, "input_layers", io_list(m, m->n_inputs, m->inputs));
    if (!st) st = lm_kc_put(c, "output_layers", io_list(m, m->n_outputs, m->outputs));
    free(order);
    free(ins);
    cJSON_Delete(layers);
    *out = st;
    if (st) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

cJSON *lm_kc_model_to_cjson(lm_model *m) {
    if (!m->sequential && !m->built) {
        lm_fail(m->ctx, LM_ERR_STATE, "%s: a functional model needs lm_model_set_outputs first",
                m->name);
        return NULL;
    }
    lm_status st = LM_OK;
    cJSON *cfg = m->sequential ? seq_config(m, &st) : functional_config(m, &st);
    if (st != LM_OK && st != LM_ERR_OOM) return NULL; /* a layer's message is in the context */
    cJSON *top = cJSON_CreateObject();
    if (!top || !cfg) st = LM_ERR_OOM;
    if (!st)
        st = lm_kc_put_str(top, "module", m->sequential ? "keras" : "keras.src.models.functional");
    if (!st) st = lm_kc_put_str(top, "class_name", m->sequential ? "Sequential" : "Functional");
    if (!st) {
        st = lm_kc_put(top, "config", cfg);
        cfg = NULL;
    }
    if (!st) st = lm_kc_put_str(top, "registered_name", m->sequential ? NULL : "Functional");
    if (!st && m->sequential && m->n_inputs)
        st = lm_kc_put(top, "build_config",
                       shape_obj("input_shape", shape_json(m->inputs[0]->shape)));
    if (!st && !m->sequential)
        st = lm_kc_put(top, "build_config", shape_obj("input_shape", cJSON_CreateNull()));
    if (!st) {
        cJSON *cc = NULL;
        st = lm_kc_compile_config(m, &cc);
        if (!st) st = lm_kc_put(top, "compile_config", cc ? cc : cJSON_CreateObject());
    }
    cJSON_Delete(cfg);
    if (st) {
        cJSON_Delete(top);
        if (st == LM_ERR_OOM) lm_fail(m->ctx, st, "%s: out of memory writing the config", m->name);
        return NULL;
    }
    return top;
}

char *lm_model_to_json(lm_model *m) {
    if (!m) return NULL;
    cJSON *j = lm_kc_model_to_cjson(m);
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    if (j && !s) lm_fail(m->ctx, LM_ERR_OOM, "%s: out of memory writing the config", m->name);
    cJSON_Delete(j);
    return s;
}

/* ---- reading ---- */

/* Fails r with the model's message (lm_add, lm_call and set_outputs record
 * theirs, naming the layer and shapes). */
static void model_fail(lm_kc_reader *r, lm_model *m) {
    r->layer = NULL;
    lm_kc_fail(r, lm_model_status(m) ? lm_model_status(m) : LM_ERR_FORMAT, "%s", lm_model_error(m));
}

static const char *class_of(const cJSON *entry) {
    const cJSON *c = get(entry, "class_name");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

/* An InputLayer's shape (without the batch), dtype and name. */
static bool input_layer(lm_kc_reader *r, const cJSON *entry, lm_shape *shape, lm_dtype *dt,
                        const char **name) {
    const cJSON *c = get(entry, "config");
    r->layer = lm_kc_entry_name(entry);
    r->cls = "InputLayer";
    if (!cJSON_IsObject(c)) {
        lm_kc_fail(r, LM_ERR_FORMAT, "the entry has no \"config\" object");
        return false;
    }
    const char *key = get(c, "batch_shape") ? "batch_shape" : "batch_input_shape";
    const cJSON *bs = get(c, key);
    if (bs && !cJSON_IsNull(bs)) {
        lm_kc_batch_shape(r, bs, key, shape);
    } else if (cJSON_IsArray(get(c, "shape"))) { /* shape without the batch */
        cJSON *tmp = cJSON_Duplicate(get(c, "shape"), true);
        cJSON *nul = cJSON_CreateNull();
        if (tmp && nul && cJSON_InsertItemInArray(tmp, 0, nul))
            lm_kc_batch_shape(r, tmp, "shape", shape);
        else
            cJSON_Delete(nul);
        cJSON_Delete(tmp);
    } else {
        lm_kc_fail(r, LM_ERR_FORMAT, "the config lacks \"batch_shape\"");
    }
    *dt = lm_kc_dtype(r, c, "dtype", true);
    if (lm_kc_bool(r, c, "sparse", false) || lm_kc_bool(r, c, "ragged", false))
        lm_kc_fail(r, LM_ERR_UNSUPPORTED, "sparse and ragged inputs are not supported");
    *name = lm_kc_str(r, c, "name", NULL);
    if (!*name) *name = cJSON_IsString(get(entry, "name")) ? get(entry, "name")->valuestring : NULL;
    if (*name && (!**name || strlen(*name) > 255 || strchr(*name, '/')))
        lm_kc_fail(r, LM_ERR_FORMAT, "a layer name must have 1 to 255 characters and no '/'");
    return r->st == LM_OK;
}

static lm_model *read_sequential(lm_kc_reader *r, const cJSON *cfg) {
    const cJSON *layers = get(cfg, "layers");
    if (!cJSON_IsArray(layers)) {
        lm_kc_fail(r, LM_ERR_FORMAT, "a Sequential config needs a \"layers\" list");
        return NULL;
    }
    if (cJSON_GetArraySize(layers) > MAX_LAYERS) {
        lm_kc_fail(r, LM_ERR_UNSUPPORTED, "more than %d layers", MAX_LAYERS);
        return NULL;
    }
    const char *name = lm_kc_str(r, cfg, "name", NULL);
    lm_kc_dtype(r, cfg, "dtype", false);
    if (r->st) return NULL;
    lm_model *m = lm_sequential(name);
    if (!m) {
        lm_kc_fail(r, LM_ERR_OOM, "out of memory");
        return NULL;
    }
    m->limit_params = true;
    m->param_budget = r->param_budget > 0 ? r->param_budget : DEFAULT_BUDGET;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, layers) {
        const char *cls = class_of(e);
        if (cls && !strcmp(cls, "InputLayer")) {
            lm_shape s = {0, {0}};
            lm_dtype dt = LM_F32;
            const char *in_name = NULL;
            if (i > 0)
                lm_kc_fail(r, LM_ERR_FORMAT,
                           "an InputLayer must be the first layer of a Sequential model");
            else if (input_layer(r, e, &s, &dt, &in_name) &&
                     lm_add(m, lm_input(s, .name = in_name, .dtype = dt)))
                model_fail(r, m);
        } else {
            if (i == 0 && cJSON_IsArray(get(cfg, "build_input_shape"))) {
                lm_shape s = {0, {0}};
                r->layer = NULL;
                if (lm_kc_batch_shape(r, get(cfg, "build_input_shape"), "build_input_shape", &s) &&
                    lm_add(m, lm_input(s)))
                    model_fail(r, m);
            }
            lm_layer *l = r->st ? NULL : lm_kc_layer_from_entry(r, e);
            if (l && lm_add(m, l)) model_fail(r, m);
        }
        if (r->st) break;
        i++;
    }
    if (r->st) {
        lm_model_free(m);
        return NULL;
    }
    return m;
}

/* ---- functional ---- */

/* A tensor reference [layer, node, tensor], resolved to the layer's index. */
typedef struct fn_ref {
    int layer, node, tensor;
} fn_ref;

typedef struct fn_layer {
    const char *name;
    lm_layer *layer; /* NULL for an InputLayer */
    lm_kt *input;    /* InputLayer: its tensor */
    const cJSON *nodes;
    int n_nodes, done; /* nodes given and processed */
    lm_kt **outs;      /* done * LM_MAX_IO outputs */
    int *n_outs;
    int *ref_off; /* node k's inputs are refs[ref_off[k] .. ref_off[k + 1]) */
    fn_ref *refs;
} fn_layer;

typedef struct fn_graph {
    lm_kc_reader *r;
    lm_model *m;
    int n;
    fn_layer *ls;
    int hcap; /* power of two > 2n: open addressing on names, so lookups stay O(1) */
    int *hash;
} fn_graph;

static uint32_t name_hash(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static fn_layer *find(fn_graph *g, const char *name) {
    for (uint32_t i = name_hash(name) & (uint32_t)(g->hcap - 1);;
         i = (i + 1) & (uint32_t)(g->hcap - 1)) {
        int k = g->hash[i];
        if (k < 0) return NULL;
        if (!strcmp(g->ls[k].name, name)) return &g->ls[k];
    }
}

/* Indexes layer k by name; false when the name is taken. */
static bool index_name(fn_graph *g, int k) {
    uint32_t i = name_hash(g->ls[k].name) & (uint32_t)(g->hcap - 1);
    for (; g->hash[i] >= 0; i = (i + 1) & (uint32_t)(g->hcap - 1))
        if (!strcmp(g->ls[g->hash[i]].name, g->ls[k].name)) return false;
    g->hash[i] = k;
    return true;
}

/* Resolves [layer, node, tensor]; false (an error in r) when it cannot exist. */
static bool parse_ref(fn_graph *g, const cJSON *h, fn_ref *out) {
    const cJSON *ln = cJSON_GetArrayItem(h, 0), *ni = cJSON_GetArrayItem(h, 1),
                *ti = cJSON_GetArrayItem(h, 2);
    char b[80];
    if (!cJSON_IsArray(h) || cJSON_GetArraySize(h) < 3 || !cJSON_IsString(ln) ||
        !cJSON_IsNumber(ni) || !cJSON_IsNumber(ti)) {
        lm_kc_fail(g->r, LM_ERR_FORMAT, "a tensor reference must be [layer, node, tensor], got %s",
                   lm_kc_show(h, b, sizeof b));
        return false;
    }
    fn_layer *f = find(g, ln->valuestring);
    double n = ni->valuedouble, t = ti->valuedouble;
    if (!f) {
        lm_kc_fail(g->r, LM_ERR_FORMAT,
                   "a tensor reference names layer \"%.100s\", which the config lacks",
                   ln->valuestring);
        return false;
    }
    bool ok = f->input ? n == 0 && t == 0
                       : n >= 0 && n < f->n_nodes && t >= 0 && t < LM_MAX_IO && n == (int)n &&
                             t == (int)t;
    if (!ok) {
        lm_kc_fail(g->r, LM_ERR_FORMAT, "no tensor %s: layer \"%.100s\" has no such node or output",
                   lm_kc_show(h, b, sizeof b), ln->valuestring);
        return false;
    }
    *out = (fn_ref){(int)(f - g->ls), (int)n, (int)t};
    return true;
}

/* The references of one node, in order: Keras 2's [[layer, node, tensor,
 * kwargs], ...], or Keras 3's args (tensors, or lists of them) then the
 * initial_state kwarg. Returns the count, or -1 (an error in r). */
static int parse_node(fn_graph *g, const cJSON *node, fn_ref *refs) {
    lm_kc_reader *r = g->r;
    char b[80];
    int n = 0;
    if (cJSON_IsArray(node)) {
        const cJSON *h;
        cJSON_ArrayForEach(h, node) {
            if (n == LM_MAX_IO)
                return lm_kc_fail(r, LM_ERR_UNSUPPORTED, "more than %d inputs", LM_MAX_IO), -1;
            if (!parse_ref(g, h, &refs[n++])) return -1;
        }
        if (!n) lm_kc_fail(r, LM_ERR_FORMAT, "a node without inputs");
        return n ? n : -1;
    }
    const cJSON *args = get(node, "args"), *kw = get(node, "kwargs");
    if (!cJSON_IsArray(args) || (kw && !cJSON_IsNull(kw) && !cJSON_IsObject(kw))) {
        lm_kc_fail(r, LM_ERR_FORMAT, "a node must be {\"args\": [...], \"kwargs\": {...}}, got %s",
                   lm_kc_show(node, b, sizeof b));
        return -1;
    }
    const cJSON *srcs[2] = {args, get(kw, "initial_state")};
    for (int s = 0; s < 2; s++) {
        const cJSON *a;
        cJSON_ArrayForEach(a, srcs[s]) {
            const cJSON *list = cJSON_IsArray(a) ? a : NULL;
            int cnt = list ? cJSON_GetArraySize(list) : 1;
            for (int k = 0; k < cnt; k++) {
                const cJSON *t = list ? cJSON_GetArrayItem(list, k) : a;
                const cJSON *cn = get(t, "class_name");
                if (!cJSON_IsString(cn) || strcmp(cn->valuestring, "__keras_tensor__")) {
                    lm_kc_fail(r, LM_ERR_UNSUPPORTED, "a call argument that is not a tensor: %s",
                               lm_kc_show(t, b, sizeof b));
                    return -1;
                }
                if (n == LM_MAX_IO)
                    return lm_kc_fail(r, LM_ERR_UNSUPPORTED, "more than %d inputs", LM_MAX_IO), -1;
                if (!parse_ref(g, get(get(t, "config"), "keras_history"), &refs[n++])) return -1;
            }
        }
    }
    const cJSON *k;
    cJSON_ArrayForEach(k, kw) {
        if (!strcmp(k->string, "initial_state") || cJSON_IsNull(k) || cJSON_IsFalse(k)) continue;
        lm_kc_fail(r, LM_ERR_UNSUPPORTED, "the call argument %s=%s is not supported", k->string,
                   lm_kc_show(k, b, sizeof b));
        return -1;
    }
    if (!n) lm_kc_fail(r, LM_ERR_FORMAT, "a node without input tensors");
    return n ? n : -1;
}

/* Reads every node's references once, so that the sweeps below only compare integers. */
static lm_status parse_nodes(fn_graph *g, fn_layer *f) {
    f->ref_off = malloc(((size_t)f->n_nodes + 1) * sizeof *f->ref_off);
    f->refs = malloc(((size_t)f->n_nodes * LM_MAX_IO + 1) * sizeof *f->refs);
    if (!f->ref_off || !f->refs) return lm_kc_fail(g->r, LM_ERR_OOM, "out of memory");
    g->r->layer = f->name;
    g->r->cls = f->layer->vt->class_name;
    int at = 0;
    const cJSON *node;
    f->ref_off[0] = 0;
    int k = 0;
    cJSON_ArrayForEach(node, f->nodes) {
        int n = parse_node(g, node, f->refs + at);
        if (n < 0) return g->r->st;
        f->ref_off[++k] = at += n;
    }
    return LM_OK;
}

/* The tensor of a reference whose node exists; NULL (an error in r) for a
 * tensor index past the outputs the call made. */
static lm_kt *tensor_of(fn_graph *g, fn_ref ref) {
    fn_layer *f = &g->ls[ref.layer];
    if (f->input) return f->input;
    if (ref.tensor < f->n_outs[ref.node]) return f->outs[ref.node * LM_MAX_IO + ref.tensor];
    lm_kc_fail(g->r, LM_ERR_FORMAT, "no tensor [\"%.100s\", %d, %d]: that call made %d outputs",
               f->name, ref.node, ref.tensor, f->n_outs[ref.node]);
    return NULL;
}

static bool ready(const fn_graph *g, fn_ref ref) {
    const fn_layer *f = &g->ls[ref.layer];
    return f->input || f->done > ref.node;
}

/* Calls layer f on its next node when the inputs exist: 1 done, 0 later, -1 error. */
static int process_node(fn_graph *g, fn_layer *f) {
    lm_kt *in[LM_MAX_IO], *out[LM_MAX_IO] = {NULL};
    int lo = f->ref_off[f->done], n_in = f->ref_off[f->done + 1] - lo;
    for (int i = 0; i < n_in; i++)
        if (!ready(g, f->refs[lo + i])) return 0;
    g->r->layer = f->name;
    g->r->cls = f->layer->vt->class_name;
    for (int i = 0; i < n_in; i++)
        if (!(in[i] = tensor_of(g, f->refs[lo + i]))) return -1;
    int n = lm_call_multi(f->layer, n_in, in, LM_MAX_IO, out);
    if (n < 1) {
        /* A layer the model did not take is freed by lm_call_multi. */
        bool owned = false;
        for (int i = 0; i < g->m->n_layers; i++) owned = owned || g->m->layers[i] == f->layer;
        if (!owned) f->layer = NULL;
        model_fail(g->r, g->m);
        return -1;
    }
    for (int i = 0; i < LM_MAX_IO; i++) f->outs[f->done * LM_MAX_IO + i] = i < n ? out[i] : NULL;
    f->n_outs[f->done++] = n < LM_MAX_IO ? n : LM_MAX_IO;
    return 1;
}

/* Leaves of input_layers / output_layers: one [name, node, tensor], a list
 * or a dict of them, in order. */
static int io_refs(fn_graph *g, const cJSON *v, lm_kt **out, int max, const char *key) {
    lm_kc_reader *r = g->r;
    const cJSON *one[1] = {v}, *e;
    bool leaf = cJSON_IsArray(v) && cJSON_IsString(cJSON_GetArrayItem(v, 0));
    if (!leaf && !cJSON_IsArray(v) && !cJSON_IsObject(v)) {
        lm_kc_fail(r, LM_ERR_FORMAT, "\"%s\" must be a list", key);
        return -1;
    }
    int n = 0, cnt = leaf ? 1 : cJSON_GetArraySize(v);
    e = leaf ? one[0] : v->child;
    for (int i = 0; i < cnt && e; i++, e = leaf ? NULL : e->next) {
        fn_ref ref;
        if (n == max) return lm_kc_fail(r, LM_ERR_UNSUPPORTED, "more than %d %s", max, key), -1;
        if (!parse_ref(g, e, &ref)) return -1;
        if (!ready(g, ref))
            return lm_kc_fail(r, LM_ERR_FORMAT, "\"%s\" refers to a node never made", key), -1;
        if (!(out[n++] = tensor_of(g, ref))) return -1;
    }
    if (n == 0) lm_kc_fail(r, LM_ERR_FORMAT, "\"%s\" is empty", key);
    return n ? n : -1;
}

static lm_status fn_build(fn_graph *g, const cJSON *cfg) {
    lm_kc_reader *r = g->r;
    const cJSON *layers = get(cfg, "layers"), *e;
    int total_nodes = 0;
    /* Inputs first, in input_layers order (the model's input order). */
    const cJSON *il = get(cfg, "input_layers");
    cJSON_ArrayForEach(e, layers) {
        fn_layer *f = &g->ls[g->n++];
        const cJSON *nm = get(e, "name");
        f->name = cJSON_IsString(nm) ? nm->valuestring : lm_kc_entry_name(e);
        f->nodes = get(e, "inbound_nodes");
        const char *cls = class_of(e);
        if (cls && !strcmp(cls, "InputLayer")) continue;
        if (!cJSON_IsArray(f->nodes))
            return lm_kc_fail(r, LM_ERR_FORMAT, "layer \"%.100s\" lacks its \"inbound_nodes\" list",
                              f->name);
        f->n_nodes = cJSON_GetArraySize(f->nodes);
        if ((total_nodes += f->n_nodes) > MAX_NODES)
            return lm_kc_fail(r, LM_ERR_UNSUPPORTED, "more than %d layer calls", MAX_NODES);
        f->outs = calloc((size_t)f->n_nodes * LM_MAX_IO + 1, sizeof *f->outs);
        f->n_outs = calloc((size_t)f->n_nodes + 1, sizeof *f->n_outs);
        if (!f->outs || !f->n_outs) return lm_kc_fail(r, LM_ERR_OOM, "out of memory");
        if (!(f->layer = lm_kc_layer_from_entry(r, e))) return r->st;
    }
    for (int i = 0; i < g->n; i++)
        if (!index_name(g, i))
            return lm_kc_fail(r, LM_ERR_FORMAT, "two layers are named \"%.100s\"", g->ls[i].name);
    /* Model inputs in the order input_layers gives. */
    const cJSON *refs[LM_MAX_IO];
    int n_refs = 0;
    if (cJSON_IsArray(il) && cJSON_IsString(cJSON_GetArrayItem(il, 0)))
        refs[n_refs++] = il;
    else if (cJSON_IsArray(il) || cJSON_IsObject(il))
        cJSON_ArrayForEach(e, il) {
            if (n_refs == LM_MAX_IO)
                return lm_kc_fail(r, LM_ERR_UNSUPPORTED, "more than %d inputs", LM_MAX_IO);
            refs[n_refs++] = e;
        }
    if (!n_refs) return lm_kc_fail(r, LM_ERR_FORMAT, "a functional config needs \"input_layers\"");
    for (int k = 0; k < n_refs; k++) {
        const cJSON *ln = cJSON_GetArrayItem(refs[k], 0);
        fn_layer *f = cJSON_IsString(ln) ? find(g, ln->valuestring) : NULL;
        const cJSON *entry = NULL;
        int idx = f ? (int)(f - g->ls) : -1;
        if (idx >= 0) entry = cJSON_GetArrayItem(layers, idx);
        const char *cls = class_of(entry);
        char b[80];
        if (!f || !cls || strcmp(cls, "InputLayer") || f->input)
            return lm_kc_fail(r, LM_ERR_UNSUPPORTED,
                              "input %s is not an InputLayer of the config (or is given twice)",
                              lm_kc_show(refs[k], b, sizeof b));
        lm_shape s = {0, {0}};
        lm_dtype dt;
        const char *nm;
        if (!input_layer(r, entry, &s, &dt, &nm)) return r->st;
        if (!(f->input = lm_model_input(g->m, s, f->name))) return model_fail(r, g->m), r->st;
    }
    for (int i = 0; i < g->n; i++)
        if (!g->ls[i].layer && !g->ls[i].input)
            return lm_kc_fail(r, LM_ERR_UNSUPPORTED,
                              "InputLayer \"%.100s\" is not among \"input_layers\"", g->ls[i].name);
    for (int i = 0; i < g->n; i++)
        if (g->ls[i].layer && parse_nodes(g, &g->ls[i])) return r->st;
    /* Keras's order: sweep the layers in config order, each as far as its inputs allow. */
    for (bool progress = true; progress;) {
        progress = false;
        bool left = false;
        for (int i = 0; i < g->n; i++) {
            fn_layer *f = &g->ls[i];
            while (f->layer && f->done < f->n_nodes) {
                int p = process_node(g, f);
                if (p < 0) return r->st;
                if (p == 0) break;
                progress = true;
            }
            left = left || (f->layer && f->done < f->n_nodes);
        }
        if (left && !progress) {
            for (int i = 0; i < g->n; i++)
                if (g->ls[i].layer && g->ls[i].done < g->ls[i].n_nodes)
                    return (r->layer = NULL),
                           lm_kc_fail(r, LM_ERR_FORMAT,
                                      "the graph has a loop or a missing tensor: node %d of layer "
                                      "\"%.100s\" cannot be made",
                                      g->ls[i].done, g->ls[i].name);
        }
    }
    r->layer = NULL;
    lm_kt *outs[LM_MAX_IO];
    int n_out = io_refs(g, get(cfg, "output_layers"), outs, LM_MAX_IO, "output_layers");
    if (n_out < 0) return r->st;
    if (lm_model_set_outputs(g->m, n_out, outs)) return model_fail(r, g->m), r->st;
    /* model.layers in the config's order, as Keras has them. */
    int k = 0;
    for (int i = 0; i < g->n; i++)
        for (int j = k; g->ls[i].layer && j < g->m->n_layers; j++)
            if (g->m->layers[j] == g->ls[i].layer) {
                lm_layer *t = g->m->layers[k];
                g->m->layers[k++] = g->m->layers[j];
                g->m->layers[j] = t;
                break;
            }
    return LM_OK;
}

static lm_model *read_functional(lm_kc_reader *r, const cJSON *cfg) {
    const cJSON *layers = get(cfg, "layers");
    if (!cJSON_IsArray(layers)) {
        lm_kc_fail(r, LM_ERR_FORMAT, "a functional config needs a \"layers\" list");
        return NULL;
    }
    int n = cJSON_GetArraySize(layers);
    if (n > MAX_LAYERS) {
        lm_kc_fail(r, LM_ERR_UNSUPPORTED, "more than %d layers", MAX_LAYERS);
        return NULL;
    }
    fn_graph g = {.r = r, .m = lm_functional(lm_kc_str(r, cfg, "name", NULL))};
    g.ls = calloc((size_t)n + 1, sizeof *g.ls);
    for (g.hcap = 16; g.hcap <= 2 * n;) g.hcap *= 2;
    g.hash = malloc((size_t)g.hcap * sizeof *g.hash);
    for (int i = 0; g.hash && i < g.hcap; i++) g.hash[i] = -1;
    if (!g.m || !g.ls || !g.hash) lm_kc_fail(r, LM_ERR_OOM, "out of memory");
    if (g.m) {
        g.m->limit_params = true;
        g.m->param_budget = r->param_budget > 0 ? r->param_budget : DEFAULT_BUDGET;
    }
    if (!r->st) fn_build(&g, cfg);
    for (int i = 0; i < g.n; i++) {
        if (g.ls[i].layer && !g.ls[i].layer->model) lm_layer_free(g.ls[i].layer); /* never called */
        free(g.ls[i].outs);
        free(g.ls[i].n_outs);
        free(g.ls[i].ref_off);
        free(g.ls[i].refs);
    }
    free(g.ls);
    free(g.hash);
    if (r->st) {
        lm_model_free(g.m);
        return NULL;
    }
    return g.m;
}

/* Normalisation layers read with a positive axis: it must be the last one. */
static void check_axes(lm_kc_reader *r, lm_model *m) {
    for (int i = 0; i < r->n_axes && !r->st; i++)
        for (int c = 0; c < m->n_calls; c++)
            if (m->calls[c].layer == r->axes[i].layer && m->calls[c].in[0]) {
                int nd = m->calls[c].in[0]->shape.ndim;
                r->layer = r->axes[i].layer->name;
                r->cls = r->axes[i].layer->vt->class_name;
                if (r->axes[i].axis != nd - 1)
                    lm_kc_fail(r, LM_ERR_UNSUPPORTED,
                               "\"axis\" %d is not the last axis of its %d-dimensional input "
                               "(Lamina normalises over the last axis)",
                               r->axes[i].axis, nd);
                break;
            }
}

lm_model *lm_kc_model_from_cjson(lm_kc_reader *r, const cJSON *root, const cJSON *training_config) {
    const char *cls = class_of(root);
    const cJSON *cfg = get(root, "config");
    if (!cJSON_IsObject(root) || !cls || !cJSON_IsObject(cfg)) {
        lm_kc_fail(r, LM_ERR_FORMAT,
                   "a model config must be an object with \"class_name\" and \"config\"");
        return NULL;
    }
    r->keras2 = !get(root, "module");
    lm_model *m = NULL;
    if (!strcmp(cls, "Sequential")) {
        m = read_sequential(r, cfg);
    } else if (!strcmp(cls, "Functional") || !strcmp(cls, "Model")) {
        m = read_functional(r, cfg);
    } else {
        lm_kc_fail(r, LM_ERR_UNSUPPORTED,
                   "model class \"%.80s\" is not supported (Sequential and Functional are)", cls);
        return NULL;
    }
    if (!m) return NULL;
    m->limit_params = false; /* the model is the caller's now */
    check_axes(r, m);
    r->layer = NULL;
    const cJSON *cc = get(root, "compile_config");
    if (!r->st && cJSON_IsObject(cc) && cc->child)
        lm_kc_compile_from(r, m, cc, false);
    else if (!r->st && cJSON_IsObject(training_config))
        lm_kc_compile_from(r, m, training_config, true);
    if (r->st) {
        lm_model_free(m);
        return NULL;
    }
    return m;
}

lm_model *lm_model_from_json(const char *json) {
    lm_kc_reader r = {0};
    cJSON *root = json ? lm_kc_parse(json, strlen(json)) : NULL;
    if (!root) {
        lm_kc_fail(&r, json ? LM_ERR_FORMAT : LM_ERR_ARG, "model_from_json: %s",
                   json ? "the text is not valid JSON" : "the JSON text is NULL");
        lm_kc_set_error(r.err);
        return NULL;
    }
    lm_model *m = lm_kc_model_from_cjson(&r, root, NULL);
    cJSON_Delete(root);
    lm_kc_set_error(m ? "" : r.err);
    return m;
}
