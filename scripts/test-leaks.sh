#!/usr/bin/env bash
# Leak check on connection churn, in two parts:
#  1. native: native/stress/churn.cc drives muxnet::Loop (mock host, real loopback TCP) in
#     every backend and mode under ASan + LeakSanitizer, and also fails if the heap grows
#     between two idle points or a descriptor stays open.
#  2. addon: scripts/leak-churn.js churns connections through the public API with the ASan
#     addon preloaded into node and LeakSanitizer on. Node is not instrumented and may leave
#     allocations of its own at exit; a leak counts when a frame of its allocation stack is
#     muxnet's (the muxnet.node module or a muxnet:: function), anything else is listed as
#     Node's and ignored. The normal addon is rebuilt afterwards.
# Counts: LEAK_COUNT (first config, default 100000) and LEAK_COUNT_OTHERS (the other
# configs; default 25000 native, 10000 addon) keep CI time sane.
set -euo pipefail
cd "$(dirname "$0")/.."

first=${LEAK_COUNT:-100000}

echo "== native churn (ASan + LSan), $first connections on the first config"
out=build/leaks
mkdir -p "$out"
defines=()
if [ "$(uname -s)" = "Linux" ]; then defines+=(-DMUXNET_HAVE_EPOLL -DMUXNET_HAVE_IO_URING); fi
g++ -std=c++17 -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -pthread \
    -Wall -Wextra -Wno-unused-parameter "${defines[@]}" \
    native/core/*.cc native/stress/churn.cc -o "$out/churn"
ASAN_OPTIONS="detect_leaks=1:halt_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  timeout -k 5 600 "$out/churn" "$first" "${LEAK_COUNT_OTHERS:-25000}"

echo "== addon churn (ASan addon in node, LSan), $first connections on the first config"
log="$(mktemp /tmp/muxnet-addon-churn.XXXXXX)"
restore() { npx node-gyp rebuild >/dev/null 2>&1; rm -f "$log"; }
trap restore EXIT
MUXNET_SANITIZE=address npx node-gyp rebuild >/dev/null 2>&1
preload="$(g++ -print-file-name=libasan.so):$(g++ -print-file-name=libubsan.so)"
status=0
LD_PRELOAD="$preload" \
ASAN_OPTIONS="detect_leaks=1:halt_on_error=1" \
LSAN_OPTIONS="malloc_context_size=30:exitcode=23" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  timeout -k 5 900 node scripts/leak-churn.js "$first" "${LEAK_COUNT_OTHERS:-10000}" >"$log" 2>&1 || status=$?
grep '^ok ' "$log" || true
# Each LSan report is a block from "Direct/Indirect leak of" to a blank line. It is muxnet's
# when, walking the allocation stack from the top (below the allocator), a muxnet frame comes
# before any frame of Node (node::, v8::, libuv, N-API, the node binary): a JS allocation
# made during a muxnet callback has muxnet frames too, but far below Node's.
attribute='
  function close_block() { if (inb) { if (mux) { o++; print_block() } else t++ } inb = 0 }
  function print_block() { if (shown++ < 5) printf "%s\n", b > "/dev/stderr" }
  /^(Direct|Indirect) leak of/ { close_block(); inb = 1; mux = 0; decided = 0; b = $0 "\n"; lines = 0; next }
  inb && /^$/ { close_block(); next }
  inb && /^ +#[0-9]+ / {
    if (lines++ < 8) b = b $0 "\n"
    if ($1 == "#0" || decided) next
    if ($0 ~ /muxnet/) { mux = 1; decided = 1 }
    else if ($0 ~ /\(\/[^ ]*\/node\+0x|\.\.\/deps\/| in (node|v8|cppgc)::| in (uv_|uv__|napi_|Builtins_)/) decided = 1
  }
  END { close_block(); print o + 0, t + 0 }'
read -r ours theirs < <(awk "$attribute" "$log")
if [ "$ours" -gt 0 ]; then
  echo "addon churn: $ours leak report(s) whose allocation is muxnet's (first ones above)" >&2
  exit 1
fi
if { [ "$status" -ne 0 ] && [ "$status" -ne 23 ]; } || ! grep -q '^leak-churn: all configs done' "$log"; then
  echo "addon churn failed (exit $status):" >&2
  grep -v '^ok ' "$log" | head -40 >&2
  exit 1
fi
echo "addon churn: no leak attributed to muxnet ($theirs report(s) of Node's own allocations ignored)"
