# mk/wasm-asan.mk -- the JS test suite against a sanitized wasm core
# (included by the Makefile; every rule of this build lives here).
#
#   make test-js-asan   builds both wasm modules (SIMD128 and baseline) with
#                       Emscripten's -fsanitize=address,undefined into
#                       build/wasm-asan/ (never js/dist/), checks that the
#                       sanitized module is the one the package loads (a
#                       deliberate heap overflow must be reported), then runs
#                       node --test tests/js/ with tests/js/asan-hooks.mjs,
#                       which points the package's imports of js/dist/shoal-*
#                       (glue and .wasm) at build/wasm-asan/.
#
# Same sources and EMFLAGS as $(DIST)/shoal-simd.mjs, plus:
#   -fsanitize=address,undefined -fno-sanitize-recover=all  (UB is fatal, as in
#       the native test-asan build; ASan and UBSan link together in emcc 3.1.6)
#   --profiling-funcs   keeps function names, so reports name C functions
#   asan_options.c      __asan_default_options: allocator_may_return_null=1,
#       so an allocation that cannot be met returns NULL (the library's
#       contract: SHOAL_ENOMEM / OutOfMemoryError) instead of aborting.
# Memory: EMFLAGS' -sALLOW_MEMORY_GROWTH -sMAXIMUM_MEMORY=4GB still hold; emcc
# then reserves the shadow for all 4 GB (1/8, 512 MB) below the heap, so each
# instance starts at ~600 MB of (mostly untouched) memory and can grow to
# ~3.7 GB of heap.  zstd is compiled again with the same sanitizers into
# build/wasm-asan/zstd/ so that its reads of the core's buffers are checked too.
#
# Tests that launch Chromium load js/dist/ through the browser and would run
# unsanitized: the files made only of such tests (browser, idb, demo) are left
# out unless SHOAL_JS_ASAN_SKIP_BROWSER is set empty; the one Chromium test
# each of worker.test.mjs and faults.test.mjs holds still runs (unsanitized).  ASan makes the
# core several times slower: SHOAL_JS_ASAN_TIMEOUT (ms, default 1800000) is the
# runner's timeout for each test that sets none itself (--test-timeout).  A
# run: docs/HARDENING.md, "The JS suite under ASan and UBSan".

WASM_ASAN     := $(BUILD)/wasm-asan
WASM_ASAN_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
WASM_ASAN_ZSTD_OBJ := $(addprefix $(WASM_ASAN)/zstd/,$(addsuffix .o,$(notdir $(ZSTD_FILES))))
WASM_ASAN_MODS := $(WASM_ASAN)/shoal-simd.mjs $(WASM_ASAN)/shoal-base.mjs
SHOAL_JS_ASAN_TIMEOUT ?= 1800000
# Files whose tests drive Chromium (they load js/dist/ over HTTP).
WASM_ASAN_BROWSER_TESTS := browser idb demo
SHOAL_JS_ASAN_SKIP_BROWSER ?= 1

.PHONY: wasm-asan test-js-asan test-js-asan-selfcheck
wasm-asan: $(WASM_ASAN_MODS)

$(WASM_ASAN)/zstd/.built: $(ZSTD_STAMP)
	@mkdir -p $(@D)
	for f in $(ZSTD_FILES); do $(EMCC) -std=c11 -O3 $(ZSTD_DEFS) $(WASM_ASAN_SAN) -c $(ZSTD_SRC)/$$f.c \
	    -o $(@D)/$$(basename $$f).o || exit 1; done
	touch $@ && touch $(@D)/*.o

$(WASM_ASAN)/asan_options.c: mk/wasm-asan.mk
	@mkdir -p $(@D)
	printf '%s\n' 'const char *__asan_default_options(void);' \
	    'const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }' > $@

$(WASM_ASAN)/shoal-simd.mjs: $(WASM_SRC) $(CORE_HDR) $(WASM_ASAN)/zstd/.built $(WASM_ASAN)/asan_options.c mk/wasm-asan.mk
	$(EMCC) $(EMFLAGS) $(WASM_ASAN_SAN) --profiling-funcs -msimd128 $(WASM_SRC) $(WASM_ASAN)/asan_options.c \
	    $(WASM_ASAN_ZSTD_OBJ) -o $@

$(WASM_ASAN)/shoal-base.mjs: $(WASM_SRC) $(CORE_HDR) $(WASM_ASAN)/zstd/.built $(WASM_ASAN)/asan_options.c mk/wasm-asan.mk
	$(EMCC) $(EMFLAGS) $(WASM_ASAN_SAN) --profiling-funcs $(WASM_SRC) $(WASM_ASAN)/asan_options.c \
	    $(WASM_ASAN_ZSTD_OBJ) -o $@

# The hooks are also handed to every child node process (NODE_OPTIONS), since
# some tests run the package in fresh processes and worker threads.
# ASAN_OPTIONS reaches the wasm runtime through the hooks.  quarantine_size_mb:
# ASan keeps freed memory out of reuse (256 MB by default) to catch use after
# free; index.test.mjs's "scratch memory is freed" test demands that 2,000
# rounds of scratch (~100 MB) do not grow the heap, which only holds when
# freed memory is reused.  16 MB passes it and still catches a use of
# anything freed within the last 16 MB of frees.
WASM_ASAN_OPTIONS ?= quarantine_size_mb=16
WASM_ASAN_NODE := ASAN_OPTIONS="$(WASM_ASAN_OPTIONS)" NODE_OPTIONS="--import=$(abspath tests/js/asan-hooks.mjs)" \
    node --import ./tests/js/asan-hooks.mjs

# js/dist/errors.mjs and abi.mjs are read from js/dist/ (make wasm writes
# them; nothing here does, since other runs may be using js/dist/).
test-js-asan-selfcheck: $(WASM_ASAN_MODS)
	@test -f $(DIST)/errors.mjs -a -f $(DIST)/abi.mjs || { echo "run make wasm first (js/dist/abi.mjs)"; exit 1; }
	$(WASM_ASAN_NODE) tests/js/asan-selfcheck.mjs

# The JS suite needs the same helpers as test-js (built here, not js/dist/'s
# modules: those are left to make wasm).  One test file at a time.
test-js-asan: test-js-asan-selfcheck $(BUILD)/xbuild $(BUILD)/wasi/xbuild.wasm $(BUILD)/shoal
	@mkdir -p $(WASM_ASAN)
	@start=$$(date +%s); \
	files=$$(ls tests/js/*.test.mjs); \
	if [ -n "$(SHOAL_JS_ASAN_SKIP_BROWSER)" ]; then \
	    for b in $(WASM_ASAN_BROWSER_TESTS); do files=$$(echo "$$files" | grep -v "/$$b.test.mjs"); done; fi; \
	$(WASM_ASAN_NODE) --test --test-concurrency=1 --test-timeout=$(SHOAL_JS_ASAN_TIMEOUT) $$files \
	    > $(WASM_ASAN)/test-js.log 2>&1; rc=$$?; \
	grep -E '^# (tests|pass|fail|cancelled|skipped|todo|duration_ms) ' $(WASM_ASAN)/test-js.log; \
	if grep -qE 'AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:' $(WASM_ASAN)/test-js.log; then \
	    echo "test-js-asan: sanitizer reports in $(WASM_ASAN)/test-js.log:"; \
	    grep -nE -A12 'ERROR: AddressSanitizer|runtime error:' $(WASM_ASAN)/test-js.log | head -n 200; rc=1; fi; \
	echo "test-js-asan: $$(( $$(date +%s) - start )) s, log $(WASM_ASAN)/test-js.log"; exit $$rc
