// playground.mjs -- the whole path in one page: seeded data, an index build with a
// progress bar, search with recall against an exact index, a filter, and
// segments (save, load, download, tampering, .seg files from the CLI).
// Plain DOM code; the package is imported straight from the repository's js/.
//
// Inputs can be preset from the URL: /demo/?n=5000&dim=64&kind=ivf; auto=0
// skips the build that otherwise runs when the page opens.
import { Index, wasmInfo, simdSupported, CorruptDataError } from '../js/index.mjs';

const $ = (id) => document.getElementById(id);
const EVAL_QUERIES = 100;
// A filter costs N calls into JS per search, so filtered recall uses fewer queries to keep the slider live.
const EVAL_FILTERED = 20;
const evalCount = () => ($('filter').checked ? EVAL_FILTERED : EVAL_QUERIES);

// ------------------------------------------------------------------ helpers

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
/** Approximately standard normal: the sum of 4 uniforms, rescaled (only + and *, so the same everywhere). */
const normal = (rand) => (rand() + rand() + rand() + rand() - 2) * 1.7320508075688772;

const fmtMs = (ms) => (ms < 1 ? ms.toFixed(3) : ms < 10 ? ms.toFixed(2) : ms < 1000 ? ms.toFixed(1) : ms.toFixed(0)) + ' ms';
const fmtBytes = (b) => b >= 1 << 20 ? (b / (1 << 20)).toFixed(2) + ' MB' : b >= 1024 ? (b / 1024).toFixed(1) + ' kB' : b + ' B';
const fmtInt = (n) => n.toLocaleString('en-US');
const el = (tag, props = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
};
const nextFrame = () => new Promise((resolve) => {
  // requestAnimationFrame lets the progress bar paint; the timeout keeps a hidden tab going.
  const t = setTimeout(resolve, 100);
  requestAnimationFrame(() => { clearTimeout(t); setTimeout(resolve, 0); });
});

/** stats: [value, label, class?][] as tiles. */
function showStats(id, stats) {
  $(id).replaceChildren(...stats.map(([value, label, cls]) =>
    el('div', { className: 'stat' + (cls ? ' ' + cls : '') }, el('b', { textContent: value }), el('span', { textContent: label }))));
}

/** Shows an error as "ClassName (code): message" in the box with this id. */
function showError(id, err) {
  const box = $(id);
  box.hidden = false;
  const code = err?.code !== undefined ? ` (code ${err.code})` : '';
  box.replaceChildren(el('b', { textContent: (err?.name ?? 'Error') + code + ': ' }), String(err?.message ?? err));
}
const clearError = (id) => { $(id).hidden = true; $(id).replaceChildren(); };

function num(id, fallback) {
  const v = $(id).value.trim();
  if (v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new RangeError(`${id} must be a number, not "${v}"`);
  return n;
}
const variantOption = () => ({ auto: undefined, simd: true, base: false })[$('variant').value];

/** Marks the page busy or ready (the automated test waits on data-state and data-ops). */
let ops = 0;
function setBusy(busy) {
  document.body.dataset.state = busy ? 'busy' : 'ready';
  if (!busy) document.body.dataset.ops = String(++ops);
  for (const id of ['build', 'random-query', 'pick-record', 'save', 'load', 'tamper', 'file'])
    $(id).disabled = busy || (id !== 'build' && id !== 'file' && !state.index) ||
      ((id === 'load' || id === 'tamper') && !state.saved);
  $('slider').disabled = busy || !state.index || state.index.kind === 'flat';
  $('file-query').disabled = busy || !state.fileIndex;
  $('cancel').disabled = !busy || !state.building;
}

/** Runs an async action with the page marked busy; errors go to errorId. */
async function action(errorId, fn) {
  if (document.body.dataset.state === 'busy') return;
  clearError(errorId);
  setBusy(true);
  try {
    await fn();
  } catch (err) {
    showError(errorId, err);
  } finally {
    state.building = false;
    setBusy(false);
  }
}

// -------------------------------------------------------------------- state

const state = {
  data: null,       // { key, n, dim, vectors, ids, queries (EVAL_QUERIES*dim), queryRand, clusters }
  ref: null,        // { key, index }: exact flat index over the data
  truth: new Map(), // `${k}/${filter}` -> ids[][] of the exact results for the eval queries
  index: null,      // the index under test
  query: null,      // { vector, label }
  saved: null,      // { bytes, cid, url }
  loaded: null,     // Index loaded from the saved bytes
  fileIndex: null,  // Index loaded from a .seg file
  fileRand: rng(0x5eed),
  building: false,
  cancel: false,
};

// ------------------------------------------------------------------ runtime

async function showRuntime() {
  const info = await wasmInfo({ simd: variantOption() });
  const rows = [
    ['Shoal version', info.version],
    ['SIMD128 in this browser', simdSupported() ? 'yes' : 'no'],
    ['wasm build loaded', info.variant === 'simd' ? 'shoal-simd.wasm (SIMD128)' : 'shoal-base.wasm (baseline)'],
    ['distance kernels', info.kernels],
  ];
  $('runtime').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', { textContent: k }), el('dd', { textContent: v })]));
}

// --------------------------------------------------------------------- data

/** Generates the records and the eval queries, unless the inputs are unchanged. */
async function ensureData() {
  const n = num('n'), dim = num('dim'), seed = num('seed', 0);
  const clusters = num('clusters', 0), spread = num('spread', 0.5);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`N must be a positive integer, not ${n}`);
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`dimensions must be a positive integer, not ${dim}`);
  if (!Number.isInteger(clusters) || clusters < 0) throw new RangeError(`clusters must be an integer >= 0`);
  const key = JSON.stringify([n, dim, seed, clusters, spread]);
  if (state.data?.key === key) return false;
  state.data = null;
  dropRef();

  const t = performance.now();
  const rand = rng(seed);
  const centres = new Float32Array(clusters * dim);
  for (let i = 0; i < centres.length; i++) centres[i] = normal(rand);
  // One draw: a record (or query) near a random centre, or uniform in [-1, 1) without clusters.
  const draw = (r, out, at) => {
    if (clusters === 0) {
      for (let j = 0; j < dim; j++) out[at + j] = r() * 2 - 1;
      return;
    }
    const c = Math.floor(r() * clusters) * dim;
    for (let j = 0; j < dim; j++) out[at + j] = centres[c + j] + spread * normal(r);
  };
  const vectors = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) draw(rand, vectors, i * dim);
  const ids = Array.from({ length: n }, (_, i) => String(i));
  const queryRand = rng(seed ^ 0x9e3779b9);
  const queries = new Float32Array(EVAL_QUERIES * dim);
  for (let q = 0; q < EVAL_QUERIES; q++) draw(queryRand, queries, q * dim);
  const genMs = performance.now() - t;
  state.data = { key, n, dim, vectors, ids, queries, queryRand, draw };
  showStats('data-stats', [
    [`${fmtInt(n)} × ${dim}`, 'records (float32)'],
    [fmtBytes(vectors.byteLength), 'raw vectors'],
    [clusters ? `${clusters}, σ ${spread}` : 'uniform', 'clusters'],
    [fmtMs(genMs), 'generate (JS)'],
  ]);
  return true;
}

function dropRef() {
  state.ref?.index.free();
  state.ref = null;
  state.truth.clear();
}

/** The exact flat index over the data, for recall. */
async function ensureRef(metric) {
  const key = state.data.key + metric + $('variant').value;
  if (state.ref?.key === key) return;
  dropRef();
  const t = performance.now();
  const index = await Index.create({ dim: state.data.dim, metric, kind: 'flat', simd: variantOption() });
  index.add(state.data.ids, state.data.vectors);
  state.ref = { key, index, ms: performance.now() - t };
}

const filterFn = (id) => Number(id) % 7 === 0;
const searchFilter = () => ($('filter').checked ? filterFn : undefined);

/** Exact results for the eval queries (computed once per k and filter). */
function evalTruth(k) {
  const key = `${k}/${$('filter').checked}`;
  let truth = state.truth.get(key);
  if (!truth) {
    const { dim, queries } = state.data;
    const filter = searchFilter();
    const t = performance.now();
    truth = [];
    for (let q = 0; q < evalCount(); q++)
      truth.push(state.ref.index.search(queries.subarray(q * dim, (q + 1) * dim), k, { filter }).ids);
    truth.ms = (performance.now() - t) / truth.length;
    state.truth.set(key, truth);
  }
  return truth;
}

// -------------------------------------------------------------------- build

function kindOptions(kind) {
  if (kind === 'hnsw')
    return { M: num('M'), efConstruction: num('efConstruction'), quantizer: $('hnsw-quantizer').value };
  if (kind === 'ivf') {
    const quantizer = $('quantizer').value;
    const o = { nlist: num('nlist'), quantizer };
    if (quantizer === 'pq') {
      o.pqBits = Number($('pqBits').value);
      const pqM = num('pqM', 0);
      if (pqM) o.pqM = pqM;
    }
    const rerank = num('rerank', 0);
    if (quantizer !== 'f32' && rerank) o.rerank = rerank;
    return o;
  }
  return {};
}

function progress(text, done, total) {
  $('progress-row').hidden = false;
  $('progress-text').textContent = text;
  if (total === undefined) $('progress').removeAttribute('value'); // indeterminate
  else { $('progress').max = total; $('progress').value = done; }
}

async function build() {
  freeIndexes();
  $('build-stats').replaceChildren();
  $('search-stats').replaceChildren();
  progress('generating data…');
  await nextFrame();
  await showRuntime();
  const dataChanged = await ensureData();
  const { dim } = state.data;
  const metric = $('metric').value, kind = $('kind').value;
  progress('exact reference index…');
  await nextFrame();
  await ensureRef(metric);
  if (dataChanged) state.query = null;

  const options = { dim, metric, kind, seed: num('seed', 0), simd: variantOption(), ...kindOptions(kind) };
  const index = await Index.create(options);
  try {
    await fill(index, options);
  } catch (err) {
    if (state.index !== index) index.free();
    throw err;
  }
}

async function fill(index, options) {
  const { n, dim, vectors, ids } = state.data;
  const kind = index.kind, t0 = performance.now();
  let trainMs = 0;
  if (kind === 'ivf') {
    progress(`training ${options.nlist} lists (k-means${options.quantizer === 'pq' ? ' + PQ codebooks' : ''})…`);
    await nextFrame();
    const t = performance.now();
    index.train(vectors);
    trainMs = performance.now() - t;
  }
  // Add in chunks sized to take ~100 ms each, yielding between them so the bar paints.
  state.building = true;
  state.cancel = false;
  setBusy(true);
  const tAdd = performance.now();
  let chunk = kind === 'flat' ? 8192 : 512;
  for (let start = 0; start < n;) {
    const end = Math.min(n, start + chunk);
    const t = performance.now();
    index.add(ids.slice(start, end), vectors.subarray(start * dim, end * dim), {
      onProgress: (done) => {
        const total = start + done, s = (performance.now() - tAdd) / 1000;
        progress(`adding ${fmtInt(total)} / ${fmtInt(n)} · ${s.toFixed(1)} s · ${fmtInt(Math.round(total / Math.max(s, 1e-3)))} /s`, total, n);
      },
    });
    const ms = performance.now() - t;
    chunk = Math.max(256, Math.min(65536, Math.round(chunk * Math.min(4, 100 / Math.max(ms, 1)))));
    start = end;
    await nextFrame();
    if (state.cancel) {
      progress(`cancelled after ${fmtInt(start)} of ${fmtInt(n)} records`, start, n);
      break;
    }
  }
  const addMs = performance.now() - tAdd, buildMs = performance.now() - t0;
  state.building = false;
  if (!state.cancel) progress(`built: ${fmtInt(index.size)} records in ${fmtMs(buildMs)}`, 1, 1);
  state.index = index;

  const s = index.stats();
  const tiles = [
    [fmtMs(buildMs), `build ${kind}${kind === 'hnsw' ? ` M=${options.M} efC=${options.efConstruction}` : ''}`],
    ...(kind === 'ivf' ? [[fmtMs(trainMs), 'train'], [fmtMs(addMs), 'add']] : []),
    [`${fmtInt(Math.round(index.size / (addMs / 1000)))} /s`, 'records added'],
    [fmtBytes(index.memoryBytes()), `memoryBytes() (${(index.memoryBytes() / (index.size * dim * 4)).toFixed(2)}× raw)`],
    [fmtInt(s.size), 'stats().size'],
  ];
  if (kind === 'hnsw') tiles.push([String(s.levels), 'stats().levels'], [s.meanDegree.toFixed(1), 'stats().meanDegree']);
  if (kind === 'ivf') tiles.push([String(s.nlist), 'stats().nlist'], [fmtBytes(s.codesBytes), 'stats().codesBytes'],
    [fmtBytes(s.rerankBytes), 'stats().rerankBytes']);
  tiles.push([index.simd, 'kernels'], [fmtMs(state.ref.ms), 'exact reference build']);
  showStats('build-stats', tiles);
  $('index-label').textContent = `${kind}${kind === 'ivf' ? ' ' + options.quantizer : kind === 'hnsw' ? ' ' + options.quantizer : ''}`;

  // The slider: ef for HNSW, nprobe for IVF; nothing to tune for flat.
  const slider = $('slider');
  if (kind === 'hnsw') {
    $('slider-name').textContent = 'ef';
    Object.assign(slider, { min: 10, max: 400, step: 1 });
    slider.value = 64;
  } else if (kind === 'ivf') {
    $('slider-name').textContent = 'nprobe';
    Object.assign(slider, { min: 1, max: s.nlist, step: 1 });
    slider.value = Math.max(1, Math.round(s.nlist / 16));
  } else {
    $('slider-name').textContent = 'ef / nprobe';
  }
  $('record').max = state.data.n - 1;
  if (!state.query) newRandomQuery(false);
  search();
}

function freeIndexes() {
  for (const key of ['index', 'loaded']) {
    state[key]?.free();
    state[key] = null;
  }
  dropSaved();
}

// ------------------------------------------------------------------- search

function searchOptions(index) {
  const o = { filter: searchFilter() };
  if (index.kind === 'hnsw') o.ef = Math.max(Number($('slider').value), Number($('k').value));
  if (index.kind === 'ivf') o.nprobe = Number($('slider').value);
  return o;
}

function newRandomQuery(run = true) {
  const { dim, queryRand, draw } = state.data;
  const vector = new Float32Array(dim);
  draw(queryRand, vector, 0);
  state.query = { vector, label: 'a random query from the data distribution (not a stored record)' };
  if (run) search();
}

function pickRecord() {
  const i = num('record');
  const { n, dim, vectors } = state.data;
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(`record # must be 0..${n - 1}, not ${i}`);
  state.query = { vector: vectors.slice(i * dim, (i + 1) * dim), label: `the vector of record "${i}" (it should find itself at distance ≈ 0${$('filter').checked && i % 7 ? ', unless the filter hides it' : ''})` };
  search();
}

/** Mean time of fn over enough repeats to rise above the timer's resolution. */
function timeIt(fn) {
  let result = fn(), reps = 0; // the first call warms up (JIT, caches) and is not timed
  const t = performance.now();
  do { result = fn(); reps++; } while (performance.now() - t < 15 && reps < 200);
  return [result, (performance.now() - t) / reps];
}

const recallOf = (ids, truth) => {
  if (truth.length === 0) return 1;
  const want = new Set(truth);
  return ids.filter((id) => want.has(id)).length / truth.length;
};

function resultRows(tbody, { ids, distances }, truthIds) {
  const want = truthIds && new Set(truthIds);
  $(tbody).replaceChildren(...(ids.length ? ids.map((id, i) => {
    const tr = el('tr', {}, el('td', { textContent: i + 1 }), el('td', { textContent: id }),
      el('td', { className: 'num', textContent: distances[i].toPrecision(7) }));
    if (want) tr.append(want.has(id) ? el('td', { className: 'hit', textContent: '✓' }) : el('td', { className: 'miss', textContent: '✗ missed' }));
    return tr;
  }) : [el('tr', {}, el('td', { colSpan: 4, textContent: 'no results' }))]));
}

function search() {
  clearError('search-error');
  const index = state.index;
  if (!index || !state.query) return;
  const k = num('k');
  const options = searchOptions(index);
  $('value-label').textContent = index.kind === 'hnsw' ? options.ef : index.kind === 'ivf' ? options.nprobe : '–';
  const q = state.query.vector;

  const [result, ms] = timeIt(() => index.search(q, k, options));
  const [exact, exactMs] = timeIt(() => state.ref.index.search(q, k, { filter: options.filter }));
  state.lastResult = result;
  state.lastOptions = options;

  // Recall over the eval queries, at the same settings.
  const truth = evalTruth(k);
  const { dim, queries } = state.data;
  let recall = 0;
  const t = performance.now();
  for (let i = 0; i < truth.length; i++)
    recall += recallOf(index.search(queries.subarray(i * dim, (i + 1) * dim), k, options).ids, truth[i]);
  const meanMs = (performance.now() - t) / truth.length;
  recall /= truth.length;
  const thisRecall = recallOf(result.ids, exact.ids);

  const setting = index.kind === 'hnsw' ? `ef ${options.ef}` : index.kind === 'ivf' ? `nprobe ${options.nprobe}` : 'exact';
  $('query-desc').textContent = `Query: ${state.query.label}. ${index.kind} search, k = ${k}, ${setting}` +
    `${options.filter ? ', filter: id % 7 === 0' : ''}.`;
  const cls = (r) => (r >= 0.95 ? 'good' : r < 0.8 ? 'warn' : '');
  showStats('search-stats', [
    [fmtMs(ms), 'this search'],
    [`${Math.round(thisRecall * exact.ids.length)} / ${exact.ids.length}`, `recall@${k}, this query`, cls(thisRecall)],
    [recall.toFixed(3), `mean recall@${k}, ${truth.length} queries`, cls(recall)],
    [fmtMs(meanMs), `mean search, ${truth.length} queries`],
    [fmtMs(exactMs), 'exact (flat) search'],
    ...(index.kind === 'flat' ? [] : [[(exactMs / ms).toFixed(1) + '×', 'speed-up vs exact']]),
  ]);
  resultRows('results', result, exact.ids);
  resultRows('truth', exact);
  $('filter-desc').textContent = options.filter
    ? `Filter on: ${fmtInt(Math.ceil(state.data.n / 7))} of ${fmtInt(state.data.n)} records match; every id above is divisible by 7.`
    : 'Filter off: searches consider every record.';
}

// The slider re-runs the search live, at most once per frame.
let sliderPending = false;
$('slider').addEventListener('input', () => {
  $('value-label').textContent = $('slider').value;
  if (sliderPending) return;
  sliderPending = true;
  requestAnimationFrame(() => {
    sliderPending = false;
    try { search(); } catch (err) { showError('search-error', err); }
  });
});

// ------------------------------------------------------------------ segment

function dropSaved() {
  if (state.saved?.url) URL.revokeObjectURL(state.saved.url);
  state.saved = null;
  $('download').hidden = true;
  $('save-cid').textContent = '';
  $('load-desc').textContent = '';
  $('tamper-result').hidden = true;
  for (const id of ['save-stats', 'load-stats']) $(id).replaceChildren();
}

function save() {
  const index = state.index;
  const zstdLevel = Number($('zstd').value);
  dropSaved();
  const t = performance.now();
  const bytes = index.save(zstdLevel ? { zstdLevel } : {});
  const ms = performance.now() - t;
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  state.saved = { bytes, cid: index.cid, url };
  showStats('save-stats', [
    [fmtBytes(bytes.length), `segment${zstdLevel ? ` (zstd ${zstdLevel})` : ''}`],
    [(bytes.length / (index.size * index.dim * 4)).toFixed(2) + '×', 'of the raw vectors'],
    [fmtMs(ms), 'save() incl. CID'],
  ]);
  $('save-cid').textContent = `index.cid = ${index.cid}`;
  const a = $('download');
  a.href = url;
  a.download = `shoal-${index.kind}-${state.data.n}x${state.data.dim}.seg`;
  a.textContent = `Download ${a.download} (${fmtBytes(bytes.length)})`;
  a.hidden = false;
}

async function load() {
  state.loaded?.free();
  state.loaded = null;
  const { bytes, cid } = state.saved;
  const t = performance.now();
  const copy = await Index.load(bytes, { simd: variantOption() });
  const ms = performance.now() - t;
  state.loaded = copy;
  const q = state.query.vector, k = num('k');
  const options = searchOptions(state.index);
  const a = state.index.search(q, k, options), b = copy.search(q, k, options);
  const same = a.ids.length === b.ids.length && a.ids.every((id, i) => id === b.ids[i] &&
    Object.is(a.distances[i], b.distances[i]));
  showStats('load-stats', [
    [fmtMs(ms), 'Index.load() (verifies every byte)'],
    [fmtInt(copy.size), `${copy.kind} records loaded`],
    [copy.cid === cid ? 'same' : 'DIFFERENT', 'CID after load', copy.cid === cid ? 'good' : 'warn'],
    [same ? 'identical' : 'DIFFERENT', 'top-k of the same query', same ? 'good' : 'warn'],
  ]);
  $('load-desc').replaceChildren(same
    ? el('span', { className: 'ok', textContent: `✓ The loaded copy returns the same ${b.ids.length} ids with bit-identical distances: ` })
    : el('b', { textContent: 'Results differ: ' }), b.ids.join(', '));
}

async function tamper() {
  const { bytes } = state.saved;
  const offset = num('tamper-offset', Math.floor(bytes.length / 2));
  if (!Number.isInteger(offset) || offset < 0 || offset >= bytes.length)
    throw new RangeError(`byte to flip must be 0..${bytes.length - 1}, not ${offset}`);
  const bad = bytes.slice();
  bad[offset] ^= 0xff;
  const box = $('tamper-result');
  box.hidden = false;
  const what = `Flipped byte ${fmtInt(offset)} of ${fmtInt(bytes.length)} (0x${bytes[offset].toString(16).padStart(2, '0')} → 0x${bad[offset].toString(16).padStart(2, '0')}); Index.load(bytes) → `;
  let copy;
  try {
    copy = await Index.load(bad, { simd: variantOption() });
  } catch (err) {
    if (!(err instanceof CorruptDataError)) throw err;
    box.replaceChildren(what, el('b', { textContent: `${err.name} (code ${err.code})` }),
      ` — instanceof CorruptDataError: ${err instanceof CorruptDataError}\n${err.message}`);
    return;
  }
  copy.free();
  box.replaceChildren(what, el('b', { textContent: 'loaded without an error (unexpected!)' }));
}

// ------------------------------------------------------------- .seg files

async function openFile(file) {
  state.fileIndex?.free();
  state.fileIndex = null;
  for (const id of ['file-info', 'file-stats', 'file-results']) $(id).replaceChildren();
  $('file-table').hidden = true;
  const bytes = new Uint8Array(await file.arrayBuffer());
  const t = performance.now();
  const index = await Index.load(bytes, { simd: variantOption() });
  const ms = performance.now() - t;
  state.fileIndex = index;
  const s = index.stats();
  $('file-info').replaceChildren(...[
    ['file', `${file.name} (${fmtBytes(bytes.length)})`],
    ['index', `${index.kind}, ${index.metric}, ${fmtInt(index.size)} records of dimension ${index.dim}`],
    ['cid', index.cid],
  ].flatMap(([k, v]) => [el('dt', { textContent: k }), el('dd', { textContent: v, className: k === 'cid' ? 'mono' : '' })]));
  state.fileTiles = [
    [fmtMs(ms), 'Index.load()'],
    [fmtBytes(index.memoryBytes()), 'memoryBytes()'],
    ...(index.kind === 'hnsw' ? [[String(s.levels), 'levels'], [s.meanDegree.toFixed(1), 'meanDegree']] : []),
    ...(index.kind === 'ivf' ? [[String(s.nlist), 'nlist']] : []),
  ];
  fileQuery();
}

function fileQuery() {
  const index = state.fileIndex;
  const q = new Float32Array(index.dim);
  for (let i = 0; i < q.length; i++) q[i] = normal(state.fileRand);
  const k = num('k');
  const [result, ms] = timeIt(() => index.search(q, k));
  showStats('file-stats', [...state.fileTiles, [fmtMs(ms), `search, random query (dim ${index.dim}), k = ${k}`]]);
  resultRows('file-results', result);
  $('file-table').hidden = false;
}

// ----------------------------------------------------------------- wiring

function syncKind() {
  const kind = $('kind').value;
  $('hnsw-options').hidden = kind !== 'hnsw';
  $('ivf-options').hidden = kind !== 'ivf';
  const pq = $('quantizer').value === 'pq';
  $('pqBits').disabled = $('pqM').disabled = !pq;
  $('rerank').disabled = $('quantizer').value === 'f32';
}

$('kind').addEventListener('change', syncKind);
$('quantizer').addEventListener('change', syncKind);
$('variant').addEventListener('change', () => showRuntime().catch((err) => showError('page-error', err)));
const buildAction = () => action('build-error', () => build().catch((err) => {
  $('progress-row').hidden = true;
  throw err;
}));
$('build').addEventListener('click', buildAction);
$('cancel').addEventListener('click', () => { state.cancel = true; });
$('random-query').addEventListener('click', () => action('search-error', () => newRandomQuery()));
$('pick-record').addEventListener('click', () => action('search-error', pickRecord));
$('k').addEventListener('change', () => action('search-error', search));
$('filter').addEventListener('change', () => action('search-error', search));
$('save').addEventListener('click', () => action('segment-error', save));
$('load').addEventListener('click', () => action('segment-error', load));
$('tamper').addEventListener('click', () => action('segment-error', tamper));
$('file').addEventListener('change', () => {
  const file = $('file').files[0];
  if (file) action('file-error', () => openFile(file));
});
$('file-query').addEventListener('click', () => action('file-error', fileQuery));

// Anything not caught above still shows up in the page, not only in the console.
window.addEventListener('error', (e) => showError('page-error', e.error ?? e.message));
window.addEventListener('unhandledrejection', (e) => showError('page-error', e.reason));

// Presets from the URL: ?n=5000&kind=ivf&filter=1&auto=0
const params = new URLSearchParams(location.search);
for (const [key, value] of params) {
  const input = $(key);
  if (!input || !['INPUT', 'SELECT'].includes(input.tagName) || input.type === 'file') continue;
  if (input.type === 'checkbox') input.checked = value !== '0' && value !== 'false';
  else input.value = value;
}
syncKind();
setBusy(false);
showRuntime().catch((err) => showError('page-error', err));
if (params.get('auto') !== '0') buildAction();
