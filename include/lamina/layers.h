/* Keras layers. Each constructor takes its required arguments, then Keras's
 * keyword arguments as designated initialisers:
 *
 *     lm_dense(64, .activation = LM_RELU, .kernel_initializer = lm_he_normal())
 *
 * A field left out (zero) takes Keras's default. Options whose Keras default
 * is true are lm_flag fields: write LM_FALSE to turn them off (C's `false` is
 * 0, which means "default"). A layer belongs to the model it is added to or
 * called in, which frees it; free a layer never used with lm_layer_free. */
#ifndef LAMINA_LAYERS_H
#define LAMINA_LAYERS_H

#include <stdbool.h>
#include <stdint.h>
#include "lamina/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lm_layer lm_layer;

/* Tri-state for options whose Keras default is true. */
typedef enum lm_flag { LM_DEFAULT = 0, LM_TRUE = 1, LM_FALSE = 2 } lm_flag;

/* Keras-style activation names for layer options. */
#define LM_LINEAR       LM_ACT_LINEAR
#define LM_RELU         LM_ACT_RELU
#define LM_SIGMOID      LM_ACT_SIGMOID
#define LM_TANH         LM_ACT_TANH
#define LM_SOFTMAX      LM_ACT_SOFTMAX
#define LM_LEAKY_RELU   LM_ACT_LEAKY_RELU
#define LM_ELU          LM_ACT_ELU
#define LM_SELU         LM_ACT_SELU
#define LM_GELU         LM_ACT_GELU
#define LM_HARD_SIGMOID LM_ACT_HARD_SIGMOID
#define LM_SOFTPLUS     LM_ACT_SOFTPLUS
#define LM_SOFTSIGN     LM_ACT_SOFTSIGN
#define LM_SILU         LM_ACT_SILU
#define LM_SWISH        LM_ACT_SILU
#define LM_EXPONENTIAL  LM_ACT_EXP
#define LM_VALID        LM_PAD_VALID
#define LM_SAME         LM_PAD_SAME
#define LM_CAUSAL       LM_PAD_CAUSAL

/* ---- initializers (Keras names and defaults) ---- */
typedef enum lm_init_kind {
    LM_INIT_DEFAULT = 0, /* the layer's own default */
    LM_INIT_GLOROT_UNIFORM,
    LM_INIT_GLOROT_NORMAL,
    LM_INIT_HE_UNIFORM,
    LM_INIT_HE_NORMAL,
    LM_INIT_LECUN_UNIFORM,
    LM_INIT_LECUN_NORMAL,
    LM_INIT_ORTHOGONAL,
    LM_INIT_ZEROS,
    LM_INIT_ONES,
    LM_INIT_CONSTANT,
    LM_INIT_RANDOM_NORMAL,
    LM_INIT_RANDOM_UNIFORM,
    LM_INIT_TRUNCATED_NORMAL,
    LM_INIT_COUNT
} lm_init_kind;

typedef struct lm_initializer {
    lm_init_kind kind;
    double value;          /* constant */
    double mean, stddev;   /* normal kinds; stddev 0 means 0.05 */
    double minval, maxval; /* random_uniform; both 0 mean [-0.05, 0.05] */
    double gain;           /* orthogonal; 0 means 1 */
    uint64_t seed;         /* used when has_seed */
    bool has_seed;
} lm_initializer;

#define lm_glorot_uniform(...)   ((lm_initializer){.kind = LM_INIT_GLOROT_UNIFORM, __VA_ARGS__})
#define lm_glorot_normal(...)    ((lm_initializer){.kind = LM_INIT_GLOROT_NORMAL, __VA_ARGS__})
#define lm_he_uniform(...)       ((lm_initializer){.kind = LM_INIT_HE_UNIFORM, __VA_ARGS__})
#define lm_he_normal(...)        ((lm_initializer){.kind = LM_INIT_HE_NORMAL, __VA_ARGS__})
#define lm_lecun_uniform(...)    ((lm_initializer){.kind = LM_INIT_LECUN_UNIFORM, __VA_ARGS__})
#define lm_lecun_normal(...)     ((lm_initializer){.kind = LM_INIT_LECUN_NORMAL, __VA_ARGS__})
#define lm_orthogonal(...)       ((lm_initializer){.kind = LM_INIT_ORTHOGONAL, __VA_ARGS__})
#define lm_zeros()               ((lm_initializer){.kind = LM_INIT_ZEROS})
#define lm_ones()                ((lm_initializer){.kind = LM_INIT_ONES})
#define lm_constant_init(v)      ((lm_initializer){.kind = LM_INIT_CONSTANT, .value = (v)})
#define lm_random_normal(...)    ((lm_initializer){.kind = LM_INIT_RANDOM_NORMAL, __VA_ARGS__})
#define lm_random_uniform(...)   ((lm_initializer){.kind = LM_INIT_RANDOM_UNIFORM, __VA_ARGS__})
#define lm_truncated_normal(...) ((lm_initializer){.kind = LM_INIT_TRUNCATED_NORMAL, __VA_ARGS__})

/* Keras name of an initializer kind ("glorot_uniform", ...); NULL if invalid. */
const char *lm_init_name(lm_init_kind k);
/* Kind from a Keras name (class or snake_case, e.g. "GlorotUniform"); -1 if unknown. */
int lm_init_from_name(const char *name);
/* Fills t as the initializer would fill a weight of t's shape, drawing from
 * the tensor's context (or the initializer's own seed). */
lm_status lm_initializer_apply(lm_initializer init, lm_tensor *t);

/* ---- regularizers: penalty l1 * sum|w| + l2 * sum w^2 added to the loss ---- */
typedef struct lm_regularizer {
    double l1, l2;
} lm_regularizer;
#define lm_l1(x)       ((lm_regularizer){.l1 = (x)})
#define lm_l2(x)       ((lm_regularizer){.l2 = (x)})
#define lm_l1_l2(a, b) ((lm_regularizer){.l1 = (a), .l2 = (b)})

/* Two sizes (kernel, pool, strides, dilation). LM_SIZE(3, 3). */
typedef struct lm_size2 {
    int h, w;
} lm_size2;
#define LM_SIZE(a, b) ((lm_size2){(a), (b)})

/* Options every layer accepts. input_shape (without the batch) or input_dim
 * makes a first Sequential layer define the model's input. */
#define LM_LAYER_COMMON                                                                            \
    const char *name;                                                                              \
    lm_shape input_shape;                                                                          \
    int64_t input_dim;                                                                             \
    lm_flag trainable

/* ---- core layers ---- */
typedef struct lm_input_opts {
    const char *name;
    lm_dtype dtype; /* default float32 */
} lm_input_opts;
/* keras.layers.Input / InputLayer for Sequential models: shape without the batch. */
lm_layer *lm_input_(lm_shape shape, lm_input_opts o);
#define lm_input(shape, ...) lm_input_((shape), (lm_input_opts){__VA_ARGS__})

typedef struct lm_dense_opts {
    LM_LAYER_COMMON;
    lm_activation activation;
    lm_flag use_bias;
    lm_initializer kernel_initializer, bias_initializer;
    const lm_regularizer *kernel_regularizer, *bias_regularizer, *activity_regularizer;
} lm_dense_opts;
lm_layer *lm_dense_(int units, lm_dense_opts o);
#define lm_dense(units, ...) lm_dense_((units), (lm_dense_opts){__VA_ARGS__})

typedef struct lm_activation_opts {
    LM_LAYER_COMMON;
    float alpha; /* leaky_relu negative slope, elu alpha; 0 keeps the activation's
                    default (0.2 and 1, as Activation("leaky_relu") / ("elu")) */
} lm_activation_opts;
lm_layer *lm_activation_layer_(lm_activation a, lm_activation_opts o);
#define lm_activation_layer(a, ...) lm_activation_layer_((a), (lm_activation_opts){__VA_ARGS__})

typedef struct lm_dropout_opts {
    LM_LAYER_COMMON;
    uint64_t seed;
} lm_dropout_opts;
/* rate in [0, 1) (NULL otherwise); without a seed option the seed is drawn
 * from the model's RNG when the layer is built. */
lm_layer *lm_dropout_(float rate, lm_dropout_opts o);
#define lm_dropout(rate, ...) lm_dropout_((rate), (lm_dropout_opts){__VA_ARGS__})

typedef struct lm_basic_opts {
    LM_LAYER_COMMON;
} lm_basic_opts;
lm_layer *lm_flatten_(lm_basic_opts o);
#define lm_flatten(...) lm_flatten_((lm_basic_opts){__VA_ARGS__})
/* Target shape without the batch; one dimension may be -1. */
lm_layer *lm_reshape_(lm_shape target, lm_basic_opts o);
#define lm_reshape(target, ...) lm_reshape_((target), (lm_basic_opts){__VA_ARGS__})
/* Permutation of the non-batch axes, 1-based as in Keras: LM_SHAPE(2, 1). */
lm_layer *lm_permute_(lm_shape dims, lm_basic_opts o);
#define lm_permute(dims, ...) lm_permute_((dims), (lm_basic_opts){__VA_ARGS__})
lm_layer *lm_repeat_vector_(int n, lm_basic_opts o);
#define lm_repeat_vector(n, ...) lm_repeat_vector_((n), (lm_basic_opts){__VA_ARGS__})

/* ---- convolution and pooling (channels last) ---- */
typedef struct lm_conv_layer_opts {
    LM_LAYER_COMMON;
    lm_size2 strides;       /* default (1, 1); Conv1D uses .h */
    lm_padding padding;     /* default valid */
    lm_size2 dilation_rate; /* default (1, 1) */
    int groups;             /* default 1 */
    lm_activation activation;
    lm_flag use_bias;
    lm_initializer kernel_initializer, bias_initializer;
    const lm_regularizer *kernel_regularizer, *bias_regularizer, *activity_regularizer;
} lm_conv_layer_opts;
lm_layer *lm_conv2d_(int filters, lm_size2 kernel_size, lm_conv_layer_opts o);
#define lm_conv2d(filters, ks, ...) lm_conv2d_((filters), (ks), (lm_conv_layer_opts){__VA_ARGS__})
lm_layer *lm_conv1d_(int filters, int kernel_size, lm_conv_layer_opts o);
#define lm_conv1d(filters, k, ...) lm_conv1d_((filters), (k), (lm_conv_layer_opts){__VA_ARGS__})

/* A pool size of 0 takes Keras's default, 2 (2 x 2). */
typedef struct lm_pool_layer_opts {
    LM_LAYER_COMMON;
    lm_size2 strides; /* default: the pool size; 1-D layers use .h */
    lm_padding padding;
} lm_pool_layer_opts;
lm_layer *lm_max_pooling2d_(lm_size2 pool_size, lm_pool_layer_opts o);
#define lm_max_pooling2d(ps, ...) lm_max_pooling2d_((ps), (lm_pool_layer_opts){__VA_ARGS__})
lm_layer *lm_average_pooling2d_(lm_size2 pool_size, lm_pool_layer_opts o);
#define lm_average_pooling2d(ps, ...) lm_average_pooling2d_((ps), (lm_pool_layer_opts){__VA_ARGS__})
lm_layer *lm_max_pooling1d_(int pool_size, lm_pool_layer_opts o);
#define lm_max_pooling1d(ps, ...) lm_max_pooling1d_((ps), (lm_pool_layer_opts){__VA_ARGS__})
lm_layer *lm_average_pooling1d_(int pool_size, lm_pool_layer_opts o);
#define lm_average_pooling1d(ps, ...) lm_average_pooling1d_((ps), (lm_pool_layer_opts){__VA_ARGS__})

typedef struct lm_global_pool_opts {
    LM_LAYER_COMMON;
    bool keepdims;
} lm_global_pool_opts;
lm_layer *lm_global_average_pooling1d_(lm_global_pool_opts o);
#define lm_global_average_pooling1d(...)                                                           \
    lm_global_average_pooling1d_((lm_global_pool_opts){__VA_ARGS__})
lm_layer *lm_global_average_pooling2d_(lm_global_pool_opts o);
#define lm_global_average_pooling2d(...)                                                           \
    lm_global_average_pooling2d_((lm_global_pool_opts){__VA_ARGS__})
lm_layer *lm_global_max_pooling1d_(lm_global_pool_opts o);
#define lm_global_max_pooling1d(...) lm_global_max_pooling1d_((lm_global_pool_opts){__VA_ARGS__})
lm_layer *lm_global_max_pooling2d_(lm_global_pool_opts o);
#define lm_global_max_pooling2d(...) lm_global_max_pooling2d_((lm_global_pool_opts){__VA_ARGS__})

typedef struct lm_zero_padding2d_opts {
    LM_LAYER_COMMON;
    int padding[2][2]; /* ((top, bottom), (left, right)); all zero means ((1, 1), (1, 1)) */
} lm_zero_padding2d_opts;
lm_layer *lm_zero_padding2d_(lm_zero_padding2d_opts o);
#define lm_zero_padding2d(...) lm_zero_padding2d_((lm_zero_padding2d_opts){__VA_ARGS__})

/* ---- normalisation and embedding ---- */
typedef struct lm_batch_norm_opts {
    LM_LAYER_COMMON;
    float momentum; /* default 0.99 */
    float epsilon;  /* default 1e-3 */
    lm_flag center, scale;
    lm_initializer beta_initializer, gamma_initializer, moving_mean_initializer,
        moving_variance_initializer;
    const lm_regularizer *beta_regularizer, *gamma_regularizer;
} lm_batch_norm_opts;
lm_layer *lm_batch_normalization_(lm_batch_norm_opts o);
#define lm_batch_normalization(...) lm_batch_normalization_((lm_batch_norm_opts){__VA_ARGS__})

typedef struct lm_layer_norm_opts {
    LM_LAYER_COMMON;
    float epsilon; /* default 1e-3 */
    lm_flag center, scale;
    lm_initializer beta_initializer, gamma_initializer;
    const lm_regularizer *beta_regularizer, *gamma_regularizer;
} lm_layer_norm_opts;
lm_layer *lm_layer_normalization_(lm_layer_norm_opts o);
#define lm_layer_normalization(...) lm_layer_normalization_((lm_layer_norm_opts){__VA_ARGS__})

typedef struct lm_embedding_opts {
    LM_LAYER_COMMON;
    lm_initializer embeddings_initializer; /* default uniform [-0.05, 0.05] */
    const lm_regularizer *embeddings_regularizer;
} lm_embedding_opts;
lm_layer *lm_embedding_(int input_dim, int output_dim, lm_embedding_opts o);
#define lm_embedding(in, out, ...) lm_embedding_((in), (out), (lm_embedding_opts){__VA_ARGS__})

/* ---- recurrent ----
 * SimpleRNN, LSTM and GRU take (batch, timesteps, features). The output is
 * the sequence with return_sequences (in processing order, so reversed with
 * go_backwards, as Keras), else the last output; with return_state,
 * lm_call_multi also returns the final states: [output, h] or [output, h, c].
 * Keras's layer(x, initial_state=[h, c]) is lm_call_n(layer, 3, (x, h, c))
 * (SimpleRNN and GRU: (x, h)), each state (batch, units). Weights: kernel,
 * recurrent_kernel, bias as Keras's cells; the fused kernels take the
 * activations tanh, sigmoid, relu, linear and hard_sigmoid. */
typedef struct lm_rnn_layer_opts {
    LM_LAYER_COMMON;
    lm_activation activation;           /* default tanh */
    lm_activation recurrent_activation; /* default sigmoid (LSTM, GRU) */
    bool activations_set;               /* take both activations as given, so LM_LINEAR is linear */
    lm_flag use_bias;
    bool return_sequences, return_state, go_backwards;
    lm_flag unit_forget_bias; /* LSTM, default true */
    lm_flag reset_after;      /* GRU, default true */
    lm_initializer kernel_initializer, recurrent_initializer, bias_initializer;
    const lm_regularizer *kernel_regularizer, *recurrent_regularizer, *bias_regularizer,
        *activity_regularizer;
} lm_rnn_layer_opts;
lm_layer *lm_simple_rnn_(int units, lm_rnn_layer_opts o);
#define lm_simple_rnn(units, ...) lm_simple_rnn_((units), (lm_rnn_layer_opts){__VA_ARGS__})
lm_layer *lm_lstm_(int units, lm_rnn_layer_opts o);
#define lm_lstm(units, ...) lm_lstm_((units), (lm_rnn_layer_opts){__VA_ARGS__})
lm_layer *lm_gru_(int units, lm_rnn_layer_opts o);
#define lm_gru(units, ...) lm_gru_((units), (lm_rnn_layer_opts){__VA_ARGS__})

typedef enum lm_merge_mode {
    LM_MERGE_CONCAT = 0, /* default */
    LM_MERGE_SUM,
    LM_MERGE_MUL,
    LM_MERGE_AVE
} lm_merge_mode;
typedef struct lm_bidirectional_opts {
    LM_LAYER_COMMON;
    lm_merge_mode merge_mode;
} lm_bidirectional_opts;
/* Wraps a recurrent layer (taking ownership); the backward copy mirrors it
 * with go_backwards, and its sequence output is reversed back before the
 * merge. Names "forward_<layer>" and "backward_<layer>", weights in that
 * order. With return_state the outputs are [merged, forward states...,
 * backward states...]; an initial state is (x, forward states..., backward
 * states...). NULL for a non-recurrent layer or one with go_backwards (Keras
 * refuses both). */
lm_layer *lm_bidirectional_(lm_layer *layer, lm_bidirectional_opts o);
#define lm_bidirectional(l, ...) lm_bidirectional_((l), (lm_bidirectional_opts){__VA_ARGS__})

/* ---- merging (functional models) ---- */
lm_layer *lm_add_layer_(lm_basic_opts o);
#define lm_add_layer(...) lm_add_layer_((lm_basic_opts){__VA_ARGS__})
lm_layer *lm_subtract_(lm_basic_opts o);
#define lm_subtract(...) lm_subtract_((lm_basic_opts){__VA_ARGS__})
lm_layer *lm_multiply_(lm_basic_opts o);
#define lm_multiply(...) lm_multiply_((lm_basic_opts){__VA_ARGS__})
lm_layer *lm_average_(lm_basic_opts o);
#define lm_average(...) lm_average_((lm_basic_opts){__VA_ARGS__})
typedef struct lm_concat_opts {
    LM_LAYER_COMMON;
    int axis; /* default (0) means -1: the batch axis cannot be joined */
} lm_concat_opts;
lm_layer *lm_concatenate_(lm_concat_opts o);
#define lm_concatenate(...) lm_concatenate_((lm_concat_opts){__VA_ARGS__})

/* ---- inspecting layers ---- */
/* Frees a layer that was never added to a model. NULL is a no-op. */
void lm_layer_free(lm_layer *l);
/* The layer's name ("dense_1"), assigned when it joins a model unless given. */
const char *lm_layer_name(const lm_layer *l);
/* Keras class name ("Dense"). */
const char *lm_layer_class(const lm_layer *l);
/* Number of weights (trainable first, in Keras's order; a wrapper's are its
 * wrapped layers'). */
int lm_layer_weight_count(const lm_layer *l);
/* Weight i's storage (read or write it in place); NULL before the layer is built. */
lm_tensor *lm_layer_weight(lm_layer *l, int i);
/* Weight i's name ("kernel", "bias", "moving_mean", ...). */
const char *lm_layer_weight_name(const lm_layer *l, int i);
/* Whether weight i is trained. */
bool lm_layer_weight_trainable(const lm_layer *l, int i);
/* Copies n tensors into the layer's weights, in Keras's get_weights order;
 * shapes must match (the message names the layer and both shapes). */
lm_status lm_layer_set_weights(lm_layer *l, int n, lm_tensor *const *w);
/* Freezes or unfreezes the layer (before compile). */
lm_status lm_layer_set_trainable(lm_layer *l, bool trainable);

#ifdef __cplusplus
}
#endif
#endif
