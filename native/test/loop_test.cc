// Loop with a mock LoopHost, over every backend and mode: connect/accept, write/read,
// re-entrant Close inside DeliverBatch, deferred id reuse, shutdown semantics, deadlines.
#include <atomic>
#include <cstring>
#include <string>

#include "../core/loop.h"
#include "check.h"
#include "test_util.h"

using namespace muxnet;
using namespace muxtest;

namespace {

// Reads exactly len bytes from a loop handle, pumping for readiness.
std::string ReadAll(Loop* loop, MockHost* host, int id, size_t len, const std::string& cfg) {
  std::string got;
  char buf[65536];
  CHECK(loop->WantRead(id) == 0);
  int64_t end = NowMs() + 20000;  // a ceiling: wine on a busy machine is slow
  while (got.size() < len) {
    ssize_t n = loop->Read(id, buf, std::min(sizeof buf, len - got.size()));
    if (n > 0) {
      got.append(buf, n);
      continue;
    }
    CHECK(n == -EAGAIN, "%s: Read -> %zd after %zu bytes", cfg.c_str(), n, got.size());
    CHECK(NowMs() < end, "%s: only %zu of %zu bytes read", cfg.c_str(), got.size(), len);
    size_t mark = host->log.size();
    PumpUntil(loop, host, [&] { return host->log.size() > mark; }, 200);
  }
  CHECK(loop->PauseRead(id) == 0);
  return got;
}


}  // namespace

TEST(loop_connect_accept_write_read) {
  for (const Config& c : LoopConfigs()) {
    std::string cfg = c.Name();
    MockHost host;
    auto loop = MakeLoop(&host, c);
    int port;
    int lid = ListenLocal(loop.get(), &port);
    CHECK(host.active, "%s: SetActive(true) not called", cfg.c_str());
    auto [cid, sid] = ConnectPair(loop.get(), &host, lid, port, cfg);
    // client -> server
    int rc = loop->Write(cid, "hello", 5, kNoLimit, MockHost::MakeToken, &host);
    CHECK(rc == 0 || rc == 1, "%s: Write -> %d", cfg.c_str(), rc);
    std::string got = ReadAll(loop.get(), &host, sid, 5, cfg);
    CHECK(got == "hello", "%s: server read '%s'", cfg.c_str(), got.c_str());
    // server -> client, a large write that has to queue, in order
    std::string big(3 << 20, '\0');
    for (size_t i = 0; i < big.size(); i++) big[i] = static_cast<char>((i * 131) >> 7);
    int queued = 0;
    // "hello" may have been queued too (a completion backend sends every write): its token
    // is released by now, as the peer read it.
    int made_before = host.tokens_made;
    for (size_t off = 0; off < big.size(); off += 256 << 10) {
      rc = loop->Write(sid, big.data() + off, 256 << 10, kNoLimit, MockHost::MakeToken, &host);
      CHECK(rc == 0 || rc == 1, "%s: Write -> %d", cfg.c_str(), rc);
      queued += rc == 1;
    }
    got = ReadAll(loop.get(), &host, cid, big.size(), cfg);
    CHECK(got == big, "%s: bytes out of order", cfg.c_str());
    CHECK(PumpUntil(loop.get(), &host, [&] { return host.live_tokens.empty(); }),
          "%s: %zu tokens pending after the peer read everything", cfg.c_str(),
          host.live_tokens.size());
    int written = 0;
    for (const Event& e : host.log)
      if (e.kind == kEvWritten && e.id == sid) written += e.a;
    CHECK(written == queued, "%s: kEvWritten total %d, %d requests queued", cfg.c_str(),
          written, queued);
    CHECK(host.tokens_made - made_before == queued && host.tokens_released == host.tokens_made, "%s: %d tokens made for %d requests queued, %d released",
          cfg.c_str(), host.tokens_made - made_before, queued, host.tokens_released);
    CHECK(host.Count(kEvWriteError) == 0);
    // EOF reaches the client after the server closes.
    CHECK(loop->Close(sid) == 0);
    CHECK(loop->Close(sid) == -EBADF, "%s: double Close accepted", cfg.c_str());
    char b[8];
    int64_t end = NowMs() + 3000;
    ssize_t n;
    CHECK(loop->WantRead(cid) == 0);
    while ((n = loop->Read(cid, b, sizeof b)) == -EAGAIN && NowMs() < end) Pump(loop.get(), &host, 10);
    CHECK(n == 0, "%s: client Read after peer close -> %zd", cfg.c_str(), n);
    CHECK(loop->Close(cid) == 0 && loop->Close(lid) == 0);
    CHECK(!host.active, "%s: SetActive(false) not called after the last close", cfg.c_str());
    CheckClean(&host, cfg);
  }
}

TEST(loop_try_write_queues_nothing_and_keeps_order) {
  for (const Config& c : LoopConfigs()) {
    std::string cfg = c.Name();
    MockHost host;
    auto loop = MakeLoop(&host, c);
    int port;
    int lid = ListenLocal(loop.get(), &port);
    auto [cid, sid] = ConnectPair(loop.get(), &host, lid, port, cfg);
    CHECK(loop->TryWrite(sid, "ab", 2) == 2, "%s: TryWrite on an idle socket", cfg.c_str());
    // Fill the socket buffer: TryWrite takes what fits, then 0, and never makes a token.
    std::string big(1 << 20, 'x');
    ssize_t n;
    size_t sent = 2;
    while ((n = loop->TryWrite(sid, big.data(), big.size())) > 0) sent += n;
    CHECK(n == 0, "%s: TryWrite on a full socket -> %zd", cfg.c_str(), n);
    CHECK(host.tokens_made == 0, "%s: TryWrite made a token", cfg.c_str());
    // With a write queued, TryWrite would overtake it: -EBUSY. 1 MiB, so that it is queued
    // even where the socket's buffer drained a little since (wine's sockets drain on their
    // own thread: a 1-byte write went out at once there).
    std::string tail(1 << 20, 'q');
    int rc = loop->Write(sid, tail.data(), tail.size(), kNoLimit, MockHost::MakeToken, &host);
    CHECK(rc == 1, "%s: Write on a full socket -> %d", cfg.c_str(), rc);
    CHECK(loop->TryWrite(sid, "z", 1) == -EBUSY, "%s: TryWrite past a queued write", cfg.c_str());
    std::string got = ReadAll(loop.get(), &host, cid, sent + tail.size(), cfg);
    CHECK(got.size() == sent + tail.size() && got.compare(0, 2, "ab") == 0 &&
          got.compare(sent, tail.size(), tail) == 0, "%s: bytes out of order", cfg.c_str());
    CHECK(PumpUntil(loop.get(), &host, [&] { return host.live_tokens.empty(); }));
    CHECK(loop->ShutdownWrite(sid) == 0);
    CHECK(loop->TryWrite(sid, "z", 1) == -EPIPE, "%s: TryWrite after shutdown", cfg.c_str());
    CHECK(loop->TryWrite(lid, "z", 1) == -EBADF, "%s: TryWrite on a listener", cfg.c_str());
    CHECK(loop->Close(cid) == 0 && loop->Close(sid) == 0 && loop->Close(lid) == 0);
    CheckClean(&host, cfg);
  }
}

TEST(loop_accept_budget_stops_and_resumes) {
  for (const Config& c : LoopConfigs()) {
    std::string cfg = c.Name();
    MockHost host;
    auto loop = MakeLoop(&host, c);
    int port;
    int lid = ListenLocal(loop.get(), &port);
    int fds[3];
    for (int& fd : fds) fd = RawConnect(port);
    CHECK(loop->SetAccepting(lid, 2) == 0);
    CHECK(PumpUntil(loop.get(), &host, [&] { return host.Count(kEvAccept) >= 2; }),
          "%s: %d accepts", cfg.c_str(), host.Count(kEvAccept));
    for (int i = 0; i < 5; i++) Pump(loop.get(), &host, 5);
    CHECK(host.Count(kEvAccept) == 2, "%s: budget 2 gave %d accepts", cfg.c_str(),
          host.Count(kEvAccept));
    CHECK(loop->SetAccepting(lid, 5) == 0);
    CHECK(PumpUntil(loop.get(), &host, [&] { return host.Count(kEvAccept) == 3; }),
          "%s: third connection not accepted after resuming", cfg.c_str());
    for (const Event& e : host.log)
      if (e.kind == kEvAccept) CHECK(loop->Close(e.a) == 0);
    CHECK(loop->SetAccepting(-1, 1) == -EBADF);
    CHECK(loop->Close(lid) == 0);
    for (int fd : fds) RawClose(fd);
    CheckClean(&host, cfg);
  }
}

// Two server connections become readable in the same wait; the first event's handler
// closes the other one and opens a new connection (which may take the closed fd's number).
// The closed id must get no further event, and must not be reused within the batch.
TEST(loop_close_other_handle_inside_deliver_batch) {
  for (const Config& c : LoopConfigs()) {
    std::string cfg = c.Name();
    MockHost host(1);  // capacity 1: every Emit delivers at once, in the middle of Process
    auto loop = MakeLoop(&host, c);
    int port;
    int lid = ListenLocal(loop.get(), &port);
    int c1 = RawConnect(port), c2 = RawConnect(port);
    CHECK(loop->SetAccepting(lid, 2) == 0);
    CHECK(PumpUntil(loop.get(), &host, [&] { return host.Count(kEvAccept) == 2; }), "%s", cfg.c_str());
    int s1 = host.log[host.log.size() - 2].a, s2 = host.log.back().a;
    CHECK(loop->WantRead(s1) == 0 && loop->WantRead(s2) == 0);
    CHECK(RawWrite(c1, "a", 1) == 1 && RawWrite(c2, "b", 1) == 1);
    // Both readable in the kernel before the loop looks (best effort for threaded mode).
    for (int id : {s1, s2}) {
            CHECK(WaitFd(loop->Fd(id), false, 2000) == 1);
    }
    int closed = -1, opened = -1, opened_rc = 0;
    size_t closed_at = 0;
    host.on_event = [&](const Event& e) {
      if (e.kind != kEvReadable || closed >= 0) return;
      if (e.id != s1 && e.id != s2) return;
      int other = e.id == s1 ? s2 : s1;
      if (host.loop->Close(other) != 0) host.problems.push_back("Close of the other failed");
      closed = other;
      closed_at = host.log.size();
      SockAddr a;
      SockAddr::FromIp("127.0.0.1", port, &a);
      opened_rc = host.loop->Connect(a, &opened);
      if (host.loop->Read(other, nullptr, 0) != -EBADF) host.problems.push_back("closed id still usable");
    };
    CHECK(PumpUntil(loop.get(), &host, [&] { return closed >= 0; }), "%s: no readable event", cfg.c_str());
    host.on_event = nullptr;
    CHECK(opened_rc == 0 || opened_rc == -EINPROGRESS, "%s: Connect in batch -> %d", cfg.c_str(), opened_rc);
    CHECK(opened != closed, "%s: id %d reused inside the batch that closed it", cfg.c_str(), closed);
    for (int i = 0; i < 5; i++) Pump(loop.get(), &host, 5);
    for (size_t i = closed_at; i < host.log.size(); i++)
      CHECK(host.log[i].id != closed, "%s: event kind %d for closed id %d", cfg.c_str(),
            host.log[i].kind, closed);
    int survivor = closed == s1 ? s2 : s1;
    char b;
    CHECK(loop->Read(survivor, &b, 1) == 1, "%s: survivor lost its data", cfg.c_str());
    // The closed peer sees EOF.
    int peer = closed == s1 ? c1 : c2;
        CHECK(WaitFd(peer, false, 2000) == 1);
    char buf[4];
    // Unread data was pending on the closed socket, so the kernel resets rather than FINs.
    ssize_t n = RawRead(peer, buf, sizeof buf);
    CHECK(n == 0 || (n < 0 && errno == ECONNRESET),
          "%s: peer of closed handle: read -> %zd errno %d", cfg.c_str(), n, errno);
    CHECK(loop->Close(survivor) == 0 && loop->Close(opened) == 0 && loop->Close(lid) == 0);
    RawClose(c1);
    RawClose(c2);
    for (int i = 0; i < 3; i++) Pump(loop.get(), &host, 1);  // the accepted leftover connection
    CheckClean(&host, cfg);
  }
}

TEST(loop_id_reuse_deferred_to_end_of_batch) {
  for (const Config& c : LoopConfigs()) {
    std::string cfg = c.Name();
    MockHost host;
    auto loop = MakeLoop(&host, c);
    int port;
    int lid = ListenLocal(loop.get(), &port);
    SockAddr a;
    SockAddr::FromIp("127.0.0.1", port, &a);
    // Outside a batch, a closed id is free at once.
    int x = -1, y = -1;
    loop->Connect(a, &x);
    CHECK(loop->Close(x) == 0);
    loop->Connect(a, &y);
    CHECK(y == x, "%s: id %d not reused outside a batch (got %d)", cfg.c_str(), x, y);
    // Inside a batch (here: a deadline's), not before the batch ends.
    int victim = y, in_batch = -1;
    CHECK(loop->SetDeadline(victim, kReadDeadline, 0, 42) == 0);
    CHECK(host.timer_delay == 0, "%s: ArmTimer(%lld)", cfg.c_str(), static_cast<long long>(host.timer_delay));
    host.on_event = [&](const Event& e) {
      if (e.kind != kEvDeadline) return;
      if (e.id != victim || e.a != kReadDeadline || e.b != 42) host.problems.push_back("bad deadline event");
      host.loop->Close(victim);
      host.loop->Connect(a, &in_batch);
    };
    loop->RunTimers();
    host.on_event = nullptr;
    CHECK(host.Count(kEvDeadline) == 1);
    CHECK(in_batch >= 0 && in_batch != victim, "%s: id %d reused inside its batch", cfg.c_str(), victim);
    int after = -1;
    loop->Connect(a, &after);
    CHECK(after == victim, "%s: id %d not reused after the batch (got %d)", cfg.c_str(), victim, after);
    CHECK(host.timer_delay == -1, "%s: timer not disarmed", cfg.c_str());
    loop->Close(after);
    loop->Close(in_batch);
    loop->Close(lid);
    CheckClean(&host, cfg);
  }
}

// ShutdownWrite waits behind queued writes; CancelWrites drops them and must still shut
// the socket down, so the peer sees EOF.
TEST(loop_cancel_writes_after_shutdown_still_shuts_down) {
  for (const Config& c : LoopConfigs()) {
    std::string cfg = c.Name();
    MockHost host;
    auto loop = MakeLoop(&host, c);
    int port;
    int lid = ListenLocal(loop.get(), &port);
    int peer = RawConnect(port, 4096);
    CHECK(loop->SetAccepting(lid, 1) == 0);
    CHECK(PumpUntil(loop.get(), &host, [&] { return host.Count(kEvAccept) == 1; }), "%s", cfg.c_str());
    int sid = host.log.back().a;
    CHECK(SetBufferSize(loop->Fd(sid), false, 4096) == 0);
    static std::string big(4 << 20, 'x');
    int rc = loop->Write(sid, big.data(), big.size(), kNoLimit, MockHost::MakeToken, &host);
    CHECK(rc == 1, "%s: 4 MiB Write -> %d (expected queued)", cfg.c_str(), rc);
    CHECK(loop->ShutdownWrite(sid) == 0);
    CHECK(loop->Write(sid, "y", 1, kNoLimit, MockHost::MakeToken, &host) == -EPIPE,
          "%s: Write accepted after ShutdownWrite", cfg.c_str());
    CHECK(loop->CancelWrites(sid) == 0);
    // A backend that sends from the memory keeps it until the cancelled send's result.
    if (loop->caps().send) CHECK(PumpUntil(loop.get(), &host, [&] { return host.live_tokens.empty(); }));
    CHECK(host.live_tokens.empty() && host.tokens_released == 1, "%s: token not released once",
          cfg.c_str());
    char buf[65536];
    bool eof = false;
    int64_t end = NowMs() + 3000;
    while (!eof && NowMs() < end) {
      WaitFd(peer, false, 10);
      ssize_t n = RawRead(peer, buf, sizeof buf);
      if (n == 0) eof = true;
      CHECK(n >= 0 || errno == EAGAIN, "%s: peer read errno %d", cfg.c_str(), errno);
      Pump(loop.get(), &host, 0);
    }
    CHECK(eof, "%s: peer never saw EOF after CancelWrites", cfg.c_str());
    CHECK(loop->Write(sid, "z", 1, kNoLimit, MockHost::MakeToken, &host) < 0,
          "%s: Write succeeded on a shut-down socket", cfg.c_str());
    CHECK(host.Count(kEvWritten) == 0 && host.Count(kEvWriteError) == 0);
    loop->Close(sid);
    loop->Close(lid);
    RawClose(peer);
    CheckClean(&host, cfg);
  }
}

// ShutdownWrite with queued writes: the peer gets every byte, then EOF.
TEST(loop_shutdown_after_queued_writes_delivers_then_eof) {
  for (const Config& c : LoopConfigs()) {
    std::string cfg = c.Name();
    MockHost host;
    auto loop = MakeLoop(&host, c);
    int port;
    int lid = ListenLocal(loop.get(), &port);
    int peer = RawConnect(port, 4096);
    CHECK(loop->SetAccepting(lid, 1) == 0);
    CHECK(PumpUntil(loop.get(), &host, [&] { return host.Count(kEvAccept) == 1; }), "%s", cfg.c_str());
    int sid = host.log.back().a;
    CHECK(SetBufferSize(loop->Fd(sid), false, 4096) == 0);
    static std::string big(2 << 20, 'q');
    CHECK(loop->Write(sid, big.data(), big.size(), kNoLimit, MockHost::MakeToken, &host) == 1);
    CHECK(loop->ShutdownWrite(sid) == 0);
    size_t total = 0;
    bool eof = false;
    char buf[65536];
    int64_t end = NowMs() + 20000;  // 2 MiB through 4 KiB buffers: slow under wine on a busy machine
    SetNonBlocking(peer);
    while (!eof && NowMs() < end) {
      ssize_t n = RawRead(peer, buf, sizeof buf);
      if (n > 0) total += n;
      if (n == 0) eof = true;
      Pump(loop.get(), &host, n > 0 ? 0 : 5);
    }
    CHECK(eof && total == big.size(), "%s: eof=%d after %zu of %zu bytes", cfg.c_str(), eof,
          total, big.size());
    CHECK(host.Count(kEvWritten, sid) == 1);
    loop->Close(sid);
    loop->Close(lid);
    RawClose(peer);
    CheckClean(&host, cfg);
  }
}

namespace {
struct CountingHost : MockHost {
  std::atomic<int> wakes{0};
  void WakeFromHelper() override {
    wakes++;
    MockHost::WakeFromHelper();
  }
};
}  // namespace

// Threaded mode: destroying the loop while its helper waits (idle, with a batch handed
// over but not run, or after a batch ran) neither hangs nor leaks.
TEST(loop_threaded_create_destroy_while_helper_waits) {
  std::vector<std::string> backends = AvailableBackends();
  for (const std::string& b : backends) {
    if (b == "io_uring") continue;  // inline only: loop_test_io_uring_refuses_a_helper_thread
    for (int i = 0; i < 60; i++) {
      CountingHost host;
      Config c{b.c_str(), true, false};
      auto loop = MakeLoop(&host, c);
      CHECK(loop->threaded(), "%s: not threaded", b.c_str());
      if (i % 3 != 0) {
        int port;
        int lid = ListenLocal(loop.get(), &port);
        CHECK(loop->SetAccepting(lid, 4) == 0);
        SockAddr a;
        SockAddr::FromIp("127.0.0.1", port, &a);
        int cid;
        int rc = loop->Connect(a, &cid);
        CHECK(rc == 0 || rc == -EINPROGRESS);
        if (rc == -EINPROGRESS || i % 3 == 2) {
          int64_t end = NowMs() + 2000;
          while (host.wakes.load() == 0 && NowMs() < end) SleepUs(100);
          CHECK(host.wakes.load() > 0, "%s: helper never woke the host", b.c_str());
          if (i % 3 == 2) loop->RunReady();
        }
        if (i % 6 == 5) loop->Write(cid, "abc", 3, kNoLimit, MockHost::MakeToken, &host);
      }
      loop.reset();  // helper may be blocked in Wait() or parked on its batch
      CheckClean(&host, b);
    }
  }
}

#if defined(__linux__)  // splice(2) is Linux's (elsewhere -ENOSYS)
#include <csignal>

TEST(loop_splice_moves_bytes_between_sockets_through_a_pipe) {
  for (const Config& c : LoopConfigs()) {
    std::string cfg = c.Name();
    MockHost host;
    auto loop = MakeLoop(&host, c);
    int port;
    int lid = ListenLocal(loop.get(), &port);
    auto [a_client, a_server] = ConnectPair(loop.get(), &host, lid, port, cfg);
    auto [b_client, b_server] = ConnectPair(loop.get(), &host, lid, port, cfg);
    int pipe = loop->OpenPipe();
    if (loop->caps().completion) {
      // Its receive owns the socket's bytes: a splice would race it (pipe() copies there).
      CHECK(pipe == -EOPNOTSUPP, "%s: OpenPipe -> %d", cfg.c_str(), pipe);
      continue;  // the loop closes the four connections
    }
    CHECK(pipe >= 0, "%s: OpenPipe -> %d", cfg.c_str(), pipe);
    CHECK(loop->SpliceIn(a_server, pipe, 65536) == -EAGAIN, "%s: nothing to splice yet", cfg.c_str());
    std::string msg(200000, '\0');
    for (size_t i = 0; i < msg.size(); i++) msg[i] = static_cast<char>(i * 7 + (i >> 9));
    int rc = loop->Write(a_client, msg.data(), msg.size(), kNoLimit, MockHost::MakeToken, &host);
    CHECK(rc == 0 || rc == 1, "%s: Write -> %d", cfg.c_str(), rc);
    CHECK(loop->ShutdownWrite(a_client) == 0);
    // a_server -> pipe -> b_client until a_server's end; b_server reads what arrives.
    std::string got;
    char buf[65536];
    size_t in_pipe = 0;
    bool ended = false;
    int64_t end = NowMs() + 10000;
    while (!ended || in_pipe > 0 || got.size() < msg.size()) {
      CHECK(NowMs() < end, "%s: %zu of %zu bytes after 10 s", cfg.c_str(), got.size(), msg.size());
      if (!ended && in_pipe < 65536) {
        ssize_t n = loop->SpliceIn(a_server, pipe, 65536 - in_pipe);
        if (n > 0) in_pipe += n;
        else if (n == 0) ended = true;
        else CHECK(n == -EAGAIN, "%s: SpliceIn -> %zd", cfg.c_str(), n);
      }
      if (in_pipe > 0) {
        ssize_t m = loop->SpliceOut(pipe, b_client, in_pipe);
        if (m > 0) in_pipe -= m;
        else CHECK(m == -EAGAIN, "%s: SpliceOut -> %zd", cfg.c_str(), m);
      }
      ssize_t r = loop->Read(b_server, buf, sizeof buf);
      if (r > 0) got.append(buf, r);
      else Pump(loop.get(), &host, 1);
    }
    CHECK(got == msg, "%s: %zu bytes arrived, not the ones sent", cfg.c_str(), got.size());
    HandleCounters in{}, out{};
    CHECK(loop->Counters(a_server, &in) == 0 && loop->Counters(b_client, &out) == 0);
    CHECK(in.bytes_in == msg.size() && out.bytes_out == msg.size(), "%s: counted %llu in, %llu out", cfg.c_str(),
          static_cast<unsigned long long>(in.bytes_in), static_cast<unsigned long long>(out.bytes_out));
    // Splicing to a socket whose peer is gone fails with EPIPE or ECONNRESET, never SIGPIPE
    // (the runner ignores SIGPIPE: the default action is restored, so one would kill it).
    auto old = signal(SIGPIPE, SIG_DFL);
    CHECK(loop->Close(b_server) == 0);
    auto [c_client, c_server] = ConnectPair(loop.get(), &host, lid, port, cfg);
    ssize_t out_err = 0;
    std::string chunk(4096, 'z');
    for (int i = 0; i < 2000 && out_err == 0; i++) {
      // Refill the pipe from a third connection, then push it at the closed peer.
      rc = loop->Write(c_client, chunk.data(), chunk.size(), kNoLimit, MockHost::MakeToken, &host);
      CHECK(rc == 0 || rc == 1, "%s: Write -> %d", cfg.c_str(), rc);
      loop->SpliceIn(c_server, pipe, chunk.size());
      ssize_t m = loop->SpliceOut(pipe, b_client, chunk.size());
      if (m < 0 && m != -EAGAIN) out_err = m;
      else Pump(loop.get(), &host, 1);
    }
    signal(SIGPIPE, old);
    loop->Close(c_client);
    loop->Close(c_server);
    CHECK(out_err == -EPIPE || out_err == -ECONNRESET, "%s: SpliceOut to a closed peer -> %zd", cfg.c_str(), out_err);
    CHECK(loop->ClosePipe(pipe) == 0 && loop->ClosePipe(pipe) == -EBADF);
    CHECK(loop->SpliceIn(a_server, pipe, 10) == -EBADF, "%s: a closed pipe is refused", cfg.c_str());
    for (int id : {a_client, a_server, b_client, lid}) loop->Close(id);
    Pump(loop.get(), &host, 10);
  }
}
#endif
