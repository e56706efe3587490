// Runtime-neutral entry (the "default" export condition, and what a page or
// script importing js/index.mjs directly gets): picks Node's file reader or
// fetch at first load.  Bundlers resolve the "node"/"browser"/"worker"
// conditions to the dedicated entries instead, so they never see both paths.
import { setWasmCompiler } from './src/load.mjs';

const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';

setWasmCompiler(async (file) => {
  const { compileWasm } = isNode
    ? await import('./src/compile-node.mjs')
    : await import('./src/compile-browser.mjs');
  return compileWasm(file);
});

export { Index, AllowList, wasmInfo } from './src/index.mjs';
export { Collection } from './src/collection.mjs';
export { memoryStore } from './src/stores.mjs';
export { simdSupported, initWasm } from './src/load.mjs';
export * from './dist/errors.mjs';
