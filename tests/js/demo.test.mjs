// The demo (make demo), end to end in headless Chromium: demo/server.mjs
// builds a Fashion-MNIST collection with the native CLI (cached under
// build/demo/), serves it from two loopback gateways and a third whose
// blocks come over bitswap from a Helia node it published them to, keeps a
// name for the root, and serves the page;
// the page is driven like a user and checked through window.demoState,
// never by looking at pixels.  Screenshots go to build/demo-test/.
//
// DEMO_TEST_N (default 12000: 10,000 records for the IVF-PQ tier, the least
// the core builds IVF from, and 2,000 for the HNSW tier) sets the size;
// DEMO_TEST_SCREENSHOT=path also writes the synced-search screenshot there
// (the README's docs/demo.png comes from a 60k run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { withChromium } from './chromium.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OUT = path.join(ROOT, 'build/demo-test');
const N = process.env.DEMO_TEST_N ?? '12000';

// Starts the demo server; resolves with its URL and a stop function.
async function startDemo(t) {
  for (const need of ['build/shoal', 'js/dist/shoal-simd.wasm'])
    if (!existsSync(path.join(ROOT, need))) throw new Error(`${need} is missing: run make cli wasm (make test builds them)`);
  if (!existsSync('/usr/share/datasets/fashion-mnist'))
    throw new Error('/usr/share/datasets/fashion-mnist is missing: apt-get install -y dataset-fashion-mnist (tools/deps.sh test installs it)');
  const child = spawn(process.execPath, [path.join(ROOT, 'demo/server.mjs')], {
    // The mirrors 400 ms behind A, so that on a loaded machine A still
    // answers first and its corrupt blocks are seen rejected.
    env: { ...process.env, DEMO_N: N, PORT: '0', DEMO_FALLBACK_MS: '400' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /Shoal demo: (http:\/\/127\.0\.0\.1:\d+\/demo\/)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`demo server exited (${code}):\n${err}`)));
  });
  t.diagnostic(err.trim().split('\n').filter((l) => /built in|root/.test(l)).join(' | '));
  return { url, stop: () => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); }) };
}

test('the demo: opened by name, lazy search, filter, sync (through Helia too), offline reload, writes, two tabs, a tampering gateway', { timeout: 300_000 }, async (t) => {
  const started = Date.now();
  const demo = await startDemo(t);
  t.after(demo.stop);
  await mkdir(OUT, { recursive: true });
  const figures = { n: Number(N) };

  await withChromium(t, async (page, _origin, problems, context) => {
    const state = (p = page) => p.evaluate(() => JSON.parse(JSON.stringify(window.demoState)));
    // Runs fn (clicks), then waits until the page finished at least one
    // more action and is idle.
    const act = async (fn, p = page, timeout = 60_000) => {
      const before = await p.evaluate(() => window.demoState?.ops ?? 0);
      await fn();
      await p.waitForFunction((n) => window.demoState.ops > n && window.demoState.busy === 0, before, { timeout });
      return state(p);
    };
    const ready = (p = page) => p.waitForFunction(() => window.demoState?.phase === 'ready' &&
      window.demoState.busy === 0 && window.demoState.ops > 0, null, { timeout: 60_000 });
    const shot = (name, p = page) => p.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
    const noErrors = (s) => assert.deepEqual(s.errors, [], 'the page showed an error');
    const pick = (i, p = page) => act(() => p.click(`#gallery canvas[data-index="${i}"]`), p);

    // ---- lazy: the first query runs by itself once the page is ready
    await page.goto(demo.url);
    await ready();
    let s = await state();
    noErrors(s);
    assert.equal(s.lazyAvailable, true);
    assert.equal(s.synced, false);
    assert.match(s.root, /^bafyrei[a-z2-7]{52}$/);
    // Opened by the server's name, which resolved to the published root.
    assert.deepEqual(s.opened, { name: 'fashion-mnist', root: s.root });
    assert.equal(await page.textContent('#opened'), `opened by name fashion-mnist -> ${s.root}`);
    assert.deepEqual(s.gateways.map((g) => g.name), ['A', 'B', 'C']);
    assert.match(s.gateways[2].helia.peerId, /^12D3Koo/);
    assert.deepEqual(s.segments.map((x) => `${x.kind}/${x.tier}`), ['ivf/large', 'hnsw/small']);
    assert.equal(s.lastQuery.mode, 'lazy');
    assert.equal(s.lastQuery.results.length, 10);
    assert.ok(s.timings.lazyOpenBytes > 0, 'the lazy open fetched the manifest, the HNSW segment and the IVF head');
    figures.lazy = { openMs: s.timings.lazyOpenMs, openBytes: s.timings.lazyOpenBytes, firstResultMs: s.timings.firstResultMs,
      firstQuery: { latencyMs: s.lastQuery.latencyMs, fetchedBytes: s.lastQuery.fetchedBytes } };
    // A second query probes other lists: it fetches some, never everything.
    s = await pick(7);
    assert.equal(s.lastQuery.results.length, 10);
    figures.lazy.secondQuery = { latencyMs: s.lastQuery.latencyMs, fetchedBytes: s.lastQuery.fetchedBytes };
    // The same query again: every block it needs is cached.
    s = await pick(7);
    assert.equal(s.lastQuery.fetchedBytes, 0);
    figures.lazy.repeat = { latencyMs: s.lastQuery.latencyMs, fetchedBytes: 0 };

    // ---- a filter built in the UI narrows the results to one category
    s = await act(() => page.evaluate(() => {
      for (const box of document.querySelectorAll('#categories input')) box.checked = box.value === 'Trouser';
      document.querySelector('#categories').dispatchEvent(new Event('change'));
    }));
    assert.deepEqual(s.lastQuery.filter, { category: { $in: ['Trouser'] } });
    assert.equal(s.lastQuery.results.length, 10);
    assert.ok(s.lastQuery.results.every((r) => r.category === 'Trouser'), JSON.stringify(s.lastQuery.results));
    s = await act(() => page.click('#all')); // not all were on: all again
    assert.equal(s.lastQuery.filter, undefined);

    // ---- sync into IndexedDB
    s = await act(() => page.click('#sync'), page, 120_000);
    noErrors(s);
    assert.equal(s.synced, true);
    assert.equal(s.mode, 'synced');
    assert.equal(s.sync.done, true);
    assert.equal(s.sync.percent, 100);
    assert.ok(s.sync.verified > 0 && s.sync.verified === s.sync.blocks);
    assert.ok(s.sync.blocks <= s.sync.totalBlocks, `${s.sync.blocks} blocks of ${s.sync.totalBlocks}`);
    assert.equal(s.local.cid, s.root);
    assert.equal(s.local.size, Number(N));
    figures.sync = { ms: s.sync.ms, blocks: s.sync.blocks, bytes: s.sync.bytes, totalBytes: s.sync.totalBytes, exactMs: s.timings.exactMs };
    // Gateway C answered from its Helia node, which got blocks over bitswap
    // from the node they were published to; heliaSource verified each (a
    // block that fails its hash is a failure, not a count).
    const c = s.gateways.find((g) => g.name === 'C');
    assert.ok(c.requests > 0, 'the page asked gateway C');
    assert.ok(c.helia.bitswapBlocks > 0 && c.helia.bitswapBytes > 0, JSON.stringify(c.helia));
    assert.ok(c.helia.bitswapBlocks <= s.sync.totalBlocks, JSON.stringify(c.helia));
    assert.equal(c.helia.failures, 0, JSON.stringify(c.helia));
    figures.helia = { afterSync: { requests: c.requests, ...c.helia, pageBytes: c.pageBytes } };
    delete figures.helia.afterSync.addrs;
    // Synced search = lazy search, for the same query and options.
    s = await act(() => page.click('#compare'));
    assert.equal(s.compare.same, true, JSON.stringify(s.compare));
    assert.equal(s.compare.synced.fetchedBytes, 0);
    assert.ok(s.compare.synced.recall >= 0.8, `recall ${s.compare.synced.recall}`);
    figures.synced = { latencyMs: s.compare.synced.latencyMs, recall: s.compare.synced.recall, lazyLatencyMs: s.compare.lazy.latencyMs };
    await shot('1-synced');
    if (process.env.DEMO_TEST_SCREENSHOT) await copyFile(path.join(OUT, '1-synced.png'), process.env.DEMO_TEST_SCREENSHOT);

    // ---- add a test image, delete a result; both survive a reload
    s = await pick(5);
    s = await act(() => page.click('#add'));
    noErrors(s);
    const added = s.lastAdded;
    assert.equal(s.lastQuery.results[0].id, added);
    assert.equal(s.lastQuery.results[0].distance, 0);
    assert.equal(s.local.buffered, 1);
    const victim = s.lastQuery.results[1].id;
    s = await act(() => page.click(`#results .del[data-id="${victim}"]`));
    assert.ok(!s.lastQuery.results.some((r) => r.id === victim));
    assert.equal(s.local.size, Number(N));  // one in, one out
    await page.reload();
    await ready();
    s = await pick(5);
    assert.equal(s.synced, true);
    assert.equal(s.local.readOnly, false, 'the reloaded tab is the writer again');
    assert.equal(s.lastQuery.results[0].id, added);
    assert.ok(!s.lastQuery.results.some((r) => r.id === victim));

    // ---- a second tab reads the same IndexedDB and follows the writer
    const page2 = await context.newPage();
    page2.on('pageerror', (err) => problems.push(`tab 2 pageerror: ${err.message}`));
    await page2.goto(demo.url);
    await ready(page2);
    let s2 = await state(page2);
    assert.equal(s2.local.readOnly, true);
    s = await act(() => page.click('#flush'));
    assert.notEqual(s.local.cid, s.root);
    assert.equal(s.local.buffered, 0);
    // The local copy moved on; the name still points at the published root.
    assert.deepEqual(s.opened, { name: 'fashion-mnist', root: s.root });
    await page2.waitForFunction((cid) => window.demoState.local?.cid === cid && window.demoState.busy === 0, s.local.cid, { timeout: 30_000 });
    s2 = await pick(5, page2);
    assert.equal(s2.lastQuery.results[0].id, added);
    assert.ok(!s2.lastQuery.results.some((r) => r.id === victim));
    await shot('2-second-tab', page2);
    await page2.close();

    // ---- gateways stopped: a reload still searches everything synced
    s = await act(() => page.click('#stop'));
    assert.ok(s.gateways.every((g) => !g.running));
    await page.reload();
    await ready();
    s = await state();
    assert.equal(s.lazyAvailable, false);
    assert.equal(s.mode, 'synced');
    s = await pick(5);
    assert.equal(s.lastQuery.results.length, 10);
    assert.equal(s.lastQuery.results[0].id, added);
    await shot('3-offline');

    // ---- gateway A corrupts every block: rejected, served by B instead
    s = await act(() => page.click('#stop')); // start them again
    assert.equal(s.lazyAvailable, true);
    s = await act(() => page.click('#tamper'));
    assert.equal(s.gateways[0].tamper, true);
    s = await act(() => page.click('#mode-lazy'));
    s = await pick(11);
    noErrors(s);
    assert.equal(s.lastQuery.mode, 'lazy');
    assert.equal(s.lastQuery.results.length, 10);
    assert.ok(s.rejected.length > 0, 'the page lists the rejected blocks');
    assert.ok(s.rejected.every((r) => r.gateway === 'A' && /do not hash/.test(r.message)), JSON.stringify(s.rejected[0]));
    // Reopened by name after the switch; with A lying, the mirrors B and
    // C (Helia) answer this page.
    assert.deepEqual(s.opened, { name: 'fashion-mnist', root: s.root });
    const cTamper = s.gateways.find((g) => g.name === 'C');
    assert.ok(s.gateways.some((g) => g.name !== 'A' && g.pageBytes > 0), JSON.stringify(s.gateways));
    figures.helia.tamper = { pageBytes: cTamper.pageBytes, bitswapBlocks: cTamper.helia.bitswapBlocks, localBlocks: cTamper.helia.localBlocks };
    figures.tamper = { rejected: s.rejected.length, latencyMs: s.lastQuery.latencyMs };
    await shot('4-tampered');
    assert.deepEqual(problems.filter((p) => /pageerror/.test(p)), []);
  });
  figures.testMs = Date.now() - started;
  await writeFile(path.join(OUT, `figures-${N}.json`), JSON.stringify(figures, null, 1));
  t.diagnostic(JSON.stringify(figures));
});
