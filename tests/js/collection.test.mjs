// collection.test.mjs -- the Collection class and its saved form, checked
// from outside the core:
//   - the manifest is decoded with @ipld/dag-cbor and must re-encode to the
//     same bytes (canonical), every CID is checked with multiformats against
//     the bytes it names, and walking the DAG from the root reaches every
//     block the store holds and only those;
//   - searches equal a flat Index (and a brute-force JS model) holding the
//     same live records, through random upserts, deletes, flushes and
//     compactions;
//   - the log: reopening replays unflushed writes; a torn tail is dropped;
//   - the small calls: has, ids, clear, search by id, maxDistance, several
//     queries, Symbol.dispose; bad input changes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dagCbor from '@ipld/dag-cbor';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';
import * as raw from 'multiformats/codecs/raw';

import {
  Collection, DimensionError, Index, InvalidVectorError, ParameterError, StateError, memoryStore,
} from '../../js/node.mjs';
import { TestRng } from './data.mjs';

const DIM = 8;

function records(rng, n, ids, { times = false } = {}) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const v = new Float32Array(DIM);
    for (let j = 0; j < DIM; j++) v[j] = rng.float();
    const id = `r${rng.below(ids)}`;
    const r = { id, vector: v, metadata: { g: rng.below(4), name: id } };
    if (times) r.time = 1_700_000_000_000 + rng.below(1000);
    out.push(r);
  }
  return out;
}

/** Every block reachable from root, read from the store, each verified. */
async function walk(store, root) {
  const seen = new Map();
  const todo = [CID.parse(root)];
  while (todo.length) {
    const cid = todo.pop();
    const key = cid.toString();
    if (seen.has(key)) continue;
    const bytes = await store.get(key);
    assert.ok(bytes, `block ${key} is in the store`);
    const digest = await sha256.digest(bytes);
    assert.deepEqual(digest.bytes, cid.multihash.bytes, `block ${key} hashes to its CID`);
    assert.ok(bytes.length <= 1 << 20, 'every block is at most 1 MiB');
    seen.set(key, bytes);
    if (cid.code === dagCbor.code) {
      const value = dagCbor.decode(bytes);
      assert.deepEqual(dagCbor.encode(value), bytes, `${key} is canonical DAG-CBOR`);
      const links = [];
      const visit = (v) => {
        const link = CID.asCID(v);
        if (link) links.push(link);
        else if (Array.isArray(v)) v.forEach(visit);
        else if (v && typeof v === 'object' && !(v instanceof Uint8Array)) Object.values(v).forEach(visit);
      };
      visit(value);
      todo.push(...links);
    } else {
      assert.equal(cid.code, raw.code);
    }
  }
  return seen;
}

test('the manifest DAG: canonical, verified, and exactly the store', async () => {
  const rng = new TestRng(3);
  const c = await Collection.create({ dim: DIM, flushRecords: 200, seed: 7, M: 8 });
  const empty = c.cid;
  for (let i = 0; i < 6; i++) await c.upsert(records(rng, 100, 2000));
  await c.delete(['r1', 'r2', 'r3', 'r4', 'r5']);
  await c.flush();
  const m = dagCbor.decode(c.manifest);
  assert.equal(m.shoal, 1);
  assert.equal(m.dim, DIM);
  assert.equal(m.metric, 'l2');
  assert.equal(m.records, c.size);
  assert.equal(m.seq, c.stats().nextSeq);
  assert.equal(m.config.small.kind, 'hnsw');
  assert.equal(m.config.small.M, 8);
  assert.equal(m.config.large.kind, 'ivf');
  assert.equal(m.config.large.quantizer, 'pq');
  assert.equal(m.config.flushRecords, 200);
  assert.equal(m.segments.length, c.stats().segments);
  let live = 0;
  for (const s of m.segments) {
    assert.equal(s.kind, 'hnsw');
    assert.equal(s.tier, 'small');
    assert.ok(s.seqs[0] <= s.seqs[1] && s.seqs[1] < m.seq);
    assert.ok(CID.asCID(s.segment));
    live += s.live;
    assert.equal(s.tombstones === null, s.live === s.records);
  }
  assert.equal(live, c.size);
  assert.ok(m.segments.some((s) => s.tombstones !== null), 'the deletes left tombstones');
  // The root's CID is the dag-cbor CID of the manifest's bytes.
  const rootCid = CID.create(1, dagCbor.code, await sha256.digest(c.manifest));
  assert.equal(rootCid.toString(), c.cid);
  // prev chains back to the empty collection's manifest.
  const blocks = await walk(c.store, c.cid);
  let version = m, versions = 1;
  while (version.prev) {
    const prev = version.prev.toString();
    assert.ok(blocks.has(prev));
    version = dagCbor.decode(blocks.get(prev));
    versions++;
  }
  assert.ok(versions >= 2);
  assert.ok(blocks.has(empty));
  assert.deepEqual([...blocks.keys()].sort(), c.store.cids().sort(), 'the DAG is the whole store');
  // dropHistory: the new version stands alone.
  await c.compact({ dropHistory: true });
  const alone = dagCbor.decode(c.manifest);
  assert.equal(alone.prev, null);
  const reach = await walk(c.store, c.cid);
  assert.ok(reach.size < c.store.cids().length);
  c.free();
});

test('large segments are cut into blocks of at most 1 MiB, IVF lists apart', async () => {
  const rng = new TestRng(4);
  const c = await Collection.create({ dim: 64, largeFrom: 12000, flushRecords: 12000, large: { nlist: 64, pqM: 16 } });
  const batch = [];
  for (let i = 0; i < 12000; i++) {
    const v = new Float32Array(64);
    for (let j = 0; j < 64; j++) v[j] = rng.float();
    batch.push({ id: `v${i}`, vector: v });
  }
  await c.upsert(batch);
  await c.flush();
  const m = dagCbor.decode(c.manifest);
  assert.equal(m.segments.length, 1);
  assert.equal(m.segments[0].kind, 'ivf');
  assert.equal(m.segments[0].tier, 'large');
  const node = dagCbor.decode(await c.store.get(m.segments[0].segment.toString()));
  assert.ok(node.blocks.length > 64, `${node.blocks.length} blocks: the head and one or more per list`);
  assert.equal(node.sizes.reduce((a, b) => a + b, 0), node.bytes);
  assert.equal(node.bytes, m.segments[0].bytes);
  assert.ok(node.head >= 1 && node.head < node.blocks.length);
  await walk(c.store, c.cid);
  c.free();
});

/** Brute-force top k over live records: [id, distance] by (distance, order). */
function bruteForce(live, q, k, filter) {
  const out = [];
  for (const [id, r] of live) {
    if (filter && !filter(r)) continue;
    let d = 0;
    for (let j = 0; j < DIM; j++) d += (r.vector[j] - q[j]) ** 2;
    out.push([id, d, r.order]);
  }
  out.sort((a, b) => a[1] - b[1] || a[2] - b[2]);
  return out.slice(0, k);
}

test('searches equal a flat index of the live records, through writes, flushes and compactions', async () => {
  const rng = new TestRng(11);
  const c = await Collection.create({ dim: DIM, kind: 'flat', flushRecords: 60, mergeFactor: 3 });
  const ref = await Index.create({ dim: DIM });
  const live = new Map();
  let order = 0;
  for (let step = 0; step < 60; step++) {
    const r = rng.below(10);
    if (r < 6) {
      const batch = records(rng, 1 + rng.below(40), 400);
      await c.upsert(batch);
      ref.add(batch.map((b) => b.id), batch.flatMap((b) => [...b.vector]), { metadata: batch.map((b) => b.metadata) });
      for (const b of batch) live.set(b.id, { ...b, order: order++ });
    } else if (r < 8) {
      const ids = Array.from({ length: 1 + rng.below(10) }, () => `r${rng.below(400)}`);
      const want = new Set(ids.filter((id) => live.has(id))).size;
      assert.equal(await c.delete(ids), want);
      ref.delete(ids);
      for (const id of ids) live.delete(id);
    } else if (r < 9) {
      await c.flush();
    } else {
      await c.compact();
    }
    if (step % 10 === 9) {
      for (let q = 0; q < 5; q++) {
        const query = Array.from({ length: DIM }, () => rng.float());
        const got = await c.search(query, 12);
        const want = ref.search(query, 12);
        assert.deepEqual(got.ids, want.ids);
        assert.deepEqual(got.distances, want.distances);
        assert.deepEqual(got.metadata, want.metadata);
        const brute = bruteForce(live, query, 12);
        assert.deepEqual(got.ids, brute.map((b) => b[0]));
        const filtered = await c.search(query, 5, { filter: { g: { $in: [1, 3] } } });
        assert.deepEqual(filtered.ids, bruteForce(live, query, 5, (x) => [1, 3].includes(x.metadata.g)).map((b) => b[0]));
        const fn = await c.search(query, 5, { filter: (id) => id.endsWith('7') });
        assert.deepEqual(fn.ids, bruteForce(live, query, 5, (x) => x.id.endsWith('7')).map((b) => b[0]));
      }
      assert.equal(c.size, live.size);
    }
  }
  assert.ok(c.stats().segments >= 1);
  ref.free();
  c.free();
});

test('reopening replays the log; a torn last record is dropped', async () => {
  const rng = new TestRng(5);
  const store = memoryStore();
  const c = await Collection.create({ dim: DIM, store, flushRecords: 1000, metric: 'cosine' });
  const first = records(rng, 50, 100000);
  await c.upsert(first);
  await c.flush();
  const second = records(rng, 30, 100000);
  await c.upsert(second); // in the buffer and the log only
  await c.delete([first[0].id]);
  const size = c.size;
  const query = first[3].vector;
  const before = await c.search(query, 10);
  await c.close();
  const log = await store.readLog();
  assert.ok(log.length > 30 * DIM * 4, 'the unflushed writes are in the log');

  const d = await Collection.open({ store });
  assert.equal(d.size, size);
  assert.deepEqual((await d.search(query, 10)).ids, before.ids);
  assert.equal(await d.has(first[0].id), false);
  d.free();

  // Cut the log inside its last record (the delete): the upserts survive.
  const whole = await store.readLog();
  await store.truncateLog(whole.length - 3);
  const e = await Collection.open({ store });
  assert.equal(e.size, size + 1);
  assert.equal(await e.has(first[0].id), true);
  assert.ok((await store.readLog()).length < whole.length - 3, 'the torn record was cut off the log');
  e.free();

  // Damage in the middle of the log is an error naming the offset.
  const damaged = memoryStore();
  for (const cid of store.cids()) await damaged.put(cid, await store.get(cid));
  await damaged.setRoot(await store.getRoot());
  const bytes = Uint8Array.from(whole);
  bytes[20] ^= 1; // inside the first of its two records
  await damaged.appendLog(bytes);
  await assert.rejects(Collection.open({ store: damaged }), /offset 0/);
});

test('bad input is refused and changes nothing', async () => {
  const c = await Collection.create({ dim: DIM });
  await c.upsert([{ id: 'a', vector: new Float32Array(DIM).fill(1) }]);
  const logBefore = (await c.store.readLog()).length;
  await assert.rejects(c.upsert([{ id: 'b', vector: [1, 2] }]), DimensionError);
  const nan = new Float32Array(DIM);
  nan[2] = NaN;
  await assert.rejects(c.upsert([{ id: 'b', vector: new Float32Array(DIM) }, { id: 'c', vector: nan }]), InvalidVectorError);
  await assert.rejects(c.upsert([{ id: 'b', vector: new Float32Array(DIM), metadata: { a: 1n } }]), ParameterError);
  await assert.rejects(c.upsert([{ id: 'b', vector: new Float32Array(DIM), color: 'red' }]), ParameterError);
  await assert.rejects(c.search([1, 2, 3], 5), DimensionError);
  await assert.rejects(c.search(new Float32Array(DIM), 0), ParameterError);
  await assert.rejects(c.search(new Float32Array(DIM), 5, { filter: { $regex: 'x' } }), ParameterError);
  await assert.rejects(Collection.create({ dim: DIM, kind: 'ivf' }), ParameterError);
  await assert.rejects(Collection.create({ dim: DIM, mergeFactor: 1 }), ParameterError);
  await assert.rejects(Collection.create({ dim: DIM, recent: 'soon' }), ParameterError);
  await assert.rejects(Collection.create({ dim: DIM, store: c.store }), StateError);
  assert.equal(c.size, 1);
  assert.equal((await c.store.readLog()).length, logBefore);
  // A filter callback cannot free the collection under the running search.
  await assert.rejects(c.search(new Float32Array(DIM), 1, { filter: () => c.free() }), StateError);
  assert.equal(c.size, 1);
  c.free();
  await assert.rejects(c.search(new Float32Array(DIM), 1), StateError);
});

test('has, ids, get, clear, search by id, maxDistance, several queries, dispose', async () => {
  const rng = new TestRng(8);
  const batch = [];
  for (let i = 0; i < 300; i++) {
    const v = new Float32Array(DIM);
    for (let j = 0; j < DIM; j++) v[j] = rng.float();
    batch.push({ id: `doc${i}`, vector: v, metadata: { i }, time: new Date(2026, 0, 1 + (i % 28)) });
  }
  // (Node 20 has Symbol.asyncDispose but not the `await using` syntax.)
  const c = await Collection.create({ dim: DIM, flushRecords: 100 });
  try {
    await c.upsert(batch);
    assert.equal(await c.has('doc5'), true);
    assert.equal(await c.has('doc300'), false);
    const ids = [];
    for await (const id of c) ids.push(id);
    assert.deepEqual(ids.sort(), batch.map((b) => b.id).sort());
    const got = await c.get('doc9');
    assert.deepEqual(got.vector, batch[9].vector);
    assert.deepEqual(got.metadata, { i: 9 });
    assert.equal(got.time, batch[9].time.getTime());
    assert.equal(await c.get('nope'), undefined);

    const near = await c.search({ id: 'doc9' }, 5);
    assert.equal(near.ids.length, 5);
    assert.ok(!near.ids.includes('doc9'), 'search by id leaves the record out');
    const plain = await c.search(batch[9].vector, 6);
    assert.deepEqual(near.ids, plain.ids.filter((id) => id !== 'doc9'));

    const radius = plain.distances[3];
    const within = await c.search(batch[9].vector, 50, { maxDistance: radius });
    assert.ok(within.distances.every((d) => d <= radius));
    assert.deepEqual(within.ids.slice(0, 4), plain.ids.slice(0, 4));

    const many = await c.search([batch[1].vector, batch[2].vector], 3);
    assert.equal(many.length, 2);
    assert.equal(many[0].ids[0], 'doc1');
    assert.equal(many[1].ids[0], 'doc2');

    await c.clear();
    assert.equal(c.size, 0);
    assert.deepEqual((await c.search(batch[1].vector, 3)).ids, []);
    const m = dagCbor.decode(c.manifest);
    assert.equal(m.segments.length, 0);
    assert.ok(m.prev, 'a clear is a new version, linked to the last');
  } finally {
    await c[Symbol.asyncDispose]();
  }
  assert.throws(() => c.size, StateError, 'asyncDispose freed it');
  const d = await Collection.create({ dim: DIM });
  d[Symbol.dispose]();
  assert.throws(() => d.size, StateError, 'dispose freed it');
});

test('age tiers: old records move to the large tier at compaction', async () => {
  const rng = new TestRng(21);
  const now = Date.now();
  const c = await Collection.create({
    dim: DIM, kind: 'flat', recent: '7d', flushRecords: 100, large: { kind: 'flat' },
  });
  const batch = [];
  for (let i = 0; i < 400; i++) {
    const v = new Float32Array(DIM);
    for (let j = 0; j < DIM; j++) v[j] = rng.float();
    batch.push({ id: `e${i}`, vector: v, time: now - (i % 20) * 86_400_000 }); // 0..19 days old
  }
  await c.upsert(batch);
  await c.compact();
  const m = dagCbor.decode(c.manifest);
  const small = m.segments.filter((s) => s.tier === 'small'), large = m.segments.filter((s) => s.tier === 'large');
  assert.equal(small.length, 1);
  assert.equal(large.length, 1);
  assert.ok(small[0].times[0] >= now - 7 * 86_400_000, 'the small tier holds the last week');
  assert.ok(large[0].times[1] < now - 7 * 86_400_000 + 1, 'the large tier the older records');
  assert.equal(small[0].records + large[0].records, 400);
  const q = batch[5].vector;
  assert.equal((await c.search(q, 1)).ids[0], 'e5');
  c.free();
});
