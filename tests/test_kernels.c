/*
 * test_kernels.c -- every SIMD kernel table against the scalar reference.
 *
 * The scalar kernels are the specification (kernels.h).  Each table this
 * build and CPU can run -- AVX2 and AVX-512 on x86-64, NEON on aarch64
 * (make test-arm64 runs this under qemu), SIMD128 in the -msimd128 wasm
 * builds -- is compared with them for every length 1..300 at
 * misaligned addresses, so each main loop, each remainder step and each
 * masked tail is exercised at every residue.  The int8 kernels must agree
 * exactly, including on the extreme inputs that would expose int16
 * saturation or int32 overflow; the f32 kernels to a bound derived below.
 *
 * A kernel must also read no byte past n: one test puts both vectors at the
 * very end of a malloc'd page (ASan's redzone starts right after it), and
 * natively another puts them against a PROT_NONE guard page, which catches
 * an over-wide load even where ASan does not instrument it (GCC leaves
 * masked-load builtins uninstrumented; the hardware suppresses faults only
 * for lanes that are masked off, so a correct kernel survives the guard).
 */
#if !defined(__wasi__) && !defined(__EMSCRIPTEN__) && (defined(__linux__) || defined(__APPLE__))
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS under -std=c11 */
#define TEST_HAVE_GUARD_PAGE 1
#endif

#include "harness.h"
#include "kernels/kernels.h"

#include <float.h>
#include <stdlib.h>

#ifdef TEST_HAVE_GUARD_PAGE
#include <sys/mman.h>
#include <unistd.h>
#endif

#define DIM_MAX_TESTED 300
/* Room for the largest length plus the largest misalignment, rounded to 64. */
#define F32_CAP 320
#define I8_CAP 320

/* The tables under test besides scalar, in the order AUTO prefers them. */
static const shoal_simd simd_tables[] = {SHOAL_SIMD_AVX512, SHOAL_SIMD_AVX2, SHOAL_SIMD_WASM128,
                                         SHOAL_SIMD_NEON};
#define N_TABLES (sizeof simd_tables / sizeof simd_tables[0])

/* all[0] = scalar, all[1 + t] = simd_tables[t] or NULL where unavailable. */
static void all_tables(const shoal__kernels *all[N_TABLES + 1]) {
    all[0] = shoal__kernels_get(SHOAL_SIMD_SCALAR);
    for (size_t t = 0; t < N_TABLES; t++) all[t + 1] = shoal__kernels_get(simd_tables[t]);
}

static const shoal__kernels *scalar(void) { return shoal__kernels_get(SHOAL_SIMD_SCALAR); }

static int8_t rng_i8(test_rng *r) { return (int8_t)(test_rng_next(r) >> 56); }

/*
 * f32 results must be the same bits as the scalar reference: every table sums
 * in the reference's 32-lane order and rounds each product before adding it
 * (kernels_scalar.c), so any difference -- a dropped, doubled or reordered
 * term, an FMA -- is a bug, not rounding.  Cross-build determinism of whole
 * indexes rests on this.
 */
/* A check with context (table, kernel, length, offsets) in its message. */
static int check_f32(const char *file, int line, const char *table, const char *kernel,
                     size_t n, size_t oa, size_t ob, float got, float want) {
    int ok = memcmp(&got, &want, sizeof got) == 0;
    char detail[200] = "";
    if (!ok)
        snprintf(detail, sizeof detail, "%s.%s n=%zu offsets a+%zu b+%zu: %.9g vs scalar %.9g",
                 table, kernel, n, oa, ob, (double)got, (double)want);
    return harness_check(ok, file, line, "simd == scalar (bits)", ok ? NULL : detail);
}

static int check_i32(const char *file, int line, const char *table, const char *kernel,
                     size_t n, size_t oa, size_t ob, long long got, long long want) {
    int ok = got == want;
    char detail[200] = "";
    if (!ok)
        snprintf(detail, sizeof detail, "%s.%s n=%zu offsets a+%zu b+%zu: %lld vs expected %lld",
                 table, kernel, n, oa, ob, got, want);
    return harness_check(ok, file, line, "simd == expected", ok ? NULL : detail);
}
#define CHECK_F32(t, k, n, oa, ob, got, want) \
    check_f32(__FILE__, __LINE__, (t), (k), (n), (oa), (ob), (got), (want))
#define CHECK_I32(t, k, n, oa, ob, got, want) \
    check_i32(__FILE__, __LINE__, (t), (k), (n), (oa), (ob), (got), (want))

/* Compares all four kernels of `k` with scalar on one pair; 0 on a failure. */
static int compare_pair(const shoal__kernels *k, const float *fa, const float *fb,
                        const int8_t *ia, const int8_t *ib, size_t n, size_t oa, size_t ob) {
    const shoal__kernels *ref = scalar();
    int ok = 1;
    if (fa) {
        ok &= CHECK_F32(k->name, "l2sq_f32", n, oa, ob, k->l2sq_f32(fa, fb, n),
                        ref->l2sq_f32(fa, fb, n));
        ok &= CHECK_F32(k->name, "dot_f32", n, oa, ob, k->dot_f32(fa, fb, n),
                        ref->dot_f32(fa, fb, n));
    }
    if (ia) {
        ok &= CHECK_I32(k->name, "dot_i8", n, oa, ob, k->dot_i8(ia, ib, n), ref->dot_i8(ia, ib, n));
        ok &= CHECK_I32(k->name, "l2sq_i8", n, oa, ob, k->l2sq_i8(ia, ib, n),
                        ref->l2sq_i8(ia, ib, n));
    }
    return ok;
}

/* ------------------------------------------------------------ dispatch */

#ifdef SHOAL_HAVE_X86
/* Asked independently of kernels.c so a dispatch bug cannot hide a table. */
static int cpu_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
static int cpu_avx512(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}
#endif

static void test_names(void) {
    CHECK_STR(shoal_simd_name(SHOAL_SIMD_SCALAR), "scalar");

    const shoal__kernels *avx2 = shoal__kernels_get(SHOAL_SIMD_AVX2);
    const shoal__kernels *avx512 = shoal__kernels_get(SHOAL_SIMD_AVX512);
    const shoal__kernels *wasm128 = shoal__kernels_get(SHOAL_SIMD_WASM128);
    const shoal__kernels *neon = shoal__kernels_get(SHOAL_SIMD_NEON);
#ifdef SHOAL_HAVE_X86
    CHECK_INT(avx2 != NULL, cpu_avx2());
    CHECK_INT(avx512 != NULL, cpu_avx512());
#else
    CHECK(avx2 == NULL);
    CHECK(avx512 == NULL);
#endif
#ifdef __wasm_simd128__
    CHECK(wasm128 != NULL);
#else
    CHECK(wasm128 == NULL);
#endif
#ifdef __aarch64__
    CHECK(neon != NULL); /* baseline there: never missing */
#else
    CHECK(neon == NULL);
#endif
    if (avx2) CHECK_STR(shoal_simd_name(SHOAL_SIMD_AVX2), "avx2");
    if (avx512) CHECK_STR(shoal_simd_name(SHOAL_SIMD_AVX512), "avx512");
    if (wasm128) CHECK_STR(shoal_simd_name(SHOAL_SIMD_WASM128), "wasm-simd128");
    if (neon) CHECK_STR(shoal_simd_name(SHOAL_SIMD_NEON), "neon");
    if (!avx2) CHECK(shoal_simd_name(SHOAL_SIMD_AVX2) == NULL);
    if (!avx512) CHECK(shoal_simd_name(SHOAL_SIMD_AVX512) == NULL);
    if (!wasm128) CHECK(shoal_simd_name(SHOAL_SIMD_WASM128) == NULL);
    if (!neon) CHECK(shoal_simd_name(SHOAL_SIMD_NEON) == NULL);

    /* Every table is complete. */
    const shoal__kernels *all[N_TABLES + 1];
    all_tables(all);
    for (size_t i = 0; i <= N_TABLES; i++) {
        if (!all[i]) continue;
        CHECK(all[i]->name && all[i]->l2sq_f32 && all[i]->dot_f32 && all[i]->dot_i8 &&
              all[i]->l2sq_i8 && all[i]->pq4_scan && all[i]->l2sq_f32_below &&
              all[i]->dot_i16_i8);
    }
}

static void test_auto_picks_best(void) {
    const shoal__kernels *want = scalar();
    for (size_t t = N_TABLES; t-- > 0;) { /* simd_tables is best first */
        const shoal__kernels *k = shoal__kernels_get(simd_tables[t]);
        if (k) want = k;
    }
    CHECK(shoal__kernels_get(SHOAL_SIMD_AUTO) == want);
    CHECK_STR(shoal_simd_name(SHOAL_SIMD_AUTO), want->name);
#ifdef SHOAL_HAVE_X86
    if (cpu_avx512())
        CHECK_STR(shoal_simd_name(SHOAL_SIMD_AUTO), "avx512");
    else if (cpu_avx2())
        CHECK_STR(shoal_simd_name(SHOAL_SIMD_AUTO), "avx2");
#elif defined(__wasm_simd128__)
    CHECK_STR(shoal_simd_name(SHOAL_SIMD_AUTO), "wasm-simd128");
#elif defined(__aarch64__)
    CHECK_STR(shoal_simd_name(SHOAL_SIMD_AUTO), "neon");
#endif
}

static void test_out_of_range(void) {
    const shoal_simd bad[] = {(shoal_simd)(SHOAL_SIMD_NEON + 1), (shoal_simd)-1,
                              (shoal_simd)1000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(shoal__kernels_get(bad[i]) == NULL);
        CHECK(shoal_simd_name(bad[i]) == NULL);
    }
}

/* ------------------------------------------------- agreement with scalar */

static void test_f32_every_dim_misaligned(void) {
    /* 64-byte aligned base, so offset k is exactly k floats off any vector
     * boundary; C11 aligned_alloc wants a size that is a multiple of 64. */
    float *a = aligned_alloc(64, F32_CAP * sizeof(float));
    float *b = aligned_alloc(64, F32_CAP * sizeof(float));
    if (!CHECK(a && b)) goto out;
    test_rng rng = {0x6b65726e656c7331ull};
    int tested = 0;
    char names[64] = "";
    for (size_t t = 0; t < N_TABLES; t++) {
        const shoal__kernels *k = shoal__kernels_get(simd_tables[t]);
        if (!k) continue;
        tested++;
        snprintf(names + strlen(names), sizeof names - strlen(names), " %s", k->name);
        for (size_t n = 1; n <= DIM_MAX_TESTED; n++) {
            test_fill(&rng, a, F32_CAP);
            test_fill(&rng, b, F32_CAP);
            for (size_t oa = 0; oa < 4; oa++)
                for (size_t ob = 0; ob < 4; ob++)
                    if (!compare_pair(k, a + oa, b + ob, NULL, NULL, n, oa, ob)) goto out;
        }
    }
    /* A build that silently tests nothing would pass; say what ran. */
    printf("    f32 tables tested besides scalar: %d%s\n", tested, names);
out:
    free(a);
    free(b);
}

/*
 * l2sq_f32_below(a, b, n, bound): below bound it is l2sq_f32's very bits;
 * at or above, some value >= bound (a partial sum).  And it is the same
 * value in every table, early or not, since every table folds the same
 * lanes at the same checkpoints -- which keeps even an abandoned distance a
 * pure function of the input.  Bounds: above, at, just below and far below
 * the full sum, and 0, at every length through several checkpoints.
 */
static void test_l2_below_every_dim(void) {
    enum { N_MAX = 3 * SHOAL_L2_CHECK + 40 };
    float *a = malloc((N_MAX + 3) * sizeof *a), *b = malloc((N_MAX + 3) * sizeof *b);
    if (!CHECK(a && b)) goto out;
    const shoal__kernels *all[N_TABLES + 1];
    all_tables(all);
    test_rng rng = {0x62656c6f77303032ull};
    long early = 0;
    for (size_t n = 1; n <= N_MAX; n++) {
        test_fill(&rng, a, N_MAX + 3);
        test_fill(&rng, b, N_MAX + 3);
        size_t oa = n % 3, ob = (n / 3) % 3;
        float full = scalar()->l2sq_f32(a + oa, b + ob, n);
        float bounds[] = {INFINITY, full * 2.0f, full, nextafterf(full, 0.0f), full * 0.75f,
                          full * 0.3f, full * 0.01f, 0.0f};
        for (size_t j = 0; j < sizeof bounds / sizeof bounds[0]; j++) {
            float bound = bounds[j];
            float want = scalar()->l2sq_f32_below(a + oa, b + ob, n, bound);
            if (full < bound) {
                if (!CHECK_F32("scalar", "l2sq_f32_below (below bound)", n, oa, ob, want, full))
                    goto out;
            } else if (!CHECK(want >= bound)) {
                goto out;
            }
            if (want != full) early++;
            for (size_t t = 1; t <= N_TABLES; t++) {
                if (!all[t]) continue;
                if (!CHECK_F32(all[t]->name, "l2sq_f32_below", n, oa, ob,
                               all[t]->l2sq_f32_below(a + oa, b + ob, n, bound), want))
                    goto out;
            }
        }
    }
    /* The early exit did happen (else this tested only the full path). */
    CHECK(early > 0);
out:
    free(a);
    free(b);
}

static void test_i8_every_dim_misaligned(void) {
    int8_t *a = aligned_alloc(64, I8_CAP);
    int8_t *b = aligned_alloc(64, I8_CAP);
    if (!CHECK(a && b)) goto out;
    test_rng rng = {0x6b65726e656c7332ull};
    for (size_t t = 0; t < N_TABLES; t++) {
        const shoal__kernels *k = shoal__kernels_get(simd_tables[t]);
        if (!k) continue;
        for (size_t n = 1; n <= DIM_MAX_TESTED; n++) {
            for (size_t i = 0; i < I8_CAP; i++) {
                a[i] = rng_i8(&rng);
                b[i] = rng_i8(&rng);
            }
            for (size_t oa = 0; oa < 16; oa++)
                for (size_t ob = 0; ob < 16; ob++)
                    if (!compare_pair(k, NULL, NULL, a + oa, b + ob, n, oa, ob)) goto out;
        }
    }
out:
    free(a);
    free(b);
}

/* Length 0 is legal and must give 0 without touching memory. */
static void test_empty(void) {
    float f = 1.0f;
    int8_t c = 1;
    const shoal__kernels *all[N_TABLES + 1];
    all_tables(all);
    for (size_t t = 0; t <= N_TABLES; t++) {
        if (!all[t]) continue;
        CHECK(all[t]->l2sq_f32(&f, &f, 0) == 0.0f);
        CHECK(all[t]->dot_f32(&f, &f, 0) == 0.0f);
        CHECK_INT(all[t]->dot_i8(&c, &c, 0), 0);
        CHECK_INT(all[t]->l2sq_i8(&c, &c, 0), 0);
        int16_t q = 1;
        CHECK_INT(all[t]->dot_i16_i8(&q, &c, 0), 0);
    }
}

/*
 * Extreme int8 inputs.  -128 * -128 = 16384 per element, so any scheme that
 * sums pairs of products in int16 (pmaddubsw-style) saturates at 32767, and
 * (-128 - 127)^2 = 65025 does not fit int16 at all.  The expected values are
 * computed in 64 bits, so this also checks the scalar reference itself up to
 * SHOAL_DIM_MAX, where 65025 * 16384 still fits int32 (n <= 33025 would).
 */
typedef struct i8_pattern {
    const char *name;
    int8_t a0, a1, b0, b1; /* element i is x0 for even i, x1 for odd i */
} i8_pattern;

static void test_i8_extremes(void) {
    static const i8_pattern patterns[] = {
        {"all -128", -128, -128, -128, -128}, {"all 127", 127, 127, 127, 127},
        {"-128 vs 127", -128, -128, 127, 127}, {"alternating", -128, 127, 127, -128},
        {"alternating same", -128, 127, -128, 127}, {"-128/0 vs -128", -128, 0, -128, -128},
    };
    const size_t cap = SHOAL_DIM_MAX + 16;
    int8_t *a = malloc(cap), *b = malloc(cap);
    if (!CHECK(a && b)) goto out;
    const shoal__kernels *all[N_TABLES + 1];
    all_tables(all);

    for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
        const i8_pattern *pt = &patterns[p];
        for (size_t i = 0; i < cap; i++) {
            a[i] = (i & 1) ? pt->a1 : pt->a0;
            b[i] = (i & 1) ? pt->b1 : pt->b0;
        }
        static const size_t big[] = {1000, 4096, 4097, SHOAL_DIM_MAX - 1, SHOAL_DIM_MAX};
        for (size_t j = 0; j < DIM_MAX_TESTED + sizeof big / sizeof big[0]; j++) {
            size_t n = j < DIM_MAX_TESTED ? j + 1 : big[j - DIM_MAX_TESTED];
            size_t off = j % 16; /* misaligned too; the pattern keeps parity */
            const int8_t *pa = a + off, *pb = b + off;
            long long dot = 0, l2 = 0;
            for (size_t i = 0; i < n; i++) {
                long long d = (long long)pa[i] - pb[i];
                dot += (long long)pa[i] * pb[i];
                l2 += d * d;
            }
            for (size_t t = 0; t <= N_TABLES; t++) {
                if (!all[t]) continue;
                if (!CHECK_I32(all[t]->name, pt->name, n, off, off, all[t]->dot_i8(pa, pb, n), dot) ||
                    !CHECK_I32(all[t]->name, pt->name, n, off, off, all[t]->l2sq_i8(pa, pb, n), l2))
                    goto out;
            }
        }
    }
out:
    free(a);
    free(b);
}

/*
 * dot_i16_i8 at every length to DIM_MAX_TESTED and at long ones up to
 * SHOAL_DIM_MAX, misaligned, against a 64-bit sum: random queries within
 * shoal__i16_qmax(n) and codes in -127..127, then the bound itself (every
 * term +-qmax * 127, the largest sum the contract allows, and alternating
 * signs).  Also that qmax really keeps the worst case below 2^31.
 */
static void test_i16_i8_every_dim(void) {
    static const size_t big[] = {516, 517, 784, 1000, 4097, SHOAL_DIM_MAX};
    const size_t cap = SHOAL_DIM_MAX + 16;
    int16_t *q = malloc(cap * sizeof *q);
    int8_t *c = malloc(cap);
    test_rng rng = {0x6931366938303031ull};
    const shoal__kernels *all[N_TABLES + 1];
    all_tables(all);
    if (!CHECK(q && c)) goto out;
    CHECK_INT(shoal__i16_qmax(1), 32767);
    CHECK_INT(shoal__i16_qmax(516), 32767);
    CHECK_INT(shoal__i16_qmax(784), 21568);
    CHECK_INT(shoal__i16_qmax(SHOAL_DIM_MAX), 1032);
    int compared = 0;
    for (size_t j = 0; j < DIM_MAX_TESTED + sizeof big / sizeof big[0]; j++) {
        size_t n = j < DIM_MAX_TESTED ? j + 1 : big[j - DIM_MAX_TESTED];
        int32_t qmax = shoal__i16_qmax(n);
        CHECK((long long)qmax * 127 * (long long)n <= 2147483647ll);
        for (int pattern = 0; pattern < 4; pattern++) {
            size_t oq = n % 8, oc = n % 16;
            for (size_t i = 0; i < n; i++) {
                uint64_t r = test_rng_next(&rng);
                switch (pattern) {
                case 0: /* random within the bound */
                    q[oq + i] = (int16_t)((int64_t)(r % (2u * (uint64_t)qmax + 1)) - qmax);
                    c[oc + i] = (int8_t)((int)((r >> 32) % 255u) - 127);
                    break;
                case 1: q[oq + i] = (int16_t)qmax; c[oc + i] = 127; break;
                case 2: q[oq + i] = (int16_t)-qmax; c[oc + i] = 127; break;
                default: /* alternating signs */
                    q[oq + i] = (int16_t)((i & 1) ? -qmax : qmax);
                    c[oc + i] = (int8_t)((i & 2) ? -127 : 127);
                }
            }
            long long want = 0;
            for (size_t i = 0; i < n; i++) want += (long long)q[oq + i] * c[oc + i];
            for (size_t t = 0; t <= N_TABLES; t++) {
                if (!all[t]) continue;
                compared++;
                if (!CHECK_I32(all[t]->name, "dot_i16_i8", n, oq, oc,
                               all[t]->dot_i16_i8(q + oq, c + oc, n), want))
                    goto out;
            }
        }
    }
    printf("    dot_i16_i8 runs compared with the 64-bit sum: %d\n", compared);
out:
    free(q);
    free(c);
}

/* Large f32 magnitudes and exact cancellation: sums of integers below 2^24
 * are exact in any order, so every table must match scalar bit for bit. */
static void test_f32_exact_integers(void) {
    float a[DIM_MAX_TESTED], b[DIM_MAX_TESTED];
    for (size_t i = 0; i < DIM_MAX_TESTED; i++) {
        a[i] = (float)((i % 7) + 1) * ((i & 1) ? -1.0f : 1.0f);
        b[i] = (float)((i % 5) + 2);
    }
    /* Small integers sum exactly in float, so every table, the reference
     * included, must hit the integer result itself. */
    const shoal__kernels *tables[N_TABLES + 1];
    all_tables(tables);
    for (size_t t = 0; t <= N_TABLES; t++) {
        const shoal__kernels *k = tables[t];
        if (!k) continue;
        long long dot = 0, l2 = 0;
        for (size_t n = 1; n <= DIM_MAX_TESTED; n++) {
            long long x = (long long)a[n - 1], y = (long long)b[n - 1];
            dot += x * y;
            l2 += (x - y) * (x - y);
            if (!CHECK_F32(k->name, "dot_f32 exact", n, 0, 0, k->dot_f32(a, b, n), (float)dot) ||
                !CHECK_F32(k->name, "l2sq_f32 exact", n, 0, 0, k->l2sq_f32(a, b, n), (float)l2))
                return;
        }
    }
}

/* ------------------------------------------------------------ fast scan */

/*
 * pq4_scan: every table must return the scalar reference's integers for
 * every even m2 up to 80 (so AVX-512's four-at-a-time loop ends on each
 * residue, with and without a leftover pair), 1..3 blocks, codes and tables
 * at odd offsets, random tables and then saturated ones (every entry 255 at
 * m2 = 256: sums of 65280, the most a uint16 lane must hold without
 * wrapping).  The reference itself is checked against plain uint32 sums.
 */
static void test_pq4_scan_every_m_misaligned(void) {
    enum { M2_MAX = 80, BLOCKS = 3, BIG_M2 = 256 };
    size_t code_cap = (size_t)BIG_M2 * 16 * BLOCKS + 64, lut_cap = (size_t)BIG_M2 * 16 + 64;
    uint8_t *codes = malloc(code_cap), *lut = malloc(lut_cap);
    uint16_t want[BLOCKS * SHOAL_PQ4_BLOCK], got[BLOCKS * SHOAL_PQ4_BLOCK];
    if (!CHECK(codes && lut)) goto out;
    test_rng rng = {0x6b65726e656c7335ull};
    int tested = 0;
    for (int saturated = 0; saturated < 2; saturated++) {
        for (size_t m2 = 2; m2 <= (saturated ? BIG_M2 : M2_MAX); m2 += saturated ? 254 : 2) {
            for (size_t i = 0; i < code_cap; i++) codes[i] = (uint8_t)(test_rng_next(&rng) >> 56);
            for (size_t i = 0; i < lut_cap; i++)
                lut[i] = saturated ? 255 : (uint8_t)(test_rng_next(&rng) >> 56);
            for (size_t blocks = 1; blocks <= BLOCKS; blocks++)
                for (size_t oc = 0; oc < 32; oc += 7)
                    for (size_t ol = 0; ol < 32; ol += 5) {
                        const uint8_t *c = codes + oc, *t = lut + ol;
                        scalar()->pq4_scan(c, t, m2, blocks, want);
                        /* The reference against plain sums. */
                        for (size_t b = 0; b < blocks; b++)
                            for (size_t v = 0; v < SHOAL_PQ4_BLOCK; v++) {
                                uint32_t sum = 0;
                                for (size_t j = 0; j < m2; j++) {
                                    uint8_t byte = c[b * m2 * 16 + j * 16 + (v % 16)];
                                    sum += t[j * 16 + (v < 16 ? byte & 15 : byte >> 4)];
                                }
                                if (!CHECK_I32("scalar", "pq4_scan", m2, oc, ol,
                                               want[b * SHOAL_PQ4_BLOCK + v], sum))
                                    goto out;
                            }
                        for (size_t k = 0; k < N_TABLES; k++) {
                            const shoal__kernels *kt = shoal__kernels_get(simd_tables[k]);
                            if (!kt) continue;
                            tested++;
                            memset(got, 0xab, sizeof got);
                            kt->pq4_scan(c, t, m2, blocks, got);
                            for (size_t v = 0; v < blocks * SHOAL_PQ4_BLOCK; v++)
                                if (!CHECK_I32(kt->name, "pq4_scan", m2, oc, ol, got[v], want[v]))
                                    goto out;
                        }
                    }
        }
    }
    printf("    pq4_scan runs compared with scalar: %d\n", tested);
out:
    free(codes);
    free(lut);
}

/* ------------------------------------------------------------ overreads */

/* Runs every table on vectors that end exactly at a[n_max] and b[n_max]. */
static int run_at_end(float *fa_end, float *fb_end, int8_t *ia_end, int8_t *ib_end) {
    const shoal__kernels *all[N_TABLES + 1];
    all_tables(all);
    for (size_t n = 1; n <= DIM_MAX_TESTED; n++) {
        for (size_t t = 1; t <= N_TABLES; t++) {
            if (!all[t]) continue;
            if (!compare_pair(all[t], fa_end - n, fb_end - n, ia_end - n, ib_end - n, n, 0, 0))
                return 0;
        }
        /* The int16 query: the int8 bytes read as n int16 ending at ia_end
         * (|q| <= 32768 and |c| <= 128 over n <= 300 terms fits int32). */
        const int16_t *q_end = (const int16_t *)(const void *)ia_end;
        for (size_t t = 1; t <= N_TABLES; t++)
            if (all[t] && !CHECK_I32(all[t]->name, "dot_i16_i8", n, 0, 0,
                                     all[t]->dot_i16_i8(q_end - n, ib_end - n, n),
                                     all[0]->dot_i16_i8(q_end - n, ib_end - n, n)))
                return 0;
        /* The scalar run on its own still matters under ASan. */
        volatile float sink = all[0]->l2sq_f32(fa_end - n, fb_end - n, n);
        (void)sink;
    }
    return 1;
}

static void test_no_overread_malloc_end(void) {
    enum { PAGE = 4096 };
    test_rng rng = {0x6b65726e656c7333ull};
    unsigned char *fa = malloc(PAGE), *fb = malloc(PAGE), *ia = malloc(PAGE), *ib = malloc(PAGE);
    if (CHECK(fa && fb && ia && ib)) {
        test_fill(&rng, (float *)(void *)fa, PAGE / sizeof(float));
        test_fill(&rng, (float *)(void *)fb, PAGE / sizeof(float));
        for (size_t i = 0; i < PAGE; i++) {
            ia[i] = (unsigned char)rng_i8(&rng);
            ib[i] = (unsigned char)rng_i8(&rng);
        }
        run_at_end((float *)(void *)(fa + PAGE), (float *)(void *)(fb + PAGE),
                   (int8_t *)(ia + PAGE), (int8_t *)(ib + PAGE));
    }
    free(fa);
    free(fb);
    free(ia);
    free(ib);
}

#ifdef TEST_HAVE_GUARD_PAGE
static void test_no_overread_guard_page(void) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    /* [a page][guard][b page][guard]: both vectors end at a guard page. */
    unsigned char *m = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                            -1, 0);
    if (!CHECK(m != MAP_FAILED)) return;
    if (CHECK(mprotect(m + page, page, PROT_NONE) == 0 &&
              mprotect(m + 3 * page, page, PROT_NONE) == 0)) {
        unsigned char *pa = m, *pb = m + 2 * page;
        test_rng rng = {0x6b65726e656c7334ull};
        /* The int8 kernels read the same pages as bytes. */
        test_fill(&rng, (float *)(void *)pa, page / sizeof(float));
        test_fill(&rng, (float *)(void *)pb, page / sizeof(float));
        run_at_end((float *)(void *)(pa + page), (float *)(void *)(pb + page),
                   (int8_t *)(pa + page), (int8_t *)(pb + page));
    }
    munmap(m, 4 * page);
}
#endif

void suite_kernels(void) {
    static const harness_test tests[] = {
        {"names", test_names},
        {"auto_picks_best", test_auto_picks_best},
        {"out_of_range", test_out_of_range},
        {"empty", test_empty},
        {"f32_every_dim_misaligned", test_f32_every_dim_misaligned},
        {"l2_below_every_dim", test_l2_below_every_dim},
        {"f32_exact_integers", test_f32_exact_integers},
        {"i8_every_dim_misaligned", test_i8_every_dim_misaligned},
        {"i8_extremes", test_i8_extremes},
        {"i16_i8_every_dim", test_i16_i8_every_dim},
        {"pq4_scan_every_m_misaligned", test_pq4_scan_every_m_misaligned},
        {"no_overread_malloc_end", test_no_overread_malloc_end},
#ifdef TEST_HAVE_GUARD_PAGE
        {"no_overread_guard_page", test_no_overread_guard_page},
#endif
    };
    harness_run("kernels", tests, sizeof tests / sizeof tests[0]);
}
