#!/usr/bin/env node
// run.mjs -- runs a WASI (preview1) program under Node's node:wasi, the way a
// wasmtime user would run it: arguments passed through, the current directory
// preopened as ".", the exit code propagated.
//
//   node wasi/run.mjs build/wasi/test_shoal-simd.wasm [args...]
//
// Two Node 20 crashes once a WASI program has grown its memory by tens of
// megabytes, both avoided by V8 flags set before anything is allocated (the
// reasons are spelled out in wasi/shoal): --no-concurrent-marking for the
// segfault after all output (../shared/TOOLCHAIN.md), and
// --no-turbo-fast-api-calls for a GC started inside node:wasi's fast API
// calls during the run (nodejs/node#46777).
import v8 from 'node:v8';
v8.setFlagsFromString('--no-concurrent-marking');
v8.setFlagsFromString('--no-turbo-fast-api-calls');

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
