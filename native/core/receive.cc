// Stream I/O on a completion backend (io_uring). Reads: the same ReadStart/ReadStop/Read contract
// as stream.cc, served by receives into pool chunks the kernel picks from a buffer ring the
// loop keeps stocked. Where the kernel can end a multishot receive at a byte limit (Linux
// 6.16+), a single read (Go-style read(), readChunk()) arms one that goes on across reads
// until kReceiveLimit bytes; elsewhere it submits one receive of its own. A stream read
// (onData, for await) arms one multishot receive without a limit. A read that stops
// (ReadStop, a deadline) cancels a multishot receive. So a connection whose owner is not
// reading holds at most what the receive made before its cancellation or its limit; those
// results wait here in order for the next read (kMaxReceived cancels a receive that runs on
// regardless), and the rest stays in the kernel, as it does for a readiness backend whose
// owner is not reading.
//
// Writes: the queue's memory requests go to the kernel as one send from the writers' memory
// (one in flight, so order holds; what is written meanwhile waits behind it), and its result
// completes those it took whole.
// The requests a send in flight took keep their memory until the result comes, also when the
// queue is dropped or the socket closed: their tokens and the pool chunks they lie in wait in
// parked_sends_ (~Loop waits for them).
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "loop.h"

namespace muxnet {

namespace {
// The buffer ring holds at most this many chunks (16 MiB of the pool), and at most a quarter
// of the pool: the rest is for what the owner still holds (chunks being written out).
constexpr int kRingChunks = 256;
// It starts with one slab's worth and doubles when a batch took most of what it held. The
// kernel takes the ring's chunks in turn, each a little way into its memory, so every chunk
// in the ring is soon memory the process holds: a few busy connections touch 16 chunks, not
// 256 (1 MiB of 4 KiB pages, and the slabs, all in `arrayBuffers`). It does not shrink: the
// pages a burst touched stay the process's anyway (the pool keeps its slabs).
constexpr int kRingChunksFirst = 16;
}  // namespace

void Loop::ProvideChunks() {
  int most = std::min({poller_->ChunkCapacity(), pool_->capacity() / 4, kRingChunks});
  if (ring_target_ == 0) {
    ring_target_ = std::min(most, kRingChunksFirst);
  } else if (poller_->ProvidedChunks() <= ring_target_ / 4 && ring_target_ < most) {
    // A quarter or less left (none: a receive ended with -ENOBUFS): twice as many.
    ring_target_ = std::min(most, ring_target_ * 2);
  }
  while (poller_->ProvidedChunks() < ring_target_) {
    int chunk = pool_->Acquire();
    if (chunk < 0) {
      host_->ReturnChunks();  // chunks the host let go of since the batch began
      if ((chunk = pool_->Acquire()) < 0) return;
    }
    if (poller_->ProvideChunk(chunk, pool_->Data(chunk), BufferPool::kChunkSize) != 0) {
      pool_->Release(chunk);
      return;
    }
  }
}

int Loop::ArmReceive(StreamHandle* h) {
  if (!receiving_) {
    receiving_ = true;  // from now on Leave() keeps the ring stocked
    ProvideChunks();
  }
  if (h->receive_shots == 0) {
    // A multishot receive on a Unix stream socket misses the end of stream that is there
    // with its last bytes when it is armed (Linux 6.18: it takes the bytes and waits on):
    // those sockets receive once per arming, a stream read arming again after each result.
    SockAddr local;
    h->receive_shots = LocalAddr(h->fd, &local) == 0 && local.family() == AF_UNIX ? 1 : 2;
  }
  // A single read's receive goes on too where the kernel limits it: the next reads find
  // their results without arming again (one poll set up and torn down per message
  // otherwise). The limit bounds what a reader that stops takes; ReadStop cancels it.
  bool multishot = h->receive_shots == 2 && (receive_limit_ || h->read_mode == kReadStream);
  // The kernel ends it at the first result that reaches its limit, which may take up to a
  // chunk more: so the limit is a chunk short of kReceiveLimit. A stream read's receive has
  // none: it goes on until the read stops (ReadStop cancels it) or results pile up
  // (kMaxReceived). Ended every 192 KiB, an echoed stream fell into step with its peer
  // (take 192 KiB, send them, arm again, wait for the next burst) at up to twice the CPU per
  // MiB of an unlimited receive.
  bool limited = multishot && receive_limit_ && h->read_mode != kReadStream;
  uint32_t limit = limited ? kReceiveLimit - BufferPool::kChunkSize : 0;
  int err = poller_->Receive(h->fd, h->token(), multishot, limit);
  if (err == 0) {
    h->receiving = true;
    h->multishot = multishot;
    h->receive_cancelled = false;
  }
  return err;
}

void Loop::CancelReceive(StreamHandle* h) {
  h->receive_cancelled = poller_->CancelReceive(h->token()) == 0;
}

void Loop::DropReceived(StreamHandle* h) {
  for (const auto& r : h->received) {
    if (r.chunk >= 0) pool_->Release(r.chunk);
  }
  h->received.clear();
}

ssize_t Loop::TakeReceived(StreamHandle* h, char* data, size_t len, int* chunk) {
  *chunk = -1;
  if (h->received.empty()) return -EAGAIN;
  StreamHandle::Received& r = h->received.front();
  if (r.n <= 0 || data == nullptr) {  // the end, an error, or a whole chunk for a chunk read
    ssize_t n = r.n;
    *chunk = r.chunk;
    h->received.erase(h->received.begin());
    return n;
  }
  // Into the caller's memory: what does not fit stays first, moved to the chunk's start.
  size_t n = std::min(len, static_cast<size_t>(r.n));
  char* from = pool_->Data(r.chunk);
  memcpy(data, from, n);
  if (n < static_cast<size_t>(r.n)) {
    memmove(from, from + n, r.n - n);
    r.n -= static_cast<int32_t>(n);
  } else {
    pool_->Release(r.chunk);
    h->received.erase(h->received.begin());
  }
  return static_cast<ssize_t>(n);
}

ssize_t Loop::ReceiveStart(StreamHandle* h, int mode, MakeToken make_token, void* context) {
  if (mode == kReadStream && h->read_mode == kReadStream && h->receiving) return -EINPROGRESS;
  h->read_mode = mode;
  if (mode == kReadBuffer) h->read_token = make_token(context);
  // A connecting socket is armed when the connect completes (stream.cc); a receive still
  // armed (a stopped stream's, being cancelled) serves this read first: never two at once.
  if (!h->receiving && !h->connecting) {
    if (int err = ArmReceive(h); err != 0) {
      EndRead(h);
      return err;
    }
  }
  return -EINPROGRESS;
}

void Loop::CompleteReceived(StreamHandle* h, int32_t n, int32_t chunk) {
  int32_t id = h->id;
  if (h->read_mode == kReadBuffer && n > 0) {
    char* data;
    size_t len;
    // The owner's memory may be gone (a detached ArrayBuffer): the bytes stay for the next
    // read, this one fails.
    if (!host_->ResolveBuffer(h->read_token, &data, &len)) {
      h->received.insert(h->received.begin(), {n, chunk});
      EndRead(h);
      EmitRead(id, -EFAULT, -1);
      return;
    }
    h->received.insert(h->received.begin(), {n, chunk});
    int unused;
    ssize_t got = TakeReceived(h, data, len, &unused);
    EndRead(h);
    EmitRead(id, got, -1);
    return;
  }
  if (h->read_mode != kReadStream || n <= 0) EndRead(h);
  EmitRead(id, n, chunk);
}

void Loop::OnReceived(Handle* handle, const PollEvent& e) {
  StreamHandle* h = handle != nullptr && handle->kind == HandleKind::kStream ? static_cast<StreamHandle*>(handle) : nullptr;
  if (h == nullptr) {
    // The socket was closed after the kernel filled this chunk: the chunk comes back.
    if (e.chunk >= 0) pool_->Release(e.chunk);
    return;
  }
  int32_t n = e.result;
  if (!(e.events & kMore)) {
    h->receiving = false;
    // A chunk filled to the brim, or a receive that ended early, may have left data in the
    // socket: the next read looks there first. A short receive drained it.
    h->may_read = !(n > 0 && static_cast<size_t>(n) < BufferPool::kChunkSize);
  }
  if (n == -ECANCELED || n == -ENOBUFS) {
    // Ended on purpose (too much waiting here) or the ring ran dry: armed again while a
    // read waits and nothing received is left for it.
    if (n == -ENOBUFS) ProvideChunks();
    if (h->receiving || !h->received.empty() || (h->read_mode == kReadNone && !h->read_wanted)) return;
    int err = n == -ENOBUFS && poller_->ProvidedChunks() == 0 ? -ENOBUFS : ArmReceive(h);
    if (err != 0 && h->read_mode != kReadNone) {
      int32_t id = h->id;
      EndRead(h);  // the pool is out, as a readiness read's -ENOBUFS
      EmitRead(id, err, -1);
    }
    return;
  }
  if (n > 0) Count(h, n, 0);
  if (n == 0) h->read_hangup = true;
  if (h->received.empty() && h->read_mode != kReadNone) {
    int32_t id = h->id;
    CompleteReceived(h, n, e.chunk);
    // A stream read whose single receive (started for an earlier read) ended reads on.
    if ((h = GetStream(id)) != nullptr && n > 0 && h->read_mode == kReadStream && !h->receiving) {
      if (int err = ArmReceive(h); err != 0) {
        EndRead(h);
        EmitRead(id, err, -1);
      }
    }
    return;
  }
  h->received.push_back({n, e.chunk});
  // Nobody reads: stop taking data from the kernel once a few results wait here. Tried again
  // at each result while the cancellation did not reach the backend (a full ring whose
  // io_uring_enter failed): an unlimited receive would otherwise take the whole ring.
  if (h->received.size() >= kMaxReceived && h->receiving && !h->receive_cancelled) CancelReceive(h);
  if (h->received.size() == 1 && h->read_wanted) Emit(kEvReadable, h->id, h->read_hangup ? 1 : 0, 0);
}

// --- Sends: a stream's writes from the writers' memory, one send in flight per socket.

void Loop::PumpSends(StreamHandle* h) {
  if (h->sending || h->connecting) return;
  if (h->writes.empty()) {
    // No interest to change: a queue whose head was being sent asked for none.
    if (h->shutdown_pending) ShutWrite(h);
    return;
  }
  // What queued behind the last send goes out in one: a send per request would leave the
  // queue to grow behind a stream that receives several chunks per wake-up.
  iovec iov[kSendIov];
  int count = h->writes.Gather(iov, kSendIov);
  if (count > 0 && poller_->Send(h->fd, h->token(), iov, count) == 0) {
    h->sending = true;
    h->send_requests = static_cast<uint8_t>(count);
    return;
  }
  // A file request at the head, or a ring that took no more: readiness flushes the queue.
  UpdateInterest(h);
}

void Loop::DropWrites(StreamHandle* h) {
  if (!h->sending || h->send_dropped) {
    h->writes.Clear(&tokens_);
    return;
  }
  // The requests the send took are what the kernel may still read: their tokens, and the
  // pool chunks their bytes lie in (an echoed pool view, which the owner gives back as soon
  // as the write fails), wait for the send's result. The cancellation brings it soon; a
  // cancellation that does not reach the kernel (a failing io_uring_enter) leaves the send
  // waiting for room, reading that memory, for as long as it takes.
  iovec iov[kSendIov];
  int taken = h->writes.Gather(iov, h->send_requests);  // at most kSendIov, as PumpSends gave
  size_t first = tokens_.size();
  h->writes.Clear(&tokens_);
  taken = std::min(taken, static_cast<int>(tokens_.size() - first));
  for (int i = 0; i < taken; i++) {
    int chunk = pool_->ChunkOf(static_cast<const char*>(iov[i].iov_base));
    parked_sends_.push_back({h->token(), tokens_[first + i], chunk, false});
  }
  tokens_.erase(tokens_.begin() + static_cast<std::ptrdiff_t>(first),
                tokens_.begin() + static_cast<std::ptrdiff_t>(first + taken));
  h->send_dropped = true;
  poller_->CancelSend(h->token());
}

int Loop::ReleaseChunk(int chunk) {
  bool parked = false;
  for (ParkedSend& p : parked_sends_) {
    if (chunk < 0 || p.chunk != chunk) continue;
    parked = true;
    if (p.returned) continue;
    p.returned = true;  // the pool takes it when that send ends
    return 0;
  }
  // Given back once for each send that reads from it: once more is a chunk that is not out.
  return parked ? -EINVAL : pool_->Release(chunk);
}

void Loop::ReleaseParked(Token owner) {
  std::vector<int> returned;
  for (size_t i = 0; i < parked_sends_.size();) {
    const ParkedSend& p = parked_sends_[i];
    if (p.owner != owner) {
      i++;
      continue;
    }
    tokens_.push_back(p.token);
    if (p.returned) returned.push_back(p.chunk);
    parked_sends_.erase(parked_sends_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  // A chunk that another dropped send also reads from waits for that one.
  for (int chunk : returned) ReleaseChunk(chunk);
}

void Loop::OnSent(Handle* handle, const PollEvent& e) {
  StreamHandle* h = handle != nullptr && handle->kind == HandleKind::kStream ? static_cast<StreamHandle*>(handle) : nullptr;
  if (h == nullptr || h->send_dropped) {
    // Its request left the queue (a close, CancelWrites): the memory is free to go now.
    ReleaseParked(e.token);
    ReleaseTokens();
    if (h != nullptr) {
      h->sending = false;
      h->send_dropped = false;
      PumpSends(h);  // writes made since wait behind it
    }
    return;
  }
  h->sending = false;
  int32_t id = h->id;
  if (e.result > 0) {
    Count(h, 0, e.result);
    size_t before = tokens_.size();
    h->writes.Advance(static_cast<size_t>(e.result), &tokens_);
    int completed = static_cast<int>(tokens_.size() - before);
    ReleaseTokens();
    PumpSends(h);
    if (completed > 0) Emit(kEvWritten, id, completed, 0);
    return;
  }
  if (e.result == -EAGAIN || e.result == -EINTR) {
    // The kernel gave the send back with nothing sent instead of waiting for room (seen
    // with -EAGAIN under the API fuzz): not an error. Readiness flushes the queue from here
    // (writev, then the pending shutdown), as it does for a queue the ring did not take.
    UpdateInterest(h);
    return;
  }
  // An error (a reset, EPIPE after the peer closed) fails every queued write, as a failed
  // writev does on readiness.
  int err = e.result < 0 ? e.result : -EPIPE;
  h->writes.Clear(&tokens_);
  ReleaseTokens();
  UpdateInterest(h);
  Emit(kEvWriteError, id, err, 0);
}

}  // namespace muxnet
