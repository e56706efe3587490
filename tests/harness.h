/*
 * harness.h -- a tiny test harness with typed checks that print both sides.
 *
 * A check that fails reports and lets the test go on, so one run shows every
 * broken value; the test is then counted as failed.  The same binary runs
 * natively, under sanitizers and as wasm under node:wasi, so it uses nothing
 * but the C standard library.
 */
#ifndef SHOAL_HARNESS_H
#define SHOAL_HARNESS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal.h"

typedef struct harness_test {
    const char *name;
    void (*fn)(void);
} harness_test;

/* Runs a suite's tests (or those whose name contains the filter). */
void harness_run(const char *suite, const harness_test *tests, size_t count);

/* Returns nonzero when the check passed, so a test can stop early. */
int harness_check(int ok, const char *file, int line, const char *expr, const char *detail);
int harness_check_int(const char *file, int line, const char *a_expr, const char *b_expr,
                      long long a, long long b);
int harness_check_near(const char *file, int line, const char *a_expr, const char *b_expr,
                       double a, double b, double tol);
int harness_check_str(const char *file, int line, const char *a_expr, const char *b_expr,
                      const char *a, const char *b);

#define CHECK(cond) harness_check(!!(cond), __FILE__, __LINE__, #cond, NULL)
#define CHECK_INT(a, b) \
    harness_check_int(__FILE__, __LINE__, #a, #b, (long long)(a), (long long)(b))
/* |a - b| <= tol * max(1, |a|, |b|): absolute near zero, relative elsewhere. */
#define CHECK_NEAR(a, b, tol) \
    harness_check_near(__FILE__, __LINE__, #a, #b, (double)(a), (double)(b), (tol))
#define CHECK_STR(a, b) harness_check_str(__FILE__, __LINE__, #a, #b, (a), (b))

/* --- a counting, failing allocator ------------------------------------- */

/* Counts live blocks and bytes (exact, through a size header), and fails
 * the allocation numbered fail_at (-1: never) to inject out-of-memory.
 * Initialise with TEST_COUNTING_INIT, then pass test_counting_allocator(). */
typedef struct test_counting {
    size_t live_bytes;
    long live_blocks;
    long fail_at; /* allocation number that fails; -1 = never */
    long calls;
} test_counting;

#define TEST_COUNTING_INIT {0, 0, -1, 0}

static inline void *test_counting_alloc(void *ctx, size_t size) {
    test_counting *c = ctx;
    if (c->fail_at >= 0 && c->calls++ == c->fail_at) return NULL;
    size_t *p = malloc(size + 16);
    if (!p) return NULL;
    *p = size;
    c->live_bytes += size;
    c->live_blocks++;
    return (char *)p + 16;
}

static inline void test_counting_free(void *ctx, void *ptr) {
    if (!ptr) return;
    test_counting *c = ctx;
    size_t *p = (size_t *)((char *)ptr - 16);
    c->live_bytes -= *p;
    c->live_blocks--;
    free(p);
}

static inline shoal_allocator test_counting_allocator(test_counting *c) {
    shoal_allocator a = {test_counting_alloc, test_counting_free, c};
    return a;
}

/* --- ids ------------------------------------------------------------- */

/* A batch of ids "<prefix><first + i>" in the API's bytes + offsets form. */
typedef struct test_ids {
    char *bytes;
    uint32_t *offsets;
    uint32_t n;
} test_ids;

static inline void test_ids_make(test_ids *ids, const char *prefix, uint32_t first, uint32_t n) {
    size_t cap = (size_t)n * (strlen(prefix) + 11) + 1;
    ids->bytes = malloc(cap);
    ids->offsets = malloc(((size_t)n + 1) * sizeof *ids->offsets);
    ids->n = n;
    uint32_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        ids->offsets[i] = at;
        at += (uint32_t)snprintf(ids->bytes + at, cap - at, "%s%u", prefix, first + i);
    }
    ids->offsets[n] = at;
}

static inline void test_ids_free(test_ids *ids) {
    free(ids->bytes);
    free(ids->offsets);
    memset(ids, 0, sizeof *ids);
}

/* --- results ---------------------------------------------------------- */

/* The row number n of a record whose id is one letter and n ("v12", "r7"),
 * or -1 for another id or a dead label. */
static inline long test_row_of(const shoal_index *index, uint32_t label) {
    const char *id;
    int len = shoal_index_label_id(index, label, &id);
    if (len < 2) return -1;
    long row = 0;
    for (int i = 1; i < len; i++) {
        if (id[i] < '0' || id[i] > '9') return -1;
        row = row * 10 + (id[i] - '0');
    }
    return row;
}

/* Mean recall@k (k <= 64) of approx against exact over nq queries, matching
 * rows by id; also checks that each result list is sorted by distance. */
static inline double test_recall_at_k(shoal_index *approx, shoal_index *exact, const float *queries,
                                 uint32_t nq, uint32_t dim, uint32_t k,
                                 const shoal_search_params *sp) {
    uint32_t la[64], lb[64];
    float da[64], db[64];
    double hits = 0, total = 0;
    for (uint32_t q = 0; q < nq; q++) {
        const float *v = queries + (size_t)q * dim;
        int na = shoal_index_search(approx, v, dim, k, sp, la, da);
        int nb = shoal_index_search(exact, v, dim, k, sp, lb, db);
        if (!CHECK_INT(na, nb)) return 0;
        for (int i = 1; i < na; i++) CHECK(da[i] >= da[i - 1]);
        for (int i = 0; i < nb; i++) {
            long want = test_row_of(exact, lb[i]);
            for (int j = 0; j < na; j++)
                if (test_row_of(approx, la[j]) == want) {
                    hits++;
                    break;
                }
        }
        total += nb;
    }
    return total ? hits / total : 1.0;
}

/* --- seeded test data, the same in C and in tests/js/data.mjs ----------- */

/* splitmix64; floats are (x >> 40) / 2^24 * 2 - 1, exactly representable. */
typedef struct test_rng {
    uint64_t state;
} test_rng;

static inline uint64_t test_rng_next(test_rng *r) {
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline float test_rng_float(test_rng *r) {
    return (float)(test_rng_next(r) >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;
}

static inline void test_fill(test_rng *r, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = test_rng_float(r);
}

/* n points scattered (spread * a sum of three uniforms, roughly Gaussian)
 * around `clusters` random centres: structure that approximate indexes must
 * navigate, unlike uniform noise.  malloc'd; the caller frees. */
static inline float *test_clustered(uint64_t seed, uint32_t n, uint32_t dim, uint32_t clusters,
                                    float spread) {
    test_rng r = {seed};
    float *centers = malloc((size_t)clusters * dim * sizeof *centers);
    float *data = malloc((size_t)n * dim * sizeof *data);
    test_fill(&r, centers, (size_t)clusters * dim);
    for (uint32_t i = 0; i < n; i++) {
        const float *c = centers + (size_t)(test_rng_next(&r) % clusters) * dim;
        for (uint32_t j = 0; j < dim; j++) {
            float g = test_rng_float(&r) + test_rng_float(&r) + test_rng_float(&r);
            data[(size_t)i * dim + j] = c[j] + spread * g;
        }
    }
    free(centers);
    return data;
}

/* Saves index and loads the segment back: the loaded index's size, or the
 * error code of the call that failed. */
static inline int test_reload_size(shoal_index *index) {
    uint8_t *seg = NULL;
    size_t size = 0;
    shoal_index *loaded = NULL;
    int rc = shoal_index_save(index, NULL, &seg, &size);
    if (rc) return rc;
    rc = shoal_index_load(seg, size, NULL, &loaded);
    shoal_index_free_bytes(index, seg);
    if (rc) return rc;
    rc = (int)shoal_index_size(loaded);
    shoal_index_free(loaded);
    return rc;
}

/* Rounds each value down to a multiple of 2^-7, exact in float and double
 * (data with a grid of its own for SQ8; tests/js/xbuild.test.mjs does the
 * same). */
static inline void test_on_grid(float *v, size_t n) {
    for (size_t i = 0; i < n; i++) v[i] = floorf(v[i] * 128.0f) / 128.0f;
}

/* The number of the section of `kind` in a segment, or UINT32_MAX if none. */
static inline uint32_t test_find_section(const uint8_t *seg, uint32_t kind) {
    uint32_t count = (uint32_t)seg[40] | (uint32_t)seg[41] << 8 | (uint32_t)seg[42] << 16 |
                     (uint32_t)seg[43] << 24;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = seg + 64 + 48 * (size_t)i;
        if (((uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 |
             (uint32_t)e[3] << 24) == kind)
            return i;
    }
    return UINT32_MAX;
}

/* Where section i's stored bytes begin in the segment. */
static inline size_t test_section_start(const uint8_t *seg, uint32_t i) {
    const uint8_t *e = seg + 64 + 48 * (size_t)i;
    uint64_t off = 0;
    for (int b = 7; b >= 0; b--) off = off << 8 | e[16 + b];
    return (size_t)off;
}

/* Recomputes the CRCs a segment's header and table carry: of section i's
 * stored bytes (if i < count), of the table, of the header. */
static inline void test_fix_crcs(uint8_t *seg, size_t size, uint32_t section) {
    uint32_t count = (uint32_t)seg[40] | (uint32_t)seg[41] << 8 | (uint32_t)seg[42] << 16 |
                     (uint32_t)seg[43] << 24;
    if (section < count) {
        uint8_t *e = seg + 64 + 48 * (size_t)section;
        uint64_t off = 0, stored = 0;
        for (int b = 7; b >= 0; b--) {
            off = off << 8 | e[16 + b];
            stored = stored << 8 | e[24 + b];
        }
        if (off <= size && stored <= size - off) {
            uint32_t crc = shoal_crc32c(0, seg + off, (size_t)stored);
            for (int b = 0; b < 4; b++) e[12 + b] = (uint8_t)(crc >> (8 * b));
        }
    }
    uint32_t table = shoal_crc32c(0, seg + 64, 48 * (size_t)count);
    for (int b = 0; b < 4; b++) seg[48 + b] = (uint8_t)(table >> (8 * b));
    uint32_t head = shoal_crc32c(0, seg, 60);
    for (int b = 0; b < 4; b++) seg[60 + b] = (uint8_t)(head >> (8 * b));
}

#endif
