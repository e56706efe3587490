/*
 * xbuild.c -- the cross-build check's C side.  Builds flat indexes from the
 * seeded data that tests/js/data.mjs also generates, mutates them, searches,
 * and prints every result as "metric query rank id distance".
 * The same workload runs on a flat and on an HNSW index (seeded); HNSW
 * results depend on every distance computed while building the graph, so
 * agreement shows the graphs are identical too.  Then on two IVF indexes
 * (flat lists; 4-bit fast-scan PQ with rerank, pq_m 37 so the tables are
 * padded): their k-means, codebooks and fast-scan sums must match as well.
 * Then the quantized kinds: HNSW with SQ8 codes (trained once it holds
 * 1024 records, so the graph is built on codes after that), IVF SQ8 with
 * rerank, and IVF with 8-bit PQ: their training, codes and code distances
 * must match too.  Then HNSW SQ8 with rerank copies (the same graph as
 * HNSW SQ8; the best HNSW_RERANK of the HNSW_EF found re-scored in float32):
 * which candidates are re-scored, and the copies' segment bytes, must match.
 * Then HNSW f32 with batched inserts (hnsw.build_batch HNSW_BATCH), whose
 * neighbour searches run on two threads natively and on one in WASI and
 * wasm: the graph, and so every result and CID, must still match.  Then
 * HNSW SQ8 with copies again, on data with a grid of its own (GRID): the
 * exact codes of that fit must match too.
 * Last, each index is saved as a segment, uncompressed and with zstd level
 * 3, and the segments' CIDs printed as "cid <config> <level> <cid>": the
 * bytes, and so the CIDs, must be identical from every build.
 * Then a collection per metric (HNSW buffer, flushes, tiered and full
 * compaction, deletes as tombstones) commits a version after each step and
 * prints "root <metric> <step> <cid>": manifests, segment nodes, tombstones
 * and segments must be byte-identical too.
 * tests/js/xbuild.test.mjs runs this natively and as WASI and repeats it
 * through both wasm variants of the JS API; all four must agree.
 */
#include <stdlib.h>

#include "harness.h"
#include "shoal.h"

/* Keep in step with tests/js/data.mjs. */
enum { N = 1500, DIM = 37, QUERIES = 25, K = 10, DELETE_STEP = 3, DELETE_BELOW = 300 };
enum { HNSW_SEED = 99, HNSW_M = 8, HNSW_EF_CONSTRUCTION = 64, HNSW_EF = 24 };
enum { IVF_NLIST = 16, IVF_NPROBE = 4, IVF_PQ_M = 37, IVF_RERANK = 20 };
/* Below HNSW_EF, so a search re-scores only part of what it found. */
enum { HNSW_RERANK = 20 };
enum { HNSW_BATCH = 64 };
/* Configurations, in output order: flat, hnsw, ivf flat lists, ivf pq4 + rerank,
 * hnsw sq8, ivf sq8 + rerank, ivf pq8, hnsw sq8 + rerank copies, hnsw batched,
 * and hnsw sq8 + rerank copies on data rounded down to multiples of 2^-7 (GRID:
 * the fit takes the data's own grid, index/sq8.h; 256 values, so the top one
 * is clamped). */
enum { CONFIGS = 10, GRID = 9 };
enum { COLL_FLUSH = 400, COLL_MERGE = 3, COLL_BATCH = 500 };

static void collection_fail(const char *what, int rc, shoal_collection *c) {
    fprintf(stderr, "xbuild: collection %s: %s (%s)\n", what, shoal_strerror(rc),
            shoal_collection_errmsg(c));
    exit(1);
}

static void print_root(shoal_collection *c, int metric, int step) {
    uint8_t root[SHOAL_CID_BYTES];
    int rc = shoal_collection_commit(c, 0, root);
    if (rc < 0) collection_fail("commit", rc, c);
    char text[SHOAL_CID_SIZE];
    shoal_cid_format(root, text);
    printf("root %d %d %s\n", metric, step, text);
}

/* What Collection.flush() does in JS: flush, tiered compaction, commit. */
static void flush_like_js(shoal_collection *c, int metric, int step) {
    int rc = shoal_collection_flush(c);
    if (rc < 0) collection_fail("flush", rc, c);
    if ((rc = shoal_collection_compact(c, 0, 0)) < 0) collection_fail("compact", rc, c);
    print_root(c, metric, step);
}

static void collections(const float *data, int metric) {
    shoal_collection_params p;
    shoal_collection_params_init(&p);
    p.small.dim = DIM;
    p.small.metric = (shoal_metric)metric;
    p.small.seed = HNSW_SEED;
    p.small.hnsw.M = HNSW_M;
    p.small.hnsw.ef_construction = HNSW_EF_CONSTRUCTION;
    p.small.hnsw.ef_search = HNSW_EF;
    p.flush_records = COLL_FLUSH;
    p.merge_factor = COLL_MERGE;
    shoal_collection *c;
    int rc = shoal_collection_new(&p, &c);
    if (rc) collection_fail("new", rc, NULL);
    int step = 0;
    print_root(c, metric, step++);
    test_ids ids;
    test_ids_make(&ids, "v", 0, N);
    for (uint32_t at = 0; at < N; at += COLL_BATCH) {
        shoal_records r;
        memset(&r, 0, sizeof r);
        r.n = COLL_BATCH;
        r.id_bytes = ids.bytes;
        r.id_offsets = ids.offsets + at;
        r.vectors = data + (size_t)at * DIM;
        r.dim = DIM;
        if ((rc = shoal_collection_upsert(c, &r)) < 0) collection_fail("upsert", rc, c);
        if (shoal_collection_flush_due(c)) flush_like_js(c, metric, step++);
    }
    for (int i = 0; i < DELETE_BELOW; i += DELETE_STEP) {
        uint32_t o[2] = {0, ids.offsets[i + 1] - ids.offsets[i]};
        if ((rc = shoal_collection_delete(c, 1, ids.bytes + ids.offsets[i], o)) != 1)
            collection_fail("delete", rc, c);
    }
    flush_like_js(c, metric, step++);
    /* Collection.compact(): flush, full compaction, commit. */
    if ((rc = shoal_collection_flush(c)) < 0) collection_fail("flush", rc, c);
    if ((rc = shoal_collection_compact(c, 1, 0)) < 0) collection_fail("compact", rc, c);
    print_root(c, metric, step++);
    test_ids_free(&ids);
    shoal_collection_free(c);
}

static void fail(const char *what, int rc, shoal_index *index) {
    fprintf(stderr, "xbuild: %s: %s (%s)\n", what, shoal_strerror(rc),
            index ? shoal_index_errmsg(index) : "");
    exit(1);
}

int main(void) {
    static float data[N * DIM], fresh[N * DIM], query[DIM];
    for (int kind = 0; kind < CONFIGS; kind++)
    for (int metric = 0; metric <= SHOAL_METRIC_COSINE; metric++) {
        test_rng rng = {1000u + (uint64_t)metric};
        test_fill(&rng, data, (size_t)N * DIM);
        /* Every tenth row repeats the one before: exact ties to break. */
        for (int i = 9; i < N; i += 10) memcpy(data + i * DIM, data + (i - 1) * DIM, DIM * 4);
        if (kind == GRID) test_on_grid(data, (size_t)N * DIM);

        shoal_params p;
        shoal_params_init(&p);
        p.dim = DIM;
        p.metric = (shoal_metric)metric;
        p.kind = kind == 0 ? SHOAL_KIND_FLAT
                 : kind == 1 || kind == 4 || kind == 7 || kind == 8 || kind == GRID
                     ? SHOAL_KIND_HNSW
                                          : SHOAL_KIND_IVF;
        p.seed = HNSW_SEED;
        p.hnsw.M = HNSW_M;
        p.hnsw.ef_construction = HNSW_EF_CONSTRUCTION;
        p.hnsw.ef_search = HNSW_EF;
        if (p.kind == SHOAL_KIND_IVF) {
            p.ivf.nlist = IVF_NLIST;
            p.ivf.nprobe = IVF_NPROBE;
        }
        if (kind == 3 || kind == 6) {
            p.quantizer = SHOAL_QUANTIZER_PQ;
            p.ivf.pq_bits = kind == 3 ? 4 : 8;
            p.ivf.pq_m = IVF_PQ_M;
            p.rerank = kind == 3 ? IVF_RERANK : 0;
        }
        /* (37 code books of 256 codes: fewer k-means iterations keep the
         * wasm runs of the JS side short.) */
        if (kind == 6) p.ivf.train_iters = 4;
        if (kind == 4 || kind == 5 || kind == 7) p.quantizer = SHOAL_QUANTIZER_SQ8;
        if (kind == 5) p.rerank = IVF_RERANK;
        if (kind == 7 || kind == GRID) p.rerank = HNSW_RERANK;
        if (kind == GRID) p.quantizer = SHOAL_QUANTIZER_SQ8;
        if (kind == 8) p.hnsw.build_batch = HNSW_BATCH;
        shoal_index *index;
        int rc = shoal_index_new(&p, &index);
        if (rc) fail("new", rc, NULL);
#if !defined(__wasi__)
        if (kind == 8 && (rc = shoal_index_set_threads(index, 2))) fail("threads", rc, index);
#endif
        test_ids ids;
        test_ids_make(&ids, "v", 0, N);
        if ((rc = shoal_index_add(index, N, ids.bytes, ids.offsets, data, DIM)) < 0)
            fail("add", rc, index);

        /* Delete every third id below DELETE_BELOW, then re-add the first of
         * each deleted pair of those with fresh vectors (upserts and reuse). */
        for (int i = 0; i < DELETE_BELOW; i += DELETE_STEP) {
            uint32_t o[2] = {0, ids.offsets[i + 1] - ids.offsets[i]};
            if (shoal_index_delete(index, 1, ids.bytes + ids.offsets[i], o) != 1)
                fail("delete", -1, index);
        }
        test_fill(&rng, fresh, (size_t)(DELETE_BELOW / (2 * DELETE_STEP)) * DIM);
        if (kind == GRID) test_on_grid(fresh, (size_t)(DELETE_BELOW / (2 * DELETE_STEP)) * DIM);
        for (int i = 0, j = 0; i < DELETE_BELOW; i += 2 * DELETE_STEP, j++) {
            uint32_t o[2] = {0, ids.offsets[i + 1] - ids.offsets[i]};
            if ((rc = shoal_index_add(index, 1, ids.bytes + ids.offsets[i], o, fresh + j * DIM,
                                      DIM)) < 0)
                fail("re-add", rc, index);
        }

        for (int q = 0; q <= QUERIES; q++) {
            /* The last query is row 998, tied exactly with row 999 (never deleted). */
            if (q < QUERIES)
                test_fill(&rng, query, DIM);
            else
                memcpy(query, data + 998 * DIM, sizeof query);
            uint32_t labels[K];
            float distances[K];
            int found = shoal_index_search(index, query, DIM, K, NULL, labels, distances);
            if (found < 0) fail("search", found, index);
            for (int r = 0; r < found; r++) {
                const char *id;
                int len = shoal_index_label_id(index, labels[r], &id);
                printf("%d%d %d %d %.*s %.9g\n", kind, metric, q, r, len, id, distances[r]);
            }
        }
        for (int level = 0; level <= 3; level += 3) {
            shoal_save_params sp;
            shoal_save_params_init(&sp);
            sp.zstd_level = level;
            uint8_t *seg;
            size_t size;
            if ((rc = shoal_index_save(index, &sp, &seg, &size))) fail("save", rc, index);
            char cid[SHOAL_CID_SIZE];
            shoal_cid(seg, size, cid);
            printf("cid %d%d %d %s\n", kind, metric, level, cid);
            shoal_index_free_bytes(index, seg);
        }
        test_ids_free(&ids);
        shoal_index_free(index);
        if (kind == CONFIGS - 1) {
            test_rng again = {1000u + (uint64_t)metric};
            test_fill(&again, data, (size_t)N * DIM);
            collections(data, metric);
        }
    }
    return 0;
}
