/*
 * golden_cases.h -- the golden segments' recipe, shared by the program that
 * made them (tests/golden/make_golden.c) and the test that loads them
 * (tests/test_segment.c); tests/js/segment.test.mjs repeats the queries.
 *
 * Each case builds a small seeded index, deletes some records and re-adds a
 * few (so the free list and label reuse are exercised), and is saved at a
 * fixed zstd level.  Queries: GOLDEN_QUERIES seeded vectors (test_rng seed
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
} golden_case;

static const golden_case GOLDEN_CASES[] = {
    {"flat-l2", SHOAL_KIND_FLAT, SHOAL_METRIC_L2, 16, 300, 0, SHOAL_QUANTIZER_F32, 0, 0, 0, 0},
    {"hnsw-cosine-f32", SHOAL_KIND_HNSW, SHOAL_METRIC_COSINE, 37, 300, 3, SHOAL_QUANTIZER_F32, 0, 0, 0, 0},
    {"hnsw-l2-sq8", SHOAL_KIND_HNSW, SHOAL_METRIC_L2, 8, 1100, 3, SHOAL_QUANTIZER_SQ8, 0, 0, 0, 0},
    {"ivf-flat-ip", SHOAL_KIND_IVF, SHOAL_METRIC_IP, 16, 400, 0, SHOAL_QUANTIZER_F32, 8, 0, 0, 0},
    {"ivf-pq4-rerank-l2", SHOAL_KIND_IVF, SHOAL_METRIC_L2, 37, 400, 3, SHOAL_QUANTIZER_PQ, 8, 37, 4, 20},
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
    p.ivf.rerank = c->rerank;
    shoal_index *index;
    if (shoal_index_new(&p, &index)) return NULL;
    test_rng rng = {4000u + number};
    float *data = malloc((size_t)c->n * c->dim * sizeof *data);
    test_fill(&rng, data, (size_t)c->n * c->dim);
    test_ids ids;
    test_ids_make(&ids, "g", 0, c->n);
    int ok = shoal_index_add(index, c->n, ids.bytes, ids.offsets, data, c->dim) == (int)c->n;
    /* Delete every 7th of the first 100, re-add every other one of those. */
    for (uint32_t i = 0; ok && i < 100; i += 7) {
        uint32_t o[2] = {0, ids.offsets[i + 1] - ids.offsets[i]};
        ok = shoal_index_delete(index, 1, ids.bytes + ids.offsets[i], o) == 1;
    }
    for (uint32_t i = 0; ok && i < 100; i += 14) {
        uint32_t o[2] = {0, ids.offsets[i + 1] - ids.offsets[i]};
        test_fill(&rng, data, c->dim);
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
            len += (size_t)snprintf(out + len, cap > len ? cap - len : 0, "%s %d %d %.*s %.9g\n",
                                    c->name, i, r, n, id, dist[r]);
        }
    }
    free(q);
    return (long)len;
}

#endif
