/*
 * rowchunks.c -- rows in chunks (rowchunks.h).
 */
#include "index/rowchunks.h"

void shoal__rowchunks_init(shoal__rowchunks *rows, size_t stride) {
    memset(rows, 0, sizeof *rows);
    rows->stride = stride;
    size_t per = stride ? SHOAL_ROW_CHUNK_BYTES / stride : 1;
    while (rows->shift < 30 && ((size_t)2 << rows->shift) <= per) rows->shift++;
}

static int grow_table(shoal__mem *mem, shoal__rowchunks *rows, uint32_t need) {
    return shoal__grow(mem, (void **)&rows->chunks, &rows->chunks_cap, need, sizeof *rows->chunks);
}

int shoal__rowchunks_reserve(shoal__mem *mem, shoal__rowchunks *rows, uint32_t cap) {
    if (cap <= rows->cap) return SHOAL_OK;
    uint32_t per = 1u << rows->shift;
    if (grow_table(mem, rows, 1)) return SHOAL_ENOMEM;
    /* Chunk 0 grows (by copying) up to a full chunk. */
    if (rows->n_chunks <= 1 && rows->cap < per) {
        uint32_t first = cap < per ? cap : per;
        if ((size_t)first > SIZE_MAX / rows->stride) return SHOAL_ENOMEM;
        unsigned char *fresh = shoal__realloc(mem, rows->n_chunks ? rows->chunks[0] : NULL,
                                              (size_t)first * rows->stride);
        if (!fresh) return SHOAL_ENOMEM;
        memset(fresh + (size_t)rows->cap * rows->stride, 0,
               (size_t)(first - rows->cap) * rows->stride);
        rows->chunks[0] = fresh;
        rows->n_chunks = 1;
        rows->cap = first;
    }
    /* Then whole chunks, which never move. */
    uint32_t want = (uint32_t)(((uint64_t)cap + per - 1) >> rows->shift);
    if (want > rows->n_chunks) {
        if (grow_table(mem, rows, want)) return SHOAL_ENOMEM;
        if ((size_t)per > SIZE_MAX / rows->stride) return SHOAL_ENOMEM;
        while (rows->n_chunks < want) {
            unsigned char *chunk = shoal__calloc(mem, per, rows->stride);
            if (!chunk) return SHOAL_ENOMEM; /* the chunks so far stay: harmless */
            rows->chunks[rows->n_chunks++] = chunk;
            rows->cap = rows->n_chunks > (UINT32_MAX >> rows->shift)
                            ? UINT32_MAX
                            : rows->n_chunks << rows->shift;
        }
    }
    return SHOAL_OK;
}

int shoal__rowchunks_borrow(shoal__mem *mem, shoal__rowchunks *rows, const unsigned char *block, uint32_t n) {
    uint32_t per = 1u << rows->shift;
    uint32_t want = n ? (uint32_t)(((uint64_t)n + per - 1) >> rows->shift) : 0;
    if (want && grow_table(mem, rows, want)) return SHOAL_ENOMEM;
    for (uint32_t c = 0; c < want; c++)
        rows->chunks[c] = (unsigned char *)(uintptr_t)(block + (size_t)c * per * rows->stride);
    rows->n_chunks = want;
    rows->cap = n;
    rows->borrowed = 1;
    return SHOAL_OK;
}

void shoal__rowchunks_free(shoal__mem *mem, shoal__rowchunks *rows) {
    if (!rows->borrowed)
        for (uint32_t c = 0; c < rows->n_chunks; c++) shoal__free(mem, rows->chunks[c]);
    shoal__free(mem, rows->chunks);
    size_t stride = rows->stride;
    shoal__rowchunks_init(rows, stride);
}
