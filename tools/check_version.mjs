// check_version.mjs VERSION -- fails unless js/package.json carries the
// library's version (defined once, in src/shoal.h; the Makefile reads it).
import { readFileSync } from 'node:fs';

const want = process.argv[2];
const pkg = JSON.parse(readFileSync(new URL('../js/package.json', import.meta.url), 'utf8'));
if (pkg.version !== want) {
  console.error(`js/package.json has version ${pkg.version}; src/shoal.h says ${want}: update one of them`);
  process.exit(1);
}
