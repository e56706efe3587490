// bench/helia/run.mjs -- issue 12's Helia figure (`make bench-helia`; the
// table goes to docs/BENCHMARKS.md): publish and fetch throughput of a
// collection over IPFS bitswap between two Helia 7 nodes on 127.0.0.1.
//
//   - a collection of flat segments (random 256-d vectors, 1 KiB each;
//     flat so that the blocks are as big as the records, and cut at
//     1 MiB like every Shoal segment), SHOAL_HELIA_MB megabytes of blocks
//     (default 64);
//   - publish: Collection.publish(heliaPublisher(P)) on a node P in this
//     process -- every block hashed, put into P's blockstore, the root
//     pinned (a DAG walk over P's blockstore); no network;
//   - fetch: a node F in a child process (tests/js/helia-node.mjs), dialed
//     to P, opens the collection with heliaSource(F) and lazy: false -- every
//     block over bitswap, hashed by Helia and again by heliaSource, handed
//     to the core, which checks it once more;
//   - SHOAL_HELIA_ROUNDS fetches (default 3), each by a fresh child (an
//     empty blockstore); the table gives each and the best.
// Both nodes are light (TCP, noise, yamux; no bootstrap, DHT or mDNS) and
// never leave the machine.  Prints a markdown table and one JSON line.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

import { Collection, heliaPublisher, memoryStore } from '../../js/node.mjs';
import { TestRng } from '../../tests/js/data.mjs';
import { createLightHelia, spawnHeliaNode } from '../../tests/js/helia-node.mjs';

const MB = Number(process.env.SHOAL_HELIA_MB ?? 64);
const ROUNDS = Number(process.env.SHOAL_HELIA_ROUNDS ?? 3);
const DIM = 256;
const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:\s*(.*)$/m)?.[1].split(' ')
  .filter((f) => /^(avx2|fma|avx512f|avx512bw|avx512vl)$/.test(f)) ?? [];
const cpu = { cpu: cpus()[0].model, cores: cpus().length, flags, node: process.version };
const mbps = (bytes, ms) => bytes / 2 ** 20 / (ms / 1000);

// The collection: ~MB megabytes of blocks (each record 1 KiB of vector
// plus its id).
const records = Math.max(1, Math.round((MB * 2 ** 20) / (DIM * 4 + 16)));
const t0 = performance.now();
const c = await Collection.create({ dim: DIM, kind: 'flat', store: memoryStore(), largeFrom: 2 ** 31, flushRecords: 8192, mergeFactor: 64 });
const rng = new TestRng(12);
for (let at = 0; at < records; at += 8192) {
  const batch = [];
  for (let i = at; i < Math.min(records, at + 8192); i++) batch.push({ id: `r${i}`, vector: rng.fill(new Float32Array(DIM)) });
  await c.upsert(batch);
}
await c.flush();
const buildMs = performance.now() - t0;

const P = await createLightHelia();
const t1 = performance.now();
const published = await c.publish(heliaPublisher(P));
const publishMs = performance.now() - t1;
const addr = P.libp2p.getMultiaddrs()[0].toString();

const fetches = [];
for (let round = 0; round < ROUNDS; round++) {
  const F = await spawnHeliaNode();
  try {
    await F.request('dial', { addr });
    const got = await F.request('fetch', { root: published.root });
    if (got.size !== records) throw new Error(`fetched a collection of ${got.size} records, not ${records}`);
    fetches.push(got);
  } finally {
    await F.kill();
  }
}
await P.stop();
c.free();

const best = fetches.reduce((a, b) => (b.ms < a.ms ? b : a));
const row = (what, bytes, blocks, ms) => `| ${what} | ${(bytes / 2 ** 20).toFixed(1)} | ${blocks} | ${(ms / 1000).toFixed(2)} | ${mbps(bytes, ms).toFixed(1)} |`;
console.log(`\nHelia 7 bitswap on 127.0.0.1: ${records} records x ${DIM} dims (flat segments, ${(published.bytes / 2 ** 20).toFixed(1)} MiB in ${published.blocks} blocks; built in ${(buildMs / 1000).toFixed(1)} s)`);
console.log(`CPU: ${cpu.cpu}, ${cpu.cores} cores, flags ${flags.join(' ') || '(none of avx2 fma avx512)'}; Node ${cpu.node}\n`);
console.log('| step | MiB | blocks | seconds | MiB/s |');
console.log('| --- | ---: | ---: | ---: | ---: |');
console.log(row('publish: heliaPublisher (hash, put, pin)', published.bytes, published.blocks, publishMs));
fetches.forEach((f, i) => console.log(row(`fetch ${i + 1}: heliaSource over bitswap, lazy: false`, f.fetchedBytes, f.fetchedBlocks, f.ms)));
console.log(row('fetch, best', best.fetchedBytes, best.fetchedBlocks, best.ms));
console.log(`\n${JSON.stringify({ ...cpu, records, dim: DIM, bytes: published.bytes, blocks: published.blocks, publish_ms: publishMs,
  publish_mibps: mbps(published.bytes, publishMs), fetch_ms: fetches.map((f) => f.ms), fetch_best_mibps: mbps(best.fetchedBytes, best.ms) })}`);
