/* Callbacks: each one driven hook by hook with the logs Keras's reference run
 * saw (tests/keras/ref_callbacks.py: stop epochs, restored epochs, learning
 * rates, CSV bytes, printed messages, float repr and path formatting), then
 * inside real fits on small Dense models: EarlyStopping, ModelCheckpoint,
 * CSVLogger, ReduceLROnPlateau, LearningRateScheduler, TerminateOnNaN, user
 * hooks (order, counts, logs), the history, and errors. */
#include "lmtest.h"
#include "nn/callbacks/cb_impl.h"
#include "refs.h"
#include <dirent.h>
#include <fcntl.h>
#include <lamina/lamina.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

/* ---- helpers ---- */

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return s;
}

static char *ref_text(const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/keras/callbacks/%s", ref_dir(), name);
    char *s = slurp(p, NULL);
    if (!s) fprintf(stderr, "missing reference %s\n", p);
    return s;
}

/* stdout into a file while a block runs. */
static int cap_fd = -1;
static char cap_path[512];
static void cap_begin(void) {
    fflush(stdout);
    snprintf(cap_path, sizeof cap_path, "%s/stdout.txt", tmpdir);
    int fd = open(cap_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cap_fd = dup(1);
    dup2(fd, 1);
    close(fd);
}
static char *cap_end(void) {
    fflush(stdout);
    dup2(cap_fd, 1);
    close(cap_fd);
    return slurp(cap_path, NULL);
}

/* Ends the capture: what was printed must be want. */
static void cap_check(const char *want, const char *what) {
    char *out = cap_end();
    CHECK_MSG(out && want && !strcmp(out, want), "%s printed\n%s\nKeras prints\n%s", what, out,
              want);
    free(out);
}

/* "key=value" token of a reference line (value up to the next space). */
static bool tok(const char *line, const char *key, char *out, size_t n) {
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(line, pat);
    if (!p) return false;
    p += strlen(pat);
    size_t k = strcspn(p, " \n");
    snprintf(out, n, "%.*s", (int)(k < n ? k : n - 1), p);
    return true;
}
static double tokd(const char *line, const char *key, double dflt) {
    char b[64];
    return tok(line, key, b, sizeof b) ? strtod(b, NULL) : dflt;
}
/* Comma-separated numbers ("none" as NaN); returns the count. */
static int list(const char *s, double *v, int max) {
    int n = 0;
    while (*s && n < max) {
        v[n++] = strncmp(s, "none", 4) ? strtod(s, NULL) : NAN;
        s = strchr(s, ',');
        if (!s) break;
        s++;
    }
    return n;
}

static lm_ctx *dctx; /* the data's context, apart from the models' RNGs */

static lm_tensor *randn(lm_shape s, uint64_t seed) {
    lm_ctx_seed(dctx, seed);
    lm_tensor *t = lm_tensor_new(dctx, LM_F32, s);
    lm_tensor_random_normal(t, 0, 1);
    return t;
}

/* Dense(4 -> 8 relu -> 1), SGD, mse, metric mae; one thread for exact sums. */
static lm_model *small_model(uint64_t seed, double lr) {
    lm_model *m = lm_sequential(NULL);
    lm_ctx_seed(lm_model_ctx(m), seed);
    lm_ctx_set_threads(lm_model_ctx(m), 1);
    lm_add(m, lm_input(LM_SHAPE(4)));
    lm_add(m, lm_dense(8, .activation = LM_RELU));
    lm_add(m, lm_dense(1));
    lm_compile(m, .optimizer = lm_sgd(.learning_rate = lr), .loss = LM_MSE,
               .metrics = LM_METRICS(LM_METRIC_MAE, LM_ACCURACY));
    return m;
}

typedef struct data {
    lm_tensor *x, *y;
} data;
static data make_data(lm_model *m, int n, uint64_t seed) {
    (void)m;
    data d = {randn(LM_SHAPE(n, 4), seed), lm_tensor_new(dctx, LM_F32, LM_SHAPE(n, 1))};
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < 4; j++) s += lm_tensor_get(d.x, i * 4 + j) * (j + 1) * 0.5;
        lm_tensor_set(d.y, i, s);
    }
    return d;
}
static void free_data(data d) {
    lm_tensor_free(d.x);
    lm_tensor_free(d.y);
}

/* Fills every weight with v (to tell which epoch's weights are restored). */
static void fill_weights(lm_model *m, double v) {
    for (int i = 0; i < lm_model_weight_count(m); i++) lm_tensor_fill(lm_model_weight(m, i), v);
}

static int n_weights_floats(lm_model *m) {
    int n = 0;
    for (int i = 0; i < lm_model_weight_count(m); i++)
        n += (int)lm_tensor_numel(lm_model_weight(m, i));
    return n;
}
static void get_weights(lm_model *m, float *out) {
    for (int i = 0; i < lm_model_weight_count(m); i++) {
        lm_tensor *w = lm_model_weight(m, i);
        lm_tensor_copy_to(w, out, (size_t)lm_tensor_numel(w) * sizeof(float));
        out += lm_tensor_numel(w);
    }
}

/* A model whose compiled metrics exist (auto mode looks them up), as the
 * reference run's model.evaluate made them. */
static lm_model *hook_model(double lr) {
    lm_model *m = small_model(1, lr);
    data d = make_data(m, 4, 2);
    double out[4];
    lm_evaluate(m, d.x, d.y, out, 4, .verbose = LM_SILENT);
    free_data(d);
    return m;
}

#define HOOK(cb, h, ...)                                                                           \
    do {                                                                                           \
        if ((cb)->vt->h) (cb)->vt->h((cb), __VA_ARGS__);                                           \
    } while (0)

static lm_monitor_mode mode_of(const char *line) {
    char b[16];
    if (!tok(line, "mode", b, sizeof b)) return LM_MODE_AUTO;
    return !strcmp(b, "max") ? LM_MODE_MAX : !strcmp(b, "min") ? LM_MODE_MIN : LM_MODE_AUTO;
}

/* ---- hook-driven parity with Keras ---- */

static void test_early_stopping_ref(void) {
    char *ref = ref_text("early_stopping.txt"), *vref = ref_text("early_stopping_verbose.out");
    CHECK(ref && vref);
    if (!ref || !vref) return;
    int cases = 0;
    for (char *line = strtok(ref, "\n"); line; line = strtok(NULL, "\n"), cases++) {
        char name[64], monitor[48], vals[256];
        sscanf(line, "%63s", name);
        char *l = line + strlen(name); /* tokens start with a space */
        tok(l, "monitor", monitor, sizeof monitor);
        tok(l, "values", vals, sizeof vals);
        double v[16];
        int n = list(vals, v, 16);
        double baseline = tokd(l, "baseline", NAN);
        lm_callback *cb =
            lm_early_stopping(.monitor = monitor, .patience = (int)tokd(l, "patience", 0),
                              .min_delta = tokd(l, "min_delta", 0), .mode = mode_of(l),
                              .baseline = baseline, .has_baseline = !isnan(baseline),
                              .start_from_epoch = (int)tokd(l, "start_from_epoch", 0),
                              .restore_best_weights = tokd(l, "restore_best_weights", 0) != 0,
                              .verbose = (int)tokd(l, "verbose", 0));
        lm_model *m = hook_model(0.1);
        bool verbose = tokd(l, "verbose", 0) != 0;
        if (verbose) cap_begin();
        lm_logs logs;
        lm_logs_clear(&logs);
        m->stop_training = false;
        HOOK(cb, on_train_begin, m, &logs);
        int stop_at = -1, run = 0;
        for (int e = 0; e < n; e++) {
            fill_weights(m, e + 1); /* the weights "after" epoch e */
            lm_logs_clear(&logs);
            lm_logs_set(&logs, "loss", 1.0);
            if (!isnan(v[e])) lm_logs_set(&logs, monitor, v[e]);
            HOOK(cb, on_epoch_end, m, e, &logs);
            run = e + 1;
            if (m->stop_training) {
                stop_at = e;
                break;
            }
        }
        HOOK(cb, on_train_end, m, &logs);
        if (verbose) {
            cap_check(vref, name);
        }
        CHECK_MSG(stop_at == (int)tokd(l, "stop_at", -2), "%s: stopped at epoch %d", name, stop_at);
        int restored = (int)tokd(l, "restored", -2);
        double w = lm_tensor_get(lm_model_weight(m, 0), 0);
        CHECK_MSG(w == (restored >= 0 ? restored + 1 : run), "%s: weights of epoch %g kept", name,
                  w - 1);
        CHECK_MSG(cb->err == LM_OK, "%s: %s", name, lm_ctx_error(lm_model_ctx(m)));
        lm_callback_free(cb);
        lm_model_free(m);
    }
    CHECK(cases == 15);
    free(ref);
    free(vref);
}

static void test_reduce_lr_ref(void) {
    char *ref = ref_text("reduce_lr.txt"), *vref = ref_text("reduce_lr_verbose.out");
    CHECK(ref && vref);
    if (!ref || !vref) return;
    int cases = 0;
    for (char *line = strtok(ref, "\n"); line; line = strtok(NULL, "\n"), cases++) {
        char name[64], vals[256], logged_s[1024], after_s[1024];
        sscanf(line, "%63s", name);
        char *l = line + strlen(name);
        tok(l, "values", vals, sizeof vals);
        tok(l, "logged", logged_s, sizeof logged_s);
        tok(l, "after", after_s, sizeof after_s);
        double v[16], logged[16], after[16];
        int n = list(vals, v, 16);
        CHECK(list(logged_s, logged, 16) == n && list(after_s, after, 16) == n);
        lm_callback *cb =
            lm_reduce_lr_on_plateau(.patience = (int)tokd(l, "patience", 0),
                                    .factor = tokd(l, "factor", 0),
                                    .cooldown = (int)tokd(l, "cooldown", 0),
                                    .min_lr = tokd(l, "min_lr", 0),
                                    .min_delta = tokd(l, "min_delta", 0), .mode = mode_of(l),
                                    .verbose = (int)tokd(l, "verbose", 0));
        lm_model *m = hook_model(tokd(l, "lr", 0));
        bool verbose = tokd(l, "verbose", 0) != 0;
        if (verbose) cap_begin();
        lm_logs logs;
        lm_logs_clear(&logs);
        HOOK(cb, on_train_begin, m, &logs);
        for (int e = 0; e < n; e++) {
            lm_logs_clear(&logs);
            lm_logs_set(&logs, "loss", 1.0);
            lm_logs_set(&logs, "val_loss", v[e]);
            HOOK(cb, on_epoch_end, m, e, &logs);
            double lr = (float)lm_optimizer_learning_rate(lm_model_optimizer(m));
            CHECK_MSG(lm_logs_get(&logs, "learning_rate") == logged[e] && lr == after[e],
                      "%s epoch %d: logged %.17g (Keras %.17g), then %.17g (Keras %.17g)", name, e,
                      lm_logs_get(&logs, "learning_rate"), logged[e], lr, after[e]);
        }
        if (verbose) {
            cap_check(vref, name);
        }
        lm_callback_free(cb);
        lm_model_free(m);
    }
    CHECK(cases == 5);
    free(ref);
    free(vref);
}

static double halve_from_2(int epoch, double lr, void *user) {
    (*(int *)user)++;
    return epoch < 2 ? lr : lr * 0.5;
}

static void test_lr_scheduler_ref(void) {
    char *ref = ref_text("lr_scheduler.txt"), *vref = ref_text("lr_scheduler_verbose.out");
    CHECK(ref && vref);
    if (!ref || !vref) return;
    double logged[8];
    CHECK(list(ref + strlen("logged="), logged, 8) == 4);
    int calls = 0;
    lm_callback *cb = lm_learning_rate_scheduler(halve_from_2, &calls, 1);
    lm_model *m = hook_model(0.1);
    lm_logs logs;
    cap_begin();
    for (int e = 0; e < 4; e++) {
        lm_logs_clear(&logs);
        HOOK(cb, on_epoch_begin, m, e, &logs);
        lm_logs_set(&logs, "loss", 1.0);
        HOOK(cb, on_epoch_end, m, e, &logs);
        CHECK_NEAR(lm_logs_get(&logs, "learning_rate"), logged[e], 0);
    }
    cap_check(vref, "LearningRateScheduler");
    CHECK(calls == 4);
    free(ref);
    free(vref);
    lm_callback_free(cb);
    lm_model_free(m);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_checkpoint_ref(void) {
    char *ref = ref_text("checkpoint.txt"), *vref = ref_text("checkpoint_verbose.out");
    CHECK(ref && vref);
    if (!ref || !vref) return;
    char cwd[1024], dir[600];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    snprintf(dir, sizeof dir, "%s/ckref", tmpdir);
    mkdir(dir, 0755);
    CHECK(chdir(dir) == 0);
    cap_begin();
    int cases = 0;
    char *save = NULL;
    for (char *line = strtok_r(ref, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save), cases++) {
        char name[64], path[256], vals[128], files[1024];
        sscanf(line, "%63s", name);
        char *l = line + strlen(name);
        tok(l, "path", path, sizeof path);
        tok(l, "values", vals, sizeof vals);
        tok(l, "files", files, sizeof files);
        double v[8];
        int n = list(vals, v, 8);
        const char *monitor = !strcmp(name, "best_max") ? "val_accuracy" : "val_loss";
        lm_callback *cb =
            lm_model_checkpoint(path, .verbose = 1, .save_best_only = strcmp(name, "all") != 0,
                                .save_weights_only = true, .monitor = monitor);
        lm_model *m = hook_model(0.1);
        lm_logs logs;
        lm_logs_clear(&logs);
        HOOK(cb, on_train_begin, m, &logs);
        for (int e = 0; e < n; e++) {
            lm_logs_clear(&logs);
            lm_logs_set(&logs, "loss", 1.0);
            lm_logs_set(&logs, "val_loss", v[e]);
            lm_logs_set(&logs, "val_accuracy", v[e]);
            HOOK(cb, on_epoch_begin, m, e, &logs);
            HOOK(cb, on_epoch_end, m, e, &logs);
        }
        HOOK(cb, on_train_end, m, &logs);
        CHECK_MSG(cb->err == LM_OK, "%s: %s", name, lm_ctx_error(lm_model_ctx(m)));
        /* The files written, sorted, against Keras's. */
        char sub[256];
        snprintf(sub, sizeof sub, "%.*s", (int)(strchr(path, '/') - path), path);
        DIR *d = opendir(sub);
        char *names[16];
        int nf = 0;
        for (struct dirent *de; d && (de = readdir(d)) && nf < 16;)
            if (de->d_name[0] != '.') {
                names[nf] = malloc(strlen(sub) + strlen(de->d_name) + 2);
                sprintf(names[nf++], "%s/%s", sub, de->d_name);
            }
        if (d) closedir(d);
        qsort(names, (size_t)nf, sizeof *names, cmp_str);
        char got[1024] = "";
        for (int i = 0; i < nf; i++) {
            strcat(got, i ? "," : "");
            strcat(got, names[i]);
            CHECK_MSG(lm_load_weights(m, names[i]) == LM_OK, "%s", lm_ctx_error(lm_model_ctx(m)));
            free(names[i]);
        }
        CHECK_MSG(!strcmp(got, files), "%s: wrote %s, Keras %s", name, got, files);
        lm_callback_free(cb);
        lm_model_free(m);
    }
    cap_check(vref, "ModelCheckpoint");
    CHECK(cases == 3);
    CHECK(chdir(cwd) == 0);
    free(ref);
    free(vref);
}

static void csv_run(lm_callback *cb, lm_model *m, int first, int n, lm_logs *rows) {
    lm_logs none;
    lm_logs_clear(&none);
    HOOK(cb, on_train_begin, m, &none);
    for (int i = 0; i < n; i++) {
        lm_logs l = rows[i];
        HOOK(cb, on_epoch_end, m, first + i, &l);
    }
    HOOK(cb, on_train_end, m, &none);
}

static void check_csv(const char *name) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    size_t n;
    char *got = slurp(path, &n), *want = ref_text(name);
    CHECK_MSG(got && want && !strcmp(got, want), "%s:\n%s\nKeras wrote\n%s", name, got, want);
    free(got);
    free(want);
}

static void test_csv_logger_ref(void) {
    lm_model *m = hook_model(0.1);
    lm_logs train[2], val[2], odd[2];
    for (int i = 0; i < 2; i++) {
        lm_logs_clear(&train[i]);
        lm_logs_clear(&val[i]);
        lm_logs_clear(&odd[i]);
    }
    lm_logs_set(&train[0], "loss", 0.5);
    lm_logs_set(&train[0], "accuracy", 0.25);
    lm_logs_set(&train[1], "loss", 0.125);
    lm_logs_set(&train[1], "accuracy", 1.0 / 3);
    const double v0[] = {0.7, 0.1, 0.8, 1e-5, 0.001},
                 v1[] = {NAN, INFINITY, 123456.789, 1e17, 0.0001};
    const char *k[] = {"loss", "mae", "val_loss", "val_mae", "learning_rate"};
    for (int i = 0; i < 5; i++) {
        lm_logs_set(&val[0], k[i], v0[i]);
        lm_logs_set(&val[1], k[i], v1[i]);
    }
    lm_logs_set(&odd[0], "a,b", 1.0);
    lm_logs_set(&odd[0], "q\"k", 2.0);
    lm_logs_set(&odd[0], "loss", 3.0);
    lm_logs_set(&odd[1], "loss", 4.0);
    char p[600];
#define CSV(file, ...) (snprintf(p, sizeof p, "%s/%s", tmpdir, file), lm_csv_logger(p, __VA_ARGS__))
    lm_callback *cbs[] = {CSV("no_val.csv", 0),
                          CSV("val.csv", 0),
                          CSV("semi.csv", .separator = ';'),
                          CSV("append.csv", .append = true),
                          CSV("append.csv", .append = true),
                          CSV("quoted.csv", 0)};
    snprintf(p, sizeof p, "%s/append.csv", tmpdir);
    unlink(p);
    csv_run(cbs[0], m, 0, 2, train);
    csv_run(cbs[1], m, 0, 2, val);
    csv_run(cbs[2], m, 0, 2, val);
    csv_run(cbs[3], m, 0, 2, train);
    csv_run(cbs[4], m, 2, 2, train);
    csv_run(cbs[5], m, 0, 2, odd);
    for (int i = 0; i < 6; i++) {
        CHECK(cbs[i]->err == LM_OK);
        lm_callback_free(cbs[i]);
    }
    check_csv("no_val.csv");
    check_csv("val.csv");
    check_csv("semi.csv");
    check_csv("append.csv");
    check_csv("quoted.csv");
    lm_model_free(m);
}

static void test_terminate_on_nan_ref(void) {
    char *vref = ref_text("terminate_on_nan.out");
    lm_model *m = hook_model(0.1);
    lm_callback *cb = lm_terminate_on_nan();
    lm_logs l;
    const double loss[] = {1.0, NAN, INFINITY};
    const int batch[] = {0, 3, 4};
    bool stop[3];
    m->stop_training = false;
    cap_begin();
    for (int i = 0; i < 3; i++) {
        lm_logs_clear(&l);
        lm_logs_set(&l, "loss", loss[i]);
        HOOK(cb, on_train_batch_end, m, batch[i], &l);
        stop[i] = m->stop_training;
    }
    cap_check(vref, "TerminateOnNaN");
    CHECK(!stop[0] && stop[1] && stop[2]);
    free(vref);
    lm_callback_free(cb);
    lm_model_free(m);
}

static void test_pyfloat_ref(void) {
    char *ref = ref_text("pyfloat.txt");
    CHECK(ref != NULL);
    int n = 0;
    for (char *line = strtok(ref ? ref : "", "\n"); line; line = strtok(NULL, "\n"), n++) {
        char hex[64], want[64], got[64];
        sscanf(line, "%63s %63s", hex, want);
        lm_pyfloat(strtod(hex, NULL), got, sizeof got);
        CHECK_MSG(!strcmp(got, want), "repr(%s) is %s, got %s", hex, want, got);
    }
    CHECK(n == 23);
    free(ref);
}

static void test_format_path_ref(void) {
    char *ref = ref_text("format_path.txt");
    CHECK(ref != NULL);
    if (!ref) return;
    lm_logs logs;
    lm_logs_clear(&logs);
    char *save = NULL, *line = strtok_r(ref, "\n", &save);
    for (char *kv = line; kv && *kv;) { /* key=hex,key=hex */
        char key[48];
        char *eq = strchr(kv, '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
        char *end;
        lm_logs_set(&logs, key, strtod(eq + 1, &end));
        kv = *end == ',' ? end + 1 : NULL;
    }
    int n = 0;
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t2) break;
        *t1 = *t2 = 0;
        char out[256], err[128];
        CHECK_STATUS(lm_format_path(line, atoi(t1 + 1), &logs, out, sizeof out, err, sizeof err),
                     LM_OK);
        CHECK_MSG(!strcmp(out, t2 + 1), "\"%s\" gave \"%s\", Python \"%s\"", line, out, t2 + 1);
        n++;
    }
    CHECK(n == 11);
    char out[64], err[128];
    CHECK_STATUS(lm_format_path("{nokey}", 1, &logs, out, sizeof out, err, sizeof err), LM_ERR_ARG);
    CHECK_CONTAINS(err, "'nokey'");
    CHECK_STATUS(lm_format_path("{loss:d}", 1, &logs, out, sizeof out, err, sizeof err),
                 LM_ERR_ARG);
    CHECK_CONTAINS(err, "Unknown format code 'd' for object of type 'float'");
    free(ref);
}

/* ---- inside fits ---- */

static lm_history *fit(lm_model *m, data d, int epochs, lm_callback *const *cbs, double vsplit) {
    return lm_fit(m, d.x, d.y, .epochs = epochs, .batch_size = 16, .shuffle = LM_FALSE,
                  .verbose = LM_SILENT, .callbacks = cbs, .validation_split = vsplit);
}

/* Training with a zero learning rate: the loss repeats exactly. */
static lm_model *frozen_model(void) {
    lm_model *m = small_model(3, 0.01);
    lm_compile(m, .optimizer = lm_sgd(.learning_rate = 0.01), .loss = LM_MSE);
    lm_optimizer_set_learning_rate(lm_model_optimizer(m), 0);
    return m;
}

static int es_epochs(lm_early_stopping_opts o, bool frozen, int epochs) {
    lm_model *m = frozen ? frozen_model() : small_model(3, 0.01);
    data d = make_data(m, 64, 4);
    lm_callback *es = lm_early_stopping_(o);
    lm_history *h = fit(m, d, epochs, LM_CALLBACKS(es), 0);
    int n = h ? lm_history_epochs(h) : -1;
    if (!h) fprintf(stderr, "fit: %s\n", lm_model_error(m));
    lm_history_free(h);
    lm_callback_free(es);
    free_data(d);
    lm_model_free(m);
    return n;
}

static void test_fit_early_stopping(void) {
    /* A flat loss: the first epoch stays best, the stop comes after patience more. */
    CHECK(es_epochs((lm_early_stopping_opts){.monitor = "loss", .patience = 2}, true, 10) == 3);
    CHECK(es_epochs((lm_early_stopping_opts){.monitor = "loss"}, true, 10) == 2);
    /* Improvements smaller than min_delta do not count. */
    CHECK(es_epochs((lm_early_stopping_opts){.monitor = "loss", .patience = 1, .min_delta = 10},
                    false, 10) == 2);
    CHECK(es_epochs((lm_early_stopping_opts){.monitor = "loss", .patience = 1}, false, 6) == 6);
    /* A baseline never beaten: improving epochs still return before the check. */
    CHECK(es_epochs(
              (lm_early_stopping_opts){
                  .monitor = "loss", .patience = 3, .baseline = 0, .has_baseline = true},
              false, 6) == 6);
    CHECK(es_epochs(
              (lm_early_stopping_opts){
                  .monitor = "loss", .patience = 3, .baseline = 0, .has_baseline = true},
              true, 10) == 3);
    CHECK(es_epochs((lm_early_stopping_opts){.monitor = "loss", .patience = 3}, true, 10) == 4);
    CHECK(es_epochs((lm_early_stopping_opts){.monitor = "loss", .start_from_epoch = 3}, true, 10) ==
          5);
    /* val_loss without validation data: a warning, no stop. */
    CHECK(es_epochs((lm_early_stopping_opts){.patience = 0}, true, 4) == 4);

    /* Verbose message, and the same callback reused by a second fit. */
    lm_model *m = frozen_model();
    data d = make_data(m, 64, 4);
    lm_callback *es = lm_early_stopping(.monitor = "loss", .patience = 1, .verbose = 1);
    for (int run = 0; run < 2; run++) {
        cap_begin();
        lm_history *h = fit(m, d, 10, LM_CALLBACKS(es), 0);
        cap_check("Epoch 2: early stopping\n", "EarlyStopping");
        CHECK(h && lm_history_epochs(h) == 2);
        lm_history_free(h);
    }
    lm_callback_free(es);
    free_data(d);
    lm_model_free(m);
}

typedef struct snap {
    int epoch;
    float *w;
} snap;
static void snap_epoch_end(lm_model *m, int epoch, const lm_logs *logs, void *user) {
    (void)logs;
    snap *s = user;
    if (epoch == s->epoch) get_weights(m, s->w);
}

static void test_fit_restore_best(void) {
    for (int patience = 2; patience <= 10; patience += 8) {
        /* Loss falls, so in max mode epoch 0 is best: stopped (patience 2) or
         * not (10), its weights come back at the end. */
        lm_model *m = small_model(5, 0.01);
        data d = make_data(m, 64, 6);
        int nw = n_weights_floats(m);
        float *best = calloc((size_t)nw, sizeof(float)), *last = calloc((size_t)nw, sizeof(float));
        snap s0 = {0, best}, s2 = {2, last};
        lm_callback *es = lm_early_stopping(.monitor = "loss", .mode = LM_MODE_MAX,
                                            .patience = patience, .restore_best_weights = true);
        lm_callback *l0 =
            lm_lambda_callback((lm_callback_fns){.user = &s0, .on_epoch_end = snap_epoch_end});
        lm_callback *l2 =
            lm_lambda_callback((lm_callback_fns){.user = &s2, .on_epoch_end = snap_epoch_end});
        lm_history *h = fit(m, d, 4, LM_CALLBACKS(l0, l2, es), 0);
        CHECK(h && lm_history_epochs(h) == (patience == 2 ? 3 : 4));
        float *now = calloc((size_t)nw, sizeof(float));
        get_weights(m, now);
        CHECK(!memcmp(now, best, (size_t)nw * sizeof(float)));
        CHECK(memcmp(now, last, (size_t)nw * sizeof(float)) != 0);
        free(now);
        free(best);
        free(last);
        lm_history_free(h);
        lm_callback_free(es);
        lm_callback_free(l0);
        lm_callback_free(l2);
        free_data(d);
        lm_model_free(m);
    }
}

static void test_fit_checkpoint(void) {
    lm_model *m = small_model(7, 0.01);
    data d = make_data(m, 64, 8);
    char pat[600], best[600];
    snprintf(pat, sizeof pat, "%s/fitck/sub/w-{epoch:02d}-{val_loss:.2f}.weights.h5", tmpdir);
    snprintf(best, sizeof best, "%s/fitck/best.weights.h5", tmpdir);
    int nw = n_weights_floats(m);
    float *w0 = calloc((size_t)nw, sizeof(float)), *now = calloc((size_t)nw, sizeof(float));
    snap s0 = {0, w0};
    lm_callback *all = lm_model_checkpoint(pat), *l0 = lm_lambda_callback((lm_callback_fns){
                                                     .user = &s0, .on_epoch_end = snap_epoch_end});
    /* max mode on a falling val_loss: only epoch 1 is "best". */
    lm_callback *bo = lm_model_checkpoint(best, .save_best_only = true, .mode = LM_MODE_MAX);
    lm_history *h = fit(m, d, 3, LM_CALLBACKS(all, bo, l0), 0.25);
    CHECK(h != NULL);
    lm_model *fresh = small_model(99, 0.01);
    lm_tensor_free(lm_predict(fresh, d.x, .verbose = LM_SILENT)); /* builds it */
    for (int e = 0; h && e < 3; e++) {
        char f[700];
        snprintf(f, sizeof f, "%s/fitck/sub/w-%02d-%.2f.weights.h5", tmpdir, e + 1,
                 (double)(float)lm_history_get(h, "val_loss", e));
        struct stat sb;
        CHECK_MSG(stat(f, &sb) == 0, "missing %s", f);
    }
    char last[700];
    snprintf(last, sizeof last, "%s/fitck/sub/w-03-%.2f.weights.h5", tmpdir,
             (double)(float)lm_history_get(h, "val_loss", 2));
    CHECK_STATUS(lm_load_weights(fresh, last), LM_OK);
    get_weights(m, now);
    float *loaded = calloc((size_t)nw, sizeof(float));
    get_weights(fresh, loaded);
    CHECK(!memcmp(loaded, now, (size_t)nw * sizeof(float)));
    CHECK_STATUS(lm_load_weights(fresh, best), LM_OK);
    get_weights(fresh, loaded);
    CHECK(!memcmp(loaded, w0, (size_t)nw * sizeof(float)));
    free(loaded);
    free(w0);
    free(now);
    lm_history_free(h);
    lm_callback_free(all);
    lm_callback_free(bo);
    lm_callback_free(l0);
    free_data(d);
    lm_model_free(m);
    lm_model_free(fresh);
}

static void test_fit_csv_logger(void) {
    lm_model *m = small_model(9, 0.01);
    data d = make_data(m, 64, 10);
    char path[600];
    snprintf(path, sizeof path, "%s/fit.csv", tmpdir);
    lm_callback *csv = lm_csv_logger(path);
    lm_history *h = fit(m, d, 3, LM_CALLBACKS(csv), 0.25);
    CHECK(h != NULL);
    char *text = slurp(path, NULL);
    const char *hdr = "epoch,accuracy,loss,mae,val_accuracy,val_loss,val_mae\r\n";
    CHECK_MSG(text && !strncmp(text, hdr, strlen(hdr)), "%s", text);
    const char *cols[] = {"accuracy", "loss", "mae", "val_accuracy", "val_loss", "val_mae"};
    char *p = text ? text + strlen(hdr) : NULL;
    for (int e = 0; p && h && e < 3; e++) {
        char *end;
        CHECK(strtol(p, &end, 10) == e);
        for (int c = 0; c < 6; c++) {
            CHECK(*end == ',');
            double v = strtod(end + 1, &end);
            CHECK_MSG(v == (double)(float)lm_history_get(h, cols[c], e),
                      "epoch %d %s: %.17g vs %.17g", e, cols[c], v, lm_history_get(h, cols[c], e));
        }
        CHECK(!strncmp(end, "\r\n", 2));
        p = end + 2;
    }
    CHECK(p && *p == 0);
    free(text);
    lm_history_free(h);
    lm_callback_free(csv);
    free_data(d);
    lm_model_free(m);
}

static double inverse_epoch(int epoch, double lr, void *user) {
    (void)lr, (void)user;
    return 0.1 / (epoch + 1);
}

static void test_fit_learning_rates(void) {
    /* ReduceLROnPlateau: max mode on a falling loss never improves after epoch 0. */
    lm_model *m = small_model(11, 0.01);
    data d = make_data(m, 64, 12);
    lm_callback *r = lm_reduce_lr_on_plateau(.monitor = "loss", .mode = LM_MODE_MAX, .patience = 1,
                                             .factor = 0.5);
    lm_history *h = fit(m, d, 4, LM_CALLBACKS(r), 0);
    const double want[] = {0.01, 0.01, 0.005, 0.0025};
    for (int e = 0; h && e < 4; e++)
        CHECK_NEAR(lm_history_get(h, "learning_rate", e), (double)(float)want[e], 0);
    CHECK_NEAR(lm_optimizer_learning_rate(lm_model_optimizer(m)), 0.00125, 1e-9);
    lm_history_free(h);
    lm_callback_free(r);
    lm_model_free(m);

    m = small_model(11, 0.01);
    lm_callback *s = lm_learning_rate_scheduler(inverse_epoch, NULL, 0);
    h = fit(m, d, 4, LM_CALLBACKS(s), 0);
    for (int e = 0; h && e < 4; e++)
        CHECK_NEAR(lm_history_get(h, "learning_rate", e), (double)(float)(0.1 / (e + 1)), 0);
    CHECK_NEAR(lm_optimizer_learning_rate(lm_model_optimizer(m)), 0.025, 1e-12);
    lm_history_free(h);
    lm_callback_free(s);
    lm_model_free(m);
    free_data(d);
}

static void test_fit_terminate_on_nan(void) {
    lm_model *m = small_model(13, 1e12);
    data d = make_data(m, 64, 14);
    lm_callback *t = lm_terminate_on_nan();
    cap_begin();
    lm_history *h = fit(m, d, 5, LM_CALLBACKS(t), 0);
    char *out = cap_end();
    CHECK(h && lm_history_epochs(h) == 1);
    CHECK(h && !isfinite(lm_history_get(h, "loss", 0)));
    CHECK_CONTAINS(out, ": Invalid loss, terminating training\n");
    free(out);
    lm_history_free(h);
    lm_callback_free(t);
    free_data(d);
    lm_model_free(m);
}

typedef struct trace {
    char s[2048];
    int epoch_end_calls;
    lm_logs last_epoch_logs[4];
    bool user_ok;
    int stop_at_batch;
} trace;
static void tr(trace *t, const char *fmt, int v) {
    size_t k = strlen(t->s);
    snprintf(t->s + k, sizeof t->s - k, fmt, v);
}
/* Hooks that only append their tag (and the epoch or batch) to the trace. */
#define TAG_HOOK(fn, tag)                                                                          \
    static void fn(lm_model *m, const lm_logs *l, void *u) {                                       \
        (void)m, (void)l;                                                                          \
        tr(u, tag " ", 0);                                                                         \
    }
#define TAG_HOOK_I(fn, tag)                                                                        \
    static void fn(lm_model *m, int i, const lm_logs *l, void *u) {                                \
        (void)m, (void)l;                                                                          \
        tr(u, tag "%d ", i);                                                                       \
    }
TAG_HOOK(h_tb, "TB")
TAG_HOOK(h_te, "TE")
TAG_HOOK(h_sb, "SB")
TAG_HOOK(h_se, "SE")
TAG_HOOK(h_pb, "PB")
TAG_HOOK(h_pe, "PE")
TAG_HOOK_I(h_eb, "EB")
TAG_HOOK_I(h_bb, "BB")
static void h_ee(lm_model *m, int e, const lm_logs *l, void *u) {
    (void)m;
    trace *t = u;
    tr(t, "EE%d ", e);
    if (e < 4) t->last_epoch_logs[e] = *l;
    t->epoch_end_calls++;
}
static void h_be(lm_model *m, int b, const lm_logs *l, void *u) {
    trace *t = u;
    tr(t, "BE%d ", b);
    t->user_ok = t->user_ok && lm_logs_count(l) == 3 && !strcmp(lm_logs_key(l, 0), "loss");
    if (b == t->stop_at_batch) lm_model_stop_training(m);
}
static void test_fit_user_hooks_and_history(void) {
    lm_model *m = small_model(15, 0.01);
    data d = make_data(m, 48, 16), v = make_data(m, 8, 17);
    trace t = {.user_ok = true, .stop_at_batch = -1};
    lm_callback *cb = lm_lambda_callback((lm_callback_fns){.user = &t,
                                                           .on_train_begin = h_tb,
                                                           .on_train_end = h_te,
                                                           .on_epoch_begin = h_eb,
                                                           .on_epoch_end = h_ee,
                                                           .on_train_batch_begin = h_bb,
                                                           .on_train_batch_end = h_be,
                                                           .on_test_begin = h_sb,
                                                           .on_test_end = h_se,
                                                           .on_predict_begin = h_pb,
                                                           .on_predict_end = h_pe});
    lm_history *h = lm_fit(m, d.x, d.y, .epochs = 2, .batch_size = 16, .verbose = LM_SILENT,
                           .validation_x = v.x, .validation_y = v.y, .callbacks = LM_CALLBACKS(cb));
    double out[8];
    lm_evaluate(m, v.x, v.y, out, 8, .verbose = LM_SILENT, .callbacks = LM_CALLBACKS(cb));
    lm_tensor_free(lm_predict(m, v.x, .verbose = LM_SILENT, .callbacks = LM_CALLBACKS(cb)));
    const char *want =
        "TB EB0 BB0 BE0 BB1 BE1 BB2 BE2 SB SE EE0 EB1 BB0 BE0 BB1 BE1 BB2 BE2 SB SE EE1 TE "
        "SB SE PB PE ";
    CHECK_MSG(!strcmp(t.s, want), "hooks ran as\n%s\nwanted\n%s", t.s, want);
    CHECK(t.user_ok);
    /* History: Keras's key order and the values the callbacks saw. */
    const char *keys[] = {"loss", "mae", "accuracy", "val_loss", "val_mae", "val_accuracy"};
    CHECK(h && lm_history_key_count(h) == 6 && lm_history_epochs(h) == 2);
    for (int k = 0; h && k < 6; k++) {
        CHECK_MSG(!strcmp(lm_history_key(h, k), keys[k]), "key %d is %s", k, lm_history_key(h, k));
        for (int e = 0; e < 2; e++)
            CHECK(lm_history_get(h, keys[k], e) == lm_logs_get(&t.last_epoch_logs[e], keys[k]));
    }
    lm_history_free(h);

    /* Stopping from a batch hook ends the epoch there; it still ends properly. */
    t = (trace){.user_ok = true, .stop_at_batch = 1};
    h = lm_fit(m, d.x, d.y, .epochs = 3, .batch_size = 16, .verbose = LM_SILENT,
               .callbacks = LM_CALLBACKS(cb));
    CHECK_MSG(!strcmp(t.s, "TB EB0 BB0 BE0 BB1 BE1 EE0 TE "), "%s", t.s);
    CHECK(h && lm_history_epochs(h) == 1);
    lm_history_free(h);
    lm_callback_free(cb);
    free_data(d);
    free_data(v);
    lm_model_free(m);
}

static double negative_lr(int epoch, double lr, void *user) {
    (void)epoch, (void)lr, (void)user;
    return -1;
}

/* A fit with cb fails before or after its first epoch with msg. */
static void fit_fails(lm_callback *cb, const char *msg, int max_epochs_run) {
    lm_model *m = small_model(17, 0.01);
    data d = make_data(m, 32, 18);
    trace t = {.user_ok = true, .stop_at_batch = -1};
    lm_callback *count = lm_lambda_callback((lm_callback_fns){.user = &t, .on_epoch_end = h_ee});
    lm_history *h = fit(m, d, 3, LM_CALLBACKS(cb, count), 0.25);
    CHECK(h == NULL);
    CHECK_CONTAINS(lm_model_error(m), msg);
    CHECK_MSG(t.epoch_end_calls <= max_epochs_run, "%d epochs ran", t.epoch_end_calls);
    lm_callback_free(cb);
    lm_callback_free(count);
    free_data(d);
    lm_model_free(m);
}

static void test_fit_errors(void) {
    char p[700];
    fit_fails(lm_csv_logger("/nonexistent-dir/x.csv"),
              "CSVLogger: cannot open /nonexistent-dir/x.csv", 0);
    fit_fails(lm_reduce_lr_on_plateau(.factor = 2),
              "ReduceLROnPlateau does not support a factor >= 1.0. Received factor=2.0", 0);
    fit_fails(lm_early_stopping(.monitor = "foo"),
              "EarlyStopping callback received monitor=foo, but", 1);
    fit_fails(lm_reduce_lr_on_plateau(.monitor = "val_bar"),
              "ReduceLROnPlateau callback received monitor=val_bar", 1);
    snprintf(p, sizeof p, "%s/{nokey}.weights.h5", tmpdir);
    fit_fails(lm_model_checkpoint(p), "failed to format this callback filepath", 1);
    snprintf(p, sizeof p, "%s/afile", tmpdir);
    FILE *f = fopen(p, "w");
    if (f) fclose(f);
    snprintf(p, sizeof p, "%s/afile/sub/w.weights.h5", tmpdir);
    fit_fails(lm_model_checkpoint(p), "cannot create directory", 1);
    fit_fails(lm_learning_rate_scheduler(negative_lr, NULL, 0),
              "LearningRateScheduler: invalid learning rate -1; it must be", 1);
    /* Keras refuses to set the rate of an optimizer built with a schedule. */
    lm_model *m = small_model(19, 0.01);
    lm_compile(m, .optimizer = lm_sgd(.schedule = lm_exponential_decay(0.1, 10, 0.5, false)),
               .loss = LM_MSE);
    data d = make_data(m, 32, 20);
    lm_callback *s = lm_learning_rate_scheduler(inverse_epoch, NULL, 0);
    CHECK(fit(m, d, 2, LM_CALLBACKS(s), 0) == NULL);
    CHECK_CONTAINS(lm_model_error(m),
                   "LearningRateScheduler: this optimizer was created with a "
                   "learning rate schedule, hence its learning rate is not settable");
    lm_callback_free(s);
    free_data(d);
    lm_model_free(m);
    CHECK(lm_model_checkpoint(NULL) == NULL && lm_csv_logger("") == NULL &&
          lm_backup_and_restore("") == NULL && lm_learning_rate_scheduler(NULL, NULL, 0) == NULL);
    lm_callback_free(NULL);
}

static void run_fit_tests(void) {
    RUN(test_fit_early_stopping);
    RUN(test_fit_restore_best);
    RUN(test_fit_checkpoint);
    RUN(test_fit_csv_logger);
    RUN(test_fit_learning_rates);
    RUN(test_fit_terminate_on_nan);
    RUN(test_fit_user_hooks_and_history);
    RUN(test_fit_errors);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lm_test_callbacks_XXXXXX");
    if (!mkdtemp(tmpdir) || !(dctx = lm_ctx_new())) return 1;
    RUN(test_pyfloat_ref);
    RUN(test_format_path_ref);
    RUN(test_early_stopping_ref);
    RUN(test_reduce_lr_ref);
    RUN(test_lr_scheduler_ref);
    RUN(test_checkpoint_ref);
    RUN(test_csv_logger_ref);
    RUN(test_terminate_on_nan_ref);
    run_fit_tests();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmpdir);
    lm_ctx_free(dctx);
    return lmt_summary("test_callbacks");
}
