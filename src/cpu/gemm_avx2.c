/* AVX2 + FMA SGEMM kernels: a 6 x 16 micro-tile (12 ymm accumulators, 2 B
 * vectors, one broadcast: 15 of 16 registers), plus the packing routines. Only
 * called once the CPU is known to support AVX2 and FMA. */
#include "cpu/gemm_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#define MR      6
#define NR      16
#define PF_ROWS 8

#define INLINE static inline __attribute__((always_inline))

static const int32_t mask_src[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* First n (0..8) lanes set. */
INLINE __m256i lanes(int n) {
    return _mm256_loadu_si256((const __m256i *)(mask_src + 8 - n));
}

/* C tile (MRc x up to 8*NV) += a @ b. EDGE: the last vector holds fewer than 8
 * columns and is read and written through mask ml (never past column n). */
INLINE void tile(const int MRc, const int NV, const bool EDGE, int64_t kc, const float *a,
                 int64_t rsa, int64_t csa, const float *b, int64_t rsb, __m256i ml, float *c,
                 int64_t ldc, float alpha, float beta, const float *bias, bool relu) {
    __m256 acc[MR][2];
    for (int i = 0; i < MRc; i++)
        for (int v = 0; v < NV; v++) acc[i][v] = _mm256_setzero_ps();
    for (int i = 0; i < MRc; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        __m256 bv[2];
        for (int v = 0; v < NV; v++)
            bv[v] = EDGE && v == NV - 1 ? _mm256_maskload_ps(b + 8 * v, ml)
                                        : _mm256_loadu_ps(b + 8 * v);
        _mm_prefetch((const char *)(b + PF_ROWS * rsb), _MM_HINT_T0);
        for (int i = 0; i < MRc; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i * rsa);
            for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += csa;
        b += rsb;
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta), zero = _mm256_setzero_ps();
    for (int i = 0; i < MRc; i++) {
        float *ci = c + i * ldc;
        for (int v = 0; v < NV; v++) {
            bool msk = EDGE && v == NV - 1;
            __m256 r = _mm256_mul_ps(acc[i][v], va);
            if (beta != 0.0f)
                r = _mm256_fmadd_ps(
                    vb, msk ? _mm256_maskload_ps(ci + 8 * v, ml) : _mm256_loadu_ps(ci + 8 * v), r);
            if (bias)
                r = _mm256_add_ps(r, msk ? _mm256_maskload_ps(bias + 8 * v, ml)
                                         : _mm256_loadu_ps(bias + 8 * v));
            if (relu) r = _mm256_max_ps(r, zero);
            if (msk)
                _mm256_maskstore_ps(ci + 8 * v, ml, r);
            else
                _mm256_storeu_ps(ci + 8 * v, r);
        }
    }
}

#define TILE_ARGS kc, a, rsa, csa, b, rsb, ml, c, ldc, alpha, beta, bias, relu
#define TILE_FN(M_, V_, E_)                                                                        \
    static void tile_##M_##x##V_##E_(int64_t kc, const float *a, int64_t rsa, int64_t csa,         \
                                     const float *b, int64_t rsb, __m256i ml, float *c,            \
                                     int64_t ldc, float alpha, float beta, const float *bias,      \
                                     bool relu) {                                                  \
        tile(M_, V_, E_, TILE_ARGS);                                                               \
    }
#define TILE_ROW(M_) TILE_FN(M_, 1, 0) TILE_FN(M_, 2, 0) TILE_FN(M_, 1, 1) TILE_FN(M_, 2, 1)
TILE_ROW(1)
TILE_ROW(2)
TILE_ROW(3)
TILE_ROW(4)
TILE_ROW(5)
TILE_ROW(6)

typedef void (*tile_fn)(int64_t, const float *, int64_t, int64_t, const float *, int64_t, __m256i,
                        float *, int64_t, float, float, const float *, bool);
/* [rows - 1][edge][vectors - 1] */
#define TILE_PTRS(M_) {{tile_##M_##x10, tile_##M_##x20}, {tile_##M_##x11, tile_##M_##x21}}
static const tile_fn tiles[MR][2][2] = {TILE_PTRS(1), TILE_PTRS(2), TILE_PTRS(3),
                                        TILE_PTRS(4), TILE_PTRS(5), TILE_PTRS(6)};

static void block(const lm_sgemm_block *p) {
    for (int64_t ir = 0; ir < p->m; ir += MR) {
        int mr = p->m - ir < MR ? (int)(p->m - ir) : MR;
        const float *a = p->a + ir / MR * p->psa;
        for (int64_t jr = 0; jr < p->n; jr += NR) {
            int nr = p->n - jr < NR ? (int)(p->n - jr) : NR;
            int nv = (nr + 7) / 8, edge = nr % 8 != 0;
            tiles[mr - 1][edge][nv - 1](p->kc, a, p->rsa, p->csa, p->b + jr / NR * p->psb, p->rsb,
                                        lanes(nr - 8 * (nv - 1)), p->c + ir * p->ldc + jr, p->ldc,
                                        p->alpha, p->beta, p->bias ? p->bias + jr : NULL, p->relu);
        }
    }
}

INLINE void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int j = 0; j < 2; j++) {
        u[4 * j + 0] = _mm256_shuffle_ps(t[4 * j], t[4 * j + 2], 0x44);
        u[4 * j + 1] = _mm256_shuffle_ps(t[4 * j], t[4 * j + 2], 0xEE);
        u[4 * j + 2] = _mm256_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0x44);
        u[4 * j + 3] = _mm256_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}

static void pack_b(bool tb, int64_t kc, int64_t n, const float *B, int64_t ldb, float *dst) {
    for (int64_t j0 = 0; j0 < n; j0 += NR, dst += NR * kc) {
        int64_t w = n - j0 < NR ? n - j0 : NR;
        if (!tb) {
            const float *s = B + j0;
            if (w == NR) {
                for (int64_t k = 0; k < kc; k++, s += ldb) {
                    _mm256_store_ps(dst + k * NR, _mm256_loadu_ps(s));
                    _mm256_store_ps(dst + k * NR + 8, _mm256_loadu_ps(s + 8));
                }
            } else {
                for (int64_t k = 0; k < kc; k++, s += ldb)
                    for (int j = 0; j < NR; j++) dst[k * NR + j] = j < w ? s[j] : 0.0f;
            }
            continue;
        }
        for (int64_t k0 = 0; k0 < kc; k0 += 8) {
            int kl = kc - k0 < 8 ? (int)(kc - k0) : 8;
            __m256i km = lanes(kl);
            for (int jj = 0; jj < NR; jj += 8) {
                __m256 r[8];
                for (int i = 0; i < 8; i++)
                    r[i] = jj + i < w ? _mm256_maskload_ps(B + (j0 + jj + i) * ldb + k0, km)
                                      : _mm256_setzero_ps();
                transpose8(r);
                for (int i = 0; i < kl; i++) _mm256_store_ps(dst + (k0 + i) * NR + jj, r[i]);
            }
        }
    }
}

static void pack_a(bool ta, int64_t m, int64_t kc, const float *A, int64_t lda, float *dst) {
    for (int64_t i0 = 0; i0 < m; i0 += MR, dst += MR * kc) {
        int h = m - i0 < MR ? (int)(m - i0) : MR;
        for (int64_t k = 0; k < kc; k++)
            for (int i = 0; i < MR; i++)
                dst[k * MR + i] =
                    i >= h ? 0.0f : ta ? A[k * lda + i0 + i] : A[(i0 + i) * lda + k];
    }
}

const lm_sgemm_kernels lm_sgemm_kernels_avx2 = {
    .mr = MR,
    .nr = NR,
    .kc = 256,
    .nc = 1024,
    .mc = 96,
    .vec = 8,
    .pack_a_nt = false,
    .pack_b_nt = false,
    .block = block,
    .pack_b = pack_b,
    .pack_a = pack_a,
};

#else
const lm_sgemm_kernels lm_sgemm_kernels_avx2 = {0};
#endif
