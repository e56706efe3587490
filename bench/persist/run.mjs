// bench/persist/run.mjs -- issue 11's measurements (`make bench-persist`;
// figures in docs/BENCHMARKS.md, "Persistence"):
//   - open a persisted 60,000 x 784 Fashion-MNIST collection and answer the
//     first query: Node file store, and IndexedDB in headless Chromium;
//   - upserts per second with a durable log at batch 1, 100 and 10,000,
//     per store (memory, files, IndexedDB), flushes kept out of the way;
// Single-threaded; prints one JSON line per figure and the CPU model/flags.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Collection, fileStore, memoryStore } from '../../js/node.mjs';
import { createStaticServer, listen } from '../../demo/serve.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const DATA = path.join(root, 'bench/data/fashion-mnist-base.fvecs');
const N = Number(process.env.BENCH_PERSIST_N ?? 60000);

function readFvecs(file, limit) {
  const buf = readFileSync(file);
  const dim = buf.readInt32LE(0);
  const n = Math.min(limit, buf.length / (4 + 4 * dim));
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++)
    out.set(new Float32Array(buf.buffer, buf.byteOffset + i * (4 + 4 * dim) + 4, dim), i * dim);
  return { dim, n, data: out };
}

function emit(obj) {
  console.log(JSON.stringify(obj));
}

const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:\s*(.*)$/m)?.[1].split(' ')
  .filter((f) => /^(avx2|fma|avx512f|avx512bw|avx512vl|sse4_2)$/.test(f)) ?? [];
emit({ cpu: cpus()[0].model, cores: cpus().length, flags, node: process.version });

const { dim, n, data } = readFvecs(DATA, N);
const records = (from, count) => Array.from({ length: count }, (_, i) => ({
  id: String(from + i), vector: data.subarray((from + i) * dim, (from + i + 1) * dim),
}));

// ---------------------------------------------------------- files: open
{
  const dir = await mkdtemp(path.join(tmpdir(), 'shoal-persist-'));
  let t0 = performance.now();
  const c = await Collection.create({ dim, store: await fileStore(dir), flushRecords: n, seed: 1 });
  await c.upsert(records(0, n), { chunk: 10000 });
  await c.flush();
  const build = (performance.now() - t0) / 1000;
  const bytes = c.stats().segmentBytes;
  await c.close();
  t0 = performance.now();
  const d = await Collection.open({ store: await fileStore(dir) });
  const opened = performance.now() - t0;
  const r = await d.search(data.subarray(0, dim), 10);
  const first = performance.now() - t0;
  emit({ what: 'open', store: 'files', records: n, dim, build_s: build, segment_mb: bytes / 2 ** 20,
    open_ms: opened, first_query_ms: first, top: r.ids[0] });
  await d.close();
  await rm(dir, { recursive: true, force: true });
}

// ------------------------------------------------- upserts/s, durable log
async function throughput(make, label) {
  for (const batch of [1, 100, 10000]) {
    const store = await make();
    const c = await Collection.create({ dim, store: store.store, flushRecords: 1e9, flushBytes: 2 ** 50, kind: 'flat' });
    const total = batch === 1 ? 500 : batch === 100 ? 5000 : 20000;
    const t0 = performance.now();
    for (let at = 0; at < total; at += batch) await c.upsert(records(at % n, Math.min(batch, total - at)));
    const s = (performance.now() - t0) / 1000;
    emit({ what: 'upsert', store: label, batch, records: total, records_per_s: Math.round(total / s) });
    await c.close();
    await store.done();
  }
}
await throughput(async () => ({ store: memoryStore(), done: async () => {} }), 'memory');
await throughput(async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'shoal-persist-'));
  return { store: await fileStore(dir), done: () => rm(dir, { recursive: true, force: true }) };
}, 'files (fdatasync per record)');

// ----------------------------------------------------- Chromium IndexedDB
const { chromium } = await import('playwright-core');
const server = createStaticServer();
const origin = await listen(server, 0);
const profile = await mkdtemp(path.join(tmpdir(), 'shoal-persist-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(3_600_000);
  await page.goto(`${origin}/bench/persist/page.html`);
  await page.waitForFunction(() => window.ready === true);
  const built = await page.evaluate((count) => window.build(count), n);
  emit({ what: 'build', store: 'indexeddb', ...built });
  await page.reload();
  await page.waitForFunction(() => window.ready === true);
  emit({ what: 'open', store: 'indexeddb', ...(await page.evaluate(() => window.openAndQuery())) });
  for (const row of await page.evaluate(() => window.throughput())) emit({ what: 'upsert', store: 'indexeddb', ...row });
} finally {
  await context.close();
  server.close();
  await rm(profile, { recursive: true, force: true });
}
