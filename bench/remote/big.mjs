// bench/remote/big.mjs -- issue 14: ten million vectors searched lazily from
// a trustless gateway on 127.0.0.1 (`make bench-remote-big`, which builds
// the collection offline with the CLI first: bench/remote/big.sh; figures
// in docs/BENCHMARKS.md, "Ten million vectors from a gateway").
//
//   node bench/remote/big.mjs DIR QUERIES.fvecs TRUTH.json [NPROBE,...]
//
// DIR is a CLI collection folder (DIR/root, DIR/blocks/<cid>), served by
// createGatewayServer; QUERIES are held-out vectors; TRUTH is the exact
// answer, `shoal search BASE --kind flat --json` over the same records (ids
// "0".."N-1"), computed by the native CLI, not by the code measured here.
// For each nprobe, a fresh `Collection.open({ source: gatewaySource(url),
// root })` (lazy) answers every query in turn, k = 10; per query: the bytes
// and blocks it fetched (a query reuses the lists earlier queries fetched,
// as an app's session would), its latency, its recall@10.  Prints one JSON
// line per measurement and a summary per nprobe.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';

import { Collection, gatewaySource } from '../../js/node.mjs';
import { countingGateway } from './serve.mjs';

const [dir, queryFile, truthFile, nprobeList = '4,8,16,32'] = process.argv.slice(2);
if (!truthFile) {
  console.error('usage: big.mjs DIR QUERIES.fvecs TRUTH.json [NPROBE,...]');
  process.exit(1);
}
const emit = (o) => console.log(JSON.stringify(o));
const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:\s*(.*)$/m)?.[1].split(' ')
  .filter((f) => /^(avx2|fma|avx512f|avx512bw|avx512vl)$/.test(f)) ?? [];
emit({ cpu: cpus()[0].model, cores: cpus().length, flags, node: process.version, date: new Date().toISOString() });

// Queries (.fvecs: a little-endian int32 dimension before every row).
const qb = readFileSync(queryFile);
const dim = qb.readInt32LE(0), rowBytes = 4 + 4 * dim, nq = qb.length / rowBytes;
if (!Number.isInteger(nq)) throw new Error(`${queryFile}: not an .fvecs of dimension ${dim}`);
const queries = [];
for (let i = 0; i < nq; i++) {
  if (qb.readInt32LE(i * rowBytes) !== dim) throw new Error(`${queryFile}: row ${i} has another dimension`);
  queries.push(new Float32Array(qb.buffer.slice(qb.byteOffset + i * rowBytes + 4, qb.byteOffset + (i + 1) * rowBytes)));
}
const truth = JSON.parse(readFileSync(truthFile, 'utf8')).results.map((r) => new Set(r.ids));
if (truth.length !== nq) throw new Error(`${truthFile} has ${truth.length} answers for ${nq} queries`);

const gateway = await countingGateway(dir), { url, counts } = gateway;
const root = readFileSync(path.join(dir, 'root'), 'utf8').trim();

let folderBytes = 0, folderBlocks = 0;
for (const name of readdirSync(path.join(dir, 'blocks'))) {
  folderBytes += statSync(path.join(dir, 'blocks', name)).size;
  folderBlocks++;
}
emit({ what: 'collection', root, folder_bytes: folderBytes, folder_blocks: folderBlocks, queries: nq, dim });

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
for (const nprobe of nprobeList.split(',').map(Number)) {
  counts.requests = counts.bytes = 0;
  const t0 = performance.now();
  const c = await Collection.open({ source: gatewaySource(url), root });
  const openMs = performance.now() - t0, openBytes = c.stats().fetchedBytes, openRequests = counts.requests;
  const bytes = [], blocks = [], ms = [], recalls = [];
  for (let i = 0; i < nq; i++) {
    const b0 = c.stats().fetchedBytes, r0 = counts.requests, t1 = performance.now();
    const { ids } = await c.search(queries[i], 10, { nprobe });
    ms.push(performance.now() - t1);
    bytes.push(c.stats().fetchedBytes - b0);
    blocks.push(counts.requests - r0);
    let hit = 0;
    for (const id of ids) if (truth[i].has(id)) hit++;
    recalls.push(hit / 10);
  }
  // The same queries again: everything they need is held now.
  const b1 = c.stats().fetchedBytes, t2 = performance.now();
  for (let i = 0; i < nq; i++) await c.search(queries[i], 10, { nprobe });
  const warmMs = (performance.now() - t2) / nq, repeatBytes = c.stats().fetchedBytes - b1;
  const st = c.stats();
  emit({
    what: 'summary', nprobe, records: c.size, open_ms: openMs, open_bytes: openBytes, open_requests: openRequests,
    open_share: openBytes / folderBytes,
    first_query_bytes: bytes[0], first_query_ms: ms[0],
    bytes_per_query_mean: mean(bytes), bytes_per_query_median: pct(bytes, 0.5), bytes_per_query_p95: pct(bytes, 0.95),
    share_per_query_mean: mean(bytes) / folderBytes, blocks_per_query_mean: mean(blocks),
    latency_ms_median: pct(ms, 0.5), latency_ms_p95: pct(ms, 0.95), warm_ms_mean: warmMs, repeat_bytes: repeatBytes,
    recall10: mean(recalls), fetched_total: st.fetchedBytes, served_total: counts.bytes,
    memory_bytes: st.memoryBytes,
  });
  c.free();
}
gateway.close();
