/*
 * flat.c -- exact search: every live record is compared with the query.
 *
 * Vectors are rows indexed by label (rowchunks.h: in chunks, each one
 * linear), so a scan is a linear walk the hardware prefetcher follows.
 * Deleted labels leave a hole that the common layer reuses for the next
 * insert; the scan skips holes via the liveness bitmap.  Results are exact,
 * and their order is fully determined: by distance, then by insertion
 * sequence.
 */
#include "index/persist.h"
#include "index/rowchunks.h"

typedef struct flat_state {
    shoal__rowchunks vectors; /* dim float32 per label; borrowed from a viewed segment */
} flat_state;

static flat_state *state(const shoal_index *index) { return index->kind_state; }

static const float *flat_vector(const shoal_index *index, uint32_t label) {
    return (const float *)(const void *)shoal__row(&state(index)->vectors, label);
}

static int flat_create(shoal_index *index) {
    if (index->params.quantizer != SHOAL_QUANTIZER_F32)
        return shoal__fail(index, SHOAL_EPARAM, "flat keeps float32 vectors: quantizer must be f32");
    flat_state *s = shoal__calloc(&index->mem, 1, sizeof(flat_state));
    if (!s) return SHOAL_ENOMEM;
    shoal__rowchunks_init(&s->vectors, (size_t)index->params.dim * sizeof(float));
    index->kind_state = s;
    return SHOAL_OK;
}

static int flat_reserve(shoal_index *index, uint32_t cap) {
    return shoal__rowchunks_reserve(&index->mem, &state(index)->vectors, cap);
}

static int flat_insert(shoal_index *index, uint32_t label, const float *vector) {
    memcpy(shoal__row(&state(index)->vectors, label), vector, index->params.dim * sizeof(float));
    return SHOAL_OK;
}

static int flat_remove(shoal_index *index, uint32_t label) {
    (void)index;
    (void)label; /* the hole is skipped through the liveness bitmap */
    return SHOAL_OK;
}

static int flat_search(shoal_index *index, const float *query, shoal__topk *topk,
                       const shoal_search_params *params) {
    int filtered = shoal__filtered(params);
    for (uint32_t label = 0; label < index->label_bound; label++) {
        if (!shoal__is_alive(index, label)) continue;
        float d = shoal__distance(index, query, flat_vector(index, label));
        uint64_t seq = index->seqs[label];
        /* The filter only for candidates that would be kept. */
        if (filtered && (!shoal__topk_accepts(topk, d, seq) || !shoal__allowed(index, params, label)))
            continue;
        shoal__topk_push(topk, d, seq, label);
    }
    return SHOAL_OK;
}

static void flat_destroy(shoal_index *index) {
    flat_state *s = state(index);
    if (!s) return;
    shoal__rowchunks_free(&index->mem, &s->vectors);
    shoal__free(&index->mem, s);
    index->kind_state = NULL;
}

/* -------------------------------------------------------------- segments */

/* One section, VECTORS: label_bound rows of dim float32, dead rows zero. */

static void flat_save_config(const shoal_index *index, uint32_t kp[10]) {
    (void)index;
    (void)kp;
}

static int flat_save(const shoal_index *index, shoal__seg_writer *w) {
    size_t row = (size_t)index->params.dim * 4;
    uint8_t *p = shoal__seg_begin(w, SHOAL__SEC_VECTORS, 0, (uint64_t)index->label_bound * row);
    if (!p) return SHOAL_ENOMEM;
    for (uint32_t label = 0; label < index->label_bound; label++)
        if (shoal__is_alive(index, label))
            shoal__put_u32s(p + label * row, flat_vector(index, label), index->params.dim);
    shoal__seg_end(w);
    return SHOAL_OK;
}

static int flat_load(shoal_index *index, shoal__seg_reader *r, const uint32_t kp[10]) {
    flat_state *s = state(index);
    for (int i = 0; i < 10; i++)
        if (kp[i]) return shoal__fail(index, SHOAL_ECORRUPT, "flat: config word %d is not zero", i);
    uint32_t bound = index->label_bound, dim = index->params.dim;
    size_t row = (size_t)dim * 4;
    const uint8_t *raw;
    int borrow, rc;
    if ((rc = shoal__seg_next(r, SHOAL__SEC_VECTORS, 0, (uint64_t)bound * row, &raw, &borrow)))
        return rc;
    for (uint32_t label = 0; label < bound; label++) {
        const uint8_t *v = raw + label * row;
        if (shoal__is_alive(index, label) ? shoal__first_nonfinite(v, dim) != dim
                                          : !shoal__all_zero(v, row))
            return shoal__fail(index, SHOAL_ECORRUPT, "flat: vector %u is not finite (or a dead "
                               "row is not zero)", label);
    }
    if (borrow ? shoal__rowchunks_borrow(&index->mem, &s->vectors, raw, bound)
               : shoal__rowchunks_reserve(&index->mem, &s->vectors, bound))
        return shoal__fail(index, SHOAL_ENOMEM, "out of memory for vectors");
    if (!borrow)
        for (uint32_t label = 0; label < bound; label++)
            shoal__get_u32s(shoal__row(&s->vectors, label), raw + label * row, dim);
    return SHOAL_OK;
}

/* No begin, commit or abort: an insert only writes a row at a label the
 * common layer has not handed out yet, and a remove writes nothing. */
const shoal__kind_ops shoal__flat_ops = {
    .name = "flat",
    .create = flat_create,
    .reserve = flat_reserve,
    .insert = flat_insert,
    .remove = flat_remove,
    .vector = flat_vector,
    .search = flat_search,
    .destroy = flat_destroy,
    .save_config = flat_save_config,
    .save = flat_save,
    .load = flat_load,
};
