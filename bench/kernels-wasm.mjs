#!/usr/bin/env node
// kernels-wasm.mjs -- wasm SIMD128 vs baseline distance kernels under Node.
//
//   node bench/kernels-wasm.mjs [--json] [--rounds N] [-- args for the .wasm]
//
// Runs build/bench/kernels-{simd,base}.wasm (bench/kernels_wasm.c, built by
// `make bench`) under node:wasi via wasi/run.mjs, each in its own Node
// process, alternating SIMD and baseline for N rounds (default 2) and keeping
// the best figure per kernel and dimension: each program already takes the
// best of 15 interleaved passes, and alternating whole processes also evens
// out slower periods on a shared machine.  Prints a Markdown table with the
// SIMD/baseline speedup, or JSON.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const ours = dash < 0 ? argv : argv.slice(0, dash);
const passThrough = dash < 0 ? [] : argv.slice(dash + 1);
const json = ours.includes('--json');
const roundsAt = ours.indexOf('--rounds');
const rounds = roundsAt < 0 ? 2 : Number(ours[roundsAt + 1]);
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error('usage: node bench/kernels-wasm.mjs [--json] [--rounds N] [-- wasm args]');
  process.exit(2);
}

const variants = ['base', 'simd'];
const files = Object.fromEntries(
  variants.map((v) => [v, join(root, 'build', 'bench', `kernels-${v}.wasm`)]),
);
for (const f of Object.values(files)) {
  if (!existsSync(f)) {
    console.error(`kernels-wasm.mjs: ${f} is missing; run \`make bench\` (or make ${f.slice(root.length + 1)})`);
    process.exit(1);
  }
}

function runOnce(variant) {
  const out = execFileSync(
    process.execPath,
    [join(root, 'wasi', 'run.mjs'), files[variant], '--json', ...passThrough],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_NO_WARNINGS: '1' } },
  );
  return JSON.parse(out);
}

const loadBefore = os.loadavg()[0];
// best[variant]["kernel/dim"] = ns; names[variant] = the table AUTO chose
const best = { base: {}, simd: {} };
const names = {};
let meta;
for (let r = 0; r < rounds; r++) {
  for (const v of variants) {
    const res = runOnce(v);
    names[v] = res.simd;
    meta = { set_bytes: res.set_bytes, runs: res.runs };
    for (const { kernel, dim, ns } of res.results) {
      const key = `${kernel}/${dim}`;
      if (!(key in best[v]) || ns < best[v][key]) best[v][key] = ns;
    }
  }
}
const loadAfter = os.loadavg()[0];

if (names.simd !== 'wasm-simd128' || names.base !== 'scalar') {
  console.error(`kernels-wasm.mjs: expected tables wasm-simd128/scalar, got ${names.simd}/${names.base}`);
  process.exit(1);
}

const rows = Object.keys(best.base).map((key) => {
  const [kernel, dim] = key.split('/');
  const base = best.base[key];
  const simd = best.simd[key];
  return { kernel, dim: Number(dim), base_ns: base, simd_ns: simd, speedup: base / simd };
});
// Same order as the native table: by kernel, then dimension.
const kernelOrder = ['l2sq_f32', 'dot_f32', 'dot_i8', 'l2sq_i8'];
rows.sort((a, b) => kernelOrder.indexOf(a.kernel) - kernelOrder.indexOf(b.kernel) || a.dim - b.dim);

if (json) {
  console.log(JSON.stringify({
    bench: 'kernels', target: 'wasm32-wasi', node: process.version, rounds, ...meta,
    loadavg_before: loadBefore, loadavg_after: loadAfter, results: rows,
  }, null, 1));
} else {
  console.log(`wasm kernels under Node ${process.version} (node:wasi), ns/distance, one query vs a ` +
    `${meta.set_bytes / 1024} KiB f32 set, best of ${meta.runs} passes x ${rounds} rounds; ` +
    `load average ${loadBefore.toFixed(2)} -> ${loadAfter.toFixed(2)}\n`);
  console.log('| kernel | d | baseline ns | simd128 ns | SIMD/baseline |');
  console.log('|---|--:|--:|--:|--:|');
  for (const r of rows) {
    console.log(`| ${r.kernel} | ${r.dim} | ${r.base_ns.toFixed(1)} | ${r.simd_ns.toFixed(1)} | ${r.speedup.toFixed(1)}× |`);
  }
}
