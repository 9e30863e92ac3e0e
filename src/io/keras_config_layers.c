/* Layers from their Keras config: a table from class name to a function
 * reading Keras's keys and calling the public constructor. Keys Lamina does
 * not use are ignored; values it cannot honour (constraints, masking,
 * channels_first, dropout inside recurrent cells, ...) are refused with a
 * message naming the layer and the key, never silently dropped. */
#include "io/keras_config.h"
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Largest input dimension a config may declare: layers allocate per step or
 * per position at build time (Bidirectional's reversal), so a crafted shape
 * must not ask for gigabytes. */
#define MAX_DIM (1 << 24)

typedef struct common {
    const char *name;
    lm_flag trainable;
    lm_shape input_shape; /* Keras 2's batch_input_shape on a first layer, without the batch */
} common;

#define COMMON(k) .name = (k)->name, .input_shape = (k)->input_shape, .trainable = (k)->trainable

static lm_flag flag(bool b) {
    return b ? LM_TRUE : LM_FALSE;
}

static const cJSON *get(const cJSON *o, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

/* A required integer key. */
static int64_t req_int(lm_kc_reader *r, const cJSON *c, const char *key, int64_t lo, int64_t hi) {
    const cJSON *v = get(c, key);
    if (!v || cJSON_IsNull(v)) {
        lm_kc_fail(r, LM_ERR_FORMAT, "the config lacks \"%s\"", key);
        return lo;
    }
    return lm_kc_int(r, c, key, lo, lo, hi);
}

/* kernel_size, strides, pool_size, dilation_rate: an integer (used for every
 * axis) or a list of rank integers; dflt when absent. */
static bool sizes(lm_kc_reader *r, const cJSON *c, const char *key, int rank, int dflt,
                  int out[2]) {
    int64_t v[2] = {dflt, dflt};
    int n = lm_kc_ints(r, c, key, 2, v, 1, 1 << 20);
    if (n < 0) return false;
    if (n == 1) v[1] = v[0];
    if (n == 2 && rank == 1) {
        char b[80];
        lm_kc_fail(r, LM_ERR_FORMAT, "\"%s\" must have 1 entry, got %s", key,
                   lm_kc_show(get(c, key), b, sizeof b));
        return false;
    }
    out[0] = (int)v[0], out[1] = (int)v[1];
    return true;
}

static void no_constraints(lm_kc_reader *r, const cJSON *c, const char *const *keys) {
    for (int i = 0; keys[i]; i++) lm_kc_expect_null(r, c, keys[i]);
}

static void channels_last(lm_kc_reader *r, const cJSON *c) {
    lm_kc_expect_str(r, c, "data_format", "channels_last");
}

/* ---- core ---- */

static lm_layer *dense(lm_kc_reader *r, const cJSON *c, const common *k) {
    int64_t units = req_int(r, c, "units", 1, INT32_MAX);
    lm_regularizer kr, br;
    lm_dense_opts o = {COMMON(k), .activation = lm_kc_act(r, c, "activation", LM_ACT_LINEAR),
                       .use_bias = flag(lm_kc_bool(r, c, "use_bias", true)),
                       .kernel_initializer = lm_kc_init(r, c, "kernel_initializer"),
                       .bias_initializer = lm_kc_init(r, c, "bias_initializer")};
    if (lm_kc_reg(r, c, "kernel_regularizer", &kr)) o.kernel_regularizer = &kr;
    if (lm_kc_reg(r, c, "bias_regularizer", &br)) o.bias_regularizer = &br;
    no_constraints(r, c,
                   (const char *[]){"kernel_constraint", "bias_constraint", "quantization_config",
                                    "lora_rank", NULL});
    return r->st ? NULL : lm_dense_((int)units, o);
}

static lm_layer *activation(lm_kc_reader *r, const cJSON *c, const common *k) {
    if (!get(c, "activation")) lm_kc_fail(r, LM_ERR_FORMAT, "the config lacks \"activation\"");
    lm_activation a = lm_kc_act(r, c, "activation", LM_ACT_LINEAR);
    return r->st ? NULL : lm_activation_layer_(a, (lm_activation_opts){COMMON(k)});
}

static lm_layer *dropout(lm_kc_reader *r, const cJSON *c, const common *k) {
    double rate = lm_kc_num(r, c, "rate", -1);
    if (!r->st && !(rate >= 0 && rate < 1))
        lm_kc_fail(r, rate == 1 ? LM_ERR_UNSUPPORTED : LM_ERR_FORMAT,
                   "\"rate\" must be in [0, 1), got %g%s", rate, rate == -1 ? " (missing)" : "");
    int64_t seed = lm_kc_int(r, c, "seed", 0, 0, INT64_C(9007199254740992));
    lm_kc_expect_null(r, c, "noise_shape");
    return r->st ? NULL
                 : lm_dropout_((float)rate, (lm_dropout_opts){COMMON(k), .seed = (uint64_t)seed});
}

static lm_layer *flatten(lm_kc_reader *r, const cJSON *c, const common *k) {
    channels_last(r, c);
    return r->st ? NULL : lm_flatten_((lm_basic_opts){COMMON(k)});
}

/* A required list of 1 to LM_MAX_DIMS - 1 integers, each >= lo or -1. */
static lm_shape shape_list(lm_kc_reader *r, const cJSON *c, const char *key, int64_t lo) {
    lm_shape s = {0, {0}};
    int64_t v[LM_MAX_DIMS];
    int n = lm_kc_ints(r, c, key, LM_MAX_DIMS - 1, v, -1, INT32_MAX);
    if (n == 0) lm_kc_fail(r, LM_ERR_FORMAT, "the config lacks \"%s\"", key);
    for (int i = 0; i < n; i++) {
        if (v[i] < lo && v[i] != -1) {
            char b[80];
            lm_kc_fail(r, LM_ERR_FORMAT, "\"%s\" has an invalid entry %lld in %s", key,
                       (long long)v[i], lm_kc_show(get(c, key), b, sizeof b));
        }
        s.dims[i] = v[i];
    }
    s.ndim = n > 0 ? n : 0;
    return s;
}

static lm_layer *reshape(lm_kc_reader *r, const cJSON *c, const common *k) {
    lm_shape t = shape_list(r, c, "target_shape", 1);
    int unknown = 0;
    for (int i = 0; i < t.ndim; i++) unknown += t.dims[i] == -1;
    if (unknown > 1)
        lm_kc_fail(r, LM_ERR_FORMAT, "\"target_shape\" may hold one -1, got %d", unknown);
    return r->st ? NULL : lm_reshape_(t, (lm_basic_opts){COMMON(k)});
}

static lm_layer *permute(lm_kc_reader *r, const cJSON *c, const common *k) {
    lm_shape d = shape_list(r, c, "dims", 1);
    return r->st ? NULL : lm_permute_(d, (lm_basic_opts){COMMON(k)});
}

static lm_layer *repeat_vector(lm_kc_reader *r, const cJSON *c, const common *k) {
    int64_t n = req_int(r, c, "n", 1, INT32_MAX);
    return r->st ? NULL : lm_repeat_vector_((int)n, (lm_basic_opts){COMMON(k)});
}

/* ---- convolution and pooling ---- */

static lm_layer *conv(lm_kc_reader *r, const cJSON *c, const common *k, int rank) {
    int64_t filters = req_int(r, c, "filters", 1, INT32_MAX);
    int ks[2] = {0, 0}, st[2], dl[2];
    if (!get(c, "kernel_size")) lm_kc_fail(r, LM_ERR_FORMAT, "the config lacks \"kernel_size\"");
    sizes(r, c, "kernel_size", rank, 1, ks);
    sizes(r, c, "strides", rank, 1, st);
    sizes(r, c, "dilation_rate", rank, 1, dl);
    lm_regularizer kr, br;
    lm_conv_layer_opts o = {COMMON(k),
                            .strides = {st[0], st[1]},
                            .padding = lm_kc_padding(r, c, "padding", rank == 1),
                            .dilation_rate = {dl[0], dl[1]},
                            .groups = (int)lm_kc_int(r, c, "groups", 1, 1, INT32_MAX),
                            .activation = lm_kc_act(r, c, "activation", LM_ACT_LINEAR),
                            .use_bias = flag(lm_kc_bool(r, c, "use_bias", true)),
                            .kernel_initializer = lm_kc_init(r, c, "kernel_initializer"),
                            .bias_initializer = lm_kc_init(r, c, "bias_initializer")};
    if (lm_kc_reg(r, c, "kernel_regularizer", &kr)) o.kernel_regularizer = &kr;
    if (lm_kc_reg(r, c, "bias_regularizer", &br)) o.bias_regularizer = &br;
    channels_last(r, c);
    no_constraints(r, c, (const char *[]){"kernel_constraint", "bias_constraint", NULL});
    if (!r->st && (st[0] > 1 || st[1] > 1) && (dl[0] > 1 || dl[1] > 1))
        lm_kc_fail(r, LM_ERR_UNSUPPORTED, "strides > 1 together with dilation_rate > 1");
    if (!r->st && filters % o.groups)
        lm_kc_fail(r, LM_ERR_FORMAT, "\"filters\" (%lld) must be divisible by \"groups\" (%d)",
                   (long long)filters, o.groups);
    if (r->st) return NULL;
    return rank == 2 ? lm_conv2d_((int)filters, LM_SIZE(ks[0], ks[1]), o)
                     : lm_conv1d_((int)filters, ks[0], o);
}

static lm_layer *conv1d(lm_kc_reader *r, const cJSON *c, const common *k) {
    return conv(r, c, k, 1);
}
static lm_layer *conv2d(lm_kc_reader *r, const cJSON *c, const common *k) {
    return conv(r, c, k, 2);
}

static lm_layer *pool(lm_kc_reader *r, const cJSON *c, const common *k, int rank, bool max) {
    int ps[2], st[2] = {0, 0};
    sizes(r, c, "pool_size", rank, 2, ps);
    if (get(c, "strides") && !cJSON_IsNull(get(c, "strides"))) sizes(r, c, "strides", rank, 0, st);
    lm_pool_layer_opts o = {COMMON(k), .strides = {st[0], rank == 1 ? 0 : st[1]},
                            .padding = lm_kc_padding(r, c, "padding", false)};
    channels_last(r, c);
    if (r->st) return NULL;
    if (rank == 2)
        return max ? lm_max_pooling2d_(LM_SIZE(ps[0], ps[1]), o)
                   : lm_average_pooling2d_(LM_SIZE(ps[0], ps[1]), o);
    return max ? lm_max_pooling1d_(ps[0], o) : lm_average_pooling1d_(ps[0], o);
}

static lm_layer *max_pool1d(lm_kc_reader *r, const cJSON *c, const common *k) {
    return pool(r, c, k, 1, true);
}
static lm_layer *max_pool2d(lm_kc_reader *r, const cJSON *c, const common *k) {
    return pool(r, c, k, 2, true);
}
static lm_layer *avg_pool1d(lm_kc_reader *r, const cJSON *c, const common *k) {
    return pool(r, c, k, 1, false);
}
static lm_layer *avg_pool2d(lm_kc_reader *r, const cJSON *c, const common *k) {
    return pool(r, c, k, 2, false);
}

static lm_layer *global_pool(lm_kc_reader *r, const cJSON *c, const common *k, int rank, bool max) {
    lm_global_pool_opts o = {COMMON(k), .keepdims = lm_kc_bool(r, c, "keepdims", false)};
    channels_last(r, c);
    if (r->st) return NULL;
    if (rank == 2) return max ? lm_global_max_pooling2d_(o) : lm_global_average_pooling2d_(o);
    return max ? lm_global_max_pooling1d_(o) : lm_global_average_pooling1d_(o);
}

static lm_layer *gmax1d(lm_kc_reader *r, const cJSON *c, const common *k) {
    return global_pool(r, c, k, 1, true);
}
static lm_layer *gmax2d(lm_kc_reader *r, const cJSON *c, const common *k) {
    return global_pool(r, c, k, 2, true);
}
static lm_layer *gavg1d(lm_kc_reader *r, const cJSON *c, const common *k) {
    return global_pool(r, c, k, 1, false);
}
static lm_layer *gavg2d(lm_kc_reader *r, const cJSON *c, const common *k) {
    return global_pool(r, c, k, 2, false);
}

/* padding: n, [h, w] (symmetric) or [[top, bottom], [left, right]]. */
static lm_layer *zero_padding2d(lm_kc_reader *r, const cJSON *c, const common *k) {
    const cJSON *p = get(c, "padding");
    lm_zero_padding2d_opts o = {COMMON(k)};
    int64_t v[2];
    bool ok = false;
    if (!p || cJSON_IsNull(p)) {
        ok = true; /* Keras's default ((1, 1), (1, 1)), also Lamina's */
    } else if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 2 &&
               cJSON_IsArray(cJSON_GetArrayItem(p, 0))) {
        ok = true;
        for (int i = 0; ok && i < 2; i++) {
            const cJSON *pair = cJSON_GetArrayItem(p, i);
            ok = cJSON_IsArray(pair) && cJSON_GetArraySize(pair) == 2;
            for (int j = 0; ok && j < 2; j++) {
                const cJSON *e = cJSON_GetArrayItem(pair, j);
                ok = cJSON_IsNumber(e) && e->valuedouble >= 0 && e->valuedouble <= (1 << 20) &&
                     e->valuedouble == (int)e->valuedouble;
                if (ok) o.padding[i][j] = (int)e->valuedouble;
            }
        }
    } else {
        int n = lm_kc_ints(r, c, "padding", 2, v, 0, 1 << 20);
        if (n >= 1) {
            ok = true;
            if (n == 1) v[1] = v[0];
            o.padding[0][0] = o.padding[0][1] = (int)v[0];
            o.padding[1][0] = o.padding[1][1] = (int)v[1];
        }
    }
    char b[80];
    if (!ok)
        lm_kc_fail(r, LM_ERR_FORMAT,
                   "\"padding\" must be an integer, 2 integers or 2 pairs, got %s",
                   lm_kc_show(p, b, sizeof b));
    bool all_zero = true;
    for (int i = 0; i < 4; i++) all_zero = all_zero && o.padding[i / 2][i % 2] == 0;
    if (ok && p && !cJSON_IsNull(p) && all_zero)
        lm_kc_fail(r, LM_ERR_UNSUPPORTED, "\"padding\" of zeros everywhere is not supported");
    channels_last(r, c);
    return r->st ? NULL : lm_zero_padding2d_(o);
}

/* ---- normalisation and embedding ---- */

/* axis: -1, [-1], or a positive axis checked against the input rank later. */
static void norm_axis(lm_kc_reader *r, const cJSON *c, int *axis) {
    int64_t v[2] = {-1, 0};
    int n = lm_kc_ints(r, c, "axis", 1, v, -1, LM_MAX_DIMS);
    *axis = n == 1 ? (int)v[0] : -1;
    if (!r->st && *axis == 0) lm_kc_fail(r, LM_ERR_UNSUPPORTED, "\"axis\" 0 (the batch axis)");
}

static void pend_axis(lm_kc_reader *r, lm_layer *l, int axis) {
    if (!l || axis < 0) return;
    if (r->n_axes == (int)(sizeof r->axes / sizeof r->axes[0])) {
        lm_kc_fail(r, LM_ERR_UNSUPPORTED, "too many normalisation layers with a positive axis");
        return;
    }
    r->axes[r->n_axes].layer = l;
    r->axes[r->n_axes++].axis = axis;
}

static lm_layer *batch_norm(lm_kc_reader *r, const cJSON *c, const common *k) {
    int axis;
    norm_axis(r, c, &axis);
    double mom = lm_kc_num(r, c, "momentum", 0.99), eps = lm_kc_num(r, c, "epsilon", 1e-3);
    if (!r->st && !(eps > 0)) lm_kc_fail(r, LM_ERR_FORMAT, "\"epsilon\" must be > 0, got %g", eps);
    lm_regularizer br, gr;
    lm_batch_norm_opts o = {COMMON(k),
                            /* 0 means "default" to the constructor: nudge an exact 0 */
                            .momentum = mom == 0 ? 1e-30f : (float)mom, .epsilon = (float)eps,
                            .center = flag(lm_kc_bool(r, c, "center", true)),
                            .scale = flag(lm_kc_bool(r, c, "scale", true)),
                            .beta_initializer = lm_kc_init(r, c, "beta_initializer"),
                            .gamma_initializer = lm_kc_init(r, c, "gamma_initializer"),
                            .moving_mean_initializer = lm_kc_init(r, c, "moving_mean_initializer"),
                            .moving_variance_initializer =
                                lm_kc_init(r, c, "moving_variance_initializer")};
    if (lm_kc_reg(r, c, "beta_regularizer", &br)) o.beta_regularizer = &br;
    if (lm_kc_reg(r, c, "gamma_regularizer", &gr)) o.gamma_regularizer = &gr;
    no_constraints(r, c,
                   (const char *[]){"beta_constraint", "gamma_constraint", "renorm",
                                    "virtual_batch_size", "adjustment", NULL});
    if (r->st) return NULL;
    lm_layer *l = lm_batch_normalization_(o);
    pend_axis(r, l, axis);
    return l;
}

static lm_layer *layer_norm(lm_kc_reader *r, const cJSON *c, const common *k) {
    int axis;
    norm_axis(r, c, &axis);
    double eps = lm_kc_num(r, c, "epsilon", 1e-3);
    if (!r->st && !(eps > 0)) lm_kc_fail(r, LM_ERR_FORMAT, "\"epsilon\" must be > 0, got %g", eps);
    lm_regularizer br, gr;
    lm_layer_norm_opts o = {COMMON(k),
                            .epsilon = (float)eps,
                            .center = flag(lm_kc_bool(r, c, "center", true)),
                            .scale = flag(lm_kc_bool(r, c, "scale", true)),
                            .beta_initializer = lm_kc_init(r, c, "beta_initializer"),
                            .gamma_initializer = lm_kc_init(r, c, "gamma_initializer")};
    if (lm_kc_reg(r, c, "beta_regularizer", &br)) o.beta_regularizer = &br;
    if (lm_kc_reg(r, c, "gamma_regularizer", &gr)) o.gamma_regularizer = &gr;
    no_constraints(r, c,
                   (const char *[]){"beta_constraint", "gamma_constraint", "rms_scaling", NULL});
    if (r->st) return NULL;
    lm_layer *l = lm_layer_normalization_(o);
    pend_axis(r, l, axis);
    return l;
}

static lm_layer *embedding(lm_kc_reader *r, const cJSON *c, const common *k) {
    int64_t in = req_int(r, c, "input_dim", 1, INT32_MAX),
            out = req_int(r, c, "output_dim", 1, INT32_MAX);
    lm_regularizer er;
    lm_embedding_opts o = {COMMON(k),
                           .embeddings_initializer = lm_kc_init(r, c, "embeddings_initializer")};
    if (lm_kc_reg(r, c, "embeddings_regularizer", &er)) o.embeddings_regularizer = &er;
    no_constraints(r, c,
                   (const char *[]){"embeddings_constraint", "mask_zero", "quantization_config",
                                    "lora_rank", NULL});
    return r->st ? NULL : lm_embedding_((int)in, (int)out, o);
}

/* ---- recurrent ---- */

typedef enum { RNN_SIMPLE, RNN_LSTM, RNN_GRU } rnn_kind;

static lm_layer *rnn(lm_kc_reader *r, const cJSON *c, const common *k, rnn_kind kind) {
    int64_t units = req_int(r, c, "units", 1, INT32_MAX);
    lm_regularizer kr, rr, br;
    lm_rnn_layer_opts o = {COMMON(k),
                           .activation = lm_kc_act(r, c, "activation", LM_ACT_TANH),
                           .recurrent_activation =
                               kind == RNN_SIMPLE
                                   ? LM_ACT_SIGMOID
                                   : lm_kc_act(r, c, "recurrent_activation", LM_ACT_SIGMOID),
                           .activations_set = true,
                           .use_bias = flag(lm_kc_bool(r, c, "use_bias", true)),
                           .return_sequences = lm_kc_bool(r, c, "return_sequences", false),
                           .return_state = lm_kc_bool(r, c, "return_state", false),
                           .go_backwards = lm_kc_bool(r, c, "go_backwards", false),
                           .kernel_initializer = lm_kc_init(r, c, "kernel_initializer"),
                           .recurrent_initializer = lm_kc_init(r, c, "recurrent_initializer"),
                           .bias_initializer = lm_kc_init(r, c, "bias_initializer")};
    if (kind == RNN_LSTM) o.unit_forget_bias = flag(lm_kc_bool(r, c, "unit_forget_bias", true));
    if (kind == RNN_GRU) o.reset_after = flag(lm_kc_bool(r, c, "reset_after", true));
    if (lm_kc_reg(r, c, "kernel_regularizer", &kr)) o.kernel_regularizer = &kr;
    if (lm_kc_reg(r, c, "recurrent_regularizer", &rr)) o.recurrent_regularizer = &rr;
    if (lm_kc_reg(r, c, "bias_regularizer", &br)) o.bias_regularizer = &br;
    no_constraints(r, c,
                   (const char *[]){"kernel_constraint", "recurrent_constraint", "bias_constraint",
                                    "dropout", "recurrent_dropout", "stateful", "time_major",
                                    NULL});
    if (r->st) return NULL;
    switch (kind) {
    case RNN_SIMPLE:
        return lm_simple_rnn_((int)units, o);
    case RNN_LSTM:
        return lm_lstm_((int)units, o);
    default:
        return lm_gru_((int)units, o);
    }
}

static lm_layer *simple_rnn(lm_kc_reader *r, const cJSON *c, const common *k) {
    return rnn(r, c, k, RNN_SIMPLE);
}
static lm_layer *lstm(lm_kc_reader *r, const cJSON *c, const common *k) {
    return rnn(r, c, k, RNN_LSTM);
}
static lm_layer *gru(lm_kc_reader *r, const cJSON *c, const common *k) {
    return rnn(r, c, k, RNN_GRU);
}

/* Removes Keras's shared_object_id (object identities, not values) everywhere. */
static void strip_ids(cJSON *o) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, "shared_object_id");
    for (cJSON *c = o ? o->child : NULL; c; c = c->next) strip_ids(c);
}

/* A copy of a layer config without the keys a backward layer may differ in. */
static cJSON *comparable(const cJSON *entry) {
    cJSON *c = cJSON_Duplicate(get(entry, "config"), true);
    if (!c) return NULL;
    strip_ids(c);
    static const char *const drop[] = {"name", "go_backwards", "zero_output_for_mask", "seed"};
    for (size_t i = 0; i < sizeof drop / sizeof *drop; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(c, drop[i]);
    return c;
}

static lm_layer *bidirectional(lm_kc_reader *r, const cJSON *c, const common *k) {
    const char *mode = lm_kc_str(r, c, "merge_mode", "concat");
    static const char *const modes[] = {"concat", "sum", "mul", "ave"};
    int m = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(mode, modes[i])) m = i;
    const cJSON *fwd = get(c, "layer"), *bwd = get(c, "backward_layer");
    if (!r->st && m < 0)
        lm_kc_fail(r, LM_ERR_UNSUPPORTED,
                   "\"merge_mode\" \"%.40s\" is not supported (concat, sum, mul, ave)", mode);
    if (!r->st && cJSON_IsNull(get(c, "merge_mode")))
        lm_kc_fail(r, LM_ERR_UNSUPPORTED, "\"merge_mode\" null is not supported");
    if (!r->st && !cJSON_IsObject(fwd))
        lm_kc_fail(r, LM_ERR_FORMAT, "\"layer\" must be a layer object");
    if (r->st) return NULL;
    /* The backward layer must be the mirror Lamina makes of the forward one. */
    if (bwd && !cJSON_IsNull(bwd)) {
        cJSON *a = comparable(fwd), *b = cJSON_IsObject(bwd) ? comparable(bwd) : NULL;
        const cJSON *fc = get(fwd, "class_name"), *bc = get(bwd, "class_name");
        bool same = a && b && cJSON_Compare(a, b, true) && cJSON_IsString(fc) &&
                    cJSON_IsString(bc) && !strcmp(fc->valuestring, bc->valuestring);
        cJSON_Delete(a);
        cJSON_Delete(b);
        if (!same) {
            lm_kc_fail(r, LM_ERR_UNSUPPORTED,
                       "a \"backward_layer\" configured differently from the forward layer is not "
                       "supported");
            return NULL;
        }
    }
    const char *outer = r->layer, *outer_cls = r->cls;
    lm_layer *inner = lm_kc_layer_from_entry(r, fwd);
    r->layer = outer, r->cls = outer_cls;
    if (!inner) return NULL;
    /* Lamina names the directions forward_<base> and backward_<base>. */
    const char *n = inner->name;
    if (n && !strncmp(n, "forward_", 8) && n[8]) memmove(inner->name, n + 8, strlen(n + 8) + 1);
    lm_layer *l = lm_bidirectional_(
        inner, (lm_bidirectional_opts){COMMON(k), .merge_mode = (lm_merge_mode)m});
    if (!l)
        lm_kc_fail(r, LM_ERR_UNSUPPORTED,
                   "the wrapped layer must be a SimpleRNN, LSTM or GRU without go_backwards");
    return l;
}

/* ---- merging ---- */

static lm_layer *add(lm_kc_reader *r, const cJSON *c, const common *k) {
    (void)r, (void)c;
    return lm_add_layer_((lm_basic_opts){COMMON(k)});
}
static lm_layer *subtract(lm_kc_reader *r, const cJSON *c, const common *k) {
    (void)r, (void)c;
    return lm_subtract_((lm_basic_opts){COMMON(k)});
}
static lm_layer *multiply(lm_kc_reader *r, const cJSON *c, const common *k) {
    (void)r, (void)c;
    return lm_multiply_((lm_basic_opts){COMMON(k)});
}
static lm_layer *average(lm_kc_reader *r, const cJSON *c, const common *k) {
    (void)r, (void)c;
    return lm_average_((lm_basic_opts){COMMON(k)});
}
static lm_layer *concatenate(lm_kc_reader *r, const cJSON *c, const common *k) {
    int64_t axis = lm_kc_int(r, c, "axis", -1, -LM_MAX_DIMS, LM_MAX_DIMS);
    if (!r->st && axis == 0) lm_kc_fail(r, LM_ERR_FORMAT, "\"axis\" 0 is the batch axis");
    return r->st ? NULL : lm_concatenate_((lm_concat_opts){COMMON(k), .axis = (int)axis});
}

typedef lm_layer *(*from_config_fn)(lm_kc_reader *r, const cJSON *c, const common *k);

static const struct {
    const char *cls;
    from_config_fn fn;
} table[] = {
    {"Dense", dense},
    {"Activation", activation},
    {"Dropout", dropout},
    {"Flatten", flatten},
    {"Reshape", reshape},
    {"Permute", permute},
    {"RepeatVector", repeat_vector},
    {"Conv1D", conv1d},
    {"Conv2D", conv2d},
    {"MaxPooling1D", max_pool1d},
    {"MaxPooling2D", max_pool2d},
    {"AveragePooling1D", avg_pool1d},
    {"AveragePooling2D", avg_pool2d},
    {"GlobalMaxPooling1D", gmax1d},
    {"GlobalMaxPooling2D", gmax2d},
    {"GlobalAveragePooling1D", gavg1d},
    {"GlobalAveragePooling2D", gavg2d},
    {"ZeroPadding2D", zero_padding2d},
    {"BatchNormalization", batch_norm},
    {"LayerNormalization", layer_norm},
    {"Embedding", embedding},
    {"SimpleRNN", simple_rnn},
    {"LSTM", lstm},
    {"GRU", gru},
    {"Bidirectional", bidirectional},
    {"Add", add},
    {"Subtract", subtract},
    {"Multiply", multiply},
    {"Average", average},
    {"Concatenate", concatenate},
    /* Keras 2 aliases */
    {"Convolution1D", conv1d},
    {"Convolution2D", conv2d},
    {"MaxPool1D", max_pool1d},
    {"MaxPool2D", max_pool2d},
    {"AvgPool1D", avg_pool1d},
    {"AvgPool2D", avg_pool2d},
};

const char *lm_kc_entry_name(const cJSON *entry) {
    const cJSON *n = get(get(entry, "config"), "name");
    if (!cJSON_IsString(n)) n = get(entry, "name");
    return cJSON_IsString(n) ? n->valuestring : "?";
}

/* A batch shape ([null, 4]) as a shape without the batch. */
static bool batch_shape(lm_kc_reader *r, const cJSON *v, const char *key, lm_shape *out) {
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    bool ok = n >= 1 && n <= LM_MAX_DIMS - 1;
    out->ndim = ok ? n - 1 : 0;
    for (int i = 1; ok && i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        if (cJSON_IsNull(e))
            out->dims[i - 1] = -1;
        else if (cJSON_IsNumber(e) && e->valuedouble >= 1 && e->valuedouble <= MAX_DIM &&
                 e->valuedouble == (int64_t)e->valuedouble)
            out->dims[i - 1] = (int64_t)e->valuedouble;
        else
            ok = false;
    }
    if (!ok) {
        char b[80];
        lm_kc_fail(r, LM_ERR_FORMAT,
                   "\"%s\" must be a list of 1 to %d sizes (at most %d) or nulls, got %s", key,
                   LM_MAX_DIMS - 1, MAX_DIM, lm_kc_show(v, b, sizeof b));
    }
    return ok;
}

lm_layer *lm_kc_layer_from_entry(lm_kc_reader *r, const cJSON *entry) {
    const cJSON *cn = get(entry, "class_name"), *c = get(entry, "config");
    r->layer = cJSON_IsObject(entry) ? lm_kc_entry_name(entry) : "?";
    r->cls = cJSON_IsString(cn) ? cn->valuestring : "?";
    if (!cJSON_IsObject(entry) || !cJSON_IsString(cn) || !cJSON_IsObject(c)) {
        lm_kc_fail(r, LM_ERR_FORMAT,
                   "a layer entry needs \"class_name\" (a string) and \"config\" (an object)");
        return NULL;
    }
    from_config_fn fn = NULL;
    for (size_t i = 0; i < sizeof table / sizeof *table && !fn; i++)
        if (!strcmp(cn->valuestring, table[i].cls)) fn = table[i].fn;
    if (!fn) {
        lm_kc_fail(r, LM_ERR_UNSUPPORTED, "Lamina has no layer of class \"%.80s\"",
                   cn->valuestring);
        return NULL;
    }
    common k = {.name = lm_kc_str(r, c, "name", NULL)};
    if (k.name && (!k.name[0] || strlen(k.name) > 255 || strchr(k.name, '/')))
        lm_kc_fail(r, LM_ERR_FORMAT, "a layer name must have 1 to 255 characters and no '/'");
    k.trainable = flag(lm_kc_bool(r, c, "trainable", true));
    lm_kc_dtype(r, c, "dtype", false);
    const char *bkey = get(c, "batch_input_shape") ? "batch_input_shape" : "batch_shape";
    const cJSON *bs = get(c, bkey);
    if (bs && !cJSON_IsNull(bs)) batch_shape(r, bs, bkey, &k.input_shape);
    lm_regularizer ar;
    bool has_ar = lm_kc_reg(r, c, "activity_regularizer", &ar);
    if (r->st) return NULL;
    lm_layer *l = fn(r, c, &k);
    if (!l && !r->st)
        lm_kc_fail(r, LM_ERR_FORMAT, "the config's values are not valid for a %s layer",
                   cn->valuestring);
    if (!l) return NULL;
    if (has_ar) {
        l->has_activity_reg = true;
        l->activity_reg = ar;
    }
    return l;
}

/* Exposed for the model reader: an InputLayer's batch shape. */
bool lm_kc_batch_shape(lm_kc_reader *r, const cJSON *v, const char *key, lm_shape *out) {
    return batch_shape(r, v, key, out);
}
