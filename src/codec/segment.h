/*
 * segment.h -- the segment container (segment.c): a 64-byte header, a table
 * of sections, and the sections, each with its CRC-32C and optionally zstd.
 *
 * The container knows nothing of indexes.  What the sections hold, in which
 * order and with which sizes, is decided by their owners: index/persist.c
 * (config, the order of everything), index/index.c (the per-record
 * sections), and each kind (flat.c, hnsw.c, ivf.c) for its own.
 * docs/FORMAT.md is the specification of the bytes.
 *
 * Writing: open a section of an exact raw size, fill its bytes (zeroed;
 * little-endian through codec/bytes.h), end it; the writer compresses it if
 * that helps and records its table entry.  finish() assembles header and
 * table in front.
 * Reading: open() validates header and table (before anything is
 * allocated); then the owner asks for each section in turn by kind, index
 * and the raw size its already validated counts imply; the reader checks
 * all three, the CRC-32C and the codec before returning the raw bytes -- so
 * no parser ever sees a buffer of a size it did not predict.
 */
#ifndef SHOAL_SEGMENT_H
#define SHOAL_SEGMENT_H

#include "codec/bytes.h"
#include "internal.h"

#define SHOAL__SEG_HEADER 64u
#define SHOAL__SEG_ENTRY 48u
#define SHOAL__SEG_ALIGN 64u
/* Section kinds with this bit are optional: a reader that does not know one
 * verifies its CRC and skips it. */
#define SHOAL__SEC_OPTIONAL 0x80000000u

typedef struct shoal__seg_section {
    uint32_t kind, codec, index, crc;
    uint64_t offset, stored, raw;
} shoal__seg_section;

/* What the header and table say (after shoal__seg_open). */
typedef struct shoal__seg_head {
    uint32_t major, minor, count;
    uint64_t required, optional, size;
    uint64_t table_end;  /* end of the section table */
    uint64_t data_start; /* where the first section begins */
    uint32_t compressed; /* sections stored with zstd */
} shoal__seg_head;

/* ---------------------------------------------------------------- writer */

typedef struct shoal__seg_entry shoal__seg_entry;

typedef struct shoal__seg_writer {
    shoal__mem *mem;
    int level;
    void *cctx; /* ZSTD_CCtx */
    uint8_t *body;
    size_t size, cap; /* body bytes used (to the end of the last section) */
    shoal__seg_entry *entries;
    uint32_t count, entries_cap;
    int open;
    int error; /* sticky: the first failure */
    uint8_t *scratch;
    size_t scratch_cap;
} shoal__seg_writer;

/* zstd_level 0 stores every section raw. */
void shoal__seg_writer_init(shoal__seg_writer *w, shoal__mem *mem, int zstd_level);
/* Opens a section of exactly raw_size bytes (zeroed) and returns them, or
 * NULL after recording SHOAL_ENOMEM / SHOAL_ETOOBIG.  The first section of
 * a segment is never compressed (a reader can parse it from a prefix). */
uint8_t *shoal__seg_begin(shoal__seg_writer *w, uint32_t kind, uint32_t index,
                          uint64_t raw_size);
/* Closes the open section (compressing it if that makes it smaller). */
void shoal__seg_end(shoal__seg_writer *w);
/* Puts header and table in front of the sections and hands the bytes
 * (allocated through the writer's mem) to *out; required_features are the
 * owner's (the container adds its zstd bit).  Returns the sticky error
 * or 0; frees the writer's working memory either way. */
int shoal__seg_finish(shoal__seg_writer *w, uint64_t required_features,
                      uint64_t optional_features, uint8_t **out, size_t *out_size);
void shoal__seg_writer_free(shoal__seg_writer *w);

/* ---------------------------------------------------------------- reader */

/* Validates the header and the table of a segment.  full: bytes holds the
 * whole segment (size must equal the segment size; padding and zstd frames
 * are checked too); otherwise bytes may be a prefix reaching past the
 * table.  known_required: the required feature bits the caller
 * understands.  On failure writes a message to msg and returns a
 * corrupt-family code; h->major/minor and h->data_start are set as far as
 * the header was read. */
int shoal__seg_open(const uint8_t *bytes, size_t size, int full, uint64_t known_required,
                    shoal__seg_head *h, char *msg, size_t msg_size);
/* Entry i of a validated table. */
void shoal__seg_section_at(const uint8_t *bytes, uint32_t i, shoal__seg_section *s);
/* CRC-32C check of stored section bytes (every check goes through here:
 * fuzzing builds accept any checksum so that mutated inputs reach the
 * structural validation behind it). */
int shoal__seg_crc_ok(uint32_t want, const void *data, size_t size);

typedef struct shoal__seg_reader {
    const uint8_t *bytes; /* the header and table (and, for a whole segment, all of it) */
    /* The window section bytes are read from: the segment bytes
     * [data_offset, data_offset + data_size), at data. */
    const uint8_t *data;
    uint64_t data_offset, data_size;
    /* A hole in the window: the segment's bytes [hole_offset, + hole_size)
     * are not among data's, which go on with those after it (a list given
     * without its rerank rows).  hole_size 0: none. */
    uint64_t hole_offset, hole_size;
    const shoal__seg_head *head;
    shoal__mem *mem;
    uint32_t next;
    int view, borrow_ok;
    void *dctx; /* ZSTD_DCtx */
    uint8_t *buf;
    char *msg;
    size_t msg_size;
    const char *(*name)(uint32_t kind); /* section names for messages */
} shoal__seg_reader;

/* A reader positioned after the first section.  view: raw sections may be
 * lent to a view (see shoal__seg_next).  Messages go to msg. */
void shoal__seg_reader_init(shoal__seg_reader *r, const uint8_t *bytes,
                            const shoal__seg_head *head, shoal__mem *mem, int view, char *msg,
                            size_t msg_size, const char *(*name)(uint32_t kind));

/*
 * The next section, which must be (kind, index) with exactly raw_size raw
 * bytes; unknown optional sections before it are verified and skipped.  On
 * success *raw points to the raw bytes, valid until the next call, and
 * *borrowable says whether they are the caller's segment bytes themselves,
 * aligned, usable in place by a view for as long as the index lives
 * (uncompressed, view mode, little-endian host).
 */
int shoal__seg_next(shoal__seg_reader *r, uint32_t kind, uint32_t index, uint64_t raw_size,
                    const uint8_t **raw, int *borrowable);
/* Like shoal__seg_next for a section that may be absent: returns 1 and the
 * bytes when the next section (after unknown optional ones) is (kind,
 * index), 0 without consuming anything when it is not, or an error. */
int shoal__seg_maybe(shoal__seg_reader *r, uint32_t kind, uint32_t index, uint64_t raw_size,
                     const uint8_t **raw, int *borrowable);
/* Like shoal__seg_maybe for a section whose raw size the caller cannot
 * predict: any raw size up to max is accepted and returned in *raw_size;
 * the caller must parse exactly that many bytes. */
int shoal__seg_maybe_sized(shoal__seg_reader *r, uint32_t kind, uint32_t index, uint64_t max,
                           const uint8_t **raw, uint64_t *raw_size, int *borrowable);
/* The same for a required section. */
int shoal__seg_next_sized(shoal__seg_reader *r, uint32_t kind, uint32_t index, uint64_t max,
                          const uint8_t **raw, uint64_t *raw_size, int *borrowable);
/* Reads the next sections, from section number next on, out of a window of
 * the segment: size bytes at data that are the segment's bytes from offset
 * on (a lazy reader attaching one IVF list).  Nothing read is borrowable. */
void shoal__seg_reader_window(shoal__seg_reader *r, const uint8_t *data, uint64_t offset,
                              uint64_t size, uint32_t next);
/* Cuts a hole into the current window: the segment's bytes [offset, +
 * size) are left out of the window's data, which continue with the bytes
 * after them (shoal__seg_reader_window clears it). */
void shoal__seg_reader_hole(shoal__seg_reader *r, uint64_t offset, uint64_t size);
/* The next section, which must be (kind, index) with raw_size raw bytes,
 * located without needing its bytes: its table entry goes to *s, and *raw
 * gets its raw bytes (verified as by shoal__seg_next) when the window
 * holds them, NULL when it does not (they are in its hole or beyond) --
 * for a section its owner leaves in the segment. */
int shoal__seg_locate(shoal__seg_reader *r, uint32_t kind, uint32_t index, uint64_t raw_size,
                      shoal__seg_section *s, const uint8_t **raw);
/* Checks that only unknown optional sections are left (verifying them). */
int shoal__seg_reader_end(shoal__seg_reader *r);
void shoal__seg_reader_free(shoal__seg_reader *r);

#endif
