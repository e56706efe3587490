// cid.mjs -- the CIDs Shoal uses (CIDv1, sha2-256, raw or dag-cbor, base32
// "b..."), parsed and checked in JS for the sources, which must verify
// every block before anything else sees it.  WebCrypto's SHA-256 (Node 20,
// browsers, workers) does the hashing; no dependency.

import { CorruptDataError, ParameterError } from '../dist/errors.mjs';
import { fail } from './fail.mjs';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
export const RAW = 0x55;
export const DAG_CBOR = 0x71;

/** The 36 bytes of a CID's text form, or a ParameterError. */
export function cidBytes(text) {
  if (typeof text !== 'string' || text.length !== 59 || text[0] !== 'b')
    throw fail(ParameterError, `not a CIDv1 sha2-256 in base32: ${String(text).slice(0, 80)}`);
  const out = new Uint8Array(36);
  let acc = 0, bits = 0, at = 0;
  for (let i = 1; i < text.length; i++) {
    const v = ALPHABET.indexOf(text[i]);
    if (v < 0) throw fail(ParameterError, `not base32: ${text}`);
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out[at++] = (acc >> (bits - 8)) & 0xff;
      bits -= 8;
      acc &= (1 << bits) - 1;
    }
  }
  if (out[0] !== 1 || (out[1] !== RAW && out[1] !== DAG_CBOR) || out[2] !== 0x12 || out[3] !== 0x20)
    throw fail(ParameterError, `not a CIDv1 sha2-256 of raw or dag-cbor: ${text}`);
  return out;
}

/** The text form of 36 CID bytes. */
export function cidText(bytes) {
  let out = 'b', acc = 0, bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits) out += ALPHABET[(acc << (5 - bits)) & 31];
  return out;
}

/** The codec of a CID (text): RAW or DAG_CBOR. */
export function codecOf(text) {
  return cidBytes(text)[1];
}

async function sha256(bytes) {
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes));
}

/** Whether bytes hash to cid. */
export async function verifies(cid, bytes) {
  const want = cidBytes(cid);
  const got = await sha256(bytes);
  for (let i = 0; i < 32; i++) if (got[i] !== want[4 + i]) return false;
  return true;
}

/** bytes if they hash to cid, else a CorruptDataError naming where they came from. */
export async function verified(cid, bytes, from) {
  if (!(await verifies(cid, bytes))) throw fail(CorruptDataError, `${from}: the bytes for ${cid} do not hash to it`);
  return bytes;
}

/** The CID (text) of bytes under codec. */
export async function cidOf(bytes, codec = RAW) {
  const out = new Uint8Array(36);
  out.set([1, codec, 0x12, 0x20]);
  out.set(await sha256(bytes), 4);
  return cidText(out);
}

// ------------------------------------------------------------- CAR v1

function varint(bytes, at) {
  let v = 0, shift = 0;
  for (let i = 0; i < 9; i++) {
    if (at + i >= bytes.length) return null;
    const b = bytes[at + i];
    v += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(b & 0x80)) return [v, at + i + 1];
  }
  throw fail(CorruptDataError, 'CAR: a varint runs past 9 bytes');
}

/**
 * The blocks of a CARv1 (header roots ignored: a CAR from a gateway is
 * checked block by block), each verified: [{ cid, bytes }].  Only CIDv1
 * sha2-256 raw / dag-cbor blocks are kept; others are skipped.
 */
export async function carBlocks(car, from = 'CAR') {
  let pos = varint(car, 0);
  if (!pos) throw fail(CorruptDataError, `${from}: truncated header`);
  let at = pos[1] + pos[0];
  if (at > car.length) throw fail(CorruptDataError, `${from}: truncated header`);
  const out = [];
  while (at < car.length) {
    pos = varint(car, at);
    if (!pos || pos[1] + pos[0] > car.length) throw fail(CorruptDataError, `${from}: truncated block at byte ${at}`);
    const [len, start] = pos;
    const end = start + len;
    const head = car.subarray(start, Math.min(end, start + 36));
    if (head.length === 36 && head[0] === 1 && (head[1] === RAW || head[1] === DAG_CBOR) && head[2] === 0x12 && head[3] === 0x20) {
      const cid = cidText(head);
      out.push({ cid, bytes: await verified(cid, car.slice(start + 36, end), from) });
    }
    at = end;
  }
  return out;
}

function putVarint(v, out) {
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
}

/** A CARv1 of blocks with root as its only root. */
export function carOf(root, blocks) {
  const rootBytes = cidBytes(root);
  // {"roots": [root], "version": 1} in DAG-CBOR
  const header = [0xa2, 0x65, ...new TextEncoder().encode('roots'), 0x81, 0xd8, 42, 0x58, 37, 0,
    ...rootBytes, 0x67, ...new TextEncoder().encode('version'), 1];
  const parts = [];
  const lead = [];
  putVarint(header.length, lead);
  parts.push(Uint8Array.from([...lead, ...header]));
  for (const { cid, bytes } of blocks) {
    const frame = [];
    putVarint(36 + bytes.length, frame);
    parts.push(Uint8Array.from([...frame, ...cidBytes(cid)]), bytes);
  }
  const size = parts.reduce((n, p) => n + p.length, 0);
  const car = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    car.set(p, at);
    at += p.length;
  }
  return car;
}

// --------------------------------------------------------------- links

/**
 * The CIDs linked from a DAG-CBOR block (tag 42 over 0x00 + a CID of ours),
 * in order.  A light walker over well-formed CBOR: the block's own hash was
 * checked, and the core validates manifests fully when it opens them.
 */
export function linksOf(block) {
  const links = [];
  let at = 0;
  const head = () => {
    const b = block[at++], major = b >> 5, info = b & 31;
    let arg = info;
    if (info >= 24 && info <= 27) {
      const n = 1 << (info - 24);
      arg = 0;
      for (let i = 0; i < n; i++) arg = arg * 256 + block[at++];
    } else if (info > 27) {
      throw fail(CorruptDataError, 'DAG-CBOR: indefinite length or reserved value');
    }
    return [major, arg];
  };
  const item = () => {
    if (at >= block.length) throw fail(CorruptDataError, 'DAG-CBOR: truncated');
    const [major, arg] = head();
    if (major === 2 || major === 3) at += arg;
    else if (major === 4) for (let i = 0; i < arg; i++) item();
    else if (major === 5) for (let i = 0; i < 2 * arg; i++) item();
    else if (major === 6) {
      const start = at;
      const [m, len] = head();
      if (arg === 42 && m === 2 && len === 37 && block[at] === 0) links.push(cidText(block.subarray(at + 1, at + 37)));
      at = start;
      item();
    }
  };
  item();
  return links;
}

// ----------------------------------------------------------------- DAGs

/** Every block reachable from root, depth first, each once; undefined if root is missing. */
export async function dagBlocks(get, root) {
  const seen = new Set(), out = [], todo = [root];
  while (todo.length) {
    const cid = todo.pop();
    if (seen.has(cid)) continue;
    seen.add(cid);
    const bytes = await get(cid);
    if (!bytes) {
      if (cid === root) return undefined;
      continue; // (a partial DAG: serve what there is)
    }
    out.push({ cid, bytes });
    if (codecOf(cid) === DAG_CBOR) todo.push(...linksOf(bytes).reverse());
  }
  return out;
}

