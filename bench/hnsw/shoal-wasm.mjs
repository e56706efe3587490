// shoal-wasm.mjs -- Shoal's npm package (js/index.mjs: the C core compiled by
// Emscripten) in Node, SIMD128 build (--variant simd) or the baseline scalar
// build (--variant base).  Needs `make wasm` first.
//
// --kind hnsw | flat.  HNSW options per the JS API: { kind: 'hnsw', M,
// efConstruction, quantizer } and search(q, k, { ef }); flat is exact (recall
// 1.0 at every "ef") and serves to prove the pipeline until HNSW is exposed
// in the JS package.  The kind-specific bits are the two functions below.
// --quantizer f32 | sq8 (HNSW only).  --rerank N (sq8): keep float32 copies and
// re-score the N best of the ef candidates (N >= every ef: all of them).
// --rows external (sq8 with --rerank): after the build, save the index to a
// file in --neighbors, free it and Index.open the file through a function
// over fs.readSync, so that the copies stay in the file; searches are
// searchAsync, reading their candidates' rows (lib_mb: the opened index).
//
// Ids: the public API takes string ids, so row i gets id String(i), and
// search() returns strings (turned back into numbers after timing).  Each
// query pays the API's real costs: copying the query into the wasm heap and
// decoding result ids.  Build: add() in batches of 1,000 (single-threaded).
// Memory: RSS growth, and lib_mb = index.memoryBytes() (what the core
// allocated for the index).
import { closeSync, mkdirSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Index, wasmInfo } from '../../js/index.mjs';
import { parseArgs, runAdapter } from './common.mjs';

const argv = process.argv.slice(2);
const take = (name, fallback) => {
  const at = argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const [, value] = argv.splice(at, 2);
  return value;
};
const kind = take('kind', 'hnsw');
const quantizer = take('quantizer', 'f32');
const rerank = Number(take('rerank', '0'));
const external = take('rows', 'resident') === 'external';
if (external && !(kind === 'hnsw' && quantizer === 'sq8' && rerank)) throw new Error('--rows external needs --quantizer sq8 --rerank N');
const args = parseArgs(argv);
const simd = args.variant !== 'base';

const createOptions = (dim) => (kind === 'hnsw'
  ? { dim, metric: 'l2', kind, simd, M: args.M, efConstruction: args.efc, quantizer, ...(rerank ? { rerank } : {}) }
  : { dim, metric: 'l2', kind, simd });
const searchOptions = (ef) => (kind === 'hnsw' ? { ef } : {});

const info = await wasmInfo({ simd });
let index;
let options = {};
await runAdapter(args, {
  library: 'shoal-wasm',
  // "-rerank" is the benchmarks' depth, 32; another depth is named.
  variant: `${info.variant}-${kind}${kind === 'hnsw' ? `-${quantizer}` : ''}${rerank ? (rerank === 32 ? '-rerank' : `-rerank${rerank}`) : ''}${external ? '-ext' : ''}`,
  version: info.version,
  params: kind === 'hnsw' ? { M: args.M, efConstruction: args.efc, quantizer, rerank } : { kind },
  notes: `js/index.mjs, ${info.kernels} kernels.` + (kind === 'flat' ? ' FLAT (exact): pipeline check, not HNSW.' : ''),
}, {
  async build(base, n, dim) {
    index = await Index.create(createOptions(dim));
    const batch = 1000;
    for (let start = 0; start < n; start += batch) {
      const end = Math.min(n, start + batch);
      const ids = Array.from({ length: end - start }, (_, j) => String(start + j));
      index.add(ids, base.subarray(start * dim, end * dim));
    }
    return { libBytes: index.memoryBytes() };
  },
  ...(external ? {
    async afterBuild() {
      mkdirSync(args.neighbors, { recursive: true });
      const file = join(args.neighbors, `shoal-wasm-${process.pid}.seg`);
      writeFileSync(file, index.save());
      index.free();
      const fd = openSync(file, 'r');
      process.on('exit', () => { closeSync(fd); rmSync(file, { force: true }); });
      index = await Index.open((offset, length) => {
        const bytes = new Uint8Array(length);
        readSync(fd, bytes, 0, length, offset);
        return bytes;
      }, { simd, rows: 'external' });
      return {
        libBytes: index.memoryBytes(),
        notes: `Rows external: Index.open over fs.readSync read ${(index.reads.bytes / 2 ** 20).toFixed(1)} MB at open; ` +
          'searchAsync reads each search\'s candidate rows; rss_delta_mb is the build\'s.',
      };
    },
    searchAsync: (q, k) => index.searchAsync(q, k, options),
  } : {}),
  prepareQuery: (vec) => Float32Array.from(vec),
  setEf(ef) { options = searchOptions(ef); },
  search: (q, k) => index.search(q, k, options),
  toIds: (answer) => answer.ids.map(Number),
});
