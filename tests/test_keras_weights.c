/* Keras's HDF5 weights layout: files written by Keras load in Lamina and
 * predict what Keras predicts, with the optimizer state (one more training
 * step matches Keras's); Lamina's files have Keras's groups, names and
 * datasets and round-trip weights and optimizer state; legacy Keras 2 .h5
 * files load; every kind of damage (each byte flipped, every truncation,
 * wrong shapes, dtypes, links and counts) fails with a message and leaves
 * the model untouched.
 *
 * With --interop PYTHON SCRIPT (ctest interop_keras_weights), also the other
 * direction with a live Keras: tests/keras/interop_weights.py writes files
 * for every model, Lamina loads them and writes its own, and Keras loads
 * those (predictions, one optimizer step, layout). Exits 77 (skipped) when
 * PYTHON is empty. */
#include "io/keras_weights.h"
#include "lmtest.h"
#include "nn/train.h"
#include "refs.h"
#include <lamina/lamina.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#define TOL 1e-5

/* HDF5 1.10 leaks free-list blocks when an object header fails its checksum
 * (its deserialization error path); nothing Lamina holds or can free. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
    return "leak:libhdf5\n";
}

static char tmpdir[256];

/* ---- the models of tests/keras/interop_weights.py ---- */

static lm_model *build(const char *name) {
    lm_model *m = NULL;
    if (!strcmp(name, "func")) {
        m = lm_functional("func");
        lm_kt *x = lm_model_input(m, LM_SHAPE(6), "x");
        lm_layer *shrt = lm_dense(4, .name = "short"), *l1 = lm_dense(5, .name = "long1"),
                 *l2 = lm_dense(4, .name = "long2");
        lm_kt *s = lm_call(shrt, x);
        lm_kt *t = lm_call(l2, lm_call(l1, x));
        lm_kt *n =
            lm_call(lm_layer_normalization(), lm_call_n(lm_add_layer(), 2, (lm_kt *[]){t, s}));
        lm_kt *out = lm_call(lm_dense(2), lm_call_n(lm_concatenate(), 2, (lm_kt *[]){n, s}));
        lm_model_set_outputs(m, 1, &out);
        lm_compile(m, .optimizer = lm_adagrad(.learning_rate = 0.05), .loss = LM_MSE);
        return m;
    }
    m = lm_sequential(NULL);
    lm_optimizer *opt = NULL;
    if (!strcmp(name, "mlp")) {
        lm_add(m, lm_input(LM_SHAPE(4)));
        lm_add(m, lm_dense(5, .activation = LM_RELU));
        lm_add(m, lm_dense(3, .name = "out"));
        opt = lm_adam(.learning_rate = 0.01);
    } else if (!strcmp(name, "cnn")) {
        lm_add(m, lm_input(LM_SHAPE(6, 6, 2)));
        lm_add(m, lm_conv2d(3, LM_SIZE(3, 3), .activation = LM_RELU));
        lm_add(m, lm_max_pooling2d(LM_SIZE(2, 2)));
        lm_add(m, lm_batch_normalization());
        lm_add(m, lm_flatten());
        lm_add(m, lm_dense(2));
        opt = lm_rmsprop(.learning_rate = 0.01, .momentum = 0.5, .centered = true);
    } else if (!strcmp(name, "rnn")) {
        lm_add(m, lm_input(LM_SHAPE(5, 3)));
        lm_add(m, lm_bidirectional(lm_lstm(2, .return_sequences = true)));
        lm_add(m, lm_simple_rnn(3, .return_sequences = true));
        lm_add(m, lm_gru(3));
        lm_add(m, lm_dense(1));
        opt = lm_sgd(.learning_rate = 0.05, .momentum = 0.9);
    } else if (!strcmp(name, "emb")) {
        lm_add(m, lm_input(LM_SHAPE(5), .dtype = LM_I32));
        lm_add(m, lm_embedding(10, 3));
        lm_add(m, lm_conv1d(2, 2));
        lm_add(m, lm_max_pooling1d(2));
        lm_add(m, lm_global_average_pooling1d());
        lm_add(m, lm_dense(1));
        opt = lm_adam(.schedule = lm_exponential_decay(0.1, 10, 0.9, false), .amsgrad = true);
    } else if (!strcmp(name, "misc")) {
        lm_add(m, lm_input(LM_SHAPE(4, 4, 2)));
        lm_add(m, lm_zero_padding2d());
        lm_add(m, lm_average_pooling2d(LM_SIZE(2, 2)));
        lm_add(m, lm_conv2d(2, LM_SIZE(2, 2), .padding = LM_PAD_SAME));
        lm_add(m, lm_global_max_pooling2d());
        lm_add(m, lm_repeat_vector(3));
        lm_add(m, lm_permute(LM_SHAPE(2, 1)));
        lm_add(m, lm_reshape(LM_SHAPE(6)));
        lm_add(m, lm_dropout(0.5f));
        lm_add(m, lm_activation_layer(LM_TANH));
        lm_add(m, lm_dense(2));
        opt = lm_adamw(.learning_rate = 0.01);
    }
    lm_ctx_set_threads(lm_model_ctx(m), 1);
    lm_compile(m, .optimizer = opt, .loss = LM_MSE);
    CHECK_MSG(lm_model_status(m) == LM_OK, "%s: %s", name, lm_model_error(m));
    return m;
}

static bool has_step(const char *name) {
    return strcmp(name, "misc") != 0;
}

static lm_tensor *npy(lm_ctx *ctx, const char *dir, const char *model, const char *what) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s.%s.npy", dir, model, what);
    lm_tensor *t = lm_npy_load(ctx, p);
    CHECK_MSG(t != NULL, "%s: %s", p, lm_ctx_error(ctx));
    return t;
}

static lm_tensor *predict(lm_model *m, lm_tensor *x) {
    return lm_predict(m, x, .verbose = LM_SILENT);
}

/* Loads a Keras-written file into a fresh model: its predictions, and those
 * after one training step from the loaded optimizer state, match Keras's.
 * Returns the model (after the step). */
static lm_model *load_keras_file(const char *dir, const char *name, const char *file) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    lm_model *m = build(name);
    lm_status st = lm_load_weights(m, path);
    CHECK_MSG(st == LM_OK, "%s: %s", path, lm_ctx_error(lm_model_ctx(m)));
    if (st == LM_OK && strstr(file, ".h5") && !strstr(file, ".weights.h5") &&
        !strstr(file, "legacy_weights"))
        CHECK_STATUS(lm_h5_legacy_load_optimizer(m, path), LM_OK);
    return m;
}

static lm_model *check_keras_file(const char *dir, const char *name, const char *file, bool step) {
    lm_model *m = load_keras_file(dir, name, file);
    lm_ctx *ctx = lm_model_ctx(m);
    lm_tensor *x = npy(ctx, dir, name, "x"), *y = npy(ctx, dir, name, "y");
    lm_tensor *p = predict(m, x);
    double e = ref_max_rel_err(p, y);
    CHECK_MSG(e <= TOL, "%s: predictions differ from Keras's by %g", file, e);
    lm_tensor_free(p);
    if (step) {
        /* A model that has not predicted yet: see the note in the report on
         * sessions made before the first training step. */
        lm_model_free(m);
        m = load_keras_file(dir, name, file);
        ctx = lm_model_ctx(m);
        lm_tensor *bx = npy(ctx, dir, name, "bx"), *by = npy(ctx, dir, name, "by"),
                  *sy = npy(ctx, dir, name, "step_y");
        CHECK(lm_train_on_batch(m, bx, by, NULL, NULL, 0) >= 0);
        lm_tensor *xs = npy(ctx, dir, name, "x");
        p = predict(m, xs);
        e = ref_max_rel_err(p, sy);
        CHECK_MSG(e <= TOL, "%s: after one step from the saved optimizer state, %g from Keras",
                  file, e);
        fprintf(stderr, "%-22s predict and one step match Keras (max rel. err. %.2g)\n", file, e);
        lm_tensor_free(p);
        lm_tensor_free(xs);
        lm_tensor_free(bx);
        lm_tensor_free(by);
        lm_tensor_free(sy);
    }
    lm_tensor_free(x);
    lm_tensor_free(y);
    return m;
}

static const char *data_dir(void) {
    static char d[1024];
    snprintf(d, sizeof d, "%s/keras/weights", ref_dir());
    return d;
}

static void test_keras_written_files(void) {
    lm_model_free(check_keras_file(data_dir(), "mlp", "mlp.weights.h5", true));
    lm_model_free(check_keras_file(data_dir(), "rnn", "rnn.weights.h5", true));
    /* Keras 3's legacy model.save("x.h5"), with its optimizer_weights. */
    lm_model_free(check_keras_file(data_dir(), "mlp", "mlp.legacy.h5", true));
    char p[1024], *tc = NULL;
    snprintf(p, sizeof p, "%s/mlp.legacy.h5", data_dir());
    lm_ctx *ctx = lm_ctx_new();
    CHECK(lm_h5_is_legacy_model(p));
    char *cfg = lm_h5_legacy_model_config(ctx, p, &tc);
    CHECK_MSG(cfg && strstr(cfg, "\"class_name\": \"Sequential\""), "%s", lm_ctx_error(ctx));
    CHECK(tc && strstr(tc, "\"loss\": \"mse\""));
    free(cfg);
    free(tc);
    snprintf(p, sizeof p, "%s/mlp.weights.h5", data_dir());
    CHECK(!lm_h5_is_legacy_model(p));
    CHECK(lm_h5_legacy_model_config(ctx, p, NULL) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "no model_config attribute");
    lm_ctx_free(ctx);
}

/* ---- Lamina's files ---- */

static void snake(const char *in, const char *want) {
    char out[64];
    lm_keras_snake_case(in, out, sizeof out);
    CHECK_MSG(!strcmp(out, want), "%s -> %s, want %s", in, out, want);
}

static void test_names_and_order(void) {
    snake("Dense", "dense");
    snake("RMSprop", "rm_sprop");
    snake("AdamW", "adam_w");
    snake("SGD", "sgd");
    snake("SimpleRNN", "simple_rnn");
    snake("LSTM", "lstm");
    snake("Conv2D", "conv2d");
    snake("GlobalAveragePooling1D", "global_average_pooling1d");
    snake("ZeroPadding2D", "zero_padding2d");
    snake("BatchNormalization", "batch_normalization");
    snake("InputLayer", "input_layer");
    snake("HTTPServer2Go", "http_server2_go");
    /* Keras's map_graph order, not the order of creation or first call. */
    lm_model *m = build("func");
    lm_layer *ls[16];
    int in[16];
    int n = lm_keras_layer_order(m, ls, in, 16);
    const char *want[] = {"x",           "long1", "long2", "short", "add", "layer_normalization",
                          "concatenate", "dense"};
    CHECK(n == 8);
    for (int i = 0; i < n && i < 8; i++) {
        const char *got = ls[i] ? ls[i]->name : in[i] >= 0 ? "x" : "?";
        CHECK_MSG(!strcmp(got, want[i]), "layer %d is %s, Keras has %s", i, got, want[i]);
    }
    lm_model_free(m);
}

/* Reads a string attribute for the layout checks. */
static bool attr_is(hid_t f, const char *obj, const char *want) {
    hid_t a = H5Aopen_by_name(f, obj, "name", H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return false;
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    char *s = NULL;
    bool ok = H5Aread(a, t, &s) >= 0 && s && !strcmp(s, want);
    if (s) H5free_memory(s);
    H5Tclose(t);
    H5Aclose(a);
    return ok;
}

static int ds_rank(hid_t f, const char *path, hid_t *type_out) {
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t s = H5Dget_space(d);
    int r = H5Sget_simple_extent_ndims(s);
    if (type_out) *type_out = H5Dget_type(d);
    H5Sclose(s);
    H5Dclose(d);
    return r;
}

static lm_tensor *make_x(lm_model *m, int n, int d) {
    lm_tensor *x = lm_tensor_new(lm_model_ctx(m), LM_F32, LM_SHAPE(n, d));
    lm_tensor_random_normal(x, 0, 1);
    return x;
}

static float *all_weights(lm_model *m, int *n) {
    *n = 0;
    for (int i = 0; i < lm_model_weight_count(m); i++)
        *n += (int)lm_tensor_numel(lm_model_weight(m, i));
    float *w = malloc((size_t)(*n + 1) * sizeof *w), *p = w;
    for (int i = 0; i < lm_model_weight_count(m); i++) {
        lm_tensor *t = lm_model_weight(m, i);
        lm_tensor_copy_to(t, p, (size_t)lm_tensor_numel(t) * sizeof(float));
        p += lm_tensor_numel(t);
    }
    return w;
}

static bool same_state(lm_model *a, lm_model *b) {
    int na, nb;
    float *x = all_weights(a, &na), *y = all_weights(b, &nb);
    bool same = na == nb && !memcmp(x, y, (size_t)na * sizeof(float));
    free(x);
    free(y);
    lm_optimizer *oa = lm_model_optimizer(a), *ob = lm_model_optimizer(b);
    if (!oa || !ob) return same && !oa && !ob;
    same = same && oa->iterations == ob->iterations && (float)oa->lr == (float)ob->lr &&
           oa->n_slots == ob->n_slots && oa->n_params == ob->n_params;
    for (int k = 0; same && k < oa->n_slots; k++)
        same = !memcmp(oa->slot[k], ob->slot[k], (size_t)oa->n_params * sizeof(float));
    return same;
}

static void test_round_trip(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/rt.weights.h5", tmpdir);
    lm_model *a = build("mlp");
    lm_ctx_seed(lm_model_ctx(a), 3);
    lm_tensor *x = make_x(a, 16, 4), *y = make_x(a, 16, 3);
    lm_history_free(lm_fit(a, x, y, .epochs = 2, .batch_size = 8, .verbose = LM_SILENT));
    CHECK(lm_model_optimizer(a)->iterations == 4);
    CHECK_STATUS(lm_save_weights(a, path), LM_OK);
    lm_model *b = build("mlp");
    CHECK(!same_state(a, b));
    CHECK_MSG(lm_load_weights(b, path) == LM_OK, "%s", lm_ctx_error(lm_model_ctx(b)));
    CHECK(same_state(a, b)); /* optimizer built from the file before any fit */
    /* Training continues identically in both. */
    lm_history_free(
        lm_fit(a, x, y, .epochs = 1, .batch_size = 8, .verbose = LM_SILENT, .shuffle = LM_FALSE));
    lm_history_free(
        lm_fit(b, x, y, .epochs = 1, .batch_size = 8, .verbose = LM_SILENT, .shuffle = LM_FALSE));
    CHECK(same_state(a, b) && lm_model_optimizer(b)->iterations == 6);
    /* The layout Keras writes. */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0);
    CHECK(attr_is(f, "vars", "sequential"));
    CHECK(attr_is(f, "layers/dense/vars", "dense"));
    CHECK(attr_is(f, "layers/dense_1/vars", "out"));
    CHECK(attr_is(f, "optimizer/vars", "adam"));
    hid_t t = -1;
    CHECK(ds_rank(f, "layers/dense/vars/0", &t) == 2 && H5Tequal(t, H5T_IEEE_F32LE) > 0);
    H5Tclose(t);
    CHECK(ds_rank(f, "layers/dense_1/vars/1", NULL) == 1);
    CHECK(ds_rank(f, "optimizer/vars/0", &t) == 0 && H5Tget_class(t) == H5T_INTEGER);
    H5Tclose(t);
    CHECK(ds_rank(f, "optimizer/vars/1", NULL) == 0);
    CHECK(ds_rank(f, "optimizer/vars/9", NULL) == 1 && ds_rank(f, "optimizer/vars/10", NULL) < 0);
    CHECK(H5Lexists(f, "layers/dense/vars/2", H5P_DEFAULT) == 0);
    H5Fclose(f);
    /* The same model saved twice gives the same bytes. */
    char p2[512];
    snprintf(p2, sizeof p2, "%s/rt2.weights.h5", tmpdir);
    CHECK_STATUS(lm_save_weights(b, path), LM_OK);
    CHECK_STATUS(lm_save_weights(b, p2), LM_OK);
    void *d1, *d2;
    size_t n1, n2;
    lm_ctx *ctx = lm_model_ctx(b);
    CHECK_STATUS(lm_read_file_all(ctx, "t", path, 1 << 24, &d1, &n1), LM_OK);
    CHECK_STATUS(lm_read_file_all(ctx, "t", p2, 1 << 24, &d2, &n2), LM_OK);
    CHECK(n1 == n2 && !memcmp(d1, d2, n1));
    /* In-memory images (model.weights.h5 of a .keras archive). */
    void *img;
    size_t len;
    CHECK_STATUS(lm_h5_model_weights_image(a, true, &img, &len), LM_OK);
    lm_model *c = build("mlp");
    CHECK_STATUS(lm_h5_load_model_weights_image(c, img, len, true), LM_OK);
    CHECK(same_state(a, c));
    /* Without the optimizer: the weights only. */
    lm_model *w = build("mlp");
    CHECK_STATUS(lm_h5_load_model_weights_image(w, img, len, false), LM_OK);
    CHECK(lm_model_optimizer(w)->iterations == 0 && !lm_model_optimizer(w)->offsets);
    free(img);
    free(d1);
    free(d2);
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_model *ms[] = {a, b, c, w};
    for (int i = 0; i < 4; i++) lm_model_free(ms[i]);
}

/* Every model: Lamina's file round-trips into a fresh model; untrained and
 * uncompiled models write what Keras writes for them. */
static void test_all_models(void) {
    const char *names[] = {"mlp", "cnn", "rnn", "emb", "func", "misc"};
    for (int i = 0; i < 6; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.weights.h5", tmpdir, names[i]);
        lm_model *a = build(names[i]), *b = build(names[i]);
        CHECK_MSG(lm_save_weights(a, path) == LM_OK, "%s", lm_ctx_error(lm_model_ctx(a)));
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        /* Unbuilt optimizer: iterations and learning rate only (none with a schedule). */
        bool sched = !strcmp(names[i], "emb");
        CHECK(f >= 0 &&
              H5Lexists(f, sched ? "optimizer/vars/0" : "optimizer/vars/1", H5P_DEFAULT) > 0 &&
              H5Lexists(f, sched ? "optimizer/vars/1" : "optimizer/vars/2", H5P_DEFAULT) == 0);
        if (f >= 0) H5Fclose(f);
        CHECK_MSG(lm_load_weights(b, path) == LM_OK, "%s: %s", names[i],
                  lm_ctx_error(lm_model_ctx(b)));
        CHECK_MSG(same_state(a, b), "%s", names[i]);
        lm_model_free(a);
        lm_model_free(b);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/rnn.weights.h5", tmpdir);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(attr_is(f, "layers/bidirectional/vars", "bidirectional"));
    CHECK(attr_is(f, "layers/bidirectional/forward_layer/vars", "forward_lstm"));
    CHECK(attr_is(f, "layers/bidirectional/backward_layer/cell/vars", "lstm_cell"));
    CHECK(ds_rank(f, "layers/bidirectional/backward_layer/cell/vars/2", NULL) == 1);
    CHECK(attr_is(f, "layers/gru/cell/vars", "gru_cell"));
    CHECK(attr_is(f, "layers/simple_rnn/vars", "simple_rnn"));
    CHECK(attr_is(f, "optimizer/vars", "sgd"));
    H5Fclose(f);
    snprintf(path, sizeof path, "%s/func.weights.h5", tmpdir);
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(attr_is(f, "layers/input_layer/vars", "x"));
    CHECK(attr_is(f, "layers/dense/vars", "long1") && attr_is(f, "layers/dense_2/vars", "short"));
    CHECK(attr_is(f, "optimizer/vars", "adagrad"));
    H5Fclose(f);
    /* An uncompiled model has no optimizer group. */
    lm_model *m = lm_sequential("plain");
    lm_add(m, lm_input(LM_SHAPE(3)));
    lm_add(m, lm_dense(2));
    snprintf(path, sizeof path, "%s/plain.weights.h5", tmpdir);
    CHECK_STATUS(lm_save_weights(m, path), LM_OK);
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(H5Lexists(f, "optimizer", H5P_DEFAULT) == 0 && attr_is(f, "vars", "plain"));
    H5Fclose(f);
    lm_model_free(m);
}

/* Weights stay as they were when loading fails; the message contains want. */
static void load_fails(lm_model *m, const char *path, const char *want) {
    int n1, n2;
    float *before = all_weights(m, &n1);
    CHECK_MSG(lm_load_weights(m, path) != LM_OK, "%s loaded", path);
    CHECK_CONTAINS(lm_ctx_error(lm_model_ctx(m)), want);
    float *after = all_weights(m, &n2);
    CHECK(n1 == n2 && !memcmp(before, after, (size_t)n1 * sizeof(float)));
    free(before);
    free(after);
}

static void test_optimizer_mismatch(void) {
    char p[1024];
    snprintf(p, sizeof p, "%s/mlp.weights.h5", data_dir());
    /* Another optimizer: the weights load, the optimizer stays fresh (Keras warns). */
    lm_model *m = lm_sequential(NULL);
    lm_add(m, lm_input(LM_SHAPE(4)));
    lm_add(m, lm_dense(5, .activation = LM_RELU));
    lm_add(m, lm_dense(3, .name = "out"));
    lm_compile(m, .optimizer = lm_sgd(.momentum = 0.5), .loss = LM_MSE);
    lm_tensor *x = lm_tensor_new(lm_model_ctx(m), LM_F32, LM_SHAPE(2, 4));
    lm_tensor_fill(x, 0.5);
    lm_tensor_free(predict(m, x));
    CHECK_MSG(lm_load_weights(m, p) == LM_OK, "%s", lm_ctx_error(lm_model_ctx(m)));
    CHECK(lm_model_optimizer(m)->iterations == 0);
    lm_h5_io_opts o = {.who = "t", .optimizer = true, .strict_optimizer = true};
    CHECK(lm_h5_load_weights_file(m, p, &o) == LM_ERR_STATE);
    CHECK_CONTAINS(lm_ctx_error(lm_model_ctx(m)),
                   "the optimizer state was saved by optimizer 'adam', not by sequential's sgd");
    /* An uncompiled model ignores the optimizer group. */
    lm_model *u = lm_sequential(NULL);
    lm_add(u, lm_input(LM_SHAPE(4)));
    lm_add(u, lm_dense(5, .activation = LM_RELU));
    lm_add(u, lm_dense(3, .name = "out"));
    CHECK_STATUS(lm_load_weights(u, p), LM_OK);
    lm_tensor_free(x);
    lm_model_free(m);
    lm_model_free(u);
}

/* ---- damage ---- */

static unsigned char *slurp(const char *path, size_t *n) {
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n ? *n : 1);
    if (fread(b, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return b;
}

static void spit(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

static lm_model *small_mlp(int hidden) {
    lm_model *m = lm_sequential(NULL);
    lm_ctx_set_threads(lm_model_ctx(m), 1);
    lm_add(m, lm_input(LM_SHAPE(3)));
    lm_add(m, lm_dense(hidden, .activation = LM_RELU));
    lm_add(m, lm_dense(2, .name = "out"));
    lm_compile(m, .optimizer = lm_adam(), .loss = LM_MSE);
    return m;
}

static void test_damaged_bytes(void) {
    char path[512], bad[512];
    snprintf(path, sizeof path, "%s/d.weights.h5", tmpdir);
    snprintf(bad, sizeof bad, "%s/bad.weights.h5", tmpdir);
    lm_model *a = small_mlp(2), *b = small_mlp(2);
    lm_ctx_seed(lm_model_ctx(b), 9);
    lm_tensor *x = make_x(a, 4, 3), *y = make_x(a, 4, 2);
    lm_train_on_batch(a, x, y, NULL, NULL, 0); /* optimizer state in the file */
    CHECK_STATUS(lm_save_weights(a, path), LM_OK);
    int nw;
    float *good = all_weights(a, &nw), *orig = all_weights(b, &nw);
    size_t n;
    unsigned char *f = slurp(path, &n);
    CHECK(f && n > 0);
    /* Each byte flipped: refused with a message and b untouched, or loaded
     * with exactly the saved values and optimizer state (a byte HDF5 does
     * not use). Never other values. */
    int caught = 0, harmless = 0;
    for (size_t i = 0; f && i < n; i++) {
        f[i] ^= (unsigned char)(1u << (i % 8));
        spit(bad, f, n);
        f[i] ^= (unsigned char)(1u << (i % 8));
        lm_status st = lm_load_weights(b, bad);
        float *now = all_weights(b, &nw);
        if (st) {
            caught++;
            CHECK_MSG(!memcmp(now, orig, (size_t)nw * sizeof(float)), "byte %zu: changed", i);
            CHECK_MSG(lm_ctx_error(lm_model_ctx(b))[0], "byte %zu: no message", i);
            CHECK_MSG(lm_model_optimizer(b)->iterations == 0, "byte %zu: optimizer changed", i);
        } else {
            harmless++;
            CHECK_MSG(!memcmp(now, good, (size_t)nw * sizeof(float)) && same_state(a, b),
                      "byte %zu: loaded different values", i);
            lm_model_free(b); /* a fresh one for the next bytes */
            b = small_mlp(2);
            lm_ctx_seed(lm_model_ctx(b), 9);
            free(orig);
            orig = all_weights(b, &nw);
        }
        free(now);
    }
    fprintf(stderr, "flipped bytes: %d refused, %d unused by HDF5 (weights intact), of %zu\n",
            caught, harmless, n);
    /* Only the global heap of the name attributes (one 4 KB collection),
     * which loading never reads, can change unnoticed. */
    CHECK_MSG(harmless <= 4096, "%d flipped bytes went unnoticed", harmless);
    /* Truncations fail: every length up to 2 KB (the superblock and first
     * headers), then every 7th. */
    int tried = 0;
    caught = 0;
    for (size_t k = 0; f && k < n; k += k < 2048 ? 1 : 7, tried++) {
        spit(bad, f, k);
        caught += lm_load_weights(b, bad) != LM_OK;
    }
    CHECK_MSG(caught == tried, "%d of %d truncations refused", caught, tried);
    spit(bad, f, 5);
    load_fails(b, bad, "is not an HDF5 file (5 bytes, no HDF5 signature)");
    spit(bad, "not hdf5 at all, just text", 26);
    load_fails(b, bad, "no HDF5 signature");
    spit(bad, f, n / 2);
    load_fails(b, bad, "bad.weights.h5");
    load_fails(b, "/nonexistent/w.weights.h5", "cannot open /nonexistent/w.weights.h5");
    char dir[600];
    snprintf(dir, sizeof dir, "%s/dir.weights.h5", tmpdir);
    mkdir(dir, 0755);
    load_fails(b, dir, "is not a regular file");
    free(f);
    free(good);
    free(orig);
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_model_free(a);
    lm_model_free(b);
}

/* Rewrites one dataset of a copy of src with fn(file, path). */
typedef void (*edit_fn)(hid_t f, const char *path);

static void edit_copy(const char *src, const char *dst, const char *path, edit_fn fn) {
    size_t n;
    unsigned char *b = slurp(src, &n);
    spit(dst, b, n);
    free(b);
    hid_t f = H5Fopen(dst, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(f >= 0);
    fn(f, path);
    H5Fclose(f);
}

static void put(hid_t f, const char *path, hid_t type, int rank, const hsize_t *dims) {
    H5Ldelete(f, path, H5P_DEFAULT);
    hid_t s = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (rank && dims[0] > 1000) { /* a huge extent, never written */
        hsize_t chunk[2] = {1, 1};
        H5Pset_chunk(dcpl, rank, chunk);
    }
    hid_t d = H5Dcreate2(f, path, type, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(s);
}

static void e_int(hid_t f, const char *p) {
    put(f, p, H5T_STD_I32LE, 2, (hsize_t[]){3, 4});
}
static void e_str(hid_t f, const char *p) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 8);
    put(f, p, t, 2, (hsize_t[]){3, 4});
    H5Tclose(t);
}
static void e_shape(hid_t f, const char *p) {
    put(f, p, H5T_IEEE_F32LE, 2, (hsize_t[]){4, 3});
}
static void e_rank(hid_t f, const char *p) {
    put(f, p, H5T_IEEE_F32LE, 3, (hsize_t[]){3, 4, 1});
}
static void e_huge(hid_t f, const char *p) {
    put(f, p, H5T_IEEE_F32LE, 2, (hsize_t[]){(hsize_t)1 << 40, 4});
}
static void e_scalar(hid_t f, const char *p) {
    put(f, p, H5T_IEEE_F32LE, 0, NULL);
}
static void e_delete(hid_t f, const char *p) {
    H5Ldelete(f, p, H5P_DEFAULT);
}
static void e_extra(hid_t f, const char *p) {
    put(f, p, H5T_IEEE_F32LE, 1, (hsize_t[]){4});
}
static void e_soft(hid_t f, const char *p) {
    H5Ldelete(f, p, H5P_DEFAULT);
    H5Lcreate_soft("/layers/dense_1/vars/0", f, p, H5P_DEFAULT, H5P_DEFAULT);
}
static void e_external(hid_t f, const char *p) {
    H5Ldelete(f, p, H5P_DEFAULT);
    H5Lcreate_external("/etc/passwd", "/x", f, p, H5P_DEFAULT, H5P_DEFAULT);
}
static void e_group(hid_t f, const char *p) {
    H5Ldelete(f, p, H5P_DEFAULT);
    H5Gclose(H5Gcreate2(f, p, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
}
static void e_neg_iter(hid_t f, const char *p) {
    put(f, p, H5T_STD_I64LE, 0, NULL);
    hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
    int64_t v = -3;
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v);
    H5Dclose(d);
}
static void e_nan_lr(hid_t f, const char *p) {
    put(f, p, H5T_IEEE_F32LE, 0, NULL);
    hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
    float v = NAN;
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v);
    H5Dclose(d);
}
static void e_values(hid_t f, const char *p) { /* new values, stale checksum */
    hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
    float v[12] = {1, 2, 3};
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
}

static void test_crafted_files(void) {
    char src[512], dst[512];
    snprintf(src, sizeof src, "%s/c.weights.h5", tmpdir);
    snprintf(dst, sizeof dst, "%s/crafted.weights.h5", tmpdir);
    lm_model *a = small_mlp(4), *b = small_mlp(4);
    lm_tensor *x = make_x(a, 4, 3), *y = make_x(a, 4, 2);
    lm_train_on_batch(a, x, y, NULL, NULL, 0);
    CHECK_STATUS(lm_save_weights(a, src), LM_OK);
    lm_train_on_batch(b, x, y, NULL, NULL, 0);
    static const struct {
        const char *path;
        edit_fn fn;
        const char *want;
    } cases[] = {
        {"layers/dense/vars/0", e_int,
         "holds integer data of 4 bytes; weight kernel of layer "
         "'dense' (Dense) needs floating-point values"},
        {"layers/dense/vars/0", e_str, "holds string data"},
        {"layers/dense/vars/0", e_shape,
         "layers/dense/vars/0 has shape (4, 3) but weight kernel of layer 'dense' (Dense) has "
         "shape (3, 4)"},
        {"layers/dense/vars/0", e_rank, "has shape (3, 4, 1) but weight kernel"},
        {"layers/dense/vars/0", e_huge, "has shape (1099511627776, 4) but weight kernel"},
        {"layers/dense/vars/1", e_scalar, "has shape () but weight bias"},
        {"layers/dense/vars/1", e_delete,
         "layer 'dense' (Dense) expected 2 variables, but received 1 variables during loading "
         "(group layers/dense/vars). Expected: ['kernel', 'bias']"},
        {"layers/dense_1/vars", e_delete, "(group layers/dense_1/vars is missing)"},
        {"layers/dense/vars/2", e_extra, "expected 2 variables, but received 3"},
        {"layers/dense/vars/0", e_soft, "layers/dense/vars/0 is a soft or external link"},
        {"layers/dense/vars/0", e_external,
         "uses HDF5 features Keras files never use (external links, shared messages, filters), "
         "in the object header of layers/dense/vars"},
        {"layers/dense/vars/0", e_group, "layers/dense/vars/0 is a group, not a dataset"},
        {"layers/dense/vars/0", e_values,
         "the file is corrupt: the data of layers/dense/vars/0 has CRC-32"},
        {"optimizer/vars/0", e_neg_iter, "optimizer/vars/0 holds a negative iteration count"},
        {"optimizer/vars/1", e_nan_lr, "optimizer/vars/1 holds an invalid learning rate nan"},
        {"optimizer/vars/3", e_shape, "optimizer/vars/3 has shape (4, 3) but adam's slot 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        edit_copy(src, dst, cases[i].path, cases[i].fn);
        int64_t it = lm_model_optimizer(b)->iterations;
        load_fails(b, dst, cases[i].want);
        CHECK(lm_model_optimizer(b)->iterations == it);
    }
    /* A model of other shapes: the message names the layer and both shapes. */
    lm_model *wide = small_mlp(5);
    load_fails(wide, src,
               "has shape (3, 4) but weight kernel of layer 'dense' (Dense) has "
               "shape (3, 5)");
    /* Unbuilt models, bad paths, extensions. */
    lm_model *unbuilt = lm_sequential("u");
    lm_add(unbuilt, lm_dense(2));
    CHECK(lm_load_weights(unbuilt, src) == LM_ERR_STATE);
    CHECK_CONTAINS(lm_ctx_error(lm_model_ctx(unbuilt)), "model u has not been built yet");
    CHECK(lm_save_weights(unbuilt, dst) == LM_ERR_STATE);
    CHECK(lm_save_weights(a, "/tmp/x.h5") == LM_ERR_ARG);
    CHECK_CONTAINS(lm_ctx_error(lm_model_ctx(a)),
                   "the filename must end in `.weights.h5`. Received: filepath=/tmp/x.h5");
    CHECK(lm_load_weights(a, "/tmp/x.bin") == LM_ERR_ARG);
    CHECK_CONTAINS(lm_ctx_error(lm_model_ctx(a)), "File format not supported: filepath=/tmp/x.bin");
    CHECK(lm_save_weights(a, "/nonexistent/w.weights.h5") == LM_ERR_IO);
    CHECK_CONTAINS(lm_ctx_error(lm_model_ctx(a)),
                   "cannot create a temporary file next to /nonexistent/w.weights.h5");
    CHECK(lm_save_weights(NULL, src) == LM_ERR_ARG && lm_load_weights(NULL, src) == LM_ERR_ARG);
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_model *ms[] = {a, b, wide, unbuilt};
    for (int i = 0; i < 4; i++) lm_model_free(ms[i]);
}

/* ---- .keras archives and legacy layouts ---- */

static void test_keras_archive(void) {
    char path[512], h5[512];
    snprintf(path, sizeof path, "%s/m.keras", tmpdir);
    snprintf(h5, sizeof h5, "%s/mlp.weights.h5", data_dir());
    size_t n = 0;
    unsigned char *img = slurp(h5, &n);
    int err;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    zip_source_t *s = zip_source_buffer(z, img, n, 0);
    zip_file_add(z, "model.weights.h5", s, 0);
    zip_source_t *c = zip_source_buffer(z, "{}", 2, 0);
    zip_file_add(z, "config.json", c, 0);
    CHECK(zip_close(z) == 0);
    lm_model *m = build("mlp");
    CHECK_MSG(lm_load_weights(m, path) == LM_OK, "%s", lm_ctx_error(lm_model_ctx(m)));
    CHECK(lm_model_optimizer(m)->iterations == 2);
    lm_model_free(m);
    /* An archive without weights, and a file that is no archive. */
    z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    zip_file_add(z, "config.json", zip_source_buffer(z, "{}", 2, 0), 0);
    zip_close(z);
    m = build("mlp");
    load_fails(m, path, "holds no model.weights.h5");
    spit(path, img, n);
    load_fails(m, path, "cannot open");
    lm_model_free(m);
    free(img);
}

static void test_legacy_errors(void) {
    char p[1024];
    /* A legacy file into a model with a layer too many. */
    snprintf(p, sizeof p, "%s/mlp.legacy.h5", data_dir());
    lm_model *m = lm_sequential(NULL);
    lm_add(m, lm_input(LM_SHAPE(4)));
    lm_add(m, lm_dense(5));
    lm_add(m, lm_dense(3));
    lm_add(m, lm_dense(3));
    load_fails(m, p,
               "Layer count mismatch when loading weights from file. Model expected 3 "
               "layers, found 2 saved layers.");
    lm_model *w = lm_sequential(NULL);
    lm_add(w, lm_input(LM_SHAPE(4)));
    lm_add(w, lm_dense(6));
    lm_add(w, lm_dense(3));
    load_fails(w, p,
               "has shape (4, 5) but weight kernel of layer 'dense' (Dense) has shape (4, 6)");
    lm_model *nb = lm_sequential(NULL);
    lm_add(nb, lm_input(LM_SHAPE(4)));
    lm_add(nb, lm_dense(5, .use_bias = LM_FALSE));
    lm_add(nb, lm_dense(3));
    load_fails(nb, p,
               "Weight count mismatch for layer #0 (named dense in the current model, "
               "dense in the save file). Layer expects 1 weight(s). Received 2 saved "
               "weight(s)");
    /* A Keras 3 file is not a legacy one. */
    snprintf(p, sizeof p, "%s/mlp.weights.h5", data_dir());
    char q[600];
    snprintf(q, sizeof q, "%s/k3.h5", tmpdir);
    size_t n = 0;
    unsigned char *b = slurp(p, &n);
    spit(q, b, n);
    free(b);
    load_fails(nb, q, "holds neither layer_names nor a model_weights group");
    lm_model_free(m);
    lm_model_free(w);
    lm_model_free(nb);
}

/* ---- inputs the fuzzer found (fuzz/regressions/h5_weights) ---- */

/* Each goes through every reader without crashing (the sanitizer builds
 * check memory), and every refusal comes with a message. */
static void test_fuzz_regressions(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/../../fuzz/regressions/h5_weights", ref_dir());
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "no %s: skipped\n", dir);
        return;
    }
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        size_t len = 0;
        unsigned char *b = slurp(p, &len);
        lm_model *m = build("mlp");
        lm_ctx *ctx = lm_model_ctx(m);
        lm_h5_io_opts o = {.who = "t", .src = de->d_name, .optimizer = true};
        if (lm_h5_load_model_weights_image_ex(m, b, len, &o))
            CHECK_MSG(lm_ctx_error(ctx)[0], "%s: no message", de->d_name);
        o.strict_optimizer = true;
        lm_h5_load_model_weights_image_ex(m, b, len, &o);
        if (lm_h5_legacy_load_weights(m, p)) CHECK_MSG(lm_ctx_error(ctx)[0], "%s", de->d_name);
        lm_h5_legacy_load_optimizer(m, p);
        char *tc = NULL, *cfg = lm_h5_legacy_model_config(ctx, p, &tc);
        free(cfg);
        free(tc);
        (void)lm_h5_is_legacy_model(p);
        lm_model_free(m);
        free(b);
        n++;
    }
    closedir(d);
    fprintf(stderr, "%d fuzzer-found inputs refused or read safely\n", n);
    CHECK(n > 0);
}

/* ---- interop with a live Keras ---- */

static int run(const char *py, const char *script, const char *mode, const char *dir) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "KERAS_BACKEND=jax '%s' '%s' %s '%s' 2>&1", py, script, mode, dir);
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[1024];
    while (fgets(line, sizeof line, p))
        if (!strstr(line, "WARNING") && !strstr(line, "absl")) fputs(line, stderr);
    return pclose(p);
}

static void interop(const char *py, const char *script) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/interop", tmpdir);
    mkdir(dir, 0755);
    CHECK_MSG(run(py, script, "generate", dir) == 0, "Keras could not write the files");
    const char *names[] = {"mlp", "cnn", "rnn", "emb", "func", "misc"};
    for (int i = 0; i < 6; i++) {
        char file[64], p[1024];
        snprintf(file, sizeof file, "%s.weights.h5", names[i]);
        lm_model *m = check_keras_file(dir, names[i], file, has_step(names[i]));
        /* Lamina's state after that step, for Keras to load and continue. */
        lm_ctx *ctx = lm_model_ctx(m);
        snprintf(p, sizeof p, "%s/%s.lamina.weights.h5", dir, names[i]);
        CHECK_MSG(lm_save_weights(m, p) == LM_OK, "%s", lm_ctx_error(ctx));
        lm_tensor *x = npy(ctx, dir, names[i], "x");
        lm_tensor *y = predict(m, x);
        snprintf(p, sizeof p, "%s/%s.lamina_y.npy", dir, names[i]);
        CHECK_STATUS(lm_npy_save(y, p), LM_OK);
        lm_tensor_free(y);
        if (has_step(names[i])) {
            lm_tensor *bx = npy(ctx, dir, names[i], "bx"), *by = npy(ctx, dir, names[i], "by");
            CHECK(lm_train_on_batch(m, bx, by, NULL, NULL, 0) >= 0);
            y = predict(m, x);
            snprintf(p, sizeof p, "%s/%s.lamina_step_y.npy", dir, names[i]);
            CHECK_STATUS(lm_npy_save(y, p), LM_OK);
            lm_tensor_free(y);
            lm_tensor_free(bx);
            lm_tensor_free(by);
        }
        lm_tensor_free(x);
        lm_model_free(m);
    }
    /* Legacy files: Keras 3's model.save("x.h5"), save_weights layout, Keras 2. */
    lm_model_free(check_keras_file(dir, "rnn", "rnn.legacy.h5", true));
    lm_model_free(check_keras_file(dir, "mlp", "mlp.legacy_weights.h5", false));
    lm_model *k2 = check_keras_file(dir, "mlp", "mlp.keras2.h5", false);
    /* tf.keras 2's Adam state has no learning_rate: refused with Keras's warning. */
    CHECK(lm_model_optimizer(k2)->iterations == 0);
    lm_model_free(k2);
    CHECK_MSG(run(py, script, "check", dir) == 0, "Keras refused Lamina's files");
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "--interop")) {
        if (argc < 4 || !argv[2][0]) {
            fprintf(stderr, "interop_keras_weights: skipped (LAMINA_KERAS_PYTHON is not set)\n");
            return 77;
        }
        snprintf(tmpdir, sizeof tmpdir, "/tmp/lm_test_kw_interop_XXXXXX");
        if (!mkdtemp(tmpdir)) return 1;
        RUN(test_names_and_order);
        interop(argv[2], argv[3]);
    } else {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/lm_test_kw_XXXXXX");
        if (!mkdtemp(tmpdir)) return 1;
        RUN(test_names_and_order);
        RUN(test_keras_written_files);
        RUN(test_round_trip);
        RUN(test_all_models);
        RUN(test_optimizer_mismatch);
        RUN(test_damaged_bytes);
        RUN(test_crafted_files);
        RUN(test_keras_archive);
        RUN(test_legacy_errors);
        RUN(test_fuzz_regressions);
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmpdir);
    return lmt_summary(argc >= 2 ? "interop_keras_weights" : "test_keras_weights");
}
