/*
 * shoal.h -- the whole public contract of the Shoal core.
 *
 * Shoal is a vector similarity index that computes on memory buffers only:
 * no file or network I/O, no global mutable state, no rand().  Everything a
 * host (the JS binding, the CLI, WASI) needs is declared here; nothing it
 * needs is private.
 *
 * Conventions
 *   - Functions return int: >= 0 on success (often a count), a negative
 *     SHOAL_E* code on failure.  A failing call leaves the index unchanged
 *     unless its comment says otherwise, and stores a detail message that
 *     shoal_index_errmsg() returns until the next call on the same handle.
 *   - Handles are opaque.  Every *_new has a *_free that accepts NULL.
 *   - Parameter structs: call *_init() first; a field left 0 means "default".
 *     Out-of-range values are an error (SHOAL_EPARAM), never clamped.
 *   - Ids are byte strings of 1..SHOAL_ID_MAX bytes (UTF-8 from JS).  A batch
 *     of n ids is one byte buffer plus n+1 offsets: id i is
 *     bytes[offsets[i] .. offsets[i+1]).
 *   - A "label" is the index's number for a stored record.  It is valid until
 *     the next mutating call; use shoal_index_label_id() to turn it into an id.
 *   - Distances: smaller is closer for every metric.
 *       l2     squared Euclidean distance
 *       ip     negative inner product
 *       cosine 1 - cosine similarity (vectors are normalized once, on insert)
 *   - Thread safety: a handle is used by one thread at a time (searches
 *     allocate scratch space through it); distinct handles are independent.
 */
#ifndef SHOAL_H
#define SHOAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every public function is declared SHOAL_API: exported from the shared
 * library, and from the Emscripten module (where `used` is what exports a
 * function, so no list of exports is kept anywhere else). */
#if defined(__EMSCRIPTEN__)
#define SHOAL_API __attribute__((used, visibility("default")))
#elif defined(__GNUC__) || defined(__clang__)
#define SHOAL_API __attribute__((visibility("default")))
#else
#define SHOAL_API
#endif

/* ---------------------------------------------------------------- version */

#define SHOAL_VERSION_MAJOR 0
#define SHOAL_VERSION_MINOR 1
#define SHOAL_VERSION_PATCH 0
#define SHOAL_VERSION_NUMBER \
    (SHOAL_VERSION_MAJOR * 10000 + SHOAL_VERSION_MINOR * 100 + SHOAL_VERSION_PATCH)

/* The version of the library actually linked, "MAJOR.MINOR.PATCH". */
SHOAL_API const char *shoal_version(void);
SHOAL_API int shoal_version_number(void);

/* ----------------------------------------------------------------- errors */

/*
 * The one error list.  X(NAME, code, JsClass, JsParent, "message")
 * It yields the SHOAL_E* codes below, shoal_strerror(), shoal_error_name(),
 * the table in docs/ERRORS.md and the JS error classes (tools/gen_errors.c).
 * Codes are stable once released: add new ones at the end of their family.
 * Families: -1..-19 usage and data errors, -20..-39 corrupt or incompatible
 * serialized data (every one is a CorruptDataError in JS).
 */
#define SHOAL_ERROR_LIST(X)                                                    \
    X(NOMEM, -1, OutOfMemoryError, ShoalError, "out of memory")                \
    X(PARAM, -2, ParameterError, ShoalError,                                   \
      "parameter out of range or inconsistent")                                \
    X(DIM, -3, DimensionError, ShoalError, "vector dimension mismatch")        \
    X(VECTOR, -4, InvalidVectorError, ShoalError,                              \
      "vector has a NaN or infinite component, zero length under cosine, "     \
      "or length past 2^62 under l2 or ip")                                    \
    X(ID, -5, InvalidIdError, ShoalError, "id is empty or too long")           \
    X(NOTFOUND, -6, NotFoundError, ShoalError, "no record with that id")       \
    X(UNSUPPORTED, -7, UnsupportedError, ShoalError,                           \
      "operation not supported by this index kind")                            \
    X(STATE, -8, StateError, ShoalError,                                       \
      "operation not valid in the index's current state")                      \
    X(TOOBIG, -9, TooBigError, ShoalError, "size limit exceeded")              \
    X(FULL, -10, StorageFullError, ShoalError,                                 \
      "the store is full (quota or disk space): nothing was written")          \
    X(CORRUPT, -20, CorruptDataError, ShoalError, "corrupt data")              \
    X(TRUNCATED, -21, TruncatedDataError, CorruptDataError, "data truncated")  \
    X(CHECKSUM, -22, ChecksumError, CorruptDataError, "checksum mismatch")     \
    X(VERSION, -23, VersionError, CorruptDataError,                            \
      "format version or required feature not supported")

enum shoal_error {
    SHOAL_OK = 0,
#define SHOAL__ERROR_ENUM(name, code, js, parent, msg) SHOAL_E##name = code,
    SHOAL_ERROR_LIST(SHOAL__ERROR_ENUM)
#undef SHOAL__ERROR_ENUM
};

/* Static English text for a code; "unknown error" for codes not in the list. */
SHOAL_API const char *shoal_strerror(int code);
/* "SHOAL_EDIM" etc.; "SHOAL_OK" for 0; NULL for codes not in the list. */
SHOAL_API const char *shoal_error_name(int code);

/* -------------------------------------------------------------- allocator */

/*
 * Given per handle and used for every allocation the handle makes (and later
 * handed to zstd, whose ZSTD_customMem has the same shape).  alloc returns
 * memory aligned for any type, or NULL.  free accepts NULL.  Without one
 * (NULL), a handle uses malloc/free, except that on Linux a block of 4 MiB
 * or more is 2 MiB-aligned and advised MADV_HUGEPAGE (transparent huge
 * pages: fewer TLB misses when a search jumps between rows; src/core/mem.c).
 */
typedef struct shoal_allocator {
    void *(*alloc)(void *ctx, size_t size);
    void (*free)(void *ctx, void *ptr);
    void *ctx;
} shoal_allocator;

/* ------------------------------------------------------------ enumerations */

/*
 * Every enumeration that crosses a language boundary is one list,
 * X(NAME, value, "word"): it yields the C enum below, the word JS options,
 * CLI flags and docs use for each value (shoal_<enum>_word / _parse), and
 * the JS and TypeScript word lists (tools/gen.c).  Values are stable: they
 * are stored in segments.
 */
#define SHOAL_METRIC_LIST(X)                                                   \
    X(L2, 0, "l2")         /* squared Euclidean distance */                    \
    X(IP, 1, "ip")         /* negative inner product */                        \
    X(COSINE, 2, "cosine") /* 1 - cosine similarity */
#define SHOAL_KIND_LIST(X)                                                     \
    X(FLAT, 0, "flat") /* exact search over every record */                    \
    X(HNSW, 1, "hnsw") /* approximate: hierarchical navigable small world */   \
    X(IVF, 2, "ivf")   /* approximate: inverted lists around k-means centroids */
/* How an index keeps its vectors.  IVF encodes the residual (vector minus
 * its list's centroid); HNSW the vector. */
#define SHOAL_QUANTIZER_LIST(X)                                                \
    X(F32, 0, "f32") /* float32: exact distances */                            \
    X(SQ8, 1, "sq8") /* int8 per dimension (hnsw, ivf) */                      \
    X(PQ, 2, "pq")   /* product quantization: pq_m codes of pq_bits bits (ivf) */
#define SHOAL_SIMD_LIST(X)                                                     \
    X(AUTO, 0, "auto")            /* the best the CPU (or wasm build) runs */  \
    X(SCALAR, 1, "scalar")        /* the reference kernels: the specification */ \
    X(AVX2, 2, "avx2")            /* x86-64 AVX2 (the CPU must also have FMA) */ \
    X(AVX512, 3, "avx512")        /* x86-64 AVX-512 F/BW/VL */                 \
    X(WASM128, 4, "wasm-simd128") /* WebAssembly SIMD128 (chosen at build time) */ \
    X(NEON, 5, "neon")            /* AArch64 NEON (baseline on every aarch64 build) */

typedef enum shoal_metric {
#define SHOAL__ENUM_METRIC(name, value, word) SHOAL_METRIC_##name = value,
    SHOAL_METRIC_LIST(SHOAL__ENUM_METRIC)
#undef SHOAL__ENUM_METRIC
} shoal_metric;

typedef enum shoal_kind {
#define SHOAL__ENUM_KIND(name, value, word) SHOAL_KIND_##name = value,
    SHOAL_KIND_LIST(SHOAL__ENUM_KIND)
#undef SHOAL__ENUM_KIND
} shoal_kind;

typedef enum shoal_quantizer {
#define SHOAL__ENUM_QUANTIZER(name, value, word) SHOAL_QUANTIZER_##name = value,
    SHOAL_QUANTIZER_LIST(SHOAL__ENUM_QUANTIZER)
#undef SHOAL__ENUM_QUANTIZER
} shoal_quantizer;

typedef enum shoal_simd {
#define SHOAL__ENUM_SIMD(name, value, word) SHOAL_SIMD_##name = value,
    SHOAL_SIMD_LIST(SHOAL__ENUM_SIMD)
#undef SHOAL__ENUM_SIMD
} shoal_simd;

/* The word of a value ("cosine"), or NULL for a value not in the list. */
SHOAL_API const char *shoal_metric_word(shoal_metric value);
SHOAL_API const char *shoal_kind_word(shoal_kind value);
SHOAL_API const char *shoal_quantizer_word(shoal_quantizer value);
SHOAL_API const char *shoal_simd_word(shoal_simd value);
/* The value of a word (len bytes, not NUL-terminated), or SHOAL_EPARAM. */
SHOAL_API int shoal_metric_parse(const char *word, size_t len);
SHOAL_API int shoal_kind_parse(const char *word, size_t len);
SHOAL_API int shoal_quantizer_parse(const char *word, size_t len);
SHOAL_API int shoal_simd_parse(const char *word, size_t len);

/* Name of the kernels `want` resolves to on this machine ("scalar", "avx2",
 * "avx512", "wasm-simd128", "neon"), or NULL if this build or CPU cannot run
 * them. */
SHOAL_API const char *shoal_simd_name(shoal_simd want);

/* ---------------------------------------------------------------- indexes */

#define SHOAL_DIM_MAX 16384u
#define SHOAL_ID_MAX 1024u
#define SHOAL_K_MAX 65536u
/* The longest vector (Euclidean length, 2^62 ~ 4.6e18) that l2 and ip
 * accept, as records and as queries: between any two such vectors every
 * float32 squared distance and dot product is finite.  Cosine takes any
 * finite non-zero vector (it is normalized first). */
#define SHOAL_LENGTH_MAX 4611686018427387904.0 /* 2^62, a decimal literal for C++ before 17 */

typedef struct shoal_hnsw_params {
    uint32_t M;               /* links per node on upper levels (2*M on level 0); default 16, 2..1024 */
    uint32_t ef_construction; /* candidate list size while building; default 200, >= M */
    uint32_t ef_search;       /* default candidate list size for searches; default 64 */
    uint32_t build_batch;     /* 0 (default): insert one record at a time; B (1..4096):
                                 link inserts in batches of B whose neighbour searches
                                 run in parallel (shoal_index_set_threads).  The graph
                                 then depends on where batches end (every B records and
                                 each add call's end), never on the thread count. */
} shoal_hnsw_params;

typedef struct shoal_ivf_params {
    uint32_t nlist;        /* lists (k-means centroids); default: chosen at training,
                              about 4 * sqrt(training vectors), at most n / 39.
                              Must not exceed the training vectors. */
    uint32_t nprobe;       /* default lists probed per search; default max(1, nlist / 16);
                              at most nlist (checked when trained) */
    uint32_t pq_m;         /* PQ: sub-quantizers; must divide dim; default the largest
                              divisor of dim leaving >= 2 (pq_bits 4) or >= 4 (pq_bits 8)
                              dimensions per sub-quantizer */
    uint32_t pq_bits;      /* PQ: 8 (float tables) or 4 (fast scan: SIMD shuffles over
                              uint8 tables); default 8 */
    uint32_t train_sample; /* k-means trains on at most this many vectors per centroid,
                              sampled without replacement; default 256, >= 1 */
    uint32_t train_iters;  /* k-means iterations; default 10, at most 1000 */
    uint32_t pq_tables;    /* PQ with l2: per-list tables of the query-free distance
                              terms (nlist * pq_m * 2^pq_bits floats, counted in
                              codes_bytes), which make a probed list's lookup table a
                              sum instead of a distance computation.  0 = auto: used
                              where they pay -- sub-quantizers of >= 4 dimensions --
                              and are no larger than the lists' codes; 1 = never;
                              2 = always.  Built at the first search.  Other metrics
                              ignore it; other quantizers reject it. */
} shoal_ivf_params;

typedef struct shoal_params {
    uint32_t dim;           /* required: 1..SHOAL_DIM_MAX */
    shoal_metric metric;    /* default l2 */
    shoal_kind kind;        /* default flat */
    shoal_quantizer quantizer; /* default f32; hnsw: f32 or sq8 (int8 codes for
                                  traversal, float rerank of the final candidates);
                                  ivf: f32, sq8 or pq; flat: f32 */
    uint32_t rerank;        /* hnsw sq8, ivf sq8/pq: keep float32 copies of the vectors
                               (reported as shoal_stats.rerank_bytes) and by default
                               rerank this many best candidates exactly; 0 = no copies
                               (hnsw sq8 then reranks its final candidates against
                               their decoded codes).  At most 2^20; must be 0 for f32. */
    shoal_simd simd;        /* default auto; SCALAR forces the reference */
    uint64_t seed;          /* PRNG seed for randomized kinds; 0 = fixed default */
    const shoal_allocator *allocator; /* NULL = malloc/free; copied */
    shoal_hnsw_params hnsw; /* kind HNSW only */
    shoal_ivf_params ivf;   /* kind IVF only */
    char *errmsg;           /* optional: receives the rule a rejected parameter broke */
    size_t errmsg_size;     /* bytes at errmsg */
} shoal_params;

/*
 * The parameters every host sets by name: X(field, TYPE, "jsName",
 * "cli-flag", APPLIES, ENUM, "help").  TYPE is U32, U64 or ENUM (then ENUM
 * names its list); APPLIES says which kinds take it (ALL, HNSW, IVF,
 * QUANTIZED = hnsw and ivf).  The JS binding passes them as one array in
 * this order, the CLI builds its flags and help from it, and tools/gen.c
 * writes the JS names, TypeScript types and docs/PARAMS.md -- so adding a
 * parameter is one line here and its field above.  0 (or absent) means the
 * default everywhere.
 */
#define SHOAL_PARAM_LIST(X)                                                                  \
    X(dim, U32, "dim", "dim", ALL, NONE, "vector length, 1..16384 (required)")                \
    X(metric, ENUM, "metric", "metric", ALL, METRIC,                                         \
      "l2 (default, squared Euclidean), ip (negative inner product), cosine (1 - cosine)")   \
    X(kind, ENUM, "kind", "kind", ALL, KIND,                                                 \
      "flat (default, exact), hnsw (graph), ivf (inverted lists)")                           \
    X(quantizer, ENUM, "quantizer", "quantizer", QUANTIZED, QUANTIZER,                       \
      "f32 (default), sq8 (int8 codes; hnsw, ivf), pq (product quantization; ivf)")          \
    X(rerank, U32, "rerank", "rerank", QUANTIZED, NONE,                                      \
      "sq8/pq: keep float32 copies and rerank this many candidates")                         \
    X(simd, ENUM, "simd", "simd", ALL, SIMD,                                                 \
      "kernels: auto (default), scalar, avx2, avx512, wasm-simd128, neon (same results)")          \
    X(seed, U64, "seed", "seed", ALL, NONE,                                                  \
      "PRNG seed; same input, options and seed give the same bytes")                        \
    X(hnsw.M, U32, "M", "M", HNSW, NONE, "links per node, 2..1024 (default 16; 2*M on level 0)") \
    X(hnsw.ef_construction, U32, "efConstruction", "ef-construction", HNSW, NONE,            \
      "candidate list while building, >= M (default 200)")                                   \
    X(hnsw.ef_search, U32, "efSearch", "ef-search", HNSW, NONE,                              \
      "default candidate list for searches (default 64)")                                    \
    X(hnsw.build_batch, U32, "buildBatch", "build-batch", HNSW, NONE,                        \
      "link inserts in batches of this many, searched in parallel (0 = one at a time)")      \
    X(ivf.nlist, U32, "nlist", "nlist", IVF, NONE,                                           \
      "lists, <= 65536 (default ~4*sqrt(n), at most n/39)")                                  \
    X(ivf.nprobe, U32, "nprobe", "nprobe", IVF, NONE,                                        \
      "default lists probed per search (default nlist/16)")                                  \
    X(ivf.pq_m, U32, "pqM", "pq-m", IVF, NONE, "pq sub-quantizers; must divide dim")          \
    X(ivf.pq_bits, U32, "pqBits", "pq-bits", IVF, NONE, "pq: 8 (default) or 4 (fast scan)")   \
    X(ivf.train_sample, U32, "trainSample", "train-sample", IVF, NONE,                       \
      "k-means vectors per list (default 256)")                                              \
    X(ivf.train_iters, U32, "trainIters", "train-iters", IVF, NONE,                          \
      "k-means iterations, <= 1000 (default 10)")                                            \
    X(ivf.pq_tables, U32, "pqTables", "pq-tables", IVF, NONE,                                \
      "l2 pq: per-list distance tables, 0 = auto, 1 = never, 2 = always (docs/API.md)")

SHOAL_API void shoal_params_init(shoal_params *params);

typedef struct shoal_index shoal_index;

/* Creates an empty index.  On success *out owns a handle to shoal_index_free.
 * On failure *out is NULL, and params->errmsg (if set) says which rule a
 * parameter broke ("hnsw M = 1; it must be 2..1024"). */
SHOAL_API int shoal_index_new(const shoal_params *params, shoal_index **out);
SHOAL_API void shoal_index_free(shoal_index *index);

/* Threads an HNSW index with hnsw.build_batch > 0 may use for the
 * neighbour searches of its batched inserts (1..64; default 1).  Results
 * and bytes are the same for every count.  Other indexes ignore it.
 * SHOAL_EUNSUPPORTED for more than 1 where the build has no threads (wasm,
 * WASI); SHOAL_EPARAM for 0 or more than 64.  The handle is still used by
 * one thread at a time: the threads are the call's own. */
SHOAL_API int shoal_index_set_threads(shoal_index *index, uint32_t threads);

/* Detail message for the last failing call on this handle ("" if none). */
SHOAL_API const char *shoal_index_errmsg(const shoal_index *index);

SHOAL_API uint32_t shoal_index_dim(const shoal_index *index);
SHOAL_API shoal_metric shoal_index_metric(const shoal_index *index);
SHOAL_API shoal_kind shoal_index_kind(const shoal_index *index);
/* Number of live records. */
SHOAL_API uint32_t shoal_index_size(const shoal_index *index);
/* Bytes currently allocated through the handle's allocator. */
SHOAL_API size_t shoal_index_memory_bytes(const shoal_index *index);
/* Name of the kernels this handle computes with (see shoal_simd_name). */
SHOAL_API const char *shoal_index_simd_name(const shoal_index *index);

/*
 * Adds n records.  vectors holds n * dim floats, row-major; dim must equal
 * the index's (SHOAL_EDIM otherwise) -- it is passed so that a caller's
 * mistake is caught rather than read past.  An id already present is
 * replaced (its record counts as newly inserted).  If an id occurs more
 * than once in the batch the last one wins and the others are not written.
 * A failing call -- bad input (SHOAL_EID, SHOAL_EVECTOR, ...) or
 * SHOAL_ENOMEM at any point -- leaves the index exactly as it was, replaced
 * records included.  Returns the number of records written (distinct ids).
 */
SHOAL_API int shoal_index_add(shoal_index *index, uint32_t n, const char *id_bytes,
                    const uint32_t *id_offsets, const float *vectors, uint32_t dim);

/* ---------------------------------------------------------------- records */

/* Record metadata: a JSON object (or null for none), kept as canonical
 * DAG-CBOR.  Limits: SHOAL_METADATA_MAX bytes encoded, SHOAL_METADATA_DEPTH
 * levels of nesting (the object itself is level 1). */
#define SHOAL_METADATA_MAX 65536u
#define SHOAL_METADATA_DEPTH 16u
/* A record without a time. */
#define SHOAL_TIME_NONE INT64_MIN

/* A batch of records for shoal_index_upsert.  Every pointer but ids and
 * vectors may be NULL. */
typedef struct shoal_records {
    uint32_t n;
    const char *id_bytes;        /* ids: bytes + n+1 offsets, as for add */
    const uint32_t *id_offsets;
    const float *vectors;        /* n * dim floats */
    uint32_t dim;                /* must equal the index's */
    /* Metadata of record i: metadata[metadata_offsets[i] .. [i+1]); empty =
     * none.  JSON text (an object or null), or with metadata_cbor set the
     * canonical DAG-CBOR of a map (what shoal_index_metadata returns). */
    const char *metadata;
    const uint32_t *metadata_offsets;
    int metadata_cbor;
    const int64_t *times;        /* per record: milliseconds since the Unix epoch,
                                    or SHOAL_TIME_NONE */
    const uint64_t *seqs;        /* per record: its sequence number, strictly
                                    increasing and above every sequence number
                                    in the index (collections keep one order
                                    across indexes); NULL = the index numbers them */
} shoal_records;

/*
 * shoal_index_add with metadata, times and sequence numbers: the same
 * all-or-nothing upsert.  Bad metadata is SHOAL_EPARAM with a message naming
 * the record and the JSON path ("record 3: repeated key \"a\" at $.tags");
 * too large metadata SHOAL_ETOOBIG.  Returns the number of records written.
 */
SHOAL_API int shoal_index_upsert(shoal_index *index, const shoal_records *records);

/* The metadata of a live label as canonical DAG-CBOR: returns its length
 * (0: the record has none) and sets *bytes (owned by the index, valid until
 * the next mutating call), or SHOAL_ENOTFOUND. */
SHOAL_API int shoal_index_metadata(const shoal_index *index, uint32_t label, const uint8_t **bytes);

/* The JSON text of the metadata of n labels as one JSON array, one element
 * per label ("null" for none or a dead label), written to *out (allocated
 * through the index's allocator; release it with shoal_index_free_bytes)
 * with its length in *size.  Returns 0 or SHOAL_ENOMEM. */
SHOAL_API int shoal_index_metadata_json(shoal_index *index, uint32_t n, const uint32_t *labels,
                                        char **out, size_t *size);

/* A top-level metadata field and what its values are. */
typedef struct shoal_field_info {
    const char *name;   /* owned by the index, valid until the next mutating call */
    uint32_t name_len;
    uint32_t count;     /* live records that have it */
    uint32_t types;     /* SHOAL_FIELD_* bits of the values seen */
} shoal_field_info;
#define SHOAL_FIELD_NUMBER 1u
#define SHOAL_FIELD_STRING 2u
#define SHOAL_FIELD_BOOLEAN 4u
#define SHOAL_FIELD_NULL 8u
#define SHOAL_FIELD_ARRAY 16u
#define SHOAL_FIELD_OBJECT 32u

/* The top-level fields of the live records' metadata, in order of first
 * appearance (by label): writes up to cap, returns how many there are
 * (at most SHOAL_FILTER_NODES are tracked), or SHOAL_ENOMEM. */
SHOAL_API int shoal_index_metadata_fields(shoal_index *index, shoal_field_info *out, uint32_t cap);

/* The time of a live label (SHOAL_TIME_NONE if it has none) and its
 * sequence number; 0 or SHOAL_ENOTFOUND. */
SHOAL_API int shoal_index_record_info(const shoal_index *index, uint32_t label, int64_t *time,
                                      uint64_t *seq);

/* Releases bytes the index allocated for the caller (segments, JSON text);
 * NULL is fine. */
SHOAL_API void shoal_index_free_bytes(shoal_index *index, void *bytes);

/*
 * Trains an index kind that needs it (IVF: the coarse k-means centroids and
 * the quantizer's codebooks) on n vectors of dim floats (dim must equal the
 * index's).  The vectors are only read; they are not added.  Training an
 * index that holds records retrains it: every record is re-assigned and
 * re-encoded (from its float32 vector when the index keeps one -- flat
 * lists or rerank copies -- otherwise from its decoded approximation).
 * Without a call, the first add of at least as many vectors as training
 * needs trains on that batch; a smaller first add fails with SHOAL_ESTATE.
 * Errors: SHOAL_EUNSUPPORTED (flat, HNSW), SHOAL_EDIM, SHOAL_EVECTOR,
 * SHOAL_EPARAM (too few vectors for nlist or for the codebooks),
 * SHOAL_ENOMEM.  A failing call leaves the index unchanged.  Returns 0.
 */
SHOAL_API int shoal_index_train(shoal_index *index, uint32_t n, const float *vectors, uint32_t dim);

/* Whether the index can take records: 1 for kinds that need no training. */
SHOAL_API int shoal_index_trained(const shoal_index *index);

/* Called during long adds with the records done so far and the number the
 * batch will write; returning nonzero stops the add after the current record
 * (the records done stay added; shoal_index_add then returns their count).
 * fn NULL removes the callback.  The callback must not call into the same
 * index: such calls fail with SHOAL_ESTATE, and shoal_index_free from it is
 * undefined. */
typedef int (*shoal_progress_fn)(void *ctx, uint32_t done, uint32_t total);
SHOAL_API void shoal_index_on_progress(shoal_index *index, shoal_progress_fn fn, void *ctx);

/* Deletes the records with these ids; absent and repeated ids are skipped.
 * Returns the number deleted; on SHOAL_ENOMEM (HNSW repairs its graph
 * with allocations) the index is unchanged. */
SHOAL_API int shoal_index_delete(shoal_index *index, uint32_t n, const char *id_bytes,
                       const uint32_t *id_offsets);

/* Copies the stored vector of `id` (normalized under cosine) to out[dim].
 * Returns 0, or SHOAL_ENOTFOUND. */
SHOAL_API int shoal_index_get(shoal_index *index, const char *id, uint32_t id_len,
                    float *out);

/* ---------------------------------------------------------------- filters */

/*
 * A filter expression over record metadata, written as JSON in the style of
 * MongoDB queries (docs/API.md, "Filters"):
 *   {"year": {"$gte": 1990}, "genre": {"$in": ["jazz", "soul"]}, "$or": [...]}
 * Operators: $eq $ne $gt $gte $lt $lte $in $nin $exists $and $or $not; a
 * plain value means $eq; keys are dotted paths into nested objects; a path
 * that reaches an array matches when any element does.  Compiled once into a
 * program that searches evaluate per candidate, during graph traversal and
 * list scans (shoal_search_params.where).
 */
typedef struct shoal_filter shoal_filter;
#define SHOAL_FILTER_DEPTH 16u    /* nesting of the expression */
#define SHOAL_FILTER_NODES 4096u  /* operators, fields and $in values in all */

/* Compiles the JSON text of a filter.  On failure *out is NULL and errmsg
 * (if given) names the problem and its path ("unknown operator $regex at
 * $.title"): SHOAL_EPARAM; or SHOAL_ENOMEM.  allocator may be NULL. */
SHOAL_API int shoal_filter_compile(const char *json, size_t len, const shoal_allocator *allocator,
                                   shoal_filter **out, char *errmsg, size_t errmsg_size);
SHOAL_API void shoal_filter_free(shoal_filter *filter);
/* 1 if a record with this metadata (canonical DAG-CBOR as
 * shoal_index_metadata returns it; NULL or len 0 = none) passes, else 0. */
SHOAL_API int shoal_filter_matches(const shoal_filter *filter, const uint8_t *metadata, size_t len);

/* Allow-filter over labels: nonzero keeps the record.  It may read the index
 * (shoal_index_label_id, shoal_index_get) but not search or change it: such
 * calls fail with SHOAL_ESTATE. */
typedef int (*shoal_filter_fn)(void *ctx, uint32_t label);

/* Search parameters.  Fields of another kind are ignored (ef by flat and
 * ivf, nprobe by flat and hnsw, rerank by flat), so one set of parameters can
 * serve every index of a collection; the JS API rejects them instead. */
typedef struct shoal_search_params {
    uint32_t ef;                 /* HNSW candidate list size; 0 = the index's
                                    ef_search (raised to k); else must be >= k */
    uint32_t nprobe;             /* IVF lists probed; 0 = the index's nprobe;
                                    else 1..nlist */
    uint32_t rerank;             /* HNSW SQ8 and IVF SQ8/PQ with rerank copies:
                                    candidates reranked in float32 (HNSW: the best
                                    of the ef found, all of them when rerank >= ef);
                                    0 = the index's rerank (raised to k); else must
                                    be >= k */
    shoal_filter_fn filter;      /* NULL = every record */
    void *filter_ctx;
    /* Alternatively a bitmap: bit (label % 8) of byte (label / 8) set keeps
     * the record; labels at or past filter_bitmap_bits are dropped. */
    const uint8_t *filter_bitmap;
    uint32_t filter_bitmap_bits;
    /* A metadata filter; every filter given must pass. */
    const shoal_filter *where;
} shoal_search_params;

/* The numeric search parameters hosts set by name, in the order the JS
 * binding passes them: X(field, "jsName", "cli-flag", APPLIES, "help"). */
#define SHOAL_SEARCH_PARAM_LIST(X)                                                       \
    X(ef, "ef", "ef", HNSW, "candidate list size, >= k (default: the index's efSearch)") \
    X(nprobe, "nprobe", "nprobe", IVF, "lists probed, 1..nlist (default: the index's)")  \
    X(rerank, "rerank", "rerank", QUANTIZED,                                              \
      "candidates reranked in float32, >= k (needs rerank copies)")

SHOAL_API void shoal_search_params_init(shoal_search_params *params);

/*
 * Finds the k records closest to query[dim] (dim must equal the index's).  Writes up to k labels and
 * distances, closest first; equal distances are ordered by insertion, the
 * earlier first.  params may be NULL.  Returns the number of results
 * (< k when fewer records match).  Errors: SHOAL_EPARAM (k = 0 or k >
 * SHOAL_K_MAX), SHOAL_EDIM, SHOAL_EVECTOR (NaN/Inf query, or too long: SHOAL_LENGTH_MAX).
 */
SHOAL_API int shoal_index_search(shoal_index *index, const float *query, uint32_t dim, uint32_t k,
                       const shoal_search_params *params, uint32_t *labels,
                       float *distances);

/* The id of a label returned by the last search.  Returns its length in
 * bytes and sets *id (not NUL-terminated, owned by the index), or
 * SHOAL_ENOTFOUND for a label that holds no live record, or whose IVF list
 * a lazily opened index (shoal_index_open_head) has not attached yet. */
SHOAL_API int shoal_index_label_id(const shoal_index *index, uint32_t label,
                         const char **id);

/* Label of a stored id, or SHOAL_ENOTFOUND. */
SHOAL_API int shoal_index_label_of(const shoal_index *index, const char *id,
                         uint32_t id_len);

/* One past the largest label in use: the bit count a filter bitmap needs. */
SHOAL_API uint32_t shoal_index_label_bound(const shoal_index *index);

/* Verifies internal invariants (for HNSW: link targets valid and live,
 * degrees within bounds, entry point live, every live node reachable);
 * 0 or SHOAL_ECORRUPT with a detail message. */
SHOAL_API int shoal_index_check(shoal_index *index);

typedef struct shoal_stats {
    uint32_t size;         /* live records */
    uint32_t levels;       /* HNSW: number of levels (top level + 1); else 1 */
    double mean_degree;    /* HNSW: mean level-0 out-degree of live nodes; else 0 */
    size_t memory_bytes;   /* as shoal_index_memory_bytes */
    /* IVF: bytes of what a search must read -- centroids, codebooks, list
     * labels and codes (allocation headers included); else 0 */
    size_t codes_bytes;
    /* HNSW SQ8 and IVF: bytes of the float32 rerank copies, kept apart from
     * the codes (IVF: per list, so a later store can leave them out of
     * memory); else 0.  memory_bytes includes them. */
    size_t rerank_bytes;
    uint32_t nlist;        /* IVF: lists (0 until trained); else 0 */
    size_t metadata_bytes; /* encoded metadata of the live records (included in
                              memory_bytes, as are their per-record pointers) */
    uint32_t with_metadata; /* live records that have metadata */
} shoal_stats;

/* The fields of shoal_stats hosts read by name, in the order the JS binding
 * returns them: X(field, "jsName", "help"). */
#define SHOAL_STATS_LIST(X)                                                             \
    X(size, "size", "live records")                                                     \
    X(levels, "levels", "hnsw: number of levels; else 1")                               \
    X(mean_degree, "meanDegree", "hnsw: mean level-0 out-degree; else 0")               \
    X(memory_bytes, "memoryBytes", "bytes the core holds for this index")               \
    X(codes_bytes, "codesBytes", "ivf: centroids, codebooks, list labels and codes")    \
    X(rerank_bytes, "rerankBytes", "hnsw sq8, ivf: float32 rerank copies")                        \
    X(nlist, "nlist", "ivf: lists (0 until trained)")                                   \
    X(metadata_bytes, "metadataBytes", "encoded metadata of the live records")          \
    X(with_metadata, "withMetadata", "live records that have metadata")

SHOAL_API void shoal_index_stats(const shoal_index *index, shoal_stats *out);

/* --------------------------------------------------------------- segments */

/*
 * A segment is the serialized form of an index: what is stored in files,
 * IndexedDB, IPFS or S5.  Its bytes are specified in docs/FORMAT.md and are
 * identical from every build (native, Emscripten, WASI) for the same index
 * and save parameters.  The core does no I/O: segments are memory buffers.
 */

#define SHOAL_FORMAT_MAJOR 1
#define SHOAL_FORMAT_MINOR 1
/* Bytes of a CID string including its NUL ("bafkrei..." is 59 characters). */
#define SHOAL_CID_SIZE 64
/* Largest block shoal_segment_blocks makes (the IPFS block limit). */
#define SHOAL_BLOCK_MAX (1u << 20)

typedef struct shoal_save_params {
    /* zstd level per section: 0 = store uncompressed (segments that can be
     * opened zero-copy with shoal_index_view); 1..19 = zstd at that level.
     * A section that does not shrink is stored uncompressed. */
    int zstd_level;
} shoal_save_params;

SHOAL_API void shoal_save_params_init(shoal_save_params *params);

/*
 * Writes the index as a segment.  On success *out points to *out_size bytes
 * allocated through the index's allocator (counted in memory_bytes) that the
 * caller releases with shoal_index_free_bytes(index, *out); the index is
 * not changed.  params may be NULL (uncompressed).  Errors: SHOAL_EPARAM
 * (level out of range), SHOAL_ENOMEM, SHOAL_ETOOBIG.  Returns 0.
 */
SHOAL_API int shoal_index_save(shoal_index *index, const shoal_save_params *params, uint8_t **out,
                     size_t *out_size);

typedef struct shoal_load_params {
    shoal_simd simd;                  /* kernels for the loaded index; default auto */
    const shoal_allocator *allocator; /* NULL = malloc/free; copied */
    char *errmsg;                     /* optional: receives a detail message on failure */
    size_t errmsg_size;               /* bytes at errmsg */
    /* IVF, or trained HNSW SQ8, with rerank copies: nonzero leaves the
     * float32 rerank rows in the segment instead of memory ("External
     * rerank rows" below).  The rows must be stored raw (zstd_level 0),
     * and an HNSW index must traverse its codes (trained: 1024 records or
     * more, and an SQ8 fit), or the load fails with SHOAL_EUNSUPPORTED.
     * Other segments ignore it. */
    int rerank_external;
} shoal_load_params;

SHOAL_API void shoal_load_params_init(shoal_load_params *params);

/*
 * Reads a segment into a new index that owns all its memory (bytes may be
 * freed afterwards).  Everything is validated before it is trusted: header
 * and table checksums, every section's CRC-32C, every count against its
 * limits before any allocation, every link, list and label.  The loaded
 * index is the saved one: same records, labels, free list, graph, lists,
 * PRNG state -- searches and later mutations behave identically.
 * params may be NULL.  On failure *out is NULL and the code is one of the
 * corrupt-data family -- SHOAL_ECORRUPT, SHOAL_ETRUNCATED, SHOAL_ECHECKSUM,
 * SHOAL_EVERSION (a newer major format or an unknown required feature) --
 * or SHOAL_ENOMEM, SHOAL_EUNSUPPORTED (simd), SHOAL_EPARAM (NULL bytes).
 */
SHOAL_API int shoal_index_load(const uint8_t *bytes, size_t size, const shoal_load_params *params,
                     shoal_index **out);

/*
 * Like shoal_index_load, but uncompressed sections that hold bulk data
 * (flat vectors, the HNSW level-0 block, ids, IVF lists and rerank rows)
 * are used in place, zero-copy: bytes must stay valid and unchanged until
 * shoal_index_free.  Compressed sections are decompressed into owned memory,
 * and so is everything when bytes is not 16-byte aligned or the host is
 * big-endian.  Validation is the same as load's.  A view is read-only:
 * add, delete and train fail with SHOAL_ESTATE (load the segment to change
 * it).  Searches, get and check work as on any index.
 */
SHOAL_API int shoal_index_view(const uint8_t *bytes, size_t size, const shoal_load_params *params,
                     shoal_index **out);

/* Whether the index is a read-only view (1) or owns its memory (0). */
SHOAL_API int shoal_index_is_view(const shoal_index *index);

/*
 * Lazy segments: an IVF segment opened from its head alone -- the bytes up
 * to its first list (shoal_segment_summary.head_bytes; the head blocks of
 * shoal_segment_blocks) -- with its lists attached one by one as searches
 * need them.  The core does no I/O and a wasm host cannot block on a fetch,
 * so a search is two steps: shoal_index_lists_wanted names the lists a
 * search with these parameters would probe that are not attached yet; the
 * host fetches each list's bytes (shoal_index_list_range says where they
 * lie in the segment) and attaches them; then the search runs.  Searching
 * while a probed list is missing fails with SHOAL_ESTATE.  A lazy index is
 * read-only like a view; get and label_of see the records of attached
 * lists; once every list is attached it is an ordinary view (check, merge).
 * An HNSW SQ8 segment with rerank copies opens from its head too, with
 * shoal_load_params.rerank_external set: its rows are its last section, so
 * the head (head_bytes) is everything else, and the index is at once
 * complete but for the rows, searched in two calls ("External rerank rows"
 * below).  Other kinds: SHOAL_EUNSUPPORTED (load the whole segment).
 * Validation is load's, per part: the head when opened, each list when
 * attached.
 */
SHOAL_API int shoal_index_open_head(const uint8_t *bytes, size_t size,
                                    const shoal_load_params *params, shoal_index **out);
/* Non-empty lists not attached yet (0 for an index that is not lazy). */
SHOAL_API int shoal_index_lists_missing(const shoal_index *index);
/* The missing lists a search for query with params would probe, written
 * up to cap; returns how many there are (0: the search can run). */
SHOAL_API int shoal_index_lists_wanted(shoal_index *index, const float *query, uint32_t dim,
                                       const shoal_search_params *params, uint32_t *lists,
                                       uint32_t cap);
/* Where list's bytes lie in the segment: 0, or SHOAL_ENOTFOUND (not lazy,
 * or no such list). */
SHOAL_API int shoal_index_list_range(const shoal_index *index, uint32_t list, uint64_t *offset,
                                     uint64_t *size);
/* Attaches list from exactly its bytes (size as list_range says).
 * Returns 1, or 0 when there was nothing to do (the list is empty or in
 * already), or an error (corrupt family: the index is as before). */
SHOAL_API int shoal_index_attach_list(shoal_index *index, uint32_t list, const uint8_t *bytes,
                                      size_t size);

/* Where list's rerank rows lie in the segment, for a lazy index with
 * external rerank rows: the bytes [offset, offset + size) of its unit
 * (shoal_index_list_range) that attach_list may be given without -- the
 * rerank section and its padding.  0, or SHOAL_ENOTFOUND (not lazy, no
 * such list, or rows not external); size is 0 for an empty list. */
SHOAL_API int shoal_index_list_rows_range(const shoal_index *index, uint32_t list,
                                          uint64_t *offset, uint64_t *size);

/*
 * External rerank rows.  An IVF-SQ8/PQ or HNSW SQ8 index with rerank
 * copies keeps a float32 row per record (3,136 bytes at dim 784, ~16x its
 * 4-bit PQ codes, 4x its SQ8 codes).  Loaded, viewed or opened from its
 * head with shoal_load_params.rerank_external, it keeps only where the
 * rows lie in the segment, and a search that reranks is two calls around
 * the host's reads -- a wasm host cannot block on IndexedDB or fetch:
 *   1. shoal_index_search_candidates: the scan over the codes (IVF) or
 *      the graph search (HNSW); writes the candidates to rerank and the
 *      offset of each one's row in the segment (dim * 4 bytes,
 *      little-endian float32).  HNSW: the rerank depth's best (raised to
 *      k) in the order an in-memory rerank takes them, or every match of a
 *      filter selective enough to be scored exactly.
 *      Each candidate's floor lies below the distance phase 2 will give
 *      it (HNSW: the bound an in-memory rerank skips rows by, from the
 *      segment's hnsw slack section -- or, in a segment written before it,
 *      a looser one from the codes; -inf where nothing is known, as for IVF):
 *      a host may read the rows of the first k candidates, rerank them,
 *      and then leave out any later candidate whose floor exceeds the k-th
 *      distance that gave -- it could not enter the k best -- and rerank
 *      all the rows it read.  (On Fashion-MNIST that reads ~11 rows of 32.)
 *   2. The host reads those rows from wherever the segment is (a file, an
 *      HTTP range, a Blob), in any way it likes.
 *   3. shoal_index_rerank_rows with the same query, the candidates' labels
 *      in the order step 1 gave them and their rows: the k best by exact
 *      distance -- the same labels and distances shoal_index_search gives
 *      with the rows in memory, bit for bit.
 * shoal_index_search on such an index fails with SHOAL_ESTATE when it
 * would rerank.  The index is read-only (add, delete, train, save fail with
 * SHOAL_ESTATE: save the segment it came from); shoal_index_get returns the
 * decoded approximation of a vector, not its row.
 */
typedef struct shoal_candidate {
    uint32_t label;
    float distance;  /* the quantized distance that made it a candidate */
    uint64_t offset; /* where its float32 row begins in the segment */
    float floor;     /* below the distance phase 2 will give it (-inf: no bound) */
} shoal_candidate;

/* Phase 1.  params as for shoal_index_search (rerank: the candidates
 * kept, 0 = the index's, raised to k).  Writes up to cap candidates and
 * returns how many there are (call again with more room if that exceeds
 * cap).  Errors: those of shoal_index_search, and SHOAL_ESTATE when the
 * index's rows are not external. */
SHOAL_API int shoal_index_search_candidates(shoal_index *index, const float *query, uint32_t dim,
                                            uint32_t k, const shoal_search_params *params,
                                            shoal_candidate *out, uint32_t cap);
/* Phase 2: rows holds n * dim * 4 bytes, candidate i's row at i * dim * 4.
 * Writes up to k labels and distances, closest first (ties by insertion),
 * and returns how many.  Errors: SHOAL_EDIM, SHOAL_EVECTOR (the query),
 * SHOAL_EPARAM (k, NULL arrays, a label that is not a record of the index's
 * attached lists), SHOAL_ECORRUPT (a row with a NaN or infinite value),
 * SHOAL_ESTATE (rows not external), SHOAL_ENOMEM. */
SHOAL_API int shoal_index_rerank_rows(shoal_index *index, const float *query, uint32_t dim,
                                      uint32_t k, uint32_t n, const uint32_t *labels,
                                      const uint8_t *rows, uint32_t *out_labels,
                                      float *out_distances);

typedef struct shoal_segment_summary {
    uint32_t format_major, format_minor;
    uint64_t required_features, optional_features;
    uint64_t segment_size;  /* bytes of the whole segment */
    uint64_t head_size;     /* bytes this call needed: header, table, config */
    uint64_t head_bytes;    /* bytes shoal_index_open_head needs: up to the first
                               IVF list, or to the rerank rows of HNSW SQ8 with
                               copies (the whole segment for other kinds) */
    uint32_t sections;
    uint32_t compressed;    /* sections stored with zstd */
    shoal_kind kind;
    shoal_metric metric;
    uint32_t dim;
    uint32_t size;          /* live records */
    uint32_t label_bound;
    shoal_quantizer quantizer;
    uint32_t nlist;         /* IVF: lists (0 untrained) */
    shoal_params params;    /* the parameters the index was created with
                               (allocator NULL, simd auto): what a rebuild
                               or merge needs to make the same kind of index */
    char message[256];      /* on failure: what is wrong, and where */
} shoal_segment_summary;

/*
 * Reads the header, the section table and the config section only (all at
 * the start of the segment), verifying their checksums.  bytes may be just
 * a prefix of the segment: with too few bytes the result is
 * SHOAL_ETRUNCATED and info->head_size (if at least the 64-byte header was
 * given) says how many are needed.  Returns 0 or a corrupt-family code.
 */
SHOAL_API int shoal_segment_info(const uint8_t *bytes, size_t size, shoal_segment_summary *info);

/* One entry of a segment's section table (docs/FORMAT.md). */
typedef struct shoal_section_info {
    uint32_t kind;    /* section kind; bit 31 set = optional */
    const char *name; /* "hnsw level 0", ...; "unknown" for kinds this library
                         does not know (static text) */
    uint32_t codec;   /* 0 stored raw, 1 zstd */
    uint32_t index;   /* the IVF list of list sections, else 0 */
    uint64_t offset, stored, raw; /* bytes in the segment; stored; decompressed */
} shoal_section_info;

/* The section table of a segment (bytes may be a prefix reaching past the
 * table; its checksum is verified).  Writes up to cap entries; returns the
 * total count, or a corrupt-family code. */
SHOAL_API int shoal_segment_sections(const uint8_t *bytes, size_t size, shoal_section_info *out,
                                     uint32_t cap);

/* One block of a segment cut for IPFS (docs/FORMAT.md, "Blocks"). */
typedef struct shoal_block {
    uint64_t offset; /* in the segment */
    uint32_t size;   /* 1..SHOAL_BLOCK_MAX */
    uint32_t list;   /* IVF list whose sections the block holds, or UINT32_MAX
                        for the head (header, table, config, ids, ...) */
} shoal_block;

/*
 * Cuts a segment into blocks of at most SHOAL_BLOCK_MAX bytes such that each
 * IVF list (its codes and its rerank section) starts a block of its own and
 * the first blocks (the head) hold the header and section table.  Needs
 * only the head (bytes may be a prefix reaching past the section table).
 * Writes up to cap blocks; returns the total count (call with cap 0 to
 * size the array), or a corrupt-family code.
 */
SHOAL_API int shoal_segment_blocks(const uint8_t *bytes, size_t size, shoal_block *out, uint32_t cap);

/* The CIDv1 (raw codec, sha2-256, base32 "b...") of the bytes, into out;
 * returns its length (59).  Identical in every build. */
SHOAL_API int shoal_cid(const void *bytes, size_t size, char out[SHOAL_CID_SIZE]);
/* The same from a SHA-256 digest computed elsewhere. */
SHOAL_API int shoal_cid_of_digest(const uint8_t digest[32], char out[SHOAL_CID_SIZE]);
SHOAL_API void shoal_sha256(const void *bytes, size_t size, uint8_t out[32]);
/* CRC-32C (Castagnoli), continuing from crc (0 to start). */
SHOAL_API uint32_t shoal_crc32c(uint32_t crc, const void *bytes, size_t size);

/* ------------------------------------------------------------------ merge */

/*
 * A new index holding the live records of n source indexes (loaded or
 * viewed, of any kind): a record of a later source replaces one with the
 * same id in an earlier source, as if the sources were added in order.
 * Records keep their metadata and times, and their stored vectors -- exact
 * for f32 and IVF rerank copies, decoded approximations for sq8 and pq.
 * The new index is built from params (dim and metric must equal the
 * sources'; kind, quantizer and the rest may differ), an IVF one trained on
 * all the merged vectors first; records are numbered in merge order.
 * Errors: SHOAL_EPARAM (no sources, dim or metric differ: params->errmsg
 * says which), SHOAL_ENOMEM, and the new index's own errors.
 */
SHOAL_API int shoal_index_merge(const shoal_index *const *sources, uint32_t n,
                                const shoal_params *params, shoal_index **out);

/* ------------------------------------------------------------------- CIDs */

/*
 * Blocks are named by CIDv1 with a sha2-256 multihash: 36 bytes in binary
 * (0x01, the codec, 0x12, 0x20, the digest) and 59 characters as text
 * (base32, "b...").  Segments and their blocks are raw (0x55, "bafkrei...");
 * manifests and segment nodes are DAG-CBOR (0x71, "bafyrei...").
 */
#define SHOAL_CID_BYTES 36
#define SHOAL_CODEC_RAW 0x55u
#define SHOAL_CODEC_DAG_CBOR 0x71u

/* The binary CID of bytes under codec (raw or dag-cbor). */
SHOAL_API void shoal_cid_bytes(const void *bytes, size_t size, uint32_t codec,
                               uint8_t out[SHOAL_CID_BYTES]);
/* Binary <-> text.  format returns the text length (59) or SHOAL_EPARAM
 * for a binary CID that is not CIDv1 / sha2-256 / raw or dag-cbor; parse
 * returns 0 or SHOAL_EPARAM. */
SHOAL_API int shoal_cid_format(const uint8_t cid[SHOAL_CID_BYTES], char out[SHOAL_CID_SIZE]);
SHOAL_API int shoal_cid_parse(const char *text, size_t len, uint8_t out[SHOAL_CID_BYTES]);
/* Whether bytes hash to cid (its digest; its codec must be raw or dag-cbor). */
SHOAL_API int shoal_cid_verify(const uint8_t cid[SHOAL_CID_BYTES], const void *bytes, size_t size);

/* The CID links in a DAG-CBOR block, in the order they appear, written up
 * to cap; returns how many there are, or SHOAL_ECORRUPT (not canonical
 * DAG-CBOR, or a link that is not a CIDv1 sha2-256 of a known codec). */
SHOAL_API int shoal_dag_links(const uint8_t *block, size_t size, uint8_t (*out)[SHOAL_CID_BYTES],
                              uint32_t cap);

/* ------------------------------------------------------------ collections */

/*
 * A collection is what users keep: it grows, is saved incrementally and is
 * named by one CID.  It is a mutable buffer (an HNSW or flat index) over
 * any number of immutable segments; a global sequence number orders every
 * write, and the newest version of an id wins wherever it lives.  Records
 * replaced or deleted inside a segment become tombstones of that segment.
 * Searches fan out over buffer and segments and merge; a flush turns the
 * buffer into a segment; compaction merges segments (tiered, like an LSM
 * tree) and moves aged records to the large tier.  Its saved form is a
 * DAG of blocks of at most SHOAL_BLOCK_MAX bytes under one root, the
 * manifest (docs/FORMAT.md, "Collections"); the core computes it, hosts
 * store and fetch its blocks.  Writes go through a log: the core encodes a
 * write as a log record (docs/FORMAT.md, "Log"), the host appends it to its
 * write-ahead log, and applying the record changes the collection -- the
 * same call replays a log after a crash.
 */
typedef struct shoal_collection shoal_collection;

typedef struct shoal_collection_params {
    /* The buffer and the small segments: kind hnsw (what init sets) or flat.
     * dim and metric here are the collection's; simd, seed and allocator
     * apply to every index it makes. */
    shoal_params small;
    /* Large segments -- at least large_from records, or records older than
     * recent_ms -- init sets kind ivf and quantizer pq (dim, metric, simd and
     * allocator are taken from small). */
    shoal_params large;
    uint32_t large_from;    /* default 100000; UINT32_MAX = never by size */
    int64_t recent_ms;      /* age tiers: at compaction, records with a time
                               older than now - recent_ms go to large segments;
                               0 = no age tiers */
    uint32_t flush_records; /* buffer records that make a flush due; default 10000 */
    uint64_t flush_bytes;   /* buffer bytes (its records' vectors, ids and metadata,
                               the same in every build) that make a flush due;
                               default 256 MiB */
    uint32_t merge_factor;  /* segments of one tier and size class that a tiered
                               compaction merges; default 8, 2..64 */
    int zstd_level;         /* segments' zstd level, 0..19; default 0 (raw,
                               searched in place) */
    char *errmsg;           /* optional: receives the rule a rejected parameter broke */
    size_t errmsg_size;
} shoal_collection_params;

/* The policy fields hosts set by name: X(field, TYPE, "jsName", "cli-flag",
 * "help") -- the JS binding passes them after the small and large
 * parameter cells, in this order. */
#define SHOAL_COLLECTION_PARAM_LIST(X)                                                      \
    X(large_from, U32, "largeFrom", "large-from",                                           \
      "records from which a segment is built large (default 100000)")                      \
    X(recent_ms, I64, "recentMs", "recent-ms",                                              \
      "age tiers: records older than this many ms go large at compaction (0 = off)")       \
    X(flush_records, U32, "flushRecords", "flush-records",                                  \
      "buffer records that make a flush due (default 10000)")                              \
    X(flush_bytes, U64, "flushBytes", "flush-bytes",                                        \
      "buffer bytes that make a flush due (default 256 MiB)")                              \
    X(merge_factor, U32, "mergeFactor", "merge-factor",                                     \
      "segments of one size class a compaction merges, 2..64 (default 8)")                 \
    X(zstd_level, I32, "zstdLevel", "zstd-level", "segments' zstd level, 0..19 (default 0)")

/* Zeroes params, then sets small.kind = hnsw, large.kind = ivf and
 * large.quantizer = pq. */
SHOAL_API void shoal_collection_params_init(shoal_collection_params *params);

/* An empty collection (its manifest has no segments and no previous
 * version).  Errors as shoal_index_new, with params->errmsg. */
SHOAL_API int shoal_collection_new(const shoal_collection_params *params, shoal_collection **out);
SHOAL_API void shoal_collection_free(shoal_collection *c);
/* Detail message for the last failing call ("" if none). */
SHOAL_API const char *shoal_collection_errmsg(const shoal_collection *c);
SHOAL_API uint32_t shoal_collection_dim(const shoal_collection *c);
SHOAL_API shoal_metric shoal_collection_metric(const shoal_collection *c);
/* Live records. */
SHOAL_API uint32_t shoal_collection_size(const shoal_collection *c);

/* ---- writes: encode a log record, append it, apply it */

/*
 * Encode a write as one log record (bytes allocated through the
 * collection, released with shoal_collection_free_bytes).  Encoding
 * validates everything -- dim, vectors, ids, metadata, times -- so that
 * applying the record cannot fail on its content; it numbers the records
 * but changes nothing else.  Errors as shoal_index_upsert, and
 * SHOAL_ESTATE while a segment is lazy (fetch every block first: an
 * upsert must find the versions it replaces).
 */
SHOAL_API int shoal_collection_log_upsert(shoal_collection *c, const shoal_records *records,
                                          uint8_t **out, size_t *size);
SHOAL_API int shoal_collection_log_delete(shoal_collection *c, uint32_t n, const char *id_bytes,
                                          const uint32_t *id_offsets, uint8_t **out,
                                          size_t *size);
/* Drops every record (a fresh collection with the same configuration
 * whose manifest links the previous one). */
SHOAL_API int shoal_collection_log_clear(shoal_collection *c, uint8_t **out, size_t *size);

typedef struct shoal_apply_result {
    uint32_t records;    /* log records applied */
    uint32_t skipped;    /* log records already in the collection (sequence
                            numbers below its own), skipped */
    uint32_t written;    /* records upserted */
    uint32_t deleted;    /* records deleted (live ones only) */
    uint64_t valid_size; /* bytes up to the end of the last whole record */
    int torn;            /* the bytes end inside a record (a torn append):
                            the host truncates its log to valid_size */
} shoal_apply_result;

/*
 * Applies the records of a log, in order: the one just encoded, or a whole
 * write-ahead log being replayed after a restart (records whose sequence
 * numbers the collection already has are skipped, so replaying twice
 * changes nothing).  A torn last record is ignored (result->torn); a
 * corrupt record followed by more bytes is SHOAL_ECORRUPT (or
 * SHOAL_ECHECKSUM) with the record's offset in the message, the records
 * before it applied.  SHOAL_ENOMEM leaves the failing record unapplied.
 * result may be NULL.
 */
SHOAL_API int shoal_collection_apply(shoal_collection *c, const uint8_t *log, size_t size,
                                     shoal_apply_result *result);

/* Encode and apply in one call, for hosts without a log.  Return the
 * records written / deleted. */
SHOAL_API int shoal_collection_upsert(shoal_collection *c, const shoal_records *records);
SHOAL_API int shoal_collection_delete(shoal_collection *c, uint32_t n, const char *id_bytes,
                                      const uint32_t *id_offsets);

SHOAL_API void shoal_collection_free_bytes(shoal_collection *c, void *bytes);

/* ---- reads */

/* A record of a collection: part 0 is the buffer, part i + 1 segment i.
 * Valid until the next write, flush or compaction. */
typedef struct shoal_hit {
    uint32_t part, label;
} shoal_hit;

/* Keeps a record (nonzero) or drops it; may read the collection but not
 * search or change it (SHOAL_ESTATE). */
typedef int (*shoal_hit_filter_fn)(void *ctx, shoal_hit hit);

/*
 * The k records closest to query across buffer and segments, closest first,
 * ties by sequence number: the same records and distances a single index
 * of the same kind holding the live records would give.  params: ef,
 * nprobe and rerank apply to the parts of their kind, where to every part;
 * its filter and filter_bitmap must be NULL -- use fn (NULL: none).  A lazy
 * segment must have the lists the search probes (shoal_collection_wants):
 * SHOAL_ESTATE otherwise.  Returns the number of hits.
 */
SHOAL_API int shoal_collection_search(shoal_collection *c, const float *query, uint32_t dim,
                                      uint32_t k, const shoal_search_params *params,
                                      shoal_hit_filter_fn fn, void *ctx, shoal_hit *hits,
                                      float *distances);

/* The live record with this id: 0 and *hit, or SHOAL_ENOTFOUND. */
SHOAL_API int shoal_collection_find(shoal_collection *c, const char *id, uint32_t id_len,
                                    shoal_hit *hit);
/* The first live record at or after *hit (parts in order, labels in
 * order): 1 and *hit set, or 0 at the end.  Start from {0, 0}; continue
 * from {part, label + 1}. */
SHOAL_API int shoal_collection_next(const shoal_collection *c, shoal_hit *hit);
/* Of a live hit: its id (length, *id owned by the collection), stored
 * vector (dim floats), time and sequence number; or SHOAL_ENOTFOUND. */
SHOAL_API int shoal_collection_hit_id(const shoal_collection *c, shoal_hit hit, const char **id);
SHOAL_API int shoal_collection_hit_vector(shoal_collection *c, shoal_hit hit, float *out);
SHOAL_API int shoal_collection_hit_info(const shoal_collection *c, shoal_hit hit, int64_t *time,
                                        uint64_t *seq);
/* The metadata of n hits as one JSON array (as shoal_index_metadata_json);
 * release with shoal_collection_free_bytes. */
SHOAL_API int shoal_collection_hits_json(shoal_collection *c, uint32_t n, const shoal_hit *hits,
                                         char **out, size_t *size);

typedef struct shoal_collection_stats {
    uint32_t size;          /* live records */
    uint32_t buffered;      /* records in the buffer */
    uint32_t segments;
    uint32_t tombstones;    /* records of segments replaced or deleted */
    uint32_t lazy;          /* segments not yet (wholly) attached */
    uint64_t next_seq;      /* the sequence number of the next write */
    uint64_t segment_bytes; /* bytes of the segments */
    size_t memory_bytes;    /* bytes the core holds for the collection */
} shoal_collection_stats;

#define SHOAL_COLLECTION_STATS_LIST(X)                                        \
    X(size, "size", "live records")                                          \
    X(buffered, "buffered", "records in the buffer")                         \
    X(segments, "segments", "immutable segments")                            \
    X(tombstones, "tombstones", "records of segments replaced or deleted")   \
    X(lazy, "lazy", "segments not wholly fetched yet")                       \
    X(next_seq, "nextSeq", "sequence number of the next write")              \
    X(segment_bytes, "segmentBytes", "bytes of the segments")                \
    X(memory_bytes, "memoryBytes", "bytes the core holds for the collection")

SHOAL_API void shoal_collection_stats_get(const shoal_collection *c, shoal_collection_stats *out);

/* ---- flush, compaction */

/* Whether the buffer has reached flush_records or flush_bytes (counted as
 * its records' contents: dim * 4 bytes per vector, ids, metadata). */
SHOAL_API int shoal_collection_flush_due(const shoal_collection *c);
/* Turns the buffer into a segment (small, or large from large_from
 * records).  Returns 1, or 0 for an empty buffer. */
SHOAL_API int shoal_collection_flush(shoal_collection *c);
/*
 * Merges segments, dropping tombstoned records.  Tiered (full = 0): merges
 * merge_factor segments of one tier and size class while there are that
 * many, and moves small segments whose records are all older than
 * now_ms - recent_ms to the large tier.  Full: every tier becomes one
 * segment, aged records moving to the large one.  now_ms is the host's
 * clock (the core has none); it matters only with recent_ms.  Returns the
 * number of segments written.
 */
SHOAL_API int shoal_collection_compact(shoal_collection *c, int full, int64_t now_ms);

/*
 * A read-only copy of the collection's segments as they are now, with
 * their tombstones, without the buffer: taken right after a commit, the
 * committed version.  It shares the segments' memory with c (reference
 * counted), so it costs a few bitmaps, and stays valid whatever c does
 * next, freeing included (free it with shoal_collection_free).  Searches
 * and reads work; writes, flush, compaction, commit, wants and give fail
 * with SHOAL_ESTATE.  Lets a host answer searches from the last version
 * while a long write runs.
 */
SHOAL_API int shoal_collection_snapshot(shoal_collection *c, shoal_collection **out);

/* ---- the manifest DAG */

/*
 * Seals the current state as a new version: writes the manifest, segment
 * nodes and tombstone blocks, linking the previous version (prev) unless
 * drop_history.  The buffer must be empty (flush first: SHOAL_ESTATE
 * otherwise), so every version is complete without the log.  root gets the
 * manifest's CID; the blocks of the version are then listed by
 * shoal_collection_block.  Returns the number of blocks.
 */
SHOAL_API int shoal_collection_commit(shoal_collection *c, int drop_history,
                                      uint8_t root[SHOAL_CID_BYTES]);

/* One block of the committed version. */
typedef struct shoal_block_ref {
    uint8_t cid[SHOAL_CID_BYTES];
    const uint8_t *bytes; /* owned by the collection; NULL when it does not
                             hold them (a segment opened lazily) */
    size_t size;
} shoal_block_ref;

/* Block i (0 = the manifest) of the last committed (or opened) version:
 * 0, or SHOAL_ENOTFOUND past the last. */
SHOAL_API int shoal_collection_block(const shoal_collection *c, uint32_t i, shoal_block_ref *out);

/*
 * Opens a collection from its manifest block (verified as canonical
 * DAG-CBOR and against its schema: a hostile manifest is SHOAL_ECORRUPT or
 * SHOAL_EVERSION with a message).  Its segments are then fetched by the
 * host: shoal_collection_wants names the blocks the collection needs and
 * shoal_collection_give hands each one over, verified against its CID.
 */
SHOAL_API int shoal_collection_open(const uint8_t *manifest, size_t size,
                                    const shoal_load_params *params, shoal_collection **out);

/* What shoal_collection_wants asks for. */
enum {
    SHOAL_WANT_ALL = 0,  /* every block: the collection can then write and compact */
    SHOAL_WANT_LAZY = 1  /* enough to search: segment nodes, tombstones, whole
                            HNSW and flat segments, the heads of IVF segments */
};

/*
 * The blocks the collection needs and does not have, for `want`, or with a
 * query (not NULL) the blocks a search for it would read (the probed lists
 * of lazy IVF segments); written up to cap, returns how many there are.
 * Hosts fetch and give them, and ask again until 0 (a segment node names
 * blocks only once it is given).
 */
SHOAL_API int shoal_collection_wants(shoal_collection *c, int want, const float *query,
                                     uint32_t dim, uint32_t k, const shoal_search_params *params,
                                     uint8_t (*cids)[SHOAL_CID_BYTES], uint32_t cap);
/* Hands over a block.  It is hashed and matched against the blocks wanted:
 * returns 1 if it was one (and is verified and in use), 0 if no block with
 * its hash is wanted, or an error if its contents are invalid (the
 * collection is unchanged and still wants it). */
SHOAL_API int shoal_collection_give(shoal_collection *c, const uint8_t *bytes, size_t size);

/* ------------------------------------------------------------------ CAR */

/*
 * CARv1 (ipld.io/specs/transport/car/carv1): a varint-prefixed DAG-CBOR
 * header {roots, version: 1}, then each block as varint(len) + CID + bytes.
 * The core frames and parses; hosts stream the bytes.
 */
/* The header for one root: writes up to cap bytes, returns its length (or
 * the length needed when cap is too small). */
SHOAL_API int shoal_car_header(const uint8_t root[SHOAL_CID_BYTES], uint8_t *out, size_t cap);
/* The frame before a block of size bytes: varint + CID, at most 48 bytes. */
SHOAL_API int shoal_car_frame(const uint8_t cid[SHOAL_CID_BYTES], size_t size, uint8_t out[48]);
/* Reads the header: its first root and the offset of the first block. */
SHOAL_API int shoal_car_read_header(const uint8_t *bytes, size_t size,
                                    uint8_t root[SHOAL_CID_BYTES], size_t *offset);
/* The block at *offset: 1 with cid, *data and *data_size set and *offset
 * advanced, 0 at the end, or an error (SHOAL_ETRUNCATED, SHOAL_ECORRUPT,
 * SHOAL_ECHECKSUM when the bytes do not hash to the CID, SHOAL_EUNSUPPORTED
 * for CIDs other than v1 / sha2-256). */
SHOAL_API int shoal_car_next(const uint8_t *bytes, size_t size, size_t *offset,
                             uint8_t cid[SHOAL_CID_BYTES], const uint8_t **data, size_t *data_size);

/* ------------------------------------------------------------------ utils */

/* Exposed so hosts and tests can compare against the reference kernels. */
SHOAL_API float shoal_distance(shoal_metric metric, shoal_simd simd, const float *a,
                     const float *b, uint32_t dim);

#ifdef __cplusplus
}
#endif
#endif /* SHOAL_H */
