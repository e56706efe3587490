#!/usr/bin/env node
// run.mjs -- the filtered-search benchmark (issue 9), end to end:
//
//   node bench/filter/run.mjs [--base 60000] [--queries 1000] [--runs 3] [--k 10]
//        [--kinds hnsw,ivf-flat,ivf-pq4] [--efs 64,128,256] [--nprobes 16,32,64]
//        [--predicate-queries 200] [--sweep-below 0.99] [--skip-js 1] [--out f.json] [--table f.md]
//        [--report-only f.json]
//
// 1. data: bench/hnsw/prepare_data.py writes the .fvecs and
//    fashion-mnist-base.labels if missing (no ground truth: the exact
//    filtered truth comes from the native program's flat index);
// 2. build/bench_filter_native (bench/filter_native.c): exact truth, then
//    HNSW, IVF-Flat and IVF-PQ4 + rerank, each path of each filter;
// 3. bench/filter/shoal-wasm.mjs: the same HNSW through the npm package,
//    reading the native program's truth.
// The two programs run one after the other, never at once, each on one
// thread (OMP/OPENBLAS/MKL_NUM_THREADS=1 too).  QPS is the median of --runs
// passes (bench/filter_native.c says how passes are interleaved).  The
// predicate path of the JS program calls a JS function for each of the
// 60,000 records on every search (~13 QPS), so it is timed on the first
// --predicate-queries queries (default 200; its recall is that of those).
//
// Output: bench/results/filter-<date>-<time>.json (JSON Lines: a run record,
// then every record of both programs), bench/results/filter-<date>-<time>/
// (truth and the HNSW results the programs exchange), and the Markdown for
// docs/BENCHMARKS.md on stdout and in bench/results/filter-<date>-<time>.md.

import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJsonLines, stamp, threadEnv } from '../hnsw/run.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const PY = '/usr/bin/python3';
const TARGET = 0.95;

function parseOptions(argv) {
  const o = {
    base: 60000, queries: 1000, runs: 3, k: 10, kinds: 'hnsw,ivf-flat,ivf-pq4',
    efs: '64,128,256', nprobes: '16,32,64', predicateQueries: 200, sweepBelow: 0.99, skipJs: 0,
    native: join(ROOT, 'build', 'bench_filter_native'), out: null, table: null, reportOnly: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in o)) throw new Error(`unknown option ${argv[i]} (see the top of bench/filter/run.mjs)`);
    const value = argv[++i];
    if (value === undefined) throw new Error(`${argv[i - 1]} needs a value`);
    o[key] = typeof o[key] === 'number' ? Number(value) : value;
  }
  return o;
}

function cpuInfo() {
  let flags = '';
  try {
    flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:\s*(.*)$/m)?.[1] ?? '';
  } catch { /* not Linux */ }
  const has = (f) => flags.split(' ').includes(f);
  const lscpu = spawnSync('lscpu', [], { encoding: 'utf8' }).stdout ?? '';
  const field = (name) => lscpu.match(new RegExp(`^${name}:\\s*(.*)$`, 'm'))?.[1]?.trim();
  return {
    cpu: field('Model name') ?? cpus()[0]?.model ?? 'unknown CPU',
    family: field('CPU family'), model: field('Model'), cores: cpus().length,
    hypervisor: field('Hypervisor vendor') ?? null,
    avx2: has('avx2'), fma: has('fma'), avx512f: has('avx512f'),
  };
}

// One program, its JSON lines collected (stderr passed through).
function runProgram(name, cmd, args) {
  console.error(`\n== ${name}: ${[cmd, ...args].map((p) => (p.startsWith(ROOT + '/') ? relative(ROOT, p) : p)).join(' ')}`);
  const started = Date.now();
  return new Promise((done) => {
    const records = [];
    let pending = '';
    let tail = '';
    const child = spawn(cmd, args, { cwd: ROOT, env: threadEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const onLine = (line) => {
      if (!line.trim()) return;
      try { records.push({ ...JSON.parse(line), program: name }); } catch { console.error(`   (not JSON) ${line}`); }
    };
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) { onLine(pending.slice(0, nl)); pending = pending.slice(nl + 1); }
    });
    child.stderr.on('data', (chunk) => { process.stderr.write(chunk); tail = (tail + chunk).slice(-2000); });
    child.on('error', (err) => { tail += String(err); });
    child.on('close', (code, signal) => {
      if (pending) onLine(pending);
      const seconds = (Date.now() - started) / 1000;
      if (code !== 0) records.push({ type: 'error', program: name, error: `exit ${code ?? signal}: ${tail.trim().split('\n').slice(-3).join(' | ')}` });
      records.push({ type: 'time', program: name, seconds: +seconds.toFixed(1) });
      console.error(`   (${seconds.toFixed(0)} s)`);
      done(records);
    });
  });
}

// ---------------------------------------------------------------- report

const fmtQps = (q) => (q === undefined ? '—' : q >= 100 ? q.toFixed(0) : q.toFixed(1));
const fmtR = (r) => (r === undefined ? '—' : r.toFixed(4));
const ratio = (a, b) => (a === undefined || b === undefined ? '—' : `${(a / b).toFixed(a / b >= 10 ? 0 : a / b >= 1 ? 1 : 2)}×`);
const KIND_NAMES = { hnsw: 'HNSW (M 16, efC 200, ef 64)', 'ivf-flat': 'IVF-Flat (nlist 256, nprobe 16)', 'ivf-pq4': 'IVF-PQ 392×4-bit + rerank 20 (nlist 256, nprobe 16)' };

export function report(run, records) {
  const filters = records.filter((r) => r.type === 'filter');
  const truths = records.filter((r) => r.type === 'truth');
  const searches = records.filter((r) => r.type === 'search');
  const builds = records.filter((r) => r.type === 'build');
  const find = (lib, kind, filter, path, knob) => searches.find((r) => r.library === lib && r.kind === kind &&
    r.filter === filter && r.path === path && (knob === undefined || (kind === 'hnsw' ? r.ef : r.nprobe) === knob));
  const lines = [];
  const L = (s = '') => lines.push(s);
  const cpu = run.cpuInfo ?? {};
  L(`Generated by \`bench/filter/run.mjs\` on ${run.date.slice(0, 10)}: ${run.base.toLocaleString('en-US')} records, ` +
    `${run.queries.toLocaleString('en-US')} queries, k = ${run.k}, one thread, one query per call, QPS = median of ${run.runs} passes.`);
  L(`CPU: ${cpu.cpu} (family ${cpu.family}, model ${cpu.model}), ${cpu.cores} cores${cpu.hypervisor ? `, ${cpu.hypervisor} guest` : ''}; ` +
    `AVX2 ${cpu.avx2 ? 'yes' : 'no'}, FMA ${cpu.fma ? 'yes' : 'no'}, AVX-512 ${cpu.avx512f ? 'yes' : 'no'}. ` +
    `Native kernels: ${run.nativeSimd ?? '?'}; wasm: ${builds.find((b) => b.library === 'shoal-wasm')?.simd ?? '—'}, Node ${run.node}.`);
  const during = run.loadDuring ? `; during (every 30 s): min ${run.loadDuring.min}, median ${run.loadDuring.median}, ` +
    `max ${run.loadDuring.max} (the benchmark itself is 1.0 of it)` : '';
  L(`Load average (1 min) before / after: ${run.loadBefore} / ${run.loadAfter ?? '?'}${during}.`);
  L();
  L('| filter | JSON | matches | selectivity | sampled estimate | compile µs | match ns/record | post-filter k\' | exact (flat) QPS |');
  L('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const f of filters) {
    const kp = Math.min(65536, Math.ceil(run.k / f.selectivity));
    const t = truths.find((x) => x.filter === f.name);
    L(`| ${f.name} | \`${JSON.stringify(f.filter)}\` | ${f.matches} | ${(f.selectivity * 100).toFixed(3)}% | ${f.sample_estimate} | ` +
      `${f.compile_us.toFixed(2)} | ${f.match_ns.toFixed(0)} | ${kp} | ${fmtQps(t?.flat_qps)} |`);
  }
  for (const kind of ['hnsw', 'ivf-flat', 'ivf-pq4']) {
    const none = find('shoal-native', kind, 'none', 'none');
    if (!none) continue;
    const b = builds.find((x) => x.library === 'shoal-native' && x.kind === kind);
    const knob = kind === 'hnsw' ? 64 : 16;
    L();
    L(`**${KIND_NAMES[kind]}**, native (built in ${b.build_s.toFixed(1)} s; unfiltered: recall ${fmtR(none.recall)}, ${fmtQps(none.qps)} QPS)`);
    L();
    L('| selectivity | in-traversal recall | QPS | post-filter recall | QPS | bitmap recall | QPS | in-traversal / post-filter QPS |');
    L('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const f of filters) {
      const w = find('shoal-native', kind, f.name, 'where', knob), p = find('shoal-native', kind, f.name, 'post'),
        m = find('shoal-native', kind, f.name, 'bitmap');
      L(`| ${f.name} | ${fmtR(w?.recall)} | ${fmtQps(w?.qps)} | ${fmtR(p?.recall)} | ${fmtQps(p?.qps)} | ` +
        `${fmtR(m?.recall)} | ${fmtQps(m?.qps)} | ${ratio(w?.qps, p?.qps)} |`);
    }
  }
  const split = searches.filter((r) => r.library === 'shoal-native' && r.same_class && (r.path === 'where' || r.path === 'bitmap') &&
    (r.kind === 'hnsw' ? r.ef === 64 : r.nprobe === 16));
  if (split.length) {
    L();
    L('**By query class** (filters on `category`: queries whose own image label is that category, and the others; ' +
      'recall@k and mean ms per search, default ef / nprobe):');
    L();
    L('| kind | selectivity | path | ef / nprobe | same-class queries | recall | ms | other queries | recall | ms |');
    L('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of split)
      L(`| ${r.kind} | ${r.filter} | ${r.path} | ${r.kind === 'hnsw' ? r.ef : r.nprobe} | ${r.same_class.queries} | ` +
        `${fmtR(r.same_class.recall)} | ${r.same_class.ms.toFixed(2)} | ${r.other_class.queries} | ` +
        `${fmtR(r.other_class.recall)} | ${r.other_class.ms.toFixed(2)} |`);
  }
  const jsNone = find('shoal-wasm', 'hnsw', 'none', 'none');
  if (jsNone) {
    const b = builds.find((x) => x.library === 'shoal-wasm');
    L();
    L(`**HNSW through the npm package** (wasm SIMD128, Node ${run.node}; built in ${b.build_s.toFixed(1)} s; unfiltered: recall ` +
      `${fmtR(jsNone.recall)}, ${fmtQps(jsNone.qps)} QPS)`);
    L();
    L('| selectivity | filter object recall | QPS | JS predicate recall | QPS | allowList recall | QPS | object / predicate QPS | same as native |');
    L('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const f of filters) {
      const o = find('shoal-wasm', 'hnsw', f.name, 'object'), p = find('shoal-wasm', 'hnsw', f.name, 'predicate'),
        a = find('shoal-wasm', 'hnsw', f.name, 'allowlist');
      L(`| ${f.name} | ${fmtR(o?.recall)} | ${fmtQps(o?.qps)} | ${fmtR(p?.recall)} | ${fmtQps(p?.qps)} | ${fmtR(a?.recall)} | ` +
        `${fmtQps(a?.qps)} | ${ratio(o?.qps, p?.qps)} | ${o?.same_as_native === undefined ? '—' : `${(o.same_as_native * 100).toFixed(1)}%`} |`);
    }
    const p = searches.find((r) => r.library === 'shoal-wasm' && r.path === 'predicate');
    if (p && p.queries !== run.queries) L(`\nThe predicate path is timed on the first ${p.queries} queries (its recall is theirs).`);
  }
  L();
  L(`**Target: in-traversal recall@${run.k} ≥ ${TARGET} at the default ef / nprobe**, and the further values ` +
    `(in-traversal, then bitmap: recall, QPS; IVF only where the default is below ${run.sweep_below ?? 0.99}):`);
  L();
  L('| kind | selectivity | recall at default | target | further values: in-traversal | bitmap |');
  L('| --- | --- | ---: | --- | --- | --- |');
  for (const kind of ['hnsw', 'ivf-flat', 'ivf-pq4']) {
    for (const f of filters) {
      const pts = searches.filter((r) => r.library === 'shoal-native' && r.kind === kind && r.filter === f.name && r.path === 'where')
        .sort((a, b) => (a.ef || a.nprobe) - (b.ef || b.nprobe));
      if (!pts.length) continue;
      const [d, ...more] = pts;
      const knob = kind === 'hnsw' ? 'ef' : 'nprobe';
      const bm = more.map((r) => find('shoal-native', kind, f.name, 'bitmap', r[knob])).filter(Boolean);
      const fmt = (list) => list.map((r) => `${knob} ${r[knob]}: ${fmtR(r.recall)}, ${fmtQps(r.qps)}`).join('; ');
      L(`| ${kind} | ${f.name} | ${fmtR(d.recall)} | ${d.recall >= TARGET ? 'met' : '**missed**'} | ${fmt(more)} | ${fmt(bm)} |`);
    }
    const jsPts = kind === 'hnsw' ? searches.filter((r) => r.library === 'shoal-wasm' && r.path === 'object') : [];
    for (const r of jsPts) L(`| hnsw (npm, filter object) | ${r.filter} | ${fmtR(r.recall)} | ${r.recall >= TARGET ? 'met' : '**missed**'} | | |`);
  }
  const times = records.filter((r) => r.type === 'time');
  if (times.length) L(`\nRun time: ${times.map((t) => `${t.program} ${Math.round(t.seconds)} s`).join(', ')}.`);
  const errors = records.filter((r) => r.type === 'error');
  for (const e of errors) L(`\nERROR (${e.program}): ${e.error}`);
  return lines.join('\n');
}

async function main() {
  const o = parseOptions(process.argv.slice(2));
  const resultsDir = join(ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const name = `filter-${stamp()}`;
  let run, records;
  if (o.reportOnly) {
    const all = readJsonLines(o.reportOnly);
    run = all.find((r) => r.type === 'run');
    records = all.filter((r) => r.type !== 'run');
  } else {
    const dataDir = join(ROOT, 'bench', 'data');
    const need = ['fashion-mnist-base.fvecs', 'fashion-mnist-query.fvecs', 'fashion-mnist-base.labels',
      'fashion-mnist-query.labels'];
    if (!need.every((f) => existsSync(join(dataDir, f)))) {
      const r = spawnSync(PY, [join(ROOT, 'bench', 'hnsw', 'prepare_data.py'), '--base'], { stdio: 'inherit', env: threadEnv() });
      if (r.status !== 0) throw new Error('prepare_data.py failed (is dataset-fashion-mnist installed? see bench/setup.sh)');
    }
    if (!existsSync(o.native)) throw new Error(`${relative(ROOT, o.native)} is missing: run make build/bench_filter_native`);
    const exchange = join(resultsDir, name);
    mkdirSync(exchange, { recursive: true });
    const out = o.out ?? join(resultsDir, `${name}.json`);
    run = {
      type: 'run', date: new Date().toISOString(), base: o.base, queries: o.queries, k: o.k, runs: o.runs,
      kinds: o.kinds, efs: o.efs, nprobes: o.nprobes, predicate_queries: o.predicateQueries, sweep_below: o.sweepBelow,
      cpuInfo: cpuInfo(), node: process.versions.node, loadBefore: loadavg()[0].toFixed(2),
    };
    writeFileSync(out, JSON.stringify(run) + '\n');
    records = [];
    const common = ['--base', String(o.base), '--queries', String(o.queries), '--k', String(o.k), '--runs', String(o.runs)];
    const started = Date.now();
    // The machine is shared: the 1-minute load average every 30 s, reported.
    const loads = [];
    const sampler = setInterval(() => loads.push(loadavg()[0]), 30000);
    const native = await runProgram('filter_native', o.native,
      [...common, '--kinds', o.kinds, '--efs', o.efs, '--nprobes', o.nprobes, '--sweep-below', String(o.sweepBelow),
        '--out', exchange]);
    appendFileSync(out, native.map((r) => JSON.stringify(r) + '\n').join(''));
    records.push(...native);
    if (!o.skipJs && !native.some((r) => r.type === 'error') && o.kinds.split(',').includes('hnsw')) {
      const js = await runProgram('shoal-wasm', 'node', [join(HERE, 'shoal-wasm.mjs'), ...common, '--truth', exchange,
        '--predicate-queries', String(o.predicateQueries)]);
      appendFileSync(out, js.map((r) => JSON.stringify(r) + '\n').join(''));
      records.push(...js);
    }
    clearInterval(sampler);
    run.nativeSimd = native.find((r) => r.type === 'run')?.simd;
    run.loadAfter = loadavg()[0].toFixed(2);
    if (loads.length) {
      const sorted = [...loads].sort((a, b) => a - b);
      run.loadDuring = { min: +sorted[0].toFixed(2), median: +sorted[sorted.length >> 1].toFixed(2),
        max: +sorted[sorted.length - 1].toFixed(2), samples: loads.length };
    }
    run.seconds = Math.round((Date.now() - started) / 1000);
    // The run record is rewritten with what is known only at the end.
    const lines = readFileSync(out, 'utf8').split('\n');
    lines[0] = JSON.stringify(run);
    writeFileSync(out, lines.join('\n'));
    console.error(`\nresults: ${relative(ROOT, out)} (${run.seconds} s)`);
  }
  run.nativeSimd ??= records.find((r) => r.type === 'run')?.simd;
  const md = report(run, records);
  const tableFile = o.table ?? (o.reportOnly ? o.reportOnly.replace(/\.json$/, '') + '.md' : join(resultsDir, `${name}.md`));
  writeFileSync(tableFile, md + '\n');
  process.stdout.write(md + '\n');
  console.error(`table:   ${relative(ROOT, resolve(tableFile))}`);
}

main().catch((err) => { console.error(err.stack ?? String(err)); process.exit(1); });
