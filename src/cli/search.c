/*
 * search.c -- `shoal search` and `shoal bench`.
 *
 * search also takes a collection folder (collection.c opens it with every
 * block and applies its log) and searches it with shoal_collection_search:
 * the same output, ids and metadata from the collection's hits.
 *
 * Both take either a segment or a vector file as the index: a vector file
 * is built into an in-memory index first, with the same index options as
 * `shoal build`, so recall and speed can be tried before anything is
 * written.  Which one it is is decided by the file's first bytes (the
 * segment magic), never by its name.
 *
 * search prints, per query, the k nearest ids and their distances (smaller
 * is closer for every metric).  Its --json output contains nothing that
 * depends on the machine -- no timings, no kernel names -- so the WASI
 * build prints exactly the same bytes as the native one (tests/cli checks
 * it).
 *
 * bench measures recall@k and single-thread QPS for one or more search
 * settings (--ef list for HNSW, --nprobe list for IVF).  Ground truth is an
 * .ivecs file (row i: the record numbers nearest to query i; record r is
 * the r-th record of the data file, or the record with id "r" in a segment
 * built from a binary file) or, without one, exact truth computed on the
 * fly by a flat index over the same records and metric.  Truth and
 * results are compared as labels of the index under test (each truth id
 * is looked up once), so ids of any form work.  Timing repeats the whole
 * query set until at least 0.2 s have passed, to keep small sets
 * measurable without long runs.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define RUNS_MAX 64

static int search_failure(const char *source, shoal_index *index, int rc) {
    const char *detail = shoal_index_errmsg(index);
    cli_error("%s: search failed: %s%s%s (%s)", source, shoal_strerror(rc),
              *detail ? ": " : "", detail, shoal_error_name(rc));
    return rc == SHOAL_EPARAM ? CLI_USAGE : cli_exit_of(rc);
}

/* Reads queries from --query FILE or --vector V and checks the dimension. */
static int read_queries(cli_args *args, const char *flag, uint32_t dim, cli_records *q,
                        const char **source) {
    const char *file = cli_str(args, flag);
    const char *vec = cli_find(args->opts, "vector") ? cli_str(args, "vector") : NULL;
    int rc;
    if (file && vec) {
        cli_error("%s: give --%s or --vector, not both", args->command, flag);
        return CLI_USAGE;
    }
    if (vec) {
        *source = "--vector";
        rc = cli_parse_vector_arg(vec, q);
    } else if (file) {
        *source = file;
        rc = cli_read_records(file, CLI_FORMAT_AUTO, q);
    } else {
        cli_error("%s: give queries with --%s FILE%s (run 'shoal %s --help')", args->command, flag,
                  cli_find(args->opts, "vector") ? " or --vector V" : "", args->command);
        return CLI_USAGE;
    }
    if (rc) return rc;
    if (q->dim != dim) {
        cli_error("%s: queries have dimension %u; the index has %u", *source, q->dim, dim);
        cli_records_free(q);
        return CLI_DATA;
    }
    return CLI_OK;
}

static int search_params(cli_args *args, shoal_index *index, shoal_search_params *sp) {
    shoal_search_params_init(sp);
    shoal_kind kind = shoal_index_kind(index);
    int rc;
    if (cli_flag(args, "ef") && kind != SHOAL_KIND_HNSW) {
        cli_error("%s: --ef applies to hnsw indexes; this one is %s", args->command,
                  shoal_kind_word(kind));
        return CLI_USAGE;
    }
    if (cli_flag(args, "nprobe") && kind != SHOAL_KIND_IVF) {
        cli_error("%s: --nprobe applies to ivf indexes; this one is %s", args->command,
                  shoal_kind_word(kind));
        return CLI_USAGE;
    }
    if (cli_flag(args, "rerank") && kind == SHOAL_KIND_FLAT) {
        cli_error("%s: --rerank applies to hnsw and ivf indexes; this one is flat",
                  args->command);
        return CLI_USAGE;
    }
    if ((rc = cli_u32(args, "rerank", 0, SHOAL_K_MAX, &sp->rerank))) return rc;
    return CLI_OK;
}

/* --filter JSON, compiled by the core (NULL when absent).  Returns 0 or
 * CLI_USAGE after a message naming the problem and its path. */
static int filter_param(cli_args *args, shoal_filter **out) {
    *out = NULL;
    const char *text = cli_str(args, "filter");
    if (!text) return CLI_OK;
    char msg[256] = "";
    int rc = shoal_filter_compile(text, strlen(text), NULL, out, msg, sizeof msg);
    if (rc < 0) {
        cli_error("%s: --filter: %s%s%s", args->command, shoal_strerror(rc), *msg ? ": " : "", msg);
        return rc == SHOAL_ENOMEM ? CLI_INTERNAL : CLI_USAGE;
    }
    return CLI_OK;
}

/* The metadata of one result as JSON text (nothing for none). */
static void write_metadata(shoal_index *index, uint32_t label, FILE *f, int json) {
    const uint8_t *bytes;
    if (shoal_index_metadata(index, label, &bytes) <= 0) {
        if (json) fputs("null", f);
        return;
    }
    char *text;
    size_t size;
    if (shoal_index_metadata_json(index, 1, &label, &text, &size)) {
        if (json) fputs("null", f);
        return;
    }
    if (!json) fputs("  ", f);
    fwrite(text + 1, 1, size - 2, f); /* "[{...}]" -> "{...}" */
    shoal_index_free_bytes(index, text);
}

/* One query's results, as text lines or one --json object; ids and
 * metadata come from a segment's labels or a collection's hits. */
typedef struct hit_source {
    int (*id)(void *ctx, int j, const char **id);
    void (*metadata)(void *ctx, int j, FILE *f, int json);
    void *ctx;
} hit_source;

static void print_results(const hit_source *s, int first, const char *qid, size_t qlen, int found,
                          const float *dists, int json) {
    if (json) {
        printf("%s{\"query\":", first ? "" : ",");
        json_write_string(stdout, qid, qlen);
        printf(",\"ids\":[");
        for (int j = 0; j < found; j++) {
            const char *id;
            int len = s->id(s->ctx, j, &id);
            if (j) putchar(',');
            json_write_string(stdout, id, len < 0 ? 0 : (size_t)len);
        }
        printf("],\"distances\":[");
        for (int j = 0; j < found; j++) {
            if (j) putchar(',');
            json_write_float(stdout, dists[j]);
        }
        printf("],\"metadata\":[");
        for (int j = 0; j < found; j++) {
            if (j) putchar(',');
            s->metadata(s->ctx, j, stdout, 1);
        }
        printf("]}");
    } else {
        printf("query %.*s\n", (int)qlen, qid);
        for (int j = 0; j < found; j++) {
            const char *id;
            int len = s->id(s->ctx, j, &id);
            printf("  %3d  %.*s  %.9g", j + 1, len < 0 ? 0 : len, id, (double)dists[j]);
            s->metadata(s->ctx, j, stdout, 0);
            putchar('\n');
        }
    }
}

typedef struct index_hits {
    shoal_index *index;
    const uint32_t *labels;
} index_hits;

static int index_hit_id(void *ctx, int j, const char **id) {
    index_hits *h = ctx;
    return shoal_index_label_id(h->index, h->labels[j], id);
}

static void index_hit_metadata(void *ctx, int j, FILE *f, int json) {
    index_hits *h = ctx;
    write_metadata(h->index, h->labels[j], f, json);
}

/* ---------------------------------------------------------------- search */

static const char SEARCH_HELP[] =
    "usage: shoal search INDEX (--query FILE | --vector V) [options]\n"
    "\n"
    "Finds the k nearest records for each query.  INDEX is a segment, a\n"
    "collection folder (DIR holding DIR/root; its DIR/log is applied first), or\n"
    "a vector file that is built into an in-memory index first (with build's\n"
    "index options: --kind, --metric, --seed, --M, --nlist, ...).\n"
    "\n"
    "      --query FILE        queries: .fvecs, .bvecs, .npy or JSONL (JSONL ids\n"
    "                          name the queries; others are numbered from 0)\n"
    "      --vector V          one query, e.g. \"0.1,0.2,0.3\" or \"[0.1, 0.2, 0.3]\"\n"
    "  -k, --k N               results per query (default 10)\n"
    "      --ef N              hnsw: candidate list (>= k; default the index's)\n"
    "      --nprobe N          ivf: lists probed (default the index's)\n"
    "      --rerank N          sq8/pq with copies: candidates reranked\n"
    "      --filter JSON       only records whose metadata passes, e.g.\n"
    "                          '{\"year\":{\"$gte\":1990},\"genre\":{\"$in\":[\"jazz\",\"soul\"]}}'\n"
    "                          (docs/API.md, \"Filters\")\n"
    "      --format F          format of INDEX when it is a vector file\n"
    "\n";

static const char SEARCH_HELP_TAIL[] =
    "\n"
    "      --json              JSON on stdout: {\"k\":..,\"results\":[{\"query\":..,\n"
    "                          \"ids\":[..],\"distances\":[..],\"metadata\":[..]}]};\n"
    "                          no timings, so the\n"
    "                          output is identical in every build\n"
    "  -q, --quiet             no progress bar\n"
    "  -h, --help              this help\n"
    "\n"
    "Distances: l2 squared Euclidean, ip negative inner product, cosine 1-cos.\n"
    "\n"
    "example: shoal search base.seg --query queries.fvecs -k 10 --ef 64 --json\n";

/* Which kinds the parts of a collection have (bit 1 << kind): the buffer's
 * (the small kind) and every segment's, from the manifest. */
static uint32_t collection_kinds(const cli_collection *cc) {
    cli_cbor m = cli_cbor_at(cc->manifest, cc->manifest_size);
    uint32_t bits = 0;
    const char *t;
    size_t len;
    if (!cli_cbor_text(cli_cbor_get(cli_cbor_get(cli_cbor_get(m, "config"), "small"), "kind"), &t, &len) &&
        shoal_kind_parse(t, len) >= 0)
        bits |= 1u << shoal_kind_parse(t, len);
    cli_cbor segs = cli_cbor_get(m, "segments");
    for (uint32_t i = 0; i < cli_cbor_count(segs); i++)
        if (!cli_cbor_text(cli_cbor_get(cli_cbor_index(segs, i), "kind"), &t, &len) &&
            shoal_kind_parse(t, len) >= 0)
            bits |= 1u << shoal_kind_parse(t, len);
    return bits;
}

/* The metadata of one collection hit as JSON text (nothing for none). */
static void write_hit_metadata(shoal_collection *c, shoal_hit hit, FILE *f, int json) {
    char *text;
    size_t size;
    if (shoal_collection_hits_json(c, 1, &hit, &text, &size)) {
        if (json) fputs("null", f);
        return;
    }
    if (size < 2 || (size == 6 && !memcmp(text, "[null]", 6))) {
        if (json) fputs("null", f);
    } else {
        if (!json) fputs("  ", f);
        fwrite(text + 1, 1, size - 2, f); /* "[{...}]" -> "{...}" */
    }
    shoal_collection_free_bytes(c, text);
}

typedef struct collection_hits {
    shoal_collection *c;
    const shoal_hit *hits;
} collection_hits;

static int collection_hit_id(void *ctx, int j, const char **id) {
    collection_hits *h = ctx;
    return shoal_collection_hit_id(h->c, h->hits[j], id);
}

static void collection_hit_metadata(void *ctx, int j, FILE *f, int json) {
    collection_hits *h = ctx;
    write_hit_metadata(h->c, h->hits[j], f, json);
}

/* search over a collection folder: the same output as over a segment. */
static int search_collection(cli_args *args, const char *dir, uint32_t k, int quiet, int json) {
    cli_collection cc;
    shoal_filter *where = NULL;
    cli_records q;
    memset(&q, 0, sizeof q);
    shoal_hit *hits = NULL;
    float *dists = NULL;
    const char *qsource;
    int rc;
    /* Index options make no sense for a collection: it has its parameters. */
#define CLI__COLLECTION_HAS(field, type, js, flag, applies, en, doc)                      \
    if (strcmp(flag, "simd") && strcmp(flag, "nprobe") && strcmp(flag, "rerank") &&      \
        cli_flag(args, flag)) {                                                          \
        cli_error("%s: --%s builds an index from a data file; %s is a collection, which " \
                  "already has its parameters", args->command, flag, dir);                \
        return CLI_USAGE;                                                                \
    }
    SHOAL_PARAM_LIST(CLI__COLLECTION_HAS)
#undef CLI__COLLECTION_HAS
    if (cli_flag(args, "format")) {
        cli_error("%s: --format applies to data files; %s is a collection", args->command, dir);
        return CLI_USAGE;
    }
    shoal_simd simd = SHOAL_SIMD_AUTO;
    if ((rc = cli_simd_param(args, &simd))) return rc;
    if ((rc = cli_collection_open(dir, NULL, 1, simd, quiet, &cc))) return rc;
    shoal_collection *c = cc.c;
    shoal_search_params sp;
    shoal_search_params_init(&sp);
    uint32_t kinds = collection_kinds(&cc);
    if (cli_flag(args, "ef") && !(kinds & (1u << SHOAL_KIND_HNSW))) {
        cli_error("%s: --ef applies to hnsw parts; %s has none", args->command, dir);
        rc = CLI_USAGE;
    } else if (cli_flag(args, "nprobe") && !(kinds & (1u << SHOAL_KIND_IVF))) {
        cli_error("%s: --nprobe applies to ivf segments; %s has none", args->command, dir);
        rc = CLI_USAGE;
    } else if (cli_flag(args, "rerank") &&
               !(kinds & ((1u << SHOAL_KIND_IVF) | (1u << SHOAL_KIND_HNSW)))) {
        cli_error("%s: --rerank applies to hnsw and ivf segments; %s has none", args->command,
                  dir);
        rc = CLI_USAGE;
    }
    if (rc || (rc = cli_u32(args, "rerank", 0, SHOAL_K_MAX, &sp.rerank)) ||
        (rc = cli_u32(args, "ef", 1, SHOAL_K_MAX, &sp.ef)) ||
        (rc = cli_u32(args, "nprobe", 1, UINT32_MAX, &sp.nprobe)) || (rc = filter_param(args, &where)))
        goto out;
    sp.where = where;
    if ((rc = read_queries(args, "query", shoal_collection_dim(c), &q, &qsource))) goto out;
    hits = malloc((size_t)k * sizeof *hits);
    dists = malloc((size_t)k * sizeof *dists);
    if (!hits || !dists) {
        cli_error("out of memory");
        rc = CLI_INTERNAL;
        goto out;
    }
    if (json) printf("{\"k\":%u,\"results\":[", k);
    for (uint32_t i = 0; i < q.n; i++) {
        int found = shoal_collection_search(c, q.vectors + (size_t)i * q.dim, q.dim, k, &sp, NULL,
                                            NULL, hits, dists);
        if (found < 0) {
            if (json) printf("]}\n");
            rc = cli_collection_failure(dir, c, found, "search");
            if (found == SHOAL_EPARAM) rc = CLI_USAGE;
            goto out;
        }
        const char *qid = q.id_bytes + q.id_offsets[i];
        size_t qlen = q.id_offsets[i + 1] - q.id_offsets[i];
        collection_hits hs = {c, hits};
        hit_source src = {collection_hit_id, collection_hit_metadata, &hs};
        print_results(&src, i == 0, qid, qlen, found, dists, json);
    }
    if (json) printf("]}\n");
out:
    free(hits);
    free(dists);
    cli_records_free(&q);
    shoal_filter_free(where);
    cli_collection_close(&cc);
    return rc;
}

int cli_cmd_search(int argc, char **argv) {
    cli_opt opts[] = {{"query", 0, 1, NULL, 0}, {"vector", 0, 1, NULL, 0}, {"k", 'k', 1, NULL, 0},
                      {"filter", 0, 1, NULL, 0},
                      {"ef", 0, 1, NULL, 0},    {"nprobe", 0, 1, NULL, 0}, {"rerank", 0, 1, NULL, 0},
                      {"format", 0, 1, NULL, 0}, {"json", 0, 0, NULL, 0},  {"quiet", 'q', 0, NULL, 0},
                      CLI_INDEX_OPTS            {NULL, 0, 0, NULL, 0}};
    cli_args args;
    shoal_index *index = NULL;
    shoal_filter *where = NULL;
    cli_records q;
    memset(&q, 0, sizeof q);
    uint32_t *labels = NULL;
    float *dists = NULL;
    int rc = cli_parse(&args, opts, argc, argv);
    if (rc) goto out;
    if (args.help) {
        fputs(SEARCH_HELP, stdout);
        cli_print_index_help(stdout, 1);
        fputs(SEARCH_HELP_TAIL, stdout);
        goto out;
    }
    if (args.npos != 1) {
        cli_error("search: expected one index (a segment or a vector file), got %d (run 'shoal "
                  "search --help')",
                  args.npos);
        rc = CLI_USAGE;
        goto out;
    }
    uint32_t k = 10;
    if ((rc = cli_u32(&args, "k", 1, SHOAL_K_MAX, &k))) goto out;
    if (!cli_flag(&args, "query") && !cli_flag(&args, "vector")) {
        cli_error("search: give queries with --query FILE or --vector V (run 'shoal search --help')");
        rc = CLI_USAGE;
        goto out;
    }
    int quiet = cli_flag(&args, "quiet"), json = cli_flag(&args, "json");
    const char *path = args.pos[0], *qsource;
    if (cli_is_dir(path)) {
        rc = search_collection(&args, path, k, quiet, json);
        goto out;
    }
    if ((rc = cli_open_index(&args, path, quiet, &index, NULL))) goto out;
    shoal_search_params sp;
    if ((rc = search_params(&args, index, &sp)) || (rc = cli_u32(&args, "ef", 1, SHOAL_K_MAX, &sp.ef)) ||
        (rc = cli_u32(&args, "nprobe", 1, UINT32_MAX, &sp.nprobe)) || (rc = filter_param(&args, &where)))
        goto out;
    sp.where = where;
    if ((rc = read_queries(&args, "query", shoal_index_dim(index), &q, &qsource))) goto out;
    labels = malloc((size_t)k * sizeof *labels);
    dists = malloc((size_t)k * sizeof *dists);
    if (!labels || !dists) {
        cli_error("out of memory");
        rc = CLI_INTERNAL;
        goto out;
    }
    if (json) printf("{\"k\":%u,\"results\":[", k);
    for (uint32_t i = 0; i < q.n; i++) {
        int found = shoal_index_search(index, q.vectors + (size_t)i * q.dim, q.dim, k, &sp, labels,
                                       dists);
        if (found < 0) {
            if (json) printf("]}\n");
            rc = search_failure(path, index, found);
            goto out;
        }
        const char *qid = q.id_bytes + q.id_offsets[i];
        size_t qlen = q.id_offsets[i + 1] - q.id_offsets[i];
        index_hits hs = {index, labels};
        hit_source src = {index_hit_id, index_hit_metadata, &hs};
        print_results(&src, i == 0, qid, qlen, found, dists, json);
    }
    if (json) printf("]}\n");
out:
    free(labels);
    free(dists);
    cli_records_free(&q);
    shoal_filter_free(where);
    shoal_index_free(index);
    free(args.pos);
    return rc;
}

/* ----------------------------------------------------------------- bench */

static const char BENCH_HELP[] =
    "usage: shoal bench DATA --queries FILE [--truth FILE.ivecs] [options]\n"
    "\n"
    "Measures recall@k and single-thread queries per second.  DATA is a vector\n"
    "file (built into an in-memory index with build's index options) or a\n"
    "segment.  Without --truth, exact truth is computed on the fly by a flat\n"
    "index over the same records (for a segment: its stored vectors).\n"
    "\n"
    "      --queries FILE      queries (.fvecs, .bvecs, .npy, JSONL)\n"
    "      --truth FILE        ground truth .ivecs: row i holds the record numbers\n"
    "                          nearest to query i (record r = the r-th record of\n"
    "                          DATA, or id \"r\" in a segment); -1 = none\n"
    "  -k, --k N               recall@k (default 10)\n"
    "      --ef LIST           hnsw: candidate lists to try, e.g. 16,32,64,128\n"
    "      --nprobe LIST       ivf: lists probed to try, e.g. 1,4,16\n"
    "      --rerank N          sq8/pq: keep copies and rerank N candidates\n"
    "      --min-recall X      exit 5 if a run's recall is below X (0..1)\n"
    "      --filter JSON       a metadata filter on every search (exact truth applies\n"
    "                          it too)\n"
    "      --format F          format of DATA when it is a vector file\n"
    "\n";

static const char BENCH_HELP_TAIL[] =
    "\n"
    "      --json              JSON on stdout\n"
    "  -q, --quiet             no progress bar\n"
    "  -h, --help              this help\n"
    "\n"
    "example: shoal bench base.fvecs --queries query.fvecs --truth gt.ivecs \\\n"
    "             --kind hnsw --ef 16,32,64,128\n";

typedef struct bench_run {
    uint32_t ef, nprobe;
    double recall, qps, mean_us;
} bench_run;

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* truth[q * k + j]: labels in the index under test (UINT32_MAX = none). */
static int truth_from_ivecs(const char *path, shoal_index *index, const cli_records *recs,
                            uint32_t nq, uint32_t k, uint32_t *truth) {
    uint32_t *rows, n, tk;
    int rc = cli_read_ivecs(path, &rows, &n, &tk);
    if (rc) return rc;
    if (n != nq) {
        cli_error("%s: %u rows of ground truth for %u queries", path, n, nq);
        free(rows);
        return CLI_DATA;
    }
    if (tk < k) {
        cli_error("%s: rows hold %u neighbours; -k %u needs at least %u", path, tk, k, k);
        free(rows);
        return CLI_DATA;
    }
    for (uint32_t i = 0; i < nq; i++)
        for (uint32_t j = 0; j < k; j++) {
            uint32_t r = rows[(size_t)i * tk + j];
            uint32_t label = UINT32_MAX;
            if (r != UINT32_MAX) {
                char num[16];
                const char *id = num;
                int len;
                if (recs->n) {
                    if (r >= recs->n) {
                        cli_error("%s: row %u names record %u; the data has %u records", path, i, r,
                                  recs->n);
                        free(rows);
                        return CLI_DATA;
                    }
                    id = recs->id_bytes + recs->id_offsets[r];
                    len = (int)(recs->id_offsets[r + 1] - recs->id_offsets[r]);
                } else {
                    len = snprintf(num, sizeof num, "%u", r);
                }
                int l = shoal_index_label_of(index, id, (uint32_t)len);
                if (l >= 0) label = (uint32_t)l;
            }
            truth[(size_t)i * k + j] = label;
        }
    free(rows);
    return CLI_OK;
}

static int truth_exact(cli_args *args, shoal_index *index, cli_records *recs, const cli_records *q,
                       uint32_t k, int quiet, const shoal_filter *where, uint32_t *truth) {
    shoal_params p;
    shoal_params_init(&p);
    p.dim = shoal_index_dim(index);
    p.metric = shoal_index_metric(index);
    p.kind = SHOAL_KIND_FLAT;
    int rc;
    if ((rc = cli_simd_param(args, &p.simd))) return rc;
    if (recs->n == 0 && (rc = cli_extract_records(index, "bench", recs))) return rc;
    shoal_index *flat;
    if ((rc = cli_make_index_with(&p, "exact truth", recs, quiet, 1, &flat))) return rc;
    uint32_t *labels = malloc((size_t)k * sizeof *labels);
    float *dists = malloc((size_t)k * sizeof *dists);
    if (!labels || !dists) {
        cli_error("out of memory");
        rc = CLI_INTERNAL;
        goto done;
    }
    cli_progress prog;
    cli_progress_start(&prog, "truth", quiet);
    shoal_search_params exact;
    shoal_search_params_init(&exact);
    exact.where = where; /* the filtered truth */
    for (uint32_t i = 0; i < q->n; i++) {
        int found = shoal_index_search(flat, q->vectors + (size_t)i * q->dim, q->dim, k, &exact,
                                       labels, dists);
        if (found < 0) {
            rc = search_failure("exact truth", flat, found);
            goto done;
        }
        for (uint32_t j = 0; j < k; j++) {
            uint32_t label = UINT32_MAX;
            if ((int)j < found) {
                const char *id;
                int len = shoal_index_label_id(flat, labels[j], &id);
                int l = len < 0 ? -1 : shoal_index_label_of(index, id, (uint32_t)len);
                if (l >= 0) label = (uint32_t)l;
            }
            truth[(size_t)i * k + j] = label;
        }
        cli_progress_update(&prog, i + 1, q->n);
    }
    cli_progress_finish(&prog);
done:
    free(labels);
    free(dists);
    shoal_index_free(flat);
    return rc;
}

int cli_cmd_bench(int argc, char **argv) {
    cli_opt opts[] = {{"queries", 0, 1, NULL, 0}, {"truth", 0, 1, NULL, 0},
                      {"k", 'k', 1, NULL, 0},       {"ef", 0, 1, NULL, 0},
                      {"nprobe", 0, 1, NULL, 0},    {"rerank", 0, 1, NULL, 0},
                      {"min-recall", 0, 1, NULL, 0}, {"format", 0, 1, NULL, 0},
                      {"filter", 0, 1, NULL, 0},
                      {"json", 0, 0, NULL, 0},      {"quiet", 'q', 0, NULL, 0},
                      CLI_INDEX_OPTS                {NULL, 0, 0, NULL, 0}};
    cli_args args;
    shoal_index *index = NULL;
    shoal_filter *where = NULL;
    cli_records recs, q;
    memset(&recs, 0, sizeof recs);
    memset(&q, 0, sizeof q);
    uint32_t *truth = NULL, *labels = NULL;
    float *dists = NULL;
    int rc = cli_parse(&args, opts, argc, argv);
    if (rc) goto out;
    if (args.help) {
        fputs(BENCH_HELP, stdout);
        cli_print_index_help(stdout, 1);
        fputs(BENCH_HELP_TAIL, stdout);
        goto out;
    }
    if (args.npos != 1) {
        cli_error("bench: expected one data file or segment, got %d (run 'shoal bench --help')",
                  args.npos);
        rc = CLI_USAGE;
        goto out;
    }
    uint32_t k = 10, efs[RUNS_MAX], probes[RUNS_MAX], nef = 0, nprobe = 0;
    double min_recall = -1;
    if ((rc = cli_u32(&args, "k", 1, SHOAL_K_MAX, &k)) ||
        (rc = cli_u32_list(&args, "ef", 1, SHOAL_K_MAX, efs, RUNS_MAX, &nef)) ||
        (rc = cli_u32_list(&args, "nprobe", 1, UINT32_MAX, probes, RUNS_MAX, &nprobe)) ||
        (rc = cli_double(&args, "min-recall", 0, 1, &min_recall)))
        goto out;
    if (nef && nprobe) {
        cli_error("bench: give --ef (hnsw) or --nprobe (ivf), not both");
        rc = CLI_USAGE;
        goto out;
    }
    if (!cli_flag(&args, "queries")) {
        cli_error("bench: --queries FILE is required (run 'shoal bench --help')");
        rc = CLI_USAGE;
        goto out;
    }
    int quiet = cli_flag(&args, "quiet"), json = cli_flag(&args, "json");
    const char *path = args.pos[0], *qsource, *truth_path = cli_str(&args, "truth");
    double t0 = cli_now();
    if ((rc = cli_open_index(&args, path, quiet, &index, &recs))) goto out;
    double build_seconds = cli_now() - t0;
    int from_data = recs.n > 0;
    shoal_search_params sp;
    if ((rc = search_params(&args, index, &sp)) || (rc = filter_param(&args, &where))) goto out;
    sp.where = where;
    if (where && truth_path) {
        cli_error("bench: --filter needs exact truth (computed on the fly), not --truth");
        rc = CLI_USAGE;
        goto out;
    }
    if ((rc = read_queries(&args, "queries", shoal_index_dim(index), &q, &qsource))) goto out;
    truth = malloc((size_t)q.n * k * sizeof *truth);
    labels = malloc((size_t)k * sizeof *labels);
    dists = malloc((size_t)k * sizeof *dists);
    if (!truth || !labels || !dists) {
        cli_error("out of memory");
        rc = CLI_INTERNAL;
        goto out;
    }
    rc = truth_path ? truth_from_ivecs(truth_path, index, &recs, q.n, k, truth)
                    : truth_exact(&args, index, &recs, &q, k, quiet, where, truth);
    if (rc) goto out;
    uint64_t truth_count = 0;
    for (size_t i = 0; i < (size_t)q.n * k; i++) truth_count += truth[i] != UINT32_MAX;
    for (uint32_t i = 0; i < q.n; i++) qsort(truth + (size_t)i * k, k, sizeof *truth, cmp_u32);

    bench_run runs[RUNS_MAX];
    uint32_t nruns = nef ? nef : nprobe ? nprobe : 1;
    for (uint32_t r = 0; r < nruns; r++) {
        bench_run *run = &runs[r];
        memset(run, 0, sizeof *run);
        if (nef) sp.ef = run->ef = efs[r];
        if (nprobe) sp.nprobe = run->nprobe = probes[r];
        uint64_t hits = 0, done = 0;
        double start = cli_now(), elapsed = 0;
        for (int pass = 0; pass == 0 || elapsed < 0.2; pass++) {
            for (uint32_t i = 0; i < q.n; i++) {
                int found = shoal_index_search(index, q.vectors + (size_t)i * q.dim, q.dim, k, &sp,
                                               labels, dists);
                if (found < 0) {
                    rc = search_failure(path, index, found);
                    goto out;
                }
                if (pass == 0) {
                    const uint32_t *t = truth + (size_t)i * k;
                    for (int j = 0; j < found; j++)
                        if (bsearch(&labels[j], t, k, sizeof *t, cmp_u32)) hits++;
                }
            }
            done += q.n;
            elapsed = cli_now() - start;
        }
        run->recall = truth_count ? (double)hits / (double)truth_count : 1.0;
        run->qps = (double)done / elapsed;
        run->mean_us = elapsed * 1e6 / (double)done;
    }
    const char *kind = shoal_kind_word(shoal_index_kind(index));
    if (json) {
        printf("{\"data\":");
        json_write_string(stdout, path, strlen(path));
        printf(",\"kind\":\"%s\",\"metric\":\"%s\",\"records\":%u,\"dim\":%u,\"queries\":%u,"
               "\"k\":%u,\"truth\":\"%s\",\"simd\":\"%s\",\"build_seconds\":%.3f,\"runs\":[",
               kind, shoal_metric_word(shoal_index_metric(index)), shoal_index_size(index),
               shoal_index_dim(index), q.n, k, truth_path ? "file" : "exact",
               shoal_index_simd_name(index), build_seconds);
        for (uint32_t r = 0; r < nruns; r++) {
            printf("%s{", r ? "," : "");
            if (nef) printf("\"ef\":%u,", runs[r].ef);
            if (nprobe) printf("\"nprobe\":%u,", runs[r].nprobe);
            printf("\"recall\":%.6f,\"qps\":%.1f,\"mean_us\":%.2f}", runs[r].recall, runs[r].qps,
                   runs[r].mean_us);
        }
        printf("]}\n");
    } else {
        printf("index: %s %s, %u records of dimension %u, %s in %.2f s (kernels %s)\n", kind,
               shoal_metric_word(shoal_index_metric(index)), shoal_index_size(index),
               shoal_index_dim(index), from_data ? "built" : "loaded",
               build_seconds, shoal_index_simd_name(index));
        printf("queries: %u from %s, k %u, truth: %s\n", q.n, qsource, k,
               truth_path ? truth_path : "exact (flat index)");
        printf("%-8s %10s %12s %10s\n", nef ? "ef" : nprobe ? "nprobe" : "setting", "recall", "QPS",
               "mean us");
        for (uint32_t r = 0; r < nruns; r++) {
            char setting[16];
            if (nef) snprintf(setting, sizeof setting, "%u", runs[r].ef);
            else if (nprobe) snprintf(setting, sizeof setting, "%u", runs[r].nprobe);
            else snprintf(setting, sizeof setting, "default");
            printf("%-8s %10.4f %12.0f %10.1f\n", setting, runs[r].recall, runs[r].qps,
                   runs[r].mean_us);
        }
    }
    if (min_recall >= 0)
        for (uint32_t r = 0; r < nruns; r++)
            if (runs[r].recall < min_recall) {
                cli_error("bench: recall %.4f is below --min-recall %g", runs[r].recall, min_recall);
                rc = CLI_THRESHOLD;
                break;
            }
out:
    free(truth);
    free(labels);
    free(dists);
    cli_records_free(&recs);
    cli_records_free(&q);
    shoal_filter_free(where);
    shoal_index_free(index);
    free(args.pos);
    return rc;
}
