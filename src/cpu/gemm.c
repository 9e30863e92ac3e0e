/* SGEMM driver: Goto-style blocking with the micro-tile's vectors along N.
 *
 * Loop nest of one thread over its rectangle of C:
 *   for jc (nc columns): for pc (kc depth): pack the kc x nc block of B (stays in L2)
 *     for ic (mc rows, only when A is packed): pack A
 *       macro-kernel: for ir (mr rows: A micro-panel in L1): for jr (nr columns): tile
 * A without transpose is read in place (the micro-kernel broadcasts its scalars,
 * so packing would only copy it); so is B when its rows stream well (see
 * pack_b_needed). Threads split C into rectangles and work independently (own
 * buffers, no barriers): along N first, so that B is packed once in all. */
#include "cpu/gemm.h"
#include "cpu/gemm_kernels.h"
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

struct lm_gemm {
    lm_isa isa;
    int max_threads;
    lm_sgemm_kernels k;
    double solo_until; /* omp_get_wtime() before which to run on one thread */
    float *mem;
    size_t per_thread; /* floats: B block, then A block */
    size_t a_off;
};

/* ---- portable micro-kernel: 4 x 8, packed A and B (auto-vectorised) ---- */

#define GMR 4
#define GNR 8

static void generic_block(const lm_sgemm_block *p) {
    for (int64_t ir = 0; ir < p->m; ir += GMR) {
        int mr = p->m - ir < GMR ? (int)(p->m - ir) : GMR;
        const float *a0 = p->a + ir / GMR * p->psa;
        for (int64_t jr = 0; jr < p->n; jr += GNR) {
            int nr = p->n - jr < GNR ? (int)(p->n - jr) : GNR;
            /* Both operands packed (pack_a_nt, pack_b_nt): fixed strides let the
             * compiler keep acc in vector registers. */
            const float *restrict b = p->b + jr / GNR * p->psb, *restrict a = a0;
            float acc[GMR][GNR] = {{0}};
            for (int64_t k = 0; k < p->kc; k++, a += GMR, b += GNR)
                for (int i = 0; i < GMR; i++)
                    for (int j = 0; j < GNR; j++) acc[i][j] += a[i] * b[j];
            for (int i = 0; i < mr; i++) {
                float *c = p->c + (ir + i) * p->ldc + jr;
                for (int j = 0; j < nr; j++) {
                    float v = p->alpha * acc[i][j];
                    if (p->beta != 0.0f) v += p->beta * c[j];
                    if (p->bias) v += p->bias[jr + j];
                    if (p->relu && v < 0.0f) v = 0.0f;
                    c[j] = v;
                }
            }
        }
    }
}

static void generic_pack_b(bool tb, int64_t kc, int64_t n, const float *B, int64_t ldb,
                           float *dst) {
    for (int64_t j0 = 0; j0 < n; j0 += GNR, dst += GNR * kc)
        for (int64_t k = 0; k < kc; k++)
            for (int j = 0; j < GNR; j++)
                dst[k * GNR + j] = j0 + j >= n ? 0.0f
                                   : tb        ? B[(j0 + j) * ldb + k]
                                               : B[k * ldb + j0 + j];
}

static void generic_pack_a(bool ta, int64_t m, int64_t kc, const float *A, int64_t lda,
                           float *dst) {
    for (int64_t i0 = 0; i0 < m; i0 += GMR, dst += GMR * kc)
        for (int64_t k = 0; k < kc; k++)
            for (int i = 0; i < GMR; i++)
                dst[k * GMR + i] = i0 + i >= m ? 0.0f
                                   : ta        ? A[k * lda + i0 + i]
                                               : A[(i0 + i) * lda + k];
}

static const lm_sgemm_kernels generic_kernels = {
    .mr = GMR,
    .nr = GNR,
    .kc = 256,
    .nc = 512,
    .mc = 64,
    .vec = 4,
    .pack_a_nt = true,
    .pack_b_nt = true,
    .block = generic_block,
    .pack_b = generic_pack_b,
    .pack_a = generic_pack_a,
};

/* ---- state ---- */

/* Below this many multiply-adds per thread, starting a thread costs more than it
 * saves: an OpenMP fork-join takes ~1 us here, 2^18 multiply-adds ~2 us. */
#define MIN_WORK_PER_THREAD (1 << 18)
/* Pack B split into several N blocks once M has more row panels than this. */
#define PACK_B_PANELS 8
/* A thread of the team that starts this late was waiting for a CPU (a wake-up
 * takes well under 0.1 ms): the machine is oversubscribed, and every join would
 * wait as long for it. Run on one thread for a while, then try again. */
#define LATE_START_S 0.0005
#define SOLO_S       0.2

static int64_t cdiv(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}
static int64_t rup(int64_t a, int64_t b) {
    return cdiv(a, b) * b;
}

lm_gemm *lm_gemm_new(lm_isa isa, int max_threads) {
    lm_isa have = lm_cpu_detect();
    if (isa > have) isa = have;
    const lm_sgemm_kernels *kr = &generic_kernels;
    if (isa == LM_ISA_AVX512 && lm_sgemm_kernels_avx512.block)
        kr = &lm_sgemm_kernels_avx512;
    else if (isa >= LM_ISA_AVX2 && lm_sgemm_kernels_avx2.block)
        kr = &lm_sgemm_kernels_avx2, isa = LM_ISA_AVX2;
    else
        isa = LM_ISA_GENERIC;
    if (max_threads < 1) max_threads = 1;
    lm_gemm *G = calloc(1, sizeof *G);
    if (!G) return NULL;
    G->isa = isa;
    G->max_threads = max_threads;
    G->k = *kr;
    /* Whole 4 KiB pages per thread, so threads never share a cache line. */
    size_t bfl = (size_t)kr->kc * (size_t)rup(kr->nc, kr->nr);
    size_t afl = (size_t)kr->kc * (size_t)rup(kr->mc, kr->mr);
    G->a_off = (size_t)rup((int64_t)bfl, 1024);
    G->per_thread = G->a_off + (size_t)rup((int64_t)afl, 1024);
    size_t bytes = G->per_thread * sizeof(float) * (size_t)max_threads;
    G->mem = aligned_alloc(4096, bytes);
    if (!G->mem) {
        free(G);
        return NULL;
    }
    return G;
}

void lm_gemm_free(lm_gemm *G) {
    if (!G) return;
    free(G->mem);
    free(G);
}

lm_isa lm_gemm_isa(const lm_gemm *G) {
    return G->isa;
}

/* ---- driver ---- */

typedef struct prob {
    bool ta, tb;
    int64_t M, N, K;
    float alpha, beta;
    const float *A, *B;
    int64_t lda, ldb, ldc;
    float *C;
    const float *bias;
    bool relu;
} prob;

/* Would a kc x nc block of B read in place, rows ldb floats apart, crowd the
 * L2 sets (1 MiB, 16-way: 1024 sets of 64 B)? Rows a multiple of 4 KiB apart
 * start in few distinct sets; more than half the ways taken means thrashing
 * once A and C pass through too. */
static bool b_aliases(int64_t ldb, int64_t nc, int64_t kc) {
    const int64_t bytes = ldb * (int64_t)sizeof(float);
    if (bytes % 64) return false; /* rows drift across the sets */
    int64_t step = bytes / 64 % 1024, g = 1;
    if (step == 0) step = 1024;
    while (step % (2 * g) == 0 && g < 1024) g *= 2;
    const int64_t starts = 1024 / g, row_lines = cdiv(nc * (int64_t)sizeof(float), 64);
    const int64_t sets = starts * row_lines < 1024 ? starts * row_lines : 1024;
    return kc * row_lines > 8 * sets;
}

/* B read in place costs nothing up front and, for contiguous rows, streams as
 * well as a packed copy (measured 5-10% faster up to 512 x 512 blocks: no copy
 * pass). Pack when the kernel needs it (tb), when in-place rows would alias in
 * L2, or when a large M splits N into several strided blocks. */
static bool pack_b_needed(const lm_gemm *G, const prob *p, int64_t m, int64_t n, int64_t kcb,
                          int64_t ncb) {
    const lm_sgemm_kernels *kr = &G->k;
    return p->tb || kr->pack_b_nt || b_aliases(p->ldb, ncb, kcb) ||
           (n > ncb && m > PACK_B_PANELS * kr->mr);
}

/* C[m0:m0+m, n0:n0+n] on one thread, with thread tid's buffers. */
static void run_rect(const lm_gemm *G, int tid, const prob *p, int64_t m0, int64_t m, int64_t n0,
                     int64_t n) {
    const lm_sgemm_kernels *kr = &G->k;
    const int64_t K = p->K, mr = kr->mr, nr = kr->nr;
    /* Even blocks: 784 = 4 x 196 beats 3 x 256 + 16. (Small sizes skip the divisions.) */
    const int64_t kcb = K <= kr->kc ? K : cdiv(K, cdiv(K, kr->kc));
    const int64_t ncb = n <= kr->nc ? n : rup(cdiv(n, cdiv(n, kr->nc)), nr);
    const bool packb = pack_b_needed(G, p, m, n, kcb, ncb), packa = p->ta || kr->pack_a_nt;
    const int64_t mcb = !packa || m <= kr->mc ? m : rup(cdiv(m, cdiv(m, kr->mc)), mr);
    float *bbuf = G->mem + (size_t)tid * G->per_thread, *abuf = bbuf + G->a_off;
    lm_sgemm_block blk;
    blk.alpha = p->alpha;
    blk.ldc = p->ldc;
    for (int64_t jc = 0; jc < n; jc += ncb) {
        const int64_t nc = n - jc < ncb ? n - jc : ncb, j = n0 + jc;
        blk.n = nc;
        for (int64_t pc = 0; pc < K; pc += kcb) {
            const int64_t kc = K - pc < kcb ? K - pc : kcb;
            const float *Bop = p->tb ? p->B + j * p->ldb + pc : p->B + pc * p->ldb + j;
            blk.kc = kc;
            if (packb) {
                kr->pack_b(p->tb, kc, nc, Bop, p->ldb, bbuf);
                blk.b = bbuf, blk.rsb = nr, blk.psb = nr * kc;
            } else {
                blk.b = Bop, blk.rsb = p->ldb, blk.psb = nr;
            }
            blk.prefetch_b = packb;
            /* Later K blocks accumulate; bias and activation once, on the last. */
            const bool last = pc + kc == K;
            blk.beta = pc == 0 ? p->beta : 1.0f;
            blk.bias = last && p->bias ? p->bias + j : NULL;
            blk.relu = last && p->relu;
            for (int64_t ic = 0; ic < m; ic += mcb) {
                const int64_t mc = m - ic < mcb ? m - ic : mcb, i = m0 + ic;
                const float *Aop = p->ta ? p->A + pc * p->lda + i : p->A + i * p->lda + pc;
                blk.m = mc;
                if (packa) {
                    kr->pack_a(p->ta, mc, kc, Aop, p->lda, abuf);
                    blk.a = abuf, blk.rsa = 1, blk.csa = mr, blk.psa = mr * kc;
                } else {
                    blk.a = Aop, blk.rsa = p->lda, blk.csa = 1, blk.psa = mr * p->lda;
                }
                blk.c = p->C + i * p->ldc + j;
                kr->block(&blk);
            }
        }
    }
}

/* K == 0 or alpha == 0: C = beta * C, then the epilogue. */
static void scale_only(const prob *p) {
    for (int64_t i = 0; i < p->M; i++) {
        float *c = p->C + i * p->ldc;
        for (int64_t j = 0; j < p->N; j++) {
            float v = p->beta == 0.0f ? 0.0f : p->beta * c[j];
            if (p->bias) v += p->bias[j];
            if (p->relu && v < 0.0f) v = 0.0f;
            c[j] = v;
        }
    }
}

#ifdef _OPENMP
/* For a caller thread without a buffer of its own (thread number >= max_threads). */
static void naive(const prob *p) {
    for (int64_t i = 0; i < p->M; i++)
        for (int64_t j = 0; j < p->N; j++) {
            float s = 0.0f;
            for (int64_t k = 0; k < p->K; k++)
                s += (p->ta ? p->A[k * p->lda + i] : p->A[i * p->lda + k]) *
                     (p->tb ? p->B[j * p->ldb + k] : p->B[k * p->ldb + j]);
            float *c = p->C + i * p->ldc + j;
            float v = p->alpha * s + (p->beta == 0.0f ? 0.0f : p->beta * *c);
            if (p->bias) v += p->bias[j];
            if (p->relu && v < 0.0f) v = 0.0f;
            *c = v;
        }
}

/* Rectangle grid tm x tn for T threads: least work on the busiest thread (tiles
 * rounded up to whole micro-panels, plus its packing), ties to splitting N. */
static void pick_grid(const lm_sgemm_kernels *kr, int T, int64_t M, int64_t N, int *tm, int *tn) {
    const int64_t mp = cdiv(M, kr->mr), nu = cdiv(N, kr->vec);
    int64_t best = -1;
    *tm = *tn = 1;
    for (int d = T; d >= 1; d--) {
        if (T % d) continue;
        int64_t a = T / d;
        if (a > mp || d > nu) continue;
        int64_t rows = cdiv(mp, a) * kr->mr, cols = cdiv(nu, d) * kr->vec;
        int64_t cost = rows * cols + 2 * (rows + cols);
        if (best < 0 || cost < best) best = cost, *tm = (int)a, *tn = d;
    }
}
#endif

void lm_sgemm(lm_gemm *G, int nthreads, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
              float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
              float *C, int64_t ldc, const lm_gemm_epilogue *ep) {
    if (M <= 0 || N <= 0) return;
    const prob p = {.ta = ta,
                    .tb = tb,
                    .M = M,
                    .N = N,
                    .K = K,
                    .alpha = alpha,
                    .beta = beta,
                    .A = A,
                    .B = B,
                    .lda = lda,
                    .ldb = ldb,
                    .ldc = ldc,
                    .C = C,
                    .bias = ep ? ep->bias : NULL,
                    .relu = ep && ep->act == LM_GEMM_RELU};
    if (K <= 0 || alpha == 0.0f) {
        scale_only(&p);
        return;
    }
    int nt = nthreads < 1 ? 1 : nthreads > G->max_threads ? G->max_threads : nthreads;
#ifdef _OPENMP
    if (omp_in_parallel()) {
        /* Called from a team: stay on this thread, with this thread's buffers. */
        int tid = omp_get_thread_num();
        if (tid < G->max_threads)
            run_rect(G, tid, &p, 0, M, 0, N);
        else
            naive(&p);
        return;
    }
#endif
    const double work = (double)M * (double)N * (double)K;
    if (work < (double)nt * MIN_WORK_PER_THREAD) nt = (int)(work / MIN_WORK_PER_THREAD);
#ifdef _OPENMP
    const double t0 = nt > 1 ? omp_get_wtime() : 0.0;
    if (nt > 1 && t0 < G->solo_until) nt = 1;
#endif
    if (nt <= 1) {
        run_rect(G, 0, &p, 0, M, 0, N);
        return;
    }
#ifdef _OPENMP
    int late = 0;
#pragma omp parallel num_threads(nt)
    {
        if (omp_get_wtime() - t0 > LATE_START_S) {
#pragma omp atomic write
            late = 1;
        }
        const lm_sgemm_kernels *kr = &G->k;
        int t = omp_get_thread_num(), T = omp_get_num_threads(), tm, tn;
        pick_grid(kr, T, M, N, &tm, &tn);
        if (t < tm * tn) {
            const int64_t mp = cdiv(M, kr->mr), nu = cdiv(N, kr->vec);
            const int ti = t / tn, tj = t % tn;
            int64_t m0 = mp * ti / tm * kr->mr, m1 = mp * (ti + 1) / tm * kr->mr;
            int64_t n0 = nu * tj / tn * kr->vec, n1 = nu * (tj + 1) / tn * kr->vec;
            if (m1 > M) m1 = M;
            if (n1 > N) n1 = N;
            if (m1 > m0 && n1 > n0) run_rect(G, t, &p, m0, m1 - m0, n0, n1 - n0);
        }
    }
    if (late) G->solo_until = omp_get_wtime() + SOLO_S;
#else
    run_rect(G, 0, &p, 0, M, 0, N);
#endif
}
