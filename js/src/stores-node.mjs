// stores-node.mjs -- the stores of the Node entry: memory, files, and
// IndexedDB where a global indexedDB exists (e.g. fake-indexeddb in tests).
export { memoryStore } from './stores.mjs';
export { fileStore } from './file-store.mjs';
export { indexedDBStore } from './idb-store.mjs';
