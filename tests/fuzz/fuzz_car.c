/*
 * fuzz_car.c -- libFuzzer target for CAR import (src/codec/car.c): the
 * header and block framing of shoal_car_read_header / shoal_car_next, then
 * what `shoal car import` does with the blocks -- the links of every
 * DAG-CBOR block (shoal_dag_links) and a collection opened from the root
 * and fed the CAR's blocks until it wants no more.
 *
 * The first input byte is a mode.  Mode 0: the rest is a CAR file.
 * Mode 1: the rest is a list of blocks (u16 length + bytes each; the first
 * is DAG-CBOR, the others raw unless their first byte is 0xa0..0xbf, a
 * CBOR map), which the target frames into a CAR with correct CIDs -- so
 * that mutated blocks get past the hash check and reach the parsers behind
 * it -- and whose reading must give those blocks back (encode -> decode).
 * What must hold:
 *   - every call returns a known code; offsets only move forward and stay
 *     in the input;
 *   - re-framing each block read (shoal_car_frame + its bytes) gives the
 *     input's bytes for it: varints are shortest-form, so there is one
 *     encoding (decode -> encode), and for a Shoal-written header too;
 *   - reading the same bytes twice gives the same blocks and codes;
 *   - the import never takes a block that does not hash to a wanted CID.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                  \
    do {                                           \
        fprintf(stderr, "fuzz_car: " __VA_ARGS__); \
        fprintf(stderr, "\n");                     \
        abort();                                   \
    } while (0)

#define MAX_BLOCKS 256

typedef struct block {
    uint8_t cid[SHOAL_CID_BYTES];
    const uint8_t *data;
    size_t size;
} block;

typedef struct car {
    int header_rc, end_rc;
    uint8_t root[SHOAL_CID_BYTES];
    size_t first;
    block blocks[MAX_BLOCKS];
    uint32_t n;
} car;

static void read_car(const uint8_t *bytes, size_t size, car *out) {
    memset(out, 0, sizeof *out);
    size_t at = 0;
    out->header_rc = shoal_car_read_header(bytes, size, out->root, &at);
    if (out->header_rc > 0) FAIL("header returned %d", out->header_rc);
    if (out->header_rc) return;
    if (at > size || at == 0) FAIL("header offset %zu of %zu", at, size);
    out->first = at;
    /* A header as Shoal writes it re-encodes to the same bytes. */
    uint8_t h[128];
    int hn = shoal_car_header(out->root, h, sizeof h);
    if (hn <= 0 || hn > (int)sizeof h) FAIL("car_header %d", hn);
    for (;;) {
        size_t before = at;
        block *b = &out->blocks[out->n];
        int rc = shoal_car_next(bytes, size, &at, b->cid, &b->data, &b->size);
        if (rc < 0 || rc == 0) {
            if (at != before) FAIL("offset moved on %d", rc);
            if (rc == 0 && at < size) FAIL("end before the end");
            out->end_rc = rc;
            return;
        }
        if (rc != 1) FAIL("next returned %d", rc);
        if (at <= before || at > size) FAIL("offset %zu -> %zu of %zu", before, at, size);
        if (b->data < bytes + before || b->data + b->size != bytes + at) FAIL("data outside its frame");
        if (shoal_cid_verify(b->cid, b->data, b->size) != 1) FAIL("a block that does not hash to its CID");
        uint8_t frame[48];
        int fn = shoal_car_frame(b->cid, b->size, frame);
        if (fn <= 0 || fn > 48 || (size_t)fn + b->size != at - before || memcmp(frame, bytes + before, (size_t)fn))
            FAIL("block %u: re-framing gives other bytes", out->n);
        if (++out->n == MAX_BLOCKS) return;
    }
}

static const block *find(const car *k, const uint8_t cid[SHOAL_CID_BYTES]) {
    for (uint32_t i = 0; i < k->n; i++)
        if (!memcmp(k->blocks[i].cid, cid, SHOAL_CID_BYTES)) return &k->blocks[i];
    return NULL;
}

/* What `shoal car import` does once the blocks are in. */
static void import(const car *k) {
    static uint8_t links[64][SHOAL_CID_BYTES];
    uint8_t junk[3] = {1, 2, 3}, junk_cid[SHOAL_CID_BYTES];
    shoal_cid_bytes(junk, sizeof junk, SHOAL_CODEC_RAW, junk_cid);
    int junk_linked = 0; /* some block links the junk's digest (or too many links to tell) */
    for (uint32_t i = 0; i < k->n; i++)
        if (k->blocks[i].cid[1] == SHOAL_CODEC_DAG_CBOR) {
            int n = shoal_dag_links(k->blocks[i].data, k->blocks[i].size, links, 64);
            if (n < 0 && n != SHOAL_ECORRUPT) FAIL("dag_links %d", n);
            if (n > 64) junk_linked = 1;
            for (int j = 0; j < n && j < 64; j++) junk_linked |= !memcmp(links[j] + 4, junk_cid + 4, 32);
        }
    const block *root = find(k, k->root);
    if (!root || root->cid[1] != SHOAL_CODEC_DAG_CBOR) return;
    shoal_collection *c = NULL;
    if (shoal_collection_open(root->data, root->size, NULL, &c)) return;
    static uint8_t wants[64][SHOAL_CID_BYTES];
    for (int round = 0; round < 16; round++) {
        int n = shoal_collection_wants(c, SHOAL_WANT_ALL, NULL, 0, 0, NULL, wants, 64);
        if (n < 0) FAIL("wants %d", n);
        int given = 0;
        for (int i = 0; i < n && i < 64; i++) {
            const block *b = find(k, wants[i]);
            if (!b) continue;
            int rc = shoal_collection_give(c, b->data, b->size);
            if (rc > 1) FAIL("give returned %d", rc);
            given += rc == 1;
        }
        if (!given) break;
    }
    /* A block nothing links to is refused.  (libFuzzer's comparison
     * tracing can write the junk's digest into a link -- found at 1.2 M
     * executions, and at 7.7 M in a link that wants did not list yet,
     * which give may take early: blocks come "in any order".  Then
     * taking it is right.) */
    int wanted = junk_linked;
    static uint8_t still[1024][SHOAL_CID_BYTES];
    int n_still = shoal_collection_wants(c, SHOAL_WANT_ALL, NULL, 0, 0, NULL, still, 1024);
    if (n_still < 0 || n_still > 1024) wanted = 1;
    for (int i = 0; i < n_still && i < 1024 && !wanted; i++)
        wanted = !memcmp(still[i] + 4, junk_cid + 4, 32);
    if (shoal_collection_give(c, junk, sizeof junk) == 1 && !wanted)
        FAIL("give took a block nothing links to");
    uint32_t dim = shoal_collection_dim(c);
    float *q = calloc(dim, sizeof *q);
    shoal_hit hits[4];
    float dist[4];
    int found = shoal_collection_search(c, q, dim, 4, NULL, NULL, NULL, hits, dist);
    if (found < 0 && found != SHOAL_ESTATE) FAIL("search %d: %s", found, shoal_collection_errmsg(c));
    free(q);
    shoal_collection_free(c);
}

/* Mode 1: frames blocks from the input into a CAR (malloc'ed). */
static uint8_t *frame_blocks(const uint8_t *in, size_t size, size_t *out_size, block *want, uint32_t *nwant) {
    uint8_t *car = malloc(128 + size + (size / 2 + 1) * 48);
    size_t at = 0, len = 0;
    uint32_t n = 0;
    uint8_t root[SHOAL_CID_BYTES] = {0};
    /* Header first: its root is the first block's CID, known once hashed. */
    while (size - at >= 2 && n < MAX_BLOCKS - 1) {
        size_t bl = (size_t)in[at] | (size_t)in[at + 1] << 8;
        at += 2;
        if (bl > size - at) bl = size - at;
        uint32_t codec = n == 0 || (bl && (in[at] & 0xe0) == 0xa0) ? SHOAL_CODEC_DAG_CBOR : SHOAL_CODEC_RAW;
        shoal_cid_bytes(in + at, bl, codec, want[n].cid);
        want[n].data = in + at;
        want[n].size = bl;
        at += bl;
        n++;
    }
    if (n) memcpy(root, want[0].cid, SHOAL_CID_BYTES);
    len = (size_t)shoal_car_header(root, car, 128);
    for (uint32_t i = 0; i < n; i++) {
        len += (size_t)shoal_car_frame(want[i].cid, want[i].size, car + len);
        if (want[i].size) memcpy(car + len, want[i].data, want[i].size);
        len += want[i].size;
    }
    *out_size = len;
    *nwant = n;
    return car;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (4u << 20)) return 0;
    int mode = data[0] & 1;
    size--;
    uint8_t *in = malloc(size ? size : 1);
    if (!in) return 0;
    if (size) memcpy(in, data + 1, size);

    static block want[MAX_BLOCKS];
    uint32_t nwant = 0;
    size_t car_size = size;
    uint8_t *bytes = in;
    if (mode == 1) bytes = frame_blocks(in, size, &car_size, want, &nwant);

    static car a, b;
    read_car(bytes, car_size, &a);
    read_car(bytes, car_size, &b);
    if (a.header_rc != b.header_rc || a.end_rc != b.end_rc || a.n != b.n || a.first != b.first ||
        memcmp(a.root, b.root, sizeof a.root))
        FAIL("two reads disagree");
    for (uint32_t i = 0; i < a.n; i++)
        if (memcmp(a.blocks[i].cid, b.blocks[i].cid, SHOAL_CID_BYTES) || a.blocks[i].size != b.blocks[i].size)
            FAIL("two reads, block %u differs", i);
    if (mode == 1 && nwant) {
        if (a.header_rc || a.end_rc || a.n != nwant) FAIL("a CAR framed here reads back as %d/%d, %u of %u blocks", a.header_rc, a.end_rc, a.n, nwant);
        for (uint32_t i = 0; i < nwant; i++)
            if (memcmp(a.blocks[i].cid, want[i].cid, SHOAL_CID_BYTES) || a.blocks[i].size != want[i].size ||
                memcmp(a.blocks[i].data, want[i].data, want[i].size))
                FAIL("block %u read back differs", i);
    }
    if (!a.header_rc) import(&a);
    if (bytes != in) free(bytes);
    free(in);
    return 0;
}
