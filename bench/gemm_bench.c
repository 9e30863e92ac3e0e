/* SGEMM throughput: Lamina against OpenBLAS (cblas_sgemm, row-major) in the same run.
 *
 *   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./build/bench/gemm_bench [--threads N] [--quick]
 *
 * OpenBLAS reads OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE when it loads, and either
 * one pins it to a lesser kernel, so when they are set the program drops both
 * and re-executes itself. Each entry: one warm-up call, then calls repeated for
 * >= 0.3 s (0.1 s with --quick), best of 3 rounds; shapes are M x K x N, op
 * says which of A, B is transposed. Rounds during which other processes took
 * CPUs the measured threads needed (per /proc/stat) are retried, up to 15 in
 * all; the count of retried rounds is shown. */
#define _POSIX_C_SOURCE 200809L
#include "cpu/cpu.h"
#include "cpu/gemm.h"
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

typedef struct shape {
    int64_t M, K, N;
    bool ta, tb;
} shape;

static const shape shapes[] = {
    {256, 256, 256, false, false},
    {512, 512, 512, false, false},
    {1024, 1024, 1024, false, false},
    {1536, 1536, 1536, false, false},
    {2048, 2048, 2048, false, false},
    {128, 784, 512, false, false},
    {32, 5408, 128, false, false},
    {32, 100, 64, false, false},
    /* backward passes: weight gradient X^T dY, input gradient dY W^T */
    {1024, 1024, 1024, true, false},
    {1024, 1024, 1024, false, true},
    {784, 128, 512, true, false},
    {128, 512, 784, false, true},
    {5408, 32, 128, true, false},
    {32, 128, 5408, false, true},
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Lets the other library's idle threads stop spinning before a measurement. */
static void settle(void) {
    struct timespec t = {0, 150 * 1000 * 1000};
    nanosleep(&t, NULL);
}

typedef struct job {
    const shape *s;
    int threads;
    lm_gemm *G;
    const float *A, *B;
    float *C;
} job;

static void run_lamina(const job *j) {
    const shape *s = j->s;
    lm_sgemm(j->G, j->threads, s->ta, s->tb, s->M, s->N, s->K, 1.0f, j->A, s->ta ? s->M : s->K,
             j->B, s->tb ? s->K : s->N, 0.0f, j->C, s->N, NULL);
}

#ifdef LAMINA_HAVE_OPENBLAS
static void run_openblas(const job *j) {
    const shape *s = j->s;
    cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans,
                (int)s->M, (int)s->N, (int)s->K, 1.0f, j->A, (int)(s->ta ? s->M : s->K), j->B,
                (int)(s->tb ? s->K : s->N), 0.0f, j->C, (int)s->N);
}
#endif

/* CPU seconds used by other processes so far (busy time of all CPUs minus
 * ours), or -1 where /proc/stat is missing. The machine may be shared: a round
 * during which others took CPUs the measured threads needed is not a
 * measurement of us. */
static double others_cpu(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    unsigned long long v[8];
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8) return -1;
    long hz = sysconf(_SC_CLK_TCK);
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    double busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)(hz > 0 ? hz : 100);
    return busy - ((double)t.tv_sec + 1e-9 * (double)t.tv_nsec);
}

static int disturbed; /* rounds rejected in the last measure() */
static long ncpus = 1;

/* Best GFLOP/s over 3 undisturbed rounds of at least min_s seconds each
 * (up to 15 tries; if none was quiet, the best disturbed one). */
static double measure(void (*fn)(const job *), const job *j, double min_s) {
    const double flops = 2.0 * (double)j->s->M * (double)j->s->N * (double)j->s->K;
    double best = 0, best_any = 0;
    int clean = 0;
    disturbed = 0;
    fn(j);
    for (int round = 0; round < 15 && clean < 3; round++) {
        long n = 0;
        double o0 = others_cpu(), t0 = now(), t;
        do {
            fn(j);
            n++;
            t = now() - t0;
        } while (t < min_s);
        double o1 = others_cpu(), g = flops * (double)n / t * 1e-9;
        if (g > best_any) best_any = g;
        /* Others may use the CPUs the threads leave free; /proc/stat counts in
         * ticks (10 ms): allow a tick or two of noise. */
        double spare = (double)(ncpus - j->threads) * t;
        if (o0 >= 0 && o1 - o0 > (spare > 0 ? spare : 0) + 0.02 + 0.03 * t) {
            disturbed++;
            continue;
        }
        clean++;
        if (g > best) best = g;
    }
    return clean ? best : best_any;
}

static float *rand_mat(size_t n) {
    float *m = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!m) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) m[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
    return m;
}

int main(int argc, char **argv) {
#ifdef LAMINA_HAVE_OPENBLAS
    if (getenv("OPENBLAS_CORETYPE") || getenv("OPENBLAS_L2_SIZE")) {
        unsetenv("OPENBLAS_CORETYPE");
        unsetenv("OPENBLAS_L2_SIZE");
        execv("/proc/self/exe", argv);
        fprintf(stderr, "warning: could not re-execute without OPENBLAS_CORETYPE/L2_SIZE\n");
    }
#endif
    ncpus = sysconf(_SC_NPROCESSORS_ONLN);
    int only_threads = 0;
    double min_s = 0.3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            only_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            min_s = 0.1;
        else {
            fprintf(stderr, "usage: %s [--threads N] [--quick]\n", argv[0]);
            return 2;
        }
    }
    int max_threads = only_threads > 2 ? only_threads : 2;
    lm_gemm *G = lm_gemm_new(lm_cpu_detect(), max_threads);
    if (!G) return 1;
    printf("Lamina isa %s", lm_isa_name(lm_gemm_isa(G)));
#ifdef LAMINA_HAVE_OPENBLAS
    printf(", OpenBLAS core %s", openblas_get_corename());
#endif
    printf(", GFLOP/s (best of 3 x %.1f s)\n\n", min_s);
    printf("%-16s %-3s %3s %10s", "M x K x N", "op", "thr", "Lamina");
#ifdef LAMINA_HAVE_OPENBLAS
    printf(" %10s %7s", "OpenBLAS", "ratio");
#endif
    printf("\n");

    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape *s = &shapes[si];
        float *A = rand_mat((size_t)(s->M * s->K)), *B = rand_mat((size_t)(s->K * s->N));
        float *C = rand_mat((size_t)(s->M * s->N));
        char name[32], op[3] = {s->ta ? 't' : 'n', s->tb ? 't' : 'n', 0};
        snprintf(name, sizeof name, "%lldx%lldx%lld", (long long)s->M, (long long)s->K,
                 (long long)s->N);
        for (int th = 1; th <= 2; th++) {
            int threads = only_threads ? only_threads : th;
            if (only_threads && th > 1) break;
            job j = {s, threads, G, A, B, C};
            settle();
            double gl = measure(run_lamina, &j, min_s);
            int dl = disturbed;
            printf("%-16s %-3s %3d %10.1f", name, op, threads, gl);
#ifdef LAMINA_HAVE_OPENBLAS
            float *C2 = rand_mat((size_t)(s->M * s->N));
            job jb = j;
            jb.C = C2;
            openblas_set_num_threads(threads);
            settle();
            double gb = measure(run_openblas, &jb, min_s);
            printf(" %10.1f %7.2f", gb, gl / gb);
            dl += disturbed;
            /* Same numbers? A wrong fast kernel would be no result. */
            double err = 0, mag = 0;
            for (int64_t i = 0; i < s->M * s->N; i++) {
                err = fmax(err, fabs((double)C[i] - (double)C2[i]));
                mag = fmax(mag, fabs((double)C2[i]));
            }
            if (err > 1e-4 * mag) printf("  MISMATCH %g", err);
            free(C2);
#endif
            if (dl) printf("  (%d disturbed rounds retried)", dl);
            printf("\n");
            fflush(stdout);
        }
        free(A), free(B), free(C);
    }
    lm_gemm_free(G);
    return 0;
}
