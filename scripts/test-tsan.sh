#!/usr/bin/env bash
# ThreadSanitizer on the native core: builds native/core + native/test with -fsanitize=thread
# and runs the tests that involve threads: the helper-thread backends (select, poll, epoll
# 'thread' mode, exercised by every loop_* test), the threaded shutdown test and several
# loops on several threads at once (what Node workers do). Node itself cannot be built with
# TSan here, so the addon's integration with libuv is not covered; the core is.
# Optional argument: a test-name filter (default: every loop_ test).
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/native-tsan
mkdir -p "$out"
defines=()
if [ "$(uname -s)" = "Linux" ]; then defines+=(-DMUXNET_HAVE_EPOLL); fi
flags=(-std=c++17 -O1 -g -fsanitize=thread -fno-omit-frame-pointer -pthread
       -Wall -Wextra -Wno-unused-parameter "${defines[@]}")
objs=()
pids=()
for src in native/core/*.cc native/test/*.cc; do
  obj="$out/$(echo "${src%.cc}" | tr / _).o"
  objs+=("$obj")
  g++ "${flags[@]}" -c "$src" -o "$obj" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
g++ "${flags[@]}" "${objs[@]}" -o "$out/native-tests"

# halt_on_error: the first race fails the run; second_deadlock_stack for lock-order reports.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:exitcode=66${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
status=0
timeout -k 5 300 "$out/native-tests" "${1:-loop_}" || status=$?
if [ "$status" -eq 124 ]; then echo "native-tests (tsan): timed out" >&2; fi
if [ "$status" -eq 66 ]; then echo "native-tests (tsan): ThreadSanitizer reported a problem" >&2; fi
exit "$status"
