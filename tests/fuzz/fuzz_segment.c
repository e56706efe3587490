/*
 * fuzz_segment.c -- libFuzzer target for every call that parses segment
 * bytes: shoal_segment_info, shoal_segment_blocks, shoal_index_load and
 * shoal_index_view.  Under AddressSanitizer and UBSan; any crash, leak,
 * overflow or undefined behaviour is a bug.  What must hold:
 *   - every call returns 0 or a negative code; a failed load leaves no index;
 *   - a segment that loads (or is viewed) passes shoal_index_check: the
 *     loader validates everything check does -- for HNSW the links one by
 *     one and the level-0 reachability of every node -- so a hostile
 *     segment fails to load rather than loading broken;
 *   - a segment that loads can be searched (results are live labels, at
 *     most k, distances ascending), and saving it again
 *     gives a segment that loads too, whose second save is byte-identical
 *     (determinism of the writer);
 *   - load and view agree on success.
 * Seeds: the .seg files of tests/golden/<version> and tests/fuzz/seeds-segment (make test-fuzz, make fuzz).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(shoal_index *index) {
    uint32_t dim = shoal_index_dim(index);
    float *q = calloc(dim, sizeof *q);
    for (uint32_t j = 0; j < dim; j++) q[j] = (float)(j % 7) - 3.0f;
    uint32_t labels[8];
    float dist[8];
    int found = shoal_index_search(index, q, dim, 8, NULL, labels, dist);
    if (found > 8 || (found < 0 && found != SHOAL_EVECTOR)) abort();
    for (int i = 0; i < found; i++) {
        const char *id;
        if (shoal_index_label_id(index, labels[i], &id) < 0) abort();
        if (i && dist[i] < dist[i - 1]) abort();
    }
    int rc = shoal_index_check(index);
    if (rc != 0) {
        fprintf(stderr, "fuzz_segment: a segment that loaded fails check: %d %s\n", rc,
                shoal_index_errmsg(index));
        abort();
    }
    free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An aligned copy, so views take the zero-copy path. */
    uint8_t *bytes = aligned_alloc(64, (size + 64) & ~(size_t)63);
    if (!bytes) return 0;
    if (size) memcpy(bytes, data, size);

    shoal_segment_summary info;
    shoal_segment_info(bytes, size, &info);
    shoal_block blocks[64];
    shoal_segment_blocks(bytes, size, blocks, 64);

    shoal_index *loaded = NULL, *viewed = NULL;
    int rc = shoal_index_load(bytes, size, NULL, &loaded);
    int rv = shoal_index_view(bytes, size, NULL, &viewed);
    if ((rc == 0) != (rv == 0)) abort();
    if (rc != 0 && loaded) abort();
    if (loaded) {
        exercise(loaded);
        exercise(viewed);
        uint8_t *seg;
        size_t n;
        if (shoal_index_save(loaded, NULL, &seg, &n) == 0) {
            shoal_index *again = NULL;
            if (shoal_index_load(seg, n, NULL, &again) != 0) abort();
            uint8_t *seg2;
            size_t n2;
            if (shoal_index_save(again, NULL, &seg2, &n2) == 0) {
                if (n2 != n || memcmp(seg, seg2, n) != 0) abort();
                shoal_index_free_bytes(again, seg2);
            }
            shoal_index_free(again);
            shoal_index_free_bytes(loaded, seg);
        }
    }
    shoal_index_free(loaded);
    shoal_index_free(viewed);
    free(bytes);
    return 0;
}
