// open.test.mjs -- Index.open: a segment read by byte range from a
// Uint8Array, Blob, Node FileHandle, URL (a loopback server answering Range
// requests) or function; IVF lists read as searches probe them, IVF and
// HNSW rerank rows read per search and never kept (rows 'external'), or
// kept ('memory').
// The reference is the same segment loaded whole: searchAsync must give its
// ids, distances and metadata exactly, in both wasm variants.
import assert from 'node:assert/strict';
import { open as openFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import {
  ChecksumError, CorruptDataError, Index, ParameterError, StateError, TruncatedDataError, UnsupportedError,
} from '../../js/index.mjs';
import { clustered, idsFor } from './reference.mjs';

const DIM = 24, N = 2500, K = 10, NLIST = 20, RERANK = 30;
const data = clustered(N, DIM, 41, { clusters: 16, spread: 0.3 });
const queries = clustered(24, DIM, 42, { clusters: 16, spread: 0.3 });
const ids = idsFor(N);
const query = (q) => queries.subarray(q * DIM, (q + 1) * DIM);
const metadata = ids.map((_, i) => ({ g: i % 6 }));

async function segment(options, zstdLevel = 0, simd = true) {
  const x = await Index.create({ dim: DIM, kind: 'ivf', nlist: NLIST, nprobe: 3, seed: 3, simd, ...options });
  try {
    x.add(ids, data, { metadata });
    return x.save({ zstdLevel });
  } finally {
    x.free();
  }
}

const searches = (q) => [
  {},
  { nprobe: 6 },
  { rerank: 50 },
  { filter: { g: q % 6 } },
  { filter: (id) => Number(id.slice(1)) % 3 === 0 },
][q % 5];

async function sameAsWhole(whole, opened, count = 24) {
  for (let q = 0; q < count; q++) {
    const o = searches(q);
    if (o.rerank && !whole.stats().rerankBytes) delete o.rerank;
    const a = whole.search(query(q), K, o);
    const b = await opened.searchAsync(query(q), K, o);
    assert.deepEqual(b.ids, a.ids, `query ${q}`);
    assert.deepEqual(Array.from(b.distances), Array.from(a.distances), `query ${q}`);
    assert.deepEqual(b.metadata, a.metadata, `query ${q}`);
  }
}

for (const simd of [true, false]) {
  const variant = simd ? 'simd' : 'baseline';
  for (const [name, options] of [
    ['pq4+rerank', { quantizer: 'pq', pqBits: 4, pqM: 12, rerank: RERANK }],
    ['sq8+rerank', { quantizer: 'sq8', rerank: RERANK }],
    ['pq8, no rerank', { quantizer: 'pq', pqM: 6 }],
  ]) {
    test(`Index.open ${name} (${variant}): lazy lists, external rows = the whole segment`, async () => {
      const seg = await segment(options, 0, simd);
      const whole = await Index.load(seg, { simd });
      const opened = await Index.open(seg, { simd });
      try {
        assert.equal(opened.size, N);
        const head = opened.reads.bytes;
        assert.ok(head < seg.length / (options.rerank ? 10 : 3), `head ${head} of ${seg.length}`);
        await sameAsWhole(whole, opened);
        const stats = opened.stats();
        assert.equal(stats.rerankBytes, 0);
        if (options.rerank) assert.ok(stats.memoryBytes + N * DIM * 4 < whole.stats().memoryBytes);
        if (options.rerank) {
          // A repeated query reads its candidates' rows again, and nothing else.
          const before = opened.reads.bytes;
          await opened.searchAsync(query(0), K);
          assert.equal(opened.reads.bytes - before, RERANK * DIM * 4);
          assert.ok(opened.reads.bytes < seg.length - N * DIM * 4 + 24 * 50 * DIM * 4);
          assert.throws(() => opened.search(query(0), K), (e) => e instanceof StateError && /searchAsync/.test(e.message));
        } else {
          assert.deepEqual(opened.search(query(0), K), whole.search(query(0), K));
        }
        assert.throws(() => opened.add(['x'], query(0)), StateError);
      } finally {
        whole.free();
        opened.free();
      }
    });
  }
}

async function hnswSegment(n, zstdLevel = 0, simd = true, metric = 'l2') {
  const x = await Index.create({ dim: DIM, kind: 'hnsw', quantizer: 'sq8', rerank: RERANK, metric, seed: 3, simd });
  try {
    x.add(ids.slice(0, n), data.subarray(0, n * DIM), { metadata: metadata.slice(0, n) });
    return x.save({ zstdLevel });
  } finally {
    x.free();
  }
}

const hnswSearches = (q) => [
  {},
  { ef: 40 },
  { rerank: 50 },
  { filter: { g: q % 6 } },
  { filter: (id) => Number(id.slice(1)) % 3 === 0 },
  { ef: 12 },
][q % 6];

for (const [simd, metric] of [[true, 'l2'], [false, 'l2'], [true, 'cosine'], [false, 'ip']]) {
  test(`Index.open hnsw sq8+rerank ${metric} (${simd ? 'simd' : 'baseline'}): the rows stay in the source`, async () => {
    const seg = await hnswSegment(N, 0, simd, metric);
    const whole = await Index.load(seg, { simd });
    const opened = await Index.open(seg, { simd });
    try {
      assert.equal(opened.size, N);
      // The head is everything but the rows (the segment's last section).
      const head = opened.reads.bytes;
      assert.ok(head <= seg.length - N * DIM * 4 && head > seg.length - N * DIM * 4 - 64, `head ${head} of ${seg.length}`);
      for (let q = 0; q < 24; q++) {
        const o = hnswSearches(q);
        const a = whole.search(query(q), K, o);
        const b = await opened.searchAsync(query(q), K, o);
        assert.deepEqual(b.ids, a.ids, `query ${q}`);
        assert.deepEqual(Array.from(b.distances), Array.from(a.distances), `query ${q}`);
        assert.deepEqual(b.metadata, a.metadata, `query ${q}`);
      }
      const stats = opened.stats();
      assert.equal(stats.rerankBytes, 0);
      assert.ok(stats.memoryBytes + N * DIM * 4 < whole.stats().memoryBytes);
      // Each search reads at least its k best's rows, at most its RERANK
      // candidates', and over 24 of them the floors rule some rows out.
      const before = opened.reads.bytes;
      for (let q = 0; q < 24; q++) {
        const at = opened.reads.bytes;
        await opened.searchAsync(query(q), K);
        const rows = (opened.reads.bytes - at) / (DIM * 4);
        assert.ok(Number.isInteger(rows) && rows >= K && rows <= RERANK, `query ${q}: ${rows} rows`);
      }
      const rows = (opened.reads.bytes - before) / (DIM * 4);
      assert.ok(rows < 24 * RERANK, `${rows} rows of ${24 * RERANK}`);
      assert.throws(() => opened.search(query(0), K), (e) => e instanceof StateError && /searchAsync/.test(e.message));
      assert.throws(() => opened.add(['x'], query(0)), StateError);
      assert.equal(opened.cid, undefined); // (the rows were not read: no CID to check)
    } finally {
      whole.free();
      opened.free();
    }
  });
}

test('Index.open hnsw: compressed or untrained rows are kept (auto) or refused (external); memory', async () => {
  for (const [seg, why] of [[await hnswSegment(N, 3), 'compressed'], [await hnswSegment(600), 'untrained']]) {
    const whole = await Index.load(seg);
    try {
      await assert.rejects(Index.open(seg, { rows: 'external' }), UnsupportedError, why);
      const auto = await Index.open(seg);
      assert.ok(auto.stats().rerankBytes > 0, why);
      assert.deepEqual(auto.search(query(2), K), whole.search(query(2), K));
      assert.equal(auto.cid, whole.cid, why);
      auto.free();
    } finally {
      whole.free();
    }
  }
  const seg = await hnswSegment(N);
  const memory = await Index.open(seg, { rows: 'memory' });
  assert.equal(memory.reads.bytes, seg.length);
  assert.ok(memory.stats().rerankBytes >= N * DIM * 4);
  memory.free();
});

test('Index.open: rows in memory, every list at open; a Blob, a FileHandle, a function', async () => {
  const seg = await segment({ quantizer: 'pq', pqBits: 4, pqM: 12, rerank: RERANK });
  const whole = await Index.load(seg);
  const file = join(tmpdir(), `shoal-open-${process.pid}.seg`);
  await writeFile(file, seg);
  const fh = await openFile(file);
  try {
    const memory = await Index.open(new Blob([seg]), { rows: 'memory', lists: 'all' });
    assert.ok(memory.reads.bytes <= seg.length && memory.reads.bytes > seg.length * 0.9, `${memory.reads.bytes}`);
    assert.ok(memory.stats().rerankBytes >= N * DIM * 4);
    assert.deepEqual(memory.search(query(1), K), whole.search(query(1), K)); // nothing left to read
    memory.free();
    const viaFile = await Index.open(fh, { lists: 'all' });
    const before = viaFile.reads.bytes;
    await sameAsWhole(whole, viaFile, 10);
    // Only candidate rows: 30 per query, 50 for the two with rerank 50.
    assert.equal(viaFile.reads.bytes - before, (8 * RERANK + 2 * 50) * DIM * 4);
    viaFile.free();
    let calls = 0;
    const viaFn = await Index.open(async (offset, length) => {
      calls++;
      return seg.slice(offset, offset + length);
    });
    await sameAsWhole(whole, viaFn, 5);
    assert.equal(calls, viaFn.reads.calls);
    viaFn.free();
  } finally {
    await fh.close();
    await rm(file, { force: true });
    whole.free();
  }
});

test('Index.open: a URL, read with Range requests', async () => {
  const seg = await segment({ quantizer: 'sq8', rerank: RERANK });
  let ranges = 0;
  const server = createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) {
      res.writeHead(200).end(seg);
      return;
    }
    ranges++;
    const from = Number(m[1]), to = Math.min(Number(m[2]), seg.length - 1);
    res.writeHead(206, { 'Content-Range': `bytes ${from}-${to}/${seg.length}` }).end(seg.subarray(from, to + 1));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/x.seg`;
  const whole = await Index.load(seg);
  try {
    const opened = await Index.open(url);
    await sameAsWhole(whole, opened, 8);
    assert.equal(ranges, opened.reads.calls);
    opened.free();
    // A server that ignores Range is refused, not read whole.
    const plain = createServer((req, res) => res.writeHead(200).end(seg));
    await new Promise((resolve) => plain.listen(0, '127.0.0.1', resolve));
    await assert.rejects(Index.open(`http://127.0.0.1:${plain.address().port}/x.seg`), ParameterError);
    plain.close();
  } finally {
    whole.free();
    server.close();
  }
});

test('Index.open: compressed rows stay in memory (auto) or are refused (external)', async () => {
  const seg = await segment({ quantizer: 'pq', pqBits: 4, pqM: 12, rerank: RERANK }, 3);
  const whole = await Index.load(seg);
  try {
    await assert.rejects(Index.open(seg, { rows: 'external' }), UnsupportedError);
    const auto = await Index.open(seg);
    await sameAsWhole(whole, auto, 6);
    assert.ok(auto.stats().rerankBytes > 0);
    auto.free();
  } finally {
    whole.free();
  }
});

test('Index.open: other kinds are read whole; bad sources and bytes are refused', async () => {
  const h = await Index.create({ dim: DIM, kind: 'hnsw' });
  h.add(ids.slice(0, 300), data.subarray(0, 300 * DIM));
  const hseg = h.save();
  const opened = await Index.open(hseg);
  assert.equal(opened.reads.bytes, hseg.length); // read once, whole
  assert.equal(opened.cid, h.cid);
  assert.deepEqual((await opened.searchAsync(query(0), 5)).ids, h.search(query(0), 5).ids);
  opened.free();
  h.free();

  const seg = await segment({ quantizer: 'pq', pqBits: 4, pqM: 12, rerank: RERANK });
  await assert.rejects(Index.open(seg.subarray(0, 40)), TruncatedDataError);
  await assert.rejects(Index.open(async () => new Uint8Array(3)), TruncatedDataError);
  await assert.rejects(Index.open(seg, { rows: 'sometimes' }), ParameterError);
  await assert.rejects(Index.open(seg, { cache: 1 }), ParameterError);
  await assert.rejects(Index.open(42), TypeError);
  // A flipped byte in a list: the search that reads it fails, the index stays usable.
  const bad = seg.slice();
  const probe = await Index.open(seg, { lists: 'all' });
  const headBytes = probe.reads.bytes;
  probe.free();
  bad[headBytes + 40] ^= 0xff;
  const lazy = await Index.open(bad);
  let failed = 0;
  for (let q = 0; q < 12; q++) {
    try {
      await lazy.searchAsync(query(q), K);
    } catch (e) {
      assert.ok(e instanceof CorruptDataError, e.message);
      failed++;
    }
  }
  assert.ok(failed > 0, 'a corrupt list was read');
  assert.ok(ChecksumError.prototype instanceof CorruptDataError);
  lazy.free();
});
