// hnswlib-wasm.mjs -- hnswlib compiled by Emscripten for browsers (npm
// hnswlib-wasm).  Its wasm has no SIMD128 instructions (checked with wasm2wat),
// so its distances are scalar.
//
// Running it in Node: the glue is built for the web only and refuses to start
// without `window`, so globalThis.window is shimmed.  The package's
// loadHnswlib() then mounts IDBFS, which aborts without IndexedDB; we skip it
// and call the Emscripten factory (the hashed dist/hnswlib-*.js chunk the
// loader imports) directly: nothing here saves to disk.
//
// Mapping: initIndex(n, M=16, efConstruction=200, seed=100), setEfSearch(ef),
// as hnswlib.  Build: addPoints(Float32Array views, labels) in batches of
// 1,000, single-threaded (wasm, no threads).  Memory: RSS growth, and lib_mb =
// growth of the module's linear memory (what the wasm heap grew to hold the
// index and one batch; free space inside it included).
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs, runAdapter } from './common.mjs';

globalThis.window ??= globalThis;
const require = createRequire(import.meta.url);
const pkgJson = require.resolve('hnswlib-wasm/package.json');
const { version } = require(pkgJson);
const dist = join(dirname(pkgJson), 'dist');
const chunk = readdirSync(dist).find((f) => /^hnswlib-[0-9a-f]+\.js$/.test(f));
if (!chunk) throw new Error(`hnswlib-wasm: no Emscripten chunk (hnswlib-<hash>.js) in ${dist}`);
const factory = (await import(pathToFileURL(join(dist, chunk)))).default;
const lib = await factory();

const args = parseArgs();
const BATCH = 1000;
let index;
let heapBefore = 0;
await runAdapter(args, {
  library: 'hnswlib-wasm', version,
  params: { M: args.M, efConstruction: args.efc, seed: 100 },
  notes: 'Emscripten build without SIMD128; window shimmed, IDBFS not mounted.',
}, {
  build(base, n, dim) {
    heapBefore = lib.HEAP8.buffer.byteLength;
    index = new lib.HierarchicalNSW('l2', dim, '');
    index.initIndex(n, args.M, args.efc, 100);
    // Batches of 1,000: addPoints copies its input onto the wasm heap, which
    // never shrinks, so one call with every vector would add the whole data
    // set to the memory figure.
    for (let start = 0; start < n; start += BATCH) {
      const end = Math.min(n, start + BATCH);
      const items = [];
      const labels = [];
      for (let i = start; i < end; i++) {
        items.push(base.subarray(i * dim, (i + 1) * dim));
        labels.push(i);
      }
      index.addPoints(items, labels, false);
    }
    return { libBytes: lib.HEAP8.buffer.byteLength - heapBefore, notes: 'lib_mb = wasm memory growth.' };
  },
  prepareQuery: (vec) => Float32Array.from(vec),
  setEf(ef) { index.setEfSearch(ef); },
  search: (q, k) => index.searchKnn(q, k, undefined),
  toIds: (answer) => answer.neighbors,
});
