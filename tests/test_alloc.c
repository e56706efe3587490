/*
 * test_alloc.c -- the per-handle allocator: exact accounting, no leaks, and
 * out-of-memory injected at every allocation of every mutating call, each of
 * which must fail with SHOAL_ENOMEM and leave the index as it was.
 */
#include <stdlib.h>

#include "harness.h"
#include "shoal.h"

/*
 * Indexes loaded from a segment once had two bugs that the loaded cases
 * below found: a delete as the first change after a load wrote past the
 * free list (the loaders sized it for the segment's free labels only) and,
 * for HNSW, through the journal marks (NULL until an add grew the index),
 * which also made a failing add or delete on a loaded HNSW index fail to
 * roll back.  Both loaders now allocate for every label.
 */

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
    uint32_t n0;      /* records before the failing calls */
    uint32_t pq_bits; /* 0: 4 */
    int loaded;       /* 1: each attempt loads the n0 records' segment
                         (cheaper than building them again) */
    uint32_t ef;      /* HNSW ef_construction; 0: 24 (M 6) */
    uint32_t rerank;  /* HNSW sq8: rerank copies (IVF sq8 and pq4 always have them) */
    uint32_t batch;   /* HNSW hnsw.build_batch */
} txn_case;

/*
 * An upsert batch (half replacing existing ids, half new) and a delete
 * batch, failing at every allocation in turn: each failure must leave the
 * index exactly as it was -- the same segment bytes -- and the call that
 * finally succeeds must do all of its work.  HNSW sq8 starts below its
 * training threshold, so the batch trains it half-way through; "hnsw sq8
 * trained" is past it, and the loaded cases start from a segment (trained
 * IVF sq8 and 8-bit pq, HNSW f32 and trained sq8).
 */
static void test_failed_mutations_change_nothing(void) {
    static const txn_case cases[] = {
        {"flat", SHOAL_KIND_FLAT, SHOAL_QUANTIZER_F32, 300, 0, 0, 0, 0, 0},
        {"hnsw f32", SHOAL_KIND_HNSW, SHOAL_QUANTIZER_F32, 300, 0, 0, 0, 0, 0},
        {"hnsw sq8 training in the batch", SHOAL_KIND_HNSW, SHOAL_QUANTIZER_SQ8, 1000, 0, 0, 0, 0, 0},
        {"ivf pq4 rerank", SHOAL_KIND_IVF, SHOAL_QUANTIZER_PQ, 300, 0, 0, 0, 0, 0},
        /* (Built again for every attempt: a small ef keeps that cheap.) */
        {"hnsw sq8 trained", SHOAL_KIND_HNSW, SHOAL_QUANTIZER_SQ8, 1030, 0, 0, 6, 0, 0},
        {"ivf sq8 rerank (loaded)", SHOAL_KIND_IVF, SHOAL_QUANTIZER_SQ8, 300, 0, 1, 0, 0, 0},
        {"ivf pq8 (loaded)", SHOAL_KIND_IVF, SHOAL_QUANTIZER_PQ, 400, 8, 1, 0, 0, 0},
        {"hnsw f32 (loaded)", SHOAL_KIND_HNSW, SHOAL_QUANTIZER_F32, 300, 0, 1, 0, 0, 0},
        {"hnsw sq8 trained (loaded)", SHOAL_KIND_HNSW, SHOAL_QUANTIZER_SQ8, 1100, 0, 1, 0, 0, 0},
        {"hnsw sq8 rerank, training in the batch", SHOAL_KIND_HNSW, SHOAL_QUANTIZER_SQ8, 1000, 0, 0, 0, 16, 0},
        {"hnsw sq8 rerank trained (loaded)", SHOAL_KIND_HNSW, SHOAL_QUANTIZER_SQ8, 1100, 0, 1, 0, 16, 0},
        /* Batches of 16: the 60-record upsert is four batches, the last
         * cut short by the end of the call. */
        {"hnsw f32 batched", SHOAL_KIND_HNSW, SHOAL_QUANTIZER_F32, 300, 0, 0, 0, 0, 16},
        {"hnsw sq8 trained batched (loaded)", SHOAL_KIND_HNSW, SHOAL_QUANTIZER_SQ8, 1100, 0, 1, 0, 0, 16},
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
        shoal_params p;
        shoal_params_init(&p);
        p.dim = dim;
        p.kind = tc->kind;
        p.quantizer = tc->quantizer;
        p.seed = 5;
        p.hnsw.M = 6;
        p.hnsw.ef_construction = tc->ef ? tc->ef : 24;
        p.ivf.nlist = 6;
        /* (Ignored by flat and HNSW; IVF refuses pq fields without pq.) */
        int no_pq = tc->kind == SHOAL_KIND_IVF && tc->quantizer != SHOAL_QUANTIZER_PQ;
        p.ivf.pq_bits = no_pq ? 0 : tc->pq_bits ? tc->pq_bits : 4;
        p.ivf.pq_m = no_pq ? 0 : 6;
        if (tc->kind == SHOAL_KIND_IVF)
            p.rerank = tc->quantizer == SHOAL_QUANTIZER_PQ && tc->pq_bits == 8 ? 0 : 10;
        else
            p.rerank = tc->rerank;
        p.hnsw.build_batch = tc->batch;
        uint8_t *seg0 = NULL;
        size_t seg0_size = 0;
        if (tc->loaded) {
            shoal_index *first;
            if (!CHECK_INT(shoal_index_new(&p, &first), SHOAL_OK)) break;
            if (tc->kind == SHOAL_KIND_IVF) CHECK_INT(shoal_index_train(first, n0, data, dim), SHOAL_OK);
            CHECK_INT(shoal_index_add(first, n0, base.bytes, base.offsets, data, dim), (int)n0);
            CHECK_INT(shoal_index_trained(first), 1);
            seg0 = snapshot(first, &seg0_size);
            shoal_index_free(first);
        }
        for (long fail = 0; fail < 20000 && !(added && deleted); fail++) {
            test_counting c = TEST_COUNTING_INIT;
            shoal_allocator a = test_counting_allocator(&c);
            shoal_index *index = NULL;
            if (tc->loaded) {
                shoal_load_params lp;
                shoal_load_params_init(&lp);
                lp.allocator = &a;
                if (!CHECK_INT(shoal_index_load(seg0, seg0_size, &lp, &index), SHOAL_OK)) break;
            } else {
                p.allocator = &a;
                int rc = shoal_index_new(&p, &index);
                p.allocator = NULL;
                if (!CHECK_INT(rc, SHOAL_OK)) break;
                CHECK_INT(shoal_index_add(index, n0, base.bytes, base.offsets, data, dim), (int)n0);
            }
            uint32_t size0 = shoal_index_size(index);
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
                    CHECK_INT(shoal_index_size(index), size0);
                } else {
                    CHECK_INT(rc, (int)batch);
                    CHECK_INT(shoal_index_size(index), size0 + batch / 2);
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
        free(seg0);
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

/* ------------------------------------------- reads at every failure point */

typedef struct read_case {
    const char *name;
    shoal_kind kind;
    shoal_quantizer quantizer;
    uint32_t n, pq_bits, rerank;
} read_case;

enum { READ_DIM = 12, READ_K = 10, READ_QUERIES = 3, READ_VARIANTS = 4 };

static int keep_every_third(void *ctx, uint32_t label) {
    (void)ctx;
    return label % 3 == 0;
}

/* Search variant v: 0 defaults; 1 explicit ef / nprobe / rerank and a
 * bitmap keeping half; 2 a bitmap keeping 1 in 20 (the selective paths);
 * 3 a filter callback. */
static void read_params(int v, shoal_search_params *sp, uint8_t *half, uint8_t *few) {
    shoal_search_params_init(sp);
    if (v == 1) {
        sp->ef = 40;
        sp->nprobe = 3;
        sp->filter_bitmap = half;
        sp->filter_bitmap_bits = 2048;
    } else if (v == 2) {
        sp->filter_bitmap = few;
        sp->filter_bitmap_bits = 2048;
    } else if (v == 3) {
        sp->filter = keep_every_third;
    }
}

typedef struct read_results {
    int found[READ_VARIANTS][READ_QUERIES];
    uint32_t labels[READ_VARIANTS][READ_QUERIES][READ_K];
    float dist[READ_VARIANTS][READ_QUERIES][READ_K];
} read_results;

static uint8_t g_half[256], g_few[256];

/* Every variant and query, without failures. */
static void read_all(shoal_index *index, const float *queries, read_results *r) {
    memset(r, 0, sizeof *r);
    for (int v = 0; v < READ_VARIANTS; v++) {
        shoal_search_params sp;
        read_params(v, &sp, g_half, g_few);
        for (int q = 0; q < READ_QUERIES; q++)
            r->found[v][q] = shoal_index_search(index, queries + q * READ_DIM, READ_DIM, READ_K, &sp,
                                                r->labels[v][q], r->dist[v][q]);
    }
}

static int same_results(const read_results *a, const read_results *b) {
    return memcmp(a, b, sizeof *a) == 0;
}

/* A fresh index from seg (loaded, or viewed), allocating through c: its
 * first search allocates what a warm one keeps (the kinds' search state). */
static shoal_index *open_fresh(const uint8_t *seg, size_t size, int view, test_counting *c) {
    shoal_allocator a = test_counting_allocator(c);
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    lp.allocator = &a;
    shoal_index *index = NULL;
    int rc = view ? shoal_index_view(seg, size, &lp, &index) : shoal_index_load(seg, size, &lp, &index);
    CHECK_INT(rc, SHOAL_OK);
    return index;
}

/* Each search variant, as the first call on a fresh index, at every
 * failure point until it succeeds: SHOAL_ENOMEM with its message, then that
 * index searches exactly as the reference and passes check.  Returns the
 * failure points. */
static long sweep_search(const uint8_t *seg, size_t size, int view, const float *queries,
                         const read_results *want, const char *what) {
    long failures = 0;
    for (int v = 0; v < READ_VARIANTS; v++) {
        shoal_search_params sp;
        read_params(v, &sp, g_half, g_few);
        int done = 0;
        for (long fail = 0; fail < 10000 && !done; fail++) {
            test_counting c = TEST_COUNTING_INIT;
            shoal_index *index = open_fresh(seg, size, view, &c);
            if (!index) return failures;
            uint32_t labels[READ_K];
            float dist[READ_K];
            c.calls = 0;
            c.fail_at = fail;
            int rc = shoal_index_search(index, queries, READ_DIM, READ_K, &sp, labels, dist);
            c.fail_at = -1;
            if (rc != SHOAL_ENOMEM) {
                if (!CHECK_INT(rc, want->found[v][0]) ||
                    !CHECK(memcmp(labels, want->labels[v][0], (size_t)rc * sizeof *labels) == 0 &&
                           memcmp(dist, want->dist[v][0], (size_t)rc * sizeof *dist) == 0))
                    fprintf(stderr, "    %s, search variant %d at failure point %ld\n", what, v, fail);
                done = 1;
            } else {
                failures++;
                CHECK(strstr(shoal_index_errmsg(index), "out of memory") != NULL);
                read_results after;
                read_all(index, queries, &after);
                if (!CHECK(same_results(&after, want)))
                    fprintf(stderr, "    %s: search variant %d failing at %ld changed later results\n",
                            what, v, fail);
                if (!CHECK_INT(shoal_index_check(index), SHOAL_OK))
                    fprintf(stderr, "    %s: %s\n", what, shoal_index_errmsg(index));
            }
            shoal_index_free(index);
            CHECK_INT(c.live_blocks, 0);
        }
        CHECK(done);
    }
    return failures;
}

/* shoal_index_check, as the first call on a fresh index, at every failure
 * point until it passes. */
static long sweep_check(const uint8_t *seg, size_t size, int view, const float *queries,
                        const read_results *want, const char *what) {
    long failures = 0;
    for (long fail = 0; fail < 10000; fail++) {
        test_counting c = TEST_COUNTING_INIT;
        shoal_index *index = open_fresh(seg, size, view, &c);
        if (!index) return failures;
        c.calls = 0;
        c.fail_at = fail;
        int rc = shoal_index_check(index);
        c.fail_at = -1;
        if (rc != SHOAL_OK) {
            failures++;
            if (!CHECK_INT(rc, SHOAL_ENOMEM))
                fprintf(stderr, "    %s: check failing at %ld: %s\n", what, fail,
                        shoal_index_errmsg(index));
            read_results after;
            read_all(index, queries, &after);
            CHECK(same_results(&after, want));
            CHECK_INT(shoal_index_check(index), SHOAL_OK);
        }
        shoal_index_free(index);
        CHECK_INT(c.live_blocks, 0);
        if (rc == SHOAL_OK) return failures;
        if (rc != SHOAL_ENOMEM) break;
    }
    CHECK(0); /* never passed */
    return failures;
}

/*
 * The reading calls of every kind at every allocation failure point:
 * search (four variants: defaults, explicit parameters with a bitmap,
 * a selective bitmap, a filter callback), shoal_index_check, and
 * shoal_index_view of the index's segment (raw, so the bulk is borrowed,
 * and zstd-compressed, so it is decompressed), then search and check again
 * on the view.  A failed search or check is SHOAL_ENOMEM and leaves the
 * index searching as before; a failed view is SHOAL_ENOMEM, no index,
 * nothing leaked and the borrowed bytes untouched.
 */
static void test_reads_out_of_memory(void) {
    static const read_case cases[] = {
        {"flat", SHOAL_KIND_FLAT, SHOAL_QUANTIZER_F32, 300, 0, 0},
        {"hnsw f32", SHOAL_KIND_HNSW, SHOAL_QUANTIZER_F32, 300, 0, 0},
        {"hnsw sq8 trained", SHOAL_KIND_HNSW, SHOAL_QUANTIZER_SQ8, 1100, 0, 0},
        {"ivf f32", SHOAL_KIND_IVF, SHOAL_QUANTIZER_F32, 400, 0, 0},
        {"ivf sq8 rerank", SHOAL_KIND_IVF, SHOAL_QUANTIZER_SQ8, 400, 0, 20},
        {"ivf pq4 rerank", SHOAL_KIND_IVF, SHOAL_QUANTIZER_PQ, 400, 4, 20},
        {"ivf pq8", SHOAL_KIND_IVF, SHOAL_QUANTIZER_PQ, 400, 8, 0},
    };
    for (int i = 0; i < 256; i++) {
        g_half[i] = 0x55;
        g_few[i] = i % 5 == 0 ? 0x10 : 0; /* (bit 4 of every fifth byte: 1 in 40, ~1 in 20 of the first) */
    }
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const read_case *rc = &cases[ci];
        float *data = test_clustered(71 + ci, rc->n + READ_QUERIES, READ_DIM, 8, 0.2f);
        const float *queries = data + (size_t)rc->n * READ_DIM;
        test_ids ids;
        test_ids_make(&ids, "r", 0, rc->n);
        test_counting c = TEST_COUNTING_INIT;
        shoal_allocator a = test_counting_allocator(&c);
        shoal_params p;
        shoal_params_init(&p);
        p.dim = READ_DIM;
        p.kind = rc->kind;
        p.quantizer = rc->quantizer;
        p.allocator = &a;
        p.seed = 9;
        p.hnsw.M = 6;
        p.hnsw.ef_construction = 24;
        p.ivf.nlist = 6;
        p.ivf.nprobe = 2;
        p.ivf.pq_bits = rc->pq_bits;
        p.ivf.pq_m = rc->pq_bits ? 6 : 0;
        p.rerank = rc->rerank;
        shoal_index *index;
        if (!CHECK_INT(shoal_index_new(&p, &index), SHOAL_OK)) break;
        if (rc->kind == SHOAL_KIND_IVF) CHECK_INT(shoal_index_train(index, rc->n, data, READ_DIM), SHOAL_OK);
        CHECK_INT(shoal_index_add(index, rc->n, ids.bytes, ids.offsets, data, READ_DIM), (int)rc->n);
        /* Some dead labels and free-list entries too. */
        test_ids gone;
        test_ids_make(&gone, "r", 10, 25);
        CHECK_INT(shoal_index_delete(index, gone.n, gone.bytes, gone.offsets), (int)gone.n);
        test_ids_free(&gone);
        CHECK_INT(shoal_index_trained(index), 1);

        read_results want;
        read_all(index, queries, &want);
        for (int v = 0; v < READ_VARIANTS; v++) CHECK(want.found[v][0] > 0);
        size_t before_size;
        uint8_t *before = snapshot(index, &before_size);

        /* Loaded from the raw segment, searched and checked from cold. */
        long search_failures = sweep_search(before, before_size, 0, queries, &want, rc->name);
        long check_failures = sweep_check(before, before_size, 0, queries, &want, rc->name);
        CHECK(search_failures > 0);
        if (rc->kind == SHOAL_KIND_HNSW) CHECK(check_failures > 0);

        long view_failures[2] = {0, 0}, view_search_failures = 0;
        for (int level = 0; level <= 3; level += 3) {
            shoal_save_params spp;
            shoal_save_params_init(&spp);
            spp.zstd_level = level;
            uint8_t *seg = NULL;
            size_t size = 0;
            if (!CHECK_INT(shoal_index_save(index, &spp, &seg, &size), SHOAL_OK)) continue;
            /* malloc'd: 16-byte aligned, so the raw segment is borrowed. */
            uint8_t *bytes = malloc(size), *pristine = malloc(size);
            memcpy(bytes, seg, size);
            memcpy(pristine, seg, size);
            shoal_index_free_bytes(index, seg);
            test_counting vc = TEST_COUNTING_INIT;
            shoal_allocator va = test_counting_allocator(&vc);
            shoal_load_params lp;
            shoal_load_params_init(&lp);
            lp.allocator = &va;
            shoal_index *view = NULL;
            for (long fail = 0; fail < 20000; fail++) {
                vc.calls = 0;
                vc.fail_at = fail;
                int r = shoal_index_view(bytes, size, &lp, &view);
                vc.fail_at = -1;
                if (r == SHOAL_OK) break;
                view_failures[level ? 1 : 0]++;
                if (!CHECK_INT(r, SHOAL_ENOMEM)) break;
                CHECK(view == NULL);
                CHECK_INT(vc.live_blocks, 0);
                if (!CHECK(memcmp(bytes, pristine, size) == 0))
                    fprintf(stderr, "    %s: a view failing at %ld wrote into the bytes\n", rc->name, fail);
            }
            if (CHECK(view != NULL)) {
                CHECK_INT(shoal_index_is_view(view), 1);
                CHECK_INT(shoal_index_check(view), SHOAL_OK);
                read_results got;
                read_all(view, queries, &got);
                if (!CHECK(same_results(&got, &want)))
                    fprintf(stderr, "    %s level %d: the view searches differently\n", rc->name, level);
                char what[96];
                snprintf(what, sizeof what, "%s, viewed (level %d)", rc->name, level);
                view_search_failures += sweep_search(bytes, size, 1, queries, &want, what);
                sweep_check(bytes, size, 1, queries, &want, what);
                shoal_index_free(view);
                CHECK_INT(vc.live_blocks, 0);
                CHECK(memcmp(bytes, pristine, size) == 0);
            }
            CHECK(view_failures[level ? 1 : 0] > 0);
            free(bytes);
            free(pristine);
        }
        printf("    %-18s search %ld failure points, check %ld, view %ld (raw) %ld (zstd), "
               "search on the views %ld\n",
               rc->name, search_failures, check_failures, view_failures[0], view_failures[1],
               view_search_failures);
        free(before);
        shoal_index_free(index);
        CHECK_INT(c.live_blocks, 0);
        test_ids_free(&ids);
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
        {"reads_out_of_memory", test_reads_out_of_memory},
        {"reentrant_calls_refused", test_reentrant_calls_refused},
    };
    harness_run("alloc", tests, sizeof tests / sizeof tests[0]);
}
