/*
 * binding.c -- the few entry points the JS binding needs beyond shoal.h.
 *
 * Structs are awkward to build from JS, so they cross the boundary as
 * arrays of 64-bit cells in the order of the lists in shoal.h
 * (SHOAL_PARAM_LIST, SHOAL_SEARCH_PARAM_LIST, SHOAL_STATS_LIST).  The JS
 * side takes the same order from js/dist/abi.mjs, which tools/gen.c writes
 * from those lists, so neither side holds a copy of the other's layout and
 * no struct offset is hard-coded anywhere.  Every other function JS calls
 * is the public API itself, exported by SHOAL_API.  Uses nothing private.
 */
#include <emscripten.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal.h"

#define COUNT_ROW(...) +1
enum {
    PARAM_COUNT = 0 SHOAL_PARAM_LIST(COUNT_ROW),
    SEARCH_PARAM_COUNT = 0 SHOAL_SEARCH_PARAM_LIST(COUNT_ROW),
    STATS_COUNT = 0 SHOAL_STATS_LIST(COUNT_ROW),
    COLLECTION_PARAM_COUNT = 0 SHOAL_COLLECTION_PARAM_LIST(COUNT_ROW),
    COLLECTION_STATS_COUNT = 0 SHOAL_COLLECTION_STATS_LIST(COUNT_ROW)
};

/* The cell counts, for the JS side to check its generated lists against
 * the module it loaded: [params, search params, stats]. */
EMSCRIPTEN_KEEPALIVE
uint32_t shoal_js_abi(uint32_t which) {
    return which == 0   ? PARAM_COUNT
           : which == 1 ? SEARCH_PARAM_COUNT
           : which == 2 ? STATS_COUNT
           : which == 3 ? COLLECTION_PARAM_COUNT
                        : COLLECTION_STATS_COUNT;
}

/* One row of SHOAL_PARAM_LIST: cell i -> the field (values out of a
 * field's range are rejected rather than truncated). */
#define TAKE_U32(field) \
    if (cells[i] > UINT32_MAX) return SHOAL_EPARAM; \
    params.field = (uint32_t)cells[i];
#define TAKE_U64(field) params.field = cells[i];
#define TAKE_ENUM(field) \
    if (cells[i] > INT32_MAX) return SHOAL_EPARAM; \
    params.field = (int)cells[i];
#define TAKE(field, type, js, flag, applies, en, doc) \
    TAKE_##type(field) i++;

/* PARAM_COUNT cells into params (initialized by the caller). */
static int take_params(const uint64_t *cells, shoal_params *out) {
    shoal_params params = *out;
    uint32_t i = 0;
    SHOAL_PARAM_LIST(TAKE)
    *out = params;
    return SHOAL_OK;
}

/* shoal_index_new from PARAM_COUNT cells; msg (msg_size bytes) receives
 * the reason a parameter is rejected. */
EMSCRIPTEN_KEEPALIVE
int shoal_js_index_new(const uint64_t *cells, uint32_t count, char *msg, uint32_t msg_size,
                       shoal_index **out) {
    *out = NULL;
    if (count != PARAM_COUNT) return SHOAL_EPARAM;
    shoal_params params;
    shoal_params_init(&params);
    int rc = take_params(cells, &params);
    if (rc) return rc;
    params.errmsg = msg;
    params.errmsg_size = msg_size;
    return shoal_index_new(&params, out);
}

#define TAKE_SEARCH(field, js, flag, applies, doc) \
    if (cells[i] > UINT32_MAX) return SHOAL_EPARAM; \
    params.field = (uint32_t)cells[i++];

/* shoal_index_search with SEARCH_PARAM_COUNT cells (0 = the index's
 * defaults); filter_bitmap and where may be NULL (no filter).
 *
 * Then, so that a search is one call rather than one per result: the ids of
 * the results one after another in ids[cap], ids_end[i] where result i's
 * ends (ids_end[0] = UINT32_MAX when they do not all fit, or a result has no
 * id yet: ask shoal_index_label_id for each), and out[0] = how many of the
 * results have metadata (0: no need to ask for it). */
EMSCRIPTEN_KEEPALIVE
int shoal_js_search(shoal_index *index, const float *query, uint32_t dim, uint32_t k,
                    const uint64_t *cells, const uint8_t *filter_bitmap,
                    uint32_t filter_bitmap_bits, const shoal_filter *where, uint32_t *labels,
                    float *distances, char *ids, uint32_t cap, uint32_t *ids_end,
                    uint32_t *out) {
    shoal_search_params params;
    shoal_search_params_init(&params);
    uint32_t i = 0;
    SHOAL_SEARCH_PARAM_LIST(TAKE_SEARCH)
    params.filter_bitmap = filter_bitmap;
    params.filter_bitmap_bits = filter_bitmap_bits;
    params.where = where;
    int count = shoal_index_search(index, query, dim, k, &params, labels, distances);
    uint32_t used = 0, with_metadata = 0;
    int fits = 1;
    for (int r = 0; r < count; r++) {
        const char *id;
        const uint8_t *meta;
        int len = fits ? shoal_index_label_id(index, labels[r], &id) : 0;
        if (fits && (len < 0 || (uint32_t)len > cap - used)) {
            fits = 0;
            ids_end[0] = UINT32_MAX;
        } else if (fits) {
            memcpy(ids + used, id, (size_t)len);
            used += (uint32_t)len;
            ids_end[r] = used;
        }
        if (shoal_index_metadata(index, labels[r], &meta) > 0) with_metadata++;
    }
    out[0] = with_metadata;
    return count;
}

/* shoal_index_upsert with the batch as arguments: metadata is JSON text
 * (meta NULL: none); times are doubles (whole milliseconds, or NaN for none;
 * times NULL: none). */
EMSCRIPTEN_KEEPALIVE
int shoal_js_upsert(shoal_index *index, uint32_t n, const char *id_bytes,
                    const uint32_t *id_offsets, const float *vectors, uint32_t dim,
                    const char *meta, const uint32_t *meta_offsets, const double *times,
                    int64_t *times_scratch) {
    shoal_records r;
    memset(&r, 0, sizeof r);
    r.n = n;
    r.id_bytes = id_bytes;
    r.id_offsets = id_offsets;
    r.vectors = vectors;
    r.dim = dim;
    r.metadata = meta;
    r.metadata_offsets = meta ? meta_offsets : NULL;
    if (times) {
        for (uint32_t i = 0; i < n; i++)
            times_scratch[i] = times[i] != times[i] ? SHOAL_TIME_NONE : (int64_t)times[i];
        r.times = times_scratch;
    }
    return shoal_index_upsert(index, &r);
}

#define GIVE_STAT(field, js, doc) out[i++] = (double)stats.field;

/* shoal_index_stats as STATS_COUNT doubles (every value fits 2^53). */
EMSCRIPTEN_KEEPALIVE
void shoal_js_stats(const shoal_index *index, double *out) {
    shoal_stats stats;
    shoal_index_stats(index, &stats);
    uint32_t i = 0;
    SHOAL_STATS_LIST(GIVE_STAT)
}

/* shoal_index_load with its parameters as arguments; msg (msg_size bytes)
 * receives the detail message on failure. */
EMSCRIPTEN_KEEPALIVE
int shoal_js_index_load(const uint8_t *bytes, uint32_t size, uint32_t simd, char *msg,
                        uint32_t msg_size, shoal_index **out) {
    shoal_load_params params;
    shoal_load_params_init(&params);
    params.simd = (shoal_simd)simd;
    params.errmsg = msg;
    params.errmsg_size = msg_size;
    return shoal_index_load(bytes, size, &params, out);
}

/* shoal_index_metadata_fields as JSON text, [{"name":..,"count":..,"types":..}]
 * with types the SHOAL_FIELD_* bits, into *out (release with
 * shoal_index_free_bytes); returns the length or a negative code. */
EMSCRIPTEN_KEEPALIVE
int shoal_js_fields(shoal_index *index, char **out) {
    *out = NULL;
    int n = shoal_index_metadata_fields(index, NULL, 0);
    if (n < 0) return n;
    shoal_field_info *fields = malloc((size_t)(n ? n : 1) * sizeof *fields);
    if (!fields) return SHOAL_ENOMEM;
    shoal_index_metadata_fields(index, fields, (uint32_t)n);
    /* Names are JSON-escaped by hand: quote, backslash, control bytes. */
    size_t cap = 2;
    for (int i = 0; i < n; i++) cap += 6 * (size_t)fields[i].name_len + 48;
    char *text = malloc(cap), *p = text;
    if (!text) {
        free(fields);
        return SHOAL_ENOMEM;
    }
    *p++ = '[';
    for (int i = 0; i < n; i++) {
        if (i) *p++ = ',';
        p += sprintf(p, "{\"name\":\"");
        for (uint32_t j = 0; j < fields[i].name_len; j++) {
            unsigned char c = (unsigned char)fields[i].name[j];
            if (c == '"' || c == '\\') *p++ = '\\', *p++ = (char)c;
            else if (c < 0x20) p += sprintf(p, "\\u%04x", c);
            else *p++ = (char)c;
        }
        p += sprintf(p, "\",\"count\":%u,\"types\":%u}", fields[i].count, fields[i].types);
    }
    *p++ = ']';
    free(fields);
    *out = text;
    return (int)(p - text);
}

/* ------------------------------------------------------------ collections */

#define TAKE_POLICY_U32(field) \
    if (policy[i] < 0 || policy[i] > UINT32_MAX) return SHOAL_EPARAM; \
    p.field = (uint32_t)policy[i];
#define TAKE_POLICY_U64(field) \
    if (policy[i] < 0) return SHOAL_EPARAM; \
    p.field = (uint64_t)policy[i];
#define TAKE_POLICY_I64(field) p.field = policy[i];
#define TAKE_POLICY_I32(field) \
    if (policy[i] < INT32_MIN || policy[i] > INT32_MAX) return SHOAL_EPARAM; \
    p.field = (int)policy[i];
#define TAKE_POLICY(field, type, js, flag, doc) TAKE_POLICY_##type(field) i++;

/* shoal_collection_new from PARAM_COUNT cells for small, as many for large
 * and COLLECTION_PARAM_COUNT signed policy cells. */
EMSCRIPTEN_KEEPALIVE
int shoal_js_collection_new(const uint64_t *small, const uint64_t *large, const int64_t *policy,
                            uint32_t policy_count, char *msg, uint32_t msg_size,
                            shoal_collection **out) {
    *out = NULL;
    if (policy_count != COLLECTION_PARAM_COUNT) return SHOAL_EPARAM;
    shoal_collection_params p;
    shoal_collection_params_init(&p);
    int rc = take_params(small, &p.small);
    if (!rc) rc = take_params(large, &p.large); /* (every cell: JS writes the defaults) */
    if (rc) return rc;
    uint32_t i = 0;
    SHOAL_COLLECTION_PARAM_LIST(TAKE_POLICY)
    p.errmsg = msg;
    p.errmsg_size = msg_size;
    return shoal_collection_new(&p, out);
}

/* shoal_collection_open with the load parameters as arguments. */
EMSCRIPTEN_KEEPALIVE
int shoal_js_collection_open(const uint8_t *bytes, uint32_t size, uint32_t simd, char *msg,
                             uint32_t msg_size, shoal_collection **out) {
    shoal_load_params params;
    shoal_load_params_init(&params);
    params.simd = (shoal_simd)simd;
    params.errmsg = msg;
    params.errmsg_size = msg_size;
    return shoal_collection_open(bytes, size, &params, out);
}

/* shoal_collection_log_upsert with the batch as arguments (as shoal_js_upsert);
 * out[0] = the record's pointer, out[1] = its size. */
EMSCRIPTEN_KEEPALIVE
int shoal_js_collection_log_upsert(shoal_collection *c, uint32_t n, const char *id_bytes,
                                   const uint32_t *id_offsets, const float *vectors, uint32_t dim,
                                   const char *meta, const uint32_t *meta_offsets,
                                   const double *times, int64_t *times_scratch, uint32_t *out) {
    shoal_records r;
    memset(&r, 0, sizeof r);
    r.n = n;
    r.id_bytes = id_bytes;
    r.id_offsets = id_offsets;
    r.vectors = vectors;
    r.dim = dim;
    r.metadata = meta;
    r.metadata_offsets = meta ? meta_offsets : NULL;
    if (times) {
        for (uint32_t i = 0; i < n; i++)
            times_scratch[i] = times[i] != times[i] ? SHOAL_TIME_NONE : (int64_t)times[i];
        r.times = times_scratch;
    }
    uint8_t *log;
    size_t size;
    int rc = shoal_collection_log_upsert(c, &r, &log, &size);
    if (rc) return rc;
    out[0] = (uint32_t)(uintptr_t)log;
    out[1] = (uint32_t)size;
    return SHOAL_OK;
}

EMSCRIPTEN_KEEPALIVE
int shoal_js_collection_log_delete(shoal_collection *c, uint32_t n, const char *id_bytes,
                                   const uint32_t *id_offsets, uint32_t *out) {
    uint8_t *log;
    size_t size;
    int rc = shoal_collection_log_delete(c, n, id_bytes, id_offsets, &log, &size);
    if (rc) return rc;
    out[0] = (uint32_t)(uintptr_t)log;
    out[1] = (uint32_t)size;
    return SHOAL_OK;
}

EMSCRIPTEN_KEEPALIVE
int shoal_js_collection_log_clear(shoal_collection *c, uint32_t *out) {
    uint8_t *log;
    size_t size;
    int rc = shoal_collection_log_clear(c, &log, &size);
    if (rc) return rc;
    out[0] = (uint32_t)(uintptr_t)log;
    out[1] = (uint32_t)size;
    return SHOAL_OK;
}

/* shoal_collection_apply; out: records, skipped, written, deleted,
 * valid_size, torn (doubles). */
EMSCRIPTEN_KEEPALIVE
int shoal_js_collection_apply(shoal_collection *c, const uint8_t *log, uint32_t size, double *out) {
    shoal_apply_result r;
    int rc = shoal_collection_apply(c, log, size, &r);
    out[0] = r.records;
    out[1] = r.skipped;
    out[2] = r.written;
    out[3] = r.deleted;
    out[4] = (double)r.valid_size;
    out[5] = r.torn;
    return rc;
}

/* A JS function (part, label) -> keep, from addFunction('iii'). */
typedef int (*js_hit_fn)(uint32_t part, uint32_t label);

static int call_js_hit(void *ctx, shoal_hit hit) { return ((js_hit_fn)ctx)(hit.part, hit.label); }

static void take_search(const uint64_t *cells, const shoal_filter *where, shoal_search_params *params) {
    shoal_search_params_init(params);
    uint32_t i = 0;
#define TAKE_SEARCH_CLAMPED(field, js, flag, applies, doc) \
    params->field = cells[i] > UINT32_MAX ? UINT32_MAX : (uint32_t)cells[i]; i++;
    SHOAL_SEARCH_PARAM_LIST(TAKE_SEARCH_CLAMPED)
    params->where = where;
}

/* shoal_collection_search; hits as pairs (part, label). */
EMSCRIPTEN_KEEPALIVE
int shoal_js_collection_search(shoal_collection *c, const float *query, uint32_t dim, uint32_t k,
                               const uint64_t *cells, const shoal_filter *where, js_hit_fn fn,
                               uint32_t *hits, float *distances) {
    shoal_search_params params;
    take_search(cells, where, &params);
    return shoal_collection_search(c, query, dim, k, &params, fn ? call_js_hit : NULL, (void *)fn,
                                   (shoal_hit *)(void *)hits, distances);
}

/* shoal_collection_wants; query NULL: for want alone. */
EMSCRIPTEN_KEEPALIVE
int shoal_js_collection_wants(shoal_collection *c, int want, const float *query, uint32_t dim,
                              uint32_t k, const uint64_t *cells, const shoal_filter *where,
                              uint8_t *cids, uint32_t cap) {
    shoal_search_params params;
    if (query) take_search(cells, where, &params);
    return shoal_collection_wants(c, want, query, dim, k, query ? &params : NULL,
                                  (uint8_t(*)[SHOAL_CID_BYTES])(void *)cids, cap);
}

EMSCRIPTEN_KEEPALIVE
int shoal_js_collection_find(shoal_collection *c, const char *id, uint32_t len, uint32_t *hit) {
    return shoal_collection_find(c, id, len, (shoal_hit *)(void *)hit);
}

EMSCRIPTEN_KEEPALIVE
int shoal_js_collection_next(const shoal_collection *c, uint32_t *hit) {
    return shoal_collection_next(c, (shoal_hit *)(void *)hit);
}

EMSCRIPTEN_KEEPALIVE
int shoal_js_collection_hit_id(const shoal_collection *c, uint32_t part, uint32_t label,
                               const char **id) {
    shoal_hit hit = {part, label};
    return shoal_collection_hit_id(c, hit, id);
}

EMSCRIPTEN_KEEPALIVE
int shoal_js_collection_hit_vector(shoal_collection *c, uint32_t part, uint32_t label, float *out) {
    shoal_hit hit = {part, label};
    return shoal_collection_hit_vector(c, hit, out);
}

/* The time of a hit as a double (NaN for none). */
EMSCRIPTEN_KEEPALIVE
double shoal_js_collection_hit_time(const shoal_collection *c, uint32_t part, uint32_t label) {
    shoal_hit hit = {part, label};
    int64_t t;
    if (shoal_collection_hit_info(c, hit, &t, NULL) || t == SHOAL_TIME_NONE) return 0.0 / 0.0;
    return (double)t;
}

EMSCRIPTEN_KEEPALIVE
int shoal_js_collection_hits_json(shoal_collection *c, uint32_t n, const uint32_t *hits,
                                  uint32_t *out) {
    char *json;
    size_t size;
    int rc = shoal_collection_hits_json(c, n, (const shoal_hit *)(const void *)hits, &json, &size);
    if (rc) return rc;
    out[0] = (uint32_t)(uintptr_t)json;
    out[1] = (uint32_t)size;
    return SHOAL_OK;
}

#define GIVE_COLLECTION_STAT(field, js, doc) out[i++] = (double)stats.field;

EMSCRIPTEN_KEEPALIVE
void shoal_js_collection_stats(const shoal_collection *c, double *out) {
    shoal_collection_stats stats;
    shoal_collection_stats_get(c, &stats);
    uint32_t i = 0;
    SHOAL_COLLECTION_STATS_LIST(GIVE_COLLECTION_STAT)
}

/* Block i of the version: its CID into cid, out[0] = bytes (0: not held),
 * out[1] = size. */
EMSCRIPTEN_KEEPALIVE
int shoal_js_collection_block(const shoal_collection *c, uint32_t i, uint8_t *cid, uint32_t *out) {
    shoal_block_ref ref;
    int rc = shoal_collection_block(c, i, &ref);
    if (rc) return rc;
    memcpy(cid, ref.cid, SHOAL_CID_BYTES);
    out[0] = (uint32_t)(uintptr_t)ref.bytes;
    out[1] = (uint32_t)ref.size;
    return SHOAL_OK;
}

/* shoal_collection_compact with the host's clock as a double (JS numbers
 * cannot cross as int64 without BigInt legalization). */
EMSCRIPTEN_KEEPALIVE
int shoal_js_collection_compact(shoal_collection *c, int full, double now_ms) {
    return shoal_collection_compact(c, full, (int64_t)now_ms);
}

/* ----------------------------------------------- segments read by range */

/* shoal_segment_info on a prefix, as doubles: [rc, head_size, head_bytes,
 * segment_size, kind, nlist, rerank, required_features, compressed,
 * quantizer, dim].  Returns rc (0 or a corrupt-family code; with
 * SHOAL_ETRUNCATED out[1] says how many bytes the head needs). */
EMSCRIPTEN_KEEPALIVE
int shoal_js_segment_head(const uint8_t *bytes, uint32_t size, double *out) {
    shoal_segment_summary info;
    int rc = shoal_segment_info(bytes, size, &info);
    out[0] = rc;
    out[1] = (double)info.head_size;
    out[2] = (double)info.head_bytes;
    out[3] = (double)info.segment_size;
    out[4] = info.kind;
    out[5] = info.nlist;
    out[6] = info.params.rerank;
    out[7] = (double)info.required_features;
    out[8] = info.compressed;
    out[9] = info.quantizer;
    out[10] = info.dim;
    return rc;
}

/* shoal_index_open_head (lazy) or shoal_index_load, with rerank_external
 * as given; msg (msg_size bytes) receives the detail message on failure. */
EMSCRIPTEN_KEEPALIVE
int shoal_js_index_open(const uint8_t *bytes, uint32_t size, uint32_t simd, int lazy,
                        int rerank_external, char *msg, uint32_t msg_size, shoal_index **out) {
    shoal_load_params params;
    shoal_load_params_init(&params);
    params.simd = (shoal_simd)simd;
    params.rerank_external = rerank_external;
    params.errmsg = msg;
    params.errmsg_size = msg_size;
    return lazy ? shoal_index_open_head(bytes, size, &params, out)
                : shoal_index_load(bytes, size, &params, out);
}

/* Where list's unit and (external rows) its rows' hole lie, as doubles:
 * [offset, size, rows offset, rows size]; returns 0 or SHOAL_ENOTFOUND. */
EMSCRIPTEN_KEEPALIVE
int shoal_js_list_parts(const shoal_index *index, uint32_t list, double *out) {
    uint64_t off, size, roff = 0, rsize = 0;
    int rc = shoal_index_list_range(index, list, &off, &size);
    if (rc) return rc;
    if (shoal_index_list_rows_range(index, list, &roff, &rsize)) roff = rsize = 0;
    out[0] = (double)off;
    out[1] = (double)size;
    out[2] = (double)roff;
    out[3] = (double)rsize;
    return SHOAL_OK;
}

static void take_search_cells(const uint64_t *cells, const uint8_t *filter_bitmap,
                              uint32_t filter_bitmap_bits, const shoal_filter *where,
                              shoal_search_params *params, int *bad) {
    shoal_search_params_init(params);
    uint32_t i = 0;
    *bad = 0;
#define TAKE_SEARCH_SOFT(field, js, flag, applies, doc) \
    if (cells[i] > UINT32_MAX) *bad = 1;                \
    params->field = (uint32_t)cells[i++];
    SHOAL_SEARCH_PARAM_LIST(TAKE_SEARCH_SOFT)
#undef TAKE_SEARCH_SOFT
    params->filter_bitmap = filter_bitmap;
    params->filter_bitmap_bits = filter_bitmap_bits;
    params->where = where;
}

/* shoal_index_lists_wanted with search cells and filters as shoal_js_search. */
EMSCRIPTEN_KEEPALIVE
int shoal_js_lists_wanted(shoal_index *index, const float *query, uint32_t dim,
                          const uint64_t *cells, const uint8_t *filter_bitmap,
                          uint32_t filter_bitmap_bits, const shoal_filter *where,
                          uint32_t *lists, uint32_t cap) {
    shoal_search_params params;
    int bad;
    take_search_cells(cells, filter_bitmap, filter_bitmap_bits, where, &params, &bad);
    if (bad) return SHOAL_EPARAM;
    return shoal_index_lists_wanted(index, query, dim, &params, lists, cap);
}

/* shoal_index_search_candidates with search cells and filters as
 * shoal_js_search; labels[cap], offsets[cap] (doubles) and floors[cap] get
 * the candidates.  Returns their count (more than cap: ask again). */
EMSCRIPTEN_KEEPALIVE
int shoal_js_search_candidates(shoal_index *index, const float *query, uint32_t dim, uint32_t k,
                               const uint64_t *cells, const uint8_t *filter_bitmap,
                               uint32_t filter_bitmap_bits, const shoal_filter *where,
                               uint32_t *labels, double *offsets, float *floors, uint32_t cap) {
    shoal_search_params params;
    int bad;
    take_search_cells(cells, filter_bitmap, filter_bitmap_bits, where, &params, &bad);
    if (bad) return SHOAL_EPARAM;
    shoal_candidate *cand = malloc((size_t)(cap ? cap : 1) * sizeof *cand);
    if (!cand) return SHOAL_ENOMEM;
    int n = shoal_index_search_candidates(index, query, dim, k, &params, cand, cap);
    for (int i = 0; i < n && (uint32_t)i < cap; i++) {
        labels[i] = cand[i].label;
        offsets[i] = (double)cand[i].offset;
        floors[i] = cand[i].floor;
    }
    free(cand);
    return n;
}
