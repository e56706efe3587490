/*
 * collection.h -- the collection handle (collection.c), its log records
 * (log.c) and its manifest DAG (manifest.c).
 *
 * A collection is a buffer index plus segments.  Each segment is an index
 * over bytes the collection owns (a view), or a lazy IVF index fed list by
 * list, or nothing yet (its blocks are still to come from the host); next
 * to it the collection keeps what it knows of the segment's blocks, its
 * tombstones and the manifest entry describing it.
 */
#ifndef SHOAL_COLLECTION_H
#define SHOAL_COLLECTION_H

#include "codec/bytes.h"
#include "codec/json.h"
#include "index/kind.h"

enum { SHOAL__TIER_SMALL = 0, SHOAL__TIER_LARGE = 1 };

/* How a segment's blocks are kept: not decided yet (opened, nothing
 * asked), whole (bytes holds the segment; the index is a view over it), or
 * lazy (an IVF index opened from its head, lists attached as they come;
 * their bytes are not kept). */
enum { SHOAL__MODE_NONE = 0, SHOAL__MODE_WHOLE = 1, SHOAL__MODE_LAZY = 2 };

/* The most block links one segment node holds; larger segments link part
 * nodes of this many each (docs/FORMAT.md, "Collections"). */
#define SHOAL__NODE_FANOUT 16384u

typedef struct shoal__block {
    uint8_t digest[32];
    uint64_t offset; /* in the segment */
    uint32_t size;
    int have;        /* given (or the collection wrote it) */
} shoal__block;

/* A block the collection owns, named by its CID (nodes, tombstones). */
typedef struct shoal__blob {
    uint8_t cid[SHOAL_CID_BYTES];
    uint8_t *bytes; /* NULL until known */
    size_t size;
} shoal__blob;

typedef struct shoal__segment {
    /* The manifest entry (docs/FORMAT.md). */
    uint8_t link[SHOAL_CID_BYTES]; /* raw: the segment is one block; dag-cbor: its node */
    shoal_kind kind;
    int tier;
    uint32_t records;   /* live records in the segment's bytes */
    uint64_t seq_min, seq_max;
    int64_t time_min, time_max; /* SHOAL_TIME_NONE when no record has a time */
    uint64_t size;      /* bytes of the segment */

    /* The blocks: known once the node (and its parts) are in. */
    uint32_t nblocks, head_blocks, blocks_have;
    shoal__block *blocks;
    shoal__blob node;   /* the segment node (one-block segments have none) */
    shoal__blob *parts; /* part nodes of a segment of more than SHOAL__NODE_FANOUT blocks */
    uint32_t nparts;

    /* The index: a view over bytes, or lazy (IVF opened from its head). */
    uint8_t *bytes;     /* the whole segment, as its blocks arrive; NULL when lazy */
    int bytes_owned;    /* bytes are the collection's (else its view index's) */
    uint8_t *head;      /* lazy: the head blocks, until opened */
    uint8_t **units;    /* lazy: a list's bytes, while its blocks arrive */
    uint64_t *unit_left;
    uint32_t nunits;
    shoal_index *index;
    int mode;           /* SHOAL__MODE_*: how the segment's blocks are kept */
    uint32_t nlist;     /* IVF: lists (nprobe is capped at it) */

    /* Tombstones: labels of records replaced or deleted after the segment
     * was written.  allow = alive and not tombstoned (the search filter). */
    uint8_t *tomb, *allow;
    uint32_t label_bound, tomb_count;
    shoal__blob tomb_block; /* the last committed tombstone bitmap */
    int has_tomb_link, tomb_dirty;
} shoal__segment;

struct shoal_collection {
    shoal__mem mem;
    shoal_allocator allocator;
    shoal_collection_params params; /* small and large complete: dim, metric, simd */
    char errmsg[256];
    shoal_index *buffer;
    shoal__segment *segs;
    uint32_t nsegs, segs_cap;
    uint64_t next_seq; /* applied */
    uint64_t log_seq;  /* encoded: log records are numbered from here */
    int busy;
    int readonly;      /* a snapshot: reads only */

    /* The committed (or opened) version and its blocks. */
    shoal__blob root;
    int has_root;
    uint32_t node_fanout; /* SHOAL__NODE_FANOUT; tests lower it */
    /* The blocks of segments by digest, for give (manifest.c). */
    uint32_t *block_map; /* pairs (segment, block), or UINT32_MAX */
    uint32_t block_map_cap;
    int block_map_stale;
};

/* Whether segment s's index holds all its records (a view, or lazy with
 * every list attached). */
int shoal__segment_complete(const shoal__segment *s);

int shoal__coll_fail(shoal_collection *c, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* collection.c */
/* A new empty collection from checked parameters. */
int shoal__coll_create(const shoal_collection_params *p, const shoal_allocator *allocator,
                       shoal_collection **out);
void shoal__segment_release(shoal_collection *c, shoal__segment *s);
/* Makes segment s (whose bytes are all in) a view; sets its bitmaps. */
int shoal__segment_view(shoal_collection *c, shoal__segment *s);
/* Sizes and zeroes s's tombstone bitmaps for its index. */
int shoal__segment_bitmaps(shoal_collection *c, shoal__segment *s);
/* Seq and time ranges, record count from s's (complete) index. */
void shoal__segment_ranges(shoal__segment *s);
/* Whether every segment is complete (writes need it). */
int shoal__coll_whole(shoal_collection *c, const char *what);
/* Applies an upsert / delete / clear (log.c parses, collection.c changes). */
int shoal__coll_upsert(shoal_collection *c, const shoal_records *r, uint32_t *written);
int shoal__coll_delete(shoal_collection *c, uint32_t n, const char *ids, const uint32_t *offsets,
                       uint32_t *deleted);
int shoal__coll_clear(shoal_collection *c);
int shoal__coll_params_check(const shoal_collection_params *in, shoal_collection_params *out,
                             char *msg, size_t msg_size);

/* manifest.c */
/* The blocks of a new segment: cut, hashed, its node built. */
int shoal__segment_blocks_make(shoal_collection *c, shoal__segment *s);
void shoal__blob_free(shoal_collection *c, shoal__blob *b);

#endif
