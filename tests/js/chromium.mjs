// chromium.mjs -- headless Chromium (Debian's, through playwright-core) for
// the browser tests: a fresh profile, the repository served on 127.0.0.1.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { createStaticServer, listen } from '../../demo/serve.mjs';

const CHROMIUM = '/usr/bin/chromium';
// The flags TOOLCHAIN.md found to work here.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// Serves the repository on 127.0.0.1, opens a fresh Chromium profile and
// hands fn(page, origin, problems, context) a page; problems collects page errors,
// failed requests and HTTP errors.  Everything is closed however fn ends.
export async function withChromium(t, fn, { consoleErrors = false } = {}) {
  // A missing browser fails the test rather than skipping it, so that
  // npm test and make test-js cannot pass without the browser tests having
  // run; SHOAL_SKIP_CHROMIUM=1 skips them on purpose.
  if (!existsSync(CHROMIUM)) {
    const why = `${CHROMIUM} is missing: apt-get install -y chromium (tools/deps.sh test installs it)`;
    if (process.env.SHOAL_SKIP_CHROMIUM === '1') {
      t.skip(`${why}; skipped because SHOAL_SKIP_CHROMIUM=1`);
      return;
    }
    throw new Error(`${why}, or set SHOAL_SKIP_CHROMIUM=1 to skip the browser tests`);
  }
  const { chromium } = await import('playwright-core');
  const server = createStaticServer();
  const profile = await mkdtemp(path.join(tmpdir(), 'shoal-chromium-'));
  let context;
  try {
    const origin = await listen(server, 0);
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: ARGS,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const problems = [];
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    if (consoleErrors) page.on('console', (msg) => msg.type() === 'error' && problems.push(`console: ${msg.text()}`));
    page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()}`));
    // The browser's own favicon probe is the one 404 that is not ours.
    page.on('response', (res) => res.status() >= 400 && !res.url().endsWith('/favicon.ico') &&
      problems.push(`HTTP ${res.status()}: ${res.url()}`));
    await fn(page, origin, problems, context);
  } finally {
    await context?.close();
    await new Promise((resolve) => server.close(resolve));
    await rm(profile, { recursive: true, force: true });
  }
}

