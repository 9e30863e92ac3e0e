/* Graph building: nodes, sources, sticky errors. */
#include "core/tensor_impl.h"
#include "graph/graph_impl.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lm_graph *lm_graph_new(lm_ctx *ctx) {
    if (!ctx) return NULL;
    lm_graph *g = calloc(1, sizeof *g);
    if (!g) {
        lm_fail(ctx, LM_ERR_OOM, "out of memory creating a graph");
        return NULL;
    }
    g->ctx = ctx;
    return g;
}

void lm_graph_free(lm_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++) {
        lm_tensor_free(g->nodes[i]->value);
        free(g->nodes[i]->name);
        free(g->nodes[i]);
    }
    free(g->nodes);
    free(g);
}

lm_ctx *lm_graph_ctx(const lm_graph *g) {
    return g ? g->ctx : NULL;
}
lm_status lm_graph_status(const lm_graph *g) {
    return g ? g->err : LM_ERR_ARG;
}
const char *lm_graph_error(const lm_graph *g) {
    return g ? g->errmsg : "no graph";
}
int lm_graph_size(const lm_graph *g) {
    return g ? g->n_nodes : 0;
}

void lm_graph_set_scope(lm_graph *g, const char *scope) {
    if (!g) return;
    snprintf(g->scope, sizeof g->scope, "%s", scope ? scope : "");
}

static void graph_vfail(lm_graph *g, lm_status s, const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (g->err == LM_OK) {
        g->err = s;
        snprintf(g->errmsg, sizeof g->errmsg, "%s", msg);
    }
    lm_fail(g->ctx, s, "%s", msg);
}

lm_node *lm_graph_fail(lm_graph *g, lm_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    graph_vfail(g, s, fmt, ap);
    va_end(ap);
    return NULL;
}

const char *lm_shp(lm_shape s, char buf[static 96]) {
    return lm_shape_str(s, buf, 96);
}

static void infer_prefix(const lm_infer *s, char *buf, size_t len) {
    const lm_graph *g = s->node ? s->node->g : NULL;
    if (g && g->scope[0])
        snprintf(buf, len, "%s/%s", g->scope, s->op_name);
    else
        snprintf(buf, len, "%s", s->op_name);
}

lm_status lm_infer_fail(lm_infer *s, lm_status st, const char *fmt, ...) {
    char pre[200], msg[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    infer_prefix(s, pre, sizeof pre);
    snprintf(s->err, s->errlen, "%s: %s", pre, msg);
    return st;
}

lm_status lm_kernel_fail(lm_kcall *c, lm_status st, const char *fmt, ...) {
    char msg[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lm_fail(c->env->ctx, st, "%s: %s", c->node ? c->node->name : "kernel", msg);
}

lm_status lm_infer_broadcast(lm_infer *s, lm_shape a, lm_shape b, lm_shape *out) {
    lm_shape r = {a.ndim > b.ndim ? a.ndim : b.ndim, {0}};
    for (int i = 0; i < r.ndim; i++) {
        int ia = a.ndim - r.ndim + i, ib = b.ndim - r.ndim + i;
        int64_t da = ia >= 0 ? a.dims[ia] : 1, db = ib >= 0 ? b.dims[ib] : 1;
        int64_t d;
        if (da == db)
            d = da;
        else if (da == 1)
            d = db;
        else if (db == 1)
            d = da;
        else if (da == -1)
            d = db; /* unknown meets known: the known size must hold */
        else if (db == -1)
            d = da;
        else {
            char x[96], y[96];
            return lm_infer_fail(s, LM_ERR_SHAPE, "shapes %s and %s cannot be broadcast together",
                                 lm_shp(a, x), lm_shp(b, y));
        }
        r.dims[i] = d;
    }
    *out = r;
    return LM_OK;
}

lm_status lm_infer_axis(lm_infer *s, int axis, int ndim, int *out) {
    int a = axis < 0 ? axis + ndim : axis;
    if (a < 0 || a >= ndim)
        return lm_infer_fail(s, LM_ERR_ARG, "axis %d is out of range for %d dimensions", axis,
                             ndim);
    *out = a;
    return LM_OK;
}

static lm_node *node_alloc(lm_graph *g, int op) {
    if (g->n_nodes == g->cap) {
        int cap = g->cap ? g->cap * 2 : 64;
        lm_node **nn = realloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn) return lm_graph_fail(g, LM_ERR_OOM, "out of memory growing the graph");
        g->nodes = nn;
        g->cap = cap;
    }
    lm_node *n = calloc(1, sizeof *n);
    if (!n) return lm_graph_fail(g, LM_ERR_OOM, "out of memory creating a node");
    n->g = g;
    n->op = op;
    n->id = g->n_nodes;
    return n;
}

static lm_status node_set_name(lm_node *n, const char *name) {
    char buf[64];
    if (!name) {
        snprintf(buf, sizeof buf, "%s_%d", lm_op_get(n->op)->name, n->id);
        name = buf;
    }
    char *c = strdup(name);
    if (!c) return LM_ERR_OOM;
    free(n->name);
    n->name = c;
    return LM_OK;
}

/* Appends a fully formed node; frees it on failure. */
static lm_node *node_commit(lm_graph *g, lm_node *n, const char *name) {
    if (node_set_name(n, name) != LM_OK) {
        free(n);
        return lm_graph_fail(g, LM_ERR_OOM, "out of memory naming a node");
    }
    g->nodes[g->n_nodes++] = n;
    return n;
}

lm_node *lm_node_make(lm_graph *g, int op, int n_in, lm_node *const *in, const lm_params *p) {
    if (!g) return NULL;
    const lm_op_def *def = lm_op_get(op);
    if (!def) return lm_graph_fail(g, LM_ERR_ARG, "unknown op %d", op);
    if (n_in < def->min_in || n_in > def->max_in || n_in > LM_MAX_INPUTS)
        return lm_graph_fail(g, LM_ERR_ARG, "%s: takes %d to %d inputs, got %d", def->name,
                             def->min_in, def->max_in, n_in);
    for (int i = 0; i < n_in; i++) {
        if (!in[i]) {
            if (g->err != LM_OK) return NULL; /* an earlier error already explains it */
            return lm_graph_fail(g, LM_ERR_ARG, "%s: input %d is NULL", def->name, i);
        }
        if (in[i]->g != g)
            return lm_graph_fail(g, LM_ERR_ARG, "%s: input %d belongs to another graph", def->name,
                                 i);
    }
    lm_infer s;
    memset(&s, 0, sizeof s);
    char err[1024] = "";
    lm_params pz = lm_params_zero();
    s.p = p ? p : &pz;
    s.n_in = n_in;
    s.op_name = def->name;
    s.err = err;
    s.errlen = sizeof err;
    for (int i = 0; i < n_in; i++) {
        s.in[i] = in[i]->shape;
        s.in_dt[i] = in[i]->dt;
    }
    lm_node *n = node_alloc(g, op);
    if (!n) return NULL;
    if (p) n->p = *p;
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    s.node = n;
    s.p = &n->p;
    lm_status st = def->infer(&s);
    if (st != LM_OK) {
        free(n);
        return lm_graph_fail(g, st, "%s", err[0] ? err : "shape inference failed");
    }
    n->shape = s.out;
    n->dt = s.out_dt;
    return node_commit(g, n, NULL);
}

lm_node *lm_placeholder(lm_graph *g, lm_dtype dt, lm_shape shape, const char *name) {
    if (!g) return NULL;
    char b[96];
    if (!lm_dtype_size(dt)) return lm_graph_fail(g, LM_ERR_DTYPE, "placeholder: invalid dtype");
    if (!lm_shape_valid(shape, true))
        return lm_graph_fail(g, LM_ERR_SHAPE, "placeholder %s: invalid shape %s", name ? name : "",
                             lm_shp(shape, b));
    lm_node *n = node_alloc(g, LM_OP_PLACEHOLDER);
    if (!n) return NULL;
    n->dt = dt;
    n->shape = shape;
    return node_commit(g, n, name);
}

static lm_node *node_with_value(lm_graph *g, int op, const char *name, lm_tensor *v) {
    lm_node *n = node_alloc(g, op);
    if (!n) {
        lm_tensor_free(v);
        return NULL;
    }
    n->dt = v->dt;
    n->shape = lm_tensor_shape(v);
    n->value = v;
    lm_node *r = node_commit(g, n, name);
    if (!r) lm_tensor_free(v);
    return r;
}

lm_node *lm_variable(lm_graph *g, const char *name, lm_dtype dt, lm_shape shape) {
    if (!g) return NULL;
    char b[96];
    if (!lm_shape_valid(shape, false))
        return lm_graph_fail(g, LM_ERR_SHAPE, "variable %s: invalid shape %s", name ? name : "",
                             lm_shp(shape, b));
    if (name)
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i]->op == LM_OP_VARIABLE && !strcmp(g->nodes[i]->name, name))
                return lm_graph_fail(g, LM_ERR_ARG, "variable name \"%s\" is already used", name);
    lm_tensor *v = lm_tensor_new(g->ctx, dt, shape);
    if (!v)
        return lm_graph_fail(g, LM_ERR_OOM, "variable %s: %s", name ? name : "",
                             lm_ctx_error(g->ctx));
    return node_with_value(g, LM_OP_VARIABLE, name, v);
}

lm_node *lm_variable_shared(lm_graph *g, const char *name, lm_tensor *storage) {
    if (!g) return NULL;
    if (!storage)
        return lm_graph_fail(g, LM_ERR_ARG, "variable %s: storage is NULL", name ? name : "");
    if (!lm_tensor_is_contiguous(storage))
        return lm_graph_fail(g, LM_ERR_ARG, "variable %s: storage is not contiguous",
                             name ? name : "");
    lm_tensor *v = malloc(sizeof *v);
    if (!v) return lm_graph_fail(g, LM_ERR_OOM, "variable %s: out of memory", name ? name : "");
    *v = *storage;
    v->buf->refs++;
    return node_with_value(g, LM_OP_VARIABLE, name, v);
}

lm_node *lm_constant(lm_graph *g, const lm_tensor *value) {
    if (!g) return NULL;
    if (!value) return lm_graph_fail(g, LM_ERR_ARG, "constant: value is NULL");
    lm_tensor *v = lm_tensor_clone(value);
    if (!v) return lm_graph_fail(g, LM_ERR_OOM, "constant: %s", lm_ctx_error(g->ctx));
    return node_with_value(g, LM_OP_CONSTANT, NULL, v);
}

lm_node *lm_scalar(lm_graph *g, float x) {
    if (!g) return NULL;
    lm_tensor *v = lm_tensor_new(g->ctx, LM_F32, LM_SCALAR);
    if (!v) return lm_graph_fail(g, LM_ERR_OOM, "scalar: out of memory");
    *lm_tensor_f32(v) = x;
    return node_with_value(g, LM_OP_CONSTANT, NULL, v);
}

lm_tensor *lm_variable_value(lm_node *n) {
    return n ? n->value : NULL;
}

lm_shape lm_node_shape(const lm_node *n) {
    lm_shape s = {0, {0}};
    return n ? n->shape : s;
}
int lm_node_ndim(const lm_node *n) {
    return n ? n->shape.ndim : -1;
}
lm_dtype lm_node_dtype(const lm_node *n) {
    return n ? n->dt : LM_DTYPE_COUNT;
}
const char *lm_node_name(const lm_node *n) {
    return n ? n->name : "";
}
lm_status lm_node_set_name(lm_node *n, const char *name) {
    if (!n || !name) return LM_ERR_ARG;
    return node_set_name(n, name);
}
const char *lm_node_op(const lm_node *n) {
    return n ? lm_op_get(n->op)->name : "";
}
lm_graph *lm_node_graph(const lm_node *n) {
    return n ? n->g : NULL;
}

bool lm_same_static_shape(const lm_node *a, const lm_node *b) {
    if (a->shape.ndim != b->shape.ndim) return false;
    for (int i = 0; i < a->shape.ndim; i++)
        if (a->shape.dims[i] != b->shape.dims[i]) return false;
    return true;
}

lm_status lm_graph_print(const lm_graph *g, FILE *f) {
    if (!g || !f) return LM_ERR_ARG;
    for (int i = 0; i < g->n_nodes; i++) {
        const lm_node *n = g->nodes[i];
        char b[96];
        fprintf(f, "%4d %-24s %-20s %-8s %s <-", n->id, n->name, lm_op_get(n->op)->name,
                lm_dtype_name(n->dt), lm_shp(n->shape, b));
        for (int j = 0; j < n->n_in; j++) fprintf(f, " %d", n->in[j]->id);
        fputc('\n', f);
    }
    return LM_OK;
}
