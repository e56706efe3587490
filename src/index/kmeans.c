/*
 * kmeans.c -- k-means++ seeding followed by Lloyd iterations.
 *
 * What it does
 *   Seeding is k-means++ (Arthur & Vassilvitskii, 2007): the first centre is
 *   a uniformly drawn row, each next one a row drawn with probability
 *   proportional to its squared distance to the nearest centre chosen so
 *   far.  Then Lloyd's algorithm alternates assignment (every row to its
 *   nearest centre) and update (every centre to the mean of its rows) until
 *   `iters` updates are done or an assignment moves no row.  The last step is
 *   always an assignment, so the assignment handed back matches the
 *   centroids handed back.
 *
 * Empty clusters
 *   After an update, a cluster that received no row is re-seeded with the row
 *   farthest from its centre (then the next farthest for the next empty
 *   cluster, and so on).  That row's distance becomes zero, so the objective
 *   still cannot grow, and no centroid is left where nothing can reach it.
 *   faiss instead splits a large cluster by perturbing its centre; taking the
 *   worst-served row needs no random perturbation and no tuning constant.
 *
 * Determinism
 *   The same rng state and data give the same centroids in every build: the
 *   distances come from the kernel table, whose f32 results are the same bits
 *   everywhere (kernels_scalar.c), or below 16 floats from a sequential sum; sums of distances and of coordinates are
 *   accumulated in double in row order; no libm call is made; ties go to
 *   the lower index.
 *
 * Memory
 *   Beyond the caller's arrays: n floats (distances), n uint32 (assignment,
 *   unless the caller passes one), k * dim doubles and k counts.  Never an
 *   n x k matrix.  Callers bound n by sampling (shoal__sample_indices).
 *
 * XXX: assignment is brute force, n * k distances per iteration.  Hamerly's
 * or Elkan's bounds would skip most of them after the first iterations, and
 * a blocked (GEMM-like) kernel would reuse each loaded row for several
 * centres; both are left for when training time matters.
 */
#include "kmeans.h"

/* Below one kernel block (PQ sub-vectors are 2..8 floats) a plain
 * sequential sum is several times faster than a kernel call, whose 32-lane
 * fold alone costs 31 adds.  Both orders are fixed, so both are the same in
 * every build; which one applies depends only on dim. */
static inline float l2sq_short(const float *a, const float *b, size_t n) {
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = a[i] - b[i];
        sum += d * d;
    }
    return sum;
}

typedef float (*l2_fn)(const float *, const float *, size_t);

static l2_fn pick_l2(const shoal__kernels *kernels, uint32_t dim) {
    return dim < SHOAL_F32_LANES / 2 ? l2sq_short : kernels->l2sq_f32;
}

uint32_t shoal__kmeans_nearest(const shoal__kernels *kernels, const float *centroids,
                               uint32_t k, uint32_t dim, const float *x, float *dist) {
    l2_fn l2 = pick_l2(kernels, dim);
    uint32_t best = 0;
    float best_d;
    if (l2 == l2sq_short) {
        /* A direct call the compiler inlines, not one through the
         * pointer per centre (PQ training runs this on 2..8-float
         * sub-vectors). */
        best_d = l2sq_short(x, centroids, dim);
        for (uint32_t c = 1; c < k; c++) {
            float d = l2sq_short(x, centroids + (size_t)c * dim, dim);
            if (d < best_d) {
                best_d = d;
                best = c;
            }
        }
    } else {
        best_d = l2(x, centroids, dim);
        for (uint32_t c = 1; c < k; c++) {
            float d = l2(x, centroids + (size_t)c * dim, dim);
            if (d < best_d) {
                best_d = d;
                best = c;
            }
        }
    }
    if (dist) *dist = best_d;
    return best;
}

void shoal__sample_indices(shoal__rng *rng, uint32_t n, uint32_t m, uint32_t *out) {
    uint32_t chosen = 0;
    for (uint32_t i = 0; i < n && chosen < m; i++) {
        /* Row i is taken with probability (still needed) / (still left). */
        double u = shoal__rng_double(rng);
        if (u * (double)(n - i) < (double)(m - chosen)) out[chosen++] = i;
    }
}

/* Uniform in 0..n-1 (n >= 1); the modulo bias is below 2^-32 for n < 2^32. */
static uint32_t uniform(shoal__rng *rng, uint32_t n) {
    return (uint32_t)(shoal__rng_next(rng) % n);
}

/* k-means++ seeding; dist receives each row's distance to its nearest centre. */
static void seed_plus_plus(const shoal__kmeans *km, const float *data, uint32_t n,
                           float *centroids, float *dist) {
    size_t dim = km->dim;
    l2_fn l2 = pick_l2(km->kernels, km->dim);
    uint32_t first = uniform(km->rng, n);
    memcpy(centroids, data + first * dim, dim * sizeof *centroids);
    for (uint32_t i = 0; i < n; i++)
        dist[i] = l2(data + i * dim, centroids, dim);
    for (uint32_t c = 1; c < km->k; c++) {
        double total = 0.0;
        for (uint32_t i = 0; i < n; i++) total += dist[i];
        uint32_t pick;
        if (total > 0.0) {
            double r = shoal__rng_double(km->rng) * total, run = 0.0;
            pick = n - 1;
            for (uint32_t i = 0; i < n; i++) {
                run += dist[i];
                if (run > r && dist[i] > 0.0f) {
                    pick = i;
                    break;
                }
            }
            /* Rounding can leave r at the very end: take the last row that
             * is not yet a centre. */
            while (dist[pick] == 0.0f && pick > 0) pick--;
        } else {
            pick = uniform(km->rng, n); /* every row sits on a centre: duplicates */
        }
        float *centre = centroids + (size_t)c * dim;
        memcpy(centre, data + (size_t)pick * dim, dim * sizeof *centre);
        for (uint32_t i = 0; i < n; i++) {
            float d = l2(data + (size_t)i * dim, centre, dim);
            if (d < dist[i]) dist[i] = d;
        }
    }
}

/* Assigns every row; returns how many rows changed cluster and the objective. */
static uint32_t assign_rows(const shoal__kmeans *km, const float *data, uint32_t n,
                            const float *centroids, uint32_t *assign, float *dist,
                            double *objective) {
    uint32_t moved = 0;
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = shoal__kmeans_nearest(km->kernels, centroids, km->k, km->dim,
                                           data + (size_t)i * km->dim, &dist[i]);
        moved += c != assign[i];
        assign[i] = c;
        sum += dist[i];
    }
    *objective = sum;
    return moved;
}

/* Centroids as the means of their rows; empty clusters take the rows
 * farthest from their centres. */
static void update_centroids(shoal__kmeans *km, const float *data, uint32_t n,
                             float *centroids, const uint32_t *assign, float *dist, double *sums,
                             uint32_t *counts) {
    size_t dim = km->dim;
    memset(sums, 0, (size_t)km->k * dim * sizeof *sums);
    memset(counts, 0, (size_t)km->k * sizeof *counts);
    for (uint32_t i = 0; i < n; i++) {
        double *s = sums + (size_t)assign[i] * dim;
        const float *x = data + (size_t)i * dim;
        for (size_t j = 0; j < dim; j++) s[j] += x[j];
        counts[assign[i]]++;
    }
    for (uint32_t c = 0; c < km->k; c++) {
        float *centre = centroids + (size_t)c * dim;
        if (counts[c]) {
            const double *s = sums + (size_t)c * dim;
            for (size_t j = 0; j < dim; j++) centre[j] = (float)(s[j] / counts[c]);
            continue;
        }
        uint32_t far = 0;
        for (uint32_t i = 1; i < n; i++)
            if (dist[i] > dist[far]) far = i;
        memcpy(centre, data + (size_t)far * dim, dim * sizeof *centre);
        dist[far] = 0.0f; /* the next empty cluster takes another row */
        km->reseeded++;
    }
}

int shoal__kmeans_run(shoal__kmeans *km, const float *data, uint32_t n, float *centroids,
                      uint32_t *assign) {
    km->iters_run = 0;
    km->reseeded = 0;
    if (km->k == 0 || n < km->k || km->dim == 0) return SHOAL_EPARAM;
    float *dist = shoal__alloc(km->mem, (size_t)n * sizeof *dist);
    uint32_t *own = assign ? NULL : shoal__alloc(km->mem, (size_t)n * sizeof *own);
    double *sums = shoal__alloc(km->mem, (size_t)km->k * km->dim * sizeof *sums);
    uint32_t *counts = shoal__alloc(km->mem, (size_t)km->k * sizeof *counts);
    int rc = SHOAL_OK;
    if (!dist || (!assign && !own) || !sums || !counts) {
        rc = SHOAL_ENOMEM;
        goto done;
    }
    if (!assign) assign = own;

    seed_plus_plus(km, data, n, centroids, dist);
    for (uint32_t i = 0; i < n; i++) assign[i] = UINT32_MAX;
    double objective;
    assign_rows(km, data, n, centroids, assign, dist, &objective);
    if (km->objective) km->objective[0] = objective;
    for (uint32_t it = 0; it < km->iters; it++) {
        update_centroids(km, data, n, centroids, assign, dist, sums, counts);
        uint32_t moved = assign_rows(km, data, n, centroids, assign, dist, &objective);
        km->iters_run = it + 1;
        if (km->objective) km->objective[it + 1] = objective;
        if (moved == 0) break;
    }
done:
    shoal__free(km->mem, dist);
    shoal__free(km->mem, own);
    shoal__free(km->mem, sums);
    shoal__free(km->mem, counts);
    return rc;
}
