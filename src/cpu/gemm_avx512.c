/* AVX-512 SGEMM kernels: a 6 x 64 micro-tile (24 zmm accumulators, 4 B vectors
 * and one broadcast per k: 10 loads per 24 FMAs, so both FMA pipes stay busy),
 * plus the packing routines. Only called once the CPU is known to support it. */
#include "cpu/gemm_kernels.h"

#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__FMA__)
#include <immintrin.h>

#define MR 6
#define NR 64
/* B rows prefetched ahead of use; 8 rows (2 KiB) cover L2 latency at ~12 cycles a row. */
#define PF_ROWS 8

#define INLINE static inline __attribute__((always_inline))

/* C tile (MRc x up to 16*NV) += a @ b; the last vector of a row uses mask ml,
 * so n need not be a multiple of 16 and b is never read past column n. */
INLINE void tile(const int MRc, const int NV, int64_t kc, const float *a, int64_t rsa, int64_t csa,
                 const float *b, int64_t rsb, __mmask16 ml, float *c, int64_t ldc, float alpha,
                 float beta, const float *bias, bool relu) {
    __m512 acc[MR][4];
    for (int i = 0; i < MRc; i++)
        for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
    /* Pull the C tile toward L1 while the k loop runs; it is needed only at the end. */
    for (int i = 0; i < MRc; i++)
        for (int v = 0; v < NV; v++) _mm_prefetch((const char *)(c + i * ldc + 16 * v), _MM_HINT_T0);
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        __m512 bv[4];
        for (int v = 0; v < NV - 1; v++) bv[v] = _mm512_loadu_ps(b + 16 * v);
        bv[NV - 1] = _mm512_maskz_loadu_ps(ml, b + 16 * (NV - 1));
        for (int v = 0; v < NV; v++)
            _mm_prefetch((const char *)(b + PF_ROWS * rsb + 16 * v), _MM_HINT_T0);
        for (int i = 0; i < MRc; i++) {
            __m512 ai = _mm512_set1_ps(a[i * rsa]);
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += csa;
        b += rsb;
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta), zero = _mm512_setzero_ps();
    for (int i = 0; i < MRc; i++) {
        float *ci = c + i * ldc;
        for (int v = 0; v < NV; v++) {
            __mmask16 m = v == NV - 1 ? ml : (__mmask16)0xFFFF;
            __m512 r = _mm512_mul_ps(acc[i][v], va);
            if (beta != 0.0f) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, ci + 16 * v), r);
            if (bias) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(m, bias + 16 * v));
            if (relu) r = _mm512_max_ps(r, zero);
            _mm512_mask_storeu_ps(ci + 16 * v, m, r);
        }
    }
}

#define TILE_ARGS kc, a, rsa, csa, b, rsb, ml, c, ldc, alpha, beta, bias, relu
#define TILE_FN(M_, V_)                                                                            \
    static void tile_##M_##x##V_(int64_t kc, const float *a, int64_t rsa, int64_t csa,             \
                                 const float *b, int64_t rsb, __mmask16 ml, float *c, int64_t ldc, \
                                 float alpha, float beta, const float *bias, bool relu) {          \
        tile(M_, V_, TILE_ARGS);                                                                   \
    }
#define TILE_ROW(M_) TILE_FN(M_, 1) TILE_FN(M_, 2) TILE_FN(M_, 3) TILE_FN(M_, 4)
TILE_ROW(1)
TILE_ROW(2)
TILE_ROW(3)
TILE_ROW(4)
TILE_ROW(5)
TILE_ROW(6)

typedef void (*tile_fn)(int64_t, const float *, int64_t, int64_t, const float *, int64_t, __mmask16,
                        float *, int64_t, float, float, const float *, bool);
#define TILE_PTRS(M_) {tile_##M_##x1, tile_##M_##x2, tile_##M_##x3, tile_##M_##x4}
static const tile_fn tiles[MR][4] = {TILE_PTRS(1), TILE_PTRS(2), TILE_PTRS(3),
                                     TILE_PTRS(4), TILE_PTRS(5), TILE_PTRS(6)};

static void block(const lm_sgemm_block *p) {
    for (int64_t ir = 0; ir < p->m; ir += MR) {
        int mr = p->m - ir < MR ? (int)(p->m - ir) : MR;
        const float *a = p->a + ir / MR * p->psa;
        for (int64_t jr = 0; jr < p->n; jr += NR) {
            int nr = p->n - jr < NR ? (int)(p->n - jr) : NR;
            int nv = (nr + 15) / 16;
            __mmask16 ml = (__mmask16)(0xFFFFu >> (16 * nv - nr));
            tiles[mr - 1][nv - 1](p->kc, a, p->rsa, p->csa, p->b + jr / NR * p->psb, p->rsb, ml,
                                  p->c + ir * p->ldc + jr, p->ldc, p->alpha, p->beta,
                                  p->bias ? p->bias + jr : NULL, p->relu);
        }
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

static void pack_a(bool ta, int64_t m, int64_t kc, const float *A, int64_t lda, float *dst) {
    for (int64_t i0 = 0; i0 < m; i0 += MR, dst += MR * kc) {
        int h = m - i0 < MR ? (int)(m - i0) : MR;
        if (ta) {
            /* op(A)(i, k) = A[k * lda + i]: one masked row segment per k. */
            __mmask16 lm = (__mmask16)((1u << h) - 1);
            for (int64_t k = 0; k < kc; k++)
                _mm512_mask_storeu_ps(dst + k * MR, 0x3F,
                                      _mm512_maskz_loadu_ps(lm, A + k * lda + i0));
        } else {
            for (int64_t k = 0; k < kc; k++)
                for (int i = 0; i < MR; i++)
                    dst[k * MR + i] = i < h ? A[(i0 + i) * lda + k] : 0.0f;
        }
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
