// Bytes between descriptors without passing through user space where the platform can:
// SendFile (Linux sendfile(2), macOS sendfile(2), else a bounded pread + send) and Splice
// (Linux splice(2) through a kernel pipe; -ENOSYS elsewhere). Each variant is a few lines,
// so they share this file rather than one file each.
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

// sendfile(2) has no MSG_NOSIGNAL: a peer that reset would raise SIGPIPE (Node ignores it,
// a host process may not). SIGPIPE is blocked on this thread around the call, and one it
// raised is taken off the pending set before it is unblocked, as libcurl does.
class NoSigPipe {
 public:
  NoSigPipe() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~NoSigPipe() {
    if (raised_ && !was_pending_) {
      timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  void Raised() { raised_ = true; }

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
  bool raised_ = false;
};

ssize_t SendFile(int sock, int file, int64_t* offset, size_t len) {
  off_t off = static_cast<off_t>(*offset);
  if (len > kMaxSendFile) len = kMaxSendFile;
  NoSigPipe guard;
  for (;;) {
    ssize_t n = sendfile(sock, file, &off, len);
    if (n >= 0) {
      *offset = off;
      return n;
    }
    if (errno == EINTR) continue;
    int err = errno;
    if (err == EPIPE) guard.Raised();
    return err == EWOULDBLOCK ? -EAGAIN : -err;
  }
}

ssize_t Splice(int from, int to, size_t len) {
  NoSigPipe guard;  // splice(2) into a socket has no MSG_NOSIGNAL either
  for (;;) {
    ssize_t n = splice(from, nullptr, to, nullptr, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    int err = errno;
    if (err == EPIPE) guard.Raised();
    return err == EWOULDBLOCK ? -EAGAIN : -err;
  }
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
