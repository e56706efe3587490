// hnsw.test.mjs -- kind 'hnsw' through the JS API, in both wasm variants:
// recall against exact search, ef, filters, progress, sq8 quantizer, stats,
// upsert/delete, and the parameter errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Index, ParameterError, DimensionError } from '../../js/index.mjs';
import { clustered, idsFor, recall } from './reference.mjs';

const DIM = 32, N = 3000, CLUSTERS = 20, QUERIES = 40, K = 10;

const data = clustered(N, DIM, 77, { clusters: CLUSTERS, spread: 0.25 });
const queries = clustered(QUERIES, DIM, 78, { clusters: CLUSTERS, spread: 0.25 });
const ids = idsFor(N);
const query = (q) => queries.subarray(q * DIM, (q + 1) * DIM);

for (const simd of [true, false]) {
  for (const metric of ['l2', 'ip', 'cosine']) {
    // Inner product is not a metric: the neighbour heuristic prunes worse and
    // ef 64 reaches ~0.92 here, so ip is held to the same bar at ef 128
    // (as in tests/test_hnsw.c).
    const ef = metric === 'ip' ? 128 : 64;
    test(`hnsw ${metric} (${simd ? 'simd' : 'baseline'}): recall@10 vs exact at ef ${ef}`, async () => {
      const exact = await Index.create({ dim: DIM, metric, kind: 'flat', simd });
      const hnsw = await Index.create({ dim: DIM, metric, kind: 'hnsw', M: 16, efConstruction: 100, seed: 5, simd });
      try {
        exact.add(ids, data);
        hnsw.add(ids, data);
        assert.equal(hnsw.size, N);
        const truth = [], got = [];
        for (let q = 0; q < QUERIES; q++) {
          truth.push(exact.search(query(q), K));
          got.push(hnsw.search(query(q), K, { ef }));
        }
        const r = recall(got, truth);
        assert.ok(r >= 0.95, `recall ${r}`);
        const stats = hnsw.stats();
        assert.equal(stats.size, N);
        assert.ok(stats.levels >= 2, `levels ${stats.levels}`);
        assert.ok(stats.meanDegree > 2 && stats.meanDegree <= 32, `mean degree ${stats.meanDegree}`);
        assert.equal(stats.memoryBytes, hnsw.memoryBytes());
      } finally {
        exact.free();
        hnsw.free();
      }
    });
  }
}

test('hnsw sq8 quantizer: smaller, still accurate', async () => {
  const exact = await Index.create({ dim: DIM, kind: 'flat' });
  const f32 = await Index.create({ dim: DIM, kind: 'hnsw', seed: 5 });
  const sq8 = await Index.create({ dim: DIM, kind: 'hnsw', quantizer: 'sq8', seed: 5 });
  try {
    for (const index of [exact, f32, sq8]) index.add(ids, data);
    const truth = [], got = [];
    for (let q = 0; q < QUERIES; q++) {
      truth.push(exact.search(query(q), K));
      got.push(sq8.search(query(q), K, { ef: 128 }));
    }
    const r = recall(got, truth);
    assert.ok(r >= 0.9, `sq8 recall ${r}`);
    assert.ok(sq8.memoryBytes() < f32.memoryBytes(), `${sq8.memoryBytes()} vs ${f32.memoryBytes()}`);
  } finally {
    exact.free();
    f32.free();
    sq8.free();
  }
});

test('hnsw filter returns only matching records, k of them when k match', async () => {
  const index = await Index.create({ dim: DIM, kind: 'hnsw', seed: 9 });
  try {
    index.add(ids, data);
    const even = (id) => Number(id.slice(1)) % 2 === 0;
    const rare = (id) => Number(id.slice(1)) % 100 === 7; // 1% of records
    for (let q = 0; q < 10; q++) {
      const a = index.search(query(q), K, { filter: even });
      assert.equal(a.ids.length, K);
      assert.ok(a.ids.every(even), a.ids.join());
      const b = index.search(query(q), K, { filter: rare });
      assert.equal(b.ids.length, K);
      assert.ok(b.ids.every(rare), b.ids.join());
    }
    const none = index.search(query(0), K, { filter: () => false });
    assert.deepEqual(none.ids, []);
  } finally {
    index.free();
  }
});

test('hnsw add reports progress and can be stopped', async () => {
  const index = await Index.create({ dim: DIM, kind: 'hnsw', seed: 1 });
  try {
    const seen = [];
    index.add(ids, data, { onProgress: (done, total) => seen.push([done, total]) });
    assert.deepEqual(seen.at(-1), [N, N]);
    assert.ok(seen.length >= 2 && seen.every(([d], i) => i === 0 || d > seen[i - 1][0]));

    const more = idsFor(3000, 'w');
    const stop = new Error('stop');
    assert.throws(() => index.add(more, data, {
      onProgress: (done) => { if (done >= 1024) throw stop; },
    }), (err) => err === stop);
    assert.equal(index.size, N + 1024); // the records before the stop stay
  } finally {
    index.free();
  }
});

test('hnsw upsert and delete: deleted ids never come back', async () => {
  const index = await Index.create({ dim: DIM, kind: 'hnsw', seed: 3 });
  try {
    index.add(ids, data);
    const doomed = ids.filter((_, i) => i % 10 !== 0); // delete 90%
    assert.equal(index.delete(doomed), doomed.length);
    assert.equal(index.size, N / 10);
    const gone = new Set(doomed);
    for (let q = 0; q < QUERIES; q++) {
      const r = index.search(query(q), K, { ef: 100 });
      assert.equal(r.ids.length, K);
      assert.ok(r.ids.every((id) => !gone.has(id)));
    }
    // Upsert a survivor to the exact query position: it must come first.
    index.add(['v0'], query(3));
    assert.equal(index.search(query(3), 1).ids[0], 'v0');
  } finally {
    index.free();
  }
});

test('hnsw parameter errors', async () => {
  await assert.rejects(Index.create({ dim: DIM, kind: 'hnsw', M: 1 }), ParameterError);
  await assert.rejects(Index.create({ dim: DIM, kind: 'hnsw', quantizer: 'pq' }), ParameterError);
  await assert.rejects(Index.create({ dim: DIM, kind: 'flat', M: 16 }), ParameterError);
  const index = await Index.create({ dim: DIM, kind: 'hnsw' });
  try {
    index.add(ids.slice(0, 100), data.subarray(0, 100 * DIM));
    assert.throws(() => index.search(query(0), 20, { ef: 10 }), ParameterError);
    assert.throws(() => index.search(query(0).subarray(1), 5), DimensionError);
    assert.equal(index.search(query(0), 20).ids.length, 20); // default ef is raised to k
  } finally {
    index.free();
  }
});

test('hnsw: the same seed builds the same graph, in both wasm variants', async () => {
  const results = [];
  for (const simd of [true, false]) {
    const index = await Index.create({ dim: DIM, kind: 'hnsw', seed: 42, simd });
    index.add(ids, data);
    results.push({ stats: index.stats(), top: index.search(query(1), K, { ef: 32 }).ids });
    index.free();
  }
  assert.deepEqual(results[0].top, results[1].top);
  assert.equal(results[0].stats.levels, results[1].stats.levels);
});
