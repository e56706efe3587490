#!/usr/bin/env node
// wasm-ceiling.mjs -- how far an index gets in wasm32's 4 GiB (issue 14).
//
//   node bench/scale/wasm-ceiling.mjs [--dim 384] [--batch 100000] [--kind flat]
//
// Adds batches of random float32 vectors (ids "0", "1", ...) to one index of
// the npm package (wasm SIMD build, in Node) until an add fails, then
// checks that the failure was a clean OutOfMemoryError that left the index
// as it was (same size, a search still finds an existing record exactly).
// Prints one JSON line per batch and a summary: records, raw vector bytes,
// memoryBytes() and the share of 4 GiB that held vectors.
import { Index } from '../../js/node.mjs';

const opts = { dim: 384, batch: 100000, kind: 'flat', max: 0 };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '');
  if (!(key in opts)) throw new Error(`unknown option ${process.argv[i]}`);
  opts[key] = key === 'kind' ? process.argv[i + 1] : Number(process.argv[i + 1]);
}
const { dim, batch, kind } = opts;
const index = await Index.create({ dim, kind });
let state = 0x9e3779b9;
const rand = () => {
  state ^= state << 13; state >>>= 0; state ^= state >>> 17; state ^= state << 5; state >>>= 0;
  return state / 4294967296 - 0.5;
};
const vectors = new Float32Array(batch * dim);
const probe = new Float32Array(dim);
let total = 0, failure = null;
const t0 = performance.now();
while (!opts.max || total < opts.max) {
  for (let i = 0; i < vectors.length; i++) vectors[i] = rand();
  if (total === 0) probe.set(vectors.subarray(0, dim));
  const ids = Array.from({ length: batch }, (_, i) => String(total + i));
  try {
    index.add(ids, vectors);
  } catch (err) {
    failure = err;
    break;
  }
  total += batch;
  console.log(JSON.stringify({ records: total, memoryBytes: index.memoryBytes(), s: +((performance.now() - t0) / 1000).toFixed(1) }));
}
const GiB = 2 ** 30;
const vectorBytes = total * dim * 4;
const summary = {
  kind, dim, batch, records: total, vectorGiB: +(vectorBytes / GiB).toFixed(3),
  memoryGiB: +(index.memoryBytes() / GiB).toFixed(3),
  shareOf4GiB: +(vectorBytes / (4 * GiB)).toFixed(3),
  failure: failure ? `${failure.name}: ${failure.message}` : null,
};
// The failed batch must have changed nothing.
summary.sizeAfterFailure = index.size;
summary.intact = index.size === total;
const hit = index.search(probe, 1);
summary.searchAfterFailure = hit.ids ? hit.ids[0] : hit[0]?.id;
console.log(JSON.stringify(summary));
if (failure && failure.name !== 'OutOfMemoryError') process.exitCode = 1;
if (!summary.intact) process.exitCode = 1;
