#!/usr/bin/env bash
# Builds the addon for win32-x64 (scripts/build-windows-addon.sh) and runs
# test/windows/addon-echo.cjs in Windows Node under wine: the package's own entry point
# (dist/index.js) loads the addon through node-gyp-build's prebuild lookup
# (prebuilds/win32-x64/muxnet.napi.uv1.node), then an echo and a refused dial over each
# Windows backend (afd, select).
# Installs nothing: it says what is missing. Needs dist/ (npm run build:ts).
#   bash scripts/test-windows-addon.sh
set -euo pipefail
cd "$(dirname "$0")/.."

tools=${MUXNET_TOOLS:-$HOME/.cache/muxnet-tools}
node_exe=${MUXNET_WIN_NODE:-$tools/node-win/package/bin/node.exe}
missing=()
command -v wine >/dev/null || missing+=("wine (apt-get install -y --no-install-recommends wine wine64)")
[ -f dist/index.js ] || missing+=("dist/index.js (npm run build:ts)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-windows-addon: missing:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 2
fi
bash scripts/build-windows-addon.sh >/dev/null
out=build/win-addon

source scripts/wine-env.sh

# node.exe's stdout must not be a pipe under wine 8 (process.stdout throws EBADF): a file.
# MUXNET_PREBUILD: node-gyp-build looks for prebuilds/ there instead of the package root, whose
# build/Release holds the Linux addon. PREBUILDS_ONLY keeps it off build/Release anyway.
log="$out/addon-echo.log"
status=0
MUXNET_PREBUILD="$out" PREBUILDS_ONLY=1 timeout -k 5 "${MUXNET_WIN_TIMEOUT:-300}" \
  wine "$node_exe" test/windows/addon-echo.cjs >"$log" 2>&1 || status=$?
tr -d '\r' <"$log"
if [ "$status" -eq 124 ]; then echo "test-windows-addon: timed out" >&2; fi
exit "$status"
