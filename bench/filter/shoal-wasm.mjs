// shoal-wasm.mjs -- the filter benchmark's JS side (issue 9): the HNSW index
// of bench/filter_native.c built through the npm package (js/node.mjs, the
// SIMD128 build; needs `make wasm`), and three ways to filter a search:
//
//   object     search(q, k, { filter: { category: 3, ... } }): the filter
//              object is JSON-encoded and compiled by the core on every call
//              and evaluated inside the traversal (in-traversal, as `where`
//              in C)
//   predicate  search(q, k, { filter: (id) => ... }): today's JS path -- the
//              package calls the function once per stored record per search
//              and hands the core the bitmap it makes.  The predicate looks
//              the record up in a JS Map id -> { category, price }, as an app
//              keeping its metadata beside the index would.
//   allowlist  search(q, k, { filter: index.allowList((id, m) => ...) }):
//              the predicate runs once per record when the list is first
//              used (timed apart, build_ms), then the bitmap is reused
//
// plus the unfiltered search (path "none").  Records, ids, metadata, seed,
// M / efConstruction and the filters are the native program's: it writes
// filters.json and the exact truth (truth-<slug>.i32/.f32, flat index with
// the same filter) into --truth, which this program reads.  Recall@k is
// computed as there: a result counts if it is in the exact top-k or its
// distance is at most the k-th exact distance (wasm computes the same
// float32 distances as native, bit for bit).  "same_as_native" is the share
// of queries whose `object` results equal the native HNSW `where` results
// (the graphs are the same in every build).
//
// Timing: a 200-query warm-up, then --runs passes of every path of a filter
// in turn (interleaved), one query per call; QPS = queries / median pass.
// --predicate-queries N times the predicate path on the first N queries only
// (it is the slow one); default all.
//
//   node bench/filter/shoal-wasm.mjs --truth bench/results/filter-<stamp>
//        [--data bench/data] [--base 60000] [--queries 1000] [--k 10] [--runs 3]
//        [--M 16] [--efc 200] [--seed 1] [--predicate-queries N]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Index, wasmInfo } from '../../js/node.mjs';
import { readFvecs } from '../hnsw/common.mjs';

const args = {
  data: 'bench/data', truth: null, base: 60000, queries: 1000, k: 10, runs: 3,
  M: 16, efc: 200, seed: 1, predicateQueries: 0,
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  if (!(key in args)) throw new Error(`unknown option ${argv[i]}`);
  if (argv[i + 1] === undefined) throw new Error(`${argv[i]} needs a value`);
  args[key] = typeof args[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
}
if (!args.truth) throw new Error('--truth DIR (the native program\'s --out) is required');
const K = args.k;
const predicateQueries = args.predicateQueries > 0 ? Math.min(args.predicateQueries, args.queries) : args.queries;

const emit = (record) => process.stdout.write(JSON.stringify(record) + '\n');
const now = () => Number(process.hrtime.bigint()) / 1e9;
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// The native program's formula: price = splitmix64(i) % 1000.
const MASK = (1n << 64n) - 1n;
function splitmix64(i) {
  let z = (BigInt(i) + 0x9e3779b97f4a7c15n) & MASK;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
  return z ^ (z >> 31n);
}

// ------------------------------------------------------------------- data

const base = readFvecs(join(args.data, 'fashion-mnist-base.fvecs'), args.base);
const query = readFvecs(join(args.data, 'fashion-mnist-query.fvecs'), args.queries);
if (base.n !== args.base || query.n !== args.queries) throw new Error('the data has fewer rows than asked for');
const dim = base.dim;
const category = new Uint8Array(readFileSync(join(args.data, 'fashion-mnist-base.labels'))).subarray(0, args.base);
if (category.length !== args.base) throw new Error('fashion-mnist-base.labels has fewer rows than --base');
const ids = Array.from({ length: args.base }, (_, i) => String(i));
const metadata = ids.map((_, i) => ({ category: category[i], price: Number(splitmix64(i) % 1000n) }));
const byId = new Map(ids.map((id, i) => [id, metadata[i]]));
const queries = Array.from({ length: query.n }, (_, i) => Float32Array.from(query.data.subarray(i * dim, (i + 1) * dim)));

const filters = JSON.parse(readFileSync(join(args.truth, 'filters.json'), 'utf8'));
const i32 = (name) => new Int32Array(readFileSync(join(args.truth, name)).buffer.slice(0));
const f32 = (name) => new Float32Array(readFileSync(join(args.truth, name)).buffer.slice(0));
function truthOf(slug) {
  const rows = i32(`truth-${slug}.i32`), dist = f32(`truth-${slug}.f32`);
  if (rows.length !== args.queries * K) throw new Error(`truth-${slug}: ${rows.length} rows for ${args.queries} x ${K}`);
  return { rows, dist };
}
// The record test of a filter, on a { category, price } object.
const testOf = (f) => (m) => (f.category === null || m.category === f.category) && m.price < f.priceBelow;

// ------------------------------------------------------------------ index

const info = await wasmInfo({ simd: true });
const t0 = now();
const index = await Index.create({ dim, metric: 'l2', kind: 'hnsw', M: args.M, efConstruction: args.efc, seed: args.seed, simd: true });
for (let start = 0; start < args.base; start += 1000) {
  const end = Math.min(args.base, start + 1000);
  index.add(ids.slice(start, end), base.data.subarray(start * dim, end * dim), { metadata: metadata.slice(start, end) });
}
const buildSeconds = now() - t0;
emit({
  type: 'build', library: 'shoal-wasm', kind: 'hnsw', version: info.version, simd: index.simd,
  params: { M: args.M, efConstruction: args.efc, efSearch: 64, seed: args.seed },
  build_s: +buildSeconds.toFixed(3), lib_mb: +(index.memoryBytes() / 2 ** 20).toFixed(1),
  metadata_mb: +(index.stats().metadataBytes / 2 ** 20).toFixed(2), node: process.version,
});
for (const f of filters) {
  const count = metadata.reduce((n, m) => n + testOf(f)(m), 0);
  if (count !== f.matches) throw new Error(`filter ${f.name}: ${count} matches here, ${f.matches} in the native program`);
}

// ---------------------------------------------------------------- search

function quality(answers, truth, f) {
  let hits = 0, total = 0, short = 0, violations = 0;
  const test = f ? testOf(f) : null;
  answers.forEach((a, q) => {
    const rows = truth.rows.subarray(q * K, (q + 1) * K), dist = truth.dist.subarray(q * K, (q + 1) * K);
    const tc = rows.findIndex((r) => r < 0) < 0 ? K : rows.findIndex((r) => r < 0);
    total += tc;
    if (a.ids.length < tc) short++;
    if (!tc) return;
    const kth = dist[tc - 1];
    const seen = new Set();
    a.ids.forEach((id, j) => {
      const row = Number(id);
      if (test && !test(metadata[row])) { violations++; return; }
      if (seen.has(row)) return;
      seen.add(row);
      let hit = false;
      for (let i = 0; i < tc && !hit; i++) hit = rows[i] === row;
      if (!hit) hit = a.distances[j] <= kth;
      hits += hit;
    });
  });
  return { recall: total ? hits / total : 1, short_queries: short, violations };
}

function pass(n, options) {
  const answers = new Array(n);
  const start = now();
  for (let i = 0; i < n; i++) answers[i] = index.search(queries[i], K, options);
  return { seconds: now() - start, answers };
}

function report(filter, path, seconds, answers, truth, f, n, extra = {}) {
  const qa = quality(answers, { rows: truth.rows.subarray(0, n * K), dist: truth.dist.subarray(0, n * K) }, f);
  const qps = n / median(seconds);
  emit({
    type: 'search', library: 'shoal-wasm', kind: 'hnsw', filter, path, ef: 64, nprobe: 0, k: K, queries: n,
    recall: +qa.recall.toFixed(4), qps: +qps.toFixed(1), qps_runs: seconds.map((s) => +(n / s).toFixed(1)),
    short_queries: qa.short_queries, violations: qa.violations, ...extra,
  });
  process.stderr.write(`  wasm hnsw ${filter.padEnd(5)} ${path.padEnd(9)} recall@${K} ${qa.recall.toFixed(4)}  ${qps.toFixed(1).padStart(8)} QPS\n`);
}

pass(Math.min(200, args.queries), {}); // warm-up
{
  const seconds = [];
  let last;
  for (let r = 0; r < args.runs; r++) ({ seconds: seconds[r], answers: last } = pass(args.queries, {}));
  report('none', 'none', seconds, last, truthOf('none'), null, args.queries);
}

for (const f of filters) {
  const truth = truthOf(f.slug);
  const test = testOf(f);
  const native = i32(`hnsw-where-${f.slug}.i32`);
  const allow = index.allowList((id, m) => test(m));
  const t1 = now();
  index.search(queries[0], K, { filter: allow }); // builds the list's bitmap (untimed below)
  const allowMs = (now() - t1) * 1000;
  const paths = {
    object: { n: args.queries, options: { filter: f.filter } },
    predicate: { n: predicateQueries, options: { filter: (id) => test(byId.get(id)) } },
    allowlist: { n: args.queries, options: { filter: allow } },
  };
  const seconds = { object: [], predicate: [], allowlist: [] }, answers = {};
  for (let r = 0; r < args.runs; r++) {
    for (const [name, p] of Object.entries(paths)) {
      const got = pass(p.n, p.options);
      seconds[name].push(got.seconds);
      answers[name] = got.answers;
    }
  }
  let same = 0;
  answers.object.forEach((a, q) => {
    const row = native.subarray(q * K, (q + 1) * K).filter((x) => x >= 0);
    same += a.ids.length === row.length && a.ids.every((id, j) => Number(id) === row[j]);
  });
  report(f.name, 'object', seconds.object, answers.object, truth, f, args.queries,
    { same_as_native: +(same / args.queries).toFixed(4) });
  report(f.name, 'predicate', seconds.predicate, answers.predicate, truth, f, predicateQueries);
  report(f.name, 'allowlist', seconds.allowlist, answers.allowlist, truth, f, args.queries,
    { build_ms: +allowMs.toFixed(1) });
}
index.free();
