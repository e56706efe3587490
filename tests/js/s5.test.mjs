// s5.test.mjs -- s5Publisher and s5Source against tests/js/s5-server.mjs (an
// S5 node's HTTP API on 127.0.0.1, from the node's documented API and the S5
// spec), and js/src/blake3.mjs against @noble/hashes:
//   - BLAKE3 at every length around block and chunk boundaries, multi-chunk
//     trees; blob ids as the spec lays them out;
//   - publish (blocks as blobs, an index blob, a signed registry entry),
//     open by name lazily: searches equal the local collection's; add
//     records, publish again (only new blocks uploaded), sync (only new
//     blocks fetched);
//   - a tampered or lengthened blob, an index that maps a CID to other
//     bytes, an upload answered with another blob id: rejected;
//   - a registry entry with a bad signature, for another key, or older than
//     one seen before: rejected;
//   - the bearer token; the shoal-publish bin; a real node when
//     SHOAL_S5_NODE is set (skipped otherwise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { blake3 as reference } from '@noble/hashes/blake3.js';

import {
  Collection, CorruptDataError, NotFoundError, ParameterError, StateError, anySource, fileStore, s5Publisher, s5Source,
} from '../../js/node.mjs';
import { blake3 } from '../../js/src/blake3.mjs';
import { blobIdOf, blobIdText, decodeIndex, encodeIndex, parseBlobId, s5Name } from '../../js/src/s5.mjs';
import { cidOf } from '../../js/src/cid.mjs';
import { TestRng } from './data.mjs';
import { createS5Server, hashOfCid, rawCid } from './s5-server.mjs';
import { addRecords, folderCollection, listen, tempDir } from './remote-collection.mjs';

const BIN = fileURLToPath(new URL('../../js/bin/shoal-publish.mjs', import.meta.url));
const hex = (b) => Buffer.from(b).toString('hex');

function seedOf(n) {
  return new Uint8Array(32).fill(n);
}

test('BLAKE3 equals @noble/hashes around every boundary and over trees', () => {
  const rng = new TestRng(5);
  const lengths = new Set([0, 1, 2, 3, 4, 5, 31, 32, 33]);
  for (const edge of [64, 128, 960, 1024, 2048, 3072, 4096, 5120, 8192, 16384, 31744, 65536]) for (let d = -2; d <= 2; d++) lengths.add(edge + d);
  for (let i = 0; i < 8; i++) lengths.add(rng.below(200_000));
  lengths.add(1 << 20);
  lengths.add((1 << 20) + 4097);
  // Bytes from a 32-bit xorshift seeded by the test RNG (BigInt per byte is slow).
  let x = Number(rng.next() & 0xffffffffn) | 1;
  const byte = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x & 0xff; };
  for (const n of lengths) {
    const bytes = Uint8Array.from({ length: n }, byte);
    assert.equal(hex(blake3(bytes)), hex(reference(bytes)), `length ${n}`);
  }
  // The spec's example ("Hello, world!", docs.sfive.net/spec/blobs): 5b 82 1e + hash + 0d.
  const hello = new TextEncoder().encode('Hello, world!');
  assert.equal(hex(blake3(hello)), 'ede5c0b10f2ec4979c69b52f61e42ff5b413519ce09be0f14d098dcfe5f6f98d');
  const id = blobIdOf(hello);
  const text = blobIdText(id);
  assert.ok(text.startsWith('blob'));
  assert.deepEqual(parseBlobId(`f5b821e${hex(id.hash)}0d`), id);
  assert.deepEqual(parseBlobId(text), id);
  assert.deepEqual(parseBlobId(blobIdText(id, 'raw')), id);
  assert.equal(blobIdText(id, 'raw'), rawCid(hello), 'the same raw CID as the server computes independently');
  const big = { hash: id.hash, size: 100_000_000_000 };
  assert.deepEqual(parseBlobId(blobIdText(big)), big);
  assert.throws(() => parseBlobId('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'), ParameterError);
});

test('the index blob: round trip and strict reading', async () => {
  const a = new TextEncoder().encode('a'), b = new TextEncoder().encode('b');
  const ca = await cidOf(a), cb = await cidOf(b);
  const index = encodeIndex(ca, [{ cid: ca, ...blobIdOf(a) }, { cid: cb, ...blobIdOf(b) }]);
  assert.equal(index.length, 52 + 2 * 72);
  const { root, entries } = decodeIndex(index);
  assert.equal(root, ca);
  assert.deepEqual(entries.get(cb), blobIdOf(b));
  const damaged = (at, v) => { const x = index.slice(); x[at] = v; return x; };
  assert.throws(() => decodeIndex(damaged(0, 0)), /magic/);
  assert.throws(() => decodeIndex(damaged(8, 2)), /version 2/);
  assert.throws(() => decodeIndex(damaged(10, 1)), /reserved/);
  assert.throws(() => decodeIndex(index.subarray(0, index.length - 1)), /entries in/);
  assert.throws(() => decodeIndex(damaged(53, 0x70)), /not a Shoal CID/); // dag-pb
  assert.throws(() => decodeIndex(encodeIndex(ca, [{ cid: cb, ...blobIdOf(b) }])), /root .* not among/);
  assert.throws(() => decodeIndex(encodeIndex(ca, [{ cid: ca, ...blobIdOf(a) }, { cid: ca, ...blobIdOf(a) }])), /twice/);
});

test('publish to S5, open by name lazily, publish again, sync', { timeout: 120_000 }, async (t) => {
  const { c, vectors } = await folderCollection(t);
  const server = createS5Server();
  const url = await listen(t, server);
  const seed = seedOf(1);
  const publisher = s5Publisher(url, { seed });
  const first = await c.publish(publisher);
  assert.equal(first.root, c.cid);
  assert.equal(first.name, await s5Name(seed));
  assert.equal(first.name, await publisher.registryName());
  assert.equal(first.revision, 1);
  assert.equal(first.uploaded, first.blocks);
  assert.equal(server.blobs.size, first.blocks + 1, 'one blob a block, and the index');
  assert.equal(server.registry.size, 1);

  const src = s5Source(url);
  const lazy = await Collection.open({ source: src, name: first.name });
  assert.equal(lazy.cid, c.cid);
  const q = vectors[321];
  assert.deepEqual(await lazy.search(q, 10), await c.search(q, 10));
  const fetched = lazy.stats().fetchedBytes;
  assert.ok(fetched < first.bytes, `the lazy open fetched ${fetched} of ${first.bytes} bytes`);
  assert.deepEqual(await lazy.search(q, 10), await c.search(q, 10));
  assert.equal(lazy.stats().fetchedBytes, fetched, 'a repeated query fetches nothing');
  lazy.free();

  // A whole local copy; the publisher adds 1% and publishes again.
  const localDir = await tempDir(t);
  const local = await Collection.open({ store: await fileStore(localDir), source: src, name: first.name, lazy: false });
  await addRecords(c);
  const second = await c.publish(publisher);
  assert.equal(second.revision, 2);
  assert.equal(second.root, c.cid);
  assert.ok(second.uploaded <= 3, `${second.uploaded} blocks uploaded again`);
  // A new publisher object (no memory) reads the revision from the node.
  const third = await c.publish(s5Publisher(url, { seed }), { name: first.name });
  assert.equal(third.revision, 3);
  assert.equal(third.uploaded, 0);
  assert.equal(third.index, second.index, 'the same version gives the same index blob');
  const synced = await local.sync(src, { name: first.name });
  assert.equal(local.cid, c.cid);
  assert.ok(synced.fetchedBlocks <= 3, `${synced.fetchedBlocks} blocks synced`);
  assert.deepEqual(await local.search(vectors[7], 10, { filter: { i: { $gte: 10 } } }), await c.search(vectors[7], 10, { filter: { i: { $gte: 10 } } }));
  assert.equal(await local.has('n1'), true);
  await local.close();

  // Another key's name is refused by this publisher; a WebCrypto key pair works.
  await assert.rejects(c.publish(publisher, { name: await s5Name(seedOf(2)) }), ParameterError);
  const keyPair = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
  const byPair = await c.publish(s5Publisher(url, { keyPair }));
  assert.equal(byPair.name, await s5Name(keyPair));
  const other = await Collection.open({ source: s5Source(url, { form: 'blob' }), name: byPair.name });
  assert.deepEqual(await other.search(q, 3), await c.search(q, 3));
  other.free();
  // A name with no entry, and a string that is no name.
  await assert.rejects(s5Source(url).resolve(await s5Name(seedOf(9))), NotFoundError);
  await assert.rejects(s5Source(url).resolve('not-a-name'), ParameterError);
  await c.close();
});

test('tampered blobs and lying indexes or upload answers are rejected', { timeout: 60_000 }, async (t) => {
  const { c, vectors } = await folderCollection(t);
  const server = createS5Server();
  const url = await listen(t, server);
  const { name } = await c.publish(s5Publisher(url, { seed: seedOf(3) }));

  // A flipped byte, an extra byte: BLAKE3 / size against the blob id.
  for (const fault of ['flip', 'extra']) {
    const src = s5Source(url, { retries: 0 });
    server.faults[fault] = true;
    await assert.rejects(src.resolve(name), (err) => err instanceof CorruptDataError, fault);
    server.faults[fault] = false;
    await src.resolve(name);
    server.faults[fault] = true;
    await assert.rejects(src.get(c.cid), (err) => err instanceof CorruptDataError && /BLAKE3|over the/.test(err.message), fault);
    server.faults[fault] = false;
  }
  // A tampered node among honest ones: skipped.
  const honest = createS5Server();
  const honestUrl = await listen(t, honest);
  await c.publish(s5Publisher(honestUrl, { seed: seedOf(3) }));
  const bad = s5Source(url), good = s5Source(honestUrl);
  await bad.resolve(name);
  server.faults.flip = true;
  const errors = [];
  const both = anySource([bad, good], { onError: (s, err) => errors.push(err) });
  const remote = await Collection.open({ source: both, name });
  assert.deepEqual(await remote.search(vectors[11], 5), await c.search(vectors[11], 5));
  assert.ok(errors.some((e) => e instanceof CorruptDataError));
  remote.free();
  server.faults.flip = false;

  // A validly signed index that maps the root's CID to a blob of other bytes:
  // the blob passes BLAKE3, the block fails SHA-256 against its CID.
  const other = new TextEncoder().encode('not the manifest');
  const liar = createS5Server();
  const liarUrl = await listen(t, liar);
  // (s5Publisher checks blocks against their CIDs, so the lie is made by hand)
  await doctoredIndex(liarUrl, seedOf(4), c.cid, other);
  const src = s5Source(liarUrl);
  assert.equal(await src.resolve(await s5Name(seedOf(4))), c.cid);
  await assert.rejects(src.get(c.cid), (err) => err instanceof CorruptDataError && /do not hash to it/.test(err.message));

  // The publisher checks the node's upload answers (and its own blocks).
  server.faults.answerCid = () => rawCid(new TextEncoder().encode('something else'));
  await assert.rejects(c.publish(s5Publisher(url, { seed: seedOf(5) })), (err) => err instanceof CorruptDataError && /answered the blob id/.test(err.message));
  server.faults.answerCid = () => 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy';
  await assert.rejects(c.publish(s5Publisher(url, { seed: seedOf(5) })), (err) => err instanceof CorruptDataError && /not a BLAKE3 blob id/.test(err.message));
  server.faults.answerCid = undefined;
  await assert.rejects(s5Publisher(url, { seed: seedOf(5) }).publish({ root: c.cid, blocks: [{ cid: c.cid, bytes: other }] }),
    (err) => err instanceof CorruptDataError && /do not hash/.test(err.message));
  await c.close();
});

// Uploads `bytes` as the blob for `cid`, an index naming it, and a signed
// entry pointing at that index: what a key holder that lies would publish.
async function doctoredIndex(url, seed, cid, bytes) {
  const upload = async (data) => {
    const form = new FormData();
    form.append('file', new Blob([data]), 'blob');
    return (await (await fetch(`${url}/s5/upload`, { method: 'POST', body: form })).json()).cid;
  };
  await upload(bytes);
  const index = encodeIndex(cid, [{ cid, ...blobIdOf(bytes) }]);
  const indexCid = await upload(index);
  const id = parseBlobId(indexCid);
  const data = Uint8Array.from([0x5a, 0x26, 0x1f, ...id.hash, ...sizeLE(id.size)]);
  await postEntry(url, seed, 1, data);
}

function sizeLE(n) {
  const out = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.push(v % 256);
  return out.length ? out : [0];
}

async function keysOf(seed) {
  const der = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20, ...seed]);
  const privateKey = await crypto.subtle.importKey('pkcs8', der, { name: 'Ed25519' }, true, ['sign']);
  const pub = Buffer.from((await crypto.subtle.exportKey('jwk', privateKey)).x, 'base64url');
  return { privateKey, pk: Uint8Array.from([0xed, ...pub]) };
}

async function signed(seed, revision, data) {
  const { privateKey, pk } = await keysOf(seed);
  const message = Buffer.alloc(10 + data.length);
  message[0] = 0x07;
  message.writeBigUInt64LE(BigInt(revision), 1);
  message[9] = data.length;
  Buffer.from(data).copy(message, 10);
  const signature = new Uint8Array(await crypto.subtle.sign('Ed25519', privateKey, message));
  const b64 = (x) => Buffer.from(x).toString('base64url');
  return { pk: b64(pk), revision, data: b64(data), signature: b64(signature) };
}

async function postEntry(url, seed, revision, data) {
  const res = await fetch(`${url}/s5/registry`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(await signed(seed, revision, data)),
  });
  assert.equal(res.status, 204, await res.text());
}

test('registry entries: bad signatures, other keys and older revisions are refused', { timeout: 60_000 }, async (t) => {
  const { c } = await folderCollection(t);
  const server = createS5Server();
  const url = await listen(t, server);
  const publisher = s5Publisher(url, { seed: seedOf(6) });
  const v1 = await c.publish(publisher);
  const name = v1.name;
  const src = s5Source(url);
  assert.equal(await src.resolve(name), v1.root);

  // A bad signature: the data or the revision changed, the signature kept.
  const flip = (field) => (entry) => {
    const bytes = Buffer.from(entry[field], 'base64url');
    bytes[bytes.length - 1] ^= 1;
    return { ...entry, [field]: bytes.toString('base64url') };
  };
  for (const doctor of [flip('signature'), flip('data'), (e) => ({ ...e, revision: e.revision + 1 })]) {
    server.faults.entry = doctor;
    await assert.rejects(src.resolve(name), (err) => err instanceof CorruptDataError && /bad signature/.test(err.message));
    await assert.rejects(c.publish(publisher), (err) => err instanceof CorruptDataError && /bad signature/.test(err.message), 'nor built upon');
  }
  // Another key's (valid) entry answered for this name.
  const otherEntry = await signed(seedOf(7), 5, new Uint8Array([0x5a, 1, 2]));
  server.faults.entry = () => otherEntry;
  await assert.rejects(src.resolve(name), (err) => err instanceof CorruptDataError && /another key/.test(err.message));
  // A signed entry that points at no blob.
  const noBlob = await signed(seedOf(6), 9, new Uint8Array([1, 2, 3]));
  server.faults.entry = () => noBlob;
  await assert.rejects(s5Source(url).resolve(name), (err) => err instanceof CorruptDataError && /does not point at a blob/.test(err.message));
  server.faults.entry = undefined;

  // Older revisions: the node rejects them on write; a source that saw
  // revision 2 refuses revision 1 when a node answers it (stale or replaying).
  const rejected = await fetch(`${url}/s5/registry`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(server.history[0]),
  });
  assert.equal(rejected.status, 500);
  assert.match(await rejected.text(), /Revision number too low/);
  await addRecords(c);
  const v2 = await c.publish(publisher);
  assert.equal(v2.revision, 2);
  assert.equal(await src.resolve(name), v2.root);
  server.faults.entry = (entry, history) => history[0];
  await assert.rejects(src.resolve(name), (err) => err instanceof StateError && /revision 1, older than revision 2/.test(err.message));
  // Collection.open / sync through that source refuse it too; a new source
  // has seen nothing and takes revision 1 (sync would still refuse to go back).
  await assert.rejects(Collection.open({ source: src, name }), StateError);
  assert.equal(await s5Source(url).resolve(name), v1.root);
  // Two different entries with the same revision: refused.
  const fork = await signed(seedOf(6), 2, Buffer.from(server.history[0].data, 'base64url'));
  server.faults.entry = () => fork;
  await assert.rejects(src.resolve(name), (err) => err instanceof StateError && /two different registry entries/.test(err.message));
  server.faults.entry = undefined;
  assert.equal(await src.resolve(name), v2.root);
  await c.close();
});

test('bearer tokens; node errors; shoal-publish --s5', { timeout: 60_000 }, async (t) => {
  const { dir, c, vectors } = await folderCollection(t);
  const server = createS5Server({ authToken: 'sesame' });
  const url = await listen(t, server);
  await assert.rejects(c.publish(s5Publisher(url, { seed: seedOf(8) })), (err) => err instanceof StateError && /HTTP 401/.test(err.message));
  const ok = await c.publish(s5Publisher(url, { seed: seedOf(8), authToken: 'sesame' }));
  await assert.rejects(s5Source(url).resolve(ok.name), (err) => err instanceof StateError && /HTTP 401: Unauthorized/.test(err.message));
  assert.equal(await s5Source(url, { authToken: 'sesame' }).resolve(ok.name), c.cid);
  // Nothing listening; a node that hangs.
  await assert.rejects(s5Source('http://127.0.0.1:9', { retries: 0 }).resolve(ok.name), StateError);
  const { createServer } = await import('node:http');
  const hanging = await listen(t, createServer(() => {}));
  await assert.rejects(s5Source(hanging, { timeout: 300, retries: 1 }).resolve(ok.name), (err) => err instanceof StateError && /no answer after 300 ms/.test(err.message));
  assert.throws(() => s5Publisher(url, {}), ParameterError);
  await assert.rejects(s5Publisher(url, { seed: 'abc' }).publish({ root: c.cid, blocks: [] }), ParameterError);

  // The bin: the seed from a file (hex) or SHOAL_S5_SEED, the token from SHOAL_S5_TOKEN.
  const open = createS5Server();
  const openUrl = await listen(t, open);
  const seedFile = path.join(await tempDir(t), 'seed');
  await writeFile(seedFile, `${hex(seedOf(10))}\n`);
  const out = await run([dir, '--s5', openUrl, '--seed-file', seedFile]);
  assert.equal(out.code, 0, out.stderr);
  const name = /^name (\S+)$/m.exec(out.stdout)?.[1];
  assert.equal(name, await s5Name(seedOf(10)));
  assert.equal(/^root (\S+)$/m.exec(out.stdout)?.[1], c.cid);
  const remote = await Collection.open({ source: s5Source(openUrl), name });
  assert.deepEqual(await remote.search(vectors[4], 4), await c.search(vectors[4], 4));
  remote.free();
  const again = await run([dir, '--s5', url], { SHOAL_S5_SEED: hex(seedOf(11)), SHOAL_S5_TOKEN: 'sesame' });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /uploaded/);
  assert.equal((await run([dir, '--s5', openUrl], { SHOAL_S5_SEED: '' })).code, 1, 'no key');
  assert.equal((await run([dir, '--s5', openUrl, '--key', 'x'], { SHOAL_S5_SEED: hex(seedOf(1)) })).code, 1);
  const refused = await run([dir, '--s5', url], { SHOAL_S5_SEED: hex(seedOf(11)), SHOAL_S5_TOKEN: '' });
  assert.equal(refused.code, 3);
  assert.match(refused.stderr, /401/);
  assert.ok(hashOfCid(rawCid(new Uint8Array(3))));
  await c.close();
});

function run(args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const REAL = process.env.SHOAL_S5_NODE;
test('a real S5 node (SHOAL_S5_NODE)', {
  timeout: 300_000,
  skip: !REAL && 'SHOAL_S5_NODE is not set: set it to an S5 node\'s HTTP API (e.g. http://127.0.0.1:5050; SHOAL_S5_TOKEN for its bearer token) to publish to and read from a real node',
}, async (t) => {
  const { c, vectors } = await folderCollection(t);
  const authToken = process.env.SHOAL_S5_TOKEN || undefined;
  const seed = crypto.getRandomValues(new Uint8Array(32)); // a fresh key: its registry entry is new
  const first = await c.publish(s5Publisher(REAL, { seed, authToken }));
  const src = s5Source(REAL, { authToken });
  const remote = await Collection.open({ source: src, name: first.name });
  assert.deepEqual(await remote.search(vectors[2], 5), await c.search(vectors[2], 5));
  remote.free();
  await addRecords(c);
  const second = await c.publish(s5Publisher(REAL, { seed, authToken }));
  assert.equal(second.revision, first.revision + 1);
  assert.equal(await src.resolve(first.name), c.cid);
  await c.close();
});
