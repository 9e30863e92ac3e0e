/* Dropout keep masks with AVX-512: lm_hash64 (splitmix64 of key ^ i * c) for 8
 * elements at a time with 64-bit vector multiplies, which scalar code (and
 * AVX2) lacks. The bits are exactly lm_hash64's, so the mask does not depend
 * on the ISA. */
#include "core/rng.h"
#include <immintrin.h>

void lm_dropout_mask_avx512(uint64_t key, uint64_t thresh, unsigned char *m, int64_t i0,
                            int64_t i1);

void lm_dropout_mask_avx512(uint64_t key, uint64_t thresh, unsigned char *m, int64_t i0,
                            int64_t i1) {
    const __m512i k = _mm512_set1_epi64((long long)key);
    const __m512i c0 = _mm512_set1_epi64((long long)0xd1342543de82ef95ULL);
    const __m512i g = _mm512_set1_epi64((long long)0x9e3779b97f4a7c15ULL);
    const __m512i c1 = _mm512_set1_epi64((long long)0xbf58476d1ce4e5b9ULL);
    const __m512i c2 = _mm512_set1_epi64((long long)0x94d049bb133111ebULL);
    const __m512i t = _mm512_set1_epi64((long long)thresh), eight = _mm512_set1_epi64(8);
    __m512i idx =
        _mm512_add_epi64(_mm512_set1_epi64(i0), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
    int64_t i = i0;
    for (; i + 8 <= i1; i += 8) {
        __m512i z = _mm512_add_epi64(_mm512_xor_si512(k, _mm512_mullo_epi64(idx, c0)), g);
        z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), c1);
        z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), c2);
        z = _mm512_srli_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 31)), 40);
        __mmask8 keep = _mm512_cmpge_epu64_mask(z, t);
        _mm_storel_epi64((__m128i *)(m + i), _mm_maskz_set1_epi8((__mmask16)keep, 1));
        idx = _mm512_add_epi64(idx, eight);
    }
    for (; i < i1; i++) m[i] = (lm_hash64(key, (uint64_t)i) >> 40) >= thresh;
}
