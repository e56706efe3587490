#!/bin/sh
# fetch_zstd.sh DEST -- puts the zstd 1.5.7 library sources in DEST/lib.
#
# Every Shoal build (native, Emscripten, WASI) compiles zstd from these same
# sources, so every build runs one compressor and writes byte-identical
# segments (docs/FORMAT.md, "Compression").  The sources come from the npm
# tarball zstd-napi@0.0.13 (package/deps/zstd/lib), fetched with the ordinary
# npm client, checked against the sha512 committed beside this script, and
# unpacked into an ignored build directory.  They are never committed.
set -eu
cd "$(dirname "$0")/.."
dest=${1:-build/zstd-src}
pkg=zstd-napi@0.0.13
want=$(cat tools/zstd-napi-0.0.13.sha512)
if [ -f "$dest/lib/zstd.h" ] && [ -f "$dest/.verified" ]; then touch "$dest/.verified"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "zstd: npm pack $pkg"
(cd "$tmp" && npm pack "$pkg" --silent >/dev/null 2>&1) ||
    { echo "zstd: npm pack $pkg failed (is the npm registry reachable?)" >&2; exit 1; }
tgz=$(ls "$tmp"/*.tgz)
got=$(node -e 'const c=require("crypto");process.stdout.write("sha512-"+c.createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tgz")
if [ "$got" != "$want" ]; then
    echo "zstd: checksum mismatch for $pkg" >&2
    echo "  want $want" >&2
    echo "  got  $got" >&2
    exit 1
fi
rm -rf "$dest"
mkdir -p "$dest"
tar -xzf "$tgz" -C "$tmp" package/deps/zstd/lib
mv "$tmp/package/deps/zstd/lib" "$dest/lib"
grep -q 'ZSTD_VERSION_RELEASE  *7' "$dest/lib/zstd.h" || { echo "zstd: not 1.5.7" >&2; exit 1; }
touch "$dest/.verified"
echo "zstd: 1.5.7 sources in $dest/lib (sha512 verified)"
