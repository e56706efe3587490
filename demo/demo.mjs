// demo.mjs -- builds a flat Shoal index from random vectors and searches it.
// Plain DOM code; the package is imported straight from the repository's js/.
import { Index, wasmInfo, simdSupported } from '../js/index.mjs';

const $ = (id) => document.getElementById(id);
let index = null;
let queryRng = null;

// Deterministic uniform floats in [-1, 1), so a given seed always builds the same data.
function makeRng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return (s / 4294967296) * 2 - 1;
  };
}

const fmtMs = (ms) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(1)) + ' ms';
const fmtBytes = (b) => (b >= 1 << 20 ? (b / (1 << 20)).toFixed(1) + ' MB' : (b / 1024).toFixed(1) + ' kB');

function showStats(stats) {
  $('stats').replaceChildren(...stats.map(([value, label]) => {
    const div = document.createElement('div');
    div.className = 'stat';
    div.append(Object.assign(document.createElement('b'), { textContent: value }),
      Object.assign(document.createElement('span'), { textContent: label }));
    return div;
  }));
}

function status(text, error = false) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

function variantOption() {
  const v = $('variant').value;
  return v === 'auto' ? undefined : v === 'simd';
}

async function showRuntime() {
  const info = await wasmInfo({ simd: variantOption() });
  const rows = [
    ['Shoal version', info.version],
    ['SIMD128 in this browser', simdSupported() ? 'yes' : 'no'],
    ['wasm build loaded', info.variant === 'simd' ? 'shoal-simd.wasm' : 'shoal-base.wasm'],
    ['distance kernels', info.kernels],
  ];
  $('runtime').replaceChildren(...rows.flatMap(([k, v]) => [
    Object.assign(document.createElement('dt'), { textContent: k }),
    Object.assign(document.createElement('dd'), { textContent: v }),
  ]));
}

let buildStats = [];

function runQuery() {
  const k = Number($('k').value);
  const query = new Float32Array(index.dim);
  for (let i = 0; i < query.length; i++) query[i] = queryRng();
  let t = performance.now();
  const { ids, distances } = index.search(query, k);
  const searchMs = performance.now() - t;
  // One query is near the timer's resolution; an average over several is steadier.
  const repeats = 20;
  t = performance.now();
  for (let r = 0; r < repeats; r++) index.search(query, k);
  const avgMs = (performance.now() - t) / repeats;

  $('results').replaceChildren(...ids.map((id, i) => {
    const tr = document.createElement('tr');
    for (const [text, cls] of [[i + 1, ''], [id, ''], [distances[i].toFixed(6), 'num']])
      tr.append(Object.assign(document.createElement('td'), { textContent: text, className: cls }));
    return tr;
  }));
  showStats([...buildStats,
    [fmtMs(searchMs), 'first search'],
    [fmtMs(avgMs), `mean of ${repeats} searches`],
    [`${Math.round(index.size / avgMs / 1000)} M`, 'distances / s'],
  ]);
}

async function build() {
  const n = Number($('n').value), dim = Number($('dim').value);
  const seed = Number($('seed').value);
  $('build').disabled = $('search').disabled = true;
  status(`Generating ${n.toLocaleString()} × ${dim} vectors…`);
  await new Promise(requestAnimationFrame); // let the status paint before the busy work
  try {
    index?.free();
    index = null;
    await showRuntime();
    let t = performance.now();
    const next = makeRng(seed);
    const vectors = new Float32Array(n * dim);
    for (let i = 0; i < vectors.length; i++) vectors[i] = next();
    const ids = Array.from({ length: n }, (_, i) => `vec-${i}`);
    const genMs = performance.now() - t;

    t = performance.now();
    index = await Index.create({ dim, metric: $('metric').value, kind: 'flat', simd: variantOption() });
    index.add(ids, vectors);
    const buildMs = performance.now() - t;
    buildStats = [
      [fmtMs(genMs), 'generate data (JS)'],
      [fmtMs(buildMs), 'build index'],
      [fmtBytes(index.memoryBytes()), 'index memory'],
    ];
    queryRng = makeRng(seed + 1);
    runQuery();
    status(`${index.size.toLocaleString()} vectors, ${index.metric}, kernels ${index.simd}.`);
    $('search').disabled = false;
  } catch (err) {
    status(`${err.name}: ${err.message}`, true);
  } finally {
    $('build').disabled = false;
    document.body.dataset.state = 'ready'; // for automated screenshots
  }
}

$('controls').addEventListener('submit', (e) => {
  e.preventDefault();
  build();
});
$('search').addEventListener('click', () => {
  try {
    runQuery();
  } catch (err) {
    status(`${err.name}: ${err.message}`, true);
  }
});
build();
