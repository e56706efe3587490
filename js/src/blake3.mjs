// blake3.mjs -- BLAKE3 (the 32-byte default hash, no key, no XOF), for S5
// blob ids: an S5 blob is named by the BLAKE3 hash and size of its bytes, and
// the S5 source checks both before anything else sees a blob.
//
// Why here and not @noble/hashes: the shoal package has no dependencies, and
// its packaging tests install the tarball into fresh projects offline; 120
// lines keep it so.  tests/js/s5.test.mjs checks this file against
// @noble/hashes (a devDependency) over lengths around every block and chunk
// boundary and a few multi-chunk trees.
//
// The algorithm, from the BLAKE3 paper (sections 2.1-2.6): the input is cut
// into 1024-byte chunks of 64-byte blocks; each chunk is compressed block by
// block into a chaining value (CHUNK_START on its first block, CHUNK_END on
// its last, the chunk's index as the counter); chaining values are merged
// pairwise into a binary tree whose left subtrees are complete (the stack of
// section 5.1.2: after chunk i, merge while i+1 has trailing zero bits); the
// last compression -- of the only chunk's last block, or of the top parent --
// carries ROOT.  Words are little-endian.  Not constant time: it hashes
// public data.

const IV = Uint32Array.of(0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19);
const PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
const CHUNK_START = 1, CHUNK_END = 2, PARENT = 4, ROOT = 8;
const BLOCK = 64, CHUNK = 1024;

const rotr = (x, n) => (x >>> n) | (x << (32 - n));

// The message word order of each of the 7 rounds (the permutation applied
// round after round, precomputed).
const SCHEDULE = [];
for (let r = 0, order = [...Array(16).keys()]; r < 7; r++, order = PERMUTATION.map((i) => order[i])) SCHEDULE.push(order);

// The compression function: cv (8 words), m (16 words), counter, block
// length and flags -> the first 8 words of the output (all Shoal needs),
// written to out (which may be cv).  The state lives in 16 locals; each
// round is the column step then the diagonal step, G written out.
function compress(cv, m, counter, len, flags, out) {
  let v0 = cv[0], v1 = cv[1], v2 = cv[2], v3 = cv[3], v4 = cv[4], v5 = cv[5], v6 = cv[6], v7 = cv[7];
  let v8 = IV[0], v9 = IV[1], v10 = IV[2], v11 = IV[3];
  let v12 = counter | 0, v13 = Math.floor(counter / 2 ** 32) | 0, v14 = len, v15 = flags;
  for (let r = 0; r < 7; r++) {
    const o = SCHEDULE[r];
    v0 = (v0 + v4 + m[o[0]]) | 0; v12 = rotr(v12 ^ v0, 16); v8 = (v8 + v12) | 0; v4 = rotr(v4 ^ v8, 12);
    v0 = (v0 + v4 + m[o[1]]) | 0; v12 = rotr(v12 ^ v0, 8); v8 = (v8 + v12) | 0; v4 = rotr(v4 ^ v8, 7);
    v1 = (v1 + v5 + m[o[2]]) | 0; v13 = rotr(v13 ^ v1, 16); v9 = (v9 + v13) | 0; v5 = rotr(v5 ^ v9, 12);
    v1 = (v1 + v5 + m[o[3]]) | 0; v13 = rotr(v13 ^ v1, 8); v9 = (v9 + v13) | 0; v5 = rotr(v5 ^ v9, 7);
    v2 = (v2 + v6 + m[o[4]]) | 0; v14 = rotr(v14 ^ v2, 16); v10 = (v10 + v14) | 0; v6 = rotr(v6 ^ v10, 12);
    v2 = (v2 + v6 + m[o[5]]) | 0; v14 = rotr(v14 ^ v2, 8); v10 = (v10 + v14) | 0; v6 = rotr(v6 ^ v10, 7);
    v3 = (v3 + v7 + m[o[6]]) | 0; v15 = rotr(v15 ^ v3, 16); v11 = (v11 + v15) | 0; v7 = rotr(v7 ^ v11, 12);
    v3 = (v3 + v7 + m[o[7]]) | 0; v15 = rotr(v15 ^ v3, 8); v11 = (v11 + v15) | 0; v7 = rotr(v7 ^ v11, 7);
    v0 = (v0 + v5 + m[o[8]]) | 0; v15 = rotr(v15 ^ v0, 16); v10 = (v10 + v15) | 0; v5 = rotr(v5 ^ v10, 12);
    v0 = (v0 + v5 + m[o[9]]) | 0; v15 = rotr(v15 ^ v0, 8); v10 = (v10 + v15) | 0; v5 = rotr(v5 ^ v10, 7);
    v1 = (v1 + v6 + m[o[10]]) | 0; v12 = rotr(v12 ^ v1, 16); v11 = (v11 + v12) | 0; v6 = rotr(v6 ^ v11, 12);
    v1 = (v1 + v6 + m[o[11]]) | 0; v12 = rotr(v12 ^ v1, 8); v11 = (v11 + v12) | 0; v6 = rotr(v6 ^ v11, 7);
    v2 = (v2 + v7 + m[o[12]]) | 0; v13 = rotr(v13 ^ v2, 16); v8 = (v8 + v13) | 0; v7 = rotr(v7 ^ v8, 12);
    v2 = (v2 + v7 + m[o[13]]) | 0; v13 = rotr(v13 ^ v2, 8); v8 = (v8 + v13) | 0; v7 = rotr(v7 ^ v8, 7);
    v3 = (v3 + v4 + m[o[14]]) | 0; v14 = rotr(v14 ^ v3, 16); v9 = (v9 + v14) | 0; v4 = rotr(v4 ^ v9, 12);
    v3 = (v3 + v4 + m[o[15]]) | 0; v14 = rotr(v14 ^ v3, 8); v9 = (v9 + v14) | 0; v4 = rotr(v4 ^ v9, 7);
  }
  out[0] = v0 ^ v8; out[1] = v1 ^ v9; out[2] = v2 ^ v10; out[3] = v3 ^ v11;
  out[4] = v4 ^ v12; out[5] = v5 ^ v13; out[6] = v6 ^ v14; out[7] = v7 ^ v15;
  return out;
}

// The 16 message words of bytes[at, at + len), zero-padded.
function words(bytes, at, len, m) {
  if (len === BLOCK) {
    for (let i = 0, j = at; i < 16; i++, j += 4) m[i] = bytes[j] | (bytes[j + 1] << 8) | (bytes[j + 2] << 16) | (bytes[j + 3] << 24);
    return m;
  }
  m.fill(0);
  for (let i = 0; i < len; i++) m[i >> 2] |= bytes[at + i] << ((i & 3) * 8);
  return m;
}

// Compresses chunk `index` up to (not including) its last block; returns the
// last block's inputs so the caller decides on ROOT.
function chunkTail(bytes, index, m) {
  const start = index * CHUNK, end = Math.min(start + CHUNK, bytes.length);
  const cv = Uint32Array.from(IV);
  let at = start, flags = CHUNK_START;
  while (end - at > BLOCK) {
    compress(cv, words(bytes, at, BLOCK, m), index, BLOCK, flags, cv);
    flags = 0;
    at += BLOCK;
  }
  return { cv, m: Uint32Array.from(words(bytes, at, end - at, m)), counter: index, len: end - at, flags: flags | CHUNK_END };
}

/** The 32-byte BLAKE3 hash of bytes (a Uint8Array). */
export function blake3(bytes) {
  const m = new Uint32Array(16);
  const chunks = Math.max(1, Math.ceil(bytes.length / CHUNK));
  const stack = [];
  const parent = (left, right) => Uint32Array.from([...left, ...right]);
  for (let i = 0; i < chunks - 1; i++) {
    const t = chunkTail(bytes, i, m);
    let cv = compress(t.cv, t.m, t.counter, t.len, t.flags, new Uint32Array(8));
    for (let n = i + 1; (n & 1) === 0; n >>>= 1) cv = compress(IV, parent(stack.pop(), cv), 0, BLOCK, PARENT, new Uint32Array(8));
    stack.push(cv);
  }
  // The last chunk, then the parents above it, the final one as the root.
  let node = chunkTail(bytes, chunks - 1, m);
  while (stack.length) {
    const cv = compress(node.cv, node.m, node.counter, node.len, node.flags, new Uint32Array(8));
    node = { cv: IV, m: parent(stack.pop(), cv), counter: 0, len: BLOCK, flags: PARENT };
  }
  const out = compress(node.cv, node.m, node.counter, node.len, node.flags | ROOT, new Uint32Array(8));
  const hash = new Uint8Array(32);
  for (let i = 0; i < 32; i++) hash[i] = out[i >> 2] >>> ((i & 3) * 8);
  return hash;
}
