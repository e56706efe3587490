/*
 * kernels_scalar.c -- the reference kernels.
 *
 * Plain loops with one accumulator, compiled with auto-vectorization off
 * (see the Makefile) so that they stay the readable specification and the
 * honest baseline the SIMD files are measured against.  The wasm baseline
 * build uses these too.
 */
#include "kernels.h"

static float l2sq_f32_scalar(const float *a, const float *b, size_t n) {
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = a[i] - b[i];
        sum += d * d;
    }
    return sum;
}

static float dot_f32_scalar(const float *a, const float *b, size_t n) {
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++) sum += a[i] * b[i];
    return sum;
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

const shoal__kernels shoal__kernels_scalar = {
    "scalar", l2sq_f32_scalar, dot_f32_scalar, dot_i8_scalar, l2sq_i8_scalar,
};
