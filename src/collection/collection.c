/*
 * collection.c -- a growing buffer over immutable segments.
 *
 * The model.  Every write gets the next number of one global sequence
 * (next_seq), and the newest version of an id is the live one.  New
 * versions always go to the buffer, a mutable index (HNSW or flat); the
 * segments never change once written, so a write that replaces or deletes
 * a record living in a segment marks it as a tombstone of that segment.
 * Each segment keeps two bitmaps over its labels -- tomb (replaced or
 * deleted) and allow (alive and not tombstoned) -- and every search of a
 * segment passes allow as its filter bitmap: to the kind, a tombstone is
 * just a record the filter drops.  An id is therefore live in at most one
 * place, and the search over the collection is the merge of the parts'
 * top-k lists by (distance, sequence number): for exact kinds, exactly
 * what one index over the live records returns.
 *
 * Writes are all or nothing.  The buffer's upsert is (index.c), and the
 * tombstone bitmaps are sized when a segment arrives, so marking cannot
 * fail after the buffer has changed.
 *
 * Flush and compaction.  A flush saves the buffer as a segment (or, from
 * large_from records, rebuilds it as a large one -- IVF-PQ by default) and
 * starts an empty buffer.  Compaction is size-tiered like an LSM tree:
 * segments fall in size classes (records / flush_records in powers of
 * merge_factor) per tier, and merge_factor segments of one class merge into
 * one, which drops their tombstoned records.  Age tiers add one rule: with
 * recent_ms set, records older than now - recent_ms belong to the large
 * tier; a tiered compaction moves small segments that hold only such
 * records, a full one moves every such record.  Merges are shoal__merge
 * with sequence numbers kept, so merged records keep their order.
 *
 * Segments live as views over bytes the collection owns (zero-copy when
 * uncompressed), so one copy of every segment is in memory -- the copy the
 * host stores block by block (manifest.c) -- or, opened lazily, as an IVF
 * head with the lists searches needed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "collection/collection.h"
#include "index/merge.h"
#include "index/persist.h"

int shoal__coll_fail(shoal_collection *c, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    shoal__vmsg(c->errmsg, sizeof c->errmsg, code, fmt, ap);
    va_end(ap);
    return code;
}

/* -------------------------------------------------------------- params */

void shoal_collection_params_init(shoal_collection_params *params) {
    memset(params, 0, sizeof *params);
    params->small.kind = SHOAL_KIND_HNSW;
    params->large.kind = SHOAL_KIND_IVF;
    params->large.quantizer = SHOAL_QUANTIZER_PQ;
}

#define DEFAULT_LARGE_FROM 100000u
#define DEFAULT_FLUSH_RECORDS 10000u
#define DEFAULT_FLUSH_BYTES (256ull << 20)
#define DEFAULT_MERGE_FACTOR 8u
/* Large segments of fewer records are built with the small parameters:
 * IVF needs records to train its lists and codebooks on. */
#define LARGE_MIN_RECORDS 10000u

/* Checks and completes params into *out (defaults in, dim and metric
 * copied to large); validates both index parameter sets by creating an
 * index of each. */
int shoal__coll_params_check(const shoal_collection_params *in, shoal_collection_params *out,
                             char *msg, size_t msg_size) {
    *out = *in;
    out->errmsg = NULL;
    out->errmsg_size = 0;
    shoal_params *sm = &out->small, *lg = &out->large;
    if (sm->kind != SHOAL_KIND_HNSW && sm->kind != SHOAL_KIND_FLAT)
        return shoal__msg(msg, msg_size, SHOAL_EPARAM,
                          "small kind = %s; the buffer and small segments are hnsw or flat",
                          shoal_kind_word(sm->kind) ? shoal_kind_word(sm->kind) : "?");
    lg->dim = sm->dim;
    lg->metric = sm->metric;
    lg->simd = sm->simd;
    lg->allocator = sm->allocator;
    if (!out->large_from) out->large_from = DEFAULT_LARGE_FROM;
    if (!out->flush_records) out->flush_records = DEFAULT_FLUSH_RECORDS;
    if (!out->flush_bytes) out->flush_bytes = DEFAULT_FLUSH_BYTES;
    if (!out->merge_factor) out->merge_factor = DEFAULT_MERGE_FACTOR;
    if (out->merge_factor < 2 || out->merge_factor > 64)
        return shoal__msg(msg, msg_size, SHOAL_EPARAM, "merge_factor = %u; it must be 2..64",
                          out->merge_factor);
    if (out->recent_ms < 0)
        return shoal__msg(msg, msg_size, SHOAL_EPARAM, "recent_ms = %lld; it must be >= 0",
                          (long long)out->recent_ms);
    if (out->zstd_level < 0 || out->zstd_level > 19)
        return shoal__msg(msg, msg_size, SHOAL_EPARAM, "zstd_level = %d; it must be 0..19",
                          out->zstd_level);
    for (int which = 0; which < 2; which++) {
        shoal_params p = which ? *lg : *sm;
        char detail[200] = "";
        p.errmsg = detail;
        p.errmsg_size = sizeof detail;
        shoal_index *probe;
        int rc = shoal_index_new(&p, &probe);
        shoal_index_free(probe);
        if (rc)
            return shoal__msg(msg, msg_size, rc, "%s: %s", which ? "large" : "small",
                              detail[0] ? detail : shoal_strerror(rc));
    }
    sm->errmsg = lg->errmsg = NULL;
    sm->errmsg_size = lg->errmsg_size = 0;
    return SHOAL_OK;
}

static int new_buffer(shoal_collection *c) {
    shoal_params p = c->params.small;
    p.allocator = &c->allocator;
    shoal_index *b;
    int rc = shoal_index_new(&p, &b);
    if (rc) return shoal__coll_fail(c, rc, "out of memory for the buffer");
    shoal_index_free(c->buffer);
    c->buffer = b;
    return SHOAL_OK;
}

static void *default_alloc(void *ctx, size_t size) {
    (void)ctx;
    return malloc(size);
}
static void default_free(void *ctx, void *p) {
    (void)ctx;
    free(p);
}

int shoal__coll_create(const shoal_collection_params *p, const shoal_allocator *allocator,
                       shoal_collection **out) {
    shoal_allocator a = {default_alloc, default_free, NULL};
    if (allocator) a = *allocator;
    shoal__mem mem;
    shoal__mem_init(&mem, &a);
    shoal_collection *c = shoal__calloc(&mem, 1, sizeof *c);
    if (!c) return SHOAL_ENOMEM;
    c->mem = mem;
    c->allocator = a;
    c->params = *p;
    c->params.small.allocator = c->params.large.allocator = NULL;
    c->node_fanout = SHOAL__NODE_FANOUT;
    if (new_buffer(c)) {
        shoal_collection_free(c);
        return SHOAL_ENOMEM;
    }
    *out = c;
    return SHOAL_OK;
}

int shoal_collection_new(const shoal_collection_params *params, shoal_collection **out) {
    if (!out) return SHOAL_EPARAM;
    *out = NULL;
    if (!params) return SHOAL_EPARAM;
    char *msg = params->errmsg;
    size_t msg_size = params->errmsg_size;
    if (msg && msg_size) msg[0] = '\0';
    shoal_collection_params p;
    int rc = shoal__coll_params_check(params, &p, msg, msg_size);
    if (rc) return rc;
    rc = shoal__coll_create(&p, params->small.allocator, out);
    if (rc) shoal__msg(msg, msg_size, rc, "out of memory for the collection");
    return rc;
}

void shoal__segment_release(shoal_collection *c, shoal__segment *s) {
    shoal_index_free(s->index);
    shoal__free(&c->mem, s->blocks);
    shoal__blob_free(c, &s->node);
    for (uint32_t i = 0; s->parts && i < s->nparts; i++) shoal__blob_free(c, &s->parts[i]);
    shoal__free(&c->mem, s->parts);
    if (s->bytes_owned) shoal__free(&c->mem, s->bytes);
    shoal__free(&c->mem, s->head);
    for (uint32_t i = 0; s->units && i < s->nunits; i++) shoal__free(&c->mem, s->units[i]);
    shoal__free(&c->mem, s->units);
    shoal__free(&c->mem, s->unit_left);
    shoal__free(&c->mem, s->tomb);
    shoal__free(&c->mem, s->allow);
    shoal__blob_free(c, &s->tomb_block);
    memset(s, 0, sizeof *s);
}

void shoal_collection_free(shoal_collection *c) {
    if (!c) return;
    for (uint32_t i = 0; i < c->nsegs; i++) shoal__segment_release(c, &c->segs[i]);
    shoal__free(&c->mem, c->segs);
    shoal_index_free(c->buffer);
    shoal__blob_free(c, &c->root);
    shoal__free(&c->mem, c->block_map);
    shoal__mem mem = c->mem;
    shoal__free(&mem, c);
}

const char *shoal_collection_errmsg(const shoal_collection *c) { return c ? c->errmsg : ""; }
uint32_t shoal_collection_dim(const shoal_collection *c) { return c->params.small.dim; }
shoal_metric shoal_collection_metric(const shoal_collection *c) { return c->params.small.metric; }
void shoal_collection_free_bytes(shoal_collection *c, void *bytes) { shoal__free(&c->mem, bytes); }

uint32_t shoal_collection_size(const shoal_collection *c) {
    uint64_t n = shoal_index_size(c->buffer);
    for (uint32_t i = 0; i < c->nsegs; i++) n += c->segs[i].records - c->segs[i].tomb_count;
    return (uint32_t)n;
}

/* ------------------------------------------------------------ segments */

static int bit(const uint8_t *bits, uint32_t i) { return bits[i >> 3] >> (i & 7) & 1; }
static void bit_set(uint8_t *bits, uint32_t i) { bits[i >> 3] |= (uint8_t)(1u << (i & 7)); }
static void bit_clear(uint8_t *bits, uint32_t i) { bits[i >> 3] &= (uint8_t)~(1u << (i & 7)); }

int shoal__segment_bitmaps(shoal_collection *c, shoal__segment *s) {
    uint32_t bound = shoal_index_label_bound(s->index);
    size_t bytes = ((size_t)bound + 7) / 8;
    uint8_t *tomb = shoal__calloc(&c->mem, bytes ? bytes : 1, 1);
    uint8_t *allow = shoal__calloc(&c->mem, bytes ? bytes : 1, 1);
    if (!tomb || !allow) {
        shoal__free(&c->mem, tomb);
        shoal__free(&c->mem, allow);
        return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for tombstones");
    }
    for (uint32_t l = 0; l < bound; l++)
        if (shoal__is_alive(s->index, l)) bit_set(allow, l);
    shoal__free(&c->mem, s->tomb);
    shoal__free(&c->mem, s->allow);
    s->tomb = tomb;
    s->allow = allow;
    s->label_bound = bound;
    s->tomb_count = 0;
    shoal_stats st;
    shoal_index_stats(s->index, &st);
    s->nlist = st.nlist;
    return SHOAL_OK;
}

void shoal__segment_ranges(shoal__segment *s) {
    const shoal_index *x = s->index;
    s->records = x->live;
    s->seq_min = UINT64_MAX;
    s->seq_max = 0;
    s->time_min = s->time_max = SHOAL_TIME_NONE;
    for (uint32_t l = 0; l < x->label_bound; l++) {
        if (!shoal__is_alive(x, l)) continue;
        if (x->seqs[l] < s->seq_min) s->seq_min = x->seqs[l];
        if (x->seqs[l] > s->seq_max) s->seq_max = x->seqs[l];
        int64_t t = x->times[l];
        if (t == SHOAL_TIME_NONE) continue;
        if (s->time_min == SHOAL_TIME_NONE || t < s->time_min) s->time_min = t;
        if (s->time_max == SHOAL_TIME_NONE || t > s->time_max) s->time_max = t;
    }
    if (!s->records) s->seq_min = 0;
}

int shoal__segment_view(shoal_collection *c, shoal__segment *s) {
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    lp.simd = c->params.small.simd;
    lp.allocator = &c->allocator;
    char msg[256] = "";
    lp.errmsg = msg;
    lp.errmsg_size = sizeof msg;
    shoal_index *x;
    int rc = shoal_index_view(s->bytes, (size_t)s->size, &lp, &x);
    if (rc) return shoal__coll_fail(c, rc, "segment: %s", msg);
    shoal_index_free(s->index);
    s->index = x;
    s->mode = SHOAL__MODE_WHOLE;
    if (s->bytes_owned) { /* the view keeps its bytes from now on */
        shoal__index_adopt(x, &c->mem, s->bytes);
        s->bytes_owned = 0;
    }
    return SHOAL_OK;
}

int shoal__segment_complete(const shoal__segment *s) {
    return s->index && shoal_index_lists_missing(s->index) == 0;
}

int shoal__coll_whole(shoal_collection *c, const char *what) {
    for (uint32_t i = 0; i < c->nsegs; i++)
        if (!shoal__segment_complete(&c->segs[i]))
            return shoal__coll_fail(c, SHOAL_ESTATE,
                                    "%s needs every segment whole: segment %u is not fetched "
                                    "yet (give the blocks shoal_collection_wants(ALL) names)",
                                    what, i);
    return SHOAL_OK;
}

/* Takes ownership of bytes (allocated through c->mem) as a new last segment. */
static int add_segment(shoal_collection *c, uint8_t *bytes, size_t size, int tier) {
    if (c->nsegs == c->segs_cap &&
        shoal__grow(&c->mem, (void **)&c->segs, &c->segs_cap, c->nsegs + 1, sizeof *c->segs)) {
        shoal__free(&c->mem, bytes);
        return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for a segment");
    }
    shoal__segment *s = &c->segs[c->nsegs];
    memset(s, 0, sizeof *s);
    s->bytes = bytes;
    s->bytes_owned = 1;
    s->size = size;
    s->tier = tier;
    int rc = shoal__segment_view(c, s);
    if (!rc) rc = shoal__segment_bitmaps(c, s);
    if (!rc) rc = shoal__segment_blocks_make(c, s);
    if (rc) {
        shoal__segment_release(c, s);
        return rc;
    }
    s->kind = shoal_index_kind(s->index);
    shoal__segment_ranges(s);
    c->nsegs++;
    c->block_map_stale = 1;
    return SHOAL_OK;
}

/* Saves index as a segment owned by c. */
static int save_into(shoal_collection *c, shoal_index *index, uint8_t **out, size_t *size) {
    shoal_save_params sp;
    shoal_save_params_init(&sp);
    sp.zstd_level = c->params.zstd_level;
    uint8_t *bytes;
    int rc = shoal_index_save(index, &sp, &bytes, size);
    if (rc) return shoal__coll_fail(c, rc, "saving a segment: %s", shoal_index_errmsg(index));
    *out = shoal__alloc(&c->mem, *size ? *size : 1);
    if (*out) memcpy(*out, bytes, *size);
    shoal_index_free_bytes(index, bytes);
    return *out ? SHOAL_OK : shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for a segment");
}

/* ---------------------------------------------------------------- writes */

/* Tombstones the versions of ids living in segments. */
static uint32_t tombstone(shoal_collection *c, uint32_t n, const char *ids, const uint32_t *off) {
    uint32_t count = 0;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t si = 0; si < c->nsegs; si++) {
            shoal__segment *s = &c->segs[si];
            int label = shoal_index_label_of(s->index, ids + off[i], off[i + 1] - off[i]);
            if (label < 0 || !bit(s->allow, (uint32_t)label)) continue;
            bit_clear(s->allow, (uint32_t)label);
            bit_set(s->tomb, (uint32_t)label);
            s->tomb_count++;
            s->tomb_dirty = 1;
            count++;
        }
    return count;
}

int shoal__coll_upsert(shoal_collection *c, const shoal_records *r, uint32_t *written) {
    int n = shoal_index_upsert(c->buffer, r);
    if (n < 0) return shoal__coll_fail(c, n, "%s", shoal_index_errmsg(c->buffer));
    tombstone(c, r->n, r->id_bytes, r->id_offsets);
    *written = (uint32_t)n;
    return SHOAL_OK;
}

int shoal__coll_delete(shoal_collection *c, uint32_t n, const char *ids, const uint32_t *offsets,
                       uint32_t *deleted) {
    int d = shoal_index_delete(c->buffer, n, ids, offsets);
    if (d < 0) return shoal__coll_fail(c, d, "%s", shoal_index_errmsg(c->buffer));
    *deleted = (uint32_t)d + tombstone(c, n, ids, offsets);
    return SHOAL_OK;
}

int shoal__coll_clear(shoal_collection *c) {
    int rc = new_buffer(c);
    if (rc) return rc;
    for (uint32_t i = 0; i < c->nsegs; i++) shoal__segment_release(c, &c->segs[i]);
    c->nsegs = 0;
    c->block_map_stale = 1;
    return SHOAL_OK;
}

/* ---------------------------------------------------------------- search */

typedef struct part_filter {
    shoal_hit_filter_fn fn;
    void *ctx;
    uint32_t part;
} part_filter;

static int part_filter_call(void *ctx, uint32_t label) {
    part_filter *pf = ctx;
    shoal_hit hit = {pf->part, label};
    return pf->fn(pf->ctx, hit);
}

static shoal_index *part_index(const shoal_collection *c, uint32_t part) {
    if (part == 0) return c->buffer;
    return part <= c->nsegs ? c->segs[part - 1].index : NULL;
}

/* Whether hit is a live record: alive in its part and not tombstoned. */
static int hit_live(const shoal_collection *c, shoal_hit hit) {
    const shoal_index *x = part_index(c, hit.part);
    /* (A lazy segment has the records of its attached lists only.) */
    if (!x || !shoal__is_alive(x, hit.label) || !x->ids[hit.label]) return 0;
    return hit.part == 0 || bit(c->segs[hit.part - 1].allow, hit.label);
}

typedef struct merged_hit {
    float distance;
    uint64_t seq;
    shoal_hit hit;
} merged_hit;

static int merged_cmp(const void *pa, const void *pb) {
    const merged_hit *a = pa, *b = pb;
    if (a->distance != b->distance) return a->distance < b->distance ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int check_busy(shoal_collection *c, const char *what) {
    if (!c->busy) return SHOAL_OK;
    return shoal__coll_fail(c, SHOAL_ESTATE,
                            "%s called while another call on this collection runs (from one of "
                            "its callbacks)", what);
}

int shoal_collection_search(shoal_collection *c, const float *query, uint32_t dim, uint32_t k,
                            const shoal_search_params *params, shoal_hit_filter_fn fn, void *ctx,
                            shoal_hit *hits, float *distances) {
    int rc;
    c->errmsg[0] = '\0';
    if ((rc = check_busy(c, "search"))) return rc;
    if (params && (params->filter || params->filter_bitmap))
        return shoal__coll_fail(c, SHOAL_EPARAM,
                                "a collection search filters with `where` and its own callback; "
                                "label filters do not span segments");
    if (!hits || !distances) return shoal__coll_fail(c, SHOAL_EPARAM, "result arrays are NULL");
    if (k == 0 || k > SHOAL_K_MAX)
        return shoal__coll_fail(c, SHOAL_EPARAM, "k = %u; it must be 1..%u", k, SHOAL_K_MAX);
    uint32_t parts = c->nsegs + 1;
    merged_hit *all = shoal__alloc(&c->mem, (size_t)parts * k * sizeof *all);
    uint32_t *labels = shoal__alloc(&c->mem, (size_t)k * sizeof *labels);
    float *dist = shoal__alloc(&c->mem, (size_t)k * sizeof *dist);
    uint32_t count = 0;
    if (!all || !labels || !dist) {
        rc = shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for %u results of %u parts", k, parts);
        goto done;
    }
    c->busy++;
    for (uint32_t part = 0; part < parts; part++) {
        shoal_index *x = part_index(c, part);
        shoal_search_params sp;
        if (params) sp = *params;
        else shoal_search_params_init(&sp);
        part_filter pf = {fn, ctx, part};
        if (fn) {
            sp.filter = part_filter_call;
            sp.filter_ctx = &pf;
        }
        if (part > 0) {
            shoal__segment *s = &c->segs[part - 1];
            if (!x) {
                rc = shoal__coll_fail(c, SHOAL_ESTATE, "segment %u is not fetched yet", part - 1);
                break;
            }
            if (s->records == s->tomb_count) continue;
            if (s->tomb_count) {
                sp.filter_bitmap = s->allow;
                sp.filter_bitmap_bits = s->label_bound;
            }
            /* Segments differ in nlist: nprobe applies up to each one's. */
            if (sp.nprobe > s->nlist) sp.nprobe = s->nlist;
        }
        /* (The buffer is searched even when empty: it checks the query.) */
        int n = shoal_index_search(x, query, dim, k, &sp, labels, dist);
        if (n < 0) {
            rc = part ? shoal__coll_fail(c, n, "segment %u: %s", part - 1, shoal_index_errmsg(x))
                      : shoal__coll_fail(c, n, "%s", shoal_index_errmsg(x));
            break;
        }
        for (int i = 0; i < n; i++) {
            merged_hit *m = &all[count++];
            m->distance = dist[i];
            m->hit.part = part;
            m->hit.label = labels[i];
            shoal_index_record_info(x, labels[i], NULL, &m->seq);
        }
    }
    c->busy--;
    if (rc) goto done;
    /* Merge: sequence numbers are unique, so the order is total. */
    qsort(all, count, sizeof *all, merged_cmp);
    /* An id lives in one part (older versions are tombstones); should a
     * hostile manifest hold one twice, the first (closest) copy is kept. */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < count && kept < k; i++) {
        const char *id;
        int len = shoal_index_label_id(part_index(c, all[i].hit.part), all[i].hit.label, &id);
        int dup = 0;
        for (uint32_t j = 0; j < kept && !dup; j++) {
            const char *other;
            int olen = shoal_index_label_id(part_index(c, hits[j].part), hits[j].label, &other);
            dup = hits[j].part != all[i].hit.part && olen == len && !memcmp(id, other, (size_t)len);
        }
        if (dup) continue;
        hits[kept] = all[i].hit;
        distances[kept++] = all[i].distance;
    }
    rc = (int)kept;
done:
    shoal__free(&c->mem, all);
    shoal__free(&c->mem, labels);
    shoal__free(&c->mem, dist);
    return rc;
}

/* ----------------------------------------------------------------- reads */

int shoal_collection_find(shoal_collection *c, const char *id, uint32_t id_len, shoal_hit *hit) {
    int rc = shoal__coll_whole(c, "find");
    if (rc) return rc;
    int label = shoal_index_label_of(c->buffer, id, id_len);
    if (label >= 0) {
        hit->part = 0;
        hit->label = (uint32_t)label;
        return SHOAL_OK;
    }
    for (uint32_t si = c->nsegs; si-- > 0;) {
        label = shoal_index_label_of(c->segs[si].index, id, id_len);
        if (label >= 0 && bit(c->segs[si].allow, (uint32_t)label)) {
            hit->part = si + 1;
            hit->label = (uint32_t)label;
            return SHOAL_OK;
        }
    }
    return SHOAL_ENOTFOUND;
}

int shoal_collection_next(const shoal_collection *c, shoal_hit *hit) {
    for (uint32_t part = hit->part; part <= c->nsegs; part++) {
        const shoal_index *x = part_index(c, part);
        if (part > 0 && !shoal__segment_complete(&c->segs[part - 1])) return SHOAL_ESTATE;
        uint32_t bound = shoal_index_label_bound(x);
        for (uint32_t l = part == hit->part ? hit->label : 0; l < bound; l++) {
            shoal_hit h = {part, l};
            if (hit_live(c, h)) {
                *hit = h;
                return 1;
            }
        }
    }
    return 0;
}

int shoal_collection_hit_id(const shoal_collection *c, shoal_hit hit, const char **id) {
    if (!hit_live(c, hit)) return SHOAL_ENOTFOUND;
    return shoal_index_label_id(part_index(c, hit.part), hit.label, id);
}

int shoal_collection_hit_vector(shoal_collection *c, shoal_hit hit, float *out) {
    if (!hit_live(c, hit)) return SHOAL_ENOTFOUND;
    shoal_index *x = part_index(c, hit.part);
    memcpy(out, x->ops->vector(x, hit.label), x->params.dim * sizeof *out);
    return SHOAL_OK;
}

int shoal_collection_hit_info(const shoal_collection *c, shoal_hit hit, int64_t *time,
                              uint64_t *seq) {
    if (!hit_live(c, hit)) return SHOAL_ENOTFOUND;
    return shoal_index_record_info(part_index(c, hit.part), hit.label, time, seq);
}

int shoal_collection_hits_json(shoal_collection *c, uint32_t n, const shoal_hit *hits, char **out,
                               size_t *size) {
    *out = NULL;
    *size = 0;
    shoal__cbor_out json;
    shoal__cbor_out_init(&json, &c->mem, 0);
    shoal__cbor_raw(&json, "[", 1);
    for (uint32_t i = 0; i < n; i++) {
        if (i) shoal__cbor_raw(&json, ",", 1);
        const uint8_t *m = NULL;
        int len = hit_live(c, hits[i]) ? shoal_index_metadata(part_index(c, hits[i].part),
                                                               hits[i].label, &m)
                                       : 0;
        if (len > 0) shoal__cbor_to_json(m, &json);
        else shoal__cbor_raw(&json, "null", 4);
    }
    shoal__cbor_raw(&json, "]", 1);
    if (json.error) {
        shoal__cbor_out_free(&json);
        return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory writing metadata as JSON");
    }
    *out = (char *)json.buf;
    *size = json.len;
    return SHOAL_OK;
}

void shoal_collection_stats_get(const shoal_collection *c, shoal_collection_stats *out) {
    memset(out, 0, sizeof *out);
    out->size = shoal_collection_size(c);
    out->buffered = shoal_index_size(c->buffer);
    out->segments = c->nsegs;
    out->next_seq = c->next_seq;
    out->memory_bytes = c->mem.bytes + shoal_index_memory_bytes(c->buffer);
    /* (A segment shared with a snapshot counts in both.) */
    for (uint32_t i = 0; i < c->nsegs; i++) {
        const shoal__segment *s = &c->segs[i];
        out->tombstones += s->tomb_count;
        out->lazy += !shoal__segment_complete(s);
        out->segment_bytes += s->size;
        if (s->index) out->memory_bytes += shoal_index_memory_bytes(s->index);
    }
}

/* ----------------------------------------------------------------- flush */

/* The buffer's size as its records' contents -- vectors, ids, metadata --
 * not its memory, which counts pointers (twice as wide natively as in
 * wasm32): flushes must fall at the same records in every build. */
static uint64_t buffer_bytes(const shoal_collection *c) {
    const shoal_index *b = c->buffer;
    return (uint64_t)b->live * b->params.dim * sizeof(float) + shoal__ids_bytes(b) + b->meta_bytes;
}

int shoal_collection_flush_due(const shoal_collection *c) {
    return shoal_index_size(c->buffer) >= c->params.flush_records ||
           buffer_bytes(c) >= c->params.flush_bytes;
}

/* The parameters a segment of n records in tier is built with. */
static shoal_params build_params(const shoal_collection *c, int tier, uint64_t n) {
    int large = tier == SHOAL__TIER_LARGE && n >= LARGE_MIN_RECORDS;
    return large ? c->params.large : c->params.small;
}

/* Merges the records of sources (drop[s]: labels left out) into one new
 * segment of tier. */
static int merge_into(shoal_collection *c, uint32_t n, const uint32_t *which,
                      uint8_t *const *drop, int tier) {
    const shoal_index **src = shoal__calloc(&c->mem, n ? n : 1, sizeof *src);
    uint8_t **skip = shoal__calloc(&c->mem, n ? n : 1, sizeof *skip);
    int rc = src && skip ? SHOAL_OK : SHOAL_ENOMEM;
    uint64_t total = 0;
    /* What the merge leaves out of source i: its tombstones and drop[i]. */
    for (uint32_t i = 0; i < n && !rc; i++) {
        const shoal__segment *s = &c->segs[which[i]];
        size_t bytes = ((size_t)s->label_bound + 7) / 8;
        src[i] = s->index;
        if (!(skip[i] = shoal__alloc(&c->mem, bytes ? bytes : 1))) {
            rc = SHOAL_ENOMEM;
            break;
        }
        for (size_t b = 0; b < bytes; b++) skip[i][b] = (uint8_t)(s->tomb[b] | (drop[i] ? drop[i][b] : 0));
        for (uint32_t l = 0; l < s->label_bound; l++)
            total += shoal__is_alive(s->index, l) && !bit(skip[i], l);
    }
    shoal_index *merged = NULL;
    char msg[256] = "";
    if (!rc) {
        if (total >= c->params.large_from) tier = SHOAL__TIER_LARGE;
        shoal_params p = build_params(c, tier, total);
        p.allocator = &c->allocator;
        p.errmsg = msg;
        p.errmsg_size = sizeof msg;
        rc = shoal__merge(src, n, (const uint8_t *const *)skip, 1, &p, &merged);
    }
    for (uint32_t i = 0; skip && i < n; i++) shoal__free(&c->mem, skip[i]);
    shoal__free(&c->mem, skip);
    shoal__free(&c->mem, src);
    if (rc)
        return shoal__coll_fail(c, rc, "merging %u segments: %s", n,
                                msg[0] ? msg : shoal_strerror(rc));
    uint8_t *bytes;
    size_t size;
    rc = save_into(c, merged, &bytes, &size);
    shoal_index_free(merged);
    if (!rc) rc = add_segment(c, bytes, size, tier);
    return rc;
}

int shoal_collection_flush(shoal_collection *c) {
    c->errmsg[0] = '\0';
    if (c->readonly) return shoal__coll_fail(c, SHOAL_ESTATE, "a snapshot is read-only");
    int rc = check_busy(c, "flush");
    if (rc) return rc;
    uint32_t n = shoal_index_size(c->buffer);
    if (n == 0) return 0;
    int large = n >= c->params.large_from;
    shoal_index *built = c->buffer;
    if (large && n >= LARGE_MIN_RECORDS) {
        shoal_params p = c->params.large;
        p.allocator = &c->allocator;
        char msg[256] = "";
        p.errmsg = msg;
        p.errmsg_size = sizeof msg;
        const shoal_index *src[1] = {c->buffer};
        if ((rc = shoal__merge(src, 1, NULL, 1, &p, &built)))
            return shoal__coll_fail(c, rc, "building a large segment: %s", msg);
    }
    uint8_t *bytes;
    size_t size;
    rc = save_into(c, built, &bytes, &size);
    if (built != c->buffer) shoal_index_free(built);
    if (rc) return rc;
    /* Room for the segment first, so that a failure keeps the buffer. */
    if ((rc = add_segment(c, bytes, size, large ? SHOAL__TIER_LARGE : SHOAL__TIER_SMALL)))
        return rc;
    if ((rc = new_buffer(c))) {
        /* The records are in the new segment and in the buffer: drop the
         * segment again rather than keep two live copies. */
        shoal__segment_release(c, &c->segs[--c->nsegs]);
        return rc;
    }
    return 1;
}

/* ------------------------------------------------------------ compaction */

static uint32_t size_class(const shoal_collection *c, const shoal__segment *s) {
    uint64_t n = (s->records - s->tomb_count) / (c->params.flush_records ? c->params.flush_records : 1);
    uint32_t k = 0;
    while (n >= c->params.merge_factor) {
        n /= c->params.merge_factor;
        k++;
    }
    return k;
}

/* Replaces segments which[0..n) (ascending) by the outputs just appended
 * after old_count: removes the sources, keeping the others' order. */
static void drop_sources(shoal_collection *c, const uint32_t *which, uint32_t n) {
    uint32_t w = 0, j = 0;
    for (uint32_t i = 0; i < c->nsegs; i++) {
        if (j < n && which[j] == i) {
            shoal__segment_release(c, &c->segs[i]);
            j++;
            continue;
        }
        c->segs[w++] = c->segs[i];
    }
    c->nsegs = w;
    c->block_map_stale = 1;
}

/* A bitmap over s's labels of records older than cutoff (aged = 1) or not
 * (aged = 0); records without a time are never aged. */
static uint8_t *age_bitmap(shoal_collection *c, const shoal__segment *s, int64_t cutoff, int aged) {
    uint8_t *bits = shoal__calloc(&c->mem, ((size_t)s->label_bound + 7) / 8 + 1, 1);
    if (!bits) return NULL;
    for (uint32_t l = 0; l < s->label_bound; l++) {
        if (!shoal__is_alive(s->index, l)) continue;
        int64_t t = s->index->times[l];
        int old = t != SHOAL_TIME_NONE && t < cutoff;
        if (old == aged) bit_set(bits, l);
    }
    return bits;
}

/* One merge of the segments in which (all tier `from`), into `to`; with
 * age split, only aged records (to large) / only fresh ones (to small). */
static int merge_group(shoal_collection *c, uint32_t *which, uint32_t n, int to, int split,
                       int64_t cutoff) {
    uint8_t **drop = shoal__calloc(&c->mem, n ? n : 1, sizeof *drop);
    if (!drop) return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory compacting");
    int rc = SHOAL_OK;
    for (uint32_t i = 0; i < n && split && !rc; i++) {
        /* Drop what goes elsewhere: fresh records from the large output,
         * aged ones from the small one. */
        drop[i] = age_bitmap(c, &c->segs[which[i]], cutoff, to == SHOAL__TIER_SMALL);
        if (!drop[i]) rc = shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory compacting");
    }
    if (!rc) rc = merge_into(c, n, which, drop, to);
    for (uint32_t i = 0; i < n; i++) shoal__free(&c->mem, drop[i]);
    shoal__free(&c->mem, drop);
    return rc;
}

static int compact_tiered(shoal_collection *c, int64_t cutoff, int ages, uint32_t *which) {
    int written = 0, rc;
    for (;;) {
        uint32_t n = 0;
        /* Small segments whose live records all have times older than the
         * cutoff move to the large tier. */
        for (uint32_t i = 0; ages && i < c->nsegs; i++) {
            const shoal__segment *s = &c->segs[i];
            if (s->tier != SHOAL__TIER_SMALL || s->records == s->tomb_count) continue;
            int all_aged = 1;
            for (uint32_t l = 0; l < s->label_bound && all_aged; l++)
                if (bit(s->allow, l))
                    all_aged = s->index->times[l] != SHOAL_TIME_NONE && s->index->times[l] < cutoff;
            if (all_aged) which[n++] = i;
        }
        int to = SHOAL__TIER_LARGE;
        if (n == 0) {
            /* The lowest size class holding merge_factor segments of a tier. */
            uint32_t best = UINT32_MAX;
            int best_tier = 0;
            for (int tier = 0; tier < 2; tier++)
                for (uint32_t i = 0; i < c->nsegs; i++) {
                    if (c->segs[i].tier != tier) continue;
                    uint32_t cls = size_class(c, &c->segs[i]), same = 0;
                    for (uint32_t j = 0; j < c->nsegs; j++)
                        same += c->segs[j].tier == tier && size_class(c, &c->segs[j]) == cls;
                    if (same >= c->params.merge_factor && cls < best) {
                        best = cls;
                        best_tier = tier;
                    }
                }
            if (best == UINT32_MAX) break;
            for (uint32_t i = 0; i < c->nsegs && n < c->params.merge_factor; i++)
                if (c->segs[i].tier == best_tier && size_class(c, &c->segs[i]) == best) which[n++] = i;
            to = best_tier;
        }
        if ((rc = merge_group(c, which, n, to, 0, cutoff))) return rc;
        drop_sources(c, which, n);
        written++;
    }
    return written;
}

static int compact_full(shoal_collection *c, int64_t cutoff, int ages, uint32_t *which) {
    /* Small tier: fresh records stay small (one segment), aged ones join the
     * large tier.  Large tier: one segment of its records and the aged ones.
     * A tier already in one segment with nothing to drop or move is kept. */
    uint32_t small_n = 0, large_n = 0, small_tombs = 0, large_tombs = 0, aged = 0;
    for (uint32_t i = 0; i < c->nsegs; i++) {
        const shoal__segment *s = &c->segs[i];
        if (s->tier == SHOAL__TIER_SMALL) {
            small_n++;
            small_tombs += s->tomb_count;
            for (uint32_t l = 0; ages && l < s->label_bound; l++)
                aged += bit(s->allow, l) && s->index->times[l] != SHOAL_TIME_NONE &&
                        s->index->times[l] < cutoff;
        } else {
            large_n++;
            large_tombs += s->tomb_count;
        }
    }
    int rewrite_large = large_n > 1 || large_tombs || aged;
    int rewrite_small = small_n > 1 || small_tombs || aged;
    int written = 0, rc;
    uint32_t old = c->nsegs, n = 0;
    if (rewrite_large) {
        /* Large: every large segment whole, plus the aged small records. */
        uint8_t **drop = shoal__calloc(&c->mem, old ? old : 1, sizeof *drop);
        if (!drop) return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory compacting");
        rc = SHOAL_OK;
        for (uint32_t i = 0; i < old && !rc; i++) {
            if (c->segs[i].tier == SHOAL__TIER_SMALL && !aged) continue;
            if (c->segs[i].tier == SHOAL__TIER_SMALL) {
                drop[n] = age_bitmap(c, &c->segs[i], cutoff, 0);
                if (!drop[n]) rc = shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory compacting");
            }
            which[n++] = i;
        }
        if (!rc) rc = merge_into(c, n, which, drop, SHOAL__TIER_LARGE);
        for (uint32_t i = 0; i < n; i++) shoal__free(&c->mem, drop[i]);
        shoal__free(&c->mem, drop);
        if (rc) return rc;
        written++;
    }
    if (rewrite_small && small_n) {
        uint32_t m = 0;
        for (uint32_t i = 0; i < old; i++)
            if (c->segs[i].tier == SHOAL__TIER_SMALL) which[n + m++] = i;
        if ((rc = merge_group(c, which + n, m, SHOAL__TIER_SMALL, ages, cutoff))) return rc;
        written++;
    }
    /* Drop the sources: large ones (if rewritten), small ones (if rewritten). */
    n = 0;
    for (uint32_t i = 0; i < old; i++)
        if ((c->segs[i].tier == SHOAL__TIER_LARGE && rewrite_large) ||
            (c->segs[i].tier == SHOAL__TIER_SMALL && rewrite_small))
            which[n++] = i;
    drop_sources(c, which, n);
    /* A merge whose records all went elsewhere leaves an empty segment. */
    for (uint32_t i = 0; i < c->nsegs;) {
        if (c->segs[i].records == 0) {
            uint32_t one = i;
            drop_sources(c, &one, 1);
        } else {
            i++;
        }
    }
    return written;
}

int shoal_collection_compact(shoal_collection *c, int full, int64_t now_ms) {
    c->errmsg[0] = '\0';
    if (c->readonly) return shoal__coll_fail(c, SHOAL_ESTATE, "a snapshot is read-only");
    int rc = check_busy(c, "compact");
    if (!rc) rc = shoal__coll_whole(c, "compact");
    if (rc) return rc;
    int ages = c->params.recent_ms > 0;
    int64_t cutoff = ages ? now_ms - c->params.recent_ms : INT64_MIN;
    uint32_t *which = shoal__alloc(&c->mem, ((size_t)c->nsegs * 2 + 1) * sizeof *which);
    if (!which) return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory compacting");
    rc = full ? compact_full(c, cutoff, ages, which) : compact_tiered(c, cutoff, ages, which);
    shoal__free(&c->mem, which);
    return rc;
}

/* -------------------------------------------------------------- snapshot */

int shoal_collection_snapshot(shoal_collection *c, shoal_collection **out) {
    if (!out) return SHOAL_EPARAM;
    *out = NULL;
    c->errmsg[0] = '\0';
    shoal_collection *snap;
    int rc = shoal__coll_create(&c->params, &c->allocator, &snap);
    if (rc) return shoal__coll_fail(c, rc, "out of memory for a snapshot");
    snap->readonly = 1;
    snap->next_seq = snap->log_seq = c->next_seq;
    if (c->nsegs && shoal__grow(&snap->mem, (void **)&snap->segs, &snap->segs_cap, c->nsegs,
                                sizeof *snap->segs)) {
        shoal_collection_free(snap);
        return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for a snapshot");
    }
    for (uint32_t i = 0; i < c->nsegs; i++) {
        const shoal__segment *s = &c->segs[i];
        shoal__segment *d = &snap->segs[snap->nsegs];
        memset(d, 0, sizeof *d);
        memcpy(d->link, s->link, sizeof d->link);
        d->kind = s->kind;
        d->tier = s->tier;
        d->records = s->records;
        d->seq_min = s->seq_min;
        d->seq_max = s->seq_max;
        d->time_min = s->time_min;
        d->time_max = s->time_max;
        d->size = s->size;
        d->mode = s->mode;
        d->nlist = s->nlist;
        d->label_bound = s->label_bound;
        d->tomb_count = s->tomb_count;
        if (s->index && s->allow) {
            size_t bytes = ((size_t)s->label_bound + 7) / 8;
            d->tomb = shoal__alloc(&snap->mem, bytes ? bytes : 1);
            d->allow = shoal__alloc(&snap->mem, bytes ? bytes : 1);
            if (!d->tomb || !d->allow) {
                shoal__free(&snap->mem, d->tomb);
                shoal__free(&snap->mem, d->allow);
                shoal_collection_free(snap);
                return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for a snapshot");
            }
            memcpy(d->tomb, s->tomb, bytes);
            memcpy(d->allow, s->allow, bytes);
            d->index = shoal__index_retain(s->index);
        }
        snap->nsegs++;
    }
    *out = snap;
    return SHOAL_OK;
}
