// idb.test.mjs -- collections in IndexedDB in real Chromium:
//   - a collection survives a page reload, committed versions and the log;
//   - two tabs: one writer (Web Lock), the other read-only and following
//     the writer's commits;
//   - a quota that runs out is a StorageFullError and what was
//     acknowledged stays;
//   - a page closed in the middle of a commit leaves a collection that
//     opens, at the version before or after.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { withChromium } from './chromium.mjs';

const DIM = 16;

async function open(page, origin) {
  await page.goto(`${origin}/tests/js/browser/idb.html`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 30_000 });
}

test('a collection in IndexedDB survives a reload', { timeout: 120_000 }, (t) => withChromium(t, async (page, origin, problems) => {
  await open(page, origin);
  const before = await page.evaluate(async (dim) => {
    const { Collection, indexedDBStore } = window.shoal;
    const c = await Collection.create({ dim, store: await indexedDBStore('reload'), flushRecords: 200 });
    const rows = (from, n) => Array.from({ length: n }, (_, i) => ({ id: `r${from + i}`, vector: window.vec(from + i, dim), metadata: { i: from + i } }));
    await c.upsert(rows(0, 450));  // flushed
    await c.upsert(rows(450, 40)); // the log only
    await c.delete(['r7']);
    const r = await c.search(window.vec(3, dim), 5);
    const out = { size: c.size, cid: c.cid, ids: r.ids, distances: [...r.distances], segments: c.stats().segments };
    await c.close();
    return out;
  }, DIM);
  assert.equal(before.size, 489);
  assert.ok(before.segments >= 1);
  await page.reload();
  await page.waitForFunction(() => window.ready === true);
  const after = await page.evaluate(async (dim) => {
    const { Collection, indexedDBStore } = window.shoal;
    const c = await Collection.open({ store: await indexedDBStore('reload') });
    const r = await c.search(window.vec(3, dim), 5);
    const out = { size: c.size, cid: c.cid, ids: r.ids, distances: [...r.distances], has7: await c.has('r7'),
      late: (await c.get('r489'))?.metadata };
    await c.close();
    return out;
  }, DIM);
  for (const key of ['size', 'cid', 'ids', 'distances']) assert.deepEqual(after[key], before[key], key);
  assert.equal(after.has7, false);
  assert.deepEqual(after.late, { i: 489 });
  assert.deepEqual(problems, []);
}));

test('two tabs: one writer, the other read-only and following its commits', { timeout: 120_000 }, (t) => withChromium(t, async (page, origin, problems, context) => {
  await open(page, origin);
  const second = await context.newPage();
  await open(second, origin);
  await page.evaluate(async (dim) => {
    const { Collection, indexedDBStore } = window.shoal;
    window.c = await Collection.create({ dim, store: await indexedDBStore('tabs'), flushRecords: 100 });
    await window.c.upsert(Array.from({ length: 120 }, (_, i) => ({ id: `a${i}`, vector: window.vec(i, dim) })));
  }, DIM);
  const reader = await second.evaluate(async (dim) => {
    const { Collection, indexedDBStore, StateError } = window.shoal;
    window.c = await Collection.open({ store: await indexedDBStore('tabs') });
    let refused = false;
    try {
      await window.c.upsert([{ id: 'x', vector: window.vec(1, dim) }]);
    } catch (err) {
      refused = err instanceof StateError;
    }
    return { readOnly: window.c.readOnly, size: window.c.size, refused, cid: window.c.cid };
  }, DIM);
  assert.equal(reader.readOnly, true);
  assert.equal(reader.refused, true);
  assert.equal(reader.size, 120);
  const writerCid = await page.evaluate(async (dim) => {
    await window.c.upsert(Array.from({ length: 100 }, (_, i) => ({ id: `b${i}`, vector: window.vec(1000 + i, dim) })));
    await window.c.flush();
    return window.c.cid;
  }, DIM);
  assert.notEqual(writerCid, reader.cid);
  await second.waitForFunction((cid) => window.c.cid === cid, writerCid, { timeout: 20_000 });
  const seen = await second.evaluate(async (dim) => ({ size: window.c.size, top: (await window.c.search(window.vec(1005, dim), 1)).ids[0] }), DIM);
  assert.deepEqual(seen, { size: 220, top: 'b5' });
  await second.evaluate(() => window.c.close());
  await page.evaluate(() => window.c.close());
  assert.deepEqual(problems, []);
}));

test('a full quota is a StorageFullError and acknowledged writes stay', { timeout: 120_000 }, (t) => withChromium(t, async (page, origin, problems) => {
  await open(page, origin);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 3 * 1024 * 1024 });
  const result = await page.evaluate(async () => {
    const { Collection, indexedDBStore, StorageFullError } = window.shoal;
    const dim = 128;
    const c = await Collection.create({ dim, store: await indexedDBStore('quota'), flushRecords: 500 });
    let acked = 0, error = null;
    for (let b = 0; b < 200 && !error; b++) {
      try {
        await c.upsert(Array.from({ length: 100 }, (_, i) => ({ id: `q${b * 100 + i}`, vector: window.vec(b * 100 + i, dim) })));
        acked = (b + 1) * 100;
      } catch (err) {
        error = { name: err.name, full: err instanceof StorageFullError, message: err.message };
      }
    }
    const size = c.size;
    c.free();
    return { acked, error, size };
  });
  assert.ok(result.error?.full, `expected a StorageFullError, got ${JSON.stringify(result.error)}`);
  assert.ok(result.acked >= 500, 'a few batches fit');
  await cdp.send('Storage.overrideQuotaForOrigin', { origin });
  await page.reload();
  await page.waitForFunction(() => window.ready === true);
  const back = await page.evaluate(async (acked) => {
    const { Collection, indexedDBStore } = window.shoal;
    const c = await Collection.open({ store: await indexedDBStore('quota') });
    let missing = 0;
    for (let i = 0; i < acked; i += 97) if (!(await c.has(`q${i}`))) missing++;
    const out = { size: c.size, missing };
    await c.close();
    return out;
  }, result.acked);
  assert.equal(back.missing, 0);
  assert.ok(back.size >= result.acked);
  assert.deepEqual(problems.filter((p) => !/QuotaExceeded/.test(p)), []);
}));

test('a page closed in the middle of a commit leaves a collection that opens', { timeout: 120_000 }, (t) => withChromium(t, async (page, origin, problems, context) => {
  for (let round = 0; round < 3; round++) {
    const tab = await context.newPage();
    await open(tab, origin);
    await tab.evaluate(async ({ dim, round }) => {
      const { Collection, indexedDBStore } = window.shoal;
      const store = await indexedDBStore('closing');
      const c = (await store.getRoot()) ? await Collection.open({ store }) : await Collection.create({ dim, store, flushRecords: 3000 });
      // A big batch whose flush commits a segment of several MB; not awaited.
      window.pending = c.upsert(Array.from({ length: 3000 }, (_, i) => ({ id: `c${round}-${i}`, vector: window.vec(i + round * 10000, dim) })));
    }, { dim: 256, round });
    await tab.waitForTimeout(50 + round * 150);
    await tab.close();
  }
  await open(page, origin);
  const state = await page.evaluate(async () => {
    const { Collection, indexedDBStore } = window.shoal;
    const c = await Collection.open({ store: await indexedDBStore('closing') });
    const ids = [];
    for await (const id of c) ids.push(id);
    const out = { size: c.size, ids: ids.length, search: (await c.search(window.vec(5, 256), 3)).ids.length };
    await c.close();
    return out;
  });
  assert.equal(state.size, state.ids);
  assert.equal(state.size % 3000, 0, 'whole batches only');
  assert.deepEqual(problems, []);
}));
