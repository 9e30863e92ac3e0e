/* AVX-512 SGEMM kernels: a 6 x 64 micro-tile (24 zmm accumulators, 4 B vectors
 * and one broadcast per k: 10 loads per 24 FMAs, so both FMA pipes stay busy),
 * plus the packing routines. Only called once the CPU is known to support it. */
#include "cpu/gemm_kernels.h"

#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__FMA__)
#include <immintrin.h>
#include <math.h>

#define MR 6
#define NR 64
/* B rows prefetched ahead of use; 8 rows (2 KiB) cover L2 latency at ~12 cycles a row. */
#define PF_ROWS 8

#define INLINE static inline __attribute__((always_inline))
/* Unrolling by 4 lets clang hoist loads across iterations until the 24
 * accumulators spill; gcc keeps them in registers. */
#ifdef __clang__
#define K_UNROLL _Pragma("clang loop unroll(disable)")
#else
#define K_UNROLL _Pragma("GCC unroll 4")
#endif

/* Epilogue, chosen once per tile: the plain store of the common alpha = 1,
 * beta = 0 product; bias and activation only; or everything. Per-vector
 * branches cost a few percent on small products. */
enum { EPI_STORE, EPI_BIAS_ACT, EPI_FULL };

/* One vector of C. bias: this vector's bias (zeros if none); lo: relu's floor
 * (0), or -inf for none (max(lo, r) keeps a NaN r). last: masked by ml. */
INLINE void store_vec(const int MODE, const bool last, float *c, __m512 r, __mmask16 ml, __m512 va,
                      __m512 vb, bool beta_nz, __m512 bias, __m512 lo) {
    if (MODE == EPI_FULL) {
        r = _mm512_mul_ps(r, va);
        if (beta_nz)
            r = _mm512_fmadd_ps(vb, last ? _mm512_maskz_loadu_ps(ml, c) : _mm512_loadu_ps(c), r);
    }
    if (MODE != EPI_STORE) r = _mm512_max_ps(lo, _mm512_add_ps(r, bias));
    if (last)
        _mm512_mask_storeu_ps(c, ml, r);
    else
        _mm512_storeu_ps(c, r);
}

/* Accumulators are named variables, not an array: compilers then keep all 24
 * in registers (an array was spilled to the stack every iteration). */
#define ROW_DECL(i)                                                                                \
    __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = c##i##0, c##i##2 = c##i##0, c##i##3 = c##i##0
#define ROW_FMA(i)                                                                                 \
    do {                                                                                           \
        if (MRc > i) {                                                                             \
            __m512 ai = _mm512_set1_ps(APACK ? a[i] : (i < 3 ? a0 : a3)[(i % 3) * rsa]);           \
            c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);                                            \
            if (NV > 1) c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);                                \
            if (NV > 2) c##i##2 = _mm512_fmadd_ps(ai, b2, c##i##2);                                \
            if (NV > 3) c##i##3 = _mm512_fmadd_ps(ai, b3, c##i##3);                                \
        }                                                                                          \
    } while (0)
#define VEC_STORE(MODE, i, v)                                                                      \
    if (NV > v)                                                                                    \
    store_vec(MODE, NV == v + 1, c + i * ldc + 16 * v, c##i##v, ml, va, vb, beta != 0.0f, bias##v, \
              lo)
#define ROW_STORE(MODE, i)                                                                         \
    do {                                                                                           \
        if (MRc > i) {                                                                             \
            VEC_STORE(MODE, i, 0);                                                                 \
            VEC_STORE(MODE, i, 1);                                                                 \
            VEC_STORE(MODE, i, 2);                                                                 \
            VEC_STORE(MODE, i, 3);                                                                 \
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

#define K_LOOP(PF)                                                                                 \
    do {                                                                                           \
        K_UNROLL for (int64_t k = 0; k < kc; k++) {                                                \
            __m512 b0, b1 = _mm512_setzero_ps(), b2 = b1, b3 = b1;                                 \
            b0 = NV == 1 ? _mm512_maskz_loadu_ps(ml, b) : _mm512_loadu_ps(b);                      \
            if (NV == 2) b1 = _mm512_maskz_loadu_ps(ml, b + 16);                                   \
            if (NV > 2) b1 = _mm512_loadu_ps(b + 16);                                              \
            if (NV == 3) b2 = _mm512_maskz_loadu_ps(ml, b + 32);                                   \
            if (NV > 3) b2 = _mm512_loadu_ps(b + 32);                                              \
            if (NV == 4) b3 = _mm512_maskz_loadu_ps(ml, b + 48);                                   \
            if (PF)                                                                                \
                for (int v = 0; v < NV; v++)                                                       \
                    _mm_prefetch((const char *)(b + PF_ROWS * rsb + 16 * v), _MM_HINT_T0);         \
            ROW_FMA(0);                                                                            \
            ROW_FMA(1);                                                                            \
            ROW_FMA(2);                                                                            \
            ROW_FMA(3);                                                                            \
            ROW_FMA(4);                                                                            \
            ROW_FMA(5);                                                                            \
            if (APACK)                                                                             \
                a += MR;                                                                           \
            else                                                                                   \
                a0++, a3++;                                                                        \
            b += rsb;                                                                              \
        }                                                                                          \
    } while (0)

/* C tile (MRc x up to 16*NV) = alpha * a @ b + ...; the last vector of a row uses
 * mask ml, so n need not be a multiple of 16 and b is never read past column n.
 * APACK: a is a packed micro-panel (a[k * MR + i]); else a[i * rsa + k]. Both
 * forms address rows with constant offsets or (base, rsa, scale 4 / 8), which
 * keeps the loop free of integer spills. */
INLINE void tile(const int MRc, const int NV, const bool APACK, int64_t kc, const float *a,
                 int64_t rsa, const float *b, int64_t rsb, bool pfb, __mmask16 ml, float *c,
                 int64_t ldc, float alpha, float beta, const float *bias, bool relu) {
    const float *a0 = a, *a3 = a + 3 * rsa;
    ROW_DECL(0);
    ROW_DECL(1);
    ROW_DECL(2);
    ROW_DECL(3);
    ROW_DECL(4);
    ROW_DECL(5);
    /* With packed B the product is large: B streams from L2 and C from L3 or
     * memory, and prefetching both pays. Small products sit in L1, where the
     * prefetches would only take load slots. */
    if (pfb) {
        for (int i = 0; i < MRc; i++)
            for (int v = 0; v < NV; v++)
                _mm_prefetch((const char *)(c + i * ldc + 16 * v), _MM_HINT_T0);
        K_LOOP(true);
    } else {
        K_LOOP(false);
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const __m512 lo = relu ? _mm512_setzero_ps() : _mm512_set1_ps(-INFINITY);
    __m512 bias0 = _mm512_setzero_ps(), bias1 = bias0, bias2 = bias0, bias3 = bias0;
    if (bias) {
        bias0 = NV == 1 ? _mm512_maskz_loadu_ps(ml, bias) : _mm512_loadu_ps(bias);
        if (NV == 2) bias1 = _mm512_maskz_loadu_ps(ml, bias + 16);
        if (NV > 2) bias1 = _mm512_loadu_ps(bias + 16);
        if (NV == 3) bias2 = _mm512_maskz_loadu_ps(ml, bias + 32);
        if (NV > 3) bias2 = _mm512_loadu_ps(bias + 32);
        if (NV == 4) bias3 = _mm512_maskz_loadu_ps(ml, bias + 48);
    }
    if (alpha != 1.0f || beta != 0.0f)
        TILE_STORE(EPI_FULL);
    else if (bias || relu)
        TILE_STORE(EPI_BIAS_ACT);
    else
        TILE_STORE(EPI_STORE);
}

#define TILE_ARGS kc, a, rsa, b, rsb, pfb, ml, c, ldc, alpha, beta, bias, relu
#define TILE_FN(M_, V_, P_)                                                                        \
    static void tile_##M_##x##V_##P_(int64_t kc, const float *a, int64_t rsa, const float *b,      \
                                     int64_t rsb, bool pfb, __mmask16 ml, float *c, int64_t ldc,   \
                                     float alpha, float beta, const float *bias, bool relu) {      \
        tile(M_, V_, P_, TILE_ARGS);                                                               \
    }
#define TILE_ROW(M_, P_) TILE_FN(M_, 1, P_) TILE_FN(M_, 2, P_) TILE_FN(M_, 3, P_) TILE_FN(M_, 4, P_)
#define TILE_ALL(P_)                                                                               \
    TILE_ROW(1, P_) TILE_ROW(2, P_) TILE_ROW(3, P_) TILE_ROW(4, P_) TILE_ROW(5, P_) TILE_ROW(6, P_)
TILE_ALL(0)
TILE_ALL(1)

typedef void (*tile_fn)(int64_t, const float *, int64_t, const float *, int64_t, bool, __mmask16,
                        float *, int64_t, float, float, const float *, bool);
#define TILE_PTRS(M_, P_)                                                                          \
    { tile_##M_##x1##P_, tile_##M_##x2##P_, tile_##M_##x3##P_, tile_##M_##x4##P_ }
#define TILE_PTRS_ALL(P_)                                                                          \
    {                                                                                              \
        TILE_PTRS(1, P_), TILE_PTRS(2, P_), TILE_PTRS(3, P_), TILE_PTRS(4, P_), TILE_PTRS(5, P_),  \
            TILE_PTRS(6, P_)                                                                       \
    }
/* [packed A][rows - 1][vectors - 1] */
static const tile_fn tiles[2][MR][4] = {TILE_PTRS_ALL(0), TILE_PTRS_ALL(1)};

static void block(const lm_sgemm_block *p) {
    /* A is either packed (csa == MR) or read in place (csa == 1). */
    const int packed = p->csa != 1;
    for (int64_t ir = 0; ir < p->m;) {
        int mr = p->m - ir < MR ? (int)(p->m - ir) : MR;
        /* In place, a last 7..9 rows run as two tiles of 3..5 rows, not 6 + 1..3:
         * a 1- or 2-row tile has too few accumulators to hide FMA latency. */
        int64_t left = p->m - ir;
        if (!packed && left > MR && left < MR + 4) mr = (int)(left + 1) / 2;
        const float *a = packed ? p->a + ir / MR * p->psa : p->a + ir * p->rsa;
        /* In a large product, A read in place comes from L3 or memory: fetch the
         * next rows while this panel's tiles run (a packed A block is in L2). */
        if (!packed && p->prefetch_b)
            for (int64_t r = ir + mr; r < ir + mr + MR && r < p->m; r++)
                for (int64_t k = 0; k < p->kc + 15; k += 16)
                    _mm_prefetch((const char *)(p->a + r * p->rsa + (k < p->kc ? k : p->kc - 1)),
                                 _MM_HINT_T1);
        for (int64_t jr = 0; jr < p->n;) {
            int64_t cols = p->n - jr;
            int nr = cols < NR ? (int)cols : NR;
            /* B in place (not packed: any column can start a tile): a last 65..80
             * columns run as 48 + 17..32, not 64 + 1..16, since a one-vector tile
             * is bound by its loads and FMA latency (LSTM gates: 200 = 64 x 3 + 8). */
            if (!p->prefetch_b && cols > NR && cols <= NR + 16) nr = NR - 16;
            int nv = (nr + 15) / 16;
            __mmask16 ml = (__mmask16)(0xFFFFu >> (16 * nv - nr));
            const float *bt = p->prefetch_b ? p->b + jr / NR * p->psb : p->b + jr;
            tiles[packed][mr - 1][nv - 1](p->kc, a, p->rsa, bt, p->rsb, p->prefetch_b, ml,
                                          p->c + ir * p->ldc + jr, p->ldc, p->alpha, p->beta,
                                          p->bias ? p->bias + jr : NULL, p->relu);
            jr += nr;
        }
        ir += mr;
    }
}

/* In-register transpose of 16 rows of 16 floats. */
INLINE void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[4j + c], 128-bit lane l = column 4l + c of rows 4j .. 4j+3 */
    for (int j = 0; j < 4; j++) {
        u[4 * j + 0] = _mm512_shuffle_ps(t[4 * j], t[4 * j + 2], 0x44);
        u[4 * j + 1] = _mm512_shuffle_ps(t[4 * j], t[4 * j + 2], 0xEE);
        u[4 * j + 2] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0x44);
        u[4 * j + 3] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
        __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        r[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
        r[8 + c] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
}

static void pack_b(bool tb, int64_t kc, int64_t n, const float *B, int64_t ldb, float *dst) {
    for (int64_t j0 = 0; j0 < n; j0 += NR, dst += NR * kc) {
        int64_t w = n - j0 < NR ? n - j0 : NR;
        if (!tb) {
            const float *s = B + j0;
            if (w == NR) {
                for (int64_t k = 0; k < kc; k++, s += ldb) {
                    float *d = dst + k * NR;
                    _mm512_store_ps(d, _mm512_loadu_ps(s));
                    _mm512_store_ps(d + 16, _mm512_loadu_ps(s + 16));
                    _mm512_store_ps(d + 32, _mm512_loadu_ps(s + 32));
                    _mm512_store_ps(d + 48, _mm512_loadu_ps(s + 48));
                }
            } else {
                for (int64_t k = 0; k < kc; k++, s += ldb)
                    for (int v = 0; v < NR / 16; v++) {
                        int64_t left = w - 16 * v;
                        __mmask16 m = left >= 16 ? 0xFFFF
                                      : left > 0 ? (__mmask16)((1u << left) - 1)
                                                 : 0;
                        _mm512_store_ps(dst + k * NR + 16 * v,
                                        _mm512_maskz_loadu_ps(m, s + 16 * v));
                    }
            }
            continue;
        }
        /* op(B)(k, j) = B[j * ldb + k]: transpose 16 x 16 blocks into the panel. */
        for (int64_t k0 = 0; k0 < kc; k0 += 16) {
            int kl = kc - k0 < 16 ? (int)(kc - k0) : 16;
            __mmask16 km = (__mmask16)(0xFFFFu >> (16 - kl));
            for (int jj = 0; jj < NR; jj += 16) {
                __m512 r[16];
                for (int i = 0; i < 16; i++)
                    r[i] = jj + i < w ? _mm512_maskz_loadu_ps(km, B + (j0 + jj + i) * ldb + k0)
                                      : _mm512_setzero_ps();
                transpose16(r);
                for (int i = 0; i < kl; i++) _mm512_store_ps(dst + (k0 + i) * NR + jj, r[i]);
            }
        }
    }
}

/* 16 k of one packed panel of A^T (96 floats, 6 vectors) from rows s[kk * lda],
 * kk < 16, each giving h <= 6 floats. Vector v of the output holds rows
 * 16v/6 .. (16v+15)/6, each gathered into its lanes by a masked load from a
 * pointer shifted so that lane l reads the row's element l - 6kk + 16v; lanes
 * outside the mask are not read. Rows past h stay zero. */
INLINE void pack_at16(const float *s, int64_t lda, unsigned hmask, float *d) {
#pragma GCC unroll 6
    for (int v = 0; v < 6; v++) {
        __m512 o = _mm512_setzero_ps();
#pragma GCC unroll 4
        for (int kk = 16 * v / 6; kk <= (16 * v + 15) / 6; kk++) {
            int lane0 = 6 * kk - 16 * v; /* lane of the row's element 0; may be < 0 */
            unsigned m = lane0 >= 0 ? hmask << lane0 : hmask >> -lane0;
            o = _mm512_mask_loadu_ps(o, (__mmask16)(m & 0xFFFF), s + kk * lda - lane0);
        }
        _mm512_storeu_ps(d + 16 * v, o);
    }
}

static void pack_a(bool ta, int64_t m, int64_t kc, const float *A, int64_t lda, float *dst) {
    const int64_t np = (m + MR - 1) / MR;
    if (ta) {
        /* op(A)(i, k) = A[k * lda + i]: blocks of 16 rows of A, read once and
         * assembled in registers into whole vectors of each panel. */
        int64_t k0 = 0;
        for (; k0 + 16 <= kc; k0 += 16) {
            const float *s = A + k0 * lda;
            /* Rows are short and far apart, too short for the hardware prefetcher
             * to follow: fetch the next block's while this one is packed. */
            if (k0 + 32 <= kc)
                for (int kk = 16; kk < 32; kk++)
                    for (int64_t i = 0; i < m + 15; i += 16)
                        _mm_prefetch((const char *)(s + kk * lda + (i < m ? i : m - 1)),
                                     _MM_HINT_T0);
            for (int64_t p = 0; p < np; p++) {
                int64_t h = m - p * MR < MR ? m - p * MR : MR;
                float *d = dst + p * MR * kc + k0 * MR;
                if (h == MR)
                    pack_at16(s + p * MR, lda, 0x3F, d);
                else
                    pack_at16(s + p * MR, lda, (1u << h) - 1, d);
            }
        }
        for (; k0 < kc; k0++)
            for (int64_t p = 0; p < np; p++) {
                int64_t h = m - p * MR < MR ? m - p * MR : MR;
                __m512 v = _mm512_maskz_loadu_ps((__mmask16)((1u << h) - 1), A + k0 * lda + p * MR);
                _mm512_mask_storeu_ps(dst + p * MR * kc + k0 * MR, 0x3F, v);
            }
        return;
    }
    for (int64_t p = 0; p < np; p++, dst += MR * kc) {
        int h = m - p * MR < MR ? (int)(m - p * MR) : MR;
        for (int64_t k = 0; k < kc; k++)
            for (int i = 0; i < MR; i++) dst[k * MR + i] = i < h ? A[(p * MR + i) * lda + k] : 0.0f;
    }
}

const lm_sgemm_kernels lm_sgemm_kernels_avx512 = {
    .mr = MR,
    .nr = NR,
    .kc = 256,
    .nc = 512,
    .mc = 96,
    .vec = 16,
    .pack_a_nt = false,
    .pack_b_nt = false,
    .block = block,
    .pack_b = pack_b,
    .pack_a = pack_a,
};

#else
const lm_sgemm_kernels lm_sgemm_kernels_avx512 = {0};
#endif
