/*
 * bench_util.h -- what the native benchmark adapters share: fatal errors
 * (also reported as one JSON line, so the runner can say why an adapter
 * stopped), numbers on the command line, the cached .fvecs data, the clock
 * and the resident set size.  Include after defining BENCH_PROGRAM (the name
 * in messages); static functions, one copy per adapter program (the sweep
 * helpers are static inline, so a program that does not use them gets no
 * unused-function warning).
 */
#ifndef SHOAL_BENCH_UTIL_H
#define SHOAL_BENCH_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shoal.h"

static void die(const char *what, const char *detail)
{
    fprintf(stderr, BENCH_PROGRAM ": %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static uint32_t parse_u32(const char *name, const char *text)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || end == text || v > UINT32_MAX) die("bad number for", name);
    return (uint32_t)v;
}

/* The first `limit` rows of an .fvecs file; *dim receives the row length. */
static float *read_fvecs(const char *dir, const char *name, uint32_t limit, uint32_t *dim)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open (run bench/hnsw/prepare_data.py)", path);
    int32_t d;
    if (fread(&d, 4, 1, f) != 1 || d <= 0 || d > (int32_t)SHOAL_DIM_MAX) die("bad .fvecs header", path);
    *dim = (uint32_t)d;
    float *out = malloc((size_t)limit * (uint32_t)d * sizeof *out);
    if (!out) die("out of memory reading", path);
    rewind(f);
    for (uint32_t i = 0; i < limit; i++) {
        int32_t row_dim;
        if (fread(&row_dim, 4, 1, f) != 1 || row_dim != d ||
            fread(out + (size_t)i * (uint32_t)d, sizeof *out, (size_t)d, f) != (size_t)d)
            die("file has fewer rows than asked for", path);
    }
    fclose(f);
    return out;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double rss_mb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return (double)resident * 4096.0 / (1024.0 * 1024.0);
}

/* Stops on a negative code, with the core's detail message. */
static void check(shoal_index *index, int rc, const char *what)
{
    if (rc >= 0) return;
    char detail[512];
    snprintf(detail, sizeof detail, "%s (%s)", shoal_error_name(rc) ? shoal_error_name(rc) : "?",
             index ? shoal_index_errmsg(index) : shoal_strerror(rc));
    printf("{\"type\":\"error\",\"library\":\"shoal-native\",\"error\":\"%s: %s\"}\n", what, detail);
    fflush(stdout);
    die(what, detail);
}

/* Interleaved passes (bench/hnsw/run.mjs --interleave 1): when set, every
 * timed pass first prints {"type":"ready"} and waits for a line on stdin,
 * and prints {"type":"pass","seconds":s} after it, so that the runner can
 * alternate the passes of several libraries that are all built and waiting.
 * The runner knows which ef and run each pass is; end of input ends the
 * program. */
static int bench_interleave;

static inline void pass_begin(void)
{
    if (!bench_interleave) return;
    printf("{\"type\":\"ready\"}\n");
    fflush(stdout);
    for (int c; (c = getchar()) != '\n';)
        if (c == EOF) exit(0);
}

static inline void pass_end(double seconds)
{
    if (!bench_interleave) return;
    printf("{\"type\":\"pass\",\"seconds\":%.6f}\n", seconds);
    fflush(stdout);
}

/* Best of `runs` timed passes of single-query searches over n queries;
 * labels[n * k] and counts[n] keep the last pass's results. */
static inline double timed_searches(shoal_index *index, const float *queries, uint32_t n, uint32_t dim,
                             uint32_t k, const shoal_search_params *sp, uint32_t runs,
                             uint32_t *labels, float *dist, int *counts)
{
    double best = 1e300;
    for (uint32_t run = 0; run < runs; run++) {
        pass_begin();
        double start = now_seconds();
        for (uint32_t i = 0; i < n; i++) {
            counts[i] = shoal_index_search(index, queries + (size_t)i * dim, dim, k, sp,
                                           labels + (size_t)i * k, dist);
            if (counts[i] < 0) check(index, counts[i], "shoal_index_search");
        }
        double seconds = now_seconds() - start;
        pass_end(seconds);
        if (seconds < best) best = seconds;
    }
    return best;
}

/* Saves index to DIR/shoal-native-PID.seg (its path into path) and frees
 * it, for an adapter that opens it again with its rows left in the file;
 * returns the segment's size, and *head_bytes its
 * shoal_segment_summary.head_bytes. */
static inline size_t save_to_file(shoal_index *index, const char *dir, char *path,
                                  size_t path_size, uint64_t *head_bytes) {
    uint8_t *seg;
    size_t size;
    check(index, shoal_index_save(index, NULL, &seg, &size), "shoal_index_save");
    snprintf(path, path_size, "%s/shoal-native-%u.seg", dir, (unsigned)getpid());
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(seg, 1, size, f) != size || fclose(f)) die("cannot write", path);
    shoal_segment_summary info;
    check(index, shoal_segment_info(seg, size, &info), "shoal_segment_info");
    *head_bytes = info.head_bytes;
    shoal_index_free_bytes(index, seg);
    shoal_index_free(index);
    return size;
}

/* One candidate's row, read from the segment file fd into to. */
static inline void read_row(int fd, const shoal_candidate *c, uint8_t *to, size_t row,
                            uint32_t *label) {
    *label = c->label;
    if (pread(fd, to, row, (off_t)c->offset) != (ssize_t)row) die("pread of a rerank row failed", NULL);
}

/* External rerank rows (shoal_load_params.rerank_external): the two phases
 * with one pread(2) per candidate row from the segment file fd -- the first
 * k candidates' rows, then those of the later ones whose floor does not
 * exceed the k-th distance they gave (shoal.h) -- best of runs passes, as
 * timed_searches; *row_bytes gets the bytes of rows one pass read.  paced:
 * the passes take turns with other adapters (pass_begin; 0 for a warm-up,
 * which the runner does not count). */
static inline double timed_external(shoal_index *index, int fd, const float *queries, uint32_t n,
                             uint32_t dim, uint32_t k, const shoal_search_params *sp,
                             uint32_t runs, uint32_t *labels, float *dist, int *counts,
                             uint64_t *row_bytes, int paced) {
    static shoal_candidate cand[4096];
    static uint32_t cl[4096];
    uint8_t *rows = malloc((size_t)4096 * dim * 4);
    if (!rows) die("out of memory", NULL);
    size_t row = (size_t)dim * 4;
    double best = 1e300;
    for (uint32_t run = 0; run < runs; run++) {
        uint64_t bytes = 0;
        if (paced) pass_begin();
        double start = now_seconds();
        for (uint32_t i = 0; i < n; i++) {
            const float *q = queries + (size_t)i * dim;
            uint32_t *out = labels + (size_t)i * k;
            int nc = shoal_index_search_candidates(index, q, dim, k, sp, cand, 4096);
            if (nc < 0) check(index, nc, "shoal_index_search_candidates");
            if (nc > 4096) die("more than 4096 candidates", NULL);
            /* The first k rows, reranked; then the later candidates whose
             * floor does not exceed the k-th distance (k rows always give
             * k results), and all reranked. */
            uint32_t m = 0, first = (uint32_t)nc < k ? (uint32_t)nc : k;
            for (; m < first; m++) read_row(fd, &cand[m], rows + (size_t)m * row, row, &cl[m]);
            counts[i] = shoal_index_rerank_rows(index, q, dim, k, m, cl, rows, out, dist);
            if (counts[i] == (int)k && m < (uint32_t)nc) {
                float worst = dist[k - 1];
                uint32_t before = m;
                for (int c = (int)first; c < nc; c++) {
                    if (cand[c].floor > worst) continue;
                    read_row(fd, &cand[c], rows + (size_t)m * row, row, &cl[m]);
                    m++;
                }
                if (m > before)
                    counts[i] = shoal_index_rerank_rows(index, q, dim, k, m, cl, rows, out, dist);
            }
            bytes += (uint64_t)m * row;
            if (counts[i] < 0) check(index, counts[i], "shoal_index_rerank_rows");
        }
        double seconds = now_seconds() - start;
        if (paced) pass_end(seconds);
        if (seconds < best) best = seconds;
        *row_bytes = bytes;
    }
    free(rows);
    return best;
}

/* Turns result labels back into base row numbers (ids are "<row>"; -1 where
 * fewer than k came back) and writes them as int32 to path, for the runner
 * to compute recall from.  ids is scratch of n * k. */
static inline void write_neighbors(shoal_index *index, const uint32_t *labels, const int *counts,
                            uint32_t n, uint32_t k, int32_t *ids, const char *path)
{
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < k; j++) {
            ids[(size_t)i * k + j] = -1;
            if ((int)j >= counts[i]) continue;
            const char *id;
            int len = shoal_index_label_id(index, labels[(size_t)i * k + j], &id);
            check(index, len, "shoal_index_label_id");
            char text[16];
            snprintf(text, sizeof text, "%.*s", len, id);
            ids[(size_t)i * k + j] = (int32_t)strtol(text, NULL, 10);
        }
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(ids, sizeof *ids, (size_t)n * k, f) != (size_t)n * k || fclose(f))
        die("cannot write (does --neighbors exist?)", path);
}

#endif
