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
  DimensionError, InvalidIdError, NotFoundError, ParameterError, StateError, OutOfMemoryError,
  errorFromCode,
} from '../dist/errors.mjs';
import { codeOf, fail } from './fail.mjs';
import { chooseVariant, loadVariant, simdSupported } from './load.mjs';
import { ENUMS, KIND, LIMITS, METRIC, PARAMS, SEARCH_PARAMS, SIMD, STATS } from '../dist/abi.mjs';

// Everything the binding's cells and the core's words need comes from
// dist/abi.mjs, generated from the lists in src/shoal.h (tools/gen.c).
const PARAMS_BY_NAME = new Map(PARAMS.map((p, i) => [p.name, { ...p, cell: i }]));
const SAVE_OPTIONS = ['zstdLevel'];
const LOAD_OPTIONS = ['simd'];
const ADD_OPTIONS = ['onProgress'];
const SIMD_AUTO = SIMD.indexOf('auto');
const SIMD_SCALAR = SIMD.indexOf('scalar');
const NOT_FOUND = codeOf(NotFoundError); // an answer rather than an error for get()
const MSG_SIZE = 256;

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

// A positive integer option that C takes as uint32 (undefined = 0 = default).
function uint32Option(value, name) {
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || value < 1 || value > 0xffffffff)
    throw fail(ParameterError, `${name} must be a positive integer, not ${String(value)}`);
  return value;
}

// The 64-bit cell of one create option (SHOAL_PARAM_LIST row p).
function paramCell(p, value) {
  if (p.type === 'ENUM') {
    const words = ENUMS[p.enum];
    const at = words.indexOf(value);
    if (at < 0) throw fail(ParameterError, `${p.name} must be one of ${words.join(', ')}, not '${value}'`);
    return BigInt(at);
  }
  if (p.type === 'U64') {
    let big;
    if (typeof value === 'bigint') big = value;
    else if (Number.isSafeInteger(value)) big = BigInt(value);
    else throw fail(ParameterError, `${p.name} must be an integer or a bigint, not ${String(value)}`);
    if (big < 0n || big >= 1n << 64n) throw fail(ParameterError, `${p.name} ${value} is outside 0..2^64-1`);
    return big;
  }
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw fail(ParameterError, `${p.name} must be a non-negative integer, not ${String(value)}`);
  return BigInt(value);
}

// The JS simd option (which wasm build) as the core's kernel choice.
function simdCell(simd) {
  return simd === false ? SIMD_SCALAR : SIMD_AUTO;
}

function toFloat32(values, what) {
  if (values instanceof Float32Array) return values;
  if (Array.isArray(values) || ArrayBuffer.isView(values)) return Float32Array.from(values);
  throw new TypeError(`${what} must be a Float32Array or an array of numbers`);
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
  #busy = false;

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
   * true fails without it), quantizer 'f32' | 'sq8' (hnsw, ivf) | 'pq' (ivf).
   * hnsw: M, efConstruction, efSearch.  ivf: nlist, nprobe, pqM, pqBits
   * 8 | 4 (4 = fast scan), rerank (candidates re-scored in float32; keeps
   * float32 copies), trainSample, trainIters.  The list and its defaults:
   * docs/PARAMS.md (generated from shoal.h, like the checks here).
   */
  static async create(options) {
    if (options === null || typeof options !== 'object')
      throw new TypeError('Index.create needs an options object: { dim, metric, kind }');
    const { kind = 'flat', simd } = options;
    if (!KIND.includes(kind))
      throw fail(ParameterError, `kind must be one of ${KIND.join(', ')}, not '${kind}'`);
    const known = PARAMS.filter((p) => p.kinds.includes(kind)).map((p) => p.name);
    checkOptions(options, known, `Index.create (kind '${kind}')`);
    if (options.dim === undefined) throw fail(ParameterError, 'dim is required');
    const cells = new BigUint64Array(PARAMS.length);
    for (const [name, value] of Object.entries(options)) {
      if (value === undefined) continue;
      const p = PARAMS_BY_NAME.get(name);
      cells[p.cell] = name === 'simd' ? BigInt(simdCell(value)) : paramCell(p, value);
    }
    const variant = chooseVariant(simd);
    const M = await loadVariant(variant);

    const scratch = new Scratch(M);
    try {
      const ptr = scratch.alloc(cells.byteLength);
      const msg = scratch.alloc(MSG_SIZE);
      const out = scratch.alloc(4);
      new BigUint64Array(M.HEAPU8.buffer, ptr, cells.length).set(cells);
      M.HEAPU8[msg] = 0;
      const rc = M._shoal_js_index_new(ptr, cells.length, msg, MSG_SIZE, out);
      if (rc < 0) throw errorFromCode(rc, M.UTF8ToString(msg) || 'creating an index');
      const handle = M.HEAPU32[out >>> 2];
      return new Index(Index.#token, M, handle, options.dim, METRIC[M._shoal_index_metric(handle)], kind);
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
      const msg = scratch.alloc(MSG_SIZE);
      const out = scratch.alloc(4);
      M.HEAPU8.set(bytes, data);
      M.HEAPU8[msg] = 0;
      const rc = M._shoal_js_index_load(data, bytes.length, simdCell(options.simd), msg, MSG_SIZE, out);
      if (rc < 0) throw errorFromCode(rc, M.UTF8ToString(msg) || `loading ${bytes.length} bytes`);
      const handle = M.HEAPU32[out >>> 2];
      const index = new Index(Index.#token, M, handle, M._shoal_index_dim(handle) >>> 0,
        METRIC[M._shoal_index_metric(handle)], KIND[M._shoal_index_kind(handle)]);
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
        M._shoal_index_free_bytes(handle, ptr);
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
  // Runs fn(M, handle, scratch) and frees its scratch memory however it
  // ends.  A call made while another runs -- from a filter or onProgress
  // callback of that call -- would free or move what the running call
  // points into (a use-after-free in the heap every index of the variant
  // shares), so it throws StateError instead and the running call goes on.
  // Reads (reading = true: get, stats) are fine from a callback: they
  // neither change the index nor reuse the running call's scratch.
  #call(fn, reading = false) {
    const handle = this.#live();
    if (this.#busy && !reading)
      throw fail(StateError, 'this index is busy: it was called from a callback of one of its own calls');
    const scratch = new Scratch(this.#M);
    const outer = this.#busy;
    if (!reading) this.#busy = true;
    try {
      return fn(this.#M, handle, scratch);
    } finally {
      this.#busy = outer;
      scratch.release();
    }
  }

  #check(rc) {
    if (rc < 0) throw errorFromCode(rc, this.#M.UTF8ToString(this.#M._shoal_index_errmsg(this.#handle) >>> 0));
    return rc;
  }

  /** Vector length every record and query must have. */
  get dim() {
    this.#live();
    return this.#dim;
  }
  /** 'l2' (squared Euclidean), 'ip' (negative inner product) or 'cosine' (1 - cosine). */
  get metric() {
    this.#live();
    return this.#metric;
  }
  /** 'flat', 'hnsw' or 'ivf'. */
  get kind() {
    this.#live();
    return this.#kind;
  }
  /** Name of the kernels this index computes with: 'wasm-simd128' or 'scalar'. */
  get simd() {
    this.#live();
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
    }, true);
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
      if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
      checkOptions(options, [...SEARCH_PARAMS.map((p) => p.name), 'filter'], 'search');
      const cells = new BigUint64Array(SEARCH_PARAMS.length);
      SEARCH_PARAMS.forEach((p, i) => {
        if (options[p.name] === undefined) return;
        if (!p.kinds.includes(this.#kind))
          throw fail(ParameterError, `${p.name} applies to ${p.kinds.join(', ')} indexes; this one is ${this.#kind}`);
        cells[i] = BigInt(uint32Option(options[p.name], p.name));
      });
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
      const cellPtr = scratch.alloc(cells.byteLength);
      const [bitmap, bits] = filter ? this.#filterBitmap(M, handle, scratch, idPtr, filter) : [0, 0];
      M.HEAPF32.set(q, qp >>> 2);
      new BigUint64Array(M.HEAPU8.buffer, cellPtr, cells.length).set(cells);
      const count = this.#check(
        M._shoal_js_search(handle, qp, q.length, k, cellPtr, bitmap, bits, labels, distances));
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
      const out = scratch.alloc(STATS.length * 8);
      M._shoal_js_stats(handle, out);
      const values = M.HEAPF64.subarray(out >>> 3, (out >>> 3) + STATS.length);
      return Object.fromEntries(STATS.map((field, i) => [field.name, values[i]]));
    }, true);
  }

  /** Releases the core's memory.  Idempotent; any later use throws StateError. */
  free() {
    if (!this.#handle) return;
    if (this.#busy) throw fail(StateError, 'free() called from a callback of a running call on this index');
    registry.unregister(this);
    this.#M._shoal_index_free(this.#handle);
    this.#handle = 0;
  }
}

// The CID of size bytes at ptr on the wasm heap.
function cidOf(M, scratch, ptr, size) {
  const out = scratch.alloc(LIMITS.cid);
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
    kernels: M.UTF8ToString(M._shoal_simd_name(simdCell(simd)) >>> 0),
    simdSupported: simdSupported(),
  };
}
