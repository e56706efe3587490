/*
 * test_collection.c -- collections: writes across buffer and segments,
 * searches against one index holding the same live records, the log, the
 * manifest DAG and opening it again (whole and lazily), compaction, age
 * tiers, hostile manifests and out-of-memory at every allocation.
 */
#include "collection/collection.h"
#include "harness.h"

#define DIM 8

static shoal_collection *make(shoal_kind small, uint32_t flush, shoal_metric metric) {
    shoal_collection_params p;
    shoal_collection_params_init(&p);
    p.small.dim = DIM;
    p.small.metric = metric;
    p.small.kind = small;
    p.small.seed = 3;
    p.flush_records = flush;
    p.merge_factor = 3;
    char msg[200];
    p.errmsg = msg;
    p.errmsg_size = sizeof msg;
    shoal_collection *c;
    if (!CHECK_INT(shoal_collection_new(&p, &c), SHOAL_OK)) {
        printf("    %s\n", msg);
        return NULL;
    }
    return c;
}

/* One write of the random sequence, applied to the collection and to the
 * reference index with the collection's sequence numbers. */
typedef struct model {
    shoal_collection *c;
    shoal_index *ref;
    test_rng rng;
    uint32_t ids; /* ids are "r<0..ids)" */
} model;

static void model_upsert(model *m, uint32_t n) {
    char ids[64 * 16], meta[64 * 24];
    uint32_t off[65], mo[65];
    float v[64 * DIM];
    int64_t times[64];
    uint64_t seqs[64];
    uint32_t at = 0, ma = 0;
    shoal_collection_stats st;
    shoal_collection_stats_get(m->c, &st);
    for (uint32_t i = 0; i < n; i++) {
        off[i] = at;
        at += (uint32_t)sprintf(ids + at, "r%u", (uint32_t)(test_rng_next(&m->rng) % m->ids));
        mo[i] = ma;
        ma += (uint32_t)sprintf(meta + ma, "{\"g\":%u}", (uint32_t)(test_rng_next(&m->rng) % 4));
        test_fill(&m->rng, v + (size_t)i * DIM, DIM);
        times[i] = (int64_t)(test_rng_next(&m->rng) % 1000);
        seqs[i] = st.next_seq + i;
    }
    off[n] = at;
    mo[n] = ma;
    shoal_records r;
    memset(&r, 0, sizeof r);
    r.n = n;
    r.id_bytes = ids;
    r.id_offsets = off;
    r.vectors = v;
    r.dim = DIM;
    r.metadata = meta;
    r.metadata_offsets = mo;
    r.times = times;
    int a = shoal_collection_upsert(m->c, &r);
    if (!CHECK(a > 0)) printf("    %s\n", shoal_collection_errmsg(m->c));
    r.seqs = seqs;
    CHECK_INT(shoal_index_upsert(m->ref, &r), a);
}

static void model_delete(model *m, uint32_t n) {
    char ids[64 * 16];
    uint32_t off[65], at = 0;
    for (uint32_t i = 0; i < n; i++) {
        off[i] = at;
        at += (uint32_t)sprintf(ids + at, "r%u", (uint32_t)(test_rng_next(&m->rng) % m->ids));
    }
    off[n] = at;
    int a = shoal_collection_delete(m->c, n, ids, off);
    CHECK_INT(shoal_index_delete(m->ref, n, ids, off), a);
}

/* Searches both and compares ids, distances and metadata exactly. */
static void same_results(shoal_collection *c, shoal_index *ref, uint64_t seed, const char *where) {
    test_rng r = {seed};
    shoal_filter *f = NULL;
    if (where) CHECK_INT(shoal_filter_compile(where, strlen(where), NULL, &f, NULL, 0), SHOAL_OK);
    shoal_search_params sp;
    shoal_search_params_init(&sp);
    sp.where = f;
    for (int q = 0; q < 20; q++) {
        float query[DIM];
        test_fill(&r, query, DIM);
        shoal_hit hits[15];
        uint32_t labels[15];
        float da[15], db[15];
        int na = shoal_collection_search(c, query, DIM, 15, &sp, NULL, NULL, hits, da);
        int nb = shoal_index_search(ref, query, DIM, 15, &sp, labels, db);
        if (!CHECK_INT(na, nb)) {
            printf("    %s\n", shoal_collection_errmsg(c));
            break;
        }
        for (int i = 0; i < na; i++) {
            const char *ia, *ib;
            int la = shoal_collection_hit_id(c, hits[i], &ia);
            int lb = shoal_index_label_id(ref, labels[i], &ib);
            if (!CHECK(la == lb && la > 0 && !memcmp(ia, ib, (size_t)la))) break;
            CHECK(da[i] == db[i]);
            uint64_t sa, sb;
            int64_t ta, tb;
            shoal_collection_hit_info(c, hits[i], &ta, &sa);
            shoal_index_record_info(ref, labels[i], &tb, &sb);
            CHECK_INT(sa, sb);
            CHECK_INT(ta, tb);
        }
    }
    shoal_filter_free(f);
    CHECK_INT(shoal_collection_size(c), shoal_index_size(ref));
}

static shoal_index *make_ref(shoal_metric metric) {
    shoal_params p;
    shoal_params_init(&p);
    p.dim = DIM;
    p.metric = metric;
    shoal_index *ref;
    CHECK_INT(shoal_index_new(&p, &ref), SHOAL_OK);
    return ref;
}

static void test_equals_one_index(void) {
    for (int metric = 0; metric <= 2; metric++) {
        model m = {make(SHOAL_KIND_FLAT, 40, (shoal_metric)metric), make_ref((shoal_metric)metric),
                   {11u + (uint64_t)metric}, 300};
        for (int step = 0; step < 120; step++) {
            uint64_t r = test_rng_next(&m.rng) % 10;
            if (r < 6) model_upsert(&m, 1 + (uint32_t)(test_rng_next(&m.rng) % 30));
            else if (r < 8) model_delete(&m, 1 + (uint32_t)(test_rng_next(&m.rng) % 10));
            else if (r < 9) CHECK(shoal_collection_flush(m.c) >= 0);
            else CHECK(shoal_collection_compact(m.c, (int)(test_rng_next(&m.rng) & 1), 0) >= 0);
            if (shoal_collection_flush_due(m.c)) CHECK_INT(shoal_collection_flush(m.c), 1);
            if (step % 20 == 19) {
                same_results(m.c, m.ref, (uint64_t)step, NULL);
                same_results(m.c, m.ref, (uint64_t)step + 1, "{\"g\":{\"$in\":[1,2]}}");
            }
        }
        shoal_collection_stats st;
        shoal_collection_stats_get(m.c, &st);
        CHECK(st.segments >= 2);
        CHECK(st.tombstones > 0);
        /* get / find / next agree with the reference. */
        uint32_t seen = 0;
        shoal_hit h = {0, 0};
        while (shoal_collection_next(m.c, &h) == 1) {
            const char *id;
            int len = shoal_collection_hit_id(m.c, h, &id);
            int label = shoal_index_label_of(m.ref, id, (uint32_t)len);
            if (!CHECK(label >= 0)) break;
            float a[DIM], b[DIM];
            CHECK_INT(shoal_collection_hit_vector(m.c, h, a), SHOAL_OK);
            CHECK_INT(shoal_index_get(m.ref, id, (uint32_t)len, b), SHOAL_OK);
            CHECK(!memcmp(a, b, sizeof a));
            shoal_hit f;
            CHECK_INT(shoal_collection_find(m.c, id, (uint32_t)len, &f), SHOAL_OK);
            CHECK(f.part == h.part && f.label == h.label);
            seen++;
            h.label++;
        }
        CHECK_INT(seen, shoal_index_size(m.ref));
        CHECK_INT(shoal_collection_compact(m.c, 1, 0) >= 0, 1);
        shoal_collection_stats_get(m.c, &st);
        CHECK_INT(st.tombstones, 0);
        CHECK(st.segments <= 1);
        same_results(m.c, m.ref, 99, NULL);
        shoal_collection_free(m.c);
        shoal_index_free(m.ref);
    }
}

/* Every block of the committed version, by CID, as a host would store them. */
typedef struct store {
    uint8_t (*cids)[SHOAL_CID_BYTES];
    uint8_t **bytes;
    size_t *sizes;
    uint32_t n, cap;
} store;

static void store_put(store *s, const uint8_t *cid, const uint8_t *bytes, size_t size) {
    for (uint32_t i = 0; i < s->n; i++)
        if (!memcmp(s->cids[i], cid, SHOAL_CID_BYTES)) return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->cids = realloc(s->cids, s->cap * sizeof *s->cids);
        s->bytes = realloc(s->bytes, s->cap * sizeof *s->bytes);
        s->sizes = realloc(s->sizes, s->cap * sizeof *s->sizes);
    }
    memcpy(s->cids[s->n], cid, SHOAL_CID_BYTES);
    s->bytes[s->n] = malloc(size ? size : 1);
    memcpy(s->bytes[s->n], bytes, size);
    s->sizes[s->n++] = size;
}

static const uint8_t *store_get(const store *s, const uint8_t *cid, size_t *size) {
    for (uint32_t i = 0; i < s->n; i++)
        if (!memcmp(s->cids[i], cid, SHOAL_CID_BYTES)) {
            *size = s->sizes[i];
            return s->bytes[i];
        }
    return NULL;
}

static void store_free(store *s) {
    for (uint32_t i = 0; i < s->n; i++) free(s->bytes[i]);
    free(s->cids);
    free(s->bytes);
    free(s->sizes);
    memset(s, 0, sizeof *s);
}

/* Commits and stores the new blocks; returns the bytes that were new. */
static size_t commit_into(shoal_collection *c, store *s, uint8_t root[SHOAL_CID_BYTES]) {
    int n = shoal_collection_commit(c, 0, root);
    if (!CHECK(n >= 1)) {
        printf("    %s\n", shoal_collection_errmsg(c));
        return 0;
    }
    size_t fresh = 0;
    for (int i = 0; i < n; i++) {
        shoal_block_ref b;
        CHECK_INT(shoal_collection_block(c, (uint32_t)i, &b), SHOAL_OK);
        CHECK(b.size <= SHOAL_BLOCK_MAX);
        size_t have;
        if (store_get(s, b.cid, &have)) continue;
        if (!CHECK(b.bytes != NULL)) continue;
        CHECK(shoal_cid_verify(b.cid, b.bytes, b.size));
        store_put(s, b.cid, b.bytes, b.size);
        fresh += b.size;
    }
    shoal_block_ref end;
    CHECK_INT(shoal_collection_block(c, (uint32_t)n, &end), SHOAL_ENOTFOUND);
    return fresh;
}

/* Opens root from the store and feeds it until it wants nothing (for want). */
static shoal_collection *open_from(const store *s, const uint8_t root[SHOAL_CID_BYTES], int want) {
    size_t size;
    const uint8_t *m = store_get(s, root, &size);
    if (!CHECK(m != NULL)) return NULL;
    shoal_collection *c;
    char msg[256] = "";
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    lp.errmsg = msg;
    lp.errmsg_size = sizeof msg;
    if (!CHECK_INT(shoal_collection_open(m, size, &lp, &c), SHOAL_OK)) {
        printf("    %s\n", msg);
        return NULL;
    }
    uint8_t cids[256][SHOAL_CID_BYTES];
    for (int round = 0; round < 10; round++) {
        int n = shoal_collection_wants(c, want, NULL, 0, 0, NULL, cids, 256);
        if (!CHECK(n >= 0 && n <= 256)) break;
        if (n == 0) return c;
        for (int i = 0; i < n; i++) {
            const uint8_t *b = store_get(s, cids[i], &size);
            if (!CHECK(b != NULL)) continue;
            int rc = shoal_collection_give(c, b, size);
            if (!CHECK_INT(rc, 1)) printf("    %s\n", shoal_collection_errmsg(c));
        }
    }
    CHECK(!"still wanting blocks after 10 rounds");
    return c;
}

static void test_manifest_round_trip(void) {
    model m = {make(SHOAL_KIND_HNSW, 300, SHOAL_METRIC_L2), NULL, {5}, 2000};
    shoal_params rp;
    shoal_params_init(&rp);
    rp.dim = DIM;
    CHECK_INT(shoal_index_new(&rp, &m.ref), SHOAL_OK);
    store s = {0};
    uint8_t root[SHOAL_CID_BYTES], first[SHOAL_CID_BYTES];
    /* An empty collection commits too. */
    CHECK(commit_into(m.c, &s, first) > 0);
    for (int i = 0; i < 40; i++) model_upsert(&m, 30);
    model_delete(&m, 20);
    CHECK_INT(shoal_collection_commit(m.c, 0, root), SHOAL_ESTATE); /* buffer not empty */
    CHECK_INT(shoal_collection_flush(m.c), 1);
    model_upsert(&m, 30); /* replaces some records of the segment */
    model_delete(&m, 20);
    CHECK_INT(shoal_collection_flush(m.c), 1);
    commit_into(m.c, &s, root);
    /* The manifest: canonical DAG-CBOR whose links are the version's blocks. */
    size_t msize;
    const uint8_t *mb = store_get(&s, root, &msize);
    uint8_t links[64][SHOAL_CID_BYTES];
    int nl = shoal_dag_links(mb, msize, links, 64);
    CHECK(nl >= 3); /* prev, segment links, tombstones */
    CHECK(!memcmp(links[0], first, SHOAL_CID_BYTES) || nl > 0);
    char text[SHOAL_CID_SIZE];
    CHECK_INT(shoal_cid_format(root, text), 59);
    CHECK(!strncmp(text, "bafyrei", 7));
    uint8_t parsed[SHOAL_CID_BYTES];
    CHECK_INT(shoal_cid_parse(text, 59, parsed), SHOAL_OK);
    CHECK(!memcmp(parsed, root, SHOAL_CID_BYTES));

    shoal_collection *back = open_from(&s, root, SHOAL_WANT_ALL);
    if (back) {
        shoal_collection_stats a, b;
        shoal_collection_stats_get(m.c, &a);
        shoal_collection_stats_get(back, &b);
        CHECK_INT(b.size, a.size);
        CHECK_INT(b.segments, a.segments);
        CHECK_INT(b.tombstones, a.tombstones);
        CHECK_INT(b.next_seq, a.next_seq);
        CHECK_INT(b.lazy, 0);
        /* The same searches (HNSW on both sides: same graphs, same results). */
        test_rng r = {42};
        for (int q = 0; q < 10; q++) {
            float query[DIM];
            test_fill(&r, query, DIM);
            shoal_hit ha[10], hb[10];
            float da[10], db[10];
            int na = shoal_collection_search(m.c, query, DIM, 10, NULL, NULL, NULL, ha, da);
            int nb = shoal_collection_search(back, query, DIM, 10, NULL, NULL, NULL, hb, db);
            CHECK_INT(na, nb);
            for (int i = 0; i < na && i < nb; i++) {
                CHECK(ha[i].part == hb[i].part && ha[i].label == hb[i].label);
                CHECK(da[i] == db[i]);
            }
        }
        /* Committing the opened version again gives the same root, with
         * prev pointing at the version itself. */
        uint8_t again[SHOAL_CID_BYTES];
        CHECK(shoal_collection_commit(back, 1, again) > 0);
        int n = shoal_collection_commit(back, 0, again);
        CHECK(n > 0);
        /* Writes continue where the version left off, and are logged in
         * sequence order. */
        model m2 = {back, m.ref, {77}, 2000};
        model_upsert(&m2, 20);
        model_delete(&m2, 5);
        CHECK_INT(shoal_collection_flush(back), 1);
        same_results(back, m.ref, 5, NULL);
        shoal_collection_free(back);
    }
    store_free(&s);
    shoal_collection_free(m.c);
    shoal_index_free(m.ref);
}

/* An upsert record whose first entry's metadata leaves 2 bytes where the
 * second entry's 4-byte id length would be: corrupt, and not read past
 * (found by tests/fuzz/fuzz_log.c; ASan catches the read in test-asan,
 * the record being the last bytes of an exact-size buffer). */
/* Whether the manifest block (root) holds the text key. */
static int manifest_has(const store *s, const uint8_t root[SHOAL_CID_BYTES], const char *key) {
    size_t size, n = strlen(key);
    const uint8_t *m = store_get(s, root, &size);
    for (size_t i = 0; m && i + n <= size; i++)
        if (!memcmp(m + i, key, n)) return 1;
    return 0;
}

/*
 * A parameter added after manifests were first written (pqTables) is
 * written only when it is not 0: a manifest from before reads as it did and
 * keeps its bytes.  Set or not, a reopened collection commits it the same
 * way (the value is kept, not reset to the default).
 */
static void test_later_params(void) {
    for (uint32_t tables = 0; tables <= 2; tables += 2) {
        shoal_collection_params p;
        shoal_collection_params_init(&p);
        p.small.dim = DIM;
        p.large.ivf.pq_tables = tables;
        shoal_collection *c;
        if (!CHECK_INT(shoal_collection_new(&p, &c), SHOAL_OK)) continue;
        store s = {0};
        uint8_t root[SHOAL_CID_BYTES], again[SHOAL_CID_BYTES];
        commit_into(c, &s, root);
        CHECK_INT(manifest_has(&s, root, "pqTables"), tables != 0);
        shoal_collection *d = open_from(&s, root, 0);
        if (d) {
            commit_into(d, &s, again);
            CHECK_INT(manifest_has(&s, again, "pqTables"), tables != 0);
            shoal_collection_free(d);
        }
        shoal_collection_free(c);
        store_free(&s);
    }
}

static void test_log_entry_past_end(void) {
    shoal_collection *c = make(SHOAL_KIND_FLAT, 1000, SHOAL_METRIC_L2);
    /* head, dim, entry 0 (id "a", time, 48 bytes of metadata, vector), 2 bytes */
    uint8_t body[16 + 4 + 21 + 48 + 4 * DIM + 2];
    size_t len = sizeof body;
    memset(body, 0, len);
    body[0] = 1;                          /* upsert */
    body[1] = 1;                          /* version */
    body[4] = 2;                          /* n = 2 entries */
    shoal_collection_stats st;
    shoal_collection_stats_get(c, &st);
    for (int i = 0; i < 8; i++) body[8 + i] = (uint8_t)(st.next_seq >> (8 * i));
    body[16] = DIM;                       /* dim */
    uint8_t *e = body + 20;
    e[0] = 1;                             /* id length 1, id "a" */
    e[4] = 'a';
    e[13] = 48;                           /* metadata length: passes the count check */
    uint8_t *rec = malloc(8 + len);
    for (int i = 0; i < 4; i++) rec[i] = (uint8_t)(len >> (8 * i));
    uint32_t crc = shoal_crc32c(0, body, len);
    for (int i = 0; i < 4; i++) rec[4 + i] = (uint8_t)(crc >> (8 * i));
    memcpy(rec + 8, body, len);
    CHECK_INT(shoal_collection_apply(c, rec, 8 + len, NULL), SHOAL_ECORRUPT);
    CHECK(strstr(shoal_collection_errmsg(c), "entry 1") != NULL);
    CHECK_INT(shoal_collection_size(c), 0);
    free(rec);
    shoal_collection_free(c);
}

static void test_log_replay(void) {
    shoal_collection *c = make(SHOAL_KIND_HNSW, 1000, SHOAL_METRIC_COSINE);
    shoal_collection *d = make(SHOAL_KIND_HNSW, 1000, SHOAL_METRIC_COSINE);
    uint8_t *log = NULL;
    size_t size = 0;
    test_rng r = {9};
    uint64_t starts[12];
    for (int b = 0; b < 12; b++) {
        starts[b] = size;
        uint8_t *rec;
        size_t n;
        if (b % 4 == 3) {
            char ids[] = "r1r2r3";
            uint32_t off[] = {0, 2, 4, 6};
            CHECK_INT(shoal_collection_log_delete(c, 3, ids, off, &rec, &n), SHOAL_OK);
        } else {
            test_ids ids;
            test_ids_make(&ids, "r", (uint32_t)b * 5, 10);
            float v[10 * DIM];
            test_fill(&r, v, 10 * DIM);
            shoal_records rs;
            memset(&rs, 0, sizeof rs);
            rs.n = 10;
            rs.id_bytes = ids.bytes;
            rs.id_offsets = ids.offsets;
            rs.vectors = v;
            rs.dim = DIM;
            CHECK_INT(shoal_collection_log_upsert(c, &rs, &rec, &n), SHOAL_OK);
            /* Bad input is refused before anything is logged. */
            v[3] = NAN;
            uint8_t *bad;
            size_t bn;
            CHECK_INT(shoal_collection_log_upsert(c, &rs, &bad, &bn), SHOAL_EVECTOR);
            CHECK(bad == NULL);
            rs.dim = DIM + 1;
            CHECK_INT(shoal_collection_log_upsert(c, &rs, &bad, &bn), SHOAL_EDIM);
            test_ids_free(&ids);
        }
        shoal_apply_result res;
        if (!CHECK_INT(shoal_collection_apply(c, rec, n, &res), SHOAL_OK))
            printf("    %s\n", shoal_collection_errmsg(c));
        CHECK_INT(res.records, 1);
        log = realloc(log, size + n);
        memcpy(log + size, rec, n);
        size += n;
        shoal_collection_free_bytes(c, rec);
    }
    /* Replay into a fresh collection: the same state; replay again: nothing. */
    shoal_apply_result res;
    CHECK_INT(shoal_collection_apply(d, log, size, &res), SHOAL_OK);
    CHECK_INT(res.records, 12);
    CHECK_INT(res.torn, 0);
    CHECK_INT(res.valid_size, size);
    CHECK_INT(shoal_collection_size(d), shoal_collection_size(c));
    CHECK_INT(shoal_collection_apply(d, log, size, &res), SHOAL_OK);
    CHECK_INT(res.records, 0);
    CHECK_INT(res.skipped, 12);
    /* A torn last record, cut anywhere: ignored, the rest applied. */
    for (size_t cut = starts[11] + 1; cut < size; cut += 7) {
        shoal_collection *e = make(SHOAL_KIND_HNSW, 1000, SHOAL_METRIC_COSINE);
        CHECK_INT(shoal_collection_apply(e, log, cut, &res), SHOAL_OK);
        CHECK_INT(res.torn, 1);
        CHECK_INT(res.records, 11);
        CHECK_INT(res.valid_size, starts[11]);
        shoal_collection_free(e);
    }
    /* Zeros after the last record (a preallocated file): torn, not corrupt. */
    uint8_t *padded = calloc(size + 100, 1);
    memcpy(padded, log, size);
    shoal_collection *e = make(SHOAL_KIND_HNSW, 1000, SHOAL_METRIC_COSINE);
    CHECK_INT(shoal_collection_apply(e, padded, size + 100, &res), SHOAL_OK);
    CHECK_INT(res.records, 12);
    CHECK_INT(res.torn, 1);
    shoal_collection_free(e);
    free(padded);
    /* A damaged record in the middle: an error naming its offset; the
     * records before it are applied. */
    log[starts[5] + 30] ^= 1;
    e = make(SHOAL_KIND_HNSW, 1000, SHOAL_METRIC_COSINE);
    CHECK_INT(shoal_collection_apply(e, log, size, &res), SHOAL_ECHECKSUM);
    char want[64];
    snprintf(want, sizeof want, "offset %llu", (unsigned long long)starts[5]);
    CHECK(strstr(shoal_collection_errmsg(e), want) != NULL);
    CHECK_INT(res.records, 5);
    CHECK_INT(res.valid_size, starts[5]);
    shoal_collection_free(e);
    free(log);
    shoal_collection_free(c);
    shoal_collection_free(d);
}

/* A collection with a large (IVF-PQ) segment opened lazily: the search
 * fetches the lists it probes and answers as the whole collection does. */
static void test_lazy_collection(void) {
    shoal_collection_params p;
    shoal_collection_params_init(&p);
    p.small.dim = DIM;
    p.small.seed = 4;
    p.large.ivf.nlist = 32;
    p.large.ivf.nprobe = 4;
    p.large.ivf.pq_m = 4;
    p.large_from = 10000;
    p.flush_records = 20000;
    shoal_collection *c;
    CHECK_INT(shoal_collection_new(&p, &c), SHOAL_OK);
    float *data = test_clustered(8, 12000, DIM, 20, 0.05f);
    test_ids ids;
    test_ids_make(&ids, "v", 0, 12000);
    shoal_records r;
    memset(&r, 0, sizeof r);
    r.n = 12000;
    r.id_bytes = ids.bytes;
    r.id_offsets = ids.offsets;
    r.vectors = data;
    r.dim = DIM;
    CHECK_INT(shoal_collection_upsert(c, &r), 12000);
    CHECK_INT(shoal_collection_flush(c), 1);
    r.n = 500; /* a small segment after it, replacing some */
    CHECK_INT(shoal_collection_upsert(c, &r), 500);
    CHECK_INT(shoal_collection_flush(c), 1);
    store s = {0};
    uint8_t root[SHOAL_CID_BYTES];
    commit_into(c, &s, root);
    CHECK(c->segs[0].kind == SHOAL_KIND_IVF && c->segs[0].tier == SHOAL__TIER_LARGE);
    CHECK(c->segs[0].nblocks > 30);
    shoal_collection *whole = open_from(&s, root, SHOAL_WANT_ALL);
    shoal_collection *lazy = open_from(&s, root, SHOAL_WANT_LAZY);
    if (whole && lazy) {
        shoal_collection_stats st;
        shoal_collection_stats_get(lazy, &st);
        CHECK_INT(st.lazy, 1);
        CHECK_INT(st.size, 12000);
        shoal_hit hit;
        CHECK_INT(shoal_collection_find(lazy, "v1", 2, &hit), SHOAL_ESTATE);
        uint8_t cids[64][SHOAL_CID_BYTES];
        int fetched = 0;
        for (int q = 0; q < 10; q++) {
            const float *query = data + (size_t)(q * 997) * DIM;
            shoal_hit ha[10], hb[10];
            float da[10], db[10];
            if (q == 0)
                CHECK_INT(shoal_collection_search(lazy, query, DIM, 10, NULL, NULL, NULL, ha, da),
                          SHOAL_ESTATE);
            int n = shoal_collection_wants(lazy, SHOAL_WANT_LAZY, query, DIM, 10, NULL, cids, 64);
            CHECK(n >= 0 && n <= 64);
            for (int i = 0; i < n; i++) {
                size_t size;
                const uint8_t *b = store_get(&s, cids[i], &size);
                CHECK_INT(shoal_collection_give(lazy, b, size), 1);
            }
            fetched += n;
            CHECK_INT(shoal_collection_wants(lazy, SHOAL_WANT_LAZY, query, DIM, 10, NULL, cids, 64), 0);
            int na = shoal_collection_search(lazy, query, DIM, 10, NULL, NULL, NULL, ha, da);
            int nb = shoal_collection_search(whole, query, DIM, 10, NULL, NULL, NULL, hb, db);
            CHECK_INT(na, nb);
            for (int i = 0; i < na && i < nb; i++) {
                const char *ia, *ib;
                int la = shoal_collection_hit_id(lazy, ha[i], &ia);
                int lb = shoal_collection_hit_id(whole, hb[i], &ib);
                CHECK(la == lb && la > 0 && !memcmp(ia, ib, (size_t)la));
                CHECK(da[i] == db[i]);
            }
        }
        CHECK(fetched > 4 && fetched < (int)lazy->segs[0].nblocks);
        /* Writing needs the whole segment: wants(ALL) then succeeds. */
        CHECK_INT(shoal_collection_delete(lazy, 1, "v7", (uint32_t[]){0, 2}), SHOAL_ESTATE);
        shoal_collection_free(lazy);
        lazy = open_from(&s, root, SHOAL_WANT_LAZY);
        uint8_t many[512][SHOAL_CID_BYTES];
        int n = shoal_collection_wants(lazy, SHOAL_WANT_ALL, NULL, 0, 0, NULL, many, 512);
        for (int i = 0; i < n && i < 512; i++) {
            size_t size;
            const uint8_t *b = store_get(&s, many[i], &size);
            CHECK_INT(shoal_collection_give(lazy, b, size), 1);
        }
        CHECK_INT(shoal_collection_wants(lazy, SHOAL_WANT_ALL, NULL, 0, 0, NULL, many, 512), 0);
        CHECK_INT(shoal_collection_delete(lazy, 1, "v7", (uint32_t[]){0, 2}), 1);
    }
    shoal_collection_free(lazy);
    shoal_collection_free(whole);
    store_free(&s);
    test_ids_free(&ids);
    free(data);
    shoal_collection_free(c);
}

static void test_part_nodes(void) {
    /* A segment of 3 blocks and a fanout of 2: its node links part nodes. */
    shoal_collection *c = make(SHOAL_KIND_FLAT, 100000, SHOAL_METRIC_L2);
    shoal_index *ref = make_ref(SHOAL_METRIC_L2);
    c->node_fanout = 2;
    uint32_t n = 80000;
    float *data = test_clustered(2, n, DIM, 10, 0.1f);
    test_ids ids;
    test_ids_make(&ids, "r", 0, n);
    shoal_records r;
    memset(&r, 0, sizeof r);
    r.n = n;
    r.id_bytes = ids.bytes;
    r.id_offsets = ids.offsets;
    r.vectors = data;
    r.dim = DIM;
    CHECK_INT(shoal_collection_upsert(c, &r), (int)n);
    CHECK_INT(shoal_index_upsert(ref, &r), (int)n);
    CHECK_INT(shoal_collection_flush(c), 1);
    CHECK(c->segs[0].nblocks >= 3);
    CHECK_INT(c->segs[0].nparts, (c->segs[0].nblocks + 1) / 2);
    store s = {0};
    uint8_t root[SHOAL_CID_BYTES];
    commit_into(c, &s, root);
    shoal_collection *back = open_from(&s, root, SHOAL_WANT_ALL);
    if (back) {
        back->node_fanout = 2;
        same_results(back, ref, 3, NULL);
        shoal_collection_free(back);
    }
    store_free(&s);
    test_ids_free(&ids);
    free(data);
    shoal_collection_free(c);
    shoal_index_free(ref);
}

static void test_age_tiers(void) {
    shoal_collection_params p;
    shoal_collection_params_init(&p);
    p.small.dim = DIM;
    p.small.kind = SHOAL_KIND_FLAT;
    p.large.kind = SHOAL_KIND_FLAT; /* (few records: the tiers, not IVF, are tested) */
    p.large.quantizer = SHOAL_QUANTIZER_F32;
    p.recent_ms = 100;
    p.flush_records = 50;
    shoal_collection *c;
    CHECK_INT(shoal_collection_new(&p, &c), SHOAL_OK);
    shoal_index *ref = make_ref(SHOAL_METRIC_L2);
    model m = {c, ref, {8}, 400};
    for (int i = 0; i < 10; i++) {
        model_upsert(&m, 30); /* times 0..999 */
        if (shoal_collection_flush_due(c)) shoal_collection_flush(c);
    }
    shoal_collection_flush(c);
    CHECK(shoal_collection_compact(c, 1, 1000) >= 1); /* cutoff 900 */
    uint32_t small = 0, large = 0;
    for (uint32_t i = 0; i < c->nsegs; i++) {
        const shoal__segment *s = &c->segs[i];
        for (uint32_t l = 0; l < s->label_bound; l++) {
            if (!shoal__is_alive(s->index, l)) continue;
            int64_t t = s->index->times[l];
            if (s->tier == SHOAL__TIER_LARGE) {
                CHECK(t < 900);
                large++;
            } else {
                CHECK(t >= 900);
                small++;
            }
        }
    }
    CHECK(small > 0 && large > small);
    same_results(c, ref, 4, NULL);
    /* Later, everything is old: a tiered compaction moves the small segment. */
    CHECK(shoal_collection_compact(c, 0, 5000) >= 1);
    for (uint32_t i = 0; i < c->nsegs; i++) CHECK_INT(c->segs[i].tier, SHOAL__TIER_LARGE);
    same_results(c, ref, 5, NULL);
    shoal_collection_free(c);
    shoal_index_free(ref);
}

static void test_hostile_manifests(void) {
    model m = {make(SHOAL_KIND_HNSW, 100, SHOAL_METRIC_L2), make_ref(SHOAL_METRIC_L2), {12}, 300};
    for (int i = 0; i < 8; i++) model_upsert(&m, 30);
    shoal_collection_flush(m.c);
    model_delete(&m, 10);
    store s = {0};
    uint8_t root[SHOAL_CID_BYTES];
    commit_into(m.c, &s, root);
    size_t size;
    const uint8_t *mb = store_get(&s, root, &size);
    uint8_t *bad = malloc(size);
    int opened = 0;
    for (size_t at = 0; at < size; at++) {
        for (int flip = 1; flip < 256; flip <<= 3) {
            memcpy(bad, mb, size);
            bad[at] ^= (uint8_t)flip;
            shoal_collection *c;
            int rc = shoal_collection_open(bad, size, NULL, &c);
            if (rc) {
                CHECK(rc == SHOAL_ECORRUPT || rc == SHOAL_EVERSION);
                CHECK(c == NULL);
                continue;
            }
            /* Still a valid manifest (a changed count or word): feeding it
             * the real blocks must fail cleanly or work. */
            opened++;
            uint8_t cids[64][SHOAL_CID_BYTES];
            int n = shoal_collection_wants(c, SHOAL_WANT_ALL, NULL, 0, 0, NULL, cids, 64);
            for (int i = 0; i < n && i < 64; i++) {
                size_t bs;
                const uint8_t *b = store_get(&s, cids[i], &bs);
                if (b) CHECK(shoal_collection_give(c, b, bs) <= 1);
            }
            float q[DIM] = {0};
            shoal_hit h[5];
            float d[5];
            shoal_collection_search(c, q, DIM, 5, NULL, NULL, NULL, h, d);
            shoal_collection_free(c);
        }
    }
    CHECK(opened < (int)size); /* most damage is caught by the schema */
    /* Truncations. */
    for (size_t cut = 0; cut < size; cut++) {
        shoal_collection *c;
        CHECK(shoal_collection_open(mb, cut, NULL, &c) < 0);
    }
    /* A block that does not match what it claims: not taken. */
    shoal_collection *c = open_from(&s, root, SHOAL_WANT_LAZY);
    uint8_t junk[100] = {1, 2, 3};
    CHECK_INT(shoal_collection_give(c, junk, sizeof junk), 0);
    shoal_collection_free(c);
    free(bad);
    store_free(&s);
    shoal_collection_free(m.c);
    shoal_index_free(m.ref);
}

static void test_out_of_memory(void) {
    /* Every allocation of an upsert, a delete, a flush and a commit fails in
     * turn: the call reports SHOAL_ENOMEM and the collection is as before. */
    for (int op = 0; op < 4; op++) {
        test_counting counting = TEST_COUNTING_INIT;
        shoal_allocator a = test_counting_allocator(&counting);
        shoal_collection_params p;
        shoal_collection_params_init(&p);
        p.small.dim = DIM;
        p.small.allocator = &a;
        p.flush_records = 1000;
        shoal_collection *c;
        CHECK_INT(shoal_collection_new(&p, &c), SHOAL_OK);
        shoal_index *ref = make_ref(SHOAL_METRIC_L2);
        model m = {c, ref, {31}, 100};
        for (int i = 0; i < 4; i++) model_upsert(&m, 20);
        shoal_collection_flush(c);
        model_upsert(&m, 20);
        if (op == 2) model_upsert(&m, 10);
        if (op == 3) shoal_collection_flush(c);
        for (long fail = 0; fail < 5000; fail++) {
            uint32_t before = shoal_collection_size(c);
            counting.fail_at = counting.calls + fail;
            int rc;
            if (op == 0) {
                test_ids ids;
                test_ids_make(&ids, "r", 3, 5);
                float v[5 * DIM] = {0.5f};
                shoal_records r;
                memset(&r, 0, sizeof r);
                r.n = 5;
                r.id_bytes = ids.bytes;
                r.id_offsets = ids.offsets;
                r.vectors = v;
                r.dim = DIM;
                rc = shoal_collection_upsert(c, &r);
                test_ids_free(&ids);
            } else if (op == 1) {
                rc = shoal_collection_delete(c, 2, "r1r2", (uint32_t[]){0, 2, 4});
            } else if (op == 2) {
                rc = shoal_collection_flush(c);
            } else {
                uint8_t root[SHOAL_CID_BYTES];
                rc = shoal_collection_commit(c, 0, root);
            }
            counting.fail_at = -1;
            if (rc >= 0) break;
            CHECK_INT(rc, SHOAL_ENOMEM);
            CHECK_INT(shoal_collection_size(c), before);
            same_results(c, ref, (uint64_t)fail, NULL);
        }
        shoal_collection_free(c);
        CHECK_INT(counting.live_blocks, 0);
        shoal_index_free(ref);
    }
}

static void test_car(void) {
    model m = {make(SHOAL_KIND_HNSW, 100, SHOAL_METRIC_L2), make_ref(SHOAL_METRIC_L2), {21}, 300};
    for (int i = 0; i < 6; i++) model_upsert(&m, 30);
    shoal_collection_flush(m.c);
    store s = {0};
    uint8_t root[SHOAL_CID_BYTES];
    commit_into(m.c, &s, root);
    /* header + every block, framed */
    size_t cap = 1 << 20, len = 0;
    uint8_t *car = malloc(cap);
    int h = shoal_car_header(root, NULL, 0);
    CHECK(h > 40 && h < 80);
    CHECK_INT(shoal_car_header(root, car, cap), h);
    len = (size_t)h;
    for (uint32_t i = 0; i < s.n; i++) {
        uint8_t frame[48];
        int f = shoal_car_frame(s.cids[i], s.sizes[i], frame);
        memcpy(car + len, frame, (size_t)f);
        memcpy(car + len + f, s.bytes[i], s.sizes[i]);
        len += (size_t)f + s.sizes[i];
    }
    uint8_t got[SHOAL_CID_BYTES];
    size_t at;
    CHECK_INT(shoal_car_read_header(car, len, got, &at), SHOAL_OK);
    CHECK(!memcmp(got, root, SHOAL_CID_BYTES));
    CHECK_INT(at, (size_t)h);
    uint32_t blocks = 0;
    const uint8_t *data;
    size_t dsize;
    int rc;
    while ((rc = shoal_car_next(car, len, &at, got, &data, &dsize)) == 1) {
        CHECK(!memcmp(got, s.cids[blocks], SHOAL_CID_BYTES));
        CHECK_INT(dsize, s.sizes[blocks]);
        blocks++;
    }
    CHECK_INT(rc, 0);
    CHECK_INT(blocks, s.n);
    /* Tampered data, truncation, a bad header. */
    car[len - 3] ^= 1;
    at = (size_t)h;
    while ((rc = shoal_car_next(car, len, &at, got, &data, &dsize)) == 1) {}
    CHECK_INT(rc, SHOAL_ECHECKSUM);
    at = (size_t)h;
    while ((rc = shoal_car_next(car, len - 10, &at, got, &data, &dsize)) == 1) {}
    CHECK_INT(rc, SHOAL_ETRUNCATED);
    car[3] ^= 0x40;
    CHECK(shoal_car_read_header(car, len, got, &at) < 0);
    for (size_t cut = 0; cut < (size_t)h; cut++) CHECK(shoal_car_read_header(car, cut, got, &at) < 0);
    free(car);
    store_free(&s);
    shoal_collection_free(m.c);
    shoal_index_free(m.ref);
}

static void test_snapshot(void) {
    model m = {make(SHOAL_KIND_HNSW, 100, SHOAL_METRIC_L2), make_ref(SHOAL_METRIC_L2), {41}, 300};
    for (int i = 0; i < 10; i++) model_upsert(&m, 30);
    shoal_collection_flush(m.c);
    model_delete(&m, 20);
    /* The reference at snapshot time: a copy of ref's records. */
    shoal_params p;
    shoal_params_init(&p);
    p.dim = DIM;
    shoal_index *then;
    const shoal_index *src[1] = {m.ref};
    CHECK_INT(shoal_index_merge(src, 1, &p, &then), SHOAL_OK);
    shoal_collection *snap;
    CHECK_INT(shoal_collection_snapshot(m.c, &snap), SHOAL_OK);
    CHECK_INT(shoal_collection_size(snap), shoal_index_size(then));
    /* The collection moves on: replacements, deletes, flushes, a full
     * compaction that frees the segments the snapshot shares. */
    for (int i = 0; i < 6; i++) model_upsert(&m, 30);
    model_delete(&m, 30);
    shoal_collection_flush(m.c);
    CHECK(shoal_collection_compact(m.c, 1, 0) >= 1);
    same_results(m.c, m.ref, 1, NULL);
    shoal_collection_free(m.c);
    /* The snapshot still answers as the collection did. */
    shoal_hit hits[10];
    float da[10], db[10];
    uint32_t labels[10];
    test_rng r = {5};
    for (int q = 0; q < 10; q++) {
        float query[DIM];
        test_fill(&r, query, DIM);
        shoal_search_params sp;
        shoal_search_params_init(&sp);
        sp.ef = 300; /* high ef: the HNSW answers are exact on 300 records */
        int na = shoal_collection_search(snap, query, DIM, 10, &sp, NULL, NULL, hits, da);
        int nb = shoal_index_search(then, query, DIM, 10, NULL, labels, db);
        CHECK_INT(na, nb);
        for (int i = 0; i < na && i < nb; i++) {
            const char *ia, *ib;
            int la = shoal_collection_hit_id(snap, hits[i], &ia);
            int lb = shoal_index_label_id(then, labels[i], &ib);
            CHECK(la == lb && !memcmp(ia, ib, (size_t)la));
            CHECK(da[i] == db[i]);
        }
    }
    /* Read-only. */
    CHECK_INT(shoal_collection_delete(snap, 1, "r1", (uint32_t[]){0, 2}), SHOAL_ESTATE);
    CHECK_INT(shoal_collection_flush(snap), SHOAL_ESTATE);
    uint8_t root[SHOAL_CID_BYTES];
    CHECK_INT(shoal_collection_commit(snap, 0, root), SHOAL_ESTATE);
    shoal_collection_free(snap);
    shoal_index_free(then);
    shoal_index_free(m.ref);
}

void suite_collection(void) {
    static const harness_test tests[] = {
        {"equals_one_index", test_equals_one_index},
        {"manifest_round_trip", test_manifest_round_trip},
        {"later_params", test_later_params},
        {"log_replay", test_log_replay},
        {"log_entry_past_end", test_log_entry_past_end},
        {"lazy_collection", test_lazy_collection},
        {"part_nodes", test_part_nodes},
        {"age_tiers", test_age_tiers},
        {"hostile_manifests", test_hostile_manifests},
        {"out_of_memory", test_out_of_memory},
        {"car", test_car},
        {"snapshot", test_snapshot},
    };
    harness_run("collection", tests, sizeof tests / sizeof tests[0]);
}
