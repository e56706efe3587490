// A Cloudflare-style worker on 'shoal/worker': the .wasm files are modules
// of the worker (config.capnp lists them as wasm modules), so workerd hands
// them over precompiled and nothing is compiled from bytes at request time.
//
//   GET /search?q=0,0.5,0&k=3   searches index.seg (built offline, shipped as a
//                               data module) and returns { ids, distances }
//   GET /run                    app/search.mjs: Index and Collection
//   GET /info                   wasmInfo()
import * as shoal from 'shoal/worker';
import segment from './index.seg';
import { runSearch } from './search.mjs';

let index; // loaded on the first request, then shared by all of them

export default {
  async fetch(request) {
    const url = new URL(request.url);
    try {
      if (url.pathname === '/search') {
        index ??= await shoal.Index.load(new Uint8Array(segment));
        const q = new Float32Array((url.searchParams.get('q') ?? '').split(',').map(Number));
        const { ids, distances } = index.search(q, Number(url.searchParams.get('k') ?? 10));
        return Response.json({ ids, distances: [...distances], cid: index.cid });
      }
      if (url.pathname === '/run') return Response.json(await runSearch(shoal));
      if (url.pathname === '/info') return Response.json(await shoal.wasmInfo());
      return new Response('not found', { status: 404 });
    } catch (err) {
      return Response.json({ error: `${err.name}: ${err.message}` }, { status: 500 });
    }
  },
};
