/*
 * hash.c -- the id hash (FNV-1a plus a final avalanche).
 */
#include "internal.h"

/* FNV-1a, then a final avalanche so linear probing sees well-mixed low bits. */
uint64_t shoal__hash_bytes(const char *bytes, uint32_t len) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < len; i++) {
        h ^= (unsigned char)bytes[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}
