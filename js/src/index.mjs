// index.mjs -- the Index class: a thin, allocation-safe layer over shoal.h.
//
// Division of labour: the C core validates everything it can see (dimensions
// it is told, NaN/Inf, empty or oversized ids, k, zero vectors under cosine)
// and leaves the index unchanged on failure; JS checks only what is lost at
// the boundary -- array shapes, types, integers that would be truncated --
// and maps every negative return code to the generated error class.
//
// Every call copies its inputs into scratch memory on the wasm heap and frees
// it in a finally block.  HEAP* views are re-read after each malloc or core
// call because either can grow (and so detach) the wasm memory.

import {
  DimensionError, InvalidIdError, ParameterError, StateError, OutOfMemoryError,
  errorFromCode,
} from '../dist/errors.mjs';
import { fail } from './fail.mjs';
import { chooseVariant, loadVariant, simdSupported } from './load.mjs';

const METRICS = ['l2', 'ip', 'cosine']; // index = shoal_metric

// Per kind: its shoal_kind value and the create options it accepts beyond the
// common ones; wasm/binding.c's js_param array carries them.
const KINDS = {
  flat: { value: 0, options: [] },
  hnsw: { value: 1, options: ['M', 'efConstruction', 'efSearch', 'storage'] },
  ivf: {
    value: 2,
    options: ['nlist', 'nprobe', 'quantizer', 'pqM', 'pqBits', 'rerank', 'trainSample', 'trainIters'],
  },
};
const STORAGES = ['f32', 'sq8']; // index = shoal_storage
const QUANTIZERS = ['flat', 'sq8', 'pq']; // index = shoal_quantizer
const COMMON_OPTIONS = ['dim', 'metric', 'kind', 'seed', 'simd'];
const SEARCH_OPTIONS = ['ef', 'nprobe', 'rerank', 'filter'];
const SAVE_OPTIONS = ['zstdLevel'];
const LOAD_OPTIONS = ['simd'];
const CID_SIZE = 64; // SHOAL_CID_SIZE
const KIND_NAMES = ['flat', 'hnsw', 'ivf']; // index = shoal_kind
const ADD_OPTIONS = ['onProgress'];

// Order of wasm/binding.c enum js_param.
const JS_PARAM_COUNT = 18;
const SIMD_AUTO = 0;
const SIMD_SCALAR = 1;
const NOT_FOUND = -6; // SHOAL_ENOTFOUND, an answer rather than an error for get()

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Frees the core handle if an Index is garbage-collected without free().
// Only a safety net: collection may come late or never.
const registry = new FinalizationRegistry(({ M, handle }) => M._shoal_index_free(handle));

/** Scratch allocations on the wasm heap, all freed by release(). */
class Scratch {
  constructor(M) {
    this.M = M;
    this.pointers = [];
  }
  alloc(bytes) {
    const ptr = this.M._malloc(Math.max(bytes, 8)) >>> 0;
    if (!ptr) throw fail(OutOfMemoryError, `cannot allocate ${bytes} bytes of scratch memory`);
    this.pointers.push(ptr);
    return ptr;
  }
  release() {
    for (const ptr of this.pointers) this.M._free(ptr);
    this.pointers.length = 0;
  }
}

function checkOptions(options, allowed, what) {
  for (const key of Object.keys(options))
    if (!allowed.includes(key))
      throw fail(ParameterError, `unknown ${what} option '${key}' (known: ${allowed.join(', ') || 'none'})`);
}

// An optional non-negative integer option that C takes as uint32 (0 = default).
function uint32Option(value, name) {
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || value < 1 || value > 0xffffffff)
    throw fail(ParameterError, `${name} must be a positive integer, not ${String(value)}`);
  return value;
}

function toFloat32(values, what) {
  if (values instanceof Float32Array) return values;
  if (Array.isArray(values) || ArrayBuffer.isView(values)) return Float32Array.from(values);
  throw new TypeError(`${what} must be a Float32Array or an array of numbers`);
}

// uint64 seed -> [lo, hi] uint32 halves.
function splitSeed(seed) {
  if (seed === undefined) return [0, 0];
  let big;
  if (typeof seed === 'bigint') big = seed;
  else if (Number.isSafeInteger(seed)) big = BigInt(seed);
  else throw fail(ParameterError, `seed must be an integer or a bigint, not ${String(seed)}`);
  if (big < 0n || big >= 1n << 64n) throw fail(ParameterError, `seed ${seed} is outside 0..2^64-1`);
  return [Number(big & 0xffffffffn), Number(big >> 32n)];
}

/**
 * Copies ids into the heap as one UTF-8 buffer plus n+1 offsets, the layout
 * shoal_index_add/delete take.  Returns [bytesPtr, offsetsPtr].
 */
function writeIds(M, scratch, ids) {
  if (!Array.isArray(ids)) throw new TypeError('ids must be an array of strings');
  let bound = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (typeof id !== 'string') throw new TypeError(`ids[${i}] is ${typeof id}, not a string`);
    // TextEncoder turns lone surrogates into U+FFFD, which would silently make
    // distinct ids equal; C sees only the bytes, so this check lives here.
    if (id.isWellFormed && !id.isWellFormed())
      throw fail(InvalidIdError, `ids[${i}] contains a lone UTF-16 surrogate`);
    bound += id.length * 3; // UTF-8 bytes per UTF-16 unit, at most
  }
  const bytes = scratch.alloc(bound);
  const offsets = scratch.alloc((ids.length + 1) * 4);
  const heap = M.HEAPU8;
  const offs = M.HEAPU32;
  let at = 0;
  offs[offsets >>> 2] = 0;
  for (let i = 0; i < ids.length; i++) {
    at += encoder.encodeInto(ids[i], heap.subarray(bytes + at, bytes + bound)).written;
    offs[(offsets >>> 2) + i + 1] = at;
  }
  return [bytes, offsets];
}

export class Index {
  #M;
  #handle;
  #dim;
  #metric;
  #kind;
  #simd;
  #cid;

  /** Use Index.create(): construction needs the asynchronously loaded wasm. */
  constructor(token, M, handle, dim, metric, kind) {
    if (token !== Index.#token) throw new TypeError('use Index.create(options)');
    this.#M = M;
    this.#handle = handle;
    this.#dim = dim;
    this.#metric = metric;
    this.#kind = kind;
    this.#simd = M.UTF8ToString(M._shoal_index_simd_name(handle) >>> 0);
    registry.register(this, { M, handle }, this);
  }
  static #token = Symbol('Index');

  /**
   * Creates an empty index.  Options: dim (required), metric 'l2' | 'ip' |
   * 'cosine' (default 'l2'), kind 'flat' (default) | 'hnsw' | 'ivf', seed
   * (integer or bigint, for randomized kinds), simd true | false | undefined
   * (auto: SIMD128 when the runtime has it; false forces the scalar build,
   * true fails without it).  hnsw: M, efConstruction, efSearch, storage.
   * ivf: nlist, nprobe, quantizer 'flat' | 'sq8' | 'pq', pqM, pqBits 8 | 4
   * (4 = fast scan), rerank (candidates re-scored in float32; keeps float32
   * copies), trainSample, trainIters -- see docs/API.md.
   */
  static async create(options) {
    if (options === null || typeof options !== 'object')
      throw new TypeError('Index.create needs an options object: { dim, metric, kind }');
    const { dim, metric = 'l2', kind = 'flat', seed, simd, storage = 'f32' } = options;
    const kindSpec = Object.hasOwn(KINDS, kind) ? KINDS[kind] : undefined;
    if (!kindSpec)
      throw fail(ParameterError, `kind must be one of ${Object.keys(KINDS).join(', ')}, not '${kind}'`);
    checkOptions(options, [...COMMON_OPTIONS, ...kindSpec.options], 'Index.create');
    if (!Number.isInteger(dim) || dim < 1 || dim > 0xffffffff)
      throw fail(ParameterError, `dim must be a positive integer, not ${String(dim)}`);
    const metricValue = METRICS.indexOf(metric);
    if (metricValue < 0)
      throw fail(ParameterError, `metric must be one of ${METRICS.join(', ')}, not '${metric}'`);
    const [seedLo, seedHi] = splitSeed(seed);
    const storageValue = STORAGES.indexOf(storage);
    if (storageValue < 0)
      throw fail(ParameterError, `storage must be one of ${STORAGES.join(', ')}, not '${storage}'`);
    const hnsw = [
      uint32Option(options.M, 'M'),
      uint32Option(options.efConstruction, 'efConstruction'),
      uint32Option(options.efSearch, 'efSearch'),
      storageValue,
    ];
    const { quantizer = 'flat' } = options;
    const quantizerValue = QUANTIZERS.indexOf(quantizer);
    if (quantizerValue < 0)
      throw fail(ParameterError, `quantizer must be one of ${QUANTIZERS.join(', ')}, not '${quantizer}'`);
    if (options.pqBits !== undefined && options.pqBits !== 4 && options.pqBits !== 8)
      throw fail(ParameterError, `pqBits must be 4 or 8, not ${String(options.pqBits)}`);
    if (options.rerank !== undefined && options.rerank !== 0) uint32Option(options.rerank, 'rerank');
    const ivf = [
      uint32Option(options.nlist, 'nlist'),
      uint32Option(options.nprobe, 'nprobe'),
      quantizerValue,
      uint32Option(options.pqM, 'pqM'),
      uint32Option(options.pqBits, 'pqBits'),
      options.rerank ? options.rerank : 0,
      uint32Option(options.trainSample, 'trainSample'),
      uint32Option(options.trainIters, 'trainIters'),
    ];
    const variant = chooseVariant(simd);
    const M = await loadVariant(variant);

    const scratch = new Scratch(M);
    try {
      const values = scratch.alloc(JS_PARAM_COUNT * 4);
      const out = scratch.alloc(4);
      M.HEAPU32.set(
        [dim, metricValue, kindSpec.value, simd === false ? SIMD_SCALAR : SIMD_AUTO, seedLo, seedHi,
          ...hnsw, ...ivf],
        values >>> 2,
      );
      const rc = M._shoal_js_index_new(values, JS_PARAM_COUNT, out);
      // shoal_index_new has no handle to hold a detail message: say what was asked.
      if (rc < 0) {
        const asked = Object.entries(options).filter(([, v]) => v !== undefined)
          .map(([key, v]) => `${key} ${String(v)}`).join(', ');
        throw errorFromCode(rc, `creating an index with ${asked}`);
      }
      return new Index(Index.#token, M, M.HEAPU32[out >>> 2], dim, metric, kind);
    } finally {
      scratch.release();
    }
  }

  /**
   * Loads an index from segment bytes (a Uint8Array or ArrayBuffer, e.g.
   * from save(), a file, IndexedDB or IPFS).  Every byte is verified; bad
   * bytes throw a CorruptDataError (TruncatedDataError, ChecksumError,
   * VersionError).  options.simd as for create().  The bytes are copied:
   * the index does not keep them.  index.cid is then the segment's CID.
   */
  static async load(bytes, options = {}) {
    if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
    if (!(bytes instanceof Uint8Array)) throw new TypeError('Index.load needs a Uint8Array or ArrayBuffer');
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    checkOptions(options, LOAD_OPTIONS, 'Index.load');
    const M = await loadVariant(chooseVariant(options.simd));
    const scratch = new Scratch(M);
    try {
      const data = scratch.alloc(bytes.length);
      const msg = scratch.alloc(256);
      const out = scratch.alloc(4);
      M.HEAPU8.set(bytes, data);
      M.HEAPU8[msg] = 0;
      const rc = M._shoal_js_index_load(data, bytes.length, options.simd === false ? SIMD_SCALAR : SIMD_AUTO,
        msg, 256, out);
      if (rc < 0) throw errorFromCode(rc, M.UTF8ToString(msg) || `loading ${bytes.length} bytes`);
      const handle = M.HEAPU32[out >>> 2];
      const index = new Index(Index.#token, M, handle, M._shoal_index_dim(handle) >>> 0,
        METRICS[M._shoal_index_metric(handle)], KIND_NAMES[M._shoal_index_kind(handle)]);
      index.#cid = cidOf(M, scratch, data, bytes.length);
      return index;
    } finally {
      scratch.release();
    }
  }

  /**
   * The segment bytes of this index (docs/FORMAT.md): the same bytes from
   * every build for the same index.  options.zstdLevel: 0 (default) stores
   * sections uncompressed; 1..19 compresses each section with zstd.
   * Afterwards index.cid is the CID of the returned bytes.
   */
  save(options = {}) {
    return this.#call((M, handle, scratch) => {
      if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
      checkOptions(options, SAVE_OPTIONS, 'save');
      const { zstdLevel = 0 } = options;
      if (!Number.isInteger(zstdLevel)) throw fail(ParameterError, `zstdLevel must be an integer, not ${String(zstdLevel)}`);
      const params = scratch.alloc(4);
      const out = scratch.alloc(8);
      M.HEAP32[params >>> 2] = zstdLevel;
      this.#check(M._shoal_index_save(handle, params, out, out + 4));
      const ptr = M.HEAPU32[out >>> 2], size = M.HEAPU32[(out + 4) >>> 2];
      try {
        const bytes = M.HEAPU8.slice(ptr, ptr + size);
        this.#cid = cidOf(M, scratch, ptr, size);
        return bytes;
      } finally {
        M._shoal_index_free_segment(handle, ptr);
      }
    });
  }

  /**
   * CID (CIDv1, raw codec, sha2-256, base32 "bafkrei...") of the segment this
   * index was last loaded from or saved to, or undefined if it has never been
   * saved or loaded, or has changed (add, delete, train) since.
   */
  get cid() {
    this.#live();
    return this.#cid;
  }

  #live() {
    if (!this.#handle) throw fail(StateError, 'this index was freed');
    return this.#handle;
  }

  // Runs fn(M, handle, scratch) and frees its scratch memory however it ends.
  #call(fn) {
    const handle = this.#live();
    const scratch = new Scratch(this.#M);
    try {
      return fn(this.#M, handle, scratch);
    } finally {
      scratch.release();
    }
  }

  #check(rc) {
    if (rc < 0) throw errorFromCode(rc, this.#M.UTF8ToString(this.#M._shoal_index_errmsg(this.#handle) >>> 0));
    return rc;
  }

  /** Vector length every record and query must have. */
  get dim() {
    return this.#dim;
  }
  /** 'l2' (squared Euclidean), 'ip' (negative inner product) or 'cosine' (1 - cosine). */
  get metric() {
    return this.#metric;
  }
  get kind() {
    return this.#kind;
  }
  /** Name of the kernels this index computes with: 'wasm-simd128' or 'scalar'. */
  get simd() {
    return this.#simd;
  }
  /** Number of live records. */
  get size() {
    return this.#M._shoal_index_size(this.#live()) >>> 0;
  }
  /** Bytes the core has allocated for this index (not counting JS objects). */
  memoryBytes() {
    return this.#M._shoal_index_memory_bytes(this.#live()) >>> 0;
  }

  /**
   * Adds or replaces records: ids[i] gets vectors[i*dim .. (i+1)*dim).  An id
   * already present is replaced (and counts as newly inserted); within a
   * batch the later of two equal ids wins.  All-or-nothing on bad input.
   * options.onProgress(done, total) is called every 1024 records and at the
   * end; if it throws, the add stops after the current record (the records
   * before stay added) and the error is rethrown.
   * Returns the number of records written.
   */
  add(ids, vectors, options = {}) {
    return this.#call((M, handle, scratch) => {
      checkOptions(options, ADD_OPTIONS, 'add');
      const { onProgress } = options;
      if (onProgress !== undefined && typeof onProgress !== 'function')
        throw new TypeError('onProgress must be a function');
      const data = toFloat32(vectors, 'vectors');
      const [idBytes, idOffsets] = writeIds(M, scratch, ids);
      const n = ids.length;
      if (data.length !== n * this.#dim)
        throw fail(DimensionError,
          `${data.length} floats for ${n} ids; dim ${this.#dim} needs ${n * this.#dim}`);
      const vecs = scratch.alloc(data.length * 4);
      M.HEAPF32.set(data, vecs >>> 2);
      this.#cid = undefined;
      if (!onProgress) return this.#check(M._shoal_index_add(handle, n, idBytes, idOffsets, vecs, this.#dim));

      // A JS exception must not unwind through wasm frames (C would never
      // free what it holds), so the callback catches and asks C to stop.
      let thrown;
      const callback = M.addFunction((ctx, done, total) => {
        try {
          onProgress(done >>> 0, total >>> 0);
          return 0;
        } catch (err) {
          thrown = err;
          return 1;
        }
      }, 'iiii');
      M._shoal_index_on_progress(handle, callback, 0);
      try {
        const rc = this.#check(M._shoal_index_add(handle, n, idBytes, idOffsets, vecs, this.#dim));
        if (thrown) throw thrown;
        return rc;
      } finally {
        M._shoal_index_on_progress(handle, 0, 0);
        M.removeFunction(callback);
      }
    });
  }

  /**
   * Trains an index kind that needs it (ivf) on vectors (n * dim floats),
   * which are only read, not added.  Training an index that holds records
   * retrains it and re-encodes every record.  Without train(), the first add
   * of enough vectors trains on them.  Throws UnsupportedError for flat and
   * hnsw, ParameterError for too few vectors (fewer than nlist, or than 2^pqBits).
   */
  train(vectors) {
    return this.#call((M, handle, scratch) => {
      const data = toFloat32(vectors, 'vectors');
      if (data.length === 0 || data.length % this.#dim !== 0)
        throw fail(DimensionError, `${data.length} floats are not a positive multiple of dim ${this.#dim}`);
      const vecs = scratch.alloc(data.length * 4);
      M.HEAPF32.set(data, vecs >>> 2);
      this.#cid = undefined;
      this.#check(M._shoal_index_train(handle, data.length / this.#dim, vecs, this.#dim));
    });
  }

  /** Whether the index can take records (always true for flat and hnsw). */
  get trained() {
    return this.#M._shoal_index_trained(this.#live()) === 1;
  }

  /** Deletes the records with these ids; absent ids are skipped.  Returns how many were deleted. */
  delete(ids) {
    return this.#call((M, handle, scratch) => {
      const [idBytes, idOffsets] = writeIds(M, scratch, ids);
      const deleted = this.#check(M._shoal_index_delete(handle, ids.length, idBytes, idOffsets));
      if (deleted > 0) this.#cid = undefined;
      return deleted;
    });
  }

  /** The stored vector of id (unit length under cosine), or undefined. */
  get(id) {
    return this.#call((M, handle, scratch) => {
      if (typeof id !== 'string') throw new TypeError(`id must be a string, not ${typeof id}`);
      const [idBytes, idOffsets] = writeIds(M, scratch, [id]);
      const out = scratch.alloc(this.#dim * 4);
      const len = M.HEAPU32[(idOffsets >>> 2) + 1];
      const rc = M._shoal_index_get(handle, idBytes, len, out);
      if (rc === NOT_FOUND) return undefined;
      this.#check(rc);
      return M.HEAPF32.slice(out >>> 2, (out >>> 2) + this.#dim);
    });
  }

  /**
   * The k records closest to query, closest first; equal distances come in
   * insertion order.  Returns { ids, distances } with up to k entries.
   * options.nprobe (IVF): lists scanned, 1..nlist (default: the index's
   * nprobe).  options.rerank (IVF with rerank): candidates re-scored in
   * float32, >= k (default: the index's rerank, raised to k).
   * options.ef (HNSW): candidate list size, >= k (default: the index's
   * efSearch, raised to k).  options.filter: a function id => boolean; only
   * records it accepts are returned (k of them whenever k match).  It is
   * called once per record per search.
   */
  search(query, k, options = {}) {
    return this.#call((M, handle, scratch) => {
      checkOptions(options, SEARCH_OPTIONS, 'search');
      const ef = uint32Option(options.ef, 'ef');
      const nprobe = uint32Option(options.nprobe, 'nprobe');
      const rerank = uint32Option(options.rerank, 'rerank');
      const { filter } = options;
      if (filter !== undefined && typeof filter !== 'function')
        throw new TypeError('filter must be a function (id) => boolean');
      const q = toFloat32(query, 'query');
      // C takes a uint32: a fraction or negative number would arrive changed.
      if (!Number.isInteger(k) || k < 0 || k > 0xffffffff)
        throw fail(ParameterError, `k must be a positive integer, not ${String(k)}`);
      // At most size results, so a huge k does not become a huge allocation
      // (C still sees k and rejects it if out of range).
      const room = Math.min(k, M._shoal_index_size(handle) >>> 0);
      const qp = scratch.alloc(q.length * 4);
      const labels = scratch.alloc(room * 4);
      const distances = scratch.alloc(room * 4);
      const idPtr = scratch.alloc(4);
      const [bitmap, bits] = filter ? this.#filterBitmap(M, handle, scratch, idPtr, filter) : [0, 0];
      M.HEAPF32.set(q, qp >>> 2);
      const count = this.#check(
        M._shoal_js_search(handle, qp, q.length, k, ef, nprobe, rerank, bitmap, bits, labels, distances));
      const ids = new Array(count);
      for (let i = 0; i < count; i++) ids[i] = this.#idOf(M, handle, idPtr, M.HEAPU32[(labels >>> 2) + i]);
      return { ids, distances: M.HEAPF32.slice(distances >>> 2, (distances >>> 2) + count) };
    });
  }

  // The id of a live label, or undefined for a free one; idPtr is 4 bytes of scratch.
  #idOf(M, handle, idPtr, label) {
    const len = M._shoal_index_label_id(handle, label, idPtr);
    if (len < 0) return undefined;
    const at = M.HEAPU32[idPtr >>> 2];
    return decoder.decode(M.HEAPU8.subarray(at, at + len));
  }

  // A bitmap over labels with the bits of the records filter accepts.
  #filterBitmap(M, handle, scratch, idPtr, filter) {
    const bound = M._shoal_index_label_bound(handle) >>> 0;
    const bitmap = scratch.alloc(Math.ceil(bound / 8));
    const bits = new Uint8Array(Math.ceil(bound / 8));
    for (let label = 0; label < bound; label++) {
      const id = this.#idOf(M, handle, idPtr, label);
      if (id !== undefined && filter(id)) bits[label >>> 3] |= 1 << (label & 7);
    }
    M.HEAPU8.set(bits, bitmap); // after filter(): it may have grown memory
    return [bitmap, bound];
  }

  /**
   * { size, levels, meanDegree, memoryBytes, codesBytes, rerankBytes, nlist }:
   * levels and meanDegree describe an HNSW graph; codesBytes (what a search
   * scans: centroids, codebooks, list labels and codes), rerankBytes (float32
   * rerank copies) and nlist an IVF index.  memoryBytes includes both.
   */
  stats() {
    return this.#call((M, handle, scratch) => {
      // shoal_stats in wasm32: u32 size, u32 levels, f64 meanDegree, size_t
      // memory, size_t codes, size_t rerank, u32 nlist.
      const out = scratch.alloc(32);
      M._shoal_index_stats(handle, out);
      return {
        size: M.HEAPU32[out >>> 2],
        levels: M.HEAPU32[(out >>> 2) + 1],
        meanDegree: M.HEAPF64[(out + 8) >>> 3],
        memoryBytes: M.HEAPU32[(out + 16) >>> 2],
        codesBytes: M.HEAPU32[(out + 20) >>> 2],
        rerankBytes: M.HEAPU32[(out + 24) >>> 2],
        nlist: M.HEAPU32[(out + 28) >>> 2],
      };
    });
  }

  /** Releases the core's memory.  Idempotent; any later use throws StateError. */
  free() {
    if (!this.#handle) return;
    registry.unregister(this);
    this.#M._shoal_index_free(this.#handle);
    this.#handle = 0;
  }
}

// The CID of size bytes at ptr on the wasm heap.
function cidOf(M, scratch, ptr, size) {
  const out = scratch.alloc(CID_SIZE);
  const len = M._shoal_cid(ptr, size, out);
  return decoder.decode(M.HEAPU8.subarray(out, out + len));
}

/** Library version, wasm variant ('simd' | 'base') and the kernels it resolves to. */
export async function wasmInfo({ simd } = {}) {
  const variant = chooseVariant(simd);
  const M = await loadVariant(variant);
  return {
    version: M.UTF8ToString(M._shoal_version() >>> 0),
    variant,
    kernels: M.UTF8ToString(M._shoal_simd_name(simd === false ? SIMD_SCALAR : SIMD_AUTO) >>> 0),
    simdSupported: simdSupported(),
  };
}
