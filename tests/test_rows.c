/*
 * test_rows.c -- IVF rerank rows left in the segment (shoal_load_params.
 * rerank_external: shoal_index_search_candidates, the host's reads,
 * shoal_index_rerank_rows) and the per-list PQ tables (pq_tables).
 *
 * The reference for external rows is the same segment loaded with its rows:
 * the two phases must give its labels and distances bit for bit, whole or
 * lazily opened with each list attached without its rows.  The reference
 * for the tables is the scalar kernels and a fixed hash of results, so that
 * the WASI builds check the same bits as the native one.
 */
#include "harness.h"

#define DIM 16
#define N 2400
#define NLIST 20
#define QUERIES 24

typedef struct rows_case {
    const char *name;
    shoal_metric metric;
    shoal_quantizer quantizer;
    uint32_t pq_m, pq_bits, rerank;
    int hnsw; /* an HNSW SQ8 index instead of IVF */
} rows_case;

static const rows_case CASES[] = {
    {"pq4 l2", SHOAL_METRIC_L2, SHOAL_QUANTIZER_PQ, 8, 4, 30, 0},
    {"pq8 cosine", SHOAL_METRIC_COSINE, SHOAL_QUANTIZER_PQ, 4, 8, 15, 0},
    {"sq8 ip", SHOAL_METRIC_IP, SHOAL_QUANTIZER_SQ8, 0, 0, 20, 0},
};

static shoal_index *make_index(const rows_case *c, uint32_t pq_tables, shoal_simd simd,
                               float **data_out) {
    shoal_params p;
    shoal_params_init(&p);
    p.dim = DIM;
    p.metric = c->metric;
    p.kind = c->hnsw ? SHOAL_KIND_HNSW : SHOAL_KIND_IVF;
    p.quantizer = c->quantizer;
    p.simd = simd;
    if (!c->hnsw) {
        p.ivf.pq_m = c->pq_m;
        p.ivf.pq_bits = c->pq_bits;
        p.ivf.pq_tables = pq_tables;
        p.ivf.nlist = NLIST;
        p.ivf.nprobe = 3;
    }
    p.rerank = c->rerank;
    p.seed = 9;
    shoal_index *index;
    if (!CHECK_INT(shoal_index_new(&p, &index), SHOAL_OK)) return NULL;
    float *data = test_clustered(31, N, DIM, 12, 0.1f);
    test_ids ids;
    test_ids_make(&ids, "r", 0, N);
    char *meta = malloc((size_t)N * 12);
    uint32_t *mo = malloc((N + 1) * sizeof *mo);
    uint32_t at = 0;
    for (uint32_t i = 0; i < N; i++) {
        mo[i] = at;
        at += (uint32_t)sprintf(meta + at, "{\"g\":%u}", i % 7);
    }
    mo[N] = at;
    shoal_records r;
    memset(&r, 0, sizeof r);
    r.n = N;
    r.id_bytes = ids.bytes;
    r.id_offsets = ids.offsets;
    r.vectors = data;
    r.dim = DIM;
    r.metadata = meta;
    r.metadata_offsets = mo;
    CHECK_INT(shoal_index_upsert(index, &r), N);
    test_ids_free(&ids);
    free(meta);
    free(mo);
    *data_out = data;
    return index;
}

static uint8_t *save_copy(shoal_index *index, int zstd, size_t *size) {
    shoal_save_params sp;
    shoal_save_params_init(&sp);
    sp.zstd_level = zstd;
    uint8_t *seg;
    if (!CHECK_INT(shoal_index_save(index, &sp, &seg, size), SHOAL_OK)) return NULL;
    uint8_t *copy = malloc(*size);
    memcpy(copy, seg, *size);
    shoal_index_free_bytes(index, seg);
    return copy;
}

/* The segment of case c's index (saved at zstd level zstd); *data gets its
 * vectors. */
static uint8_t *case_segment(const rows_case *c, int zstd, float **data, size_t *size) {
    shoal_index *built = make_index(c, 0, SHOAL_SIMD_AUTO, data);
    uint8_t *seg = save_copy(built, zstd, size);
    shoal_index_free(built);
    return seg;
}

/* rerank_external set. */
static shoal_load_params external_params(void) {
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    lp.rerank_external = 1;
    return lp;
}

/* The two phases against segment bytes seg, as a host that skips by the
 * floors does (shoal.h): the first k candidates' rows, reranked; then the
 * later ones whose floor does not exceed the k-th distance, and all the
 * rows read reranked again.  Returns the result count; *rows_read (if
 * given) gains the rows read, *rows_offered the candidates. */
static int two_phase(shoal_index *x, const uint8_t *seg, const float *q, uint32_t k,
                     const shoal_search_params *sp, uint32_t *labels, float *dist,
                     uint64_t *rows_read, uint64_t *rows_offered) {
    shoal_candidate cand[512];
    int n = shoal_index_search_candidates(x, q, DIM, k, sp, cand, 512);
    if (!CHECK(n >= 0 && n <= 512)) return n;
    uint32_t *cl = malloc((size_t)(n ? n : 1) * sizeof *cl);
    uint8_t *rows = malloc((size_t)(n ? n : 1) * DIM * 4);
    uint32_t m = 0, first = (uint32_t)n < k ? (uint32_t)n : k;
    for (; m < first; m++) {
        cl[m] = cand[m].label;
        memcpy(rows + (size_t)m * DIM * 4, seg + cand[m].offset, DIM * 4);
    }
    int got = shoal_index_rerank_rows(x, q, DIM, k, m, cl, rows, labels, dist);
    if (got == (int)k && (uint32_t)n > first) {
        float worst = dist[k - 1];
        for (uint32_t i = first; i < (uint32_t)n; i++) {
            if (cand[i].floor > worst) continue;
            cl[m] = cand[i].label;
            memcpy(rows + (size_t)m * DIM * 4, seg + cand[i].offset, DIM * 4);
            m++;
        }
        got = shoal_index_rerank_rows(x, q, DIM, k, m, cl, rows, labels, dist);
    } else if ((uint32_t)n > first) { /* fewer than k: every row */
        for (; m < (uint32_t)n; m++) {
            cl[m] = cand[m].label;
            memcpy(rows + (size_t)m * DIM * 4, seg + cand[m].offset, DIM * 4);
        }
        got = shoal_index_rerank_rows(x, q, DIM, k, m, cl, rows, labels, dist);
    }
    if (rows_read) *rows_read += m;
    if (rows_offered) *rows_offered += (uint64_t)n;
    free(cl);
    free(rows);
    return got;
}

/* The two phases reading every candidate's row: the reference for the
 * floors.  Returns the result count; *rows_read gains the rows read. */
static int all_rows(shoal_index *x, const uint8_t *seg, const float *q, uint32_t k,
                    const shoal_search_params *sp, uint32_t *labels, float *dist,
                    uint64_t *rows_read) {
    shoal_candidate cand[512];
    int n = shoal_index_search_candidates(x, q, DIM, k, sp, cand, 512);
    if (!CHECK(n >= 0 && n <= 512)) return n;
    uint32_t *cl = malloc((size_t)(n ? n : 1) * sizeof *cl);
    uint8_t *rows = malloc((size_t)(n ? n : 1) * DIM * 4);
    for (int i = 0; i < n; i++) {
        cl[i] = cand[i].label;
        memcpy(rows + (size_t)i * DIM * 4, seg + cand[i].offset, DIM * 4);
    }
    *rows_read += (uint64_t)n;
    int got = shoal_index_rerank_rows(x, q, DIM, k, (uint32_t)n, cl, rows, labels, dist);
    free(cl);
    free(rows);
    return got;
}

/* Attaches the lists a search wants, each without its rows. */
static void feed_without_rows(shoal_index *lazy, const uint8_t *seg, const float *q,
                              const shoal_search_params *sp) {
    uint32_t want[NLIST];
    for (int round = 0; round < NLIST; round++) {
        int n = shoal_index_lists_wanted(lazy, q, DIM, sp, want, NLIST);
        if (!CHECK(n >= 0 && n <= NLIST) || n == 0) return;
        for (int i = 0; i < n; i++) {
            uint64_t off, len, roff, rlen;
            CHECK_INT(shoal_index_list_range(lazy, want[i], &off, &len), SHOAL_OK);
            CHECK_INT(shoal_index_list_rows_range(lazy, want[i], &roff, &rlen), SHOAL_OK);
            CHECK(roff > off && roff + rlen < off + len && rlen >= (uint64_t)DIM * 4);
            size_t head = (size_t)(roff - off), tail = (size_t)(off + len - roff - rlen);
            uint8_t *unit = malloc(head + tail);
            memcpy(unit, seg + off, head);
            memcpy(unit + head, seg + roff + rlen, tail);
            /* One byte short is neither form of the list. */
            CHECK_INT(shoal_index_attach_list(lazy, want[i], unit, head + tail - 1),
                      SHOAL_ETRUNCATED);
            CHECK_INT(shoal_index_attach_list(lazy, want[i], unit, head + tail), 1);
            free(unit);
        }
    }
    CHECK(!"lists_wanted did not settle");
}

static void test_external_equals_resident(void) {
    for (size_t ci = 0; ci < sizeof CASES / sizeof CASES[0]; ci++) {
        const rows_case *c = &CASES[ci];
        float *data;
        size_t size;
        uint8_t *seg = case_segment(c, 0, &data, &size);
        shoal_load_params lp = external_params();
        shoal_index *resident, *ext, *lazy;
        CHECK_INT(shoal_index_load(seg, size, NULL, &resident), SHOAL_OK);
        CHECK_INT(shoal_index_load(seg, size, &lp, &ext), SHOAL_OK);
        shoal_segment_summary info;
        CHECK_INT(shoal_segment_info(seg, size, &info), SHOAL_OK);
        CHECK_INT(shoal_index_open_head(seg, (size_t)info.head_bytes, &lp, &lazy), SHOAL_OK);

        shoal_stats sr, se;
        shoal_index_stats(resident, &sr);
        shoal_index_stats(ext, &se);
        CHECK(sr.rerank_bytes >= (size_t)N * DIM * 4);
        CHECK_INT(se.rerank_bytes, 0);
        CHECK(se.memory_bytes + (size_t)N * DIM * 4 <= sr.memory_bytes);
        CHECK_INT(se.codes_bytes, sr.codes_bytes);

        shoal_filter *g3;
        CHECK_INT(shoal_filter_compile("{\"g\":3}", 7, NULL, &g3, NULL, 0), SHOAL_OK);
        uint64_t rows_read = 0, offered = 0;
        for (uint32_t qi = 0; qi < QUERIES; qi++) {
            const float *q = data + (size_t)(qi * 97 % N) * DIM;
            shoal_search_params sp;
            shoal_search_params_init(&sp);
            uint32_t k = qi % 3 == 2 ? 5 : 10;
            if (qi % 4 == 1) sp.nprobe = 6;
            if (qi % 5 == 2) sp.rerank = 40;
            if (qi % 6 == 5) sp.where = g3;
            uint32_t la[10], lb[10], lc[10];
            float da[10], db[10], dc[10];
            int na = shoal_index_search(resident, q, DIM, k, &sp, la, da);
            CHECK(na == (int)k);
            if (qi == 0) {
                CHECK_INT(shoal_index_search(ext, q, DIM, k, &sp, lb, db), SHOAL_ESTATE);
                CHECK(strstr(shoal_index_errmsg(ext), "shoal_index_search_candidates") != NULL);
                shoal_candidate one;
                CHECK_INT(shoal_index_search_candidates(resident, q, DIM, k, &sp, &one, 1),
                          SHOAL_ESTATE);
            }
            int nb = two_phase(ext, seg, q, k, &sp, lb, db, &rows_read, &offered);
            feed_without_rows(lazy, seg, q, &sp);
            int nc = two_phase(lazy, seg, q, k, &sp, lc, dc, NULL, NULL);
            CHECK_INT(nb, na);
            CHECK_INT(nc, na);
            for (int i = 0; i < na && i < nb && i < nc; i++) {
                CHECK_INT(lb[i], la[i]);
                CHECK_INT(lc[i], la[i]);
                CHECK(db[i] == da[i] && dc[i] == da[i]);
            }
        }
        /* Candidates: as many as the rerank depth, the count returned even
         * past cap. */
        const float *q = data;
        shoal_candidate few[3];
        int total = shoal_index_search_candidates(ext, q, DIM, 10, NULL, few, 3);
        CHECK_INT(total, c->rerank);
        /* IVF gives no floors: every candidate's row is read. */
        CHECK(rows_read > 0 && rows_read == offered);
        shoal_filter_free(g3);

        /* Read-only, and honest about it. */
        test_ids one;
        test_ids_make(&one, "r", 0, 1);
        CHECK_INT(shoal_index_add(ext, 1, one.bytes, one.offsets, data, DIM), SHOAL_ESTATE);
        CHECK_INT(shoal_index_delete(ext, 1, one.bytes, one.offsets), SHOAL_ESTATE);
        CHECK_INT(shoal_index_train(ext, N, data, DIM), SHOAL_ESTATE);
        uint8_t *again;
        size_t again_size;
        CHECK_INT(shoal_index_save(ext, NULL, &again, &again_size), SHOAL_ESTATE);
        const shoal_index *sources[1] = {ext};
        shoal_params mp;
        shoal_params_init(&mp);
        mp.dim = DIM;
        mp.metric = c->metric;
        shoal_index *merged;
        CHECK_INT(shoal_index_merge(sources, 1, &mp, &merged), SHOAL_ESTATE);
        CHECK_INT(shoal_index_check(ext), SHOAL_OK);
        test_ids_free(&one);

        /* Phase 2 refuses bad input: a label past the records, a NaN row. */
        uint32_t bad_label = N + 5, lab[10];
        float dist[10], nan_row[DIM];
        for (int j = 0; j < DIM; j++) nan_row[j] = j == 3 ? NAN : 0.5f;
        CHECK_INT(shoal_index_rerank_rows(ext, q, DIM, 10, 1, &bad_label, seg, lab, dist),
                  SHOAL_EPARAM);
        uint32_t good = 0;
        CHECK_INT(shoal_index_rerank_rows(ext, q, DIM, 10, 1, &good, (const uint8_t *)nan_row,
                                          lab, dist),
                  SHOAL_ECORRUPT);
        CHECK_INT(shoal_index_rerank_rows(ext, q, DIM, 10, 0, NULL, NULL, lab, dist), 0);
        shoal_index_free(lazy);
        shoal_index_free(ext);
        shoal_index_free(resident);

        /* Compressed rerank sections cannot be read row by row. */
        free(data);
        free(seg);
        seg = case_segment(c, 3, &data, &size);
        CHECK_INT(shoal_segment_info(seg, size, &info), SHOAL_OK);
        if (info.compressed) {
            CHECK_INT(shoal_index_load(seg, size, &lp, &ext), SHOAL_EUNSUPPORTED);
            CHECK_INT(shoal_index_open_head(seg, (size_t)info.head_bytes, &lp, &lazy),
                      SHOAL_EUNSUPPORTED);
        }
        free(seg);
        free(data);
    }
}

/* A kind that cannot keep rerank rows, or an index without copies, ignores
 * rerank_external: it stays writable and searches as usual. */
static void test_external_ignored(shoal_kind kind, shoal_quantizer quantizer) {
    shoal_params p;
    shoal_params_init(&p);
    p.dim = DIM;
    p.kind = kind;
    p.quantizer = quantizer;
    shoal_index *x;
    CHECK_INT(shoal_index_new(&p, &x), SHOAL_OK);
    float *v = test_clustered(3, 1100, DIM, 4, 0.1f);
    test_ids ids;
    test_ids_make(&ids, "f", 0, 1100);
    CHECK_INT(shoal_index_add(x, 1100, ids.bytes, ids.offsets, v, DIM), 1100);
    size_t size;
    uint8_t *seg = save_copy(x, 0, &size);
    shoal_index_free(x);
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    lp.rerank_external = 1;
    CHECK_INT(shoal_index_load(seg, size, &lp, &x), SHOAL_OK);
    uint32_t labels[5];
    float dist[5];
    CHECK_INT(shoal_index_search(x, v, DIM, 5, NULL, labels, dist), 5);
    CHECK_INT(shoal_index_delete(x, 1, ids.bytes, ids.offsets), 1);
    shoal_index_free(x);
    test_ids_free(&ids);
    free(seg);
    free(v);
}

static void test_external_without_copies(void) {
    test_external_ignored(SHOAL_KIND_FLAT, SHOAL_QUANTIZER_F32);
    test_external_ignored(SHOAL_KIND_HNSW, SHOAL_QUANTIZER_F32);
    test_external_ignored(SHOAL_KIND_HNSW, SHOAL_QUANTIZER_SQ8);
    rows_case c = {"pq4 no rerank", SHOAL_METRIC_L2, SHOAL_QUANTIZER_PQ, 8, 4, 0, 0};
    float *data;
    shoal_index *built = make_index(&c, 0, SHOAL_SIMD_AUTO, &data);
    size_t size;
    uint8_t *seg = save_copy(built, 0, &size);
    shoal_index_free(built);
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    lp.rerank_external = 1;
    shoal_index *x;
    CHECK_INT(shoal_index_load(seg, size, &lp, &x), SHOAL_OK);
    uint32_t labels[10];
    float dist[10];
    CHECK_INT(shoal_index_search(x, data, DIM, 10, NULL, labels, dist), 10);
    test_ids one;
    test_ids_make(&one, "r", 0, 1);
    CHECK_INT(shoal_index_delete(x, 1, one.bytes, one.offsets), 1);
    test_ids_free(&one);
    shoal_index_free(x);
    free(seg);
    free(data);
}

/* HNSW SQ8 with copies: the rows are the segment's last section, so the
 * head (shoal_segment_summary.head_bytes) is all an opener needs. */
static const rows_case HNSW_CASES[] = {
    {"hnsw sq8 l2", SHOAL_METRIC_L2, SHOAL_QUANTIZER_SQ8, 0, 0, 20, 1},
    {"hnsw sq8 ip", SHOAL_METRIC_IP, SHOAL_QUANTIZER_SQ8, 0, 0, 12, 1},
    {"hnsw sq8 cosine", SHOAL_METRIC_COSINE, SHOAL_QUANTIZER_SQ8, 0, 0, 20, 1},
};

/* The rows two_phase reads over the queries of seg opened with its rows
 * external; its answers must be the resident index's. */
static uint64_t rows_read_external(const uint8_t *seg, size_t size, shoal_index *resident,
                                   const float *data) {
    shoal_load_params lp = external_params();
    shoal_index *x;
    if (!CHECK_INT(shoal_index_load(seg, size, &lp, &x), SHOAL_OK)) return 0;
    uint64_t read = 0;
    for (uint32_t qi = 0; qi < QUERIES; qi++) {
        const float *q = data + (size_t)(qi * 89 % N) * DIM;
        uint32_t la[10], lb[10];
        float da[10], db[10];
        CHECK_INT(shoal_index_search(resident, q, DIM, 10, NULL, la, da), 10);
        CHECK_INT(two_phase(x, seg, q, 10, NULL, lb, db, &read, NULL), 10);
        for (int i = 0; i < 10; i++) CHECK(la[i] == lb[i] && da[i] == db[i]);
    }
    shoal_index_free(x);
    return read;
}

/* The hnsw slack section (optional, 0x80000014): each record's rerank
 * bound against its copy.  Opened with its rows external, an index takes
 * them instead of bounding from the codes: the same answers from fewer
 * rows than the same segment with the section hidden (its kind renamed to
 * an optional kind no reader knows -- a segment from before the section),
 * which still loads and answers the same.  A NaN or negative bound is
 * corrupt either way; a possible but wrong one (infinite, or halved) is
 * corrupt for a whole load, which computes the bounds from the rows, and
 * taken by an external one, which cannot. */
static void hnsw_slack_section(const uint8_t *seg, size_t size, shoal_index *resident,
                               const float *data) {
    uint32_t sec = test_find_section(seg, 0x80000014u);
    if (!CHECK(sec != UINT32_MAX)) return;
    uint8_t *copy = malloc(size);
    memcpy(copy, seg, size);
    uint64_t with = rows_read_external(seg, size, resident, data);
    copy[64 + 48 * (size_t)sec] = 0x77; /* kind 0x80000077 */
    test_fix_crcs(copy, size, sec);
    uint64_t without = rows_read_external(copy, size, resident, data);
    CHECK(with > 0 && with < without);
    printf("    hnsw slack: %llu rows read with the section, %llu without\n",
           (unsigned long long)with, (unsigned long long)without);

    size_t off = test_section_start(seg, sec);
    static const float bad[] = {NAN, -1.0f, INFINITY, 0.0f};
    for (int i = 0; i < 4; i++) {
        memcpy(copy, seg, size);
        uint8_t *at = copy + off + 8 * 17 + 4 * (i == 2); /* label 17's err or rr */
        float v = bad[i];
        if (i == 3) { /* halved */
            memcpy(&v, at, 4);
            v *= 0.5f;
        }
        memcpy(at, &v, 4);
        test_fix_crcs(copy, size, sec);
        shoal_load_params lp = external_params();
        shoal_index *x;
        CHECK_INT(shoal_index_load(copy, size, &lp, &x), i >= 2 ? SHOAL_OK : SHOAL_ECORRUPT);
        shoal_index_free(x);
        char msg[200] = "";
        shoal_load_params whole;
        shoal_load_params_init(&whole);
        whole.errmsg = msg;
        whole.errmsg_size = sizeof msg;
        CHECK_INT(shoal_index_load(copy, size, &whole, &x), SHOAL_ECORRUPT);
        CHECK(strstr(msg, i >= 2 ? "disagrees with the row of label 17" : "bad slack") != NULL);
    }
    free(copy);
}

static void test_hnsw_external(void) {
    for (size_t ci = 0; ci < sizeof HNSW_CASES / sizeof HNSW_CASES[0]; ci++) {
        const rows_case *c = &HNSW_CASES[ci];
        float *data;
        size_t size;
        uint8_t *seg = case_segment(c, 0, &data, &size);
        shoal_load_params lp = external_params();
        shoal_segment_summary info;
        CHECK_INT(shoal_segment_info(seg, size, &info), SHOAL_OK);
        CHECK(info.head_bytes + (uint64_t)N * DIM * 4 <= size);
        CHECK(info.head_bytes + (uint64_t)N * DIM * 4 + 64 > size); /* (padding) */
        shoal_index *resident, *ext, *head;
        CHECK_INT(shoal_index_load(seg, size, NULL, &resident), SHOAL_OK);
        CHECK_INT(shoal_index_load(seg, size, &lp, &ext), SHOAL_OK);
        /* The head alone: half of it is truncated; without the option,
         * or whole, an HNSW segment does not open from its head. */
        CHECK_INT(shoal_index_open_head(seg, (size_t)info.head_bytes / 2, &lp, &head),
                  SHOAL_ETRUNCATED);
        CHECK_INT(shoal_index_open_head(seg, (size_t)info.head_bytes, NULL, &head),
                  SHOAL_EUNSUPPORTED);
        CHECK_INT(shoal_index_open_head(seg, (size_t)info.head_bytes, &lp, &head), SHOAL_OK);
        CHECK_INT(shoal_index_lists_missing(head), 0);

        shoal_stats sr, se, sh;
        shoal_index_stats(resident, &sr);
        shoal_index_stats(ext, &se);
        shoal_index_stats(head, &sh);
        CHECK(sr.rerank_bytes >= (size_t)N * DIM * 4);
        CHECK_INT(se.rerank_bytes, 0);
        CHECK_INT(sh.rerank_bytes, 0);
        CHECK(se.memory_bytes + (size_t)N * DIM * 4 <= sr.memory_bytes);
        CHECK(sh.memory_bytes + (size_t)N * DIM * 4 <= sr.memory_bytes);

        /* {"g":3}: a seventh of the records, scored exactly; $ne: six
         * sevenths, filtered during the traversal. */
        shoal_filter *g3, *not3;
        CHECK_INT(shoal_filter_compile("{\"g\":3}", 7, NULL, &g3, NULL, 0), SHOAL_OK);
        const char *ne = "{\"g\":{\"$ne\":3}}";
        CHECK_INT(shoal_filter_compile(ne, (uint32_t)strlen(ne), NULL, &not3, NULL, 0), SHOAL_OK);
        uint64_t rows_read = 0, offered = 0, all_read = 0;
        for (uint32_t qi = 0; qi < 3 * QUERIES; qi++) {
            const float *q = data + (size_t)(qi * 97 % N) * DIM;
            float moved[DIM];
            for (int j = 0; j < DIM; j++) moved[j] = q[j] + 0.01f * (float)((qi + j) % 5);
            if (qi % 2) q = moved; /* between records, not on one */
            shoal_search_params sp;
            shoal_search_params_init(&sp);
            uint32_t k = qi % 4 == 3 ? 30 : qi % 4 == 2 ? 1 : 10; /* 30: past the depth */
            if (qi % 5 == 1) sp.ef = k > 16 ? k : 16;
            if (qi % 5 == 3) sp.ef = 80;
            if (qi % 7 == 2) sp.rerank = 40;
            if (qi % 6 == 5) sp.where = g3;
            if (qi % 6 == 4) sp.where = not3;
            uint32_t la[30], lb[30], lc[30];
            float da[30], db[30], dc[30];
            int na = shoal_index_search(resident, q, DIM, k, &sp, la, da);
            CHECK(na == (int)k);
            if (qi == 0) {
                CHECK_INT(shoal_index_search(ext, q, DIM, k, &sp, lb, db), SHOAL_ESTATE);
                CHECK(strstr(shoal_index_errmsg(ext), "shoal_index_search_candidates") != NULL);
                CHECK_INT(shoal_index_search(head, q, DIM, k, &sp, lb, db), SHOAL_ESTATE);
                /* the parameter checks are search's */
                shoal_search_params low = sp;
                low.ef = k - 1;
                shoal_candidate one;
                CHECK_INT(shoal_index_search_candidates(head, q, DIM, k, &low, &one, 1),
                          SHOAL_EPARAM);
            }
            int nb = two_phase(ext, seg, q, k, &sp, lb, db, &rows_read, &offered);
            int nc = two_phase(head, seg, q, k, &sp, lc, dc, NULL, NULL);
            /* The floors only save reads: rows read for every candidate
             * give the same answers. */
            shoal_search_params all = sp;
            uint32_t ld[30];
            float dd[30];
            CHECK_INT(all_rows(head, seg, q, k, &all, ld, dd, &all_read), na);
            for (int i = 0; i < na; i++) CHECK(ld[i] == la[i] && dd[i] == da[i]);
            CHECK_INT(nb, na);
            CHECK_INT(nc, na);
            for (int i = 0; i < na && i < nb && i < nc; i++) {
                CHECK_INT(lb[i], la[i]);
                CHECK_INT(lc[i], la[i]);
                CHECK(db[i] == da[i] && dc[i] == da[i]);
            }
        }
        /* The floors leave rows out (here ~8%: the depth's candidates lie
         * close together in their cluster; two thirds on Fashion-MNIST) --
         * a floor that never excludes anything fails this. */
        CHECK(all_read == offered);
        CHECK(rows_read > 0 && rows_read < offered);
        /* Candidates: the rerank depth's (raised to k), the count returned
         * even past cap; under the selective filter, every match. */
        shoal_candidate few[3];
        CHECK_INT(shoal_index_search_candidates(ext, data, DIM, 10, NULL, few, 3), c->rerank);
        CHECK_INT(shoal_index_search_candidates(ext, data, DIM, 25, NULL, few, 3),
                  c->rerank > 25 ? c->rerank : 25);
        shoal_search_params fp;
        shoal_search_params_init(&fp);
        fp.where = g3;
        CHECK_INT(shoal_index_search_candidates(ext, data, DIM, 10, &fp, few, 3), N / 7 + 1);
        shoal_filter_free(g3);
        shoal_filter_free(not3);

        hnsw_slack_section(seg, size, resident, data);

        /* Read-only, and honest about it. */
        test_ids one;
        test_ids_make(&one, "r", 0, 1);
        CHECK_INT(shoal_index_add(head, 1, one.bytes, one.offsets, data, DIM), SHOAL_ESTATE);
        CHECK_INT(shoal_index_delete(ext, 1, one.bytes, one.offsets), SHOAL_ESTATE);
        uint8_t *again;
        size_t again_size;
        CHECK_INT(shoal_index_save(head, NULL, &again, &again_size), SHOAL_ESTATE);
        CHECK_INT(shoal_index_check(ext), SHOAL_OK);
        CHECK_INT(shoal_index_check(head), SHOAL_OK);
        /* get: the decoded approximation, within half a code step of the
         * row (the steps here are below 0.01). */
        float got[DIM], row[DIM];
        uint32_t id_len = one.offsets[1] - one.offsets[0];
        CHECK_INT(shoal_index_get(head, one.bytes, id_len, got), SHOAL_OK);
        CHECK_INT(shoal_index_get(resident, one.bytes, id_len, row), SHOAL_OK);
        float worst = 0.0f;
        for (int j = 0; j < DIM; j++) worst = fmaxf(worst, fabsf(got[j] - row[j]));
        CHECK(worst < 0.02f);
        test_ids_free(&one);

        /* Phase 2 refuses bad input: a label past the records, a NaN row. */
        uint32_t bad_label = N + 5, lab[10];
        float dist[10], nan_row[DIM];
        for (int j = 0; j < DIM; j++) nan_row[j] = j == 3 ? NAN : 0.5f;
        CHECK_INT(shoal_index_rerank_rows(head, data, DIM, 10, 1, &bad_label, seg, lab, dist),
                  SHOAL_EPARAM);
        uint32_t good = 0;
        CHECK_INT(shoal_index_rerank_rows(head, data, DIM, 10, 1, &good,
                                          (const uint8_t *)nan_row, lab, dist),
                  SHOAL_ECORRUPT);
        shoal_index_free(head);
        shoal_index_free(ext);
        shoal_index_free(resident);

        /* Compressed rows cannot be read row by row. */
        free(data);
        free(seg);
        seg = case_segment(c, 3, &data, &size);
        CHECK_INT(shoal_segment_info(seg, size, &info), SHOAL_OK);
        CHECK(info.compressed > 0);
        CHECK_INT(shoal_index_load(seg, size, &lp, &ext), SHOAL_EUNSUPPORTED);
        CHECK_INT(shoal_index_open_head(seg, (size_t)info.head_bytes, &lp, &head),
                  SHOAL_EUNSUPPORTED);
        free(seg);
        free(data);
    }

    /* Under 1024 records the traversal reads the float32 rows: they cannot
     * stay out. */
    shoal_params p;
    shoal_params_init(&p);
    p.dim = DIM;
    p.kind = SHOAL_KIND_HNSW;
    p.quantizer = SHOAL_QUANTIZER_SQ8;
    p.rerank = 10;
    shoal_index *small;
    CHECK_INT(shoal_index_new(&p, &small), SHOAL_OK);
    float *few = test_clustered(5, 300, DIM, 4, 0.1f);
    test_ids ids;
    test_ids_make(&ids, "s", 0, 300);
    CHECK_INT(shoal_index_add(small, 300, ids.bytes, ids.offsets, few, DIM), 300);
    size_t size;
    uint8_t *seg = save_copy(small, 0, &size);
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    lp.rerank_external = 1;
    shoal_index *x;
    CHECK_INT(shoal_index_load(seg, size, &lp, &x), SHOAL_EUNSUPPORTED);
    CHECK(x == NULL);
    test_ids_free(&ids);
    free(few);
    free(seg);
    shoal_index_free(small);
}

static uint64_t hash_results(uint64_t h, const uint32_t *labels, const float *dist, int n) {
    for (int i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &dist[i], 4);
        uint32_t words[2] = {labels[i], bits};
        for (int w = 0; w < 2; w++)
            for (int b = 0; b < 4; b++) h = (h ^ ((words[w] >> (8 * b)) & 0xff)) * 1099511628211ull;
    }
    return h;
}

/* Per-list tables: the same bits with scalar and SIMD kernels and in every
 * build (a fixed hash); close to the tables' absence (the same recall). */
static void test_pq_tables(void) {
    static const struct {
        rows_case c;
        uint64_t hash; /* of the results with pq_tables = 2 */
    } cases[] = {
        {{"pq4 dsub 2", SHOAL_METRIC_L2, SHOAL_QUANTIZER_PQ, 8, 4, 0, 0}, 0x086939e2e3de6652ull},
        {{"pq8 dsub 4", SHOAL_METRIC_L2, SHOAL_QUANTIZER_PQ, 4, 8, 0, 0}, 0x55a1d97969bbf5b2ull},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        float *data;
        shoal_index *with = make_index(&cases[ci].c, 2, SHOAL_SIMD_AUTO, &data);
        free(data);
        shoal_index *scalar = make_index(&cases[ci].c, 2, SHOAL_SIMD_SCALAR, &data);
        free(data);
        shoal_index *without = make_index(&cases[ci].c, 1, SHOAL_SIMD_AUTO, &data);
        shoal_stats before, after;
        shoal_index_stats(with, &before);
        uint64_t h = 1469598103934665603ull;
        double overlap = 0;
        for (uint32_t qi = 0; qi < QUERIES; qi++) {
            const float *q = data + (size_t)(qi * 89 % N) * DIM;
            uint32_t la[10], lb[10], lc[10];
            float da[10], db[10], dc[10];
            int na = shoal_index_search(with, q, DIM, 10, NULL, la, da);
            int nb = shoal_index_search(scalar, q, DIM, 10, NULL, lb, db);
            int nc = shoal_index_search(without, q, DIM, 10, NULL, lc, dc);
            CHECK(na == 10 && nb == 10 && nc == 10);
            for (int i = 0; i < 10; i++) {
                CHECK_INT(la[i], lb[i]);
                CHECK(da[i] == db[i]);
                CHECK_NEAR(da[i], dc[i], 1e-3);
                for (int j = 0; j < 10; j++) overlap += la[i] == lc[j];
            }
            h = hash_results(h, la, da, na);
        }
        CHECK(overlap >= 0.95 * QUERIES * 10);
        shoal_index_stats(with, &after);
        /* nlist * m * ksub floats, built by the first search */
        size_t tables = (size_t)NLIST * cases[ci].c.pq_m * (1u << cases[ci].c.pq_bits) * 4;
        CHECK(after.codes_bytes >= before.codes_bytes + tables);
        printf("    %s: pq_tables results hash %016llx\n", cases[ci].c.name,
               (unsigned long long)h);
        if (cases[ci].hash) CHECK(h == cases[ci].hash);

        /* Saved and loaded: the setting comes back, and so do the results. */
        size_t size;
        uint8_t *seg = save_copy(with, 0, &size);
        shoal_segment_summary info;
        CHECK_INT(shoal_segment_info(seg, size, &info), SHOAL_OK);
        CHECK_INT(info.params.ivf.pq_tables, 2);
        shoal_index *loaded;
        CHECK_INT(shoal_index_load(seg, size, NULL, &loaded), SHOAL_OK);
        uint64_t h2 = 1469598103934665603ull;
        for (uint32_t qi = 0; qi < QUERIES; qi++) {
            const float *q = data + (size_t)(qi * 89 % N) * DIM;
            uint32_t la[10];
            float da[10];
            int na = shoal_index_search(loaded, q, DIM, 10, NULL, la, da);
            h2 = hash_results(h2, la, da, na);
        }
        CHECK(h2 == h);
        shoal_index_free(loaded);
        free(seg);
        shoal_index_free(with);
        shoal_index_free(scalar);
        shoal_index_free(without);
        free(data);
    }

    /* Parameters: 0..2, pq only. */
    shoal_params p;
    shoal_params_init(&p);
    p.dim = DIM;
    p.kind = SHOAL_KIND_IVF;
    p.quantizer = SHOAL_QUANTIZER_PQ;
    p.ivf.pq_tables = 3;
    shoal_index *x;
    CHECK_INT(shoal_index_new(&p, &x), SHOAL_EPARAM);
    p.quantizer = SHOAL_QUANTIZER_SQ8;
    p.ivf.pq_tables = 2;
    CHECK_INT(shoal_index_new(&p, &x), SHOAL_EPARAM);
}

void suite_rows(void) {
    static const harness_test tests[] = {
        {"external_equals_resident", test_external_equals_resident},
        {"external_without_copies", test_external_without_copies},
        {"hnsw_external", test_hnsw_external},
        {"pq_tables", test_pq_tables},
    };
    harness_run("rows", tests, sizeof tests / sizeof tests[0]);
}
