// kubo-server.mjs -- a loopback stand-in for a Kubo node's HTTP RPC API
// (Kubo cannot be installed here), written from Kubo's RPC reference
// (docs.ipfs.tech/reference/kubo/rpc), enough for kuboPublisher and
// kuboSource and independent of them: CIDs through multiformats, CARs read
// by @ipld/car.
//
//   POST /api/v0/block/put     multipart files -> {"Key","Size"} per file
//                              (cid-codec, mhtype, mhlen as Kubo takes them)
//   POST /api/v0/block/get     ?arg=cid -> the bytes (text/plain, as Kubo)
//   POST /api/v0/block/stat    ?arg=cid -> {"Key","Size"}
//   POST /api/v0/dag/import    a multipart CAR -> {"Root":...} per root
//                              when pin-roots, {"Stats":...} when stats
//   POST /api/v0/dag/export    ?arg=cid -> a CAR of the DAG
//   POST /api/v0/pin/add       ?arg=cid&recursive -> {"Pins":[cid]} (the DAG
//                              must be whole)
//   POST /api/v0/name/publish  ?arg=/ipfs/cid&key=name -> {"Name","Value"}
//   POST /api/v0/name/resolve  ?arg=name -> {"Path"}
// Anything else: 404 "404 page not found"; GET: 405.  Failures: HTTP 500
// with {"Message", "Code": 0, "Type": "error"}, as Kubo answers.
//
// server.faults (mutable) makes it lie: { wrongCid, wrongSize, tamper,
// wrongRoot, wrongCount, wrongPin, fail: 'command' -> 500, hang: 'command' }.
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { CarReader, CarWriter } from '@ipld/car';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';
import * as raw from 'multiformats/codecs/raw';
import * as dagCbor from '@ipld/dag-cbor';

const CODECS = { raw: raw.code, 'dag-cbor': dagCbor.code, 'dag-pb': 0x70 };

/** The parts of a multipart/form-data body: [{ name, filename, data }]. */
export function parseMultipart(body, contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType ?? '');
  if (!m) throw new Error('not multipart: no boundary');
  const delimiter = Buffer.from(`--${m[1] ?? m[2]}`);
  const parts = [];
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    at += delimiter.length;
    if (body.subarray(at, at + 2).toString() === '--') break; // the closing delimiter
    at += 2; // CRLF
    const headEnd = body.indexOf('\r\n\r\n', at);
    if (headEnd < 0) throw new Error('multipart: a part without a header end');
    const head = body.subarray(at, headEnd).toString();
    const next = body.indexOf(delimiter, headEnd + 4);
    if (next < 0) throw new Error('multipart: no closing delimiter');
    const data = body.subarray(headEnd + 4, next - 2); // minus the CRLF before the delimiter
    const disposition = /content-disposition:([^\r\n]*)/i.exec(head)?.[1] ?? '';
    parts.push({
      name: /\bname="([^"]*)"/.exec(disposition)?.[1],
      filename: /\bfilename="([^"]*)"/.exec(disposition)?.[1],
      data: new Uint8Array(data),
    });
    at = next;
  }
  return parts;
}

async function cidOf(bytes, codec) {
  return CID.createV1(codec, await sha256.digest(bytes)).toString();
}

/**
 * An http.Server behaving as Kubo's RPC API.  options: keys (IPNS key
 * names it has; default ['self']), onRequest(command).  server.blocks,
 * server.pins, server.names expose its state to tests.
 */
export function createKuboServer({ keys = ['self'], onRequest } = {}) {
  const blocks = new Map(); // cid text -> bytes
  const pins = new Set();
  const names = new Map(); // IPNS name -> path
  const keyNames = new Map(keys.map((k) => [k, `k51${createHash('sha256').update(`key:${k}`).digest('hex').slice(0, 59)}`]));
  const faults = {};

  const kuboError = (res, message, status = 500) =>
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ Message: message, Code: 0, Type: 'error' }));
  const json = (res, ...objects) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(objects.map((o) => JSON.stringify(o)).join('\n') + '\n');

  // Every block reachable from root, or the first one missing.
  function walk(root) {
    const seen = new Set(), todo = [root];
    while (todo.length) {
      const cid = todo.pop();
      if (seen.has(cid)) continue;
      seen.add(cid);
      const bytes = blocks.get(cid);
      if (!bytes) return { missing: cid };
      const parsed = CID.parse(cid);
      if (parsed.code === dagCbor.code) {
        const links = [];
        const visit = (v) => {
          const asCid = CID.asCID(v);
          if (asCid) links.push(asCid.toString());
          else if (Array.isArray(v)) v.forEach(visit);
          else if (v && typeof v === 'object' && !(v instanceof Uint8Array)) Object.values(v).forEach(visit);
        };
        visit(dagCbor.decode(bytes));
        todo.push(...links.reverse());
      }
    }
    return { cids: [...seen] };
  }

  const commands = {
    async 'block/put'(q, body, req, res) {
      const codecName = q.get('cid-codec') ?? (q.get('format') === 'v0' || !q.get('format') ? 'dag-pb' : q.get('format'));
      const mhtype = q.get('mhtype') ?? 'sha2-256';
      const mhlen = Number(q.get('mhlen') ?? -1);
      if (!(codecName in CODECS)) return kuboError(res, `unrecognized codec: ${codecName}`);
      if (mhtype !== 'sha2-256' || (mhlen !== -1 && mhlen !== 32)) return kuboError(res, `unsupported hash ${mhtype}/${mhlen} in this test server`);
      const files = parseMultipart(body, req.headers['content-type']);
      if (!files.length) return kuboError(res, 'file argument \'data\' is required', 400);
      const out = [];
      for (const { data } of files) {
        let cid = await cidOf(data, CODECS[codecName]);
        blocks.set(cid, data);
        if (faults.wrongCid) cid = await cidOf(new TextEncoder().encode(`not ${cid}`), CODECS[codecName]);
        out.push({ Key: cid, Size: faults.wrongSize ? data.length + 1 : data.length });
      }
      json(res, ...out);
    },
    async 'block/get'(q, body, req, res) {
      const cid = q.get('arg');
      if (!cid) return kuboError(res, 'argument "cid" is required', 400);
      const bytes = blocks.get(cid);
      if (!bytes) return kuboError(res, `block was not found locally (offline): ipld: could not find ${cid}`);
      const out = Buffer.from(bytes);
      if (faults.tamper) out[out.length >> 1] ^= 1;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': out.length }).end(out);
    },
    async 'block/stat'(q, body, req, res) {
      const bytes = blocks.get(q.get('arg'));
      if (!bytes) return kuboError(res, `block was not found locally (offline): ipld: could not find ${q.get('arg')}`);
      json(res, { Key: q.get('arg'), Size: bytes.length });
    },
    async 'dag/import'(q, body, req, res) {
      const pinRoots = q.get('pin-roots') !== 'false';
      const out = [];
      let count = 0, size = 0;
      for (const { data } of parseMultipart(body, req.headers['content-type'])) {
        let reader;
        try {
          reader = await CarReader.fromBytes(data);
        } catch (err) {
          return kuboError(res, `import failed: ${err.message}`);
        }
        for await (const { cid, bytes } of reader.blocks()) {
          const hash = await sha256.digest(bytes);
          if (!equalBytes(hash.bytes, cid.multihash.bytes)) return kuboError(res, `import failed after block "${cid}": hash mismatch`);
          blocks.set(cid.toString(), bytes);
          count++;
          size += bytes.length;
        }
        if (pinRoots) {
          for (const root of await reader.getRoots()) {
            const r = root.toString();
            const { missing } = walk(r);
            if (!missing) pins.add(r);
            out.push({ Root: { Cid: { '/': faults.wrongRoot ? await cidOf(new Uint8Array(1), raw.code) : r }, PinErrorMsg: missing ? `block was not found locally (offline): ipld: could not find ${missing}` : '' } });
          }
        }
      }
      if (q.get('stats') === 'true') out.push({ Stats: { BlockCount: faults.wrongCount ? count - 1 : count, BlockBytesCount: size } });
      json(res, ...out);
    },
    async 'dag/export'(q, body, req, res) {
      const root = q.get('arg');
      const { missing, cids } = walk(root);
      if (missing) return kuboError(res, `block was not found locally (offline): ipld: could not find ${missing}`);
      const { writer, out } = CarWriter.create([CID.parse(root)]);
      const chunks = [];
      const done = (async () => { for await (const c of out) chunks.push(c); })();
      for (const cid of cids) await writer.put({ cid: CID.parse(cid), bytes: blocks.get(cid) });
      await writer.close();
      await done;
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.car' }).end(Buffer.concat(chunks));
    },
    async 'pin/add'(q, body, req, res) {
      const root = q.get('arg');
      if (!root) return kuboError(res, 'argument "ipfs-path" is required', 400);
      const { missing } = q.get('recursive') === 'false' ? { missing: blocks.has(root) ? undefined : root } : walk(root);
      if (missing) return kuboError(res, `pin: block was not found locally (offline): ipld: could not find ${missing}`);
      pins.add(root);
      json(res, { Pins: [faults.wrongPin ? await cidOf(new Uint8Array(2), raw.code) : root] });
    },
    async 'name/publish'(q, body, req, res) {
      const value = q.get('arg') ?? '';
      const key = q.get('key') ?? 'self';
      if (!keyNames.has(key)) return kuboError(res, 'no key by the given name was found');
      const m = /^\/ipfs\/(.+)$/.exec(value);
      if (!m) return kuboError(res, `invalid path "${value}"`);
      try {
        CID.parse(m[1]);
      } catch {
        return kuboError(res, `invalid path "${value}": invalid cid`);
      }
      const name = keyNames.get(key);
      names.set(name, value);
      json(res, { Name: name, Value: value });
    },
    async 'name/resolve'(q, body, req, res) {
      const name = (q.get('arg') ?? '').replace(/^\/ipns\//, '');
      const path = names.get(name);
      if (!path) return kuboError(res, `could not resolve name: /ipns/${name}`);
      json(res, { Path: path });
    },
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const command = url.pathname.replace(/^\/api\/v0\//, '');
    onRequest?.(command);
    if (!url.pathname.startsWith('/api/v0/') || !(command in commands)) return res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found');
    if (req.method !== 'POST') return res.writeHead(405, { 'content-type': 'text/plain' }).end('405 - Method Not Allowed');
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      if (faults.hang === command) return; // never answers
      if (faults.fail === command) return kuboError(res, `${command} failed: this test server was told to fail`);
      try {
        await commands[command](url.searchParams, Buffer.concat(chunks), req, res);
      } catch (err) {
        kuboError(res, err.message);
      }
    });
  });
  Object.assign(server, { blocks, pins, names, faults, keyNames });
  return server;
}

function equalBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
