// partial.test.mjs -- "a failed command never leaves a partial file", for
// failures that come *after* the temporary output file exists (run by
// `make test-cli` with the other files in tests/cli/).
//
// cli.test.mjs covers failures found before the output is opened (bad
// input, bad flags).  Here the CLI is made to fail while it writes:
//
//   - a file-size limit (prlimit --fsize) below the output's size: write()
//     fails part-way with EFBIG.  Both with SIGXFSZ ignored and with its
//     default action, which would kill the process mid-write if the CLI did
//     not ignore it itself while a temporary is open.  Native and WASI.
//   - an address-space limit (prlimit --as) swept across the range where
//     the command goes from failing to succeeding, natively: every limit
//     must give a clean "out of memory" failure or the whole, right output.
//     `car export` reads blocks after its temporary exists, and the sweep
//     must reach that point (the message names the block being read).
//     `build --out` allocates nothing once its temporary exists (the
//     segment is complete in memory first); the sweep shows the last
//     failure before it is "saving the segment" and the next limit writes.
//   - SIGINT, SIGTERM and SIGHUP while a temporary exists, natively: strace
//     holds the process inside a write() or an fsync() of the temporary
//     (inject=...:delay_*), the test sees the temporary on disk, signals
//     the process and checks that it died of that signal and left no
//     temporary (and no DIR/lock); a signal ignored when the CLI started
//     stays ignored.  Also a signal in the middle of a long build.
//
// After every failure: a non-zero exit (or death by the signal), a message
// that says what happened, no ".tmp" file anywhere under the directory, and
// the previous output -- a segment, a CAR, a collection's root -- byte for
// byte as it was.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { constants as osConstants } from 'node:os';

import { TestRng } from '../js/data.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NATIVE = process.env.SHOAL_CLI_NATIVE || join(ROOT, 'build', 'shoal');
const RUNNERS = { native: NATIVE, wasi: join(ROOT, 'wasi', 'shoal') };

// --------------------------------------------------------------- helpers

function fvecs(seed, n, dim) {
  const rng = new TestRng(seed);
  const b = Buffer.alloc(n * (4 + 4 * dim));
  for (let i = 0, at = 0; i < n; i++) {
    b.writeInt32LE(dim, at);
    at += 4;
    for (let j = 0; j < dim; j++, at += 4) b.writeFloatLE(rng.float(), at);
  }
  return b;
}

function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'buffer', timeout: 300_000 });
  if (r.error) throw r.error;
  return { code: r.status, signal: r.signal, out: r.stdout.toString(), err: r.stderr.toString() };
}

function ok(cmd, args, cwd) {
  const r = run(cmd, args, cwd);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} exited ${r.code} (${r.signal ?? ''}): ${r.err}`);
  return r;
}

// Every file under dir, as paths relative to it.
function walk(dir, base = dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name), base) : [relative(base, join(dir, e.name))]);
}

function assertNoTemporaries(dir, what) {
  const left = walk(dir).filter((f) => /\.tmp\d*$/.test(f));
  assert.deepEqual(left, [], `${what}: temporaries left behind`);
}

// A fresh directory per case, with the inputs (the collection and the big
// input only where a case needs them).
const TOP = mkdtempSync(join(tmpdir(), 'shoal-partial-'));
const INPUTS = join(TOP, 'inputs');
let caseNumber = 0;
function caseDir(withCollection = false, withBig = false) {
  const dir = join(TOP, `case-${caseNumber++}`);
  mkdirSync(dir);
  for (const f of ['base.fvecs', 'more.fvecs', 'small.fvecs', ...(withBig ? ['big.fvecs'] : [])])
    cpSync(join(INPUTS, f), join(dir, f));
  if (withCollection) cpSync(join(INPUTS, 'coll'), join(dir, 'coll'), { recursive: true });
  return dir;
}

const OLD = Buffer.from('the previous output: must survive every failure\n');

// The references, made once by the native build (the WASI build writes the
// same bytes: cli.test.mjs).
const ref = {};
before(() => {
  for (const bin of Object.values(RUNNERS)) assert.ok(existsSync(bin), `${bin} is missing: run make cli`);
  const dir = INPUTS;
  mkdirSync(dir);
  writeFileSync(join(dir, 'base.fvecs'), fvecs(21, 3000, 32)); // flat segment: 431,680 bytes
  writeFileSync(join(dir, 'more.fvecs'), fvecs(22, 300, 32)); // appended to the collection
  writeFileSync(join(dir, 'small.fvecs'), fvecs(23, 1500, 16)); // address-space sweeps
  writeFileSync(join(dir, 'big.fvecs'), fvecs(24, 30000, 32)); // a build that takes seconds
  ok(NATIVE, ['build', 'base.fvecs', '--out', 'ref-flat.seg', '--quiet'], dir);
  ok(NATIVE, ['build', 'small.fvecs', '--kind', 'hnsw', '--M', '8', '--ef-construction', '32',
    '--out', 'ref-hnsw.seg', '--quiet'], dir);
  // Three segments of 1000 records: blocks of ~290 KB.
  ok(NATIVE, ['build', 'base.fvecs', '--collection', 'coll', '--flush-records', '1000', '--quiet'], dir);
  ok(NATIVE, ['car', 'export', 'coll', '--out', 'ref.car', '--quiet'], dir);
  ref.flat = readFileSync(join(dir, 'ref-flat.seg'));
  ref.hnsw = readFileSync(join(dir, 'ref-hnsw.seg'));
  ref.car = readFileSync(join(dir, 'ref.car'));
  ref.root = readFileSync(join(dir, 'coll', 'root'));
  const appended = caseDir(true);
  ok(NATIVE, ['build', 'more.fvecs', '--collection', 'coll', '--append', '--quiet'], appended);
  ref.appendedRoot = readFileSync(join(appended, 'coll', 'root'));
  assert.notDeepEqual(ref.appendedRoot, ref.root);
  // The smallest block the append writes (its new segment, its manifest).
  const had = new Set(readdirSync(join(dir, 'coll', 'blocks')));
  ref.appendedBlock = Math.min(...readdirSync(join(appended, 'coll', 'blocks'))
    .filter((f) => !had.has(f)).map((f) => statSync(join(appended, 'coll', 'blocks', f)).size));
  rmSync(appended, { recursive: true, force: true });
});
after(() => rmSync(TOP, { recursive: true, force: true }));

// The commands whose writes are made to fail.  prepare(dir) puts the
// previous output in place; check(dir, r) asserts on the outcome.
const COMMANDS = {
  'build --out': {
    args: ['build', 'base.fvecs', '--out', 'out.seg', '--quiet'],
    prepare: (dir) => writeFileSync(join(dir, 'out.seg'), OLD),
    output: (dir) => readFileSync(join(dir, 'out.seg')),
    whole: () => ref.flat,
    size: () => ref.flat.length,
  },
  'car export': {
    collection: true,
    args: ['car', 'export', 'coll', '--out', 'out.car', '--quiet'],
    prepare: (dir) => writeFileSync(join(dir, 'out.car'), OLD),
    output: (dir) => readFileSync(join(dir, 'out.car')),
    whole: () => ref.car,
    size: () => ref.car.length,
  },
  'build --collection --append': {
    collection: true,
    locks: true, // takes coll/lock
    args: ['build', 'more.fvecs', '--collection', 'coll', '--append', '--quiet'],
    prepare: () => {},
    output: (dir) => readFileSync(join(dir, 'coll', 'root')),
    old: () => ref.root,
    whole: () => ref.appendedRoot,
    size: () => ref.appendedBlock,
  },
};
const previous = (c) => (c.old ? c.old() : OLD);

// After a failure: the previous output as it was, no temporary, no lock,
// and a collection that still verifies.
function assertUntouched(c, dir, what) {
  assert.deepEqual(c.output(dir), previous(c), `${what}: the previous output changed`);
  assertNoTemporaries(dir, what);
  if (c.collection) {
    assert.ok(!existsSync(join(dir, 'coll', 'lock')), `${what}: coll/lock left behind`);
    ok(NATIVE, ['verify', 'coll'], dir);
  }
}

// ------------------------------------------------------ file-size limit

// prlimit --fsize=N; SIGXFSZ either ignored by the parent (inherited
// through exec: write() returns EFBIG) or at its default action (the
// kernel kills a process that writes past the limit, unless it ignores the
// signal itself).
function withFileLimit(bytes, xfsz, cmd, args, cwd) {
  const limited = ['prlimit', `--fsize=${bytes}`, '--', cmd, ...args];
  return xfsz === 'ignored'
    ? run('sh', ['-c', 'trap "" XFSZ; exec "$@"', 'sh', ...limited], cwd)
    : run(limited[0], limited.slice(1), cwd);
}

// Node ignores SIGXFSZ itself, so under WASI both cases are one: the WASI
// runs take the default case only, and fewer limits (each run starts node).
for (const runner of Object.keys(RUNNERS)) {
  describe(`file-size limit (${runner})`, () => {
    for (const [name, c] of Object.entries(COMMANDS)) {
      for (const xfsz of runner === 'wasi' ? ['default'] : ['ignored', 'default']) {
        test(`${name}: a write past the limit fails cleanly (SIGXFSZ ${xfsz})`, () => {
          const size = c.size();
          const limits = runner === 'wasi' ? [0, size - 1] : [0, 4096, Math.floor(size / 2), size - 1];
          for (const limit of limits) {
            const dir = caseDir(c.collection);
            c.prepare(dir);
            const r = withFileLimit(limit, xfsz, RUNNERS[runner], c.args, dir);
            const what = `${runner} ${name}, --fsize=${limit}, SIGXFSZ ${xfsz}`;
            assert.equal(r.signal, null, `${what}: killed by ${r.signal}`);
            assert.equal(r.code, 3, `${what}: exit ${r.code}: ${r.err}`);
            // (With a limit of 0 the first file written is coll/lock.)
            assert.match(r.err, /^shoal: \S+: cannot write( the lock)?: File too large\n$/, what);
            assertUntouched(c, dir, what);
          }
          // The same command under a limit it fits in writes the whole output.
          const dir = caseDir(c.collection);
          c.prepare(dir);
          const fits = withFileLimit(64 << 20, xfsz, RUNNERS[runner], c.args, dir);
          assert.equal(fits.code, 0, fits.err);
          assert.deepEqual(c.output(dir), c.whole());
          assertNoTemporaries(dir, `${runner} ${name} under a limit it fits in`);
        });
      }
    }
  });
}

// -------------------------------------------------- address-space limit

const KIB64 = 64 * 1024;
const AS_COMMANDS = {
  'build --out (hnsw)': {
    args: ['build', 'small.fvecs', '--kind', 'hnsw', '--M', '8', '--ef-construction', '32',
      '--out', 'out.seg', '--quiet'],
    prepare: (dir) => writeFileSync(join(dir, 'out.seg'), OLD),
    output: (dir) => readFileSync(join(dir, 'out.seg')),
    whole: () => ref.hnsw,
    // The last allocation before the temporary is the segment's bytes.
    lastFailure: /saving the segment failed: out of memory/,
  },
  'car export': {
    ...COMMANDS['car export'],
    // Blocks are read (and checked) one by one while the CAR is written.
    afterTemporary: /blocks\/\S+: out of memory reading \d+ bytes/,
  },
  'build --collection --append': COMMANDS['build --collection --append'],
};

// The smallest limit (in 64 KiB steps, from lo up) at which test(limit)
// holds, test being monotonic: false at lo, true at hi.
function smallestPassing(lo, hi, test) {
  assert.ok(!test(lo), `already at ${lo}`);
  assert.ok(test(hi), `not even at ${hi}`);
  while (hi - lo > KIB64) {
    const mid = lo + Math.floor((hi - lo) / 2 / KIB64) * KIB64;
    if (test(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

// Below this limit the dynamic loader cannot even map libc (it fails with
// a message, or crashes): nothing of the CLI runs.  `shoal --version`
// allocates next to nothing.
let loaderFloor;
function floor() {
  loaderFloor ??= smallestPassing(1 << 20, 256 << 20,
    (limit) => run('prlimit', [`--as=${limit}`, '--', NATIVE, '--version'], TOP).code === 0);
  return loaderFloor;
}

// One run under prlimit --as=limit (at or above the loader's floor): the
// whole output, or a clean failure.  Returns 'ok' or the failure's message.
function underAddressLimit(name, c, limit) {
  const dir = caseDir(c.collection);
  c.prepare(dir);
  const r = run('prlimit', [`--as=${limit}`, '--', NATIVE, ...c.args], dir);
  const what = `${name} under --as=${limit}`;
  try {
    assert.equal(r.signal, null, `${what}: killed by ${r.signal}: ${r.err}`);
    if (r.code === 0) {
      assert.deepEqual(c.output(dir), c.whole(), `${what}: exit 0 but not the whole output`);
      assertNoTemporaries(dir, what);
      return 'ok';
    }
    // The core's SHOAL_ENOMEM is exit 4; an errno of ENOMEM from the C
    // library (fopen) is reported as the file operation that failed.
    if (/Cannot allocate memory/.test(r.err)) assert.ok([2, 3, 4].includes(r.code), `${what}: exit ${r.code}: ${r.err}`);
    else assert.equal(r.code, 4, `${what}: ${r.err}`);
    assert.match(r.err, /^shoal: .*(out of memory|Cannot allocate memory)/, `${what}: ${r.err}`);
    assert.doesNotMatch(r.err, /damaged|corrupt|not a valid/i, `${what}: out of memory is no damage`);
    assert.equal(r.err.split('\n').length, 2, `${what}: one message line: ${r.err}`);
    assertUntouched(c, dir, what);
    return r.err.trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('address-space limit (native)', () => {
  for (const [name, c] of Object.entries(AS_COMMANDS)) {
    test(`${name}: every limit gives the whole output or a clean out-of-memory failure`, (t) => {
      const lo = floor();
      // The smallest limit at which the command succeeds; then every 64 KiB
      // step below it, down to the loader's floor (at most 4 MiB).
      const works = smallestPassing(lo, 256 << 20, (limit) => underAddressLimit(name, c, limit) === 'ok');
      const failures = [];
      for (let limit = works - KIB64; limit >= lo && limit > works - (4 << 20); limit -= KIB64) {
        const outcome = underAddressLimit(name, c, limit);
        assert.notEqual(outcome, 'ok', `succeeds at ${limit} but not at ${works - KIB64}`);
        failures.push(outcome);
      }
      assert.ok(failures.length > 0, `the command needs no more than the loader (${lo})`);
      const seen = [...new Set(failures)].join('\n');
      if (c.afterTemporary)
        assert.ok(failures.some((m) => c.afterTemporary.test(m)), `no failure after the temporary was opened:\n${seen}`);
      if (c.lastFailure) assert.match(failures[0], c.lastFailure, seen);
      t.diagnostic(`loader floor ${lo}, works from ${works}; the failures below it:`);
      for (const m of new Set(failures)) t.diagnostic(m);
    });
  }
});

// ---------------------------------------------------------------- signals

// strace holds the traced CLI in a system call for a while (delay
// injection), so a signal can be sent while the temporary is on disk.
const HAVE_STRACE = spawnSync('strace', ['-f', '-o', '/dev/null', 'true']).status === 0;
const DELAY = '2s';

// Starts the native CLI (under strace when inject is given) in dir.
// Returns { pid(), done }: the CLI's own process id once it runs, and a
// promise of { code, signal } for its end (strace ends as its tracee does,
// re-raising the signal that killed it).
function start(args, dir, { inject, ignore } = {}) {
  const cmd = inject
    ? ['strace', '-f', '-o', '/dev/null', '-e', `trace=${inject.split(':')[0]}`, '-e', `inject=${inject}`,
      NATIVE, ...args]
    : [NATIVE, ...args];
  const child = spawn('sh', ['-c', `${ignore ? `trap "" ${ignore}; ` : ''}exec "$@"`, 'sh', ...cmd],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  child.stdout.resume();
  const done = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, err })));
  const pid = () => {
    if (!inject) return child.pid;
    const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim();
    assert.ok(kids, 'strace has no tracee');
    return Number(kids.split(' ')[0]);
  };
  return { pid, done };
}

async function until(predicate, what, ms = 20_000) {
  for (const t0 = Date.now(); !predicate();) {
    assert.ok(Date.now() - t0 < ms, `timed out waiting for ${what}`);
    await sleep(5);
  }
}

const temporaries = (dir) => walk(dir).filter((f) => /\.tmp\d*$/.test(f));
const sizeOf = (dir, f) => statSync(join(dir, f)).size;

function assertDiedOf(r, sig, what) {
  // The tracee's death, as strace reports it: the same signal.
  const died = r.signal === sig || r.code === 128 + osConstants.signals[sig];
  assert.ok(died, `${what}: expected death by ${sig}, got exit ${r.code} signal ${r.signal}: ${r.err}`);
}

describe('signals (native)', { skip: HAVE_STRACE ? false : 'strace is not installed (tools/deps.sh installs it)' }, () => {
  // Where the process is held when the signal comes: inside the first
  // write() of the temporary (after it returned: the temporary holds part
  // of the output), or inside the fsync() before the rename (whole, not
  // yet renamed).
  const PHASES = {
    'mid-write': {
      inject: `write:delay_exit=${DELAY}:when=1`,
      ready: (dir, f, full) => sizeOf(dir, f) > 0 && sizeOf(dir, f) < full,
    },
    'before the rename': {
      inject: `fsync:delay_enter=${DELAY}`,
      ready: (dir, f, full) => sizeOf(dir, f) === full,
    },
  };

  test('build --out: SIGINT, SIGTERM and SIGHUP while the temporary is on disk', async () => {
    const c = COMMANDS['build --out'];
    const cases = [];
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
      for (const [phase, p] of Object.entries(PHASES)) cases.push({ sig, phase, p });
    await Promise.all(cases.map(async ({ sig, phase, p }) => {
      const what = `build --out, ${sig} ${phase}`;
      const dir = caseDir();
      c.prepare(dir);
      const cli = start(c.args, dir, { inject: p.inject });
      await until(() => { const t = temporaries(dir); return t.length === 1 && p.ready(dir, t[0], ref.flat.length); },
        `${what}: the temporary`);
      process.kill(cli.pid(), sig);
      assertDiedOf(await cli.done, sig, what);
      assertUntouched(c, dir, what);
    }));
  });

  test('car export and build --collection --append: a signal while a temporary is on disk', async () => {
    const cases = [
      { name: 'car export', sig: 'SIGINT', inject: `write:delay_exit=${DELAY}:when=1` },
      { name: 'car export', sig: 'SIGTERM', inject: `fsync:delay_enter=${DELAY}` },
      // The first fsync is the new segment's block (blocks/.<cid>.tmp0);
      // DIR/lock is held throughout and must go too.
      { name: 'build --collection --append', sig: 'SIGINT', inject: `fsync:delay_enter=${DELAY}` },
      { name: 'build --collection --append', sig: 'SIGHUP', inject: `fsync:delay_enter=${DELAY}` },
    ];
    await Promise.all(cases.map(async ({ name, sig, inject }) => {
      const what = `${name}, ${sig} (${inject})`;
      const c = COMMANDS[name];
      const dir = caseDir(c.collection);
      c.prepare(dir);
      const cli = start(c.args, dir, { inject });
      await until(() => temporaries(dir).length === 1 && sizeOf(dir, temporaries(dir)[0]) > 0, `${what}: the temporary`);
      if (c.locks) assert.ok(existsSync(join(dir, 'coll', 'lock')), `${what}: the lock is held`);
      process.kill(cli.pid(), sig);
      assertDiedOf(await cli.done, sig, what);
      assertUntouched(c, dir, what);
    }));
  });

  test('a signal in the middle of a long build leaves the previous output (and no lock)', async () => {
    await Promise.all([
      (async () => {
        // No temporary exists yet: the build is still in memory.
        const what = 'build --out, SIGTERM while building';
        const c = COMMANDS['build --out'];
        const dir = caseDir(false, true);
        c.prepare(dir);
        const cli = start(['build', 'big.fvecs', '--kind', 'hnsw', '--out', 'out.seg', '--quiet'], dir);
        await sleep(500);
        process.kill(cli.pid(), 'SIGTERM');
        assertDiedOf(await cli.done, 'SIGTERM', what);
        assertUntouched(c, dir, what);
      })(),
      (async () => {
        // --append takes DIR/lock before it reads the folder and builds.
        const what = 'build --collection --append, SIGINT while building';
        const c = COMMANDS['build --collection --append'];
        const dir = caseDir(true, true);
        const cli = start(['build', 'big.fvecs', '--collection', 'coll', '--append', '--quiet'], dir);
        await until(() => existsSync(join(dir, 'coll', 'lock')), `${what}: the lock`);
        await sleep(300);
        process.kill(cli.pid(), 'SIGINT');
        assertDiedOf(await cli.done, 'SIGINT', what);
        assertUntouched(c, dir, what);
      })(),
    ]);
  });

  test('a signal that was ignored when the CLI started stays ignored', async () => {
    const c = COMMANDS['build --out'];
    const dir = caseDir();
    c.prepare(dir);
    const cli = start(c.args, dir, { inject: PHASES['mid-write'].inject, ignore: 'INT' });
    await until(() => temporaries(dir).length === 1, 'the temporary');
    process.kill(cli.pid(), 'SIGINT');
    const r = await cli.done;
    assert.equal(r.code, 0, `exit ${r.code} signal ${r.signal}: ${r.err}`);
    assert.deepEqual(c.output(dir), ref.flat);
    assertNoTemporaries(dir, 'SIGINT ignored');
  });
});
