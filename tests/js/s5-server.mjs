// s5-server.mjs -- a loopback stand-in for an S5 node's HTTP API (no S5 node
// installs here), written from the Dart node's documented API and the S5
// spec (docs.sfive.net: blobs, registry), independent of js/src/s5.mjs:
// BLAKE3 from @noble/hashes, its own base58 and blob ids.
//
//   POST /s5/upload             multipart field "file" (or a raw body) ->
//                               {"cid": "z..."} (S5 raw CID 26 1f + BLAKE3 +
//                               size LE trimmed, base58btc), as the Dart node
//   GET  /s5/download/{cid}     the blob (application/octet-stream); z...
//                               and blob... ids both taken; 404 when absent
//   GET  /s5/registry?pk=...    {pk, revision, data, signature} (base64url,
//                               no padding); 404 when none
//   POST /s5/registry           the same JSON; checked as the node's
//                               registry does (pk 33 bytes 0xed-prefixed, data
//                               <= 64 bytes, ed25519 signature over 07 | rev
//                               u64 LE | len | data, revision above the
//                               stored one) -> 204; else 500 with the reason
// authToken: every request needs "Authorization: Bearer <token>" (401).
//
// server.faults (mutable) makes it lie: flip (a byte of every download
// flipped), extra (a byte appended), entry(entry) -> the entry to answer
// (a stale or doctored one), answerCid(cid) -> the upload answer.
import { createServer } from 'node:http';
import { blake3 } from '@noble/hashes/blake3.js';

import { parseMultipart } from './kubo-server.mjs';

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

function toBase58(bytes) {
  let n = 0n;
  for (const b of bytes) n = n * 256n + BigInt(b);
  let out = '';
  while (n > 0n) {
    out = B58[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b) break;
    out = `1${out}`;
  }
  return out;
}

function fromBase58(text) {
  let n = 0n;
  for (const ch of text) {
    const v = B58.indexOf(ch);
    if (v < 0) throw new Error(`not base58: ${text}`);
    n = n * 58n + BigInt(v);
  }
  const out = [];
  while (n > 0n) {
    out.unshift(Number(n & 255n));
    n >>= 8n;
  }
  for (const ch of text) {
    if (ch !== '1') break;
    out.unshift(0);
  }
  return Uint8Array.from(out);
}

function fromBase32(text) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = '';
  for (const ch of text) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  return Uint8Array.from(bits.match(/.{8}/g) ?? [], (b) => parseInt(b, 2));
}

function sizeLE(size) {
  const out = [];
  for (let v = BigInt(size); v > 0n; v >>= 8n) out.push(Number(v & 255n));
  return out.length ? out : [0];
}

/** The Dart node's answer for bytes: its raw CID in base58. */
export function rawCid(bytes) {
  return `z${toBase58(Uint8Array.from([0x26, 0x1f, ...blake3(bytes), ...sizeLE(bytes.length)]))}`;
}

/** The BLAKE3 hash (hex) a blob id names, either form. */
export function hashOfCid(text) {
  const bytes = text[0] === 'z' ? fromBase58(text.slice(1)) : text[0] === 'b' ? fromBase32(text.slice(1)) : new Uint8Array();
  if (bytes[0] === 0x26 && bytes[1] === 0x1f) return Buffer.from(bytes.subarray(2, 34)).toString('hex');
  if (bytes[0] === 0x5b && bytes[1] === 0x82) return Buffer.from(bytes.subarray(3, 35)).toString('hex');
  throw new Error(`not a blob CID: ${text}`);
}

const b64 = (bytes) => Buffer.from(bytes).toString('base64url');
const unb64 = (text) => new Uint8Array(Buffer.from(text, 'base64url'));

async function verifySignature(pk, revision, data, signature) {
  const message = Buffer.alloc(10 + data.length);
  message[0] = 0x07;
  message.writeBigUInt64LE(BigInt(revision), 1);
  message[9] = data.length;
  Buffer.from(data).copy(message, 10);
  const key = await crypto.subtle.importKey('raw', pk.subarray(1), { name: 'Ed25519' }, false, ['verify']);
  return crypto.subtle.verify('Ed25519', key, signature, message);
}

/** An http.Server behaving as an S5 node's HTTP API.  server.blobs, server.registry, server.faults. */
export function createS5Server({ authToken, onRequest } = {}) {
  const blobs = new Map(); // BLAKE3 hex -> bytes
  const registry = new Map(); // pk base64url -> { pk, revision, data, signature } (JSON as served)
  const history = []; // every entry accepted, oldest first
  const faults = {};

  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    onRequest?.(req.method, url.pathname);
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const text = (status, message) => res.writeHead(status, { 'content-type': 'text/plain' }).end(message);
      try {
        if (authToken && req.headers.authorization !== `Bearer ${authToken}`) return text(401, 'Unauthorized');
        if (req.method === 'POST' && url.pathname === '/s5/upload') {
          const type = req.headers['content-type'] ?? '';
          const bytes = type.startsWith('multipart/form-data')
            ? parseMultipart(body, type).find((p) => p.name === 'file')?.data
            : new Uint8Array(body);
          if (!bytes) return text(500, 'no file');
          const cid = rawCid(bytes);
          blobs.set(hashOfCid(cid), bytes);
          return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ cid: faults.answerCid?.(cid) ?? cid }));
        }
        const download = /^\/s5\/download\/([^/]+)$/.exec(url.pathname);
        if (req.method === 'GET' && download) {
          let hash;
          try {
            hash = hashOfCid(download[1]);
          } catch (err) {
            return text(500, err.message);
          }
          const bytes = blobs.get(hash);
          if (!bytes) return text(404, 'not found');
          let out = Buffer.from(bytes);
          if (faults.flip && out.length) out[out.length >> 1] ^= 1;
          if (faults.extra) out = Buffer.concat([out, Buffer.of(0)]);
          return res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': out.length }).end(out);
        }
        if (url.pathname === '/s5/registry' && req.method === 'GET') {
          const pk = url.searchParams.get('pk');
          if (!pk) return text(500, 'pk is required');
          let entry = registry.get(b64(unb64(pk)));
          if (faults.entry) entry = faults.entry(entry, history);
          if (!entry) return text(404, '');
          return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(entry));
        }
        if (url.pathname === '/s5/registry' && req.method === 'POST') {
          const map = JSON.parse(body.toString('utf8'));
          const pk = unb64(map.pk), data = unb64(map.data), signature = unb64(map.signature);
          const { revision } = map;
          if (pk.length !== 33) return text(500, 'Invalid pubkey');
          if (pk[0] !== 0xed) return text(500, 'Only ed25519 keys are supported');
          if (!Number.isInteger(revision) || revision < 0 || revision > 281474976710656) return text(500, 'Invalid revision');
          if (data.length > 64) return text(500, 'Data too long');
          if (!(await verifySignature(pk, revision, data, signature))) return text(500, 'Invalid signature found');
          const key = b64(pk);
          if (registry.has(key) && registry.get(key).revision >= revision) return text(500, 'Revision number too low');
          const entry = { pk: b64(pk), revision, data: b64(data), signature: b64(signature) };
          registry.set(key, entry);
          history.push(entry);
          return res.writeHead(204).end();
        }
        return text(404, 'not found');
      } catch (err) {
        return text(500, String(err?.message ?? err));
      }
    });
  });
  Object.assign(server, { blobs, registry, history, faults });
  return server;
}
