/*
 * merge.c -- one index from the live records of several (shoal_index_merge),
 * the step a CLI `merge` and a collection's compaction both take.
 *
 * It is a rebuild, not a splice: graphs and lists are recomputed from the
 * records, because neither an HNSW graph nor an IVF model of one index
 * describes the union.  What it owns is the record-level logic: which
 * version of an id survives (the last source's, or with exclusions and
 * sequence numbers the newest live one), and carrying each survivor's
 * vector, metadata and time into one all-or-nothing upsert.
 */
#include <stdio.h>

#include "index/merge.h"

static int param_error(const shoal_params *params, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int param_error(const shoal_params *params, int code, const char *fmt, ...) {
    if (!params || !params->errmsg || !params->errmsg_size) return code;
    va_list ap;
    va_start(ap, fmt);
    shoal__vmsg(params->errmsg, params->errmsg_size, code, fmt, ap);
    va_end(ap);
    return code;
}

typedef struct picked {
    uint32_t source, label;
} picked;

static uint32_t id_len_of(const shoal_index *index, uint32_t label, const char **id) {
    int len = shoal_index_label_id(index, label, id);
    return len < 0 ? 0 : (uint32_t)len;
}

int shoal__merge(const shoal_index *const *sources, uint32_t n, const uint8_t *const *exclude,
                 int keep_seqs, const shoal_params *params, shoal_index **out) {
    *out = NULL;
    if (!sources || n == 0 || !params) return param_error(params, SHOAL_EPARAM, "no sources to merge");
    for (uint32_t s = 0; s < n; s++) {
        if (sources[s]->lazy)
            return param_error(params, SHOAL_ESTATE,
                               "source %u is lazy: attach all its lists before merging it", s);
        if (sources[s]->rows_external)
            return param_error(params, SHOAL_ESTATE,
                               "source %u keeps its rerank rows outside (rerank_external): load "
                               "it with them to merge it", s);
        if (sources[s]->params.dim != params->dim)
            return param_error(params, SHOAL_EPARAM, "source %u has dimension %u, not %u", s,
                               sources[s]->params.dim, params->dim);
        if (sources[s]->params.metric != params->metric)
            return param_error(params, SHOAL_EPARAM,
                               "source %u has metric %s, not %s: vectors cannot be re-measured", s,
                               shoal_metric_word(sources[s]->params.metric),
                               shoal_metric_word(params->metric));
    }
    shoal__mem mem;
    shoal__mem_init(&mem, params->allocator);
    uint64_t total = 0;
    for (uint32_t s = 0; s < n; s++) total += sources[s]->live;
    if (total >= SHOAL_NO_LABEL) return param_error(params, SHOAL_ETOOBIG, "more than 2^32 records");
    uint32_t dim = params->dim, count = 0;
    picked *all = shoal__alloc(&mem, (size_t)(total ? total : 1) * sizeof *all);
    uint64_t cap = 16;
    while (cap < 2 * total) cap *= 2;
    uint32_t *slots = shoal__alloc(&mem, (size_t)cap * sizeof *slots);
    int rc = all && slots ? SHOAL_OK : SHOAL_ENOMEM;
    /* Every live, not excluded record, sources in order, labels in order. */
    for (uint32_t s = 0; s < n && !rc; s++)
        for (uint32_t label = 0; label < sources[s]->label_bound; label++) {
            if (!shoal__is_alive(sources[s], label)) continue;
            if (exclude && exclude[s] && (exclude[s][label >> 3] >> (label & 7) & 1)) continue;
            all[count].source = s;
            all[count++].label = label;
        }
    /* The survivor of each id: the last occurrence (keep_seqs: the one with
     * the highest sequence number).  Marked by setting .source's top bit
     * on the losers. */
    if (!rc) {
        memset(slots, 0xff, (size_t)cap * sizeof *slots);
        uint32_t mask = (uint32_t)cap - 1;
        for (uint32_t i = count; i-- > 0;) {
            const char *id;
            uint32_t len = id_len_of(sources[all[i].source], all[i].label, &id);
            uint32_t h = (uint32_t)shoal__hash_bytes(id, len) & mask;
            for (; slots[h] != UINT32_MAX; h = (h + 1) & mask) {
                uint32_t j = slots[h];
                const char *other;
                uint32_t olen = id_len_of(sources[all[j].source], all[j].label, &other);
                if (olen != len || memcmp(id, other, len)) continue;
                int later_wins = !keep_seqs ||
                                 sources[all[j].source]->seqs[all[j].label] >
                                     sources[all[i].source]->seqs[all[i].label];
                if (later_wins) {
                    all[i].source |= 0x80000000u;
                } else {
                    all[j].source |= 0x80000000u;
                    slots[h] = i;
                }
                goto next;
            }
            slots[h] = i;
        next:;
        }
    }
    shoal__free(&mem, slots);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < count && !rc; i++)
        if (!(all[i].source & 0x80000000u)) all[kept++] = all[i];
    /* With sequence numbers kept, records go in sequence order (a stable
     * insertion sort would be quadratic: merge sort by seq). */
    if (!rc && keep_seqs && kept > 1) {
        picked *tmp = shoal__alloc(&mem, (size_t)kept * sizeof *tmp);
        if (!tmp) rc = SHOAL_ENOMEM;
        for (uint32_t width = 1; !rc && width < kept; width *= 2) {
            for (uint32_t lo = 0; lo < kept; lo += 2 * width) {
                uint32_t mid = lo + width < kept ? lo + width : kept;
                uint32_t hi = lo + 2 * width < kept ? lo + 2 * width : kept;
                uint32_t a = lo, b = mid, o = lo;
                while (a < mid || b < hi) {
                    int take_a = b >= hi || (a < mid && sources[all[a].source]->seqs[all[a].label] <=
                                                            sources[all[b].source]->seqs[all[b].label]);
                    tmp[o++] = all[take_a ? a++ : b++];
                }
            }
            memcpy(all, tmp, (size_t)kept * sizeof *all);
        }
        shoal__free(&mem, tmp);
    }

    /* The batch. */
    size_t id_total = 0, meta_total = 0;
    int any_meta = 0, any_time = 0;
    for (uint32_t i = 0; i < kept && !rc; i++) {
        const shoal_index *src = sources[all[i].source];
        const char *id;
        id_total += id_len_of(src, all[i].label, &id);
        const uint8_t *m;
        int ml = shoal_index_metadata(src, all[i].label, &m);
        meta_total += ml > 0 ? (size_t)ml : 0;
        any_meta |= ml > 0;
        any_time |= src->times[all[i].label] != SHOAL_TIME_NONE;
    }
    char *ids = !rc ? shoal__alloc(&mem, id_total ? id_total : 1) : NULL;
    uint32_t *id_off = !rc ? shoal__alloc(&mem, ((size_t)kept + 1) * sizeof *id_off) : NULL;
    float *vectors = !rc ? shoal__alloc(&mem, (size_t)(kept ? kept : 1) * dim * sizeof *vectors) : NULL;
    char *meta = !rc && any_meta ? shoal__alloc(&mem, meta_total ? meta_total : 1) : NULL;
    uint32_t *meta_off = !rc && any_meta ? shoal__alloc(&mem, ((size_t)kept + 1) * sizeof *meta_off) : NULL;
    int64_t *times = !rc && any_time ? shoal__alloc(&mem, (size_t)(kept ? kept : 1) * sizeof *times) : NULL;
    uint64_t *seqs = !rc && keep_seqs ? shoal__alloc(&mem, (size_t)(kept ? kept : 1) * sizeof *seqs) : NULL;
    if (!rc && (!ids || !id_off || !vectors || (any_meta && (!meta || !meta_off)) ||
                (any_time && !times) || (keep_seqs && !seqs)))
        rc = SHOAL_ENOMEM;
    if (!rc) {
        size_t at = 0, mat = 0;
        id_off[0] = 0;
        if (meta_off) meta_off[0] = 0;
        for (uint32_t i = 0; i < kept; i++) {
            const shoal_index *src = sources[all[i].source];
            uint32_t label = all[i].label;
            const char *id;
            uint32_t len = id_len_of(src, label, &id);
            memcpy(ids + at, id, len);
            at += len;
            id_off[i + 1] = (uint32_t)at;
            /* The kind's vector in stored form (decoded into scratch for sq8
             * and pq): copied at once. */
            memcpy(vectors + (size_t)i * dim, src->ops->vector(src, label), dim * sizeof *vectors);
            if (meta_off) {
                const uint8_t *m;
                int ml = shoal_index_metadata(src, label, &m);
                if (ml > 0) memcpy(meta + mat, m, (size_t)ml);
                mat += ml > 0 ? (size_t)ml : 0;
                meta_off[i + 1] = (uint32_t)mat;
            }
            if (times) times[i] = src->times[label];
            if (seqs) seqs[i] = src->seqs[label];
        }
    }
    shoal_index *index = NULL;
    if (!rc) rc = shoal_index_new(params, &index);
    if (!rc && index->ops->train && kept) {
        rc = shoal_index_train(index, kept, vectors, dim);
        if (rc) param_error(params, rc, "training the merged index: %s", index->errmsg);
    }
    if (!rc) {
        shoal_records r;
        memset(&r, 0, sizeof r);
        r.n = kept;
        r.id_bytes = ids;
        r.id_offsets = id_off;
        r.vectors = vectors;
        r.dim = dim;
        r.metadata = meta;
        r.metadata_offsets = meta_off;
        r.metadata_cbor = 1;
        r.times = times;
        r.seqs = seqs;
        index->input_stored = 1; /* (the vectors are the sources' stored ones) */
        int added = shoal_index_upsert(index, &r);
        index->input_stored = 0;
        if (added < 0) {
            rc = added;
            param_error(params, rc, "adding the merged records: %s", index->errmsg);
        }
    }
    if (rc == SHOAL_ENOMEM && params->errmsg && params->errmsg_size && !params->errmsg[0])
        param_error(params, rc, "out of memory merging %u records", kept);
    shoal__free(&mem, all);
    shoal__free(&mem, ids);
    shoal__free(&mem, id_off);
    shoal__free(&mem, vectors);
    shoal__free(&mem, meta);
    shoal__free(&mem, meta_off);
    shoal__free(&mem, times);
    shoal__free(&mem, seqs);
    if (rc) {
        shoal_index_free(index);
        return rc;
    }
    *out = index;
    return SHOAL_OK;
}

int shoal_index_merge(const shoal_index *const *sources, uint32_t n, const shoal_params *params,
                      shoal_index **out) {
    if (!out) return SHOAL_EPARAM;
    return shoal__merge(sources, n, NULL, 0, params, out);
}
