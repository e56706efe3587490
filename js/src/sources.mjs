// sources.mjs -- where collections come from over a network: the source
// interface, IPFS trustless gateways, and several sources at once.
//
// A source is any object with
//   name                                  for messages and reports
//   get(cid, { signal }) -> Uint8Array | undefined   one block, VERIFIED
//                                         against its CID (undefined: the
//                                         source does not have it)
//   getDag?(root, { signal }) -> [{ cid, bytes }]    optional: many blocks
//                                         in one response (a CAR), each
//                                         verified
//   resolve?(name) -> root CID            optional: a stable name (IPNS, an
//                                         S5 registry entry)
// Sources never return bytes they have not hashed against the CID asked
// for; the collection then checks them once more as the core takes them.

import { CorruptDataError, NotFoundError, ParameterError, StateError } from '../dist/errors.mjs';
import { fail } from './fail.mjs';
import { carBlocks, cidBytes, verified } from './cid.mjs';

const RAW_TYPE = 'application/vnd.ipld.raw';
const CAR_TYPE = 'application/vnd.ipld.car';

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });
}

// The body of response, at most max bytes (a larger body is an error, not
// a truncation).
async function body(response, max, what) {
  const length = Number(response.headers.get('content-length'));
  if (length > max) throw fail(CorruptDataError, `${what}: ${length} bytes, over the ${max}-byte cap`);
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const parts = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel();
      throw fail(CorruptDataError, `${what}: over the ${max}-byte cap`);
    }
    parts.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * One IPFS trustless gateway (any gateway, Helia's, or a static host of a
 * folder of blocks: `shoal-serve`).  options: timeout (ms per request,
 * default 10000), retries (default 2, with backoff), maxBlock (default
 * 1 MiB + a little: Shoal's blocks are at most 1 MiB), maxCar (default 1 GiB).
 */
export function gatewaySource(url, options = {}) {
  if (Array.isArray(url)) return anySource(url.map((u) => gatewaySource(u, options)), options);
  const base = String(url).replace(/\/+$/, '');
  const { timeout = 10_000, retries = 2, maxBlock = (1 << 20) + 4096, maxCar = 2 ** 30, fetch: doFetch = globalThis.fetch } = options;
  let fetched = 0;

  async function request(path, accept, max, what, signal) {
    let last;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt) await sleep(100 * 2 ** (attempt - 1), signal);
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(new Error(`timed out after ${timeout} ms`)), timeout);
      const abort = () => ctl.abort(signal.reason);
      signal?.addEventListener('abort', abort, { once: true });
      try {
        const res = await doFetch(`${base}${path}`, { headers: { Accept: accept }, signal: ctl.signal });
        if (res.status === 404 || res.status === 410) return undefined;
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const type = (res.headers.get('content-type') ?? '').split(';')[0].trim();
        if (type && type !== accept && type !== 'application/octet-stream')
          throw fail(CorruptDataError, `${what}: content type ${type}, not ${accept}`);
        const bytes = await body(res, max, what);
        fetched += bytes.length;
        return bytes;
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        last = err;
        if (err instanceof CorruptDataError) break; // a bad answer does not get better by asking again
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', abort);
      }
    }
    throw last instanceof CorruptDataError ? last : fail(StateError, `${what}: ${last?.message ?? last}`);
  }

  return {
    name: base,
    async get(cid, { signal } = {}) {
      cidBytes(cid);
      const bytes = await request(`/ipfs/${cid}?format=raw`, RAW_TYPE, maxBlock, `${base}: ${cid}`, signal);
      return bytes === undefined ? undefined : verified(cid, bytes, base);
    },
    async getDag(root, { signal } = {}) {
      cidBytes(root);
      const car = await request(`/ipfs/${root}?format=car&dag-scope=all`, CAR_TYPE, maxCar, `${base}: ${root} (CAR)`, signal);
      return car === undefined ? undefined : carBlocks(car, base);
    },
    stats() {
      return { name: base, fetchedBytes: fetched };
    },
  };
}

/**
 * Several sources as one: a block is asked of all of them at once and the
 * first valid answer wins; a source that fails, answers wrong bytes or is
 * slow is skipped (and reported through options.onError(source, error)).
 * Only when none has a block is it missing; only when every one failed is
 * it an error, naming each failure.
 */
export function anySource(sources, { onError } = {}) {
  if (!Array.isArray(sources) || sources.length === 0) throw fail(ParameterError, 'anySource needs at least one source');
  const failures = new Map(sources.map((s) => [s, 0]));
  const one = (method) => async (cid, { signal } = {}) => {
    const ctl = new AbortController();
    const abort = () => ctl.abort(signal.reason);
    signal?.addEventListener('abort', abort, { once: true });
    const errors = [];
    try {
      return await new Promise((resolve, reject) => {
        let pending = 0, found = false;
        for (const source of sources) {
          if (typeof source[method] !== 'function') continue;
          pending++;
          source[method](cid, { signal: ctl.signal }).then((value) => {
            if (found) return;
            if (value !== undefined) {
              found = true;
              resolve(value);
              ctl.abort(new Error('answered elsewhere'));
            } else if (--pending === 0) {
              // Missing everywhere that answered; if some failed, they may have had it.
              errors.length ? reject(errors) : resolve(undefined);
            }
          }, (err) => {
            if (found) return;
            failures.set(source, failures.get(source) + 1);
            errors.push(`${source.name}: ${err?.message ?? err}`);
            onError?.(source, err);
            if (--pending === 0) errors.length ? reject(errors) : resolve(undefined);
          });
        }
        if (pending === 0) resolve(undefined);
      });
    } catch (errs) {
      if (!Array.isArray(errs)) throw errs;
      throw fail(StateError, `no source could serve ${cid}: ${errs.join('; ')}`);
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  };
  return {
    name: sources.map((s) => s.name).join(', '),
    get: one('get'),
    getDag: sources.some((s) => s.getDag) ? one('getDag') : undefined,
    async resolve(name) {
      const resolvers = sources.filter((s) => typeof s.resolve === 'function');
      if (!resolvers.length) throw fail(NotFoundError, `no source resolves names (${name})`);
      return Promise.any(resolvers.map((s) => s.resolve(name)));
    },
    stats() {
      return {
        name: this.name,
        fetchedBytes: sources.reduce((n, s) => n + (s.stats?.().fetchedBytes ?? 0), 0),
        sources: sources.map((s) => ({ ...(s.stats?.() ?? { name: s.name }), failures: failures.get(s) })),
      };
    },
  };
}

/**
 * A store that reads through to a source: blocks it lacks are fetched
 * (verified by the source), kept in the local store, and counted.  Writes
 * go to the local store.  What Collection.open({ source }) runs on.
 */
export function cachingStore(local, source) {
  let fetchedBytes = 0, fetchedBlocks = 0;
  const forward = (name) => (typeof local[name] === 'function' ? (...args) => local[name](...args) : undefined);
  return {
    async get(cid) {
      const have = await local.get(cid);
      if (have) return have;
      const bytes = await source.get(cid);
      if (bytes === undefined) return undefined;
      fetchedBytes += bytes.length;
      fetchedBlocks++;
      await local.put(cid, bytes);
      return bytes;
    },
    has: (cid) => local.has(cid),
    put: (cid, bytes) => local.put(cid, bytes),
    getRoot: () => local.getRoot(),
    setRoot: (cid) => local.setRoot(cid),
    readLog: () => local.readLog(),
    appendLog: (bytes) => local.appendLog(bytes),
    truncateLog: (size) => local.truncateLog(size),
    commit: forward('commit'),
    close: forward('close'),
    writer: forward('writer'),
    watch: forward('watch'),
    announce: forward('announce'),
    fetched: () => ({ fetchedBytes, fetchedBlocks }),
    local,
    source,
  };
}
