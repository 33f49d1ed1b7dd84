// An eventfd that readiness backends watch to end a Wait() from another thread.
#ifndef MUXNET_CORE_WAKER_H_
#define MUXNET_CORE_WAKER_H_

namespace muxnet {

// Owned by a backend (kqueue would use EVFILT_USER, IOCP PostQueuedCompletionStatus).
class Waker {
 public:
  Waker() = default;
  ~Waker();
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;

  // 0 or -errno.
  int Open();
  int fd() const { return fd_; }
  // Makes fd() readable. Thread-safe.
  void Signal();
  // Makes fd() unreadable again.
  void Drain();

 private:
  int fd_ = -1;
};

}  // namespace muxnet

#endif  // MUXNET_CORE_WAKER_H_
