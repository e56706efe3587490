/*
 * kernels.c -- picks a kernel table.  On x86-64 the choice is made at run
 * time from the CPU's features (one x86-64 binary serves every machine); on
 * AArch64 NEON is part of the base architecture, so every aarch64 build uses
 * it; in wasm it is made at build time, because a module containing SIMD
 * instructions does not even validate where SIMD128 is missing -- JS picks
 * the module.
 */
#include "kernels.h"

#ifdef SHOAL_HAVE_X86
static int cpu_has_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static int cpu_has_avx512(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}
#endif

const shoal__kernels *shoal__kernels_get(shoal_simd want) {
    switch (want) {
    case SHOAL_SIMD_SCALAR:
        return &shoal__kernels_scalar;
#ifdef SHOAL_HAVE_X86
    case SHOAL_SIMD_AVX2:
        return cpu_has_avx2() ? &shoal__kernels_avx2 : NULL;
    case SHOAL_SIMD_AVX512:
        return cpu_has_avx512() ? &shoal__kernels_avx512 : NULL;
#endif
#ifdef __wasm_simd128__
    case SHOAL_SIMD_WASM128:
        return &shoal__kernels_wasm128;
#endif
#ifdef SHOAL_HAVE_NEON
    case SHOAL_SIMD_NEON:
        return &shoal__kernels_neon;
#endif
    case SHOAL_SIMD_AUTO:
#ifdef SHOAL_HAVE_X86
        if (cpu_has_avx512()) return &shoal__kernels_avx512;
        if (cpu_has_avx2()) return &shoal__kernels_avx2;
#endif
#ifdef __wasm_simd128__
        return &shoal__kernels_wasm128;
#endif
#ifdef SHOAL_HAVE_NEON
        return &shoal__kernels_neon;
#endif
        return &shoal__kernels_scalar;
    default:
        return NULL;
    }
}

const char *shoal_simd_name(shoal_simd want) {
    const shoal__kernels *k = shoal__kernels_get(want);
    return k ? k->name : NULL;
}
