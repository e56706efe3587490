/*
 * input.c -- readers for the vector files data teams already have:
 * .fvecs / .bvecs / .ivecs (the TEXMEX / ann-benchmarks formats), numpy
 * .npy (float32 only) and JSONL records ({"id", "vector", "metadata"}).
 *
 * Every reader treats its file as hostile and names the file, the record
 * and the byte offset (or line and column) of the first problem: a
 * dimension that changes inside an fvecs, a record cut short, an npy whose
 * dtype is not little-endian float32 or that is stored in Fortran order, a
 * JSON line that is not a record.  A reader either returns every record or
 * nothing -- the caller never sees half a file -- and all reading happens
 * before any output file is opened.
 *
 * Binary files are streamed record by record into one growing float array
 * (the file size from stat() sizes it once, so a file is not held twice).
 * Every value is decoded from little-endian bytes explicitly rather than
 * read in place, so the readers are right on any host.  Values must be
 * finite: NaN or Inf in a record is reported here with its position
 * rather than later by the core without one.
 *
 * Ids: binary formats carry none, so record i gets the decimal id "i" --
 * which is also what an .ivecs ground truth refers to.  JSONL ids are kept
 * as given (strings, or integers as written).
 *
 * Metadata: segments do not carry metadata yet, so a JSONL record's
 * "metadata" is validated as JSON and skipped; build prints a note saying
 * how many records had some.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

#define NPY_HEADER_MAX (1u << 20)
#define JSONL_LINE_MAX ((size_t)256 << 20)
#define ROWS_MAX (UINT32_MAX - 1u)

static const uint8_t NPY_MAGIC[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
/* The first bytes of every segment (docs/FORMAT.md, "Header"). */
static const uint8_t SEGMENT_MAGIC[6] = {0x89, 'S', 'H', 'O', 'A', 'L'};

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float lef32(const uint8_t *p) {
    uint32_t u = le32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---------------------------------------------------------------- records */

void cli_records_free(cli_records *r) {
    free(r->vectors);
    free(r->id_bytes);
    free(r->id_offsets);
    free(r->meta_bytes);
    free(r->meta_offsets);
    free(r->times);
    memset(r, 0, sizeof *r);
}

int cli_records_annotate(cli_records *r, const char *meta, size_t meta_len, int64_t time) {
    if (!meta && time == SHOAL_TIME_NONE && !r->annotated) return SHOAL_OK; /* still none */
    uint32_t n = r->n; /* the record just pushed is n - 1 */
    if (n > r->annotated_cap) {
        uint32_t cap = r->annotated_cap ? r->annotated_cap * 2 : 1024;
        while (cap < n) cap *= 2;
        uint32_t *o = realloc(r->meta_offsets, ((size_t)cap + 1) * sizeof *o);
        if (!o) return SHOAL_ENOMEM;
        r->meta_offsets = o;
        int64_t *t = realloc(r->times, (size_t)cap * sizeof *t);
        if (!t) return SHOAL_ENOMEM;
        r->times = t;
        r->annotated_cap = cap;
    }
    /* Records before this one had neither. */
    if (!r->annotated) r->meta_offsets[0] = 0;
    for (uint32_t i = r->annotated; i + 1 < n; i++) {
        r->meta_offsets[i + 1] = (uint32_t)r->meta_len;
        r->times[i] = SHOAL_TIME_NONE;
    }
    if (meta_len > UINT32_MAX - r->meta_len) return SHOAL_ETOOBIG;
    if (r->meta_len + meta_len > r->meta_cap) {
        size_t cap = r->meta_cap ? r->meta_cap * 2 : 65536;
        while (cap < r->meta_len + meta_len) cap *= 2;
        char *b = realloc(r->meta_bytes, cap);
        if (!b) return SHOAL_ENOMEM;
        r->meta_bytes = b;
        r->meta_cap = cap;
    }
    if (meta_len) memcpy(r->meta_bytes + r->meta_len, meta, meta_len);
    r->meta_len += meta_len;
    r->meta_offsets[n] = (uint32_t)r->meta_len;
    r->times[n - 1] = time;
    r->annotated = n;
    return SHOAL_OK;
}

void cli_records_batch(const cli_records *r, shoal_records *out) {
    memset(out, 0, sizeof *out);
    out->n = r->n;
    out->id_bytes = r->id_bytes;
    out->id_offsets = r->id_offsets;
    out->vectors = r->vectors;
    out->dim = r->dim;
    /* Records past the last annotated one have neither: the arrays cover
     * them only when some record up to the end had metadata or a time, so
     * a batch is cut at the annotated count by the caller (see below). */
    if (r->annotated) {
        out->metadata = r->meta_bytes ? r->meta_bytes : "";
        out->metadata_offsets = r->meta_offsets;
        out->times = r->times;
    }
}

/* Makes room for one more row of r->dim floats and one more id of
 * id_len bytes. */
static int records_reserve(cli_records *r, size_t id_len) {
    if (r->n >= ROWS_MAX) return SHOAL_ETOOBIG;
    if (r->n == r->rows_cap) {
        size_t cap = r->rows_cap ? r->rows_cap + r->rows_cap / 2 : 1024;
        if (cap > ROWS_MAX) cap = ROWS_MAX;
        if (cap > SIZE_MAX / sizeof(float) / r->dim) return SHOAL_ENOMEM;
        float *v = realloc(r->vectors, cap * r->dim * sizeof *v);
        if (!v) return SHOAL_ENOMEM;
        r->vectors = v;
        uint32_t *o = realloc(r->id_offsets, (cap + 1) * sizeof *o);
        if (!o) return SHOAL_ENOMEM;
        if (r->rows_cap == 0) o[0] = 0;
        r->id_offsets = o;
        r->rows_cap = cap;
    }
    if (r->id_len + id_len > UINT32_MAX) return SHOAL_ETOOBIG;
    if (r->id_len + id_len > r->id_cap) {
        size_t cap = r->id_cap ? r->id_cap * 2 : 8192;
        while (cap < r->id_len + id_len) cap *= 2;
        char *b = realloc(r->id_bytes, cap);
        if (!b) return SHOAL_ENOMEM;
        r->id_bytes = b;
        r->id_cap = cap;
    }
    return SHOAL_OK;
}

static void records_commit(cli_records *r, const char *id, uint32_t id_len) {
    memcpy(r->id_bytes + r->id_len, id, id_len);
    r->id_len += id_len;
    r->n++;
    r->id_offsets[r->n] = (uint32_t)r->id_len;
}

int cli_records_push(cli_records *r, const char *id, uint32_t id_len, const float *vector) {
    int rc = records_reserve(r, id_len);
    if (rc) return rc;
    memcpy(r->vectors + (size_t)r->n * r->dim, vector, (size_t)r->dim * sizeof *vector);
    records_commit(r, id, id_len);
    return SHOAL_OK;
}

/* The row being filled (after records_reserve). */
static float *records_row(cli_records *r) { return r->vectors + (size_t)r->n * r->dim; }

static int numbered_commit(cli_records *r) {
    char id[16];
    int len = snprintf(id, sizeof id, "%u", r->n);
    records_commit(r, id, (uint32_t)len);
    return 0;
}

static int reserve_or_fail(cli_records *r, const char *path, size_t id_len) {
    int rc = records_reserve(r, id_len);
    if (rc == SHOAL_ETOOBIG) {
        cli_error("%s: more than %u records", path, ROWS_MAX);
        return CLI_DATA;
    }
    if (rc) {
        cli_error("%s: out of memory after %u records", path, r->n);
        return CLI_INTERNAL;
    }
    return CLI_OK;
}

/* Index of the first non-finite value in v[dim], or -1. */
static long first_nonfinite(const float *v, uint32_t dim) {
    for (uint32_t i = 0; i < dim; i++)
        if (!isfinite(v[i])) return (long)i;
    return -1;
}

/* ---------------------------------------------------------------- formats */

const char *cli_format_name(cli_format f) {
    switch (f) {
    case CLI_FORMAT_FVECS: return "fvecs";
    case CLI_FORMAT_BVECS: return "bvecs";
    case CLI_FORMAT_NPY: return "npy";
    case CLI_FORMAT_JSONL: return "jsonl";
    case CLI_FORMAT_SEGMENT: return "segment";
    default: return "auto";
    }
}

int cli_format_param(cli_args *args, cli_format *out) {
    const char *s = cli_str(args, "format");
    *out = CLI_FORMAT_AUTO;
    if (!s || !strcmp(s, "auto")) return CLI_OK;
    static const cli_format all[] = {CLI_FORMAT_FVECS, CLI_FORMAT_BVECS, CLI_FORMAT_NPY,
                                     CLI_FORMAT_JSONL};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (!strcmp(s, cli_format_name(all[i]))) {
            *out = all[i];
            return CLI_OK;
        }
    cli_error("%s: --format must be one of auto, fvecs, bvecs, npy, jsonl, not '%s'", args->command,
              s);
    return CLI_USAGE;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    if (m > n) return 0;
    for (size_t i = 0; i < m; i++) {
        char c = s[n - m + i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != suffix[i]) return 0;
    }
    return 1;
}

cli_format cli_sniff(const char *path, const uint8_t *head, size_t len) {
    if (len >= 6 && !memcmp(head, NPY_MAGIC, 6)) return CLI_FORMAT_NPY;
    if (len >= 6 && !memcmp(head, SEGMENT_MAGIC, 6)) return CLI_FORMAT_SEGMENT;
    if (ends_with(path, ".fvecs")) return CLI_FORMAT_FVECS;
    if (ends_with(path, ".bvecs")) return CLI_FORMAT_BVECS;
    if (ends_with(path, ".npy")) return CLI_FORMAT_NPY;
    if (ends_with(path, ".jsonl") || ends_with(path, ".ndjson") || ends_with(path, ".json"))
        return CLI_FORMAT_JSONL;
    size_t i = 0;
    if (len >= 3 && head[0] == 0xef && head[1] == 0xbb && head[2] == 0xbf) i = 3;
    while (i < len && (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n')) i++;
    if (i < len && head[i] == '{') return CLI_FORMAT_JSONL;
    return CLI_FORMAT_AUTO;
}

/* ------------------------------------------------------- fvecs and bvecs */

/* fvecs / bvecs / ivecs: each record is an int32 dimension d followed by
 * d values of 4 (float32, int32) or 1 (uint8) bytes. */
static int read_vecs(const char *path, FILE *f, uint64_t file_size, cli_format fmt,
                     cli_records *r) {
    const size_t width = fmt == CLI_FORMAT_BVECS ? 1 : 4;
    uint8_t *buf = NULL;
    uint64_t offset = 0;
    uint32_t dim = 0;
    int rc = CLI_OK;
    for (;;) {
        uint8_t head[4];
        size_t got = fread(head, 1, 4, f);
        if (got == 0 && !ferror(f)) break;
        if (got < 4) {
            if (ferror(f)) goto io_error;
            cli_error("%s: truncated: record %u at byte %llu has only %zu of the 4 bytes of its "
                      "dimension",
                      path, r->n, (unsigned long long)offset, got);
            rc = CLI_DATA;
            goto done;
        }
        int32_t d = (int32_t)le32(head);
        if (dim == 0) {
            if (d <= 0 || (uint32_t)d > SHOAL_DIM_MAX) {
                cli_error("%s: record 0 has dimension %d; expected 1..%u (is this really a .%s "
                          "file?)",
                          path, (int)d, SHOAL_DIM_MAX, cli_format_name(fmt));
                rc = CLI_DATA;
                goto done;
            }
            dim = (uint32_t)d;
            r->dim = dim;
            buf = malloc((size_t)dim * width);
            if (!buf) {
                cli_error("%s: out of memory", path);
                rc = CLI_INTERNAL;
                goto done;
            }
            /* Size the row array once from the file size. */
            uint64_t rows = file_size / (4 + (uint64_t)dim * width);
            if (rows > 1 && rows < ROWS_MAX) {
                float *v = malloc((size_t)rows * dim * sizeof *v);
                uint32_t *o = malloc(((size_t)rows + 1) * sizeof *o);
                if (v && o) {
                    r->vectors = v;
                    r->id_offsets = o;
                    o[0] = 0;
                    r->rows_cap = (size_t)rows;
                } else {
                    free(v);
                    free(o);
                }
            }
        } else if (d != (int32_t)dim) {
            cli_error("%s: record %u (byte %llu) has dimension %d; the records before it have %u",
                      path, r->n, (unsigned long long)offset, (int)d, dim);
            rc = CLI_DATA;
            goto done;
        }
        size_t need = (size_t)dim * width;
        got = fread(buf, 1, need, f);
        if (got < need) {
            if (ferror(f)) goto io_error;
            cli_error("%s: truncated: record %u (byte %llu) needs %zu bytes of values, only %zu "
                      "remain",
                      path, r->n, (unsigned long long)offset, need, got);
            rc = CLI_DATA;
            goto done;
        }
        if ((rc = reserve_or_fail(r, path, 10))) goto done;
        float *row = records_row(r);
        if (width == 1)
            for (uint32_t i = 0; i < dim; i++) row[i] = (float)buf[i];
        else
            for (uint32_t i = 0; i < dim; i++) row[i] = lef32(buf + 4 * i);
        long bad = first_nonfinite(row, dim);
        if (bad >= 0) {
            cli_error("%s: record %u (byte %llu) has a non-finite value (%g) at position %ld", path,
                      r->n, (unsigned long long)offset, (double)row[bad], bad);
            rc = CLI_DATA;
            goto done;
        }
        numbered_commit(r);
        offset += 4 + need;
    }
    if (r->n == 0) {
        cli_error("%s: no vectors (the file is empty)", path);
        rc = CLI_DATA;
    }
    goto done;
io_error:
    cli_error_errno(path, "read", errno);
    rc = CLI_DATA;
done:
    free(buf);
    return rc;
}

int cli_read_ivecs(const char *path, uint32_t **rows_out, uint32_t *n_out, uint32_t *k_out) {
    uint8_t *bytes;
    size_t size;
    int rc = cli_read_file(path, &bytes, &size);
    if (rc) return rc;
    uint32_t k = 0, n = 0;
    uint32_t *rows = NULL;
    rc = CLI_OK;
    if (size < 4) {
        cli_error("%s: no rows (the file is %s)", path, size ? "truncated" : "empty");
        rc = CLI_DATA;
        goto done;
    }
    int32_t d = (int32_t)le32(bytes);
    if (d <= 0 || d > (int32_t)SHOAL_K_MAX) {
        cli_error("%s: row 0 has %d neighbours; expected 1..%u (is this an .ivecs file?)", path,
                  (int)d, SHOAL_K_MAX);
        rc = CLI_DATA;
        goto done;
    }
    k = (uint32_t)d;
    size_t row_bytes = 4 + (size_t)k * 4;
    if (size % row_bytes) {
        cli_error("%s: truncated or mixed rows: %zu bytes is not a multiple of the %zu bytes of a "
                  "%u-neighbour row",
                  path, size, row_bytes, k);
        rc = CLI_DATA;
        goto done;
    }
    if (size / row_bytes > ROWS_MAX) {
        cli_error("%s: too many rows", path);
        rc = CLI_DATA;
        goto done;
    }
    n = (uint32_t)(size / row_bytes);
    rows = malloc((size_t)n * k * sizeof *rows);
    if (!rows) {
        cli_error("%s: out of memory", path);
        rc = CLI_INTERNAL;
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p = bytes + (size_t)i * row_bytes;
        if (le32(p) != k) {
            cli_error("%s: row %u (byte %zu) has %d neighbours; the rows before it have %u", path, i,
                      (size_t)i * row_bytes, (int)(int32_t)le32(p), k);
            rc = CLI_DATA;
            goto done;
        }
        for (uint32_t j = 0; j < k; j++) {
            int32_t v = (int32_t)le32(p + 4 + 4 * j);
            if (v < -1) {
                cli_error("%s: row %u has a negative neighbour index (%d)", path, i, (int)v);
                rc = CLI_DATA;
                goto done;
            }
            rows[(size_t)i * k + j] = v < 0 ? UINT32_MAX : (uint32_t)v; /* -1: no neighbour */
        }
    }
done:
    free(bytes);
    if (rc) {
        free(rows);
        return rc;
    }
    *rows_out = rows;
    *n_out = n;
    *k_out = k;
    return CLI_OK;
}

/* -------------------------------------------------------------------- npy */

/* The header is a Python dict literal:
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (1000, 128), }
 * Parsed strictly: exactly these keys, each once. */
typedef struct npy_header {
    char descr[32];
    int has_descr, has_order, has_shape;
    int fortran;
    int ndim;
    uint64_t shape[3];
} npy_header;

static void py_ws(const char **p, const char *end) {
    while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')) (*p)++;
}

/* A quoted Python string (no escapes in numpy headers). */
static int py_string(const char **p, const char *end, char *out, size_t cap) {
    if (*p >= end || (**p != '\'' && **p != '"')) return -1;
    char q = *(*p)++;
    size_t n = 0;
    while (*p < end && **p != q) {
        if (**p == '\\' || n + 1 >= cap) return -1;
        out[n++] = *(*p)++;
    }
    if (*p >= end) return -1;
    (*p)++;
    out[n] = '\0';
    return 0;
}

static const char *npy_parse_header(const char *p, const char *end, npy_header *h) {
    memset(h, 0, sizeof *h);
    py_ws(&p, end);
    if (p >= end || *p != '{') return "the header is not a Python dict";
    p++;
    for (;;) {
        py_ws(&p, end);
        if (p < end && *p == '}') break;
        char key[32];
        if (py_string(&p, end, key, sizeof key)) return "the header has a malformed key";
        py_ws(&p, end);
        if (p >= end || *p != ':') return "the header is missing a ':'";
        p++;
        py_ws(&p, end);
        if (!strcmp(key, "descr")) {
            if (h->has_descr++) return "the header repeats 'descr'";
            if (p < end && *p == '[')
                return "structured dtypes are not supported; save a plain float32 array";
            if (py_string(&p, end, h->descr, sizeof h->descr)) return "the header's 'descr' is malformed";
        } else if (!strcmp(key, "fortran_order")) {
            if (h->has_order++) return "the header repeats 'fortran_order'";
            if (end - p >= 4 && !memcmp(p, "True", 4)) h->fortran = 1, p += 4;
            else if (end - p >= 5 && !memcmp(p, "False", 5)) h->fortran = 0, p += 5;
            else return "the header's 'fortran_order' is not True or False";
        } else if (!strcmp(key, "shape")) {
            if (h->has_shape++) return "the header repeats 'shape'";
            if (p >= end || *p != '(') return "the header's 'shape' is not a tuple";
            p++;
            for (;;) {
                py_ws(&p, end);
                if (p < end && *p == ')') break;
                if (p >= end || *p < '0' || *p > '9') return "the header's 'shape' is malformed";
                uint64_t v = 0;
                while (p < end && *p >= '0' && *p <= '9') {
                    if (v > (UINT64_MAX - 9) / 10) return "the header's 'shape' is too large";
                    v = v * 10 + (uint64_t)(*p++ - '0');
                }
                if (p < end && *p == 'L') p++; /* Python 2 longs */
                if (h->ndim == 3) return "arrays of more than 2 dimensions are not supported";
                h->shape[h->ndim++] = v;
                py_ws(&p, end);
                if (p < end && *p == ',') {
                    p++;
                    continue;
                }
                if (p < end && *p == ')') break;
                return "the header's 'shape' is malformed";
            }
            p++;
        } else {
            return "the header has an unknown key";
        }
        py_ws(&p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '}') break;
        return "the header dict is malformed";
    }
    if (!h->has_descr || !h->has_order || !h->has_shape)
        return "the header lacks 'descr', 'fortran_order' or 'shape'";
    return NULL;
}

static const char *dtype_words(const char *d) {
    const char *t = d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=' ? d + 1 : d;
    if (!strcmp(t, "f8")) return "float64";
    if (!strcmp(t, "f2")) return "float16";
    if (!strcmp(t, "f4")) return "float32";
    if (t[0] == 'i') return "a signed integer type";
    if (t[0] == 'u') return "an unsigned integer type";
    if (t[0] == 'b') return "bool";
    if (t[0] == 'c') return "complex";
    return "an unsupported type";
}

static int read_npy(const char *path, FILE *f, uint64_t file_size, cli_records *r) {
    uint8_t pre[12];
    if (fread(pre, 1, 10, f) < 10 || memcmp(pre, NPY_MAGIC, 6)) {
        cli_error("%s: not a .npy file (no \\x93NUMPY magic, or truncated before the header)",
                  path);
        return CLI_DATA;
    }
    uint32_t major = pre[6], header_len;
    size_t pre_len = 10;
    if (major == 1) {
        header_len = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
    } else if (major == 2 || major == 3) {
        if (fread(pre + 10, 1, 2, f) < 2) {
            cli_error("%s: truncated in the .npy preamble", path);
            return CLI_DATA;
        }
        header_len = le32(pre + 8);
        pre_len = 12;
    } else {
        cli_error("%s: .npy format version %u.%u is not supported (1.0, 2.0 and 3.0 are)", path,
                  major, pre[7]);
        return CLI_DATA;
    }
    if (header_len > NPY_HEADER_MAX) {
        cli_error("%s: the .npy header claims %u bytes; at most %u are accepted", path, header_len,
                  NPY_HEADER_MAX);
        return CLI_DATA;
    }
    char *header = malloc(header_len ? header_len : 1);
    if (!header) {
        cli_error("%s: out of memory", path);
        return CLI_INTERNAL;
    }
    if (fread(header, 1, header_len, f) < header_len) {
        free(header);
        cli_error("%s: truncated: the .npy header needs %u bytes", path, header_len);
        return CLI_DATA;
    }
    npy_header h;
    const char *problem = npy_parse_header(header, header + header_len, &h);
    free(header);
    if (problem) {
        cli_error("%s: %s", path, problem);
        return CLI_DATA;
    }
    if (strcmp(h.descr, "<f4") && strcmp(h.descr, "=f4")) {
        if (!strcmp(h.descr, ">f4"))
            cli_error("%s: dtype '>f4' is big-endian float32; only little-endian float32 ('<f4') "
                      "is supported: save with x.astype('<f4')",
                      path);
        else
            cli_error("%s: dtype '%s' (%s) is not supported; only float32 ('<f4'): convert with "
                      "x.astype(np.float32)",
                      path, h.descr, dtype_words(h.descr));
        return CLI_DATA;
    }
    if (h.fortran) {
        cli_error("%s: the array is stored in Fortran (column-major) order; save "
                  "np.ascontiguousarray(x) instead",
                  path);
        return CLI_DATA;
    }
    uint64_t rows, dim;
    if (h.ndim == 2) rows = h.shape[0], dim = h.shape[1];
    else if (h.ndim == 1) rows = 1, dim = h.shape[0];
    else {
        cli_error("%s: the array has %d dimensions; expected (rows, dim)", path, h.ndim);
        return CLI_DATA;
    }
    if (rows == 0) {
        cli_error("%s: no vectors (shape has 0 rows)", path);
        return CLI_DATA;
    }
    if (dim == 0 || dim > SHOAL_DIM_MAX) {
        cli_error("%s: vectors have %llu dimensions; expected 1..%u", path,
                  (unsigned long long)dim, SHOAL_DIM_MAX);
        return CLI_DATA;
    }
    if (rows > ROWS_MAX) {
        cli_error("%s: %llu rows; at most %u are supported", path, (unsigned long long)rows,
                  ROWS_MAX);
        return CLI_DATA;
    }
    uint64_t data_at = pre_len + header_len, need = rows * dim * 4;
    uint64_t have = file_size > data_at ? file_size - data_at : 0;
    if (have < need) {
        cli_error("%s: truncated: shape (%llu, %llu) needs %llu bytes of float32 data, the file "
                  "has %llu",
                  path, (unsigned long long)rows, (unsigned long long)dim,
                  (unsigned long long)need, (unsigned long long)have);
        return CLI_DATA;
    }
    if (have > need) {
        cli_error("%s: %llu unexpected bytes after the array's data", path,
                  (unsigned long long)(have - need));
        return CLI_DATA;
    }
    r->dim = (uint32_t)dim;
    uint8_t *buf = malloc((size_t)dim * 4);
    if (!buf) {
        cli_error("%s: out of memory", path);
        return CLI_INTERNAL;
    }
    int rc = CLI_OK;
    for (uint64_t i = 0; i < rows; i++) {
        if (fread(buf, 1, (size_t)dim * 4, f) < (size_t)dim * 4) {
            if (ferror(f)) cli_error_errno(path, "read", errno);
            else cli_error("%s: truncated at row %llu", path, (unsigned long long)i);
            rc = CLI_DATA;
            break;
        }
        if ((rc = reserve_or_fail(r, path, 10))) break;
        float *row = records_row(r);
        for (uint32_t j = 0; j < dim; j++) row[j] = lef32(buf + 4 * j);
        long bad = first_nonfinite(row, r->dim);
        if (bad >= 0) {
            cli_error("%s: row %llu has a non-finite value (%g) at column %ld", path,
                      (unsigned long long)i, (double)row[bad], bad);
            rc = CLI_DATA;
            break;
        }
        numbered_commit(r);
    }
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------ JSONL */

static int jsonl_line(const char *path, uint64_t line_no, const char *p, const char *end,
                      cli_records *r, float **vec, size_t *vec_cap) {
    const char *q = p;
    while (q < end && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
    if (q == end) return CLI_OK; /* blank line */
    json_record rec;
    uint32_t count;
    char err[200];
    if (json_parse_record(p, end, &rec, vec, vec_cap, &count, err, sizeof err)) {
        cli_error("%s:%llu: %s", path, (unsigned long long)line_no, err);
        return CLI_DATA;
    }
    if (r->dim == 0) {
        r->dim = count;
    } else if (count != r->dim) {
        cli_error("%s:%llu: the vector has %u elements; the records before it have %u", path,
                  (unsigned long long)line_no, count, r->dim);
        return CLI_DATA;
    }
    int rc = reserve_or_fail(r, path, rec.id_len);
    if (rc) return rc;
    memcpy(records_row(r), *vec, (size_t)count * sizeof **vec);
    records_commit(r, rec.id_buf, rec.id_len);
    r->with_metadata += rec.has_metadata ? 1u : 0u;
    r->other_fields += rec.has_other ? 1u : 0u;
    if (rec.has_metadata || rec.has_time || r->annotated) {
        rc = cli_records_annotate(r, rec.has_metadata ? rec.meta_at : NULL, rec.meta_len,
                                  rec.has_time ? rec.time : SHOAL_TIME_NONE);
        if (rc) {
            cli_error("%s: out of memory for metadata after %u records", path, r->n);
            return CLI_INTERNAL;
        }
    }
    return CLI_OK;
}

static int read_jsonl(const char *path, FILE *f, cli_records *r) {
    size_t cap = 1 << 20, len = 0, start = 0;
    char *buf = malloc(cap);
    float *vec = NULL;
    size_t vec_cap = 0;
    uint64_t line_no = 0;
    int eof = 0, rc = CLI_OK;
    if (!buf) {
        cli_error("%s: out of memory", path);
        return CLI_INTERNAL;
    }
    for (;;) {
        char *nl = memchr(buf + start, '\n', len - start);
        if (nl || (eof && start < len)) {
            const char *line = buf + start;
            const char *line_end = nl ? nl : buf + len;
            line_no++;
            if (line_no == 1 && line_end - line >= 3 && !memcmp(line, "\xef\xbb\xbf", 3))
                line += 3; /* byte order mark */
            if ((rc = jsonl_line(path, line_no, line, line_end, r, &vec, &vec_cap))) break;
            start = nl ? (size_t)(nl - buf) + 1 : len;
            continue;
        }
        if (eof) break;
        /* Need more bytes: compact, grow if a line fills the buffer. */
        if (start > 0) {
            memmove(buf, buf + start, len - start);
            len -= start;
            start = 0;
        }
        if (len == cap) {
            if (cap >= JSONL_LINE_MAX) {
                cli_error("%s:%llu: the line is longer than %zu MiB", path,
                          (unsigned long long)line_no + 1, JSONL_LINE_MAX >> 20);
                rc = CLI_DATA;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                cli_error("%s: out of memory", path);
                rc = CLI_INTERNAL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                cli_error_errno(path, "read", errno);
                rc = CLI_DATA;
                break;
            }
            eof = 1;
        }
    }
    free(buf);
    free(vec);
    if (!rc && r->n == 0) {
        cli_error("%s: no records (the file has no JSON lines)", path);
        rc = CLI_DATA;
    }
    return rc;
}

/* ------------------------------------------------------------- dispatch */

int cli_read_records(const char *path, cli_format fmt, cli_records *out) {
    memset(out, 0, sizeof *out);
    struct stat st;
    FILE *f = cli_open_input(path, &st);
    if (!f) return CLI_DATA;
    uint8_t head[64];
    size_t head_len = fread(head, 1, sizeof head, f);
    rewind(f);
    cli_format sniffed = cli_sniff(path, head, head_len);
    if (fmt == CLI_FORMAT_AUTO) fmt = sniffed;
    int rc;
    switch (fmt) {
    case CLI_FORMAT_FVECS:
    case CLI_FORMAT_BVECS: rc = read_vecs(path, f, (uint64_t)st.st_size, fmt, out); break;
    case CLI_FORMAT_NPY: rc = read_npy(path, f, (uint64_t)st.st_size, out); break;
    case CLI_FORMAT_JSONL: rc = read_jsonl(path, f, out); break;
    case CLI_FORMAT_SEGMENT:
        cli_error("%s: is a segment, not a vector file", path);
        rc = CLI_DATA;
        break;
    default:
        cli_error("%s: cannot tell the format from the name or the first bytes; name it .fvecs, "
                  ".bvecs, .npy or .jsonl, or pass --format",
                  path);
        rc = CLI_DATA;
    }
    fclose(f);
    if (rc) cli_records_free(out);
    return rc;
}

int cli_parse_vector_arg(const char *text, cli_records *out) {
    memset(out, 0, sizeof *out);
    size_t len = strlen(text);
    float *v = malloc((len / 2 + 1) * sizeof *v);
    if (!v) {
        cli_error("out of memory");
        return CLI_INTERNAL;
    }
    uint32_t n = 0;
    const char *p = text, *end = text + len;
    while (p < end && (*p == ' ' || *p == '[')) p++;
    while (end > p && (end[-1] == ' ' || end[-1] == ']')) end--;
    while (p < end) {
        const char *q = p;
        while (q < end && *q != ',' && *q != ' ') q++;
        if (q == p || n == SHOAL_DIM_MAX || json_parse_float(p, (size_t)(q - p), &v[n])) {
            cli_error("--vector: element %u ('%.*s') is not a finite number", n,
                      (int)(q - p > 40 ? 40 : q - p), p);
            free(v);
            return CLI_USAGE;
        }
        n++;
        p = q;
        while (p < end && *p == ' ') p++;
        if (p < end && *p == ',') p++;
        while (p < end && *p == ' ') p++;
    }
    if (n == 0) {
        cli_error("--vector: no numbers given");
        free(v);
        return CLI_USAGE;
    }
    out->dim = n;
    int rc = cli_records_push(out, "0", 1, v);
    free(v);
    if (rc) {
        cli_error("out of memory");
        return CLI_INTERNAL;
    }
    return CLI_OK;
}
