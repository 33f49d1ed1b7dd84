#!/usr/bin/env bash
# Runs the mocha suite against the addon built with AddressSanitizer + UBSan (GCC's
# runtimes, preloaded because Node itself is not instrumented), then rebuilds the normal
# addon. Leak detection is off here: Node frees little at exit; leaks are checked apart.
set -euo pipefail
cd "$(dirname "$0")/.."
restore() { npx node-gyp rebuild >/dev/null 2>&1; }
trap restore EXIT
MUXNET_SANITIZE=address npx node-gyp rebuild >/dev/null 2>&1
# The loader (node-gyp-build) must pick this build/Release over any prebuilt binary.
unset MUXNET_ADDON PREBUILDS_ONLY
loaded="$(node -p "require('node-gyp-build').path('.')")"
if [ "$loaded" != "$PWD/build/Release/muxnet.node" ]; then
  echo "test-asan: the loader would use $loaded, not the ASan build" >&2
  exit 1
fi
preload="$(g++ -print-file-name=libasan.so):$(g++ -print-file-name=libubsan.so)"
LD_PRELOAD="$preload" \
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  npx mocha "$@"
