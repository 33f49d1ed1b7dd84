// Listeners: accepting on readiness within the owner's budget, or through the backend's own
// accept on a completion backend; shedding connections when the process is out of
// descriptors, and handing connections to a native service.
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
  int err = ApplyAccepting(h);
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
      HandOut(h, fd);
      continue;
    }
    if (err != -EAGAIN) AcceptFailed(h, err);
    break;
  }
}

void Loop::HandOut(ListenerHandle* h, int fd) {
  int32_t lid = h->id;
  if (--h->accept_budget <= 0) {
    // The owner's queue is full: the rest wait in the kernel's backlog.
    h->accepting = false;
    ApplyAccepting(h);  // a refusal keeps the interest: the next event re-checks
  }
  int id = AddHandle(std::make_unique<StreamHandle>(), fd);
  stats_.accepted++;
  StreamHandle* conn = GetStream(id);
  if (h->service != nullptr) {
    conn->service = h->service;
    h->service->OnAccepted(this, id, fd);
    return;
  }
  if (edge_) {
    if (int err = UpdateInterest(conn); err != 0) {
      // Never registered, so never readable: shed it rather than hand out a dead socket.
      Close(id);
      Emit(kEvAcceptError, lid, err, 0);
      return;
    }
  }
  Emit(kEvAccept, lid, id, 0);
}

void Loop::AcceptFailed(ListenerHandle* h, int err) {
  // Stop accepting until the owner asks again (after a back-off): without a spare
  // descriptor a level-triggered listener would otherwise report the same error forever.
  // First: on a completion backend this cancels the accepts in flight, which would take
  // the descriptor freed below (the kernel runs them at any syscall of this thread: the
  // spare was lost to one, and shedding with it, in CI's listener-emfile test).
  h->accepting = false;
  ApplyAccepting(h);
  if (reserve_fd_ < 0) reserve_fd_ = OpenReserveFd();  // lost to another thread last time
  if ((err == -EMFILE || err == -ENFILE) && reserve_fd_ >= 0) {
    // Out of descriptors: the pending connection would keep the listener readable and
    // spin the loop. Give up the spare descriptor, accept and close what is queued
    // (the peers see a reset), then take the spare back (libev's and libuv's technique).
    muxnet::Close(reserve_fd_);
    int fd;
    while (Accept(h->fd, &fd) == 0) muxnet::Close(fd);
    reserve_fd_ = OpenReserveFd();
  }
  Emit(kEvAcceptError, h->id, err, 0);
}

// --- A completion backend's accept: up to kAcceptsInFlight single accepts while the owner
// accepts, never more than its budget (so no connection is taken from the kernel's backlog
// that the owner has no room for). Not multishot: a multishot accept takes the whole backlog
// at once, and what the owner has no room for would wait here, not in the kernel.

int Loop::UpdateAccept(ListenerHandle* h) {
  if (!h->accepting) {
    // What completes before the cancellation is in waits in h->accepted for the next
    // SetAccepting (OnAccepted): at most kAcceptsInFlight.
    if (h->accepts > 0 && !h->accept_cancelled) {
      h->accept_cancelled = true;
      return poller_->CancelAccept(h->token());
    }
    return 0;
  }
  if (!h->accepted.empty() && !h->accepted_due) {
    // Handed out at the next wake-up (DeliverAccepted), not from inside this call.
    h->accepted_due = true;
    accepted_due_.push_back(h->id);
    poller_->Wake();
  }
  // Cancelled accepts still in flight end soon; the last one's result arms again.
  if (h->accept_cancelled) return 0;
  // Linux's accepted sockets inherit TCP_NODELAY (Go's default, set per connection on
  // readiness) from the listener: set once here, not once per connection.
  if (!h->accepted_before) SetNoDelay(h->fd, true);  // not TCP (Unix): nothing to set
  h->accepted_before = true;
  int room = h->accept_budget - static_cast<int>(h->accepted.size());
  int want = room < kAcceptsInFlight ? room : kAcceptsInFlight;
  while (h->accepts < want) {
    int err = poller_->Accept(h->fd, h->token());
    if (err == -EOPNOTSUPP && h->accepts == 0) {
      h->ring_accept = false;  // this backend has none: readiness, as the others
      return UpdateInterest(h);
    }
    if (err != 0) return h->accepts > 0 ? 0 : err;
    h->accepts++;
  }
  return 0;
}

void Loop::OnAccepted(Handle* handle, const PollEvent& e) {
  auto* h = handle != nullptr && handle->kind == HandleKind::kListener ? static_cast<ListenerHandle*>(handle) : nullptr;
  int32_t n = e.result;
  if (h == nullptr) {
    // Accepted after the listener closed: nobody will take this connection.
    if (n >= 0) muxnet::Close(n);
    return;
  }
  if (--h->accepts == 0) h->accept_cancelled = false;
  if (n >= 0) {
    if (!h->accepting || !h->accepted.empty()) {
      h->accepted.push_back(n);  // after a cancellation, or behind those already waiting
    } else {
      HandOut(h, n);
    }
  } else if (n != -ECANCELED && n != -ECONNABORTED && h->accepting) {
    // ECONNABORTED: a connection reset before it was accepted is the peer's business.
    AcceptFailed(h, n);
    return;
  }
  if ((h = static_cast<ListenerHandle*>(FromToken(e.token))) != nullptr && h->accepting) {
    if (int err = UpdateAccept(h); err != 0) AcceptFailed(h, err);
  }
}

void Loop::DeliverAccepted() {
  std::vector<int32_t> due;
  due.swap(accepted_due_);
  for (int32_t lid : due) {
    ListenerHandle* h = GetListener(lid);
    if (h == nullptr) continue;
    h->accepted_due = false;
    while ((h = GetListener(lid)) != nullptr && h->accepting && !h->accepted.empty()) {
      int fd = h->accepted.front();
      h->accepted.erase(h->accepted.begin());
      HandOut(h, fd);
    }
  }
}

}  // namespace muxnet
