/*
 * json.c -- exactly the JSON the CLI needs: a strict reader for one JSONL
 * record line, and writers for strings and floats.
 *
 * Reader
 *   A JSONL record is one object per line:
 *       {"id": "doc-1", "vector": [0.1, -2e-3, ...], "metadata": {...}}
 *   "id" is a string (1..1024 bytes once unescaped) or an integer (kept as
 *   written); "vector" an array of numbers; "metadata" a JSON value whose
 *   text is handed to the core (which stores an object as canonical
 *   DAG-CBOR and reports anything else); "time" an integer (milliseconds
 *   since the epoch); other fields are validated and skipped.  Input is treated as hostile: the reader
 *   works on a byte range (NUL bytes are just invalid characters), never
 *   reads past it, limits nesting to 64 levels with an explicit depth count
 *   (so a line of a million '[' cannot overflow the stack -- the WASI build
 *   has a small one), rejects raw control characters, invalid UTF-8, lone
 *   surrogates, duplicate keys, trailing garbage and numbers that are not
 *   finite as float32.  Errors carry the 1-based column.
 *
 *   A general JSON DOM would be more code and more memory for nothing: the
 *   one value we keep, the vector, goes straight into a float buffer.
 *
 *   Numbers are converted with strtof on the validated text, which is
 *   correctly rounded in glibc and in wasi-libc alike, so native and WASI
 *   builds read identical floats (and so write identical segments).
 *
 * Writer
 *   Strings are escaped per RFC 8259; bytes that are not valid UTF-8
 *   (ids are byte strings) become \u00XX -- lossless for any byte, though a
 *   reader sees Latin-1 there.  Floats are printed with "%.9g", enough to
 *   round-trip a float32; both printf implementations convert exactly, so
 *   the text is the same in every build.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define JSON_DEPTH_MAX 64
#define JSON_NUMBER_MAX 512

typedef struct jp {
    const char *start, *p, *end;
    char *err;
    size_t err_size;
} jp;

static int jfail(jp *j, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int jfail(jp *j, const char *fmt, ...) {
    int n = snprintf(j->err, j->err_size, "column %zu: ", (size_t)(j->p - j->start) + 1);
    if (n < 0 || (size_t)n >= j->err_size) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->err + n, j->err_size - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static void ws(jp *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
        j->p++;
}

static int peek(jp *j) { return j->p < j->end ? (unsigned char)*j->p : -1; }

/* "what was found" for messages */
static const char *found(jp *j) {
    static const char *const names[] = {"end of line", "'\"'", "'{'", "'['", "another character"};
    int c = peek(j);
    return c < 0 ? names[0] : c == '"' ? names[1] : c == '{' ? names[2] : c == '[' ? names[3]
                                                                                 : names[4];
}

static int expect(jp *j, char c, const char *where) {
    ws(j);
    if (peek(j) != (unsigned char)c) return jfail(j, "expected '%c' %s, found %s", c, where, found(j));
    j->p++;
    return 0;
}

/* ---------------------------------------------------------------- strings */

static int hex4(jp *j, uint32_t *out) {
    if (j->end - j->p < 4) return jfail(j, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = j->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return jfail(j, "bad \\u escape");
    }
    j->p += 4;
    *out = v;
    return 0;
}

static void put(char *out, size_t cap, size_t *len, const char *bytes, size_t n) {
    if (out && *len + n <= cap) memcpy(out + *len, bytes, n);
    *len += n;
}

/* Length of a valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Parses a string at j->p (which must be '"'), decoding into out[cap] when
 * out is not NULL; *len is the full decoded length even past cap. */
static int parse_string(jp *j, char *out, size_t cap, size_t *len) {
    *len = 0;
    j->p++; /* opening quote */
    for (;;) {
        if (j->p >= j->end) return jfail(j, "unterminated string");
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            return 0;
        }
        if (c < 0x20) return jfail(j, "raw control character in a string (escape it)");
        if (c == '\\') {
            j->p++;
            if (j->p >= j->end) return jfail(j, "unterminated string");
            char e = *j->p++, b;
            switch (e) {
            case '"': b = '"'; break;
            case '\\': b = '\\'; break;
            case '/': b = '/'; break;
            case 'b': b = '\b'; break;
            case 'f': b = '\f'; break;
            case 'n': b = '\n'; break;
            case 'r': b = '\r'; break;
            case 't': b = '\t'; break;
            case 'u': {
                uint32_t cp;
                if (hex4(j, &cp)) return -1;
                if (cp >= 0xdc00 && cp <= 0xdfff) return jfail(j, "lone low surrogate in \\u escape");
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    uint32_t lo;
                    if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
                        return jfail(j, "high surrogate not followed by a low one");
                    j->p += 2;
                    if (hex4(j, &lo)) return -1;
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return jfail(j, "high surrogate not followed by a low one");
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                char u[4];
                size_t n;
                if (cp < 0x80) u[0] = (char)cp, n = 1;
                else if (cp < 0x800)
                    u[0] = (char)(0xc0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
                else if (cp < 0x10000)
                    u[0] = (char)(0xe0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
                    u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
                else
                    u[0] = (char)(0xf0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
                    u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)),
                    n = 4;
                put(out, cap, len, u, n);
                continue;
            }
            default: j->p--; return jfail(j, "unknown escape '\\%c'", e >= 0x20 && e < 0x7f ? e : '?');
            }
            put(out, cap, len, &b, 1);
            continue;
        }
        size_t n = utf8_len((const unsigned char *)j->p, (const unsigned char *)j->end);
        if (!n) return jfail(j, "invalid UTF-8 in a string");
        put(out, cap, len, j->p, n);
        j->p += n;
    }
}

/* ---------------------------------------------------------------- numbers */

/* Length of a JSON number at p, or 0.  *integer: no fraction or exponent. */
static size_t scan_number(const char *p, const char *end, int *integer) {
    const char *s = p;
    *integer = 1;
    if (p < end && *p == '-') p++;
    if (p >= end) return 0;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9')
        while (p < end && *p >= '0' && *p <= '9') p++;
    else return 0;
    if (p < end && *p == '.') {
        *integer = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *integer = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    return (size_t)(p - s);
}

int json_parse_float(const char *p, size_t len, float *out) {
    int integer;
    if (len == 0 || len >= JSON_NUMBER_MAX || scan_number(p, p + len, &integer) != len) return -1;
    char buf[JSON_NUMBER_MAX];
    memcpy(buf, p, len);
    buf[len] = '\0';
    errno = 0;
    float v = strtof(buf, NULL);
    if (!isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* ------------------------------------------------------------ any value */

/* Validates and skips one value of any type.  Iterative over nesting: a
 * small stack of container kinds, JSON_DEPTH_MAX deep. */
static int skip_value(jp *j) {
    char stack[JSON_DEPTH_MAX];
    int depth = 0;
    for (;;) {
        ws(j);
        int c = peek(j);
        /* one value */
        if (c == '{' || c == '[') {
            if (depth == JSON_DEPTH_MAX) return jfail(j, "nested deeper than %d levels", JSON_DEPTH_MAX);
            stack[depth++] = (char)c;
            j->p++;
            ws(j);
            if (peek(j) == (c == '{' ? '}' : ']')) {
                j->p++;
                depth--;
                goto after_value;
            }
            if (c == '{') {
                size_t len;
                if (peek(j) != '"') return jfail(j, "expected a key string, found %s", found(j));
                if (parse_string(j, NULL, 0, &len) || expect(j, ':', "after a key")) return -1;
            }
            continue;
        } else if (c == '"') {
            size_t len;
            if (parse_string(j, NULL, 0, &len)) return -1;
        } else if (c == 't' || c == 'f' || c == 'n') {
            const char *word = c == 't' ? "true" : c == 'f' ? "false" : "null";
            size_t n = strlen(word);
            if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n))
                return jfail(j, "invalid literal");
            j->p += n;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            int integer;
            size_t n = scan_number(j->p, j->end, &integer);
            if (!n) return jfail(j, "invalid number");
            j->p += n;
        } else {
            return jfail(j, "expected a value, found %s", found(j));
        }
    after_value:
        /* close containers as far as possible */
        for (;;) {
            if (depth == 0) return 0;
            ws(j);
            char open = stack[depth - 1];
            char close = open == '{' ? '}' : ']';
            int d = peek(j);
            if (d == ',') {
                j->p++;
                if (open == '{') {
                    size_t len;
                    ws(j);
                    if (peek(j) != '"') return jfail(j, "expected a key string, found %s", found(j));
                    if (parse_string(j, NULL, 0, &len) || expect(j, ':', "after a key")) return -1;
                }
                break; /* next value */
            }
            if (d == (unsigned char)close) {
                j->p++;
                depth--;
                continue;
            }
            return jfail(j, "expected ',' or '%c', found %s", close, found(j));
        }
    }
}

/* ------------------------------------------------------------ the record */

static int parse_vector(jp *j, float **vec, size_t *cap, uint32_t *count) {
    uint32_t n = 0;
    j->p++; /* '[' */
    ws(j);
    if (peek(j) == ']') return jfail(j, "the vector is empty");
    for (;;) {
        ws(j);
        int integer;
        size_t len = scan_number(j->p, j->end, &integer);
        if (!len) return jfail(j, "vector element %u is not a number", n);
        float v;
        if (json_parse_float(j->p, len, &v))
            return jfail(j, "vector element %u (%.*s) is not finite as a float32", n,
                         len > 40 ? 40 : (int)len, j->p);
        if (n == SHOAL_DIM_MAX) return jfail(j, "the vector has more than %u elements", SHOAL_DIM_MAX);
        if (n == *cap) {
            size_t c = *cap ? *cap * 2 : 256;
            float *nv = realloc(*vec, c * sizeof *nv);
            if (!nv) return jfail(j, "out of memory");
            *vec = nv;
            *cap = c;
        }
        (*vec)[n++] = v;
        j->p += len;
        ws(j);
        int c = peek(j);
        if (c == ',') {
            j->p++;
            continue;
        }
        if (c == ']') {
            j->p++;
            break;
        }
        return jfail(j, "expected ',' or ']' in the vector, found %s", found(j));
    }
    *count = n;
    return 0;
}

int json_parse_record(const char *p, const char *end, json_record *rec, float **vec,
                      size_t *vec_cap, uint32_t *count, char *err, size_t err_size) {
    jp j = {p, p, end, err, err_size};
    memset(rec, 0, sizeof *rec);
    *count = 0;
    ws(&j);
    if (peek(&j) != '{') return jfail(&j, "expected a JSON object ('{'), found %s", found(&j));
    j.p++;
    ws(&j);
    if (peek(&j) == '}') {
        j.p++;
    } else {
        for (;;) {
            ws(&j);
            if (peek(&j) != '"') return jfail(&j, "expected a key string, found %s", found(&j));
            char key[16];
            size_t klen;
            const char *key_at = j.p;
            if (parse_string(&j, key, sizeof key, &klen) || expect(&j, ':', "after a key")) return -1;
            ws(&j);
            int which = 0; /* 1 id, 2 vector, 3 metadata, 4 time */
            if (klen == 2 && !memcmp(key, "id", 2)) which = 1;
            else if (klen == 6 && !memcmp(key, "vector", 6)) which = 2;
            else if (klen == 8 && !memcmp(key, "metadata", 8)) which = 3;
            else if (klen == 4 && !memcmp(key, "time", 4)) which = 4;
            int *seen = which == 1 ? &rec->has_id : which == 2 ? &rec->has_vector
                      : which == 3 ? &rec->has_metadata : which == 4 ? &rec->has_time : NULL;
            if (seen && *seen) {
                j.p = key_at;
                return jfail(&j, "duplicate key \"%.*s\"", (int)klen, key);
            }
            if (which == 1) {
                int c = peek(&j);
                if (c == '"') {
                    size_t len;
                    const char *at = j.p;
                    if (parse_string(&j, rec->id_buf, sizeof rec->id_buf, &len)) return -1;
                    if (len == 0) {
                        j.p = at;
                        return jfail(&j, "the id is empty");
                    }
                    if (len > SHOAL_ID_MAX) {
                        j.p = at;
                        return jfail(&j, "the id is %zu bytes long; at most %u are allowed", len,
                                     SHOAL_ID_MAX);
                    }
                    rec->id_len = (uint32_t)len;
                } else if (c == '-' || (c >= '0' && c <= '9')) {
                    int integer;
                    size_t len = scan_number(j.p, j.end, &integer);
                    if (!len || !integer)
                        return jfail(&j, "the id must be a string or an integer");
                    if (len > SHOAL_ID_MAX) return jfail(&j, "the id is too long");
                    memcpy(rec->id_buf, j.p, len);
                    rec->id_len = (uint32_t)len;
                    j.p += len;
                } else {
                    return jfail(&j, "the id must be a string or an integer");
                }
                rec->has_id = 1;
            } else if (which == 2) {
                if (peek(&j) != '[')
                    return jfail(&j, "\"vector\" must be an array of numbers, found %s", found(&j));
                if (parse_vector(&j, vec, vec_cap, count)) return -1;
                rec->has_vector = 1;
            } else if (which == 4) {
                int integer;
                size_t len = scan_number(j.p, j.end, &integer);
                char num[24];
                if (!len || !integer || len >= sizeof num)
                    return jfail(&j, "\"time\" must be an integer (milliseconds since the epoch)");
                memcpy(num, j.p, len);
                num[len] = '\0';
                errno = 0;
                long long t = strtoll(num, NULL, 10);
                if (errno || t == INT64_MIN)
                    return jfail(&j, "\"time\" is out of range");
                rec->time = (int64_t)t;
                rec->has_time = 1;
                j.p += len;
            } else {
                const char *value = j.p;
                if (skip_value(&j)) return -1;
                if (which == 3) {
                    rec->has_metadata = 1;
                    rec->meta_at = value;
                    rec->meta_len = (size_t)(j.p - value);
                } else {
                    rec->has_other = 1;
                }
            }
            ws(&j);
            int c = peek(&j);
            if (c == ',') {
                j.p++;
                continue;
            }
            if (c == '}') {
                j.p++;
                break;
            }
            return jfail(&j, "expected ',' or '}' after a field, found %s", found(&j));
        }
    }
    ws(&j);
    if (j.p != j.end) return jfail(&j, "unexpected text after the object");
    if (!rec->has_vector) return jfail(&j, "the record has no \"vector\" field");
    if (!rec->has_id) return jfail(&j, "the record has no \"id\" field");
    return 0;
}

/* ---------------------------------------------------------------- writers */

void json_write_string(FILE *f, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    fputc('"', f);
    while (p < end) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
            p++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n': fputs("\\n", f); break;
            case '\r': fputs("\\r", f); break;
            case '\t': fputs("\\t", f); break;
            case '\b': fputs("\\b", f); break;
            case '\f': fputs("\\f", f); break;
            default: fprintf(f, "\\u%04x", c);
            }
            p++;
        } else if (c < 0x80) {
            fputc((int)c, f);
            p++;
        } else {
            size_t n = utf8_len(p, end);
            if (n) {
                fwrite(p, 1, n, f);
                p += n;
            } else {
                fprintf(f, "\\u%04x", c);
                p++;
            }
        }
    }
    fputc('"', f);
}

void json_write_float(FILE *f, double v) {
    if (!isfinite(v)) fputs("null", f);
    else fprintf(f, "%.9g", v);
}
