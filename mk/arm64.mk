# mk/arm64.mk -- the aarch64 cross-build, run under qemu-user (included by
# the Makefile; every ARM64 rule lives here).
#
#   make test-arm64     cross-builds the library, the C test suite, the
#                       cross-build check and the CLI for aarch64 into
#                       build/arm64/ and runs them under qemu-aarch64:
#                       the C suite (NEON kernels against scalar for dims
#                       1..300 at odd offsets, golden segments, ...), then
#                       the same results and CIDs as the x86 build
#                       (tests/xbuild.c) and the same segments and --json
#                       output from both CLIs (tests/arm64/).
#   make arm64-insns    instructions per kernel call, counted under qemu
#                       (docs/BENCHMARKS.md, "ARM64"); not part of any test.
#
# NEON is baseline on AArch64, so no file gets extra flags: the x86 -m flags
# of the Makefile's FLAGS_<file> are dropped, the rest (the scalar
# reference's -fno-tree-vectorize, segment.c's zstd include) kept.
# -ffp-contract=off matters here more than anywhere: GCC for aarch64 fuses
# a * b + c into fmadd/fmla by default in GNU C modes, and would also turn
# the NEON kernels' vmulq_f32 + vaddq_f32 into fmla.  $(ARM64)/.no-fused
# disassembles the core and fails if any fused instruction appears.
#
# Tools: tools/deps.sh arm64 installs gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross and qemu-user (as root; otherwise it prints the
# apt-get command).  Under qemu timings mean nothing: never benchmark here.

ARM64        := $(BUILD)/arm64
ARM64_CC     ?= aarch64-linux-gnu-gcc
ARM64_AR     ?= aarch64-linux-gnu-ar
ARM64_OBJDUMP ?= aarch64-linux-gnu-objdump
ARM64_SYSROOT ?= /usr/aarch64-linux-gnu
QEMU_ARM64   ?= qemu-aarch64 -L $(ARM64_SYSROOT)
ARM64_CFLAGS := -std=c11 $(FP) $(WARN) $(CFLAGS) -Isrc -fPIC

ARM64_OBJ      := $(patsubst src/%.c,$(ARM64)/obj/%.o,$(CORE_SRC))
ARM64_ZSTD_OBJ := $(addprefix $(ARM64)/zstd/,$(addsuffix .o,$(notdir $(ZSTD_FILES))))
ARM64_LIB      := $(ARM64)/libshoal.a

.PHONY: arm64 deps-arm64 test-arm64 test-arm64-c test-arm64-xbuild test-arm64-cli arm64-insns
arm64: $(ARM64_LIB) $(ARM64)/test_shoal $(ARM64)/xbuild $(ARM64)/shoal $(ARM64)/.no-fused

deps-arm64:
	@tools/deps.sh arm64

# zstd from the same verified sources and with the same defines as every
# other build (the segments' bytes depend on the compressor).
$(ARM64)/zstd/.built: $(ZSTD_STAMP)
	@mkdir -p $(@D)
	for f in $(ZSTD_FILES); do $(ARM64_CC) -std=c11 -O2 -fPIC $(ZSTD_DEFS) -c $(ZSTD_SRC)/$$f.c \
	    -o $(@D)/$$(basename $$f).o || exit 1; done
	touch $@ && touch $(@D)/*.o
$(ARM64_ZSTD_OBJ): $(ARM64)/zstd/.built ;

$(ARM64)/obj/%.o: src/%.c $(CORE_HDR) | $(ZSTD_STAMP)
	@mkdir -p $(@D)
	$(ARM64_CC) $(ARM64_CFLAGS) $(filter-out -m%,$(FLAGS_$*)) -c $< -o $@

$(ARM64_LIB): $(ARM64_OBJ) $(ARM64)/zstd/.built
	@rm -f $@
	$(ARM64_AR) rcs $@ $(ARM64_OBJ) $(ARM64_ZSTD_OBJ)

# No multiply fused into an add anywhere in the core (see the top).
$(ARM64)/.no-fused: $(ARM64_OBJ)
	@if $(ARM64_OBJDUMP) -d $(ARM64_OBJ) | grep -E '\s(fmla|fmls|fmadd|fmsub|fnmadd|fnmsub)\s'; then \
	    echo "arm64: fused multiply-add in the core (is -ffp-contract=off missing?)" >&2; exit 1; fi
	@touch $@

$(ARM64)/test_shoal: $(TEST_SRC) $(TEST_HDR) $(ARM64_LIB)
	$(ARM64_CC) $(ARM64_CFLAGS) -Itests $(TEST_SRC) $(ARM64_LIB) -lm -o $@

$(ARM64)/xbuild: tests/xbuild.c $(ARM64_LIB)
	$(ARM64_CC) $(ARM64_CFLAGS) -Itests $< $(ARM64_LIB) -lm -o $@

$(ARM64)/shoal: $(CLI_SRC) $(CLI_HDR) $(ARM64_LIB)
	$(ARM64_CC) $(ARM64_CFLAGS) $(CLI_SRC) $(ARM64_LIB) -lm -o $@

# ------------------------------------------------------------------- tests

test-arm64: deps-arm64
	$(MAKE) arm64 $(BUILD)/xbuild $(BUILD)/shoal
	$(MAKE) test-arm64-c test-arm64-xbuild test-arm64-cli

test-arm64-c: $(ARM64)/test_shoal
	$(QEMU_ARM64) $(ARM64)/test_shoal

# tests/xbuild.c's ids, distances (%.9g: every bit) and CIDs, x86 vs aarch64.
test-arm64-xbuild: $(ARM64)/xbuild $(BUILD)/xbuild
	$(BUILD)/xbuild > $(ARM64)/xbuild-x86.txt
	$(QEMU_ARM64) $(ARM64)/xbuild > $(ARM64)/xbuild-arm64.txt
	@cmp $(ARM64)/xbuild-x86.txt $(ARM64)/xbuild-arm64.txt && \
	    echo "xbuild: x86-64 and aarch64 agree ($$(wc -l < $(ARM64)/xbuild-x86.txt) lines, $$(grep -c '^cid ' $(ARM64)/xbuild-x86.txt) CIDs)"

test-arm64-cli: $(ARM64)/shoal $(BUILD)/shoal
	SHOAL_QEMU_ARM64="$(QEMU_ARM64)" node --test tests/arm64/

# ------------------------------------------------------ instruction counts
# Scalar vs NEON under qemu-aarch64, then the same count for scalar vs AVX2
# under qemu-x86_64, whose ratio can be set beside the measured x86 times.

ARM64_INSNS_DIMS ?= 128 784

$(ARM64)/kernel_insns: bench/kernel_insns.c $(ARM64_LIB)
	$(ARM64_CC) $(ARM64_CFLAGS) $< $(ARM64_LIB) -lm -o $@

$(BUILD)/kernel_insns: bench/kernel_insns.c $(BUILD)/libshoal.a
	$(CC) $(ALL_CFLAGS) $< $(BUILD)/libshoal.a -lm -o $@

arm64-insns: $(ARM64)/kernel_insns $(BUILD)/kernel_insns
	QEMU="$(QEMU_ARM64)" bench/count_insns.sh $(ARM64)/kernel_insns $(ARM64_INSNS_DIMS)
	QEMU="qemu-x86_64 -cpu max" TABLES="scalar avx2" bench/count_insns.sh $(BUILD)/kernel_insns \
	    $(ARM64_INSNS_DIMS)
