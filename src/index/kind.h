/*
 * kind.h -- the index handle and the interface each index kind implements.
 *
 * index.c is the common layer every kind sits behind; flat.c, hnsw.c and
 * ivf.c are the kinds; persist.c turns a handle into a segment and back.
 */
#ifndef SHOAL_KIND_H
#define SHOAL_KIND_H

#include "filter/filter.h"
#include "internal.h"

#define SHOAL_NO_LABEL UINT32_MAX
/* The largest rerank depth (shoal_params.rerank, shoal_search_params.rerank). */
#define SHOAL__RERANK_MAX (1u << 20)
/* Rows a rerank fetches ahead of the one it scores (ivf.c, hnsw.c): the
 * rows are scattered and cold, so memory latency, not arithmetic, is the
 * cost (HNSW SQ8 + copies in wasm: +7-10% QPS at ef 24-48 over none). */
#define SHOAL__RERANK_AHEAD 4u

/* ----------------------------------------------------------------- id map */

/* Open addressing with linear probing over labels; the id bytes live in the
 * index's per-label id table, so the map itself is just uint32 slots.
 * Deletion shifts entries back instead of leaving tombstones. */
typedef struct shoal__idmap {
    uint32_t *slots; /* SHOAL_NO_LABEL = empty */
    uint32_t cap;    /* power of two, or 0 */
    uint32_t count;
} shoal__idmap;

/* ------------------------------------------------------------------ index */

struct shoal__seg_writer;
struct shoal__seg_reader;

/* What one index kind implements.  The common layer (index.c) validates
 * input, owns ids, labels, sequence numbers and the liveness bitmap; a kind
 * only stores vectors by label and searches them. */
typedef struct shoal__kind_ops {
    const char *name;
    /* Validates the kind's parameters (filling defaults into index->params)
     * and allocates index->kind_state. */
    int (*create)(shoal_index *index);
    /* Makes room for labels < cap. */
    int (*reserve)(shoal_index *index, uint32_t cap);
    /*
     * Mutations are transactions.  index.c calls begin, then insert and
     * remove any number of times, then commit -- or abort, which must put
     * the kind back exactly as it was at begin (graph, lists, scratch
     * aside).  insert stores a validated (and, under cosine, normalized)
     * vector at a label that holds no record; remove takes a record out.
     * Either may fail with SHOAL_ENOMEM only (HNSW, whose links and
     * journal allocate); flat and IVF cannot fail once begun and
     * prepared.  begin, commit and abort may be NULL (nothing to do).
     * insert may defer part of its work (HNSW's batched inserts) until
     * insert_done, which add calls after its last insert and before any
     * remove; NULL: nothing is ever deferred.
     */
    int (*begin)(shoal_index *index);
    int (*insert)(shoal_index *index, uint32_t label, const float *vector);
    int (*insert_done)(shoal_index *index);
    int (*remove)(shoal_index *index, uint32_t label);
    void (*commit)(shoal_index *index);
    /* inserted: the labels insert succeeded on since begin, in order. */
    void (*abort)(shoal_index *index, const uint32_t *inserted, uint32_t n);
    const float *(*vector)(const shoal_index *index, uint32_t label);
    int (*search)(shoal_index *index, const float *query, shoal__topk *topk,
                  const shoal_search_params *params);
    int (*check)(shoal_index *index);        /* NULL: nothing kind-specific */
    void (*stats)(const shoal_index *index, shoal_stats *out); /* NULL: defaults */
    void (*destroy)(shoal_index *index);
    /* Kinds that must be trained (IVF); all three NULL for the others.
     * train: trains (or retrains) on n >= 1 validated vectors, not yet in
     * stored form (shoal__stored_form); all-or-nothing. */
    int (*train)(shoal_index *index, uint32_t n, const float *vectors);
    /* Called by add after begin, once everything else is reserved and
     * before the first insert, with the batch's validated raw vectors (the
     * ones that will be inserted, in order): trains on them if the kind is
     * untrained (SHOAL_ESTATE if there are too few) and reserves what
     * inserting them will need, so the inserts cannot fail.  Sets the
     * detail message on failure; all-or-nothing. */
    int (*prepare_add)(shoal_index *index, uint32_t n, const float *vectors);
    int (*trained)(const shoal_index *index);
    /* Segments (segment.c, docs/FORMAT.md).  save_config fills the kind's
     * ten words of the config section; save writes the kind's sections
     * after the common ones (shoal__seg_begin / _end); load reads them back
     * into a freshly created index whose common layer (ids, labels, seqs,
     * liveness, free list) is already loaded, validating every value before
     * trusting it, and leaves the kind's per-label capacity >= label_bound.
     * On failure load sets the detail message; the caller frees the index,
     * so destroy must cope with a half-loaded state. */
    void (*save_config)(const shoal_index *index, uint32_t kind_params[10]);
    int (*save)(const shoal_index *index, struct shoal__seg_writer *w);
    int (*load)(shoal_index *index, struct shoal__seg_reader *r,
                const uint32_t kind_params[10]);
    /* The kind saves each list's records next to it (IVF): persist.c then
     * writes a labels section instead of the ids, metadata and times, and
     * the kind calls shoal__list_records_save / _load per list. */
    int records_per_list;
    /* Lazy indexes (shoal_index_open_head; IVF only, else NULL).  With
     * index->lazy set, load stops before the first list and leaves every
     * non-empty list missing.  attach reads list l's sections from r (a
     * window over the list's bytes) -- all or nothing: on failure the list
     * is missing again.  wanted writes the missing lists a search with
     * these parameters would probe (q in stored form), up to cap, and
     * returns how many there are. */
    int (*attach)(shoal_index *index, struct shoal__seg_reader *r, uint32_t list);
    int (*wanted)(shoal_index *index, const float *q, const shoal_search_params *params,
                  uint32_t *out, uint32_t cap);
    /* External rerank rows (index->rows_external; IVF only, else NULL).
     * candidates: phase 1 of a search (q in stored form) -- the candidates
     * to rerank, in the order a search would rerank them, up to cap, with
     * where each one's row lies in the segment; returns how many there are.
     * reranks: whether label is a record phase 2 may score (a live record
     * of an attached list, a node of the graph); phase 2 itself, exact
     * distances from the rows the host read, is index.c's. */
    int (*candidates)(shoal_index *index, const float *q, uint32_t k,
                      const shoal_search_params *params, shoal_candidate *out, uint32_t cap);
    int (*reranks)(const shoal_index *index, uint32_t label);
    int (*missing)(const shoal_index *index, uint32_t list); /* 1 = not attached, not empty */
} shoal__kind_ops;

struct shoal_index {
    shoal__mem mem;
    const shoal__kind_ops *ops;
    const shoal__kernels *kernels;
    shoal_params params;
    shoal__rng rng;
    char errmsg[256];

    /* Records by label.  Labels of deleted records go on a free list and are
     * reused, so storage stays dense. */
    uint32_t label_cap;   /* capacity of the per-label arrays */
    uint32_t label_bound; /* one past the largest label ever handed out */
    uint32_t live;        /* live records */
    char **ids;           /* per label: length-prefixed bytes, or NULL */
    uint64_t *seqs;       /* per label: insertion sequence number */
    char **meta;          /* per label: u32 length + canonical DAG-CBOR map, or NULL */
    int64_t *times;       /* per label: ms since the epoch, or SHOAL_TIME_NONE */
    size_t meta_bytes;    /* encoded metadata of the live records */
    uint8_t *alive;       /* bitmap */
    uint32_t *free_labels;
    uint32_t free_count, free_cap;
    uint64_t next_seq;
    shoal__idmap idmap;

    shoal_progress_fn progress;
    void *progress_ctx;
    uint32_t threads; /* shoal_index_set_threads; 0 = 1 */
    /* A call is running (a callback is inside it): other calls on the
     * handle fail with SHOAL_ESTATE instead of changing what it holds. */
    int busy;

    void *kind_state; /* owned by ops */

    /* A read-only view of a segment (shoal_index_view): mutations fail with
     * SHOAL_ESTATE.  ids_borrowed: ids[] point into the segment's bytes. */
    int view;
    int ids_borrowed;
    int meta_borrowed;    /* meta[] point into the segment's bytes */
    /* The vectors of the next upsert are in stored form already (a merge
     * copies them from its sources): cosine must not normalize them again,
     * or their last bits would drift with every compaction. */
    int input_stored;
    /* Loaded with shoal_load_params.rerank_external: an IVF index's float32
     * rerank rows stay in the segment (the host reads them per search);
     * read-only like a view. */
    int rows_external;
    /* Opened from a segment's head (shoal_index_open_head): lists arrive
     * one by one; NULL otherwise. */
    struct shoal__lazy *lazy; /* index/persist.h */
    /* Sharing (collection snapshots): shoal_index_free releases one of refs
     * + 1 owners; the last frees.  owned_bytes: the segment bytes a view
     * reads, handed to the index so that they live exactly as long. */
    uint32_t refs;
    void *owned_bytes;
};

static inline shoal_index *shoal__index_retain(shoal_index *index) {
    if (index) index->refs++;
    return index;
}

/* Gives a view the bytes it reads (allocated through from, which has the
 * view's allocator): freed with the view. */
static inline void shoal__index_adopt(shoal_index *index, shoal__mem *from, void *bytes) {
    shoal__mem_move(from, &index->mem, bytes);
    index->owned_bytes = bytes;
}

static inline int shoal__is_alive(const shoal_index *index, uint32_t label) {
    return label < index->label_bound && (index->alive[label >> 3] >> (label & 7)) & 1;
}

/* Copies v to out[dim] in stored form: normalized under cosine, as is
 * otherwise. */
void shoal__stored_form(const shoal_index *index, const float *v, float *out);

/* Distance between two stored-form vectors (normalized under cosine). */
static inline float shoal__distance(const shoal_index *index, const float *a, const float *b) {
    size_t dim = index->params.dim;
    switch (index->params.metric) {
    case SHOAL_METRIC_IP:
        return -index->kernels->dot_f32(a, b, dim);
    case SHOAL_METRIC_COSINE:
        return 1.0f - index->kernels->dot_f32(a, b, dim);
    default:
        return index->kernels->l2sq_f32(a, b, dim);
    }
}

/* The filter test shared by every kind: the bitmap, the metadata filter,
 * then the callback (cheapest first). */
static inline int shoal__allowed(const shoal_index *index, const shoal_search_params *params,
                                 uint32_t label) {
    if (!params) return 1;
    if (params->filter_bitmap &&
        (label >= params->filter_bitmap_bits ||
         !((params->filter_bitmap[label >> 3] >> (label & 7)) & 1)))
        return 0;
    if (params->where) {
        const char *m = index->meta ? index->meta[label] : NULL;
        if (!shoal__filter_match(params->where, m ? (const uint8_t *)m + 4 : NULL)) return 0;
    }
    if (params->filter && !params->filter(params->filter_ctx, label)) return 0;
    return 1;
}

/* The number of live records the filters keep: counted for a bitmap alone,
 * else estimated from SHOAL__FILTER_SAMPLE evenly spaced labels.  Kinds use
 * it to switch to an exact scan of the matches (or to probe more lists)
 * when a filter is selective. */
#define SHOAL__FILTER_SAMPLE 256u
uint32_t shoal__estimate_matches(const shoal_index *index, const shoal_search_params *params);

/* Whether a search has any filter. */
static inline int shoal__filtered(const shoal_search_params *params) {
    return params && (params->filter || params->filter_bitmap || params->where);
}

/* Validates a batch as shoal_index_upsert does (without writing it) and
 * calls each with every record's canonical metadata (NULL, 0: none);
 * 0, each's error, or a validation error with the index's message. */
int shoal__records_check(shoal_index *index, const shoal_records *r,
                         int (*each)(void *ctx, uint32_t i, const uint8_t *meta, uint32_t len),
                         void *ctx);

/* Records a detail message and returns code, for `return shoal__fail(...)`. */
int shoal__fail(shoal_index *index, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

extern const shoal__kind_ops shoal__flat_ops;
extern const shoal__kind_ops shoal__hnsw_ops;
extern const shoal__kind_ops shoal__ivf_ops;
/* The HNSW entry point's label (SHOAL_NO_LABEL when empty); for tests. */
uint32_t shoal__hnsw_entry_point(const shoal_index *index);
/* The links of a label on a level (count, then that many labels), or NULL
 * if it has no such level; for tests that damage a graph on purpose (on a
 * view, which keeps no in-links to fall out of step). */
uint32_t *shoal__hnsw_links(shoal_index *index, uint32_t label, uint32_t level);

#endif
