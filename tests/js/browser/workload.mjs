// The same deterministic work, run in Node and in Chromium by browser.test.mjs:
// both must produce identical results from the same wasm.
import { randomVectors, idsFor } from '../reference.mjs';

/** Plain, JSON-safe results of flat searches for every metric and both variants. */
export async function runWorkload({ Index, wasmInfo, simdSupported }) {
  const dim = 24, n = 2000, k = 10;
  const vectors = randomVectors(n, dim, 4242);
  const queries = randomVectors(5, dim, 4343);
  const out = { simdSupported: simdSupported(), variants: [] };
  for (const simd of [true, false]) {
    const info = await wasmInfo({ simd });
    const runs = [];
    for (const metric of ['l2', 'ip', 'cosine']) {
      const index = await Index.create({ dim, metric, simd });
      try {
        index.add(idsFor(n), vectors);
        index.delete(['v0', 'v7', 'v1999']);
        index.add(['v7', 'ünï'], vectors.subarray(0, 2 * dim));
        const results = [];
        for (let q = 0; q < 5; q++) {
          const r = index.search(queries.subarray(q * dim, (q + 1) * dim), k);
          results.push({ ids: r.ids, distances: [...r.distances] });
        }
        runs.push({ metric, simd: index.simd, size: index.size, results });
      } finally {
        index.free();
      }
    }
    out.variants.push({ info, runs });
  }
  return out;
}
