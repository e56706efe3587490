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
  DimensionError, InvalidIdError, NotFoundError, OutOfMemoryError, ParameterError, StateError,
  TruncatedDataError, UnsupportedError, errorFromCode,
} from '../dist/errors.mjs';
import { codeOf, fail } from './fail.mjs';
import { chooseVariant, loadVariant, simdSupported } from './load.mjs';
import { KIND, METRIC, PARAMS, SEARCH_PARAMS, STATS } from '../dist/abi.mjs';
import {
  MSG_SIZE, Scratch, checkOptions, cidOf, decoder, encoder, packedStrings, paramCell, searchCells, simdCell, toFloat32,
  writeIds, writeMetadata, writeTimes,
} from './heap.mjs';
import { rangeReader, readExactly } from './ranges.mjs';

// Everything the binding's cells and the core's words need comes from
// dist/abi.mjs, generated from the lists in src/shoal.h (tools/gen.c).
const PARAMS_BY_NAME = new Map(PARAMS.map((p, i) => [p.name, { ...p, cell: i }]));
const SAVE_OPTIONS = ['zstdLevel'];
const LOAD_OPTIONS = ['simd'];
const OPEN_OPTIONS = ['simd', 'rows', 'lists', 'fetch'];
const KIND_HNSW = 1;
const KIND_IVF = 2;
const FEATURE_LIST_RECORDS = 2; // the segment keeps its records per list (format 1.1)
const ETRUNCATED = codeOf(TruncatedDataError);
const EUNSUPPORTED = codeOf(UnsupportedError);
const ESTATE = codeOf(StateError);
const LISTS_AT_ONCE = 8; // parallel list reads of lists: 'all'
const SEARCH_OPTIONS = [...SEARCH_PARAMS.map((p) => p.name), 'filter'];
const ID_BYTES_GUESS = 32; // per result, for search() to copy ids out in its one call

// Joins byte arrays.
function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
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
  // Opened from a source (Index.open): where its bytes are read from.
  #read = null;
  #lazy = false;     // lists attached as searches want them
  #external = false; // rerank rows read per search, never kept
  #pending = new Map(); // list -> the promise attaching it
  #nlist = 0;
  #reads = { calls: 0, bytes: 0 };

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
   * true fails without it), quantizer 'f32' | 'sq8' (hnsw, ivf) | 'pq' (ivf),
   * rerank (sq8, pq: keeps float32 copies and re-scores this many best
   * candidates in float32).  hnsw: M, efConstruction, efSearch.  ivf: nlist,
   * nprobe, pqM, pqBits 8 | 4 (4 = fast scan), trainSample, trainIters.  The list and its defaults:
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
   * Opens a segment from a source of byte ranges without reading all of it
   * (docs/API.md, "Opening a segment by range"): a Uint8Array, ArrayBuffer,
   * Blob or File, Node FileHandle, URL (HTTP Range requests) or a function
   * (offset, length) => bytes (or a promise of them).  An IVF segment
   * (format 1.1) is opened from its head -- centroids, codebooks, list
   * counts -- and then:
   *   options.lists: 'lazy' (default) reads each list when a searchAsync
   *     first probes it; 'all' reads every list now.
   *   options.rows: 'external' never keeps the float32 rerank rows of an
   *     IVF-SQ8/PQ index with rerank: lists are read without them, and each
   *     searchAsync reads only the rows of its candidates (rerank depth x
   *     dim x 4 bytes; they must be stored raw, as save() writes them by
   *     default, else UnsupportedError).  'memory' reads them with their
   *     lists and keeps them (as Index.load does).  'auto' (default):
   *     external unless the rows are compressed.
   * An HNSW SQ8 segment with rerank copies is read but for its rows (the
   * segment's last section) and searched as above (rows 'external' or
   * 'auto'); its rows are kept when compressed, or when the index
   * traverses them (under 1024 records: 'auto' keeps them, 'external'
   * throws UnsupportedError).
   * Other segments are read whole and loaded.  options.simd as for
   * create().  Search with searchAsync(); search() works once nothing is
   * left to read (every list a search probes attached, rows in memory).
   * The bytes are validated as they arrive, exactly as load() does.
   */
  static async open(source, options = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    checkOptions(options, OPEN_OPTIONS, 'Index.open');
    const { rows = 'auto', lists = 'lazy' } = options;
    if (rows !== 'auto' && rows !== 'external' && rows !== 'memory')
      throw fail(ParameterError, `rows must be 'auto', 'external' or 'memory', not '${String(rows)}'`);
    if (lists !== 'lazy' && lists !== 'all')
      throw fail(ParameterError, `lists must be 'lazy' or 'all', not '${String(lists)}'`);
    const read = rangeReader(source, options.fetch);
    const counts = { calls: 0, bytes: 0 };
    const counted = async (offset, length) => {
      const bytes = await readExactly(read, offset, length);
      counts.calls++;
      counts.bytes += length;
      return bytes;
    };
    const M = await loadVariant(chooseVariant(options.simd));
    // The header first (64 bytes), then as much as the head needs.
    const head = (bytes) => {
      const scratch = new Scratch(M);
      try {
        const data = scratch.alloc(bytes.length);
        const out = scratch.alloc(11 * 8);
        M.HEAPU8.set(bytes, data);
        const rc = M._shoal_js_segment_head(data, bytes.length, out);
        const v = Array.from(M.HEAPF64.subarray(out >>> 3, (out >>> 3) + 11));
        return { rc, headSize: v[1], headBytes: v[2], size: v[3], kind: v[4], nlist: v[5], rerank: v[6],
          required: v[7], compressed: v[8] };
      } finally {
        scratch.release();
      }
    };
    // A prefix of the segment, extended (never read twice) as more is needed.
    let bytes = await counted(0, 64);
    const upTo = async (end) => {
      if (end > bytes.length) bytes = concat([bytes, await counted(bytes.length, end - bytes.length)]);
    };
    let info = head(bytes);
    if (info.rc === ETRUNCATED && info.headSize > 64) {
      await upTo(info.headSize);
      info = head(bytes);
    }
    if (info.rc < 0) throw errorFromCode(info.rc, 'opening a segment: its header or section table');
    const lazy = info.kind === KIND_IVF && (info.required & FEATURE_LIST_RECORDS) !== 0 && info.nlist > 0;
    let external = rows !== 'memory' && info.rerank > 0 && (info.kind === KIND_IVF || info.kind === KIND_HNSW);
    // An HNSW segment with copies keeps its rows last: its head is the rest.
    const rowsLast = external && info.kind === KIND_HNSW && info.headBytes < info.size;
    // Opens from the first `end` bytes: from the head (open_head) or whole.
    const tryOpen = async (end, fromHead) => {
      await upTo(end);
      const part = bytes.length > end ? bytes.subarray(0, end) : bytes;
      const scratch = new Scratch(M);
      try {
        const data = scratch.alloc(part.length);
        const msg = scratch.alloc(MSG_SIZE);
        const out = scratch.alloc(4);
        M.HEAPU8.set(part, data);
        M.HEAPU8[msg] = 0;
        const rc = M._shoal_js_index_open(data, part.length, simdCell(options.simd), fromHead ? 1 : 0,
          external ? 1 : 0, msg, MSG_SIZE, out);
        if (rc < 0) return { rc, message: M.UTF8ToString(msg) };
        const handle = M.HEAPU32[out >>> 2];
        const index = new Index(Index.#token, M, handle, M._shoal_index_dim(handle) >>> 0,
          METRIC[M._shoal_index_metric(handle)], KIND[M._shoal_index_kind(handle)]);
        if (!fromHead) index.#cid = cidOf(M, scratch, data, part.length);
        return { rc, index };
      } finally {
        scratch.release();
      }
    };
    const first = lazy || rowsLast ? info.headBytes : info.size;
    let opened = await tryOpen(first, lazy || rowsLast);
    if (opened.rc === EUNSUPPORTED && external && rows === 'auto') { // compressed rows: keep them
      external = false;
      opened = await tryOpen(lazy ? info.headBytes : info.size, lazy);
    }
    if (opened.rc < 0) throw errorFromCode(opened.rc, opened.message || `opening a segment of ${info.size} bytes`);
    const { index } = opened;
    index.#read = counted;
    index.#reads = counts;
    index.#lazy = lazy && M._shoal_index_lists_missing(index.#handle) > 0;
    index.#external = external;
    index.#nlist = info.nlist;
    if (lazy && lists === 'all') {
      const all = Array.from({ length: info.nlist }, (_, l) => l);
      try {
        for (let i = 0; i < all.length; i += LISTS_AT_ONCE)
          await Promise.all(all.slice(i, i + LISTS_AT_ONCE).map((l) => index.#attachList(l)));
      } catch (err) {
        index.free();
        throw err;
      }
    }
    return index;
  }

  /**
   * What an opened index has read from its source: { calls, bytes } (the
   * head, lists and rerank rows); zeros for other indexes.
   */
  get reads() {
    this.#live();
    return { ...this.#reads };
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
   * nprobe).  options.rerank (SQ8/PQ with rerank copies): candidates
   * re-scored in float32, >= k (default: the index's rerank, raised to k;
   * HNSW re-scores the best of the ef it found, all of them when rerank >= ef).
   * options.ef (HNSW): candidate list size, >= k (default: the index's
   * efSearch, raised to k).  options.filter: a function id => boolean; only
   * records it accepts are returned (k of them whenever k match).  It is
   * called once per record per search.
   */
  search(query, k, options = {}) {
    return this.#call((M, handle, scratch) => {
      const a = this.#searchArgs(M, handle, scratch, query, k, options);
      const room = Math.min(k, M._shoal_index_size(handle) >>> 0);
      // One block: labels, distances, where each id ends, the count of
      // results with metadata, then room for the ids (longer ones: asked
      // for one by one).
      const idRoom = room * ID_BYTES_GUESS;
      const labels = scratch.alloc(room * 12 + 4 + idRoom);
      const distances = labels + room * 4;
      const packed = { ends: labels + room * 8, withMetadata: labels + room * 12, ids: labels + room * 12 + 4 };
      try {
        a.write();
        const rc = M._shoal_js_search(handle, a.qp, a.dim, k, a.cellPtr, a.bitmap, a.bits, a.where, labels, distances,
          packed.ids, idRoom, packed.ends, packed.withMetadata);
        if (rc === ESTATE && this.#read)
          throw fail(StateError, `${M.UTF8ToString(M._shoal_index_errmsg(handle) >>> 0)} (an index from Index.open: search it with searchAsync)`);
        const count = this.#check(rc);
        return this.#results(M, handle, scratch, a.idPtr, labels, distances, count, packed);
      } finally {
        if (a.where) M._shoal_filter_free(a.where);
      }
    });
  }

  /**
   * search() for any index, as a promise: an index opened with Index.open
   * first reads the lists the search probes that it has not read yet, and
   * (rows: 'external') reranks from the rows of its candidates alone, read
   * from the source.  Same options and results as search(); the same ids
   * and distances as search() on the index loaded whole.  A function
   * filter is called once per record for each step that needs it.
   */
  async searchAsync(query, k, options = {}) {
    if (!this.#read) return this.search(query, k, options);
    // A filtered search may walk past its nprobe nearest lists, up to one
    // not read yet: it asks first.  Others try, and ask when the core says a
    // probed list is missing (once every list is in, never).
    if (this.#lazy && options?.filter != null) await this.#attachWanted(query, k, options);
    for (let attempt = 0; ; attempt++) {
      try {
        return this.#external ? await this.#twoPhase(query, k, options) : this.search(query, k, options);
      } catch (err) {
        if (!(err instanceof StateError) || !this.#lazy || attempt > 0) throw err;
        if ((await this.#attachWanted(query, k, options)) === 0) throw err;
      }
    }
  }

  // A search with external rerank rows: the candidates and where their rows
  // are (phase 1), the host's reads -- adjacent rows in one read, each
  // copied straight into the wasm heap -- and the exact distances (phase 2).
  async #twoPhase(query, k, options) {
    const dim = this.#dim;
    const rowBytes = dim * 4;
    const { labels, offsets, floors } = this.#call((M, handle, scratch) => {
      const a = this.#searchArgs(M, handle, scratch, query, k, options);
      try {
        for (let cap = Math.max(k, options.rerank ?? 0, 64); ; cap *= 4) {
          const lp = scratch.alloc(cap * 4);
          const op = scratch.alloc(cap * 8);
          const fp = scratch.alloc(cap * 4);
          a.write();
          const n = this.#check(M._shoal_js_search_candidates(handle, a.qp, dim, k, a.cellPtr, a.bitmap, a.bits,
            a.where, lp, op, fp, cap));
          if (n <= cap) {
            return {
              labels: M.HEAPU32.slice(lp >>> 2, (lp >>> 2) + n),
              offsets: M.HEAPF64.slice(op >>> 3, (op >>> 3) + n),
              floors: M.HEAPF32.slice(fp >>> 2, (fp >>> 2) + n),
            };
          }
        }
      } finally {
        if (a.where) M._shoal_filter_free(a.where);
      }
    });
    const n = labels.length;
    const M = this.#M;
    const rows = M._malloc(Math.max(n * rowBytes, 8)) >>> 0; // this call's own: searches may overlap
    if (!rows) throw fail(OutOfMemoryError, `cannot allocate ${n * rowBytes} bytes for rerank rows`);
    // Reads the rows of candidates `which` into row slots from `from` on:
    // adjacent rows in one read, each copied straight into the wasm heap.
    const readInto = async (which, from) => {
      const order = which.map((c, j) => [c, from + j]).sort((x, y) => offsets[x[0]] - offsets[y[0]]);
      const runs = [];
      for (const [c, slot] of order) {
        const last = runs[runs.length - 1];
        if (last && last.end === offsets[c]) {
          last.end += rowBytes;
          last.slots.push(slot);
        } else {
          runs.push({ start: offsets[c], end: offsets[c] + rowBytes, slots: [slot] });
        }
      }
      await Promise.all(runs.map(async (r) => {
        const bytes = await this.#read(r.start, r.end - r.start);
        const heap = M.HEAPU8; // (read after the await: memory may have grown)
        r.slots.forEach((slot, j) => heap.set(bytes.subarray(j * rowBytes, (j + 1) * rowBytes), rows + slot * rowBytes));
      }));
    };
    // Phase 2 over the rows read for candidates `picked` (in slot order):
    // the results, or (not final) the k-th distance (Infinity below k).
    const rerank = (picked, final) => this.#call((M, handle, scratch) => {
      const q = toFloat32(query, 'query');
      const m = picked.length;
      const qp = scratch.alloc(q.length * 4);
      const lp = scratch.alloc(Math.max(m, 1) * 4);
      const room = Math.min(k, m);
      const outLabels = scratch.alloc(Math.max(room, 1) * 4);
      const outDistances = scratch.alloc(Math.max(room, 1) * 4);
      M.HEAPF32.set(q, qp >>> 2);
      picked.forEach((c, i) => { M.HEAPU32[(lp >>> 2) + i] = labels[c]; });
      const count = this.#check(M._shoal_index_rerank_rows(handle, qp, q.length, k, m, lp, rows, outLabels,
        outDistances));
      if (!final) return count === k ? M.HEAPF32[(outDistances >>> 2) + k - 1] : Infinity;
      return this.#results(M, handle, scratch, scratch.alloc(4), outLabels, outDistances, count);
    });
    try {
      // With floors (HNSW): the first k rows, then only the later
      // candidates whose floor does not exceed the k-th distance they gave
      // (shoal.h, "External rerank rows"); else every row at once.
      const first = Math.min(k, n);
      const bounded = n > first && floors.some((f) => f !== -Infinity);
      let picked = Array.from({ length: bounded ? first : n }, (_, i) => i);
      await readInto(picked, 0);
      if (bounded) {
        const worst = rerank(picked, false);
        const more = [];
        for (let c = first; c < n; c++) if (!(floors[c] > worst)) more.push(c);
        if (more.length) await readInto(more, first);
        picked = picked.concat(more);
      }
      return rerank(picked, true);
    } finally {
      M._free(rows);
    }
  }

  // Attaches the lists a search wants, asking again until none is wanted
  // (a filtered search may want lists past those it first named); returns
  // how many it attached.
  async #attachWanted(query, k, options) {
    let attached = 0;
    for (;;) {
      const wanted = this.#call((M, handle, scratch) => {
        const a = this.#searchArgs(M, handle, scratch, query, k, options);
        const cap = Math.max(this.#nlist, 1);
        const out = scratch.alloc(cap * 4);
        try {
          a.write();
          const n = this.#check(M._shoal_js_lists_wanted(handle, a.qp, a.dim, a.cellPtr, a.bitmap, a.bits, a.where,
            out, cap));
          return Array.from(M.HEAPU32.subarray(out >>> 2, (out >>> 2) + Math.min(n, cap)));
        } finally {
          if (a.where) M._shoal_filter_free(a.where);
        }
      });
      if (wanted.length === 0) {
        if (this.#M._shoal_index_lists_missing(this.#live()) === 0) this.#lazy = false;
        return attached;
      }
      await Promise.all(wanted.map((l) => this.#attachList(l)));
      attached += wanted.length;
    }
  }

  // Reads list l (without its rerank rows when they stay external) and
  // attaches it; concurrent searches share one read of a list.
  #attachList(l) {
    const pending = this.#pending.get(l);
    if (pending) return pending;
    const p = (async () => {
      const parts = this.#call((M, handle, scratch) => {
        const out = scratch.alloc(4 * 8);
        if (M._shoal_js_list_parts(handle, l, out) < 0) return null; // every list is in
        return Array.from(M.HEAPF64.subarray(out >>> 3, (out >>> 3) + 4));
      }, true);
      if (!parts) return;
      const [off, size, rowsAt, rowsSize] = parts;
      const bytes = this.#external && rowsSize > 0
        ? concat(await Promise.all([this.#read(off, rowsAt - off),
          this.#read(rowsAt + rowsSize, off + size - rowsAt - rowsSize)]))
        : await this.#read(off, size);
      this.#call((M, handle, scratch) => {
        const ptr = scratch.alloc(bytes.length);
        M.HEAPU8.set(bytes, ptr);
        this.#check(M._shoal_index_attach_list(handle, l, ptr, bytes.length));
      });
    })().finally(() => this.#pending.delete(l));
    this.#pending.set(l, p);
    return p;
  }

  // Checks search() arguments and lays them out on the heap: write() copies
  // the query and cells (after every allocation, which may move the heap).
  #searchArgs(M, handle, scratch, query, k, options) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    checkOptions(options, SEARCH_OPTIONS, 'search');
    const cells = searchCells(options, (p) => {
      if (!p.kinds.includes(this.#kind))
        throw fail(ParameterError, `${p.name} applies to ${p.kinds.join(', ')} indexes; this one is ${this.#kind}`);
    });
    const q = toFloat32(query, 'query');
    // C takes a uint32: a fraction or negative number would arrive changed.
    if (!Number.isInteger(k) || k < 0 || k > 0xffffffff)
      throw fail(ParameterError, `k must be a positive integer, not ${String(k)}`);
    const cellPtr = scratch.alloc(cells.byteLength + 4 + q.length * 4); // cells, an id pointer, the query
    const idPtr = cellPtr + cells.byteLength;
    const qp = idPtr + 4;
    const filter = this.#filterOf(M, handle, scratch, idPtr, options.filter);
    return {
      bitmap: filter.bitmap, bits: filter.bits, where: filter.where, qp, idPtr, cellPtr, dim: q.length,
      write: () => {
        M.HEAPF32.set(q, qp >>> 2);
        M.HEAPU32.set(cells, cellPtr >>> 2);
      },
    };
  }

  // { ids, distances, metadata } of count results at labels / distances.
  // packed (from shoal_js_search, see wasm/binding.c): their ids already
  // copied out, and whether any has metadata.
  #results(M, handle, scratch, idPtr, labels, distances, count, packed = null) {
    const found = Array.from(M.HEAPU32.subarray(labels >>> 2, (labels >>> 2) + count));
    let ids;
    if (packed && count > 0 && M.HEAPU32[packed.ends >>> 2] !== 0xffffffff) {
      ids = packedStrings(M, packed.ids, packed.ends, count);
    } else {
      ids = new Array(count);
      for (let i = 0; i < count; i++) ids[i] = this.#idOf(M, handle, idPtr, found[i]);
    }
    return {
      ids,
      distances: M.HEAPF32.slice(distances >>> 2, (distances >>> 2) + count),
      metadata: packed && M.HEAPU32[packed.withMetadata >>> 2] === 0 ? new Array(count).fill(null)
        : this.#metadataOf(M, handle, scratch, found),
    };
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
