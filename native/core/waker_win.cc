// Waker on Windows: see waker.h. select() there takes sockets only (no pipe, no eventfd),
// so the watched descriptor is a UDP socket bound to 127.0.0.1 and connected to itself:
// Signal() sends it one byte, which any thread may do, and Drain() reads what came.
#ifdef _WIN32
#include "waker.h"

#include "socket.h"

namespace muxnet {

Waker::~Waker() {
  if (fd_ >= 0) Close(fd_);
}

int Waker::Open() {
  SockAddr loopback;
  int err = SockAddr::FromIp("127.0.0.1", 0, &loopback);
  if (err == 0) err = BindDatagram(loopback, false, &fd_);
  SockAddr self;
  if (err == 0) err = LocalAddr(fd_, &self);
  if (err == 0 && connect(static_cast<SOCKET>(fd_), reinterpret_cast<const sockaddr*>(&self.storage), self.len) != 0) {
    err = -EIO;
  }
  signal_fd_ = fd_;
  return err;  // on failure the destructor closes what was opened
}

void Waker::Signal() {
  // A full socket buffer drops the byte: the socket is readable already, all we need.
  char one = 1;
  send(static_cast<SOCKET>(signal_fd_), &one, 1, 0);
}

void Waker::Drain() {
  char bytes[64];
  while (recv(static_cast<SOCKET>(fd_), bytes, sizeof bytes, 0) > 0) {
  }
}

}  // namespace muxnet

#endif  // _WIN32
