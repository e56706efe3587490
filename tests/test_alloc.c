/*
 * test_alloc.c -- the per-handle allocator: exact accounting, no leaks, and
 * out-of-memory injected at every allocation of every mutating call, each of
 * which must fail with SHOAL_ENOMEM and leave the index as it was.
 */
#include <stdlib.h>

#include "harness.h"
#include "shoal.h"

static shoal_index *make_index(test_counting *c, uint32_t dim) {
    shoal_allocator a = test_counting_allocator(c);
    shoal_params p;
    shoal_params_init(&p);
    p.dim = dim;
    p.metric = SHOAL_METRIC_COSINE; /* exercises the normalization scratch too */
    p.allocator = &a;               /* copied: may go out of scope */
    shoal_index *index = NULL;
    int rc = shoal_index_new(&p, &index);
    if (rc != SHOAL_OK) CHECK_INT(rc, SHOAL_ENOMEM);
    return index;
}

static void test_accounting_is_exact(void) {
    test_counting c = TEST_COUNTING_INIT;
    const uint32_t n = 200, dim = 24;
    test_rng rng = {9};
    float *data = malloc((size_t)n * dim * sizeof *data);
    test_fill(&rng, data, (size_t)n * dim);
    test_ids ids;
    test_ids_make(&ids, "id-", 0, n);
    shoal_index *index = make_index(&c, dim);
    CHECK_INT(shoal_index_memory_bytes(index), c.live_bytes);
    shoal_index_add(index, n, ids.bytes, ids.offsets, data, dim);
    CHECK_INT(shoal_index_memory_bytes(index), c.live_bytes);
    CHECK(shoal_index_memory_bytes(index) >= (size_t)n * dim * sizeof(float));
    size_t full = shoal_index_memory_bytes(index);
    shoal_index_delete(index, n, ids.bytes, ids.offsets);
    CHECK_INT(shoal_index_memory_bytes(index), c.live_bytes);
    CHECK(shoal_index_memory_bytes(index) < full); /* the ids were released */
    shoal_stats stats;
    shoal_index_stats(index, &stats);
    CHECK_INT(stats.memory_bytes, c.live_bytes);
    CHECK_INT(stats.size, 0);
    shoal_index_free(index);
    CHECK_INT(c.live_bytes, 0);
    CHECK_INT(c.live_blocks, 0);
    test_ids_free(&ids);
    free(data);
}

static void test_out_of_memory_everywhere(void) {
    const uint32_t n = 40, dim = 10;
    test_rng rng = {21};
    float data[2 * 40 * 10], query[10];
    test_fill(&rng, data, sizeof data / sizeof data[0]);
    test_fill(&rng, query, dim);
    test_ids first, second;
    test_ids_make(&first, "a", 0, n);
    test_ids_make(&second, "a", n / 2, n); /* half replace, half new */

    /* Creation: every failure point returns ENOMEM and leaks nothing. */
    int created = 0;
    for (long fail = 0; fail < 100 && !created; fail++) {
        test_counting c = TEST_COUNTING_INIT;
        c.fail_at = fail;
        shoal_index *index = make_index(&c, dim);
        created = index != NULL;
        shoal_index_free(index);
        CHECK_INT(c.live_blocks, 0);
    }
    CHECK(created);

    /* A batch add and a search on a populated index. */
    int added = 0, searched = 0;
    for (long fail = 0; fail < 1000 && !(added && searched); fail++) {
        test_counting c = TEST_COUNTING_INIT;
        shoal_index *index = make_index(&c, dim);
        CHECK_INT(shoal_index_add(index, n, first.bytes, first.offsets, data, dim), n);
        uint32_t labels_before[10], labels[10];
        float dist_before[10], dist[10];
        int found_before =
            shoal_index_search(index, query, dim, 10, NULL, labels_before, dist_before);
        size_t bytes_before = shoal_index_memory_bytes(index);

        c.calls = 0;
        c.fail_at = fail;
        int rc = shoal_index_add(index, n, second.bytes, second.offsets, data + n * dim, dim);
        c.fail_at = -1;
        if (rc == SHOAL_ENOMEM) {
            CHECK(strstr(shoal_index_errmsg(index), "out of memory") != NULL);
            CHECK_INT(shoal_index_size(index), n);
            CHECK_INT(shoal_index_check(index), SHOAL_OK);
            CHECK_INT(shoal_index_search(index, query, dim, 10, NULL, labels, dist), found_before);
            CHECK(memcmp(labels, labels_before, sizeof labels) == 0);
            CHECK(memcmp(dist, dist_before, sizeof dist) == 0);
            /* Capacity reserved before the failure may stay (it is reused by
             * the next add); records and ids may not, and free() shows
             * nothing leaked. */
            CHECK(shoal_index_memory_bytes(index) >= bytes_before);
        } else {
            CHECK_INT(rc, n);
            CHECK_INT(shoal_index_size(index), n + n / 2);
            added = 1;
        }

        c.calls = 0;
        c.fail_at = fail;
        rc = shoal_index_search(index, query, dim, 10, NULL, labels, dist);
        c.fail_at = -1;
        if (rc == SHOAL_ENOMEM)
            CHECK_INT(shoal_index_check(index), SHOAL_OK);
        else
            searched = rc == 10;
        shoal_index_free(index);
        CHECK_INT(c.live_blocks, 0);
        CHECK_INT(c.live_bytes, 0);
    }
    CHECK(added);
    CHECK(searched);
    test_ids_free(&first);
    test_ids_free(&second);
}

void suite_alloc(void) {
    static const harness_test tests[] = {
        {"accounting_is_exact", test_accounting_is_exact},
        {"out_of_memory_everywhere", test_out_of_memory_everywhere},
    };
    harness_run("alloc", tests, sizeof tests / sizeof tests[0]);
}
