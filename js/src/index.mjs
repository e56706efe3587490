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
  DimensionError, InvalidIdError, NotFoundError, ParameterError, StateError, errorFromCode,
} from '../dist/errors.mjs';
import { codeOf, fail } from './fail.mjs';
import { chooseVariant, loadVariant, simdSupported } from './load.mjs';
import { KIND, METRIC, PARAMS, SEARCH_PARAMS, STATS } from '../dist/abi.mjs';
import {
  MSG_SIZE, Scratch, checkOptions, cidOf, decoder, encoder, paramCell, simdCell, toFloat32,
  uint32Option, writeIds, writeMetadata, writeTimes,
} from './heap.mjs';

// Everything the binding's cells and the core's words need comes from
// dist/abi.mjs, generated from the lists in src/shoal.h (tools/gen.c).
const PARAMS_BY_NAME = new Map(PARAMS.map((p, i) => [p.name, { ...p, cell: i }]));
const SAVE_OPTIONS = ['zstdLevel'];
const LOAD_OPTIONS = ['simd'];
const ADD_OPTIONS = ['onProgress', 'metadata', 'times'];
const NOT_FOUND = codeOf(NotFoundError); // an answer rather than an error for get()

// Frees the core handle if an Index is garbage-collected without free().
// Only a safety net: collection may come late or never.
const registry = new FinalizationRegistry(({ M, handle }) => M._shoal_index_free(handle));

const ALLOW_TOKEN = Symbol('AllowList');

/**
 * A set of records to search among, built once and reused across searches
 * (index.allowList(ids | predicate)); rebuilt automatically when its index
 * changed since.
 */
export class AllowList {
  #bits = null;
  #version = -1;
  constructor(token, index, source) {
    if (token !== ALLOW_TOKEN) throw new TypeError('use index.allowList(ids or predicate)');
    this.index = index;
    this.source = typeof source === 'function' ? source : new Set(source);
    Object.freeze(this);
  }
  /** The label bits for the index at version, from build() when stale. */
  bitmapFor(version, build) {
    if (this.#version !== version) {
      this.#bits = build();
      this.#version = version;
    }
    return this.#bits;
  }
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
  #version = 0; // bumped by every mutation: allow lists built before it are stale

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
      if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
      checkOptions(options, ADD_OPTIONS, 'add');
      const { onProgress, metadata, times } = options;
      if (onProgress !== undefined && typeof onProgress !== 'function')
        throw new TypeError('onProgress must be a function');
      const data = toFloat32(vectors, 'vectors');
      const [idBytes, idOffsets] = writeIds(M, scratch, ids);
      const n = ids.length;
      if (data.length !== n * this.#dim)
        throw fail(DimensionError,
          `${data.length} floats for ${n} ids; dim ${this.#dim} needs ${n * this.#dim}`);
      const [meta, metaOffsets] = metadata === undefined ? [0, 0] : writeMetadata(M, scratch, metadata, n);
      const timesPtr = times === undefined ? 0 : writeTimes(M, scratch, times, n);
      const timesScratch = times === undefined ? 0 : scratch.alloc(n * 8);
      const vecs = scratch.alloc(data.length * 4);
      M.HEAPF32.set(data, vecs >>> 2);
      this.#cid = undefined;
      this.#version++;
      const upsert = () => M._shoal_js_upsert(handle, n, idBytes, idOffsets, vecs, this.#dim, meta, metaOffsets,
        timesPtr, timesScratch);
      if (!onProgress) return this.#check(upsert());

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
        const rc = this.#check(upsert());
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
      this.#version++;
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
      if (deleted > 0) {
        this.#cid = undefined;
        this.#version++;
      }
      return deleted;
    });
  }

  /**
   * The record of id -- { id, vector (unit length under cosine), metadata
   * (an object, or null), time (milliseconds, or undefined) } -- or undefined.
   */
  get(id) {
    return this.#call((M, handle, scratch) => {
      if (typeof id !== 'string') throw new TypeError(`id must be a string, not ${typeof id}`);
      const [idBytes, idOffsets] = writeIds(M, scratch, [id]);
      const out = scratch.alloc(this.#dim * 4);
      const len = M.HEAPU32[(idOffsets >>> 2) + 1];
      const rc = M._shoal_index_get(handle, idBytes, len, out);
      if (rc === NOT_FOUND) return undefined;
      this.#check(rc);
      const vector = M.HEAPF32.slice(out >>> 2, (out >>> 2) + this.#dim);
      const label = M._shoal_index_label_of(handle, idBytes, len);
      const [metadata] = this.#metadataOf(M, handle, scratch, [label]);
      return { id, vector, metadata, time: this.#timeOf(M, handle, scratch, label) };
    }, true);
  }

  /** Whether a record with this id is stored. */
  has(id) {
    return this.#call((M, handle, scratch) => {
      if (typeof id !== 'string') throw new TypeError(`id must be a string, not ${typeof id}`);
      if (id === '') throw fail(InvalidIdError, 'an id has 1..1024 bytes, not 0');
      const [idBytes, idOffsets] = writeIds(M, scratch, [id]);
      return M._shoal_index_label_of(handle, idBytes, M.HEAPU32[(idOffsets >>> 2) + 1]) >= 0;
    }, true);
  }

  /**
   * The top-level metadata fields of the stored records, in order of first
   * appearance: [{ name, count, types: ['number', 'string', ...] }].  What a
   * filter UI offers.
   */
  fields() {
    return this.#call((M, handle, scratch) => {
      const out = scratch.alloc(4);
      const len = this.#check(M._shoal_js_fields(handle, out));
      const text = M.HEAPU32[out >>> 2];
      try {
        const words = ['number', 'string', 'boolean', 'null', 'array', 'object'];
        return JSON.parse(decoder.decode(M.HEAPU8.subarray(text, text + len))).map(({ name, count, types }) => ({
          name, count, types: words.filter((_, bit) => types & (1 << bit)),
        }));
      } finally {
        M._free(text);
      }
    }, true);
  }

  /**
   * A reusable allow list: only these records pass as a search filter.
   * ids: an iterable of ids, or a predicate (id, metadata) => boolean called
   * once per record now (not per search).  The list is checked against the
   * index's version at each use and rebuilt if the index changed since.
   */
  allowList(idsOrPredicate) {
    if (typeof idsOrPredicate !== 'function' && (idsOrPredicate === null || typeof idsOrPredicate !== 'object' ||
        typeof idsOrPredicate[Symbol.iterator] !== 'function'))
      throw new TypeError('allowList takes an iterable of ids or a function (id, metadata) => boolean');
    this.#live();
    return new AllowList(ALLOW_TOKEN, this, idsOrPredicate);
  }

  // The metadata objects of labels (null for none), one JSON.parse.
  #metadataOf(M, handle, scratch, labels) {
    if (labels.length === 0) return [];
    const ptr = scratch.alloc(labels.length * 4);
    M.HEAPU32.set(labels, ptr >>> 2);
    const out = scratch.alloc(8);
    this.#check(M._shoal_index_metadata_json(handle, labels.length, ptr, out, out + 4));
    const text = M.HEAPU32[out >>> 2], size = M.HEAPU32[(out + 4) >>> 2];
    try {
      return JSON.parse(decoder.decode(M.HEAPU8.subarray(text, text + size)));
    } finally {
      M._shoal_index_free_bytes(handle, text);
    }
  }

  #timeOf(M, handle, scratch, label) {
    const out = scratch.alloc(8);
    if (M._shoal_index_record_info(handle, label, out, 0) < 0) return undefined;
    const lo = M.HEAPU32[out >>> 2], hi = M.HEAP32[(out + 4) >>> 2];
    if (hi === -0x80000000 && lo === 0) return undefined; // SHOAL_TIME_NONE
    return hi * 0x100000000 + lo;
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
      const { bitmap, bits, where } = this.#filterOf(M, handle, scratch, idPtr, options.filter);
      try {
        M.HEAPF32.set(q, qp >>> 2);
        new BigUint64Array(M.HEAPU8.buffer, cellPtr, cells.length).set(cells);
        const count = this.#check(
          M._shoal_js_search(handle, qp, q.length, k, cellPtr, bitmap, bits, where, labels, distances));
        const ids = new Array(count);
        const found = Array.from(M.HEAPU32.subarray(labels >>> 2, (labels >>> 2) + count));
        for (let i = 0; i < count; i++) ids[i] = this.#idOf(M, handle, idPtr, found[i]);
        return {
          ids,
          distances: M.HEAPF32.slice(distances >>> 2, (distances >>> 2) + count),
          metadata: this.#metadataOf(M, handle, scratch, found),
        };
      } finally {
        if (where) M._shoal_filter_free(where);
      }
    });
  }

  /**
   * The filter option as what C takes: { bitmap, bits } for a function, a
   * Set of ids or an AllowList; { where } (a compiled shoal_filter, freed by
   * the caller) for a filter object.
   */
  #filterOf(M, handle, scratch, idPtr, filter) {
    const none = { bitmap: 0, bits: 0, where: 0 };
    if (filter === undefined || filter === null) return none;
    if (typeof filter === 'function') return this.#filterBitmap(M, handle, scratch, idPtr, filter);
    if (filter instanceof AllowList) {
      if (filter.index !== this) throw fail(ParameterError, 'this allow list belongs to another index');
      const bits = filter.bitmapFor(this.#version, () => this.#allowBits(M, handle, scratch, idPtr, filter.source));
      return this.#copyBitmap(M, scratch, bits);
    }
    if (filter instanceof Set) return this.#copyBitmap(M, scratch, this.#allowBits(M, handle, scratch, idPtr, filter));
    if (typeof filter !== 'object' || Array.isArray(filter))
      throw new TypeError('filter must be a filter object ({ field: value, $or: [...] }), a Set of ids, an allow list or a function');
    let json;
    try {
      json = JSON.stringify(filter);
    } catch (err) {
      throw fail(ParameterError, `the filter cannot be written as JSON: ${err.message}`);
    }
    const bytes = encoder.encode(json);
    const text = scratch.alloc(bytes.length);
    const out = scratch.alloc(4);
    const msg = scratch.alloc(MSG_SIZE);
    M.HEAPU8.set(bytes, text);
    M.HEAPU8[msg] = 0;
    const rc = M._shoal_filter_compile(text, bytes.length, 0, out, msg, MSG_SIZE);
    if (rc < 0) throw errorFromCode(rc, `filter: ${M.UTF8ToString(msg)}`);
    return { bitmap: 0, bits: 0, where: M.HEAPU32[out >>> 2] };
  }

  // The labels' bits of an allow set (ids) or predicate (id, metadata).
  #allowBits(M, handle, scratch, idPtr, source) {
    const bound = M._shoal_index_label_bound(handle) >>> 0;
    const bits = new Uint8Array(Math.ceil(bound / 8));
    if (typeof source === 'function') {
      const all = [];
      for (let label = 0; label < bound; label++) if (this.#idOf(M, handle, idPtr, label) !== undefined) all.push(label);
      const meta = this.#metadataOf(M, handle, scratch, all);
      all.forEach((label, i) => {
        if (source(this.#idOf(M, handle, idPtr, label), meta[i])) bits[label >>> 3] |= 1 << (label & 7);
      });
      return bits;
    }
    for (const id of source) {
      if (typeof id !== 'string') throw new TypeError(`allowed ids must be strings, not ${typeof id}`);
      if (id === '') continue;
      const [idBytes, idOffsets] = writeIds(M, scratch, [id]);
      const label = M._shoal_index_label_of(handle, idBytes, M.HEAPU32[(idOffsets >>> 2) + 1]);
      if (label >= 0) bits[label >>> 3] |= 1 << (label & 7);
    }
    return bits;
  }

  #copyBitmap(M, scratch, bits) {
    const ptr = scratch.alloc(bits.length);
    M.HEAPU8.set(bits, ptr);
    return { bitmap: ptr, bits: bits.length * 8, where: 0 };
  }

  // The id of a live label, or undefined for a free one; idPtr is 4 bytes of scratch.
  #idOf(M, handle, idPtr, label) {
    const len = M._shoal_index_label_id(handle, label, idPtr);
    if (len < 0) return undefined;
    const at = M.HEAPU32[idPtr >>> 2];
    return decoder.decode(M.HEAPU8.subarray(at, at + len));
  }

  // A bitmap over labels with the bits of the records a predicate accepts:
  // one call per record per search (an allow list calls it once).
  #filterBitmap(M, handle, scratch, idPtr, filter) {
    const bound = M._shoal_index_label_bound(handle) >>> 0;
    const bitmap = scratch.alloc(Math.ceil(bound / 8));
    const bits = new Uint8Array(Math.ceil(bound / 8));
    for (let label = 0; label < bound; label++) {
      const id = this.#idOf(M, handle, idPtr, label);
      if (id !== undefined && filter(id)) bits[label >>> 3] |= 1 << (label & 7);
    }
    M.HEAPU8.set(bits, bitmap); // after filter(): it may have grown memory
    return { bitmap, bits: bound, where: 0 };
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
