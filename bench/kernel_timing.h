/*
 * kernel_timing.h -- the one kernel measurement, shared by bench/kernels.c
 * (native) and bench/kernels_wasm.c (WASI, run by bench/kernels-wasm.mjs),
 * so both tables in docs/BENCHMARKS.md come from the same loop.
 *
 * What is measured: one query against a set of base vectors, the access
 * pattern of a flat scan or an HNSW level-0 expansion.  The query stays in
 * L1; the set is sized (BENCH_SET_BYTES, default 512 KiB) to be larger than
 * L1d (48 KiB per core here) and well inside L2 (1 MiB per core), so the
 * figure is kernel throughput with operands streaming from L2, not from
 * DRAM and not from a warm L1.  --set-kib changes that for experiments.
 *
 * How: a timed pass calls the kernel on every base vector `reps` times;
 * reps is calibrated so one pass takes >= 5 ms (far above the clock's
 * resolution and the cost of clock_gettime); the result is the best of
 * `runs` passes (interleaved across configurations, see bench_run_all),
 * which discards passes disturbed by other processes.
 * Results are summed into a local that is stored to a volatile sink after
 * each pass: every call's result feeds the store, so nothing is elided, and
 * no per-call volatile store sits in the loop (that would add a
 * store-forwarding chain of a few cycles per distance to the figure).  The
 * kernels are called through the table's function pointers, as an index
 * does.
 */
#ifndef SHOAL_BENCH_KERNEL_TIMING_H
#define SHOAL_BENCH_KERNEL_TIMING_H

#include "kernels/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_SET_BYTES (512u * 1024u)
#define BENCH_MIN_PASS_NS 5e6
#define BENCH_RUNS 15

static const unsigned bench_dims[] = {128, 384, 784, 1536};
#define BENCH_N_DIMS (sizeof bench_dims / sizeof bench_dims[0])

enum { BENCH_L2SQ_F32, BENCH_DOT_F32, BENCH_DOT_I8, BENCH_L2SQ_I8, BENCH_N_KERNELS };
static const char *const bench_kernel_names[BENCH_N_KERNELS] = {"l2sq_f32", "dot_f32", "dot_i8",
                                                                 "l2sq_i8"};

static volatile double bench_sink;

static double bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* splitmix64, for data only: values do not change the timing (no denormals). */
static uint64_t bench_rng(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct bench_data {
    size_t dim, count;   /* count base vectors of dim elements */
    float *fq, *fbase;   /* f32 query and set */
    int8_t *iq, *ibase;  /* int8 query and set, same count */
} bench_data;

/* Same vector count for both types, so f32 uses set_bytes and int8 a
 * quarter of it -- both between L1 and L2 for every dim measured. */
static int bench_data_init(bench_data *b, size_t dim, size_t set_bytes) {
    uint64_t s = 0x5368 + dim;
    b->dim = dim;
    b->count = set_bytes / (dim * sizeof(float));
    if (b->count < 16) b->count = 16;
    size_t fbytes = ((b->count + 1) * dim * sizeof(float) + 63) / 64 * 64;
    size_t ibytes = ((b->count + 1) * dim + 63) / 64 * 64;
    b->fq = aligned_alloc(64, fbytes);
    b->iq = aligned_alloc(64, ibytes);
    if (!b->fq || !b->iq) return -1;
    b->fbase = b->fq + dim; /* packed right after the query, as in an index */
    b->ibase = b->iq + dim;
    for (size_t i = 0; i < (b->count + 1) * dim; i++) {
        uint64_t r = bench_rng(&s);
        b->fq[i] = (float)(r >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;
        b->iq[i] = (int8_t)(r >> 8);
    }
    return 0;
}

static void bench_data_free(bench_data *b) {
    free(b->fq);
    free(b->iq);
}

/* One pass: `reps` sweeps over the set; returns elapsed ns. */
static double bench_pass(const shoal__kernels *k, int kernel, const bench_data *b, size_t reps) {
    const size_t d = b->dim, n = b->count;
    double t0 = bench_now_ns();
    if (kernel == BENCH_L2SQ_F32 || kernel == BENCH_DOT_F32) {
        float (*f)(const float *, const float *, size_t) =
            kernel == BENCH_L2SQ_F32 ? k->l2sq_f32 : k->dot_f32;
        float acc = 0.0f;
        for (size_t r = 0; r < reps; r++)
            for (size_t j = 0; j < n; j++) acc += f(b->fq, b->fbase + j * d, d);
        bench_sink += acc;
    } else {
        int32_t (*f)(const int8_t *, const int8_t *, size_t) =
            kernel == BENCH_DOT_I8 ? k->dot_i8 : k->l2sq_i8;
        int64_t acc = 0;
        for (size_t r = 0; r < reps; r++)
            for (size_t j = 0; j < n; j++) acc += f(b->iq, b->ibase + j * d, d);
        bench_sink += (double)acc;
    }
    return bench_now_ns() - t0;
}

/* Repetitions that make one pass last >= BENCH_MIN_PASS_NS (the first
 * passes also warm the caches and let the clock ramp up). */
static size_t bench_calibrate(const shoal__kernels *k, int kernel, const bench_data *b) {
    size_t reps = 1;
    double t = bench_pass(k, kernel, b, reps);
    while (t < BENCH_MIN_PASS_NS) {
        size_t grow = t > 0 ? (size_t)(BENCH_MIN_PASS_NS / t * 1.2) + 1 : 16;
        reps *= grow < 2 ? 2 : grow;
        t = bench_pass(k, kernel, b, reps);
    }
    return reps;
}

/*
 * Best-of-runs ns per distance for n configurations.  The runs are
 * interleaved -- round r times every configuration once -- so a burst of
 * load from another process spoils one pass of many configurations rather
 * than every pass of one; the minimum then discards it.
 */
typedef struct bench_config {
    const shoal__kernels *k;
    int kernel;
    const bench_data *data;
    size_t reps;
    double best_ns; /* per distance, filled in */
} bench_config;

static void bench_run_all(bench_config *c, size_t n, int runs) {
    for (size_t i = 0; i < n; i++) {
        c[i].reps = bench_calibrate(c[i].k, c[i].kernel, c[i].data);
        c[i].best_ns = -1.0;
    }
    for (int r = 0; r < runs; r++)
        for (size_t i = 0; i < n; i++) {
            double t = bench_pass(c[i].k, c[i].kernel, c[i].data, c[i].reps) /
                       ((double)c[i].reps * (double)c[i].data->count);
            if (c[i].best_ns < 0 || t < c[i].best_ns) c[i].best_ns = t;
        }
}

/* Shared command line: --json, --set-kib N, --runs N.  Returns 0 or -1. */
typedef struct bench_options {
    int json;
    size_t set_bytes;
    int runs;
} bench_options;

static int bench_parse(int argc, char **argv, bench_options *o) {
    o->json = 0;
    o->set_bytes = BENCH_SET_BYTES;
    o->runs = BENCH_RUNS;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            o->json = 1;
        } else if (strcmp(argv[i], "--set-kib") == 0 && i + 1 < argc) {
            long v = strtol(argv[++i], NULL, 10);
            if (v < 1) return -1;
            o->set_bytes = (size_t)v * 1024u;
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            long v = strtol(argv[++i], NULL, 10);
            if (v < 1 || v > 1000) return -1;
            o->runs = (int)v;
        } else {
            fprintf(stderr, "usage: %s [--json] [--set-kib N] [--runs N]\n", argv[0]);
            return -1;
        }
    }
    return 0;
}

#endif
