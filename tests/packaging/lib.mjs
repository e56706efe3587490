// Helpers of the packaging test (packaging.test.mjs): pack the package once,
// make fresh projects from the templates beside this file, serve them on
// 127.0.0.1, run commands with a time limit, open pages in Chromium.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '../..');
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Runs a command; resolves { code, stdout, stderr }.  Rejects on a non-zero
 * exit unless allowFailure, and kills the process group after timeoutMs.
 */
export function run(cmd, args, { cwd, env, timeoutMs = 180_000, allowFailure = false } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, detached: true,
      stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch {} }, timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, signal, stdout, stderr };
      if ((code !== 0 && !allowFailure) || signal)
        reject(new Error(`${cmd} ${args.join(' ')} (in ${cwd}) ended with ${code ?? signal}\n${stdout}\n${stderr}`));
      else resolve(result);
    });
  });
}

/** A child process left running (dev servers, workerd); stop() kills its process group. */
export function start(cmd, args, { cwd, env } = {}) {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, detached: true,
    stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { text: '' };
  child.stdout.on('data', (d) => { out.text += d; });
  child.stderr.on('data', (d) => { out.text += d; });
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve(code ?? signal)));
  return {
    child, out, exited,
    /** Resolves with the first match of re in the output, or rejects after ms or on exit. */
    async waitFor(re, ms = 60_000) {
      const deadline = Date.now() + ms;
      let done = false;
      exited.then(() => { done = true; });
      for (;;) {
        const m = out.text.match(re);
        if (m) return m;
        if (done) throw new Error(`${cmd} exited before printing ${re}:\n${out.text}`);
        if (Date.now() > deadline) throw new Error(`${cmd} did not print ${re} within ${ms} ms:\n${out.text}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      try { process.kill(-child.pid, 'SIGTERM'); } catch {}
      const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch {} }, 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** npm pack js/ into dir; returns the tarball's path. */
export async function pack(dir) {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir, path.join(REPO, 'js')],
    { cwd: dir, timeoutMs: 60_000 });
  const [info] = JSON.parse(stdout);
  return { tarball: path.join(dir, info.filename), info };
}

/**
 * A fresh project in work/<name>: the template tests/packaging/<name>/, the
 * shared app/search.mjs, and npm install with shoal from the tarball.
 */
export async function makeProject(work, name, tarball) {
  const dir = path.join(work, name);
  await rm(dir, { recursive: true, force: true });
  await cp(path.join(HERE, name), dir, { recursive: true });
  await cp(path.join(HERE, 'app', 'search.mjs'), path.join(dir, 'search.mjs'));
  const pkgFile = path.join(dir, 'package.json');
  const pkg = JSON.parse(await readFile(pkgFile, 'utf8'));
  pkg.dependencies = { ...pkg.dependencies, shoal: `file:${tarball}` };
  await writeFile(pkgFile, JSON.stringify(pkg, null, 2) + '\n');
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, timeoutMs: 300_000 });
  return dir;
}

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.json': 'application/json', '.wasm': 'application/wasm', '.css': 'text/css', '.map': 'application/json',
};

/** A static server of root on 127.0.0.1 (.wasm as application/wasm); resolves { origin, close }. */
export async function serve(root) {
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url, 'http://x');
      if (url.pathname === '/favicon.ico') return void res.writeHead(204).end(); // the browser's own probe
      let file = path.join(root, decodeURIComponent(url.pathname));
      if (!file.startsWith(root)) throw new Error('outside');
      if ((await stat(file)).isDirectory()) file = path.join(file, 'index.html');
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return { origin, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }) };
}

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * Opens url in a fresh headless Chromium profile and waits for the page to
 * set window.shoalResult ({ ok, value } or { ok: false, error }); returns it
 * with the page's errors and failed requests in .problems.
 */
export async function inChromium(url, { timeoutMs = 60_000 } = {}) {
  const { chromium } = await import('playwright-core');
  const profile = await mkdtemp(path.join(tmpdir(), 'shoal-pk-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
    const page = context.pages()[0] ?? (await context.newPage());
    const problems = [];
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    // (A failed resource is reported by the response handler below, with its URL.)
    page.on('console', (msg) => msg.type() === 'error' && !msg.text().startsWith('Failed to load resource') &&
      problems.push(`console: ${msg.text()}`));
    page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()}`));
    page.on('response', (res) => res.status() >= 400 && !res.url().endsWith('/favicon.ico') &&
      problems.push(`HTTP ${res.status()}: ${res.url()}`));
    await page.goto(url);
    try {
      await page.waitForFunction(() => window.shoalResult !== undefined, null, { timeout: timeoutMs });
    } catch (err) {
      throw new Error(`${url}: no result within ${timeoutMs} ms\n${problems.join('\n')}`);
    }
    const result = await page.evaluate(() => window.shoalResult);
    return { ...result, problems };
  } finally {
    await context?.close();
    await rm(profile, { recursive: true, force: true });
  }
}

/** Every file under dir (relative paths), for listing what a bundler emitted. */
export async function listFiles(dir, prefix = '') {
  const out = [];
  for (const entry of await readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = path.join(prefix, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else out.push(rel);
  }
  return out;
}

export { existsSync, mkdir, mkdtemp, readFile, rm, writeFile };
