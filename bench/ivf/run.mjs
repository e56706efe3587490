#!/usr/bin/env node
// run.mjs -- Shoal's IVF beside faiss's (python3-faiss) on Fashion-MNIST.
//
//   node bench/ivf/run.mjs [--base 60000] [--queries 2000] [--runs 2] [--nlist 256]
//        [--nprobes 1,2,3,4,6,8,12,16,24,32,64] [--pq8-m 196] [--pq4-m 392] [--pq4-small-m 196]
//        [--rerank 10,20,50,100] [--ext-rerank 50,100] [--only a,b] [--skip a,b]
//        [--native build/bench_ivf_native]
//        [--merge f.json,...] [--report-only f.json,...]
//        [--out f.json] [--table f.md] [--plot docs/img/ivf-fashion-mnist.png]
//
// The HNSW benchmark's protocol and machinery (bench/hnsw/run.mjs: data and
// exact ground truth, one process per adapter with one thread, recall from
// the neighbour files, matched-recall interpolation); what differs is the
// sweep (nprobe instead of ef, and rerank depth R as separate curves), the
// adapters, and the report.
//
// Adapters (one build each; a rerank list is swept on the one build):
//   shoal-flat   build/bench_ivf_native --quantizer flat
//   shoal-sq8    ... --quantizer sq8                  (no rerank)
//   shoal-pq8    ... --quantizer pq --pq-bits 8 --pq-m 196 --rerank <list>
//   shoal-pq4    ... --quantizer pq --pq-bits 4 --pq-m 392 --rerank <list> (fast scan)
//   shoal-pq4-small  ... --pq-m 196 (4 dims per sub-quantizer: pq_tables auto uses
//                per-list tables)
//   shoal-pq4-ext    ... --pq-m 196 --pq-tables 1 --rows external --rerank <ext list>:
//                rerank rows left in the segment file, read per candidate
//                (the configuration for issue 15's memory target)
//   shoal-wasm-flat, shoal-wasm-pq4, shoal-wasm-pq4-ext, shoal-wasm-pq4-ext-sync
//                bench/ivf/shoal-wasm.mjs: the same through the npm package's
//                SIMD128 build (group shoal-wasm); -ext opens the saved
//                segment with Index.open in a fresh process (FileHandle
//                reads; -sync: a function over fs.readSync)
//   faiss-flat   bench/ivf/faiss_ivf.py --config flat   IndexIVFFlat
//   faiss-sq8    ... --config sq8    IndexIVFScalarQuantizer(QT_8bit)
//   faiss-pq8    ... --config pq     IndexIVFPQ(196 x 8 bits) + IndexRefineFlat(k_factor R/k)
//   faiss-pq4    ... --config pqfs   IndexIVFPQFastScan(392 x 4 bits) + IndexRefineFlat
// Groups: shoal (native), shoal-wasm, faiss.
//
// Output: bench/results/ivf-<date>-<time>.json (JSON Lines as in the HNSW
// bench; build records carry train_s, add_s, codes_mb, rerank_mb, lib_mb;
// search records nprobe, rerank, qps, recall), the Markdown table on stdout
// and in bench/results/ivf-<date>-<time>.md, and the plot.

import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ensureData, groundTruth, qpsAtRecall, readJsonLines, runOne, stamp, threadEnv,
} from '../hnsw/run.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const PY = '/usr/bin/python3';
const TARGETS = [0.9, 0.95, 0.99];
const MAIN_TARGET = 0.95;
const REFS = [['faiss', 'ivf-flat'], ['faiss', 'ivf-sq8']];

// What `grep -o 'avx[^ ]*\|fma\|sse4_2' /proc/cpuinfo | sort -u` says, on one line.
function cpuFlags() {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    return [...new Set(text.match(/\b(avx[^ \n]*|fma|sse4_2)\b/g) ?? [])].sort().join(' ');
  } catch {
    return null;
  }
}

function parseOptions(argv) {
  const o = {
    base: 60000, queries: 2000, runs: 2, k: 10, nlist: 256,
    nprobes: '1,2,3,4,6,8,12,16,24,32,64', pq8M: 196, pq4M: 392, pq4SmallM: 196, rerank: '10,20,50,100',
    extRerank: '50,100',
    native: join(ROOT, 'build', 'bench_ivf_native'),
    only: null, skip: '', merge: '', reportOnly: null, out: null, table: null,
    plot: join(ROOT, 'docs', 'img', 'ivf-fashion-mnist.png'),
  };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase());
    if (!(key in o)) throw new Error(`unknown option ${argv[i]} (see the top of bench/ivf/run.mjs)`);
    const value = argv[++i];
    if (value === undefined) throw new Error(`${argv[i - 1]} needs a value`);
    o[key] = typeof o[key] === 'number' ? Number(value) : value;
  }
  return o;
}

function adapters(o) {
  const native = resolve(o.native);
  const needNative = { path: native, hint: 'run make build/bench_ivf_native' };
  const common = (o2, dataDir, neighborsDir) => ['--data', dataDir, '--base', String(o2.base),
    '--queries', String(o2.queries), '--k', String(o2.k), '--runs', String(o2.runs),
    '--nlist', String(o2.nlist), '--nprobes', o2.nprobes, '--neighbors', neighborsDir];
  const shoal = (name, extra) => ({
    name, group: 'shoal', cmd: [native], needs: needNative,
    argsFor: (o2, d, n) => [...common(o2, d, n), ...extra],
  });
  const faiss = (name, extra) => ({
    name, group: 'faiss', cmd: [PY, join(HERE, 'faiss_ivf.py')],
    argsFor: (o2, d, n) => [...common(o2, d, n), ...extra],
  });
  const wasm = (name, extra) => ({
    name, group: 'shoal-wasm', cmd: ['node', '--expose-gc', join(HERE, 'shoal-wasm.mjs')],
    needs: { path: join(ROOT, 'js', 'dist', 'shoal-simd.wasm'), hint: 'run make wasm' },
    argsFor: (o2, d, n) => [...common(o2, d, n), ...extra],
  });
  const list = [
    shoal('shoal-flat', ['--quantizer', 'f32']),
    shoal('shoal-sq8', ['--quantizer', 'sq8']),
    shoal('shoal-pq8', ['--quantizer', 'pq', '--pq-bits', '8', '--pq-m', String(o.pq8M), '--rerank', o.rerank]),
    shoal('shoal-pq4', ['--quantizer', 'pq', '--pq-bits', '4', '--pq-m', String(o.pq4M), '--rerank', o.rerank]),
    shoal('shoal-pq4-small', ['--quantizer', 'pq', '--pq-bits', '4', '--pq-m', String(o.pq4SmallM), '--rerank', o.rerank]),
    shoal('shoal-pq4-ext', ['--quantizer', 'pq', '--pq-bits', '4', '--pq-m', String(o.pq4SmallM), '--pq-tables', '1',
      '--rows', 'external', '--rerank', o.extRerank]),
    wasm('shoal-wasm-flat', ['--quantizer', 'f32']),
    wasm('shoal-wasm-pq4', ['--quantizer', 'pq', '--pq-bits', '4', '--pq-m', String(o.pq4M), '--rerank', o.rerank]),
    wasm('shoal-wasm-pq4-ext', ['--quantizer', 'pq', '--pq-bits', '4', '--pq-m', String(o.pq4SmallM), '--pq-tables', '1',
      '--rows', 'external', '--rerank', o.extRerank]),
    wasm('shoal-wasm-pq4-ext-sync', ['--quantizer', 'pq', '--pq-bits', '4', '--pq-m', String(o.pq4SmallM), '--pq-tables', '1',
      '--rows', 'external', '--reader', 'sync', '--rerank', o.extRerank]),
    faiss('faiss-flat', ['--config', 'flat']),
    faiss('faiss-sq8', ['--config', 'sq8']),
    faiss('faiss-pq8', ['--config', 'pq', '--pq-m', String(o.pq8M), '--rerank', o.rerank]),
    faiss('faiss-pq4', ['--config', 'pqfs', '--pq-m', String(o.pq4M), '--rerank', o.rerank]),
  ];
  const pick = (spec) => new Set(spec.split(',').filter(Boolean));
  const only = o.only ? pick(o.only) : null;
  const skip = pick(o.skip);
  return list.filter((a) => (!only || only.has(a.name) || only.has(a.group)) && !skip.has(a.name) && !skip.has(a.group));
}

// ---------------------------------------------------------------- reporting

const labelOf = (r) => `${r.library === 'shoal-native' ? 'shoal' : r.library} ${r.variant}`;
const libRank = { 'shoal-native': 0, 'shoal-wasm': 1, faiss: 2 };

function curves(records) {
  const map = new Map();
  for (const r of records) {
    if (r.type !== 'build' && r.type !== 'search') continue;
    const label = labelOf(r);
    if (!map.has(label)) map.set(label, { label, library: r.library, variant: r.variant, build: null, points: [] });
    const c = map.get(label);
    if (r.type === 'build') c.build = r;
    else c.points.push({ nprobe: r.nprobe, rerank: r.rerank, qps: r.qps, recall: r.recall, read_kb: r.read_kb });
  }
  const cs = [...map.values()];
  for (const c of cs) {
    c.points.sort((a, b) => a.nprobe - b.nprobe);
    c.family = c.build?.family ?? c.variant.replace(/-r\d+$/, '');
    c.rerank = c.build?.params?.rerank ?? 0;
    c.at = Object.fromEntries(TARGETS.map((t) => [t, qpsAtRecall(c.points, t)]));
  }
  // Per library and family with rerank, the R with the best QPS at the main
  // target is the one plotted (the table shows every R).
  for (const c of cs) {
    if (!c.rerank) { c.plotted = true; continue; }
    const siblings = cs.filter((s) => s.library === c.library && s.family === c.family && s.rerank);
    const score = (s) => s.at[MAIN_TARGET]?.qps ?? -1;
    const best = siblings.reduce((a, b) => (score(b) > score(a) ? b : a));
    c.plotted = best === c;
    c.bestR = best === c && siblings.length > 1;
  }
  const famOrder = ['ivf-f32', 'ivf-sq8'];
  const flatOf = (f) => (f === 'ivf-flat' ? 'ivf-f32' : f); // faiss calls it ivf-flat
  const famRank = (f) => (famOrder.includes(f) ? famOrder.indexOf(f) : f.startsWith('ivf-pq8') ? 2
    : f.includes('-ext-sync') ? 7 : f.includes('-ext') ? 6 : f.startsWith('ivf-pq4') ? 3 + (f.endsWith('x392') ? 0 : 1) : 5);
  const rank = (c) => (libRank[c.library] ?? 3) * 100 + famRank(flatOf(c.family)) * 10;
  return cs.sort((a, b) => rank(a) - rank(b) || a.rerank - b.rerank);
}

const fmtQps = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
const fmtRatio = (v) => (v >= 10 ? v.toFixed(1) : v.toFixed(2)) + '×';

function report(run, records) {
  const cs = curves(records);
  const f32mb = (run.base * run.dim * 4) / 2 ** 20;
  const ref = Object.fromEntries(REFS.map(([lib, v]) => [v, cs.find((c) => c.library === lib && c.variant === v)]));
  const sq8mb = ref['ivf-sq8']?.build?.lib_mb;
  const ratio = (at, refName, t) => {
    const r = ref[refName]?.at[t];
    if (!at || !r) return '—';
    if (r.bound) return at.bound ? '—' : `≤${fmtRatio(at.qps / r.qps)}`;
    return `${at.bound}${fmtRatio(at.qps / r.qps)}`;
  };
  const mb = (v) => (v == null ? '—' : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  const x = (v) => (v == null || !Number.isFinite(v) ? '—' : `${v.toFixed(3)}×`);
  const L = [];
  L.push(`### IVF on Fashion-MNIST (${run.base.toLocaleString('en-US')} × ${run.dim}, L2, nlist = ${run.nlist})`);
  L.push('');
  L.push(`${run.queries.toLocaleString('en-US')} queries (the first of the 10,000 test images), one per call on one thread, best of ${run.runs} passes, ` +
    `nprobe swept over ${run.nprobes}; recall@${run.k} against exact ground truth. ${run.cpu}${run.flags ? ` (${run.flags})` : ''}, Node ${run.node}. ` +
    `Generated by \`bench/ivf/run.mjs\` on ${run.date.slice(0, 10)}. faiss is Debian's python3-faiss ${run.faiss ?? ''}: ` +
    '**a generic build without AVX2 kernels, so its single-query search is slower than a faiss built for this CPU**; ' +
    'each of its calls also pays ~2 µs of Python/SWIG overhead.');
  L.push('');
  L.push(`Memory in MiB (2^20 bytes); float32 vectors alone are ${mb(f32mb)} MiB. "codes" = what a scan reads ` +
    '(centroids, codebooks, per-list tables, ids/labels, codes; faiss: serialized IVF index, plus IVFPQ\'s resident precomputed table); ' +
    '"rerank" = the float32 copies held in memory for rerank (Shoal: rerank_bytes; faiss: IndexRefineFlat\'s copy; ' +
    '0 with rows external, read per query from the segment instead: "read KB/q"); ' +
    '"total" = Shoal memory_bytes (codes, copies, ids, per-record bookkeeping), faiss codes + copy; ' +
    '"÷ faiss SQ8" divides by faiss IVF-SQ8\'s total. QPS at matched recall is interpolated on each curve (log QPS linear in recall between the ' +
    'two nprobes that bracket it); "≥" = even nprobe 1 is above, "—" = never reached. R = rerank depth (candidates re-scored in float32).');
  L.push('');
  const head = ['index', 'train s', 'add s', 'codes MiB', 'rerank MiB', 'total MiB', 'total ÷ faiss SQ8'];
  for (const t of TARGETS) {
    head.push(`QPS @${t}`);
    if (t === MAIN_TARGET) head.push('× faiss IVFFlat', '× faiss IVF-SQ8');
    if (t === 0.99) head.push('× faiss IVF-SQ8');
  }
  head.push('max recall', 'read KB/q');
  L.push(`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`);
  for (const c of cs) {
    const b = c.build ?? {};
    const readKb = b.rows === 'external' ? c.points.map((p) => p.read_kb).filter((v) => v != null) : [];
    const row = [`${c.label}${c.bestR ? ' ★' : ''}`, b.train_s?.toFixed(1) ?? '—', b.add_s?.toFixed(1) ?? '—',
      mb(b.codes_mb), b.rerank_mb ? mb(b.rerank_mb) : b.rows === 'external' ? '0 (ext)' : '—', mb(b.lib_mb),
      x(sq8mb ? b.lib_mb / sq8mb : null)];
    for (const t of TARGETS) {
      const at = c.at[t];
      row.push(at ? `${at.bound}${fmtQps(at.qps)}` : '—');
      if (t === MAIN_TARGET) for (const [, v] of REFS) row.push(ratio(at, v, t));
      if (t === 0.99) row.push(ratio(at, 'ivf-sq8', t));
    }
    row.push(c.points.length ? Math.max(...c.points.map((p) => p.recall)).toFixed(4) : '—');
    row.push(readKb.length ? Math.max(...readKb).toFixed(0) : '—');
    L.push(`| ${row.join(' | ')} |`);
  }
  L.push('', `★ = the rerank depth with the best QPS at recall ${MAIN_TARGET} in its family (the one plotted). ` +
    '"read KB/q": bytes an external-rows search read per query in its best pass (the candidates\' rows; lists read for the first time too), the largest over the sweep.');
  const errors = records.filter((r) => r.type === 'error');
  if (errors.length) {
    L.push('', 'Failed:');
    for (const e of errors) L.push(`- ${e.adapter ?? e.library}: ${e.error}`);
  }
  const notes = [...new Map(cs.filter((c) => c.build?.notes).map((c) => [`${c.library} ${c.family}`, c])).values()];
  if (notes.length) {
    L.push('', 'Notes:');
    for (const c of notes) {
      const extra = c.build.rss_delta_mb != null ? ` RSS +${c.build.rss_delta_mb} MiB.` : '';
      L.push(`- ${c.library} ${c.family} (${JSON.stringify({ ...c.build.params, rerank: undefined })}): ${c.build.notes}${extra}`);
    }
  }
  L.push('', '<details><summary>Every point of the sweep</summary>', '');
  L.push(`| index | nprobe | recall@${run.k} | QPS | read KB/q |`, '| --- | ---: | ---: | ---: | ---: |');
  for (const c of cs) {
    for (const p of c.points)
      L.push(`| ${c.label} | ${p.nprobe} | ${p.recall.toFixed(4)} | ${fmtQps(p.qps)} | ${c.build?.rows === 'external' ? p.read_kb ?? '—' : '—'} |`);
  }
  L.push('', '</details>');
  return { md: L.join('\n'), cs, f32mb };
}

/** The issues' targets, judged on the measured curves. */
function targets(cs, f32mb) {
  const get = (lib, pred) => cs.filter((c) => c.library === lib && pred(c));
  const at = (c, t = MAIN_TARGET) => c?.at[t];
  const faissFlat = get('faiss', (c) => c.variant === 'ivf-flat')[0];
  const faissSq8 = get('faiss', (c) => c.variant === 'ivf-sq8')[0];
  const flat = get('shoal-native', (c) => c.variant === 'ivf-f32' || c.variant === 'ivf-flat')[0];
  const out = [];
  // Issue 15: resident memory <= 0.3x faiss IVF-SQ8's at recall >= 0.99.
  const sq8mb = faissSq8?.build?.lib_mb;
  if (sq8mb) {
    out.push(`Issue 15 — resident memory of IVF-PQ with rerank ≤ 0.3× faiss IVF-SQ8's (${sq8mb.toFixed(1)} MiB) at recall ≥ 0.99:`);
    for (const lib of ['shoal-native', 'shoal-wasm']) {
      const ok = get(lib, (c) => c.rerank && c.family.includes('pq') && at(c, 0.99))
        .map((c) => ({ c, mem: c.build.lib_mb / sq8mb }))
        .sort((p, q) => p.mem - q.mem || at(q.c, 0.99).qps - at(p.c, 0.99).qps);
      if (!ok.length) continue;
      const best = ok[0];
      const f99 = at(faissSq8, 0.99);
      out.push(`- ${lib}: ${best.c.label} holds ${best.c.build.lib_mb.toFixed(1)} MiB = **${best.mem.toFixed(3)}×** ` +
        `(**${best.mem <= 0.3 ? 'met' : 'missed'}**), ${fmtQps(at(best.c, 0.99).qps)} QPS at recall 0.99` +
        (f99 ? ` = ${fmtRatio(at(best.c, 0.99).qps / f99.qps)} faiss IVF-SQ8's ${fmtQps(f99.qps)}` : '') +
        `, max recall ${Math.max(...best.c.points.map((p) => p.recall)).toFixed(4)}.`);
    }
  }
  const pq4 = get('shoal-native', (c) => c.family.startsWith('ivf-pq4') && !c.family.includes('-ext') && c.rerank)
    .filter((c) => at(c)).sort((a, b) => at(b).qps - at(a).qps)[0];
  if (pq4 && at(faissSq8)) {
    const r = at(pq4).qps / at(faissSq8).qps;
    const codes = pq4.build.codes_mb / f32mb, total = pq4.build.lib_mb / f32mb;
    out.push('', 'Issue 4:');
    out.push(`- IVF-PQ fast scan + rerank (${pq4.label}) at recall ${MAIN_TARGET}: ${fmtQps(at(pq4).qps)} QPS = ` +
      `**${fmtRatio(r)}** faiss IVF-SQ8 (${fmtQps(at(faissSq8).qps)}) — target ≥ 2×: **${r >= 2 ? 'met' : 'missed'}**. ` +
      `Memory: codes ${codes.toFixed(3)}× float32 (target ≤ 0.15×: **${codes <= 0.15 ? 'met' : 'missed'}** by the codes), ` +
      `${total.toFixed(3)}× with its rerank copies in memory.`);
  }
  if (flat && at(flat) && at(faissFlat)) {
    const r = at(flat).qps / at(faissFlat).qps;
    out.push(`- IVF-Flat at recall ${MAIN_TARGET}: ${fmtQps(at(flat).qps)} QPS = **${fmtRatio(r)}** faiss IVFFlat ` +
      `(${fmtQps(at(faissFlat).qps)}) — target ≥ 1.5×: **${r >= 1.5 ? 'met' : 'missed'}**.`);
  }
  return out.join('\n');
}

// ------------------------------------------------------------------- main

async function main() {
  const o = parseOptions(process.argv.slice(2));
  const resultsDir = join(ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const name = stamp();
  let run;
  let records = [];
  if (o.reportOnly) {
    const all = o.reportOnly.split(',').flatMap((f) => readJsonLines(f).map((r) => ({ ...r, from: r.from ?? f })));
    run = all.find((r) => r.type === 'run');
    records = all.filter((r) => r.type !== 'run');
  } else {
    const toMerge = [];
    for (const file of o.merge.split(',').filter(Boolean)) {
      const theirs = readJsonLines(file);
      const info = theirs.find((r) => r.type === 'run');
      if (info && (info.base !== o.base || info.queries !== o.queries || info.k !== o.k || info.nlist !== o.nlist)) {
        console.error(`merge: ${file} has base ${info.base} x ${info.queries}, k ${info.k}, nlist ${info.nlist}: skipped`);
        continue;
      }
      toMerge.push([file, theirs]);
    }
    const dataDir = join(ROOT, 'bench', 'data');
    ensureData(o, dataDir);
    const gt = groundTruth(o, dataDir);
    const neighborsDir = join(resultsDir, `neighbors-ivf-${process.pid}`);
    const out = o.out ?? join(resultsDir, `ivf-${name}.json`);
    mkdirSync(neighborsDir, { recursive: true });
    const faissVersion = spawnSync(PY, ['-c', 'import faiss; print(faiss.__version__)'], { encoding: 'utf8' }).stdout.trim();
    run = {
      type: 'run', bench: 'ivf', date: new Date().toISOString(), base: o.base, queries: o.queries, k: o.k,
      dim: 784, nlist: o.nlist, runs: o.runs, nprobes: o.nprobes, rerank: o.rerank, pq8_m: o.pq8M, pq4_m: o.pq4M,
      faiss: faissVersion || null, cpu: cpus()[0]?.model ?? 'unknown CPU', cores: cpus().length, node: process.versions.node,
      flags: cpuFlags(),
    };
    try {
      const running = new Set(adapters(o).map((a) => a.name));
      for (const [file, theirs] of toMerge)
        for (const r of theirs)
          if (r.type !== 'run' && !running.has(r.adapter)) records.push({ ...r, from: r.from ?? relative(ROOT, file) });
      writeFileSync(out, [run, ...records].map((r) => JSON.stringify(r) + '\n').join(''));
      for (const adapter of adapters(o)) {
        const got = await runOne(adapter, o, dataDir, neighborsDir, gt);
        appendFileSync(out, got.map((r) => JSON.stringify(r) + '\n').join(''));
        records.push(...got);
      }
    } finally {
      rmSync(neighborsDir, { recursive: true, force: true });
    }
    console.error(`\nresults: ${relative(ROOT, out)}`);
  }

  const { md, cs, f32mb } = report(run, records);
  const text = `${md}\n\nTargets:\n\n${targets(cs, f32mb)}\n`;
  const tableFile = o.table ?? join(resultsDir, `ivf-${name}.md`);
  writeFileSync(tableFile, text);
  process.stdout.write(text);
  console.error(`table:   ${relative(ROOT, tableFile)}`);

  mkdirSync(dirname(resolve(o.plot)), { recursive: true });
  const plotInput = join(resultsDir, `.plot-ivf-${process.pid}.json`);
  const plotted = cs.filter((c) => c.plotted && c.points.length).map((c) => ({
    label: c.label, library: c.library, points: c.points,
    codes_x: c.build ? c.build.codes_mb / f32mb : null, total_x: c.build ? c.build.lib_mb / f32mb : null,
    total_mb: c.build?.lib_mb ?? null, rows: c.build?.rows ?? null,
  }));
  writeFileSync(plotInput, JSON.stringify({ run, curves: plotted, target: MAIN_TARGET }));
  const r = spawnSync(PY, [join(HERE, 'plot.py'), plotInput, o.plot], { stdio: 'inherit', env: threadEnv() });
  rmSync(plotInput, { force: true });
  if (r.status !== 0) console.error('plot: failed (python3-matplotlib missing? see bench/setup.sh)');
  else console.error(`plot:    ${relative(ROOT, o.plot)}`);
}

main().catch((err) => { console.error(err.stack ?? String(err)); process.exit(1); });
