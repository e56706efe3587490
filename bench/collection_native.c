/*
 * collection_native.c -- the collection benchmark of issue 10
 * (`make bench-collection`; figures in docs/BENCHMARKS.md, "Collections").
 *
 * Part 1, Fashion-MNIST (60,000 x 784, l2; queries: the first --queries test
 * images; truth: exact search by a flat index):
 *   - one HNSW index over all 60,000 rows (the reference);
 *   - a collection of the same rows written by --flushes flushes of equal
 *     batches (merge_factor 64, so no tiered compaction merges them before
 *     the measurement), searched across its segments; then a full
 *     compaction into one segment, searched again.
 *   Reported: recall@10 and single-thread QPS per ef, flush and compaction
 *   times, commit times, segment bytes.
 * Part 2, incremental save: after the compaction, 1% more records (test
 *   images as new ids) and, separately, 1% replaced records are written and
 *   flushed; the bytes of the new version's DAG not already in the previous
 *   version's are counted against the whole version.
 * Part 3, --big N (default 1,000,000) x 96 synthetic clustered vectors in a
 *   collection whose segments are IVF-PQ from the first flush (flushes of
 *   N / 10; large_from = 10,000, the core's floor for IVF): memory the core holds (exact, through its
 *   allocator), RSS, segment bytes, flush and compaction times, and recall@10
 *   of 200 queries against exact truth, before and after compaction.
 *   --big 0 skips it.
 *
 * Prints one JSON object per measurement.  Uses only src/shoal.h.
 */
#define _POSIX_C_SOURCE 200809L
#define BENCH_PROGRAM "collection_native"
#include "bench_util.h"

#define MAX_EFS 16

static void ccheck(shoal_collection *c, int rc, const char *what) {
    if (rc >= 0) return;
    fprintf(stderr, "%s: %s (%s)\n", what, shoal_error_name(rc), c ? shoal_collection_errmsg(c) : "");
    exit(1);
}

static long row_of(const char *id, int len) {
    char text[32];
    snprintf(text, sizeof text, "%.*s", len, id);
    return strtol(text, NULL, 10);
}

/* Exact top-k rows per query (flat index over base). */
static int32_t *exact_truth(const float *base, uint32_t n, uint32_t dim, const float *q, uint32_t nq,
                            uint32_t k) {
    shoal_params p;
    shoal_params_init(&p);
    p.dim = dim;
    shoal_index *flat;
    check(NULL, shoal_index_new(&p, &flat), "flat");
    char *ids = malloc((size_t)n * 12);
    uint32_t *off = malloc(((size_t)n + 1) * sizeof *off), at = 0;
    for (uint32_t i = 0; i < n; i++) {
        off[i] = at;
        at += (uint32_t)sprintf(ids + at, "%u", i);
    }
    off[n] = at;
    check(flat, shoal_index_add(flat, n, ids, off, base, dim), "flat add");
    int32_t *truth = malloc((size_t)nq * k * sizeof *truth);
    uint32_t labels[64];
    float d[64];
    for (uint32_t i = 0; i < nq; i++) {
        int got = shoal_index_search(flat, q + (size_t)i * dim, dim, k, NULL, labels, d);
        check(flat, got, "flat search");
        for (uint32_t j = 0; j < k; j++) {
            const char *id;
            int len = (int)j < got ? shoal_index_label_id(flat, labels[j], &id) : -1;
            truth[(size_t)i * k + j] = len > 0 ? (int32_t)row_of(id, len) : -1;
        }
    }
    shoal_index_free(flat);
    free(ids);
    free(off);
    return truth;
}

static double recall(const int32_t *truth, const int32_t *got, uint32_t nq, uint32_t k) {
    double hits = 0;
    for (uint32_t i = 0; i < nq; i++)
        for (uint32_t j = 0; j < k; j++)
            for (uint32_t t = 0; t < k; t++)
                if (got[(size_t)i * k + j] >= 0 && got[(size_t)i * k + j] == truth[(size_t)i * k + t]) {
                    hits++;
                    break;
                }
    return hits / ((double)nq * k);
}

/* Best of runs passes; got[nq * k] the rows found. */
static double search_collection(shoal_collection *c, const float *q, uint32_t nq, uint32_t dim,
                                uint32_t k, const shoal_search_params *sp, uint32_t runs, int32_t *got) {
    shoal_hit hits[64];
    float d[64];
    double best = 1e300;
    for (uint32_t r = 0; r < runs; r++) {
        double t0 = now_seconds();
        for (uint32_t i = 0; i < nq; i++) {
            int n = shoal_collection_search(c, q + (size_t)i * dim, dim, k, sp, NULL, NULL, hits, d);
            ccheck(c, n, "search");
            if (r + 1 < runs) continue;
            for (uint32_t j = 0; j < k; j++) {
                const char *id;
                int len = (int)j < n ? shoal_collection_hit_id(c, hits[j], &id) : -1;
                got[(size_t)i * k + j] = len > 0 ? (int32_t)row_of(id, len) : -1;
            }
        }
        double s = now_seconds() - t0;
        if (s < best) best = s;
    }
    return best;
}

static double search_index(shoal_index *x, const float *q, uint32_t nq, uint32_t dim, uint32_t k,
                           const shoal_search_params *sp, uint32_t runs, int32_t *got) {
    uint32_t labels[64];
    float d[64];
    double best = 1e300;
    for (uint32_t r = 0; r < runs; r++) {
        double t0 = now_seconds();
        for (uint32_t i = 0; i < nq; i++) {
            int n = shoal_index_search(x, q + (size_t)i * dim, dim, k, sp, labels, d);
            check(x, n, "search");
            if (r + 1 < runs) continue;
            for (uint32_t j = 0; j < k; j++) {
                const char *id;
                int len = (int)j < n ? shoal_index_label_id(x, labels[j], &id) : -1;
                got[(size_t)i * k + j] = len > 0 ? (int32_t)row_of(id, len) : -1;
            }
        }
        double s = now_seconds() - t0;
        if (s < best) best = s;
    }
    return best;
}

/* ids "<first + i>" for n rows. */
typedef struct idbuf {
    char *bytes;
    uint32_t *off;
} idbuf;

static idbuf make_ids(uint32_t first, uint32_t n) {
    idbuf b = {malloc((size_t)n * 12 + 1), malloc(((size_t)n + 1) * sizeof(uint32_t))};
    uint32_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        b.off[i] = at;
        at += (uint32_t)sprintf(b.bytes + at, "%u", first + i);
    }
    b.off[n] = at;
    return b;
}

static void upsert_rows(shoal_collection *c, const float *rows, uint32_t first_id, uint32_t n,
                        uint32_t dim) {
    idbuf ids = make_ids(first_id, n);
    shoal_records r;
    memset(&r, 0, sizeof r);
    r.n = n;
    r.id_bytes = ids.bytes;
    r.id_offsets = ids.off;
    r.vectors = rows;
    r.dim = dim;
    ccheck(c, shoal_collection_upsert(c, &r), "upsert");
    free(ids.bytes);
    free(ids.off);
}

/* The version's blocks: digests (36-byte CIDs) and sizes; returns the count. */
typedef struct version {
    uint8_t (*cids)[SHOAL_CID_BYTES];
    size_t *sizes;
    uint32_t n;
    uint64_t bytes;
} version;

static version commit(shoal_collection *c, double *seconds) {
    uint8_t root[SHOAL_CID_BYTES];
    double t0 = now_seconds();
    int n = shoal_collection_commit(c, 0, root);
    if (seconds) *seconds = now_seconds() - t0;
    ccheck(c, n, "commit");
    version v = {malloc((size_t)n * SHOAL_CID_BYTES), malloc((size_t)n * sizeof(size_t)), (uint32_t)n, 0};
    for (int i = 0; i < n; i++) {
        shoal_block_ref b;
        ccheck(c, shoal_collection_block(c, (uint32_t)i, &b), "block");
        memcpy(v.cids[i], b.cid, SHOAL_CID_BYTES);
        v.sizes[i] = b.size;
        v.bytes += b.size;
    }
    return v;
}

static uint64_t new_bytes(const version *old, const version *fresh, uint32_t *blocks) {
    uint64_t n = 0;
    *blocks = 0;
    for (uint32_t i = 0; i < fresh->n; i++) {
        int seen = 0;
        for (uint32_t j = 0; j < old->n && !seen; j++) seen = !memcmp(old->cids[j], fresh->cids[i], SHOAL_CID_BYTES);
        if (!seen) {
            n += fresh->sizes[i];
            ++*blocks;
        }
    }
    return n;
}

static void free_version(version *v) {
    free(v->cids);
    free(v->sizes);
}

static void fashion(const char *data, uint32_t flushes, uint32_t nq, uint32_t k, const uint32_t *efs,
                    uint32_t n_efs, uint32_t runs) {
    uint32_t dim, qdim, n = 60000;
    float *base = read_fvecs(data, "fashion-mnist-base.fvecs", n, &dim);
    float *tests = read_fvecs(data, "fashion-mnist-query.fvecs", nq + n / 100, &qdim);
    int32_t *truth = exact_truth(base, n, dim, tests, nq, k);
    int32_t *got = malloc((size_t)nq * k * sizeof *got);

    /* The reference: one HNSW index. */
    shoal_params p;
    shoal_params_init(&p);
    p.dim = dim;
    p.kind = SHOAL_KIND_HNSW;
    p.seed = 1;
    shoal_index *one;
    check(NULL, shoal_index_new(&p, &one), "hnsw");
    idbuf ids = make_ids(0, n);
    double t0 = now_seconds();
    check(one, shoal_index_add(one, n, ids.bytes, ids.off, base, dim), "hnsw add");
    double build_one = now_seconds() - t0;
    printf("{\"part\":\"fashion\",\"what\":\"one hnsw\",\"build_s\":%.3f,\"memory_mb\":%.1f}\n",
           build_one, shoal_index_memory_bytes(one) / 1048576.0);
    for (uint32_t e = 0; e < n_efs; e++) {
        shoal_search_params sp;
        shoal_search_params_init(&sp);
        sp.ef = efs[e];
        double s = search_index(one, tests, nq, dim, k, &sp, runs, got);
        printf("{\"part\":\"fashion\",\"what\":\"one hnsw\",\"ef\":%u,\"recall\":%.4f,\"qps\":%.0f}\n",
               efs[e], recall(truth, got, nq, k), nq / s);
    }
    shoal_index_free(one);
    free(ids.bytes);
    free(ids.off);

    /* The collection, written by `flushes` flushes. */
    shoal_collection_params cp;
    shoal_collection_params_init(&cp);
    cp.small.dim = dim;
    cp.small.seed = 1;
    cp.flush_records = n / flushes;
    cp.merge_factor = 64;
    shoal_collection *c;
    ccheck(NULL, shoal_collection_new(&cp, &c), "collection");
    double flush_s = 0, upsert_s = 0, commit_s = 0, flush_max = 0;
    for (uint32_t f = 0; f < flushes; f++) {
        uint32_t at = f * (n / flushes);
        t0 = now_seconds();
        upsert_rows(c, base + (size_t)at * dim, at, n / flushes, dim);
        upsert_s += now_seconds() - t0;
        t0 = now_seconds();
        ccheck(c, shoal_collection_flush(c), "flush");
        double fs = now_seconds() - t0;
        flush_s += fs;
        if (fs > flush_max) flush_max = fs;
        double cs;
        version v = commit(c, &cs);
        commit_s += cs;
        free_version(&v);
    }
    shoal_collection_stats st;
    shoal_collection_stats_get(c, &st);
    printf("{\"part\":\"fashion\",\"what\":\"collection\",\"segments\":%u,\"upsert_s\":%.3f,"
           "\"flush_mean_s\":%.4f,\"flush_max_s\":%.4f,\"commit_mean_s\":%.4f,\"memory_mb\":%.1f,"
           "\"segment_mb\":%.1f}\n",
           st.segments, upsert_s, flush_s / flushes, flush_max, commit_s / flushes,
           st.memory_bytes / 1048576.0, st.segment_bytes / 1048576.0);
    for (int phase = 0; phase < 2; phase++) {
        if (phase == 1) {
            t0 = now_seconds();
            ccheck(c, shoal_collection_compact(c, 1, 0), "compact");
            double cs = now_seconds() - t0;
            shoal_collection_stats_get(c, &st);
            printf("{\"part\":\"fashion\",\"what\":\"compaction\",\"seconds\":%.3f,\"segments\":%u,"
                   "\"memory_mb\":%.1f}\n", cs, st.segments, st.memory_bytes / 1048576.0);
        }
        for (uint32_t e = 0; e < n_efs; e++) {
            shoal_search_params sp;
            shoal_search_params_init(&sp);
            sp.ef = efs[e];
            double s = search_collection(c, tests, nq, dim, k, &sp, runs, got);
            printf("{\"part\":\"fashion\",\"what\":\"collection %s\",\"segments\":%u,\"ef\":%u,"
                   "\"recall\":%.4f,\"qps\":%.0f}\n",
                   phase ? "compacted" : "of flushes", st.segments, efs[e],
                   recall(truth, got, nq, k), nq / s);
        }
    }

    /* Incremental save after +1% new records, and after 1% replaced ones. */
    version before = commit(c, NULL);
    uint32_t extra = n / 100;
    upsert_rows(c, tests + (size_t)nq * dim, 1000000, extra, dim);
    t0 = now_seconds();
    ccheck(c, shoal_collection_flush(c), "flush");
    double fs = now_seconds() - t0;
    version after = commit(c, NULL);
    uint32_t nb;
    uint64_t fresh = new_bytes(&before, &after, &nb);
    printf("{\"part\":\"incremental\",\"what\":\"+1%% new records\",\"records\":%u,\"flush_s\":%.4f,"
           "\"version_bytes\":%llu,\"new_bytes\":%llu,\"new_blocks\":%u,\"ratio\":%.5f}\n",
           extra, fs, (unsigned long long)after.bytes, (unsigned long long)fresh, nb,
           (double)fresh / (double)after.bytes);
    upsert_rows(c, tests + (size_t)nq * dim, 0, extra, dim); /* replaces rows 0..extra-1 */
    ccheck(c, shoal_collection_flush(c), "flush");
    version third = commit(c, NULL);
    fresh = new_bytes(&after, &third, &nb);
    printf("{\"part\":\"incremental\",\"what\":\"1%% replaced\",\"records\":%u,\"version_bytes\":%llu,"
           "\"new_bytes\":%llu,\"new_blocks\":%u,\"ratio\":%.5f}\n",
           extra, (unsigned long long)third.bytes, (unsigned long long)fresh, nb,
           (double)fresh / (double)third.bytes);
    free_version(&before);
    free_version(&after);
    free_version(&third);
    shoal_collection_free(c);
    free(base);
    free(tests);
    free(truth);
    free(got);
}

/* splitmix64 floats in [-1, 1). */
static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float unit(uint64_t *s) { return (float)(mix(s) >> 40) / 16777216.0f * 2.0f - 1.0f; }

/* Writes the committed version's blocks into dir/blocks/<cid> (the CLI's
 * collection layout) and its root into dir/<root_name>. */
static void write_version(shoal_collection *c, const char *dir, const char *root_name) {
    uint8_t root[SHOAL_CID_BYTES];
    int n = shoal_collection_commit(c, 0, root);
    ccheck(c, n, "commit");
    char path[2048], text[SHOAL_CID_SIZE];
    for (int i = 0; i < n; i++) {
        shoal_block_ref b;
        ccheck(c, shoal_collection_block(c, (uint32_t)i, &b), "block");
        if (!b.bytes) continue;
        shoal_cid_format(b.cid, text);
        snprintf(path, sizeof path, "%s/blocks/%s", dir, text);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(b.bytes, 1, b.size, f) != b.size || fclose(f)) die("cannot write", path);
    }
    shoal_cid_format(root, text);
    snprintf(path, sizeof path, "%s/%s", dir, root_name);
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "%s\n", text) < 0 || fclose(f)) die("cannot write", path);
    printf("{\"part\":\"big\",\"what\":\"wrote %s\",\"root\":\"%s\",\"blocks\":%d}\n", root_name, text, n);
}

static const char *big_dir = NULL;

static void big(uint32_t n, uint32_t nq, uint32_t k) {
    const uint32_t dim = 96, clusters = 1000, chunk = n / 10;
    uint64_t s = 12345;
    float *centers = malloc((size_t)clusters * dim * sizeof *centers);
    for (size_t i = 0; i < (size_t)clusters * dim; i++) centers[i] = unit(&s);
    float *rows = malloc((size_t)chunk * dim * sizeof *rows);
    float *q = malloc((size_t)nq * dim * sizeof *q);
    /* Row i is drawn from its own stream, so any chunk can be regenerated. */
#define ROW(i, out)                                                                   \
    do {                                                                              \
        uint64_t rs = 0x5eedull * ((uint64_t)(i) + 1);                                \
        const float *cc = centers + (size_t)(mix(&rs) % clusters) * dim;              \
        for (uint32_t j = 0; j < dim; j++) (out)[j] = cc[j] + 0.15f * (unit(&rs) + unit(&rs)); \
    } while (0)
    for (uint32_t i = 0; i < nq; i++) ROW(n + i, q + (size_t)i * dim);

    shoal_collection_params cp;
    shoal_collection_params_init(&cp);
    cp.small.dim = dim;
    cp.large.ivf.nlist = 1024;
    cp.large.ivf.nprobe = 8; /* ~0.8% of the lists: what a remote first query fetches */
    /* Every flush of 10,000 records or more makes an IVF-PQ segment (the
     * core's floor for IVF), so the 1% added for the sync figure is one
     * too, as it would be in a collection published with PQ tiers. */
    cp.large_from = 10000;
    cp.flush_records = chunk;
    shoal_collection *c;
    ccheck(NULL, shoal_collection_new(&cp, &c), "collection");
    double rss0 = rss_mb(), flush_s = 0, t0;
    for (uint32_t f = 0; f < 10; f++) {
        for (uint32_t i = 0; i < chunk; i++) ROW(f * chunk + i, rows + (size_t)i * dim);
        upsert_rows(c, rows, f * chunk, chunk, dim);
        t0 = now_seconds();
        ccheck(c, shoal_collection_flush(c), "flush");
        flush_s += now_seconds() - t0;
    }
    shoal_collection_stats st;
    shoal_collection_stats_get(c, &st);
    /* Exact truth, scanning the rows chunk by chunk with a flat index each. */
    int32_t *truth = malloc((size_t)nq * k * sizeof *truth);
    float *best = malloc((size_t)nq * k * sizeof *best);
    for (size_t i = 0; i < (size_t)nq * k; i++) {
        truth[i] = -1;
        best[i] = 1e30f;
    }
    for (uint32_t f = 0; f < 10; f++) {
        for (uint32_t i = 0; i < chunk; i++) ROW(f * chunk + i, rows + (size_t)i * dim);
        for (uint32_t qi = 0; qi < nq; qi++)
            for (uint32_t i = 0; i < chunk; i++) {
                float d = shoal_distance(SHOAL_METRIC_L2, SHOAL_SIMD_AUTO, q + (size_t)qi * dim,
                                         rows + (size_t)i * dim, dim);
                float *b = best + (size_t)qi * k;
                int32_t *t = truth + (size_t)qi * k;
                if (d >= b[k - 1]) continue;
                uint32_t at = k - 1;
                while (at > 0 && b[at - 1] > d) {
                    b[at] = b[at - 1];
                    t[at] = t[at - 1];
                    at--;
                }
                b[at] = d;
                t[at] = (int32_t)(f * chunk + i);
            }
    }
    int32_t *got = malloc((size_t)nq * k * sizeof *got);
    double sec = search_collection(c, q, nq, dim, k, NULL, 1, got);
    printf("{\"part\":\"big\",\"what\":\"10 ivf-pq segments\",\"records\":%u,\"dim\":%u,"
           "\"segments\":%u,\"memory_mb\":%.1f,\"rss_growth_mb\":%.1f,\"segment_mb\":%.1f,"
           "\"flush_mean_s\":%.2f,\"recall\":%.4f,\"qps\":%.0f}\n",
           n, dim, st.segments, st.memory_bytes / 1048576.0, rss_mb() - rss0,
           st.segment_bytes / 1048576.0, flush_s / 10, recall(truth, got, nq, k), nq / sec);
    t0 = now_seconds();
    ccheck(c, shoal_collection_compact(c, 1, 0), "compact");
    double cs = now_seconds() - t0;
    shoal_collection_stats_get(c, &st);
    sec = search_collection(c, q, nq, dim, k, NULL, 1, got);
    printf("{\"part\":\"big\",\"what\":\"compacted\",\"records\":%u,\"segments\":%u,"
           "\"compaction_s\":%.2f,\"memory_mb\":%.1f,\"rss_mb\":%.1f,\"segment_mb\":%.1f,"
           "\"recall\":%.4f,\"qps\":%.0f}\n",
           n, st.segments, cs, st.memory_bytes / 1048576.0, rss_mb(), st.segment_bytes / 1048576.0,
           recall(truth, got, nq, k), nq / sec);
    if (big_dir) {
        /* Version 1: the compacted collection; version 2: 1% more records. */
        write_version(c, big_dir, "root");
        uint32_t extra = n / 100;
        for (uint32_t i = 0; i < extra && i < chunk; i++) ROW(n + nq + i, rows + (size_t)i * dim);
        upsert_rows(c, rows, n + nq, extra < chunk ? extra : chunk, dim);
        ccheck(c, shoal_collection_flush(c), "flush");
        write_version(c, big_dir, "root2");
        /* The queries, for the remote benchmark. */
        char path[2048];
        snprintf(path, sizeof path, "%s/queries.f32", big_dir);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(q, sizeof *q, (size_t)nq * dim, f) != (size_t)nq * dim || fclose(f)) die("cannot write", path);
    }
    shoal_collection_free(c);
    free(centers);
    free(rows);
    free(q);
    free(truth);
    free(best);
    free(got);
}

int main(int argc, char **argv) {
    const char *data = "bench/data";
    uint32_t flushes = 10, nq = 1000, k = 10, runs = 2, bign = 1000000, n_efs = 0, skip_fashion = 0;
    uint32_t efs[MAX_EFS];
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--data")) data = argv[i + 1];
        else if (!strcmp(argv[i], "--flushes")) flushes = parse_u32(argv[i], argv[i + 1]);
        else if (!strcmp(argv[i], "--queries")) nq = parse_u32(argv[i], argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = parse_u32(argv[i], argv[i + 1]);
        else if (!strcmp(argv[i], "--big")) bign = parse_u32(argv[i], argv[i + 1]);
        else if (!strcmp(argv[i], "--big-dir")) big_dir = argv[i + 1];
        else if (!strcmp(argv[i], "--skip-fashion")) skip_fashion = parse_u32(argv[i], argv[i + 1]);
        else if (!strcmp(argv[i], "--efs")) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", argv[i + 1]);
            for (char *t = strtok(buf, ","); t && n_efs < MAX_EFS; t = strtok(NULL, ","))
                efs[n_efs++] = parse_u32("--efs", t);
        } else die("unknown option", argv[i]);
    }
    if (!n_efs) {
        efs[n_efs++] = 64;
        efs[n_efs++] = 128;
    }
    if (!flushes || 60000 % flushes) die("--flushes must divide 60000", NULL);
    if (!skip_fashion) fashion(data, flushes, nq, k, efs, n_efs, runs);
    if (bign) big(bign, 200, k);
    return 0;
}
