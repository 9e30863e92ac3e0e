/* .keras files (lm_save / lm_load): round trips that predict and train on
 * identically, the archive Keras lays out, Keras-written files (predictions
 * and a resumed training run against Keras's numbers, from
 * tests/keras/ref_files.py), damaged and crafted archives refused with a
 * message, and a save killed midway leaving the previous file whole. */
#include "lmtest.h"
#include "refs.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <lamina/callbacks.h>
#include <lamina/model.h>
#include <lamina/saving.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

static char tmpdir[256];

static const char *tmp(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static lm_tensor *pattern(lm_ctx *ctx, lm_shape s, int seed) {
    lm_tensor *t = lm_tensor_new(ctx, LM_F32, s);
    for (int64_t i = 0; t && i < lm_tensor_numel(t); i++) {
        uint32_t h = (uint32_t)(i * 2654435761u + (uint32_t)seed * 97u);
        h ^= h >> 15;
        h *= 0x2c1b3c6dU;
        h ^= h >> 12;
        lm_tensor_set(t, i, (double)(h % 2000u) / 1000.0 - 1.0);
    }
    return t;
}

static lm_model *small_model(void) {
    lm_model *m = lm_sequential("small");
    lm_ctx_set_threads(lm_model_ctx(m), 1);
    lm_add(m, lm_input(LM_SHAPE(5)));
    lm_add(m, lm_dense(8, .activation = LM_RELU));
    lm_add(m, lm_batch_normalization());
    lm_add(m, lm_dense(3));
    return m;
}

static double max_weight_diff(lm_model *a, lm_model *b) {
    int n = lm_model_weight_count(a);
    if (n != lm_model_weight_count(b)) return INFINITY;
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double e = ref_max_rel_err(lm_model_weight(a, i), lm_model_weight(b, i));
        if (!(e <= worst)) worst = e;
    }
    return worst;
}

static void train_steps(lm_model *m, lm_tensor *x, lm_tensor *y, int steps) {
    for (int s = 0; s < steps; s++) {
        double out[8];
        CHECK_MSG(lm_train_on_batch(m, x, y, NULL, out, 8) >= 1, "%s", lm_model_error(m));
    }
}

static void test_round_trip(void) {
    lm_model *m = small_model();
    lm_compile(m, .optimizer = lm_adam(.learning_rate = 0.01), .loss = LM_MSE,
               .metrics = LM_METRICS(LM_METRIC_MAE));
    lm_tensor *x = pattern(lm_model_ctx(m), LM_SHAPE(16, 5), 1),
              *y = pattern(lm_model_ctx(m), LM_SHAPE(16, 3), 2);
    train_steps(m, x, y, 4);
    CHECK_STATUS(lm_save(m, tmp("a.keras")), LM_OK);
    lm_model *b = lm_load(tmp("a.keras"));
    CHECK_MSG(b != NULL, "%s", lm_saving_error());
    if (!b) return;
    CHECK(!strcmp(lm_model_name(b), "small"));
    CHECK(lm_model_optimizer(b) && lm_optimizer_iterations(lm_model_optimizer(b)) == 4);
    CHECK(!strcmp(lm_optimizer_name(lm_model_optimizer(b)), "adam"));
    lm_tensor *pa = lm_predict(m, x, .verbose = LM_SILENT),
              *pb = lm_predict(b, x, .verbose = LM_SILENT);
    CHECK(ref_max_rel_err(pb, pa) == 0);
    /* Training resumes where it stopped: the same steps give the same weights. */
    train_steps(m, x, y, 3);
    train_steps(b, x, y, 3);
    double e = max_weight_diff(b, m);
    CHECK_MSG(e <= 1e-6, "weights after resuming differ by %g", e);
    double ra[4], rb[4];
    CHECK(lm_evaluate(m, x, y, ra, 4, .verbose = LM_SILENT) == 2);
    CHECK(lm_evaluate(b, x, y, rb, 4, .verbose = LM_SILENT) == 2);
    CHECK_NEAR(rb[0], ra[0], 1e-6);
    CHECK(!strcmp(lm_model_metric_name(b, 1), "mae"));
    lm_tensor_free(pa);
    lm_tensor_free(pb);
    lm_model_free(b);

    /* The archive as Keras lays it out. */
    int err = 0;
    zip_t *z = zip_open(tmp("a.keras"), ZIP_RDONLY, &err);
    CHECK(z != NULL);
    if (z) {
        CHECK(zip_get_num_entries(z, 0) == 3);
        CHECK(!strcmp(zip_get_name(z, 0, 0), "metadata.json"));
        CHECK(!strcmp(zip_get_name(z, 1, 0), "config.json"));
        CHECK(!strcmp(zip_get_name(z, 2, 0), "model.weights.h5"));
        zip_stat_t zs;
        for (int i = 0; i < 3; i++)
            CHECK(!zip_stat_index(z, (zip_uint64_t)i, 0, &zs) && zs.comp_method == ZIP_CM_STORE);
        char meta[256] = {0};
        zip_file_t *f = zip_fopen(z, "metadata.json", 0);
        CHECK(f && zip_fread(f, meta, sizeof meta - 1) > 0);
        if (f) zip_fclose(f);
        CHECK_CONTAINS(meta, "\"keras_version\":\"3.");
        CHECK_CONTAINS(meta, "\"date_saved\":\"20");
        zip_close(z);
    }
    /* An unbuilt model and a bad path are refused with messages. */
    lm_model *u = lm_sequential(NULL);
    lm_add(u, lm_dense(2));
    CHECK(lm_save(u, tmp("u.keras")) == LM_ERR_STATE);
    CHECK_CONTAINS(lm_model_error(u), "not built");
    lm_model_free(u);
    CHECK(lm_save(m, "/nonexistent-dir/a.keras") == LM_ERR_IO);
    CHECK_CONTAINS(lm_model_error(m), "/nonexistent-dir/a.keras");
    CHECK(lm_save(NULL, "x") == LM_ERR_ARG);
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_model_free(m);
}

static void test_functional_round_trip(void) {
    lm_model *m = lm_functional("two_in");
    lm_ctx_set_threads(lm_model_ctx(m), 1);
    lm_kt *a = lm_model_input(m, LM_SHAPE(4, 3), "a"), *b = lm_model_input(m, LM_SHAPE(2), "b");
    lm_kt *st[2];
    CHECK(lm_call_multi(lm_gru(2, .return_state = true), 1, &a, 2, st) == 2);
    lm_layer *shared = lm_dense(2, .name = "shared");
    lm_kt *s1 = lm_call(shared, b), *s2 = lm_call(shared, st[1]);
    lm_kt *o = lm_call(lm_dense(1, .name = "out"),
                       lm_call_n(lm_concatenate(), 3, (lm_kt *[]){st[0], s1, s2}));
    lm_model_set_outputs(m, 1, &o);
    lm_compile(m, .optimizer = lm_rmsprop(.momentum = 0.5, .centered = true), .loss = LM_MAE);
    lm_tensor *x[2] = {pattern(lm_model_ctx(m), LM_SHAPE(6, 4, 3), 3),
                       pattern(lm_model_ctx(m), LM_SHAPE(6, 2), 4)};
    lm_tensor *y = pattern(lm_model_ctx(m), LM_SHAPE(6, 1), 5);
    lm_history *h = lm_fit_multi(
        m, 2, x, 1, &y,
        (lm_fit_opts){.epochs = 2, .batch_size = 3, .verbose = LM_SILENT, .shuffle = LM_FALSE});
    lm_history_free(h);
    CHECK_STATUS(lm_save(m, tmp("f.keras")), LM_OK);
    lm_model *c = lm_load(tmp("f.keras"));
    CHECK_MSG(c != NULL, "%s", lm_saving_error());
    if (c) {
        lm_tensor *pa[1] = {NULL}, *pc[1] = {NULL};
        lm_predict_multi(m, 2, x, 1, pa, (lm_predict_opts){.verbose = LM_SILENT});
        lm_predict_multi(c, 2, x, 1, pc, (lm_predict_opts){.verbose = LM_SILENT});
        CHECK(ref_max_rel_err(pc[0], pa[0]) == 0);
        CHECK(lm_optimizer_iterations(lm_model_optimizer(c)) == 4);
        lm_tensor_free(pa[0]);
        lm_tensor_free(pc[0]);
        for (int i = 0; i < 2; i++) {
            h = lm_fit_multi(
                i ? c : m, 2, x, 1, &y,
                (lm_fit_opts){
                    .epochs = 1, .batch_size = 3, .verbose = LM_SILENT, .shuffle = LM_FALSE});
            lm_history_free(h);
        }
        double e = max_weight_diff(c, m);
        CHECK_MSG(e <= 1e-6, "functional weights after resuming differ by %g", e);
    }
    lm_model_free(c);
    lm_tensor_free(x[0]);
    lm_tensor_free(x[1]);
    lm_tensor_free(y);
    lm_model_free(m);
}

/* ModelCheckpoint without save_weights_only and a .keras path saves the model. */
static void test_checkpoint(void) {
    lm_model *m = small_model();
    lm_compile(m, .optimizer = lm_sgd(.momentum = 0.9), .loss = LM_MSE);
    lm_tensor *x = pattern(lm_model_ctx(m), LM_SHAPE(8, 5), 11),
              *y = pattern(lm_model_ctx(m), LM_SHAPE(8, 3), 12);
    char path[600];
    snprintf(path, sizeof path, "%s/ck-{epoch:02d}.keras", tmpdir);
    lm_callback *cb = lm_model_checkpoint(path);
    lm_history *h = lm_fit(m, x, y, .epochs = 2, .batch_size = 4, .verbose = LM_SILENT,
                           .callbacks = LM_CALLBACKS(cb));
    CHECK_MSG(h != NULL, "%s", lm_model_error(m));
    lm_history_free(h);
    lm_model *b = lm_load(tmp("ck-02.keras"));
    CHECK_MSG(b != NULL, "%s", lm_saving_error());
    if (b) {
        CHECK(lm_optimizer_iterations(lm_model_optimizer(b)) == 4);
        CHECK(max_weight_diff(b, m) == 0);
    }
    lm_model_free(b);
    lm_callback_free(cb);
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_model_free(m);
}

/* Keras-written files: outputs and a resumed Adam run against Keras's. */
static void test_keras_written(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/keras/files/fn_merge.keras", ref_dir());
    lm_model *m = lm_load(path);
    CHECK_MSG(m != NULL, "%s", lm_saving_error());
    if (m) {
        lm_ctx *ctx = lm_model_ctx(m);
        lm_tensor *x[2] = {ref_load(ctx, "files", "fn_merge", "x0"),
                           ref_load(ctx, "files", "fn_merge", "x1")};
        lm_tensor *y[2] = {NULL, NULL};
        CHECK(lm_predict_multi(m, 2, x, 2, y, (lm_predict_opts){.verbose = LM_SILENT}) == 2);
        for (int i = 0; i < 2; i++) {
            lm_tensor *want = ref_load(ctx, "files", "fn_merge", i ? "y1" : "y0");
            double e = ref_max_rel_err(y[i], want);
            CHECK_MSG(e <= 1e-5, "fn_merge output %d differs from Keras by %g", i, e);
            lm_tensor_free(want);
            lm_tensor_free(x[i]);
            lm_tensor_free(y[i]);
        }
        CHECK(!strcmp(lm_optimizer_name(lm_model_optimizer(m)), "rmsprop"));
    }
    lm_model_free(m);

    snprintf(path, sizeof path, "%s/keras/files/resume.keras", ref_dir());
    m = lm_load(path);
    CHECK_MSG(m != NULL, "%s", lm_saving_error());
    if (!m) return;
    lm_ctx *ctx = lm_model_ctx(m);
    CHECK(lm_optimizer_iterations(lm_model_optimizer(m)) == 3);
    lm_tensor *x = ref_load(ctx, "files", "resume", "x"),
              *y = ref_load(ctx, "files", "resume", "y");
    train_steps(m, x, y, 3);
    double worst = 0;
    for (int i = 0; i < lm_model_weight_count(m); i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "w%d", i);
        lm_tensor *want = ref_load(ctx, "files", "resume", nm);
        double e = ref_max_rel_err(lm_model_weight(m, i), want);
        if (!(e <= worst)) worst = e;
        lm_tensor_free(want);
    }
    CHECK_MSG(worst <= 1e-5, "weights after resuming Keras's run differ from Keras's by %g", worst);
    fprintf(stderr, "resume of a Keras-saved Adam run: max rel err %.2g\n", worst);
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_model_free(m);
}

/* ---- damaged and crafted files ---- */

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(p, 1, n, f) == n);
    if (f) fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len + 1);
    *n = p && fread(p, 1, (size_t)len, f) == (size_t)len ? (size_t)len : 0;
    fclose(f);
    return p;
}

/* A zip of n members (stored unless deflate) written with libzip. */
static void make_zip(const char *path, int n, const char *const *names, const void *const *data,
                     const size_t *lens, bool deflate) {
    int err = 0;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    CHECK(z != NULL);
    for (int i = 0; z && i < n; i++) {
        zip_source_t *s = zip_source_buffer(z, data[i], lens[i], 0);
        zip_int64_t k = zip_file_add(z, names[i], s, ZIP_FL_OVERWRITE);
        CHECK(k >= 0);
        zip_set_file_compression(z, (zip_uint64_t)k, deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
    }
    if (z) CHECK(zip_close(z) == 0);
}

static void *member(const char *path, const char *name, size_t *len) {
    int err = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY, &err);
    zip_stat_t zs;
    void *p = NULL;
    *len = 0;
    if (z && !zip_stat(z, name, 0, &zs) && (p = malloc(zs.size + 1))) {
        zip_file_t *f = zip_fopen(z, name, 0);
        *len = f && zip_fread(f, p, zs.size) == (zip_int64_t)zs.size ? (size_t)zs.size : 0;
        if (f) zip_fclose(f);
        ((char *)p)[*len] = 0;
    }
    if (z) zip_close(z);
    return p;
}

static void refused_file(const char *path, const char *want) {
    lm_model *m = lm_load(path);
    CHECK_MSG(m == NULL, "%s loaded", path);
    lm_model_free(m);
    CHECK_MSG(lm_saving_error()[0] != 0, "%s: no message", path);
    if (want) CHECK_CONTAINS(lm_saving_error(), want);
}

static void test_refused_files(void) {
    refused_file(tmp("missing.keras"), "missing.keras");
    refused_file(tmpdir, "not a regular file");
    refused_file(NULL, "empty");
    write_bytes(tmp("empty.keras"), "", 0);
    refused_file(tmp("empty.keras"), "neither");
    write_bytes(tmp("text.keras"), "hello, this is not a model", 26);
    refused_file(tmp("text.keras"), "neither");

    /* A valid model to take apart. */
    lm_model *m = small_model();
    lm_compile(m, .optimizer = lm_sgd(), .loss = LM_MSE);
    CHECK_STATUS(lm_save(m, tmp("good.keras")), LM_OK);
    size_t clen = 0, wlen = 0, n = 0;
    char *config = member(tmp("good.keras"), "config.json", &clen);
    void *weights = member(tmp("good.keras"), "model.weights.h5", &wlen);
    CHECK(config && weights && clen && wlen);

    const char *names[3] = {"config.json", "model.weights.h5", "metadata.json"};
    const void *data[3] = {config, weights, "{}"};
    size_t lens[3] = {clen, wlen, 2};
    make_zip(tmp("deflated.keras"), 3, names, data, lens, true); /* deflate is read too */
    lm_model *d = lm_load(tmp("deflated.keras"));
    CHECK_MSG(d != NULL, "%s", lm_saving_error());
    lm_model_free(d);
    make_zip(tmp("noconfig.keras"), 1, names + 1, data + 1, lens + 1, false);
    refused_file(tmp("noconfig.keras"), "no config.json");
    make_zip(tmp("noweights.keras"), 1, names, data, lens, false);
    refused_file(tmp("noweights.keras"), "no model.weights.h5");
    const void *bad_json[2] = {"{\"class_name\": \"Sequential\", ", weights};
    size_t bad_lens[2] = {30, wlen};
    make_zip(tmp("badjson.keras"), 2, names, bad_json, bad_lens, false);
    refused_file(tmp("badjson.keras"), "not valid JSON");
    /* A config naming a layer Lamina lacks: the class and the layer's name. */
    const char *from =
        "\"class_name\":\"BatchNormalization\",\"config\":{\"name\":\"batch_normalization\"";
    const char *to =
        "\"class_name\":\"GroupNormalization\",\"config\":{\"name\":\"group_norm_layer_1\"";
    char *unknown = malloc(clen + strlen(to) + 1), *at = strstr(config, from);
    CHECK(at != NULL);
    if (at) {
        snprintf(unknown, clen + strlen(to) + 1, "%.*s%s%s", (int)(at - config), config, to,
                 at + strlen(from));
        const void *ud[2] = {unknown, weights};
        size_t ul[2] = {strlen(unknown), wlen};
        make_zip(tmp("unknown.keras"), 2, names, ud, ul, false);
        refused_file(tmp("unknown.keras"), "GroupNormalization");
        refused_file(tmp("unknown.keras"), "group_norm_layer_1");
    }
    free(unknown);
    /* Weights of another model: the HDF5 side's message. */
    lm_model *other = lm_sequential("other");
    lm_add(other, lm_input(LM_SHAPE(5)));
    lm_add(other, lm_dense(4));
    lm_add(other, lm_dense(3));
    CHECK_STATUS(lm_save(other, tmp("other.keras")), LM_OK);
    size_t olen;
    char *oconf = member(tmp("other.keras"), "config.json", &olen);
    const void *md[2] = {oconf, weights};
    size_t ml[2] = {olen, wlen};
    make_zip(tmp("mismatch.keras"), 2, names, md, ml, false);
    refused_file(tmp("mismatch.keras"), "mismatch.keras");
    free(oconf);
    lm_model_free(other);
    /* An HDF5 file that is not a model. */
    write_bytes(tmp("w.h5"), weights, wlen);
    refused_file(tmp("w.h5"), "model_config");

    /* Every truncation, and byte flips all over the archive: refused with a
     * message (or, for a flip in padding, loaded whole); never a crash. */
    unsigned char *good = read_bytes(tmp("good.keras"), &n);
    CHECK(good && n > 100);
    int loaded = 0, refused = 0;
    for (size_t cut = 0; good && cut < n; cut += cut < 64 ? 1 : 97) {
        write_bytes(tmp("cut.keras"), good, cut);
        lm_model *c = lm_load(tmp("cut.keras"));
        if (c)
            loaded++;
        else
            refused += lm_saving_error()[0] != 0;
        lm_model_free(c);
    }
    CHECK_MSG(loaded == 0, "%d truncated archives loaded", loaded);
    srand(7);
    int flips = 0, flip_loaded = 0;
    for (int k = 0; good && k < 300; k++) {
        size_t pos = (size_t)rand() % n;
        unsigned char keep = good[pos];
        good[pos] ^= (unsigned char)(1 + rand() % 255);
        write_bytes(tmp("flip.keras"), good, n);
        good[pos] = keep;
        lm_model *c = lm_load(tmp("flip.keras"));
        flips++;
        if (c)
            flip_loaded++;
        else
            CHECK_MSG(lm_saving_error()[0] != 0, "flip at %zu: no message", pos);
        lm_model_free(c);
    }
    fprintf(stderr, "damaged archives: %d truncations refused, %d of %d byte flips loaded\n",
            refused, flip_loaded, flips);
    /* A member declaring more bytes than the archive holds. */
    if (good) {
        unsigned char *p = good;
        /* The central directory entry of config.json: "PK\1\2", sizes at +20 and +24. */
        for (size_t i = 0; i + 46 < n; i++)
            if (p[i] == 'P' && p[i + 1] == 'K' && p[i + 2] == 1 && p[i + 3] == 2) {
                p[i + 20] = p[i + 21] = p[i + 22] = 0xff, p[i + 23] = 0x7f;
                p[i + 24] = p[i + 25] = p[i + 26] = 0xff, p[i + 27] = 0x7f;
                break;
            }
        write_bytes(tmp("huge.keras"), p, n);
        refused_file(tmp("huge.keras"), "huge.keras");
    }
    free(good);
    free(config);
    free(weights);
    lm_model_free(m);
}

/* ---- a save killed midway leaves the previous file whole ---- */

static void test_kill_during_save(void) {
    lm_model *m = small_model();
    lm_compile(m, .optimizer = lm_adam(), .loss = LM_MSE);
    lm_tensor *x = pattern(lm_model_ctx(m), LM_SHAPE(8, 5), 9),
              *y = pattern(lm_model_ctx(m), LM_SHAPE(8, 3), 10);
    train_steps(m, x, y, 1);
    const char *path = tmp("k.keras");
    CHECK_STATUS(lm_save(m, path), LM_OK);
    srand((unsigned)time(NULL));
    int rounds = 25, whole = 0;
    int64_t max_iter = 0;
    for (int r = 0; r < rounds; r++) {
        pid_t pid = fork();
        if (pid == 0) { /* keep training and saving until killed */
            for (;;) {
                double out[4];
                if (lm_train_on_batch(m, x, y, NULL, out, 4) < 1 || lm_save(m, path)) _exit(2);
            }
        }
        CHECK(pid > 0);
        struct timespec ts = {0, (long)(1 + rand() % 40) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        CHECK_MSG(WIFSIGNALED(status), "the saving child ended by itself (status %d)", status);
        lm_model *b = lm_load(path);
        CHECK_MSG(b != NULL, "round %d: %s", r, lm_saving_error());
        if (b) {
            int64_t it = lm_optimizer_iterations(lm_model_optimizer(b));
            lm_tensor *p = lm_predict(b, x, .verbose = LM_SILENT);
            CHECK(p != NULL);
            lm_tensor_free(p);
            whole++;
            if (it > max_iter) max_iter = it;
        }
        lm_model_free(b);
    }
    CHECK(whole == rounds);
    CHECK_MSG(max_iter > 1, "the children never completed a save");
    /* Killed writers leave only their temporary files beside it. */
    DIR *d = opendir(tmpdir);
    int torn = 0;
    for (struct dirent *de; d && (de = readdir(d));)
        if (strstr(de->d_name, "k.keras.tmp")) {
            char p[800];
            snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
            unlink(p);
            torn++;
        }
    if (d) closedir(d);
    fprintf(stderr, "kill during save: %d rounds whole (up to step %lld), %d interrupted writes\n",
            whole, (long long)max_iter, torn);
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_model_free(m);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lm_test_keras_files_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    RUN(test_round_trip);
    RUN(test_functional_round_trip);
    RUN(test_checkpoint);
    RUN(test_keras_written);
    RUN(test_refused_files);
    RUN(test_kill_during_save);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmpdir);
    return lmt_summary("test_keras_files");
}
