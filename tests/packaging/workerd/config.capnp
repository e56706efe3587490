# workerd configuration for the packaging test: two workers on 127.0.0.1.
#
#   search         worker.mjs on 'shoal/worker'            (port @SEARCH_PORT@)
#   default-entry  default-entry.mjs on the default entry  (port @DEFAULT_PORT@)
#
# Each package file is a module named after its path ("shoal/src/load.mjs"),
# so the package's relative imports resolve as they do on disk, and the two
# .wasm files are wasm modules: workerd compiles them when it loads the
# worker, which is what `import wasm from './x.wasm'` in worker.mjs gets.
# packaging.test.mjs fills in @...@ (the ports and the module lists made from
# node_modules/shoal) and runs `workerd serve config.capnp`.  wrangler does the
# same with its own bundler: there `import * as shoal from 'shoal'` is all it
# takes (the "workerd" export condition picks worker.mjs).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "search", worker = .searchWorker),
    (name = "default-entry", worker = .defaultWorker),
  ],
  sockets = [
    (name = "search", address = "127.0.0.1:@SEARCH_PORT@", http = (), service = "search"),
    (name = "default-entry", address = "127.0.0.1:@DEFAULT_PORT@", http = (), service = "default-entry"),
  ],
);

const searchWorker :Workerd.Worker = (
  modules = [
    (name = "worker.mjs", esModule = embed "worker.mjs"),
    (name = "search.mjs", esModule = embed "search.mjs"),
    (name = "index.seg", data = embed "index.seg"),
    (name = "shoal/worker", esModule = embed "node_modules/shoal/worker.mjs"),
@SHOAL_MODULES@
  ],
  compatibilityDate = "2026-11-01",
);

const defaultWorker :Workerd.Worker = (
  modules = [
    (name = "default-entry.mjs", esModule = embed "default-entry.mjs"),
@SHOAL_MODULES@
  ],
  compatibilityDate = "2026-11-01",
);
