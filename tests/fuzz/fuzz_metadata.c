/*
 * fuzz_metadata.c -- libFuzzer target for record metadata: JSON text to
 * canonical DAG-CBOR (src/codec/json.c), the DAG-CBOR validator
 * (src/codec/cbor.c) and CBOR back to JSON, through the internal calls and
 * through shoal_index_upsert / shoal_index_metadata_json.
 *
 * The input is read both ways, as JSON text and as DAG-CBOR bytes.  What
 * must hold:
 *   - the same input gives the same code, message and bytes twice
 *     (determinism: no state leaks between calls);
 *   - CBOR made from JSON passes the validator at the same limits;
 *   - JSON -> CBOR -> JSON -> CBOR gives the same CBOR, and the JSON
 *     written the second time equals the first (the writer is a fixed
 *     point: equal values, equal bytes);
 *   - CBOR that validates converts to JSON that parses back, and from
 *     there the round trip is stable (the first step may normalise:
 *     a whole float64 such as 1.0 becomes the integer 1, and an integer
 *     past 2^53 the nearest float64, as JSON.parse then @ipld/dag-cbor
 *     would make them);
 *   - an upsert with the input as metadata (JSON, then CBOR) succeeds
 *     exactly when the internal calls say it should, and stores those bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                \
    do {                                         \
        fprintf(stderr, "fuzz_metadata: " __VA_ARGS__); \
        fprintf(stderr, "\n");                   \
        abort();                                 \
    } while (0)

static shoal__mem mem;

/* JSON text to CBOR with the limits metadata has. */
static int to_cbor(const char *text, size_t len, shoal__cbor_out *out, char *msg, size_t msg_size) {
    shoal__cbor_out_init(out, &mem, SHOAL_METADATA_MAX);
    msg[0] = '\0';
    int rc = shoal__json_to_cbor(text, len, SHOAL_METADATA_DEPTH, out, msg, msg_size);
    return rc;
}

static void to_json(const uint8_t *cbor, shoal__cbor_out *out) {
    shoal__cbor_out_init(out, &mem, 0);
    shoal__cbor_to_json(cbor, out);
    if (out->error) FAIL("out of memory writing JSON");
}

static const shoal__cbor_limits LIMITS = {SHOAL_METADATA_DEPTH, 0, 0, 0, 0};

/* From validated CBOR: JSON, which must parse; then the stable round trip. */
static void round_trip(const uint8_t *cbor, size_t len, int exact) {
    shoal__cbor_out j1, c2, j2, c3;
    char msg[256];
    to_json(cbor, &j1);
    int rc = to_cbor((const char *)j1.buf, j1.len, &c2, msg, sizeof msg);
    /* Text JSON can be longer than the limit allows the CBOR; anything else
     * the writer produced must parse back. */
    if (rc == SHOAL_ETOOBIG) goto done1;
    if (rc) FAIL("JSON written from CBOR does not parse (%d: %s): %.*s", rc, msg, (int)j1.len, j1.buf);
    if (shoal__cbor_check(c2.buf, c2.len, &LIMITS, msg, sizeof msg))
        FAIL("CBOR from JSON fails the validator: %s", msg);
    if (exact && (c2.len != len || memcmp(c2.buf, cbor, len)))
        FAIL("JSON -> CBOR -> JSON -> CBOR changed the bytes: %.*s", (int)j1.len, j1.buf);
    to_json(c2.buf, &j2);
    rc = to_cbor((const char *)j2.buf, j2.len, &c3, msg, sizeof msg);
    if (rc) FAIL("second JSON does not parse (%d: %s)", rc, msg);
    if (c3.len != c2.len || memcmp(c3.buf, c2.buf, c2.len)) FAIL("CBOR round trip not stable");
    if (exact && (j2.len != j1.len || memcmp(j2.buf, j1.buf, j1.len)))
        FAIL("JSON round trip not stable: %.*s vs %.*s", (int)j1.len, j1.buf, (int)j2.len, j2.buf);
    shoal__cbor_out_free(&j2);
    shoal__cbor_out_free(&c3);
done1:
    shoal__cbor_out_free(&c2);
    shoal__cbor_out_free(&j1);
}

/* One record with this metadata through the public upsert.  Returns its
 * code; on success *stored gets the CBOR the index keeps (or len 0). */
static int upsert(const uint8_t *meta, size_t len, int cbor, shoal__cbor_out *stored) {
    shoal_params p;
    shoal_params_init(&p);
    p.kind = SHOAL_KIND_FLAT;
    p.dim = 2;
    shoal_index *index;
    if (shoal_index_new(&p, &index)) FAIL("index_new");
    uint32_t ids_off[2] = {0, 1}, meta_off[2] = {0, (uint32_t)len};
    float v[2] = {1, 2};
    shoal_records r = {0};
    r.n = 1;
    r.id_bytes = "a";
    r.id_offsets = ids_off;
    r.vectors = v;
    r.dim = 2;
    r.metadata = (const char *)meta;
    r.metadata_offsets = meta_off;
    r.metadata_cbor = cbor;
    int rc = shoal_index_upsert(index, &r);
    shoal__cbor_out_init(stored, &mem, 0);
    if (rc == 1) {
        const uint8_t *m;
        int n = shoal_index_metadata(index, 0, &m);
        if (n < 0) FAIL("metadata of the record: %d", n);
        shoal__cbor_raw(stored, m, (size_t)n);
        uint32_t label = 0;
        char *json;
        size_t json_len;
        if (shoal_index_metadata_json(index, 1, &label, &json, &json_len)) FAIL("metadata_json");
        shoal_index_free_bytes(index, json);
        rc = 0;
    }
    shoal_index_free(index);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 2 * SHOAL_METADATA_MAX) return 0;
    shoal__mem_init(&mem, NULL);
    /* Exact-size copies, so ASan sees any read past the end. */
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    const uint8_t *bytes = (const uint8_t *)text;

    /* ---- as JSON */
    shoal__cbor_out a, b;
    char ma[256], mb[256];
    int ra = to_cbor(text, size, &a, ma, sizeof ma);
    int rb = to_cbor(text, size, &b, mb, sizeof mb);
    if (ra != rb || strcmp(ma, mb)) FAIL("JSON: two runs disagree (%d/%d: %s | %s)", ra, rb, ma, mb);
    if (ra == 0 && (a.len != b.len || memcmp(a.buf, b.buf, a.len))) FAIL("JSON: two runs, two encodings");
    if (ra > 0 || (ra == 0 && a.len == 0)) FAIL("JSON: code %d with %zu bytes", ra, a.len);
    if (ra == 0) {
        if (shoal__cbor_check(a.buf, a.len, &LIMITS, ma, sizeof ma))
            FAIL("JSON: CBOR written fails the validator: %s", ma);
        round_trip(a.buf, a.len, 1);
    }
    shoal__cbor_out stored;
    int ru = upsert(bytes, size, 0, &stored);
    int is_map = ra == 0 && a.buf[0] >> 5 == SHOAL__CBOR_MAP;
    int is_null = ra == 0 && a.len == 1 && a.buf[0] == (SHOAL__CBOR_SIMPLE << 5 | SHOAL__CBOR_NULL);
    if (size == 0) {
        if (ru != 0 || stored.len) FAIL("empty metadata: upsert %d", ru);
    } else if ((ru == 0) != (is_map || is_null)) {
        FAIL("upsert of JSON gave %d, the parser %d", ru, ra);
    } else if (ru == 0 && is_map && (stored.len != a.len || memcmp(stored.buf, a.buf, a.len))) {
        FAIL("upsert stored other bytes than the parser wrote");
    }
    shoal__cbor_out_free(&stored);
    shoal__cbor_out_free(&a);
    shoal__cbor_out_free(&b);

    /* ---- as DAG-CBOR */
    char m1[256] = "", m2[256] = "";
    int c1 = shoal__cbor_check(bytes, size, &LIMITS, m1, sizeof m1);
    int c2 = shoal__cbor_check(bytes, size, &LIMITS, m2, sizeof m2);
    if (c1 != c2 || strcmp(m1, m2)) FAIL("CBOR: two checks disagree");
    if (c1 == 0) round_trip(bytes, size, 0);
    ru = upsert(bytes, size, 1, &stored);
    if (size && size <= SHOAL_METADATA_MAX) {
        int map = c1 == 0 && bytes[0] >> 5 == SHOAL__CBOR_MAP;
        if ((ru == 0) != map) FAIL("upsert of CBOR gave %d, the validator %d", ru, c1);
        if (ru == 0 && (stored.len != size || memcmp(stored.buf, bytes, size)))
            FAIL("upsert of CBOR stored other bytes");
    }
    shoal__cbor_out_free(&stored);
    if (mem.bytes) FAIL("%zu bytes leaked", mem.bytes);
    free(text);
    return 0;
}
