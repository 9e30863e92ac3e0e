/* Merge layers: Add, Subtract, Multiply, Average (elementwise) and
 * Concatenate. The elementwise ones follow Keras's Merge rules: the shapes
 * after the batch axis are aligned from the right and each pair of
 * dimensions must be equal or 1; an input of lower rank gets axes of size 1
 * inserted after the batch axis. */
#include "core/core.h"
#include "io/keras_config.h"
#include "nn/nn.h"
#include <stdio.h>
#include <string.h>

enum merge_kind { MERGE_ADD, MERGE_SUB, MERGE_MUL, MERGE_AVG };

typedef struct merge_cfg {
    int kind;
    int axis; /* Concatenate */
} merge_cfg;

/* "(None, 3), (None, 4) and (None, 5)" */
static void shapes_str(int n, lm_node *const *in, char *buf, size_t len) {
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < n && o < len; i++) {
        char a[96];
        const char *sep = i == 0 ? "" : i == n - 1 ? " and " : ", ";
        o += (size_t)snprintf(buf + o, len - o, "%s%s", sep,
                              lm_shape_str(in[i]->shape, a, sizeof a));
    }
}

static lm_status merge_fail(lm_layer *l, lm_graph *g, int n, lm_node *const *in, const char *what) {
    char s[640];
    shapes_str(n, in, s, sizeof s);
    lm_graph_fail(g, LM_ERR_SHAPE, "%s: %s %s", l->name, what, s);
    return LM_ERR_SHAPE;
}

static bool ranked(lm_node *const *in, int n) {
    for (int i = 0; i < n; i++)
        if (in[i]->shape.ndim < 1) return false;
    return true;
}

static lm_status merge_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                            lm_node **out) {
    merge_cfg *c = l->cfg;
    if (!ranked(in, n_in)) return merge_fail(l, g, n_in, in, "inputs need a batch axis, got");
    if (c->kind == MERGE_SUB && n_in != 2)
        return merge_fail(l, g, n_in, in, "a Subtract layer takes exactly 2 inputs, got");
    int nd = 0;
    for (int i = 0; i < n_in; i++)
        if (in[i]->shape.ndim > nd) nd = in[i]->shape.ndim;
    /* Right-aligned compatibility of the non-batch dims. */
    for (int k = 1; k < nd; k++) {
        int64_t d = 1;
        for (int i = 0; i < n_in; i++) {
            lm_shape s = in[i]->shape;
            int at = s.ndim - nd + k;
            if (at < 1) continue;
            int64_t e = s.dims[at];
            if (e == 1 || e == d) continue;
            if (d != 1 && e != d && d >= 0 && e >= 0)
                return merge_fail(l, g, n_in, in, "inputs have incompatible shapes");
            if (d == 1 || d < 0) d = e;
        }
    }
    lm_node *x[LM_MAX_IO] = {NULL};
    for (int i = 0; i < n_in; i++) {
        lm_shape s = in[i]->shape;
        x[i] = in[i];
        if (s.ndim == nd) continue;
        lm_shape r = {nd, {-1}}; /* insert axes of size 1 after the batch */
        int pad = nd - s.ndim;
        for (int k = 1; k < nd; k++) r.dims[k] = k <= pad ? 1 : s.dims[k - pad];
        x[i] = lm_op_reshape(g, in[i], r);
    }
    lm_node *y = x[0];
    for (int i = 1; i < n_in; i++) {
        if (c->kind == MERGE_SUB)
            y = lm_op_sub(g, y, x[i]);
        else if (c->kind == MERGE_MUL)
            y = lm_op_mul(g, y, x[i]);
        else
            y = lm_op_add(g, y, x[i]);
    }
    if (c->kind == MERGE_AVG) y = lm_op_div(g, y, lm_scalar(g, (float)n_in));
    out[0] = y;
    *n_out = 1;
    return LM_OK;
}

static lm_status concat_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                             lm_node **out) {
    merge_cfg *c = l->cfg;
    int nd = in[0]->shape.ndim;
    for (int i = 1; i < n_in; i++)
        if (in[i]->shape.ndim != nd)
            return merge_fail(l, g, n_in, in,
                              "inputs must have the same rank and shape except along the "
                              "concatenation axis, got");
    int axis = c->axis < 0 ? c->axis + nd : c->axis;
    if (axis < 1 || axis >= nd) {
        char s[640];
        shapes_str(n_in, in, s, sizeof s);
        lm_graph_fail(g, LM_ERR_SHAPE, "%s: axis %d is out of range for inputs %s%s", l->name,
                      c->axis, s, axis == 0 ? " (the batch axis cannot be joined)" : "");
        return LM_ERR_SHAPE;
    }
    for (int k = 1; k < nd; k++) {
        if (k == axis) continue;
        for (int i = 1; i < n_in; i++) {
            int64_t a = in[0]->shape.dims[k], b = in[i]->shape.dims[k];
            if (a >= 0 && b >= 0 && a != b) {
                char what[128];
                snprintf(what, sizeof what,
                         "inputs must have matching shapes except along the concatenation axis "
                         "%d, got",
                         c->axis);
                return merge_fail(l, g, n_in, in, what);
            }
        }
    }
    out[0] = lm_op_concat(g, n_in, in, axis);
    *n_out = 1;
    return LM_OK;
}

static lm_status concat_get_config(const lm_layer *l, cJSON *k) {
    return lm_kc_put_int(k, "axis", ((const merge_cfg *)l->cfg)->axis);
}
#define merge_call_config  NULL /* Add, Subtract, ...: no keys of their own */
#define concat_call_config concat_get_config

#define MERGE_VT(var, cls, base, lo, fn)                                                           \
    static const lm_layer_vt var = {.class_name = cls,                                             \
                                    .base_name = base,                                             \
                                    .min_in = lo,                                                  \
                                    .max_in = LM_MAX_IO,                                           \
                                    .call = fn,                                                    \
                                    .get_config = fn##_config}

MERGE_VT(add_vt, "Add", "add", 1, merge_call);
MERGE_VT(sub_vt, "Subtract", "subtract", 1, merge_call);
MERGE_VT(mul_vt, "Multiply", "multiply", 1, merge_call);
MERGE_VT(avg_vt, "Average", "average", 1, merge_call);
MERGE_VT(cat_vt, "Concatenate", "concatenate", 1, concat_call);

static lm_layer *merge_new(const lm_layer_vt *vt, int kind, lm_basic_opts o) {
    merge_cfg c = {kind, 0};
    return lm_layer_alloc(vt, &c, sizeof c, o.name, o.input_shape, o.input_dim, o.trainable);
}

lm_layer *lm_add_layer_(lm_basic_opts o) {
    return merge_new(&add_vt, MERGE_ADD, o);
}
lm_layer *lm_subtract_(lm_basic_opts o) {
    return merge_new(&sub_vt, MERGE_SUB, o);
}
lm_layer *lm_multiply_(lm_basic_opts o) {
    return merge_new(&mul_vt, MERGE_MUL, o);
}
lm_layer *lm_average_(lm_basic_opts o) {
    return merge_new(&avg_vt, MERGE_AVG, o);
}

lm_layer *lm_concatenate_(lm_concat_opts o) {
    merge_cfg c = {0, o.axis ? o.axis : -1};
    return lm_layer_alloc(&cat_vt, &c, sizeof c, o.name, o.input_shape, o.input_dim, o.trainable);
}
