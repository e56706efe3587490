/*
 * kmeans.h -- k-means clustering over a row-major float matrix (kmeans.c).
 *
 * Knows nothing of indexes: it takes arrays, an allocator, a PRNG and a
 * kernel table, and returns a code.  IVF uses it for its coarse centroids
 * and for each product-quantizer codebook.
 */
#ifndef SHOAL_KMEANS_H
#define SHOAL_KMEANS_H

#include "internal.h"

typedef struct shoal__kmeans {
    /* In */
    uint32_t k;     /* clusters, 1..n */
    uint32_t dim;   /* floats per row */
    uint32_t iters; /* Lloyd iterations at most (0: k-means++ seeding and one assignment) */
    const shoal__kernels *kernels;
    shoal__mem *mem;
    shoal__rng *rng;
    double *objective; /* optional, iters + 1 entries: sum of squared distances
                          after each assignment (the seeding's first) */
    /* Out */
    uint32_t iters_run; /* Lloyd iterations done (stops early when nothing moves) */
    uint32_t reseeded;  /* empty clusters re-seeded */
} shoal__kmeans;

/*
 * Clusters n rows of data (n >= k) into km->k centroids written to
 * centroids[k * dim].  If assign is not NULL it receives each row's cluster
 * under the returned centroids.  Deterministic for a given rng state: every
 * float sum runs in a fixed order and ties go to the lower index.
 * Returns 0, SHOAL_EPARAM (n < k or k == 0) or SHOAL_ENOMEM (nothing written).
 */
int shoal__kmeans_run(shoal__kmeans *km, const float *data, uint32_t n, float *centroids,
                      uint32_t *assign);

/* Index of the row of centroids[k * dim] nearest x in squared L2 (the lower
 * index on ties); its distance in *dist if dist is not NULL. */
uint32_t shoal__kmeans_nearest(const shoal__kernels *kernels, const float *centroids,
                               uint32_t k, uint32_t dim, const float *x, float *dist);

/* m distinct indices of 0..n-1 (m <= n), uniformly, in increasing order
 * (Knuth's selection sampling: O(n) time, no memory beyond out). */
void shoal__sample_indices(shoal__rng *rng, uint32_t n, uint32_t m, uint32_t *out);

#endif
