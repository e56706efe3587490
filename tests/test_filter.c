/*
 * test_filter.c -- the filter language: compile errors and their paths, the
 * semantics on hand-written records (the JS differential test covers random
 * ones against an independent evaluator), and filters inside searches of
 * every kind: exact for flat, recall against exact for HNSW and IVF.
 */
#include "harness.h"

static shoal_filter *compile(const char *json, char *msg, size_t size) {
    shoal_filter *f = NULL;
    shoal_filter_compile(json, strlen(json), NULL, &f, msg, size);
    return f;
}

/* Whether metadata (JSON) passes filter (JSON), through a one-record index. */
static int passes(const char *filter, const char *meta) {
    shoal_params p;
    shoal_params_init(&p);
    p.dim = 1;
    shoal_index *index;
    shoal_index_new(&p, &index);
    float v = 1;
    uint32_t ido[2] = {0, 1}, mo[2] = {0, meta ? (uint32_t)strlen(meta) : 0};
    shoal_records r;
    memset(&r, 0, sizeof r);
    r.n = 1;
    r.id_bytes = "x";
    r.id_offsets = ido;
    r.vectors = &v;
    r.dim = 1;
    r.metadata = meta ? meta : "";
    r.metadata_offsets = mo;
    int rc = shoal_index_upsert(index, &r);
    char msg[200] = "";
    shoal_filter *f = compile(filter, msg, sizeof msg);
    if (!CHECK(rc == 1 && f != NULL)) {
        fprintf(stderr, "    %s / %s: %s\n", filter, meta ? meta : "(none)", msg);
        shoal_index_free(index);
        return -1;
    }
    const uint8_t *bytes;
    int len = shoal_index_metadata(index, 0, &bytes);
    int direct = shoal_filter_matches(f, bytes, (size_t)len);
    shoal_search_params sp;
    shoal_search_params_init(&sp);
    sp.where = f;
    uint32_t label;
    float d;
    int found = shoal_index_search(index, &v, 1, 1, &sp, &label, &d);
    CHECK_INT(found, direct); /* the search applies the same test */
    shoal_filter_free(f);
    shoal_index_free(index);
    return direct;
}

static void test_semantics(void) {
    static const struct {
        const char *filter, *meta;
        int want;
    } cases[] = {
        {"{}", NULL, 1},
        {"{}", "{\"a\":1}", 1},
        {"{\"a\":1}", "{\"a\":1}", 1},
        {"{\"a\":1}", "{\"a\":1.0}", 1},
        {"{\"a\":1}", "{\"a\":\"1\"}", 0},
        {"{\"a\":1}", NULL, 0},
        {"{\"a\":{\"$ne\":1}}", NULL, 1},
        {"{\"a\":{\"$ne\":1}}", "{\"a\":2}", 1},
        {"{\"a\":{\"$ne\":1}}", "{\"a\":[2,1]}", 0},
        {"{\"a\":null}", "{}", 1},
        {"{\"a\":null}", "{\"a\":null}", 1},
        {"{\"a\":null}", "{\"a\":0}", 0},
        {"{\"a\":{\"$ne\":null}}", "{\"a\":0}", 1},
        {"{\"a\":{\"$ne\":null}}", "{}", 0},
        {"{\"a\":{\"$gt\":1,\"$lte\":3}}", "{\"a\":3}", 1},
        {"{\"a\":{\"$gt\":1,\"$lte\":3}}", "{\"a\":1}", 0},
        {"{\"a\":{\"$gt\":1}}", "{\"a\":\"5\"}", 0},
        {"{\"a\":{\"$lt\":\"b\"}}", "{\"a\":\"abc\"}", 1},
        {"{\"a\":{\"$gte\":\"b\"}}", "{\"a\":\"abc\"}", 0},
        {"{\"a\":{\"$gt\":-1e300}}", "{\"a\":-5}", 1},
        {"{\"tags\":\"jazz\"}", "{\"tags\":[\"soul\",\"jazz\"]}", 1},
        {"{\"tags\":\"rock\"}", "{\"tags\":[\"soul\",\"jazz\"]}", 0},
        {"{\"tags\":{\"$in\":[\"rock\",\"jazz\"]}}", "{\"tags\":[\"soul\",\"jazz\"]}", 1},
        {"{\"tags\":{\"$nin\":[\"rock\",\"jazz\"]}}", "{\"tags\":[\"soul\",\"jazz\"]}", 0},
        {"{\"tags\":{\"$nin\":[\"rock\"]}}", NULL, 1},
        {"{\"a\":{\"$in\":[null,2]}}", "{\"b\":1}", 1},
        {"{\"a\":{\"$in\":[1,2]}}", "{\"b\":1}", 0},
        {"{\"a.b\":2}", "{\"a\":{\"b\":2}}", 1},
        {"{\"a.b\":2}", "{\"a\":[{\"b\":1},{\"b\":2}]}", 1},
        {"{\"a.b\":3}", "{\"a\":[{\"b\":1},{\"b\":2}]}", 0},
        {"{\"a.1\":\"y\"}", "{\"a\":[\"x\",\"y\"]}", 1},
        {"{\"a.0\":\"y\"}", "{\"a\":[\"x\",\"y\"]}", 0},
        {"{\"a.b.c\":{\"$exists\":true}}", "{\"a\":{\"b\":{\"c\":null}}}", 1},
        {"{\"a.b.c\":{\"$exists\":false}}", "{\"a\":{\"b\":{}}}", 1},
        {"{\"a\":{\"$exists\":true}}", NULL, 0},
        {"{\"$or\":[{\"a\":1},{\"b\":2}]}", "{\"b\":2}", 1},
        {"{\"$or\":[{\"a\":1},{\"b\":2}]}", "{\"b\":3}", 0},
        {"{\"$and\":[{\"a\":1},{\"b\":2}]}", "{\"a\":1,\"b\":2}", 1},
        {"{\"$and\":[{\"a\":1},{\"b\":2}]}", "{\"a\":1}", 0},
        {"{\"$not\":{\"a\":1}}", "{\"a\":2}", 1},
        {"{\"a\":{\"$not\":{\"$gt\":5}}}", "{\"a\":7}", 0},
        {"{\"a\":{\"$not\":{\"$gt\":5}}}", "{}", 1},
        {"{\"ok\":true}", "{\"ok\":true}", 1},
        {"{\"ok\":false}", "{\"ok\":0}", 0},
        {"{\"s\":\"caf\\u00e9\"}", "{\"s\":\"caf\xc3\xa9\"}", 1},
        {"{\"year\":{\"$gte\":1990},\"genre\":{\"$in\":[\"jazz\",\"soul\"]},\"$or\":[{\"price\":{\"$lt\":10}},{\"sale\":true}]}",
         "{\"year\":1995,\"genre\":\"soul\",\"price\":12,\"sale\":true}", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int got = passes(cases[i].filter, cases[i].meta);
        if (!CHECK_INT(got, cases[i].want))
            fprintf(stderr, "    case %zu: %s on %s\n", i, cases[i].filter,
                    cases[i].meta ? cases[i].meta : "(none)");
    }
}

static void test_errors_name_the_path(void) {
    static const struct {
        const char *filter, *message;
    } cases[] = {
        {"[1]", "a filter must be an object at $"},
        {"{\"a\":{\"$regex\":\"x\"}}", "unknown operator $regex at $.a.$regex"},
        {"{\"$nor\":[]}", "unknown operator $nor at $.$nor"},
        {"{\"a\":{\"$gt\":true}}", "a comparison needs a number or a string at $.a.$gt"},
        {"{\"a\":{\"$in\":3}}", "$in and $nin need an array at $.a.$in"},
        {"{\"a\":{\"$in\":[1,[2]]}}", "$in values must be numbers, strings, booleans or null at $.a.$in[1]"},
        {"{\"a\":{\"b\":1}}", "equality to an object is not supported"},
        {"{\"a\":[1,2]}", "equality to an array is not supported (use $in) at $.a"},
        {"{\"$or\":[]}", "non-empty array of filters at $.$or"},
        {"{\"$or\":[{\"a\":{\"$exists\":1}}]}", "$exists needs true or false at $.$or[0].a.$exists"},
        {"{\"a..b\":1}", "an empty segment in a field path at $.a..b"},
        {"{\"a\":{}}", "an empty object of operators at $.a"},
        {"{\"a\":1", "expected ',' or '}'"},
        {"{\"a\":1,\"a\":2}", "repeated key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char msg[200] = "";
        shoal_filter *f = NULL;
        int rc = shoal_filter_compile(cases[i].filter, strlen(cases[i].filter), NULL, &f, msg,
                                      sizeof msg);
        CHECK_INT(rc, SHOAL_EPARAM);
        CHECK(f == NULL);
        if (!CHECK(strstr(msg, cases[i].message) != NULL))
            fprintf(stderr, "    case %zu: '%s' gave '%s'\n", i, cases[i].filter, msg);
    }
    /* Too deep and too large. */
    char deep[400] = "";
    for (int i = 0; i < 20; i++) strcat(deep, "{\"$not\":");
    strcat(deep, "{}");
    for (int i = 0; i < 20; i++) strcat(deep, "}");
    char msg[200];
    shoal_filter *f = NULL;
    CHECK_INT(shoal_filter_compile(deep, strlen(deep), NULL, &f, msg, sizeof msg), SHOAL_EPARAM);
    CHECK(strstr(msg, "nested deeper than") != NULL);
    size_t cap = 64 * 1024;
    char *big = malloc(cap);
    size_t at = (size_t)sprintf(big, "{\"a\":{\"$in\":[");
    for (int i = 0; i < 5000; i++) at += (size_t)sprintf(big + at, "%s%d", i ? "," : "", i);
    strcpy(big + at, "]}}");
    CHECK_INT(shoal_filter_compile(big, strlen(big), NULL, &f, msg, sizeof msg), SHOAL_EPARAM);
    CHECK(strstr(msg, "more than 4096 nodes") != NULL);
    free(big);
    /* Out of memory at every allocation: an error, nothing leaked. */
    const char *ok = "{\"year\":{\"$gte\":1990},\"tags\":{\"$in\":[\"a\",\"b\",null]},\"$or\":[{\"x\":1},{\"y\":{\"$exists\":false}}]}";
    int compiled = 0;
    for (long fail = 0; fail < 100 && !compiled; fail++) {
        test_counting c = TEST_COUNTING_INIT;
        c.fail_at = fail;
        shoal_allocator a = test_counting_allocator(&c);
        int rc = shoal_filter_compile(ok, strlen(ok), &a, &f, msg, sizeof msg);
        if (rc == SHOAL_OK) {
            compiled = 1;
            shoal_filter_free(f);
        } else {
            CHECK_INT(rc, SHOAL_ENOMEM);
        }
        CHECK_INT(c.live_blocks, 0);
    }
    CHECK(compiled);
}

/* A filter in searches: flat is exact (the set of matches), HNSW and IVF
 * reach recall against exact filtered truth at several selectivities. */
static void test_filtered_search(void) {
    const uint32_t n = 4000, dim = 16, k = 10;
    float *data = test_clustered(17, n, dim, 20, 0.15f);
    test_ids ids;
    test_ids_make(&ids, "v", 0, n);
    char *meta = malloc((size_t)n * 48);
    uint32_t *mo = malloc((n + 1) * sizeof *mo);
    size_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        mo[i] = (uint32_t)at;
        at += (size_t)sprintf(meta + at, "{\"cat\":%u,\"price\":%u}", i % 10, (i * 7919) % 1000);
    }
    mo[n] = (uint32_t)at;
    shoal_records r;
    memset(&r, 0, sizeof r);
    r.n = n;
    r.id_bytes = ids.bytes;
    r.id_offsets = ids.offsets;
    r.vectors = data;
    r.dim = dim;
    r.metadata = meta;
    r.metadata_offsets = mo;
    shoal_index *kinds[3];
    for (int kind = 0; kind < 3; kind++) {
        shoal_params p;
        shoal_params_init(&p);
        p.dim = dim;
        p.kind = (shoal_kind)kind;
        p.seed = 4;
        p.ivf.nlist = 32;
        p.ivf.nprobe = 4; /* unfiltered recall@10 ~0.99 here */
        CHECK_INT(shoal_index_new(&p, &kinds[kind]), SHOAL_OK);
        CHECK_INT(shoal_index_upsert(kinds[kind], &r), (int)n);
    }
    static const char *filters[] = {
        "{\"cat\":{\"$lt\":5}}",                       /* 50% */
        "{\"cat\":3}",                                 /* 10% */
        "{\"cat\":3,\"price\":{\"$lt\":100}}",         /* 1% */
        "{\"cat\":3,\"price\":{\"$lt\":10}}",          /* 0.1% */
    };
    test_rng rng = {99};
    float q[16];
    for (size_t fi = 0; fi < sizeof filters / sizeof *filters; fi++) {
        char msg[200];
        shoal_filter *f;
        CHECK_INT(shoal_filter_compile(filters[fi], strlen(filters[fi]), NULL, &f, msg, sizeof msg), 0);
        shoal_search_params sp;
        shoal_search_params_init(&sp);
        sp.where = f;
        double hits[3] = {0, 0, 0}, total = 0;
        for (int qi = 0; qi < 30; qi++) {
            test_fill(&rng, q, dim);
            uint32_t labels[3][10];
            float d[3][10];
            int found[3];
            for (int kind = 0; kind < 3; kind++)
                found[kind] = shoal_index_search(kinds[kind], q, dim, k, &sp, labels[kind], d[kind]);
            /* Flat: exactly the k nearest matching records. */
            uint32_t matching = 0;
            for (uint32_t i = 0; i < n; i++) {
                int label = shoal_index_label_of(kinds[0], ids.bytes + ids.offsets[i],
                                                 ids.offsets[i + 1] - ids.offsets[i]);
                const uint8_t *b;
                int len = shoal_index_metadata(kinds[0], (uint32_t)label, &b);
                matching += (uint32_t)shoal_filter_matches(f, b, (size_t)len);
            }
            CHECK_INT(found[0], matching < k ? matching : k);
            for (int j = 0; j < found[0]; j++) {
                const uint8_t *b;
                int len = shoal_index_metadata(kinds[0], labels[0][j], &b);
                CHECK(shoal_filter_matches(f, b, (size_t)len));
            }
            total += found[0];
            for (int kind = 1; kind < 3; kind++)
                for (int j = 0; j < found[kind]; j++)
                    for (int e = 0; e < found[0]; e++)
                        if (test_row_of(kinds[kind], labels[kind][j]) == test_row_of(kinds[0], labels[0][e])) {
                            hits[kind]++;
                            break;
                        }
        }
        printf("    %-40s hnsw recall %.3f, ivf recall %.3f\n", filters[fi], hits[1] / total,
               hits[2] / total);
        CHECK(hits[1] / total >= 0.95);
        CHECK(hits[2] / total >= 0.95);
        shoal_filter_free(f);
    }
    for (int kind = 0; kind < 3; kind++) shoal_index_free(kinds[kind]);
    free(meta);
    free(mo);
    free(data);
    test_ids_free(&ids);
}

/* A filter that keeps records far from the query: the nprobe lists nearest
 * to it hold no match, so IVF scans on, past lists without one, until
 * nprobe lists holding a match have been scanned. */
static void test_filtered_search_far(void) {
    const uint32_t n = 4000, dim = 16, k = 10;
    float *data = test_clustered(23, n, dim, 20, 0.15f);
    test_ids ids;
    test_ids_make(&ids, "v", 0, n);
    char *meta = malloc((size_t)n * 16);
    uint32_t *mo = malloc((n + 1) * sizeof *mo);
    size_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        float x = data[(size_t)i * dim];
        mo[i] = (uint32_t)at;
        at += (size_t)sprintf(meta + at, "{\"band\":%d}", x < -0.3f ? 0 : x < 0.3f ? 1 : 2);
    }
    mo[n] = (uint32_t)at;
    shoal_records r;
    memset(&r, 0, sizeof r);
    r.n = n;
    r.id_bytes = ids.bytes;
    r.id_offsets = ids.offsets;
    r.vectors = data;
    r.dim = dim;
    r.metadata = meta;
    r.metadata_offsets = mo;
    shoal_index *flat, *ivf;
    shoal_params p;
    shoal_params_init(&p);
    p.dim = dim;
    p.seed = 4;
    CHECK_INT(shoal_index_new(&p, &flat), SHOAL_OK);
    p.kind = SHOAL_KIND_IVF;
    p.ivf.nlist = 32;
    p.ivf.nprobe = 4; /* unfiltered recall@10 ~0.99 here */
    CHECK_INT(shoal_index_new(&p, &ivf), SHOAL_OK);
    CHECK_INT(shoal_index_upsert(flat, &r), (int)n);
    CHECK_INT(shoal_index_upsert(ivf, &r), (int)n);
    double hits = 0, total = 0;
    for (int band = 0; band <= 2; band += 2) {
        char text[32];
        int len = sprintf(text, "{\"band\":%d}", band);
        shoal_filter *f;
        CHECK_INT(shoal_filter_compile(text, (size_t)len, NULL, &f, NULL, 0), SHOAL_OK);
        shoal_search_params sp;
        shoal_search_params_init(&sp);
        sp.where = f;
        for (uint32_t qi = 0; qi < 40; qi++) {
            /* Queries from the other end of the first coordinate. */
            const float *q = data + (size_t)((qi * 97) % n) * dim;
            if (band == 0 ? q[0] < 0.3f : q[0] > -0.3f) continue;
            uint32_t la[10], lb[10];
            float da[10], db[10];
            int na = shoal_index_search(flat, q, dim, k, &sp, la, da);
            int nb = shoal_index_search(ivf, q, dim, k, &sp, lb, db);
            CHECK_INT(na, (int)k);
            CHECK_INT(nb, (int)k);
            for (int j = 0; j < nb; j++)
                for (int e = 0; e < na; e++)
                    if (test_row_of(ivf, lb[j]) == test_row_of(flat, la[e])) {
                        hits++;
                        break;
                    }
            total += na;
        }
        shoal_filter_free(f);
    }
    printf("    far filter: ivf recall %.3f over %.0f results\n", hits / total, total);
    CHECK(total >= 200);
    CHECK(hits / total >= 0.95);
    shoal_index_free(flat);
    shoal_index_free(ivf);
    free(meta);
    free(mo);
    free(data);
    test_ids_free(&ids);
}

void suite_filter(void) {
    static const harness_test tests[] = {
        {"semantics", test_semantics},
        {"errors_name_the_path", test_errors_name_the_path},
        {"filtered_search", test_filtered_search},
        {"filtered_search_far", test_filtered_search_far},
    };
    harness_run("filter", tests, sizeof tests / sizeof tests[0]);
}
