/*
 * kernels_avx2.c -- AVX2 + FMA kernels (compiled with -mavx2 -mfma only here).
 *
 * f32: the reference's 32 lanes are four 8-lane registers, so four
 * independent add chains hide the add latency.  No FMA: a fused multiply-add
 * rounds once where the reference rounds twice, and the results must be the
 * same bits in every build.  The tail is one masked block, not a scalar loop.
 * int8: sign-extend 16 bytes to 16 int16 lanes and use vpmaddwd, which sums
 * adjacent products into int32 without overflow for any int8 input.
 * pq4 fast scan: vpshufb looks up 32 table entries at once (see pq4_scan_avx2).
 */
#include "kernels.h"

#ifdef SHOAL_HAVE_X86
#include <immintrin.h>

static const int32_t tail_mask_table[16] = {
    -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* Lanes 0..r-1 set; r is clamped to 0..8. */
static inline __m256i tail_mask(ptrdiff_t r) {
    r = r < 0 ? 0 : r > 8 ? 8 : r;
    return _mm256_loadu_si256((const __m256i *)(tail_mask_table + 8 - r));
}

/* The scalar reference's fold of 32 lanes held in four registers
 * (acc[k] = lanes 8k..8k+7): l += l+16, l += l+8, l += l+4, l += l+2, l += l+1. */
static inline float fold32(__m256 acc0, __m256 acc1, __m256 acc2, __m256 acc3) {
    __m256 v = _mm256_add_ps(_mm256_add_ps(acc0, acc2), _mm256_add_ps(acc1, acc3));
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

static inline int32_t hsum256_epi32(__m256i v) {
    __m128i x = _mm_add_epi32(_mm256_castsi256_si128(v),
                              _mm256_extracti128_si256(v, 1));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(1, 0, 3, 2)));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(x);
}

/* One block of 32 elements into the four lane registers; TERM(va, vb) is the
 * rounded product, then a separate add, as in the reference. */
#define F32_BLOCK(TERM, LOAD_A, LOAD_B)                                   \
    do {                                                                  \
        acc0 = _mm256_add_ps(acc0, TERM(LOAD_A(0), LOAD_B(0)));           \
        acc1 = _mm256_add_ps(acc1, TERM(LOAD_A(8), LOAD_B(8)));           \
        acc2 = _mm256_add_ps(acc2, TERM(LOAD_A(16), LOAD_B(16)));         \
        acc3 = _mm256_add_ps(acc3, TERM(LOAD_A(24), LOAD_B(24)));         \
    } while (0)

static inline __m256 l2_term(__m256 a, __m256 b) {
    __m256 d = _mm256_sub_ps(a, b);
    return _mm256_mul_ps(d, d);
}

static inline __m256 dot_term(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }

#define LOAD_A(k) _mm256_loadu_ps(a + i + (k))
#define LOAD_B(k) _mm256_loadu_ps(b + i + (k))
/* Masked tail: lanes at or past n read nothing and contribute +0. */
#define MASK_A(k) _mm256_maskload_ps(a + i + (k), tail_mask((ptrdiff_t)(n - i) - (k)))
#define MASK_B(k) _mm256_maskload_ps(b + i + (k), tail_mask((ptrdiff_t)(n - i) - (k)))

static float l2sq_f32_avx2(const float *a, const float *b, size_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) F32_BLOCK(l2_term, LOAD_A, LOAD_B);
    if (i < n) F32_BLOCK(l2_term, MASK_A, MASK_B);
    return fold32(acc0, acc1, acc2, acc3);
}

/* l2sq_f32 that may stop early: every SHOAL_L2_CHECK elements it folds the
 * lanes as the end does, and returns that partial sum once it reaches bound. */
static float l2sq_f32_below_avx2(const float *a, const float *b, size_t n, float bound) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    size_t i = 0;
    while (i + SHOAL_L2_CHECK <= n) {
        for (size_t end = i + SHOAL_L2_CHECK; i < end; i += 32) F32_BLOCK(l2_term, LOAD_A, LOAD_B);
        float partial = fold32(acc0, acc1, acc2, acc3);
        if (partial >= bound) return partial;
    }
    for (; i + 32 <= n; i += 32) F32_BLOCK(l2_term, LOAD_A, LOAD_B);
    if (i < n) F32_BLOCK(l2_term, MASK_A, MASK_B);
    return fold32(acc0, acc1, acc2, acc3);
}

static float dot_f32_avx2(const float *a, const float *b, size_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) F32_BLOCK(dot_term, LOAD_A, LOAD_B);
    if (i < n) F32_BLOCK(dot_term, MASK_A, MASK_B);
    return fold32(acc0, acc1, acc2, acc3);
}

static int32_t dot_i8_avx2(const int8_t *a, const int8_t *b, size_t n) {
    __m256i s = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i va = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
        __m256i vb = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + i)));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(va, vb));
    }
    int32_t sum = hsum256_epi32(s);
    for (; i < n; i++) sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}

static int32_t dot_i16_i8_avx2(const int16_t *q, const int8_t *c, size_t n) {
    __m256i s = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i vq = _mm256_loadu_si256((const __m256i *)(q + i));
        __m256i vc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(c + i)));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(vq, vc));
    }
    int32_t sum = hsum256_epi32(s);
    for (; i < n; i++) sum += (int32_t)q[i] * (int32_t)c[i];
    return sum;
}

static int32_t l2sq_i8_avx2(const int8_t *a, const int8_t *b, size_t n) {
    __m256i s = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i va = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
        __m256i vb = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + i)));
        __m256i d = _mm256_sub_epi16(va, vb); /* |d| <= 255 fits int16 */
        s = _mm256_add_epi32(s, _mm256_madd_epi16(d, d));
    }
    int32_t sum = hsum256_epi32(s);
    for (; i < n; i++) {
        int32_t d = (int32_t)a[i] - (int32_t)b[i];
        sum += d * d;
    }
    return sum;
}

/* Two sub-quantizers per step: one 32-byte load holds both code rows and
 * one 32-byte load both tables, and vpshufb (which shuffles within each
 * 128-bit lane) looks up sub-quantizer 2p in the low lane and 2p+1 in the
 * high lane.  The low nibbles give vectors 0..15, the high nibbles 16..31;
 * each is widened to uint16 by unpacking against zero into four
 * accumulators (vectors 0-7, 8-15, 16-23, 24-31 in each lane), and the two
 * lanes are added at the end.  Integer sums: exactly the reference's. */
static void pq4_scan_avx2(const uint8_t *codes, const uint8_t *lut, size_t m2, size_t nblocks,
                          uint16_t *out) {
    const __m256i low4 = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
    for (size_t b = 0; b < nblocks; b++, codes += m2 * 16, out += SHOAL_PQ4_BLOCK) {
        __m256i a0 = zero, a1 = zero, a2 = zero, a3 = zero;
        for (size_t p = 0; p < m2 / 2; p++) {
            __m256i c = _mm256_loadu_si256((const __m256i *)(codes + 32 * p));
            __m256i t = _mm256_loadu_si256((const __m256i *)(lut + 32 * p));
            __m256i lo = _mm256_shuffle_epi8(t, _mm256_and_si256(c, low4));
            __m256i hi = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), low4));
            a0 = _mm256_add_epi16(a0, _mm256_unpacklo_epi8(lo, zero));
            a1 = _mm256_add_epi16(a1, _mm256_unpackhi_epi8(lo, zero));
            a2 = _mm256_add_epi16(a2, _mm256_unpacklo_epi8(hi, zero));
            a3 = _mm256_add_epi16(a3, _mm256_unpackhi_epi8(hi, zero));
        }
        __m128i *o = (__m128i *)out;
        _mm_storeu_si128(o, _mm_add_epi16(_mm256_castsi256_si128(a0), _mm256_extracti128_si256(a0, 1)));
        _mm_storeu_si128(o + 1, _mm_add_epi16(_mm256_castsi256_si128(a1), _mm256_extracti128_si256(a1, 1)));
        _mm_storeu_si128(o + 2, _mm_add_epi16(_mm256_castsi256_si128(a2), _mm256_extracti128_si256(a2, 1)));
        _mm_storeu_si128(o + 3, _mm_add_epi16(_mm256_castsi256_si128(a3), _mm256_extracti128_si256(a3, 1)));
    }
}

const shoal__kernels shoal__kernels_avx2 = {
    "avx2", l2sq_f32_avx2, dot_f32_avx2, dot_i8_avx2, l2sq_i8_avx2, pq4_scan_avx2,
    l2sq_f32_below_avx2, dot_i16_i8_avx2,
};
#endif
