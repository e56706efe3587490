// An esbuild browser bundle importing the package by name.  esbuild does not
// follow new URL('...wasm', import.meta.url), so the app names the .wasm
// files itself: with --loader:.wasm=file each import is the emitted file's
// path relative to the bundle, and initWasm fetches the one it needs on the
// first Index.create.
import * as shoal from 'shoal';
import simd from 'shoal/dist/shoal-simd.wasm';
import base from 'shoal/dist/shoal-base.wasm';
import { runSearch } from './search.mjs';

shoal.initWasm({ simd: new URL(simd, import.meta.url), base: new URL(base, import.meta.url) });

runSearch(shoal).then(
  (value) => { window.shoalResult = { ok: true, value }; },
  (err) => { window.shoalResult = { ok: false, error: `${err.name}: ${err.message}` }; },
);
