/* Parity of every Keras layer (Dense, convolution, pooling, padding,
 * normalisation, embedding, merging, activation, reshaping) with Keras 3,
 * references from tests/keras/ref_layers.py: outputs within 1e-5, gradients
 * of sum(y * R) for the inputs and every trainable weight within 1e-4, the
 * moving statistics of BatchNormalization after a training call within 1e-5,
 * and one SGD step of a small CNN within 1e-5.
 *
 * Each case builds a one-layer functional model and differentiates its graph
 * (m->g) with lm_gradients. Inputs, weights and R are not stored: they come
 * from the hash gen() shared with the generator script. */
#include "lmtest.h"
#include "nn/nn.h"
#include "refs.h"
#include <lamina/lamina.h>
#include <lamina/model.h>

#define FAM "layers"

/* ---- the generator of ref_layers.py: values in [-1, 1] on a 1e-6 grid ---- */

static uint64_t kg_fnv1a(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static uint64_t kg_hash(uint64_t seed, int64_t i) {
    const uint64_t M = 0xffffffffu;
    uint64_t x = ((uint64_t)i * 2654435761u + seed * 40503u + 12345u) & M;
    x ^= x >> 15;
    x = (x * 2246822519u) & M;
    x ^= x >> 13;
    x = (x * 3266489917u) & M;
    x ^= x >> 16;
    return x % 2000001u;
}

static void kg_fill(lm_tensor *t, uint64_t seed, double scale, double offset) {
    float *p = lm_tensor_f32(t);
    for (int64_t i = 0; i < lm_tensor_numel(t); i++)
        p[i] = (float)(((double)kg_hash(seed, i) / 1000000.0 - 1.0) * scale + offset);
}

/* Integer indices below vocab, stored as floats (model inputs are float32). */
static void kg_fill_int(lm_tensor *t, uint64_t seed, int vocab) {
    float *p = lm_tensor_f32(t);
    for (int64_t i = 0; i < lm_tensor_numel(t); i++)
        p[i] = (float)(kg_hash(seed, i) % (uint64_t)vocab);
}

/* Moving variances and gammas around 1, the other weights in [-0.5, 0.5]. */
static void kg_fill_weight(lm_tensor *t, const char *name, uint64_t seed) {
    bool one = !strcmp(name, "moving_variance") || !strcmp(name, "gamma");
    kg_fill(t, seed, 0.5, one ? 1.0 : 0.0);
}

/* name, input shapes with the batch, training run, vocabulary of int inputs */
typedef struct pcase {
    const char *name;
    int n_in;
    lm_shape in[3];
    bool training;
    int vocab;
} pcase;

#define S LM_SHAPE
#define P(nm, n, ...)                                                                              \
    {                                                                                              \
        .name = nm, .n_in = n, .in = { __VA_ARGS__ }                                               \
    }
#define T(nm, n, ...)                                                                              \
    { .name = nm, .n_in = n, .in = {__VA_ARGS__}, .training = true }
#define V(nm, n, v, ...)                                                                           \
    { .name = nm, .n_in = n, .in = {__VA_ARGS__}, .vocab = v }
static const pcase cases[] = {
    P("dense_relu", 1, S(3, 5)),
    P("dense_3d_nobias_tanh", 1, S(2, 3, 4)),
    P("dense_softmax", 1, S(3, 5)),
    P("conv2d_valid", 1, S(2, 5, 5, 3)),
    P("conv2d_s2_same", 1, S(2, 6, 5, 3)),
    P("conv2d_dil2", 1, S(2, 6, 7, 2)),
    P("conv2d_groups2_relu", 1, S(2, 4, 5, 4)),
    P("conv2d_nobias_elu", 1, S(1, 4, 4, 3)),
    P("conv1d_valid", 1, S(2, 7, 3)),
    P("conv1d_causal_dil2", 1, S(2, 8, 3)),
    P("conv1d_same_s2", 1, S(2, 9, 2)),
    P("maxpool2d_valid", 1, S(2, 5, 4, 3)),
    P("maxpool2d_same_s2", 1, S(2, 5, 6, 2)),
    P("avgpool2d_valid", 1, S(2, 4, 7, 2)),
    P("avgpool2d_same", 1, S(2, 5, 6, 2)),
    P("maxpool1d_valid", 1, S(2, 7, 3)),
    P("maxpool1d_same", 1, S(2, 8, 2)),
    P("avgpool1d_same", 1, S(2, 9, 2)),
    P("avgpool1d_valid", 1, S(2, 6, 3)),
    P("gap2d", 1, S(2, 3, 4, 5)),
    P("gmp2d", 1, S(2, 3, 4, 5)),
    P("gap1d", 1, S(2, 6, 3)),
    P("gmp1d", 1, S(2, 6, 3)),
    P("gap2d_keepdims", 1, S(2, 3, 3, 4)),
    P("zeropad2d_default", 1, S(2, 2, 3, 2)),
    P("zeropad2d_asym", 1, S(1, 2, 2, 3)),
    T("bn_train", 1, S(6, 4)),
    P("bn_infer", 1, S(6, 4)),
    T("bn_4d_train_m09", 1, S(2, 3, 3, 4)),
    T("bn_nocenter_train", 1, S(5, 3)),
    P("bn_noscale_infer", 1, S(2, 3, 3)),
    T("bn_frozen_train", 1, S(6, 4)),
    P("ln", 1, S(3, 6)),
    P("ln_3d_eps", 1, S(2, 3, 5)),
    P("ln_nocenter", 1, S(3, 4)),
    P("ln_noscale", 1, S(3, 4)),
    V("embedding", 1, 10, S(3, 5)),
    V("embedding_1d", 1, 7, S(6)),
    P("add3", 3, S(2, 3, 4), S(2, 3, 4), S(2, 3, 4)),
    P("add_broadcast", 2, S(2, 3, 4), S(2, 4)),
    P("add_ones", 2, S(2, 1, 4), S(2, 3, 1)),
    P("subtract", 2, S(3, 4), S(3, 4)),
    P("multiply", 2, S(2, 3, 2), S(2, 3, 2)),
    P("average3", 3, S(3, 4), S(3, 4), S(3, 4)),
    P("concat_last", 2, S(2, 3, 4), S(2, 3, 2)),
    P("concat_axis1", 2, S(2, 3, 4), S(2, 2, 4)),
    P("act_relu", 1, S(3, 4)),
    P("act_sigmoid", 1, S(3, 4)),
    P("act_tanh", 1, S(3, 4)),
    P("act_softmax", 1, S(2, 3, 4)),
    P("act_leaky_relu", 1, S(3, 4)),
    P("act_leaky_relu_03", 1, S(3, 4)),
    P("act_elu", 1, S(3, 4)),
    P("act_elu_05", 1, S(3, 4)),
    P("act_selu", 1, S(3, 4)),
    P("act_gelu", 1, S(3, 4)),
    P("act_hard_sigmoid", 1, S(3, 4)),
    P("act_softplus", 1, S(3, 4)),
    P("act_softsign", 1, S(3, 4)),
    P("act_silu", 1, S(3, 4)),
    P("act_exponential", 1, S(3, 4)),
    P("dropout_infer", 1, S(3, 4)),
    P("flatten", 1, S(2, 3, 4)),
    P("reshape_infer", 1, S(2, 12)),
    P("reshape_3d", 1, S(2, 4, 3)),
    P("permute_21", 1, S(2, 3, 4)),
    P("permute_312", 1, S(2, 3, 4, 2)),
    P("repeat_vector", 1, S(2, 4)),
};

/* The layer of each case, configured as in ref_layers.py. */
static lm_layer *make(const char *n) {
#define C(nm, expr)                                                                                \
    if (!strcmp(n, nm)) return expr
    C("dense_relu", lm_dense(4, .activation = LM_RELU));
    C("dense_3d_nobias_tanh", lm_dense(3, .use_bias = LM_FALSE, .activation = LM_TANH));
    C("dense_softmax", lm_dense(4, .activation = LM_SOFTMAX));
    C("conv2d_valid", lm_conv2d(3, LM_SIZE(3, 3)));
    C("conv2d_s2_same", lm_conv2d(4, LM_SIZE(3, 3), .strides = LM_SIZE(2, 2), .padding = LM_SAME));
    C("conv2d_dil2", lm_conv2d(2, LM_SIZE(2, 3), .dilation_rate = LM_SIZE(2, 2)));
    C("conv2d_groups2_relu",
      lm_conv2d(4, LM_SIZE(3, 2), .groups = 2, .padding = LM_SAME, .activation = LM_RELU));
    C("conv2d_nobias_elu", lm_conv2d(2, LM_SIZE(2, 2), .use_bias = LM_FALSE, .activation = LM_ELU));
    C("conv1d_valid", lm_conv1d(4, 3));
    C("conv1d_causal_dil2",
      lm_conv1d(2, 3, .padding = LM_CAUSAL, .dilation_rate = LM_SIZE(2, 0), .activation = LM_TANH));
    C("conv1d_same_s2", lm_conv1d(3, 4, .strides = LM_SIZE(2, 0), .padding = LM_SAME));
    C("maxpool2d_valid", lm_max_pooling2d(LM_SIZE(2, 2)));
    C("maxpool2d_same_s2",
      lm_max_pooling2d(LM_SIZE(3, 3), .strides = LM_SIZE(2, 2), .padding = LM_SAME));
    C("avgpool2d_valid", lm_average_pooling2d(LM_SIZE(2, 3), .strides = LM_SIZE(1, 2)));
    C("avgpool2d_same",
      lm_average_pooling2d(LM_SIZE(3, 3), .strides = LM_SIZE(2, 2), .padding = LM_SAME));
    C("maxpool1d_valid", lm_max_pooling1d(2));
    C("maxpool1d_same", lm_max_pooling1d(3, .strides = LM_SIZE(2, 0), .padding = LM_SAME));
    C("avgpool1d_same", lm_average_pooling1d(3, .strides = LM_SIZE(2, 0), .padding = LM_SAME));
    C("avgpool1d_valid", lm_average_pooling1d(2, .strides = LM_SIZE(1, 0)));
    C("gap2d", lm_global_average_pooling2d());
    C("gmp2d", lm_global_max_pooling2d());
    C("gap1d", lm_global_average_pooling1d());
    C("gmp1d", lm_global_max_pooling1d());
    C("gap2d_keepdims", lm_global_average_pooling2d(.keepdims = true));
    C("zeropad2d_default", lm_zero_padding2d());
    C("zeropad2d_asym", lm_zero_padding2d(.padding = {{1, 2}, {0, 3}}));
    C("bn_train", lm_batch_normalization());
    C("bn_infer", lm_batch_normalization());
    C("bn_4d_train_m09", lm_batch_normalization(.momentum = 0.9f, .epsilon = 1e-2f));
    C("bn_nocenter_train", lm_batch_normalization(.center = LM_FALSE));
    C("bn_noscale_infer", lm_batch_normalization(.scale = LM_FALSE));
    C("bn_frozen_train", lm_batch_normalization(.trainable = LM_FALSE));
    C("ln", lm_layer_normalization());
    C("ln_3d_eps", lm_layer_normalization(.epsilon = 1e-5f));
    C("ln_nocenter", lm_layer_normalization(.center = LM_FALSE));
    C("ln_noscale", lm_layer_normalization(.scale = LM_FALSE));
    C("embedding", lm_embedding(10, 4));
    C("embedding_1d", lm_embedding(7, 3));
    C("add3", lm_add_layer());
    C("add_broadcast", lm_add_layer());
    C("add_ones", lm_add_layer());
    C("subtract", lm_subtract());
    C("multiply", lm_multiply());
    C("average3", lm_average());
    C("concat_last", lm_concatenate());
    C("concat_axis1", lm_concatenate(.axis = 1));
    C("act_relu", lm_activation_layer(LM_RELU));
    C("act_sigmoid", lm_activation_layer(LM_SIGMOID));
    C("act_tanh", lm_activation_layer(LM_TANH));
    C("act_softmax", lm_activation_layer(LM_SOFTMAX));
    C("act_leaky_relu", lm_activation_layer(LM_LEAKY_RELU));
    C("act_leaky_relu_03", lm_activation_layer(LM_LEAKY_RELU, .alpha = 0.3f));
    C("act_elu", lm_activation_layer(LM_ELU));
    C("act_elu_05", lm_activation_layer(LM_ELU, .alpha = 0.5f));
    C("act_selu", lm_activation_layer(LM_SELU));
    C("act_gelu", lm_activation_layer(LM_GELU));
    C("act_hard_sigmoid", lm_activation_layer(LM_HARD_SIGMOID));
    C("act_softplus", lm_activation_layer(LM_SOFTPLUS));
    C("act_softsign", lm_activation_layer(LM_SOFTSIGN));
    C("act_silu", lm_activation_layer(LM_SILU));
    C("act_exponential", lm_activation_layer(LM_EXPONENTIAL));
    C("dropout_infer", lm_dropout(0.5f));
    C("flatten", lm_flatten());
    C("reshape_infer", lm_reshape(LM_SHAPE(3, -1)));
    C("reshape_3d", lm_reshape(LM_SHAPE(2, 2, 3)));
    C("permute_21", lm_permute(LM_SHAPE(2, 1)));
    C("permute_312", lm_permute(LM_SHAPE(3, 1, 2)));
    C("repeat_vector", lm_repeat_vector(3));
#undef C
    return NULL;
}

/* Compares got with the next numel(got) values of the flat reference. */
static void compare(const char *cas, const char *what, lm_tensor *got, lm_tensor *ref, int64_t *off,
                    double tol) {
    int64_t n = got ? lm_tensor_numel(got) : 0;
    bool fits = got && *off + n <= lm_tensor_numel(ref);
    CHECK_MSG(fits, "%s %s: reference too short", cas, what);
    if (!fits) return;
    lm_tensor *want =
        lm_tensor_wrap(lm_tensor_ctx(ref), LM_F32, lm_tensor_shape(got), lm_tensor_f32(ref) + *off);
    double e = ref_max_rel_err(got, want);
    CHECK_MSG(e <= tol, "%s %s: max rel err %.3g > %.1g", cas, what, e, tol);
    if (getenv("LM_VERBOSE")) fprintf(stderr, "  %-22s %-16s max rel err %.2e\n", cas, what, e);
    lm_tensor_free(want);
    *off += n;
}

static void run_case(const pcase *pc) {
    lm_model *m = lm_functional(NULL);
    lm_ctx *ctx = lm_model_ctx(m);
    uint64_t seed = kg_fnv1a(pc->name);
    lm_tensor *ref = ref_load(ctx, FAM, pc->name, "ref");
    lm_tensor *x[3] = {NULL}, *r = NULL;
    lm_session *s = NULL;
    CHECK_MSG(ref != NULL, "%s: no reference", pc->name);
    lm_kt *in[3];
    for (int i = 0; i < pc->n_in; i++) {
        lm_shape sh = pc->in[i];
        sh.ndim--;
        for (int d = 0; d < sh.ndim; d++) sh.dims[d] = pc->in[i].dims[d + 1];
        in[i] = lm_model_input(m, sh, NULL);
        x[i] = lm_tensor_new(ctx, LM_F32, pc->in[i]);
        if (pc->vocab)
            kg_fill_int(x[i], seed + 7919 * (uint64_t)i, pc->vocab);
        else
            kg_fill(x[i], seed + 7919 * (uint64_t)i, 1.0, 0.0);
    }
    lm_layer *l = make(pc->name);
    lm_kt *y = lm_call_n(l, pc->n_in, in);
    CHECK_MSG(y && lm_model_set_outputs(m, 1, &y) == LM_OK, "%s: %s", pc->name, lm_model_error(m));
    if (!y || !ref) goto out;

    /* Weights in get_weights order, then R. */
    uint64_t k = (uint64_t)pc->n_in;
    for (int i = 0; i < lm_layer_weight_count(l); i++, k++)
        kg_fill_weight(lm_layer_weight(l, i), lm_layer_weight_name(l, i), seed + 7919 * k);
    lm_shape ys = y->node->shape;
    ys.dims[0] = pc->in[0].dims[0];
    r = lm_tensor_new(ctx, LM_F32, ys);
    kg_fill(r, seed + 7919 * k, 1.0, 0.0);

    lm_graph *g = m->g;
    lm_node *wrt[16], *grads[16] = {NULL};
    const char *names[16];
    int nw = 0;
    if (!pc->vocab)
        for (int i = 0; i < pc->n_in; i++) names[nw] = "x", wrt[nw++] = m->inputs[i]->node;
    for (int i = 0; i < l->n_weights; i++)
        if (l->w[i].trainable) names[nw] = l->w[i].name, wrt[nw++] = l->w[i].var;
    lm_node *outs[17] = {y->node};
    /* R is fed like the inputs: its static shape has the unknown batch of y. */
    lm_node *rn = lm_placeholder(g, LM_F32, y->node->shape, "R");
    CHECK_STATUS(lm_gradients(g, y->node, rn, nw, wrt, grads), LM_OK);
    for (int i = 0; i < nw; i++) outs[1 + i] = grads[i];
    s = lm_session_new(g, 1 + nw, outs);
    CHECK_MSG(s != NULL, "%s: session: %s", pc->name, lm_ctx_error(ctx));
    if (!s) goto out;
    for (int i = 0; i < pc->n_in; i++) lm_session_feed(s, m->inputs[i]->node, x[i]);
    lm_session_feed(s, rn, r);
    lm_session_set_training(s, pc->training);
    CHECK_STATUS(lm_session_run(s), LM_OK);

    int64_t off = 0;
    compare(pc->name, "y", lm_session_output(s, 0), ref, &off, 1e-5);
    for (int i = 0; i < nw; i++) {
        char what[48];
        snprintf(what, sizeof what, "grad %s%d", names[i], i);
        compare(pc->name, what, lm_session_output(s, 1 + i), ref, &off, 1e-4);
    }
    /* BatchNormalization in training: the moving statistics after the call. */
    if (pc->training && !strcmp(lm_layer_class(l), "BatchNormalization") && l->trainable) {
        int n = l->n_weights;
        compare(pc->name, "moving_mean", l->w[n - 2].value, ref, &off, 1e-5);
        compare(pc->name, "moving_variance", l->w[n - 1].value, ref, &off, 1e-5);
    }
    CHECK_MSG(off == lm_tensor_numel(ref), "%s: compared %lld of %lld reference values", pc->name,
              (long long)off, (long long)lm_tensor_numel(ref));
out:
    lm_session_free(s);
    for (int i = 0; i < 3; i++) lm_tensor_free(x[i]);
    lm_tensor_free(r);
    lm_tensor_free(ref);
    lm_model_free(m);
}

static void test_layers(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
}

/* One SGD step (lr 0.1, categorical crossentropy) of Conv2D(relu) ->
 * BatchNormalization -> MaxPooling2D -> Flatten -> Dense(softmax): the loss,
 * then every weight after the step (moving statistics included). */
static void test_cnn_step(void) {
    lm_model *m = lm_sequential(NULL);
    lm_ctx *ctx = lm_model_ctx(m);
    uint64_t seed = kg_fnv1a("cnn_step");
    lm_add(m, lm_input(LM_SHAPE(6, 6, 2)));
    lm_add(m, lm_conv2d(3, LM_SIZE(3, 3), .activation = LM_RELU));
    lm_add(m, lm_batch_normalization());
    lm_add(m, lm_max_pooling2d(LM_SIZE(2, 2)));
    lm_add(m, lm_flatten());
    lm_add(m, lm_dense(3, .activation = LM_SOFTMAX));
    CHECK_MSG(lm_model_status(m) == LM_OK, "cnn: %s", lm_model_error(m));
    lm_tensor *ref = ref_load(ctx, FAM, "cnn_step", "ref");
    lm_tensor *x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(4, 6, 6, 2));
    lm_tensor *y = lm_tensor_new(ctx, LM_F32, LM_SHAPE(4, 3));
    kg_fill(x, seed, 1.0, 0.0);
    const int labels[4] = {0, 2, 1, 2};
    for (int i = 0; i < 4; i++) lm_tensor_set(y, i * 3 + labels[i], 1.0);
    for (int i = 0; i < lm_model_weight_count(m); i++) {
        lm_weight *w[16];
        lm_model_weights(m, w, 16);
        kg_fill_weight(w[i]->value, w[i]->name, seed + 7919 * (uint64_t)(2 + i));
    }
    CHECK_STATUS(lm_compile(m, .optimizer = lm_sgd(.learning_rate = 0.1),
                            .loss = LM_CATEGORICAL_CROSSENTROPY),
                 LM_OK);
    double loss = NAN;
    CHECK_MSG(lm_train_on_batch(m, x, y, NULL, &loss, 1) >= 1, "cnn: %s", lm_model_error(m));
    if (ref) {
        CHECK_NEAR(loss, lm_tensor_get(ref, 0), 1e-5);
        int64_t off = 1;
        for (int i = 0; i < lm_model_weight_count(m); i++) {
            char what[32];
            snprintf(what, sizeof what, "weight %d", i);
            compare("cnn_step", what, lm_model_weight(m, i), ref, &off, 1e-5);
        }
        CHECK(off == lm_tensor_numel(ref));
    }
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_tensor_free(ref);
    lm_model_free(m);
}

int main(void) {
    RUN(test_layers);
    RUN(test_cnn_step);
    return lmt_summary("test_parity_layers");
}
