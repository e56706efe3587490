// shards.test.mjs -- a collection split by id over three shards, each
// published behind its own gateway and opened remotely, searched together:
// the same answers as one collection of every record; an id in two shards
// keeps its newest version.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Collection, createGatewayServer, gatewaySource, memoryStore } from '../../js/node.mjs';
import { partition, searchShards, shardOf } from '../../js/src/shards.mjs';
import { TestRng } from './data.mjs';

const DIM = 16;

test('shardOf is FNV-1a of the UTF-8 id, modulo n', () => {
  assert.equal(shardOf('', 7), 0x811c9dc5 % 7);
  assert.equal(shardOf('a', 1000), 0xe40c292c % 1000); // FNV-1a("a") = 0xe40c292c
  const counts = [0, 0, 0];
  for (let i = 0; i < 3000; i++) counts[shardOf(`id${i}`, 3)]++;
  assert.ok(counts.every((c) => c > 900), `balanced: ${counts}`);
});

test('three shards on three gateways answer as one collection', { timeout: 120_000 }, async (t) => {
  const rng = new TestRng(12);
  const records = Array.from({ length: 3000 }, (_, i) => ({ id: `doc${i}`, vector: rng.fill(new Float32Array(DIM)), metadata: { i } }));
  const whole = await Collection.create({ dim: DIM, kind: 'flat' });
  await whole.upsert(records);
  const servers = [], remotes = [];
  for (const part of partition(records, 3)) {
    const store = memoryStore();
    const shard = await Collection.create({ dim: DIM, kind: 'flat', store });
    await shard.upsert(part);
    await shard.flush();
    const server = await createGatewayServer({ store });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    remotes.push(await Collection.open({ source: gatewaySource(`http://127.0.0.1:${server.address().port}`), root: shard.cid }));
  }
  t.after(() => servers.forEach((s) => s.close()));
  for (let q = 0; q < 10; q++) {
    const query = rng.fill(new Float32Array(DIM));
    const got = await searchShards(remotes, query, 10);
    const want = await whole.search(query, 10);
    assert.deepEqual(got.ids, want.ids);
    assert.deepEqual(got.distances, want.distances);
    assert.deepEqual(got.metadata, want.metadata);
    got.ids.forEach((id, i) => assert.equal(got.shards[i], shardOf(id, 3)));
  }
  // The same id in two shards: the later time wins.
  const a = await Collection.create({ dim: DIM, kind: 'flat' });
  const b = await Collection.create({ dim: DIM, kind: 'flat' });
  const v = rng.fill(new Float32Array(DIM));
  await a.upsert([{ id: 'moved', vector: v, metadata: { from: 'a' }, time: 2000 }]);
  await b.upsert([{ id: 'moved', vector: v, metadata: { from: 'b' }, time: 1000 }]);
  const r = await searchShards([a, b], v, 5);
  assert.deepEqual(r.ids, ['moved']);
  assert.deepEqual(r.metadata, [{ from: 'a' }]);
});
