// The JS package against a brute-force reference, for both wasm variants.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  Index, wasmInfo, simdSupported, ShoalError, DimensionError, InvalidVectorError,
  InvalidIdError, ParameterError, StateError,
} from '../../js/index.mjs';
import {
  Reference, assertMatchesReference, randomVectors, integerVectors, idsFor, distance,
} from './reference.mjs';

const VARIANTS = [
  { simd: true, kernels: 'wasm-simd128' },
  { simd: false, kernels: 'scalar' },
];
const METRICS = ['l2', 'ip', 'cosine'];

test('this Node validates SIMD128, so both variants are exercised', () => {
  assert.equal(simdSupported(), true);
});

for (const { simd, kernels } of VARIANTS) {
  test(`variant simd=${simd} reports kernels '${kernels}'`, async () => {
    const info = await wasmInfo({ simd });
    assert.deepEqual(info, {
      version: '0.1.0', variant: simd ? 'simd' : 'base', kernels, simdSupported: true,
    });
    const index = await Index.create({ dim: 4, simd });
    try {
      assert.equal(index.simd, kernels);
    } finally {
      index.free();
    }
  });

  for (const metric of METRICS) {
    test(`${metric}, simd=${simd}: random data matches brute force`, async () => {
      // dim 37: not a multiple of 4 or 16, so SIMD tails are covered.
      const dim = 37, n = 600, k = 10;
      const index = await Index.create({ dim, metric, simd });
      try {
        const ref = new Reference(dim, metric);
        const ids = idsFor(n);
        const vectors = randomVectors(n, dim, 1234 + dim);
        assert.equal(index.add(ids, vectors), n);
        ref.add(ids, vectors);
        assert.equal(index.size, n);
        let exact = 0, total = 0;
        const queries = randomVectors(25, dim, 99);
        for (let q = 0; q < 25; q++) {
          const query = queries.subarray(q * dim, (q + 1) * dim);
          exact += assertMatchesReference(assert, index.search(query, k), ref, query, k);
          total += k;
        }
        // Near-ties may swap neighbours; on random data that is rare.
        assert.ok(exact >= total - 2, `${exact}/${total} ranks identical to the reference`);
        // k above size returns everything, still ranked.
        const small = await Index.create({ dim, metric, simd });
        try {
          small.add(ids.slice(0, 7), vectors.subarray(0, 7 * dim));
          const sref = new Reference(dim, metric);
          sref.add(ids.slice(0, 7), vectors.subarray(0, 7 * dim));
          const query = queries.subarray(0, dim);
          assertMatchesReference(assert, small.search(query, 100), sref, query, 100);
        } finally {
          small.free();
        }
      } finally {
        index.free();
      }
    });
  }

  for (const metric of ['l2', 'ip']) {
    test(`${metric}, simd=${simd}: integer data gives exact ids and distances`, async () => {
      // Small integers make float32 arithmetic exact: many exact ties, which
      // both sides must break by insertion order.
      const dim = 9, n = 400, k = 25;
      const index = await Index.create({ dim, metric, simd });
      try {
        const ref = new Reference(dim, metric);
        const vectors = integerVectors(n, dim, 7);
        index.add(idsFor(n), vectors);
        ref.add(idsFor(n), vectors);
        const queries = integerVectors(10, dim, 8);
        for (let q = 0; q < 10; q++) {
          const query = queries.subarray(q * dim, (q + 1) * dim);
          const want = ref.rank(query).slice(0, k);
          const got = index.search(query, k);
          assert.deepEqual(got.ids, want.map((r) => r.id));
          assert.deepEqual([...got.distances], want.map((r) => r.d));
        }
      } finally {
        index.free();
      }
    });
  }

  test(`simd=${simd}: upsert replaces and moves to the end of insertion order`, async () => {
    const index = await Index.create({ dim: 2, simd });
    try {
      index.add(['a', 'b', 'c'], [1, 1, 1, 1, 5, 5]);
      assert.deepEqual(index.search([1, 1], 3).ids, ['a', 'b', 'c']);
      index.add(['a'], [1, 1]); // same vector, but now the newest
      assert.equal(index.size, 3);
      assert.deepEqual(index.search([1, 1], 3).ids, ['b', 'a', 'c']);
      index.add(['b'], new Float32Array([9, 9]));
      assert.equal(index.size, 3);
      assert.deepEqual([...index.get('b').vector], [9, 9]);
      const r = index.search([9, 9], 3);
      assert.deepEqual(r.ids, ['b', 'c', 'a']);
      assert.deepEqual([...r.distances], [0, 32, 128]);
      // Within one batch the later of two equal ids wins.
      index.add(['d', 'd'], [3, 3, 4, 4]);
      assert.equal(index.size, 4);
      assert.deepEqual([...index.get('d').vector], [4, 4]);
    } finally {
      index.free();
    }
  });

  test(`simd=${simd}: delete, size and get`, async () => {
    const dim = 5, n = 50;
    const index = await Index.create({ dim, simd });
    try {
      const vectors = randomVectors(n, dim, 5);
      const ref = new Reference(dim, 'l2');
      index.add(idsFor(n), vectors);
      ref.add(idsFor(n), vectors);
      for (let i = 0; i < n; i++)
        assert.deepEqual(index.get(`v${i}`).vector, vectors.slice(i * dim, (i + 1) * dim));
      assert.equal(index.get('nope'), undefined);
      // An empty id is invalid everywhere (delete([''] throws too), not absent.
      assert.throws(() => index.get(''), InvalidIdError);

      const gone = ['v3', 'v10', 'v11', 'absent', 'v3'];
      assert.equal(index.delete(gone), 3);
      ref.delete(gone);
      assert.equal(index.size, n - 3);
      assert.equal(index.get('v10'), undefined);
      assert.equal(index.delete([]), 0);
      assert.equal(index.delete(['v10']), 0);
      const query = vectors.slice(10 * dim, 11 * dim); // v10's own vector
      const r = index.search(query, n);
      assert.equal(r.ids.length, n - 3);
      assert.ok(!r.ids.includes('v10') && !r.ids.includes('v3'));
      assertMatchesReference(assert, r, ref, query, n);

      // A deleted id can come back, as the newest record.
      index.add(['v10'], query);
      ref.add(['v10'], query);
      assert.equal(index.size, n - 2);
      assert.equal(index.search(query, 1).ids[0], 'v10');
      assertMatchesReference(assert, index.search(query, 20), ref, query, 20);
    } finally {
      index.free();
    }
  });

  test(`simd=${simd}: duplicate vectors come back in insertion order`, async () => {
    const dim = 16;
    const index = await Index.create({ dim, metric: 'cosine', simd });
    try {
      const v = randomVectors(1, dim, 3);
      const ids = ['t4', 't0', 't3', 't1', 't2'];
      for (const id of ids) index.add([id], v); // one at a time
      index.add(['far'], randomVectors(1, dim, 4));
      let r = index.search(v, 5);
      assert.deepEqual(r.ids, ids);
      assert.equal(new Set(r.distances).size, 1, 'exact ties');
      index.add(['t0'], v); // upsert: t0 becomes the newest
      r = index.search(v, 5);
      assert.deepEqual(r.ids, ['t4', 't3', 't1', 't2', 't0']);
      index.delete(['t3']);
      index.add(['t9'], v); // reuses t3's label but is still the newest
      assert.deepEqual(index.search(v, 5).ids, ['t4', 't1', 't2', 't0', 't9']);
    } finally {
      index.free();
    }
  });
}

test('cosine stores unit vectors and ip/l2 store them as given', async () => {
  for (const metric of METRICS) {
    const index = await Index.create({ dim: 3, metric });
    try {
      index.add(['x'], [3, 0, 4]);
      const want = metric === 'cosine' ? [0.6, 0, 0.8] : [3, 0, 4];
      assert.deepEqual([...index.get('x').vector], [...new Float32Array(want)]);
      const d = index.search([0, 0, 1], 1).distances[0];
      const exact = distance(metric, [0, 0, 1], [3, 0, 4]).d;
      assert.ok(Math.abs(d - exact) < 1e-6, `${metric}: ${d} vs ${exact}`);
    } finally {
      index.free();
    }
  }
});

test('unicode ids round-trip through add, search, get and delete', async () => {
  const index = await Index.create({ dim: 2 });
  try {
    const ids = ['é', '日本語', '🐟 shoal', 'a\u0000b', 'x'.repeat(1024), '€'.repeat(341)];
    const vectors = new Float32Array(ids.flatMap((_, i) => [i, 0]));
    index.add(ids, vectors);
    assert.deepEqual(index.search([0, 0], ids.length).ids, ids);
    ids.forEach((id, i) => assert.deepEqual([...index.get(id).vector], [i, 0]));
    assert.equal(index.get('a'), undefined, 'ids with NUL are not cut short');
    assert.equal(index.delete(['日本語', '🐟 shoal']), 2);
    assert.deepEqual(index.search([0, 0], 10).ids, ['é', 'a\u0000b', 'x'.repeat(1024), '€'.repeat(341)]);
  } finally {
    index.free();
  }
});

// search() copies its results' ids out in the same call as the search
// (wasm/binding.c, shoal_js_search) when they fit 32 bytes each, and asks
// for them one by one when they do not: both ways, and the ASCII and
// non-ASCII decodings, must give exactly the ids stored, and the metadata
// must be asked for exactly when a result has some.
test('search returns every id and metadata exactly, packed or one by one', async () => {
  const index = await Index.create({ dim: 1 });
  try {
    const ids = ['a', 'bb', 'é', '日本語', '🐟', 'x'.repeat(31), 'y'.repeat(33), 'z'.repeat(200), 'plain', '€€'];
    const metadata = ids.map((_, i) => (i === 3 ? { only: 'this one' } : null));
    index.add(ids, new Float32Array(ids.map((_, i) => i)), { metadata });
    for (let k = 1; k <= ids.length; k++) {
      for (const start of [0, 2, 5]) {
        // Closest first, ties in insertion order.
        const order = ids.map((_, i) => i).sort((x, y) => (x - start) ** 2 - (y - start) ** 2 || x - y).slice(0, k);
        const got = index.search([start], k);
        assert.deepEqual(got.ids, order.map((i) => ids[i]), `k ${k} from ${start}`);
        assert.deepEqual(got.metadata, order.map((i) => metadata[i]), `k ${k} from ${start}`);
      }
    }
    // All ASCII and short: the packed path alone.
    assert.deepEqual(index.search([8], 1).ids, ['plain']);
    assert.deepEqual(index.search([0], 2).ids, ['a', 'bb']);
  } finally {
    index.free();
  }
});

// Every bad input must throw the right class with its code and leave the
// index exactly as it was.
test('bad input throws the right error and leaves the index unchanged', async (t) => {
  for (const metric of METRICS) {
    const dim = 8;
    const index = await Index.create({ dim, metric });
    const vectors = randomVectors(20, dim, 11);
    index.add(idsFor(20), vectors);
    const query = randomVectors(1, dim, 12);
    const snapshot = () => ({
      size: index.size,
      memory: index.memoryBytes(),
      result: index.search(query, 20),
      v0: index.get('v0'),
    });
    const before = snapshot();
    const good = randomVectors(1, dim, 13);
    const withBad = (i, value) => {
      const v = randomVectors(3, dim, 14);
      v[i] = value;
      return v;
    };
    const cases = [
      ['vectors length', DimensionError, -3, () => index.add(['n1'], new Float32Array(dim + 1))],
      ['vectors length for the batch', DimensionError, -3, () => index.add(['n1', 'n2'], good)],
      ['query too short', DimensionError, -3, () => index.search(new Float32Array(dim - 1), 3)],
      ['query too long', DimensionError, -3, () => index.search(new Float32Array(dim + 1), 3)],
      ['NaN component', InvalidVectorError, -4, () => index.add(['n1', 'v0', 'n3'], withBad(dim + 2, NaN))],
      ['Infinity component', InvalidVectorError, -4, () => index.add(['n1', 'n2', 'n3'], withBad(2 * dim + 7, Infinity))],
      ['-Infinity component', InvalidVectorError, -4, () => index.add(['v1', 'n2', 'n3'], withBad(0, -Infinity))],
      ['NaN query', InvalidVectorError, -4, () => index.search(withBad(3, NaN).subarray(0, dim), 3)],
      ['Infinity query', InvalidVectorError, -4, () => index.search(withBad(0, Infinity).subarray(0, dim), 3)],
      ['empty id', InvalidIdError, -5, () => index.add(['n1', '', 'n3'], randomVectors(3, dim, 15))],
      ['id over 1024 bytes', InvalidIdError, -5, () => index.add(['x'.repeat(1025)], good)],
      ['id over 1024 UTF-8 bytes', InvalidIdError, -5, () => index.add(['€'.repeat(342)], good)],
      ['lone surrogate id', InvalidIdError, -5, () => index.add(['\ud800x'], good)],
      ['empty id in delete', InvalidIdError, -5, () => index.delete(['v0', ''])],
      ['k = 0', ParameterError, -2, () => index.search(query, 0)],
      ['k over the limit', ParameterError, -2, () => index.search(query, 65537)],
      ['fractional k', ParameterError, -2, () => index.search(query, 1.5)],
      ['negative k', ParameterError, -2, () => index.search(query, -1)],
      ['unknown search option', ParameterError, -2, () => index.search(query, 3, { efSearch: 10 })],
    ];
    if (metric === 'cosine') {
      cases.push(
        ['zero vector under cosine', InvalidVectorError, -4, () => index.add(['n1', 'z'], new Float32Array([...good, ...new Float32Array(dim)]))],
        ['zero query under cosine', InvalidVectorError, -4, () => index.search(new Float32Array(dim), 3)],
      );
    } else {
      cases.push(
        ['vector longer than 2^62', InvalidVectorError, -4, () => index.add(['n1', 'n2', 'n3'], withBad(dim + 1, 5e18))],
        ['query longer than 2^62', InvalidVectorError, -4, () => index.search(withBad(2, 5e18).subarray(0, dim), 3)],
      );
    }
    for (const [name, Class, code, call] of cases) {
      await t.test(`${metric}: ${name}`, () => {
        assert.throws(call, (err) => {
          assert.ok(err instanceof Class, `${err.name}: ${err.message}`);
          assert.ok(err instanceof ShoalError);
          assert.equal(err.code, code);
          assert.ok(err.message.length > 0);
          return true;
        });
        assert.deepEqual(snapshot(), before);
      });
    }
    await t.test(`${metric}: type errors`, () => {
      assert.throws(() => index.add('v0', good), TypeError);
      assert.throws(() => index.add([1], good), TypeError);
      assert.throws(() => index.add(['n1'], 'nope'), TypeError);
      assert.throws(() => index.delete('v0'), TypeError);
      assert.throws(() => index.get(5), TypeError);
      assert.throws(() => index.search({}, 1), TypeError);
      assert.deepEqual(snapshot(), before);
    });
    index.free();
  }
});

test('zero vectors are fine under l2 and ip', async () => {
  for (const metric of ['l2', 'ip']) {
    const index = await Index.create({ dim: 3, metric });
    try {
      index.add(['z'], new Float32Array(3));
      const r = index.search(new Float32Array(3), 1);
      assert.deepEqual(r.ids, ['z']);
      assert.ok(r.distances[0] === 0, `${r.distances[0]}`); // -0 under ip is fine
    } finally {
      index.free();
    }
  }
});

test('use after free throws StateError', async () => {
  const index = await Index.create({ dim: 2 });
  index.add(['a'], [1, 2]);
  index.free();
  index.free(); // idempotent
  for (const call of [
    () => index.size,
    () => index.memoryBytes(),
    () => index.add(['b'], [1, 2]),
    () => index.search([1, 2], 1),
    () => index.delete(['a']),
    () => index.get('a'),
    () => index.dim,
    () => index.metric,
    () => index.kind,
    () => index.simd,
  ]) {
    assert.throws(call, (err) => err instanceof StateError && err.code === -8 && /freed/.test(err.message));
  }
});

test('Index.create validates its options', async () => {
  const bad = [
    [{ dim: 0 }, ParameterError],
    [{ dim: 16385 }, ParameterError],
    [{ dim: 2.5 }, ParameterError],
    [{ dim: '8' }, ParameterError],
    [{}, ParameterError],
    [{ dim: 4, metric: 'euclid' }, ParameterError],
    [{ dim: 4, kind: 'lsh' }, ParameterError],
    [{ dim: 4, kind: 'toString' }, ParameterError],
    [{ dim: 4, seed: -1 }, ParameterError],
    [{ dim: 4, seed: 1n << 64n }, ParameterError],
    [{ dim: 4, seed: 0.5 }, ParameterError],
    [{ dim: 4, M: 16 }, ParameterError],
    [{ dim: 4, simd: 'yes' }, TypeError],
  ];
  for (const [options, Class] of bad)
    await assert.rejects(Index.create(options), (err) => {
      assert.ok(err instanceof Class, `${JSON.stringify(options, (_, v) => typeof v === 'bigint' ? `${v}n` : v)}: ${err}`);
      if (Class === ParameterError) assert.equal(err.code, -2);
      return true;
    });
  await assert.rejects(Index.create(), TypeError);
  // Create-time limits name the rule that was broken.
  await assert.rejects(Index.create({ dim: 20000 }), /dim = 20000; it must be 1\.\.16384/);
  await assert.rejects(Index.create({ dim: 4, kind: 'hnsw', M: 1 }), /hnsw M = 1; it must be 2\.\.1024/);
  await assert.rejects(Index.create({ dim: 4, quantizer: 'sq8' }), (err) =>
    err instanceof ParameterError && /unknown Index.create .*option 'quantizer'/.test(err.message));
  for (const seed of [0, 42, 2 ** 53 - 1, 123n, (1n << 64n) - 1n]) {
    const index = await Index.create({ dim: 16384, metric: 'ip', kind: 'flat', seed });
    assert.equal(index.dim, 16384);
    assert.equal(index.metric, 'ip');
    assert.equal(index.kind, 'flat');
    assert.equal(index.size, 0);
    assert.ok(index.memoryBytes() > 0);
    index.free();
  }
});

test('search options of another kind are rejected, not ignored', async () => {
  const flat = await Index.create({ dim: 2 });
  flat.add(['a'], [1, 2]);
  assert.throws(() => flat.search([1, 2], 1, { ef: 10 }), /ef applies to hnsw indexes; this one is flat/);
  assert.throws(() => flat.search([1, 2], 1, { nprobe: 2 }), /nprobe applies to ivf indexes/);
  const hnsw = await Index.create({ dim: 2, kind: 'hnsw' });
  hnsw.add(['a'], [1, 2]);
  assert.throws(() => hnsw.search([1, 2], 1, { rerank: 5 }), ParameterError);
  assert.deepEqual(hnsw.search([1, 2], 1, { ef: 10 }).ids, ['a']);
  flat.free();
  hnsw.free();
});

test('empty index and empty batches', async () => {
  const index = await Index.create({ dim: 3 });
  try {
    assert.deepEqual(index.search([1, 2, 3], 5), { ids: [], distances: new Float32Array(0), metadata: [] });
    assert.equal(index.add([], new Float32Array(0)), 0);
    assert.equal(index.size, 0);
  } finally {
    index.free();
  }
});

test('a large batch grows wasm memory and results stay correct', async () => {
  const dim = 128, n = 20000;
  const index = await Index.create({ dim });
  try {
    const vectors = randomVectors(n, dim, 2024);
    const ids = idsFor(n);
    index.add(ids, vectors);
    assert.equal(index.size, n);
    assert.ok(index.memoryBytes() >= n * dim * 4);
    const ref = new Reference(dim, 'l2');
    ref.add(ids, vectors);
    const queries = randomVectors(3, dim, 77);
    for (let q = 0; q < 3; q++) {
      const query = queries.subarray(q * dim, (q + 1) * dim);
      assertMatchesReference(assert, index.search(query, 10), ref, query, 10);
    }
    // Every record's own vector finds itself first.
    for (const i of [0, 1, 9999, 19999])
      assert.equal(index.search(vectors.subarray(i * dim, (i + 1) * dim), 1).ids[0], `v${i}`);
  } finally {
    index.free();
  }
});

test('scratch memory is freed on success and on every error path', async () => {
  const { loadVariant } = await import('../../js/src/load.mjs');
  const M = await loadVariant('simd');
  const dim = 1024;
  const index = await Index.create({ dim });
  try {
    const ok = randomVectors(4, dim, 1);
    const nan = ok.slice();
    nan[nan.length - 1] = NaN;
    const ids = ['a', 'b', 'c', 'd'];
    const round = () => {
      index.add(ids, ok);
      index.search(ok.subarray(0, dim), 4);
      index.get('a');
      index.delete(['zz']);
      assert.throws(() => index.add(ids, nan), InvalidVectorError);
      assert.throws(() => index.add(ids, ok.subarray(1)), DimensionError);
      assert.throws(() => index.search(nan.subarray(3 * dim), 4), InvalidVectorError);
      assert.throws(() => index.search(ok.subarray(0, dim), 0), ParameterError);
    };
    for (let i = 0; i < 20; i++) round(); // let the heap settle
    const heap = M.HEAPU8.length;
    // 2000 rounds move ~100 MB through scratch: a leak would grow the heap.
    for (let i = 0; i < 2000; i++) round();
    assert.equal(M.HEAPU8.length, heap);
    assert.equal(index.size, 4);
  } finally {
    index.free();
  }
});

test('callbacks that call back into their index get StateError, and every index stays intact', async () => {
  for (const kind of ['flat', 'hnsw']) {
    const dim = 8;
    const n = 3000;
    const vectors = randomVectors(n, dim, 91);
    const ids = idsFor(n);
    const index = await Index.create({ dim, kind, seed: 3 });
    const bystander = await Index.create({ dim, kind, seed: 3 }); // shares the wasm heap
    bystander.add(ids.slice(0, 100), vectors.slice(0, 100 * dim));
    index.add(['pre'], new Float32Array(dim).fill(9));
    const seen = [];
    index.add(ids, vectors, {
      onProgress: () => {
        for (const call of [() => index.free(), () => index.add(['x'], new Float32Array(dim)),
          () => index.search(vectors.slice(0, dim), 1), () => index.delete([ids[0]]), () => index.save()]) {
          try {
            call();
            seen.push('no error');
          } catch (err) {
            seen.push(err instanceof StateError ? 'state' : String(err));
          }
        }
        // Reading is allowed, and sees the state before the running add:
        // an add becomes visible when it completes.
        seen.push(index.get('pre') && index.get(ids[0]) === undefined ? 'read' : 'wrong read');
      },
    });
    assert.ok(seen.length >= 6);
    assert.deepEqual([...new Set(seen)].sort(), ['read', 'state']);
    assert.equal(index.size, n + 1);

    let calls = 0;
    const result = index.search(vectors.slice(0, dim), 5, {
      filter: (id) => {
        calls++;
        assert.throws(() => index.free(), StateError);
        assert.throws(() => index.add(['y'], new Float32Array(dim)), StateError);
        assert.throws(() => index.search(vectors.slice(0, dim), 1), StateError);
        return id !== ids[1];
      },
    });
    assert.equal(calls, n + 1);
    assert.equal(result.ids[0], ids[0]);
    assert.ok(!result.ids.includes(ids[1]));
    // Both indexes still work, and free() works once nothing runs.
    assert.equal(index.search(vectors.slice(0, dim), 1).ids[0], ids[0]);
    assert.equal(bystander.search(vectors.slice(5 * dim, 6 * dim), 1).ids[0], ids[5]);
    index.free();
    bystander.free();
  }
});
