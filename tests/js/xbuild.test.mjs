// xbuild.test.mjs -- the same seeded exact searches must give the same ids,
// in the same order, with the same float distances, from all four builds:
// native C (build/xbuild), WASI (build/wasi/xbuild.wasm under node:wasi),
// and the JS API over the SIMD128 and the baseline wasm.  Every kernel sums
// in the reference's order without FMA, so not even the last bit may differ.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { Collection, Index } from '../../js/index.mjs';
import { TestRng } from './data.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
// Keep in step with tests/xbuild.c.
const N = 1500, DIM = 37, QUERIES = 25, K = 10, DELETE_STEP = 3, DELETE_BELOW = 300;
// Configurations in tests/xbuild.c's order: kind plus its options.
const HNSW = { seed: 99, M: 8, efConstruction: 64, efSearch: 24 };
const IVF = { seed: 99, nlist: 16, nprobe: 4 };
const KINDS = [
  { kind: 'flat', seed: 99 }, // C seeds every kind; the seed is part of a segment
  { kind: 'hnsw', ...HNSW },
  { kind: 'ivf', ...IVF },
  { kind: 'ivf', ...IVF, quantizer: 'pq', pqBits: 4, pqM: 37, rerank: 20 },
  { kind: 'hnsw', ...HNSW, quantizer: 'sq8' }, // trained at 1024 records, mid-add
  { kind: 'ivf', ...IVF, quantizer: 'sq8', rerank: 20 },
  { kind: 'ivf', ...IVF, quantizer: 'pq', pqBits: 8, pqM: 37, trainIters: 4 },
  { kind: 'hnsw', ...HNSW, quantizer: 'sq8', rerank: 20 }, // copies; the best 20 of ef 24 re-scored
  { kind: 'hnsw', ...HNSW, buildBatch: 64 }, // batched inserts: two threads natively, one here
  { kind: 'hnsw', ...HNSW, quantizer: 'sq8', rerank: 20 }, // copies, on data with a grid (GRID)
];
// The configurations whose distances are the flat index's (float32 rows), and
// the one whose data is rounded down to multiples of 2^-7, so the SQ8 fit
// takes the data's own grid (src/index/sq8.h).
const EXACT = [7, 8], GRID = 9;
const onGrid = (v) => { for (let i = 0; i < v.length; i++) v[i] = Math.floor(v[i] * 128) / 128; return v; };
const METRICS = ['l2', 'ip', 'cosine'];

function parse(text) {
  return text.trim().split('\n').filter((line) => !line.startsWith('cid ') && !line.startsWith('root ')).map((line) => {
    const [metric, query, rank, id, distance] = line.split(' ');
    // %.9g round-trips a float exactly.
    return { key: `${metric} ${query} ${rank}`, id, distance: Math.fround(Number(distance)) };
  });
}

// "root <metric> <step> <cid>" lines: the collections' versions.
function parseRoots(text) {
  return text.trim().split('\n').filter((line) => line.startsWith('root ')).map((line) => line.slice(5));
}

// tests/xbuild.c's collections(): the same steps through the JS API.
const COLL_FLUSH = 400, COLL_MERGE = 3, COLL_BATCH = 500;
async function collectionRoots(simd) {
  const roots = [];
  for (let m = 0; m < METRICS.length; m++) {
    const data = new TestRng(1000 + m).fill(new Float32Array(N * DIM));
    const c = await Collection.create({
      dim: DIM, metric: METRICS[m], simd, ...HNSW, flushRecords: COLL_FLUSH, mergeFactor: COLL_MERGE,
    });
    let step = 0;
    const seen = () => {
      if (roots[roots.length - 1] !== `${m} ${step - 1} ${c.cid}`) roots.push(`${m} ${step++} ${c.cid}`);
    };
    try {
      seen();
      for (let at = 0; at < N; at += COLL_BATCH) {
        const batch = [];
        for (let i = at; i < at + COLL_BATCH; i++) batch.push({ id: `v${i}`, vector: data.subarray(i * DIM, (i + 1) * DIM) });
        await c.upsert(batch); // flushes itself when due
        seen();
      }
      for (let i = 0; i < DELETE_BELOW; i += DELETE_STEP) assert.equal(await c.delete([`v${i}`]), 1);
      await c.flush();
      seen();
      await c.compact();
      seen();
    } finally {
      c.free();
    }
  }
  return roots;
}

// "cid <config> <level> <cid>" lines: the segments' CIDs.
function parseCids(text) {
  return text.trim().split('\n').filter((line) => line.startsWith('cid ')).map((line) => line.slice(4));
}

async function runJs(simd, cids = []) {
  const rows = [];
  for (let kind = 0; kind < KINDS.length; kind++) for (let m = 0; m < METRICS.length; m++) {
    const rng = new TestRng(1000 + m);
    const data = rng.fill(new Float32Array(N * DIM));
    for (let i = 9; i < N; i += 10) data.copyWithin(i * DIM, (i - 1) * DIM, i * DIM);
    if (kind === GRID) onGrid(data);
    const ids = Array.from({ length: N }, (_, i) => `v${i}`);
    const index = await Index.create({ dim: DIM, metric: METRICS[m], simd, ...KINDS[kind] });
    try {
      index.add(ids, data);
      for (let i = 0; i < DELETE_BELOW; i += DELETE_STEP) assert.equal(index.delete([ids[i]]), 1);
      const fresh = rng.fill(new Float32Array((DELETE_BELOW / (2 * DELETE_STEP)) * DIM));
      if (kind === GRID) onGrid(fresh);
      for (let i = 0, j = 0; i < DELETE_BELOW; i += 2 * DELETE_STEP, j++) {
        index.add([ids[i]], fresh.subarray(j * DIM, (j + 1) * DIM));
      }
      const query = new Float32Array(DIM);
      for (let q = 0; q <= QUERIES; q++) {
        if (q < QUERIES) rng.fill(query);
        else query.set(data.subarray(998 * DIM, 999 * DIM));
        const result = index.search(query, K);
        result.ids.forEach((id, r) =>
          rows.push({ key: `${kind}${m} ${q} ${r}`, id, distance: result.distances[r] }));
      }
      for (const level of [0, 3]) {
        index.save({ zstdLevel: level });
        cids.push(`${kind}${m} ${level} ${index.cid}`);
      }
    } finally {
      index.free();
    }
  }
  return rows;
}

function assertSame(name, rows, reference) {
  assert.equal(rows.length, reference.length, `${name}: result count`);
  for (let i = 0; i < rows.length; i++) {
    assert.equal(rows[i].key, reference[i].key, `${name}: row ${i}`);
    assert.equal(rows[i].id, reference[i].id, `${name}: id at ${rows[i].key}`);
    assert.equal(rows[i].distance, reference[i].distance, `${name}: distance at ${rows[i].key}`);
  }
}

test('native, WASI, wasm SIMD and wasm baseline agree on flat, HNSW and IVF (f32, SQ8, PQ, rerank copies) search and segment CIDs', async () => {
  const nativeBin = `${root}build/xbuild`, wasiBin = `${root}build/wasi/xbuild.wasm`;
  assert.ok(existsSync(nativeBin) && existsSync(wasiBin), 'run `make test` (builds xbuild)');
  const nativeText = execFileSync(nativeBin, { encoding: 'utf8' });
  const native = parse(nativeText);
  const nativeCids = parseCids(nativeText);
  assert.equal(nativeCids.length, KINDS.length * METRICS.length * 2);
  assert.equal(native.length, KINDS.length * METRICS.length * (QUERIES + 1) * K);
  // The tie query: rows 998 and 999 are equal, so 998 (inserted first) leads.
  const tie = native.filter((r) => r.key.endsWith(` ${QUERIES} 0`) || r.key.endsWith(` ${QUERIES} 1`));
  for (let i = 0; i < tie.length; i += 2) assert.deepEqual([tie[i].id, tie[i + 1].id], ['v998', 'v999']);
  // The rerank copies and the batched f32 graph (EXACT) give the flat index's
  // exact distance for every id both return, deletes and upserts included.
  const where = (r) => { // config (kind digit, metric digit), query
    const [config, query] = r.key.split(' ');
    return { kind: Number(config[0]), at: `${config[1]} ${query} ${r.id}` };
  };
  const flatDistance = new Map();
  for (const r of native) if (where(r).kind === 0) flatDistance.set(where(r).at, r.distance);
  let shared = 0;
  for (const r of native) {
    const { kind, at } = where(r), want = flatDistance.get(at);
    if (!EXACT.includes(kind) || want === undefined) continue;
    shared++;
    assert.equal(r.distance, want, `copies: distance of ${r.id} at ${r.key}`);
  }
  assert.ok(shared > 0);

  const wasiText = execFileSync(process.execPath, [`${root}wasi/run.mjs`, wasiBin],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  assertSame('wasi', parse(wasiText), native);
  assert.deepEqual(parseCids(wasiText), nativeCids, 'wasi segment CIDs');
  for (const simd of [true, false]) {
    const cids = [];
    assertSame(simd ? 'wasm simd' : 'wasm baseline', await runJs(simd, cids), native);
    assert.deepEqual(cids, nativeCids, `${simd ? 'wasm simd' : 'wasm baseline'} segment CIDs`);
  }
});

test('native, WASI, wasm SIMD and wasm baseline write the same collection versions', async () => {
  const nativeBin = `${root}build/xbuild`, wasiBin = `${root}build/wasi/xbuild.wasm`;
  const native = parseRoots(execFileSync(nativeBin, { encoding: 'utf8' }));
  assert.equal(native.length, METRICS.length * 6, 'empty, 3 flushes, deletes, compaction per metric');
  assert.equal(new Set(native.map((r) => r.split(' ')[2])).size, native.length, 'every version is new');
  const wasi = parseRoots(execFileSync(process.execPath, [`${root}wasi/run.mjs`, wasiBin],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  assert.deepEqual(wasi, native, 'wasi collection roots');
  for (const simd of [true, false])
    assert.deepEqual(await collectionRoots(simd), native, `${simd ? 'wasm simd' : 'wasm baseline'} collection roots`);
});
