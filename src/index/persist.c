/*
 * persist.c -- an index as a segment and back: save, load, view, info and
 * the IPFS block cut.
 *
 * The container (codec/segment.c) handles header, table, CRCs and zstd and
 * knows nothing of indexes; this file decides what a segment of an index
 * holds and in which order (docs/FORMAT.md, "Sections"): the config, then
 * the per-record sections of the common layer (index.c), then the kind's
 * own sections (flat.c, hnsw.c, ivf.c save and load them).  Loading builds
 * a fresh index from the validated config and lets each owner read its
 * sections back, checking every value before trusting it.
 */
#include "index/persist.h"

#define ZSTD_LEVEL_MAX 19

const char *shoal__section_name(uint32_t kind) {
    switch (kind) {
    case SHOAL__SEC_CONFIG: return "config";
    case SHOAL__SEC_IDS: return "ids";
    case SHOAL__SEC_VECTORS: return "vectors";
    case SHOAL__SEC_HNSW_LEVELS: return "hnsw levels";
    case SHOAL__SEC_HNSW_BASE: return "hnsw level 0";
    case SHOAL__SEC_HNSW_UPPER: return "hnsw upper levels";
    case SHOAL__SEC_HNSW_SQ8: return "hnsw sq8";
    case (uint32_t)SHOAL__SEC_HNSW_SLACK: return "hnsw slack";
    case SHOAL__SEC_IVF_CENTROIDS: return "ivf centroids";
    case SHOAL__SEC_IVF_SQ8: return "ivf sq8";
    case SHOAL__SEC_IVF_CODEBOOKS: return "ivf codebooks";
    case SHOAL__SEC_IVF_COUNTS: return "ivf list counts";
    case SHOAL__SEC_IVF_LIST: return "ivf list";
    case SHOAL__SEC_IVF_RERANK: return "ivf rerank";
    case SHOAL__SEC_IVF_RECORDS: return "ivf records";
    case SHOAL__SEC_LABELS: return "labels";
    case (uint32_t)SHOAL__SEC_METADATA: return "metadata";
    case (uint32_t)SHOAL__SEC_TIMES: return "times";
    default: return kind & SHOAL__SEC_OPTIONAL ? "optional (unknown)" : "unknown";
    }
}

/* ---------------------------------------------------------------- config */
/* The config section (docs/FORMAT.md, "Config"). */
typedef struct seg_config {
    uint32_t kind, metric, dim;
    uint64_t seed, rng[4];
    uint32_t label_bound, live, free_count;
    uint64_t id_bytes, next_seq;
    uint32_t kp[SHOAL__KIND_PARAMS];
} seg_config;

static void config_put(uint8_t *p, const seg_config *c) {
    shoal__put_u32(p + 0, c->kind);
    shoal__put_u32(p + 4, c->metric);
    shoal__put_u32(p + 8, c->dim);
    shoal__put_u64(p + 16, c->seed);
    for (int i = 0; i < 4; i++) shoal__put_u64(p + 24 + 8 * i, c->rng[i]);
    shoal__put_u32(p + 56, c->label_bound);
    shoal__put_u32(p + 60, c->live);
    shoal__put_u32(p + 64, c->free_count);
    shoal__put_u64(p + 72, c->id_bytes);
    shoal__put_u64(p + 80, c->next_seq);
    for (uint32_t i = 0; i < SHOAL__KIND_PARAMS; i++) shoal__put_u32(p + 88 + 4 * i, c->kp[i]);
}

/* Parses and validates the config's own fields (not the kind's words,
 * which shoal_index_new and the kind's load check). */
static int config_get(const uint8_t *p, seg_config *c, char *msg, size_t msg_size) {
    c->kind = shoal__get_u32(p + 0);
    c->metric = shoal__get_u32(p + 4);
    c->dim = shoal__get_u32(p + 8);
    c->seed = shoal__get_u64(p + 16);
    for (int i = 0; i < 4; i++) c->rng[i] = shoal__get_u64(p + 24 + 8 * i);
    c->label_bound = shoal__get_u32(p + 56);
    c->live = shoal__get_u32(p + 60);
    c->free_count = shoal__get_u32(p + 64);
    c->id_bytes = shoal__get_u64(p + 72);
    c->next_seq = shoal__get_u64(p + 80);
    for (uint32_t i = 0; i < SHOAL__KIND_PARAMS; i++) c->kp[i] = shoal__get_u32(p + 88 + 4 * i);
    if (shoal__get_u32(p + 12) || shoal__get_u32(p + 68))
        return shoal__msg(msg, msg_size, SHOAL_ECORRUPT, "config: reserved fields are not zero");
    if (c->kind > SHOAL_KIND_IVF)
        return shoal__msg(msg, msg_size, SHOAL_EVERSION, "config: unknown index kind %u", c->kind);
    if (c->metric > SHOAL_METRIC_COSINE)
        return shoal__msg(msg, msg_size, SHOAL_EVERSION, "config: unknown metric %u", c->metric);
    if (c->dim == 0 || c->dim > SHOAL_DIM_MAX)
        return shoal__msg(msg, msg_size, SHOAL_ECORRUPT, "config: dim %u is outside 1..%u", c->dim,
                        SHOAL_DIM_MAX);
    if (c->label_bound >= SHOAL_NO_LABEL || c->live > c->label_bound ||
        c->free_count != c->label_bound - c->live)
        return shoal__msg(msg, msg_size, SHOAL_ECORRUPT, "config: %u labels, %u live, %u free", c->label_bound,
                        c->live, c->free_count);
    if (c->id_bytes < c->live || c->id_bytes > (uint64_t)c->live * SHOAL_ID_MAX ||
        c->next_seq < c->live)
        return shoal__msg(msg, msg_size, SHOAL_ECORRUPT, "config: %llu id bytes, next sequence %llu for %u records",
                        (unsigned long long)c->id_bytes, (unsigned long long)c->next_seq, c->live);
    if (!(c->rng[0] | c->rng[1] | c->rng[2] | c->rng[3]))
        return shoal__msg(msg, msg_size, SHOAL_ECORRUPT, "config: the PRNG state is all zero");
    return SHOAL_OK;
}

/* Kind words <-> public parameters (docs/FORMAT.md, "Config"). */
static void params_from_config(const seg_config *c, shoal_params *p) {
    p->dim = c->dim;
    p->metric = (shoal_metric)c->metric;
    p->kind = (shoal_kind)c->kind;
    p->seed = c->seed;
    if (c->kind == SHOAL_KIND_HNSW) {
        p->hnsw.M = c->kp[0];
        p->hnsw.ef_construction = c->kp[1];
        p->hnsw.ef_search = c->kp[2];
        p->quantizer = (shoal_quantizer)c->kp[3];
        p->rerank = c->kp[8];
        p->hnsw.build_batch = c->kp[9];
    } else if (c->kind == SHOAL_KIND_IVF) {
        p->ivf.nlist = c->kp[0];
        p->ivf.nprobe = c->kp[1];
        p->quantizer = (shoal_quantizer)c->kp[2];
        p->ivf.pq_m = c->kp[3];
        p->ivf.pq_bits = c->kp[4];
        p->rerank = c->kp[5];
        p->ivf.train_sample = c->kp[6];
        p->ivf.train_iters = c->kp[7];
        p->ivf.pq_tables = c->kp[9];
    }
}

/* ----------------------------------------------------------------- save */

void shoal_save_params_init(shoal_save_params *params) { memset(params, 0, sizeof *params); }
void shoal_load_params_init(shoal_load_params *params) { memset(params, 0, sizeof *params); }

int shoal_index_save(shoal_index *index, const shoal_save_params *params, uint8_t **out,
                     size_t *out_size) {
    index->errmsg[0] = '\0';
    if (index->busy)
        return shoal__fail(index, SHOAL_ESTATE, "save called while another call on this index "
                                                "runs (from one of its callbacks)");
    if (!out || !out_size) return shoal__fail(index, SHOAL_EPARAM, "out or out_size is NULL");
    *out = NULL;
    *out_size = 0;
    if (index->rows_external)
        return shoal__fail(index, SHOAL_ESTATE,
                           "the index's rerank rows are outside it (rerank_external): the "
                           "segment it was opened from is its saved form");
    int level = params ? params->zstd_level : 0;
    if (level < 0 || level > ZSTD_LEVEL_MAX)
        return shoal__fail(index, SHOAL_EPARAM, "zstd_level = %d; it must be 0..%d", level,
                           ZSTD_LEVEL_MAX);
    shoal__seg_writer w;
    shoal__seg_writer_init(&w, &index->mem, level);

    seg_config c;
    memset(&c, 0, sizeof c);
    c.kind = (uint32_t)index->params.kind;
    c.metric = (uint32_t)index->params.metric;
    c.dim = index->params.dim;
    c.seed = index->params.seed;
    for (int i = 0; i < 4; i++) c.rng[i] = index->rng.s[i];
    c.label_bound = index->label_bound;
    c.live = index->live;
    c.free_count = index->free_count;
    c.id_bytes = shoal__ids_bytes(index);
    c.next_seq = index->next_seq;
    index->ops->save_config(index, c.kp);
    uint8_t *p = shoal__seg_begin(&w, SHOAL__SEC_CONFIG, 0, SHOAL__CONFIG_SIZE);
    if (p) {
        config_put(p, &c);
        shoal__seg_end(&w);
    }
    uint64_t required = 0;
    if (index->ops->records_per_list) {
        required |= SHOAL__FEATURE_LIST_RECORDS;
        if (!w.error) shoal__labels_save(index, &w);
    } else {
        if (!w.error) shoal__ids_save(index, &w);
        if (!w.error) shoal__records_save(index, &w);
    }
    if (c.kind == SHOAL_KIND_HNSW && c.kp[8]) required |= SHOAL__FEATURE_HNSW_COPIES;
    if (!w.error) index->ops->save(index, &w);
    int rc = shoal__seg_finish(&w, required, 0, out, out_size);
    if (rc)
        return shoal__fail(index, rc, rc == SHOAL_ENOMEM ? "out of memory writing the segment"
                                                         : "segment too large");
    return SHOAL_OK;
}


/* ------------------------------------------------------------------ read */

/* Header, table and config from a (possibly partial) segment. */
static int read_head(const uint8_t *bytes, size_t size, int full, shoal__seg_head *h,
                     seg_config *c, char *msg, size_t msg_size) {
    int rc = shoal__seg_open(bytes, size, full, SHOAL__FEATURES_KNOWN, h, msg, msg_size);
    if (rc) return rc;
    shoal__seg_section s;
    shoal__seg_section_at(bytes, 0, &s);
    if (s.kind != SHOAL__SEC_CONFIG || s.raw != SHOAL__CONFIG_SIZE || s.index)
        return shoal__msg(msg, msg_size, SHOAL_ECORRUPT, "the first section is not the config");
    if (size < s.offset + SHOAL__CONFIG_SIZE)
        return shoal__msg(msg, msg_size, SHOAL_ETRUNCATED, "%zu bytes; the config ends at %llu",
                          size, (unsigned long long)(s.offset + SHOAL__CONFIG_SIZE));
    if (!shoal__seg_crc_ok(s.crc, bytes + s.offset, SHOAL__CONFIG_SIZE))
        return shoal__msg(msg, msg_size, SHOAL_ECHECKSUM, "config checksum mismatch");
    return config_get(bytes + s.offset, c, msg, msg_size);
}

static void copy_msg(const shoal_load_params *params, const char *text) {
    if (!params || !params->errmsg || !params->errmsg_size) return;
    size_t n = strlen(text);
    if (n >= params->errmsg_size) n = params->errmsg_size - 1;
    memcpy(params->errmsg, text, n);
    params->errmsg[n] = '\0';
}

/* Loads (view 0) or views a whole segment, or with prefix set opens an
 * HNSW segment from the bytes before its rerank rows (shoal_index_open_head:
 * nothing borrowed, the rows left in the segment). */
static int open_segment(const uint8_t *bytes, size_t size, const shoal_load_params *params,
                        int view, int prefix, shoal_index **out) {
    char msg[256] = "";
    if (!out) return SHOAL_EPARAM;
    *out = NULL;
    shoal__seg_head h;
    seg_config c;
    int rc = read_head(bytes, size, !prefix, &h, &c, msg, sizeof msg);
    if (rc) {
        copy_msg(params, msg);
        return rc;
    }
    if (((h.required & SHOAL__FEATURE_HNSW_COPIES) != 0) != (c.kind == SHOAL_KIND_HNSW && c.kp[8])) {
        copy_msg(params, "config: the rerank copies and the HNSW_COPIES feature bit disagree");
        return SHOAL_ECORRUPT;
    }
    shoal_params p;
    shoal_params_init(&p);
    params_from_config(&c, &p);
    if (params) {
        p.simd = params->simd;
        p.allocator = params->allocator;
    }
    shoal_index *index;
    rc = shoal_index_new(&p, &index);
    if (rc) {
        if (rc == SHOAL_EPARAM) rc = SHOAL_ECORRUPT;
        copy_msg(params, rc == SHOAL_ECORRUPT ? "config: the index parameters are invalid"
                                              : shoal_strerror(rc));
        return rc;
    }
    for (int i = 0; i < 4; i++) index->rng.s[i] = c.rng[i];
    index->view = view;
    /* (the kinds that can keep rerank rows; each load clears it when the
     * index has none) */
    index->rows_external = params && params->rerank_external &&
                           (c.kind == SHOAL_KIND_IVF || c.kind == SHOAL_KIND_HNSW);
    shoal__seg_reader r;
    shoal__seg_reader_init(&r, bytes, &h, &index->mem, view, index->errmsg,
                           sizeof index->errmsg, shoal__section_name);
    if (prefix) shoal__seg_reader_window(&r, bytes, 0, size, r.next);
    if (h.required & SHOAL__FEATURE_LIST_RECORDS) {
        if (!index->ops->records_per_list)
            rc = shoal__fail(index, SHOAL_ECORRUPT, "list records in a %s segment", index->ops->name);
        if (!rc) rc = shoal__labels_load(index, &r, c.label_bound, c.live, c.free_count, c.next_seq);
        if (!rc) rc = index->ops->load(index, &r, c.kp);
        if (!rc) rc = shoal__list_records_done(index, c.live, c.id_bytes);
    } else {
        rc = shoal__ids_load(index, &r, c.label_bound, c.live, c.free_count, c.id_bytes, c.next_seq);
        if (!rc) rc = shoal__records_load(index, &r);
        if (!rc) rc = index->ops->load(index, &r, c.kp);
    }
    if (!rc) rc = shoal__seg_reader_end(&r);
    shoal__seg_reader_free(&r);
    if (rc) {
        copy_msg(params, index->errmsg);
        shoal_index_free(index);
        return rc;
    }
    index->errmsg[0] = '\0';
    *out = index;
    return SHOAL_OK;
}

int shoal_index_load(const uint8_t *bytes, size_t size, const shoal_load_params *params,
                     shoal_index **out) {
    return open_segment(bytes, size, params, 0, 0, out);
}

int shoal_index_view(const uint8_t *bytes, size_t size, const shoal_load_params *params,
                     shoal_index **out) {
    return open_segment(bytes, size, params, 1, 0, out);
}

int shoal_index_is_view(const shoal_index *index) { return index->view; }

/* ------------------------------------------------------------------ lazy */

void shoal__lazy_free(shoal_index *index) {
    shoal__lazy *lz = index->lazy;
    if (!lz) return;
    shoal__free(&index->mem, lz->table);
    shoal__free(&index->mem, lz->first_section);
    shoal__free(&index->mem, lz->start);
    shoal__free(&index->mem, lz->rows_at);
    shoal__free(&index->mem, lz->rows_size);
    shoal__free(&index->mem, lz);
    index->lazy = NULL;
}

/* Maps the sections after the head (from section `from`) to list units:
 * each list l in order, its IVF_LIST, IVF_RERANK (with copies) and
 * IVF_RECORDS sections; nothing else may follow the head. */
static int lazy_units(shoal_index *index, const uint8_t *table, uint32_t from, uint32_t nlist) {
    shoal__lazy *lz = index->lazy;
    lz->units = nlist;
    lz->first_section = shoal__alloc(&index->mem, ((size_t)nlist + 1) * sizeof *lz->first_section);
    lz->start = shoal__alloc(&index->mem, ((size_t)nlist + 1) * sizeof *lz->start);
    if (!lz->first_section || !lz->start)
        return shoal__fail(index, SHOAL_ENOMEM, "out of memory for %u lists", nlist);
    uint32_t i = from, per = 0;
    for (uint32_t l = 0; l < nlist; l++) {
        lz->first_section[l] = i;
        uint32_t n = 0;
        for (; i < lz->head.count; i++, n++) {
            shoal__seg_section sec;
            shoal__seg_section_at(table, i, &sec);
            int unit = sec.kind == SHOAL__SEC_IVF_LIST || sec.kind == SHOAL__SEC_IVF_RERANK ||
                       sec.kind == SHOAL__SEC_IVF_RECORDS;
            if (!unit)
                return shoal__fail(index, SHOAL_ECORRUPT,
                                   "section %u (%s) lies among the lists", i,
                                   shoal__section_name(sec.kind));
            if (sec.index != l) break;
            if (n == 0) lz->start[l] = sec.offset;
        }
        if (n == 0 || (l && n != per))
            return shoal__fail(index, SHOAL_ECORRUPT, "list %u has %u sections", l, n);
        per = n;
    }
    if (i != lz->head.count)
        return shoal__fail(index, SHOAL_ECORRUPT, "sections after the last list");
    lz->first_section[nlist] = i;
    lz->start[nlist] = lz->head.size;
    return SHOAL_OK;
}

/* External rerank rows: each unit's rerank section (its second), which
 * attach_list may be given without, must be stored raw (its rows are read
 * at their offsets).  Its hole runs to the next section, padding included. */
static int lazy_rows(shoal_index *index) {
    shoal__lazy *lz = index->lazy;
    lz->rows_at = shoal__calloc(&index->mem, (size_t)lz->units + 1, sizeof *lz->rows_at);
    lz->rows_size = shoal__calloc(&index->mem, (size_t)lz->units + 1, sizeof *lz->rows_size);
    if (!lz->rows_at || !lz->rows_size)
        return shoal__fail(index, SHOAL_ENOMEM, "out of memory for %u lists", lz->units);
    for (uint32_t l = 0; l < lz->units; l++) {
        uint32_t i = lz->first_section[l] + 1;
        shoal__seg_section sec, after;
        if (i + 1 >= lz->first_section[l + 1])
            return shoal__fail(index, SHOAL_ECORRUPT, "list %u has no rerank section", l);
        shoal__seg_section_at(lz->table, i, &sec);
        shoal__seg_section_at(lz->table, i + 1, &after);
        if (sec.kind != SHOAL__SEC_IVF_RERANK)
            return shoal__fail(index, SHOAL_ECORRUPT, "list %u: section %u is not its rerank rows",
                               l, i);
        if (sec.codec != 0)
            return shoal__fail(index, SHOAL_EUNSUPPORTED,
                               "list %u's rerank rows are zstd-compressed; external rerank rows "
                               "need a segment saved with zstd level 0", l);
        lz->rows_at[l] = sec.offset;
        lz->rows_size[l] = after.offset - sec.offset;
    }
    return SHOAL_OK;
}

int shoal_index_open_head(const uint8_t *bytes, size_t size, const shoal_load_params *params,
                          shoal_index **out) {
    char msg[256] = "";
    if (!out) return SHOAL_EPARAM;
    *out = NULL;
    if (!bytes) return SHOAL_EPARAM;
    shoal__seg_head h;
    seg_config c;
    int rc = read_head(bytes, size, 0, &h, &c, msg, sizeof msg);
    if (!rc && (h.required & SHOAL__FEATURE_HNSW_COPIES) && params && params->rerank_external)
        return open_segment(bytes, size, params, 1, 1, out);
    if (!rc && (c.kind != SHOAL_KIND_IVF || !(h.required & SHOAL__FEATURE_LIST_RECORDS)))
        rc = shoal__msg(msg, sizeof msg, SHOAL_EUNSUPPORTED,
                        "only IVF segments of format 1.1, and HNSW segments with rerank copies "
                        "opened with rerank_external, open from their head; load this %s "
                        "segment whole",
                        shoal_kind_word((shoal_kind)c.kind) ? shoal_kind_word((shoal_kind)c.kind) : "?");
    if (rc) {
        copy_msg(params, msg);
        return rc;
    }
    shoal_params p;
    shoal_params_init(&p);
    params_from_config(&c, &p);
    if (params) {
        p.simd = params->simd;
        p.allocator = params->allocator;
    }
    shoal_index *index;
    rc = shoal_index_new(&p, &index);
    if (rc) {
        if (rc == SHOAL_EPARAM) rc = SHOAL_ECORRUPT;
        copy_msg(params, rc == SHOAL_ECORRUPT ? "config: the index parameters are invalid"
                                              : shoal_strerror(rc));
        return rc;
    }
    for (int i = 0; i < 4; i++) index->rng.s[i] = c.rng[i];
    index->view = 1;
    index->rows_external = params && params->rerank_external;
    shoal__lazy *lz = shoal__calloc(&index->mem, 1, sizeof *lz);
    index->lazy = lz;
    if (lz) {
        lz->head = h;
        lz->live = c.live;
        lz->id_bytes = c.id_bytes;
        lz->table = shoal__alloc(&index->mem, (size_t)h.table_end);
    }
    if (!lz || !lz->table) {
        shoal_index_free(index);
        copy_msg(params, "out of memory for the segment head");
        return SHOAL_ENOMEM;
    }
    memcpy(lz->table, bytes, (size_t)h.table_end);
    shoal__seg_reader r;
    shoal__seg_reader_init(&r, lz->table, &lz->head, &index->mem, 0, index->errmsg,
                           sizeof index->errmsg, shoal__section_name);
    shoal__seg_reader_window(&r, bytes, 0, size, r.next);
    rc = shoal__labels_load(index, &r, c.label_bound, c.live, c.free_count, c.next_seq);
    if (!rc) rc = index->ops->load(index, &r, c.kp);
    if (!rc) rc = lazy_units(index, lz->table, r.next, c.kp[8]);
    if (!rc && index->rows_external) rc = lazy_rows(index);
    shoal__seg_reader_free(&r);
    if (!rc) {
        for (uint32_t l = 0; l < lz->units; l++)
            lz->missing += (uint32_t)index->ops->missing(index, l);
        if (lz->missing == 0) rc = shoal__list_records_done(index, lz->live, lz->id_bytes);
        if (lz->missing == 0 && !rc) shoal__lazy_free(index);
    }
    if (rc) {
        copy_msg(params, index->errmsg);
        shoal_index_free(index);
        return rc;
    }
    index->errmsg[0] = '\0';
    *out = index;
    return SHOAL_OK;
}

int shoal_index_lists_missing(const shoal_index *index) {
    return index->lazy ? (int)index->lazy->missing : 0;
}

int shoal_index_list_range(const shoal_index *index, uint32_t list, uint64_t *offset,
                           uint64_t *size) {
    const shoal__lazy *lz = index->lazy;
    if (!lz || list >= lz->units) return SHOAL_ENOTFOUND;
    *offset = lz->start[list];
    *size = lz->start[list + 1] - lz->start[list];
    return SHOAL_OK;
}

int shoal_index_list_rows_range(const shoal_index *index, uint32_t list, uint64_t *offset,
                                uint64_t *size) {
    const shoal__lazy *lz = index->lazy;
    if (!lz || list >= lz->units || !lz->rows_at) return SHOAL_ENOTFOUND;
    *offset = lz->rows_at[list];
    *size = lz->rows_size[list];
    return SHOAL_OK;
}

int shoal_index_attach_list(shoal_index *index, uint32_t list, const uint8_t *bytes, size_t size) {
    index->errmsg[0] = '\0';
    shoal__lazy *lz = index->lazy;
    if (index->busy)
        return shoal__fail(index, SHOAL_ESTATE, "attach_list called while another call on this "
                                                "index runs (from one of its callbacks)");
    if (!lz) return shoal__fail(index, SHOAL_ESTATE, "the index is not lazy: every list is in");
    if (lz->broken)
        return shoal__fail(index, SHOAL_ECORRUPT, "the segment's lists contradict its config");
    if (list >= lz->units)
        return shoal__fail(index, SHOAL_EPARAM, "list %u; the index has %u", list, lz->units);
    uint64_t want = lz->start[list + 1] - lz->start[list];
    /* With external rows the list may come without them: its unit but the
     * rerank section's bytes (shoal_index_list_rows_range). */
    int holed = lz->rows_at && lz->rows_size[list] && size == want - lz->rows_size[list];
    if (!bytes || (size != want && !holed))
        return shoal__fail(index, size < want ? SHOAL_ETRUNCATED : SHOAL_EPARAM,
                           "list %u is %llu bytes at offset %llu, not %zu", list,
                           (unsigned long long)want, (unsigned long long)lz->start[list], size);
    if (!index->ops->missing(index, list)) return 0; /* empty or attached already */
    shoal__seg_reader r;
    shoal__seg_reader_init(&r, lz->table, &lz->head, &index->mem, 0, index->errmsg,
                           sizeof index->errmsg, shoal__section_name);
    shoal__seg_reader_window(&r, bytes, lz->start[list], size, lz->first_section[list]);
    if (holed) shoal__seg_reader_hole(&r, lz->rows_at[list], lz->rows_size[list]);
    int rc = index->ops->attach(index, &r, list);
    shoal__seg_reader_free(&r);
    if (rc) return rc;
    if (r.next != lz->first_section[list + 1]) { /* the list is in, but not all of its unit */
        lz->broken = 1;
        return shoal__fail(index, SHOAL_ECORRUPT, "list %u: sections left unread", list);
    }
    if (--lz->missing == 0) {
        if ((rc = shoal__list_records_done(index, lz->live, lz->id_bytes))) {
            lz->broken = 1;
            return rc;
        }
        shoal__lazy_free(index);
    }
    return 1;
}

/* ----------------------------------------------------------- info, blocks */

int shoal_segment_info(const uint8_t *bytes, size_t size, shoal_segment_summary *info) {
    shoal__seg_head h;
    seg_config c;
    memset(info, 0, sizeof *info);
    int rc = read_head(bytes, size, 0, &h, &c, info->message, sizeof info->message);
    info->format_major = h.major;
    info->format_minor = h.minor;
    info->head_size = h.count ? h.data_start + SHOAL__CONFIG_SIZE : 0;
    if (rc) return rc;
    info->required_features = h.required;
    info->optional_features = h.optional;
    info->segment_size = h.size;
    info->sections = h.count;
    info->compressed = h.compressed;
    info->head_bytes = h.size;
    for (uint32_t i = 0; i < h.count; i++) {
        shoal__seg_section s;
        shoal__seg_section_at(bytes, i, &s);
        /* IVF: up to the first list.  HNSW with copies: up to its rerank
         * rows, when they are the last section (as written). */
        if (s.kind == SHOAL__SEC_IVF_LIST ||
            (s.kind == SHOAL__SEC_VECTORS && (h.required & SHOAL__FEATURE_HNSW_COPIES) &&
             i + 1 == h.count)) {
            info->head_bytes = s.offset;
            break;
        }
    }
    info->kind = (shoal_kind)c.kind;
    info->metric = (shoal_metric)c.metric;
    info->dim = c.dim;
    info->size = c.live;
    info->label_bound = c.label_bound;
    shoal_params_init(&info->params);
    params_from_config(&c, &info->params);
    if (c.kind == SHOAL_KIND_HNSW) info->quantizer = (shoal_quantizer)c.kp[3];
    if (c.kind == SHOAL_KIND_IVF) {
        info->quantizer = (shoal_quantizer)c.kp[2];
        info->nlist = c.kp[8];
    }
    return SHOAL_OK;
}

int shoal_segment_sections(const uint8_t *bytes, size_t size, shoal_section_info *out,
                           uint32_t cap) {
    char msg[256];
    shoal__seg_head h;
    int rc = shoal__seg_open(bytes, size, 0, SHOAL__FEATURES_KNOWN, &h, msg, sizeof msg);
    if (rc) return rc;
    for (uint32_t i = 0; i < h.count && i < cap; i++) {
        shoal__seg_section s;
        shoal__seg_section_at(bytes, i, &s);
        out[i].kind = s.kind;
        out[i].name = shoal__section_name(s.kind);
        out[i].codec = s.codec;
        out[i].index = s.index;
        out[i].offset = s.offset;
        out[i].stored = s.stored;
        out[i].raw = s.raw;
    }
    return (int)h.count;
}

/* Cuts [from, to) into blocks of at most SHOAL_BLOCK_MAX bytes. */
static void emit_blocks(uint64_t from, uint64_t to, uint32_t list, shoal_block *out,
                        uint32_t cap, uint64_t *count) {
    while (from < to) {
        uint64_t n = to - from < SHOAL_BLOCK_MAX ? to - from : SHOAL_BLOCK_MAX;
        if (*count < cap) {
            out[*count].offset = from;
            out[*count].size = (uint32_t)n;
            out[*count].list = list;
        }
        ++*count;
        from += n;
    }
}

int shoal_segment_blocks(const uint8_t *bytes, size_t size, shoal_block *out, uint32_t cap) {
    char msg[256];
    shoal__seg_head h;
    int rc = shoal__seg_open(bytes, size, 0, SHOAL__FEATURES_KNOWN, &h, msg, sizeof msg);
    if (rc) return rc;
    uint64_t count = 0, start = 0;
    uint32_t unit = UINT32_MAX;
    for (uint32_t i = 0; i < h.count; i++) {
        shoal__seg_section s;
        shoal__seg_section_at(bytes, i, &s);
        uint32_t u = s.kind == SHOAL__SEC_IVF_LIST || s.kind == SHOAL__SEC_IVF_RERANK ||
                             s.kind == SHOAL__SEC_IVF_RECORDS
                         ? s.index
                         : UINT32_MAX;
        if (u == unit) continue;
        emit_blocks(start, s.offset, unit, out, cap, &count);
        start = s.offset;
        unit = u;
    }
    emit_blocks(start, h.size, unit, out, cap, &count);
    if (count > INT32_MAX) return SHOAL_ETOOBIG;
    return (int)count;
}
