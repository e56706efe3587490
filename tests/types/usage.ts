// usage.ts -- the package's types, checked by `tsc --noEmit` in make test:
// each use below must compile, each @ts-expect-error line must not.
import {
  AllowList, Index, ParameterError, ShoalError, type FieldInfo, type Filter, type HnswOptions,
  type IndexOptions, type IvfOptions, type Metadata, type SearchResult, type StoredRecord,
} from 'shoal';

async function main(): Promise<void> {
  const hnsw: HnswOptions = { dim: 3, kind: 'hnsw', M: 16, efConstruction: 200, quantizer: 'sq8' };
  const ivf: IvfOptions = { dim: 3, kind: 'ivf', nlist: 8, quantizer: 'pq', pqBits: 4, rerank: 20 };
  const options: IndexOptions[] = [{ dim: 3 }, hnsw, ivf, { dim: 3, metric: 'cosine', seed: 42n }];
  // @ts-expect-error  M is an HNSW option
  const wrong: IndexOptions = { dim: 3, kind: 'flat', M: 16 };
  // @ts-expect-error  pq is an IVF quantizer
  const wrong2: HnswOptions = { dim: 3, kind: 'hnsw', quantizer: 'pq' };
  void options; void wrong; void wrong2;

  const index = await Index.create(hnsw);
  const ids: readonly string[] = ['a', 'b'];
  const metadata: ReadonlyArray<Metadata | null> = [{ year: 1999, tags: ['x'] }, null];
  index.add(ids, new Float32Array(6), { metadata, times: [Date.now(), new Date()] });
  const filter: Filter = { year: { $gte: 1990 }, tags: { $in: ['x', 'y'] }, $or: [{ a: 1 }, { 'b.c': null }] };
  const result: SearchResult = index.search([1, 0, 0], 2, { ef: 64, filter });
  const first: Metadata | null = result.metadata[0];
  const list: AllowList = index.allowList((id, meta) => id === 'a' || meta?.year === 1999);
  index.search([1, 0, 0], 1, { filter: list });
  index.search([1, 0, 0], 1, { filter: new Set(['a']) });
  index.search([1, 0, 0], 1, { filter: (id: string) => id.startsWith('a') });
  // @ts-expect-error  nprobe applies to IVF search tuning only at run time, but the type accepts it; a string does not
  index.search([1, 0, 0], 1, { ef: 'many' });
  const record: StoredRecord | undefined = index.get('a');
  const fields: FieldInfo[] = index.fields();
  const stats = index.stats();
  const n: number = stats.metadataBytes + stats.withMetadata + stats.memoryBytes;
  try {
    index.search([1, 0], 1);
  } catch (err) {
    if (err instanceof ParameterError && err instanceof ShoalError) console.log(err.code);
  }
  void first; void record; void fields; void n;
  index.free();
}
void main;
