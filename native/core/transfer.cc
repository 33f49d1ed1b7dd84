// Bytes between descriptors without passing through user space where the platform can:
// SendFile (Linux sendfile(2), macOS sendfile(2), else a bounded pread + send) and Splice
// (Linux splice(2) through a kernel pipe; -ENOSYS elsewhere). Each variant is a few lines,
// so they share this file rather than one file each. Windows has transfer_win.cc.
#ifndef _WIN32
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>
#include <fcntl.h>
#if defined(__linux__)
#include <pthread.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <time.h>
#endif

#include <cerrno>
#include <cstdint>

#include "socket.h"

namespace muxnet {

namespace {
// One call moves at most this much: a multi-gigabyte request must not hold the loop in
// one syscall, and Linux caps a sendfile at 0x7ffff000 bytes anyway.
constexpr size_t kMaxSendFile = 1u << 30;
}  // namespace

#if defined(__linux__)

// sendfile(2) and splice(2) have no MSG_NOSIGNAL: a peer that reset would raise SIGPIPE
// (Node ignores it, a host process may not). `call` runs with SIGPIPE blocked on this thread,
// retried on EINTR; a SIGPIPE it raised is taken off the pending set before SIGPIPE is
// unblocked, as libcurl does. Its result, or -errno (-EAGAIN for EWOULDBLOCK).
template <typename Call>
ssize_t WithoutSigPipe(Call call) {
  sigset_t pipe, old, pending;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe, &old);
  ssize_t n;
  do {
    n = call();
  } while (n < 0 && errno == EINTR);
  if (n < 0) n = errno == EWOULDBLOCK ? -EAGAIN : -errno;
  if (n == -EPIPE && !was_pending) {
    timespec zero{0, 0};
    while (sigtimedwait(&pipe, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return n;
}

ssize_t SendFile(int sock, int file, int64_t* offset, size_t len) {
  off_t off = static_cast<off_t>(*offset);
  ssize_t n = WithoutSigPipe([&] { return sendfile(sock, file, &off, len > kMaxSendFile ? kMaxSendFile : len); });
  if (n >= 0) *offset = off;
  return n;
}

ssize_t Splice(int from, int to, size_t len) {
  return WithoutSigPipe([&] { return splice(from, nullptr, to, nullptr, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK); });
}

int MakePipe(int fds[2]) {
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return -errno;
  return 0;
}

#elif defined(__APPLE__)

ssize_t SendFile(int sock, int file, int64_t* offset, size_t len) {
  if (len > kMaxSendFile) len = kMaxSendFile;
  for (;;) {
    // macOS: the length is in-out, and a partial send reports EAGAIN with the bytes sent.
    off_t sent = static_cast<off_t>(len);
    int r = sendfile(file, sock, static_cast<off_t>(*offset), &sent, nullptr, 0);
    if (sent > 0) {
      *offset += sent;
      return static_cast<ssize_t>(sent);
    }
    if (r == 0) return 0;  // end of file
    if (errno == EINTR) continue;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  }
}

#else

ssize_t SendFile(int sock, int file, int64_t* offset, size_t len) {
  // No sendfile here: one bounded copy through a stack buffer per call. Bytes read but not
  // sent are read again next time (offset moves by what was sent only).
  char buf[16 * 1024];
  if (len > sizeof buf) len = sizeof buf;
  ssize_t got;
  do {
    got = pread(file, buf, len, static_cast<off_t>(*offset));
  } while (got < 0 && errno == EINTR);
  if (got <= 0) return got < 0 ? -errno : 0;
  iovec iov{buf, static_cast<size_t>(got)};
  ssize_t n = Writev(sock, &iov, 1);
  if (n > 0) *offset += n;
  return n;
}

#endif

#if !defined(__linux__)

ssize_t Splice(int, int, size_t) { return -ENOSYS; }
int MakePipe(int*) { return -ENOSYS; }

#endif

}  // namespace muxnet

#endif  // !_WIN32
