/*
 * kernels_wasm128.c -- WebAssembly SIMD128 kernels, compiled only into the
 * SIMD wasm variants (-msimd128).  SIMD128 has no FMA (relaxed-simd is not in
 * every engine yet), so f32 uses mul + add with four accumulators; int8
 * widens to i16 and uses i32x4.dot_i16x8_s, which is exact.
 */
#include "kernels.h"

#ifdef __wasm_simd128__
#include <wasm_simd128.h>

static inline float hsum_f32x4(v128_t v) {
    return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) +
           wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3);
}

static inline int32_t hsum_i32x4(v128_t v) {
    return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) +
           wasm_i32x4_extract_lane(v, 2) + wasm_i32x4_extract_lane(v, 3);
}

static float l2sq_f32_wasm128(const float *a, const float *b, size_t n) {
    v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v128_t d0 = wasm_f32x4_sub(wasm_v128_load(a + i), wasm_v128_load(b + i));
        v128_t d1 = wasm_f32x4_sub(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4));
        v128_t d2 = wasm_f32x4_sub(wasm_v128_load(a + i + 8), wasm_v128_load(b + i + 8));
        v128_t d3 = wasm_f32x4_sub(wasm_v128_load(a + i + 12), wasm_v128_load(b + i + 12));
        s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(d0, d0));
        s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(d1, d1));
        s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(d2, d2));
        s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(d3, d3));
    }
    for (; i + 4 <= n; i += 4) {
        v128_t d = wasm_f32x4_sub(wasm_v128_load(a + i), wasm_v128_load(b + i));
        s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(d, d));
    }
    float sum = hsum_f32x4(wasm_f32x4_add(wasm_f32x4_add(s0, s1), wasm_f32x4_add(s2, s3)));
    for (; i < n; i++) {
        float d = a[i] - b[i];
        sum += d * d;
    }
    return sum;
}

static float dot_f32_wasm128(const float *a, const float *b, size_t n) {
    v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
        s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4)));
        s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(wasm_v128_load(a + i + 8), wasm_v128_load(b + i + 8)));
        s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(wasm_v128_load(a + i + 12), wasm_v128_load(b + i + 12)));
    }
    for (; i + 4 <= n; i += 4)
        s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
    float sum = hsum_f32x4(wasm_f32x4_add(wasm_f32x4_add(s0, s1), wasm_f32x4_add(s2, s3)));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

static int32_t dot_i8_wasm128(const int8_t *a, const int8_t *b, size_t n) {
    v128_t s = wasm_i32x4_splat(0);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v128_t va = wasm_v128_load(a + i), vb = wasm_v128_load(b + i);
        s = wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(va),
                                                    wasm_i16x8_extend_low_i8x16(vb)));
        s = wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(va),
                                                    wasm_i16x8_extend_high_i8x16(vb)));
    }
    int32_t sum = hsum_i32x4(s);
    for (; i < n; i++) sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}

static int32_t l2sq_i8_wasm128(const int8_t *a, const int8_t *b, size_t n) {
    v128_t s = wasm_i32x4_splat(0);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v128_t va = wasm_v128_load(a + i), vb = wasm_v128_load(b + i);
        v128_t dl = wasm_i16x8_sub(wasm_i16x8_extend_low_i8x16(va), wasm_i16x8_extend_low_i8x16(vb));
        v128_t dh = wasm_i16x8_sub(wasm_i16x8_extend_high_i8x16(va), wasm_i16x8_extend_high_i8x16(vb));
        s = wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(dl, dl));
        s = wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(dh, dh));
    }
    int32_t sum = hsum_i32x4(s);
    for (; i < n; i++) {
        int32_t d = (int32_t)a[i] - (int32_t)b[i];
        sum += d * d;
    }
    return sum;
}

const shoal__kernels shoal__kernels_wasm128 = {
    "wasm-simd128", l2sq_f32_wasm128, dot_f32_wasm128, dot_i8_wasm128, l2sq_i8_wasm128,
};
#endif
