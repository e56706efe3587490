// helia-node.mjs -- a real Helia node for tests and bench/helia, on loopback
// only, and the child process that runs one.
//
//   createLightHelia(options)  a started Helia 7 node built from the light
//                              builders: TCP on 127.0.0.1, noise, yamux,
//                              identify, bitswap; no bootstrap, mDNS, DHT,
//                              autoNAT or HTTP gateways, so it never leaves
//                              the machine and only talks to peers it dials
//                              or that dial it.
//   spawnHeliaNode()           the same node in a child process (this file
//                              run as a script), driven by JSON lines.
//
// Child protocol: one JSON object a line each way.  The child starts with
// { ready: true, peerId, addrs }; every request { id, cmd, ... } gets
// { id, ok: true, ...result } or { id, ok: false, error }:
//   dial { addr }              connect to another node
//   publish { car }            heliaPublisher(helia).publish() of the blocks
//                              of a CARv1 file (a path): { root, blocks, bytes }
//   fetch { root, timeout }    Collection.open({ source: heliaSource(helia),
//                              root, lazy: false }): every block over the
//                              node's bitswap, timed: { ms, fetchedBytes,
//                              fetchedBlocks, size }
//   tamper { on }              serve every block with one bit flipped (the
//                              blockstore under Helia lies; the peer's bitswap
//                              then rejects what it gets)
//   stop                       stop Helia and exit
//
// Node 20 needs two shims for libp2p 3 (shared/TOOLCHAIN.md):
// Promise.withResolvers, and the undici override in the root package.json.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

Promise.withResolvers ??= function withResolvers() {
  let resolve, reject;
  const promise = new this((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
};

/**
 * A started light Helia node listening on 127.0.0.1.  options.blockstore:
 * a blockstore to use (default: in memory).  The node knows the dag-cbor
 * codec: Shoal's manifests are dag-cbor, and a light node without it fails
 * on the first dag-cbor block.
 */
export async function createLightHelia({ blockstore } = {}) {
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

/** Dials the node at a multiaddr (text). */
export async function dial(helia, addr) {
  const { multiaddr } = await import('@multiformats/multiaddr');
  await helia.libp2p.dial(multiaddr(addr));
}

/** The node's listening multiaddrs (text, with /p2p/<peer id>). */
export function addrsOf(helia) {
  return helia.libp2p.getMultiaddrs().map((a) => a.toString());
}

/**
 * A Helia node in a child process: { peerId, addrs, request(cmd, args),
 * kill() }.  kill() (also run when the parent exits) ends the child for
 * sure; request('stop') stops it politely.
 */
export async function spawnHeliaNode() {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const pending = new Map();
  let next = 1;
  let exited = false;
  const lines = createInterface({ input: child.stdout });
  const ready = Promise.withResolvers();
  const failAll = (err) => {
    ready.reject(err);
    for (const { reject } of pending.values()) reject(err);
    pending.clear();
  };
  child.on('exit', (code, signal) => {
    exited = true;
    process.off('exit', killOnExit);
    failAll(new Error(`the Helia child exited (${signal ?? code})`));
  });
  lines.on('line', (line) => {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      return; // not ours (a library printing to stdout)
    }
    if (msg.ready) return ready.resolve(msg);
    const waiter = pending.get(msg.id);
    if (!waiter) return;
    pending.delete(msg.id);
    if (msg.ok) waiter.resolve(msg);
    else waiter.reject(new Error(`Helia child: ${msg.error}`));
  });
  const { peerId, addrs } = await ready.promise;
  return {
    peerId,
    addrs,
    pid: child.pid,
    request(cmd, args = {}) {
      if (exited) return Promise.reject(new Error('the Helia child has exited'));
      const id = next++;
      const p = Promise.withResolvers();
      pending.set(id, p);
      child.stdin.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
      return p.promise;
    },
    /** Ends the child (SIGKILL) and waits for it. */
    kill() {
      if (exited) return Promise.resolve();
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      return gone;
    },
    get exited() {
      return exited;
    },
  };
}

// ------------------------------------------------------------ the child

// A blockstore that can lie: every block it hands out has one bit flipped
// while tampering is on.
async function tamperingBlockstore() {
  const { MemoryBlockstore } = await import('blockstore-core/memory');
  const inner = new MemoryBlockstore();
  const state = { on: false };
  const flip = (bytes) => {
    const out = Uint8Array.from(bytes);
    out[out.length >> 1] ^= 1;
    return out;
  };
  const store = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'get') {
        return async function* get(cid, options) {
          for await (const chunk of target.get(cid, options)) yield state.on ? flip(chunk) : chunk;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store, state };
}

async function child() {
  const { store, state } = await tamperingBlockstore();
  const helia = await createLightHelia({ blockstore: store });
  const { Collection, heliaPublisher, heliaSource } = await import('../../js/node.mjs');
  const { carBlocks } = await import('../../js/src/cid.mjs');
  const out = (msg) => process.stdout.write(`${JSON.stringify(msg)}\n`);
  const commands = {
    async dial({ addr }) {
      await dial(helia, addr);
      return {};
    },
    async publish({ car, root }) {
      const blocks = await carBlocks(new Uint8Array(await readFile(car)), car);
      return heliaPublisher(helia).publish({ root, blocks });
    },
    async fetch({ root, timeout = 120_000 }) {
      const t0 = performance.now();
      const c = await Collection.open({ source: heliaSource(helia, { timeout }), root, lazy: false });
      const ms = performance.now() - t0;
      const { fetchedBytes, fetchedBlocks } = c.stats();
      const size = c.size;
      c.free();
      return { ms, fetchedBytes, fetchedBlocks, size };
    },
    async tamper({ on }) {
      state.on = !!on;
      return {};
    },
    async stop() {
      await helia.stop();
      setImmediate(() => process.exit(0));
      return {};
    },
  };
  out({ ready: true, peerId: helia.libp2p.peerId.toString(), addrs: addrsOf(helia) });
  const lines = createInterface({ input: process.stdin });
  lines.on('line', async (line) => {
    let msg;
    try {
      msg = JSON.parse(line);
      const fn = commands[msg.cmd];
      if (!fn) throw new Error(`unknown command ${msg.cmd}`);
      out({ id: msg.id, ok: true, ...(await fn(msg)) });
    } catch (err) {
      out({ id: msg?.id, ok: false, error: String(err?.stack ?? err) });
    }
  });
  // The parent gone (stdin closed): stop too.
  lines.on('close', () => process.exit(0));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await child();
