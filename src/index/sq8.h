/*
 * sq8.h -- scalar quantization to int8, shared by HNSW (vectors) and IVF
 * (residuals): x[j] ~ center[j] + scale * code[j], code in -127..127, one
 * per-dimension centre and ONE scale for every dimension.
 *
 * One scale is what lets the exact int8 kernels (plain integer sums) score
 * codes against codes or against a quantized query; the price is that
 * dimensions much narrower than the widest get few distinct codes.  Every
 * step is written out in a fixed order in float or double (no libm, no
 * FMA), so codes are the same bytes in every build.
 */
#ifndef SHOAL_SQ8_H
#define SHOAL_SQ8_H

#include "internal.h"

#define SHOAL__SQ8_CODE_MAX 127
/* The fitted range is widened by 1/8 for values the sample missed. */
#define SHOAL__SQ8_HEADROOM 1.125

/* Row i of the fitting set, or NULL to skip it. */
typedef const float *(*shoal__sq8_row_fn)(const void *ctx, uint32_t i);

/* The bound a fit's reach must stay below (see shoal__sq8_fit). */
#define SHOAL__SQ8_REACH_MAX 0x1p125

/*
 * Sets center[dim] and *scale from rows 0..n-1 (dimension by dimension, min
 * and max in double; no allocation).  Data on a grid of its own -- every
 * value a multiple of one power of two s, the widest range at most 255 s:
 * 8-bit pixels, uint8 or int8 embeddings, anything stored in 8 bits and
 * scaled by a power of two -- gets scale s and each centre on the grid (the
 * multiple of s at or below its midpoint), so its codes are exact: every
 * value within 127 s of its centre decodes to itself (a range of exactly
 * 255 s clamps its top value one step).  Other data gets each dimension's
 * midpoint and the widest range times the headroom, over 2 * 127 steps.
 * An empty or constant set gives scale 1.  Returns the reach: sum_j
 * (|center[j]| + 127 scale)^2, in double, a bound on the squared length of
 * every code point.  A caller must refuse a fit whose reach is not below
 * SHOAL__SQ8_REACH_MAX: below it every quantity the codes lead to is
 * finite in float32, as it is for the vectors themselves
 * (SHOAL_LENGTH_MAX = 2^62) -- code points' squared
 * lengths and the dot formula's terms (each <= 2^125), their squared
 * distances to each other (<= 2^127) and to a vector or IVF residual
 * (length <= 2^63: < 2^127.6).  Vectors within SHOAL_LENGTH_MAX get there
 * only from ~1e18 up, when their extremes lie in many dimensions at once.
 */
double shoal__sq8_fit(uint32_t dim, uint32_t n, shoal__sq8_row_fn row, const void *ctx,
                      float *center, float *scale);

/* The reach of a quantizer (above); loaders refuse one at or above
 * SHOAL__SQ8_REACH_MAX, which no fit keeps. */
double shoal__sq8_reach(uint32_t dim, const float *center, float scale);

/* floor(x + 0.5) clamped to [lo, hi], in plain float steps; NaN -> lo. */
static inline int shoal__round_clamp(float x, int lo, int hi) {
    if (!(x > (float)lo)) return lo;
    if (x >= (float)hi) return hi;
    float y = x + 0.5f;
    int i = (int)y;
    if ((float)i > y) i--; /* truncation went up for negatives */
    return i < lo ? lo : i > hi ? hi : i;
}

/* codes[j] = round((v[j] - center[j]) / scale), clamped to +-127. */
static inline void shoal__sq8_encode(const float *v, const float *center, float scale,
                                     uint32_t dim, int8_t *codes) {
    for (uint32_t j = 0; j < dim; j++)
        codes[j] = (int8_t)shoal__round_clamp((v[j] - center[j]) / scale, -SHOAL__SQ8_CODE_MAX,
                                              SHOAL__SQ8_CODE_MAX);
}

/* out[j] = center[j] + scale * codes[j]. */
static inline void shoal__sq8_decode(const int8_t *codes, const float *center, float scale,
                                     uint32_t dim, float *out) {
    for (uint32_t j = 0; j < dim; j++) {
        float step = scale * (float)codes[j];
        out[j] = center[j] + step;
    }
}

#endif
