/*
 * fuzz_manifest.c -- libFuzzer target for a collection's root block, the
 * manifest (src/collection/manifest.c, shoal_collection_open): DAG-CBOR
 * checked key by key against its schema before anything is allocated.
 *
 * What must hold:
 *   - open returns 0 with a collection or a negative code with none and a
 *     message; the same bytes give the same code and message twice;
 *   - an opened collection answers wants (all and lazy, the same list
 *     twice), stats, its block list (block 0 is the input), a search (hits
 *     or SHOAL_ESTATE while segments are missing) and a give of a block it
 *     does not want;
 *   - decode -> encode: committing the opened collection again (history
 *     dropped) writes a manifest that opens, and committing that one gives
 *     the same bytes; when the input links no previous version the first
 *     commit gives the input's own bytes back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/cbor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                       \
    do {                                                \
        fprintf(stderr, "fuzz_manifest: " __VA_ARGS__); \
        fprintf(stderr, "\n");                          \
        abort();                                        \
    } while (0)

#define CAP 64

static int open_(const uint8_t *bytes, size_t size, shoal_collection **c, char *msg, size_t msg_size) {
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    lp.errmsg = msg;
    lp.errmsg_size = msg_size;
    msg[0] = '\0';
    int rc = shoal_collection_open(bytes, size, &lp, c);
    if (rc > 0 || (rc == 0) != (*c != NULL)) FAIL("open returned %d", rc);
    if (rc < 0 && !msg[0]) FAIL("open: code %d without a message", rc);
    return rc;
}

/* The manifest a commit (history dropped) writes; malloc'ed. */
static uint8_t *recommit(shoal_collection *c, size_t *size) {
    uint8_t root[SHOAL_CID_BYTES];
    int n = shoal_collection_commit(c, 1, root);
    if (n < 0) return NULL;
    shoal_block_ref ref;
    if (shoal_collection_block(c, 0, &ref) || !ref.bytes) FAIL("commit: no block 0");
    if (shoal_cid_verify(root, ref.bytes, ref.size) != 1) FAIL("commit: root CID does not match block 0");
    uint8_t *copy = malloc(ref.size);
    memcpy(copy, ref.bytes, ref.size);
    *size = ref.size;
    return copy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20) + 16) return 0;
    uint8_t *bytes = malloc(size ? size : 1);
    if (!bytes) return 0;
    if (size) memcpy(bytes, data, size);

    shoal_collection *c = NULL, *d = NULL;
    char m1[256], m2[256];
    int r1 = open_(bytes, size, &c, m1, sizeof m1);
    int r2 = open_(bytes, size, &d, m2, sizeof m2);
    if (r1 != r2 || strcmp(m1, m2)) FAIL("two opens disagree: %d %s | %d %s", r1, m1, r2, m2);
    if (r1 == 0) {
        /* Block 0 is the manifest itself. */
        shoal_block_ref ref;
        if (shoal_collection_block(c, 0, &ref) || ref.size != size || memcmp(ref.bytes, bytes, size))
            FAIL("block 0 is not the manifest");
        for (uint32_t i = 1; shoal_collection_block(c, i, &ref) == 0; i++)
            if (i > 1u << 20) FAIL("endless block list");
        static uint8_t w1[CAP][SHOAL_CID_BYTES], w2[CAP][SHOAL_CID_BYTES];
        for (int want = SHOAL_WANT_ALL; want <= SHOAL_WANT_LAZY; want++) {
            int n1 = shoal_collection_wants(c, want, NULL, 0, 0, NULL, w1, CAP);
            int n2 = shoal_collection_wants(d, want, NULL, 0, 0, NULL, w2, CAP);
            if (n1 != n2) FAIL("wants: %d and %d", n1, n2);
            if (n1 > 0 && memcmp(w1, w2, (size_t)(n1 < CAP ? n1 : CAP) * SHOAL_CID_BYTES))
                FAIL("wants: two lists");
        }
        shoal_collection_stats st;
        shoal_collection_stats_get(c, &st);
        if (st.size != shoal_collection_size(c)) FAIL("stats");
        uint32_t dim = shoal_collection_dim(c);
        float *q = calloc(dim, sizeof *q);
        shoal_hit hits[4];
        float dist[4];
        int found = shoal_collection_search(c, q, dim, 4, NULL, NULL, NULL, hits, dist);
        if (found < 0 && found != SHOAL_ESTATE) FAIL("search: %d %s", found, shoal_collection_errmsg(c));
        free(q);
        /* The manifest is never one of the blocks it wants. */
        if (shoal_collection_give(c, bytes, size) > 0) FAIL("give of the manifest was taken");

        /* Decode -> encode. */
        size_t n1 = 0, n2 = 0;
        uint8_t *e1 = recommit(d, &n1);
        if (e1) {
            shoal_collection *e = NULL;
            char m3[256];
            if (open_(e1, n1, &e, m3, sizeof m3)) FAIL("the recommitted manifest does not open: %s", m3);
            uint8_t *e2 = recommit(e, &n2);
            if (!e2) FAIL("second commit failed: %s", shoal_collection_errmsg(e));
            if (n1 != n2 || memcmp(e1, e2, n1)) FAIL("commit of a reopened manifest changed its bytes");
            free(e2);
            shoal_collection_free(e);
            /* With no previous version, the input is what a commit
             * writes: the manifest is canonical and every field of it is
             * kept, so re-encoding gives the same bytes. */
            shoal__cbor_item m;
            shoal__cbor_item_at(bytes, &m);
            const uint8_t *prev = shoal__cbor_get(&m, "prev", 4);
            if (prev && prev[0] == (SHOAL__CBOR_SIMPLE << 5 | SHOAL__CBOR_NULL) &&
                (n1 != size || memcmp(e1, bytes, size)))
                FAIL("decode -> encode changed a manifest without history");
            free(e1);
        }
    }
    shoal_collection_free(c);
    shoal_collection_free(d);
    free(bytes);
    return 0;
}
