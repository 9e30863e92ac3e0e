/* SimpleRNN, LSTM and GRU: Keras's recurrent layers over a whole sequence,
 * each one fused op (lm_op_simple_rnn / lstm / gru). Weights as Keras's
 * cells: kernel (features, k * units), recurrent_kernel (units, k * units),
 * bias (k * units), or (2, 3 * units) for a GRU with reset_after. Extra
 * call inputs are Keras's initial_state: layer(x, initial_state=[h, c]) is
 * lm_call_n(layer, 3, (x, h, c)). Outputs follow Keras: the sequence (in
 * processing order, so reversed with go_backwards) or the last output, then
 * the final states with return_state. */
#include "io/keras_config.h"
#include "nn/nn.h"
#include <stdio.h>
#include <string.h>

typedef enum rl_kind { RL_SIMPLE, RL_LSTM, RL_GRU } rl_kind;

typedef struct rl_cfg {
    rl_kind kind;
    int units;
    lm_rnn_layer_opts o;
    /* Copies of the regularizers (the options only point at them). */
    lm_regularizer reg[3];
    bool has_reg[3];
} rl_cfg;

enum { REG_KERNEL, REG_RECURRENT, REG_BIAS };

static int gates(const rl_cfg *c) {
    return c->kind == RL_LSTM ? 4 : c->kind == RL_GRU ? 3 : 1;
}

static int n_states(const rl_cfg *c) {
    return c->kind == RL_LSTM ? 2 : 1;
}

static bool reset_after(const rl_cfg *c) {
    return c->kind == RL_GRU && c->o.reset_after != LM_FALSE;
}

/* Activations with Keras's defaults (tanh, sigmoid) unless set explicitly. */
static lm_activation act_of(const rl_cfg *c) {
    return c->o.activations_set || c->o.activation != LM_ACT_LINEAR ? c->o.activation : LM_ACT_TANH;
}

static lm_activation ract_of(const rl_cfg *c) {
    return c->o.activations_set || c->o.recurrent_activation != LM_ACT_LINEAR
               ? c->o.recurrent_activation
               : LM_ACT_SIGMOID;
}

/* What the fused kernels compute. */
static bool act_supported(lm_activation a) {
    return a == LM_ACT_TANH || a == LM_ACT_SIGMOID || a == LM_ACT_RELU || a == LM_ACT_LINEAR ||
           a == LM_ACT_HARD_SIGMOID;
}

static const lm_regularizer *reg_of(const rl_cfg *c, int k) {
    return c->has_reg[k] ? &c->reg[k] : NULL;
}

/* Fills bias[off, off + n) with init applied to a weight of shape (n,), as
 * Keras's LSTM builds its unit_forget_bias from pieces. */
static lm_status fill_piece(lm_layer *l, lm_tensor *bias, int64_t off, int64_t n,
                            lm_initializer init) {
    lm_tensor *t = lm_tensor_new(l->ctx, LM_F32, LM_SHAPE(n));
    if (!t) return LM_ERR_OOM;
    lm_status st = lm_init_fill(init, t, l->ctx);
    if (!st) memcpy(lm_tensor_f32(bias) + off, lm_tensor_f32(t), (size_t)n * sizeof(float));
    lm_tensor_free(t);
    return st;
}

static lm_status rl_build(lm_layer *l, int n_in, const lm_shape *in) {
    (void)n_in;
    rl_cfg *c = l->cfg;
    char b[96];
    if (in[0].ndim != 3 || in[0].dims[2] < 1)
        return lm_fail(l->ctx, LM_ERR_SHAPE,
                       "%s: %s expects a 3-D input (batch, timesteps, features) with known "
                       "features, got input shape %s",
                       l->name, l->vt->class_name, lm_shape_str(in[0], b, sizeof b));
    lm_activation a[2] = {act_of(c), ract_of(c)};
    for (int k = 0; k < (c->kind == RL_SIMPLE ? 1 : 2); k++)
        if (!act_supported(a[k]))
            return lm_fail(l->ctx, LM_ERR_ARG,
                           "%s: %s %s is not supported by %s (tanh, sigmoid, relu, linear and "
                           "hard_sigmoid are)",
                           l->name, k ? "recurrent_activation" : "activation",
                           lm_activation_name(a[k]), l->vt->class_name);
    int64_t F = in[0].dims[2], H = c->units, G = gates(c) * H;
    if (lm_layer_add_weight(l, "kernel", LM_SHAPE(F, G), c->o.kernel_initializer,
                            LM_INIT_GLOROT_UNIFORM, reg_of(c, REG_KERNEL), true) < 0 ||
        lm_layer_add_weight(l, "recurrent_kernel", LM_SHAPE(H, G), c->o.recurrent_initializer,
                            LM_INIT_ORTHOGONAL, reg_of(c, REG_RECURRENT), true) < 0)
        return LM_ERR_OOM;
    if (c->o.use_bias == LM_FALSE) return LM_OK;
    lm_shape bs = reset_after(c) ? LM_SHAPE(2, G) : LM_SHAPE(G);
    int ib = lm_layer_add_weight(l, "bias", bs, c->o.bias_initializer, LM_INIT_ZEROS,
                                 reg_of(c, REG_BIAS), true);
    if (ib < 0) return LM_ERR_OOM;
    if (c->kind == RL_LSTM && c->o.unit_forget_bias != LM_FALSE) {
        /* [init(units), ones(units), init(2 * units)]: the forget gate starts open. */
        lm_initializer init = c->o.bias_initializer;
        if (init.kind == LM_INIT_DEFAULT) init.kind = LM_INIT_ZEROS;
        lm_tensor *bias = l->w[ib].value;
        lm_status st = fill_piece(l, bias, 0, H, init);
        if (!st) st = fill_piece(l, bias, H, H, lm_ones());
        if (!st) st = fill_piece(l, bias, 2 * H, 2 * H, init);
        if (st) return st;
    }
    return LM_OK;
}

static bool dim_ne(int64_t a, int64_t b) {
    return a >= 0 && b >= 0 && a != b;
}

static lm_status rl_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                         lm_node **out) {
    rl_cfg *c = l->cfg;
    char b[96], b2[96];
    int S = n_states(c);
    lm_shape xs = in[0]->shape;
    lm_shape ks = lm_tensor_shape(l->w[0].value);
    if (xs.ndim != 3 || dim_ne(xs.dims[2], ks.dims[0]))
        return lm_fail(l->ctx, LM_ERR_SHAPE,
                       "%s expects input of shape (batch, timesteps, %lld), got %s",
                       l->vt->class_name, (long long)ks.dims[0], lm_shape_str(xs, b, sizeof b));
    if (n_in != 1 && n_in != 1 + S)
        return lm_fail(l->ctx, LM_ERR_ARG,
                       "%s takes the input and an initial_state of %d tensor%s (%s), got %d "
                       "state tensor%s",
                       l->vt->class_name, S, S > 1 ? "s" : "", S > 1 ? "[h, c]" : "h", n_in - 1,
                       n_in == 2 ? "" : "s");
    for (int i = 1; i < n_in; i++) {
        lm_shape s = in[i]->shape;
        if (s.ndim != 2 || dim_ne(s.dims[0], xs.dims[0]) || dim_ne(s.dims[1], c->units))
            return lm_fail(l->ctx, LM_ERR_SHAPE,
                           "initial state %d must be (batch, %d) for input %s, got %s", i - 1,
                           c->units, lm_shape_str(xs, b, sizeof b), lm_shape_str(s, b2, sizeof b2));
    }
    lm_rnn_opts ro = {.return_sequences = c->o.return_sequences,
                      .go_backwards = c->o.go_backwards,
                      .activation = act_of(c),
                      .recurrent_activation = ract_of(c),
                      .reset_after = reset_after(c),
                      .reset_after_set = true,
                      .activations_set = true};
    lm_node *K = l->w[0].var, *R = l->w[1].var, *B = l->n_weights > 2 ? l->w[2].var : NULL;
    lm_node *h0 = n_in > 1 ? in[1] : NULL, *c0 = n_in > 2 ? in[2] : NULL;
    lm_node *h = NULL, *cs = NULL, *y = NULL;
    switch (c->kind) {
    case RL_SIMPLE:
        y = lm_op_simple_rnn(g, in[0], K, R, B, h0, ro, &h);
        break;
    case RL_LSTM:
        y = lm_op_lstm(g, in[0], K, R, B, h0, c0, ro, &h, &cs);
        break;
    case RL_GRU:
        y = lm_op_gru(g, in[0], K, R, B, h0, ro, &h);
        break;
    }
    out[0] = y;
    *n_out = 1;
    if (c->o.return_state) {
        out[(*n_out)++] = h;
        if (c->kind == RL_LSTM) out[(*n_out)++] = cs;
    }
    return LM_OK;
}

/* Keras's SimpleRNN / LSTM / GRU get_config keys, in their order. */
static lm_status rl_get_config(const lm_layer *l, cJSON *k) {
    const rl_cfg *c = l->cfg;
    const lm_rnn_layer_opts *o = &c->o;
    lm_status st = lm_kc_put_bool(k, "return_sequences", o->return_sequences);
    if (!st) st = lm_kc_put_bool(k, "return_state", o->return_state);
    if (!st) st = lm_kc_put_bool(k, "go_backwards", o->go_backwards);
    if (!st) st = lm_kc_put_bool(k, "stateful", false);
    if (!st) st = lm_kc_put_bool(k, "unroll", false);
    if (!st) st = lm_kc_put_bool(k, "zero_output_for_mask", false);
    if (!st) st = lm_kc_put_int(k, "units", c->units);
    if (!st) st = lm_kc_put_act(k, "activation", act_of(c));
    if (!st && c->kind != RL_SIMPLE) st = lm_kc_put_act(k, "recurrent_activation", ract_of(c));
    if (!st) st = lm_kc_put_bool(k, "use_bias", o->use_bias != LM_FALSE);
    if (!st)
        st = lm_kc_put_init(k, "kernel_initializer", o->kernel_initializer, LM_INIT_GLOROT_UNIFORM);
    if (!st)
        st = lm_kc_put_init(k, "recurrent_initializer", o->recurrent_initializer,
                            LM_INIT_ORTHOGONAL);
    if (!st) st = lm_kc_put_init(k, "bias_initializer", o->bias_initializer, LM_INIT_ZEROS);
    if (!st && c->kind == RL_LSTM)
        st = lm_kc_put_bool(k, "unit_forget_bias", o->unit_forget_bias != LM_FALSE);
    if (!st) st = lm_kc_put_reg(k, "kernel_regularizer", reg_of(c, REG_KERNEL));
    if (!st) st = lm_kc_put_reg(k, "recurrent_regularizer", reg_of(c, REG_RECURRENT));
    if (!st) st = lm_kc_put_reg(k, "bias_regularizer", reg_of(c, REG_BIAS));
    if (!st)
        st =
            lm_kc_put_reg(k, "activity_regularizer", l->has_activity_reg ? &l->activity_reg : NULL);
    if (!st) st = lm_kc_put_null(k, "kernel_constraint");
    if (!st) st = lm_kc_put_null(k, "recurrent_constraint");
    if (!st) st = lm_kc_put_null(k, "bias_constraint");
    if (!st) st = lm_kc_put_num(k, "dropout", 0.0);
    if (!st) st = lm_kc_put_num(k, "recurrent_dropout", 0.0);
    if (!st && c->kind == RL_GRU) st = lm_kc_put_bool(k, "reset_after", reset_after(c));
    if (!st && c->kind != RL_SIMPLE) st = lm_kc_put_null(k, "seed");
    return st;
}

static const lm_layer_vt simple_rnn_vt = {.class_name = "SimpleRNN",
                                          .base_name = "simple_rnn",
                                          .min_in = 1,
                                          .max_in = 2,
                                          .build = rl_build,
                                          .call = rl_call,
                                          .get_config = rl_get_config};
static const lm_layer_vt lstm_vt = {.class_name = "LSTM",
                                    .base_name = "lstm",
                                    .min_in = 1,
                                    .max_in = 3,
                                    .build = rl_build,
                                    .call = rl_call,
                                    .get_config = rl_get_config};
static const lm_layer_vt gru_vt = {.class_name = "GRU",
                                   .base_name = "gru",
                                   .min_in = 1,
                                   .max_in = 2,
                                   .build = rl_build,
                                   .call = rl_call,
                                   .get_config = rl_get_config};

static lm_layer *rl_new(rl_kind kind, const lm_layer_vt *vt, int units, lm_rnn_layer_opts o) {
    if (units < 1 || (int)o.activation < 0 || o.activation >= LM_ACT_COUNT ||
        (int)o.recurrent_activation < 0 || o.recurrent_activation >= LM_ACT_COUNT)
        return NULL;
    rl_cfg c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.units = units;
    c.o = o;
    const lm_regularizer *regs[3] = {o.kernel_regularizer, o.recurrent_regularizer,
                                     o.bias_regularizer};
    for (int k = 0; k < 3; k++)
        if (regs[k]) c.reg[k] = *regs[k], c.has_reg[k] = true;
    c.o.kernel_regularizer = c.o.recurrent_regularizer = c.o.bias_regularizer = NULL;
    c.o.activity_regularizer = NULL;
    c.o.name = NULL;
    lm_layer *l = lm_layer_alloc(vt, &c, sizeof c, o.name, o.input_shape, o.input_dim, o.trainable);
    if (l && o.activity_regularizer) {
        l->has_activity_reg = true;
        l->activity_reg = *o.activity_regularizer;
    }
    return l;
}

lm_layer *lm_simple_rnn_(int units, lm_rnn_layer_opts o) {
    return rl_new(RL_SIMPLE, &simple_rnn_vt, units, o);
}

lm_layer *lm_lstm_(int units, lm_rnn_layer_opts o) {
    return rl_new(RL_LSTM, &lstm_vt, units, o);
}

lm_layer *lm_gru_(int units, lm_rnn_layer_opts o) {
    return rl_new(RL_GRU, &gru_vt, units, o);
}

/* ---- for Bidirectional (bidirectional.c) ---- */

/* Whether l is a SimpleRNN, LSTM or GRU. */
bool lm_rnn_layer_is(const lm_layer *l) {
    return l && (l->vt == &simple_rnn_vt || l->vt == &lstm_vt || l->vt == &gru_vt);
}

/* Final states a call returns with return_state (1, or 2 for an LSTM). */
int lm_rnn_layer_states(const lm_layer *l) {
    return n_states(l->cfg);
}

bool lm_rnn_layer_returns_sequences(const lm_layer *l) {
    return ((const rl_cfg *)l->cfg)->o.return_sequences;
}

bool lm_rnn_layer_returns_state(const lm_layer *l) {
    return ((const rl_cfg *)l->cfg)->o.return_state;
}

bool lm_rnn_layer_goes_backwards(const lm_layer *l) {
    return ((const rl_cfg *)l->cfg)->o.go_backwards;
}

/* An unbuilt copy of l with go_backwards flipped, as Keras's Bidirectional
 * makes its backward layer from the wrapped layer's config. */
lm_layer *lm_rnn_layer_mirror(const lm_layer *l, const char *name) {
    rl_cfg c = *(const rl_cfg *)l->cfg;
    c.o.go_backwards = !c.o.go_backwards;
    lm_layer *m = lm_layer_alloc(l->vt, &c, sizeof c, name, (lm_shape){0, {0}}, 0,
                                 l->trainable ? LM_TRUE : LM_FALSE);
    if (m) {
        m->has_activity_reg = l->has_activity_reg;
        m->activity_reg = l->activity_reg;
    }
    return m;
}
