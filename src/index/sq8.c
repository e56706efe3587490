/*
 * sq8.c -- fitting the int8 scalar quantizer (sq8.h) to a set of rows.
 */
#include "index/sq8.h"

#include <math.h>
#include <string.h>

/* The exponent of x's lowest set bit: x = odd * 2^result (x finite, nonzero;
 * from its bits, so the same in every build). */
static int low_bit_exponent(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t e = (u >> 23) & 0xffu, m = u & 0x7fffffu;
    int shift = e ? (int)e - 150 : -149; /* value = significand * 2^shift */
    uint32_t sig = e ? m | 0x800000u : m;
    while (!(sig & 1u)) {
        sig >>= 1;
        shift++;
    }
    return shift;
}

/* Dimension j's smallest and largest value over the rows (0 and 0 if none). */
static void range_of(uint32_t j, uint32_t n, shoal__sq8_row_fn row, const void *ctx, double *lo,
                    double *hi) {
    int seen = 0;
    *lo = *hi = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        const float *r = row(ctx, i);
        if (!r) continue;
        double x = r[j];
        if (!seen || x < *lo) *lo = x;
        if (!seen || x > *hi) *hi = x;
        seen = 1;
    }
}

/* The data's own grid (sq8.h): the coarsest power of two every value is a
 * multiple of, when the widest range spans at most 255 of its steps and
 * each dimension's centre -- the multiple of the step at or below its
 * midpoint -- is a float; else 0 (center untouched).  Every step is exact:
 * powers of two, and multiples of them within float's precision. */
static float grid_step(uint32_t dim, uint32_t n, shoal__sq8_row_fn row, const void *ctx,
                       double widest, float *center) {
    int low = 128; /* above any float's exponent: no nonzero value seen */
    double step = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        const float *r = row(ctx, i);
        if (!r) continue;
        for (uint32_t j = 0; j < dim; j++) {
            if (r[j] == 0.0f) continue;
            int e = low_bit_exponent(r[j]);
            if (e >= low) continue;
            if (e < -126) return 0.0f; /* a step below normal floats */
            low = e;
            step = 1.0;
            for (int k = 0; k < low; k++) step *= 2.0;
            for (int k = 0; k > low; k--) step *= 0.5;
            /* The step only shrinks: float data stops here, early. */
            if (widest > step * (2.0 * SHOAL__SQ8_CODE_MAX + 1.0)) return 0.0f;
        }
    }
    if (low > 127) return 0.0f; /* every value zero */
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t j = 0; j < dim; j++) {
            double lo, hi;
            range_of(j, n, row, ctx, &lo, &hi);
            double c = step * floor(0.5 * (lo + hi) / step);
            if (!pass && (double)(float)c != c) return 0.0f;
            if (pass) center[j] = (float)c;
        }
    return (float)step;
}

double shoal__sq8_fit(uint32_t dim, uint32_t n, shoal__sq8_row_fn row, const void *ctx,
                      float *center, float *scale) {
    double widest = 0.0;
    for (uint32_t j = 0; j < dim; j++) {
        double lo, hi;
        range_of(j, n, row, ctx, &lo, &hi);
        center[j] = (float)(0.5 * (lo + hi));
        if (hi - lo > widest) widest = hi - lo;
    }
    float grid = grid_step(dim, n, row, ctx, widest, center);
    if (grid > 0.0f) {
        *scale = grid;
        return shoal__sq8_reach(dim, center, *scale);
    }
    if (!(widest > 0.0)) widest = 1.0; /* every row equal: any scale works */
    *scale = (float)(widest * SHOAL__SQ8_HEADROOM / (2.0 * SHOAL__SQ8_CODE_MAX));
    if (!(*scale > 0.0f)) *scale = 1.0f; /* widest underflowed float */
    return shoal__sq8_reach(dim, center, *scale);
}

double shoal__sq8_reach(uint32_t dim, const float *center, float scale) {
    double reach = 0.0, step = (double)scale * SHOAL__SQ8_CODE_MAX;
    for (uint32_t j = 0; j < dim; j++) {
        double far = fabs((double)center[j]) + step;
        reach += far * far;
    }
    return reach; /* (+inf if the scale overflowed float: refused too) */
}
