// stores-any.mjs -- the stores of the runtime-neutral entry: the file store
// is loaded on first use, and only in Node, so that bundlers for the web
// never see node:fs.
import { UnsupportedError } from '../dist/errors.mjs';
import { fail } from './fail.mjs';

export { memoryStore } from './stores.mjs';
export { indexedDBStore } from './idb-store.mjs';

const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';

export async function fileStore(dir, options) {
  if (!isNode)
    throw fail(UnsupportedError, "fileStore needs Node's file system: in a browser or worker use indexedDBStore()");
  const { fileStore: make } = await import('./file-store.mjs');
  return make(dir, options);
}
