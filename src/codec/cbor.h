/*
 * cbor.h -- the DAG-CBOR subset Shoal reads and writes (cbor.c): record
 * metadata, collection manifests and CAR headers.
 *
 * DAG-CBOR (ipld.io) is CBOR with one encoding per value: shortest integer
 * and length heads, definite lengths only, maps keyed by text strings
 * sorted length-first then bytewise, floats always 64-bit and finite, no
 * simple values but false/true/null, no tag but 42 (a CID link: a byte
 * string holding 0x00 then the binary CID).  The writer emits only that;
 * the validator accepts only that, so equal values have equal bytes and
 * every block that reaches the rest of the core is canonical.
 *
 * Reading is a cursor over a buffer that was validated first
 * (shoal__cbor_check), so the navigation helpers never re-check bounds.
 */
#ifndef SHOAL_CBOR_H
#define SHOAL_CBOR_H

#include "internal.h"

enum {
    SHOAL__CBOR_UINT = 0,
    SHOAL__CBOR_NINT = 1,
    SHOAL__CBOR_BYTES = 2,
    SHOAL__CBOR_TEXT = 3,
    SHOAL__CBOR_ARRAY = 4,
    SHOAL__CBOR_MAP = 5,
    SHOAL__CBOR_TAG = 6,
    SHOAL__CBOR_SIMPLE = 7
};
#define SHOAL__CBOR_FALSE 20u
#define SHOAL__CBOR_TRUE 21u
#define SHOAL__CBOR_NULL 22u
#define SHOAL__CBOR_FLOAT64 27u
#define SHOAL__CBOR_CID_TAG 42u

/* ---------------------------------------------------------------- writer */

/* A growing output buffer; the first failure sticks in `error`. */
typedef struct shoal__cbor_out {
    shoal__mem *mem;
    uint8_t *buf;
    size_t len, cap, max; /* max: the size the output may reach (0 = none) */
    int error;
} shoal__cbor_out;

void shoal__cbor_out_init(shoal__cbor_out *out, shoal__mem *mem, size_t max);
void shoal__cbor_out_free(shoal__cbor_out *out);
/* Appends raw bytes (already encoded items). */
void shoal__cbor_raw(shoal__cbor_out *out, const void *bytes, size_t n);
/* A head: major type and argument, shortest form. */
void shoal__cbor_head(shoal__cbor_out *out, unsigned major, uint64_t arg);
void shoal__cbor_uint(shoal__cbor_out *out, uint64_t v);
void shoal__cbor_int(shoal__cbor_out *out, int64_t v);
void shoal__cbor_text(shoal__cbor_out *out, const char *s, size_t n);
void shoal__cbor_cstr(shoal__cbor_out *out, const char *s); /* NUL-terminated text */
void shoal__cbor_bytes(shoal__cbor_out *out, const void *p, size_t n);
void shoal__cbor_float(shoal__cbor_out *out, double v); /* finite */
void shoal__cbor_simple(shoal__cbor_out *out, unsigned v); /* false, true, null */
/* A CID link: tag 42 over 0x00 + the binary CID. */
void shoal__cbor_link(shoal__cbor_out *out, const uint8_t *cid, size_t n);

/* ------------------------------------------------------------- validation */

typedef struct shoal__cbor_limits {
    uint32_t depth;    /* nesting: a map or array inside the top item is depth 2 */
    uint32_t items;    /* items in all (0 = no limit beyond the bytes) */
    int links;         /* tag 42 allowed */
    int bytes;         /* byte strings allowed */
    int map_top;       /* the top item must be a map */
} shoal__cbor_limits;

/* Checks that bytes[0..size) is exactly one canonical DAG-CBOR item within
 * the limits (UTF-8 text, sorted unique keys, ...).  Returns 0 or
 * SHOAL_ECORRUPT with a message naming the offset. */
int shoal__cbor_check(const uint8_t *bytes, size_t size, const shoal__cbor_limits *limits,
                      char *msg, size_t msg_size);

/* ------------------------------------------------------------ navigation */

/* On validated bytes only. */
typedef struct shoal__cbor_item {
    unsigned major;
    uint64_t arg;        /* value, length or count; simple value for major 7 */
    const uint8_t *data; /* bytes / text payload; the first element of arrays and maps */
    const uint8_t *end;  /* one past the whole item */
} shoal__cbor_item;

/* Decodes the item at p (its end is found by walking nested items). */
void shoal__cbor_item_at(const uint8_t *p, shoal__cbor_item *it);
/* One past the item starting at p. */
const uint8_t *shoal__cbor_skip(const uint8_t *p);
/* The value of key in map item m (key len bytes), or NULL.  Keys are sorted,
 * so the walk stops early. */
const uint8_t *shoal__cbor_get(const shoal__cbor_item *m, const char *key, size_t len);
double shoal__cbor_float_of(const shoal__cbor_item *it); /* major 7, minor 27 */

/* Orders two map keys the DAG-CBOR way: length first, then bytewise. */
int shoal__cbor_key_cmp(const char *a, size_t alen, const char *b, size_t blen);

#endif
