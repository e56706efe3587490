// Helpers shared by the JS tests: deterministic data and a brute-force
// reference computed in float64, independent of the wasm kernels.
import { TestRng } from './data.mjs';

/** n*dim floats uniform in [-1, 1), the same bits as tests/harness.h makes. */
export function randomVectors(n, dim, seed) {
  return new TestRng(seed).fill(new Float32Array(n * dim));
}

/** n*dim small integers in [-4, 4]: float32 l2/ip on these are exact, so ties are exact too. */
export function integerVectors(n, dim, seed) {
  const rng = new TestRng(seed);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < out.length; i++) out[i] = Math.min(4, Math.floor((rng.float() + 1) * 4.5) - 4);
  return out;
}

/**
 * n*dim points around `clusters` random centres (centre i % clusters, plus
 * spread * uniform noise): structure approximate indexes must navigate.
 */
export function clustered(n, dim, seed, { clusters = 20, spread = 0.25 } = {}) {
  const rng = new TestRng(seed);
  const centres = rng.fill(new Float32Array(clusters * dim));
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = i % clusters;
    for (let j = 0; j < dim; j++) out[i * dim + j] = centres[c * dim + j] + spread * rng.float();
  }
  return out;
}

/** Fraction of the exact results' ids that the approximate results found. */
export function recall(approx, exact) {
  let hits = 0;
  for (let q = 0; q < exact.length; q++) {
    const want = new Set(exact[q].ids);
    hits += approx[q].ids.filter((id) => want.has(id)).length;
  }
  return hits / exact.reduce((sum, r) => sum + r.ids.length, 0);
}

export const idsFor = (n, prefix = 'v') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

function dot(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Exact distance in float64, with the scale its float32 rounding error is relative to. */
export function distance(metric, a, b) {
  if (metric === 'l2') {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
    return { d: s, scale: Math.max(s, 1e-6) };
  }
  const norms = Math.sqrt(dot(a, a) * dot(b, b));
  if (metric === 'ip') return { d: -dot(a, b), scale: Math.max(norms, 1e-6) };
  return { d: 1 - dot(a, b) / norms, scale: 1 };
}

/**
 * Records in insertion order (an upsert moves an id to the end, as in the
 * core), searched by brute force.  Sorting is stable, so equal distances
 * keep insertion order -- the core's documented tie-break.
 */
export class Reference {
  constructor(dim, metric) {
    this.dim = dim;
    this.metric = metric;
    this.records = new Map();
  }
  add(ids, vectors) {
    ids.forEach((id, i) => {
      this.records.delete(id);
      this.records.set(id, vectors.slice(i * this.dim, (i + 1) * this.dim));
    });
  }
  delete(ids) {
    return ids.filter((id) => this.records.delete(id)).length;
  }
  /** All records ranked: [{ id, d, scale }]. */
  rank(query) {
    return [...this.records]
      .map(([id, v]) => ({ id, ...distance(this.metric, query, v) }))
      .sort((x, y) => x.d - y.d);
  }
}

/**
 * Asserts a search result matches the reference: for each rank, the returned
 * id's exact distance equals the reference's distance at that rank and the
 * returned distance equals it, both within 1e-4 of the error scale.  Where
 * exact distances are not within that tolerance of each other the ids must
 * be identical, so only genuine near-ties may swap.  Returns how many ranks
 * matched the reference id exactly.
 */
export function assertMatchesReference(assert, result, ref, query, k, tol = 1e-4) {
  const ranked = ref.rank(query);
  const want = ranked.slice(0, k);
  assert.equal(result.ids.length, want.length, 'result count');
  assert.equal(result.distances.length, want.length, 'distance count');
  assert.equal(new Set(result.ids).size, result.ids.length, 'ids are distinct');
  const byId = new Map(ranked.map((r) => [r.id, r]));
  let exact = 0;
  for (let i = 0; i < want.length; i++) {
    const got = byId.get(result.ids[i]);
    assert.ok(got, `rank ${i}: ${result.ids[i]} is not a live record`);
    const slack = tol * Math.max(got.scale, want[i].scale);
    assert.ok(Math.abs(got.d - want[i].d) <= slack,
      `rank ${i}: got ${result.ids[i]} at ${got.d}, reference ${want[i].id} at ${want[i].d}`);
    assert.ok(Math.abs(result.distances[i] - got.d) <= slack,
      `rank ${i}: distance ${result.distances[i]} vs exact ${got.d}`);
    if (got.id === want[i].id) exact++;
  }
  return exact;
}
