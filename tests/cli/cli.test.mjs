// cli.test.mjs -- the shoal command-line tool, natively (build/shoal) and
// under WASI (wasi/shoal running build/shoal.wasm), run by `make test-cli`
// (node --test tests/cli/).
//
// What it proves
//   - every command works in both builds: build (fvecs, bvecs, npy, JSONL;
//     flat, hnsw, ivf), search, info, verify, merge, cid, bench;
//   - hnsw sq8 with rerank copies gives the exact distances of a flat
//     segment, at any --ef and --rerank depth;
//   - the two builds write byte-identical segments and identical --json
//     output for the same input and seed (and fvecs, npy and JSONL holding
//     the same vectors give the same segment);
//   - malformed input (a dimension change inside an fvecs, truncated files,
//     a float64 or Fortran-order npy, bad JSON lines, missing files, a
//     damaged segment) gives a message naming the file and the problem,
//     exit code 2, and leaves the directory exactly as it was: no output
//     file, no temporary;
//   - --help on every command exits 0; unknown flags exit 1.
//
// Inputs are generated here from the seeded generator shared with the C
// and JS tests (tests/js/data.mjs), small enough that the WASI runs stay
// quick; nothing large is committed.  Each build runs in its own temporary
// directory, which is also the directory wasi/shoal preopens.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { TestRng } from '../js/data.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RUNNERS = {
  native: process.env.SHOAL_CLI_NATIVE || join(ROOT, 'build', 'shoal'),
  wasi: join(ROOT, 'wasi', 'shoal'),
};
const COMMANDS = ['build', 'search', 'info', 'verify', 'merge', 'cid', 'bench'];

const N = 600;
const DIM = 12;

// ------------------------------------------------------------- file writers

function makeRows(seed, n, dim) {
  const rng = new TestRng(seed);
  return Array.from({ length: n }, () => rng.fill(new Float32Array(dim)));
}

function fvecs(rows, { dimOf = () => rows[0].length } = {}) {
  const parts = rows.map((row, i) => {
    const d = dimOf(i);
    const b = Buffer.alloc(4 + 4 * d);
    b.writeInt32LE(d, 0);
    for (let j = 0; j < d; j++) b.writeFloatLE(row[j % row.length], 4 + 4 * j);
    return b;
  });
  return Buffer.concat(parts);
}

function bvecs(rows) {
  return Buffer.concat(rows.map((row) => {
    const b = Buffer.alloc(4 + row.length);
    b.writeInt32LE(row.length, 0);
    row.forEach((v, j) => { b[4 + j] = Math.round((v + 1) * 127); });
    return b;
  }));
}

function ivecs(rows) {
  return Buffer.concat(rows.map((row) => {
    const b = Buffer.alloc(4 + 4 * row.length);
    b.writeInt32LE(row.length, 0);
    row.forEach((v, j) => b.writeInt32LE(v, 4 + 4 * j));
    return b;
  }));
}

function npy(rows, { descr = '<f4', fortran = false, shape = null, cut = 0 } = {}) {
  const n = rows.length, d = rows[0].length;
  const shapeText = shape ?? `(${n}, ${d})`;
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
  pre.writeUInt16LE(header.length, 8);
  const width = descr.endsWith('8') ? 8 : 4;
  const data = Buffer.alloc(n * d * width);
  rows.forEach((row, i) => row.forEach((v, j) => {
    if (width === 8) data.writeDoubleLE(v, (i * d + j) * 8);
    else data.writeFloatLE(v, (i * d + j) * 4);
  }));
  const all = Buffer.concat([pre, Buffer.from(header, 'latin1'), data]);
  return cut ? all.subarray(0, all.length - cut) : all;
}

function jsonl(rows, { id = (i) => String(i), metadata = (i) => ({ n: i, tags: ['a', { b: null }] }) } = {}) {
  return rows.map((row, i) => JSON.stringify({ id: id(i), vector: Array.from(row), metadata: metadata ? metadata(i) : undefined })).join('\n') + '\n';
}

// Exact squared-L2 neighbours, for an .ivecs ground truth.
function exactTruth(base, queries, k) {
  return queries.map((q) => base
    .map((row, i) => [row.reduce((s, v, j) => s + (v - q[j]) ** 2, 0), i])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .slice(0, k)
    .map(([, i]) => i));
}

// ------------------------------------------------------------------- helpers

function run(runner, args, cwd) {
  const r = spawnSync(RUNNERS[runner], args, { cwd, encoding: 'buffer', timeout: 120_000 });
  if (r.error) throw r.error;
  return { code: r.status, signal: r.signal, stdout: r.stdout, out: r.stdout.toString(), err: r.stderr.toString() };
}

function ok(runner, args, cwd) {
  const r = run(runner, args, cwd);
  assert.equal(r.code, 0, `${runner} shoal ${args.join(' ')} exited ${r.code} (${r.signal ?? ''}): ${r.err}`);
  return r;
}

function listing(dir) {
  return readdirSync(dir).sort();
}

const BASE = makeRows(11, N, DIM);
const QUERIES = makeRows(12, 20, DIM);
const TRUTH = exactTruth(BASE, QUERIES, 10);
// More records than the 1024 SQ8 trains on: past them the graph is walked on
// int8 codes, so only the rerank copies make distances exact.
const SQ8_N = 1500;
const SQ8_BASE = makeRows(13, SQ8_N, DIM);
const SQ8_ARGS = ['sq8-base.fvecs', '--kind', 'hnsw', '--quantizer', 'sq8', '--M', '8', '--ef-construction', '64', '--seed', '3'];

function writeInputs(dir) {
  writeFileSync(join(dir, 'base.fvecs'), fvecs(BASE));
  writeFileSync(join(dir, 'base.bvecs'), bvecs(BASE));
  writeFileSync(join(dir, 'base.npy'), npy(BASE));
  writeFileSync(join(dir, 'base.jsonl'), jsonl(BASE));
  writeFileSync(join(dir, 'plain.jsonl'), jsonl(BASE, { metadata: null }));
  writeFileSync(join(dir, 'docs.jsonl'), jsonl(BASE.slice(0, 200), { id: (i) => `doc-${i} \u00e9\u{1F41F}` }));
  writeFileSync(join(dir, 'queries.fvecs'), fvecs(QUERIES));
  writeFileSync(join(dir, 'queries.jsonl'), jsonl(QUERIES, { id: (i) => `q${i}` }));
  writeFileSync(join(dir, 'truth.ivecs'), ivecs(TRUTH));
  writeFileSync(join(dir, 'sq8-base.fvecs'), fvecs(SQ8_BASE));
}

// The builds each test case makes, in both runners.
const BUILDS = [
  { out: 'flat.seg', args: ['base.fvecs', '--kind', 'flat'] },
  { out: 'hnsw.seg', args: ['base.fvecs', '--kind', 'hnsw', '--M', '8', '--ef-construction', '64', '--seed', '7'] },
  { out: 'hnsw-sq8.seg', args: ['base.npy', '--kind', 'hnsw', '--quantizer', 'sq8', '--metric', 'cosine', '--seed', '3'] },
  { out: 'ivf.seg', args: ['base.fvecs', '--kind', 'ivf', '--nlist', '8', '--seed', '5'] },
  { out: 'ivf-pq.seg', args: ['base.jsonl', '--kind', 'ivf', '--nlist', '8', '--quantizer', 'pq', '--pq-bits', '4', '--rerank', '20', '--seed', '5', '--zstd', '3'] },
  { out: 'bvecs.seg', args: ['base.bvecs', '--kind', 'hnsw', '--metric', 'ip', '--seed', '1'] },
  { out: 'docs.seg', args: ['docs.jsonl', '--kind', 'flat', '--metric', 'cosine'] },
  { out: 'from-npy.seg', args: ['base.npy', '--kind', 'hnsw', '--M', '8', '--ef-construction', '64', '--seed', '7'] },
  { out: 'from-jsonl.seg', args: ['plain.jsonl', '--kind', 'hnsw', '--M', '8', '--ef-construction', '64', '--seed', '7'] },
];

const dirs = {};
before(() => {
  for (const runner of Object.keys(RUNNERS)) {
    assert.ok(existsSync(RUNNERS[runner]), `${RUNNERS[runner]} is missing: run make cli`);
    dirs[runner] = mkdtempSync(join(tmpdir(), `shoal-cli-${runner}-`));
    writeInputs(dirs[runner]);
  }
});
after(() => {
  for (const dir of Object.values(dirs)) rmSync(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------ per runner

for (const runner of Object.keys(RUNNERS)) {
  describe(`shoal (${runner})`, () => {
    const cwd = () => dirs[runner];

    test('--help on every command exits 0; unknown flags and commands exit 1', () => {
      const top = ok(runner, ['--help'], cwd());
      assert.match(top.out, /usage: shoal <command>/);
      for (const cmd of COMMANDS) {
        const r = ok(runner, [cmd, '--help'], cwd());
        assert.match(r.out, new RegExp(`usage: shoal ${cmd}`));
        assert.equal(ok(runner, ['help', cmd], cwd()).out, r.out);
        const bad = run(runner, [cmd, '--no-such-flag', 'x'], cwd());
        assert.equal(bad.code, 1, `${cmd}: ${bad.err}`);
        assert.match(bad.err, /unknown option '--no-such-flag'/);
      }
      assert.equal(run(runner, ['frobnicate'], cwd()).code, 1);
      assert.equal(run(runner, [], cwd()).code, 1);
      assert.equal(run(runner, ['build', 'base.fvecs'], cwd()).code, 1, 'build without --out');
      assert.equal(run(runner, ['build', 'base.fvecs', '--out', 'x.seg', '--kind', 'tree'], cwd()).code, 1);
      assert.equal(run(runner, ['build', 'base.fvecs', '--out', 'x.seg', '--M', '8'], cwd()).code, 1,
        '--M without --kind hnsw');
      assert.equal(run(runner, ['search', 'base.fvecs', '-k', '0', '--vector', '1'], cwd()).code, 1);
      assert.ok(!existsSync(join(cwd(), 'x.seg')));
    });

    test('build: every format and kind; quiet stderr when not a terminal', () => {
      for (const b of BUILDS) {
        const r = ok(runner, ['build', ...b.args, '--out', b.out], cwd());
        assert.match(r.out, new RegExp(`wrote ${b.out.replace('.', '\\.')}`));
        assert.match(r.out, /cid bafkrei[a-z2-7]{52}/);
        if (!b.args[0].endsWith('.jsonl')) assert.equal(r.err, '', `no progress bar in a pipe: ${r.err}`);
      }
      const note = ok(runner, ['build', 'docs.jsonl', '--out', 'tmp.seg'], cwd());
      assert.doesNotMatch(note.err, /metadata/, 'metadata is stored, so no note');
      const quiet = ok(runner, ['build', 'docs.jsonl', '--out', 'tmp.seg', '--quiet', '--json'], cwd());
      assert.equal(quiet.err, '');
      const summary = JSON.parse(quiet.out);
      assert.equal(summary.records, 200);
      assert.equal(summary.kind, 'flat');
      assert.equal(summary.dim, DIM);
      assert.ok(!listing(cwd()).some((f) => f.includes('.tmp')), 'no temporaries left');
    });

    test('the same vectors from fvecs, npy and JSONL give the same segment', () => {
      const hnsw = readFileSync(join(cwd(), 'hnsw.seg'));
      assert.ok(hnsw.equals(readFileSync(join(cwd(), 'from-npy.seg'))), 'npy');
      assert.ok(hnsw.equals(readFileSync(join(cwd(), 'from-jsonl.seg'))), 'jsonl');
    });

    test('info, verify and cid', () => {
      for (const b of BUILDS) {
        const info = JSON.parse(ok(runner, ['info', b.out, '--json'], cwd()).out);
        assert.equal(info.records, b.out === 'docs.seg' ? 200 : N);
        assert.equal(info.dim, DIM);
        assert.equal(info.bytes, readFileSync(join(cwd(), b.out)).length);
        assert.ok(info.sections.some((s) => s.kind === 'config'));
        const cid = ok(runner, ['cid', b.out], cwd()).out;
        assert.equal(cid, `${info.cid}  ${b.out}\n`);
        const v = JSON.parse(ok(runner, ['verify', b.out, '--json'], cwd()).out);
        assert.equal(v.ok, true);
        assert.equal(v.cid, info.cid);
        assert.equal(v.canonical, info.compressed_sections ? 'skipped (compressed)' : 'ok');
      }
      const text = ok(runner, ['info', 'ivf.seg'], cwd()).out;
      assert.match(text, /index +ivf, l2, quantizer f32, nlist 8/);
      assert.match(text, /ivf list +x8 /);
      assert.match(ok(runner, ['verify', 'hnsw.seg'], cwd()).out, /^ok +hnsw\.seg: hnsw, 600 records/);
    });

    test('search a segment, a data file, one vector', () => {
      const seg = JSON.parse(ok(runner, ['search', 'flat.seg', '--query', 'queries.fvecs', '-k', '5', '--json'], cwd()).out);
      assert.equal(seg.k, 5);
      assert.equal(seg.results.length, QUERIES.length);
      seg.results.forEach((r, i) => {
        assert.equal(r.query, String(i));
        assert.deepEqual(r.ids, TRUTH[i].slice(0, 5).map(String));
        assert.ok(r.distances.every((d, j) => j === 0 || d >= r.distances[j - 1]));
      });
      // A data file is built in memory with build's options: same answers.
      const onTheFly = ok(runner, ['search', 'base.fvecs', '--query', 'queries.fvecs', '-k', '5', '--json'], cwd()).out;
      assert.equal(onTheFly, JSON.stringify(seg) + '\n');
      const named = JSON.parse(ok(runner, ['search', 'hnsw.seg', '--query', 'queries.jsonl', '-k', '3', '--ef', '40', '--json'], cwd()).out);
      assert.equal(named.results[2].query, 'q2');
      const one = ok(runner, ['search', 'docs.seg', '--vector', Array.from(BASE[7]).join(','), '-k', '1'], cwd()).out;
      assert.match(one, /1 {2}doc-7 \u00e9\u{1F41F} {2}/u);
      const ivf = JSON.parse(ok(runner, ['search', 'ivf.seg', '--query', 'queries.fvecs', '--nprobe', '8', '-k', '5', '--json'], cwd()).out);
      assert.deepEqual(ivf.results.map((r) => r.ids), seg.results.map((r) => r.ids), 'probing every list is exact');
      assert.equal(run(runner, ['search', 'flat.seg', '--vector', '1,2,3'], cwd()).code, 2, 'wrong query dimension');
      assert.equal(run(runner, ['search', 'flat.seg', '--vector', '1', '--ef', '10'], cwd()).code, 1, '--ef on flat');
      assert.equal(run(runner, ['search', 'flat.seg', '--vector', '1', '--kind', 'hnsw'], cwd()).code, 1,
        'index options on a segment');
    });

    test('build --threads: the same bytes for 1 and 4 threads, batched unlike a serial build', () => {
      const args = ['build', 'sq8-base.fvecs', '--kind', 'hnsw', '--M', '8', '--ef-construction', '64', '--seed', '3'];
      ok(runner, [...args, '--threads', '1', '--out', 'threads-1.seg', '--quiet'], cwd());
      ok(runner, [...args, '--threads', '4', '--out', 'threads-4.seg', '--quiet'], cwd());
      ok(runner, [...args, '--build-batch', '64', '--out', 'batch-64.seg', '--quiet'], cwd());
      ok(runner, [...args, '--out', 'serial.seg', '--quiet'], cwd());
      const t1 = readFileSync(join(cwd(), 'threads-1.seg')), t4 = readFileSync(join(cwd(), 'threads-4.seg'));
      assert.ok(t1.equals(t4), '--threads 1 and 4 write the same segment');
      assert.ok(t1.equals(readFileSync(join(cwd(), 'batch-64.seg'))), '--threads means a batch of 64');
      assert.ok(!t1.equals(readFileSync(join(cwd(), 'serial.seg'))), 'the segment records its batch size');
      assert.match(ok(runner, ['info', 'threads-4.seg'], cwd()).out, /index +hnsw, l2, quantizer f32, build batch 64\n/);
      assert.equal(JSON.parse(ok(runner, ['info', 'serial.seg', '--json'], cwd()).out).build_batch, 0);
      const bad = run(runner, [...args, '--threads', '0', '--out', 'threads-0.seg'], cwd());
      assert.equal(bad.code, 1);
      assert.match(bad.err, /--threads must be an integer in 1\.\.64/);
      const serial = run(runner, [...args, '--threads', '2', '--build-batch', '0', '--out', 'threads-0.seg'], cwd());
      assert.equal(serial.code, 1);
      assert.match(serial.err, /--threads needs batched inserts/);
      assert.ok(!existsSync(join(cwd(), 'threads-0.seg')));
    });

    test('hnsw sq8 --rerank: the exact distances of a flat segment; --rerank on flat is a usage error', () => {
      ok(runner, ['build', ...SQ8_ARGS, '--rerank', '32', '--out', 'sq8-rerank.seg', '--quiet'], cwd());
      ok(runner, ['build', ...SQ8_ARGS, '--out', 'sq8-plain.seg', '--quiet'], cwd());
      ok(runner, ['build', 'sq8-base.fvecs', '--kind', 'flat', '--out', 'sq8-flat.seg', '--quiet'], cwd());
      const search = (seg, ...flags) =>
        JSON.parse(ok(runner, ['search', seg, '--query', 'queries.fvecs', '-k', '10', ...flags, '--json'], cwd()).out).results;
      const exact = search('sq8-flat.seg');
      assert.match(ok(runner, ['info', 'sq8-rerank.seg'], cwd()).out, /quantizer sq8, rerank 32\n/);
      assert.equal(JSON.parse(ok(runner, ['info', 'sq8-rerank.seg', '--json'], cwd()).out).rerank, 32);
      // Results the exact answer also has, and how many carry its distance.
      const agree = (results) => {
        let shared = 0, equal = 0;
        results.forEach((r, q) => r.ids.forEach((id, i) => {
          const j = exact[q].ids.indexOf(id);
          if (j >= 0) {
            shared++;
            equal += r.distances[i] === exact[q].distances[j];
          }
        }));
        return { shared, equal };
      };
      for (const flags of [[], ['--rerank', '16'], ['--ef', '100'], ['--ef', '100', '--rerank', '16']]) {
        const got = search('sq8-rerank.seg', ...flags);
        assert.equal(got.length, QUERIES.length);
        got.forEach((r, q) => assert.equal(r.ids[0], exact[q].ids[0], `${flags.join(' ')}: query ${q}'s nearest`));
        const a = agree(got);
        assert.ok(a.shared >= QUERIES.length);
        assert.equal(a.equal, a.shared, `${flags.join(' ')}: distances equal where ids agree`);
      }
      // Without copies the distances are decoded codes': the check above can tell.
      const decoded = agree(search('sq8-plain.seg'));
      assert.ok(decoded.equal < decoded.shared, `${decoded.equal} of ${decoded.shared} decoded distances exact`);
      // The copies are a section of SQ8_N x DIM float32 behind the HNSW_COPIES feature (bit 2).
      const info = JSON.parse(ok(runner, ['info', 'sq8-rerank.seg', '--json'], cwd()).out);
      assert.equal(info.records, SQ8_N);
      assert.equal(info.quantizer, 'sq8');
      assert.equal(info.required_features & 4, 4);
      assert.equal(info.sections.find((sec) => sec.kind === 'vectors')?.raw, SQ8_N * DIM * 4);
      const plain = JSON.parse(ok(runner, ['info', 'sq8-plain.seg', '--json'], cwd()).out);
      assert.equal(plain.required_features & 4, 0);
      assert.ok(!plain.sections.some((sec) => sec.kind === 'vectors'));
      assert.equal(JSON.parse(ok(runner, ['verify', 'sq8-rerank.seg', '--json'], cwd()).out).ok, true);
      // A depth below k, or of a segment without copies: the core refuses it (exit 1).
      const shallow = run(runner, ['search', 'sq8-rerank.seg', '--query', 'queries.fvecs', '-k', '10', '--rerank', '5'], cwd());
      assert.equal(shallow.code, 1, shallow.err);
      assert.match(shallow.err, /rerank = 5 is below k = 10/);
      const none = run(runner, ['search', 'sq8-plain.seg', '--query', 'queries.fvecs', '--rerank', '16'], cwd());
      assert.equal(none.code, 1, none.err);
      assert.match(none.err, /rerank needs float32 copies/);
      // --rerank on flat: a usage error, in search and in build (no output left).
      const flat = run(runner, ['search', 'sq8-flat.seg', '--vector', Array(DIM).fill(0).join(','), '--rerank', '16'], cwd());
      assert.equal(flat.code, 1, flat.err);
      assert.match(flat.err, /--rerank applies to hnsw and ivf indexes; this one is flat/);
      const build = run(runner, ['build', 'sq8-base.fvecs', '--kind', 'flat', '--rerank', '16', '--out', 'x.seg'], cwd());
      assert.equal(build.code, 1, build.err);
      assert.match(build.err, /--rerank does not apply to --kind flat/);
      // An f32 graph already holds float32: refused too.
      assert.equal(run(runner, ['build', 'sq8-base.fvecs', '--kind', 'hnsw', '--rerank', '16', '--out', 'x.seg'], cwd()).code, 1);
      assert.ok(!existsSync(join(cwd(), 'x.seg')));
    });

    test('metadata: stored, printed, filtered, kept by merge; bad metadata exits 2', () => {
      const meta = (i) => ({ cat: i % 5, price: (i * 37) % 100, tags: i % 2 ? ['odd'] : ['even', 'x'] });
      writeFileSync(join(cwd(), 'meta.jsonl'), jsonl(BASE.slice(0, 100), { id: (i) => `m${i}`, metadata: meta }));
      ok(runner, ['build', 'meta.jsonl', '--kind', 'hnsw', '--seed', '2', '--out', 'meta.seg', '--quiet'], cwd());
      const all = JSON.parse(ok(runner, ['search', 'meta.seg', '--vector', Array.from(BASE[3]).join(','), '-k', '5', '--json'], cwd()).out);
      const r = all.results[0];
      assert.equal(r.ids[0], 'm3');
      r.ids.forEach((id, j) => assert.deepEqual(r.metadata[j], meta(Number(id.slice(1)))));
      const filtered = JSON.parse(ok(runner, ['search', 'meta.seg', '--vector', Array.from(BASE[3]).join(','), '-k', '5',
        '--filter', '{"cat":2,"tags":"even"}', '--json'], cwd()).out).results[0];
      assert.equal(filtered.ids.length, 5);
      for (const m of filtered.metadata) assert.ok(m.cat === 2 && m.tags.includes('even'), JSON.stringify(m));
      const bad = run(runner, ['search', 'meta.seg', '--vector', '1', '--filter', '{"cat":{"$near":1}}'], cwd());
      assert.equal(bad.code, 1);
      assert.match(bad.err, /unknown operator \$near at \$\.cat\.\$near/);
      const info = JSON.parse(ok(runner, ['info', 'meta.seg', '--json'], cwd()).out);
      assert.equal(info.with_metadata, 100);
      assert.deepEqual(info.fields.map((f) => [f.name, f.count, f.types]),
        [['cat', 100, ['number']], ['tags', 100, ['array']], ['price', 100, ['number']]]);
      // A merge keeps metadata, the later segment's version winning.
      writeFileSync(join(cwd(), 'meta2.jsonl'), jsonl(BASE.slice(0, 10), { id: (i) => `m${i}`, metadata: (i) => ({ cat: 99, v: i }) }));
      ok(runner, ['build', 'meta2.jsonl', '--out', 'meta2.seg', '--quiet'], cwd());
      ok(runner, ['merge', 'meta.seg', 'meta2.seg', '--out', 'merged-meta.seg', '--quiet'], cwd());
      const m = JSON.parse(ok(runner, ['search', 'merged-meta.seg', '--vector', Array.from(BASE[3]).join(','), '-k', '1',
        '--filter', '{"cat":99}', '--json'], cwd()).out).results[0];
      assert.deepEqual([m.ids[0], m.metadata[0]], ['m3', { cat: 99, v: 3 }]);
      const merged = JSON.parse(ok(runner, ['info', 'merged-meta.seg', '--json'], cwd()).out);
      assert.equal(merged.records, 100);
      // Metadata that is not an object: exit 2, the file and record named, no output.
      const before = listing(cwd());
      writeFileSync(join(cwd(), 'badmeta.jsonl'), jsonl(BASE.slice(0, 3), { metadata: (i) => (i === 2 ? 'text' : { i }) }));
      const b = run(runner, ['build', 'badmeta.jsonl', '--out', 'badmeta.seg'], cwd());
      assert.equal(b.code, 2, b.err);
      assert.match(b.err, /badmeta\.jsonl: .*record 2: metadata must be a JSON object/);
      assert.deepEqual(listing(cwd()), [...before, 'badmeta.jsonl'].sort());
    });

    test('merge: later segments win; a segment merged with itself is itself', () => {
      // No index flags: every parameter (M, efConstruction, seed, ...) comes from the segment.
      const r = JSON.parse(ok(runner, ['merge', 'hnsw.seg', 'hnsw.seg', '--out', 'merged.seg', '--json'], cwd()).out);
      assert.equal(r.records, N);
      assert.ok(readFileSync(join(cwd(), 'merged.seg')).equals(readFileSync(join(cwd(), 'hnsw.seg'))));
      const ivf = JSON.parse(ok(runner, ['merge', 'ivf.seg', 'flat.seg', '--out', 'merged-ivf.seg', '--json'], cwd()).out);
      assert.equal(ivf.kind, 'ivf', 'the kind defaults to the first segment\'s');
      assert.equal(ivf.records, N);
      const info = JSON.parse(ok(runner, ['info', 'merged-ivf.seg', '--json'], cwd()).out);
      assert.equal(info.nlist, 8, 'so does nlist');
    });

    test('bench: exact truth, ivecs truth, thresholds', () => {
      const exact = JSON.parse(ok(runner, ['bench', 'base.fvecs', '--queries', 'queries.fvecs', '--kind', 'hnsw', '--seed', '7', '--ef', '10,40', '--json', '--quiet'], cwd()).out);
      assert.equal(exact.truth, 'exact');
      assert.equal(exact.runs.length, 2);
      assert.ok(exact.runs[1].recall >= 0.9, `recall ${exact.runs[1].recall}`);
      assert.ok(exact.runs.every((r) => r.qps > 0));
      const file = JSON.parse(ok(runner, ['bench', 'hnsw.seg', '--queries', 'queries.fvecs', '--truth', 'truth.ivecs', '--ef', '10,40', '--json'], cwd()).out);
      assert.equal(file.truth, 'file');
      assert.ok(file.runs[1].recall >= 0.9);
      const flat = JSON.parse(ok(runner, ['bench', 'flat.seg', '--queries', 'queries.fvecs', '--truth', 'truth.ivecs', '--json'], cwd()).out);
      assert.equal(flat.runs[0].recall, 1);
      const ivf = JSON.parse(ok(runner, ['bench', 'ivf.seg', '--queries', 'queries.fvecs', '--nprobe', '1,8', '--json'], cwd()).out);
      assert.equal(ivf.runs[1].recall, 1);
      const low = run(runner, ['bench', 'ivf.seg', '--queries', 'queries.fvecs', '--nprobe', '1', '--min-recall', '1'], cwd());
      assert.equal(low.code, 5, low.err);
      assert.match(low.err, /below --min-recall 1/);
      ok(runner, ['bench', 'ivf.seg', '--queries', 'queries.fvecs', '--nprobe', '1', '--min-recall', '0'], cwd());
      const text = ok(runner, ['bench', 'hnsw.seg', '--queries', 'queries.fvecs', '--ef', '10,20'], cwd()).out;
      assert.match(text, /recall +QPS/);
    });

    test('malformed input: message names the file, exit 2, no output left', () => {
      const dir = cwd();
      const rows = makeRows(21, 30, DIM);
      const cases = [
        ['wrong-dim.fvecs', fvecs(rows, { dimOf: (i) => (i === 17 ? DIM - 1 : DIM) }), /record 17 \(byte 884\) has dimension 11; the records before it have 12/],
        ['truncated.fvecs', fvecs(rows).subarray(0, 4 + 4 * DIM + 20), /truncated: record 1/],
        ['zero-dim.fvecs', Buffer.alloc(8), /record 0 has dimension 0/],
        ['empty.fvecs', Buffer.alloc(0), /no vectors/],
        ['truncated.npy', npy(rows, { cut: 10 }), /truncated: shape \(30, 12\) needs 1440 bytes/],
        ['float64.npy', npy(rows, { descr: '<f8' }), /dtype '<f8' \(float64\) is not supported/],
        ['bigendian.npy', npy(rows, { descr: '>f4' }), /big-endian/],
        ['fortran.npy', npy(rows, { fortran: true }), /Fortran \(column-major\) order/],
        ['3d.npy', npy(rows, { shape: '(2, 3, 60)' }), /3 dimensions/],
        ['header.npy', Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 20, 0]), Buffer.from("{'descr': '<f4',    ")]), /header/],
        ['bad-json.jsonl', '{"id": "a", "vector": [1, 2]}\n{"id": "b", "vector": [1, 2,]}\n', /bad-json\.jsonl:2: column 29: vector element 2 is not a number/],
        ['no-vector.jsonl', '{"id": "a", "metadata": {}}\n', /:1: .*no "vector" field/],
        ['dims.jsonl', '{"id": "a", "vector": [1, 2]}\n\n{"id": "b", "vector": [1, 2, 3]}\n', /dims\.jsonl:3: the vector has 3 elements; the records before it have 2/],
        ['garbage.jsonl', '{"id": "a", "vector": [1, 2]} x\n', /unexpected text after the object/],
        ['nan.jsonl', '{"id": "a", "vector": [1e999, 2]}\n', /not finite/],
        ['deep.jsonl', `{"id": "a", "vector": [1], "metadata": ${'['.repeat(100000)}}\n`, /nested deeper than 64/],
        ['dup.jsonl', '{"id": "a", "id": "b", "vector": [1]}\n', /duplicate key "id"/],
        ['utf8.jsonl', Buffer.from('{"id": "\xff", "vector": [1]}\n', 'latin1'), /invalid UTF-8/],
        ['longid.jsonl', `{"id": "${'x'.repeat(1025)}", "vector": [1]}\n`, /1025 bytes long/],
        ['ctrl.jsonl', '{"id": "a\u0001", "vector": [1]}\n', /control character/],
      ];
      for (const [name, bytes] of cases) writeFileSync(join(dir, name), bytes);
      const before_ = listing(dir);
      for (const [name, , message] of cases) {
        const r = run(runner, ['build', name, '--out', 'bad.seg'], dir);
        assert.equal(r.code, 2, `${name}: exit ${r.code}: ${r.err}`);
        assert.ok(r.err.startsWith(`shoal: ${name}`), `${name}: message names the file: ${r.err}`);
        assert.match(r.err, message, name);
        assert.deepEqual(listing(dir), before_, `${name}: the directory is unchanged`);
      }
      const missing = run(runner, ['build', 'missing.fvecs', '--out', 'bad.seg'], dir);
      assert.equal(missing.code, 2);
      assert.match(missing.err, /missing\.fvecs: cannot read: No such file or directory/);
      const unknown = run(runner, ['build', 'truth.ivecs', '--out', 'bad.seg'], dir);
      assert.equal(unknown.code, 2);
      assert.match(unknown.err, /truth\.ivecs: cannot tell the format/);
      // A data problem the core finds (a zero vector under cosine) also leaves nothing.
      writeFileSync(join(dir, 'zero.jsonl'), '{"id": "z", "vector": [0, 0]}\n');
      const zero = run(runner, ['build', 'zero.jsonl', '--metric', 'cosine', '--out', 'bad.seg'], dir);
      assert.equal(zero.code, 2, zero.err);
      assert.match(zero.err, /zero\.jsonl: adding records failed/);
      // Damaged segments.
      const seg = readFileSync(join(dir, 'hnsw.seg'));
      const flipped = Buffer.from(seg);
      flipped[seg.length - 100] ^= 1;
      writeFileSync(join(dir, 'flipped.seg'), flipped);
      writeFileSync(join(dir, 'short.seg'), seg.subarray(0, seg.length - 64));
      for (const name of ['flipped.seg', 'short.seg']) {
        const v = run(runner, ['verify', name], dir);
        assert.equal(v.code, 2, `${name}: ${v.err}`);
        assert.match(v.out, new RegExp(`^FAIL ${name.replace('.', '\\.')}: `));
        assert.match(v.err, new RegExp(`${name.replace('.', '\\.')}: verification failed`));
        const s = run(runner, ['search', name, '--vector', Array(DIM).fill(0).join(',')], dir);
        assert.equal(s.code, 2);
        assert.match(s.err, new RegExp(`${name.replace('.', '\\.')}: not a valid segment`));
      }
      assert.match(run(runner, ['verify', 'flipped.seg'], dir).err, /checksum/i);
      const info = run(runner, ['info', 'base.fvecs'], dir);
      assert.equal(info.code, 2);
      assert.match(info.err, /base\.fvecs: not a valid segment: .*bad magic/);
      const merge = run(runner, ['merge', 'flat.seg', 'docs.seg', '--out', 'bad.seg'], dir);
      assert.equal(merge.code, 2);
      assert.match(merge.err, /docs\.seg: dimension 12 and metric cosine differ/);
      const truth = run(runner, ['bench', 'flat.seg', '--queries', 'queries.fvecs', '--truth', 'wrong-dim.fvecs'], dir);
      assert.equal(truth.code, 2);
      assert.ok(!existsSync(join(dir, 'bad.seg')));
    });

    test('an output that cannot be written: exit 3, nothing left', () => {
      const r = run(runner, ['build', 'base.fvecs', '--out', 'no/such/dir/x.seg'], cwd());
      assert.equal(r.code, 3, r.err);
      assert.match(r.err, /no\/such\/dir\/x\.seg: cannot create the output file/);
    });
  });
}

// ------------------------------------------------------- large inputs

// Node 20 crashes (exit 139, or a V8 fatal error in the GC) once a WASI
// program has grown its memory by tens of megabytes, unless the runner
// turns off V8's fast API calls and concurrent marking (wasi/shoal).  A
// ~70 MB file makes the program grow past 200 MB.
describe('large input under WASI', () => {
  test('a 70 MB fvecs: build, verify, and the same bytes as native', () => {
    const dir = dirs.wasi;
    const n = 180_000, dim = 96;
    const buf = Buffer.alloc(n * (4 + 4 * dim));
    const f32 = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
    const i32 = new Int32Array(buf.buffer, buf.byteOffset, buf.length / 4);
    for (let i = 0; i < n; i++) {
      const at = i * (1 + dim);
      i32[at] = dim;
      for (let j = 0; j < dim; j++) f32[at + 1 + j] = ((i * 31 + j * 7) % 1000) / 1000;
    }
    writeFileSync(join(dir, 'large.fvecs'), buf);
    try {
      const w = ok('wasi', ['build', 'large.fvecs', '--out', 'large.seg', '--json'], dir);
      assert.equal(JSON.parse(w.out).records, n);
      ok('wasi', ['verify', 'large.seg'], dir);
      ok('native', ['build', 'large.fvecs', '--out', 'large-native.seg', '-q'], dir);
      assert.ok(readFileSync(join(dir, 'large.seg')).equals(readFileSync(join(dir, 'large-native.seg'))));
    } finally {
      for (const f of ['large.fvecs', 'large.seg', 'large-native.seg']) rmSync(join(dir, f), { force: true });
    }
  });
});

// ------------------------------------------------------- native vs WASI

describe('native and WASI agree', () => {
  test('byte-identical segments for the same input and seed', () => {
    for (const b of [...BUILDS, { out: 'merged.seg' }, { out: 'sq8-rerank.seg' }, { out: 'sq8-plain.seg' },
      { out: 'threads-4.seg' }]) {
      const a = readFileSync(join(dirs.native, b.out));
      const w = readFileSync(join(dirs.wasi, b.out));
      assert.ok(a.equals(w), `${b.out} differs between native and WASI`);
    }
  });

  test('identical --json output', () => {
    const cases = [
      ['search', 'hnsw.seg', '--query', 'queries.fvecs', '-k', '10', '--ef', '20', '--json'],
      ['search', 'ivf-pq.seg', '--query', 'queries.jsonl', '-k', '10', '--nprobe', '3', '--json'],
      ['search', 'bvecs.seg', '--query', 'queries.fvecs', '-k', '7', '--json'],
      ['search', 'hnsw-sq8.seg', '--query', 'queries.fvecs', '-k', '10', '--json'],
      ['search', 'sq8-rerank.seg', '--query', 'queries.fvecs', '-k', '10', '--ef', '100', '--rerank', '16', '--json'],
      ['search', 'docs.jsonl', '--kind', 'hnsw', '--seed', '9', '--query', 'queries.fvecs', '--json'],
      ['info', 'hnsw.seg', 'ivf-pq.seg', '--json'],
      ['verify', 'flat.seg', 'ivf.seg', '--json'],
      ['cid', 'hnsw.seg', 'base.fvecs', '--json'],
      ['build', 'base.jsonl', '--kind', 'ivf', '--quantizer', 'sq8', '--nlist', '4', '--out', 'again.seg', '--json'],
    ];
    for (const args of cases) {
      const a = ok('native', args, dirs.native).stdout;
      const w = ok('wasi', args, dirs.wasi).stdout;
      assert.ok(a.equals(w), `shoal ${args.join(' ')}:\nnative ${a}\nwasi   ${w}`);
    }
    const recall = (runner) => JSON.parse(ok(runner, ['bench', 'hnsw.seg', '--queries', 'queries.fvecs', '--ef', '10,20', '--json'], dirs[runner]).out)
      .runs.map((r) => r.recall);
    assert.deepEqual(recall('native'), recall('wasi'));
  });
});
