/* lm_sgemm against a double-precision reference: edge sizes around the
 * micro-tile and block sizes, all transposes, padded strides, alpha/beta, the
 * epilogue, every ISA this CPU runs, 1 and 2 threads, and calls from inside an
 * OpenMP team. Padding holds NaN (reads past the matrix show up in C) or a
 * sentinel (writes past C are caught). */
#include "lmtest.h"
#include "cpu/cpu.h"
#include "cpu/gemm.h"
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define SENTINEL 12345.0f

static uint64_t rng_state = 88172645463325252ull;
static float frand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / (1 << 24)) * 2.0 - 1.0);
}

static lm_gemm *gemms[3];
static int n_gemms;

typedef struct gcase {
    bool ta, tb;
    int64_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    bool bias, relu;
} gcase;

/* Storage rows x cols with leading dimension ld; padding NaN. */
static float *make_mat(int64_t rows, int64_t cols, int64_t ld) {
    size_t n = (size_t)(rows > 0 ? rows : 1) * (size_t)ld;
    float *m = malloc(n * sizeof *m);
    for (size_t i = 0; i < n; i++) m[i] = NAN;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) m[r * ld + c] = frand();
    return m;
}

/* Reference in double, and a bound on its rounding error in float. */
static void reference(const gcase *g, const float *A, const float *B, const float *C0,
                      const float *bias, double *ref, double *mag) {
    for (int64_t i = 0; i < g->M; i++)
        for (int64_t j = 0; j < g->N; j++) {
            double s = 0, a = 0;
            for (int64_t k = 0; k < g->K; k++) {
                double x = g->ta ? A[k * g->lda + i] : A[i * g->lda + k];
                double y = g->tb ? B[j * g->ldb + k] : B[k * g->ldb + j];
                s += x * y;
                a += fabs(x * y);
            }
            double v = g->alpha * s, m = fabs(g->alpha) * a;
            if (g->beta != 0)
                v += g->beta * C0[i * g->ldc + j], m += fabs(g->beta * C0[i * g->ldc + j]);
            if (bias) v += bias[j], m += fabs(bias[j]);
            if (g->relu && v < 0) v = 0;
            ref[i * g->N + j] = v;
            mag[i * g->N + j] = m;
        }
}

/* Checks C (ldc) against ref; padding must still hold the sentinel. Returns failures. */
static int compare(const gcase *g, const float *C, const double *ref, const double *mag,
                   const char *what) {
    double tol = 2e-6 * (sqrt((double)g->K) + 4);
    for (int64_t i = 0; i < g->M; i++)
        for (int64_t j = 0; j < g->ldc; j++) {
            float c = C[i * g->ldc + j];
            bool ok;
            if (j >= g->N)
                ok = c == SENTINEL;
            else
                ok = fabs(c - ref[i * g->N + j]) <= tol * (mag[i * g->N + j] + 1e-3);
            if (!ok) {
                fprintf(stderr,
                        "%s: ta=%d tb=%d M=%lld N=%lld K=%lld lda=%lld ldb=%lld ldc=%lld "
                        "alpha=%g beta=%g bias=%d relu=%d: C[%lld][%lld] = %.8g, want %.8g\n",
                        what, g->ta, g->tb, (long long)g->M, (long long)g->N, (long long)g->K,
                        (long long)g->lda, (long long)g->ldb, (long long)g->ldc, g->alpha, g->beta,
                        g->bias, g->relu, (long long)i, (long long)j, c,
                        j < g->N ? ref[i * g->N + j] : SENTINEL);
                return 1;
            }
        }
    return 0;
}

/* Runs one case on every ISA with 1 and 2 threads. */
static void run_case(const gcase *g) {
    int64_t ar = g->ta ? g->K : g->M, ac = g->ta ? g->M : g->K;
    int64_t br = g->tb ? g->N : g->K, bc = g->tb ? g->K : g->N;
    float *A = make_mat(ar, ac, g->lda), *B = make_mat(br, bc, g->ldb);
    float *C0 = make_mat(g->M, g->N, g->ldc), *C = make_mat(g->M, g->N, g->ldc);
    float *bias = NULL;
    if (g->bias) {
        bias = malloc((size_t)(g->N + 1) * sizeof *bias);
        for (int64_t j = 0; j < g->N; j++) bias[j] = frand();
    }
    if (g->beta == 0)
        for (int64_t i = 0; i < g->M * g->ldc; i++) C0[i] = NAN; /* must be ignored */
    size_t rn = (size_t)(g->M * g->N > 0 ? g->M * g->N : 1);
    double *ref = malloc(rn * sizeof *ref), *mag = malloc(rn * sizeof *mag);
    reference(g, A, B, C0, bias, ref, mag);
    lm_gemm_epilogue ep = {bias, g->relu ? LM_GEMM_RELU : LM_GEMM_LINEAR};
    for (int gi = 0; gi < n_gemms; gi++)
        for (int nt = 1; nt <= 2; nt++) {
            for (int64_t i = 0; i < g->M; i++)
                for (int64_t j = 0; j < g->ldc; j++)
                    C[i * g->ldc + j] = j < g->N ? C0[i * g->ldc + j] : SENTINEL;
            lm_sgemm(gemms[gi], nt, g->ta, g->tb, g->M, g->N, g->K, g->alpha, A, g->lda, B, g->ldb,
                     g->beta, C, g->ldc, g->bias || g->relu ? &ep : NULL);
            char what[64];
            snprintf(what, sizeof what, "%s/%dT", lm_isa_name(lm_gemm_isa(gemms[gi])), nt);
            CHECK_MSG(!compare(g, C, ref, mag, what), "%s", what);
        }
    free(A), free(B), free(C0), free(C), free(bias), free(ref), free(mag);
}

static const int64_t dims[] = {0, 1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129};
#define NDIMS (int)(sizeof dims / sizeof dims[0])

static gcase make_case(int idx, bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
    static const float alphas[] = {1.0f, 0.5f, -2.0f};
    static const float betas[] = {0.0f, 1.0f, 0.3f, 0.0f};
    static const int pads[] = {0, 3, 16, 1, 0};
    gcase g = {ta, tb, M, N, K, 0, 0, 0, 0, 0, false, false};
    g.lda = (ta ? M : K) + pads[idx % 5];
    g.ldb = (tb ? K : N) + pads[(idx / 5) % 5];
    g.ldc = N + pads[(idx + 2) % 5];
    if (g.lda < 1) g.lda = 1;
    if (g.ldb < 1) g.ldb = 1;
    if (g.ldc < 1) g.ldc = 1;
    g.alpha = alphas[idx % 3];
    g.beta = betas[(idx / 3) % 4];
    g.bias = idx % 4 == 1 || idx % 4 == 3;
    g.relu = idx % 4 >= 2;
    return g;
}

/* Every M x N pair of edge sizes, K cycling through them, all transposes. */
static void test_edge_shapes(void) {
    int idx = 0;
    for (int t = 0; t < 4; t++)
        for (int mi = 0; mi < NDIMS; mi++)
            for (int ni = 0; ni < NDIMS; ni++, idx++) {
                int64_t K = dims[(mi * 5 + ni * 3 + t) % NDIMS];
                gcase g = make_case(idx, t & 1, t & 2, dims[mi], dims[ni], K);
                run_case(&g);
            }
}

/* Sizes past the blocking (several K, N and M blocks) and the model's shapes;
 * big enough for both threads to work. */
static void test_blocked_shapes(void) {
    static const int64_t shapes[][3] = {
        {150, 1100, 300}, {129, 531, 260}, {128, 512, 784}, {32, 128, 5408},
        {32, 64, 100},    {16, 50, 200},   {700, 5, 300},   {1, 700, 1000},
        {513, 33, 257},   {200, 300, 1},   {66, 1030, 31},
    };
    int idx = 7;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++, idx += 5) {
            gcase g = make_case(idx, t & 1, t & 2, shapes[s][0], shapes[s][1], shapes[s][2]);
            run_case(&g);
        }
}

/* B rows a multiple of 4 KiB apart (packed to avoid cache aliasing) and C,
 * A with large leading dimensions. */
static void test_wide_strides(void) {
    for (int t = 0; t < 4; t++) {
        gcase g = make_case(t, t & 1, t & 2, 70, 130, 300);
        g.ldb = 1024;
        g.lda = 2048 + 5;
        g.ldc = 1024;
        run_case(&g);
    }
}

static void test_alpha_zero_and_k_zero(void) {
    gcase g = make_case(1, false, false, 17, 33, 0);
    g.beta = 0.5f;
    g.bias = g.relu = true;
    run_case(&g);
    g = make_case(2, true, false, 17, 33, 40);
    g.alpha = 0.0f;
    g.beta = 0.0f;
    g.bias = true;
    run_case(&g);
}

/* Independent products on the threads of one team, each with nthreads = 1 and
 * so each on its own buffers; and a team wider than max_threads. */
static void test_inside_parallel(void) {
    enum { NP = 8, M = 70, N = 90, K = 130 };
    float *A[NP], *B[NP], *C[NP];
    double *ref[NP], *mag[NP];
    gcase g[NP];
    for (int i = 0; i < NP; i++) {
        g[i] = make_case(i, i & 1, i & 2, M + i, N, K - i);
        g[i].beta = 0.0f;
        g[i].bias = g[i].relu = false;
        A[i] = make_mat(g[i].ta ? g[i].K : g[i].M, g[i].ta ? g[i].M : g[i].K, g[i].lda);
        B[i] = make_mat(g[i].tb ? g[i].N : g[i].K, g[i].tb ? g[i].K : g[i].N, g[i].ldb);
        C[i] = make_mat(g[i].M, g[i].N, g[i].ldc);
        ref[i] = malloc((size_t)(g[i].M * g[i].N) * sizeof(double));
        mag[i] = malloc((size_t)(g[i].M * g[i].N) * sizeof(double));
        reference(&g[i], A[i], B[i], NULL, NULL, ref[i], mag[i]);
    }
    for (int wide = 0; wide < 2; wide++)
        for (int gi = 0; gi < n_gemms; gi++) {
            lm_isa isa = lm_gemm_isa(gemms[gi]);
            /* wide: a team of 4 on a state with buffers for 2 (threads 2, 3 take the slow path) */
            lm_gemm *G = wide ? lm_gemm_new(isa, 2) : gemms[gi];
            for (int rep = 0; rep < 3; rep++) {
                for (int i = 0; i < NP; i++)
                    for (int64_t r = 0; r < g[i].M; r++)
                        for (int64_t c = 0; c < g[i].ldc; c++)
                            C[i][r * g[i].ldc + c] = c < g[i].N ? NAN : SENTINEL;
#ifdef _OPENMP
#pragma omp parallel for num_threads(4) schedule(dynamic, 1)
#endif
                for (int i = 0; i < NP; i++)
                    lm_sgemm(G, 1, g[i].ta, g[i].tb, g[i].M, g[i].N, g[i].K, g[i].alpha, A[i],
                             g[i].lda, B[i], g[i].ldb, 0.0f, C[i], g[i].ldc, NULL);
                for (int i = 0; i < NP; i++) {
                    char what[64];
                    snprintf(what, sizeof what, "%s/team%s", lm_isa_name(isa), wide ? "-wide" : "");
                    CHECK_MSG(!compare(&g[i], C[i], ref[i], mag[i], what), "%s", what);
                }
            }
            if (wide) lm_gemm_free(G);
        }
    for (int i = 0; i < NP; i++) free(A[i]), free(B[i]), free(C[i]), free(ref[i]), free(mag[i]);
}

static void test_isa_selection(void) {
    lm_isa best = lm_cpu_detect();
    for (int gi = 0; gi < n_gemms; gi++) CHECK(lm_gemm_isa(gemms[gi]) == (lm_isa)gi);
    CHECK(n_gemms == (int)best + 1);
    /* Asking for more than the CPU has gives the best it has. */
    lm_gemm *G = lm_gemm_new(LM_ISA_AVX512, 1);
    CHECK(G && lm_gemm_isa(G) == best);
    lm_gemm_free(G);
}

int main(void) {
    lm_isa best = lm_cpu_detect();
    for (int isa = LM_ISA_GENERIC; isa <= (int)best; isa++) {
        gemms[n_gemms] = lm_gemm_new((lm_isa)isa, 4);
        if (!gemms[n_gemms]) {
            fprintf(stderr, "lm_gemm_new failed\n");
            return 1;
        }
        n_gemms++;
    }
    fprintf(stderr, "testing isas up to %s\n", lm_isa_name(best));
    RUN(test_isa_selection);
    RUN(test_edge_shapes);
    RUN(test_blocked_shapes);
    RUN(test_wide_strides);
    RUN(test_alpha_zero_and_k_zero);
    RUN(test_inside_parallel);
    for (int i = 0; i < n_gemms; i++) lm_gemm_free(gemms[i]);
    return lmt_summary("gemm");
}
