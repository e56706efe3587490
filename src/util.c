/*
 * util.c -- allocation accounting, the PRNG, hashing, the top-k heap and the
 * error strings: small pieces every index kind uses.
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

/* ------------------------------------------------------------ version */

#define SHOAL__STR2(x) #x
#define SHOAL__STR(x) SHOAL__STR2(x)

const char *shoal_version(void) {
    return SHOAL__STR(SHOAL_VERSION_MAJOR) "." SHOAL__STR(SHOAL_VERSION_MINOR) "." SHOAL__STR(
        SHOAL_VERSION_PATCH);
}

int shoal_version_number(void) { return SHOAL_VERSION_NUMBER; }

/* ------------------------------------------------------------- errors */

const char *shoal_strerror(int code) {
    switch (code) {
    case SHOAL_OK:
        return "ok";
#define SHOAL__ERROR_TEXT(name, code, js, parent, msg) \
    case code:                                         \
        return msg;
        SHOAL_ERROR_LIST(SHOAL__ERROR_TEXT)
#undef SHOAL__ERROR_TEXT
    default:
        return "unknown error";
    }
}

const char *shoal_error_name(int code) {
    switch (code) {
    case SHOAL_OK:
        return "SHOAL_OK";
#define SHOAL__ERROR_NAME(name, code, js, parent, msg) \
    case code:                                         \
        return "SHOAL_E" #name;
        SHOAL_ERROR_LIST(SHOAL__ERROR_NAME)
#undef SHOAL__ERROR_NAME
    default:
        return NULL;
    }
}

int shoal__fail(shoal_index *index, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(index->errmsg, sizeof index->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/* ---------------------------------------------------------- allocation */

#define SHOAL__HEADER 16 /* keeps 16-byte alignment for SIMD loads */

static void *default_alloc(void *ctx, size_t size) {
    (void)ctx;
    return malloc(size);
}

static void default_free(void *ctx, void *ptr) {
    (void)ctx;
    free(ptr);
}

void shoal__mem_init(shoal__mem *mem, const shoal_allocator *allocator) {
    if (allocator && allocator->alloc && allocator->free) {
        mem->allocator = *allocator;
    } else {
        mem->allocator.alloc = default_alloc;
        mem->allocator.free = default_free;
        mem->allocator.ctx = NULL;
    }
    mem->bytes = 0;
}

void *shoal__alloc(shoal__mem *mem, size_t size) {
    if (size > SIZE_MAX - SHOAL__HEADER) return NULL;
    unsigned char *p = mem->allocator.alloc(mem->allocator.ctx, size + SHOAL__HEADER);
    if (!p) return NULL;
    memcpy(p, &size, sizeof size);
    mem->bytes += size + SHOAL__HEADER;
    return p + SHOAL__HEADER;
}

void *shoal__calloc(shoal__mem *mem, size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = shoal__alloc(mem, count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

static size_t block_size(const void *ptr) {
    size_t size;
    memcpy(&size, (const unsigned char *)ptr - SHOAL__HEADER, sizeof size);
    return size;
}

void shoal__free(shoal__mem *mem, void *ptr) {
    if (!ptr) return;
    unsigned char *p = (unsigned char *)ptr - SHOAL__HEADER;
    mem->bytes -= block_size(ptr) + SHOAL__HEADER;
    mem->allocator.free(mem->allocator.ctx, p);
}

void *shoal__realloc(shoal__mem *mem, void *ptr, size_t size) {
    if (!ptr) return shoal__alloc(mem, size);
    void *fresh = shoal__alloc(mem, size);
    if (!fresh) return NULL;
    size_t old = block_size(ptr);
    memcpy(fresh, ptr, old < size ? old : size);
    shoal__free(mem, ptr);
    return fresh;
}

int shoal__grow(shoal__mem *mem, void **array, uint32_t *cap, uint32_t need, size_t elem) {
    if (need <= *cap) return SHOAL_OK;
    uint64_t fresh_cap = *cap ? *cap : 16;
    while (fresh_cap < need) fresh_cap *= 2;
    if (fresh_cap > UINT32_MAX) fresh_cap = UINT32_MAX;
    if (fresh_cap > SIZE_MAX / elem) return SHOAL_ENOMEM;
    void *fresh = shoal__realloc(mem, *array, (size_t)fresh_cap * elem);
    if (!fresh) return SHOAL_ENOMEM;
    *array = fresh;
    *cap = (uint32_t)fresh_cap;
    return SHOAL_OK;
}

/* ---------------------------------------------------------------- PRNG */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void shoal__rng_seed(shoal__rng *rng, uint64_t seed) {
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t shoal__rng_next(shoal__rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double shoal__rng_double(shoal__rng *rng) {
    return (double)(shoal__rng_next(rng) >> 11) * 0x1.0p-53;
}

/* ------------------------------------------------------------- hashing */

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

/* --------------------------------------------------------------- top-k */

static void sift_down(shoal__hit *h, uint32_t n, uint32_t i) {
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, worst = i;
        if (l < n && shoal__hit_worse(&h[l], &h[worst])) worst = l;
        if (r < n && shoal__hit_worse(&h[r], &h[worst])) worst = r;
        if (worst == i) return;
        shoal__hit t = h[i];
        h[i] = h[worst];
        h[worst] = t;
        i = worst;
    }
}

void shoal__topk_push(shoal__topk *topk, float distance, uint64_t seq, uint32_t label) {
    shoal__hit hit = {distance, label, seq};
    shoal__hit *h = topk->hits;
    if (topk->count < topk->k) {
        uint32_t i = topk->count++;
        while (i > 0) {
            uint32_t parent = (i - 1) / 2;
            if (!shoal__hit_worse(&hit, &h[parent])) break;
            h[i] = h[parent];
            i = parent;
        }
        h[i] = hit;
    } else if (shoal__hit_worse(&h[0], &hit)) {
        h[0] = hit;
        sift_down(h, topk->count, 0);
    }
}

void shoal__topk_sort(shoal__topk *topk) {
    /* Heapsort in place: repeatedly move the worst to the end. */
    for (uint32_t n = topk->count; n > 1; n--) {
        shoal__hit t = topk->hits[0];
        topk->hits[0] = topk->hits[n - 1];
        topk->hits[n - 1] = t;
        sift_down(topk->hits, n - 1, 0);
    }
}
