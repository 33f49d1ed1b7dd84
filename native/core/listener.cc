// Listeners: accepting on readiness within the owner's budget, shedding connections when
// the process is out of descriptors, and handing connections to a native service.
#include <cerrno>

#include "loop.h"

namespace muxnet {

int Loop::Listen(const SockAddr& addr, const ListenOptions& options, int* id) {
  int fd;
  int err = muxnet::Listen(addr, options, &fd);
  if (err != 0) return err;
  *id = AddHandle(std::make_unique<ListenerHandle>(), fd);
  return 0;
}

int Loop::SetAccepting(int id, int budget) {
  ListenerHandle* h = GetListener(id);
  if (h == nullptr) return -EBADF;
  bool was = h->accepting;
  int was_budget = h->accept_budget;
  h->accept_budget = budget > 0 ? budget : 0;
  h->accepting = budget > 0;
  int err = UpdateInterest(h);
  if (err != 0) {
    h->accepting = was;
    h->accept_budget = was_budget;
  }
  return err;
}

int Loop::SetService(int id, NativeService* service) {
  ListenerHandle* h = GetListener(id);
  if (h == nullptr) return -EBADF;
  h->service = service;
  return 0;
}

int Loop::ServiceInterest(int id, uint32_t interest) {
  StreamHandle* h = GetStream(id);
  if (h == nullptr || h->service == nullptr) return -EBADF;
  uint32_t was = h->service_interest;
  h->service_interest = interest & (kReadable | kWritable);
  if (edge_ && h->service_interest != 0) h->service_interest = kReadable | kWritable | kEdge;
  int err = UpdateInterest(h);
  if (err != 0) h->service_interest = was;
  return err;
}

void Loop::OnListenerReady(ListenerHandle* h) {
  int32_t lid = h->id;
  // Accept until EAGAIN; Emit may run JS, which may close the listener or pause it.
  while ((h = GetListener(lid)) != nullptr && h->accepting) {
    int fd;
    int err = Accept(h->fd, &fd);
    if (err == 0) {
      if (--h->accept_budget <= 0) {
        // The owner's queue is full: the rest wait in the kernel's backlog.
        h->accepting = false;
        UpdateInterest(h);  // a refusal keeps the interest: the next event re-checks
      }
      int id = AddHandle(std::make_unique<StreamHandle>(), fd);
      stats_.accepted++;
      StreamHandle* conn = GetStream(id);
      if (h->service != nullptr) {
        conn->service = h->service;
        h->service->OnAccepted(this, id, fd);
        continue;
      }
      if (edge_ && (err = UpdateInterest(conn)) != 0) {
        // Never registered, so never readable: shed it rather than hand out a dead socket.
        Close(id);
        Emit(kEvAcceptError, lid, err, 0);
        continue;
      }
      Emit(kEvAccept, lid, id, 0);
      continue;
    }
    if (err == -EAGAIN) break;
    if (reserve_fd_ < 0) reserve_fd_ = OpenReserveFd();  // lost to another thread last time
    if ((err == -EMFILE || err == -ENFILE) && reserve_fd_ >= 0) {
      // Out of descriptors: the pending connection would keep the listener readable and
      // spin the loop. Give up the spare descriptor, accept and close what is queued
      // (the peers see a reset), then take the spare back (libev's and libuv's technique).
      muxnet::Close(reserve_fd_);
      while (Accept(h->fd, &fd) == 0) muxnet::Close(fd);
      reserve_fd_ = OpenReserveFd();
    }
    // Stop accepting until the owner asks again (after a back-off): without a spare
    // descriptor a level-triggered listener would otherwise report the same error forever.
    h->accepting = false;
    UpdateInterest(h);
    Emit(kEvAcceptError, lid, err, 0);
    break;
  }
}

}  // namespace muxnet
