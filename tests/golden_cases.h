/*
 * golden_cases.h -- the golden segments' recipe, shared by the program that
 * made them (tests/golden/make_golden.c) and the test that loads them
 * (tests/test_segment.c); tests/js/segment.test.mjs repeats the queries.
 *
 * Each case builds a small seeded index, deletes some records and re-adds a
 * few (so the free list and label reuse are exercised), and is saved at a
 * fixed zstd level.  The segments live in tests/golden/<format version>/:
 * 1.0 was written by Shoal 0.1.0 and is only loaded (its recipe's bytes came
 * from an older insert and delete order); the current version's set is also
 * rebuilt from the recipe and must come out byte for byte.  Queries: GOLDEN_QUERIES seeded vectors (test_rng seed
 * 5000 + case number), k = GOLDEN_K, default search parameters; a result
 * line is "<case> <query> <rank> <id> <distance %.9g>".
 * Never change a case once its segment is committed: the point of a golden
 * file is that later versions must still load it and give these results.
 */
#ifndef SHOAL_GOLDEN_CASES_H
#define SHOAL_GOLDEN_CASES_H

#include "harness.h"
#include "shoal.h"

enum { GOLDEN_QUERIES = 5, GOLDEN_K = 10 };

typedef struct golden_case {
    const char *name;
    shoal_kind kind;
    shoal_metric metric;
    uint32_t dim, n;
    int zstd_level;
    shoal_quantizer quantizer;
    uint32_t nlist, pq_m, pq_bits, rerank;
    int records; /* metadata and times on every record (format 1.1 on) */
    int grid;    /* vectors rounded down to multiples of 2^-7 (SQ8's grid fit) */
} golden_case;

static const golden_case GOLDEN_CASES[] = {
    {"flat-l2", SHOAL_KIND_FLAT, SHOAL_METRIC_L2, 16, 300, 0, SHOAL_QUANTIZER_F32, 0, 0, 0, 0, 0, 0},
    {"hnsw-cosine-f32", SHOAL_KIND_HNSW, SHOAL_METRIC_COSINE, 37, 300, 3, SHOAL_QUANTIZER_F32, 0, 0, 0, 0, 0, 0},
    {"hnsw-l2-sq8", SHOAL_KIND_HNSW, SHOAL_METRIC_L2, 8, 1100, 3, SHOAL_QUANTIZER_SQ8, 0, 0, 0, 0, 0, 0},
    {"ivf-flat-ip", SHOAL_KIND_IVF, SHOAL_METRIC_IP, 16, 400, 0, SHOAL_QUANTIZER_F32, 8, 0, 0, 0, 0, 0},
    {"ivf-pq4-rerank-l2", SHOAL_KIND_IVF, SHOAL_METRIC_L2, 37, 400, 3, SHOAL_QUANTIZER_PQ, 8, 37, 4, 20, 0, 0},
    /* Format 1.1: metadata and times (sections 0x80000004, 0x80000005). */
    {"hnsw-l2-records", SHOAL_KIND_HNSW, SHOAL_METRIC_L2, 12, 400, 0, SHOAL_QUANTIZER_F32, 0, 0, 0, 0, 1, 0},
    /* Added later in 1.1: SQ8 on data with a grid of its own (exact codes) and
     * rerank copies with their bounds (the optional hnsw slack section). */
    {"hnsw-l2-sq8-grid-rerank", SHOAL_KIND_HNSW, SHOAL_METRIC_L2, 8, 1100, 0, SHOAL_QUANTIZER_SQ8, 0, 0, 0, 20, 0, 1},
};
#define GOLDEN_COUNT (sizeof GOLDEN_CASES / sizeof GOLDEN_CASES[0])

/* Builds case c; NULL on failure. */
static inline shoal_index *golden_build(const golden_case *c, uint32_t number) {
    shoal_params p;
    shoal_params_init(&p);
    p.dim = c->dim;
    p.metric = c->metric;
    p.kind = c->kind;
    p.seed = 77 + number;
    p.hnsw.M = 8;
    p.hnsw.ef_construction = 48;
    p.ivf.nlist = c->nlist;
    p.ivf.nprobe = c->nlist ? 3 : 0;
    p.quantizer = c->quantizer;
    p.ivf.pq_m = c->pq_m;
    p.ivf.pq_bits = c->pq_bits;
    p.rerank = c->rerank;
    shoal_index *index;
    if (shoal_index_new(&p, &index)) return NULL;
    test_rng rng = {4000u + number};
    float *data = malloc((size_t)c->n * c->dim * sizeof *data);
    test_fill(&rng, data, (size_t)c->n * c->dim);
    if (c->grid) test_on_grid(data, (size_t)c->n * c->dim);
    test_ids ids;
    test_ids_make(&ids, "g", 0, c->n);
    shoal_records r;
    memset(&r, 0, sizeof r);
    r.n = c->n;
    r.id_bytes = ids.bytes;
    r.id_offsets = ids.offsets;
    r.vectors = data;
    r.dim = c->dim;
    char *meta = malloc((size_t)c->n * 48 + 1);
    uint32_t *mo = malloc(((size_t)c->n + 1) * sizeof *mo);
    int64_t *times = malloc((size_t)c->n * sizeof *times);
    if (c->records) {
        size_t at = 0;
        for (uint32_t i = 0; i < c->n; i++) {
            mo[i] = (uint32_t)at;
            if (i % 4)
                at += (size_t)sprintf(meta + at, "{\"n\":%u,\"k\":\"c%u\",\"x\":%u.5}", i, i % 5, i);
            times[i] = i % 3 ? 1700000000000 + (int64_t)i * 60000 : SHOAL_TIME_NONE;
        }
        mo[c->n] = (uint32_t)at;
        r.metadata = meta;
        r.metadata_offsets = mo;
        r.times = times;
    }
    int ok = shoal_index_upsert(index, &r) == (int)c->n;
    free(meta);
    free(mo);
    free(times);
    /* Delete every 7th of the first 100, re-add every other one of those. */
    for (uint32_t i = 0; ok && i < 100; i += 7) {
        uint32_t o[2] = {0, ids.offsets[i + 1] - ids.offsets[i]};
        ok = shoal_index_delete(index, 1, ids.bytes + ids.offsets[i], o) == 1;
    }
    for (uint32_t i = 0; ok && i < 100; i += 14) {
        uint32_t o[2] = {0, ids.offsets[i + 1] - ids.offsets[i]};
        test_fill(&rng, data, c->dim);
        if (c->grid) test_on_grid(data, c->dim);
        ok = shoal_index_add(index, 1, ids.bytes + ids.offsets[i], o, data, c->dim) == 1;
    }
    free(data);
    test_ids_free(&ids);
    if (!ok) {
        shoal_index_free(index);
        return NULL;
    }
    return index;
}

/* Appends the case's result lines to out (a buffer of cap bytes); returns
 * the new length, or -1 on a search error. */
static inline long golden_results(shoal_index *index, const golden_case *c, uint32_t number,
                                  char *out, size_t cap, size_t len) {
    test_rng rng = {5000u + number};
    float *q = malloc(c->dim * sizeof *q);
    for (int i = 0; i < GOLDEN_QUERIES; i++) {
        test_fill(&rng, q, c->dim);
        uint32_t labels[GOLDEN_K];
        float dist[GOLDEN_K];
        int found = shoal_index_search(index, q, c->dim, GOLDEN_K, NULL, labels, dist);
        if (found < 0) {
            free(q);
            return -1;
        }
        for (int r = 0; r < found; r++) {
            const char *id;
            int n = shoal_index_label_id(index, labels[r], &id);
            len += (size_t)snprintf(out + len, cap > len ? cap - len : 0, "%s %d %d %.*s %.9g",
                                    c->name, i, r, n, id, dist[r]);
            if (c->records) { /* " <metadata JSON> <time>" */
                char *json;
                size_t size;
                int64_t t;
                if (shoal_index_metadata_json(index, 1, &labels[r], &json, &size) ||
                    shoal_index_record_info(index, labels[r], &t, NULL)) {
                    free(q);
                    return -1;
                }
                len += (size_t)snprintf(out + len, cap > len ? cap - len : 0, " %.*s %lld",
                                        (int)(size - 2), json + 1, (long long)t);
                shoal_index_free_bytes(index, json);
            }
            len += (size_t)snprintf(out + len, cap > len ? cap - len : 0, "\n");
        }
    }
    free(q);
    return (long)len;
}

#endif
