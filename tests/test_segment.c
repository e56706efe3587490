/*
 * test_segment.c -- the segment codec (src/segment.c, docs/FORMAT.md):
 * checksum and CID vectors, round trips of every kind and quantizer (same
 * results, same bytes when saved again, identical behaviour after more
 * mutations), views, info and blocks, hostile input (every byte flipped,
 * every truncation, version and feature bits), out-of-memory at every
 * allocation of load and save, and the golden segments in tests/golden/.
 * Runs natively, under sanitizers and under WASI (the golden files are
 * read through the preopened current directory).
 */
#include <stdio.h>

#include "golden_cases.h"

/* ----------------------------------------------------------- helpers */

typedef struct buf {
    uint8_t *data;
    size_t size;
} buf;

static buf save(shoal_index *index, int level) {
    shoal_save_params sp;
    shoal_save_params_init(&sp);
    sp.zstd_level = level;
    uint8_t *seg = NULL;
    size_t size = 0;
    int rc = shoal_index_save(index, &sp, &seg, &size);
    CHECK_INT(rc, 0);
    buf b = {NULL, 0};
    if (rc) return b;
    /* A 16-byte aligned copy, so views can borrow. */
    b.data = malloc(size + 16);
    memcpy(b.data, seg, size);
    b.size = size;
    shoal_index_free_bytes(index, seg);
    return b;
}

static shoal_index *load(const buf *b, int view) {
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    char msg[256] = "";
    lp.errmsg = msg;
    lp.errmsg_size = sizeof msg;
    shoal_index *index = NULL;
    int rc = view ? shoal_index_view(b->data, b->size, &lp, &index)
                  : shoal_index_load(b->data, b->size, &lp, &index);
    if (!CHECK_INT(rc, 0)) fprintf(stderr, "    load: %s\n", msg);
    return index;
}

static int same_bytes(const buf *a, const buf *b) {
    return a->size == b->size && memcmp(a->data, b->data, a->size) == 0;
}

/* Every query gives the same labels and distances on both indexes. */
static void check_same_results(shoal_index *a, shoal_index *b, uint32_t dim, uint64_t seed) {
    test_rng rng = {seed};
    float *q = malloc(dim * sizeof *q);
    for (int i = 0; i < 8; i++) {
        test_fill(&rng, q, dim);
        uint32_t la[10], lb[10];
        float da[10], db[10];
        int na = shoal_index_search(a, q, dim, 10, NULL, la, da);
        int nb = shoal_index_search(b, q, dim, 10, NULL, lb, db);
        if (!CHECK_INT(na, nb)) break;
        for (int r = 0; r < na; r++) {
            CHECK_INT(la[r], lb[r]);
            CHECK(da[r] == db[r]);
        }
    }
    free(q);
}

static int is_corrupt_family(int rc) { return rc <= SHOAL_ECORRUPT && rc >= SHOAL_EVERSION; }

typedef struct config {
    const char *name;
    shoal_kind kind;
    shoal_metric metric;
    uint32_t dim, n;
    shoal_quantizer quantizer;
    uint32_t nlist, pq_bits, rerank;
} config;

static const config CONFIGS[] = {
    {"flat", SHOAL_KIND_FLAT, SHOAL_METRIC_L2, 12, 200, SHOAL_QUANTIZER_F32, 0, 0, 0},
    {"flat-empty", SHOAL_KIND_FLAT, SHOAL_METRIC_IP, 5, 0, SHOAL_QUANTIZER_F32, 0, 0, 0},
    {"hnsw", SHOAL_KIND_HNSW, SHOAL_METRIC_COSINE, 9, 300, SHOAL_QUANTIZER_F32, 0, 0, 0},
    {"hnsw-sq8-untrained", SHOAL_KIND_HNSW, SHOAL_METRIC_L2, 7, 200, SHOAL_QUANTIZER_SQ8, 0, 0, 0},
    {"hnsw-sq8", SHOAL_KIND_HNSW, SHOAL_METRIC_IP, 6, 1100, SHOAL_QUANTIZER_SQ8, 0, 0, 0},
    {"ivf-untrained", SHOAL_KIND_IVF, SHOAL_METRIC_L2, 8, 0, SHOAL_QUANTIZER_SQ8, 4, 0, 0},
    {"ivf-flat", SHOAL_KIND_IVF, SHOAL_METRIC_L2, 10, 400, SHOAL_QUANTIZER_F32, 6, 0, 0},
    {"ivf-sq8", SHOAL_KIND_IVF, SHOAL_METRIC_COSINE, 10, 400, SHOAL_QUANTIZER_SQ8, 6, 0, 8},
    {"ivf-pq8", SHOAL_KIND_IVF, SHOAL_METRIC_IP, 8, 600, SHOAL_QUANTIZER_PQ, 5, 8, 0},
    {"ivf-pq4", SHOAL_KIND_IVF, SHOAL_METRIC_L2, 10, 500, SHOAL_QUANTIZER_PQ, 5, 4, 12},
};
#define CONFIG_COUNT (sizeof CONFIGS / sizeof CONFIGS[0])

static shoal_index *build(const config *c, const shoal_allocator *allocator) {
    shoal_params p;
    shoal_params_init(&p);
    p.dim = c->dim;
    p.metric = c->metric;
    p.kind = c->kind;
    p.seed = 11;
    p.allocator = allocator;
    p.hnsw.M = 6;
    p.hnsw.ef_construction = 32;
    p.ivf.nlist = c->nlist;
    p.quantizer = c->quantizer;
    p.ivf.pq_bits = c->pq_bits;
    p.rerank = c->rerank;
    shoal_index *index;
    if (!CHECK_INT(shoal_index_new(&p, &index), 0)) return NULL;
    if (c->n == 0) return index;
    test_rng rng = {c->n + c->dim};
    float *data = malloc((size_t)c->n * c->dim * sizeof *data);
    test_fill(&rng, data, (size_t)c->n * c->dim);
    test_ids ids;
    test_ids_make(&ids, "r", 0, c->n);
    CHECK_INT(shoal_index_add(index, c->n, ids.bytes, ids.offsets, data, c->dim), c->n);
    for (uint32_t i = 0; i < c->n / 2; i += 5) {
        uint32_t o[2] = {0, ids.offsets[i + 1] - ids.offsets[i]};
        CHECK_INT(shoal_index_delete(index, 1, ids.bytes + ids.offsets[i], o), 1);
    }
    for (uint32_t i = 0; i < c->n / 2; i += 15) {
        uint32_t o[2] = {0, ids.offsets[i + 1] - ids.offsets[i]};
        CHECK_INT(shoal_index_add(index, 1, ids.bytes + ids.offsets[i], o, data + 7 * c->dim, c->dim), 1);
    }
    free(data);
    test_ids_free(&ids);
    return index;
}

/* The same mutations on two indexes. */
static void mutate(shoal_index *index, const config *c, int with_deletes) {
    test_rng rng = {99};
    uint32_t n = 40;
    float *data = malloc((size_t)n * c->dim * sizeof *data);
    test_fill(&rng, data, (size_t)n * c->dim);
    test_ids ids;
    test_ids_make(&ids, "m", 0, n);
    int rc = shoal_index_add(index, n, ids.bytes, ids.offsets, data, c->dim);
    CHECK(rc == (int)n || (c->kind == SHOAL_KIND_IVF && rc == SHOAL_ESTATE));
    if (with_deletes) {
        test_ids old;
        test_ids_make(&old, "r", 0, 30);
        CHECK(shoal_index_delete(index, old.n, old.bytes, old.offsets) >= 0);
        test_ids_free(&old);
    }
    free(data);
    test_ids_free(&ids);
}

/* -------------------------------------------------------------- tests */

static void test_checksum_vectors(void) {
    CHECK_INT(shoal_crc32c(0, "123456789", 9), 0xe3069283u);
    CHECK_INT(shoal_crc32c(0, "", 0), 0);
    /* Continuation equals one pass, at every split (and unaligned). */
    const char *text = "The quick brown fox jumps over the lazy dog, twice over.";
    uint32_t whole = shoal_crc32c(0, text, strlen(text));
    for (size_t cut = 0; cut <= strlen(text); cut++)
        CHECK_INT(shoal_crc32c(shoal_crc32c(0, text, cut), text + cut, strlen(text) - cut), whole);
    uint8_t d[32];
    char hex[65];
    static const char *const cases[][2] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < 3; i++) {
        shoal_sha256(cases[i][0], strlen(cases[i][0]), d);
        for (int j = 0; j < 32; j++) snprintf(hex + 2 * j, 3, "%02x", d[j]);
        CHECK_STR(hex, cases[i][1]);
    }
    char cid[SHOAL_CID_SIZE];
    CHECK_INT(shoal_cid("", 0, cid), 59);
    CHECK_STR(cid, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
    shoal_cid("abc", 3, cid);
    CHECK_STR(cid, "bafkreif2pall7dybz7vecqka3zo24irdwabwdi4wc55jznaq75q7eaavvu");
}

static void test_round_trip(void) {
    for (size_t i = 0; i < CONFIG_COUNT; i++) {
        const config *c = &CONFIGS[i];
        for (int level = 0; level <= 3; level += 3) {
            shoal_index *a = build(c, NULL);
            if (!a) return;
            buf s = save(a, level);
            shoal_index *b = load(&s, 0);
            if (!b) {
                fprintf(stderr, "    (%s, level %d)\n", c->name, level);
                shoal_index_free(a);
                free(s.data);
                continue;
            }
            if (!CHECK_INT(shoal_index_check(b), 0))
                fprintf(stderr, "    %s: %s\n", c->name, shoal_index_errmsg(b));
            CHECK_INT(shoal_index_size(b), shoal_index_size(a));
            CHECK_INT(shoal_index_label_bound(b), shoal_index_label_bound(a));
            check_same_results(a, b, c->dim, 3);
            buf again = save(b, level);
            if (!CHECK(same_bytes(&s, &again))) fprintf(stderr, "    %s level %d\n", c->name, level);

            /* More mutations: the same on both.  HNSW deletes repair in
             * canonical in-link order after a load (hnsw.c), so HNSW is
             * compared with inserts only. */
            int deletes = c->kind != SHOAL_KIND_HNSW;
            mutate(a, c, deletes);
            mutate(b, c, deletes);
            CHECK_INT(shoal_index_check(b), 0);
            check_same_results(a, b, c->dim, 4);
            buf sa = save(a, level), sb = save(b, level);
            if (!CHECK(same_bytes(&sa, &sb))) fprintf(stderr, "    after mutation: %s\n", c->name);

            /* A view: same results, read-only. */
            shoal_index *v = load(&s, 1);
            if (v) {
                CHECK_INT(shoal_index_is_view(v), 1);
                /* Uncompressed: the bulk stays in the segment's bytes. */
                if (level == 0 && c->n >= 200)
                    CHECK(shoal_index_memory_bytes(v) < shoal_index_memory_bytes(b));
                CHECK_INT(shoal_index_check(v), 0);
                shoal_index *fresh = load(&s, 0);
                check_same_results(fresh, v, c->dim, 5);
                test_ids ids;
                test_ids_make(&ids, "r", 0, 1);
                float *vec = calloc(c->dim, sizeof *vec);
                vec[0] = 1;
                CHECK_INT(shoal_index_add(v, 1, ids.bytes, ids.offsets, vec, c->dim), SHOAL_ESTATE);
                CHECK_INT(shoal_index_delete(v, 1, ids.bytes, ids.offsets), SHOAL_ESTATE);
                buf sv = save(v, level);
                CHECK(same_bytes(&s, &sv));
                free(sv.data);
                free(vec);
                test_ids_free(&ids);
                shoal_index_free(fresh);
                shoal_index_free(v);
            }
            free(sa.data);
            free(sb.data);
            free(again.data);
            free(s.data);
            shoal_index_free(a);
            shoal_index_free(b);
        }
    }
}

/* Every single-byte change and every truncation of small segments is a
 * corrupt-family error, for load and view: flat, HNSW f32, HNSW SQ8 before
 * and after training, IVF flat, SQ8 (with rerank), 8-bit PQ and 4-bit PQ
 * (with rerank). */
static const size_t CORRUPTION_PICKS[] = {0, 2, 3, 4, 6, 7, 8, 9};
#define CORRUPTION_PICK_COUNT (sizeof CORRUPTION_PICKS / sizeof CORRUPTION_PICKS[0])

/* The config, smaller where that keeps what it tests: HNSW f32 and
 * untrained SQ8 at 120 records; trained SQ8 keeps the records that
 * trained it; IVF keeps its training data. */
static config corruption_config(size_t pick) {
    config small = CONFIGS[pick];
    if (small.kind == SHOAL_KIND_HNSW && small.quantizer == SHOAL_QUANTIZER_SQ8 && small.n >= 1024)
        small.n = 1030; /* (training takes 1024) */
    else if (small.n > 120 && small.kind != SHOAL_KIND_IVF)
        small.n = 120;
    return small;
}

static void test_corruption(void) {
    for (size_t k = 0; k < CORRUPTION_PICK_COUNT; k++) {
        config small = corruption_config(CORRUPTION_PICKS[k]);
        shoal_index *a = build(&small, NULL);
        if (!a) continue;
        CHECK_INT(shoal_index_trained(a), small.n > 0); /* (the sq8 and ivf ones: trained) */
        for (int level = 0; level <= 3; level += 3) {
            buf s = save(a, level);
            uint8_t *copy = malloc(s.size + 16);
            /* (Trained HNSW SQ8's ~90 KB: every 61st byte.) */
            size_t step = s.size > 60000 ? 61 : s.size > 20000 ? 7 : 1;
            int bad = 0;
            memcpy(copy, s.data, s.size);
            for (size_t at = 0; at < s.size && bad < 5; at += step) {
                copy[at] ^= (uint8_t)(1u << (at % 8)); /* (flipped back below) */
                shoal_index *x = NULL;
                int rc = at % 2 ? shoal_index_view(copy, s.size, NULL, &x)
                                : shoal_index_load(copy, s.size, NULL, &x);
                copy[at] ^= (uint8_t)(1u << (at % 8));
                if (!is_corrupt_family(rc)) {
                    bad++;
                    CHECK(is_corrupt_family(rc));
                    fprintf(stderr, "    %s level %d: flip at %zu of %zu gave %d\n", small.name,
                            level, at, s.size, rc);
                }
                shoal_index_free(x);
            }
            for (size_t len = 0; len < s.size && bad < 5; len += len < 512 ? 1 : 13) {
                shoal_index *x = NULL;
                int rc = shoal_index_load(s.data, len, NULL, &x);
                if (!is_corrupt_family(rc)) {
                    bad++;
                    CHECK(is_corrupt_family(rc));
                }
                shoal_index_free(x);
            }
            /* Trailing bytes. */
            memcpy(copy, s.data, s.size);
            copy[s.size] = 0;
            shoal_index *x = NULL;
            CHECK_INT(shoal_index_load(copy, s.size + 1, NULL, &x), SHOAL_ECORRUPT);
            free(copy);
            free(s.data);
        }
        shoal_index_free(a);
    }
}

static void reseal_header(uint8_t *seg) {
    uint32_t crc = shoal_crc32c(0, seg, 60);
    for (int i = 0; i < 4; i++) seg[60 + i] = (uint8_t)(crc >> (8 * i));
}

static void test_versions_and_features(void) {
    shoal_index *a = build(&CONFIGS[0], NULL);
    buf s = save(a, 0);
    shoal_index *x = NULL;
    char msg[200];
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    lp.errmsg = msg;
    lp.errmsg_size = sizeof msg;
    /* A newer major. */
    s.data[12] = 2;
    reseal_header(s.data);
    CHECK_INT(shoal_index_load(s.data, s.size, &lp, &x), SHOAL_EVERSION);
    s.data[12] = 1;
    /* A newer minor is readable. */
    s.data[14] = 7;
    reseal_header(s.data);
    x = load(&s, 0);
    shoal_segment_summary info;
    CHECK_INT(shoal_segment_info(s.data, s.size, &info), 0);
    CHECK_INT(info.format_minor, 7);
    shoal_index_free(x);
    s.data[14] = 0;
    /* An unknown required feature. */
    s.data[17] = 0x10;
    reseal_header(s.data);
    CHECK_INT(shoal_index_load(s.data, s.size, &lp, &x), SHOAL_EVERSION);
    CHECK(strstr(msg, "feature") != NULL);
    s.data[17] = 0;
    /* Text-mode damage is named. */
    reseal_header(s.data);
    s.data[6] = '\n';
    CHECK_INT(shoal_index_load(s.data, s.size, &lp, &x), SHOAL_ECORRUPT);
    CHECK(strstr(msg, "text-mode") != NULL);
    free(s.data);
    shoal_index_free(a);
}

static void test_info_and_blocks(void) {
    const config *c = &CONFIGS[9];
    shoal_index *a = build(c, NULL);
    buf s = save(a, 3);
    shoal_segment_summary info;
    CHECK_INT(shoal_segment_info(s.data, s.size, &info), 0);
    CHECK_INT(info.kind, SHOAL_KIND_IVF);
    CHECK_INT(info.dim, c->dim);
    CHECK_INT(info.size, shoal_index_size(a));
    CHECK_INT(info.nlist, c->nlist);
    CHECK_INT(info.segment_size, s.size);
    CHECK(info.compressed > 0);
    CHECK(info.required_features == 3); /* zstd, and IVF records kept per list */
    /* A prefix: just the head is enough, less is ETRUNCATED. */
    CHECK_INT(shoal_segment_info(s.data, (size_t)info.head_size, &info), 0);
    CHECK_INT(shoal_segment_info(s.data, (size_t)info.head_size - 1, &info), SHOAL_ETRUNCATED);
    CHECK_INT(shoal_segment_info(s.data, 10, &info), SHOAL_ETRUNCATED);

    int n = shoal_segment_blocks(s.data, s.size, NULL, 0);
    CHECK(n >= 1 + (int)c->nlist);
    shoal_block *blocks = malloc((size_t)n * sizeof *blocks);
    CHECK_INT(shoal_segment_blocks(s.data, s.size, blocks, (uint32_t)n), n);
    uint64_t at = 0;
    uint32_t last_list = UINT32_MAX, lists_seen = 0;
    for (int i = 0; i < n; i++) {
        CHECK(blocks[i].offset == at);
        CHECK(blocks[i].size >= 1 && blocks[i].size <= SHOAL_BLOCK_MAX);
        at += blocks[i].size;
        if (i == 0) CHECK(blocks[i].list == UINT32_MAX);
        if (blocks[i].list != last_list && blocks[i].list != UINT32_MAX) lists_seen++;
        last_list = blocks[i].list;
    }
    CHECK(at == s.size);
    CHECK(lists_seen <= c->nlist);
    free(blocks);
    free(s.data);
    shoal_index_free(a);

    /* A segment over 1 MiB is cut into blocks of at most 1 MiB. */
    config big = {"flat-big", SHOAL_KIND_FLAT, SHOAL_METRIC_L2, 100, 3000, SHOAL_QUANTIZER_F32, 0, 0, 0};
    a = build(&big, NULL);
    s = save(a, 0);
    n = shoal_segment_blocks(s.data, s.size, NULL, 0);
    CHECK_INT(n, (int)((s.size + SHOAL_BLOCK_MAX - 1) / SHOAL_BLOCK_MAX));
    free(s.data);
    shoal_index_free(a);
}

static void test_out_of_memory(void) {
    const size_t picks[] = {0, 3, 4, 9};
    for (size_t k = 0; k < sizeof picks / sizeof picks[0]; k++) {
        const config *c = &CONFIGS[picks[k]];
        shoal_index *a = build(c, NULL);
        buf s = save(a, 3);
        test_counting cnt = TEST_COUNTING_INIT;
        shoal_allocator al = test_counting_allocator(&cnt);
        shoal_load_params lp;
        shoal_load_params_init(&lp);
        lp.allocator = &al;
        for (long fail = 0;; fail++) {
            cnt.fail_at = fail;
            cnt.calls = 0;
            shoal_index *x = NULL;
            int rc = shoal_index_load(s.data, s.size, &lp, &x);
            if (rc == 0) {
                /* Saving fails cleanly at every allocation too. */
                for (long f2 = 0;; f2++) {
                    cnt.fail_at = f2;
                    cnt.calls = 0;
                    shoal_save_params sp;
                    shoal_save_params_init(&sp);
                    sp.zstd_level = 3;
                    uint8_t *out = NULL;
                    size_t size = 0;
                    int r2 = shoal_index_save(x, &sp, &out, &size);
                    if (r2 == 0) {
                        CHECK(size == s.size && memcmp(out, s.data, size) == 0);
                        shoal_index_free_bytes(x, out);
                        break;
                    }
                    if (!CHECK_INT(r2, SHOAL_ENOMEM)) break;
                }
                cnt.fail_at = -1;
                shoal_index_free(x);
                break;
            }
            if (!CHECK_INT(rc, SHOAL_ENOMEM)) break;
            CHECK(x == NULL);
            CHECK_INT(cnt.live_blocks, 0);
        }
        CHECK_INT(cnt.live_blocks, 0);
        free(s.data);
        shoal_index_free(a);
    }
}


/* A segment that loads after damage must be a working index: it passes
 * check, searches return at most k distinct live labels in ascending
 * distance, and it saves.  Returns 0 if not (with a message). */
static int usable(shoal_index *x, uint32_t dim, const char *what, size_t at) {
    int ok = 1;
    if (shoal_index_check(x) != 0) {
        fprintf(stderr, "    %s, byte %zu: loads but check says %s\n", what, at, shoal_index_errmsg(x));
        ok = 0;
    }
    test_rng rng = {at};
    float q[16];
    uint32_t labels[10];
    float dist[10];
    for (int i = 0; i < 3 && ok; i++) {
        test_fill(&rng, q, dim);
        int n = shoal_index_search(x, q, dim, 10, NULL, labels, dist);
        if (n < 0 || n > 10 || (uint32_t)n > shoal_index_size(x)) {
            fprintf(stderr, "    %s, byte %zu: search gave %d (%s)\n", what, at, n, shoal_index_errmsg(x));
            ok = 0;
        }
        for (int r = 0; ok && r < n; r++) {
            const char *id;
            if (shoal_index_label_id(x, labels[r], &id) < 0 || (r && !(dist[r - 1] <= dist[r]))) {
                fprintf(stderr, "    %s, byte %zu: result %d (label %u, %g) is not a live label in "
                        "order\n", what, at, r, labels[r], dist[r]);
                ok = 0;
            }
        }
    }
    uint8_t *again = NULL;
    size_t again_size = 0;
    if (ok && shoal_index_save(x, NULL, &again, &again_size) != 0) {
        fprintf(stderr, "    %s, byte %zu: loads but does not save: %s\n", what, at, shoal_index_errmsg(x));
        ok = 0;
    }
    if (again) shoal_index_free_bytes(x, again);
    return ok;
}

/*
 * Byte flips that the checksums cannot catch, because the flipped
 * section's CRC, the table's and the header's are recomputed: the section
 * parsers themselves see the damage.  Every section's first and last 16
 * bytes and ~100 bytes spread over the rest, raw and zstd-compressed, of
 * every kind above (trained HNSW SQ8, IVF SQ8, 8-bit PQ included), load and
 * view in turn.  Each must be a corrupt-family error or a usable index --
 * never a crash or, under make test-asan, a sanitizer report.
 */
static void test_corruption_past_checksums(void) {
    long loaded = 0, refused = 0;
    for (size_t k = 0; k < CORRUPTION_PICK_COUNT; k++) {
        config small = corruption_config(CORRUPTION_PICKS[k]);
        shoal_index *a = build(&small, NULL);
        if (!a) continue;
        for (int level = 0; level <= 3; level += 3) {
            buf s = save(a, level);
            uint8_t *copy = malloc(s.size + 16);
            memcpy(copy, s.data, s.size);
            uint32_t count = (uint32_t)s.data[40] | (uint32_t)s.data[41] << 8 |
                             (uint32_t)s.data[42] << 16 | (uint32_t)s.data[43] << 24;
            int bad = 0;
            long n_flips = 0;
            for (uint32_t sec = 0; sec < count && bad < 5; sec++) {
                const uint8_t *e = s.data + 64 + 48 * (size_t)sec;
                uint64_t off = 0, stored = 0;
                for (int b = 7; b >= 0; b--) {
                    off = off << 8 | e[16 + b];
                    stored = stored << 8 | e[24 + b];
                }
                size_t stride = stored > 160 ? (size_t)(stored - 32) / 100 + 1 : 1;
                size_t head = 64 + 48 * (size_t)count; /* what test_fix_crcs rewrites */
                for (uint64_t i = 0; i < stored && bad < 5; i += i < 16 || i + 16 >= stored ? 1 : stride) {
                    size_t at = (size_t)(off + i);
                    memcpy(copy, s.data, head);
                    copy[at] = s.data[at] ^ (uint8_t)(1u << (at % 8));
                    test_fix_crcs(copy, s.size, sec);
                    n_flips++;
                    shoal_index *x = NULL;
                    int view = (int)(n_flips & 1);
                    int rc = view ? shoal_index_view(copy, s.size, NULL, &x)
                                  : shoal_index_load(copy, s.size, NULL, &x);
                    char what[96];
                    snprintf(what, sizeof what, "%s level %d section %u, %s", small.name, level, sec,
                             view ? "view" : "load");
                    if (rc == 0) {
                        loaded++;
                        if (!CHECK(usable(x, small.dim, what, at))) bad++;
                    } else {
                        refused++;
                        if (!CHECK(is_corrupt_family(rc))) {
                            bad++;
                            fprintf(stderr, "    %s, byte %zu: %d\n", what, at, rc);
                        }
                    }
                    shoal_index_free(x);
                    copy[at] = s.data[at];
                }
            }
            CHECK(n_flips > 100);
            free(copy);
            free(s.data);
        }
        shoal_index_free(a);
    }
    /* Both outcomes occur: some damage is refused by the parsers, some is
     * a different valid index (a float changed, a code changed). */
    printf("    %ld flips past the checksums: %ld refused (corrupt), %ld loaded and usable\n",
           loaded + refused, refused, loaded);
    CHECK(refused > 0 && loaded > 0);
}

/* An SQ8 quantizer whose codes could reach past float32 (index/sq8.h: the
 * sum of (|center| + 127 scale)^2 at or above 2^125) is refused at load:
 * no index writes one, as the fit refuses it first (hnsw.sq8_reach,
 * ivf.sq8_reach).  The same segment with its scale doubled -- still a
 * quantizer that could have been written -- loads, so the patch itself is
 * not what is refused. */
static void test_sq8_reach(void) {
    static const size_t picks[] = {4, 7};     /* hnsw-sq8 (ip), ivf-sq8 (cosine) */
    static const uint32_t kinds[] = {19, 33}; /* hnsw sq8, ivf sq8 (docs/FORMAT.md) */
    for (int k = 0; k < 2; k++) {
        config c = corruption_config(picks[k]);
        shoal_index *a = build(&c, NULL);
        if (!a) continue;
        buf s = save(a, 0);
        uint32_t sec = test_find_section(s.data, kinds[k]);
        if (!CHECK(sec != UINT32_MAX)) {
            free(s.data);
            shoal_index_free(a);
            continue;
        }
        size_t at = test_section_start(s.data, sec);
        float scale;
        memcpy(&scale, s.data + at, sizeof scale);
        CHECK(scale > 0.0f && scale < 1.0f);
        const float tries[2] = {2.0f * scale, 1e18f};
        for (int t = 0; t < 2; t++) {
            float sq = tries[t] * tries[t];
            memcpy(s.data + at, &tries[t], sizeof(float));
            if (k == 0) memcpy(s.data + at + 4, &sq, sizeof sq); /* scale^2 must match */
            test_fix_crcs(s.data, s.size, sec);
            for (int view = 0; view < 2; view++) {
                shoal_index *x = NULL;
                shoal_load_params lp;
                shoal_load_params_init(&lp);
                char msg[256] = "";
                lp.errmsg = msg;
                lp.errmsg_size = sizeof msg;
                int rc = view ? shoal_index_view(s.data, s.size, &lp, &x)
                              : shoal_index_load(s.data, s.size, &lp, &x);
                if (t == 0) {
                    CHECK_INT(rc, SHOAL_OK);
                } else {
                    CHECK_INT(rc, SHOAL_ECORRUPT);
                    CHECK(strstr(msg, "reach past float32") != NULL);
                    CHECK(x == NULL);
                }
                shoal_index_free(x);
            }
        }
        free(s.data);
        shoal_index_free(a);
    }
}

/* ------------------------------------------------------------- golden */

static buf read_file(const char *path) {
    buf b = {NULL, 0};
    FILE *f = fopen(path, "rb");
    if (!f) return b;
    size_t cap = 1 << 16;
    b.data = malloc(cap);
    size_t n;
    while ((n = fread(b.data + b.size, 1, cap - b.size, f)) > 0) {
        b.size += n;
        if (b.size == cap) b.data = realloc(b.data, cap *= 2);
    }
    fclose(f);
    /* Keep a 16-byte aligned copy (malloc is) and a NUL for text. */
    b.data = realloc(b.data, b.size + 1);
    b.data[b.size] = 0;
    return b;
}

/*
 * The golden segments of one format version (tests/golden/<version>/):
 * each loads, passes check, and gives the results in expected.txt, loaded
 * and viewed (the view's lines are compared with the loaded ones, which
 * are compared with the file).  The current version's set must also come out byte for byte
 * when saved again and when rebuilt from its recipe; an older set, saved
 * again, must differ only in the header's minor version and checksum.
 */
static void golden_version(const char *version, int current) {
    char path[256];
    snprintf(path, sizeof path, "tests/golden/%s/expected.txt", version);
    buf expected = read_file(path);
    snprintf(path, sizeof path, "tests/golden/%s/cids.txt", version);
    buf cids = read_file(path);
    if (!CHECK(expected.data && cids.data)) {
        fprintf(stderr, "    run from the repository root (tests/golden/%s/)\n", version);
        free(expected.data);
        free(cids.data);
        return;
    }
    size_t cap = 1 << 20;
    char *got = malloc(cap), *viewed = malloc(cap);
    size_t len = 0;
    uint32_t found = 0;
    for (uint32_t i = 0; i < GOLDEN_COUNT; i++) {
        const golden_case *c = &GOLDEN_CASES[i];
        char want_cid[SHOAL_CID_SIZE] = "", cid[SHOAL_CID_SIZE];
        /* cids.txt: "<case> <cid> <level> <size>" */
        char key[80];
        snprintf(key, sizeof key, "%s ", c->name);
        const char *line = strstr((const char *)cids.data, key);
        if (!line) continue; /* a case added in a later version */
        found++;
        int level = -1;
        sscanf(line + strlen(key), "%63s %d", want_cid, &level);
        snprintf(path, sizeof path, "tests/golden/%s/%s.seg", version, c->name);
        buf seg = read_file(path);
        if (!CHECK(seg.data != NULL)) continue;
        shoal_cid(seg.data, seg.size, cid);
        CHECK_STR(cid, want_cid);
        size_t case_start = len;
        for (int view = 0; view <= 1; view++) {
            shoal_index *index = load(&seg, view);
            if (!CHECK(index != NULL)) continue;
            CHECK_INT(shoal_index_is_view(index), view);
            CHECK_INT(shoal_index_check(index), 0);
            if (!view) {
                /* Loaded: appended to what expected.txt must equal. */
                long n = golden_results(index, c, i, got, cap, len);
                if (CHECK(n > (long)len)) len = (size_t)n;
            } else {
                /* Viewed: the same lines as loaded, so expected.txt's too. */
                long n = golden_results(index, c, i, viewed, cap, 0);
                if (!CHECK(n == (long)(len - case_start) &&
                           memcmp(viewed, got + case_start, (size_t)n) == 0))
                    fprintf(stderr, "    %s %s: viewed results differ from loaded ones\n", version,
                            c->name);
            }
            buf again = save(index, level);
            if (current) {
                CHECK(same_bytes(&seg, &again));
            } else if (c->kind == SHOAL_KIND_IVF) {
                /* 1.1 keeps IVF records per list: the layout changed, so
                 * the segment saved again must load and answer the same. */
                shoal_index *again_index = load(&again, 0);
                if (CHECK(again_index != NULL)) {
                    char *got2 = malloc(cap);
                    long n2 = golden_results(again_index, c, i, got2, cap, 0);
                    long n1 = golden_results(index, c, i, got2 + (cap / 2), cap / 2, 0);
                    CHECK(n1 == n2 && n1 > 0 && memcmp(got2, got2 + cap / 2, (size_t)n1) == 0);
                    free(got2);
                    shoal_index_free(again_index);
                }
            } else if (CHECK_INT(again.size, seg.size)) {
                /* Only the minor version (bytes 14..15) and the header CRC
                 * (60..63) may differ. */
                for (size_t b = 0; b < seg.size; b++)
                    if ((b < 14 || b > 15) && (b < 60 || b > 63) && seg.data[b] != again.data[b]) {
                        CHECK(seg.data[b] == again.data[b]);
                        fprintf(stderr, "    %s %s: byte %zu differs\n", version, c->name, b);
                        break;
                    }
                CHECK_INT(again.data[14] | again.data[15] << 8, SHOAL_FORMAT_MINOR);
            }
            free(again.data);
            shoal_index_free(index);
        }
        if (current) {
            shoal_index *fresh = golden_build(c, i);
            if (CHECK(fresh != NULL)) {
                buf s = save(fresh, level);
                CHECK(same_bytes(&seg, &s));
                free(s.data);
                shoal_index_free(fresh);
            }
        }
        free(seg.data);
    }
    CHECK(found >= 5);
    if (!CHECK(len == expected.size && memcmp(got, expected.data, len) == 0))
        fprintf(stderr, "    golden results differ from tests/golden/%s/expected.txt\n", version);
    free(got);
    free(viewed);
    free(expected.data);
    free(cids.data);
}

/*
 * A delete as the first change after a load, for every kind (found by
 * alloc.failed_mutations_change_nothing's loaded cases): the loaders once
 * allocated the free list for the segment's free labels only, while a
 * delete pushes onto it without growing it (forget_record), and HNSW's
 * journal marks were NULL until an add grew the index.
 */
static void test_delete_right_after_load(void) {
    for (size_t i = 0; i < CONFIG_COUNT; i++) {
        const config *c = &CONFIGS[i];
        if (c->n < 100) continue;
        shoal_index *a = build(c, NULL);
        if (!a) continue;
        buf s = save(a, 0);
        shoal_index *b = load(&s, 0);
        if (b) {
            /* 40 records, from the first label on (some already deleted
             * by build: the count is what a does too). */
            test_ids ids;
            test_ids_make(&ids, "r", 0, 40);
            int want = shoal_index_delete(a, ids.n, ids.bytes, ids.offsets);
            CHECK(want > 0);
            CHECK_INT(shoal_index_delete(b, ids.n, ids.bytes, ids.offsets), want);
            if (!CHECK_INT(shoal_index_check(b), 0)) fprintf(stderr, "    %s\n", c->name);
            CHECK_INT(shoal_index_size(b), shoal_index_size(a));
            check_same_results(a, b, c->dim, 6);
            test_ids_free(&ids);
            shoal_index_free(b);
        }
        free(s.data);
        shoal_index_free(a);
    }
}

static void test_golden(void) {
    golden_version("1.0", 0);
    golden_version("1.1", 1);
}

void suite_segment(void);
void suite_segment(void) {
    static const harness_test tests[] = {
        {"checksum_vectors", test_checksum_vectors},
        {"round_trip", test_round_trip},
        {"corruption", test_corruption},
        {"corruption_past_checksums", test_corruption_past_checksums},
        {"sq8_reach", test_sq8_reach},
        {"versions_and_features", test_versions_and_features},
        {"info_and_blocks", test_info_and_blocks},
        {"out_of_memory", test_out_of_memory},
        {"golden", test_golden},
        {"delete_right_after_load", test_delete_right_after_load},
    };
    harness_run("segment", tests, sizeof tests / sizeof tests[0]);
}
