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
    STATS_COUNT = 0 SHOAL_STATS_LIST(COUNT_ROW)
};

/* The cell counts, for the JS side to check its generated lists against
 * the module it loaded: [params, search params, stats]. */
EMSCRIPTEN_KEEPALIVE
uint32_t shoal_js_abi(uint32_t which) {
    return which == 0 ? PARAM_COUNT : which == 1 ? SEARCH_PARAM_COUNT : STATS_COUNT;
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

/* shoal_index_new from PARAM_COUNT cells; msg (msg_size bytes) receives
 * the reason a parameter is rejected. */
EMSCRIPTEN_KEEPALIVE
int shoal_js_index_new(const uint64_t *cells, uint32_t count, char *msg, uint32_t msg_size,
                       shoal_index **out) {
    *out = NULL;
    if (count != PARAM_COUNT) return SHOAL_EPARAM;
    shoal_params params;
    shoal_params_init(&params);
    uint32_t i = 0;
    SHOAL_PARAM_LIST(TAKE)
    params.errmsg = msg;
    params.errmsg_size = msg_size;
    return shoal_index_new(&params, out);
}

#define TAKE_SEARCH(field, js, flag, applies, doc) \
    if (cells[i] > UINT32_MAX) return SHOAL_EPARAM; \
    params.field = (uint32_t)cells[i++];

/* shoal_index_search with SEARCH_PARAM_COUNT cells (0 = the index's
 * defaults); filter_bitmap and where may be NULL (no filter). */
EMSCRIPTEN_KEEPALIVE
int shoal_js_search(shoal_index *index, const float *query, uint32_t dim, uint32_t k,
                    const uint64_t *cells, const uint8_t *filter_bitmap,
                    uint32_t filter_bitmap_bits, const shoal_filter *where, uint32_t *labels,
                    float *distances) {
    shoal_search_params params;
    shoal_search_params_init(&params);
    uint32_t i = 0;
    SHOAL_SEARCH_PARAM_LIST(TAKE_SEARCH)
    params.filter_bitmap = filter_bitmap;
    params.filter_bitmap_bits = filter_bitmap_bits;
    params.where = where;
    return shoal_index_search(index, query, dim, k, &params, labels, distances);
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
