// webpack 5 through its Node API (webpack-cli wants Node >= 22.15 now):
// one bundle for a page (target web) and one for a web worker (target
// webworker, which also sets the "worker" export condition).  Neither needs
// any configuration for shoal: webpack follows new URL('...wasm',
// import.meta.url) and emits the .wasm as an asset.
import webpack from 'webpack';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);
const config = (target, entry, out) => ({
  mode: 'production',
  target,
  entry: path.join(here, entry),
  output: { path: path.join(here, 'public', out), filename: 'main.js', clean: true },
  performance: { hints: false },
});

const stats = await new Promise((resolve, reject) =>
  webpack([config('web', 'src/page.js', 'web'), config('webworker', 'src/worker.js', 'worker')], (err, s) =>
    (err ? reject(err) : resolve(s))));
console.log(stats.toString({ colors: false, modules: false }));
if (stats.hasErrors()) process.exit(1);
