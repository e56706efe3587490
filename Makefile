# Shoal -- one C core, three builds (native, Emscripten, WASI).
#
#   make            native static + shared library        (build/)
#   make wasm       ES module, SIMD128 + baseline          (js/dist/)
#   make wasi       C test suite as .wasm for node:wasi    (build/wasi/)
#   make test       installs what is missing, builds everything, runs every test
#   make demo       builds the wasm and serves demo/ on 127.0.0.1
#   make bench      kernel benchmarks -> docs/BENCHMARKS.md figures
#   make docs       regenerates docs/ERRORS.md from the error list
#
# Flags: SANITIZE=address,undefined builds the native tests under sanitizers
# (make test does this itself into build/asan/).

CC      ?= cc
BUILD   := build
DIST    := js/dist
VERSION := $(shell cat VERSION)

CORE_SRC := src/util.c src/index.c src/flat.c src/hnsw.c src/kmeans.c src/ivf.c src/kernels.c src/kernels_scalar.c \
            src/kernels_avx2.c src/kernels_avx512.c src/kernels_wasm128.c
CORE_HDR := $(wildcard src/*.h)
TEST_SRC := tests/harness.c $(wildcard tests/test_*.c)
TEST_HDR := tests/harness.h

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
FLAGS_kernels_scalar := $(NOVEC)
FLAGS_kernels_avx2   := -mavx2 -mfma
FLAGS_kernels_avx512 := -mavx512f -mavx512bw -mavx512vl -mfma

NATIVE_OBJ := $(patsubst src/%.c,$(BUILD)/native/%.o,$(CORE_SRC))
ASAN_OBJ   := $(patsubst src/%.c,$(BUILD)/asan/%.o,$(CORE_SRC))
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

.PHONY: all native wasm wasi test test-c test-asan test-wasi test-js demo bench docs deps clean
all: native
native: $(BUILD)/libshoal.a $(BUILD)/libshoal.so

# ------------------------------------------------------------------ native

$(BUILD)/native/%.o: src/%.c $(CORE_HDR)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(FLAGS_$*) -c $< -o $@

$(BUILD)/libshoal.a: $(NATIVE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libshoal.so: $(NATIVE_OBJ)
	$(CC) -shared -o $@ $^ -lm

$(BUILD)/test_shoal: $(TEST_SRC) $(TEST_HDR) $(BUILD)/libshoal.a
	$(CC) $(ALL_CFLAGS) -Itests $(TEST_SRC) $(BUILD)/libshoal.a -lm -o $@

$(BUILD)/asan/%.o: src/%.c $(CORE_HDR)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SANITIZE_FLAGS) $(FLAGS_$*) -c $< -o $@

$(BUILD)/asan/test_shoal: $(TEST_SRC) $(TEST_HDR) $(ASAN_OBJ)
	$(CC) $(ALL_CFLAGS) $(SANITIZE_FLAGS) -Itests $(TEST_SRC) $(ASAN_OBJ) -lm -o $@

$(BUILD)/xbuild: tests/xbuild.c $(BUILD)/libshoal.a
	$(CC) $(ALL_CFLAGS) -Itests $< $(BUILD)/libshoal.a -lm -o $@

# One error list makes docs/ERRORS.md and the JS error classes.
$(BUILD)/gen_errors: tools/gen_errors.c src/shoal.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $< -o $@

docs: $(BUILD)/gen_errors
	$(BUILD)/gen_errors md > docs/ERRORS.md

# -------------------------------------------------------------------- wasm
# Emscripten 3.1.6: ES module for web+worker; the loader (js/src/load.mjs)
# hands the compiled module in through instantiateWasm, which also makes it
# work in Node (see ../shared/TOOLCHAIN.md).

EMCC        ?= NODE_PATH=/usr/share/nodejs emcc
WASM_EXPORTS := malloc free shoal_version shoal_strerror shoal_error_name shoal_simd_name \
    shoal_index_free shoal_index_errmsg shoal_index_dim shoal_index_size \
    shoal_index_memory_bytes shoal_index_simd_name shoal_index_add shoal_index_delete \
    shoal_index_get shoal_index_label_id shoal_index_label_bound shoal_index_check \
    shoal_index_on_progress shoal_index_stats shoal_js_index_new shoal_js_search \
    shoal_index_train shoal_index_trained
comma := ,
empty :=
space := $(empty) $(empty)
WASM_EXPORT_LIST := $(subst $(space),$(comma),$(strip $(addprefix _,$(WASM_EXPORTS))))
EMFLAGS := -O3 -std=c11 $(FP) -Isrc -sMODULARIZE -sEXPORT_ES6 -sENVIRONMENT=web,worker \
           -sALLOW_MEMORY_GROWTH -sMAXIMUM_MEMORY=4GB -sFILESYSTEM=0 \
           -sEXPORT_NAME=createShoalModule -sEXPORTED_FUNCTIONS=$(WASM_EXPORT_LIST) \
           -sALLOW_TABLE_GROWTH -sEXPORTED_RUNTIME_METHODS=UTF8ToString,addFunction,removeFunction
WASM_SRC := $(CORE_SRC) wasm/binding.c

wasm: $(DIST)/shoal-simd.mjs $(DIST)/shoal-base.mjs $(DIST)/errors.mjs $(DIST)/errors.d.ts

$(DIST)/shoal-simd.mjs: $(WASM_SRC) $(CORE_HDR)
	@mkdir -p $(@D)
	$(EMCC) $(EMFLAGS) -msimd128 $(WASM_SRC) -o $@

$(DIST)/shoal-base.mjs: $(WASM_SRC) $(CORE_HDR)
	@mkdir -p $(@D)
	$(EMCC) $(EMFLAGS) $(WASM_SRC) -o $@

$(DIST)/errors.mjs: $(BUILD)/gen_errors
	@mkdir -p $(@D)
	$(BUILD)/gen_errors js > $@

$(DIST)/errors.d.ts: $(BUILD)/gen_errors
	@mkdir -p $(@D)
	$(BUILD)/gen_errors dts > $@

# -------------------------------------------------------------------- wasi
# The same C tests as WASI programs, SIMD128 and baseline, run by
# wasi/run.mjs under node:wasi.

WASI_CC    ?= clang
WASI_FLAGS := --target=wasm32-wasi --sysroot=/usr -O2 -std=c11 $(FP) -Isrc -Itests
WASI_TESTS := $(BUILD)/wasi/test_shoal-simd.wasm $(BUILD)/wasi/test_shoal-base.wasm

wasi: $(WASI_TESTS) $(BUILD)/wasi/xbuild.wasm

$(BUILD)/wasi/test_shoal-simd.wasm: $(CORE_SRC) $(TEST_SRC) $(CORE_HDR) $(TEST_HDR)
	@mkdir -p $(@D)
	$(WASI_CC) $(WASI_FLAGS) -msimd128 $(CORE_SRC) $(TEST_SRC) -lm -o $@

$(BUILD)/wasi/test_shoal-base.wasm: $(CORE_SRC) $(TEST_SRC) $(CORE_HDR) $(TEST_HDR)
	@mkdir -p $(@D)
	$(WASI_CC) $(WASI_FLAGS) $(CORE_SRC) $(TEST_SRC) -lm -o $@

$(BUILD)/wasi/xbuild.wasm: tests/xbuild.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(@D)
	$(WASI_CC) $(WASI_FLAGS) -msimd128 $(CORE_SRC) $< -lm -o $@

# -------------------------------------------------------------------- test

deps:
	@tools/deps.sh test

test: deps
	$(MAKE) native wasm wasi $(BUILD)/test_shoal $(BUILD)/asan/test_shoal $(BUILD)/xbuild
	$(MAKE) test-c test-asan test-wasi test-js

test-c: $(BUILD)/test_shoal
	$(BUILD)/test_shoal

test-asan: $(BUILD)/asan/test_shoal
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/asan/test_shoal

test-wasi: $(WASI_TESTS)
	node wasi/run.mjs $(BUILD)/wasi/test_shoal-simd.wasm
	node wasi/run.mjs $(BUILD)/wasi/test_shoal-base.wasm

test-js: wasm $(BUILD)/xbuild $(BUILD)/wasi/xbuild.wasm
	node --test tests/js/

# -------------------------------------------------------------------- demo

demo:
	@tools/deps.sh demo
	$(MAKE) wasm
	node demo/serve.mjs

# ------------------------------------------------------------------- bench

# Kernel timing only (method in bench/kernel_timing.h); figures go to
# docs/BENCHMARKS.md.  The wasm kernels are timed as two WASI programs,
# SIMD128 and baseline, because the JS API only exposes whole-index calls.

BENCH_WASI_FLAGS := --target=wasm32-wasi --sysroot=/usr -O3 -std=c11 $(FP) -Isrc
BENCH_WASM := $(BUILD)/bench/kernels-simd.wasm $(BUILD)/bench/kernels-base.wasm

bench: $(BUILD)/bench_kernels $(BENCH_WASM)
	$(BUILD)/bench_kernels
	node bench/kernels-wasm.mjs

$(BUILD)/bench_kernels: bench/kernels.c bench/kernel_timing.h $(NATIVE_OBJ)
	$(CC) $(ALL_CFLAGS) -O3 $< $(NATIVE_OBJ) -lm -o $@

$(BUILD)/bench/kernels-simd.wasm: bench/kernels_wasm.c bench/kernel_timing.h $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(@D)
	$(WASI_CC) $(BENCH_WASI_FLAGS) -msimd128 $(CORE_SRC) $< -lm -o $@

$(BUILD)/bench/kernels-base.wasm: bench/kernels_wasm.c bench/kernel_timing.h $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(@D)
	$(WASI_CC) $(BENCH_WASI_FLAGS) $(CORE_SRC) $< -lm -o $@

# HNSW beside hnswlib, hnswlib-node, usearch, hnswlib-wasm and edgevec on
# Fashion-MNIST (bench/README.md).  The peers are Debian and npm packages that
# bench/setup.sh installs (npm ci in bench/), never make test.  Runner options
# go in BENCH_HNSW_ARGS, e.g. "--only shoal --merge bench/results/<peers>.json".

.PHONY: bench-hnsw
BENCH_HNSW_ARGS ?=

bench-hnsw: $(BUILD)/bench_hnsw_native wasm
	bench/setup.sh
	node bench/hnsw/run.mjs $(BENCH_HNSW_ARGS)

$(BUILD)/bench_hnsw_native: bench/hnsw_native.c $(BUILD)/libshoal.a
	$(CC) $(ALL_CFLAGS) -O3 $< $(BUILD)/libshoal.a -lm -o $@

clean:
	rm -rf $(BUILD) $(DIST)
