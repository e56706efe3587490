// Runtime-neutral entry (the "default" export condition, and what a page or
// script importing js/index.mjs directly gets): picks Node's file reader or
// fetch at first load.  Bundlers and runtimes resolve the "workerd", "node"
// and "browser" conditions to the dedicated entries instead, so they never see
// both paths.
//
// The one runtime this entry cannot serve is an edge worker: workerd gives
// modules no import.meta.url and forbids compiling wasm from bytes, so the
// first load says to import 'shoal/worker' rather than failing deep inside
// new URL() with "Invalid URL string".
import { setWasmCompiler } from './src/load.mjs';
import { WORKER_HINT, compileWasm as fetchAndCompile } from './src/compile-browser.mjs';
import { fail } from './src/fail.mjs';
import { UnsupportedError } from './dist/errors.mjs';

const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';
// Cloudflare's runtime (also with nodejs_compat, which defines process).
const isWorkerd = typeof navigator === 'object' && navigator?.userAgent === 'Cloudflare-Workers';

setWasmCompiler(async (file) => {
  if (isWorkerd) throw fail(UnsupportedError, `the default entry of shoal cannot load ${file} here; ${WORKER_HINT}`);
  if (!isNode) return fetchAndCompile(file);
  const { compileWasm } = await import('./src/compile-node.mjs'); // node:fs, loaded only in Node
  return compileWasm(file);
});

export { Index, AllowList, wasmInfo } from './src/index.mjs';
export { Collection } from './src/collection.mjs';
export { workerCollection } from './src/worker-protocol.mjs';
export { anySource, gatewaySource } from './src/sources.mjs';
export { heliaPublisher, heliaSource } from './src/helia.mjs';
export { kuboPublisher, kuboSource } from './src/kubo.mjs';
export { s5Publisher, s5Source } from './src/s5.mjs';
export { partition, searchShards, shardOf } from './src/shards.mjs';
export { fileStore, indexedDBStore, memoryStore } from './src/stores-any.mjs';
export { simdSupported, initWasm } from './src/load.mjs';
export * from './dist/errors.mjs';
