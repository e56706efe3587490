#!/bin/sh
# big.sh -- issue 14's ten million vectors from a gateway (`make
# bench-remote-big`; figures in docs/BENCHMARKS.md, "Ten million vectors
# from a gateway").  Each step is skipped when its output exists, so a run
# that stopped resumes; delete $BIG_OUT to start over.
#   1. bench/remote/gen_clustered.c: BIG_N x BIG_DIM clustered vectors and
#      BIG_QUERIES held-out queries (.fvecs; 3.9 GB at the defaults).
#   2. Exact truth with the native CLI: a flat index over all of them.
#   3. The collection, built offline with the CLI: a flat buffer of all the
#      records, flushed once into one IVF-PQ segment (training included).
#   4. bench/remote/big.mjs: served by createGatewayServer on 127.0.0.1 and
#      searched lazily through the npm package (wasm) at BIG_NPROBES.
# Needs ~15 GB of memory at the defaults (the CLI holds the input and the
# buffer while it builds) and ~6 GB of disk (3.9 GB of input, 1.3 GB of collection).
set -eu
cd "$(dirname "$0")/../.."
N=${BIG_N:-10000000}
DIM=${BIG_DIM:-96}
Q=${BIG_QUERIES:-200}
CLUSTERS=${BIG_CLUSTERS:-10000}
NLIST=${BIG_NLIST:-4096}
PQ_M=${BIG_PQ_M:-96}
NPROBES=${BIG_NPROBES:-4,8,16,32}
OUT=${BIG_OUT:-bench/results/big10m}
mkdir -p "$OUT"
log() { echo "big.sh: $*" >&2; }

[ -x "$OUT/gen" ] || cc -O2 -std=c11 bench/remote/gen_clustered.c -lm -o "$OUT/gen"
if [ ! -f "$OUT/queries.fvecs" ]; then
    log "generating $N x $DIM vectors ($CLUSTERS clusters) and $Q queries"
    "$OUT/gen" "$N" "$Q" "$DIM" "$CLUSTERS" 10 "$OUT/base.fvecs.tmp" "$OUT/queries.fvecs.tmp"
    mv "$OUT/base.fvecs.tmp" "$OUT/base.fvecs"
    mv "$OUT/queries.fvecs.tmp" "$OUT/queries.fvecs"
fi
if [ ! -f "$OUT/truth.json" ]; then
    log "exact truth (native CLI, flat index)"
    build/shoal search "$OUT/base.fvecs" --query "$OUT/queries.fvecs" --kind flat -k 10 --json -q \
        > "$OUT/truth.json.tmp"
    mv "$OUT/truth.json.tmp" "$OUT/truth.json"
fi
if [ ! -f "$OUT/collection/root" ]; then
    log "building the collection (nlist $NLIST, PQ $PQ_M x 8-bit)"
    rm -rf "$OUT/collection"
    /usr/bin/time -v build/shoal build "$OUT/base.fvecs" --collection "$OUT/collection" \
        --kind flat --flush-records "$N" --flush-bytes 1000000000000 --large-from 100000 \
        --large-nlist "$NLIST" --large-nprobe 8 --large-pq-m "$PQ_M" --large-pq-bits 8 \
        --large-train-sample 64 2> "$OUT/build.log"
    grep -E "Elapsed|Maximum resident" "$OUT/build.log" >&2
fi
node bench/remote/big.mjs "$OUT/collection" "$OUT/queries.fvecs" "$OUT/truth.json" "$NPROBES"
