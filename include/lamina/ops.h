/* Graph op constructors. Each infers its output shape and dtype; on a
 * mismatch it returns NULL and records a message naming the op and the
 * shapes in the graph (the first error is kept, see lm_graph_error). A NULL
 * input makes the op return NULL, so chains can be checked once at the end.
 * Elementwise binary ops broadcast as NumPy does. */
#ifndef LAMINA_OPS_H
#define LAMINA_OPS_H

#include <stdbool.h>
#include "lamina/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Activations, shared by fused ops and by the layers API. */
typedef enum lm_activation {
    LM_ACT_LINEAR = 0,
    LM_ACT_RELU,
    LM_ACT_SIGMOID,
    LM_ACT_TANH,
    LM_ACT_SOFTMAX,
    LM_ACT_LEAKY_RELU,
    LM_ACT_ELU,
    LM_ACT_SELU,
    LM_ACT_GELU,
    LM_ACT_HARD_SIGMOID,
    LM_ACT_SOFTPLUS,
    LM_ACT_SOFTSIGN,
    LM_ACT_SILU,
    LM_ACT_EXP,
    LM_ACT_LOG_SOFTMAX,
    LM_ACT_COUNT
} lm_activation;

/* Keras name of an activation ("relu", ...); NULL if a is not one. */
const char *lm_activation_name(lm_activation a);
/* Activation from its Keras name ("swish" is accepted for silu); -1 if unknown. */
int lm_activation_from_name(const char *name);
/* Applies an activation with Keras's defaults (leaky_relu alpha 0.2, elu alpha 1,
 * exact gelu; softmax and log_softmax over the last axis); linear returns x. */
lm_node *lm_op_activation(lm_graph *g, lm_node *x, lm_activation a);

/* ---- elementwise, binary with broadcasting ---- */
lm_node *lm_op_add(lm_graph *g, lm_node *a, lm_node *b);
lm_node *lm_op_sub(lm_graph *g, lm_node *a, lm_node *b);
lm_node *lm_op_mul(lm_graph *g, lm_node *a, lm_node *b);
lm_node *lm_op_div(lm_graph *g, lm_node *a, lm_node *b);
lm_node *lm_op_maximum(lm_graph *g, lm_node *a, lm_node *b);
lm_node *lm_op_minimum(lm_graph *g, lm_node *a, lm_node *b);

/* ---- elementwise, unary ---- */
lm_node *lm_op_neg(lm_graph *g, lm_node *x);
lm_node *lm_op_square(lm_graph *g, lm_node *x);
lm_node *lm_op_sqrt(lm_graph *g, lm_node *x);
lm_node *lm_op_exp(lm_graph *g, lm_node *x);
lm_node *lm_op_log(lm_graph *g, lm_node *x);
lm_node *lm_op_abs(lm_graph *g, lm_node *x);
/* x ** p for a scalar p. */
lm_node *lm_op_pow(lm_graph *g, lm_node *x, float p);
/* x * s + t for scalars s and t (used by losses and normalisation). */
lm_node *lm_op_scale(lm_graph *g, lm_node *x, float s, float t);
/* min(max(x, lo), hi), lo <= hi. As in JAX, the gradient is 1 inside, 0.5 on
 * a bound and 0 outside; maximum and minimum likewise split ties 0.5 / 0.5. */
lm_node *lm_op_clip(lm_graph *g, lm_node *x, float lo, float hi);

/* ---- activations ---- */
lm_node *lm_op_relu(lm_graph *g, lm_node *x);
/* x if x > 0 else alpha * x (Keras default alpha 0.2). */
lm_node *lm_op_leaky_relu(lm_graph *g, lm_node *x, float alpha);
/* x if x > 0 else alpha * (exp(x) - 1) (Keras default alpha 1). */
lm_node *lm_op_elu(lm_graph *g, lm_node *x, float alpha);
lm_node *lm_op_selu(lm_graph *g, lm_node *x);
/* Gaussian error linear unit, exact (erf) or with the tanh approximation. */
lm_node *lm_op_gelu(lm_graph *g, lm_node *x, bool approximate);
lm_node *lm_op_sigmoid(lm_graph *g, lm_node *x);
/* Keras 3 hard sigmoid: relu6(x + 3) / 6. */
lm_node *lm_op_hard_sigmoid(lm_graph *g, lm_node *x);
lm_node *lm_op_tanh(lm_graph *g, lm_node *x);
lm_node *lm_op_softplus(lm_graph *g, lm_node *x);
lm_node *lm_op_softsign(lm_graph *g, lm_node *x);
/* x * sigmoid(x) (also called swish). */
lm_node *lm_op_silu(lm_graph *g, lm_node *x);
/* Softmax over one axis (negative counts from the end). */
lm_node *lm_op_softmax(lm_graph *g, lm_node *x, int axis);
lm_node *lm_op_log_softmax(lm_graph *g, lm_node *x, int axis);

/* ---- reductions (axes may be negative; n_axes == 0 reduces every axis) ---- */
lm_node *lm_op_sum(lm_graph *g, lm_node *x, int n_axes, const int *axes, bool keepdims);
lm_node *lm_op_mean(lm_graph *g, lm_node *x, int n_axes, const int *axes, bool keepdims);
/* Its gradient is shared equally among tied maxima (as jax.grad of jnp.max). */
lm_node *lm_op_max(lm_graph *g, lm_node *x, int n_axes, const int *axes, bool keepdims);
/* Index of the largest value along axis, as int64 (ties give the first, a NaN wins). */
lm_node *lm_op_argmax(lm_graph *g, lm_node *x, int axis);

/* ---- linear algebra ---- */
/* op(a) @ op(b) where op transposes the last two axes when asked. Leading
 * axes are batch axes and broadcast. */
lm_node *lm_op_matmul(lm_graph *g, lm_node *a, lm_node *b, bool transpose_a, bool transpose_b);
/* Fused act(x @ w + b): x (..., in), w (in, units), b (units) or NULL.
 * act is LM_ACT_LINEAR, LM_ACT_RELU, LM_ACT_SIGMOID or LM_ACT_TANH. */
lm_node *lm_op_dense(lm_graph *g, lm_node *x, lm_node *w, lm_node *b, lm_activation act);
/* x + b with b broadcast along the last axis, then act (same acts as lm_op_dense). */
lm_node *lm_op_bias_act(lm_graph *g, lm_node *x, lm_node *b, lm_activation act);

/* ---- shape and indexing ---- */
/* A view with a new shape; one dimension may be -1. */
lm_node *lm_op_reshape(lm_graph *g, lm_node *x, lm_shape shape);
/* Collapses all axes after the first: (batch, ...) -> (batch, prod(...)). */
lm_node *lm_op_flatten(lm_graph *g, lm_node *x);
/* Permutes axes: output axis i is input axis perm[i] (negative counts from
 * the end; NULL reverses the axes). */
lm_node *lm_op_transpose(lm_graph *g, lm_node *x, const int *perm);
/* Joins n tensors along axis. */
lm_node *lm_op_concat(lm_graph *g, int n, lm_node *const *xs, int axis);
/* x[begin[i] : begin[i] + size[i]] on every axis; size -1 means "to the end". */
lm_node *lm_op_slice(lm_graph *g, lm_node *x, const int64_t *begin, const int64_t *size);
/* Pads every axis with before[i] and after[i] copies of value. */
lm_node *lm_op_pad(lm_graph *g, lm_node *x, const int64_t *before, const int64_t *after,
                   float value);
/* Rows of params picked by int32 or int64 indices (embedding lookup on axis
 * 0): output shape indices.shape + params.shape[1:]. A negative index counts
 * from the end (as keras.ops.take); one outside [-rows, rows) is an error at
 * run time. */
lm_node *lm_op_gather(lm_graph *g, lm_node *params, lm_node *indices);
/* One-hot float32 encoding of int32 or int64 indices, a new last axis of size
 * depth; an index outside [0, depth) gives a row of zeros. */
lm_node *lm_op_one_hot(lm_graph *g, lm_node *indices, int depth);
/* Converts elements to another dtype. */
lm_node *lm_op_cast(lm_graph *g, lm_node *x, lm_dtype dt);
/* A tensor shaped like x filled with v. */
lm_node *lm_op_fill_like(lm_graph *g, lm_node *x, float v);
/* Repeats a (batch, features) tensor n times along a new axis 1. */
lm_node *lm_op_repeat(lm_graph *g, lm_node *x, int n);

/* ---- convolution and pooling (channels last: NWC and NHWC) ---- */
typedef enum lm_padding { LM_PAD_VALID = 0, LM_PAD_SAME = 1, LM_PAD_CAUSAL = 2 } lm_padding;

/* Options for convolutions; a zero field takes the default (1). */
typedef struct lm_conv_opts {
    int strides[2];
    int dilation[2];
    int groups;
    lm_padding padding;
} lm_conv_opts;

/* x (N, H, W, Cin), w (KH, KW, Cin/groups, Cout) -> (N, OH, OW, Cout). "same"
 * padding is split as TensorFlow splits it: the extra row or column goes after. */
lm_node *lm_op_conv2d(lm_graph *g, lm_node *x, lm_node *w, lm_conv_opts o);
/* x (N, W, Cin), w (K, Cin/groups, Cout) -> (N, OW, Cout); strides[0] and
 * dilation[0] are used; padding may also be LM_PAD_CAUSAL. */
lm_node *lm_op_conv1d(lm_graph *g, lm_node *x, lm_node *w, lm_conv_opts o);

/* Fused act(conv(x, w) + b): the bias and relu run while the outputs are
 * still in registers. b (filters) may be NULL; act is LM_ACT_LINEAR,
 * LM_ACT_RELU, LM_ACT_SIGMOID or LM_ACT_TANH. */
lm_node *lm_op_conv2d_bias_act(lm_graph *g, lm_node *x, lm_node *w, lm_node *b, lm_conv_opts o,
                               lm_activation act);
lm_node *lm_op_conv1d_bias_act(lm_graph *g, lm_node *x, lm_node *w, lm_node *b, lm_conv_opts o,
                               lm_activation act);

/* Options for pooling; zero strides default to the pool size. Padding is
 * valid or same; 1-D pooling uses size[0] and strides[0]. */
typedef struct lm_pool_opts {
    int size[2];
    int strides[2];
    lm_padding padding;
} lm_pool_opts;

/* x (N, H, W, C) -> (N, OH, OW, C); the 1-D forms take (N, W, C). The max
 * pooling gradient goes to the first largest cell of each window. */
lm_node *lm_op_max_pool2d(lm_graph *g, lm_node *x, lm_pool_opts o);
/* Average pooling; with "same" padding the padded cells are not counted. */
lm_node *lm_op_avg_pool2d(lm_graph *g, lm_node *x, lm_pool_opts o);
lm_node *lm_op_max_pool1d(lm_graph *g, lm_node *x, lm_pool_opts o);
lm_node *lm_op_avg_pool1d(lm_graph *g, lm_node *x, lm_pool_opts o);
/* Mean or max over every axis but the first and the last: (N, ..., C) -> (N, C). */
lm_node *lm_op_global_avg_pool(lm_graph *g, lm_node *x);
lm_node *lm_op_global_max_pool(lm_graph *g, lm_node *x);

/* ---- regularisation and normalisation ---- */
/* Inverted dropout: in training runs, zeroes each element with probability
 * rate and scales the rest by 1 / (1 - rate); identity otherwise. The mask
 * depends only on seed, the node and the session's step count (not on the
 * thread count). rate must be in [0, 1). */
lm_node *lm_op_dropout(lm_graph *g, lm_node *x, float rate, uint64_t seed);
/* Batch normalisation over every axis but the last (Keras axis=-1):
 * y = (x - mean) * rsqrt(var + epsilon) * gamma + beta. In training runs it
 * uses the batch mean and biased variance and updates the moving_mean and
 * moving_var variables in place (moving = moving * momentum + batch *
 * (1 - momentum), with the biased variance, as Keras 3); otherwise it uses the
 * moving statistics. gamma or beta may be NULL; moving_mean and moving_var
 * must be variables and get no gradient. Keras defaults: momentum 0.99,
 * epsilon 1e-3. */
lm_node *lm_op_batch_norm(lm_graph *g, lm_node *x, lm_node *gamma, lm_node *beta,
                          lm_node *moving_mean, lm_node *moving_var, float momentum, float epsilon);
/* Layer normalisation over the last axis, as Keras 3:
 * (x - mean) * rsqrt(biased var + epsilon) * gamma + beta (Keras default
 * epsilon 1e-3); gamma or beta may be NULL. */
lm_node *lm_op_layer_norm(lm_graph *g, lm_node *x, lm_node *gamma, lm_node *beta, float epsilon);

/* ---- recurrent layers over a whole sequence ---- */
typedef struct lm_rnn_opts {
    bool return_sequences;    /* output (N, T, H) rather than (N, H) */
    bool go_backwards;        /* read the sequence from the end (output not reversed back) */
    lm_activation activation; /* 0 means tanh unless activations_set */
    lm_activation recurrent_activation; /* 0 means sigmoid (LSTM, GRU) unless activations_set */
    bool reset_after; /* GRU: Keras 3 default is true; set .reset_after_set to honour false */
    bool reset_after_set;
    bool activations_set; /* take both activations as given, so 0 is linear */
} lm_rnn_opts;

/* Activations: tanh, sigmoid, relu, linear, hard_sigmoid. The returned node
 * is (N, T, H) with return_sequences (in processing order), else (N, H).
 * x (N, T, F), kernel (F, H), recurrent (H, H), bias (H) or NULL, h0 (N, H) or
 * NULL. *h_last (may be NULL) receives the final state. */
lm_node *lm_op_simple_rnn(lm_graph *g, lm_node *x, lm_node *kernel, lm_node *recurrent,
                          lm_node *bias, lm_node *h0, lm_rnn_opts o, lm_node **h_last);
/* LSTM with gates in Keras order i, f, c, o: kernel (F, 4H), recurrent (H, 4H),
 * bias (4H) or NULL, h0/c0 (N, H) or NULL. *h_last and *c_last may be NULL. */
lm_node *lm_op_lstm(lm_graph *g, lm_node *x, lm_node *kernel, lm_node *recurrent, lm_node *bias,
                    lm_node *h0, lm_node *c0, lm_rnn_opts o, lm_node **h_last, lm_node **c_last);
/* GRU with gates in Keras order z, r, h: kernel (F, 3H), recurrent (H, 3H),
 * bias (2, 3H) with reset_after, (3H) without, or NULL. */
lm_node *lm_op_gru(lm_graph *g, lm_node *x, lm_node *kernel, lm_node *recurrent, lm_node *bias,
                   lm_node *h0, lm_rnn_opts o, lm_node **h_last);

/* ---- losses: one value per sample, as Keras computes before reduction: the
 * shape without the last axis, which mse, mae, huber and binary_crossentropy
 * average over and the categorical losses sum over (the classes). y_true and
 * y_pred match in shape, or one has an extra trailing axis of size 1 (Keras's
 * squeeze_or_expand_to_same_rank). ---- */
lm_node *lm_op_mse(lm_graph *g, lm_node *y_true, lm_node *y_pred);
lm_node *lm_op_mae(lm_graph *g, lm_node *y_true, lm_node *y_pred);
lm_node *lm_op_huber(lm_graph *g, lm_node *y_true, lm_node *y_pred, float delta);
/* Probabilities are clipped to [1e-7, 1 - 1e-7] as Keras does, unless from_logits. */
lm_node *lm_op_binary_crossentropy(lm_graph *g, lm_node *y_true, lm_node *y_pred, bool from_logits);
lm_node *lm_op_categorical_crossentropy(lm_graph *g, lm_node *y_true, lm_node *y_pred,
                                        bool from_logits);
/* y_true holds class indices (int32, int64, uint8 or float, truncated like
 * Keras's cast to int32), shaped like y_pred without its last axis (a
 * trailing axis of size 1 is accepted). An index outside [0, classes) makes
 * the run fail with a message. */
lm_node *lm_op_sparse_categorical_crossentropy(lm_graph *g, lm_node *y_true, lm_node *y_pred,
                                               bool from_logits);

#ifdef __cplusplus
}
#endif
#endif
