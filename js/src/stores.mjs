// stores.mjs -- where a collection keeps its blocks, its root and its log.
//
// A store is any object with these async methods (docs/API.md, "Stores"):
//
//   get(cid) -> Uint8Array | undefined     a block by its CID (text form)
//   put(cid, bytes)                        stores a block under its CID
//   has(cid) -> boolean
//   getRoot() -> string | undefined        the CID of the current manifest
//   setRoot(cid)                           (written after the blocks it needs)
//   readLog() -> Uint8Array                the write-ahead log (empty if none)
//   appendLog(bytes)                       appends one log record
//   truncateLog(size)                      cuts the log to its first size bytes
//
// A store needs no integrity checks of its own: the collection hashes every
// block it is given against the CID it asked for, and checks every log
// record's CRC-32C.  What a store must get right is ordering: put, setRoot
// and appendLog resolve only once the bytes are durable (for the stores that
// persist), because the collection moves on as soon as they do.

/** A store that keeps everything in memory: nothing survives the process. */
export function memoryStore() {
  return new MemoryStore();
}

class MemoryStore {
  #blocks = new Map();
  #root = undefined;
  #log = new Uint8Array(0);

  async get(cid) {
    const bytes = this.#blocks.get(cid);
    return bytes && bytes.slice();
  }
  async put(cid, bytes) {
    if (!this.#blocks.has(cid)) this.#blocks.set(cid, Uint8Array.from(bytes));
  }
  async has(cid) {
    return this.#blocks.has(cid);
  }
  async getRoot() {
    return this.#root;
  }
  async setRoot(cid) {
    this.#root = cid;
  }
  async readLog() {
    return this.#log.slice();
  }
  async appendLog(bytes) {
    const log = new Uint8Array(this.#log.length + bytes.length);
    log.set(this.#log);
    log.set(bytes, this.#log.length);
    this.#log = log;
  }
  async truncateLog(size) {
    this.#log = this.#log.slice(0, size);
  }
  /** The CIDs of every block held (for tests and tools). */
  cids() {
    return [...this.#blocks.keys()];
  }
  /** Bytes of every block held. */
  get size() {
    let n = 0;
    for (const b of this.#blocks.values()) n += b.length;
    return n;
  }
}
