// hnswlib-node.mjs -- hnswlib (C++) as a Node native addon (npm hnswlib-node,
// built from source by node-gyp at install: bench/package.json allowScripts).
//
// Mapping: initIndex(n, M=16, efConstruction=200, seed=100), setEf(ef); the
// same M semantics as hnswlib (M upper levels, 2*M level 0).  The addon takes
// only plain JS arrays (a Float32Array is rejected: "must be an Array"), so
// every vector is copied into an Array: inside the build loop (a few
// microseconds per vector, under 1% of an insert) and once per query before
// timing.  Build is single-threaded (addPoint one at a time).  Memory: RSS
// growth only; the addon does not report its footprint.
import { createRequire } from 'node:module';
import { packageVersion, parseArgs, runAdapter } from './common.mjs';

const require = createRequire(import.meta.url);
const { HierarchicalNSW } = require('hnswlib-node');
const version = packageVersion('hnswlib-node');

const args = parseArgs();
let index;
await runAdapter(args, {
  library: 'hnswlib-node', version,
  params: { M: args.M, efConstruction: args.efc, seed: 100 },
  notes: 'Native addon; vectors passed as JS Arrays (the addon rejects typed arrays).',
}, {
  build(base, n, dim) {
    index = new HierarchicalNSW('l2', dim);
    index.initIndex(n, args.M, args.efc, 100);
    for (let i = 0; i < n; i++) index.addPoint(Array.from(base.subarray(i * dim, (i + 1) * dim)), i);
  },
  prepareQuery: (vec) => Array.from(vec),
  setEf(ef) { index.setEf(ef); },
  search: (q, k) => index.searchKnn(q, k),
  toIds: (answer) => answer.neighbors,
});
