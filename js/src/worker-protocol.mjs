// worker-protocol.mjs -- a Collection in a Web Worker or a Node worker
// thread, and its proxy on the other side.  The same methods, all async.
//
// Messages: {id, op, args} from the page (or main thread) to the worker;
// {id, ok: true, value} or {id, ok: false, error: {name, code, message}}
// back.  Vectors travel as one Float32Array per call whose buffer is
// transferred (not copied) each way.  Stores cannot cross a thread, so the
// worker makes its own from a description: { memory: true }, { file: dir }
// or { indexedDB: name }; sources likewise from { gateways: [urls],
// timeout?, retries? } (several gateways: anySource of gatewaySources).
// sync posts {id, progress} messages before its answer.
//
// While a long write runs in the worker (an upsert is applied in chunks,
// with the thread free between them), searches and reads are answered from
// a snapshot of the last committed version rather than waiting for it.

import { ParameterError, errorFromCode, errorsByCode } from '../dist/errors.mjs';
import { fail } from './fail.mjs';

const METHODS = ['upsert', 'delete', 'clear', 'flush', 'compact', 'get', 'has', 'ids', 'search', 'stats',
  'close', 'info', 'sync'];
const READS = new Set(['get', 'has', 'ids', 'search', 'stats', 'info']);
const CHUNK = 1000;

// ------------------------------------------------------------------ worker

/**
 * Serves collections over a message port: `post(message, transfer)` sends,
 * and the returned function handles each incoming message.  shoal is the
 * package entry the worker imported (node.mjs or browser.mjs).
 */
export function serve(shoal, post) {
  let c = null, snap = null, writing = 0;

  const storeOf = async (spec = { memory: true }) => {
    if (spec.memory) return shoal.memoryStore();
    if (typeof spec.file === 'string') return shoal.fileStore(spec.file);
    if (typeof spec.indexedDB === 'string') return shoal.indexedDBStore(spec.indexedDB);
    throw fail(ParameterError, 'a worker store is { memory: true }, { file: dir } or { indexedDB: name }');
  };
  const sourceOf = (spec) => {
    if (spec === undefined) return undefined;
    const urls = spec?.gateways;
    if (!Array.isArray(urls) || !urls.length || !urls.every((u) => typeof u === 'string'))
      throw fail(ParameterError, 'a worker source is { gateways: [url, ...], timeout?, retries? }');
    const { gateways, ...options } = spec;
    const list = gateways.map((url) => shoal.gatewaySource(url, options));
    return list.length === 1 ? list[0] : shoal.anySource(list);
  };
  const refresh = () => {
    if (!c) return;
    if (snap && snap.cid === c.cid) return;
    snap?.free();
    snap = c.snapshot();
  };
  const reader = () => (writing && snap ? snap : c);

  const ops = {
    async create(options) {
      const { store, ...rest } = options;
      c = await shoal.Collection.create({ ...rest, store: await storeOf(store) });
      refresh();
      return ops.info();
    },
    async open(options) {
      const { store, source, ...rest } = options;
      const src = sourceOf(source);
      // From a source without a store description: an in-memory cache.
      const local = store === undefined && src ? undefined : await storeOf(store);
      c = await shoal.Collection.open({ ...rest, ...(src ? { source: src } : {}), ...(local ? { store: local } : {}) });
      refresh();
      return ops.info();
    },
    info() {
      return { dim: c.dim, metric: c.metric, size: c.size, cid: c.cid, readOnly: c.readOnly };
    },
    async upsert({ ids, vectors, metadata, times }) {
      const dim = c.dim;
      const records = ids.map((id, i) => ({
        id, vector: vectors.subarray(i * dim, (i + 1) * dim),
        ...(metadata ? { metadata: metadata[i] } : {}), ...(times ? { time: times[i] } : {}),
      }));
      return c.upsert(records, { chunk: CHUNK });
    },
    delete: (ids) => c.delete(ids),
    clear: () => c.clear(),
    flush: () => c.flush(),
    compact: (options) => c.compact(options),
    async sync({ source, root, name, force, car, concurrency }, id) {
      const options = { force, car, concurrency, onProgress: (progress) => post({ id, progress }) };
      if (root !== undefined) options.root = root;
      if (name !== undefined) options.name = name;
      for (const key of Object.keys(options)) if (options[key] === undefined) delete options[key];
      return c.sync(sourceOf(source), options);
    },
    get: (id) => reader().get(id),
    has: (id) => reader().has(id),
    async ids() {
      const out = [];
      for await (const id of reader().ids()) out.push(id);
      return out;
    },
    search: ({ query, k, options }) => reader().search(query, k, options),
    stats: () => reader().stats(),
    async close() {
      snap?.free();
      snap = null;
      await c?.close();
      c = null;
    },
  };

  return async function onMessage(message) {
    const { id, op, args } = message;
    const isWrite = !READS.has(op) && op !== 'create' && op !== 'open';
    if (isWrite) writing++;
    try {
      if (!ops[op]) throw fail(ParameterError, `unknown operation '${op}'`);
      if (!c && op !== 'create' && op !== 'open') throw fail(ParameterError, 'create or open a collection first');
      const value = await ops[op](args, id);
      const transfer = [];
      if (value && value.distances instanceof Float32Array) transfer.push(value.distances.buffer);
      if (Array.isArray(value)) for (const r of value) if (r?.distances instanceof Float32Array) transfer.push(r.distances.buffer);
      if (value && value.vector instanceof Float32Array) transfer.push(value.vector.buffer);
      post({ id, ok: true, value }, transfer);
    } catch (err) {
      post({ id, ok: false, error: { name: err?.name, code: err?.code, message: err?.message ?? String(err) } });
    } finally {
      if (isWrite) {
        writing--;
        try {
          refresh();
        } catch {
          /* freed */
        }
      }
    }
  };
}

// ------------------------------------------------------------------- proxy

function revive(error) {
  if (typeof error.code === 'number' && errorsByCode.has(error.code)) {
    const prefix = `${errorsByCode.get(error.code)[2]}: `;
    const detail = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
    return errorFromCode(error.code, detail);
  }
  const Class = { TypeError, RangeError }[error.name] ?? Error;
  return new Class(error.message);
}

/** The page's side: the Collection methods, each a message to the worker. */
export class RemoteCollection {
  #send;
  #info;
  #progress;

  constructor(send, info, progress) {
    this.#send = send;
    this.#info = info;
    this.#progress = progress;
  }

  get dim() { return this.#info.dim; }
  get metric() { return this.#info.metric; }
  /** As of the last call that returned (the worker's count moves on). */
  get size() { return this.#info.size; }
  get cid() { return this.#info.cid; }
  get readOnly() { return this.#info.readOnly; }

  async #call(op, args, transfer) {
    const value = await this.#send(op, args, transfer);
    if (op !== 'close' && op !== 'info') this.#info = await this.#send('info');
    return value;
  }

  async upsert(records) {
    if (!Array.isArray(records)) throw new TypeError('upsert takes an array of { id, vector, metadata, time }');
    const dim = this.#info.dim;
    const vectors = new Float32Array(records.length * dim);
    const ids = [], metadata = [], times = [];
    let anyMeta = false, anyTime = false;
    records.forEach((r, i) => {
      if (r === null || typeof r !== 'object') throw new TypeError(`records[${i}] is not an object`);
      if (!r.vector || r.vector.length !== dim)
        throw errorFromCode(-3, `records[${i}].vector has ${r.vector?.length} dimensions; the collection has ${dim}`);
      vectors.set(r.vector, i * dim);
      ids.push(r.id);
      metadata.push(r.metadata ?? null);
      times.push(r.time instanceof Date ? r.time.getTime() : r.time ?? null);
      anyMeta ||= r.metadata != null;
      anyTime ||= r.time != null;
    });
    return this.#call('upsert', { ids, vectors, metadata: anyMeta ? metadata : undefined, times: anyTime ? times : undefined },
      [vectors.buffer]);
  }
  delete(ids) { return this.#call('delete', ids); }
  clear() { return this.#call('clear'); }
  flush() { return this.#call('flush'); }
  compact(options = {}) { return this.#call('compact', options); }
  /** source: { gateways: [urls], timeout?, retries? } (sources are made in the worker). */
  sync(source, options = {}) {
    if (typeof options.onProgress === 'function' && this.#progress) this.#progress.fn = options.onProgress;
    const rest = { ...options };
    delete rest.onProgress;
    return this.#call('sync', { source, ...rest }).finally(() => { if (this.#progress) this.#progress.fn = null; });
  }
  get(id) { return this.#send('get', id); }
  has(id) { return this.#send('has', id); }
  async *ids() { yield* await this.#send('ids'); }
  [Symbol.asyncIterator]() { return this.ids(); }
  search(query, k, options = {}) {
    if (typeof options.filter === 'function')
      throw new TypeError('a filter function cannot cross to a worker: use a filter object or a Set of ids');
    const copy = ArrayBuffer.isView(query) ? Float32Array.from(query) : query;
    return this.#send('search', { query: copy, k, options }, copy instanceof Float32Array ? [copy.buffer] : []);
  }
  stats() { return this.#send('stats'); }
  close() { return this.#send('close'); }
}

/**
 * Connects to a worker running shoal's worker entry (worker-host.mjs) and
 * creates or opens a collection there.  port: a Worker (web) or a
 * worker_threads Worker (Node).  how: { create: options } or { open:
 * options }, with `store` a description: { memory: true }, { file: dir },
 * { indexedDB: name }.
 */
export async function workerCollection(port, how) {
  let next = 0;
  const waiting = new Map();
  const progress = { fn: null }; // the onProgress of the sync under way
  const onMessage = (event) => {
    const data = event && 'data' in event && event.data?.id !== undefined ? event.data : event;
    const entry = waiting.get(data.id);
    if (!entry) return;
    if (data.progress !== undefined) {
      progress.fn?.(data.progress);
      return;
    }
    waiting.delete(data.id);
    if (data.ok) entry.resolve(data.value);
    else entry.reject(revive(data.error));
  };
  if (typeof port.on === 'function') port.on('message', onMessage);
  else port.addEventListener('message', onMessage);
  port.start?.();
  const send = (op, args, transfer = []) => new Promise((resolve, reject) => {
    const id = next++;
    waiting.set(id, { resolve, reject });
    port.postMessage({ id, op, args }, transfer);
  });
  const [kind] = Object.keys(how ?? {});
  if ((kind !== 'create' && kind !== 'open') || Object.keys(how).length !== 1)
    throw fail(ParameterError, "workerCollection(worker, { create: options } or { open: options })");
  const info = await send(kind, how[kind]);
  return new RemoteCollection(send, info, progress);
}

export { METHODS };
