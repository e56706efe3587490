# Shoal -- one C core, three builds (native, Emscripten, WASI).
#
#   make            native static + shared library        (build/)
#   make wasm       ES module, SIMD128 + baseline          (js/dist/)
#   make wasi       C test suite as .wasm for node:wasi    (build/wasi/)
#   make test       installs what is missing, builds everything, runs every test
#   make test-arm64 aarch64 cross-build (NEON) run under qemu-user (mk/arm64.mk)
#   make test-js-asan  JS tests on a wasm core built with -fsanitize=address,undefined (mk/wasm-asan.mk)
#   make demo       Fashion-MNIST through the CLI, two gateways and the page (one URL)
#   make bench      kernel benchmarks -> docs/BENCHMARKS.md figures (bench-hnsw, bench-ivf,
#                   bench-segment, bench-filter, bench-collection, bench-remote, bench-remote-big,
#                   bench-persist, bench-helia: one at a time)
#   make soak / test-crash / test-packaging   the slow suites (short runs in make test)
#   make docs       regenerates docs/ERRORS.md from the error list
#   make fuzz       long libFuzzer run of every parser (make test runs a short one)
#   make golden     writes tests/golden/<format>/ (only for a new format version)
#
# Flags: SANITIZE=address,undefined builds the native tests under sanitizers
# (make test does this itself into build/asan/).

CC      ?= cc
BUILD   := build
DIST    := js/dist
# The version lives in src/shoal.h (SHOAL_VERSION_*); js/package.json must
# agree (check-docs).
VERSION := $(shell awk '/define SHOAL_VERSION_(MAJOR|MINOR|PATCH) /{v=v (v==""?"":".") $$3} END{print v}' src/shoal.h)

# The core, by layer (docs/ARCHITECTURE.md): core/ shared pieces, kernels/
# one file per instruction set, index/ the handle and its kinds, filter/ the
# metadata filter language, codec/ the byte formats.
CORE_DIRS := core kernels index filter codec collection
CORE_SRC := $(foreach d,$(CORE_DIRS),$(sort $(wildcard src/$(d)/*.c)))
CORE_HDR := $(wildcard src/*.h) $(foreach d,$(CORE_DIRS),$(wildcard src/$(d)/*.h))
TEST_SRC := tests/harness.c $(wildcard tests/test_*.c)
TEST_HDR := tests/harness.h tests/golden_cases.h

WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes
CFLAGS   ?= -O2 -g
# No contraction of a*b+c into FMA anywhere: every build must round exactly
# like the scalar reference (see src/kernels_scalar.c).
FP      := -ffp-contract=off
ALL_CFLAGS := -std=c11 $(FP) $(WARN) $(CFLAGS) -Isrc -fPIC

# Per-file flags: each SIMD file gets its instruction set, everything else
# stays baseline x86-64 so one binary runs on any CPU.  The scalar reference
# is kept unvectorized: it is the specification and the benchmark baseline.
NOVEC          := -fno-tree-vectorize $(if $(findstring clang,$(shell $(CC) --version)),-fno-slp-vectorize)
FLAGS_kernels/scalar := $(NOVEC)
FLAGS_kernels/avx2   := -mavx2 -mfma
FLAGS_kernels/avx512 := -mavx512f -mavx512bw -mavx512vl -mfma

# zstd 1.5.7, compiled from the same sources by every build so that every
# build writes byte-identical segments (docs/FORMAT.md, "Compression").
# tools/fetch_zstd.sh fetches them (npm pack zstd-napi@0.0.13, sha512
# checked against tools/zstd-napi-0.0.13.sha512) into an ignored directory.
ZSTD_SRC   := $(BUILD)/zstd-src/lib
ZSTD_STAMP := $(BUILD)/zstd-src/.verified
ZSTD_FILES := common/debug common/entropy_common common/error_private common/fse_decompress \
    common/pool common/threading common/xxhash common/zstd_common compress/fse_compress \
    compress/hist compress/huf_compress compress/zstd_compress compress/zstd_compress_literals \
    compress/zstd_compress_sequences compress/zstd_compress_superblock compress/zstd_double_fast \
    compress/zstd_fast compress/zstd_lazy compress/zstd_ldm compress/zstd_opt compress/zstd_preSplit \
    compress/zstdmt_compress decompress/huf_decompress decompress/zstd_ddict \
    decompress/zstd_decompress decompress/zstd_decompress_block
ZSTD_DEFS  := -DZSTD_DISABLE_ASM -DZSTD_LEGACY_SUPPORT=0 -DZSTD_TRACE=0 -DXXH_NAMESPACE=ZSTD_ -w
zstd_objs   = $(addprefix $(BUILD)/zstd/$(1)/,$(addsuffix .o,$(notdir $(ZSTD_FILES))))
ZSTD_NATIVE_OBJ := $(call zstd_objs,native)
ZSTD_EMCC_OBJ   := $(call zstd_objs,emcc)
ZSTD_WASI_OBJ   := $(call zstd_objs,wasi)
FLAGS_codec/segment := -I$(ZSTD_SRC)

NATIVE_OBJ := $(patsubst src/%.c,$(BUILD)/native/%.o,$(CORE_SRC))
ASAN_OBJ   := $(patsubst src/%.c,$(BUILD)/asan/%.o,$(CORE_SRC))
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

.PHONY: all native wasm wasi check-docs test test-c test-asan test-wasi test-js demo bench docs deps clean
all: native
native: $(BUILD)/libshoal.a $(BUILD)/libshoal.so

# ------------------------------------------------------------------ native

$(ZSTD_STAMP): tools/fetch_zstd.sh tools/zstd-napi-0.0.13.sha512
	tools/fetch_zstd.sh $(BUILD)/zstd-src

# One recipe per target compiles every zstd file (object names are known
# statically; the sources appear only once fetched).
$(BUILD)/zstd/native/.built: $(ZSTD_STAMP)
	@mkdir -p $(@D)
	for f in $(ZSTD_FILES); do $(CC) -std=c11 -O2 -fPIC $(ZSTD_DEFS) -c $(ZSTD_SRC)/$$f.c \
	    -o $(@D)/$$(basename $$f).o || exit 1; done
	touch $@ && touch $(@D)/*.o
$(ZSTD_NATIVE_OBJ): $(BUILD)/zstd/native/.built ;

$(BUILD)/native/%.o: src/%.c $(CORE_HDR) | $(ZSTD_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(FLAGS_$*) -c $< -o $@

# The archive is one relocatable object whose only global symbols are
# shoal's (shoal_*, and the shoal__ internals the tests reach): the bundled
# zstd's symbols are local, so a program may link libshoal.a next to another
# zstd (make test-link).  The shared library exports shoal_* only.
$(BUILD)/libshoal.a: $(NATIVE_OBJ) $(ZSTD_NATIVE_OBJ)
	@rm -f $@ $(BUILD)/shoal-all.o
	ld -r -o $(BUILD)/shoal-all.o $^
	objcopy --wildcard --keep-global-symbol='shoal*' $(BUILD)/shoal-all.o
	ar rcs $@ $(BUILD)/shoal-all.o

$(BUILD)/libshoal.so: $(NATIVE_OBJ) $(ZSTD_NATIVE_OBJ) tools/libshoal.map
	$(CC) -shared -Wl,--version-script=tools/libshoal.map -o $@ $(NATIVE_OBJ) $(ZSTD_NATIVE_OBJ) -lm

# libshoal.a and Debian's libzstd in one program (tests/link/zstd_clash.c).
.PHONY: test-link
test-link: $(BUILD)/libshoal.a $(BUILD)/libshoal.so
	$(CC) $(ALL_CFLAGS) tests/link/zstd_clash.c $(BUILD)/libshoal.a -lzstd -lm -o $(BUILD)/zstd_clash
	$(BUILD)/zstd_clash
	@! nm -g --defined-only $(BUILD)/libshoal.so | grep -v ' shoal_' | grep . || \
	    { echo "libshoal.so exports symbols other than shoal_*" >&2; exit 1; }

$(BUILD)/test_shoal: $(TEST_SRC) $(TEST_HDR) $(BUILD)/libshoal.a
	$(CC) $(ALL_CFLAGS) -Itests $(TEST_SRC) $(BUILD)/libshoal.a -lm -o $@

# The ASan build keeps rows in tiny chunks (src/index/rowchunks.h), so that
# every test crosses chunk boundaries there, and gives batched HNSW inserts a
# tiny search scratch, so that their serial redo path runs (src/index/hnsw.c).
$(BUILD)/asan/%.o: src/%.c $(CORE_HDR) | $(ZSTD_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SANITIZE_FLAGS) -DSHOAL_ROW_CHUNK_BYTES=4096 -DSHOAL_HNSW_FIXED_CAND_MAX=64 \
	    $(FLAGS_$*) -c $< -o $@

$(BUILD)/asan/test_shoal: $(TEST_SRC) $(TEST_HDR) $(ASAN_OBJ) $(ZSTD_NATIVE_OBJ)
	$(CC) $(ALL_CFLAGS) $(SANITIZE_FLAGS) -Itests $(TEST_SRC) $(ASAN_OBJ) $(ZSTD_NATIVE_OBJ) -lm -o $@

$(BUILD)/xbuild: tests/xbuild.c $(BUILD)/libshoal.a
	$(CC) $(ALL_CFLAGS) -Itests $< $(BUILD)/libshoal.a -lm -o $@

# The lists in shoal.h make docs/ERRORS.md, docs/PARAMS.md, the JS error
# classes and js/dist/abi.mjs (enum words, parameter order, limits).
$(BUILD)/gen: tools/gen.c src/shoal.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $< -o $@

docs: $(BUILD)/gen
	$(BUILD)/gen md > docs/ERRORS.md
	$(BUILD)/gen params > docs/PARAMS.md

# The committed tables must match the lists they are generated from, and
# the npm package must carry the library's version.
check-docs: $(BUILD)/gen
	@$(BUILD)/gen md | diff -u docs/ERRORS.md - || \
	    { echo "docs/ERRORS.md is stale: run make docs"; exit 1; }
	@$(BUILD)/gen params | diff -u docs/PARAMS.md - || \
	    { echo "docs/PARAMS.md is stale: run make docs"; exit 1; }
	@node tools/check_version.mjs $(VERSION)

# -------------------------------------------------------------------- wasm
# Emscripten 3.1.6: ES module for web+worker; the loader (js/src/load.mjs)
# hands the compiled module in through instantiateWasm, which also makes it
# work in Node (see ../shared/TOOLCHAIN.md).

EMCC        ?= NODE_PATH=/usr/share/nodejs emcc
EMFLAGS := -O3 -std=c11 $(FP) -Isrc -I$(ZSTD_SRC) -sMODULARIZE -sEXPORT_ES6 -sENVIRONMENT=web,worker \
           -sALLOW_MEMORY_GROWTH -sMAXIMUM_MEMORY=4GB -sFILESYSTEM=0 \
           -sEXPORT_NAME=createShoalModule -sEXPORTED_FUNCTIONS=_malloc,_free \
           -sALLOW_TABLE_GROWTH -sEXPORTED_RUNTIME_METHODS=UTF8ToString,addFunction,removeFunction
WASM_SRC := $(CORE_SRC) wasm/binding.c

# Every public function is exported by SHOAL_API (shoal.h) and every
# binding entry by EMSCRIPTEN_KEEPALIVE: no export list is kept here.
wasm: $(DIST)/shoal-simd.mjs $(DIST)/shoal-base.mjs $(DIST)/errors.mjs $(DIST)/errors.d.ts \
      $(DIST)/abi.mjs $(DIST)/abi.d.ts

# zstd is compiled once without SIMD128 and linked into both variants.
$(BUILD)/zstd/emcc/.built: $(ZSTD_STAMP)
	@mkdir -p $(@D)
	for f in $(ZSTD_FILES); do $(EMCC) -std=c11 -O3 $(ZSTD_DEFS) -c $(ZSTD_SRC)/$$f.c \
	    -o $(@D)/$$(basename $$f).o || exit 1; done
	touch $@ && touch $(@D)/*.o
$(ZSTD_EMCC_OBJ): $(BUILD)/zstd/emcc/.built ;

$(DIST)/shoal-simd.mjs: $(WASM_SRC) $(CORE_HDR) $(ZSTD_EMCC_OBJ)
	@mkdir -p $(@D)
	$(EMCC) $(EMFLAGS) -msimd128 $(WASM_SRC) $(ZSTD_EMCC_OBJ) -o $@

$(DIST)/shoal-base.mjs: $(WASM_SRC) $(CORE_HDR) $(ZSTD_EMCC_OBJ)
	@mkdir -p $(@D)
	$(EMCC) $(EMFLAGS) $(WASM_SRC) $(ZSTD_EMCC_OBJ) -o $@

$(DIST)/errors.mjs: $(BUILD)/gen
	@mkdir -p $(@D)
	$(BUILD)/gen js > $@

$(DIST)/errors.d.ts: $(BUILD)/gen
	@mkdir -p $(@D)
	$(BUILD)/gen dts > $@

$(DIST)/abi.mjs: $(BUILD)/gen
	@mkdir -p $(@D)
	$(BUILD)/gen abi > $@

$(DIST)/abi.d.ts: $(BUILD)/gen
	@mkdir -p $(@D)
	$(BUILD)/gen abi-dts > $@

# -------------------------------------------------------------------- wasi
# The same C tests as WASI programs, SIMD128 and baseline, run by
# wasi/run.mjs under node:wasi.

WASI_CC    ?= clang
WASI_FLAGS := --target=wasm32-wasi --sysroot=/usr -O2 -std=c11 $(FP) -Isrc -Itests -I$(ZSTD_SRC)
WASI_TESTS := $(BUILD)/wasi/test_shoal-simd.wasm $(BUILD)/wasi/test_shoal-base.wasm

wasi: $(WASI_TESTS) $(BUILD)/wasi/xbuild.wasm

$(BUILD)/zstd/wasi/.built: $(ZSTD_STAMP)
	@mkdir -p $(@D)
	for f in $(ZSTD_FILES); do $(WASI_CC) --target=wasm32-wasi --sysroot=/usr -std=c11 -O2 \
	    $(ZSTD_DEFS) -c $(ZSTD_SRC)/$$f.c -o $(@D)/$$(basename $$f).o || exit 1; done
	touch $@ && touch $(@D)/*.o
$(ZSTD_WASI_OBJ): $(BUILD)/zstd/wasi/.built ;

$(BUILD)/wasi/test_shoal-simd.wasm: $(CORE_SRC) $(TEST_SRC) $(CORE_HDR) $(TEST_HDR) $(ZSTD_WASI_OBJ)
	@mkdir -p $(@D)
	$(WASI_CC) $(WASI_FLAGS) -msimd128 $(CORE_SRC) $(TEST_SRC) $(ZSTD_WASI_OBJ) -lm -o $@

$(BUILD)/wasi/test_shoal-base.wasm: $(CORE_SRC) $(TEST_SRC) $(CORE_HDR) $(TEST_HDR) $(ZSTD_WASI_OBJ)
	@mkdir -p $(@D)
	$(WASI_CC) $(WASI_FLAGS) $(CORE_SRC) $(TEST_SRC) $(ZSTD_WASI_OBJ) -lm -o $@

# The WASI cross-build check stops its early-stopping distances after 32
# floats and 16 codes (dim 37: they do stop), the others never do at that
# dimension: the results and bytes must not depend on where a sum stops.
XBUILD_CHECKS := -DSHOAL_L2_CHECK=32 -DSHOAL_I8_CHECK=16u
$(BUILD)/wasi/xbuild.wasm: tests/xbuild.c $(CORE_SRC) $(CORE_HDR) $(ZSTD_WASI_OBJ)
	@mkdir -p $(@D)
	$(WASI_CC) $(WASI_FLAGS) -msimd128 $(XBUILD_CHECKS) $(CORE_SRC) $< $(ZSTD_WASI_OBJ) -lm -o $@

# --------------------------------------------------------------------- cli
# The shoal command-line tool (src/cli/, docs/CLI.md): a host that does the
# file I/O and calls only src/shoal.h.  One set of sources, two builds:
# native (linked with libshoal.a) and WASI (build/shoal.wasm, SIMD128,
# threads off), run by wasi/shoal under node:wasi or by wasmtime.

.PHONY: cli test-cli
CLI_SRC := $(wildcard src/cli/*.c)
CLI_HDR := $(wildcard src/cli/*.h)

all: cli
cli: $(BUILD)/shoal $(BUILD)/shoal.wasm

$(BUILD)/shoal: $(CLI_SRC) $(CLI_HDR) $(BUILD)/libshoal.a
	$(CC) $(ALL_CFLAGS) $(CLI_SRC) $(BUILD)/libshoal.a -lm -o $@

# (Depends on zstd's stamp rather than its objects: their empty-recipe
# rule makes them look remade on every run, which would relink each time.)
$(BUILD)/shoal.wasm: $(CLI_SRC) $(CLI_HDR) $(CORE_SRC) $(CORE_HDR) $(BUILD)/zstd/wasi/.built
	@mkdir -p $(@D)
	$(WASI_CC) $(WASI_FLAGS) $(WARN) -msimd128 $(CORE_SRC) $(CLI_SRC) $(ZSTD_WASI_OBJ) -lm -o $@

# Every command natively and through wasi/shoal (tests/cli/cli.test.mjs).
test-cli: $(BUILD)/shoal $(BUILD)/shoal.wasm
	node --test tests/cli/

# libFuzzer over the CLI's readers: the JSONL line parser and the vector
# files (fvecs, bvecs, npy, ivecs).  Run with the core's targets by make
# test-fuzz / make fuzz (the fuzz section); fuzz-cli runs the JSONL one alone.
.PHONY: fuzz-cli
FUZZ_CLI_TIME ?= 60
$(BUILD)/fuzz/fuzz_jsonl: tests/cli/fuzz_jsonl.c src/cli/json.c $(CLI_HDR) src/shoal.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(ALL_CFLAGS) -D_GNU_SOURCE $(FUZZ_SAN) -fsanitize=fuzzer -Isrc/cli tests/cli/fuzz_jsonl.c \
	    src/cli/json.c -lm -o $@

$(BUILD)/fuzz/fuzz_vectors: tests/fuzz/fuzz_vectors.c src/cli/input.c src/cli/json.c src/cli/fileio.c \
    $(CLI_HDR) src/shoal.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(ALL_CFLAGS) -D_GNU_SOURCE $(FUZZ_SAN) -fsanitize=fuzzer -Isrc/cli $< \
	    src/cli/input.c src/cli/json.c src/cli/fileio.c -lm -o $@

fuzz-cli:
	$(MAKE) --no-print-directory fuzz-run-jsonl FUZZ_TIME=$(FUZZ_CLI_TIME)

# -------------------------------------------------------------------- test

deps:
	@tools/deps.sh test

test: deps
	$(MAKE) native wasm wasi cli $(BUILD)/test_shoal $(BUILD)/asan/test_shoal $(BUILD)/xbuild
	$(MAKE) check-docs test-c test-asan test-link test-wasi test-js test-types test-fuzz test-cli test-packaging-short

test-c: $(BUILD)/test_shoal
	$(BUILD)/test_shoal

test-asan: $(BUILD)/asan/test_shoal
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/asan/test_shoal

test-wasi: $(WASI_TESTS)
	node wasi/run.mjs $(BUILD)/wasi/test_shoal-simd.wasm
	node wasi/run.mjs $(BUILD)/wasi/test_shoal-base.wasm

test-js: wasm $(BUILD)/xbuild $(BUILD)/wasi/xbuild.wasm $(BUILD)/shoal
	node --test tests/js/

# The package's TypeScript types: tests/types/usage.ts must type-check,
# and each of its @ts-expect-error lines must be an error.
.PHONY: test-types
test-types: wasm
	npx tsc -p tests/types

# -------------------------------------------------------------------- fuzz
# libFuzzer, one target per parser (clang, -fsanitize=fuzzer,address,
# undefined; docs/HARDENING.md says what each checks):
#   segment   shoal_index_load / _view / info / blocks  (tests/fuzz/fuzz_segment.c)
#   manifest  shoal_collection_open, decode -> commit -> same bytes
#   log       shoal_collection_apply (write-ahead log records), replay idempotent
#   car       shoal_car_read_header / _next, then a collection fed the blocks
#   filter    shoal_filter_compile + matches, against a filtered search
#   metadata  JSON -> DAG-CBOR -> JSON -> DAG-CBOR, the validator, upsert
#   vectors   the CLI's fvecs / bvecs / npy / ivecs readers (src/cli/input.c)
#   jsonl     the CLI's JSONL record parser (tests/cli/fuzz_jsonl.c)
# Seeds: tests/fuzz/seeds-<target> (tests/fuzz/make_seeds.c writes them from real
# objects: make fuzz-seeds), plus the golden segments for segment;
# dictionaries: tests/fuzz/<target>.dict.  Each run grows its corpus in
# build/fuzz/corpus-<target>; a crash is saved as build/fuzz/<target>-crash-*
# and the end of the run's log is printed.
# make test-fuzz (part of make test) runs each target FUZZ_SHORT seconds, one
# after the other, and prints its execution count; make fuzz runs each
# FUZZ_LONG seconds; make fuzz-run-<target> FUZZ_TIME=N runs one, and
# FUZZ_RUNS=N instead stops it after N executions (make fuzz FUZZ_RUNS=10000000).

FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_OBJ     := $(patsubst src/%.c,$(BUILD)/fuzz/%.o,$(CORE_SRC))
FUZZ_TARGETS := segment manifest log car filter metadata vectors jsonl
FUZZ_SHORT   ?= 14
FUZZ_LONG    ?= 1800
FUZZ_TIME    ?= 60
FUZZ_SEEDS_segment  := tests/golden/1.0 tests/golden/1.1
FUZZ_MAXLEN_segment := 200000
FUZZ_MAXLEN_car     := 200000
FUZZ_MAXLEN_jsonl   := 4096
FUZZ_ARGS_OF = -rss_limit_mb=3072 -max_len=$(or $(FUZZ_MAXLEN_$(1)),65536) \
    $(if $(wildcard tests/fuzz/$(1).dict),-dict=tests/fuzz/$(1).dict) \
    -artifact_prefix=$(BUILD)/fuzz/$(1)-

.PHONY: fuzz test-fuzz fuzz-seeds golden
$(BUILD)/fuzz/%.o: src/%.c $(CORE_HDR) | $(ZSTD_STAMP)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(ALL_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link \
	    -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION $(FLAGS_$*) -c $< -o $@

# The core's targets (the CLI's two are in the cli section).
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJ) $(ZSTD_NATIVE_OBJ)
	$(FUZZ_CC) $(ALL_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer $< $(FUZZ_OBJ) $(ZSTD_NATIVE_OBJ) -lm -o $@

# One target for FUZZ_TIME seconds; its log in build/fuzz/<target>.log.
fuzz-run-%: $(BUILD)/fuzz/fuzz_%
	@mkdir -p $(BUILD)/fuzz/corpus-$*
	@$(BUILD)/fuzz/fuzz_$* $(call FUZZ_ARGS_OF,$*) -print_final_stats=1 \
	    $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_TIME)) \
	    $(BUILD)/fuzz/corpus-$* tests/fuzz/seeds-$* $(FUZZ_SEEDS_$*) > $(BUILD)/fuzz/$*.log 2>&1 || \
	    { echo "fuzz_$*: FAILED (build/fuzz/$*.log, artifact build/fuzz/$*-*)"; tail -n 60 $(BUILD)/fuzz/$*.log; exit 1; }
	@awk -v t=fuzz_$* -v s=$(FUZZ_TIME) '/^stat::number_of_executed_units/{n=$$2} /^stat::new_units_added/{u=$$2} \
	    /^stat::peak_rss_mb/{m=$$2} /^Done [0-9]+ runs in [0-9]+ second/{s=$$5} \
	    END{if (s < 1) s = 1; printf "%-14s %10d executions in %d s (%d/s), %d new units, peak %d MB\n", \
	    t, n, s, n/s, u, m}' $(BUILD)/fuzz/$*.log

FUZZ_BINS := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)
test-fuzz: $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do $(MAKE) --no-print-directory fuzz-run-$$t FUZZ_TIME=$(FUZZ_SHORT) || exit 1; done

fuzz: $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do $(MAKE) --no-print-directory fuzz-run-$$t FUZZ_TIME=$(FUZZ_LONG) || exit 1; done

# Rewrites tests/fuzz/seeds-* from objects the library makes (small ones).
$(BUILD)/fuzz_seeds: tests/fuzz/make_seeds.c $(BUILD)/libshoal.a
	$(CC) $(ALL_CFLAGS) $< $(BUILD)/libshoal.a -lm -o $@
fuzz-seeds: $(BUILD)/fuzz_seeds
	$(BUILD)/fuzz_seeds tests/fuzz

# The golden segments are made once per format version and kept: later
# versions must load them and give the results in each expected.txt.
$(BUILD)/make_golden: tests/golden/make_golden.c tests/golden_cases.h tests/harness.h $(BUILD)/libshoal.a
	$(CC) $(ALL_CFLAGS) -Itests $< $(BUILD)/libshoal.a -lm -o $@

SHOAL_FORMAT := $(shell awk '/define SHOAL_FORMAT_(MAJOR|MINOR) /{v=v (v==""?"":".") $$3} END{print v}' src/shoal.h)
GOLDEN_DIR := tests/golden/$(SHOAL_FORMAT)
golden: $(BUILD)/make_golden
	@mkdir -p $(GOLDEN_DIR)
	$(BUILD)/make_golden $(GOLDEN_DIR)

# -------------------------------------------------------------------- demo

# The end-to-end demo (demo/server.mjs): Fashion-MNIST made into a collection
# folder by the native CLI (an IVF-PQ and an HNSW tier; cached under
# build/demo/; DEMO_N records, default 60000), served by two loopback
# gateways (one with a tamper switch) and the page; prints one URL.  Its
# test is tests/js/demo.test.mjs (12,000 records), part of test-js.
demo:
	@tools/deps.sh demo
	$(MAKE) wasm $(BUILD)/shoal
	node demo/server.mjs

# ------------------------------------------------------------------- bench

# Kernel timing only (method in bench/kernel_timing.h); figures go to
# docs/BENCHMARKS.md.  The wasm kernels are timed as two WASI programs,
# SIMD128 and baseline, because the JS API only exposes whole-index calls.

BENCH_WASI_FLAGS := --target=wasm32-wasi --sysroot=/usr -O3 -std=c11 $(FP) -Isrc
BENCH_WASM := $(BUILD)/bench/kernels-simd.wasm $(BUILD)/bench/kernels-base.wasm

bench: $(BUILD)/bench_kernels $(BENCH_WASM)
	$(BUILD)/bench_kernels
	node bench/kernels-wasm.mjs

$(BUILD)/bench_kernels: bench/kernels.c bench/kernel_timing.h $(NATIVE_OBJ) $(ZSTD_NATIVE_OBJ)
	$(CC) $(ALL_CFLAGS) -O3 $< $(NATIVE_OBJ) $(ZSTD_NATIVE_OBJ) -lm -o $@

$(BUILD)/bench/kernels-simd.wasm: bench/kernels_wasm.c bench/kernel_timing.h $(CORE_SRC) $(CORE_HDR) $(ZSTD_WASI_OBJ)
	@mkdir -p $(@D)
	$(WASI_CC) $(BENCH_WASI_FLAGS) -I$(ZSTD_SRC) -msimd128 $(CORE_SRC) $< $(ZSTD_WASI_OBJ) -lm -o $@

$(BUILD)/bench/kernels-base.wasm: bench/kernels_wasm.c bench/kernel_timing.h $(CORE_SRC) $(CORE_HDR) $(ZSTD_WASI_OBJ)
	@mkdir -p $(@D)
	$(WASI_CC) $(BENCH_WASI_FLAGS) -I$(ZSTD_SRC) $(CORE_SRC) $< $(ZSTD_WASI_OBJ) -lm -o $@

# HNSW beside hnswlib, hnswlib-node, usearch, hnswlib-wasm and edgevec on
# Fashion-MNIST (bench/README.md).  The peers are Debian and npm packages that
# bench/setup.sh installs (npm ci in bench/), never make test.  Runner options
# go in BENCH_HNSW_ARGS, e.g. "--only shoal --merge bench/results/<peers>.json".

.PHONY: bench-hnsw
BENCH_HNSW_ARGS ?=

bench-hnsw: $(BUILD)/bench_hnsw_native wasm
	bench/setup.sh
	$(MAKE) $(BUILD)/bench_hnswlib_native $(BUILD)/bench_hnswlib_native_no_avx512
	node bench/hnsw/run.mjs $(BENCH_HNSW_ARGS)

$(BUILD)/bench_hnsw_native: bench/hnsw_native.c bench/bench_util.h $(BUILD)/libshoal.a
	$(CC) $(ALL_CFLAGS) -O3 $< $(BUILD)/libshoal.a -lm -o $@

# The anchor: hnswlib 0.8.0's headers (from the hnswlib-node package that
# bench/setup.sh installs) with hnswlib's own default flags, -O3 -march=native.
HNSWLIB_SRC := bench/node_modules/hnswlib-node/src
$(BUILD)/bench_hnswlib_native: bench/hnswlib_native.cpp $(HNSWLIB_SRC)/hnswlib/hnswalg.h
	@mkdir -p $(@D)
	$(CXX) -O3 -march=native -std=c++14 -I$(HNSWLIB_SRC) $< -pthread -o $@
# The same without AVX-512 (hnswlib then takes its AVX path): the peer of
# Shoal's AVX2 kernels on an AVX-512 machine (adapter hnswlib-native-no-avx512).
$(BUILD)/bench_hnswlib_native_no_avx512: bench/hnswlib_native.cpp $(HNSWLIB_SRC)/hnswlib/hnswalg.h
	@mkdir -p $(@D)
	$(CXX) -O3 -march=native -mno-avx512f -std=c++14 -DVARIANT_SUFFIX='"-no-avx512"' \
	    -I$(HNSWLIB_SRC) $< -pthread -o $@

# Segment save / load / view times and sizes on Fashion-MNIST (docs/BENCHMARKS.md,
# "Segments").  Needs bench/data/fashion-mnist-base.fvecs (bench/setup.sh).
.PHONY: bench-segment
bench-segment: $(BUILD)/bench_segment_native
	$(BUILD)/bench_segment_native bench/data/fashion-mnist-base.fvecs

$(BUILD)/bench_segment_native: bench/segment_native.c $(BUILD)/libshoal.a
	$(CC) $(ALL_CFLAGS) -O3 $< $(BUILD)/libshoal.a -lm -o $@

# IVF beside faiss (python3-faiss: IVFFlat, IVFScalarQuantizer, IVFPQ,
# IVFPQFastScan, IndexRefineFlat) on the same data (bench/README.md).  Runner
# options go in BENCH_IVF_ARGS, e.g. "--only shoal --merge <faiss>.json".

.PHONY: bench-ivf
BENCH_IVF_ARGS ?=

bench-ivf: $(BUILD)/bench_ivf_native
	bench/setup.sh
	node bench/ivf/run.mjs $(BENCH_IVF_ARGS)

$(BUILD)/bench_ivf_native: bench/ivf_native.c bench/bench_util.h $(BUILD)/libshoal.a
	$(CC) $(ALL_CFLAGS) -O3 $< $(BUILD)/libshoal.a -lm -o $@

# Collections (issue 10): 60k Fashion-MNIST in 10 flushes vs one HNSW index,
# compaction, incremental saves, and a 1M x 96 collection of IVF-PQ segments
# (docs/BENCHMARKS.md, "Collections").  BENCH_COLLECTION_ARGS e.g. "--big 0".
.PHONY: bench-collection
BENCH_COLLECTION_ARGS ?=
bench-collection: $(BUILD)/bench_collection_native
	bench/setup.sh
	/usr/bin/python3 bench/hnsw/prepare_data.py
	$(BUILD)/bench_collection_native $(BENCH_COLLECTION_ARGS)

$(BUILD)/bench_collection_native: bench/collection_native.c bench/bench_util.h $(BUILD)/libshoal.a
	$(CC) $(ALL_CFLAGS) -O3 $< $(BUILD)/libshoal.a -lm -o $@

# How far one index gets in wasm32's 4 GiB: flat 384-d records added in
# batches of 100k until a clean OutOfMemoryError (docs/BENCHMARKS.md, "Scale").
.PHONY: bench-scale
bench-scale: wasm
	node bench/scale/wasm-ceiling.mjs --dim 384 --batch 100000

# One million 128-d vectors in one headless Chromium tab: built in a worker on
# indexedDBStore, reloaded, reopened and searched (docs/BENCHMARKS.md, "One
# million vectors in a Chromium tab").  Options in BENCH_TAB_ARGS (--kind ivf ...).
.PHONY: bench-tab
bench-tab: wasm
	node bench/scale/tab-1m.mjs $(BENCH_TAB_ARGS)

# Remote collections (issue 12): a 1M x 96 IVF-PQ collection written by the
# collection benchmark behind a loopback gateway: bytes and time of lazy
# queries, and of a sync after 1% more records.
.PHONY: bench-remote
BIG_DIR ?= bench/results/big-collection
bench-remote: $(BUILD)/bench_collection_native wasm
	mkdir -p $(BIG_DIR)/blocks
	test -f $(BIG_DIR)/root2 || $(BUILD)/bench_collection_native --skip-fashion 1 --big-dir $(BIG_DIR)
	node bench/remote/run.mjs $(BIG_DIR)

# Ten million vectors from a gateway (issue 14): generated, given exact
# truth and built into one IVF-PQ collection offline by the CLI, then
# searched lazily through the npm package (bench/remote/big.sh; ~30 minutes
# and ~15 GB of memory at the default BIG_N; resumes where it stopped).
.PHONY: bench-remote-big
bench-remote-big: $(BUILD)/shoal wasm
	bench/remote/big.sh

# Helia (issue 12): publish and fetch throughput of a collection over IPFS
# bitswap between two Helia 7 nodes on 127.0.0.1 (light builders, no public
# network).  SHOAL_HELIA_MB megabytes of blocks (default 64), fetched
# SHOAL_HELIA_ROUNDS times (default 3).  Needs the root devDependencies.
.PHONY: bench-helia
bench-helia: wasm
	tools/deps.sh test
	node bench/helia/run.mjs

# Persistence (issue 11): open a persisted 60k x 784 collection (files,
# Chromium IndexedDB) and durable upserts/s per store and batch size.
.PHONY: bench-persist
bench-persist: wasm
	bench/setup.sh
	/usr/bin/python3 bench/hnsw/prepare_data.py
	node bench/persist/run.mjs

# Crash soak: SHOAL_CRASH_RUNS child processes killed with SIGKILL at random
# points of upsert/delete/flush/compact cycles (make test runs 6).
.PHONY: test-crash
SHOAL_CRASH_RUNS ?= 100
test-crash: wasm
	SHOAL_CRASH_RUNS=$(SHOAL_CRASH_RUNS) node --test --test-name-pattern=SIGKILL tests/js/stores.test.mjs

# Differential soak (tests/test_soak.c): seeded random upsert / delete /
# flush / compact / commit / reopen / search sequences on collections of
# every segment kind against a reference model.  make test runs one seed of
# SHOAL_SOAK_OPS=2000 per configuration (fewer for HNSW and IVF, whose
# merges rebuild); this runs SOAK_SEEDS seeds of SOAK_OPS (~110k operations
# in all, a few minutes).  A failure names its seed: replay it with
# SHOAL_SOAK_SEED_BASE=N SHOAL_SOAK_SEEDS=1.
.PHONY: soak
SOAK_SEEDS ?= 6
SOAK_OPS ?= 5000
soak: $(BUILD)/test_shoal
	SHOAL_SOAK_SEEDS=$(SOAK_SEEDS) SHOAL_SOAK_OPS=$(SOAK_OPS) $(BUILD)/test_shoal soak


# Filtered search (issue 9): recall@10 against exact filtered truth and QPS of
# the in-traversal filter, a post-filter baseline, a precomputed bitmap and
# (JS) the per-search predicate, for HNSW and IVF on Fashion-MNIST with
# category/price metadata (bench/README.md, "Filters").  Runner options go in
# BENCH_FILTER_ARGS, e.g. "--queries 200 --runs 1" for a smoke run.

.PHONY: bench-filter
BENCH_FILTER_ARGS ?=

bench-filter: $(BUILD)/bench_filter_native wasm
	bench/setup.sh
	node bench/filter/run.mjs $(BENCH_FILTER_ARGS)

$(BUILD)/bench_filter_native: bench/filter_native.c bench/bench_util.h $(BUILD)/libshoal.a
	$(CC) $(ALL_CFLAGS) -O3 $< $(BUILD)/libshoal.a -lm -o $@

clean:
	rm -rf $(BUILD) $(DIST)

include mk/arm64.mk
include mk/wasm-asan.mk
include mk/packaging.mk
