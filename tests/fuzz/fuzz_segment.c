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
 *   - load and view agree on success;
 *   - loaded with its rerank rows left outside (rerank_external), whole or
 *     lazily with each list attached without its rows, a segment that
 *     loads does too (unless its rows are compressed: SHOAL_EUNSUPPORTED),
 *     every candidate's row lies inside the segment, and the two phases
 *     give the resident search's labels and distances bit for bit.
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

/* The two phases on x, rows read from bytes; -1 when x does not rerank. */
static int two_phase(shoal_index *x, const uint8_t *bytes, size_t size, const float *q,
                     uint32_t *labels, float *dist) {
    uint32_t dim = shoal_index_dim(x);
    int n = shoal_index_search_candidates(x, q, dim, 8, NULL, NULL, 0);
    if (n == SHOAL_ESTATE) return -1;
    if (n < 0) return n;
    shoal_candidate *cand = malloc((size_t)(n ? n : 1) * sizeof *cand);
    uint32_t *cl = malloc((size_t)(n ? n : 1) * sizeof *cl);
    uint8_t *rows = malloc((size_t)(n ? n : 1) * dim * 4);
    if (shoal_index_search_candidates(x, q, dim, 8, NULL, cand, (uint32_t)n) != n) abort();
    for (int i = 0; i < n; i++) {
        if (cand[i].offset > size || size - cand[i].offset < (size_t)dim * 4) abort();
        cl[i] = cand[i].label;
        memcpy(rows + (size_t)i * dim * 4, bytes + cand[i].offset, (size_t)dim * 4);
    }
    int found = shoal_index_rerank_rows(x, q, dim, 8, (uint32_t)n, cl, rows, labels, dist);
    free(cand);
    free(cl);
    free(rows);
    return found;
}

static void exercise_external(const uint8_t *bytes, size_t size, shoal_index *resident) {
    uint32_t dim = shoal_index_dim(resident);
    float *q = calloc(dim, sizeof *q);
    for (uint32_t j = 0; j < dim; j++) q[j] = (float)(j % 7) - 3.0f;
    uint32_t la[8], lb[8];
    float da[8], db[8];
    int want = shoal_index_search(resident, q, dim, 8, NULL, la, da);
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    lp.rerank_external = 1;
    shoal_index *x = NULL, *lazy = NULL;
    int rc = shoal_index_load(bytes, size, &lp, &x);
    if (rc == SHOAL_EUNSUPPORTED) goto done; /* compressed rows */
    if (rc != 0) abort();
    int got = two_phase(x, bytes, size, q, lb, db);
    if (got != -1 && (got != want || (want > 0 && (memcmp(la, lb, (size_t)want * 4) ||
                                                   memcmp(da, db, (size_t)want * 4)))))
        abort();
    /* Lazily: the head, then every list without its rows. */
    shoal_segment_summary info;
    if (got == -1 || shoal_segment_info(bytes, size, &info) ||
        info.head_bytes > size || shoal_index_open_head(bytes, (size_t)info.head_bytes, &lp, &lazy))
        goto done;
    for (uint32_t l = 0; l < info.nlist; l++) {
        uint64_t off, len, roff, rlen;
        if (shoal_index_list_range(lazy, l, &off, &len)) break;
        if (shoal_index_list_rows_range(lazy, l, &roff, &rlen)) abort();
        if (off > size || len > size - off || roff < off || rlen > len || roff - off > len - rlen)
            abort();
        size_t head = (size_t)(roff - off), tail = (size_t)(len - rlen - head);
        uint8_t *unit = malloc(head + tail + 1);
        memcpy(unit, bytes + off, head);
        memcpy(unit + head, bytes + roff + rlen, tail);
        rc = shoal_index_attach_list(lazy, l, unit, head + tail);
        free(unit);
        if (rc < 0) abort(); /* loaded whole, so each list attaches */
    }
    got = two_phase(lazy, bytes, size, q, lb, db);
    if (got != want || (want > 0 && (memcmp(la, lb, (size_t)want * 4) ||
                                     memcmp(da, db, (size_t)want * 4))))
        abort();
done:
    shoal_index_free(lazy);
    shoal_index_free(x);
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
        exercise_external(bytes, size, loaded);
        uint8_t *seg;
        size_t n;
        if (shoal_index_save(loaded, NULL, &seg, &n) == 0) {
            shoal_index *again = NULL;
            char msg[256] = "";
            shoal_load_params lp;
            shoal_load_params_init(&lp);
            lp.errmsg = msg;
            lp.errmsg_size = sizeof msg;
            if (shoal_index_load(seg, n, &lp, &again) != 0) {
                fprintf(stderr, "fuzz_segment: a re-saved segment does not load: %s\n", msg);
                abort();
            }
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
