// usearch.mjs -- USearch (C++, SIMD kernels dispatched at run time) as a Node
// native addon; npm ships a prebuilt linux-x64 binary (node-gyp-build picks it).
// npm warns that usearch 2.26 wants Node >= 22; on Node 20 it loads and works.
//
// Mapping: connectivity = M (links on upper levels; connectivity_base, the
// level-0 degree, defaults to 2 * connectivity, as in hnswlib), expansion_add =
// efConstruction, expansion_search = ef, metric l2sq, quantization f32.
// The JS binding fixes expansion_search at construction and has no setter, so
// the built index is saved once to a temporary file (untimed) and, for each
// ef, loaded into a fresh Index created with expansion_search = ef.  Build uses
// add(keys, vectors, threads = 1); search(query, k, threads = 1).
// Memory: RSS growth over the build; lib_mb is the size of the saved index.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageVersion, parseArgs, runAdapter } from './common.mjs';

const require = createRequire(import.meta.url);
const usearch = require('usearch');
const version = packageVersion('usearch');

const args = parseArgs();
const tmp = mkdtempSync(join(tmpdir(), 'usearch-bench-'));
const file = join(tmp, 'index.usearch');
let dim;
let index;
const config = (ef) => ({
  dimensions: dim, metric: 'l2sq', quantization: 'f32',
  connectivity: args.M, expansion_add: args.efc, expansion_search: ef,
});
try {
  await runAdapter(args, {
    library: 'usearch', version,
    params: { connectivity: args.M, connectivity_base: 2 * args.M, expansion_add: args.efc, threads: 1 },
    notes: 'expansion_search is fixed per Index in the JS binding: the index is saved once and reloaded per ef.',
  }, {
    build(base, n, d) {
      dim = d;
      index = new usearch.Index(config(64));
      const keys = new BigUint64Array(n);
      for (let i = 0; i < n; i++) keys[i] = BigInt(i);
      index.add(keys, base, 1);
    },
    afterBuild() {
      index.save(file);
      return { libBytes: statSync(file).size, notes: 'lib_mb = size of the saved index file.' };
    },
    prepareQuery: (vec) => Float32Array.from(vec),
    setEf(ef) {
      index = new usearch.Index(config(ef));
      index.load(file);
    },
    search: (q, k) => index.search(q, k, 1),
    toIds: (answer) => Array.from(answer.keys, Number),
  });
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
