// serve.mjs -- a small static file server for the demo and the browser test.
//
// Serves the repository root on 127.0.0.1 so that /demo/ can import /js/
// (and the wasm in /js/dist/) by relative URL, exactly as a site hosting the
// package would.  compileStreaming needs .wasm served as application/wasm and
// module scripts need a JavaScript MIME type, hence the table below.
//
//   node demo/serve.mjs        PORT=9000 node demo/serve.mjs
//
// Port: $PORT, else 8080; if that is taken, any free port.  Only files under
// the repository are served; paths with a dot-segment (.git, .env) are not.

import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

function send(res, status, text, headers = {}) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(text);
}

/** An http.Server (not yet listening) that serves files under root. */
export function createStaticServer(root = REPO_ROOT) {
  const base = path.resolve(root);
  const inside = (p) => p === base || p.startsWith(base + path.sep);

  return createServer(async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
    } catch {
      return send(res, 400, 'bad request\n');
    }
    if (pathname === '/') return send(res, 302, 'see /demo/\n', { location: '/demo/' });
    const segments = pathname.split('/');
    // Rejects "..", NUL and dotfiles (the repository's .git above all).
    if (pathname.includes('\0') || pathname.includes('\\') || segments.some((s) => s.startsWith('.')))
      return send(res, 404, 'not found\n');

    try {
      let file = path.resolve(base, '.' + pathname);
      // Checked after resolving symlinks too, so a link cannot lead outside.
      if (!inside(file) || !inside(await realpath(file))) return send(res, 404, 'not found\n');
      let info = await stat(file);
      if (info.isDirectory()) {
        // Relative URLs in an index.html only work under a trailing slash.
        if (!pathname.endsWith('/'))
          return send(res, 301, 'moved\n', { location: `${pathname}/` });
        file = path.join(file, 'index.html');
        info = await stat(file);
      }
      res.writeHead(200, {
        'content-type': MIME[path.extname(file)] ?? 'application/octet-stream',
        'content-length': info.size,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      });
      if (req.method === 'HEAD') return res.end();
      createReadStream(file).on('error', () => res.destroy()).pipe(res);
    } catch (err) {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return send(res, 404, 'not found\n');
      send(res, 500, 'internal error\n');
    }
  });
}

/** Starts listening on 127.0.0.1:port, or on a free port if that one is taken. */
export function listen(server, port) {
  return new Promise((resolve, reject) => {
    const onError = (err) => {
      if (err.code === 'EADDRINUSE' && port !== 0) {
        console.error(`port ${port} is in use; picking a free one`);
        port = 0;
        server.listen(0, '127.0.0.1');
      } else {
        reject(err);
      }
    };
    server.on('error', onError);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', onError);
      resolve(`http://127.0.0.1:${server.address().port}`);
    });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const port = process.env.PORT ? Number(process.env.PORT) : 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`PORT must be 0..65535, not ${process.env.PORT}`);
    process.exit(2);
  }
  const origin = await listen(createStaticServer(), port);
  console.log(`Shoal demo: ${origin}/demo/   (Ctrl-C to stop)`);
}
