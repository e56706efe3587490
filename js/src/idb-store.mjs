// idb-store.mjs -- a collection in IndexedDB (browsers, web workers).
//
// One database per store, three object stores: `blocks` (bytes by CID),
// `meta` (the root), `log` (one entry per log record, in order).
//
// Durability, which is what "resolves" means here: a write resolves when its
// transaction completes, requested with durability 'strict' (flushed to
// disk before completion, where the browser supports the hint).  A commit is
// ONE transaction -- the new blocks, the root that names them, the emptied
// log -- so a crash or a closed tab leaves the previous version or the new
// one, never a root without its blocks.  A full quota aborts the
// transaction (QuotaExceededError): a StorageFullError, nothing written.
//
// Several tabs: writer() takes a Web Lock named after the database, held
// while the collection is open; a collection that cannot take it opens
// read-only and follows the writer's commits, announced on a
// BroadcastChannel of the same name (watch()).

import { ShoalError, StateError, StorageFullError } from '../dist/errors.mjs';
import { fail } from './fail.mjs';

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

// The error a failed transaction rejects with: StorageFullError for a full
// quota, else an Error naming the step, the browser's error as its cause.
function storageError(err, what) {
  if (err instanceof ShoalError || err instanceof TypeError || err?.step) return err;
  if (err && (err.name === 'QuotaExceededError' || /quota/i.test(err.message ?? '')))
    return Object.assign(fail(StorageFullError, `${what}: ${err.message}`), { cause: err });
  const out = err
    ? new Error(`${what}: ${err.name ?? 'Error'}: ${err.message}`, { cause: err })
    : new Error(`${what}: the transaction was aborted`);
  out.step = what;
  return out;
}

class IndexedDBStore {
  #db;
  #name;
  #channel = null;
  #release = null;

  constructor(db, name) {
    this.#db = db;
    this.#name = name;
  }

  get name() {
    return this.#name;
  }

  // Runs fn(stores) in one transaction; resolves when it completes.
  #tx(names, mode, fn, what) {
    return new Promise((resolve, reject) => {
      let tx, result;
      try {
        tx = this.#db.transaction(names, mode, mode === 'readwrite' ? { durability: 'strict' } : undefined);
      } catch (err) {
        reject(storageError(err, what));
        return;
      }
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(storageError(tx.error, what));
      tx.onabort = () => reject(storageError(tx.error, what));
      const failed = (err) => {
        try { tx.abort(); } catch { /* already finished */ }
        reject(storageError(err, what));
      };
      let out;
      try {
        // (called now, not in a later microtask: the transaction is active)
        out = fn(Object.fromEntries(names.map((n) => [n, tx.objectStore(n)])));
      } catch (err) {
        failed(err);
        return;
      }
      Promise.resolve(out).then((r) => { result = r; }, failed);
    });
  }

  async get(cid) {
    const bytes = await this.#tx(['blocks'], 'readonly', ({ blocks }) => request(blocks.get(cid)), 'reading a block');
    return bytes === undefined ? undefined : new Uint8Array(bytes);
  }

  async has(cid) {
    const n = await this.#tx(['blocks'], 'readonly', ({ blocks }) => request(blocks.count(cid)), 'reading a block');
    return n > 0;
  }

  async put(cid, bytes) {
    await this.#tx(['blocks'], 'readwrite', ({ blocks }) => { blocks.put(Uint8Array.from(bytes), cid); },
      `writing block ${cid}`);
  }

  async getRoot() {
    return this.#tx(['meta'], 'readonly', ({ meta }) => request(meta.get('root')), 'reading the root');
  }

  async setRoot(cid) {
    await this.#tx(['meta'], 'readwrite', ({ meta }) => { meta.put(cid, 'root'); }, 'writing the root');
    this.#channel?.postMessage({ root: cid });
  }

  /** The new blocks, the root and the emptied log in one transaction. */
  async commit({ blocks, root }) {
    await this.#tx(['blocks', 'meta', 'log'], 'readwrite', async (s) => {
      for (const { cid, bytes } of blocks) s.blocks.put(Uint8Array.from(bytes), cid);
      s.meta.put(root, 'root');
      s.log.clear();
    }, 'committing a version');
    this.#channel?.postMessage({ root });
  }

  async readLog() {
    const parts = await this.#tx(['log'], 'readonly', ({ log }) => request(log.getAll()), 'reading the log');
    const size = parts.reduce((n, p) => n + p.byteLength, 0);
    const out = new Uint8Array(size);
    let at = 0;
    for (const p of parts) {
      out.set(new Uint8Array(p), at);
      at += p.byteLength;
    }
    return out;
  }

  async appendLog(bytes) {
    await this.#tx(['log'], 'readwrite', ({ log }) => { log.add(Uint8Array.from(bytes)); }, 'appending to the log');
  }

  // Keeps the first size bytes: whole entries, and a prefix of the one the
  // cut falls in (the collection cuts at record boundaries).
  async truncateLog(size) {
    await this.#tx(['log'], 'readwrite', ({ log }) => new Promise((resolve, reject) => {
      let at = 0;
      const req = log.openCursor();
      req.onerror = () => reject(req.error);
      req.onsuccess = () => {
        const cursor = req.result;
        if (!cursor) return resolve();
        const entry = new Uint8Array(cursor.value);
        if (at >= size) cursor.delete();
        else if (at + entry.length > size) cursor.update(entry.slice(0, size - at));
        at += entry.length;
        cursor.continue();
      };
    }), 'cutting the log');
  }

  /** Takes the writer lock (Web Locks): true, or false if another tab holds it. */
  async writer() {
    const locks = globalThis.navigator?.locks;
    if (!locks) return true; // (no Web Locks, e.g. Node with fake-indexeddb: one writer by contract)
    if (this.#release) return true;
    return new Promise((resolve, reject) => {
      locks.request(`shoal:${this.#name}`, { ifAvailable: true }, (lock) => {
        if (!lock) {
          resolve(false);
          return undefined;
        }
        resolve(true);
        return new Promise((release) => { this.#release = release; });
      }).catch(reject);
    });
  }

  /** Calls fn(root) when another tab commits a new version. */
  watch(fn) {
    if (typeof BroadcastChannel !== 'function') return () => {};
    const channel = new BroadcastChannel(`shoal:${this.#name}`);
    channel.onmessage = (event) => {
      if (event.data && typeof event.data.root === 'string') fn(event.data.root);
    };
    return () => channel.close();
  }

  async close() {
    this.#release?.();
    this.#release = null;
    this.#channel?.close();
    this.#channel = null;
    this.#db.close();
  }

  // The channel this tab announces its commits on.
  announce() {
    if (typeof BroadcastChannel === 'function' && !this.#channel)
      this.#channel = new BroadcastChannel(`shoal:${this.#name}`);
  }
}

/**
 * A store in the IndexedDB database `name` (created if missing).
 * options.indexedDB: the factory to use (default globalThis.indexedDB).
 */
export async function indexedDBStore(name = 'shoal', { indexedDB = globalThis.indexedDB } = {}) {
  if (!indexedDB) throw fail(StateError, 'indexedDBStore needs IndexedDB (a browser or web worker)');
  if (typeof name !== 'string' || !name) throw new TypeError('indexedDBStore needs a database name');
  const open = indexedDB.open(`shoal:${name}`, 1);
  open.onupgradeneeded = () => {
    const db = open.result;
    db.createObjectStore('blocks');
    db.createObjectStore('meta');
    db.createObjectStore('log', { autoIncrement: true });
  };
  let db;
  try {
    db = await request(open);
  } catch (err) {
    throw storageError(err, `opening IndexedDB database ${name}`);
  }
  return new IndexedDBStore(db, name);
}
