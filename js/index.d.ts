// Types for every entry of the shoal package (index, node, browser, worker
// all export the same API).  Error classes are generated from the C error
// list into dist/errors.d.ts.
export * from './dist/errors.js';


// Enum words, create options per kind, search tuning and stats fields are
// generated from the lists in src/shoal.h (tools/gen.c) into dist/abi.d.ts.
import type {
  CollectionPolicy, CollectionStats, FlatOptions, HnswOptions, IndexOptions, IndexStats, IvfOptions, Kind,
  Metric, SearchTuning,
} from './dist/abi.js';
export type {
  CollectionPolicy, CollectionStats, FlatOptions, HnswOptions, IndexOptions, IndexStats, IvfOptions, Kind,
  Metric, Quantizer, SearchTuning,
} from './dist/abi.js';

/** Record metadata: a JSON object (stored as canonical DAG-CBOR). */
export type Metadata = { [field: string]: JsonValue };
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface AddOptions {
  /** Called every 1024 records and at the end; throwing stops the add after the current record. */
  onProgress?: (done: number, total: number) => void;
  /** One entry per id: an object, or null/undefined for none.  At most 65,536 bytes encoded, 16 levels deep. */
  metadata?: ReadonlyArray<Metadata | null | undefined>;
  /** One entry per id: milliseconds since the Unix epoch (or a Date), or null/undefined for none. */
  times?: ReadonlyArray<number | Date | null | undefined>;
}

type Scalar = number | string | boolean | null;
/** Operators on one field (docs/API.md, "Filters"). */
export interface FieldOperators {
  $eq?: Scalar;
  $ne?: Scalar;
  $gt?: number | string;
  $gte?: number | string;
  $lt?: number | string;
  $lte?: number | string;
  $in?: readonly Scalar[];
  $nin?: readonly Scalar[];
  $exists?: boolean;
  $not?: FieldOperators;
}
/** A filter expression: dotted field paths to a value ($eq) or operators, and $and / $or / $not. */
export type FilterExpression = {
  $and?: readonly FilterExpression[];
  $or?: readonly FilterExpression[];
  $not?: FilterExpression;
} & { [path: string]: Scalar | FieldOperators | readonly FilterExpression[] | FilterExpression | undefined };

/** A set of records to search among, built once (index.allowList) and reused. */
export declare class AllowList {
  private constructor();
  readonly index: Index;
}

export type Filter =
  | FilterExpression
  | ReadonlySet<string>
  | AllowList
  /** Called once per stored record per search: prefer an AllowList. */
  | ((id: string) => boolean);

export interface SearchOptions extends SearchTuning {
  /** Only matching records are returned (k of them whenever k match). */
  filter?: Filter;
}

export interface SearchResult {
  /** Closest first; equal distances in insertion order. */
  ids: string[];
  /** distances[i] belongs to ids[i]. */
  distances: Float32Array;
  /** metadata[i] belongs to ids[i] (null for none). */
  metadata: Array<Metadata | null>;
}

export interface StoredRecord {
  id: string;
  /** As stored: unit length under cosine. */
  vector: Float32Array;
  metadata: Metadata | null;
  /** Milliseconds since the epoch, or undefined. */
  time: number | undefined;
}

export interface FieldInfo {
  name: string;
  /** Stored records that have the field. */
  count: number;
  types: Array<'number' | 'string' | 'boolean' | 'null' | 'array' | 'object'>;
}

export interface SaveOptions {
  /** 0 (default): sections stored uncompressed; 1..19: zstd level per section. */
  zstdLevel?: number;
}

export interface LoadOptions {
  /** As IndexOptions.simd. */
  simd?: boolean;
}

/**
 * Where Index.open reads a segment's byte ranges from: the bytes, a Blob or
 * File, a Node FileHandle, a URL (HTTP Range requests, answered with 206), or
 * a function returning the bytes [offset, offset + length).
 */
export type RangeSource =
  | Uint8Array
  | ArrayBuffer
  | Blob
  | string
  | URL
  | { fd: number; read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }> }
  | ((offset: number, length: number) => Uint8Array | ArrayBuffer | Promise<Uint8Array | ArrayBuffer>);

export interface OpenIndexOptions {
  /** As IndexOptions.simd. */
  simd?: boolean;
  /**
   * IVF or HNSW SQ8 with rerank: 'external' reads each search's candidate
   * rows from the source and never keeps them; 'memory' keeps them; 'auto'
   * (default) is external unless the rows are zstd-compressed (or, HNSW,
   * traversed: under 1024 records).
   */
  rows?: 'auto' | 'external' | 'memory';
  /** IVF: 'lazy' (default) reads each list when a search first probes it; 'all' at open. */
  lists?: 'lazy' | 'all';
  /** For a URL source: the fetch options of every range request (headers, credentials). */
  fetch?: RequestInit;
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
  /**
   * An index read from a source of byte ranges without reading all of it: an
   * IVF segment's head at once, its lists when searches probe them, and (rows
   * 'external') only the rerank rows of each search's candidates; an HNSW SQ8
   * segment with rerank copies all but its rows, then the same per search.
   * Search it with searchAsync().  Other segments are read whole.
   * @throws CorruptDataError (and subclasses), UnsupportedError (rows 'external' on compressed rows), ParameterError, TypeError
   */
  static open(source: RangeSource, options?: OpenIndexOptions): Promise<Index>;
  /** What an index from Index.open has read from its source so far. */
  readonly reads: { calls: number; bytes: number };
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
  add(ids: readonly string[], vectors: Float32Array | ArrayLike<number>, options?: AddOptions): number;
  /**
   * IVF: trains on vectors (n * dim floats; only read, not added); retrains an
   * index that holds records.  Without it, the first add of enough vectors trains.
   * @throws UnsupportedError (flat, hnsw), ParameterError (too few vectors), DimensionError
   */
  train(vectors: Float32Array | ArrayLike<number>): void;
  /** Whether the index can take records (always true for flat and hnsw). */
  readonly trained: boolean;
  /** Deletes these ids (absent ones are skipped); returns how many were deleted. */
  delete(ids: readonly string[]): number;
  /** The stored record, or undefined if the id is absent. */
  get(id: string): StoredRecord | undefined;
  /** Whether the id is stored. */
  has(id: string): boolean;
  /** The top-level metadata fields of the stored records. */
  fields(): FieldInfo[];
  /** A reusable filter: these ids, or the records a predicate accepts (called once per record, lazily). */
  allowList(ids: Iterable<string> | ((id: string, metadata: Metadata | null) => boolean)): AllowList;
  /**
   * The k nearest records to query.
   * @throws ParameterError (k = 0 or k > 65536, a bad filter: the message names its path), DimensionError, InvalidVectorError, StateError
   */
  search(query: Float32Array | ArrayLike<number>, k: number, options?: SearchOptions): SearchResult;
  /**
   * search() for any index: an index from Index.open first reads what the
   * search needs (lists, candidate rows).  The same results as search() on the
   * segment loaded whole.
   */
  searchAsync(query: Float32Array | ArrayLike<number>, k: number, options?: SearchOptions): Promise<SearchResult>;
  /** Size, graph shape and memory. */
  stats(): IndexStats;
  /** Releases the index's memory; idempotent.  Later calls throw StateError. */
  free(): void;
}

// --------------------------------------------------------------- collections

// Symbol.dispose / asyncDispose (explicit resource management), declared as
// @types/node does for TypeScript libs older than esnext.disposable.
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol;
    readonly asyncDispose: unique symbol;
  }
}

/**
 * Where a collection keeps its blocks (by CID text), its root and its log
 * (docs/API.md, "Stores").  Every method may be async; the collection
 * verifies every block it reads against its CID.
 */
export interface Store {
  get(cid: string): Promise<Uint8Array | undefined>;
  put(cid: string, bytes: Uint8Array): Promise<void>;
  has(cid: string): Promise<boolean>;
  getRoot(): Promise<string | undefined>;
  setRoot(cid: string): Promise<void>;
  readLog(): Promise<Uint8Array>;
  appendLog(bytes: Uint8Array): Promise<void>;
  truncateLog(size: number): Promise<void>;
  /** Optional: blocks, root and an emptied log in one step (one transaction, or durable in order). */
  commit?(version: { blocks: Array<{ cid: string; bytes: Uint8Array }>; root: string }): Promise<void>;
  /** Optional: releases files, locks, connections (Collection.close calls it). */
  close?(): Promise<void>;
}

/** A store that keeps everything in memory (the default). */
export declare function memoryStore(): MemoryStore;
/** The part of node:fs/promises a file store calls (fileStore's fs option, for tests and diagnostics). */
export interface FileStoreFs {
  mkdir(path: string, options?: { recursive?: boolean }): Promise<unknown>;
  open(path: string, flags: string): Promise<{
    close(): Promise<void>; datasync(): Promise<void>; sync(): Promise<void>; stat(): Promise<{ size: number }>;
    truncate(size: number): Promise<void>; writeFile(data: string | Uint8Array): Promise<void>;
    write(data: Uint8Array, offset?: number, length?: number): Promise<{ bytesWritten: number }>;
  }>;
  readFile(path: string): Promise<Uint8Array>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  rename(from: string, to: string): Promise<void>;
  stat(path: string): Promise<unknown>;
  unlink(path: string): Promise<void>;
}
/**
 * A store in a folder (Node): DIR/root, DIR/blocks/<cid>, DIR/log -- the CLI's layout.
 * Log appends are fdatasync'ed; commits write blocks, then the root, durably.
 * lock (default true): one writing process per folder.  fs (tests, diagnostics): the
 * file system calls to make instead of node:fs/promises'.
 */
export declare function fileStore(dir: string, options?: { lock?: boolean; fs?: FileStoreFs }): Promise<Store & { close(): Promise<void>; readonly directory: string }>;
/**
 * A store in IndexedDB (browsers, web workers): a commit is one transaction.  One tab
 * writes (a Web Lock); a collection opened in another tab is read-only and follows
 * the writer's commits.
 */
export declare function indexedDBStore(name?: string, options?: { indexedDB?: IDBFactory }): Promise<Store & { close(): Promise<void>; readonly name: string }>;
export interface MemoryStore extends Store {
  /** The CIDs of every block held. */
  cids(): string[];
  /** Bytes of every block held. */
  readonly size: number;
}

/** The buffer's and small segments' index: hnsw (default) or flat, with its options. */
type SmallOptions =
  | Omit<HnswOptions, 'kind' | 'simd'> & { kind?: 'hnsw' }
  | Omit<FlatOptions, 'kind' | 'simd'> & { kind: 'flat' };
/** Large segments' index (dim and metric are the collection's). */
type LargeOptions =
  | Omit<IvfOptions, 'dim' | 'metric' | 'simd' | 'kind'> & { kind?: 'ivf' }
  | Omit<HnswOptions, 'dim' | 'metric' | 'simd'>
  | Omit<FlatOptions, 'dim' | 'metric' | 'simd'>;

export type CollectionOptions = SmallOptions & Omit<CollectionPolicy, 'recentMs'> & {
  /** Large segments (default { kind: 'ivf', quantizer: 'pq' }). */
  large?: LargeOptions;
  /** Age tiers: records older than this ('7d', '12h', '30m', '45s', '250ms', '2w' or ms) go large at compaction. */
  recent?: string | number;
  /** Where blocks, root and log are kept (default: memoryStore(); it must be empty). */
  store?: Store;
  /** As IndexOptions.simd. */
  simd?: boolean;
};

export interface CollectionRecord {
  id: string;
  vector: Float32Array | ArrayLike<number>;
  metadata?: Metadata | null;
  /** Milliseconds since the epoch (or a Date). */
  time?: number | Date | null;
}

export interface CollectionSearchOptions extends SearchTuning {
  /** A filter expression, a set of ids, or a predicate called per candidate. */
  filter?: FilterExpression | ReadonlySet<string> | ((id: string) => boolean);
  /** Results farther than this are dropped. */
  maxDistance?: number;
}

export interface OpenOptions {
  /** The store holding the collection (with a source: where fetched blocks are kept; default memoryStore()). */
  store?: Store;
  /** Fetch the blocks the store lacks from here (docs/API.md, "Sources"). */
  source?: Source;
  /** A stable name the source resolves to the root (IPNS, an S5 registry entry). */
  name?: string;
  simd?: boolean;
  /** Fetch only what each search needs (segment heads, then probed IVF lists); default true with a source. */
  lazy?: boolean;
  /** Open this version instead of the store's root. */
  root?: string;
}

/** One content-addressed block: a CIDv1 (text) and its bytes. */
export interface Block {
  cid: string;
  bytes: Uint8Array;
}

/**
 * Where collections come from over a network.  get answers a block VERIFIED against its
 * CID, or undefined when the source does not have it; it throws when it failed.
 */
export interface Source {
  readonly name: string;
  get(cid: string, options?: { signal?: AbortSignal }): Promise<Uint8Array | undefined>;
  /** Optional: every block of a DAG in one answer (a CAR), each verified. */
  getDag?(root: string, options?: { signal?: AbortSignal }): Promise<Block[] | undefined>;
  /** Optional: a stable name to a root CID. */
  resolve?(name: string): Promise<string>;
  stats?(): { name: string; fetchedBytes: number; [more: string]: unknown };
}

/** What Collection.publish hands a publisher. */
export interface PublishInput {
  root: string;
  /** Every block reachable from root, history included. */
  blocks: Block[];
  /** The same blocks as one CARv1 with root as its root. */
  car(): Uint8Array;
  /** The stable name to point at root, if one was asked for. */
  name?: string;
}

/** Where Collection.publish sends a version (Helia, Kubo, S5, ...). */
export interface Publisher {
  publish(input: PublishInput): Promise<object>;
}

/**
 * The part of a Helia node (js IPFS, helia 7) that heliaSource and heliaPublisher use.
 * Shoal does not depend on Helia: pass a node from createHelia(), or from createHeliaLight()
 * with codecs: [dagCbor] (Shoal's manifests are dag-cbor, and CIDs are made with it).
 */
export interface HeliaNode {
  blockstore: {
    get(cid: any, options?: any): unknown;
    put(cid: any, bytes: Uint8Array, options?: any): unknown;
    has(cid: any, options?: any): unknown;
  };
  getCodec(code: number): unknown;
  pins?: object;
  routing?: object;
}

/**
 * A Helia node as a source: blocks it holds or fetches (bitswap, gateways: whatever it was
 * built with), each hashed against its CID here.  timeout: ms per block (default 30000),
 * then an error so that anySource asks elsewhere; offline: only what the node holds.
 */
export declare function heliaSource(helia: HeliaNode, options?: { timeout?: number; offline?: boolean }): HeliaSource;
export interface HeliaSource extends Source {
  stats(): { name: string; fetchedBytes: number; fetchedBlocks: number };
}

/** What heliaPublisher's publish returns. */
export interface HeliaPublishResult {
  root: string;
  /** Blocks put (already-held ones included). */
  blocks: number;
  bytes: number;
  /** Whether the root is pinned (false: pin: false, or a partial DAG). */
  pinned: boolean;
  /** Whether the node's content routing announced the root (false without routing, e.g. no DHT). */
  provided: boolean;
}

/**
 * A Helia node as a publisher for Collection.publish: every block verified and put into
 * helia.blockstore, the root pinned (pin, default true) and provided when the node has
 * routing (provide, default true); timeout (ms) bounds pinning and providing.
 */
export declare function heliaPublisher(helia: HeliaNode, options?: { pin?: boolean; provide?: boolean; timeout?: number }): HeliaPublisher;
export interface HeliaPublisher extends Publisher {
  readonly name: string;
  publish(input: Pick<PublishInput, 'root' | 'blocks'> & Partial<PublishInput>): Promise<HeliaPublishResult>;
}

/**
 * A Kubo node's HTTP RPC API as a publisher (docs/API.md, "Kubo"): dag/import of the CAR
 * (method 'car', the default) or block/put of each block (method 'blocks'; the CID Kubo
 * computes must equal Shoal's), pin/add of the root, and name/publish of /ipfs/<root> when
 * an IPNS key name is given (key, or Collection.publish's name).  timeout: ms per call.
 */
export declare function kuboPublisher(api: string | URL, options?: {
  key?: string; pin?: boolean; method?: 'car' | 'blocks'; timeout?: number; concurrency?: number;
  lifetime?: string; headers?: Record<string, string>; fetch?: typeof fetch;
}): KuboPublisher;
export interface KuboPublishResult {
  root: string;
  /** The IPNS name (k51...) pointed at the root, when a key was given. */
  name?: string;
  /** What the name points at: /ipfs/<root>. */
  value?: string;
  blocks: number;
  bytes: number;
  pinned: boolean;
}
export interface KuboPublisher extends Publisher {
  readonly name: string;
  publish(input: Pick<PublishInput, 'root' | 'blocks'> & Partial<PublishInput>): Promise<KuboPublishResult>;
}

/**
 * A Kubo node as a source: block/get and dag/export (every block hashed here), name/resolve
 * for IPNS names.  offline: only what the node holds (no network search for a missing block).
 */
export declare function kuboSource(api: string | URL, options?: {
  timeout?: number; offline?: boolean; maxBlock?: number; maxCar?: number; headers?: Record<string, string>; fetch?: typeof fetch;
}): KuboSource;
export interface KuboSource extends Source {
  getDag(root: string, options?: { signal?: AbortSignal }): Promise<Block[] | undefined>;
  resolve(name: string): Promise<string>;
  stats(): { name: string; fetchedBytes: number; fetchedBlocks: number };
}

/**
 * An S5 node as a publisher (docs/API.md, "S5"): each block not yet uploaded as a blob, an
 * index blob (CID -> BLAKE3 hash and size), and the key's registry entry at the next revision
 * pointing at it, ed25519-signed.  seed: 32 secret bytes (or 64 hex digits), or keyPair: a
 * WebCrypto Ed25519 key pair.  The collection's name is the key's.
 */
export declare function s5Publisher(node: string | URL, options: ({ seed: Uint8Array | string; keyPair?: never } | { keyPair: CryptoKeyPair; seed?: never }) & {
  authToken?: string; timeout?: number; concurrency?: number; reupload?: boolean; headers?: Record<string, string>; fetch?: typeof fetch;
}): S5Publisher;
export interface S5PublishResult {
  root: string;
  /** The registry name: 0xed + the ed25519 public key, base64url. */
  name: string;
  revision: number;
  /** The index blob's id (blob...). */
  index: string;
  blocks: number;
  bytes: number;
  /** Blocks uploaded this time (the others were in the previous index). */
  uploaded: number;
  uploadedBytes: number;
}
export interface S5Publisher extends Publisher {
  readonly name: string;
  /** The registry name this publisher writes. */
  registryName(): Promise<string>;
  publish(input: Pick<PublishInput, 'root' | 'blocks'> & Partial<PublishInput>): Promise<S5PublishResult>;
}

/**
 * An S5 node as a source: resolve(name) checks the registry entry's signature and refuses a
 * revision older than this source has seen, then loads the index it points at; get(cid)
 * downloads the blob the index names, checked by BLAKE3 and size, then SHA-256 against the
 * CID.  Open S5 collections by name.
 */
export declare function s5Source(node: string | URL, options?: {
  timeout?: number; retries?: number; maxIndex?: number; authToken?: string; form?: 'raw' | 'blob';
  headers?: Record<string, string>; fetch?: typeof fetch;
}): S5Source;
export interface S5Source extends Source {
  resolve(name: string): Promise<string>;
  stats(): { name: string; fetchedBytes: number; fetchedBlocks: number; known: number };
}

export declare class Collection {
  private constructor();
  /** A new, empty collection (its first version is committed at once). */
  static create(options: CollectionOptions): Promise<Collection>;
  /** The collection a store holds, its log replayed. */
  static open(options: OpenOptions): Promise<Collection>;
  /**
   * Adds or replaces records; the newest version of an id wins.  Returns the number written.
   * chunk: apply in chunks of this many records, the thread free between them (all are
   * validated before the first is applied).
   */
  upsert(records: readonly CollectionRecord[], options?: { chunk?: number }): Promise<number>;
  /** Deletes these ids; returns how many were deleted. */
  delete(ids: readonly string[]): Promise<number>;
  /** Deletes every record. */
  clear(): Promise<void>;
  /** Writes the buffer as a segment and stores the new version. */
  flush(): Promise<void>;
  /** Flushes, merges each tier into one segment, moves aged records to the large tier. */
  compact(options?: { dropHistory?: boolean }): Promise<void>;
  get(id: string): Promise<StoredRecord | undefined>;
  has(id: string): Promise<boolean>;
  /** Every id (a snapshot). */
  ids(): AsyncGenerator<string>;
  [Symbol.asyncIterator](): AsyncGenerator<string>;
  /** One query (a vector or { id }): one result; an array of vectors: one result per query. */
  search(query: Float32Array | ArrayLike<number> | { id: string }, k: number, options?: CollectionSearchOptions): Promise<SearchResult>;
  search(queries: ReadonlyArray<Float32Array | ArrayLike<number>>, k: number, options?: CollectionSearchOptions): Promise<SearchResult[]>;
  readonly dim: number;
  readonly metric: Metric;
  readonly size: number;
  /** CID of the current version's manifest ("bafyrei..."). */
  readonly cid: string | undefined;
  /** The current version's manifest block (canonical DAG-CBOR). */
  readonly manifest: Uint8Array | undefined;
  readonly store: Store;
  /** Writes are refused: another tab or process holds the writer lock, or this is a snapshot. */
  readonly readOnly: boolean;
  /** A read-only collection of the current segments, sharing their memory (free it when done). */
  snapshot(): Collection;
  stats(): CollectionStats;
  /** Frees the core's memory now. */
  free(): void;
  /** Waits for queued writes, then frees. */
  close(): Promise<void>;
  /**
   * Publishes the current version (flushed first): every block reachable from its root to
   * publisher.publish.  Returns what the publisher returns, with root.
   */
  publish<R extends object>(publisher: { publish(input: PublishInput): Promise<R> }, options?: { name?: string }): Promise<R & { root: string }>;
  /**
   * Moves to a version from a source, fetching only the blocks the store lacks (each
   * verified); the root switches last, so an interrupted sync keeps the old version.
   */
  sync(source: Source, options?: {
    root?: string; name?: string; force?: boolean; concurrency?: number; car?: boolean;
    onProgress?(progress: { blocks: number; bytes: number }): void;
  }): Promise<{ root: string; fetchedBlocks: number; fetchedBytes: number }>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Where a collection in a worker keeps its data (stores cannot cross threads). */
export type WorkerStore = { memory: true } | { file: string } | { indexedDB: string };

/** A source made in the worker (sources cannot cross threads): several gateways race. */
export interface WorkerSource {
  gateways: readonly string[];
  timeout?: number;
  retries?: number;
}

/** A Collection living in a worker: the same methods, each a message. */
export interface RemoteCollection {
  readonly dim: number;
  readonly metric: Metric;
  /** As of the last call that returned. */
  readonly size: number;
  readonly cid: string | undefined;
  readonly readOnly: boolean;
  upsert(records: readonly CollectionRecord[]): Promise<number>;
  delete(ids: readonly string[]): Promise<number>;
  clear(): Promise<void>;
  flush(): Promise<void>;
  compact(options?: { dropHistory?: boolean }): Promise<void>;
  get(id: string): Promise<StoredRecord | undefined>;
  has(id: string): Promise<boolean>;
  ids(): AsyncGenerator<string>;
  [Symbol.asyncIterator](): AsyncGenerator<string>;
  /** filter: an object or a Set of ids (functions cannot cross threads). */
  search(query: Float32Array | ArrayLike<number> | { id: string }, k: number,
    options?: Omit<CollectionSearchOptions, 'filter'> & { filter?: FilterExpression | ReadonlySet<string> }): Promise<SearchResult>;
  stats(): Promise<CollectionStats>;
  /** Collection.sync in the worker; onProgress is called here. */
  sync(source: WorkerSource, options?: {
    root?: string; name?: string; force?: boolean; concurrency?: number; car?: boolean;
    onProgress?(progress: { blocks: number; bytes: number }): void;
  }): Promise<{ root: string; fetchedBlocks: number; fetchedBytes: number }>;
  close(): Promise<void>;
}

/**
 * Creates or opens a collection in a worker running 'shoal/worker-host' (a Web Worker
 * with type 'module', or a Node worker_threads Worker).  While a long upsert runs there,
 * searches and reads are answered from the last committed version.
 */
export declare function workerCollection(
  worker: { postMessage(message: unknown, transfer?: Transferable[]): void },
  how: { create: Omit<CollectionOptions, 'store'> & { store?: WorkerStore } } | { open: Omit<OpenOptions, 'store' | 'source'> & { store?: WorkerStore; source?: WorkerSource } },
): Promise<RemoteCollection>;

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
export declare function initWasm(modules: { simd?: WasmSource; base?: WasmSource }): void;
/** A compiled module, or where to fetch one (only the variant used is fetched). */
export type WasmSource =
  | WebAssembly.Module | URL | string | Response | Blob
  | PromiseLike<WebAssembly.Module | URL | string | Response | Blob>;
