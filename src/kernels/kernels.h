/*
 * kernels.h -- distance kernels, one table per instruction set.
 *
 * The scalar file is the specification: every other table must return the
 * very same bits for every length and alignment -- the f32 kernels too, since
 * they all follow one summation order (kernels_scalar.c) and never fuse a
 * multiply into an add.  tests/test_kernels.c checks dims 1..300 at odd
 * offsets.  Each x86 SIMD file is compiled with its own flags, so the rest of
 * a native binary stays baseline x86-64 and one binary runs everywhere; NEON
 * needs none, being part of baseline AArch64.
 *
 * No table is chosen globally: each index handle asks shoal__kernels_get()
 * once and keeps the pointer, so there is no mutable global state and a test
 * can force the scalar path per handle.
 */
#ifndef SHOAL_KERNELS_H
#define SHOAL_KERNELS_H

#include "shoal.h"

/* f32 kernels sum in this many interleaved lanes; see kernels_scalar.c. */
#define SHOAL_F32_LANES 32

typedef struct shoal__kernels {
    const char *name;
    /* sum (a[i] - b[i])^2 */
    float (*l2sq_f32)(const float *a, const float *b, size_t n);
    /* sum a[i] * b[i] */
    float (*dot_f32)(const float *a, const float *b, size_t n);
    /* exact int32 results: dot_i8 fits for n <= 131072, l2sq_i8 (up to 65025
     * per term) for n <= 33025; SHOAL_DIM_MAX stays below both */
    int32_t (*dot_i8)(const int8_t *a, const int8_t *b, size_t n);
    int32_t (*l2sq_i8)(const int8_t *a, const int8_t *b, size_t n);
    /* Fast-scan PQ with 4-bit codes (see ivf.c): for each of nblocks blocks
     * of SHOAL_PQ4_BLOCK codes, out[32 b + v] = sum over j < m2 of
     * lut[16 j + code_j(v)], in uint16 arithmetic (mod 2^16; callers keep the
     * true sums below 65536, so every table returns the same integers).
     * m2 is even.  A block is m2 * 16 bytes: bytes 16 j .. 16 j + 15 hold
     * sub-quantizer j, byte i its code for vector i in the low nibble and
     * for vector i + 16 in the high nibble.  lut holds m2 rows of 16 uint8. */
    void (*pq4_scan)(const uint8_t *codes, const uint8_t *lut, size_t m2, size_t nblocks,
                     uint16_t *out);
    /* l2sq_f32 when it is below bound (the same bits); otherwise any value
     * >= bound: the sum may stop once a partial sum reaches bound. */
    float (*l2sq_f32_below)(const float *a, const float *b, size_t n, float bound);
    /* sum q[i] * c[i], exact in int32 when |q[i]| <= shoal__i16_qmax(n)
     * (and |c[i]| <= 127): an int16 query against int8 codes (IVF SQ8). */
    int32_t (*dot_i16_i8)(const int16_t *q, const int8_t *c, size_t n);
} shoal__kernels;

/* The largest |q[i]| that keeps every partial sum of dot_i16_i8 over n
 * terms below 2^31 with codes in -127..127: 32767 up to n = 516, then
 * floor((2^31 - 1) / (127 n)) (1032 at SHOAL_DIM_MAX). */
static inline int32_t shoal__i16_qmax(size_t n) {
    size_t m = n ? 2147483647u / (127u * n) : 32767u;
    return m > 32767u ? 32767 : (int32_t)m;
}

/* Elements between two partial-sum checks of l2sq_f32_below (a multiple of
 * SHOAL_F32_LANES). */
#ifndef SHOAL_L2_CHECK
#define SHOAL_L2_CHECK 128
#endif

/* Codes between two checks of HNSW SQ8's early stop (src/index/hnsw.c,
 * probe_distance_below; any positive count: the sums are integers). */
#ifndef SHOAL_I8_CHECK
#define SHOAL_I8_CHECK 256u
#endif

/* Vectors per fast-scan block. */
#define SHOAL_PQ4_BLOCK 32

extern const shoal__kernels shoal__kernels_scalar;
#if defined(__x86_64__) || defined(_M_X64)
#define SHOAL_HAVE_X86 1
extern const shoal__kernels shoal__kernels_avx2;
extern const shoal__kernels shoal__kernels_avx512;
#endif
#if defined(__wasm_simd128__)
extern const shoal__kernels shoal__kernels_wasm128;
#endif
#if defined(__aarch64__)
/* NEON is baseline on AArch64: no flags, no run-time check. */
#define SHOAL_HAVE_NEON 1
extern const shoal__kernels shoal__kernels_neon;
#endif

/* The table for `want`, or NULL if this build or CPU cannot run it. */
const shoal__kernels *shoal__kernels_get(shoal_simd want);

#endif
