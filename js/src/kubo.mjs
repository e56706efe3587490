// kubo.mjs -- a Kubo node (go IPFS) over its HTTP RPC API, as a publisher
// and as a source.  docs.ipfs.tech/reference/kubo/rpc: every command is a
// POST to /api/v0/<command>?arg=...; answers are JSON (one object, or one per
// line for streaming commands); a failed command answers HTTP 500 with
// {"Message", "Code", "Type": "error"}.
//
// Publishing (kuboPublisher):
//   dag/import   the collection's CAR in one multipart request (the default),
//                stats=true: Kubo's block count must equal ours; or
//   block/put    each block (method: 'blocks'), cid-codec raw / dag-cbor,
//                mhtype sha2-256, mhlen 32 -- the CID Kubo computes must be
//                the one Shoal named the block by, or the publish fails;
//   pin/add      of the root, recursive (pin: false skips it): Kubo then
//                keeps the blocks through its garbage collection, and its
//                answer must name the root;
//   name/publish arg=/ipfs/<root>, key=<IPNS key name> when a key is given
//                (options.key or publish({ name })): the IPNS name, which
//                kuboSource().resolve and Collection.open({ name }) follow.
// Kubo is trusted with nothing a reader relies on: readers hash every block
// against its CID whichever node served it.
//
// Reading (kuboSource): block/get (hashed against the CID here), dag/export
// (a CAR, each block hashed), name/resolve.  IPNS records are signed and
// sequence-numbered and Kubo checks both; Collection.sync also refuses a
// version that does not descend from the one it has.
//
// Only web APIs (fetch, FormData, Blob): the same code runs in Node,
// browsers and workers -- though a browser page needs the node's API to
// allow its origin (API.HTTPHeaders), and exposing a Kubo RPC port beyond
// 127.0.0.1 gives away control of the node.

import { CorruptDataError, ParameterError, StateError } from '../dist/errors.mjs';
import { fail } from './fail.mjs';
import { DAG_CBOR, carBlocks, carOf, cidBytes, codecOf, verified } from './cid.mjs';

function apiBase(url) {
  if (typeof url !== 'string' && !(url instanceof URL)) throw fail(ParameterError, 'a Kubo RPC API URL is needed, e.g. http://127.0.0.1:5001');
  return String(url).replace(/\/+$/, '').replace(/\/api\/v0$/, '');
}

// One RPC call: POST base/api/v0/command?params (a multipart body when
// given), the response as bytes, or an error carrying Kubo's Message.
function rpcClient(base, { timeout, headers = {}, fetch: doFetch = globalThis.fetch }) {
  return async function rpc(command, params = {}, { body, signal, max = 2 ** 30 } = {}) {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined) query.append(k, String(v));
    const url = `${base}/api/v0/${command}?${query}`;
    const timer = AbortSignal.timeout(timeout);
    const both = signal ? AbortSignal.any([signal, timer]) : timer;
    let res, bytes;
    try {
      res = await doFetch(url, { method: 'POST', body, headers, signal: both });
      bytes = new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (timer.aborted) throw fail(StateError, `Kubo ${base}: ${command}: no answer after ${timeout} ms`);
      throw fail(StateError, `Kubo ${base}: ${command}: ${err?.message ?? err}`);
    }
    if (bytes.length > max) throw fail(CorruptDataError, `Kubo ${base}: ${command}: ${bytes.length} bytes, over the ${max}-byte cap`);
    if (!res.ok) {
      const text = new TextDecoder().decode(bytes);
      let message = text.trim().slice(0, 500) || res.statusText;
      try {
        const json = JSON.parse(text);
        if (typeof json?.Message === 'string') message = json.Message;
      } catch { /* not JSON: a proxy's page, or Kubo's plain 404/405 text */ }
      const err = fail(StateError, `Kubo ${base}: ${command}: HTTP ${res.status}: ${message}`);
      err.status = res.status;
      err.kuboMessage = message;
      throw err;
    }
    return bytes;
  };
}

// A JSON answer: one object, or (streaming commands) one per line.
function jsonLines(bytes, what) {
  const out = [];
  for (const line of new TextDecoder().decode(bytes).split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      throw fail(CorruptDataError, `${what}: not JSON: ${line.slice(0, 200)}`);
    }
  }
  return out;
}

function fileForm(bytes, filename) {
  const form = new FormData();
  form.append('file', new Blob([bytes], { type: 'application/octet-stream' }), filename);
  return form;
}

/**
 * Publishes collections to a Kubo node through its RPC API (see the top of
 * the file).  options: timeout (ms per RPC call, default 120000: a real
 * node's name/publish waits for the DHT), pin (default true), key (the IPNS
 * key name for name/publish: 'self' or one made with `ipfs key gen`; none:
 * no IPNS), method ('car': one dag/import, the default; 'blocks': block/put
 * each, a few at a time -- no CAR in memory), concurrency (block/put calls
 * at once, default 4), lifetime (IPNS record lifetime, e.g. '48h'),
 * headers (e.g. Authorization for an API behind API.Authorizations).
 * publish({ root, blocks, car, name }) -> { root, name?, value?, blocks,
 * bytes, pinned }.
 */
export function kuboPublisher(apiUrl, options = {}) {
  const base = apiBase(apiUrl);
  const { timeout = 120_000, pin = true, key, method = 'car', concurrency = 4, lifetime, headers, fetch } = options;
  if (method !== 'car' && method !== 'blocks') throw fail(ParameterError, `kuboPublisher method must be 'car' or 'blocks', not ${method}`);
  const rpc = rpcClient(base, { timeout, headers, fetch });
  const who = `Kubo ${base}`;

  async function putBlock({ cid, bytes }) {
    const codec = codecOf(cid) === DAG_CBOR ? 'dag-cbor' : 'raw';
    const answer = jsonLines(await rpc('block/put', { 'cid-codec': codec, mhtype: 'sha2-256', mhlen: 32, pin: false },
      { body: fileForm(bytes, cid) }), `${who}: block/put`);
    const got = answer[0]?.Key;
    if (got !== cid)
      throw fail(CorruptDataError, `${who}: block/put of ${cid} answered the CID ${String(got).slice(0, 80)}`);
    if (answer[0]?.Size !== undefined && Number(answer[0].Size) !== bytes.length)
      throw fail(CorruptDataError, `${who}: block/put of ${cid} (${bytes.length} bytes) answered the size ${answer[0].Size}`);
  }

  return {
    name: who,
    async publish({ root, blocks, car, name }) {
      cidBytes(root);
      if (!Array.isArray(blocks)) throw fail(ParameterError, 'kuboPublisher.publish needs blocks: [{ cid, bytes }]');
      const ipnsKey = name ?? key;
      if (ipnsKey !== undefined && (typeof ipnsKey !== 'string' || !ipnsKey))
        throw fail(ParameterError, `kuboPublisher: the IPNS key must be a key name, not ${ipnsKey}`);
      let bytes = 0;
      for (const block of blocks) {
        await verified(block.cid, block.bytes, 'kuboPublisher'); // a damaged store must not publish under a right name
        bytes += block.bytes.length;
      }
      if (!blocks.some((b) => b.cid === root)) throw fail(ParameterError, `kuboPublisher: the root ${root} is not among the blocks`);
      if (method === 'car') {
        const carBytes = typeof car === 'function' ? await car() : carOf(root, blocks);
        const lines = jsonLines(await rpc('dag/import', { 'pin-roots': false, stats: true }, { body: fileForm(carBytes, `${root}.car`) }),
          `${who}: dag/import`);
        for (const line of lines) {
          const rootCid = line?.Root?.Cid?.['/'];
          if (rootCid !== undefined && rootCid !== root)
            throw fail(CorruptDataError, `${who}: dag/import of ${root} answered the root ${String(rootCid).slice(0, 80)}`);
        }
        const stats = lines.find((l) => l?.Stats)?.Stats;
        if (stats && Number(stats.BlockCount) !== blocks.length)
          throw fail(CorruptDataError, `${who}: dag/import took ${stats.BlockCount} blocks of ${blocks.length}`);
      } else {
        for (let i = 0; i < blocks.length; i += concurrency) await Promise.all(blocks.slice(i, i + concurrency).map(putBlock));
      }
      let pinned = false;
      if (pin) {
        const answer = jsonLines(await rpc('pin/add', { arg: root, recursive: true }), `${who}: pin/add`);
        const pins = answer.flatMap((a) => a?.Pins ?? []);
        if (!pins.includes(root)) throw fail(CorruptDataError, `${who}: pin/add of ${root} answered the pins ${JSON.stringify(pins).slice(0, 200)}`);
        pinned = true;
      }
      const result = { root, blocks: blocks.length, bytes, pinned };
      if (ipnsKey !== undefined) {
        const value = `/ipfs/${root}`;
        const [answer] = jsonLines(await rpc('name/publish', { arg: value, key: ipnsKey, lifetime, 'allow-offline': true }),
          `${who}: name/publish`);
        if (answer?.Value !== value || typeof answer?.Name !== 'string' || !answer.Name)
          throw fail(CorruptDataError, `${who}: name/publish of ${value} answered ${JSON.stringify(answer).slice(0, 200)}`);
        result.name = answer.Name;
        result.value = value;
      }
      return result;
    },
  };
}

// Kubo's words for a block it does not have (offline, or not in the store).
const NOT_FOUND = /not found|could not find|no such block|block was not found/i;

/**
 * A Kubo node as a source: block/get (each block hashed against its CID
 * here), dag/export for a whole DAG (getDag: one CAR, each block hashed),
 * name/resolve for IPNS names.  options: timeout (ms per call, default
 * 30000), offline (true: only what the node holds -- an online node asked
 * for a block it lacks searches the network until the timeout), maxBlock
 * (default 1 MiB + 4 KiB), maxCar (default 1 GiB), headers.
 */
export function kuboSource(apiUrl, options = {}) {
  const base = apiBase(apiUrl);
  const { timeout = 30_000, offline, maxBlock = (1 << 20) + 4096, maxCar = 2 ** 30, headers, fetch } = options;
  const rpc = rpcClient(base, { timeout, headers, fetch });
  const who = `Kubo ${base}`;
  let fetched = 0, blocks = 0;
  const missing = (err) => err instanceof StateError && err.status === 500 && NOT_FOUND.test(err.kuboMessage ?? '');
  return {
    name: who,
    async get(cid, { signal } = {}) {
      cidBytes(cid);
      let bytes;
      try {
        bytes = await rpc('block/get', { arg: cid, offline }, { signal, max: maxBlock });
      } catch (err) {
        if (missing(err)) return undefined;
        throw err;
      }
      await verified(cid, bytes, who);
      fetched += bytes.length;
      blocks++;
      return bytes;
    },
    async getDag(root, { signal } = {}) {
      cidBytes(root);
      let car;
      try {
        car = await rpc('dag/export', { arg: root, offline }, { signal, max: maxCar });
      } catch (err) {
        if (missing(err)) return undefined;
        throw err;
      }
      fetched += car.length;
      return carBlocks(car, who);
    },
    async resolve(name) {
      if (typeof name !== 'string' || !name) throw fail(ParameterError, `kuboSource.resolve needs an IPNS name, not ${name}`);
      const [answer] = jsonLines(await rpc('name/resolve', { arg: name, recursive: true, offline }), `${who}: name/resolve`);
      const path = answer?.Path;
      const m = typeof path === 'string' ? /^\/ipfs\/([^/]+)$/.exec(path) : null;
      if (!m) throw fail(CorruptDataError, `${who}: ${name} resolves to ${String(path).slice(0, 200)}, not /ipfs/<a Shoal root>`);
      try {
        cidBytes(m[1]);
      } catch {
        throw fail(CorruptDataError, `${who}: ${name} resolves to ${m[1].slice(0, 80)}, which is not a Shoal root (CIDv1, sha2-256, base32)`);
      }
      return m[1];
    },
    stats() {
      return { name: who, fetchedBytes: fetched, fetchedBlocks: blocks };
    },
  };
}
