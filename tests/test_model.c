/* Models end to end on small synthetic data: Sequential add/pop, functional
 * models with several inputs and outputs and shared layers, determinism
 * under a seed, fit's options (validation split, weights, initial epoch, a
 * short last batch), and every bad-input case the Keras API must report. */
#include <lamina/lamina.h>
#include <lamina/model.h>
#include <lamina/callbacks.h>
#include "lmtest.h"

/* x (n, 4) normal; y: class = (x0 > 0) + (x1 > 0), as int32 or one-hot. */
static void make_data(lm_model *m, int n, lm_tensor **x, lm_tensor **y, bool onehot) {
    lm_ctx *ctx = lm_model_ctx(m);
    lm_ctx_seed(ctx, 99);
    *x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(n, 4));
    lm_tensor_random_normal(*x, 0, 1);
    *y = onehot ? lm_tensor_new(ctx, LM_F32, LM_SHAPE(n, 3))
                : lm_tensor_new(ctx, LM_I32, LM_SHAPE(n));
    for (int i = 0; i < n; i++) {
        int c = (lm_tensor_get(*x, i * 4) > 0) + (lm_tensor_get(*x, i * 4 + 1) > 0);
        if (onehot)
            lm_tensor_set(*y, i * 3 + c, 1);
        else
            lm_tensor_set(*y, i, c);
    }
}

static lm_model *mlp(uint64_t seed) {
    lm_model *m = lm_sequential("mlp");
    lm_ctx_seed(lm_model_ctx(m), seed);
    lm_add(m, lm_dense(16, .activation = LM_RELU, .input_dim = 4));
    lm_add(m, lm_dropout(0.2));
    lm_add(m, lm_dense(3, .activation = LM_SOFTMAX));
    lm_compile(m, .optimizer = lm_adam(.learning_rate = 0.01),
               .loss = LM_SPARSE_CATEGORICAL_CROSSENTROPY, .metrics = LM_METRICS(LM_ACCURACY));
    return m;
}

static void free_all(lm_model *m, lm_tensor *x, lm_tensor *y, lm_history *h) {
    lm_history_free(h);
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_model_free(m);
}

/* The same seed gives the same weights and the same loss curve; training learns. */
static void same_seed_same_run(void) {
    double loss[2][4];
    float w0[2];
    for (int r = 0; r < 2; r++) {
        lm_model *m = mlp(7);
        lm_tensor *x, *y;
        make_data(m, 200, &x, &y, false);
        w0[r] = lm_tensor_f32(lm_model_weight(m, 0))[3];
        lm_history *h = lm_fit(m, x, y, .epochs = 4, .batch_size = 32, .verbose = LM_SILENT,
                               .validation_split = 0.25);
        CHECK_MSG(h != NULL, "%s", lm_model_error(m));
        if (!h) return;
        CHECK(lm_history_epochs(h) == 4);
        for (int e = 0; e < 4; e++) loss[r][e] = lm_history_get(h, "loss", e);
        CHECK(lm_history_get(h, "val_loss", 3) < lm_history_get(h, "val_loss", 0));
        CHECK(!isnan(lm_history_get(h, "val_accuracy", 0)));
        free_all(m, x, y, h);
    }
    CHECK(w0[0] == w0[1]);
    for (int e = 0; e < 4; e++) CHECK(loss[0][e] == loss[1][e]);
    CHECK(loss[0][3] < loss[0][0]);
    /* A different seed gives different weights. */
    lm_model *m = mlp(8);
    CHECK(lm_tensor_f32(lm_model_weight(m, 0))[3] != w0[0]);
    lm_model_free(m);
}

/* A last batch smaller than the others, and evaluate/predict shapes. */
static void short_last_batch(void) {
    lm_model *m = mlp(1);
    lm_tensor *x, *y;
    make_data(m, 70, &x, &y, false); /* 32 + 32 + 6 */
    int batches = 0;
    lm_history *h = lm_fit(m, x, y, .epochs = 1, .batch_size = 32, .verbose = LM_SILENT);
    CHECK(h != NULL);
    double r[4];
    CHECK(lm_evaluate(m, x, y, r, 4, .batch_size = 32, .verbose = LM_SILENT) == 2);
    CHECK(!strcmp(lm_model_metric_name(m, 0), "loss") &&
          !strcmp(lm_model_metric_name(m, 1), "accuracy"));
    lm_tensor *p = lm_predict(m, x, .batch_size = 32, .verbose = LM_SILENT);
    CHECK(p && lm_tensor_dim(p, 0) == 70 && lm_tensor_dim(p, 1) == 3);
    /* Predicted rows are probability vectors; accuracy from them matches evaluate's. */
    int correct = 0;
    for (int i = 0; i < 70; i++) {
        int best = 0;
        double sum = 0;
        for (int k = 0; k < 3; k++) {
            sum += lm_tensor_get(p, i * 3 + k);
            if (lm_tensor_get(p, i * 3 + k) > lm_tensor_get(p, i * 3 + best)) best = k;
        }
        CHECK_NEAR(sum, 1.0, 1e-5);
        correct += best == (int)lm_tensor_get(y, i);
    }
    CHECK_NEAR(r[1], correct / 70.0, 1e-6);
    lm_tensor *pb = lm_predict_on_batch(m, x);
    CHECK(pb && lm_tensor_get(pb, 5) == lm_tensor_get(p, 5));
    (void)batches;
    lm_tensor_free(pb);
    lm_tensor_free(p);
    free_all(m, x, y, h);
}

/* validation_split holds out the last fraction: evaluate on those rows gives val_loss. */
static void validation_split_is_the_tail(void) {
    lm_model *m = lm_sequential("v");
    lm_add(m, lm_dense(3, .activation = LM_SOFTMAX, .input_dim = 4));
    lm_compile(m, .optimizer = lm_sgd(.learning_rate = 0.0),
               .loss = LM_SPARSE_CATEGORICAL_CROSSENTROPY);
    lm_tensor *x, *y;
    make_data(m, 100, &x, &y, false);
    /* lr 0: weights do not move, so val_loss is the loss of the last 20 rows. */
    lm_compile(m, .optimizer = lm_sgd(.learning_rate = 1e-30),
               .loss = LM_SPARSE_CATEGORICAL_CROSSENTROPY);
    lm_history *h = lm_fit(m, x, y, .validation_split = 0.2, .verbose = LM_SILENT);
    lm_tensor *xt = lm_rows(x, 80, 20), *yt = lm_rows(y, 80, 20);
    double r[1];
    lm_evaluate(m, xt, yt, r, 1, .verbose = LM_SILENT);
    CHECK_NEAR(lm_history_get(h, "val_loss", 0), r[0], 1e-6);
    lm_tensor_free(xt);
    lm_tensor_free(yt);
    free_all(m, x, y, h);
}

/* Sample weights scale each sample's loss; class weights act through the labels. */
static void sample_and_class_weights(void) {
    lm_model *m = lm_sequential("w");
    lm_add(m, lm_dense(3, .activation = LM_SOFTMAX, .input_dim = 4));
    lm_compile(m, .optimizer = lm_sgd(), .loss = LM_SPARSE_CATEGORICAL_CROSSENTROPY);
    lm_tensor *x, *y;
    make_data(m, 64, &x, &y, false);
    double plain[1], weighted[1], doubled[1];
    lm_test_on_batch(m, x, y, NULL, plain, 1);
    lm_tensor *sw = lm_tensor_new(lm_model_ctx(m), LM_F32, LM_SHAPE(64));
    lm_tensor_fill(sw, 2.0);
    lm_test_on_batch(m, x, y, sw, doubled, 1);
    CHECK_NEAR(doubled[0], 2 * plain[0], 1e-5);
    /* Weight 0 on every sample of class 0: the mean drops by their share. */
    lm_tensor_fill(sw, 1.0);
    for (int i = 0; i < 64; i++)
        if (lm_tensor_get(y, i) == 0) lm_tensor_set(sw, i, 0);
    lm_test_on_batch(m, x, y, sw, weighted, 1);
    CHECK(weighted[0] < plain[0]);
    /* class_weight {0: 0, 1: 1, 2: 1} trains like those sample weights: one epoch of full batch. */
    lm_model *a = lm_sequential("a"), *b = lm_sequential("b");
    lm_model *ms[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        lm_ctx_seed(lm_model_ctx(ms[k]), 3);
        lm_add(ms[k], lm_dense(3, .activation = LM_SOFTMAX, .input_dim = 4));
        lm_compile(ms[k], .optimizer = lm_sgd(.learning_rate = 0.5),
                   .loss = LM_SPARSE_CATEGORICAL_CROSSENTROPY);
    }
    double cw[3] = {0, 1, 1};
    lm_history *ha = lm_fit(a, x, y, .batch_size = 64, .verbose = LM_SILENT, .class_weight = cw,
                            .n_class_weight = 3, .shuffle = LM_FALSE);
    lm_history *hb = lm_fit(b, x, y, .batch_size = 64, .verbose = LM_SILENT, .sample_weight = sw,
                            .shuffle = LM_FALSE);
    CHECK(ha && hb);
    CHECK_NEAR(lm_tensor_get(lm_model_weight(a, 0), 2), lm_tensor_get(lm_model_weight(b, 0), 2),
               1e-6);
    lm_history_free(ha);
    lm_history_free(hb);
    lm_model_free(a);
    lm_model_free(b);
    lm_tensor_free(sw);
    free_all(m, x, y, NULL);
}

static void initial_epoch_and_history(void) {
    lm_model *m = mlp(2);
    lm_tensor *x, *y;
    make_data(m, 64, &x, &y, false);
    lm_history *h = lm_fit(m, x, y, .epochs = 5, .initial_epoch = 3, .verbose = LM_SILENT);
    CHECK(h && lm_history_epochs(h) == 2);
    CHECK(lm_history_key_count(h) == 2);
    CHECK(isnan(lm_history_get(h, "nope", 0)));
    free_all(m, x, y, h);
}

static void sequential_add_pop_and_names(void) {
    lm_model *m = lm_sequential(NULL);
    CHECK(!strcmp(lm_model_name(m), "sequential"));
    lm_add(m, lm_input(LM_SHAPE(8)));
    lm_add(m, lm_dense(4));
    lm_add(m, lm_dense(5));
    lm_add(m, lm_dense(6));
    CHECK(lm_model_layer_count(m) == 3);
    CHECK(!strcmp(lm_layer_name(lm_model_layer(m, 0)), "dense"));
    CHECK(!strcmp(lm_layer_name(lm_model_layer(m, 2)), "dense_2"));
    CHECK(lm_model_get_layer(m, "dense_1") == lm_model_layer(m, 1));
    CHECK(lm_model_count_params(m, false) == 8 * 4 + 4 + 4 * 5 + 5 + 5 * 6 + 6);
    CHECK_STATUS(lm_pop(m), LM_OK);
    CHECK(lm_model_layer_count(m) == 2);
    lm_ctx *ctx = lm_model_ctx(m);
    lm_tensor *x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(3, 8));
    lm_tensor *p = lm_predict(m, x, .verbose = LM_SILENT);
    CHECK(p && lm_tensor_dim(p, 1) == 5);
    lm_add(m, lm_dense(2));
    CHECK(!strcmp(lm_layer_name(lm_model_layer(m, 2)), "dense_3"));
    lm_tensor_free(p);
    lm_tensor_free(x);
    lm_model_free(m);

    /* Without an input shape the model builds on the first data it sees. */
    m = lm_sequential("deferred");
    lm_add(m, lm_dense(4, .activation = LM_RELU));
    lm_add(m, lm_dense(2));
    x = lm_tensor_new(lm_model_ctx(m), LM_F32, LM_SHAPE(5, 7));
    p = lm_predict(m, x, .verbose = LM_SILENT);
    CHECK_MSG(p && lm_tensor_dim(p, 1) == 2, "%s", lm_model_error(m));
    CHECK(lm_tensor_dim(lm_model_weight(m, 0), 0) == 7);
    lm_tensor_free(p);
    lm_tensor_free(x);
    lm_model_free(m);
}

/* Two inputs, two outputs, one shared layer. */
static void functional_multi_io_shared(void) {
    lm_model *m = lm_functional("two_heads");
    lm_kt *a = lm_model_input(m, LM_SHAPE(4), "a"), *b = lm_model_input(m, LM_SHAPE(4), "b");
    lm_layer *shared = lm_dense(8, .activation = LM_TANH);
    lm_kt *ha = lm_call(shared, a), *hb = lm_call(shared, b);
    lm_kt *s = lm_call_n(lm_concatenate(), 2, (lm_kt *[]){ha, hb});
    lm_kt *o1 = lm_call(lm_dense(3, .activation = LM_SOFTMAX, .name = "cls"), s);
    lm_kt *o2 = lm_call(lm_dense(1, .name = "reg"), s);
    CHECK_STATUS(lm_model_set_outputs(m, 2, (lm_kt *[]){o1, o2}), LM_OK);
    CHECK(lm_model_layer_count(m) == 4);
    CHECK(lm_kt_shape(s).dims[1] == 16);
    /* The shared layer's weights are counted once. */
    CHECK(lm_model_count_params(m, true) == (4 * 8 + 8) + (16 * 3 + 3) + (16 + 1));
    lm_compile(m, .optimizer = lm_adam(),
               .losses = (lm_loss[]){LM_SPARSE_CATEGORICAL_CROSSENTROPY, LM_MSE},
               .loss_weights = (double[]){1.0, 0.5}, .metrics = LM_METRICS(LM_ACCURACY));
    lm_ctx *ctx = lm_model_ctx(m);
    lm_tensor *xa, *y;
    make_data(m, 64, &xa, &y, false);
    lm_tensor *xb = lm_tensor_clone(xa), *yr = lm_tensor_new(ctx, LM_F32, LM_SHAPE(64, 1));
    for (int i = 0; i < 64; i++) lm_tensor_set(yr, i, lm_tensor_get(xa, i * 4 + 2));
    lm_history *h = lm_fit_multi(m, 2, (lm_tensor *[]){xa, xb}, 2, (lm_tensor *[]){y, yr},
                                 (lm_fit_opts){.epochs = 3, .verbose = LM_SILENT});
    CHECK_MSG(h != NULL, "%s", lm_model_error(m));
    CHECK(!isnan(lm_history_get(h, "cls_accuracy", 2)));
    lm_tensor *outs[2] = {NULL, NULL};
    CHECK(lm_predict_multi(m, 2, (lm_tensor *[]){xa, xb}, 2, outs,
                           (lm_predict_opts){.verbose = LM_SILENT}) == 2);
    CHECK(outs[0] && lm_tensor_dim(outs[0], 1) == 3 && outs[1] && lm_tensor_dim(outs[1], 1) == 1);
    lm_tensor_free(outs[0]);
    lm_tensor_free(outs[1]);
    lm_history_free(h);
    lm_tensor_free(xb);
    lm_tensor_free(yr);
    free_all(m, xa, y, NULL);
}

/* ---- bad input: each case names what is wrong ---- */

static void input_not_matching_data(void) {
    lm_model *m = lm_sequential("cnn");
    lm_add(m, lm_input(LM_SHAPE(28, 28, 1)));
    lm_add(m, lm_flatten());
    lm_add(m, lm_dense(10, .activation = LM_SOFTMAX));
    lm_compile(m, .loss = LM_CATEGORICAL_CROSSENTROPY);
    lm_ctx *ctx = lm_model_ctx(m);
    lm_tensor *x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(4, 784)),
              *y = lm_tensor_new(ctx, LM_F32, LM_SHAPE(4, 10));
    CHECK(lm_fit(m, x, y, .verbose = LM_SILENT) == NULL);
    CHECK_CONTAINS(lm_model_error(m), "(None, 28, 28, 1)");
    CHECK_CONTAINS(lm_model_error(m), "(4, 784)");
    free_all(m, x, y, NULL);
}

static void incompatible_layers(void) {
    lm_model *m = lm_sequential("bad");
    lm_add(m, lm_input(LM_SHAPE(784)));
    CHECK(lm_add(m, lm_conv2d(8, LM_SIZE(3, 3))) != LM_OK);
    CHECK_CONTAINS(lm_model_error(m), "conv2d");
    CHECK_CONTAINS(lm_model_error(m), "(None, 784)");
    /* The first error stays; compile and fit report it. */
    lm_add(m, lm_dense(3));
    CHECK(lm_compile(m, .loss = LM_MSE) != LM_OK);
    CHECK_CONTAINS(lm_model_error(m), "conv2d");
    lm_model_free(m);

    m = lm_functional("merge");
    lm_kt *a = lm_model_input(m, LM_SHAPE(3), NULL), *b = lm_model_input(m, LM_SHAPE(4), NULL);
    CHECK(lm_call_n(lm_add_layer(), 2, (lm_kt *[]){a, b}) == NULL);
    CHECK_CONTAINS(lm_model_error(m), "(None, 3)");
    CHECK_CONTAINS(lm_model_error(m), "(None, 4)");
    lm_model_free(m);

    m = lm_sequential("null");
    CHECK(lm_add(m, lm_dense(0)) != LM_OK); /* invalid units: the constructor fails */
    CHECK_CONTAINS(lm_model_error(m), "NULL");
    lm_model_free(m);
}

static void labels_of_wrong_shape(void) {
    lm_model *m = lm_sequential("l");
    lm_add(m, lm_dense(5, .activation = LM_SOFTMAX, .input_dim = 4));
    lm_compile(m, .loss = LM_CATEGORICAL_CROSSENTROPY);
    lm_tensor *x, *y;
    make_data(m, 16, &x, &y, true); /* one-hot of width 3 against 5 outputs */
    CHECK(lm_fit(m, x, y, .verbose = LM_SILENT) == NULL);
    CHECK_CONTAINS(lm_model_error(m), "categorical_crossentropy");
    CHECK_CONTAINS(lm_model_error(m), "(None, 3)");
    CHECK_CONTAINS(lm_model_error(m), "(None, 5)");
    free_all(m, x, y, NULL);

    m = lm_sequential("rows");
    lm_add(m, lm_dense(3, .input_dim = 4));
    lm_compile(m, .loss = LM_MSE);
    lm_ctx *ctx = lm_model_ctx(m);
    x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(10, 4));
    y = lm_tensor_new(ctx, LM_F32, LM_SHAPE(9, 3));
    CHECK(lm_fit(m, x, y, .verbose = LM_SILENT) == NULL);
    CHECK_CONTAINS(lm_model_error(m), "10 samples but y has 9");
    free_all(m, x, y, NULL);
}

static void fit_before_compile_and_empty_data(void) {
    lm_model *m = lm_sequential("nc");
    lm_add(m, lm_dense(3, .input_dim = 4));
    lm_ctx *ctx = lm_model_ctx(m);
    lm_tensor *x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(8, 4)),
              *y = lm_tensor_new(ctx, LM_F32, LM_SHAPE(8, 3));
    CHECK(lm_fit(m, x, y, .verbose = LM_SILENT) == NULL);
    CHECK_CONTAINS(lm_model_error(m), "compile");
    double r[2];
    CHECK(lm_evaluate(m, x, y, r, 2, .verbose = LM_SILENT) == -1);
    free_all(m, x, y, NULL);

    m = lm_sequential("empty");
    lm_add(m, lm_dense(3, .input_dim = 4));
    lm_compile(m, .loss = LM_MSE);
    ctx = lm_model_ctx(m);
    x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(0, 4));
    y = lm_tensor_new(ctx, LM_F32, LM_SHAPE(0, 3));
    CHECK(lm_fit(m, x, y, .verbose = LM_SILENT) == NULL);
    CHECK_CONTAINS(lm_model_error(m), "empty");
    free_all(m, x, y, NULL);

    m = lm_sequential("args");
    lm_add(m, lm_dense(3, .input_dim = 4));
    lm_compile(m, .loss = LM_MSE);
    ctx = lm_model_ctx(m);
    x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(4, 4));
    y = lm_tensor_new(ctx, LM_F32, LM_SHAPE(4, 3));
    CHECK(lm_fit(m, x, NULL, .verbose = LM_SILENT) == NULL);
    CHECK(lm_fit(m, x, y, .validation_split = 1.5, .verbose = LM_SILENT) == NULL);
    CHECK_CONTAINS(lm_model_error(m), "validation_split");
    free_all(m, x, y, NULL);

    m = lm_sequential("nolayers");
    lm_compile(m, .loss = LM_MSE);
    ctx = lm_model_ctx(m);
    x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(4, 4));
    y = lm_tensor_new(ctx, LM_F32, LM_SHAPE(4, 3));
    CHECK(lm_fit(m, x, y, .verbose = LM_SILENT) == NULL);
    CHECK_CONTAINS(lm_model_error(m), "no layers");
    free_all(m, x, y, NULL);

    CHECK(lm_fit(NULL, NULL, NULL) == NULL);
    CHECK_STATUS(lm_add(NULL, NULL), LM_ERR_ARG);
    CHECK(lm_predict(NULL, NULL) == NULL);
    lm_model_free(NULL);
}

int main(void) {
    RUN(same_seed_same_run);
    RUN(short_last_batch);
    RUN(validation_split_is_the_tail);
    RUN(sample_and_class_weights);
    RUN(initial_epoch_and_history);
    RUN(sequential_add_pop_and_names);
    RUN(functional_multi_io_shared);
    RUN(input_not_matching_data);
    RUN(incompatible_layers);
    RUN(labels_of_wrong_shape);
    RUN(fit_before_compile_and_empty_data);
    return lmt_summary("model");
}
