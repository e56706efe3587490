// file-store.mjs -- a collection in a folder (Node): the layout the CLI
// writes and reads (docs/CLI.md, "Collections"), so either can open what
// the other wrote.
//
//   DIR/blocks/<cid>   one file per block, named by its CID
//   DIR/root           the current manifest's CID and a newline
//   DIR/log            the write-ahead log (appended records)
//   DIR/lock           the writing process's pid, while one has it open
//
// Durability, which is what "resolves" means here:
//   appendLog   write + fdatasync: the record survives a power cut;
//   commit      every new block written to a temporary file, fsync'ed and
//               renamed into place, the blocks directory fsync'ed; then the
//               root the same way (temp, fsync, rename, directory fsync);
//               only then the log is emptied.  A crash at any point leaves
//               the previous root (and its log) or the new one, never a
//               root naming a block that is not on disk.
// Full disks (ENOSPC, EDQUOT) are a StorageFullError, with nothing renamed
// into place: the previous state stays whole.

import { closeSync, openSync } from 'node:fs';
import { mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { StateError, StorageFullError } from '../dist/errors.mjs';
import { fail } from './fail.mjs';

const CID = /^b[a-z2-7]{58}$/;

function full(err, what) {
  if (err && (err.code === 'ENOSPC' || err.code === 'EDQUOT'))
    return fail(StorageFullError, `${what}: ${err.message}`);
  return err;
}

async function fsyncDir(dir) {
  const fd = await open(dir, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

let tmpCounter = 0;
// Folders this process holds the lock of (a second store on one would be a
// second writer).
const lockedHere = new Set();

// Writes bytes to path durably: temporary file, fsync, rename.
async function writeDurably(file, bytes) {
  const tmp = `${file}.tmp-${process.pid}-${tmpCounter++}`;
  const fd = await open(tmp, 'w');
  try {
    await fd.writeFile(bytes);
    await fd.sync();
  } catch (err) {
    await fd.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fd.close();
  await rename(tmp, file);
}

function processAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

class FileStore {
  #dir;
  #blocks;
  #logFd = null;
  #locked = false;

  constructor(dir) {
    this.#dir = dir;
    this.#blocks = path.join(dir, 'blocks');
  }

  get directory() {
    return this.#dir;
  }

  async init({ lock }) {
    await mkdir(this.#blocks, { recursive: true });
    if (lock) await this.#lock();
  }

  // One writing process per folder: DIR/lock holds its pid; a lock whose
  // process is gone (killed) is taken over.
  async #lock() {
    const file = path.join(this.#dir, 'lock');
    if (lockedHere.has(this.#dir)) throw fail(StateError, `${this.#dir} is already open for writing in this process`);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(file, 'wx');
        closeSync(fd);
        await writeFile(file, `${process.pid}\n`);
        this.#locked = true;
        lockedHere.add(this.#dir);
        return;
      } catch (err) {
        if (err.code !== 'EEXIST') throw full(err, 'taking the lock');
        const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
        if (pid && pid !== process.pid && processAlive(pid))
          throw fail(StateError, `${this.#dir} is open for writing in process ${pid}`);
        await unlink(file).catch(() => {});
      }
    }
    throw fail(StateError, `cannot take the lock of ${this.#dir}`);
  }

  #blockPath(cid) {
    if (typeof cid !== 'string' || !CID.test(cid)) throw new TypeError(`not a CID: ${String(cid)}`);
    return path.join(this.#blocks, cid);
  }

  async get(cid) {
    try {
      return new Uint8Array(await readFile(this.#blockPath(cid)));
    } catch (err) {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async has(cid) {
    try {
      await stat(this.#blockPath(cid));
      return true;
    } catch (err) {
      if (err.code === 'ENOENT') return false;
      throw err;
    }
  }

  async put(cid, bytes) {
    if (await this.has(cid)) return;
    try {
      await writeDurably(this.#blockPath(cid), bytes);
      await fsyncDir(this.#blocks);
    } catch (err) {
      throw full(err, `writing block ${cid}`);
    }
  }

  async getRoot() {
    try {
      const text = (await readFile(path.join(this.#dir, 'root'), 'utf8')).trim();
      return text || undefined;
    } catch (err) {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async setRoot(cid) {
    try {
      await writeDurably(path.join(this.#dir, 'root'), `${cid}\n`);
      await fsyncDir(this.#dir);
    } catch (err) {
      throw full(err, 'writing the root');
    }
  }

  /** Blocks, then the root, then an empty log: each step durable before the next. */
  async commit({ blocks, root }) {
    try {
      let wrote = false;
      for (const { cid, bytes } of blocks) {
        if (await this.has(cid)) continue;
        await writeDurably(this.#blockPath(cid), bytes);
        wrote = true;
      }
      if (wrote) await fsyncDir(this.#blocks);
    } catch (err) {
      throw full(err, 'writing blocks');
    }
    await this.setRoot(root);
    await this.truncateLog(0);
  }

  async readLog() {
    try {
      return new Uint8Array(await readFile(path.join(this.#dir, 'log')));
    } catch (err) {
      if (err.code === 'ENOENT') return new Uint8Array(0);
      throw err;
    }
  }

  async #log() {
    if (!this.#logFd) this.#logFd = await open(path.join(this.#dir, 'log'), 'a+');
    return this.#logFd;
  }

  async appendLog(bytes) {
    const fd = await this.#log();
    const { size } = await fd.stat();
    try {
      await fd.write(bytes);
      await fd.datasync();
    } catch (err) {
      // A partial append would be a torn record: cut it off again.
      await fd.truncate(size).catch(() => {});
      throw full(err, 'appending to the log');
    }
  }

  async truncateLog(size) {
    const fd = await this.#log();
    if ((await fd.stat()).size === size) return;
    await fd.truncate(size);
    await fd.datasync();
  }

  async close() {
    if (this.#logFd) await this.#logFd.close();
    this.#logFd = null;
    if (this.#locked) {
      this.#locked = false;
      lockedHere.delete(this.#dir);
      await unlink(path.join(this.#dir, 'lock')).catch(() => {});
    }
  }
}

/**
 * A store in a folder (created if missing).  options.lock (default true):
 * take DIR/lock so that one process writes at a time (a read-only user
 * such as a second reader can pass false).
 */
export async function fileStore(dir, { lock = true } = {}) {
  if (typeof dir !== 'string' || !dir) throw new TypeError('fileStore needs a directory path');
  const store = new FileStore(path.resolve(dir));
  await store.init({ lock });
  return store;
}
