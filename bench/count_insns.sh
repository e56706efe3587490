#!/bin/sh
# count_insns.sh KERNEL_INSNS DIM... -- instructions per kernel call, counted
# under qemu-user (make arm64-insns; docs/BENCHMARKS.md, "ARM64").
# QEMU is the qemu command (default: qemu-aarch64 for build/arm64/);
# TABLES the two tables to compare (default "scalar neon"; the ratio is
# first / second).  The same script counts an x86 build with
# QEMU="qemu-x86_64 -cpu max" TABLES="scalar avx2".
#
# qemu translates guest code into translation blocks (TBs: straight-line
# runs ending in a branch) and, with -d in_asm,exec,nochain, logs each TB's
# instructions when it is translated and a line for every execution of a TB
# (nochain: every one, not only those entered from outside a chain).  A TB
# always runs to its end, so the instructions executed inside a function are
# the sum over its TB executions of each TB's length.  qemu names the
# function a TB starts in; we count the TBs of the kernel's own function
# (l2sq_f32_neon, ...: called through the table, never inlined), so the
# caller's loop and the call are not counted, the prologue, tail and fold
# are.  The driver (bench/kernel_insns.c) calls the kernel exactly once.
# This is a count of instructions, not of cycles: the expected speedup it
# gives must be confirmed on real hardware.
set -eu
exe=$1
shift
qemu=${QEMU:-qemu-aarch64 -L /usr/aarch64-linux-gnu}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

count() { # table kernel dim -> instructions inside <kernel>_<table>
    # shellcheck disable=SC2086
    $qemu -d in_asm,exec,nochain -D "$log" "$exe" "$1" "$2" "$3" >/dev/null
    awk -v fn="$2_$1" '
        # IN: <symbol>, then "0x<pc>:  <hex>  <insn>" lines, then a blank line.
        /^IN:/ { pc = ""; n = 0; inblock = 1; next }
        inblock && /^0x[0-9a-f]+:/ {
            if (pc == "") { pc = substr($1, 3, length($1) - 3); sub(/^0+/, "", pc) }
            n++; next
        }
        inblock && /^$/ { if (pc != "") len[pc] = n; inblock = 0; next }
        /^Trace / {
            # Trace <cpu>: <host> [<cs_base>/<pc>/<flags>/<cflags>] <symbol>
            split($4, f, "/"); p = f[2]; sub(/^0+/, "", p)
            if ($5 == fn || index($5, fn ".") == 1) { if (!(p in len)) { bad = 1 } total += len[p] }
        }
        END { if (bad) { print "count_insns: a TB executed before it was logged" > "/dev/stderr"; exit 1 }
              print total + 0 }' "$log"
}

# shellcheck disable=SC2086
set -- ${TABLES:-scalar neon} "$@"
ref=$1 simd=$2
shift 2
printf '%-9s %5s %8s %8s %8s\n' kernel dim "$ref" "$simd" ratio
for kernel in l2sq_f32 dot_f32 dot_i8 l2sq_i8; do
    for dim in "$@"; do
        s=$(count "$ref" "$kernel" "$dim")
        v=$(count "$simd" "$kernel" "$dim")
        printf '%-9s %5s %8s %8s %8s\n' "$kernel" "$dim" "$s" "$v" \
            "$(awk -v s="$s" -v v="$v" 'BEGIN { printf "%.1fx", s / v }')"
    done
done
