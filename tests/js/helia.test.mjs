// helia.test.mjs -- collections over IPFS bitswap between real Helia nodes
// on 127.0.0.1 (light builders: TCP, no bootstrap, mDNS or DHT):
//   - node A, a child process (helia-node.mjs), gets a collection through
//     Collection.publish and heliaPublisher (the CAR crosses the process
//     boundary, the publisher runs on A);
//   - node B, in this process and dialed to A, is the heliaSource: a lazy
//     open answers as the local collection does; a sync into a memory
//     store fetches only the new version's blocks and keeps working after A
//     is gone;
//   - tampering: a node that hands out wrong bytes is caught by
//     heliaSource's own hashing (CorruptDataError) and anySource takes the
//     block from a good node; A serving flipped bits over bitswap is
//     rejected by the fetching node, whose heliaSource times out, and again
//     anySource falls back.
// Every child is killed when the file ends (and if this process dies, by
// the child itself: its stdin closes); the file takes 20-30 s on 2 cores,
// mostly loading libp2p's modules and building the IVF segment.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import {
  Collection, CorruptDataError, ParameterError, StateError, anySource, heliaPublisher, heliaSource, memoryStore,
} from '../../js/node.mjs';
import { TestRng } from './data.mjs';
import { addrsOf, createLightHelia, dial, spawnHeliaNode } from './helia-node.mjs';

const DIM = 16;
const children = [];
const nodes = [];
let dir, A, B, c, vectors, synced;

function clustered(rng, n, centers) {
  const centres = Array.from({ length: centers }, () => rng.fill(new Float32Array(DIM)));
  return Array.from({ length: n }, () => Float32Array.from(centres[rng.below(centers)], (x) => x + 0.05 * rng.float()));
}

// Collection.publish to the child A: the CAR goes through a file, and A runs
// heliaPublisher on it.
function toChild(child) {
  let n = 0;
  return {
    async publish({ root, car }) {
      const file = path.join(dir, `publish-${n++}.car`);
      await writeFile(file, car());
      const { ok, id, ...result } = await child.request('publish', { car: file, root });
      return result;
    },
  };
}

async function lightNode() {
  const helia = await createLightHelia();
  nodes.push(helia);
  return helia;
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'shoal-helia-'));
  // An IVF-PQ segment (a lazy open fetches only the lists a query probes;
  // the core builds one from 10,000 records) and a small flat one (a flat
  // buffer: quick to fill).
  const rng = new TestRng(23);
  vectors = clustered(rng, 10300, 24);
  const build = async () => {
    const collection = await Collection.create({
      dim: DIM, kind: 'flat', store: memoryStore(), largeFrom: 10000, flushRecords: 10000, large: { nlist: 32, nprobe: 3, pqM: 4 },
    });
    await collection.upsert(vectors.slice(0, 10000).map((v, i) => ({ id: `v${i}`, vector: v, metadata: { i } })));
    await collection.upsert(vectors.slice(10000).map((v, i) => ({ id: `v${10000 + i}`, vector: v })));
    await collection.flush();
    return collection;
  };
  // (Starting a node is mostly loading libp2p's modules: all three at once.)
  [A, B, c] = await Promise.all([spawnHeliaNode(), lightNode(), build()]);
  children.push(A);
  await dial(B, A.addrs[0]);
}, { timeout: 50_000 });

after(async () => {
  await Promise.all(children.map((child) => child.kill()));
  await Promise.all(nodes.map((helia) => helia.stop().catch(() => {})));
  await c?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('heliaPublisher on node A, a lazy open through node B: the same answers, fetched on demand', { timeout: 60_000 }, async () => {
  const published = await c.publish(toChild(A));
  assert.equal(published.root, c.cid);
  assert.ok(published.blocks >= 3, `${published.blocks} blocks`);
  assert.ok(published.bytes > c.stats().segmentBytes * 0.9, `${published.bytes} bytes published`);
  assert.equal(published.pinned, true);
  assert.equal(published.provided, false, 'no content routing on a light node: nothing provided, no failure');

  const source = heliaSource(B, { timeout: 10_000 });
  const remote = await Collection.open({ source, root: c.cid, lazy: true });
  const afterOpen = remote.stats().fetchedBytes;
  assert.ok(afterOpen < published.bytes * 0.4, `the lazy open fetched ${afterOpen} of ${published.bytes} bytes`);
  for (const at of [5, 1234, 9999, 10100]) assert.deepEqual(await remote.search(vectors[at], 10), await c.search(vectors[at], 10));
  const filtered = { filter: { i: { $lt: 1000 } } };
  assert.deepEqual(await remote.search(vectors[400], 5, filtered), await c.search(vectors[400], 5, filtered));
  const fetched = remote.stats().fetchedBytes;
  assert.deepEqual(await remote.search(vectors[5], 10), await c.search(vectors[5], 10));
  assert.equal(remote.stats().fetchedBytes, fetched, 'a repeated query fetches nothing');
  assert.equal(source.stats().fetchedBytes, fetched);
  remote.free();
});

test('sync from node B into a memory store: only the new version\'s blocks', { timeout: 40_000 }, async () => {
  const source = heliaSource(B, { timeout: 10_000 });
  const store = memoryStore();
  const local = await Collection.open({ store, source, root: c.cid, lazy: false });
  assert.equal(local.stats().lazy, 0);
  // A new version: 1% more records, published to A, synced by its CIDs.
  const rng = new TestRng(5);
  await c.upsert(clustered(rng, 100, 3).map((v, i) => ({ id: `n${i}`, vector: v })));
  await c.flush();
  await c.publish(toChild(A));
  const result = await local.sync(source, { root: c.cid });
  assert.equal(local.cid, c.cid);
  assert.ok(result.fetchedBlocks <= 3, `sync fetched ${result.fetchedBlocks} blocks`);
  assert.deepEqual(await local.search(vectors[77], 10), await c.search(vectors[77], 10));
  assert.equal(await local.has('n7'), true);
  await local.close();
  synced = store;
});

// A Helia node whose blockstore hands out every block with one bit flipped.
function lying(helia) {
  const flip = async function* (chunks) {
    for await (const chunk of chunks) {
      const out = Uint8Array.from(chunk);
      out[out.length >> 1] ^= 1;
      yield out;
    }
  };
  const blockstore = new Proxy(helia.blockstore, {
    get(target, prop) {
      if (prop === 'get') return (cid, options) => flip(target.get(cid, options));
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return new Proxy(helia, { get: (target, prop) => (prop === 'blockstore' ? blockstore : Reflect.get(target, prop, target)) });
}

test('tampered blocks: CorruptDataError from heliaSource, a good node through anySource', { timeout: 40_000 }, async () => {
  // B holds every block now (the sync above).  A lying view of it:
  const bad = heliaSource(lying(B), { timeout: 5000 });
  await assert.rejects(bad.get(c.cid), (err) => err instanceof CorruptDataError && /do not hash/.test(err.message));
  const errors = [];
  // (The honest answer a little late, so that the lying one always lands.)
  const good = heliaSource(B);
  const late = { name: good.name, get: async (cid, options) => { await new Promise((r) => setTimeout(r, 20)); return good.get(cid, options); } };
  const both = anySource([bad, late], { onError: (s, err) => errors.push(err) });
  const remote = await Collection.open({ source: both, root: c.cid, lazy: true });
  assert.deepEqual(await remote.search(vectors[9], 5), await c.search(vectors[9], 5));
  assert.ok(errors.length > 0 && errors.every((e) => e instanceof CorruptDataError), 'the lying node was caught');
  remote.free();

  // A node that serves flipped bits over bitswap: the fetching node drops
  // them, so its source times out and anySource answers from B.
  await A.request('tamper', { on: true });
  const C = await lightNode();
  await dial(C, A.addrs[0]);
  const viaTampered = heliaSource(C, { timeout: 1500 });
  await assert.rejects(viaTampered.get(c.cid), StateError);
  const fallback = anySource([viaTampered, heliaSource(B)]);
  const again = await Collection.open({ source: fallback, root: c.cid, lazy: true });
  assert.deepEqual(await again.search(vectors[10000], 5), await c.search(vectors[10000], 5));
  again.free();
  await A.request('tamper', { on: false });
});

test('the synced copy searches offline once A is stopped', { timeout: 10_000 }, async () => {
  await A.request('stop');
  await A.kill();
  assert.equal(A.exited, true);
  const offline = await Collection.open({ store: synced });
  assert.equal(offline.cid, c.cid);
  for (const at of [1, 2500, 10200]) assert.deepEqual(await offline.search(vectors[at], 10), await c.search(vectors[at], 10));
  offline.free();
});

test('heliaSource and heliaPublisher refuse what is not a Helia node; offline sources miss, not fail', { timeout: 10_000 }, async () => {
  assert.throws(() => heliaSource({}), ParameterError);
  assert.throws(() => heliaPublisher(null), ParameterError);
  const missing = 'bafkreiadsbmmn4waznesyuz3bjgrj33xzqhxrk6mz3ksq7meugrachh3qe';
  assert.equal(await heliaSource(B, { offline: true }).get(missing), undefined);
  await assert.rejects(heliaSource(B).get('not a cid'), ParameterError);
  await assert.rejects(heliaPublisher(B).publish({ root: missing, blocks: [{ cid: missing, bytes: new Uint8Array([1]) }] }), CorruptDataError);
  assert.equal(addrsOf(B)[0].startsWith('/ip4/127.0.0.1/tcp/'), true);
});
