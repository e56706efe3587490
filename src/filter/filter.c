/*
 * filter.c -- filter expressions: compiled once per query from JSON, then
 * evaluated on every candidate's metadata inside the search.
 *
 * What
 *   The language is MongoDB's query subset that vector stores settled on
 *   (vectra, LanceDB's and Orama's where clauses, Redis FILTER): field
 *   comparisons $eq $ne $gt $gte $lt $lte, set membership $in $nin,
 *   $exists, and the connectives $and $or $not.  The JSON text is parsed by
 *   codec/json.c into canonical DAG-CBOR first, so one parser serves
 *   metadata and filters, and compiling walks a validated buffer.  The
 *   program is a flat array of nodes in prefix order, each knowing its
 *   subtree size: AND/OR/NOT over children, and leaves that test one
 *   dotted path.  Operand strings and path segments point into the filter's
 *   own CBOR copy, so a compiled filter is one allocation set, freed
 *   together.
 *
 * Semantics (the tests' independent JS evaluator implements the same)
 *   - A path "a.b.c" walks objects by key.  At an array it fans out: a
 *     numeric segment also indexes it, and each element that is an object
 *     continues the walk with the same segment.  A leaf's test applies to
 *     the value reached and, if that is an array, to each element: a path
 *     matches if any value it reaches passes ("arrays match any element").
 *   - $eq, $in: equal numbers (integers and floats compare as doubles),
 *     equal strings (bytes), equal booleans, null.  A null operand (in
 *     $eq or in $in's list) also matches a missing field.
 *   - $gt $gte $lt $lte: numbers with numbers, strings with strings
 *     (bytewise UTF-8 order); other types never match.
 *   - $ne and $nin are the negations of $eq and $in, so a record whose
 *     field is missing matches them (MongoDB does the same).
 *   - $exists: true if the path reaches any value (null included).
 *   - Several keys in one object are ANDed; {} matches everything.  A
 *     record without metadata has no fields.
 *   Errors are ParameterErrors naming the expression's path: an unknown
 *   operator, an operand of the wrong type, equality to an object or an
 *   array, $and/$or without a non-empty array, nesting past
 *   SHOAL_FILTER_DEPTH, more than SHOAL_FILTER_NODES nodes.
 *
 * Cost
 *   Evaluating a leaf walks the record's CBOR: keys are sorted, so a lookup
 *   stops at the first key past the wanted one, and nothing is decoded that
 *   the path does not touch.  The searches call the filter only for a
 *   candidate that would enter the results (after its distance is known),
 *   so a query evaluates it a few hundred to a few thousand times.
 *   (Typed columns per field were the alternative: faster per test, but a
 *   second copy of every record's metadata, kept in step through upserts
 *   and merges, and no help with nested or array values.)
 */
#include <stdio.h>

#include "codec/json.h"
#include "filter/filter.h"

enum {
    F_AND,
    F_OR,
    F_NOT,
    F_TRUE,
    F_EQ,
    F_GT,
    F_GTE,
    F_LT,
    F_LTE,
    F_IN,
    F_EXISTS
};

enum { V_NUM, V_STR, V_BOOL, V_NULL };

typedef struct fvalue {
    int type;
    double num;         /* V_NUM; V_BOOL: 0 or 1 */
    const uint8_t *str; /* V_STR */
    uint32_t len;
} fvalue;

typedef struct fseg {
    const char *s;
    uint32_t len;
    int64_t index; /* the segment as an array index, or -1 */
} fseg;

typedef struct fnode {
    int op;
    uint32_t size;          /* nodes in the subtree, this one included */
    uint32_t path, npath;   /* leaves: segments in filter->segs */
    fvalue v;               /* comparisons */
    uint32_t set, nset;     /* F_IN: values in filter->values */
} fnode;

struct shoal_filter {
    shoal__mem mem;
    uint8_t *cbor; /* the expression, canonical DAG-CBOR */
    fnode *nodes;
    uint32_t nnodes, nodes_cap;
    fseg *segs;
    uint32_t nsegs, segs_cap;
    fvalue *values;
    uint32_t nvalues, values_cap;
};

/* ------------------------------------------------------------- compiling */

typedef struct compiler {
    shoal_filter *f;
    char path[200];
    size_t path_len;
    char *msg;
    size_t msg_size;
    int error;
} compiler;

static int cfail(compiler *c, int code, const char *what) {
    if (c->error) return c->error;
    c->error = code;
    shoal__msg(c->msg, c->msg_size, code, "%s at %s", what, c->path_len ? c->path : "$");
    return code;
}

static size_t push_path(compiler *c, const uint8_t *key, size_t len) {
    size_t was = c->path_len;
    if (!was) c->path[c->path_len++] = '$';
    int w = snprintf(c->path + c->path_len, sizeof c->path - c->path_len, ".%.*s",
                     (int)(len > 48 ? 48 : len), (const char *)key);
    if (w > 0 && (size_t)w < sizeof c->path - c->path_len) c->path_len += (size_t)w;
    return was;
}

static size_t push_index(compiler *c, uint64_t i) {
    size_t was = c->path_len;
    if (!was) c->path[c->path_len++] = '$';
    int w = snprintf(c->path + c->path_len, sizeof c->path - c->path_len, "[%llu]",
                     (unsigned long long)i);
    if (w > 0 && (size_t)w < sizeof c->path - c->path_len) c->path_len += (size_t)w;
    return was;
}

static void pop_path(compiler *c, size_t was) {
    c->path_len = was;
    c->path[was] = '\0';
}

static uint32_t total_nodes(const shoal_filter *f) { return f->nnodes + f->nvalues; }

/* A new node (its index), or UINT32_MAX after setting the error. */
static uint32_t add_node(compiler *c, int op) {
    shoal_filter *f = c->f;
    if (total_nodes(f) >= SHOAL_FILTER_NODES) {
        char what[64];
        snprintf(what, sizeof what, "more than %u nodes", SHOAL_FILTER_NODES);
        cfail(c, SHOAL_EPARAM, what);
        return UINT32_MAX;
    }
    if (shoal__grow(&f->mem, (void **)&f->nodes, &f->nodes_cap, f->nnodes + 1, sizeof *f->nodes)) {
        cfail(c, SHOAL_ENOMEM, "out of memory compiling the filter");
        return UINT32_MAX;
    }
    fnode *n = &f->nodes[f->nnodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->size = 1;
    return f->nnodes++;
}

/* Closes node i: its subtree is everything added since. */
static void close_node(shoal_filter *f, uint32_t i) { f->nodes[i].size = f->nnodes - i; }

/* The scalar at p as an operand, or -1 if it is not a scalar. */
static int scalar_of(const uint8_t *p, fvalue *v) {
    shoal__cbor_item it;
    shoal__cbor_item_at(p, &it);
    memset(v, 0, sizeof *v);
    switch (it.major) {
    case SHOAL__CBOR_UINT:
        v->type = V_NUM;
        v->num = (double)it.arg;
        return 0;
    case SHOAL__CBOR_NINT:
        v->type = V_NUM;
        v->num = -1.0 - (double)it.arg;
        return 0;
    case SHOAL__CBOR_TEXT:
        v->type = V_STR;
        v->str = it.data;
        v->len = (uint32_t)it.arg;
        return 0;
    case SHOAL__CBOR_SIMPLE:
        if ((p[0] & 31) == SHOAL__CBOR_FLOAT64) {
            v->type = V_NUM;
            v->num = shoal__cbor_float_of(&it);
        } else if (it.arg == SHOAL__CBOR_NULL) {
            v->type = V_NULL;
        } else {
            v->type = V_BOOL;
            v->num = it.arg == SHOAL__CBOR_TRUE;
        }
        return 0;
    default:
        return -1;
    }
}

/* Splits a field key "a.b.0" into segments; returns the first, sets *n. */
static int add_path(compiler *c, const uint8_t *key, uint32_t len, uint32_t *first, uint32_t *n) {
    shoal_filter *f = c->f;
    *first = f->nsegs;
    *n = 0;
    uint32_t start = 0;
    for (uint32_t i = 0; i <= len; i++) {
        if (i < len && key[i] != '.') continue;
        if (i == start) return cfail(c, SHOAL_EPARAM, "an empty segment in a field path");
        if (shoal__grow(&f->mem, (void **)&f->segs, &f->segs_cap, f->nsegs + 1, sizeof *f->segs))
            return cfail(c, SHOAL_ENOMEM, "out of memory compiling the filter");
        fseg *s = &f->segs[f->nsegs++];
        s->s = (const char *)key + start;
        s->len = i - start;
        s->index = -1;
        if (s->len <= 9) {
            int64_t v = 0;
            uint32_t j = 0;
            for (; j < s->len && s->s[j] >= '0' && s->s[j] <= '9'; j++) v = v * 10 + (s->s[j] - '0');
            if (j == s->len && (s->len == 1 || s->s[0] != '0')) s->index = v;
        }
        (*n)++;
        start = i + 1;
    }
    return SHOAL_OK;
}

static int is_op(const shoal__cbor_item *key) { return key->arg > 0 && key->data[0] == '$'; }

static int key_is(const shoal__cbor_item *key, const char *word) {
    size_t n = strlen(word);
    return key->arg == n && memcmp(key->data, word, n) == 0;
}

static int compile_filter(compiler *c, const uint8_t *p, uint32_t depth);
static int compile_ops(compiler *c, const uint8_t *ops, uint32_t path, uint32_t npath,
                       uint32_t depth);

/* A leaf on (path, npath). */
static uint32_t add_leaf(compiler *c, int op, uint32_t path, uint32_t npath) {
    uint32_t i = add_node(c, op);
    if (i != UINT32_MAX) {
        c->f->nodes[i].path = path;
        c->f->nodes[i].npath = npath;
    }
    return i;
}

/* $eq with operand v: null also matches a missing field. */
static int emit_eq(compiler *c, const fvalue *v, uint32_t path, uint32_t npath) {
    if (v->type != V_NULL) {
        uint32_t i = add_leaf(c, F_EQ, path, npath);
        if (i == UINT32_MAX) return c->error;
        c->f->nodes[i].v = *v;
        return SHOAL_OK;
    }
    uint32_t or_ = add_node(c, F_OR), not_ = or_ == UINT32_MAX ? or_ : add_node(c, F_NOT);
    uint32_t ex = not_ == UINT32_MAX ? not_ : add_leaf(c, F_EXISTS, path, npath);
    if (ex == UINT32_MAX) return c->error;
    close_node(c->f, not_);
    uint32_t eq = add_leaf(c, F_EQ, path, npath);
    if (eq == UINT32_MAX) return c->error;
    c->f->nodes[eq].v = *v;
    close_node(c->f, or_);
    return SHOAL_OK;
}

static int emit_in(compiler *c, const uint8_t *arr, uint32_t path, uint32_t npath) {
    shoal__cbor_item it;
    shoal__cbor_item_at(arr, &it);
    if (it.major != SHOAL__CBOR_ARRAY) return cfail(c, SHOAL_EPARAM, "$in and $nin need an array");
    shoal_filter *f = c->f;
    int has_null = 0;
    uint32_t or_ = UINT32_MAX;
    /* Null in the set matches a missing field too: OR(NOT EXISTS, IN). */
    const uint8_t *q = it.data;
    for (uint64_t i = 0; i < it.arg; i++, q = shoal__cbor_skip(q)) has_null |= q[0] == 0xf6;
    if (has_null) {
        or_ = add_node(c, F_OR);
        uint32_t not_ = or_ == UINT32_MAX ? or_ : add_node(c, F_NOT);
        if (not_ == UINT32_MAX || add_leaf(c, F_EXISTS, path, npath) == UINT32_MAX) return c->error;
        close_node(f, not_);
    }
    uint32_t in = add_leaf(c, F_IN, path, npath);
    if (in == UINT32_MAX) return c->error;
    f->nodes[in].set = f->nvalues;
    q = it.data;
    for (uint64_t i = 0; i < it.arg; i++, q = shoal__cbor_skip(q)) {
        size_t was = push_index(c, i);
        fvalue v;
        if (scalar_of(q, &v)) return cfail(c, SHOAL_EPARAM, "$in values must be numbers, strings, booleans or null");
        pop_path(c, was);
        if (total_nodes(f) >= SHOAL_FILTER_NODES) {
            char what[64];
            snprintf(what, sizeof what, "more than %u nodes", SHOAL_FILTER_NODES);
            return cfail(c, SHOAL_EPARAM, what);
        }
        if (shoal__grow(&f->mem, (void **)&f->values, &f->values_cap, f->nvalues + 1,
                        sizeof *f->values))
            return cfail(c, SHOAL_ENOMEM, "out of memory compiling the filter");
        f->values[f->nvalues++] = v;
    }
    f->nodes[in].nset = f->nvalues - f->nodes[in].set;
    if (or_ != UINT32_MAX) close_node(f, or_);
    return SHOAL_OK;
}

/* One operator of a field: "$gt": 5 and so on. */
static int compile_op(compiler *c, const shoal__cbor_item *key, const uint8_t *value,
                      uint32_t path, uint32_t npath, uint32_t depth) {
    shoal_filter *f = c->f;
    fvalue v;
    if (key_is(key, "$eq") || key_is(key, "$ne")) {
        if (scalar_of(value, &v))
            return cfail(c, SHOAL_EPARAM, "$eq and $ne need a number, string, boolean or null");
        uint32_t not_ = key_is(key, "$ne") ? add_node(c, F_NOT) : 0;
        if (not_ == UINT32_MAX || emit_eq(c, &v, path, npath)) return c->error;
        if (key_is(key, "$ne")) close_node(f, not_);
        return SHOAL_OK;
    }
    int cmp = key_is(key, "$gt") ? F_GT : key_is(key, "$gte") ? F_GTE : key_is(key, "$lt") ? F_LT
            : key_is(key, "$lte") ? F_LTE : -1;
    if (cmp >= 0) {
        if (scalar_of(value, &v) || (v.type != V_NUM && v.type != V_STR))
            return cfail(c, SHOAL_EPARAM, "a comparison needs a number or a string");
        uint32_t i = add_leaf(c, cmp, path, npath);
        if (i == UINT32_MAX) return c->error;
        f->nodes[i].v = v;
        return SHOAL_OK;
    }
    if (key_is(key, "$in") || key_is(key, "$nin")) {
        uint32_t not_ = key_is(key, "$nin") ? add_node(c, F_NOT) : 0;
        if (not_ == UINT32_MAX || emit_in(c, value, path, npath)) return c->error;
        if (key_is(key, "$nin")) close_node(f, not_);
        return SHOAL_OK;
    }
    if (key_is(key, "$exists")) {
        if (scalar_of(value, &v) || v.type != V_BOOL)
            return cfail(c, SHOAL_EPARAM, "$exists needs true or false");
        uint32_t not_ = v.num ? 0 : add_node(c, F_NOT);
        if (not_ == UINT32_MAX || add_leaf(c, F_EXISTS, path, npath) == UINT32_MAX) return c->error;
        if (!v.num) close_node(f, not_);
        return SHOAL_OK;
    }
    if (key_is(key, "$not")) {
        if (value[0] >> 5 != SHOAL__CBOR_MAP)
            return cfail(c, SHOAL_EPARAM, "a field's $not needs an object of operators");
        uint32_t not_ = add_node(c, F_NOT);
        if (not_ == UINT32_MAX || compile_ops(c, value, path, npath, depth + 1)) return c->error;
        close_node(f, not_);
        return SHOAL_OK;
    }
    char what[96];
    snprintf(what, sizeof what, "unknown operator %.*s", (int)(key->arg > 40 ? 40 : key->arg),
             (const char *)key->data);
    return cfail(c, SHOAL_EPARAM, what);
}

/* An object of operators for one field, ANDed. */
static int compile_ops(compiler *c, const uint8_t *ops, uint32_t path, uint32_t npath,
                       uint32_t depth) {
    if (depth > SHOAL_FILTER_DEPTH) {
        char what[64];
        snprintf(what, sizeof what, "nested deeper than %u", SHOAL_FILTER_DEPTH);
        return cfail(c, SHOAL_EPARAM, what);
    }
    shoal__cbor_item m;
    shoal__cbor_item_at(ops, &m);
    if (m.arg == 0) return cfail(c, SHOAL_EPARAM, "an empty object of operators");
    uint32_t and_ = add_node(c, F_AND);
    if (and_ == UINT32_MAX) return c->error;
    const uint8_t *q = m.data;
    for (uint64_t i = 0; i < m.arg; i++) {
        shoal__cbor_item key;
        shoal__cbor_item_at(q, &key);
        if (!is_op(&key))
            return cfail(c, SHOAL_EPARAM,
                         "equality to an object is not supported (use dotted paths) or operators "
                         "are mixed with fields");
        size_t was = push_path(c, key.data, (size_t)key.arg);
        if (compile_op(c, &key, key.end, path, npath, depth)) return c->error;
        pop_path(c, was);
        q = shoal__cbor_skip(key.end);
    }
    close_node(c->f, and_);
    return SHOAL_OK;
}

/* A field condition: "year": 1990, or "year": {"$gte": 1990}. */
static int compile_field(compiler *c, const shoal__cbor_item *key, const uint8_t *value,
                         uint32_t depth) {
    uint32_t path, npath;
    if (add_path(c, key->data, (uint32_t)key->arg, &path, &npath)) return c->error;
    unsigned major = value[0] >> 5;
    if (major == SHOAL__CBOR_MAP) return compile_ops(c, value, path, npath, depth + 1);
    if (major == SHOAL__CBOR_ARRAY)
        return cfail(c, SHOAL_EPARAM, "equality to an array is not supported (use $in)");
    fvalue v;
    if (scalar_of(value, &v)) return cfail(c, SHOAL_EPARAM, "an unsupported value");
    return emit_eq(c, &v, path, npath);
}

/* A filter object: its keys ANDed. */
static int compile_filter(compiler *c, const uint8_t *p, uint32_t depth) {
    if (depth > SHOAL_FILTER_DEPTH) {
        char what[64];
        snprintf(what, sizeof what, "nested deeper than %u", SHOAL_FILTER_DEPTH);
        return cfail(c, SHOAL_EPARAM, what);
    }
    if (p[0] >> 5 != SHOAL__CBOR_MAP) return cfail(c, SHOAL_EPARAM, "a filter must be an object");
    shoal__cbor_item m;
    shoal__cbor_item_at(p, &m);
    uint32_t and_ = add_node(c, m.arg ? F_AND : F_TRUE);
    if (and_ == UINT32_MAX) return c->error;
    const uint8_t *q = m.data;
    for (uint64_t i = 0; i < m.arg; i++) {
        shoal__cbor_item key;
        shoal__cbor_item_at(q, &key);
        const uint8_t *value = key.end;
        size_t was = push_path(c, key.data, (size_t)key.arg);
        if (!is_op(&key)) {
            if (compile_field(c, &key, value, depth)) return c->error;
        } else if (key_is(&key, "$and") || key_is(&key, "$or")) {
            shoal__cbor_item arr;
            shoal__cbor_item_at(value, &arr);
            if (arr.major != SHOAL__CBOR_ARRAY || arr.arg == 0)
                return cfail(c, SHOAL_EPARAM, "$and and $or need a non-empty array of filters");
            uint32_t node = add_node(c, key_is(&key, "$and") ? F_AND : F_OR);
            if (node == UINT32_MAX) return c->error;
            const uint8_t *e = arr.data;
            for (uint64_t j = 0; j < arr.arg; j++, e = shoal__cbor_skip(e)) {
                size_t w = push_index(c, j);
                if (compile_filter(c, e, depth + 1)) return c->error;
                pop_path(c, w);
            }
            close_node(c->f, node);
        } else if (key_is(&key, "$not")) {
            uint32_t node = add_node(c, F_NOT);
            if (node == UINT32_MAX || compile_filter(c, value, depth + 1)) return c->error;
            close_node(c->f, node);
        } else {
            char what[96];
            snprintf(what, sizeof what, "unknown operator %.*s",
                     (int)(key.arg > 40 ? 40 : key.arg), (const char *)key.data);
            return cfail(c, SHOAL_EPARAM, what);
        }
        pop_path(c, was);
        q = shoal__cbor_skip(value);
    }
    close_node(c->f, and_);
    return SHOAL_OK;
}

void shoal_filter_free(shoal_filter *f) {
    if (!f) return;
    shoal__mem mem = f->mem;
    shoal__free(&mem, f->cbor);
    shoal__free(&mem, f->nodes);
    shoal__free(&mem, f->segs);
    shoal__free(&mem, f->values);
    shoal__free(&mem, f);
}

int shoal_filter_compile(const char *json, size_t len, const shoal_allocator *allocator,
                         shoal_filter **out, char *errmsg, size_t errmsg_size) {
    char scratch[8];
    if (!errmsg || !errmsg_size) {
        errmsg = scratch;
        errmsg_size = sizeof scratch;
    }
    errmsg[0] = '\0';
    if (!out) return SHOAL_EPARAM;
    *out = NULL;
    shoal__mem mem;
    shoal__mem_init(&mem, allocator);
    shoal_filter *f = shoal__calloc(&mem, 1, sizeof *f);
    if (!f) return shoal__msg(errmsg, errmsg_size, SHOAL_ENOMEM, "out of memory for a filter");
    f->mem = mem;
    shoal__cbor_out cb;
    shoal__cbor_out_init(&cb, &f->mem, 1u << 20);
    int rc = shoal__json_to_cbor(json, len, SHOAL_FILTER_DEPTH * 2 + 2, &cb, errmsg, errmsg_size);
    if (rc) {
        shoal__cbor_out_free(&cb);
        shoal_filter_free(f);
        return rc == SHOAL_ETOOBIG ? SHOAL_EPARAM : rc;
    }
    f->cbor = cb.buf;
    compiler c;
    memset(&c, 0, sizeof c);
    c.f = f;
    c.msg = errmsg;
    c.msg_size = errmsg_size;
    rc = compile_filter(&c, f->cbor, 1);
    if (rc) {
        shoal_filter_free(f);
        return rc;
    }
    *out = f;
    return SHOAL_OK;
}

/* ------------------------------------------------------------ evaluating */

static int value_is(const uint8_t *p, fvalue *v) { return scalar_of(p, v) == 0; }

static int num_cmp(double a, double b) { return a < b ? -1 : a > b ? 1 : 0; }

static int str_cmp(const fvalue *a, const fvalue *b) {
    uint32_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->str, b->str, n);
    return c ? c : a->len < b->len ? -1 : a->len > b->len;
}

static int equal(const fvalue *a, const fvalue *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case V_NUM:
    case V_BOOL: return a->num == b->num;
    case V_STR: return a->len == b->len && !memcmp(a->str, b->str, a->len);
    default: return 1; /* null */
    }
}

/* The leaf's test on one scalar value. */
static int test_scalar(const shoal_filter *f, const fnode *n, const fvalue *x) {
    switch (n->op) {
    case F_EQ:
        return equal(x, &n->v);
    case F_IN:
        for (uint32_t i = 0; i < n->nset; i++)
            if (equal(x, &f->values[n->set + i])) return 1;
        return 0;
    default: {
        int c;
        if (x->type == V_NUM && n->v.type == V_NUM) c = num_cmp(x->num, n->v.num);
        else if (x->type == V_STR && n->v.type == V_STR) c = str_cmp(x, &n->v);
        else return 0;
        return n->op == F_GT ? c > 0 : n->op == F_GTE ? c >= 0 : n->op == F_LT ? c < 0 : c <= 0;
    }
    }
}

/* The leaf's test on the value at p: a scalar, or any element of an array. */
static int test_value(const shoal_filter *f, const fnode *n, const uint8_t *p) {
    if (n->op == F_EXISTS) return 1;
    fvalue x;
    if (value_is(p, &x)) return test_scalar(f, n, &x);
    if (p[0] >> 5 != SHOAL__CBOR_ARRAY) return 0;
    shoal__cbor_item arr;
    shoal__cbor_item_at(p, &arr);
    const uint8_t *e = arr.data;
    for (uint64_t i = 0; i < arr.arg; i++, e = shoal__cbor_skip(e))
        if (value_is(e, &x) && test_scalar(f, n, &x)) return 1;
    return 0;
}

/* Whether the path from segment s on, walked from the value at p, reaches
 * a value the leaf accepts. */
static int walk(const shoal_filter *f, const fnode *n, const uint8_t *p, uint32_t s) {
    if (s == n->npath) return test_value(f, n, p);
    const fseg *seg = &f->segs[n->path + s];
    unsigned major = p[0] >> 5;
    if (major == SHOAL__CBOR_MAP) {
        shoal__cbor_item m;
        shoal__cbor_item_at(p, &m);
        const uint8_t *child = shoal__cbor_get(&m, seg->s, seg->len);
        return child && walk(f, n, child, s + 1);
    }
    if (major != SHOAL__CBOR_ARRAY) return 0;
    shoal__cbor_item arr;
    shoal__cbor_item_at(p, &arr);
    const uint8_t *e = arr.data;
    for (uint64_t i = 0; i < arr.arg; i++, e = shoal__cbor_skip(e)) {
        if (seg->index >= 0 && (uint64_t)seg->index == i && walk(f, n, e, s + 1)) return 1;
        if (e[0] >> 5 == SHOAL__CBOR_MAP && walk(f, n, e, s)) return 1;
    }
    return 0;
}

static int eval(const shoal_filter *f, uint32_t at, const uint8_t *doc) {
    const fnode *n = &f->nodes[at];
    switch (n->op) {
    case F_TRUE:
        return 1;
    case F_AND:
    case F_OR:
        for (uint32_t kid = at + 1; kid < at + n->size; kid += f->nodes[kid].size) {
            int r = eval(f, kid, doc);
            if (n->op == F_AND ? !r : r) return r;
        }
        return n->op == F_AND;
    case F_NOT:
        return !eval(f, at + 1, doc);
    default:
        return doc && walk(f, n, doc, 0);
    }
}

int shoal__filter_match(const shoal_filter *filter, const uint8_t *metadata) {
    return eval(filter, 0, metadata);
}

int shoal_filter_matches(const shoal_filter *filter, const uint8_t *metadata, size_t len) {
    return eval(filter, 0, len ? metadata : NULL);
}
