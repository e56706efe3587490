// The package in headless Chromium (Debian's, through playwright-core) must
// load both wasm variants over HTTP and give the same results as in Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as shoal from '../../js/index.mjs';
import { withChromium } from './chromium.mjs';
import { runWorkload } from './browser/workload.mjs';

test('Chromium loads the package and matches Node', { timeout: 120_000 }, (t) => withChromium(t, async (page, origin, problems) => {
  await page.goto(`${origin}/tests/js/browser/page.html`);
  await page.waitForFunction(() => window.shoalResult !== undefined, null, { timeout: 60_000 });
  const result = await page.evaluate(() => window.shoalResult);
  assert.ok(result.ok, `page failed: ${result.error}\n${problems.join('\n')}`);
  assert.deepEqual(problems, []);

  const browser = result.value;
  assert.equal(browser.simdSupported, true, 'Chromium has WebAssembly SIMD128');
  assert.deepEqual(browser.variants.map((v) => v.info.variant), ['simd', 'base']);
  assert.deepEqual(browser.variants.map((v) => v.runs[0].simd), ['wasm-simd128', 'scalar']);
  assert.equal(browser.variants[0].runs[0].size, 1999);
  // Same wasm, same inputs: identical ids and bit-identical distances.
  assert.deepEqual(browser, await runWorkload(shoal));
}));

// The demo page, driven like a user: build (auto-run from URL presets), then
// save, load and a tampered load.  Small data, so it takes a few seconds.
test('the demo page builds, searches, saves, loads and rejects tampered bytes', { timeout: 60_000 }, (t) => withChromium(t, async (page, origin, problems) => {
  // The page counts finished actions in body[data-ops] and sets data-state.
  const settled = (after) => page.waitForFunction(
    (n) => Number(document.body.dataset.ops) > n && document.body.dataset.state === 'ready', after,
    { timeout: 30_000 });
  const click = async (selector) => {
    const before = await page.evaluate(() => Number(document.body.dataset.ops));
    await page.click(selector);
    await settled(before);
  };
  const visibleErrors = () => page.evaluate(() => [...document.querySelectorAll('.error:not(.expected)')]
    .filter((e) => !e.hidden).map((e) => `${e.id}: ${e.textContent}`));

  await page.goto(`${origin}/demo/playground.html?n=2000&dim=32&kind=hnsw&efConstruction=64`);
  await settled(1); // the first ready state, then the automatic build
  assert.deepEqual(await visibleErrors(), []);
  assert.equal(await page.locator('#results tr').count(), 10);
  assert.match(await page.textContent('#build-stats'), /2,000\s*stats\(\)\.size/);
  assert.match(await page.textContent('#search-stats'), /mean recall@10/);

  await click('#pick-record');
  assert.equal(await page.textContent('#results tr:first-child td:nth-child(2)'), '42');
  await click('#save');
  assert.match(await page.textContent('#save-cid'), /^index\.cid = bafkrei[a-z2-7]{52}$/);
  await click('#load');
  assert.match(await page.textContent('#load-desc'), /same 10 ids with bit-identical distances/);
  await click('#tamper');
  assert.match(await page.textContent('#tamper-result'), /Error \(code -2\d\) — instanceof CorruptDataError: true/);
  assert.deepEqual(await visibleErrors(), []);
  assert.deepEqual(problems, []);
}, { consoleErrors: true }));
