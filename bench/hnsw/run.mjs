#!/usr/bin/env node
// run.mjs -- HNSW beside hnswlib and friends on Fashion-MNIST, in one run.
//
//   node bench/hnsw/run.mjs [--base 60000] [--queries 1000] [--runs 2]
//        [--efs 10,16,...] [--edgevec-efs 16,32,...] [--only a,b] [--skip a,b]
//        [--shoal-kind hnsw|flat] [--merge file.json,...] [--report-only file.json,...]
//        [--out file.json] [--plot docs/img/hnsw-fashion-mnist.png] [--table file.md]
//        [--interleave 1]
//
// Each library runs in its own process (its adapter in this folder, or
// build/bench_hnsw_native), so build time and memory are per library and a
// crash in one does not stop the others.  Every process gets
// OMP/OPENBLAS/MKL_NUM_THREADS=1; adapters build and search on one thread.
// Adapters print JSON lines (see common.mjs):
//   {type:'build',  library, variant, base, queries, k, version, params,
//                   build_s, rss_delta_mb, lib_mb, notes}
//   {type:'search', library, variant, base, queries, k, ef, qps, neighbors}
//   {type:'error',  library, error}
// and this runner computes recall@k from the neighbours file of each search
// line against the cached exact ground truth, so recall has one definition:
// a returned id counts if its true distance is at most the true k-th
// distance (ties at the k-th place all count; each id once).
//
// Output: bench/results/hnsw-<date>-<time>.json (JSON Lines: a 'run' record,
// then build/search/error records, search records with recall; records
// taken from --merge files keep a 'from' field), a Markdown report on stdout
// and in bench/results/hnsw-<date>-<time>.md (the part for docs/BENCHMARKS.md),
// and the plot (recall@k on x, QPS log-scale on y) via plot.py.
//
// Interleaved (--interleave 1): the chosen adapters are built one after
// another and wait; then their timed passes take turns (see runInterleaved),
// and the report adds the ratio run by run (see interleavedTable).  Use it
// with a few libraries and --runs 5 or more on a noisy machine.
//
// Matched recall: QPS at recall 0.98 and 0.995 is interpolated on each
// library's own curve -- log(QPS) linear in recall between the two points
// that bracket the target; "≥" when even the smallest ef is above the
// target (the true figure is at least that), "—" when the curve never gets
// there.  Ratios divide by the value at the same recall of hnswlib-native
// (hnswlib's C++ built here with -O3 -march=native: the anchor), of
// hnswlib-native-no-avx512 (the same with -mno-avx512f: the peer of Shoal's
// *-avx2 adapters), of Debian's generic hnswlib build (Python) and of
// hnswlib-wasm -- a column for each one the run has.

import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const PY = '/usr/bin/python3'; // Debian's, with python3-hnswlib/numpy/matplotlib
const TARGETS = [0.98, 0.995];
const REFERENCES_ALL = ['hnswlib-native', 'hnswlib-native-no-avx512', 'hnswlib', 'hnswlib-wasm'];

// ------------------------------------------------------------------ options

function parseOptions(argv) {
  const o = {
    base: 60000, queries: 2000, runs: 2, k: 10, M: 16, efc: 200,
    efs: '10,16,24,32,48,64,96,128,192,256,384,512',
    edgevecEfs: null, only: null, skip: '', shoalKind: 'hnsw',
    merge: '', reportOnly: null, out: null, table: null, interleave: 0,
    plot: join(ROOT, 'docs', 'img', 'hnsw-fashion-mnist.png'),
  };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in o)) throw new Error(`unknown option ${argv[i]} (see the top of ${relative(ROOT, fileURLToPath(import.meta.url))})`);
    const value = argv[++i];
    if (value === undefined) throw new Error(`${argv[i - 1]} needs a value`);
    o[key] = typeof o[key] === 'number' ? Number(value) : value;
  }
  // edgevec builds one index per ef (see edgevec.mjs): a short list keeps
  // that to a few minutes at full size while bracketing recall 0.98..0.995.
  o.edgevecEfs ??= '16,32,64,128,256';
  return o;
}

// ----------------------------------------------------------------- adapters

function adapters(o) {
  const node = (file, ...extra) => ['node', '--expose-gc', join(HERE, file), ...extra];
  const native = join(ROOT, 'build', 'bench_hnsw_native');
  const npmPeer = (pkg) => ({ path: join(ROOT, 'bench', 'node_modules', pkg), hint: 'run bench/setup.sh' });
  const needNative = { path: native, hint: 'run make build/bench_hnsw_native' };
  const hnswlibNative = join(ROOT, 'build', 'bench_hnswlib_native');
  const needHnswlibNative = { path: hnswlibNative, hint: 'run bench/setup.sh, then make build/bench_hnswlib_native' };
  const hnswlibNoAvx512 = join(ROOT, 'build', 'bench_hnswlib_native_no_avx512');
  const needNoAvx512 = { path: hnswlibNoAvx512, hint: 'run make build/bench_hnswlib_native_no_avx512' };
  const needWasm = { path: join(ROOT, 'js', 'dist', 'shoal-simd.wasm'), hint: 'run make wasm' };
  const kind = o.shoalKind;
  const list = [
    { name: 'hnswlib-native', group: 'peers', cmd: [hnswlibNative], needs: needHnswlibNative },
    { name: 'hnswlib-native-thp', group: 'peers', cmd: [hnswlibNative, '--thp', '1'], needs: needHnswlibNative },
    // Without AVX-512 on both sides (on an AVX-512 machine): hnswlib's AVX path
    // against Shoal's AVX2 kernels.  Skipped where the CPU has no AVX2.
    { name: 'hnswlib-native-no-avx512', group: 'peers', cmd: [hnswlibNoAvx512], needs: needNoAvx512 },
    // Built on two threads (addPoint from two std::threads), searched on one.
    { name: 'hnswlib-native-2t', group: 'peers', cmd: [hnswlibNative, '--threads', '2'], needs: needHnswlibNative },
    { name: 'hnswlib', group: 'peers', cmd: [PY, join(HERE, 'hnswlib_py.py')] },
    { name: 'hnswlib-node', group: 'peers', cmd: node('hnswlib-node.mjs'), needs: npmPeer('hnswlib-node') },
    { name: 'usearch', group: 'peers', cmd: node('usearch.mjs'), needs: npmPeer('usearch') },
    { name: 'hnswlib-wasm', group: 'peers', cmd: node('hnswlib-wasm.mjs'), needs: npmPeer('hnswlib-wasm') },
    { name: 'edgevec', group: 'peers', cmd: node('edgevec.mjs'), efs: o.edgevecEfs, needs: npmPeer('edgevec') },
    { name: 'shoal-native-f32', group: 'shoal', cmd: [native, '--kind', kind, '--quantizer', 'f32'], needs: needNative },
    { name: 'shoal-native-f32-nothp', group: 'shoal', cmd: [native, '--kind', kind, '--quantizer', 'f32', '--thp', '0'], needs: needNative },
    { name: 'shoal-wasm-simd-f32', group: 'shoal', cmd: node('shoal-wasm.mjs', '--variant', 'simd', '--kind', kind, '--quantizer', 'f32'), needs: needWasm },
    { name: 'shoal-wasm-base-f32', group: 'shoal', cmd: node('shoal-wasm.mjs', '--variant', 'base', '--kind', kind, '--quantizer', 'f32'), needs: needWasm },
  ];
  // SQ8 only means something for HNSW.
  if (kind === 'hnsw') {
    list.splice(9, 0, { name: 'shoal-native-sq8', group: 'shoal', cmd: [native, '--kind', kind, '--quantizer', 'sq8'], needs: needNative });
    list.splice(10, 0, { name: 'shoal-native-sq8-rerank', group: 'shoal', cmd: [native, '--kind', kind, '--quantizer', 'sq8', '--rerank', '32'], needs: needNative });
    // Batched inserts (hnsw.build_batch 64): the same graph on one thread or two.
    list.push({ name: 'shoal-native-f32-batch-1t', group: 'shoal', cmd: [native, '--kind', kind, '--quantizer', 'f32', '--batch', '64', '--threads', '1'], needs: needNative });
    list.push({ name: 'shoal-native-f32-batch-2t', group: 'shoal', cmd: [native, '--kind', kind, '--quantizer', 'f32', '--batch', '64', '--threads', '2'], needs: needNative });
    list.push({ name: 'shoal-native-sq8-rerank-batch-2t', group: 'shoal', cmd: [native, '--kind', kind, '--quantizer', 'sq8', '--rerank', '32', '--batch', '64', '--threads', '2'], needs: needNative });
    list.push({ name: 'shoal-native-f32-avx2', group: 'shoal', cmd: [native, '--kind', kind, '--quantizer', 'f32', '--simd', 'avx2'], needs: needNative });
    list.push({ name: 'shoal-native-sq8-rerank-avx2', group: 'shoal', cmd: [native, '--kind', kind, '--quantizer', 'sq8', '--rerank', '32', '--simd', 'avx2'], needs: needNative });
    list.push({ name: 'shoal-wasm-simd-sq8', group: 'shoal', cmd: node('shoal-wasm.mjs', '--variant', 'simd', '--kind', kind, '--quantizer', 'sq8'), needs: needWasm });
    list.push({ name: 'shoal-wasm-simd-sq8-rerank', group: 'shoal', cmd: node('shoal-wasm.mjs', '--variant', 'simd', '--kind', kind, '--quantizer', 'sq8', '--rerank', '32'), needs: needWasm });
    // The same with 16 candidates re-scored: at most 16 float32 rows read per query, not 32.
    list.push({ name: 'shoal-native-sq8-rerank16', group: 'shoal', cmd: [native, '--kind', kind, '--quantizer', 'sq8', '--rerank', '16'], needs: needNative });
    list.push({ name: 'shoal-wasm-simd-sq8-rerank16', group: 'shoal', cmd: node('shoal-wasm.mjs', '--variant', 'simd', '--kind', kind, '--quantizer', 'sq8', '--rerank', '16'), needs: needWasm });
    // The copies left in the segment file (rerank_external / Index.open): the memory of SQ8,
    // one read per candidate row.
    list.push({ name: 'shoal-native-sq8-rerank-ext', group: 'shoal', cmd: [native, '--kind', kind, '--quantizer', 'sq8', '--rerank', '32', '--rows', 'external'], needs: needNative });
    list.push({ name: 'shoal-wasm-simd-sq8-rerank-ext', group: 'shoal', cmd: node('shoal-wasm.mjs', '--variant', 'simd', '--kind', kind, '--quantizer', 'sq8', '--rerank', '32', '--rows', 'external'), needs: needWasm });
  }
  const pick = (spec) => new Set(spec.split(',').filter(Boolean));
  const only = o.only ? pick(o.only) : null;
  const skip = pick(o.skip);
  const chosen = (a) => (!only || only.has(a.name) || only.has(a.group)) && !skip.has(a.name) && !skip.has(a.group);
  // The AVX2-against-AVX path needs AVX2 (and FMA, which Shoal's AVX2 set requires).
  const flags = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const avx2 = / avx2( |$)/m.test(flags) && / fma( |$)/m.test(flags);
  const runnable = (a) => avx2 || !(a.name.endsWith('-avx2') || a.name.endsWith('-no-avx512'));
  return list.filter((a) => chosen(a) && runnable(a));
}

// --------------------------------------------------------------------- data

export function ivecs(path, rows) {
  const buf = readFileSync(path);
  const width = buf.readInt32LE(0);
  const out = [];
  for (let i = 0; i < rows; i++) out.push(new Int32Array(buf.buffer, buf.byteOffset + i * (width + 1) * 4 + 4, width));
  if (out.length && out[out.length - 1].byteOffset + width * 4 > buf.byteOffset + buf.length) throw new Error(`${path}: too few rows`);
  return out;
}

export function ensureData(o, dataDir) {
  const gt = join(dataDir, `fashion-mnist-gt-${o.base}.ivecs`);
  const need = [join(dataDir, 'fashion-mnist-base.fvecs'), join(dataDir, 'fashion-mnist-query.fvecs'), gt,
    join(dataDir, `fashion-mnist-gt-${o.base}-dist.ivecs`)];
  if (need.every(existsSync)) return;
  console.error(`preparing data and exact ground truth for base ${o.base} (cached in ${relative(ROOT, dataDir)}/)`);
  const r = spawnSync(PY, [join(HERE, 'prepare_data.py'), '--base', String(o.base)], { stdio: 'inherit', env: threadEnv() });
  if (r.status !== 0) throw new Error('prepare_data.py failed (is dataset-fashion-mnist installed? see bench/setup.sh)');
}

export function groundTruth(o, dataDir) {
  return {
    ids: ivecs(join(dataDir, `fashion-mnist-gt-${o.base}.ivecs`), o.queries),
    dist: ivecs(join(dataDir, `fashion-mnist-gt-${o.base}-dist.ivecs`), o.queries),
  };
}

/** recall@k of the neighbours file (int32, queries x k) against exact ground truth. */
export function recallOf(file, gt, k) {
  const found = new Int32Array(readFileSync(file).buffer.slice(0));
  const nq = gt.ids.length;
  if (found.length !== nq * k) throw new Error(`${file}: ${found.length} ids, expected ${nq} x ${k}`);
  let hits = 0;
  for (let q = 0; q < nq; q++) {
    const kth = gt.dist[q][k - 1];
    const seen = new Set();
    for (let j = 0; j < k; j++) {
      const id = found[q * k + j];
      if (id < 0 || seen.has(id)) continue;
      seen.add(id);
      const at = gt.ids[q].indexOf(id);
      if (at >= 0 && gt.dist[q][at] <= kth) hits++;
    }
  }
  return hits / (nq * k);
}

// ---------------------------------------------------------------- running

export function threadEnv() {
  return { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
}

export function runOne(adapter, o, dataDir, neighborsDir, gt) {
  return startAdapter(adapter, o, dataDir, neighborsDir, gt).closed;
}

/**
 * Starts one adapter process.  Returns { closed } (a promise of its records)
 * and, while it runs, next(): a promise of its next control line
 * ({type:'ready'} or {type:'pass', seconds} under --interleave 1), null once
 * it has exited.  Control lines are not records.
 */
function startAdapter(adapter, o, dataDir, neighborsDir, gt, extra = []) {
  // adapter.argsFor (another benchmark reusing this runner, e.g. ivf/run.mjs)
  // replaces the HNSW arguments.
  const args = adapter.argsFor ? adapter.argsFor(o, dataDir, neighborsDir) : [
    '--data', dataDir, '--base', String(o.base), '--queries', String(o.queries),
    '--k', String(o.k), '--M', String(o.M), '--efc', String(o.efc), '--runs', String(o.runs),
    '--efs', adapter.efs ?? o.efs, '--neighbors', neighborsDir];
  const [cmd, ...pre] = adapter.cmd;
  if (adapter.needs && !existsSync(adapter.needs.path)) {
    console.error(`\n== ${adapter.name}: skipped, ${adapter.needs.path} is missing (${adapter.needs.hint})`);
    return { missing: true, next: async () => null, closed: Promise.resolve([{ type: 'error', adapter: adapter.name, library: adapter.name,
      error: `not run: ${relative(ROOT, adapter.needs.path)} is missing (${adapter.needs.hint})` }]) };
  }
  const shown = (p) => (p.startsWith(ROOT + '/') ? relative(ROOT, p) : p);
  console.error(`\n== ${adapter.name}: ${[cmd, ...pre, ...extra].map(shown).join(' ')}`);
  const started = Date.now();
  const records = [];
  const control = [];
  const waiting = [];
  let exited = false;
  const deliver = (rec) => (waiting.length ? waiting.shift()(rec) : control.push(rec));
  const next = () => (control.length ? Promise.resolve(control.shift())
    : exited ? Promise.resolve(null) : new Promise((resolve) => waiting.push(resolve)));
  let stderrTail = '';
  let pending = '';
  const child = spawn(cmd, [...pre, ...args, ...extra], { cwd: ROOT, env: threadEnv(),
    stdio: [extra.length ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  child.stdin?.on('error', () => {}); // it may exit before reading a go
  const onLine = (line) => {
    if (!line.trim()) return;
    let rec;
    try { rec = JSON.parse(line); } catch { console.error(`   (not JSON) ${line}`); return; }
    if (rec.type === 'ready' || rec.type === 'pass') { deliver(rec); return; }
    if (rec.type === 'search') {
      try {
        rec.recall = +recallOf(rec.neighbors, gt, o.k).toFixed(4);
      } catch (err) {
        records.push({ type: 'error', adapter: adapter.name, library: adapter.name, error: `recall: ${err.message}` });
        return;
      }
      rmSync(rec.neighbors, { force: true });
      delete rec.neighbors;
      const point = rec.ef !== undefined ? `ef ${String(rec.ef).padStart(4)}`
        : `${rec.variant} nprobe ${String(rec.nprobe).padStart(4)}`;
      console.error(`   ${adapter.name}: ${point}  recall@${o.k} ${rec.recall.toFixed(4)}  ${rec.qps.toFixed(0).padStart(7)} QPS`);
    } else if (rec.type === 'build') {
      console.error(`   built ${rec.library} ${rec.variant} in ${rec.build_s} s, lib ${rec.lib_mb ?? '-'} MB, RSS +${rec.rss_delta_mb} MB`);
    }
    rec.adapter = adapter.name;
    records.push(rec);
  };
  const closed = new Promise((done) => {
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) { onLine(pending.slice(0, nl)); pending = pending.slice(nl + 1); }
    });
    child.stderr.on('data', (chunk) => {
      process.stderr.write(`   ${adapter.name}: ${chunk}`);
      stderrTail = (stderrTail + chunk).slice(-2000);
    });
    child.on('error', (err) => { stderrTail += String(err); });
    child.on('close', (code, signal) => {
      if (pending) onLine(pending);
      if (code !== 0 && !records.some((r) => r.type === 'error')) {
        const last = stderrTail.trim().split('\n').filter(Boolean).slice(-3).join(' | ');
        records.push({ type: 'error', adapter: adapter.name, library: adapter.name, error: `exit ${code ?? signal}: ${last}` });
      }
      console.error(`   (${adapter.name}: ${((Date.now() - started) / 1000).toFixed(0)} s)`);
      exited = true;
      while (waiting.length) waiting.shift()(null);
      done(records);
    });
  });
  return { child, next, closed };
}

/**
 * --interleave 1: builds the adapters one after another (each waits, built
 * and warmed up, for its first pass), then alternates their timed passes --
 * for each ef, for each run, one pass of every adapter, the order rotating --
 * so that every library's pass at an ef sits next to the others' in time and
 * a slow minute on a shared machine hits them all.  A pass starts only once
 * the previous adapter has finished its untimed work (writing neighbours;
 * the runner's recall) and is waiting again.  Returns the records and one
 * {type:'pass', adapter, ef, run, seconds} record per timed pass.
 */
async function runInterleaved(list, o, dataDir, neighborsDir, gt) {
  const efs = o.efs.split(',').map(Number);
  const live = [];
  const all = [];
  for (const adapter of list) {
    const h = startAdapter(adapter, o, dataDir, neighborsDir, gt, ['--interleave', '1']);
    all.push(h);
    if ((await h.next())?.type === 'ready') live.push({ ...h, adapter });
  }
  const passes = [];
  for (let e = 0; e < efs.length; e++) {
    for (let run = 0; run < o.runs; run++) {
      const turn = e * o.runs + run;
      const order = live.map((_, i) => live[(i + turn) % live.length]);
      for (const h of order) {
        if (h.done) continue;
        h.child.stdin.write('\n');
        const pass = await h.next();
        if (pass?.type !== 'pass') { h.done = true; continue; }
        passes.push({ type: 'pass', adapter: h.adapter.name, ef: efs[e], run, seconds: pass.seconds });
        // Its untimed work ends with the next 'ready' (or its exit, after the last pass).
        if ((await h.next())?.type !== 'ready') h.done = true;
      }
    }
  }
  for (const h of live) h.child.stdin.end();
  const records = (await Promise.all(all.map((h) => h.closed))).flat();
  return [...records, ...passes];
}

// ---------------------------------------------------------------- reporting

const labelOf = (r) => (r.variant && r.variant !== 'default' ? `${r.library} ${r.variant}` : r.library);

function curves(records) {
  const map = new Map();
  for (const r of records) {
    if (r.type !== 'build' && r.type !== 'search') continue;
    const label = labelOf(r);
    if (!map.has(label)) map.set(label, { label, build: null, points: [] });
    if (r.type === 'build') map.get(label).build = r;
    else map.get(label).points.push(r);
  }
  for (const c of map.values()) c.points.sort((a, b) => a.ef - b.ef);
  // Shoal first, then the native peers, then the wasm peers.
  const order = ['shoal-native', 'shoal-wasm', 'hnswlib-native', 'hnswlib', 'hnswlib-node', 'usearch', 'hnswlib-wasm', 'edgevec'];
  const rank = (c) => {
    const lib = (c.build ?? c.points[0])?.library;
    return order.includes(lib) ? order.indexOf(lib) : order.length;
  };
  return [...map.values()].sort((a, b) => rank(a) - rank(b) || a.label.localeCompare(b.label));
}

/** QPS at `target` recall on one curve: { qps, bound: '' | '≥' } or null. */
export function qpsAtRecall(points, target) {
  // Recall is not always monotone in ef (noise, a tie): keep the upper
  // envelope -- for each recall, the best QPS reached at or above it.
  const pts = points.map((p) => ({ r: p.recall, q: p.qps })).sort((a, b) => a.r - b.r || b.q - a.q);
  if (!pts.length || pts[pts.length - 1].r < target) return null;
  for (let i = pts.length - 2; i >= 0; i--) pts[i].q = Math.max(pts[i].q, pts[i + 1].q);
  if (pts[0].r > target) return { qps: pts[0].q, bound: '≥' };
  if (pts[0].r === target) return { qps: pts[0].q, bound: '' };
  for (let i = 0; i + 1 < pts.length; i++) {
    const a = pts[i], b = pts[i + 1];
    if (a.r < target && b.r >= target) {
      if (b.r === a.r) return { qps: b.q, bound: '' };
      const t = (target - a.r) / (b.r - a.r);
      return { qps: Math.exp(Math.log(a.q) + t * (Math.log(b.q) - Math.log(a.q))), bound: '' };
    }
  }
  return null;
}

const fmtQps = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
const fmtRatio = (v) => (v >= 10 ? v.toFixed(1) : v.toFixed(2)) + '×';

function report(runInfo, records, o) {
  const cs = curves(records);
  // A reference is the single-threaded build of that library (hnswlib's Python
  // curve is labelled "hnswlib python", the native anchor "hnswlib-native march-native").
  // (hnswlib-native-no-avx512's curve is "hnswlib-native march-native-no-avx512".)
  const labelOf = (name) => name.replace(/^hnswlib-native-(.+)$/, 'hnswlib-native march-native-$1');
  const found = Object.fromEntries(REFERENCES_ALL.map((name) => [name, cs.find((c) =>
    c.label === name || c.label === `${name} python` || c.label === `${name} march-native` || c.label === labelOf(name))]));
  // Ratio columns only for the references this run (or its merged files) has.
  const REFERENCES = REFERENCES_ALL.filter((name) => found[name]);
  const refs = Object.fromEntries(REFERENCES.map((name) => [name, found[name]]));
  const refAt = (name, recall) => (refs[name] ? qpsAtRecall(refs[name].points, recall) : null);
  const ratio = (qps, bound, name, recall) => {
    const ref = refAt(name, recall);
    if (!ref || qps == null) return '—';
    // A lower bound over a lower bound says nothing; over an exact figure it stays a bound.
    if (ref.bound) return bound ? '—' : `≤${fmtRatio(qps / ref.qps)}`;
    return `${bound}${fmtRatio(qps / ref.qps)}`;
  };
  const mb = (v) => (v == null ? '—' : v.toFixed(0));
  const lines = [];
  const d = runInfo;
  lines.push(`### HNSW on Fashion-MNIST (${d.base.toLocaleString('en-US')} × 784, L2, M = ${d.M}, efConstruction = ${d.efc})`);
  lines.push('');
  lines.push(`${d.queries.toLocaleString('en-US')} queries (the first of the 10,000 test images), one at a time on one thread, best of ${d.runs} passes; ` +
    `recall@${d.k} against exact ground truth. ${d.cpu}, Node ${d.node}. Generated by \`bench/hnsw/run.mjs\` on ${d.date}.`);
  lines.push('');
  lines.push(`QPS at matched recall is interpolated on each library's own curve (log QPS linear in recall between the two efs that bracket the target); ` +
    `"≥" means even the smallest ef tried is above the target, "—" that the curve never reaches it. ` +
    `Memory: "lib MB" is the library's own figure where it has one, "RSS MB" the growth of the process's resident set over the build (bench/README.md says what each library's figure is).`);
  lines.push('');
  const head = ['library', 'build s', 'lib MB', 'RSS MB'];
  for (const t of TARGETS) head.push(`QPS @${t}`, ...REFERENCES.map((r) => `× ${r}`));
  head.push('max recall');
  lines.push(`| ${head.join(' | ')} |`, `|${head.map((h, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`);
  for (const c of cs) {
    const row = [c.label, c.build ? c.build.build_s.toFixed(1) : '—', mb(c.build?.lib_mb), mb(c.build?.rss_delta_mb)];
    for (const t of TARGETS) {
      const at = qpsAtRecall(c.points, t);
      row.push(at ? `${at.bound}${fmtQps(at.qps)}` : '—');
      for (const ref of REFERENCES) row.push(at ? ratio(at.qps, at.bound, ref, t) : '—');
    }
    row.push(c.points.length ? Math.max(...c.points.map((p) => p.recall)).toFixed(4) : '—');
    lines.push(`| ${row.join(' | ')} |`);
  }
  lines.push(...interleavedTable(records, d));
  const errors = records.filter((r) => r.type === 'error');
  if (errors.length) {
    lines.push('', 'Failed:');
    for (const e of errors) lines.push(`- ${e.adapter ?? e.library}: ${e.error}`);
  }
  const notes = cs.filter((c) => c.build?.notes);
  if (notes.length) {
    lines.push('', 'Notes:');
    for (const c of notes) lines.push(`- ${c.label} (${c.build.version}; ${JSON.stringify(c.build.params)}): ${c.build.notes}`);
  }
  lines.push('', '<details><summary>Every point of the sweep</summary>', '');
  lines.push(`| library | ef | recall@${d.k} | QPS | ${REFERENCES.map((r) => `× ${r}`).join(' | ')} |`,
    `| --- | ---: | ---: | ---: | ${REFERENCES.map(() => '---:').join(' | ')} |`);
  for (const c of cs) {
    for (const p of c.points) {
      const row = [c.label, p.ef, p.recall.toFixed(4), fmtQps(p.qps)];
      for (const ref of REFERENCES) {
        const at = refAt(ref, p.recall);
        row.push(!at ? '—' : `${at.bound ? '≤' : ''}${fmtRatio(p.qps / at.qps)}`);
      }
      lines.push(`| ${row.join(' | ')} |`);
    }
  }
  lines.push('', '</details>');
  return lines.join('\n');
}

/**
 * Under --interleave: the ratio at matched recall run by run -- run r's
 * curve of each library is its r-th pass at every ef, and those passes sat
 * next to the reference's in time -- with the median, the range and how many
 * runs reached 1.0×.  This is the figure that survives a noisy machine; the
 * main table's best-of-runs ratios can pair a lucky pass with an unlucky one.
 */
function interleavedTable(records, d) {
  const passes = records.filter((r) => r.type === 'pass');
  if (!passes.length) return [];
  const info = new Map();
  for (const r of records) if (r.type === 'build') info.set(r.adapter, { label: labelOf(r), recall: new Map() });
  for (const r of records) if (r.type === 'search' && info.has(r.adapter)) info.get(r.adapter).recall.set(r.ef, r.recall);
  const names = [...new Set(passes.map((p) => p.adapter))].filter((a) => info.has(a));
  const refs = REFERENCES_ALL.filter((r) => names.includes(r));
  if (!refs.length) return [];
  const runs = Math.max(...passes.map((p) => p.run)) + 1;
  const at = (adapter, run, target) => qpsAtRecall(passes
    .filter((p) => p.adapter === adapter && p.run === run && info.get(adapter).recall.has(p.ef))
    .map((p) => ({ recall: info.get(adapter).recall.get(p.ef), qps: d.queries / p.seconds })), target);
  const cell = (adapter, ref, target) => {
    const ratios = [];
    for (let run = 0; run < runs; run++) {
      const a = at(adapter, run, target), b = at(ref, run, target);
      if (a && b && !a.bound && !b.bound) ratios.push(a.qps / b.qps);
    }
    if (!ratios.length) return '—';
    ratios.sort((x, y) => x - y);
    const mid = ratios.length >> 1;
    const median = ratios.length % 2 ? ratios[mid] : Math.sqrt(ratios[mid - 1] * ratios[mid]);
    const wins = ratios.filter((v) => v >= 1).length;
    return `${fmtRatio(median)} (${fmtRatio(ratios[0])}–${fmtRatio(ratios[ratios.length - 1])}; ≥1 in ${wins}/${ratios.length})`;
  };
  const lines = ['', `**Interleaved passes** (\`--interleave 1\`): all ${names.length} libraries built and waiting, ` +
    `their timed passes alternating (for each ef, for each of ${runs} runs, one pass of each, the order rotating). ` +
    'Ratio at matched recall per run (run r = every library\'s r-th pass at each ef): median (range; runs at ≥ 1.0×).', ''];
  const head = ['library'];
  for (const t of TARGETS) for (const r of refs) head.push(`@${t} × ${r}`);
  lines.push(`| ${head.join(' | ')} |`, `|${head.map((h, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`);
  for (const a of names) {
    if (refs.includes(a) && refs.length === 1) continue;
    const row = [info.get(a).label];
    for (const t of TARGETS) for (const r of refs) row.push(r === a ? '—' : cell(a, r, t));
    lines.push(`| ${row.join(' | ')} |`);
  }
  return lines;
}

// ------------------------------------------------------------------- main

export function readJsonLines(file) {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

export function stamp() {
  const t = new Date();
  const p = (n) => String(n).padStart(2, '0');
  return `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())}-${p(t.getHours())}${p(t.getMinutes())}`;
}

async function main() {
  const o = parseOptions(process.argv.slice(2));
  const resultsDir = join(ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const name = stamp();
  let runInfo;
  let records = [];

  if (o.reportOnly) {
    const files = o.reportOnly.split(',');
    const all = files.flatMap((f) => readJsonLines(f).map((r) => ({ ...r, from: r.from ?? f })));
    runInfo = all.find((r) => r.type === 'run');
    records = all.filter((r) => r.type !== 'run');
  } else {
    // Read before anything is written: --out may name a file merged here.
    const toMerge = [];
    for (const file of o.merge.split(',').filter(Boolean)) {
      const theirs = readJsonLines(file);
      const info = theirs.find((r) => r.type === 'run');
      if (info && (info.base !== o.base || info.queries !== o.queries || info.k !== o.k)) {
        console.error(`merge: ${file} has base ${info.base} x ${info.queries} queries, k ${info.k}; ` +
          `this run ${o.base} x ${o.queries}, k ${o.k}: skipped`);
        continue;
      }
      toMerge.push([file, theirs]);
    }
    const dataDir = join(ROOT, 'bench', 'data');
    ensureData(o, dataDir);
    const gt = groundTruth(o, dataDir);
    const neighborsDir = join(resultsDir, `neighbors-${process.pid}`);
    const out = o.out ?? join(resultsDir, `hnsw-${name}.json`);
    mkdirSync(neighborsDir, { recursive: true });
    runInfo = {
      type: 'run', date: new Date().toISOString(), base: o.base, queries: o.queries, k: o.k, M: o.M,
      efc: o.efc, runs: o.runs, interleave: o.interleave, efs: o.efs, edgevec_efs: o.edgevecEfs, shoal_kind: o.shoalKind,
      cpu: cpus()[0]?.model ?? 'unknown CPU', cores: cpus().length, node: process.versions.node,
    };
    try {
      // Earlier results (e.g. the peers at full size) join this run's, except
      // for the adapters this run measures again.  Everything is written as
      // it comes, so an interrupted run keeps what it had.
      const running = new Set(adapters(o).map((a) => a.name));
      for (const [file, theirs] of toMerge)
        for (const r of theirs)
          if (r.type !== 'run' && !running.has(r.adapter)) records.push({ ...r, from: r.from ?? relative(ROOT, file) });
      writeFileSync(out, [runInfo, ...records].map((r) => JSON.stringify(r) + '\n').join(''));
      const list = adapters(o);
      const save = (got) => {
        appendFileSync(out, got.map((r) => JSON.stringify(r) + '\n').join(''));
        records.push(...got);
      };
      // Adapters with their own efs (edgevec) cannot take turns: they run alone.
      if (o.interleave) save(await runInterleaved(list.filter((a) => !a.efs), o, dataDir, neighborsDir, gt));
      for (const adapter of list.filter((a) => !o.interleave || a.efs)) save(await runOne(adapter, o, dataDir, neighborsDir, gt));
    } finally {
      rmSync(neighborsDir, { recursive: true, force: true });
    }
    console.error(`\nresults: ${relative(ROOT, out)}`);
    o.resultsFile = out;
  }

  const md = report({ ...runInfo, date: runInfo.date.slice(0, 10) }, records, o);
  const tableFile = o.table ?? join(resultsDir, `hnsw-${name}.md`);
  writeFileSync(tableFile, md + '\n');
  process.stdout.write(md + '\n');
  console.error(`table:   ${relative(ROOT, tableFile)}`);

  mkdirSync(dirname(resolve(o.plot)), { recursive: true });
  const plotInput = join(resultsDir, `.plot-${process.pid}.json`);
  writeFileSync(plotInput, JSON.stringify({ run: runInfo, curves: curves(records) }));
  const r = spawnSync(PY, [join(HERE, 'plot.py'), plotInput, o.plot], { stdio: 'inherit', env: threadEnv() });
  rmSync(plotInput, { force: true });
  if (r.status !== 0) console.error('plot: failed (python3-matplotlib missing? see bench/setup.sh)');
  else console.error(`plot:    ${relative(ROOT, o.plot)}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => { console.error(err.stack ?? String(err)); process.exit(1); });
}
