/*
 * kernels_avx512.c -- AVX-512 F/BW/VL kernels (compiled with those flags only
 * here).  Tails use mask registers, so there is no scalar remainder loop.
 * f32 follows the reference's 32-lane order in two registers, without FMA,
 * so its results are the same bits as every other build's.
 * pq4 fast scan: 512-bit vpshufb (AVX-512BW) takes four sub-quantizers per
 * step; an odd pair left over runs as in the AVX2 kernel.
 */
#include "kernels.h"

#ifdef SHOAL_HAVE_X86
#include <immintrin.h>

/* Lanes 0..r-1 set; r is clamped to 0..16. */
static inline __mmask16 tail16(ptrdiff_t r) {
    r = r < 0 ? 0 : r > 16 ? 16 : r;
    return (__mmask16)((1u << r) - 1u);
}

/* The reference's fold of 32 lanes in two registers (acc0 = lanes 0..15). */
static inline float fold32(__m512 acc0, __m512 acc1) {
    __m512 v = _mm512_add_ps(acc0, acc1);
    __m256 y = _mm256_add_ps(_mm512_castps512_ps256(v),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(y), _mm256_extractf128_ps(y, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

static inline __m512 l2_term(__m512 a, __m512 b) {
    __m512 d = _mm512_sub_ps(a, b);
    return _mm512_mul_ps(d, d);
}

static inline __m512 dot_term(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }

#define F32_KERNEL(name, TERM)                                                             \
    static float name(const float *a, const float *b, size_t n) {                         \
        __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;                                    \
        size_t i = 0;                                                                      \
        for (; i + 32 <= n; i += 32) {                                                     \
            acc0 = _mm512_add_ps(acc0, TERM(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))); \
            acc1 = _mm512_add_ps(acc1, TERM(_mm512_loadu_ps(a + i + 16),                   \
                                            _mm512_loadu_ps(b + i + 16)));                 \
        }                                                                                  \
        if (i < n) {                                                                       \
            __mmask16 m0 = tail16((ptrdiff_t)(n - i)), m1 = tail16((ptrdiff_t)(n - i) - 16); \
            acc0 = _mm512_add_ps(acc0, TERM(_mm512_maskz_loadu_ps(m0, a + i),              \
                                            _mm512_maskz_loadu_ps(m0, b + i)));            \
            acc1 = _mm512_add_ps(acc1, TERM(_mm512_maskz_loadu_ps(m1, a + i + 16),         \
                                            _mm512_maskz_loadu_ps(m1, b + i + 16)));       \
        }                                                                                  \
        return fold32(acc0, acc1);                                                         \
    }

F32_KERNEL(l2sq_f32_avx512, l2_term)
F32_KERNEL(dot_f32_avx512, dot_term)

/* l2sq_f32 that returns the partial sum (folded as at the end) once it
 * reaches bound, checked every SHOAL_L2_CHECK elements (see scalar.c). */
static float l2sq_f32_below_avx512(const float *a, const float *b, size_t n, float bound) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    size_t i = 0;
    while (i + SHOAL_L2_CHECK <= n) {
        for (size_t end = i + SHOAL_L2_CHECK; i < end; i += 32) {
            acc0 = _mm512_add_ps(acc0, l2_term(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
            acc1 = _mm512_add_ps(acc1, l2_term(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16)));
        }
        float partial = fold32(acc0, acc1);
        if (partial >= bound) return partial;
    }
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_add_ps(acc0, l2_term(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
        acc1 = _mm512_add_ps(acc1, l2_term(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16)));
    }
    if (i < n) {
        __mmask16 m0 = tail16((ptrdiff_t)(n - i)), m1 = tail16((ptrdiff_t)(n - i) - 16);
        acc0 = _mm512_add_ps(acc0, l2_term(_mm512_maskz_loadu_ps(m0, a + i), _mm512_maskz_loadu_ps(m0, b + i)));
        acc1 = _mm512_add_ps(acc1, l2_term(_mm512_maskz_loadu_ps(m1, a + i + 16),
                                           _mm512_maskz_loadu_ps(m1, b + i + 16)));
    }
    return fold32(acc0, acc1);
}

static int32_t dot_i8_avx512(const int8_t *a, const int8_t *b, size_t n) {
    __m512i s = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512i va = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(a + i)));
        __m512i vb = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(b + i)));
        s = _mm512_add_epi32(s, _mm512_madd_epi16(va, vb));
    }
    if (i < n) {
        __mmask32 m = (__mmask32)((1ull << (n - i)) - 1u);
        __m512i va = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, a + i));
        __m512i vb = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, b + i));
        s = _mm512_add_epi32(s, _mm512_madd_epi16(va, vb));
    }
    return _mm512_reduce_add_epi32(s);
}

static int32_t dot_i16_i8_avx512(const int16_t *q, const int8_t *c, size_t n) {
    __m512i s = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512i vq = _mm512_loadu_si512((const void *)(q + i));
        __m512i vc = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(c + i)));
        s = _mm512_add_epi32(s, _mm512_madd_epi16(vq, vc));
    }
    if (i < n) {
        __mmask32 m = (__mmask32)((1ull << (n - i)) - 1u);
        __m512i vq = _mm512_maskz_loadu_epi16(m, q + i);
        __m512i vc = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, c + i));
        s = _mm512_add_epi32(s, _mm512_madd_epi16(vq, vc));
    }
    return _mm512_reduce_add_epi32(s);
}

static int32_t l2sq_i8_avx512(const int8_t *a, const int8_t *b, size_t n) {
    __m512i s = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512i va = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(a + i)));
        __m512i vb = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(b + i)));
        __m512i d = _mm512_sub_epi16(va, vb);
        s = _mm512_add_epi32(s, _mm512_madd_epi16(d, d));
    }
    if (i < n) {
        __mmask32 m = (__mmask32)((1ull << (n - i)) - 1u);
        __m512i va = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, a + i));
        __m512i vb = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, b + i));
        __m512i d = _mm512_sub_epi16(va, vb);
        s = _mm512_add_epi32(s, _mm512_madd_epi16(d, d));
    }
    return _mm512_reduce_add_epi32(s);
}

/* Each 128-bit lane of a register holds one sub-quantizer's codes and table
 * (vpshufb shuffles within lanes); see pq4_scan_avx2 for the accumulators.
 * The lanes are summed at the end. */
static inline __m128i fold4_epi16(__m512i v) {
    __m256i y = _mm256_add_epi16(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    return _mm_add_epi16(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
}

static void pq4_scan_avx512(const uint8_t *codes, const uint8_t *lut, size_t m2, size_t nblocks,
                            uint16_t *out) {
    const __m512i low4 = _mm512_set1_epi8(0x0f), zero = _mm512_setzero_si512();
    const __m256i low4y = _mm256_set1_epi8(0x0f), zeroy = _mm256_setzero_si256();
    for (size_t b = 0; b < nblocks; b++, codes += m2 * 16, out += SHOAL_PQ4_BLOCK) {
        __m512i a0 = zero, a1 = zero, a2 = zero, a3 = zero;
        size_t j = 0;
        for (; j + 4 <= m2; j += 4) {
            __m512i c = _mm512_loadu_si512((const void *)(codes + 16 * j));
            __m512i t = _mm512_loadu_si512((const void *)(lut + 16 * j));
            __m512i lo = _mm512_shuffle_epi8(t, _mm512_and_si512(c, low4));
            __m512i hi = _mm512_shuffle_epi8(t, _mm512_and_si512(_mm512_srli_epi16(c, 4), low4));
            a0 = _mm512_add_epi16(a0, _mm512_unpacklo_epi8(lo, zero));
            a1 = _mm512_add_epi16(a1, _mm512_unpackhi_epi8(lo, zero));
            a2 = _mm512_add_epi16(a2, _mm512_unpacklo_epi8(hi, zero));
            a3 = _mm512_add_epi16(a3, _mm512_unpackhi_epi8(hi, zero));
        }
        __m128i r0 = fold4_epi16(a0), r1 = fold4_epi16(a1), r2 = fold4_epi16(a2),
                r3 = fold4_epi16(a3);
        if (j < m2) { /* one pair left */
            __m256i c = _mm256_loadu_si256((const __m256i *)(codes + 16 * j));
            __m256i t = _mm256_loadu_si256((const __m256i *)(lut + 16 * j));
            __m256i lo = _mm256_shuffle_epi8(t, _mm256_and_si256(c, low4y));
            __m256i hi = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), low4y));
            __m256i x0 = _mm256_unpacklo_epi8(lo, zeroy), x1 = _mm256_unpackhi_epi8(lo, zeroy);
            __m256i x2 = _mm256_unpacklo_epi8(hi, zeroy), x3 = _mm256_unpackhi_epi8(hi, zeroy);
            r0 = _mm_add_epi16(r0, _mm_add_epi16(_mm256_castsi256_si128(x0), _mm256_extracti128_si256(x0, 1)));
            r1 = _mm_add_epi16(r1, _mm_add_epi16(_mm256_castsi256_si128(x1), _mm256_extracti128_si256(x1, 1)));
            r2 = _mm_add_epi16(r2, _mm_add_epi16(_mm256_castsi256_si128(x2), _mm256_extracti128_si256(x2, 1)));
            r3 = _mm_add_epi16(r3, _mm_add_epi16(_mm256_castsi256_si128(x3), _mm256_extracti128_si256(x3, 1)));
        }
        __m128i *o = (__m128i *)out;
        _mm_storeu_si128(o, r0);
        _mm_storeu_si128(o + 1, r1);
        _mm_storeu_si128(o + 2, r2);
        _mm_storeu_si128(o + 3, r3);
    }
}

const shoal__kernels shoal__kernels_avx512 = {
    "avx512", l2sq_f32_avx512, dot_f32_avx512, dot_i8_avx512, l2sq_i8_avx512, pq4_scan_avx512,
    l2sq_f32_below_avx512, dot_i16_i8_avx512,
};
#endif
