// Waker: see waker.h.
#include "waker.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace muxnet {

Waker::~Waker() {
  if (fd_ >= 0) close(fd_);
}

int Waker::Open() {
  fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return fd_ >= 0 ? 0 : -errno;
}

void Waker::Signal() {
  uint64_t one = 1;
  // EAGAIN means the counter is saturated: it is readable already, which is all we need.
  ssize_t ignored = write(fd_, &one, sizeof one);
  (void)ignored;
}

void Waker::Drain() {
  uint64_t value;
  ssize_t ignored = read(fd_, &value, sizeof value);
  (void)ignored;
}

}  // namespace muxnet
