/*
 * bench/kernels_wasm.c -- the kernel benchmark as a WASI program.
 *
 * Built twice (Makefile, bench section): with -msimd128, where
 * SHOAL_SIMD_AUTO resolves to the SIMD128 table, and without, where it
 * resolves to the scalar kernels -- exactly what a browser without SIMD
 * gets from the baseline module.  bench/kernels-wasm.mjs runs both under
 * node:wasi and prints the comparison.  The JS API only exposes whole-index
 * calls, so this is the only way to time the kernels alone in wasm.  The
 * measurement is kernel_timing.h, the same as the native benchmark.
 */
#define _POSIX_C_SOURCE 200809L
#include "kernel_timing.h"

int main(int argc, char **argv) {
    bench_options opt;
    if (bench_parse(argc, argv, &opt) != 0) return 2;
    const shoal__kernels *k = shoal__kernels_get(SHOAL_SIMD_AUTO);

    bench_data data[BENCH_N_DIMS];
    bench_config configs[BENCH_N_DIMS * BENCH_N_KERNELS];
    size_t nc = 0;
    for (size_t di = 0; di < BENCH_N_DIMS; di++) {
        if (bench_data_init(&data[di], bench_dims[di], opt.set_bytes) != 0) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        for (int kn = 0; kn < BENCH_N_KERNELS; kn++)
            configs[nc++] = (bench_config){k, kn, &data[di], 0, 0.0};
    }
    bench_run_all(configs, nc, opt.runs);

    if (opt.json) {
        printf("{\"bench\":\"kernels\",\"target\":\"wasm32-wasi\",\"simd\":\"%s\",\"set_bytes\":%zu,"
               "\"runs\":%d,\"results\":[",
               k->name, opt.set_bytes, opt.runs);
        for (size_t i = 0; i < nc; i++)
            printf("%s\n{\"kernel\":\"%s\",\"dim\":%zu,\"ns\":%.3f}", i ? "," : "",
                   bench_kernel_names[configs[i].kernel], configs[i].data->dim, configs[i].best_ns);
        printf("\n]}\n");
    } else {
        printf("wasm32 kernels \"%s\", ns/distance, best of %d\n\n| kernel | d | ns |\n|---|--:|--:|\n",
               k->name, opt.runs);
        for (size_t i = 0; i < nc; i++)
            printf("| %s | %zu | %.1f |\n", bench_kernel_names[configs[i].kernel],
                   configs[i].data->dim, configs[i].best_ns);
    }
    for (size_t di = 0; di < BENCH_N_DIMS; di++) bench_data_free(&data[di]);
    return 0;
}
