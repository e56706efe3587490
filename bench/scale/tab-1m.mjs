#!/usr/bin/env node
// tab-1m.mjs -- issue 14: one million vectors in one Chromium tab.
//
//   node bench/scale/tab-1m.mjs [--n 1000000] [--dim 128] [--kind hnsw|ivf|flat]
//        [--quantizer f32|sq8|pq] [--queries 200] [--clusters 1000]
//        [--M 16] [--efConstruction 200] [--nlist 0] [--pqM 64] [--pqBits 4] [--rerank 0]
//
// Serves the repository on 127.0.0.1, opens bench/scale/tab-1m.html in
// headless Chromium (playwright-core) and, in a module Web Worker there:
// generates N x dim synthetic clustered float32 vectors (seeded, 1,000
// clusters) and Q held-out queries, computes exact top-10 ground truth by
// brute force, builds a Collection on indexedDBStore (upserts of 10,000,
// each logged durably, then one flush into one segment: HNSW, or IVF from a
// flat buffer), closes it.  Then the page is reloaded, a new worker reopens
// the collection from IndexedDB and runs the queries (k = 10) at a sweep of
// ef / nprobe.  Prints one JSON line per step (progress on stderr) and a
// summary; memory as the wasm Memory's size, the core's memoryBytes(), the
// renderer process's RSS (now and peak, from /proc) and the IndexedDB usage
// of navigator.storage.estimate().  A crashed tab or a worker error is
// reported as such (exit code 1).
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';

import { createStaticServer, listen } from '../../demo/serve.mjs';

const opts = {
  n: 1000000, dim: 128, kind: 'hnsw', quantizer: 'f32', queries: 200, clusters: 1000, seed: 14,
  M: 16, efConstruction: 200, nlist: 0, pqM: 64, pqBits: 4, rerank: 0, chunk: 10000, every: 100000,
  efs: '32,64,128,256', nprobes: '8,16,32,64', timeout: 7200,
};
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '');
  if (!(key in opts)) throw new Error(`unknown option ${process.argv[i]}`);
  opts[key] = typeof opts[key] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
if (!['hnsw', 'ivf', 'flat'].includes(opts.kind)) throw new Error('--kind is hnsw, ivf or flat');
if (opts.kind === 'ivf' && opts.quantizer === 'f32' && !process.argv.includes('--quantizer')) opts.quantizer = 'pq';
const pageOpts = {
  ...opts, db: 'tab-1m', efs: opts.efs.split(',').map(Number), nprobes: opts.nprobes.split(',').map(Number),
};

const emit = (obj) => console.log(JSON.stringify(obj));
const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:\s*(.*)$/m)?.[1].split(' ')
  .filter((f) => /^(avx|avx2|fma|avx512f|sse4_2)$/.test(f)).sort() ?? [];
emit({ cpu: cpus()[0].model, cores: cpus().length, flags, node: process.version, date: new Date().toISOString(), opts });

// ------------------------------------------------ renderer memory (/proc)
// The tab and its dedicated worker run in one renderer process, a
// descendant of this process with --type=renderer on its command line.
function descendants(root) {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch { /* gone */ }
  }
  const out = [], todo = [root];
  while (todo.length) for (const c of children.get(todo.pop()) ?? []) { out.push(c); todo.push(c); }
  return out;
}
function rendererMemory() {
  let rss = 0, hwm = 0, count = 0;
  for (const pid of descendants(process.pid)) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer')) continue;
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      rss += Number(status.match(/^VmRSS:\s+(\d+)/m)?.[1] ?? 0) * 1024;
      hwm += Number(status.match(/^VmHWM:\s+(\d+)/m)?.[1] ?? 0) * 1024;
      count++;
    } catch { /* gone */ }
  }
  return { rss, hwm, count };
}
let peakRss = 0;
const sampler = setInterval(() => { peakRss = Math.max(peakRss, rendererMemory().rss); }, 500);
const phaseMemory = () => {
  const m = rendererMemory();
  const out = { renderer_rss: m.rss, renderer_peak_rss: Math.max(peakRss, m.rss), renderer_hwm: m.hwm };
  peakRss = 0;
  return out;
};

// ----------------------------------------------------------- the browser
const { chromium } = await import('playwright-core');
const server = createStaticServer();
const origin = await listen(server, 0);
if (!/^http:\/\/127\.0\.0\.1:/.test(origin)) throw new Error(`server is not on 127.0.0.1: ${origin}`);
const profile = await mkdtemp(path.join(tmpdir(), 'shoal-tab-1m-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const MB = 2 ** 20;
let failed = null;
const summary = { kind: opts.kind, quantizer: opts.quantizer, n: opts.n, dim: opts.dim, queries: opts.queries };
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(opts.timeout * 1000);
  page.on('console', (m) => process.stderr.write(`${m.text()}\n`));
  let crashed = null;
  page.on('crash', () => { crashed = new Error('the tab crashed (renderer process gone)'); });
  // A crash leaves page.evaluate pending or rejected: race it.
  const run = (fn, ...args) => new Promise((resolve, reject) => {
    const poll = setInterval(() => { if (crashed) { clearInterval(poll); reject(crashed); } }, 250);
    page.evaluate(fn, ...args).then((v) => { clearInterval(poll); resolve(v); },
      (e) => { clearInterval(poll); reject(crashed ?? e); });
  });
  const load = async () => {
    await page.goto(`${origin}/bench/scale/tab-1m.html`);
    await page.waitForFunction(() => window.ready === true);
  };

  await load();
  emit({ what: 'start', ...phaseMemory() });
  const built = await run(([o]) => window.run('build', o), [pageOpts]);
  if (built.error) throw Object.assign(new Error(`build: ${built.error.name}: ${built.error.message}`), { detail: built.error });
  const b = built.result;
  const bmem = phaseMemory();
  emit({ what: 'build', ...b, js_heap: await page.evaluate(() => window.jsHeap()), ...bmem });
  Object.assign(summary, {
    generate_s: +b.generate_s.toFixed(1), groundtruth_s: +b.groundtruth_s.toFixed(1),
    upsert_s: +b.upsert_s.toFixed(1), flush_s: +b.flush_s.toFixed(1), build_s: +b.build_s.toFixed(1),
    segment_mb: +(b.segmentBytes / MB).toFixed(1), idb_mb: +((b.storage.idb ?? b.storage.usage) / MB).toFixed(1),
    build_wasm_mb: +(Math.max(b.before_flush.wasm_bytes, b.after_flush.wasm_bytes) / MB).toFixed(0),
    build_core_mb: +(Math.max(b.before_flush.memoryBytes, b.after_flush.memoryBytes) / MB).toFixed(0),
    build_renderer_peak_mb: +(bmem.renderer_peak_rss / MB).toFixed(0),
  });

  await page.reload();
  await page.waitForFunction(() => window.ready === true);
  emit({ what: 'reloaded', ...phaseMemory() });
  const opened = await run(([o, gt]) => window.run('open', o, gt), [pageOpts, built.gt]);
  if (opened.error) throw Object.assign(new Error(`reopen/search: ${opened.error.name}: ${opened.error.message}`), { detail: opened.error });
  const r = opened.result;
  const mem = phaseMemory();
  emit({ what: 'reopen', ...r, js_heap: await page.evaluate(() => window.jsHeap()), ...mem });
  Object.assign(summary, {
    open_s: +r.open_s.toFixed(2), first_query_ms: +r.first_query_ms.toFixed(1),
    open_wasm_mb: +(r.wasm_bytes_after_search / MB).toFixed(0), open_core_mb: +(r.memoryBytes / MB).toFixed(0),
    open_renderer_peak_mb: +(mem.renderer_peak_rss / MB).toFixed(0),
    searches: r.searches.map((s) => ({ ...s, recall10: +s.recall10.toFixed(4), median_ms: +s.median_ms.toFixed(2),
      p95_ms: +s.p95_ms.toFixed(2), qps: +s.qps.toFixed(0) })),
  });
} catch (err) {
  failed = err;
  emit({ what: 'failure', error: String(err.message ?? err), detail: err.detail, ...phaseMemory() });
} finally {
  clearInterval(sampler);
  await context.close().catch(() => {});
  server.close();
  await rm(profile, { recursive: true, force: true });
}
emit({ what: 'summary', ...summary, failure: failed ? String(failed.message ?? failed) : null });
if (failed) process.exitCode = 1;
