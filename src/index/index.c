/*
 * index.c -- the handle every index kind sits behind.
 *
 * This layer owns what all kinds share: parameter checks, input validation,
 * string ids and the labels they map to, insertion sequence numbers (which
 * break distance ties deterministically), the liveness bitmap and the free
 * list of labels.  A kind (flat.c, hnsw.c, ivf.c) sees only labels and
 * validated vectors.  Kinds that must be trained (IVF) get the raw batch
 * once more, last of all reservations, to train on it and to reserve their
 * lists (ops->prepare_add).
 *
 * Mutations validate the whole batch and reserve every byte they will need
 * before the first change, so a failing call leaves the index as it was.
 */
#include <math.h>
#include <stdio.h>

#include "codec/json.h"
#include "index/persist.h"

/* ------------------------------------------------------------- messages */

int shoal__fail(shoal_index *index, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    shoal__vmsg(index->errmsg, sizeof index->errmsg, code, fmt, ap);
    va_end(ap);
    return code;
}

/* --------------------------------------------------------------- params */

void shoal_params_init(shoal_params *params) { memset(params, 0, sizeof *params); }

void shoal_search_params_init(shoal_search_params *params) {
    memset(params, 0, sizeof *params);
}

static const shoal__kind_ops *kind_ops(shoal_kind kind) {
    switch (kind) {
    case SHOAL_KIND_FLAT:
        return &shoal__flat_ops;
    case SHOAL_KIND_HNSW:
        return &shoal__hnsw_ops;
    case SHOAL_KIND_IVF:
        return &shoal__ivf_ops;
    default:
        return NULL;
    }
}

/* Writes the reason for a rejected parameter to params->errmsg. */
static int param_fail(const shoal_params *params, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int param_fail(const shoal_params *params, int code, const char *fmt, ...) {
    if (!params || !params->errmsg || !params->errmsg_size) return code;
    va_list ap;
    va_start(ap, fmt);
    shoal__vmsg(params->errmsg, params->errmsg_size, code, fmt, ap);
    va_end(ap);
    return code;
}

int shoal_index_new(const shoal_params *params, shoal_index **out) {
    *out = NULL;
    if (!params) return SHOAL_EPARAM;
    if (params->errmsg && params->errmsg_size) params->errmsg[0] = '\0';
    if (params->dim == 0 || params->dim > SHOAL_DIM_MAX)
        return param_fail(params, SHOAL_EPARAM, "dim = %u; it must be 1..%u", params->dim,
                          SHOAL_DIM_MAX);
    if (!shoal_metric_word(params->metric))
        return param_fail(params, SHOAL_EPARAM, "metric = %u is unknown", (unsigned)params->metric);
    const shoal__kind_ops *ops = kind_ops(params->kind);
    if (!ops) return param_fail(params, SHOAL_EPARAM, "kind = %u is unknown", (unsigned)params->kind);
    if (!shoal_quantizer_word(params->quantizer))
        return param_fail(params, SHOAL_EPARAM, "quantizer = %u is unknown",
                          (unsigned)params->quantizer);
    if (params->rerank && params->quantizer == SHOAL_QUANTIZER_F32)
        return param_fail(params, SHOAL_EPARAM,
                          "rerank applies to sq8 and pq: an f32 index already holds float32");
    if (params->rerank > SHOAL__RERANK_MAX)
        return param_fail(params, SHOAL_EPARAM, "rerank = %u; the limit is %u", params->rerank,
                          SHOAL__RERANK_MAX);
    const shoal__kernels *kernels = shoal__kernels_get(params->simd);
    if (!kernels)
        return param_fail(params, SHOAL_EUNSUPPORTED, "simd %s cannot run on this machine",
                          shoal_simd_word(params->simd) ? shoal_simd_word(params->simd) : "(unknown)");

    shoal__mem mem;
    shoal__mem_init(&mem, params->allocator);
    shoal_index *index = shoal__calloc(&mem, 1, sizeof *index);
    if (!index) return param_fail(params, SHOAL_ENOMEM, "out of memory for the handle");
    index->mem = mem; /* already counts the handle itself */
    index->params = *params;
    index->params.allocator = NULL; /* copied into mem; the caller's may not outlive us */
    index->params.errmsg = NULL;
    index->params.errmsg_size = 0;
    index->ops = ops;
    index->kernels = kernels;
    shoal__rng_seed(&index->rng, params->seed ? params->seed : 0x5ea10a15u);
    int rc = ops->create(index);
    if (rc) {
        param_fail(params, rc, "%s", index->errmsg[0] ? index->errmsg : "out of memory");
        shoal_index_free(index);
        return rc;
    }
    *out = index;
    return SHOAL_OK;
}

void shoal_index_on_progress(shoal_index *index, shoal_progress_fn fn, void *ctx) {
    index->progress = fn;
    index->progress_ctx = ctx;
}

void shoal_index_stats(const shoal_index *index, shoal_stats *out) {
    memset(out, 0, sizeof *out);
    out->size = index->live;
    out->levels = 1;
    out->memory_bytes = index->mem.bytes;
    out->metadata_bytes = index->meta_bytes;
    for (uint32_t label = 0; label < index->label_bound && index->meta; label++)
        out->with_metadata += index->meta[label] != NULL;
    if (index->ops->stats) index->ops->stats(index, out);
}

int shoal_index_set_threads(shoal_index *index, uint32_t threads) {
    if (!index) return SHOAL_EPARAM;
    index->errmsg[0] = '\0';
    if (threads == 0 || threads > 64)
        return shoal__fail(index, SHOAL_EPARAM, "threads = %u; it must be 1..64", threads);
#if defined(__EMSCRIPTEN__) || defined(__wasi__)
    if (threads > 1)
        return shoal__fail(index, SHOAL_EUNSUPPORTED, "this build has no threads");
#endif
    index->threads = threads;
    return SHOAL_OK;
}

void shoal_index_free(shoal_index *index) {
    if (!index) return;
    if (index->refs) { /* shared: another owner still holds it */
        index->refs--;
        return;
    }
    shoal__lazy_free(index);
    if (index->kind_state) index->ops->destroy(index);
    if (!index->ids_borrowed && index->ids)
        for (uint32_t label = 0; label < index->label_bound; label++)
            shoal__free(&index->mem, index->ids[label]);
    if (!index->meta_borrowed && index->meta)
        for (uint32_t label = 0; label < index->label_bound; label++)
            shoal__free(&index->mem, index->meta[label]);
    shoal__free(&index->mem, index->ids);
    shoal__free(&index->mem, index->meta);
    shoal__free(&index->mem, index->times);
    shoal__free(&index->mem, index->seqs);
    shoal__free(&index->mem, index->alive);
    shoal__free(&index->mem, index->free_labels);
    shoal__free(&index->mem, index->idmap.slots);
    shoal__free(&index->mem, index->owned_bytes);
    shoal__mem mem = index->mem;
    shoal__free(&mem, index);
}

const char *shoal_index_errmsg(const shoal_index *index) { return index ? index->errmsg : ""; }
uint32_t shoal_index_dim(const shoal_index *index) { return index->params.dim; }
shoal_metric shoal_index_metric(const shoal_index *index) { return index->params.metric; }
shoal_kind shoal_index_kind(const shoal_index *index) { return index->params.kind; }
uint32_t shoal_index_size(const shoal_index *index) { return index->live; }
size_t shoal_index_memory_bytes(const shoal_index *index) { return index->mem.bytes; }
const char *shoal_index_simd_name(const shoal_index *index) { return index->kernels->name; }
uint32_t shoal_index_label_bound(const shoal_index *index) { return index->label_bound; }

/* --------------------------------------------------------------- id map */

/* Stored ids and metadata are a uint32 length followed by the bytes. */
static uint32_t stored_len(const char *stored) {
    uint32_t len;
    memcpy(&len, stored, sizeof len);
    return len;
}

static uint32_t stored_id_len(const char *stored) {
    uint32_t len;
    memcpy(&len, stored, sizeof len);
    return len;
}

static int id_equals(const char *stored, const char *id, uint32_t len) {
    return stored_id_len(stored) == len && memcmp(stored + sizeof len, id, len) == 0;
}

/* Slot in the map holding id, or the empty slot where it would go. */
static uint32_t idmap_find(const shoal_index *index, const char *id, uint32_t len) {
    const shoal__idmap *map = &index->idmap;
    uint32_t mask = map->cap - 1;
    uint32_t i = (uint32_t)shoal__hash_bytes(id, len) & mask;
    while (map->slots[i] != SHOAL_NO_LABEL && !id_equals(index->ids[map->slots[i]], id, len))
        i = (i + 1) & mask;
    return i;
}

static uint32_t idmap_lookup(const shoal_index *index, const char *id, uint32_t len) {
    if (index->idmap.cap == 0) return SHOAL_NO_LABEL;
    return index->idmap.slots[idmap_find(index, id, len)];
}

/* Keeps the load factor at or below 1/2. */
static int idmap_reserve(shoal_index *index, uint32_t count) {
    shoal__idmap *map = &index->idmap;
    uint64_t want = 16;
    while (want < 2 * (uint64_t)count) want *= 2;
    if (want <= map->cap) return SHOAL_OK;
    if (want > (1ull << 31)) return SHOAL_ETOOBIG;
    uint32_t *slots = shoal__alloc(&index->mem, (size_t)want * sizeof *slots);
    if (!slots) return SHOAL_ENOMEM;
    memset(slots, 0xff, (size_t)want * sizeof *slots);
    uint32_t *old = map->slots, old_cap = map->cap;
    map->slots = slots;
    map->cap = (uint32_t)want;
    for (uint32_t i = 0; i < old_cap; i++) {
        uint32_t label = old[i];
        if (label == SHOAL_NO_LABEL) continue;
        const char *stored = index->ids[label];
        map->slots[idmap_find(index, stored + 4, stored_id_len(stored))] = label;
    }
    shoal__free(&index->mem, old);
    return SHOAL_OK;
}

/* Removes the entry at slot i, shifting later entries of the probe run back
 * so lookups never need tombstones. */
static void idmap_remove_slot(shoal_index *index, uint32_t i) {
    shoal__idmap *map = &index->idmap;
    uint32_t mask = map->cap - 1;
    uint32_t j = i;
    for (;;) {
        map->slots[i] = SHOAL_NO_LABEL;
        uint32_t home;
        do {
            j = (j + 1) & mask;
            if (map->slots[j] == SHOAL_NO_LABEL) {
                map->count--;
                return;
            }
            const char *stored = index->ids[map->slots[j]];
            home = (uint32_t)shoal__hash_bytes(stored + 4, stored_id_len(stored)) & mask;
            /* Entry j may move to i only if its home is not in (i, j]. */
        } while (i <= j ? (i < home && home <= j) : (i < home || home <= j));
        map->slots[i] = map->slots[j];
        i = j;
    }
}

/* ------------------------------------------------------------ validation */

static int check_ids(shoal_index *index, uint32_t n, const char *id_bytes,
                     const uint32_t *id_offsets) {
    if (n && (!id_bytes || !id_offsets))
        return shoal__fail(index, SHOAL_EPARAM, "ids are NULL");
    for (uint32_t i = 0; i < n; i++) {
        if (id_offsets[i + 1] < id_offsets[i])
            return shoal__fail(index, SHOAL_EPARAM, "id offsets decrease at id %u", i);
        uint32_t len = id_offsets[i + 1] - id_offsets[i];
        if (len == 0) return shoal__fail(index, SHOAL_EID, "id %u is empty", i);
        if (len > SHOAL_ID_MAX)
            return shoal__fail(index, SHOAL_EID, "id %u is %u bytes; the limit is %u", i, len,
                               SHOAL_ID_MAX);
    }
    return SHOAL_OK;
}

/* Euclidean length, summed in double so huge components cannot overflow it. */
static double l2norm(const float *v, uint32_t dim) {
    double sum = 0.0;
    for (uint32_t j = 0; j < dim; j++) sum += (double)v[j] * v[j];
    return sqrt(sum);
}

/* Finite components; under cosine a direction, under l2 and ip a length of
 * at most SHOAL_LENGTH_MAX (so that every float32 distance and dot product
 * between two such vectors is finite). */
static int check_vector(shoal_index *index, const float *v, const char *what, uint32_t row) {
    uint32_t dim = index->params.dim;
    for (uint32_t j = 0; j < dim; j++)
        if (!isfinite(v[j]))
            return shoal__fail(index, SHOAL_EVECTOR, "%s %u has a non-finite component at %u",
                               what, row, j);
    double length = l2norm(v, dim);
    if (index->params.metric == SHOAL_METRIC_COSINE) {
        if (!(length > 0.0))
            return shoal__fail(index, SHOAL_EVECTOR,
                               "%s %u has zero length; cosine needs a direction", what, row);
    } else if (length > SHOAL_LENGTH_MAX) {
        return shoal__fail(index, SHOAL_EVECTOR,
                           "%s %u has length %.3g; under %s the limit is 2^62 (%.3g), past which "
                           "float32 distances could overflow", what, row, length,
                           shoal_metric_word(index->params.metric), SHOAL_LENGTH_MAX);
    }
    return SHOAL_OK;
}

void shoal__stored_form(const shoal_index *index, const float *v, float *out) {
    uint32_t dim = index->params.dim;
    if (index->params.metric == SHOAL_METRIC_COSINE && !index->input_stored) {
        double inv = 1.0 / l2norm(v, dim);
        for (uint32_t j = 0; j < dim; j++) out[j] = (float)(v[j] * inv);
    } else {
        memcpy(out, v, dim * sizeof *out);
    }
}

/* ------------------------------------------------------------- mutation */

/* Labels up to which the label capacity doubles; past it, it grows by a
 * sixteenth.  The rows (the bulk: a vector or graph node per label) grow in
 * chunks that never move (rowchunks.h), and reserving a doubled capacity of them
 * would itself need twice the memory: near wasm32's 4 GiB, a sixteenth more
 * is what still fits. */
#define LABEL_DOUBLING_MAX (1u << 20)

/* *array (elem-byte items) to cap items, contents kept. */
static int grow_to(shoal_index *index, void **array, uint32_t cap, size_t elem) {
    if ((size_t)cap > SIZE_MAX / elem) return SHOAL_ENOMEM;
    void *fresh = shoal__realloc(&index->mem, *array, (size_t)cap * elem);
    if (!fresh) return SHOAL_ENOMEM;
    *array = fresh;
    return SHOAL_OK;
}

static int reserve_labels(shoal_index *index, uint32_t need) {
    if (need <= index->label_cap) return SHOAL_OK;
    uint64_t want = index->label_cap ? index->label_cap : 16;
    while (want < need) want += want < LABEL_DOUBLING_MAX ? want : want / 16;
    uint32_t cap = want > UINT32_MAX ? UINT32_MAX : (uint32_t)want;
    int rc;
    /* Each array grows to the same capacity; a failure part-way leaves some
     * larger than label_cap, which is harmless. */
    if ((rc = grow_to(index, (void **)&index->ids, cap, sizeof *index->ids)) ||
        (rc = grow_to(index, (void **)&index->seqs, cap, sizeof *index->seqs)) ||
        (rc = grow_to(index, (void **)&index->meta, cap, sizeof *index->meta)) ||
        (rc = grow_to(index, (void **)&index->times, cap, sizeof *index->times)))
        return rc;
    for (uint32_t i = index->label_cap; i < cap; i++) index->meta[i] = NULL;
    uint8_t *alive = shoal__realloc(&index->mem, index->alive, ((size_t)cap + 7) / 8);
    if (!alive) return SHOAL_ENOMEM;
    size_t old_bytes = ((size_t)index->label_cap + 7) / 8;
    memset(alive + old_bytes, 0, ((size_t)cap + 7) / 8 - old_bytes);
    index->alive = alive;
    if ((rc = index->ops->reserve(index, cap))) return rc;
    index->label_cap = cap;
    return SHOAL_OK;
}

static void set_alive(shoal_index *index, uint32_t label, int alive) {
    if (alive)
        index->alive[label >> 3] |= (uint8_t)(1u << (label & 7));
    else
        index->alive[label >> 3] &= (uint8_t) ~(1u << (label & 7));
}

/* The common layer's part of deleting the record at label, once the kind
 * has removed it (its id-map slot already gone or re-pointed).  Cannot
 * fail: the free list has room for every label ever handed out. */
static void forget_record(shoal_index *index, uint32_t label) {
    shoal__free(&index->mem, index->ids[label]);
    index->ids[label] = NULL;
    if (index->meta[label]) {
        index->meta_bytes -= stored_len(index->meta[label]);
        if (!index->meta_borrowed) shoal__free(&index->mem, index->meta[label]);
        index->meta[label] = NULL;
    }
    set_alive(index, label, 0);
    index->live--;
    index->free_labels[index->free_count++] = label;
}

static int check_dim(shoal_index *index, const char *what, uint32_t dim) {
    if (dim == index->params.dim) return SHOAL_OK;
    return shoal__fail(index, SHOAL_EDIM, "%s has %u dimensions; the index has %u", what, dim,
                       index->params.dim);
}

/* Refuses a call while another call on the handle runs (a callback of
 * that call re-entering the index): it would change what the running call
 * holds pointers into. */
static int check_idle(shoal_index *index, const char *what) {
    if (!index->busy) return SHOAL_OK;
    return shoal__fail(index, SHOAL_ESTATE, "%s called while another call on this index runs "
                                            "(from one of its callbacks)", what);
}

static int check_writable(shoal_index *index, const char *what) {
    int rc = check_idle(index, what);
    if (rc) return rc;
    if (index->view)
        return shoal__fail(index, SHOAL_ESTATE,
                           "the index is a read-only view of a segment; load it to change it");
    if (index->rows_external)
        return shoal__fail(index, SHOAL_ESTATE,
                           "the index's rerank rows are outside it (rerank_external): load the "
                           "segment without that option to change it");
    return SHOAL_OK;
}

/* Marks, for each of n ids, whether it is the last occurrence of its id in
 * the batch (later duplicates win, as if the batch were applied in order).
 * Returns the number of distinct ids, or SHOAL_ENOMEM. */
static int last_occurrences(shoal_index *index, uint32_t n, const char *id_bytes,
                            const uint32_t *id_offsets, uint8_t *keep) {
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)n) cap *= 2;
    if (cap > SIZE_MAX / sizeof(uint32_t)) return SHOAL_ENOMEM;
    uint32_t *slots = shoal__alloc(&index->mem, (size_t)cap * sizeof *slots);
    if (!slots) return SHOAL_ENOMEM;
    memset(slots, 0xff, (size_t)cap * sizeof *slots);
    uint32_t mask = (uint32_t)cap - 1, distinct = 0;
    for (uint32_t i = n; i-- > 0;) {
        const char *id = id_bytes + id_offsets[i];
        uint32_t len = id_offsets[i + 1] - id_offsets[i];
        uint32_t h = (uint32_t)shoal__hash_bytes(id, len) & mask;
        keep[i] = 1;
        for (; slots[h] != UINT32_MAX; h = (h + 1) & mask) {
            uint32_t j = slots[h];
            if (id_offsets[j + 1] - id_offsets[j] == len &&
                !memcmp(id_bytes + id_offsets[j], id, len)) {
                keep[i] = 0;
                break;
            }
        }
        if (keep[i]) {
            slots[h] = i;
            distinct++;
        }
    }
    shoal__free(&index->mem, slots);
    return (int)distinct;
}

/*
 * Adds or replaces records.  The plan, so that a failure anywhere leaves
 * the index exactly as it was:
 *   1. validate every id and vector;
 *   2. reserve everything the common layer will need (label tables, free
 *      list, id map, id copies) -- only the last occurrence of an id in the
 *      batch is written;
 *   3. open a kind transaction and let the kind prepare (IVF trains and
 *      reserves its lists);
 *   4. insert every new version at a fresh label -- the old version of a
 *      replaced id stays in the index meanwhile;
 *   5. remove the replaced old versions from the kind;
 *   6. commit the kind, then switch the common layer over (ids, id map,
 *      sequence numbers, liveness, free list), which cannot fail.
 * Steps 4 and 5 may fail (HNSW allocates links); then the kind aborts --
 * HNSW restores its graph from its journal -- and the common layer, which
 * has not changed yet, only takes its labels back.
 */
/* A record's metadata as a stored blob (u32 length + canonical DAG-CBOR),
 * or NULL for none; 0 or an error with the index's message set. */
static int encode_metadata(shoal_index *index, const shoal_records *r, uint32_t i, char **blob) {
    *blob = NULL;
    if (!r->metadata || !r->metadata_offsets) return SHOAL_OK;
    uint32_t at = r->metadata_offsets[i], end = r->metadata_offsets[i + 1];
    if (end < at)
        return shoal__fail(index, SHOAL_EPARAM, "record %u: metadata offsets decrease", i);
    if (end == at) return SHOAL_OK;
    const char *text = r->metadata + at;
    size_t len = end - at;
    char msg[200] = "";
    int rc;
    shoal__cbor_out out;
    shoal__cbor_out_init(&out, &index->mem, 4 + (size_t)SHOAL_METADATA_MAX);
    uint8_t zero[4] = {0};
    shoal__cbor_raw(&out, zero, 4); /* the length, filled in below */
    if (r->metadata_cbor) {
        shoal__cbor_limits lim = {SHOAL_METADATA_DEPTH, 0, 0, 0, 1};
        if (len > SHOAL_METADATA_MAX) {
            rc = SHOAL_ETOOBIG;
            snprintf(msg, sizeof msg, "%zu bytes; the limit is %u", len, SHOAL_METADATA_MAX);
        } else if (!(rc = shoal__cbor_check((const uint8_t *)text, len, &lim, msg, sizeof msg))) {
            shoal__cbor_raw(&out, text, len);
            rc = out.error;
        } else {
            rc = SHOAL_EPARAM;
        }
    } else {
        rc = shoal__json_to_cbor(text, len, SHOAL_METADATA_DEPTH, &out, msg, sizeof msg);
        if (!rc && out.buf[4] >> 5 != SHOAL__CBOR_MAP) {
            if (out.len == 5 && out.buf[4] == (SHOAL__CBOR_SIMPLE << 5 | SHOAL__CBOR_NULL)) {
                shoal__cbor_out_free(&out); /* null: no metadata */
                return SHOAL_OK;
            }
            rc = SHOAL_EPARAM;
            snprintf(msg, sizeof msg, "metadata must be a JSON object (or null)");
        }
    }
    if (rc) {
        shoal__cbor_out_free(&out);
        if (rc == SHOAL_ENOMEM) return shoal__fail(index, rc, "out of memory for metadata");
        return shoal__fail(index, rc, "record %u: %s", i, msg);
    }
    uint32_t size = (uint32_t)(out.len - 4);
    memcpy(out.buf, &size, 4);
    *blob = (char *)out.buf;
    return SHOAL_OK;
}

int shoal__records_check(shoal_index *index, const shoal_records *r,
                         int (*each)(void *ctx, uint32_t i, const uint8_t *meta, uint32_t len),
                         void *ctx) {
    int rc;
    index->errmsg[0] = '\0';
    if (!r) return shoal__fail(index, SHOAL_EPARAM, "records is NULL");
    if ((rc = check_dim(index, "each vector", r->dim))) return rc;
    if ((rc = check_ids(index, r->n, r->id_bytes, r->id_offsets))) return rc;
    if (r->n && !r->vectors) return shoal__fail(index, SHOAL_EPARAM, "vectors are NULL");
    if (r->n > INT32_MAX) return shoal__fail(index, SHOAL_ETOOBIG, "batch of %u records", r->n);
    for (uint32_t i = 0; i < r->n; i++)
        if ((rc = check_vector(index, r->vectors + (size_t)i * r->dim, "vector", i))) return rc;
    for (uint32_t i = 0; i < r->n; i++) {
        char *blob;
        if ((rc = encode_metadata(index, r, i, &blob))) return rc;
        rc = each(ctx, i, blob ? (const uint8_t *)blob + 4 : NULL, blob ? stored_len(blob) : 0);
        shoal__free(&index->mem, blob);
        if (rc) return rc;
    }
    return SHOAL_OK;
}

int shoal_index_add(shoal_index *index, uint32_t n, const char *id_bytes,
                    const uint32_t *id_offsets, const float *vectors, uint32_t dim) {
    shoal_records r;
    memset(&r, 0, sizeof r);
    r.n = n;
    r.id_bytes = id_bytes;
    r.id_offsets = id_offsets;
    r.vectors = vectors;
    r.dim = dim;
    return shoal_index_upsert(index, &r);
}

int shoal_index_upsert(shoal_index *index, const shoal_records *records) {
    int rc;
    index->errmsg[0] = '\0';
    if ((rc = check_writable(index, "add"))) return rc;
    if (!records) return shoal__fail(index, SHOAL_EPARAM, "records is NULL");
    uint32_t n = records->n, vector_dim = records->dim;
    const char *id_bytes = records->id_bytes;
    const uint32_t *id_offsets = records->id_offsets;
    const float *vectors = records->vectors;
    const uint64_t *seqs = records->seqs;
    const int64_t *times = records->times;
    if ((rc = check_dim(index, "each vector", vector_dim))) return rc;
    if ((rc = check_ids(index, n, id_bytes, id_offsets))) return rc;
    if (n && !vectors) return shoal__fail(index, SHOAL_EPARAM, "vectors are NULL");
    if (n > INT32_MAX) return shoal__fail(index, SHOAL_ETOOBIG, "batch of %u records", n);
    uint32_t dim = index->params.dim;
    for (uint32_t i = 0; i < n; i++)
        if ((rc = check_vector(index, vectors + (size_t)i * dim, "vector", i))) return rc;
    if ((uint64_t)index->label_bound + n >= SHOAL_NO_LABEL)
        return shoal__fail(index, SHOAL_ETOOBIG, "more than %u records", SHOAL_NO_LABEL - 1);
    for (uint32_t i = 0; seqs && i < n; i++)
        if (seqs[i] < (i ? seqs[i - 1] + 1 : index->next_seq) || seqs[i] == UINT64_MAX)
            return shoal__fail(index, SHOAL_EPARAM,
                               "record %u: sequence number %llu is not above %llu", i,
                               (unsigned long long)seqs[i],
                               (unsigned long long)(i ? seqs[i - 1] : index->next_seq - 1));

    /* 2. Reservations.  (The PRNG is part of the state too: HNSW draws
     * levels from it, and a failed call must not have advanced it.) */
    shoal__rng rng_before = index->rng;
    uint32_t need = index->label_bound + n;
    uint8_t *keep = shoal__alloc(&index->mem, n ? n : 1);
    char **fresh_ids = shoal__calloc(&index->mem, n ? n : 1, sizeof *fresh_ids);
    char **fresh_meta = shoal__calloc(&index->mem, n ? n : 1, sizeof *fresh_meta);
    uint32_t *labels = shoal__alloc(&index->mem, (n ? n : 1) * sizeof *labels);
    uint32_t *old = shoal__alloc(&index->mem, (n ? n : 1) * sizeof *old);
    float *stored = shoal__alloc(&index->mem, dim * sizeof *stored);
    float *rows = NULL; /* the kept vectors, when duplicates were dropped */
    const float *batch = vectors;
    int began = 0, msg_set = 0, m = 0; /* msg_set: the failure's message is written */
    uint32_t inserted = 0;
    rc = !keep || !fresh_ids || !fresh_meta || !labels || !old || !stored ? SHOAL_ENOMEM : SHOAL_OK;
    if (!rc && (m = last_occurrences(index, n, id_bytes, id_offsets, keep)) < 0) rc = m;
    if (!rc) rc = reserve_labels(index, need);
    if (!rc)
        rc = shoal__grow(&index->mem, (void **)&index->free_labels, &index->free_cap, need,
                         sizeof *index->free_labels);
    if (!rc) rc = idmap_reserve(index, index->live + (uint32_t)m);
    for (uint32_t i = 0; i < n && !rc; i++) {
        if (!keep[i]) continue;
        uint32_t len = id_offsets[i + 1] - id_offsets[i];
        fresh_ids[i] = shoal__alloc(&index->mem, sizeof len + len);
        if (!fresh_ids[i]) {
            rc = SHOAL_ENOMEM;
            break;
        }
        memcpy(fresh_ids[i], &len, sizeof len);
        memcpy(fresh_ids[i] + sizeof len, id_bytes + id_offsets[i], len);
        if ((rc = encode_metadata(index, records, i, &fresh_meta[i]))) msg_set = 1;
    }
    if (!rc && (uint32_t)m != n) {
        rows = shoal__alloc(&index->mem, (size_t)m * dim * sizeof *rows);
        if (!rows) rc = SHOAL_ENOMEM;
        for (uint32_t i = 0, j = 0; i < n && !rc; i++)
            if (keep[i]) memcpy(rows + (size_t)j++ * dim, vectors + (size_t)i * dim, dim * sizeof *rows);
        batch = rows;
    }
    /* 3. The kind's transaction, and its preparation (last: it may train). */
    if (!rc && index->ops->begin) {
        if ((rc = index->ops->begin(index))) msg_set = 1;
    }
    began = !rc;
    if (!rc && index->ops->prepare_add && (rc = index->ops->prepare_add(index, (uint32_t)m, batch)))
        msg_set = 1;
    if (rc) goto fail;

    /* 4. Insert the new versions at fresh labels (the free list is popped
     * without being overwritten, so an abort can push the labels back). */
    uint32_t free_before = index->free_count, bound_before = index->label_bound;
    uint32_t done = 0; /* batch rows handled, for progress */
    index->busy++;
    for (uint32_t i = 0; i < n; i++) {
        if (!keep[i]) continue;
        uint32_t label = index->free_count ? index->free_labels[--index->free_count]
                                           : index->label_bound++;
        shoal__stored_form(index, vectors + (size_t)i * dim, stored);
        if ((rc = index->ops->insert(index, label, stored))) {
            msg_set = 1;
            index->busy--;
            goto undo;
        }
        labels[inserted++] = label;
        done = i + 1;
        if (index->progress && (inserted % 1024 == 0 || inserted == (uint32_t)m) &&
            index->progress(index->progress_ctx, inserted, (uint32_t)m))
            break; /* stop: the records inserted so far are kept */
    }
    index->busy--;
    if (index->ops->insert_done && (rc = index->ops->insert_done(index))) {
        msg_set = 1;
        goto undo;
    }

    /* 5. Remove the old versions the inserted records replace. */
    for (uint32_t i = 0, j = 0; i < done; i++) {
        if (!keep[i]) continue;
        uint32_t len = id_offsets[i + 1] - id_offsets[i];
        old[j] = idmap_lookup(index, id_bytes + id_offsets[i], len);
        if (old[j] != SHOAL_NO_LABEL && (rc = index->ops->remove(index, old[j]))) {
            msg_set = 1;
            goto undo;
        }
        j++;
    }

    /* 6. Commit: nothing below can fail. */
    if (index->ops->commit) index->ops->commit(index);
    for (uint32_t i = 0, j = 0; i < done; i++) {
        if (!keep[i]) continue;
        const char *id = id_bytes + id_offsets[i];
        uint32_t len = id_offsets[i + 1] - id_offsets[i];
        uint32_t label = labels[j], was = old[j];
        j++;
        /* Find the slot while the old version's id is still there to match. */
        uint32_t slot = idmap_find(index, id, len);
        if (index->idmap.slots[slot] == SHOAL_NO_LABEL) index->idmap.count++;
        index->idmap.slots[slot] = label;
        index->ids[label] = fresh_ids[i];
        fresh_ids[i] = NULL;
        index->meta[label] = fresh_meta[i];
        if (fresh_meta[i]) index->meta_bytes += stored_len(fresh_meta[i]);
        fresh_meta[i] = NULL;
        index->times[label] = times ? times[i] : SHOAL_TIME_NONE;
        if (was != SHOAL_NO_LABEL) forget_record(index, was);
        index->seqs[label] = seqs ? seqs[i] : index->next_seq;
        index->next_seq = index->seqs[label] + 1;
        set_alive(index, label, 1);
        index->live++;
    }
    rc = (int)inserted;
    goto done;

undo:
    /* The kind puts itself back; the common layer has only handed out
     * labels: return them in the order they were taken. */
    if (index->ops->abort) index->ops->abort(index, labels, inserted);
    index->label_bound = bound_before;
    index->free_count = free_before;
    began = 0;
fail:
    if (began && index->ops->abort) index->ops->abort(index, labels, 0);
    index->rng = rng_before;
    if (!msg_set) {
        if (rc == SHOAL_ETOOBIG) rc = shoal__fail(index, rc, "id map would exceed 2^31 slots");
        else rc = shoal__fail(index, rc, "out of memory adding %u records", n);
    } else if (!index->errmsg[0]) {
        rc = shoal__fail(index, rc, "out of memory adding %u records (the index is unchanged)", n);
    }
done:
    if (fresh_ids)
        for (uint32_t i = 0; i < n; i++) shoal__free(&index->mem, fresh_ids[i]);
    if (fresh_meta)
        for (uint32_t i = 0; i < n; i++) shoal__free(&index->mem, fresh_meta[i]);
    shoal__free(&index->mem, fresh_ids);
    shoal__free(&index->mem, fresh_meta);
    shoal__free(&index->mem, keep);
    shoal__free(&index->mem, labels);
    shoal__free(&index->mem, old);
    shoal__free(&index->mem, stored);
    shoal__free(&index->mem, rows);
    return rc;
}

int shoal_index_train(shoal_index *index, uint32_t n, const float *vectors, uint32_t vector_dim) {
    int rc;
    index->errmsg[0] = '\0';
    if ((rc = check_writable(index, "train"))) return rc;
    if (!index->ops->train)
        return shoal__fail(index, SHOAL_EUNSUPPORTED, "a %s index needs no training",
                           index->ops->name);
    if ((rc = check_dim(index, "each vector", vector_dim))) return rc;
    if (n == 0 || !vectors)
        return shoal__fail(index, SHOAL_EPARAM, "training needs vectors (n = %u)", n);
    uint32_t dim = index->params.dim;
    for (uint32_t i = 0; i < n; i++)
        if ((rc = check_vector(index, vectors + (size_t)i * dim, "vector", i))) return rc;
    return index->ops->train(index, n, vectors);
}

int shoal_index_trained(const shoal_index *index) {
    return index->ops->trained ? index->ops->trained(index) : 1;
}

/* Deletes as a transaction too: the kind removes every found record (HNSW
 * may fail part-way and aborts), then the common layer forgets them. */
int shoal_index_delete(shoal_index *index, uint32_t n, const char *id_bytes,
                       const uint32_t *id_offsets) {
    int rc;
    index->errmsg[0] = '\0';
    if ((rc = check_writable(index, "delete"))) return rc;
    if ((rc = check_ids(index, n, id_bytes, id_offsets))) return rc;
    if (n == 0 || index->live == 0) return 0;
    uint32_t *found = shoal__alloc(&index->mem, (size_t)n * sizeof *found);
    uint8_t *seen = shoal__calloc(&index->mem, ((size_t)index->label_bound + 7) / 8, 1);
    uint32_t count = 0;
    if (!found || !seen) {
        rc = shoal__fail(index, SHOAL_ENOMEM, "out of memory deleting %u records", n);
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t label = idmap_lookup(index, id_bytes + id_offsets[i], id_offsets[i + 1] - id_offsets[i]);
        if (label == SHOAL_NO_LABEL || (seen[label >> 3] >> (label & 7) & 1)) continue;
        seen[label >> 3] |= (uint8_t)(1u << (label & 7));
        found[count++] = label;
    }
    if (index->ops->begin && (rc = index->ops->begin(index))) goto done;
    for (uint32_t i = 0; i < count; i++)
        if ((rc = index->ops->remove(index, found[i]))) {
            if (index->ops->abort) index->ops->abort(index, NULL, 0);
            rc = shoal__fail(index, rc, "out of memory deleting record %u of %u (the index is "
                                        "unchanged)", i, count);
            goto done;
        }
    if (index->ops->commit) index->ops->commit(index);
    for (uint32_t i = 0; i < count; i++) {
        const char *stored = index->ids[found[i]];
        idmap_remove_slot(index, idmap_find(index, stored + 4, stored_id_len(stored)));
        forget_record(index, found[i]);
    }
    rc = (int)count;
done:
    shoal__free(&index->mem, found);
    shoal__free(&index->mem, seen);
    return rc;
}

/* --------------------------------------------------------------- lookup */

int shoal_index_label_of(const shoal_index *index, const char *id, uint32_t id_len) {
    uint32_t label = id_len ? idmap_lookup(index, id, id_len) : SHOAL_NO_LABEL;
    return label == SHOAL_NO_LABEL ? SHOAL_ENOTFOUND : (int)label;
}

int shoal_index_label_id(const shoal_index *index, uint32_t label, const char **id) {
    /* An index opened from its head (shoal_index_open_head) has live labels
     * whose records arrive with their list: no id yet, so not found. */
    if (!shoal__is_alive(index, label) || !index->ids[label]) return SHOAL_ENOTFOUND;
    *id = index->ids[label] + sizeof(uint32_t);
    return (int)stored_id_len(index->ids[label]);
}

int shoal_index_metadata(const shoal_index *index, uint32_t label, const uint8_t **bytes) {
    if (!shoal__is_alive(index, label)) return SHOAL_ENOTFOUND;
    const char *m = index->meta[label];
    *bytes = m ? (const uint8_t *)m + 4 : NULL;
    return m ? (int)stored_len(m) : 0;
}

int shoal_index_record_info(const shoal_index *index, uint32_t label, int64_t *time,
                            uint64_t *seq) {
    if (!shoal__is_alive(index, label)) return SHOAL_ENOTFOUND;
    if (time) *time = index->times[label];
    if (seq) *seq = index->seqs[label];
    return SHOAL_OK;
}

int shoal_index_metadata_json(shoal_index *index, uint32_t n, const uint32_t *labels, char **out,
                              size_t *size) {
    *out = NULL;
    *size = 0;
    shoal__cbor_out json;
    shoal__cbor_out_init(&json, &index->mem, 0);
    shoal__cbor_raw(&json, "[", 1);
    for (uint32_t i = 0; i < n; i++) {
        if (i) shoal__cbor_raw(&json, ",", 1);
        const char *m = shoal__is_alive(index, labels[i]) ? index->meta[labels[i]] : NULL;
        if (m) shoal__cbor_to_json((const uint8_t *)m + 4, &json);
        else shoal__cbor_raw(&json, "null", 4);
    }
    shoal__cbor_raw(&json, "]", 1);
    if (json.error) {
        shoal__cbor_out_free(&json);
        return shoal__fail(index, json.error, "out of memory writing metadata as JSON");
    }
    *out = (char *)json.buf;
    *size = json.len;
    return SHOAL_OK;
}

void shoal_index_free_bytes(shoal_index *index, void *bytes) { shoal__free(&index->mem, bytes); }

int shoal_index_metadata_fields(shoal_index *index, shoal_field_info *out, uint32_t cap) {
    shoal_field_info *seen = NULL;
    uint32_t n = 0, seen_cap = 0;
    for (uint32_t label = 0; label < index->label_bound; label++) {
        const char *m = shoal__is_alive(index, label) ? index->meta[label] : NULL;
        if (!m) continue;
        shoal__cbor_item map;
        shoal__cbor_item_at((const uint8_t *)m + 4, &map);
        const uint8_t *p = map.data;
        for (uint64_t i = 0; i < map.arg; i++) {
            shoal__cbor_item key, value;
            shoal__cbor_item_at(p, &key);
            shoal__cbor_item_at(key.end, &value);
            uint32_t type = value.major <= SHOAL__CBOR_NINT ? SHOAL_FIELD_NUMBER
                          : value.major == SHOAL__CBOR_TEXT ? SHOAL_FIELD_STRING
                          : value.major == SHOAL__CBOR_ARRAY ? SHOAL_FIELD_ARRAY
                          : value.major == SHOAL__CBOR_MAP ? SHOAL_FIELD_OBJECT
                          : (key.end[0] & 31) == SHOAL__CBOR_FLOAT64 ? SHOAL_FIELD_NUMBER
                          : value.arg == SHOAL__CBOR_NULL ? SHOAL_FIELD_NULL : SHOAL_FIELD_BOOLEAN;
            uint32_t f = 0;
            while (f < n && !(seen[f].name_len == key.arg &&
                              !memcmp(seen[f].name, key.data, (size_t)key.arg)))
                f++;
            if (f == n) {
                if (n == SHOAL_FILTER_NODES) goto next;
                if (shoal__grow(&index->mem, (void **)&seen, &seen_cap, n + 1, sizeof *seen)) {
                    shoal__free(&index->mem, seen);
                    return shoal__fail(index, SHOAL_ENOMEM, "out of memory listing fields");
                }
                seen[n].name = (const char *)key.data;
                seen[n].name_len = (uint32_t)key.arg;
                seen[n].count = 0;
                seen[n].types = 0;
                n++;
            }
            seen[f].count++;
            seen[f].types |= type;
        next:
            p = value.end;
        }
    }
    for (uint32_t f = 0; f < n && f < cap; f++) out[f] = seen[f];
    shoal__free(&index->mem, seen);
    return (int)n;
}

int shoal_index_get(shoal_index *index, const char *id, uint32_t id_len, float *out) {
    index->errmsg[0] = '\0';
    if (id_len == 0 || id_len > SHOAL_ID_MAX || !id)
        return shoal__fail(index, SHOAL_EID, "an id has 1..%u bytes, not %u", SHOAL_ID_MAX, id_len);
    int label = shoal_index_label_of(index, id, id_len);
    if (label < 0) return shoal__fail(index, label, "no record with id '%.*s'", (int)(id_len > 64 ? 64 : id_len), id);
    memcpy(out, index->ops->vector(index, (uint32_t)label), index->params.dim * sizeof *out);
    return SHOAL_OK;
}

/* --------------------------------------------------------------- search */

/* The candidate-list sizes a search is given: none below k. */
static int check_depths(shoal_index *index, const shoal_search_params *params, uint32_t k) {
    if (params && params->ef && params->ef < k)
        return shoal__fail(index, SHOAL_EPARAM, "ef = %u is below k = %u", params->ef, k);
    if (params && params->rerank && params->rerank < k)
        return shoal__fail(index, SHOAL_EPARAM, "rerank = %u is below k = %u", params->rerank, k);
    return SHOAL_OK;
}

int shoal_index_search(shoal_index *index, const float *query, uint32_t query_dim, uint32_t k,
                       const shoal_search_params *params, uint32_t *labels,
                       float *distances) {
    int rc;
    index->errmsg[0] = '\0';
    if ((rc = check_idle(index, "search"))) return rc;
    if ((rc = check_dim(index, "the query", query_dim))) return rc;
    if (k == 0 || k > SHOAL_K_MAX)
        return shoal__fail(index, SHOAL_EPARAM, "k = %u; it must be 1..%u", k, SHOAL_K_MAX);
    if (!query || !labels || !distances)
        return shoal__fail(index, SHOAL_EPARAM, "query or result arrays are NULL");
    if ((rc = check_depths(index, params, k))) return rc;
    if ((rc = check_vector(index, query, "query", 0))) return rc;

    uint32_t dim = index->params.dim;
    uint32_t keep = k < index->live ? k : index->live;
    shoal__topk topk = {NULL, keep, 0};
    float *q = shoal__alloc(&index->mem, dim * sizeof *q);
    topk.hits = shoal__alloc(&index->mem, (keep ? keep : 1) * sizeof *topk.hits);
    if (!q || !topk.hits) {
        rc = shoal__fail(index, SHOAL_ENOMEM, "out of memory for search scratch");
        goto done;
    }
    shoal__stored_form(index, query, q);
    index->busy++; /* the filter callback may call back in */
    rc = keep ? index->ops->search(index, q, &topk, params) : SHOAL_OK;
    index->busy--;
    if (rc) goto done;
    shoal__topk_sort(&topk);
    for (uint32_t i = 0; i < topk.count; i++) {
        labels[i] = topk.hits[i].label;
        distances[i] = topk.hits[i].distance;
    }
    rc = (int)topk.count;
done:
    shoal__free(&index->mem, q);
    shoal__free(&index->mem, topk.hits);
    return rc;
}

/* ------------------------------------------------- external rerank rows */

/* The checks shoal_index_search makes, for the two phases. */
static int check_query(shoal_index *index, const char *what, const float *query,
                       uint32_t query_dim, uint32_t k) {
    int rc;
    if ((rc = check_idle(index, what))) return rc;
    if ((rc = check_dim(index, "the query", query_dim))) return rc;
    if (k == 0 || k > SHOAL_K_MAX)
        return shoal__fail(index, SHOAL_EPARAM, "k = %u; it must be 1..%u", k, SHOAL_K_MAX);
    if (!query) return shoal__fail(index, SHOAL_EPARAM, "query is NULL");
    if ((rc = check_vector(index, query, "query", 0))) return rc;
    if (!index->rows_external || !index->ops->candidates)
        return shoal__fail(index, SHOAL_ESTATE,
                           "the index keeps its rerank rows (or has none): search it with "
                           "shoal_index_search");
    return SHOAL_OK;
}

int shoal_index_search_candidates(shoal_index *index, const float *query, uint32_t query_dim,
                                  uint32_t k, const shoal_search_params *params,
                                  shoal_candidate *out, uint32_t cap) {
    index->errmsg[0] = '\0';
    int rc = check_query(index, "search_candidates", query, query_dim, k);
    if (rc) return rc;
    if (cap && !out) return shoal__fail(index, SHOAL_EPARAM, "out is NULL");
    if ((rc = check_depths(index, params, k))) return rc;
    if (!index->live) return 0;
    float *q = shoal__alloc(&index->mem, index->params.dim * sizeof *q);
    if (!q) return shoal__fail(index, SHOAL_ENOMEM, "out of memory for the query");
    shoal__stored_form(index, query, q);
    index->busy++; /* the filter callback may call back in */
    rc = index->ops->candidates(index, q, k, params, out, cap);
    index->busy--;
    shoal__free(&index->mem, q);
    return rc;
}

int shoal_index_rerank_rows(shoal_index *index, const float *query, uint32_t query_dim,
                            uint32_t k, uint32_t n, const uint32_t *labels, const uint8_t *rows,
                            uint32_t *out_labels, float *out_distances) {
    index->errmsg[0] = '\0';
    int rc = check_query(index, "rerank_rows", query, query_dim, k);
    if (rc) return rc;
    if ((n && (!labels || !rows)) || !out_labels || !out_distances)
        return shoal__fail(index, SHOAL_EPARAM, "labels, rows or result arrays are NULL");
    uint32_t dim = index->params.dim, keep = k < n ? k : n;
    shoal__topk topk = {NULL, keep, 0};
    float *q = shoal__alloc(&index->mem, 2 * (size_t)dim * sizeof *q), *row = q + dim;
    topk.hits = shoal__alloc(&index->mem, (keep ? keep : 1) * sizeof *topk.hits);
    if (!q || !topk.hits) {
        rc = shoal__fail(index, SHOAL_ENOMEM, "out of memory for rerank scratch");
        goto done;
    }
    shoal__stored_form(index, query, q);
    /* The exact distances, pushed in the order given: what a search with
     * the rows in memory computes from its copies. */
    for (uint32_t i = 0; i < n && keep; i++) {
        uint32_t label = labels[i];
        if (!index->ops->reranks(index, label)) {
            rc = shoal__fail(index, SHOAL_EPARAM, "candidate %u: label %u is not a record of the "
                             "index%s", i, label, index->lazy ? "'s attached lists" : "");
            goto done;
        }
        const uint8_t *raw = rows + (size_t)i * dim * 4;
        if (shoal__first_nonfinite(raw, dim) != dim) {
            rc = shoal__fail(index, SHOAL_ECORRUPT,
                             "candidate %u (label %u): its row has a NaN or infinite value", i,
                             label);
            goto done;
        }
        shoal__get_u32s(row, raw, dim);
        shoal__topk_push(&topk, shoal__distance(index, q, row), index->seqs[label], label);
    }
    shoal__topk_sort(&topk);
    for (uint32_t i = 0; i < topk.count; i++) {
        out_labels[i] = topk.hits[i].label;
        out_distances[i] = topk.hits[i].distance;
    }
    rc = (int)topk.count;
done:
    shoal__free(&index->mem, q);
    shoal__free(&index->mem, topk.hits);
    return rc;
}

int shoal_index_lists_wanted(shoal_index *index, const float *query, uint32_t query_dim,
                             const shoal_search_params *params, uint32_t *lists, uint32_t cap) {
    int rc;
    index->errmsg[0] = '\0';
    if ((rc = check_idle(index, "lists_wanted"))) return rc;
    if ((rc = check_dim(index, "the query", query_dim))) return rc;
    if (!query || (cap && !lists)) return shoal__fail(index, SHOAL_EPARAM, "query or lists is NULL");
    if ((rc = check_vector(index, query, "query", 0))) return rc;
    if (!index->lazy || !index->ops->wanted) return 0;
    float *q = shoal__alloc(&index->mem, index->params.dim * sizeof *q);
    if (!q) return shoal__fail(index, SHOAL_ENOMEM, "out of memory for the query");
    shoal__stored_form(index, query, q);
    index->busy++; /* a filter callback may call back in */
    rc = index->ops->wanted(index, q, params, lists, cap);
    index->busy--;
    shoal__free(&index->mem, q);
    return rc;
}

static uint32_t popcount8(uint32_t x) {
    uint32_t n = 0;
    for (; x; x &= x - 1) n++;
    return n;
}

uint32_t shoal__estimate_matches(const shoal_index *index, const shoal_search_params *params) {
    uint32_t bound = index->label_bound;
    if (params->filter_bitmap && !params->filter && !params->where) {
        uint32_t bits = params->filter_bitmap_bits < bound ? params->filter_bitmap_bits : bound;
        uint32_t count = 0;
        for (uint32_t byte = 0; byte < bits / 8; byte++)
            count += popcount8(params->filter_bitmap[byte] & index->alive[byte]);
        for (uint32_t label = bits & ~7u; label < bits; label++)
            count += shoal__is_alive(index, label) && shoal__allowed(index, params, label);
        return count;
    }
    uint32_t sampled = 0, kept = 0;
    uint32_t samples = index->live < SHOAL__FILTER_SAMPLE ? bound : SHOAL__FILTER_SAMPLE;
    for (uint32_t i = 0; i < samples; i++) {
        uint32_t label = (uint32_t)((uint64_t)i * bound / samples);
        /* (A lazy index has the records of its attached lists only.) */
        if (!shoal__is_alive(index, label) || !index->ids[label]) continue;
        sampled++;
        kept += (uint32_t)shoal__allowed(index, params, label);
    }
    return sampled ? (uint32_t)((uint64_t)kept * index->live / sampled) : index->live;
}

float shoal_distance(shoal_metric metric, shoal_simd simd, const float *a, const float *b,
                     uint32_t dim) {
    const shoal__kernels *k = shoal__kernels_get(simd);
    if (!k) k = &shoal__kernels_scalar;
    switch (metric) {
    case SHOAL_METRIC_IP:
        return -k->dot_f32(a, b, dim);
    case SHOAL_METRIC_COSINE: {
        float na = k->dot_f32(a, a, dim), nb = k->dot_f32(b, b, dim);
        if (!(na > 0.0f && nb > 0.0f)) return NAN;
        return 1.0f - k->dot_f32(a, b, dim) / sqrtf(na * nb);
    }
    default:
        return k->l2sq_f32(a, b, dim);
    }
}

/* ---------------------------------------------------------------- check */

int shoal_index_check(shoal_index *index) {
    int rc = check_idle(index, "check");
    if (rc) return rc;
    if (index->lazy)
        return shoal__fail(index, SHOAL_ESTATE, "the index is lazy: attach its lists before checking it");
    uint32_t live = 0;
    for (uint32_t label = 0; label < index->label_bound; label++) {
        int alive = shoal__is_alive(index, label);
        if (alive != (index->ids[label] != NULL))
            return shoal__fail(index, SHOAL_ECORRUPT, "label %u: alive bit and id disagree", label);
        if (!alive && index->meta[label])
            return shoal__fail(index, SHOAL_ECORRUPT, "label %u: dead but has metadata", label);
        if (!alive) continue;
        live++;
        const char *stored = index->ids[label];
        if (idmap_lookup(index, stored + 4, stored_id_len(stored)) != label)
            return shoal__fail(index, SHOAL_ECORRUPT, "label %u: id does not map back", label);
    }
    if (live != index->live || live != index->idmap.count)
        return shoal__fail(index, SHOAL_ECORRUPT, "live count %u, bitmap %u, map %u",
                           index->live, live, index->idmap.count);
    if (index->free_count != index->label_bound - live)
        return shoal__fail(index, SHOAL_ECORRUPT, "%u free labels for %u dead",
                           index->free_count, index->label_bound - live);
    for (uint32_t i = 0; i < index->free_count; i++)
        if (shoal__is_alive(index, index->free_labels[i]))
            return shoal__fail(index, SHOAL_ECORRUPT, "free label %u is alive",
                               index->free_labels[i]);
    return index->ops->check ? index->ops->check(index) : SHOAL_OK;
}

/* -------------------------------------------------------------- segments */

/* The ids section (docs/FORMAT.md): seqs[label_bound] u64, the free list
 * u32[free_count] in order, the liveness bitmap, then per live label in
 * label order a u32 length and the id bytes -- the in-memory layout of
 * ids[label], so a view can point into it. */

uint64_t shoal__ids_section_size(uint32_t label_bound, uint32_t live, uint32_t free_count,
                                 uint64_t id_bytes) {
    return 8ull * label_bound + 4ull * free_count + ((uint64_t)label_bound + 7) / 8 +
           4ull * live + id_bytes;
}

uint64_t shoal__ids_bytes(const shoal_index *index) {
    uint64_t total = 0;
    for (uint32_t label = 0; label < index->label_bound; label++)
        if (shoal__is_alive(index, label)) total += stored_id_len(index->ids[label]);
    return total;
}

int shoal__ids_save(const shoal_index *index, shoal__seg_writer *w) {
    uint32_t bound = index->label_bound;
    uint64_t size = shoal__ids_section_size(bound, index->live, index->free_count,
                                            shoal__ids_bytes(index));
    uint8_t *p = shoal__seg_begin(w, SHOAL__SEC_IDS, 0, size);
    if (!p) return SHOAL_ENOMEM;
    for (uint32_t label = 0; label < bound; label++, p += 8)
        shoal__put_u64(p, shoal__is_alive(index, label) ? index->seqs[label] : 0);
    shoal__put_u32s(p, index->free_labels, index->free_count);
    p += 4 * (size_t)index->free_count;
    for (uint32_t label = 0; label < bound; label++)
        if (shoal__is_alive(index, label)) p[label >> 3] |= (uint8_t)(1u << (label & 7));
    p += ((size_t)bound + 7) / 8;
    for (uint32_t label = 0; label < bound; label++) {
        if (!shoal__is_alive(index, label)) continue;
        uint32_t len = stored_id_len(index->ids[label]);
        shoal__put_u32(p, len);
        memcpy(p + 4, index->ids[label] + 4, len);
        p += 4 + (size_t)len;
    }
    shoal__seg_end(w);
    return SHOAL_OK;
}

int shoal__ids_load(shoal_index *index, shoal__seg_reader *r, uint32_t bound, uint32_t live,
                    uint32_t free_count, uint64_t id_bytes, uint64_t next_seq) {
    uint64_t size = shoal__ids_section_size(bound, live, free_count, id_bytes);
    const uint8_t *raw;
    int borrow, rc;
    if ((rc = shoal__seg_next(r, SHOAL__SEC_IDS, 0, size, &raw, &borrow))) return rc;
    if (free_count > bound - live)
        return shoal__fail(index, SHOAL_ECORRUPT, "ids: %u free labels for %u labels, %u live",
                           free_count, bound, live);
    size_t bitmap_bytes = ((size_t)bound + 7) / 8;
    const uint8_t *seqs = raw, *frees = raw + 8 * (size_t)bound;
    const uint8_t *bits = frees + 4 * (size_t)free_count, *ids = bits + bitmap_bytes;
    const uint8_t *end = raw + size;

    /* The bitmap first: everything else is checked against it. */
    uint32_t count = 0;
    for (size_t i = 0; i < bitmap_bytes; i++)
        for (uint32_t b = bits[i]; b; b &= b - 1) count++;
    if (bound % 8 && bits[bitmap_bytes - 1] >> (bound % 8))
        return shoal__fail(index, SHOAL_ECORRUPT, "ids: liveness bits set past label %u", bound);
    if (count != live)
        return shoal__fail(index, SHOAL_ECORRUPT, "ids: %u live bits for %u live records", count,
                           live);

    size_t n = bound ? bound : 1;
    index->ids = shoal__calloc(&index->mem, n, sizeof *index->ids);
    index->meta = shoal__calloc(&index->mem, n, sizeof *index->meta);
    index->times = shoal__alloc(&index->mem, n * sizeof *index->times);
    index->seqs = shoal__alloc(&index->mem, n * sizeof *index->seqs);
    index->alive = shoal__calloc(&index->mem, bitmap_bytes ? bitmap_bytes : 1, 1);
    /* Room for every label to be freed: a delete right after the load
     * pushes onto this list without growing it (forget_record). */
    index->free_labels = shoal__alloc(&index->mem, n * sizeof *index->free_labels);
    if (!index->ids || !index->meta || !index->times || !index->seqs || !index->alive ||
        !index->free_labels)
        return shoal__fail(index, SHOAL_ENOMEM, "out of memory for %u labels", bound);
    for (uint32_t label = 0; label < bound; label++) index->times[label] = SHOAL_TIME_NONE;
    index->label_cap = bound;
    index->label_bound = bound;
    index->free_cap = bound;
    index->ids_borrowed = borrow;
    if (bitmap_bytes) memcpy(index->alive, bits, bitmap_bytes);

    for (uint32_t label = 0; label < bound; label++) {
        uint64_t seq = shoal__get_u64(seqs + 8 * (size_t)label);
        int alive = shoal__is_alive(index, label);
        if (alive ? seq >= next_seq : seq != 0)
            return shoal__fail(index, SHOAL_ECORRUPT, "ids: label %u has sequence %llu (next %llu)",
                               label, (unsigned long long)seq, (unsigned long long)next_seq);
        index->seqs[label] = seq;
    }
    for (uint32_t i = 0; i < free_count; i++) {
        uint32_t label = shoal__get_u32(frees + 4 * (size_t)i);
        /* A free label is dead; marking it in seqs (0 for every dead
         * label, checked above) catches repeats. */
        if (label >= bound || shoal__is_alive(index, label) || index->seqs[label])
            return shoal__fail(index, SHOAL_ECORRUPT, "ids: free label %u is bad or repeated",
                               label);
        index->seqs[label] = 1;
        index->free_labels[i] = label;
    }
    for (uint32_t i = 0; i < free_count; i++) index->seqs[index->free_labels[i]] = 0;
    index->free_count = free_count;

    if ((rc = idmap_reserve(index, live)))
        return shoal__fail(index, rc, "out of memory for the id map of %u records", live);
    const uint8_t *p = ids;
    for (uint32_t label = 0; label < bound; label++) {
        if (!shoal__is_alive(index, label)) continue;
        if (end - p < 4) return shoal__fail(index, SHOAL_ECORRUPT, "ids: section too short");
        uint32_t len = shoal__get_u32(p);
        if (len == 0 || len > SHOAL_ID_MAX || (uint64_t)(end - p - 4) < len)
            return shoal__fail(index, SHOAL_ECORRUPT, "ids: label %u has an id of %u bytes",
                               label, len);
        if (borrow) {
            index->ids[label] = (char *)(uintptr_t)p;
        } else {
            char *id = shoal__alloc(&index->mem, 4 + (size_t)len);
            if (!id) return shoal__fail(index, SHOAL_ENOMEM, "out of memory for ids");
            memcpy(id, &len, 4);
            memcpy(id + 4, p + 4, len);
            index->ids[label] = id;
        }
        uint32_t slot = idmap_find(index, (const char *)p + 4, len);
        if (index->idmap.slots[slot] != SHOAL_NO_LABEL)
            return shoal__fail(index, SHOAL_ECORRUPT, "ids: labels %u and %u have the same id",
                               index->idmap.slots[slot], label);
        index->idmap.slots[slot] = label;
        index->idmap.count++;
        p += 4 + (size_t)len;
    }
    if (p != end)
        return shoal__fail(index, SHOAL_ECORRUPT, "ids: %zu bytes left over", (size_t)(end - p));
    index->live = live;
    index->next_seq = next_seq;
    return SHOAL_OK;
}

/* Metadata section: per live label in label order a u32 length (0 = none)
 * and that many bytes of canonical DAG-CBOR -- the in-memory layout of
 * meta[label], so a view can point into it.  Times section: an i64 per
 * label, SHOAL_TIME_NONE for dead labels and records without a time. */

int shoal__records_save(const shoal_index *index, shoal__seg_writer *w) {
    uint32_t bound = index->label_bound;
    int any_meta = 0, any_time = 0;
    for (uint32_t label = 0; label < bound; label++) {
        if (!shoal__is_alive(index, label)) continue;
        any_meta |= index->meta[label] != NULL;
        any_time |= index->times[label] != SHOAL_TIME_NONE;
    }
    if (any_meta) {
        uint8_t *p = shoal__seg_begin(w, (uint32_t)SHOAL__SEC_METADATA, 0,
                                      4ull * index->live + index->meta_bytes);
        if (!p) return SHOAL_ENOMEM;
        for (uint32_t label = 0; label < bound; label++) {
            if (!shoal__is_alive(index, label)) continue;
            const char *m = index->meta[label];
            uint32_t len = m ? stored_len(m) : 0;
            shoal__put_u32(p, len);
            if (len) memcpy(p + 4, m + 4, len);
            p += 4 + (size_t)len;
        }
        shoal__seg_end(w);
    }
    if (any_time) {
        uint8_t *p = shoal__seg_begin(w, (uint32_t)SHOAL__SEC_TIMES, 0, 8ull * bound);
        if (!p) return SHOAL_ENOMEM;
        for (uint32_t label = 0; label < bound; label++, p += 8)
            shoal__put_u64(p, (uint64_t)(shoal__is_alive(index, label) ? index->times[label]
                                                                       : SHOAL_TIME_NONE));
        shoal__seg_end(w);
    }
    return SHOAL_OK;
}

int shoal__records_load(shoal_index *index, shoal__seg_reader *r) {
    uint32_t bound = index->label_bound, live = index->live;
    const uint8_t *raw;
    uint64_t size;
    int borrow;
    uint64_t max = (uint64_t)live * (4 + SHOAL_METADATA_MAX);
    int rc = shoal__seg_maybe_sized(r, (uint32_t)SHOAL__SEC_METADATA, 0, max, &raw, &size, &borrow);
    if (rc < 0) return rc;
    if (rc == 1) {
        const uint8_t *p = raw, *end = raw + size;
        shoal__cbor_limits lim = {SHOAL_METADATA_DEPTH, 0, 0, 0, 1};
        char msg[160];
        /* Before the first pointer is stored: a failure part-way must not
         * free pointers into the segment. */
        index->meta_borrowed = borrow;
        for (uint32_t label = 0; label < bound; label++) {
            if (!shoal__is_alive(index, label)) continue;
            if (end - p < 4) return shoal__fail(index, SHOAL_ECORRUPT, "metadata: section too short");
            uint32_t len = shoal__get_u32(p);
            if (len > SHOAL_METADATA_MAX || (uint64_t)(end - p - 4) < len)
                return shoal__fail(index, SHOAL_ECORRUPT, "metadata: label %u has %u bytes", label,
                                   len);
            if (len) {
                if (shoal__cbor_check(p + 4, len, &lim, msg, sizeof msg))
                    return shoal__fail(index, SHOAL_ECORRUPT, "metadata of label %u: %s", label, msg);
                if (borrow) {
                    index->meta[label] = (char *)(uintptr_t)p;
                } else {
                    char *m = shoal__alloc(&index->mem, 4 + (size_t)len);
                    if (!m) return shoal__fail(index, SHOAL_ENOMEM, "out of memory for metadata");
                    memcpy(m, &len, 4);
                    memcpy(m + 4, p + 4, len);
                    index->meta[label] = m;
                }
                index->meta_bytes += len;
            }
            p += 4 + (size_t)len;
        }
        if (p != end)
            return shoal__fail(index, SHOAL_ECORRUPT, "metadata: %zu bytes left over",
                               (size_t)(end - p));
        if (!index->meta_bytes)
            return shoal__fail(index, SHOAL_ECORRUPT, "metadata: a section without metadata");
    }
    rc = shoal__seg_maybe(r, (uint32_t)SHOAL__SEC_TIMES, 0, 8ull * bound, &raw, &borrow);
    if (rc < 0) return rc;
    if (rc == 1) {
        int any = 0;
        for (uint32_t label = 0; label < bound; label++) {
            int64_t t = (int64_t)shoal__get_u64(raw + 8 * (size_t)label);
            if (!shoal__is_alive(index, label) && t != SHOAL_TIME_NONE)
                return shoal__fail(index, SHOAL_ECORRUPT, "times: dead label %u has a time", label);
            index->times[label] = t;
            any |= t != SHOAL_TIME_NONE;
        }
        if (!any) return shoal__fail(index, SHOAL_ECORRUPT, "times: a section without times");
    }
    return SHOAL_OK;
}

/* ------------------------------------------------ records kept per list */

/* The labels section (IVF with list records, docs/FORMAT.md): the free list
 * u32[free] in order, then the liveness bitmap.  Ids, sequence numbers,
 * times and metadata are in each list's records section instead, so that a
 * lazy reader fetches a list with everything its records need. */

uint64_t shoal__labels_section_size(uint32_t label_bound, uint32_t free_count) {
    return 4ull * free_count + ((uint64_t)label_bound + 7) / 8;
}

int shoal__labels_save(const shoal_index *index, shoal__seg_writer *w) {
    uint32_t bound = index->label_bound;
    uint8_t *p = shoal__seg_begin(w, SHOAL__SEC_LABELS, 0,
                                  shoal__labels_section_size(bound, index->free_count));
    if (!p) return SHOAL_ENOMEM;
    shoal__put_u32s(p, index->free_labels, index->free_count);
    p += 4 * (size_t)index->free_count;
    for (uint32_t label = 0; label < bound; label++)
        if (shoal__is_alive(index, label)) p[label >> 3] |= (uint8_t)(1u << (label & 7));
    shoal__seg_end(w);
    return SHOAL_OK;
}

int shoal__labels_load(shoal_index *index, shoal__seg_reader *r, uint32_t bound, uint32_t live,
                       uint32_t free_count, uint64_t next_seq) {
    const uint8_t *raw;
    int borrow, rc;
    if ((rc = shoal__seg_next(r, SHOAL__SEC_LABELS, 0, shoal__labels_section_size(bound, free_count),
                              &raw, &borrow)))
        return rc;
    if (free_count > bound - live)
        return shoal__fail(index, SHOAL_ECORRUPT, "labels: %u free labels for %u labels, %u live",
                           free_count, bound, live);
    size_t bitmap_bytes = ((size_t)bound + 7) / 8;
    const uint8_t *frees = raw, *bits = raw + 4 * (size_t)free_count;
    uint32_t count = 0;
    for (size_t i = 0; i < bitmap_bytes; i++)
        for (uint32_t b = bits[i]; b; b &= b - 1) count++;
    if (bound % 8 && bits[bitmap_bytes - 1] >> (bound % 8))
        return shoal__fail(index, SHOAL_ECORRUPT, "labels: liveness bits set past label %u", bound);
    if (count != live)
        return shoal__fail(index, SHOAL_ECORRUPT, "labels: %u live bits for %u live records",
                           count, live);
    size_t n = bound ? bound : 1;
    index->ids = shoal__calloc(&index->mem, n, sizeof *index->ids);
    index->meta = shoal__calloc(&index->mem, n, sizeof *index->meta);
    index->times = shoal__alloc(&index->mem, n * sizeof *index->times);
    index->seqs = shoal__calloc(&index->mem, n, sizeof *index->seqs);
    index->alive = shoal__calloc(&index->mem, bitmap_bytes ? bitmap_bytes : 1, 1);
    /* Room for every label to be freed: a delete right after the load
     * pushes onto this list without growing it (forget_record). */
    index->free_labels = shoal__alloc(&index->mem, n * sizeof *index->free_labels);
    if (!index->ids || !index->meta || !index->times || !index->seqs || !index->alive ||
        !index->free_labels)
        return shoal__fail(index, SHOAL_ENOMEM, "out of memory for %u labels", bound);
    for (uint32_t label = 0; label < bound; label++) index->times[label] = SHOAL_TIME_NONE;
    index->label_cap = bound;
    index->label_bound = bound;
    index->free_cap = bound;
    if (bitmap_bytes) memcpy(index->alive, bits, bitmap_bytes);
    for (uint32_t i = 0; i < free_count; i++) {
        uint32_t label = shoal__get_u32(frees + 4 * (size_t)i);
        /* seqs (all zero so far) mark the free labels seen, to catch repeats. */
        if (label >= bound || shoal__is_alive(index, label) || index->seqs[label])
            return shoal__fail(index, SHOAL_ECORRUPT, "labels: free label %u is bad or repeated",
                               label);
        index->seqs[label] = 1;
        index->free_labels[i] = label;
    }
    for (uint32_t i = 0; i < free_count; i++) index->seqs[index->free_labels[i]] = 0;
    index->free_count = free_count;
    if ((rc = idmap_reserve(index, live)))
        return shoal__fail(index, rc, "out of memory for the id map of %u records", live);
    index->next_seq = next_seq;
    /* The id map counts the records as their lists bring them
     * (shoal__list_records_load); shoal__list_records_done checks that all
     * came. */
    index->live = live;
    return SHOAL_OK;
}

/* One record: u64 seq, i64 time, u32 id length, the id, u32 metadata
 * length (0 = none), the metadata (canonical DAG-CBOR). */
static uint64_t record_size(const shoal_index *index, uint32_t label) {
    const char *m = index->meta[label];
    return 16 + 4 + (uint64_t)stored_id_len(index->ids[label]) + 4 + (m ? stored_len(m) : 0);
}

int shoal__list_records_save(const shoal_index *index, shoal__seg_writer *w, uint32_t list,
                             const uint32_t *labels, uint32_t n) {
    uint64_t size = 0;
    for (uint32_t i = 0; i < n; i++) size += record_size(index, labels[i]);
    uint8_t *p = shoal__seg_begin(w, SHOAL__SEC_IVF_RECORDS, list, size);
    if (!p) return SHOAL_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t label = labels[i];
        shoal__put_u64(p, index->seqs[label]);
        shoal__put_u64(p + 8, (uint64_t)index->times[label]);
        uint32_t len = stored_id_len(index->ids[label]);
        shoal__put_u32(p + 16, len);
        memcpy(p + 20, index->ids[label] + 4, len);
        p += 20 + (size_t)len;
        const char *m = index->meta[label];
        uint32_t mlen = m ? stored_len(m) : 0;
        shoal__put_u32(p, mlen);
        if (mlen) memcpy(p + 4, m + 4, mlen);
        p += 4 + (size_t)mlen;
    }
    shoal__seg_end(w);
    return SHOAL_OK;
}

int shoal__list_records_load(shoal_index *index, shoal__seg_reader *r, uint32_t list,
                             const uint32_t *labels, uint32_t n) {
    const uint8_t *raw;
    uint64_t size;
    int borrow;
    uint64_t max = (uint64_t)n * (24 + SHOAL_ID_MAX + SHOAL_METADATA_MAX);
    int rc = shoal__seg_next_sized(r, SHOAL__SEC_IVF_RECORDS, list, max, &raw, &size, &borrow);
    if (rc) return rc;
    const uint8_t *p = raw, *end = raw + size;
    shoal__cbor_limits lim = {SHOAL_METADATA_DEPTH, 0, 0, 0, 1};
    char msg[160];
    for (uint32_t i = 0; i < n; i++) {
        uint32_t label = labels[i];
        /* The list's own check made label live, in range and unrepeated. */
        if (end - p < 24) return shoal__fail(index, SHOAL_ECORRUPT, "list %u records: too short", list);
        uint64_t seq = shoal__get_u64(p);
        int64_t time = (int64_t)shoal__get_u64(p + 8);
        uint32_t len = shoal__get_u32(p + 16);
        if (seq >= index->next_seq)
            return shoal__fail(index, SHOAL_ECORRUPT, "list %u: label %u has sequence %llu (next %llu)",
                               list, label, (unsigned long long)seq,
                               (unsigned long long)index->next_seq);
        if (len == 0 || len > SHOAL_ID_MAX || (uint64_t)(end - p - 20) < (uint64_t)len + 4)
            return shoal__fail(index, SHOAL_ECORRUPT, "list %u: label %u has an id of %u bytes",
                               list, label, len);
        const uint8_t *id = p + 20;
        uint32_t mlen = shoal__get_u32(id + len);
        const uint8_t *meta = id + len + 4;
        if (mlen > SHOAL_METADATA_MAX || (uint64_t)(end - meta) < mlen)
            return shoal__fail(index, SHOAL_ECORRUPT, "list %u: label %u has %u metadata bytes",
                               list, label, mlen);
        if (mlen && shoal__cbor_check(meta, mlen, &lim, msg, sizeof msg))
            return shoal__fail(index, SHOAL_ECORRUPT, "list %u, metadata of label %u: %s", list,
                               label, msg);
        uint32_t slot = idmap_find(index, (const char *)id, len);
        if (index->idmap.slots[slot] != SHOAL_NO_LABEL)
            return shoal__fail(index, SHOAL_ECORRUPT, "list %u: labels %u and %u have the same id",
                               list, index->idmap.slots[slot], label);
        char *stored = shoal__alloc(&index->mem, 4 + (size_t)len);
        char *m = mlen ? shoal__alloc(&index->mem, 4 + (size_t)mlen) : NULL;
        if (!stored || (mlen && !m)) {
            shoal__free(&index->mem, stored);
            shoal__free(&index->mem, m);
            return shoal__fail(index, SHOAL_ENOMEM, "out of memory for the records of list %u", list);
        }
        memcpy(stored, &len, 4);
        memcpy(stored + 4, id, len);
        if (m) {
            memcpy(m, &mlen, 4);
            memcpy(m + 4, meta, mlen);
            index->meta_bytes += mlen;
        }
        index->ids[label] = stored;
        index->meta[label] = m;
        index->seqs[label] = seq;
        index->times[label] = time;
        index->idmap.slots[slot] = label;
        index->idmap.count++;
        p = meta + mlen;
    }
    if (p != end)
        return shoal__fail(index, SHOAL_ECORRUPT, "list %u records: %zu bytes left over", list,
                           (size_t)(end - p));
    (void)borrow;
    return SHOAL_OK;
}

void shoal__list_records_undo(shoal_index *index, const uint32_t *labels, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        uint32_t label = labels[i];
        char *stored = index->ids[label];
        if (!stored) continue;
        idmap_remove_slot(index, idmap_find(index, stored + 4, stored_id_len(stored)));
        shoal__free(&index->mem, stored);
        index->ids[label] = NULL;
        if (index->meta[label]) {
            index->meta_bytes -= stored_len(index->meta[label]);
            shoal__free(&index->mem, index->meta[label]);
            index->meta[label] = NULL;
        }
        index->seqs[label] = 0;
        index->times[label] = SHOAL_TIME_NONE;
    }
}

/* After every list is loaded: each live label has its record, and the id
 * bytes are the config's. */
int shoal__list_records_done(shoal_index *index, uint32_t live, uint64_t id_bytes) {
    if (index->idmap.count != live)
        return shoal__fail(index, SHOAL_ECORRUPT, "%u records in the lists, %u are live",
                           index->idmap.count, live);
    if (shoal__ids_bytes(index) != id_bytes)
        return shoal__fail(index, SHOAL_ECORRUPT, "the lists' ids hold %llu bytes, not %llu",
                           (unsigned long long)shoal__ids_bytes(index), (unsigned long long)id_bytes);
    return SHOAL_OK;
}
