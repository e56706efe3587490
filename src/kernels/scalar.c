/*
 * kernels_scalar.c -- the reference kernels.
 *
 * Plain loops, compiled with auto-vectorization off (see the Makefile) so
 * that they stay the readable specification and the honest baseline the SIMD
 * files are measured against.  The wasm baseline build uses these too.
 */
#include "kernels.h"

#include <string.h>

/* The f32 summation order every table reproduces bit for bit: element i
 * goes to lane i % SHOAL_F32_LANES, each lane adds its terms in order with
 * the product rounded before the add (no FMA), and the lanes are folded in
 * halves: lane l += lane l + 16, then l += l + 8, ... down to one.  So a
 * distance is the same float natively, in wasm and under WASI, and an index
 * built anywhere is the same graph. */
static float fold_lanes(float *lanes) {
    for (int half = SHOAL_F32_LANES / 2; half >= 1; half /= 2)
        for (int l = 0; l < half; l++) lanes[l] += lanes[l + half];
    return lanes[0];
}

static float l2sq_f32_scalar(const float *a, const float *b, size_t n) {
    float lanes[SHOAL_F32_LANES] = {0};
    for (size_t i = 0; i < n; i++) {
        float d = a[i] - b[i];
        lanes[i % SHOAL_F32_LANES] += d * d;
    }
    return fold_lanes(lanes);
}

/* l2sq_f32, but every SHOAL_L2_CHECK elements a copy of the lanes is folded
 * the same way, and that partial sum is returned once it reaches bound.
 * The full sum can only be larger (every term is >= 0, and adding a
 * non-negative float never rounds down), so a caller that only asks "is it
 * below bound?" gets the answer of the full sum; below bound the result is
 * the full sum's bits. */
static float l2sq_f32_below_scalar(const float *a, const float *b, size_t n, float bound) {
    float lanes[SHOAL_F32_LANES] = {0};
    for (size_t i = 0; i < n; i++) {
        float d = a[i] - b[i];
        lanes[i % SHOAL_F32_LANES] += d * d;
        if ((i + 1) % SHOAL_L2_CHECK == 0 && i + 1 < n) {
            float partial[SHOAL_F32_LANES];
            memcpy(partial, lanes, sizeof partial);
            float sum = fold_lanes(partial);
            if (sum >= bound) return sum;
        }
    }
    return fold_lanes(lanes);
}

static float dot_f32_scalar(const float *a, const float *b, size_t n) {
    float lanes[SHOAL_F32_LANES] = {0};
    for (size_t i = 0; i < n; i++) lanes[i % SHOAL_F32_LANES] += a[i] * b[i];
    return fold_lanes(lanes);
}

static int32_t dot_i8_scalar(const int8_t *a, const int8_t *b, size_t n) {
    int32_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}

static int32_t l2sq_i8_scalar(const int8_t *a, const int8_t *b, size_t n) {
    int32_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t d = (int32_t)a[i] - (int32_t)b[i];
        sum += d * d;
    }
    return sum;
}

static int32_t dot_i16_i8_scalar(const int16_t *q, const int8_t *c, size_t n) {
    int32_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += (int32_t)q[i] * (int32_t)c[i];
    return sum;
}

/* The fast-scan specification: plain table lookups, uint16 wraparound. */
static void pq4_scan_scalar(const uint8_t *codes, const uint8_t *lut, size_t m2, size_t nblocks,
                            uint16_t *out) {
    for (size_t b = 0; b < nblocks; b++, codes += m2 * 16, out += SHOAL_PQ4_BLOCK) {
        uint16_t acc[SHOAL_PQ4_BLOCK] = {0};
        for (size_t j = 0; j < m2; j++) {
            const uint8_t *c = codes + 16 * j, *t = lut + 16 * j;
            for (int i = 0; i < 16; i++) {
                acc[i] = (uint16_t)(acc[i] + t[c[i] & 15]);
                acc[i + 16] = (uint16_t)(acc[i + 16] + t[c[i] >> 4]);
            }
        }
        for (int i = 0; i < SHOAL_PQ4_BLOCK; i++) out[i] = acc[i];
    }
}

const shoal__kernels shoal__kernels_scalar = {
    "scalar", l2sq_f32_scalar, dot_f32_scalar, dot_i8_scalar, l2sq_i8_scalar, pq4_scan_scalar,
    l2sq_f32_below_scalar, dot_i16_i8_scalar,
};
