// gateway-server.mjs -- a trustless IPFS gateway over a folder of blocks
// (what `shoal build --collection` and fileStore write), a CAR file, or any
// store: enough of the protocol (specs.ipfs.tech/http-gateways/trustless-
// gateway) for Shoal's sources and other IPFS clients.
//
//   GET /ipfs/{cid}?format=raw   (or Accept: application/vnd.ipld.raw)  one block
//   GET /ipfs/{cid}?format=car   (or Accept: application/vnd.ipld.car)  the DAG from cid,
//                                 depth first, each block once (dag-scope=all)
//   HEAD of either; 404 for a block it does not have; 400 for a bad request.
//
// Node only (node:http).  Listens on 127.0.0.1 unless told otherwise.

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { carBlocks, carOf, cidBytes, dagBlocks } from './cid.mjs';

const RAW_TYPE = 'application/vnd.ipld.raw';
const CAR_TYPE = 'application/vnd.ipld.car';

/** get(cid) over a folder of blocks (DIR/blocks/<cid>) or a CAR's blocks. */
export async function blockSource({ dir, car, store }) {
  if (store) return (cid) => store.get(cid);
  if (car) {
    const blocks = new Map((await carBlocks(new Uint8Array(await readFile(car)), car)).map((b) => [b.cid, b.bytes]));
    return async (cid) => blocks.get(cid);
  }
  return async (cid) => {
    try {
      return new Uint8Array(await readFile(path.join(dir, 'blocks', cid)));
    } catch (err) {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    }
  };
}

/**
 * An http.Server serving blocks from { dir } (a collection folder), { car }
 * (a CAR file) or { store } (any store).  options.onRequest(req) sees each
 * request (tests use it to count).
 */
export async function createGatewayServer(from, { onRequest } = {}) {
  const get = await blockSource(from);
  return createServer(async (req, res) => {
    onRequest?.(req);
    try {
      const url = new URL(req.url, 'http://localhost');
      const match = /^\/ipfs\/([a-z2-7]+)\/?$/.exec(url.pathname);
      if (!match || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(match ? 405 : 400).end();
        return;
      }
      const cid = match[1];
      try {
        cidBytes(cid);
      } catch {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('not a CIDv1 sha2-256 in base32');
        return;
      }
      const accept = req.headers.accept ?? '';
      const format = url.searchParams.get('format') ?? (accept.includes(CAR_TYPE) ? 'car' : accept.includes(RAW_TYPE) ? 'raw' : null);
      if (format === 'car') {
        const blocks = await dagBlocks(get, cid);
        if (!blocks) {
          res.writeHead(404).end();
          return;
        }
        const car = carOf(cid, blocks);
        res.writeHead(200, { 'content-type': CAR_TYPE, 'content-length': car.length, 'cache-control': 'public, max-age=29030400, immutable' });
        res.end(req.method === 'HEAD' ? undefined : car);
        return;
      }
      if (format !== 'raw') {
        res.writeHead(406, { 'content-type': 'text/plain' }).end('ask for format=raw or format=car');
        return;
      }
      const bytes = await get(cid);
      if (!bytes) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': RAW_TYPE, 'content-length': bytes.length, 'cache-control': 'public, max-age=29030400, immutable' });
      res.end(req.method === 'HEAD' ? undefined : bytes);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err?.message ?? err));
    }
  });
}
