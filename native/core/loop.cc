// The loop core: see loop.h. The handle table, interest, dispatch, batches, timers and
// driving live here once, for every backend and every kind of handle.
#include "loop.h"

#include <cerrno>
#include <chrono>

#include "waiter.h"

namespace muxnet {

namespace {
// A wait fills at most this many events; a busier loop drains again.
constexpr int kMaxEvents = 1024;
// Inline drains at most this many full waits before yielding to Node's other callbacks.
constexpr int kMaxDrainRounds = 8;
}  // namespace

Loop::Loop(LoopHost* host, Event* batch, int capacity)
    : host_(host), batch_(batch), capacity_(capacity) {}

Loop::~Loop() {
  waiter_.reset();  // the helper thread stops first: nothing waits on what closes below
  for (auto& h : handles_) {
    if (h == nullptr || h->closed) continue;
    if (h->kind == HandleKind::kStream) {
      auto* s = static_cast<StreamHandle*>(h.get());
      DropWrites(s);
      if (s->read_token != nullptr) tokens_.push_back(s->read_token);
    }
    if (h->service != nullptr && h->kind == HandleKind::kStream) h->service->OnClosed(h->id);
    muxnet::Close(h->fd);
  }
  // Sends still in the kernel read their writers' memory until their results come: wait for
  // them (cancelled, they end at once) before letting go of it. Bounded: a kernel that
  // never answers costs a second, then the memory is let go of anyway.
  for (int round = 0; round < 100 && !parked_sends_.empty(); round++) {
    int n = poller_->Wait(10, events_.data(), static_cast<int>(events_.size()));
    for (int i = 0; i < n; i++)
      if (events_[i].events & kSent) ReleaseParked(events_[i].token);
  }
  for (const ParkedSend& p : parked_sends_) {
    tokens_.push_back(p.token);
    if (p.returned) pool_->Release(p.chunk);
  }
  parked_sends_.clear();
  ReleaseTokens();
  if (reserve_fd_ >= 0) muxnet::Close(reserve_fd_);
  for (auto& p : pipes_) {
    if (p.first >= 0) muxnet::Close(p.first);
    if (p.second >= 0) muxnet::Close(p.second);
  }
}

void Loop::StopWaiting() { waiter_.reset(); }

int Loop::Init(const LoopOptions& options) {
  int err = options.make_poller ? options.make_poller(&poller_)
                                : CreatePoller(options.backend, &poller_);
  if (err != 0) return err;
  PollerCaps caps = poller_->Caps();
  if (options.edge_triggered && !caps.edge) return -EINVAL;
  if (options.threaded && caps.inline_only) return -ENOTSUP;
  edge_ = options.edge_triggered;
  completion_ = caps.completion;
  receive_limit_ = caps.receive_limit;
  send_ = caps.send;
  connect_ = caps.connect;
  // A backend with no descriptor to nest in Node's loop (select, poll) waits on a helper
  // thread; one with a descriptor can do either.
  threaded_ = options.threaded || !caps.pollable;
  pool_ = std::make_unique<BufferPool>([this](int slab) { return host_->AllocateSlab(slab); },
                                       options.max_slabs);
  events_.resize(kMaxEvents);
  reserve_fd_ = OpenReserveFd();
  waiter_ = std::make_unique<Waiter>(poller_.get(), host_);
  return waiter_->Start(threaded_);
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

Loop::StreamHandle* Loop::GetStream(int id) const {
  Handle* h = Get(id);
  return h != nullptr && h->kind == HandleKind::kStream ? static_cast<StreamHandle*>(h) : nullptr;
}

Loop::ListenerHandle* Loop::GetListener(int id) const {
  Handle* h = Get(id);
  return h != nullptr && h->kind == HandleKind::kListener ? static_cast<ListenerHandle*>(h) : nullptr;
}

Loop::DatagramHandle* Loop::GetDatagram(int id) const {
  Handle* h = Get(id);
  return h != nullptr && h->kind == HandleKind::kDatagram ? static_cast<DatagramHandle*>(h) : nullptr;
}

Loop::Handle* Loop::FromToken(Token token) const {
  Handle* h = Get(static_cast<int32_t>(token & 0xffffffffu));
  // Another generation: the event belongs to an earlier owner of this id.
  return h != nullptr && h->generation == static_cast<uint32_t>(token >> 32) ? h : nullptr;
}

int Loop::Fd(int id) const {
  Handle* h = Get(id);
  return h != nullptr ? h->fd : -EBADF;
}

int Loop::AddHandle(std::unique_ptr<Handle> h, int fd) {
  int32_t id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
  } else {
    id = static_cast<int32_t>(handles_.size());
    handles_.emplace_back();
  }
  h->id = id;
  h->generation = ++generation_;
  h->fd = fd;
  h->counters.opened_ms = NowMs();
  handles_[id] = std::move(h);
  if (open_++ == 0) host_->SetActive(true);
  return id;
}

uint32_t Loop::DesiredInterest(const Handle& h) const {
  if (h.service != nullptr && h.kind == HandleKind::kStream) return h.service_interest;
  switch (h.kind) {
    case HandleKind::kListener:
    {
      const auto& l = static_cast<const ListenerHandle&>(h);
      return l.accepting && !UsesAccept(l) ? uint32_t{kReadable} : 0u;  // else: OnAccepted
    }
    case HandleKind::kStream: {
      // Edge-triggered connections are registered once for both directions: an edge is
      // never missed, and no epoll_ctl is needed when an operation starts or ends.
      if (edge_) return kReadable | kWritable | kEdge;
      const auto& s = static_cast<const StreamHandle&>(h);
      uint32_t interest = 0;
      // A completion backend's receive reports for itself (receive.cc).
      bool received = UsesReceive(s) && Received(s);
      if ((h.read_wanted && !received) || (s.read_mode != kReadNone && !UsesReceive(s))) interest |= kReadable;
      // A connect the backend does ends with its own event: until then, nothing to write.
      if (s.connect_sent) return interest;
      if (s.connecting || (!s.writes.empty() && !s.sending) || h.write_wanted) interest |= kWritable;
      return interest;
    }
    case HandleKind::kDatagram: {
      if (edge_) return kReadable | kWritable | kEdge;
      uint32_t interest = h.read_wanted ? uint32_t{kReadable} : 0u;
      if (h.write_wanted) interest |= kWritable;
      return interest;
    }
  }
  return 0;
}

int Loop::UpdateInterest(Handle* h) {
  uint32_t want = DesiredInterest(*h);
  // The helper gave up on a failing backend: whatever this handle would wait for now
  // would never be reported, so the operation that needs it fails instead.
  if (int dead = waiter_->dead(); dead != 0 && want != 0) return dead;
  if (want == h->interest && (want != 0) == h->registered) return 0;
  if (want == 0 && !h->registered) return 0;
  Waiter::Change c{h->fd, h->token(), want, want != 0 && !h->registered};
  int err = waiter_->Apply(c);
  if (err != 0) return err;  // the backend keeps what it had: so does the handle
  h->registered = want != 0;
  h->interest = want;
  return 0;
}

void Loop::FailHandle(Handle* h, int err) {
  int32_t id = h->id;
  switch (h->kind) {
    case HandleKind::kListener: {
      auto* l = static_cast<ListenerHandle*>(h);
      if (!l->accepting) return;
      l->accepting = false;
      Emit(kEvAcceptError, id, err, 0);
      return;
    }
    case HandleKind::kStream: {
      auto* s = static_cast<StreamHandle*>(h);
      if (s->service != nullptr) {
        Close(id);
        return;
      }
      if (s->connecting) {
        s->connecting = false;
        DropConnect(s);  // its result would report the connect again
        Emit(kEvConnected, id, err, 0);
        if ((s = GetStream(id)) == nullptr) return;
      }
      if (!s->writes.empty()) {
        DropWrites(s);
        ReleaseTokens();
        Emit(kEvWriteError, id, err, 0);
        if ((s = GetStream(id)) == nullptr) return;
      }
      if (s->read_mode != kReadNone) {
        EndRead(s);
        Emit(kEvRead, id, err, -1);
        if ((s = GetStream(id)) == nullptr) return;
      }
      if (s->read_wanted) Emit(kEvReadable, id, 1, 0);  // the read that follows fails too
      if ((s = GetStream(id)) != nullptr && s->write_wanted) Emit(kEvWritable, id, 0, 0);
      return;
    }
    case HandleKind::kDatagram:
      if (h->read_wanted) Emit(kEvReadable, id, 1, 0);
      if (h->write_wanted) Emit(kEvWritable, id, 0, 0);
      return;
  }
}

int Loop::Close(int id) {
  Handle* h = Get(id);
  if (h == nullptr) return -EBADF;
  if (h->kind == HandleKind::kStream) {
    // A send holds the socket open until it ends, as a receive does: DropWrites cancels it. Before
    // close(2): a send still to be submitted (this batch's) goes to the kernel with the
    // cancellation, and is carried out first if the socket takes its bytes at once, as a
    // readiness backend's write before the close would have been.
    auto* s = static_cast<StreamHandle*>(h);
    DropWrites(s);
    DropConnect(s);  // a connect holds the socket too (for minutes, if nothing answers)
  }
  // Deregister before close(2): the fd number may be reused at once.
  waiter_->CloseFd(h->fd, h->registered);
  h->registered = false;
  h->closed = true;
  if (h->kind == HandleKind::kStream) {
    auto* s = static_cast<StreamHandle*>(h);
    EndRead(s);
    // The receive holds the socket open in the kernel until it ends; its late results
    // carry a stale token, and their chunks come back (OnReceived).
    if (s->receiving) poller_->CancelReceive(s->token());
    s->receiving = false;
    DropReceived(s);
    if (s->service != nullptr) s->service->OnClosed(id);
  } else if (h->kind == HandleKind::kListener) {
    auto* l = static_cast<ListenerHandle*>(h);
    // As a receive, the accept holds the socket open until it ends; what it accepts late
    // is closed when its result comes (OnAccepted).
    if (l->accepts > 0 && !l->accept_cancelled) poller_->CancelAccept(l->token());
    for (int fd : l->accepted) muxnet::Close(fd);
    l->accepted.clear();
  }
  timers_.Cancel(id, kReadDeadline);
  timers_.Cancel(id, kWriteDeadline);
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

int Loop::SetOption(int id, int option, int a, int b, int c, int d) {
  Handle* h = Get(id);
  if (h == nullptr) return -EBADF;
  return ApplySocketOption(h->fd, option, a, b, c, d);
}

void Loop::EmitWritable(Handle* h) {
  h->write_wanted = false;
  UpdateInterest(h);  // a refusal keeps write interest: one spurious event at most
  Emit(kEvWritable, h->id, 0, 0);
}

int Loop::WantWrite(int id) {
  Handle* h = Get(id);
  if (h == nullptr || h->kind == HandleKind::kListener) return -EBADF;
  h->write_wanted = true;
  int err = UpdateInterest(h);
  if (err != 0) h->write_wanted = false;
  return err;
}

int Loop::WantRead(int id) {
  Handle* h = Get(id);
  if (h == nullptr || h->kind == HandleKind::kListener) return -EBADF;
  h->read_wanted = true;
  int err = UpdateInterest(h);
  if (err != 0) h->read_wanted = false;
  return err;
}

int Loop::PauseRead(int id) {
  Handle* h = Get(id);
  if (h == nullptr || h->kind == HandleKind::kListener) return -EBADF;
  h->read_wanted = false;
  UpdateInterest(h);  // a failure keeps the interest: readiness nobody asked for is dropped
  return 0;
}

ssize_t Loop::AfterReceive(Handle* h, ssize_t n, size_t bytes) {
  if (n >= 0) {
    Count(h, bytes, 0);
  } else if (n == -EAGAIN && !h->read_wanted) {
    h->read_wanted = true;
    int err = UpdateInterest(h);
    if (err != 0) {
      h->read_wanted = false;
      return err;
    }
  }
  return n;
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

void Loop::EmitRead(int32_t id, ssize_t n, int32_t chunk) {
  Emit(kEvRead, id, static_cast<int32_t>(n), chunk);
  if (n > 0 && (batch_bytes_ += static_cast<size_t>(n)) >= kBatchBytes) FlushBatch();
}

void Loop::FlushBatch() {
  batch_bytes_ = 0;
  if (count_ == 0) return;
  int n = count_;
  count_ = 0;
  host_->DeliverBatch(n);
  // Chunks the owner is done with go back now, not at the next wake-up: the next read
  // of this batch takes the one just written out, still in the cache.
  host_->ReturnChunks();
}

void Loop::Leave() {
  if (--depth_ > 0) return;
  for (int32_t id : closed_ids_) {
    handles_[id].reset();
    free_ids_.push_back(id);
  }
  closed_ids_.clear();
  if (completion_) {
    if (receiving_) ProvideChunks();  // the chunks the batch's owners gave back
    poller_->Defer(false);            // one submission for the whole batch
  }
}

void Loop::ReleaseTokens() {
  for (void* token : tokens_) host_->ReleaseToken(token);
  tokens_.clear();
}

void Loop::RunInline() {
  Enter();
  host_->ReturnChunks();
  for (int round = 0; round < kMaxDrainRounds; round++) {
    int n = waiter_->Poll(events_.data(), kMaxEvents);
    if (n <= 0) break;
    Process(events_.data(), n);
    if (n < kMaxEvents) break;
  }
  if (!accepted_due_.empty()) DeliverAccepted();
  FlushBatch();
  Leave();
}

void Loop::RunReady() {
  std::vector<PollEvent> events;
  std::vector<Waiter::Failure> failures;
  int fatal = 0;
  if (!waiter_->Take(&events, &failures, &fatal)) return;
  Enter();
  host_->ReturnChunks();
  for (const Waiter::Failure& f : failures) {
    Handle* h = FromToken(f.token);
    if (h == nullptr) continue;
    if (f.add) h->registered = false;
    h->interest = 0;  // unknown now: the next update rewrites it
    FailHandle(h, f.err);
  }
  Process(events.data(), static_cast<int>(events.size()));
  if (fatal != 0) {
    // The backend is dead: fail everything that waits on it rather than hang it.
    for (size_t id = 0; id < handles_.size(); id++) {
      if (Handle* h = Get(static_cast<int>(id))) FailHandle(h, fatal);
    }
  }
  if (!accepted_due_.empty()) DeliverAccepted();
  FlushBatch();
  Leave();
  waiter_->Done(&events);
}

void Loop::Process(const PollEvent* events, int n) {
  for (int i = 0; i < n; i++) {
    Handle* h = FromToken(events[i].token);
    uint32_t fired = events[i].events;
    if (fired & kReceived) {
      OnReceived(h, events[i]);  // also for a closed handle: its chunk comes back
      continue;
    }
    if (fired & kAccepted) {
      OnAccepted(h, events[i]);  // also for a closed listener: its connection is closed
      continue;
    }
    if (fired & kSent) {
      OnSent(h, events[i]);  // also for a closed handle: its memory is let go of
      continue;
    }
    if (fired & kConnected) {
      OnConnected(h, events[i]);  // also for a closed handle: its address is let go of
      continue;
    }
    if (h == nullptr) continue;  // closed earlier in this batch, or a stale generation
    if (h->service != nullptr && h->kind == HandleKind::kStream) {
      h->service->OnReady(this, h->id, h->fd, fired);
      continue;
    }
    switch (h->kind) {
      case HandleKind::kListener:
        OnListenerReady(static_cast<ListenerHandle*>(h));
        break;
      case HandleKind::kStream:
        OnStreamReady(static_cast<StreamHandle*>(h), fired);
        break;
      case HandleKind::kDatagram:
        OnDatagramReady(static_cast<DatagramHandle*>(h), fired);
        break;
    }
  }
}

}  // namespace muxnet
