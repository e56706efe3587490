/*
 * ivf.c -- approximate search over inverted lists (kind "ivf"): IVF-Flat,
 * IVF-SQ8 and IVF-PQ, the last also as 4-bit "fast scan" PQ.
 *
 * What it is
 *   Training runs k-means (kmeans.c) on a sample of vectors; its nlist
 *   centroids split the space into cells.  Every record goes to the list of
 *   its nearest centroid (squared L2), encoded by the index's quantizer.  A
 *   search ranks the centroids against the query, scans the nprobe best
 *   lists and keeps the k best records found there.  Jegou, Douze & Schmid,
 *   "Product quantization for nearest neighbor search" (2011), is the
 *   reference design; faiss's IndexIVFFlat / IndexIVFScalarQuantizer /
 *   IndexIVFPQ / IndexIVFPQFastScan are the reference implementations.
 *
 * Quantizers (all but flat encode the residual r = x - centroid)
 *   flat  the float32 vector itself; distances are exact within the probed
 *         lists.
 *   sq8   per vector: ||d||^2 as a float, then dim int8 codes, where the
 *         decoded residual is d[j] = center[j] + scale * code[j] -- a
 *         per-dimension center, ONE scale for every dimension (as in
 *         hnsw.c), so that exact integer kernels apply.  The query residual
 *         q - c is quantized with its own scale s (max |.| / qmax) into
 *         int16 qq, qmax = shoal__i16_qmax(dim) (21568 at dim 784), and
 *           ||q - x||^2 ~ ||q-c||^2 - 2 ((q-c).center + scale s dot_i16_i8(qq, code)) + ||d||^2
 *           q . x       ~ q.c + q.center + scale s' dot_i16_i8(qq', code)
 *         (for ip/cosine qq' quantizes q itself, once per query).  The sums
 *         are exact integers, so every build ranks alike.  The query used
 *         to be int8 like the codes: on Fashion-MNIST (nlist 256, every list
 *         probed, no rerank) int16 raises recall@10 from 0.9934 to 0.99415
 *         (bench/ivf_native.c), and nearly all that is left is the codes'
 *         own step (an exact float query: 0.9943 in a numpy model).  Codes
 *         are unchanged.
 *         Measured and rejected (the numpy model, exact query): a scale per
 *         dimension (0.9948: the residual ranges are alike, median 446 and
 *         max 486), a scale per list (0.9949), per list and dimension
 *         (0.976: ranges fitted on a list's few sample rows clamp the rest).
 *         Past that ceiling is the float32 rerank (rerank > 0).
 *   pq    m sub-quantizers of dsub = dim / m dimensions, each a codebook of
 *         ksub = 2^bits centroids trained by k-means on residual
 *         sub-vectors.  Distances are table lookups (asymmetric distance
 *         computation): per probed list (l2) or once per query (ip/cosine,
 *         where q.x = q.c + sum_j q_j . y_j splits into a per-list constant
 *         and a list-free table), table[j][c] holds the sub-distance to
 *         code c, and a record's distance is sum_j table[j][code_j], summed
 *         in j order in float (8-bit scans run four records' sums side by
 *         side: four dependent chains in flight instead of one).
 *   pq4   (pq_bits 4) the same with 16 codes per sub-quantizer, so that each
 *         table row fits one 128-bit register and SIMD byte shuffles (AVX2
 *         vpshufb, AVX-512BW, WASM i8x16.swizzle) look up 16 or 32 records at
 *         once (Andre, Kermarrec & Le Scouarnec, "Cache locality is not
 *         enough: high-performance nearest neighbor search with product
 *         quantization fast scan", 2015; "Quicker ADC", 2017).  The float
 *         table is turned into uint8: row j loses its minimum, then one
 *         common step delta = max(max_j range_j / 255, sum_j range_j /
 *         (65535 - m2)) maps it to 0..255, so that any sum of m2 entries
 *         fits uint16.  The kernels then return exact integers, the same in
 *         every build (the scalar kernel is the reference, tests compare);
 *         the float distance is base + delta * sum.  Records are stored in
 *         blocks of 32: per sub-quantizer 16 bytes, byte i holding record
 *         i's code in its low nibble and record i+16's in its high nibble
 *         (kernels.h).  m is padded to an even m2 with zero rows.  This
 *         layout is ours, not faiss's (which interleaves pairs of
 *         sub-quantizers differently and accumulates in 8-bit lanes with a
 *         later correction); ours is simpler and exact.
 *
 * PQ tables (l2)
 *   By residual, a probed list's table depends on the list: ||q - c - y||^2
 *   for every code y of every sub-quantizer, dim * ksub subtractions,
 *   multiplications and adds per list, then (pq4) the quantization of the
 *   table to bytes.  That was two thirds of pq4 search time on
 *   Fashion-MNIST.  Two remedies, both here:
 *   - Loops compilers vectorize: the codes are the inner, contiguous loop
 *     over a local accumulator (no aliasing to fear), and the byte
 *     quantization runs in stages (scale, clamp, round, clamp, convert)
 *     with row minima and maxima as a fixed tree -- the same operations in
 *     the same order as scalar code, so the same bits in every build.
 *     Table building fell to two fifths of search time, QPS rose 30-40%.
 *   - faiss's precomputed tables: ||q - c - y||^2 = ||q - c||^2 +
 *     (||y||^2 + 2 c.y) - 2 q.y.  The middle term depends on (list, j, y)
 *     only and is tabled (nlist * m * ksub floats, built by the first
 *     search and counted in codes_bytes); the last is one m * ksub table
 *     per query; ||q - c||^2 is the coarse step's distance.  A list's table
 *     is then one add per entry.  It pays only where computing an entry
 *     costs more than loading it: +12% QPS for pq4 at dsub 4, +19% for pq8,
 *     nothing at pq4's dsub 2 (the tabled terms stream in from memory,
 *     6.1 MiB at nlist 256 and m 392, no faster than the arithmetic runs
 *     from the L1-resident codebooks).  So pq_tables = 0 (auto) uses them
 *     from dsub 4 on while they are no larger than the codes; 1 never, 2
 *     always.  The decision is a function of the index's state (never of
 *     an allocation that happened to succeed): the two forms round
 *     differently.
 *
 * Rerank and where its float32 vectors live
 *   With rerank R > 0 (sq8 and pq only), the R best candidates by quantized
 *   distance are re-scored exactly against float32 copies of the vectors,
 *   and the k best of those are returned.  The copies are the expensive
 *   part: at Fashion-MNIST's dim 784, a pq4 record costs 196 code bytes and
 *   its float32 copy 3136.  So the copies are NOT mixed into the codes: each
 *   list keeps them in a section of their own (`rerank`, count * dim floats
 *   in list order), and shoal_stats reports them apart (rerank_bytes) from
 *   what a scan reads (codes_bytes).  An index built in memory keeps both,
 *   and memory_bytes counts both -- so it is NOT smaller than a float32
 *   index; only codes_bytes is (~0.1x for pq4 at dim 784).
 *
 *   External rerank rows (shoal_load_params.rerank_external) leave the
 *   copies in the segment.  Each list remembers where its rerank section
 *   begins; a search is then two calls around the host's reads: phase 1
 *   (ivf_candidates) scans the codes and hands out the candidate heap, in
 *   its array order, with each row's offset; the host reads R rows of
 *   dim * 4 bytes from wherever the segment lives; phase 2 (index.c)
 *   pushes their exact distances in that order -- what ivf_search does with
 *   resident copies, so both give the same bits.  Rows must be stored raw
 *   (zstd level 0) to be addressable; those that arrive are checked to be
 *   finite (the section's CRC covers all of it, so a row read alone is not
 *   CRC-checked: a content-addressed host checks its blocks).  A lazily
 *   opened index attaches each list without its rows: the hole between
 *   the rerank section's start and the next section is left out of the
 *   window the list's sections are read from (segment.c).  Such an index
 *   is read-only: nothing it holds could be saved.
 *   Rejected: fetching the rerank section of each probed list (attach,
 *   rerank, drop, or an LRU of lists).  It needs no second call, but a
 *   query reads nprobe * 234 rows (5.9 MB at nprobe 8 on Fashion-MNIST)
 *   where two phases read R (157 KB at R = 50).  Rejected too: a cheaper
 *   resident tier (per-dimension SQ8 rows) before float32 -- at dim 784
 *   it is 784 bytes a record, as large as a whole IVF-SQ8 index.  And
 *   "rerank from a separate flat index" (faiss's IndexRefine), whose rows
 *   are indexed by label and cannot be fetched per list.
 *
 * Lists
 *   A list is three contiguous arrays in the same order: labels (uint32),
 *   codes, and the optional rerank section.  Nothing in a list points
 *   elsewhere, so one list can be written, fetched and searched on its own.
 *   Per label, list_of / pos_of say where a record is; a delete moves the
 *   list's last record into the hole (O(code size), no tombstones), so a
 *   list holds live records only and a scan never tests liveness.
 *
 * Training
 *   shoal_index_train, or the first add of at least `auto-train minimum`
 *   vectors (max(hard minimum, 39 * nlist), or 1000 when nlist is left to
 *   default).  A sample of at most max(train_sample * nlist, 16384 for pq)
 *   vectors is drawn without replacement (selection sampling, then shuffled
 *   so that any prefix is uniform); coarse k-means runs on its first
 *   train_sample * nlist rows, PQ codebooks on its first 16384 residuals,
 *   SQ8 ranges on all of it.  Memory is bounded by the sample, never n x
 *   nlist.  Training builds a complete new model (centroids, codebooks,
 *   lists) beside the old one and swaps only on success; a retrain
 *   re-encodes every record from its float32 vector (flat lists or rerank
 *   copies) or, lacking one, from its decoded approximation.  The PRNG
 *   state is copied and committed only on success, so a failed call changes
 *   nothing at all.
 *
 * Determinism
 *   Every float computation has a fixed order: kernel distances (the same
 *   bits in every build), tables summed sequentially in C with
 *   -ffp-contract=off, rounding written out as floor(x + 0.5) in float, no
 *   libm.  Fast-scan sums are exact integers.  Ties: centroids by index,
 *   results by insertion sequence (shoal__topk_push).
 *
 * Invariants (ivf_check)
 *   Untrained: no records.  Trained: every live label is in exactly one
 *   list, at list_of/pos_of; list counts sum to the live count; no list
 *   holds a dead label.
 *
 * XXX weaknesses
 *   - SQ8's single scale wastes levels on narrow dimensions (data whose
 *     ranges differ much, unlike the sets measured above).
 *   - pq4 tables are still quantized to bytes per probed list (m * 16
 *     entries, two passes): a third of pq4 search time.  faiss does the
 *     same; an 8-bit kernel over two tables (list and query terms) would
 *     avoid it at the price of a coarser sum.
 *   - External rerank rows make one row read per candidate; collections
 *     do not use them yet (a collection's blocks hold a list's codes and
 *     rows together, so a row would cost its whole block).
 *   - The last block of each pq4 list is on average half empty.
 *   - A filtered search decides whether a list holds a match by testing its
 *     records until one passes: a list without one costs a filter test
 *     per record.  Per-list summaries of the metadata would skip it.
 *   - Retraining without float32 vectors re-encodes decoded approximations,
 *     which compounds the quantization error.
 *   - Coarse assignment is brute force (nlist distances per record).
 *
 * Thread safety: none inside a handle (scratch lives in the state).
 */
#include <math.h>
#include <stdlib.h>

#include "kmeans.h"
#include "index/persist.h"
#include "index/sq8.h"

#define IVF_NLIST_MAX 65536u
#define IVF_ITERS_MAX 1000u
#define IVF_PQ_SAMPLE 16384u
#define IVF_MIN_PER_LIST 39u
#define IVF_AUTO_TRAIN_DEFAULT 1000u
#define BLOCK SHOAL_PQ4_BLOCK
#define IVF_TABLES_AUTO 0u
#define IVF_TABLES_NEVER 1u
#define IVF_TABLES_ALWAYS 2u


/* ------------------------------------------------------------------ state */

typedef struct ivf_list {
    uint32_t count, cap; /* records; capacity (pq4: a multiple of BLOCK) */
    uint32_t *labels;    /* cap */
    uint8_t *codes;      /* cap * code_size, or cap / BLOCK blocks (pq4) */
    float *rerank;       /* cap * dim float32 copies, or NULL */
    int borrowed;        /* labels and codes (and rerank unless rerank_owned)
                            point into a viewed segment */
    int rerank_owned;
    int missing;         /* a lazy index has not attached this list yet */
    uint64_t rows_at;    /* external rerank rows: where the list's rows begin
                            in the segment (rerank is NULL) */
} ivf_list;

/* Everything training produces; replaced as a whole by a retrain. */
typedef struct ivf_model {
    uint32_t nlist;
    float *centroids;  /* nlist * dim */
    float *sq_center;  /* sq8: dim */
    float sq_scale;    /* sq8 */
    float *codebooks;  /* pq: m * dsub * ksub, transposed: (j * dsub + t) * ksub + c */
    float *terms;      /* pq, l2, with tables: nlist * m * ksub query-free terms
                          ||y||^2 + 2 c.y (see "PQ tables"), or NULL */
    ivf_list *lists;   /* nlist */
} ivf_model;

typedef struct ivf_probe {
    float dist;
    uint32_t list;
} ivf_probe;

typedef struct ivf_state {
    uint32_t dim, quantizer, pq_m, pq_bits, ksub, dsub, m2;
    uint32_t nprobe, rerank, nlist_param, train_sample, train_iters, pq_tables;
    int copies;        /* rerank copies kept */
    size_t code_size;  /* bytes per record (not pq4) */
    size_t block_bytes; /* pq4: m2 * 16 */
    ivf_model *model;  /* NULL until trained */

    uint32_t *list_of, *pos_of, cap; /* per label */

    /* The current add's list per row (prepare_add -> insert). */
    uint32_t *batch, batch_cap, batch_n, batch_next;

    /* Search scratch, sized at training. */
    float *qres, *lut, *decoded;
    float *qterms;     /* pq, l2, with tables: the query's -2 q.y, m * ksub */
    float *lut_lo;     /* pq4: each table row's minimum */
    uint8_t *lut8, *pq_codes;
    int16_t *qcodes, *qcodes_ip; /* sq8: the query quantized to int16 */
    ivf_probe *probes;
    uint32_t probes_cap;
    shoal__hit *cand;
    uint32_t cand_cap;
} ivf_state;

static ivf_state *state_of(const shoal_index *index) { return index->kind_state; }

static int is_pq4(const ivf_state *st) {
    return st->quantizer == SHOAL_QUANTIZER_PQ && st->pq_bits == 4;
}

/* ---------------------------------------------------------------- params */

static uint32_t default_pq_m(uint32_t dim, uint32_t bits) {
    uint32_t min_dsub = bits == 4 ? 2 : 4;
    for (uint32_t dsub = min_dsub; dsub <= dim; dsub++)
        if (dim % dsub == 0) return dim / dsub;
    return 1;
}

static int ivf_create(shoal_index *index) {
    shoal_ivf_params *p = &index->params.ivf;
    shoal_quantizer quantizer = index->params.quantizer;
    uint32_t dim = index->params.dim;
    if (!shoal_quantizer_word(quantizer))
        return shoal__fail(index, SHOAL_EPARAM, "ivf quantizer = %u is unknown",
                           (unsigned)quantizer);
    if (p->nlist > IVF_NLIST_MAX)
        return shoal__fail(index, SHOAL_EPARAM, "ivf nlist = %u; the limit is %u", p->nlist,
                           IVF_NLIST_MAX);
    if (p->nlist && p->nprobe > p->nlist)
        return shoal__fail(index, SHOAL_EPARAM, "ivf nprobe = %u exceeds nlist = %u", p->nprobe,
                           p->nlist);
    if (quantizer != SHOAL_QUANTIZER_PQ && (p->pq_m || p->pq_bits || p->pq_tables))
        return shoal__fail(index, SHOAL_EPARAM,
                           "pq_m, pq_bits and pq_tables apply to the pq quantizer only");
    if (p->pq_tables > IVF_TABLES_ALWAYS)
        return shoal__fail(index, SHOAL_EPARAM,
                           "pq_tables = %u; it must be 0 (auto), 1 (never) or 2 (always)",
                           p->pq_tables);
    if (quantizer == SHOAL_QUANTIZER_PQ) {
        if (p->pq_bits == 0) p->pq_bits = 8;
        if (p->pq_bits != 4 && p->pq_bits != 8)
            return shoal__fail(index, SHOAL_EPARAM, "pq_bits = %u; it must be 4 or 8", p->pq_bits);
        if (p->pq_m == 0) p->pq_m = default_pq_m(dim, p->pq_bits);
        if (p->pq_m > dim || dim % p->pq_m)
            return shoal__fail(index, SHOAL_EPARAM, "pq_m = %u does not divide dim = %u", p->pq_m,
                               dim);
    }
    if (p->train_sample == 0) p->train_sample = 256;
    if (p->train_iters == 0) p->train_iters = 10;
    if (p->train_iters > IVF_ITERS_MAX)
        return shoal__fail(index, SHOAL_EPARAM, "train_iters = %u; the limit is %u",
                           p->train_iters, IVF_ITERS_MAX);

    ivf_state *st = shoal__calloc(&index->mem, 1, sizeof *st);
    if (!st) return SHOAL_ENOMEM;
    index->kind_state = st;
    st->dim = dim;
    st->quantizer = quantizer;
    st->nlist_param = p->nlist;
    st->nprobe = p->nprobe;
    st->rerank = index->params.rerank;
    st->copies = index->params.rerank > 0;
    st->train_sample = p->train_sample;
    st->train_iters = p->train_iters;
    st->pq_tables = p->pq_tables;
    switch (quantizer) {
    case SHOAL_QUANTIZER_F32:
        st->code_size = (size_t)dim * sizeof(float);
        break;
    case SHOAL_QUANTIZER_SQ8:
        st->code_size = sizeof(float) + dim;
        break;
    default:
        st->pq_m = p->pq_m;
        st->pq_bits = p->pq_bits;
        st->ksub = 1u << p->pq_bits;
        st->dsub = dim / p->pq_m;
        st->m2 = (p->pq_m + 1) & ~1u;
        st->code_size = p->pq_m;
        st->block_bytes = (size_t)st->m2 * 16;
    }
    st->decoded = shoal__alloc(&index->mem, (size_t)dim * sizeof(float));
    st->qres = shoal__alloc(&index->mem, (size_t)dim * sizeof(float));
    st->qcodes = shoal__alloc(&index->mem, (size_t)dim * sizeof *st->qcodes);
    st->qcodes_ip = shoal__alloc(&index->mem, (size_t)dim * sizeof *st->qcodes_ip);
    if (!st->decoded || !st->qres || !st->qcodes || !st->qcodes_ip) return SHOAL_ENOMEM;
    if (quantizer == SHOAL_QUANTIZER_PQ) {
        st->lut = shoal__alloc(&index->mem, (size_t)st->pq_m * st->ksub * sizeof(float));
        st->lut8 = shoal__calloc(&index->mem, st->m2, 16);
        st->lut_lo = shoal__alloc(&index->mem, (size_t)st->pq_m * sizeof(float));
        if (index->params.metric == SHOAL_METRIC_L2 && st->pq_tables != IVF_TABLES_NEVER) {
            st->qterms = shoal__alloc(&index->mem, (size_t)st->pq_m * st->ksub * sizeof(float));
            if (!st->qterms) return SHOAL_ENOMEM;
        }
        st->pq_codes = shoal__alloc(&index->mem, st->pq_m);
        if (!st->lut || !st->lut8 || !st->lut_lo || !st->pq_codes) return SHOAL_ENOMEM;
    }
    return SHOAL_OK;
}

/* Hard minimum of training vectors, and the first add's auto-train minimum. */
static uint32_t train_min(const ivf_state *st) {
    uint32_t need = st->nlist_param ? st->nlist_param : 1;
    return st->ksub > need ? st->ksub : need;
}

static uint32_t auto_train_min(const ivf_state *st) {
    uint64_t want = st->nlist_param ? (uint64_t)IVF_MIN_PER_LIST * st->nlist_param
                                    : IVF_AUTO_TRAIN_DEFAULT;
    uint32_t hard = train_min(st);
    return want > hard ? (uint32_t)want : hard;
}

/* Default nlist for n training vectors: about 4 sqrt(n), at most n / 39. */
static uint32_t default_nlist(uint32_t n) {
    uint32_t root = 0;
    while ((uint64_t)(root + 1) * (root + 1) <= n) root++;
    uint64_t nlist = 4ull * root;
    if (nlist > n / IVF_MIN_PER_LIST) nlist = n / IVF_MIN_PER_LIST;
    if (nlist < 1) nlist = 1;
    if (nlist > IVF_NLIST_MAX) nlist = IVF_NLIST_MAX;
    return (uint32_t)nlist;
}

/* --------------------------------------------------------------- codecs */

/* Squared distances from sub-vector x[dsub] to every code of sub-quantizer
 * j (transposed codebook), into out[ksub]: summed over t in order.  ksub is
 * a constant at each call (16 or 256), so that the loop over codes -- the
 * inner one, contiguous -- vectorizes; the order of the sums is the same
 * either way. */
static inline __attribute__((always_inline)) void sub_l2_k(const float *cb, const float *x,
                                                          uint32_t dsub, uint32_t ksub,
                                                          float *out) {
    float acc[256]; /* local, so that the compiler need not fear aliasing */
    for (uint32_t c = 0; c < ksub; c++) acc[c] = 0.0f;
    for (uint32_t t = 0; t < dsub; t++) {
        const float *row = cb + (size_t)t * ksub;
        float xt = x[t];
        for (uint32_t c = 0; c < ksub; c++) {
            float d = xt - row[c];
            acc[c] += d * d;
        }
    }
    for (uint32_t c = 0; c < ksub; c++) out[c] = acc[c];
}

static inline __attribute__((always_inline)) void sub_dot_k(const float *cb, const float *x,
                                                           uint32_t dsub, uint32_t ksub,
                                                           float *out) {
    float acc[256];
    for (uint32_t c = 0; c < ksub; c++) acc[c] = 0.0f;
    for (uint32_t t = 0; t < dsub; t++) {
        const float *row = cb + (size_t)t * ksub;
        float xt = x[t];
        for (uint32_t c = 0; c < ksub; c++) acc[c] += xt * row[c];
    }
    for (uint32_t c = 0; c < ksub; c++) out[c] = acc[c];
}

static void pq_sub_l2(const ivf_state *st, const float *cb, const float *x, float *out) {
    if (st->ksub == 16)
        sub_l2_k(cb, x, st->dsub, 16, out);
    else
        sub_l2_k(cb, x, st->dsub, 256, out);
}

static void pq_sub_dot(const ivf_state *st, const float *cb, const float *x, float *out) {
    if (st->ksub == 16)
        sub_dot_k(cb, x, st->dsub, 16, out);
    else
        sub_dot_k(cb, x, st->dsub, 256, out);
}

static const float *pq_codebook(const ivf_state *st, const ivf_model *m, uint32_t j) {
    return m->codebooks + (size_t)j * st->dsub * st->ksub;
}

/* ------------------------------------------------------------ PQ tables */

/* Whether searches use per-list tables (l2 pq): pq_tables always, or auto
 * where they pay and cost little memory.  They pay when a table entry
 * computed from the residual (dsub subtractions, multiplications and adds)
 * costs more than one loaded from memory (one add): measured on
 * Fashion-MNIST (docs/BENCHMARKS.md, "PQ tables"), +12% QPS at dsub 4 for
 * pq4 and +19% for pq8, none at dsub 2, where the table streams in from
 * memory as slowly as the codebook arithmetic runs from L1.  They cost
 * nlist * m * ksub floats: auto keeps them while that is no more than the
 * lists' codes (from about 128 records per list for 4-bit codes, 1024 for
 * 8-bit).  A function of the index's state alone, so that every build and
 * every copy of an index decides alike: the tables change the last bits of
 * the distances. */
static int wants_terms(const shoal_index *index, const ivf_state *st, uint32_t nlist) {
    if (st->quantizer != SHOAL_QUANTIZER_PQ || index->params.metric != SHOAL_METRIC_L2 ||
        st->pq_tables == IVF_TABLES_NEVER)
        return 0;
    if (st->pq_tables == IVF_TABLES_ALWAYS) return 1;
    uint64_t tables = (uint64_t)nlist * st->pq_m * st->ksub * sizeof(float);
    uint64_t codes = (uint64_t)index->live * st->pq_m * st->pq_bits / 8;
    return st->dsub >= 4 && tables <= codes;
}

/* The query-free terms of every list: for centroid c and code y of
 * sub-quantizer j, terms[l][j][y] = ||y||^2 + 2 c_j.y, each sum over t in
 * order.  Built by the first search that wants them. */
static int build_terms(shoal_index *index, ivf_state *st, ivf_model *m) {
    uint32_t ksub = st->ksub, dsub = st->dsub, dim = st->dim;
    size_t per_list = (size_t)st->pq_m * ksub;
    float *terms = shoal__alloc(&index->mem, (size_t)m->nlist * per_list * sizeof *terms);
    float *norms = shoal__alloc(&index->mem, per_list * sizeof *norms);
    if (!terms || !norms) {
        shoal__free(&index->mem, terms);
        shoal__free(&index->mem, norms);
        return SHOAL_ENOMEM;
    }
    for (uint32_t j = 0; j < st->pq_m; j++) {
        const float *cb = pq_codebook(st, m, j);
        float *out = norms + (size_t)j * ksub;
        for (uint32_t y = 0; y < ksub; y++) out[y] = 0.0f;
        for (uint32_t t = 0; t < dsub; t++)
            for (uint32_t y = 0; y < ksub; y++) out[y] += cb[(size_t)t * ksub + y] * cb[(size_t)t * ksub + y];
    }
    for (uint32_t l = 0; l < m->nlist; l++) {
        const float *c = m->centroids + (size_t)l * dim;
        for (uint32_t j = 0; j < st->pq_m; j++) {
            float *out = terms + (size_t)l * per_list + (size_t)j * ksub;
            const float *n = norms + (size_t)j * ksub;
            pq_sub_dot(st, pq_codebook(st, m, j), c + (size_t)j * dsub, out);
            for (uint32_t y = 0; y < ksub; y++) out[y] = n[y] + 2.0f * out[y];
        }
    }
    shoal__free(&index->mem, norms);
    m->terms = terms;
    return SHOAL_OK;
}

/* The index of the first smallest of d[0..n), n a multiple of 4 (16 or
 * 256 codes).  Four chains, each keeping its first minimum, then the least
 * of the four with ties to the lower index: the same answer as one scan,
 * without a scan's load-compare-select chain through the running best
 * (which made encoding a third of an 8-bit PQ build). */
static uint32_t first_min(const float *d, uint32_t n) {
    float bv[4] = {d[0], d[1], d[2], d[3]};
    uint32_t bi[4] = {0, 1, 2, 3};
    for (uint32_t c = 4; c < n; c += 4)
        for (uint32_t l = 0; l < 4; l++)
            if (d[c + l] < bv[l]) {
                bv[l] = d[c + l];
                bi[l] = c + l;
            }
    uint32_t best = 0;
    for (uint32_t l = 1; l < 4; l++)
        if (bv[l] < bv[best] || (!(bv[best] < bv[l]) && bi[l] < bi[best])) best = l;
    return bi[best];
}

/* PQ codes (one byte each) of residual r. */
static void pq_encode(ivf_state *st, const ivf_model *m, const float *r, uint8_t *codes) {
    float dist[256];
    for (uint32_t j = 0; j < st->pq_m; j++) {
        pq_sub_l2(st, pq_codebook(st, m, j), r + (size_t)j * st->dsub, dist);
        codes[j] = (uint8_t)first_min(dist, st->ksub);
    }
}

static uint8_t pq4_get(const ivf_state *st, const uint8_t *codes, uint32_t pos, uint32_t j) {
    const uint8_t *b = codes + (size_t)(pos / BLOCK) * st->block_bytes + 16 * j;
    uint32_t i = pos % BLOCK;
    return i < 16 ? b[i] & 15 : b[i - 16] >> 4;
}

static void pq4_set(const ivf_state *st, uint8_t *codes, uint32_t pos, uint32_t j, uint8_t v) {
    uint8_t *b = codes + (size_t)(pos / BLOCK) * st->block_bytes + 16 * j;
    uint32_t i = pos % BLOCK;
    if (i < 16)
        b[i] = (uint8_t)((b[i] & 0xf0) | v);
    else
        b[i - 16] = (uint8_t)((b[i - 16] & 0x0f) | (v << 4));
}

/* SQ8 code row of residual r: [||decoded||^2 float][dim int8]. */
static void sq8_encode(const ivf_state *st, const ivf_model *m, const float *r, uint8_t *row) {
    int8_t *codes = (int8_t *)(row + sizeof(float));
    shoal__sq8_encode(r, m->sq_center, m->sq_scale, st->dim, codes);
    /* The decoded residual's squared norm, decoded as shoal__sq8_decode does. */
    float norm = 0.0f;
    for (uint32_t j = 0; j < st->dim; j++) {
        float d = m->sq_center[j] + m->sq_scale * (float)codes[j];
        norm += d * d;
    }
    memcpy(row, &norm, sizeof norm);
}

/* Writes record v (stored form) at position pos of list l. */
static void encode_at(ivf_state *st, const ivf_model *m, uint32_t l, uint32_t pos,
                      const float *v) {
    ivf_list *list = &m->lists[l];
    if (list->rerank) memcpy(list->rerank + (size_t)pos * st->dim, v, st->dim * sizeof(float));
    if (st->quantizer == SHOAL_QUANTIZER_F32) {
        memcpy(list->codes + pos * st->code_size, v, st->code_size);
        return;
    }
    const float *c = m->centroids + (size_t)l * st->dim;
    for (uint32_t j = 0; j < st->dim; j++) st->qres[j] = v[j] - c[j];
    if (st->quantizer == SHOAL_QUANTIZER_SQ8) {
        sq8_encode(st, m, st->qres, list->codes + pos * st->code_size);
    } else if (!is_pq4(st)) {
        pq_encode(st, m, st->qres, list->codes + pos * st->code_size);
    } else {
        pq_encode(st, m, st->qres, st->pq_codes);
        for (uint32_t j = 0; j < st->pq_m; j++) pq4_set(st, list->codes, pos, j, st->pq_codes[j]);
    }
}

/* The stored-form vector of the record at (l, pos): exact when the index
 * keeps float32 (flat lists, rerank copies), else decoded into scratch. */
static const float *vector_at(ivf_state *st, const ivf_model *m, uint32_t l, uint32_t pos) {
    const ivf_list *list = &m->lists[l];
    if (st->quantizer == SHOAL_QUANTIZER_F32)
        return (const float *)(const void *)(list->codes + pos * st->code_size);
    if (list->rerank) return list->rerank + (size_t)pos * st->dim;
    const float *c = m->centroids + (size_t)l * st->dim;
    float *out = st->decoded;
    if (st->quantizer == SHOAL_QUANTIZER_SQ8) {
        const int8_t *codes = (const int8_t *)(list->codes + pos * st->code_size + sizeof(float));
        shoal__sq8_decode(codes, m->sq_center, m->sq_scale, st->dim, out);
        for (uint32_t j = 0; j < st->dim; j++) out[j] += c[j];
        return out;
    }
    for (uint32_t j = 0; j < st->pq_m; j++) {
        uint32_t code = is_pq4(st) ? pq4_get(st, list->codes, pos, j)
                                   : list->codes[pos * st->code_size + j];
        const float *cb = pq_codebook(st, m, j);
        for (uint32_t t = 0; t < st->dsub; t++) {
            size_t at = (size_t)j * st->dsub + t;
            out[at] = c[at] + cb[(size_t)t * st->ksub + code];
        }
    }
    return out;
}

/* ----------------------------------------------------------------- lists */

/* Grows list l of model m to hold at least need records. */
static int list_reserve(shoal_index *index, ivf_state *st, ivf_model *m, uint32_t l,
                        uint32_t need) {
    ivf_list *list = &m->lists[l];
    if (need <= list->cap) return SHOAL_OK;
    uint64_t cap = list->cap ? list->cap + list->cap / 2 : need;
    if (cap < need) cap = need;
    if (is_pq4(st)) cap = (cap + BLOCK - 1) / BLOCK * BLOCK;
    if (cap > UINT32_MAX - BLOCK) return SHOAL_ENOMEM;
    size_t code_bytes = is_pq4(st) ? (size_t)(cap / BLOCK) * st->block_bytes
                                   : (size_t)cap * st->code_size;
    size_t old_code_bytes = is_pq4(st) ? (size_t)(list->cap / BLOCK) * st->block_bytes
                                       : (size_t)list->cap * st->code_size;
    /* A failure part-way leaves some arrays larger than cap: harmless. */
    uint32_t *labels = shoal__realloc(&index->mem, list->labels, (size_t)cap * sizeof *labels);
    if (!labels) return SHOAL_ENOMEM;
    list->labels = labels;
    uint8_t *codes = shoal__realloc(&index->mem, list->codes, code_bytes);
    if (!codes) return SHOAL_ENOMEM;
    memset(codes + old_code_bytes, 0, code_bytes - old_code_bytes);
    list->codes = codes;
    if (st->copies && !index->rows_external) {
        float *rr = shoal__realloc(&index->mem, list->rerank,
                                   (size_t)cap * st->dim * sizeof *rr);
        if (!rr) return SHOAL_ENOMEM;
        list->rerank = rr;
    }
    list->cap = (uint32_t)cap;
    return SHOAL_OK;
}

static void model_free(shoal_index *index, ivf_model *m) {
    if (!m) return;
    shoal__mem *mem = &index->mem;
    if (m->lists)
        for (uint32_t l = 0; l < m->nlist; l++) {
            if (m->lists[l].borrowed) {
                if (m->lists[l].rerank_owned) shoal__free(mem, m->lists[l].rerank);
                continue;
            }
            shoal__free(mem, m->lists[l].labels);
            shoal__free(mem, m->lists[l].codes);
            shoal__free(mem, m->lists[l].rerank);
        }
    shoal__free(mem, m->lists);
    shoal__free(mem, m->centroids);
    shoal__free(mem, m->sq_center);
    shoal__free(mem, m->codebooks);
    shoal__free(mem, m->terms);
    shoal__free(mem, m);
}

/* Nearest centroid of stored-form v (squared L2, lower index on ties). */
static uint32_t assign_list(const shoal_index *index, const ivf_model *m, const float *v) {
    return shoal__kmeans_nearest(index->kernels, m->centroids, m->nlist, index->params.dim, v,
                                 NULL);
}

/* -------------------------------------------------------------- training */

typedef struct sample_rows {
    const float *rows;
    uint32_t dim;
} sample_rows;

static const float *sample_row(const void *ctx, uint32_t i) {
    const sample_rows *s = ctx;
    return s->rows + (size_t)i * s->dim;
}

/* Per-dimension centres and the shared scale from n residual rows. */
static int train_sq8(shoal_index *index, ivf_state *st, ivf_model *m, const float *rows,
                     uint32_t n) {
    m->sq_center = shoal__alloc(&index->mem, (size_t)st->dim * sizeof *m->sq_center);
    if (!m->sq_center) return SHOAL_ENOMEM;
    sample_rows ctx = {rows, st->dim};
    double reach = shoal__sq8_fit(st->dim, n, sample_row, &ctx, m->sq_center, &m->sq_scale);
    if (!(reach < SHOAL__SQ8_REACH_MAX))
        return shoal__fail(index, SHOAL_EVECTOR,
                           "sq8 cannot code these residuals: their ranges put code points at "
                           "squared length %.3g, past 2^125; use quantizer f32",
                           reach);
    return SHOAL_OK;
}

/* One codebook per sub-quantizer from n residual rows. */
static int train_pq(shoal_index *index, ivf_state *st, ivf_model *m, shoal__rng *rng,
                    const float *rows, uint32_t n) {
    uint32_t dsub = st->dsub, ksub = st->ksub;
    size_t per = (size_t)dsub * ksub;
    m->codebooks = shoal__alloc(&index->mem, (size_t)st->pq_m * per * sizeof(float));
    float *sub = shoal__alloc(&index->mem, (size_t)n * dsub * sizeof *sub);
    float *cb = shoal__alloc(&index->mem, per * sizeof *cb);
    int rc = !m->codebooks || !sub || !cb ? SHOAL_ENOMEM : SHOAL_OK;
    for (uint32_t j = 0; j < st->pq_m && !rc; j++) {
        for (uint32_t i = 0; i < n; i++)
            memcpy(sub + (size_t)i * dsub, rows + (size_t)i * st->dim + (size_t)j * dsub,
                   dsub * sizeof *sub);
        shoal__kmeans km = {ksub, dsub, st->train_iters, index->kernels, &index->mem, rng,
                            NULL, 0, 0};
        rc = shoal__kmeans_run(&km, sub, n, cb, NULL);
        /* Transposed, so table rows are contiguous over codes. */
        float *out = m->codebooks + (size_t)j * per;
        for (uint32_t c = 0; c < ksub && !rc; c++)
            for (uint32_t t = 0; t < dsub; t++) out[(size_t)t * ksub + c] = cb[(size_t)c * dsub + t];
    }
    shoal__free(&index->mem, sub);
    shoal__free(&index->mem, cb);
    return rc;
}

/* Builds a model (centroids, quantizer, empty lists) from n raw vectors. */
static int build_model(shoal_index *index, ivf_state *st, shoal__rng *rng, uint32_t n,
                       const float *vectors, ivf_model **out) {
    uint32_t dim = st->dim;
    uint32_t nlist = st->nlist_param ? st->nlist_param : default_nlist(n);
    if (st->nlist_param && st->nlist_param > n)
        return shoal__fail(index, SHOAL_EPARAM,
                           "nlist = %u exceeds the %u training vectors; give at least %u "
                           "(%u per list is better) or lower nlist",
                           nlist, n, nlist, IVF_MIN_PER_LIST);
    if (n < st->ksub)
        return shoal__fail(index, SHOAL_EPARAM,
                           "%u-bit pq codebooks need at least %u training vectors; got %u",
                           st->pq_bits, st->ksub, n);
    if (st->nprobe > nlist)
        return shoal__fail(index, SHOAL_EPARAM, "nprobe = %u exceeds nlist = %u", st->nprobe,
                           nlist);

    uint64_t coarse = (uint64_t)st->train_sample * nlist;
    uint64_t want = coarse;
    if (st->quantizer == SHOAL_QUANTIZER_PQ && want < IVF_PQ_SAMPLE) want = IVF_PQ_SAMPLE;
    uint32_t ns = want < n ? (uint32_t)want : n;
    uint32_t nc = coarse < ns ? (uint32_t)coarse : ns;

    int rc = SHOAL_ENOMEM;
    uint32_t *idx = shoal__alloc(&index->mem, (size_t)ns * sizeof *idx);
    float *sample = shoal__alloc(&index->mem, (size_t)ns * dim * sizeof *sample);
    ivf_model *m = shoal__calloc(&index->mem, 1, sizeof *m);
    if (!idx || !sample || !m) goto done;
    m->nlist = nlist;
    m->centroids = shoal__alloc(&index->mem, (size_t)nlist * dim * sizeof(float));
    m->lists = shoal__calloc(&index->mem, nlist, sizeof *m->lists);
    if (!m->centroids || !m->lists) goto done;

    /* A uniform sample in random order, so any prefix is uniform too. */
    shoal__sample_indices(rng, n, ns, idx);
    for (uint32_t i = ns; i > 1; i--) {
        uint32_t j = (uint32_t)(shoal__rng_next(rng) % i), t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
    for (uint32_t i = 0; i < ns; i++)
        shoal__stored_form(index, vectors + (size_t)idx[i] * dim, sample + (size_t)i * dim);

    shoal__kmeans km = {nlist, dim, st->train_iters, index->kernels, &index->mem, rng,
                        NULL, 0, 0};
    if ((rc = shoal__kmeans_run(&km, sample, nc, m->centroids, idx)) != SHOAL_OK) goto done;
    if (st->quantizer != SHOAL_QUANTIZER_F32) {
        for (uint32_t i = 0; i < ns; i++) {
            float *row = sample + (size_t)i * dim;
            uint32_t l = i < nc ? idx[i] : assign_list(index, m, row);
            const float *c = m->centroids + (size_t)l * dim;
            for (uint32_t j = 0; j < dim; j++) row[j] -= c[j];
        }
        if (st->quantizer == SHOAL_QUANTIZER_SQ8)
            rc = train_sq8(index, st, m, sample, ns);
        else
            rc = train_pq(index, st, m, rng, sample, ns < IVF_PQ_SAMPLE ? ns : IVF_PQ_SAMPLE);
    }
done:
    shoal__free(&index->mem, idx);
    shoal__free(&index->mem, sample);
    if (rc == SHOAL_OK && m) {
        *out = m;
        return SHOAL_OK;
    }
    model_free(index, m);
    if (rc == SHOAL_EVECTOR) return rc; /* (train_sq8 said why) */
    return shoal__fail(index, rc, rc == SHOAL_ENOMEM ? "out of memory training %u vectors"
                                                     : "k-means failed on %u vectors", n);
}

/* Search scratch whose size depends on nlist (never shrinks, so a failed
 * retrain leaves it large enough for the old model). */
static int size_scratch(shoal_index *index, ivf_state *st, uint32_t nlist) {
    return shoal__grow(&index->mem, (void **)&st->probes, &st->probes_cap, nlist,
                       sizeof *st->probes);
}

/* Moves every record into model fresh (assigning and encoding anew), then
 * makes fresh the index's model.  Fails only before changing anything. */
static int adopt_model(shoal_index *index, ivf_state *st, ivf_model *fresh) {
    uint32_t bound = index->label_bound;
    uint32_t *where = NULL;
    int rc = size_scratch(index, st, fresh->nlist);
    if (!rc && index->live) {
        where = shoal__alloc(&index->mem, (size_t)bound * sizeof *where);
        if (!where) rc = SHOAL_ENOMEM;
    }
    if (!rc && index->live) {
        /* Assign, count, then reserve each list exactly. */
        for (uint32_t label = 0; label < bound; label++) {
            if (!shoal__is_alive(index, label)) continue;
            const float *v = vector_at(st, st->model, st->list_of[label], st->pos_of[label]);
            where[label] = assign_list(index, fresh, v);
            fresh->lists[where[label]].count++;
        }
        for (uint32_t l = 0; l < fresh->nlist && !rc; l++) {
            uint32_t need = fresh->lists[l].count;
            fresh->lists[l].count = 0;
            rc = list_reserve(index, st, fresh, l, need);
        }
    }
    if (rc) {
        shoal__free(&index->mem, where);
        model_free(index, fresh);
        return shoal__fail(index, rc, "out of memory re-encoding %u records", index->live);
    }
    if (index->live) {
        /* Encode, keeping positions in where until the old model is gone. */
        for (uint32_t label = 0; label < bound; label++) {
            if (!shoal__is_alive(index, label)) continue;
            const float *v = vector_at(st, st->model, st->list_of[label], st->pos_of[label]);
            ivf_list *list = &fresh->lists[where[label]];
            uint32_t pos = list->count++;
            list->labels[pos] = label;
            /* vector_at may return st->decoded; encode_at uses st->qres. */
            encode_at(st, fresh, where[label], pos, v);
        }
        for (uint32_t l = 0; l < fresh->nlist; l++)
            for (uint32_t pos = 0; pos < fresh->lists[l].count; pos++) {
                uint32_t label = fresh->lists[l].labels[pos];
                st->list_of[label] = l;
                st->pos_of[label] = pos;
            }
    }
    shoal__free(&index->mem, where);
    model_free(index, st->model);
    st->model = fresh;
    return SHOAL_OK;
}

static int ivf_train(shoal_index *index, uint32_t n, const float *vectors) {
    ivf_state *st = state_of(index);
    uint32_t need = train_min(st);
    if (n < need)
        return shoal__fail(index, SHOAL_EPARAM,
                           "training needs at least %u vectors (nlist = %u, %u codes per "
                           "pq sub-quantizer); got %u",
                           need, st->nlist_param, st->ksub, n);
    shoal__rng rng = index->rng; /* committed only on success */
    ivf_model *fresh = NULL;
    int rc = build_model(index, st, &rng, n, vectors, &fresh);
    if (rc) return rc;
    if ((rc = adopt_model(index, st, fresh))) return rc;
    index->rng = rng;
    return SHOAL_OK;
}

static int ivf_trained(const shoal_index *index) { return state_of(index)->model != NULL; }

/* ------------------------------------------------------------- mutation */

static int ivf_reserve(shoal_index *index, uint32_t cap) {
    ivf_state *st = state_of(index);
    if (cap <= st->cap) return SHOAL_OK;
    uint32_t *a = shoal__realloc(&index->mem, st->list_of, (size_t)cap * sizeof *a);
    if (!a) return SHOAL_ENOMEM;
    st->list_of = a;
    uint32_t *b = shoal__realloc(&index->mem, st->pos_of, (size_t)cap * sizeof *b);
    if (!b) return SHOAL_ENOMEM;
    st->pos_of = b;
    st->cap = cap;
    return SHOAL_OK;
}

static int ivf_prepare_add(shoal_index *index, uint32_t n, const float *vectors) {
    ivf_state *st = state_of(index);
    st->batch_n = st->batch_next = 0;
    if (n == 0) return SHOAL_OK;
    int trained_here = 0, rc;
    shoal__rng rng_before = index->rng;
    if (!st->model) {
        uint32_t need = auto_train_min(st);
        if (n < need)
            return shoal__fail(index, SHOAL_ESTATE,
                               "the ivf index is not trained: call train() with at least %u "
                               "vectors, or add at least %u in the first batch",
                               train_min(st), need);
        if ((rc = ivf_train(index, n, vectors))) return rc;
        trained_here = 1;
    }
    ivf_model *m = st->model;
    uint32_t *counts = shoal__calloc(&index->mem, m->nlist, sizeof *counts);
    rc = counts ? shoal__grow(&index->mem, (void **)&st->batch, &st->batch_cap, n,
                              sizeof *st->batch)
                : SHOAL_ENOMEM;
    for (uint32_t i = 0; i < n && !rc; i++) {
        shoal__stored_form(index, vectors + (size_t)i * st->dim, st->decoded);
        st->batch[i] = assign_list(index, m, st->decoded);
        counts[st->batch[i]]++;
    }
    for (uint32_t l = 0; l < m->nlist && !rc; l++)
        if (counts[l]) rc = list_reserve(index, st, m, l, m->lists[l].count + counts[l]);
    shoal__free(&index->mem, counts);
    if (rc) {
        if (trained_here) { /* back to untrained: the index is as it was */
            model_free(index, st->model);
            st->model = NULL;
            index->rng = rng_before;
        }
        return shoal__fail(index, rc, "out of memory adding %u records", n);
    }
    st->batch_n = n;
    return SHOAL_OK;
}

static int ivf_insert(shoal_index *index, uint32_t label, const float *vector) {
    ivf_state *st = state_of(index);
    ivf_model *m = st->model;
    if (!m) return SHOAL_ESTATE;
    uint32_t l;
    if (st->batch_next < st->batch_n) {
        l = st->batch[st->batch_next++];
    } else { /* not through add: assign now and make room */
        l = assign_list(index, m, vector);
        int rc = list_reserve(index, st, m, l, m->lists[l].count + 1);
        if (rc) return rc;
    }
    ivf_list *list = &m->lists[l];
    uint32_t pos = list->count++;
    list->labels[pos] = label;
    st->list_of[label] = l;
    st->pos_of[label] = pos;
    encode_at(st, m, l, pos, vector);
    return SHOAL_OK;
}

static int ivf_remove(shoal_index *index, uint32_t label) {
    ivf_state *st = state_of(index);
    ivf_model *m = st->model;
    if (!m || label >= st->cap) return SHOAL_OK;
    uint32_t l = st->list_of[label], pos = st->pos_of[label];
    ivf_list *list = &m->lists[l];
    uint32_t last = --list->count;
    if (pos == last) return SHOAL_OK;
    uint32_t moved = list->labels[last];
    list->labels[pos] = moved;
    st->pos_of[moved] = pos;
    if (is_pq4(st)) {
        for (uint32_t j = 0; j < st->pq_m; j++)
            pq4_set(st, list->codes, pos, j, pq4_get(st, list->codes, last, j));
    } else {
        memcpy(list->codes + pos * st->code_size, list->codes + last * st->code_size,
               st->code_size);
    }
    if (list->rerank)
        memcpy(list->rerank + (size_t)pos * st->dim, list->rerank + (size_t)last * st->dim,
               st->dim * sizeof(float));
    return SHOAL_OK;
}

/* Nothing fails after ivf_prepare_add, so an abort only ever follows
 * inserts (never removes): each inserted record is the last of its list
 * when removed newest first, which gives every list back its order. */
static void ivf_abort(shoal_index *index, const uint32_t *inserted, uint32_t n) {
    for (uint32_t i = n; i-- > 0;) ivf_remove(index, inserted[i]);
}

static const float *ivf_vector(const shoal_index *index, uint32_t label) {
    ivf_state *st = state_of(index);
    return vector_at(st, st->model, st->list_of[label], st->pos_of[label]);
}

/* ----------------------------------------------------------------- search */

/* What one search needs besides the lists. */
typedef struct ivf_query {
    const float *q;
    const shoal_search_params *filter; /* NULL = everything */
    shoal__topk *out;                  /* final results, or rerank candidates */
    float qscale_ip;                   /* sq8 ip/cosine: scale of qcodes_ip */
    float q_center;                    /* sq8 ip/cosine: q . center */
} ivf_query;

/* Metric distance from (negated) dot product: ip -> -dot, cosine -> 1 - dot. */
static inline float from_dot(const shoal_index *index, float dot) {
    return index->params.metric == SHOAL_METRIC_COSINE ? 1.0f - dot : -dot;
}

/* The nprobe lists to scan, best first (ties: lower list). */
static int probe_order(const void *a, const void *b) {
    const ivf_probe *x = a, *y = b;
    if (x->dist < y->dist) return -1;
    if (y->dist < x->dist) return 1;
    return (x->list > y->list) - (x->list < y->list);
}

static uint32_t select_probes(const shoal_index *index, ivf_state *st, const float *q,
                              uint32_t nprobe) {
    const ivf_model *m = st->model;
    uint32_t kept = 0;
    int ip = index->params.metric == SHOAL_METRIC_IP;
    if (nprobe == m->nlist) {
        /* Every list, nearest first; ties by list number, as below.  (The
         * distances are never NaN: centroids and queries are finite.) */
        for (uint32_t l = 0; l < m->nlist; l++) {
            const float *c = m->centroids + (size_t)l * st->dim;
            st->probes[l].dist = ip ? -index->kernels->dot_f32(q, c, st->dim)
                                    : index->kernels->l2sq_f32(q, c, st->dim);
            st->probes[l].list = l;
        }
        qsort(st->probes, m->nlist, sizeof *st->probes, probe_order);
        return m->nlist;
    }
    for (uint32_t l = 0; l < m->nlist; l++) {
        const float *c = m->centroids + (size_t)l * st->dim;
        float d = ip ? -index->kernels->dot_f32(q, c, st->dim)
                     : index->kernels->l2sq_f32(q, c, st->dim);
        if (kept == nprobe && !(d < st->probes[kept - 1].dist)) continue;
        uint32_t i = kept < nprobe ? kept++ : kept - 1;
        while (i > 0 && d < st->probes[i - 1].dist) {
            st->probes[i] = st->probes[i - 1];
            i--;
        }
        st->probes[i].dist = d;
        st->probes[i].list = l;
    }
    return kept;
}

/* Offers a scanned candidate: the filter runs only when the candidate
 * would be kept, which is rare once the heap is full.  A candidate farther
 * than the worst kept one (or NaN) is turned away before its sequence
 * number is read -- a cache miss per record otherwise, as labels are
 * scattered; only a tie needs it.  (The same decision as
 * shoal__topk_push's.) */
static inline void offer(const shoal_index *index, ivf_query *qq, float d, uint32_t label) {
    if (qq->out->count == qq->out->k && !(d <= qq->out->hits[0].distance)) return;
    uint64_t seq = index->seqs[label];
    if (qq->filter && (!shoal__topk_accepts(qq->out, d, seq) ||
                       !shoal__allowed(index, qq->filter, label)))
        return;
    shoal__topk_push(qq->out, d, seq, label);
}

/* Whether a filter keeps any record of an attached list. */
static int list_matches(const shoal_index *index, const ivf_list *list,
                        const shoal_search_params *params) {
    for (uint32_t i = 0; i < list->count; i++)
        if (shoal__allowed(index, params, list->labels[i])) return 1;
    return 0;
}


static void scan_flat(shoal_index *index, ivf_state *st, const ivf_list *list, ivf_query *qq) {
    for (uint32_t i = 0; i < list->count; i++) {
        const float *v = (const float *)(const void *)(list->codes + i * st->code_size);
        offer(index, qq, shoal__distance(index, qq->q, v), list->labels[i]);
    }
}

/* Quantizes x[dim] to integers in +-shoal__i16_qmax(dim) with its own
 * scale (returned): 15 bits up to dim 516, 14 at 784, 11 at SHOAL_DIM_MAX,
 * fine enough that the codes' own steps are nearly all the error left. */
static float quantize_query(const float *x, uint32_t dim, int16_t *out) {
    int32_t qmax = shoal__i16_qmax(dim);
    float top = 0.0f;
    for (uint32_t j = 0; j < dim; j++) {
        float a = x[j] < 0.0f ? -x[j] : x[j];
        if (a > top) top = a;
    }
    float scale = top > 0.0f ? top / (float)qmax : 1.0f, inv = 1.0f / scale;
    for (uint32_t j = 0; j < dim; j++) out[j] = (int16_t)shoal__round_clamp(x[j] * inv, -qmax, qmax);
    return scale;
}

static void scan_sq8(shoal_index *index, ivf_state *st, uint32_t l, ivf_query *qq) {
    const ivf_model *m = st->model;
    const ivf_list *list = &m->lists[l];
    const float *c = m->centroids + (size_t)l * st->dim;
    uint32_t dim = st->dim;
    if (index->params.metric == SHOAL_METRIC_L2) {
        for (uint32_t j = 0; j < dim; j++) st->qres[j] = qq->q[j] - c[j];
        float qs = quantize_query(st->qres, dim, st->qcodes);
        float qn = index->kernels->dot_f32(st->qres, st->qres, dim);
        float qc = index->kernels->dot_f32(st->qres, m->sq_center, dim);
        float f = m->sq_scale * qs;
        for (uint32_t i = 0; i < list->count; i++) {
            const uint8_t *row = list->codes + i * st->code_size;
            float norm;
            memcpy(&norm, row, sizeof norm);
            int32_t dot = index->kernels->dot_i16_i8(st->qcodes, (const int8_t *)(row + 4), dim);
            float cross = qc + f * (float)dot;
            offer(index, qq, qn - 2.0f * cross + norm, list->labels[i]);
        }
        return;
    }
    float base = index->kernels->dot_f32(qq->q, c, dim) + qq->q_center;
    float f = m->sq_scale * qq->qscale_ip;
    for (uint32_t i = 0; i < list->count; i++) {
        const uint8_t *row = list->codes + i * st->code_size;
        int32_t dot = index->kernels->dot_i16_i8(st->qcodes_ip, (const int8_t *)(row + 4), dim);
        offer(index, qq, from_dot(index, base + f * (float)dot), list->labels[i]);
    }
}

/* Float tables: l2 against residual q - c (per list), or -q.y (per query). */
static void build_lut(const shoal_index *index, ivf_state *st, const float *x, int l2) {
    const ivf_model *m = st->model;
    for (uint32_t j = 0; j < st->pq_m; j++) {
        float *row = st->lut + (size_t)j * st->ksub;
        const float *xs = x + (size_t)j * st->dsub;
        if (l2) {
            pq_sub_l2(st, pq_codebook(st, m, j), xs, row);
        } else {
            pq_sub_dot(st, pq_codebook(st, m, j), xs, row);
            for (uint32_t c = 0; c < st->ksub; c++) row[c] = -row[c];
        }
    }
    (void)index;
}

/* The query's terms of the l2 tables: qterms[j][y] = -2 q_j.y. */
static void query_terms(ivf_state *st, const ivf_model *m, const float *q) {
    for (uint32_t j = 0; j < st->pq_m; j++) {
        float *out = st->qterms + (size_t)j * st->ksub;
        pq_sub_dot(st, pq_codebook(st, m, j), q + (size_t)j * st->dsub, out);
        for (uint32_t y = 0; y < st->ksub; y++) out[y] = -2.0f * out[y];
    }
}

/* List l's table from the tables: ||q - c - y||^2 - ||q - c||^2 =
 * (||y||^2 + 2 c.y) - 2 q.y, one add per entry. */
static void list_lut(ivf_state *st, const ivf_model *m, uint32_t l) {
    size_t rows = (size_t)st->pq_m * st->ksub / 16;
    const float *a = m->terms + (size_t)l * rows * 16, *b = st->qterms;
    for (size_t i = 0; i < rows; i++) { /* in rows of 16 through a local: vectorizes */
        float t[16];
        for (int c = 0; c < 16; c++) t[c] = a[16 * i + c] + b[16 * i + c];
        for (int c = 0; c < 16; c++) st->lut[16 * i + c] = t[c];
    }
}

/* Each record's sum runs over j in order, one dependent add after another;
 * four records at a time keep four such chains in flight (same sums, same
 * order of offers). */
static void scan_pq8(shoal_index *index, ivf_state *st, const ivf_list *list, float bias,
                     ivf_query *qq) {
    uint32_t m = st->pq_m, i = 0;
    size_t cs = st->code_size;
    for (; i + 4 <= list->count; i += 4) {
        const uint8_t *c0 = list->codes + i * cs, *c1 = c0 + cs, *c2 = c1 + cs, *c3 = c2 + cs;
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        for (uint32_t j = 0; j < m; j++) {
            const float *row = st->lut + (size_t)j * 256;
            s0 += row[c0[j]];
            s1 += row[c1[j]];
            s2 += row[c2[j]];
            s3 += row[c3[j]];
        }
        offer(index, qq, bias + s0, list->labels[i]);
        offer(index, qq, bias + s1, list->labels[i + 1]);
        offer(index, qq, bias + s2, list->labels[i + 2]);
        offer(index, qq, bias + s3, list->labels[i + 3]);
    }
    for (; i < list->count; i++) {
        const uint8_t *codes = list->codes + i * st->code_size;
        float sum = 0.0f;
        for (uint32_t j = 0; j < m; j++) sum += st->lut[(size_t)j * 256 + codes[j]];
        offer(index, qq, bias + sum, list->labels[i]);
    }
}

/* Minimum and maximum of a 16-entry table row as a fixed tree -- pairs 8
 * apart, then 4, 2, 1 -- which compilers turn into SIMD min/max (a running
 * minimum cannot be reordered; this tree is the same in every build). */
static inline void row16_range(const float *r, float *lo, float *hi) {
    float a[8], b[8];
    for (int i = 0; i < 8; i++) {
        a[i] = r[i + 8] < r[i] ? r[i + 8] : r[i];
        b[i] = r[i + 8] > r[i] ? r[i + 8] : r[i];
    }
    for (int i = 0; i < 4; i++) {
        a[i] = a[i + 4] < a[i] ? a[i + 4] : a[i];
        b[i] = b[i + 4] > b[i] ? b[i + 4] : b[i];
    }
    for (int i = 0; i < 2; i++) {
        a[i] = a[i + 2] < a[i] ? a[i + 2] : a[i];
        b[i] = b[i + 2] > b[i] ? b[i + 2] : b[i];
    }
    *lo = a[1] < a[0] ? a[1] : a[0];
    *hi = b[1] > b[0] ? b[1] : b[0];
}

/* The bytes of one table row: shoal__round_clamp((row[c] - lo) * inv, 0,
 * 255) without branches -- floor(x + 0.5) inside the range, 0 for x <= 0
 * and NaN (NaN > 0 is false), 255 from 254.5 up -- in stages that compilers
 * vectorize (written as one loop it stays scalar at -O2).  With the float
 * table built the same way this took table building from two thirds of
 * pq4 search time to two fifths (docs/BENCHMARKS.md, "PQ tables"). */
static inline void row16_bytes(const float *row, float lo, float inv, uint8_t *out) {
    float y[16];
    for (int c = 0; c < 16; c++) y[c] = (row[c] - lo) * inv;
    for (int c = 0; c < 16; c++) y[c] = y[c] > 0.0f ? y[c] : 0.0f;
    for (int c = 0; c < 16; c++) y[c] += 0.5f;
    for (int c = 0; c < 16; c++) y[c] = y[c] < 255.0f ? y[c] : 255.0f;
    for (int c = 0; c < 16; c++) out[c] = (uint8_t)(int)y[c];
}

/* uint8 tables from the float ones (st->lut, 16 codes per row); returns
 * delta, sets *base to the sum of the row minima. */
static float quantize_lut(ivf_state *st, float *base) {
    float widest = 0.0f, total = 0.0f, sum_min = 0.0f;
    for (uint32_t j = 0; j < st->pq_m; j++) {
        float lo, hi;
        row16_range(st->lut + (size_t)j * 16, &lo, &hi);
        st->lut_lo[j] = lo;
        float range = hi - lo;
        if (range > widest) widest = range;
        total += range;
        sum_min += lo;
    }
    float delta = widest / 255.0f;
    float by_total = total / (float)(65535u - st->m2);
    if (by_total > delta) delta = by_total;
    if (!(delta > 0.0f)) delta = 1.0f;
    float inv = 1.0f / delta;
    for (uint32_t j = 0; j < st->pq_m; j++)
        row16_bytes(st->lut + (size_t)j * 16, st->lut_lo[j], inv, st->lut8 + (size_t)j * 16);
    /* Rows m..m2-1 stay zero (set at creation). */
    *base = sum_min;
    return delta;
}

/* The integer sum past which a record cannot enter, from the float bound t.
 * NaN (infinite distances from huge but finite values, e.g. a hostile
 * segment's) disables the pre-filter instead of converting NaN to an
 * integer, which C leaves undefined. */
static inline uint32_t scan_limit(float t) {
    if (t < 0.0f) return 0;
    if (t <= 65536.0f) return (uint32_t)t;
    return UINT32_MAX;
}

/* base: the list's bias plus the table minima; delta: the table step. */
static void scan_pq4(shoal_index *index, ivf_state *st, const ivf_list *list, float base,
                     float delta, ivf_query *qq) {
    float inv = 1.0f / delta;
    uint16_t sums[BLOCK];
    shoal__topk *out = qq->out;
    uint32_t blocks = (list->count + BLOCK - 1) / BLOCK;
    for (uint32_t b = 0; b < blocks; b++) {
        index->kernels->pq4_scan(list->codes + (size_t)b * st->block_bytes, st->lut8, st->m2, 1,
                                 sums);
        /* Cheap pre-filter: a record whose integer sum is clearly past the
         * worst kept result cannot enter (one step of slack for rounding). */
        uint32_t limit = UINT32_MAX;
        if (out->count == out->k) {
            float t = (out->hits[0].distance - base) * inv + 1.0f;
            limit = scan_limit(t);
        }
        uint32_t end = list->count - b * BLOCK < BLOCK ? list->count - b * BLOCK : BLOCK;
        for (uint32_t i = 0; i < end; i++) {
            if (sums[i] > limit) continue;
            offer(index, qq, base + delta * (float)sums[i], list->labels[b * BLOCK + i]);
            if (out->count == out->k) {
                float t = (out->hits[0].distance - base) * inv + 1.0f;
                limit = scan_limit(t);
            }
        }
    }
}

static inline const float *rerank_row(const ivf_state *st, uint32_t label) {
    return st->model->lists[st->list_of[label]].rerank + (size_t)st->pos_of[label] * st->dim;
}

/* The number of lists a search probes. */
static int probe_count(shoal_index *index, ivf_state *st, const shoal_search_params *params,
                       uint32_t *out, uint32_t *base) {
    const ivf_model *m = st->model;
    uint32_t nprobe = params && params->nprobe ? params->nprobe
                      : st->nprobe                 ? st->nprobe
                      : m->nlist / 16              ? m->nlist / 16
                                                   : 1;
    if (nprobe > m->nlist)
        return shoal__fail(index, SHOAL_EPARAM, "nprobe = %u exceeds nlist = %u", nprobe,
                           m->nlist);
    *base = nprobe;
    if (shoal__filtered(params)) {
        /* A filter keeping a share s of the records leaves s of the probed
         * candidates; the nearest matches then lie farther out, across more
         * lists.  Probe nprobe / sqrt(s) lists (all of them, an exact scan
         * of the matches over the codes, when that reaches nlist).  The
         * square root was measured on Fashion-MNIST (docs/BENCHMARKS.md,
         * "Filters"): 1/s probes far more than recall needs.  (A lazy index
         * estimates s from the lists it has.)  walk_probes then extends
         * the walk for a filter whose matches lie away from the query. */
        uint64_t matches = shoal__estimate_matches(index, params), live = index->live;
        if (matches < live) {
            /* sqrt is correctly rounded (IEEE 754) in every build. */
            double share = (double)matches / (double)live;
            double want = share > 0.0 ? (double)nprobe / sqrt(share) : (double)m->nlist;
            nprobe = want >= (double)m->nlist ? m->nlist
                                              : (uint32_t)want + ((double)(uint32_t)want < want);
        }
    }
    *out = nprobe;
    return SHOAL_OK;
}

/* The lists a search scans: filtered, the probe_count nearest, then further
 * lists in order of distance until `base` of the lists scanned hold a match
 * (docs/API.md, "nprobe").  A lazy index's wanted lists follow the same
 * walk, counting a list not yet attached as one holding a match; the host
 * attaches them and asks again until nothing is wanted. */
typedef struct probe_walk {
    uint32_t nprobe, base, total, matched;
} probe_walk;

static int walk_probes(shoal_index *index, ivf_state *st, const float *q,
                       const shoal_search_params *params, probe_walk *w) {
    int rc = probe_count(index, st, params, &w->nprobe, &w->base);
    if (rc) return rc;
    int extend = shoal__filtered(params) && w->nprobe < st->model->nlist;
    w->total = select_probes(index, st, q, extend ? st->model->nlist : w->nprobe);
    w->matched = 0;
    return SHOAL_OK;
}

/* The rerank depth of a search: 0 (none), else at least k. */
static int rerank_depth(shoal_index *index, const ivf_state *st, const shoal__topk *topk,
                        const shoal_search_params *params, uint32_t *out) {
    uint32_t rerank = params && params->rerank ? params->rerank : st->rerank;
    if (params && params->rerank && !st->copies)
        return shoal__fail(index, SHOAL_EPARAM,
                           "rerank needs float32 copies: create the index with rerank > 0");
    if (st->quantizer == SHOAL_QUANTIZER_F32) rerank = 0;
    if (rerank && rerank < topk->k) rerank = topk->k;
    if (rerank > SHOAL__RERANK_MAX) rerank = SHOAL__RERANK_MAX;
    *out = rerank;
    return SHOAL_OK;
}

/* Scans the lists a search probes: into topk, or with a rerank depth into
 * the candidate heap *cand (st->cand). */
static int ivf_scan(shoal_index *index, const float *query, shoal__topk *topk,
                    const shoal_search_params *params, uint32_t rerank, shoal__topk *cand) {
    ivf_state *st = state_of(index);
    ivf_model *m = st->model;
    probe_walk w;
    int rc = walk_probes(index, st, query, params, &w);
    if (rc) return rc;

    ivf_query qq = {query, shoal__filtered(params) ? params : NULL, topk, 0.0f, 0.0f};
    *cand = (shoal__topk){NULL, 0, 0};
    if (rerank) {
        if (shoal__grow(&index->mem, (void **)&st->cand, &st->cand_cap, rerank,
                        sizeof *st->cand))
            return shoal__fail(index, SHOAL_ENOMEM, "out of memory for %u rerank candidates",
                               rerank);
        cand->hits = st->cand;
        cand->k = rerank;
        qq.out = cand;
    }

    int l2 = index->params.metric == SHOAL_METRIC_L2;
    for (uint32_t p = 0; p < w.nprobe; p++)
        if (m->lists[st->probes[p].list].missing)
            return shoal__fail(index, SHOAL_ESTATE,
                               "list %u is not attached: ask shoal_index_lists_wanted which "
                               "lists a search needs and attach them first",
                               st->probes[p].list);
    if (!l2 && st->quantizer == SHOAL_QUANTIZER_SQ8) {
        qq.qscale_ip = quantize_query(query, st->dim, st->qcodes_ip);
        qq.q_center = index->kernels->dot_f32(query, m->sq_center, st->dim);
    }
    float delta = 1.0f, sum_min = 0.0f;
    int tables = 0;
    if (l2 && st->quantizer == SHOAL_QUANTIZER_PQ) {
        if (wants_terms(index, st, m->nlist)) {
            if (!m->terms && build_terms(index, st, m))
                return shoal__fail(index, SHOAL_ENOMEM,
                                   "out of memory for the pq tables (%u lists; pq_tables = 1 "
                                   "does without them)", m->nlist);
            query_terms(st, m, query);
            tables = 1;
        } else if (m->terms) { /* the index shrank below the auto threshold */
            shoal__free(&index->mem, m->terms);
            m->terms = NULL;
        }
    }
    if (!l2 && st->quantizer == SHOAL_QUANTIZER_PQ) {
        build_lut(index, st, query, 0);
        if (is_pq4(st)) delta = quantize_lut(st, &sum_min); /* one table for every list */
    }
    int filtered = shoal__filtered(params);
    for (uint32_t p = 0; p < w.total; p++) {
        uint32_t l = st->probes[p].list;
        const ivf_list *list = &m->lists[l];
        if (p >= w.nprobe && (w.matched >= w.base || list->missing)) break;
        if (filtered) {
            if (!list_matches(index, list, params)) continue;
            w.matched++;
        }
        if (list->count == 0) continue;
        if (st->quantizer == SHOAL_QUANTIZER_F32) {
            scan_flat(index, st, list, &qq);
        } else if (st->quantizer == SHOAL_QUANTIZER_SQ8) {
            scan_sq8(index, st, l, &qq);
        } else {
            const float *c = m->centroids + (size_t)l * st->dim;
            float bias = 0.0f;
            if (tables) {
                bias = st->probes[p].dist; /* ||q - c||^2, from the coarse step */
                list_lut(st, m, l);
                if (is_pq4(st)) delta = quantize_lut(st, &sum_min);
            } else if (l2) {
                for (uint32_t j = 0; j < st->dim; j++) st->qres[j] = query[j] - c[j];
                build_lut(index, st, st->qres, 1);
                if (is_pq4(st)) delta = quantize_lut(st, &sum_min);
            } else {
                bias = from_dot(index, index->kernels->dot_f32(query, c, st->dim));
            }
            if (is_pq4(st))
                scan_pq4(index, st, list, bias + sum_min, delta, &qq);
            else
                scan_pq8(index, st, list, bias, &qq);
        }
    }
    return SHOAL_OK;
}

static int ivf_search(shoal_index *index, const float *query, shoal__topk *topk,
                      const shoal_search_params *params) {
    ivf_state *st = state_of(index);
    if (!st->model) return SHOAL_OK; /* untrained: no records */
    uint32_t rerank;
    int rc = rerank_depth(index, st, topk, params, &rerank);
    if (rc) return rc;
    if (rerank && index->rows_external)
        return shoal__fail(index, SHOAL_ESTATE,
                           "the rerank rows are outside the index (rerank_external): search "
                           "with shoal_index_search_candidates, read the rows, then "
                           "shoal_index_rerank_rows");
    shoal__topk cand;
    if ((rc = ivf_scan(index, query, topk, params, rerank, &cand))) return rc;
    /* Rerank: exact distances for the candidates, from the copies.  The rows
     * are scattered and cold, so each is prefetched a few candidates ahead
     * (memory latency, not arithmetic, is the cost here). */
    for (uint32_t i = 0; i < cand.count + SHOAL__RERANK_AHEAD; i++) {
        if (i < cand.count) {
            uint32_t label = cand.hits[i].label;
            const float *v = rerank_row(st, label);
            shoal__topk_push(topk, shoal__distance(index, query, v), index->seqs[label], label);
        }
        if (i + SHOAL__RERANK_AHEAD < cand.count) {
            const char *row = (const char *)rerank_row(st, cand.hits[i + SHOAL__RERANK_AHEAD].label);
            for (size_t at = 0; at < (size_t)st->dim * sizeof(float); at += 64) SHOAL__PREFETCH(row + at);
        }
    }
    return SHOAL_OK;
}

/* ---------------------------------------------------- external rerank rows */

/*
 * Phase 1 scans exactly as ivf_search does and hands out the candidate
 * heap in its array order, each with where its row lies: the list's rerank
 * section (recorded at load, FORMAT.md) plus its position's row.  Phase 2
 * pushes exact distances in that same order, as ivf_search's rerank loop
 * does from memory -- so both give the same results, ties included.
 */
static int ivf_candidates(shoal_index *index, const float *q, uint32_t k,
                          const shoal_search_params *params, shoal_candidate *out, uint32_t cap) {
    ivf_state *st = state_of(index);
    if (!st->model) return 0;
    shoal__topk topk = {NULL, k < index->live ? k : index->live, 0};
    uint32_t rerank;
    int rc = rerank_depth(index, st, &topk, params, &rerank);
    if (rc) return rc;
    if (!rerank) /* (external rows imply copies, and so a depth) */
        return shoal__fail(index, SHOAL_ESTATE, "this index does not rerank");
    shoal__topk cand;
    if ((rc = ivf_scan(index, q, &topk, params, rerank, &cand))) return rc;
    size_t row = (size_t)st->dim * sizeof(float);
    for (uint32_t i = 0; i < cand.count && i < cap; i++) {
        uint32_t label = cand.hits[i].label;
        out[i].label = label;
        out[i].distance = cand.hits[i].distance;
        out[i].offset = st->model->lists[st->list_of[label]].rows_at + (uint64_t)st->pos_of[label] * row;
        out[i].floor = -INFINITY; /* (no bound known) */
    }
    return (int)cand.count;
}

static int ivf_reranks(const shoal_index *index, uint32_t label) {
    const ivf_state *st = state_of(index);
    return st->model && shoal__is_alive(index, label) && label < st->cap &&
           st->list_of[label] != SHOAL_NO_LABEL;
}

/* ------------------------------------------------------- check and stats */

static int ivf_check(shoal_index *index) {
    ivf_state *st = state_of(index);
    ivf_model *m = st->model;
    if (!m)
        return index->live ? shoal__fail(index, SHOAL_ECORRUPT, "ivf: untrained with %u records",
                                         index->live)
                           : SHOAL_OK;
    uint64_t total = 0;
    for (uint32_t l = 0; l < m->nlist; l++) {
        const ivf_list *list = &m->lists[l];
        if (list->count > list->cap)
            return shoal__fail(index, SHOAL_ECORRUPT, "ivf: list %u holds %u of %u", l,
                               list->count, list->cap);
        if (st->copies && list->cap && !list->rerank && !index->rows_external)
            return shoal__fail(index, SHOAL_ECORRUPT, "ivf: list %u lacks its rerank section", l);
        for (uint32_t pos = 0; pos < list->count; pos++) {
            uint32_t label = list->labels[pos];
            if (!shoal__is_alive(index, label))
                return shoal__fail(index, SHOAL_ECORRUPT, "ivf: list %u holds dead label %u", l,
                                   label);
            if (st->list_of[label] != l || st->pos_of[label] != pos)
                return shoal__fail(index, SHOAL_ECORRUPT,
                                   "ivf: label %u is at list %u pos %u but recorded at %u/%u",
                                   label, l, pos, st->list_of[label], st->pos_of[label]);
        }
        total += list->count;
    }
    if (total != index->live)
        return shoal__fail(index, SHOAL_ECORRUPT, "ivf: lists hold %llu records, %u are live",
                           (unsigned long long)total, index->live);
    return SHOAL_OK;
}

/* Bytes of a block as the allocator counts it (16-byte header). */
static size_t block_size(const void *p, size_t bytes) { return p ? bytes + 16 : 0; }

static void ivf_stats(const shoal_index *index, shoal_stats *out) {
    const ivf_state *st = state_of(index);
    const ivf_model *m = st->model;
    if (!m) return;
    size_t dim = st->dim, codes = 0, rerank = 0;
    codes += block_size(m->centroids, (size_t)m->nlist * dim * sizeof(float));
    codes += block_size(m->sq_center, dim * sizeof(float));
    codes += block_size(m->codebooks, (size_t)st->pq_m * st->dsub * st->ksub * sizeof(float));
    codes += block_size(m->terms, (size_t)m->nlist * st->pq_m * st->ksub * sizeof(float));
    codes += block_size(m->lists, (size_t)m->nlist * sizeof *m->lists);
    for (uint32_t l = 0; l < m->nlist; l++) {
        const ivf_list *list = &m->lists[l];
        size_t cb = is_pq4(st) ? (size_t)(list->cap / BLOCK) * st->block_bytes
                               : (size_t)list->cap * st->code_size;
        codes += block_size(list->labels, (size_t)list->cap * sizeof(uint32_t));
        codes += block_size(list->codes, cb);
        rerank += block_size(list->rerank, (size_t)list->cap * dim * sizeof(float));
    }
    out->codes_bytes = codes;
    out->rerank_bytes = rerank;
    out->nlist = m->nlist;
}

static void ivf_destroy(shoal_index *index) {
    ivf_state *st = state_of(index);
    if (!st) return;
    shoal__mem *mem = &index->mem;
    model_free(index, st->model);
    shoal__free(mem, st->list_of);
    shoal__free(mem, st->pos_of);
    shoal__free(mem, st->batch);
    shoal__free(mem, st->qres);
    shoal__free(mem, st->lut);
    shoal__free(mem, st->decoded);
    shoal__free(mem, st->lut8);
    shoal__free(mem, st->lut_lo);
    shoal__free(mem, st->qterms);
    shoal__free(mem, st->pq_codes);
    shoal__free(mem, st->qcodes);
    shoal__free(mem, st->qcodes_ip);
    shoal__free(mem, st->probes);
    shoal__free(mem, st->cand);
    shoal__free(mem, st);
    index->kind_state = NULL;
}

/* -------------------------------------------------------------- segments */

/*
 * Sections (docs/FORMAT.md), only once trained: IVF_CENTROIDS (nlist x dim
 * float32), IVF_SQ8 (scale, 4 zero bytes, dim centres) or IVF_CODEBOOKS
 * (the transposed codebooks as in memory), IVF_COUNTS (records per list),
 * then per list IVF_LIST (count labels, then the codes: count rows, or for
 * 4-bit PQ ceil(count / 32) blocks with unused nibbles zero) and, with
 * rerank copies, IVF_RERANK (count x dim float32).  Each list's sections
 * are contiguous, so a reader can fetch one list alone (FORMAT.md,
 * "Blocks"); a view uses them in place.
 */

static size_t list_code_bytes(const ivf_state *st, uint32_t count) {
    return is_pq4(st) ? (size_t)((count + BLOCK - 1) / BLOCK) * st->block_bytes
                      : (size_t)count * st->code_size;
}

static void ivf_save_config(const shoal_index *index, uint32_t kp[10]) {
    const ivf_state *st = state_of(index);
    kp[0] = st->nlist_param;
    kp[1] = st->nprobe;
    kp[2] = st->quantizer;
    kp[3] = st->pq_m;
    kp[4] = st->pq_bits;
    kp[5] = st->rerank;
    kp[6] = st->train_sample;
    kp[7] = st->train_iters;
    kp[8] = st->model ? st->model->nlist : 0;
    kp[9] = st->pq_tables;
}

static int ivf_save(const shoal_index *index, shoal__seg_writer *w) {
    const ivf_state *st = state_of(index);
    const ivf_model *m = st->model;
    if (!m) return SHOAL_OK;
    uint32_t dim = st->dim, nlist = m->nlist;
    uint8_t *p = shoal__seg_begin(w, SHOAL__SEC_IVF_CENTROIDS, 0, 4ull * nlist * dim);
    if (!p) return SHOAL_ENOMEM;
    shoal__put_u32s(p, m->centroids, (size_t)nlist * dim);
    shoal__seg_end(w);
    if (st->quantizer == SHOAL_QUANTIZER_SQ8) {
        if (!(p = shoal__seg_begin(w, SHOAL__SEC_IVF_SQ8, 0, 8 + 4ull * dim))) return SHOAL_ENOMEM;
        shoal__put_f32(p, m->sq_scale);
        shoal__put_u32s(p + 8, m->sq_center, dim);
        shoal__seg_end(w);
    } else if (st->quantizer == SHOAL_QUANTIZER_PQ) {
        size_t n = (size_t)st->pq_m * st->dsub * st->ksub;
        if (!(p = shoal__seg_begin(w, SHOAL__SEC_IVF_CODEBOOKS, 0, 4ull * n))) return SHOAL_ENOMEM;
        shoal__put_u32s(p, m->codebooks, n);
        shoal__seg_end(w);
    }
    if (!(p = shoal__seg_begin(w, SHOAL__SEC_IVF_COUNTS, 0, 4ull * nlist))) return SHOAL_ENOMEM;
    for (uint32_t l = 0; l < nlist; l++) shoal__put_u32(p + 4 * (size_t)l, m->lists[l].count);
    shoal__seg_end(w);
    for (uint32_t l = 0; l < nlist; l++) {
        const ivf_list *list = &m->lists[l];
        uint32_t count = list->count;
        size_t codes = list_code_bytes(st, count);
        if (!(p = shoal__seg_begin(w, SHOAL__SEC_IVF_LIST, l, 4ull * count + codes)))
            return SHOAL_ENOMEM;
        shoal__put_u32s(p, list->labels, count);
        uint8_t *c = p + 4 * (size_t)count;
        if (codes && st->quantizer == SHOAL_QUANTIZER_F32) {
            shoal__put_u32s(c, list->codes, (size_t)count * dim);
        } else if (codes && st->quantizer == SHOAL_QUANTIZER_SQ8) {
            for (uint32_t i = 0; i < count; i++) {
                const uint8_t *row = list->codes + (size_t)i * st->code_size;
                float norm;
                memcpy(&norm, row, 4);
                shoal__put_f32(c + (size_t)i * st->code_size, norm);
                memcpy(c + (size_t)i * st->code_size + 4, row + 4, dim);
            }
        } else if (codes) {
            memcpy(c, list->codes, codes);
            /* Slots past the count may hold a moved record's old nibbles. */
            if (is_pq4(st))
                for (uint32_t pos = count; pos % BLOCK; pos++)
                    for (uint32_t j = 0; j < st->m2; j++) pq4_set(st, c, pos, j, 0);
        }
        shoal__seg_end(w);
        if (st->copies) {
            if (!(p = shoal__seg_begin(w, SHOAL__SEC_IVF_RERANK, l, 4ull * count * dim)))
                return SHOAL_ENOMEM;
            shoal__put_u32s(p, list->rerank, (size_t)count * dim);
            shoal__seg_end(w);
        }
        /* The list's records: a lazy reader that fetches this list has its
         * ids, sequence numbers and metadata with it. */
        if (shoal__list_records_save(index, w, l, list->labels, count)) return SHOAL_ENOMEM;
    }
    return SHOAL_OK;
}

/* Reads a float32 section of n values that must be finite into *out
 * (allocated). */
static int load_floats(shoal_index *index, shoal__seg_reader *r, uint32_t kind, uint64_t n,
                       size_t skip, float **out) {
    const uint8_t *raw;
    int borrow, rc;
    if ((rc = shoal__seg_next(r, kind, 0, skip + 4 * n, &raw, &borrow))) return rc;
    if (!shoal__all_zero(raw + (skip ? 4 : 0), skip ? skip - 4 : 0) ||
        shoal__first_nonfinite(raw + skip, (size_t)n) != n ||
        (skip && shoal__first_nonfinite(raw, 1) != 1))
        return shoal__fail(index, SHOAL_ECORRUPT, "ivf: a model value is not finite");
    *out = shoal__alloc(&index->mem, (size_t)n * 4);
    if (!*out) return shoal__fail(index, SHOAL_ENOMEM, "out of memory for the ivf model");
    shoal__get_u32s(*out, raw + skip, (size_t)n);
    return SHOAL_OK;
}

static int load_rerank(shoal_index *index, shoal__seg_reader *r, ivf_state *st, ivf_list *list,
                       uint32_t l);
static int locate_rerank(shoal_index *index, shoal__seg_reader *r, ivf_state *st,
                         ivf_list *list, uint32_t l);

static int load_list(shoal_index *index, shoal__seg_reader *r, ivf_state *st, ivf_model *m,
                     uint32_t l) {
    ivf_list *list = &m->lists[l];
    uint32_t count = list->count, dim = st->dim;
    size_t codes = list_code_bytes(st, count);
    const uint8_t *raw;
    int borrow, rc;
    if ((rc = shoal__seg_next(r, SHOAL__SEC_IVF_LIST, l, 4ull * count + codes, &raw, &borrow)))
        return rc;
    for (uint32_t pos = 0; pos < count; pos++) {
        uint32_t label = shoal__get_u32(raw + 4 * (size_t)pos);
        if (label >= index->label_bound || !shoal__is_alive(index, label) ||
            st->list_of[label] != SHOAL_NO_LABEL)
            return shoal__fail(index, SHOAL_ECORRUPT,
                               "ivf: list %u holds label %u (dead, repeated or out of range)", l,
                               label);
        st->list_of[label] = l;
        st->pos_of[label] = pos;
    }
    const uint8_t *c = raw + 4 * (size_t)count;
    int bad = 0;
    if (st->quantizer == SHOAL_QUANTIZER_F32) {
        bad = shoal__first_nonfinite(c, (size_t)count * dim) != (size_t)count * dim;
    } else if (st->quantizer == SHOAL_QUANTIZER_SQ8) {
        for (uint32_t i = 0; i < count && !bad; i++) {
            const uint8_t *row = c + (size_t)i * st->code_size;
            bad = shoal__first_nonfinite(row, 1) != 1;
            for (uint32_t j = 0; j < dim && !bad; j++) bad = row[4 + j] == 0x80;
        }
    } else if (is_pq4(st)) {
        for (uint32_t pos = count; pos % BLOCK && !bad; pos++)
            for (uint32_t j = 0; j < st->m2 && !bad; j++) bad = pq4_get(st, c, pos, j) != 0;
        for (uint32_t pos = 0; pos < count && !bad; pos++)
            for (uint32_t j = st->pq_m; j < st->m2 && !bad; j++) bad = pq4_get(st, c, pos, j) != 0;
    }
    if (bad) return shoal__fail(index, SHOAL_ECORRUPT, "ivf: list %u has invalid codes", l);
    if (borrow && count) {
        list->labels = (uint32_t *)(uintptr_t)raw;
        list->codes = (uint8_t *)(uintptr_t)c;
        list->cap = is_pq4(st) ? (count + BLOCK - 1) / BLOCK * BLOCK : count;
        list->borrowed = 1;
    } else if (count) {
        uint32_t keep = list->count;
        list->count = 0;
        rc = list_reserve(index, st, m, l, keep);
        list->count = keep;
        if (rc) return shoal__fail(index, rc, "out of memory for ivf list %u", l);
        shoal__get_u32s(list->labels, raw, count);
        if (st->quantizer == SHOAL_QUANTIZER_F32) {
            shoal__get_u32s(list->codes, c, (size_t)count * dim);
        } else if (st->quantizer == SHOAL_QUANTIZER_SQ8) {
            memcpy(list->codes, c, codes);
            for (uint32_t i = 0; i < count; i++) {
                float norm = shoal__get_f32(c + (size_t)i * st->code_size);
                memcpy(list->codes + (size_t)i * st->code_size, &norm, 4);
            }
        } else {
            memcpy(list->codes, c, codes);
        }
    }
    if (st->copies) {
        rc = index->rows_external ? locate_rerank(index, r, st, list, l)
                                  : load_rerank(index, r, st, list, l);
        if (rc) return rc;
    }
    if (r->head->required & SHOAL__FEATURE_LIST_RECORDS)
        return shoal__list_records_load(index, r, l, list->labels, count);
    return SHOAL_OK;
}

static int load_rerank(shoal_index *index, shoal__seg_reader *r, ivf_state *st, ivf_list *list,
                       uint32_t l) {
    uint32_t count = list->count, dim = st->dim;
    const uint8_t *raw;
    int borrow, rc;
    if ((rc = shoal__seg_next(r, SHOAL__SEC_IVF_RERANK, l, 4ull * count * dim, &raw, &borrow)))
        return rc;
    if (shoal__first_nonfinite(raw, (size_t)count * dim) != (size_t)count * dim)
        return shoal__fail(index, SHOAL_ECORRUPT, "ivf: list %u has invalid rerank rows", l);
    if (!count) return SHOAL_OK;
    if (list->borrowed && borrow)
        list->rerank = (float *)(uintptr_t)raw;
    else if (list->borrowed) { /* codes in place, rerank rows compressed */
        list->rerank = shoal__alloc(&index->mem, (size_t)count * dim * 4);
        if (!list->rerank) return shoal__fail(index, SHOAL_ENOMEM, "out of memory for rerank rows");
        list->rerank_owned = 1;
        shoal__get_u32s(list->rerank, raw, (size_t)count * dim);
    } else {
        shoal__get_u32s(list->rerank, raw, (size_t)count * dim);
    }
    return SHOAL_OK;
}

/* External rerank rows: the list's rerank section is only located (its
 * rows verified when the window holds them, e.g. a whole segment); it must
 * be stored raw, so that each row can be read at its offset. */
static int locate_rerank(shoal_index *index, shoal__seg_reader *r, ivf_state *st,
                         ivf_list *list, uint32_t l) {
    uint32_t count = list->count, dim = st->dim;
    shoal__seg_section sec;
    const uint8_t *raw;
    int rc = shoal__seg_locate(r, SHOAL__SEC_IVF_RERANK, l, 4ull * count * dim, &sec, &raw);
    if (rc) return rc;
    if (sec.codec != 0)
        return shoal__fail(index, SHOAL_EUNSUPPORTED,
                           "ivf: list %u's rerank rows are zstd-compressed; external rerank rows "
                           "need a segment saved with zstd level 0",
                           l);
    if (raw && shoal__first_nonfinite(raw, (size_t)count * dim) != (size_t)count * dim)
        return shoal__fail(index, SHOAL_ECORRUPT, "ivf: list %u has invalid rerank rows", l);
    list->rows_at = sec.offset;
    return SHOAL_OK;
}

static int ivf_load(shoal_index *index, shoal__seg_reader *r, const uint32_t kp[10]) {
    ivf_state *st = state_of(index);
    uint32_t nlist = kp[8], dim = st->dim;
    int rc;
    if (!st->copies) index->rows_external = 0; /* nothing to leave out */
    if ((nlist == 0 && index->live) || nlist > IVF_NLIST_MAX ||
        (nlist && st->nlist_param && nlist != st->nlist_param) || (nlist && st->nprobe > nlist))
        return shoal__fail(index, SHOAL_ECORRUPT, "ivf: %u lists for %u records (nlist %u)",
                           nlist, index->live, st->nlist_param);
    if ((rc = ivf_reserve(index, index->label_bound)))
        return shoal__fail(index, rc, "out of memory for %u labels", index->label_bound);
    for (uint32_t label = 0; label < index->label_bound; label++)
        st->list_of[label] = SHOAL_NO_LABEL;
    if (nlist == 0) return SHOAL_OK;

    ivf_model *m = shoal__calloc(&index->mem, 1, sizeof *m);
    if (!m) return shoal__fail(index, SHOAL_ENOMEM, "out of memory for the ivf model");
    st->model = m; /* freed by destroy if anything below fails */
    m->nlist = nlist;
    m->lists = shoal__calloc(&index->mem, nlist, sizeof *m->lists);
    if (!m->lists) return shoal__fail(index, SHOAL_ENOMEM, "out of memory for %u lists", nlist);
    if ((rc = load_floats(index, r, SHOAL__SEC_IVF_CENTROIDS, (uint64_t)nlist * dim, 0,
                          &m->centroids)))
        return rc;
    if (st->quantizer == SHOAL_QUANTIZER_SQ8) {
        const uint8_t *raw;
        int borrow;
        if ((rc = shoal__seg_next(r, SHOAL__SEC_IVF_SQ8, 0, 8 + 4ull * dim, &raw, &borrow)))
            return rc;
        m->sq_scale = shoal__get_f32(raw);
        if (!(m->sq_scale > 0.0f) || shoal__first_nonfinite(raw, 1) != 1 ||
            shoal__get_u32(raw + 4) || shoal__first_nonfinite(raw + 8, dim) != dim)
            return shoal__fail(index, SHOAL_ECORRUPT, "ivf: bad sq8 parameters");
        if (!(m->sq_center = shoal__alloc(&index->mem, (size_t)dim * 4)))
            return shoal__fail(index, SHOAL_ENOMEM, "out of memory for the ivf model");
        shoal__get_u32s(m->sq_center, raw + 8, dim);
        if (!(shoal__sq8_reach(dim, m->sq_center, m->sq_scale) < SHOAL__SQ8_REACH_MAX))
            return shoal__fail(index, SHOAL_ECORRUPT,
                               "ivf: sq8 parameters reach past float32 (no index writes them)");
    } else if (st->quantizer == SHOAL_QUANTIZER_PQ) {
        if ((rc = load_floats(index, r, SHOAL__SEC_IVF_CODEBOOKS,
                              (uint64_t)st->pq_m * st->dsub * st->ksub, 0, &m->codebooks)))
            return rc;
    }
    const uint8_t *raw;
    int borrow;
    if ((rc = shoal__seg_next(r, SHOAL__SEC_IVF_COUNTS, 0, 4ull * nlist, &raw, &borrow)))
        return rc;
    uint64_t total = 0;
    for (uint32_t l = 0; l < nlist; l++) total += m->lists[l].count = shoal__get_u32(raw + 4 * (size_t)l);
    if (total != index->live)
        return shoal__fail(index, SHOAL_ECORRUPT, "ivf: lists hold %llu records, %u are live",
                           (unsigned long long)total, index->live);
    if (index->lazy) /* the lists come later, one by one (ivf_attach) */
        for (uint32_t l = 0; l < nlist; l++) m->lists[l].missing = m->lists[l].count > 0;
    else
        for (uint32_t l = 0; l < nlist; l++)
            if ((rc = load_list(index, r, st, m, l))) return rc;
    if (size_scratch(index, st, nlist))
        return shoal__fail(index, SHOAL_ENOMEM, "out of memory for search scratch");
    return SHOAL_OK;
}

/* ------------------------------------------------------------------ lazy */

static int ivf_attach(shoal_index *index, shoal__seg_reader *r, uint32_t l) {
    ivf_state *st = state_of(index);
    ivf_model *m = st->model;
    ivf_list *list = &m->lists[l];
    int rc = load_list(index, r, st, m, l);
    if (!rc) {
        list->missing = 0;
        return SHOAL_OK;
    }
    /* All or nothing: take back the positions and records the list got. */
    for (uint32_t label = 0; label < index->label_bound; label++) {
        if (st->list_of[label] != l) continue;
        st->list_of[label] = SHOAL_NO_LABEL;
        shoal__list_records_undo(index, &label, 1);
    }
    shoal__free(&index->mem, list->labels);
    shoal__free(&index->mem, list->codes);
    shoal__free(&index->mem, list->rerank);
    list->labels = NULL;
    list->codes = NULL;
    list->rerank = NULL;
    list->cap = 0;
    return rc;
}

static int ivf_missing(const shoal_index *index, uint32_t l) {
    const ivf_model *m = state_of(index)->model;
    return m && l < m->nlist && m->lists[l].missing;
}

static int ivf_wanted(shoal_index *index, const float *q, const shoal_search_params *params,
                      uint32_t *out, uint32_t cap) {
    ivf_state *st = state_of(index);
    const ivf_model *m = st->model;
    if (!m) return 0;
    uint32_t n = 0;
    probe_walk w;
    int rc = walk_probes(index, st, q, params, &w);
    if (rc) return rc;
    int filtered = shoal__filtered(params);
    for (uint32_t p = 0; p < w.total; p++) {
        uint32_t l = st->probes[p].list;
        const ivf_list *list = &m->lists[l];
        if (p >= w.nprobe && w.matched >= w.base) break;
        if (list->missing) {
            if (n < cap) out[n] = l;
            n++;
            w.matched++; /* perhaps: the next ask knows */
        } else if (!filtered || list_matches(index, list, params)) {
            w.matched++;
        }
    }
    return (int)n;
}

const shoal__kind_ops shoal__ivf_ops = {
    .name = "ivf",
    .create = ivf_create,
    .reserve = ivf_reserve,
    .insert = ivf_insert,
    .remove = ivf_remove,
    .abort = ivf_abort,
    .vector = ivf_vector,
    .search = ivf_search,
    .check = ivf_check,
    .stats = ivf_stats,
    .destroy = ivf_destroy,
    .train = ivf_train,
    .prepare_add = ivf_prepare_add,
    .trained = ivf_trained,
    .save_config = ivf_save_config,
    .save = ivf_save,
    .load = ivf_load,
    .records_per_list = 1,
    .attach = ivf_attach,
    .wanted = ivf_wanted,
    .missing = ivf_missing,
    .candidates = ivf_candidates,
    .reranks = ivf_reranks,
};
