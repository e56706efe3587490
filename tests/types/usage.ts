// usage.ts -- the package's types, checked by `tsc --noEmit` in make test:
// each use below must compile, each @ts-expect-error line must not.
import {
  AllowList, Collection, Index, ParameterError, fileStore, indexedDBStore, memoryStore, workerCollection, ShoalError, type CollectionOptions,
  type FieldInfo, type Filter, type HnswOptions, type IndexOptions, type IvfOptions, type Metadata,
  type SearchResult, type Store, type StoredRecord, heliaPublisher, heliaSource, type HeliaNode, type Source,
  kuboPublisher, kuboSource, s5Publisher, s5Source,
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

  const store: Store = memoryStore();
  const copts: CollectionOptions = {
    dim: 3, metric: 'cosine', M: 8, flushRecords: 1000, recent: '7d', store,
    large: { kind: 'ivf', quantizer: 'pq', pqBits: 4, nlist: 64 },
  };
  // @ts-expect-error  the buffer is hnsw or flat
  const badKind: CollectionOptions = { dim: 3, kind: 'ivf' };
  void badKind;
  const c = await Collection.create(copts);
  const written: number = await c.upsert([{ id: 'a', vector: [1, 0, 0], metadata: { year: 2000 }, time: new Date() }]);
  const one: SearchResult = await c.search([1, 0, 0], 5, { filter: { year: 2000 }, maxDistance: 0.5 });
  const many: SearchResult[] = await c.search([[1, 0, 0], new Float32Array(3)], 5);
  const byId: SearchResult = await c.search({ id: 'a' }, 5, { ef: 32 });
  for await (const id of c) void id;
  const cid: string | undefined = c.cid;
  const more = await Collection.open({ store: c.store, lazy: true });
  await more.close();
  const snap: Collection = c.snapshot();
  snap.free();
  await c.upsert([{ id: 'b', vector: [0, 1, 0] }], { chunk: 1000 });
  c[Symbol.dispose]();
  const files = await fileStore('./data', { lock: false });
  const tested = await fileStore('./data', { fs: await import('node:fs/promises') }); // the real module fits FileStoreFs
  void tested;
  const idb = await indexedDBStore('name');
  void files; void idb;
  const worker = { postMessage(_m: unknown) {} };
  const remote = await workerCollection(worker, { create: { dim: 3, store: { indexedDB: 'db' } } });
  await remote.search([1, 0, 0], 3, { filter: new Set(['a']) });
  // @ts-expect-error  functions cannot cross to a worker
  await remote.search([1, 0, 0], 3, { filter: (id: string) => id === 'a' });
  const workerLazy = await workerCollection(worker, { open: { source: { gateways: ['http://127.0.0.1:8080'] }, root: 'bafy' } });
  const syncedTo: string = (await remote.sync({ gateways: ['http://127.0.0.1:8080'] }, { root: 'bafy', onProgress: (p) => void p.bytes })).root;
  void workerLazy; void syncedTo;
  // @ts-expect-error  a source object cannot cross to a worker: describe it
  await remote.sync(kuboSource('http://127.0.0.1:5001'), { root: 'bafy' });
  void written; void one; void many; void byId; void cid;

  // (A real Helia 7 node is assignable to HeliaNode; its own types need lib es2024.)
  const helia: HeliaNode = { blockstore: { get: () => undefined, put: async () => {}, has: async () => false }, getCodec: () => undefined };
  const node: HeliaNode = helia;
  const source: Source = heliaSource(node, { timeout: 5000 });
  const fetched: number = heliaSource(helia).stats().fetchedBlocks;
  const lazyRemote = await Collection.open({ source, root: 'bafy...', lazy: true });
  const published = await lazyRemote.publish(heliaPublisher(helia, { pin: false }));
  const provided: boolean = published.provided;
  await lazyRemote.sync(source, { root: published.root });
  // @ts-expect-error  not a Helia node
  heliaSource({ blockstore: {} });
  void fetched; void provided;

  const kubo = await c.publish(kuboPublisher('http://127.0.0.1:5001', { key: 'docs', method: 'blocks' }));
  const ipns: string | undefined = kubo.name;
  const viaKubo = await Collection.open({ source: kuboSource('http://127.0.0.1:5001', { offline: true }), name: ipns ?? '' });
  const s5 = await viaKubo.publish(s5Publisher('http://127.0.0.1:5050', { seed: new Uint8Array(32), authToken: 't' }));
  const revision: number = s5.revision;
  await viaKubo.sync(s5Source('http://127.0.0.1:5050', { form: 'blob' }), { name: s5.name });
  // @ts-expect-error  an S5 publisher needs a seed or a key pair
  s5Publisher('http://127.0.0.1:5050', {});
  void revision;

  // Index.open: a segment read by range; rerank rows read per search.
  const byRange = await Index.open('https://example.org/docs.seg', { rows: 'external', lists: 'lazy' });
  const nearest = await byRange.searchAsync(new Float32Array(3), 10, { nprobe: 8, rerank: 50 });
  const read: number = byRange.reads.bytes + nearest.distances.length;
  await Index.open(new Blob([]), { rows: 'memory', lists: 'all' });
  await Index.open(async (offset: number, length: number) => new Uint8Array(length + offset * 0));
  // @ts-expect-error  rows is 'auto', 'external' or 'memory'
  await Index.open(new Uint8Array(0), { rows: 'disk' });
  void read;
}
void main;
