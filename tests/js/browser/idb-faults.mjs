// idb-faults.mjs -- IndexedDB faults at every step of a commit, run in the
// page by tests/js/faults.test.mjs (imported into tests/js/browser/idb.html).
//
// The page's IDBDatabase.prototype.transaction and the IDBObjectStore
// request methods are wrapped to count each call once armed; at step i the
// transaction is aborted (mode 'abort': transaction() throws UnknownError,
// a request aborts its transaction as a failing disk does) or the quota
// runs out (mode 'quota': QuotaExceededError thrown by transaction() or by
// the request, after aborting).  For each operation and step: the operation
// rejects with a clear error, the collection holds the state before and
// searches it, a copy of the database read into a memory store (what a
// reopen reads) holds the state before or after, whole, and a retry once
// the faults stop gives the state after.  Returns { counts, problems }.

const { Collection, StorageFullError, memoryStore } = window.shoal;

const ctl = { armed: false, failAt: 0, mode: 'abort', calls: [], failed: [] };

function step(name) {
  if (!ctl.armed) return false;
  ctl.calls.push(name);
  if (ctl.calls.length !== ctl.failAt) return false;
  ctl.failed.push(name);
  return true;
}

const injected = (name) => new DOMException(`injected fault at ${ctl.calls.length}`, name);

const realTransaction = IDBDatabase.prototype.transaction;
IDBDatabase.prototype.transaction = function transaction(names, mode, options) {
  if (step(`transaction ${[].concat(names).join('+')} ${mode ?? 'readonly'}`))
    throw injected(ctl.mode === 'quota' ? 'QuotaExceededError' : 'UnknownError');
  return realTransaction.call(this, names, mode, options);
};
for (const method of ['put', 'add', 'delete', 'clear', 'get', 'getAll', 'count', 'openCursor']) {
  const real = IDBObjectStore.prototype[method];
  IDBObjectStore.prototype[method] = function request(...args) {
    const req = real.apply(this, args);
    if (step(`${method} ${this.name}`)) {
      this.transaction.abort();
      if (ctl.mode === 'quota') throw injected('QuotaExceededError');
    }
    return req;
  };
}

// ------------------------------------------------------- raw database copies

const STORES = ['blocks', 'meta', 'log'];

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function openRaw(name) {
  const r = indexedDB.open(`shoal:${name}`, 1);
  r.onupgradeneeded = () => {
    r.result.createObjectStore('blocks');
    r.result.createObjectStore('meta');
    r.result.createObjectStore('log', { autoIncrement: true });
  };
  return req(r);
}

// Every key and value of the database `name`.
async function readRaw(name) {
  const db = await openRaw(name);
  const tx = db.transaction(STORES, 'readonly');
  const out = {};
  for (const s of STORES) {
    const store = tx.objectStore(s);
    const [keys, values] = await Promise.all([req(store.getAllKeys()), req(store.getAll())]);
    out[s] = keys.map((k, i) => [k, values[i]]);
  }
  db.close();
  return out;
}

async function writeRaw(name, data) {
  await req(indexedDB.deleteDatabase(`shoal:${name}`));
  const db = await openRaw(name);
  const tx = db.transaction(STORES, 'readwrite');
  for (const s of STORES) for (const [k, v] of data[s]) tx.objectStore(s).put(v, k);
  await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onabort = () => reject(tx.error); });
  db.close();
}

// What reopening the database would find, opened from a memory copy (the
// writer still holds the database's Web Lock).
async function reopenCopy(name) {
  const data = await readRaw(name);
  const store = memoryStore();
  for (const [cid, bytes] of data.blocks) await store.put(cid, new Uint8Array(bytes));
  const root = data.meta.find(([k]) => k === 'root')?.[1];
  if (root) await store.setRoot(root);
  for (const [, bytes] of data.log) await store.appendLog(new Uint8Array(bytes));
  return Collection.open({ store });
}

// ------------------------------------------------------------------ model

const DIM = 8;
const vectorOf = (seed) => window.vec(seed, DIM);
const rows = (from, n, prefix = 'r') =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${from + i}`, vector: vectorOf(from + i), metadata: { s: from + i } }));

function modelOf(...batches) {
  const m = new Map();
  for (const batch of batches) for (const r of batch) m.set(r.id, r.metadata.s);
  return m;
}

async function holds(c, model) {
  if (c.size !== model.size) return false;
  for (const [id, seed] of model) {
    const got = await c.get(id);
    const want = vectorOf(seed);
    if (!got || !got.vector.every((x, i) => x === want[i])) return false;
  }
  return true;
}

async function searchesLike(c, model) {
  const query = vectorOf(999_999);
  const d = (seed) => vectorOf(seed).reduce((s, x, i) => s + (x - query[i]) ** 2, 0);
  const want = [...model].map(([id, seed]) => [id, d(seed)]).sort((a, b) => a[1] - b[1]).slice(0, 5).map(([id]) => id);
  const { ids } = await c.search(query, 5);
  return ids.join() === want.join();
}

const POLICY = { kind: 'flat', flushRecords: 40, mergeFactor: 8 };
const SCENARIOS = [
  {
    name: 'upsert',
    async setup(c) { await c.upsert(rows(0, 45)); await c.upsert(rows(100, 5, 'b')); return [rows(0, 45), rows(100, 5, 'b')]; },
    op: (c) => c.upsert(rows(200, 3, 'n')),
    after: (b) => [...b, rows(200, 3, 'n')],
  },
  {
    name: 'upsert making a flush due',
    async setup(c) { await c.upsert(rows(0, 45)); await c.upsert(rows(100, 20, 'b')); return [rows(0, 45), rows(100, 20, 'b')]; },
    op: (c) => c.upsert(rows(200, 30, 'n')),
    after: (b) => [...b, rows(200, 30, 'n')],
    mayResolve: true,
  },
  {
    name: 'flush',
    async setup(c) { await c.upsert(rows(0, 45)); await c.upsert(rows(100, 20, 'b')); return [rows(0, 45), rows(100, 20, 'b')]; },
    op: (c) => c.flush(),
    after: (b) => b,
  },
  {
    name: 'compact',
    async setup(c) {
      await c.upsert(rows(0, 45));
      await c.upsert(rows(100, 45, 'b'));
      await c.upsert(rows(0, 10));
      await c.upsert(rows(300, 6, 'c'));
      return [rows(0, 45), rows(100, 45, 'b'), rows(300, 6, 'c')];
    },
    op: (c) => c.compact(),
    after: (b) => b,
  },
];

export async function runFaults({ keep = 'faults-last' } = {}) {
  const { indexedDBStore } = window.shoal;
  const counts = {}, problems = [];
  const check = (ok, what) => { if (!ok) problems.push(what); };
  for (const sc of SCENARIOS) {
    const made = await Collection.create({ dim: DIM, store: await indexedDBStore('faults-base'), ...POLICY });
    const batches = await sc.setup(made);
    await made.close();
    const base = await readRaw('faults-base');
    await req(indexedDB.deleteDatabase('shoal:faults-base'));
    const before = modelOf(...batches), after = modelOf(...sc.after(batches));

    const start = async (name) => {
      await writeRaw(name, base);
      const c = await Collection.open({ store: await indexedDBStore(name) });
      return { c, root: c.cid };
    };
    let { c, root } = await start('faults-count');
    Object.assign(ctl, { armed: true, failAt: 0, calls: [], failed: [] });
    await sc.op(c);
    ctl.armed = false;
    const calls = ctl.calls.slice();
    check(await holds(c, after), `${sc.name}: the counting run`);
    await c.close();
    await req(indexedDB.deleteDatabase('shoal:faults-count'));
    counts[sc.name] = calls;

    for (const mode of ['abort', 'quota']) {
      for (let i = 1; i <= calls.length; i++) {
        const what = `${sc.name}, ${mode} at step ${i} (${calls[i - 1]})`;
        const name = `faults-${i}`;
        ({ c, root } = await start(name));
        Object.assign(ctl, { armed: true, failAt: i, mode, calls: [], failed: [] });
        let error = null;
        await sc.op(c).catch((err) => { error = err; });
        ctl.armed = false;
        check(ctl.calls[i - 1] === calls[i - 1], `${what}: the same steps as the counting run (${ctl.calls[i - 1]})`);
        check(ctl.failed.length === 1, `${what}: the fault was hit`);
        const resolved = error === null;
        if (resolved) {
          check(sc.mayResolve, `${what}: resolved despite the fault`);
        } else if (mode === 'quota') {
          check(error instanceof StorageFullError, `${what}: ${error}`);
        } else {
          check(typeof error.step === 'string' && error.message.startsWith(`${error.step}: `),
            `${what}: the message names the step: ${error.message}`);
        }
        const now = resolved ? after : before;
        check(await holds(c, now), `${what}: the collection holds the state ${resolved ? 'after' : 'before'}`);
        check(await searchesLike(c, now), `${what}: searches`);
        if (!resolved) check(c.cid === root, `${what}: the version is the previous one`);
        const seen = await reopenCopy(name);
        const isBefore = await holds(seen, before), isAfter = await holds(seen, after);
        check(isBefore || isAfter, `${what}: a reopen finds the state before or after`);
        if (resolved) check(isAfter, `${what}: a reopen finds the acknowledged write`);
        seen.free();
        await sc.op(c);
        check(await holds(c, after), `${what}: the retry gives the state after`);
        await c.close();
        const again = await reopenCopy(name);
        check(await holds(again, after), `${what}: the retry reopens`);
        again.free();
        await req(indexedDB.deleteDatabase(`shoal:${name}`));
      }
    }
  }
  // The last scenario's state after, kept for a reopen after a reload.
  const last = SCENARIOS[SCENARIOS.length - 1];
  await writeRaw(keep, await (async () => {
    const c = await Collection.create({ dim: DIM, store: await indexedDBStore('faults-base'), ...POLICY });
    await last.setup(c);
    Object.assign(ctl, { armed: true, failAt: 1, mode: 'abort', calls: [], failed: [] });
    await last.op(c).catch(() => {});
    ctl.armed = false;
    await last.op(c);
    await c.close();
    const data = await readRaw('faults-base');
    await req(indexedDB.deleteDatabase('shoal:faults-base'));
    return data;
  })());
  return { counts, problems, keptSize: modelOf(...last.after(await last.setup({ upsert: async () => {} }))).size };
}
