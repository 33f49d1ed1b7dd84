// Waker on POSIX systems: see waker.h. Windows has waker_win.cc.
#ifndef _WIN32
#include "waker.h"

#include <fcntl.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/eventfd.h>
#endif

#include <cerrno>
#include <cstdint>

namespace muxnet {

Waker::~Waker() {
  if (signal_fd_ >= 0 && signal_fd_ != fd_) close(signal_fd_);
  if (fd_ >= 0) close(fd_);
}

int Waker::Open() {
#if defined(__linux__)
  fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ < 0) return -errno;
  signal_fd_ = fd_;
  return 0;
#else
  int ends[2];
  if (pipe(ends) != 0) return -errno;
  fd_ = ends[0];
  signal_fd_ = ends[1];
  for (int end : ends) {
    int flags = fcntl(end, F_GETFL);
    if (flags < 0 || fcntl(end, F_SETFL, flags | O_NONBLOCK) != 0 || fcntl(end, F_SETFD, FD_CLOEXEC) != 0) {
      return -errno;  // the destructor closes both ends
    }
  }
  return 0;
#endif
}

void Waker::Signal() {
  // EAGAIN means the counter (or the pipe) is full: it is readable already, all we need.
  uint64_t one = 1;
  ssize_t ignored = write(signal_fd_, &one, signal_fd_ == fd_ ? sizeof one : 1);
  (void)ignored;
}

void Waker::Drain() {
  uint64_t value[16];
  // An eventfd empties in one read; a pipe may hold a byte per Signal() since the last.
  while (read(fd_, value, sizeof value) == static_cast<ssize_t>(sizeof value) && signal_fd_ != fd_) {
  }
}

}  // namespace muxnet

#endif  // !_WIN32
