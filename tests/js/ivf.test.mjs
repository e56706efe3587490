// ivf.test.mjs -- kind 'ivf' through the JS API, in both wasm variants:
// recall against exact search at a fixed nprobe for every quantizer
// (flat, sq8, pq 8-bit, pq 4-bit fast scan, with rerank), training
// (explicit, on the first add, errors), nprobe and rerank at search time,
// filters, delete/upsert, stats, and the same results from SIMD128 and the
// baseline build.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Index, ParameterError, StateError, UnsupportedError } from '../../js/index.mjs';
import { clustered, idsFor, recall } from './reference.mjs';

const DIM = 32, N = 3000, CLUSTERS = 24, QUERIES = 40, K = 10, NLIST = 32, NPROBE = 8;

const data = clustered(N, DIM, 77, { clusters: CLUSTERS, spread: 0.3 });
const queries = clustered(QUERIES, DIM, 78, { clusters: CLUSTERS, spread: 0.3 });
const ids = idsFor(N);
const query = (q) => queries.subarray(q * DIM, (q + 1) * DIM);

const CASES = [
  { name: 'flat', options: { quantizer: 'f32' }, min: 0.9 },
  { name: 'sq8', options: { quantizer: 'sq8' }, min: 0.85 },
  { name: 'pq8+rerank', options: { quantizer: 'pq', pqM: 8, rerank: 100 }, min: 0.9 },
  { name: 'pq4+rerank', options: { quantizer: 'pq', pqM: 16, pqBits: 4, rerank: 100 }, min: 0.9 },
];

for (const simd of [true, false]) {
  for (const { name, options, min } of CASES) {
    test(`ivf ${name} (${simd ? 'simd' : 'baseline'}): recall@10 vs exact at nprobe ${NPROBE}`, async () => {
      const exact = await Index.create({ dim: DIM, kind: 'flat', simd });
      const ivf = await Index.create({ dim: DIM, kind: 'ivf', nlist: NLIST, nprobe: NPROBE, seed: 5, simd, ...options });
      try {
        exact.add(ids, data);
        assert.equal(ivf.trained, false);
        ivf.add(ids, data); // trains on this first batch
        assert.equal(ivf.trained, true);
        assert.equal(ivf.size, N);
        const truth = [], got = [];
        for (let q = 0; q < QUERIES; q++) {
          truth.push(exact.search(query(q), K));
          got.push(ivf.search(query(q), K));
        }
        const r = recall(got, truth);
        assert.ok(r >= min, `recall ${r}`);
        const stats = ivf.stats();
        assert.equal(stats.nlist, NLIST);
        assert.equal(stats.memoryBytes, ivf.memoryBytes());
        assert.ok(stats.codesBytes > 0 && stats.codesBytes < stats.memoryBytes);
        assert.equal(stats.rerankBytes > 0, Boolean(options.rerank));
        if (options.pqBits === 4) assert.ok(stats.codesBytes < (N * DIM * 4) / 2, `${stats.codesBytes}`);
      } finally {
        exact.free();
        ivf.free();
      }
    });
  }
}

test('ivf: nprobe and rerank per search', async () => {
  const exact = await Index.create({ dim: DIM, kind: 'flat' });
  const ivf = await Index.create({ dim: DIM, kind: 'ivf', nlist: NLIST, quantizer: 'pq', pqBits: 4, rerank: 20, seed: 1 });
  try {
    exact.add(ids, data);
    ivf.train(data);
    ivf.add(ids, data);
    const truth = [], one = [], all = [];
    for (let q = 0; q < QUERIES; q++) {
      truth.push(exact.search(query(q), K));
      one.push(ivf.search(query(q), K, { nprobe: 1 }));
      all.push(ivf.search(query(q), K, { nprobe: NLIST, rerank: 300 }));
    }
    assert.ok(recall(one, truth) < recall(all, truth));
    assert.ok(recall(all, truth) >= 0.98, `${recall(all, truth)}`);
    assert.throws(() => ivf.search(query(0), K, { nprobe: NLIST + 1 }), ParameterError);
    assert.throws(() => ivf.search(query(0), K, { rerank: 5 }), ParameterError);
  } finally {
    exact.free();
    ivf.free();
  }
});

test('ivf training errors and parameter errors', async () => {
  await assert.rejects(Index.create({ dim: DIM, kind: 'ivf', quantizer: 'pq', pqM: 5 }), ParameterError);
  await assert.rejects(Index.create({ dim: DIM, kind: 'ivf', quantizer: 'pq', pqBits: 6 }), ParameterError);
  await assert.rejects(Index.create({ dim: DIM, kind: 'ivf', quantizer: 'opq' }), ParameterError);
  await assert.rejects(Index.create({ dim: DIM, kind: 'ivf', rerank: 10 }), ParameterError); // flat lists
  await assert.rejects(Index.create({ dim: DIM, kind: 'flat', nlist: 8 }), ParameterError);
  const ivf = await Index.create({ dim: DIM, kind: 'ivf', nlist: 64 });
  const flat = await Index.create({ dim: DIM });
  try {
    assert.throws(() => ivf.train(data.subarray(0, 50 * DIM)), (e) => e instanceof ParameterError && /nlist/.test(e.message));
    assert.throws(() => ivf.add(ids.slice(0, 100), data.subarray(0, 100 * DIM)),
      (e) => e instanceof StateError && /train/.test(e.message));
    assert.equal(ivf.size, 0);
    assert.deepEqual(ivf.search(query(0), K).ids, []);
    assert.throws(() => flat.train(data), UnsupportedError);
    assert.equal(flat.trained, true);
  } finally {
    ivf.free();
    flat.free();
  }
});

test('ivf filter, delete and upsert', async () => {
  const ivf = await Index.create({ dim: DIM, kind: 'ivf', nlist: NLIST, quantizer: 'sq8', rerank: 30, seed: 3 });
  try {
    ivf.add(ids, data);
    // The data's cluster is i % 24, so the filter must not follow it: a
    // filter applies inside the probed lists only.
    const some = (id) => Number(id.slice(1)) % 7 < 4;
    for (let q = 0; q < 10; q++) {
      const r = ivf.search(query(q), K, { filter: some });
      assert.equal(r.ids.length, K);
      assert.ok(r.ids.every(some));
    }
    const doomed = ids.filter((_, i) => i % 3 !== 0);
    assert.equal(ivf.delete(doomed), doomed.length);
    const gone = new Set(doomed);
    for (let q = 0; q < QUERIES; q++) {
      const r = ivf.search(query(q), K, { nprobe: NLIST });
      assert.equal(r.ids.length, K);
      assert.ok(r.ids.every((id) => !gone.has(id)));
    }
    ivf.add(['v0'], query(3));
    assert.equal(ivf.search(query(3), 1, { nprobe: NLIST }).ids[0], 'v0');
  } finally {
    ivf.free();
  }
});

test('ivf: the same seed gives the same results in both wasm variants', async () => {
  const results = [];
  for (const simd of [true, false]) {
    const rows = [];
    for (const options of [{ quantizer: 'f32' }, { quantizer: 'sq8' }, { quantizer: 'pq', pqM: 8 },
      { quantizer: 'pq', pqM: 16, pqBits: 4 }, { quantizer: 'pq', pqM: 16, pqBits: 4, rerank: 30 }]) {
      const ivf = await Index.create({ dim: DIM, kind: 'ivf', nlist: NLIST, seed: 42, simd, trainIters: 4, ...options });
      ivf.add(ids, data);
      for (let q = 0; q < 10; q++) {
        const r = ivf.search(query(q), K);
        rows.push(r.ids.join(), Array.from(r.distances).join());
      }
      ivf.free();
    }
    results.push(rows);
  }
  assert.deepEqual(results[0], results[1]);
});
