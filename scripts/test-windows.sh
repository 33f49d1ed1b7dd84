#!/usr/bin/env bash
# Builds the native core's C++ unit tests as a Windows executable with mingw-w64
# (build/native-tests-win/native-tests.exe: C++17, linked -static) and runs it under wine,
# on the backends Windows has (afd, select). Installs nothing: it says what is missing.
#   bash scripts/test-windows.sh [test-name-filter]
# The wine prefix lives in ${MUXNET_TOOLS:-~/.cache/muxnet-tools}/wine-prefix and is made on
# first use (wineboot, then winecfg -v win10; ~10 s).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/mingw.sh
missing=()
command -v "$cxx" >/dev/null || missing+=("$cxx (apt-get install -y --no-install-recommends g++-mingw-w64-x86-64-posix)")
command -v wine >/dev/null || missing+=("wine (apt-get install -y --no-install-recommends wine wine64)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-windows: missing:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 2
fi

out=build/native-tests-win
mkdir -p "$out"
sources=()
for src in native/core/*.cc native/test/*.cc native/addon/native_echo.cc; do
  case "$src" in
    native/core/poller_epoll.cc) continue ;;   # Linux's only
    native/test/kqueue_model.cc) continue ;;   # the kqueue model is built on Linux's epoll
  esac
  # Every other file compiles on Windows: the POSIX-only ones (socket_posix.cc, waker_posix.cc,
  # poller_select.cc, poller_poll.cc, transfer.cc) are empty there, as the *_win.cc files are
  # on POSIX.
  sources+=("$src")
done
flags=(-std=c++17 -O1 -g -Wall -Wextra -Wno-unused-parameter)
mingw_compile "$out" "${sources[@]}" || { echo "test-windows: compile failed" >&2; exit 1; }
# -static: no libwinpthread/libstdc++ DLLs to find next to the .exe.
"$cxx" "${flags[@]}" -static "${objs[@]}" -o "$out/native-tests.exe" -lws2_32 -liphlpapi

source scripts/wine-env.sh

# Output to a file, then printed: a pipe from wine can hang on its helper processes (and
# node.exe under wine refuses a piped stdout). Networking under wine is slow: a generous
# time-out.
log="$out/native-tests.log"
status=0
timeout -k 5 "${MUXNET_NATIVE_TIMEOUT:-600}" wine "$out/native-tests.exe" "$@" >"$log" 2>&1 || status=$?
tr -d '\r' <"$log"
if [ "$status" -eq 124 ]; then echo "native-tests.exe: timed out" >&2; fi
exit "$status"
