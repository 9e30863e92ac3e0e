/* BatchNormalization and LayerNormalization over the last axis, as Keras 3.
 *
 * BatchNormalization's weights are gamma and beta (trainable), then
 * moving_mean and moving_variance (not trainable). The batch_norm op switches
 * between batch statistics and moving statistics on the session's training
 * flag. A frozen layer always normalises with the moving statistics (Keras:
 * `training and self.trainable`), built from elementwise ops so that training
 * runs leave the statistics alone. */
#include "core/core.h"
#include "io/keras_config.h"
#include "nn/nn.h"
#include <math.h>
#include <stdio.h>

typedef struct bn_cfg {
    float momentum, epsilon;
    lm_batch_norm_opts o;
    lm_regularizer reg[2]; /* copies the option pointers are redirected to */
} bn_cfg;

typedef struct ln_cfg {
    float epsilon;
    lm_layer_norm_opts o;
    lm_regularizer reg[2];
} ln_cfg;

/* Points the options at copies of the caller's regularizers, which may not
 * outlive the constructor call. */
static void keep_regs(lm_regularizer *copy, const lm_regularizer **beta,
                      const lm_regularizer **gamma) {
    if (*beta) copy[0] = **beta, *beta = &copy[0];
    if (*gamma) copy[1] = **gamma, *gamma = &copy[1];
}

/* The last axis must be known and there must be one besides the batch. */
static lm_status check_input(lm_layer *l, lm_graph *g, lm_shape s) {
    char a[96];
    if (s.ndim >= 2 && s.dims[s.ndim - 1] > 0) return LM_OK;
    lm_shape_str(s, a, sizeof a);
    const char *what = s.ndim < 2 ? "expected input with at least 2 dimensions (batch, ..., "
                                    "features), got %s"
                                  : "the last axis of the input %s must be known";
    char msg[256];
    snprintf(msg, sizeof msg, what, a);
    if (g)
        lm_graph_fail(g, LM_ERR_SHAPE, "%s: %s", l->name, msg);
    else
        lm_fail(l->ctx, LM_ERR_SHAPE, "%s: %s", l->name, msg);
    return LM_ERR_SHAPE;
}

/* Adds the weight or reports the failure (already in the context) with the layer's name. */
static lm_status add(lm_layer *l, const char *name, int64_t n, lm_initializer init,
                     lm_init_kind dflt, const lm_regularizer *reg, bool trainable) {
    if (lm_layer_add_weight(l, name, LM_SHAPE(n), init, dflt, reg, trainable) >= 0) return LM_OK;
    return lm_fail(l->ctx, LM_ERR_OOM, "%s: %s", l->name, lm_ctx_error(l->ctx));
}

/* ---- BatchNormalization ---- */

static lm_status bn_build(lm_layer *l, int n_in, const lm_shape *in) {
    (void)n_in;
    bn_cfg *c = l->cfg;
    lm_status st = check_input(l, NULL, in[0]);
    if (st) return st;
    int64_t C = in[0].dims[in[0].ndim - 1];
    const lm_batch_norm_opts *o = &c->o;
    if (o->scale != LM_FALSE &&
        (st = add(l, "gamma", C, o->gamma_initializer, LM_INIT_ONES, o->gamma_regularizer, true)))
        return st;
    if (o->center != LM_FALSE &&
        (st = add(l, "beta", C, o->beta_initializer, LM_INIT_ZEROS, o->beta_regularizer, true)))
        return st;
    if ((st = add(l, "moving_mean", C, o->moving_mean_initializer, LM_INIT_ZEROS, NULL, false)))
        return st;
    return add(l, "moving_variance", C, o->moving_variance_initializer, LM_INIT_ONES, NULL, false);
}

/* Inference with the moving statistics, as keras.ops.batch_normalization:
 * inv = rsqrt(var + eps) * gamma; y = x * inv + (beta - mean * inv). */
static lm_node *bn_frozen(lm_graph *g, lm_node *x, lm_node *gamma, lm_node *beta, lm_node *mean,
                          lm_node *var, float eps) {
    lm_node *inv = lm_op_div(g, lm_scalar(g, 1.0f), lm_op_sqrt(g, lm_op_scale(g, var, 1.0f, eps)));
    if (gamma) inv = lm_op_mul(g, inv, gamma);
    lm_node *res = lm_op_neg(g, lm_op_mul(g, mean, inv));
    if (beta) res = lm_op_add(g, res, beta);
    return lm_op_add(g, lm_op_mul(g, x, inv), res);
}

static lm_status bn_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                         lm_node **out) {
    (void)n_in;
    bn_cfg *c = l->cfg;
    lm_status st = check_input(l, g, in[0]->shape);
    if (st) return st;
    int i = 0;
    lm_node *gamma = c->o.scale != LM_FALSE ? l->w[i++].var : NULL;
    lm_node *beta = c->o.center != LM_FALSE ? l->w[i++].var : NULL;
    lm_node *mean = l->w[i].var, *var = l->w[i + 1].var;
    if (l->trainable)
        out[0] = lm_op_batch_norm(g, in[0], gamma, beta, mean, var, c->momentum, c->epsilon);
    else
        out[0] = bn_frozen(g, in[0], gamma, beta, mean, var, c->epsilon);
    *n_out = 1;
    return LM_OK;
}

/* Keras's BatchNormalization.get_config keys, in its order. */
static lm_status bn_get_config(const lm_layer *l, cJSON *k) {
    const bn_cfg *c = l->cfg;
    const lm_batch_norm_opts *o = &c->o;
    lm_status st = lm_kc_put_int(k, "axis", -1);
    if (!st) st = lm_kc_put_f32(k, "momentum", c->momentum);
    if (!st) st = lm_kc_put_f32(k, "epsilon", c->epsilon);
    if (!st) st = lm_kc_put_bool(k, "center", o->center != LM_FALSE);
    if (!st) st = lm_kc_put_bool(k, "scale", o->scale != LM_FALSE);
    if (!st) st = lm_kc_put_init(k, "beta_initializer", o->beta_initializer, LM_INIT_ZEROS);
    if (!st) st = lm_kc_put_init(k, "gamma_initializer", o->gamma_initializer, LM_INIT_ONES);
    if (!st)
        st =
            lm_kc_put_init(k, "moving_mean_initializer", o->moving_mean_initializer, LM_INIT_ZEROS);
    if (!st)
        st = lm_kc_put_init(k, "moving_variance_initializer", o->moving_variance_initializer,
                            LM_INIT_ONES);
    if (!st) st = lm_kc_put_reg(k, "beta_regularizer", o->beta_regularizer);
    if (!st) st = lm_kc_put_reg(k, "gamma_regularizer", o->gamma_regularizer);
    if (!st) st = lm_kc_put_null(k, "beta_constraint");
    if (!st) st = lm_kc_put_null(k, "gamma_constraint");
    if (!st) st = lm_kc_put_bool(k, "synchronized", false);
    if (!st) st = lm_kc_put_bool(k, "renorm", false);
    if (!st) st = lm_kc_put_null(k, "renorm_clipping");
    if (!st) st = lm_kc_put_num(k, "renorm_momentum", 0.99);
    return st;
}

static const lm_layer_vt bn_vt = {.class_name = "BatchNormalization",
                                  .base_name = "batch_normalization",
                                  .min_in = 1,
                                  .max_in = 1,
                                  .build = bn_build,
                                  .call = bn_call,
                                  .call_reads_trainable = true,
                                  .get_config = bn_get_config};

lm_layer *lm_batch_normalization_(lm_batch_norm_opts o) {
    bn_cfg c = {.momentum = o.momentum != 0 ? o.momentum : 0.99f,
                .epsilon = o.epsilon != 0 ? o.epsilon : 1e-3f,
                .o = o};
    if (!isfinite(c.momentum) || !(c.epsilon > 0 && isfinite(c.epsilon))) return NULL;
    lm_layer *l =
        lm_layer_alloc(&bn_vt, &c, sizeof c, o.name, o.input_shape, o.input_dim, o.trainable);
    if (l) {
        bn_cfg *bc = l->cfg;
        keep_regs(bc->reg, &bc->o.beta_regularizer, &bc->o.gamma_regularizer);
        bc->o.name = NULL;
    }
    return l;
}

/* ---- LayerNormalization ---- */

static lm_status ln_build(lm_layer *l, int n_in, const lm_shape *in) {
    (void)n_in;
    ln_cfg *c = l->cfg;
    lm_status st = check_input(l, NULL, in[0]);
    if (st) return st;
    int64_t C = in[0].dims[in[0].ndim - 1];
    const lm_layer_norm_opts *o = &c->o;
    if (o->scale != LM_FALSE &&
        (st = add(l, "gamma", C, o->gamma_initializer, LM_INIT_ONES, o->gamma_regularizer, true)))
        return st;
    if (o->center != LM_FALSE)
        return add(l, "beta", C, o->beta_initializer, LM_INIT_ZEROS, o->beta_regularizer, true);
    return LM_OK;
}

static lm_status ln_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                         lm_node **out) {
    (void)n_in;
    ln_cfg *c = l->cfg;
    lm_status st = check_input(l, g, in[0]->shape);
    if (st) return st;
    int i = 0;
    lm_node *gamma = c->o.scale != LM_FALSE ? l->w[i++].var : NULL;
    lm_node *beta = c->o.center != LM_FALSE ? l->w[i].var : NULL;
    out[0] = lm_op_layer_norm(g, in[0], gamma, beta, c->epsilon);
    *n_out = 1;
    return LM_OK;
}

/* Keras's LayerNormalization.get_config keys, in its order. */
static lm_status ln_get_config(const lm_layer *l, cJSON *k) {
    const ln_cfg *c = l->cfg;
    const lm_layer_norm_opts *o = &c->o;
    /* Keras's build turns the axis into a list. */
    const int64_t axis = -1;
    lm_status st = l->built ? lm_kc_put_ints(k, "axis", 1, &axis) : lm_kc_put_int(k, "axis", -1);
    if (!st) st = lm_kc_put_f32(k, "epsilon", c->epsilon);
    if (!st) st = lm_kc_put_bool(k, "center", o->center != LM_FALSE);
    if (!st) st = lm_kc_put_bool(k, "scale", o->scale != LM_FALSE);
    if (!st) st = lm_kc_put_bool(k, "rms_scaling", false);
    if (!st) st = lm_kc_put_init(k, "beta_initializer", o->beta_initializer, LM_INIT_ZEROS);
    if (!st) st = lm_kc_put_init(k, "gamma_initializer", o->gamma_initializer, LM_INIT_ONES);
    if (!st) st = lm_kc_put_reg(k, "beta_regularizer", o->beta_regularizer);
    if (!st) st = lm_kc_put_reg(k, "gamma_regularizer", o->gamma_regularizer);
    if (!st) st = lm_kc_put_null(k, "beta_constraint");
    if (!st) st = lm_kc_put_null(k, "gamma_constraint");
    return st;
}

static const lm_layer_vt ln_vt = {.class_name = "LayerNormalization",
                                  .base_name = "layer_normalization",
                                  .min_in = 1,
                                  .max_in = 1,
                                  .build = ln_build,
                                  .call = ln_call,
                                  .get_config = ln_get_config};

lm_layer *lm_layer_normalization_(lm_layer_norm_opts o) {
    ln_cfg c = {.epsilon = o.epsilon != 0 ? o.epsilon : 1e-3f, .o = o};
    if (!(c.epsilon > 0 && isfinite(c.epsilon))) return NULL;
    lm_layer *l =
        lm_layer_alloc(&ln_vt, &c, sizeof c, o.name, o.input_shape, o.input_dim, o.trainable);
    if (l) {
        ln_cfg *lc = l->cfg;
        keep_regs(lc->reg, &lc->o.beta_regularizer, &lc->o.gamma_regularizer);
        lc->o.name = NULL;
    }
    return l;
}
