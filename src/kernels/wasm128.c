/*
 * kernels_wasm128.c -- WebAssembly SIMD128 kernels, compiled only into the
 * SIMD wasm variants (-msimd128).  SIMD128 has no FMA (relaxed-simd is not in
 * every engine yet), so f32 uses mul + add with four accumulators; int8
 * widens to i16 and uses i32x4.dot_i16x8_s, which is exact.  pq4 fast scan
 * looks its tables up with i8x16.swizzle, one sub-quantizer per step.
 */
#include "kernels.h"

#ifdef __wasm_simd128__
#include <string.h>
#include <wasm_simd128.h>

static inline int32_t hsum_i32x4(v128_t v) {
    return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) +
           wasm_i32x4_extract_lane(v, 2) + wasm_i32x4_extract_lane(v, 3);
}

/* The reference's fold of 32 lanes in eight registers (acc[k] = lanes 4k..4k+3). */
static inline float fold32(v128_t *acc) {
    for (int k = 0; k < 4; k++) acc[k] = wasm_f32x4_add(acc[k], acc[k + 4]);
    acc[0] = wasm_f32x4_add(acc[0], acc[2]);
    acc[1] = wasm_f32x4_add(acc[1], acc[3]);
    v128_t x = wasm_f32x4_add(acc[0], acc[1]);
    x = wasm_f32x4_add(x, wasm_i32x4_shuffle(x, x, 2, 3, 2, 3));
    return wasm_f32x4_extract_lane(x, 0) + wasm_f32x4_extract_lane(x, 1);
}

static inline v128_t l2_term(v128_t a, v128_t b) {
    v128_t d = wasm_f32x4_sub(a, b);
    return wasm_f32x4_mul(d, d);
}

static inline v128_t dot_term(v128_t a, v128_t b) { return wasm_f32x4_mul(a, b); }

/* The main loop keeps its eight accumulators in named variables: indexing
 * an array with a variable (as the tail must) would make the compiler keep
 * all of them in memory, which cost a third of the speed.  The tail then
 * works on an array copy.  SIMD128 has no masked loads, so a partial group
 * of four is copied into a zero-padded one; groups past the end are skipped,
 * which is exact since the reference adds nothing there (x + 0 == x).
 * F32_BLOCK: 32 elements into the eight named accumulators. */
#define F32_BLOCK(TERM)                                                                  \
    do {                                                                                 \
        s0 = wasm_f32x4_add(s0, TERM(wasm_v128_load(a + i), wasm_v128_load(b + i)));     \
        s1 = wasm_f32x4_add(s1, TERM(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4))); \
        s2 = wasm_f32x4_add(s2, TERM(wasm_v128_load(a + i + 8), wasm_v128_load(b + i + 8))); \
        s3 = wasm_f32x4_add(s3, TERM(wasm_v128_load(a + i + 12), wasm_v128_load(b + i + 12))); \
        s4 = wasm_f32x4_add(s4, TERM(wasm_v128_load(a + i + 16), wasm_v128_load(b + i + 16))); \
        s5 = wasm_f32x4_add(s5, TERM(wasm_v128_load(a + i + 20), wasm_v128_load(b + i + 20))); \
        s6 = wasm_f32x4_add(s6, TERM(wasm_v128_load(a + i + 24), wasm_v128_load(b + i + 24))); \
        s7 = wasm_f32x4_add(s7, TERM(wasm_v128_load(a + i + 28), wasm_v128_load(b + i + 28))); \
    } while (0)

/* The groups of four left after the whole blocks, and a zero-padded partial
 * group, into acc[] (from the named accumulators), then the fold. */
#define F32_TAIL_FOLD(TERM)                                                              \
    do {                                                                                 \
        v128_t acc[8] = {s0, s1, s2, s3, s4, s5, s6, s7};                                \
        size_t k = 0;                                                                    \
        for (; i + 4 <= n; i += 4, k++)                                                  \
            acc[k] = wasm_f32x4_add(acc[k], TERM(wasm_v128_load(a + i), wasm_v128_load(b + i))); \
        if (i < n) {                                                                     \
            float ta[4] = {0}, tb[4] = {0};                                              \
            memcpy(ta, a + i, (n - i) * sizeof *ta);                                     \
            memcpy(tb, b + i, (n - i) * sizeof *tb);                                     \
            acc[k] = wasm_f32x4_add(acc[k], TERM(wasm_v128_load(ta), wasm_v128_load(tb))); \
        }                                                                                \
        return fold32(acc);                                                              \
    } while (0)

#define F32_KERNEL(name, TERM)                                                           \
    static float name(const float *a, const float *b, size_t n) {                       \
        v128_t z = wasm_f32x4_splat(0.0f);                                               \
        v128_t s0 = z, s1 = z, s2 = z, s3 = z, s4 = z, s5 = z, s6 = z, s7 = z;           \
        size_t i = 0;                                                                    \
        for (; i + 32 <= n; i += 32) F32_BLOCK(TERM);                                    \
        F32_TAIL_FOLD(TERM);                                                             \
    }

F32_KERNEL(l2sq_f32_wasm128, l2_term)
F32_KERNEL(dot_f32_wasm128, dot_term)

/* l2sq_f32 that returns the partial sum (folded as at the end) once it
 * reaches bound, checked every SHOAL_L2_CHECK elements (see scalar.c). */
static float l2sq_f32_below_wasm128(const float *a, const float *b, size_t n, float bound) {
    v128_t z = wasm_f32x4_splat(0.0f);
    v128_t s0 = z, s1 = z, s2 = z, s3 = z, s4 = z, s5 = z, s6 = z, s7 = z;
    size_t i = 0;
    while (i + SHOAL_L2_CHECK <= n) {
        for (size_t end = i + SHOAL_L2_CHECK; i < end; i += 32) F32_BLOCK(l2_term);
        v128_t part[8] = {s0, s1, s2, s3, s4, s5, s6, s7};
        float partial = fold32(part);
        if (partial >= bound) return partial;
    }
    for (; i + 32 <= n; i += 32) F32_BLOCK(l2_term);
    F32_TAIL_FOLD(l2_term);
}

/* The int8 kernels widen with i16x8.load8x8_s (one instruction: a load that
 * sign-extends eight bytes, pmovsxbw from memory in V8) rather than a
 * 16-byte load and two extends (the high half costs a shuffle more), and
 * keep two accumulators.  Integer sums are exact, so the order is free. */
static int32_t dot_i8_wasm128(const int8_t *a, const int8_t *b, size_t n) {
    v128_t s0 = wasm_i32x4_splat(0), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = wasm_i32x4_add(s0, wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(a + i),
                                                      wasm_i16x8_load8x8(b + i)));
        s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(a + i + 8),
                                                      wasm_i16x8_load8x8(b + i + 8)));
    }
    int32_t sum = hsum_i32x4(wasm_i32x4_add(s0, s1));
    for (; i < n; i++) sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}

static int32_t dot_i16_i8_wasm128(const int16_t *q, const int8_t *c, size_t n) {
    v128_t s0 = wasm_i32x4_splat(0), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = wasm_i32x4_add(s0, wasm_i32x4_dot_i16x8(wasm_v128_load(q + i),
                                                      wasm_i16x8_load8x8(c + i)));
        s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(wasm_v128_load(q + i + 8),
                                                      wasm_i16x8_load8x8(c + i + 8)));
    }
    int32_t sum = hsum_i32x4(wasm_i32x4_add(s0, s1));
    for (; i < n; i++) sum += (int32_t)q[i] * (int32_t)c[i];
    return sum;
}

static int32_t l2sq_i8_wasm128(const int8_t *a, const int8_t *b, size_t n) {
    v128_t s0 = wasm_i32x4_splat(0), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v128_t dl = wasm_i16x8_sub(wasm_i16x8_load8x8(a + i), wasm_i16x8_load8x8(b + i));
        v128_t dh = wasm_i16x8_sub(wasm_i16x8_load8x8(a + i + 8), wasm_i16x8_load8x8(b + i + 8));
        s0 = wasm_i32x4_add(s0, wasm_i32x4_dot_i16x8(dl, dl));
        s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(dh, dh));
    }
    int32_t sum = hsum_i32x4(wasm_i32x4_add(s0, s1));
    for (; i < n; i++) {
        int32_t d = (int32_t)a[i] - (int32_t)b[i];
        sum += d * d;
    }
    return sum;
}

/* i8x16.swizzle is vpshufb without the lane split and with indices >= 16
 * giving 0 (ours are 0..15).  Low nibbles: vectors 0..15, high: 16..31;
 * widened to u16 into four accumulators of eight vectors each. */
static void pq4_scan_wasm128(const uint8_t *codes, const uint8_t *lut, size_t m2,
                             size_t nblocks, uint16_t *out) {
    const v128_t low4 = wasm_i8x16_splat(0x0f);
    for (size_t b = 0; b < nblocks; b++, codes += m2 * 16, out += SHOAL_PQ4_BLOCK) {
        v128_t a0 = wasm_i16x8_splat(0), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < m2; j++) {
            v128_t c = wasm_v128_load(codes + 16 * j), t = wasm_v128_load(lut + 16 * j);
            v128_t lo = wasm_i8x16_swizzle(t, wasm_v128_and(c, low4));
            v128_t hi = wasm_i8x16_swizzle(t, wasm_u8x16_shr(c, 4));
            a0 = wasm_i16x8_add(a0, wasm_u16x8_extend_low_u8x16(lo));
            a1 = wasm_i16x8_add(a1, wasm_u16x8_extend_high_u8x16(lo));
            a2 = wasm_i16x8_add(a2, wasm_u16x8_extend_low_u8x16(hi));
            a3 = wasm_i16x8_add(a3, wasm_u16x8_extend_high_u8x16(hi));
        }
        wasm_v128_store(out, a0);
        wasm_v128_store(out + 8, a1);
        wasm_v128_store(out + 16, a2);
        wasm_v128_store(out + 24, a3);
    }
}

const shoal__kernels shoal__kernels_wasm128 = {
    "wasm-simd128", l2sq_f32_wasm128, dot_f32_wasm128, dot_i8_wasm128, l2sq_i8_wasm128,
    pq4_scan_wasm128, l2sq_f32_below_wasm128, dot_i16_i8_wasm128,
};
#endif
