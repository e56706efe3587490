/*
 * hnsw.c -- approximate search over a hierarchical navigable small world
 * graph (Malkov & Yashunin, "Efficient and robust approximate nearest
 * neighbor search using Hierarchical Navigable Small World graphs", 2016).
 *
 * What it is
 *   Every record is a node.  A node draws a level L (P(L >= l) = M^-l, the
 *   paper's mL = 1/ln M) and takes part in levels 0..L.  Each level is a
 *   directed graph whose out-lists hold at most M labels (2*M on level 0).  A
 *   search descends greedily from the entry point (a node of the top level)
 *   to level 1, then runs a beam search of width ef on level 0.  An insert
 *   runs the same search with ef_construction, picks its neighbours with the
 *   paper's heuristic (Algorithm 4: a candidate is kept only if it is closer
 *   to the new node than to every neighbour kept before it, which favours
 *   links in different directions) and links back from each neighbour,
 *   re-running the heuristic on a neighbour whose list is full.
 *
 * Layout
 *   Level 0 is one row per label (rowchunks.h: in fixed-size chunks, so
 *   that it grows without a second copy): per label `stride` bytes holding
 *   the traversal form of the vector, then a uint32 count and 2*M uint32
 *   link slots.  Links are labels, never pointers (wasm32 and a future
 *   zero-copy segment both need that), and a node's links sit next
 *   to its vector, so an expansion touches few cache lines.  Upper levels
 *   are sparse: only a node with L > 0 owns an array of L lists of 1 + M
 *   uint32.  Nothing stored has a size_t or pointer-sized field, so the
 *   graph is the same natively and in wasm32.
 *
 * How it differs from the paper (and from hnswlib)
 *   - Levels are drawn without log(): the level is the number of successive
 *     thresholds 1/M, 1/M^2, ... (each computed by an exact IEEE division)
 *     that a uniform double falls below.  libm's log() may differ in the
 *     last bit between glibc and wasi-libc; a division does not, so the same
 *     seed gives the same levels everywhere.
 *   - A new node keeps M neighbours on every level (as hnswlib does); only
 *     the lists of older nodes grow to 2*M on level 0.  The next level is
 *     entered from the single closest node found, not the whole beam.
 *   - Ties between equal distances are broken by label in every heap and
 *     sort, so a build is a pure function of the seed and the insertion
 *     order (and of the kernel's float rounding).
 *   - keepPrunedConnections is used for inner product only (see
 *     select_neighbours); for l2 and cosine pruned candidates are dropped.
 *   - Deletes really remove the node (see below); hnswlib only tombstones.
 *   - Filtered search traverses through every node but collects only
 *     matches, and bypasses the graph when few records match (see below).
 *
 * Deletes: repair with in-neighbour lists
 *   A deleted node disappears from the graph at once, so results never
 *   contain it, its label can be reused at the next insert, and the graph
 *   check can demand that every link target is alive.  Each in-neighbour u
 *   that linked the deleted node d (on any level) is repaired: the heuristic
 *   re-selects u's list from u's remaining links plus d's out-links, which
 *   reconnects u to the region it reached through d (hnswlib's
 *   "repairConnectionsForUpdate" idea applied to deletion).
 *   Finding the in-neighbours needs either a scan of every list (O(N * 2M)
 *   per delete: a 90% delete of N records becomes quadratic) or stored
 *   reverse links.  We store them: per node a small array of the labels that
 *   link to it, one entry per (linking node, level).  It costs about 4 bytes
 *   per link plus a 24-byte header per node -- roughly 10-15% of an f32 index
 *   at dim 128, far less at dim 784 -- and makes a delete cost
 *   O(in-degree * 4M) distances, independent of N.
 *   Redis vector sets instead keep every link bidirectional, so in- and
 *   out-lists coincide and cost nothing extra; but that replaces the paper's
 *   directed pruning with a symmetric one and changes how inserts evict
 *   links, and we preferred to keep the well-studied insert unchanged.
 *
 *   Reachability: pruning (on insert and on repair) can drop the last path
 *   into a node, and hnswlib lets that happen.  We keep every node reachable
 *   from the entry point on level 0 by path preservation: each removed
 *   level-0 link u -> w queues the pair (u, w), a delete queues (u, x0) for
 *   each in-neighbour u of d and (x0, x) for each out-neighbour x (x0 being
 *   d's first), and a new entry point must reach the old one.  After the
 *   operation each pair is checked by a breadth-first search bounded to
 *   REACH_BUDGET nodes (usually one or two hops); for a pair that fails, a
 *   node the search did reach links `to` (one with room, else one that can
 *   drop a link whose target it still reaches).  Every path that used a
 *   removed link then has a detour, so reachability holds by induction.
 *   (A first version only kept every in-degree above zero; groups of nodes
 *   linking only each other were still cut off.)
 *   XXX: the repairs have a budget; past it (seen only with hundreds of
 *   copies of one vector, whose hub nodes then have in-degree ~200) a node
 *   can be left unreachable, and check() reports it.  Heavy duplicates also
 *   make the heuristic keep the lowest labels, so hubs form; deduplicating
 *   ties by something other than the label would help.
 *
 *   Deleting the entry point promotes a node of the highest remaining level
 *   (the lowest such label, found by a scan of the level bytes: O(N) but
 *   only on that rare delete).
 *
 * SQ8 quantizer
 *   Traversal runs on int8 codes: x[j] ~ center[j] + scale * code[j], code in
 *   [-127, 127], with one scale for every dimension (so the int8 kernels'
 *   plain sums apply) and a per-dimension center.  With one scale the
 *   distances follow exactly from the codes:
 *     l2:  |x - y|^2 = scale^2 * l2sq_i8(cx, cy)
 *     dot: x . y     = |center|^2 + scale * (oc(x) + oc(y)) + scale^2 * dot_i8
 *   where oc(x) = sum_j center[j] * cx[j] is stored next to the codes.  The
 *   query is quantized the same way for traversal; the final ef candidates
 *   are then reranked in float32 between the exact query and the decoded
 *   vectors (the asymmetric distance removes the query's quantization error).
 *   By default the float32 vectors are NOT kept: the goal is <= 0.35x the
 *   f32 index.  The price is that shoal_index_get returns the decoded
 *   vector (within scale/2 per component), that results are reranked on
 *   decoded vectors, and that recall stops at the codes' ceiling (0.996 on
 *   Fashion-MNIST).  At dim 784 a node costs ~940 bytes instead of ~3300.
 *
 * SQ8 with rerank copies (shoal_params.rerank > 0)
 *   The same graph and traversal, plus every record's float32 vector in
 *   its own rows (st->rows), apart from the level-0 block: a search walks
 *   the compact codes (a quarter of f32's cache lines per node, and the
 *   int8 kernels) and reads float32 only for the rerank depth's best
 *   candidates, which it re-scores exactly.  This is faiss's "HNSW-SQ +
 *   refine" idea inside one index.  Memory is ~1.25x the f32 index's, and
 *   it is the fastest HNSW here at every recall (docs/BENCHMARKS.md): on
 *   Fashion-MNIST the codes find the true neighbours as reliably as float32
 *   traversal does, so the same ef gives the same recall at about half the
 *   memory traffic.  The graph is identical to that of SQ8 without copies
 *   (the copies are never read by traversal or by the build), results are
 *   exact distances, and get() returns the vector given.  With copies there
 *   is no separate `train` array: before training the copies are the
 *   traversal rows.
 *   Since traversal never reads them, the copies can also stay in the
 *   segment (shoal_load_params.rerank_external; they are its last section,
 *   so a reader fetches the rest and the index is complete): a search is
 *   then two calls around the host's reads of the candidates' rows, with
 *   the memory of SQ8 alone and the results of the in-memory copies, bit
 *   for bit ("External rerank rows" in shoal.h; hnsw_candidates).
 *
 * Stopping a distance early (l2 only)
 *   Once the beam is full, most neighbours a search reaches cannot enter
 *   it, and a sum of non-negative terms that has reached the bound can only
 *   grow.  So float32 rows are summed in SHOAL_L2_CHECK runs and SQ8 codes
 *   in SHOAL_I8_CHECK runs (integer sums, the same in any grouping; the
 *   stop is a bound raised past every rounding, probe_distance_below), and
 *   a sum stops at the bound: the node is refused on the same comparison,
 *   after fewer of its cache lines.  The rerank does the same against the
 *   float after the kept k-th distance, so a stopped row is strictly worse
 *   and refused as the full one would be.  Results and graphs are the same
 *   bits wherever a sum stops; the WASI cross-build check stops after 16
 *   codes and 32 floats, the other builds never at its dimension, and all
 *   must agree.  (Measured on Fashion-MNIST: +3-9% natively at ef 48-96,
 *   within noise in wasm; the rerank's fetch SHOAL__RERANK_AHEAD rows
 *   ahead gave wasm +7-10%.)
 *   The scale is set once, deterministically: the first SQ8_TRAIN_COUNT
 *   records are kept and searched in float32; when the graph reaches that
 *   size, each dimension's min/max over the live records gives its center
 *   (the midpoint) and the widest range, widened by 1/8 for values the
 *   sample missed, gives the shared scale (range / 254) -- unless the
 *   values lie on a grid of their own that fits the codes (8-bit pixels,
 *   int8 embeddings: sq8.h), whose step becomes the scale and whose codes
 *   are then exact (Fashion-MNIST: the recall ceiling of exact search on
 *   the codes rises from 0.9964 to 0.9986, docs/BENCHMARKS.md).  The kept
 *   float32 vectors are then encoded and freed.  A fit whose reach says
 *   its codes could overflow float32 (sq8.h; vectors ~1e18 and up) is
 *   refused: the index stays as before training, searching in float32,
 *   and fits again whenever its size reaches a power of two -- a rule of
 *   the size alone, so a loaded index retries where the saved one would
 *   have.  (Failing
 *   the insert instead would fail valid records, and a collection's log
 *   apply must not fail on content.)  Later values outside a dimension's
 *   window are clamped.  The scale is never retrained: codes cannot be
 *   re-encoded without the originals.
 *   XXX: data whose later records drift far outside the first records'
 *   ranges loses precision to clamping; dimensions much narrower than the
 *   widest one get few distinct codes.
 *
 * Skipping a rerank row (SQ8)
 *   The rerank scores r, the copy or the decoded codes, but the beam ranked
 *   the code points x~ = center + scale * code, and the triangle inequality
 *   bounds the one by the other: |q - r| >= |q~ - x~| - |q - q~| - |r - x~|.
 *   The first term follows from the traversal's distance, the second is
 *   computed once per query, the third once per record (st->slack,
 *   resident: 12 bytes a record, set where the codes are written and at
 *   load; saved with the copies, so an index that leaves them in the
 *   segment has the same bound, load_slack).  For l2 that is the bound;
 *   for ip and cosine it bounds the dot product through q.r = (|q|^2 + |r|^2 - |q - r|^2) / 2, the norms kept
 *   in the slack too.  Candidates are reranked closest code first, and
 *   once k are kept, one whose bound, lowered past every rounding of the
 *   float32 sum, still exceeds the kept k-th distance is skipped unread:
 *   its row could only have been refused.  So results are the same bits as
 *   reranking every candidate; only fewer rows are fetched (on
 *   Fashion-MNIST, l2, about 12.6 of the 32 of a default rerank depth;
 *   docs/BENCHMARKS.md).  A stale or loose slack could only cost speed,
 *   never change an answer.
 *
 * Filtered search
 *   The filter is applied on level 0 only: every node can be traversed, but
 *   only matching nodes enter the result beam, and the search stops only
 *   once the beam holds ef matches (or the graph is exhausted), so k results
 *   come back whenever k reachable records match.  With a selective filter
 *   that walk grows like ef / selectivity, so first the number of matches m
 *   is estimated (counted exactly for a bitmap alone, else sampled at
 *   FILTER_SAMPLE evenly spaced labels) and when m <= ef or
 *   m^2 <= FILTER_EXACT_FACTOR * ef * N the matches are scanned exactly.
 *   (Graph cost ~ 20 * ef / s distances, scan cost ~ s * N; they cross near
 *   s^2 = 20 ef / N.  We use 8, a bit in the scan's disfavour, because a
 *   scan's cost is also paid in filter calls on every record.)
 *
 * Transactions
 *   Every add and delete is a transaction (kind.h): index.c inserts the new
 *   versions, then removes the replaced ones, then commits -- or aborts on
 *   the first failure, and the graph must then be exactly what it was.
 *   Inserts and repairs allocate (upper lists, reverse lists, the repair
 *   queue), so any step may fail.  Before the first change to a node's
 *   lists in a transaction, touch() copies them into a journal; nodes
 *   created in it need no copy, and the upper lists of nodes removed in it
 *   are kept until commit.  An abort writes the copies back, takes the
 *   created nodes out, and brings the reverse lists back by difference
 *   (see hnsw_abort).  That is exact because the reverse lists are a
 *   function of the links: each is kept sorted by label, and every change
 *   reserves what it needs (reverse entries, queue room, journal space)
 *   before it writes, so a failure never leaves a link without its reverse
 *   entry.  SQ8 training inside a transaction keeps the float32 rows until
 *   commit.  The journal costs the touched nodes' links -- little for
 *   inserts into an empty or large graph, up to the whole link structure
 *   for a huge batch into a medium one -- and is freed at commit when big.
 *   (The alternative, reserving everything an insert could need before the
 *   batch, is impossible: which reverse lists grow depends on the graph
 *   each earlier insert leaves.)  Sorted reverse lists also make a delete
 *   after a load repair exactly as it would have in the saved index.
 *
 * Invariants (verified by hnsw_check)
 *   - A label is in the graph iff it is alive; levels[label] is 0xff otherwise.
 *   - Link targets are alive, on the list's level, not the node itself, not
 *     repeated; counts are within M (upper) and 2*M (level 0).
 *   - rev[v] holds u once per level on which u links v, sorted by label.
 *   - The entry point is alive and on the top level; the top level is the
 *     highest level of any node; every live node is reachable from it on
 *     level 0 alone (upper-level links do not count).
 *
 * Thread safety
 *   None inside a handle: searches reuse scratch heaps and the visited set
 *   kept in the state, as the public contract allows (one thread per
 *   handle).  Distinct handles share nothing.  The one place with threads
 *   is an add's batched inserts (below): its worker threads only read the
 *   graph, each with its own scratch, and are joined before the call goes
 *   on; nothing they touch is global.
 */
#include <math.h>
#include <stdlib.h>

/* Threads for batched inserts' phase 1: POSIX hosts; the wasm and WASI
 * builds run the same phase in the calling thread (same bytes). */
#if !defined(__EMSCRIPTEN__) && !defined(__wasi__) && (defined(__unix__) || defined(__APPLE__))
#define SHOAL__THREADS 1
#include <pthread.h>
#else
#define SHOAL__THREADS 0
#endif

#include "index/persist.h"
#include "index/rowchunks.h"
#include "index/sq8.h"

#define HNSW_M_MAX 1024u
#define HNSW_LEVEL_MAX 30u
#define HNSW_EF_LOAD_MAX (1u << 20)
#define HNSW_NOT_IN_GRAPH 0xffu
#define SQ8_TRAIN_COUNT 1024u
#define FILTER_EXACT_FACTOR 8u
#define REACH_BUDGET 1024u
#define REACH_LINKERS 256u
/* Bytes of a neighbour's row fetched ahead in search_layer. */
#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES 1024u
#endif
#define REACH_SWAPPERS 4u
#define HNSW_BATCH_MAX 4096u
#define HNSW_THREADS_MAX 64u
/* search_layer with a fixed scratch that is too small (not an error code). */
#define HNSW_SCRATCH_FULL 1


/* ------------------------------------------------------------------ state */

typedef struct hnsw_item {
    float dist;
    uint32_t label;
} hnsw_item;

/* A vector in traversal form: float32, or int8 codes plus their oc term. */
typedef struct hnsw_probe {
    const float *f32;
    const int8_t *codes;
    float oc;
} hnsw_probe;

/* What one beam search needs: the visited set (visit[label] == epoch means
 * seen by the current pass; cap labels) and the two heaps.  A fixed
 * scratch never grows: a search that would need more stops with
 * HNSW_SCRATCH_FULL (worker threads must not allocate). */
typedef struct hnsw_scratch {
    uint32_t *visit;
    uint32_t epoch, visit_cap;
    hnsw_item *cand, *res;
    uint32_t cand_cap, cand_n, res_cap, res_n;
    int fixed;
} hnsw_scratch;

/* What the rerank's skip bound needs of a record (see "Skipping a rerank
 * row"): r is the vector the rerank scores (the copy, or the decoded
 * codes), x~ = center + scale * codes in exact arithmetic. */
typedef struct hnsw_slack {
    float err; /* >= |r - x~| */
    float rr;  /* >= |r|^2 (the dot-product metrics) */
    float xx;  /* <= |x~|^2 (the dot-product metrics) */
} hnsw_slack;

typedef struct hnsw_state {
    uint32_t M, M0, ef_construction, ef_search, dim;
    int sq8;

    /* Level 0: per label [traversal vector][count][M0 links], stride bytes
     * (rowchunks.h: in chunks; borrowed from a viewed segment). */
    shoal__rowchunks level0;
    size_t stride, link_offset;
    uint32_t cap; /* labels the per-label arrays hold */
    uint8_t *levels; /* top level of a node, or HNSW_NOT_IN_GRAPH */
    uint32_t **upper; /* NULL, or levels * (1 + M): level l at (l - 1) * (1 + M) */
    uint32_t **rev;   /* NULL, or [count][cap][labels linking here, once per level] */
    uint32_t entry, top, nodes;

    /* The search scratch of the calling thread (a batch's worker threads
     * have their own: see "Batched inserts"). */
    hnsw_scratch s;

    /* Scratch reused across calls. */
    hnsw_item *pool;
    uint32_t pool_cap;
    uint32_t *sel, sel_cap; /* insert: chosen neighbours per level */
    uint32_t *tmp, *old;    /* M0 + 1 each */
    uint32_t *work, work_cap, work_n; /* pairs (from, to) */
    uint32_t *queue;                  /* REACH_BUDGET */

    /* Batched inserts (see "Batched inserts"): hnsw.build_batch, the queue
     * of stored but unlinked nodes, and per queued node its phase-1
     * candidates (q_items from q_off[i], level l at l * ef_construction;
     * q_count[q_coff[i] + l] of them) or q_redo[i] when its fixed scratch
     * overflowed.  One fixed scratch per thread. */
    uint32_t batch, q_n;
    uint32_t *q_labels, *q_levels, *q_coff, *q_count;
    uint8_t *q_redo;
    size_t *q_off;
    hnsw_item *q_items;
    size_t q_items_cap;
    uint32_t q_count_cap;
    hnsw_scratch *workers;
    uint32_t n_workers;

    /* The open transaction (see "Transactions" above). */
    int tx;
    uint32_t tx_entry, tx_top, tx_nodes;
    int tx_trained;
    uint8_t *touched;    /* bit per label: journaled or created in the transaction */
    uint32_t *log;       /* journal entries (touch()) */
    size_t log_n, log_cap;
    uint32_t *created, created_n, created_cap; /* labels inserted in it */
    struct hnsw_kept {
        uint32_t label;
        uint32_t *upper;
    } *kept;             /* upper lists of nodes removed in it, freed at commit */
    uint32_t kept_n, kept_cap;

    /* SQ8 */
    int trained;
    float *train; /* before training, without copies: cap * dim floats */
    /* Rerank copies (shoal_params.rerank > 0): every record's float32
     * vector, apart from the level-0 rows so that traversal never reads
     * them; borrowed from a viewed segment.  With copies there is no
     * `train`: the rows serve training too. */
    int copies;
    uint32_t rerank; /* the default rerank depth */
    shoal__rowchunks rows;
    /* External rerank rows (index->rows_external): the copies stay in the
     * segment, `rows` is empty, and row label is the 4 * dim bytes at
     * rows_at + label * 4 * dim (the vectors section, stored raw). */
    uint64_t rows_at;
    float scale, scale_sq, center_sq;
    float *center;   /* dim */
    hnsw_slack *slack; /* per label, once trained (see "Skipping a rerank row") */
    int8_t *qcodes;  /* dim: the query's codes */
    float *decoded;  /* dim */
} hnsw_state;

static hnsw_state *state_of(const shoal_index *index) { return index->kind_state; }

static inline unsigned char *node_block(const hnsw_state *st, uint32_t label) {
    return shoal__row(&st->level0, label);
}

/* [count, link...] of label on level. */
static inline uint32_t *links_at(const hnsw_state *st, uint32_t label, uint32_t level) {
    if (level == 0) return (uint32_t *)(void *)(node_block(st, label) + st->link_offset);
    return st->upper[label] + (size_t)(level - 1) * (st->M + 1);
}

static inline uint32_t max_links(const hnsw_state *st, uint32_t level) {
    return level ? st->M : st->M0;
}

static inline int in_graph(const hnsw_state *st, uint32_t label) {
    return st->levels[label] != HNSW_NOT_IN_GRAPH;
}

static inline int traverse_i8(const hnsw_state *st) { return st->sq8 && st->trained; }

/* The float32 vector of a node: while traversal is float32, and always
 * with rerank copies. */
static inline const float *f32_row(const hnsw_state *st, uint32_t label) {
    if (!st->sq8) return (const float *)(const void *)node_block(st, label);
    if (st->copies) return (const float *)(const void *)shoal__row(&st->rows, label);
    return st->train + (size_t)label * st->dim;
}

static inline const int8_t *codes_of(const hnsw_state *st, uint32_t label) {
    return (const int8_t *)(node_block(st, label) + sizeof(float));
}

static inline float oc_of(const hnsw_state *st, uint32_t label) {
    float oc;
    memcpy(&oc, node_block(st, label), sizeof oc);
    return oc;
}

/* ------------------------------------------------------------- distances */

static hnsw_probe probe_of_node(const hnsw_state *st, uint32_t label) {
    hnsw_probe p = {NULL, NULL, 0.0f};
    if (traverse_i8(st)) {
        p.codes = codes_of(st, label);
        p.oc = oc_of(st, label);
    } else {
        p.f32 = f32_row(st, label);
    }
    return p;
}

static inline float probe_distance(const shoal_index *index, const hnsw_state *st,
                                   const hnsw_probe *p, uint32_t label) {
    if (p->f32) return shoal__distance(index, p->f32, f32_row(st, label));
    const shoal__kernels *k = index->kernels;
    if (index->params.metric == SHOAL_METRIC_L2)
        return st->scale_sq * (float)k->l2sq_i8(p->codes, codes_of(st, label), st->dim);
    float cross = st->scale * (p->oc + oc_of(st, label));
    float dot = st->center_sq + cross;
    dot += st->scale_sq * (float)k->dot_i8(p->codes, codes_of(st, label), st->dim);
    return index->params.metric == SHOAL_METRIC_IP ? -dot : 1.0f - dot;
}

/* ------------------------------------------------------------------- SQ8 */

/* probe_distance when it is below bound; otherwise some value >= bound.
 * Float32 L2 stops summing once a partial sum reaches the bound (the
 * kernels' l2sq_f32_below): a node that cannot enter the beam is rejected
 * on the same comparison, but after fewer of its cache lines. */
static inline float probe_distance_below(const shoal_index *index, const hnsw_state *st,
                                         const hnsw_probe *p, uint32_t label, float bound) {
    if (index->params.metric != SHOAL_METRIC_L2 || !(bound < INFINITY))
        return probe_distance(index, st, p, label);
    if (p->f32) return index->kernels->l2sq_f32_below(p->f32, f32_row(st, label), st->dim, bound);
    /* SQ8: the distance is scale_sq * (float)S for the integer sum S of
     * squared code differences, so S is summed in runs of SHOAL_I8_CHECK codes
     * (integer sums: the same S in any grouping) and the walk stops once S
     * reaches a T whose distance is surely >= bound.  T is bound / scale_sq
     * raised by 1e-6, which covers the rounding of (float)S (2^-24) and of
     * the product: any S >= T gives scale_sq * (float)S > bound exactly,
     * and a float product rounded to nearest cannot fall below the float
     * bound it exceeds. */
    double t = (double)bound / (double)st->scale_sq * (1.0 + 1e-6);
    if (!(t < 2147483647.0)) return probe_distance(index, st, p, label);
    int64_t stop = (int64_t)t + 1, sum = 0;
    const int8_t *a = p->codes, *b = codes_of(st, label);
    for (uint32_t at = 0; at < st->dim; at += SHOAL_I8_CHECK) {
        uint32_t run = st->dim - at < SHOAL_I8_CHECK ? st->dim - at : SHOAL_I8_CHECK;
        sum += index->kernels->l2sq_i8(a + at, b + at, run);
        if (sum >= stop) break;
    }
    return st->scale_sq * (float)(int32_t)sum;
}

/* Encodes v to codes; returns its oc term (summed in double, in order). */
static float sq8_encode(const hnsw_state *st, const float *v, int8_t *codes) {
    shoal__sq8_encode(v, st->center, st->scale, st->dim, codes);
    double oc = 0.0;
    for (uint32_t j = 0; j < st->dim; j++) oc += (double)st->center[j] * codes[j];
    return (float)oc;
}

static void sq8_decode(const hnsw_state *st, const int8_t *codes, float *out) {
    shoal__sq8_decode(codes, st->center, st->scale, st->dim, out);
}

/* The slack of r against codes, with the float32 kernels (a few SIMD sums
 * instead of a scalar pass in double: this runs for every record at load).
 * x^ = the float decode of the codes (into st->decoded) is within
 * 2^-23 (|x^| + |center|) of x~ (two roundings a component, each within
 * 2^-24 of a magnitude below |x^_j| + |center_j|, with room to spare); each
 * kernel sum of non-negative terms is within g of its value, so
 *   err = sqrt(|r - x^|^2 (1 + g)) + 2^-22 (|x^| + |center|) >= |r - x~|,
 *   rr = |r|^2 (1 + g) >= |r|^2,
 *   xx = (sqrt(|x^|^2 (1 - g)) - 2^-22 (|x^| + |center|))^2 <= |x~|^2,
 * each then loosened by 1e-6 for its own rounding.  r NULL: the rerank
 * scores x^ itself (no copies).  Never part of a result. */
static hnsw_slack sq8_slack(const shoal_index *index, hnsw_state *st, const int8_t *codes,
                            const float *r) {
    const shoal__kernels *k = index->kernels;
    uint32_t dim = st->dim;
    sq8_decode(st, codes, st->decoded);
    double g = ((double)dim + 16.0) * 0x1p-24;
    double x2 = k->dot_f32(st->decoded, st->decoded, dim);
    double e2 = r ? k->l2sq_f32(r, st->decoded, dim) : 0.0, r2 = r ? k->dot_f32(r, r, dim) : x2;
    double gap = 0x1p-22 * (sqrt(x2 * (1.0 + g)) + sqrt((double)st->center_sq * (1.0 + 1e-6)));
    double lo = sqrt(x2 * (1.0 - g)) - gap;
    hnsw_slack out = {(float)((sqrt(e2 * (1.0 + g)) + gap) * (1.0 + 1e-6)),
                      (float)(r2 * (1.0 + g) * (1.0 + 1e-6)),
                      (float)(lo > 0.0 ? lo * lo * (1.0 - 1e-6) : 0.0)};
    return out;
}

/* The slack of a stored node whose row the index does not hold (external
 * rerank rows) in a segment without an hnsw slack section (load_slack
 * takes the row's own from one), bounded from its codes alone.  A code c
 * with |c| < 127 was not clamped: c = floor(fl(x + 0.5)) with x = fl(fl(v - center) / scale)
 * within 2^-16 of (v - center) / scale (two roundings of a value below 128)
 * and the add's rounding within 2^-17, so |v - x~| <= scale (0.5 + 2^-15)
 * in each dimension.  A code at +-127 may have been clamped: nothing bounds
 * that record's error, and its slack is infinite (its row is never
 * skipped).  The bound holds for rows encoded by this quantizer, which is
 * how every index writes them (insert, and the refit that re-encodes all
 * rows).  A hostile segment that pairs codes with other rows can make a
 * host skip a row it should have read: its answers are then records at
 * their exact distances, but not always those a whole load gives. */
static hnsw_slack sq8_slack_unread(const shoal_index *index, hnsw_state *st,
                                   const int8_t *codes) {
    hnsw_slack out = sq8_slack(index, st, codes, NULL); /* xx, and err = |x^ - x~| */
    for (uint32_t j = 0; j < st->dim; j++)
        if (codes[j] == SHOAL__SQ8_CODE_MAX || codes[j] == -SHOAL__SQ8_CODE_MAX) {
            out.err = out.rr = INFINITY;
            return out;
        }
    double err = (double)st->scale * (0.5 + 0x1p-15) * sqrt((double)st->dim) * (1.0 + 1e-6);
    /* |r| <= |x~| + err, and |x~| <= |x^| + |x^ - x~| <= sqrt(rr) + err(x^) */
    double norm = sqrt((double)out.rr) + out.err + err;
    out.err = (float)(err * (1.0 + 1e-6));
    out.rr = (float)(norm * norm * (1.0 + 1e-5));
    return out;
}

/* The slack of a stored node, against the row its rerank reads. */
static void sq8_set_slack(const shoal_index *index, hnsw_state *st, uint32_t label) {
    const int8_t *codes = codes_of(st, label);
    st->slack[label] = index->rows_external
                           ? sq8_slack_unread(index, st, codes)
                           : sq8_slack(index, st, codes, st->copies ? f32_row(st, label) : NULL);
}

static void sq8_store(const shoal_index *index, hnsw_state *st, uint32_t label, const float *v) {
    unsigned char *b = node_block(st, label);
    float oc = sq8_encode(st, v, (int8_t *)(b + sizeof(float)));
    memcpy(b, &oc, sizeof oc);
    sq8_set_slack(index, st, label);
}

/* The float32 row of a node before training, for shoal__sq8_fit. */
static const float *train_row(const void *ctx, uint32_t label) {
    const hnsw_state *st = ctx;
    return in_graph(st, label) ? f32_row(st, label) : NULL;
}

/* Sets center and scale from the live records' float32 vectors, encodes
 * them and frees the float32 rows (unless they are rerank copies).
 * Deterministic: min, max and sums are taken in label order in double.
 * Trains nothing if the fit's codes could reach past float32 (sq8.h; see
 * "SQ8 quantizer" above). */
static void sq8_train(shoal_index *index, hnsw_state *st) {
    uint32_t bound = index->label_bound;
    double reach = shoal__sq8_fit(st->dim, bound, train_row, st, st->center, &st->scale);
    if (!(reach < SHOAL__SQ8_REACH_MAX)) return;
    double center_sq = 0.0;
    for (uint32_t j = 0; j < st->dim; j++) center_sq += (double)st->center[j] * st->center[j];
    st->scale_sq = st->scale * st->scale;
    st->center_sq = (float)center_sq;
    for (uint32_t label = 0; label < bound; label++)
        if (in_graph(st, label)) sq8_store(index, st, label, f32_row(st, label));
    /* Inside a transaction the rows are kept until commit: an abort goes
     * back to float32 traversal. */
    if (!st->tx) {
        shoal__free(&index->mem, st->train);
        st->train = NULL;
    }
    st->trained = 1;
}

/* Whether an insert that brought the graph to `nodes` fits the quantizer:
 * at SQ8_TRAIN_COUNT, and again at each power of two above it while a fit
 * is refused. */
static int sq8_fit_due(const hnsw_state *st) {
    return st->sq8 && !st->trained && st->nodes >= SQ8_TRAIN_COUNT &&
           (st->nodes & (st->nodes - 1)) == 0;
}

/* ----------------------------------------------------------------- heaps */

static inline int item_before(hnsw_item a, hnsw_item b) {
    return a.dist < b.dist || (a.dist == b.dist && a.label < b.label);
}

/* Min-heap (closest on top): the candidates still to expand. */
static void minheap_push(hnsw_item *h, uint32_t *n, hnsw_item it) {
    uint32_t i = (*n)++;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!item_before(it, h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = it;
}

static void minheap_pop(hnsw_item *h, uint32_t *n) {
    hnsw_item last = h[--(*n)];
    uint32_t i = 0, count = *n;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, best = i;
        hnsw_item b = last;
        if (l < count && item_before(h[l], b)) best = l, b = h[l];
        if (r < count && item_before(h[r], b)) best = r;
        if (best == i) break;
        h[i] = h[best];
        i = best;
    }
    if (count) h[i] = last;
}

/* Max-heap (farthest on top): the best results so far. */
static void maxheap_push(hnsw_item *h, uint32_t *n, hnsw_item it) {
    uint32_t i = (*n)++;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!item_before(h[parent], it)) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = it;
}

static void maxheap_pop(hnsw_item *h, uint32_t *n) {
    hnsw_item last = h[--(*n)];
    uint32_t i = 0, count = *n;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, worst = i;
        hnsw_item w = last;
        if (l < count && item_before(w, h[l])) worst = l, w = h[l];
        if (r < count && item_before(w, h[r])) worst = r;
        if (worst == i) break;
        h[i] = h[worst];
        i = worst;
    }
    if (count) h[i] = last;
}

static int cmp_items(const void *a, const void *b) {
    hnsw_item x = *(const hnsw_item *)a, y = *(const hnsw_item *)b;
    return item_before(x, y) ? -1 : item_before(y, x) ? 1 : 0;
}

static int grow_items(shoal_index *index, hnsw_item **items, uint32_t *cap, uint32_t need) {
    return shoal__grow(&index->mem, (void **)items, cap, need, sizeof **items);
}

/* Makes room for need items in one of sc's heaps: grows it, or for a fixed
 * scratch says HNSW_SCRATCH_FULL. */
static int scratch_room(shoal_index *index, hnsw_scratch *sc, hnsw_item **items, uint32_t *cap,
                        uint32_t need) {
    if (need <= *cap) return SHOAL_OK;
    if (sc->fixed) return HNSW_SCRATCH_FULL;
    return grow_items(index, items, cap, need) ? SHOAL_ENOMEM : SHOAL_OK;
}

/* Empties sc's result heap into out (room for res_n), closest first;
 * returns the count. */
static uint32_t drain_into(hnsw_scratch *sc, hnsw_item *out) {
    uint32_t n = sc->res_n;
    for (uint32_t i = n; i-- > 0;) {
        out[i] = sc->res[0];
        maxheap_pop(sc->res, &sc->res_n);
    }
    return n;
}

/* Empties the result heap into pool, closest first.  Returns the count. */
static int drain_sorted(shoal_index *index, hnsw_state *st) {
    if (grow_items(index, &st->pool, &st->pool_cap, st->s.res_n)) return SHOAL_ENOMEM;
    return (int)drain_into(&st->s, st->pool);
}

/* The next pass of sc's visited set (cap labels). */
static uint32_t next_epoch(hnsw_scratch *sc, uint32_t cap) {
    if (++sc->epoch == 0) {
        memset(sc->visit, 0, (size_t)cap * sizeof *sc->visit);
        sc->epoch = 1;
    }
    return sc->epoch;
}

/* ---------------------------------------------------------- search layer */

static uint32_t random_level(shoal_index *index, const hnsw_state *st) {
    double u = shoal__rng_double(&index->rng);
    double threshold = 1.0 / st->M;
    uint32_t level = 0;
    while (u < threshold && level < HNSW_LEVEL_MAX) {
        level++;
        threshold /= st->M;
    }
    return level;
}

static inline const void *traversal_row(const hnsw_state *st, uint32_t label) {
    return st->sq8 && !st->trained ? (const void *)f32_row(st, label)
                                   : (const void *)node_block(st, label);
}

/* Greedy walk (beam width 1) from ep down the levels above `stop`. */
static uint32_t greedy_descent(const shoal_index *index, const hnsw_state *st,
                               const hnsw_probe *p, uint32_t ep, uint32_t from, uint32_t stop) {
    float best = probe_distance(index, st, p, ep);
    for (uint32_t level = from; level > stop; level--) {
        int moved = 1;
        while (moved) {
            moved = 0;
            const uint32_t *links = links_at(st, ep, level);
            for (uint32_t i = 1; i <= links[0]; i++) {
                float d = probe_distance(index, st, p, links[i]);
                if (d < best || (d == best && links[i] < ep)) {
                    best = d;
                    ep = links[i];
                    moved = 1;
                }
            }
        }
    }
    return ep;
}

/*
 * Beam search on one level from ep, leaving up to ef results in sc->res (a
 * max-heap).  Every reached node is expanded, but only nodes that pass the
 * filter and are not `exclude` become results; the walk stops when the
 * closest unexpanded candidate is farther than the ef-th result.
 */
static int search_layer(shoal_index *index, hnsw_state *st, hnsw_scratch *sc, const hnsw_probe *p,
                        uint32_t ep, uint32_t ef, uint32_t level,
                        const shoal_search_params *filter, uint32_t exclude) {
    uint32_t epoch = next_epoch(sc, sc->visit_cap);
    sc->cand_n = sc->res_n = 0;
    int rc;
    if ((rc = scratch_room(index, sc, &sc->res, &sc->res_cap, ef + 1)) ||
        (rc = scratch_room(index, sc, &sc->cand, &sc->cand_cap, st->M0 + 1)))
        return rc;

    hnsw_item first = {probe_distance(index, st, p, ep), ep};
    sc->visit[ep] = epoch;
    minheap_push(sc->cand, &sc->cand_n, first);
    if (ep != exclude && (!filter || shoal__allowed(index, filter, ep)))
        maxheap_push(sc->res, &sc->res_n, first);

    while (sc->cand_n) {
        hnsw_item c = sc->cand[0];
        if (sc->res_n >= ef && c.dist > sc->res[0].dist) break;
        minheap_pop(sc->cand, &sc->cand_n);
        const uint32_t *links = links_at(st, c.label, level);
        uint32_t n = links[0];
        /* Fetch the first PREFETCH_BYTES of each unvisited neighbour's row
         * before the first distance, so their misses overlap; prefetching
         * only the first line left a 784-d row (49 lines) to be missed one
         * after another inside the kernel (measured on Fashion-MNIST 20k:
         * wasm SIMD 197 -> 118 us/query at ef 24 when every line was
         * prefetched).  Since the L2 kernel stops early on rows that cannot
         * enter the beam (probe_distance_below), fetching whole rows wastes
         * bandwidth on lines never read: 16 lines, with the hardware
         * prefetcher streaming the rest, measured +8% (ef 24) and +11%
         * (ef 64) over whole rows natively (Fashion-MNIST 60k, Zen 3). */
        for (uint32_t i = 1; i <= n; i++) SHOAL__PREFETCH(&sc->visit[links[i]]);
        size_t ahead = st->link_offset < PREFETCH_BYTES ? st->link_offset : PREFETCH_BYTES;
        for (uint32_t i = 1; i <= n; i++) {
            if (sc->visit[links[i]] == epoch) continue;
            const char *row = traversal_row(st, links[i]);
            for (size_t at = 0; at < ahead; at += 64) SHOAL__PREFETCH(row + at);
        }
        /* Room for every push this expansion can make, so the loop below
         * never allocates. */
        if ((rc = scratch_room(index, sc, &sc->cand, &sc->cand_cap, sc->cand_n + n))) return rc;
        for (uint32_t i = 1; i <= n; i++) {
            uint32_t v = links[i];
            if (sc->visit[v] == epoch) continue;
            sc->visit[v] = epoch;
            float bound = sc->res_n < ef ? INFINITY : sc->res[0].dist;
            float d = probe_distance_below(index, st, p, v, bound);
            /* (res_n < ef first: a distance that overflowed to +inf still
             * fills a beam that is not full, as before.) */
            if (sc->res_n < ef || d < bound) {
                hnsw_item it = {d, v};
                minheap_push(sc->cand, &sc->cand_n, it);
                if (v != exclude && (!filter || shoal__allowed(index, filter, v))) {
                    maxheap_push(sc->res, &sc->res_n, it);
                    if (sc->res_n > ef) maxheap_pop(sc->res, &sc->res_n);
                }
            }
        }
    }
    return SHOAL_OK;
}

/*
 * The heuristic of Algorithm 4: walks cands (sorted, closest to the base
 * first) and keeps a candidate only if no kept one is closer to it than the
 * base is.  Writes up to m labels to out; returns their count.
 */
static uint32_t select_neighbours(const shoal_index *index, const hnsw_state *st,
                                  const hnsw_item *cands, uint32_t n, uint32_t m, uint32_t *out) {
    uint32_t count = 0;
    for (uint32_t i = 0; i < n && count < m; i++) {
        hnsw_probe pc = probe_of_node(st, cands[i].label);
        int keep = 1;
        for (uint32_t j = 0; j < count && keep; j++)
            if (probe_distance(index, st, &pc, out[j]) < cands[i].dist) keep = 0;
        if (keep) out[count++] = cands[i].label;
    }
    /* keepPrunedConnections, for inner product only: there a big-norm
     * neighbour "dominates" most candidates (c.s > c.q), the heuristic
     * leaves lists short, and recall@10 at ef 64 on clustered dim-100 data
     * was 0.78; filling the list with the pruned candidates gives 0.94.
     * For l2 and cosine it costs memory and gains nothing. */
    if (index->params.metric == SHOAL_METRIC_IP)
        for (uint32_t i = 0; i < n && count < m; i++) {
            int chosen = 0;
            for (uint32_t j = 0; j < count && !chosen; j++) chosen = out[j] == cands[i].label;
            if (!chosen) out[count++] = cands[i].label;
        }
    return count;
}

/* --------------------------------------------------------- transactions */

static inline int is_touched(const hnsw_state *st, uint32_t label) {
    return (st->touched[label >> 3] >> (label & 7)) & 1;
}
static inline void set_touched(hnsw_state *st, uint32_t label) {
    st->touched[label >> 3] |= (uint8_t)(1u << (label & 7));
}

/* Journals u's lists before their first change in the transaction (a node
 * created in it needs no snapshot).  Journal entry: u, its level
 * (HNSW_NOT_IN_GRAPH if not in the graph), then per level l <= level the
 * count and the links. */
static int touch(shoal_index *index, hnsw_state *st, uint32_t u) {
    if (!st->tx || is_touched(st, u)) return SHOAL_OK;
    uint32_t L = st->levels[u];
    size_t words = 2;
    if (L != HNSW_NOT_IN_GRAPH)
        for (uint32_t l = 0; l <= L; l++) words += 1 + links_at(st, u, l)[0];
    if (st->log_n + words > st->log_cap) {
        size_t cap = st->log_cap ? st->log_cap : 1024;
        while (cap < st->log_n + words) cap *= 2;
        if (cap > SIZE_MAX / sizeof *st->log) return SHOAL_ENOMEM;
        uint32_t *log = shoal__realloc(&index->mem, st->log, cap * sizeof *log);
        if (!log) return SHOAL_ENOMEM;
        st->log = log;
        st->log_cap = cap;
    }
    uint32_t *p = st->log + st->log_n;
    *p++ = u;
    *p++ = L;
    if (L != HNSW_NOT_IN_GRAPH)
        for (uint32_t l = 0; l <= L; l++) {
            const uint32_t *list = links_at(st, u, l);
            memcpy(p, list, (1 + (size_t)list[0]) * sizeof *p);
            p += 1 + list[0];
        }
    st->log_n += words;
    set_touched(st, u);
    return SHOAL_OK;
}

static int hnsw_begin(shoal_index *index) {
    hnsw_state *st = state_of(index);
    st->tx = 1;
    st->tx_entry = st->entry;
    st->tx_top = st->top;
    st->tx_nodes = st->nodes;
    st->tx_trained = st->trained;
    st->log_n = st->created_n = st->kept_n = 0;
    st->q_n = 0;
    return SHOAL_OK;
}

/* Forgets the journal: marks cleared, kept upper arrays freed. */
static void end_transaction(shoal_index *index, hnsw_state *st, int committed) {
    for (size_t at = 0; at < st->log_n;) {
        uint32_t u = st->log[at], L = st->log[at + 1];
        st->touched[u >> 3] &= (uint8_t) ~(1u << (u & 7));
        at += 2;
        if (L != HNSW_NOT_IN_GRAPH)
            for (uint32_t l = 0; l <= L; l++) at += 1 + st->log[at];
    }
    for (uint32_t i = 0; i < st->created_n; i++) {
        uint32_t c = st->created[i];
        st->touched[c >> 3] &= (uint8_t) ~(1u << (c & 7));
    }
    for (uint32_t i = 0; i < st->kept_n; i++)
        if (committed) shoal__free(&index->mem, st->kept[i].upper);
    if (committed && st->trained && st->train) { /* trained in this transaction */
        shoal__free(&index->mem, st->train);
        st->train = NULL;
    }
    st->tx = 0;
    st->log_n = st->created_n = st->kept_n = 0;
    /* A big journal is not kept between calls. */
    if (st->log_cap > 65536) {
        shoal__free(&index->mem, st->log);
        st->log = NULL;
        st->log_cap = 0;
    }
}

static void hnsw_commit(shoal_index *index) { end_transaction(index, state_of(index), 1); }

/* Whether list[1..list[0]] holds label. */
static int list_contains(const uint32_t *list, uint32_t label);
static void rev_insert(hnsw_state *st, uint32_t u, uint32_t v);
static void rev_remove(hnsw_state *st, uint32_t u, uint32_t v);

/* The journal entry at log[at]: its snapshot list for level l, or NULL. */
static const uint32_t *snapshot_list(const uint32_t *entry, uint32_t l) {
    uint32_t L = entry[1];
    if (L == HNSW_NOT_IN_GRAPH || l > L) return NULL;
    const uint32_t *p = entry + 2;
    for (uint32_t i = 0; i < l; i++) p += 1 + p[0];
    return p;
}

static size_t entry_words(const uint32_t *entry) {
    size_t words = 2;
    if (entry[1] != HNSW_NOT_IN_GRAPH)
        for (uint32_t l = 0; l <= entry[1]; l++) words += 1 + entry[words];
    return words;
}

static const uint32_t empty_list[1] = {0};

/* u's current list on level l, or an empty one. */
static const uint32_t *current_list(const hnsw_state *st, uint32_t u, uint32_t l) {
    if (!in_graph(st, u) || l > st->levels[u]) return empty_list;
    return links_at(st, u, l);
}

/*
 * Puts the graph back as it was at begin.  The reverse lists always
 * describe the current links exactly (every change updates them before it
 * can fail), so they are brought back by a difference: first every
 * reverse entry of a link that exists now but not in the snapshot is
 * dropped, then every one of a snapshot link that is missing now is added
 * -- in that order no reverse list ever holds more entries than it did at
 * begin, so the capacity it had then suffices.  Then the lists are
 * written back and the nodes created in the transaction taken out.
 */
static void hnsw_abort(shoal_index *index, const uint32_t *inserted, uint32_t n) {
    (void)inserted;
    (void)n;
    hnsw_state *st = state_of(index);
    st->q_n = 0; /* queued nodes are created ones: taken out below */
    if (!st->tx) return;
    /* Drop reverse entries of links that are new. */
    for (size_t at = 0; at < st->log_n; at += entry_words(st->log + at)) {
        const uint32_t *e = st->log + at;
        uint32_t u = e[0];
        uint32_t top = in_graph(st, u) ? st->levels[u] : 0;
        for (uint32_t l = 0; in_graph(st, u) && l <= top; l++) {
            const uint32_t *now = links_at(st, u, l), *then = snapshot_list(e, l);
            for (uint32_t i = 1; i <= now[0]; i++)
                if (!then || !list_contains(then, now[i])) rev_remove(st, u, now[i]);
        }
    }
    for (uint32_t i = 0; i < st->created_n; i++) {
        uint32_t c = st->created[i];
        for (uint32_t l = 0; in_graph(st, c) && l <= st->levels[c]; l++) {
            const uint32_t *now = links_at(st, c, l);
            for (uint32_t j = 1; j <= now[0]; j++) rev_remove(st, c, now[j]);
        }
    }
    /* Add reverse entries of snapshot links that are gone. */
    for (size_t at = 0; at < st->log_n; at += entry_words(st->log + at)) {
        const uint32_t *e = st->log + at;
        uint32_t u = e[0];
        for (uint32_t l = 0; e[1] != HNSW_NOT_IN_GRAPH && l <= e[1]; l++) {
            const uint32_t *then = snapshot_list(e, l), *now = current_list(st, u, l);
            for (uint32_t i = 1; i <= then[0]; i++)
                if (!list_contains(now, then[i])) rev_insert(st, u, then[i]);
        }
    }
    /* Upper arrays of nodes removed in the transaction come back. */
    for (uint32_t i = 0; i < st->kept_n; i++) st->upper[st->kept[i].label] = st->kept[i].upper;
    st->kept_n = 0;
    /* The created nodes leave the graph. */
    for (uint32_t i = 0; i < st->created_n; i++) {
        uint32_t c = st->created[i];
        shoal__free(&index->mem, st->upper[c]);
        st->upper[c] = NULL;
        links_at(st, c, 0)[0] = 0;
        if (st->rev[c]) st->rev[c][0] = 0;
        st->levels[c] = HNSW_NOT_IN_GRAPH;
    }
    /* The snapshots go back in place. */
    for (size_t at = 0; at < st->log_n; at += entry_words(st->log + at)) {
        const uint32_t *e = st->log + at;
        uint32_t u = e[0];
        st->levels[u] = (uint8_t)e[1];
        for (uint32_t l = 0; e[1] != HNSW_NOT_IN_GRAPH && l <= e[1]; l++) {
            const uint32_t *then = snapshot_list(e, l);
            memcpy(links_at(st, u, l), then, (1 + (size_t)then[0]) * sizeof *then);
        }
    }
    st->entry = st->tx_entry;
    st->top = st->tx_top;
    st->nodes = st->tx_nodes;
    if (st->sq8 && st->trained && !st->tx_trained) {
        /* Trained in the transaction: back to float32 traversal (the rows
         * were kept) with the code area of every node zero again. */
        for (uint32_t label = 0; label < st->cap; label++)
            memset(node_block(st, label), 0, st->link_offset);
        memset(st->center, 0, (size_t)st->dim * sizeof *st->center);
        st->scale = st->scale_sq = st->center_sq = 0.0f;
        st->trained = 0;
    }
    end_transaction(index, st, 0);
}

/* --------------------------------------------------------- link bookkeeping */

static int list_contains(const uint32_t *list, uint32_t label) {
    for (uint32_t i = 1; i <= list[0]; i++)
        if (list[i] == label) return 1;
    return 0;
}

/* Queues the level-0 pair (from, to): after the operation, `to` must still
 * be reachable from `from`. */
static int work_push(shoal_index *index, hnsw_state *st, uint32_t from, uint32_t to) {
    if (shoal__grow(&index->mem, (void **)&st->work, &st->work_cap, 2 * (st->work_n + 1),
                    sizeof *st->work))
        return SHOAL_ENOMEM;
    st->work[2 * st->work_n] = from;
    st->work[2 * st->work_n + 1] = to;
    st->work_n++;
    return SHOAL_OK;
}

/* Room for `extra` more queued pairs, so the pushes of one change cannot
 * fail half-way through it. */
static int work_reserve(shoal_index *index, hnsw_state *st, uint32_t extra) {
    return shoal__grow(&index->mem, (void **)&st->work, &st->work_cap, 2 * (st->work_n + extra),
                       sizeof *st->work);
}

/* Room for `extra` more entries in rev[v]. */
static int rev_reserve(shoal_index *index, hnsw_state *st, uint32_t v, uint32_t extra) {
    uint32_t *r = st->rev[v];
    uint32_t count = r ? r[0] : 0, cap = r ? r[1] : 0;
    if (count + extra <= cap) return SHOAL_OK;
    uint32_t fresh = cap + cap / 2 + 4;
    if (fresh < count + extra) fresh = count + extra;
    uint32_t *grown = shoal__realloc(&index->mem, r, (2 + (size_t)fresh) * sizeof *grown);
    if (!grown) return SHOAL_ENOMEM;
    if (!r) grown[0] = 0;
    grown[1] = fresh;
    st->rev[v] = grown;
    return SHOAL_OK;
}

/* Adds u to rev[v] (which must have room), keeping it sorted by label: the
 * reverse lists are then a function of the links alone -- the same after a
 * load, which rebuilds them, as in the index that was saved, and restored
 * exactly by an abort. */
static void rev_insert(hnsw_state *st, uint32_t u, uint32_t v) {
    uint32_t *r = st->rev[v], *e = r + 2, n = r[0], at = n;
    while (at > 0 && e[at - 1] > u) at--;
    memmove(e + at + 1, e + at, (size_t)(n - at) * sizeof *e);
    e[at] = u;
    r[0] = n + 1;
}

/* Records a new link u -> v (rev[v] must have room). */
static void link_added(hnsw_state *st, uint32_t u, uint32_t v, uint32_t level) {
    rev_insert(st, u, v);
    (void)level;
}

/* Records that the link u -> v is gone (one entry of u in rev[v]). */
static void rev_remove(hnsw_state *st, uint32_t u, uint32_t v) {
    uint32_t *r = st->rev[v], *e = r + 2, n = r[0];
    for (uint32_t i = 0; i < n; i++) {
        if (e[i] != u) continue;
        memmove(e + i, e + i + 1, (size_t)(n - i - 1) * sizeof *e);
        r[0] = n - 1;
        return;
    }
}

/* Records that the link u -> v is gone; on level 0, queues the check that
 * u still reaches v. */
static int link_removed(shoal_index *index, hnsw_state *st, uint32_t u, uint32_t v,
                        uint32_t level) {
    rev_remove(st, u, v);
    return level == 0 ? work_push(index, st, u, v) : SHOAL_OK;
}

/* Replaces u's list on level with list[0..n) (which must not alias it).
 * Journals u and reserves every reverse entry and queued pair first, so it
 * either fails before any change or not at all. */
static int set_links(shoal_index *index, hnsw_state *st, uint32_t u, uint32_t level,
                     const uint32_t *list, uint32_t n) {
    int rc = touch(index, st, u);
    if (rc) return rc;
    uint32_t *lu = links_at(st, u, level);
    if (level == 0 && (rc = work_reserve(index, st, lu[0]))) return rc;
    for (uint32_t j = 0; j < n; j++)
        if (!list_contains(lu, list[j]) && (rc = rev_reserve(index, st, list[j], 1))) return rc;
    uint32_t old_n = lu[0];
    memcpy(st->old, lu + 1, old_n * sizeof *st->old);
    for (uint32_t j = 0; j < n; j++) {
        int had = 0;
        for (uint32_t i = 0; i < old_n && !had; i++) had = st->old[i] == list[j];
        if (!had) link_added(st, u, list[j], level);
        lu[1 + j] = list[j];
    }
    lu[0] = n;
    for (uint32_t i = 0; i < old_n; i++) {
        int kept = 0;
        for (uint32_t j = 1; j <= n && !kept; j++) kept = lu[j] == st->old[i];
        if (!kept && (rc = link_removed(index, st, u, st->old[i], level))) return rc;
    }
    return SHOAL_OK;
}

/* Adds q to v's list on level, re-selecting v's list with the heuristic
 * when it is full (q may then be left out).  rev[q] must have room. */
static int add_back_link(shoal_index *index, hnsw_state *st, uint32_t v, uint32_t q,
                         uint32_t level) {
    uint32_t *lv = links_at(st, v, level);
    uint32_t m = max_links(st, level);
    if (lv[0] < m) {
        int rc = touch(index, st, v);
        if (rc) return rc;
        lv[1 + lv[0]++] = q;
        link_added(st, v, q, level);
        return SHOAL_OK;
    }
    hnsw_probe pv = probe_of_node(st, v);
    uint32_t n = 0;
    for (uint32_t i = 1; i <= lv[0]; i++) {
        hnsw_item it = {probe_distance(index, st, &pv, lv[i]), lv[i]};
        st->pool[n++] = it;
    }
    hnsw_item it = {probe_distance(index, st, &pv, q), q};
    st->pool[n++] = it;
    qsort(st->pool, n, sizeof *st->pool, cmp_items);
    uint32_t kept = select_neighbours(index, st, st->pool, n, m, st->tmp);
    return set_links(index, st, v, level, st->tmp, kept);
}

/* ----------------------------------------------------------- reachability */

/* Whether `to` is reachable from `from` over level-0 links within
 * REACH_BUDGET visited nodes (breadth first, so near targets are found
 * first and cheaply).  On failure st->queue[0..*seen) holds the nodes
 * visited, nearest (in hops) first. */
static int reaches(hnsw_state *st, uint32_t from, uint32_t to, uint32_t *seen) {
    *seen = 0;
    if (list_contains(links_at(st, from, 0), to)) return 1;
    uint32_t epoch = next_epoch(&st->s, st->cap), head = 0, tail = 0;
    st->queue[tail++] = from;
    st->s.visit[from] = epoch;
    while (head < tail) {
        const uint32_t *lu = links_at(st, st->queue[head++], 0);
        for (uint32_t i = 1; i <= lu[0]; i++) {
            uint32_t v = lu[i];
            if (v == to) return 1;
            if (st->s.visit[v] == epoch) continue;
            st->s.visit[v] = epoch;
            if (tail == REACH_BUDGET) {
                *seen = tail;
                return 0;
            }
            st->queue[tail++] = v;
        }
    }
    *seen = tail;
    return 0;
}

/* Makes `to` reachable from `from` again by one new level-0 link from a
 * node `from` reaches (st->queue[0..seen), the first REACH_LINKERS of them
 * considered): the one closest to `to` that has room.  If all are full, one
 * of the REACH_SWAPPERS closest gives up a link whose target it still
 * reaches without it (checked by search).  Only if none can, the closest
 * gives up its link to the target with the most in-links, and that pair is
 * queued in turn.  (Evicting the farthest link without a check was tried
 * first: it kills exactly the rare long links between clusters, and on
 * duplicate-heavy data the repairs then cycle.)  Every node whose list
 * changes is journaled first, and rev[to] reserved, so a failure changes
 * nothing. */
static int link_toward(shoal_index *index, hnsw_state *st, uint32_t to, uint32_t seen) {
    int rc = rev_reserve(index, st, to, 1);
    if (rc) return rc;
    hnsw_probe pt = probe_of_node(st, to);
    uint32_t roomy = SHOAL_NO_LABEL;
    float roomy_d = 0.0f;
    hnsw_item full[REACH_SWAPPERS];
    uint32_t nfull = 0;
    for (uint32_t i = 0; i < seen && i < REACH_LINKERS; i++) {
        uint32_t v = st->queue[i];
        if (list_contains(links_at(st, v, 0), to)) return SHOAL_OK; /* past the search budget */
        float d = probe_distance(index, st, &pt, v);
        if (links_at(st, v, 0)[0] < st->M0) {
            if (roomy == SHOAL_NO_LABEL || d < roomy_d) roomy = v, roomy_d = d;
            continue;
        }
        /* Keep the REACH_SWAPPERS closest full nodes, sorted. */
        hnsw_item it = {d, v};
        uint32_t at = nfull < REACH_SWAPPERS ? nfull++ : REACH_SWAPPERS;
        while (at > 0 && item_before(it, full[at - 1])) {
            if (at < REACH_SWAPPERS) full[at] = full[at - 1];
            at--;
        }
        if (at < REACH_SWAPPERS) full[at] = it;
    }
    if (roomy != SHOAL_NO_LABEL) {
        if ((rc = touch(index, st, roomy))) return rc;
        uint32_t *lv = links_at(st, roomy, 0);
        lv[1 + lv[0]++] = to;
        link_added(st, roomy, to, 0);
        return SHOAL_OK;
    }
    if (nfull == 0) return SHOAL_OK;
    for (uint32_t i = 0; i < nfull; i++) {
        uint32_t via = full[i].label, *lv = links_at(st, via, 0), seen2;
        if ((rc = touch(index, st, via))) return rc;
        for (uint32_t j = 1; j <= lv[0]; j++) {
            uint32_t z = lv[j];
            lv[j] = to; /* try the swap */
            if (reaches(st, via, z, &seen2)) {
                link_added(st, via, to, 0);
                rev_remove(st, via, z);
                return SHOAL_OK;
            }
            lv[j] = z;
        }
    }
    uint32_t via = full[0].label, *lv = links_at(st, via, 0);
    uint32_t evict = 1;
    for (uint32_t i = 2; i <= lv[0]; i++)
        if (st->rev[lv[i]][0] > st->rev[lv[evict]][0]) evict = i;
    uint32_t z = lv[evict];
    lv[evict] = to;
    link_added(st, via, to, 0);
    return link_removed(index, st, via, z, 0);
}

/* Checks every queued pair and repairs the broken ones. */
static int process_work(shoal_index *index, hnsw_state *st) {
    /* Swaps can cascade; the budget bounds that.  XXX: a pair left over is
     * only reported by check(). */
    uint32_t budget = 16 * st->work_n + 256;
    int rc = SHOAL_OK;
    for (uint32_t i = 0; i < st->work_n && budget && !rc; i++, budget--) {
        uint32_t from = st->work[2 * i], to = st->work[2 * i + 1];
        if (from == to || !in_graph(st, from) || !in_graph(st, to)) continue;
        uint32_t seen;
        if (!reaches(st, from, to, &seen)) rc = link_toward(index, st, to, seen);
    }
    st->work_n = 0;
    return rc;
}

/* ------------------------------------------------------------ kind ops */

static int hnsw_create(shoal_index *index) {
    shoal_hnsw_params *hp = &index->params.hnsw;
    if (hp->M == 0) hp->M = 16;
    if (hp->M < 2 || hp->M > HNSW_M_MAX)
        return shoal__fail(index, SHOAL_EPARAM, "hnsw M = %u; it must be 2..%u", hp->M,
                           HNSW_M_MAX);
    if (hp->ef_construction == 0) hp->ef_construction = hp->M > 200 ? hp->M : 200;
    if (hp->ef_construction < hp->M)
        return shoal__fail(index, SHOAL_EPARAM, "hnsw ef_construction = %u is below M = %u",
                           hp->ef_construction, hp->M);
    if (hp->ef_search == 0) hp->ef_search = 64;
    if (hp->build_batch > HNSW_BATCH_MAX)
        return shoal__fail(index, SHOAL_EPARAM, "hnsw build_batch = %u; the limit is %u",
                           hp->build_batch, HNSW_BATCH_MAX);
    shoal_quantizer q = index->params.quantizer;
    if (q != SHOAL_QUANTIZER_F32 && q != SHOAL_QUANTIZER_SQ8)
        return shoal__fail(index, SHOAL_EPARAM, "hnsw quantizer %s; it must be f32 or sq8",
                           shoal_quantizer_word(q) ? shoal_quantizer_word(q) : "(unknown)");

    hnsw_state *st = shoal__calloc(&index->mem, 1, sizeof *st);
    if (!st) return SHOAL_ENOMEM;
    index->kind_state = st;
    st->M = hp->M;
    st->M0 = 2 * hp->M;
    st->ef_construction = hp->ef_construction;
    st->ef_search = hp->ef_search;
    st->dim = index->params.dim;
    st->sq8 = q == SHOAL_QUANTIZER_SQ8;
    st->rerank = index->params.rerank; /* nonzero only for sq8 (index.c checks) */
    st->batch = hp->build_batch;
    if (st->batch) {
        st->q_labels = shoal__alloc(&index->mem, st->batch * sizeof *st->q_labels);
        st->q_levels = shoal__alloc(&index->mem, st->batch * sizeof *st->q_levels);
        st->q_coff = shoal__alloc(&index->mem, st->batch * sizeof *st->q_coff);
        st->q_off = shoal__alloc(&index->mem, st->batch * sizeof *st->q_off);
        st->q_redo = shoal__alloc(&index->mem, st->batch);
        if (!st->q_labels || !st->q_levels || !st->q_coff || !st->q_off || !st->q_redo)
            return SHOAL_ENOMEM;
    }
    st->copies = st->rerank > 0;
    shoal__rowchunks_init(&st->rows, (size_t)st->dim * sizeof(float));
    st->entry = SHOAL_NO_LABEL;
    size_t vec_bytes = st->sq8 ? sizeof(float) + st->dim : (size_t)st->dim * sizeof(float);
    st->link_offset = (vec_bytes + 3) & ~(size_t)3;
    st->stride = (st->link_offset + (1 + (size_t)st->M0) * sizeof(uint32_t) + 15) & ~(size_t)15;
    shoal__rowchunks_init(&st->level0, st->stride);

    st->tmp = shoal__alloc(&index->mem, (st->M0 + 1) * sizeof *st->tmp);
    st->old = shoal__alloc(&index->mem, (st->M0 + 1) * sizeof *st->old);
    st->queue = shoal__alloc(&index->mem, REACH_BUDGET * sizeof *st->queue);
    if (!st->tmp || !st->old || !st->queue ||
        grow_items(index, &st->pool, &st->pool_cap, 2 * st->M0 + 2))
        return SHOAL_ENOMEM;
    if (st->sq8) {
        st->center = shoal__calloc(&index->mem, st->dim, sizeof *st->center);
        st->qcodes = shoal__alloc(&index->mem, st->dim);
        st->decoded = shoal__alloc(&index->mem, (size_t)st->dim * sizeof *st->decoded);
        if (!st->center || !st->qcodes || !st->decoded) return SHOAL_ENOMEM;
    }
    return SHOAL_OK;
}

/* Grows *p (elem-byte items, old of them) to cap items, zeroing the rest. */
static int grow_zeroed(shoal_index *index, void **p, uint32_t old, uint32_t cap, size_t elem) {
    unsigned char *fresh = shoal__realloc(&index->mem, *p, (size_t)cap * elem);
    if (!fresh) return SHOAL_ENOMEM;
    memset(fresh + (size_t)old * elem, 0, (size_t)(cap - old) * elem);
    *p = fresh;
    return SHOAL_OK;
}

static int hnsw_reserve(shoal_index *index, uint32_t cap) {
    hnsw_state *st = state_of(index);
    if (cap <= st->cap) return SHOAL_OK;
    uint32_t old = st->cap;
    if ((size_t)cap > SIZE_MAX / st->stride) return SHOAL_ENOMEM;
    /* A failure part-way leaves some arrays larger than st->cap: harmless. */
    if (shoal__rowchunks_reserve(&index->mem, &st->level0, cap) ||
        grow_zeroed(index, (void **)&st->upper, old, cap, sizeof *st->upper) ||
        grow_zeroed(index, (void **)&st->rev, old, cap, sizeof *st->rev) ||
        grow_zeroed(index, (void **)&st->s.visit, old, cap, sizeof *st->s.visit) ||
        grow_zeroed(index, (void **)&st->levels, old, cap, sizeof *st->levels))
        return SHOAL_ENOMEM;
    /* The journal marks, one bit per label (grown in bytes). */
    uint8_t *touched = shoal__realloc(&index->mem, st->touched, ((size_t)cap + 7) / 8);
    if (!touched) return SHOAL_ENOMEM;
    memset(touched + ((size_t)old + 7) / 8, 0, ((size_t)cap + 7) / 8 - ((size_t)old + 7) / 8);
    st->touched = touched;
    memset(st->levels + old, HNSW_NOT_IN_GRAPH, cap - old);
    if (st->copies && shoal__rowchunks_reserve(&index->mem, &st->rows, cap)) return SHOAL_ENOMEM;
    if (st->sq8 && grow_zeroed(index, (void **)&st->slack, old, cap, sizeof *st->slack))
        return SHOAL_ENOMEM;
    if (st->sq8 && !st->trained && !st->copies &&
        grow_zeroed(index, (void **)&st->train, old, cap, (size_t)st->dim * sizeof(float)))
        return SHOAL_ENOMEM;
    st->cap = st->s.visit_cap = cap;
    return SHOAL_OK;
}

/* An insert's first step: the vector in traversal form, a level drawn,
 * empty lists; the node is not in the graph yet. */
static int insert_store(shoal_index *index, hnsw_state *st, uint32_t label, const float *vector,
                        uint32_t *level_out) {
    uint32_t M = st->M;
    int rc;
    if (st->tx && (rc = shoal__grow(&index->mem, (void **)&st->created, &st->created_cap,
                                    st->created_n + 1, sizeof *st->created)))
        return rc;

    /* The vector, in traversal form. */
    if (!st->sq8)
        memcpy(node_block(st, label), vector, (size_t)st->dim * sizeof(float));
    else {
        if (st->copies || !st->trained)
            memcpy((void *)f32_row(st, label), vector, (size_t)st->dim * sizeof(float));
        if (st->trained) sq8_store(index, st, label, vector);
    }

    uint32_t level = random_level(index, st);
    links_at(st, label, 0)[0] = 0;
    if (st->rev[label]) st->rev[label][0] = 0;
    if (level > 0) {
        size_t words = (size_t)level * (M + 1);
        uint32_t *up = shoal__alloc(&index->mem, words * sizeof *up);
        if (!up) return SHOAL_ENOMEM;
        for (uint32_t l = 0; l < level; l++) up[(size_t)l * (M + 1)] = 0;
        st->upper[label] = up;
    }
    if (st->tx) {
        st->created[st->created_n++] = label;
        set_touched(st, label);
    }
    *level_out = level;
    return SHOAL_OK;
}

/* The first node of an empty graph: the entry point, with no links. */
static void insert_first(hnsw_state *st, uint32_t label, uint32_t level) {
    st->levels[label] = (uint8_t)level;
    st->entry = label;
    st->top = level;
    st->nodes = 1;
}

/* The serial search phase: every level's neighbours (chosen[l] of them at
 * st->sel + l * M for l <= lmax) on the graph as it is now. */
static int insert_search(shoal_index *index, hnsw_state *st, uint32_t label, uint32_t lmax,
                         uint32_t *chosen) {
    uint32_t M = st->M;
    hnsw_probe p = probe_of_node(st, label);
    uint32_t ep = greedy_descent(index, st, &p, st->entry, st->top, lmax);
    for (uint32_t l = lmax + 1; l-- > 0;) {
        int rc = search_layer(index, st, &st->s, &p, ep, st->ef_construction, l, NULL, SHOAL_NO_LABEL);
        int n = rc ? rc : drain_sorted(index, st);
        if (n < 0) return n;
        ep = st->pool[0].label;
        chosen[l] = select_neighbours(index, st, st->pool, (uint32_t)n, M, st->sel + l * M);
    }
    return SHOAL_OK;
}

/* The link phase: label (stored, of the given level) gets the neighbours
 * chosen per level 0..lmax at st->sel, and back links from them. */
static int insert_link(shoal_index *index, hnsw_state *st, uint32_t label, uint32_t level,
                       uint32_t lmax, const uint32_t *chosen) {
    uint32_t M = st->M;
    int rc = SHOAL_OK;
    /* Reverse-list room for every link this insert adds. */
    uint32_t total = 0;
    for (uint32_t l = 0; l <= lmax && !rc; l++) {
        total += chosen[l];
        for (uint32_t i = 0; i < chosen[l] && !rc; i++) {
            uint32_t v = st->sel[l * M + i], times = 0;
            for (uint32_t l2 = 0; l2 <= lmax; l2++)
                for (uint32_t j = 0; j < chosen[l2]; j++) times += st->sel[l2 * M + j] == v;
            rc = rev_reserve(index, st, v, times);
        }
    }
    if (!rc) rc = rev_reserve(index, st, label, total);
    if (rc) {
        /* Not linked yet: the node simply is not in the graph (an abort
         * frees its upper lists with the other created nodes'). */
        if (!st->tx) {
            shoal__free(&index->mem, st->upper[label]);
            st->upper[label] = NULL;
        }
        return rc;
    }

    /* It may still fail (journal, back links, repairs); then the
     * transaction's abort takes the node out again. */
    st->levels[label] = (uint8_t)level;
    st->nodes++;
    for (uint32_t l = 0; l <= lmax; l++) {
        uint32_t *lq = links_at(st, label, l);
        const uint32_t *sel = st->sel + l * M;
        lq[0] = chosen[l];
        for (uint32_t i = 0; i < chosen[l]; i++) {
            lq[1 + i] = sel[i];
            link_added(st, label, sel[i], l);
        }
        for (uint32_t i = 0; i < chosen[l]; i++)
            if ((rc = add_back_link(index, st, sel[i], label, l))) return rc;
    }
    if (level > st->top) {
        /* The old root reached everything. */
        if ((rc = work_push(index, st, label, st->entry))) return rc;
        st->entry = label;
        st->top = level;
    }
    /* Its closest neighbour reaches it (a node with no neighbour at all is
     * possible only in a batch whose graph was empty: see batch_link). */
    if (chosen[0] && (rc = work_push(index, st, st->sel[0], label))) return rc;
    if ((rc = process_work(index, st))) return rc;
    if (sq8_fit_due(st)) sq8_train(index, st);
    return SHOAL_OK;
}

static int batch_queue(shoal_index *index, hnsw_state *st, uint32_t label, uint32_t level);

static int hnsw_insert(shoal_index *index, uint32_t label, const float *vector) {
    hnsw_state *st = state_of(index);
    uint32_t level;
    int rc = insert_store(index, st, label, vector, &level);
    if (rc) return rc;
    /* Batched (see "Batched inserts"), once traversal is in its final form. */
    if (st->batch && (!st->sq8 || st->trained)) return batch_queue(index, st, label, level);
    if (st->entry == SHOAL_NO_LABEL) {
        insert_first(st, label, level);
        return SHOAL_OK;
    }
    uint32_t lmax = level < st->top ? level : st->top;
    uint32_t chosen[HNSW_LEVEL_MAX + 1];
    if ((rc = shoal__grow(&index->mem, (void **)&st->sel, &st->sel_cap, (lmax + 1) * st->M,
                          sizeof *st->sel)) ||
        (rc = insert_search(index, st, label, lmax, chosen)))
        return rc;
    return insert_link(index, st, label, level, lmax, chosen);
}

/*
 * Batched inserts (hnsw.build_batch = B > 0)
 *   Inserts are queued B at a time and linked in two phases.  Phase 1 runs
 *   every queued node's construction search against the graph as it was
 *   before the batch (frozen: nothing changes it during the phase), each
 *   with its own fixed scratch, so the searches are independent and run in
 *   parallel on shoal_index_set_threads threads.  Phase 2 links the nodes
 *   one by one in insertion order, as a serial insert would, choosing each
 *   one's neighbours (the usual heuristic) from its phase-1 candidates plus
 *   the nodes of the batch linked before it (their distances computed
 *   then: the frozen graph cannot have found them).
 *   The graph is a function of the seed, the records and where the batches
 *   end -- never of the thread count: phase 1's answers do not depend on
 *   which thread computes them (every scratch has the same fixed size, and
 *   a search that would overflow it is redone serially in phase 2, which
 *   depends only on the data), and phase 2 is serial.  A batch ends every
 *   B queued nodes and at the end of each add call (insert_done), so the
 *   bytes depend on the calls' sizes as well; serial inserts (B = 0, the
 *   default) do not.  SQ8 inserts one at a time until it is trained.
 *   Quality: a node misses only the neighbours the frozen graph cannot show
 *   it, which are the batch's own nodes, and those it is given exactly.  On
 *   Fashion-MNIST with efConstruction 200 the graph came out nearly the
 *   serial one (5k records: identical; 60k: 306 bytes of the 188 MB level-0
 *   block differ): the heuristic keeps the nearest few candidates, and both
 *   ways find the same ones.  (With efConstruction 8 the graphs differ in
 *   half the lists: hnsw.batched_inserts checks that.)
 *   Phase 2 (linking, back links with their pruning, reachability repair)
 *   stays serial, about a third of the time: on two threads the 60k build
 *   took 13.6 s against 21.3 s serial (B = 32 or 64; B = 256 took 15.2 s,
 *   its two phases no longer sharing the cache).
 */
/* The fixed heap capacity of a phase-1 scratch, a function of the
 * parameters alone: 8 * ef_construction * 2M (cand grows by at most 2M per
 * expansion; 400 KiB at the defaults, and no search of our benchmarks
 * needed more), at most 2^20 entries (8 MiB) per thread.  The ASan build
 * makes it tiny, so that its tests take the serial redo path often. */
#ifndef SHOAL_HNSW_FIXED_CAND_MAX
#define SHOAL_HNSW_FIXED_CAND_MAX (1u << 20)
#endif
static uint32_t fixed_cand_cap(const hnsw_state *st) {
    uint64_t cap = 8ull * st->ef_construction * st->M0;
    return cap > SHOAL_HNSW_FIXED_CAND_MAX ? SHOAL_HNSW_FIXED_CAND_MAX : (uint32_t)cap;
}

static int batch_link(shoal_index *index, hnsw_state *st);

static int batch_queue(shoal_index *index, hnsw_state *st, uint32_t label, uint32_t level) {
    st->q_labels[st->q_n] = label;
    st->q_levels[st->q_n] = level;
    if (++st->q_n == st->batch) return batch_link(index, st);
    return SHOAL_OK;
}

/* Links what the queue holds (the end of an add call). */
static int hnsw_insert_done(shoal_index *index) {
    hnsw_state *st = state_of(index);
    return st->q_n ? batch_link(index, st) : SHOAL_OK;
}

/* Phase 1 of one queued node: its candidates per level on the frozen
 * graph (entry, top), closest first, into out; counts per level. */
static int batch_search(shoal_index *index, hnsw_state *st, hnsw_scratch *sc, uint32_t label,
                        uint32_t level, uint32_t entry, uint32_t top, hnsw_item *out,
                        uint32_t *counts) {
    hnsw_probe p = probe_of_node(st, label);
    uint32_t lmax = level < top ? level : top, efc = st->ef_construction;
    uint32_t ep = greedy_descent(index, st, &p, entry, top, lmax);
    for (uint32_t l = lmax + 1; l-- > 0;) {
        int rc = search_layer(index, st, sc, &p, ep, efc, l, NULL, SHOAL_NO_LABEL);
        if (rc) return rc;
        hnsw_item *o = out + (size_t)l * efc;
        counts[l] = drain_into(sc, o);
        ep = o[0].label;
    }
    return SHOAL_OK;
}

typedef struct batch_job {
    shoal_index *index;
    hnsw_state *st;
    uint32_t worker, stride, entry, top;
} batch_job;

/* A worker's share of phase 1: queued nodes worker, worker + stride, ...
 * Writes only its scratch and those nodes' outputs. */
static void *batch_work(void *arg) {
    batch_job *job = arg;
    hnsw_state *st = job->st;
    hnsw_scratch *sc = &st->workers[job->worker];
    for (uint32_t i = job->worker; i < st->q_n; i += job->stride) {
        int rc = batch_search(job->index, st, sc, st->q_labels[i], st->q_levels[i], job->entry,
                              job->top, st->q_items + st->q_off[i], st->q_count + st->q_coff[i]);
        st->q_redo[i] = rc != SHOAL_OK; /* only HNSW_SCRATCH_FULL: nothing allocates */
    }
    return NULL;
}

/* Phase 1 on `threads` threads (the caller is one of them). */
static void batch_run(shoal_index *index, hnsw_state *st, uint32_t threads, uint32_t entry,
                      uint32_t top) {
    batch_job jobs[HNSW_THREADS_MAX];
    for (uint32_t t = 0; t < threads; t++)
        jobs[t] = (batch_job){index, st, t, threads, entry, top};
#if SHOAL__THREADS
    pthread_t tid[HNSW_THREADS_MAX];
    uint32_t started = 1;
    for (uint32_t t = 1; t < threads; t++, started++)
        if (pthread_create(&tid[t], NULL, batch_work, &jobs[t])) break;
    /* Threads that could not start: their shares run here, same answers. */
    for (uint32_t t = started; t < threads; t++) batch_work(&jobs[t]);
    batch_work(&jobs[0]);
    for (uint32_t t = 1; t < started; t++) pthread_join(tid[t], NULL);
#else
    for (uint32_t t = 0; t < threads; t++) batch_work(&jobs[t]);
#endif
}

/* Workers' scratch for a graph of st->cap labels. */
static int batch_workers(shoal_index *index, hnsw_state *st, uint32_t threads) {
    if (st->n_workers < threads) {
        hnsw_scratch *w = shoal__realloc(&index->mem, st->workers, threads * sizeof *w);
        if (!w) return SHOAL_ENOMEM;
        memset(w + st->n_workers, 0, (threads - st->n_workers) * sizeof *w);
        st->workers = w;
        st->n_workers = threads;
    }
    for (uint32_t t = 0; t < threads; t++) {
        hnsw_scratch *sc = &st->workers[t];
        sc->fixed = 1;
        if (sc->visit_cap < st->cap) {
            if (grow_zeroed(index, (void **)&sc->visit, sc->visit_cap, st->cap, sizeof *sc->visit))
                return SHOAL_ENOMEM;
            sc->visit_cap = st->cap;
        }
        if (!sc->cand && !(sc->cand = shoal__alloc(&index->mem, (size_t)fixed_cand_cap(st) * sizeof *sc->cand)))
            return SHOAL_ENOMEM;
        sc->cand_cap = fixed_cand_cap(st);
        if (!sc->res && !(sc->res = shoal__alloc(&index->mem, ((size_t)st->ef_construction + 1) * sizeof *sc->res)))
            return SHOAL_ENOMEM;
        sc->res_cap = st->ef_construction + 1;
    }
    return SHOAL_OK;
}

/* Both phases for the queued nodes; empties the queue. */
static int batch_link(shoal_index *index, hnsw_state *st) {
    uint32_t n = st->q_n, efc = st->ef_construction, M = st->M;
    uint32_t entry = st->entry, top = st->top;
    int rc = SHOAL_OK;
    /* Room for phase 1's answers (allocated here, never by a worker). */
    size_t items = 0;
    uint32_t counts = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t lmax = st->q_levels[i] < top ? st->q_levels[i] : top;
        st->q_off[i] = items;
        st->q_coff[i] = counts;
        if (entry != SHOAL_NO_LABEL) {
            items += (size_t)(lmax + 1) * efc;
            counts += lmax + 1;
        }
    }
    uint32_t threads = index->threads > 1 ? index->threads : 1;
    if (threads > n) threads = n;
    if (items > st->q_items_cap) {
        hnsw_item *q = shoal__realloc(&index->mem, st->q_items, items * sizeof *q);
        if (!q) rc = SHOAL_ENOMEM;
        else {
            st->q_items = q;
            st->q_items_cap = items;
        }
    }
    if (!rc) rc = shoal__grow(&index->mem, (void **)&st->q_count, &st->q_count_cap, counts + 1,
                              sizeof *st->q_count);
    if (!rc && entry != SHOAL_NO_LABEL) rc = batch_workers(index, st, threads);
    if (!rc)
        rc = shoal__grow(&index->mem, (void **)&st->sel, &st->sel_cap, (HNSW_LEVEL_MAX + 1) * M,
                         sizeof *st->sel);
    if (!rc) rc = grow_items(index, &st->pool, &st->pool_cap, efc + n);
    if (rc) {
        st->q_n = 0;
        return rc;
    }
    if (entry != SHOAL_NO_LABEL) batch_run(index, st, threads, entry, top);
    else memset(st->q_redo, 0, n);

    /* Phase 2, in insertion order. */
    for (uint32_t i = 0; i < n && !rc; i++) {
        uint32_t label = st->q_labels[i], level = st->q_levels[i];
        if (st->entry == SHOAL_NO_LABEL) {
            insert_first(st, label, level);
            continue;
        }
        uint32_t lmax = level < st->top ? level : st->top;
        uint32_t chosen[HNSW_LEVEL_MAX + 1];
        if (st->q_redo[i]) {
            rc = insert_search(index, st, label, lmax, chosen);
        } else {
            hnsw_probe p = probe_of_node(st, label);
            uint32_t lmax1 = entry == SHOAL_NO_LABEL ? 0 : level < top ? level : top;
            for (uint32_t l = lmax + 1; l-- > 0;) {
                uint32_t m = 0;
                if (entry != SHOAL_NO_LABEL && l <= lmax1) {
                    m = st->q_count[st->q_coff[i] + l];
                    memcpy(st->pool, st->q_items + st->q_off[i] + (size_t)l * efc, m * sizeof *st->pool);
                }
                for (uint32_t j = 0; j < i; j++) {
                    uint32_t v = st->q_labels[j];
                    if (!in_graph(st, v) || st->levels[v] < l) continue;
                    hnsw_item it = {probe_distance(index, st, &p, v), v};
                    st->pool[m++] = it;
                }
                qsort(st->pool, m, sizeof *st->pool, cmp_items);
                if (m > efc) m = efc;
                chosen[l] = select_neighbours(index, st, st->pool, m, M, st->sel + l * M);
            }
        }
        if (!rc) rc = insert_link(index, st, label, level, lmax, chosen);
    }
    st->q_n = 0;
    return rc;
}

/* Re-selects u's list on level after its link to the deleted d: from u's
 * other links and d's links. */
static int repair_links(shoal_index *index, hnsw_state *st, uint32_t u, uint32_t d,
                        uint32_t level) {
    uint32_t epoch = next_epoch(&st->s, st->cap);
    st->s.visit[u] = st->s.visit[d] = epoch;
    hnsw_probe pu = probe_of_node(st, u);
    uint32_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        const uint32_t *list = links_at(st, pass ? d : u, level);
        for (uint32_t i = 1; i <= list[0]; i++) {
            uint32_t w = list[i];
            if (st->s.visit[w] == epoch) continue;
            st->s.visit[w] = epoch;
            hnsw_item it = {probe_distance(index, st, &pu, w), w};
            st->pool[n++] = it; /* pool holds >= 2 * M0 items */
        }
    }
    qsort(st->pool, n, sizeof *st->pool, cmp_items);
    uint32_t kept = select_neighbours(index, st, st->pool, n, max_links(st, level), st->tmp);
    return set_links(index, st, u, level, st->tmp, kept);
}

static int hnsw_remove(shoal_index *index, uint32_t d) {
    hnsw_state *st = state_of(index);
    if (d >= st->cap || !in_graph(st, d)) return SHOAL_OK;
    uint32_t L = st->levels[d];
    int rc = touch(index, st, d);
    if (!rc && st->tx)
        rc = shoal__grow(&index->mem, (void **)&st->kept, &st->kept_cap, st->kept_n + 1,
                         sizeof *st->kept);
    if (rc) return rc;

    /* Paths that ran u -> d -> x must survive: every level-0 in-neighbour u
     * must reach x0 (d's first level-0 out-neighbour), and x0 every other x. */
    const uint32_t *out0 = links_at(st, d, 0);
    uint32_t x0 = out0[0] ? out0[1] : SHOAL_NO_LABEL;
    if (x0 != SHOAL_NO_LABEL) {
        for (uint32_t i = 2; i <= out0[0]; i++)
            if ((rc = work_push(index, st, x0, out0[i]))) return rc;
        const uint32_t *r = st->rev[d];
        for (uint32_t i = 0; r && i < r[0]; i++)
            if (list_contains(links_at(st, r[2 + i], 0), d) &&
                (rc = work_push(index, st, r[2 + i], x0)))
                return rc;
    }

    /* Repair every in-neighbour, highest label first; each repair drops its
     * links to d. */
    while (st->rev[d] && st->rev[d][0]) {
        uint32_t u = st->rev[d][2 + st->rev[d][0] - 1];
        uint32_t top = st->levels[u] < L ? st->levels[u] : L;
        int repaired = 0;
        for (uint32_t l = 0; l <= top; l++) {
            if (!list_contains(links_at(st, u, l), d)) continue;
            if ((rc = repair_links(index, st, u, d, l))) return rc;
            repaired = 1;
        }
        if (!repaired) st->rev[d][0]--; /* cannot happen while the invariants hold */
    }
    /* Drop d's own links. */
    for (uint32_t l = 0; l <= L; l++) {
        uint32_t *ld = links_at(st, d, l);
        while (ld[0]) {
            uint32_t w = ld[ld[0]--];
            if ((rc = link_removed(index, st, d, w, l))) return rc;
        }
    }
    if (st->tx) { /* freed at commit, put back by an abort */
        st->kept[st->kept_n].label = d;
        st->kept[st->kept_n++].upper = st->upper[d];
    } else {
        shoal__free(&index->mem, st->upper[d]);
    }
    st->upper[d] = NULL;
    st->levels[d] = HNSW_NOT_IN_GRAPH;
    st->nodes--;
    if (d == st->entry) {
        st->entry = SHOAL_NO_LABEL;
        st->top = 0;
        for (uint32_t label = 0; label < index->label_bound; label++) {
            if (!in_graph(st, label)) continue;
            if (st->entry == SHOAL_NO_LABEL || st->levels[label] > st->top) {
                st->entry = label;
                st->top = st->levels[label];
            }
        }
        if (x0 != SHOAL_NO_LABEL && (rc = work_push(index, st, st->entry, x0))) return rc;
    }
    return process_work(index, st);
}

static const float *hnsw_vector(const shoal_index *index, uint32_t label) {
    hnsw_state *st = state_of(index);
    if (!traverse_i8(st) || (st->copies && !index->rows_external)) return f32_row(st, label);
    sq8_decode(st, codes_of(st, label), st->decoded);
    return st->decoded;
}

/* ----------------------------------------------------------------- search */

/* Float32 distance from the query to a node: exact (float32 traversal or
 * rerank copies), or to its decoded vector. */
static float exact_distance(const shoal_index *index, hnsw_state *st, const float *query,
                            uint32_t label) {
    if (!traverse_i8(st) || st->copies) return shoal__distance(index, query, f32_row(st, label));
    sq8_decode(st, codes_of(st, label), st->decoded);
    return shoal__distance(index, query, st->decoded);
}

/* The query's terms of the skip bound (see "Skipping a rerank row"). */
typedef struct rerank_bound {
    shoal_metric metric;
    hnsw_slack q;  /* the query's slack against its codes */
    double q_oc;   /* |the query's oc term| */
    double gamma;  /* the relative rounding of a float32 sum of dim terms */
} rerank_bound;

/* A float below the float32 distance the rerank would compute for c (or
 * -inf): a candidate whose floor exceeds the kept k-th distance can only
 * be refused, and is skipped (float rounding is monotonic, so a floor
 * that rounded up past that distance was above it).  All metrics go through
 * |q - r| >= |q~ - x~| - |q - q~| - |r - x~| (the triangle inequality).
 *   l2: |q~ - x~|^2 is c->dist, the rounded scale_sq * S (within 2^-22 of
 *   it: 1e-6 covers that); gamma covers the float32 sum's rounding.
 *   ip, cosine: q.r = (|q|^2 + |r|^2 - |q - r|^2) / 2, with |q~ - x~|^2 =
 *   |q~|^2 + |x~|^2 - 2 q~.x~ and q~.x~ recovered from c->dist (its
 *   formula's roundings are below 2^-18 of the magnitudes it adds); the
 *   float32 dot product is within gamma |q| |r| of q.r, and 1 - it (cosine)
 *   within the last absolute margin. */
static float rerank_floor(const hnsw_state *st, const rerank_bound *b, const hnsw_item *c) {
    const hnsw_slack *x = &st->slack[c->label];
    double d = c->dist, lb;
    if (b->metric == SHOAL_METRIC_L2) {
        lb = sqrt(d) * (1.0 - 1e-6) - b->q.err - x->err;
        return lb > 0.0 ? (float)(lb * lb * (1.0 - b->gamma)) : -INFINITY;
    }
    int ip = b->metric == SHOAL_METRIC_IP;
    double t = ip ? -d : 1.0 - d + 0x1p-23 * fabs(d);
    double oc = fabs(oc_of(st, c->label));
    t += 0x1p-18 * ((double)st->center_sq + (double)st->scale * (b->q_oc + oc) + fabs(t));
    double s2 = ((double)b->q.xx + x->xx) * (1.0 - 1e-12) - 2.0 * t;
    lb = (s2 > 0.0 ? sqrt(s2) : 0.0) - b->q.err - x->err;
    double dot = 0.5 * ((double)b->q.rr + x->rr - (lb > 0.0 ? lb * lb : 0.0)) +
                 b->gamma * sqrt((double)b->q.rr * x->rr);
    return (float)((ip ? -dot : 1.0 - dot) - 0x1p-22 * (1.0 + fabs(dot)));
}

/* The query's terms of the skip bound (p: its codes); gamma bounds the
 * relative rounding of a float32 sum of dim terms (a difference, a
 * product, then at most dim additions), for l2 of the sum, for a dot
 * product of the sum of the terms' magnitudes. */
static rerank_bound query_bound(const shoal_index *index, hnsw_state *st, const float *query,
                                const hnsw_probe *p) {
    rerank_bound b = {index->params.metric, sq8_slack(index, st, p->codes, query),
                      fabs((double)p->oc), ((double)st->dim + 16.0) * 0x1p-24};
    return b;
}

/* What a search scores in float32.  With a filter selective enough, every
 * match: returns 1 (see "Filters").  Else the beam: returns 0 with the
 * candidates in st->s.res[0..*n) -- with copies cut to the rerank depth,
 * closest code first (*sorted) when that cut anything -- and the probe in
 * *p (the query's codes, or the float32 query).  Or an error. */
static int search_beam(shoal_index *index, hnsw_state *st, const float *query, uint32_t k,
                       const shoal_search_params *params, hnsw_probe *p, uint32_t *n,
                       int *sorted) {
    if (params && params->rerank && !st->copies)
        return shoal__fail(index, SHOAL_EPARAM,
                           "rerank needs float32 copies: create the index with rerank > 0");
    uint32_t ef = params && params->ef ? params->ef : st->ef_search;
    if (ef < k) ef = k;
    const shoal_search_params *filter = shoal__filtered(params) ? params : NULL;
    if (filter) {
        uint64_t m = shoal__estimate_matches(index, filter);
        if (m <= ef || m * m <= (uint64_t)FILTER_EXACT_FACTOR * ef * st->nodes) return 1;
    }
    *p = (hnsw_probe){NULL, NULL, 0.0f};
    if (traverse_i8(st)) {
        p->oc = sq8_encode(st, query, st->qcodes);
        p->codes = st->qcodes;
    } else {
        p->f32 = query;
    }
    uint32_t ep = greedy_descent(index, st, p, st->entry, st->top, 0);
    int rc = search_layer(index, st, &st->s, p, ep, ef, 0, filter, SHOAL_NO_LABEL);
    if (rc) return shoal__fail(index, rc, "out of memory for search scratch");
    /* With copies, only the rerank depth's best codes are reranked: each
     * costs a float32 row read from outside the graph.  The rerank takes
     * them closest code first, so that rows get skipped. */
    uint32_t depth = *n = st->s.res_n;
    if (!p->f32 && st->copies) {
        depth = params && params->rerank ? params->rerank : st->rerank;
        if (depth < k) depth = k;
    }
    *sorted = depth < *n;
    if (*sorted) {
        qsort(st->s.res, *n, sizeof *st->s.res, cmp_items);
        *n = depth;
    }
    return 0;
}

static int hnsw_search(shoal_index *index, const float *query, shoal__topk *topk,
                       const shoal_search_params *params) {
    hnsw_state *st = state_of(index);
    if (index->rows_external)
        return shoal__fail(index, SHOAL_ESTATE,
                           "the float32 rerank rows are outside the index (rerank_external): "
                           "search it with shoal_index_search_candidates and "
                           "shoal_index_rerank_rows");
    hnsw_probe p;
    uint32_t n;
    int sorted;
    int rc = search_beam(index, st, query, topk->k, params, &p, &n, &sorted);
    if (rc < 0) return rc;
    if (rc == 1) {
        for (uint32_t label = 0; label < index->label_bound; label++) {
            if (!in_graph(st, label) || !shoal__allowed(index, params, label)) continue;
            shoal__topk_push(topk, exact_distance(index, st, query, label),
                             index->seqs[label], label);
        }
        return SHOAL_OK;
    }
    /* Rows are skipped only where up to half the candidates could be: with
     * fewer (ef 16 for k 10), the bound's cost per query was measured to
     * match what it saves (docs/BENCHMARKS.md). */
    int prune = !p.f32 && n >= 2 * (uint64_t)topk->k;
    if (prune && !sorted) qsort(st->s.res, n, sizeof *st->s.res, cmp_items);
    if (prune) {
        /* (the traversal distances are not needed past this point) */
        rerank_bound skip = query_bound(index, st, query, &p);
        for (uint32_t i = 0; i < n; i++) st->s.res[i].dist = rerank_floor(st, &skip, &st->s.res[i]);
    }
    /* The copies to re-score are cold: each is fetched SHOAL__RERANK_AHEAD
     * candidates ahead (unless already sure to be skipped). */
    int fetch = !p.f32 && st->copies;
    int below = fetch && index->params.metric == SHOAL_METRIC_L2;
    size_t row_bytes = (size_t)st->dim * sizeof(float);
    for (uint32_t i = 0; fetch && i < n && i < SHOAL__RERANK_AHEAD; i++) {
        const char *r = (const char *)f32_row(st, st->s.res[i].label);
        for (size_t at = 0; at < row_bytes; at += 64) SHOAL__PREFETCH(r + at);
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t label = st->s.res[i].label;
        int full = topk->count == topk->k && topk->hits[0].distance < INFINITY;
        float worst = full ? topk->hits[0].distance : INFINITY;
        if (fetch && i + SHOAL__RERANK_AHEAD < n) {
            const hnsw_item *ahead = &st->s.res[i + SHOAL__RERANK_AHEAD];
            if (!prune || !(ahead->dist > worst)) {
                const char *r = (const char *)f32_row(st, ahead->label);
                for (size_t at = 0; at < row_bytes; at += 64) SHOAL__PREFETCH(r + at);
            }
        }
        if (prune && st->s.res[i].dist > worst) continue;
        float d;
        if (p.f32) {
            d = st->s.res[i].dist;
        } else if (below && full) {
            /* A row that cannot beat the kept worst stops early: the bound
             * is the next float above it, so a stopped sum is strictly
             * worse and refused like the full one; below it, the bits are
             * the full sum's. */
            float bound;
            uint32_t bits;
            memcpy(&bits, &worst, sizeof bits);
            bits = worst > 0.0f ? bits + 1 : 1; /* (0 or -0: the least positive float) */
            memcpy(&bound, &bits, sizeof bound);
            d = index->kernels->l2sq_f32_below(query, f32_row(st, label), st->dim, bound);
        } else {
            d = exact_distance(index, st, query, label);
        }
        shoal__topk_push(topk, d, index->seqs[label], label);
    }
    return SHOAL_OK;
}

/* ---------------------------------------------------- external rerank rows */

/*
 * Phase 1 runs search_beam as hnsw_search does and hands out what its
 * rerank would score, with where each row lies in the vectors section: the
 * beam, cut to the rerank depth, closest code first, each with the floor
 * the in-memory rerank skips by (its record's slack: the row's own, saved
 * in the segment, or in an older segment bounded from the codes alone,
 * sq8_slack_unread); or, under a selective
 * filter, every match in label order (no floors).  Phase 2 (index.c)
 * scores the rows as the in-memory rerank scores its copies.  A host that skips what the
 * floors rule out (shoal.h) leaves out only rows the k best refuse, so
 * both give the same labels and distances.
 */
static int hnsw_candidates(shoal_index *index, const float *q, uint32_t k,
                           const shoal_search_params *params, shoal_candidate *out, uint32_t cap) {
    hnsw_state *st = state_of(index);
    hnsw_probe p;
    uint32_t n, count = 0;
    int sorted;
    int rc = search_beam(index, st, q, k < index->live ? k : index->live, params, &p, &n, &sorted);
    if (rc < 0) return rc;
    uint64_t row = (uint64_t)st->dim * sizeof(float);
    if (rc == 1) {
        for (uint32_t label = 0; label < index->label_bound; label++) {
            if (!in_graph(st, label) || !shoal__allowed(index, params, label)) continue;
            if (count < cap) {
                sq8_decode(st, codes_of(st, label), st->decoded);
                out[count] = (shoal_candidate){label, shoal__distance(index, q, st->decoded),
                                               st->rows_at + label * row, -INFINITY};
            }
            count++;
        }
        return (int)count;
    }
    /* Closest code first (the first k are the likeliest to stay), with the
     * floors hnsw_search computes (see rerank_floor). */
    if (!sorted) qsort(st->s.res, n, sizeof *st->s.res, cmp_items);
    rerank_bound skip = query_bound(index, st, q, &p);
    for (uint32_t i = 0; i < n && i < cap; i++) {
        const hnsw_item *c = &st->s.res[i];
        out[i] = (shoal_candidate){c->label, c->dist, st->rows_at + c->label * row,
                                   rerank_floor(st, &skip, c)};
    }
    return (int)n;
}

static int hnsw_reranks(const shoal_index *index, uint32_t label) {
    return label < index->label_bound && shoal__is_alive(index, label) &&
           in_graph(state_of(index), label);
}

/* ------------------------------------------------------- check and stats */

/* Whether every one of the live nodes is reachable from the entry point
 * over level 0 links: 0, or SHOAL_ECORRUPT naming one that is not (or
 * SHOAL_ENOMEM).  Level 0 alone: it is where every search ends and what
 * path preservation keeps connected, and an upper-level link can hide a
 * level-0 break (a node reached only through the upper levels is lost to
 * any search whose descent does not land next to it).  Run by check, and
 * by load, so that a segment that loads passes check. */
static int level0_reachable(shoal_index *index, hnsw_state *st, uint32_t live) {
    if (!live) return SHOAL_OK;
    uint32_t *queue = shoal__alloc(&index->mem, (size_t)live * sizeof *queue);
    if (!queue) return shoal__fail(index, SHOAL_ENOMEM, "out of memory for the graph check");
    uint32_t epoch = next_epoch(&st->s, st->cap), head = 0, tail = 0;
    queue[tail++] = st->entry;
    st->s.visit[st->entry] = epoch;
    while (head < tail) {
        const uint32_t *lu = links_at(st, queue[head++], 0);
        for (uint32_t i = 1; i <= lu[0]; i++) {
            if (st->s.visit[lu[i]] == epoch) continue;
            st->s.visit[lu[i]] = epoch;
            if (tail == live) break; /* more than live: links were checked, so never */
            queue[tail++] = lu[i];
        }
    }
    shoal__free(&index->mem, queue);
    if (tail != live) {
        uint32_t lost = 0, bound = index->label_bound;
        while (lost < bound && (!in_graph(st, lost) || st->s.visit[lost] == epoch)) lost++;
        return shoal__fail(index, SHOAL_ECORRUPT,
                           "hnsw: %u of %u nodes unreachable on level 0 from the entry point (e.g. %u)",
                           live - tail, live, lost);
    }
    return SHOAL_OK;
}

static int hnsw_check(shoal_index *index) {
    hnsw_state *st = state_of(index);
    uint32_t bound = index->label_bound, live = 0, max_level = 0;
    uint64_t links_total = 0, rev_total = 0;
    for (uint32_t u = 0; u < bound; u++) {
        int alive = shoal__is_alive(index, u);
        if (alive != in_graph(st, u))
            return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: label %u alive %d but in graph %d",
                               u, alive, in_graph(st, u));
        if (!alive) {
            if (st->upper[u] || (st->rev && st->rev[u] && st->rev[u][0]) ||
                links_at(st, u, 0)[0])
                return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: dead label %u keeps links", u);
            continue;
        }
        live++;
        uint32_t L = st->levels[u];
        if (L > HNSW_LEVEL_MAX || (L > 0) != (st->upper[u] != NULL))
            return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: label %u has bad level %u", u, L);
        if (L > max_level) max_level = L;
        for (uint32_t l = 0; l <= L; l++) {
            const uint32_t *lu = links_at(st, u, l);
            if (lu[0] > max_links(st, l))
                return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: label %u has %u links on level %u",
                                   u, lu[0], l);
            links_total += lu[0];
            for (uint32_t i = 1; i <= lu[0]; i++) {
                uint32_t v = lu[i];
                if (v >= bound || !shoal__is_alive(index, v))
                    return shoal__fail(index, SHOAL_ECORRUPT,
                                       "hnsw: label %u links dead label %u on level %u", u, v, l);
                if (v == u)
                    return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: label %u links itself", u);
                if (st->levels[v] < l)
                    return shoal__fail(index, SHOAL_ECORRUPT,
                                       "hnsw: label %u links %u above its level", u, v);
                for (uint32_t j = 1; j < i; j++)
                    if (lu[j] == v)
                        return shoal__fail(index, SHOAL_ECORRUPT,
                                           "hnsw: label %u links %u twice on level %u", u, v, l);
            }
        }
        /* rev[u]: each entry w appears as often as w links u. */
        const uint32_t *r = st->rev ? st->rev[u] : NULL; /* a view keeps none */
        uint32_t rn = r ? r[0] : 0;
        rev_total += rn;
        for (uint32_t i = 0; i < rn; i++) {
            uint32_t w = r[2 + i], times = 0, linked = 0;
            if (w >= bound || !in_graph(st, w))
                return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: label %u has bad in-link %u",
                                   u, w);
            for (uint32_t j = 0; j < rn; j++) times += r[2 + j] == w;
            uint32_t top = st->levels[w] < L ? st->levels[w] : L;
            for (uint32_t l = 0; l <= top; l++)
                linked += (uint32_t)list_contains(links_at(st, w, l), u);
            if (times != linked)
                return shoal__fail(index, SHOAL_ECORRUPT,
                                   "hnsw: in-links of %u list %u %u times for %u links", u, w,
                                   times, linked);
        }
    }
    if (live != index->live || live != st->nodes)
        return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: %u nodes, %u live, %u counted", st->nodes,
                           index->live, live);
    if (st->rev && links_total != rev_total)
        return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: %llu links but %llu in-links",
                           (unsigned long long)links_total, (unsigned long long)rev_total);
    if (live == 0) {
        if (st->entry != SHOAL_NO_LABEL)
            return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: empty graph has an entry point");
        return SHOAL_OK;
    }
    if (st->entry >= bound || !in_graph(st, st->entry) || st->levels[st->entry] != st->top ||
        st->top != max_level)
        return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: entry point %u (top %u, highest %u)",
                           st->entry, st->top, max_level);

    return level0_reachable(index, st, live);
}

static void hnsw_stats(const shoal_index *index, shoal_stats *out) {
    const hnsw_state *st = state_of(index);
    out->levels = st->entry == SHOAL_NO_LABEL ? 0 : st->top + 1;
    uint64_t degree = 0;
    for (uint32_t label = 0; label < index->label_bound; label++)
        if (in_graph(st, label)) degree += links_at(st, label, 0)[0];
    out->mean_degree = st->nodes ? (double)degree / st->nodes : 0.0;
    /* The chunks the copies own (chunk 0 is full once there is a second). */
    const shoal__rowchunks *rows = &st->rows;
    if (st->copies && !rows->borrowed && rows->n_chunks)
        out->rerank_bytes = (rows->n_chunks == 1 ? (size_t)rows->cap
                                                 : (size_t)rows->n_chunks << rows->shift) *
                            rows->stride;
}

static void hnsw_destroy(shoal_index *index) {
    hnsw_state *st = state_of(index);
    if (!st) return;
    shoal__mem *mem = &index->mem;
    for (uint32_t label = 0; label < st->cap; label++) {
        if (st->upper) shoal__free(mem, st->upper[label]);
        if (st->rev) shoal__free(mem, st->rev[label]);
    }
    shoal__rowchunks_free(mem, &st->level0);
    shoal__free(mem, st->levels);
    shoal__free(mem, st->upper);
    shoal__free(mem, st->rev);
    shoal__free(mem, st->queue);
    shoal__free(mem, st->s.visit);
    shoal__free(mem, st->s.cand);
    shoal__free(mem, st->s.res);
    shoal__free(mem, st->pool);
    shoal__free(mem, st->sel);
    shoal__free(mem, st->tmp);
    shoal__free(mem, st->old);
    shoal__free(mem, st->work);
    for (uint32_t i = 0; i < st->kept_n; i++) shoal__free(mem, st->kept[i].upper);
    shoal__free(mem, st->kept);
    shoal__free(mem, st->created);
    shoal__free(mem, st->log);
    shoal__free(mem, st->touched);
    shoal__free(mem, st->train);
    shoal__rowchunks_free(mem, &st->rows);
    shoal__free(mem, st->q_labels);
    shoal__free(mem, st->q_levels);
    shoal__free(mem, st->q_coff);
    shoal__free(mem, st->q_off);
    shoal__free(mem, st->q_redo);
    shoal__free(mem, st->q_items);
    shoal__free(mem, st->q_count);
    for (uint32_t t = 0; t < st->n_workers; t++) {
        shoal__free(mem, st->workers[t].visit);
        shoal__free(mem, st->workers[t].cand);
        shoal__free(mem, st->workers[t].res);
    }
    shoal__free(mem, st->workers);
    shoal__free(mem, st->center);
    shoal__free(mem, st->slack);
    shoal__free(mem, st->qcodes);
    shoal__free(mem, st->decoded);
    shoal__free(mem, st);
    index->kind_state = NULL;
}

/* -------------------------------------------------------------- segments */

/*
 * Sections (docs/FORMAT.md): HNSW_LEVELS (a byte per label, 0xff = dead),
 * HNSW_BASE (the level-0 block exactly as in memory: label_bound rows of
 * `stride` bytes, dead rows and unused slots zero), HNSW_UPPER (per node of
 * level L > 0, in label order, L lists of 1 + M uint32), then for SQ8 the
 * quantizer (HNSW_SQ8) and, before it is trained, the float32 rows
 * (VECTORS).  The reverse links are not stored: they follow from the
 * links and are rebuilt on load, in canonical order (by linking label,
 * then level).  XXX: a delete repairs in-neighbours in rev order, so
 * deletes after a load can repair in a different order than the same
 * deletes on the original would (the graph at load time is identical;
 * inserts after a load are identical too).
 */

static size_t hnsw_vec_bytes(const hnsw_state *st) {
    return st->sq8 ? sizeof(float) + st->dim : (size_t)st->dim * sizeof(float);
}

static uint64_t hnsw_upper_total(const shoal_index *index, const hnsw_state *st) {
    uint64_t total = 0;
    for (uint32_t label = 0; label < index->label_bound; label++)
        if (in_graph(st, label)) total += st->levels[label];
    return total;
}

static void hnsw_save_config(const shoal_index *index, uint32_t kp[10]) {
    const hnsw_state *st = state_of(index);
    kp[0] = st->M;
    kp[1] = st->ef_construction;
    kp[2] = st->ef_search;
    kp[3] = (uint32_t)index->params.quantizer;
    kp[4] = (uint32_t)(st->sq8 && st->trained);
    kp[5] = st->entry;
    kp[6] = st->top;
    kp[7] = (uint32_t)hnsw_upper_total(index, st);
    kp[8] = st->rerank;
    kp[9] = st->batch;
}

/* Writes the list [count, links...] of max slots at p, unused slots zero. */
static void put_list(uint8_t *p, const uint32_t *list) {
    shoal__put_u32(p, list[0]);
    shoal__put_u32s(p + 4, list + 1, list[0]);
}

static int hnsw_save(const shoal_index *index, shoal__seg_writer *w) {
    const hnsw_state *st = state_of(index);
    uint32_t bound = index->label_bound, M = st->M;
    uint8_t *p = shoal__seg_begin(w, SHOAL__SEC_HNSW_LEVELS, 0, bound);
    if (!p) return SHOAL_ENOMEM;
    if (bound) memcpy(p, st->levels, bound);
    shoal__seg_end(w);

    p = shoal__seg_begin(w, SHOAL__SEC_HNSW_BASE, 0, (uint64_t)bound * st->stride);
    if (!p) return SHOAL_ENOMEM;
    for (uint32_t label = 0; label < bound; label++) {
        if (!in_graph(st, label)) continue;
        uint8_t *row = p + (size_t)label * st->stride;
        if (!st->sq8)
            shoal__put_u32s(row, node_block(st, label), st->dim);
        else if (st->trained) {
            shoal__put_f32(row, oc_of(st, label));
            memcpy(row + 4, codes_of(st, label), st->dim);
        }
        put_list(row + st->link_offset, links_at(st, label, 0));
    }
    shoal__seg_end(w);

    uint64_t upper = hnsw_upper_total(index, st);
    p = shoal__seg_begin(w, SHOAL__SEC_HNSW_UPPER, 0, upper * (1 + M) * 4);
    if (!p) return SHOAL_ENOMEM;
    for (uint32_t label = 0; label < bound; label++) {
        if (!in_graph(st, label)) continue;
        for (uint32_t l = 1; l <= st->levels[label]; l++, p += (size_t)(1 + M) * 4)
            put_list(p, links_at(st, label, l));
    }
    shoal__seg_end(w);

    if (st->sq8) {
        p = shoal__seg_begin(w, SHOAL__SEC_HNSW_SQ8, 0, 16 + 4ull * st->dim);
        if (!p) return SHOAL_ENOMEM;
        if (st->trained) {
            shoal__put_f32(p, st->scale);
            shoal__put_f32(p + 4, st->scale_sq);
            shoal__put_f32(p + 8, st->center_sq);
            shoal__put_u32s(p + 16, st->center, st->dim);
        }
        shoal__seg_end(w);
        if (st->trained && st->copies) {
            /* Each record's rerank bound against its copy, for a reader
             * that leaves the copies in the segment (see load_slack). */
            p = shoal__seg_begin(w, (uint32_t)SHOAL__SEC_HNSW_SLACK, 0, 8ull * bound);
            if (!p) return SHOAL_ENOMEM;
            for (uint32_t label = 0; label < bound; label++)
                if (in_graph(st, label)) {
                    shoal__put_f32(p + 8 * (size_t)label, st->slack[label].err);
                    shoal__put_f32(p + 8 * (size_t)label + 4, st->slack[label].rr);
                }
            shoal__seg_end(w);
        }
        if (!st->trained || st->copies) {
            size_t row = (size_t)st->dim * 4;
            p = shoal__seg_begin(w, SHOAL__SEC_VECTORS, 0, (uint64_t)bound * row);
            if (!p) return SHOAL_ENOMEM;
            for (uint32_t label = 0; label < bound; label++)
                if (in_graph(st, label)) shoal__put_u32s(p + label * row, f32_row(st, label), st->dim);
            shoal__seg_end(w);
        }
    }
    return SHOAL_OK;
}

/* Validates the list at p (max slots) of label u on level l; levels and
 * liveness are already loaded.  mark: label_bound zeroed bytes of scratch,
 * left zeroed. */
static int check_list(shoal_index *index, const hnsw_state *st, const uint8_t *p, uint32_t u,
                      uint32_t l, uint8_t *mark) {
    uint32_t max = max_links(st, l), count = shoal__get_u32(p);
    int rc = SHOAL_OK;
    if (count > max)
        return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: label %u has %u links on level %u", u,
                           count, l);
    uint32_t i;
    for (i = 0; i < count && !rc; i++) {
        uint32_t v = shoal__get_u32(p + 4 + 4 * (size_t)i);
        if (v >= index->label_bound || !in_graph(st, v) || v == u || st->levels[v] < l ||
            mark[v])
            rc = shoal__fail(index, SHOAL_ECORRUPT,
                             "hnsw: label %u links %u on level %u (dead, itself, above its "
                             "level, repeated or out of range)", u, v, l);
        else
            mark[v] = 1;
    }
    for (uint32_t j = 0; j < i; j++) {
        uint32_t v = shoal__get_u32(p + 4 + 4 * (size_t)j);
        if (v < index->label_bound) mark[v] = 0;
    }
    if (!rc && !shoal__all_zero(p + 4 + 4 * (size_t)count, 4 * (size_t)(max - count)))
        rc = shoal__fail(index, SHOAL_ECORRUPT, "hnsw: label %u has stale slots on level %u", u, l);
    return rc;
}

/* The vectors section's rows: finite for nodes, zero for dead labels. */
static int check_rows(shoal_index *index, const hnsw_state *st, const uint8_t *raw) {
    size_t row = (size_t)st->dim * 4;
    for (uint32_t label = 0; label < index->label_bound; label++) {
        const uint8_t *v = raw + label * row;
        if (in_graph(st, label) ? shoal__first_nonfinite(v, st->dim) != st->dim
                                : !shoal__all_zero(v, row))
            return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: float32 row %u is invalid", label);
    }
    return SHOAL_OK;
}

/* External rerank rows: only where the vectors section lies (it must be
 * stored raw: each row is read at its offset); its rows are checked when
 * the bytes given hold them.  A traversal that reads float32 rows (before
 * training, or with no sq8 fit) cannot leave them out. */
static int locate_rows(shoal_index *index, shoal__seg_reader *r, hnsw_state *st) {
    if (!st->trained)
        return shoal__fail(index, SHOAL_EUNSUPPORTED,
                           "hnsw: the index traverses its float32 rows (under 1024 records, or "
                           "no sq8 fit): external rerank rows need a trained quantizer; load it "
                           "whole");
    shoal__seg_section sec;
    const uint8_t *raw;
    uint64_t size = (uint64_t)index->label_bound * st->dim * 4;
    int rc = shoal__seg_locate(r, SHOAL__SEC_VECTORS, 0, size, &sec, &raw);
    if (rc) return rc;
    if (sec.codec != 0)
        return shoal__fail(index, SHOAL_EUNSUPPORTED,
                           "hnsw: the rerank rows are zstd-compressed; external rerank rows need "
                           "a segment saved with zstd level 0");
    if (raw && (rc = check_rows(index, st, raw))) return rc;
    st->rows_at = sec.offset;
    return SHOAL_OK;
}

/* The hnsw slack section (optional; written with rerank copies): each
 * record's err and rr against its copy, as sq8_slack computed them when the
 * copy was stored.  Values must be non-negative (+inf for rows so large
 * that a bound overflowed: never skipped), zero for dead labels (read into
 * st->slack, *stored set).  A reader holding the copies
 * computes them again and requires the same bits (hnsw_load), so a segment
 * that loads whole has bounds that hold for its rows; one that leaves the
 * copies in the segment cannot check them and takes them, so its
 * candidates' floors are the in-memory skip bound instead of the looser
 * one from the codes alone (sq8_slack_unread).  (A host's rule, shoal.h,
 * still reads a few more rows than the in-memory rerank, which tightens
 * its threshold row by row.)  (A hostile segment with bounds too low can
 * make such a host skip rows it should read: see sq8_slack_unread.)  A
 * segment without the section (written before it existed) gets the bound
 * from the codes. */
static int load_slack(shoal_index *index, shoal__seg_reader *r, hnsw_state *st, int *stored) {
    uint32_t bound = index->label_bound;
    const uint8_t *raw;
    int borrow;
    int rc = shoal__seg_maybe(r, (uint32_t)SHOAL__SEC_HNSW_SLACK, 0, 8ull * bound, &raw, &borrow);
    if (rc <= 0) return rc;
    if (bound && !(st->slack = shoal__calloc(&index->mem, bound, sizeof *st->slack)))
        return shoal__fail(index, SHOAL_ENOMEM, "out of memory for %u nodes", bound);
    for (uint32_t label = 0; label < bound; label++) {
        float err = shoal__get_f32(raw + 8 * (size_t)label);
        float rr = shoal__get_f32(raw + 8 * (size_t)label + 4);
        int live = in_graph(st, label);
        if (live ? !(err >= 0.0f && rr >= 0.0f) : (err != 0.0f || rr != 0.0f))
            return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: bad slack for label %u", label);
        st->slack[label].err = err;
        st->slack[label].rr = rr;
    }
    *stored = 1;
    return SHOAL_OK;
}

static int hnsw_load(shoal_index *index, shoal__seg_reader *r, const uint32_t kp[10]) {
    hnsw_state *st = state_of(index);
    uint32_t bound = index->label_bound, M = st->M, dim = st->dim;
    int view = r->view, rc, borrow;
    const uint8_t *raw;
    if (!st->copies) index->rows_external = 0; /* nothing to leave out */
    /* (kp[8], the rerank depth, is checked as a parameter, and against the
     * HNSW_COPIES feature bit by persist.c; kp[9], build_batch, as a
     * parameter.) */
    if (kp[4] > (uint32_t)st->sq8)
        return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: bad config words");
    /* ef sizes scratch arrays: a hostile value must not become a huge
     * allocation at the first search.  (XXX: an index created with a larger
     * ef cannot be loaded.) */
    if (st->ef_construction > HNSW_EF_LOAD_MAX || st->ef_search > HNSW_EF_LOAD_MAX)
        return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: ef_construction %u / ef_search %u "
                           "above %u", st->ef_construction, st->ef_search, HNSW_EF_LOAD_MAX);
    st->trained = (int)kp[4];
    uint32_t entry = kp[5], top = kp[6];
    uint64_t upper_total = kp[7];
    if (upper_total > (uint64_t)index->live * HNSW_LEVEL_MAX)
        return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: %llu upper lists for %u nodes",
                           (unsigned long long)upper_total, index->live);

    /* Levels. */
    if ((rc = shoal__seg_next(r, SHOAL__SEC_HNSW_LEVELS, 0, bound, &raw, &borrow))) return rc;
    uint64_t sum = 0;
    uint32_t highest = 0;
    for (uint32_t label = 0; label < bound; label++) {
        uint32_t L = raw[label];
        if (shoal__is_alive(index, label) ? L > HNSW_LEVEL_MAX : L != HNSW_NOT_IN_GRAPH)
            return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: label %u has level %u", label, L);
        if (L != HNSW_NOT_IN_GRAPH) {
            sum += L;
            if (L > highest) highest = L;
        }
    }
    if (sum != upper_total)
        return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: levels sum to %llu, config says %llu",
                           (unsigned long long)sum, (unsigned long long)upper_total);
    if (index->live ? entry >= bound || !shoal__is_alive(index, entry) || raw[entry] != top ||
                          top != highest
                    : entry != SHOAL_NO_LABEL || top != 0)
        return shoal__fail(index, SHOAL_ECORRUPT, "hnsw: entry point %u at level %u", entry, top);
    if (bound) {
        st->levels = shoal__alloc(&index->mem, bound);
        st->upper = shoal__calloc(&index->mem, bound, sizeof *st->upper);
        st->s.visit = shoal__calloc(&index->mem, bound, sizeof *st->s.visit);
        /* The journal marks too: a delete may be the first change. */
        if (!view) st->rev = shoal__calloc(&index->mem, bound, sizeof *st->rev);
        if (!view) st->touched = shoal__calloc(&index->mem, ((size_t)bound + 7) / 8, 1);
        if (!st->levels || !st->upper || !st->s.visit || (!view && (!st->rev || !st->touched)))
            return shoal__fail(index, SHOAL_ENOMEM, "out of memory for %u nodes", bound);
        memcpy(st->levels, raw, bound);
        st->cap = st->s.visit_cap = bound;
    }
    uint8_t *mark = shoal__calloc(&index->mem, bound ? bound : 1, 1);
    if (!mark) return shoal__fail(index, SHOAL_ENOMEM, "out of memory for %u nodes", bound);

    /* Level 0. */
    size_t vec = hnsw_vec_bytes(st);
    if ((rc = shoal__seg_next(r, SHOAL__SEC_HNSW_BASE, 0, (uint64_t)bound * st->stride, &raw,
                              &borrow)))
        goto done;
    for (uint32_t label = 0; label < bound && !rc; label++) {
        const uint8_t *row = raw + (size_t)label * st->stride;
        if (!in_graph(st, label)) {
            if (!shoal__all_zero(row, st->stride))
                rc = shoal__fail(index, SHOAL_ECORRUPT, "hnsw: dead row %u is not zero", label);
            continue;
        }
        int bad;
        if (!st->sq8)
            bad = shoal__first_nonfinite(row, dim) != dim;
        else if (!st->trained)
            bad = !shoal__all_zero(row, vec);
        else {
            bad = shoal__first_nonfinite(row, 1) != 1;
            for (uint32_t j = 0; j < dim && !bad; j++) bad = row[4 + j] == 0x80;
        }
        if (bad || !shoal__all_zero(row + vec, st->link_offset - vec))
            rc = shoal__fail(index, SHOAL_ECORRUPT, "hnsw: the vector of label %u is invalid",
                             label);
        if (!rc) rc = check_list(index, st, row + st->link_offset, label, 0, mark);
        size_t end = st->link_offset + (1 + (size_t)st->M0) * 4;
        if (!rc && !shoal__all_zero(row + end, st->stride - end))
            rc = shoal__fail(index, SHOAL_ECORRUPT, "hnsw: row %u padding is not zero", label);
    }
    if (rc) goto done;
    if (borrow ? shoal__rowchunks_borrow(&index->mem, &st->level0, raw, bound)
               : shoal__rowchunks_reserve(&index->mem, &st->level0, bound)) {
        rc = shoal__fail(index, SHOAL_ENOMEM, "out of memory for the level-0 rows");
        goto done;
    }
    if (!borrow && bound) {
        if (shoal__little_endian()) {
            /* Chunk by chunk: rows never straddle one. */
            uint32_t per = 1u << st->level0.shift;
            for (uint32_t c = 0; c < st->level0.n_chunks; c++) {
                uint32_t first = c * per, n = bound - first < per ? bound - first : per;
                memcpy(st->level0.chunks[c], raw + (size_t)first * st->stride, (size_t)n * st->stride);
            }
        } else {
            for (uint32_t label = 0; label < bound; label++) {
                unsigned char *row = node_block(st, label);
                const uint8_t *in = raw + (size_t)label * st->stride;
                memcpy(row, in, st->stride);
                if (!st->sq8) shoal__get_u32s(row, in, dim);
                if (st->sq8) {
                    float oc = shoal__get_f32(in);
                    memcpy(row, &oc, 4);
                }
                shoal__get_u32s(row + st->link_offset, in + st->link_offset, 1 + st->M0);
            }
        }
    }

    /* Upper levels. */
    size_t list_bytes = (size_t)(1 + M) * 4;
    if ((rc = shoal__seg_next(r, SHOAL__SEC_HNSW_UPPER, 0, upper_total * list_bytes, &raw,
                              &borrow)))
        goto done;
    for (uint32_t label = 0; label < bound && !rc; label++) {
        if (!in_graph(st, label) || st->levels[label] == 0) continue;
        uint32_t L = st->levels[label];
        for (uint32_t l = 1; l <= L && !rc; l++)
            rc = check_list(index, st, raw + (size_t)(l - 1) * list_bytes, label, l, mark);
        if (rc) break;
        st->upper[label] = shoal__alloc(&index->mem, L * list_bytes);
        if (!st->upper[label]) {
            rc = shoal__fail(index, SHOAL_ENOMEM, "out of memory for upper levels");
            break;
        }
        shoal__get_u32s(st->upper[label], raw, (size_t)L * (1 + M));
        raw += L * list_bytes;
    }
    if (rc) goto done;

    /* SQ8 quantizer, and the float32 rows before it is trained. */
    if (st->sq8) {
        if ((rc = shoal__seg_next(r, SHOAL__SEC_HNSW_SQ8, 0, 16 + 4ull * dim, &raw, &borrow)))
            goto done;
        if (!st->trained) {
            if (!shoal__all_zero(raw, 16 + 4 * (size_t)dim))
                rc = shoal__fail(index, SHOAL_ECORRUPT, "hnsw: untrained sq8 has parameters");
        } else {
            st->scale = shoal__get_f32(raw);
            st->scale_sq = shoal__get_f32(raw + 4);
            st->center_sq = shoal__get_f32(raw + 8);
            if (!(st->scale > 0.0f) || shoal__first_nonfinite(raw, 3) != 3 ||
                st->scale_sq != st->scale * st->scale || shoal__get_u32(raw + 12) ||
                shoal__first_nonfinite(raw + 16, dim) != dim)
                rc = shoal__fail(index, SHOAL_ECORRUPT, "hnsw: bad sq8 parameters");
            else
                shoal__get_u32s(st->center, raw + 16, dim);
            if (!rc && !(shoal__sq8_reach(dim, st->center, st->scale) < SHOAL__SQ8_REACH_MAX))
                rc = shoal__fail(index, SHOAL_ECORRUPT,
                                 "hnsw: sq8 parameters reach past float32 (no index writes them)");
        }
        int stored_slack = 0;
        if (!rc && st->trained && st->copies) rc = load_slack(index, r, st, &stored_slack);
        if (!rc && index->rows_external) {
            rc = locate_rows(index, r, st);
        } else if (!rc && (!st->trained || st->copies)) {
            size_t row = (size_t)dim * 4;
            if ((rc = shoal__seg_next(r, SHOAL__SEC_VECTORS, 0, (uint64_t)bound * row, &raw,
                                      &borrow)))
                goto done;
            rc = check_rows(index, st, raw);
            if (!rc && bound && st->copies) {
                /* The rerank copies: lent by a view, else copied chunk by chunk. */
                if (borrow) {
                    if (shoal__rowchunks_borrow(&index->mem, &st->rows, raw, bound))
                        rc = shoal__fail(index, SHOAL_ENOMEM, "out of memory for float32 rows");
                } else if (shoal__rowchunks_reserve(&index->mem, &st->rows, bound)) {
                    rc = shoal__fail(index, SHOAL_ENOMEM, "out of memory for float32 rows");
                } else {
                    for (uint32_t label = 0; label < bound; label++)
                        shoal__get_u32s(shoal__row(&st->rows, label), raw + label * row, dim);
                }
            } else if (!rc && bound) {
                st->train = shoal__alloc(&index->mem, (size_t)bound * row);
                if (!st->train)
                    rc = shoal__fail(index, SHOAL_ENOMEM, "out of memory for float32 rows");
                else
                    shoal__get_u32s(st->train, raw, (size_t)bound * dim);
            }
        }
        /* The rerank bounds, from the rows just checked (a pass over them
         * like the check's; views too: the array is the index's own), or
         * without the rows from the codes alone. */
        if (!rc && bound && !st->slack &&
            !(st->slack = shoal__calloc(&index->mem, bound, sizeof *st->slack)))
            rc = shoal__fail(index, SHOAL_ENOMEM, "out of memory for %u nodes", bound);
        for (uint32_t label = 0; !rc && st->trained && label < bound; label++) {
            if (!in_graph(st, label)) continue;
            hnsw_slack saved = st->slack[label];
            if (stored_slack && index->rows_external) { /* err and rr saved, xx from the codes */
                st->slack[label].xx = sq8_slack(index, st, codes_of(st, label), NULL).xx;
                continue;
            }
            sq8_set_slack(index, st, label);
            if (stored_slack &&
                (st->slack[label].err != saved.err || st->slack[label].rr != saved.rr))
                rc = shoal__fail(index, SHOAL_ECORRUPT,
                                 "hnsw: the slack section disagrees with the row of label %u",
                                 label);
        }
        if (rc) goto done;
    }
    st->entry = entry;
    st->top = top;
    st->nodes = index->live;
    /* The links are valid one by one; the graph must also hold together,
     * or records would load that no search can find. */
    if ((rc = level0_reachable(index, st, index->live))) goto done;

    /* Reverse links, rebuilt in canonical order (not for views: they
     * serve deletes only). */
    if (!view) {
        for (uint32_t u = 0; u < bound && !rc; u++) {
            if (!in_graph(st, u)) continue;
            for (uint32_t l = 0; l <= st->levels[u] && !rc; l++) {
                const uint32_t *list = links_at(st, u, l);
                for (uint32_t i = 1; i <= list[0] && !rc; i++) {
                    if (rev_reserve(index, st, list[i], 1))
                        rc = shoal__fail(index, SHOAL_ENOMEM, "out of memory for in-links");
                    else
                        link_added(st, u, list[i], l);
                }
            }
        }
    }
done:
    shoal__free(&index->mem, mark);
    return rc;
}

const shoal__kind_ops shoal__hnsw_ops = {
    .name = "hnsw",
    .create = hnsw_create,
    .reserve = hnsw_reserve,
    .begin = hnsw_begin,
    .insert = hnsw_insert,
    .insert_done = hnsw_insert_done,
    .remove = hnsw_remove,
    .commit = hnsw_commit,
    .abort = hnsw_abort,
    .vector = hnsw_vector,
    .search = hnsw_search,
    .check = hnsw_check,
    .stats = hnsw_stats,
    .destroy = hnsw_destroy,
    .save_config = hnsw_save_config,
    .save = hnsw_save,
    .load = hnsw_load,
    .candidates = hnsw_candidates,
    .reranks = hnsw_reranks,
};

uint32_t shoal__hnsw_entry_point(const shoal_index *index) {
    if (index->ops != &shoal__hnsw_ops) return SHOAL_NO_LABEL;
    return state_of(index)->entry;
}

uint32_t *shoal__hnsw_links(shoal_index *index, uint32_t label, uint32_t level) {
    if (index->ops != &shoal__hnsw_ops) return NULL;
    hnsw_state *st = state_of(index);
    if (label >= index->label_bound || !in_graph(st, label) || level > st->levels[label]) return NULL;
    return links_at(st, label, level);
}
