/*
 * bytes.h -- explicit little-endian reads and writes for every codec.
 *
 * Every multi-byte field of every format Shoal writes (segments, WAL
 * records, manifests' binary parts) goes through these, never through a
 * struct dump or a size_t, so wasm32 and 64-bit hosts write the same bytes.
 */
#ifndef SHOAL_BYTES_H
#define SHOAL_BYTES_H

#include <stdint.h>
#include <string.h>

static inline int shoal__little_endian(void) {
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static inline void shoal__put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void shoal__put_u64(uint8_t *p, uint64_t v) {
    shoal__put_u32(p, (uint32_t)v);
    shoal__put_u32(p + 4, (uint32_t)(v >> 32));
}
static inline void shoal__put_f32(uint8_t *p, float f) {
    uint32_t v;
    memcpy(&v, &f, 4);
    shoal__put_u32(p, v);
}
static inline uint32_t shoal__get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t shoal__get_u64(const uint8_t *p) {
    return shoal__get_u32(p) | (uint64_t)shoal__get_u32(p + 4) << 32;
}
static inline float shoal__get_f32(const uint8_t *p) {
    uint32_t v = shoal__get_u32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

/* Arrays of 32-bit words (uint32 or float32): a memcpy on little-endian
 * hosts, a byte-order conversion elsewhere. */
static inline void shoal__put_u32s(uint8_t *p, const void *src, size_t n) {
    if (shoal__little_endian()) {
        if (n) memcpy(p, src, n * 4);
        return;
    }
    const uint32_t *s = src;
    for (size_t i = 0; i < n; i++) shoal__put_u32(p + 4 * i, s[i]);
}
static inline void shoal__get_u32s(void *dst, const uint8_t *p, size_t n) {
    if (shoal__little_endian()) {
        if (n) memcpy(dst, p, n * 4);
        return;
    }
    uint32_t *d = dst;
    for (size_t i = 0; i < n; i++) d[i] = shoal__get_u32(p + 4 * i);
}

/* Index of the first non-finite float32 in n little-endian floats at p, or
 * n if every one is finite. */
static inline size_t shoal__first_nonfinite(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((shoal__get_u32(p + 4 * i) & 0x7f800000u) == 0x7f800000u) return i;
    return n;
}

/* Whether n bytes at p are all zero. */
static inline int shoal__all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

#endif
