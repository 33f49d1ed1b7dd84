#!/usr/bin/env bash
# The CMake way: builds the addon (cmake-js) and the native core's unit tests (with ASan and
# UBSan) into build-cmake/, runs the unit tests with ctest, then the mocha suite against the
# cmake-built addon (MUXNET_ADDON points the loader at it; node-gyp's build/ is not touched).
set -euo pipefail
cd "$(dirname "$0")/.."
npx cmake-js compile --out build-cmake --CDMUXNET_SANITIZE=address,undefined
ctest --test-dir build-cmake --output-on-failure
MUXNET_ADDON=build-cmake/Release/muxnet.node npx mocha "$@"
