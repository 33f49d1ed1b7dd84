// NativeEcho: see native_echo.h.
#include "native_echo.h"

#include <cerrno>

#include "../core/socket.h"

namespace muxnet {

void NativeEcho::OnAccepted(Loop* loop, int id, int fd) {
  if (loop->ServiceInterest(id, kReadable) != 0) loop->Close(id);
}

void NativeEcho::OnReady(Loop* loop, int id, int fd, uint32_t events) {
  if (buffer_.empty()) buffer_.resize(BufferPool::kChunkSize);
  const bool edge = loop->edge_triggered();
  auto it = pending_.find(id);
  if (it != pending_.end()) {
    if (!(events & (kWritable | kHangup))) return;
    iovec iov{it->second.data(), it->second.size()};
    ssize_t n = Writev(fd, &iov, 1);
    if (n == -EAGAIN) return;
    if (n < 0) {
      loop->Close(id);
      return;
    }
    it->second.erase(0, n);
    if (!it->second.empty()) return;
    pending_.erase(it);
    if (loop->ServiceInterest(id, kReadable) != 0) {
      loop->Close(id);
      return;
    }
  }
  for (;;) {
    ssize_t n = Read(fd, buffer_.data(), buffer_.size());
    if (n == -EAGAIN) return;
    if (n <= 0) {
      loop->Close(id);
      return;
    }
    const bool drained = n < static_cast<ssize_t>(buffer_.size());
    if (!discard_) {
      iovec iov{buffer_.data(), static_cast<size_t>(n)};
      ssize_t w = Writev(fd, &iov, 1);
      if (w == -EAGAIN) w = 0;
      if (w < 0) {
        loop->Close(id);
        return;
      }
      if (w < n) {
        // The peer is not reading: keep the rest, stop reading until it is written.
        pending_[id].assign(buffer_.data() + w, n - w);
        if (loop->ServiceInterest(id, kWritable) != 0) loop->Close(id);
        return;
      }
    }
    // Level-triggered: a short read drained the socket. Edge-triggered: read on to EAGAIN,
    // or a FIN that came with the data would never be seen.
    if (!edge && drained) return;
  }
}

}  // namespace muxnet
