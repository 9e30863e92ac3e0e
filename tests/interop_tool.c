/* The C side of tests/keras/interop_files.py: loads, predicts, trains and
 * saves Keras files with Lamina so the Python side can compare with Keras.
 *
 *   interop_tool predict MODEL OUT_PREFIX X0.npy [X1.npy ...]
 *       writes OUT_PREFIX.<i>.npy for each output
 *   interop_tool train MODEL OUT.keras STEPS X.npy Y.npy
 *       STEPS train_on_batch calls on the whole (X, Y), then saves
 *   interop_tool build KIND OUT.keras
 *       a model built in C (mlp, cnn, rnn, emb, functional), trained a few
 *       steps so that its optimizer has state, then saved
 *   interop_tool json CONFIG.json OUT.keras
 *       a model from a Keras config file (fresh weights), saved
 *
 * Messages go to stderr; the exit status is 0 on success, 1 on failure. */
#include <lamina/lamina.h>
#include <lamina/model.h>
#include <lamina/saving.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail_model(const char *what, lm_model *m) {
    fprintf(stderr, "interop_tool: %s: %s\n", what, m ? lm_model_error(m) : lm_saving_error());
    return 1;
}

static lm_model *load(const char *path) {
    lm_model *m = lm_load(path);
    if (!m) fprintf(stderr, "interop_tool: %s\n", lm_saving_error());
    return m;
}

static int cmd_predict(int argc, char **argv) {
    if (argc < 5) return fprintf(stderr, "usage: predict MODEL OUT_PREFIX X.npy...\n"), 2;
    lm_model *m = load(argv[2]);
    if (!m) return 1;
    int nx = argc - 4, rc = 0;
    lm_tensor *x[8] = {NULL}, *y[8] = {NULL};
    for (int i = 0; i < nx && i < 8 && !rc; i++)
        if (!(x[i] = lm_npy_load(lm_model_ctx(m), argv[4 + i]))) rc = fail_model("input", m);
    int ny = rc ? -1 : lm_predict_multi(m, nx, x, 8, y, (lm_predict_opts){.verbose = LM_SILENT});
    if (!rc && ny < 1) rc = fail_model("predict", m);
    for (int i = 0; !rc && i < ny; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s.%d.npy", argv[3], i);
        if (lm_npy_save(y[i], path)) rc = fail_model("save output", m);
    }
    for (int i = 0; i < 8; i++) lm_tensor_free(x[i]), lm_tensor_free(y[i]);
    lm_model_free(m);
    return rc;
}

static int cmd_train(int argc, char **argv) {
    if (argc != 7) return fprintf(stderr, "usage: train MODEL OUT.keras STEPS X.npy Y.npy\n"), 2;
    lm_model *m = load(argv[2]);
    if (!m) return 1;
    int rc = 0, steps = atoi(argv[4]);
    lm_tensor *x = lm_npy_load(lm_model_ctx(m), argv[5]),
              *y = lm_npy_load(lm_model_ctx(m), argv[6]);
    if (!x || !y) rc = fail_model("data", m);
    for (int s = 0; s < steps && !rc; s++) {
        double out[16];
        if (lm_train_on_batch(m, x, y, NULL, out, 16) < 1) rc = fail_model("train_on_batch", m);
    }
    if (!rc && lm_save(m, argv[3])) rc = fail_model("save", m);
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_model_free(m);
    return rc;
}

/* Fills t with a fixed pattern in [-1, 1) (or integers below mod). */
static void fill(lm_tensor *t, int seed, int mod) {
    for (int64_t i = 0; i < lm_tensor_numel(t); i++) {
        uint32_t h = (uint32_t)(i * 2654435761u + (uint32_t)seed * 40503u);
        h ^= h >> 13;
        h *= 0x5bd1e995u;
        h ^= h >> 15;
        lm_tensor_set(t, i, mod ? (double)(h % (uint32_t)mod) : (double)(h % 2000u) / 1000.0 - 1.0);
    }
}

static lm_model *build(const char *kind, lm_shape *xs, int *nx, lm_shape *ys, int *y_mod) {
    lm_model *m = NULL;
    *nx = 1;
    *y_mod = 0;
    if (!strcmp(kind, "mlp")) {
        m = lm_sequential("c_mlp");
        lm_add(m, lm_input(LM_SHAPE(6)));
        lm_add(m, lm_dense(8, .activation = LM_RELU, .kernel_regularizer = &lm_l2(0.01)));
        lm_add(m, lm_batch_normalization());
        lm_add(m, lm_dense(3, .activation = LM_SOFTMAX));
        lm_compile(m, .optimizer = lm_adam(.learning_rate = 0.01),
                   .loss = LM_CATEGORICAL_CROSSENTROPY, .metrics = LM_METRICS(LM_ACCURACY));
        xs[0] = LM_SHAPE(16, 6), ys[0] = LM_SHAPE(16, 3);
    } else if (!strcmp(kind, "cnn")) {
        m = lm_sequential("c_cnn");
        lm_add(m, lm_input(LM_SHAPE(8, 8, 2)));
        lm_add(m, lm_conv2d(4, LM_SIZE(3, 3), .padding = LM_SAME, .activation = LM_RELU));
        lm_add(m, lm_max_pooling2d(LM_SIZE(2, 2)));
        lm_add(m, lm_zero_padding2d());
        lm_add(m, lm_conv2d(2, LM_SIZE(2, 2), .strides = LM_SIZE(2, 2)));
        lm_add(m, lm_average_pooling2d(LM_SIZE(1, 1)));
        lm_add(m, lm_flatten());
        lm_add(m, lm_dropout(0.25f, .seed = 3));
        lm_add(m, lm_dense(2));
        lm_compile(m, .optimizer = lm_sgd(.learning_rate = 0.05, .momentum = 0.9), .loss = LM_MSE);
        xs[0] = LM_SHAPE(6, 8, 8, 2), ys[0] = LM_SHAPE(6, 2);
    } else if (!strcmp(kind, "rnn")) {
        m = lm_sequential("c_rnn");
        lm_add(m, lm_input(LM_SHAPE(5, 3)));
        lm_add(m, lm_conv1d(4, 2, .padding = LM_CAUSAL));
        lm_add(m, lm_lstm(4, .return_sequences = true));
        lm_add(m,
               lm_bidirectional(lm_gru(3, .return_sequences = true), .merge_mode = LM_MERGE_SUM));
        lm_add(m, lm_simple_rnn(3));
        lm_add(m, lm_layer_normalization());
        lm_add(m, lm_dense(1));
        lm_compile(
            m, .optimizer = lm_rmsprop(.learning_rate = 0.01, .momentum = 0.5, .centered = true),
            .loss = LM_MAE);
        xs[0] = LM_SHAPE(6, 5, 3), ys[0] = LM_SHAPE(6, 1);
    } else if (!strcmp(kind, "emb")) {
        m = lm_sequential("c_emb");
        lm_add(m, lm_input(LM_SHAPE(5)));
        lm_add(m, lm_embedding(12, 4));
        lm_add(m, lm_gru(3, .reset_after = LM_FALSE));
        lm_add(m, lm_repeat_vector(2));
        lm_add(m, lm_global_average_pooling1d());
        lm_add(m, lm_dense(4));
        lm_compile(m, .optimizer = lm_adagrad(.learning_rate = 0.1),
                   .loss = LM_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true);
        xs[0] = LM_SHAPE(6, 5), ys[0] = LM_SHAPE(6);
        *y_mod = 4;
    } else if (!strcmp(kind, "functional")) {
        m = lm_functional("c_functional");
        lm_kt *a = lm_model_input(m, LM_SHAPE(4), "a"), *b = lm_model_input(m, LM_SHAPE(4), "b");
        lm_layer *shared = lm_dense(5, .activation = LM_TANH, .name = "shared");
        lm_kt *sa = lm_call(shared, a), *sb = lm_call(shared, b);
        lm_kt *add = lm_call_n(lm_add_layer(), 2, (lm_kt *[]){sa, sb});
        lm_kt *mul = lm_call_n(lm_multiply(), 2, (lm_kt *[]){sa, add});
        lm_kt *cat = lm_call_n(lm_concatenate(), 3, (lm_kt *[]){mul, a, sb});
        lm_kt *r = lm_call(lm_reshape(LM_SHAPE(2, 7)), cat);
        lm_kt *p = lm_call(lm_permute(LM_SHAPE(2, 1)), r);
        lm_kt *o = lm_call(lm_global_max_pooling1d(), p);
        lm_kt *out = lm_call(lm_dense(2, .name = "out"), o);
        lm_model_set_outputs(m, 1, &out);
        lm_compile(m, .optimizer = lm_adamw(.learning_rate = 0.02), .loss = LM_HUBER);
        xs[0] = xs[1] = LM_SHAPE(8, 4), ys[0] = LM_SHAPE(8, 2);
        *nx = 2;
    }
    return m;
}

static int cmd_build(int argc, char **argv) {
    if (argc != 4) return fprintf(stderr, "usage: build KIND OUT.keras\n"), 2;
    lm_shape xs[2], ys[1];
    int nx, y_mod;
    lm_model *m = build(argv[2], xs, &nx, ys, &y_mod);
    if (!m) return fprintf(stderr, "interop_tool: unknown kind %s\n", argv[2]), 2;
    if (lm_model_status(m)) return fail_model("build", m);
    lm_ctx_seed(lm_model_ctx(m), 7);
    lm_tensor *x[2] = {NULL}, *y = NULL;
    for (int i = 0; i < nx; i++) {
        x[i] = lm_tensor_new(lm_model_ctx(m), LM_F32, xs[i]);
        fill(x[i], 1 + i, !strcmp(argv[2], "emb") ? 12 : 0);
    }
    y = lm_tensor_new(lm_model_ctx(m), y_mod ? LM_I32 : LM_F32, ys[0]);
    fill(y, 9, y_mod);
    if (!strcmp(argv[2], "mlp")) /* one-hot labels */
        for (int64_t i = 0; i < lm_tensor_numel(y); i++) lm_tensor_set(y, i, i % 3 == (i / 3) % 3);
    int rc = 0;
    lm_history *h = lm_fit_multi(
        m, nx, x, 1, &y,
        (lm_fit_opts){.epochs = 2, .batch_size = 4, .verbose = LM_SILENT, .shuffle = LM_FALSE});
    if (!h) rc = fail_model("fit", m);
    lm_history_free(h);
    if (!rc && lm_save(m, argv[3])) rc = fail_model("save", m);
    for (int i = 0; i < nx; i++) lm_tensor_free(x[i]);
    lm_tensor_free(y);
    lm_model_free(m);
    return rc;
}

static int cmd_json(int argc, char **argv) {
    if (argc != 4) return fprintf(stderr, "usage: json CONFIG.json OUT.keras\n"), 2;
    lm_model *m = lm_model_from_json_file(argv[2]);
    if (!m) return fail_model("model_from_json", NULL);
    int rc = lm_save(m, argv[3]) ? fail_model("save", m) : 0;
    lm_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: interop_tool predict|train|build|json ...\n");
        return 2;
    }
    if (!strcmp(argv[1], "predict")) return cmd_predict(argc, argv);
    if (!strcmp(argv[1], "train")) return cmd_train(argc, argv);
    if (!strcmp(argv[1], "build")) return cmd_build(argc, argv);
    if (!strcmp(argv[1], "json")) return cmd_json(argc, argv);
    fprintf(stderr, "interop_tool: unknown command %s\n", argv[1]);
    return 2;
}
