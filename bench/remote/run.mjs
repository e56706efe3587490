// bench/remote/run.mjs -- issue 12's measurements (`make bench-remote`;
// figures in docs/BENCHMARKS.md, "Remote collections"):
//   - a 1M x 96 IVF-PQ collection (written by bench/collection_native.c
//     --big-dir) served by a trustless gateway on 127.0.0.1: bytes fetched
//     to open it and answer the first query, and by a repeat (target: <= 2%
//     of the collection, then 0), and the time to the first result cold
//     (open + query) and warm (a repeat);
//   - sync of the version with 1% more records into a local copy of the
//     first: bytes transferred (target <= 3%).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';

import { Collection, gatewaySource, memoryStore } from '../../js/node.mjs';
import { countingGateway } from './serve.mjs';

const dir = process.argv[2] ?? 'bench/results/big-collection';
const emit = (o) => console.log(JSON.stringify(o));
const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:\s*(.*)$/m)?.[1].split(' ')
  .filter((f) => /^(avx2|fma|avx512f|avx512bw|avx512vl)$/.test(f)) ?? [];
emit({ cpu: cpus()[0].model, cores: cpus().length, flags, node: process.version });

const root = readFileSync(path.join(dir, 'root'), 'utf8').trim();
const root2 = readFileSync(path.join(dir, 'root2'), 'utf8').trim();
const q = new Float32Array(readFileSync(path.join(dir, 'queries.f32')).buffer.slice(0));
const dim = 96, nq = q.length / dim;
const gateway = await countingGateway(dir), url = gateway.url;

// The version's size: the blocks of the big segment and the manifest.
let total = 0;
for (const name of readdirSync(path.join(dir, 'blocks'))) total += statSync(path.join(dir, 'blocks', name)).size;
const v1 = await Collection.open({ source: gatewaySource(url), root, lazy: false });
const collectionBytes = v1.stats().fetchedBytes, records = v1.size;
v1.free();
emit({ what: 'collection', records, dim, version_bytes: collectionBytes, folder_bytes: total });

for (let round = 0; round < 3; round++) {
  const t0 = performance.now();
  const c = await Collection.open({ source: gatewaySource(url), root });
  const opened = c.stats().fetchedBytes, tOpen = performance.now() - t0;
  const query = q.subarray(round * dim, (round + 1) * dim);
  await c.search(query, 10);
  const cold = performance.now() - t0, first = c.stats().fetchedBytes;
  const t1 = performance.now();
  await c.search(query, 10);
  const warm = performance.now() - t1, repeat = c.stats().fetchedBytes - first;
  // Other queries on the same open collection: the lists each one adds.
  let more = 0;
  for (let i = 3; i < Math.min(nq, 23); i++) {
    const before = c.stats().fetchedBytes;
    await c.search(q.subarray(i * dim, (i + 1) * dim), 10);
    more += c.stats().fetchedBytes - before;
  }
  emit({ what: 'lazy', round, open_bytes: opened, open_ms: tOpen, first_query_bytes: first,
    first_query_share: first / collectionBytes, repeat_bytes: repeat, cold_ms: cold, warm_ms: warm,
    next_20_queries_mean_bytes: more / 20, next_share: more / 20 / collectionBytes });
  c.free();
}

const local = await Collection.open({ store: memoryStore(), source: gatewaySource(url), root, lazy: false });
const t0 = performance.now();
const s = await local.sync(gatewaySource(url), { root: root2 });
emit({ what: 'sync', from: root, to: root2, fetched_bytes: s.fetchedBytes, fetched_blocks: s.fetchedBlocks,
  share: s.fetchedBytes / collectionBytes, seconds: (performance.now() - t0) / 1000 });
local.free();
gateway.close();
