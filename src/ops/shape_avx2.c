/* AVX2 tile of the float32 transpose (src/ops/shape.c): 8x8 blocks are
 * transposed in registers, about twice the scalar tile's speed. */
#include <immintrin.h>
#include <stdint.h>

void lm_transpose_tile_f32_avx2(const void *vin, void *vout, int64_t a0, int64_t a1, int64_t l0,
                                int64_t l1, int64_t oa, int64_t sl);

/* out[ia * oa + il] = in[ia + il * sl] for ia in [a0, a1), il in [l0, l1). */
void lm_transpose_tile_f32_avx2(const void *vin, void *vout, int64_t a0, int64_t a1, int64_t l0,
                                int64_t l1, int64_t oa, int64_t sl) {
    const float *in = vin;
    float *out = vout;
    int64_t a8 = a0 + (a1 - a0) / 8 * 8, l8 = l0 + (l1 - l0) / 8 * 8;
    for (int64_t ia = a0; ia < a8; ia += 8) {
        for (int64_t il = l0; il < l8; il += 8) {
            const float *s = in + ia + il * sl;
            __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + sl);
            __m256 r2 = _mm256_loadu_ps(s + 2 * sl), r3 = _mm256_loadu_ps(s + 3 * sl);
            __m256 r4 = _mm256_loadu_ps(s + 4 * sl), r5 = _mm256_loadu_ps(s + 5 * sl);
            __m256 r6 = _mm256_loadu_ps(s + 6 * sl), r7 = _mm256_loadu_ps(s + 7 * sl);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
            __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
            __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
            __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
            __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
            __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
            __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
            __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
            float *d = out + ia * oa + il;
            _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d + oa, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d + 2 * oa, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d + 3 * oa, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d + 4 * oa, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d + 5 * oa, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d + 6 * oa, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d + 7 * oa, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        for (int64_t j = ia; j < ia + 8; j++)
            for (int64_t il = l8; il < l1; il++) out[j * oa + il] = in[j + il * sl];
    }
    for (int64_t ia = a8; ia < a1; ia++)
        for (int64_t il = l0; il < l1; il++) out[ia * oa + il] = in[ia + il * sl];
}
