/*
 * fuzz_jsonl.c -- libFuzzer target for the CLI's JSON reader (src/cli/json.c):
 * one JSONL record line, the strict number parser and the JSON string writer.
 *
 * The reader faces files nobody vetted, so it must never read past its byte
 * range, recurse without bound or accept what it cannot represent.  Besides
 * "no crash, no sanitizer report", the target checks what the reader
 * promises: a parsed record has an id of 1..SHOAL_ID_MAX bytes and a vector
 * of finite floats, 1..SHOAL_DIM_MAX of them, and the writer's output for
 * any bytes is a complete JSON string that the reader itself accepts.
 *
 *   make fuzz-cli            (FUZZ_CLI_TIME seconds, default 60)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Copy into an exact-size buffer so ASan catches any read past it. */
    char *line = malloc(size ? size : 1);
    if (!line) return 0;
    memcpy(line, data, size);
    json_record rec;
    float *vec = NULL;
    size_t cap = 0;
    uint32_t count = 0;
    char err[200];
    if (json_parse_record(line, line + size, &rec, &vec, &cap, &count, err, sizeof err) == 0) {
        if (rec.id_len < 1 || rec.id_len > SHOAL_ID_MAX || count < 1 || count > SHOAL_DIM_MAX)
            abort();
        for (uint32_t i = 0; i < count; i++)
            if (!isfinite(vec[i])) abort();
    }
    float f;
    if (json_parse_float(line, size, &f) == 0 && !isfinite(f)) abort();

    /* The writer's output, wrapped as a record's id, must parse back. */
    if (size <= 200) {
        char *out = NULL;
        size_t out_len = 0;
        FILE *mem = open_memstream(&out, &out_len);
        if (mem) {
            fputs("{\"id\":", mem);
            json_write_string(mem, line, size);
            fputs(",\"vector\":[1]}", mem);
            fclose(mem);
            int rc = json_parse_record(out, out + out_len, &rec, &vec, &cap, &count, err, sizeof err);
            /* An empty id is the one thing the reader rightly refuses. */
            if (rc != 0 && size > 0) {
                fprintf(stderr, "writer output not accepted: %s\n%s\n", err, out);
                abort();
            }
            free(out);
        }
    }
    free(vec);
    free(line);
    return 0;
}
