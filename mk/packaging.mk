# mk/packaging.mk -- the npm package as users get it (included by the
# Makefile; every packaging rule lives here).
#
#   make test-packaging        npm pack of js/, installed from the tarball into
#                              fresh projects in a temporary directory
#                              (tests/packaging/<name>/ are the templates):
#                              Node ESM, a plain <script type=module>, Vite 8
#                              (build and dev server), Vite 7 (with its one
#                              line of config), webpack 5 (target web and
#                              webworker), esbuild, workerd, Deno 2, Bun, and
#                              tsc with bundler and node16 resolution.  Each
#                              runs the same search and checks ids and
#                              distances; browsers are headless Chromium.
#                              npm installs the tools (pinned versions) from
#                              the registry: minutes the first time, then
#                              about 2-3 from npm's cache.  Not part of
#                              make test.
#   make test-packaging-short  the tarball's contents, Node ESM and the plain
#                              script module only: no tool is installed
#                              (~15 s); make test runs this one.
#
# Both need the wasm in js/dist/ and, for the browser checks, chromium and
# playwright-core (tools/deps.sh test installs them).

.PHONY: test-packaging test-packaging-short
test-packaging: wasm
	node --test tests/packaging/

test-packaging-short: wasm
	SHOAL_PACKAGING=short node --test tests/packaging/
