// Types for every entry of the shoal package (index, node, browser, worker
// all export the same API).  Error classes are generated from the C error
// list into dist/errors.d.ts.
export * from './dist/errors.js';

/** Distance functions; smaller is closer for every metric. */
export type Metric =
  /** squared Euclidean distance */
  | 'l2'
  /** negative inner product */
  | 'ip'
  /** 1 - cosine similarity (vectors are normalized once, on insert) */
  | 'cosine';

/** Index kinds: 'flat' exact search; 'hnsw' approximate graph search; 'ivf' inverted lists (needs training). */
export type Kind = 'flat' | 'hnsw' | 'ivf';

/** How an IVF index encodes its lists: float32, int8 per dimension, or product quantization. */
export type Quantizer = 'flat' | 'sq8' | 'pq';

/** How an HNSW index keeps vectors: float32, or int8 codes for traversal + float32 rerank. */
export type Storage = 'f32' | 'sq8';

export interface IndexOptions {
  /** Vector length, 1..16384. */
  dim: number;
  /** Default 'l2'. */
  metric?: Metric;
  /** Default 'flat' (exact search over every record). */
  kind?: Kind;
  /** PRNG seed for randomized kinds (integer or bigint, 0..2^64-1); 0/undefined = fixed default. */
  seed?: number | bigint;
  /**
   * Which wasm build: undefined picks SIMD128 when the runtime validates it,
   * false forces the scalar build, true fails with UnsupportedError without SIMD128.
   */
  simd?: boolean;
  /** HNSW: links per node (2*M on the base level); default 16, at least 2. */
  M?: number;
  /** HNSW: candidate list size while building; default 200. */
  efConstruction?: number;
  /** HNSW: default candidate list size for searches; default 64. */
  efSearch?: number;
  /** HNSW: vector storage; default 'f32'. */
  storage?: Storage;
  /** IVF: lists (k-means centroids); default chosen at training (~4 sqrt(n), at most n / 39). */
  nlist?: number;
  /** IVF: default lists probed per search; default max(1, nlist / 16). */
  nprobe?: number;
  /** IVF: list encoding; default 'flat'. */
  quantizer?: Quantizer;
  /** IVF pq: sub-quantizers, must divide dim; default leaves 2 (pqBits 4) or 4 (pqBits 8) dims each. */
  pqM?: number;
  /** IVF pq: bits per code; 4 is the SIMD fast-scan path. Default 8. */
  pqBits?: 4 | 8;
  /** IVF sq8/pq: keep float32 copies and re-score this many best candidates exactly; 0 = none. */
  rerank?: number;
  /** IVF: k-means trains on at most this many vectors per centroid; default 256. */
  trainSample?: number;
  /** IVF: k-means iterations; default 10. */
  trainIters?: number;
}

export interface AddOptions {
  /** Called every 1024 records and at the end; throwing stops the add after the current record. */
  onProgress?: (done: number, total: number) => void;
}

export interface SearchOptions {
  /** HNSW: candidate list size, at least k; default the index's efSearch raised to k. */
  ef?: number;
  /** IVF: lists scanned, 1..nlist; default the index's nprobe. */
  nprobe?: number;
  /** IVF with rerank: candidates re-scored in float32, at least k; default the index's rerank. */
  rerank?: number;
  /** Only records whose id it accepts are returned; called once per record per search. */
  filter?: (id: string) => boolean;
}

export interface IndexStats {
  size: number;
  /** HNSW: number of graph levels; 1 otherwise. */
  levels: number;
  /** HNSW: mean base-level out-degree; 0 otherwise. */
  meanDegree: number;
  memoryBytes: number;
  /** IVF: bytes a search scans (centroids, codebooks, list labels and codes); 0 otherwise. */
  codesBytes: number;
  /** IVF: bytes of the float32 rerank copies (kept per list, apart from the codes); 0 otherwise. */
  rerankBytes: number;
  /** IVF: number of lists (0 until trained); 0 otherwise. */
  nlist: number;
}

export interface SearchResult {
  /** Closest first; equal distances in insertion order. */
  ids: string[];
  /** distances[i] belongs to ids[i]. */
  distances: Float32Array;
}

export interface SaveOptions {
  /** 0 (default): sections stored uncompressed; 1..19: zstd level per section. */
  zstdLevel?: number;
}

export interface LoadOptions {
  /** As IndexOptions.simd. */
  simd?: boolean;
}

export declare class Index {
  private constructor();
  /** Loads the wasm (once per variant) and creates an empty index. */
  static create(options: IndexOptions): Promise<Index>;
  /**
   * An index from segment bytes (from save(), a file, IndexedDB, IPFS...), fully verified.
   * @throws CorruptDataError (or its subclasses TruncatedDataError, ChecksumError, VersionError), OutOfMemoryError, TypeError
   */
  static load(bytes: Uint8Array | ArrayBuffer, options?: LoadOptions): Promise<Index>;
  /** The index as segment bytes (docs/FORMAT.md); identical from every build. */
  save(options?: SaveOptions): Uint8Array;
  /**
   * CIDv1 (raw, sha2-256, base32) of the segment last loaded or saved; undefined
   * before the first save/load and after any change (add, delete, train).
   */
  readonly cid: string | undefined;

  readonly dim: number;
  readonly metric: Metric;
  readonly kind: Kind;
  /** Kernels this index computes with: 'wasm-simd128' or 'scalar'. */
  readonly simd: string;
  /** Number of live records.  Throws StateError after free(). */
  readonly size: number;
  /** Bytes the core has allocated for this index. */
  memoryBytes(): number;

  /**
   * Adds records; ids[i] gets vectors[i*dim .. (i+1)*dim).  An existing id is
   * replaced.  All-or-nothing on invalid input.  Returns the number written.
   * @throws DimensionError, InvalidVectorError, InvalidIdError, OutOfMemoryError, StateError, TypeError
   */
  add(ids: string[], vectors: Float32Array | ArrayLike<number>, options?: AddOptions): number;
  /**
   * IVF: trains on vectors (n * dim floats; only read, not added); retrains an
   * index that holds records.  Without it, the first add of enough vectors trains.
   * @throws UnsupportedError (flat, hnsw), ParameterError (too few vectors), DimensionError
   */
  train(vectors: Float32Array | ArrayLike<number>): void;
  /** Whether the index can take records (always true for flat and hnsw). */
  readonly trained: boolean;
  /** Deletes these ids (absent ones are skipped); returns how many were deleted. */
  delete(ids: string[]): number;
  /** The stored vector (unit length under cosine), or undefined if the id is absent. */
  get(id: string): Float32Array | undefined;
  /**
   * The k nearest records to query.
   * @throws ParameterError (k = 0 or k > 65536), DimensionError, InvalidVectorError, StateError
   */
  search(query: Float32Array | ArrayLike<number>, k: number, options?: SearchOptions): SearchResult;
  /** Size, graph shape and memory. */
  stats(): IndexStats;
  /** Releases the index's memory; idempotent.  Later calls throw StateError. */
  free(): void;
}

export interface WasmInfo {
  /** Core library version, "MAJOR.MINOR.PATCH". */
  version: string;
  /** The wasm build in use. */
  variant: 'simd' | 'base';
  /** Kernels the build resolves to by default: 'wasm-simd128' or 'scalar'. */
  kernels: string;
  /** Whether this runtime validates WebAssembly SIMD128. */
  simdSupported: boolean;
}

/** Loads the wasm variant the options select and describes it. */
export declare function wasmInfo(options?: { simd?: boolean }): Promise<WasmInfo>;

/** Whether this runtime validates WebAssembly SIMD128 (synchronous probe). */
export declare function simdSupported(): boolean;

/**
 * Supplies precompiled modules of dist/shoal-simd.wasm and/or dist/shoal-base.wasm
 * (e.g. from an edge worker's `import wasm from 'shoal/dist/shoal-simd.wasm'`).
 * Call before the first Index.create that uses the variant.
 */
export declare function initWasm(modules: { simd?: WebAssembly.Module; base?: WebAssembly.Module }): void;
