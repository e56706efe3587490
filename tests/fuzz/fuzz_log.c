/*
 * fuzz_log.c -- libFuzzer target for a collection's write-ahead log
 * records (src/collection/log.c): shoal_collection_apply over any bytes,
 * as a replay after a crash would see them.
 *
 * The first input byte is a mode: bit 0 set rewrites each record's
 * CRC-32C before applying (otherwise nearly every mutation dies at the
 * checksum and the payload parsers are never reached); the rest is the
 * log.  Collections are flat, dim 3, so that applying is cheap.  What must
 * hold:
 *   - apply returns 0 or a negative code; valid_size never passes the end;
 *   - two fresh collections applying the same bytes give the same code,
 *     message, result and state (every live record's id, vector, time and
 *     sequence number), and after a flush the same root CID at commit;
 *   - replaying the valid prefix again applies nothing and changes nothing
 *     (idempotence: records numbered below the collection's are skipped);
 *   - a search after apply works and returns only live records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                    \
    do {                                             \
        fprintf(stderr, "fuzz_log: " __VA_ARGS__);   \
        fprintf(stderr, "\n");                       \
        abort();                                     \
    } while (0)

#define DIM 3

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static shoal_collection *fresh(void) {
    shoal_collection_params p;
    shoal_collection_params_init(&p);
    p.small.kind = SHOAL_KIND_FLAT;
    p.small.dim = DIM;
    p.large_from = UINT32_MAX;
    shoal_collection *c;
    if (shoal_collection_new(&p, &c)) FAIL("collection_new");
    return c;
}

static uint64_t mix(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* A digest of every live record, in enumeration order. */
static uint64_t state(shoal_collection *c) {
    uint64_t h = 0xcbf29ce484222325ull;
    shoal_hit hit = {0, 0};
    uint32_t live = 0;
    while (shoal_collection_next(c, &hit) == 1) {
        const char *id;
        int n = shoal_collection_hit_id(c, hit, &id);
        float v[DIM];
        int64_t time;
        uint64_t seq;
        if (n < 0 || shoal_collection_hit_vector(c, hit, v) || shoal_collection_hit_info(c, hit, &time, &seq))
            FAIL("a live hit %u/%u cannot be read", hit.part, hit.label);
        h = mix(h, id, (size_t)n);
        h = mix(h, &n, sizeof n);
        h = mix(h, v, sizeof v);
        h = mix(h, &time, sizeof time);
        h = mix(h, &seq, sizeof seq);
        live++;
        hit.label++;
    }
    if (live != shoal_collection_size(c)) FAIL("%u live by enumeration, size %u", live, shoal_collection_size(c));
    shoal_collection_stats st;
    shoal_collection_stats_get(c, &st);
    h = mix(h, &st.next_seq, sizeof st.next_seq);
    return h;
}

static void search(shoal_collection *c) {
    float q[DIM] = {0.5f, -1, 2};
    shoal_hit hits[8];
    float dist[8];
    int found = shoal_collection_search(c, q, DIM, 8, NULL, NULL, NULL, hits, dist);
    if (found < 0) FAIL("search: %d %s", found, shoal_collection_errmsg(c));
    if ((uint32_t)found > shoal_collection_size(c)) FAIL("search found %d of %u", found, shoal_collection_size(c));
    for (int i = 0; i < found; i++) {
        const char *id;
        if (shoal_collection_hit_id(c, hits[i], &id) < 0) FAIL("search returned a dead record");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1u << 20)) return 0;
    int fix = data[0] & 1;
    size--;
    uint8_t *log = malloc(size ? size : 1);
    if (!log) return 0;
    if (size) memcpy(log, data + 1, size);
    if (fix) {
        size_t at = 0;
        while (size - at >= 8) {
            uint32_t len = get32(log + at);
            if (len > size - at - 8) break;
            uint32_t crc = shoal_crc32c(0, log + at + 8, len);
            for (int i = 0; i < 4; i++) log[at + 4 + i] = (uint8_t)(crc >> (8 * i));
            at += 8 + (size_t)len;
        }
    }

    shoal_collection *a = fresh(), *b = fresh();
    shoal_apply_result ra, rb;
    int ca = shoal_collection_apply(a, log, size, &ra);
    int cb = shoal_collection_apply(b, log, size, &rb);
    if (ca > 0) FAIL("apply returned %d", ca);
    if (ca != cb || strcmp(shoal_collection_errmsg(a), shoal_collection_errmsg(b)) ||
        memcmp(&ra, &rb, sizeof ra))
        FAIL("two applies disagree: %d %s | %d %s", ca, shoal_collection_errmsg(a), cb,
             shoal_collection_errmsg(b));
    if (ca < 0 && !shoal_collection_errmsg(a)[0]) FAIL("code %d without a message", ca);
    if (ra.valid_size > size) FAIL("valid_size %llu past %zu", (unsigned long long)ra.valid_size, size);
    if (ca == 0 && !ra.torn && ra.valid_size != size) FAIL("success short of the end");
    uint64_t sa = state(a);
    if (sa != state(b)) FAIL("two applies, two states");
    search(a);

    /* Replaying what was applied changes nothing. */
    shoal_apply_result again;
    int cr = shoal_collection_apply(a, log, (size_t)ra.valid_size, &again);
    if (cr != 0) FAIL("replay of the valid prefix: %d %s", cr, shoal_collection_errmsg(a));
    if (again.records || again.written || again.deleted || again.torn)
        FAIL("replay applied %u records", again.records);
    if (state(a) != sa) FAIL("replay changed the collection");

    /* Flush and commit: the same root from both. */
    int fa = shoal_collection_flush(a), fb = shoal_collection_flush(b);
    if (fa < 0 || fa != fb) FAIL("flush: %d %d %s", fa, fb, shoal_collection_errmsg(a));
    if (state(a) != state(b)) FAIL("flush: two states");
    search(a);
    uint8_t root_a[SHOAL_CID_BYTES], root_b[SHOAL_CID_BYTES];
    int ka = shoal_collection_commit(a, 0, root_a), kb = shoal_collection_commit(b, 0, root_b);
    if (ka < 0 || ka != kb) FAIL("commit: %d %d %s", ka, kb, shoal_collection_errmsg(a));
    if (memcmp(root_a, root_b, SHOAL_CID_BYTES)) FAIL("commit: two roots");

    shoal_collection_free(a);
    shoal_collection_free(b);
    free(log);
    return 0;
}
