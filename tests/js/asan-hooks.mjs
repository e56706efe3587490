// asan-hooks.mjs -- runs the package on the sanitized wasm core of
// build/wasm-asan/ (make test-js-asan, mk/wasm-asan.mk) without touching the
// tests or js/dist/:
//
//   node --import ./tests/js/asan-hooks.mjs --test tests/js/
//
// Imported with --import, this file registers itself (with ?hooks appended)
// as a module-customization hook, which then
//   - resolves js/dist/shoal-simd.mjs, shoal-base.mjs and their .wasm (the
//     glue load.mjs imports; the .wasm js/worker.mjs imports) to
//     build/wasm-asan/;
//   - rewrites js/src/compile-node.mjs, the Node entry's compiler, to read the
//     .wasm from build/wasm-asan/ instead of ../dist/;
//   - patches the sanitized glue so that sanitizer reports can name
//     functions: emcc's glue builds the table that maps wasm offsets to names
//     only when it compiles the wasm itself, not when the module comes in
//     through instantiateWasm, as it does from load.mjs (without the table the
//     report dies with a TypeError in WasmOffsetConverter before printing the
//     stack), and to take ASAN_OPTIONS, UBSAN_OPTIONS and LSAN_OPTIONS from
//     the environment.
// Every rewrite checks that its pattern is there, so a change in either file
// fails loudly instead of silently running the unsanitized js/dist/.
import { register } from 'node:module';
import { readFile } from 'node:fs/promises';

const ROOT = new URL('../../', import.meta.url);
const DIST = new URL('js/dist/', ROOT).href;
const ASAN = new URL('build/wasm-asan/', ROOT).href;
const COMPILE_NODE = new URL('js/src/compile-node.mjs', ROOT).href;
const REDIRECTED = new Set(['shoal-simd.mjs', 'shoal-base.mjs', 'shoal-simd.wasm', 'shoal-base.wasm']);

if (new URL(import.meta.url).search !== '?hooks') register(`${import.meta.url.split('?')[0]}?hooks`);

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (result.url.startsWith(DIST)) {
    const name = result.url.slice(DIST.length);
    if (REDIRECTED.has(name)) return { ...result, url: ASAN + name, shortCircuit: true };
  }
  return result;
}

function replaceOnce(source, from, to, where) {
  const at = source.indexOf(from);
  if (at < 0 || source.indexOf(from, at + 1) >= 0)
    throw new Error(`asan-hooks: expected exactly one ${JSON.stringify(from)} in ${where}`);
  return source.slice(0, at) + to + source.slice(at + from.length);
}

export async function load(url, context, next) {
  if (url === COMPILE_NODE) {
    const text = String((await readFile(new URL(url))));
    return {
      format: 'module',
      shortCircuit: true,
      source: replaceOnce(text, 'new URL(`../dist/${file}`, import.meta.url)',
        `new URL(file, ${JSON.stringify(ASAN)})`, url),
    };
  }
  if (url.startsWith(ASAN) && url.endsWith('.mjs')) {
    let text = String(await readFile(new URL(url)));
    const wasm = new URL(url.slice(ASAN.length).replace(/\.mjs$/, '.wasm'), ASAN).href;
    text = replaceOnce(text, 'var exports=Module["instantiateWasm"](info,receiveInstance)',
      'var exports=Module["instantiateWasm"](info,function(instance,module){' +
      `wasmOffsetConverter=new WasmOffsetConverter(__shoalAsanRead(new URL(${JSON.stringify(wasm)})),module);` +
      'receiveInstance(instance,module)})', url);
    // The runtime reads its options from Module.ASAN_OPTIONS etc.: take them
    // from the environment, as native ASan does (e.g. ASAN_OPTIONS=quarantine_size_mb=1).
    for (const name of ['ASAN_OPTIONS', 'LSAN_OPTIONS', 'UBSAN_OPTIONS']) {
      const from = `Module["${name}"]||0`;
      if (!text.includes(from)) throw new Error(`asan-hooks: expected ${from} in ${url}`);
      text = text.replaceAll(from, `Module["${name}"]||process.env.${name}||0`);
    }
    text = `import { readFileSync as __shoalAsanRead } from 'node:fs';\n${text}`;
    return { format: 'module', shortCircuit: true, source: text };
  }
  return next(url, context);
}
