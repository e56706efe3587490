// Entry for edge workers (the "workerd" export condition, which wrangler and
// workerd set, and the 'shoal/worker' subpath).  Edge runtimes forbid
// compiling wasm from bytes at request time, but their bundlers and module
// loaders turn `import x from './y.wasm'` into a precompiled
// WebAssembly.Module -- which is exactly what the loader takes.  Both
// variants are bundled: 694 kB + 674 kB raw, 222 kB + 218 kB gzipped (gzip -9,
// version 0.1.0; js/README.md has the current figures).  Only the variant that
// WebAssembly.validate picks is instantiated.
//
// Node, Deno and Bun never load this file: package.json sends 'shoal/worker'
// there to node.mjs (their .wasm imports give a file path, an error or an
// instance, never a module).  A bundler that maps .wasm imports to URLs or
// paths gets a message instead of a late failure; browsers want
// 'shoal/browser'.
import simd from './dist/shoal-simd.wasm';
import base from './dist/shoal-base.wasm';
import { initWasm } from './src/load.mjs';

if (!(simd instanceof WebAssembly.Module) || !(base instanceof WebAssembly.Module))
  throw new TypeError(`shoal/worker: importing a .wasm file gave ${typeof simd === 'string' ? `the string "${simd}"` : typeof simd}, ` +
    "not a WebAssembly.Module: this entry is for edge workers (Cloudflare Workers, workerd). " +
    "In browsers import 'shoal/browser'; in Node, Deno and Bun import 'shoal'; or pass the wasm to initWasm() " +
    "(see the package's README)");
initWasm({ simd, base });

export { Index, AllowList, wasmInfo } from './src/index.mjs';
export { Collection } from './src/collection.mjs';
export { workerCollection } from './src/worker-protocol.mjs';
export { anySource, gatewaySource } from './src/sources.mjs';
export { heliaPublisher, heliaSource } from './src/helia.mjs';
export { kuboPublisher, kuboSource } from './src/kubo.mjs';
export { s5Publisher, s5Source } from './src/s5.mjs';
export { partition, searchShards, shardOf } from './src/shards.mjs';
export { fileStore, indexedDBStore, memoryStore } from './src/stores-web.mjs';
export { simdSupported, initWasm } from './src/load.mjs';
export * from './dist/errors.mjs';
