/*
 * topk.c -- the bounded top-k heap every index kind collects results in.
 */
#include "internal.h"

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
