#!/usr/bin/env node
// shoal-publish -- publishes a collection folder (DIR/root, DIR/blocks/<cid>:
// what `shoal build --collection` and fileStore write) to a Kubo node or an
// S5 node (docs/API.md, "Sources"):
//
//   npx shoal-publish DIR --kubo http://127.0.0.1:5001 [--key NAME] [--no-pin] [--blocks]
//   npx shoal-publish DIR --s5 http://127.0.0.1:5050 --seed-file FILE
//
// Publishes the version DIR/root names with every block reachable from it
// (history included), each hashed against its CID first.  Writes in DIR/log
// that no flush has turned into a version yet are not published.
// Kubo: --key names the IPNS key (`ipfs key list`) that name/publish points
// at the root.  S5: the registry entry is the key pair's; its 32-byte seed
// comes from --seed-file (64 hex digits or 32 bytes) or SHOAL_S5_SEED (hex),
// never from the command line; an auth token from SHOAL_S5_TOKEN.
// Prints "root <cid>", "name <name>" when one was updated, and a summary.
// Exit codes: 0 published, 1 usage, 2 the folder cannot be read, 3 the node
// refused or failed.
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { dagBlocks, carOf, verified } from '../src/cid.mjs';
import { blockSource } from '../src/gateway-server.mjs';
import { kuboPublisher } from '../src/kubo.mjs';
import { s5Publisher } from '../src/s5.mjs';

const USAGE = `usage: shoal-publish DIR --kubo URL [--key NAME] [--no-pin] [--blocks] [--timeout MS]
       shoal-publish DIR --s5 URL [--seed-file FILE] [--timeout MS]   (or SHOAL_S5_SEED=hex; SHOAL_S5_TOKEN)`;

function usage(message) {
  if (message) console.error(`shoal-publish: ${message}`);
  console.error(USAGE);
  process.exit(1);
}

const args = process.argv.slice(2);
const opts = { pin: true };
let dir;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const value = () => (i + 1 < args.length ? args[++i] : usage(`${a} needs a value`));
  if (a === '--kubo') opts.kubo = value();
  else if (a === '--s5') opts.s5 = value();
  else if (a === '--key') opts.key = value();
  else if (a === '--seed-file') opts.seedFile = value();
  else if (a === '--timeout') opts.timeout = Number(value());
  else if (a === '--no-pin') opts.pin = false;
  else if (a === '--blocks') opts.blocks = true;
  else if (a === '--help' || a === '-h') {
    console.log(USAGE);
    process.exit(0);
  } else if (a.startsWith('-')) usage(`unknown option ${a}`);
  else if (!dir) dir = a;
  else usage(`unexpected argument ${a}`);
}
if (!dir) usage('a collection folder is needed');
if (!opts.kubo === !opts.s5) usage('give one of --kubo URL or --s5 URL');
if (opts.timeout !== undefined && !(opts.timeout > 0)) usage('--timeout needs a positive number of ms');
if (opts.s5 && (opts.key || opts.blocks || !opts.pin)) usage('--key, --blocks and --no-pin are Kubo options');
if (opts.kubo && opts.seedFile) usage('--seed-file is an S5 option');

let root, blocks;
try {
  root = (await readFile(path.join(dir, 'root'), 'utf8')).trim();
  const get = await blockSource({ dir });
  blocks = await dagBlocks(async (cid) => {
    const bytes = await get(cid);
    if (!bytes) throw new Error(`${path.join(dir, 'blocks', cid)} is missing`);
    return verified(cid, bytes, path.join(dir, 'blocks'));
  }, root);
} catch (err) {
  console.error(`shoal-publish: ${dir}: ${err.message}`);
  process.exit(2);
}

let publisher;
try {
  if (opts.kubo) {
    publisher = kuboPublisher(opts.kubo, { key: opts.key, pin: opts.pin, method: opts.blocks ? 'blocks' : 'car', timeout: opts.timeout });
  } else {
    let seed = process.env.SHOAL_S5_SEED;
    if (opts.seedFile) {
      const bytes = await readFile(opts.seedFile);
      seed = bytes.length === 32 ? new Uint8Array(bytes) : bytes.toString('utf8').trim();
    }
    if (!seed) usage('S5 needs a key: --seed-file FILE or SHOAL_S5_SEED');
    publisher = s5Publisher(opts.s5, { seed, authToken: process.env.SHOAL_S5_TOKEN || undefined, timeout: opts.timeout });
  }
} catch (err) {
  usage(err.message);
}

try {
  const result = await publisher.publish({ root, blocks, car: () => carOf(root, blocks) });
  console.log(`root ${result.root ?? root}`);
  if (result.name) console.log(`name ${result.name}`);
  const bytes = blocks.reduce((n, b) => n + b.bytes.length, 0);
  const extra = result.uploaded !== undefined ? `, ${result.uploaded} uploaded` : '';
  console.log(`published ${blocks.length} blocks (${bytes} bytes${extra}) to ${opts.kubo ?? opts.s5}`);
} catch (err) {
  console.error(`shoal-publish: ${err.message}`);
  process.exit(3);
}
