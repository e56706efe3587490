/*
 * hnsw_native.c -- Shoal's native (C) adapter for the HNSW benchmark
 * (bench/hnsw/run.mjs runs it; `make bench-hnsw` builds and runs everything).
 *
 * Same protocol as the other adapters (bench/hnsw/common.mjs has the full
 * description): read the cached Fashion-MNIST .fvecs from --data, build an
 * index from the first --base rows with id "i" for row i, then for each ef of
 * --efs time --runs passes of single queries over the first --queries test
 * images and keep the best pass.  It prints JSON lines on stdout and writes
 * each ef's neighbours (int32, queries x k, base row numbers) into
 * --neighbors, so that recall is computed once, by run.mjs.
 *
 *   --kind hnsw|flat      flat is exact (recall 1.0): it proves the pipeline
 *                         while the HNSW kind is not in the build
 *   --quantizer f32|sq8     HNSW vector quantizer
 *   --batch B --threads T  hnsw.build_batch B (batched inserts) with phase-1
 *                         searches on T threads (shoal_index_set_threads)
 *   --simd avx2           force a kernel set (shoal_simd words; default auto)
 *   --rerank N            sq8: keep float32 copies and rerank the N best of the
 *                         ef candidates exactly (N >= every ef: all of them)
 *   --rows external       sq8 with --rerank: save the index to a file in
 *                         --neighbors, free it, open it from the file's head
 *                         (shoal_segment_summary.head_bytes, read with one
 *                         pread) with shoal_load_params.rerank_external, and
 *                         search in two phases, one pread(2) per candidate
 *                         row; lib_mb is the opened index's memory
 *   --M 16 --efc 200      shoal_hnsw_params M and ef_construction
 *   --thp 0               plain malloc as the allocator, without the default
 *                         allocator's transparent huge pages (src/core/mem.c)
 *   --interleave 1        wait for a line on stdin before each timed pass
 *                         (run.mjs --interleave; bench_util.h's pass_begin)
 *
 * What is timed: shoal_index_search() per query, with ef in
 * shoal_search_params (HNSW only; flat ignores the sweep).  Labels are turned
 * into ids after the timed pass.  The build is one shoal_index_add() of all
 * rows: single-threaded, like every Shoal call.
 * Memory: shoal_index_memory_bytes() (lib_mb: exact, every allocation goes
 * through the handle's allocator) and RSS growth over the build.
 *
 * Uses only the public header; links build/libshoal.a.
 */
#define _POSIX_C_SOURCE 200809L
#define BENCH_PROGRAM "hnsw_native"
#include <fcntl.h>

#include "bench_util.h"

#define MAX_EFS 64

typedef struct bench_args {
    const char *data;
    const char *neighbors;
    const char *kind;
    const char *quantizer;
    const char *simd;
    uint32_t base, queries, k, M, efc, runs, thp, rerank, batch, threads, external;
    uint32_t efs[MAX_EFS];
    uint32_t n_efs;
} bench_args;

static void parse_args(int argc, char **argv, bench_args *a)
{
    static const uint32_t default_efs[] = {10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512};
    *a = (bench_args){.data = "bench/data", .neighbors = "bench/results/neighbors",
                      .kind = "hnsw", .quantizer = "f32", .base = 60000, .queries = 1000,
                      .k = 10, .M = 16, .efc = 200, .runs = 2, .thp = 1, .simd = "auto"};
    a->n_efs = sizeof default_efs / sizeof default_efs[0];
    memcpy(a->efs, default_efs, sizeof default_efs);
    for (int i = 1; i < argc; i += 2) {
        const char *key = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val) die("missing value for", key);
        if (!strcmp(key, "--data")) a->data = val;
        else if (!strcmp(key, "--neighbors")) a->neighbors = val;
        else if (!strcmp(key, "--kind")) a->kind = val;
        else if (!strcmp(key, "--quantizer")) a->quantizer = val;
        else if (!strcmp(key, "--variant")) (void)val; /* named by --kind/--quantizer */
        else if (!strcmp(key, "--base")) a->base = parse_u32(key, val);
        else if (!strcmp(key, "--queries")) a->queries = parse_u32(key, val);
        else if (!strcmp(key, "--k")) a->k = parse_u32(key, val);
        else if (!strcmp(key, "--M")) a->M = parse_u32(key, val);
        else if (!strcmp(key, "--efc")) a->efc = parse_u32(key, val);
        else if (!strcmp(key, "--runs")) a->runs = parse_u32(key, val);
        else if (!strcmp(key, "--thp")) a->thp = parse_u32(key, val);
        else if (!strcmp(key, "--rerank")) a->rerank = parse_u32(key, val);
        else if (!strcmp(key, "--rows")) {
            if (!val || (strcmp(val, "external") && strcmp(val, "resident")))
                die("--rows must be resident or external", val);
            a->external = !strcmp(val, "external");
        }
        else if (!strcmp(key, "--simd")) a->simd = val;
        else if (!strcmp(key, "--batch")) a->batch = parse_u32(key, val);
        else if (!strcmp(key, "--threads")) a->threads = parse_u32(key, val);
        else if (!strcmp(key, "--interleave")) bench_interleave = parse_u32(key, val) != 0;
        else if (!strcmp(key, "--efs")) {
            char buf[512];
            snprintf(buf, sizeof buf, "%s", val);
            a->n_efs = 0;
            for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
                if (a->n_efs == MAX_EFS) die("too many efs", NULL);
                a->efs[a->n_efs++] = parse_u32(key, tok);
            }
        } else die("unknown option", key);
    }
    if (strcmp(a->kind, "hnsw") && strcmp(a->kind, "flat")) die("--kind must be hnsw or flat", a->kind);
    if (strcmp(a->quantizer, "f32") && strcmp(a->quantizer, "sq8")) die("--quantizer must be f32 or sq8", a->quantizer);
    if (a->external && (!a->rerank || strcmp(a->kind, "hnsw")))
        die("--rows external needs --kind hnsw --quantizer sq8 --rerank N", NULL);
    if (!a->k || !a->runs || !a->n_efs || !a->base || !a->queries) die("counts must be positive", NULL);
}

static void *plain_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static void plain_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

int main(int argc, char **argv)
{
    bench_args a;
    parse_args(argc, argv, &a);
    uint32_t dim, qdim;
    float *base = read_fvecs(a.data, "fashion-mnist-base.fvecs", a.base, &dim);
    float *queries = read_fvecs(a.data, "fashion-mnist-query.fvecs", a.queries, &qdim);
    if (qdim != dim) die("base and query dimensions differ", NULL);

    /* Ids "0".."n-1" as one byte buffer plus offsets (shoal.h's layout). */
    uint32_t *offsets = malloc(((size_t)a.base + 1) * sizeof *offsets);
    char *id_bytes = malloc((size_t)a.base * 11);
    if (!offsets || !id_bytes) die("out of memory", NULL);
    offsets[0] = 0;
    for (uint32_t i = 0; i < a.base; i++)
        offsets[i + 1] = offsets[i] + (uint32_t)sprintf(id_bytes + offsets[i], "%u", i);

    int hnsw = !strcmp(a.kind, "hnsw");
    char variant[64];
    int simd = shoal_simd_parse(a.simd, strlen(a.simd));
    if (simd < 0) die("--simd: not a kernel set", a.simd);
    char batch[32] = "", rerank[32] = "";
    if (a.batch) snprintf(batch, sizeof batch, "-batch%u-%ut", a.batch, a.threads ? a.threads : 1);
    /* "-rerank" is the benchmarks' depth, 32; another depth is named. */
    if (a.rerank == 32) snprintf(rerank, sizeof rerank, "-rerank");
    else if (a.rerank) snprintf(rerank, sizeof rerank, "-rerank%u", a.rerank);
    snprintf(variant, sizeof variant, "%s%s%s%s%s%s%s%s%s", a.kind, hnsw ? "-" : "", hnsw ? a.quantizer : "",
             rerank, a.external ? "-ext" : "", batch, a.thp ? "" : "-nothp", simd ? "-" : "",
             simd ? a.simd : "");
    shoal_params params;
    shoal_params_init(&params);
    params.dim = dim;
    params.metric = SHOAL_METRIC_L2;
    params.kind = hnsw ? SHOAL_KIND_HNSW : SHOAL_KIND_FLAT;
    params.hnsw.M = a.M;
    params.hnsw.ef_construction = a.efc;
    params.quantizer = !strcmp(a.quantizer, "sq8") ? SHOAL_QUANTIZER_SQ8 : SHOAL_QUANTIZER_F32;
    params.rerank = a.rerank;
    params.simd = (shoal_simd)simd;
    params.hnsw.build_batch = a.batch;
    const shoal_allocator plain = {plain_alloc, plain_free, NULL};
    if (!a.thp) params.allocator = &plain;

    double rss0 = rss_mb();
    double t0 = now_seconds();
    shoal_index *index = NULL;
    check(NULL, shoal_index_new(&params, &index), "shoal_index_new");
    if (a.threads > 1) check(index, shoal_index_set_threads(index, a.threads), "shoal_index_set_threads");
    check(index, shoal_index_add(index, a.base, id_bytes, offsets, base, dim), "shoal_index_add");
    double build_s = now_seconds() - t0;
    double rss1 = rss_mb();
    int fd = -1;
    char seg_path[1024] = "";
    uint64_t head_bytes = 0;
    if (a.external) {
        /* Saved, freed, opened again from the file's head: the rows stay in
         * the file. */
        save_to_file(index, a.neighbors, seg_path, sizeof seg_path, &head_bytes);
        fd = open(seg_path, O_RDONLY);
        uint8_t *head = malloc((size_t)head_bytes);
        if (fd < 0 || !head || pread(fd, head, (size_t)head_bytes, 0) != (ssize_t)head_bytes)
            die("cannot read the head of", seg_path);
        shoal_load_params lp;
        shoal_load_params_init(&lp);
        lp.rerank_external = 1;
        lp.simd = (shoal_simd)simd;
        if (!a.thp) lp.allocator = &plain;
        check(NULL, shoal_index_open_head(head, (size_t)head_bytes, &lp, &index),
              "shoal_index_open_head (external rows)");
        free(head);
    }
    shoal_stats stats;
    shoal_index_stats(index, &stats);
    char ext_note[256] = "";
    if (a.external)
        snprintf(ext_note, sizeof ext_note,
                 " Rerank rows external: opened from the segment file's first %.1f MB (its head), "
                 "one pread(2) per candidate row; rss_delta_mb is the build's.",
                 (double)head_bytes / (1024.0 * 1024.0));

    printf("{\"type\":\"build\",\"library\":\"shoal-native\",\"variant\":\"%s\",\"base\":%u,"
           "\"queries\":%u,\"k\":%u,\"version\":\"%s\",\"params\":{\"M\":%u,\"ef_construction\":%u,"
           "\"quantizer\":\"%s\",\"rerank\":%u,\"build_batch\":%u,\"threads\":%u,\"kind\":\"%s\"},\"build_s\":%.3f,\"rss_delta_mb\":%.1f,"
           "\"lib_mb\":%.1f,\"levels\":%u,\"mean_degree\":%.2f,"
           "\"notes\":\"C, %s kernels; lib_mb = shoal_index_memory_bytes.%s%s\"}\n",
           variant, a.base, a.queries, a.k, shoal_version(), a.M, a.efc, a.quantizer, a.rerank, a.batch, a.threads ? a.threads : 1, a.kind,
           build_s, rss1 - rss0, (double)stats.memory_bytes / (1024.0 * 1024.0), stats.levels,
           stats.mean_degree, shoal_index_simd_name(index),
           hnsw ? "" : " FLAT (exact): pipeline check, not HNSW.",
           ext_note);
    fflush(stdout);

    uint32_t *labels = malloc((size_t)a.queries * a.k * sizeof *labels);
    int32_t *ids = malloc((size_t)a.queries * a.k * sizeof *ids);
    float *dist = malloc((size_t)a.k * sizeof *dist);
    int *counts = malloc((size_t)a.queries * sizeof *counts);
    if (!labels || !ids || !dist || !counts) die("out of memory", NULL);

    shoal_search_params sp;
    shoal_search_params_init(&sp);
    uint32_t warm = a.queries < 200 ? a.queries : 200;
    sp.ef = hnsw ? (a.efs[0] > a.k ? a.efs[0] : a.k) : 0;
    uint64_t row_bytes = 0;
    if (a.external)
        timed_external(index, fd, queries, warm, dim, a.k, &sp, 1, labels, dist, counts, &row_bytes, 0);
    else
        for (uint32_t i = 0; i < warm; i++)
            check(index, shoal_index_search(index, queries + (size_t)i * dim, dim, a.k, &sp,
                                            labels + (size_t)i * a.k, dist), "warm-up search");

    for (uint32_t e = 0; e < a.n_efs; e++) {
        sp.ef = hnsw ? a.efs[e] : 0;
        double best = a.external ? timed_external(index, fd, queries, a.queries, dim, a.k, &sp,
                                                  a.runs, labels, dist, counts, &row_bytes, 1)
                                 : timed_searches(index, queries, a.queries, dim, a.k, &sp,
                                                  a.runs, labels, dist, counts);
        char path[1024];
        snprintf(path, sizeof path, "%s/shoal-native-%s-ef%u.i32", a.neighbors, variant, a.efs[e]);
        write_neighbors(index, labels, counts, a.queries, a.k, ids, path);
        char read_kb[48] = "";
        if (a.external)
            snprintf(read_kb, sizeof read_kb, ",\"read_kb\":%.1f",
                     (double)row_bytes / 1024.0 / (a.queries ? a.queries : 1));
        printf("{\"type\":\"search\",\"library\":\"shoal-native\",\"variant\":\"%s\",\"base\":%u,"
               "\"queries\":%u,\"k\":%u,\"ef\":%u,\"qps\":%.1f,\"neighbors\":\"%s\"%s}\n",
               variant, a.base, a.queries, a.k, a.efs[e], (double)a.queries / best, path, read_kb);
        fflush(stdout);
    }

    shoal_index_free(index);
    if (fd >= 0) {
        close(fd);
        unlink(seg_path);
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
