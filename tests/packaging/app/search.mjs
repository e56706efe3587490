// The search every packaging project runs, whatever bundled or loaded it: a
// tiny exact index and a collection over the same three records, searched
// for one query whose distances are exact in float32.  The driver compares
// the returned object with EXPECTED (packaging.test.mjs).
//
//   a = (0, 0, 0)   b = (1, 0, 0)   c = (0, 2, 0)     query (0, 0.5, 0), l2
//   -> ids a, b, c at squared distances 0.25, 1.25, 2.25
export const RECORDS = [
  { id: 'a', vector: [0, 0, 0] },
  { id: 'b', vector: [1, 0, 0] },
  { id: 'c', vector: [0, 2, 0] },
];
export const QUERY = [0, 0.5, 0];

/** shoal: the namespace of whichever entry the project imported. */
export async function runSearch(shoal) {
  const { Index, Collection } = shoal;
  const out = {};

  const index = await Index.create({ dim: 3, metric: 'l2' });
  try {
    index.add(RECORDS.map((r) => r.id), new Float32Array(RECORDS.flatMap((r) => r.vector)));
    const r = index.search(new Float32Array(QUERY), 3);
    out.index = { ids: r.ids, distances: [...r.distances] };
    out.simd = index.simd;
    // Through a segment too: save, load (verifies every byte), search.
    const loaded = await Index.load(index.save());
    const l = loaded.search(new Float32Array(QUERY), 3);
    out.loaded = { ids: l.ids, distances: [...l.distances] };
    loaded.free();
  } finally {
    index.free();
  }

  // Collection.create with its default store (in memory).
  const docs = await Collection.create({ dim: 3, metric: 'l2' });
  try {
    await docs.upsert(RECORDS);
    const c = await docs.search(QUERY, 3);
    out.collection = { ids: c.ids, distances: [...c.distances] };
    await docs.flush(); // now from a segment rather than the buffer
    const f = await docs.search(QUERY, 3);
    out.flushed = { ids: f.ids, distances: [...f.distances] };
    out.cid = docs.cid;
  } finally {
    await docs.close();
  }
  return out;
}

const HIT = { ids: ['a', 'b', 'c'], distances: [0.25, 1.25, 2.25] };
/** What runSearch returns everywhere (simd: whatever the runtime supports, cid: any CIDv1). */
export const EXPECTED = { index: HIT, loaded: HIT, collection: HIT, flushed: HIT };
