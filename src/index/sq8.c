/*
 * sq8.c -- fitting the int8 scalar quantizer (sq8.h) to a set of rows.
 */
#include "index/sq8.h"

#include <math.h>

double shoal__sq8_fit(uint32_t dim, uint32_t n, shoal__sq8_row_fn row, const void *ctx,
                      float *center, float *scale) {
    double widest = 0.0;
    for (uint32_t j = 0; j < dim; j++) {
        double lo = 0.0, hi = 0.0;
        int seen = 0;
        for (uint32_t i = 0; i < n; i++) {
            const float *r = row(ctx, i);
            if (!r) continue;
            double x = r[j];
            if (!seen || x < lo) lo = x;
            if (!seen || x > hi) hi = x;
            seen = 1;
        }
        center[j] = (float)(0.5 * (lo + hi));
        if (hi - lo > widest) widest = hi - lo;
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
