/*
 * filter_native.c -- filtered search on Fashion-MNIST (issue 9): recall@k
 * against exact filtered truth and single-thread QPS of three ways to
 * filter, for HNSW, IVF-Flat and IVF-PQ 4-bit + rerank.  bench/filter/run.mjs
 * runs it (`make bench-filter`); bench/README.md, "Filters", has the method.
 *
 * Records: row i of fashion-mnist-base.fvecs, id "i", metadata
 *   {"category": <image label 0..9>, "price": splitmix64(i) % 1000}
 * where splitmix64 is the first output of Vigna's SplitMix64 seeded with i
 * (z = i + 0x9e3779b97f4a7c15; z = (z ^ z>>30) * 0xbf58476d1ce4e5b9;
 * z = (z ^ z>>27) * 0x94d049bb133111eb; z ^ z>>31).  The labels come from
 * fashion-mnist-base.labels (bench/hnsw/prepare_data.py).  Metadata goes in
 * as JSON text through shoal_index_upsert.
 *
 * Filters (fixed, independent of the query): FILTERS below.  Their measured
 * selectivity is counted with shoal_filter_matches over every record, and
 * checked against the same predicate evaluated here in C on the raw fields.
 *
 * Truth: a flat index holding the same records, searched with the same
 * compiled filter (shoal_search_params.where); cross-checked on the first 100
 * queries against the flat index searched with a bitmap of the matches
 * (identical results required).
 *
 * Paths, per kind and filter (k = --k, default ef / nprobe unless swept):
 *   where   shoal_search_params.where = shoal_filter_compile(filter JSON),
 *           compiled and freed per query inside the timed loop (what one
 *           user call costs)
 *   post    unfiltered search for k' = ceil(k / selectivity) (at most 65536;
 *           HNSW ef = max(ef, k')), then the first k results that pass
 *           shoal_filter_matches on shoal_index_metadata (filter compiled
 *           per query as well)
 *   bitmap  shoal_search_params.filter_bitmap of the matching labels, built
 *           once per index before timing
 * plus the unfiltered search (path "none") against unfiltered truth, and the
 * `where` and bitmap paths at the further ef / nprobe values of --efs /
 * --nprobes (HNSW always; IVF where the default `where` recall is below
 * --sweep-below, 0.99).
 *
 * Timing: a 200-query warm-up, then --runs passes (one query per call, one
 * thread) of every path of a (kind, filter) in turn, interleaved so a burst
 * of load on this shared machine spoils one pass of each path rather than
 * all passes of one; QPS = queries / median pass time.
 * Recall@k: a returned record counts if it is among the exact filtered
 * top-k or its exact distance (shoal_distance) is at most the k-th exact
 * distance (ties at the k-th place count), each record once; divided by the
 * truth's result count.  Results that fail the filter are counted
 * ("violations", must be 0).  For the filters on category, recall and the
 * mean time per search are also split by the query's own label (from
 * fashion-mnist-query.labels): queries of that class, whose neighbours
 * mostly pass, and the others, whose nearest matches lie in another
 * cluster.
 *
 * Output: JSON lines on stdout (types run, filter, build, search), a text
 * table on stderr.  --out DIR receives truth-<slug>.i32 / .f32 (rows and
 * distances, queries x k, -1 / +inf padded), hnsw-where-<slug>.i32 (the
 * HNSW `where` results, for the JS program to compare) and filters.json.
 *
 * Uses only the public header; links build/libshoal.a.
 */
#define _POSIX_C_SOURCE 200809L
#define BENCH_PROGRAM "filter_native"
#include <math.h>

#include "bench_util.h"

#define MAX_LIST 16
#define K_PRIME_MAX SHOAL_K_MAX
#define DEFAULT_EF 64u  /* shoal_hnsw_params.ef_search's default */
#define ANY_CATEGORY 255u

typedef struct filter_def {
    const char *name, *slug, *json;
    uint32_t category;    /* ANY_CATEGORY or the label it requires */
    uint32_t price_below; /* price < this; 1000 = any */
} filter_def;

static const filter_def FILTERS[] = {
    {"50%", "s50", "{\"price\":{\"$lt\":500}}", ANY_CATEGORY, 500},
    {"10%", "s10", "{\"category\":3}", 3, 1000},
    {"1%", "s1", "{\"category\":3,\"price\":{\"$lt\":100}}", 3, 100},
    {"0.1%", "s01", "{\"category\":3,\"price\":{\"$lt\":10}}", 3, 10},
};
#define NF (sizeof FILTERS / sizeof FILTERS[0])
#define SLOT_NONE NF /* truth slot of the unfiltered search */

enum { P_WHERE, P_POST, P_BITMAP, NPATHS, P_NONE = NPATHS };
static const char *const PATH_NAMES[] = {"where", "post", "bitmap", "none"};

typedef struct bench_args {
    const char *data, *out, *kinds;
    uint32_t base, queries, k, runs, M, efc, nlist, pq_m, rerank;
    uint64_t seed;
    double sweep_below;
    uint32_t efs[MAX_LIST], n_efs;
    uint32_t nprobes[MAX_LIST], n_nprobes;
} bench_args;

typedef struct bench {
    bench_args a;
    uint32_t dim;
    float *base, *queries;
    uint8_t *category;
    uint32_t *price;
    uint8_t *query_category; /* the test images' labels, or NULL */
    char *id_bytes, *meta;
    uint32_t *id_offsets, *meta_offsets;
    uint32_t matches[NF];
    double selectivity[NF];
    /* per slot (filters, then unfiltered): rows, distances, counts */
    int32_t *truth_rows[NF + 1];
    float *truth_dist[NF + 1];
    int *truth_count[NF + 1];
    /* scratch */
    uint32_t *labels;   /* queries x k */
    int *counts;        /* queries */
    uint32_t *big_labels; /* K_PRIME_MAX */
    float *big_dist;
    double *query_s;      /* queries: seconds of each search in the last pass */
} bench;

/* One search configuration: the kind's knob (0 = the index's default). */
typedef struct search_cfg {
    int hnsw;
    uint32_t ef, nprobe;
} search_cfg;

static uint64_t splitmix64(uint64_t x)
{
    uint64_t z = x + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int passes(const bench *b, const filter_def *f, uint32_t row)
{
    return (f->category == ANY_CATEGORY || b->category[row] == f->category) &&
           b->price[row] < f->price_below;
}

static uint32_t parse_list(const char *name, const char *text, uint32_t *out)
{
    char buf[512];
    uint32_t n = 0;
    snprintf(buf, sizeof buf, "%s", text);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (n == MAX_LIST) die("list too long:", name);
        out[n++] = parse_u32(name, tok);
    }
    if (!n) die("empty list for", name);
    return n;
}

static void parse_args(int argc, char **argv, bench_args *a)
{
    *a = (bench_args){.data = "bench/data", .out = "bench/results/filter",
                      .kinds = "hnsw,ivf-flat,ivf-pq4", .base = 60000, .queries = 1000, .k = 10,
                      .runs = 3, .M = 16, .efc = 200, .nlist = 256, .pq_m = 392, .rerank = 20,
                      .seed = 1, .sweep_below = 0.99};
    /* The first value of each list is the default the index would use
     * (ef_search 64, nprobe nlist / 16); the others are the sweep. */
    a->n_efs = parse_list("--efs", "64,128,256", a->efs);
    a->n_nprobes = parse_list("--nprobes", "16,32,64", a->nprobes);
    for (int i = 1; i < argc; i += 2) {
        const char *key = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val) die("missing value for", key);
        if (!strcmp(key, "--data")) a->data = val;
        else if (!strcmp(key, "--out")) a->out = val;
        else if (!strcmp(key, "--kinds")) a->kinds = val;
        else if (!strcmp(key, "--base")) a->base = parse_u32(key, val);
        else if (!strcmp(key, "--queries")) a->queries = parse_u32(key, val);
        else if (!strcmp(key, "--k")) a->k = parse_u32(key, val);
        else if (!strcmp(key, "--runs")) a->runs = parse_u32(key, val);
        else if (!strcmp(key, "--M")) a->M = parse_u32(key, val);
        else if (!strcmp(key, "--efc")) a->efc = parse_u32(key, val);
        else if (!strcmp(key, "--nlist")) a->nlist = parse_u32(key, val);
        else if (!strcmp(key, "--pq-m")) a->pq_m = parse_u32(key, val);
        else if (!strcmp(key, "--rerank")) a->rerank = parse_u32(key, val);
        else if (!strcmp(key, "--seed")) a->seed = parse_u32(key, val);
        else if (!strcmp(key, "--sweep-below")) a->sweep_below = strtod(val, NULL);
        else if (!strcmp(key, "--efs")) a->n_efs = parse_list(key, val, a->efs);
        else if (!strcmp(key, "--nprobes")) a->n_nprobes = parse_list(key, val, a->nprobes);
        else die("unknown option", key);
    }
    if (!a->k || !a->runs || !a->base || !a->queries || a->k > 1000) die("bad counts", NULL);
    if (a->efs[0] != DEFAULT_EF) die("--efs must start with the default ef_search", "64");
    if (a->nprobes[0] != (a->nlist / 16 ? a->nlist / 16 : 1))
        die("--nprobes must start with the default nprobe", "nlist / 16");
}

/* ------------------------------------------------------------------ data */

static void load_data(bench *b)
{
    bench_args *a = &b->a;
    uint32_t qdim;
    b->base = read_fvecs(a->data, "fashion-mnist-base.fvecs", a->base, &b->dim);
    b->queries = read_fvecs(a->data, "fashion-mnist-query.fvecs", a->queries, &qdim);
    if (qdim != b->dim) die("base and query dimensions differ", NULL);

    char path[1024];
    snprintf(path, sizeof path, "%s/fashion-mnist-base.labels", a->data);
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open (run bench/hnsw/prepare_data.py)", path);
    b->category = malloc(a->base);
    b->price = malloc((size_t)a->base * sizeof *b->price);
    if (!b->category || !b->price) die("out of memory", NULL);
    if (fread(b->category, 1, a->base, f) != a->base) die("too few labels in", path);
    fclose(f);
    snprintf(path, sizeof path, "%s/fashion-mnist-query.labels", a->data);
    if ((f = fopen(path, "rb"))) {
        b->query_category = malloc(a->queries);
        if (!b->query_category) die("out of memory", NULL);
        if (fread(b->query_category, 1, a->queries, f) != a->queries) die("too few labels in", path);
        fclose(f);
    }
    for (uint32_t i = 0; i < a->base; i++) {
        if (b->category[i] > 9) die("a label is not 0..9 in", path);
        b->price[i] = (uint32_t)(splitmix64(i) % 1000u);
    }

    /* Ids "0".."n-1" and metadata JSON, each one byte buffer plus offsets. */
    b->id_offsets = malloc(((size_t)a->base + 1) * sizeof *b->id_offsets);
    b->meta_offsets = malloc(((size_t)a->base + 1) * sizeof *b->meta_offsets);
    b->id_bytes = malloc((size_t)a->base * 11);
    b->meta = malloc((size_t)a->base * 40);
    if (!b->id_offsets || !b->meta_offsets || !b->id_bytes || !b->meta) die("out of memory", NULL);
    b->id_offsets[0] = b->meta_offsets[0] = 0;
    for (uint32_t i = 0; i < a->base; i++) {
        b->id_offsets[i + 1] =
            b->id_offsets[i] + (uint32_t)sprintf(b->id_bytes + b->id_offsets[i], "%u", i);
        b->meta_offsets[i + 1] =
            b->meta_offsets[i] + (uint32_t)sprintf(b->meta + b->meta_offsets[i],
                                                   "{\"category\":%u,\"price\":%u}",
                                                   (unsigned)b->category[i], b->price[i]);
    }

    size_t qk = (size_t)a->queries * a->k;
    b->labels = malloc(qk * sizeof *b->labels);
    b->counts = malloc((size_t)a->queries * sizeof *b->counts);
    b->big_labels = malloc((size_t)K_PRIME_MAX * sizeof *b->big_labels);
    b->big_dist = malloc((size_t)K_PRIME_MAX * sizeof *b->big_dist);
    b->query_s = malloc((size_t)a->queries * sizeof *b->query_s);
    if (!b->labels || !b->counts || !b->big_labels || !b->big_dist || !b->query_s)
        die("out of memory", NULL);
}

static shoal_filter *compile(const filter_def *f)
{
    shoal_filter *out;
    char msg[256];
    int rc = shoal_filter_compile(f->json, strlen(f->json), NULL, &out, msg, sizeof msg);
    if (rc < 0) {
        printf("{\"type\":\"error\",\"library\":\"shoal-native\",\"error\":\"filter %s: %s\"}\n",
               f->name, msg);
        die("shoal_filter_compile", msg);
    }
    return out;
}

/* The index's records (train first for IVF); returns build seconds. */
static shoal_index *build_index(bench *b, const shoal_params *params, double *train_s,
                                double *add_s)
{
    bench_args *a = &b->a;
    shoal_index *index = NULL;
    double t0 = now_seconds();
    check(NULL, shoal_index_new(params, &index), "shoal_index_new");
    if (params->kind == SHOAL_KIND_IVF)
        check(index, shoal_index_train(index, a->base, b->base, b->dim), "shoal_index_train");
    double t1 = now_seconds();
    shoal_records rec;
    memset(&rec, 0, sizeof rec);
    rec.n = a->base;
    rec.id_bytes = b->id_bytes;
    rec.id_offsets = b->id_offsets;
    rec.vectors = b->base;
    rec.dim = b->dim;
    rec.metadata = b->meta;
    rec.metadata_offsets = b->meta_offsets;
    int rc = shoal_index_upsert(index, &rec);
    check(index, rc, "shoal_index_upsert");
    if ((uint32_t)rc != a->base) die("upsert wrote fewer records than given", NULL);
    *train_s = t1 - t0;
    *add_s = now_seconds() - t1;
    return index;
}

/* Base row of every label (ids are "<row>"). */
static int32_t *rows_of_labels(shoal_index *index)
{
    uint32_t bound = shoal_index_label_bound(index);
    int32_t *rows = malloc((size_t)bound * sizeof *rows);
    if (!rows) die("out of memory", NULL);
    for (uint32_t l = 0; l < bound; l++) {
        const char *id;
        int len = shoal_index_label_id(index, l, &id);
        rows[l] = -1;
        if (len < 0) continue;
        char text[16];
        snprintf(text, sizeof text, "%.*s", len, id);
        rows[l] = (int32_t)strtol(text, NULL, 10);
    }
    return rows;
}

/* Bitmap of the labels whose metadata passes f. */
static uint8_t *bitmap_of(shoal_index *index, const shoal_filter *f, uint32_t *bits)
{
    uint32_t bound = shoal_index_label_bound(index);
    uint8_t *bm = calloc((size_t)bound / 8 + 1, 1);
    if (!bm) die("out of memory", NULL);
    for (uint32_t l = 0; l < bound; l++) {
        const uint8_t *meta;
        int len = shoal_index_metadata(index, l, &meta);
        if (len >= 0 && shoal_filter_matches(f, meta, (size_t)len))
            bm[l >> 3] |= (uint8_t)(1u << (l & 7));
    }
    *bits = bound;
    return bm;
}

/* ----------------------------------------------------------------- search */

typedef struct path_ctx {
    shoal_index *index;
    const filter_def *f;
    const uint8_t *bitmap;
    uint32_t bits;
    uint32_t k_prime;
    search_cfg cfg;
} path_ctx;

/* One timed pass of a path over every query; results in b->labels/counts. */
static double timed_pass(bench *b, const path_ctx *c, int path)
{
    const bench_args *a = &b->a;
    const uint32_t k = a->k, dim = b->dim;
    shoal_search_params sp;
    shoal_search_params_init(&sp);
    sp.ef = c->cfg.hnsw ? c->cfg.ef : 0;
    sp.nprobe = c->cfg.hnsw ? 0 : c->cfg.nprobe;
    if (path == P_BITMAP) {
        sp.filter_bitmap = c->bitmap;
        sp.filter_bitmap_bits = c->bits;
    }
    if (path == P_POST && c->cfg.hnsw) {
        uint32_t ef = c->cfg.ef ? c->cfg.ef : DEFAULT_EF;
        sp.ef = c->k_prime > ef ? c->k_prime : ef;
    }
    double t0 = now_seconds(), last = t0;
    for (uint32_t i = 0; i < a->queries; i++) {
        const float *q = b->queries + (size_t)i * dim;
        uint32_t *out = b->labels + (size_t)i * k;
        int n;
        if (path == P_WHERE) {
            shoal_filter *f = compile(c->f);
            sp.where = f;
            n = shoal_index_search(c->index, q, dim, k, &sp, out, b->big_dist);
            sp.where = NULL;
            shoal_filter_free(f);
        } else if (path == P_POST) {
            shoal_filter *f = compile(c->f);
            int got = shoal_index_search(c->index, q, dim, c->k_prime, &sp, b->big_labels,
                                         b->big_dist);
            check(c->index, got, "shoal_index_search (post-filter)");
            n = 0;
            for (int j = 0; j < got && (uint32_t)n < k; j++) {
                const uint8_t *meta;
                int len = shoal_index_metadata(c->index, b->big_labels[j], &meta);
                if (len >= 0 && shoal_filter_matches(f, meta, (size_t)len))
                    out[n++] = b->big_labels[j];
            }
            shoal_filter_free(f);
        } else {
            n = shoal_index_search(c->index, q, dim, k, &sp, out, b->big_dist);
        }
        if (n < 0) check(c->index, n, "shoal_index_search");
        b->counts[i] = n;
        double t = now_seconds();
        b->query_s[i] = t - last;
        last = t;
    }
    return last - t0;
}

typedef struct quality {
    double recall;
    uint32_t short_queries; /* fewer than min(k, matches) results */
    uint32_t violations;    /* results that fail the filter */
    /* For a filter on category c, split by the query's own label: [0]
     * queries of class c, [1] the others (recall and mean ms per search in
     * the last pass); n[0] = 0 when not split. */
    uint32_t n[2];
    double class_recall[2], class_ms[2];
} quality;

static quality measure(const bench *b, const int32_t *row_of, uint32_t slot)
{
    const bench_args *a = &b->a;
    const uint32_t k = a->k;
    quality out;
    memset(&out, 0, sizeof out);
    uint64_t hits = 0, total = 0, ghits[2] = {0, 0}, gtotal[2] = {0, 0};
    double gsec[2] = {0.0, 0.0};
    uint32_t split = slot != SLOT_NONE && FILTERS[slot].category != ANY_CATEGORY && b->query_category;
    for (uint32_t q = 0; q < a->queries; q++) {
        const int32_t *truth = b->truth_rows[slot] + (size_t)q * k;
        const float *tdist = b->truth_dist[slot] + (size_t)q * k;
        int tc = b->truth_count[slot][q];
        int g = split && b->query_category[q] != FILTERS[slot].category;
        uint64_t before = hits;
        total += (uint64_t)tc;
        if (b->counts[q] < tc) out.short_queries++;
        if (!tc) continue; /* (no filter here matches fewer than k records) */
        float kth = tdist[tc - 1];
        const float *query = b->queries + (size_t)q * b->dim;
        for (int j = 0; j < b->counts[q]; j++) {
            int32_t row = row_of[b->labels[(size_t)q * k + j]];
            if (slot != SLOT_NONE && !passes(b, &FILTERS[slot], (uint32_t)row)) {
                out.violations++;
                continue;
            }
            int seen = 0;
            for (int i = 0; i < j && !seen; i++) seen = row_of[b->labels[(size_t)q * k + i]] == row;
            if (seen) continue;
            int hit = 0;
            for (int i = 0; i < tc && !hit; i++) hit = truth[i] == row;
            if (!hit)
                hit = shoal_distance(SHOAL_METRIC_L2, SHOAL_SIMD_AUTO, query,
                                     b->base + (size_t)row * b->dim, b->dim) <= kth;
            hits += (uint64_t)hit;
        }
        if (split) {
            ghits[g] += hits - before;
            gtotal[g] += (uint64_t)tc;
            gsec[g] += b->query_s[q];
            out.n[g]++;
        }
    }
    out.recall = total ? (double)hits / (double)total : 1.0;
    for (int g = 0; g < 2 && split; g++) {
        out.class_recall[g] = gtotal[g] ? (double)ghits[g] / (double)gtotal[g] : 1.0;
        out.class_ms[g] = out.n[g] ? gsec[g] / out.n[g] * 1e3 : 0.0;
    }
    return out;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double median(double *v, uint32_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ------------------------------------------------------------------ truth */

static void write_file(const char *dir, const char *name, const void *data, size_t bytes)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, bytes, f) != bytes || fclose(f))
        die("cannot write (does --out exist?)", path);
}

/* Rows and distances of the last pass's results into slot's truth. */
static void keep_truth(bench *b, const int32_t *row_of, uint32_t slot)
{
    const bench_args *a = &b->a;
    size_t qk = (size_t)a->queries * a->k;
    b->truth_rows[slot] = malloc(qk * sizeof(int32_t));
    b->truth_dist[slot] = malloc(qk * sizeof(float));
    b->truth_count[slot] = malloc((size_t)a->queries * sizeof(int));
    if (!b->truth_rows[slot] || !b->truth_dist[slot] || !b->truth_count[slot])
        die("out of memory", NULL);
    for (uint32_t q = 0; q < a->queries; q++) {
        b->truth_count[slot][q] = b->counts[q];
        for (uint32_t j = 0; j < a->k; j++) {
            size_t at = (size_t)q * a->k + j;
            if ((int)j < b->counts[q]) {
                int32_t row = row_of[b->labels[at]];
                b->truth_rows[slot][at] = row;
                b->truth_dist[slot][at] =
                    shoal_distance(SHOAL_METRIC_L2, SHOAL_SIMD_AUTO, b->queries + (size_t)q * b->dim,
                                   b->base + (size_t)row * b->dim, b->dim);
            } else {
                b->truth_rows[slot][at] = -1;
                b->truth_dist[slot][at] = INFINITY;
            }
        }
    }
    char name[64];
    const char *slug = slot == SLOT_NONE ? "none" : FILTERS[slot].slug;
    snprintf(name, sizeof name, "truth-%s.i32", slug);
    write_file(a->out, name, b->truth_rows[slot], qk * sizeof(int32_t));
    snprintf(name, sizeof name, "truth-%s.f32", slug);
    write_file(a->out, name, b->truth_dist[slot], qk * sizeof(float));
}

static void exact_truth(bench *b)
{
    bench_args *a = &b->a;
    shoal_params p;
    shoal_params_init(&p);
    p.dim = b->dim;
    p.metric = SHOAL_METRIC_L2;
    p.kind = SHOAL_KIND_FLAT;
    double train_s, add_s;
    shoal_index *flat = build_index(b, &p, &train_s, &add_s);
    int32_t *row_of = rows_of_labels(flat);

    char path[1024];
    snprintf(path, sizeof path, "%s/filters.json", a->out);
    FILE *fj = fopen(path, "w");
    if (!fj) die("cannot write (does --out exist?)", path);
    fprintf(fj, "[");

    for (uint32_t s = 0; s < NF; s++) {
        const filter_def *fd = &FILTERS[s];
        /* Selectivity: the core's evaluator over every record, checked
         * against the predicate computed here on the raw fields.  Also the
         * cost of one compile and of one evaluation. */
        shoal_filter *f = compile(fd);
        uint32_t bound = shoal_index_label_bound(flat), count = 0, direct = 0;
        double t0 = now_seconds();
        for (int rep = 0; rep < 5; rep++) {
            count = 0;
            for (uint32_t l = 0; l < bound; l++) {
                const uint8_t *meta;
                int len = shoal_index_metadata(flat, l, &meta);
                count += len >= 0 && shoal_filter_matches(f, meta, (size_t)len);
            }
        }
        double match_ns = (now_seconds() - t0) / (5.0 * bound) * 1e9;
        for (uint32_t r = 0; r < a->base; r++) direct += (uint32_t)passes(b, fd, r);
        if (count != direct) die("shoal_filter_matches disagrees with the raw fields for", fd->name);
        shoal_filter_free(f);
        t0 = now_seconds();
        for (int rep = 0; rep < 1000; rep++) shoal_filter_free(compile(fd));
        double compile_us = (now_seconds() - t0) / 1000.0 * 1e6;
        /* What the core's selectivity estimate sees for `where`: the
         * filter at SHOAL__FILTER_SAMPLE = 256 evenly spaced labels
         * (src/index/index.c, shoal__estimate_matches), replicated here to
         * explain the ef / nprobe the searches choose; a bitmap alone is
         * counted exactly instead. */
        uint32_t sampled = 0;
        for (uint32_t i = 0; i < 256; i++)
            sampled += (uint32_t)passes(b, fd, (uint32_t)((uint64_t)i * bound / 256));
        uint32_t estimate = (uint32_t)((uint64_t)sampled * a->base / 256);
        b->matches[s] = count;
        b->selectivity[s] = (double)count / (double)a->base;
        printf("{\"type\":\"filter\",\"name\":\"%s\",\"slug\":\"%s\",\"filter\":%s,\"matches\":%u,"
               "\"records\":%u,\"selectivity\":%.6f,\"compile_us\":%.3f,\"match_ns\":%.1f,"
               "\"sample_estimate\":%u}\n",
               fd->name, fd->slug, fd->json, count, a->base, b->selectivity[s], compile_us,
               match_ns, estimate);
        char category[16] = "null";
        if (fd->category != ANY_CATEGORY) snprintf(category, sizeof category, "%u", fd->category);
        fprintf(fj, "%s\n {\"name\":\"%s\",\"slug\":\"%s\",\"filter\":%s,\"category\":%s,"
                    "\"priceBelow\":%u,\"matches\":%u,\"selectivity\":%.6f}",
                s ? "," : "", fd->name, fd->slug, fd->json, category, fd->price_below, count,
                b->selectivity[s]);
        fflush(stdout);

        /* Truth with `where`, then the same with a bitmap: must agree. */
        path_ctx c = {flat, fd, NULL, 0, 0, {0, 0, 0}};
        double truth_s = timed_pass(b, &c, P_WHERE);
        keep_truth(b, row_of, s);
        quality qa = measure(b, row_of, s);
        if (qa.recall != 1.0 || qa.violations) die("flat truth fails its own check for", fd->name);
        f = compile(fd);
        c.bitmap = bitmap_of(flat, f, &c.bits);
        shoal_filter_free(f);
        uint32_t all = a->queries, checked = all < 100 ? all : 100;
        a->queries = checked; /* the first 100 queries: a check, not a measurement */
        timed_pass(b, &c, P_BITMAP);
        a->queries = all;
        for (uint32_t q = 0; q < checked; q++) {
            if (b->counts[q] != b->truth_count[s][q]) die("flat where and bitmap differ for", fd->name);
            for (int j = 0; j < b->counts[q]; j++)
                if (row_of[b->labels[(size_t)q * a->k + j]] != b->truth_rows[s][(size_t)q * a->k + j])
                    die("flat where and bitmap differ for", fd->name);
        }
        printf("{\"type\":\"truth\",\"filter\":\"%s\",\"flat_qps\":%.1f,\"short_queries\":%u}\n",
               fd->name, (double)a->queries / truth_s, qa.short_queries);
        fflush(stdout);
        free((void *)c.bitmap);
    }
    fprintf(fj, "\n]\n");
    if (fclose(fj)) die("cannot write", path);

    path_ctx c = {flat, NULL, NULL, 0, 0, {0, 0, 0}};
    timed_pass(b, &c, P_NONE);
    keep_truth(b, row_of, SLOT_NONE);
    free(row_of);
    shoal_index_free(flat);
}

/* ------------------------------------------------------------------ kinds */

static void emit_search(const bench *b, const char *kind, const char *filter, const char *path,
                        const search_cfg *cfg, uint32_t k_prime, const quality *qa,
                        double *seconds, uint32_t runs)
{
    char list[256];
    size_t at = 0;
    list[0] = '\0';
    for (uint32_t r = 0; r < runs && at < sizeof list - 24; r++)
        at += (size_t)snprintf(list + at, sizeof list - at, "%s%.1f", r ? "," : "",
                               (double)b->a.queries / seconds[r]);
    double med = median(seconds, runs);
    printf("{\"type\":\"search\",\"library\":\"shoal-native\",\"kind\":\"%s\",\"filter\":\"%s\","
           "\"path\":\"%s\",\"ef\":%u,\"nprobe\":%u,\"k\":%u,\"k_prime\":%u,\"queries\":%u,"
           "\"recall\":%.4f,\"qps\":%.1f,\"qps_runs\":[%s],\"short_queries\":%u,"
           "\"violations\":%u",
           kind, filter, path, cfg->hnsw ? (cfg->ef ? cfg->ef : DEFAULT_EF) : 0,
           cfg->hnsw ? 0 : (cfg->nprobe ? cfg->nprobe : b->a.nprobes[0]), b->a.k, k_prime,
           b->a.queries, qa->recall,
           (double)b->a.queries / med, list, qa->short_queries, qa->violations);
    if (qa->n[0] || qa->n[1])
        printf(",\"same_class\":{\"queries\":%u,\"recall\":%.4f,\"ms\":%.3f},"
               "\"other_class\":{\"queries\":%u,\"recall\":%.4f,\"ms\":%.3f}",
               qa->n[0], qa->class_recall[0], qa->class_ms[0], qa->n[1], qa->class_recall[1],
               qa->class_ms[1]);
    printf("}\n");
    fprintf(stderr, "  %-8s %-5s %-6s %s %4u  recall@%u %.4f  %8.1f QPS%s\n", kind, filter, path,
            cfg->hnsw ? "ef" : "np",
            cfg->hnsw ? (cfg->ef ? cfg->ef : DEFAULT_EF) : (cfg->nprobe ? cfg->nprobe : b->a.nprobes[0]),
            b->a.k, qa->recall, (double)b->a.queries / med,
            qa->violations ? "  VIOLATIONS" : "");
    fflush(stdout);
}

static void run_kind(bench *b, const char *kind)
{
    bench_args *a = &b->a;
    shoal_params p;
    shoal_params_init(&p);
    p.dim = b->dim;
    p.metric = SHOAL_METRIC_L2;
    p.seed = a->seed;
    int hnsw = !strcmp(kind, "hnsw");
    if (hnsw) {
        p.kind = SHOAL_KIND_HNSW;
        p.hnsw.M = a->M;
        p.hnsw.ef_construction = a->efc;
    } else if (!strcmp(kind, "ivf-flat") || !strcmp(kind, "ivf-pq4")) {
        p.kind = SHOAL_KIND_IVF;
        p.ivf.nlist = a->nlist;
        if (!strcmp(kind, "ivf-pq4")) {
            p.quantizer = SHOAL_QUANTIZER_PQ;
            p.ivf.pq_bits = 4;
            p.ivf.pq_m = a->pq_m;
            p.rerank = a->rerank;
        }
    } else {
        die("unknown kind (hnsw, ivf-flat, ivf-pq4)", kind);
    }
    double rss0 = rss_mb(), train_s, add_s;
    shoal_index *index = build_index(b, &p, &train_s, &add_s);
    double rss1 = rss_mb();
    shoal_stats stats;
    shoal_index_stats(index, &stats);
    printf("{\"type\":\"build\",\"library\":\"shoal-native\",\"kind\":\"%s\",\"params\":{\"M\":%u,"
           "\"ef_construction\":%u,\"ef_search\":%u,\"nlist\":%u,\"nprobe\":%u,\"quantizer\":\"%s\","
           "\"pq_m\":%u,\"pq_bits\":%u,\"rerank\":%u,\"seed\":%llu},\"train_s\":%.3f,"
           "\"add_s\":%.3f,\"build_s\":%.3f,\"lib_mb\":%.1f,\"metadata_mb\":%.2f,"
           "\"rss_delta_mb\":%.1f,\"simd\":\"%s\"}\n",
           kind, hnsw ? a->M : 0, hnsw ? a->efc : 0, hnsw ? DEFAULT_EF : 0, hnsw ? 0 : stats.nlist,
           hnsw ? 0 : a->nprobes[0], strcmp(kind, "ivf-pq4") ? "f32" : "pq", p.ivf.pq_m,
           p.ivf.pq_bits, p.rerank, (unsigned long long)a->seed, train_s, add_s,
           train_s + add_s, (double)stats.memory_bytes / (1024.0 * 1024.0),
           (double)stats.metadata_bytes / (1024.0 * 1024.0), rss1 - rss0,
           shoal_index_simd_name(index));
    fprintf(stderr, "built %s in %.1f s\n", kind, train_s + add_s);
    fflush(stdout);

    int32_t *row_of = rows_of_labels(index);
    search_cfg def = {hnsw, 0, 0};
    double *seconds = malloc((size_t)a->runs * NPATHS * sizeof *seconds);
    if (!seconds) die("out of memory", NULL);

    /* Warm-up, then the unfiltered reference. */
    path_ctx c = {index, NULL, NULL, 0, 0, def};
    uint32_t all = a->queries;
    a->queries = all < 200 ? all : 200;
    timed_pass(b, &c, P_NONE);
    a->queries = all;
    for (uint32_t r = 0; r < a->runs; r++) seconds[r] = timed_pass(b, &c, P_NONE);
    quality qa = measure(b, row_of, SLOT_NONE);
    emit_search(b, kind, "none", "none", &def, 0, &qa, seconds, a->runs);

    for (uint32_t s = 0; s < NF; s++) {
        const filter_def *fd = &FILTERS[s];
        shoal_filter *f = compile(fd);
        c.f = fd;
        c.bitmap = bitmap_of(index, f, &c.bits);
        shoal_filter_free(f);
        double kp = ceil((double)a->k / b->selectivity[s]);
        c.k_prime = kp > K_PRIME_MAX ? K_PRIME_MAX : (uint32_t)kp;
        quality q[NPATHS];
        for (uint32_t r = 0; r < a->runs; r++)
            for (int path = 0; path < NPATHS; path++) {
                seconds[(size_t)path * a->runs + r] = timed_pass(b, &c, path);
                if (r == a->runs - 1) {
                    q[path] = measure(b, row_of, s);
                    if (hnsw && path == P_WHERE) {
                        /* The HNSW `where` results, for the JS program. */
                        size_t qk = (size_t)a->queries * a->k;
                        int32_t *rows = malloc(qk * sizeof *rows);
                        if (!rows) die("out of memory", NULL);
                        for (uint32_t i = 0; i < a->queries; i++)
                            for (uint32_t j = 0; j < a->k; j++)
                                rows[(size_t)i * a->k + j] =
                                    (int)j < b->counts[i] ? row_of[b->labels[(size_t)i * a->k + j]] : -1;
                        char name[64];
                        snprintf(name, sizeof name, "hnsw-where-%s.i32", fd->slug);
                        write_file(a->out, name, rows, qk * sizeof *rows);
                        free(rows);
                    }
                }
            }
        for (int path = 0; path < NPATHS; path++)
            emit_search(b, kind, fd->name, PATH_NAMES[path], &def,
                        path == P_POST ? c.k_prime : 0, &q[path],
                        seconds + (size_t)path * a->runs, a->runs);

        /* The `where` and bitmap paths at the further ef / nprobe values:
         * always for HNSW; for IVF only when the default `where` recall is
         * below --sweep-below (its further points cost up to a full scan
         * per query and say nothing new once recall is there). */
        uint32_t n_more = hnsw ? a->n_efs : a->n_nprobes;
        if (!hnsw && q[P_WHERE].recall >= a->sweep_below) n_more = 1;
        for (uint32_t e = 1; e < n_more; e++) {
            path_ctx more = c;
            more.cfg.ef = hnsw ? a->efs[e] : 0;
            more.cfg.nprobe = hnsw ? 0 : a->nprobes[e];
            if (!hnsw && more.cfg.nprobe > stats.nlist) continue;
            const int sweep[2] = {P_WHERE, P_BITMAP};
            quality qm[2];
            for (uint32_t r = 0; r < a->runs; r++)
                for (int i = 0; i < 2; i++) {
                    seconds[(size_t)i * a->runs + r] = timed_pass(b, &more, sweep[i]);
                    if (r == a->runs - 1) qm[i] = measure(b, row_of, s);
                }
            for (int i = 0; i < 2; i++)
                emit_search(b, kind, fd->name, PATH_NAMES[sweep[i]], &more.cfg, 0, &qm[i],
                            seconds + (size_t)i * a->runs, a->runs);
        }
        free((void *)c.bitmap);
    }
    free(seconds);
    free(row_of);
    shoal_index_free(index);
}

int main(int argc, char **argv)
{
    bench b;
    memset(&b, 0, sizeof b);
    parse_args(argc, argv, &b.a);
    load_data(&b);
    printf("{\"type\":\"run\",\"library\":\"shoal-native\",\"version\":\"%s\",\"simd\":\"%s\","
           "\"base\":%u,\"queries\":%u,\"k\":%u,\"runs\":%u,\"dim\":%u}\n",
           shoal_version(), shoal_simd_name(SHOAL_SIMD_AUTO), b.a.base, b.a.queries, b.a.k,
           b.a.runs, b.dim);
    fflush(stdout);
    double t0 = now_seconds();
    exact_truth(&b);
    fprintf(stderr, "exact truth (flat) in %.1f s\n", now_seconds() - t0);

    char kinds[256];
    snprintf(kinds, sizeof kinds, "%s", b.a.kinds);
    char *save = NULL;
    for (char *kind = strtok_r(kinds, ",", &save); kind; kind = strtok_r(NULL, ",", &save))
        run_kind(&b, kind);

    for (uint32_t s = 0; s <= NF; s++) {
        free(b.truth_rows[s]);
        free(b.truth_dist[s]);
        free(b.truth_count[s]);
    }
    free(b.query_s);
    free(b.query_category);
    free(b.big_dist);
    free(b.big_labels);
    free(b.counts);
    free(b.labels);
    free(b.meta);
    free(b.id_bytes);
    free(b.meta_offsets);
    free(b.id_offsets);
    free(b.price);
    free(b.category);
    free(b.queries);
    free(b.base);
    return 0;
}
