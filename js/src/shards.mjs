// shards.mjs -- a collection split over several collections ("shards"),
// each published and synced on its own (different nodes may hold different
// shards), searched together.
//
// Partitioning is by id: shardOf(id, n) = FNV-1a (32-bit) of the id's UTF-8
// bytes, modulo n -- stable, the same in every runtime, and computable by
// any publisher.  A search asks every shard for k results and merges them by
// distance; should an id turn up in two shards (a record moved between
// shardings), the version with the later time wins, and without times the
// shard later in the list.

import { ParameterError } from '../dist/errors.mjs';
import { fail } from './fail.mjs';

const encoder = new TextEncoder();

/** The shard (0..n-1) an id belongs to. */
export function shardOf(id, n) {
  if (typeof id !== 'string') throw new TypeError('ids are strings');
  if (!Number.isInteger(n) || n < 1) throw fail(ParameterError, `shard count must be a positive integer, not ${n}`);
  let h = 0x811c9dc5;
  for (const b of encoder.encode(id)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h % n;
}

/** records split into n arrays by shardOf(record.id, n). */
export function partition(records, n) {
  const out = Array.from({ length: n }, () => []);
  for (const r of records) out[shardOf(r.id, n)].push(r);
  return out;
}

/**
 * The k nearest records across shards (Collection objects, or anything with
 * search and get): { ids, distances, metadata, shards } -- shards[i] the
 * index of the shard ids[i] came from.  options as Collection.search.
 */
export async function searchShards(shards, query, k, options = {}) {
  if (!Array.isArray(shards) || shards.length === 0) throw fail(ParameterError, 'searchShards needs at least one shard');
  const results = await Promise.all(shards.map((s) => s.search(query, k, options)));
  const all = [];
  results.forEach((r, shard) => r.ids.forEach((id, i) =>
    all.push({ id, distance: r.distances[i], metadata: r.metadata[i], shard })));
  all.sort((a, b) => a.distance - b.distance || a.shard - b.shard);
  // One version per id: the newest (by time; else the later shard).
  const byId = new Map();
  for (const hit of all) (byId.get(hit.id) ?? byId.set(hit.id, []).get(hit.id)).push(hit);
  const keep = new Set();
  for (const [id, hits] of byId) {
    if (hits.length === 1) {
      keep.add(hits[0]);
      continue;
    }
    let best = hits[0], bestTime = (await shards[best.shard].get(id))?.time ?? -Infinity;
    for (const h of hits.slice(1)) {
      const t = (await shards[h.shard].get(id))?.time ?? -Infinity;
      if (t > bestTime || (t === bestTime && h.shard > best.shard)) {
        best = h;
        bestTime = t;
      }
    }
    keep.add(best);
  }
  const out = all.filter((h) => keep.has(h)).slice(0, k);
  return {
    ids: out.map((h) => h.id),
    distances: Float32Array.from(out.map((h) => h.distance)),
    metadata: out.map((h) => h.metadata),
    shards: out.map((h) => h.shard),
  };
}
