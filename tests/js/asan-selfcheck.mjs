// asan-selfcheck.mjs -- make test-js-asan runs this first, under
// asan-hooks.mjs, so that the suite cannot silently run on the unsanitized
// js/dist/ modules.  Through the package's own loader (js/node.mjs ->
// load.mjs -> compile-node.mjs) it loads each variant and reads 48 bytes past
// a 16-byte malloc (shoal_crc32c over a too-short buffer: test-only misuse of
// the C API, no JS entry can do this).  AddressSanitizer must report a
// heap-buffer-overflow in shoal_crc32c and abort the call; the .wasm must
// also carry UBSan's handlers.  Not a *.test.mjs: node --test never runs it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Index } from '../../js/node.mjs';
import { loadVariant } from '../../js/src/load.mjs';

for (const variant of ['simd', 'base']) {
  const wasm = readFileSync(new URL(`../../build/wasm-asan/shoal-${variant}.wasm`, import.meta.url)).toString('latin1');
  assert.ok(wasm.includes('__asan_report_load') && wasm.includes('__ubsan_handle_'),
    `build/wasm-asan/shoal-${variant}.wasm lacks the sanitizer runtime`);

  // A sanity search on the sanitized module, through the public API.
  const index = await Index.create({ dim: 2, simd: variant === 'simd' });
  index.add(['a', 'b'], new Float32Array([0, 0, 3, 4]));
  assert.deepEqual(index.search(new Float32Array([3, 3]), 2).ids, ['b', 'a']);
  index.free();

  const M = await loadVariant(variant);
  const printed = [];
  // The glue bound console.warn at start-up: catch what reaches the streams.
  const saved = { out: process.stdout.write, err: process.stderr.write };
  process.stdout.write = process.stderr.write = (chunk) => (printed.push(String(chunk)), true);
  let threw = null;
  try {
    const p = M._malloc(16);
    M._shoal_crc32c(0, p, 64);
  } catch (e) {
    threw = e;
  } finally {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
  }
  const report = printed.join('');
  assert.ok(threw, `the ${variant} module read past a malloc without complaint: not sanitized\n${report}`);
  assert.match(report, /ERROR: AddressSanitizer: heap-buffer-overflow/, `${variant}: no ASan report\n${report}`);
  assert.match(report, /in shoal_crc32c/, `${variant}: the report does not name the function\n${report}`);
  console.log(`asan-selfcheck: ${variant}: sanitized module loaded through js/node.mjs; ` +
    'a deliberate overflow was reported by AddressSanitizer in shoal_crc32c');
}
