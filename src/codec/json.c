/*
 * json.c -- JSON text to canonical DAG-CBOR and back (json.h).
 *
 * A recursive-descent parser over RFC 8259 that writes CBOR as it goes.
 * Objects are the one place where order changes: DAG-CBOR sorts keys, so
 * each member is written in arrival order, its (key, bytes) span noted,
 * and when the object closes the members are moved into sorted order.  The
 * member notes live in one stack-disciplined array shared by all nesting
 * levels, so a document costs one output buffer, one copy buffer and one
 * note per member, whatever its shape.
 *
 * strtod turns number text into the nearest double in every libc we build
 * with (glibc, musl under Emscripten and wasi-libc), and the output side
 * prints the shortest "%.Ng" that reads back to the same double, so text
 * and bytes agree across builds.
 */
#include <stdio.h>
#include <stdlib.h>

#include "codec/json.h"

#define PATH_MAX_TEXT 160

typedef struct member {
    size_t key_at, key_len;   /* the key's text bytes, in out */
    size_t start, end;        /* the member's CBOR (key item + value), in out */
} member;

typedef struct parser {
    const char *s, *p, *end;
    shoal__cbor_out *out;
    uint32_t max_depth;
    member *members;
    uint32_t nmembers, members_cap;
    char path[PATH_MAX_TEXT];
    size_t path_len;
    char *msg;
    size_t msg_size;
    int error;
} parser;

static int fail_at(parser *ps, const char *what) {
    if (ps->error) return ps->error;
    ps->error = SHOAL_EPARAM;
    shoal__msg(ps->msg, ps->msg_size, SHOAL_EPARAM, "%s at %s (byte %zu)", what,
               ps->path_len ? ps->path : "$", (size_t)(ps->p - ps->s));
    return ps->error;
}

static int out_failed(parser *ps) {
    if (!ps->out->error) return 0;
    if (!ps->error) {
        ps->error = ps->out->error;
        shoal__msg(ps->msg, ps->msg_size, ps->error,
                   ps->error == SHOAL_ETOOBIG ? "metadata larger than %zu bytes encoded"
                                              : "out of memory parsing JSON (%zu bytes)",
                   ps->error == SHOAL_ETOOBIG ? ps->out->max : (size_t)(ps->end - ps->s));
    }
    return 1;
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

/* Path bookkeeping for messages: push ".key" or "[i]", pop back. */
static size_t path_push_key(parser *ps, const char *k, size_t n) {
    size_t was = ps->path_len;
    if (!was) ps->path[ps->path_len++] = '$';
    int w = snprintf(ps->path + ps->path_len, sizeof ps->path - ps->path_len, ".%.*s",
                     (int)(n > 40 ? 40 : n), k);
    if (w > 0) ps->path_len += (size_t)w < sizeof ps->path - ps->path_len ? (size_t)w : 0;
    return was;
}
static size_t path_push_index(parser *ps, uint64_t i) {
    size_t was = ps->path_len;
    if (!was) ps->path[ps->path_len++] = '$';
    int w = snprintf(ps->path + ps->path_len, sizeof ps->path - ps->path_len, "[%llu]",
                     (unsigned long long)i);
    if (w > 0) ps->path_len += (size_t)w < sizeof ps->path - ps->path_len ? (size_t)w : 0;
    return was;
}
static void path_pop(parser *ps, size_t was) {
    ps->path_len = was;
    ps->path[was] = '\0';
}

static int hex4(const char *p, uint32_t *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return 0;
        *v = *v << 4 | (uint32_t)d;
    }
    return 1;
}

static void put_utf8(shoal__cbor_out *out, uint32_t cp) {
    uint8_t b[4];
    size_t n;
    if (cp < 0x80) b[0] = (uint8_t)cp, n = 1;
    else if (cp < 0x800) b[0] = (uint8_t)(0xc0 | cp >> 6), b[1] = (uint8_t)(0x80 | (cp & 63)), n = 2;
    else if (cp < 0x10000)
        b[0] = (uint8_t)(0xe0 | cp >> 12), b[1] = (uint8_t)(0x80 | (cp >> 6 & 63)),
        b[2] = (uint8_t)(0x80 | (cp & 63)), n = 3;
    else
        b[0] = (uint8_t)(0xf0 | cp >> 18), b[1] = (uint8_t)(0x80 | (cp >> 12 & 63)),
        b[2] = (uint8_t)(0x80 | (cp >> 6 & 63)), b[3] = (uint8_t)(0x80 | (cp & 63)), n = 4;
    shoal__cbor_raw(out, b, n);
}

/* The length of the valid UTF-8 sequence at p (up to end), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned char b = p[0];
    size_t len;
    uint32_t cp, min;
    if (b < 0x80) return 1;
    if ((b & 0xe0) == 0xc0) len = 2, cp = b & 0x1f, min = 0x80;
    else if ((b & 0xf0) == 0xe0) len = 3, cp = b & 0x0f, min = 0x800;
    else if ((b & 0xf8) == 0xf0) len = 4, cp = b & 0x07, min = 0x10000;
    else return 0;
    if ((size_t)(end - p) < len) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/* A JSON string at ps->p (the opening quote) as a CBOR text item.  The
 * decoded bytes' position and length go to *at / *len. */
static int parse_string(parser *ps, size_t *at, size_t *len) {
    ps->p++; /* " */
    /* Decode into the output after a 9-byte head placeholder, then move the
     * bytes left over the unused part of it. */
    size_t head_at = ps->out->len;
    uint8_t placeholder[9] = {0};
    shoal__cbor_raw(ps->out, placeholder, sizeof placeholder);
    size_t body = ps->out->len;
    while (1) {
        if (out_failed(ps)) return ps->error;
        if (ps->p >= ps->end) return fail_at(ps, "unterminated string");
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c < 0x20) return fail_at(ps, "control character in a string");
        if (c != '\\') {
            size_t n = utf8_len((const unsigned char *)ps->p, (const unsigned char *)ps->end);
            if (!n) return fail_at(ps, "invalid UTF-8 in a string");
            shoal__cbor_raw(ps->out, ps->p, n);
            ps->p += n;
            continue;
        }
        if (ps->end - ps->p < 2) return fail_at(ps, "unterminated escape");
        char e = ps->p[1];
        ps->p += 2;
        uint8_t simple = 0;
        switch (e) {
        case '"': simple = '"'; break;
        case '\\': simple = '\\'; break;
        case '/': simple = '/'; break;
        case 'b': simple = '\b'; break;
        case 'f': simple = '\f'; break;
        case 'n': simple = '\n'; break;
        case 'r': simple = '\r'; break;
        case 't': simple = '\t'; break;
        case 'u': {
            uint32_t u, lo;
            if (ps->end - ps->p < 4 || !hex4(ps->p, &u)) return fail_at(ps, "bad \\u escape");
            ps->p += 4;
            if (u >= 0xdc00 && u <= 0xdfff) return fail_at(ps, "lone low surrogate");
            if (u >= 0xd800 && u <= 0xdbff) {
                if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' ||
                    !hex4(ps->p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return fail_at(ps, "lone high surrogate");
                ps->p += 6;
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            }
            put_utf8(ps->out, u);
            continue;
        }
        default:
            return fail_at(ps, "unknown escape");
        }
        shoal__cbor_raw(ps->out, &simple, 1);
    }
    if (out_failed(ps)) return ps->error;
    size_t n = ps->out->len - body;
    /* The real head, then the bytes moved down behind it. */
    shoal__cbor_out head;
    uint8_t hb[9];
    shoal__cbor_out_init(&head, NULL, 0);
    head.buf = hb;
    head.cap = sizeof hb;
    shoal__cbor_head(&head, SHOAL__CBOR_TEXT, n);
    memcpy(ps->out->buf + head_at, hb, head.len);
    memmove(ps->out->buf + head_at + head.len, ps->out->buf + body, n);
    ps->out->len = head_at + head.len + n;
    *at = head_at + head.len;
    *len = n;
    return SHOAL_OK;
}

static int parse_number(parser *ps) {
    const char *start = ps->p, *q = ps->p;
    if (q < ps->end && *q == '-') q++;
    if (q >= ps->end) return fail_at(ps, "bad number");
    if (*q == '0') q++;
    else if (*q >= '1' && *q <= '9') while (q < ps->end && *q >= '0' && *q <= '9') q++;
    else return fail_at(ps, "bad number");
    if (q < ps->end && *q == '.') {
        q++;
        if (q >= ps->end || *q < '0' || *q > '9') return fail_at(ps, "bad number");
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < ps->end && (*q == '+' || *q == '-')) q++;
        if (q >= ps->end || *q < '0' || *q > '9') return fail_at(ps, "bad number");
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    char buf[512];
    size_t n = (size_t)(q - start);
    if (n >= sizeof buf) return fail_at(ps, "number longer than 511 characters");
    memcpy(buf, start, n);
    buf[n] = '\0';
    double v = strtod(buf, NULL);
    if (v != v || v - v != 0.0) return fail_at(ps, "number out of range");
    ps->p = q;
    const double safe = 9007199254740991.0; /* 2^53 - 1 */
    if (v >= -safe && v <= safe && (double)(int64_t)v == v)
        shoal__cbor_int(ps->out, (int64_t)v);
    else
        shoal__cbor_float(ps->out, v);
    return SHOAL_OK;
}

static int literal(parser *ps, const char *word, unsigned simple) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n)) return fail_at(ps, "unexpected text");
    ps->p += n;
    shoal__cbor_simple(ps->out, simple);
    return SHOAL_OK;
}

static int parse_value(parser *ps, uint32_t depth);

/* Sorts the members [first, first + n) of an object whose CBOR spans
 * out[start, end) and rewrites the region as head + sorted members. */
static int close_object(parser *ps, uint32_t first, uint32_t n, size_t start) {
    member *m = ps->members + first;
    const char *base = (const char *)ps->out->buf;
    /* Insertion sort: objects are small, and ties are errors anyway. */
    for (uint32_t i = 1; i < n; i++) {
        member t = m[i];
        uint32_t j = i;
        while (j > 0 && shoal__cbor_key_cmp(base + m[j - 1].key_at, m[j - 1].key_len,
                                            base + t.key_at, t.key_len) > 0) {
            m[j] = m[j - 1];
            j--;
        }
        m[j] = t;
    }
    for (uint32_t i = 1; i < n; i++)
        if (!shoal__cbor_key_cmp(base + m[i - 1].key_at, m[i - 1].key_len, base + m[i].key_at,
                                 m[i].key_len)) {
            char what[96];
            snprintf(what, sizeof what, "repeated key \"%.*s\"",
                     (int)(m[i].key_len > 40 ? 40 : m[i].key_len), base + m[i].key_at);
            return fail_at(ps, what);
        }
    size_t end = ps->out->len, size = end - start;
    uint8_t *copy = shoal__alloc(ps->out->mem, size ? size : 1);
    if (!copy) {
        ps->out->error = SHOAL_ENOMEM;
        out_failed(ps);
        return ps->error;
    }
    memcpy(copy, ps->out->buf + start, size);
    ps->out->len = start;
    shoal__cbor_head(ps->out, SHOAL__CBOR_MAP, n);
    for (uint32_t i = 0; i < n; i++)
        shoal__cbor_raw(ps->out, copy + (m[i].start - start), m[i].end - m[i].start);
    shoal__free(ps->out->mem, copy);
    return out_failed(ps) ? ps->error : SHOAL_OK;
}

static int parse_object(parser *ps, uint32_t depth) {
    ps->p++; /* { */
    size_t start = ps->out->len;
    uint32_t first = ps->nmembers, n = 0;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        shoal__cbor_head(ps->out, SHOAL__CBOR_MAP, 0);
        return out_failed(ps) ? ps->error : SHOAL_OK;
    }
    while (1) {
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != '"') return fail_at(ps, "expected a key");
        if (shoal__grow(ps->out->mem, (void **)&ps->members, &ps->members_cap, ps->nmembers + 1,
                        sizeof *ps->members)) {
            ps->out->error = SHOAL_ENOMEM;
            out_failed(ps);
            return ps->error;
        }
        member *m = &ps->members[ps->nmembers++];
        n++;
        m->start = ps->out->len;
        size_t key_at, key_len;
        if (parse_string(ps, &key_at, &key_len)) return ps->error;
        m = &ps->members[ps->nmembers - 1];
        m->key_at = key_at;
        m->key_len = key_len;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') return fail_at(ps, "expected ':'");
        ps->p++;
        size_t was = path_push_key(ps, (const char *)ps->out->buf + key_at, key_len);
        if (parse_value(ps, depth + 1)) return ps->error;
        path_pop(ps, was);
        ps->members[first + n - 1].end = ps->out->len;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            break;
        }
        return fail_at(ps, "expected ',' or '}'");
    }
    int rc = close_object(ps, first, n, start);
    ps->nmembers = first;
    return rc;
}

static int parse_array(parser *ps, uint32_t depth) {
    ps->p++; /* [ */
    /* Elements first, then the head in front (the count is known only at
     * the end). */
    size_t start = ps->out->len;
    uint64_t n = 0;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
    } else {
        while (1) {
            size_t was = path_push_index(ps, n);
            if (parse_value(ps, depth + 1)) return ps->error;
            path_pop(ps, was);
            n++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == ']') {
                ps->p++;
                break;
            }
            return fail_at(ps, "expected ',' or ']'");
        }
    }
    uint8_t hb[9];
    shoal__cbor_out head;
    shoal__cbor_out_init(&head, NULL, 0);
    head.buf = hb;
    head.cap = sizeof hb;
    shoal__cbor_head(&head, SHOAL__CBOR_ARRAY, n);
    size_t body = ps->out->len - start;
    shoal__cbor_raw(ps->out, hb, head.len); /* grow by the head's size */
    if (out_failed(ps)) return ps->error;
    memmove(ps->out->buf + start + head.len, ps->out->buf + start, body);
    memcpy(ps->out->buf + start, hb, head.len);
    return SHOAL_OK;
}

static int parse_value(parser *ps, uint32_t depth) {
    if (depth > ps->max_depth) {
        char what[64];
        snprintf(what, sizeof what, "nested deeper than %u", ps->max_depth);
        return fail_at(ps, what);
    }
    skip_ws(ps);
    if (ps->p >= ps->end) return fail_at(ps, "expected a value");
    int rc;
    switch (*ps->p) {
    case '{': rc = parse_object(ps, depth); break;
    case '[': rc = parse_array(ps, depth); break;
    case '"': {
        size_t at, len;
        rc = parse_string(ps, &at, &len);
        break;
    }
    case 't': rc = literal(ps, "true", SHOAL__CBOR_TRUE); break;
    case 'f': rc = literal(ps, "false", SHOAL__CBOR_FALSE); break;
    case 'n': rc = literal(ps, "null", SHOAL__CBOR_NULL); break;
    default: rc = parse_number(ps); break;
    }
    if (!rc && out_failed(ps)) rc = ps->error;
    return rc;
}

int shoal__json_to_cbor(const char *text, size_t len, uint32_t max_depth, shoal__cbor_out *out,
                        char *msg, size_t msg_size) {
    parser ps;
    memset(&ps, 0, sizeof ps);
    ps.s = ps.p = text;
    ps.end = text + len;
    ps.out = out;
    ps.max_depth = max_depth;
    ps.msg = msg;
    ps.msg_size = msg_size;
    if (!text) return shoal__msg(msg, msg_size, SHOAL_EPARAM, "JSON text is NULL");
    size_t start = out->len;
    int rc = parse_value(&ps, 1);
    if (!rc) {
        skip_ws(&ps);
        if (ps.p != ps.end) rc = fail_at(&ps, "text after the value");
    }
    shoal__free(out->mem, ps.members);
    if (rc) out->len = start;
    return rc;
}

/* ----------------------------------------------------------- CBOR -> JSON */

static void put_str(shoal__cbor_out *out, const char *s) { shoal__cbor_raw(out, s, strlen(s)); }

static void put_json_string(shoal__cbor_out *out, const uint8_t *s, size_t n) {
    shoal__cbor_raw(out, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        shoal__cbor_raw(out, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"': put_str(out, "\\\""); break;
        case '\\': put_str(out, "\\\\"); break;
        case '\n': put_str(out, "\\n"); break;
        case '\r': put_str(out, "\\r"); break;
        case '\t': put_str(out, "\\t"); break;
        case '\b': put_str(out, "\\b"); break;
        case '\f': put_str(out, "\\f"); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put_str(out, esc);
        }
    }
    shoal__cbor_raw(out, s + run, n - run);
    shoal__cbor_raw(out, "\"", 1);
}

static void put_double(shoal__cbor_out *out, double v) {
    char buf[40];
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) break;
    }
    put_str(out, buf);
}

static const uint8_t *to_json(const uint8_t *p, shoal__cbor_out *out) {
    shoal__cbor_item it;
    shoal__cbor_item_at(p, &it);
    char buf[32];
    switch (it.major) {
    case SHOAL__CBOR_UINT:
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)it.arg);
        put_str(out, buf);
        break;
    case SHOAL__CBOR_NINT:
        if (it.arg == UINT64_MAX) put_str(out, "-18446744073709551616");
        else {
            snprintf(buf, sizeof buf, "-%llu", (unsigned long long)it.arg + 1);
            put_str(out, buf);
        }
        break;
    case SHOAL__CBOR_TEXT:
        put_json_string(out, it.data, (size_t)it.arg);
        break;
    case SHOAL__CBOR_ARRAY: {
        const uint8_t *q = it.data;
        shoal__cbor_raw(out, "[", 1);
        for (uint64_t i = 0; i < it.arg; i++) {
            if (i) shoal__cbor_raw(out, ",", 1);
            q = to_json(q, out);
        }
        shoal__cbor_raw(out, "]", 1);
        break;
    }
    case SHOAL__CBOR_MAP: {
        const uint8_t *q = it.data;
        shoal__cbor_raw(out, "{", 1);
        for (uint64_t i = 0; i < it.arg; i++) {
            if (i) shoal__cbor_raw(out, ",", 1);
            q = to_json(q, out);
            shoal__cbor_raw(out, ":", 1);
            q = to_json(q, out);
        }
        shoal__cbor_raw(out, "}", 1);
        break;
    }
    case SHOAL__CBOR_SIMPLE:
        if ((p[0] & 31) == SHOAL__CBOR_FLOAT64) put_double(out, shoal__cbor_float_of(&it));
        else put_str(out, it.arg == SHOAL__CBOR_TRUE ? "true" : it.arg == SHOAL__CBOR_FALSE ? "false" : "null");
        break;
    default: /* byte strings and links have no JSON form in metadata */
        put_str(out, "null");
        break;
    }
    return it.end;
}

void shoal__cbor_to_json(const uint8_t *p, shoal__cbor_out *out) { to_json(p, out); }
