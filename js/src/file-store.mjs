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
// into place: the previous state stays whole.  Other I/O errors keep their
// code (EIO, ...) and get the step in their message ("writing the root:
// EIO: ...").  A failed step leaves no temporary file behind; a log append
// writes on after a short write, and one that failed is cut off before the
// next, so that bytes past the last acknowledged record never stay in front
// of another.
//
// Every call goes through `fs`, node:fs/promises by default: tests pass a
// wrapper that fails the i-th call (tests/js/faults.test.mjs).

import * as nodeFs from 'node:fs/promises';
import path from 'node:path';

import { StateError, StorageFullError } from '../dist/errors.mjs';
import { fail } from './fail.mjs';

const CID = /^b[a-z2-7]{58}$/;
// What the store calls: these functions of node:fs/promises, and the
// FileHandle methods close, datasync, stat, sync, truncate, write, writeFile.
const FS_FUNCTIONS = ['mkdir', 'open', 'readFile', 'rename', 'stat', 'unlink'];

// The error a failed step throws: StorageFullError for a full disk, else
// the system error's code, errno and syscall with the step in the message.
function stepError(err, what) {
  if (err && (err.code === 'ENOSPC' || err.code === 'EDQUOT'))
    return Object.assign(fail(StorageFullError, `${what}: ${err.message}`), { cause: err });
  if (!err || typeof err.code !== 'string' || err.step) return err;
  const out = new Error(`${what}: ${err.message}`, { cause: err });
  for (const key of ['code', 'errno', 'syscall', 'path']) if (err[key] !== undefined) out[key] = err[key];
  out.step = what;
  return out;
}

async function fsyncDir(fs, dir) {
  const fd = await fs.open(dir, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

let tmpCounter = 0;
// Folders this process holds (or is taking) the lock of: a second store on
// one would be a second writer.
const lockedHere = new Set();

// Writes bytes to file durably: temporary file, fsync, rename.  On any
// failure the temporary file is removed (if it can be).
async function writeDurably(fs, file, bytes) {
  const tmp = `${file}.tmp-${process.pid}-${tmpCounter++}`;
  const fd = await fs.open(tmp, 'w');
  try {
    try {
      await fd.writeFile(bytes);
      await fd.sync();
    } finally {
      await fd.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.unlink(tmp).catch(() => {});
    throw err;
  }
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
  #fs;
  #logFd = null;
  #logEnd = 0;     // the log's size as acknowledged (appends and cuts that resolved)
  #locked = false;

  constructor(dir, fs) {
    this.#dir = dir;
    this.#blocks = path.join(dir, 'blocks');
    this.#fs = fs;
  }

  get directory() {
    return this.#dir;
  }

  async init({ lock }) {
    await this.#fs.mkdir(this.#blocks, { recursive: true });
    if (lock) await this.#lock();
  }

  // One writing process per folder: DIR/lock holds its pid; a lock whose
  // process is gone (killed) is taken over.  The folder is marked in
  // lockedHere before the first await, so that two stores opened at once
  // in this process cannot both take it.
  async #lock() {
    const file = path.join(this.#dir, 'lock');
    if (lockedHere.has(this.#dir)) throw fail(StateError, `${this.#dir} is already open for writing in this process`);
    lockedHere.add(this.#dir);
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        let fd;
        try {
          fd = await this.#fs.open(file, 'wx');
        } catch (err) {
          if (err.code !== 'EEXIST') throw stepError(err, 'taking the lock');
          const pid = Number((await this.#fs.readFile(file, 'utf8').catch(() => '')).trim());
          if (pid && pid !== process.pid && processAlive(pid))
            throw fail(StateError, `${this.#dir} is open for writing in process ${pid}`);
          await this.#fs.unlink(file).catch(() => {});
          continue;
        }
        try {
          try {
            await fd.writeFile(`${process.pid}\n`);
          } finally {
            await fd.close();
          }
        } catch (err) {
          await this.#fs.unlink(file).catch(() => {});
          throw stepError(err, 'taking the lock');
        }
        this.#locked = true;
        return;
      }
      throw fail(StateError, `cannot take the lock of ${this.#dir}`);
    } catch (err) {
      lockedHere.delete(this.#dir);
      throw err;
    }
  }

  #blockPath(cid) {
    if (typeof cid !== 'string' || !CID.test(cid)) throw new TypeError(`not a CID: ${String(cid)}`);
    return path.join(this.#blocks, cid);
  }

  async get(cid) {
    try {
      return new Uint8Array(await this.#fs.readFile(this.#blockPath(cid)));
    } catch (err) {
      if (err.code === 'ENOENT') return undefined;
      throw stepError(err, `reading block ${cid}`);
    }
  }

  async has(cid) {
    try {
      await this.#fs.stat(this.#blockPath(cid));
      return true;
    } catch (err) {
      if (err.code === 'ENOENT') return false;
      throw stepError(err, `looking for block ${cid}`);
    }
  }

  async put(cid, bytes) {
    if (await this.has(cid)) return;
    try {
      await writeDurably(this.#fs, this.#blockPath(cid), bytes);
      await fsyncDir(this.#fs, this.#blocks);
    } catch (err) {
      throw stepError(err, `writing block ${cid}`);
    }
  }

  async getRoot() {
    try {
      const text = (await this.#fs.readFile(path.join(this.#dir, 'root'), 'utf8')).trim();
      return text || undefined;
    } catch (err) {
      if (err.code === 'ENOENT') return undefined;
      throw stepError(err, 'reading the root');
    }
  }

  async setRoot(cid) {
    try {
      await writeDurably(this.#fs, path.join(this.#dir, 'root'), `${cid}\n`);
      await fsyncDir(this.#fs, this.#dir);
    } catch (err) {
      throw stepError(err, 'writing the root');
    }
  }

  /** Blocks, then the root, then an empty log: each step durable before the next. */
  async commit({ blocks, root }) {
    let cid;
    try {
      let wrote = false;
      for (const block of blocks) {
        cid = block.cid;
        if (await this.has(cid)) continue;
        await writeDurably(this.#fs, this.#blockPath(cid), block.bytes);
        wrote = true;
      }
      cid = undefined;
      if (wrote) await fsyncDir(this.#fs, this.#blocks);
    } catch (err) {
      throw stepError(err, cid ? `writing block ${cid}` : 'writing blocks');
    }
    await this.setRoot(root);
    await this.truncateLog(0);
  }

  async readLog() {
    try {
      return new Uint8Array(await this.#fs.readFile(path.join(this.#dir, 'log')));
    } catch (err) {
      if (err.code === 'ENOENT') return new Uint8Array(0);
      throw stepError(err, 'reading the log');
    }
  }

  async #log() {
    if (!this.#logFd) {
      const fd = await this.#fs.open(path.join(this.#dir, 'log'), 'a+');
      try {
        this.#logEnd = (await fd.stat()).size;
      } catch (err) {
        await fd.close().catch(() => {});
        throw err;
      }
      this.#logFd = fd;
    }
    return this.#logFd;
  }

  async appendLog(bytes) {
    try {
      const fd = await this.#log();
      // A failed append whose cut failed too left bytes past the end:
      // they go before this record does ('a+' writes at the file's end).
      if ((await fd.stat()).size > this.#logEnd) {
        await fd.truncate(this.#logEnd);
        await fd.datasync();
      }
      try {
        // A write may store fewer bytes than asked (a disk filling up):
        // write the rest, which fails if no byte more fits.
        for (let at = 0; at < bytes.length;) {
          const { bytesWritten } = await fd.write(bytes, at, bytes.length - at);
          if (!(bytesWritten > 0)) throw Object.assign(new Error('EIO: a log write stored nothing'), { code: 'EIO' });
          at += bytesWritten;
        }
        await fd.datasync();
      } catch (err) {
        // A partial append would be a torn record: cut it off again.
        await fd.truncate(this.#logEnd).catch(() => {});
        throw err;
      }
      this.#logEnd += bytes.length;
    } catch (err) {
      throw stepError(err, 'appending to the log');
    }
  }

  async truncateLog(size) {
    try {
      const fd = await this.#log();
      if ((await fd.stat()).size === size) {
        this.#logEnd = size;
        return;
      }
      await fd.truncate(size);
      await fd.datasync();
      this.#logEnd = size;
    } catch (err) {
      throw stepError(err, 'cutting the log');
    }
  }

  async close() {
    const fd = this.#logFd;
    this.#logFd = null;
    try {
      if (fd) await fd.close();
    } finally {
      if (this.#locked) {
        this.#locked = false;
        lockedHere.delete(this.#dir);
        await this.#fs.unlink(path.join(this.#dir, 'lock')).catch(() => {});
      }
    }
  }
}

/**
 * A store in a folder (created if missing).  options.lock (default true):
 * take DIR/lock so that one process writes at a time (a read-only user
 * such as a second reader can pass false).  options.fs (for tests and
 * diagnostics): the file system calls to use instead of node:fs/promises
 * -- mkdir, open, readFile, rename, stat, unlink, with the FileHandles
 * open returns.
 */
export async function fileStore(dir, { lock = true, fs = nodeFs } = {}) {
  if (typeof dir !== 'string' || !dir) throw new TypeError('fileStore needs a directory path');
  for (const name of FS_FUNCTIONS)
    if (typeof fs?.[name] !== 'function') throw new TypeError(`fileStore's fs option needs ${name}() (as node:fs/promises)`);
  const store = new FileStore(path.resolve(dir), fs);
  await store.init({ lock });
  return store;
}
