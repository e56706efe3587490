// crash-child.mjs -- the process tests/js/stores.test.mjs kills with SIGKILL:
// cycles of upserts, deletes, flushes and compactions on a file store,
// announcing each write before it starts and again once it is acknowledged
// (its promise resolved):
//   "try up <id> <seed> ..." / "try del <id>"   about to write
//   "ok"                                         the last try is acknowledged
// (in an upsert the last of equal ids wins), so the parent knows what must
// survive whatever moment the kill lands on: every acknowledged write, and
// the one in flight either whole or not at all.
import { Collection, fileStore } from '../../js/node.mjs';
import { TestRng } from './data.mjs';

export const DIM = 8;
/** The vector a record written with seed holds (the parent recomputes it). */
export function vectorOf(seed) {
  return new TestRng(seed).fill(new Float32Array(DIM));
}

if (process.argv[1] && process.argv[1].endsWith('crash-child.mjs')) {
  const [dir, seedText, cyclesText] = process.argv.slice(2);
  const rng = new TestRng(Number(seedText));
  const store = await fileStore(dir);
  const c = (await store.getRoot())
    ? await Collection.open({ store })
    : await Collection.create({ dim: DIM, store, flushRecords: 150, mergeFactor: 3, M: 8, efConstruction: 32 });
  const out = (line) => process.stdout.write(`${line}\n`);
  out('ready');
  for (let cycle = 0; cycle < Number(cyclesText); cycle++) {
    const n = 1 + rng.below(40);
    const batch = [];
    for (let i = 0; i < n; i++) {
      const seed = Number(rng.next() & 0xffffffn);
      batch.push({ id: `r${rng.below(500)}`, seed });
    }
    out(`try up ${batch.map((b) => `${b.id} ${b.seed}`).join(' ')}`);
    await c.upsert(batch.map((b) => ({ id: b.id, vector: vectorOf(b.seed), metadata: { seed: b.seed } })));
    out('ok');
    const r = rng.below(10);
    if (r < 2) {
      const id = `r${rng.below(500)}`;
      out(`try del ${id}`);
      await c.delete([id]);
      out('ok');
    } else if (r < 3) {
      await c.flush();
      out('flushed');
    } else if (r < 4) {
      await c.compact();
      out('compacted');
    }
  }
  await c.close();
  out('done');
}
