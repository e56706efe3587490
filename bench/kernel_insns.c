/*
 * kernel_insns.c -- calls one kernel once, for counting its instructions.
 *
 *     kernel_insns TABLE KERNEL DIM      e.g.  kernel_insns neon l2sq_f32 784
 *
 * bench/count_insns.sh runs this under qemu-aarch64 with TB logging and
 * adds up the instructions executed inside the kernel's own function
 * (l2sq_f32_neon, dot_i8_scalar, ...), prologue, tail and fold included.
 * Under emulation a time means nothing; an instruction count is exact, and
 * the ratio of two counts is a first estimate of a speedup that real
 * hardware must confirm (docs/BENCHMARKS.md, "ARM64").  Nothing here is
 * specific to aarch64: natively it simply runs the kernel once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

static const struct {
    const char *name;
    shoal_simd simd;
} tables[] = {
    {"scalar", SHOAL_SIMD_SCALAR}, {"avx2", SHOAL_SIMD_AVX2},       {"avx512", SHOAL_SIMD_AVX512},
    {"wasm128", SHOAL_SIMD_WASM128}, {"neon", SHOAL_SIMD_NEON},
};

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: kernel_insns TABLE l2sq_f32|dot_f32|dot_i8|l2sq_i8 DIM\n");
        return 1;
    }
    const shoal__kernels *k = NULL;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        if (!strcmp(argv[1], tables[t].name)) k = shoal__kernels_get(tables[t].simd);
    long dim = strtol(argv[3], NULL, 10);
    if (!k || dim < 1 || dim > SHOAL_DIM_MAX) {
        fprintf(stderr, "kernel_insns: no table '%s' here, or a bad dimension\n", argv[1]);
        return 1;
    }
    size_t n = (size_t)dim;
    float *fa = malloc(n * sizeof *fa), *fb = malloc(n * sizeof *fb);
    int8_t *ia = malloc(n), *ib = malloc(n);
    if (!fa || !fb || !ia || !ib) return 1;
    for (size_t i = 0; i < n; i++) {
        fa[i] = (float)(i % 13) * 0.25f;
        fb[i] = (float)(i % 7) * -0.5f;
        ia[i] = (int8_t)(i * 37);
        ib[i] = (int8_t)(i * 11);
    }
    const char *kernel = argv[2];
    if (!strcmp(kernel, "l2sq_f32"))
        printf("%.9g\n", (double)k->l2sq_f32(fa, fb, n));
    else if (!strcmp(kernel, "dot_f32"))
        printf("%.9g\n", (double)k->dot_f32(fa, fb, n));
    else if (!strcmp(kernel, "dot_i8"))
        printf("%d\n", (int)k->dot_i8(ia, ib, n));
    else if (!strcmp(kernel, "l2sq_i8"))
        printf("%d\n", (int)k->l2sq_i8(ia, ib, n));
    else {
        fprintf(stderr, "kernel_insns: unknown kernel '%s'\n", kernel);
        return 1;
    }
    free(fa);
    free(fb);
    free(ia);
    free(ib);
    return 0;
}
