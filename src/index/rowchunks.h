/*
 * rowchunks.h -- fixed-size rows (a vector, or a graph node) in chunks, indexed by
 * label; what the flat and HNSW kinds keep their per-label data in.
 *
 * Why chunks: one array grown by doubling needs the old and the new copy at
 * once, so in wasm32 (4 GiB at most) an index stops at well under 2 GiB of
 * rows.  Here chunk 0 grows by doubling up to CHUNK rows (small indexes stay
 * small), and every later chunk is allocated at its full size once and never
 * moves: growing costs one new chunk, so nearly all of the address space can
 * hold rows.  Rows never straddle chunks, and CHUNK is a power of two, so
 * finding a row is a shift, a mask and one load of a chunk pointer.
 *
 * A viewed segment lends one contiguous block: then every chunk pointer
 * points into it (the layout is the same, only nothing is owned).
 *
 * The chunk size changes where rows live, never what any result is; the
 * ASan build uses tiny chunks (SHOAL_ROW_CHUNK_BYTES) so that every test
 * crosses chunk boundaries.
 */
#ifndef SHOAL_ROWCHUNKS_H
#define SHOAL_ROWCHUNKS_H

#include "internal.h"

/* Bytes a full chunk aims at (rows per chunk: the largest power of two that
 * fits, at least 1). */
#ifndef SHOAL_ROW_CHUNK_BYTES
#define SHOAL_ROW_CHUNK_BYTES ((size_t)32 << 20)
#endif

typedef struct shoal__rowchunks {
    unsigned char **chunks;
    uint32_t n_chunks, chunks_cap;
    uint32_t shift;  /* rows per full chunk = 1 << shift */
    uint32_t cap;    /* rows addressable: chunk 0's capacity, or n_chunks << shift */
    size_t stride;   /* bytes per row */
    int borrowed;    /* the chunks point into a lent block */
} shoal__rowchunks;

/* An empty store of rows of `stride` bytes (no allocation). */
void shoal__rowchunks_init(shoal__rowchunks *rows, size_t stride);

/* Makes rows 0..cap-1 addressable; new rows are zero.  On failure (ENOMEM)
 * every row already there is untouched and still addressable.  Not for a
 * borrowed store. */
int shoal__rowchunks_reserve(shoal__mem *mem, shoal__rowchunks *rows, uint32_t cap);

/* Points the (empty) store at n rows lent in one block; ENOMEM for the chunk
 * table only. */
int shoal__rowchunks_borrow(shoal__mem *mem, shoal__rowchunks *rows, const unsigned char *block, uint32_t n);

/* Frees what the store owns; it is empty afterwards. */
void shoal__rowchunks_free(shoal__mem *mem, shoal__rowchunks *rows);

static inline unsigned char *shoal__row(const shoal__rowchunks *rows, uint32_t i) {
    return rows->chunks[i >> rows->shift] +
           (size_t)(i & ((1u << rows->shift) - 1u)) * rows->stride;
}

#endif
