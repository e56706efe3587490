// Entry for edge workers (the "worker" export condition: Cloudflare Workers /
// wrangler, and runtimes like it).  They forbid compiling wasm from bytes at
// request time, but their bundlers turn `import x from './y.wasm'` into a
// precompiled WebAssembly.Module -- which is exactly what the loader takes.
// Both variants are bundled (about 60 kB together); the loader picks one with
// WebAssembly.validate like everywhere else.
//
// In a runtime without such .wasm imports, import 'shoal/browser' instead, or
// compile the modules yourself and call initWasm({ simd, base }).
import simd from './dist/shoal-simd.wasm';
import base from './dist/shoal-base.wasm';
import { initWasm } from './src/load.mjs';

initWasm({ simd, base });

export { Index, AllowList, wasmInfo } from './src/index.mjs';
export { Collection } from './src/collection.mjs';
export { fileStore, indexedDBStore, memoryStore } from './src/stores-web.mjs';
export { simdSupported, initWasm } from './src/load.mjs';
export * from './dist/errors.mjs';
