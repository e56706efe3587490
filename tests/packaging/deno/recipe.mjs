// Handing Deno's own compiled modules to initWasm: Deno imports a .wasm
// file as an instance, so `import source` is what yields the
// WebAssembly.Module (compiled by Deno's module loader, not from bytes here).
import source simd from 'shoal/dist/shoal-simd.wasm';
import source base from 'shoal/dist/shoal-base.wasm';
import * as shoal from 'shoal';
import { runSearch } from './search.mjs';

shoal.initWasm({ simd, base });
console.log(JSON.stringify(await runSearch(shoal)));
