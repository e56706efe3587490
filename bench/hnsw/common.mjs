// common.mjs -- what every Node adapter of the HNSW benchmark shares: the
// command line, the cached data, the memory probe and the one timing loop.
//
// An adapter is a small module that knows one library.  It hands runAdapter()
// four functions and nothing else:
//
//   build(base, n, dim)    builds the index from n rows (a Float32Array
//                          view of n*dim floats, row i = base image i, which
//                          must get the label/key/id i); returns optional
//                          { libBytes, notes }
//   afterBuild()           optional, untimed and after the RSS sample: work
//                          that is not part of building (usearch saves its
//                          index here); may return { libBytes, notes }
//   prepareQuery(vec)      turns one query (a Float32Array view) into what
//                          the library's search takes; done before timing
//   setEf(ef)              sets the search-time candidate list size
//   search(query, k)       one single-threaded query; returns the library's
//                          raw answer (converted later, untimed)
//   searchAsync(query, k)  instead of search, for an index that reads from
//                          elsewhere during a search (rows left in a file):
//                          a promise of the answer, awaited query by query
//   toIds(answer, k)       that answer as base row numbers, closest first
//
// and runAdapter() prints JSON lines on stdout (see run.mjs for the schema),
// writing each ef's neighbours (int32, queries x k) into --neighbors so that
// recall is computed once, centrally, by run.mjs.
//
// Timing: a warm-up pass over min(Q, 200) queries at the first ef, then for
// each ef `--runs` timed passes over all Q queries one at a time; the best
// pass counts (it is the one least disturbed by other processes on this
// shared 2-core machine).  QPS = Q / seconds of that pass.  With
// --interleave 1 each pass waits for the runner's go (see passBegin).
//
// Memory: RSS is sampled after a forced GC (node --expose-gc) just before and
// just after the build; the growth is reported as rss_delta_mb.  It includes
// wasm linear memory the library touched and JS copies it keeps; libraries
// that report their own footprint give lib_mb as well.

import { existsSync, readFileSync, readSync, writeFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Version of an installed npm package (some, like usearch, do not export ./package.json). */
export function packageVersion(name) {
  const require = createRequire(import.meta.url);
  let dir = dirname(require.resolve(name));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8'));
      if (pkg.name === name) return pkg.version;
    }
    if (dirname(dir) === dir) return 'unknown';
    dir = dirname(dir);
  }
}

export function parseArgs(argv = process.argv.slice(2)) {
  const args = {
    data: 'bench/data', base: 60000, queries: 1000, k: 10, M: 16, efc: 200,
    efs: [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512],
    runs: 2, neighbors: null, variant: null, interleave: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '');
    const value = argv[++i];
    if (!(key in args)) throw new Error(`unknown option --${key}`);
    if (key === 'efs') args.efs = value.split(',').map(Number);
    else if (typeof args[key] === 'number') args[key] = Number(value);
    else args[key] = value;
  }
  return args;
}

/** Reads the first `limit` rows of an .fvecs file into one Float32Array. */
export function readFvecs(path, limit = Infinity) {
  const buf = readFileSync(path);
  const dim = buf.readInt32LE(0);
  const rowBytes = 4 + dim * 4;
  const n = Math.min(limit, buf.length / rowBytes);
  if (!Number.isInteger(buf.length / rowBytes)) throw new Error(`${path}: not an .fvecs file`);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const row = new Float32Array(buf.buffer, buf.byteOffset + i * rowBytes + 4, dim);
    out.set(row, i * dim);
  }
  return { data: out, n, dim };
}

export function loadData(args) {
  const base = readFvecs(join(args.data, 'fashion-mnist-base.fvecs'), args.base);
  const query = readFvecs(join(args.data, 'fashion-mnist-query.fvecs'), args.queries);
  if (base.n !== args.base || query.n !== args.queries)
    throw new Error(`asked for ${args.base} x ${args.queries}, data has ${base.n} x ${query.n}`);
  return { base, query };
}

const MB = 1024 * 1024;

function rssAfterGc() {
  if (globalThis.gc) { globalThis.gc(); globalThis.gc(); }
  return process.memoryUsage().rss;
}

export function emit(record) {
  process.stdout.write(JSON.stringify(record) + '\n');
}

// --interleave 1: the protocol of bench/bench_util.h's pass_begin -- announce
// each timed pass and wait for a line on stdin (fd 0 read synchronously:
// nothing else may run while the runner times another library).
const GO = Buffer.alloc(1);
function passBegin(args) {
  if (!args.interleave) return;
  emit({ type: 'ready' });
  for (;;) {
    let got;
    try { got = readSync(0, GO, 0, 1, null); } catch (err) {
      if (err.code === 'EAGAIN') continue;
      throw err;
    }
    if (got === 0) process.exit(0);
    if (GO[0] === 10) return;
  }
}

/**
 * Runs the whole protocol for one library.  `info` = { library, variant,
 * version, params (how M / efConstruction map onto this library), notes }.
 * `efs` may be overridden by the adapter (edgevec) through info.efs.
 */
export async function runAdapter(args, info, lib) {
  const { base, query } = loadData(args);
  const dim = base.dim;
  const queries = [];
  for (let i = 0; i < query.n; i++) queries.push(lib.prepareQuery(query.data.subarray(i * dim, (i + 1) * dim)));

  const rss0 = rssAfterGc();
  const t0 = process.hrtime.bigint();
  let built = (await lib.build(base.data, base.n, dim)) ?? {};
  const buildSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const rss1 = rssAfterGc();
  if (lib.afterBuild) built = { ...built, ...(await lib.afterBuild()) };
  const common = { library: info.library, variant: info.variant ?? 'default', base: base.n, queries: query.n, k: args.k };
  emit({
    type: 'build', ...common, version: info.version, params: info.params,
    build_s: +buildSeconds.toFixed(3),
    rss_delta_mb: +((rss1 - rss0) / MB).toFixed(1),
    lib_mb: built.libBytes === undefined ? null : +(built.libBytes / MB).toFixed(1),
    notes: [info.notes, built.notes].filter(Boolean).join(' '),
  });

  const efs = info.efs ?? args.efs;
  mkdirSync(args.neighbors, { recursive: true });
  // One pass over the first n queries, answers into `answers`.
  const queryPass = lib.searchAsync
    ? async (answers, n) => { for (let i = 0; i < n; i++) answers[i] = await lib.searchAsync(queries[i], args.k); }
    : (answers, n) => { for (let i = 0; i < n; i++) answers[i] = lib.search(queries[i], args.k); };
  lib.setEf(Math.max(efs[0], args.k));
  await queryPass([], Math.min(query.n, 200));

  for (const ef of efs) {
    const effective = await lib.setEf(ef); // edgevec: builds the index for this ef
    const answers = new Array(query.n);
    let best = Infinity;
    for (let run = 0; run < args.runs; run++) {
      passBegin(args);
      const start = process.hrtime.bigint();
      await queryPass(answers, query.n);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (args.interleave) emit({ type: 'pass', seconds });
      best = Math.min(best, seconds);
    }
    const ids = new Int32Array(query.n * args.k).fill(-1);
    for (let i = 0; i < query.n; i++) {
      const row = lib.toIds(answers[i], args.k);
      for (let j = 0; j < Math.min(row.length, args.k); j++) ids[i * args.k + j] = row[j];
    }
    const file = join(args.neighbors, `${info.library}-${info.variant ?? 'default'}-ef${ef}.i32`);
    writeFileSync(file, ids);
    emit({
      type: 'search', ...common, ef, qps: +(query.n / best).toFixed(1),
      neighbors: file, ...(effective?.extra ?? {}),
    });
  }
}
