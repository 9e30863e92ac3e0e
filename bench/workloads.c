/* The Lamina side of bench/run: trains and predicts one workload with the
 * Keras API, or measures the machine's SGEMM peak, and prints one JSON line.
 *
 *   workloads --workload W1|W2|W3|W4 [--threads N] [--samples N] [--min-time S]
 *             [--phase train|predict]
 *   workloads --peak [--threads N] [--min-time S]
 *
 * The protocol is the one bench/peers/{keras_tf,pytorch}.py follow, so that the
 * three frameworks are timed alike (see docs/performance.md):
 *   1. synthetic data: N random samples of the workload's shape, labels
 *      uniform over 10 classes (W3: normal regression targets);
 *   2. warm-up: fit one epoch on the first 10 batches, predict them;
 *   3. training: fit 1 epoch on all N samples; while less than min_time has
 *      passed, one more fit of as many epochs as should pass it (usually
 *      one call); sps = samples / seconds over all these calls;
 *   4. prediction: predict all N samples (batch = the workload's batch),
 *      repeated until min_time has passed.
 * Peak memory is measured by the driver (wait4's ru_maxrss of this process);
 * VmHWM is printed as a cross-check. --phase times only one of steps 3 and 4
 * (for profiling; the other prints as 0).
 *
 * --peak times a 2048^3 single-precision product with Lamina's GEMM and, when
 * built with it, OpenBLAS, best of 3 rounds of >= min_time / 4 seconds each. */
#define _POSIX_C_SOURCE 200809L
#include "cpu/cpu.h"
#include "cpu/gemm.h"
#include <lamina/lamina.h>
#include <lamina/model.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef LAMINA_HAVE_OPENBLAS
#include <cblas.h>
void openblas_set_num_threads(int num_threads);
char *openblas_get_corename(void);
#endif

static double clock_s(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static double now(void) {
    return clock_s(CLOCK_MONOTONIC);
}
/* CPU time of all threads of the process: on a shared machine, samples per
 * CPU-second say what the code does when it has the cores to itself. */
static double cpu_now(void) {
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

/* Peak resident set of this process so far, in MB (VmHWM), or -1. */
static double vm_hwm_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    double mb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) mb = atof(line + 6) / 1024.0;
    fclose(f);
    return mb;
}

/* ---- workloads ---- */

typedef struct workload {
    const char *id;
    int batch;
    int64_t samples;  /* default sample count, the same in every framework */
    lm_shape x_shape; /* one sample */
    bool regression;  /* W3: (N, 1) float targets and MSE */
} workload;

static const workload workloads[] = {
    {"W1", 32, 32768, LM_SHAPE(100), false},
    {"W2", 32, 8192, LM_SHAPE(28, 28, 1), false},
    {"W3", 32, 16384, LM_SHAPE(10, 1), true},
    {"W4", 128, 8192, LM_SHAPE(784), false},
};

/* The Keras model of each workload, compiled with Adam(1e-3). */
static lm_status build(lm_model *m, const workload *w) {
    if (!strcmp(w->id, "W1")) {
        lm_add(m, lm_dense(64, .activation = LM_RELU, .input_shape = LM_SHAPE(100)));
        lm_add(m, lm_dense(10, .activation = LM_SOFTMAX));
    } else if (!strcmp(w->id, "W2")) {
        lm_add(m, lm_conv2d(32, LM_SIZE(3, 3), .activation = LM_RELU,
                            .input_shape = LM_SHAPE(28, 28, 1)));
        lm_add(m, lm_max_pooling2d(LM_SIZE(2, 2)));
        lm_add(m, lm_flatten());
        lm_add(m, lm_dense(128, .activation = LM_RELU));
        lm_add(m, lm_dense(10, .activation = LM_SOFTMAX));
    } else if (!strcmp(w->id, "W3")) {
        lm_add(m, lm_lstm(50, .return_sequences = true, .input_shape = LM_SHAPE(10, 1)));
        lm_add(m, lm_lstm(50));
        lm_add(m, lm_dense(1));
    } else {
        lm_add(m, lm_dense(512, .activation = LM_RELU, .input_shape = LM_SHAPE(784)));
        lm_add(m, lm_dense(512, .activation = LM_RELU));
        lm_add(m, lm_dense(10, .activation = LM_SOFTMAX));
    }
    return lm_compile(m, .optimizer = lm_adam(.learning_rate = 1e-3),
                      .loss = w->regression ? LM_MSE : LM_SPARSE_CATEGORICAL_CROSSENTROPY);
}

/* Random inputs and labels: x ~ U[0, 1) (W3: N(0, 1)), labels uniform in
 * 0..9 as int32 (W3: N(0, 1) targets of shape (N, 1)). */
static lm_status make_data(lm_ctx *ctx, const workload *w, int64_t n, lm_tensor **x,
                           lm_tensor **y) {
    lm_shape xs = w->x_shape;
    memmove(xs.dims + 1, xs.dims, (size_t)xs.ndim * sizeof xs.dims[0]);
    xs.dims[0] = n;
    xs.ndim++;
    *x = lm_tensor_new(ctx, LM_F32, xs);
    *y = w->regression ? lm_tensor_new(ctx, LM_F32, LM_SHAPE(n, 1))
                       : lm_tensor_new(ctx, LM_I32, LM_SHAPE(n));
    if (!*x || !*y) return LM_ERR_OOM;
    if (w->regression) {
        if (lm_tensor_random_normal(*x, 0, 1) || lm_tensor_random_normal(*y, 0, 1))
            return LM_ERR_ARG;
        return LM_OK;
    }
    if (lm_tensor_random_uniform(*x, 0, 1)) return LM_ERR_ARG;
    int32_t *lab = lm_tensor_data(*y);
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        lab[i] = (int32_t)((s >> 33) % 10);
    }
    return LM_OK;
}

typedef struct result {
    double train_sps, predict_sps, train_s, predict_s, train_cpu_s, predict_cpu_s, loss;
    int64_t train_samples, predict_samples;
} result;

/* Steps 2-4 of the protocol in the header comment. */
static lm_status run_workload(lm_model *m, const workload *w, lm_tensor *x, lm_tensor *y,
                              double min_time, int phases, result *r) {
    int64_t n = lm_tensor_dim(x, 0), nw = 10 * (int64_t)w->batch;
    if (nw > n) nw = n;
    lm_tensor *xw = lm_tensor_slice(x, 0, 0, nw, 1), *yw = lm_tensor_slice(y, 0, 0, nw, 1);
    lm_history *h =
        xw && yw ? lm_fit(m, xw, yw, .batch_size = w->batch, .verbose = LM_SILENT) : NULL;
    lm_tensor *p = h ? lm_predict(m, xw, .batch_size = w->batch, .verbose = LM_SILENT) : NULL;
    lm_history_free(h);
    lm_tensor_free(xw);
    lm_tensor_free(yw);
    if (!p) return LM_ERR_STATE;
    lm_tensor_free(p);

    /* One epoch, then more in one call until min_time has passed. */
    double t0 = now(), c0 = cpu_now(), el = 0;
    int epochs = 0;
    if (phases & 1) do {
            int more = epochs ? (int)ceil((min_time - el) / (el / epochs)) : 1;
            h = lm_fit(m, x, y, .epochs = more, .batch_size = w->batch, .verbose = LM_SILENT);
            if (!h) return LM_ERR_STATE;
            r->loss = lm_history_get(h, "loss", more - 1);
            lm_history_free(h);
            epochs += more;
            el = now() - t0;
        } while (el < min_time);
    r->train_s = el;
    r->train_cpu_s = cpu_now() - c0;
    r->train_samples = (int64_t)epochs * n;
    r->train_sps = epochs ? (double)r->train_samples / r->train_s : 0;

    int calls = 0;
    t0 = now();
    c0 = cpu_now();
    if (phases & 2) do {
            p = lm_predict(m, x, .batch_size = w->batch, .verbose = LM_SILENT);
            if (!p) return LM_ERR_STATE;
            lm_tensor_free(p);
            calls++;
            r->predict_s = now() - t0;
        } while (r->predict_s < min_time);
    r->predict_cpu_s = cpu_now() - c0;
    r->predict_samples = (int64_t)calls * n;
    r->predict_sps = calls ? (double)r->predict_samples / r->predict_s : 0;
    return LM_OK;
}

/* ---- SGEMM peak ---- */

typedef struct gemm_job {
    lm_gemm *G;
    int threads;
    int64_t n;
    const float *A, *B;
    float *C;
} gemm_job;

static void gemm_lamina(const gemm_job *j) {
    lm_sgemm(j->G, j->threads, false, false, j->n, j->n, j->n, 1.0f, j->A, j->n, j->B, j->n, 0.0f,
             j->C, j->n, NULL);
}

#ifdef LAMINA_HAVE_OPENBLAS
static void gemm_openblas(const gemm_job *j) {
    int n = (int)j->n;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, j->A, n, j->B, n, 0.0f,
                j->C, n);
}
#endif

/* Best GFLOP/s of 3 rounds of at least round_s seconds, after a warm-up call;
 * *per_cpu gets the best GFLOP per CPU-second of the process (per core). */
static double gemm_gflops(void (*fn)(const gemm_job *), const gemm_job *j, double round_s,
                          double *per_cpu) {
    double flops = 2.0 * (double)j->n * (double)j->n * (double)j->n, best = 0;
    *per_cpu = 0;
    fn(j);
    for (int round = 0; round < 3; round++) {
        long calls = 0;
        double t0 = now(), c0 = cpu_now(), t;
        do {
            fn(j);
            calls++;
            t = now() - t0;
        } while (t < round_s);
        double c = cpu_now() - c0;
        best = fmax(best, flops * (double)calls / t * 1e-9);
        if (c > 0) *per_cpu = fmax(*per_cpu, flops * (double)calls / c * 1e-9);
    }
    return best;
}

static int run_peak(int threads, double min_time, char **argv) {
#ifdef LAMINA_HAVE_OPENBLAS
    /* Either variable pins OpenBLAS to a lesser kernel when it loads: drop
     * both and start again, so the yardstick is OpenBLAS at its best. */
    if (getenv("OPENBLAS_CORETYPE") || getenv("OPENBLAS_L2_SIZE")) {
        unsetenv("OPENBLAS_CORETYPE");
        unsetenv("OPENBLAS_L2_SIZE");
        execv("/proc/self/exe", argv);
        fprintf(stderr, "workloads: could not re-execute without OPENBLAS_CORETYPE\n");
    }
#else
    (void)argv;
#endif
    const int64_t n = 2048;
    size_t bytes = (size_t)(n * n) * sizeof(float);
    float *A = aligned_alloc(64, bytes), *B = aligned_alloc(64, bytes),
          *C = aligned_alloc(64, bytes);
    lm_gemm *G = lm_gemm_new(lm_cpu_detect(), threads);
    if (!A || !B || !C || !G) {
        fprintf(stderr, "workloads: out of memory\n");
        free(A), free(B), free(C);
        lm_gemm_free(G);
        return 1;
    }
    for (int64_t i = 0; i < n * n; i++) {
        A[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        B[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    }
    gemm_job j = {G, threads, n, A, B, C};
    double round_s = fmax(0.1, min_time / 4);
    double lam_cpu, blas_cpu = -1;
    double lam = gemm_gflops(gemm_lamina, &j, round_s, &lam_cpu), blas = -1;
    const char *core = "none";
#ifdef LAMINA_HAVE_OPENBLAS
    openblas_set_num_threads(threads);
    blas = gemm_gflops(gemm_openblas, &j, round_s, &blas_cpu);
    core = openblas_get_corename();
#endif
    printf("{\"threads\": %d, \"n\": %lld, \"lamina_gflops\": %.2f, \"openblas_gflops\": %.2f, "
           "\"lamina_gflops_per_cpu\": %.2f, \"openblas_gflops_per_cpu\": %.2f, "
           "\"isa\": \"%s\", \"openblas_core\": \"%s\"}\n",
           threads, (long long)n, lam, blas, lam_cpu, blas_cpu, lm_isa_name(lm_gemm_isa(G)), core);
    lm_gemm_free(G);
    free(A), free(B), free(C);
    return 0;
}

static int usage(const char *prog) {
    fprintf(stderr,
            "usage: %s --workload W1|W2|W3|W4 [--threads N] [--samples N] [--min-time S]\n"
            "           [--phase train|predict]\n"
            "       %s --peak [--threads N] [--min-time S]\n",
            prog, prog);
    return 2;
}

int main(int argc, char **argv) {
    const char *id = NULL;
    int threads = 1;
    int64_t samples = 0;
    double min_time = 2.0;
    bool peak = false;
    int phases = 3; /* 1 train, 2 predict */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--workload") && i + 1 < argc)
            id = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--samples") && i + 1 < argc)
            samples = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc)
            min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--phase") && i + 1 < argc) {
            i++;
            phases = !strcmp(argv[i], "train") ? 1 : !strcmp(argv[i], "predict") ? 2 : 0;
        } else if (!strcmp(argv[i], "--peak"))
            peak = true;
        else
            return usage(argv[0]);
    }
    if (threads < 1 || samples < 0 || !(min_time >= 0) || !phases) return usage(argv[0]);
    if (peak) return run_peak(threads, min_time, argv);

    const workload *w = NULL;
    for (size_t i = 0; id && i < sizeof workloads / sizeof workloads[0]; i++)
        if (!strcmp(workloads[i].id, id)) w = &workloads[i];
    if (!w) return usage(argv[0]);
    if (!samples) samples = w->samples;

    lm_model *m = lm_sequential(NULL);
    if (!m) return 1;
    lm_ctx *ctx = lm_model_ctx(m);
    lm_ctx_seed(ctx, 1);
    lm_tensor *x = NULL, *y = NULL;
    result r = {0};
    int rc = 1;
    if (lm_ctx_set_threads(ctx, threads) || make_data(ctx, w, samples, &x, &y)) {
        fprintf(stderr, "workloads %s: %s\n", w->id, lm_ctx_error(ctx));
        goto done;
    }
    if (build(m, w) || run_workload(m, w, x, y, min_time, phases, &r)) {
        fprintf(stderr, "workloads %s: %s\n", w->id, lm_model_error(m));
        goto done;
    }
    if (!isfinite(r.loss)) {
        fprintf(stderr, "workloads %s: the loss is %g after training\n", w->id, r.loss);
        goto done;
    }
    printf("{\"workload\": \"%s\", \"framework\": \"lamina\", \"threads\": %d, \"batch\": %d, "
           "\"samples\": %lld, \"train_sps\": %.1f, \"predict_sps\": %.1f, ",
           w->id, threads, w->batch, (long long)samples, r.train_sps, r.predict_sps);
    printf("\"train_s\": %.3f, \"predict_s\": %.3f, \"train_cpu_s\": %.3f, "
           "\"predict_cpu_s\": %.3f, \"train_samples\": %lld, \"predict_samples\": %lld, ",
           r.train_s, r.predict_s, r.train_cpu_s, r.predict_cpu_s, (long long)r.train_samples,
           (long long)r.predict_samples);
    printf("\"loss\": %.6g, \"vmhwm_mb\": %.1f, \"isa\": \"%s\"}\n", r.loss, vm_hwm_mb(),
           lm_ctx_isa(ctx));
    rc = 0;
done:
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_model_free(m);
    return rc;
}
