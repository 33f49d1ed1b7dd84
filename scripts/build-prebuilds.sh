#!/usr/bin/env bash
# Builds the prebuilt addons that `npm pack` ships: prebuilds/<platform>-<arch>/muxnet.napi.uv1[.<libc>].node,
# linux-x64 (glibc) with node-gyp here, then linux-x64 (musl), linux-arm64, darwin-x64 and
# darwin-arm64 with zig (scripts/build-cross.sh), and win32-x64 with mingw-w64
# (scripts/build-windows-addon.sh: muxnet.napi.uv1.node, which needs only node.exe and Windows'
# DLLs). MUXNET_CROSS=0 skips all of those, for a quick local pack.
# One Node-API binary serves every supported Node version (NAPI_VERSION is pinned in
# binding.gyp); it also calls libuv directly, so it is tagged uv1 and node-gyp-build loads it
# only where process.versions.uv is 1.x. The libc tag keeps a glibc build off musl (Alpine).
set -euo pipefail
cd "$(dirname "$0")/.."

# Build against the headers of the running Node (node-gyp would otherwise download the
# headers of prebuildify's default target, the newest Node it knows of).
export npm_config_nodedir="${npm_config_nodedir:-$(npm config get nodedir)}"
if [ "$npm_config_nodedir" = "undefined" ] || [ "$npm_config_nodedir" = "null" ]; then unset npm_config_nodedir; fi

rm -rf prebuilds
npx prebuildify --napi --name muxnet.napi --strip --tag-uv --tag-libc --target "$(node -p process.versions.node)"
if [ "${MUXNET_CROSS:-1}" != 0 ]; then
  bash scripts/build-cross.sh
  bash scripts/build-windows-addon.sh >/dev/null
  mkdir -p prebuilds/win32-x64
  cp build/win-addon/prebuilds/win32-x64/muxnet.napi.uv1.node prebuilds/win32-x64/
fi
find prebuilds -type f -name '*.node' -print
