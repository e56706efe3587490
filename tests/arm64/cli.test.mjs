// cli.test.mjs -- the shoal CLI built for aarch64 (build/arm64/shoal, NEON
// kernels, run under qemu-aarch64) against the x86-64 one (build/shoal):
// the same input and seed must give byte-identical segments (so the same
// CIDs) and identical --json output.  Run by `make test-arm64`
// (mk/arm64.mk), which sets SHOAL_QEMU_ARM64 to the qemu command line.
//
// The dimension, 90, makes every NEON path run: f32 two full 32-element
// blocks then a tail of six full groups of four and a partial one; int8
// five 16-byte steps, the 8-byte step and a scalar remainder; and the
// 4-bit PQ scan with 45 sub-quantizers, padded to an even 46.  Inputs are
// generated from the seeded generator shared with the other tests
// (tests/js/data.mjs) and kept small: qemu runs the ARM binary 5-20x slower.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { TestRng } from '../js/data.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const QEMU = (process.env.SHOAL_QEMU_ARM64 || 'qemu-aarch64 -L /usr/aarch64-linux-gnu').split(/\s+/);
const RUNNERS = {
  x86: [join(ROOT, 'build', 'shoal')],
  arm64: [...QEMU, join(ROOT, 'build', 'arm64', 'shoal')],
};

const N = 1200;
const DIM = 90;
const QUERIES = 20;

function fvecs(rows) {
  return Buffer.concat(rows.map((row) => {
    const b = Buffer.alloc(4 + 4 * row.length);
    b.writeInt32LE(row.length, 0);
    row.forEach((v, j) => b.writeFloatLE(v, 4 + 4 * j));
    return b;
  }));
}

function makeRows(seed, n) {
  const rng = new TestRng(seed);
  const rows = Array.from({ length: n }, () => rng.fill(new Float32Array(DIM)));
  // Every tenth row repeats the one before: exact ties to break.
  for (let i = 9; i < n; i += 10) rows[i] = rows[i - 1].slice();
  return rows;
}

// Fixed seeds everywhere; every kind, every metric, SQ8 and PQ4 codes, and
// uncompressed and zstd sections.
const BUILDS = [
  { out: 'flat.seg', args: ['--kind', 'flat'] },
  { out: 'flat-ip-z19.seg', args: ['--kind', 'flat', '--metric', 'ip', '--zstd', '19'] },
  { out: 'hnsw.seg', args: ['--kind', 'hnsw', '--M', '8', '--ef-construction', '64', '--seed', '7'] },
  { out: 'hnsw-z3.seg', args: ['--kind', 'hnsw', '--M', '8', '--ef-construction', '64', '--seed', '7', '--zstd', '3'] },
  { out: 'hnsw-sq8-cos.seg', args: ['--kind', 'hnsw', '--quantizer', 'sq8', '--metric', 'cosine', '--seed', '3'] },
  { out: 'ivf.seg', args: ['--kind', 'ivf', '--nlist', '8', '--seed', '5'] },
  { out: 'ivf-sq8-ip.seg', args: ['--kind', 'ivf', '--nlist', '8', '--quantizer', 'sq8', '--metric', 'ip', '--seed', '5'] },
  { out: 'ivf-pq4.seg', args: ['--kind', 'ivf', '--nlist', '8', '--quantizer', 'pq', '--pq-bits', '4', '--pq-m', '45', '--rerank', '20', '--seed', '5', '--zstd', '3'] },
];

const dirs = {};

function run(runner, args) {
  const [cmd, ...pre] = RUNNERS[runner];
  const r = spawnSync(cmd, [...pre, ...args], { cwd: dirs[runner], encoding: 'buffer', timeout: 300_000 });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `${runner}: shoal ${args.join(' ')} exited ${r.status} (${r.signal ?? ''}): ${r.stderr}`);
  return r.stdout;
}

// Runs the same command in both builds; their stdout must be the same bytes.
function same(args) {
  const x = run('x86', args);
  const a = run('arm64', args);
  assert.ok(x.equals(a), `shoal ${args.join(' ')}:\nx86-64  ${x}\naarch64 ${a}`);
  return x.toString();
}

before(() => {
  for (const [name, [exe]] of [['x86', RUNNERS.x86], ['arm64', [RUNNERS.arm64.at(-1)]]])
    assert.ok(existsSync(exe), `${exe} is missing: run make ${name === 'x86' ? 'cli' : 'arm64'}`);
  const base = fvecs(makeRows(31, N)), queries = fvecs(makeRows(32, QUERIES));
  for (const runner of Object.keys(RUNNERS)) {
    dirs[runner] = mkdtempSync(join(tmpdir(), `shoal-arm64-${runner}-`));
    writeFileSync(join(dirs[runner], 'base.fvecs'), base);
    writeFileSync(join(dirs[runner], 'queries.fvecs'), queries);
  }
});
after(() => {
  for (const dir of Object.values(dirs)) rmSync(dir, { recursive: true, force: true });
});

test('the aarch64 CLI computes with the NEON kernels', () => {
  assert.match(run('arm64', ['--version']).toString(), /\(kernels neon\)/);
  assert.match(run('x86', ['--version']).toString(), /\(kernels (avx2|avx512|scalar)\)/);
});

test('byte-identical segments (same CIDs) from both builds', () => {
  for (const b of BUILDS) {
    const summary = JSON.parse(same(['build', 'base.fvecs', ...b.args, '--out', b.out, '--json', '--quiet']));
    assert.equal(summary.records, N);
    const x = readFileSync(join(dirs.x86, b.out));
    const a = readFileSync(join(dirs.arm64, b.out));
    assert.ok(x.equals(a), `${b.out} differs between x86-64 and aarch64`);
    assert.match(same(['cid', b.out]), new RegExp(`^${summary.cid}  `));
  }
});

test('identical --json output: search, info, verify', () => {
  const searches = [
    ['flat.seg', '-k', '10'],
    ['flat-ip-z19.seg', '-k', '10'],
    ['hnsw.seg', '-k', '10', '--ef', '24'],
    ['hnsw-z3.seg', '-k', '5', '--ef', '64'],
    ['hnsw-sq8-cos.seg', '-k', '10'],
    ['ivf.seg', '-k', '10', '--nprobe', '3'],
    ['ivf-sq8-ip.seg', '-k', '10', '--nprobe', '2'],
    ['ivf-pq4.seg', '-k', '10', '--nprobe', '3'],
    // A data file is built in memory (seeded HNSW) and searched.
    ['base.fvecs', '--kind', 'hnsw', '--seed', '9', '-k', '10'],
  ];
  for (const [input, ...opts] of searches) {
    const out = JSON.parse(same(['search', input, '--query', 'queries.fvecs', ...opts, '--json']));
    assert.equal(out.results.length, QUERIES);
  }
  same(['info', ...BUILDS.map((b) => b.out), '--json']);
  const verified = same(['verify', ...BUILDS.map((b) => b.out), '--json']);
  assert.ok(verified.trim().split('\n').every((line) => JSON.parse(line).ok), verified);
});
