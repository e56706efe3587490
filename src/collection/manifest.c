/*
 * manifest.c -- a collection as a DAG of blocks (docs/FORMAT.md,
 * "Collections"), and a collection back from one, block by block.
 *
 * The DAG.  The root is the manifest, a DAG-CBOR map: format version,
 * configuration, next sequence number, live record count, one entry per
 * segment and a link to the previous manifest.  A segment of one block is
 * linked directly (raw CID of its bytes); a larger one through a segment
 * node listing its blocks -- cut by shoal_segment_blocks, so that each IVF
 * list starts a block of its own -- with their sizes and how many make the
 * head; past SHOAL__NODE_FANOUT blocks the node links part nodes instead.
 * Tombstones are a raw block per segment: a bitmap over its labels.  Every
 * block stays under SHOAL_BLOCK_MAX, so any IPFS node can hold and serve
 * each one and pinning the root pins the collection (and its history).
 * Everything is canonical DAG-CBOR written here, so the same collection
 * has the same root CID in every build.
 *
 * Reading is a state machine driven by the host, because the core does
 * no I/O and wasm cannot wait: shoal_collection_wants lists the blocks the
 * collection needs next (nodes first, then tombstones, then segment
 * blocks -- all of them, or for a lazy IVF segment its head, then the lists
 * searches probe), and shoal_collection_give takes blocks in any order,
 * hashing each against the CIDs it wants.  A manifest is hostile input:
 * its schema is checked key by key, every count against the bytes that
 * back it, and every segment against its entry when it arrives.
 */
#include <stdio.h>

#include "collection/collection.h"

#define MANIFEST_VERSION 1

void shoal__blob_free(shoal_collection *c, shoal__blob *b) {
    shoal__free(&c->mem, b->bytes);
    b->bytes = NULL;
    b->size = 0;
}

static int blob_set(shoal_collection *c, shoal__blob *b, shoal__cbor_out *out, uint32_t codec) {
    if (out->error) {
        int rc = out->error;
        shoal__cbor_out_free(out);
        return shoal__coll_fail(c, rc, "out of memory writing the manifest");
    }
    shoal__blob_free(c, b);
    b->bytes = out->buf;
    b->size = out->len;
    shoal_cid_bytes(b->bytes, b->size, codec, b->cid);
    if (b->size > SHOAL_BLOCK_MAX)
        return shoal__coll_fail(c, SHOAL_ETOOBIG, "a manifest block of %zu bytes", b->size);
    return SHOAL_OK;
}

/* ----------------------------------------------------------- sorted maps */

/* Builds a DAG-CBOR map whose keys are given in any order: values are
 * encoded into one buffer, then emitted with their keys sorted. */
typedef struct kv {
    const char *key;
    size_t klen, at, len;
} kv;

typedef struct mapb {
    kv items[32];
    uint32_t n;
    shoal__cbor_out vals;
} mapb;

static void mb_init(mapb *m, shoal__mem *mem) {
    m->n = 0;
    shoal__cbor_out_init(&m->vals, mem, 0);
}

static shoal__cbor_out *mb_key(mapb *m, const char *key) {
    kv *e = &m->items[m->n++];
    e->key = key;
    e->klen = strlen(key);
    e->at = m->vals.len;
    return &m->vals;
}

static void mb_done(mapb *m) { m->items[m->n - 1].len = m->vals.len - m->items[m->n - 1].at; }

static void mb_uint(mapb *m, const char *key, uint64_t v) {
    shoal__cbor_uint(mb_key(m, key), v);
    mb_done(m);
}
static void mb_int(mapb *m, const char *key, int64_t v) {
    shoal__cbor_int(mb_key(m, key), v);
    mb_done(m);
}
static void mb_text(mapb *m, const char *key, const char *v) {
    shoal__cbor_cstr(mb_key(m, key), v);
    mb_done(m);
}
static void mb_link(mapb *m, const char *key, const uint8_t *cid) {
    shoal__cbor_out *o = mb_key(m, key);
    if (cid) shoal__cbor_link(o, cid, SHOAL_CID_BYTES);
    else shoal__cbor_simple(o, SHOAL__CBOR_NULL);
    mb_done(m);
}
static void mb_raw(mapb *m, const char *key, const shoal__cbor_out *v) {
    shoal__cbor_out *o = mb_key(m, key);
    if (v->error) o->error = v->error;
    else shoal__cbor_raw(o, v->buf, v->len);
    mb_done(m);
}

static void mb_emit(mapb *m, shoal__cbor_out *out) {
    for (uint32_t i = 1; i < m->n; i++) /* insertion sort: a dozen keys */
        for (uint32_t j = i; j > 0 && shoal__cbor_key_cmp(m->items[j - 1].key, m->items[j - 1].klen,
                                                          m->items[j].key, m->items[j].klen) > 0;
             j--) {
            kv t = m->items[j];
            m->items[j] = m->items[j - 1];
            m->items[j - 1] = t;
        }
    if (m->vals.error) out->error = m->vals.error;
    shoal__cbor_head(out, SHOAL__CBOR_MAP, m->n);
    for (uint32_t i = 0; i < m->n; i++) {
        shoal__cbor_text(out, m->items[i].key, m->items[i].klen);
        if (!m->vals.error) shoal__cbor_raw(out, m->vals.buf + m->items[i].at, m->items[i].len);
    }
    shoal__cbor_out_free(&m->vals);
}

/* ------------------------------------------------------------ parameters */

/* The index parameters a manifest keeps: every SHOAL_PARAM_LIST row but
 * dim and metric (the collection's, at the top) and simd (the host's). */
static int kept_param(const char *js) {
    return strcmp(js, "dim") && strcmp(js, "metric") && strcmp(js, "simd");
}

/* Parameters added after manifests were first written.  Each is written only
 * when it is not 0 (its default), so a manifest from before it existed reads
 * as it always did and re-encodes to its own bytes (its CID stays); present
 * with the value 0 it is refused, as a second encoding of the same config. */
static int later_param(const char *js) { return !strcmp(js, "pqTables") || !strcmp(js, "buildBatch"); }

#define WORD_METRIC(v) shoal_metric_word(v)
#define WORD_KIND(v) shoal_kind_word(v)
#define WORD_QUANTIZER(v) shoal_quantizer_word(v)
#define WORD_SIMD(v) shoal_simd_word(v)
#define PUT_U32(field, en) shoal__cbor_uint(o, p->field);
#define PUT_U64(field, en) shoal__cbor_uint(o, p->field);
#define PUT_ENUM(field, en) shoal__cbor_cstr(o, WORD_##en(p->field));
#define PUT_PARAM(field, type, js, cli, applies, en, doc)      \
    if (kept_param(js) && !(later_param(js) && p->field == 0)) { \
        shoal__cbor_out *o = mb_key(&m, js);              \
        PUT_##type(field, en) mb_done(&m);                \
    }

static void params_map(shoal__mem *mem, const shoal_params *p, shoal__cbor_out *out) {
    mapb m;
    mb_init(&m, mem);
    SHOAL_PARAM_LIST(PUT_PARAM)
    mb_emit(&m, out);
}

#define PUT_POLICY_U32(field) mb_uint(&m, js, c->params.field);
#define PUT_POLICY_U64(field) mb_uint(&m, js, c->params.field);
#define PUT_POLICY_I64(field) mb_int(&m, js, c->params.field);
#define PUT_POLICY_I32(field) mb_int(&m, js, c->params.field);
#define PUT_POLICY(field, type, jsname, cli, doc) \
    {                                             \
        const char *js = jsname;                  \
        PUT_POLICY_##type(field)                  \
    }

static void config_map(shoal_collection *c, shoal__cbor_out *out) {
    mapb m;
    mb_init(&m, &c->mem);
    SHOAL_COLLECTION_PARAM_LIST(PUT_POLICY)
    shoal__cbor_out sub;
    shoal__cbor_out_init(&sub, &c->mem, 0);
    params_map(&c->mem, &c->params.small, &sub);
    mb_raw(&m, "small", &sub);
    shoal__cbor_out_free(&sub);
    shoal__cbor_out_init(&sub, &c->mem, 0);
    params_map(&c->mem, &c->params.large, &sub);
    mb_raw(&m, "large", &sub);
    shoal__cbor_out_free(&sub);
    mb_emit(&m, out);
}

/* ---------------------------------------------------------------- blocks */

static void link_array(shoal__cbor_out *o, const shoal__block *b, uint32_t n) {
    shoal__cbor_head(o, SHOAL__CBOR_ARRAY, n);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t cid[SHOAL_CID_BYTES] = {0x01, SHOAL_CODEC_RAW, 0x12, 0x20};
        memcpy(cid + 4, b[i].digest, 32);
        shoal__cbor_link(o, cid, SHOAL_CID_BYTES);
    }
}

static void size_array(shoal__cbor_out *o, const shoal__block *b, uint32_t n) {
    shoal__cbor_head(o, SHOAL__CBOR_ARRAY, n);
    for (uint32_t i = 0; i < n; i++) shoal__cbor_uint(o, b[i].size);
}

/* {"blocks": [...], "sizes": [...]} for blocks [from, from + n), as a map
 * builder's entries. */
static void block_entries(shoal_collection *c, mapb *m, const shoal__block *b, uint32_t n) {
    shoal__cbor_out sub;
    shoal__cbor_out_init(&sub, &c->mem, 0);
    link_array(&sub, b, n);
    mb_raw(m, "blocks", &sub);
    sub.len = 0;
    size_array(&sub, b, n);
    mb_raw(m, "sizes", &sub);
    shoal__cbor_out_free(&sub);
}

int shoal__segment_blocks_make(shoal_collection *c, shoal__segment *s) {
    int n = shoal_segment_blocks(s->bytes, (size_t)s->size, NULL, 0);
    if (n <= 0) return shoal__coll_fail(c, n < 0 ? n : SHOAL_ECORRUPT, "cutting a segment into blocks");
    shoal_block *cut = shoal__alloc(&c->mem, (size_t)n * sizeof *cut);
    s->blocks = shoal__calloc(&c->mem, (size_t)n, sizeof *s->blocks);
    if (!cut || !s->blocks) {
        shoal__free(&c->mem, cut);
        return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for %d blocks", n);
    }
    shoal_segment_blocks(s->bytes, (size_t)s->size, cut, (uint32_t)n);
    s->nblocks = (uint32_t)n;
    s->head_blocks = 0;
    for (uint32_t i = 0; i < s->nblocks; i++) {
        shoal__block *b = &s->blocks[i];
        b->offset = cut[i].offset;
        b->size = cut[i].size;
        b->have = 1;
        shoal_sha256(s->bytes + b->offset, b->size, b->digest);
        if (cut[i].list == UINT32_MAX && s->head_blocks == i) s->head_blocks++;
    }
    shoal__free(&c->mem, cut);
    s->blocks_have = s->nblocks;
    if (s->nblocks == 1) { /* the segment is its own block */
        s->link[0] = 0x01;
        s->link[1] = SHOAL_CODEC_RAW;
        s->link[2] = 0x12;
        s->link[3] = 0x20;
        memcpy(s->link + 4, s->blocks[0].digest, 32);
        return SHOAL_OK;
    }
    /* The node: {"head", "bytes", "blocks", "sizes"} -- or "parts" instead
     * of blocks and sizes, each a node {"blocks", "sizes"} of at most
     * node_fanout blocks. */
    int rc = SHOAL_OK;
    mapb m;
    mb_init(&m, &c->mem);
    mb_uint(&m, "head", s->head_blocks);
    mb_uint(&m, "bytes", s->size);
    if (s->nblocks <= c->node_fanout) {
        block_entries(c, &m, s->blocks, s->nblocks);
    } else {
        s->nparts = (s->nblocks + c->node_fanout - 1) / c->node_fanout;
        s->parts = shoal__calloc(&c->mem, s->nparts, sizeof *s->parts);
        if (!s->parts) rc = shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for part nodes");
        shoal__cbor_out links;
        shoal__cbor_out_init(&links, &c->mem, 0);
        shoal__cbor_head(&links, SHOAL__CBOR_ARRAY, s->nparts);
        for (uint32_t p = 0; p < s->nparts && !rc; p++) {
            uint32_t from = p * c->node_fanout;
            uint32_t count = s->nblocks - from < c->node_fanout ? s->nblocks - from : c->node_fanout;
            mapb pm;
            mb_init(&pm, &c->mem);
            block_entries(c, &pm, s->blocks + from, count);
            shoal__cbor_out part;
            shoal__cbor_out_init(&part, &c->mem, 0);
            mb_emit(&pm, &part);
            if ((rc = blob_set(c, &s->parts[p], &part, SHOAL_CODEC_DAG_CBOR))) break;
            shoal__cbor_link(&links, s->parts[p].cid, SHOAL_CID_BYTES);
        }
        mb_raw(&m, "parts", &links);
        shoal__cbor_out_free(&links);
    }
    shoal__cbor_out node;
    shoal__cbor_out_init(&node, &c->mem, 0);
    mb_emit(&m, &node);
    if (rc) {
        shoal__cbor_out_free(&node);
        return rc;
    }
    if ((rc = blob_set(c, &s->node, &node, SHOAL_CODEC_DAG_CBOR))) return rc;
    memcpy(s->link, s->node.cid, SHOAL_CID_BYTES);
    return SHOAL_OK;
}

/* ------------------------------------------------------------- commit */

static const char *tier_word(int tier) { return tier == SHOAL__TIER_LARGE ? "large" : "small"; }

static void range(mapb *m, const char *key, int64_t lo, int64_t hi, int is_signed, int null) {
    shoal__cbor_out *o = mb_key(m, key);
    if (null) {
        shoal__cbor_simple(o, SHOAL__CBOR_NULL);
    } else {
        shoal__cbor_head(o, SHOAL__CBOR_ARRAY, 2);
        if (is_signed) {
            shoal__cbor_int(o, lo);
            shoal__cbor_int(o, hi);
        } else {
            shoal__cbor_uint(o, (uint64_t)lo);
            shoal__cbor_uint(o, (uint64_t)hi);
        }
    }
    mb_done(m);
}

static void segment_entry(shoal_collection *c, const shoal__segment *s, shoal__cbor_out *out) {
    mapb m;
    mb_init(&m, &c->mem);
    mb_text(&m, "kind", shoal_kind_word(s->kind));
    mb_text(&m, "tier", tier_word(s->tier));
    mb_uint(&m, "records", s->records);
    mb_uint(&m, "live", s->records - s->tomb_count);
    mb_uint(&m, "bytes", s->size);
    range(&m, "seqs", (int64_t)s->seq_min, (int64_t)s->seq_max, 0, 0);
    range(&m, "times", s->time_min, s->time_max, 1, s->time_min == SHOAL_TIME_NONE);
    mb_link(&m, "segment", s->link);
    mb_link(&m, "tombstones", s->tomb_count ? s->tomb_block.cid : NULL);
    mb_emit(&m, out);
}

int shoal_collection_commit(shoal_collection *c, int drop_history, uint8_t root[SHOAL_CID_BYTES]) {
    c->errmsg[0] = '\0';
    if (c->readonly) return shoal__coll_fail(c, SHOAL_ESTATE, "a snapshot is read-only");
    if (c->busy)
        return shoal__coll_fail(c, SHOAL_ESTATE, "commit called from a callback of a running call");
    if (shoal_index_size(c->buffer))
        return shoal__coll_fail(c, SHOAL_ESTATE,
                                "the buffer holds %u records: flush before committing (a version "
                                "is complete without the log)", shoal_index_size(c->buffer));
    int rc;
    /* Tombstone bitmaps that changed since they were last written. */
    for (uint32_t i = 0; i < c->nsegs; i++) {
        shoal__segment *s = &c->segs[i];
        if (!s->tomb_count || !s->tomb_dirty) continue;
        shoal__cbor_out t;
        shoal__cbor_out_init(&t, &c->mem, 0);
        shoal__cbor_raw(&t, s->tomb, ((size_t)s->label_bound + 7) / 8);
        if ((rc = blob_set(c, &s->tomb_block, &t, SHOAL_CODEC_RAW)))
            return shoal__coll_fail(c, rc, "segment %u: tombstones of %zu bytes", i, t.len);
        s->tomb_dirty = 0;
        s->has_tomb_link = 1;
    }
    mapb m;
    mb_init(&m, &c->mem);
    mb_uint(&m, "shoal", MANIFEST_VERSION);
    mb_uint(&m, "dim", c->params.small.dim);
    mb_text(&m, "metric", shoal_metric_word(c->params.small.metric));
    mb_uint(&m, "seq", c->next_seq);
    mb_uint(&m, "records", shoal_collection_size(c));
    mb_link(&m, "prev", c->has_root && !drop_history ? c->root.cid : NULL);
    shoal__cbor_out sub;
    shoal__cbor_out_init(&sub, &c->mem, 0);
    config_map(c, &sub);
    mb_raw(&m, "config", &sub);
    sub.len = 0;
    shoal__cbor_head(&sub, SHOAL__CBOR_ARRAY, c->nsegs);
    for (uint32_t i = 0; i < c->nsegs; i++) segment_entry(c, &c->segs[i], &sub);
    mb_raw(&m, "segments", &sub);
    shoal__cbor_out_free(&sub);
    shoal__cbor_out out;
    shoal__cbor_out_init(&out, &c->mem, 0);
    mb_emit(&m, &out);
    shoal__blob fresh = {{0}, NULL, 0};
    if ((rc = blob_set(c, &fresh, &out, SHOAL_CODEC_DAG_CBOR))) {
        shoal__blob_free(c, &fresh);
        return rc;
    }
    shoal__blob_free(c, &c->root);
    c->root = fresh;
    c->has_root = 1;
    if (root) memcpy(root, c->root.cid, SHOAL_CID_BYTES);
    uint32_t n = 0;
    shoal_block_ref ref;
    while (shoal_collection_block(c, n, &ref) == SHOAL_OK) n++;
    return (int)n;
}

/* Block i of the version: the manifest, then per segment its tombstones,
 * its node, its part nodes and its blocks. */
int shoal_collection_block(const shoal_collection *c, uint32_t i, shoal_block_ref *out) {
    memset(out, 0, sizeof *out);
    if (!c->has_root) return SHOAL_ENOTFOUND;
    if (i == 0) {
        memcpy(out->cid, c->root.cid, SHOAL_CID_BYTES);
        out->bytes = c->root.bytes;
        out->size = c->root.size;
        return SHOAL_OK;
    }
    i--;
    for (uint32_t si = 0; si < c->nsegs; si++) {
        const shoal__segment *s = &c->segs[si];
        if (s->tomb_count && s->has_tomb_link) {
            if (i == 0) {
                memcpy(out->cid, s->tomb_block.cid, SHOAL_CID_BYTES);
                out->bytes = s->tomb_block.bytes;
                out->size = s->tomb_block.size;
                return SHOAL_OK;
            }
            i--;
        }
        if (s->link[1] == SHOAL_CODEC_DAG_CBOR) {
            if (i == 0) {
                memcpy(out->cid, s->link, SHOAL_CID_BYTES);
                out->bytes = s->node.bytes;
                out->size = s->node.size;
                return SHOAL_OK;
            }
            i--;
            if (i < s->nparts) {
                memcpy(out->cid, s->parts[i].cid, SHOAL_CID_BYTES);
                out->bytes = s->parts[i].bytes;
                out->size = s->parts[i].size;
                return SHOAL_OK;
            }
            i -= s->nparts;
        }
        uint32_t nb = s->nblocks ? s->nblocks : (s->link[1] == SHOAL_CODEC_RAW);
        if (i < nb) {
            out->cid[0] = 0x01;
            out->cid[1] = SHOAL_CODEC_RAW;
            out->cid[2] = 0x12;
            out->cid[3] = 0x20;
            if (s->nblocks) {
                const shoal__block *b = &s->blocks[i];
                memcpy(out->cid + 4, b->digest, 32);
                out->size = b->size;
                if (s->bytes && b->have) out->bytes = s->bytes + b->offset;
            } else {
                memcpy(out->cid, s->link, SHOAL_CID_BYTES);
                out->size = (size_t)s->size;
            }
            return SHOAL_OK;
        }
        i -= nb;
    }
    return SHOAL_ENOTFOUND;
}

/* ------------------------------------------------------------------ open */

typedef struct reader {
    shoal_collection *c;
    const char *where;
} reader;

#define MFAIL(...) shoal__coll_fail(c, SHOAL_ECORRUPT, __VA_ARGS__)

/* Map value helpers on validated CBOR. */
static const uint8_t *map_get(const shoal__cbor_item *m, const char *key) {
    return shoal__cbor_get(m, key, strlen(key));
}

static int get_uint(const uint8_t *p, uint64_t *v) {
    if (!p) return -1;
    shoal__cbor_item it;
    shoal__cbor_item_at(p, &it);
    if (it.major != SHOAL__CBOR_UINT) return -1;
    *v = it.arg;
    return 0;
}

static int get_int(const uint8_t *p, int64_t *v) {
    if (!p) return -1;
    shoal__cbor_item it;
    shoal__cbor_item_at(p, &it);
    if (it.major == SHOAL__CBOR_UINT && it.arg <= INT64_MAX) *v = (int64_t)it.arg;
    else if (it.major == SHOAL__CBOR_NINT && it.arg <= INT64_MAX) *v = -1 - (int64_t)it.arg;
    else return -1;
    return 0;
}

static int get_text(const uint8_t *p, const char **s, size_t *len) {
    if (!p) return -1;
    shoal__cbor_item it;
    shoal__cbor_item_at(p, &it);
    if (it.major != SHOAL__CBOR_TEXT) return -1;
    *s = (const char *)it.data;
    *len = (size_t)it.arg;
    return 0;
}

static int is_null(const uint8_t *p) { return p && p[0] == (SHOAL__CBOR_SIMPLE << 5 | SHOAL__CBOR_NULL); }

/* A link to a CIDv1 sha2-256 of codec: 0 and the CID, or -1. */
static int get_link(const uint8_t *p, uint32_t codec, uint8_t cid[SHOAL_CID_BYTES]) {
    if (!p) return -1;
    shoal__cbor_item it;
    shoal__cbor_item_at(p, &it);
    if (it.major != SHOAL__CBOR_TAG) return -1;
    shoal__cbor_item b;
    shoal__cbor_item_at(it.data, &b);
    if (b.arg != SHOAL_CID_BYTES + 1) return -1;
    const uint8_t *q = b.data + 1;
    if (q[0] != 0x01 || q[2] != 0x12 || q[3] != 0x20) return -1;
    if (codec ? q[1] != codec : (q[1] != SHOAL_CODEC_RAW && q[1] != SHOAL_CODEC_DAG_CBOR))
        return -1;
    memcpy(cid, q, SHOAL_CID_BYTES);
    return 0;
}

/* The keys of map m must be among known (n of them): counts what it has. */
static int keys_known(const shoal__cbor_item *m, const char *const *known, uint32_t n,
                      const char **unknown) {
    const uint8_t *p = m->data;
    for (uint64_t i = 0; i < m->arg; i++) {
        shoal__cbor_item k;
        shoal__cbor_item_at(p, &k);
        int found = 0;
        for (uint32_t j = 0; j < n && !found; j++)
            found = strlen(known[j]) == k.arg && !memcmp(known[j], k.data, (size_t)k.arg);
        if (!found) {
            *unknown = (const char *)k.data;
            return (int)k.arg;
        }
        p = shoal__cbor_skip(k.end);
    }
    return -1;
}

#define PARSE_METRIC(t, l) shoal_metric_parse(t, l)
#define PARSE_KIND(t, l) shoal_kind_parse(t, l)
#define PARSE_QUANTIZER(t, l) shoal_quantizer_parse(t, l)
#define PARSE_SIMD(t, l) shoal_simd_parse(t, l)
#define GET_U32(field, en)                            \
    {                                                 \
        uint64_t v;                                   \
        if (get_uint(val, &v) || v > UINT32_MAX) bad = 1; \
        else p->field = (uint32_t)v;                  \
    }
#define GET_U64(field, en)          \
    {                               \
        uint64_t v;                 \
        if (get_uint(val, &v)) bad = 1; \
        else p->field = v;          \
    }
#define GET_ENUM(field, en)                                 \
    {                                                       \
        const char *t;                                      \
        size_t l;                                           \
        int v = get_text(val, &t, &l) ? -1 : PARSE_##en(t, l); \
        if (v < 0) bad = 1;                                 \
        else p->field = (int)v;                             \
    }
#define GET_PARAM(field, type, js, cli, applies, en, doc)                \
    if (kept_param(js)) {                                               \
        const uint8_t *val = field_of(m, js);                           \
        if (!val) {                                                     \
            if (!later_param(js)) missing = js;                         \
        } else {                                                        \
            GET_##type(field, en) if (!bad && later_param(js) && p->field == 0) bad = 1; \
            if (bad && !what) what = js;                                \
            count++;                                                    \
        }                                                               \
    }

static const uint8_t *field_of(const shoal__cbor_item *m, const char *key) { return map_get(m, key); }

static int parse_params(shoal_collection *c, const uint8_t *at, const char *name, shoal_params *p) {
    shoal__cbor_item mi;
    shoal__cbor_item *m = &mi;
    if (!at) return MFAIL("manifest: config.%s is missing", name);
    shoal__cbor_item_at(at, m);
    if (m->major != SHOAL__CBOR_MAP) return MFAIL("manifest: config.%s is not a map", name);
    const char *missing = NULL, *what = NULL;
    int bad = 0;
    uint64_t count = 0;
    SHOAL_PARAM_LIST(GET_PARAM)
    if (missing) return MFAIL("manifest: config.%s.%s is missing", name, missing);
    if (what) return MFAIL("manifest: config.%s.%s has a bad value", name, what);
    if (m->arg != count)
        return shoal__coll_fail(c, SHOAL_EVERSION,
                                "manifest: config.%s has keys this version does not know", name);
    return SHOAL_OK;
}

#define GET_POLICY_U32(field)                                              \
    { uint64_t v; if (get_uint(val, &v) || v > UINT32_MAX) bad = 1; else p->field = (uint32_t)v; }
#define GET_POLICY_U64(field) { uint64_t v; if (get_uint(val, &v)) bad = 1; else p->field = v; }
#define GET_POLICY_I64(field) { int64_t v; if (get_int(val, &v)) bad = 1; else p->field = v; }
#define GET_POLICY_I32(field)                                                        \
    { int64_t v; if (get_int(val, &v) || v < INT32_MIN || v > INT32_MAX) bad = 1; else p->field = (int)v; }
#define GET_POLICY(field, type, js, cli, doc)                          \
    {                                                                  \
        const uint8_t *val = map_get(&m, js);                            \
        if (!val) missing = js;                                        \
        else GET_POLICY_##type(field) if (bad && !what) what = js;     \
        count++;                                                       \
    }

static int parse_config(shoal_collection *c, const uint8_t *at, shoal_collection_params *p) {
    shoal__cbor_item m;
    if (!at) return MFAIL("manifest: config is missing");
    shoal__cbor_item_at(at, &m);
    if (m.major != SHOAL__CBOR_MAP) return MFAIL("manifest: config is not a map");
    const char *missing = NULL, *what = NULL;
    int bad = 0;
    uint64_t count = 2;
    SHOAL_COLLECTION_PARAM_LIST(GET_POLICY)
    if (missing) return MFAIL("manifest: config.%s is missing", missing);
    if (what) return MFAIL("manifest: config.%s has a bad value", what);
    if (m.arg != count)
        return shoal__coll_fail(c, SHOAL_EVERSION, "manifest: config has keys this version does not know");
    int rc = parse_params(c, map_get(&m, "small"), "small", &p->small);
    if (!rc) rc = parse_params(c, map_get(&m, "large"), "large", &p->large);
    return rc;
}

static int parse_range(const uint8_t *at, int is_signed, int64_t *lo, int64_t *hi) {
    shoal__cbor_item a;
    shoal__cbor_item_at(at, &a);
    if (a.major != SHOAL__CBOR_ARRAY || a.arg != 2) return -1;
    const uint8_t *second = shoal__cbor_skip(a.data);
    if (is_signed) return get_int(a.data, lo) || get_int(second, hi) || *lo > *hi ? -1 : 0;
    uint64_t l, h;
    if (get_uint(a.data, &l) || get_uint(second, &h) || l > h || h > INT64_MAX) return -1;
    *lo = (int64_t)l;
    *hi = (int64_t)h;
    return 0;
}

static int parse_segment(shoal_collection *c, uint32_t i, const uint8_t *at, uint64_t next_seq,
                         shoal__segment *s) {
    static const char *const keys[] = {"kind", "live", "seqs", "tier", "bytes", "times",
                                       "records", "segment", "tombstones"};
    shoal__cbor_item m;
    shoal__cbor_item_at(at, &m);
    if (m.major != SHOAL__CBOR_MAP) return MFAIL("manifest: segment %u is not a map", i);
    const char *unknown;
    int ul = keys_known(&m, keys, 9, &unknown);
    if (ul >= 0)
        return shoal__coll_fail(c, SHOAL_EVERSION, "manifest: segment %u has an unknown key \"%.*s\"",
                                i, ul > 40 ? 40 : ul, unknown);
    const char *t;
    size_t tl;
    uint64_t records, live, bytes;
    int64_t lo, hi;
    if (get_text(map_get(&m, "kind"), &t, &tl) || shoal_kind_parse(t, tl) < 0)
        return MFAIL("manifest: segment %u: bad kind", i);
    s->kind = (shoal_kind)shoal_kind_parse(t, tl);
    if (get_text(map_get(&m, "tier"), &t, &tl) ||
        !((tl == 5 && !memcmp(t, "small", 5)) || (tl == 5 && !memcmp(t, "large", 5))))
        return MFAIL("manifest: segment %u: bad tier", i);
    s->tier = t[0] == 'l' ? SHOAL__TIER_LARGE : SHOAL__TIER_SMALL;
    if (get_uint(map_get(&m, "records"), &records) || get_uint(map_get(&m, "live"), &live) ||
        records >= UINT32_MAX || live > records)
        return MFAIL("manifest: segment %u: bad record counts", i);
    if (get_uint(map_get(&m, "bytes"), &bytes) || bytes < 64 || bytes > ((uint64_t)1 << 42))
        return MFAIL("manifest: segment %u: bad size", i);
    if (!map_get(&m, "seqs") || parse_range(map_get(&m, "seqs"), 0, &lo, &hi) ||
        (records && (uint64_t)hi >= next_seq))
        return MFAIL("manifest: segment %u: bad sequence range", i);
    s->seq_min = (uint64_t)lo;
    s->seq_max = (uint64_t)hi;
    const uint8_t *times = map_get(&m, "times");
    if (is_null(times)) {
        s->time_min = s->time_max = SHOAL_TIME_NONE;
    } else if (!times || parse_range(times, 1, &lo, &hi) || lo == SHOAL_TIME_NONE) {
        return MFAIL("manifest: segment %u: bad time range", i);
    } else {
        s->time_min = lo;
        s->time_max = hi;
    }
    if (get_link(map_get(&m, "segment"), 0, s->link))
        return MFAIL("manifest: segment %u: bad segment link", i);
    const uint8_t *tomb = map_get(&m, "tombstones");
    if (is_null(tomb)) {
        if (live != records) return MFAIL("manifest: segment %u: tombstones missing", i);
    } else if (!tomb || get_link(tomb, SHOAL_CODEC_RAW, s->tomb_block.cid) || live == records) {
        return MFAIL("manifest: segment %u: bad tombstones link", i);
    } else {
        s->has_tomb_link = 1;
    }
    s->records = (uint32_t)records;
    s->tomb_count = (uint32_t)(records - live);
    s->size = bytes;
    if (s->link[1] == SHOAL_CODEC_RAW) { /* one block: the segment itself */
        if (bytes > SHOAL_BLOCK_MAX) return MFAIL("manifest: segment %u: a block over 1 MiB", i);
        s->blocks = shoal__calloc(&c->mem, 1, sizeof *s->blocks);
        if (!s->blocks) return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for a segment");
        memcpy(s->blocks[0].digest, s->link + 4, 32);
        s->blocks[0].size = (uint32_t)bytes;
        s->nblocks = 1;
        s->head_blocks = 1;
    }
    return SHOAL_OK;
}

int shoal_collection_open(const uint8_t *manifest, size_t size, const shoal_load_params *params,
                          shoal_collection **out) {
    char msg[256] = "";
    if (!out) return SHOAL_EPARAM;
    *out = NULL;
    if (!manifest) return SHOAL_EPARAM;
    shoal__cbor_limits lim = {8, 0, 1, 0, 1};
    if (size > SHOAL_BLOCK_MAX) {
        shoal__msg(msg, sizeof msg, SHOAL_ECORRUPT, "manifest: %zu bytes, over 1 MiB", size);
    } else if (shoal__cbor_check(manifest, size, &lim, msg, sizeof msg)) {
        /* (msg says where) */
    } else {
        msg[0] = '\0';
    }
    if (msg[0]) {
        if (params && params->errmsg && params->errmsg_size)
            snprintf(params->errmsg, params->errmsg_size, "manifest: %s", msg);
        return SHOAL_ECORRUPT;
    }
    /* A scratch collection to hold messages while the config is read. */
    shoal_collection_params p;
    shoal_collection_params_init(&p);
    shoal_collection scratch;
    memset(&scratch, 0, sizeof scratch);
    shoal_collection *c = &scratch;
    static const char *const keys[] = {"dim", "seq", "prev", "shoal", "config", "metric",
                                       "records", "segments"};
    shoal__cbor_item root, segs;
    shoal__cbor_item_at(manifest, &root);
    uint64_t version = 0, dim = 0, seq = 0, records = 0;
    const char *t = NULL, *unknown;
    size_t tl = 0;
    int rc = SHOAL_OK, ul;
    if (get_uint(map_get(&root, "shoal"), &version)) rc = MFAIL("manifest: not a Shoal manifest");
    else if (version != MANIFEST_VERSION)
        rc = shoal__coll_fail(c, SHOAL_EVERSION, "manifest: version %llu; this library reads %d",
                              (unsigned long long)version, MANIFEST_VERSION);
    else if ((ul = keys_known(&root, keys, 8, &unknown)) >= 0)
        rc = shoal__coll_fail(c, SHOAL_EVERSION, "manifest: unknown key \"%.*s\"", ul > 40 ? 40 : ul,
                              unknown);
    else if (get_uint(map_get(&root, "dim"), &dim) || dim == 0 || dim > SHOAL_DIM_MAX)
        rc = MFAIL("manifest: bad dim");
    else if (get_text(map_get(&root, "metric"), &t, &tl) || shoal_metric_parse(t, tl) < 0)
        rc = MFAIL("manifest: bad metric");
    else if (get_uint(map_get(&root, "seq"), &seq) || seq >= UINT64_MAX / 2 ||
             get_uint(map_get(&root, "records"), &records))
        rc = MFAIL("manifest: bad seq or records");
    else if (!is_null(map_get(&root, "prev")) &&
             get_link(map_get(&root, "prev"), SHOAL_CODEC_DAG_CBOR, (uint8_t[SHOAL_CID_BYTES]){0}))
        rc = MFAIL("manifest: bad prev link");
    if (!rc) rc = parse_config(c, map_get(&root, "config"), &p);
    /* A commit writes the values in use, never 0 for "the default": a 0
     * here would read as the default and write back as a different
     * manifest. */
    if (!rc && (!p.large_from || !p.flush_records || !p.flush_bytes || !p.merge_factor))
        rc = MFAIL("manifest: config: largeFrom, flushRecords, flushBytes and mergeFactor must be set");
    if (!rc) {
        p.small.dim = (uint32_t)dim;
        p.small.metric = (shoal_metric)shoal_metric_parse(t, tl);
        if (params) {
            p.small.simd = params->simd;
            p.small.allocator = params->allocator;
        }
        shoal_collection_params checked;
        int prc = shoal__coll_params_check(&p, &checked, c->errmsg, sizeof c->errmsg);
        if (prc == SHOAL_EPARAM) prc = SHOAL_ECORRUPT;
        if (prc == SHOAL_EUNSUPPORTED || prc == SHOAL_ENOMEM) rc = prc;
        else if (prc) {
            /* (The reason is in c->errmsg, which the message overwrites:
             * copy it first; Valgrind saw the overlapping vsnprintf.) */
            char why[sizeof c->errmsg];
            memcpy(why, c->errmsg, sizeof why);
            rc = shoal__coll_fail(c, prc, "manifest: config: %.200s", why);
        }
        else if ((rc = shoal__coll_create(&checked, params ? params->allocator : NULL, out)))
            shoal__coll_fail(c, rc, "out of memory for the collection");
    }
    if (rc) {
        if (params && params->errmsg && params->errmsg_size)
            snprintf(params->errmsg, params->errmsg_size, "%s", scratch.errmsg);
        return rc;
    }
    c = *out;
    c->next_seq = c->log_seq = seq;
    const uint8_t *sa = map_get(&root, "segments");
    shoal__cbor_item_at(sa ? sa : manifest, &segs);
    uint64_t live_total = 0;
    if (!sa || segs.major != SHOAL__CBOR_ARRAY) {
        rc = MFAIL("manifest: segments is not an array");
    } else if (segs.arg &&
               shoal__grow(&c->mem, (void **)&c->segs, &c->segs_cap, (uint32_t)segs.arg, sizeof *c->segs)) {
        rc = shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for %llu segments",
                              (unsigned long long)segs.arg);
    }
    const uint8_t *e = segs.data;
    for (uint64_t i = 0; !rc && i < segs.arg; i++) {
        shoal__segment *s = &c->segs[c->nsegs];
        memset(s, 0, sizeof *s);
        c->nsegs++;
        rc = parse_segment(c, (uint32_t)i, e, seq, s);
        live_total += s->records - s->tomb_count;
        e = shoal__cbor_skip(e);
    }
    if (!rc && live_total != records)
        rc = MFAIL("manifest: records = %llu, the segments hold %llu live",
                   (unsigned long long)records, (unsigned long long)live_total);
    if (!rc) {
        c->root.bytes = shoal__alloc(&c->mem, size);
        if (!c->root.bytes) rc = shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for the manifest");
    }
    if (rc) {
        if (params && params->errmsg && params->errmsg_size)
            snprintf(params->errmsg, params->errmsg_size, "%s", c->errmsg);
        shoal_collection_free(c);
        *out = NULL;
        return rc;
    }
    memcpy(c->root.bytes, manifest, size);
    c->root.size = size;
    shoal_cid_bytes(manifest, size, SHOAL_CODEC_DAG_CBOR, c->root.cid);
    c->has_root = 1;
    c->block_map_stale = 1;
    return SHOAL_OK;
}

/* ------------------------------------------------------- wants and give */

/* Parses a segment node or part node into s's blocks [from, from + n). */
static int parse_blocks(shoal_collection *c, uint32_t si, const shoal__cbor_item *m,
                        uint32_t from, uint32_t n) {
    shoal__segment *s = &c->segs[si];
    shoal__cbor_item links, sizes;
    const uint8_t *lp = map_get(m, "blocks"), *sp = map_get(m, "sizes");
    if (!lp || !sp) return MFAIL("segment %u node: blocks or sizes missing", si);
    shoal__cbor_item_at(lp, &links);
    shoal__cbor_item_at(sp, &sizes);
    if (links.major != SHOAL__CBOR_ARRAY || sizes.major != SHOAL__CBOR_ARRAY || links.arg != n ||
        sizes.arg != n)
        return MFAIL("segment %u node: %u blocks expected", si, n);
    const uint8_t *l = links.data, *z = sizes.data;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t cid[SHOAL_CID_BYTES];
        uint64_t size;
        if (get_link(l, SHOAL_CODEC_RAW, cid) || get_uint(z, &size) || size == 0 ||
            size > SHOAL_BLOCK_MAX)
            return MFAIL("segment %u node: block %u is bad", si, from + i);
        memcpy(s->blocks[from + i].digest, cid + 4, 32);
        s->blocks[from + i].size = (uint32_t)size;
        l = shoal__cbor_skip(l);
        z = shoal__cbor_skip(z);
    }
    return SHOAL_OK;
}

/* Offsets from sizes, once every block is known; the sizes must add up. */
static int blocks_known(shoal_collection *c, uint32_t si) {
    shoal__segment *s = &c->segs[si];
    uint64_t at = 0;
    for (uint32_t i = 0; i < s->nblocks; i++) {
        s->blocks[i].offset = at;
        at += s->blocks[i].size;
    }
    if (at != s->size)
        return MFAIL("segment %u: its blocks hold %llu bytes, not %llu", si,
                     (unsigned long long)at, (unsigned long long)s->size);
    c->block_map_stale = 1;
    return SHOAL_OK;
}

static int take_node(shoal_collection *c, uint32_t si, const uint8_t *bytes, size_t size) {
    shoal__segment *s = &c->segs[si];
    shoal__cbor_limits lim = {4, 0, 1, 0, 1};
    char msg[160];
    if (shoal__cbor_check(bytes, size, &lim, msg, sizeof msg))
        return MFAIL("segment %u node: %s", si, msg);
    shoal__cbor_item m;
    shoal__cbor_item_at(bytes, &m);
    uint64_t head, total;
    if (get_uint(map_get(&m, "head"), &head) || get_uint(map_get(&m, "bytes"), &total) ||
        total != s->size)
        return MFAIL("segment %u node: bad head or size", si);
    const uint8_t *parts = map_get(&m, "parts");
    uint64_t nblocks = 0;
    if (parts) {
        shoal__cbor_item pa;
        shoal__cbor_item_at(parts, &pa);
        if (pa.major != SHOAL__CBOR_ARRAY || pa.arg < 2 || pa.arg > 65536 || m.arg != 3)
            return MFAIL("segment %u node: bad parts", si);
        s->parts = shoal__calloc(&c->mem, (size_t)pa.arg, sizeof *s->parts);
        if (!s->parts) return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for part nodes");
        s->nparts = (uint32_t)pa.arg;
        const uint8_t *p = pa.data;
        for (uint32_t i = 0; i < s->nparts; i++, p = shoal__cbor_skip(p))
            if (get_link(p, SHOAL_CODEC_DAG_CBOR, s->parts[i].cid)) {
                shoal__free(&c->mem, s->parts);
                s->parts = NULL;
                s->nparts = 0;
                return MFAIL("segment %u node: part %u is not a link", si, i);
            }
    } else {
        shoal__cbor_item links;
        const uint8_t *lp = map_get(&m, "blocks");
        if (!lp || m.arg != 4) return MFAIL("segment %u node: blocks missing", si);
        shoal__cbor_item_at(lp, &links);
        nblocks = links.arg;
        if (nblocks < 2 || nblocks > c->node_fanout || head == 0 || head > nblocks)
            return MFAIL("segment %u node: %llu blocks, head %llu", si,
                         (unsigned long long)nblocks, (unsigned long long)head);
        s->blocks = shoal__calloc(&c->mem, (size_t)nblocks, sizeof *s->blocks);
        if (!s->blocks) return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for blocks");
        s->nblocks = (uint32_t)nblocks;
        int rc = parse_blocks(c, si, &m, 0, s->nblocks);
        if (!rc) rc = blocks_known(c, si);
        if (rc) {
            shoal__free(&c->mem, s->blocks);
            s->blocks = NULL;
            s->nblocks = 0;
            return rc;
        }
    }
    s->head_blocks = (uint32_t)head;
    s->node.bytes = shoal__alloc(&c->mem, size);
    if (!s->node.bytes) return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for a node");
    memcpy(s->node.bytes, bytes, size);
    s->node.size = size;
    memcpy(s->node.cid, s->link, SHOAL_CID_BYTES);
    return SHOAL_OK;
}

/* The blocks a part node lists: -1 if it is not a part node. */
static int64_t part_count(const uint8_t *bytes, size_t size) {
    shoal__cbor_limits lim = {4, 0, 1, 0, 1};
    if (shoal__cbor_check(bytes, size, &lim, NULL, 0)) return -1;
    shoal__cbor_item m, links;
    shoal__cbor_item_at(bytes, &m);
    const uint8_t *lp = map_get(&m, "blocks");
    if (!lp || m.arg != 2) return -1;
    shoal__cbor_item_at(lp, &links);
    if (links.major != SHOAL__CBOR_ARRAY || links.arg == 0 || links.arg > SHOAL__NODE_FANOUT) return -1;
    return (int64_t)links.arg;
}

/* Part nodes are kept as they come; once all are in, their blocks are read
 * in order. */
static int take_part(shoal_collection *c, uint32_t si, uint32_t pi, const uint8_t *bytes,
                     size_t size) {
    shoal__segment *s = &c->segs[si];
    if (part_count(bytes, size) < 0) return MFAIL("segment %u: part %u is not a part node", si, pi);
    if (!(s->parts[pi].bytes = shoal__alloc(&c->mem, size)))
        return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for a part node");
    memcpy(s->parts[pi].bytes, bytes, size);
    s->parts[pi].size = size;
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->nparts; i++) {
        if (!s->parts[i].bytes) return SHOAL_OK;
        total += (uint64_t)part_count(s->parts[i].bytes, s->parts[i].size);
    }
    int rc = SHOAL_OK;
    if (total < s->head_blocks || total > UINT32_MAX / 2)
        rc = MFAIL("segment %u: %llu blocks for a head of %u", si, (unsigned long long)total,
                   s->head_blocks);
    if (!rc && !(s->blocks = shoal__calloc(&c->mem, (size_t)total, sizeof *s->blocks)))
        rc = shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for blocks");
    uint32_t from = 0;
    for (uint32_t i = 0; i < s->nparts && !rc; i++) {
        shoal__cbor_item m;
        shoal__cbor_item_at(s->parts[i].bytes, &m);
        uint32_t n = (uint32_t)part_count(s->parts[i].bytes, s->parts[i].size);
        rc = parse_blocks(c, si, &m, from, n);
        from += n;
    }
    if (!rc) {
        s->nblocks = (uint32_t)total;
        rc = blocks_known(c, si);
    }
    if (rc) { /* the last part is wanted again */
        shoal__free(&c->mem, s->blocks);
        s->blocks = NULL;
        s->nblocks = 0;
        shoal__blob_free(c, &s->parts[pi]);
    }
    return rc;
}

/* The tombstone bitmap of s, once both it and the index are in. */
static int apply_tombstones(shoal_collection *c, uint32_t si) {
    shoal__segment *s = &c->segs[si];
    if (!s->has_tomb_link || !s->tomb_block.bytes || !s->index || s->tomb_dirty) return SHOAL_OK;
    uint32_t bound = s->label_bound, count = 0;
    const uint8_t *t = s->tomb_block.bytes;
    int bad = s->tomb_block.size != ((size_t)bound + 7) / 8;
    for (uint64_t l = 0; !bad && l < (uint64_t)s->tomb_block.size * 8; l++) {
        if (!(t[l >> 3] >> (l & 7) & 1)) continue;
        if (l >= bound || !shoal__is_alive(s->index, (uint32_t)l)) bad = 1;
        count++;
    }
    if (bad || count != s->tomb_count) {
        shoal__blob_free(c, &s->tomb_block);
        return MFAIL("segment %u: the tombstones are not %u live records", si, s->tomb_count);
    }
    for (uint32_t l = 0; l < bound; l++)
        if (t[l >> 3] >> (l & 7) & 1) {
            s->tomb[l >> 3] |= (uint8_t)(1u << (l & 7));
            s->allow[l >> 3] &= (uint8_t)~(1u << (l & 7));
        }
    s->tomb_dirty = 0;
    return SHOAL_OK;
}

/* Checks a freshly opened index against the segment's entry. */
static int check_entry(shoal_collection *c, uint32_t si, shoal_index *x) {
    shoal__segment *s = &c->segs[si];
    if (shoal_index_kind(x) != s->kind || shoal_index_size(x) != s->records ||
        shoal_index_dim(x) != c->params.small.dim || shoal_index_metric(x) != c->params.small.metric)
        return MFAIL("segment %u is not what the manifest says (kind, records, dim or metric)", si);
    if (s->label_bound && shoal_index_label_bound(x) != s->label_bound)
        return MFAIL("segment %u: label bound changed", si);
    return SHOAL_OK;
}

/* The segment's index and bitmaps once it is attached. */
static int attached(shoal_collection *c, uint32_t si, shoal_index *x) {
    shoal__segment *s = &c->segs[si];
    int rc = check_entry(c, si, x);
    if (rc) return rc;
    if (shoal__segment_complete(&(shoal__segment){.index = x})) {
        /* The ranges the entry states must be the records'. */
        shoal__segment probe = {.index = x};
        shoal__segment_ranges(&probe);
        if (probe.seq_min != s->seq_min || probe.seq_max != s->seq_max ||
            probe.time_min != s->time_min || probe.time_max != s->time_max)
            return MFAIL("segment %u: its sequence or time range is not the manifest's", si);
    }
    shoal_index *old = s->index;
    s->index = x;
    if (!old) {
        uint32_t tombs = s->tomb_count;
        if ((rc = shoal__segment_bitmaps(c, s))) {
            s->index = old;
            return rc;
        }
        s->tomb_count = tombs; /* from the entry, until the bitmap arrives */
        s->tomb_dirty = 0;
        rc = apply_tombstones(c, si);
        if (rc) {
            /* the bitmap is wanted again; the index stays */
            s->tomb_count = tombs;
        }
    } else {
        shoal_index_free(old);
    }
    return rc;
}

static int whole_ready(shoal_collection *c, uint32_t si) {
    shoal__segment *s = &c->segs[si];
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    lp.simd = c->params.small.simd;
    lp.allocator = &c->allocator;
    char msg[256] = "";
    lp.errmsg = msg;
    lp.errmsg_size = sizeof msg;
    shoal_index *x;
    int rc = shoal_index_view(s->bytes, (size_t)s->size, &lp, &x);
    if (rc) return shoal__coll_fail(c, rc, "segment %u: %s", si, msg);
    if ((rc = attached(c, si, x))) {
        if (s->index != x) shoal_index_free(x);
        return rc;
    }
    if (s->bytes_owned) { /* the view keeps its bytes from now on */
        shoal__index_adopt(x, &c->mem, s->bytes);
        s->bytes_owned = 0;
    }
    return SHOAL_OK;
}

static int head_ready(shoal_collection *c, uint32_t si) {
    shoal__segment *s = &c->segs[si];
    uint64_t head_size = 0;
    for (uint32_t i = 0; i < s->head_blocks; i++) head_size += s->blocks[i].size;
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    lp.simd = c->params.small.simd;
    lp.allocator = &c->allocator;
    char msg[256] = "";
    lp.errmsg = msg;
    lp.errmsg_size = sizeof msg;
    shoal_index *x;
    int rc = shoal_index_open_head(s->head, (size_t)head_size, &lp, &x);
    if (rc) return shoal__coll_fail(c, rc == SHOAL_ETRUNCATED ? SHOAL_ECORRUPT : rc,
                                    "segment %u head: %s", si, msg);
    if ((rc = attached(c, si, x))) {
        if (s->index != x) shoal_index_free(x);
        return rc;
    }
    shoal__free(&c->mem, s->head);
    s->head = NULL;
    /* Staging for the lists, as their blocks arrive. */
    shoal_stats st;
    shoal_index_stats(x, &st);
    s->nunits = st.nlist;
    s->units = shoal__calloc(&c->mem, s->nunits ? s->nunits : 1, sizeof *s->units);
    s->unit_left = shoal__calloc(&c->mem, s->nunits ? s->nunits : 1, sizeof *s->unit_left);
    if (!s->units || !s->unit_left) return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for lists");
    return SHOAL_OK;
}

/* A block of a lazy segment's list area: copied into the units it covers;
 * each unit complete is attached. */
static int take_list_block(shoal_collection *c, uint32_t si, uint32_t bi, const uint8_t *bytes) {
    shoal__segment *s = &c->segs[si];
    const shoal__block *b = &s->blocks[bi];
    uint64_t lo = b->offset, hi = b->offset + b->size;
    int rc = SHOAL_OK;
    for (uint32_t l = 0; l < s->nunits && !rc; l++) {
        uint64_t off, len;
        if (shoal_index_list_range(s->index, l, &off, &len)) break;
        if (off + len <= lo || off >= hi || !len) continue;
        if (!s->units[l]) {
            if (!shoal_index_lists_missing(s->index)) break;
            s->units[l] = shoal__alloc(&c->mem, (size_t)len);
            if (!s->units[l]) return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for a list");
            s->unit_left[l] = len;
        }
        uint64_t from = off > lo ? off : lo, to = off + len < hi ? off + len : hi;
        memcpy(s->units[l] + (from - off), bytes + (from - lo), (size_t)(to - from));
        s->unit_left[l] -= to - from;
        if (s->unit_left[l] == 0) {
            int a = shoal_index_attach_list(s->index, l, s->units[l], (size_t)len);
            if (a < 0) rc = shoal__coll_fail(c, a, "segment %u list %u: %s", si, l,
                                             shoal_index_errmsg(s->index));
            shoal__free(&c->mem, s->units[l]);
            s->units[l] = NULL;
        }
    }
    return rc;
}

/* A block of segment si, verified. */
static int take_block(shoal_collection *c, uint32_t si, uint32_t bi, const uint8_t *bytes) {
    shoal__segment *s = &c->segs[si];
    shoal__block *b = &s->blocks[bi];
    int rc = SHOAL_OK;
    if (s->mode == SHOAL__MODE_WHOLE) {
        memcpy(s->bytes + b->offset, bytes, b->size);
        b->have = 1;
        if (++s->blocks_have == s->nblocks && (rc = whole_ready(c, si))) {
            for (uint32_t i = 0; i < s->nblocks; i++) s->blocks[i].have = 0;
            s->blocks_have = 0;
        }
        return rc;
    }
    /* Lazy: the head first, then list blocks. */
    if (bi < s->head_blocks) {
        if (s->index) return 0;
        memcpy(s->head + b->offset, bytes, b->size);
        b->have = 1;
        if (++s->blocks_have == s->head_blocks && (rc = head_ready(c, si))) {
            for (uint32_t i = 0; i < s->head_blocks; i++) s->blocks[i].have = 0;
            s->blocks_have = 0;
        }
        return rc;
    }
    if (!s->index) return 0;
    b->have = 1;
    if ((rc = take_list_block(c, si, bi, bytes))) b->have = 0;
    return rc;
}

/* Decides how s's blocks are kept, for want. */
static int choose_mode(shoal_collection *c, uint32_t si, int want) {
    shoal__segment *s = &c->segs[si];
    int lazy = want == SHOAL_WANT_LAZY && s->kind == SHOAL_KIND_IVF && s->nblocks > s->head_blocks;
    if (s->mode == SHOAL__MODE_WHOLE || (s->mode == SHOAL__MODE_LAZY && lazy)) return SHOAL_OK;
    if (s->mode == SHOAL__MODE_NONE && lazy) {
        uint64_t head_size = 0;
        for (uint32_t i = 0; i < s->head_blocks; i++) head_size += s->blocks[i].size;
        if (!(s->head = shoal__alloc(&c->mem, (size_t)head_size)))
            return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for a segment head");
        s->mode = SHOAL__MODE_LAZY;
        return SHOAL_OK;
    }
    /* Whole: every block again (a lazy segment kept none of them). */
    uint8_t *bytes = shoal__alloc(&c->mem, (size_t)s->size);
    if (!bytes) return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for a segment of %llu bytes",
                                        (unsigned long long)s->size);
    shoal__free(&c->mem, s->head);
    s->head = NULL;
    for (uint32_t i = 0; s->units && i < s->nunits; i++) shoal__free(&c->mem, s->units[i]);
    shoal__free(&c->mem, s->units);
    shoal__free(&c->mem, s->unit_left);
    s->units = NULL;
    s->unit_left = NULL;
    s->nunits = 0;
    s->bytes = bytes;
    s->bytes_owned = 1;
    for (uint32_t i = 0; i < s->nblocks; i++) s->blocks[i].have = 0;
    s->blocks_have = 0;
    s->mode = SHOAL__MODE_WHOLE;
    return SHOAL_OK;
}

typedef struct want_list {
    uint8_t (*cids)[SHOAL_CID_BYTES];
    uint32_t cap, n;
} want_list;

static void want_cid(want_list *w, const uint8_t *cid) {
    for (uint32_t i = 0; i < w->n && i < w->cap; i++) /* (a few duplicates are common) */
        if (!memcmp(w->cids[i], cid, SHOAL_CID_BYTES)) return;
    if (w->n < w->cap) memcpy(w->cids[w->n], cid, SHOAL_CID_BYTES);
    w->n++;
}

static void want_block(want_list *w, const shoal__block *b) {
    uint8_t cid[SHOAL_CID_BYTES] = {0x01, SHOAL_CODEC_RAW, 0x12, 0x20};
    memcpy(cid + 4, b->digest, 32);
    want_cid(w, cid);
}

int shoal_collection_wants(shoal_collection *c, int want, const float *query, uint32_t dim,
                           uint32_t k, const shoal_search_params *params,
                           uint8_t (*cids)[SHOAL_CID_BYTES], uint32_t cap) {
    c->errmsg[0] = '\0';
    if (c->readonly) return shoal__coll_fail(c, SHOAL_ESTATE, "a snapshot is read-only: it fetches nothing");
    if (want != SHOAL_WANT_ALL && want != SHOAL_WANT_LAZY)
        return shoal__coll_fail(c, SHOAL_EPARAM, "want = %d is unknown", want);
    if (query) want = SHOAL_WANT_LAZY;
    (void)k;
    want_list w = {cids, cids ? cap : 0, 0};
    int rc = SHOAL_OK;
    uint32_t *lists = NULL;
    for (uint32_t si = 0; si < c->nsegs && !rc; si++) {
        shoal__segment *s = &c->segs[si];
        if (s->link[1] == SHOAL_CODEC_DAG_CBOR && !s->node.bytes) {
            want_cid(&w, s->link);
            continue;
        }
        if (s->nparts && !s->nblocks) { /* part nodes still missing */
            for (uint32_t p = 0; p < s->nparts; p++)
                if (!s->parts[p].bytes) want_cid(&w, s->parts[p].cid);
            continue;
        }
        if (s->has_tomb_link && !s->tomb_block.bytes && !s->tomb_dirty) want_cid(&w, s->tomb_block.cid);
        if ((rc = choose_mode(c, si, want))) break;
        if (s->mode == SHOAL__MODE_WHOLE) {
            if (s->index && s->index->lazy == NULL && s->blocks_have == s->nblocks) continue;
            for (uint32_t i = 0; i < s->nblocks; i++)
                if (!s->blocks[i].have) want_block(&w, &s->blocks[i]);
            continue;
        }
        if (!s->index) {
            for (uint32_t i = 0; i < s->head_blocks; i++)
                if (!s->blocks[i].have) want_block(&w, &s->blocks[i]);
            continue;
        }
        if (!query || !shoal_index_lists_missing(s->index)) continue;
        /* The probed lists, found with the filter the search will use. */
        shoal_search_params sp;
        if (params) sp = *params;
        else shoal_search_params_init(&sp);
        sp.filter = NULL;
        if (s->tomb_count) {
            sp.filter_bitmap = s->allow;
            sp.filter_bitmap_bits = s->label_bound;
        } else {
            sp.filter_bitmap = NULL;
        }
        if (sp.nprobe > s->nlist) sp.nprobe = s->nlist;
        if (!lists && !(lists = shoal__alloc(&c->mem, 65536 * sizeof *lists))) {
            rc = shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory");
            break;
        }
        int n = shoal_index_lists_wanted(s->index, query, dim, &sp, lists, 65536);
        if (n < 0) {
            rc = shoal__coll_fail(c, n, "segment %u: %s", si, shoal_index_errmsg(s->index));
            break;
        }
        for (int j = 0; j < n; j++) {
            uint64_t off, len;
            if (shoal_index_list_range(s->index, lists[j], &off, &len)) continue;
            for (uint32_t i = s->head_blocks; i < s->nblocks; i++) {
                const shoal__block *b = &s->blocks[i];
                if (!b->have && b->offset < off + len && b->offset + b->size > off) want_block(&w, b);
            }
        }
    }
    shoal__free(&c->mem, lists);
    if (rc) return rc;
    return w.n > INT32_MAX ? INT32_MAX : (int)w.n;
}

/* (segment, block) pairs by digest, rebuilt when blocks become known. */
static int map_rebuild(shoal_collection *c) {
    uint64_t total = 0;
    for (uint32_t i = 0; i < c->nsegs; i++) total += c->segs[i].nblocks;
    uint64_t cap = 16;
    while (cap < 2 * total) cap *= 2;
    if (cap > UINT32_MAX / 2) return shoal__coll_fail(c, SHOAL_ETOOBIG, "too many blocks");
    uint32_t *map = shoal__alloc(&c->mem, (size_t)cap * 2 * sizeof *map);
    if (!map) return shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for the block map");
    memset(map, 0xff, (size_t)cap * 2 * sizeof *map);
    uint32_t mask = (uint32_t)cap - 1;
    for (uint32_t si = 0; si < c->nsegs; si++)
        for (uint32_t bi = 0; bi < c->segs[si].nblocks; bi++) {
            uint32_t h;
            memcpy(&h, c->segs[si].blocks[bi].digest, 4);
            for (h &= mask; map[2 * h] != UINT32_MAX; h = (h + 1) & mask) {}
            map[2 * h] = si;
            map[2 * h + 1] = bi;
        }
    shoal__free(&c->mem, c->block_map);
    c->block_map = map;
    c->block_map_cap = (uint32_t)cap;
    c->block_map_stale = 0;
    return SHOAL_OK;
}

int shoal_collection_give(shoal_collection *c, const uint8_t *bytes, size_t size) {
    c->errmsg[0] = '\0';
    if (c->readonly) return shoal__coll_fail(c, SHOAL_ESTATE, "a snapshot is read-only: it fetches nothing");
    if (c->busy) return shoal__coll_fail(c, SHOAL_ESTATE, "give called from a callback");
    if (!bytes && size) return shoal__coll_fail(c, SHOAL_EPARAM, "bytes is NULL");
    if (size > SHOAL_BLOCK_MAX) return 0; /* no block of ours is larger */
    uint8_t digest[32];
    shoal_sha256(bytes, size, digest);
    int used = 0, rc = SHOAL_OK;
    for (uint32_t si = 0; si < c->nsegs && !rc; si++) {
        shoal__segment *s = &c->segs[si];
        if (s->link[1] == SHOAL_CODEC_DAG_CBOR && !s->node.bytes && !memcmp(s->link + 4, digest, 32)) {
            if (!(rc = take_node(c, si, bytes, size))) used = 1;
        }
        for (uint32_t p = 0; !rc && p < s->nparts; p++)
            if (!s->parts[p].bytes && !memcmp(s->parts[p].cid + 4, digest, 32)) {
                if (!(rc = take_part(c, si, p, bytes, size))) used = 1;
            }
        if (!rc && s->has_tomb_link && !s->tomb_block.bytes && !s->tomb_dirty &&
            !memcmp(s->tomb_block.cid + 4, digest, 32)) {
            if (!(s->tomb_block.bytes = shoal__alloc(&c->mem, size ? size : 1))) {
                rc = shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory for tombstones");
            } else {
                memcpy(s->tomb_block.bytes, bytes, size);
                s->tomb_block.size = size;
                used = 1;
                rc = apply_tombstones(c, si);
            }
        }
    }
    if (rc) return rc;
    if (c->block_map_stale && (rc = map_rebuild(c))) return rc;
    uint32_t mask = c->block_map_cap - 1, h;
    memcpy(&h, digest, 4);
    for (h &= mask; c->block_map && c->block_map[2 * h] != UINT32_MAX && !rc; h = (h + 1) & mask) {
        uint32_t si = c->block_map[2 * h], bi = c->block_map[2 * h + 1];
        shoal__segment *s = &c->segs[si];
        shoal__block *b = &s->blocks[bi];
        if (b->have || memcmp(b->digest, digest, 32) || b->size != size) continue;
        if (s->mode == SHOAL__MODE_NONE) continue; /* not asked for yet */
        int r = take_block(c, si, bi, bytes);
        if (r > 0 || (r == 0 && b->have)) used = 1;
        if (r < 0) rc = r;
    }
    return rc ? rc : used;
}
