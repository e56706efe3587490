/*
 * cbor.c -- a small DAG-CBOR reader, for what the CLI prints about a
 * collection's manifest (docs/FORMAT.md, "Collections"): segment entries,
 * configuration, links.
 *
 * The core validates every manifest before the CLI reads one
 * (shoal_collection_open checks it as canonical DAG-CBOR and against its
 * schema), and the public header has no accessor for a segment's entry, so
 * the host reads the fields it prints itself.  Validated or not, every read
 * here is bounds-checked: a malformed item reads as missing, never past the
 * buffer.  Only what DAG-CBOR allows is understood: definite lengths,
 * integers, byte and text strings, arrays, maps, tag 42 (links), false,
 * true, null and float64.
 */
#include <string.h>

#include "cli.h"

enum { MAJ_UINT = 0, MAJ_NEG = 1, MAJ_BYTES = 2, MAJ_TEXT = 3, MAJ_ARRAY = 4, MAJ_MAP = 5,
       MAJ_TAG = 6, MAJ_SIMPLE = 7 };

#define DEPTH_MAX 64

/* The head at p: its length in bytes, or 0 if malformed or cut short. */
static size_t head(const uint8_t *p, const uint8_t *end, unsigned *major, uint64_t *arg) {
    if (!p || p >= end) return 0;
    unsigned info = p[0] & 31u;
    *major = p[0] >> 5;
    if (info < 24) {
        *arg = info;
        return 1;
    }
    if (info > 27) return 0;
    size_t n = (size_t)1 << (info - 24);
    if ((size_t)(end - p) < 1 + n) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = v << 8 | p[1 + i];
    *arg = v;
    return 1 + n;
}

/* The end of the item at p, or NULL. */
static const uint8_t *skip(const uint8_t *p, const uint8_t *end, int depth) {
    unsigned major;
    uint64_t arg;
    size_t h = head(p, end, &major, &arg);
    if (!h || depth > DEPTH_MAX) return NULL;
    p += h;
    switch (major) {
    case MAJ_BYTES:
    case MAJ_TEXT: return arg <= (uint64_t)(end - p) ? p + arg : NULL;
    case MAJ_ARRAY:
    case MAJ_MAP:
        for (uint64_t i = 0; i < (major == MAJ_MAP ? 2 : 1) * arg; i++)
            if (!(p = skip(p, end, depth + 1))) return NULL;
        return p;
    case MAJ_TAG: return skip(p, end, depth + 1);
    default: return p;
    }
}

cli_cbor cli_cbor_at(const uint8_t *bytes, size_t size) {
    cli_cbor v = {bytes, bytes ? bytes + size : NULL};
    return v;
}

int cli_cbor_ok(cli_cbor v) { return v.p && v.p < v.end; }

static const cli_cbor MISSING = {NULL, NULL};

cli_cbor cli_cbor_get(cli_cbor map, const char *key) {
    unsigned major;
    uint64_t n;
    size_t h = head(map.p, map.end, &major, &n);
    if (!h || major != MAJ_MAP) return MISSING;
    const uint8_t *p = map.p + h;
    size_t klen = strlen(key);
    for (uint64_t i = 0; i < n && p; i++) {
        unsigned km;
        uint64_t kl;
        size_t kh = head(p, map.end, &km, &kl);
        const uint8_t *value = skip(p, map.end, 0);
        if (!kh || !value) return MISSING;
        if (km == MAJ_TEXT && kl == klen && !memcmp(p + kh, key, klen)) {
            cli_cbor v = {value, map.end};
            return v;
        }
        p = skip(value, map.end, 0);
    }
    return MISSING;
}

uint32_t cli_cbor_count(cli_cbor v) {
    unsigned major;
    uint64_t n;
    if (!head(v.p, v.end, &major, &n) || (major != MAJ_ARRAY && major != MAJ_MAP)) return 0;
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

cli_cbor cli_cbor_index(cli_cbor array, uint32_t i) {
    unsigned major;
    uint64_t n;
    size_t h = head(array.p, array.end, &major, &n);
    if (!h || major != MAJ_ARRAY || i >= n) return MISSING;
    const uint8_t *p = array.p + h;
    for (uint32_t j = 0; j < i && p; j++) p = skip(p, array.end, 0);
    if (!p) return MISSING;
    cli_cbor v = {p, array.end};
    return v;
}

int cli_cbor_uint(cli_cbor v, uint64_t *out) {
    unsigned major;
    return head(v.p, v.end, &major, out) && major == MAJ_UINT ? 0 : -1;
}

int cli_cbor_int(cli_cbor v, int64_t *out) {
    unsigned major;
    uint64_t arg;
    if (!head(v.p, v.end, &major, &arg) || arg > INT64_MAX) return -1;
    if (major == MAJ_UINT) *out = (int64_t)arg;
    else if (major == MAJ_NEG) *out = -1 - (int64_t)arg;
    else return -1;
    return 0;
}

int cli_cbor_text(cli_cbor v, const char **s, size_t *len) {
    unsigned major;
    uint64_t n;
    size_t h = head(v.p, v.end, &major, &n);
    if (!h || major != MAJ_TEXT || n > (uint64_t)(v.end - v.p - (ptrdiff_t)h)) return -1;
    *s = (const char *)v.p + h;
    *len = (size_t)n;
    return 0;
}

int cli_cbor_link(cli_cbor v, uint8_t cid[SHOAL_CID_BYTES]) {
    unsigned major;
    uint64_t arg;
    size_t h = head(v.p, v.end, &major, &arg);
    if (!h || major != MAJ_TAG || arg != 42) return -1;
    const uint8_t *p = v.p + h;
    size_t bh = head(p, v.end, &major, &arg);
    /* bytes: 0x00, then the binary CID */
    if (!bh || major != MAJ_BYTES || arg != SHOAL_CID_BYTES + 1 ||
        (size_t)(v.end - p) < bh + arg || p[bh] != 0)
        return -1;
    memcpy(cid, p + bh + 1, SHOAL_CID_BYTES);
    return 0;
}

int cli_cbor_is_null(cli_cbor v) { return cli_cbor_ok(v) && v.p[0] == 0xf6; }

static void json_of(FILE *f, const uint8_t *p, const uint8_t *end, int depth) {
    unsigned major;
    uint64_t arg;
    size_t h = head(p, end, &major, &arg);
    if (!h || depth > DEPTH_MAX) {
        fputs("null", f);
        return;
    }
    cli_cbor v = {p, end};
    const uint8_t *q = p + h;
    switch (major) {
    case MAJ_UINT: fprintf(f, "%llu", (unsigned long long)arg); break;
    case MAJ_NEG:
        if (arg < (uint64_t)INT64_MAX) fprintf(f, "%lld", -1 - (long long)arg);
        else fprintf(f, "-1-%llu", (unsigned long long)arg); /* (not a DAG-CBOR manifest value) */
        break;
    case MAJ_TEXT: {
        const char *s;
        size_t len;
        if (cli_cbor_text(v, &s, &len)) fputs("null", f);
        else json_write_string(f, s, len);
        break;
    }
    case MAJ_BYTES: fprintf(f, "{\"/\":{\"bytes\":%llu}}", (unsigned long long)arg); break;
    case MAJ_ARRAY:
        fputc('[', f);
        for (uint64_t i = 0; i < arg && q; i++) {
            if (i) fputc(',', f);
            json_of(f, q, end, depth + 1);
            q = skip(q, end, depth + 1);
        }
        fputc(']', f);
        break;
    case MAJ_MAP:
        fputc('{', f);
        for (uint64_t i = 0; i < arg && q; i++) {
            if (i) fputc(',', f);
            json_of(f, q, end, depth + 1);
            fputc(':', f);
            q = skip(q, end, depth + 1);
            if (q) json_of(f, q, end, depth + 1);
            if (q) q = skip(q, end, depth + 1);
        }
        fputc('}', f);
        break;
    case MAJ_TAG: {
        uint8_t cid[SHOAL_CID_BYTES];
        char text[SHOAL_CID_SIZE];
        if (!cli_cbor_link(v, cid) && shoal_cid_format(cid, text) > 0) fprintf(f, "{\"/\":\"%s\"}", text);
        else fputs("null", f);
        break;
    }
    default:
        if (p[0] == 0xf4) fputs("false", f);
        else if (p[0] == 0xf5) fputs("true", f);
        else if (p[0] == 0xfb && h == 9) {
            double d;
            uint64_t bits = arg;
            memcpy(&d, &bits, sizeof d);
            json_write_float(f, d);
        } else {
            fputs("null", f);
        }
    }
}

void cli_cbor_json(FILE *f, cli_cbor v) { json_of(f, v.p, v.end, 0); }
