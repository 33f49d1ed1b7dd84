// A descriptor that readiness backends watch to end a Wait() from another thread: an
// eventfd on Linux, a non-blocking pipe elsewhere (waker_posix.cc), a loopback UDP socket
// on Windows, where select takes sockets only (waker_win.cc). (kqueue uses EVFILT_USER
// instead; IOCP would post a completion.)
#ifndef MUXNET_CORE_WAKER_H_
#define MUXNET_CORE_WAKER_H_

namespace muxnet {

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
  int fd_ = -1;        // watched
  int signal_fd_ = -1;  // written to: fd_ itself for an eventfd or a socket, the pipe's other end
};

}  // namespace muxnet

#endif  // MUXNET_CORE_WAKER_H_
