// Entry for Node (the "node" export condition): wasm read from dist/ on disk.
import { setWasmCompiler } from './src/load.mjs';
import { compileWasm } from './src/compile-node.mjs';

setWasmCompiler(compileWasm);

export { Index, AllowList, wasmInfo } from './src/index.mjs';
export { Collection } from './src/collection.mjs';
export { workerCollection } from './src/worker-protocol.mjs';
export { anySource, gatewaySource } from './src/sources.mjs';
export { heliaPublisher, heliaSource } from './src/helia.mjs';
export { kuboPublisher, kuboSource } from './src/kubo.mjs';
export { s5Publisher, s5Source } from './src/s5.mjs';
export { partition, searchShards, shardOf } from './src/shards.mjs';
export { createGatewayServer } from './src/gateway-server.mjs';
export { fileStore, indexedDBStore, memoryStore } from './src/stores-node.mjs';
export { simdSupported, initWasm } from './src/load.mjs';
export * from './dist/errors.mjs';
