/*
 * segment.c -- the segment codec: an index to bytes and back.
 *
 * What
 *   A segment is the one serialized form of an index, whatever holds it
 *   (a file, IndexedDB, an IPFS block store, S5).  docs/FORMAT.md is its
 *   specification; this file implements the container -- the 64-byte
 *   header, the section table, the config section, per-section CRC-32C and
 *   zstd -- and the public calls (save, load, view, info, blocks).  The
 *   contents of the sections belong to their owners: index.c writes the
 *   ids section, each kind (flat.c, hnsw.c, ivf.c) its own, through the
 *   small interface in segment.h.
 *
 * Why this shape
 *   - Explicit little-endian fields, never struct dumps or size_t, so a
 *     segment written by wasm32 equals one written natively, byte for byte.
 *   - A canonical layout: header, table, then sections in table order, each
 *     at the next multiple of 64 with zero padding, the segment ending at
 *     the end of the last section.  Every byte is covered by a checksum or
 *     must be zero, so any single-byte change is detected, and loading then
 *     saving gives back the same bytes (the tests check both).
 *   - Sections are read strictly in the order the config implies, each
 *     with the exact raw size computed from already validated counts, so
 *     no parser ever sees a buffer of a size it did not predict.
 *   - zstd per section, the level chosen by the writer; a section that does
 *     not shrink is stored raw.  Every build compiles the same zstd 1.5.7
 *     sources (tools/fetch_zstd.sh) -- not Debian's libzstd 1.5.4 natively
 *     -- because segment bytes, and so CIDs, must not depend on which
 *     build wrote them, and zstd only promises identical output for the
 *     same version.  zstd allocates through the index's allocator
 *     (ZSTD_customMem), so memory accounting and OOM injection cover it.
 *   - Views: uncompressed sections are 64-byte aligned in the segment, so a
 *     view can use the big arrays in place when the caller's buffer is
 *     16-byte aligned.
 *
 * Hostile input
 *   Before any allocation: the header (magic, sentinels, version, features,
 *   reserved fields, CRC), the table (CRC, canonical offsets, sizes, codecs,
 *   each zstd frame's declared and bounded size), the config (CRC, every
 *   count against its limit).  Then each section's CRC as it is read.  The
 *   largest allocation a segment of n bytes can cause is bounded by the raw
 *   sizes its zstd frames can really produce (at most ~32768 x n).
 *
 * XXX weaknesses
 *   - Saving holds the whole segment in memory (plus one section's
 *     compression buffer); a streaming writer callback would not.
 *   - Loading a compressed section holds it twice for a moment (the
 *     decompressed bytes, then the kind's copy).
 *   - zstd's symbols are linked into libshoal unprefixed.
 */
#define ZSTD_STATIC_LINKING_ONLY /* the advanced API: ZSTD_customMem, frame bounds */
#include <stdio.h>
#include <zstd.h>

#include "codec/segment.h"

#define HEADER_SIZE 64u
#define ENTRY_SIZE 48u
#define ALIGN 64u
#define MAX_SECTIONS (1u << 22)
#define FEATURE_ZSTD 1ull
#define REQUIRED_KNOWN FEATURE_ZSTD
#define CODEC_NONE 0u
#define CODEC_ZSTD 1u
#define ZSTD_LEVEL_MAX 19

static const uint8_t MAGIC[12] = {0x89, 'S', 'H', 'O', 'A', 'L', '\r', '\n', 0x1a, '\n', 0x00, 0xff};

/* Checksum comparison.  Fuzzing builds (FUZZING_BUILD_MODE_UNSAFE_FOR_
 * PRODUCTION, set by `make fuzz`) accept any checksum, so that mutated
 * inputs reach the structural validation behind the CRCs instead of
 * stopping at them; the C tests cover the checksums themselves. */
static int crc_ok(uint32_t want, const void *data, size_t size) {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    (void)want;
    (void)data;
    (void)size;
    return 1;
#else
    return shoal_crc32c(0, data, size) == want;
#endif
}

static uint64_t align_up(uint64_t x) { return (x + ALIGN - 1) & ~(uint64_t)(ALIGN - 1); }

/* ---------------------------------------------------------- zstd memory */

static void *zstd_alloc(void *opaque, size_t size) { return shoal__alloc(opaque, size); }
static void zstd_free(void *opaque, void *ptr) { shoal__free(opaque, ptr); }

static ZSTD_customMem zstd_mem(shoal__mem *mem) {
    ZSTD_customMem cm = {zstd_alloc, zstd_free, mem};
    return cm;
}

/* ------------------------------------------------------------ messages */

typedef struct seg_msg {
    char text[256];
} seg_msg;

static int msg_fail(seg_msg *m, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int msg_fail(seg_msg *m, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->text, sizeof m->text, fmt, ap);
    va_end(ap);
    return code;
}

/* --------------------------------------------------------------- writer */

typedef struct seg_entry {
    uint32_t kind, codec, index, crc;
    uint64_t offset, stored, raw; /* offset relative to the body */
} seg_entry;

struct shoal__seg_writer {
    shoal__mem *mem;
    int level;
    ZSTD_CCtx *cctx;
    uint8_t *body;
    size_t size, cap; /* body bytes used (to the end of the last section) */
    seg_entry *entries;
    uint32_t count, entries_cap;
    int open;
    int error;
    uint8_t *scratch;
    size_t scratch_cap;
};

static int writer_reserve(shoal__seg_writer *w, uint64_t need) {
    if (need <= w->cap) return SHOAL_OK;
    if (need > SIZE_MAX / 2) return SHOAL_ETOOBIG;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < need) cap = cap + cap / 2 + 64;
    uint8_t *body = shoal__realloc(w->mem, w->body, cap);
    if (!body) return SHOAL_ENOMEM;
    w->body = body;
    w->cap = cap;
    return SHOAL_OK;
}

uint8_t *shoal__seg_begin(shoal__seg_writer *w, uint32_t kind, uint32_t index,
                          uint64_t raw_size) {
    if (w->error) return NULL;
    uint64_t start = align_up(w->size);
    int rc = SHOAL_OK;
    if (raw_size > SIZE_MAX / 2 || start + raw_size > SIZE_MAX / 2) rc = SHOAL_ETOOBIG;
    if (!rc) rc = writer_reserve(w, start + raw_size);
    if (!rc) rc = shoal__grow(w->mem, (void **)&w->entries, &w->entries_cap, w->count + 1,
                              sizeof *w->entries);
    if (!rc && w->count + 1 > MAX_SECTIONS) rc = SHOAL_ETOOBIG;
    if (rc) {
        w->error = rc;
        return NULL;
    }
    memset(w->body + w->size, 0, (size_t)(start + raw_size - w->size));
    seg_entry *e = &w->entries[w->count++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->index = index;
    e->offset = start;
    e->raw = e->stored = raw_size;
    w->size = (size_t)(start + raw_size);
    w->open = 1;
    return w->body + start;
}

void shoal__seg_end(shoal__seg_writer *w) {
    if (w->error || !w->open) return;
    w->open = 0;
    seg_entry *e = &w->entries[w->count - 1];
    uint8_t *raw = w->body + e->offset;
    /* The config is never compressed: shoal_segment_info reads it without
     * zstd.  Sections below 64 bytes cannot gain enough to matter. */
    if (w->level > 0 && e->kind != SHOAL__SEC_CONFIG && e->raw >= 64) {
        size_t bound = ZSTD_compressBound((size_t)e->raw);
        if (!w->cctx) {
            w->cctx = ZSTD_createCCtx_advanced(zstd_mem(w->mem));
            if (!w->cctx) {
                w->error = SHOAL_ENOMEM;
                return;
            }
        }
        if (bound > w->scratch_cap) {
            shoal__free(w->mem, w->scratch);
            w->scratch_cap = 0;
            w->scratch = shoal__alloc(w->mem, bound);
            if (!w->scratch) {
                w->error = SHOAL_ENOMEM;
                return;
            }
            w->scratch_cap = bound;
        }
        size_t n = ZSTD_compressCCtx(w->cctx, w->scratch, bound, raw, (size_t)e->raw, w->level);
        if (ZSTD_isError(n)) {
            /* Only allocation can fail here (the bound is zstd's own). */
            w->error = SHOAL_ENOMEM;
            return;
        }
        if (n < e->raw) {
            memcpy(raw, w->scratch, n);
            e->stored = n;
            e->codec = CODEC_ZSTD;
            w->size = (size_t)(e->offset + n);
        }
    }
    e->crc = shoal_crc32c(0, raw, (size_t)e->stored);
}

static void writer_free(shoal__seg_writer *w) {
    ZSTD_freeCCtx(w->cctx);
    shoal__free(w->mem, w->body);
    shoal__free(w->mem, w->entries);
    shoal__free(w->mem, w->scratch);
}

/* ---------------------------------------------------------------- config */

/* The config section (docs/FORMAT.md, "Config"). */
typedef struct seg_config {
    uint32_t kind, metric, dim;
    uint64_t seed, rng[4];
    uint32_t label_bound, live, free_count;
    uint64_t id_bytes, next_seq;
    uint32_t kp[SHOAL__KIND_PARAMS];
} seg_config;

static void config_put(uint8_t *p, const seg_config *c) {
    shoal__put_u32(p + 0, c->kind);
    shoal__put_u32(p + 4, c->metric);
    shoal__put_u32(p + 8, c->dim);
    shoal__put_u64(p + 16, c->seed);
    for (int i = 0; i < 4; i++) shoal__put_u64(p + 24 + 8 * i, c->rng[i]);
    shoal__put_u32(p + 56, c->label_bound);
    shoal__put_u32(p + 60, c->live);
    shoal__put_u32(p + 64, c->free_count);
    shoal__put_u64(p + 72, c->id_bytes);
    shoal__put_u64(p + 80, c->next_seq);
    for (uint32_t i = 0; i < SHOAL__KIND_PARAMS; i++) shoal__put_u32(p + 88 + 4 * i, c->kp[i]);
}

/* Parses and validates the config's own fields (not the kind's words,
 * which shoal_index_new and the kind's load check). */
static int config_get(const uint8_t *p, seg_config *c, seg_msg *m) {
    c->kind = shoal__get_u32(p + 0);
    c->metric = shoal__get_u32(p + 4);
    c->dim = shoal__get_u32(p + 8);
    c->seed = shoal__get_u64(p + 16);
    for (int i = 0; i < 4; i++) c->rng[i] = shoal__get_u64(p + 24 + 8 * i);
    c->label_bound = shoal__get_u32(p + 56);
    c->live = shoal__get_u32(p + 60);
    c->free_count = shoal__get_u32(p + 64);
    c->id_bytes = shoal__get_u64(p + 72);
    c->next_seq = shoal__get_u64(p + 80);
    for (uint32_t i = 0; i < SHOAL__KIND_PARAMS; i++) c->kp[i] = shoal__get_u32(p + 88 + 4 * i);
    if (shoal__get_u32(p + 12) || shoal__get_u32(p + 68))
        return msg_fail(m, SHOAL_ECORRUPT, "config: reserved fields are not zero");
    if (c->kind > SHOAL_KIND_IVF)
        return msg_fail(m, SHOAL_EVERSION, "config: unknown index kind %u", c->kind);
    if (c->metric > SHOAL_METRIC_COSINE)
        return msg_fail(m, SHOAL_EVERSION, "config: unknown metric %u", c->metric);
    if (c->dim == 0 || c->dim > SHOAL_DIM_MAX)
        return msg_fail(m, SHOAL_ECORRUPT, "config: dim %u is outside 1..%u", c->dim,
                        SHOAL_DIM_MAX);
    if (c->label_bound >= SHOAL_NO_LABEL || c->live > c->label_bound ||
        c->free_count != c->label_bound - c->live)
        return msg_fail(m, SHOAL_ECORRUPT, "config: %u labels, %u live, %u free", c->label_bound,
                        c->live, c->free_count);
    if (c->id_bytes < c->live || c->id_bytes > (uint64_t)c->live * SHOAL_ID_MAX ||
        c->next_seq < c->live)
        return msg_fail(m, SHOAL_ECORRUPT, "config: %llu id bytes, next sequence %llu for %u records",
                        (unsigned long long)c->id_bytes, (unsigned long long)c->next_seq, c->live);
    if (!(c->rng[0] | c->rng[1] | c->rng[2] | c->rng[3]))
        return msg_fail(m, SHOAL_ECORRUPT, "config: the PRNG state is all zero");
    return SHOAL_OK;
}

/* Kind words <-> public parameters (docs/FORMAT.md, "Config"). */
static void params_from_config(const seg_config *c, shoal_params *p) {
    p->dim = c->dim;
    p->metric = (shoal_metric)c->metric;
    p->kind = (shoal_kind)c->kind;
    p->seed = c->seed;
    if (c->kind == SHOAL_KIND_HNSW) {
        p->hnsw.M = c->kp[0];
        p->hnsw.ef_construction = c->kp[1];
        p->hnsw.ef_search = c->kp[2];
        p->hnsw.storage = (shoal_storage)c->kp[3];
    } else if (c->kind == SHOAL_KIND_IVF) {
        p->ivf.nlist = c->kp[0];
        p->ivf.nprobe = c->kp[1];
        p->ivf.quantizer = (shoal_quantizer)c->kp[2];
        p->ivf.pq_m = c->kp[3];
        p->ivf.pq_bits = c->kp[4];
        p->ivf.rerank = c->kp[5];
        p->ivf.train_sample = c->kp[6];
        p->ivf.train_iters = c->kp[7];
    }
}

/* ----------------------------------------------------------------- save */

void shoal_save_params_init(shoal_save_params *params) { memset(params, 0, sizeof *params); }
void shoal_load_params_init(shoal_load_params *params) { memset(params, 0, sizeof *params); }

int shoal_index_save(shoal_index *index, const shoal_save_params *params, uint8_t **out,
                     size_t *out_size) {
    index->errmsg[0] = '\0';
    if (!out || !out_size) return shoal__fail(index, SHOAL_EPARAM, "out or out_size is NULL");
    *out = NULL;
    *out_size = 0;
    int level = params ? params->zstd_level : 0;
    if (level < 0 || level > ZSTD_LEVEL_MAX)
        return shoal__fail(index, SHOAL_EPARAM, "zstd_level = %d; it must be 0..%d", level,
                           ZSTD_LEVEL_MAX);
    shoal__seg_writer w;
    memset(&w, 0, sizeof w);
    w.mem = &index->mem;
    w.level = level;

    seg_config c;
    memset(&c, 0, sizeof c);
    c.kind = (uint32_t)index->params.kind;
    c.metric = (uint32_t)index->params.metric;
    c.dim = index->params.dim;
    c.seed = index->params.seed;
    for (int i = 0; i < 4; i++) c.rng[i] = index->rng.s[i];
    c.label_bound = index->label_bound;
    c.live = index->live;
    c.free_count = index->free_count;
    c.id_bytes = shoal__ids_bytes(index);
    c.next_seq = index->next_seq;
    index->ops->save_config(index, c.kp);
    uint8_t *p = shoal__seg_begin(&w, SHOAL__SEC_CONFIG, 0, SHOAL__CONFIG_SIZE);
    if (p) {
        config_put(p, &c);
        shoal__seg_end(&w);
    }
    if (!w.error) shoal__ids_save(index, &w);
    if (!w.error) index->ops->save(index, &w);

    int rc = w.error;
    uint64_t head = align_up(HEADER_SIZE + (uint64_t)ENTRY_SIZE * w.count);
    uint64_t total = head + w.size;
    if (!rc && total > SIZE_MAX / 2) rc = SHOAL_ETOOBIG;
    if (!rc) rc = writer_reserve(&w, total);
    if (rc) {
        writer_free(&w);
        return shoal__fail(index, rc, rc == SHOAL_ENOMEM ? "out of memory writing the segment"
                                                         : "segment too large");
    }
    uint8_t *seg = w.body;
    memmove(seg + head, seg, w.size);
    memset(seg, 0, (size_t)head);
    uint32_t any_zstd = 0;
    for (uint32_t i = 0; i < w.count; i++) {
        const seg_entry *e = &w.entries[i];
        uint8_t *t = seg + HEADER_SIZE + (size_t)ENTRY_SIZE * i;
        shoal__put_u32(t + 0, e->kind);
        shoal__put_u32(t + 4, e->codec);
        shoal__put_u32(t + 8, e->index);
        shoal__put_u32(t + 12, e->crc);
        shoal__put_u64(t + 16, head + e->offset);
        shoal__put_u64(t + 24, e->stored);
        shoal__put_u64(t + 32, e->raw);
        any_zstd |= e->codec == CODEC_ZSTD;
    }
    memcpy(seg, MAGIC, sizeof MAGIC);
    shoal__put_u32(seg + 12, SHOAL_FORMAT_MAJOR | (uint32_t)SHOAL_FORMAT_MINOR << 16);
    shoal__put_u64(seg + 16, any_zstd ? FEATURE_ZSTD : 0);
    shoal__put_u64(seg + 24, 0);
    shoal__put_u64(seg + 32, total);
    shoal__put_u32(seg + 40, w.count);
    shoal__put_u32(seg + 44, ENTRY_SIZE);
    shoal__put_u32(seg + 48, shoal_crc32c(0, seg + HEADER_SIZE, (size_t)ENTRY_SIZE * w.count));
    shoal__put_u32(seg + 52, 0x01020304u);
    shoal__put_u32(seg + 60, shoal_crc32c(0, seg, 60));

    w.body = NULL;
    writer_free(&w);
    /* Give back the slack of the growth policy. */
    uint8_t *fit = shoal__realloc(&index->mem, seg, (size_t)total);
    *out = fit ? fit : seg;
    *out_size = (size_t)total;
    return SHOAL_OK;
}

void shoal_index_free_segment(shoal_index *index, uint8_t *segment) {
    shoal__free(&index->mem, segment);
}

/* ------------------------------------------------------ header and table */

typedef struct seg_head {
    uint32_t major, minor, count;
    uint64_t required, optional, size;
    uint64_t table_end, data_start; /* end of the table; where sections begin */
} seg_head;

typedef struct seg_section {
    uint32_t kind, codec, index, crc;
    uint64_t offset, stored, raw;
} seg_section;

static void section_at(const uint8_t *bytes, uint32_t i, seg_section *s) {
    const uint8_t *t = bytes + HEADER_SIZE + (size_t)ENTRY_SIZE * i;
    s->kind = shoal__get_u32(t + 0);
    s->codec = shoal__get_u32(t + 4);
    s->index = shoal__get_u32(t + 8);
    s->crc = shoal__get_u32(t + 12);
    s->offset = shoal__get_u64(t + 16);
    s->stored = shoal__get_u64(t + 24);
    s->raw = shoal__get_u64(t + 32);
}

/* Validates the 64-byte header. */
static int check_header(const uint8_t *bytes, size_t size, seg_head *h, seg_msg *m) {
    memset(h, 0, sizeof *h);
    if (!bytes) return msg_fail(m, SHOAL_EPARAM, "bytes is NULL");
    size_t have = size < sizeof MAGIC ? size : sizeof MAGIC;
    if (memcmp(bytes, MAGIC, have) != 0) {
        /* Text-mode transfers turn \r\n into \n or the reverse. */
        if (have >= 7 && memcmp(bytes, MAGIC, 6) == 0 && bytes[6] == '\n')
            return msg_fail(m, SHOAL_ECORRUPT, "not a segment: CR LF became LF (text-mode copy?)");
        if (have >= 1 && bytes[0] == (MAGIC[0] & 0x7f))
            return msg_fail(m, SHOAL_ECORRUPT, "not a segment: the high bit was stripped");
        return msg_fail(m, SHOAL_ECORRUPT, "not a Shoal segment (bad magic)");
    }
    if (size < HEADER_SIZE)
        return msg_fail(m, SHOAL_ETRUNCATED, "%zu bytes; the header alone has %u", size,
                        HEADER_SIZE);
    uint32_t version = shoal__get_u32(bytes + 12);
    h->major = version & 0xffff;
    h->minor = version >> 16;
    /* The version is read before the CRC: a future major may lay out the
     * rest of the header differently. */
    if (h->major != SHOAL_FORMAT_MAJOR)
        return msg_fail(m, SHOAL_EVERSION, "format %u.%u; this library reads %u.x", h->major,
                        h->minor, SHOAL_FORMAT_MAJOR);
    if (!crc_ok(shoal__get_u32(bytes + 60), bytes, 60))
        return msg_fail(m, SHOAL_ECHECKSUM, "header checksum mismatch");
    if (shoal__get_u32(bytes + 52) != 0x01020304u)
        return msg_fail(m, SHOAL_ECORRUPT, "byte-order mark is wrong (byte-swapped copy?)");
    h->required = shoal__get_u64(bytes + 16);
    h->optional = shoal__get_u64(bytes + 24);
    h->size = shoal__get_u64(bytes + 32);
    h->count = shoal__get_u32(bytes + 40);
    if (h->required & ~REQUIRED_KNOWN)
        return msg_fail(m, SHOAL_EVERSION, "required features %#llx are unknown",
                        (unsigned long long)(h->required & ~REQUIRED_KNOWN));
    if (shoal__get_u32(bytes + 44) != ENTRY_SIZE || shoal__get_u32(bytes + 56))
        return msg_fail(m, SHOAL_ECORRUPT, "header: bad entry size or reserved field");
    if (h->count == 0 || h->count > MAX_SECTIONS)
        return msg_fail(m, SHOAL_ECORRUPT, "header: %u sections", h->count);
    h->table_end = HEADER_SIZE + (uint64_t)ENTRY_SIZE * h->count;
    h->data_start = align_up(h->table_end);
    if (h->size < h->data_start + SHOAL__CONFIG_SIZE)
        return msg_fail(m, SHOAL_ECORRUPT, "header: segment size %llu is too small",
                        (unsigned long long)h->size);
    return SHOAL_OK;
}

/* Validates the table (bytes must reach h->table_end).  full: the whole
 * segment is present, so padding and zstd frames are checked too. */
static int check_table(const uint8_t *bytes, size_t size, const seg_head *h, int full,
                       uint32_t *compressed, seg_msg *m) {
    if (size < h->table_end)
        return msg_fail(m, SHOAL_ETRUNCATED, "%zu bytes; the section table ends at %llu", size,
                        (unsigned long long)h->table_end);
    if (!crc_ok(shoal__get_u32(bytes + 48), bytes + HEADER_SIZE,
                (size_t)(h->table_end - HEADER_SIZE)))
        return msg_fail(m, SHOAL_ECHECKSUM, "section table checksum mismatch");
    if (full && !shoal__all_zero(bytes + h->table_end, (size_t)(h->data_start - h->table_end)))
        return msg_fail(m, SHOAL_ECORRUPT, "padding after the table is not zero");
    uint64_t at = h->data_start;
    uint32_t zstd = 0;
    for (uint32_t i = 0; i < h->count; i++) {
        seg_section s;
        section_at(bytes, i, &s);
        const uint8_t *t = bytes + HEADER_SIZE + (size_t)ENTRY_SIZE * i;
        if (shoal__get_u64(t + 40))
            return msg_fail(m, SHOAL_ECORRUPT, "section %u: reserved field is not zero", i);
        if (i == 0 && (s.kind != SHOAL__SEC_CONFIG || s.codec != CODEC_NONE ||
                       s.raw != SHOAL__CONFIG_SIZE || s.index))
            return msg_fail(m, SHOAL_ECORRUPT, "the first section is not an uncompressed config");
        if (s.codec > CODEC_ZSTD)
            return msg_fail(m, SHOAL_EVERSION, "section %u: unknown codec %u", i, s.codec);
        if (i > 0) at = align_up(at);
        if (s.offset != at)
            return msg_fail(m, SHOAL_ECORRUPT, "section %u starts at %llu, not %llu", i,
                            (unsigned long long)s.offset, (unsigned long long)at);
        if (s.stored > h->size || s.offset > h->size - s.stored)
            return msg_fail(m, SHOAL_ECORRUPT, "section %u runs past the segment end", i);
        if (s.codec == CODEC_NONE && s.raw != s.stored)
            return msg_fail(m, SHOAL_ECORRUPT, "section %u: stored and raw sizes differ", i);
        if (s.codec == CODEC_ZSTD) {
            zstd++;
            if (s.stored == 0 || s.stored >= s.raw)
                return msg_fail(m, SHOAL_ECORRUPT, "section %u: zstd does not shrink it", i);
            if (full) {
                const uint8_t *src = bytes + s.offset;
                /* One frame, exactly the stored bytes, declaring the raw
                 * size, whose blocks can really produce it: so no later
                 * allocation exceeds what the bytes can decode to. */
                unsigned long long declared = ZSTD_getFrameContentSize(src, (size_t)s.stored);
                size_t frame = ZSTD_findFrameCompressedSize(src, (size_t)s.stored);
                unsigned long long bound = ZSTD_decompressBound(src, (size_t)s.stored);
                if (ZSTD_isError(frame) || frame != s.stored || declared != s.raw ||
                    bound == ZSTD_CONTENTSIZE_ERROR || bound < s.raw)
                    return msg_fail(m, SHOAL_ECORRUPT, "section %u: bad zstd frame", i);
            }
        }
        at = s.offset + s.stored;
    }
    if (at != h->size)
        return msg_fail(m, SHOAL_ECORRUPT, "sections end at %llu; the segment at %llu",
                        (unsigned long long)at, (unsigned long long)h->size);
    if (((h->required & FEATURE_ZSTD) != 0) != (zstd != 0))
        return msg_fail(m, SHOAL_ECORRUPT, "the zstd feature bit disagrees with the sections");
    if (full) {
        /* Padding between sections must be zero. */
        uint64_t end = 0;
        for (uint32_t i = 0; i < h->count; i++) {
            seg_section s;
            section_at(bytes, i, &s);
            if (i > 0 && !shoal__all_zero(bytes + end, (size_t)(s.offset - end)))
                return msg_fail(m, SHOAL_ECORRUPT, "padding before section %u is not zero", i);
            end = s.offset + s.stored;
        }
    }
    if (compressed) *compressed = zstd;
    return SHOAL_OK;
}

/* Header, table and config from a (possibly partial) segment. */
static int read_head(const uint8_t *bytes, size_t size, int full, seg_head *h, seg_config *c,
                     uint32_t *compressed, seg_msg *m) {
    int rc = check_header(bytes, size, h, m);
    if (rc) return rc;
    if (full && size < h->size)
        return msg_fail(m, SHOAL_ETRUNCATED, "%zu bytes of a %llu-byte segment", size,
                        (unsigned long long)h->size);
    if (full && size > h->size)
        return msg_fail(m, SHOAL_ECORRUPT, "%llu bytes follow the segment's end",
                        (unsigned long long)(size - h->size));
    if ((rc = check_table(bytes, size, h, full, compressed, m))) return rc;
    if (size < h->data_start + SHOAL__CONFIG_SIZE)
        return msg_fail(m, SHOAL_ETRUNCATED, "%zu bytes; the config ends at %llu", size,
                        (unsigned long long)(h->data_start + SHOAL__CONFIG_SIZE));
    seg_section s;
    section_at(bytes, 0, &s);
    if (!crc_ok(s.crc, bytes + s.offset, SHOAL__CONFIG_SIZE))
        return msg_fail(m, SHOAL_ECHECKSUM, "config checksum mismatch");
    return config_get(bytes + s.offset, c, m);
}

/* ------------------------------------------------------------------ read */

struct shoal__seg_reader {
    shoal_index *index;
    const uint8_t *bytes;
    uint32_t count, next;
    int view, borrow_ok;
    ZSTD_DCtx *dctx;
    uint8_t *buf;
};

int shoal__seg_is_view(const shoal__seg_reader *r) { return r->view; }

static const char *section_name(uint32_t kind) {
    switch (kind) {
    case SHOAL__SEC_CONFIG: return "config";
    case SHOAL__SEC_IDS: return "ids";
    case SHOAL__SEC_VECTORS: return "vectors";
    case SHOAL__SEC_HNSW_LEVELS: return "hnsw levels";
    case SHOAL__SEC_HNSW_BASE: return "hnsw level 0";
    case SHOAL__SEC_HNSW_UPPER: return "hnsw upper levels";
    case SHOAL__SEC_HNSW_SQ8: return "hnsw sq8";
    case SHOAL__SEC_IVF_CENTROIDS: return "ivf centroids";
    case SHOAL__SEC_IVF_SQ8: return "ivf sq8";
    case SHOAL__SEC_IVF_CODEBOOKS: return "ivf codebooks";
    case SHOAL__SEC_IVF_COUNTS: return "ivf list counts";
    case SHOAL__SEC_IVF_LIST: return "ivf list";
    case SHOAL__SEC_IVF_RERANK: return "ivf rerank";
    default: return "unknown";
    }
}

/* Verifies and skips unknown optional sections at the read position. */
static int skip_optional(shoal__seg_reader *r, uint32_t kind, uint32_t index) {
    while (r->next < r->count) {
        seg_section s;
        section_at(r->bytes, r->next, &s);
        if (!(s.kind & 0x80000000u) || (s.kind == kind && s.index == index)) break;
        if (!crc_ok(s.crc, r->bytes + s.offset, (size_t)s.stored))
            return shoal__fail(r->index, SHOAL_ECHECKSUM, "section %u: checksum mismatch",
                               r->next);
        r->next++;
    }
    return SHOAL_OK;
}

int shoal__seg_next(shoal__seg_reader *r, uint32_t kind, uint32_t index, uint64_t raw_size,
                    const uint8_t **raw, int *borrowable) {
    int rc = skip_optional(r, kind, index);
    if (rc) return rc;
    if (r->next >= r->count)
        return shoal__fail(r->index, SHOAL_ECORRUPT, "the %s section %u is missing",
                           section_name(kind), index);
    seg_section s;
    section_at(r->bytes, r->next, &s);
    if (s.kind != kind || s.index != index)
        return shoal__fail(r->index, SHOAL_ECORRUPT,
                           "section %u is %s %u where %s %u belongs", r->next,
                           section_name(s.kind), s.index, section_name(kind), index);
    if (s.raw != raw_size)
        return shoal__fail(r->index, SHOAL_ECORRUPT, "the %s section %u has %llu bytes, not %llu",
                           section_name(kind), index, (unsigned long long)s.raw,
                           (unsigned long long)raw_size);
    if (raw_size > SIZE_MAX / 2)
        return shoal__fail(r->index, SHOAL_ETOOBIG, "the %s section is too large for this build",
                           section_name(kind));
    const uint8_t *src = r->bytes + s.offset;
    if (!crc_ok(s.crc, src, (size_t)s.stored))
        return shoal__fail(r->index, SHOAL_ECHECKSUM, "the %s section %u: checksum mismatch",
                           section_name(kind), index);
    r->next++;
    shoal__free(&r->index->mem, r->buf);
    r->buf = NULL;
    if (s.codec == CODEC_NONE) {
        *raw = src;
        *borrowable = r->view && r->borrow_ok;
        return SHOAL_OK;
    }
    *borrowable = 0;
    if (!r->dctx) {
        r->dctx = ZSTD_createDCtx_advanced(zstd_mem(&r->index->mem));
        if (!r->dctx) return shoal__fail(r->index, SHOAL_ENOMEM, "out of memory for zstd");
    }
    r->buf = shoal__alloc(&r->index->mem, raw_size ? (size_t)raw_size : 1);
    if (!r->buf)
        return shoal__fail(r->index, SHOAL_ENOMEM, "out of memory decompressing %llu bytes",
                           (unsigned long long)raw_size);
    size_t n = ZSTD_decompressDCtx(r->dctx, r->buf, (size_t)raw_size, src, (size_t)s.stored);
    if (ZSTD_isError(n) || n != raw_size) {
        if (ZSTD_isError(n) && ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation)
            return shoal__fail(r->index, SHOAL_ENOMEM, "out of memory in zstd");
        return shoal__fail(r->index, SHOAL_ECORRUPT, "the %s section %u: zstd: %s",
                           section_name(kind), index,
                           ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong size");
    }
    *raw = r->buf;
    return SHOAL_OK;
}

static void copy_msg(const shoal_load_params *params, const char *text) {
    if (!params || !params->errmsg || !params->errmsg_size) return;
    size_t n = strlen(text);
    if (n >= params->errmsg_size) n = params->errmsg_size - 1;
    memcpy(params->errmsg, text, n);
    params->errmsg[n] = '\0';
}

static int open_segment(const uint8_t *bytes, size_t size, const shoal_load_params *params,
                        int view, shoal_index **out) {
    seg_msg m;
    m.text[0] = '\0';
    if (!out) return SHOAL_EPARAM;
    *out = NULL;
    seg_head h;
    seg_config c;
    int rc = read_head(bytes, size, 1, &h, &c, NULL, &m);
    if (rc) {
        copy_msg(params, m.text);
        return rc;
    }
    shoal_params p;
    shoal_params_init(&p);
    params_from_config(&c, &p);
    if (params) {
        p.simd = params->simd;
        p.allocator = params->allocator;
    }
    shoal_index *index;
    rc = shoal_index_new(&p, &index);
    if (rc) {
        if (rc == SHOAL_EPARAM) rc = SHOAL_ECORRUPT;
        copy_msg(params, rc == SHOAL_ECORRUPT ? "config: the index parameters are invalid"
                                              : shoal_strerror(rc));
        return rc;
    }
    for (int i = 0; i < 4; i++) index->rng.s[i] = c.rng[i];
    index->view = view;
    shoal__seg_reader r;
    memset(&r, 0, sizeof r);
    r.index = index;
    r.bytes = bytes;
    r.count = h.count;
    r.next = 1;
    r.view = view;
    r.borrow_ok = shoal__little_endian() && ((uintptr_t)bytes & 15) == 0;
    rc = shoal__ids_load(index, &r, c.label_bound, c.live, c.free_count, c.id_bytes, c.next_seq);
    if (!rc) rc = index->ops->load(index, &r, c.kp);
    if (!rc) rc = skip_optional(&r, 0, 0);
    if (!rc && r.next != r.count)
        rc = shoal__fail(index, SHOAL_ECORRUPT, "section %u (%s) is not expected here", r.next,
                         section_name(shoal__get_u32(bytes + HEADER_SIZE + ENTRY_SIZE * r.next)));
    shoal__free(&index->mem, r.buf);
    ZSTD_freeDCtx(r.dctx);
    if (rc) {
        copy_msg(params, index->errmsg);
        shoal_index_free(index);
        return rc;
    }
    index->errmsg[0] = '\0';
    *out = index;
    return SHOAL_OK;
}

int shoal_index_load(const uint8_t *bytes, size_t size, const shoal_load_params *params,
                     shoal_index **out) {
    return open_segment(bytes, size, params, 0, out);
}

int shoal_index_view(const uint8_t *bytes, size_t size, const shoal_load_params *params,
                     shoal_index **out) {
    return open_segment(bytes, size, params, 1, out);
}

int shoal_index_is_view(const shoal_index *index) { return index->view; }

/* ----------------------------------------------------------- info, blocks */

int shoal_segment_info(const uint8_t *bytes, size_t size, shoal_segment_summary *info) {
    seg_msg m;
    seg_head h;
    seg_config c;
    uint32_t compressed = 0;
    memset(info, 0, sizeof *info);
    int rc = read_head(bytes, size, 0, &h, &c, &compressed, &m);
    info->format_major = h.major;
    info->format_minor = h.minor;
    info->head_size = h.count ? h.data_start + SHOAL__CONFIG_SIZE : 0;
    if (rc) return rc;
    info->required_features = h.required;
    info->optional_features = h.optional;
    info->segment_size = h.size;
    info->sections = h.count;
    info->compressed = compressed;
    info->kind = (shoal_kind)c.kind;
    info->metric = (shoal_metric)c.metric;
    info->dim = c.dim;
    info->size = c.live;
    info->label_bound = c.label_bound;
    shoal_params_init(&info->params);
    params_from_config(&c, &info->params);
    if (c.kind == SHOAL_KIND_HNSW) info->storage = c.kp[3];
    if (c.kind == SHOAL_KIND_IVF) {
        info->storage = c.kp[2];
        info->nlist = c.kp[8];
    }
    return SHOAL_OK;
}

/* Cuts [from, to) into blocks of at most SHOAL_BLOCK_MAX bytes. */
static void emit_blocks(uint64_t from, uint64_t to, uint32_t list, shoal_block *out,
                        uint32_t cap, uint64_t *count) {
    while (from < to) {
        uint64_t n = to - from < SHOAL_BLOCK_MAX ? to - from : SHOAL_BLOCK_MAX;
        if (*count < cap) {
            out[*count].offset = from;
            out[*count].size = (uint32_t)n;
            out[*count].list = list;
        }
        ++*count;
        from += n;
    }
}

int shoal_segment_blocks(const uint8_t *bytes, size_t size, shoal_block *out, uint32_t cap) {
    seg_msg m;
    seg_head h;
    int rc = check_header(bytes, size, &h, &m);
    if (!rc) rc = check_table(bytes, size, &h, 0, NULL, &m);
    if (rc) return rc;
    uint64_t count = 0, start = 0;
    uint32_t unit = UINT32_MAX;
    for (uint32_t i = 0; i < h.count; i++) {
        seg_section s;
        section_at(bytes, i, &s);
        uint32_t u = s.kind == SHOAL__SEC_IVF_LIST || s.kind == SHOAL__SEC_IVF_RERANK
                         ? s.index
                         : UINT32_MAX;
        if (u == unit) continue;
        emit_blocks(start, s.offset, unit, out, cap, &count);
        start = s.offset;
        unit = u;
    }
    emit_blocks(start, h.size, unit, out, cap, &count);
    if (count > INT32_MAX) return SHOAL_ETOOBIG;
    return (int)count;
}
