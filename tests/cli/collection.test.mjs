// collection.test.mjs -- collection folders in the shoal CLI, natively
// (build/shoal) and under WASI (wasi/shoal running build/shoal.wasm), run by
// `make test-cli` (node --test tests/cli/).
//
// What it proves, for both runners
//   - build --collection of a JSONL with metadata and times gives several
//     segments (--flush-records), blocks named by their CIDs, a root file;
//     a second build into the folder is refused without --append;
//   - search of a flat collection prints exactly what search of one flat
//     segment built from the same input prints (ids, distances, metadata),
//     filtered too;
//   - info and verify report the folder; verify (and search) exit 2 after
//     one block file is deleted or damaged, naming it;
//   - compact makes a new root (linking the old one) with the same results;
//   - car export writes a CARv1 that @ipld/car reads: the root, every block
//     file reachable from it in depth-first pre-order, each hashing to its
//     CID (multiformats); a CAR written by @ipld/car in another order
//     imports into a fresh folder with the same results; a CAR with a
//     tampered block, cut short or missing a block is refused (exit 2) and
//     leaves no root;
//   - a log written by the JS Collection over the JS fileStore is applied by
//     search and folded in by compact (when js/dist is built);
// and that both runners write the same folders (same root CIDs, identical
// block files), the same CAR bytes and the same --json output.
//
// Inputs come from the seeded generator shared with the C and JS tests
// (tests/js/data.mjs); 600 records of dimension 12 keep the WASI runs short.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { CarReader, CarWriter } from '@ipld/car';
import * as dagCbor from '@ipld/dag-cbor';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';

import { TestRng } from '../js/data.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RUNNERS = {
  native: process.env.SHOAL_CLI_NATIVE || join(ROOT, 'build', 'shoal'),
  wasi: join(ROOT, 'wasi', 'shoal'),
};
const JS_BUILT = existsSync(join(ROOT, 'js', 'dist', 'shoal-simd.wasm'));

const N = 600;
const DIM = 12;
const FLUSH = 200;
const T0 = 1_700_000_000_000;

// ------------------------------------------------------------------ data

function makeRows(seed, n, dim) {
  const rng = new TestRng(seed);
  return Array.from({ length: n }, () => rng.fill(new Float32Array(dim)));
}

const BASE = makeRows(31, N, DIM);
const QUERIES = makeRows(32, 12, DIM);

function jsonl(rows, { id = (i) => `doc-${i}`, metadata = (i) => ({ n: i, cat: i % 5, tags: i % 2 ? ['odd'] : ['even', { deep: i }] }), time = (i) => T0 + i * 1000 } = {}) {
  return rows.map((row, i) => JSON.stringify({
    id: id(i), vector: Array.from(row), metadata: metadata ? metadata(i) : undefined, time: time ? time(i) : undefined,
  })).join('\n') + '\n';
}

function writeInputs(dir) {
  writeFileSync(join(dir, 'base.jsonl'), jsonl(BASE));
  writeFileSync(join(dir, 'queries.jsonl'), jsonl(QUERIES, { id: (i) => `q${i}`, metadata: null, time: null }));
}

// --------------------------------------------------------------- helpers

function run(runner, args, cwd) {
  const r = spawnSync(RUNNERS[runner], args, { cwd, encoding: 'buffer', timeout: 120_000 });
  if (r.error) throw r.error;
  return { code: r.status, signal: r.signal, stdout: r.stdout, out: r.stdout.toString(), err: r.stderr.toString() };
}

function ok(runner, args, cwd) {
  const r = run(runner, args, cwd);
  assert.equal(r.code, 0, `${runner} shoal ${args.join(' ')} exited ${r.code} (${r.signal ?? ''}): ${r.err}`);
  return r;
}

function fails(runner, args, cwd, code, pattern) {
  const r = run(runner, args, cwd);
  assert.equal(r.code, code, `${runner} shoal ${args.join(' ')}: exit ${r.code}, expected ${code}: ${r.err}`);
  if (pattern) assert.match(r.err, pattern);
  return r;
}

const blockFiles = (dir) => readdirSync(join(dir, 'blocks')).sort();
const same = (a, b) => Buffer.from(a).equals(Buffer.from(b));
const rootOf = (dir) => readFileSync(join(dir, 'root'), 'utf8');

// Every block file is named by the CID of its bytes; no temporaries, no lock.
async function checkFolder(dir) {
  const names = blockFiles(dir);
  assert.ok(names.length > 0);
  for (const name of names) {
    assert.match(name, /^baf[ky]rei[a-z2-7]{52}$/, `${dir}/blocks/${name}: not a CID`);
    const cid = CID.parse(name);
    const digest = await sha256.digest(readFileSync(join(dir, 'blocks', name)));
    assert.ok(same(cid.multihash.bytes, digest.bytes), `${name} does not hash to its name`);
  }
  assert.match(rootOf(dir), /^bafyrei[a-z2-7]{52}\n$/);
  assert.ok(!existsSync(join(dir, 'lock')), 'the lock is released');
  assert.ok(!readdirSync(dir).some((f) => f.includes('.tmp')), 'no temporaries');
  assert.ok(!names.some((f) => f.includes('.tmp')), 'no temporaries in blocks/');
}

// The blocks reachable from root in depth-first pre-order (links in the
// order they appear in each block, each block once), read from the folder.
function dagOrder(dir, root) {
  const order = [], seen = new Set();
  const visit = (cid) => {
    const key = cid.toString();
    if (seen.has(key)) return;
    seen.add(key);
    order.push(key);
    if (cid.code !== dagCbor.code) return;
    const links = [];
    const collect = (v) => {
      const asCid = CID.asCID(v);
      if (asCid) links.push(asCid);
      else if (Array.isArray(v)) v.forEach(collect);
      else if (v && typeof v === 'object' && !(v instanceof Uint8Array)) Object.values(v).forEach(collect);
    };
    collect(dagCbor.decode(readFileSync(join(dir, 'blocks', key))));
    links.forEach(visit);
  };
  visit(CID.parse(root));
  return order;
}

async function carOf(blocks, root) {
  const { writer, out } = CarWriter.create([CID.parse(root)]);
  const chunks = [];
  const drained = (async () => { for await (const c of out) chunks.push(c); })();
  for (const [cid, bytes] of blocks) await writer.put({ cid: CID.parse(cid), bytes });
  await writer.close();
  await drained;
  return Buffer.concat(chunks);
}

// ------------------------------------------------------------- the runs

const dirs = {};
before(() => {
  for (const runner of Object.keys(RUNNERS)) {
    assert.ok(existsSync(RUNNERS[runner]), `${RUNNERS[runner]} is missing: run make cli`);
    dirs[runner] = mkdtempSync(join(tmpdir(), `shoal-coll-${runner}-`));
    writeInputs(dirs[runner]);
  }
});
after(() => {
  for (const dir of Object.values(dirs)) rmSync(dir, { recursive: true, force: true });
});

const FLAT = ['build', 'base.jsonl', '--collection', 'flat.coll', '--kind', 'flat', '--flush-records', String(FLUSH)];
const HNSW = ['build', 'base.jsonl', '--collection', 'hnsw.coll', '--M', '8', '--ef-construction', '32', '--seed', '7',
  '--flush-records', String(FLUSH), '--merge-factor', '2'];
const SEARCH = ['--query', 'queries.jsonl', '-k', '7', '--json'];

for (const runner of Object.keys(RUNNERS)) {
  describe(`collections (${runner})`, () => {
    const cwd = () => dirs[runner];
    const at = (name) => join(cwd(), name);

    test('help and usage errors', () => {
      for (const cmd of [['compact'], ['car', 'export'], ['car', 'import']]) {
        const r = ok(runner, [...cmd, '--help'], cwd());
        assert.match(r.out, new RegExp(`usage: shoal ${cmd.join(' ')}`));
        fails(runner, [...cmd, '--no-such-flag'], cwd(), 1, /unknown option '--no-such-flag'/);
      }
      assert.match(ok(runner, ['car', '--help'], cwd()).out, /car export DIR --out FILE\.car/);
      assert.match(ok(runner, ['help', 'compact'], cwd()).out, /usage: shoal compact/);
      const build = ok(runner, ['build', '--help'], cwd()).out;
      for (const flag of ['--collection DIR', '--append', '--flush-records N', '--large-from N', '--recent-ms N',
        '--flush-bytes N', '--merge-factor N', '--zstd-level N', '--large-kind WORD', '--large-quantizer WORD',
        '--large-nlist N', '--large-nprobe N', '--large-pq-m N', '--large-pq-bits N', '--large-rerank N'])
        assert.ok(build.includes(flag), `build --help lacks ${flag}`);
      assert.match(ok(runner, ['--help'], cwd()).out, /compact/);
      fails(runner, ['build', 'base.jsonl'], cwd(), 1, /--out FILE or --collection DIR/);
      fails(runner, ['build', 'base.jsonl', '--out', 'x.seg', '--flush-records', '5'], cwd(), 1, /--flush-records applies to --collection/);
      fails(runner, ['build', 'base.jsonl', '--collection', 'x.coll', '--kind', 'ivf'], cwd(), 1, /hnsw or flat/);
      fails(runner, ['build', 'base.jsonl', '--collection', 'x.coll', '--large-M', '8'], cwd(), 1, /--large-M does not apply to --large-kind ivf/);
      fails(runner, ['build', 'base.jsonl', '--collection', 'x.coll', '--large-metric', 'ip'], cwd(), 1, /collection's metric/);
      fails(runner, ['build', 'base.jsonl', '--collection', 'x.coll', '--zstd', '3'], cwd(), 1, /--zstd-level/);
      fails(runner, ['build', 'base.jsonl', '--collection', 'x.coll', '--merge-factor', '1'], cwd(), 1, /merge_factor = 1/);
      fails(runner, ['car'], cwd(), 1);
      fails(runner, ['car', 'export', 'nothing.coll', '--out', 'x.car'], cwd(), 2, /not a collection/);
      assert.ok(!existsSync(at('x.coll')) && !existsSync(at('x.seg')) && !existsSync(at('x.car')), 'nothing written');
    });

    test('build --collection: several segments, blocks named by their CIDs; a second build needs --append', async () => {
      const r = JSON.parse(ok(runner, [...FLAT, '--json'], cwd()).out);
      assert.equal(r.collection, 'flat.coll');
      assert.equal(r.records, N);
      assert.equal(r.segments, N / FLUSH);
      assert.equal(rootOf(at('flat.coll')), `${r.root}\n`);
      const names = blockFiles(at('flat.coll'));
      assert.equal(r.blocks, names.length);
      assert.equal(r.written, names.length);
      assert.equal(r.bytes, names.reduce((s, f) => s + statSync(join(at('flat.coll'), 'blocks', f)).size, 0));
      await checkFolder(at('flat.coll'));
      const again = fails(runner, FLAT, cwd(), 1, /holds a collection already/);
      assert.match(again.err, new RegExp(r.root));
      assert.equal(rootOf(at('flat.coll')), `${r.root}\n`, 'the folder is as it was');
      // The default small kind is hnsw; with merge factor 2 the tiered
      // compaction after the second flush merges the first two segments.
      const h = JSON.parse(ok(runner, [...HNSW, '--json', '-q'], cwd()).out);
      assert.equal(h.records, N);
      assert.equal(h.segments, 2);
      await checkFolder(at('hnsw.coll'));
      // --out and --collection together: one JSON object per output.
      const both = ok(runner, ['build', 'base.jsonl', '--out', 'flat.seg', '--collection', 'both.coll', '--kind', 'flat',
        '--flush-records', String(FLUSH), '--json'], cwd()).out.trim().split('\n').map((l) => JSON.parse(l));
      assert.equal(both[0].out, 'flat.seg');
      assert.equal(both[0].kind, 'flat');
      assert.equal(both[1].root, r.root, 'the same collection as flat.coll');
      // --append adds records with the collection's own parameters.
      cpSync(at('flat.coll'), at('append.coll'), { recursive: true });
      writeFileSync(at('more.jsonl'), jsonl(makeRows(33, 5, DIM), { id: (i) => `more-${i}` }));
      fails(runner, ['build', 'more.jsonl', '--collection', 'append.coll', '--append', '--flush-records', '9'], cwd(), 1, /has its parameters already/);
      const a = JSON.parse(ok(runner, ['build', 'more.jsonl', '--collection', 'append.coll', '--append', '--json'], cwd()).out);
      assert.equal(a.records, N + 5);
      assert.equal(a.segments, N / FLUSH + 1);
      assert.equal(a.written, 2, 'the new segment and the new manifest');
      const info = JSON.parse(ok(runner, ['info', 'append.coll', '--json'], cwd()).out);
      assert.equal(info.prev, r.root);
      assert.equal(info.next_seq, N + 5);
      writeFileSync(at('wide.jsonl'), jsonl(makeRows(34, 2, DIM + 1)));
      fails(runner, ['build', 'wide.jsonl', '--collection', 'append.coll', '--append'], cwd(), 2, /dimension 13/);
    });

    test('search a flat collection: exactly what one flat segment gives', () => {
      const seg = ok(runner, ['search', 'flat.seg', ...SEARCH], cwd()).out;
      const coll = ok(runner, ['search', 'flat.coll', ...SEARCH], cwd()).out;
      assert.equal(coll, seg);
      const parsed = JSON.parse(coll);
      assert.equal(parsed.results.length, QUERIES.length);
      assert.ok(parsed.results.every((q) => q.ids.length === 7 && q.metadata.every((m) => typeof m.n === 'number')));
      const filter = ['--filter', '{"cat":{"$in":[1,3]},"tags":"odd"}'];
      assert.equal(ok(runner, ['search', 'flat.coll', ...SEARCH, ...filter], cwd()).out,
        ok(runner, ['search', 'flat.seg', ...SEARCH, ...filter], cwd()).out);
      const text = ['--vector', Array.from(BASE[42]).join(','), '-k', '3'];
      const line = ok(runner, ['search', 'flat.coll', ...text], cwd()).out;
      assert.equal(line, ok(runner, ['search', 'flat.seg', ...text], cwd()).out);
      // (Metadata comes back in canonical DAG-CBOR key order: shorter keys first.)
      assert.match(line, /1 {2}doc-42 {2}0 {2}\{"n":42,"cat":2,"tags":\["even",\{"deep":42\}\]\}/);
      // HNSW parts, ef given.
      const h = JSON.parse(ok(runner, ['search', 'hnsw.coll', ...SEARCH, '--ef', '64'], cwd()).out);
      assert.equal(h.results[0].ids.length, 7);
      fails(runner, ['search', 'flat.coll', ...SEARCH, '--ef', '16'], cwd(), 1, /--ef applies to hnsw/);
      fails(runner, ['search', 'flat.coll', ...SEARCH, '--M', '16'], cwd(), 1, /is a collection/);
      fails(runner, ['search', 'flat.coll', '--vector', '1,2,3'], cwd(), 2, /dimension 3/);
      fails(runner, ['search', 'flat.coll', ...SEARCH, '--filter', '{"$regex":1}'], cwd(), 1);
    });

    test('info and verify; a missing or damaged block is exit 2 and named', () => {
      const info = JSON.parse(ok(runner, ['info', 'flat.coll', '--json'], cwd()).out);
      assert.equal(`${info.root}\n`, rootOf(at('flat.coll')));
      assert.equal(info.records, N);
      assert.equal(info.dim, DIM);
      assert.equal(info.metric, 'l2');
      assert.equal(info.next_seq, N);
      assert.equal(info.tombstones, 0);
      assert.equal(info.prev, null);
      assert.equal(info.log, null);
      assert.equal(info.config.flushRecords, FLUSH);
      assert.equal(info.config.small.kind, 'flat');
      assert.equal(info.segment_list.length, N / FLUSH);
      for (const [i, s] of info.segment_list.entries()) {
        assert.deepEqual([s.kind, s.tier, s.records, s.live, s.blocks], ['flat', 'small', FLUSH, FLUSH, 1]);
        assert.deepEqual(s.seqs, [i * FLUSH, (i + 1) * FLUSH - 1]);
        assert.deepEqual(s.times, [T0 + i * FLUSH * 1000, T0 + ((i + 1) * FLUSH - 1) * 1000]);
        assert.ok(blockFiles(at('flat.coll')).includes(s.cid));
      }
      assert.equal(info.blocks, blockFiles(at('flat.coll')).length);
      const text = ok(runner, ['info', 'flat.coll'], cwd()).out;
      assert.match(text, /records +600 of dimension 12, l2 \(next sequence number 600\)/);
      assert.match(text, /segments +3, \d+ bytes, 0 tombstones/);
      const v = JSON.parse(ok(runner, ['verify', 'flat.coll', '--json'], cwd()).out);
      assert.equal(v.ok, true);
      assert.equal(v.records, N);
      assert.equal(v.blocks, info.blocks);
      assert.match(ok(runner, ['verify', 'flat.coll'], cwd()).out, /^ok +flat\.coll: root bafyrei.*opens whole/);

      const victim = info.segment_list[1].cid;
      cpSync(at('flat.coll'), at('missing.coll'), { recursive: true });
      rmSync(join(at('missing.coll'), 'blocks', victim));
      const gone = fails(runner, ['verify', 'missing.coll', '--json'], cwd(), 2, new RegExp(`${victim}: missing`));
      assert.equal(JSON.parse(gone.out).ok, false);
      fails(runner, ['search', 'missing.coll', ...SEARCH], cwd(), 2, new RegExp(`missing.coll/blocks/${victim}: missing`));
      fails(runner, ['info', 'missing.coll'], cwd(), 2, new RegExp(victim));

      cpSync(at('flat.coll'), at('damaged.coll'), { recursive: true });
      const file = join(at('damaged.coll'), 'blocks', victim);
      const bytes = readFileSync(file);
      bytes[bytes.length >> 1] ^= 0x40;
      writeFileSync(file, bytes);
      assert.match(fails(runner, ['verify', 'damaged.coll'], cwd(), 2, new RegExp(`${victim}: damaged`)).out, /^FAIL damaged\.coll: /);
      fails(runner, ['search', 'damaged.coll', ...SEARCH], cwd(), 2, /damaged/);

      cpSync(at('flat.coll'), at('bad-root.coll'), { recursive: true });
      writeFileSync(join(at('bad-root.coll'), 'root'), 'not a cid\n');
      fails(runner, ['verify', 'bad-root.coll'], cwd(), 2, /root: not a CID/);
      fails(runner, ['info', 'base.jsonl.coll'], cwd(), 2);
    });

    test('compact: a new root linking the old one, the same results', () => {
      const before = rootOf(at('flat.coll')).trim();
      cpSync(at('flat.coll'), at('compact.coll'), { recursive: true });
      const c = JSON.parse(ok(runner, ['compact', 'compact.coll', '--json'], cwd()).out);
      assert.notEqual(c.root, before);
      assert.equal(c.previous, before);
      assert.equal(c.segments, 1);
      assert.equal(c.records, N);
      assert.equal(rootOf(at('compact.coll')), `${c.root}\n`);
      assert.equal(ok(runner, ['search', 'compact.coll', ...SEARCH], cwd()).out,
        ok(runner, ['search', 'flat.coll', ...SEARCH], cwd()).out);
      const info = JSON.parse(ok(runner, ['info', 'compact.coll', '--json'], cwd()).out);
      assert.equal(info.prev, before);
      // verify walks the history too: every old block is still reachable.
      const v = JSON.parse(ok(runner, ['verify', 'compact.coll', '--json'], cwd()).out);
      assert.equal(v.blocks, blockFiles(at('compact.coll')).length);
      assert.ok(v.version_blocks < v.blocks);
      // --drop-history: the same records under a manifest without prev.
      cpSync(at('compact.coll'), at('fresh.coll'), { recursive: true });
      const d = JSON.parse(ok(runner, ['compact', 'fresh.coll', '--drop-history', '--json'], cwd()).out);
      assert.equal(JSON.parse(ok(runner, ['info', 'fresh.coll', '--json'], cwd()).out).prev, null);
      assert.notEqual(d.root, c.root);
      assert.equal(ok(runner, ['search', 'fresh.coll', ...SEARCH], cwd()).out,
        ok(runner, ['search', 'flat.coll', ...SEARCH], cwd()).out);
    });

    test('car export: @ipld/car reads the root and every reachable block in DAG order', async () => {
      const e = JSON.parse(ok(runner, ['car', 'export', 'compact.coll', '--out', 'compact.car', '--json'], cwd()).out);
      const car = readFileSync(at('compact.car'));
      assert.equal(e.bytes, car.length);
      const root = rootOf(at('compact.coll')).trim();
      assert.equal(e.root, root);
      const reader = await CarReader.fromBytes(car);
      assert.deepEqual((await reader.getRoots()).map(String), [root]);
      const order = [];
      for await (const { cid, bytes } of reader.blocks()) {
        const digest = await sha256.digest(bytes);
        assert.ok(same(cid.multihash.bytes, digest.bytes), `${cid} does not hash to its CID`);
        assert.ok(same(bytes, readFileSync(join(at('compact.coll'), 'blocks', cid.toString()))), `${cid}: not the file's bytes`);
        order.push(cid.toString());
      }
      assert.equal(e.blocks, order.length);
      assert.deepEqual(order, dagOrder(at('compact.coll'), root), 'depth-first pre-order, each block once');
      // Every block file is reachable here (the history is kept).
      assert.deepEqual([...order].sort(), blockFiles(at('compact.coll')));
    });

    test('car import: a CAR @ipld/car wrote in another order; damaged CARs leave no root', async () => {
      const root = rootOf(at('compact.coll')).trim();
      const blocks = dagOrder(at('compact.coll'), root).reverse()
        .map((cid) => [cid, readFileSync(join(at('compact.coll'), 'blocks', cid))]);
      writeFileSync(at('reversed.car'), await carOf(blocks, root));
      const r = JSON.parse(ok(runner, ['car', 'import', 'reversed.car', '--collection', 'imported.coll', '--json'], cwd()).out);
      assert.equal(r.root, root);
      assert.equal(r.blocks, blocks.length);
      assert.equal(r.written, blocks.length);
      assert.equal(rootOf(at('imported.coll')), `${root}\n`);
      assert.deepEqual(blockFiles(at('imported.coll')), blockFiles(at('compact.coll')));
      await checkFolder(at('imported.coll'));
      assert.equal(ok(runner, ['search', 'imported.coll', ...SEARCH], cwd()).out,
        ok(runner, ['search', 'flat.seg', ...SEARCH], cwd()).out);
      ok(runner, ['verify', 'imported.coll'], cwd());
      // Again: nothing new; into a folder holding another collection: refused.
      assert.equal(JSON.parse(ok(runner, ['car', 'import', 'reversed.car', '--collection', 'imported.coll', '--json'], cwd()).out).written, 0);
      cpSync(at('flat.coll'), at('other.coll'), { recursive: true });
      fails(runner, ['car', 'import', 'reversed.car', '--collection', 'other.coll'], cwd(), 1, /--force/);
      ok(runner, ['car', 'import', 'reversed.car', '--collection', 'other.coll', '--force'], cwd());
      assert.equal(rootOf(at('other.coll')), `${root}\n`);

      // A tampered block: its bytes no longer hash to its CID.
      const tampered = blocks.map(([cid, bytes], i) => {
        if (i !== 1) return [cid, bytes];
        const b = Buffer.from(bytes);
        b[b.length - 3] ^= 1;
        return [cid, b];
      });
      writeFileSync(at('tampered.car'), await carOf(tampered, root));
      fails(runner, ['car', 'import', 'tampered.car', '--collection', 'tampered.coll'], cwd(), 2, /do not hash to its CID/);
      assert.ok(!existsSync(join(at('tampered.coll'), 'root')), 'no root after a tampered CAR');
      // Cut short, and missing one block of the version.
      const whole = readFileSync(at('reversed.car'));
      writeFileSync(at('short.car'), whole.subarray(0, whole.length - 100));
      fails(runner, ['car', 'import', 'short.car', '--collection', 'short.coll'], cwd(), 2, /truncated/);
      assert.ok(!existsSync(join(at('short.coll'), 'root')), 'no root after a truncated CAR');
      const segment = JSON.parse(ok(runner, ['info', 'compact.coll', '--json'], cwd()).out).segment_list[0].cid;
      writeFileSync(at('partial.car'), await carOf(blocks.filter(([cid]) => cid !== segment), root));
      fails(runner, ['car', 'import', 'partial.car', '--collection', 'partial.coll'], cwd(), 2, /missing/);
      assert.ok(!existsSync(join(at('partial.coll'), 'root')), 'no root after an incomplete CAR');
      fails(runner, ['car', 'import', 'base.jsonl', '--collection', 'junk.coll'], cwd(), 2, /not a CARv1 file/);
      assert.ok(!existsSync(at('junk.coll')), 'a file that is no CAR creates nothing');
    });

    test('a log the JS Collection appended: applied by search, folded in by compact', { skip: !JS_BUILT && 'js/dist is not built' }, async () => {
      const { Collection, fileStore } = await import('../../js/node.mjs');
      cpSync(at('flat.coll'), at('log.coll'), { recursive: true });
      const c = await Collection.open({ store: await fileStore(at('log.coll')) });
      await c.upsert([{ id: 'js-1', vector: BASE[5], metadata: { from: 'js' } }]);
      await c.delete(['doc-5', 'doc-6']);
      await c.close();
      assert.ok(statSync(join(at('log.coll'), 'log')).size > 0, 'the writes are in the log');
      // The same records in one segment, for comparison.
      const rows = BASE.map((row, i) => ({ row, i })).filter(({ i }) => i !== 5 && i !== 6);
      const lines = jsonl(rows.map((r) => r.row), { id: (j) => `doc-${rows[j].i}`, metadata: (j) => { const i = rows[j].i; return { n: i, cat: i % 5, tags: i % 2 ? ['odd'] : ['even', { deep: i }] }; }, time: (j) => T0 + rows[j].i * 1000 })
        + JSON.stringify({ id: 'js-1', vector: Array.from(BASE[5]), metadata: { from: 'js' } }) + '\n';
      writeFileSync(at('after-log.jsonl'), lines);
      ok(runner, ['build', 'after-log.jsonl', '--kind', 'flat', '--out', 'after-log.seg'], cwd());
      const expected = ok(runner, ['search', 'after-log.seg', ...SEARCH], cwd()).out;
      assert.equal(ok(runner, ['search', 'log.coll', ...SEARCH], cwd()).out, expected);
      const info = JSON.parse(ok(runner, ['info', 'log.coll', '--json'], cwd()).out);
      assert.deepEqual([info.records, info.log.records, info.log.written, info.log.deleted], [N - 1, 2, 1, 2]);
      assert.equal(info.root, rootOf(at('flat.coll')).trim(), 'read-only commands leave the folder alone');
      const c2 = JSON.parse(ok(runner, ['compact', 'log.coll', '--json'], cwd()).out);
      assert.equal(c2.log_records, 2);
      assert.equal(statSync(join(at('log.coll'), 'log')).size, 0, 'the log is emptied');
      assert.equal(ok(runner, ['search', 'log.coll', ...SEARCH], cwd()).out, expected);
      const d = await Collection.open({ store: await fileStore(at('log.coll')) });
      assert.equal(d.size, N - 1);
      assert.equal(d.cid, c2.root);
      await d.close();
    });
  });
}

// ------------------------------------------------------- native vs WASI

describe('native and WASI agree on collections', () => {
  test('the same folders: root CIDs and block files', () => {
    for (const name of ['flat.coll', 'hnsw.coll', 'append.coll', 'imported.coll']) {
      assert.equal(rootOf(join(dirs.native, name)), rootOf(join(dirs.wasi, name)), `${name}: roots differ`);
      const files = blockFiles(join(dirs.native, name));
      assert.deepEqual(blockFiles(join(dirs.wasi, name)), files, `${name}: block files differ`);
      for (const f of files)
        assert.ok(readFileSync(join(dirs.native, name, 'blocks', f)).equals(readFileSync(join(dirs.wasi, name, 'blocks', f))));
    }
    // (Compaction reads the clock, but only --recent-ms makes it matter.)
    assert.equal(rootOf(join(dirs.native, 'compact.coll')), rootOf(join(dirs.wasi, 'compact.coll')));
    assert.equal(rootOf(join(dirs.native, 'fresh.coll')), rootOf(join(dirs.wasi, 'fresh.coll')));
  });

  test('the same CAR bytes and --json output', () => {
    assert.ok(readFileSync(join(dirs.native, 'compact.car')).equals(readFileSync(join(dirs.wasi, 'compact.car'))));
    for (const args of [
      ['search', 'hnsw.coll', ...SEARCH],
      ['search', 'hnsw.coll', ...SEARCH, '--filter', '{"n":{"$lt":300}}'],
      ['info', 'hnsw.coll', 'compact.coll', '--json'],
      ['verify', 'hnsw.coll', '--json'],
    ]) {
      const a = ok('native', args, dirs.native).stdout;
      const w = ok('wasi', args, dirs.wasi).stdout;
      assert.ok(a.equals(w), `shoal ${args.join(' ')}:\nnative ${a}\nwasi   ${w}`);
    }
  });
});
