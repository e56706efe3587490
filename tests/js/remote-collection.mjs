// remote-collection.mjs -- what the Kubo and S5 tests share: a collection
// folder written by fileStore (an IVF-PQ segment and a small HNSW one, so a
// lazy open fetches lists on demand), loopback listening, temp folders.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { Collection, fileStore } from '../../js/node.mjs';
import { TestRng } from './data.mjs';

export const DIM = 16;

export async function tempDir(t, prefix = 'shoal-remote-') {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Listens on 127.0.0.1 (a free port); closed after the test. Resolves to the URL. */
export function listen(t, server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    t.after(() => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }));
    resolve(`http://127.0.0.1:${server.address().port}`);
  }));
}

export function clustered(rng, n, centers = 12) {
  const c = Array.from({ length: centers }, () => rng.fill(new Float32Array(DIM)));
  return Array.from({ length: n }, () => {
    const base = c[rng.below(centers)];
    return Float32Array.from(base, (x) => x + 0.05 * rng.float());
  });
}

/** A 3,000-record IVF-PQ segment and a 200-record HNSW one in a folder. */
export async function folderCollection(t) {
  const dir = await tempDir(t);
  const rng = new TestRng(23);
  const vectors = clustered(rng, 3200);
  const c = await Collection.create({
    dim: DIM, store: await fileStore(dir), largeFrom: 3000, flushRecords: 3000,
    large: { nlist: 16, nprobe: 3, pqM: 4 },
  });
  await c.upsert(vectors.slice(0, 3000).map((v, i) => ({ id: `v${i}`, vector: v, metadata: { i } })));
  await c.upsert(vectors.slice(3000).map((v, i) => ({ id: `v${3000 + i}`, vector: v })));
  await c.flush();
  return { dir, c, vectors };
}

/** Adds 1% more records and flushes: a second version. */
export async function addRecords(c, seed = 99, n = 32) {
  const rng = new TestRng(seed);
  await c.upsert(clustered(rng, n, 2).map((v, i) => ({ id: `n${i}`, vector: v })));
  await c.flush();
}
