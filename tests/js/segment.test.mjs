// segment.test.mjs -- segments through the JS API, in both wasm variants:
// save / load round trips, index.cid semantics, the golden segments of
// tests/golden/<version>/ (same results and CIDs as the C tests natively and
// under WASI), and corrupt or truncated bytes rejected as CorruptDataError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import {
  Index, CorruptDataError, TruncatedDataError, ChecksumError, VersionError, StateError,
} from '../../js/node.mjs';
import { TestRng } from './data.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
// Golden segments per format version (tests/golden/<version>/): 1.0 is only
// loaded; the current one must also save again to the same bytes.
const VERSIONS = [['1.0', false], ['1.1', true]];
const golden = (version, name) => readFileSync(`${root}tests/golden/${version}/${name}`);

// tests/golden_cases.h: name, dim; queries use seed 5000 + case number, k 10.
const CASES = [
  ['flat-l2', 16], ['hnsw-cosine-f32', 37], ['hnsw-l2-sq8', 8], ['ivf-flat-ip', 16],
  ['ivf-pq4-rerank-l2', 37], ['hnsw-l2-records', 12], ['hnsw-l2-sq8-grid-rerank', 8],
];
const QUERIES = 5, K = 10;

// "<case> <query> <rank> <id> <distance>[ <metadata JSON> <time>]"
// Returns the lines by "<case> <query>", each query's ranks 0..n-1 in order,
// and how many lines the file has.
function expectedLines(version) {
  const lines = new Map();
  const text = golden(version, 'expected.txt').toString().trim().split('\n');
  for (const line of text) {
    const [name, q, r, id, distance, metadata, time] = line.split(' ');
    const key = `${name} ${q}`;
    if (!lines.has(key)) lines.set(key, []);
    // Ranks come in order, with no gap and no repeat.
    assert.equal(Number(r), lines.get(key).length, `expected.txt ${version}: ${line}`);
    lines.get(key).push({ id, distance: Math.fround(Number(distance)), metadata, time });
  }
  return { lines, count: text.length };
}

function goldenCids(version) {
  const cids = new Map();
  for (const line of golden(version, 'cids.txt').toString().trim().split('\n')) {
    const [name, cid, level] = line.split(' ');
    cids.set(name, { cid, level: Number(level) });
  }
  return cids;
}

for (const simd of [true, false]) {
  const variant = simd ? 'simd' : 'base';

  for (const [version, current] of VERSIONS) {
    test(`${variant}: golden ${version} segments load with the C results and CIDs`, async () => {
      const { lines: expected, count: expectedCount } = expectedLines(version);
      const cids = goldenCids(version);
      // Every case of the file is one this test knows (and repeats below).
      for (const key of expected.keys())
        assert.ok(CASES.some(([name]) => key.startsWith(`${name} `)), `expected.txt ${version}: unknown case ${key}`);
      let cases = 0, compared = 0;
      for (let c = 0; c < CASES.length; c++) {
        const [name, dim] = CASES[c];
        if (!cids.has(name)) continue; // added in a later version
        cases++;
        const bytes = golden(version, `${name}.seg`);
        const index = await Index.load(bytes, { simd });
        try {
          assert.equal(index.cid, cids.get(name).cid, `${name}: cid`);
          assert.equal(index.dim, dim);
          const rng = new TestRng(5000 + c);
          const query = new Float32Array(dim);
          for (let q = 0; q < QUERIES; q++) {
            rng.fill(query);
            const { ids, distances, metadata } = index.search(query, K);
            const want = expected.get(`${name} ${q}`);
            assert.ok(want, `${name} ${q}: no expected lines`);
            assert.equal(ids.length, want.length, `${name} ${q}: result count`);
            assert.equal(distances.length, want.length, `${name} ${q}: distance count`);
            ids.forEach((id, r) => {
              assert.equal(id, want[r].id, `${name} ${q} ${r}: id`);
              assert.equal(distances[r], want[r].distance, `${name} ${q} ${r}: distance`);
              if (want[r].metadata === undefined) return;
              // " <metadata JSON> <time>" (cases with records): null and
              // INT64_MIN when a record has none.
              assert.deepEqual(metadata[r], JSON.parse(want[r].metadata), `${name} ${q} ${r}: metadata`);
              const time = index.get(id).time;
              assert.equal(time === undefined ? '-9223372036854775808' : String(time), want[r].time,
                `${name} ${q} ${r}: time`);
            });
            compared += ids.length;
          }
          // No query of the file left out: exactly QUERIES per case.
          assert.equal([...expected.keys()].filter((key) => key.startsWith(`${name} `)).length, QUERIES,
            `${name}: queries in expected.txt`);
          if (current) {
            const again = index.save({ zstdLevel: cids.get(name).level });
            assert.deepEqual(Buffer.from(again), bytes, `${name}: saved again`);
            assert.equal(index.cid, cids.get(name).cid);
          }
        } finally {
          index.free();
        }
      }
      assert.ok(cases >= 5, `${cases} golden cases in ${version}`);
      // Every line of expected.txt was compared with a result.
      assert.equal(compared, expectedCount, `${version}: results compared vs lines of expected.txt`);
    });
  }

  test(`${variant}: save / load round trip and cid semantics`, async () => {
    const dim = 12, n = 300;
    const index = await Index.create({ dim, kind: 'hnsw', M: 8, seed: 3, simd });
    const rng = new TestRng(42);
    const data = rng.fill(new Float32Array(n * dim));
    index.add(Array.from({ length: n }, (_, i) => `doc:${i}`), data);
    index.delete(['doc:1', 'doc:5']);
    assert.equal(index.cid, undefined);
    const bytes = index.save({ zstdLevel: 3 });
    assert.ok(bytes instanceof Uint8Array);
    assert.match(index.cid, /^bafkrei[a-z2-7]{52}$/);
    const loaded = await Index.load(bytes, { simd });
    try {
      assert.equal(loaded.cid, index.cid);
      assert.equal(loaded.size, n - 2);
      assert.equal(loaded.kind, 'hnsw');
      assert.equal(loaded.metric, 'l2');
      const q = rng.fill(new Float32Array(dim));
      assert.deepEqual(loaded.search(q, 10), index.search(q, 10));
      assert.deepEqual(loaded.get('doc:7'), index.get('doc:7'));
      assert.equal(loaded.get('doc:1'), undefined);
      loaded.add(['new'], q);
      assert.equal(loaded.cid, undefined, 'a change forgets the cid');
      loaded.save();
      assert.match(loaded.cid, /^bafkrei/);
      // Uncompressed and compressed are different segments of one index.
      const zstdCid = index.cid;
      const raw = index.save();
      assert.notEqual(index.cid, zstdCid);
      assert.ok(raw.length > bytes.length);
      // ArrayBuffer input works too.
      const fromBuffer = await Index.load(bytes.slice().buffer, { simd });
      assert.equal(fromBuffer.size, n - 2);
      fromBuffer.free();
    } finally {
      loaded.free();
      index.free();
    }
    assert.throws(() => index.cid, StateError);
  });

  test(`${variant}: corrupt and truncated bytes are CorruptDataErrors`, async () => {
    const bytes = golden('1.1', 'flat-l2.seg');
    await assert.rejects(Index.load(bytes.subarray(0, 100), { simd }), TruncatedDataError);
    await assert.rejects(Index.load(new Uint8Array(0), { simd }), TruncatedDataError);
    await assert.rejects(Index.load(new TextEncoder().encode('hello world, not a segment'), { simd }),
      CorruptDataError);
    const flipped = new Uint8Array(bytes);
    flipped[flipped.length - 100] ^= 4;
    await assert.rejects(Index.load(flipped, { simd }), ChecksumError);
    const newer = new Uint8Array(bytes);
    newer[12] = 9;
    await assert.rejects(Index.load(newer, { simd }), VersionError);
    // A dense sample of single-byte flips.
    for (let at = 0; at < bytes.length; at += 97) {
      const copy = new Uint8Array(bytes);
      copy[at] ^= 0x20;
      await assert.rejects(Index.load(copy, { simd }), CorruptDataError, `flip at ${at}`);
    }
    await assert.rejects(Index.load('not bytes', { simd }), TypeError);
  });
}
