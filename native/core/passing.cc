// Passing descriptors over Unix stream sockets (SCM_RIGHTS), and adopting sockets that
// arrive that way (or from anywhere else) as handles of this loop.
#include <cerrno>

#include "loop.h"

namespace muxnet {

int Loop::Adopt(int fd, HandleKind kind, int* id) {
  if (int err = PrepareAdopted(fd); err != 0) {
    muxnet::Close(fd);
    return err;
  }
  std::unique_ptr<Handle> h;
  switch (kind) {
    case HandleKind::kListener: h = std::make_unique<ListenerHandle>(); break;
    case HandleKind::kStream: h = std::make_unique<StreamHandle>(); break;
    case HandleKind::kDatagram: h = std::make_unique<DatagramHandle>(); break;
  }
  *id = AddHandle(std::move(h), fd);
  // Edge-triggered sockets are registered once, for both directions, when they are made.
  if (edge_ && kind != HandleKind::kListener) {
    int err = UpdateInterest(Get(*id));
    if (err != 0) {
      Close(*id);
      *id = -1;
      return err;
    }
  }
  return 0;
}

ssize_t Loop::SendWithHandles(int id, const void* data, size_t len, const int32_t* ids, int count) {
  StreamHandle* h = GetStream(id);
  if (h == nullptr) return -EBADF;
  if (WritesPending(*h) || h->connecting) return -EBUSY;
  if (count < 0 || count > kMaxPassedFds) return -EINVAL;
  int fds[kMaxPassedFds];
  for (int i = 0; i < count; i++) {
    Handle* passed = Get(ids[i]);
    if (passed == nullptr) return -EBADF;
    fds[i] = passed->fd;
  }
  ssize_t n = muxnet::SendWithFds(h->fd, data, len, fds, count);
  if (n > 0) Count(h, 0, n);
  return n;
}

ssize_t Loop::RecvWithFds(int id, void* data, size_t len, int* fds, int max, int* count) {
  *count = 0;
  StreamHandle* h = GetStream(id);
  if (h == nullptr) return -EBADF;
  // A started read, or a completion backend's receive, owns the next bytes.
  if (h->read_mode != kReadNone || Received(*h)) return -EBUSY;
  ssize_t n = muxnet::RecvWithFds(h->fd, data, len, fds, max, count);
  if (n == -EAGAIN) h->may_read = false;
  return AfterReceive(h, n, n > 0 ? static_cast<size_t>(n) : 0);
}

}  // namespace muxnet
