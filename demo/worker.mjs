// worker.mjs -- the demo's Web Worker: every collection of the page lives
// here, so the page stays responsive while blocks are fetched, hashed,
// synced into IndexedDB and searched.
//
// The collections are served by the package's own worker protocol (the
// `serve` of shoal/worker-host, js/src/worker-protocol.mjs): the page sends
// a MessagePort per collection ({ connect: 'lazy' | 'synced' }) and talks to
// it with workerCollection().  That protocol opens collections from a store
// description only, and has no sync; so this host hands serve() a copy of
// the package whose Collection.open also accepts { gateways: [urls] } (made
// into anySource(gatewaySource(...)) here, since sources cannot cross
// threads; so Collection.open({ gateways, name }) opens by name) and
// remembers each collection it makes, and answers a few more requests on
// the worker's own port:
//
//   localRoot { db }          the root an IndexedDB store holds (or null)
//   sync { root, gateways }   the synced collection to the remote root,
//                             progress posted as { event: 'progress' }
//   exact / exactApply        a flat Index over the synced records: the
//                             exact answers recall is measured against
//   sources                   per gateway: bytes fetched, failures
// and posts { event: 'rejected', gateway, cid, message } for every block a
// gateway answered wrongly.

import * as shoal from '../js/browser.mjs';
import { serve } from '../js/src/worker-protocol.mjs';

const collections = { lazy: null, synced: null };
const sources = {};
let exact = null; // { index, cid }

const post = (message) => self.postMessage(message);

function sourceOf(gateways, role) {
  const list = gateways.map(({ name, url }) => {
    // no-store: the gateways mark blocks immutable, and the browser's HTTP
    // cache would answer a reloaded page without asking them, hiding what a
    // lazy open really fetches (and making a stopped gateway look up).
    const s = shoal.gatewaySource(url, { timeout: 5000, retries: 1,
      fetch: (resource, init) => fetch(resource, { ...init, cache: 'no-store' }) });
    return { ...s, name, get: s.get, stats: s.stats, resolve: (n) => resolveName(url, name, n) };
  });
  const source = shoal.anySource(list, {
    onError(from, error) {
      // Aborts of the slower mirror after another answered are not failures.
      if (/answered elsewhere|aborted/i.test(String(error?.message))) return;
      const cid = /bafk[a-z2-7]+|bafy[a-z2-7]+/.exec(String(error?.message))?.[0] ?? null;
      post({ event: 'rejected', role, gateway: from.name, cid, name: error?.name, message: String(error?.message ?? error) });
    },
  });
  sources[role] = source;
  return source;
}

// A source's optional resolve(name) (js/src/sources.mjs), for the demo
// server's names: GET <gateway>/name/<name> -> { root }.  gatewaySource has
// no names (a trustless gateway has none but IPNS), so this lives here.
// Unsigned: the root is taken on the gateway's word; the blocks under it
// are verified as always.
async function resolveName(url, gateway, name) {
  const res = await fetch(`${url}/name/${encodeURIComponent(name)}`, { cache: 'no-store', signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`gateway ${gateway}: name ${name}: HTTP ${res.status}`);
  const { root } = await res.json();
  if (typeof root !== 'string' || !/^b[a-z2-7]{58}$/.test(root)) throw new Error(`gateway ${gateway}: name ${name}: not a root: ${root}`);
  return root;
}

// The package as serve() sees it, with the two additions described above.
function packageFor(role) {
  const Collection = {
    async create(options) {
      const c = await shoal.Collection.create(options);
      collections[role] = c;
      return c;
    },
    async open({ gateways, ...options }) {
      if (gateways) options.source = sourceOf(gateways, role);
      const c = await shoal.Collection.open(options);
      collections[role] = c;
      return c;
    },
  };
  return { ...shoal, Collection };
}

// ------------------------------------------------------------ exact search

async function buildExact() {
  const c = collections.synced;
  if (!c) throw new Error('no synced collection');
  if (exact?.cid === c.cid && exact.size === c.size) return { size: exact.index.size, ms: 0 };
  const t = performance.now();
  exact?.index.free();
  exact = null;
  const index = await shoal.Index.create({ dim: c.dim, metric: c.metric, kind: 'flat' });
  const batch = { ids: [], vectors: [], metadata: [] };
  const flushBatch = () => {
    if (!batch.ids.length) return;
    const v = new Float32Array(batch.ids.length * c.dim);
    batch.vectors.forEach((x, i) => v.set(x, i * c.dim));
    index.add(batch.ids, v, { metadata: batch.metadata });
    batch.ids = []; batch.vectors = []; batch.metadata = [];
  };
  for await (const id of c.ids()) {
    const r = await c.get(id);
    const { px, ...meta } = r.metadata ?? {};
    batch.ids.push(id); batch.vectors.push(r.vector); batch.metadata.push(meta);
    if (batch.ids.length === 2048) flushBatch();
  }
  flushBatch();
  exact = { index, cid: c.cid, size: index.size };
  return { size: index.size, ms: performance.now() - t };
}

const ops = {
  async localRoot({ db }) {
    const store = await shoal.indexedDBStore(db);
    try {
      return (await store.getRoot()) ?? null;
    } finally {
      await store.close?.();
    }
  },
  async sync({ root, gateways }) {
    const c = collections.synced;
    if (!c) throw new Error('connect the synced collection first');
    const source = sourceOf(gateways, 'sync');
    const t = performance.now();
    const result = await c.sync(source, {
      root, force: true, concurrency: 8,
      onProgress: ({ blocks, bytes }) => post({ event: 'progress', blocks, bytes }),
    });
    return { ...result, ms: performance.now() - t, size: c.size };
  },
  async local() {
    const c = collections.synced;
    if (!c) return null;
    const s = c.stats();
    return { cid: c.cid, size: c.size, readOnly: c.readOnly, buffered: s.buffered, segments: s.segments };
  },
  buildExact,
  async exact({ query, k, filter }) {
    if (!exact) return null;
    const t = performance.now();
    const r = exact.index.search(query, k, filter ? { filter } : {});
    return { ids: r.ids, distances: Array.from(r.distances), ms: performance.now() - t, size: exact.index.size };
  },
  async exactApply({ upserts = [], deletes = [] }) {
    if (!exact) return null;
    for (const { id, vector, metadata } of upserts) {
      const { px, ...meta } = metadata ?? {};
      exact.index.add([id], Float32Array.from(vector), { metadata: [meta] });
    }
    if (deletes.length) exact.index.delete(deletes);
    exact.cid = collections.synced?.cid;
    exact.size = exact.index.size;
    return exact.index.size;
  },
  async sources() {
    return Object.fromEntries(Object.entries(sources).map(([role, s]) => [role, s.stats()]));
  },
};

self.addEventListener('message', async (event) => {
  const { data, ports } = event;
  if (data?.connect) {
    const port = ports[0];
    const handle = serve(packageFor(data.connect), (message, transfer) => port.postMessage(message, transfer));
    port.addEventListener('message', (e) => handle(e.data));
    port.start();
    return;
  }
  const { id, op, args } = data ?? {};
  if (id === undefined) return;
  try {
    if (!ops[op]) throw new Error(`unknown demo operation ${op}`);
    post({ id, ok: true, value: await ops[op](args ?? {}) });
  } catch (err) {
    post({ id, ok: false, error: { name: err?.name, message: String(err?.message ?? err) } });
  }
});
post({ event: 'ready' });
