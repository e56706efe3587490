/*
 * fuzz_vectors.c -- libFuzzer target for the CLI's vector file readers
 * (src/cli/input.c): fvecs, bvecs, npy, JSONL (whose line parser
 * tests/cli/fuzz_jsonl.c fuzzes on its own) and the ivecs ground truth.
 *
 * The first input byte picks the reader: 0 fvecs, 1 bvecs, 2 npy, 3 JSONL,
 * 4 sniffed from the bytes, 5 ivecs; the rest is the file, written to a
 * private temporary directory because the readers take paths.  What must
 * hold:
 *   - the same file read twice gives the same code, message and records;
 *   - records read have 1..SHOAL_DIM_MAX finite floats and ids of
 *     1..SHOAL_ID_MAX bytes ("0", "1", ... for binary formats);
 *   - written back as fvecs and read again they are the same records, and
 *     an fvecs file that reads is exactly what writing its records gives
 *     (decode -> encode, byte for byte);
 *   - a reader either returns every record or nothing (no records, no
 *     memory, on failure).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                      \
    do {                                               \
        fprintf(stderr, "fuzz_vectors: " __VA_ARGS__); \
        fprintf(stderr, "\n");                         \
        abort();                                       \
    } while (0)

/* main.c's messages, kept rather than printed. */
static char last_error[1024];
void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}
const char *cli_last_error(void) { return last_error; }
const char *cli_str(cli_args *args, const char *name) {
    (void)args;
    (void)name;
    return NULL;
}

static char dir[64];

static void put(const char *path, const uint8_t *bytes, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(bytes, 1, size, f) != size) || fclose(f)) FAIL("cannot write %s", path);
}

static void same_records(const cli_records *a, const cli_records *b, const char *what) {
    if (a->n != b->n || a->dim != b->dim) FAIL("%s: %u x %u vs %u x %u", what, a->n, a->dim, b->n, b->dim);
    if (a->n && memcmp(a->vectors, b->vectors, (size_t)a->n * a->dim * sizeof(float)))
        FAIL("%s: vectors differ", what);
}

static void same_ids(const cli_records *a, const cli_records *b) {
    if (a->n && (memcmp(a->id_offsets, b->id_offsets, ((size_t)a->n + 1) * 4) ||
                 memcmp(a->id_bytes, b->id_bytes, a->id_offsets[a->n])))
        FAIL("two reads: ids differ");
    if (a->with_metadata != b->with_metadata || a->annotated != b->annotated) FAIL("two reads: metadata");
}

static uint8_t *fvecs_of(const cli_records *r, size_t *size) {
    *size = (size_t)r->n * (4 + (size_t)r->dim * 4);
    uint8_t *out = malloc(*size ? *size : 1), *p = out;
    for (uint32_t i = 0; i < r->n; i++) {
        uint32_t d = r->dim;
        for (int b = 0; b < 4; b++) *p++ = (uint8_t)(d >> (8 * b));
        for (uint32_t j = 0; j < d; j++) {
            uint32_t u;
            memcpy(&u, &r->vectors[(size_t)i * d + j], 4);
            for (int b = 0; b < 4; b++) *p++ = (uint8_t)(u >> (8 * b));
        }
    }
    return out;
}

static void ivecs(const char *path) {
    uint32_t *r1 = NULL, *r2 = NULL, n1 = 0, n2 = 0, k1 = 0, k2 = 0;
    last_error[0] = '\0';
    int a = cli_read_ivecs(path, &r1, &n1, &k1);
    char e1[sizeof last_error];
    strcpy(e1, last_error);
    last_error[0] = '\0';
    int b = cli_read_ivecs(path, &r2, &n2, &k2);
    if (a != b || strcmp(e1, last_error)) FAIL("ivecs: two reads disagree");
    if (a == 0 && (n1 != n2 || k1 != k2 || (n1 && memcmp(r1, r2, (size_t)n1 * k1 * 4))))
        FAIL("ivecs: two reads, two results");
    free(r1);
    free(r2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1u << 20)) return 0;
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/fuzz_vectors.XXXXXX", base);
        if (!mkdtemp(dir)) FAIL("mkdtemp");
    }
    static const char *const names[] = {"in.fvecs", "in.bvecs", "in.npy", "in.jsonl", "in.dat", "in.ivecs"};
    static const cli_format fmts[] = {CLI_FORMAT_FVECS, CLI_FORMAT_BVECS, CLI_FORMAT_NPY,
                                      CLI_FORMAT_JSONL, CLI_FORMAT_AUTO};
    unsigned mode = data[0] % 6;
    char path[128], back[128];
    snprintf(path, sizeof path, "%s/%s", dir, names[mode]);
    snprintf(back, sizeof back, "%s/back.fvecs", dir);
    put(path, data + 1, size - 1);
    if (mode == 5) {
        ivecs(path);
        unlink(path);
        return 0;
    }

    cli_records a, b;
    last_error[0] = '\0';
    int ra = cli_read_records(path, fmts[mode], &a);
    char ea[sizeof last_error];
    strcpy(ea, last_error);
    last_error[0] = '\0';
    int rb = cli_read_records(path, fmts[mode], &b);
    if (ra != rb || strcmp(ea, last_error)) FAIL("two reads disagree: %d %s | %d %s", ra, ea, rb, last_error);
    if (ra < 0) FAIL("code %d", ra);
    if (ra && (a.n || a.vectors || a.id_bytes || a.id_offsets || a.meta_bytes)) FAIL("a failed read kept records");
    if (ra && !ea[0]) FAIL("failed without a message");
    if (ra == 0) {
        same_records(&a, &b, "two reads");
        same_ids(&a, &b);
        if (a.n && (a.dim < 1 || a.dim > SHOAL_DIM_MAX)) FAIL("dim %u", a.dim);
        for (size_t i = 0; i < (size_t)a.n * a.dim; i++)
            if (!isfinite(a.vectors[i])) FAIL("a non-finite value at %zu", i);
        for (uint32_t i = 0; i < a.n; i++) {
            uint32_t len = a.id_offsets[i + 1] - a.id_offsets[i];
            if (a.id_offsets[i + 1] < a.id_offsets[i] || len < 1 || len > SHOAL_ID_MAX) FAIL("id %u", i);
            if (mode <= 2 || (mode == 4 && fmts[mode] != CLI_FORMAT_JSONL)) {
                char want[16];
                int n = snprintf(want, sizeof want, "%u", i);
                if (mode != 4 && ((uint32_t)n != len || memcmp(want, a.id_bytes + a.id_offsets[i], len)))
                    FAIL("record %u has id %.*s", i, (int)len, a.id_bytes + a.id_offsets[i]);
            }
        }
        /* Written back as fvecs, read again. */
        if (a.n) {
            size_t n;
            uint8_t *f = fvecs_of(&a, &n);
            if (mode == 0 && (n != size - 1 || memcmp(f, data + 1, n)))
                FAIL("fvecs: writing the records read gives other bytes");
            put(back, f, n);
            free(f);
            cli_records c;
            if (cli_read_records(back, CLI_FORMAT_FVECS, &c)) FAIL("fvecs written back does not read: %s", last_error);
            same_records(&a, &c, "written back as fvecs");
            cli_records_free(&c);
            unlink(back);
        }
    }
    cli_records_free(&a);
    cli_records_free(&b);
    unlink(path);
    return 0;
}
