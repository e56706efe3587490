// sources.test.mjs -- collections fetched from IPFS trustless gateways on
// 127.0.0.1 (createGatewayServer, what `shoal-serve` runs, over a folder the
// file store wrote):
//   - a lazy remote search fetches the head, centroids and only the lists it
//     probes, answers as the whole collection does, and fetches nothing the
//     second time;
//   - sync after 1% new records fetches only the new blocks (<= 3% of the
//     collection), resumes after an interruption, refuses an older version;
//   - failures: a tampered block (taken from another gateway), a truncated
//     response, a wrong content type, a 404, a gateway that hangs (timeout,
//     then the next), a CAR with extra and missing blocks, every source
//     down (a clear error; the local collection unchanged and searchable).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import {
  Collection, CorruptDataError, StateError, anySource, createGatewayServer, fileStore, gatewaySource, memoryStore,
} from '../../js/node.mjs';
import { TestRng } from './data.mjs';

const DIM = 32;

async function tempDir(t) {
  const dir = await mkdtemp(path.join(tmpdir(), 'shoal-src-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function listen(t, server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    t.after(() => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }));
    resolve(`http://127.0.0.1:${server.address().port}`);
  }));
}

function clustered(rng, n, centers) {
  const c = Array.from({ length: centers }, () => rng.fill(new Float32Array(DIM)));
  return Array.from({ length: n }, () => {
    const base = c[rng.below(centers)];
    return Float32Array.from(base, (x) => x + 0.05 * rng.float());
  });
}

// A published collection: a 12,000-record IVF-PQ segment and a small HNSW one.
async function publish(t) {
  const dir = await tempDir(t);
  const rng = new TestRng(17);
  const vectors = clustered(rng, 12500, 40);
  const c = await Collection.create({
    dim: DIM, store: await fileStore(dir), largeFrom: 12000, flushRecords: 12000,
    large: { nlist: 64, nprobe: 4, pqM: 8 },
  });
  await c.upsert(vectors.slice(0, 12000).map((v, i) => ({ id: `v${i}`, vector: v, metadata: { i } })));
  await c.upsert(vectors.slice(12000).map((v, i) => ({ id: `v${12000 + i}`, vector: v })));
  await c.flush();
  return { dir, c, vectors };
}

test('lazy remote search: only the probed lists, the same answers, nothing twice', { timeout: 120_000 }, async (t) => {
  const { dir, c, vectors } = await publish(t);
  let requests = 0;
  const url = await listen(t, await createGatewayServer({ dir }, { onRequest: () => requests++ }));
  const total = c.stats().segmentBytes;
  const remote = await Collection.open({ source: gatewaySource(url), root: c.cid });
  // Opening fetches the manifest, the small HNSW segment whole and the IVF
  // segment's head (its lists stay remote).  (bench/ measures the ratios on
  // a 1M collection; this one is small.)
  const afterOpen = remote.stats().fetchedBytes;
  assert.ok(afterOpen < total * 0.4, `opening fetched ${afterOpen} of ${total} bytes`);
  const q = vectors[123];
  const got = await remote.search(q, 10);
  const want = await c.search(q, 10);
  assert.deepEqual(got, want);
  const first = remote.stats().fetchedBytes;
  assert.ok(first - afterOpen < (total - afterOpen) * 0.25, `the first query fetched ${first - afterOpen} more bytes`);
  const before = requests;
  assert.deepEqual(await remote.search(q, 10), want);
  assert.equal(remote.stats().fetchedBytes, first, 'a repeated query fetches nothing');
  assert.equal(requests, before);
  // A query elsewhere fetches more lists; a filter works on them.
  const other = await remote.search(vectors[9000], 5, { filter: { i: { $lt: 12000 } } });
  assert.deepEqual(other, await c.search(vectors[9000], 5, { filter: { i: { $lt: 12000 } } }));
  // Syncing the version it has open makes it whole: every block fetched
  // once into the local store, then searches need no source.
  const local = memoryStore();
  const whole = await Collection.open({ source: gatewaySource(url), root: c.cid, store: local });
  await whole.search(q, 10);
  const partial = whole.stats().fetchedBytes;
  const synced = await whole.sync(gatewaySource(url), { root: c.cid });
  assert.ok(synced.fetchedBlocks > 0 && partial + synced.fetchedBytes < total * 1.1,
    `sync fetched ${synced.fetchedBytes} bytes after ${partial}, of ${total}`);
  const again = await Collection.open({ store: local });
  assert.equal(again.cid, c.cid);
  assert.deepEqual(await again.search(vectors[9000], 10), await c.search(vectors[9000], 10));
  again.free();
  whole.free();
  remote.free();
  await c.close();
});

test('sync: only the new blocks, resumable, never backwards', { timeout: 180_000 }, async (t) => {
  const { dir, c, vectors } = await publish(t);
  let failAfter = Infinity;
  const inner = await createGatewayServer({ dir });
  const flaky = createServer((req, res) => {
    if (failAfter-- <= 0) {
      res.writeHead(503).end();
      return;
    }
    inner.emit('request', req, res);
  });
  const url = await listen(t, flaky);
  const src = gatewaySource(url, { retries: 0 });
  const localDir = await tempDir(t);
  // A complete local copy.
  const local = await Collection.open({ store: await fileStore(localDir), source: src, root: c.cid, lazy: false });
  const v1 = c.cid;
  assert.equal(local.cid, v1);
  assert.equal(local.stats().lazy, 0);
  // The publisher adds 1% and flushes; the client syncs.
  const rng = new TestRng(99);
  await c.upsert(Array.from({ length: 125 }, (_, i) => ({ id: `n${i}`, vector: clustered(rng, 1, 1)[0] })));
  await c.flush();
  const v2 = c.cid;
  // Interrupted after a few requests: the old version stays, searchable.
  failAfter = 1; // the manifest comes, the new segment does not
  await assert.rejects(local.sync(src, { root: v2 }));
  assert.equal(local.cid, v1);
  assert.equal((await local.search(vectors[5], 1)).ids[0], 'v5');
  failAfter = Infinity;
  let progress = 0;
  const result = await local.sync(src, { root: v2, onProgress: () => progress++ });
  assert.equal(local.cid, v2);
  assert.ok(progress > 0);
  // Only the new version's own blocks: its manifest and the new segment (an
  // HNSW segment of 1% of the records; the rest is IVF-PQ, 8 bytes a record,
  // so 1% of the records is ~4% of the bytes here -- bench/ measures the
  // 3% target on Fashion-MNIST).
  const total = c.stats().segmentBytes;
  assert.ok(result.fetchedBlocks <= 3, `${result.fetchedBlocks} blocks`);
  assert.ok(result.fetchedBytes <= total * 0.06, `sync fetched ${result.fetchedBytes} of ${total} bytes`);
  assert.deepEqual(await local.search(vectors[77], 10), await c.search(vectors[77], 10));
  assert.equal(await local.has('n7'), true);
  // An older version is refused unless forced.
  await assert.rejects(local.sync(src, { root: v1 }), StateError);
  assert.equal(local.cid, v2);
  await local.close();
  // Reopened from its own store, offline.
  const again = await Collection.open({ store: await fileStore(localDir) });
  assert.equal(again.cid, v2);
  await again.close();
  await c.close();
});

test('bad gateways are skipped: tampered, truncated, wrong type, 404, hanging', { timeout: 120_000 }, async (t) => {
  const { dir, c, vectors } = await publish(t);
  const good = await createGatewayServer({ dir });
  const tamper = (mode) => createServer((req, res) => {
    const raw = new URL(req.url, 'http://x').searchParams.get('format') === 'raw';
    if (!raw || mode === 'none') return good.emit('request', req, res);
    if (mode === 'hang') return; // never answers
    if (mode === '404') return res.writeHead(404).end();
    const fakeRes = {
      writeHead(status, headers = {}) { this.status = status; this.headers = headers; return this; },
      end(body) {
        if (!body) return res.writeHead(this.status, this.headers).end();
        const bytes = Buffer.from(body);
        if (mode === 'flip') bytes[bytes.length >> 1] ^= 1;
        const headers = { ...this.headers };
        if (mode === 'type') headers['content-type'] = 'text/html';
        if (mode === 'short') {
          res.writeHead(this.status, headers); // content-length stays: the body is cut
          res.end(bytes.subarray(0, bytes.length >> 1));
          res.socket?.destroy();
          return undefined;
        }
        return res.writeHead(this.status, headers).end(bytes);
      },
    };
    good.emit('request', req, fakeRes);
  });
  const urls = [];
  for (const mode of ['flip', 'short', 'type', '404', 'hang']) urls.push(await listen(t, tamper(mode)));
  const honest = await listen(t, tamper('none'));
  const errors = [];
  const src = anySource([...urls, honest].map((u) => gatewaySource(u, { timeout: 1500, retries: 0 })),
    { onError: (s, err) => errors.push(`${s.name}: ${err.message}`) });
  const remote = await Collection.open({ source: src, root: c.cid });
  assert.deepEqual(await remote.search(vectors[42], 5), await c.search(vectors[42], 5));
  assert.ok(errors.some((e) => e.startsWith(urls[0]) && /do not hash/.test(e)), 'the tampered block was caught');
  assert.ok(errors.some((e) => e.startsWith(urls[2]) && /content type/.test(e)), 'the wrong type was caught');
  const stats = src.stats();
  assert.ok(stats.sources[0].failures > 0);
  remote.free();

  // Only bad gateways: a clear error; a local copy stays searchable.
  const localDir = await tempDir(t);
  const local = await Collection.open({ store: await fileStore(localDir), source: gatewaySource(honest), root: c.cid, lazy: false });
  await c.upsert([{ id: 'late', vector: vectors[1] }]);
  await c.flush();
  const bad = anySource(urls.slice(0, 3).map((u) => gatewaySource(u, { timeout: 1000, retries: 0 })));
  await assert.rejects(local.sync(bad, { root: c.cid }), (err) => err instanceof StateError || err instanceof CorruptDataError);
  assert.equal((await local.search(vectors[3], 1)).ids[0], 'v3');
  await local.close();
  await c.close();
});

test('a CAR with extra and missing blocks: extras ignored, missing ones fetched', { timeout: 120_000 }, async (t) => {
  const { dir, c, vectors } = await publish(t);
  const good = await createGatewayServer({ dir });
  const { carOf, carBlocks } = await import('../../js/src/cid.mjs');
  const carServer = createServer(async (req, res) => {
    const u = new URL(req.url, 'http://x');
    if (u.searchParams.get('format') !== 'car') return good.emit('request', req, res);
    // The real CAR, minus every fifth block, plus a block from nowhere.
    const chunks = [];
    const sink = { writeHead() { return this; }, end(b) { chunks.push(b); this.done?.(); } };
    await new Promise((resolve) => { sink.done = resolve; good.emit('request', req, sink); });
    const blocks = (await carBlocks(new Uint8Array(chunks[0]))).filter((_, i) => i % 5 !== 4);
    const extra = new TextEncoder().encode('not part of it');
    const { cidOf } = await import('../../js/src/cid.mjs');
    blocks.push({ cid: await cidOf(extra), bytes: extra });
    const car = carOf(u.pathname.split('/')[2], blocks);
    res.writeHead(200, { 'content-type': 'application/vnd.ipld.car' }).end(car);
  });
  const url = await listen(t, carServer);
  const store = memoryStore();
  const empty = await Collection.create({ dim: DIM, store });
  const result = await empty.sync(gatewaySource(url), { root: c.cid, car: true, force: true });
  assert.equal(empty.cid, c.cid);
  assert.ok(result.fetchedBlocks > 0);
  assert.deepEqual(await empty.search(vectors[10], 3), await c.search(vectors[10], 3));
  assert.ok(!store.cids().includes(await (await import('../../js/src/cid.mjs')).cidOf(new TextEncoder().encode('not part of it'))),
    'the extra block was not stored');
  empty.free();
  await c.close();
});

test('the gateway server reads only blocks by CID: no path leaves the folder', { timeout: 60_000 }, async (t) => {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const dir = await tempDir(t);
  const secret = 'not a block: outside blocks/';
  await mkdir(path.join(dir, 'blocks'), { recursive: true });
  await writeFile(path.join(dir, 'root'), secret);
  await writeFile(path.join(path.dirname(dir), `${path.basename(dir)}-secret`), secret);
  const url = await listen(t, await createGatewayServer({ dir }));
  const paths = ['/ipfs/../root', '/ipfs/..%2froot', '/ipfs/%2e%2e%2froot', '/ipfs/..%252froot', '/root', '/blocks/../root',
    '/ipfs/bafkreiaaaa/../../root', `/ipfs/..%2f..%2f${path.basename(dir)}-secret`, '/ipfs/ROOT', '/ipfs/root?format=raw',
    '//etc/passwd', '/ipfs/%00'];
  for (const p of paths) {
    const res = await fetch(`${url}${p}`, { headers: { accept: 'application/vnd.ipld.raw' } });
    const text = await res.text();
    assert.ok(res.status === 400 || res.status === 404, `${p}: ${res.status}`);
    assert.ok(!text.includes(secret) && !text.includes('root:'), `${p} served a file`);
  }
  // A well-formed CID the folder does not hold: 404.
  const absent = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy';
  assert.equal((await fetch(`${url}/ipfs/${absent}?format=raw`)).status, 404);
});

