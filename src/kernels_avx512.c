/*
 * kernels_avx512.c -- AVX-512 F/BW/VL kernels (compiled with those flags only
 * here).  Tails use mask registers, so there is no scalar remainder loop.
 * f32 follows the reference's 32-lane order in two registers, without FMA,
 * so its results are the same bits as every other build's.
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

const shoal__kernels shoal__kernels_avx512 = {
    "avx512", l2sq_f32_avx512, dot_f32_avx512, dot_i8_avx512, l2sq_i8_avx512,
};
#endif
