// Every export path resolves to declarations, and to the same ones: each
// namespace must be assignable to every other.  tsc -p tsconfig.bundler.json
// and -p tsconfig.node16.json both check this file.
import * as main from 'shoal';
import * as node from 'shoal/node';
import * as browser from 'shoal/browser';
import * as worker from 'shoal/worker';
import { Collection, Index, initWasm, UnsupportedError } from 'shoal';

type Main = typeof main;
const all: Main[] = [main, node, browser, worker];
const back: [typeof node, typeof browser, typeof worker] = [main, main, main];

export async function use(): Promise<string[]> {
  initWasm({});
  const index = await Index.create({ dim: 3, metric: 'l2' });
  index.add(['a'], new Float32Array(3));
  const { ids, distances } = index.search(new Float32Array(3), 1);
  const docs = await Collection.create({ dim: 3, metric: 'l2' });
  await docs.upsert([{ id: 'a', vector: [0, 0, 0] }]);
  const found = await docs.search([0, 0, 0], 1);
  const err: Error = new UnsupportedError('x', -7);
  return [...ids, ...found.ids, String(distances[0]), err.message, String(all.length + back.length)];
}
