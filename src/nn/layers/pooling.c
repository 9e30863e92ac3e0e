/* Pooling layers, channels last: MaxPooling1D/2D, AveragePooling1D/2D (pool
 * size default 2, strides default the pool size, average pooling with "same"
 * padding counting only real cells, as Keras) and the global poolings, which
 * reduce every axis but the batch and the channels. */
#include "core/core.h"
#include "io/keras_config.h"
#include "nn/nn.h"
#include <stdarg.h>
#include <stdio.h>

typedef struct pool_cfg {
    int rank; /* spatial axes */
    bool max;
    int k[2], s[2];
    lm_padding padding;
    bool keepdims; /* global pooling */
} pool_cfg;

static lm_status layer_fail(lm_layer *l, lm_graph *g, lm_status st, const char *fmt, ...)
    LM_PRINTF(4, 5);
/* A message naming the layer, recorded in the graph. */
static lm_status layer_fail(lm_layer *l, lm_graph *g, lm_status st, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lm_graph_fail(g, st, "%s: %s", l->name, msg);
    return st;
}

static lm_status check_rank(lm_layer *l, lm_graph *g, lm_shape s, int rank) {
    char a[96];
    if (s.ndim == rank + 2) return LM_OK;
    return layer_fail(l, g, LM_ERR_SHAPE, "expected input with %d dimensions (%s), got %s",
                      rank + 2,
                      rank == 2 ? "batch, height, width, channels" : "batch, steps, channels",
                      lm_shape_str(s, a, sizeof a));
}

static lm_status pool_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                           lm_node **out) {
    (void)n_in;
    pool_cfg *c = l->cfg;
    lm_shape s = in[0]->shape;
    lm_status st = check_rank(l, g, s, c->rank);
    if (st) return st;
    char a[96];
    for (int i = 0; c->padding == LM_PAD_VALID && i < c->rank; i++)
        if (s.dims[1 + i] >= 0 && s.dims[1 + i] < c->k[i]) {
            if (c->rank == 2)
                return layer_fail(l, g, LM_ERR_SHAPE,
                                  "input %s is smaller than pool_size (%d, %d) with padding "
                                  "valid: the output size would be zero or negative",
                                  lm_shape_str(s, a, sizeof a), c->k[0], c->k[1]);
            return layer_fail(l, g, LM_ERR_SHAPE,
                              "input %s is smaller than pool_size (%d,) with padding valid: the "
                              "output size would be zero or negative",
                              lm_shape_str(s, a, sizeof a), c->k[0]);
        }
    lm_pool_opts o = {
        .size = {c->k[0], c->k[1]}, .strides = {c->s[0], c->s[1]}, .padding = c->padding};
    lm_node *y;
    if (c->rank == 2)
        y = c->max ? lm_op_max_pool2d(g, in[0], o) : lm_op_avg_pool2d(g, in[0], o);
    else
        y = c->max ? lm_op_max_pool1d(g, in[0], o) : lm_op_avg_pool1d(g, in[0], o);
    out[0] = y;
    *n_out = 1;
    return LM_OK;
}

static lm_status global_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                             lm_node **out) {
    (void)n_in;
    pool_cfg *c = l->cfg;
    lm_shape s = in[0]->shape;
    lm_status st = check_rank(l, g, s, c->rank);
    if (st) return st;
    lm_node *y = c->max ? lm_op_global_max_pool(g, in[0]) : lm_op_global_avg_pool(g, in[0]);
    if (c->keepdims) {
        lm_shape k = {s.ndim, {-1}};
        for (int i = 1; i < s.ndim - 1; i++) k.dims[i] = 1;
        k.dims[s.ndim - 1] = s.dims[s.ndim - 1];
        y = lm_op_reshape(g, y, k);
    }
    out[0] = y;
    *n_out = 1;
    return LM_OK;
}

/* Keras's pooling get_config keys, in its order. */
static lm_status pool_get_config(const lm_layer *l, cJSON *k) {
    const pool_cfg *c = l->cfg;
    int64_t ps[2] = {c->k[0], c->k[1]}, s[2] = {c->s[0], c->s[1]};
    lm_status st = lm_kc_put_ints(k, "pool_size", c->rank, ps);
    if (!st) st = lm_kc_put_padding(k, "padding", c->padding);
    if (!st) st = lm_kc_put_ints(k, "strides", c->rank, s);
    if (!st) st = lm_kc_put_str(k, "data_format", "channels_last");
    return st;
}

static lm_status global_get_config(const lm_layer *l, cJSON *k) {
    lm_status st = lm_kc_put_str(k, "data_format", "channels_last");
    return st ? st : lm_kc_put_bool(k, "keepdims", ((const pool_cfg *)l->cfg)->keepdims);
}

#define POOL_VT(var, cls, base, fn)                                                                \
    static const lm_layer_vt var = {.class_name = cls,                                             \
                                    .base_name = base,                                             \
                                    .min_in = 1,                                                   \
                                    .max_in = 1,                                                   \
                                    .call = fn,                                                    \
                                    .get_config = fn##_config}
#define pool_call_config   pool_get_config
#define global_call_config global_get_config

POOL_VT(max2d_vt, "MaxPooling2D", "max_pooling2d", pool_call);
POOL_VT(avg2d_vt, "AveragePooling2D", "average_pooling2d", pool_call);
POOL_VT(max1d_vt, "MaxPooling1D", "max_pooling1d", pool_call);
POOL_VT(avg1d_vt, "AveragePooling1D", "average_pooling1d", pool_call);
POOL_VT(gavg1d_vt, "GlobalAveragePooling1D", "global_average_pooling1d", global_call);
POOL_VT(gavg2d_vt, "GlobalAveragePooling2D", "global_average_pooling2d", global_call);
POOL_VT(gmax1d_vt, "GlobalMaxPooling1D", "global_max_pooling1d", global_call);
POOL_VT(gmax2d_vt, "GlobalMaxPooling2D", "global_max_pooling2d", global_call);

/* A pool of rank 1 or 2; zero sizes take the defaults (pool 2, strides the
 * pool size), other non-positive values are invalid. */
static lm_layer *pool_new(const lm_layer_vt *vt, int rank, bool max, lm_size2 k,
                          lm_pool_layer_opts o) {
    pool_cfg c = {.rank = rank, .max = max, .padding = o.padding};
    if (o.padding != LM_PAD_VALID && o.padding != LM_PAD_SAME) return NULL;
    if (rank == 1) k.w = 1, o.strides.w = o.strides.h ? 1 : 0;
    if (k.h == 0 && k.w == 0) k.h = k.w = 2;
    if (rank == 1 && k.h == 0) k.h = 2;
    if (o.strides.h == 0 && o.strides.w == 0) o.strides = k;
    c.k[0] = k.h, c.k[1] = k.w, c.s[0] = o.strides.h, c.s[1] = o.strides.w;
    for (int i = 0; i < 2; i++)
        if (c.k[i] < 1 || c.s[i] < 1) return NULL;
    return lm_layer_alloc(vt, &c, sizeof c, o.name, o.input_shape, o.input_dim, o.trainable);
}

lm_layer *lm_max_pooling2d_(lm_size2 pool_size, lm_pool_layer_opts o) {
    return pool_new(&max2d_vt, 2, true, pool_size, o);
}
lm_layer *lm_average_pooling2d_(lm_size2 pool_size, lm_pool_layer_opts o) {
    return pool_new(&avg2d_vt, 2, false, pool_size, o);
}
lm_layer *lm_max_pooling1d_(int pool_size, lm_pool_layer_opts o) {
    return pool_new(&max1d_vt, 1, true, LM_SIZE(pool_size, 1), o);
}
lm_layer *lm_average_pooling1d_(int pool_size, lm_pool_layer_opts o) {
    return pool_new(&avg1d_vt, 1, false, LM_SIZE(pool_size, 1), o);
}

static lm_layer *global_new(const lm_layer_vt *vt, int rank, bool max, lm_global_pool_opts o) {
    pool_cfg c = {.rank = rank, .max = max, .keepdims = o.keepdims};
    return lm_layer_alloc(vt, &c, sizeof c, o.name, o.input_shape, o.input_dim, o.trainable);
}

lm_layer *lm_global_average_pooling1d_(lm_global_pool_opts o) {
    return global_new(&gavg1d_vt, 1, false, o);
}
lm_layer *lm_global_average_pooling2d_(lm_global_pool_opts o) {
    return global_new(&gavg2d_vt, 2, false, o);
}
lm_layer *lm_global_max_pooling1d_(lm_global_pool_opts o) {
    return global_new(&gmax1d_vt, 1, true, o);
}
lm_layer *lm_global_max_pooling2d_(lm_global_pool_opts o) {
    return global_new(&gmax2d_vt, 2, true, o);
}
