// load.mjs -- finds, compiles and instantiates the Shoal wasm, once per variant.
//
// Two builds of the same C core ship in dist/: "simd" (WebAssembly SIMD128
// kernels) and "base" (scalar kernels).  A module containing a single v128
// instruction fails to validate where SIMD128 is missing, so the SIMD build
// cannot even be compiled there; we probe with a tiny module first instead of
// catching a CompileError on the real one.
//
// Where the bytes come from depends on the runtime, so this file knows none of
// them: each package entry (node.mjs, browser.mjs, worker.mjs, index.mjs)
// registers a compiler with setWasmCompiler() or hands in precompiled modules
// with initWasm().  The Emscripten glue is built for web+worker only (see
// TOOLCHAIN.md); giving it a compiled module through instantiateWasm is what
// makes the same glue work in Node and in edge workers too.

import createSimd from '../dist/shoal-simd.mjs';
import createBase from '../dist/shoal-base.mjs';
import { StateError, UnsupportedError } from '../dist/errors.mjs';
import { PARAMS, SEARCH_PARAMS, STATS, VERSION } from '../dist/abi.mjs';
import { fail } from './fail.mjs';

export const VARIANTS = {
  simd: { create: createSimd, file: 'shoal-simd.wasm' },
  base: { create: createBase, file: 'shoal-base.wasm' },
};

// (module (func (result v128) (v128.const i64x2 0 0)))
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b,       // type section: () -> v128
  0x03, 0x02, 0x01, 0x00,                         // function section: one func of type 0
  0x0a, 0x16, 0x01, 0x14, 0x00,                   // code section: one body of 20 bytes, no locals
  0xfd, 0x0c, ...new Array(16).fill(0),           // v128.const 0
  0x0b,                                           // end
]);

let simdSupportedCache;
/** True when this runtime validates WebAssembly SIMD128. */
export function simdSupported() {
  if (simdSupportedCache === undefined) simdSupportedCache = WebAssembly.validate(SIMD_PROBE);
  return simdSupportedCache;
}

let compiler = null;                 // (file name) -> Promise<WebAssembly.Module>
const precompiled = new Map();       // variant -> what initWasm() was given
const instances = new Map();         // variant -> Promise<Emscripten module>

/** Set by each package entry: how this runtime turns a dist/ file name into a module. */
export function setWasmCompiler(fn) {
  compiler = fn;
}

/**
 * Hands in the wasm from elsewhere, before the first Index.create (or
 * Collection) that uses the variant.  Each of `simd` and `base` may be:
 *   - a WebAssembly.Module: an edge worker's `import wasm from
 *     '.../shoal-simd.wasm'`, Deno's `import source wasm from ...`, a cached
 *     module -- used as it is, never compiled;
 *   - a URL or URL string (fetched when first needed: esbuild's file loader,
 *     a CDN), a Response, or a Blob (Bun.file(path)) -- compiled when first
 *     needed;
 *   - a promise of any of these.
 * Raw bytes are refused: compile them (WebAssembly.compile) and pass the
 * module, which is what this function is for.
 * Only the variant that gets used is fetched and compiled.
 */
export function initWasm({ simd, base } = {}) {
  for (const [variant, source] of [['simd', simd], ['base', base]]) {
    if (source === undefined) continue;
    if (!isWasmSource(source) && typeof source?.then !== 'function')
      throw new TypeError(`initWasm: ${variant} must be a WebAssembly.Module, a URL, a Response, a Blob ` +
        `or a promise of one, not ${describe(source)}`);
    if (instances.has(variant))
      throw fail(StateError, `initWasm: the ${variant} variant is already loaded`);
    // A promise for a variant never used must not surface as an unhandled
    // rejection; a used one still rejects where it is awaited.
    if (typeof source.then === 'function') source.then(undefined, () => {});
    precompiled.set(variant, source);
  }
}

const isWasmSource = (x) => x instanceof WebAssembly.Module || x instanceof URL || typeof x === 'string' ||
  (typeof Response === 'function' && x instanceof Response) ||
  (typeof Blob === 'function' && x instanceof Blob);
const describe = (x) => (x === null ? 'null' : typeof x === 'object' ? x.constructor?.name ?? 'an object' : typeof x);

async function compileSource(variant, pending) {
  let source = await pending;
  if (source instanceof WebAssembly.Module) return source;
  if (!isWasmSource(source))
    throw new TypeError(`initWasm: the ${variant} promise gave ${describe(source)}, not a wasm source`);
  if (source instanceof URL || typeof source === 'string') {
    let response;
    try {
      response = await fetch(source);
    } catch (err) {
      // Bun's `import x from '....wasm'` is a file path, which fetch refuses.
      throw new TypeError(`initWasm: cannot fetch the ${variant} wasm from ${source} (${err.message}); ` +
        'for a file path pass Bun.file(path) in Bun, or compile the module yourself', { cause: err });
    }
    if (!response.ok) throw new Error(`shoal: fetching ${source} failed: HTTP ${response.status}`);
    source = response;
  }
  if (typeof Response === 'function' && source instanceof Response) {
    if (WebAssembly.compileStreaming && (source.headers.get('content-type') || '').startsWith('application/wasm'))
      return WebAssembly.compileStreaming(source);
    source = await source.arrayBuffer();
  } else if (typeof Blob === 'function' && source instanceof Blob) {
    source = await source.arrayBuffer();
  }
  return WebAssembly.compile(source);
}

const unsupported = (detail) => fail(UnsupportedError, detail);

/** 'simd' | 'base' for the create option simd: true | false | undefined (auto). */
export function chooseVariant(simd) {
  if (simd === false) return 'base';
  if (simd === true && !simdSupported())
    throw unsupported('simd: true was requested but this runtime has no WebAssembly SIMD128');
  if (simd === true || simd === undefined) return simdSupported() ? 'simd' : 'base';
  throw new TypeError(`simd must be true, false or undefined, not ${String(simd)}`);
}

async function instantiate(variant) {
  const { create, file } = VARIANTS[variant];
  let module;
  if (precompiled.has(variant)) {
    module = await compileSource(variant, precompiled.get(variant));
  } else {
    if (!compiler)
      throw unsupported(`no WebAssembly module for the ${variant} variant; pass it to initWasm()`);
    module = await compiler(file);
  }
  const M = await create({
    locateFile: (path) => path, // never used: instantiateWasm below supplies the module
    instantiateWasm(imports, done) {
      WebAssembly.instantiate(module, imports).then((instance) => done(instance, module));
      return {}; // tells the glue the exports arrive asynchronously
    },
  });
  // dist/abi.mjs and the wasm are generated from the same shoal.h; a module
  // from another build would misread every parameter array.
  const version = M.UTF8ToString(M._shoal_version() >>> 0);
  if (version !== VERSION || M._shoal_js_abi(0) !== PARAMS.length || M._shoal_js_abi(1) !== SEARCH_PARAMS.length ||
      M._shoal_js_abi(2) !== STATS.length)
    throw unsupported(`the ${variant} wasm (version ${version}) was not built with this package's dist/abi.mjs (${VERSION})`);
  return M;
}

/** The Emscripten module of a variant, instantiated on first use and then shared. */
export function loadVariant(variant) {
  let pending = instances.get(variant);
  if (!pending) {
    pending = instantiate(variant);
    // A failed load (bad URL, offline) should not poison every later attempt.
    pending.catch(() => instances.delete(variant));
    instances.set(variant, pending);
  }
  return pending;
}
