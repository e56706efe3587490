// Browsers and web workers: stream-compile the wasm from a URL next to this
// package.
//
// Each URL is written out as `new URL('<literal>', import.meta.url)`: that is
// the pattern Vite, webpack 5, Rollup and Parcel recognise, so they copy the
// .wasm into their output and rewrite the URL (a template string with a
// variable in it would not be followed).  esbuild leaves the expression
// alone; js/README.md ("Bundlers") says what to do there.
//
// The failures that users actually meet are turned into messages that say
// what to import instead: this entry in Node (a file: URL, which fetch cannot
// read), and in an edge worker (no import.meta.url, and compiling wasm from
// bytes is forbidden there).
import { UnsupportedError } from '../dist/errors.mjs';
import { fail } from './fail.mjs';

const URLS = {
  'shoal-simd.wasm': () => new URL('../dist/shoal-simd.wasm', import.meta.url),
  'shoal-base.wasm': () => new URL('../dist/shoal-base.wasm', import.meta.url),
};

export const WORKER_HINT = "in Cloudflare Workers or workerd import 'shoal/worker' (it imports the .wasm as precompiled modules)";

function locate(file) {
  // import.meta.url is missing in some edge runtimes (workerd gives module
  // names, not URLs); new URL() would only say "Invalid URL string".
  let url;
  try {
    url = URLS[file]();
  } catch {
    throw fail(UnsupportedError, `cannot locate ${file}: this runtime gives the module no usable import.meta.url; ` +
      `${WORKER_HINT}, or hand the modules to initWasm()`);
  }
  if (url.protocol === 'file:')
    throw fail(UnsupportedError, `shoal/browser fetches its wasm over HTTP and cannot read ${url.href}: ` +
      "in Node, Deno or Bun import 'shoal' (or 'shoal/node')");
  return url;
}

export async function compileWasm(file) {
  const url = locate(file);
  if (typeof fetch !== 'function')
    throw fail(UnsupportedError, `no fetch() in this runtime to load ${url.href}; hand the modules to initWasm()`);
  const response = await fetch(url);
  if (!response.ok)
    throw new Error(`shoal: fetching ${url} failed: HTTP ${response.status} (a bundler that moved this package's ` +
      "code without its .wasm files? see \"Bundlers\" in the package's README)");
  // A dev server's fallback page instead of a 404: what Vite 7 and older
  // serve when their dependency pre-bundling moved this code (vite#8427).
  if ((response.headers.get('content-type') || '').startsWith('text/html'))
    throw new Error(`shoal: ${url} is an HTML page, not wasm: a dev server or bundler moved this package's code ` +
      "away from its dist/ folder (Vite 7 or older: optimizeDeps: { exclude: ['shoal'] }; see \"Bundlers\" in the package's README)");
  try {
    // compileStreaming insists on Content-Type application/wasm; a server
    // that gets it wrong should cost speed, not a broken page.
    if (WebAssembly.compileStreaming && (response.headers.get('content-type') || '').startsWith('application/wasm'))
      return await WebAssembly.compileStreaming(response);
    return await WebAssembly.compile(await response.arrayBuffer());
  } catch (err) {
    // workerd: "Wasm code generation disallowed by embedder".
    if (/disallowed|not allowed/i.test(err?.message ?? ''))
      throw fail(UnsupportedError, `this runtime forbids compiling wasm from bytes (${err.message}); ${WORKER_HINT}`);
    throw err;
  }
}
