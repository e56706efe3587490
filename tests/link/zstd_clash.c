/*
 * zstd_clash.c -- a program that links libshoal.a and the system's libzstd
 * (Debian's libzstd-dev) together and uses both (make test-link).
 *
 * libshoal.a carries its own zstd (1.5.7) with its symbols made local, so
 * the program's ZSTD_* calls must reach the system library -- its version
 * number, not the bundled one -- and Shoal's segments must still compress
 * and load through the bundled copy.  Before the symbols were localized the
 * linker took ZSTD_versionNumber from libshoal.a and this failed.
 */
#include <stdio.h>
#include <string.h>
#include <zstd.h>

#include "shoal.h"

static int fail(const char *what) {
    fprintf(stderr, "zstd_clash: %s\n", what);
    return 1;
}

int main(void) {
    if (ZSTD_versionNumber() != ZSTD_VERSION_NUMBER) {
        fprintf(stderr, "zstd_clash: ZSTD_versionNumber() = %u, the system header says %u\n",
                ZSTD_versionNumber(), (unsigned)ZSTD_VERSION_NUMBER);
        return 1;
    }
    /* The system library, round trip. */
    char text[4096], packed[8192], back[4096];
    for (size_t i = 0; i < sizeof text; i++) text[i] = (char)("shoal"[i % 5] + i % 3);
    size_t n = ZSTD_compress(packed, sizeof packed, text, sizeof text, 3);
    if (ZSTD_isError(n)) return fail("system ZSTD_compress failed");
    size_t m = ZSTD_decompress(back, sizeof back, packed, n);
    if (ZSTD_isError(m) || m != sizeof text || memcmp(back, text, m)) return fail("system round trip");

    /* Shoal, with a zstd-compressed segment. */
    enum { DIM = 8, N = 200 };
    shoal_params p;
    shoal_params_init(&p);
    p.dim = DIM;
    shoal_index *index;
    if (shoal_index_new(&p, &index)) return fail("shoal_index_new");
    static float vectors[N * DIM];
    static char ids[N * 8];
    static uint32_t offsets[N + 1];
    uint32_t at = 0;
    for (uint32_t i = 0; i < N; i++) {
        offsets[i] = at;
        at += (uint32_t)sprintf(ids + at, "r%u", i);
        for (uint32_t j = 0; j < DIM; j++) vectors[i * DIM + j] = (float)((i * 7 + j * 3) % 11);
    }
    offsets[N] = at;
    if (shoal_index_add(index, N, ids, offsets, vectors, DIM) != N) return fail("shoal_index_add");
    shoal_save_params sp;
    shoal_save_params_init(&sp);
    sp.zstd_level = 3;
    uint8_t *seg;
    size_t size;
    if (shoal_index_save(index, &sp, &seg, &size)) return fail("shoal_index_save with zstd");
    shoal_index *again;
    if (shoal_index_load(seg, size, NULL, &again)) return fail("shoal_index_load of a zstd segment");
    uint32_t label;
    float dist;
    if (shoal_index_search(again, vectors + 17 * DIM, DIM, 1, NULL, &label, &dist) != 1 || dist != 0.0f)
        return fail("search after the zstd round trip");
    shoal_index_free(again);
    shoal_index_free_bytes(index, seg);
    shoal_index_free(index);
    printf("zstd_clash: system zstd %s and libshoal.a (bundled zstd, local symbols) in one program\n",
           ZSTD_versionString());
    return 0;
}
