#!/bin/sh
# deps.sh test|demo|bench|arm64 -- makes sure what that target needs is installed.
# As root on Debian/Ubuntu it installs missing packages with apt-get; otherwise
# it prints the exact command to run and fails.  Then it runs `npm ci` when
# node_modules is missing or older than package-lock.json (not for arm64,
# whose cross-build and qemu run need only node itself; mk/arm64.mk).
set -eu
cd "$(dirname "$0")/.."
what=${1:-test}

# package -> a file that proves it is installed
need() { missing="$missing $1"; }
missing=""
have() { [ -e "$1" ]; }
command -v cc >/dev/null 2>&1 || need gcc
command -v make >/dev/null 2>&1 || need make
command -v node >/dev/null 2>&1 || need nodejs
command -v npm >/dev/null 2>&1 || need npm
# The aarch64 cross-build and its qemu run (make test-arm64).
have_arm64() {
    command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need gcc-aarch64-linux-gnu
    have /usr/aarch64-linux-gnu/include/stdio.h || need libc6-dev-arm64-cross
    command -v qemu-aarch64 >/dev/null 2>&1 || need qemu-user
}
if [ "$what" = arm64 ]; then
    have_arm64
else
    command -v emcc >/dev/null 2>&1 || need emscripten
    have /usr/bin/wasm-ld || need lld
    have /usr/lib/wasm32-wasi/libc.a || need wasi-libc
    ls /usr/lib/llvm-14/lib/clang/14*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 ||
        need libclang-rt-14-dev-wasm32
    command -v clang >/dev/null 2>&1 || need clang
    # zstd is compiled from fetched sources (tools/fetch_zstd.sh), not libzstd-dev.
    # libFuzzer (make test runs the segment fuzzer briefly) comes with clang's runtime.
    ls /usr/lib/llvm-14/lib/clang/14*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
        need libclang-rt-14-dev
fi
if [ "$what" = test ]; then
    have /usr/bin/chromium || need chromium
    # make test-link: libshoal.a next to the system's zstd in one program.
    have /usr/include/zstd.h || need libzstd-dev
    # tests/cli/partial.test.mjs: holds the CLI inside a write to signal it.
    command -v strace >/dev/null 2>&1 || need strace
fi
# Fashion-MNIST: the benchmarks' data, the demo's, and the demo's test's.
if [ "$what" = bench ] || [ "$what" = demo ] || [ "$what" = test ]; then
    have /usr/share/datasets/fashion-mnist || need dataset-fashion-mnist
fi

if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "deps: installing$missing"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
    else
        echo "deps: missing packages. Run:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y$missing" >&2
        exit 1
    fi
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
    echo "deps: Node $node_major is too old; Shoal needs Node 18 or newer (20 is tested)." >&2
    exit 1
fi

[ "$what" = arm64 ] && exit 0

# (An emptied node_modules -- no .package-lock.json, which npm ci writes --
# is installed again too.)
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules ]; then
    echo "deps: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    touch node_modules
fi
