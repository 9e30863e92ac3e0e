/* Behaviour of the Keras layers: automatic names and class names, output
 * shapes, weights (count, names, shapes, order, trainable flags, default
 * initializers), freezing, dropout masks and seeds, frozen batch
 * normalisation, and every bad argument or input shape with its message. */
#include "lmtest.h"
#include "nn/nn.h"
#include <lamina/lamina.h>
#include <lamina/model.h>

static bool same_shape(lm_shape a, lm_shape b) {
    if (a.ndim != b.ndim) return false;
    for (int i = 0; i < a.ndim; i++)
        if (a.dims[i] != b.dims[i]) return false;
    return true;
}

#define CHECK_SHAPE(got, want)                                                                     \
    do {                                                                                           \
        char lmt_a_[96], lmt_b_[96];                                                               \
        lm_shape lmt_g_ = (got), lmt_w_ = (want);                                                  \
        CHECK_MSG(same_shape(lmt_g_, lmt_w_), "shape %s, wanted %s",                               \
                  lm_shape_str(lmt_g_, lmt_a_, sizeof lmt_a_),                                     \
                  lm_shape_str(lmt_w_, lmt_b_, sizeof lmt_b_));                                    \
    } while (0)

/* Output shape of one layer called on an input of shape s (without the batch). */
static lm_shape out_shape(lm_layer *l, lm_shape s) {
    lm_model *m = lm_functional(NULL);
    lm_kt *y = lm_call(l, lm_model_input(m, s, NULL));
    lm_shape r = y ? lm_kt_shape(y) : (lm_shape){0, {0}};
    if (!y) fprintf(stderr, "  %s\n", lm_model_error(m));
    lm_model_free(m);
    return r;
}

/* The model error after calling l on an input of shape s. */
static void expect_call_error(lm_layer *l, lm_shape s, const char *msg) {
    lm_model *m = lm_functional(NULL);
    lm_kt *y = lm_call(l, lm_model_input(m, s, NULL));
    CHECK(y == NULL);
    CHECK(lm_model_status(m) != LM_OK);
    CHECK_CONTAINS(lm_model_error(m), msg);
    lm_model_free(m);
}

#define N (-1)

static void test_names(void) {
    lm_model *m = lm_sequential(NULL);
    lm_add(m, lm_input(LM_SHAPE(8, 8, 2)));
    lm_layer *ls[] = {lm_conv2d(2, LM_SIZE(3, 3), .padding = LM_SAME),
                      lm_conv2d(2, LM_SIZE(1, 1)),
                      lm_batch_normalization(),
                      lm_batch_normalization(),
                      lm_zero_padding2d(),
                      lm_max_pooling2d(LM_SIZE(2, 2)),
                      lm_average_pooling2d(LM_SIZE(2, 2), .padding = LM_SAME),
                      lm_activation_layer(LM_RELU),
                      lm_dropout(0.1f),
                      lm_layer_normalization(),
                      lm_permute(LM_SHAPE(2, 1, 3)),
                      lm_reshape(LM_SHAPE(-1, 2)),
                      lm_global_average_pooling1d(),
                      lm_repeat_vector(2),
                      lm_global_max_pooling1d(),
                      lm_flatten(),
                      lm_dense(3),
                      lm_dense(2)};
    const char *names[] = {"conv2d",
                           "conv2d_1",
                           "batch_normalization",
                           "batch_normalization_1",
                           "zero_padding2d",
                           "max_pooling2d",
                           "average_pooling2d",
                           "activation",
                           "dropout",
                           "layer_normalization",
                           "permute",
                           "reshape",
                           "global_average_pooling1d",
                           "repeat_vector",
                           "global_max_pooling1d",
                           "flatten",
                           "dense",
                           "dense_1"};
    const char *classes[] = {"Conv2D",
                             "Conv2D",
                             "BatchNormalization",
                             "BatchNormalization",
                             "ZeroPadding2D",
                             "MaxPooling2D",
                             "AveragePooling2D",
                             "Activation",
                             "Dropout",
                             "LayerNormalization",
                             "Permute",
                             "Reshape",
                             "GlobalAveragePooling1D",
                             "RepeatVector",
                             "GlobalMaxPooling1D",
                             "Flatten",
                             "Dense",
                             "Dense"};
    int n = (int)(sizeof ls / sizeof ls[0]);
    for (int i = 0; i < n; i++) CHECK_STATUS(lm_add(m, ls[i]), LM_OK);
    CHECK_MSG(lm_model_status(m) == LM_OK, "%s", lm_model_error(m));
    CHECK(lm_model_layer_count(m) == n);
    for (int i = 0; i < n && i < lm_model_layer_count(m); i++) {
        CHECK_MSG(!strcmp(lm_layer_name(lm_model_layer(m, i)), names[i]), "%s vs %s",
                  lm_layer_name(lm_model_layer(m, i)), names[i]);
        CHECK_MSG(!strcmp(lm_layer_class(lm_model_layer(m, i)), classes[i]), "%s vs %s",
                  lm_layer_class(lm_model_layer(m, i)), classes[i]);
    }
    lm_model_free(m);

    /* The rest, in a functional model: names, classes, and a given name. */
    m = lm_functional(NULL);
    lm_kt *a = lm_model_input(m, LM_SHAPE(6, 3), NULL),
          *b = lm_model_input(m, LM_SHAPE(6, 3), NULL);
    lm_kt *ab[2] = {a, b};
    lm_layer *fl[] = {lm_add_layer(),
                      lm_add_layer(),
                      lm_subtract(),
                      lm_multiply(),
                      lm_average(),
                      lm_concatenate(),
                      lm_conv1d(2, 3),
                      lm_max_pooling1d(2),
                      lm_average_pooling1d(2),
                      lm_global_average_pooling2d(),
                      lm_global_max_pooling2d(),
                      lm_embedding(5, 2),
                      lm_dense(2, .name = "head")};
    const char *fnames[] = {"add",
                            "add_1",
                            "subtract",
                            "multiply",
                            "average",
                            "concatenate",
                            "conv1d",
                            "max_pooling1d",
                            "average_pooling1d",
                            "global_average_pooling2d",
                            "global_max_pooling2d",
                            "embedding",
                            "head"};
    const char *fclasses[] = {"Add",
                              "Add",
                              "Subtract",
                              "Multiply",
                              "Average",
                              "Concatenate",
                              "Conv1D",
                              "MaxPooling1D",
                              "AveragePooling1D",
                              "GlobalAveragePooling2D",
                              "GlobalMaxPooling2D",
                              "Embedding",
                              "Dense"};
    for (int i = 0; i < 6; i++) CHECK(lm_call_n(fl[i], 2, ab) != NULL);
    CHECK(lm_call(fl[6], a) && lm_call(fl[7], a) && lm_call(fl[8], a));
    lm_kt *img = lm_model_input(m, LM_SHAPE(4, 4, 3), NULL);
    CHECK(lm_call(fl[9], img) && lm_call(fl[10], img));
    CHECK(lm_call(fl[11], a) && lm_call(fl[12], a));
    CHECK_MSG(lm_model_status(m) == LM_OK, "%s", lm_model_error(m));
    for (int i = 0; i < 13; i++) {
        CHECK_MSG(!strcmp(lm_layer_name(fl[i]), fnames[i]), "%s vs %s", lm_layer_name(fl[i]),
                  fnames[i]);
        CHECK_MSG(!strcmp(lm_layer_class(fl[i]), fclasses[i]), "%s vs %s", lm_layer_class(fl[i]),
                  fclasses[i]);
    }
    lm_model_free(m);
}

static void test_shapes(void) {
    CHECK_SHAPE(out_shape(lm_conv2d(8, LM_SIZE(3, 3)), LM_SHAPE(28, 28, 1)),
                LM_SHAPE(N, 26, 26, 8));
    CHECK_SHAPE(out_shape(lm_conv2d(4, LM_SIZE(3, 3), .strides = LM_SIZE(2, 2), .padding = LM_SAME),
                          LM_SHAPE(7, 6, 2)),
                LM_SHAPE(N, 4, 3, 4));
    CHECK_SHAPE(
        out_shape(lm_conv2d(2, LM_SIZE(3, 3), .dilation_rate = LM_SIZE(2, 2)), LM_SHAPE(9, 9, 2)),
        LM_SHAPE(N, 5, 5, 2));
    CHECK_SHAPE(out_shape(lm_conv1d(5, 3), LM_SHAPE(10, 2)), LM_SHAPE(N, 8, 5));
    CHECK_SHAPE(out_shape(lm_conv1d(5, 3, .padding = LM_CAUSAL, .dilation_rate = LM_SIZE(2, 0)),
                          LM_SHAPE(10, 2)),
                LM_SHAPE(N, 10, 5));
    CHECK_SHAPE(out_shape(lm_max_pooling2d(LM_SIZE(2, 2)), LM_SHAPE(7, 5, 3)),
                LM_SHAPE(N, 3, 2, 3));
    CHECK_SHAPE(out_shape(lm_max_pooling2d(LM_SIZE(2, 2), .padding = LM_SAME), LM_SHAPE(7, 5, 3)),
                LM_SHAPE(N, 4, 3, 3));
    CHECK_SHAPE(out_shape(lm_max_pooling2d(LM_SIZE(0, 0)), LM_SHAPE(4, 4, 1)),
                LM_SHAPE(N, 2, 2, 1));
    CHECK_SHAPE(
        out_shape(lm_average_pooling2d(LM_SIZE(3, 3), .strides = LM_SIZE(1, 1)), LM_SHAPE(5, 5, 2)),
        LM_SHAPE(N, 3, 3, 2));
    CHECK_SHAPE(out_shape(lm_max_pooling1d(0), LM_SHAPE(9, 3)), LM_SHAPE(N, 4, 3));
    CHECK_SHAPE(out_shape(lm_average_pooling1d(3, .strides = LM_SIZE(2, 0), .padding = LM_SAME),
                          LM_SHAPE(9, 3)),
                LM_SHAPE(N, 5, 3));
    CHECK_SHAPE(out_shape(lm_global_average_pooling2d(), LM_SHAPE(4, 5, 6)), LM_SHAPE(N, 6));
    CHECK_SHAPE(out_shape(lm_global_max_pooling2d(.keepdims = true), LM_SHAPE(4, 5, 6)),
                LM_SHAPE(N, 1, 1, 6));
    CHECK_SHAPE(out_shape(lm_global_average_pooling1d(.keepdims = true), LM_SHAPE(4, 6)),
                LM_SHAPE(N, 1, 6));
    CHECK_SHAPE(out_shape(lm_global_max_pooling1d(), LM_SHAPE(4, 6)), LM_SHAPE(N, 6));
    CHECK_SHAPE(out_shape(lm_zero_padding2d(), LM_SHAPE(3, 4, 2)), LM_SHAPE(N, 5, 6, 2));
    CHECK_SHAPE(out_shape(lm_zero_padding2d(.padding = {{0, 2}, {3, 1}}), LM_SHAPE(3, 4, 2)),
                LM_SHAPE(N, 5, 8, 2));
    CHECK_SHAPE(out_shape(lm_batch_normalization(), LM_SHAPE(4, 3)), LM_SHAPE(N, 4, 3));
    CHECK_SHAPE(out_shape(lm_layer_normalization(), LM_SHAPE(7)), LM_SHAPE(N, 7));
    CHECK_SHAPE(out_shape(lm_embedding(100, 8), LM_SHAPE(5)), LM_SHAPE(N, 5, 8));
    CHECK_SHAPE(out_shape(lm_embedding(100, 8), LM_SHAPE(2, 3)), LM_SHAPE(N, 2, 3, 8));
    CHECK_SHAPE(out_shape(lm_flatten(), LM_SHAPE(3, 4, 5)), LM_SHAPE(N, 60));
    CHECK_SHAPE(out_shape(lm_flatten(), LM_SCALAR), LM_SHAPE(N, 1));
    CHECK_SHAPE(out_shape(lm_reshape(LM_SHAPE(3, -1)), LM_SHAPE(12)), LM_SHAPE(N, 3, 4));
    CHECK_SHAPE(out_shape(lm_reshape(LM_SHAPE(2, 2, 3)), LM_SHAPE(4, 3)), LM_SHAPE(N, 2, 2, 3));
    CHECK_SHAPE(out_shape(lm_permute(LM_SHAPE(2, 1)), LM_SHAPE(3, 4)), LM_SHAPE(N, 4, 3));
    CHECK_SHAPE(out_shape(lm_permute(LM_SHAPE(3, 1, 2)), LM_SHAPE(3, 4, 5)), LM_SHAPE(N, 5, 3, 4));
    CHECK_SHAPE(out_shape(lm_repeat_vector(4), LM_SHAPE(3)), LM_SHAPE(N, 4, 3));
    CHECK_SHAPE(out_shape(lm_activation_layer(LM_SOFTMAX), LM_SHAPE(2, 3)), LM_SHAPE(N, 2, 3));
    CHECK_SHAPE(out_shape(lm_dropout(0.5f), LM_SHAPE(2, 3)), LM_SHAPE(N, 2, 3));
    CHECK_SHAPE(out_shape(lm_dense(4), LM_SHAPE(2, 3)), LM_SHAPE(N, 2, 4));

    /* Merges: broadcasting over size-1 axes and lower ranks, concatenation. */
    lm_model *m = lm_functional(NULL);
    lm_kt *a = lm_model_input(m, LM_SHAPE(3, 4), NULL), *b = lm_model_input(m, LM_SHAPE(4), NULL);
    lm_kt *c = lm_model_input(m, LM_SHAPE(3, 1), NULL),
          *d = lm_model_input(m, LM_SHAPE(2, 4), NULL);
    lm_kt *ab[2] = {a, b}, *ac[2] = {a, c}, *ad[2] = {a, d}, *aa[3] = {a, a, a};
    CHECK_SHAPE(lm_kt_shape(lm_call_n(lm_add_layer(), 2, ab)), LM_SHAPE(N, 3, 4));
    CHECK_SHAPE(lm_kt_shape(lm_call_n(lm_multiply(), 2, ac)), LM_SHAPE(N, 3, 4));
    CHECK_SHAPE(lm_kt_shape(lm_call_n(lm_average(), 3, aa)), LM_SHAPE(N, 3, 4));
    CHECK_SHAPE(lm_kt_shape(lm_call_n(lm_subtract(), 2, ab)), LM_SHAPE(N, 3, 4));
    CHECK_SHAPE(lm_kt_shape(lm_call_n(lm_concatenate(.axis = 1), 2, ad)), LM_SHAPE(N, 5, 4));
    CHECK_SHAPE(lm_kt_shape(lm_call_n(lm_concatenate(), 2, ac)), LM_SHAPE(N, 3, 5));
    CHECK_MSG(lm_model_status(m) == LM_OK, "%s", lm_model_error(m));
    lm_model_free(m);

    /* input_shape on the first Sequential layer defines the input. */
    m = lm_sequential(NULL);
    lm_add(m, lm_conv2d(4, LM_SIZE(3, 3), .input_shape = LM_SHAPE(10, 10, 1)));
    lm_add(m, lm_max_pooling2d(LM_SIZE(2, 2)));
    lm_add(m, lm_flatten());
    CHECK_MSG(lm_model_status(m) == LM_OK, "%s", lm_model_error(m));
    CHECK(lm_model_count_params(m, false) == 3 * 3 * 1 * 4 + 4);
    lm_model_free(m);
}

static void check_weight(lm_layer *l, int i, const char *name, lm_shape shape, bool trainable) {
    CHECK_MSG(lm_layer_weight_name(l, i) && !strcmp(lm_layer_weight_name(l, i), name),
              "%s weight %d is %s, wanted %s", lm_layer_name(l), i,
              lm_layer_weight_name(l, i) ? lm_layer_weight_name(l, i) : "NULL", name);
    CHECK_SHAPE(lm_tensor_shape(lm_layer_weight(l, i)), shape);
    CHECK_MSG(lm_layer_weight_trainable(l, i) == trainable, "%s weight %s trainable %d",
              lm_layer_name(l), name, (int)lm_layer_weight_trainable(l, i));
}

static bool all_equal(lm_tensor *t, double v) {
    for (int64_t i = 0; i < lm_tensor_numel(t); i++)
        if (lm_tensor_get(t, i) != v) return false;
    return true;
}

static bool within(lm_tensor *t, double lim, bool nonzero) {
    bool any = false;
    for (int64_t i = 0; i < lm_tensor_numel(t); i++) {
        double v = lm_tensor_get(t, i);
        if (fabs(v) > lim) return false;
        any = any || v != 0;
    }
    return any || !nonzero;
}

static void test_weights(void) {
    lm_model *m = lm_sequential(NULL);
    lm_add(m, lm_input(LM_SHAPE(6, 6, 4)));
    lm_layer *conv = lm_conv2d(6, LM_SIZE(3, 2), .groups = 2);
    lm_layer *bn = lm_batch_normalization();
    lm_layer *bn2 = lm_batch_normalization(.center = LM_FALSE);
    lm_layer *nob = lm_conv2d(3, LM_SIZE(1, 1), .use_bias = LM_FALSE);
    lm_layer *ln = lm_layer_normalization(.scale = LM_FALSE);
    lm_add(m, conv);
    lm_add(m, bn);
    lm_add(m, bn2);
    lm_add(m, nob);
    lm_add(m, ln);
    CHECK_MSG(lm_model_status(m) == LM_OK, "%s", lm_model_error(m));
    CHECK(lm_layer_weight_count(conv) == 2);
    check_weight(conv, 0, "kernel", LM_SHAPE(3, 2, 2, 6), true);
    check_weight(conv, 1, "bias", LM_SHAPE(6), true);
    /* glorot_uniform: fan_in 3*2*2, fan_out 3*2*6, limit sqrt(6 / (12 + 36)). */
    CHECK(within(lm_layer_weight(conv, 0), sqrt(6.0 / 48.0) + 1e-7, true));
    CHECK(all_equal(lm_layer_weight(conv, 1), 0));
    CHECK(lm_layer_weight_count(bn) == 4);
    check_weight(bn, 0, "gamma", LM_SHAPE(6), true);
    check_weight(bn, 1, "beta", LM_SHAPE(6), true);
    check_weight(bn, 2, "moving_mean", LM_SHAPE(6), false);
    check_weight(bn, 3, "moving_variance", LM_SHAPE(6), false);
    CHECK(all_equal(lm_layer_weight(bn, 0), 1) && all_equal(lm_layer_weight(bn, 1), 0));
    CHECK(all_equal(lm_layer_weight(bn, 2), 0) && all_equal(lm_layer_weight(bn, 3), 1));
    CHECK(lm_layer_weight_count(bn2) == 3);
    check_weight(bn2, 0, "gamma", LM_SHAPE(6), true);
    check_weight(bn2, 1, "moving_mean", LM_SHAPE(6), false);
    CHECK(lm_layer_weight_count(nob) == 1);
    check_weight(nob, 0, "kernel", LM_SHAPE(1, 1, 6, 3), true);
    CHECK(lm_layer_weight_count(ln) == 1);
    check_weight(ln, 0, "beta", LM_SHAPE(3), true);
    int64_t all = lm_model_count_params(m, false), tr = lm_model_count_params(m, true);
    CHECK(all == (36 * 2 + 6) + 24 + 18 + 18 + 3);
    CHECK(tr == all - 12 - 12);

    /* Freezing: every weight but the moving statistics follows the layer. */
    CHECK_STATUS(lm_layer_set_trainable(bn, false), LM_OK);
    for (int i = 0; i < 4; i++) CHECK(!lm_layer_weight_trainable(bn, i));
    CHECK_STATUS(lm_layer_set_trainable(bn, true), LM_OK);
    CHECK(lm_layer_weight_trainable(bn, 0) && lm_layer_weight_trainable(bn, 1));
    CHECK(!lm_layer_weight_trainable(bn, 2) && !lm_layer_weight_trainable(bn, 3));
    CHECK_STATUS(lm_layer_set_trainable(conv, false), LM_OK);
    CHECK(lm_model_count_params(m, true) == tr - 78);
    lm_model_free(m);

    /* Conv1D, Dense and Embedding; trainable = LM_FALSE at construction. */
    m = lm_functional(NULL);
    lm_kt *x = lm_model_input(m, LM_SHAPE(7, 3), NULL);
    lm_layer *c1 = lm_conv1d(4, 5, .padding = LM_SAME);
    lm_layer *de = lm_dense(2, .trainable = LM_FALSE);
    lm_layer *em = lm_embedding(50, 6);
    CHECK(lm_call(c1, x) && lm_call(de, x) && lm_call(em, x));
    check_weight(c1, 0, "kernel", LM_SHAPE(5, 3, 4), true);
    check_weight(c1, 1, "bias", LM_SHAPE(4), true);
    check_weight(de, 0, "kernel", LM_SHAPE(3, 2), false);
    check_weight(de, 1, "bias", LM_SHAPE(2), false);
    CHECK(lm_layer_weight_count(em) == 1);
    check_weight(em, 0, "embeddings", LM_SHAPE(50, 6), true);
    CHECK(within(lm_layer_weight(em, 0), 0.05, true)); /* uniform(-0.05, 0.05) */
    /* Initializers given as options. */
    lm_layer *ci = lm_conv2d(2, LM_SIZE(1, 1), .kernel_initializer = lm_ones(),
                             .bias_initializer = lm_constant_init(0.5));
    lm_kt *img = lm_model_input(m, LM_SHAPE(2, 2, 3), NULL);
    CHECK(lm_call(ci, img) != NULL);
    CHECK(all_equal(lm_layer_weight(ci, 0), 1) && all_equal(lm_layer_weight(ci, 1), 0.5));
    lm_model_free(m);

    /* set_weights names the layer and both shapes. */
    m = lm_sequential(NULL);
    lm_add(m, lm_input(LM_SHAPE(4)));
    lm_layer *ln2 = lm_layer_normalization();
    lm_add(m, ln2);
    lm_tensor *bad = lm_tensor_new(lm_model_ctx(m), LM_F32, LM_SHAPE(5));
    lm_tensor *w2[2] = {bad, bad};
    CHECK_STATUS(lm_layer_set_weights(ln2, 2, w2), LM_ERR_SHAPE);
    CHECK_CONTAINS(lm_ctx_error(lm_model_ctx(m)), "layer_normalization");
    CHECK_CONTAINS(lm_ctx_error(lm_model_ctx(m)), "(4,)");
    CHECK_CONTAINS(lm_ctx_error(lm_model_ctx(m)), "(5,)");
    lm_tensor_free(bad);
    lm_model_free(m);
}

/* Runs a one-input model's graph once in training or inference mode. */
static lm_tensor *run_once(lm_model *m, lm_tensor *x, bool training) {
    lm_node *y = m->outputs[0]->node;
    lm_session *s = lm_session_new(m->g, 1, &y);
    if (!s) return NULL;
    lm_session_feed(s, m->inputs[0]->node, x);
    lm_session_set_training(s, training);
    lm_tensor *out = lm_session_run(s) == LM_OK ? lm_tensor_clone(lm_session_output(s, 0)) : NULL;
    lm_session_free(s);
    return out;
}

static lm_model *dropout_model(uint64_t ctx_seed, uint64_t layer_seed) {
    lm_model *m = lm_functional(NULL);
    lm_ctx_seed(lm_model_ctx(m), ctx_seed);
    lm_kt *x = lm_model_input(m, LM_SHAPE(1000), NULL);
    lm_kt *y = lm_call(lm_dropout(0.25f, .seed = layer_seed), x);
    lm_model_set_outputs(m, 1, &y);
    return m;
}

static void test_dropout(void) {
    lm_model *m1 = dropout_model(3, 0), *m2 = dropout_model(3, 0), *m3 = dropout_model(4, 0);
    lm_model *m4 = dropout_model(3, 99), *m5 = dropout_model(4, 99);
    lm_tensor *x = lm_tensor_new(lm_model_ctx(m1), LM_F32, LM_SHAPE(2, 1000));
    for (int i = 0; i < 2000; i++) lm_tensor_set(x, i, 1.0 + i % 7);
    lm_tensor *a = run_once(m1, x, true), *b = run_once(m2, x, true), *c = run_once(m3, x, true);
    lm_tensor *d = run_once(m4, x, true), *e = run_once(m5, x, true), *f = run_once(m1, x, false);
    CHECK(a && b && c && d && e && f);
    if (a && b && c && d && e && f) {
        int zeros = 0, diff_c = 0, diff_d = 0, diff_e = 0, bad = 0, diff_b = 0, diff_f = 0;
        for (int i = 0; i < 2000; i++) {
            double xv = lm_tensor_get(x, i), av = lm_tensor_get(a, i);
            if (av == 0)
                zeros++;
            else if (fabs(av - xv / 0.75) > 1e-5 * xv)
                bad++;
            diff_b += lm_tensor_get(b, i) != av;
            diff_c += lm_tensor_get(c, i) != av;
            diff_e += lm_tensor_get(e, i) != lm_tensor_get(d, i);
            diff_d += lm_tensor_get(d, i) != av;
            diff_f += lm_tensor_get(f, i) != xv;
        }
        CHECK_MSG(zeros > 400 && zeros < 600, "%d of 2000 dropped at rate 0.25", zeros);
        CHECK(bad == 0);    /* kept values are scaled by 1 / (1 - rate) */
        CHECK(diff_b == 0); /* the same model seed gives the same mask */
        CHECK(diff_c > 0);  /* another model seed another mask */
        CHECK(diff_e == 0); /* a seed option fixes the mask */
        CHECK(diff_d > 0);
        CHECK(diff_f == 0); /* identity at inference */
    }
    lm_tensor *all[] = {a, b, c, d, e, f, x};
    for (int i = 0; i < 7; i++) lm_tensor_free(all[i]);
    lm_model *ms[] = {m1, m2, m3, m4, m5};
    for (int i = 0; i < 5; i++) lm_model_free(ms[i]);
}

/* A frozen BatchNormalization uses its moving statistics in training runs
 * and leaves them alone; a trainable one updates them. */
static void test_bn_frozen(void) {
    for (int frozen = 0; frozen < 2; frozen++) {
        lm_model *m = lm_functional(NULL);
        lm_kt *x = lm_model_input(m, LM_SHAPE(2), NULL);
        lm_layer *bn = lm_batch_normalization(.trainable = frozen ? LM_FALSE : LM_DEFAULT,
                                              .moving_mean_initializer = lm_constant_init(1.0),
                                              .moving_variance_initializer = lm_constant_init(4.0));
        lm_kt *y = lm_call(bn, x);
        lm_model_set_outputs(m, 1, &y);
        const float xv[4] = {1, 2, 3, 6};
        lm_tensor *xt = lm_tensor_from_data(lm_model_ctx(m), LM_F32, LM_SHAPE(2, 2), xv, sizeof xv);
        lm_tensor *out = run_once(m, xt, true);
        CHECK(out != NULL);
        if (out && frozen) {
            /* (x - 1) / sqrt(4 + 0.001) */
            for (int i = 0; i < 4; i++)
                CHECK_NEAR(lm_tensor_get(out, i), (xv[i] - 1) / sqrt(4.001), 1e-6);
            CHECK(all_equal(lm_layer_weight(bn, 2), 1) && all_equal(lm_layer_weight(bn, 3), 4));
        } else if (out) {
            /* batch statistics: channel 0 mean 2, var 1 -> (-1, 1) / sqrt(1.001) */
            CHECK_NEAR(lm_tensor_get(out, 0), -1 / sqrt(1.001), 1e-6);
            CHECK_NEAR(lm_tensor_get(lm_layer_weight(bn, 2), 0), 0.99 * 1 + 0.01 * 2, 1e-6);
            CHECK_NEAR(lm_tensor_get(lm_layer_weight(bn, 3), 0), 0.99 * 4 + 0.01 * 1, 1e-6);
        }
        /* Freezing a built layer rebuilds the graph: now the moving statistics serve. */
        if (!frozen) {
            CHECK_STATUS(lm_layer_set_trainable(bn, false), LM_OK);
            double mm = lm_tensor_get(lm_layer_weight(bn, 2), 0);
            double mv = lm_tensor_get(lm_layer_weight(bn, 3), 0);
            lm_tensor *o2 = run_once(m, xt, true);
            CHECK(o2 != NULL);
            if (o2) CHECK_NEAR(lm_tensor_get(o2, 0), (1 - mm) / sqrt(mv + 0.001), 1e-6);
            CHECK(lm_tensor_get(lm_layer_weight(bn, 2), 0) == mm);
            lm_tensor_free(o2);
            CHECK_STATUS(lm_layer_set_trainable(bn, true), LM_OK);
            o2 = run_once(m, xt, true);
            if (o2) CHECK_NEAR(lm_tensor_get(o2, 0), -1 / sqrt(1.001), 1e-6);
            CHECK(lm_tensor_get(lm_layer_weight(bn, 2), 0) != mm);
            lm_tensor_free(o2);
        }
        lm_tensor_free(out);
        lm_tensor_free(xt);
        lm_model_free(m);
    }
}

static void test_bad_constructors(void) {
    CHECK(lm_conv2d(0, LM_SIZE(3, 3)) == NULL);
    CHECK(lm_conv2d(4, LM_SIZE(0, 3)) == NULL);
    CHECK(lm_conv2d(3, LM_SIZE(3, 3), .groups = 2) == NULL); /* filters % groups */
    CHECK(lm_conv2d(4, LM_SIZE(3, 3), .strides = LM_SIZE(2, 2), .dilation_rate = LM_SIZE(2, 2)) ==
          NULL);
    CHECK(lm_conv2d(4, LM_SIZE(3, 3), .padding = LM_CAUSAL) == NULL);
    CHECK(lm_conv2d(4, LM_SIZE(3, 3), .strides = LM_SIZE(2, -1)) == NULL);
    CHECK(lm_conv2d(4, LM_SIZE(3, 3), .activation = (lm_activation)99) == NULL);
    CHECK(lm_conv1d(4, 0) == NULL);
    CHECK(lm_conv1d(4, 3, .strides = LM_SIZE(-1, 0)) == NULL);
    CHECK(lm_max_pooling2d(LM_SIZE(2, -1)) == NULL);
    CHECK(lm_max_pooling2d(LM_SIZE(2, 2), .padding = LM_CAUSAL) == NULL);
    CHECK(lm_average_pooling1d(-2) == NULL);
    CHECK(lm_zero_padding2d(.padding = {{1, -1}, {0, 0}}) == NULL);
    CHECK(lm_batch_normalization(.epsilon = -1) == NULL);
    CHECK(lm_layer_normalization(.epsilon = -1e-3f) == NULL);
    CHECK(lm_embedding(0, 4) == NULL);
    CHECK(lm_embedding(4, -1) == NULL);
    CHECK(lm_dropout(1.0f) == NULL);
    CHECK(lm_dropout(-0.1f) == NULL);
    CHECK(lm_reshape(LM_SHAPE(-1, -1)) == NULL);
    CHECK(lm_reshape(LM_SHAPE(0, 2)) == NULL);
    CHECK(lm_permute(LM_SHAPE(1, 1)) == NULL);
    CHECK(lm_permute(LM_SHAPE(0, 1)) == NULL);
    CHECK(lm_permute(LM_SHAPE(1, 3)) == NULL);
    CHECK(lm_repeat_vector(0) == NULL);
    CHECK(lm_activation_layer((lm_activation)-1) == NULL);
    lm_model *m = lm_sequential(NULL);
    CHECK_STATUS(lm_add(m, lm_conv2d(0, LM_SIZE(3, 3))), LM_ERR_ARG);
    CHECK_CONTAINS(lm_model_error(m), "the layer is NULL");
    lm_model_free(m);
}

static void test_bad_inputs(void) {
    /* Sequential: the message is kept by the model. */
    lm_model *m = lm_sequential(NULL);
    lm_add(m, lm_input(LM_SHAPE(784)));
    CHECK(lm_add(m, lm_conv2d(8, LM_SIZE(3, 3))) != LM_OK);
    CHECK_CONTAINS(lm_model_error(m),
                   "conv2d: expected input with 4 dimensions (batch, height, width, channels), "
                   "got (None, 784)");
    lm_model_free(m);

    expect_call_error(lm_conv1d(2, 3), LM_SHAPE(4, 4, 3),
                      "conv1d: expected input with 3 dimensions (batch, steps, channels), got "
                      "(None, 4, 4, 3)");
    expect_call_error(lm_conv2d(2, LM_SIZE(5, 5)), LM_SHAPE(4, 4, 3),
                      "conv2d: input (None, 4, 4, 3) is too small for kernel (5, 5)");
    expect_call_error(lm_conv2d(4, LM_SIZE(3, 3), .groups = 2), LM_SHAPE(6, 6, 3),
                      "conv2d: the number of input channels must be evenly divisible by the "
                      "number of groups; got groups=2 and input (None, 6, 6, 3)");
    expect_call_error(lm_max_pooling2d(LM_SIZE(2, 2)), LM_SHAPE(5, 3),
                      "max_pooling2d: expected input with 4 dimensions (batch, height, width, "
                      "channels), got (None, 5, 3)");
    expect_call_error(lm_average_pooling1d(4), LM_SHAPE(3, 2),
                      "average_pooling1d: input (None, 3, 2) is smaller than pool_size (4,)");
    expect_call_error(lm_global_average_pooling2d(), LM_SHAPE(5, 3),
                      "global_average_pooling2d: expected input with 4 dimensions");
    expect_call_error(lm_global_max_pooling1d(), LM_SHAPE(5),
                      "global_max_pooling1d: expected input with 3 dimensions (batch, steps, "
                      "channels), got (None, 5)");
    expect_call_error(lm_zero_padding2d(), LM_SHAPE(5, 3),
                      "zero_padding2d: expected input with 4 dimensions");
    expect_call_error(lm_batch_normalization(), LM_SCALAR,
                      "batch_normalization: expected input with at least 2 dimensions (batch, "
                      "..., features), got (None,)");
    expect_call_error(lm_layer_normalization(), LM_SCALAR,
                      "layer_normalization: expected input with at least 2 dimensions");
    expect_call_error(lm_reshape(LM_SHAPE(5, 2)), LM_SHAPE(12),
                      "reshape: cannot reshape input (None, 12) into target shape (5, 2)");
    expect_call_error(lm_reshape(LM_SHAPE(5, -1)), LM_SHAPE(12),
                      "reshape: cannot reshape input (None, 12) into target shape (5, -1)");
    expect_call_error(lm_permute(LM_SHAPE(2, 1)), LM_SHAPE(3),
                      "permute: expected input with 3 dimensions for dims (2, 1), got (None, 3)");
    expect_call_error(lm_repeat_vector(2), LM_SHAPE(3, 4),
                      "repeat_vector: expected input with 2 dimensions (batch, features), got "
                      "(None, 3, 4)");
    expect_call_error(lm_dense(3), LM_SCALAR, "dense");

    /* Merges name the layer and all the shapes. */
    m = lm_functional(NULL);
    lm_kt *a = lm_model_input(m, LM_SHAPE(3), NULL), *b = lm_model_input(m, LM_SHAPE(4), NULL);
    lm_kt *ab[2] = {a, b};
    CHECK(lm_call_n(lm_add_layer(), 2, ab) == NULL);
    CHECK_CONTAINS(lm_model_error(m),
                   "add: inputs have incompatible shapes (None, 3) and (None, 4)");
    lm_model_free(m);

    m = lm_functional(NULL);
    a = lm_model_input(m, LM_SHAPE(2, 3), NULL);
    b = lm_model_input(m, LM_SHAPE(2, 3), NULL);
    lm_kt *c = lm_model_input(m, LM_SHAPE(3, 3), NULL);
    lm_kt *abc[3] = {a, b, c};
    CHECK(lm_call_n(lm_multiply(), 3, abc) == NULL);
    CHECK_CONTAINS(lm_model_error(m), "multiply: inputs have incompatible shapes (None, 2, 3), "
                                      "(None, 2, 3) and (None, 3, 3)");
    lm_model_free(m);

    m = lm_functional(NULL);
    a = lm_model_input(m, LM_SHAPE(3), NULL);
    lm_kt *aaa[3] = {a, a, a};
    CHECK(lm_call_n(lm_subtract(), 3, aaa) == NULL);
    CHECK_CONTAINS(lm_model_error(m), "subtract: a Subtract layer takes exactly 2 inputs, got "
                                      "(None, 3), (None, 3) and (None, 3)");
    lm_model_free(m);

    m = lm_functional(NULL);
    a = lm_model_input(m, LM_SHAPE(3, 2), NULL);
    b = lm_model_input(m, LM_SHAPE(4, 5), NULL);
    lm_kt *ab2[2] = {a, b};
    CHECK(lm_call_n(lm_concatenate(), 2, ab2) == NULL);
    CHECK_CONTAINS(lm_model_error(m), "concatenate: inputs must have matching shapes except "
                                      "along the concatenation axis -1, got (None, 3, 2) and "
                                      "(None, 4, 5)");
    lm_model_free(m);

    m = lm_functional(NULL);
    a = lm_model_input(m, LM_SHAPE(3), NULL);
    lm_kt *a2[2] = {a, a};
    CHECK(lm_call_n(lm_concatenate(.axis = -2), 2, a2) == NULL);
    CHECK_CONTAINS(lm_model_error(m), "concatenate: axis -2 is out of range for inputs (None, 3) "
                                      "and (None, 3) (the batch axis cannot be joined)");
    lm_model_free(m);

    /* A shared layer called again on an incompatible input. */
    m = lm_functional(NULL);
    a = lm_model_input(m, LM_SHAPE(6, 6, 3), NULL);
    b = lm_model_input(m, LM_SHAPE(6, 3), NULL);
    lm_layer *conv = lm_conv2d(2, LM_SIZE(3, 3));
    CHECK(lm_call(conv, a) != NULL);
    CHECK(lm_call(conv, b) == NULL);
    CHECK_CONTAINS(lm_model_error(m), "conv2d: expected input with 4 dimensions");
    lm_model_free(m);
}

int main(void) {
    RUN(test_names);
    RUN(test_shapes);
    RUN(test_weights);
    RUN(test_dropout);
    RUN(test_bn_frozen);
    RUN(test_bad_constructors);
    RUN(test_bad_inputs);
    return lmt_summary("test_layers");
}
