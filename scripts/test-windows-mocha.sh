#!/usr/bin/env bash
# Runs the mocha suite in Windows Node (node.exe 20) under wine, once per backend the Windows
# addon reports (backends()), with the addon built by mingw-w64 (scripts/build-windows-addon.sh)
# and found by node-gyp-build as the package's win32-x64 prebuilt binary. The compiled tests
# (.test-build, from tsc here) are platform-neutral JavaScript. Tests of POSIX-only features
# skip themselves on win32 with the reason in their title; tests that meet a difference of wine
# (not of Windows) skip only under wine (MUXNET_UNDER_WINE=1, set here). Output goes to files
# (build/win-mocha/<backend>.log, printed afterwards): node.exe under wine refuses a piped stdout.
#   bash scripts/test-windows-mocha.sh [mocha spec files...]   (default: the whole suite)
set -euo pipefail
cd "$(dirname "$0")/.."

tools=${MUXNET_TOOLS:-$HOME/.cache/muxnet-tools}
node_exe=${MUXNET_WIN_NODE:-$tools/node-win/package/bin/node.exe}
command -v wine >/dev/null || {
  echo "test-windows-mocha: missing wine (apt-get install -y --no-install-recommends wine wine64)" >&2
  exit 2
}
bash scripts/build-windows-addon.sh >/dev/null
npx tsc -p tsconfig.json
npx tsc -p test/tsconfig.json
npx tsc -p examples/tsconfig.json  # the example tests run the compiled examples

source scripts/wine-env.sh

out=build/win-mocha
mkdir -p "$out"
# MUXNET_PREBUILD: node-gyp-build looks for prebuilds/win32-x64 in build/win-addon instead of
# the package root, whose build/Release holds the Linux addon (PREBUILDS_ONLY keeps it off that).
export MUXNET_PREBUILD="$PWD/build/win-addon" PREBUILDS_ONLY=1 MUXNET_UNDER_WINE=1
winnode() { timeout -k 5 "${MUXNET_WIN_TIMEOUT:-420}" wine "$node_exe" "$@"; }

winnode -e "require('fs').writeFileSync('$out/backends.txt', require('./dist/index.js').backends().join(' '))" \
  >"$out/backends.log" 2>&1 || { tr -d '\r' <"$out/backends.log"; exit 1; }
names=$(cat "$out/backends.txt")
[ -n "$names" ] || { echo "test-windows-mocha: backends() listed nothing" >&2; exit 1; }
echo "test-windows-mocha: backends $names ($(date -u +%T))"

specs=("$@")
[ ${#specs[@]} -gt 0 ] || specs=('.test-build/test/*.test.js')
status=0
for backend in $names; do
  log="$out/$backend.log"
  start=$SECONDS
  rc=0
  # Networking under wine is 10-40x slower than on Linux: a generous per-test time-out.
  # --exit: now and then node.exe under wine does not end after the last test (afd in a
  # fresh-clone CI of 2026-12-03: 294 passing, 0 failing, then the 420 s time-out; the run
  # before, with the same Windows code, ended at once). The Linux runs, without --exit, are
  # what fail when a handle keeps the loop alive.
  MUXNET_TEST_BACKEND=$backend winnode node_modules/mocha/bin/mocha.js --no-config --exit \
    --timeout "${MUXNET_WIN_MOCHA_TIMEOUT:-120000}" --reporter spec "${specs[@]}" >"$log" 2>&1 || rc=$?
  tr -d '\r' <"$log"
  echo "test-windows-mocha: $backend: exit $rc, $((SECONDS - start)) s ($(grep -aoE '[0-9]+ (passing|pending|failing)' "$log" | tr '\n' ' '))"
  [ "$rc" -eq 0 ] || status=1
done
exit "$status"
