// ranges.mjs -- where Index.open reads a segment's bytes from: any source of
// byte ranges, made into one function read(offset, length) -> Promise of a
// Uint8Array of exactly length bytes.
//
// What a source may be (the same segment bytes save() wrote, or a file of
// them):
//   - a Uint8Array or ArrayBuffer (the bytes themselves: for tests; a segment
//     kept whole in memory saves nothing);
//   - a Blob or File (a browser's <input type=file>, OPFS, a Blob kept in
//     IndexedDB: slice() reads only the range);
//   - a Node FileHandle (fs.promises.open(path)): read() at a position;
//   - a URL (string or URL object): fetch with a Range header, which the
//     server must answer with 206 (static file servers and CDNs do);
//   - a function (offset, length) -> Uint8Array | ArrayBuffer, or a promise
//     of one: anything else (an HTTP client, a store of blocks).
// The bytes are not trusted: the core validates every part it is given.

import { ParameterError, TruncatedDataError } from '../dist/errors.mjs';
import { fail } from './fail.mjs';

const isBlob = (x) => typeof Blob !== 'undefined' && x instanceof Blob;
const isFileHandle = (x) => x !== null && typeof x === 'object' && typeof x.read === 'function' &&
  typeof x.fd === 'number';

function fromBytes(bytes) {
  return (offset, length) => {
    if (offset + length > bytes.length)
      throw fail(TruncatedDataError, `bytes ${offset}..${offset + length} are past the segment's ${bytes.length}`);
    return bytes.subarray(offset, offset + length);
  };
}

function fromUrl(url, init) {
  return async (offset, length) => {
    const headers = new Headers(init?.headers);
    headers.set('Range', `bytes=${offset}-${offset + length - 1}`);
    const res = await fetch(url, { ...init, headers });
    if (res.status !== 206)
      throw fail(ParameterError, `${url}: a range request answered ${res.status}, not 206 (the server must serve byte ranges)`);
    return new Uint8Array(await res.arrayBuffer());
  };
}

/** The read(offset, length) function of a source (see the top of this file). */
export function rangeReader(source, init) {
  if (typeof source === 'function') return source;
  if (source instanceof ArrayBuffer) return fromBytes(new Uint8Array(source));
  if (source instanceof Uint8Array) return fromBytes(source);
  if (isBlob(source)) return async (offset, length) => new Uint8Array(await source.slice(offset, offset + length).arrayBuffer());
  if (isFileHandle(source)) {
    return async (offset, length) => {
      const buffer = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await source.read(buffer, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return buffer.subarray(0, done);
    };
  }
  if (typeof source === 'string' || (typeof URL !== 'undefined' && source instanceof URL)) return fromUrl(source, init);
  throw new TypeError('Index.open reads from a Uint8Array, ArrayBuffer, Blob, FileHandle, URL or a function (offset, length) => bytes');
}

/** Calls read and checks that it returned exactly length bytes. */
export async function readExactly(read, offset, length) {
  let bytes = await read(offset, length);
  if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`the source returned ${typeof bytes}, not a Uint8Array`);
  if (bytes.length !== length)
    throw fail(TruncatedDataError, `the source gave ${bytes.length} bytes at offset ${offset}, not ${length}`);
  return bytes;
}
