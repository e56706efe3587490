// hnsw.test.mjs -- kind 'hnsw' through the JS API, in both wasm variants:
// recall against exact search, ef, filters, progress, sq8 quantizer (with
// and without rerank copies), stats, upsert/delete, and the parameter errors.
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

// Data stored in 8 bits (uint8 values; the range 0..254 in the first rows the
// fit sees) gets the data's own grid: its codes are exact, so get() returns
// the vectors given and distances are the flat index's -- without copies.
// Off the grid (one value 0.5 among them) SQ8 is only approximate.
for (const simd of [true, false]) {
  test(`hnsw sq8 (${simd ? 'simd' : 'baseline'}): uint8 data is coded exactly`, async () => {
    const dim = 16, n = 1200;
    for (const offGrid of [false, true]) {
      const bytes = new Float32Array(n * dim);
      let x = 7;
      for (let i = 0; i < bytes.length; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; bytes[i] = (x >>> 8) % 255; }
      bytes.fill(0, 0, dim);
      bytes.fill(254, dim, 2 * dim);
      if (offGrid) bytes[3 * dim + 5] = 0.5;
      const names = idsFor(n);
      const sq8 = await Index.create({ dim, kind: 'hnsw', quantizer: 'sq8', seed: 5, simd });
      const flat = await Index.create({ dim, kind: 'flat', simd });
      try {
        sq8.add(names, bytes);
        flat.add(names, bytes);
        let differ = 0;
        for (let i = 0; i < n; i++) {
          const got = sq8.get(names[i]).vector;
          for (let j = 0; j < dim; j++) if (got[j] !== bytes[i * dim + j]) differ++;
        }
        if (!offGrid) {
          assert.equal(differ, 0);
          const q = bytes.slice(100 * dim, 101 * dim).map((v) => v + 3);
          const a = sq8.search(q, K, { ef: 64 }), all = flat.search(q, n);
          const exact = new Map(all.ids.map((id, r) => [id, all.distances[r]]));
          a.ids.forEach((id, r) => assert.equal(a.distances[r], exact.get(id), id));
        } else {
          assert.ok(differ > n * dim / 2, `${differ} values differ`);
        }
      } finally {
        sq8.free();
        flat.free();
      }
    }
  });
}

// SQ8 with rerank copies: the graph is walked on the int8 codes and the best
// candidates re-scored against float32 copies, so results carry the exact
// distances (the flat index's, bit for bit) and get() the vector given.  The
// same index without copies ranks on decoded codes: the baseline it must beat.
const SQ8 = { dim: DIM, kind: 'hnsw', quantizer: 'sq8', M: 16, efConstruction: 100, seed: 5 };
const RERANK = 256; // >= every ef below: the whole beam is re-scored
const bits = (f) => new Uint32Array(f.buffer, f.byteOffset, f.length);

for (const simd of [true, false]) {
  const variant = simd ? 'simd' : 'baseline';

  test(`hnsw sq8 + rerank (${variant}): exact distances, recall, get, stats`, async () => {
    const exact = await Index.create({ dim: DIM, kind: 'flat', simd });
    const plain = await Index.create({ ...SQ8, simd });
    const copies = await Index.create({ ...SQ8, rerank: RERANK, simd });
    try {
      for (const index of [exact, plain, copies]) index.add(ids, data); // N > 1024: trained on the codes
      const truth = [];
      for (let q = 0; q < QUERIES; q++) truth.push(exact.search(query(q), K));
      // Results of ids the exact answer also has: how many, and how many carry its distance.
      const agree = (got) => {
        let shared = 0, equal = 0;
        got.forEach((r, q) => r.ids.forEach((id, i) => {
          const j = truth[q].ids.indexOf(id);
          if (j >= 0) {
            shared++;
            equal += r.distances[i] === truth[q].distances[j];
          }
        }));
        return { shared, equal };
      };
      for (const ef of [32, 128]) {
        const byCode = [], reranked = [];
        for (let q = 0; q < QUERIES; q++) {
          byCode.push(plain.search(query(q), K, { ef }));
          reranked.push(copies.search(query(q), K, { ef }));
        }
        const rPlain = recall(byCode, truth), rCopies = recall(reranked, truth);
        assert.ok(rCopies >= rPlain, `ef ${ef}: recall ${rCopies} with copies, ${rPlain} without`);
        if (ef === 128) assert.ok(rCopies >= 0.99, `ef ${ef}: recall ${rCopies}`);
        const a = agree(reranked);
        assert.ok(a.shared > 0);
        assert.equal(a.equal, a.shared, `ef ${ef}: every shared result has the exact distance`);
        // Decoded codes give other distances: the check above can tell them apart.
        const b = agree(byCode);
        assert.ok(b.equal < b.shared, `ef ${ef}: ${b.equal} of ${b.shared} decoded distances exact`);
      }
      // A depth of k re-scores only the k best codes: sorted exact distances,
      // recall no better than re-scoring the whole beam.
      const shallow = [], whole = [];
      for (let q = 0; q < QUERIES; q++) {
        shallow.push(copies.search(query(q), K, { ef: 128, rerank: K }));
        whole.push(copies.search(query(q), K, { ef: 128, rerank: 128 }));
      }
      for (const r of shallow) {
        assert.equal(r.ids.length, K);
        assert.ok(r.distances.every((d, i) => i === 0 || d >= r.distances[i - 1]));
      }
      const s = agree(shallow);
      assert.equal(s.equal, s.shared);
      assert.ok(recall(shallow, truth) <= recall(whole, truth));

      // get(): the vector as added, every bit; without copies only an approximation.
      let decodedExact = 0;
      for (let i = 0; i < N; i++) {
        const want = bits(data.subarray(i * DIM, (i + 1) * DIM));
        assert.deepEqual(bits(copies.get(ids[i]).vector), want, ids[i]);
        decodedExact += bits(plain.get(ids[i]).vector).every((v, j) => v === want[j]);
      }
      assert.ok(decodedExact < N, `${decodedExact} of ${N} decoded vectors exact`);

      // The copies are counted apart from the graph, and only when kept.
      const withCopies = copies.stats(), without = plain.stats();
      assert.ok(withCopies.rerankBytes >= N * DIM * 4, `rerankBytes ${withCopies.rerankBytes}`);
      assert.equal(without.rerankBytes, 0);
      assert.ok(withCopies.memoryBytes >= without.memoryBytes + withCopies.rerankBytes,
        `${withCopies.memoryBytes} vs ${without.memoryBytes} + ${withCopies.rerankBytes}`);
    } finally {
      exact.free();
      plain.free();
      copies.free();
    }
  });

  test(`hnsw sq8 + rerank (${variant}): parameter errors`, async () => {
    const plain = await Index.create({ ...SQ8, simd });
    const copies = await Index.create({ ...SQ8, rerank: 32, simd });
    try {
      plain.add(ids.slice(0, 200), data.subarray(0, 200 * DIM));
      copies.add(ids.slice(0, 200), data.subarray(0, 200 * DIM));
      assert.throws(() => copies.search(query(0), K, { rerank: K - 1 }), ParameterError, 'rerank below k');
      assert.equal(copies.search(query(0), K, { rerank: K }).ids.length, K);
      assert.throws(() => plain.search(query(0), K, { rerank: K }), ParameterError, 'no copies to rerank from');
      assert.equal(plain.search(query(0), K).ids.length, K);
    } finally {
      plain.free();
      copies.free();
    }
    // An f32 graph already holds float32: copies are refused, named or by default.
    await assert.rejects(Index.create({ dim: DIM, kind: 'hnsw', quantizer: 'f32', rerank: 10, simd }), ParameterError);
    await assert.rejects(Index.create({ dim: DIM, kind: 'hnsw', rerank: 10, simd }), ParameterError);
  });

  test(`hnsw sq8 + rerank (${variant}): save, load and open keep the copies`, async () => {
    const plain = await Index.create({ ...SQ8, simd });
    const copies = await Index.create({ ...SQ8, rerank: RERANK, simd });
    const others = [];
    try {
      plain.add(ids, data);
      copies.add(ids, data);
      const bytes = copies.save();
      // The HNSW_COPIES required feature (bit 2 of header byte 16): set only with copies.
      assert.equal(bytes[16] & 4, 4);
      assert.equal(plain.save()[16] & 4, 0);
      assert.ok(bytes.length >= N * DIM * 4);
      const loaded = await Index.load(bytes, { simd });
      others.push(loaded);
      // rows 'memory': read whole and loaded (the default leaves the copies in
      // the source: open.test.mjs)
      const opened = await Index.open(bytes, { simd, rows: 'memory' });
      others.push(opened);
      const across = await Index.load(bytes, { simd: !simd }); // the other wasm variant
      others.push(across);
      for (const index of others) {
        assert.equal(index.cid, copies.cid);
        assert.equal(index.size, N);
        assert.ok(index.stats().rerankBytes >= N * DIM * 4);
      }
      const again = loaded.save();
      assert.ok(Buffer.from(again).equals(Buffer.from(bytes)), 'load -> save gives the same bytes');
      for (let q = 0; q < QUERIES; q++) {
        for (const options of [{}, { ef: 128 }, { ef: 128, rerank: 16 }]) {
          const want = copies.search(query(q), K, options);
          for (const [name, index] of [['load', loaded], ['open', opened], ['other variant', across]]) {
            const got = index === opened ? await index.searchAsync(query(q), K, options) : index.search(query(q), K, options);
            assert.deepEqual(got.ids, want.ids, `${name} query ${q} ${JSON.stringify(options)}`);
            assert.deepEqual(bits(got.distances), bits(want.distances), `${name} query ${q} ${JSON.stringify(options)}`);
          }
        }
      }
      for (const i of [0, 77, 1234, N - 1]) {
        const want = bits(data.subarray(i * DIM, (i + 1) * DIM));
        for (const index of others) assert.deepEqual(bits(index.get(ids[i]).vector), want, ids[i]);
      }
    } finally {
      plain.free();
      copies.free();
      for (const index of others) index.free();
    }
  });
}

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
