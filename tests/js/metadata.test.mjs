// metadata.test.mjs -- record metadata and filters through the JS API:
//   - metadata round-trips through add / get / search / save / load, and the
//     bytes C stores are exactly what @ipld/dag-cbor encodes (read out of the
//     segment following docs/FORMAT.md, decoded by @ipld/dag-cbor);
//   - the C filter evaluator agrees with the independent JS reference
//     (filter-reference.mjs) on thousands of random records and filters;
//   - bad filters and metadata are ParameterErrors naming the path;
//   - Set and allow-list filters, and their staleness after changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dagCbor from '@ipld/dag-cbor';

import { Index, ParameterError } from '../../js/node.mjs';
import { TestRng } from './data.mjs';
import { matches } from './filter-reference.mjs';

// ------------------------------------------------------------------ helpers

/** The sections of a segment, read as docs/FORMAT.md specifies them. */
function sections(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(40, true);
  const out = [];
  for (let i = 0; i < count; i++) {
    const at = 64 + 48 * i;
    out.push({
      kind: view.getUint32(at, true),
      codec: view.getUint32(at + 4, true),
      offset: Number(view.getBigUint64(at + 16, true)),
      stored: Number(view.getBigUint64(at + 24, true)),
    });
  }
  return out;
}

/** id -> metadata bytes (Uint8Array), from an uncompressed segment. */
function metadataBytesById(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const secs = sections(bytes);
  const config = secs[0].offset;
  const bound = view.getUint32(config + 56, true);
  const live = view.getUint32(config + 60, true);
  const free = view.getUint32(config + 64, true);
  const ids = secs.find((s) => s.kind === 2);
  // ids: seq[bound] u64, free[free] u32, bitmap, then live (u32 len, bytes)
  let at = ids.offset + 8 * bound + 4 * free;
  const alive = bytes.subarray(at, at + Math.ceil(bound / 8));
  at += Math.ceil(bound / 8);
  const idOf = [];
  for (let label = 0; label < bound; label++) {
    if (!((alive[label >> 3] >> (label & 7)) & 1)) continue;
    const len = view.getUint32(at, true);
    idOf.push(new TextDecoder().decode(bytes.subarray(at + 4, at + 4 + len)));
    at += 4 + len;
  }
  assert.equal(idOf.length, live);
  const meta = secs.find((s) => s.kind === 0x80000004);
  const out = new Map();
  if (!meta) return out;
  assert.equal(meta.codec, 0, 'uncompressed');
  at = meta.offset;
  for (const id of idOf) {
    const len = view.getUint32(at, true);
    if (len) out.set(id, bytes.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  assert.equal(at, meta.offset + meta.stored, 'the section is consumed exactly');
  return out;
}

// ----------------------------------------------------- random records/filters

const WORDS = ['x', 'y', 'zz', 'é', '😀', '', 'Z', 'ab'];

function randomScalar(rng) {
  const r = Number(rng.next() % 6n);
  if (r === 0) return Number(rng.next() % 10n);
  if (r === 1) return Math.round(rng.float() * 1000) / 100 || 0;
  if (r === 2) return WORDS[Number(rng.next() % BigInt(WORDS.length))];
  if (r === 3) return rng.float() > 0;
  if (r === 4) return null;
  return -Number(rng.next() % 5n) || 0; // (-0 is stored as 0, as @ipld/dag-cbor does)
}

function randomRecord(rng) {
  const doc = {};
  const maybe = (name, make) => {
    if (rng.float() > -0.6) doc[name] = make();
  };
  maybe('a', () => Number(rng.next() % 10n));
  maybe('b', () => Math.round(rng.float() * 100) / 10 || 0);
  maybe('s', () => WORDS[Number(rng.next() % BigInt(WORDS.length))]);
  maybe('t', () => rng.float() > 0);
  maybe('n', () => null);
  maybe('v', () => randomScalar(rng));
  maybe('arr', () => Array.from({ length: Number(rng.next() % 4n) }, () => randomScalar(rng)));
  maybe('o', () => ({ p: Number(rng.next() % 5n), q: [Number(rng.next() % 3n), 'x'] }));
  maybe('objs', () => Array.from({ length: Number(rng.next() % 3n) }, () => ({ p: Number(rng.next() % 5n) })));
  return rng.float() > -0.9 ? doc : null; // some records have no metadata
}

const PATHS = ['a', 'b', 's', 't', 'n', 'v', 'arr', 'arr.0', 'arr.2', 'o.p', 'o.q', 'o.q.1', 'objs.p', 'objs.0.p', 'missing', 'o.missing'];

function randomLeaf(rng) {
  const path = PATHS[Number(rng.next() % BigInt(PATHS.length))];
  const r = Number(rng.next() % 11n);
  const scalar = randomScalar(rng);
  const orderable = typeof scalar === 'number' || typeof scalar === 'string' ? scalar : Number(rng.next() % 10n);
  switch (r) {
    case 0: return { [path]: scalar };
    case 1: return { [path]: { $eq: scalar } };
    case 2: return { [path]: { $ne: scalar } };
    case 3: return { [path]: { $gt: orderable } };
    case 4: return { [path]: { $gte: orderable, $lt: typeof orderable === 'number' ? orderable + 5 : 'zz' } };
    case 5: return { [path]: { $lte: orderable } };
    case 6: return { [path]: { $in: [scalar, randomScalar(rng)] } };
    case 7: return { [path]: { $nin: [scalar, randomScalar(rng)] } };
    case 8: return { [path]: { $exists: rng.float() > 0 } };
    case 9: return { [path]: { $not: { $gt: orderable } } };
    default: return { [path]: { $in: [randomScalar(rng)] } };
  }
}

function randomFilter(rng, depth = 0) {
  const r = Number(rng.next() % 8n);
  if (depth >= 3 || r < 4) return randomLeaf(rng);
  if (r === 4) return { $and: [randomFilter(rng, depth + 1), randomFilter(rng, depth + 1)] };
  if (r === 5) return { $or: [randomFilter(rng, depth + 1), randomFilter(rng, depth + 1), randomFilter(rng, depth + 1)] };
  if (r === 6) return { $not: randomFilter(rng, depth + 1) };
  // Several fields in one object: ANDed (distinct keys).
  return Object.assign({}, randomLeaf(rng), randomLeaf(rng));
}

// ------------------------------------------------------------------- tests

test('metadata round-trips and is stored as canonical DAG-CBOR', async () => {
  const index = await Index.create({ dim: 2 });
  const rng = new TestRng(1);
  const n = 400;
  const ids = Array.from({ length: n }, (_, i) => `r${i}`);
  const docs = ids.map(() => randomRecord(rng));
  docs[0] = { year: 1999, genre: 'jazz', tags: ['a', 'b'], nested: { deep: [1, { x: 2.5 }] }, big: 2 ** 53 + 2, neg: -7, tiny: 1e-300 };
  const vectors = new Float32Array(n * 2).map((_, i) => (i % 7) - 3);
  const times = ids.map((_, i) => (i % 3 ? 1_700_000_000_000 + i : null));
  assert.equal(index.add(ids, vectors, { metadata: docs, times }), n);
  ids.forEach((id, i) => {
    const got = index.get(id);
    assert.deepEqual(got.metadata, docs[i] === null ? null : docs[i], id);
    assert.equal(got.time, times[i] ?? undefined, `${id} time`);
  });
  // Search returns each result's metadata next to its id.
  const { ids: found, metadata } = index.search([1, 1], 50);
  found.forEach((id, i) => assert.deepEqual(metadata[i], docs[ids.indexOf(id)]));
  // The stored bytes are @ipld/dag-cbor's encoding, and decode back.
  const segment = index.save();
  const stored = metadataBytesById(segment);
  let checked = 0;
  ids.forEach((id, i) => {
    if (docs[i] === null) return assert.ok(!stored.has(id));
    assert.deepEqual(Buffer.from(stored.get(id)), Buffer.from(dagCbor.encode(docs[i])), `${id}: bytes`);
    assert.deepEqual(dagCbor.decode(stored.get(id)), docs[i]);
    checked++;
  });
  assert.ok(checked > 300);
  const loaded = await Index.load(segment);
  assert.deepEqual(loaded.get('r0').metadata, docs[0]);
  assert.deepEqual(loaded.search([1, 1], 50).metadata, metadata);
  // An upsert replaces metadata; stats count it.
  index.add(['r0'], [0, 0], { metadata: [{ only: true }] });
  assert.deepEqual(index.get('r0').metadata, { only: true });
  const stats = index.stats();
  assert.equal(stats.withMetadata, docs.filter((d) => d !== null).length);
  assert.ok(stats.metadataBytes > 0 && stats.metadataBytes < stats.memoryBytes);
  loaded.free();
  index.free();
});

test('bad metadata is a ParameterError and changes nothing', async () => {
  const index = await Index.create({ dim: 2 });
  index.add(['keep'], [1, 2], { metadata: [{ ok: 1 }] });
  const bad = [
    [['x'], { metadata: [[1, 2]] }, /metadata\[0\] must be an object or null, not an array/],
    [['x'], { metadata: ['text'] }, /metadata\[0\] must be an object or null, not string/],
    [['x', 'y'], { metadata: [{}] }, /1 metadata entries for 2 ids/],
    [['x'], { metadata: [{ a: 1n }] }, /cannot be written as JSON/],
    [['x'], { metadata: [{ deep: [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]] }] }, /nested deeper than 16 at \$\.deep/],
    [['x'], { times: [1.5] }, /times\[0\] must be whole milliseconds/],
  ];
  for (const [ids, options, message] of bad) {
    const vectors = new Float32Array(ids.length * 2);
    assert.throws(() => index.add(ids, vectors, options), (err) => err instanceof ParameterError && message.test(err.message),
      `${JSON.stringify(options, (k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`);
  }
  assert.equal(index.size, 1);
  assert.deepEqual(index.get('keep').metadata, { ok: 1 });
  index.free();
});

test('the C filter evaluator agrees with the JS reference on random records and filters', async () => {
  const rng = new TestRng(7);
  const n = 300;
  const ids = Array.from({ length: n }, (_, i) => `d${i}`);
  const docs = ids.map(() => randomRecord(rng));
  const vectors = new Float32Array(n * 2);
  new TestRng(8).fill(vectors);
  for (const kind of ['flat', 'hnsw']) {
    const index = await Index.create({ dim: 2, kind, seed: 2 });
    index.add(ids, vectors, { metadata: docs });
    let nonTrivial = 0;
    const filters = kind === 'flat' ? 3000 : 400;
    for (let f = 0; f < filters; f++) {
      const filter = randomFilter(rng);
      const want = ids.filter((id, i) => matches(filter, docs[i])).sort();
      // Every record is within reach: k = n, ef = n (hnsw falls back to an
      // exact scan when few match, and walks everything otherwise).
      const options = kind === 'hnsw' ? { filter, ef: n } : { filter };
      const got = index.search([0.1, 0.2], n, options).ids.sort();
      assert.deepEqual(got, want, `${kind}: ${JSON.stringify(filter)}`);
      if (want.length > 0 && want.length < n) nonTrivial++;
    }
    assert.ok(nonTrivial > filters / 3, `${nonTrivial} of ${filters} filters split the records`);
    index.free();
  }
});

test('bad filters are ParameterErrors that name the path', async () => {
  const index = await Index.create({ dim: 2 });
  index.add(['a'], [1, 2], { metadata: [{ x: 1 }] });
  const bad = [
    [{ x: { $regex: 'a' } }, /unknown operator \$regex at \$\.x\.\$regex/],
    [{ x: { $gt: true } }, /a comparison needs a number or a string at \$\.x\.\$gt/],
    [{ $or: [] }, /non-empty array of filters at \$\.\$or/],
    [{ x: [1, 2] }, /equality to an array is not supported/],
    [{ $and: [{ x: 1 }, { y: { $exists: 'yes' } }] }, /\$exists needs true or false at \$\.\$and\[1\]\.y\.\$exists/],
  ];
  for (const [filter, message] of bad)
    assert.throws(() => index.search([1, 2], 1, { filter }), (err) => err instanceof ParameterError && message.test(err.message),
      JSON.stringify(filter));
  assert.throws(() => index.search([1, 2], 1, { filter: [1] }), TypeError);
  assert.throws(() => index.search([1, 2], 1, { filter: 'x' }), TypeError);
  assert.deepEqual(index.search([1, 2], 1, { filter: { x: 1 } }).ids, ['a']);
  index.free();
});

test('Set and allow-list filters: reusable, rebuilt after changes', async () => {
  const index = await Index.create({ dim: 2 });
  const n = 50;
  const ids = Array.from({ length: n }, (_, i) => `s${i}`);
  index.add(ids, new Float32Array(n * 2).map((_, i) => i), { metadata: ids.map((_, i) => ({ i })) });
  const even = new Set(ids.filter((_, i) => i % 2 === 0));
  assert.deepEqual(index.search([0, 0], 5, { filter: even }).ids, ['s0', 's2', 's4', 's6', 's8']);
  let calls = 0;
  const list = index.allowList((id, meta) => {
    calls++;
    return meta.i % 10 === 3;
  });
  assert.equal(calls, 0, 'built lazily');
  assert.deepEqual(index.search([0, 0], 3, { filter: list }).ids, ['s3', 's13', 's23']);
  assert.deepEqual(index.search([100, 100], 2, { filter: list }).ids, ['s43', 's33']);
  assert.equal(calls, n, 'the predicate ran once per record, not once per search');
  index.delete(['s3']);
  assert.deepEqual(index.search([0, 0], 2, { filter: list }).ids, ['s13', 's23']);
  assert.equal(calls, 2 * n - 1, 'rebuilt once after the delete');
  const ofIds = index.allowList(['s1', 's5', 'absent']);
  assert.deepEqual(index.search([0, 0], 5, { filter: ofIds }).ids, ['s1', 's5']);
  const other = await Index.create({ dim: 2 });
  assert.throws(() => other.search([0, 0], 1, { filter: list }), /belongs to another index/);
  assert.equal(index.has('s5'), true);
  assert.equal(index.has('s3'), false);
  other.free();
  index.free();
});

test('fields() lists the metadata fields with counts and types', async () => {
  const index = await Index.create({ dim: 1 });
  index.add(['a', 'b', 'c', 'd'], [1, 2, 3, 4], {
    metadata: [{ year: 1990, genre: 'jazz' }, { year: 2.5, tags: ['x'] }, null, { 'we"ird': null, year: 'old' }],
  });
  assert.deepEqual(index.fields(), [
    { name: 'year', count: 3, types: ['number', 'string'] },
    { name: 'genre', count: 1, types: ['string'] },
    { name: 'tags', count: 1, types: ['array'] },
    { name: 'we"ird', count: 1, types: ['null'] },
  ]);
  index.free();
});
