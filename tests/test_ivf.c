/*
 * test_ivf.c -- k-means (kmeans.c) and the IVF kind (ivf.c).
 *
 * k-means: determinism, the objective never grows, empty clusters are
 * re-seeded, sampling draws distinct sorted indices.
 * IVF: recall@10 against the exact (flat) index at a fixed nprobe for every
 * quantizer (flat, sq8, pq 8-bit, pq 4-bit fast scan, with and without
 * rerank) and every metric; the same results from the scalar and the SIMD
 * kernels; delete / upsert with the invariant check after each step;
 * filters; adds after training; retraining; bad parameters; out-of-memory
 * at every allocation of train and add.
 *
 * Data: 24 Gaussian-ish clusters from test_rng (the same numbers natively
 * and in wasm).  The thresholds below sit a few points under what every
 * build measures, so a real regression fails and rounding does not.
 */
#include <stdlib.h>

#include "harness.h"
#include "index/kmeans.h"
#include "shoal.h"

#define K 10
#define DIM 32
#define N 3000
#define NQ 40
#define NLIST 32
#define NPROBE 8

/* ----------------------------------------------------------------- data */

static float *clustered(uint64_t seed, uint32_t n, uint32_t dim, uint32_t clusters) {
    return test_clustered(seed, n, dim, clusters, 0.3f);
}

static float *g_data, *g_queries;

static void data_init(void) {
    if (g_data) return;
    g_data = clustered(11, N, DIM, 24);
    g_queries = clustered(12, NQ, DIM, 24);
}

/* ----------------------------------------------------------- k-means */

static void test_kmeans_deterministic(void) {
    data_init();
    shoal__mem mem;
    shoal__mem_init(&mem, NULL);
    const shoal__kernels *kern = shoal__kernels_get(SHOAL_SIMD_AUTO);
    float *c1 = malloc(16 * DIM * sizeof *c1), *c2 = malloc(16 * DIM * sizeof *c2);
    double obj[21];
    for (int run = 0; run < 2; run++) {
        shoal__rng rng;
        shoal__rng_seed(&rng, 7);
        shoal__kmeans km = {16, DIM, 20, kern, &mem, &rng, obj, 0, 0};
        CHECK_INT(shoal__kmeans_run(&km, g_data, N, run ? c2 : c1, NULL), SHOAL_OK);
        CHECK(km.iters_run >= 1);
        /* Lloyd never increases the objective (up to double rounding). */
        for (uint32_t i = 1; i <= km.iters_run; i++)
            CHECK(obj[i] <= obj[i - 1] * (1 + 1e-9));
        CHECK(obj[km.iters_run] < obj[0]);
    }
    CHECK(memcmp(c1, c2, 16 * DIM * sizeof *c1) == 0);
    /* The scalar kernels give the very same centroids. */
    shoal__rng rng;
    shoal__rng_seed(&rng, 7);
    shoal__kmeans km = {16, DIM, 20, shoal__kernels_get(SHOAL_SIMD_SCALAR), &mem, &rng, NULL, 0, 0};
    CHECK_INT(shoal__kmeans_run(&km, g_data, N, c2, NULL), SHOAL_OK);
    CHECK(memcmp(c1, c2, 16 * DIM * sizeof *c1) == 0);
    /* Another seed, other centroids. */
    shoal__rng_seed(&rng, 8);
    CHECK_INT(shoal__kmeans_run(&km, g_data, N, c2, NULL), SHOAL_OK);
    CHECK(memcmp(c1, c2, 16 * DIM * sizeof *c1) != 0);
    CHECK_INT(mem.bytes, 0);
    /* k > n is refused. */
    km.k = 20;
    CHECK_INT(shoal__kmeans_run(&km, g_data, 10, c2, NULL), SHOAL_EPARAM);
    free(c1);
    free(c2);
}

static void test_kmeans_empty_clusters_reseeded(void) {
    /* Two distinct points, 40 copies each, 3 clusters: seeding must pick a
     * duplicate for the third centre, whose cluster is then empty (ties go
     * to the lower index) and is re-seeded. */
    float data[80 * 2], cent[3 * 2];
    for (int i = 0; i < 80; i++) {
        data[2 * i] = i < 40 ? 0.0f : 10.0f;
        data[2 * i + 1] = i < 40 ? 1.0f : -3.0f;
    }
    shoal__mem mem;
    shoal__mem_init(&mem, NULL);
    shoal__rng rng;
    shoal__rng_seed(&rng, 3);
    uint32_t assign[80];
    double obj[6];
    shoal__kmeans km = {3, 2, 5, shoal__kernels_get(SHOAL_SIMD_AUTO), &mem, &rng, obj, 0, 0};
    CHECK_INT(shoal__kmeans_run(&km, data, 80, cent, assign), SHOAL_OK);
    CHECK(km.reseeded > 0);
    CHECK(obj[km.iters_run] == 0.0);
    for (int c = 0; c < 3; c++) /* every centre is one of the two points */
        CHECK((cent[2 * c] == 0.0f && cent[2 * c + 1] == 1.0f) ||
              (cent[2 * c] == 10.0f && cent[2 * c + 1] == -3.0f));
    for (int i = 0; i < 80; i++) CHECK(cent[2 * assign[i]] == data[2 * i]);

    /* Sampling: distinct, increasing, the asked count. */
    uint32_t idx[100];
    shoal__sample_indices(&rng, 1000, 100, idx);
    for (int i = 1; i < 100; i++) CHECK(idx[i] > idx[i - 1]);
    CHECK(idx[99] < 1000);
    shoal__sample_indices(&rng, 100, 100, idx);
    for (uint32_t i = 0; i < 100; i++) CHECK_INT(idx[i], i);
}

/* --------------------------------------------------------------- helpers */

typedef struct ivf_cfg {
    shoal_quantizer quantizer;
    uint32_t pq_m, pq_bits, rerank;
    uint32_t iters; /* k-means iterations; 0 = default */
} ivf_cfg;

static shoal_index *make_ivf(shoal_metric metric, ivf_cfg cfg, shoal_simd simd, uint64_t seed) {
    shoal_params p;
    shoal_params_init(&p);
    p.dim = DIM;
    p.metric = metric;
    p.kind = SHOAL_KIND_IVF;
    p.simd = simd;
    p.seed = seed;
    p.ivf.nlist = NLIST;
    p.ivf.nprobe = NPROBE;
    p.quantizer = cfg.quantizer;
    p.ivf.pq_m = cfg.pq_m;
    p.ivf.pq_bits = cfg.pq_bits;
    p.rerank = cfg.rerank;
    p.ivf.train_iters = cfg.iters;
    shoal_index *index = NULL;
    CHECK_INT(shoal_index_new(&p, &index), SHOAL_OK);
    return index;
}

static shoal_index *make_flat(shoal_metric metric) {
    shoal_params p;
    shoal_params_init(&p);
    p.dim = DIM;
    p.metric = metric;
    shoal_index *index = NULL;
    CHECK_INT(shoal_index_new(&p, &index), SHOAL_OK);
    return index;
}

static int add_range(shoal_index *index, const float *data, uint32_t from, uint32_t n) {
    test_ids ids;
    test_ids_make(&ids, "r", from, n);
    int rc = shoal_index_add(index, n, ids.bytes, ids.offsets, data + (size_t)from * DIM, DIM);
    test_ids_free(&ids);
    return rc;
}

static int delete_row(shoal_index *index, uint32_t row) {
    test_ids ids;
    test_ids_make(&ids, "r", row, 1);
    int rc = shoal_index_delete(index, 1, ids.bytes, ids.offsets);
    test_ids_free(&ids);
    return rc;
}

/* ---------------------------------------------------------------- recall */

typedef struct recall_case {
    const char *name;
    ivf_cfg cfg;
    double min_recall[3]; /* l2, ip, cosine */
} recall_case;

static const recall_case recall_cases[] = {
    {"flat", {SHOAL_QUANTIZER_F32, 0, 0, 0, 0}, {0.90, 0.80, 0.90}},
    {"sq8", {SHOAL_QUANTIZER_SQ8, 0, 0, 0, 0}, {0.85, 0.75, 0.85}},
    {"sq8+rerank", {SHOAL_QUANTIZER_SQ8, 0, 0, 50, 0}, {0.90, 0.80, 0.90}},
    {"pq8", {SHOAL_QUANTIZER_PQ, 8, 8, 0, 0}, {0.50, 0.45, 0.50}},
    {"pq8+rerank", {SHOAL_QUANTIZER_PQ, 8, 8, 100, 0}, {0.90, 0.80, 0.90}},
    {"pq4", {SHOAL_QUANTIZER_PQ, 16, 4, 0, 0}, {0.50, 0.45, 0.50}},
    {"pq4+rerank", {SHOAL_QUANTIZER_PQ, 16, 4, 100, 0}, {0.90, 0.80, 0.90}},
};

static void test_recall(void) {
    data_init();
    const char *metrics[] = {"l2", "ip", "cosine"};
    for (size_t c = 0; c < sizeof recall_cases / sizeof recall_cases[0]; c++) {
        const recall_case *rc = &recall_cases[c];
        printf("    recall@%d nprobe %d/%d %-11s", K, NPROBE, NLIST, rc->name);
        for (int metric = 0; metric <= SHOAL_METRIC_COSINE; metric++) {
            shoal_index *exact = make_flat((shoal_metric)metric);
            shoal_index *ivf = make_ivf((shoal_metric)metric, rc->cfg, SHOAL_SIMD_AUTO, 5);
            CHECK_INT(add_range(exact, g_data, 0, N), N);
            CHECK_INT(add_range(ivf, g_data, 0, N), N); /* trains on the first add */
            CHECK_INT(shoal_index_trained(ivf), 1);
            CHECK_INT(shoal_index_check(ivf), SHOAL_OK);
            double r = test_recall_at_k(ivf, exact, g_queries, NQ, DIM, K, NULL);
            printf(" %s %.3f", metrics[metric], r);
            if (r < rc->min_recall[metric])
                fprintf(stderr, "    %s %s: recall %.3f below %.2f\n", rc->name, metrics[metric],
                        r, rc->min_recall[metric]);
            CHECK(r >= rc->min_recall[metric]);
            /* Probing every list of a flat IVF is exact search. */
            if (rc->cfg.quantizer == SHOAL_QUANTIZER_F32) {
                shoal_search_params sp;
                shoal_search_params_init(&sp);
                sp.nprobe = NLIST;
                CHECK(test_recall_at_k(ivf, exact, g_queries, NQ, DIM, K, &sp) == 1.0);
            }
            shoal_stats stats;
            shoal_index_stats(ivf, &stats);
            CHECK_INT(stats.nlist, NLIST);
            CHECK_INT(stats.size, N);
            CHECK(stats.codes_bytes > 0 && stats.codes_bytes < stats.memory_bytes);
            CHECK_INT(stats.rerank_bytes > 0, rc->cfg.rerank > 0);
            if (rc->cfg.quantizer == SHOAL_QUANTIZER_PQ && !rc->cfg.rerank)
                CHECK(stats.codes_bytes < (size_t)N * DIM * sizeof(float) / 2);
            shoal_index_free(exact);
            shoal_index_free(ivf);
        }
        printf("\n");
    }
}

/* More probes, more recall; a bigger rerank, more recall. */
static void test_nprobe_and_rerank_params(void) {
    data_init();
    shoal_index *exact = make_flat(SHOAL_METRIC_L2);
    ivf_cfg cfg = {SHOAL_QUANTIZER_PQ, 16, 4, 20, 0};
    shoal_index *ivf = make_ivf(SHOAL_METRIC_L2, cfg, SHOAL_SIMD_AUTO, 5);
    CHECK_INT(add_range(exact, g_data, 0, N), N);
    CHECK_INT(add_range(ivf, g_data, 0, N), N);
    shoal_search_params sp;
    shoal_search_params_init(&sp);
    sp.nprobe = 1;
    double r1 = test_recall_at_k(ivf, exact, g_queries, NQ, DIM, K, &sp);
    sp.nprobe = 16;
    double r16 = test_recall_at_k(ivf, exact, g_queries, NQ, DIM, K, &sp);
    sp.rerank = 200;
    double r16b = test_recall_at_k(ivf, exact, g_queries, NQ, DIM, K, &sp);
    printf("    pq4 recall nprobe 1: %.3f, 16: %.3f, 16 + rerank 200: %.3f\n", r1, r16, r16b);
    CHECK(r1 < r16);
    CHECK(r16 <= r16b);
    CHECK(r16b >= 0.95);
    shoal_index_free(exact);
    shoal_index_free(ivf);
}

/* ----------------------------------------------------------- determinism */

/* The same seed and data give the same results, and so do the scalar and the
 * SIMD kernels (f32 bit-identical, int8 and fast-scan exact). */
static void test_deterministic_across_kernels(void) {
    data_init();
    const ivf_cfg cfgs[] = {{SHOAL_QUANTIZER_F32, 0, 0, 0, 3},
                            {SHOAL_QUANTIZER_SQ8, 0, 0, 0, 3},
                            {SHOAL_QUANTIZER_PQ, 8, 8, 0, 3},
                            {SHOAL_QUANTIZER_PQ, 16, 4, 0, 3},
                            {SHOAL_QUANTIZER_PQ, 16, 4, 30, 3},
                            {SHOAL_QUANTIZER_PQ, 32, 4, 0, 3}};
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++)
        for (int metric = 0; metric <= SHOAL_METRIC_COSINE; metric++) {
            shoal_index *a = make_ivf((shoal_metric)metric, cfgs[c], SHOAL_SIMD_AUTO, 9);
            shoal_index *b = make_ivf((shoal_metric)metric, cfgs[c], SHOAL_SIMD_SCALAR, 9);
            CHECK_INT(add_range(a, g_data, 0, N), N);
            CHECK_INT(add_range(b, g_data, 0, N), N);
            for (uint32_t q = 0; q < NQ; q++) {
                uint32_t la[K], lb[K];
                float da[K], db[K];
                const float *v = g_queries + (size_t)q * DIM;
                int na = shoal_index_search(a, v, DIM, K, NULL, la, da);
                int nb = shoal_index_search(b, v, DIM, K, NULL, lb, db);
                if (!CHECK_INT(na, nb) || !CHECK(memcmp(la, lb, sizeof la) == 0) ||
                    !CHECK(memcmp(da, db, sizeof da) == 0)) {
                    fprintf(stderr, "    config %zu metric %d query %u\n", c, metric, q);
                    break;
                }
            }
            shoal_index_free(a);
            shoal_index_free(b);
        }
}

/* pq_m odd: the fast-scan tables are padded to an even count. */
static void test_pq4_odd_m(void) {
    shoal_params p;
    shoal_params_init(&p);
    p.dim = 30;
    p.kind = SHOAL_KIND_IVF;
    p.ivf.nlist = 8;
    p.quantizer = SHOAL_QUANTIZER_PQ;
    p.ivf.pq_bits = 4;
    p.ivf.pq_m = 15;
    p.rerank = 40;
    shoal_index *index = NULL;
    CHECK_INT(shoal_index_new(&p, &index), SHOAL_OK);
    float *data = clustered(31, 1000, 30, 10);
    test_ids ids;
    test_ids_make(&ids, "r", 0, 1000);
    CHECK_INT(shoal_index_add(index, 1000, ids.bytes, ids.offsets, data, 30), 1000);
    uint32_t labels[5];
    float dist[5];
    shoal_search_params sp;
    shoal_search_params_init(&sp);
    sp.nprobe = 8;
    for (uint32_t r = 0; r < 50; r++) { /* every record finds itself */
        int found = shoal_index_search(index, data + (size_t)r * 30, 30, 5, &sp, labels, dist);
        CHECK_INT(found, 5);
        CHECK_INT(test_row_of(index, labels[0]), r);
    }
    test_ids_free(&ids);
    free(data);
    shoal_index_free(index);
}

/* ------------------------------------------------------------- mutation */

static void test_delete_upsert(void) {
    data_init();
    const ivf_cfg cfgs[] = {{SHOAL_QUANTIZER_F32, 0, 0, 0, 3},
                            {SHOAL_QUANTIZER_SQ8, 0, 0, 20, 3},
                            {SHOAL_QUANTIZER_PQ, 8, 8, 0, 3},
                            {SHOAL_QUANTIZER_PQ, 16, 4, 20, 3}};
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        shoal_index *ivf = make_ivf(SHOAL_METRIC_L2, cfgs[c], SHOAL_SIMD_AUTO, 2);
        CHECK_INT(add_range(ivf, g_data, 0, N), N);
        /* Delete two records of every three, checking as we go. */
        for (uint32_t r = 0; r < N; r++) {
            if (r % 3 == 0) continue;
            CHECK_INT(delete_row(ivf, r), 1);
            if (r % 500 == 1) CHECK_INT(shoal_index_check(ivf), SHOAL_OK);
        }
        CHECK_INT(shoal_index_size(ivf), N / 3);
        CHECK_INT(shoal_index_check(ivf), SHOAL_OK);
        shoal_search_params sp;
        shoal_search_params_init(&sp);
        sp.nprobe = NLIST;
        for (uint32_t q = 0; q < NQ; q++) {
            uint32_t labels[K];
            float dist[K];
            int found = shoal_index_search(ivf, g_queries + (size_t)q * DIM, DIM, K, &sp, labels,
                                           dist);
            CHECK_INT(found, K);
            for (int i = 0; i < found; i++) CHECK(test_row_of(ivf, labels[i]) % 3 == 0);
        }
        /* Upsert: record 3 moves onto query 0 and comes first. */
        test_ids ids;
        test_ids_make(&ids, "r", 3, 1);
        CHECK_INT(shoal_index_add(ivf, 1, ids.bytes, ids.offsets, g_queries, DIM), 1);
        test_ids_free(&ids);
        CHECK_INT(shoal_index_size(ivf), N / 3);
        CHECK_INT(shoal_index_check(ivf), SHOAL_OK);
        uint32_t labels[K];
        float dist[K];
        CHECK_INT(shoal_index_search(ivf, g_queries, DIM, K, &sp, labels, dist), K);
        CHECK_INT(test_row_of(ivf, labels[0]), 3);
        /* Re-add the deleted ones: labels are reused, lists stay consistent. */
        CHECK_INT(add_range(ivf, g_data, 0, N), N);
        CHECK_INT(shoal_index_size(ivf), N);
        CHECK_INT(shoal_index_check(ivf), SHOAL_OK);
        shoal_index_free(ivf);
    }
}

static int keep_even_row(void *ctx, uint32_t label) {
    return test_row_of(ctx, label) % 2 == 0;
}

static void test_filters(void) {
    data_init();
    ivf_cfg cfg = {SHOAL_QUANTIZER_PQ, 16, 4, 30, 0};
    shoal_index *ivf = make_ivf(SHOAL_METRIC_L2, cfg, SHOAL_SIMD_AUTO, 4);
    CHECK_INT(add_range(ivf, g_data, 0, N), N);
    shoal_search_params sp;
    shoal_search_params_init(&sp);
    sp.filter = keep_even_row;
    sp.filter_ctx = ivf;
    uint32_t bound = shoal_index_label_bound(ivf);
    uint8_t *bitmap = calloc((bound + 7) / 8, 1);
    for (uint32_t label = 0; label < bound; label++)
        if (test_row_of(ivf, label) % 5 == 0) bitmap[label / 8] |= (uint8_t)(1u << (label % 8));
    for (uint32_t q = 0; q < NQ; q++) {
        uint32_t labels[K];
        float dist[K];
        const float *v = g_queries + (size_t)q * DIM;
        sp.filter_bitmap = NULL;
        int found = shoal_index_search(ivf, v, DIM, K, &sp, labels, dist);
        CHECK_INT(found, K);
        for (int i = 0; i < found; i++) CHECK(test_row_of(ivf, labels[i]) % 2 == 0);
        sp.filter_bitmap = bitmap;
        sp.filter_bitmap_bits = bound;
        found = shoal_index_search(ivf, v, DIM, K, &sp, labels, dist);
        CHECK_INT(found, K);
        for (int i = 0; i < found; i++) CHECK(test_row_of(ivf, labels[i]) % 10 == 0);
    }
    free(bitmap);
    shoal_index_free(ivf);
}

/* Train explicitly, then add in small batches (one record at a time too). */
static void test_add_after_training(void) {
    data_init();
    shoal_index *exact = make_flat(SHOAL_METRIC_L2);
    ivf_cfg cfg = {SHOAL_QUANTIZER_SQ8, 0, 0, 0, 0};
    shoal_index *ivf = make_ivf(SHOAL_METRIC_L2, cfg, SHOAL_SIMD_AUTO, 6);
    CHECK_INT(shoal_index_trained(ivf), 0);
    CHECK_INT(shoal_index_train(ivf, 2000, g_data + 1000 * DIM, DIM), SHOAL_OK);
    CHECK_INT(shoal_index_trained(ivf), 1);
    CHECK_INT(shoal_index_size(ivf), 0);
    for (uint32_t from = 0; from < 100; from++) CHECK_INT(add_range(ivf, g_data, from, 1), 1);
    for (uint32_t from = 100; from < N; from += 700) {
        uint32_t n = N - from < 700 ? N - from : 700;
        CHECK_INT(add_range(ivf, g_data, from, n), (int)n);
    }
    CHECK_INT(add_range(exact, g_data, 0, N), N);
    CHECK_INT(shoal_index_check(ivf), SHOAL_OK);
    double r = test_recall_at_k(ivf, exact, g_queries, NQ, DIM, K, NULL);
    CHECK(r >= 0.85);
    shoal_index_free(exact);
    shoal_index_free(ivf);
}

/* Retraining re-encodes every record; all stay findable. */
static void test_retrain(void) {
    data_init();
    const ivf_cfg cfgs[] = {{SHOAL_QUANTIZER_F32, 0, 0, 0, 0},
                            {SHOAL_QUANTIZER_PQ, 16, 4, 20, 0},
                            {SHOAL_QUANTIZER_SQ8, 0, 0, 0, 0}};
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        shoal_index *ivf = make_ivf(SHOAL_METRIC_L2, cfgs[c], SHOAL_SIMD_AUTO, 8);
        /* Trained on one part of the space only, then retrained on all. */
        CHECK_INT(shoal_index_train(ivf, 500, g_data, DIM), SHOAL_OK);
        CHECK_INT(add_range(ivf, g_data, 0, N), N);
        CHECK_INT(delete_row(ivf, 17), 1);
        CHECK_INT(shoal_index_train(ivf, N, g_data, DIM), SHOAL_OK);
        CHECK_INT(shoal_index_size(ivf), N - 1);
        CHECK_INT(shoal_index_check(ivf), SHOAL_OK);
        shoal_search_params sp;
        shoal_search_params_init(&sp);
        sp.nprobe = 4;
        int self = 0;
        for (uint32_t r = 0; r < N; r += 7) {
            uint32_t labels[K];
            float dist[K];
            CHECK_INT(shoal_index_search(ivf, g_data + (size_t)r * DIM, DIM, K, &sp, labels, dist),
                      K);
            for (int i = 0; i < K; i++) {
                CHECK(test_row_of(ivf, labels[i]) != 17);
                self += test_row_of(ivf, labels[i]) == (long)r;
            }
        }
        /* Rows 0, 7, ... (429 of them, one deleted... 17 is not a multiple of 7). */
        CHECK(self >= (cfgs[c].quantizer == SHOAL_QUANTIZER_SQ8 ? 400 : 425));
        shoal_index_free(ivf);
    }
}

/* -------------------------------------------------------------- errors */

/* SQ8 residuals whose codes could reach past float32 (index/sq8.h) are
 * refused with SHOAL_EVECTOR, training nothing: by train() and by the first
 * add's own training, with or without rerank copies.  The records are
 * uniform in [-1.1e18, 1.1e18] in each dimension, so within SHOAL_LENGTH_MAX
 * (4.6e18), and their residuals span as widely in every dimension: a reach
 * of ~1.2e38, past 2^125 (~4.3e37).  The same records scaled down by 256
 * train, save and load. */
static void test_sq8_reach(void) {
    const uint32_t n = 1300; /* (a first add trains with >= 39 * nlist) */
    float *data = malloc((size_t)n * DIM * sizeof *data);
    test_rng rng = {17};
    for (size_t i = 0; i < (size_t)n * DIM; i++) data[i] = 1.1e18f * test_rng_float(&rng);
    for (int rerank = 0; rerank <= 20; rerank += 20) {
        ivf_cfg cfg = {SHOAL_QUANTIZER_SQ8, 0, 0, (uint32_t)rerank, 0};
        shoal_index *index = make_ivf(SHOAL_METRIC_L2, cfg, SHOAL_SIMD_AUTO, 5);
        CHECK_INT(shoal_index_train(index, n, data, DIM), SHOAL_EVECTOR);
        CHECK(strstr(shoal_index_errmsg(index), "sq8 cannot code these residuals") != NULL);
        CHECK_INT(shoal_index_trained(index), 0);
        CHECK_INT(add_range(index, data, 0, n), SHOAL_EVECTOR);
        CHECK_INT(shoal_index_size(index), 0);
        CHECK_INT(shoal_index_trained(index), 0);
        shoal_index_free(index);
        for (size_t i = 0; i < (size_t)n * DIM; i++) data[i] *= 1.0f / 256;
        index = make_ivf(SHOAL_METRIC_L2, cfg, SHOAL_SIMD_AUTO, 5);
        CHECK_INT(add_range(index, data, 0, n), (int)n);
        CHECK_INT(shoal_index_trained(index), 1);
        CHECK_INT(test_reload_size(index), (int)n);
        shoal_index_free(index);
        for (size_t i = 0; i < (size_t)n * DIM; i++) data[i] *= 256.0f;
    }
    free(data);
}

static void test_bad_parameters(void) {
    data_init();
    shoal_params p;
    shoal_params_init(&p);
    p.dim = DIM;
    p.kind = SHOAL_KIND_IVF;
    shoal_index *index = NULL;
    shoal_params bad = p;
    bad.quantizer = SHOAL_QUANTIZER_PQ;
    bad.ivf.pq_m = 5; /* does not divide 32 */
    CHECK_INT(shoal_index_new(&bad, &index), SHOAL_EPARAM);
    CHECK(index == NULL);
    bad.ivf.pq_m = 8;
    bad.ivf.pq_bits = 6;
    CHECK_INT(shoal_index_new(&bad, &index), SHOAL_EPARAM);
    bad = p;
    bad.rerank = 10; /* flat quantizer */
    CHECK_INT(shoal_index_new(&bad, &index), SHOAL_EPARAM);
    bad = p;
    bad.ivf.pq_m = 8; /* not pq */
    CHECK_INT(shoal_index_new(&bad, &index), SHOAL_EPARAM);
    bad = p;
    bad.quantizer = (shoal_quantizer)7;
    CHECK_INT(shoal_index_new(&bad, &index), SHOAL_EPARAM);
    bad = p;
    bad.ivf.nlist = 8;
    bad.ivf.nprobe = 9;
    CHECK_INT(shoal_index_new(&bad, &index), SHOAL_EPARAM);
    bad = p;
    bad.ivf.nlist = 70000;
    CHECK_INT(shoal_index_new(&bad, &index), SHOAL_EPARAM);

    /* nlist > n at training; too few for the first add; both leave the
     * index untrained and empty. */
    p.ivf.nlist = 64;
    CHECK_INT(shoal_index_new(&p, &index), SHOAL_OK);
    CHECK_INT(shoal_index_train(index, 50, g_data, DIM), SHOAL_EPARAM);
    CHECK(strstr(shoal_index_errmsg(index), "nlist") != NULL);
    CHECK_INT(shoal_index_trained(index), 0);
    CHECK_INT(add_range(index, g_data, 0, 100), SHOAL_ESTATE);
    CHECK(strstr(shoal_index_errmsg(index), "train") != NULL);
    CHECK_INT(shoal_index_size(index), 0);
    CHECK_INT(shoal_index_check(index), SHOAL_OK);
    uint32_t labels[K];
    float dist[K];
    CHECK_INT(shoal_index_search(index, g_queries, DIM, K, NULL, labels, dist), 0);
    CHECK_INT(shoal_index_train(index, 100, g_data, DIM - 1), SHOAL_EDIM);
    CHECK_INT(shoal_index_train(index, 0, g_data, DIM), SHOAL_EPARAM);
    float nan_rows[2 * DIM];
    memcpy(nan_rows, g_data, sizeof nan_rows);
    nan_rows[DIM + 3] = NAN;
    CHECK_INT(shoal_index_train(index, 2, nan_rows, DIM), SHOAL_EVECTOR);
    /* Trained: search-time limits. */
    CHECK_INT(shoal_index_train(index, N, g_data, DIM), SHOAL_OK);
    CHECK_INT(add_range(index, g_data, 0, 100), 100);
    shoal_search_params sp;
    shoal_search_params_init(&sp);
    sp.nprobe = 65;
    CHECK_INT(shoal_index_search(index, g_queries, DIM, K, &sp, labels, dist), SHOAL_EPARAM);
    sp.nprobe = 0;
    sp.rerank = 20; /* no rerank copies */
    CHECK_INT(shoal_index_search(index, g_queries, DIM, K, &sp, labels, dist), SHOAL_EPARAM);
    sp.rerank = 5; /* below k */
    CHECK_INT(shoal_index_search(index, g_queries, DIM, K, &sp, labels, dist), SHOAL_EPARAM);
    shoal_index_free(index);

    /* PQ needs at least 2^bits training vectors. */
    p.ivf.nlist = 4;
    p.quantizer = SHOAL_QUANTIZER_PQ;
    p.ivf.pq_bits = 8;
    CHECK_INT(shoal_index_new(&p, &index), SHOAL_OK);
    CHECK_INT(shoal_index_train(index, 200, g_data, DIM), SHOAL_EPARAM);
    CHECK(strstr(shoal_index_errmsg(index), "256") != NULL);
    CHECK_INT(shoal_index_train(index, 300, g_data, DIM), SHOAL_OK);
    shoal_index_free(index);

    /* Kinds without training. */
    shoal_params f;
    shoal_params_init(&f);
    f.dim = DIM;
    CHECK_INT(shoal_index_new(&f, &index), SHOAL_OK);
    CHECK_INT(shoal_index_train(index, N, g_data, DIM), SHOAL_EUNSUPPORTED);
    CHECK_INT(shoal_index_trained(index), 1);
    shoal_index_free(index);
}

/* -------------------------------------------------------- out of memory */

#define OOM_BATCH 200

/* Runs op at every allocation failure point, from the first until the one
 * past the last (where op succeeds); each must fail with ENOMEM and leave
 * size, training and results as they were, and nothing may leak. */
static void test_out_of_memory(void) {
    data_init();
    /* (8-bit PQ needs 256 training vectors per code book: not auto-trained
     * by a batch of OOM_BATCH, and trained once, not per failure point.) */
    const ivf_cfg cfgs[] = {{SHOAL_QUANTIZER_PQ, 16, 4, 10, 0}, {SHOAL_QUANTIZER_SQ8, 0, 0, 0, 0},
                            {SHOAL_QUANTIZER_PQ, 8, 8, 0, 0}};
    const char *names[] = {"pq4", "sq8", "pq8"};
    for (size_t c = 0; c < sizeof cfgs / sizeof *cfgs; c++) {
        shoal_params p;
        shoal_params_init(&p);
        p.dim = DIM;
        p.kind = SHOAL_KIND_IVF;
        p.ivf.nlist = 4; /* auto-train needs 39 * 4 <= OOM_BATCH */
        p.quantizer = cfgs[c].quantizer;
        p.ivf.pq_m = cfgs[c].pq_m;
        p.ivf.pq_bits = cfgs[c].pq_bits;
        p.rerank = cfgs[c].rerank;
        /* "Add after training" starts from this segment: trained on 1000,
         * holding 300 (loading is much cheaper than training again). */
        shoal_index *trained_index = NULL;
        uint8_t *trained_seg = NULL;
        size_t trained_size = 0;
        CHECK_INT(shoal_index_new(&p, &trained_index), SHOAL_OK);
        CHECK_INT(shoal_index_train(trained_index, 1000, g_data, DIM), SHOAL_OK);
        CHECK_INT(add_range(trained_index, g_data, 0, 300), 300);
        CHECK_INT(shoal_index_save(trained_index, NULL, &trained_seg, &trained_size), SHOAL_OK);
        for (int op = cfgs[c].pq_bits == 8 ? 2 : 0; op < 3; op++) {
            /* 0 auto-train add, 1 train, 2 add after training */
            int succeeded = 0;
            long failures = 0;
            for (long fail = 0; fail < 5000 && !succeeded; fail++) {
                test_counting cnt = TEST_COUNTING_INIT;
                shoal_allocator a = test_counting_allocator(&cnt);
                p.allocator = &a;
                shoal_index *index = NULL;
                if (op == 2) {
                    shoal_load_params lp;
                    shoal_load_params_init(&lp);
                    lp.allocator = &a;
                    CHECK_INT(shoal_index_load(trained_seg, trained_size, &lp, &index), SHOAL_OK);
                } else {
                    CHECK_INT(shoal_index_new(&p, &index), SHOAL_OK);
                }
                p.allocator = NULL;
                if (!index) break;
                uint32_t lb[K], la[K];
                float db[K], da[K];
                int nb = shoal_index_search(index, g_queries, DIM, K, NULL, lb, db);
                uint32_t size = shoal_index_size(index);
                int trained = shoal_index_trained(index);

                cnt.calls = 0;
                cnt.fail_at = fail;
                int rc = op == 1 ? shoal_index_train(index, 1000, g_data, DIM)
                                 : add_range(index, g_data, 300, OOM_BATCH);
                cnt.fail_at = -1;
                if (rc == SHOAL_ENOMEM) {
                    failures++;
                    CHECK(strstr(shoal_index_errmsg(index), "out of memory") != NULL);
                    CHECK_INT(shoal_index_size(index), size);
                    CHECK_INT(shoal_index_trained(index), trained);
                    CHECK_INT(shoal_index_check(index), SHOAL_OK);
                    int na = shoal_index_search(index, g_queries, DIM, K, NULL, la, da);
                    CHECK_INT(na, nb);
                    if (na > 0) CHECK(memcmp(la, lb, (size_t)na * sizeof *la) == 0);
                } else {
                    CHECK_INT(rc, op == 1 ? 0 : OOM_BATCH);
                    succeeded = 1;
                }
                shoal_index_free(index);
                CHECK_INT(cnt.live_blocks, 0);
            }
            CHECK(succeeded);
            CHECK(failures > 0);
            printf("    %s %-22s %ld failure points\n", names[c],
                   op == 0 ? "auto-training add" : op == 1 ? "train" : "add after training", failures);
        }
        shoal_index_free_bytes(trained_index, trained_seg);
        shoal_index_free(trained_index);
    }
}

void suite_ivf(void) {
    static const harness_test tests[] = {
        {"kmeans_deterministic", test_kmeans_deterministic},
        {"kmeans_empty_clusters_reseeded", test_kmeans_empty_clusters_reseeded},
        {"recall", test_recall},
        {"nprobe_and_rerank_params", test_nprobe_and_rerank_params},
        {"deterministic_across_kernels", test_deterministic_across_kernels},
        {"pq4_odd_m", test_pq4_odd_m},
        {"delete_upsert", test_delete_upsert},
        {"filters", test_filters},
        {"add_after_training", test_add_after_training},
        {"retrain", test_retrain},
        {"bad_parameters", test_bad_parameters},
        {"sq8_reach", test_sq8_reach},
        {"out_of_memory", test_out_of_memory},
    };
    harness_run("ivf", tests, sizeof tests / sizeof tests[0]);
    free(g_data);
    free(g_queries);
    g_data = g_queries = NULL;
}
