/*
 * test_flat.c -- the exact index and the common layer behind every kind:
 * results against a double-precision brute force, ids, upsert, delete,
 * deterministic ties, filters, and every kind of bad input.
 */
#include <stdlib.h>

#include "harness.h"
#include "shoal.h"

static shoal_index *make_index(uint32_t dim, shoal_metric metric, shoal_simd simd) {
    shoal_params p;
    shoal_params_init(&p);
    p.dim = dim;
    p.metric = metric;
    p.simd = simd;
    shoal_index *index = NULL;
    CHECK_INT(shoal_index_new(&p, &index), SHOAL_OK);
    return index;
}

/* The reference: distance in double, straight from the definition. */
static double reference_distance(shoal_metric metric, const float *a, const float *b,
                                 uint32_t dim) {
    double dot = 0, na = 0, nb = 0, l2 = 0;
    for (uint32_t j = 0; j < dim; j++) {
        dot += (double)a[j] * b[j];
        na += (double)a[j] * a[j];
        nb += (double)b[j] * b[j];
        l2 += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
    }
    if (metric == SHOAL_METRIC_L2) return l2;
    if (metric == SHOAL_METRIC_IP) return -dot;
    return 1.0 - dot / sqrt(na * nb);
}

typedef struct ranked {
    double distance;
    uint32_t row;
} ranked;

static int by_distance_then_row(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->distance != y->distance) return x->distance < y->distance ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

/* Searches and compares with the brute force: same ids in the same order
 * wherever neighbouring reference distances are not within float noise. */
static void check_against_reference(shoal_index *index, shoal_metric metric, const float *data,
                                    uint32_t n, uint32_t dim, const float *query, uint32_t k) {
    ranked *ref = malloc(n * sizeof *ref);
    for (uint32_t i = 0; i < n; i++) {
        ref[i].distance = reference_distance(metric, query, data + (size_t)i * dim, dim);
        ref[i].row = i;
    }
    qsort(ref, n, sizeof *ref, by_distance_then_row);
    uint32_t labels[64];
    float distances[64];
    int found = shoal_index_search(index, query, dim, k, NULL, labels, distances);
    CHECK_INT(found, k < n ? k : n);
    for (int i = 0; i < found; i++) {
        CHECK_NEAR(distances[i], ref[i].distance, 1e-4);
        int close_call = (i > 0 && fabs(ref[i].distance - ref[i - 1].distance) < 1e-4) ||
                         (i + 1 < (int)n && fabs(ref[i + 1].distance - ref[i].distance) < 1e-4);
        if (!close_call) CHECK_INT(test_row_of(index, labels[i]), ref[i].row);
        if (i > 0) CHECK(distances[i] >= distances[i - 1]);
    }
    free(ref);
}

static void test_matches_brute_force(void) {
    const uint32_t n = 600, dim = 37, k = 10;
    test_rng rng = {7};
    float *data = malloc((size_t)n * dim * sizeof *data);
    float query[37];
    test_fill(&rng, data, (size_t)n * dim);
    test_ids ids;
    test_ids_make(&ids, "v", 0, n);
    shoal_simd simds[] = {SHOAL_SIMD_SCALAR, SHOAL_SIMD_AUTO};
    for (int m = 0; m <= SHOAL_METRIC_COSINE; m++) {
        for (int s = 0; s < 2; s++) {
            shoal_index *index = make_index(dim, (shoal_metric)m, simds[s]);
            CHECK_INT(shoal_index_add(index, n, ids.bytes, ids.offsets, data, dim), n);
            CHECK_INT(shoal_index_size(index), n);
            CHECK_INT(shoal_index_check(index), SHOAL_OK);
            for (int q = 0; q < 10; q++) {
                test_fill(&rng, query, dim);
                check_against_reference(index, (shoal_metric)m, data, n, dim, query, k);
            }
            /* k larger than the index returns everything. */
            uint32_t labels[64];
            float distances[64];
            shoal_index *small = make_index(dim, (shoal_metric)m, simds[s]);
            CHECK_INT(shoal_index_add(small, 5, ids.bytes, ids.offsets, data, dim), 5);
            CHECK_INT(shoal_index_search(small, query, dim, 64, NULL, labels, distances), 5);
            shoal_index_free(small);
            shoal_index_free(index);
        }
    }
    test_ids_free(&ids);
    free(data);
}

static void test_ties_follow_insertion_order(void) {
    const uint32_t dim = 8;
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8}, other[8] = {-9, -9, -9, -9, -9, -9, -9, -9}; /* far under every metric */
    float batch[5 * 8];
    for (int i = 0; i < 5; i++) memcpy(batch + i * 8, v, sizeof v);
    const char *names = "abcde";
    uint32_t offsets[6] = {0, 1, 2, 3, 4, 5};
    for (int m = 0; m <= SHOAL_METRIC_COSINE; m++) {
        shoal_index *index = make_index(dim, (shoal_metric)m, SHOAL_SIMD_AUTO);
        uint32_t o2[2] = {0, 1};
        CHECK_INT(shoal_index_add(index, 1, "z", o2, other, dim), 1);
        CHECK_INT(shoal_index_add(index, 5, names, offsets, batch, dim), 5);
        uint32_t labels[3];
        float distances[3];
        const char *id;
        CHECK_INT(shoal_index_search(index, v, dim, 3, NULL, labels, distances), 3);
        for (int i = 0; i < 3; i++) {
            CHECK_INT(shoal_index_label_id(index, labels[i], &id), 1);
            CHECK_INT(id[0], names[i]);
            CHECK(distances[i] == distances[0]);
        }
        /* Re-adding "a" makes it the newest of the tied records. */
        CHECK_INT(shoal_index_add(index, 1, "a", o2, v, dim), 1);
        CHECK_INT(shoal_index_search(index, v, dim, 3, NULL, labels, distances), 3);
        for (int i = 0; i < 3; i++) {
            shoal_index_label_id(index, labels[i], &id);
            CHECK_INT(id[0], names[i + 1]);
        }
        CHECK_INT(shoal_index_check(index), SHOAL_OK);
        shoal_index_free(index);
    }
}

static void test_upsert_get_delete(void) {
    const uint32_t dim = 4;
    shoal_index *index = make_index(dim, SHOAL_METRIC_L2, SHOAL_SIMD_AUTO);
    float a[4] = {1, 0, 0, 0}, b[4] = {0, 1, 0, 0}, out[4];
    uint32_t o1[2] = {0, 5};
    CHECK_INT(shoal_index_add(index, 1, "alpha", o1, a, dim), 1);
    CHECK_INT(shoal_index_get(index, "alpha", 5, out), SHOAL_OK);
    CHECK(memcmp(out, a, sizeof a) == 0);
    CHECK_INT(shoal_index_add(index, 1, "alpha", o1, b, dim), 1);
    CHECK_INT(shoal_index_size(index), 1);
    CHECK_INT(shoal_index_get(index, "alpha", 5, out), SHOAL_OK);
    CHECK(memcmp(out, b, sizeof b) == 0);
    CHECK_INT(shoal_index_get(index, "beta", 4, out), SHOAL_ENOTFOUND);
    CHECK(strstr(shoal_index_errmsg(index), "beta") != NULL);
    CHECK_INT(shoal_index_check(index), SHOAL_OK);

    /* The same id twice in one batch: the later wins, and the call counts
     * the one record it wrote. */
    float two[8] = {1, 1, 1, 1, 2, 2, 2, 2};
    uint32_t o2[3] = {0, 3, 6};
    CHECK_INT(shoal_index_add(index, 2, "dupdup", o2, two, dim), 1);
    CHECK_INT(shoal_index_size(index), 2);
    CHECK_INT(shoal_index_get(index, "dup", 3, out), SHOAL_OK);
    CHECK_INT(out[0], 2);

    /* Delete: present, absent, and again. */
    CHECK_INT(shoal_index_delete(index, 1, "alpha", o1), 1);
    CHECK_INT(shoal_index_delete(index, 1, "alpha", o1), 0);
    CHECK_INT(shoal_index_size(index), 1);
    CHECK_INT(shoal_index_label_of(index, "alpha", 5), SHOAL_ENOTFOUND);
    CHECK_INT(shoal_index_check(index), SHOAL_OK);
    uint32_t labels[4];
    float distances[4];
    CHECK_INT(shoal_index_search(index, b, dim, 4, NULL, labels, distances), 1);
    const char *id;
    CHECK_INT(shoal_index_label_id(index, labels[0], &id), 3);
    CHECK(memcmp(id, "dup", 3) == 0);
    CHECK_INT(shoal_index_delete(index, 1, "dup", o2), 1);
    CHECK_INT(shoal_index_search(index, b, dim, 4, NULL, labels, distances), 0);
    shoal_index_free(index);
}

static void test_labels_are_reused(void) {
    const uint32_t n = 100, dim = 3;
    test_rng rng = {11};
    float data[300];
    test_fill(&rng, data, 300);
    test_ids ids;
    test_ids_make(&ids, "r", 0, n);
    shoal_index *index = make_index(dim, SHOAL_METRIC_L2, SHOAL_SIMD_AUTO);
    for (int round = 0; round < 5; round++) {
        CHECK_INT(shoal_index_add(index, n, ids.bytes, ids.offsets, data, dim), n);
        CHECK_INT(shoal_index_delete(index, n / 2, ids.bytes, ids.offsets), n / 2);
        CHECK_INT(shoal_index_check(index), SHOAL_OK);
    }
    /* Each round re-adds 50 deleted and replaces 50 live ids: labels recycle. */
    CHECK(shoal_index_label_bound(index) <= n + n / 2);
    CHECK_INT(shoal_index_size(index), n / 2);
    shoal_index_free(index);
    test_ids_free(&ids);
}

static int even_rows_only(void *ctx, uint32_t label) {
    return test_row_of(ctx, label) % 2 == 0;
}

static void test_filters(void) {
    const uint32_t n = 300, dim = 16;
    test_rng rng = {5};
    float *data = malloc((size_t)n * dim * sizeof *data), query[16];
    test_fill(&rng, data, (size_t)n * dim);
    test_fill(&rng, query, dim);
    test_ids ids;
    test_ids_make(&ids, "v", 0, n);
    shoal_index *index = make_index(dim, SHOAL_METRIC_L2, SHOAL_SIMD_AUTO);
    shoal_index_add(index, n, ids.bytes, ids.offsets, data, dim);

    shoal_search_params sp;
    shoal_search_params_init(&sp);
    sp.filter = even_rows_only;
    sp.filter_ctx = index;
    uint32_t labels[20];
    float distances[20];
    CHECK_INT(shoal_index_search(index, query, dim, 20, &sp, labels, distances), 20);
    for (int i = 0; i < 20; i++) CHECK_INT(test_row_of(index, labels[i]) % 2, 0);

    /* Bitmap allowing rows 10..12 only: fewer matches than k. */
    uint32_t bound = shoal_index_label_bound(index);
    uint8_t *bitmap = calloc((bound + 7) / 8, 1);
    for (uint32_t row = 10; row <= 12; row++) {
        char id[8];
        int len = snprintf(id, sizeof id, "v%u", row);
        int label = shoal_index_label_of(index, id, (uint32_t)len);
        CHECK(label >= 0);
        bitmap[label / 8] |= (uint8_t)(1u << (label % 8));
    }
    shoal_search_params_init(&sp);
    sp.filter_bitmap = bitmap;
    sp.filter_bitmap_bits = bound;
    CHECK_INT(shoal_index_search(index, query, dim, 20, &sp, labels, distances), 3);
    for (int i = 0; i < 3; i++) {
        long row = test_row_of(index, labels[i]);
        CHECK(row >= 10 && row <= 12);
    }
    free(bitmap);
    shoal_index_free(index);
    test_ids_free(&ids);
    free(data);
}

static void test_cosine_normalizes(void) {
    const uint32_t dim = 5;
    shoal_index *index = make_index(dim, SHOAL_METRIC_COSINE, SHOAL_SIMD_AUTO);
    float v[10] = {3, 4, 0, 0, 0, 0, 0, 1, 0, 0}, out[5];
    uint32_t o[3] = {0, 1, 2};
    CHECK_INT(shoal_index_add(index, 2, "xy", o, v, dim), 2);
    CHECK_INT(shoal_index_get(index, "x", 1, out), SHOAL_OK);
    CHECK_NEAR(out[0], 0.6, 1e-6);
    CHECK_NEAR(out[1], 0.8, 1e-6);
    /* Scaling the query changes nothing. */
    float q[5] = {30, 40, 0, 0, 0};
    uint32_t labels[2];
    float distances[2];
    CHECK_INT(shoal_index_search(index, q, dim, 2, NULL, labels, distances), 2);
    CHECK_NEAR(distances[0], 0.0, 1e-6);
    CHECK_NEAR(distances[1], 1.0, 1e-6);
    shoal_index_free(index);
}

/* A snapshot to prove a failed call changed nothing. */
typedef struct snapshot {
    uint32_t size, bound;
    uint32_t labels[10];
    float distances[10];
    int found;
} snapshot;

static snapshot take_snapshot(shoal_index *index, const float *query) {
    snapshot s;
    memset(&s, 0, sizeof s);
    s.size = shoal_index_size(index);
    s.bound = shoal_index_label_bound(index);
    s.found = shoal_index_search(index, query, shoal_index_dim(index), 10, NULL, s.labels,
                                 s.distances);
    CHECK_INT(shoal_index_check(index), SHOAL_OK);
    return s;
}

static void check_unchanged(shoal_index *index, const float *query, const snapshot *before) {
    snapshot after = take_snapshot(index, query);
    CHECK_INT(after.size, before->size);
    CHECK_INT(after.bound, before->bound);
    CHECK_INT(after.found, before->found);
    CHECK(memcmp(after.labels, before->labels, sizeof after.labels) == 0);
    CHECK(memcmp(after.distances, before->distances, sizeof after.distances) == 0);
}

static void test_bad_input_leaves_index_unchanged(void) {
    const uint32_t n = 50, dim = 6;
    test_rng rng = {3};
    float data[50 * 6], query[6];
    test_fill(&rng, data, n * dim);
    test_fill(&rng, query, dim);
    test_ids ids;
    test_ids_make(&ids, "v", 0, n);
    for (int m = 0; m <= SHOAL_METRIC_COSINE; m++) {
        shoal_index *index = make_index(dim, (shoal_metric)m, SHOAL_SIMD_AUTO);
        shoal_index_add(index, n, ids.bytes, ids.offsets, data, dim);
        snapshot before = take_snapshot(index, query);

        /* Wrong dimension. */
        CHECK_INT(shoal_index_add(index, 1, ids.bytes, ids.offsets, data, dim + 1), SHOAL_EDIM);
        CHECK(strstr(shoal_index_errmsg(index), "dimensions") != NULL);
        uint32_t labels[10];
        float distances[10];
        CHECK_INT(shoal_index_search(index, query, dim - 1, 10, NULL, labels, distances),
                  SHOAL_EDIM);

        /* Non-finite components, in the last vector of a batch that would
         * otherwise also replace existing ids. */
        float bad[3 * 6];
        memcpy(bad, data, sizeof bad);
        float poison[3] = {NAN, INFINITY, -INFINITY};
        for (int p = 0; p < 3; p++) {
            bad[2 * 6 + 4] = poison[p];
            CHECK_INT(shoal_index_add(index, 3, ids.bytes, ids.offsets, bad, dim), SHOAL_EVECTOR);
            CHECK(strstr(shoal_index_errmsg(index), "vector 2") != NULL);
        }
        float q_bad[6];
        memcpy(q_bad, query, sizeof q_bad);
        q_bad[0] = NAN;
        CHECK_INT(shoal_index_search(index, q_bad, dim, 10, NULL, labels, distances),
                  SHOAL_EVECTOR);

        /* Ids: empty, too long, decreasing offsets. */
        uint32_t empty[3] = {0, 1, 1};
        CHECK_INT(shoal_index_add(index, 2, "a", empty, data, dim), SHOAL_EID);
        char *long_id = malloc(SHOAL_ID_MAX + 1);
        memset(long_id, 'x', SHOAL_ID_MAX + 1);
        uint32_t too_long[2] = {0, SHOAL_ID_MAX + 1};
        CHECK_INT(shoal_index_add(index, 1, long_id, too_long, data, dim), SHOAL_EID);
        uint32_t just_right[2] = {0, SHOAL_ID_MAX};
        uint32_t backwards[3] = {0, 3, 1};
        CHECK_INT(shoal_index_add(index, 2, "abc", backwards, data, dim), SHOAL_EPARAM);
        CHECK_INT(shoal_index_delete(index, 2, "a", empty), SHOAL_EID);

        /* k out of range. */
        CHECK_INT(shoal_index_search(index, query, dim, 0, NULL, labels, distances), SHOAL_EPARAM);
        CHECK(strstr(shoal_index_errmsg(index), "k = 0") != NULL);
        CHECK_INT(shoal_index_search(index, query, dim, SHOAL_K_MAX + 1, NULL, labels, distances),
                  SHOAL_EPARAM);

        /* Too long for l2 and ip (length past SHOAL_LENGTH_MAX = 2^62, where
         * float32 squared distances could overflow); cosine normalizes it
         * (below). */
        float too_long_v[3 * 6];
        memcpy(too_long_v, data, sizeof too_long_v);
        too_long_v[2 * 6 + 1] = 4.7e18f;
        if (m != SHOAL_METRIC_COSINE) {
            CHECK_INT(shoal_index_add(index, 3, ids.bytes, ids.offsets, too_long_v, dim),
                      SHOAL_EVECTOR);
            CHECK(strstr(shoal_index_errmsg(index), "vector 2 has length") != NULL);
            CHECK(strstr(shoal_index_errmsg(index), "2^62") != NULL);
            CHECK_INT(shoal_index_search(index, too_long_v + 2 * 6, dim, 10, NULL, labels,
                                         distances),
                      SHOAL_EVECTOR);
        }
        if (m == SHOAL_METRIC_COSINE) {
            float zero[6] = {0};
            uint32_t o[2] = {0, 4};
            CHECK_INT(shoal_index_add(index, 1, "zero", o, zero, dim), SHOAL_EVECTOR);
            CHECK(strstr(shoal_index_errmsg(index), "zero length") != NULL);
            CHECK_INT(shoal_index_search(index, zero, dim, 1, NULL, labels, distances),
                      SHOAL_EVECTOR);
        }
        check_unchanged(index, query, &before);

        /* The longest allowed id is fine. */
        CHECK_INT(shoal_index_add(index, 1, long_id, just_right, data, dim), 1);
        CHECK_INT(shoal_index_size(index), n + 1);
        free(long_id);
        shoal_index_free(index);

        /* The longest allowed vectors: a vector and its opposite at just under
         * 2^62 (their squared distance ~2^126) give finite distances; under
         * cosine, so does the over-long one. */
        index = make_index(dim, (shoal_metric)m, SHOAL_SIMD_AUTO);
        float edge[2 * 6] = {0};
        edge[1] = 4.6e18f;
        edge[6 + 1] = -4.6e18f;
        uint32_t two[3] = {0, 1, 2};
        CHECK_INT(shoal_index_add(index, 2, "ab", two, edge, dim), 2);
        if (m == SHOAL_METRIC_COSINE)
            CHECK_INT(shoal_index_add(index, 1, "c", two, too_long_v + 2 * 6, dim), 1);
        const float *probe = m == SHOAL_METRIC_COSINE ? too_long_v + 2 * 6 : edge;
        int found = shoal_index_search(index, probe, dim, 10, NULL, labels, distances);
        CHECK_INT(found, m == SHOAL_METRIC_COSINE ? 3 : 2);
        for (int i = 0; i < found; i++) CHECK(isfinite(distances[i]));
        if (m == SHOAL_METRIC_L2) CHECK(distances[1] > 8e37f); /* (2 * 4.6e18)^2 */
        shoal_index_free(index);
    }
    test_ids_free(&ids);
}

static void test_bad_params(void) {
    shoal_params p;
    shoal_index *index = (shoal_index *)&p; /* must be reset to NULL on failure */
    shoal_params_init(&p);
    CHECK_INT(shoal_index_new(&p, &index), SHOAL_EPARAM); /* dim 0 */
    CHECK(index == NULL);
    p.dim = SHOAL_DIM_MAX + 1;
    CHECK_INT(shoal_index_new(&p, &index), SHOAL_EPARAM);
    p.dim = 4;
    p.metric = (shoal_metric)7;
    CHECK_INT(shoal_index_new(&p, &index), SHOAL_EPARAM);
    p.metric = SHOAL_METRIC_L2;
    p.kind = (shoal_kind)99;
    CHECK_INT(shoal_index_new(&p, &index), SHOAL_EPARAM);
    p.kind = SHOAL_KIND_FLAT;
    p.simd = (shoal_simd)42;
    CHECK_INT(shoal_index_new(&p, &index), SHOAL_EUNSUPPORTED);
    p.simd = SHOAL_SIMD_SCALAR;
    CHECK_INT(shoal_index_new(&p, &index), SHOAL_OK);
    CHECK_STR(shoal_index_simd_name(index), "scalar");
    CHECK_STR(shoal_index_errmsg(index), "");
    shoal_index_free(index);
    shoal_index_free(NULL);
}

static void test_errors_and_version(void) {
    static const int codes[] = {
#define CODE(name, code, js, parent, msg) code,
        SHOAL_ERROR_LIST(CODE)
#undef CODE
    };
    size_t count = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < count; i++) {
        CHECK(codes[i] < 0);
        CHECK(strcmp(shoal_strerror(codes[i]), "unknown error") != 0);
        CHECK(shoal_error_name(codes[i]) != NULL);
        for (size_t j = 0; j < i; j++) {
            CHECK(codes[i] != codes[j]);
            CHECK(strcmp(shoal_strerror(codes[i]), shoal_strerror(codes[j])) != 0);
        }
    }
    CHECK_STR(shoal_error_name(SHOAL_EDIM), "SHOAL_EDIM");
    CHECK_STR(shoal_strerror(-999), "unknown error");
    CHECK(shoal_error_name(-999) == NULL);
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", SHOAL_VERSION_MAJOR, SHOAL_VERSION_MINOR,
             SHOAL_VERSION_PATCH);
    CHECK_STR(shoal_version(), expect);
    CHECK_INT(shoal_version_number(), SHOAL_VERSION_NUMBER);
}

void suite_flat(void) {
    static const harness_test tests[] = {
        {"matches_brute_force", test_matches_brute_force},
        {"ties_follow_insertion_order", test_ties_follow_insertion_order},
        {"upsert_get_delete", test_upsert_get_delete},
        {"labels_are_reused", test_labels_are_reused},
        {"filters", test_filters},
        {"cosine_normalizes", test_cosine_normalizes},
        {"bad_input_leaves_index_unchanged", test_bad_input_leaves_index_unchanged},
        {"bad_params", test_bad_params},
        {"errors_and_version", test_errors_and_version},
    };
    harness_run("flat", tests, sizeof tests / sizeof tests[0]);
}
