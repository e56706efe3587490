/*
 * make_golden.c -- writes the golden segments of the current format version
 * (tests/golden/<version>/<case>.seg), the results their queries must give
 * (expected.txt) and their CIDs (cids.txt).  Run by `make golden`, natively,
 * only for a new format version: committed golden files are never rewritten
 * (tests/golden_cases.h says why).
 * The C tests (natively and under WASI) and the JS tests load these files and
 * compare results and CIDs; the fuzzer uses them as seeds.
 */
#include <stdio.h>

#include "golden_cases.h"

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "tests/golden/1.1";
    char path[512];
    size_t cap = 1 << 20;
    char *expected = malloc(cap);
    size_t len = 0;
    snprintf(path, sizeof path, "%s/cids.txt", dir);
    FILE *cids = fopen(path, "w");
    if (!cids) return 1;
    for (uint32_t i = 0; i < GOLDEN_COUNT; i++) {
        const golden_case *c = &GOLDEN_CASES[i];
        shoal_index *index = golden_build(c, i);
        if (!index) return fprintf(stderr, "make_golden: %s failed\n", c->name), 1;
        long n = golden_results(index, c, i, expected, cap, len);
        if (n < 0) return 1;
        len = (size_t)n;
        shoal_save_params sp;
        shoal_save_params_init(&sp);
        sp.zstd_level = c->zstd_level;
        uint8_t *seg;
        size_t size;
        if (shoal_index_save(index, &sp, &seg, &size)) return 1;
        char cid[SHOAL_CID_SIZE];
        shoal_cid(seg, size, cid);
        fprintf(cids, "%s %s %d %zu\n", c->name, cid, c->zstd_level, size);
        snprintf(path, sizeof path, "%s/%s.seg", dir, c->name);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(seg, 1, size, f) != size || fclose(f)) return 1;
        printf("%s: %zu bytes, %s\n", path, size, cid);
        shoal_index_free_bytes(index, seg);
        shoal_index_free(index);
    }
    fclose(cids);
    snprintf(path, sizeof path, "%s/expected.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f || fwrite(expected, 1, len, f) != len || fclose(f)) return 1;
    free(expected);
    return 0;
}
