// shoal-wasm.mjs -- Shoal's npm package (js/index.mjs, the C core compiled by
// Emscripten, SIMD128 build) in Node, for the IVF benchmark.  Needs `make wasm`.
//
// Same protocol and JSON lines as bench/ivf_native.c: Index.create({kind:
// 'ivf', nlist, quantizer, pqM, pqBits, pqTables, rerank}), index.train(base
// rows), add() in batches of 1,000 with id String(i), then per nprobe --runs
// timed passes of search(q, k, {nprobe, rerank}) and the best pass.  Each
// query pays what a JS user pays: copying the query into the wasm heap and
// decoding the result ids (turned back into numbers after timing).
//
//   --quantizer flat|sq8|pq --pq-m M --pq-bits 4|8 --pq-tables 0|1|2
//   --rerank 0|R1,R2,... --variant simd|base
//   --rows resident|external --reader filehandle|sync
//
// --rows external: what a browser does with a segment it does not hold in
// memory.  The built index is saved to a file and freed; a fresh Node
// process (this script with --open FILE, so that the building process's
// grown wasm heap does not count) opens it with Index.open(FileHandle) --
// the head at once, each list without its rerank rows when a search first
// probes it -- and times searchAsync(), which reads only the rows of each
// query's candidates from the file (async FileHandle reads; the page cache
// keeps the file hot).  Its build record comes last, with the memory after
// the whole sweep (every list some query probed is attached by then):
// lib_mb = memoryBytes, rss_delta_mb = the process's RSS growth since
// before Index.open; search records add read_kb (bytes read per query in the
// best pass, rows and any list read for the first time).  --reader sync
// gives Index.open a function over fs.readSync instead of the FileHandle
// (whose every read is a trip through libuv's thread pool): variant
// "...-ext-sync-r<R>".
import { spawn } from 'node:child_process';
import { mkdirSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFvecs } from '../hnsw/common.mjs';

// SHOAL_BENCH_JS: another copy of the package (a snapshot of js/ taken for
// a long run, so that rebuilding js/dist meanwhile cannot change it).
const { Index, wasmInfo } = await import(process.env.SHOAL_BENCH_JS ?? '../../js/index.mjs');

const a = {
  data: 'bench/data', base: 60000, queries: 2000, k: 10, runs: 2, nlist: 256,
  nprobes: '1,2,4,8,16,32,64', quantizer: 'f32', 'pq-m': 0, 'pq-bits': 0, 'pq-tables': 0, rerank: '0',
  neighbors: null, variant: 'simd', rows: 'resident', reader: 'filehandle', open: '', 'train-s': 0, 'add-s': 0,
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, '');
  if (!(key in a)) throw new Error(`unknown option ${argv[i]}`);
  a[key] = typeof a[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
}
if (a.rows !== 'resident' && a.rows !== 'external') throw new Error('--rows must be resident or external');
const nprobes = a.nprobes.split(',').map(Number);
const reranks = a.rerank.split(',').map(Number);
const simd = a.variant !== 'base';
const MB = 2 ** 20;
const emit = (r) => process.stdout.write(JSON.stringify(r) + '\n');
const rss = () => { globalThis.gc?.(); globalThis.gc?.(); return process.memoryUsage().rss; };

const query = readFvecs(join(a.data, 'fashion-mnist-query.fvecs'), a.queries);
const dim = query.dim;
const queries = Array.from({ length: query.n }, (_, i) => Float32Array.from(query.data.subarray(i * dim, (i + 1) * dim)));
const info = await wasmInfo({ simd });
const pq = a.quantizer === 'pq';
const ext = a.rows === 'external' ? (a.reader === 'sync' ? '-ext-sync' : '-ext') : '';
const family = `${pq ? `ivf-pq${a['pq-bits'] || 8}x${a['pq-m']}` : `ivf-${a.quantizer}`}${ext}`;
mkdirSync(a.neighbors, { recursive: true });

// Timed passes over every nprobe for one rerank depth; returns nothing, emits search records.
async function sweep(index, R, search, common, nlist, reads) {
  const opts = (nprobe) => (R ? { nprobe, rerank: R } : { nprobe });
  // (A synchronous search is not awaited: the resident curve pays no promise.)
  const call = async (q, o) => {
    const r = search(q, a.k, o);
    return r instanceof Promise ? await r : r;
  };
  for (let i = 0; i < Math.min(200, query.n); i++) await call(queries[i], opts(nprobes[0]));
  for (const nprobe of nprobes) {
    if (nprobe > nlist) continue;
    const o = opts(nprobe);
    const answers = new Array(query.n);
    let best = Infinity, readBytes = 0;
    for (let run = 0; run < a.runs; run++) {
      const before = reads();
      const start = process.hrtime.bigint();
      if (a.rows === 'external') for (let i = 0; i < query.n; i++) answers[i] = await search(queries[i], a.k, o);
      else for (let i = 0; i < query.n; i++) answers[i] = search(queries[i], a.k, o);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (seconds < best) {
        best = seconds;
        readBytes = reads() - before;
      }
    }
    const ids = new Int32Array(query.n * a.k).fill(-1);
    answers.forEach((ans, i) => ans.ids.forEach((id, j) => { if (j < a.k) ids[i * a.k + j] = Number(id); }));
    const file = join(a.neighbors, `shoal-wasm-${common.variant}-np${nprobe}.i32`);
    writeFileSync(file, ids);
    const rec = { type: 'search', ...common, nprobe, rerank: R, qps: +(query.n / best).toFixed(1), neighbors: file };
    if (a.rows === 'external') rec.read_kb = +(readBytes / query.n / 1024).toFixed(1);
    emit(rec);
  }
}

if (a.open) {
  // The fresh process of --rows external.
  const rss0 = rss();
  const fh = await open(a.open);
  const source = a.reader === 'sync'
    ? (offset, length) => {
      const bytes = new Uint8Array(length);
      readSync(fh.fd, bytes, 0, length, offset);
      return bytes;
    }
    : fh;
  const index = await Index.open(source, { simd, rows: 'external', lists: 'lazy' });
  const stats0 = index.stats();
  const openKb = +(index.reads.bytes / 1024).toFixed(1);
  for (const [r, R] of reranks.entries()) {
    const variant = `${info.variant}-${family}${R ? `-r${R}` : ''}`;
    const common = { library: 'shoal-wasm', variant, base: stats0.size, queries: query.n, k: a.k };
    await sweep(index, R, (q, k, o) => index.searchAsync(q, k, o), common, stats0.nlist, () => index.reads.bytes);
    const stats = index.stats();
    emit({
      type: 'build', ...common, version: info.version, family, shared_build: r > 0,
      params: { nlist: stats.nlist, quantizer: a.quantizer, pqM: a['pq-m'], pqBits: a['pq-bits'],
        pqTables: a['pq-tables'], rerank: R },
      train_s: a['train-s'], add_s: a['add-s'], build_s: +(a['train-s'] + a['add-s']).toFixed(3),
      rss_delta_mb: +((rss() - rss0) / MB).toFixed(1),
      lib_mb: +(stats.memoryBytes / MB).toFixed(2), codes_mb: +(stats.codesBytes / MB).toFixed(2),
      rerank_mb: +(stats.rerankBytes / MB).toFixed(2), nlist: stats.nlist, rows: 'external',
      open_kb: openKb, read_mb: +(index.reads.bytes / MB).toFixed(1),
      notes: `js/index.mjs, ${info.kernels} kernels; Index.open(${a.reader === 'sync' ? 'fs.readSync' : 'FileHandle'}), rerank rows external: ` +
        'searchAsync reads each candidate\'s row from the segment file (page cache), lists read when first probed; ' +
        'memory after the sweep, RSS of a fresh process.',
    });
  }
  index.free();
  await fh.close();
  process.exit(0);
}

const base = readFvecs(join(a.data, 'fashion-mnist-base.fvecs'), a.base);
const options = { dim, metric: 'l2', kind: 'ivf', simd, nlist: a.nlist, quantizer: a.quantizer, seed: 1 };
if (pq) {
  Object.assign(options, { pqM: a['pq-m'] || undefined, pqBits: a['pq-bits'] || undefined,
    pqTables: a['pq-tables'] || undefined });
}
if (reranks[0]) options.rerank = reranks[0];

const rss0 = rss();
const t0 = process.hrtime.bigint();
const index = await Index.create(options);
index.train(base.data);
const t1 = process.hrtime.bigint();
for (let start = 0; start < base.n; start += 1000) {
  const end = Math.min(base.n, start + 1000);
  index.add(Array.from({ length: end - start }, (_, j) => String(start + j)), base.data.subarray(start * dim, end * dim));
}
const t2 = process.hrtime.bigint();
const trainS = +(Number(t1 - t0) / 1e9).toFixed(3), addS = +(Number(t2 - t1) / 1e9).toFixed(3);

if (a.rows === 'external') {
  // Saved, freed, and searched by a fresh process.
  const file = join(a.neighbors, `shoal-wasm-${process.pid}.seg`);
  writeFileSync(file, index.save());
  index.free();
  const child = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), ...argv,
    '--open', file, '--train-s', String(trainS), '--add-s', String(addS)], { stdio: ['ignore', 'inherit', 'inherit'] });
  const code = await new Promise((resolve) => child.on('close', resolve));
  rmSync(file, { force: true });
  process.exit(code ?? 1);
}

index.search(queries[0], 1); // (l2 pq builds its per-list tables at the first search)
const rss1 = rss();
const stats = index.stats();
for (const [r, R] of reranks.entries()) {
  const variant = `${info.variant}-${family}${R ? `-r${R}` : ''}`;
  const common = { library: 'shoal-wasm', variant, base: base.n, queries: query.n, k: a.k };
  emit({
    type: 'build', ...common, version: info.version, family, shared_build: r > 0,
    params: { nlist: stats.nlist, quantizer: a.quantizer, pqM: a['pq-m'], pqBits: a['pq-bits'],
      pqTables: a['pq-tables'], rerank: R },
    train_s: trainS, add_s: addS, build_s: +(trainS + addS).toFixed(3), rss_delta_mb: +((rss1 - rss0) / MB).toFixed(1),
    lib_mb: +(stats.memoryBytes / MB).toFixed(2), codes_mb: +(stats.codesBytes / MB).toFixed(2),
    rerank_mb: +(stats.rerankBytes / MB).toFixed(2), nlist: stats.nlist, rows: 'resident',
    notes: `js/index.mjs, ${info.kernels} kernels.`,
  });
  await sweep(index, R, (q, k, o) => index.search(q, k, o), common, stats.nlist, () => 0);
}
index.free();
