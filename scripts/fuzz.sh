#!/usr/bin/env bash
# Builds the libFuzzer targets of native/fuzz (clang, -fsanitize=fuzzer,address,undefined)
# and runs each for a bounded time on its committed seed corpus (native/fuzz/corpus/<name>).
#   scripts/fuzz.sh [seconds per target, default 20] [target name]
# New inputs go to build/fuzz/corpus/<name> (not committed); a crash leaves
# build/fuzz/crash-<name>-* and fails the run. Reproduce: build/fuzz/<name> <crash file>.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
only=${2:-}
cxx=${FUZZ_CXX:-$(command -v clang++ || command -v clang++-14 || true)}
if [ -z "$cxx" ]; then
  echo "fuzz: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi
out=build/fuzz
mkdir -p "$out"
defines=()
if [ "$(uname -s)" = "Linux" ]; then defines+=(-DMUXNET_HAVE_EPOLL); fi
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -fno-omit-frame-pointer -pthread -Wall -Wno-unused-parameter "${defines[@]}")

targets=()
for src in native/fuzz/*_fuzzer.cc; do
  name=$(basename "${src%.cc}")
  if [ -n "$only" ] && [ "$name" != "$only" ]; then continue; fi
  targets+=("$name")
done

# The core is compiled once, with coverage, and linked into every target.
core_objs=()
pids=()
for src in native/core/*.cc; do
  obj="$out/$(basename "${src%.cc}").o"
  core_objs+=("$obj")
  "$cxx" "${flags[@]/-fsanitize=fuzzer,/-fsanitize=fuzzer-no-link,}" -c "$src" -o "$obj" &
  pids+=($!)
  if [ "${#pids[@]}" -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for pid in "${pids[@]}"; do wait "$pid"; done
for name in "${targets[@]}"; do
  "$cxx" "${flags[@]}" "native/fuzz/$name.cc" "${core_objs[@]}" -o "$out/$name"
done

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
failed=0
for name in "${targets[@]}"; do
  seeds="native/fuzz/corpus/$name"
  work="$out/corpus/$name"
  mkdir -p "$work" "$seeds"
  echo "== $name: $seconds s"
  log="$out/$name.log"
  status=0
  # -timeout: one input running this long is a hang (a deadlock in the loop) and a finding.
  "$out/$name" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$out/crash-$name-" "$work" "$seeds" >"$log" 2>&1 || status=$?
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+ +DONE' "$log" || true
  if [ "$status" -ne 0 ]; then
    echo "$name: FAILED (exit $status), last lines of $log:" >&2
    grep -v '^#[0-9]' "$log" | tail -40 >&2
    failed=1
  fi
done
exit "$failed"
