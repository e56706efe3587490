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

/* The segment bytes of an index: equal bytes mean equal indexes (records,
 * labels, free list, graph, lists, PRNG). */
static uint8_t *snapshot(shoal_index *index, size_t *size) {
    uint8_t *seg = NULL;
    if (!CHECK_INT(shoal_index_save(index, NULL, &seg, size), SHOAL_OK)) return NULL;
    uint8_t *copy = malloc(*size);
    memcpy(copy, seg, *size);
    shoal_index_free_bytes(index, seg);
    return copy;
}

typedef struct txn_case {
    const char *name;
    shoal_kind kind;
    shoal_quantizer quantizer;
    uint32_t n0; /* records before the failing calls */
} txn_case;

/*
 * An upsert batch (half replacing existing ids, half new) and a delete
 * batch, failing at every allocation in turn: each failure must leave the
 * index exactly as it was -- the same segment bytes -- and the call that
 * finally succeeds must do all of its work.  HNSW sq8 starts below its
 * training threshold, so the batch trains it half-way through.
 */
static void test_failed_mutations_change_nothing(void) {
    static const txn_case cases[] = {
        {"flat", SHOAL_KIND_FLAT, SHOAL_QUANTIZER_F32, 300},
        {"hnsw f32", SHOAL_KIND_HNSW, SHOAL_QUANTIZER_F32, 300},
        {"hnsw sq8 training in the batch", SHOAL_KIND_HNSW, SHOAL_QUANTIZER_SQ8, 1000},
        {"ivf pq4 rerank", SHOAL_KIND_IVF, SHOAL_QUANTIZER_PQ, 300},
    };
    const uint32_t dim = 12, batch = 60;
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const txn_case *tc = &cases[ci];
        uint32_t n0 = tc->n0;
        float *data = test_clustered(31 + ci, n0 + batch, dim, 6, 0.2f);
        test_ids base, upsert, gone;
        test_ids_make(&base, "r", 0, n0);
        test_ids_make(&upsert, "r", n0 - batch / 2, batch); /* 30 replaced, 30 new */
        test_ids_make(&gone, "r", 7, 50);
        long failures = 0, delete_failures = 0;
        int added = 0, deleted = 0;
        for (long fail = 0; fail < 20000 && !(added && deleted); fail++) {
            test_counting c = TEST_COUNTING_INIT;
            shoal_allocator a = test_counting_allocator(&c);
            shoal_params p;
            shoal_params_init(&p);
            p.dim = dim;
            p.kind = tc->kind;
            p.quantizer = tc->quantizer;
            p.allocator = &a;
            p.seed = 5;
            p.hnsw.M = 6;
            p.hnsw.ef_construction = 24;
            p.ivf.nlist = 6;
            p.ivf.pq_bits = 4;
            p.ivf.pq_m = 6;
            p.ivf.rerank = 10;
            shoal_index *index;
            if (!CHECK_INT(shoal_index_new(&p, &index), SHOAL_OK)) break;
            CHECK_INT(shoal_index_add(index, n0, base.bytes, base.offsets, data, dim), (int)n0);
            size_t before_size, after_size;
            uint8_t *before = snapshot(index, &before_size);
            if (!added) {
                c.calls = 0;
                c.fail_at = fail;
                int rc = shoal_index_add(index, batch, upsert.bytes, upsert.offsets,
                                         data + (size_t)(n0 - batch / 2) * dim + dim, dim);
                c.fail_at = -1;
                if (rc == SHOAL_ENOMEM) {
                    failures++;
                    uint8_t *after = snapshot(index, &after_size);
                    if (!CHECK(after && after_size == before_size &&
                               memcmp(before, after, before_size) == 0))
                        fprintf(stderr, "    %s: add failing at allocation %ld changed the index\n",
                                tc->name, fail);
                    free(after);
                    if (!CHECK_INT(shoal_index_check(index), SHOAL_OK))
                        fprintf(stderr, "    %s, add failing at %ld: %s\n", tc->name, fail,
                                shoal_index_errmsg(index));
                    CHECK_INT(shoal_index_size(index), n0);
                } else {
                    CHECK_INT(rc, (int)batch);
                    CHECK_INT(shoal_index_size(index), n0 + batch / 2);
                    CHECK_INT(shoal_index_check(index), SHOAL_OK);
                    added = 1;
                }
            }
            if (!deleted) {
                free(before);
                before = snapshot(index, &before_size);
                uint32_t size = shoal_index_size(index);
                c.calls = 0;
                c.fail_at = fail;
                int rc = shoal_index_delete(index, gone.n, gone.bytes, gone.offsets);
                c.fail_at = -1;
                if (rc == SHOAL_ENOMEM) {
                    delete_failures++;
                    uint8_t *after = snapshot(index, &after_size);
                    if (!CHECK(after && after_size == before_size &&
                               memcmp(before, after, before_size) == 0))
                        fprintf(stderr, "    %s: delete failing at allocation %ld changed the index\n",
                                tc->name, fail);
                    free(after);
                    if (!CHECK_INT(shoal_index_check(index), SHOAL_OK))
                        fprintf(stderr, "    %s, delete failing at %ld: %s\n", tc->name, fail,
                                shoal_index_errmsg(index));
                    CHECK_INT(shoal_index_size(index), size);
                } else {
                    CHECK_INT(rc, (int)gone.n);
                    CHECK_INT(shoal_index_check(index), SHOAL_OK);
                    deleted = 1;
                }
            }
            free(before);
            shoal_index_free(index);
            CHECK_INT(c.live_blocks, 0);
        }
        CHECK(added);
        CHECK(deleted);
        CHECK(failures > 0);
        printf("    %-32s add: %ld failure points, delete: %ld\n", tc->name, failures,
               delete_failures);
        test_ids_free(&base);
        test_ids_free(&upsert);
        test_ids_free(&gone);
        free(data);
    }
}

/* Callbacks that call back into the index they run in. */
typedef struct reentry {
    shoal_index *index;
    int add_rc, search_rc, delete_rc, save_rc, get_rc, calls;
} reentry;

static int progress_reenters(void *ctx, uint32_t done, uint32_t total) {
    (void)done;
    (void)total;
    reentry *r = ctx;
    float v[4] = {1, 2, 3, 4}, out[4];
    uint32_t off[2] = {0, 1}, label;
    uint8_t *seg = NULL;
    size_t size;
    r->calls++;
    r->add_rc = shoal_index_add(r->index, 1, "z", off, v, 4);
    r->search_rc = shoal_index_search(r->index, v, 4, 1, NULL, &label, out);
    r->delete_rc = shoal_index_delete(r->index, 1, "z", off);
    r->save_rc = shoal_index_save(r->index, NULL, &seg, &size);
    return 0;
}

static int filter_reenters(void *ctx, uint32_t label) {
    reentry *r = ctx;
    float v[4] = {1, 2, 3, 4}, out[4];
    uint32_t l;
    const char *id;
    r->calls++;
    r->search_rc = shoal_index_search(r->index, v, 4, 1, NULL, &l, out);
    /* Reading is allowed. */
    int len = shoal_index_label_id(r->index, label, &id);
    r->get_rc = len < 0 ? len : shoal_index_get(r->index, id, (uint32_t)len, out);
    return 1;
}

/* A callback that re-enters the index gets SHOAL_ESTATE for every call that
 * would change it or reuse its scratch, and the running call completes. */
static void test_reentrant_calls_refused(void) {
    const uint32_t n = 2000, dim = 4;
    test_rng rng = {77};
    float *data = malloc((size_t)n * dim * sizeof *data);
    test_fill(&rng, data, (size_t)n * dim);
    test_ids ids;
    test_ids_make(&ids, "v", 0, n);
    for (int kind = 0; kind < 2; kind++) {
        shoal_params p;
        shoal_params_init(&p);
        p.dim = dim;
        p.kind = kind ? SHOAL_KIND_HNSW : SHOAL_KIND_FLAT;
        shoal_index *index;
        if (!CHECK_INT(shoal_index_new(&p, &index), SHOAL_OK)) break;
        reentry r = {index, 1, 1, 1, 1, 1, 0};
        shoal_index_on_progress(index, progress_reenters, &r);
        CHECK_INT(shoal_index_add(index, n, ids.bytes, ids.offsets, data, dim), (int)n);
        shoal_index_on_progress(index, NULL, NULL);
        CHECK(r.calls > 0);
        CHECK_INT(r.add_rc, SHOAL_ESTATE);
        CHECK_INT(r.search_rc, SHOAL_ESTATE);
        CHECK_INT(r.delete_rc, SHOAL_ESTATE);
        CHECK_INT(r.save_rc, SHOAL_ESTATE);
        CHECK_INT(shoal_index_size(index), n);
        CHECK_INT(shoal_index_check(index), SHOAL_OK);

        reentry f = {index, 1, 1, 1, 1, 1, 0};
        shoal_search_params sp;
        shoal_search_params_init(&sp);
        sp.filter = filter_reenters;
        sp.filter_ctx = &f;
        uint32_t labels[5];
        float dists[5];
        CHECK_INT(shoal_index_search(index, data, dim, 5, &sp, labels, dists), 5);
        CHECK(f.calls > 0);
        CHECK_INT(f.search_rc, SHOAL_ESTATE);
        CHECK_INT(f.get_rc, SHOAL_OK);
        /* And the index works normally afterwards. */
        CHECK_INT(shoal_index_search(index, data, dim, 5, NULL, labels, dists), 5);
        CHECK_INT(test_row_of(index, labels[0]), 0);
        shoal_index_free(index);
    }
    test_ids_free(&ids);
    free(data);
}

void suite_alloc(void) {
    static const harness_test tests[] = {
        {"accounting_is_exact", test_accounting_is_exact},
        {"out_of_memory_everywhere", test_out_of_memory_everywhere},
        {"failed_mutations_change_nothing", test_failed_mutations_change_nothing},
        {"reentrant_calls_refused", test_reentrant_calls_refused},
    };
    harness_run("alloc", tests, sizeof tests / sizeof tests[0]);
}
