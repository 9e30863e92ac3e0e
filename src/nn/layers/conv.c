/* Conv1D and Conv2D (channels last): act(conv(x, kernel) + bias), kernel
 * (k..., in/groups, filters) glorot_uniform, bias (filters) zeros. The bias
 * and the fusable activations run in the convolution's epilogue. */
#include "core/core.h"
#include "io/keras_config.h"
#include "nn/nn.h"
#include <stdarg.h>
#include <stdio.h>

typedef struct conv_cfg {
    int rank; /* 1 or 2 spatial axes */
    int filters;
    int k[2], s[2], d[2]; /* kernel, strides, dilation (Conv1D uses [0]) */
    int groups;
    lm_conv_layer_opts o;
    lm_regularizer reg[2]; /* copies the option pointers are redirected to */
} conv_cfg;

static lm_status layer_fail(lm_layer *l, lm_graph *g, lm_status st, const char *fmt, ...)
    LM_PRINTF(4, 5);
/* A message naming the layer, into the graph during a call, else the context. */
static lm_status layer_fail(lm_layer *l, lm_graph *g, lm_status st, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g)
        lm_graph_fail(g, st, "%s: %s", l->name, msg);
    else
        lm_fail(l->ctx, st, "%s: %s", l->name, msg);
    return st;
}

/* Keras's input checks: rank, a known channel count divisible by groups and,
 * with valid padding, a positive output size. */
static lm_status check_input(lm_layer *l, lm_graph *g, lm_shape s) {
    conv_cfg *c = l->cfg;
    char a[96];
    lm_shape_str(s, a, sizeof a);
    if (s.ndim != c->rank + 2)
        return layer_fail(
            l, g, LM_ERR_SHAPE, "expected input with %d dimensions (%s), got %s", c->rank + 2,
            c->rank == 2 ? "batch, height, width, channels" : "batch, steps, channels", a);
    int64_t ch = s.dims[s.ndim - 1];
    if (ch < 1)
        return layer_fail(l, g, LM_ERR_SHAPE, "the channel dimension of the input %s must be known",
                          a);
    if (ch % c->groups)
        return layer_fail(l, g, LM_ERR_SHAPE,
                          "the number of input channels must be evenly divisible by the number "
                          "of groups; got groups=%d and input %s",
                          c->groups, a);
    if (c->o.padding != LM_PAD_VALID) return LM_OK;
    for (int i = 0; i < c->rank; i++) {
        int64_t n = s.dims[1 + i];
        if (n >= 0 && n - (int64_t)c->d[i] * (c->k[i] - 1) - 1 < 0) {
            if (c->rank == 2)
                return layer_fail(l, g, LM_ERR_SHAPE,
                                  "input %s is too small for kernel (%d, %d) with dilation_rate "
                                  "(%d, %d) and padding valid: the output size would be zero or "
                                  "negative",
                                  a, c->k[0], c->k[1], c->d[0], c->d[1]);
            return layer_fail(l, g, LM_ERR_SHAPE,
                              "input %s is too small for kernel (%d,) with dilation_rate (%d,) "
                              "and padding valid: the output size would be zero or negative",
                              a, c->k[0], c->d[0]);
        }
    }
    return LM_OK;
}

static lm_status conv_build(lm_layer *l, int n_in, const lm_shape *in) {
    (void)n_in;
    conv_cfg *c = l->cfg;
    lm_status st = check_input(l, NULL, in[0]);
    if (st) return st;
    int64_t cin = in[0].dims[in[0].ndim - 1] / c->groups;
    lm_shape ks = c->rank == 2 ? LM_SHAPE(c->k[0], c->k[1], cin, c->filters)
                               : LM_SHAPE(c->k[0], cin, c->filters);
    if (lm_layer_add_weight(l, "kernel", ks, c->o.kernel_initializer, LM_INIT_GLOROT_UNIFORM,
                            c->o.kernel_regularizer, true) < 0)
        return lm_fail(l->ctx, LM_ERR_OOM, "%s: %s", l->name, lm_ctx_error(l->ctx));
    if (c->o.use_bias != LM_FALSE &&
        lm_layer_add_weight(l, "bias", LM_SHAPE(c->filters), c->o.bias_initializer, LM_INIT_ZEROS,
                            c->o.bias_regularizer, true) < 0)
        return lm_fail(l->ctx, LM_ERR_OOM, "%s: %s", l->name, lm_ctx_error(l->ctx));
    return LM_OK;
}

static bool fusable(lm_activation a) {
    return a == LM_ACT_LINEAR || a == LM_ACT_RELU || a == LM_ACT_SIGMOID || a == LM_ACT_TANH;
}

static lm_status conv_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                           lm_node **out) {
    (void)n_in;
    conv_cfg *c = l->cfg;
    lm_status st = check_input(l, g, in[0]->shape);
    if (st) return st;
    lm_conv_opts co = {.strides = {c->s[0], c->s[1]},
                       .dilation = {c->d[0], c->d[1]},
                       .groups = c->groups,
                       .padding = c->o.padding};
    /* Bias and a fusable activation run inside the convolution's epilogue. */
    lm_activation a = c->o.activation, fa = fusable(a) ? a : LM_ACT_LINEAR;
    lm_node *b = l->n_weights > 1 ? l->w[1].var : NULL;
    lm_node *y = c->rank == 2 ? lm_op_conv2d_bias_act(g, in[0], l->w[0].var, b, co, fa)
                              : lm_op_conv1d_bias_act(g, in[0], l->w[0].var, b, co, fa);
    if (!fusable(a)) y = lm_op_activation(g, y, a);
    out[0] = y;
    *n_out = 1;
    return LM_OK;
}

/* Keras's BaseConv.get_config keys, in its order. */
static lm_status conv_get_config(const lm_layer *l, cJSON *k) {
    const conv_cfg *c = l->cfg;
    int64_t ks[2] = {c->k[0], c->k[1]}, s[2] = {c->s[0], c->s[1]}, d[2] = {c->d[0], c->d[1]};
    lm_status st = lm_kc_put_int(k, "filters", c->filters);
    if (!st) st = lm_kc_put_ints(k, "kernel_size", c->rank, ks);
    if (!st) st = lm_kc_put_ints(k, "strides", c->rank, s);
    if (!st) st = lm_kc_put_padding(k, "padding", c->o.padding);
    if (!st) st = lm_kc_put_str(k, "data_format", "channels_last");
    if (!st) st = lm_kc_put_ints(k, "dilation_rate", c->rank, d);
    if (!st) st = lm_kc_put_int(k, "groups", c->groups);
    if (!st) st = lm_kc_put_act(k, "activation", c->o.activation);
    if (!st) st = lm_kc_put_bool(k, "use_bias", c->o.use_bias != LM_FALSE);
    if (!st)
        st = lm_kc_put_init(k, "kernel_initializer", c->o.kernel_initializer,
                            LM_INIT_GLOROT_UNIFORM);
    if (!st) st = lm_kc_put_init(k, "bias_initializer", c->o.bias_initializer, LM_INIT_ZEROS);
    if (!st) st = lm_kc_put_reg(k, "kernel_regularizer", c->o.kernel_regularizer);
    if (!st) st = lm_kc_put_reg(k, "bias_regularizer", c->o.bias_regularizer);
    if (!st)
        st =
            lm_kc_put_reg(k, "activity_regularizer", l->has_activity_reg ? &l->activity_reg : NULL);
    if (!st) st = lm_kc_put_null(k, "kernel_constraint");
    if (!st) st = lm_kc_put_null(k, "bias_constraint");
    return st;
}

static const lm_layer_vt conv2d_vt = {.class_name = "Conv2D",
                                      .base_name = "conv2d",
                                      .min_in = 1,
                                      .max_in = 1,
                                      .build = conv_build,
                                      .call = conv_call,
                                      .get_config = conv_get_config};

static const lm_layer_vt conv1d_vt = {.class_name = "Conv1D",
                                      .base_name = "conv1d",
                                      .min_in = 1,
                                      .max_in = 1,
                                      .build = conv_build,
                                      .call = conv_call,
                                      .get_config = conv_get_config};

/* A pair where (0, 0) means (dflt, dflt); any other non-positive entry is invalid. */
static bool pair_or(lm_size2 v, int dflt, int *out) {
    if (v.h == 0 && v.w == 0) v.h = v.w = dflt;
    out[0] = v.h, out[1] = v.w;
    return v.h > 0 && v.w > 0;
}

/* Validates the options as Keras's constructor does; NULL when invalid. */
static lm_layer *conv_new(const lm_layer_vt *vt, conv_cfg c) {
    const lm_conv_layer_opts *o = &c.o;
    if (c.filters < 1 || c.k[0] < 1 || c.k[1] < 1) return NULL;
    if ((int)o->activation < 0 || o->activation >= LM_ACT_COUNT) return NULL;
    if (o->padding != LM_PAD_VALID && o->padding != LM_PAD_SAME &&
        !(o->padding == LM_PAD_CAUSAL && c.rank == 1))
        return NULL;
    if (o->groups < 0) return NULL;
    c.groups = o->groups ? o->groups : 1;
    if (c.filters % c.groups) return NULL;
    if (c.rank == 1) {
        c.s[0] = o->strides.h ? o->strides.h : 1, c.s[1] = 1;
        c.d[0] = o->dilation_rate.h ? o->dilation_rate.h : 1, c.d[1] = 1;
        if (c.s[0] < 1 || c.d[0] < 1) return NULL;
    } else if (!pair_or(o->strides, 1, c.s) || !pair_or(o->dilation_rate, 1, c.d)) {
        return NULL;
    }
    /* Keras: strides > 1 together with dilation_rate > 1 is not supported. */
    if ((c.s[0] > 1 || c.s[1] > 1) && (c.d[0] > 1 || c.d[1] > 1)) return NULL;
    lm_layer *l =
        lm_layer_alloc(vt, &c, sizeof c, o->name, o->input_shape, o->input_dim, o->trainable);
    if (l) { /* the caller's regularizers may not outlive this call */
        conv_cfg *cc = l->cfg;
        if (o->kernel_regularizer)
            cc->reg[0] = *o->kernel_regularizer, cc->o.kernel_regularizer = &cc->reg[0];
        if (o->bias_regularizer)
            cc->reg[1] = *o->bias_regularizer, cc->o.bias_regularizer = &cc->reg[1];
        cc->o.activity_regularizer = NULL;
        cc->o.name = NULL;
    }
    if (l && o->activity_regularizer) {
        l->has_activity_reg = true;
        l->activity_reg = *o->activity_regularizer;
    }
    return l;
}

lm_layer *lm_conv2d_(int filters, lm_size2 kernel_size, lm_conv_layer_opts o) {
    conv_cfg c = {.rank = 2, .filters = filters, .k = {kernel_size.h, kernel_size.w}, .o = o};
    return conv_new(&conv2d_vt, c);
}

lm_layer *lm_conv1d_(int filters, int kernel_size, lm_conv_layer_opts o) {
    conv_cfg c = {.rank = 1, .filters = filters, .k = {kernel_size, 1}, .o = o};
    return conv_new(&conv1d_vt, c);
}
