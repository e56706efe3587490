/*
 * car.c -- CARv1 framing (shoal.h, "CAR"), written from the CARv1
 * specification (ipld.io/specs/transport/car/carv1):
 *
 *   car    := varint(len(header)) header block*
 *   header := DAG-CBOR {"roots": [CID, ...], "version": 1}
 *   block  := varint(len(cid) + len(data)) cid data
 *
 * Varints are unsigned LEB128 in their shortest form.  Shoal writes one
 * root and blocks with CIDv1 / sha2-256 of the raw or DAG-CBOR codec, and
 * reads any CARv1 whose blocks are such CIDs, verifying every block
 * against its CID before handing it out: a CAR file is hostile input.
 */
#include "codec/cbor.h"

/* ---------------------------------------------------------------- varint */

static size_t varint_put(uint8_t *out, uint64_t v) {
    size_t n = 0;
    do {
        uint8_t b = (uint8_t)(v & 0x7f);
        v >>= 7;
        out[n++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
    return n;
}

/* The varint at bytes[*at] (at most 9 bytes, shortest form): 0, or -1 when
 * malformed and -2 when the bytes end inside it. */
static int varint_get(const uint8_t *bytes, size_t size, size_t *at, uint64_t *out) {
    uint64_t v = 0;
    for (unsigned i = 0; i < 9; i++) {
        if (*at + i >= size) return -2;
        uint8_t b = bytes[*at + i];
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (i > 0 && b == 0) return -1; /* not the shortest form */
            *at += i + 1;
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------- header */

static size_t header_body(const uint8_t root[SHOAL_CID_BYTES], uint8_t *out) {
    /* {"roots": [root], "version": 1}: keys in DAG-CBOR order. */
    size_t n = 0;
    out[n++] = 0xa2;
    out[n++] = 0x65;
    memcpy(out + n, "roots", 5);
    n += 5;
    out[n++] = 0x81;
    out[n++] = 0xd8; /* tag 42 */
    out[n++] = 42;
    out[n++] = 0x58; /* bytes, one-byte length */
    out[n++] = SHOAL_CID_BYTES + 1;
    out[n++] = 0x00;
    memcpy(out + n, root, SHOAL_CID_BYTES);
    n += SHOAL_CID_BYTES;
    out[n++] = 0x67;
    memcpy(out + n, "version", 7);
    n += 7;
    out[n++] = 0x01;
    return n;
}

int shoal_car_header(const uint8_t root[SHOAL_CID_BYTES], uint8_t *out, size_t cap) {
    uint8_t body[80], len[10];
    size_t n = header_body(root, body);
    size_t m = varint_put(len, n);
    if (cap < n + m || !out) return (int)(n + m);
    memcpy(out, len, m);
    memcpy(out + m, body, n);
    return (int)(n + m);
}

int shoal_car_frame(const uint8_t cid[SHOAL_CID_BYTES], size_t size, uint8_t out[48]) {
    size_t n = varint_put(out, (uint64_t)size + SHOAL_CID_BYTES);
    memcpy(out + n, cid, SHOAL_CID_BYTES);
    return (int)(n + SHOAL_CID_BYTES);
}

int shoal_car_read_header(const uint8_t *bytes, size_t size, uint8_t root[SHOAL_CID_BYTES],
                          size_t *offset) {
    size_t at = 0;
    uint64_t len;
    int v = varint_get(bytes, size, &at, &len);
    if (v == -2) return SHOAL_ETRUNCATED;
    if (v || len == 0 || len > 65536) return SHOAL_ECORRUPT;
    if (len > size - at) return SHOAL_ETRUNCATED;
    const uint8_t *h = bytes + at;
    shoal__cbor_limits lim = {4, 1024, 1, 1, 1};
    if (shoal__cbor_check(h, (size_t)len, &lim, NULL, 0)) return SHOAL_ECORRUPT;
    shoal__cbor_item map, roots, version;
    shoal__cbor_item_at(h, &map);
    const uint8_t *r = shoal__cbor_get(&map, "roots", 5), *ver = shoal__cbor_get(&map, "version", 7);
    if (!r || !ver || map.arg != 2) return SHOAL_ECORRUPT;
    shoal__cbor_item_at(ver, &version);
    if (version.major != SHOAL__CBOR_UINT || version.arg != 1) return SHOAL_EVERSION;
    shoal__cbor_item_at(r, &roots);
    if (roots.major != SHOAL__CBOR_ARRAY || roots.arg == 0) return SHOAL_ECORRUPT;
    uint8_t first[1][SHOAL_CID_BYTES];
    /* The first root: the array's first item, which must be a CID we know. */
    int links = shoal_dag_links(roots.data, (size_t)(shoal__cbor_skip(roots.data) - roots.data),
                                first, 1);
    if (links != 1) return links < 0 ? SHOAL_EUNSUPPORTED : SHOAL_ECORRUPT;
    memcpy(root, first[0], SHOAL_CID_BYTES);
    *offset = at + (size_t)len;
    return SHOAL_OK;
}

/* ----------------------------------------------------------------- blocks */

int shoal_car_next(const uint8_t *bytes, size_t size, size_t *offset,
                   uint8_t cid[SHOAL_CID_BYTES], const uint8_t **data, size_t *data_size) {
    size_t at = *offset;
    if (at >= size) return 0;
    uint64_t len;
    int v = varint_get(bytes, size, &at, &len);
    if (v == -2) return SHOAL_ETRUNCATED;
    if (v || len == 0) return SHOAL_ECORRUPT;
    if (len > size - at) return SHOAL_ETRUNCATED;
    size_t end = at + (size_t)len;
    /* The CID: version 1, codec, multihash (code, length, digest). */
    uint64_t version, codec, hash, hlen;
    if (len >= 2 && bytes[at] == 0x12 && bytes[at + 1] == 0x20) return SHOAL_EUNSUPPORTED; /* v0 */
    if (varint_get(bytes, end, &at, &version) || varint_get(bytes, end, &at, &codec) ||
        varint_get(bytes, end, &at, &hash) || varint_get(bytes, end, &at, &hlen))
        return SHOAL_ECORRUPT;
    if (version != 1 || hash != 0x12 || hlen != 32 ||
        (codec != SHOAL_CODEC_RAW && codec != SHOAL_CODEC_DAG_CBOR))
        return SHOAL_EUNSUPPORTED;
    if (end - at < 32) return SHOAL_ECORRUPT;
    cid[0] = 0x01;
    cid[1] = (uint8_t)codec;
    cid[2] = 0x12;
    cid[3] = 0x20;
    memcpy(cid + 4, bytes + at, 32);
    at += 32;
    if (!shoal_cid_verify(cid, bytes + at, end - at)) return SHOAL_ECHECKSUM;
    *data = bytes + at;
    *data_size = end - at;
    *offset = end;
    return 1;
}
