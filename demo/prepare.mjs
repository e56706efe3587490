// prepare.mjs -- Fashion-MNIST (Debian's dataset-fashion-mnist) as the
// demo's input: JSONL records for `shoal build --collection`, and a few test
// images to query with.
//
// Records are the first n training images, id "0".."n-1", vector = the 784
// pixel values 0..255 (the ann-benchmarks fashion-mnist-784-euclidean base),
// metadata:
//   category  the class name ("Trouser", ...), what the page's filter offers
//   label     the class number 0..9
//   ink       the share of the image's maximum brightness it uses (mean
//             pixel / 255, 3 decimals): a derived number to filter on
//   px        the pixels themselves, base64 (784 bytes -> 1048 characters),
//             so that a result can be drawn -- and searched with -- from what
//             the search returns, even in lazy mode where the page never
//             holds the segment's vectors.  It costs ~1 KB per record next to
//             the 3,136-byte float32 vector; a real catalogue would keep a
//             thumbnail URL here instead.
// The first `large` records go to large.jsonl (built as the IVF-PQ tier),
// the rest to small.jsonl (appended, the HNSW tier).  queries.json holds
// test-set images, which are not in the collection.

import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';

export const SOURCE = '/usr/share/datasets/fashion-mnist';
export const CATEGORIES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker',
  'Bag', 'Ankle boot'];
export const DIM = 784;

async function idx(file, magic) {
  const raw = gunzipSync(await readFile(path.join(SOURCE, file)));
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (view.getUint32(0) !== magic) throw new Error(`${file}: not an IDX file of the expected type`);
  const count = view.getUint32(4);
  const header = magic === 0x803 ? 16 : 8;
  const per = magic === 0x803 ? view.getUint32(8) * view.getUint32(12) : 1;
  if (raw.length !== header + count * per) throw new Error(`${file}: ${raw.length} bytes, header says ${count} x ${per}`);
  return { count, per, data: raw.subarray(header) };
}

export function inkOf(pixels) {
  let sum = 0;
  for (const p of pixels) sum += p;
  return Math.round((sum / (pixels.length * 255)) * 1000) / 1000;
}

export function recordOf(id, pixels, label) {
  return {
    id,
    vector: Array.from(pixels),
    metadata: { category: CATEGORIES[label], label, ink: inkOf(pixels), px: Buffer.from(pixels).toString('base64') },
  };
}

async function writeJsonl(file, images, labels, from, to) {
  const tmp = `${file}.tmp`;
  const out = createWriteStream(tmp);
  for (let i = from; i < to; i++) {
    const line = JSON.stringify(recordOf(String(i), images.data.subarray(i * DIM, (i + 1) * DIM), labels.data[i])) + '\n';
    if (!out.write(line)) await new Promise((resolve) => out.once('drain', resolve));
  }
  await new Promise((resolve, reject) => out.end((err) => (err ? reject(err) : resolve())));
  await rename(tmp, file);
}

/** Writes dir/large.jsonl, dir/small.jsonl and dir/queries.json. */
export async function prepare({ dir, n, large, queries = 48 }) {
  await mkdir(dir, { recursive: true });
  const images = await idx('train-images-idx3-ubyte.gz', 0x803);
  const labels = await idx('train-labels-idx1-ubyte.gz', 0x801);
  if (images.per !== DIM || n > images.count) throw new Error(`the training set has ${images.count} images of ${images.per} pixels`);
  await writeJsonl(path.join(dir, 'large.jsonl'), images, labels, 0, large);
  await writeJsonl(path.join(dir, 'small.jsonl'), images, labels, large, n);
  const testImages = await idx('t10k-images-idx3-ubyte.gz', 0x803);
  const testLabels = await idx('t10k-labels-idx1-ubyte.gz', 0x801);
  // Evenly spread over the test set, so every class appears.
  const step = Math.floor(testImages.count / queries);
  const list = [];
  for (let q = 0; q < queries; q++) {
    const i = q * step;
    const px = testImages.data.subarray(i * DIM, (i + 1) * DIM);
    list.push({ test: i, category: CATEGORIES[testLabels.data[i]], label: testLabels.data[i], ink: inkOf(px),
      px: Buffer.from(px).toString('base64') });
  }
  await writeFile(path.join(dir, 'queries.json'), JSON.stringify(list));
}
