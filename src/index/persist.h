/*
 * persist.h -- how an index is laid out as a segment: the section kinds and
 * the per-record section codec (index.c) that persist.c and the kinds use.
 * The container itself is codec/segment.h; docs/FORMAT.md specifies both.
 */
#ifndef SHOAL_PERSIST_H
#define SHOAL_PERSIST_H

#include "codec/segment.h"
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
    SHOAL__SEC_IVF_RECORDS = 38, /* 1.1, with LIST_RECORDS: a list's ids, seqs, times, metadata */
    SHOAL__SEC_LABELS = 4,       /* 1.1, with LIST_RECORDS: liveness and free list only */
    /* Optional (format 1.1): a 1.0 reader skips them and loads the records
     * without their metadata or times. */
    SHOAL__SEC_METADATA = (int)0x80000004u,
    SHOAL__SEC_TIMES = (int)0x80000005u,
    /* Optional: an HNSW SQ8 segment's per-record rerank bounds, with its
     * copies (a reader that leaves the copies in the segment uses them). */
    SHOAL__SEC_HNSW_SLACK = (int)0x80000014u
};

#define SHOAL__CONFIG_SIZE 128u
#define SHOAL__KIND_PARAMS 10u

/* What a lazy index (shoal_index_open_head) keeps to read the rest of its
 * segment later: a copy of the header and section table, and where each
 * list's unit -- its sections, contiguous in the segment -- lies. */
typedef struct shoal__lazy {
    shoal__seg_head head;
    uint8_t *table;          /* header + section table (head.table_end bytes) */
    uint32_t units;          /* lists */
    uint32_t *first_section; /* units + 1: each unit's first section; [units] = count */
    uint64_t *start;         /* units + 1: each unit's offset; [units] = segment size */
    uint64_t *rows_at;       /* external rerank rows: each unit's rerank section, */
    uint64_t *rows_size;     /* and its bytes to the next section; else NULL */
    uint32_t missing;        /* non-empty lists not attached yet */
    uint32_t live;           /* the config's counts, checked once every list is in */
    uint64_t id_bytes;
    int broken;              /* the lists contradicted the config */
} shoal__lazy;

void shoal__lazy_free(shoal_index *index);

/* Human names of section kinds, for messages. */
const char *shoal__section_name(uint32_t kind);

/* --------------------------------------------- common layer (index.c) */

/* Sizes the ids section implies, from validated config counts. */
uint64_t shoal__ids_section_size(uint32_t label_bound, uint32_t live, uint32_t free_count,
                                 uint64_t id_bytes);
uint64_t shoal__ids_bytes(const shoal_index *index);
int shoal__ids_save(const shoal_index *index, shoal__seg_writer *w);
int shoal__ids_load(shoal_index *index, shoal__seg_reader *r, uint32_t label_bound,
                    uint32_t live, uint32_t free_count, uint64_t id_bytes, uint64_t next_seq);
/* Required feature bit 1: the records of an IVF segment live in its lists
 * (a labels section instead of ids, metadata and times; a records section
 * after each list). */
#define SHOAL__FEATURE_LIST_RECORDS 2ull
/* Required feature bit 2: an HNSW SQ8 segment keeps float32 rerank copies
 * (kind word 8, the rerank depth, is nonzero; the vectors section follows the
 * quantizer even once it is trained). */
#define SHOAL__FEATURE_HNSW_COPIES 4ull
/* Every required bit this library reads (besides zstd's). */
#define SHOAL__FEATURES_KNOWN (SHOAL__FEATURE_LIST_RECORDS | SHOAL__FEATURE_HNSW_COPIES)

uint64_t shoal__labels_section_size(uint32_t label_bound, uint32_t free_count);
int shoal__labels_save(const shoal_index *index, shoal__seg_writer *w);
int shoal__labels_load(shoal_index *index, shoal__seg_reader *r, uint32_t label_bound,
                       uint32_t live, uint32_t free_count, uint64_t next_seq);
/* A list's records section: labels[0..n) in list order. */
int shoal__list_records_save(const shoal_index *index, shoal__seg_writer *w, uint32_t list,
                             const uint32_t *labels, uint32_t n);
int shoal__list_records_load(shoal_index *index, shoal__seg_reader *r, uint32_t list,
                             const uint32_t *labels, uint32_t n);
int shoal__list_records_done(shoal_index *index, uint32_t live, uint64_t id_bytes);
/* Takes back the records a failed list attach installed (labels[0..n),
 * those that got one). */
void shoal__list_records_undo(shoal_index *index, const uint32_t *labels, uint32_t n);

/* The metadata and times sections, after the ids (each only when some live
 * record has one). */
int shoal__records_save(const shoal_index *index, shoal__seg_writer *w);
int shoal__records_load(shoal_index *index, shoal__seg_reader *r);

#endif
