/*
 * ivf_native.c -- Shoal's native (C) adapter for the IVF benchmark
 * (bench/ivf/run.mjs runs it; `make bench-ivf` builds and runs everything).
 *
 * Same protocol as the HNSW adapters (bench/README.md): read the cached
 * Fashion-MNIST .fvecs from --data, train on the first --base rows, add them
 * with id "i" for row i, then for each nprobe of --nprobes time --runs passes
 * of single queries over the first --queries test images and keep the best
 * pass.  JSON lines on stdout; each point's neighbours (int32, queries x k,
 * base row numbers) go into --neighbors, so recall is computed once, by the
 * runner.
 *
 *   --nlist 256              shoal_ivf_params.nlist
 *   --quantizer f32|sq8|pq   shoal_params.quantizer
 *   --pq-m 392 --pq-bits 4   shoal_ivf_params.pq_m / pq_bits (pq only)
 *   --rerank 0 | R1,R2,...   0: no float32 copies, no rerank.  A list: the
 *                            index keeps copies (created with rerank = the
 *                            first R) and every R is swept as its own
 *                            curve (shoal_search_params.rerank), variant
 *                            "...-r<R>"; one build serves all of them.
 *   --nprobes 1,2,4,...      shoal_search_params.nprobe sweep
 *   --pq-tables 0|1|2        shoal_ivf_params.pq_tables (0 auto, 1 never, 2 always)
 *   --rows resident|external external: the index is saved (zstd 0) to a file
 *                            next to the neighbour files, freed, and loaded
 *                            again with shoal_load_params.rerank_external;
 *                            each search is shoal_index_search_candidates,
 *                            one pread(2) per candidate row from that file
 *                            (the page cache keeps it hot: this measures
 *                            the core and the system calls, not a disk),
 *                            shoal_index_rerank_rows.  Variant "...-ext-r<R>";
 *                            search records add read_kb (row bytes per
 *                            query); memory is the external index's.
 *
 * Build: shoal_index_train() on all base rows (k-means samples at most
 * train_sample = 256 per list: 65,536 >= 60,000, i.e. all of them; 10
 * iterations, the defaults), then one shoal_index_add() of all rows --
 * timed separately (train_s, add_s).  Single-threaded, like every Shoal call.
 * Memory (shoal_stats): codes_mb = codes_bytes (centroids, codebooks, list
 * labels and codes: what a scan reads), rerank_mb = rerank_bytes (the float32
 * copies), lib_mb = memory_bytes (everything the handle allocated, both of
 * the above plus per-label bookkeeping and ids), and RSS growth.
 *
 * Uses only the public header; links build/libshoal.a.
 */
#define _POSIX_C_SOURCE 200809L
#define BENCH_PROGRAM "ivf_native"
#include "bench_util.h"

#include <fcntl.h>
#include <unistd.h>

#define MAX_LIST 64

typedef struct bench_args {
    const char *data, *neighbors, *quantizer, *rows;
    uint32_t base, queries, k, runs, nlist, pq_m, pq_bits, pq_tables, seed;
    uint32_t nprobes[MAX_LIST], n_nprobes;
    uint32_t reranks[MAX_LIST], n_reranks;
} bench_args;

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
    *a = (bench_args){.data = "bench/data", .neighbors = "bench/results/neighbors",
                      .quantizer = "f32", .rows = "resident", .base = 60000, .queries = 2000, .k = 10, .runs = 2,
                      .nlist = 256, .seed = 1};
    a->n_nprobes = parse_list("--nprobes", "1,2,4,8,16,32,64", a->nprobes);
    a->n_reranks = parse_list("--rerank", "0", a->reranks);
    for (int i = 1; i < argc; i += 2) {
        const char *key = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val) die("missing value for", key);
        if (!strcmp(key, "--data")) a->data = val;
        else if (!strcmp(key, "--neighbors")) a->neighbors = val;
        else if (!strcmp(key, "--quantizer")) a->quantizer = val;
        else if (!strcmp(key, "--rows")) a->rows = val;
        else if (!strcmp(key, "--base")) a->base = parse_u32(key, val);
        else if (!strcmp(key, "--queries")) a->queries = parse_u32(key, val);
        else if (!strcmp(key, "--k")) a->k = parse_u32(key, val);
        else if (!strcmp(key, "--runs")) a->runs = parse_u32(key, val);
        else if (!strcmp(key, "--nlist")) a->nlist = parse_u32(key, val);
        else if (!strcmp(key, "--pq-m")) a->pq_m = parse_u32(key, val);
        else if (!strcmp(key, "--pq-bits")) a->pq_bits = parse_u32(key, val);
        else if (!strcmp(key, "--pq-tables")) a->pq_tables = parse_u32(key, val);
        else if (!strcmp(key, "--seed")) a->seed = parse_u32(key, val);
        else if (!strcmp(key, "--nprobes")) a->n_nprobes = parse_list(key, val, a->nprobes);
        else if (!strcmp(key, "--rerank")) a->n_reranks = parse_list(key, val, a->reranks);
        else die("unknown option", key);
    }
    if (strcmp(a->quantizer, "f32") && strcmp(a->quantizer, "sq8") && strcmp(a->quantizer, "pq"))
        die("--quantizer must be f32, sq8 or pq", a->quantizer);
    if (!a->k || !a->runs || !a->base || !a->queries) die("counts must be positive", NULL);
    if (strcmp(a->rows, "resident") && strcmp(a->rows, "external"))
        die("--rows must be resident or external", a->rows);
    if (a->n_reranks > 1)
        for (uint32_t i = 0; i < a->n_reranks; i++)
            if (!a->reranks[i]) die("--rerank: 0 cannot be mixed with R values", NULL);
}

static const double MB = 1024.0 * 1024.0;

int main(int argc, char **argv)
{
    bench_args a;
    parse_args(argc, argv, &a);
    uint32_t dim, qdim;
    float *base = read_fvecs(a.data, "fashion-mnist-base.fvecs", a.base, &dim);
    float *queries = read_fvecs(a.data, "fashion-mnist-query.fvecs", a.queries, &qdim);
    if (qdim != dim) die("base and query dimensions differ", NULL);

    uint32_t *offsets = malloc(((size_t)a.base + 1) * sizeof *offsets);
    char *id_bytes = malloc((size_t)a.base * 11);
    if (!offsets || !id_bytes) die("out of memory", NULL);
    offsets[0] = 0;
    for (uint32_t i = 0; i < a.base; i++)
        offsets[i + 1] = offsets[i] + (uint32_t)sprintf(id_bytes + offsets[i], "%u", i);

    int pq = !strcmp(a.quantizer, "pq");
    shoal_params params;
    shoal_params_init(&params);
    params.dim = dim;
    params.metric = SHOAL_METRIC_L2;
    params.kind = SHOAL_KIND_IVF;
    params.seed = a.seed;
    params.ivf.nlist = a.nlist;
    params.quantizer = pq ? SHOAL_QUANTIZER_PQ
                           : !strcmp(a.quantizer, "sq8") ? SHOAL_QUANTIZER_SQ8
                                                         : SHOAL_QUANTIZER_F32;
    if (pq) {
        params.ivf.pq_m = a.pq_m;
        params.ivf.pq_bits = a.pq_bits;
        params.ivf.pq_tables = a.pq_tables;
    }
    params.rerank = a.reranks[0];

    double rss0 = rss_mb();
    double t0 = now_seconds();
    shoal_index *index = NULL;
    check(NULL, shoal_index_new(&params, &index), "shoal_index_new");
    check(index, shoal_index_train(index, a.base, base, dim), "shoal_index_train");
    double t1 = now_seconds();
    check(index, shoal_index_add(index, a.base, id_bytes, offsets, base, dim), "shoal_index_add");
    double t2 = now_seconds();
    /* One search first: l2 pq builds its per-list tables (pq_tables) at the
     * first search, and they count in codes_bytes. */
    {
        uint32_t l1;
        float d1;
        check(index, shoal_index_search(index, queries, dim, 1, NULL, &l1, &d1), "first search");
    }
    double rss1 = rss_mb();
    shoal_stats stats;
    shoal_index_stats(index, &stats);
    check(index, shoal_index_check(index), "shoal_index_check");
    int external = !strcmp(a.rows, "external");
    int fd = -1;
    char seg_path[1024] = "";
    if (external) {
        /* Saved, freed, loaded again without its rows. */
        uint64_t head_bytes;
        size_t size = save_to_file(index, a.neighbors, seg_path, sizeof seg_path, &head_bytes);
        uint8_t *bytes = malloc(size);
        FILE *f = fopen(seg_path, "rb");
        if (!bytes || !f || fread(bytes, 1, size, f) != size) die("cannot read", seg_path);
        fclose(f);
        shoal_load_params lp;
        shoal_load_params_init(&lp);
        lp.rerank_external = 1;
        check(NULL, shoal_index_load(bytes, size, &lp, &index), "shoal_index_load (external rows)");
        free(bytes);
        fd = open(seg_path, O_RDONLY);
        if (fd < 0) die("cannot open", seg_path);
        /* (A first phase 1 builds the pq tables, as the first search did.) */
        check(index, shoal_index_search_candidates(index, queries, dim, 1, NULL, NULL, 0),
              "first candidates");
        shoal_index_stats(index, &stats);
    }

    /* Effective PQ shape: the index's defaults if not given. */
    uint32_t pq_m = a.pq_m, pq_bits = a.pq_bits ? a.pq_bits : 8;
    if (pq && !pq_m) {
        uint32_t min_dsub = pq_bits == 4 ? 2 : 4;
        for (uint32_t dsub = min_dsub; dsub <= dim; dsub++)
            if (dim % dsub == 0) { pq_m = dim / dsub; break; }
    }
    char family[64];
    if (pq) snprintf(family, sizeof family, "ivf-pq%ux%u%s", pq_bits, pq_m, external ? "-ext" : "");
    else snprintf(family, sizeof family, "ivf-%s%s", a.quantizer, external ? "-ext" : "");

    uint32_t *labels = malloc((size_t)a.queries * a.k * sizeof *labels);
    int32_t *ids = malloc((size_t)a.queries * a.k * sizeof *ids);
    float *dist = malloc((size_t)a.k * sizeof *dist);
    int *counts = malloc((size_t)a.queries * sizeof *counts);
    if (!labels || !ids || !dist || !counts) die("out of memory", NULL);

    for (uint32_t r = 0; r < a.n_reranks; r++) {
        uint32_t R = a.reranks[r];
        char variant[96];
        if (R) snprintf(variant, sizeof variant, "%s-r%u", family, R);
        else snprintf(variant, sizeof variant, "%s", family);
        printf("{\"type\":\"build\",\"library\":\"shoal-native\",\"variant\":\"%s\",\"base\":%u,"
               "\"queries\":%u,\"k\":%u,\"version\":\"%s\",\"params\":{\"nlist\":%u,"
               "\"quantizer\":\"%s\",\"pq_m\":%u,\"pq_bits\":%u,\"pq_tables\":%u,\"rerank\":%u,\"seed\":%u},"
               "\"family\":\"%s\",\"shared_build\":%s,"
               "\"train_s\":%.3f,\"add_s\":%.3f,\"build_s\":%.3f,\"rss_delta_mb\":%.1f,"
               "\"lib_mb\":%.2f,\"codes_mb\":%.2f,\"rerank_mb\":%.2f,\"nlist\":%u,"
               "\"rows\":\"%s\",\"notes\":\"C, %s kernels%s.\"}\n",
               variant, a.base, a.queries, a.k, shoal_version(), stats.nlist, a.quantizer,
               pq ? pq_m : 0, pq ? pq_bits : 0, a.pq_tables, R, a.seed, family, r ? "true" : "false", t1 - t0,
               t2 - t1, t2 - t0, rss1 - rss0, (double)stats.memory_bytes / MB,
               (double)stats.codes_bytes / MB, (double)stats.rerank_bytes / MB, stats.nlist,
               a.rows, shoal_index_simd_name(index),
               external ? "; rerank rows external: pread(2) per candidate row from the segment file "
                          "(page cache)" : "");
        fflush(stdout);

        shoal_search_params sp;
        shoal_search_params_init(&sp);
        sp.rerank = R;
        uint32_t warm = a.queries < 200 ? a.queries : 200;
        sp.nprobe = a.nprobes[0] < stats.nlist ? a.nprobes[0] : stats.nlist;
        uint64_t row_bytes = 0;
        if (external)
            timed_external(index, fd, queries, warm, dim, a.k, &sp, 1, labels, dist, counts,
                           &row_bytes, 0);
        else
            for (uint32_t i = 0; i < warm; i++)
                check(index, shoal_index_search(index, queries + (size_t)i * dim, dim, a.k, &sp,
                                                labels + (size_t)i * a.k, dist), "warm-up search");

        for (uint32_t e = 0; e < a.n_nprobes; e++) {
            if (a.nprobes[e] > stats.nlist) continue;
            sp.nprobe = a.nprobes[e];
            double best = external ? timed_external(index, fd, queries, a.queries, dim, a.k, &sp,
                                                    a.runs, labels, dist, counts, &row_bytes, 1)
                                   : timed_searches(index, queries, a.queries, dim, a.k, &sp,
                                                    a.runs, labels, dist, counts);
            char path[1024];
            snprintf(path, sizeof path, "%s/shoal-native-%s-np%u.i32", a.neighbors, variant,
                     a.nprobes[e]);
            write_neighbors(index, labels, counts, a.queries, a.k, ids, path);
            printf("{\"type\":\"search\",\"library\":\"shoal-native\",\"variant\":\"%s\","
                   "\"base\":%u,\"queries\":%u,\"k\":%u,\"nprobe\":%u,\"rerank\":%u,"
                   "\"qps\":%.1f,\"read_kb\":%.1f,\"neighbors\":\"%s\"}\n",
                   variant, a.base, a.queries, a.k, a.nprobes[e], R, (double)a.queries / best,
                   (double)row_bytes / a.queries / 1024.0, path);
            fflush(stdout);
        }
    }
    shoal_index_free(index);
    if (external) {
        close(fd);
        remove(seg_path);
    }
    free(counts);
    free(dist);
    free(ids);
    free(labels);
    free(id_bytes);
    free(offsets);
    free(queries);
    free(base);
    return 0;
}
