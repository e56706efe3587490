// The npm package as users get it: `npm pack` of js/, installed from the
// tarball into fresh projects (templates beside this file), each running the
// same search (app/search.mjs: an Index and a Collection over three known
// records) and checked for exact ids and distances.
//
//   make test-packaging          everything below (npm installs Vite, webpack,
//                                esbuild, workerd, Deno, Bun, TypeScript: a few
//                                minutes the first time, then from npm's cache)
//   make test-packaging-short    SHOAL_PACKAGING=short: the tarball's contents,
//                                Node ESM and a plain <script type=module> in
//                                Chromium -- no npm install of any tool
//
// Browser checks run in headless Chromium (playwright-core, /usr/bin/chromium);
// every server listens on 127.0.0.1 only.  SHOAL_PACKAGING_KEEP=1 keeps the
// temporary projects and prints where they are.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

import { EXPECTED } from './app/search.mjs';
import {
  CHROMIUM, HERE, REPO, existsSync, inChromium, listFiles, makeProject, mkdtemp, pack, readFile, rm, run, serve,
  start, writeFile,
} from './lib.mjs';

const SHORT = process.env.SHOAL_PACKAGING === 'short';
const full = SHORT ? { skip: 'SHOAL_PACKAGING=short (make test-packaging runs it)' } : {};

let work;
let tarball;
let packed;

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'shoal-packaging-'));
  ({ tarball, info: packed } = await pack(work));
});

after(async () => {
  if (process.env.SHOAL_PACKAGING_KEEP) console.log(`# projects kept in ${work}`);
  else if (work) await rm(work, { recursive: true, force: true });
});

/** The object app/search.mjs returns, checked against the known answer. */
function checkSearch(value, { simd = 'wasm-simd128' } = {}) {
  for (const [key, hit] of Object.entries(EXPECTED)) assert.deepEqual(value[key], hit, key);
  assert.equal(value.simd, simd);
  assert.match(value.cid, /^bafyrei[a-z2-7]{52}$/);
}

function chromiumOrSkip(t) {
  if (existsSync(CHROMIUM)) return true;
  t.skip(`${CHROMIUM} is missing: apt-get install -y chromium`);
  return false;
}

/** A page's result: no page errors, failed requests or HTTP errors; returns the value. */
async function pageResult(url) {
  const result = await inChromium(url);
  assert.ok(result.ok, `${url}: ${result.error}\n${result.problems.join('\n')}`);
  assert.deepEqual(result.problems, []);
  return result.value;
}

// ------------------------------------------------------------------ tarball

test('npm pack: the files a user needs and nothing else', async (t) => {
  const files = packed.files.map((f) => f.path).sort();
  for (const needed of ['LICENSE', 'README.md', 'package.json', 'index.mjs', 'node.mjs', 'browser.mjs',
    'worker.mjs', 'index.d.ts', 'dist/shoal-simd.wasm', 'dist/shoal-base.wasm', 'dist/shoal-simd.mjs',
    'dist/shoal-base.mjs', 'dist/errors.mjs', 'dist/errors.d.ts', 'dist/abi.mjs', 'dist/abi.d.ts', 'src/load.mjs',
    'bin/shoal-serve.mjs', 'bin/shoal-publish.mjs'])
    assert.ok(files.includes(needed), `${needed} is missing from the tarball`);
  for (const f of files) {
    assert.doesNotMatch(f, /(^|\/)(tests?|bench|demo)\//, `${f}: tests do not belong in the tarball`);
    assert.doesNotMatch(f, /\.(c|h|cc|o|a|so)$/, `${f}: C sources and objects do not belong in the tarball`);
    assert.match(f, /^(LICENSE|README\.md|package\.json|[a-z-]+\.(mjs|d\.ts)|(src|bin)\/[a-z0-9-]+\.mjs|dist\/[a-z-]+\.(mjs|d\.ts|wasm))$/,
      `${f}: unexpected file in the tarball`);
  }
  // Every file an entry imports is in the tarball (a missing one would only
  // show up in a runtime that loads that entry).
  for (const f of files.filter((name) => name.endsWith('.mjs'))) {
    const text = readFileSync(path.join(REPO, 'js', f), 'utf8');
    const specs = [...text.matchAll(/^\s*(?:import|export)\b[^';]*?(?:from\s*)?'(\.{1,2}\/[^']+)'/gm),
      ...text.matchAll(/\bimport\('(\.{1,2}\/[^']+)'\)/g)];
    for (const [, spec] of specs) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(f), spec));
      assert.ok(files.includes(target), `${f} imports ${spec}, which is not in the tarball`);
    }
  }
  const sizes = { tarball: packed.size, unpacked: packed.unpackedSize };
  for (const name of ['shoal-simd.wasm', 'shoal-base.wasm']) {
    const bytes = readFileSync(path.join(REPO, 'js/dist', name));
    sizes[name] = { raw: bytes.length, zlib9: gzipSync(bytes, { level: 9 }).length };
  }
  t.diagnostic(`sizes: ${JSON.stringify(sizes)}`);
  assert.ok(packed.size < 800_000, `the tarball is ${packed.size} bytes`);
});

// ------------------------------------------------------------------ Node

test('Node ESM: plain `node app.mjs` with the default import', async () => {
  const dir = await makeProject(work, 'node-esm', tarball);
  const { stdout } = await run('node', ['app.mjs'], { cwd: dir, timeoutMs: 60_000 });
  checkSearch(JSON.parse(stdout));
});

test('Node ESM: shoal/node and shoal/worker work, shoal/browser says what to use', async () => {
  const dir = path.join(work, 'node-esm');
  const entry = async (specifier) =>
    JSON.parse((await run('node', ['entry.mjs', specifier], { cwd: dir, timeoutMs: 60_000 })).stdout);
  for (const specifier of ['shoal', 'shoal/node', 'shoal/worker']) {
    const result = await entry(specifier);
    assert.ok(result.ok, `${specifier}: ${JSON.stringify(result.error)}`);
    checkSearch(result.value);
  }
  const browser = await entry('shoal/browser');
  assert.equal(browser.ok, false);
  assert.equal(browser.error.name, 'UnsupportedError');
  assert.match(browser.error.message, /shoal\/browser fetches its wasm over HTTP.*in Node, Deno or Bun import 'shoal'/);
});

// ------------------------------------------------------------------ no bundler

test('plain <script type=module> importing the package files from a static server', async (t) => {
  if (!chromiumOrSkip(t)) return;
  const dir = await makeProject(work, 'script-module', tarball);
  const server = await serve(dir);
  try {
    for (const entry of ['index.mjs', 'browser.mjs']) checkSearch(await pageResult(`${server.origin}/?entry=${entry}`));
  } finally {
    await server.close();
  }
});

// ------------------------------------------------------------------ bundlers

/** `vite build` served statically, then the dev server, each in Chromium. */
async function viteBuildAndDev(t, name) {
  if (!chromiumOrSkip(t)) return;
  const dir = await makeProject(work, name, tarball);
  await run('npx', ['vite', 'build'], { cwd: dir });
  const emitted = await listFiles(path.join(dir, 'dist'));
  assert.equal(emitted.filter((f) => f.endsWith('.wasm')).length, 2, `vite build emitted ${emitted.join(', ')}`);
  const server = await serve(path.join(dir, 'dist'));
  try {
    checkSearch(await pageResult(`${server.origin}/`));
  } finally {
    await server.close();
  }
  const dev = start('npx', ['vite', '--host', '127.0.0.1', '--port', '0'], { cwd: dir });
  try {
    const [origin] = await dev.waitFor(/http:\/\/127\.0\.0\.1:\d+/);
    checkSearch(await pageResult(`${origin}/`));
  } finally {
    await dev.stop();
  }
}

test('Vite 8: vite build and the dev server, no configuration', full, (t) => viteBuildAndDev(t, 'vite'));
test('Vite 7: vite build and the dev server with optimizeDeps.exclude', full, (t) => viteBuildAndDev(t, 'vite-7'));

test('webpack 5: target web and target webworker, no configuration', { ...full, timeout: 600_000 }, async (t) => {
  if (!chromiumOrSkip(t)) return;
  const dir = await makeProject(work, 'webpack', tarball);
  await run('node', ['build.mjs'], { cwd: dir, timeoutMs: 300_000 });
  const server = await serve(path.join(dir, 'public'));
  try {
    checkSearch(await pageResult(`${server.origin}/web.html`));
    checkSearch(await pageResult(`${server.origin}/worker.html`));
  } finally {
    await server.close();
  }
});

test('esbuild: browser bundle with --loader:.wasm=file and initWasm', full, async (t) => {
  if (!chromiumOrSkip(t)) return;
  const dir = await makeProject(work, 'esbuild', tarball);
  await run('npx', ['esbuild', 'main.js', '--bundle', '--format=esm', '--platform=browser', '--outdir=public/app',
    '--loader:.wasm=file'], { cwd: dir });
  const server = await serve(path.join(dir, 'public'));
  try {
    checkSearch(await pageResult(`${server.origin}/`));
  } finally {
    await server.close();
  }
});

// ------------------------------------------------------------------ edge

/** A port that was free a moment ago on 127.0.0.1. */
async function freePort() {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** GET url as JSON, retrying while the server is still starting (up to ms). */
async function getJson(url, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const res = await fetch(url);
      return { status: res.status, body: await res.json() };
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

test('workerd: shoal/worker on precompiled .wasm modules answers searches over HTTP', full, async () => {
  const dir = await makeProject(work, 'workerd', tarball);
  const { stdout: segmentCid } = await run('node', ['make-segment.mjs'], { cwd: dir, timeoutMs: 60_000 });
  // Every file of the installed package as a module named after its path.
  const pkgDir = path.join(dir, 'node_modules/shoal');
  const modules = (await listFiles(pkgDir)).filter((f) => /\.(mjs|wasm)$/.test(f)).sort().map((f) =>
    `    (name = "shoal/${f}", ${f.endsWith('.wasm') ? 'wasm' : 'esModule'} = embed "node_modules/shoal/${f}"),`);
  const [searchPort, defaultPort] = [await freePort(), await freePort()];
  const config = (await readFile(path.join(dir, 'config.capnp'), 'utf8'))
    .replaceAll('@SEARCH_PORT@', searchPort).replaceAll('@DEFAULT_PORT@', defaultPort)
    .replaceAll('@SHOAL_MODULES@', modules.join('\n'));
  await writeFile(path.join(dir, 'config.capnp'), config);

  const workerd = start('npx', ['workerd', 'serve', 'config.capnp'], { cwd: dir });
  try {
    const base = `http://127.0.0.1:${searchPort}`;
    const search = await getJson(`${base}/search?q=0,0.5,0&k=3`);
    assert.equal(search.status, 200, JSON.stringify(search.body) + workerd.out.text);
    assert.deepEqual(search.body, { ...EXPECTED.index, cid: segmentCid.trim() });
    const again = await getJson(`${base}/search?q=1,0,0&k=2`); // the loaded index, shared
    assert.deepEqual(again.body.ids, ['b', 'a']);
    assert.deepEqual(again.body.distances, [0, 1]);
    const all = await getJson(`${base}/run`);
    assert.equal(all.status, 200, JSON.stringify(all.body));
    checkSearch(all.body);
    const info = await getJson(`${base}/info`);
    assert.equal(info.body.variant, 'simd', JSON.stringify(info.body));

    // The default entry says what to import instead.
    const wrong = await getJson(`http://127.0.0.1:${defaultPort}/`);
    assert.equal(wrong.body.ok, false);
    assert.equal(wrong.body.name, 'UnsupportedError');
    assert.match(wrong.body.message, /import 'shoal\/worker'/);
  } finally {
    await workerd.stop();
  }
});

// ------------------------------------------------------------------ Deno, Bun

// Both ship their binaries as npm optional dependencies (@deno/linux-x64-glibc,
// @oven/bun-linux-x64), so the projects install them like any tool.
for (const [name, argv] of [['deno', ['deno', 'run', '--allow-read']], ['bun', ['bun']]]) {
  const label = name === 'deno' ? 'Deno 2' : 'Bun';
  test(`${label}: the default import, every export path, and the initWasm recipe`, full, async () => {
    const dir = await makeProject(work, name, tarball);
    const [cmd, ...pre] = argv;
    const exec = async (...args) =>
      JSON.parse((await run('npx', [cmd, ...pre, ...args], { cwd: dir, timeoutMs: 60_000 })).stdout);
    checkSearch(await exec('app.mjs'));
    for (const specifier of ['shoal', 'shoal/node', 'shoal/worker']) {
      const result = await exec('entry.mjs', specifier);
      assert.ok(result.ok, `${specifier}: ${JSON.stringify(result.error)}`);
      checkSearch(result.value);
    }
    const browser = await exec('entry.mjs', 'shoal/browser');
    assert.equal(browser.ok, false);
    assert.match(browser.error.message, /in Node, Deno or Bun import 'shoal'/);
    // The recipe needs no --allow-read in Deno: `import source` goes through
    // the module loader.
    checkSearch(JSON.parse((await run('npx', [cmd, ...(name === 'deno' ? ['run'] : []), 'recipe.mjs'],
      { cwd: dir, timeoutMs: 60_000 })).stdout));
  });
}

// ------------------------------------------------------------------ types

test('TypeScript: every export path has the same declarations (bundler and node16 resolution)', full, async () => {
  const dir = await makeProject(work, 'types', tarball);
  for (const tsconfig of ['tsconfig.bundler.json', 'tsconfig.node16.json'])
    await run('npx', ['tsc', '-p', tsconfig], { cwd: dir, timeoutMs: 120_000 });
});
