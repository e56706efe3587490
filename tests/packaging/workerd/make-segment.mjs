// Builds index.seg offline, in Node, from the same three records the other
// projects search: the segment a worker ships and loads.
import { writeFile } from 'node:fs/promises';
import { Index } from 'shoal';
import { RECORDS } from './search.mjs';

const index = await Index.create({ dim: 3, metric: 'l2', kind: 'hnsw' });
index.add(RECORDS.map((r) => r.id), new Float32Array(RECORDS.flatMap((r) => r.vector)));
await writeFile('index.seg', index.save());
console.log(index.cid);
index.free();
