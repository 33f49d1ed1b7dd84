// Reads that complete (Loop::ReadStart/ReadStop), over every backend and mode: into the
// caller's memory, a pool chunk, or a stream of chunks; detached buffers, Close with a read
// started, and stale events for a closed id that was handed out again.
#ifndef _WIN32
#include <sys/ioctl.h>  // TIOCOUTQ
#endif

#include <cstring>
#include <memory>
#include <string>

#include "../core/loop.h"
#include "check.h"
#include "fault_poller.h"
#include "test_util.h"

using namespace muxnet;
using namespace muxtest;

namespace {

// Waits until fd is readable (the bytes a peer sent have arrived).
void WaitReadable(int fd, const std::string& cfg) {
    CHECK(WaitFd(fd, false, 3000) == 1, "%s: fd %d never readable", cfg.c_str(), fd);
}

// The bytes a peer sent have arrived: in the socket, or, on a completion backend whose
// receive is armed, taken by the receive (a few turns of the loop deliver its results).
void WaitArrived(Loop* loop, MockHost* host, int fd, const std::string& cfg) {
  if (!loop->caps().completion) return WaitReadable(fd, cfg);
  for (int i = 0; i < 10; i++) Pump(loop, host, 5);
}

// Pumps until a kEvRead for id arrives after log entry `mark`; returns it.
Event PumpUntilRead(Loop* loop, MockHost* host, int id, size_t mark, const std::string& cfg) {
  const Event* found = nullptr;
  bool ok = PumpUntil(loop, host, [&] {
    for (size_t i = mark; i < host->log.size(); i++)
      if (host->log[i].kind == kEvRead && host->log[i].id == id) return (found = &host->log[i]) != nullptr;
    return false;
  });
  CHECK(ok, "%s: no kEvRead for %d", cfg.c_str(), id);
  return *found;
}

int CountAfter(const MockHost& host, size_t mark, int32_t kind, int32_t id) {
  int n = 0;
  for (size_t i = mark; i < host.log.size(); i++)
    n += host.log[i].kind == kind && host.log[i].id == id;
  return n;
}

void Send(int fd, const char* s) {
  CHECK(RawWrite(fd, s, strlen(s)) == static_cast<ssize_t>(strlen(s)));
}

// One loop, a listener and an accepted raw peer: what every test here starts from.
struct Fixture {
  std::string cfg;
  MockHost host;
  std::unique_ptr<Loop> loop;
  int lid = -1, port = 0, peer = -1, sid = -1;
  explicit Fixture(const Config& c) : cfg(c.Name()) {
    loop = MakeLoop(&host, c);
    lid = ListenLocal(loop.get(), &port);
    std::tie(peer, sid) = AcceptRaw(loop.get(), &host, lid, port, cfg);
  }
  ~Fixture() {
    loop.reset();
    if (peer >= 0) RawClose(peer);
  }
  // Starts a stream read on the empty server socket.
  void StartStream() {
    int chunk = -1;
    ssize_t n = loop->ReadStart(sid, kReadStream, nullptr, 0, nullptr, nullptr, &chunk);
    CHECK(n == -EINPROGRESS, "%s: ReadStart(stream) on an empty socket -> %zd", cfg.c_str(), n);
  }
  // The peer sends m; returns what the next kEvRead's chunk holds (the chunk goes back).
  std::string SendAndReadChunk(const char* m) {
    size_t mark = host.log.size();
    Send(peer, m);
    Event e = PumpUntilRead(loop.get(), &host, sid, mark, cfg);
    CHECK(e.a > 0 && e.b >= 0, "%s: kEvRead a=%d b=%d", cfg.c_str(), e.a, e.b);
    std::string got(loop->pool()->Data(e.b), e.a);
    CHECK(loop->ReleaseChunk(e.b) == 0);
    return got;
  }
};

}  // namespace

TEST(read_start_buffer_completes_at_once_or_with_one_event) {
  for (const Config& c : LoopConfigs()) {
    Fixture f(c);
    Loop* loop = f.loop.get();
    char buf[64] = {};
    MockHost::BufferRef ref{&f.host, buf, sizeof buf};
    int chunk = 7;
    // Data already there: the read completes in the call, with no token.
    Send(f.peer, "hello");
    WaitArrived(loop, &f.host, loop->Fd(f.sid), f.cfg);
    ssize_t n = loop->ReadStart(f.sid, kReadBuffer, buf, sizeof buf, MockHost::MakeBufferToken, &ref, &chunk);
    CHECK(n == 5 && memcmp(buf, "hello", 5) == 0, "%s: ReadStart with data -> %zd", f.cfg.c_str(), n);
    CHECK(chunk == -1 && f.host.tokens_made == 0, "%s: chunk %d, %d tokens", f.cfg.c_str(), chunk, f.host.tokens_made);
    // Nothing there: -EINPROGRESS, then exactly one kEvRead with the bytes in buf.
    memset(buf, 0, sizeof buf);
    size_t mark = f.host.log.size();
    n = loop->ReadStart(f.sid, kReadBuffer, buf, sizeof buf, MockHost::MakeBufferToken, &ref, &chunk);
    CHECK(n == -EINPROGRESS, "%s: ReadStart on an empty socket -> %zd", f.cfg.c_str(), n);
    CHECK(f.host.tokens_made == 1, "%s: %d tokens for a waiting read", f.cfg.c_str(), f.host.tokens_made);
    CHECK(loop->ReadStart(f.sid, kReadChunk, nullptr, 0, nullptr, nullptr, &chunk) == -EBUSY,
          "%s: a second read started", f.cfg.c_str());
    Send(f.peer, "world");
    Event e = PumpUntilRead(loop, &f.host, f.sid, mark, f.cfg);
    CHECK(e.a == 5 && e.b == -1 && memcmp(buf, "world", 5) == 0, "%s: kEvRead a=%d b=%d buf='%s'",
          f.cfg.c_str(), e.a, e.b, buf);
    CHECK(f.host.tokens_released == 1 && f.host.live_tokens.empty(), "%s: token released %d times",
          f.cfg.c_str(), f.host.tokens_released);
    // More bytes with no read started: no second kEvRead; they wait for the next read.
    Send(f.peer, "!");
    WaitArrived(loop, &f.host, loop->Fd(f.sid), f.cfg);
    for (int i = 0; i < 3; i++) Pump(loop, &f.host, 5);
    CHECK(CountAfter(f.host, mark, kEvRead, f.sid) == 1, "%s: %d kEvRead for one read", f.cfg.c_str(),
          CountAfter(f.host, mark, kEvRead, f.sid));
    char b;
    CHECK(loop->Read(f.sid, &b, 1) == 1 && b == '!', "%s: later bytes lost", f.cfg.c_str());
    CheckClean(&f.host, f.cfg);
  }
}

TEST(read_start_chunk_event_carries_a_pool_chunk_with_the_bytes) {
  for (const Config& c : LoopConfigs()) {
    Fixture f(c);
    Loop* loop = f.loop.get();
    int chunk = -1;
    ssize_t n = loop->ReadStart(f.sid, kReadChunk, nullptr, 0, nullptr, nullptr, &chunk);
    CHECK(n == -EINPROGRESS && chunk == -1, "%s: ReadStart(chunk) on an empty socket -> %zd", f.cfg.c_str(), n);
    size_t mark = f.host.log.size();
    Send(f.peer, "chunky");
    Event e = PumpUntilRead(loop, &f.host, f.sid, mark, f.cfg);
    CHECK(e.a == 6 && e.b >= 0, "%s: kEvRead a=%d b=%d", f.cfg.c_str(), e.a, e.b);
    CHECK(memcmp(loop->pool()->Data(e.b), "chunky", 6) == 0, "%s: chunk lacks the bytes", f.cfg.c_str());
    CHECK(loop->ReleaseChunk(e.b) == 0, "%s: ReleaseChunk", f.cfg.c_str());
    CHECK(loop->ReleaseChunk(e.b) == -EINVAL, "%s: a chunk released twice", f.cfg.c_str());
    // Data there: the chunk comes back from the call.
    Send(f.peer, "again");
    WaitArrived(loop, &f.host, loop->Fd(f.sid), f.cfg);
    // (the loop may have seen the readiness already; either way the bytes come in this call
    // or in the one event that follows)
    n = loop->ReadStart(f.sid, kReadChunk, nullptr, 0, nullptr, nullptr, &chunk);
    if (n == -EINPROGRESS) {
      Event g = PumpUntilRead(loop, &f.host, f.sid, f.host.log.size(), f.cfg);
      n = g.a;
      chunk = g.b;
    }
    CHECK(n == 5 && chunk >= 0 && memcmp(loop->pool()->Data(chunk), "again", 5) == 0,
          "%s: second chunk read -> %zd", f.cfg.c_str(), n);
    CHECK(loop->ReleaseChunk(chunk) == 0);
    CHECK(f.host.tokens_made == 0, "%s: a chunk read made a token", f.cfg.c_str());
    CheckClean(&f.host, f.cfg);
  }
}

TEST(read_start_stream_delivers_each_read_in_order_until_eof) {
  for (const Config& c : LoopConfigs()) {
    Fixture f(c);
    Loop* loop = f.loop.get();
    f.StartStream();
    std::string got;
    for (const char* m : {"one", "two", "three"}) got += f.SendAndReadChunk(m);
    CHECK(got == "onetwothree", "%s: stream read '%s'", f.cfg.c_str(), got.c_str());
    size_t mark = f.host.log.size();
    RawShutdownWrite(f.peer);
    Event e = PumpUntilRead(loop, &f.host, f.sid, mark, f.cfg);
    CHECK(e.a == 0 && e.b == -1, "%s: EOF as kEvRead a=%d b=%d", f.cfg.c_str(), e.a, e.b);
    // The stream has ended: a plain read is allowed again (not -EBUSY) and sees EOF.
    char b;
    CHECK(loop->Read(f.sid, &b, 1) == 0, "%s: stream still started after EOF", f.cfg.c_str());
    CHECK(CountAfter(f.host, mark, kEvRead, f.sid) == 1);
    CheckClean(&f.host, f.cfg);
  }
}

// Edge-triggered epoll reports a FIN that arrives with the last bytes once, with them: the
// stream must read on past the data to deliver EOF.
TEST(read_start_stream_delivers_eof_that_came_with_data) {
  for (const Config& c : LoopConfigs()) {
    Fixture f(c);
    Loop* loop = f.loop.get();
    f.StartStream();
    size_t mark = f.host.log.size();
    Send(f.peer, "tail");
    RawShutdownWrite(f.peer);
    CHECK(WaitHangup(loop->Fd(f.sid), 3000) == 1, "%s: FIN never arrived", f.cfg.c_str());
    bool ok = PumpUntil(loop, &f.host, [&] {
      for (size_t i = mark; i < f.host.log.size(); i++)
        if (f.host.log[i].kind == kEvRead && f.host.log[i].a == 0) return true;
      return false;
    });
    CHECK(ok, "%s: EOF after data never delivered (%d kEvRead)", f.cfg.c_str(),
          CountAfter(f.host, mark, kEvRead, f.sid));
    std::string got;
    for (size_t i = mark; i < f.host.log.size(); i++) {
      const Event& e = f.host.log[i];
      if (e.kind != kEvRead || e.a <= 0) continue;
      got.append(loop->pool()->Data(e.b), e.a);
      CHECK(loop->ReleaseChunk(e.b) == 0);
    }
    CHECK(got == "tail", "%s: read '%s' before EOF", f.cfg.c_str(), got.c_str());
    CheckClean(&f.host, f.cfg);
  }
}

TEST(read_start_stop_ends_a_stream_and_leaves_the_bytes) {
  for (const Config& c : LoopConfigs()) {
    Fixture f(c);
    Loop* loop = f.loop.get();
    f.StartStream();
    CHECK(f.SendAndReadChunk("a") == "a");
    CHECK(loop->ReadStop(f.sid) == 0);
    CHECK(loop->ReadStop(f.sid) == 0, "%s: ReadStop without a read", f.cfg.c_str());
    size_t mark = f.host.log.size();
    Send(f.peer, "b");
    // kEvReadable proves the loop has processed the socket's readiness since the stop.
    CHECK(loop->WantRead(f.sid) == 0);
    CHECK(PumpUntil(loop, &f.host, [&] { return CountAfter(f.host, mark, kEvReadable, f.sid) > 0; }),
          "%s: no readiness after ReadStop", f.cfg.c_str());
    CHECK(CountAfter(f.host, mark, kEvRead, f.sid) == 0, "%s: kEvRead after ReadStop", f.cfg.c_str());
    char b;
    CHECK(loop->Read(f.sid, &b, 1) == 1 && b == 'b', "%s: bytes after ReadStop lost", f.cfg.c_str());
    CheckClean(&f.host, f.cfg);
  }
}

// The buffer's owner let it go (a detached ArrayBuffer) while the read waited: the read
// fails with -EFAULT and takes nothing from the socket.
TEST(read_start_detached_buffer_fails_with_efault_and_consumes_nothing) {
  for (const Config& c : LoopConfigs()) {
    Fixture f(c);
    Loop* loop = f.loop.get();
    char buf[16];
    MockHost::BufferRef ref{&f.host, buf, sizeof buf};
    int chunk;
    CHECK(loop->ReadStart(f.sid, kReadBuffer, buf, sizeof buf, MockHost::MakeBufferToken, &ref, &chunk) ==
          -EINPROGRESS);
    CHECK(f.host.buffers.size() == 1);
    f.host.buffers.begin()->second.first = nullptr;  // detached
    size_t mark = f.host.log.size();
    Send(f.peer, "xyz");
    Event e = PumpUntilRead(loop, &f.host, f.sid, mark, f.cfg);
    CHECK(e.a == -EFAULT && e.b == -1, "%s: kEvRead a=%d b=%d", f.cfg.c_str(), e.a, e.b);
    CHECK(f.host.tokens_released == 1 && f.host.live_tokens.empty(), "%s: token not released once",
          f.cfg.c_str());
    char got[8] = {};
    CHECK(loop->Read(f.sid, got, sizeof got) == 3 && memcmp(got, "xyz", 3) == 0,
          "%s: bytes lost to the failed read", f.cfg.c_str());
    CheckClean(&f.host, f.cfg);
  }
}

TEST(read_start_close_drops_the_read_and_releases_its_token) {
  for (const Config& c : LoopConfigs()) {
    for (int mode : {kReadBuffer, kReadStream}) {
      Fixture f(c);
      Loop* loop = f.loop.get();
      char buf[16];
      MockHost::BufferRef ref{&f.host, buf, sizeof buf};
      int chunk;
      CHECK(loop->ReadStart(f.sid, mode, buf, sizeof buf, MockHost::MakeBufferToken, &ref, &chunk) ==
            -EINPROGRESS);
      Send(f.peer, "late");
      WaitArrived(loop, &f.host, loop->Fd(f.sid), f.cfg);
      size_t mark = f.host.log.size();
      CHECK(loop->Close(f.sid) == 0);
      CHECK(f.host.live_tokens.empty() && f.host.tokens_released == f.host.tokens_made,
            "%s: mode %d: token not released by Close", f.cfg.c_str(), mode);
      for (int i = 0; i < 3; i++) Pump(loop, &f.host, 5);
      CHECK(CountAfter(f.host, mark, kEvRead, f.sid) == 0, "%s: kEvRead after Close", f.cfg.c_str());
      CHECK(loop->ReadStop(f.sid) == -EBADF);
      CheckClean(&f.host, f.cfg);
    }
  }
}

// An event for an id's earlier owner (closed, the id handed out again with a new
// generation) is reported in the same wait as the new owner's readiness would be: the loop
// drops it by generation instead of serving the new owner's read with it.
TEST(read_start_stale_event_for_a_reused_id_is_not_delivered) {
  for (const Config& c : LoopConfigs()) {
    // A completion backend's reads register nothing to go stale: its late results for a
    // closed handle are io_uring_late_receive_for_a_closed_handle_returns_its_chunk.
    if (std::string(c.backend) == "io_uring") continue;
    std::string cfg = c.Name();
    auto faults = std::make_shared<Faults>();
    MockHost host;
    auto loop = MakeLoop(&host, c, FaultPoller::Factory(c.backend, faults));
    int chunk;
    int s1[2], s2[2];
    CHECK(StreamPair(s1, false) == 0);
    CHECK(StreamPair(s2, false) == 0);
    int old_id = -1, new_id = -1;
    CHECK(loop->Adopt(s1[0], HandleKind::kStream, &old_id) == 0);
    int old_fd = loop->Fd(old_id);
    CHECK(loop->ReadStart(old_id, kReadStream, nullptr, 0, nullptr, nullptr, &chunk) == -EINPROGRESS);
    // Threaded: the helper applies the registration; wait until the backend has the token.
    int64_t end = NowMs() + 3000;
    while (faults->TokenOf(old_fd) == 0 && NowMs() < end) SleepUs(1000);
    Token stale = faults->TokenOf(old_fd);
    CHECK(stale != 0, "%s: never registered", cfg.c_str());
    CHECK(loop->Close(old_id) == 0);
    RawClose(s1[1]);
    CHECK(loop->Adopt(s2[0], HandleKind::kStream, &new_id) == 0);
    CHECK(new_id == old_id, "%s: id %d not reused (got %d)", cfg.c_str(), old_id, new_id);
    CHECK(loop->ReadStart(new_id, kReadStream, nullptr, 0, nullptr, nullptr, &chunk) == -EINPROGRESS);
    faults->Inject(PollEvent{stale, kReadable});
    size_t mark = host.log.size();
    if (loop->threaded()) {
      // Let the helper take the injected wait before the new owner has data, so that wait's
      // batch holds the stale event alone (the helper stays parked until it is processed).
      end = NowMs() + 3000;
      while (faults->injected_waits.load() == 0 && NowMs() < end) SleepUs(1000);
      CHECK(faults->injected_waits.load() == 1, "%s: injected wait never taken", cfg.c_str());
    }
    Send(s2[1], "new");
    WaitReadable(s2[0], cfg);
    Pump(loop.get(), &host, 3000);  // processes the injected wait's events, and only those
    CHECK(faults->injected_waits.load() == 1, "%s: the injected wait did not run", cfg.c_str());
    CHECK(CountAfter(host, mark, kEvRead, new_id) == 0,
          "%s: the stale event served the new owner's read", cfg.c_str());
    // The new owner's own readiness does serve it.
    Event e = PumpUntilRead(loop.get(), &host, new_id, mark, cfg);
    CHECK(e.a == 3 && memcmp(loop->pool()->Data(e.b), "new", 3) == 0, "%s: kEvRead a=%d", cfg.c_str(), e.a);
    CHECK(loop->ReleaseChunk(e.b) == 0);
    CHECK(loop->Close(new_id) == 0);
    RawClose(s2[1]);
    CheckClean(&host, cfg);
  }
}

// A completed read is the report of the readiness that served it: an owner that asked for
// no readiness (no WantRead) gets no kEvReadable beside its kEvRead, under edge-triggered
// epoll too, neither for data nor for EOF.
TEST(read_start_completed_read_is_not_reported_again_as_readable) {
  for (const Config& c : LoopConfigs()) {
    Fixture f(c);
    Loop* loop = f.loop.get();
    char buf[64];
    MockHost::BufferRef ref{&f.host, buf, sizeof buf};
    int chunk;
    size_t mark = f.host.log.size();
    for (const char* m : {"data", ""}) {
      CHECK(loop->ReadStart(f.sid, kReadBuffer, buf, sizeof buf, MockHost::MakeBufferToken, &ref, &chunk) ==
            -EINPROGRESS);
      size_t before = f.host.log.size();
      if (*m != 0) {
        Send(f.peer, m);
      } else {
        RawShutdownWrite(f.peer);
      }
      Event e = PumpUntilRead(loop, &f.host, f.sid, before, f.cfg);
      CHECK(e.a == static_cast<int32_t>(strlen(m)), "%s: kEvRead a=%d", f.cfg.c_str(), e.a);
    }
    for (int i = 0; i < 3; i++) Pump(loop, &f.host, 5);
    CHECK(CountAfter(f.host, mark, kEvReadable, f.sid) == 0, "%s: %d kEvReadable beside completed reads",
          f.cfg.c_str(), CountAfter(f.host, mark, kEvReadable, f.sid));
    CheckClean(&f.host, f.cfg);
  }
}

// A Go-style reader (a read completes, the next one starts) keeps its interest registered:
// no Add/Modify/Remove per message, on every backend and mode. Dropping level-triggered
// read interest when a served read completes cost two epoll_ctl per message.
TEST(read_start_go_style_loop_changes_no_interest_per_message) {
  for (const Config& c : LoopConfigs()) {
    // A completion backend's reads register nothing to go stale: its late results for a
    // closed handle are io_uring_late_receive_for_a_closed_handle_returns_its_chunk.
    if (std::string(c.backend) == "io_uring") continue;
    std::string cfg = c.Name();
    auto faults = std::make_shared<Faults>();
    MockHost host;
    auto loop = MakeLoop(&host, c, FaultPoller::Factory(c.backend, faults));
    int s[2];
    CHECK(StreamPair(s, false) == 0);
    int id = -1;
    CHECK(loop->Adopt(s[0], HandleKind::kStream, &id) == 0);
    char buf[64];
    MockHost::BufferRef ref{&host, buf, sizeof buf};
    int chunk;
    int changes_after_first = -1;
    for (int i = 0; i < 20; i++) {
      ssize_t n = loop->ReadStart(id, kReadBuffer, buf, sizeof buf, MockHost::MakeBufferToken, &ref, &chunk);
      if (n != -EINPROGRESS) {
        CHECK(n == -EAGAIN || n > 0, "%s: message %d: ReadStart -> %zd", cfg.c_str(), i, n);
      }
      if (i == 1) changes_after_first = faults->changes.load();
      size_t mark = host.log.size();
      Send(s[1], "ping");
      if (n == -EINPROGRESS) {
        Event e = PumpUntilRead(loop.get(), &host, id, mark, cfg);
        CHECK(e.a == 4 && memcmp(buf, "ping", 4) == 0, "%s: message %d: kEvRead a=%d", cfg.c_str(), i, e.a);
      }
    }
    CHECK(faults->changes.load() == changes_after_first,
          "%s: %d interest changes over 18 messages", cfg.c_str(), faults->changes.load() - changes_after_first);
    CHECK(loop->Close(id) == 0);
    RawClose(s[1]);
    CheckClean(&host, cfg);
  }
}

// A bulk echo writes what it read while the bytes are still in the CPU's cache: once a
// batch holds kBatchBytes of completed reads it is handed to the owner before the next
// socket is read, and the chunk the owner gave back is the one the next read takes.
// Inline only: a helper thread may wake for each socket anyway, which proves nothing.
#ifndef _WIN32  // needs TIOCOUTQ to know both blocks arrived whole before the loop looks
TEST(read_start_batch_is_delivered_after_a_full_chunk_of_reads) {
  for (const Config& c : LoopConfigs()) {
    if (c.threaded) continue;
    Fixture f(c);
    Loop* loop = f.loop.get();
    int peer2, sid2;
    std::tie(peer2, sid2) = AcceptRaw(loop, &f.host, f.lid, f.port, f.cfg);
    f.StartStream();
    int chunk = -1;
    CHECK(loop->ReadStart(sid2, kReadStream, nullptr, 0, nullptr, nullptr, &chunk) == -EINPROGRESS);
    std::string block(BufferPool::kChunkSize, 'x');
    for (int fd : {f.peer, peer2}) {
      CHECK(RawWrite(fd, block.data(), block.size()) == static_cast<ssize_t>(block.size()));
    }
    for (int fd : {f.peer, peer2}) {
      // Both sockets hold the whole block before the loop looks (the sender's queue is
      // empty once the receiver has acknowledged all of it): one wait reports both.
      int unsent = 1;
      for (int i = 0; i < 3000 && unsent > 0; i++) {
        if (ioctl(fd, TIOCOUTQ, &unsent) != 0) break;
        if (unsent > 0) SleepUs(1000);
      }
      CHECK(unsent == 0, "%s: the block never arrived whole", f.cfg.c_str());
    }
    std::vector<std::pair<int, int>> reads;  // (delivery, chunk) of each full read
    f.host.on_event = [&](const Event& e) {
      if (e.kind != kEvRead || e.a <= 0) return;
      reads.push_back({f.host.deliveries, e.b});
      if (loop->ReleaseChunk(e.b) != 0) f.host.problems.push_back("chunk release refused");
    };
    bool ok = PumpUntil(loop, &f.host, [&] { return reads.size() >= 2; });
    CHECK(ok, "%s: %zu of 2 reads", f.cfg.c_str(), reads.size());
    CHECK(reads[0].first != reads[1].first, "%s: both 64 KiB reads came in one batch", f.cfg.c_str());
    // The kernel takes a completion backend's chunks in the buffer ring's order.
    CHECK(loop->caps().completion || reads[0].second == reads[1].second,
          "%s: the second read took chunk %d, not the returned %d", f.cfg.c_str(), reads[1].second, reads[0].second);
    f.host.on_event = nullptr;
    RawClose(peer2);
    CheckClean(&f.host, f.cfg);
  }
}
#endif  // !_WIN32
