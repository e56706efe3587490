// server.mjs -- what `make demo` runs: the whole product on loopback.
//
//   1. Fashion-MNIST (Debian's dataset-fashion-mnist) -> JSONL (prepare.mjs)
//   2. the native CLI builds a collection folder from it: the first records
//      as one IVF-PQ segment (the large tier), the rest `--append`ed as an
//      HNSW segment (the small tier) -- cached under build/demo/
//   3. two trustless gateways on 127.0.0.1 serve the folder's blocks:
//      gateway A, which a switch makes corrupt every block it serves, and
//      gateway B, a clean mirror that answers DEMO_FALLBACK_MS later (a
//      farther mirror: while A is good, its answers arrive first and B's
//      are dropped)
//   4. IPFS (demo/helia-node.mjs): the blocks are published to a Helia node
//      (heliaPublisher: each verified, the root pinned), and gateway C
//      answers from a second Helia node dialed to the first, which fetches
//      each block over bitswap (and verifies it) before serving it, also
//      DEMO_FALLBACK_MS later
//   5. a name: every gateway answers GET /name/<name> with the root the
//      name points at now ({ name, root, updated }, JSON); the page opens
//      the collection by that name.  The mapping lives here, mutable (POST
//      /demo/api/name?root=<cid>), and is not signed: an IPNS record or an
//      S5 registry entry would be; this one is only as trustworthy as the
//      gateway answering it (the blocks it leads to are verified all the
//      same)
//   6. the page server: the repository's files (demo/serve.mjs) and a small
//      API under /demo/api/ (the root, the segments, the gateways, their
//      switches)
// and prints one URL.
//
//   node demo/server.mjs       DEMO_N=5000 PORT=0 node demo/server.mjs
//   node demo/server.mjs --build-only     (steps 1-2, then exit)
//
// Environment: DEMO_N records (default 60000, at most 60000); DEMO_HNSW of
// them in the HNSW tier (default 5000, or N - 10000 when that is smaller:
// the core builds IVF only from 10,000 records); PORT for the page (default
// 8080, 0 = any); DEMO_FALLBACK_MS (default 150); DEMO_DIR (default
// build/demo); DEMO_HELIA=0 skips step 4 (no Helia nodes, no gateway C;
// loading libp2p takes a few seconds); DEMO_NAME (default fashion-mnist).  Build progress goes to stderr; stdout gets the URL line
// (`Shoal demo: http://127.0.0.1:PORT/demo/`) and nothing else, so a test
// can read it.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';

import { createGatewayServer } from '../js/node.mjs';
import { cidBytes, dagBlocks } from '../js/src/cid.mjs';
import { blockSource } from '../js/src/gateway-server.mjs';
import { REPO_ROOT, createStaticServer, listen } from './serve.mjs';
import { DIM, SOURCE, prepare } from './prepare.mjs';

const run = promisify(execFile);
const log = (...args) => console.error('demo:', ...args);

function intEnv(name, fallback, min, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    console.error(`demo: ${name} must be an integer ${min}..${max}, not ${raw}`);
    process.exit(2);
  }
  return v;
}

// ------------------------------------------------------------ the data

const N = intEnv('DEMO_N', 60000, 100, 60000);
const HNSW = intEnv('DEMO_HNSW', Math.min(5000, Math.max(N - 10000, 0)) || N, 1, N);
const LARGE = N - HNSW;
const FALLBACK_MS = intEnv('DEMO_FALLBACK_MS', 150, 0, 60000);
const BASE = path.resolve(REPO_ROOT, process.env.DEMO_DIR ?? 'build/demo');
const SHOAL = path.join(REPO_ROOT, 'build/shoal');
// The IVF-PQ tier: ~sqrt(n) lists of ~sqrt(n) records, 4-bit PQ codes of
// two dimensions each (196 bytes a record) and float32 copies to rerank the
// 40 best candidates of each search exactly.
const NLIST = Math.max(16, Math.round(Math.sqrt(LARGE)));
const LARGE_FLAGS = ['--large-from', String(Math.max(LARGE, 1)), '--large-kind', 'ivf', '--large-quantizer', 'pq',
  '--large-pq-m', '392', '--large-pq-bits', '4', '--large-rerank', '40', '--large-nlist', String(NLIST),
  '--large-nprobe', '8'];
// The HNSW tier (and the buffer the large part is first written into).
const SMALL_FLAGS = ['--kind', 'hnsw', '--M', '16', '--ef-construction', '64', '--ef-search', '64'];
const KEY = `fashion-${N}-${HNSW}`;
const DIR = path.join(BASE, KEY);
const HELIA = (process.env.DEMO_HELIA ?? '1') !== '0';
const NAME = process.env.DEMO_NAME || 'fashion-mnist';
if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(NAME)) {
  console.error(`demo: DEMO_NAME must be 1-63 of a-z 0-9 . _ -, not ${NAME}`);
  process.exit(2);
}
const COLL = path.join(DIR, 'collection');

async function shoal(...args) {
  const { stdout } = await run(SHOAL, args, { maxBuffer: 64 << 20 });
  return stdout;
}

async function buildCollection() {
  if (existsSync(path.join(DIR, 'info.json'))) return JSON.parse(await readFile(path.join(DIR, 'info.json'), 'utf8'));
  if (!existsSync(SOURCE)) {
    console.error(`demo: ${SOURCE} is missing: apt-get install -y dataset-fashion-mnist (make demo installs it)`);
    process.exit(2);
  }
  if (!existsSync(SHOAL)) {
    console.error(`demo: ${SHOAL} is missing: run make cli (make demo builds it)`);
    process.exit(2);
  }
  await rm(DIR, { recursive: true, force: true });
  const t0 = Date.now();
  log(`writing ${N} Fashion-MNIST records as JSONL (${LARGE} for the IVF-PQ tier, ${HNSW} for the HNSW tier)`);
  await prepare({ dir: DIR, n: N, large: LARGE });
  const t1 = Date.now();
  const steps = [];
  if (LARGE > 0) {
    log(`shoal build --collection: ${LARGE} records -> one IVF-PQ segment (nlist ${NLIST}, pq 392x4 bits, rerank 40)`);
    steps.push(JSON.parse(await shoal('build', path.join(DIR, 'large.jsonl'), '--collection', COLL, ...SMALL_FLAGS,
      ...LARGE_FLAGS, '--flush-records', String(LARGE), '--flush-bytes', '4000000000', '--seed', '1', '-q', '--json')));
    log(`shoal build --collection --append: ${HNSW} records -> one HNSW segment`);
    steps.push(JSON.parse(await shoal('build', path.join(DIR, 'small.jsonl'), '--collection', COLL, '--append', '-q',
      '--json')));
  } else {
    steps.push(JSON.parse(await shoal('build', path.join(DIR, 'small.jsonl'), '--collection', COLL, ...SMALL_FLAGS,
      '--flush-records', String(N + 1), '--flush-bytes', '4000000000', '--seed', '1', '-q', '--json')));
  }
  const t2 = Date.now();
  const info = JSON.parse(await shoal('info', COLL, '--json'));
  const result = {
    n: N, hnsw: HNSW, large: LARGE, dim: DIM, nlist: NLIST,
    root: info.root, prev: info.prev, blocks: info.blocks, bytes: info.bytes,
    segments: info.segment_list.map(({ kind, tier, records, bytes, blocks, cid }) => ({ kind, tier, records, bytes, blocks, cid })),
    build: { jsonlMs: t1 - t0, cliMs: t2 - t1, steps },
  };
  // The JSONL was only the CLI's input; the folder is what is kept.
  await rm(path.join(DIR, 'large.jsonl'), { force: true });
  await rm(path.join(DIR, 'small.jsonl'), { force: true });
  await writeFile(path.join(DIR, 'info.json'), JSON.stringify(result, null, 1));
  log(`built in ${((t2 - t0) / 1000).toFixed(1)} s: root ${info.root}`);
  return result;
}

// ------------------------------------------------------------ gateways

// A gateway on 127.0.0.1 that can be stopped and started again on the same
// port.  The page's origin differs from the gateways', so every answer
// allows any origin (the blocks are public and verified by their CIDs).
// Besides /ipfs/ it answers GET /name/<name> from names (see the top).
async function gateway(name, from, names) {
  const inner = await createGatewayServer(from);
  const handle = inner.listeners('request')[0];
  let server = null, port = 0, requests = 0;
  const sockets = new Set();
  const g = {
    name,
    get url() { return `http://127.0.0.1:${port}`; },
    get running() { return server !== null; },
    get requests() { return requests; },
    async start() {
      if (server) return;
      server = createServer((req, res) => {
        requests++;
        res.setHeader('access-control-allow-origin', '*');
        const named = /^\/name\/([^/?]+)$/.exec(req.url.split('?')[0]);
        if (named) {
          const record = names.get(decodeURIComponent(named[1]));
          res.writeHead(record ? 200 : 404, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
          res.end(JSON.stringify(record ?? { error: `no such name: ${named[1]}` }));
          return;
        }
        handle(req, res);
      });
      server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => { port = server.address().port; resolve(); });
      });
    },
    async stop() {
      if (!server) return;
      const s = server;
      server = null;
      await new Promise((resolve) => { s.close(resolve); for (const sock of sockets) sock.destroy(); });
    },
  };
  await g.start();
  return g;
}

// The tamper switch wraps the folder reader, not the library: while it is
// on, every block gateway A serves has one byte flipped, so it no longer
// hashes to its CID and the page's source must reject it.
function tamperable(get) {
  const state = { on: false, served: 0 };
  return {
    state,
    store: {
      async get(cid) {
        const bytes = await get(cid);
        if (!bytes || !state.on) return bytes;
        state.served++;
        const bad = Uint8Array.from(bytes);
        bad[bad.length >> 1] ^= 0xff;
        return bad;
      },
    },
  };
}

function delayed(get, ms) {
  return { get: async (cid) => { await new Promise((r) => setTimeout(r, ms)); return get(cid); } };
}

// ------------------------------------------------------------ the page

// Helia: both nodes, the collection published to the first.  Failing here
// is not fatal: the demo runs on gateways A and B alone.
async function startHelia(ready) {
  const t0 = Date.now();
  let pair;
  try {
    const { startHeliaPair } = await import('./helia-node.mjs');
    pair = await startHeliaPair();
    const info = await ready;
    const t1 = Date.now();
    const blocks = await dagBlocks(await blockSource({ dir: COLL }), info.root);
    const published = await pair.publish(info.root, blocks);
    log(`Helia node ${pair.peerId} at ${pair.addrs.join(' ')} (started in ${((t1 - t0) / 1000).toFixed(1)} s): ` +
      `published root ${published.root}, ${published.blocks} blocks, ${(published.bytes / 2 ** 20).toFixed(1)} MiB ` +
      `in ${((Date.now() - t1) / 1000).toFixed(1)} s${published.pinned ? ', pinned' : ''}`);
    pair.published = { root: published.root, blocks: published.blocks, bytes: published.bytes, pinned: published.pinned };
    return pair;
  } catch (err) {
    log(`no Helia node (gateway C is left out): ${err?.stack ?? err}`);
    await pair?.stop();
    return null;
  }
}

async function main() {
  const building = buildCollection();
  const buildOnly = process.argv.includes('--build-only');
  const starting = HELIA && !buildOnly ? startHelia(building) : null;
  const info = await building;
  if (buildOnly) return;
  const helia = await starting;
  const folder = await blockSource({ dir: COLL });
  const tamper = tamperable(folder);
  const names = new Map([[NAME, { name: NAME, root: info.root, updated: new Date().toISOString() }]]);
  const gateways = [await gateway('A', { store: tamper.store }, names), await gateway('B', { store: delayed(folder, FALLBACK_MS) }, names)];
  // C is a farther mirror too: were it faster than A, A's corrupt blocks
  // would lose every race unseen and the page could not show them rejected.
  if (helia) gateways.push(await gateway('C', { store: delayed((cid) => helia.get(cid), FALLBACK_MS) }, names));
  const queries = await readFile(path.join(DIR, 'queries.json'));

  const extra = (g) => (g.name === 'A' ? { tamper: tamper.state.on, tampered: tamper.state.served }
    : g.name === 'B' ? { delayMs: FALLBACK_MS }
    : { helia: { peerId: helia.peerId, addrs: helia.addrs, fetcherPeerId: helia.fetcherPeerId, published: helia.published, ...helia.stats() } });
  const status = () => ({
    ...info,
    name: NAME,
    names: Object.fromEntries(names),
    gateways: gateways.map((g) => ({ name: g.name, url: g.url, running: g.running, requests: g.requests, ...extra(g) })),
  });
  const json = (res, status, value) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(JSON.stringify(value));
  };

  const files = createStaticServer(REPO_ROOT).listeners('request')[0];
  const page = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (!url.pathname.startsWith('/demo/api/')) return files(req, res);
    try {
      const route = `${req.method} ${url.pathname.slice('/demo/api/'.length)}`;
      if (route === 'GET info') return json(res, 200, status());
      if (route === 'GET queries.json') {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
        return res.end(queries);
      }
      if (route === 'POST tamper') {
        tamper.state.on = url.searchParams.get('on') === '1';
        log(`gateway A ${tamper.state.on ? 'now corrupts every block it serves' : 'serves blocks intact again'}`);
        return json(res, 200, status());
      }
      if (route === 'POST gateways') {
        const on = url.searchParams.get('running') === '1';
        await Promise.all(gateways.map((g) => (on ? g.start() : g.stop())));
        log(`gateways ${on ? 'started' : 'stopped'}`);
        return json(res, 200, status());
      }
      if (route === 'POST name') {
        const root = url.searchParams.get('root') ?? '';
        try {
          cidBytes(root);
        } catch {
          return json(res, 400, { error: `not a CID: ${root}` });
        }
        names.set(NAME, { name: NAME, root, updated: new Date().toISOString() });
        log(`name ${NAME} now points at ${root}`);
        return json(res, 200, status());
      }
      json(res, 404, { error: `no such API: ${route}` });
    } catch (err) {
      json(res, 500, { error: String(err?.message ?? err) });
    }
  });
  const port = process.env.PORT === undefined || process.env.PORT === '' ? 8080 : intEnv('PORT', 8080, 0, 65535);
  const origin = await listen(page, port);
  log(`${info.n} records, root ${info.root}, name ${NAME}; gateway A ${gateways[0].url}, gateway B ${gateways[1].url} (+${FALLBACK_MS} ms)` +
    (helia ? `, gateway C ${gateways[2].url} (Helia, bitswap)` : ''));
  console.log(`Shoal demo: ${origin}/demo/   (Ctrl-C to stop)`);
  const stop = async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    // Helia's stop waits for its connections to close: not forever.
    if (helia) await Promise.race([helia.stop(), new Promise((r) => setTimeout(r, 2000))]);
    page.closeAllConnections?.();
    page.close(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

await mkdir(BASE, { recursive: true });
await main();
