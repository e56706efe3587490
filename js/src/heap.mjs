// heap.mjs -- moving values between JS and the wasm heap, shared by the
// Index and Collection classes: scratch allocations freed in one place, ids
// as UTF-8 bytes plus offsets, metadata as JSON text, times as doubles, and
// option values as the 64-bit cells the binding takes (wasm/binding.c).

import { InvalidIdError, OutOfMemoryError, ParameterError } from '../dist/errors.mjs';
import { ENUMS, LIMITS, SEARCH_PARAMS, SIMD } from '../dist/abi.mjs';
import { fail } from './fail.mjs';

export const MSG_SIZE = 256;
const SIMD_AUTO = SIMD.indexOf('auto');
const SIMD_SCALAR = SIMD.indexOf('scalar');

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

/** Scratch allocations on the wasm heap, all freed by release(). */
export class Scratch {
  constructor(M) {
    this.M = M;
    this.pointers = [];
  }
  alloc(bytes) {
    const ptr = this.M._malloc(Math.max(bytes, 8)) >>> 0;
    if (!ptr) throw fail(OutOfMemoryError, `cannot allocate ${bytes} bytes of scratch memory`);
    this.pointers.push(ptr);
    return ptr;
  }
  release() {
    for (const ptr of this.pointers) this.M._free(ptr);
    this.pointers.length = 0;
  }
}

/**
 * count strings stored one after another at ptr, string i ending at byte
 * HEAPU32[(ends >>> 2) + i]: one decode when they are all ASCII (ids
 * usually are), else one each -- exactly what decoding each would give.
 */
export function packedStrings(M, ptr, ends, count) {
  const end = M.HEAPU32.subarray(ends >>> 2, (ends >>> 2) + count);
  const bytes = M.HEAPU8.subarray(ptr, ptr + end[count - 1]);
  let ascii = true;
  for (let i = 0; i < bytes.length && ascii; i++) ascii = bytes[i] < 0x80;
  const out = new Array(count);
  const text = ascii ? decoder.decode(bytes) : null;
  for (let i = 0, at = 0; i < count; at = end[i++])
    out[i] = ascii ? text.slice(at, end[i]) : decoder.decode(bytes.subarray(at, end[i]));
  return out;
}

// Every search option is a uint32, so its 64-bit cell is two uint32 words
// (low, then 0): searchCells builds them without BigInt, once per search.
if (SEARCH_PARAMS.some((p) => p.type !== 'U32')) throw new Error('searchCells: a search option is not a U32');

/**
 * The search options (SEARCH_PARAMS names; undefined = 0 = the default) as
 * the cells the binding takes, each 64-bit cell as two uint32 words: write
 * with HEAPU32.set(cells, ptr >>> 2) at an 8-aligned ptr.  allowed(p), if
 * given, throws for an option this index cannot take.
 */
export function searchCells(options, allowed) {
  const cells = new Uint32Array(SEARCH_PARAMS.length * 2);
  for (let i = 0; i < SEARCH_PARAMS.length; i++) {
    const p = SEARCH_PARAMS[i];
    if (options[p.name] === undefined) continue;
    allowed?.(p);
    cells[2 * i] = uint32Option(options[p.name], p.name);
  }
  return cells;
}

export function checkOptions(options, allowed, what) {
  for (const key of Object.keys(options))
    if (!allowed.includes(key))
      throw fail(ParameterError, `unknown ${what} option '${key}' (known: ${allowed.join(', ') || 'none'})`);
}

// A positive integer option that C takes as uint32 (undefined = 0 = default).
export function uint32Option(value, name) {
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || value < 1 || value > 0xffffffff)
    throw fail(ParameterError, `${name} must be a positive integer, not ${String(value)}`);
  return value;
}

// The 64-bit cell of one create option (SHOAL_PARAM_LIST row p).
export function paramCell(p, value) {
  if (p.type === 'ENUM') {
    const words = ENUMS[p.enum];
    const at = words.indexOf(value);
    if (at < 0) throw fail(ParameterError, `${p.name} must be one of ${words.join(', ')}, not '${value}'`);
    return BigInt(at);
  }
  if (p.type === 'U64') {
    let big;
    if (typeof value === 'bigint') big = value;
    else if (Number.isSafeInteger(value)) big = BigInt(value);
    else throw fail(ParameterError, `${p.name} must be an integer or a bigint, not ${String(value)}`);
    if (big < 0n || big >= 1n << 64n) throw fail(ParameterError, `${p.name} ${value} is outside 0..2^64-1`);
    return big;
  }
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw fail(ParameterError, `${p.name} must be a non-negative integer, not ${String(value)}`);
  return BigInt(value);
}

// The JS simd option (which wasm build) as the core's kernel choice.
export function simdCell(simd) {
  return simd === false ? SIMD_SCALAR : SIMD_AUTO;
}

export function toFloat32(values, what) {
  if (values instanceof Float32Array) return values;
  if (Array.isArray(values) || ArrayBuffer.isView(values)) return Float32Array.from(values);
  throw new TypeError(`${what} must be a Float32Array or an array of numbers`);
}

/**
 * Copies ids into the heap as one UTF-8 buffer plus n+1 offsets, the layout
 * shoal_index_add/delete take.  Returns [bytesPtr, offsetsPtr].
 */
export function writeIds(M, scratch, ids) {
  if (!Array.isArray(ids)) throw new TypeError('ids must be an array of strings');
  let bound = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (typeof id !== 'string') throw new TypeError(`ids[${i}] is ${typeof id}, not a string`);
    // TextEncoder turns lone surrogates into U+FFFD, which would silently make
    // distinct ids equal; C sees only the bytes, so this check lives here.
    if (id.isWellFormed && !id.isWellFormed())
      throw fail(InvalidIdError, `ids[${i}] contains a lone UTF-16 surrogate`);
    bound += id.length * 3; // UTF-8 bytes per UTF-16 unit, at most
  }
  const bytes = scratch.alloc(bound);
  const offsets = scratch.alloc((ids.length + 1) * 4);
  const heap = M.HEAPU8;
  const offs = M.HEAPU32;
  let at = 0;
  offs[offsets >>> 2] = 0;
  for (let i = 0; i < ids.length; i++) {
    at += encoder.encodeInto(ids[i], heap.subarray(bytes + at, bytes + bound)).written;
    offs[(offsets >>> 2) + i + 1] = at;
  }
  return [bytes, offsets];
}

// Metadata objects as JSON text in one buffer plus n+1 offsets (an empty
// span for null/undefined: no metadata).  C parses and checks it.
export function writeMetadata(M, scratch, metadata, n) {
  if (!Array.isArray(metadata)) throw new TypeError('metadata must be an array with one object (or null) per id');
  if (metadata.length !== n)
    throw fail(ParameterError, `${metadata.length} metadata entries for ${n} ids`);
  const texts = new Array(n);
  let bound = 0;
  for (let i = 0; i < n; i++) {
    const m = metadata[i];
    if (m === undefined || m === null) {
      texts[i] = '';
      continue;
    }
    if (typeof m !== 'object' || Array.isArray(m))
      throw fail(ParameterError, `metadata[${i}] must be an object or null, not ${Array.isArray(m) ? 'an array' : typeof m}`);
    try {
      texts[i] = JSON.stringify(m);
    } catch (err) {
      throw fail(ParameterError, `metadata[${i}] cannot be written as JSON: ${err.message}`);
    }
    bound += texts[i].length * 3;
  }
  const bytes = scratch.alloc(bound);
  const offsets = scratch.alloc((n + 1) * 4);
  let at = 0;
  M.HEAPU32[offsets >>> 2] = 0;
  for (let i = 0; i < n; i++) {
    if (texts[i]) at += encoder.encodeInto(texts[i], M.HEAPU8.subarray(bytes + at, bytes + bound)).written;
    M.HEAPU32[(offsets >>> 2) + i + 1] = at;
  }
  return [bytes, offsets];
}

// Times (milliseconds since the epoch; a Date is fine; null/undefined: none)
// as doubles, NaN for none.
export function writeTimes(M, scratch, times, n) {
  if (!Array.isArray(times) && !ArrayBuffer.isView(times)) throw new TypeError('times must be an array');
  if (times.length !== n) throw fail(ParameterError, `${times.length} times for ${n} ids`);
  const ptr = scratch.alloc(n * 8);
  const view = M.HEAPF64.subarray(ptr >>> 3, (ptr >>> 3) + n);
  for (let i = 0; i < n; i++) {
    const t = times[i] instanceof Date ? times[i].getTime() : times[i];
    if (t === undefined || t === null) view[i] = NaN;
    else if (Number.isSafeInteger(t)) view[i] = t;
    else throw fail(ParameterError, `times[${i}] must be whole milliseconds (or a Date), not ${String(t)}`);
  }
  return ptr;
}

// The CID of size bytes at ptr on the wasm heap.
export function cidOf(M, scratch, ptr, size) {
  const out = scratch.alloc(LIMITS.cid);
  const len = M._shoal_cid(ptr, size, out);
  return decoder.decode(M.HEAPU8.subarray(out, out + len));
}

