{
  "targets": [
    {
      "target_name": "muxnet",
      "sources": [
        "native/addon/addon.cc",
        "native/addon/loop_wrap.cc",
        "native/addon/native_echo.cc",
        "native/core/buffer_pool.cc",
        "native/core/datagram.cc",
        "native/core/listener.cc",
        "native/core/loop.cc",
        "native/core/passing.cc",
        "native/core/poller_poll.cc",
        "native/core/poller_registry.cc",
        "native/core/poller_select.cc",
        "native/core/receive.cc",
        "native/core/transfer.cc",
        "native/core/socket.cc",
        "native/core/socket_posix.cc",
        "native/core/stream.cc",
        "native/core/timer_heap.cc",
        "native/core/waiter.cc",
        "native/core/waker_posix.cc",
        "native/core/write_queue.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-std=gnu++17", "-std=gnu++14"],
      "conditions": [
        ["OS=='linux'", {
          "sources": ["native/core/poller_epoll.cc", "native/core/poller_io_uring.cc"],
          "defines": ["MUXNET_HAVE_EPOLL", "MUXNET_HAVE_IO_URING"]
        }],
        # The *_posix.cc files and poller_poll.cc compile to nothing on Windows, these to
        # nothing elsewhere. (The addon itself is not built for Windows yet.)
        ["OS=='win'", {
          "sources": ["native/core/poller_afd_win.cc", "native/core/poller_select_win.cc", "native/core/socket_win.cc",
                      "native/core/transfer_win.cc", "native/core/waker_win.cc"],
          "libraries": ["-lws2_32", "-liphlpapi"]
        }],
        ["OS=='mac' or OS=='freebsd' or OS=='openbsd' or OS=='netbsd'", {
          "sources": ["native/core/poller_kqueue.cc"],
          "defines": ["MUXNET_HAVE_KQUEUE"]
        }],
        ["'<!(echo $MUXNET_SANITIZE)'=='address'", {
          "cflags_cc": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"],
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ]
    }
  ],
  "conditions": [
    # The benchmark's load generator and C echo floor are for contributors only: bench/ is not
    # in the npm package, so a user's build from source (no prebuilt binary matched) skips them.
    ["'<!(node -p \"require('fs').existsSync('bench/loadgen.cc')\")'=='true'", {
      "targets": [
        {
          "target_name": "muxnet-loadgen",
          "type": "executable",
          "sources": ["bench/loadgen.cc"],
          "cflags_cc": ["-std=c++17", "-O2", "-Wall"],
          "cflags_cc!": ["-std=gnu++17", "-std=gnu++14", "-fno-exceptions"]
        },
        {
          # The physical floor of each backend: an echo server against the syscalls, no Node.
          "target_name": "muxnet-echo-floor",
          "type": "executable",
          "sources": ["bench/echo_floor.cc"],
          "cflags_cc": ["-std=c++17", "-O2", "-Wall"],
          "cflags_cc!": ["-std=gnu++17", "-std=gnu++14", "-fno-exceptions"]
        }
      ]
    }]
  ]
}
