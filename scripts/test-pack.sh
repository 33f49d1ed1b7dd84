#!/usr/bin/env bash
# Installs the package as a user would: packs the tarball (prepack builds the prebuilt
# binary), installs it into a new project with npm's defaults and a PATH that holds only node
# and npm (no compiler, make or python), then imports listen/dial through ESM and CommonJS and
# echoes a few bytes over loopback, here and in arm64 Node (qemu) and Windows Node (wine) over
# the package's own linux-arm64 and win32-x64 binaries. Then removes the prebuilt binary from
# the install, checks that loading fails with the message that says how to build from source, and follows that
# advice (`npm rebuild muxnet`, with the compiler back on the PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

tarball="$(npm pack --pack-destination "$work" | tail -n 1)"
contents="$(tar tzf "$work/$tarball")"
for want in package/prebuilds/linux-x64/muxnet.napi.uv1.glibc.node package/prebuilds/linux-x64/muxnet.napi.uv1.musl.node \
            package/prebuilds/linux-arm64/muxnet.napi.uv1.glibc.node package/prebuilds/darwin-x64/muxnet.napi.uv1.node \
            package/prebuilds/darwin-arm64/muxnet.napi.uv1.node package/prebuilds/win32-x64/muxnet.napi.uv1.node \
            package/dist/index.js \
            package/dist/index.d.ts package/esm/index.mjs package/binding.gyp package/native/core/loop.cc; do
  grep -qx "$want" <<<"$contents" || { echo "test-pack: $tarball lacks $want" >&2; exit 1; }
done
if grep -qE '^package/(bench|test|native/test|build|build-cmake)/' <<<"$contents"; then
  echo "test-pack: $tarball holds contributor files:" >&2
  grep -E '^package/(bench|test|native/test|build|build-cmake)/' <<<"$contents" | head >&2
  exit 1
fi
echo "test-pack: $tarball ($(du -k "$work/$tarball" | cut -f1) KiB, $(wc -l <<<"$contents") files)"

# node, npm and the shell npm runs scripts with, nothing else: a build from source would fail
# here, so the install must use the prebuild.
bin="$work/bin"
mkdir -p "$bin"
ln -s "$(command -v node)" "$bin/node"
ln -s "$(command -v npm)" "$bin/npm"
ln -s "$(command -v sh)" "$bin/sh"
for tool in g++ c++ gcc cc make python3; do
  if PATH="$bin" command -v "$tool" >/dev/null; then echo "test-pack: $tool is on the bare PATH" >&2; exit 1; fi
done
user() { (cd "$work/app" && env -i HOME="$HOME" PATH="$bin" "$@"); }
developer() { (cd "$work/app" && env -i HOME="$HOME" PATH="$PATH" "$@"); }

mkdir -p "$work/app"
echo '{ "name": "app", "version": "1.0.0", "private": true }' >"$work/app/package.json"
user npm install --no-audit --no-fund "$work/$tarball"
if [ -e "$work/app/node_modules/muxnet/build" ]; then
  echo "test-pack: the install compiled the addon instead of using the prebuilt binary" >&2
  exit 1
fi

cat >"$work/app/echo.mjs" <<'JS'
import { listen, dial } from 'muxnet';
const ln = listen('tcp', '127.0.0.1:0');
const served = (async () => {
  const conn = await ln.accept();
  const buf = new Uint8Array(64);
  const n = await conn.read(buf);
  await conn.write(buf.subarray(0, n));
  conn.close();
})();
const c = await dial('tcp', ln.addr().toString());
await c.write('ping from esm');
const buf = new Uint8Array(64);
const n = await c.read(buf);
await served;
c.close();
ln.close();
console.log(Buffer.from(buf.subarray(0, n)).toString());
JS
sed -e "s/^import { listen, dial } from 'muxnet';/const { listen, dial } = require('muxnet');/" \
    -e 's/from esm/from cjs/' -e '2,$s/^/  /' -e '2s/^/(async () => {\n/' "$work/app/echo.mjs" >"$work/app/echo.cjs"
echo '})();' >>"$work/app/echo.cjs"

esm="$(user node echo.mjs)"
cjs="$(user node echo.cjs)"
[ "$esm" = "ping from esm" ] || { echo "test-pack: ESM echo gave '$esm'" >&2; exit 1; }
[ "$cjs" = "ping from cjs" ] || { echo "test-pack: CommonJS echo gave '$cjs'" >&2; exit 1; }
echo "test-pack: ESM and CommonJS echo over the installed package: ok"

# The same install on arm64: arm64 Node (under qemu, see test-arm64.sh) picks the package's
# linux-arm64 binary by itself.
node_arm64="$(bash "$root/scripts/test-arm64.sh" --setup)"
arm64="$(cd "$work/app" && env -i HOME="$HOME" PATH="$bin" QEMU_LD_PREFIX=/usr/aarch64-linux-gnu \
  "$(command -v qemu-aarch64-static)" "$node_arm64" echo.mjs)"
[ "$arm64" = "ping from esm" ] || { echo "test-pack: the arm64 echo gave '$arm64'" >&2; exit 1; }
echo "test-pack: echo in arm64 Node (qemu) over the installed package's linux-arm64 binary: ok"

# The same install on Windows: Windows Node (node.exe under wine, see test-windows-addon.sh) picks
# the package's win32-x64 binary by itself. node.exe's stdout must be a file under wine.
node_win="${MUXNET_WIN_NODE:-${MUXNET_TOOLS:-$HOME/.cache/muxnet-tools}/node-win/package/bin/node.exe}"
(source "$root/scripts/wine-env.sh" && cd "$work/app" &&
  timeout -k 5 300 wine "$node_win" echo.cjs >"$work/win-echo.log" 2>&1) || true
win="$(tr -d '\r' <"$work/win-echo.log")"
[ "$win" = "ping from cjs" ] || { echo "test-pack: the Windows echo gave '$win'" >&2; exit 1; }
echo "test-pack: echo in Windows Node (wine) over the installed package's win32-x64 binary: ok"

# No binary for this platform: a clear message, not a stack of require errors.
rm -rf "$work/app/node_modules/muxnet/prebuilds"
if out="$(user node echo.mjs 2>&1)"; then echo "test-pack: loaded with no binary" >&2; exit 1; fi
for want in 'no native addon for linux-x64' 'npm rebuild muxnet' 'npm install-scripts approve muxnet'; do
  grep -qF "$want" <<<"$out" || { echo "test-pack: the error lacks '$want':" >&2; echo "$out" >&2; exit 1; }
done
echo "test-pack: missing binary reported: $(grep -m1 '^Error: muxnet: no native addon' <<<"$out")"

# The advice works: a build from the shipped sources, without the contributors' load generator.
developer npm rebuild muxnet
[ -f "$work/app/node_modules/muxnet/build/Release/muxnet.node" ] || { echo "test-pack: npm rebuild built no addon" >&2; exit 1; }
[ ! -e "$work/app/node_modules/muxnet/build/Release/muxnet-loadgen" ] || { echo "test-pack: a user build made muxnet-loadgen" >&2; exit 1; }
esm="$(user node echo.mjs)"
[ "$esm" = "ping from esm" ] || { echo "test-pack: ESM echo after npm rebuild gave '$esm'" >&2; exit 1; }
echo "test-pack: npm rebuild muxnet built it from source: ok"
echo "test-pack: ok"
