/* Dense: act(x @ kernel + bias) over the last axis; kernel (in, units). The
 * fusable activations run inside the dense op (GEMM epilogue); the others
 * follow as their own op. */
#include "io/keras_config.h"
#include "nn/nn.h"

typedef struct dense_cfg {
    int units;
    lm_dense_opts o;
    lm_regularizer reg[2]; /* copies the option pointers are redirected to */
} dense_cfg;

static lm_status dense_build(lm_layer *l, int n_in, const lm_shape *in) {
    (void)n_in;
    dense_cfg *c = l->cfg;
    char b[96];
    if (in[0].ndim < 2 || in[0].dims[in[0].ndim - 1] < 0)
        return lm_fail(l->ctx, LM_ERR_SHAPE,
                       "%s: Dense needs a known last input dimension, got input shape %s", l->name,
                       lm_shape_str(in[0], b, sizeof b));
    int64_t fan_in = in[0].dims[in[0].ndim - 1];
    if (lm_layer_add_weight(l, "kernel", LM_SHAPE(fan_in, c->units), c->o.kernel_initializer,
                            LM_INIT_GLOROT_UNIFORM, c->o.kernel_regularizer, true) < 0)
        return LM_ERR_OOM;
    if (c->o.use_bias != LM_FALSE &&
        lm_layer_add_weight(l, "bias", LM_SHAPE(c->units), c->o.bias_initializer, LM_INIT_ZEROS,
                            c->o.bias_regularizer, true) < 0)
        return LM_ERR_OOM;
    return LM_OK;
}

static bool fusable(lm_activation a) {
    return a == LM_ACT_LINEAR || a == LM_ACT_RELU || a == LM_ACT_SIGMOID || a == LM_ACT_TANH;
}

static lm_status dense_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                            lm_node **out) {
    (void)n_in;
    dense_cfg *c = l->cfg;
    lm_activation a = c->o.activation;
    lm_node *b = l->n_weights > 1 ? l->w[1].var : NULL;
    lm_node *y = lm_op_dense(g, in[0], l->w[0].var, b, fusable(a) ? a : LM_ACT_LINEAR);
    if (!fusable(a)) y = lm_op_activation(g, y, a);
    out[0] = y;
    *n_out = 1;
    return LM_OK;
}

/* Keras's Dense.get_config keys, in its order. */
static lm_status dense_get_config(const lm_layer *l, cJSON *k) {
    const dense_cfg *c = l->cfg;
    lm_status st = lm_kc_put_int(k, "units", c->units);
    if (!st) st = lm_kc_put_act(k, "activation", c->o.activation);
    if (!st) st = lm_kc_put_bool(k, "use_bias", c->o.use_bias != LM_FALSE);
    if (!st)
        st = lm_kc_put_init(k, "kernel_initializer", c->o.kernel_initializer,
                            LM_INIT_GLOROT_UNIFORM);
    if (!st) st = lm_kc_put_init(k, "bias_initializer", c->o.bias_initializer, LM_INIT_ZEROS);
    if (!st) st = lm_kc_put_reg(k, "kernel_regularizer", c->o.kernel_regularizer);
    if (!st) st = lm_kc_put_reg(k, "bias_regularizer", c->o.bias_regularizer);
    if (!st) st = lm_kc_put_null(k, "kernel_constraint");
    if (!st) st = lm_kc_put_null(k, "bias_constraint");
    if (!st) st = lm_kc_put_null(k, "quantization_config");
    return st;
}

static const lm_layer_vt dense_vt = {.class_name = "Dense",
                                     .base_name = "dense",
                                     .min_in = 1,
                                     .max_in = 1,
                                     .build = dense_build,
                                     .call = dense_call,
                                     .get_config = dense_get_config};

lm_layer *lm_dense_(int units, lm_dense_opts o) {
    if (units < 1 || (int)o.activation < 0 || o.activation >= LM_ACT_COUNT) return NULL;
    dense_cfg c = {.units = units, .o = o};
    lm_layer *l =
        lm_layer_alloc(&dense_vt, &c, sizeof c, o.name, o.input_shape, o.input_dim, o.trainable);
    if (l) { /* the caller's regularizers may not outlive this call */
        dense_cfg *dc = l->cfg;
        if (o.kernel_regularizer)
            dc->reg[0] = *o.kernel_regularizer, dc->o.kernel_regularizer = &dc->reg[0];
        if (o.bias_regularizer)
            dc->reg[1] = *o.bias_regularizer, dc->o.bias_regularizer = &dc->reg[1];
        dc->o.activity_regularizer = NULL;
        dc->o.name = NULL;
    }
    if (l && o.activity_regularizer) {
        l->has_activity_reg = true;
        l->activity_reg = *o.activity_regularizer;
    }
    return l;
}
