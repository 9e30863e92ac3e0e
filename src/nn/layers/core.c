/* Core layers without weights: Activation, Dropout, Flatten, Reshape, Permute
 * and RepeatVector. Each checks its input shape at call time so that a bad
 * shape is reported with the layer's name rather than an op's. */
#include "core/core.h"
#include "io/keras_config.h"
#include "nn/nn.h"
#include <stdarg.h>
#include <stdio.h>

/* Records a message naming the layer in the graph (call) and returns st. */
static lm_status layer_fail(lm_layer *l, lm_graph *g, lm_status st, const char *fmt, ...)
    LM_PRINTF(4, 5);
static lm_status layer_fail(lm_layer *l, lm_graph *g, lm_status st, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lm_graph_fail(g, st, "%s: %s", l->name, msg);
    return st;
}

static lm_status one_out(lm_node *y, int *n_out, lm_node **out) {
    out[0] = y;
    *n_out = 1;
    return LM_OK;
}

/* ---- Activation ---- */

typedef struct act_cfg {
    lm_activation a;
    lm_activation_opts o;
} act_cfg;

static lm_status act_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                          lm_node **out) {
    (void)n_in;
    act_cfg *c = l->cfg;
    lm_node *y;
    /* A given alpha replaces the activation's own default (leaky_relu 0.2, elu 1). */
    if (c->a == LM_ACT_LEAKY_RELU && c->o.alpha != 0)
        y = lm_op_leaky_relu(g, in[0], c->o.alpha);
    else if (c->a == LM_ACT_ELU && c->o.alpha != 0)
        y = lm_op_elu(g, in[0], c->o.alpha);
    else
        y = lm_op_activation(g, in[0], c->a);
    return one_out(y, n_out, out);
}

static lm_status act_get_config(const lm_layer *l, cJSON *k) {
    const act_cfg *c = l->cfg;
    /* Keras's Activation layer has no slope option: only the defaults fit. */
    float dflt = c->a == LM_ACT_LEAKY_RELU ? 0.2f : 1.0f;
    if ((c->a == LM_ACT_LEAKY_RELU || c->a == LM_ACT_ELU) && c->o.alpha != 0 && c->o.alpha != dflt)
        return lm_fail(l->ctx, LM_ERR_UNSUPPORTED,
                       "%s: Activation(%s) with alpha %g has no Keras config (Keras's Activation "
                       "layer takes the default %g only)",
                       l->name, lm_activation_name(c->a), (double)c->o.alpha, (double)dflt);
    return lm_kc_put_act(k, "activation", c->a);
}

static const lm_layer_vt act_vt = {.class_name = "Activation",
                                   .base_name = "activation",
                                   .min_in = 1,
                                   .max_in = 1,
                                   .call = act_call,
                                   .get_config = act_get_config};

lm_layer *lm_activation_layer_(lm_activation a, lm_activation_opts o) {
    if ((int)a < 0 || a >= LM_ACT_COUNT || !(o.alpha >= 0)) return NULL;
    act_cfg c = {a, o};
    return lm_layer_alloc(&act_vt, &c, sizeof c, o.name, o.input_shape, o.input_dim, o.trainable);
}

/* ---- Dropout ---- */

typedef struct dropout_cfg {
    float rate;
    uint64_t seed; /* fixed at build */
    lm_dropout_opts o;
} dropout_cfg;

/* Without a seed option the seed comes from the model's RNG, so that the same
 * model seed gives the same masks. */
static lm_status dropout_build(lm_layer *l, int n_in, const lm_shape *in) {
    (void)n_in, (void)in;
    dropout_cfg *c = l->cfg;
    c->seed = c->o.seed ? c->o.seed : lm_rng_next(&l->ctx->rng);
    return LM_OK;
}

static lm_status dropout_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                              lm_node **out) {
    (void)n_in;
    dropout_cfg *c = l->cfg;
    return one_out(lm_op_dropout(g, in[0], c->rate, c->seed), n_out, out);
}

static lm_status dropout_get_config(const lm_layer *l, cJSON *k) {
    const dropout_cfg *c = l->cfg;
    lm_status st = lm_kc_put_f32(k, "rate", c->rate);
    if (!st)
        st = c->o.seed ? lm_kc_put_int(k, "seed", (int64_t)c->o.seed) : lm_kc_put_null(k, "seed");
    if (!st) st = lm_kc_put_null(k, "noise_shape");
    return st;
}

static const lm_layer_vt dropout_vt = {.class_name = "Dropout",
                                       .base_name = "dropout",
                                       .min_in = 1,
                                       .max_in = 1,
                                       .build = dropout_build,
                                       .call = dropout_call,
                                       .get_config = dropout_get_config};

lm_layer *lm_dropout_(float rate, lm_dropout_opts o) {
    /* Keras also accepts rate 1 (all zeros); the dropout op needs rate < 1. */
    if (!(rate >= 0 && rate < 1)) return NULL;
    dropout_cfg c = {rate, 0, o};
    return lm_layer_alloc(&dropout_vt, &c, sizeof c, o.name, o.input_shape, o.input_dim,
                          o.trainable);
}

/* ---- Flatten ---- */

static lm_status flatten_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                              lm_node **out) {
    (void)n_in;
    lm_shape s = in[0]->shape;
    char a[96];
    if (s.ndim < 1)
        return layer_fail(l, g, LM_ERR_SHAPE, "expected input with at least 1 dimension, got %s",
                          lm_shape_str(s, a, sizeof a));
    /* Keras flattens a (batch,) input to (batch, 1). */
    lm_node *y = s.ndim == 1 ? lm_op_reshape(g, in[0], LM_SHAPE(-1, 1)) : lm_op_flatten(g, in[0]);
    return one_out(y, n_out, out);
}

static lm_status flatten_get_config(const lm_layer *l, cJSON *k) {
    (void)l;
    return lm_kc_put_str(k, "data_format", "channels_last");
}

static const lm_layer_vt flatten_vt = {.class_name = "Flatten",
                                       .base_name = "flatten",
                                       .min_in = 1,
                                       .max_in = 1,
                                       .call = flatten_call,
                                       .get_config = flatten_get_config};

lm_layer *lm_flatten_(lm_basic_opts o) {
    return lm_layer_alloc(&flatten_vt, NULL, 0, o.name, o.input_shape, o.input_dim, o.trainable);
}

/* ---- Reshape ---- */

typedef struct reshape_cfg {
    lm_shape target;
} reshape_cfg;

static lm_status reshape_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                              lm_node **out) {
    (void)n_in;
    reshape_cfg *c = l->cfg;
    lm_shape s = in[0]->shape, t = c->target;
    char a[96], b[256];
    int64_t have = 1, want = 1;
    int unknown = -1;
    for (int i = 1; i < s.ndim; i++) have *= s.dims[i];
    for (int i = 0; i < t.ndim; i++) {
        if (t.dims[i] == -1)
            unknown = i;
        else
            want *= t.dims[i];
    }
    if (s.ndim < 1 || (unknown < 0 && have != want) || (unknown >= 0 && have % want)) {
        /* The target as given, -1 included ("(3, -1)"). */
        size_t o = 0;
        for (int i = 0; i < t.ndim; i++)
            o += (size_t)snprintf(b + o, sizeof b - o, "%s%lld", i ? ", " : "(",
                                  (long long)t.dims[i]);
        snprintf(b + o, sizeof b - o, t.ndim == 1 ? ",)" : ")");
        return layer_fail(l, g, LM_ERR_SHAPE,
                          "cannot reshape input %s into target shape %s: the total size must be "
                          "unchanged",
                          lm_shape_str(s, a, sizeof a), b);
    }
    lm_shape r = {t.ndim + 1, {-1}};
    for (int i = 0; i < t.ndim; i++) r.dims[i + 1] = i == unknown ? have / want : t.dims[i];
    return one_out(lm_op_reshape(g, in[0], r), n_out, out);
}

static lm_status reshape_get_config(const lm_layer *l, cJSON *k) {
    const reshape_cfg *c = l->cfg;
    return lm_kc_put_ints(k, "target_shape", c->target.ndim, c->target.dims);
}

static const lm_layer_vt reshape_vt = {.class_name = "Reshape",
                                       .base_name = "reshape",
                                       .min_in = 1,
                                       .max_in = 1,
                                       .call = reshape_call,
                                       .get_config = reshape_get_config};

lm_layer *lm_reshape_(lm_shape target, lm_basic_opts o) {
    if (target.ndim < 1 || target.ndim >= LM_MAX_DIMS) return NULL;
    int unknown = 0;
    for (int i = 0; i < target.ndim; i++) {
        if (target.dims[i] == -1)
            unknown++;
        else if (target.dims[i] < 1)
            return NULL;
    }
    if (unknown > 1) return NULL;
    reshape_cfg c = {target};
    return lm_layer_alloc(&reshape_vt, &c, sizeof c, o.name, o.input_shape, o.input_dim,
                          o.trainable);
}

/* ---- Permute ---- */

typedef struct permute_cfg {
    lm_shape dims; /* 1-based, as Keras */
} permute_cfg;

static lm_status permute_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                              lm_node **out) {
    (void)n_in;
    permute_cfg *c = l->cfg;
    lm_shape s = in[0]->shape;
    char a[96], b[96];
    if (s.ndim != c->dims.ndim + 1)
        return layer_fail(l, g, LM_ERR_SHAPE,
                          "expected input with %d dimensions for dims %s, got %s", c->dims.ndim + 1,
                          lm_shape_str(c->dims, b, sizeof b), lm_shape_str(s, a, sizeof a));
    int perm[LM_MAX_DIMS] = {0};
    for (int i = 0; i < c->dims.ndim; i++) perm[i + 1] = (int)c->dims.dims[i];
    return one_out(lm_op_transpose(g, in[0], perm), n_out, out);
}

static lm_status permute_get_config(const lm_layer *l, cJSON *k) {
    const permute_cfg *c = l->cfg;
    return lm_kc_put_ints(k, "dims", c->dims.ndim, c->dims.dims);
}

static const lm_layer_vt permute_vt = {.class_name = "Permute",
                                       .base_name = "permute",
                                       .min_in = 1,
                                       .max_in = 1,
                                       .call = permute_call,
                                       .get_config = permute_get_config};

lm_layer *lm_permute_(lm_shape dims, lm_basic_opts o) {
    if (dims.ndim < 1 || dims.ndim >= LM_MAX_DIMS) return NULL;
    bool seen[LM_MAX_DIMS + 1] = {false};
    for (int i = 0; i < dims.ndim; i++) {
        int64_t d = dims.dims[i];
        if (d < 1 || d > dims.ndim || seen[d]) return NULL;
        seen[d] = true;
    }
    permute_cfg c = {dims};
    return lm_layer_alloc(&permute_vt, &c, sizeof c, o.name, o.input_shape, o.input_dim,
                          o.trainable);
}

/* ---- RepeatVector ---- */

typedef struct repeat_cfg {
    int n;
} repeat_cfg;

static lm_status repeat_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                             lm_node **out) {
    (void)n_in;
    repeat_cfg *c = l->cfg;
    lm_shape s = in[0]->shape;
    char a[96];
    if (s.ndim != 2)
        return layer_fail(l, g, LM_ERR_SHAPE,
                          "expected input with 2 dimensions (batch, features), got %s",
                          lm_shape_str(s, a, sizeof a));
    return one_out(lm_op_repeat(g, in[0], c->n), n_out, out);
}

static lm_status repeat_get_config(const lm_layer *l, cJSON *k) {
    return lm_kc_put_int(k, "n", ((const repeat_cfg *)l->cfg)->n);
}

static const lm_layer_vt repeat_vt = {.class_name = "RepeatVector",
                                      .base_name = "repeat_vector",
                                      .min_in = 1,
                                      .max_in = 1,
                                      .call = repeat_call,
                                      .get_config = repeat_get_config};

lm_layer *lm_repeat_vector_(int n, lm_basic_opts o) {
    if (n < 1) return NULL;
    repeat_cfg c = {n};
    return lm_layer_alloc(&repeat_vt, &c, sizeof c, o.name, o.input_shape, o.input_dim,
                          o.trainable);
}
