#!/bin/sh
# setup.sh -- installs what the side-by-side benchmarks need, and nothing that
# `make test` needs (tools/deps.sh does that).  Idempotent: run it before every
# bench run (`make bench-hnsw` does).
#
#   Debian packages: dataset-fashion-mnist (the data), python3-hnswlib,
#   python3-numpy (ground truth), python3-matplotlib (the plot),
#   libopenblas0-pthread (fast ground truth), python3-faiss (the IVF bench's
#   peer: bench/ivf/faiss_ivf.py, run with /usr/bin/python3).  As root with apt-get they are installed; otherwise the exact
#   command is printed and the script fails.
#   npm peers: `npm ci` in bench/ (its own package.json and lock).  Install
#   scripts are allowed under allowScripts in bench/package.json (npm 11.19
#   only warns about unlisted ones; later npm skips them): hnswlib-node
#   (node-gyp build from source, needs g++/make/python3 and Node's headers,
#   found through npm's nodedir=/usr here) and usearch (node-gyp-build, which
#   finds its prebuilt linux-x64 binary).
set -eu
cd "$(dirname "$0")"

missing=""
need() { dpkg -s "$1" >/dev/null 2>&1 || missing="$missing $1"; }
for pkg in dataset-fashion-mnist python3-hnswlib python3-numpy python3-matplotlib \
           libopenblas0-pthread python3-faiss g++ make; do
    need "$pkg"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "bench setup: installing$missing"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
    else
        echo "bench setup: missing packages. Run:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y$missing" >&2
        exit 1
    fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ] || [ package.json -nt node_modules ]; then
    echo "bench setup: npm ci in bench/"
    npm ci --no-audit --no-fund --loglevel=error
    touch node_modules
fi
# If an older npm or a config skipped the addon build, build it now.
if ! node -e "require('hnswlib-node')" >/dev/null 2>&1; then
    echo "bench setup: building hnswlib-node (npm rebuild)"
    npm rebuild hnswlib-node --foreground-scripts
fi
/usr/bin/python3 -c "import faiss" || {
    echo "bench setup: python3-faiss does not import; see the error above" >&2
    exit 1
}
node -e "require('hnswlib-node'); require('usearch')" || {
    echo "bench setup: a native peer does not load; see the error above" >&2
    exit 1
}
