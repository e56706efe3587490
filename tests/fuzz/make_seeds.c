/*
 * make_seeds.c -- writes the fuzzers' seed corpora (tests/fuzz/seeds-<target>/)
 * from objects the library itself makes, so that each fuzzer starts from
 * inputs that get past the first checks: manifests and CARs of small
 * collections (flat, HNSW, an IVF-PQ large segment, tombstones, history),
 * write-ahead log records, filters, metadata as JSON and as DAG-CBOR, and
 * small vector files.  Kept small (a few KiB each) so that mutations stay
 * cheap.  Run by make fuzz-seeds; the output is committed.
 *
 *   build/fuzz_seeds tests/fuzz
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shoal.h"

static const char *root_dir;

static void die(const char *what, int rc) {
    fprintf(stderr, "make_seeds: %s: %d (%s)\n", what, rc, shoal_strerror(rc));
    exit(1);
}

/* Writes seeds-<target>/<name>: an optional mode byte, then bytes. */
static void seed(const char *target, const char *name, int mode, const void *bytes, size_t size) {
    char path[512];
    snprintf(path, sizeof path, "%s/seeds-%s", root_dir, target);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/seeds-%s/%s", root_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f) die(path, SHOAL_EPARAM);
    if (mode >= 0) fputc(mode, f);
    if (size) fwrite(bytes, 1, size, f);
    if (fclose(f)) die(path, SHOAL_EPARAM);
}

static void text_seed(const char *target, const char *name, const char *text) {
    seed(target, name, -1, text, strlen(text));
}

/* ------------------------------------------------------------ collections */

#define DIM 4

static void records(uint32_t from, uint32_t n, shoal_records *r, char *ids, uint32_t *id_off,
                    float *v, char *meta, uint32_t *meta_off, int64_t *times) {
    memset(r, 0, sizeof *r);
    id_off[0] = meta_off[0] = 0;
    for (uint32_t i = 0; i < n; i++) {
        int k = sprintf(ids + id_off[i], "r%u", from + i);
        id_off[i + 1] = id_off[i] + (uint32_t)k;
        for (uint32_t j = 0; j < DIM; j++) v[i * DIM + j] = (float)((from + i) * 7 % 13) - (float)j * 0.5f;
        k = (from + i) % 3 ? sprintf(meta + meta_off[i], "{\"n\":%u,\"tag\":\"t%u\"}", from + i, (from + i) % 4) : 0;
        meta_off[i + 1] = meta_off[i] + (uint32_t)k;
        times[i] = (from + i) % 2 ? 1700000000000 + (int64_t)(from + i) : SHOAL_TIME_NONE;
    }
    r->n = n;
    r->id_bytes = ids;
    r->id_offsets = id_off;
    r->vectors = v;
    r->dim = DIM;
    r->metadata = meta;
    r->metadata_offsets = meta_off;
    r->times = times;
}

static void upsert(shoal_collection *c, uint32_t from, uint32_t n) {
    static char ids[200 * 8], meta[200 * 32];
    static uint32_t id_off[201], meta_off[201];
    static float v[200 * DIM];
    static int64_t times[200];
    shoal_records r;
    records(from, n, &r, ids, id_off, v, meta, meta_off, times);
    int rc = shoal_collection_upsert(c, &r);
    if (rc != (int)n) die(shoal_collection_errmsg(c), rc);
}

/* The version just committed: its manifest, a CAR of every block, and the
 * same blocks as a list for fuzz_car's framing mode. */
static void version(shoal_collection *c, const char *name) {
    uint8_t root[SHOAL_CID_BYTES];
    int n = shoal_collection_commit(c, 0, root);
    if (n < 0) die(shoal_collection_errmsg(c), n);
    shoal_block_ref ref;
    shoal_collection_block(c, 0, &ref);
    char file[64];
    snprintf(file, sizeof file, "%s.cbor", name);
    seed("manifest", file, -1, ref.bytes, ref.size);
    size_t cap = 1 << 16, len = 0, llen = 0;
    uint8_t *car = malloc(cap), *list = malloc(cap);
    len = (size_t)shoal_car_header(root, car, cap);
    for (int i = 0; i < n; i++) {
        shoal_collection_block(c, (uint32_t)i, &ref);
        if (!ref.bytes || len + ref.size + 48 > cap || llen + ref.size + 2 > cap || ref.size > 65535) {
            fprintf(stderr, "make_seeds: %s: block %d too large for a seed\n", name, i);
            exit(1);
        }
        len += (size_t)shoal_car_frame(ref.cid, ref.size, car + len);
        memcpy(car + len, ref.bytes, ref.size);
        len += ref.size;
        list[llen++] = (uint8_t)ref.size;
        list[llen++] = (uint8_t)(ref.size >> 8);
        memcpy(list + llen, ref.bytes, ref.size);
        llen += ref.size;
    }
    snprintf(file, sizeof file, "%s.car", name);
    seed("car", file, 0, car, len);
    snprintf(file, sizeof file, "%s.blocks", name);
    seed("car", file, 1, list, llen);
    free(car);
    free(list);
}

static shoal_collection *collection(shoal_kind small) {
    shoal_collection_params p;
    shoal_collection_params_init(&p);
    p.small.dim = DIM;
    p.small.kind = small;
    p.small.hnsw.M = 4;
    p.small.hnsw.ef_construction = 16;
    p.large.quantizer = SHOAL_QUANTIZER_PQ;
    p.large.ivf.nlist = 2;
    p.large.ivf.pq_m = 2;
    p.large.ivf.pq_bits = 4;
    p.large_from = 80;
    shoal_collection *c;
    int rc = shoal_collection_new(&p, &c);
    if (rc) die("collection_new", rc);
    return c;
}

static void collections(void) {
    shoal_collection *c = collection(SHOAL_KIND_FLAT);
    version(c, "empty");
    upsert(c, 0, 6);
    shoal_collection_flush(c);
    version(c, "flat-one-segment");
    uint32_t off[2] = {0, 2};
    shoal_collection_delete(c, 1, "r1", off);
    shoal_collection_flush(c);
    version(c, "flat-tombstone");
    shoal_collection_free(c);

    c = collection(SHOAL_KIND_HNSW);
    upsert(c, 0, 12);
    shoal_collection_flush(c);
    upsert(c, 12, 5);
    shoal_collection_flush(c);
    version(c, "hnsw-two-segments");
    shoal_collection_free(c);

    c = collection(SHOAL_KIND_FLAT);
    upsert(c, 0, 100);
    shoal_collection_flush(c);
    version(c, "ivf-pq-large");
    shoal_collection_free(c);
}

/* -------------------------------------------------------------------- log */

static void logs(void) {
    shoal_collection_params p;
    shoal_collection_params_init(&p);
    p.small.dim = 3; /* fuzz_log's collections */
    p.small.kind = SHOAL_KIND_FLAT;
    shoal_collection *c;
    int rc = shoal_collection_new(&p, &c);
    if (rc) die("collection_new", rc);
    char ids[] = "abcd";
    uint32_t id_off[] = {0, 1, 2, 3};
    float v[] = {1, 2, 3, -1, 0.5f, 4, 0, 0, 1e-3f};
    const char meta[] = "{\"a\":1}{\"tags\":[\"x\",\"y\"],\"z\":null}";
    uint32_t meta_off[] = {0, 7, 7, (uint32_t)strlen(meta)};
    int64_t times[] = {1700000000000, SHOAL_TIME_NONE, -5};
    shoal_records r = {0};
    r.n = 3;
    r.id_bytes = ids;
    r.id_offsets = id_off;
    r.vectors = v;
    r.dim = 3;
    r.metadata = meta;
    r.metadata_offsets = meta_off;
    r.times = times;
    uint8_t *all = malloc(4096), *b;
    size_t len = 0, n;
    if ((rc = shoal_collection_log_upsert(c, &r, &b, &n))) die("log_upsert", rc);
    seed("log", "upsert", 0, b, n);
    seed("log", "upsert-fix", 1, b, n);
    shoal_collection_apply(c, b, n, NULL);
    memcpy(all + len, b, n);
    len += n;
    shoal_collection_free_bytes(c, b);
    if ((rc = shoal_collection_log_delete(c, 2, "ab", id_off, &b, &n))) die("log_delete", rc);
    seed("log", "delete", 1, b, n);
    shoal_collection_apply(c, b, n, NULL);
    memcpy(all + len, b, n);
    len += n;
    shoal_collection_free_bytes(c, b);
    r.n = 1;
    r.metadata = NULL;
    r.times = NULL;
    if ((rc = shoal_collection_log_upsert(c, &r, &b, &n))) die("log_upsert", rc);
    shoal_collection_apply(c, b, n, NULL);
    memcpy(all + len, b, n);
    len += n;
    shoal_collection_free_bytes(c, b);
    if ((rc = shoal_collection_log_clear(c, &b, &n))) die("log_clear", rc);
    seed("log", "clear", 1, b, n);
    memcpy(all + len, b, n);
    len += n;
    shoal_collection_free_bytes(c, b);
    seed("log", "sequence", 0, all, len);
    seed("log", "sequence-torn", 1, all, len - 5);
    free(all);
    shoal_collection_free(c);
}

/* ----------------------------------------------------- filters, metadata */

static const char *const FILTERS[] = {
    "{\"a\":1}",
    "{\"a\":{\"$ne\":null}}",
    "{\"a\":{\"$gt\":1,\"$lte\":3}}",
    "{\"tags\":{\"$in\":[\"rock\",\"jazz\"]}}",
    "{\"tags\":{\"$nin\":[\"rock\"]}}",
    "{\"a.b\":2}",
    "{\"a.b.c\":{\"$exists\":true}}",
    "{\"$or\":[{\"a\":1},{\"b\":\"x\"}]}",
    "{\"$and\":[{\"a\":{\"$gte\":-1e300}},{\"ok\":true}]}",
    "{\"a\":{\"$not\":{\"$lt\":\"b\"}}}",
    "{\"year\":{\"$gte\":1990},\"genre\":{\"$in\":[\"jazz\",\"soul\"]},\"$or\":[{\"price\":{\"$lt\":10}},{\"sale\":false}]}",
    "{\"s\":\"caf\\u00e9\",\"x.y\":4}",
};

static const char *const METADATA[] = {
    "{}",
    "null",
    "{\"a\":1,\"b\":-2,\"c\":2.5,\"d\":1e300,\"e\":9007199254740993}",
    "{\"s\":\"caf\\u00e9 \\ud83d\\ude00\\n\",\"t\":true,\"f\":false,\"n\":null}",
    "{\"tags\":[\"x\",[1,{\"y\":[]}]],\"nested\":{\"a\":{\"b\":{\"c\":0}}}}",
    " { \"bb\" : 1 , \"a\" : [ ] } ",
    "{\"neg0\":-0,\"small\":5e-324,\"big\":-1.7976931348623157e308}",
};

static void texts(void) {
    char name[32];
    for (size_t i = 0; i < sizeof FILTERS / sizeof *FILTERS; i++) {
        snprintf(name, sizeof name, "filter-%02zu.json", i);
        text_seed("filter", name, FILTERS[i]);
    }
    /* Metadata: the JSON text, and the DAG-CBOR an index stores for it. */
    shoal_params p;
    shoal_params_init(&p);
    p.dim = 1;
    for (size_t i = 0; i < sizeof METADATA / sizeof *METADATA; i++) {
        snprintf(name, sizeof name, "meta-%02zu.json", i);
        text_seed("metadata", name, METADATA[i]);
        shoal_index *x;
        shoal_index_new(&p, &x);
        uint32_t id_off[2] = {0, 1}, m_off[2] = {0, (uint32_t)strlen(METADATA[i])};
        float v = 1;
        shoal_records r = {0};
        r.n = 1;
        r.id_bytes = "a";
        r.id_offsets = id_off;
        r.vectors = &v;
        r.dim = 1;
        r.metadata = METADATA[i];
        r.metadata_offsets = m_off;
        int rc = shoal_index_upsert(x, &r);
        if (rc != 1) die(shoal_index_errmsg(x), rc);
        const uint8_t *m;
        int len = shoal_index_metadata(x, 0, &m);
        if (len > 0) {
            snprintf(name, sizeof name, "meta-%02zu.cbor", i);
            seed("metadata", name, -1, m, (size_t)len);
        }
        shoal_index_free(x);
    }
    text_seed("jsonl", "record", "{\"id\":\"a\",\"vector\":[1,-2.5,3e-7],\"metadata\":{\"k\":[1,\"v\"]}}");
    text_seed("jsonl", "record-int-id", "{\"vector\":[0,0.1],\"id\":17,\"time\":1700000000000}");
}

/* ----------------------------------------------------------- vector files */

static size_t put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
    return 4;
}

static void vectors(void) {
    uint8_t buf[512];
    size_t n = 0;
    /* fvecs: 3 records of dim 4 */
    for (uint32_t i = 0; i < 3; i++) {
        n += put32(buf + n, 4);
        for (uint32_t j = 0; j < 4; j++) {
            float f = (float)i - (float)j * 0.25f;
            uint32_t u;
            memcpy(&u, &f, 4);
            n += put32(buf + n, u);
        }
    }
    seed("vectors", "three.fvecs", 0, buf, n);
    seed("vectors", "three.fvecs.sniffed", 4, buf, n);
    /* bvecs: 2 records of dim 5 */
    n = 0;
    for (uint32_t i = 0; i < 2; i++) {
        n += put32(buf + n, 5);
        for (uint32_t j = 0; j < 5; j++) buf[n++] = (uint8_t)(i * 100 + j * 31);
    }
    seed("vectors", "two.bvecs", 1, buf, n);
    /* ivecs: 2 rows of k = 3 */
    n = 0;
    for (uint32_t i = 0; i < 2; i++) {
        n += put32(buf + n, 3);
        for (uint32_t j = 0; j < 3; j++) n += put32(buf + n, i * 3 + j);
    }
    seed("vectors", "two.ivecs", 5, buf, n);
    /* npy v1.0: float32, C order, shape (2, 3); header padded to 64 bytes */
    const char hdr[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    n = 0;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    n = 8;
    size_t hl = 64 - 10;
    buf[n++] = (uint8_t)hl;
    buf[n++] = 0;
    memset(buf + n, ' ', hl);
    memcpy(buf + n, hdr, strlen(hdr));
    buf[n + hl - 1] = '\n';
    n += hl;
    for (uint32_t i = 0; i < 6; i++) {
        float f = (float)i * 1.5f - 2;
        uint32_t u;
        memcpy(&u, &f, 4);
        n += put32(buf + n, u);
    }
    seed("vectors", "two-by-three.npy", 2, buf, n);
    seed("vectors", "two-by-three.npy.sniffed", 4, buf, n);
    const char jsonl[] = "{\"id\":\"a\",\"vector\":[1,2]}\n{\"id\":\"b\",\"vector\":[3,4],\"metadata\":{\"x\":1}}\n";
    seed("vectors", "two.jsonl", 3, jsonl, strlen(jsonl));
}

/* -------------------------------------------------------------- segments */

/* An IVF-PQ segment with raw rerank rows and pq_tables = 2, and an HNSW
 * SQ8 one with raw copies: what external rerank rows and the per-list
 * tables read (the other segment seeds were
 * written by hand before this function; tests/golden adds its own). */
static void segments(void) {
    shoal_params p;
    shoal_params_init(&p);
    p.dim = 4;
    p.kind = SHOAL_KIND_IVF;
    p.quantizer = SHOAL_QUANTIZER_PQ;
    p.ivf.nlist = 2;
    p.ivf.pq_m = 2;
    p.ivf.pq_bits = 4;
    p.rerank = 8;
    p.ivf.pq_tables = 2;
    p.seed = 3;
    shoal_index *x;
    int rc = shoal_index_new(&p, &x);
    if (rc) die("ivf index", rc);
    char ids[80 * 4];
    uint32_t off[81];
    float v[80 * 4];
    off[0] = 0;
    for (uint32_t i = 0; i < 80; i++) {
        off[i + 1] = off[i] + (uint32_t)sprintf(ids + off[i], "s%u", i);
        for (uint32_t j = 0; j < 4; j++) v[i * 4 + j] = (float)((i * 7 + j * 3) % 11) - (i % 2 ? 4.0f : 0.0f);
    }
    if ((rc = shoal_index_add(x, 80, ids, off, v, 4)) < 0) die("ivf add", rc);
    uint8_t *bytes;
    size_t size;
    if ((rc = shoal_index_save(x, NULL, &bytes, &size))) die("ivf save", rc);
    seed("segment", "ivf-pq4-rerank-raw.seg", -1, bytes, size);
    shoal_index_free_bytes(x, bytes);
    shoal_index_free(x);

    /* HNSW SQ8 with raw rerank copies, trained (1024 records, the least
     * that trains): what an HNSW reader leaving its rows outside reads. */
    shoal_params_init(&p);
    p.dim = 2;
    p.kind = SHOAL_KIND_HNSW;
    p.quantizer = SHOAL_QUANTIZER_SQ8;
    p.hnsw.M = 4;
    p.hnsw.ef_construction = 8;
    p.rerank = 4;
    p.seed = 3;
    if ((rc = shoal_index_new(&p, &x))) die("hnsw index", rc);
    enum { HN = 1024 };
    char *hid = malloc(HN * 8);
    uint32_t *hoff = malloc((HN + 1) * sizeof *hoff);
    float *hv = malloc(HN * 2 * sizeof *hv);
    hoff[0] = 0;
    for (uint32_t i = 0; i < HN; i++) {
        hoff[i + 1] = hoff[i] + (uint32_t)sprintf(hid + hoff[i], "h%u", i);
        hv[2 * i] = (float)(i % 32);
        hv[2 * i + 1] = (float)(i / 32) * 0.5f;
    }
    if ((rc = shoal_index_add(x, HN, hid, hoff, hv, 2)) < 0) die("hnsw add", rc);
    if ((rc = shoal_index_save(x, NULL, &bytes, &size))) die("hnsw save", rc);
    seed("segment", "hnsw-sq8-rerank-raw.seg", -1, bytes, size);
    shoal_index_free_bytes(x, bytes);
    shoal_index_free(x);
    free(hid);
    free(hoff);
    free(hv);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR (tests/fuzz)\n");
        return 1;
    }
    root_dir = argv[1];
    collections();
    logs();
    texts();
    vectors();
    segments();
    return 0;
}
