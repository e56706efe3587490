/*
 * neon.c -- AArch64 Advanced SIMD (NEON) kernels.
 *
 * NEON is part of the AArch64 base architecture, so this file needs no
 * compile flags and no run-time check: every aarch64 build carries it and
 * AUTO picks it.  On x86-64 and wasm the file compiles to nothing (every
 * build compiles every core file).  SVE is not used: it is optional, its
 * vector length varies by CPU, and nobody has measured it against these
 * kernels on real hardware yet.
 *
 * f32: the reference's 32 lanes are eight 4-lane registers (s0 = lanes 0..3,
 * ..., s7 = lanes 28..31), kept in named variables so they stay in registers
 * (AArch64 has 32 of them: eight accumulators plus sixteen loads fit).  Each
 * term is vmulq_f32 then vaddq_f32 -- never vfmaq_f32 or vmlaq_f32: the
 * first is a fused multiply-add by definition, and GCC implements the
 * second (and plain `a * b + c` on vectors) as `fmla` unless -ffp-contract
 * is off, which the build guarantees for this file and mk/arm64.mk checks
 * in the generated code.  A fused add rounds once where the reference
 * rounds twice, and then segments built on ARM would differ from x86 ones.
 * The tail (n % 32 elements) is one more block in which each group of four
 * is a full load, a partial one built lane by lane over zeros, or skipped:
 * NEON has no masked loads, and no byte past a[n - 1] may be read (the tests
 * put the vectors against a guard page).  A zero-padded lane adds
 * 0 * 0 = +0, which leaves an accumulator unchanged: lanes start at +0 and
 * can never become -0, since (rounding to nearest) x + y is -0 only when
 * both are.
 * The fold is the reference's, register by register: s[k] += s[k + 4],
 * s[k] += s[k + 2], s0 += s1, then lanes 0,1 += 2,3 and lane 0 += lane 1.
 *
 * int8: vmull_s8 gives exact int16 products (|a b| <= 16384); vpadalq_s16
 * adds adjacent pairs into int32 lanes, so no int16 sum is ever formed
 * (two products can reach 32768, which does not fit int16 -- that is why
 * vmlal_s8, accumulating in int16, is not used).  For L2 the difference is
 * widened first (vsubl_s8: |d| <= 255) and squared into int32 with
 * vmlal_s16 (d^2 <= 65025 does not fit int16 either).  The sums fit int32
 * within the limits in kernels.h.  The SDOT instruction (ARMv8.2 dotprod)
 * would do four products per lane at once, but it is optional, so it would
 * need a run-time check; XXX: worth a table of its own once measured.
 *
 * pq4 fast scan: vqtbl1q_u8 looks up 16 bytes of one sub-quantizer's table
 * at once (indices >= 16 would give 0; ours are 0..15), low nibbles for
 * vectors 0..15, high nibbles for 16..31, widened into four uint16
 * accumulators with vaddw_u8 -- the same modular uint16 sums as the
 * reference.
 */
#include "kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

/* ---------------------------------------------------------------- f32 */

/* Elements off .. off + 3 of p, those at or past n as +0; never reads p[n]. */
static inline float32x4_t load_tail(const float *p, size_t off, size_t n) {
    size_t r = n - off; /* callers ensure off < n */
    if (r >= 4) return vld1q_f32(p + off);
    float32x4_t v = vdupq_n_f32(0.0f);
    v = vld1q_lane_f32(p + off, v, 0);
    if (r > 1) v = vld1q_lane_f32(p + off + 1, v, 1);
    if (r > 2) v = vld1q_lane_f32(p + off + 2, v, 2);
    return v;
}

/* The reference's fold of 32 lanes held in eight registers. */
static inline float fold32(float32x4_t s0, float32x4_t s1, float32x4_t s2, float32x4_t s3,
                           float32x4_t s4, float32x4_t s5, float32x4_t s6, float32x4_t s7) {
    s0 = vaddq_f32(s0, s4); /* l += l + 16 */
    s1 = vaddq_f32(s1, s5);
    s2 = vaddq_f32(s2, s6);
    s3 = vaddq_f32(s3, s7);
    s0 = vaddq_f32(s0, s2); /* l += l + 8 */
    s1 = vaddq_f32(s1, s3);
    s0 = vaddq_f32(s0, s1); /* l += l + 4 */
    float32x2_t x = vadd_f32(vget_low_f32(s0), vget_high_f32(s0)); /* l += l + 2 */
    return vget_lane_f32(x, 0) + vget_lane_f32(x, 1);               /* l += l + 1 */
}

static inline float32x4_t l2_term(float32x4_t a, float32x4_t b) {
    float32x4_t d = vsubq_f32(a, b);
    return vmulq_f32(d, d);
}

static inline float32x4_t dot_term(float32x4_t a, float32x4_t b) { return vmulq_f32(a, b); }

/* One group of four lanes: a full load, or (in the tail) a partial or no load. */
#define F32_FULL(TERM, s, k) s = vaddq_f32(s, TERM(vld1q_f32(a + i + (k)), vld1q_f32(b + i + (k))))
#define F32_TAIL(TERM, s, k) \
    if (i + (k) < n) s = vaddq_f32(s, TERM(load_tail(a, i + (k), n), load_tail(b, i + (k), n)))
/* 32 elements into the eight lane registers. */
#define F32_BLOCK(STEP, TERM) \
    do {                      \
        STEP(TERM, s0, 0);    \
        STEP(TERM, s1, 4);    \
        STEP(TERM, s2, 8);    \
        STEP(TERM, s3, 12);   \
        STEP(TERM, s4, 16);   \
        STEP(TERM, s5, 20);   \
        STEP(TERM, s6, 24);   \
        STEP(TERM, s7, 28);   \
    } while (0)

#define F32_KERNEL(name, TERM)                                                           \
    static float name(const float *a, const float *b, size_t n) {                       \
        float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, \
                    s6 = s0, s7 = s0;                                                    \
        size_t i = 0;                                                                    \
        for (; i + 32 <= n; i += 32) F32_BLOCK(F32_FULL, TERM);                          \
        if (i < n) F32_BLOCK(F32_TAIL, TERM);                                            \
        return fold32(s0, s1, s2, s3, s4, s5, s6, s7);                                   \
    }

F32_KERNEL(l2sq_f32_neon, l2_term)
F32_KERNEL(dot_f32_neon, dot_term)

/* l2sq_f32 that returns the partial sum (folded as at the end) once it
 * reaches bound, checked every SHOAL_L2_CHECK elements (see scalar.c). */
static float l2sq_f32_below_neon(const float *a, const float *b, size_t n, float bound) {
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0,
                s7 = s0;
    size_t i = 0;
    while (i + SHOAL_L2_CHECK <= n) {
        for (size_t end = i + SHOAL_L2_CHECK; i < end; i += 32) F32_BLOCK(F32_FULL, l2_term);
        float partial = fold32(s0, s1, s2, s3, s4, s5, s6, s7);
        if (partial >= bound) return partial;
    }
    for (; i + 32 <= n; i += 32) F32_BLOCK(F32_FULL, l2_term);
    if (i < n) F32_BLOCK(F32_TAIL, l2_term);
    return fold32(s0, s1, s2, s3, s4, s5, s6, s7);
}

/* --------------------------------------------------------------- int8 */

static int32_t dot_i8_neon(const int8_t *a, const int8_t *b, size_t n) {
    int32x4_t s0 = vdupq_n_s32(0), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        int8x16_t va = vld1q_s8(a + i), vb = vld1q_s8(b + i);
        s0 = vpadalq_s16(s0, vmull_s8(vget_low_s8(va), vget_low_s8(vb)));
        s1 = vpadalq_s16(s1, vmull_high_s8(va, vb));
    }
    if (i + 8 <= n) {
        s0 = vpadalq_s16(s0, vmull_s8(vld1_s8(a + i), vld1_s8(b + i)));
        i += 8;
    }
    int32_t sum = vaddvq_s32(vaddq_s32(s0, s1));
    for (; i < n; i++) sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}

static int32_t dot_i16_i8_neon(const int16_t *q, const int8_t *c, size_t n) {
    int32x4_t s0 = vdupq_n_s32(0), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        int8x16_t vc = vld1q_s8(c + i);
        int16x8_t cl = vmovl_s8(vget_low_s8(vc)), ch = vmovl_high_s8(vc);
        int16x8_t ql = vld1q_s16(q + i), qh = vld1q_s16(q + i + 8);
        s0 = vmlal_s16(s0, vget_low_s16(ql), vget_low_s16(cl));
        s1 = vmlal_high_s16(s1, ql, cl);
        s0 = vmlal_s16(s0, vget_low_s16(qh), vget_low_s16(ch));
        s1 = vmlal_high_s16(s1, qh, ch);
    }
    int32_t sum = vaddvq_s32(vaddq_s32(s0, s1));
    for (; i < n; i++) sum += (int32_t)q[i] * (int32_t)c[i];
    return sum;
}

static int32_t l2sq_i8_neon(const int8_t *a, const int8_t *b, size_t n) {
    int32x4_t s0 = vdupq_n_s32(0), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        int8x16_t va = vld1q_s8(a + i), vb = vld1q_s8(b + i);
        int16x8_t dl = vsubl_s8(vget_low_s8(va), vget_low_s8(vb)); /* |d| <= 255 */
        int16x8_t dh = vsubl_high_s8(va, vb);
        s0 = vmlal_s16(s0, vget_low_s16(dl), vget_low_s16(dl));
        s1 = vmlal_high_s16(s1, dl, dl);
        s0 = vmlal_s16(s0, vget_low_s16(dh), vget_low_s16(dh));
        s1 = vmlal_high_s16(s1, dh, dh);
    }
    if (i + 8 <= n) {
        int16x8_t d = vsubl_s8(vld1_s8(a + i), vld1_s8(b + i));
        s0 = vmlal_s16(s0, vget_low_s16(d), vget_low_s16(d));
        s1 = vmlal_high_s16(s1, d, d);
        i += 8;
    }
    int32_t sum = vaddvq_s32(vaddq_s32(s0, s1));
    for (; i < n; i++) {
        int32_t d = (int32_t)a[i] - (int32_t)b[i];
        sum += d * d;
    }
    return sum;
}

/* ---------------------------------------------------------- fast scan */

static void pq4_scan_neon(const uint8_t *codes, const uint8_t *lut, size_t m2, size_t nblocks,
                          uint16_t *out) {
    const uint8x16_t low4 = vdupq_n_u8(0x0f);
    for (size_t b = 0; b < nblocks; b++, codes += m2 * 16, out += SHOAL_PQ4_BLOCK) {
        uint16x8_t a0 = vdupq_n_u16(0), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < m2; j++) {
            uint8x16_t c = vld1q_u8(codes + 16 * j), t = vld1q_u8(lut + 16 * j);
            uint8x16_t lo = vqtbl1q_u8(t, vandq_u8(c, low4));
            uint8x16_t hi = vqtbl1q_u8(t, vshrq_n_u8(c, 4));
            a0 = vaddw_u8(a0, vget_low_u8(lo));
            a1 = vaddw_high_u8(a1, lo);
            a2 = vaddw_u8(a2, vget_low_u8(hi));
            a3 = vaddw_high_u8(a3, hi);
        }
        vst1q_u16(out, a0);
        vst1q_u16(out + 8, a1);
        vst1q_u16(out + 16, a2);
        vst1q_u16(out + 24, a3);
    }
}

const shoal__kernels shoal__kernels_neon = {
    "neon", l2sq_f32_neon, dot_f32_neon, dot_i8_neon, l2sq_i8_neon, pq4_scan_neon,
    l2sq_f32_below_neon, dot_i16_i8_neon,
};
#endif
