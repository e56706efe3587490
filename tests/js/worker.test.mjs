// worker.test.mjs -- a Collection in a worker: Node worker_threads here,
// a Web Worker in Chromium.  The same methods through workerCollection();
// vectors cross as transferred buffers; a search sent while a long upsert
// runs is answered before it ends, from the last committed version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import {
  Collection, DimensionError, NotFoundError, createGatewayServer, fileStore, workerCollection,
} from '../../js/node.mjs';
import { TestRng } from './data.mjs';
import { withChromium } from './chromium.mjs';

const HOST = fileURLToPath(new URL('../../js/worker-host.mjs', import.meta.url));
const DIM = 32;

test('a collection in a worker thread: same methods, searches during a long upsert', { timeout: 240_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'shoal-worker-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const worker = new Worker(HOST);
  t.after(() => worker.terminate());
  const c = await workerCollection(worker, { create: { dim: DIM, store: { file: dir }, flushRecords: 20000, M: 8, efConstruction: 40 } });
  assert.equal(c.dim, DIM);
  const rng = new TestRng(5);
  const rows = (from, n) => Array.from({ length: n }, (_, i) => ({ id: `w${from + i}`, vector: rng.fill(new Float32Array(DIM)), metadata: { i: from + i } }));
  const first = rows(0, 500);
  assert.equal(await c.upsert(first), 500);
  await c.flush();
  const committed = c.cid;
  const probe = await c.search(first[7].vector, 3);
  assert.equal(probe.ids[0], 'w7');
  assert.ok(probe.distances instanceof Float32Array);

  // A long upsert; searches sent meanwhile come back before it finishes.
  const events = [];
  const big = c.upsert(rows(500, 12000)).then((n) => { events.push('upsert'); return n; });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const during = [];
  for (let i = 0; i < 3; i++) {
    during.push(c.search(first[i].vector, 1).then((r) => { events.push('search'); return r; }));
    during.push(c.stats().then((s) => { events.push('stats'); return s; }));
  }
  const results = await Promise.all(during);
  assert.equal(await big, 12000);
  assert.deepEqual(events.slice(0, 6).sort(), ['search', 'search', 'search', 'stats', 'stats', 'stats'],
    `reads answered while the upsert ran: ${events.join(' ')}`);
  for (let i = 0; i < 3; i++) assert.equal(results[2 * i].ids[0], `w${i}`);
  assert.equal(results[1].size, 500, 'answered from the last committed version');
  assert.equal((await c.stats()).size, 12500);

  // Errors cross as the same classes.
  await assert.rejects(c.upsert([{ id: 'bad', vector: [1, 2] }]), DimensionError);
  await assert.rejects(c.search({ id: 'nope' }, 3), NotFoundError);
  assert.deepEqual((await c.get('w3')).metadata, { i: 3 });
  assert.equal(await c.has('w12499'), true);
  await c.flush();
  assert.notEqual(c.cid, committed);
  await c.close();

  // What the worker wrote opens in this thread.
  const here = await Collection.open({ store: await fileStore(dir) });
  assert.equal(here.size, 12500);
  await here.close();
});

test('a worker opens a remote collection from gateways and syncs it, with progress', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'shoal-worker-src-'));
  const into = await mkdtemp(path.join(tmpdir(), 'shoal-worker-dst-'));
  t.after(() => Promise.all([rm(dir, { recursive: true, force: true }), rm(into, { recursive: true, force: true })]));
  const rng = new TestRng(9);
  const rows = Array.from({ length: 3000 }, (_, i) => ({ id: `r${i}`, vector: rng.fill(new Float32Array(DIM)), metadata: { i } }));
  const c = await Collection.create({ dim: DIM, store: await fileStore(dir), flushRecords: 1000, M: 8, efConstruction: 40 });
  await c.upsert(rows);
  await c.flush();
  const server = await createGatewayServer({ dir });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }));
  const url = `http://127.0.0.1:${server.address().port}`;
  const worker = new Worker(HOST);
  t.after(() => worker.terminate());

  // Lazily, from a gateway (and one that refuses connections: skipped).
  const remote = await workerCollection(worker, { open: { source: { gateways: ['http://127.0.0.1:9', url], timeout: 5000 }, root: c.cid } });
  assert.equal(remote.size, 3000);
  assert.deepEqual(await remote.search(rows[42].vector, 5), await c.search(rows[42].vector, 5));
  await remote.close();

  // Synced into the worker's own file store, progress reported here.
  const worker2 = new Worker(HOST);
  t.after(() => worker2.terminate());
  const local = await workerCollection(worker2, { create: { dim: DIM, store: { file: into } } });
  const progress = [];
  const done = await local.sync({ gateways: [url] }, { root: c.cid, force: true, onProgress: (p) => progress.push(p) });
  assert.equal(done.root, c.cid);
  assert.equal(local.cid, c.cid);
  assert.ok(progress.length >= 2 && progress.at(-1).blocks === done.fetchedBlocks, `progress ${JSON.stringify(progress.at(-1))}`);
  assert.equal(progress.at(-1).bytes, done.fetchedBytes);
  await assert.rejects(local.sync({ gateways: [] }, { root: c.cid }), /a worker source is/);
  await local.close();
  const here = await Collection.open({ store: await fileStore(into) });
  assert.equal(here.size, 3000);
  assert.deepEqual(await here.search(rows[7].vector, 3), await c.search(rows[7].vector, 3));
  await here.close();
  await c.close();
});

test('a collection in a Web Worker in Chromium', { timeout: 120_000 }, (t) => withChromium(t, async (page, origin, problems) => {
  await page.goto(`${origin}/tests/js/browser/idb.html`);
  await page.waitForFunction(() => window.ready === true);
  const out = await page.evaluate(async () => {
    const { workerCollection } = window.shoal;
    const worker = new Worker('/js/worker-host.mjs', { type: 'module' });
    const c = await workerCollection(worker, { create: { dim: 16, store: { indexedDB: 'in-worker' } } });
    await c.upsert(Array.from({ length: 300 }, (_, i) => ({ id: `v${i}`, vector: window.vec(i, 16) })));
    await c.flush();
    const r = await c.search(window.vec(42, 16), 2);
    const info = { top: r.ids[0], size: (await c.stats()).size, cid: c.cid };
    await c.close();
    worker.terminate();
    // The worker's IndexedDB is the page's: open it here.
    const { Collection, indexedDBStore } = window.shoal;
    const here = await Collection.open({ store: await indexedDBStore('in-worker') });
    info.here = here.size;
    info.sameCid = here.cid === info.cid;
    await here.close();
    return info;
  });
  assert.deepEqual(out, { top: 'v42', size: 300, cid: out.cid, here: 300, sameCid: true });
  assert.deepEqual(problems, []);
}));
