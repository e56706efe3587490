/*
 * segment_native.c -- segment save / load / view times and sizes on
 * Fashion-MNIST (60,000 x 784 float32), natively.  `make bench-segment`.
 *
 * Builds three indexes from bench/data/fashion-mnist-base.fvecs -- HNSW
 * float32, HNSW SQ8 (M 16, ef_construction 100: the build is not what is
 * measured) and IVF-PQ (4-bit fast scan, pq_m 392, nlist 256) -- and for
 * each, uncompressed (zstd_level 0) and with zstd level 3: the segment size
 * and its ratio to the raw float32 vectors (188.16 MB), the time to save,
 * to load (a copy the index owns), to view (zero-copy, uncompressed only),
 * to read the header (shoal_segment_info) and to compute the CID.  Times are
 * the best of RUNS runs of one call, wall clock (CLOCK_MONOTONIC), one
 * thread; the segment is in memory (no file I/O is timed).  Every load and
 * view verifies all checksums and validates every count, link and list.
 * Prints a Markdown table for docs/BENCHMARKS.md.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shoal.h"

#define RUNS 3
#define RAW_F32 (60000.0 * 784 * 4)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what, int rc, shoal_index *index) {
    fprintf(stderr, "segment_native: %s: %s %s\n", what, shoal_strerror(rc),
            index ? shoal_index_errmsg(index) : "");
    exit(1);
}

static float *read_fvecs(const char *path, uint32_t *n, uint32_t *dim) {
    FILE *f = fopen(path, "rb");
    if (!f) die(path, SHOAL_ENOTFOUND, NULL);
    int32_t d;
    if (fread(&d, 4, 1, f) != 1) die("fvecs", SHOAL_ECORRUPT, NULL);
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    *dim = (uint32_t)d;
    *n = (uint32_t)(bytes / (4 * (d + 1)));
    float *out = malloc((size_t)*n * d * 4);
    for (uint32_t i = 0; i < *n; i++) {
        if (fread(&d, 4, 1, f) != 1 || fread(out + (size_t)i * d, 4, (size_t)d, f) != (size_t)d)
            die("fvecs", SHOAL_ETRUNCATED, NULL);
    }
    fclose(f);
    return out;
}

static void measure(const char *name, shoal_index *index, int level) {
    shoal_save_params sp;
    shoal_save_params_init(&sp);
    sp.zstd_level = level;
    uint8_t *seg = NULL;
    size_t size = 0;
    double t_save = 1e9, t_load = 1e9, t_view = 1e9, t_info = 1e9, t_cid = 1e9;
    for (int r = 0; r < RUNS; r++) {
        if (seg) shoal_index_free_bytes(index, seg);
        double t = now();
        int rc = shoal_index_save(index, &sp, &seg, &size);
        t = now() - t;
        if (rc) die("save", rc, index);
        if (t < t_save) t_save = t;
    }
    /* An aligned copy the caller owns, as a file read or mmap would give. */
    uint8_t *bytes = aligned_alloc(64, (size + 63) & ~(size_t)63);
    memcpy(bytes, seg, size);
    shoal_index_free_bytes(index, seg);
    for (int r = 0; r < RUNS; r++) {
        shoal_index *x;
        double t = now();
        int rc = shoal_index_load(bytes, size, NULL, &x);
        t = now() - t;
        if (rc) die("load", rc, NULL);
        if (t < t_load) t_load = t;
        shoal_index_free(x);
        if (level == 0) {
            t = now();
            rc = shoal_index_view(bytes, size, NULL, &x);
            t = now() - t;
            if (rc) die("view", rc, NULL);
            if (t < t_view) t_view = t;
            shoal_index_free(x);
        }
        shoal_segment_summary info;
        t = now();
        shoal_segment_info(bytes, size, &info);
        t = now() - t;
        if (t < t_info) t_info = t;
        char cid[SHOAL_CID_SIZE];
        t = now();
        shoal_cid(bytes, size, cid);
        t = now() - t;
        if (t < t_cid) t_cid = t;
    }
    char view[32] = "--";
    if (level == 0) snprintf(view, sizeof view, "%.1f", t_view * 1e3);
    printf("| %s | %s | %.1f | %.3f | %.0f | %.0f | %s | %.3f | %.0f |\n", name,
           level ? "zstd 3" : "none", size / 1e6, size / RAW_F32, t_save * 1e3, t_load * 1e3,
           view, t_info * 1e3, t_cid * 1e3);
    fflush(stdout);
    free(bytes);
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "bench/data/fashion-mnist-base.fvecs";
    uint32_t n, dim;
    float *data = read_fvecs(path, &n, &dim);
    char *idbytes = malloc((size_t)n * 8);
    uint32_t *offsets = malloc(((size_t)n + 1) * 4);
    uint32_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        offsets[i] = at;
        at += (uint32_t)sprintf(idbytes + at, "%u", i);
    }
    offsets[n] = at;
    printf("| index | compression | MB | x raw f32 | save ms | load ms | view ms | info ms | CID ms |\n"
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int kind = 0; kind < 3; kind++) {
        shoal_params p;
        shoal_params_init(&p);
        p.dim = dim;
        p.seed = 1;
        const char *name;
        if (kind < 2) {
            p.kind = SHOAL_KIND_HNSW;
            p.hnsw.M = 16;
            p.hnsw.ef_construction = 100;
            p.quantizer = kind ? SHOAL_QUANTIZER_SQ8 : SHOAL_QUANTIZER_F32;
            name = kind ? "HNSW SQ8" : "HNSW f32";
        } else {
            p.kind = SHOAL_KIND_IVF;
            p.ivf.nlist = 256;
            p.quantizer = SHOAL_QUANTIZER_PQ;
            p.ivf.pq_bits = 4;
            p.ivf.pq_m = 392;
            name = "IVF-PQ4 (392 x 4 bit)";
        }
        shoal_index *index;
        int rc = shoal_index_new(&p, &index);
        if (rc) die("new", rc, NULL);
        double t = now();
        if ((rc = shoal_index_add(index, n, idbytes, offsets, data, dim)) < 0) die("add", rc, index);
        fprintf(stderr, "%s: built in %.1f s\n", name, now() - t);
        measure(name, index, 0);
        measure(name, index, 3);
        shoal_index_free(index);
    }
    free(data);
    free(idbytes);
    free(offsets);
    return 0;
}
