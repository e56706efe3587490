// app.mjs -- the demo page: one Fashion-MNIST collection, published by the
// native CLI behind loopback gateways (A and B read its folder; C fetches
// through a Helia node over bitswap), opened by name, searched lazily,
// synced into IndexedDB, searched offline, changed, and shared with a
// second tab.  Every collection lives in a Web Worker (worker.mjs); this
// file only draws and sends messages.
//
// window.demoState holds what the page shows, for tests to assert on:
//   phase       'loading' | 'ready' | 'syncing' | 'error'
//   root        the published root CID; opened: { name, root } -- the name
//               the lazy collection was opened by and the root it resolved
//               to (null until a gateway answered); local: the synced collection's
//               { cid, size, readOnly, buffered, segments }
//   synced      the IndexedDB copy is complete; mode: 'lazy' | 'synced'
//   lazyAvailable  the gateways answered the lazy open
//   sync        { blocks, totalBlocks, bytes, totalBytes, percent, verified, done, ms }
//   lastQuery   { mode, latencyMs, fetchedBytes, recall, exactSize, filter,
//                 ef, nprobe, k, results: [{ id, distance, category, label, ink, added }] }
//   timings     { firstResultMs, lazyOpenMs, lazyOpenBytes, syncedOpenMs, exactMs }
//   rejected    blocks a gateway answered with bytes that do not hash to their CID
//   failures    other source failures (gateway down, timeouts)
//   gateways    the demo server's view of each ({ name, url, running,
//               requests, ...; C: helia { peerId, addrs, bitswapBlocks,
//               bitswapBytes, localBlocks, localBytes, failures } }) plus
//               pageBytes: what this page's sources received from it
//   ops         finished user actions (a counter tests wait on); busy: running ones
import { workerCollection } from '../js/browser.mjs';

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
};
const fmtBytes = (n) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB`
  : n < 1 << 30 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / (1 << 30)).toFixed(2)} GiB`);
const fmtMs = (ms) => (ms < 10 ? `${ms.toFixed(2)} ms` : ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`);
const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
const short = (cid) => (cid ? `${cid.slice(0, 10)}…${cid.slice(-6)}` : '—');

const state = window.demoState = {
  phase: 'loading', root: null, local: null, synced: false, mode: 'lazy', lazyAvailable: false,
  sync: null, lastQuery: null, byMode: {}, timings: {}, rejected: [], failures: [], errors: [],
  ops: 0, busy: 0, segments: [], gateways: [], queries: 0, compare: null, opened: null,
};

let info, queries, worker, lazy = null, synced = null, dbName, current = null;
const SYNCED_KEY = () => `shoal-demo-synced:${dbName}`;

// --------------------------------------------------------------- pixels

function pixelsOf(b64) {
  const bin = atob(b64);
  const px = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) px[i] = bin.charCodeAt(i);
  return px;
}
function b64Of(px) {
  let s = '';
  for (const p of px) s += String.fromCharCode(p);
  return btoa(s);
}
function canvasOf(px, title) {
  const c = el('canvas', { width: 28, height: 28, title });
  const ctx = c.getContext('2d');
  const img = ctx.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = 255 - px[i]; // dark ink on a light page
    img.data.set([v, v, v, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

// --------------------------------------------------------------- worker

let nextId = 0;
const waiting = new Map();
function demo(op, args) {
  return new Promise((resolve, reject) => {
    const id = `d${nextId++}`;
    waiting.set(id, { resolve, reject });
    worker.postMessage({ id, op, args });
  });
}
function onWorkerMessage({ data }) {
  if (data?.event === 'progress') return onProgress(data);
  if (data?.event === 'rejected') return onRejected(data);
  const w = data && waiting.get(data.id);
  if (!w) return;
  waiting.delete(data.id);
  if (data.ok) w.resolve(data.value);
  else w.reject(Object.assign(new Error(data.error.message), { name: data.error.name }));
}
async function connect(role, how) {
  const { port1, port2 } = new MessageChannel();
  worker.postMessage({ connect: role }, [port2]);
  const c = await workerCollection(port1, how);
  c.port = port1;
  return c;
}
const gatewayList = () => info.gateways.map(({ name, url }) => ({ name, url }));

// --------------------------------------------------------------- actions

function showError(err) {
  const message = `${err?.name ?? 'Error'}: ${err?.message ?? err}`;
  state.errors.push(message);
  $('error').hidden = false;
  $('error').textContent = message;
}
async function action(fn) {
  state.busy++;
  document.body.dataset.busy = String(state.busy);
  try {
    await fn();
  } catch (err) {
    showError(err);
  } finally {
    await refreshSources().catch(() => {});
    state.busy--;
    state.ops++;
    document.body.dataset.busy = String(state.busy);
    document.body.dataset.ops = String(state.ops);
    render();
  }
}

async function refreshInfo() {
  info = await (await fetch('api/info', { cache: 'no-store' })).json();
  state.root = info.root;
  state.segments = info.segments;
  state.gateways = info.gateways;
}

// The gateways' figures: the server's (requests, gateway C's bitswap
// counts) and, beside them, the bytes this page's sources received from
// each (the worker's anySource stats, every role summed).
async function refreshSources() {
  if (!worker) return;
  const [server, page] = await Promise.all([fetch('api/info', { cache: 'no-store' }).then((r) => r.json()), demo('sources')]);
  const received = new Map();
  for (const role of Object.values(page ?? {}))
    for (const s of role.sources ?? []) received.set(s.name, (received.get(s.name) ?? 0) + (s.fetchedBytes ?? 0));
  info.gateways = server.gateways;
  state.gateways = server.gateways.map((g) => ({ ...g, pageBytes: received.get(g.url) ?? 0 }));
}

async function openLazy() {
  if (lazy) {
    const old = lazy;
    lazy = null;
    await old.close().catch(() => {});
    old.port.close();
  }
  state.lazyAvailable = false;
  const t = performance.now();
  try {
    // By name when the server has one: the gateways resolve it to a root.
    const open = info.name ? { name: info.name } : { root: info.root };
    lazy = await connect('lazy', { open: { gateways: gatewayList(), ...open, lazy: true } });
  } catch (err) {
    state.lazyError = `${err.name}: ${err.message}`;
    return false;
  }
  state.timings.lazyOpenMs = performance.now() - t;
  if (info.name) state.opened = { name: info.name, root: lazy.cid };
  state.timings.lazyOpenBytes = (await lazy.stats()).fetchedBytes;
  state.lazyAvailable = true;
  state.lazyError = null;
  return true;
}

// The Web Lock of the store is held by the worker of the tab that writes.
// Right after a reload the previous page's worker may still hold it for a
// moment: wait for it briefly, so the reloaded tab becomes the writer again
// rather than a reader of nobody.
async function lockFree(ms = 1500) {
  const until = performance.now() + ms;
  while (navigator.locks) {
    const free = await navigator.locks.request(`shoal:${dbName}`, { ifAvailable: true }, (lock) => !!lock);
    if (free || performance.now() > until) return free;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

async function openSynced() {
  await lockFree();
  const t = performance.now();
  synced = await connect('synced', { open: { store: { indexedDB: dbName } } });
  state.timings.syncedOpenMs = performance.now() - t;
  await refreshLocal();
  state.synced = true;
  buildExact();
}

let exactPromise = null;
function buildExact() {
  exactPromise = demo('buildExact').then((r) => {
    if (r.ms) state.timings.exactMs = r.ms;
    state.exactSize = r.size;
  });
  return exactPromise;
}

async function refreshLocal() {
  const local = await demo('local');
  const changed = state.local && local && local.cid !== state.local.cid;
  state.local = local;
  return changed;
}

async function sync() {
  if (state.synced) return;
  state.phase = 'syncing';
  state.sync = { blocks: 0, totalBlocks: info.blocks, bytes: 0, totalBytes: info.bytes, verified: 0, percent: 0, done: false };
  render();
  if (!synced) {
    await lockFree();
    const root = await demo('localRoot', { db: dbName });
    // An interrupted sync left an older root and some blocks: open it and
    // fetch only the rest.  Otherwise start from an empty collection.
    synced = root
      ? await connect('synced', { open: { store: { indexedDB: dbName } } })
      : await connect('synced', { create: { dim: info.dim, metric: 'l2', store: { indexedDB: dbName } } });
  }
  try {
    const r = await demo('sync', { root: state.opened?.root ?? info.root, gateways: gatewayList() });
    Object.assign(state.sync, { done: true, percent: 100, ms: r.ms, fetchedBlocks: r.fetchedBlocks, fetchedBytes: r.fetchedBytes });
    localStorage.setItem(SYNCED_KEY(), info.root);
    state.synced = true;
    state.mode = 'synced';
    await refreshLocal();
    await buildExact();
  } finally {
    state.phase = 'ready';
  }
  if (current) await search(current);
}

function onProgress({ blocks, bytes }) {
  if (!state.sync) return;
  Object.assign(state.sync, { blocks, bytes, verified: blocks,
    percent: Math.min(100, Math.floor((bytes / state.sync.totalBytes) * 100)) });
  renderSync();
}
function onRejected(r) {
  (r.name === 'CorruptDataError' ? state.rejected : state.failures).push({ ...r, at: Date.now() });
  renderSources();
}

// ------------------------------------------------------------- searching

function currentFilter() {
  const boxes = [...document.querySelectorAll('#categories input')];
  const on = boxes.filter((b) => b.checked).map((b) => b.value);
  const filter = {};
  if (on.length < boxes.length) filter.category = { $in: on };
  const ink = Number($('ink').value);
  if (ink > 0) filter.ink = { $gte: ink };
  return Object.keys(filter).length ? filter : undefined;
}
function searchOptions() {
  const k = Number($('k').value);
  return { k, ef: Math.max(k, Number($('ef').value)), nprobe: Number($('nprobe').value), filter: currentFilter() };
}

async function runQuery(mode, q) {
  const c = mode === 'lazy' ? lazy : synced;
  if (!c) throw new Error(mode === 'lazy' ? `lazy mode is unavailable (${state.lazyError ?? 'no gateway'})` : 'sync first');
  const { k, ef, nprobe, filter } = searchOptions();
  const options = { ef, nprobe, ...(filter ? { filter } : {}) };
  const before = (await c.stats()).fetchedBytes;
  const t = performance.now();
  const r = await c.search(q.vector, k, options);
  const latencyMs = performance.now() - t;
  const fetchedBytes = (await c.stats()).fetchedBytes - before;
  const results = r.ids.map((id, i) => ({ id, distance: r.distances[i], category: r.metadata[i]?.category,
    label: r.metadata[i]?.label, ink: r.metadata[i]?.ink, added: !!r.metadata[i]?.added, px: r.metadata[i]?.px }));
  return { mode, query: q.label, latencyMs, fetchedBytes, k, ef, nprobe, filter, results };
}

async function withRecall(out, q) {
  if (exactPromise) await exactPromise.catch(() => {});
  const ex = await demo('exact', { query: Float32Array.from(q.vector), k: out.k, filter: out.filter });
  if (!ex) return out;
  const truth = new Set(ex.ids);
  out.exactSize = ex.size;
  out.exactMs = ex.ms;
  out.recall = ex.ids.length ? out.results.filter((r) => truth.has(r.id)).length / ex.ids.length : 1;
  return out;
}

async function search(q) {
  current = q;
  const out = await withRecall(await runQuery(state.mode, q), q);
  state.lastQuery = { ...out, results: out.results.map(({ px, ...r }) => r) };
  state.byMode[state.mode] = state.lastQuery;
  state.queries++;
  if (state.timings.firstResultMs === undefined) state.timings.firstResultMs = performance.now();
  renderResults(out);
}

// Both modes, same query and options: the synced copy must answer exactly
// as the gateways' version does (as long as nothing was changed locally).
async function compare() {
  if (!current) throw new Error('pick a query image first');
  const a = await withRecall(await runQuery('lazy', current), current);
  const b = await withRecall(await runQuery('synced', current), current);
  const same = a.results.length === b.results.length &&
    a.results.every((r, i) => r.id === b.results[i].id && r.distance === b.results[i].distance);
  const strip = (o) => ({ ...o, results: o.results.map(({ px, ...r }) => r) });
  state.compare = { same, lazy: strip(a), synced: strip(b) };
  state.byMode.lazy = state.compare.lazy;
  state.byMode.synced = state.compare.synced;
  renderResults(state.mode === 'lazy' ? a : b);
}

const queryOf = (label, px, meta) => ({ label, px, vector: Float32Array.from(px), meta });

// ---------------------------------------------------------------- writes

async function addCurrent() {
  if (!current?.meta) throw new Error('pick a test image (the top row) first: it is not in the collection yet');
  const m = current.meta;
  const id = `added-${m.test}`;
  const record = { id, vector: Array.from(current.px), metadata: { category: m.category, label: m.label, ink: m.ink, px: b64Of(current.px), added: true } };
  await synced.upsert([{ ...record, vector: current.vector }]);
  await demo('exactApply', { upserts: [record] });
  state.lastAdded = id;
  await refreshLocal();
  await search(current);
}
async function remove(id) {
  await synced.delete([id]);
  await demo('exactApply', { deletes: [id] });
  state.lastDeleted = id;
  await refreshLocal();
  if (current) await search(current);
}
async function flush() {
  await synced.flush();
  await refreshLocal();
}

async function gatewaySwitch(what, on) {
  const r = await fetch(`api/${what}?${what === 'tamper' ? 'on' : 'running'}=${on ? 1 : 0}`, { method: 'POST' });
  info = await r.json();
  state.gateways = info.gateways;
  // A fresh lazy collection, so that every block is asked for again (the
  // old one answers from blocks it already verified and keeps).
  if (what === 'tamper' && on) {
    await openLazy();
    if (current && state.mode === 'lazy') await search(current);
  }
  if (what === 'gateways' && on && !lazy) await openLazy();
}

// ---------------------------------------------------------------- render

function renderSync() {
  const s = state.sync;
  const bar = $('sync-bar');
  bar.value = s ? s.percent : 0;
  $('sync-text').textContent = s
    ? `${fmtBytes(s.bytes)} of ${fmtBytes(s.totalBytes)} · ${fmtInt(s.blocks)} of ${fmtInt(s.totalBlocks)} blocks · ` +
      `${fmtInt(s.verified)} verified (SHA-256 against their CIDs)${s.done ? ` · done in ${fmtMs(s.ms)}` : ''}`
    : state.synced ? 'Synced earlier: the collection opens from IndexedDB, without the network.' : 'Not synced: searches fetch from the gateways.';
}

function renderSources() {
  const list = $('rejected');
  list.replaceChildren(...state.rejected.slice(-6).map((r) => el('li', {},
    el('b', { textContent: `gateway ${r.gateway}` }), ' sent block ', el('code', { textContent: short(r.cid) }),
    ' with bytes that do not hash to its CID: rejected')));
  const last = state.failures.at(-1);
  const fails = last ? ` · ${state.failures.length} other source failures (last: gateway ${last.gateway}, ${last.message.split(': ').at(-1).slice(0, 60)})` : '';
  $('rejected-summary').textContent = state.rejected.length
    ? `${state.rejected.length} blocks rejected; each one was then served by another gateway${fails}`
    : `No block rejected${fails}`;
}

function renderResults(out) {
  const grid = $('results');
  grid.replaceChildren(...out.results.map((r) => {
    const px = r.px ? pixelsOf(r.px) : new Uint8Array(784);
    const c = canvasOf(px, `id ${r.id}`);
    c.addEventListener('click', () => action(() => search(queryOf(`result ${r.id}`, px))));
    const del = el('button', { className: 'del', textContent: '×', title: `delete ${r.id}`, disabled: !synced || state.local?.readOnly });
    del.dataset.id = r.id;
    del.addEventListener('click', () => action(() => remove(r.id)));
    return el('figure', { className: r.added ? 'added' : '' }, c, del,
      el('figcaption', {}, el('b', { textContent: r.id }), el('br'), `${r.category} · ink ${r.ink}`, el('br'), `d = ${fmtInt(r.distance)}`));
  }));
  const q = state.lastQuery;
  $('query-desc').textContent = `${out.query}: ${out.mode} search, k ${out.k}, ef ${out.ef}, nprobe ${out.nprobe}` +
    (out.filter ? `, filter ${JSON.stringify(out.filter)}` : ', no filter');
  const rows = ['lazy', 'synced'].map((m) => {
    const r = state.byMode[m];
    return el('tr', { className: m === state.mode ? 'on' : '' }, el('th', { textContent: m === 'lazy' ? 'lazy (gateways)' : 'synced (IndexedDB)' }),
      el('td', { textContent: r ? fmtMs(r.latencyMs) : '—' }), el('td', { textContent: r ? fmtBytes(r.fetchedBytes) : '—' }),
      el('td', { textContent: r?.recall !== undefined ? r.recall.toFixed(2) : '—' }));
  });
  $('modes').replaceChildren(el('tr', {}, el('th'), el('th', { textContent: 'latency' }), el('th', { textContent: 'fetched' }),
    el('th', { textContent: `recall@${q?.k ?? 10}` })), ...rows);
  $('recall-note').textContent = out.recall === undefined
    ? 'Recall needs every vector: it is measured against an exact (flat) scan of the synced copy, so sync first.'
    : `Recall against an exact flat scan of ${fmtInt(out.exactSize)} synced records (${fmtMs(out.exactMs)}).`;
  if (state.compare) $('compare-result').textContent = state.compare.same
    ? '✓ lazy and synced searches returned the same ids and distances'
    : '✗ lazy and synced results differ (records were added or deleted locally?)';
}

function render() {
  $('root').textContent = info?.root ?? '…';
  $('local-root').textContent = state.local?.cid ?? '— (not synced)';
  $('segments').replaceChildren(...(info?.segments ?? []).map((s) => el('tr', {},
    el('td', { textContent: `${s.kind}${s.kind === 'ivf' ? '-pq' : ''}` }), el('td', { textContent: s.tier }),
    el('td', { textContent: fmtInt(s.records) }), el('td', { textContent: fmtBytes(s.bytes) }),
    el('td', { textContent: fmtInt(s.blocks) }), el('td', {}, el('code', { textContent: s.cid })))));
  $('opened').textContent = state.opened
    ? `opened by name ${state.opened.name} -> ${state.opened.root}` +
      (state.local && state.local.cid !== state.opened.root ? ' (the name still points at the published version; the local copy has moved on)' : '')
    : info?.name ? `name ${info.name}: not resolved (no gateway answered)` : '';
  $('gateways').replaceChildren(...(state.gateways ?? []).map((g) => el('li', {},
    el('b', { textContent: `gateway ${g.name}` }), ` ${g.url} · ${g.running ? 'running' : 'stopped'}`,
    g.name === 'A' ? ` · ${g.tamper ? 'CORRUPTS every block' : 'honest'}`
      : g.helia ? ` · from Helia node ${short(g.helia.fetcherPeerId)}, fetching over bitswap from ${short(g.helia.peerId)}: ` +
        `${fmtInt(g.helia.bitswapBlocks)} blocks, ${fmtBytes(g.helia.bitswapBytes)} received and verified` +
        `${g.helia.localBlocks ? `, ${fmtInt(g.helia.localBlocks)} answered from its copy` : ''}`
      : ` · clean mirror, +${g.delayMs} ms`,
    ` · ${fmtInt(g.requests)} requests, this page received ${fmtBytes(g.pageBytes ?? 0)}`)));
  const mode = state.mode === 'lazy'
    ? `lazy: blocks come from the gateways as searches need them (${state.lazyAvailable ? `open fetched ${fmtBytes(state.timings.lazyOpenBytes ?? 0)} in ${fmtMs(state.timings.lazyOpenMs ?? 0)}` : 'unavailable'})`
    : `synced: everything is in IndexedDB (${state.timings.syncedOpenMs !== undefined ? `opened in ${fmtMs(state.timings.syncedOpenMs)}` : `synced in ${fmtMs(state.sync?.ms ?? 0)}`}), no network needed`;
  $('mode-desc').textContent = mode;
  $('mode-lazy').checked = state.mode === 'lazy';
  $('mode-synced').checked = state.mode === 'synced';
  $('mode-lazy').disabled = !state.lazyAvailable;
  $('mode-synced').disabled = !state.synced;
  $('sync').disabled = state.synced || state.phase === 'syncing' || !state.lazyAvailable;
  const local = state.local;
  const writable = synced && local && !local.readOnly;
  $('add').disabled = !writable;
  $('flush').disabled = !writable;
  $('compare').disabled = !(state.lazyAvailable && state.synced);
  $('local-desc').textContent = !local ? 'Sync to write: adds and deletes go into the IndexedDB copy.'
    : `${fmtInt(local.size)} records · ${local.segments} segments · ${local.buffered} in the buffer (logged, not yet flushed into a segment)` +
      (local.readOnly ? ' · READ-ONLY: another tab is the writer; this one follows its commits' : ' · this tab is the writer');
  $('tamper').textContent = state.gateways?.[0]?.tamper ? 'Gateway A: stop corrupting' : 'Gateway A: corrupt blocks';
  $('stop').textContent = state.gateways?.every((g) => g.running) ? 'Stop the gateways' : 'Start the gateways';
  $('status').textContent = `${state.phase} · ${state.queries} searches · first result ${state.timings.firstResultMs ? fmtMs(state.timings.firstResultMs) : '—'} after navigation`;
  renderSync();
  renderSources();
  document.body.dataset.phase = state.phase;
}

// ------------------------------------------------------------------ wiring

async function main() {
  await refreshInfo();
  dbName = `shoal-demo-${info.root.slice(-12)}`;
  queries = (await (await fetch('api/queries.json')).json()).map((m) => ({ ...m, pixels: pixelsOf(m.px) }));
  $('gallery').replaceChildren(...queries.map((m, i) => {
    const c = canvasOf(m.pixels, `test image ${m.test}: ${m.category}`);
    c.dataset.index = i;
    c.addEventListener('click', () => action(() => search(queryOf(`test image ${m.test} (${m.category})`, m.pixels, m))));
    return c;
  }));
  $('categories').replaceChildren(...['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
    .map((name) => el('label', {}, el('input', { type: 'checkbox', value: name, checked: true }), ` ${name}`)));
  $('nprobe').max = String(info.nlist);
  worker = new Worker(new URL('./worker.mjs', import.meta.url), { type: 'module' });
  worker.addEventListener('message', onWorkerMessage);
  worker.addEventListener('error', (e) => showError(e.message ?? 'worker error'));
  await new Promise((resolve) => worker.addEventListener('message', function ready({ data }) {
    if (data?.event === 'ready') { worker.removeEventListener('message', ready); resolve(); }
  }));
  render();
  const wasSynced = localStorage.getItem(SYNCED_KEY()) && (await demo('localRoot', { db: dbName }));
  await Promise.all([openLazy(), wasSynced ? openSynced() : null]);
  state.mode = state.synced ? 'synced' : 'lazy';
  state.phase = 'ready';
  render();
  if (state.lazyAvailable || state.synced) {
    const m = queries[0];
    await search(queryOf(`test image ${m.test} (${m.category})`, m.pixels, m));
  }
  // A reading tab follows the writer's commits: show them as they come.
  setInterval(() => {
    if (!synced || state.busy) return;
    refreshLocal().then(async (changed) => {
      if (!changed) return;
      await buildExact();
      if (current) await search(current);
      render();
    }).catch(() => {});
  }, 1000);
}

const on = (id, fn) => $(id).addEventListener('click', () => action(fn));
on('sync', sync);
on('compare', compare);
on('add', addCurrent);
on('flush', flush);
on('tamper', () => gatewaySwitch('tamper', !state.gateways[0].tamper));
on('stop', () => gatewaySwitch('gateways', !state.gateways.every((g) => g.running)));
for (const id of ['mode-lazy', 'mode-synced'])
  $(id).addEventListener('change', () => action(async () => {
    state.mode = $('mode-lazy').checked ? 'lazy' : 'synced';
    if (current) await search(current);
  }));
for (const id of ['ef', 'nprobe', 'ink']) {
  $(id).addEventListener('input', () => { $(`${id}-value`).textContent = $(id).value; });
  $(id).addEventListener('change', () => current && action(() => search(current)));
}
$('k').addEventListener('change', () => current && action(() => search(current)));
$('categories').addEventListener('change', () => current && action(() => search(current)));
$('all').addEventListener('click', () => {
  const boxes = [...document.querySelectorAll('#categories input')];
  const all = boxes.every((b) => b.checked);
  for (const b of boxes) b.checked = !all;
  if (current) action(() => search(current));
});
window.addEventListener('error', (e) => showError(e.error ?? e.message));
window.addEventListener('unhandledrejection', (e) => showError(e.reason));

action(async () => {
  try {
    await main();
  } catch (err) {
    state.phase = 'error';
    throw err;
  }
});
