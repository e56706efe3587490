// helia.mjs -- a Helia node (js IPFS) as a source and as a publisher.
//
// Shoal does not import Helia: the caller builds a node (createHelia(), or
// the light builders for a small bundle) and passes it in, so Helia stays an
// optional peer dependency and the core package stays small.  Everything
// here goes through the node's public API: helia.blockstore (get/put,
// fetching over bitswap or whatever block brokers the node has),
// helia.routing.provide, helia.pins and helia.getCodec.
//
// CIDs: Shoal's are text; Helia's blockstore wants CID objects of the
// multiformats version Helia itself was built with.  Rather than import
// multiformats (another dependency, and perhaps another version than the
// node's), the node's own dag-cbor codec makes them: a CID is tag 42 over
// 0x00 + its bytes in DAG-CBOR, and decoding that gives the node's CID class.
// Every Helia node that can serve Shoal's manifests has dag-cbor (they are
// dag-cbor blocks), so this asks nothing new of it.
//
// Trust: Helia (its bitswap) checks blocks against their CIDs, but a source
// must not rely on what it wraps; every block is hashed again here before it
// is returned, as gatewaySource does.

import { ParameterError, StateError } from '../dist/errors.mjs';
import { fail } from './fail.mjs';
import { DAG_CBOR, cidBytes, verified } from './cid.mjs';

function checkHelia(helia, what) {
  if (!helia || typeof helia !== 'object' || !helia.blockstore || typeof helia.blockstore.get !== 'function' ||
      typeof helia.getCodec !== 'function')
    throw fail(ParameterError, `${what} needs a Helia node (from createHelia() or createHeliaLight())`);
}

// A function from CID text to the node's CID objects (see the top of the file).
function cidMaker(helia) {
  let codec;
  return async (text) => {
    const bytes = cidBytes(text);
    if (!codec) {
      try {
        codec = await helia.getCodec(DAG_CBOR);
      } catch (err) {
        throw fail(StateError, `the Helia node has no dag-cbor codec (create it with codecs: [dagCbor] from @ipld/dag-cbor): ${err?.message ?? err}`);
      }
    }
    const tagged = new Uint8Array(5 + bytes.length);
    tagged.set([0xd8, 42, 0x58, bytes.length + 1, 0]);
    tagged.set(bytes, 5);
    return codec.decode(tagged);
  };
}

// All chunks of a blockstore answer (Helia 6+ blockstores yield a block as
// an iterable of chunks; older ones return a Uint8Array) as one array.
async function collect(answer) {
  const value = await answer;
  if (value instanceof Uint8Array) return value;
  const parts = [];
  let size = 0;
  for await (const part of value) {
    parts.push(part);
    size += part.length;
  }
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function notFound(err) {
  const name = err?.name ?? '';
  return name === 'NotFoundError' || name === 'BlockNotFoundWhileOfflineError' || err?.code === 'ERR_NOT_FOUND';
}

/**
 * A Helia node as a source: blocks from its blockstore, or fetched by it
 * (bitswap, gateways: whatever the node was built with), each verified
 * against its CID here.  options: timeout (ms per block, default 30000:
 * after it the block is an error, so that anySource asks elsewhere),
 * offline (true: only what the node already holds; a missing block is
 * undefined).
 */
export function heliaSource(helia, options = {}) {
  checkHelia(helia, 'heliaSource');
  const { timeout = 30_000, offline = false } = options;
  const toCid = cidMaker(helia);
  const name = `helia:${helia.libp2p?.peerId?.toString?.() ?? 'node'}`;
  let fetched = 0, blocks = 0;
  return {
    name,
    async get(cid, { signal } = {}) {
      const key = await toCid(cid);
      const timer = AbortSignal.timeout(timeout);
      const both = signal ? AbortSignal.any([signal, timer]) : timer;
      let bytes;
      try {
        bytes = await collect(helia.blockstore.get(key, { signal: both, offline }));
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (notFound(err)) return undefined;
        if (timer.aborted) throw fail(StateError, `${name}: ${cid}: no block after ${timeout} ms`);
        throw fail(StateError, `${name}: ${cid}: ${err?.message ?? err}`);
      }
      await verified(cid, bytes, name);
      fetched += bytes.length;
      blocks++;
      return bytes;
    },
    stats() {
      return { name, fetchedBytes: fetched, fetchedBlocks: blocks };
    },
  };
}

/**
 * A Helia node as a publisher, for Collection.publish: every block goes
 * into helia.blockstore (each hashed against its CID first: a damaged local
 * store must not publish wrong bytes under a right name), the root is
 * pinned (options.pin, default true: helia.gc() then keeps the blocks;
 * a partial DAG cannot be pinned and `pinned` says so) and
 * provided to the node's content routing when it has any (options.provide,
 * default true; a node without routing, or whose routing fails, still
 * serves the blocks to peers that ask: `provided` says which happened).
 * Returns { root, blocks, bytes, pinned, provided }.
 */
export function heliaPublisher(helia, options = {}) {
  checkHelia(helia, 'heliaPublisher');
  const { pin = true, provide = true, timeout = 30_000 } = options;
  const toCid = cidMaker(helia);
  return {
    name: `helia:${helia.libp2p?.peerId?.toString?.() ?? 'node'}`,
    async publish({ root, blocks }) {
      if (!Array.isArray(blocks)) throw fail(ParameterError, 'heliaPublisher.publish needs blocks: [{ cid, bytes }]');
      let bytes = 0;
      let rootKey;
      // Bounded parallelism: Helia's put is async per block (has, announce,
      // put), and one at a time leaves the blockstore idle.
      const width = 16;
      for (let i = 0; i < blocks.length; i += width) {
        await Promise.all(blocks.slice(i, i + width).map(async (block) => {
          await verified(block.cid, block.bytes, 'heliaPublisher');
          const key = await toCid(block.cid);
          if (block.cid === root) rootKey = key;
          await helia.blockstore.put(key, block.bytes);
          bytes += block.bytes.length;
        }));
      }
      rootKey ??= await toCid(root);
      if (!(await helia.blockstore.has(rootKey))) throw fail(ParameterError, `heliaPublisher: the root ${root} is not among the blocks`);
      let pinned = false;
      if (pin && helia.pins && typeof helia.pins.add === 'function') {
        const signal = AbortSignal.timeout(timeout);
        try {
          if (!(await helia.pins.isPinned(rootKey, { signal }))) for await (const _ of helia.pins.add(rootKey, { signal, offline: true }));
          pinned = true;
        } catch {
          // A partial DAG (a lazy collection publishes what it holds) cannot
          // be pinned whole; its blocks are stored and served all the same.
        }
      }
      let provided = false;
      if (provide && helia.routing && typeof helia.routing.provide === 'function') {
        try {
          await helia.routing.provide(rootKey, { signal: AbortSignal.timeout(timeout) });
          provided = true;
        } catch {
          // No content routing (a light node, no DHT), or it failed: the
          // blocks are still served to every peer that asks for them.
        }
      }
      return { root, blocks: blocks.length, bytes, pinned, provided };
    },
  };
}
