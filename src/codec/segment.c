/*
 * segment.c -- the segment container: sections to bytes and back.
 *
 * What
 *   A segment is the one serialized form of an index, whatever holds it
 *   (a file, IndexedDB, an IPFS block store, S5).  docs/FORMAT.md is its
 *   specification; this file implements the container -- the 64-byte
 *   header, the section table, per-section CRC-32C and zstd.  It knows
 *   nothing of indexes: what the sections hold belongs to their owners
 *   (index/persist.c puts an index together from them, index.c writes the
 *   per-record sections, each kind its own), through segment.h.  The
 *   dependency runs one way: index/ -> codec/.
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
 *   each zstd frame's declared and bounded size).  Then each section's CRC
 *   as it is read; its owner checks every count against its limits.  The
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
#include <zstd.h>

#include "codec/segment.h"

#define HEADER_SIZE SHOAL__SEG_HEADER
#define ENTRY_SIZE SHOAL__SEG_ENTRY
#define ALIGN SHOAL__SEG_ALIGN
#define MAX_SECTIONS (1u << 22)
#define FEATURE_ZSTD 1ull
#define CODEC_NONE 0u
#define CODEC_ZSTD 1u
#define BYTE_ORDER_MARK 0x01020304u

static const uint8_t MAGIC[12] = {0x89, 'S', 'H', 'O', 'A', 'L', '\r', '\n', 0x1a, '\n', 0x00, 0xff};

int shoal__seg_crc_ok(uint32_t want, const void *data, size_t size) {
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

/* --------------------------------------------------------------- writer */

struct shoal__seg_entry {
    uint32_t kind, codec, index, crc;
    uint64_t offset, stored, raw; /* offset relative to the body */
};

void shoal__seg_writer_init(shoal__seg_writer *w, shoal__mem *mem, int zstd_level) {
    memset(w, 0, sizeof *w);
    w->mem = mem;
    w->level = zstd_level;
}

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
    if (!rc && w->count + 1 > MAX_SECTIONS) rc = SHOAL_ETOOBIG;
    if (!rc) rc = writer_reserve(w, start + raw_size);
    if (!rc)
        rc = shoal__grow(w->mem, (void **)&w->entries, &w->entries_cap, w->count + 1,
                         sizeof *w->entries);
    if (rc) {
        w->error = rc;
        return NULL;
    }
    memset(w->body + w->size, 0, (size_t)(start + raw_size - w->size));
    shoal__seg_entry *e = &w->entries[w->count++];
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
    shoal__seg_entry *e = &w->entries[w->count - 1];
    uint8_t *raw = w->body + e->offset;
    /* The first section is never compressed, so that a reader can parse it
     * from a prefix without zstd; sections below 64 bytes cannot gain
     * enough to matter. */
    if (w->level > 0 && w->count > 1 && e->raw >= 64) {
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

void shoal__seg_writer_free(shoal__seg_writer *w) {
    ZSTD_freeCCtx(w->cctx);
    shoal__free(w->mem, w->body);
    shoal__free(w->mem, w->entries);
    shoal__free(w->mem, w->scratch);
    w->cctx = NULL;
    w->body = NULL;
    w->entries = NULL;
    w->scratch = NULL;
}

int shoal__seg_finish(shoal__seg_writer *w, uint64_t required_features,
                      uint64_t optional_features, uint8_t **out, size_t *out_size) {
    *out = NULL;
    *out_size = 0;
    int rc = w->error;
    uint64_t head = align_up(HEADER_SIZE + (uint64_t)ENTRY_SIZE * w->count);
    uint64_t total = head + w->size;
    if (!rc && total > SIZE_MAX / 2) rc = SHOAL_ETOOBIG;
    if (!rc) rc = writer_reserve(w, total);
    if (rc) {
        shoal__seg_writer_free(w);
        return rc;
    }
    uint8_t *seg = w->body;
    memmove(seg + head, seg, w->size);
    memset(seg, 0, (size_t)head);
    uint32_t any_zstd = 0;
    for (uint32_t i = 0; i < w->count; i++) {
        const shoal__seg_entry *e = &w->entries[i];
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
    shoal__put_u64(seg + 16, (required_features & ~FEATURE_ZSTD) | (any_zstd ? FEATURE_ZSTD : 0));
    shoal__put_u64(seg + 24, optional_features);
    shoal__put_u64(seg + 32, total);
    shoal__put_u32(seg + 40, w->count);
    shoal__put_u32(seg + 44, ENTRY_SIZE);
    shoal__put_u32(seg + 48, shoal_crc32c(0, seg + HEADER_SIZE, (size_t)ENTRY_SIZE * w->count));
    shoal__put_u32(seg + 52, BYTE_ORDER_MARK);
    shoal__put_u32(seg + 60, shoal_crc32c(0, seg, 60));

    w->body = NULL;
    shoal__seg_writer_free(w);
    /* Give back the slack of the growth policy. */
    uint8_t *fit = shoal__realloc(w->mem, seg, (size_t)total);
    *out = fit ? fit : seg;
    *out_size = (size_t)total;
    return SHOAL_OK;
}

/* ------------------------------------------------------ header and table */

void shoal__seg_section_at(const uint8_t *bytes, uint32_t i, shoal__seg_section *s) {
    const uint8_t *t = bytes + HEADER_SIZE + (size_t)ENTRY_SIZE * i;
    s->kind = shoal__get_u32(t + 0);
    s->codec = shoal__get_u32(t + 4);
    s->index = shoal__get_u32(t + 8);
    s->crc = shoal__get_u32(t + 12);
    s->offset = shoal__get_u64(t + 16);
    s->stored = shoal__get_u64(t + 24);
    s->raw = shoal__get_u64(t + 32);
}

#define FAIL(...) shoal__msg(msg, msg_size, __VA_ARGS__)

/* Validates the 64-byte header. */
static int check_header(const uint8_t *bytes, size_t size, uint64_t known_required,
                        shoal__seg_head *h, char *msg, size_t msg_size) {
    if (!bytes) return FAIL(SHOAL_EPARAM, "bytes is NULL");
    size_t have = size < sizeof MAGIC ? size : sizeof MAGIC;
    if (memcmp(bytes, MAGIC, have) != 0) {
        /* Text-mode transfers turn \r\n into \n or the reverse. */
        if (have >= 7 && memcmp(bytes, MAGIC, 6) == 0 && bytes[6] == '\n')
            return FAIL(SHOAL_ECORRUPT, "not a segment: CR LF became LF (text-mode copy?)");
        if (have >= 1 && bytes[0] == (MAGIC[0] & 0x7f))
            return FAIL(SHOAL_ECORRUPT, "not a segment: the high bit was stripped");
        return FAIL(SHOAL_ECORRUPT, "not a Shoal segment (bad magic)");
    }
    if (size < HEADER_SIZE)
        return FAIL(SHOAL_ETRUNCATED, "%zu bytes; the header alone has %u", size, HEADER_SIZE);
    uint32_t version = shoal__get_u32(bytes + 12);
    h->major = version & 0xffff;
    h->minor = version >> 16;
    /* The version is read before the CRC: a future major may lay out the
     * rest of the header differently. */
    if (h->major != SHOAL_FORMAT_MAJOR)
        return FAIL(SHOAL_EVERSION, "format %u.%u; this library reads %u.x", h->major, h->minor,
                    SHOAL_FORMAT_MAJOR);
    if (!shoal__seg_crc_ok(shoal__get_u32(bytes + 60), bytes, 60))
        return FAIL(SHOAL_ECHECKSUM, "header checksum mismatch");
    if (shoal__get_u32(bytes + 52) != BYTE_ORDER_MARK)
        return FAIL(SHOAL_ECORRUPT, "byte-order mark is wrong (byte-swapped copy?)");
    h->required = shoal__get_u64(bytes + 16);
    h->optional = shoal__get_u64(bytes + 24);
    h->size = shoal__get_u64(bytes + 32);
    h->count = shoal__get_u32(bytes + 40);
    uint64_t unknown = h->required & ~(known_required | FEATURE_ZSTD);
    if (unknown)
        return FAIL(SHOAL_EVERSION, "required features %#llx are unknown",
                    (unsigned long long)unknown);
    if (shoal__get_u32(bytes + 44) != ENTRY_SIZE || shoal__get_u32(bytes + 56))
        return FAIL(SHOAL_ECORRUPT, "header: bad entry size or reserved field");
    if (h->count == 0 || h->count > MAX_SECTIONS)
        return FAIL(SHOAL_ECORRUPT, "header: %u sections", h->count);
    h->table_end = HEADER_SIZE + (uint64_t)ENTRY_SIZE * h->count;
    h->data_start = align_up(h->table_end);
    if (h->size < h->data_start)
        return FAIL(SHOAL_ECORRUPT, "header: segment size %llu is too small",
                    (unsigned long long)h->size);
    return SHOAL_OK;
}

/* Validates the table (bytes must reach h->table_end).  full: the whole
 * segment is present, so padding and zstd frames are checked too. */
static int check_table(const uint8_t *bytes, size_t size, shoal__seg_head *h, int full,
                       char *msg, size_t msg_size) {
    if (size < h->table_end)
        return FAIL(SHOAL_ETRUNCATED, "%zu bytes; the section table ends at %llu", size,
                    (unsigned long long)h->table_end);
    if (!shoal__seg_crc_ok(shoal__get_u32(bytes + 48), bytes + HEADER_SIZE,
                           (size_t)(h->table_end - HEADER_SIZE)))
        return FAIL(SHOAL_ECHECKSUM, "section table checksum mismatch");
    if (full && !shoal__all_zero(bytes + h->table_end, (size_t)(h->data_start - h->table_end)))
        return FAIL(SHOAL_ECORRUPT, "padding after the table is not zero");
    uint64_t at = h->data_start;
    uint32_t zstd = 0;
    for (uint32_t i = 0; i < h->count; i++) {
        shoal__seg_section s;
        shoal__seg_section_at(bytes, i, &s);
        const uint8_t *t = bytes + HEADER_SIZE + (size_t)ENTRY_SIZE * i;
        if (shoal__get_u64(t + 40))
            return FAIL(SHOAL_ECORRUPT, "section %u: reserved field is not zero", i);
        if (s.codec > CODEC_ZSTD)
            return FAIL(SHOAL_EVERSION, "section %u: unknown codec %u", i, s.codec);
        if (i == 0 && s.codec != CODEC_NONE)
            return FAIL(SHOAL_ECORRUPT, "the first section is compressed");
        if (i > 0) at = align_up(at);
        if (s.offset != at)
            return FAIL(SHOAL_ECORRUPT, "section %u starts at %llu, not %llu", i,
                        (unsigned long long)s.offset, (unsigned long long)at);
        if (s.stored > h->size || s.offset > h->size - s.stored)
            return FAIL(SHOAL_ECORRUPT, "section %u runs past the segment end", i);
        if (s.codec == CODEC_NONE && s.raw != s.stored)
            return FAIL(SHOAL_ECORRUPT, "section %u: stored and raw sizes differ", i);
        if (s.codec == CODEC_ZSTD) {
            zstd++;
            if (s.stored == 0 || s.stored >= s.raw)
                return FAIL(SHOAL_ECORRUPT, "section %u: zstd does not shrink it", i);
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
                    return FAIL(SHOAL_ECORRUPT, "section %u: bad zstd frame", i);
            }
        }
        at = s.offset + s.stored;
    }
    if (at != h->size)
        return FAIL(SHOAL_ECORRUPT, "sections end at %llu; the segment at %llu",
                    (unsigned long long)at, (unsigned long long)h->size);
    if (((h->required & FEATURE_ZSTD) != 0) != (zstd != 0))
        return FAIL(SHOAL_ECORRUPT, "the zstd feature bit disagrees with the sections");
    if (full) {
        /* Padding between sections must be zero. */
        uint64_t end = 0;
        for (uint32_t i = 0; i < h->count; i++) {
            shoal__seg_section s;
            shoal__seg_section_at(bytes, i, &s);
            if (i > 0 && !shoal__all_zero(bytes + end, (size_t)(s.offset - end)))
                return FAIL(SHOAL_ECORRUPT, "padding before section %u is not zero", i);
            end = s.offset + s.stored;
        }
    }
    h->compressed = zstd;
    return SHOAL_OK;
}

int shoal__seg_open(const uint8_t *bytes, size_t size, int full, uint64_t known_required,
                    shoal__seg_head *h, char *msg, size_t msg_size) {
    memset(h, 0, sizeof *h);
    int rc = check_header(bytes, size, known_required, h, msg, msg_size);
    if (rc) return rc;
    if (full && size < h->size)
        return FAIL(SHOAL_ETRUNCATED, "%zu bytes of a %llu-byte segment", size,
                    (unsigned long long)h->size);
    if (full && size > h->size)
        return FAIL(SHOAL_ECORRUPT, "%llu bytes follow the segment's end",
                    (unsigned long long)(size - h->size));
    return check_table(bytes, size, h, full, msg, msg_size);
}

#undef FAIL

/* ------------------------------------------------------------------ read */

static const char *no_name(uint32_t kind) {
    (void)kind;
    return "section";
}

void shoal__seg_reader_init(shoal__seg_reader *r, const uint8_t *bytes,
                            const shoal__seg_head *head, shoal__mem *mem, int view, char *msg,
                            size_t msg_size, const char *(*name)(uint32_t kind)) {
    memset(r, 0, sizeof *r);
    r->bytes = bytes;
    r->data = bytes;
    r->data_offset = 0;
    r->data_size = head->size;
    r->head = head;
    r->mem = mem;
    r->next = 1;
    r->view = view;
    r->borrow_ok = shoal__little_endian() && ((uintptr_t)bytes & 15) == 0;
    r->msg = msg;
    r->msg_size = msg_size;
    r->name = name ? name : no_name;
}

void shoal__seg_reader_free(shoal__seg_reader *r) {
    shoal__free(r->mem, r->buf);
    ZSTD_freeDCtx(r->dctx);
    r->buf = NULL;
    r->dctx = NULL;
}

#define RFAIL(...) shoal__msg(r->msg, r->msg_size, __VA_ARGS__)

/* The stored bytes of section s inside the reader's data window, or NULL
 * when the window does not hold all of them. */
static const uint8_t *section_data(const shoal__seg_reader *r, const shoal__seg_section *s) {
    uint64_t offset = s->offset;
    if (r->hole_size) { /* the window's bytes skip [hole_offset, + hole_size) */
        if (offset >= r->hole_offset && offset - r->hole_offset >= r->hole_size)
            offset -= r->hole_size;
        else if (offset >= r->hole_offset || r->hole_offset - offset < s->stored)
            return NULL; /* in the hole, or running into it */
    }
    if (offset < r->data_offset || s->stored > r->data_size ||
        offset - r->data_offset > r->data_size - s->stored)
        return NULL;
    return r->data + (offset - r->data_offset);
}

void shoal__seg_reader_window(shoal__seg_reader *r, const uint8_t *data, uint64_t offset,
                              uint64_t size, uint32_t next) {
    r->data = data;
    r->data_offset = offset;
    r->data_size = size;
    r->next = next;
    r->borrow_ok = 0; /* the window is the caller's, not kept */
    r->hole_offset = r->hole_size = 0;
}

void shoal__seg_reader_hole(shoal__seg_reader *r, uint64_t offset, uint64_t size) {
    r->hole_offset = offset;
    r->hole_size = size;
}

/* Verifies and skips sections from `from` up to `to` (exclusive), which are
 * all optional. */
static int skip_to(shoal__seg_reader *r, uint32_t to) {
    for (; r->next < to; r->next++) {
        shoal__seg_section s;
        shoal__seg_section_at(r->bytes, r->next, &s);
        const uint8_t *src = section_data(r, &s);
        if (!src) return RFAIL(SHOAL_ETRUNCATED, "section %u is not in the bytes given", r->next);
        if (!shoal__seg_crc_ok(s.crc, src, (size_t)s.stored))
            return RFAIL(SHOAL_ECHECKSUM, "section %u: checksum mismatch", r->next);
    }
    return SHOAL_OK;
}

/* Position of (kind, index) at or after r->next past optional sections
 * only, or UINT32_MAX; *stop is where the optional run ends. */
static uint32_t find_section(const shoal__seg_reader *r, uint32_t kind, uint32_t index,
                             uint32_t *stop) {
    uint32_t i = r->next;
    for (; i < r->head->count; i++) {
        shoal__seg_section s;
        shoal__seg_section_at(r->bytes, i, &s);
        if (s.kind == kind && s.index == index) return i;
        if (!(s.kind & SHOAL__SEC_OPTIONAL)) break;
    }
    *stop = i;
    return UINT32_MAX;
}

static int take(shoal__seg_reader *r, uint32_t at, uint32_t kind, uint32_t index,
                uint64_t raw_size, const uint8_t **raw, int *borrowable) {
    int rc = skip_to(r, at);
    if (rc) return rc;
    shoal__seg_section s;
    shoal__seg_section_at(r->bytes, r->next, &s);
    if (s.raw != raw_size)
        return RFAIL(SHOAL_ECORRUPT, "the %s section %u has %llu bytes, not %llu", r->name(kind),
                     index, (unsigned long long)s.raw, (unsigned long long)raw_size);
    if (raw_size > SIZE_MAX / 2)
        return RFAIL(SHOAL_ETOOBIG, "the %s section is too large for this build", r->name(kind));
    const uint8_t *src = section_data(r, &s);
    if (!src)
        return RFAIL(SHOAL_ETRUNCATED, "the %s section %u is not in the bytes given", r->name(kind),
                     index);
    if (!shoal__seg_crc_ok(s.crc, src, (size_t)s.stored))
        return RFAIL(SHOAL_ECHECKSUM, "the %s section %u: checksum mismatch", r->name(kind),
                     index);
    r->next++;
    shoal__free(r->mem, r->buf);
    r->buf = NULL;
    if (s.codec == CODEC_NONE) {
        *raw = src;
        *borrowable = r->view && r->borrow_ok;
        return SHOAL_OK;
    }
    *borrowable = 0;
    if (!r->dctx) {
        r->dctx = ZSTD_createDCtx_advanced(zstd_mem(r->mem));
        if (!r->dctx) return RFAIL(SHOAL_ENOMEM, "out of memory for zstd");
    }
    r->buf = shoal__alloc(r->mem, raw_size ? (size_t)raw_size : 1);
    if (!r->buf)
        return RFAIL(SHOAL_ENOMEM, "out of memory decompressing %llu bytes",
                     (unsigned long long)raw_size);
    size_t n = ZSTD_decompressDCtx(r->dctx, r->buf, (size_t)raw_size, src, (size_t)s.stored);
    if (ZSTD_isError(n) || n != raw_size) {
        if (ZSTD_isError(n) && ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation)
            return RFAIL(SHOAL_ENOMEM, "out of memory in zstd");
        return RFAIL(SHOAL_ECORRUPT, "the %s section %u: zstd: %s", r->name(kind), index,
                     ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong size");
    }
    *raw = r->buf;
    return SHOAL_OK;
}

int shoal__seg_next(shoal__seg_reader *r, uint32_t kind, uint32_t index, uint64_t raw_size,
                    const uint8_t **raw, int *borrowable) {
    uint32_t stop;
    uint32_t at = find_section(r, kind, index, &stop);
    if (at != UINT32_MAX) return take(r, at, kind, index, raw_size, raw, borrowable);
    if (stop >= r->head->count)
        return RFAIL(SHOAL_ECORRUPT, "the %s section %u is missing", r->name(kind), index);
    shoal__seg_section s;
    shoal__seg_section_at(r->bytes, stop, &s);
    return RFAIL(SHOAL_ECORRUPT, "section %u is %s %u where %s %u belongs", stop,
                 r->name(s.kind), s.index, r->name(kind), index);
}

int shoal__seg_locate(shoal__seg_reader *r, uint32_t kind, uint32_t index, uint64_t raw_size,
                      shoal__seg_section *s, const uint8_t **raw) {
    uint32_t stop;
    uint32_t at = find_section(r, kind, index, &stop);
    if (at == UINT32_MAX) {
        int borrow;
        return shoal__seg_next(r, kind, index, raw_size, raw, &borrow); /* its message */
    }
    shoal__seg_section_at(r->bytes, at, s);
    *raw = NULL;
    if (section_data(r, s)) {
        int borrow;
        return take(r, at, kind, index, raw_size, raw, &borrow);
    }
    int rc = skip_to(r, at);
    if (rc) return rc;
    if (s->raw != raw_size)
        return RFAIL(SHOAL_ECORRUPT, "the %s section %u has %llu bytes, not %llu", r->name(kind),
                     index, (unsigned long long)s->raw, (unsigned long long)raw_size);
    r->next++;
    return SHOAL_OK;
}

int shoal__seg_maybe(shoal__seg_reader *r, uint32_t kind, uint32_t index, uint64_t raw_size,
                     const uint8_t **raw, int *borrowable) {
    uint32_t stop;
    uint32_t at = find_section(r, kind, index, &stop);
    if (at == UINT32_MAX) return 0;
    int rc = take(r, at, kind, index, raw_size, raw, borrowable);
    return rc ? rc : 1;
}

int shoal__seg_next_sized(shoal__seg_reader *r, uint32_t kind, uint32_t index, uint64_t max,
                          const uint8_t **raw, uint64_t *raw_size, int *borrowable) {
    int rc = shoal__seg_maybe_sized(r, kind, index, max, raw, raw_size, borrowable);
    if (rc == 1) return SHOAL_OK;
    if (rc < 0) return rc;
    return RFAIL(SHOAL_ECORRUPT, "the %s section %u is missing", r->name(kind), index);
}

int shoal__seg_maybe_sized(shoal__seg_reader *r, uint32_t kind, uint32_t index, uint64_t max,
                           const uint8_t **raw, uint64_t *raw_size, int *borrowable) {
    uint32_t stop;
    uint32_t at = find_section(r, kind, index, &stop);
    if (at == UINT32_MAX) return 0;
    shoal__seg_section s;
    shoal__seg_section_at(r->bytes, at, &s);
    if (s.raw > max)
        return RFAIL(SHOAL_ECORRUPT, "the %s section %u has %llu bytes, more than %llu",
                     r->name(kind), index, (unsigned long long)s.raw, (unsigned long long)max);
    *raw_size = s.raw;
    int rc = take(r, at, kind, index, s.raw, raw, borrowable);
    return rc ? rc : 1;
}

int shoal__seg_reader_end(shoal__seg_reader *r) {
    uint32_t stop = r->next;
    while (stop < r->head->count) {
        shoal__seg_section s;
        shoal__seg_section_at(r->bytes, stop, &s);
        if (!(s.kind & SHOAL__SEC_OPTIONAL)) break;
        stop++;
    }
    int rc = skip_to(r, stop);
    if (rc) return rc;
    if (r->next != r->head->count) {
        shoal__seg_section s;
        shoal__seg_section_at(r->bytes, r->next, &s);
        return RFAIL(SHOAL_ECORRUPT, "section %u (%s) is not expected here", r->next,
                     r->name(s.kind));
    }
    return SHOAL_OK;
}
