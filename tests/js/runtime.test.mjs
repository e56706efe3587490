// Runtime-specific loading, each in a fresh Node process: the edge-worker
// entry fed precompiled modules, package.json export conditions, and a
// runtime without WebAssembly SIMD128.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { initWasm, Index, StateError, UnsupportedError } from '../../js/index.mjs';

const JS_DIR = fileURLToPath(new URL('../../js/', import.meta.url));
const HOOKS = new URL('./fixtures/wasm-as-module.mjs', import.meta.url).href;
const REGISTER_HOOKS = `data:text/javascript,import{register}from"node:module";register(${JSON.stringify(HOOKS)})`;

// A small search whose answer is known exactly, printed as JSON.
const PROBE = `
const shoal = await import(process.env.SHOAL_ENTRY);
const index = await shoal.Index.create({ dim: 2 });
index.add(['a', 'b', 'c'], new Float32Array([0, 0, 3, 4, 1, 1]));
const r = index.search(new Float32Array([3, 3]), 3);
const out = { entry: import.meta.resolve(process.env.SHOAL_ENTRY), simdSupported: shoal.simdSupported(),
  simd: index.simd, ids: r.ids, distances: [...r.distances] };
try { await shoal.Index.create({ dim: 2, simd: true }); } catch (e) { out.forced = [e.name, e.code]; }
index.free();
console.log(JSON.stringify(out));`;

function probe(entry, nodeArgs, cwd) {
  const stdout = execFileSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', PROBE], {
    cwd, encoding: 'utf8', env: { ...process.env, SHOAL_ENTRY: entry },
  });
  return JSON.parse(stdout.trim().split('\n').pop());
}

const EXPECTED = { ids: ['b', 'c', 'a'], distances: [1, 8, 18] };

// An app directory whose node_modules/shoal is this package, to resolve 'shoal' by name.
async function withApp(fn) {
  const app = await mkdtemp(path.join(tmpdir(), 'shoal-app-'));
  try {
    await mkdir(path.join(app, 'node_modules'));
    await symlink(JS_DIR, path.join(app, 'node_modules', 'shoal'), 'dir');
    return await fn(app);
  } finally {
    await rm(app, { recursive: true, force: true });
  }
}

test("'shoal' resolves to node.mjs in Node", async () => {
  await withApp((app) => {
    const out = probe('shoal', [], app);
    assert.ok(out.entry.endsWith('/node.mjs'), out.entry);
    assert.equal(out.simd, 'wasm-simd128');
    assert.deepEqual({ ids: out.ids, distances: out.distances }, EXPECTED);
  });
});

test("the worker entry runs on precompiled modules from .wasm imports (condition 'worker')", async () => {
  await withApp((app) => {
    const out = probe('shoal', ['--conditions=worker', '--import', REGISTER_HOOKS], app);
    assert.ok(out.entry.endsWith('/worker.mjs'), out.entry);
    assert.equal(out.simd, 'wasm-simd128');
    assert.deepEqual({ ids: out.ids, distances: out.distances }, EXPECTED);
  });
});

test('without SIMD128 the baseline build is chosen, and simd: true is refused', () => {
  // Stands in for an engine without SIMD: every validation fails, as the probe would.
  const noSimd = 'data:text/javascript,WebAssembly.validate=()=>false';
  const out = probe(new URL('../../js/index.mjs', import.meta.url).href, ['--import', noSimd]);
  assert.equal(out.simdSupported, false);
  assert.equal(out.simd, 'scalar');
  assert.deepEqual({ ids: out.ids, distances: out.distances }, EXPECTED);
  assert.deepEqual(out.forced, ['UnsupportedError', -7]);
});

test('initWasm takes only WebAssembly.Module and only before the variant loads', async () => {
  assert.throws(() => initWasm({ simd: new Uint8Array(8) }), TypeError);
  (await Index.create({ dim: 1, simd: false })).free(); // makes sure 'base' is loaded
  const mod = await WebAssembly.compile(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  assert.throws(() => initWasm({ base: mod }), (e) => e instanceof StateError && e.code === -8);
  assert.ok(UnsupportedError); // exported alongside the rest
});
