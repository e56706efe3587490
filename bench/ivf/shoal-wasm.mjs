// shoal-wasm.mjs -- Shoal's npm package (js/index.mjs, the C core compiled by
// Emscripten, SIMD128 build) in Node, for the IVF benchmark.  Needs `make wasm`.
//
// Same protocol and JSON lines as bench/ivf_native.c: Index.create({kind:
// 'ivf', nlist, quantizer, pqM, pqBits, rerank}), index.train(base rows),
// add() in batches of 1,000 with id String(i), then per nprobe --runs timed
// passes of search(q, k, {nprobe, rerank}) and the best pass.  Each query pays
// what a JS user pays: copying the query into the wasm heap and decoding the
// result ids (turned back into numbers after timing).
//
//   --quantizer flat|sq8|pq --pq-m M --pq-bits 4|8 --rerank 0|R1,R2,...
//   --variant simd|base
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Index, wasmInfo } from '../../js/index.mjs';
import { readFvecs } from '../hnsw/common.mjs';

const a = {
  data: 'bench/data', base: 60000, queries: 2000, k: 10, runs: 2, nlist: 256,
  nprobes: '1,2,4,8,16,32,64', quantizer: 'f32', 'pq-m': 0, 'pq-bits': 0, rerank: '0',
  neighbors: null, variant: 'simd',
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, '');
  if (!(key in a)) throw new Error(`unknown option ${argv[i]}`);
  a[key] = typeof a[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
}
const nprobes = a.nprobes.split(',').map(Number);
const reranks = a.rerank.split(',').map(Number);
const simd = a.variant !== 'base';
const MB = 2 ** 20;
const emit = (r) => process.stdout.write(JSON.stringify(r) + '\n');

const base = readFvecs(join(a.data, 'fashion-mnist-base.fvecs'), a.base);
const query = readFvecs(join(a.data, 'fashion-mnist-query.fvecs'), a.queries);
const dim = base.dim;
const queries = Array.from({ length: query.n }, (_, i) => Float32Array.from(query.data.subarray(i * dim, (i + 1) * dim)));

const info = await wasmInfo({ simd });
const pq = a.quantizer === 'pq';
const options = { dim, metric: 'l2', kind: 'ivf', simd, nlist: a.nlist, quantizer: a.quantizer, seed: 1 };
if (pq) Object.assign(options, { pqM: a['pq-m'] || undefined, pqBits: a['pq-bits'] || undefined });
if (reranks[0]) options.rerank = reranks[0];

const rss = () => { globalThis.gc?.(); globalThis.gc?.(); return process.memoryUsage().rss; };
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
const rss1 = rss();
const stats = index.stats();
const family = pq ? `ivf-pq${a['pq-bits'] || 8}x${a['pq-m']}` : `ivf-${a.quantizer}`;
mkdirSync(a.neighbors, { recursive: true });

for (const [r, R] of reranks.entries()) {
  const variant = `${info.variant}-${family}${R ? `-r${R}` : ''}`;
  const common = { library: 'shoal-wasm', variant, base: base.n, queries: query.n, k: a.k };
  emit({
    type: 'build', ...common, version: info.version, family, shared_build: r > 0,
    params: { nlist: stats.nlist, quantizer: a.quantizer, pqM: a['pq-m'], pqBits: a['pq-bits'], rerank: R },
    train_s: +(Number(t1 - t0) / 1e9).toFixed(3), add_s: +(Number(t2 - t1) / 1e9).toFixed(3),
    build_s: +(Number(t2 - t0) / 1e9).toFixed(3), rss_delta_mb: +((rss1 - rss0) / MB).toFixed(1),
    lib_mb: +(stats.memoryBytes / MB).toFixed(2), codes_mb: +(stats.codesBytes / MB).toFixed(2),
    rerank_mb: +(stats.rerankBytes / MB).toFixed(2), nlist: stats.nlist,
    notes: `js/index.mjs, ${info.kernels} kernels.`,
  });
  const opts = (nprobe) => (R ? { nprobe, rerank: R } : { nprobe });
  for (let i = 0; i < Math.min(200, query.n); i++) index.search(queries[i], a.k, opts(nprobes[0]));
  for (const nprobe of nprobes) {
    if (nprobe > stats.nlist) continue;
    const o = opts(nprobe);
    const answers = new Array(query.n);
    let best = Infinity;
    for (let run = 0; run < a.runs; run++) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < query.n; i++) answers[i] = index.search(queries[i], a.k, o);
      best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
    }
    const ids = new Int32Array(query.n * a.k).fill(-1);
    answers.forEach((ans, i) => ans.ids.forEach((id, j) => { if (j < a.k) ids[i * a.k + j] = Number(id); }));
    const file = join(a.neighbors, `shoal-wasm-${variant}-np${nprobe}.i32`);
    writeFileSync(file, ids);
    emit({ type: 'search', ...common, nprobe, rerank: R, qps: +(query.n / best).toFixed(1), neighbors: file });
  }
}
index.free();
