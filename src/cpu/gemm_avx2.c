/* AVX2 + FMA SGEMM kernels: a 6 x 16 micro-tile (12 ymm accumulators, 2 B
 * vectors, one broadcast: 15 of 16 registers), plus the packing routines. Only
 * called once the CPU is known to support AVX2 and FMA. */
#include "cpu/gemm_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <math.h>

#define MR      6
#define NR      16
#define PF_ROWS 8

#define INLINE static inline __attribute__((always_inline))

static const int32_t mask_src[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* First n (0..8) lanes set. */
INLINE __m256i lanes(int n) {
    return _mm256_loadu_si256((const __m256i *)(mask_src + 8 - n));
}

/* Epilogue, chosen once per tile (as in the AVX-512 kernels): plain store,
 * bias and activation, or everything. */
enum { EPI_STORE, EPI_BIAS_ACT, EPI_FULL };

/* One vector of C; with msk only the lanes in ml are read and written. bias:
 * this vector's bias (zeros if none); lo: relu's floor (0) or -inf. */
INLINE void store_vec(const int MODE, const bool msk, float *c, __m256 r, __m256i ml, __m256 va,
                      __m256 vb, bool beta_nz, __m256 bias, __m256 lo) {
    if (MODE == EPI_FULL) {
        r = _mm256_mul_ps(r, va);
        if (beta_nz)
            r = _mm256_fmadd_ps(vb, msk ? _mm256_maskload_ps(c, ml) : _mm256_loadu_ps(c), r);
    }
    if (MODE != EPI_STORE) r = _mm256_max_ps(lo, _mm256_add_ps(r, bias));
    if (msk)
        _mm256_maskstore_ps(c, ml, r);
    else
        _mm256_storeu_ps(c, r);
}

/* Named accumulators, not an array, so that they stay in registers. */
#define ROW_DECL(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = c##i##0
#define ROW_FMA(i)                                                                                 \
    do {                                                                                           \
        if (MRc > i) {                                                                             \
            __m256 ai = _mm256_broadcast_ss(APACK ? a + i : (i < 3 ? a0 : a3) + (i % 3) * rsa);    \
            c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);                                            \
            if (NV > 1) c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);                                \
        }                                                                                          \
    } while (0)
#define ROW_STORE(MODE, i)                                                                         \
    do {                                                                                           \
        if (MRc > i) {                                                                             \
            store_vec(MODE, EDGE &&NV == 1, c + i * ldc, c##i##0, ml, va, vb, beta != 0.0f, bias0, \
                      lo);                                                                         \
            if (NV > 1)                                                                            \
                store_vec(MODE, EDGE, c + i * ldc + 8, c##i##1, ml, va, vb, beta != 0.0f, bias1,   \
                          lo);                                                                     \
        }                                                                                          \
    } while (0)
#define TILE_STORE(MODE)                                                                           \
    do {                                                                                           \
        ROW_STORE(MODE, 0);                                                                        \
        ROW_STORE(MODE, 1);                                                                        \
        ROW_STORE(MODE, 2);                                                                        \
        ROW_STORE(MODE, 3);                                                                        \
        ROW_STORE(MODE, 4);                                                                        \
        ROW_STORE(MODE, 5);                                                                        \
    } while (0)

/* C tile (MRc x up to 8*NV) = alpha * a @ b + ... EDGE: the last vector holds
 * fewer than 8 columns and is read and written through mask ml (never past
 * column n). APACK: a is a packed micro-panel (a[k * MR + i]); else a[i * rsa + k]. */
INLINE void tile(const int MRc, const int NV, const bool EDGE, const bool APACK, int64_t kc,
                 const float *a, int64_t rsa, const float *b, int64_t rsb, __m256i ml, float *c,
                 int64_t ldc, float alpha, float beta, const float *bias, bool relu) {
    const float *a0 = a, *a3 = a + 3 * rsa;
    ROW_DECL(0);
    ROW_DECL(1);
    ROW_DECL(2);
    ROW_DECL(3);
    ROW_DECL(4);
    ROW_DECL(5);
    for (int i = 0; i < MRc; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0, b1 = _mm256_setzero_ps();
        if (NV == 1) {
            b0 = EDGE ? _mm256_maskload_ps(b, ml) : _mm256_loadu_ps(b);
        } else {
            b0 = _mm256_loadu_ps(b);
            b1 = EDGE ? _mm256_maskload_ps(b + 8, ml) : _mm256_loadu_ps(b + 8);
        }
        _mm_prefetch((const char *)(b + PF_ROWS * rsb), _MM_HINT_T0);
        ROW_FMA(0);
        ROW_FMA(1);
        ROW_FMA(2);
        ROW_FMA(3);
        ROW_FMA(4);
        ROW_FMA(5);
        if (APACK)
            a += MR;
        else
            a0++, a3++;
        b += rsb;
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    const __m256 lo = relu ? _mm256_setzero_ps() : _mm256_set1_ps(-INFINITY);
    __m256 bias0 = _mm256_setzero_ps(), bias1 = bias0;
    if (bias) {
        if (NV == 1) {
            bias0 = EDGE ? _mm256_maskload_ps(bias, ml) : _mm256_loadu_ps(bias);
        } else {
            bias0 = _mm256_loadu_ps(bias);
            bias1 = EDGE ? _mm256_maskload_ps(bias + 8, ml) : _mm256_loadu_ps(bias + 8);
        }
    }
    if (alpha != 1.0f || beta != 0.0f)
        TILE_STORE(EPI_FULL);
    else if (bias || relu)
        TILE_STORE(EPI_BIAS_ACT);
    else
        TILE_STORE(EPI_STORE);
}

#define TILE_ARGS kc, a, rsa, b, rsb, ml, c, ldc, alpha, beta, bias, relu
#define TILE_FN(M_, V_, E_, P_)                                                                    \
    static void tile_##M_##x##V_##E_##P_(int64_t kc, const float *a, int64_t rsa, const float *b,  \
                                         int64_t rsb, __m256i ml, float *c, int64_t ldc,           \
                                         float alpha, float beta, const float *bias, bool relu) {  \
        tile(M_, V_, E_, P_, TILE_ARGS);                                                           \
    }
#define TILE_ROW(M_, P_)                                                                           \
    TILE_FN(M_, 1, 0, P_) TILE_FN(M_, 2, 0, P_) TILE_FN(M_, 1, 1, P_) TILE_FN(M_, 2, 1, P_)
#define TILE_ALL(P_)                                                                               \
    TILE_ROW(1, P_) TILE_ROW(2, P_) TILE_ROW(3, P_) TILE_ROW(4, P_) TILE_ROW(5, P_) TILE_ROW(6, P_)
TILE_ALL(0)
TILE_ALL(1)

typedef void (*tile_fn)(int64_t, const float *, int64_t, const float *, int64_t, __m256i, float *,
                        int64_t, float, float, const float *, bool);
#define TILE_PTRS(M_, P_)                                                                          \
    {                                                                                              \
        {tile_##M_##x10##P_, tile_##M_##x20##P_}, {                                                \
            tile_##M_##x11##P_, tile_##M_##x21##P_                                                 \
        }                                                                                          \
    }
#define TILE_PTRS_ALL(P_)                                                                          \
    {                                                                                              \
        TILE_PTRS(1, P_), TILE_PTRS(2, P_), TILE_PTRS(3, P_), TILE_PTRS(4, P_), TILE_PTRS(5, P_),  \
            TILE_PTRS(6, P_)                                                                       \
    }
/* [packed A][rows - 1][edge][vectors - 1] */
static const tile_fn tiles[2][MR][2][2] = {TILE_PTRS_ALL(0), TILE_PTRS_ALL(1)};

static void block(const lm_sgemm_block *p) {
    /* A is either packed (csa == MR) or read in place (csa == 1). */
    const int packed = p->csa != 1;
    for (int64_t ir = 0; ir < p->m;) {
        int mr = p->m - ir < MR ? (int)(p->m - ir) : MR;
        int64_t left = p->m - ir;
        if (!packed && left > MR && left < MR + 4) mr = (int)(left + 1) / 2;
        const float *a = packed ? p->a + ir / MR * p->psa : p->a + ir * p->rsa;
        for (int64_t jr = 0; jr < p->n; jr += NR) {
            int nr = p->n - jr < NR ? (int)(p->n - jr) : NR;
            int nv = (nr + 7) / 8, edge = nr % 8 != 0;
            tiles[packed][mr - 1][edge][nv - 1](p->kc, a, p->rsa, p->b + jr / NR * p->psb, p->rsb,
                                                lanes(nr - 8 * (nv - 1)), p->c + ir * p->ldc + jr,
                                                p->ldc, p->alpha, p->beta,
                                                p->bias ? p->bias + jr : NULL, p->relu);
        }
        ir += mr;
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
    const int64_t np = (m + MR - 1) / MR;
    if (ta) {
        /* As in the AVX-512 version: row k of A read once; 8-float stores overrun
         * a 6-float chunk into the next k of the same panel, except the last k. */
        for (int64_t k = 0; k < kc; k++) {
            const float *s = A + k * lda;
            if (k + PF_ROWS < kc)
                for (int64_t i = 0; i < m + 15; i += 16)
                    _mm_prefetch((const char *)(s + PF_ROWS * lda + (i < m ? i : m - 1)),
                                 _MM_HINT_T0);
            for (int64_t p = 0; p < np; p++) {
                int h = m - p * MR < MR ? (int)(m - p * MR) : MR;
                __m256 v = _mm256_maskload_ps(s + p * MR, lanes(h));
                float *d = dst + p * MR * kc + k * MR;
                if (k + 2 <= kc)
                    _mm256_storeu_ps(d, v);
                else
                    _mm256_maskstore_ps(d, lanes(MR), v);
            }
        }
        return;
    }
    for (int64_t p = 0; p < np; p++, dst += MR * kc) {
        int h = m - p * MR < MR ? (int)(m - p * MR) : MR;
        for (int64_t k = 0; k < kc; k++)
            for (int i = 0; i < MR; i++) dst[k * MR + i] = i < h ? A[(p * MR + i) * lda + k] : 0.0f;
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
