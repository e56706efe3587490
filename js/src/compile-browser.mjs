// Browsers and web workers: stream-compile the wasm from a URL next to this
// package, so bundlers and CDNs that copy dist/ keep working.
export async function compileWasm(file) {
  const url = new URL(`../dist/${file}`, import.meta.url);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`shoal: fetching ${url} failed: HTTP ${response.status}`);
  // compileStreaming insists on Content-Type application/wasm; a server that
  // gets it wrong should cost speed, not a broken page.
  if (WebAssembly.compileStreaming && (response.headers.get('content-type') || '').startsWith('application/wasm'))
    return WebAssembly.compileStreaming(response);
  return WebAssembly.compile(await response.arrayBuffer());
}
