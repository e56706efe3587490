// stores-web.mjs -- the stores of the browser and worker entries: memory and
// IndexedDB; fileStore says what to use instead (it needs Node's fs).
import { UnsupportedError } from '../dist/errors.mjs';
import { fail } from './fail.mjs';

export { memoryStore } from './stores.mjs';
export { indexedDBStore } from './idb-store.mjs';

export async function fileStore() {
  throw fail(UnsupportedError, "fileStore needs Node's file system: in a browser or worker use indexedDBStore()");
}
