/* Keras 3's HDF5 weights layout (keras/src/saving/saving_lib.py, H5IOStore):
 * the object paths of a model's layers and optimizer, writing them, and
 * reading them back through the staged loader of keras_weights_load.c. See
 * keras_weights.h for the layout. */
#include "io/keras_weights_impl.h"
#include "core/tensor_impl.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define KW_PATH 512

/* ---- names and order ---- */

void lm_keras_snake_case(const char *name, char *out, size_t n) {
    /* re.sub(r"\W+", "", name) */
    char a[256], b[512];
    size_t la = 0;
    for (const char *p = name; *p && la + 1 < sizeof a; p++)
        if (isalnum((unsigned char)*p) || *p == '_') a[la++] = *p;
    a[la] = 0;
    /* re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name): leftmost, non-overlapping */
    size_t lb = 0;
    for (size_t i = 0; i < la && lb + 3 < sizeof b;) {
        if (i + 2 < la && isupper((unsigned char)a[i + 1]) && islower((unsigned char)a[i + 2])) {
            b[lb++] = a[i];
            b[lb++] = '_';
            size_t j = i + 1;
            b[lb++] = a[j++];
            while (j < la && islower((unsigned char)a[j]) && lb + 1 < sizeof b) b[lb++] = a[j++];
            i = j;
        } else {
            b[lb++] = a[i++];
        }
    }
    b[lb] = 0;
    /* re.sub("([a-z])([A-Z])", r"\1_\2", name).lower() */
    size_t k = 0;
    for (size_t i = 0; i < lb && k + 3 < n;) {
        if (i + 1 < lb && islower((unsigned char)b[i]) && isupper((unsigned char)b[i + 1])) {
            out[k++] = b[i];
            out[k++] = '_';
            out[k++] = (char)tolower((unsigned char)b[i + 1]);
            i += 2;
        } else {
            out[k++] = (char)tolower((unsigned char)b[i++]);
        }
    }
    if (n) out[k < n ? k : n - 1] = 0;
}

bool kw_model_built(const lm_model *m) {
    if (m->n_layers == 0 && m->n_inputs == 0) return false;
    for (int i = 0; i < m->n_layers; i++)
        if (!m->layers[i]->built) return false;
    return true;
}

/* Keras's map_graph / _build_map over the call records. Nodes: calls
 * 0..nc-1, then model inputs; operations: m->layers, then the inputs. */
typedef struct graph_walk {
    lm_model *m;
    int nc, nl;
    char *finished;
    int *order, n_order; /* nodes from the inputs to the outputs */
    int *op_index, n_ops_seen;
} graph_walk;

static int node_of(const lm_kt *t, int nc) {
    return t->call >= 0 ? t->call : t->input >= 0 ? nc + t->input : -1;
}

static int op_of(const graph_walk *g, int node) {
    if (node >= g->nc) return g->nl + (node - g->nc);
    const lm_layer *l = g->m->calls[node].layer;
    for (int i = 0; i < g->nl; i++)
        if (g->m->layers[i] == l) return i;
    return -1;
}

static void build_map(graph_walk *g, const lm_kt *t) {
    int node = node_of(t, g->nc);
    if (node < 0 || g->finished[node]) return;
    int op = op_of(g, node);
    if (op >= 0 && g->op_index[op] < 0) g->op_index[op] = g->n_ops_seen++;
    if (node < g->nc) {
        const lm_call_rec *c = &g->m->calls[node];
        for (int i = 0; i < c->n_in; i++) build_map(g, c->in[i]);
    }
    g->finished[node] = 1;
    g->order[g->n_order++] = node;
}

int lm_keras_layer_order(lm_model *m, lm_layer **layers, int *inputs, int max) {
    int n = 0;
    if (m->sequential) {
        for (int i = 0; i < m->n_layers; i++, n++)
            if (n < max) {
                layers[n] = m->layers[i];
                if (inputs) inputs[n] = -1;
            }
        return n;
    }
    graph_walk g = {.m = m, .nc = m->n_calls, .nl = m->n_layers};
    int nn = g.nc + m->n_inputs, nops = g.nl + m->n_inputs;
    g.finished = calloc((size_t)nn + 1, 1);
    g.order = malloc(((size_t)nn + 1) * sizeof *g.order);
    g.op_index = malloc(((size_t)nops + 1) * sizeof *g.op_index);
    int *node_depth = malloc(((size_t)nn + 1) * sizeof *node_depth);
    int *op_depth = malloc(((size_t)nops + 1) * sizeof *op_depth);
    int *ops = malloc(((size_t)nops + 1) * sizeof *ops);
    if (!g.finished || !g.order || !g.op_index || !node_depth || !op_depth || !ops) {
        n = -1;
        goto done;
    }
    for (int i = 0; i < nops; i++) g.op_index[i] = -2, op_depth[i] = -1;
    for (int i = 0; i < nn; i++) node_depth[i] = -1;
    for (int i = 0; i < m->n_outputs; i++) build_map(&g, m->outputs[i]);
    for (int k = g.n_order - 1; k >= 0; k--) {
        int node = g.order[k], op = op_of(&g, node);
        int depth = node_depth[node] < 0 ? 0 : node_depth[node];
        if (op >= 0 && op_depth[op] > depth) depth = op_depth[op];
        if (op >= 0) op_depth[op] = depth;
        node_depth[node] = depth;
        if (node >= g.nc) continue;
        const lm_call_rec *c = &m->calls[node];
        for (int i = 0; i < c->n_in; i++) {
            int p = node_of(c->in[i], g.nc);
            if (p >= 0 && g.finished[p] && node_depth[p] < depth + 1) node_depth[p] = depth + 1;
        }
    }
    /* Inputs that reach no output: depth 0, before the others of that depth. */
    for (int i = 0; i < m->n_inputs; i++)
        if (op_depth[g.nl + i] < 0) op_depth[g.nl + i] = 0, g.op_index[g.nl + i] = -1;
    int nsel = 0;
    for (int i = 0; i < nops; i++)
        if (op_depth[i] >= 0) ops[nsel++] = i;
    /* Depth descending, then traversal index (insertion sort: stable). */
    for (int i = 1; i < nsel; i++) {
        int v = ops[i], j = i - 1;
        while (j >= 0 && (op_depth[ops[j]] < op_depth[v] || (op_depth[ops[j]] == op_depth[v] &&
                                                             g.op_index[ops[j]] > g.op_index[v]))) {
            ops[j + 1] = ops[j];
            j--;
        }
        ops[j + 1] = v;
    }
    for (int i = 0; i < nsel; i++, n++)
        if (n < max) {
            bool in = ops[i] >= g.nl;
            layers[n] = in ? NULL : m->layers[ops[i]];
            if (inputs) inputs[n] = in ? ops[i] - g.nl : -1;
        }
    /* Layers outside the graph (Keras would have none): kept, at the end. */
    for (int i = 0; i < g.nl; i++)
        if (op_depth[i] < 0) {
            if (n < max) {
                layers[n] = m->layers[i];
                if (inputs) inputs[n] = -1;
            }
            n++;
        }
done:
    free(g.finished);
    free(g.order);
    free(g.op_index);
    free(node_depth);
    free(op_depth);
    free(ops);
    return n;
}

/* ---- the plan: every Keras object with a vars group ---- */

typedef struct kw_obj {
    char path[KW_PATH]; /* "" for the model, "layers/dense_1", ".../cell" */
    char *name;         /* the "name" attribute */
    const lm_layer *layer;
    int n;
    lm_weight *w[LM_MAX_WEIGHTS];
} kw_obj;

typedef struct kw_plan {
    int n, cap;
    kw_obj *o;
} kw_plan;

static void plan_free(kw_plan *p) {
    for (int i = 0; i < p->n; i++) free(p->o[i].name);
    free(p->o);
}

static kw_obj *plan_add(kw_plan *p, const char *path, const char *name, const lm_layer *l) {
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        kw_obj *o = realloc(p->o, (size_t)cap * sizeof *o);
        if (!o) return NULL;
        p->o = o;
        p->cap = cap;
    }
    kw_obj *o = &p->o[p->n];
    memset(o, 0, sizeof *o);
    if (snprintf(o->path, sizeof o->path, "%s", path) >= (int)sizeof o->path ||
        !(o->name = strdup(name ? name : "")))
        return NULL;
    o->layer = l;
    p->n++;
    return o;
}

static bool is_rnn(const lm_layer *l) {
    const char *c = l->vt->class_name;
    return !strcmp(c, "SimpleRNN") || !strcmp(c, "LSTM") || !strcmp(c, "GRU");
}

static lm_status plan_layer(kw_plan *p, const lm_layer *l, const char *path) {
    kw_obj *o = plan_add(p, path, l->name, l);
    if (!o) return LM_ERR_OOM;
    if (!strcmp(l->vt->class_name, "Bidirectional")) {
        char sub[KW_PATH];
        for (int k = 0; k < 2; k++) {
            if (!l->inner[k]) continue;
            snprintf(sub, sizeof sub, "%s/%s", path, k ? "backward_layer" : "forward_layer");
            lm_status st = plan_layer(p, l->inner[k], sub);
            if (st) return st;
        }
        return LM_OK;
    }
    if (is_rnn(l)) { /* the variables belong to the cell: "lstm_cell" */
        char sub[KW_PATH], cell[64];
        lm_keras_snake_case(l->vt->class_name, cell, sizeof cell - 6);
        strcat(cell, "_cell");
        snprintf(sub, sizeof sub, "%s/cell", path);
        if (!(o = plan_add(p, sub, cell, l))) return LM_ERR_OOM;
    }
    for (int i = 0; i < l->n_weights; i++) o->w[o->n++] = (lm_weight *)&l->w[i];
    return LM_OK;
}

/* The model's objects in Keras's saving order: the model, its layers. */
static lm_status plan_model(lm_model *m, kw_plan *p) {
    memset(p, 0, sizeof *p);
    int cap = m->n_layers + m->n_inputs + 1, n;
    lm_layer **ls = malloc((size_t)cap * sizeof *ls);
    int *ins = malloc((size_t)cap * sizeof *ins);
    struct {
        char base[64];
        int count;
    } *used = calloc((size_t)cap, sizeof *used);
    lm_status st = LM_OK;
    if (!ls || !ins || !used || (n = lm_keras_layer_order(m, ls, ins, cap)) < 0 || n > cap ||
        !plan_add(p, "", m->name, NULL)) {
        st = LM_ERR_OOM;
        goto done;
    }
    int n_used = 0;
    for (int i = 0; i < n && !st; i++) {
        char snake[64], path[KW_PATH];
        lm_keras_snake_case(ls[i] ? ls[i]->vt->class_name : "InputLayer", snake, sizeof snake);
        /* _get_unique_name: dense, dense_1, dense_2... */
        int k = 0;
        while (k < n_used && strcmp(used[k].base, snake)) k++;
        if (k == n_used) {
            snprintf(used[k].base, sizeof used[k].base, "%s", snake);
            used[k].count = -1;
            n_used++;
        }
        if (++used[k].count)
            snprintf(path, sizeof path, "layers/%s_%d", snake, used[k].count);
        else
            snprintf(path, sizeof path, "layers/%s", snake);
        if (ls[i])
            st = plan_layer(p, ls[i], path);
        else if (!plan_add(p, path, m->inputs[ins[i]]->name, NULL))
            st = LM_ERR_OOM;
    }
done:
    free(ls);
    free(ins);
    free(used);
    if (st) plan_free(p);
    return st;
}

int kw_keras_trainable(lm_model *m, lm_weight **out, int max) {
    kw_plan p;
    if (plan_model(m, &p)) return -1;
    int n = 0;
    for (int i = 0; i < p.n; i++)
        for (int j = 0; j < p.o[i].n; j++)
            if (p.o[i].w[j]->trainable) {
                if (n < max) out[n] = p.o[i].w[j];
                n++;
            }
    plan_free(&p);
    return n;
}

static int legacy_walk(lm_layer *l, lm_weight **out, int n, int max, bool trainable) {
    for (int k = 0; k < 2; k++)
        if (l->inner[k]) n = legacy_walk(l->inner[k], out, n, max, trainable);
    for (int i = 0; i < l->n_weights; i++)
        if (l->w[i].trainable == trainable) {
            if (n < max) out[n] = &l->w[i];
            n++;
        }
    return n;
}

int kw_legacy_weights(lm_layer *l, lm_weight **out, int max) {
    int n = legacy_walk(l, out, 0, max, true);
    return legacy_walk(l, out, n, max, false);
}

/* ---- writing ---- */

typedef struct kw_writer {
    lm_model *m;
    const char *who;
    hid_t lcpl, ocpl, dcpl, str_t;
    lm_status st;
} kw_writer;

static lm_status wfail(kw_writer *w, const char *what, const char *path) {
    char d[256];
    kw_h5_detail(d, sizeof d);
    if (!w->st)
        w->st = lm_fail(w->m->ctx, LM_ERR_IO, "%s: cannot write %s %s of model %s%s%s", w->who,
                        what, path, w->m->name, *d ? ": " : "", d);
    return w->st;
}

static uint32_t crc_le(const void *p, size_t n, size_t elem) {
    uLong crc = crc32(0L, Z_NULL, 0);
    const unsigned char *b = p;
    const uint16_t one = 1;
    if (*(const unsigned char *)&one == 1 || elem == 1) {
        while (n > 0) { /* zlib takes uInt lengths */
            uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
            crc = crc32(crc, b, k);
            b += k;
            n -= k;
        }
        return (uint32_t)crc;
    }
    unsigned char e[16];
    for (size_t i = 0; i + elem <= n && elem <= sizeof e; i += elem) {
        for (size_t j = 0; j < elem; j++) e[j] = b[i + elem - 1 - j];
        crc = crc32(crc, e, (uInt)elem);
    }
    return (uint32_t)crc;
}

uint32_t kw_crc_le(const void *p, size_t n, size_t elem);
uint32_t kw_crc_le(const void *p, size_t n, size_t elem) {
    return crc_le(p, n, elem);
}

static lm_status put_name(kw_writer *w, hid_t g, const char *path, const char *name) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp < 0 ? -1 : H5Acreate2(g, "name", w->str_t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, w->str_t, &name) < 0) wfail(w, "the name attribute of", path);
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return w->st;
}

static lm_status put_u32_attr(kw_writer *w, hid_t obj, const char *attr, const char *path,
                              uint32_t v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp < 0 ? -1 : H5Acreate2(obj, attr, H5T_STD_U32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, H5T_NATIVE_UINT32, &v) < 0) wfail(w, "an attribute of", path);
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return w->st;
}

/* A dataset named key in g; data holds numel values of mem_t. */
static lm_status put_data(kw_writer *w, hid_t g, const char *path, const char *key, hid_t file_t,
                          hid_t mem_t, lm_shape s, const void *data) {
    char where[KW_PATH + 16];
    snprintf(where, sizeof where, "%s/%s", path, key);
    hsize_t dims[LM_MAX_DIMS];
    for (int d = 0; d < s.ndim; d++) dims[d] = (hsize_t)s.dims[d];
    hid_t sp = s.ndim ? H5Screate_simple(s.ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t ds = sp < 0 ? -1 : H5Dcreate2(g, key, file_t, sp, w->lcpl, w->dcpl, H5P_DEFAULT);
    int64_t numel = lm_shape_numel(s);
    size_t es = H5Tget_size(mem_t);
    if (ds < 0 || (numel > 0 && H5Dwrite(ds, mem_t, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
        wfail(w, "dataset", where);
    else
        put_u32_attr(w, ds, "lamina_crc32", where, crc_le(data, (size_t)numel * es, es));
    if (ds >= 0) H5Dclose(ds);
    if (sp >= 0) H5Sclose(sp);
    return w->st;
}

/* "<path>/vars" (or "vars" at the root) with its name attribute. The groups
 * above it are made here too, with the same properties (HDF5's
 * intermediate groups would take the defaults: timestamps, dense links). */
static hid_t put_vars_group(kw_writer *w, hid_t loc, const char *path, const char *name) {
    char gp[KW_PATH + 8];
    snprintf(gp, sizeof gp, "%s%svars", path, *path ? "/" : "");
    for (char *s = strchr(gp, '/'); s && !w->st; s = strchr(s + 1, '/')) {
        *s = 0;
        hid_t up = H5Lexists(loc, gp, H5P_DEFAULT) > 0
                       ? 0
                       : H5Gcreate2(loc, gp, w->lcpl, w->ocpl, H5P_DEFAULT);
        if (up < 0) wfail(w, "group", gp);
        if (up > 0) H5Gclose(up);
        *s = '/';
    }
    if (w->st) return -1;
    hid_t g = H5Gcreate2(loc, gp, w->lcpl, w->ocpl, H5P_DEFAULT);
    if (g < 0) {
        wfail(w, "group", gp);
        return -1;
    }
    if (put_name(w, g, gp, name)) {
        H5Gclose(g);
        return -1;
    }
    return g;
}

static lm_status put_weight(kw_writer *w, hid_t g, const char *gp, int i, const lm_weight *wt) {
    char key[16];
    snprintf(key, sizeof key, "%d", i);
    const lm_tensor *v = wt->value;
    lm_dtype dt = lm_tensor_dtype(v);
    if (dt != LM_F32 && dt != LM_F64) {
        w->st = lm_fail(w->m->ctx, LM_ERR_ARG,
                        "%s: weight %s of model %s is %s; only float32 and "
                        "float64 weights can be saved",
                        w->who, wt->name, w->m->name, lm_dtype_name(dt));
        return w->st;
    }
    lm_tensor *tmp = lm_tensor_is_contiguous(v) ? NULL : lm_tensor_clone(v);
    if (!lm_tensor_is_contiguous(v) && !tmp)
        return w->st = lm_fail(w->m->ctx, LM_ERR_OOM, "%s: out of memory", w->who);
    const void *data = lm_tensor_cdata(tmp ? tmp : v);
    put_data(w, g, gp, key, dt == LM_F32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE,
             dt == LM_F32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE, lm_tensor_shape(v), data);
    lm_tensor_free(tmp);
    return w->st;
}

/* Keras's name of an optimizer: to_snake_case of its class. */
static void opt_keras_name(const lm_optimizer *o, char *out, size_t n) {
    static const char *cls[] = {[LM_OPT_SGD] = "SGD",
                                [LM_OPT_ADAM] = "Adam",
                                [LM_OPT_ADAMW] = "AdamW",
                                [LM_OPT_RMSPROP] = "RMSprop",
                                [LM_OPT_ADAGRAD] = "Adagrad"};
    lm_keras_snake_case(cls[o->kind], out, n);
}

int kw_opt_slot_count(const lm_optimizer *o);
int kw_opt_slot_count(const lm_optimizer *o) {
    switch (o->kind) {
    case LM_OPT_SGD:
        return o->momentum != 0;
    case LM_OPT_ADAM:
    case LM_OPT_ADAMW:
        return 2 + (o->amsgrad ? 1 : 0);
    case LM_OPT_RMSPROP:
        return 1 + (o->momentum > 0) + (o->centered ? 1 : 0);
    case LM_OPT_ADAGRAD:
        return 1;
    }
    return 0;
}

/* Keras's optimizer.variables after iterations and learning_rate: for each
 * add_optimizer_variables call (Adam: momentum and velocity together, then
 * velocity_hat; the others one slot per call), per trainable variable in
 * Keras order, per slot of the call. Fills slot[] and var[] (indices into
 * the Keras trainable order); returns the count. */
int kw_opt_order(const lm_optimizer *o, int n_train, int *slot, int *var);
int kw_opt_order(const lm_optimizer *o, int n_train, int *slot, int *var) {
    int ns = kw_opt_slot_count(o), n = 0;
    bool adam = o->kind == LM_OPT_ADAM || o->kind == LM_OPT_ADAMW;
    for (int k0 = 0; k0 < ns;) {
        int gs = adam && k0 == 0 ? 2 : 1;
        for (int v = 0; v < n_train; v++)
            for (int k = k0; k < k0 + gs; k++) slot[n] = k, var[n++] = v;
        k0 += gs;
    }
    return n;
}

/* Whether the optimizer holds state for exactly these trainable weights. */
bool kw_opt_built_for(const lm_optimizer *o, int n, lm_weight *const *train);
bool kw_opt_built_for(const lm_optimizer *o, int n, lm_weight *const *train) {
    if (!o->offsets || o->n_vars != n || o->n_slots != kw_opt_slot_count(o)) return false;
    for (int i = 0; i < n; i++)
        if (o->sizes[i] != lm_tensor_numel(train[i]->value)) return false;
    return true;
}

static lm_status put_optimizer(kw_writer *w, hid_t loc, const lm_optimizer *o) {
    lm_model *m = w->m;
    char name[32];
    opt_keras_name(o, name, sizeof name);
    hid_t g = put_vars_group(w, loc, "optimizer", name);
    if (g < 0) return w->st;
    int nw = lm_model_weights(m, NULL, 0), nt = 0, nk;
    lm_weight **all = malloc((size_t)(nw + 1) * sizeof *all);
    lm_weight **kt = malloc((size_t)(nw + 1) * sizeof *kt);
    int *slot = malloc((size_t)(nw * LM_OPT_MAX_SLOTS + 1) * sizeof *slot);
    int *var = malloc((size_t)(nw * LM_OPT_MAX_SLOTS + 1) * sizeof *var);
    if (!all || !kt || !slot || !var || (nk = kw_keras_trainable(m, kt, nw)) < 0) {
        w->st = lm_fail(m->ctx, LM_ERR_OOM, "%s: out of memory", w->who);
        goto done;
    }
    /* The optimizer's variables follow lm_model_weights order (compile.c). */
    lm_model_weights(m, all, nw);
    for (int i = 0; i < nw; i++)
        if (all[i]->trainable) all[nt++] = all[i];
    int64_t iters = o->iterations;
    float lr = (float)o->lr;
    int key = 0;
    char k[16];
    snprintf(k, sizeof k, "%d", key++);
    if (put_data(w, g, "optimizer/vars", k, H5T_STD_I64LE, H5T_NATIVE_INT64, LM_SCALAR, &iters))
        goto done;
    if (!o->schedule) {
        snprintf(k, sizeof k, "%d", key++);
        if (put_data(w, g, "optimizer/vars", k, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, LM_SCALAR, &lr))
            goto done;
    }
    if (nk != nt || !kw_opt_built_for(o, nt, all)) goto done; /* not built: as Keras */
    int np = kw_opt_order(o, nk, slot, var);
    for (int p = 0; p < np && !w->st; p++) {
        int li = 0; /* the Keras variable's index in the optimizer's order */
        while (li < nt && all[li] != kt[var[p]]) li++;
        if (li == nt) {
            w->st =
                lm_fail(m->ctx, LM_ERR_STATE, "%s: internal: trainable weights disagree", w->who);
            break;
        }
        snprintf(k, sizeof k, "%d", key++);
        put_data(w, g, "optimizer/vars", k, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                 lm_tensor_shape(all[li]->value), o->slot[slot[p]] + o->offsets[li]);
    }
done:
    H5Gclose(g);
    free(all);
    free(kt);
    free(slot);
    free(var);
    return w->st;
}

lm_status lm_h5_write_model_weights_ex(lm_model *m, hid_t loc, const lm_h5_io_opts *o) {
    if (!m) return LM_ERR_ARG;
    kw_writer w = {.m = m, .who = o && o->who ? o->who : "keras weights"};
    if (!kw_model_built(m))
        return lm_fail(m->ctx, LM_ERR_STATE,
                       "%s: model %s has not been built yet; build it (give its input shape or "
                       "call it on data) before saving its weights",
                       w.who, m->name);
    kw_plan p;
    if (plan_model(m, &p)) return lm_fail(m->ctx, LM_ERR_OOM, "%s: out of memory", w.who);
    kw_quiet q;
    kw_quiet_begin(&q);
    /* As h5py: intermediate groups, UTF-8 link names, no timestamps (the
     * same model gives the same bytes). */
    w.lcpl = H5Pcreate(H5P_LINK_CREATE);
    w.ocpl = H5Pcreate(H5P_GROUP_CREATE);
    w.dcpl = H5Pcreate(H5P_DATASET_CREATE);
    w.str_t = H5Tcopy(H5T_C_S1);
    if (w.lcpl < 0 || w.ocpl < 0 || w.dcpl < 0 || w.str_t < 0 ||
        H5Pset_create_intermediate_group(w.lcpl, 1) < 0 ||
        H5Pset_char_encoding(w.lcpl, H5T_CSET_UTF8) < 0 || H5Pset_obj_track_times(w.ocpl, 0) < 0 ||
        /* Links stay in the (checksummed) group header, never in a heap. */
        H5Pset_link_phase_change(w.ocpl, 65535, 65534) < 0 ||
        H5Pset_obj_track_times(w.dcpl, 0) < 0 || H5Tset_size(w.str_t, H5T_VARIABLE) < 0 ||
        H5Tset_cset(w.str_t, H5T_CSET_UTF8) < 0)
        wfail(&w, "the property lists for", "the file");
    if (!w.st && o && o->epoch >= 0) {
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(loc, "lamina_epoch", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        if (a < 0 || H5Awrite(a, H5T_NATIVE_INT64, &o->epoch) < 0)
            wfail(&w, "attribute", "lamina_epoch");
        if (a >= 0) H5Aclose(a);
        if (sp >= 0) H5Sclose(sp);
    }
    for (int i = 0; i < p.n && !w.st; i++) {
        const kw_obj *ob = &p.o[i];
        hid_t g = put_vars_group(&w, loc, ob->path, ob->name);
        if (g < 0) break;
        char gp[KW_PATH + 8];
        snprintf(gp, sizeof gp, "%s%svars", ob->path, *ob->path ? "/" : "");
        for (int j = 0; j < ob->n && !w.st; j++) put_weight(&w, g, gp, j, ob->w[j]);
        H5Gclose(g);
    }
    lm_optimizer *opt = m->train ? m->train->opt : NULL;
    if (!w.st && o && o->optimizer && opt) put_optimizer(&w, loc, opt);
    H5Pclose(w.lcpl);
    H5Pclose(w.ocpl);
    H5Pclose(w.dcpl);
    H5Tclose(w.str_t);
    kw_quiet_end(&q);
    plan_free(&p);
    return w.st;
}

lm_status lm_h5_write_model_weights(lm_model *m, hid_t loc, bool with_optimizer) {
    lm_h5_io_opts o = {.who = "save", .optimizer = with_optimizer, .epoch = -1};
    return lm_h5_write_model_weights_ex(m, loc, &o);
}

/* ---- reading ---- */

static lm_status read_obj(kw_load *L, hid_t loc, const kw_obj *ob, bool compat) {
    char gp[KW_PATH + 48];
    /* Keras 2.13's .keras files: "_layer_checkpoint_dependencies" for "layers". */
    if (compat && !strncmp(ob->path, "layers/", 7))
        snprintf(gp, sizeof gp, "_layer_checkpoint_dependencies%s/vars", ob->path + 6);
    else
        snprintf(gp, sizeof gp, "%s%svars", ob->path, *ob->path ? "/" : "");
    bool missing = false;
    hid_t g = kw_open(L, loc, gp, H5I_GROUP, &missing);
    hsize_t nl = 0;
    if (g >= 0) {
        H5G_info_t info;
        if (H5Gget_info(g, &info) < 0) {
            H5Gclose(g);
            return kw_fail(L, LM_ERR_IO, "the file is corrupt: cannot list group %s", gp);
        }
        nl = info.nlinks;
    } else if (!missing) {
        return L->st;
    }
    lm_status st = LM_OK;
    if (nl != (hsize_t)ob->n) {
        /* Keras: "Layer 'dense' expected 2 variables, but received 0 ..." */
        char list[512] = "";
        for (int i = 0; i < ob->n; i++) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s'%s'", i ? ", " : "", ob->w[i]->name);
        }
        const lm_layer *ly = ob->layer;
        if (ly)
            st = kw_fail(L, LM_ERR_SHAPE,
                         "layer '%s' (%s) expected %d variables, but received %llu variables "
                         "during loading (group %s%s). Expected: [%s]",
                         ly->name, ly->vt->class_name, ob->n, (unsigned long long)nl, gp,
                         missing ? " is missing" : "", list);
        else
            st = kw_fail(L, LM_ERR_SHAPE, "%s expected no variables, but %s holds %llu", ob->name,
                         gp, (unsigned long long)nl);
    }
    for (int i = 0; i < ob->n && !st; i++) {
        char key[KW_PATH + 80];
        snprintf(key, sizeof key, "%s/%d", gp, i);
        hid_t ds = kw_open(L, loc, key, H5I_DATASET, NULL);
        if (ds < 0) {
            st = L->st;
            break;
        }
        st = kw_stage_weight(L, ds, key, ob->layer, ob->w[i]);
        H5Dclose(ds);
    }
    if (g >= 0) H5Gclose(g);
    return st;
}

static lm_status read_optimizer(kw_load *L, hid_t loc, bool strict) {
    lm_optimizer *o = L->m->train ? L->m->train->opt : NULL;
    if (!o) return LM_OK;
    bool missing = false;
    hid_t g = kw_open(L, loc, "optimizer/vars", H5I_GROUP, &missing);
    if (g < 0) {
        if (!missing) return L->st;
        if (strict) return kw_fail(L, LM_ERR_IO, "the file holds no optimizer state");
        return LM_OK; /* Keras: nothing to load */
    }
    H5G_info_t info;
    lm_status st = LM_OK;
    if (H5Gget_info(g, &info) < 0) {
        H5Gclose(g);
        return kw_fail(L, LM_ERR_IO, "the file is corrupt: cannot list group optimizer/vars");
    }
    if (strict) { /* the same optimizer, not just as many variables */
        char err[128], want[32];
        char *nm = kw_attr_str(g, "name", 256, err, sizeof err);
        opt_keras_name(o, want, sizeof want);
        if (nm) {
            char *u = strrchr(nm, '_'); /* Keras's unique suffix: adam_1 */
            if (u && u[1] && strspn(u + 1, "0123456789") == strlen(u + 1)) *u = 0;
            if (strcmp(nm, want))
                st = kw_fail(L, LM_ERR_STATE,
                             "the optimizer state was saved by optimizer '%s', not by %s's %s", nm,
                             L->m->name, want);
            free(nm);
        }
    }
    /* Datasets are opened only when their count can fit the optimizer. */
    int64_t limit = 2 + (int64_t)LM_OPT_MAX_SLOTS * (lm_model_weights(L->m, NULL, 0) + 1);
    int n = info.nlinks > (hsize_t)INT32_MAX ? INT32_MAX : (int)info.nlinks;
    int na = n > limit ? 0 : n;
    hid_t *ds = calloc((size_t)na + 1, sizeof *ds);
    char(*names)[32] = malloc(((size_t)na + 1) * sizeof *names);
    const char **np = malloc(((size_t)na + 1) * sizeof *np);
    if (!st && (!ds || !names || !np)) st = kw_fail(L, LM_ERR_OOM, "out of memory");
    int opened = 0;
    for (int i = 0; i < na && !st; i++, opened++) {
        snprintf(names[i], sizeof names[i], "optimizer/vars/%d", i);
        np[i] = names[i];
        if ((ds[i] = kw_open(L, loc, names[i], H5I_DATASET, NULL)) < 0) st = L->st;
    }
    if (!st) st = kw_stage_optimizer(L, n, ds, np, strict);
    for (int i = 0; ds && i < opened; i++)
        if (ds[i] > 0) H5Dclose(ds[i]);
    free(ds);
    free(names);
    free(np);
    H5Gclose(g);
    return st;
}

static lm_status read_epoch(kw_load *L, hid_t loc, int64_t *out) {
    *out = -1;
    if (H5Aexists(loc, "lamina_epoch") <= 0) return LM_OK;
    hid_t a = H5Aopen(loc, "lamina_epoch", H5P_DEFAULT);
    hid_t t = a < 0 ? -1 : H5Aget_type(a), sp = a < 0 ? -1 : H5Aget_space(a);
    int64_t v = -1;
    bool ok = t >= 0 && sp >= 0 && H5Tget_class(t) == H5T_INTEGER &&
              H5Sget_simple_extent_type(sp) == H5S_SCALAR &&
              H5Aread(a, H5T_NATIVE_INT64, &v) >= 0 && v >= 0 && v <= (1 << 30);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    if (!ok) return kw_fail(L, LM_ERR_IO, "the lamina_epoch attribute is not a valid epoch count");
    *out = v;
    return LM_OK;
}

lm_status lm_h5_read_model_weights_ex(lm_model *m, hid_t loc, const lm_h5_io_opts *o) {
    if (!m) return LM_ERR_ARG;
    kw_load L;
    kw_load_init(&L, m, o && o->who ? o->who : "keras weights",
                 o && o->src ? o->src : "the HDF5 file");
    if (!kw_model_built(m))
        return kw_fail(&L, LM_ERR_STATE,
                       "model %s has not been built yet; build it (give its input shape or call "
                       "it on data) before loading weights into it",
                       m->name);
    kw_plan p;
    if (plan_model(m, &p)) return kw_fail(&L, LM_ERR_OOM, "out of memory");
    kw_quiet q;
    kw_quiet_begin(&q);
    bool compat = H5Lexists(loc, "layers", H5P_DEFAULT) <= 0 &&
                  H5Lexists(loc, "_layer_checkpoint_dependencies", H5P_DEFAULT) > 0;
    lm_status st = LM_OK;
    int64_t epoch = -1;
    if (o && o->epoch_out) st = read_epoch(&L, loc, &epoch);
    for (int i = 0; i < p.n && !st; i++) st = read_obj(&L, loc, &p.o[i], compat && i > 0);
    if (!st && o && o->optimizer) st = read_optimizer(&L, loc, o->strict_optimizer);
    if (!st) st = kw_commit(&L);
    if (!st && o && o->epoch_out) *o->epoch_out = epoch;
    kw_quiet_end(&q);
    kw_load_free(&L);
    plan_free(&p);
    return st;
}

lm_status lm_h5_read_model_weights(lm_model *m, hid_t loc, bool with_optimizer) {
    lm_h5_io_opts o = {.who = "load", .src = "model.weights.h5", .optimizer = with_optimizer};
    return lm_h5_read_model_weights_ex(m, loc, &o);
}
