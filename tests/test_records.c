/*
 * test_records.c -- records beyond id and vector: JSON metadata stored as
 * canonical DAG-CBOR, times, explicit sequence numbers; their limits and
 * errors; and their round trip through segments, loads and views.
 */
#include "harness.h"

/* A flat index of dim 2 with the records given as JSON text. */
static shoal_index *make(shoal_kind kind) {
    shoal_params p;
    shoal_params_init(&p);
    p.dim = 2;
    p.kind = kind;
    shoal_index *index = NULL;
    CHECK_INT(shoal_index_new(&p, &index), SHOAL_OK);
    return index;
}

/* Upserts one record "id" with metadata json (NULL = none). */
static int put(shoal_index *index, const char *id, const char *json, int64_t time) {
    float v[2] = {(float)strlen(id), 1.0f};
    uint32_t ido[2] = {0, (uint32_t)strlen(id)};
    uint32_t mo[2] = {0, json ? (uint32_t)strlen(json) : 0};
    shoal_records r;
    memset(&r, 0, sizeof r);
    r.n = 1;
    r.id_bytes = id;
    r.id_offsets = ido;
    r.vectors = v;
    r.dim = 2;
    r.metadata = json ? json : "";
    r.metadata_offsets = mo;
    r.times = &time;
    return shoal_index_upsert(index, &r);
}

/* The metadata of id as JSON text (static buffer), "(none)" or "(absent)". */
static const char *json_of(shoal_index *index, const char *id) {
    static char text[4096];
    int label = shoal_index_label_of(index, id, (uint32_t)strlen(id));
    if (label < 0) return "(absent)";
    const uint8_t *bytes;
    if (shoal_index_metadata(index, (uint32_t)label, &bytes) == 0) return "(none)";
    uint32_t l = (uint32_t)label;
    char *out;
    size_t size;
    if (shoal_index_metadata_json(index, 1, &l, &out, &size)) return "(error)";
    /* "[{...}]" -> "{...}" */
    size_t n = size - 2 < sizeof text - 1 ? size - 2 : sizeof text - 1;
    memcpy(text, out + 1, n);
    text[n] = '\0';
    shoal_index_free_bytes(index, out);
    return text;
}

static void test_metadata_is_canonical(void) {
    shoal_index *index = make(SHOAL_KIND_FLAT);
    CHECK_INT(put(index, "a", "{\"year\": 1999, \"genre\": \"jazz\", \"b\": [1, 2.5, -3, null, true]}", 7), 1);
    /* Keys sorted length first (b, year, genre), numbers in shortest form. */
    CHECK_STR(json_of(index, "a"), "{\"b\":[1,2.5,-3,null,true],\"year\":1999,\"genre\":\"jazz\"}");
    /* The bytes are DAG-CBOR: map(3) "b" array(5) ... */
    int label = shoal_index_label_of(index, "a", 1);
    const uint8_t *bytes;
    int len = shoal_index_metadata(index, (uint32_t)label, &bytes);
    CHECK(len > 10);
    CHECK_INT(bytes[0], 0xa3);
    CHECK_INT(bytes[1], 0x61);
    CHECK_INT(bytes[2], 'b');
    CHECK_INT(bytes[3], 0x85);
    CHECK_INT(bytes[4], 0x01);
    CHECK_INT(bytes[5], 0xfb); /* 2.5 as a 64-bit float */
    int64_t time;
    uint64_t seq;
    CHECK_INT(shoal_index_record_info(index, (uint32_t)label, &time, &seq), SHOAL_OK);
    CHECK_INT(time, 7);
    /* Integers: whole and within 2^53 -> int; else float; -0 -> 0. */
    CHECK_INT(put(index, "n", "{\"a\":-0,\"b\":1e2,\"c\":9007199254740993,\"d\":0.1,\"e\":\"\\u00e9\\ud83d\\udc1f\\n\"}", SHOAL_TIME_NONE), 1);
    CHECK_STR(json_of(index, "n"), "{\"a\":0,\"b\":100,\"c\":9007199254740992,\"d\":0.1,\"e\":\"\xc3\xa9\xf0\x9f\x90\x9f\\n\"}");
    /* null and absent are "no metadata"; an upsert replaces metadata too. */
    CHECK_INT(put(index, "z", "null", 1), 1);
    CHECK_STR(json_of(index, "z"), "(none)");
    CHECK_INT(put(index, "a", "{\"x\":{}}", 1), 1);
    CHECK_STR(json_of(index, "a"), "{\"x\":{}}");
    CHECK_INT(put(index, "a", NULL, 1), 1);
    CHECK_STR(json_of(index, "a"), "(none)");
    shoal_stats st;
    shoal_index_stats(index, &st);
    CHECK_INT(st.with_metadata, 1);
    CHECK(st.metadata_bytes > 20 && st.metadata_bytes < 80);
    CHECK_INT(shoal_index_check(index), SHOAL_OK);
    shoal_index_free(index);
}

static void test_bad_metadata_is_refused(void) {
    static const struct {
        const char *json;
        int code;
        const char *message; /* a part of it */
    } cases[] = {
        {"[1,2]", SHOAL_EPARAM, "must be a JSON object"},
        {"3", SHOAL_EPARAM, "must be a JSON object"},
        {"{\"a\":1,\"a\":2}", SHOAL_EPARAM, "repeated key \"a\" at $"},
        {"{\"a\":{\"b\":[1,{\"c\":1,\"c\":2}]}}", SHOAL_EPARAM, "at $.a.b[1]"},
        {"{\"a\":1", SHOAL_EPARAM, "expected ',' or '}'"},
        {"{\"a\":1} x", SHOAL_EPARAM, "text after the value"},
        {"{\"a\":01}", SHOAL_EPARAM, "expected ',' or '}'"},
        {"{\"a\":1e400}", SHOAL_EPARAM, "out of range at $.a"},
        {"{\"a\":\"\\ud800\"}", SHOAL_EPARAM, "lone high surrogate at $.a"},
        {"{\"a\":\"\xff\"}", SHOAL_EPARAM, "invalid UTF-8 in a string at $.a"},
        {"{\"a\":\"\x01\"}", SHOAL_EPARAM, "control character"},
        {"{\"a\":NaN}", SHOAL_EPARAM, "bad number"},
        {"{'a':1}", SHOAL_EPARAM, "expected a key"},
        {"{\"a\":[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}", SHOAL_EPARAM, "nested deeper than 16"},
    };
    shoal_index *index = make(SHOAL_KIND_FLAT);
    CHECK_INT(put(index, "keep", "{\"ok\":true}", 5), 1);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = put(index, "bad", cases[i].json, 1);
        if (!CHECK_INT(rc, cases[i].code)) fprintf(stderr, "    case %zu: %s\n", i, cases[i].json);
        if (!CHECK(strstr(shoal_index_errmsg(index), cases[i].message) != NULL))
            fprintf(stderr, "    case %zu: message '%s'\n", i, shoal_index_errmsg(index));
        CHECK(strstr(shoal_index_errmsg(index), "record 0") != NULL);
    }
    /* Too large: a 70 000-byte string. */
    size_t big = 70000;
    char *json = malloc(big + 16);
    memcpy(json, "{\"a\":\"", 6);
    memset(json + 6, 'x', big);
    memcpy(json + 6 + big, "\"}", 3);
    CHECK_INT(put(index, "bad", json, 1), SHOAL_ETOOBIG);
    free(json);
    /* Nothing changed. */
    CHECK_INT(shoal_index_size(index), 1);
    CHECK_STR(json_of(index, "keep"), "{\"ok\":true}");
    CHECK_STR(json_of(index, "bad"), "(absent)");
    /* CBOR input is checked as strictly: unsorted keys, a tag, a short float. */
    static const uint8_t unsorted[] = {0xa2, 0x62, 'a', 'a', 0x01, 0x61, 'b', 0x02};
    static const uint8_t tagged[] = {0xa1, 0x61, 'a', 0xc1, 0x01};
    static const uint8_t half[] = {0xa1, 0x61, 'a', 0xf9, 0x3c, 0x00};
    static const uint8_t good[] = {0xa2, 0x61, 'b', 0x02, 0x62, 'a', 'a', 0x01};
    const uint8_t *cbor[] = {unsorted, tagged, half, good};
    size_t sizes[] = {sizeof unsorted, sizeof tagged, sizeof half, sizeof good};
    for (int i = 0; i < 4; i++) {
        float v[2] = {1, 2};
        uint32_t ido[2] = {0, 1}, mo[2] = {0, (uint32_t)sizes[i]};
        shoal_records r;
        memset(&r, 0, sizeof r);
        r.n = 1;
        r.id_bytes = "c";
        r.id_offsets = ido;
        r.vectors = v;
        r.dim = 2;
        r.metadata = (const char *)cbor[i];
        r.metadata_offsets = mo;
        r.metadata_cbor = 1;
        CHECK_INT(shoal_index_upsert(index, &r), i < 3 ? SHOAL_EPARAM : 1);
    }
    CHECK_STR(json_of(index, "c"), "{\"b\":2,\"aa\":1}");
    shoal_index_free(index);
}

static void test_sequence_numbers(void) {
    shoal_index *index = make(SHOAL_KIND_FLAT);
    float v[4] = {1, 1, 1, 1};
    uint32_t ido[3] = {0, 1, 2};
    uint64_t seqs[2] = {100, 105};
    shoal_records r;
    memset(&r, 0, sizeof r);
    r.n = 2;
    r.id_bytes = "ab";
    r.id_offsets = ido;
    r.vectors = v;
    r.dim = 2;
    r.seqs = seqs;
    CHECK_INT(shoal_index_upsert(index, &r), 2);
    uint64_t seq;
    CHECK_INT(shoal_index_record_info(index, (uint32_t)shoal_index_label_of(index, "b", 1), NULL, &seq), 0);
    CHECK_INT(seq, 105);
    /* Not increasing, or not above what the index holds: refused. */
    uint64_t low[2] = {105, 106}, flat[2] = {200, 200};
    r.seqs = low;
    CHECK_INT(shoal_index_upsert(index, &r), SHOAL_EPARAM);
    r.seqs = flat;
    CHECK_INT(shoal_index_upsert(index, &r), SHOAL_EPARAM);
    /* Equal distances order by sequence number: a then b. */
    uint32_t labels[2];
    float d[2];
    CHECK_INT(shoal_index_search(index, v, 2, 2, NULL, labels, d), 2);
    CHECK_INT(test_row_of(index, labels[0]), -1); /* ids are letters: check by label */
    const char *id;
    CHECK_INT(shoal_index_label_id(index, labels[0], &id), 1);
    CHECK_INT(id[0], 'a');
    /* The index's own numbering continues above them. */
    r.seqs = NULL;
    r.n = 1;
    CHECK_INT(shoal_index_upsert(index, &r), 1);
    CHECK_INT(shoal_index_record_info(index, (uint32_t)shoal_index_label_of(index, "a", 1), NULL, &seq), 0);
    CHECK_INT(seq, 106);
    shoal_index_free(index);
}

/* Metadata and times survive save, load and view, byte for byte; a segment
 * without either has neither section. */
static void test_records_round_trip(void) {
    for (int kind = 0; kind < 3; kind++) {
        shoal_params p;
        shoal_params_init(&p);
        p.dim = 6;
        p.kind = (shoal_kind)kind;
        p.ivf.nlist = 4;
        shoal_index *index;
        if (!CHECK_INT(shoal_index_new(&p, &index), SHOAL_OK)) return;
        const uint32_t n = 300;
        float *data = test_clustered(3, n, 6, 4, 0.3f);
        test_ids ids;
        test_ids_make(&ids, "r", 0, n);
        char *json = malloc((size_t)n * 64);
        uint32_t *mo = malloc((n + 1) * sizeof *mo);
        int64_t *times = malloc(n * sizeof *times);
        size_t at = 0;
        for (uint32_t i = 0; i < n; i++) {
            mo[i] = (uint32_t)at;
            if (i % 3) at += (size_t)sprintf(json + at, "{\"i\":%u,\"tag\":\"t%u\"}", i, i % 7);
            times[i] = i % 5 ? (int64_t)i * 1000 : SHOAL_TIME_NONE;
        }
        mo[n] = (uint32_t)at;
        shoal_records r;
        memset(&r, 0, sizeof r);
        r.n = n;
        r.id_bytes = ids.bytes;
        r.id_offsets = ids.offsets;
        r.vectors = data;
        r.dim = 6;
        r.metadata = json;
        r.metadata_offsets = mo;
        r.times = times;
        CHECK_INT(shoal_index_upsert(index, &r), (int)n);
        CHECK_INT(shoal_index_delete(index, 10, ids.bytes, ids.offsets), 10);
        uint8_t *seg;
        size_t size;
        CHECK_INT(shoal_index_save(index, NULL, &seg, &size), SHOAL_OK);
        shoal_section_info sections[64];
        int count = shoal_segment_sections(seg, size, sections, 64);
        /* Flat and HNSW: metadata and times sections; IVF: a records
         * section after each list (with ids and sequence numbers too). */
        int has_meta = 0, has_times = 0, list_records = 0;
        for (int i = 0; i < count; i++) {
            has_meta |= sections[i].kind == 0x80000004u;
            has_times |= sections[i].kind == 0x80000005u;
            list_records += sections[i].kind == 38;
        }
        if (kind == SHOAL_KIND_IVF)
            CHECK(!has_meta && !has_times && list_records == 4);
        else
            CHECK(has_meta && has_times && !list_records);
        for (int view = 0; view < 2; view++) {
            shoal_index *back;
            /* Views borrow the bytes: seg is 16-byte aligned from malloc. */
            CHECK_INT((view ? shoal_index_view : shoal_index_load)(seg, size, NULL, &back), SHOAL_OK);
            for (uint32_t i = 10; i < n; i++) {
                char id[16];
                sprintf(id, "r%u", i);
                char want[64] = "(none)";
                if (i % 3) sprintf(want, "{\"i\":%u,\"tag\":\"t%u\"}", i, i % 7);
                CHECK_STR(json_of(back, id), want);
                int64_t t;
                CHECK_INT(shoal_index_record_info(back, (uint32_t)shoal_index_label_of(back, id, (uint32_t)strlen(id)), &t, NULL), 0);
                CHECK_INT(t, times[i]);
            }
            uint8_t *again;
            size_t again_size;
            CHECK_INT(shoal_index_save(back, NULL, &again, &again_size), SHOAL_OK);
            CHECK(again_size == size && memcmp(again, seg, size) == 0);
            shoal_index_free_bytes(back, again);
            shoal_index_free(back);
        }
        shoal_index_free_bytes(index, seg);
        /* Without metadata and times: no such sections. */
        shoal_index *plain;
        p.seed = 9;
        CHECK_INT(shoal_index_new(&p, &plain), SHOAL_OK);
        CHECK_INT(shoal_index_add(plain, n, ids.bytes, ids.offsets, data, 6), (int)n);
        CHECK_INT(shoal_index_save(plain, NULL, &seg, &size), SHOAL_OK);
        count = shoal_segment_sections(seg, size, sections, 64);
        for (int i = 0; i < count; i++) CHECK(!(sections[i].kind & 0x80000000u));
        /* (IVF records sections are always there: they hold the ids.) */
        shoal_index_free_bytes(plain, seg);
        shoal_index_free(plain);
        shoal_index_free(index);
        test_ids_free(&ids);
        free(json);
        free(mo);
        free(times);
        free(data);
    }
}

void suite_records(void) {
    static const harness_test tests[] = {
        {"metadata_is_canonical", test_metadata_is_canonical},
        {"bad_metadata_is_refused", test_bad_metadata_is_refused},
        {"sequence_numbers", test_sequence_numbers},
        {"records_round_trip", test_records_round_trip},
    };
    harness_run("records", tests, sizeof tests / sizeof tests[0]);
}
