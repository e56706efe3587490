#!/usr/bin/env node
// run.mjs -- runs a WASI (preview1) program under Node's node:wasi, the way a
// wasmtime user would run it: arguments passed through, the current directory
// preopened as ".", the exit code propagated.
//
//   node wasi/run.mjs build/wasi/test_shoal-simd.wasm [args...]
//
// Node 20 can segfault after a WASI program that grew memory by 64 MB or more
// prints and exits (see ../shared/TOOLCHAIN.md); turning off concurrent
// marking before anything is allocated avoids it.
import v8 from 'node:v8';
v8.setFlagsFromString('--no-concurrent-marking');

import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { WASI } from 'node:wasi';

const [file, ...args] = process.argv.slice(2);
if (!file) {
  console.error('usage: node wasi/run.mjs program.wasm [args...]');
  process.exit(1);
}

const wasi = new WASI({
  version: 'preview1',
  args: [basename(file), ...args],
  env: { PWD: '.' },
  preopens: { '.': process.cwd() },
  returnOnExit: true,
});

let bytes;
try {
  bytes = await readFile(file);
} catch (err) {
  console.error(`run.mjs: cannot read ${file}: ${err.message}`);
  process.exit(1);
}
const module = await WebAssembly.compile(bytes);
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
