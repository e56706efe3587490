#!/usr/bin/env node
// shoal-serve -- serves a collection folder or a CAR file as an IPFS
// trustless gateway, for development (docs/API.md, "Sources"):
//
//   npx shoal-serve docs.coll [--port 8080] [--host 127.0.0.1]
//   npx shoal-serve docs.car --port 8081
//
// Prints the URL and the collection's root (a folder's DIR/root, a CAR's
// root) and serves until interrupted.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

import { createGatewayServer } from '../src/gateway-server.mjs';

const args = process.argv.slice(2);
let target, port = 8080, host = '127.0.0.1';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--port') port = Number(args[++i]);
  else if (args[i] === '--host') host = args[++i];
  else if (args[i] === '--help' || args[i] === '-h') {
    console.log('usage: shoal-serve DIR|FILE.car [--port 8080] [--host 127.0.0.1]');
    process.exit(0);
  } else if (!target) target = args[i];
  else {
    console.error(`shoal-serve: unexpected argument ${args[i]}`);
    process.exit(1);
  }
}
if (!target || !Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: shoal-serve DIR|FILE.car [--port 8080] [--host 127.0.0.1]');
  process.exit(1);
}
let from, root;
try {
  if ((await stat(target)).isDirectory()) {
    from = { dir: target };
    root = (await readFile(path.join(target, 'root'), 'utf8').catch(() => '')).trim() || undefined;
  } else {
    from = { car: target };
  }
} catch (err) {
  console.error(`shoal-serve: ${target}: ${err.message}`);
  process.exit(2);
}
const server = await createGatewayServer(from);
server.listen(port, host, () => {
  const { port: bound } = server.address();
  console.log(`shoal-serve: http://${host}:${bound}/ipfs/{cid}${root ? `  root ${root}` : ''}`);
});
