// faults.test.mjs -- I/O faults at every step of a commit, in both stores.
//
// File store (real files in a temporary folder): the store's calls go
// through faultyFs, a pass-through over node:fs/promises that counts every
// call (open, FileHandle write/writeFile/sync/datasync/truncate/stat/close,
// rename, unlink, stat, readFile, mkdir) once armed.  An operation (upsert,
// an upsert that makes a flush due, flush, compact) is run once to count its
// calls, then once per call i = 1..count on a fresh copy of the same folder
// with call i failing: EIO, ENOSPC, and EIO from call i on ("sticky": a disk
// gone bad until the faults stop).  A failing write writes half its bytes
// first, as a short write does.  Each time:
//   - the operation rejects with StorageFullError (ENOSPC) or an error that
//     keeps the system code and names the step in its message -- or, for an
//     upsert whose write was logged before the automatic flush failed,
//     resolves (the write stands; the flush is retried later);
//   - the collection in memory holds the state before (rejected) or after
//     (resolved), answers searches, and a retry once the faults stop
//     succeeds and reopens as the state after;
//   - a copy of the folder taken right after the failure, opened with the
//     real fs, holds the state before or the state after, whole, with every
//     acknowledged write; no temporary file is left behind.
// Also: log appends made of short writes, then a full disk; two stores
// opened at once on one folder (one gets the lock).
//
// IndexedDB (real Chromium; fake-indexeddb is not installed here): the page
// patches IDBDatabase.prototype.transaction and the IDBObjectStore request
// methods to count each transaction and request, then aborts the
// transaction at the i-th one (or makes transaction() throw, for the first
// step); tests/js/browser/idb-faults.mjs checks the same properties, with a
// copy of the database read into a memory store standing for the reopen,
// and the page is reloaded at the end to open the real database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { Collection, StorageFullError, fileStore } from '../../js/node.mjs';
import { TestRng } from './data.mjs';
import { withChromium } from './chromium.mjs';

const DIM = 8;

// ------------------------------------------------------------ faulty fs

const ERRNO = { EIO: -5, ENOSPC: -28 };

/**
 * node:fs/promises with every call counted while armed, and call failAt
 * (sticky: every call from failAt on) failing with errno.
 */
function faultyFs() {
  const ctl = { armed: false, failAt: 0, sticky: false, short: false, errno: 'EIO', calls: [], failed: [] };
  const fault = (kind, file) => {
    if (!ctl.armed) return null;
    ctl.calls.push(`${kind} ${path.basename(String(file)).replace(/\.tmp-\d+-\d+$/, '.tmp')}`);
    const n = ctl.calls.length;
    if (!ctl.failAt || !(n === ctl.failAt || (ctl.sticky && n > ctl.failAt))) return null;
    ctl.failed.push(ctl.calls[n - 1]);
    const err = new Error(`${ctl.errno}: injected fault, ${kind} '${file}'`);
    return Object.assign(err, { code: ctl.errno, errno: ERRNO[ctl.errno], syscall: kind, path: String(file) });
  };
  const half = (data) => {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    return bytes.subarray(0, bytes.length >> 1);
  };
  const handle = (real, file) => ({
    // ctl.short: every write stores half of what it is given (at least a
    // byte), as write(2) may on a filling disk.
    async write(data, offset = 0, length = data.length - offset) {
      const err = fault('write', file);
      if (err) {
        await real.write(data, offset, length >> 1);
        throw err;
      }
      return real.write(data, offset, ctl.short ? Math.max(1, length >> 1) : length);
    },
    async writeFile(data) {
      const err = fault('writeFile', file);
      if (err) {
        await real.write(half(data));
        throw err;
      }
      return real.writeFile(data);
    },
    async sync() {
      const err = fault('fsync', file);
      if (err) throw err;
      return real.sync();
    },
    async datasync() {
      const err = fault('fdatasync', file);
      if (err) throw err;
      return real.datasync();
    },
    async truncate(size) {
      const err = fault('ftruncate', file);
      if (err) throw err;
      return real.truncate(size);
    },
    async stat() {
      const err = fault('fstat', file);
      if (err) throw err;
      return real.stat();
    },
    async close() {
      const err = fault('close', file); // the descriptor is released either way, as close(2) does
      await real.close();
      if (err) throw err;
    },
  });
  const fs = {
    async open(file, flags) {
      const err = fault(`open(${flags})`, file);
      if (err) throw err;
      return handle(await fsp.open(file, flags), file);
    },
    async mkdir(dir, options) {
      const err = fault('mkdir', dir);
      if (err) throw err;
      return fsp.mkdir(dir, options);
    },
    async readFile(file, options) {
      const err = fault('readFile', file);
      if (err) throw err;
      return fsp.readFile(file, options);
    },
    async rename(from, to) {
      const err = fault('rename', to);
      if (err) throw err;
      return fsp.rename(from, to);
    },
    async stat(file) {
      const err = fault('stat', file);
      if (err) throw err;
      return fsp.stat(file);
    },
    async unlink(file) {
      const err = fault('unlink', file);
      if (err) throw err;
      return fsp.unlink(file);
    },
  };
  return { fs, ctl };
}

// ------------------------------------------------------------ the model

const vectorOf = (seed) => new TestRng(seed).fill(new Float32Array(DIM));
const rows = (from, n, prefix = 'r') =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${from + i}`, vector: vectorOf(from + i), metadata: { s: from + i } }));

// id -> seed of the records a state holds.
function modelOf(...batches) {
  const m = new Map();
  for (const batch of batches) for (const r of batch) m.set(r.id, r.metadata.s);
  return m;
}

// Whether collection c holds exactly model (every id, each vector).
async function holds(c, model) {
  if (c.size !== model.size) return false;
  for (const [id, seed] of model) {
    const got = await c.get(id);
    if (!got || !got.vector.every((x, i) => x === vectorOf(seed)[i])) return false;
  }
  return true;
}

// The exact nearest ids of the model (flat kind: the collection is exact).
function nearest(model, query, k) {
  const d = (seed) => vectorOf(seed).reduce((s, x, i) => s + (x - query[i]) ** 2, 0);
  return [...model].map(([id, seed]) => [id, d(seed)]).sort((a, b) => a[1] - b[1]).slice(0, k).map(([id]) => id);
}

async function searchesLike(c, model) {
  const query = vectorOf(999_999);
  const { ids } = await c.search(query, 5);
  assert.deepEqual(ids, nearest(model, query, 5), 'searches answer the state held');
}

async function tempDir(t, name) {
  const dir = await fsp.mkdtemp(path.join(tmpdir(), `shoal-faults-${name}-`));
  t.after(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function tmpFilesIn(dir) {
  const names = [...await fsp.readdir(dir), ...(await fsp.readdir(path.join(dir, 'blocks'))).map((n) => `blocks/${n}`)];
  return names.filter((n) => n.includes('.tmp-'));
}

// A copy of the folder as it is now, opened with the real fs: what a
// process starting now would find.
async function reopenCopy(dir, into) {
  await fsp.rm(into, { recursive: true, force: true });
  await fsp.cp(dir, into, { recursive: true });
  await fsp.rm(path.join(into, 'lock'), { force: true });
  return Collection.open({ store: await fileStore(into) });
}

// ---------------------------------------------------------- the scenarios

// Each: a folder made once (base), the records it holds (before), the
// operation and what it makes (after).  flushRecords 40: an upsert of 30
// over 20 buffered records makes a flush due.
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
      await c.upsert(rows(0, 10)); // replaces: tombstones for compaction to drop
      await c.upsert(rows(300, 6, 'c')); // in the log
      return [rows(0, 45), rows(100, 45, 'b'), rows(300, 6, 'c')];
    },
    op: (c) => c.compact(),
    after: (b) => b,
  },
];

const MODES = [
  { errno: 'EIO', sticky: false },
  { errno: 'ENOSPC', sticky: false },
  { errno: 'EIO', sticky: true },
];

test('file store: a fault at every I/O call of upsert, flush and compact', { timeout: 600_000 }, async (t) => {
  const work = await tempDir(t, 'file');
  const summary = [];
  for (const sc of SCENARIOS) {
    const base = path.join(work, 'base');
    await fsp.rm(base, { recursive: true, force: true });
    const made = await Collection.create({ dim: DIM, store: await fileStore(base), ...POLICY });
    const beforeBatches = await sc.setup(made);
    await made.close();
    const before = modelOf(...beforeBatches), after = modelOf(...sc.after(beforeBatches));
    const dir = path.join(work, 'dir'), copy = path.join(work, 'copy');

    // A store on a fresh copy of base through faultyFs, and its collection.
    const start = async () => {
      await fsp.rm(dir, { recursive: true, force: true });
      await fsp.cp(base, dir, { recursive: true });
      const { fs, ctl } = faultyFs();
      const c = await Collection.open({ store: await fileStore(dir, { fs }) });
      const root = c.cid;
      return { c, ctl, root };
    };

    // The calls of the operation, counted with nothing failing.
    let { c, ctl, root } = await start();
    ctl.armed = true;
    await sc.op(c);
    ctl.armed = false;
    const calls = ctl.calls.slice();
    assert.ok(await holds(c, after));
    await c.close();
    const kinds = {};
    for (const call of calls) {
      const kind = call.split(' ')[0].replace(/\(.*\)/, '');
      kinds[kind] = (kinds[kind] ?? 0) + 1;
    }
    summary.push(`${sc.name}: ${calls.length} calls (${Object.entries(kinds).map(([k, n]) => `${k} ${n}`).join(', ')})`);

    for (const mode of MODES) {
      for (let i = 1; i <= calls.length; i++) {
        const what = `${sc.name}, ${mode.errno}${mode.sticky ? ' from' : ' at'} call ${i} (${calls[i - 1]})`;
        ({ c, ctl, root } = await start());
        Object.assign(ctl, { armed: true, failAt: i, errno: mode.errno, sticky: mode.sticky });
        let error = null;
        await sc.op(c).catch((err) => { error = err; });
        ctl.armed = false;
        assert.equal(ctl.calls[i - 1], calls[i - 1], `${what}: the same calls as the counting run`);
        assert.ok(ctl.failed.length >= 1, `${what}: the fault was hit`);
        const resolved = error === null;
        if (!resolved) {
          if (mode.errno === 'ENOSPC') {
            assert.ok(error instanceof StorageFullError, `${what}: ${error}`);
          } else {
            assert.equal(error.code, 'EIO', `${what}: ${error}`);
            assert.ok(typeof error.step === 'string' && error.message.startsWith(`${error.step}: EIO`),
              `${what}: the message names the step: ${error.message}`);
          }
          assert.ok(error.message.includes('injected fault'), `${what}: the cause is kept: ${error.message}`);
        } else {
          // Only a write whose record was logged may stand.
          assert.equal(sc.name, 'upsert making a flush due', `${what}: resolved despite the fault`);
        }
        // In memory: the state before (rejected) or after (resolved), usable.
        const now = resolved ? after : before;
        assert.ok(await holds(c, now), `${what}: the collection holds the state ${resolved ? 'after' : 'before'}`);
        await searchesLike(c, now);
        if (!resolved) assert.equal(c.cid, root, `${what}: the version is the previous one`);
        // On disk now: before or after, whole.
        // (unless removing it failed too)
        if (!ctl.failed.some((call) => call.startsWith('unlink')))
          assert.deepEqual(await tmpFilesIn(dir), [], `${what}: no temporary file is left`);
        const seen = await reopenCopy(dir, copy);
        const isBefore = await holds(seen, before), isAfter = await holds(seen, after);
        assert.ok(isBefore || isAfter, `${what}: a reopen finds the state before or after`);
        if (resolved) assert.ok(isAfter, `${what}: a reopen finds the acknowledged write`);
        await searchesLike(seen, isAfter ? after : before);
        await seen.close();
        // The faults stop: a retry succeeds and is what a reopen finds.
        await sc.op(c);
        if (sc.name !== 'upsert' && sc.name !== 'upsert making a flush due') assert.notEqual(c.cid, root);
        assert.ok(await holds(c, after), `${what}: the retry gives the state after`);
        await c.close();
        const again = await reopenCopy(dir, copy);
        assert.ok(await holds(again, after), `${what}: the retry reopens`);
        await again.close();
      }
    }
  }
  console.log(summary.join('\n'));
});

test('file store: short writes to the log, then a full disk', async (t) => {
  const dir = await tempDir(t, 'short');
  const { fs, ctl } = faultyFs();
  const c = await Collection.create({ dim: DIM, store: await fileStore(dir, { fs }), ...POLICY });
  await c.upsert(rows(0, 45));
  ctl.short = true;
  ctl.armed = true;
  await c.upsert(rows(100, 5, 'b')); // a record of ~300 bytes in ~9 writes
  const writes = ctl.calls.filter((call) => call.startsWith('write ')).length;
  assert.ok(writes > 5, `${writes} short writes`);
  Object.assign(ctl, { calls: [], failAt: 4, errno: 'ENOSPC', sticky: true });
  await assert.rejects(c.upsert(rows(200, 5, 'n')), StorageFullError);
  Object.assign(ctl, { armed: false, failAt: 0 });
  const before = modelOf(rows(0, 45), rows(100, 5, 'b'));
  assert.ok(await holds(c, before));
  const seen = await reopenCopy(dir, path.join(dir, '..', `${path.basename(dir)}-copy`));
  assert.ok(await holds(seen, before), 'every acknowledged write, nothing of the failed one');
  await seen.close();
  await fsp.rm(path.join(dir, '..', `${path.basename(dir)}-copy`), { recursive: true, force: true });
  await c.upsert(rows(200, 5, 'n'));
  await c.close();
  const again = await reopenCopy(dir, path.join(dir, '..', `${path.basename(dir)}-copy`));
  assert.ok(await holds(again, modelOf(rows(0, 45), rows(100, 5, 'b'), rows(200, 5, 'n'))));
  await again.close();
  await fsp.rm(path.join(dir, '..', `${path.basename(dir)}-copy`), { recursive: true, force: true });
});

test('file store: two stores opened at once on one folder, one takes the lock', async (t) => {
  const dir = await tempDir(t, 'lock');
  const got = await Promise.allSettled([fileStore(dir), fileStore(dir)]);
  assert.deepEqual(got.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  for (const r of got) if (r.status === 'fulfilled') await r.value.close();
  await (await fileStore(dir)).close();
});

test('IndexedDB (Chromium): a failed transaction or request at every step of upsert, flush and compact',
  { timeout: 600_000 }, (t) => withChromium(t, async (page, origin, problems) => {
    await page.goto(`${origin}/tests/js/browser/idb.html`);
    await page.waitForFunction(() => window.ready === true, null, { timeout: 30_000 });
    const result = await page.evaluate(async () => (await import('/tests/js/browser/idb-faults.mjs')).runFaults());
    const summary = Object.entries(result.counts).map(([name, steps]) => `${name}: ${steps.length} steps (${steps.join(', ')})`);
      console.log(summary.join('\n'));
    assert.deepEqual(result.problems, []);
    // The real database, reopened after a reload.
    await page.reload();
    await page.waitForFunction(() => window.ready === true);
    const size = await page.evaluate(async () => {
      const { Collection, indexedDBStore } = window.shoal;
      const c = await Collection.open({ store: await indexedDBStore('faults-last') });
      const n = c.size;
      await c.close();
      return n;
    });
    assert.equal(size, result.keptSize);
    assert.deepEqual(problems, []);
  }));
