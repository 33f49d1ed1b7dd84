#!/usr/bin/env bash
# Builds and runs the C++ unit tests of the native core (native/core + native/test, and the
# benchmark's native echo service) with AddressSanitizer, UndefinedBehaviorSanitizer and
# LeakSanitizer. No Node, no node-gyp.
# MUXNET_NATIVE_SANITIZE=thread builds them with ThreadSanitizer instead (test-tsan.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=${MUXNET_NATIVE_SANITIZE:-address,undefined}
out=build/native-tests
if [ "$sanitize" != "address,undefined" ]; then out="build/native-tests-${sanitize//,/-}"; fi
mkdir -p "$out"

defines=()
# On Linux the kqueue backend is built against the tests' model of kqueue
# (native/test/kqueue_model.h); on macOS and the BSDs against the kernel's.
case "$(uname -s)" in
  Linux) defines+=(-DMUXNET_HAVE_EPOLL -DMUXNET_HAVE_IO_URING -DMUXNET_HAVE_KQUEUE -DMUXNET_KQUEUE_MODEL) ;;
  Darwin|*BSD) defines+=(-DMUXNET_HAVE_KQUEUE) ;;
esac

# One compile step per file, in parallel, then link.
flags=(-std=c++17 -O1 -g -fsanitize="$sanitize" -fno-omit-frame-pointer -pthread
       -Wall -Wextra -Wno-unused-parameter "${defines[@]}")
objs=()
pids=()
# native/addon/native_echo.cc: the NativeService that native/test/service_test.cc drives.
for src in native/core/*.cc native/test/*.cc native/addon/native_echo.cc; do
  obj="$out/$(echo "${src%.cc}" | tr / _).o"
  objs+=("$obj")
  g++ "${flags[@]}" -c "$src" -o "$obj" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
g++ "${flags[@]}" "${objs[@]}" -o "$out/native-tests"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# halt_on_error: the first race fails the run; exit code 66 says it was TSan.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:exitcode=66${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
# A hung test (a deadlock) fails the run instead of blocking CI.
status=0
# `VAR=value run ...` sets VAR for that run only (bash exports a function's prefix assignments).
run() { timeout -k 5 "${MUXNET_NATIVE_TIMEOUT:-60}" "$out/native-tests" "$@" || status=$?; }
again() { [ "$status" -eq 0 ] && [ "$(uname -s)" = Linux ]; }
run "$@"
# Again with io_uring's other task-run mode (COOP_TASKRUN, what a Linux 6.0 kernel gets; see
# poller_io_uring.cc): every io_uring test and every loop test's io_uring config.
if again; then
  echo "native-tests: again with MUXNET_IO_URING_TASKRUN=coop"
  MUXNET_IO_URING_TASKRUN=coop run "$@"
fi
# And the io_uring tests (those of the filter given) as on a kernel before 6.16, which cannot
# limit a multishot receive (a receive per single read; the probe finds the limit here).
if again; then
  echo "native-tests: the io_uring tests again with MUXNET_IO_URING_RECEIVE_LIMIT=0"
  MUXNET_IO_URING_RECEIVE_LIMIT=0 run "${1:-io_uring}"
fi
if [ "$status" -eq 124 ]; then echo "native-tests: timed out" >&2; fi
if [ "$status" -eq 66 ]; then echo "native-tests: ThreadSanitizer reported a problem" >&2; fi
exit "$status"
