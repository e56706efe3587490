// stores.test.mjs -- collections that persist: the file store on real files.
//   - reopening gives exactly what was committed plus the acknowledged log;
//   - the folder is the CLI's layout (root, blocks/<cid>, log), each block
//     file hashing to its name;
//   - a child process killed with SIGKILL at random moments of upsert /
//     delete / flush / compact cycles loses no acknowledged write and
//     leaves nothing corrupt (SHOAL_CRASH_RUNS kills; make test-crash runs
//     many more);
//   - one writer per folder (a lock, taken over from a killed process);
//   - a tampered block is refused; a full disk (a tiny tmpfs) is a
//     StorageFullError with the previous state intact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';

import {
  Collection, CorruptDataError, StateError, StorageFullError, fileStore,
} from '../../js/node.mjs';
import { TestRng } from './data.mjs';
import { DIM, vectorOf } from './crash-child.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

async function tempDir(t) {
  const dir = await mkdtemp(path.join(tmpdir(), 'shoal-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function batch(rng, n, prefix = 'r') {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${i}`, vector: rng.fill(new Float32Array(DIM)), metadata: { i },
  }));
}

test('a file store reopens what was committed and what the log acknowledged', async (t) => {
  const dir = await tempDir(t);
  const rng = new TestRng(1);
  const c = await Collection.create({ dim: DIM, store: await fileStore(dir), flushRecords: 100 });
  await c.upsert(batch(rng, 250)); // flushed: 250 >= 100
  await c.upsert(batch(rng, 30, 'late')); // in the log only
  await c.delete(['r3']);
  const query = rng.fill(new Float32Array(DIM));
  const before = await c.search(query, 10);
  const size = c.size;
  await c.close();

  const names = await readdir(dir);
  assert.deepEqual(names.sort(), ['blocks', 'log', 'root']);
  const root = (await readFile(path.join(dir, 'root'), 'utf8')).trim();
  for (const name of await readdir(path.join(dir, 'blocks'))) {
    const bytes = await readFile(path.join(dir, 'blocks', name));
    const cid = CID.parse(name);
    assert.deepEqual((await sha256.digest(bytes)).bytes, cid.multihash.bytes, `${name} hashes to its name`);
  }
  assert.ok((await readFile(path.join(dir, 'log'))).length > 30 * DIM * 4);

  const d = await Collection.open({ store: await fileStore(dir) });
  assert.equal(d.cid, root);
  assert.equal(d.size, size);
  assert.deepEqual(await d.search(query, 10), before);
  assert.equal(await d.has('r3'), false);
  assert.equal(await d.has('late29'), true);
  await d.flush();
  assert.equal((await readFile(path.join(dir, 'log'))).length, 0, 'a flush empties the log');
  await d.close();
});

test('one writer per folder; a dead writer\'s lock is taken over', async (t) => {
  const dir = await tempDir(t);
  const c = await Collection.create({ dim: DIM, store: await fileStore(dir) });
  await assert.rejects(fileStore(dir), StateError);
  await c.close();
  const again = await fileStore(dir);
  await again.close();
  // A lock left by a process that no longer exists.
  const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid;
  await writeFile(path.join(dir, 'lock'), `${dead}\n`);
  const taken = await fileStore(dir);
  await taken.close();
});

test('a tampered block is refused when opening', async (t) => {
  const dir = await tempDir(t);
  const c = await Collection.create({ dim: DIM, store: await fileStore(dir), flushRecords: 50 });
  await c.upsert(batch(new TestRng(2), 60));
  await c.close();
  const blocks = await readdir(path.join(dir, 'blocks'));
  const raw = blocks.filter((b) => b.startsWith('bafkrei'));
  const victim = path.join(dir, 'blocks', raw[0]);
  const bytes = await readFile(victim);
  bytes[bytes.length >> 1] ^= 1;
  await writeFile(victim, bytes);
  await assert.rejects(Collection.open({ store: await fileStore(dir, { lock: false }) }), CorruptDataError);
});

// ------------------------------------------------------------------- crashes

/** Runs the child until it has printed `after` acknowledgements, then kills it. */
function runAndKill(dir, seed, after, cycles = 200) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, 'crash-child.mjs'), dir, String(seed), String(cycles)],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked = [];
    let buffer = '', stderr = '', killed = false;
    child.stdout.on('data', (chunk) => {
      buffer += chunk;
      let at;
      while ((at = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 1);
        acked.push(line);
        if (!killed && acked.length >= after) {
          killed = true;
          child.kill('SIGKILL');
        }
      }
    });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ acked, code, signal, stderr }));
  });
}

/** A write announced by the child: id -> seed (null: deleted), later of equal ids winning. */
function parseTry(line) {
  const words = line.split(' ');
  const write = new Map();
  if (words[1] === 'del') write.set(words[2], null);
  else for (let i = 2; i < words.length; i += 2) write.set(words[i], Number(words[i + 1]));
  return write;
}

function same(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// state: id -> seed (null: deleted) acknowledged; pending: the write in
// flight when the child died (whole or not at all), or null.
async function checkSurvivors(dir, state, pending) {
  const store = await fileStore(dir);
  const c = await Collection.open({ store });
  try {
    // The write in flight is all there or not at all.
    let inFlight = null;
    if (pending) {
      const applied = [];
      for (const [id, seed] of pending) {
        const got = await c.get(id);
        applied.push(seed === null ? got === undefined : got !== undefined && same(got.vector, vectorOf(seed)));
      }
      const before = [];
      for (const [id] of pending) {
        const got = await c.get(id);
        const seed = state.get(id);
        before.push(seed === undefined || seed === null ? got === undefined : got !== undefined && same(got.vector, vectorOf(seed)));
      }
      assert.ok(applied.every(Boolean) || before.every(Boolean), 'the write in flight is whole or absent');
      inFlight = applied.every(Boolean) ? pending : null;
    }
    for (const [id, seed] of state) {
      if (inFlight?.has(id)) continue;
      const got = await c.get(id);
      if (seed === null) {
        assert.equal(got, undefined, `${id} was deleted`);
      } else {
        assert.ok(got, `acknowledged ${id} survived`);
        assert.deepEqual(got.vector, vectorOf(seed), `${id} holds its last acknowledged vector`);
      }
    }
    // Nothing else is damaged: every record reads back and searching works.
    let n = 0;
    for await (const id of c) {
      assert.ok(await c.get(id));
      n++;
    }
    assert.equal(n, c.size);
    await c.search(vectorOf(1), 5);
  } finally {
    await c.close();
  }
}

// Each run is two lives, so two kills; about 0.7 s a run here, and the
// timeout grows with the runs asked for (make test-crash SHOAL_CRASH_RUNS=1000).
const crashRuns = Number(process.env.SHOAL_CRASH_RUNS ?? 6);
test('SIGKILL at random points loses no acknowledged write', { timeout: Math.max(600_000, crashRuns * 5_000) }, async (t) => {
  const runs = crashRuns;
  const rng = new TestRng(77);
  let kills = 0, inFlight = 0;
  for (let run = 0; run < runs; run++) {
    const dir = await tempDir(t);
    const state = new Map(); // id -> seed (null: deleted), what was acknowledged
    // Two lives: killed, reopened (which replays and may flush), killed
    // again; each life is checked.
    for (let life = 0; life < 2; life++) {
      const after = 5 + rng.below(300);
      const { acked, signal, stderr } = await runAndKill(dir, 1000 * run + life, after);
      assert.ok(acked[0] === 'ready', `child started: ${stderr}`);
      let pending = null;
      for (const line of acked) {
        if (line.startsWith('try ')) pending = parseTry(line);
        else if (line === 'ok') {
          for (const [id, seed] of pending) state.set(id, seed);
          pending = null;
        }
      }
      assert.ok(signal === 'SIGKILL' || acked.includes('done'), `killed or finished: ${stderr}`);
      kills += signal === 'SIGKILL';
      inFlight += pending !== null;
      await checkSurvivors(dir, state, pending);
      // What the reopen found of the write in flight is now the state.
      if (pending) {
        const store = await fileStore(dir);
        const c = await Collection.open({ store });
        for (const [id] of pending) {
          const got = await c.get(id);
          state.set(id, got ? Number(got.metadata.seed) : null);
        }
        await c.close();
      }
    }
  }
  t.diagnostic(`${kills} SIGKILLs, ${inFlight} with a write in flight; every reopen checked`);
});

// ---------------------------------------------------------------- full disk

test('a full disk is a StorageFullError and the previous state stays', { timeout: 120_000 }, async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('mounting a small tmpfs needs root');
    return;
  }
  const mnt = await mkdtemp(path.join(tmpdir(), 'shoal-full-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
  if (mounted.status !== 0) {
    t.skip(`cannot mount a tmpfs here: ${mounted.stderr}`);
    await rm(mnt, { recursive: true, force: true });
    return;
  }
  t.after(async () => {
    spawnSync('umount', [mnt]);
    await rm(mnt, { recursive: true, force: true });
  });
  const dir = path.join(mnt, 'c');
  await mkdir(dir);
  const rng = new TestRng(3);
  const c = await Collection.create({ dim: 64, store: await fileStore(dir), flushRecords: 400 });
  const acked = new Map();
  let failure;
  for (let i = 0; i < 200 && !failure; i++) {
    const rows = Array.from({ length: 100 }, (_, j) => ({ id: `f${i}-${j}`, vector: rng.fill(new Float32Array(64)) }));
    try {
      await c.upsert(rows);
      for (const r of rows) acked.set(r.id, r.vector);
    } catch (err) {
      failure = err;
    }
  }
  assert.ok(failure instanceof StorageFullError, `got ${failure?.name}: ${failure?.message}`);
  // The collection keeps answering, and a reopen sees every acknowledged write.
  await c.search(rng.fill(new Float32Array(64)), 3);
  const full = c.store;
  c.free();
  await full.close();
  const store = await fileStore(dir);
  const d = await Collection.open({ store });
  for (const [id, vector] of acked) assert.deepEqual((await d.get(id))?.vector, vector, `${id} kept`);
  await d.close();
});
