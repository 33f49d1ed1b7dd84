// The event loop: see loop.h. Dispatch rules live here once, for every backend.
#include "loop.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace muxnet {

namespace {
// epoll_wait/poll/select fill at most this many events per wait; a busier loop drains again.
constexpr int kMaxEvents = 1024;
// Inline drains at most this many full waits before yielding to Node's other callbacks.
constexpr int kMaxDrainRounds = 8;

int OpenReserve() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }
}  // namespace

Loop::Loop(LoopHost* host, Event* batch, int capacity)
    : host_(host), batch_(batch), capacity_(capacity) {}

Loop::~Loop() {
  if (helper_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    uint64_t one = 1;
    ssize_t ignored = write(wake_fd_, &one, sizeof one);
    (void)ignored;
    helper_.join();
  }
  for (auto& h : handles_) {
    if (h && !h->closed) {
      h->writes.Clear(&tokens_);
      muxnet::Close(h->fd);
    }
  }
  ReleaseTokens();
  if (wake_fd_ >= 0) muxnet::Close(wake_fd_);
  if (reserve_fd_ >= 0) muxnet::Close(reserve_fd_);
}

int Loop::Init(const LoopOptions& options) {
  int err = CreatePoller(options.backend, &poller_);
  if (err != 0) return err;
  if (options.edge_triggered && !poller_->SupportsEdge()) return -EINVAL;
  edge_ = options.edge_triggered;
  // select and poll have no descriptor to nest in Node's loop, so they always wait on a
  // helper thread; epoll can do either.
  threaded_ = options.threaded || poller_->PollableFd() < 0;
  pool_ = std::make_unique<BufferPool>([this](int slab) { return host_->AllocateSlab(slab); },
                                       options.max_slabs);
  events_.resize(kMaxEvents);
  reserve_fd_ = OpenReserve();
  if (threaded_) {
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) return -errno;
    err = poller_->Add(wake_fd_, kReadable);
    if (err != 0) return err;
    helper_ = std::thread([this] { HelperMain(); });
  }
  return 0;
}

int64_t Loop::NowMs() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

int Loop::Counters(int id, HandleCounters* out) const {
  Handle* h = Get(id);
  if (h == nullptr) return -EBADF;
  *out = h->counters;
  return 0;
}

Loop::Handle* Loop::Get(int id) const {
  if (id < 0 || id >= static_cast<int>(handles_.size())) return nullptr;
  Handle* h = handles_[id].get();
  return h != nullptr && !h->closed ? h : nullptr;
}

int Loop::Fd(int id) const {
  Handle* h = Get(id);
  return h != nullptr ? h->fd : -EBADF;
}

int Loop::NewHandle(int fd, bool listener) {
  int32_t id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
  } else {
    id = static_cast<int32_t>(handles_.size());
    handles_.emplace_back();
  }
  auto h = std::make_unique<Handle>();
  h->id = id;
  h->fd = fd;
  h->listener = listener;
  h->counters.opened_ms = NowMs();
  handles_[id] = std::move(h);
  if (fd >= static_cast<int>(fd_to_id_.size())) fd_to_id_.resize(fd + 1, -1);
  fd_to_id_[fd] = id;
  if (open_++ == 0) host_->SetActive(true);
  return id;
}

uint32_t Loop::DesiredInterest(const Handle& h) const {
  if (h.listener) return h.accepting ? uint32_t{kReadable} : 0u;
  // Edge-triggered connections are registered once for both directions: an edge is
  // never missed, and no epoll_ctl is needed when an operation starts or ends.
  if (edge_) return kReadable | kWritable | kEdge;
  uint32_t interest = 0;
  if (h.read_wanted) interest |= kReadable;
  if (h.connecting || !h.writes.empty() || h.write_wanted) interest |= kWritable;
  if (h.native_echo) interest = h.echo_pending.empty() ? kReadable : kWritable;
  return interest;
}

int Loop::UpdateInterest(Handle* h) {
  uint32_t want = DesiredInterest(*h);
  if (want == h->interest && (want != 0) == h->registered) return 0;
  Change c{h->fd, want, false, 0};
  if (want == 0) {
    if (!h->registered) return 0;
    h->registered = false;
  } else if (!h->registered) {
    c.add = true;
    c.add_no = ++adds_;
    h->add_no = c.add_no;
    h->registered = true;
  }
  h->interest = want;
  if (threaded_) {
    Stage(c);
    return 0;
  }
  return ApplyChange(c);
}

int Loop::ApplyChange(const Change& c) {
  if (c.interest == 0) return poller_->Remove(c.fd);
  return c.add ? poller_->Add(c.fd, c.interest) : poller_->Modify(c.fd, c.interest);
}

void Loop::Stage(const Change& c) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    staged_.push_back(c);
    // The helper only needs a kick when it is blocked in Wait(); while the loop thread
    // processes a batch the helper is parked and applies the changes before waiting.
    if (helper_waiting_ && !wake_pending_) wake = wake_pending_ = true;
  }
  if (wake) {
    uint64_t one = 1;
    ssize_t ignored = write(wake_fd_, &one, sizeof one);
    (void)ignored;
  }
}

int Loop::Listen(const SockAddr& addr, const ListenOptions& options, int* id) {
  int fd;
  int err = muxnet::Listen(addr, options, &fd);
  if (err != 0) return err;
  *id = NewHandle(fd, true);
  return 0;
}

int Loop::Connect(const SockAddr& addr, int* id) {
  int fd;
  int err = muxnet::Connect(addr, &fd);
  if (err != 0 && err != -EINPROGRESS) return err;
  *id = NewHandle(fd, false);
  stats_.dialed++;
  Handle* h = Get(*id);
  h->connecting = err == -EINPROGRESS;
  int rc = UpdateInterest(h);
  if (rc != 0) {
    Close(*id);
    return rc;
  }
  return err;
}

int Loop::SetAccepting(int id, int budget) {
  Handle* h = Get(id);
  if (h == nullptr || !h->listener) return -EBADF;
  h->accept_budget = budget > 0 ? budget : 0;
  h->accepting = budget > 0;
  return UpdateInterest(h);
}

int Loop::SetNativeEcho(int id, bool discard) {
  Handle* h = Get(id);
  if (h == nullptr || !h->listener) return -EBADF;
  h->native_echo = true;
  h->native_discard = discard;
  return 0;
}

void Loop::Echo(Handle* h, uint32_t events) {
  if (echo_buffer_.empty()) echo_buffer_.resize(BufferPool::kChunkSize);
  if (!h->echo_pending.empty()) {
    if (!(events & (kWritable | kHangup))) return;
    iovec iov{h->echo_pending.data(), h->echo_pending.size()};
    ssize_t n = Writev(h->fd, &iov, 1);
    if (n == -EAGAIN) return;
    if (n < 0) {
      Close(h->id);
      return;
    }
    h->echo_pending.erase(0, n);
    UpdateInterest(h);
    if (!h->echo_pending.empty()) return;
  }
  for (;;) {
    ssize_t n = muxnet::Read(h->fd, echo_buffer_.data(), echo_buffer_.size());
    if (n == -EAGAIN) return;
    if (n <= 0) {
      Close(h->id);
      return;
    }
    if (h->native_discard) {
      if (!edge_ && n < static_cast<ssize_t>(echo_buffer_.size())) return;
      continue;
    }
    iovec iov{echo_buffer_.data(), static_cast<size_t>(n)};
    ssize_t w = Writev(h->fd, &iov, 1);
    if (w == -EAGAIN) w = 0;
    if (w < 0) {
      Close(h->id);
      return;
    }
    if (w < n) {
      // The peer is not reading: keep the rest, stop reading until it is written.
      h->echo_pending.assign(echo_buffer_.data() + w, n - w);
      UpdateInterest(h);
      return;
    }
    // Level-triggered: a short read drained the socket. Edge-triggered: read on to EAGAIN,
    // or a FIN that came with the data would never be seen.
    if (!edge_ && n < static_cast<ssize_t>(echo_buffer_.size())) return;
  }
}

ssize_t Loop::Read(int id, void* data, size_t len) {
  Handle* h = Get(id);
  if (h == nullptr || h->listener) return -EBADF;
  ssize_t n = muxnet::Read(h->fd, data, len);
  if (n > 0) Count(h, n, 0);
  if (n == -EAGAIN && !h->read_wanted) {
    h->read_wanted = true;
    int err = UpdateInterest(h);
    if (err != 0) return err;
  }
  return n;
}

int Loop::BindPacket(const SockAddr& addr, bool reuse_addr, int* id) {
  int fd;
  int err = BindDatagram(addr, reuse_addr, &fd);
  if (err != 0) return err;
  *id = NewHandle(fd, false);
  if (edge_) UpdateInterest(Get(*id));
  return 0;
}

int Loop::BindRaw(const SockAddr& addr, int protocol, int* id) {
  int fd;
  int err = muxnet::BindRaw(addr, protocol, &fd);
  if (err != 0) return err;
  *id = NewHandle(fd, false);
  if (edge_) UpdateInterest(Get(*id));
  return 0;
}

int Loop::DialPacket(const SockAddr& addr, int* id) {
  int fd;
  int err = ConnectDatagram(addr, &fd);
  if (err != 0) return err;
  *id = NewHandle(fd, false);
  stats_.dialed++;
  if (edge_) UpdateInterest(Get(*id));
  return 0;
}

ssize_t Loop::AfterReceive(Handle* h, ssize_t n, size_t bytes) {
  if (n >= 0) {
    Count(h, bytes, 0);
  } else if (n == -EAGAIN && !h->read_wanted) {
    h->read_wanted = true;
    int err = UpdateInterest(h);
    if (err != 0) return err;
  }
  return n;
}

ssize_t Loop::RecvFrom(int id, void* data, size_t len, SockAddr* from, bool* truncated) {
  Handle* h = Get(id);
  if (h == nullptr || h->listener) return -EBADF;
  ssize_t n = muxnet::RecvFrom(h->fd, data, len, from, truncated);
  return AfterReceive(h, n, n > 0 ? static_cast<size_t>(n) : 0);
}

int Loop::RecvMany(int id, Datagram* batch, int count) {
  Handle* h = Get(id);
  if (h == nullptr || h->listener) return -EBADF;
  int n = muxnet::RecvMany(h->fd, batch, count);
  size_t bytes = 0;
  for (int i = 0; i < n; i++) bytes += batch[i].received;
  return static_cast<int>(AfterReceive(h, n, bytes));
}

ssize_t Loop::SendTo(int id, const void* data, size_t len, const SockAddr* to) {
  Handle* h = Get(id);
  if (h == nullptr || h->listener) return -EBADF;
  ssize_t n = muxnet::SendTo(h->fd, data, len, to);
  if (n > 0) Count(h, 0, n);
  return n;
}

int Loop::SendMany(int id, const Datagram* batch, int count) {
  Handle* h = Get(id);
  if (h == nullptr || h->listener) return -EBADF;
  int n = muxnet::SendMany(h->fd, batch, count);
  for (int i = 0; i < n; i++) Count(h, 0, batch[i].len);
  return n;
}

int Loop::Adopt(int fd, bool listener, int* id) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  *id = NewHandle(fd, listener);
  if (edge_ && !listener) UpdateInterest(Get(*id));
  return 0;
}

ssize_t Loop::SendWithHandles(int id, const void* data, size_t len, const int32_t* ids, int count) {
  Handle* h = Get(id);
  if (h == nullptr || h->listener) return -EBADF;
  if (!h->writes.empty() || h->connecting) return -EBUSY;
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
  Handle* h = Get(id);
  *count = 0;
  if (h == nullptr || h->listener) return -EBADF;
  ssize_t n = muxnet::RecvWithFds(h->fd, data, len, fds, max, count);
  return AfterReceive(h, n, n > 0 ? static_cast<size_t>(n) : 0);
}

int Loop::WantWrite(int id) {
  Handle* h = Get(id);
  if (h == nullptr || h->listener) return -EBADF;
  h->write_wanted = true;
  return UpdateInterest(h);
}

int Loop::WantRead(int id) {
  Handle* h = Get(id);
  if (h == nullptr || h->listener) return -EBADF;
  h->read_wanted = true;
  return UpdateInterest(h);
}

int Loop::PauseRead(int id) {
  Handle* h = Get(id);
  if (h == nullptr || h->listener) return -EBADF;
  h->read_wanted = false;
  return UpdateInterest(h);
}

ssize_t Loop::ReadChunk(int id, int* chunk) {
  Handle* h = Get(id);
  if (h == nullptr || h->listener) return -EBADF;
  int index = pool_->Acquire();
  if (index < 0) return -ENOBUFS;
  ssize_t n = muxnet::Read(h->fd, pool_->Data(index), BufferPool::kChunkSize);
  if (n > 0) {
    Count(h, n, 0);
    *chunk = index;
    return n;
  }
  pool_->Release(index);
  if (n == -EAGAIN && !h->read_wanted) {
    h->read_wanted = true;
    int err = UpdateInterest(h);
    if (err != 0) return err;
  }
  return n;
}

int Loop::Write(int id, const char* data, size_t len, size_t limit, MakeToken make_token,
                void* context) {
  Handle* h = Get(id);
  if (h == nullptr || h->listener) return -EBADF;
  if (h->shutdown_pending) return -EPIPE;
  if (len == 0) return 0;  // an empty request would never complete in the queue
  if (!h->writes.empty()) {
    if (h->writes.bytes() >= limit) return 2;
    h->writes.Push(data, len, make_token(context));
    return 1;
  }
  size_t written = 0;
  if (!h->connecting) {
    iovec iov{const_cast<char*>(data), len};
    ssize_t n = Writev(h->fd, &iov, 1);
    if (n < 0 && n != -EAGAIN) return static_cast<int>(n);
    if (n > 0) {
      written = static_cast<size_t>(n);
      Count(h, 0, n);
    }
    if (written == len) return 0;
  }
  h->writes.Push(data + written, len - written, make_token(context));
  int err = UpdateInterest(h);
  if (err != 0) {
    h->writes.Clear(&tokens_);
    ReleaseTokens();
    return err;
  }
  return 1;
}

ssize_t Loop::TryWrite(int id, const char* data, size_t len) {
  Handle* h = Get(id);
  if (h == nullptr || h->listener) return -EBADF;
  if (h->shutdown_pending) return -EPIPE;
  if (!h->writes.empty() || h->connecting) return -EBUSY;
  if (len == 0) return 0;
  iovec iov{const_cast<char*>(data), len};
  ssize_t n = Writev(h->fd, &iov, 1);
  if (n == -EAGAIN) return 0;
  if (n > 0) Count(h, 0, n);
  return n;
}

int Loop::CancelWrites(int id) {
  Handle* h = Get(id);
  if (h == nullptr || h->listener) return -EBADF;
  h->writes.Clear(&tokens_);
  ReleaseTokens();
  if (h->shutdown_pending && !h->connecting) {
    h->shutdown_pending = false;
    muxnet::ShutdownWrite(h->fd);
  }
  return UpdateInterest(h);
}

int Loop::ShutdownWrite(int id) {
  Handle* h = Get(id);
  if (h == nullptr || h->listener) return -EBADF;
  if (!h->writes.empty() || h->connecting) {
    h->shutdown_pending = true;
    return 0;
  }
  return muxnet::ShutdownWrite(h->fd);
}

int Loop::Close(int id) {
  Handle* h = Get(id);
  if (h == nullptr) return -EBADF;
  // Deregister before close(2): the fd number may be reused at once, and a backend must
  // never keep watching a number that now belongs to someone else.
  if (threaded_) {
    CloseWatched(h->fd);
  } else {
    if (h->registered) ApplyChange(Change{h->fd, 0, false, 0});
    muxnet::Close(h->fd);
  }
  h->registered = false;
  h->closed = true;
  h->writes.Clear(&tokens_);
  timers_.Cancel(id, kReadDeadline);
  timers_.Cancel(id, kWriteDeadline);
  fd_to_id_[h->fd] = -1;
  h->fd = -1;
  ReleaseTokens();
  UpdateTimer();
  if (depth_ > 0) {
    closed_ids_.push_back(id);
  } else {
    handles_[id].reset();
    free_ids_.push_back(id);
  }
  if (--open_ == 0) host_->SetActive(false);
  return 0;
}

int Loop::SetDeadline(int id, int kind, int64_t delay_ms, int32_t tag) {
  if (Get(id) == nullptr) return -EBADF;
  if (kind != kReadDeadline && kind != kWriteDeadline) return -EINVAL;
  if (delay_ms < 0) {
    timers_.Cancel(id, kind);
  } else {
    timers_.Set(id, kind, NowMs() + delay_ms, tag);
  }
  UpdateTimer();
  return 0;
}

void Loop::UpdateTimer() {
  int64_t when = timers_.empty() ? -1 : timers_.top().when_ms;
  if (when == armed_when_) return;
  armed_when_ = when;
  if (when < 0) {
    host_->ArmTimer(-1);
  } else {
    int64_t delay = when - NowMs();
    host_->ArmTimer(delay > 0 ? delay : 0);
  }
}

void Loop::RunTimers() {
  Enter();
  int64_t now = NowMs();
  while (!timers_.empty() && timers_.top().when_ms <= now) {
    TimerHeap::Entry e = timers_.top();
    timers_.Pop();
    Emit(kEvDeadline, e.id, e.kind, e.tag);
  }
  armed_when_ = -2;  // the host's timer has fired: re-arm whatever is next
  UpdateTimer();
  FlushBatch();
  Leave();
}

void Loop::Emit(int32_t kind, int32_t id, int32_t a, int32_t b) {
  batch_[count_++] = Event{kind, id, a, b};
  if (count_ == capacity_) FlushBatch();
}

void Loop::FlushBatch() {
  if (count_ == 0) return;
  int n = count_;
  count_ = 0;
  host_->DeliverBatch(n);
}

void Loop::Leave() {
  if (--depth_ > 0) return;
  for (int32_t id : closed_ids_) {
    handles_[id].reset();
    free_ids_.push_back(id);
  }
  closed_ids_.clear();
}

void Loop::ReleaseTokens() {
  for (void* token : tokens_) host_->ReleaseToken(token);
  tokens_.clear();
}

void Loop::RunInline() {
  Enter();
  for (int round = 0; round < kMaxDrainRounds; round++) {
    uint64_t adds = adds_;
    int n = poller_->Wait(0, events_.data(), kMaxEvents);
    if (n <= 0) break;
    Process(events_.data(), n, adds);
    if (n < kMaxEvents) break;
  }
  FlushBatch();
  Leave();
}

void Loop::RunReady() {
  std::vector<PollEvent> events;
  uint64_t adds;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!batch_ready_) return;
    events.swap(ready_);
    adds = ready_adds_;
  }
  Enter();
  Process(events.data(), static_cast<int>(events.size()), adds);
  FlushBatch();
  Leave();
  {
    std::lock_guard<std::mutex> lock(mu_);
    events.clear();
    ready_.swap(events);  // hand the capacity back: no allocation per batch
    batch_ready_ = false;
  }
  cv_.notify_one();
}

void Loop::Process(const PollEvent* events, int n, uint64_t adds_at_wait) {
  for (int i = 0; i < n; i++) {
    int fd = events[i].fd;
    if (fd < 0 || fd >= static_cast<int>(fd_to_id_.size())) continue;
    Handle* h = Get(fd_to_id_[fd]);
    // Registered after the wait began: the event belongs to an earlier owner of this fd.
    if (h == nullptr || h->add_no > adds_at_wait) continue;
    if (h->listener) {
      OnListenerReady(h);
    } else {
      OnConnReady(h, events[i].events);
    }
  }
}

void Loop::OnListenerReady(Handle* h) {
  int32_t lid = h->id;
  // Accept until EAGAIN; Emit may run JS, which may close the listener or pause it.
  while ((h = Get(lid)) != nullptr && h->accepting) {
    int fd;
    int err = Accept(h->fd, &fd);
    if (err == 0) {
      if (--h->accept_budget <= 0) {
        // The owner's queue is full: the rest wait in the kernel's backlog.
        h->accepting = false;
        UpdateInterest(h);
      }
      int id = NewHandle(fd, false);
      stats_.accepted++;
      Handle* conn = Get(id);
      conn->native_echo = h->native_echo;
      conn->native_discard = h->native_discard;
      if (edge_ || conn->native_echo) UpdateInterest(conn);
      if (!conn->native_echo) Emit(kEvAccept, lid, id, 0);
      continue;
    }
    if (err == -EAGAIN) break;
    if (reserve_fd_ < 0) reserve_fd_ = OpenReserve();  // lost to another thread last time
    if ((err == -EMFILE || err == -ENFILE) && reserve_fd_ >= 0) {
      // Out of descriptors: the pending connection would keep the listener readable and
      // spin the loop. Give up the spare descriptor, accept and close what is queued
      // (the peers see a reset), then take the spare back (libev's and libuv's technique).
      muxnet::Close(reserve_fd_);
      while (Accept(h->fd, &fd) == 0) muxnet::Close(fd);
      reserve_fd_ = OpenReserve();
    }
    // Stop accepting until the owner asks again (after a back-off): without a spare
    // descriptor a level-triggered listener would otherwise report the same error forever.
    h->accepting = false;
    UpdateInterest(h);
    Emit(kEvAcceptError, lid, err, 0);
    break;
  }
}

void Loop::OnConnReady(Handle* h, uint32_t events) {
  int32_t id = h->id;
  if (events & kHangup) events |= kReadable | kWritable;
  if (h->native_echo) {
    Echo(h, events);
    return;
  }
  if (h->connecting) {
    if (!(events & kWritable)) return;
    int err = ConnectResult(h->fd);
    h->connecting = false;
    UpdateInterest(h);
    Emit(kEvConnected, id, err, 0);
    if ((h = Get(id)) == nullptr) return;
    if (h->shutdown_pending && h->writes.empty()) muxnet::ShutdownWrite(h->fd);
  }
  if ((events & kWritable) && !h->writes.empty()) {
    FlushWrites(h);
    if ((h = Get(id)) == nullptr) return;
  }
  if ((events & kWritable) && h->write_wanted) {
    h->write_wanted = false;
    UpdateInterest(h);
    Emit(kEvWritable, id, 0, 0);
    if ((h = Get(id)) == nullptr) return;
  }
  if (!(events & kReadable)) return;
  if (events & (kHangup | kReadHangup)) h->read_hangup = true;
  // Level-triggered readiness that nobody asked for: stop watching, or it fires forever.
  if (!edge_ && !h->read_wanted) {
    UpdateInterest(h);
    return;
  }
  Emit(kEvReadable, id, h->read_hangup ? 1 : 0, 0);
}

void Loop::FlushWrites(Handle* h) {
  int32_t id = h->id;
  size_t before = tokens_.size();
  size_t queued = h->writes.bytes();
  int err = h->writes.Flush(h->fd, &tokens_);
  Count(h, 0, queued - h->writes.bytes());
  int completed = static_cast<int>(tokens_.size() - before);
  if (err != 0 && err != -EAGAIN) h->writes.Clear(&tokens_);
  ReleaseTokens();
  if (h->writes.empty()) {
    if (h->shutdown_pending && err == 0) muxnet::ShutdownWrite(h->fd);
    UpdateInterest(h);
  }
  if (completed > 0) Emit(kEvWritten, id, completed, 0);
  if (err != 0 && err != -EAGAIN) Emit(kEvWriteError, id, err, 0);
}

void Loop::ApplyStagedLocked() {
  for (const Change& c : staged_) {
    // Errors here are for descriptors already gone: nothing to undo.
    ApplyChange(c);
    if (c.add) applied_adds_ = c.add_no;
  }
  staged_.clear();
}

void Loop::CloseWatched(int fd) {
  std::unique_lock<std::mutex> lock(mu_);
  // The helper touches the poller only while it holds mu_ or while helper_waiting_ is
  // set; get it out of Wait() (a wake-up) and keep it out until the fd is removed, so a
  // close never races a wait that still watches the number.
  poller_users_++;
  while (helper_waiting_) {
    if (!wake_pending_) {
      wake_pending_ = true;
      uint64_t one = 1;
      ssize_t ignored = write(wake_fd_, &one, sizeof one);
      (void)ignored;
    }
    cv_.wait(lock);
  }
  ApplyStagedLocked();
  poller_->Remove(fd);  // -ENOENT when it was not watched
  muxnet::Close(fd);
  poller_users_--;
  lock.unlock();
  cv_.notify_all();
}

void Loop::HelperMain() {
  std::vector<PollEvent> events(kMaxEvents);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    // The loop thread is closing a descriptor: let it use the poller first.
    cv_.wait(lock, [this] { return poller_users_ == 0 || stop_; });
    if (stop_) break;
    ApplyStagedLocked();
    uint64_t adds = applied_adds_;
    helper_waiting_ = true;
    lock.unlock();
    int n = poller_->Wait(-1, events.data(), kMaxEvents);
    lock.lock();
    helper_waiting_ = false;
    cv_.notify_all();
    if (stop_) break;
    int kept = 0;
    for (int i = 0; i < n; i++) {
      if (events[i].fd == wake_fd_) {
        uint64_t value;
        ssize_t ignored = read(wake_fd_, &value, sizeof value);
        (void)ignored;
        wake_pending_ = false;
        continue;
      }
      events[kept++] = events[i];
    }
    if (n < 0) {
      // Not expected (descriptors are removed before they close); back off instead of
      // spinning if the kernel keeps refusing.
      cv_.wait_for(lock, std::chrono::milliseconds(10));
      continue;
    }
    if (kept == 0) continue;
    ready_.assign(events.begin(), events.begin() + kept);
    ready_adds_ = adds;
    batch_ready_ = true;
    lock.unlock();
    host_->WakeFromHelper();
    lock.lock();
    // Parked until the loop thread has processed the batch, so level-triggered readiness
    // is not reported twice, and interest changes made meanwhile need no wake-up.
    cv_.wait(lock, [this] { return !batch_ready_ || stop_; });
  }
}

}  // namespace muxnet
