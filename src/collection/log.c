/*
 * log.c -- write-ahead log records of a collection (docs/FORMAT.md, "Log").
 *
 *   record := u32 size | u32 crc32c(body) | body            (size = bytes of body)
 *   body   := u8 type | u8 version (1) | u16 0 | u32 n | u64 seq | payload
 *     type 1, upsert: u32 dim, then n entries:
 *              u32 id length | id | i64 time | u32 metadata length | metadata
 *              (canonical DAG-CBOR) | dim float32
 *              entry i has sequence number seq + i
 *     type 2, delete: n entries: u32 id length | id           (one number: seq)
 *     type 3, clear:  n = 0, no payload                        (one number: seq)
 *
 * Little-endian throughout.  The host appends records to a file (or an
 * IndexedDB store) and the core never sees the file: it encodes a record
 * (after validating everything in it) and applies records, the same way
 * whether a record was just encoded or is being replayed after a crash.
 * Replaying is idempotent: records numbered below the collection's next
 * sequence number are skipped.  An append cut short by a crash leaves a
 * torn last record, which is ignored; damage anywhere else is an error
 * naming the record's offset, because records after it may be intact and
 * silently dropping them would lose acknowledged writes.
 */
#include <stdio.h>

#include "collection/collection.h"

enum { LOG_UPSERT = 1, LOG_DELETE = 2, LOG_CLEAR = 3 };
#define LOG_VERSION 1
#define LOG_HEAD 16u           /* type, version, zero, n, seq */
#define LOG_BODY_MAX (1u << 31) /* a record's body */

/* ---------------------------------------------------------------- encode */

typedef struct log_writer {
    shoal__cbor_out out; /* a growing byte buffer */
    const shoal_records *r;
} log_writer;

static void put32(shoal__cbor_out *o, uint32_t v) {
    uint8_t b[4];
    shoal__put_u32(b, v);
    shoal__cbor_raw(o, b, 4);
}

static void put64(shoal__cbor_out *o, uint64_t v) {
    uint8_t b[8];
    shoal__put_u64(b, v);
    shoal__cbor_raw(o, b, 8);
}

static void begin(shoal__cbor_out *o, unsigned type, uint32_t n, uint64_t seq) {
    put32(o, 0); /* size and crc, filled in by finish */
    put32(o, 0);
    uint8_t h[4] = {(uint8_t)type, LOG_VERSION, 0, 0};
    shoal__cbor_raw(o, h, 4);
    put32(o, n);
    put64(o, seq);
}

static int finish(shoal_collection *c, shoal__cbor_out *o, uint8_t **out, size_t *size) {
    if (o->error || o->len - 8 > LOG_BODY_MAX) {
        int rc = o->error ? o->error : SHOAL_ETOOBIG;
        shoal__cbor_out_free(o);
        return shoal__coll_fail(c, rc, rc == SHOAL_ENOMEM ? "out of memory for a log record"
                                                          : "log record over 2 GiB");
    }
    shoal__put_u32(o->buf, (uint32_t)(o->len - 8));
    shoal__put_u32(o->buf + 4, shoal_crc32c(0, o->buf + 8, o->len - 8));
    *out = o->buf;
    *size = o->len;
    return SHOAL_OK;
}

static int put_entry(void *ctx, uint32_t i, const uint8_t *meta, uint32_t len) {
    log_writer *w = ctx;
    const shoal_records *r = w->r;
    uint32_t at = r->id_offsets[i], id_len = r->id_offsets[i + 1] - at;
    put32(&w->out, id_len);
    shoal__cbor_raw(&w->out, r->id_bytes + at, id_len);
    put64(&w->out, (uint64_t)(r->times ? r->times[i] : SHOAL_TIME_NONE));
    put32(&w->out, len);
    shoal__cbor_raw(&w->out, meta, len);
    const float *v = r->vectors + (size_t)i * r->dim;
    for (uint32_t j = 0; j < r->dim; j++) {
        uint8_t b[4];
        shoal__put_f32(b, v[j]);
        shoal__cbor_raw(&w->out, b, 4);
    }
    return w->out.error;
}

static int check_out(shoal_collection *c, uint8_t **out, size_t *size) {
    if (!out || !size) return shoal__coll_fail(c, SHOAL_EPARAM, "out or size is NULL");
    *out = NULL;
    *size = 0;
    if (c->busy)
        return shoal__coll_fail(c, SHOAL_ESTATE, "a write was encoded from a callback of a "
                                                 "running call");
    if (c->readonly) return shoal__coll_fail(c, SHOAL_ESTATE, "a snapshot is read-only");
    return SHOAL_OK;
}

int shoal_collection_log_upsert(shoal_collection *c, const shoal_records *records, uint8_t **out,
                                size_t *size) {
    c->errmsg[0] = '\0';
    int rc = check_out(c, out, size);
    if (!rc) rc = shoal__coll_whole(c, "an upsert");
    if (rc) return rc;
    if (!records) return shoal__coll_fail(c, SHOAL_EPARAM, "records is NULL");
    if (records->seqs)
        return shoal__coll_fail(c, SHOAL_EPARAM, "a collection numbers its records itself");
    if (records->n == 0) return shoal__coll_fail(c, SHOAL_EPARAM, "no records");
    log_writer w;
    shoal__cbor_out_init(&w.out, &c->mem, 0);
    w.r = records;
    begin(&w.out, LOG_UPSERT, records->n, c->log_seq);
    put32(&w.out, records->dim);
    rc = shoal__records_check(c->buffer, records, put_entry, &w);
    if (rc) {
        shoal__cbor_out_free(&w.out);
        if (rc == SHOAL_ENOMEM && !c->buffer->errmsg[0])
            return shoal__coll_fail(c, rc, "out of memory for a log record");
        return shoal__coll_fail(c, rc, "%s", shoal_index_errmsg(c->buffer));
    }
    if ((rc = finish(c, &w.out, out, size))) return rc;
    c->log_seq += records->n;
    return SHOAL_OK;
}

int shoal_collection_log_delete(shoal_collection *c, uint32_t n, const char *id_bytes,
                                const uint32_t *id_offsets, uint8_t **out, size_t *size) {
    c->errmsg[0] = '\0';
    int rc = check_out(c, out, size);
    if (!rc) rc = shoal__coll_whole(c, "a delete");
    if (rc) return rc;
    if (n && (!id_bytes || !id_offsets)) return shoal__coll_fail(c, SHOAL_EPARAM, "ids are NULL");
    shoal__cbor_out o;
    shoal__cbor_out_init(&o, &c->mem, 0);
    begin(&o, LOG_DELETE, n, c->log_seq);
    for (uint32_t i = 0; i < n; i++) {
        if (id_offsets[i + 1] < id_offsets[i]) {
            shoal__cbor_out_free(&o);
            return shoal__coll_fail(c, SHOAL_EPARAM, "id offsets decrease at id %u", i);
        }
        uint32_t len = id_offsets[i + 1] - id_offsets[i];
        if (len == 0 || len > SHOAL_ID_MAX) {
            shoal__cbor_out_free(&o);
            return shoal__coll_fail(c, SHOAL_EID, "id %u has %u bytes; ids have 1..%u", i, len,
                                    SHOAL_ID_MAX);
        }
        put32(&o, len);
        shoal__cbor_raw(&o, id_bytes + id_offsets[i], len);
    }
    if ((rc = finish(c, &o, out, size))) return rc;
    c->log_seq++;
    return SHOAL_OK;
}

int shoal_collection_log_clear(shoal_collection *c, uint8_t **out, size_t *size) {
    c->errmsg[0] = '\0';
    int rc = check_out(c, out, size);
    if (rc) return rc;
    shoal__cbor_out o;
    shoal__cbor_out_init(&o, &c->mem, 0);
    begin(&o, LOG_CLEAR, 0, c->log_seq);
    if ((rc = finish(c, &o, out, size))) return rc;
    c->log_seq++;
    return SHOAL_OK;
}

/* ----------------------------------------------------------------- apply */

#define BAD(...) shoal__coll_fail(c, SHOAL_ECORRUPT, __VA_ARGS__)

/* Decodes an upsert body's entries into one batch and applies it. */
static int apply_upsert(shoal_collection *c, const uint8_t *p, const uint8_t *end, uint32_t n,
                        uint64_t seq, uint64_t at, uint32_t *written) {
    if (end - p < 4) return BAD("log record at offset %llu: truncated upsert", (unsigned long long)at);
    uint32_t dim = shoal__get_u32(p);
    p += 4;
    if (dim != c->params.small.dim)
        return BAD("log record at offset %llu: %u dimensions; the collection has %u",
                   (unsigned long long)at, dim, c->params.small.dim);
    /* Every entry takes at least 17 + 4 * dim bytes (a 1-byte id, no metadata). */
    if ((uint64_t)n * (17 + 4ull * dim) > (uint64_t)(end - p))
        return BAD("log record at offset %llu: %u entries cannot fit", (unsigned long long)at, n);
    size_t id_total = 0, meta_total = 0;
    const uint8_t *q = p;
    for (uint32_t i = 0; i < n; i++) {
        /* (The count check above bounds the entries' least total size;
         * an earlier entry's metadata can still leave fewer than 4 bytes
         * for this one's id length.) */
        if (end - q < 4)
            return BAD("log record at offset %llu: entry %u runs past the record",
                       (unsigned long long)at, i);
        uint32_t len = shoal__get_u32(q);
        if (len == 0 || len > SHOAL_ID_MAX || (uint64_t)(end - q) < 4ull + len + 12)
            return BAD("log record at offset %llu: entry %u has a bad id", (unsigned long long)at, i);
        q += 4 + len + 8;
        uint32_t mlen = shoal__get_u32(q);
        if (mlen > SHOAL_METADATA_MAX || (uint64_t)(end - q) < 4ull + mlen + 4ull * dim)
            return BAD("log record at offset %llu: entry %u runs past the record",
                       (unsigned long long)at, i);
        q += 4 + mlen + 4ull * dim;
        id_total += len;
        meta_total += mlen;
    }
    if (q != end)
        return BAD("log record at offset %llu: bytes after the last entry", (unsigned long long)at);
    char *ids = shoal__alloc(&c->mem, id_total ? id_total : 1);
    uint32_t *id_off = shoal__alloc(&c->mem, ((size_t)n + 1) * sizeof *id_off);
    uint8_t *meta = shoal__alloc(&c->mem, meta_total ? meta_total : 1);
    uint32_t *meta_off = shoal__alloc(&c->mem, ((size_t)n + 1) * sizeof *meta_off);
    float *vectors = shoal__alloc(&c->mem, (size_t)n * dim * sizeof *vectors);
    int64_t *times = shoal__alloc(&c->mem, (size_t)n * sizeof *times);
    uint64_t *seqs = shoal__alloc(&c->mem, (size_t)n * sizeof *seqs);
    int rc = SHOAL_OK;
    if (!ids || !id_off || !meta || !meta_off || !vectors || !times || !seqs) {
        rc = shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory applying %u records", n);
        goto done;
    }
    size_t ia = 0, ma = 0;
    id_off[0] = meta_off[0] = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len = shoal__get_u32(p);
        memcpy(ids + ia, p + 4, len);
        ia += len;
        id_off[i + 1] = (uint32_t)ia;
        p += 4 + len;
        times[i] = (int64_t)shoal__get_u64(p);
        uint32_t mlen = shoal__get_u32(p + 8);
        memcpy(meta + ma, p + 12, mlen);
        ma += mlen;
        meta_off[i + 1] = (uint32_t)ma;
        p += 12 + mlen;
        shoal__get_u32s(vectors + (size_t)i * dim, p, dim);
        p += 4ull * dim;
        seqs[i] = seq + i;
    }
    shoal_records r;
    memset(&r, 0, sizeof r);
    r.n = n;
    r.id_bytes = ids;
    r.id_offsets = id_off;
    r.vectors = vectors;
    r.dim = dim;
    r.metadata = (const char *)meta;
    r.metadata_offsets = meta_off;
    r.metadata_cbor = 1;
    r.times = times;
    r.seqs = seqs;
    rc = shoal__coll_upsert(c, &r, written);
    /* Content the encoder would have refused: the record is bad. */
    if (rc && rc != SHOAL_ENOMEM)
        shoal__coll_fail(c, SHOAL_ECORRUPT, "log record at offset %llu: %s",
                         (unsigned long long)at, shoal_index_errmsg(c->buffer));
    if (rc && rc != SHOAL_ENOMEM) rc = SHOAL_ECORRUPT;
done:
    shoal__free(&c->mem, ids);
    shoal__free(&c->mem, id_off);
    shoal__free(&c->mem, meta);
    shoal__free(&c->mem, meta_off);
    shoal__free(&c->mem, vectors);
    shoal__free(&c->mem, times);
    shoal__free(&c->mem, seqs);
    return rc;
}

static int apply_delete(shoal_collection *c, const uint8_t *p, const uint8_t *end, uint32_t n,
                        uint64_t at, uint32_t *deleted) {
    if ((uint64_t)n * 5 > (uint64_t)(end - p))
        return BAD("log record at offset %llu: %u ids cannot fit", (unsigned long long)at, n);
    size_t total = 0;
    const uint8_t *q = p;
    for (uint32_t i = 0; i < n; i++) {
        if (end - q < 4) return BAD("log record at offset %llu: truncated id", (unsigned long long)at);
        uint32_t len = shoal__get_u32(q);
        if (len == 0 || len > SHOAL_ID_MAX || (uint64_t)(end - q - 4) < len)
            return BAD("log record at offset %llu: id %u is bad", (unsigned long long)at, i);
        q += 4 + len;
        total += len;
    }
    if (q != end) return BAD("log record at offset %llu: bytes after the last id", (unsigned long long)at);
    char *ids = shoal__alloc(&c->mem, total ? total : 1);
    uint32_t *off = shoal__alloc(&c->mem, ((size_t)n + 1) * sizeof *off);
    int rc = SHOAL_OK;
    if (!ids || !off) {
        rc = shoal__coll_fail(c, SHOAL_ENOMEM, "out of memory applying a delete");
    } else {
        size_t ia = 0;
        off[0] = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t len = shoal__get_u32(p);
            memcpy(ids + ia, p + 4, len);
            ia += len;
            off[i + 1] = (uint32_t)ia;
            p += 4 + len;
        }
        rc = shoal__coll_delete(c, n, ids, off, deleted);
    }
    shoal__free(&c->mem, ids);
    shoal__free(&c->mem, off);
    return rc;
}

int shoal_collection_apply(shoal_collection *c, const uint8_t *log, size_t size,
                           shoal_apply_result *result) {
    shoal_apply_result res;
    memset(&res, 0, sizeof res);
    c->errmsg[0] = '\0';
    int rc = SHOAL_OK;
    if (c->busy)
        rc = shoal__coll_fail(c, SHOAL_ESTATE, "apply called from a callback of a running call");
    if (!rc && c->readonly) rc = shoal__coll_fail(c, SHOAL_ESTATE, "a snapshot is read-only");
    if (!rc && !log && size) rc = shoal__coll_fail(c, SHOAL_EPARAM, "log is NULL");
    uint64_t at = 0;
    while (!rc && at < size) {
        uint64_t left = size - at;
        const uint8_t *rec = log + at;
        uint32_t len = left >= 8 ? shoal__get_u32(rec) : 0;
        if (left < 8 || len > left - 8) { /* the bytes end inside this record */
            res.torn = 1;
            break;
        }
        if (len < LOG_HEAD) {
            /* Zeros past the last record (a preallocated or torn file). */
            if (shoal__all_zero(rec, (size_t)left)) {
                res.torn = 1;
                break;
            }
            rc = BAD("log record at offset %llu: %u bytes is too short", (unsigned long long)at, len);
            break;
        }
        const uint8_t *body = rec + 8, *end = body + len;
        if (shoal_crc32c(0, body, len) != shoal__get_u32(rec + 4)) {
            if (at + 8 + len == size) { /* the last record, not all written */
                res.torn = 1;
                break;
            }
            rc = shoal__coll_fail(c, SHOAL_ECHECKSUM,
                                  "log record at offset %llu: checksum mismatch (%llu bytes follow)",
                                  (unsigned long long)at, (unsigned long long)(size - at - 8 - len));
            break;
        }
        unsigned type = body[0];
        uint32_t n = shoal__get_u32(body + 4);
        uint64_t seq = shoal__get_u64(body + 8);
        if (body[1] != LOG_VERSION || body[2] || body[3]) {
            rc = shoal__coll_fail(c, body[1] > LOG_VERSION ? SHOAL_EVERSION : SHOAL_ECORRUPT,
                                  "log record at offset %llu: version %u", (unsigned long long)at,
                                  body[1]);
            break;
        }
        if ((type == LOG_UPSERT && n == 0) || (type == LOG_CLEAR && n != 0) ||
            (type != LOG_UPSERT && type != LOG_DELETE && type != LOG_CLEAR) ||
            seq > UINT64_MAX - n - 1) {
            rc = BAD("log record at offset %llu: bad type %u or count %u", (unsigned long long)at,
                     type, n);
            break;
        }
        uint64_t last = type == LOG_UPSERT ? seq + n - 1 : seq;
        if (last < c->next_seq) { /* already in the collection */
            res.skipped++;
        } else if (seq < c->next_seq) {
            rc = BAD("log record at offset %llu: numbers %llu..%llu straddle the collection's %llu",
                     (unsigned long long)at, (unsigned long long)seq, (unsigned long long)last,
                     (unsigned long long)c->next_seq);
            break;
        } else {
            uint32_t count = 0;
            if (type == LOG_UPSERT) {
                if (!(rc = shoal__coll_whole(c, "an upsert")))
                    rc = apply_upsert(c, body + LOG_HEAD, end, n, seq, at, &count);
                res.written += count;
            } else if (type == LOG_DELETE) {
                if (!(rc = shoal__coll_whole(c, "a delete")))
                    rc = apply_delete(c, body + LOG_HEAD, end, n, at, &count);
                res.deleted += count;
            } else {
                rc = end == body + LOG_HEAD ? shoal__coll_clear(c)
                                            : BAD("log record at offset %llu: a clear with a payload",
                                                  (unsigned long long)at);
            }
            if (rc) break;
            c->next_seq = last + 1;
            if (c->log_seq < c->next_seq) c->log_seq = c->next_seq;
            res.records++;
        }
        at += 8 + (uint64_t)len;
    }
    res.valid_size = at;
    if (result) *result = res;
    return rc;
}

/* ------------------------------------------------------------- one call */

int shoal_collection_upsert(shoal_collection *c, const shoal_records *records) {
    uint8_t *log;
    size_t size;
    int rc = shoal_collection_log_upsert(c, records, &log, &size);
    if (rc) return rc;
    shoal_apply_result res;
    rc = shoal_collection_apply(c, log, size, &res);
    shoal__free(&c->mem, log);
    return rc ? rc : (int)res.written;
}

int shoal_collection_delete(shoal_collection *c, uint32_t n, const char *id_bytes,
                            const uint32_t *id_offsets) {
    uint8_t *log;
    size_t size;
    int rc = shoal_collection_log_delete(c, n, id_bytes, id_offsets, &log, &size);
    if (rc) return rc;
    shoal_apply_result res;
    rc = shoal_collection_apply(c, log, size, &res);
    shoal__free(&c->mem, log);
    return rc ? rc : (int)res.deleted;
}
