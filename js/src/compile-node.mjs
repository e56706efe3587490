// Node (and Bun): read the wasm next to the glue from disk.
import { readFile } from 'node:fs/promises';

export function compileWasm(file) {
  return readFile(new URL(`../dist/${file}`, import.meta.url)).then((bytes) =>
    WebAssembly.compile(bytes),
  );
}
