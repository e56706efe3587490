/*
 * internal.h -- the pieces every part of the core shares (allocation, the
 * PRNG, hashing, the top-k heap, prefetch) and hosts never see.  Internal
 * names carry a double underscore (shoal__), as in libuv.  The index handle
 * and its kinds are declared in index/kind.h.
 */
#ifndef SHOAL_INTERNAL_H
#define SHOAL_INTERNAL_H

#include <stdarg.h>
#include <string.h>

#include "kernels/kernels.h"
#include "shoal.h"

/* ------------------------------------------------------------- allocation */

/* Every allocation carries a 16-byte header holding its size, so the handle
 * knows its exact footprint and realloc needs no help from the allocator. */
typedef struct shoal__mem {
    shoal_allocator allocator;
    size_t bytes; /* currently allocated, headers included */
} shoal__mem;

void shoal__mem_init(shoal__mem *mem, const shoal_allocator *allocator);
void *shoal__alloc(shoal__mem *mem, size_t size);
void *shoal__calloc(shoal__mem *mem, size_t count, size_t size);
/* Like realloc, but on failure the old block is untouched and NULL returned. */
void *shoal__realloc(shoal__mem *mem, void *ptr, size_t size);
void shoal__free(shoal__mem *mem, void *ptr);
/* Moves the accounting of a block from one handle to another with the same
 * allocator (the block changes owner, not place). */
void shoal__mem_move(shoal__mem *from, shoal__mem *to, const void *ptr);
/* Grows *array (of elem-byte items, *cap of them) to hold at least need. */
int shoal__grow(shoal__mem *mem, void **array, uint32_t *cap, uint32_t need, size_t elem);

/* ------------------------------------------------------------------- PRNG */

/* xoshiro256** seeded through splitmix64: small, fast, the same everywhere. */
typedef struct shoal__rng {
    uint64_t s[4];
} shoal__rng;

void shoal__rng_seed(shoal__rng *rng, uint64_t seed);
uint64_t shoal__rng_next(shoal__rng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double shoal__rng_double(shoal__rng *rng);

/* ---------------------------------------------------------------- hashing */

/* FNV-1a with a final avalanche: well-mixed low bits for linear probing. */
uint64_t shoal__hash_bytes(const char *bytes, uint32_t len);

/* ------------------------------------------------------------------ top-k */

/* A bounded max-heap of (distance, seq, label): the worst kept result is on
 * top, so a candidate is rejected with one compare once the heap is full.
 * Ties on distance order by seq (insertion order), the earlier winning. */
typedef struct shoal__hit {
    float distance;
    uint32_t label;
    uint64_t seq;
} shoal__hit;

typedef struct shoal__topk {
    shoal__hit *hits;
    uint32_t k, count;
} shoal__topk;

static inline int shoal__hit_worse(const shoal__hit *a, const shoal__hit *b) {
    return a->distance > b->distance || (a->distance == b->distance && a->seq > b->seq);
}

void shoal__topk_push(shoal__topk *topk, float distance, uint64_t seq, uint32_t label);
/* Whether a push of (distance, seq) would keep it: lets a search run a
 * costly filter only on candidates that could enter the results. */
static inline int shoal__topk_accepts(const shoal__topk *topk, float distance, uint64_t seq) {
    if (topk->count < topk->k) return 1;
    const shoal__hit *worst = &topk->hits[0];
    return worst->distance > distance || (worst->distance == distance && worst->seq > seq);
}
/* Sorts the kept hits best first; the heap is unusable afterwards. */
void shoal__topk_sort(shoal__topk *topk);

/* --------------------------------------------------------------- prefetch */

#if defined(__wasm__)
/* Wasm has no prefetch instruction (__builtin_prefetch compiles to nothing),
 * but a plain load whose value is never waited for does the same job: the
 * CPU issues it and moves on, so the misses of several rows overlap instead
 * of being taken one by one inside a distance kernel. */
#define SHOAL__PREFETCH(p) ((void)*(const volatile char *)(p))
#elif defined(__GNUC__) || defined(__clang__)
#define SHOAL__PREFETCH(p) __builtin_prefetch(p)
#else
#define SHOAL__PREFETCH(p) ((void)(p))
#endif

/* -------------------------------------------------------------- messages */

/* vsnprintf into buf[size]; returns code, for `return shoal__msg(...)`. */
int shoal__msg(char *buf, size_t size, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
int shoal__vmsg(char *buf, size_t size, int code, const char *fmt, va_list ap);

#endif
