// helia-node.mjs -- the demo's IPFS side: two real Helia nodes in the demo
// server's process, on 127.0.0.1 only.
//
//   node 1, the publisher: the collection's blocks go into its blockstore
//     through heliaPublisher (each hashed against its CID, the root pinned);
//     it serves them to peers over bitswap.
//   node 2, the fetcher: dialed to node 1, it starts with no blocks; a
//     block it is asked for and lacks crosses bitswap from node 1 (and is
//     kept: it answers repeats itself).  heliaSource over it verifies every
//     block again.  Gateway C (server.mjs) answers trustless-gateway
//     requests from it, counting which blocks came over bitswap.
//
// Why two nodes and not one gateway over node 1's blockstore: the page
// should fetch through real IPFS -- a want sent, a block received over a
// libp2p stream, checked -- not from a store that only happens to belong to
// a Helia node.
//
// Rejected: a node 2 that keeps nothing, so that every answer of gateway C
// crosses bitswap (and the server holds the collection once, not twice).
// @helia/bitswap 4 does not send the cancel of a want it got the block for,
// so node 1's ledger keeps that want as "sent"; the same peer wanting the
// block again is then never answered (within doNotResendBlockWindow it is a
// repeat; after it, the expired entry is dropped along with the new want).
// Measured: the second get of a block timed out.  So node 2 keeps what it
// fetched.  XXX: both nodes hold their blocks in memory (the whole
// collection in node 1, up to all of it in node 2 after a sync: ~2 x 256
// MiB for the 60k demo).
//
// Built as shared/TOOLCHAIN.md says: the light builders (createHeliaLight +
// libp2p with TCP only: no bootstrap, mDNS, DHT, autoNAT or HTTP gateways,
// so nothing leaves the machine), dag-cbor among the codecs (Shoal's
// manifests are dag-cbor; a light node without it dies on the first one),
// and on Node 20 a Promise.withResolvers polyfill (libp2p 3 uses it; the
// undici override is in the root package.json).  tests/js/helia-node.mjs
// builds the same node for the tests; this file does not import from
// tests/, so the demo stands on its own.

import { heliaPublisher, heliaSource } from '../js/node.mjs';

Promise.withResolvers ??= function withResolvers() {
  let resolve, reject;
  const promise = new this((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
};

async function lightHelia({ blockstore } = {}) {
  const [{ createHeliaLight }, { withLibp2pLight }, { withBitswap }, { tcp }, { noise }, { yamux }, { identify }, dagCbor] =
    await Promise.all([
      import('helia'), import('@helia/libp2p'), import('@helia/bitswap'), import('@libp2p/tcp'),
      import('@libp2p/noise'), import('@libp2p/yamux'), import('@libp2p/identify'), import('@ipld/dag-cbor'),
    ]);
  const helia = withBitswap(withLibp2pLight(createHeliaLight({ codecs: [dagCbor], ...(blockstore ? { blockstore } : {}) }), {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() },
  }));
  await helia.start();
  return helia;
}

/**
 * Starts both nodes and dials node 2 to node 1.  Returns { peerId, addrs
 * (node 1's), fetcherPeerId, publish(root, blocks), get(cid), stats(),
 * stop() }: get is what gateway C serves -- node 2's copy if it has one,
 * else fetched over bitswap (timeout ms per block) -- every block verified
 * by heliaSource; stats() counts both kinds.
 */
export async function startHeliaPair({ timeout = 10_000 } = {}) {
  const [publisher, fetcher] = await Promise.all([lightHelia(), lightHelia()]);
  const addrs = publisher.libp2p.getMultiaddrs().map((a) => a.toString());
  await fetcher.libp2p.dial(publisher.libp2p.getMultiaddrs()[0]);
  const local = heliaSource(fetcher, { offline: true });
  const remote = heliaSource(fetcher, { timeout });
  const counts = { bitswapBlocks: 0, bitswapBytes: 0, localBlocks: 0, localBytes: 0, failures: 0 };
  // One bitswap fetch per block at a time: the page asks every source at
  // once, and a sync asks eight blocks at a time.
  const inflight = new Map();
  const fetchOnce = (cid) => {
    let p = inflight.get(cid);
    if (!p) {
      p = remote.get(cid).then((bytes) => {
        if (bytes) { counts.bitswapBlocks++; counts.bitswapBytes += bytes.length; }
        return bytes;
      }, (err) => { counts.failures++; throw err; }).finally(() => inflight.delete(cid));
      inflight.set(cid, p);
    }
    return p;
  };
  return {
    peerId: publisher.libp2p.peerId.toString(),
    addrs,
    fetcherPeerId: fetcher.libp2p.peerId.toString(),
    // provide: false -- a light node has no content routing to announce to;
    // node 2 finds the blocks by asking the peer it is connected to.
    publish: (root, blocks) => heliaPublisher(publisher, { provide: false }).publish({ root, blocks }),
    async get(cid) {
      const have = await local.get(cid);
      if (have) {
        counts.localBlocks++;
        counts.localBytes += have.length;
        return have;
      }
      return fetchOnce(cid);
    },
    stats: () => ({ ...counts }),
    async stop() {
      await Promise.allSettled([fetcher.stop(), publisher.stop()]);
    },
  };
}
