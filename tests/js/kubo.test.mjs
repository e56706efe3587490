// kubo.test.mjs -- kuboPublisher and kuboSource against tests/js/kubo-server.mjs
// (Kubo's RPC API on 127.0.0.1, written from Kubo's documentation):
//   - publish a collection (dag/import of its CAR, or block/put of each
//     block), pin it, point an IPNS name at it; open it through kuboSource
//     lazily by root and by name: searches equal the local collection's;
//     sync to a second version published under the same name;
//   - the server's errors (HTTP 500 {Message, Code, Type}) surface as
//     StateErrors carrying Kubo's message; a hanging node times out;
//   - a lying node is caught: a wrong CID from block/put, a wrong root or
//     block count from dag/import, a pin of something else, a tampered
//     block from block/get;
//   - the shoal-publish bin publishes a folder;
//   - against a real node when SHOAL_KUBO_API is set (skipped otherwise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import {
  Collection, CorruptDataError, StateError, anySource, fileStore, kuboPublisher, kuboSource, memoryStore,
} from '../../js/node.mjs';
import { cidOf } from '../../js/src/cid.mjs';
import { createKuboServer } from './kubo-server.mjs';
import { addRecords, folderCollection, listen, tempDir } from './remote-collection.mjs';

const BIN = fileURLToPath(new URL('../../js/bin/shoal-publish.mjs', import.meta.url));

function run(args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('publish to Kubo (CAR and blocks), open lazily by root and by IPNS name, sync', { timeout: 120_000 }, async (t) => {
  const { c, vectors } = await folderCollection(t);
  const commands = [];
  const server = createKuboServer({ keys: ['self', 'docs'], onRequest: (cmd) => commands.push(cmd) });
  const url = await listen(t, server);

  const result = await c.publish(kuboPublisher(url, { key: 'docs' }));
  assert.equal(result.root, c.cid);
  assert.equal(result.pinned, true);
  assert.equal(result.name, server.keyNames.get('docs'));
  assert.equal(result.value, `/ipfs/${c.cid}`);
  assert.deepEqual(commands, ['dag/import', 'pin/add', 'name/publish']);
  assert.ok(server.pins.has(c.cid));
  assert.equal(result.blocks, server.blocks.size);
  assert.ok(result.bytes > 0);

  // Lazy, by root: only what searches touch.
  const src = kuboSource(url);
  const lazy = await Collection.open({ source: src, root: c.cid });
  const q = vectors[77];
  assert.deepEqual(await lazy.search(q, 10), await c.search(q, 10));
  const afterFirst = src.stats().fetchedBytes;
  assert.deepEqual(await lazy.search(q, 10), await c.search(q, 10));
  assert.equal(src.stats().fetchedBytes, afterFirst, 'a repeated query fetches nothing');
  assert.ok(afterFirst < result.bytes, `the lazy open fetched ${afterFirst} of ${result.bytes} bytes`);
  lazy.free();

  // By name, whole, into a local folder; then a second version, published
  // block by block under the same name, synced.
  const localDir = await tempDir(t);
  const local = await Collection.open({ store: await fileStore(localDir), source: kuboSource(url), name: result.name, lazy: false });
  assert.equal(local.cid, c.cid);
  assert.deepEqual(await local.search(vectors[5], 5, { filter: { i: { $lt: 100 } } }),
    await c.search(vectors[5], 5, { filter: { i: { $lt: 100 } } }));
  await addRecords(c);
  commands.length = 0;
  const second = await c.publish(kuboPublisher(url, { method: 'blocks' }), { name: 'docs' });
  assert.equal(second.name, result.name);
  assert.equal(commands.filter((x) => x === 'block/put').length, second.blocks);
  const synced = await local.sync(kuboSource(url), { name: result.name });
  assert.equal(local.cid, c.cid);
  assert.ok(synced.fetchedBlocks <= 3, `${synced.fetchedBlocks} blocks synced`);
  assert.equal(await local.has('n3'), true);
  assert.deepEqual(await local.search(vectors[900], 10), await c.search(vectors[900], 10));
  await local.close();

  // getDag: one dag/export, every block hashed.
  const store = memoryStore();
  const whole = await Collection.create({ dim: 16, store });
  await whole.sync(kuboSource(url), { root: c.cid, car: true, force: true });
  assert.deepEqual(await whole.search(q, 3), await c.search(q, 3));
  whole.free();
  await c.close();
});

test('Kubo errors surface with their message; a hanging node times out', { timeout: 60_000 }, async (t) => {
  const { c } = await folderCollection(t);
  const server = createKuboServer();
  const url = await listen(t, server);
  // An unknown IPNS key: Kubo's 500 {Message} in the error.
  await assert.rejects(c.publish(kuboPublisher(url, { key: 'nope' })),
    (err) => err instanceof StateError && /name\/publish: HTTP 500: no key by the given name was found/.test(err.message));
  // A failing command.
  server.faults.fail = 'pin/add';
  await assert.rejects(c.publish(kuboPublisher(url)), (err) => err instanceof StateError && /pin\/add: HTTP 500: pin\/add failed/.test(err.message));
  server.faults.fail = undefined;
  // Not a Kubo API at all (a 404 page), and the wrong method's 405 text.
  await assert.rejects(c.publish(kuboPublisher(`${url}/nothing`)), (err) => err instanceof StateError && /HTTP 404/.test(err.message));
  // Hanging: the timeout names the command.
  server.faults.hang = 'dag/import';
  await assert.rejects(c.publish(kuboPublisher(url, { timeout: 500 })), (err) => err instanceof StateError && /dag\/import: no answer after 500 ms/.test(err.message));
  server.faults.hang = undefined;
  // Nothing listening.
  await assert.rejects(kuboSource('http://127.0.0.1:9').get(c.cid), StateError);
  // A block the node lacks is missing (undefined), not an error; an unknown name is an error.
  const src = kuboSource(url);
  const absent = await cidOf(new TextEncoder().encode('on no node'));
  assert.equal(await src.get(absent), undefined);
  assert.equal(await src.getDag(absent), undefined);
  await assert.rejects(src.resolve('k51nothing'), (err) => err instanceof StateError && /could not resolve name/.test(err.message));
  // A name that resolves to something that is not a Shoal root.
  server.names.set('k51other', '/ipfs/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG');
  await assert.rejects(src.resolve('k51other'), (err) => err instanceof CorruptDataError && /not a Shoal root/.test(err.message));
  await c.close();
});

test('a lying Kubo node is caught: wrong CID, root, count, pin, tampered block', { timeout: 60_000 }, async (t) => {
  const { c, vectors } = await folderCollection(t);
  const server = createKuboServer();
  const url = await listen(t, server);
  const lies = [
    ['wrongCid', 'blocks', /block\/put of b\w+ answered the CID/],
    ['wrongSize', 'blocks', /answered the size/],
    ['wrongCount', 'car', /dag\/import took \d+ blocks of \d+/],
    ['wrongPin', 'car', /pin\/add of b\w+ answered the pins/],
  ];
  for (const [fault, method, pattern] of lies) {
    server.faults[fault] = true;
    await assert.rejects(c.publish(kuboPublisher(url, { method })), (err) => err instanceof CorruptDataError && pattern.test(err.message), fault);
    server.faults[fault] = false;
  }
  // dag/import's Root lines (Kubo prints them when it pins roots) must name ours.
  server.faults.wrongRoot = true;
  const pinningImport = { fetch: (u, init) => fetch(String(u).replace('pin-roots=false', 'pin-roots=true'), init) };
  await assert.rejects(c.publish(kuboPublisher(url, pinningImport)), (err) => err instanceof CorruptDataError && /answered the root/.test(err.message));
  server.faults.wrongRoot = false;

  await c.publish(kuboPublisher(url));
  // A tampered block: rejected by a lone source; skipped when another has it.
  server.faults.tamper = true;
  await assert.rejects(kuboSource(url).get(c.cid), (err) => err instanceof CorruptDataError && /do not hash/.test(err.message));
  await assert.rejects(Collection.open({ source: kuboSource(url), root: c.cid }), CorruptDataError);
  const honest = createKuboServer();
  const honestUrl = await listen(t, honest);
  await c.publish(kuboPublisher(honestUrl));
  const errors = [];
  const both = anySource([kuboSource(url), kuboSource(honestUrl)], { onError: (s, err) => errors.push(err) });
  const remote = await Collection.open({ source: both, root: c.cid });
  assert.deepEqual(await remote.search(vectors[3], 4), await c.search(vectors[3], 4));
  assert.ok(errors.some((e) => e instanceof CorruptDataError));
  remote.free();
  await c.close();
});

test('shoal-publish --kubo publishes a collection folder', { timeout: 60_000 }, async (t) => {
  const { dir, c, vectors } = await folderCollection(t);
  const server = createKuboServer({ keys: ['self', 'docs'] });
  const url = await listen(t, server);
  const out = await run([dir, '--kubo', url, '--key', 'docs']);
  assert.equal(out.code, 0, out.stderr);
  const root = /^root (\S+)$/m.exec(out.stdout)?.[1];
  const name = /^name (\S+)$/m.exec(out.stdout)?.[1];
  assert.equal(root, c.cid);
  assert.equal(name, server.keyNames.get('docs'));
  const remote = await Collection.open({ source: kuboSource(url), name });
  assert.deepEqual(await remote.search(vectors[1], 3), await c.search(vectors[1], 3));
  remote.free();
  // Block by block, unpinned; usage and node errors have their exit codes.
  const blocks = await run([dir, '--kubo', url, '--blocks', '--no-pin']);
  assert.equal(blocks.code, 0, blocks.stderr);
  assert.doesNotMatch(blocks.stdout, /^name /m);
  assert.equal((await run([dir])).code, 1);
  assert.equal((await run([dir, '--kubo', url, '--seed-file', 'x'])).code, 1);
  const missing = await run([`${dir}-none`, '--kubo', url]);
  assert.equal(missing.code, 2);
  const refused = await run([dir, '--kubo', url, '--key', 'nope']);
  assert.equal(refused.code, 3);
  assert.match(refused.stderr, /no key by the given name was found/);
  await c.close();
});

const REAL = process.env.SHOAL_KUBO_API;
test('a real Kubo node (SHOAL_KUBO_API)', {
  timeout: 300_000,
  skip: !REAL && 'SHOAL_KUBO_API is not set: set it to a Kubo RPC API (e.g. http://127.0.0.1:5001) to publish to and read from a real node; SHOAL_KUBO_KEY also tests IPNS with that key',
}, async (t) => {
  const { c, vectors } = await folderCollection(t);
  const key = process.env.SHOAL_KUBO_KEY;
  const result = await c.publish(kuboPublisher(REAL, { key, method: 'blocks' }));
  assert.equal(result.root, c.cid);
  const again = await c.publish(kuboPublisher(REAL, { pin: true }));
  assert.equal(again.root, c.cid);
  const remote = await Collection.open({ source: kuboSource(REAL, { offline: true }), root: c.cid });
  assert.deepEqual(await remote.search(vectors[2], 5), await c.search(vectors[2], 5));
  remote.free();
  if (key) {
    const named = await Collection.open({ source: kuboSource(REAL, { offline: true }), name: result.name });
    assert.equal(named.cid, c.cid);
    named.free();
  }
  await c.close();
});
