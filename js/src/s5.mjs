// s5.mjs -- an S5 node (docs.sfive.net) as a source and as a publisher,
// over the node's HTTP API:
//   POST /s5/upload              a blob (multipart field "file") -> {"cid"}
//   GET  /s5/download/{blob id}  the blob's bytes
//   GET  /s5/registry?pk=...     the signed entry of a key -> {pk, revision,
//                                data, signature} (base64url), 404: none
//   POST /s5/registry            a signed entry (the same JSON) -> 204
// with "Authorization: Bearer <token>" when the node wants one.
//
// The mapping.  Shoal names blocks by IPFS CIDs (SHA-256); S5 names blobs by
// BLAKE3 hash and size.  Each Shoal block is uploaded as one S5 blob, and
// each published version adds one more blob, its *index*, which lists every
// block reachable from the version's root with the BLAKE3 hash and size of
// the blob holding it.  The key pair's registry entry points at the index.
// So a reader resolves the name (the entry, signature checked), downloads
// the index (checked against the blob id in the entry), and from then on
// fetches only the blocks it needs, one blob each, exactly as from an IPFS
// gateway -- lazy search and sync work unchanged.  Publishing a new version
// uploads only the blocks the previous index lacks.  Rejected: the whole
// CAR as one blob (a lazy open would download all of it, and the node caps
// uploads at ~34 MB); blob ids inside Shoal's manifests (the core would need
// a second hash and CID form).
//
// Index blob, version 1 (little-endian):
//   offset  size    field
//   0       8       magic "shoal-s5"
//   8       1       version = 1
//   9       3       reserved, zero
//   12      4       n, the number of entries (>= 1)
//   16      36      the root CID (binary: 01, codec, 12 20, 32-byte SHA-256)
//   52      72 * n  entries: CID (36) | BLAKE3 of the block (32) | size (u32)
// Exactly 52 + 72 n bytes; CIDs unique; the root among them.
//
// Registry entry: data = 0x5a (S5's "blob CID" marker) + the index's blob id
// in S5's raw-CID bytes (26 1f + BLAKE3 + size, little-endian, trailing zero
// bytes trimmed); blob ids 5b 82 1e|1f + BLAKE3 + size are read too.  The
// signature is ed25519 over 07 | revision (u64 LE) | data length (1 byte) |
// data; pk = ed + the 32-byte public key.  The *name* of a collection
// published this way is that pk in base64url (what ?pk= takes).
//
// Trust: a downloaded blob must hash (BLAKE3) to its id and have its size;
// a block must then hash (SHA-256) to its CID; an entry must verify under
// the name's key, and a source refuses a revision older than the newest it
// has seen for that name (one source object remembers; a new one starts
// afresh, and Collection.sync still refuses versions that do not descend
// from the one it has).
//
// Web APIs only (fetch, FormData, WebCrypto's Ed25519: Node 20, Chromium,
// Firefox, Safari 17, workerd).

import { CorruptDataError, NotFoundError, ParameterError, StateError } from '../dist/errors.mjs';
import { fail } from './fail.mjs';
import { blake3 } from './blake3.mjs';
import { cidBytes, cidText, verified } from './cid.mjs';

// --------------------------------------------------------------- codecs

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

function base32(bytes) {
  return cidText(bytes).slice(1); // cidText is plain RFC 4648 base32 behind a 'b'
}

function unbase32(text) {
  const out = [];
  let acc = 0, bits = 0;
  for (const ch of text) {
    const v = B32.indexOf(ch);
    if (v < 0) return undefined;
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((acc >> (bits - 8)) & 0xff);
      bits -= 8;
      acc &= (1 << bits) - 1;
    }
  }
  return Uint8Array.from(out);
}

function base58(bytes) {
  const digits = [];
  for (const byte of bytes) {
    let carry = byte;
    for (let i = 0; i < digits.length; i++) {
      carry += digits[i] << 8;
      digits[i] = carry % 58;
      carry = Math.floor(carry / 58);
    }
    while (carry) {
      digits.push(carry % 58);
      carry = Math.floor(carry / 58);
    }
  }
  let out = '';
  for (const byte of bytes) {
    if (byte) break;
    out += '1';
  }
  for (let i = digits.length - 1; i >= 0; i--) out += B58[digits[i]];
  return out;
}

function unbase58(text) {
  const bytes = [];
  for (const ch of text) {
    let carry = B58.indexOf(ch);
    if (carry < 0) return undefined;
    for (let i = 0; i < bytes.length; i++) {
      carry += bytes[i] * 58;
      bytes[i] = carry & 0xff;
      carry >>= 8;
    }
    while (carry) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  for (const ch of text) {
    if (ch !== '1') break;
    bytes.push(0);
  }
  return Uint8Array.from(bytes.reverse());
}

function base64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function unbase64url(text) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  try {
    const s = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4));
    return Uint8Array.from(s, (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

// -------------------------------------------------------------- blob ids

const RAW_CID = 0x26, BLAKE3_LEGACY = 0x1f, BLAKE3 = 0x1e, BLOB_MAGIC = [0x5b, 0x82];
const REGISTRY_CID = 0x5a, RECORD_REGISTRY_ENTRY = 0x07, ED25519 = 0xed;
const MAX_REVISION = 2 ** 48; // what the Dart node accepts
const MAX_DATA = 48; // the registry spec's limit (nodes accept up to 64)

function sizeBytes(size) {
  const out = [];
  for (let v = size; v > 0; v = Math.floor(v / 256)) out.push(v % 256);
  return out.length ? out : [0];
}

function sizeOf(bytes) {
  if (bytes.length === 0 || bytes.length > 6) return undefined; // (2^48 bytes is far past any blob here)
  let v = 0;
  for (let i = bytes.length - 1; i >= 0; i--) v = v * 256 + bytes[i];
  return v;
}

/** The bytes of a blob id: 'raw' (S5's raw CID, 26 1f ...) or 'blob' (5b 82 1e ...). */
function blobIdBytes({ hash, size }, form = 'raw') {
  return Uint8Array.from(form === 'blob' ? [...BLOB_MAGIC, BLAKE3, ...hash, ...sizeBytes(size)] : [RAW_CID, BLAKE3_LEGACY, ...hash, ...sizeBytes(size)]);
}

/**
 * The S5 blob id of { hash, size } as text: 'blob' form (base32, "blob...",
 * the current spec) or 'raw' (base58 "z...", what the Dart node answers and
 * its /s5/download takes).
 */
export function blobIdText(id, form = 'blob') {
  return form === 'blob' ? `b${base32(blobIdBytes(id, 'blob'))}` : `z${base58(blobIdBytes(id, 'raw'))}`;
}

/** { hash, size } of an S5 blob id in either byte form, or undefined. */
function blobIdOfBytes(b) {
  if (b.length >= 36 && b[0] === BLOB_MAGIC[0] && b[1] === BLOB_MAGIC[1] && (b[2] === BLAKE3 || b[2] === BLAKE3_LEGACY)) {
    const size = sizeOf(b.subarray(35));
    return size === undefined ? undefined : { hash: b.slice(3, 35), size };
  }
  if (b.length >= 35 && b[0] === RAW_CID && b[1] === BLAKE3_LEGACY) {
    const size = sizeOf(b.subarray(34));
    return size === undefined ? undefined : { hash: b.slice(2, 34), size };
  }
  return undefined;
}

/** { hash, size } of an S5 blob id in text (multibase b, z, u or f), or a ParameterError. */
export function parseBlobId(text) {
  let bytes;
  if (typeof text === 'string') {
    const body = text.slice(1);
    if (text[0] === 'b') bytes = unbase32(body);
    else if (text[0] === 'z') bytes = unbase58(body);
    else if (text[0] === 'u') bytes = unbase64url(body);
    else if (text[0] === 'f' && /^([0-9a-f]{2})+$/.test(body)) bytes = Uint8Array.from(body.match(/../g), (h) => parseInt(h, 16));
  }
  const id = bytes && blobIdOfBytes(bytes);
  if (!id) throw fail(ParameterError, `not an S5 blob id (BLAKE3): ${String(text).slice(0, 100)}`);
  return id;
}

/** The S5 blob id ({ hash, size }) of bytes. */
export function blobIdOf(bytes) {
  return { hash: blake3(bytes), size: bytes.length };
}

// ----------------------------------------------------------- index blobs

const INDEX_MAGIC = new TextEncoder().encode('shoal-s5');
const INDEX_HEAD = 52, INDEX_ENTRY = 72;

/** The index blob of a version: root and [{ cid, hash, size }]. */
export function encodeIndex(root, entries) {
  const out = new Uint8Array(INDEX_HEAD + INDEX_ENTRY * entries.length);
  const view = new DataView(out.buffer);
  out.set(INDEX_MAGIC, 0);
  out[8] = 1;
  view.setUint32(12, entries.length, true);
  out.set(cidBytes(root), 16);
  entries.forEach(({ cid, hash, size }, i) => {
    const at = INDEX_HEAD + INDEX_ENTRY * i;
    out.set(cidBytes(cid), at);
    out.set(hash, at + 36);
    view.setUint32(at + 68, size, true);
  });
  return out;
}

/** { root, entries: Map(cid -> { hash, size }) } of an index blob, or a CorruptDataError. */
export function decodeIndex(bytes, from = 'S5 index') {
  const bad = (why) => fail(CorruptDataError, `${from}: not a Shoal S5 index: ${why}`);
  if (bytes.length < INDEX_HEAD || !equal(bytes.subarray(0, 8), INDEX_MAGIC)) throw bad('no "shoal-s5" magic');
  if (bytes[8] !== 1) throw bad(`version ${bytes[8]} (this reader knows 1)`);
  if (bytes[9] || bytes[10] || bytes[11]) throw bad('reserved bytes are not zero');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(12, true);
  if (n < 1 || bytes.length !== INDEX_HEAD + INDEX_ENTRY * n) throw bad(`${n} entries in ${bytes.length} bytes`);
  const cidAt = (at) => {
    const text = cidText(bytes.subarray(at, at + 36));
    try {
      cidBytes(text);
    } catch {
      throw bad(`a CID at byte ${at} is not a Shoal CID`);
    }
    return text;
  };
  const root = cidAt(16);
  const entries = new Map();
  for (let i = 0; i < n; i++) {
    const at = INDEX_HEAD + INDEX_ENTRY * i;
    const cid = cidAt(at);
    if (entries.has(cid)) throw bad(`${cid} is listed twice`);
    entries.set(cid, { hash: bytes.slice(at + 36, at + 68), size: view.getUint32(at + 68, true) });
  }
  if (!entries.has(root)) throw bad(`the root ${root} is not among its entries`);
  return { root, entries };
}

// ------------------------------------------------------ registry entries

function entryMessage(revision, data) {
  const out = new Uint8Array(10 + data.length);
  out[0] = RECORD_REGISTRY_ENTRY;
  const view = new DataView(out.buffer);
  view.setUint32(1, revision % 2 ** 32, true);
  view.setUint32(5, Math.floor(revision / 2 ** 32), true);
  out[9] = data.length;
  out.set(data, 10);
  return out;
}

/** The 33-byte registry key (ed + public key) of a name, or a ParameterError. */
function keyOfName(name) {
  const pk = unbase64url(name);
  if (!pk || pk.length !== 33 || pk[0] !== ED25519)
    throw fail(ParameterError, `not an S5 registry name (ed25519 public key, 0xed-prefixed, base64url): ${String(name).slice(0, 100)}`);
  return pk;
}

/**
 * Checks an entry as GET /s5/registry answers it ({ pk, revision, data,
 * signature }, base64url) against the key pk (33 bytes): { revision, data }
 * or a CorruptDataError.
 */
export async function verifyEntry(json, pk, from = 'S5 registry') {
  const bad = (why) => fail(CorruptDataError, `${from}: the registry entry ${why}`);
  if (!json || typeof json !== 'object') throw bad('is not a JSON object');
  const entryPk = unbase64url(json.pk), data = unbase64url(json.data), signature = unbase64url(json.signature);
  const { revision } = json;
  if (!entryPk || !equal(entryPk, pk)) throw bad('is for another key');
  if (!Number.isSafeInteger(revision) || revision < 0 || revision > MAX_REVISION) throw bad(`has the revision ${revision}`);
  if (!data || data.length > MAX_DATA) throw bad('has no data or too much');
  if (!signature || signature.length !== 64) throw bad('has no 64-byte signature');
  const key = await crypto.subtle.importKey('raw', pk.subarray(1), { name: 'Ed25519' }, false, ['verify']);
  if (!(await crypto.subtle.verify('Ed25519', key, signature, entryMessage(revision, data))))
    throw bad(`has a bad signature (revision ${revision})`);
  return { revision, data };
}

// The index blob id a registry entry's data points at.
function indexIdOf(data, from) {
  const id = data[0] === REGISTRY_CID ? blobIdOfBytes(data.subarray(1)) : undefined;
  if (!id) throw fail(CorruptDataError, `${from}: the registry entry does not point at a blob (data ${hex(data).slice(0, 100)})`);
  return id;
}

// An ed25519 signer from a 32-byte seed (Uint8Array or 64 hex digits) or a
// WebCrypto CryptoKeyPair: { pk (33 bytes), name, sign(message) }.
async function signer({ seed, keyPair }) {
  let privateKey, publicKey;
  if (seed !== undefined) {
    const bytes = typeof seed === 'string' && /^[0-9a-fA-F]{64}$/.test(seed) ? Uint8Array.from(seed.match(/../g), (h) => parseInt(h, 16)) : seed;
    if (!(bytes instanceof Uint8Array) || bytes.length !== 32) throw fail(ParameterError, 'an S5 seed is 32 bytes (a Uint8Array or 64 hex digits)');
    // PKCS #8 of an Ed25519 private key (RFC 8410): a fixed 16-byte prefix + the seed.
    const der = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20, ...bytes]);
    privateKey = await crypto.subtle.importKey('pkcs8', der, { name: 'Ed25519' }, true, ['sign']);
    publicKey = unbase64url((await crypto.subtle.exportKey('jwk', privateKey)).x);
  } else {
    if (!keyPair?.privateKey || !keyPair?.publicKey) throw fail(ParameterError, 's5Publisher needs a seed or a keyPair (WebCrypto Ed25519)');
    privateKey = keyPair.privateKey;
    publicKey = new Uint8Array(await crypto.subtle.exportKey('raw', keyPair.publicKey));
  }
  const pk = Uint8Array.from([ED25519, ...publicKey]);
  return {
    pk,
    name: base64url(pk),
    sign: async (message) => new Uint8Array(await crypto.subtle.sign('Ed25519', privateKey, message)),
  };
}

/** The S5 registry name (base64url of ed + public key) of a 32-byte seed or a key pair. */
export async function s5Name(key) {
  return (await signer(key instanceof Uint8Array || typeof key === 'string' ? { seed: key } : { keyPair: key })).name;
}

// -------------------------------------------------------------- HTTP

function nodeBase(url) {
  if (typeof url !== 'string' && !(url instanceof URL)) throw fail(ParameterError, 'an S5 node URL is needed, e.g. http://127.0.0.1:5050');
  return String(url).replace(/\/+$/, '');
}

async function readCapped(res, max, what) {
  const length = Number(res.headers.get('content-length'));
  if (length > max) {
    await res.body?.cancel();
    throw fail(CorruptDataError, `${what}: ${length} bytes, over the ${max} expected`);
  }
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const parts = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel();
      throw fail(CorruptDataError, `${what}: over the ${max} bytes expected`);
    }
    parts.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// request(method, path, { body, json, max, what, signal }) -> { status, bytes }:
// a timeout per attempt, retries with backoff for GETs that fail to answer
// (never for wrong answers), errors naming the node.
function httpClient(base, { timeout, retries, authToken, headers = {}, fetch: doFetch = globalThis.fetch }) {
  const auth = authToken ? { Authorization: `Bearer ${authToken}` } : {};
  return async function request(method, path, { body, max = 2 ** 26, what = path, signal, accept, type } = {}) {
    let last;
    const attempts = method === 'GET' ? retries + 1 : 1;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt) await new Promise((r) => setTimeout(r, 100 * 2 ** (attempt - 1)));
      const timer = AbortSignal.timeout(timeout);
      const both = signal ? AbortSignal.any([signal, timer]) : timer;
      try {
        const res = await doFetch(`${base}${path}`, { method, body, headers: { ...headers, ...auth, ...(accept ? { Accept: accept } : {}), ...(type ? { 'Content-Type': type } : {}) }, signal: both });
        if (res.status === 404) {
          await res.body?.cancel();
          return { status: 404 };
        }
        if (!res.ok) {
          const text = (await res.text()).trim().slice(0, 500);
          throw Object.assign(fail(StateError, `S5 ${base}: ${what}: HTTP ${res.status}${text ? `: ${text}` : ''}`), { status: res.status });
        }
        return { status: res.status, bytes: await readCapped(res, max, `S5 ${base}: ${what}`) };
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (err instanceof CorruptDataError || (err instanceof StateError && err.status)) throw err;
        last = timer.aborted ? fail(StateError, `S5 ${base}: ${what}: no answer after ${timeout} ms`) : fail(StateError, `S5 ${base}: ${what}: ${err?.message ?? err}`);
      }
    }
    throw last;
  };
}

// Downloads the blob { hash, size } and checks both.
async function download(request, id, form, what, signal) {
  const text = blobIdText(id, form);
  const { status, bytes } = await request('GET', `/s5/download/${text}`, { max: id.size, what: `${what} (${text})`, signal });
  if (status === 404) return undefined;
  if (bytes.length !== id.size || !equal(blake3(bytes), id.hash))
    throw fail(CorruptDataError, `${what}: the bytes of blob ${text} do not hash to it (BLAKE3 / size)`);
  return bytes;
}

async function readEntry(request, pk, who) {
  const { status, bytes } = await request('GET', `/s5/registry?pk=${base64url(pk)}`, { max: 4096, what: 'registry', accept: 'application/json' });
  if (status === 404) return undefined;
  let json;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw fail(CorruptDataError, `${who}: the registry answer is not JSON`);
  }
  return verifyEntry(json, pk, who);
}

// ---------------------------------------------------------------- source

/**
 * An S5 node as a source.  resolve(name) reads the name's registry entry
 * (signature checked; a revision older than the newest this source has seen
 * for the name is refused), downloads the index it points at, and returns
 * the root; get(cid) downloads the blob the resolved indexes name for cid
 * (BLAKE3 and size checked, then SHA-256 against the CID).  A CID no
 * resolved index lists is missing (undefined): open by name, or resolve
 * first.  options: timeout (ms per request, default 30000), retries (2),
 * maxIndex (bytes, default 64 MiB), authToken, headers, form ('raw': the
 * base58 blob ids the Dart node's /s5/download takes, the default; 'blob').
 */
export function s5Source(nodeUrl, options = {}) {
  const base = nodeBase(nodeUrl);
  const { timeout = 30_000, retries = 2, maxIndex = 2 ** 26, authToken, headers, fetch, form = 'raw' } = options;
  const request = httpClient(base, { timeout, retries, authToken, headers, fetch });
  const who = `S5 ${base}`;
  const blobs = new Map(); // cid -> { hash, size }
  const seen = new Map(); // name -> { revision, data (hex) }
  let fetched = 0, fetchedBlocks = 0;
  return {
    name: who,
    async get(cid, { signal } = {}) {
      cidBytes(cid);
      const id = blobs.get(cid);
      if (!id) return undefined;
      const bytes = await download(request, id, form, `${who}: ${cid}`, signal);
      if (bytes === undefined) return undefined;
      await verified(cid, bytes, who);
      fetched += bytes.length;
      fetchedBlocks++;
      return bytes;
    },
    async resolve(name) {
      const pk = keyOfName(name);
      const entry = await readEntry(request, pk, who);
      if (!entry) throw fail(NotFoundError, `${who}: no registry entry for ${name}`);
      const last = seen.get(name);
      if (last && entry.revision < last.revision)
        throw fail(StateError, `${who}: the registry entry of ${name} is at revision ${entry.revision}, older than revision ${last.revision} seen before`);
      if (last && entry.revision === last.revision && hex(entry.data) !== last.data)
        throw fail(StateError, `${who}: two different registry entries of ${name} carry revision ${entry.revision}`);
      const indexId = indexIdOf(entry.data, who);
      if (indexId.size > maxIndex) throw fail(CorruptDataError, `${who}: the index of ${name} is ${indexId.size} bytes, over the ${maxIndex}-byte cap`);
      const bytes = await download(request, indexId, form, `${who}: the index of ${name}`);
      if (!bytes) throw fail(NotFoundError, `${who}: the index blob ${blobIdText(indexId)} of ${name} is not on the node`);
      fetched += bytes.length;
      const { root, entries } = decodeIndex(bytes, `${who}: the index of ${name}`);
      for (const [cid, id] of entries) blobs.set(cid, id);
      seen.set(name, { revision: entry.revision, data: hex(entry.data) });
      return root;
    },
    stats() {
      return { name: who, fetchedBytes: fetched, fetchedBlocks, known: blobs.size };
    },
  };
}

// ------------------------------------------------------------- publisher

/**
 * Publishes collections to an S5 node: each block not yet uploaded under
 * this key (the previous index says) as a blob, then the version's index
 * blob, then the key's registry entry at the next revision, pointing at it.
 * options: seed (32 bytes, or 64 hex digits) or keyPair (WebCrypto Ed25519
 * CryptoKeyPair) -- the key whose registry entry is the collection's name;
 * authToken; timeout (ms per request, default 120000); concurrency
 * (uploads at once, default 4); reupload (true: upload every block, not
 * trusting the previous index); headers.
 * publish({ root, blocks, name }) -> { root, name, revision, index (blob
 * id), blocks, bytes, uploaded, uploadedBytes }.  name, when given, must be
 * this key's.
 */
export function s5Publisher(nodeUrl, options = {}) {
  const base = nodeBase(nodeUrl);
  const { seed, keyPair, authToken, timeout = 120_000, concurrency = 4, reupload = false, headers, fetch } = options;
  if ((seed === undefined) === (keyPair === undefined)) throw fail(ParameterError, 's5Publisher needs one of seed or keyPair');
  const request = httpClient(base, { timeout, retries: 2, authToken, headers, fetch });
  const who = `S5 ${base}`;
  let keys, lastRevision = -1;

  async function upload(bytes, id, what) {
    const form = new FormData();
    form.append('file', new Blob([bytes], { type: 'application/octet-stream' }), 'blob');
    const { status, bytes: answer } = await request('POST', '/s5/upload', { body: form, max: 4096, what: `upload of ${what}` });
    if (status === 404) throw fail(StateError, `${who}: /s5/upload: HTTP 404 (not an S5 node?)`);
    let cid;
    try {
      cid = JSON.parse(new TextDecoder().decode(answer)).cid;
    } catch {
      throw fail(CorruptDataError, `${who}: the upload of ${what} answered no JSON { cid }`);
    }
    let got;
    try {
      got = parseBlobId(cid);
    } catch {
      throw fail(CorruptDataError, `${who}: the upload of ${what} answered ${String(cid).slice(0, 100)}, not a BLAKE3 blob id`);
    }
    if (got.size !== id.size || !equal(got.hash, id.hash))
      throw fail(CorruptDataError, `${who}: the upload of ${what} answered the blob id ${cid}, not ${blobIdText(id, 'raw')}`);
  }

  return {
    name: who,
    /** This publisher's registry name (resolves through s5Source().resolve). */
    async registryName() {
      keys ??= await signer({ seed, keyPair });
      return keys.name;
    },
    async publish({ root, blocks, name }) {
      cidBytes(root);
      if (!Array.isArray(blocks)) throw fail(ParameterError, 's5Publisher.publish needs blocks: [{ cid, bytes }]');
      keys ??= await signer({ seed, keyPair });
      if (name !== undefined && name !== keys.name)
        throw fail(ParameterError, `s5Publisher: the name ${name} is not this key's (${keys.name}); an S5 name is the key`);
      if (!blocks.some((b) => b.cid === root)) throw fail(ParameterError, `s5Publisher: the root ${root} is not among the blocks`);
      const seenCids = new Set();
      blocks = blocks.filter((b) => !seenCids.has(b.cid) && seenCids.add(b.cid)); // the index lists each CID once
      // The previous version: its revision, and the blobs it already has.
      const previous = await readEntry(request, keys.pk, who);
      const known = new Map();
      if (previous && !reupload) {
        const indexId = indexIdOf(previous.data, who);
        const bytes = await download(request, indexId, 'raw', `${who}: the previous index of ${keys.name}`);
        if (!bytes) throw fail(NotFoundError, `${who}: the previous index of ${keys.name} is not on the node (publish with reupload: true)`);
        for (const [cid, id] of decodeIndex(bytes, `${who}: the previous index of ${keys.name}`).entries) known.set(cid, id);
      }
      const entries = [];
      let bytes = 0, uploaded = 0, uploadedBytes = 0;
      // (entries in the order of blocks, so that the same version gives the same index blob)
      const one = async ({ cid, bytes: data }, i) => {
        await verified(cid, data, 's5Publisher'); // a damaged store must not publish under a right name
        const id = blobIdOf(data);
        const had = known.get(cid);
        if (!had || had.size !== id.size || !equal(had.hash, id.hash)) {
          await upload(data, id, cid);
          uploaded++;
          uploadedBytes += data.length;
        }
        entries[i] = { cid, ...id };
        bytes += data.length;
      };
      for (let i = 0; i < blocks.length; i += concurrency) await Promise.all(blocks.slice(i, i + concurrency).map((b, j) => one(b, i + j)));
      const index = encodeIndex(root, entries);
      const indexId = blobIdOf(index);
      await upload(index, indexId, `the index of ${root}`);
      const revision = Math.max(previous?.revision ?? 0, lastRevision) + 1;
      if (revision > MAX_REVISION) throw fail(StateError, `${who}: the registry entry of ${keys.name} is at its last revision`);
      const data = Uint8Array.from([REGISTRY_CID, ...blobIdBytes(indexId, 'raw')]);
      const signature = await keys.sign(entryMessage(revision, data));
      const body = JSON.stringify({ pk: base64url(keys.pk), revision, data: base64url(data), signature: base64url(signature) });
      await request('POST', '/s5/registry', { body, type: 'application/json', what: 'registry', max: 4096 });
      lastRevision = revision;
      return {
        root, name: keys.name, revision, index: blobIdText(indexId), blocks: blocks.length, bytes, uploaded, uploadedBytes,
      };
    },
  };
}
