/*
 * bench/kernels.c -- native distance-kernel benchmark (`make bench`).
 *
 * For each dimension and each kernel table this CPU can run (scalar, AVX2,
 * AVX-512) prints ns per distance and the speedup over the scalar
 * reference, as a Markdown table (default) or JSON (--json).  The scalar
 * file is compiled with auto-vectorization off (Makefile NOVEC), so the
 * ratio is "hand-written SIMD vs the plain specification loop".  The method
 * is described in kernel_timing.h; the figures go to docs/BENCHMARKS.md.
 * Timed tests never produce benchmark figures.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include "kernel_timing.h"

static const shoal_simd tables[] = {SHOAL_SIMD_SCALAR, SHOAL_SIMD_AVX2, SHOAL_SIMD_AVX512};
#define N_TABLES (sizeof tables / sizeof tables[0])

/* 1-minute load average, to print next to the figures ("?" off Linux). */
static void load_average(char *out, size_t size) {
    snprintf(out, size, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return;
    double l1;
    if (fscanf(f, "%lf", &l1) == 1) snprintf(out, size, "%.2f", l1);
    fclose(f);
}

int main(int argc, char **argv) {
    bench_options opt;
    if (bench_parse(argc, argv, &opt) != 0) return 2;

    const shoal__kernels *k[N_TABLES];
    for (size_t t = 0; t < N_TABLES; t++) k[t] = shoal__kernels_get(tables[t]);

    /* ns[dim][kernel][table], < 0 where the table is unavailable */
    double ns[BENCH_N_DIMS][BENCH_N_KERNELS][N_TABLES];
    bench_data data[BENCH_N_DIMS];
    bench_config configs[BENCH_N_DIMS * BENCH_N_KERNELS * N_TABLES];
    size_t nc = 0;
    for (size_t di = 0; di < BENCH_N_DIMS; di++) {
        if (bench_data_init(&data[di], bench_dims[di], opt.set_bytes) != 0) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        for (int kn = 0; kn < BENCH_N_KERNELS; kn++)
            for (size_t t = 0; t < N_TABLES; t++)
                if (k[t]) configs[nc++] = (bench_config){k[t], kn, &data[di], 0, 0.0};
    }
    char load_before[16], load_after[16];
    load_average(load_before, sizeof load_before);
    bench_run_all(configs, nc, opt.runs);
    for (size_t di = 0, i = 0; di < BENCH_N_DIMS; di++) {
        for (int kn = 0; kn < BENCH_N_KERNELS; kn++)
            for (size_t t = 0; t < N_TABLES; t++)
                ns[di][kn][t] = k[t] ? configs[i++].best_ns : -1.0;
        bench_data_free(&data[di]);
    }
    load_average(load_after, sizeof load_after);

    if (opt.json) {
        printf("{\"bench\":\"kernels\",\"target\":\"native\",\"set_bytes\":%zu,\"runs\":%d,"
               "\"loadavg_before\":\"%s\",\"loadavg_after\":\"%s\",\"results\":[",
               opt.set_bytes, opt.runs, load_before, load_after);
        const char *sep = "";
        for (size_t di = 0; di < BENCH_N_DIMS; di++)
            for (int kn = 0; kn < BENCH_N_KERNELS; kn++)
                for (size_t t = 0; t < N_TABLES; t++) {
                    if (!k[t]) continue;
                    printf("%s\n{\"kernel\":\"%s\",\"dim\":%u,\"simd\":\"%s\",\"ns\":%.3f,"
                           "\"vs_scalar\":%.3f}",
                           sep, bench_kernel_names[kn], bench_dims[di], k[t]->name,
                           ns[di][kn][t], ns[di][kn][0] / ns[di][kn][t]);
                    sep = ",";
                }
        printf("\n]}\n");
        return 0;
    }

    printf("Kernel ns/distance, one query vs a %zu KiB f32 set (int8 set: a quarter), "
           "best of %d; load average %s -> %s\n\n",
           opt.set_bytes / 1024, opt.runs, load_before, load_after);
    printf("| kernel | d |");
    for (size_t t = 0; t < N_TABLES; t++)
        if (k[t]) printf(t ? " %s ns | ×scalar |" : " %s ns |", k[t]->name);
    printf("\n|---|--:|");
    for (size_t t = 0; t < N_TABLES; t++)
        if (k[t]) printf(t ? "--:|--:|" : "--:|");
    printf("\n");
    for (int kn = 0; kn < BENCH_N_KERNELS; kn++)
        for (size_t di = 0; di < BENCH_N_DIMS; di++) {
            printf("| %s | %u |", bench_kernel_names[kn], bench_dims[di]);
            for (size_t t = 0; t < N_TABLES; t++) {
                if (!k[t]) continue;
                if (t == 0)
                    printf(" %.1f |", ns[di][kn][t]);
                else
                    printf(" %.1f | %.1f× |", ns[di][kn][t], ns[di][kn][0] / ns[di][kn][t]);
            }
            printf("\n");
        }
    return 0;
}
