#!/usr/bin/env bash
# ThreadSanitizer on the native core: every native test built with -fsanitize=thread (see
# test-native.sh). The ones that involve threads: the helper-thread backends (select, poll,
# epoll 'thread' mode, exercised by every loop_* test), the threaded shutdown test and
# several loops on several threads at once (what Node workers do). Node itself cannot be
# built with TSan here, so the addon's integration with libuv is not covered; the core is.
# Optional argument: a test-name filter.
set -euo pipefail
cd "$(dirname "$0")/.."
MUXNET_NATIVE_SANITIZE=thread MUXNET_NATIVE_TIMEOUT=300 exec bash scripts/test-native.sh "$@"
