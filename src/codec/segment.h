/*
 * segment.h -- the segment codec's internal interface (segment.c), used by
 * index.c for the ids section and by each kind (flat.c, hnsw.c, ivf.c) for
 * its own sections.  docs/FORMAT.md is the specification of the bytes.
 *
 * Writing: a kind asks for a section of an exact raw size, fills the bytes
 * (little-endian, through the put helpers below), and ends it; the writer
 * compresses it if that helps and records its table entry.
 * Reading: a kind asks for the next section by kind, list index and the raw
 * size its config implies; the reader checks all three, the CRC-32C and
 * the codec before returning the raw bytes -- so a kind only ever parses a
 * buffer of exactly the size it computed from validated counts.
 */
#ifndef SHOAL_SEGMENT_H
#define SHOAL_SEGMENT_H

#include "index/kind.h"

/* Section kinds (docs/FORMAT.md, "Sections").  Kinds with bit 31 set are
 * optional: a reader that does not know one verifies and skips it. */
enum {
    SHOAL__SEC_CONFIG = 1,
    SHOAL__SEC_IDS = 2,
    SHOAL__SEC_VECTORS = 3,
    SHOAL__SEC_HNSW_LEVELS = 16,
    SHOAL__SEC_HNSW_BASE = 17,
    SHOAL__SEC_HNSW_UPPER = 18,
    SHOAL__SEC_HNSW_SQ8 = 19,
    SHOAL__SEC_IVF_CENTROIDS = 32,
    SHOAL__SEC_IVF_SQ8 = 33,
    SHOAL__SEC_IVF_CODEBOOKS = 34,
    SHOAL__SEC_IVF_COUNTS = 35,
    SHOAL__SEC_IVF_LIST = 36,
    SHOAL__SEC_IVF_RERANK = 37,
    SHOAL__SEC_OPTIONAL = (int)0x80000000u
};

#define SHOAL__CONFIG_SIZE 128u
#define SHOAL__KIND_PARAMS 10u

typedef struct shoal__seg_writer shoal__seg_writer;
typedef struct shoal__seg_reader shoal__seg_reader;

/* Opens a section of exactly raw_size bytes (zeroed) and returns them, or
 * NULL after recording SHOAL_ENOMEM / SHOAL_ETOOBIG (the writer's error is
 * sticky; shoal_index_save reports it). */
uint8_t *shoal__seg_begin(shoal__seg_writer *w, uint32_t kind, uint32_t index,
                          uint64_t raw_size);
/* Closes the open section (compressing it if that makes it smaller). */
void shoal__seg_end(shoal__seg_writer *w);

/*
 * The next section, which must be (kind, index) with exactly raw_size raw
 * bytes; unknown optional sections before it are skipped.  On success *raw
 * points to the raw bytes, valid until the next call, and *borrowable says
 * whether they are the caller's segment bytes themselves, aligned, usable
 * in place by a view for as long as the index lives (uncompressed, view
 * mode, little-endian host).  Errors set the index's message.
 */
int shoal__seg_next(shoal__seg_reader *r, uint32_t kind, uint32_t index, uint64_t raw_size,
                    const uint8_t **raw, int *borrowable);
/* Whether the reader is building a view. */
int shoal__seg_is_view(const shoal__seg_reader *r);

/* ---------------------------------------------------- little-endian bytes */

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

/* --------------------------------------------- common layer (index.c) */

/* Sizes the ids section implies, from validated config counts. */
uint64_t shoal__ids_section_size(uint32_t label_bound, uint32_t live, uint32_t free_count,
                                 uint64_t id_bytes);
uint64_t shoal__ids_bytes(const shoal_index *index);
int shoal__ids_save(const shoal_index *index, shoal__seg_writer *w);
int shoal__ids_load(shoal_index *index, shoal__seg_reader *r, uint32_t label_bound,
                    uint32_t live, uint32_t free_count, uint64_t id_bytes, uint64_t next_seq);

#endif
