/* The `lamina` command, run as a user would: every subcommand's --help,
 * exit codes and stderr messages for bad usage, missing files and bad
 * models, and a short fit on NPY data whose .keras file summary, evaluate,
 * predict and a second fit then read. Keras-made inputs come from
 * tests/data/cli/gen.py. */
#include "lmtest.h"
#include <lamina/lamina.h>
#include <lamina/model.h>
#include <lamina/saving.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#ifndef LAMINA_CLI
#define LAMINA_CLI "lamina"
#endif

static const char *cli;
static char data[512];
static char tmpdir[] = "/tmp/lm_cli_XXXXXX";

typedef struct result {
    int code; /* exit status, or -1 when it did not exit normally (a crash) */
    char *out, *err;
} result;

static char *path_in(const char *dir, const char *name) {
    static char bufs[8][1024];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}
#define D(name) path_in(data, name)
#define T(name) path_in(tmpdir, name)

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = calloc((size_t)n + 1, 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) b[0] = 0;
    fclose(f);
    return b;
}

/* Runs the command with the arguments (NULL-terminated) and captures its output. */
static result vrun(const char *first, va_list ap) {
    const char *argv[64] = {cli, first};
    int n = first ? 2 : 1;
    const char *a;
    while (first && n < 63 && (a = va_arg(ap, const char *))) argv[n++] = a;
    argv[n] = NULL;
    char out[1100], err[1100];
    snprintf(out, sizeof out, "%s", T("stdout"));
    snprintf(err, sizeof err, "%s", T("stderr"));
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(out, "w", stdout) || !freopen(err, "w", stderr)) _exit(127);
        execv(cli, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    result r = {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
    return r;
}

static result run(const char *first, ...) {
    va_list ap;
    va_start(ap, first);
    result r = vrun(first, ap);
    va_end(ap);
    return r;
}

static void done(result *r) {
    free(r->out);
    free(r->err);
}

/* Runs and checks the exit code and that stdout / stderr hold the texts
 * (NULL: not checked). */
static void expect_(int line, int code, const char *out_sub, const char *err_sub, const char *first,
                    ...) {
    va_list ap;
    va_start(ap, first);
    result r = vrun(first, ap);
    va_end(ap);
    CHECK_MSG(r.code == code, "line %d: exit %d, wanted %d; stderr: %s", line, r.code, code, r.err);
    if (out_sub)
        CHECK_MSG(strstr(r.out, out_sub), "line %d: stdout lacks \"%s\": %s", line, out_sub, r.out);
    if (err_sub)
        CHECK_MSG(strstr(r.err, err_sub), "line %d: stderr lacks \"%s\": %s", line, err_sub, r.err);
    done(&r);
}
#define EXPECT(code, out_sub, err_sub, ...)                                                        \
    expect_(__LINE__, code, out_sub, err_sub, __VA_ARGS__, NULL)

static void test_help(void) {
    EXPECT(0, "usage: lamina [--version]", NULL, "--help");
    EXPECT(0, "Commands:", NULL, "help");
    EXPECT(0, "lamina 0.", NULL, "--version");
    const char *cmds[] = {"summary", "fit", "evaluate", "predict", "convert", "datasets"};
    for (int i = 0; i < 6; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: lamina %s", cmds[i]);
        EXPECT(0, want, NULL, cmds[i], "--help");
        EXPECT(0, want, NULL, cmds[i], "-h");
        EXPECT(0, want, NULL, "help", cmds[i]);
    }
    /* fit's help documents the --data forms. */
    EXPECT(0, "X.npy,Y.npy", NULL, "fit", "--help");
}

static void test_usage_errors(void) {
    expect_(__LINE__, 2, NULL, "usage: lamina", NULL);
    EXPECT(2, NULL, "lamina: error: unknown command 'bogus'", "bogus");
    EXPECT(2, NULL, "Try 'lamina --help'", "bogus");
    EXPECT(2, NULL, "lamina summary: error: give the model file", "summary");
    EXPECT(2, NULL, "unexpected argument 'b'", "summary", "a", "b");
    EXPECT(2, NULL, "lamina fit: error: give the training data with --data", "fit",
           D("model.json"));
    EXPECT(2, NULL, "unknown option '--epoch'", "fit", D("model.json"), "--epoch", "3");
    EXPECT(2, NULL, "'abc' is not a whole number", "fit", D("model.json"), "--data", "mnist",
           "--epochs", "abc");
    EXPECT(2, NULL, "0 is outside [1,", "fit", D("model.json"), "--data", "mnist", "--epochs", "0");
    EXPECT(2, NULL, "option '--batch-size' needs a value", "fit", D("model.json"), "--data",
           "mnist", "--batch-size");
    EXPECT(2, NULL, "1.5 is outside [0,", "fit", D("model.json"), "--data", "mnist",
           "--validation-split", "1.5");
    EXPECT(2, NULL, "must end in .keras", "fit", D("model.json"), "--data", "mnist", "--save",
           T("out.h5"));
    EXPECT(2, NULL, "give the model file and the input file", "predict", D("model.json"));
    EXPECT(2, NULL, "must end in .npy or .npz", "predict", D("model.json"), D("x.npy"), "-o",
           T("p.txt"));
    EXPECT(2, NULL, "must end in .keras (or .json", "convert", D("legacy.h5"), T("x.txt"));
    EXPECT(2, NULL, "give the input and output files", "convert", D("legacy.h5"));
    EXPECT(2, NULL, "unknown action 'frob'", "datasets", "frob");
    EXPECT(2, NULL, "fetch needs a data set name", "datasets", "fetch");
    EXPECT(2, NULL, "unknown data set 'cifar'", "datasets", "fetch", "cifar");
    EXPECT(2, NULL, "is not a known source", "evaluate", D("model.json"), "--data", "foo.bin");
    EXPECT(2, NULL, "has no labels: give X.npy,Y.npy", "fit", D("model.json"), "--data",
           D("x.npy"));
    EXPECT(2, NULL, "needs --y-cols", "fit", D("model.json"), "--data", D("data.csv"));
    /* A model without compile_config needs --loss; unknown names are refused. */
    EXPECT(2, NULL, "has no compile_config: give --loss", "fit", D("model_nocompile.json"),
           "--data", "mnist");
    EXPECT(2, NULL, "unknown loss 'hinge'", "fit", D("model.json"), "--data", "mnist", "--loss",
           "hinge");
    EXPECT(2, NULL, "unknown optimizer 'lion'", "fit", D("model.json"), "--data", "mnist",
           "--optimizer", "lion");
    EXPECT(2, NULL, "unknown metric 'f1'", "fit", D("model.json"), "--data", "mnist", "--metrics",
           "accuracy,f1");
}

static void test_bad_files(void) {
    EXPECT(1, NULL, "/nonexistent/m.keras", "summary", "/nonexistent/m.keras");
    EXPECT(1, NULL, "lamina summary: error:", "summary", "/nonexistent/m.keras");
    /* Text that is neither JSON nor a model file, and broken JSON. */
    FILE *f = fopen(T("junk.keras"), "w");
    fputs("not a model\n", f);
    fclose(f);
    f = fopen(T("broken.json"), "w");
    fputs("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [", f);
    fclose(f);
    EXPECT(1, NULL, "lamina summary: error:", "summary", T("junk.keras"));
    EXPECT(1, NULL, "lamina summary: error:", "summary", T("broken.json"));
    /* A layer Lamina lacks is named. */
    EXPECT(1, NULL, "LeakyReLU", "summary", D("unsupported.keras"));
    EXPECT(1, NULL, "LeakyReLU", "convert", D("unsupported.keras"), T("u.keras"));
    CHECK(access(T("u.keras"), F_OK) != 0);
    /* Missing and malformed data. */
    EXPECT(1, NULL, "/nonexistent/x.npy", "predict", D("model.json"), "/nonexistent/x.npy");
    char spec[2100]; /* the x "file" is the JSON: not an .npy */
    snprintf(spec, sizeof spec, "%s,%s", D("model.json"), D("y.npy"));
    EXPECT(1, NULL, "bad magic", "evaluate", D("model.json"), "--data", spec);
    EXPECT(1, NULL, "has no array 'y'", "fit", D("model.json"), "--data", D("x_only.npz"));
    EXPECT(1, NULL, "no column 'nope'", "fit", D("model.json"), "--data", D("data.csv"), "--y-cols",
           "nope");
    /* Inputs that do not fit the model: the shapes are named. */
    EXPECT(1, NULL, "the model takes (None, 4)", "predict", D("model.json"), D("y.npy"));
}

static bool tensors_equal(const lm_tensor *a, const lm_tensor *b, double tol) {
    if (!a || !b || lm_tensor_numel(a) != lm_tensor_numel(b)) return false;
    for (int64_t i = 0; i < lm_tensor_numel(a); i++) {
        double x = lm_tensor_get(a, i), y = lm_tensor_get(b, i);
        if (!(fabs(x - y) <= tol * (fabs(y) > 1 ? fabs(y) : 1))) return false;
    }
    return true;
}

static void test_summary(void) {
    EXPECT(0, "Model: \"sequential\"", NULL, "summary", D("model.json"));
    EXPECT(0, "Total params: 67", NULL, "summary", D("model.json"));
    EXPECT(0, "Total params: 67", NULL, "summary", D("legacy.h5"));
}

/* fit -> .keras; summary, evaluate, predict read it; a second fit resumes. */
static void test_fit_and_use(void) {
    char spec[2100];
    snprintf(spec, sizeof spec, "%s,%s", D("x.npy"), D("y.npy"));
    result r = run("fit", D("model.json"), "--data", spec, "--epochs", "3", "--batch-size", "16",
                   "--seed", "3", "--save", T("out.keras"), NULL);
    CHECK_MSG(r.code == 0, "fit: %s", r.err);
    CHECK_CONTAINS(r.out, "Epoch 1/3");
    CHECK_CONTAINS(r.out, "Epoch 3/3");
    CHECK_CONTAINS(r.out, "4/4");
    CHECK_CONTAINS(r.out, "accuracy: ");
    CHECK_CONTAINS(r.out, "loss: ");
    CHECK(r.err[0] == 0);
    done(&r);
    /* Keras counts the optimizer's variables once it has been built: Adam's
     * m and v for 67 weights, its iterations and learning rate. */
    EXPECT(0, "Trainable params: 67", NULL, "summary", T("out.keras"));
    EXPECT(0, "Optimizer params: 136", NULL, "summary", T("out.keras"));
    r = run("evaluate", T("out.keras"), "--data", spec, "--verbose", "0", NULL);
    CHECK_MSG(r.code == 0, "evaluate: %s", r.err);
    CHECK(!strncmp(r.out, "loss: ", 6));
    CHECK_CONTAINS(r.out, "\naccuracy: ");
    double loss = -1, acc = -1;
    sscanf(r.out, "loss: %lf\naccuracy: %lf", &loss, &acc);
    done(&r);

    /* predict's file equals lm_predict of the saved model; evaluate agrees
     * with lm_evaluate. */
    EXPECT(0, NULL, NULL, "predict", T("out.keras"), D("x.npy"), "-o", T("pred.npy"), "--verbose",
           "0");
    lm_model *m = lm_load(T("out.keras"));
    CHECK_MSG(m, "lm_load: %s", lm_saving_error());
    lm_ctx *ctx = lm_ctx_new();
    lm_tensor *x = lm_npy_load(ctx, D("x.npy")), *y = lm_npy_load(ctx, D("y.npy"));
    lm_tensor *got = lm_npy_load(ctx, T("pred.npy"));
    if (m && x && y) {
        lm_tensor *want = lm_predict(m, x, .verbose = LM_SILENT);
        CHECK(got && lm_tensor_dtype(got) == LM_F32 && lm_tensor_dim(got, 0) == 60 &&
              lm_tensor_dim(got, 1) == 3);
        CHECK(tensors_equal(got, want, 0));
        double ev[2] = {0};
        CHECK(lm_evaluate(m, x, y, ev, 2, .verbose = LM_SILENT) == 2);
        CHECK_NEAR(loss, ev[0], 1e-6);
        CHECK_NEAR(acc, ev[1], 1e-6);
        CHECK(lm_optimizer_iterations(lm_model_optimizer(m)) == 12); /* 3 epochs of 4 steps */
        lm_tensor_free(want);
    }
    lm_model_free(m);
    /* Without -o: one line per sample on stdout. */
    r = run("predict", T("out.keras"), D("x.npy"), NULL);
    CHECK(r.code == 0);
    int lines = 0;
    for (const char *p = r.out; *p; p++) lines += *p == '\n';
    CHECK(lines == 60);
    done(&r);
    /* .npz output holds output_0. */
    EXPECT(0, NULL, NULL, "predict", T("out.keras"), D("data.npz"), "-o", T("pred.npz"),
           "--verbose", "0");
    lm_npz *z = lm_npz_load(ctx, T("pred.npz"));
    CHECK(z && tensors_equal(lm_npz_get(z, "output_0"), got, 0));
    lm_npz_free(z);

    /* Training resumes from the saved optimizer state, from NPZ and CSV data. */
    EXPECT(0, NULL, NULL, "fit", T("out.keras"), "--data", D("data.npz"), "--batch-size", "16",
           "--verbose", "0", "--save", T("out2.keras"));
    EXPECT(0, "Epoch 2/2", NULL, "fit", T("out2.keras"), "--data", D("data.csv"), "--y-cols",
           "label", "--batch-size", "16", "--epochs", "2", "--verbose", "2", "--save",
           T("out3.keras"));
    m = lm_load(T("out3.keras"));
    CHECK(m && lm_optimizer_iterations(lm_model_optimizer(m)) == 12 + 4 + 8);
    lm_model_free(m);
    lm_tensor_free(got);
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_ctx_free(ctx);
}

/* Compile options from the command line; labels one-hot encoded for
 * categorical cross-entropy; --validation-split adds val_ keys. */
static void test_compile_options(void) {
    char spec[2100];
    snprintf(spec, sizeof spec, "%s,%s", D("x.npy"), D("y.npy"));
    result r =
        run("fit", D("model_nocompile.json"), "--data", spec, "--loss", "categorical_crossentropy",
            "--optimizer", "sgd", "--learning-rate", "0.1", "--metrics", "accuracy,mae",
            "--validation-split", "0.25", "--save", T("cc.keras"), NULL);
    CHECK_MSG(r.code == 0, "fit: %s", r.err);
    CHECK_CONTAINS(r.out, "val_loss: ");
    CHECK_CONTAINS(r.out, "val_mae: "); /* Keras names a metric as it was given */
    CHECK_CONTAINS(r.out, "2/2");       /* 45 training samples in batches of 32 */
    done(&r);
    lm_model *m = lm_load(T("cc.keras"));
    CHECK(m && !strcmp(lm_optimizer_name(lm_model_optimizer(m)), "sgd"));
    CHECK(m && fabs(lm_optimizer_learning_rate(lm_model_optimizer(m)) - 0.1) < 1e-7);
    lm_model_free(m);
    /* A CSV column chosen by index; --x-cols by name. */
    EXPECT(0, "loss: ", NULL, "evaluate", T("cc.keras"), "--data", D("data.csv"), "--x-cols",
           "f0,f1,f2,f3", "--y-cols", "4", "--verbose", "0");
}

/* convert: a legacy Keras 2 .h5 file becomes a .keras file predicting what
 * Keras predicted; and a config JSON round trip. */
static void test_convert(void) {
    EXPECT(0, NULL, NULL, "convert", D("legacy.h5"), T("conv.keras"));
    EXPECT(0, NULL, NULL, "predict", T("conv.keras"), D("x.npy"), "-o", T("conv.npy"));
    lm_ctx *ctx = lm_ctx_new();
    lm_tensor *got = lm_npy_load(ctx, T("conv.npy")),
              *want = lm_npy_load(ctx, D("legacy_pred.npy"));
    CHECK(tensors_equal(got, want, 1e-5));
    lm_tensor_free(got);
    lm_tensor_free(want);
    lm_ctx_free(ctx);
    EXPECT(0, NULL, NULL, "convert", T("conv.keras"), T("conv.json"));
    EXPECT(0, "Total params: 67", NULL, "summary", T("conv.json"));
}

/* A gzip'd IDX file of uint8: magic, then n dims, big-endian. */
static void write_idx(const char *path, int ndim, const int *dims, const unsigned char *p) {
    gzFile f = gzopen(path, "wb");
    unsigned char hdr[16] = {0, 0, 8, (unsigned char)ndim};
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        hdr[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        hdr[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        hdr[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        hdr[7 + 4 * i] = (unsigned char)dims[i];
        n *= (size_t)dims[i];
    }
    gzwrite(f, hdr, (unsigned)(4 + 4 * ndim));
    gzwrite(f, p, (unsigned)n);
    gzclose(f);
}

/* --data mnist on a tiny stand-in in $LAMINA_DATA/mnist/ (the loader takes
 * any N): (28, 28) images reshaped to the model's (28, 28, 1), scaled to
 * [0, 1]; labels one-hot for categorical cross-entropy, kept as indices for
 * the sparse loss. */
static void test_mnist(void) {
    static unsigned char img[40 * 784], lab[40];
    for (int i = 0; i < 40; i++) {
        lab[i] = (unsigned char)(i % 10);
        for (int k = 0; k < 784; k++) img[i * 784 + k] = (unsigned char)((k * 7 + i * 31) % 256);
    }
    mkdir(T("mnist"), 0700);
    write_idx(T("mnist/train-images-idx3-ubyte.gz"), 3, (const int[]){30, 28, 28}, img);
    write_idx(T("mnist/train-labels-idx1-ubyte.gz"), 1, (const int[]){30}, lab);
    write_idx(T("mnist/t10k-images-idx3-ubyte.gz"), 3, (const int[]){10, 28, 28}, img + 30 * 784);
    write_idx(T("mnist/t10k-labels-idx1-ubyte.gz"), 1, (const int[]){10}, lab + 30);
    setenv("LAMINA_DATA", tmpdir, 1);
    EXPECT(0, "available in", NULL, "datasets", "list");
    EXPECT(0, "30/30", NULL, "fit", D("mnist_model.json"), "--data", "mnist", "--batch-size", "1",
           "--save", T("mnist.keras"));
    EXPECT(0, "1/1", NULL, "evaluate", T("mnist.keras"), "--data", "mnist");
    EXPECT(0, "accuracy: ", NULL, "evaluate", T("mnist.keras"), "--data", "mnist:train", "--loss",
           "sparse_categorical_crossentropy", "--verbose", "0");
    EXPECT(0, NULL, NULL, "predict", T("mnist.keras"), "mnist", "-o", T("mnist_pred.npy"));
    lm_ctx *ctx = lm_ctx_new();
    lm_tensor *p = lm_npy_load(ctx, T("mnist_pred.npy"));
    CHECK(p && lm_tensor_dim(p, 0) == 10 && lm_tensor_dim(p, 1) == 10);
    lm_tensor_free(p);
    lm_ctx_free(ctx);
    unsetenv("LAMINA_DATA");
    const char *files[] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                           "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    for (int i = 0; i < 4; i++) {
        char f[64];
        snprintf(f, sizeof f, "mnist/%s", files[i]);
        unlink(T(f));
    }
    rmdir(T("mnist"));
}

static void test_datasets(void) {
    EXPECT(0, "mnist", NULL, "datasets", "list");
    EXPECT(0, "60000 train, 10000 test", NULL, "datasets", "list");
}

static void cleanup(void) {
    const char *files[] = {"stdout",     "stderr",   "junk.keras", "broken.json", "out.keras",
                           "pred.npy",   "pred.npz", "out2.keras", "out3.keras",  "cc.keras",
                           "conv.keras", "conv.npy", "conv.json",  "mnist.keras", "mnist_pred.npy"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) unlink(T(files[i]));
    CHECK_MSG(rmdir(tmpdir) == 0, "%s holds files left behind", tmpdir);
}

int main(void) {
    const char *env = getenv("LAMINA_CLI");
    cli = env && *env ? env : LAMINA_CLI;
    const char *d = getenv("LAMINA_TEST_DATA");
    snprintf(data, sizeof data, "%s/cli", d && *d ? d : "tests/data");
    if (!mkdtemp(tmpdir)) return 1;
    RUN(test_help);
    RUN(test_usage_errors);
    RUN(test_bad_files);
    RUN(test_summary);
    RUN(test_fit_and_use);
    RUN(test_compile_options);
    RUN(test_convert);
    RUN(test_mnist);
    RUN(test_datasets);
    cleanup();
    return lmt_summary("test_cli");
}
