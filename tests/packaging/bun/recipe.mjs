// Handing the wasm to initWasm in Bun: Bun imports a .wasm file as the path
// of the file (a string), so wrap it in Bun.file(); initWasm reads and
// compiles only the variant that gets used.
import simd from 'shoal/dist/shoal-simd.wasm';
import base from 'shoal/dist/shoal-base.wasm';
import * as shoal from 'shoal';
import { runSearch } from './search.mjs';

shoal.initWasm({ simd: Bun.file(simd), base: Bun.file(base) });
console.log(JSON.stringify(await runSearch(shoal)));
