/*
 * cbor.c -- the DAG-CBOR writer, validator and cursor (cbor.h).
 *
 * Written from RFC 8949 and the DAG-CBOR specification (ipld.io):
 * every rule the specification calls "strictness" is enforced on read, and
 * only canonical forms are written.  Hostile input is the normal case
 * here -- manifests and metadata arrive from stores and networks -- so the
 * validator bounds everything before it trusts it: each length against the
 * bytes left, the nesting depth, the total item count, text as UTF-8, map
 * keys strictly increasing (which also rejects duplicates).  The cursor
 * helpers that follow run only on validated bytes and check nothing.
 */
#include "codec/cbor.h"

/* ---------------------------------------------------------------- writer */

void shoal__cbor_out_init(shoal__cbor_out *out, shoal__mem *mem, size_t max) {
    memset(out, 0, sizeof *out);
    out->mem = mem;
    out->max = max;
}

void shoal__cbor_out_free(shoal__cbor_out *out) {
    shoal__free(out->mem, out->buf);
    out->buf = NULL;
    out->len = out->cap = 0;
}

static uint8_t *room(shoal__cbor_out *out, size_t n) {
    if (out->error) return NULL;
    if (n > SIZE_MAX / 2 - out->len || (out->max && out->len + n > out->max)) {
        out->error = SHOAL_ETOOBIG;
        return NULL;
    }
    if (out->len + n > out->cap) {
        size_t cap = out->cap ? out->cap : 64;
        while (cap < out->len + n) cap *= 2;
        uint8_t *buf = shoal__realloc(out->mem, out->buf, cap);
        if (!buf) {
            out->error = SHOAL_ENOMEM;
            return NULL;
        }
        out->buf = buf;
        out->cap = cap;
    }
    /* (No arithmetic on a NULL buffer: room for 0 bytes before the first
     * allocation is NULL, which callers appending nothing ignore.) */
    uint8_t *p = out->buf ? out->buf + out->len : NULL;
    out->len += n;
    return p;
}

void shoal__cbor_raw(shoal__cbor_out *out, const void *bytes, size_t n) {
    uint8_t *p = room(out, n);
    if (p && n) memcpy(p, bytes, n);
}

void shoal__cbor_head(shoal__cbor_out *out, unsigned major, uint64_t arg) {
    uint8_t b[9];
    size_t n;
    uint8_t m = (uint8_t)(major << 5);
    if (arg < 24) {
        b[0] = m | (uint8_t)arg;
        n = 1;
    } else if (arg <= 0xff) {
        b[0] = m | 24;
        b[1] = (uint8_t)arg;
        n = 2;
    } else if (arg <= 0xffff) {
        b[0] = m | 25;
        b[1] = (uint8_t)(arg >> 8);
        b[2] = (uint8_t)arg;
        n = 3;
    } else if (arg <= 0xffffffffu) {
        b[0] = m | 26;
        for (int i = 0; i < 4; i++) b[1 + i] = (uint8_t)(arg >> (24 - 8 * i));
        n = 5;
    } else {
        b[0] = m | 27;
        for (int i = 0; i < 8; i++) b[1 + i] = (uint8_t)(arg >> (56 - 8 * i));
        n = 9;
    }
    shoal__cbor_raw(out, b, n);
}

void shoal__cbor_uint(shoal__cbor_out *out, uint64_t v) { shoal__cbor_head(out, SHOAL__CBOR_UINT, v); }

void shoal__cbor_int(shoal__cbor_out *out, int64_t v) {
    if (v >= 0) shoal__cbor_head(out, SHOAL__CBOR_UINT, (uint64_t)v);
    else shoal__cbor_head(out, SHOAL__CBOR_NINT, (uint64_t)(-(v + 1)));
}

void shoal__cbor_text(shoal__cbor_out *out, const char *s, size_t n) {
    shoal__cbor_head(out, SHOAL__CBOR_TEXT, n);
    shoal__cbor_raw(out, s, n);
}

void shoal__cbor_cstr(shoal__cbor_out *out, const char *s) { shoal__cbor_text(out, s, strlen(s)); }

void shoal__cbor_bytes(shoal__cbor_out *out, const void *p, size_t n) {
    shoal__cbor_head(out, SHOAL__CBOR_BYTES, n);
    shoal__cbor_raw(out, p, n);
}

void shoal__cbor_float(shoal__cbor_out *out, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint8_t b[9];
    b[0] = (uint8_t)(SHOAL__CBOR_SIMPLE << 5 | SHOAL__CBOR_FLOAT64);
    for (int i = 0; i < 8; i++) b[1 + i] = (uint8_t)(bits >> (56 - 8 * i));
    shoal__cbor_raw(out, b, sizeof b);
}

void shoal__cbor_simple(shoal__cbor_out *out, unsigned v) {
    uint8_t b = (uint8_t)(SHOAL__CBOR_SIMPLE << 5 | v);
    shoal__cbor_raw(out, &b, 1);
}

void shoal__cbor_link(shoal__cbor_out *out, const uint8_t *cid, size_t n) {
    shoal__cbor_head(out, SHOAL__CBOR_TAG, SHOAL__CBOR_CID_TAG);
    shoal__cbor_head(out, SHOAL__CBOR_BYTES, n + 1);
    uint8_t zero = 0;
    shoal__cbor_raw(out, &zero, 1);
    shoal__cbor_raw(out, cid, n);
}

/* --------------------------------------------------------------- reading */

/* The head at p (at most end): major, argument, and its size; 0 on bad or
 * non-shortest form.  Major 7 heads return the simple value or float bits
 * in *arg. */
static size_t read_head(const uint8_t *p, const uint8_t *end, unsigned *major, uint64_t *arg,
                        int strict) {
    if (p >= end) return 0;
    *major = p[0] >> 5;
    unsigned info = p[0] & 31;
    if (info < 24) {
        *arg = info;
        return 1;
    }
    if (info > 27) return 0; /* indefinite lengths and reserved values */
    size_t n = (size_t)1 << (info - 24);
    if ((size_t)(end - p) < 1 + n) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = v << 8 | p[1 + i];
    *arg = v;
    if (strict && *major != SHOAL__CBOR_SIMPLE) {
        /* Shortest form: the value must not have fit a smaller head. */
        uint64_t floor_v = n == 1 ? 24 : n == 2 ? 0x100 : n == 4 ? 0x10000 : 0x100000000ull;
        if (v < floor_v) return 0;
    }
    return 1 + n;
}

/* ------------------------------------------------------------- validation */

typedef struct checker {
    const uint8_t *start, *end;
    const shoal__cbor_limits *limits;
    uint64_t items;
    char *msg;
    size_t msg_size;
} checker;

#define CFAIL(at, ...) shoal__msg(c->msg, c->msg_size, SHOAL_ECORRUPT, __VA_ARGS__)

/* Whether bytes[0..n) is well-formed UTF-8 (no overlongs, surrogates or
 * values past U+10FFFF). */
static int utf8_ok(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t b = s[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((b & 0xe0) == 0xc0) len = 2, cp = b & 0x1f, min = 0x80;
        else if ((b & 0xf0) == 0xe0) len = 3, cp = b & 0x0f, min = 0x800;
        else if ((b & 0xf8) == 0xf0) len = 4, cp = b & 0x07, min = 0x10000;
        else return 0;
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += len;
    }
    return 1;
}

int shoal__cbor_key_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    if (alen != blen) return alen < blen ? -1 : 1;
    return memcmp(a, b, alen);
}

static int check_item(checker *c, const uint8_t **pp, uint32_t depth) {
    const uint8_t *p = *pp;
    unsigned major;
    uint64_t arg;
    size_t at = (size_t)(p - c->start);
    size_t h = read_head(p, c->end, &major, &arg, 1);
    if (!h) return CFAIL(at, "cbor: bad or non-shortest head at byte %zu", at);
    if (c->limits->items && ++c->items > c->limits->items)
        return CFAIL(at, "cbor: more than %u items", c->limits->items);
    p += h;
    size_t left = (size_t)(c->end - p);
    switch (major) {
    case SHOAL__CBOR_UINT:
    case SHOAL__CBOR_NINT:
        break;
    case SHOAL__CBOR_BYTES:
    case SHOAL__CBOR_TEXT:
        if (major == SHOAL__CBOR_BYTES && !c->limits->bytes)
            return CFAIL(at, "cbor: byte string at byte %zu is not allowed", at);
        if (arg > left) return CFAIL(at, "cbor: string at byte %zu runs past the end", at);
        if (major == SHOAL__CBOR_TEXT && !utf8_ok(p, (size_t)arg))
            return CFAIL(at, "cbor: text at byte %zu is not UTF-8", at);
        p += arg;
        break;
    case SHOAL__CBOR_ARRAY:
    case SHOAL__CBOR_MAP: {
        if (depth >= c->limits->depth)
            return CFAIL(at, "cbor: nested deeper than %u at byte %zu", c->limits->depth, at);
        /* Every entry takes at least one byte (two for a map entry). */
        if (arg > left / (major == SHOAL__CBOR_MAP ? 2 : 1))
            return CFAIL(at, "cbor: %llu entries at byte %zu cannot fit", (unsigned long long)arg, at);
        const uint8_t *prev_key = NULL;
        size_t prev_len = 0;
        for (uint64_t i = 0; i < arg; i++) {
            if (major == SHOAL__CBOR_MAP) {
                unsigned km;
                uint64_t klen;
                size_t kat = (size_t)(p - c->start);
                size_t kh = read_head(p, c->end, &km, &klen, 1);
                if (!kh || km != SHOAL__CBOR_TEXT)
                    return CFAIL(kat, "cbor: map key at byte %zu is not a text string", kat);
                const uint8_t *key = p + kh;
                if (check_item(c, &p, depth + 1)) return SHOAL_ECORRUPT;
                if (prev_key && shoal__cbor_key_cmp((const char *)prev_key, prev_len,
                                                    (const char *)key, (size_t)klen) >= 0)
                    return CFAIL(kat, "cbor: map keys out of order or repeated at byte %zu", kat);
                prev_key = key;
                prev_len = (size_t)klen;
            }
            if (check_item(c, &p, depth + 1)) return SHOAL_ECORRUPT;
        }
        break;
    }
    case SHOAL__CBOR_TAG: {
        if (arg != SHOAL__CBOR_CID_TAG || !c->limits->links)
            return CFAIL(at, "cbor: tag %llu at byte %zu is not allowed", (unsigned long long)arg, at);
        unsigned bm;
        uint64_t blen;
        size_t bh = read_head(p, c->end, &bm, &blen, 1);
        if (!bh || bm != SHOAL__CBOR_BYTES || blen < 2 || blen > left - bh || p[bh] != 0)
            return CFAIL(at, "cbor: CID link at byte %zu is malformed", at);
        p += bh + blen;
        break;
    }
    default: { /* simple values and floats */
        unsigned info = (*pp)[0] & 31;
        if (info == SHOAL__CBOR_FLOAT64) {
            if (((arg >> 52) & 0x7ff) == 0x7ff)
                return CFAIL(at, "cbor: NaN or infinity at byte %zu", at);
        } else if (info != SHOAL__CBOR_FALSE && info != SHOAL__CBOR_TRUE &&
                   info != SHOAL__CBOR_NULL) {
            return CFAIL(at, "cbor: simple value or short float at byte %zu", at);
        }
        break;
    }
    }
    *pp = p;
    return SHOAL_OK;
}

int shoal__cbor_check(const uint8_t *bytes, size_t size, const shoal__cbor_limits *limits,
                      char *msg, size_t msg_size) {
    checker ck = {bytes, bytes + size, limits, 0, msg, msg_size};
    checker *c = &ck;
    if (!bytes || size == 0) return CFAIL(0, "cbor: no bytes");
    if (limits->map_top && bytes[0] >> 5 != SHOAL__CBOR_MAP)
        return CFAIL(0, "cbor: the top item is not a map");
    const uint8_t *p = bytes;
    if (check_item(c, &p, 1)) return SHOAL_ECORRUPT;
    if (p != c->end)
        return CFAIL(0, "cbor: %zu bytes follow the item", (size_t)(c->end - p));
    return SHOAL_OK;
}

/* ------------------------------------------------------------ navigation */

void shoal__cbor_item_at(const uint8_t *p, shoal__cbor_item *it) {
    it->arg = 0;
    size_t h = read_head(p, p + 9, &it->major, &it->arg, 0);
    it->data = p + h;
    if (it->major == SHOAL__CBOR_SIMPLE && (p[0] & 31) < 24) it->arg = p[0] & 31;
    it->end = shoal__cbor_skip(p);
}

const uint8_t *shoal__cbor_skip(const uint8_t *p) {
    /* Items still to skip; arrays and maps add their entries. */
    uint64_t todo = 1;
    while (todo) {
        unsigned major = 0;
        uint64_t arg = 0;
        size_t h = read_head(p, p + 9, &major, &arg, 0);
        todo--;
        p += h;
        if (major == SHOAL__CBOR_BYTES || major == SHOAL__CBOR_TEXT) p += arg;
        else if (major == SHOAL__CBOR_ARRAY) todo += arg;
        else if (major == SHOAL__CBOR_MAP) todo += 2 * arg;
        else if (major == SHOAL__CBOR_TAG) todo += 1;
    }
    return p;
}

const uint8_t *shoal__cbor_get(const shoal__cbor_item *m, const char *key, size_t len) {
    const uint8_t *p = m->data;
    for (uint64_t i = 0; i < m->arg; i++) {
        unsigned major = 0;
        uint64_t klen = 0;
        size_t h = read_head(p, p + 9, &major, &klen, 0);
        int cmp = shoal__cbor_key_cmp((const char *)p + h, (size_t)klen, key, len);
        const uint8_t *value = p + h + klen;
        if (cmp == 0) return value;
        if (cmp > 0) return NULL; /* sorted: it would have come already */
        p = shoal__cbor_skip(value);
    }
    return NULL;
}

double shoal__cbor_float_of(const shoal__cbor_item *it) {
    double v;
    uint64_t bits = it->arg;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* ----------------------------------------------------------------- links */

int shoal_dag_links(const uint8_t *block, size_t size, uint8_t (*out)[SHOAL_CID_BYTES],
                    uint32_t cap) {
    shoal__cbor_limits lim = {64, 0, 1, 1, 0};
    if (shoal__cbor_check(block, size, &lim, NULL, 0)) return SHOAL_ECORRUPT;
    /* Items are laid out in order, children inline: one pass over the heads
     * visits every item, and a tag's payload is the head that follows. */
    const uint8_t *p = block, *end = block + size;
    uint32_t n = 0;
    while (p < end) {
        unsigned major = 0;
        uint64_t arg = 0;
        size_t h = read_head(p, end, &major, &arg, 0);
        p += h;
        if (major == SHOAL__CBOR_BYTES || major == SHOAL__CBOR_TEXT) {
            p += arg;
        } else if (major == SHOAL__CBOR_TAG) { /* 42: bytes 0x00 + CID */
            uint64_t blen = 0;
            size_t bh = read_head(p, end, &major, &blen, 0);
            const uint8_t *cid = p + bh + 1;
            if (blen != SHOAL_CID_BYTES + 1 || cid[0] != 0x01 ||
                (cid[1] != SHOAL_CODEC_RAW && cid[1] != SHOAL_CODEC_DAG_CBOR) || cid[2] != 0x12 ||
                cid[3] != 0x20)
                return SHOAL_ECORRUPT;
            if (n < cap) memcpy(out[n], cid, SHOAL_CID_BYTES);
            n++;
            p += bh + blen;
        }
    }
    return (int)(n > INT32_MAX ? INT32_MAX : n);
}
