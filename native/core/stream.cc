// Stream connections (TCP, Unix): connect, reads that complete, writes by reference,
// shutdown. This is the readiness implementation of the per-handle operations, written
// once over any readiness backend (wait, then the syscall, then complete, as Go's
// fd_unix.go does); a completion backend would submit the same operations instead.
#include <cerrno>

#include "loop.h"

namespace muxnet {

int Loop::Connect(const SockAddr& addr, int* id) {
  // A completion backend connects TCP sockets itself: one submission, its result the
  // connect's, where readiness takes connect(2), a writable wait and getsockopt(2). A Unix
  // socket connects at once or fails (-EAGAIN: the backlog is full), as Go reports it.
  const bool by_backend = connect_ && addr.family() != AF_UNIX;
  int fd;
  int err = muxnet::Connect(addr, &fd, !by_backend);
  if (err != 0 && err != -EINPROGRESS) return err;
  *id = AddHandle(std::make_unique<StreamHandle>(), fd);
  stats_.dialed++;
  StreamHandle* h = GetStream(*id);
  h->connecting = err == -EINPROGRESS;
  int rc = 0;
  if (by_backend) {
    auto to = std::make_unique<SockAddr>(addr);
    rc = poller_->Connect(fd, h->token(), &to->storage, static_cast<uint32_t>(to->len));
    if (rc == 0) {
      h->connect_sent = true;
      connect_addrs_[h->token()] = std::move(to);
    }
  }
  if (rc == 0) rc = UpdateInterest(h);
  if (rc != 0) {
    Close(*id);
    *id = -1;
    return rc;
  }
  return err;
}

ssize_t Loop::Read(int id, void* data, size_t len) {
  StreamHandle* h = GetStream(id);
  if (h == nullptr) return -EBADF;
  if (h->read_mode != kReadNone) return -EBUSY;  // the started read owns the next bytes
  if (UsesReceive(*h) && Received(*h)) {
    int unused;  // counted when received; -EAGAIN asks for kEvReadable
    return AfterReceive(h, TakeReceived(h, static_cast<char*>(data), len, &unused), 0);
  }
  ssize_t n = muxnet::Read(h->fd, data, len);
  if (n == -EAGAIN) h->may_read = false;
  return AfterReceive(h, n, n > 0 ? static_cast<size_t>(n) : 0);
}

ssize_t Loop::ReadChunk(int id, int* chunk) {
  StreamHandle* h = GetStream(id);
  if (h == nullptr) return -EBADF;
  if (h->read_mode != kReadNone) return -EBUSY;
  if (UsesReceive(*h) && Received(*h)) {
    return AfterReceive(h, TakeReceived(h, nullptr, 0, chunk), 0);
  }
  int index = pool_->Acquire();
  if (index < 0) return -ENOBUFS;
  ssize_t n = Read(id, pool_->Data(index), BufferPool::kChunkSize);
  if (n > 0) {
    *chunk = index;
    return n;
  }
  pool_->Release(index);
  return n;
}

ssize_t Loop::ReadOnce(StreamHandle* h, char* data, size_t len, int* chunk) {
  *chunk = -1;
  if (h->read_mode == kReadBuffer) {
    // The owner's memory may be gone since the read started (a detached ArrayBuffer):
    // look it up now, right before the syscall, on the thread that owns it.
    if (data == nullptr && !host_->ResolveBuffer(h->read_token, &data, &len)) return -EFAULT;
  } else {
    int index = pool_->Acquire();
    if (index < 0) {
      host_->ReturnChunks();  // chunks the host let go of since this batch began
      index = pool_->Acquire();
      if (index < 0) return -ENOBUFS;
    }
    *chunk = index;
    data = pool_->Data(index);
    len = BufferPool::kChunkSize;
  }
  ssize_t n = muxnet::Read(h->fd, data, len);
  if (n > 0) {
    Count(h, n, 0);
    // A short read drained the socket, unless the peer hung up: then EOF is still to come
    // and an edge-triggered socket will not report it again.
    if (static_cast<size_t>(n) < len && !h->read_hangup) h->may_read = false;
  } else {
    if (n == -EAGAIN) h->may_read = false;
    if (*chunk >= 0) pool_->Release(*chunk);
    *chunk = -1;
  }
  return n;
}

void Loop::EndRead(StreamHandle* h) {
  if (h->read_token != nullptr) tokens_.push_back(h->read_token);
  h->read_token = nullptr;
  h->read_mode = kReadNone;
  ReleaseTokens();
}

ssize_t Loop::ReadStart(int id, int mode, char* data, size_t len, MakeToken make_token,
                        void* context, int* chunk) {
  *chunk = -1;
  StreamHandle* h = GetStream(id);
  if (h == nullptr) return -EBADF;
  if (mode != kReadBuffer && mode != kReadChunk && mode != kReadStream) return -EINVAL;
  bool reading_on = mode == kReadStream && h->read_mode == kReadStream;
  if (h->read_mode != kReadNone && !reading_on) return -EBUSY;
  if (mode == kReadBuffer && len == 0) return -EINVAL;
  const bool receive = UsesReceive(*h);
  if (receive && !h->received.empty()) {
    // Received before this read started (receive.cc): it takes that now, as a read takes
    // what the socket holds.
    ssize_t n = TakeReceived(h, mode == kReadBuffer ? data : nullptr, len, chunk);
    h->read_mode = mode == kReadStream && n > 0 ? kReadStream : kReadNone;
    return n;
  }
  // An armed receive owns the next bytes; without one, a socket that may hold data is read
  // at once on either kind of backend (a completion backend arms a receive once it is dry).
  if (h->may_read && !h->connecting && !(receive && h->receiving)) {
    int32_t was = h->read_mode;
    h->read_mode = mode;  // ReadOnce reads where the mode says
    ssize_t n = ReadOnce(h, data, len, chunk);
    if (n != -EAGAIN) {
      // Data keeps a stream read started (the caller reads on until -EINPROGRESS);
      // anything else completes here. The read interest stays as it was (see ReadStop).
      h->read_mode = mode == kReadStream && n > 0 ? kReadStream : kReadNone;
      // A new stream read needs read interest; a refusal shows at the caller's next call,
      // which reaches the waiting path below.
      if (h->read_mode != was) UpdateInterest(h);
      return n;
    }
    h->read_mode = was;
  }
  if (receive) return ReceiveStart(h, mode, make_token, context);
  if (reading_on) return -EINPROGRESS;
  h->read_mode = mode;
  if (mode == kReadBuffer) h->read_token = make_token(context);
  int err = UpdateInterest(h);
  if (err != 0) {
    EndRead(h);
    return err;
  }
  return -EINPROGRESS;
}

int Loop::ReadStop(int id) {
  StreamHandle* h = GetStream(id);
  if (h == nullptr) return -EBADF;
  if (h->read_mode == kReadNone) return 0;
  EndRead(h);
  // A stream read's receive would go on taking data nobody reads: it ends now (results
  // already made wait for the next read). A single receive ends by itself.
  if (h->receiving && h->multishot) CancelReceive(h);
  // Level-triggered interest stays until readiness comes with nobody to serve (see
  // OnStreamReady): a Go-style reader starts its next read at once.
  return 0;
}

void Loop::CompleteReads(StreamHandle* h) {
  int32_t id = h->id;
  // Level-triggered: one read per event, the next event comes while data is left.
  // Edge-triggered: read on until drained, or this readiness is never reported again.
  for (;;) {
    int chunk;
    ssize_t n = ReadOnce(h, nullptr, 0, &chunk);
    if (n == -EAGAIN) return;  // a spurious wake-up: the read stays started
    bool stream = h->read_mode == kReadStream;
    if (!stream || n <= 0) EndRead(h);
    EmitRead(id, n, chunk);
    if ((h = GetStream(id)) == nullptr) return;  // closed by the owner meanwhile
    if (!stream || h->read_mode != kReadStream || !h->may_read || !edge_) return;
  }
}

template <typename Send, typename Push>
int Loop::StartWrite(int id, size_t len, size_t limit, MakeToken make_token, void* context, bool by_send,
                     Send send, Push push) {
  StreamHandle* h = GetStream(id);
  if (h == nullptr) return -EBADF;
  // A backend that sends (a completion backend) takes the request by reference, and the
  // send's result completes it: the batch's sends go to the kernel together at its end.
  const bool ring = by_send && UsesSend(*h) && !h->connecting;
  if (h->shutdown_pending || (ring && h->write_closed)) return -EPIPE;  // as send(2) would say
  if (len == 0) return 0;  // an empty request would never complete in the queue
  if (WritesPending(*h)) {
    if (h->writes.bytes() >= limit) return 2;
    push(h, 0, make_token(context));
    return 1;
  }
  size_t done = 0;
  if (!h->connecting && !ring) {
    if (int err = send(h, &done); err != 0) return err;
    if (done == len) return 0;
  }
  push(h, done, make_token(context));
  if (ring) {
    PumpSends(h);
    return 1;
  }
  int err = UpdateInterest(h);
  if (err != 0) {
    // Bytes already written stay written; the caller learns that the rest cannot be.
    h->writes.Clear(&tokens_);
    ReleaseTokens();
    return err;
  }
  return 1;
}

int Loop::Write(int id, const char* data, size_t len, size_t limit, MakeToken make_token,
                void* context) {
  auto send = [&](StreamHandle* h, size_t* done) -> int {
    iovec iov{const_cast<char*>(data), len};
    ssize_t n = Writev(h->fd, &iov, 1);
    if (n < 0) return n == -EAGAIN ? 0 : static_cast<int>(n);
    *done = static_cast<size_t>(n);
    Count(h, 0, n);
    return 0;
  };
  auto push = [&](StreamHandle* h, size_t skip, void* token) { h->writes.Push(data + skip, len - skip, token); };
  return StartWrite(id, len, limit, make_token, context, true, send, push);
}

int Loop::SendFile(int id, int file, int64_t offset, size_t len, size_t limit, MakeToken make_token,
                   void* context) {
  if (file < 0 || offset < 0) return -EINVAL;
  auto send = [&](StreamHandle* h, size_t* done) -> int {
    // Until the socket buffer is full: each call moves at most what the socket takes.
    while (*done < len) {
      int64_t at = offset + static_cast<int64_t>(*done);
      ssize_t n = muxnet::SendFile(h->fd, file, &at, len - *done);
      if (n == -EAGAIN) break;
      if (n == 0) return -ENODATA;
      if (n < 0) return static_cast<int>(n);
      *done += static_cast<size_t>(n);
      Count(h, 0, n);
    }
    return 0;
  };
  auto push = [&](StreamHandle* h, size_t skip, void* token) {
    h->writes.PushFile(file, offset + static_cast<int64_t>(skip), len - skip, token);
  };
  return StartWrite(id, len, limit, make_token, context, false, send, push);
}

int Loop::OpenPipe() {
  if (completion_) return -EOPNOTSUPP;
  int fds[2];
  if (int err = MakePipe(fds); err != 0) return err;
  for (size_t i = 0; i < pipes_.size(); i++) {
    if (pipes_[i].first < 0) {
      pipes_[i] = {fds[0], fds[1]};
      return static_cast<int>(i);
    }
  }
  pipes_.emplace_back(fds[0], fds[1]);
  return static_cast<int>(pipes_.size() - 1);
}

int Loop::ClosePipe(int pipe) {
  if (!PipeOpen(pipe)) return -EBADF;
  muxnet::Close(pipes_[pipe].first);
  muxnet::Close(pipes_[pipe].second);
  pipes_[pipe] = {-1, -1};
  return 0;
}

ssize_t Loop::SpliceIn(int id, int pipe, size_t len) {
  StreamHandle* h = GetStream(id);
  if (h == nullptr) return -EBADF;
  if (!PipeOpen(pipe)) return -EBADF;
  if (h->read_mode != kReadNone || Received(*h)) return -EBUSY;
  ssize_t n = Splice(h->fd, pipes_[pipe].second, len);
  if (n == -EAGAIN) h->may_read = false;
  return AfterReceive(h, n, n > 0 ? static_cast<size_t>(n) : 0);
}

ssize_t Loop::SpliceOut(int pipe, int id, size_t len) {
  StreamHandle* h = GetStream(id);
  if (h == nullptr) return -EBADF;
  if (!PipeOpen(pipe)) return -EBADF;
  if (h->shutdown_pending) return -EPIPE;
  if (WritesPending(*h) || h->connecting) return -EBUSY;  // the bytes would overtake them
  ssize_t n = Splice(pipes_[pipe].first, h->fd, len);
  if (n > 0) Count(h, 0, static_cast<size_t>(n));
  return n;
}

ssize_t Loop::TryWrite(int id, const char* data, size_t len) {
  StreamHandle* h = GetStream(id);
  if (h == nullptr) return -EBADF;
  if (h->shutdown_pending) return -EPIPE;
  if (WritesPending(*h) || h->connecting) return -EBUSY;
  if (len == 0) return 0;
  iovec iov{const_cast<char*>(data), len};
  ssize_t n = Writev(h->fd, &iov, 1);
  if (n == -EAGAIN) return 0;
  if (n > 0) Count(h, 0, n);
  return n;
}

int Loop::CancelWrites(int id) {
  StreamHandle* h = GetStream(id);
  if (h == nullptr) return -EBADF;
  DropWrites(h);
  ReleaseTokens();
  if (h->shutdown_pending && !h->connecting) {
    h->shutdown_pending = false;
    ShutWrite(h);
  }
  UpdateInterest(h);  // dropping write interest: a refusal only costs a spurious event
  return 0;
}

int Loop::ShutdownWrite(int id) {
  StreamHandle* h = GetStream(id);
  if (h == nullptr) return -EBADF;
  if (WritesPending(*h) || h->connecting) {
    h->shutdown_pending = true;
    return 0;
  }
  return ShutWrite(h);
}

Loop::StreamHandle* Loop::FinishConnect(StreamHandle* h, int err) {
  int32_t id = h->id;
  h->connecting = false;
  h->connect_sent = false;
  // Writes made while connecting: a backend that sends starts on them now; readiness
  // flushes them when the socket is writable (the interest below asks for it).
  if (UsesSend(*h) && err == 0 && !h->writes.empty()) PumpSends(h);
  if (int rc = UpdateInterest(h); rc != 0 && err == 0) err = rc;
  Emit(kEvConnected, id, err, 0);
  if ((h = GetStream(id)) == nullptr) return nullptr;
  if (h->shutdown_pending && h->writes.empty() && !h->sending) ShutWrite(h);
  // A read started while connecting on a completion backend: its receive starts now.
  if (UsesReceive(*h) && h->read_mode != kReadNone && !h->receiving) {
    if (int rc = ArmReceive(h); rc != 0) {
      EndRead(h);
      EmitRead(id, rc, -1);
      return GetStream(id);
    }
  }
  return h;
}

void Loop::OnConnected(Handle* handle, const PollEvent& e) {
  connect_addrs_.erase(e.token);
  StreamHandle* h = handle != nullptr && handle->kind == HandleKind::kStream ? static_cast<StreamHandle*>(handle) : nullptr;
  if (h == nullptr || !h->connect_sent) return;  // closed since: the result is nobody's
  FinishConnect(h, e.result);
}

void Loop::OnStreamReady(StreamHandle* h, uint32_t events) {
  int32_t id = h->id;
  if (events & kHangup) events |= kReadable | kWritable;
  if (h->connecting) {
    if (h->connect_sent || !(events & kWritable)) return;  // OnConnected ends it
    if ((h = FinishConnect(h, ConnectResult(h->fd))) == nullptr) return;
  }
  if ((events & kWritable) && !h->writes.empty() && !h->sending) {
    FlushWrites(h);
    if ((h = GetStream(id)) == nullptr) return;
  }
  if ((events & kWritable) && h->write_wanted) {
    EmitWritable(h);
    if ((h = GetStream(id)) == nullptr) return;
  }
  if (!(events & kReadable)) return;
  if (events & (kHangup | kReadHangup)) h->read_hangup = true;
  // On a completion backend a receive owns the socket's bytes once armed: its results are
  // the reports (receive.cc), and a read here would take bytes out of order.
  if (UsesReceive(*h) && (Received(*h) || h->read_mode != kReadNone)) return;
  h->may_read = true;
  const bool served = h->read_mode != kReadNone;
  if (served) {
    CompleteReads(h);
    if ((h = GetStream(id)) == nullptr) return;
  }
  // Edge-triggered readiness is reported to an owner that started no read whether it asked
  // or not: the edge will not come again. A started read took it (its kEvRead is the report,
  // and may_read keeps what is left for the next read), so it is not reported twice.
  if (h->read_wanted || (edge_ && !served && h->read_mode == kReadNone)) {
    Emit(kEvReadable, id, h->read_hangup ? 1 : 0, 0);
    return;
  }
  // Level-triggered readiness that nobody asked for: stop watching, or it fires forever.
  // The socket stays marked as holding data, so the next read does not wait. Readiness that
  // served a read keeps the interest: its owner starts the next read within this batch
  // (a Go-style loop), and dropping it here would cost two epoll_ctl per message.
  if (!edge_ && !served && h->read_mode == kReadNone) UpdateInterest(h);
}

int Loop::ShutWrite(StreamHandle* h) {
  h->write_closed = true;
  return muxnet::ShutdownWrite(h->fd);
}

void Loop::FlushWrites(StreamHandle* h) {
  int32_t id = h->id;
  size_t before = tokens_.size();
  size_t queued = h->writes.bytes();
  int err = h->writes.Flush(h->fd, &tokens_);
  Count(h, 0, queued - h->writes.bytes());
  int completed = static_cast<int>(tokens_.size() - before);
  if (err != 0 && err != -EAGAIN) h->writes.Clear(&tokens_);
  ReleaseTokens();
  if (h->writes.empty()) {
    if (h->shutdown_pending && err == 0) ShutWrite(h);
    UpdateInterest(h);
  }
  if (completed > 0) Emit(kEvWritten, id, completed, 0);
  if (err != 0 && err != -EAGAIN) Emit(kEvWriteError, id, err, 0);
}

}  // namespace muxnet
