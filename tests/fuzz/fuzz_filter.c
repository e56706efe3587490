/*
 * fuzz_filter.c -- libFuzzer target for filter expressions: the JSON text
 * of a filter compiled by shoal_filter_compile (src/filter/filter.c) and
 * the compiled program run by shoal_filter_matches over a fixed set of
 * metadata, and by a filtered search over a small flat index holding it.
 *
 * What must hold:
 *   - compile returns 0 with a filter or a negative code with none and a
 *     message; the same text gives the same code and message twice;
 *   - two compilations of the same text match the same records, and
 *     matching is 0 or 1;
 *   - a filtered search returns exactly the records the filter matches
 *     (the flat index scans everything, so it cannot miss one).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                      \
    do {                                               \
        fprintf(stderr, "fuzz_filter: " __VA_ARGS__);  \
        fprintf(stderr, "\n");                         \
        abort();                                       \
    } while (0)

/* The metadata each search record carries (JSON; "" = none). */
static const char *const RECORDS[] = {
    "",
    "{}",
    "{\"a\":1}",
    "{\"a\":2.5,\"b\":\"x\"}",
    "{\"a\":null,\"tags\":[\"jazz\",\"soul\"]}",
    "{\"a\":{\"b\":{\"c\":3}},\"ok\":true}",
    "{\"a\":[{\"b\":1},{\"b\":2}],\"s\":\"caf\\u00e9\"}",
    "{\"year\":1995,\"genre\":\"soul\",\"price\":12,\"sale\":false}",
    "{\"a\":-1e300,\"b\":[1,[2,3]],\"c\":{}}",
    "{\"a\":\"1\",\"b\":true,\"x.y\":4}",
};
#define NREC (sizeof RECORDS / sizeof RECORDS[0])

static shoal_index *index_;
static const uint8_t *meta[NREC];
static int meta_len[NREC];

static void setup(void) {
    shoal_params p;
    shoal_params_init(&p);
    p.kind = SHOAL_KIND_FLAT;
    p.dim = 2;
    if (shoal_index_new(&p, &index_)) FAIL("index_new");
    char ids[NREC * 2];
    uint32_t id_off[NREC + 1], meta_off[NREC + 1];
    float v[NREC * 2];
    size_t total = 0;
    for (uint32_t i = 0; i < NREC; i++) total += strlen(RECORDS[i]);
    char *metas = malloc(total + 1);
    id_off[0] = meta_off[0] = 0;
    for (uint32_t i = 0; i < NREC; i++) {
        ids[i] = (char)('a' + i);
        id_off[i + 1] = i + 1;
        size_t n = strlen(RECORDS[i]);
        memcpy(metas + meta_off[i], RECORDS[i], n);
        meta_off[i + 1] = meta_off[i] + (uint32_t)n;
        v[2 * i] = (float)i;
        v[2 * i + 1] = 0;
    }
    shoal_records r = {0};
    r.n = NREC;
    r.id_bytes = ids;
    r.id_offsets = id_off;
    r.vectors = v;
    r.dim = 2;
    r.metadata = metas;
    r.metadata_offsets = meta_off;
    if (shoal_index_upsert(index_, &r) != (int)NREC) FAIL("upsert: %s", shoal_index_errmsg(index_));
    free(metas);
    for (uint32_t i = 0; i < NREC; i++) {
        meta_len[i] = shoal_index_metadata(index_, i, &meta[i]);
        if (meta_len[i] < 0) FAIL("metadata %u", i);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!index_) setup();
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);

    shoal_filter *f1 = NULL, *f2 = NULL;
    char m1[256], m2[256];
    int r1 = shoal_filter_compile(text, size, NULL, &f1, m1, sizeof m1);
    int r2 = shoal_filter_compile(text, size, NULL, &f2, m2, sizeof m2);
    if (r1 != r2 || strcmp(m1, m2)) FAIL("two compilations disagree: %d %s | %d %s", r1, m1, r2, m2);
    if (r1 > 0 || (r1 == 0) != (f1 != NULL) || (r2 == 0) != (f2 != NULL)) FAIL("code %d", r1);
    if (r1 < 0 && !m1[0]) FAIL("code %d without a message", r1);
    if (r1 == 0) {
        int expect[NREC], want = 0;
        for (uint32_t i = 0; i < NREC; i++) {
            const uint8_t *m = meta_len[i] ? meta[i] : NULL;
            int a = shoal_filter_matches(f1, m, (size_t)meta_len[i]);
            int b = shoal_filter_matches(f2, m, (size_t)meta_len[i]);
            if (a != b || (a != 0 && a != 1)) FAIL("matches: %d and %d on record %u", a, b, i);
            expect[i] = a;
            want += a;
        }
        shoal_search_params sp;
        shoal_search_params_init(&sp);
        sp.where = f1;
        float q[2] = {0, 0};
        uint32_t labels[NREC];
        float dist[NREC];
        int found = shoal_index_search(index_, q, 2, NREC, &sp, labels, dist);
        if (found != want) FAIL("filtered search found %d, the filter matches %d", found, want);
        for (int i = 0; i < found; i++)
            if (labels[i] >= NREC || !expect[labels[i]]) FAIL("search returned unmatched %u", labels[i]);
    }
    shoal_filter_free(f1);
    shoal_filter_free(f2);
    free(text);
    return 0;
}
