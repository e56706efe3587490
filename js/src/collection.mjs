// collection.mjs -- the Collection class: a growing, persistent, shareable
// set of records over the core's collection (src/collection/).
//
// The core computes; this class moves bytes.  Every write is encoded by the
// core as a log record, appended to the store's log, then applied -- so the
// record applied is exactly the record logged, and a restart replays the log.
// When the buffer is due (or on flush/compact), the core writes segments and
// a manifest; this class stores the blocks the store lacks, then the root,
// then empties the log.  Opening reads the root's blocks out of the store,
// each verified by the core against its CID.
//
// Writes are queued: one runs at a time, in call order, so the log's order
// is the order writes were made.  Reads wait for the writes queued before
// them (read-your-writes), then run synchronously in the core.

import {
  DimensionError, NotFoundError, ParameterError, StateError, errorFromCode,
} from '../dist/errors.mjs';
import { codeOf, fail } from './fail.mjs';
import { chooseVariant, loadVariant } from './load.mjs';
import {
  COLLECTION_PARAMS, COLLECTION_STATS, LIMITS, METRIC, PARAMS, SEARCH_PARAMS,
} from '../dist/abi.mjs';
import {
  MSG_SIZE, Scratch, checkOptions, decoder, encoder, paramCell, simdCell, toFloat32,
  searchCells, uint32Option, writeIds, writeMetadata, writeTimes,
} from './heap.mjs';
import { memoryStore } from './stores.mjs';
import { cachingStore } from './sources.mjs';
import { carOf, dagBlocks, linksOf } from './cid.mjs';

const PARAMS_BY_NAME = new Map(PARAMS.map((p, i) => [p.name, { ...p, cell: i }]));
const POLICY_BY_NAME = new Map(COLLECTION_PARAMS.map((p, i) => [p.name, { ...p, cell: i }]));
const NOT_FOUND = codeOf(NotFoundError);
const CID_BYTES = 36;
const WANT_ALL = 0, WANT_LAZY = 1;
const SMALL_KINDS = ['hnsw', 'flat'];
// (Symbol.dispose is in Node 20 and recent browsers; elsewhere the names
// TypeScript's downlevel helpers use.)
const DISPOSE = Symbol.dispose ?? Symbol.for('Symbol.dispose');
const ASYNC_DISPOSE = Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose');
const registry = new FinalizationRegistry(({ M, handle }) => M._shoal_collection_free(handle));

// '7d', '12h', '30m', '45s', '250ms', '2w' or a number of milliseconds.
const UNITS = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000, w: 604800000 };
export function durationMs(value, name) {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  const m = typeof value === 'string' && /^(\d+)(ms|s|m|h|d|w)$/.exec(value);
  if (!m) throw fail(ParameterError, `${name} must be milliseconds or a duration like '7d', '12h', not ${String(value)}`);
  return Number(m[1]) * UNITS[m[2]];
}

// Index options (PARAMS names) as cells; kinds: the kinds allowed.
function indexCells(options, kinds, what) {
  const kind = options.kind;
  if (!kinds.includes(kind)) throw fail(ParameterError, `${what} kind must be ${kinds.join(' or ')}, not '${kind}'`);
  const cells = new BigUint64Array(PARAMS.length);
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const p = PARAMS_BY_NAME.get(name);
    if (!p || name === 'simd') throw fail(ParameterError, `unknown ${what} option '${name}'`);
    if (!p.kinds.includes(kind))
      throw fail(ParameterError, `${what} option ${name} applies to ${p.kinds.join(', ')}, not ${kind}`);
    cells[p.cell] = paramCell(p, value);
  }
  return cells;
}

function cidText(M, scratch, ptr) {
  const out = scratch.alloc(LIMITS.cid);
  const len = M._shoal_cid_format(ptr, out);
  return decoder.decode(M.HEAPU8.subarray(out, out + len));
}

export class Collection {
  #M;
  #handle;
  #dim;
  #metric;
  #store;
  #queue = Promise.resolve();
  #busy = false;
  #logSize = 0;
  #dirty = false;
  #cid;
  #manifest;
  #lazy = false;
  #readOnly = false;
  #unwatch = null;
  #stored = new Set();    // CIDs known to be in the store
  #unsaved = new Map();   // blocks of versions whose commit failed: CID -> bytes
  #snapshot = false;      // made by snapshot(): does not own the store
  #source = null;         // opened from a source (Collection.open({ source }))

  constructor(token, M, handle, store) {
    if (token !== Collection.#token) throw new TypeError('use Collection.create(options) or Collection.open({ store })');
    this.#M = M;
    this.#handle = handle;
    this.#dim = M._shoal_collection_dim(handle) >>> 0;
    this.#metric = METRIC[M._shoal_collection_metric(handle)];
    this.#store = store;
    registry.register(this, { M, handle }, this);
  }
  static #token = Symbol('Collection');

  /**
   * A new, empty collection.  Options: dim (required), metric; the buffer's
   * and small segments' index: kind 'hnsw' (default) or 'flat' and its
   * options (M, efConstruction, efSearch, quantizer, seed); large: the
   * options of large segments (default { kind: 'ivf', quantizer: 'pq' });
   * policy: largeFrom, recent ('7d' or ms: age tiers), flushRecords,
   * flushBytes, mergeFactor, zstdLevel; store (default memoryStore(); it
   * must be empty); simd as for Index.create.
   */
  static async create(options) {
    if (options === null || typeof options !== 'object')
      throw new TypeError('Collection.create needs an options object: { dim, metric, ... }');
    const { store = memoryStore(), simd, large = {}, recent, kind = 'hnsw', ...rest } = options;
    const smallOptions = { kind };
    const policy = new BigInt64Array(COLLECTION_PARAMS.length);
    for (const [name, value] of Object.entries(rest)) {
      if (value === undefined) continue;
      const p = POLICY_BY_NAME.get(name);
      if (p) {
        if (name === 'recentMs') throw fail(ParameterError, "use recent: '7d' (or milliseconds)");
        if (!Number.isSafeInteger(value) || value < 0)
          throw fail(ParameterError, `${name} must be a non-negative integer, not ${String(value)}`);
        policy[p.cell] = BigInt(value);
      } else if (PARAMS_BY_NAME.has(name) && name !== 'simd') {
        smallOptions[name] = value;
      } else {
        throw fail(ParameterError, `unknown Collection.create option '${name}'`);
      }
    }
    if (recent !== undefined) policy[POLICY_BY_NAME.get('recentMs').cell] = BigInt(durationMs(recent, 'recent'));
    if (smallOptions.dim === undefined) throw fail(ParameterError, 'dim is required');
    if (large === null || typeof large !== 'object') throw new TypeError('large must be an options object');
    const largeOptions = { kind: 'ivf', ...large };
    if (largeOptions.dim !== undefined || largeOptions.metric !== undefined)
      throw fail(ParameterError, "large takes the collection's dim and metric");
    const smallCells = indexCells(smallOptions, SMALL_KINDS, 'the collection');
    smallCells[PARAMS_BY_NAME.get('simd').cell] = BigInt(simdCell(simd));
    const largeCells = indexCells(largeOptions, ['ivf', 'hnsw', 'flat'], 'large');
    if (largeOptions.kind === 'ivf' && large.quantizer === undefined)
      largeCells[PARAMS_BY_NAME.get('quantizer').cell] = 2n; // pq, as shoal_collection_params_init
    checkStore(store);
    if ((await store.getRoot()) !== undefined)
      throw fail(StateError, 'the store already holds a collection: use Collection.open({ store })');
    const M = await loadVariant(chooseVariant(simd));
    const scratch = new Scratch(M);
    let handle;
    try {
      const s = scratch.alloc(smallCells.byteLength), l = scratch.alloc(largeCells.byteLength);
      const p = scratch.alloc(policy.byteLength), msg = scratch.alloc(MSG_SIZE), out = scratch.alloc(4);
      new BigUint64Array(M.HEAPU8.buffer, s, smallCells.length).set(smallCells);
      new BigUint64Array(M.HEAPU8.buffer, l, largeCells.length).set(largeCells);
      new BigInt64Array(M.HEAPU8.buffer, p, policy.length).set(policy);
      M.HEAPU8[msg] = 0;
      const rc = M._shoal_js_collection_new(s, l, p, policy.length, msg, MSG_SIZE, out);
      if (rc < 0) throw errorFromCode(rc, M.UTF8ToString(msg) || 'creating a collection');
      handle = M.HEAPU32[out >>> 2];
    } finally {
      scratch.release();
    }
    const c = new Collection(Collection.#token, M, handle, store);
    await c.#enqueue(async () => {
      await c.#takeWriter();
      c.#writable();
      await c.#commit(false);
    });
    return c;
  }

  /**
   * Opens the collection a store holds (its root), replaying its log.
   * Options: store (required); root (a version's CID instead of the store's
   * root); lazy: true fetches only what searches need (segment nodes,
   * tombstones, the heads of IVF segments, then the lists each search
   * probes) -- for stores that fetch over a network; simd.
   */
  static async open(options) {
    if (options === null || typeof options !== 'object')
      throw new TypeError('Collection.open needs an options object: { store } or { source, root }');
    checkOptions(options, ['store', 'source', 'name', 'simd', 'lazy', 'root'], 'Collection.open');
    const { source, name } = options;
    let store = options.store ?? (source ? memoryStore() : undefined);
    checkStore(store);
    if (source) {
      if (typeof source.get !== 'function') throw new TypeError('a source needs an async get(cid) method');
      store = cachingStore(store, source);
    }
    const own = await store.getRoot();
    let root = options.root;
    if (root === undefined && name !== undefined) {
      if (typeof source?.resolve !== 'function') throw fail(ParameterError, 'opening by name needs a source that resolves names');
      root = await source.resolve(name);
    }
    root ??= own;
    if (root === undefined) throw fail(NotFoundError, 'the store holds no collection (no root)');
    const M = await loadVariant(chooseVariant(options.simd));
    const handle = await openHandle(M, store, root, options.simd);
    const c = new Collection(Collection.#token, M, handle, store);
    c.#lazy = options.lazy ?? !!source;
    c.#source = source ?? null;
    try {
      await c.#enqueue(async () => {
        await c.#fetch(c.#lazy ? WANT_LAZY : WANT_ALL);
        c.#cid = root;
        c.#manifest = await store.get(root);
        // Fetched whole from a source: the local store now holds the version.
        if (source && !c.#lazy && own === undefined) await store.setRoot(root);
        await c.#takeWriter();
        // The store's log holds writes made after the store's own root.
        if (!c.#readOnly && root === own) await c.#replay();
        await c.#remember();
      });
    } catch (err) {
      c.free();
      throw err;
    }
    return c;
  }

  /**
   * Brings this collection to a version from a source: fetches the remote
   * manifest, then only the blocks the local store lacks (several at a
   * time), each verified, and switches to it -- the store's root last, so an
   * interrupted sync leaves the old version and keeps what it fetched (a
   * repeat fetches only the rest).  options: root or name (resolved by the
   * source); force: also move to a version that does not descend from this
   * one, or is older; onProgress({ blocks, bytes }); concurrency (default 8).
   * Needs an empty log (flush first).  Returns { root, fetchedBlocks,
   * fetchedBytes }.
   */
  async sync(source, options = {}) {
    checkOptions(options, ['root', 'name', 'force', 'onProgress', 'concurrency', 'car'], 'sync');
    if (!source || typeof source.get !== 'function') throw new TypeError('sync needs a source with an async get(cid)');
    const { force = false, onProgress, concurrency = 8 } = options;
    return this.#enqueue(async () => {
      this.#writable();
      if (this.#logSize || this.stats().buffered)
        throw fail(StateError, 'this collection has writes that are not flushed: flush before syncing');
      let root = options.root;
      if (root === undefined) {
        if (options.name === undefined) throw fail(ParameterError, 'sync needs a root or a name');
        if (typeof source.resolve !== 'function') throw fail(ParameterError, 'this source does not resolve names');
        root = await source.resolve(options.name);
      }
      // The same version: nothing to do unless it was opened lazily, when
      // sync fetches what stayed remote and the store keeps the whole.
      if (root === this.#cid && !this.#lazy) return { root, fetchedBlocks: 0, fetchedBytes: 0 };
      const store = this.#store.local ?? this.#store;
      let fetchedBlocks = 0, fetchedBytes = 0;
      // car: one request for the whole DAG first (each block verified by the
      // source); blocks it lacks are fetched one by one, extra ones ignored.
      const prefetched = new Map();
      if (options.car && typeof source.getDag === 'function') {
        for (const { cid, bytes } of (await source.getDag(root)) ?? []) prefetched.set(cid, bytes);
      }
      const fetchOne = async (cid) => {
        if (await store.has(cid)) return store.get(cid);
        const bytes = prefetched.get(cid) ?? (await source.get(cid));
        if (bytes === undefined) throw fail(NotFoundError, `${source.name ?? 'the source'} does not have block ${cid}`);
        await store.put(cid, bytes);
        fetchedBlocks++;
        fetchedBytes += bytes.length;
        onProgress?.({ blocks: fetchedBlocks, bytes: fetchedBytes });
        return bytes;
      };
      await fetchOne(root);
      // The remote version must descend from this one (or be forced).
      if (!force) await this.#checkDescends(root, fetchOne);
      const M = this.#M;
      const handle = await openHandle(M, store, root);
      try {
        for (let round = 0; ; round++) {
          const cids = this.#wantsOf(M, handle, WANT_ALL);
          if (!cids.length) break;
          if (round > 64) throw fail(StateError, 'the remote version keeps wanting blocks');
          for (let i = 0; i < cids.length; i += concurrency) {
            const batch = await Promise.all(cids.slice(i, i + concurrency).map(fetchOne));
            const scratch = new Scratch(M);
            try {
              for (const bytes of batch) {
                const data = scratch.alloc(bytes.length);
                M.HEAPU8.set(bytes, data);
                const rc = M._shoal_collection_give(handle, data, bytes.length);
                if (rc < 0) throw errorFromCode(rc, M.UTF8ToString(M._shoal_collection_errmsg(handle) >>> 0));
              }
            } finally {
              scratch.release();
            }
          }
        }
      } catch (err) {
        M._shoal_collection_free(handle);
        throw err;
      }
      await store.setRoot(root);
      const old = this.#handle;
      registry.unregister(this);
      this.#handle = handle;
      registry.register(this, { M, handle }, this);
      M._shoal_collection_free(old);
      this.#cid = root;
      this.#manifest = await store.get(root);
      this.#lazy = false;
      this.#stored.clear();
      await this.#remember();
      return { root, fetchedBlocks, fetchedBytes };
    });
  }

  /**
   * Publishes the current version: every block reachable from its root
   * (its history included, so that pinning the root works anywhere) goes
   * to publisher.publish({ root, blocks, car }) -- blocks an array of
   * { cid, bytes }, car() the same as one CARv1 -- which stores them (and,
   * where configured, points a stable name at the root: IPNS, an S5
   * registry entry).  Flushes first.  Returns what the publisher returns,
   * at least { root }.
   */
  async publish(publisher, options = {}) {
    if (!publisher || typeof publisher.publish !== 'function')
      throw new TypeError('publish needs a publisher with an async publish({ root, blocks, car })');
    checkOptions(options, ['name'], 'publish');
    await this.flush();
    return this.#enqueue(async () => {
      const root = this.#cid;
      const blocks = await dagBlocks((cid) => this.#store.get(cid), root);
      if (!blocks) throw fail(NotFoundError, `the store lacks the root ${root}`);
      const result = await publisher.publish({ root, blocks, car: () => carOf(root, blocks), name: options.name });
      return { root, ...result };
    });
  }

  // The CIDs a core handle wants next.
  #wantsOf(M, handle, want) {
    const scratch = new Scratch(M);
    try {
      const n = M._shoal_js_collection_wants(handle, want, 0, 0, 0, 0, 0, 0, 0);
      if (n < 0) throw errorFromCode(n, M.UTF8ToString(M._shoal_collection_errmsg(handle) >>> 0));
      if (!n) return [];
      const buf = scratch.alloc(n * CID_BYTES);
      M._shoal_js_collection_wants(handle, want, 0, 0, 0, 0, 0, buf, n);
      const out = [];
      for (let i = 0; i < n; i++) out.push(cidText(M, scratch, buf + i * CID_BYTES));
      return out;
    } finally {
      scratch.release();
    }
  }

  // Follows the remote manifest's prev links looking for this version; a
  // remote version that is older (a lower sequence number) or unrelated is
  // refused.
  async #checkDescends(root, fetchOne) {
    if (!this.#cid) return;
    const seqOf = (bytes) => manifestSeq(bytes);
    const mine = seqOf(this.#manifest);
    let at = root;
    for (let steps = 0; at && steps < 10000; steps++) {
      if (at === this.#cid) return;
      const bytes = await fetchOne(at);
      if (seqOf(bytes) < mine)
        throw fail(StateError, `the source's version ${root} is older than this one (sequence ${seqOf(bytes)} < ${mine}): pass force to go back`);
      at = manifestPrev(bytes);
    }
    throw fail(StateError, `the source's version ${root} does not descend from this one (${this.#cid}): pass force to replace it`);
  }

  // The writer lock of stores that have one (IndexedDB: one writing tab);
  // without it the collection is read-only and follows the writer's commits.
  async #takeWriter() {
    if (typeof this.#store.writer !== 'function') return;
    if (await this.#store.writer()) {
      this.#store.announce?.();
      return;
    }
    this.#readOnly = true;
    if (typeof this.#store.watch === 'function')
      this.#unwatch = this.#store.watch((root) => this.#enqueue(() => this.#follow(root)).catch(() => {}));
  }

  // A read-only collection switches to the version another writer committed.
  async #follow(root) {
    if (!this.#handle || root === this.#cid) return;
    const handle = await openHandle(this.#M, this.#store, root);
    const old = this.#handle;
    registry.unregister(this);
    this.#handle = handle;
    registry.register(this, { M: this.#M, handle }, this);
    this.#M._shoal_collection_free(old);
    await this.#fetch(this.#lazy ? WANT_LAZY : WANT_ALL);
    this.#cid = root;
    this.#manifest = await this.#store.get(root);
  }

  // The CIDs of the version's blocks, all in the store now.
  async #remember() {
    this.#call((M, handle, scratch) => {
      const cid = scratch.alloc(CID_BYTES), out = scratch.alloc(8);
      for (let i = 0; M._shoal_js_collection_block(handle, i, cid, out) === 0; i++)
        this.#stored.add(cidText(M, scratch, cid));
    }, true);
  }

  // ------------------------------------------------------------ plumbing

  #live() {
    if (!this.#handle) throw fail(StateError, 'this collection was freed');
    return this.#handle;
  }

  #check(rc) {
    if (rc < 0) throw errorFromCode(rc, this.#M.UTF8ToString(this.#M._shoal_collection_errmsg(this.#handle) >>> 0));
    return rc;
  }

  // Synchronous work in the core with scratch memory; refuses re-entry
  // from a callback (a filter) of a running call unless reading.
  #call(fn, reading = false) {
    const handle = this.#live();
    if (this.#busy && !reading)
      throw fail(StateError, 'this collection is busy: it was called from a callback of one of its own calls');
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

  // Runs fn after every queued write; a failure does not stop the queue.
  #enqueue(fn) {
    const run = this.#queue.then(() => {
      this.#live();
      return fn();
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  // Takes a record the core allocated (pointer, size at out) as a copy.
  #takeBytes(M, handle, out) {
    const ptr = M.HEAPU32[out >>> 2], size = M.HEAPU32[(out + 4) >>> 2];
    try {
      return M.HEAPU8.slice(ptr, ptr + size);
    } finally {
      M._shoal_collection_free_bytes(handle, ptr);
    }
  }

  #writable() {
    if (this.#snapshot) throw fail(StateError, 'a snapshot is read-only');
    if (this.#readOnly)
      throw fail(StateError, 'this collection is read-only: another tab or process holds the writer lock');
  }

  // Appends a log record, then applies it; if applying fails, the log is
  // cut back so that it holds only what the collection holds.
  async #write(record) {
    const before = this.#logSize;
    await this.#store.appendLog(record);
    this.#logSize += record.length;
    let result;
    try {
      result = this.#call((M, handle, scratch) => {
        const data = scratch.alloc(record.length), out = scratch.alloc(6 * 8);
        M.HEAPU8.set(record, data);
        this.#check(M._shoal_js_collection_apply(handle, data, record.length, out));
        return M.HEAPF64.slice(out >>> 3, (out >>> 3) + 6);
      });
    } catch (err) {
      await this.#store.truncateLog(before);
      this.#logSize = before;
      throw err;
    }
    this.#dirty = true;
    // The write is logged and applied: it stands even if storing the
    // version it made due fails (a full disk, an I/O error), so that a
    // rejected write is always one that did not happen.  The version's
    // blocks stay in #unsaved; the next flush stores them or throws.
    if (this.#call((M, handle) => M._shoal_collection_flush_due(handle))) await this.#flushNow(false).catch(() => {});
    return result;
  }

  async #replay() {
    const log = await this.#store.readLog();
    if (!log.length) return;
    const result = this.#call((M, handle, scratch) => {
      const data = scratch.alloc(log.length), out = scratch.alloc(6 * 8);
      M.HEAPU8.set(log, data);
      this.#check(M._shoal_js_collection_apply(handle, data, log.length, out));
      return M.HEAPF64.slice(out >>> 3, (out >>> 3) + 6);
    });
    const [records, , , , validSize, torn] = result;
    if (torn) await this.#store.truncateLog(validSize);
    this.#logSize = validSize;
    if (records) this.#dirty = true;
  }

  // Feeds the core the blocks it wants (for want, or for one query) until
  // it wants none.
  async #fetch(want, query, k, cells, where) {
    for (let round = 0; ; round++) {
      const cids = this.#call((M, handle, scratch) => {
        const n = this.#check(this.#wants(M, handle, scratch, want, query, k, cells, where, 0));
        if (n === 0) return [];
        const buf = scratch.alloc(n * CID_BYTES);
        const got = this.#check(this.#wants(M, handle, scratch, want, query, k, cells, where, buf, n));
        const out = [];
        for (let i = 0; i < Math.min(n, got); i++) out.push(cidText(M, scratch, buf + i * CID_BYTES));
        return out;
      });
      if (cids.length === 0) return;
      if (round > 64) throw fail(StateError, 'the collection keeps wanting blocks');
      const blocks = await Promise.all(cids.map(async (cid) => [cid, await this.#store.get(cid)]));
      for (const [cid, bytes] of blocks) {
        if (!bytes) throw fail(NotFoundError, `the store lacks block ${cid}`);
        this.#call((M, handle, scratch) => {
          const data = scratch.alloc(bytes.length);
          M.HEAPU8.set(bytes, data);
          if (this.#check(M._shoal_collection_give(handle, data, bytes.length)) !== 1)
            throw errorFromCode(-22, `block ${cid} from the store does not hash to its CID`);
        });
      }
    }
  }

  #wants(M, handle, scratch, want, query, k, cells, where, buf, cap = 0) {
    if (!query) return M._shoal_js_collection_wants(handle, want, 0, 0, 0, 0, 0, buf, cap);
    const qp = scratch.alloc(query.length * 4), cp = scratch.alloc(cells.byteLength);
    M.HEAPF32.set(query, qp >>> 2);
    M.HEAPU32.set(cells, cp >>> 2);
    return M._shoal_js_collection_wants(handle, want, qp, query.length, k, cp, where, buf, cap);
  }

  // Seals a version (the buffer is empty) and stores what the store lacks:
  // blocks first, then the root, then an empty log (in one transaction for
  // stores with commit()).  If storing fails, the version's blocks are kept
  // and stored with the next one, whose manifest links this one.
  async #commit(dropHistory) {
    const { root, blocks } = this.#call((M, handle, scratch) => {
      const rootPtr = scratch.alloc(CID_BYTES);
      const n = this.#check(M._shoal_collection_commit(handle, dropHistory ? 1 : 0, rootPtr));
      const list = [];
      const cid = scratch.alloc(CID_BYTES), out = scratch.alloc(8);
      for (let i = 0; i < n; i++) {
        this.#check(M._shoal_js_collection_block(handle, i, cid, out));
        const ptr = M.HEAPU32[out >>> 2], size = M.HEAPU32[(out + 4) >>> 2];
        const text = cidText(M, scratch, cid);
        if (this.#stored.has(text)) continue;
        if (!ptr) throw fail(StateError, `block ${text} is neither in the store nor in memory`);
        list.push({ cid: text, bytes: M.HEAPU8.slice(ptr, ptr + size) });
      }
      return { root: cidText(M, scratch, rootPtr), blocks: list };
    });
    for (const [cid, bytes] of this.#unsaved) if (!blocks.some((b) => b.cid === cid)) blocks.push({ cid, bytes });
    const manifest = blocks.find((b) => b.cid === root)?.bytes;
    try {
      if (typeof this.#store.commit === 'function') {
        await this.#store.commit({ blocks, root });
      } else {
        for (const b of blocks) if (!(await this.#store.has(b.cid))) await this.#store.put(b.cid, b.bytes);
        await this.#store.setRoot(root);
        await this.#store.truncateLog(0);
      }
    } catch (err) {
      for (const b of blocks) this.#unsaved.set(b.cid, b.bytes);
      throw err;
    }
    for (const b of blocks) this.#stored.add(b.cid);
    this.#unsaved.clear();
    this.#logSize = 0;
    this.#cid = root;
    if (manifest) this.#manifest = manifest;
    this.#dirty = false;
  }

  async #flushNow(full) {
    const now = Date.now();
    this.#call((M, handle) => {
      this.#check(M._shoal_collection_flush(handle));
      // Compaction needs every segment whole; a lazy collection skips it.
      if (!this.#lazyCount()) this.#check(M._shoal_js_collection_compact(handle, full ? 1 : 0, now));
    });
    await this.#commit(false);
  }

  #lazyCount() {
    return this.stats().lazy;
  }

  // ------------------------------------------------------------- writes

  /**
   * Adds or replaces records: [{ id, vector, metadata?, time? }].  The
   * newest version of an id wins; within a batch the later one.  All or
   * nothing on bad input.  Returns the number of records written.
   */
  async upsert(records, options = {}) {
    if (!Array.isArray(records)) throw new TypeError('upsert takes an array of { id, vector, metadata, time }');
    checkOptions(options, ['chunk'], 'upsert');
    const chunk = options.chunk === undefined ? records.length : uint32Option(options.chunk, 'chunk');
    const n = records.length;
    if (n === 0) return 0;
    const ids = new Array(n), metadata = new Array(n), times = new Array(n);
    const vectors = new Float32Array(n * this.#dim);
    let anyMeta = false, anyTime = false;
    for (let i = 0; i < n; i++) {
      const r = records[i];
      if (r === null || typeof r !== 'object') throw new TypeError(`records[${i}] is not an object`);
      for (const key of Object.keys(r))
        if (!['id', 'vector', 'metadata', 'time'].includes(key))
          throw fail(ParameterError, `records[${i}] has an unknown field '${key}'`);
      ids[i] = r.id;
      const v = toFloat32(r.vector, `records[${i}].vector`);
      if (v.length !== this.#dim)
        throw fail(DimensionError, `records[${i}].vector has ${v.length} dimensions; the collection has ${this.#dim}`);
      vectors.set(v, i * this.#dim);
      metadata[i] = r.metadata ?? null;
      anyMeta ||= r.metadata !== undefined && r.metadata !== null;
      times[i] = r.time ?? null;
      anyTime ||= r.time !== undefined && r.time !== null;
    }
    return this.#enqueue(async () => {
      this.#writable();
      // Every chunk is encoded (so validated) before the first is applied:
      // bad input anywhere stores nothing.
      const encoded = [];
      for (let from = 0; from < n; from += chunk) {
        const to = Math.min(n, from + chunk), m = to - from;
        encoded.push(this.#call((M, handle, scratch) => {
          const [idBytes, idOffsets] = writeIds(M, scratch, ids.slice(from, to));
          const [meta, metaOffsets] = anyMeta ? writeMetadata(M, scratch, metadata.slice(from, to), m) : [0, 0];
          const timesPtr = anyTime ? writeTimes(M, scratch, times.slice(from, to), m) : 0;
          const timesScratch = anyTime ? scratch.alloc(m * 8) : 0;
          const vecs = scratch.alloc(m * this.#dim * 4), out = scratch.alloc(8);
          M.HEAPF32.set(vectors.subarray(from * this.#dim, to * this.#dim), vecs >>> 2);
          this.#check(M._shoal_js_collection_log_upsert(handle, m, idBytes, idOffsets, vecs, this.#dim,
            meta, metaOffsets, timesPtr, timesScratch, out));
          return this.#takeBytes(M, handle, out);
        }));
      }
      let written = 0;
      for (let i = 0; i < encoded.length; i++) {
        // Between chunks the thread is free: a worker answers searches.
        if (i) await new Promise((resolve) => setTimeout(resolve, 0));
        written += (await this.#write(encoded[i]))[2];
      }
      return written;
    });
  }

  /** Deletes the records with these ids (absent ones are skipped); returns how many were deleted. */
  async delete(ids) {
    if (!Array.isArray(ids)) throw new TypeError('delete takes an array of ids');
    if (ids.length === 0) return 0;
    return this.#enqueue(async () => {
      this.#writable();
      const record = this.#call((M, handle, scratch) => {
        const [idBytes, idOffsets] = writeIds(M, scratch, ids);
        const out = scratch.alloc(8);
        this.#check(M._shoal_js_collection_log_delete(handle, ids.length, idBytes, idOffsets, out));
        return this.#takeBytes(M, handle, out);
      });
      return (await this.#write(record))[3];
    });
  }

  /** Deletes every record (the next version links this one as its previous). */
  async clear() {
    return this.#enqueue(async () => {
      this.#writable();
      const record = this.#call((M, handle, scratch) => {
        const out = scratch.alloc(8);
        this.#check(M._shoal_js_collection_log_clear(handle, out));
        return this.#takeBytes(M, handle, out);
      });
      await this.#write(record);
      await this.#flushNow(false);
    });
  }

  /**
   * Writes the buffer as a segment, runs the tiered compaction the policy
   * asks for, and stores the new version (c.cid): after it, the store holds
   * every record without the log.
   */
  async flush() {
    return this.#enqueue(async () => {
      if (this.#dirty || this.#unsaved.size) await this.#flushNow(false);
    });
  }

  /**
   * Flushes, then merges the segments of each tier into one (dropping
   * replaced and deleted records) and moves records older than `recent` to
   * the large tier.  options.dropHistory: the new version does not link the
   * previous one (so a store may forget the blocks only history needs).
   */
  async compact(options = {}) {
    checkOptions(options, ['dropHistory'], 'compact');
    return this.#enqueue(async () => {
      this.#writable();
      const now = Date.now();
      this.#call((M, handle) => {
        this.#check(M._shoal_collection_flush(handle));
        this.#check(M._shoal_js_collection_compact(handle, 1, now));
      });
      await this.#commit(!!options.dropHistory);
    });
  }

  // -------------------------------------------------------------- reads

  /** The record of id -- { id, vector, metadata, time } -- or undefined. */
  async get(id) {
    await this.#settled();
    await this.#whole();
    return this.#call((M, handle, scratch) => {
      const hit = this.#find(M, handle, scratch, id);
      if (!hit) return undefined;
      return this.#record(M, handle, scratch, hit, id);
    }, true);
  }

  /** Whether a record with this id is stored. */
  async has(id) {
    await this.#settled();
    await this.#whole();
    return this.#call((M, handle, scratch) => this.#find(M, handle, scratch, id) !== undefined, true);
  }

  /** The ids of every record (a snapshot taken when iteration starts). */
  async *ids() {
    await this.#settled();
    await this.#whole();
    const ids = this.#call((M, handle, scratch) => {
      const hit = scratch.alloc(8), idPtr = scratch.alloc(4), out = [];
      M.HEAPU32[hit >>> 2] = 0;
      M.HEAPU32[(hit >>> 2) + 1] = 0;
      while (this.#check(M._shoal_js_collection_next(handle, hit)) === 1) {
        const part = M.HEAPU32[hit >>> 2], label = M.HEAPU32[(hit >>> 2) + 1];
        out.push(this.#idOf(M, handle, idPtr, part, label));
        M.HEAPU32[(hit >>> 2) + 1] = label + 1;
      }
      return out;
    }, true);
    yield* ids;
  }

  [Symbol.asyncIterator]() {
    return this.ids();
  }

  /**
   * The k records closest to query, closest first (ties: the older write
   * first): { ids, distances, metadata }.  query: a vector; an array of
   * vectors (then an array of results, one per query); or { id } to search
   * with a stored record's vector (the record itself left out).  options:
   * filter (an object, { field: value, $or: [...] }; a Set of ids; or a
   * function id => boolean), maxDistance (drop results farther), and the
   * index options ef (hnsw), nprobe, rerank (ivf) for the segments of those
   * kinds.
   */
  async search(query, k, options = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    checkOptions(options, [...SEARCH_PARAMS.map((p) => p.name), 'filter', 'maxDistance'], 'search');
    if (!Number.isInteger(k) || k < 1 || k > LIMITS.k)
      throw fail(ParameterError, `k must be an integer 1..${LIMITS.k}, not ${String(k)}`);
    const { maxDistance } = options;
    if (maxDistance !== undefined && typeof maxDistance !== 'number')
      throw new TypeError('maxDistance must be a number');
    const cells = searchCells(options);
    await this.#settled();
    let self;
    if (query !== null && typeof query === 'object' && !ArrayBuffer.isView(query) && !Array.isArray(query)) {
      checkOptions(query, ['id'], 'search by id');
      const record = await this.get(query.id);
      if (!record) throw fail(NotFoundError, `no record with id '${String(query.id).slice(0, 64)}'`);
      self = query.id;
      query = record.vector;
    }
    const many = Array.isArray(query) && query.length > 0 && typeof query[0] !== 'number';
    const queries = (many ? query : [query]).map((q, i) => {
      const v = toFloat32(q, many ? `query[${i}]` : 'query');
      if (v.length !== this.#dim)
        throw fail(DimensionError, `${many ? `query[${i}]` : 'the query'} has ${v.length} dimensions; the collection has ${this.#dim}`);
      return v;
    });
    const want = self === undefined ? k : Math.min(k + 1, LIMITS.k);
    const results = [];
    for (const q of queries) {
      const where = this.#compileWhere(options.filter);
      try {
        if (this.#lazyCount() && !this.#snapshot) await this.#fetch(WANT_LAZY, q, want, cells, where);
        results.push(this.#searchOne(q, want, cells, where, options.filter, self, k, maxDistance));
      } finally {
        if (where) this.#M._shoal_filter_free(where);
      }
    }
    return many ? results : results[0];
  }

  #compileWhere(filter) {
    if (filter === undefined || filter === null || typeof filter === 'function' || filter instanceof Set) return 0;
    if (typeof filter !== 'object' || Array.isArray(filter))
      throw new TypeError('filter must be a filter object ({ field: value, $or: [...] }), a Set of ids or a function');
    let json;
    try {
      json = JSON.stringify(filter);
    } catch (err) {
      throw fail(ParameterError, `the filter cannot be written as JSON: ${err.message}`);
    }
    const M = this.#M, scratch = new Scratch(M);
    try {
      const bytes = encoder.encode(json);
      const text = scratch.alloc(bytes.length), out = scratch.alloc(4), msg = scratch.alloc(MSG_SIZE);
      M.HEAPU8.set(bytes, text);
      M.HEAPU8[msg] = 0;
      const rc = M._shoal_filter_compile(text, bytes.length, 0, out, msg, MSG_SIZE);
      if (rc < 0) throw errorFromCode(rc, `filter: ${M.UTF8ToString(msg)}`);
      return M.HEAPU32[out >>> 2];
    } finally {
      scratch.release();
    }
  }

  #searchOne(q, want, cells, where, filter, self, k, maxDistance) {
    return this.#call((M, handle, scratch) => {
      const room = Math.min(want, this.size + 1);
      const qp = scratch.alloc(q.length * 4), cp = scratch.alloc(cells.byteLength);
      const hits = scratch.alloc(room * 8), distances = scratch.alloc(room * 4), idPtr = scratch.alloc(4);
      M.HEAPF32.set(q, qp >>> 2);
      M.HEAPU32.set(cells, cp >>> 2);
      let fn = 0, thrown;
      const test = typeof filter === 'function' ? filter : filter instanceof Set ? (id) => filter.has(id) : null;
      if (test) {
        fn = M.addFunction((part, label) => {
          try {
            return test(this.#idOf(M, handle, idPtr, part >>> 0, label >>> 0)) ? 1 : 0;
          } catch (err) {
            thrown ??= err;
            return 0;
          }
        }, 'iii');
      }
      let count;
      try {
        count = this.#check(M._shoal_js_collection_search(handle, qp, q.length, Math.min(want, room), cp, where, fn,
          hits, distances));
      } finally {
        if (fn) M.removeFunction(fn);
      }
      if (thrown) throw thrown;
      const found = Array.from(M.HEAPU32.subarray(hits >>> 2, (hits >>> 2) + 2 * count));
      const dist = M.HEAPF32.slice(distances >>> 2, (distances >>> 2) + count);
      const keep = [];
      for (let i = 0; i < count; i++) {
        const id = this.#idOf(M, handle, idPtr, found[2 * i], found[2 * i + 1]);
        if (id === self) continue;
        if (maxDistance !== undefined && !(dist[i] <= maxDistance)) break;
        if (keep.length < k) keep.push(i);
      }
      const ids = keep.map((i) => this.#idOf(M, handle, idPtr, found[2 * i], found[2 * i + 1]));
      const pairs = keep.flatMap((i) => [found[2 * i], found[2 * i + 1]]);
      return { ids, distances: Float32Array.from(keep.map((i) => dist[i])), metadata: this.#metadataOf(M, handle, scratch, pairs) };
    });
  }

  #find(M, handle, scratch, id) {
    if (typeof id !== 'string') throw new TypeError(`id must be a string, not ${typeof id}`);
    const [idBytes, idOffsets] = writeIds(M, scratch, [id]);
    const hit = scratch.alloc(8);
    const rc = M._shoal_js_collection_find(handle, idBytes, M.HEAPU32[(idOffsets >>> 2) + 1], hit);
    if (rc === NOT_FOUND) return undefined;
    this.#check(rc);
    return [M.HEAPU32[hit >>> 2], M.HEAPU32[(hit >>> 2) + 1]];
  }

  #record(M, handle, scratch, [part, label], id) {
    const out = scratch.alloc(this.#dim * 4);
    this.#check(M._shoal_js_collection_hit_vector(handle, part, label, out));
    const vector = M.HEAPF32.slice(out >>> 2, (out >>> 2) + this.#dim);
    const [metadata] = this.#metadataOf(M, handle, scratch, [part, label]);
    const t = M._shoal_js_collection_hit_time(handle, part, label);
    return { id, vector, metadata, time: Number.isNaN(t) ? undefined : t };
  }

  #idOf(M, handle, idPtr, part, label) {
    const len = M._shoal_js_collection_hit_id(handle, part, label, idPtr);
    if (len < 0) return undefined;
    const at = M.HEAPU32[idPtr >>> 2];
    return decoder.decode(M.HEAPU8.subarray(at, at + len));
  }

  // Metadata of hits given as [part, label, part, label, ...].
  #metadataOf(M, handle, scratch, pairs) {
    const n = pairs.length / 2;
    if (n === 0) return [];
    const hits = scratch.alloc(pairs.length * 4), out = scratch.alloc(8);
    M.HEAPU32.set(pairs, hits >>> 2);
    this.#check(M._shoal_js_collection_hits_json(handle, n, hits, out));
    const ptr = M.HEAPU32[out >>> 2], size = M.HEAPU32[(out + 4) >>> 2];
    try {
      return JSON.parse(decoder.decode(M.HEAPU8.subarray(ptr, ptr + size)));
    } finally {
      M._shoal_collection_free_bytes(handle, ptr);
    }
  }

  async #settled() {
    this.#live();
    await this.#queue;
  }

  // Reads by id need every segment whole.
  async #whole() {
    if (this.#lazyCount()) {
      if (this.#snapshot) throw fail(StateError, 'this snapshot has lazy segments: read by id from the collection');
      await this.#enqueue(() => this.#fetch(WANT_ALL));
    }
  }

  // ------------------------------------------------------------ the rest

  /** Vector length. */
  get dim() {
    this.#live();
    return this.#dim;
  }
  /** 'l2', 'ip' or 'cosine'. */
  get metric() {
    this.#live();
    return this.#metric;
  }
  /** Live records. */
  get size() {
    return this.#M._shoal_collection_size(this.#live()) >>> 0;
  }
  /** The CID of the current version's manifest (text, "bafyrei..."). */
  get cid() {
    this.#live();
    return this.#cid;
  }
  /** The current version's manifest block (canonical DAG-CBOR, docs/FORMAT.md). */
  get manifest() {
    this.#live();
    return this.#manifest && this.#manifest.slice();
  }
  /**
   * A read-only collection of the current segments (after a flush: the
   * committed version), sharing their memory; it stays as it is while this
   * one changes.  Free it (or close it) when done.
   */
  snapshot() {
    return this.#call((M, handle, scratch) => {
      const out = scratch.alloc(4);
      this.#check(M._shoal_collection_snapshot(handle, out));
      const snap = new Collection(Collection.#token, M, M.HEAPU32[out >>> 2], this.#store);
      snap.#readOnly = true;
      snap.#snapshot = true;
      snap.#cid = this.#cid;
      snap.#manifest = this.#manifest;
      return snap;
    }, true);
  }

  /** Whether writes are refused (another tab or process holds the writer lock). */
  get readOnly() {
    this.#live();
    return this.#readOnly;
  }
  /** The store the collection keeps its blocks, root and log in. */
  get store() {
    this.#live();
    return this.#store;
  }

  /** { size, buffered, segments, tombstones, lazy, nextSeq, segmentBytes, memoryBytes } */
  stats() {
    return this.#call((M, handle, scratch) => {
      const out = scratch.alloc(COLLECTION_STATS.length * 8);
      M._shoal_js_collection_stats(handle, out);
      const values = M.HEAPF64.subarray(out >>> 3, (out >>> 3) + COLLECTION_STATS.length);
      const stats = Object.fromEntries(COLLECTION_STATS.map((f, i) => [f.name, values[i]]));
      const fetched = this.#store.fetched?.();
      stats.fetchedBytes = fetched?.fetchedBytes ?? 0;
      stats.fetchedBlocks = fetched?.fetchedBlocks ?? 0;
      return stats;
    }, true);
  }

  /** Releases the core's memory at once (queued writes fail); idempotent. */
  free() {
    if (!this.#handle) return;
    if (this.#busy) throw fail(StateError, 'free() called from a callback of a running call on this collection');
    registry.unregister(this);
    this.#M._shoal_collection_free(this.#handle);
    this.#handle = 0;
  }

  /** Waits for queued writes, then frees.  Unflushed writes stay in the store's log. */
  async close() {
    if (!this.#handle) return;
    await this.#queue;
    this.free();
    this.#unwatch?.();
    if (!this.#snapshot) await this.#store.close?.();
  }

  [DISPOSE]() {
    this.free();
  }

  async [ASYNC_DISPOSE]() {
    await this.close();
  }
}

// The "seq" and "prev" of a manifest block (canonical DAG-CBOR: a map whose
// third key, after "dim" and "seq", is "prev"), read without the core.
function manifestField(bytes, key) {
  const text = new TextEncoder().encode(key);
  for (let i = 0; i + text.length + 1 < bytes.length; i++) {
    if (bytes[i] !== 0x60 + text.length) continue;
    let match = true;
    for (let j = 0; j < text.length && match; j++) match = bytes[i + 1 + j] === text[j];
    if (match) return i + 1 + text.length;
  }
  return -1;
}
function manifestSeq(bytes) {
  const at = manifestField(bytes, 'seq');
  if (at < 0) return 0;
  const info = bytes[at] & 31;
  if (info < 24) return info;
  let v = 0;
  for (let i = 0; i < 1 << (info - 24); i++) v = v * 256 + bytes[at + 1 + i];
  return v;
}
function manifestPrev(bytes) {
  const at = manifestField(bytes, 'prev');
  if (at < 0 || bytes[at] === 0xf6) return null;
  const [link] = linksOf(bytes.subarray(at));
  return link ?? null;
}

// A core handle for the version root in store: the manifest is read and
// checked against its CID first.
async function openHandle(M, store, root, simd) {
  const manifest = await store.get(root);
  if (!manifest) throw fail(NotFoundError, `the store lacks the manifest block ${root}`);
  const scratch = new Scratch(M);
  try {
    const data = scratch.alloc(manifest.length), msg = scratch.alloc(MSG_SIZE), out = scratch.alloc(4);
    M.HEAPU8.set(manifest, data);
    const cid = scratch.alloc(CID_BYTES);
    const want = encoder.encode(root);
    const text = scratch.alloc(want.length);
    M.HEAPU8.set(want, text);
    if (M._shoal_cid_parse(text, want.length, cid) < 0 || !M._shoal_cid_verify(cid, data, manifest.length))
      throw errorFromCode(-22, `the manifest's bytes do not hash to ${root}`);
    M.HEAPU8[msg] = 0;
    const rc = M._shoal_js_collection_open(data, manifest.length, simdCell(simd), msg, MSG_SIZE, out);
    if (rc < 0) throw errorFromCode(rc, M.UTF8ToString(msg) || 'opening a collection');
    return M.HEAPU32[out >>> 2];
  } finally {
    scratch.release();
  }
}

function checkStore(store) {
  for (const m of ['get', 'put', 'has', 'getRoot', 'setRoot', 'readLog', 'appendLog', 'truncateLog'])
    if (!store || typeof store[m] !== 'function')
      throw new TypeError(`a store needs an async ${m}() method (docs/API.md, "Stores")`);
}
