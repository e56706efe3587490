#!/usr/bin/env node
// open-memory.mjs -- what a process holds after reading a segment through the
// npm package, Index.load (the whole segment into memory) against Index.open
// (HNSW SQ8 with copies: everything but the rerank rows, which each search
// reads), each in a fresh Node process so that one's wasm heap (which never
// shrinks) does not count against the other.
//
//   node bench/hnsw/open-memory.mjs SEGMENT [--queries 200] [--ef 32]
//
// SEGMENT: e.g. build/shoal build bench/data/fashion-mnist-base.fvecs --kind hnsw
// --quantizer sq8 --rerank 32 --out /tmp/sq8r.seg.  For each way it prints the
// bytes read from the file at open and over the searches, index.memoryBytes()
// (the core's allocations), the wasm heap and the process RSS after the
// searches, and whether the answers equal Index.load's.
import { spawnSync } from 'node:child_process';
import { openSync, readFileSync, readSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Index } from '../../js/index.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const option = (name, fallback) => {
  const at = argv.indexOf(`--${name}`);
  return at < 0 ? fallback : argv.splice(at, 2)[1];
};
const way = option('way', null);
const queries = Number(option('queries', '200'));
const ef = Number(option('ef', '32'));
const [segment] = argv;
if (!segment) throw new Error('usage: open-memory.mjs SEGMENT [--queries N] [--ef N]');

function queryRows(dim) {
  const buf = readFileSync(join(HERE, '..', 'data', 'fashion-mnist-query.fvecs'));
  const rows = [];
  for (let i = 0; i < queries; i++) {
    const at = i * (dim + 1) * 4;
    if (buf.readInt32LE(at) !== dim) throw new Error('query dimension differs from the segment');
    rows.push(new Float32Array(buf.buffer.slice(buf.byteOffset + at + 4, buf.byteOffset + at + 4 + dim * 4)));
  }
  return rows;
}

if (way) {
  // One way, in this process: print one JSON line.
  const fd = openSync(segment, 'r');
  let read = 0;
  const reader = (offset, length) => {
    const bytes = new Uint8Array(length);
    readSync(fd, bytes, 0, length, offset);
    read += length;
    return bytes;
  };
  const index = way === 'load' ? await Index.load(readFileSync(segment)) : await Index.open(reader, { rows: 'external' });
  const atOpen = way === 'load' ? statSync(segment).size : read;
  const answers = [];
  for (const q of queryRows(index.dim)) answers.push((await index.searchAsync(q, 10, { ef })).ids.join(','));
  global.gc?.();
  console.log(JSON.stringify({
    way, read_at_open: atOpen, read_searching: way === 'load' ? 0 : read - atOpen,
    memory_bytes: index.memoryBytes(), rss: process.memoryUsage().rss, answers,
  }));
  process.exit(0);
}

const results = {};
for (const w of ['load', 'open']) {
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), resolve(segment), '--way', w,
    '--queries', String(queries), '--ef', String(ef)], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${w}: ${r.stderr}`);
  results[w] = JSON.parse(r.stdout.trim().split('\n').pop());
}
const MB = 2 ** 20;
for (const w of ['load', 'open']) {
  const x = results[w];
  console.log(`${w === 'load' ? 'Index.load' : 'Index.open'}: read ${(x.read_at_open / MB).toFixed(1)} MiB at open, ` +
    `${(x.read_searching / queries / 1024).toFixed(1)} KiB per search; memoryBytes ${(x.memory_bytes / MB).toFixed(1)} MiB; ` +
    `RSS ${(x.rss / MB).toFixed(1)} MiB`);
}
const same = results.load.answers.every((a, i) => a === results.open.answers[i]);
console.log(`answers of ${queries} searches at ef ${ef}: ${same ? 'identical' : 'DIFFERENT'}`);
if (!same) process.exit(1);
