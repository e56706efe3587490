// edgevec.mjs -- EdgeVec (Rust compiled to wasm by wasm-bindgen; npm edgevec).
// Its wasm has no SIMD128 instructions (checked with wasm2wat).
//
// Mapping: EdgeVecConfig m = M (upper levels), m0 = 2*M (level 0, set
// explicitly), ef_construction = efConstruction, metric 'l2' (squared L2
// scores).  Cosine is avoided: it returned wrong neighbours here.
// ef is fixed at construction: EdgeVecConfig.ef_search is read when the index
// is built and there is no setter on the index (searchFiltered's efSearch
// option changed nothing in a test); so one index is built per ef.  That is
// costly at full size, so the runner gives edgevec its own, shorter ef list
// (--efs), and the build time reported is that of the first index.
// Build: insertBatchFlat in batches of 1,000 rows, single-threaded.
// Memory: RSS growth of the first build and lib_mb = edgevec's memoryUsage().
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { packageVersion, parseArgs, runAdapter } from './common.mjs';

const require = createRequire(import.meta.url);
const version = packageVersion('edgevec');
const edgevec = await import('edgevec');
edgevec.initSync({ module: readFileSync(require.resolve('edgevec/edgevec_bg.wasm')) });

const args = parseArgs();
let base;
let dim;
let index;
let builtEf = 0;
let firstId = 0;
let rebuildSeconds = 0;

function buildIndex(ef) {
  const config = new edgevec.EdgeVecConfig(dim);
  config.metric = 'l2';
  config.m = args.M;
  config.m0 = 2 * args.M;
  config.ef_construction = args.efc;
  config.ef_search = ef;
  index?.free();
  index = new edgevec.EdgeVec(config);
  // Batches of 1,000 rows: wasm-bindgen copies the argument into wasm memory,
  // which never shrinks; one call with all rows would inflate RSS by the data set.
  const n = base.length / dim;
  for (let start = 0; start < n; start += 1000) {
    const end = Math.min(n, start + 1000);
    const ids = index.insertBatchFlat(base.subarray(start * dim, end * dim), end - start);
    if (start === 0) firstId = ids[0];
    if (ids[0] !== firstId + start || ids[ids.length - 1] !== firstId + end - 1)
      throw new Error('edgevec: ids are not consecutive');
  }
  builtEf = ef;
}

await runAdapter(args, {
  library: 'edgevec', version,
  params: { m: args.M, m0: 2 * args.M, ef_construction: args.efc, ef_search: 'fixed per build' },
  notes: 'ef fixed at construction: one index built per ef; build time and memory are the first build\'s.',
}, {
  build(data, n, d) {
    base = data;
    dim = d;
    buildIndex(args.efs[0]);
    return { libBytes: index.memoryUsage() };
  },
  prepareQuery: (vec) => Float32Array.from(vec),
  setEf(ef) {
    if (ef === builtEf) return undefined;
    const t0 = process.hrtime.bigint();
    buildIndex(ef);
    rebuildSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return { extra: { build_s_this_ef: +rebuildSeconds.toFixed(3) } };
  },
  search: (q, k) => index.search(q, k),
  toIds: (answer) => answer.map((r) => r.id - firstId),
});
