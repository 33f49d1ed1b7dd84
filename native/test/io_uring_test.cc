// The io_uring backend's own rules (every loop test runs on it too, through LoopConfigs):
// receives into the buffer ring, a dry ring, results nobody reads yet, and a socket closed
// while its receive is armed. Skipped, with the probe's reason, where io_uring cannot run.
#ifdef MUXNET_HAVE_IO_URING  // Linux only: the whole file (also its POSIX headers)
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "../core/loop.h"
#include "check.h"
#include "fault_poller.h"
#include "test_util.h"

using namespace muxnet;
using namespace muxtest;

namespace {

bool Available() {
  for (const auto& b : AvailableBackends())
    if (b == "io_uring") return true;
  printf("  (io_uring skipped: %s)\n", IoUringUnavailable().c_str());
  return false;
}

// What a CountingPoller's backend reported, and what it was asked.
struct Counts {
  int enobufs = 0;   // receives ended by a dry ring
  int received = 0;  // receive results with bytes
  int64_t received_bytes = 0;
  int accepted = 0;  // accepts that brought a connection
  int receives = 0;  // Receive() calls: receives armed
  int sends = 0;     // Send() calls
  int most_buffers = 0;  // the most write requests one Send() took
  int gathered = 0;      // Send() calls with more than one request since the last Wait()
  int most_gathered = 0;  // the most of those between two Wait() calls: in one batch
  int connects = 0;  // Connect() calls
  int polls = 0;     // Add() calls: descriptors watched for readiness
  std::vector<int> connected;  // the results of kConnected events
  std::map<Token, int> in_flight;  // sends in the kernel, by token
  int most_in_flight = 0;          // the most sends of one socket in the kernel at once
  bool receive_limit = false;  // the backend's caps.receive_limit
  bool lose_cancels = false;   // CancelSend fails and the send goes on, as when the
                               // cancellation finds no room in a ring whose enter fails
  int lose_receive_cancels = 0;  // so many CancelReceive calls fail the same way
  int eagain_sends = 0;  // so many Send() calls are given back unsent: their result -EAGAIN
  int receive_cancels = 0;       // CancelReceive calls
};

// Passes everything to the real backend and counts what it reports.
class CountingPoller final : public ForwardingPoller {
 public:
  using ForwardingPoller::ForwardingPoller;
  int Wait(int timeout_ms, PollEvent* events, int max) override {
    counts->gathered = 0;
    int n = inner_->Wait(given_back_.empty() ? timeout_ms : 0, events, max);
    for (; !given_back_.empty() && n >= 0 && n < max; given_back_.pop_back()) {
      events[n++] = PollEvent{given_back_.back(), kSent, -EAGAIN, -1};
    }
    for (int i = 0; i < n; i++) {
      const PollEvent& e = events[i];
      if ((e.events & kReceived) && e.result == -ENOBUFS) counts->enobufs++;
      if ((e.events & kReceived) && e.result > 0) {
        counts->received++;
        counts->received_bytes += e.result;
      }
      if ((e.events & kAccepted) && e.result >= 0) counts->accepted++;
      if (e.events & kSent) counts->in_flight[e.token]--;
      if (e.events & kConnected) counts->connected.push_back(e.result);
    }
    return n;
  }
  int Send(int fd, Token token, const iovec* iov, int count) override {
    if (counts->eagain_sends > 0) {  // taken, and given back with nothing sent
      counts->eagain_sends--;
      given_back_.push_back(token);
      return 0;
    }
    int err = inner_->Send(fd, token, iov, count);
    if (err == 0) {
      counts->sends++;
      counts->most_buffers = std::max(counts->most_buffers, count);
      if (count > 1) counts->most_gathered = std::max(counts->most_gathered, ++counts->gathered);
      counts->most_in_flight = std::max(counts->most_in_flight, ++counts->in_flight[token]);
    }
    return err;
  }
  int CancelReceive(Token token) override {
    counts->receive_cancels++;
    if (counts->lose_receive_cancels > 0) {
      counts->lose_receive_cancels--;
      return -EBUSY;
    }
    return inner_->CancelReceive(token);
  }
  int CancelSend(Token token) override { return counts->lose_cancels ? -EBUSY : inner_->CancelSend(token); }
  int Connect(int fd, Token token, const void* addr, uint32_t len) override {
    counts->connects++;
    return inner_->Connect(fd, token, addr, len);
  }
  int Add(int fd, Token token, uint32_t interest) override {
    counts->polls++;
    return inner_->Add(fd, token, interest);
  }
  int Receive(int fd, Token token, bool multishot, uint32_t limit) override {
    counts->receives++;
    return inner_->Receive(fd, token, multishot, limit);
  }
  std::shared_ptr<Counts> counts = std::make_shared<Counts>();

 private:
  std::vector<Token> given_back_;  // sends whose -EAGAIN result the next Wait reports
};

const Config kUring{"io_uring", false, false};

struct Conn {
  int peer = -1;  // the raw client
  int id = -1;    // the loop's accepted side
};

// n accepted connections on a fresh listener of `loop`.
std::vector<Conn> Accept(Loop* loop, MockHost* host, int n) {
  int port;
  int lid = ListenLocal(loop, &port);
  std::vector<Conn> out;
  for (int i = 0; i < n; i++) {
    auto [peer, id] = AcceptRaw(loop, host, lid, port, "io_uring");
    out.push_back({peer, id});
  }
  return out;
}

// A loop on io_uring whose backend counts what it reports into *counts.
std::unique_ptr<Loop> MakeCountingLoop(MockHost* host, std::shared_ptr<Counts>* counts) {
  *counts = std::make_shared<Counts>();
  return MakeLoop(host, kUring, [c = *counts](std::unique_ptr<Poller>* out) {
    std::unique_ptr<Poller> inner;
    int err = CreatePoller("io_uring", &inner);
    if (err != 0) return err;
    c->receive_limit = inner->Caps().receive_limit;
    auto p = std::make_unique<CountingPoller>(std::move(inner));
    p->counts = c;
    *out = std::move(p);
    return 0;
  });
}

void StartStream(Loop* loop, int id) {
  int chunk;
  ssize_t n = loop->ReadStart(id, kReadStream, nullptr, 0, nullptr, nullptr, &chunk);
  CHECK(n == -EINPROGRESS, "ReadStart(stream) on an empty socket -> %zd", n);
}

// The bytes of every kEvRead for `id` in the log from `mark`, chunks given back.
std::string ReadBytes(Loop* loop, MockHost* host, int id, size_t mark, int* eof = nullptr) {
  std::string got;
  for (size_t i = mark; i < host->log.size(); i++) {
    const Event& e = host->log[i];
    if (e.kind != kEvRead || e.id != id) continue;
    if (e.a == 0 && eof != nullptr) (*eof)++;
    if (e.a <= 0) continue;
    got.append(loop->pool()->Data(e.b), e.a);
  }
  return got;
}

// Chunk reads of `id` until `want` bytes came (or `rounds` reads), chunks given back;
// `between` runs after each read that waited (a writer that keeps the peer sending).
std::string ReadChunks(Loop* loop, MockHost* host, int id, size_t want, int rounds,
                       const std::function<void()>& between = nullptr) {
  std::string got;
  int chunk;
  for (int i = 0; i < rounds && got.size() < want; i++) {
    ssize_t n = loop->ReadStart(id, kReadChunk, nullptr, 0, nullptr, nullptr, &chunk);
    if (n > 0) {
      got.append(loop->pool()->Data(chunk), n);
      CHECK(loop->ReleaseChunk(chunk) == 0);
      continue;
    }
    CHECK(n == -EINPROGRESS, "ReadStart -> %zd", n);
    size_t mark = host->log.size();
    CHECK(PumpUntil(loop, host, [&] { return host->log.size() > mark; }));
    for (size_t j = mark; j < host->log.size(); j++) {
      const Event& e = host->log[j];
      if (e.kind != kEvRead || e.id != id) continue;
      CHECK(e.a > 0, "kEvRead %d", e.a);
      got.append(loop->pool()->Data(e.b), e.a);
      CHECK(loop->ReleaseChunk(e.b) == 0);
    }
    if (between) between();
  }
  return got;
}

// The writes of `id` that kEvWritten reported complete (each event counts several).
int WritesCompleted(const MockHost& host, int id) {
  int n = 0;
  for (const Event& e : host.log) n += e.kind == kEvWritten && e.id == id ? e.a : 0;
  return n;
}

// `count` short messages from the raw peer, the loop pumped after each (so each is a result
// of its own, if anything still receives) and a little after the last; what was sent.
std::string SendMessages(Loop* loop, MockHost* host, int peer, int count) {
  std::string sent;
  for (int i = 0; i < count; i++) {
    std::string m = "m" + std::to_string(i) + ";";
    CHECK(write(peer, m.data(), m.size()) == static_cast<ssize_t>(m.size()));
    sent += m;
    Pump(loop, host, 2);
  }
  for (int i = 0; i < 5; i++) Pump(loop, host, 5);
  return sent;
}

}  // namespace

// An idle connection with a read started holds no chunk: the ring's chunks are shared, and
// the pool's use does not grow with the number of waiting readers.
TEST(io_uring_waiting_readers_hold_no_chunk_each) {
  if (!Available()) return;
  MockHost host;
  auto loop = MakeLoop(&host, kUring);
  auto conns = Accept(loop.get(), &host, 3);
  StartStream(loop.get(), conns[0].id);
  Pump(loop.get(), &host, 5);
  int ring = loop->pool()->in_use();
  CHECK(ring > 0, "no chunk provided to the ring");
  for (size_t i = 1; i < conns.size(); i++) StartStream(loop.get(), conns[i].id);
  for (int i = 0; i < 3; i++) Pump(loop.get(), &host, 5);
  CHECK(loop->pool()->in_use() == ring, "%d chunks in use for 3 waiting readers, %d for 1",
        loop->pool()->in_use(), ring);
  for (auto& c : conns) close(c.peer);
}

// More messages than the ring holds chunks, none given back while they arrive: the ring runs
// dry (-ENOBUFS ends a receive), the loop stocks it again from the pool and re-arms, and
// every byte arrives in order.
TEST(io_uring_dry_ring_rearms_and_loses_nothing) {
  if (!Available()) return;
  MockHost host;
  std::shared_ptr<Counts> counts;
  auto loop = MakeCountingLoop(&host, &counts);
  // The test pool is 2 slabs (32 chunks); the ring takes a quarter: 8.
  const int kConns = 12;
  auto conns = Accept(loop.get(), &host, kConns);
  size_t mark = host.log.size();
  for (auto& c : conns) StartStream(loop.get(), c.id);
  Pump(loop.get(), &host, 5);
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < kConns; i++) {
      std::string m = "c" + std::to_string(i) + "r" + std::to_string(round) + ";";
      CHECK(write(conns[i].peer, m.data(), m.size()) == static_cast<ssize_t>(m.size()));
    }
    // No chunk goes back while the messages arrive: more chunks than the ring had are needed.
    bool ok = PumpUntil(loop.get(), &host, [&] {
      int reads = 0;
      for (size_t i = mark; i < host.log.size(); i++) reads += host.log[i].kind == kEvRead && host.log[i].a > 0;
      return reads >= kConns * (round + 1);
    });
    CHECK(ok, "round %d: not every connection's message arrived", round);
  }
  CHECK(counts->enobufs > 0, "the ring never ran dry (the test did not test what it says)");
  for (int i = 0; i < kConns; i++) {
    std::string want = "c" + std::to_string(i) + "r0;c" + std::to_string(i) + "r1;";
    std::string got = ReadBytes(loop.get(), &host, conns[i].id, mark);
    CHECK(got == want, "conn %d: got '%s', want '%s'", i, got.c_str(), want.c_str());
  }
  for (size_t i = mark; i < host.log.size(); i++) {
    const Event& e = host.log[i];
    if (e.kind == kEvRead && e.a > 0) CHECK(loop->ReleaseChunk(e.b) == 0);
  }
  for (auto& c : conns) close(c.peer);
  CHECK(host.problems.empty(), "%s", host.problems.empty() ? "" : host.problems[0].c_str());
}

// The buffer ring takes from the pool what the load needs: a connection that reads message
// after message keeps the ring at its first 16 chunks (two slabs of the pool made), and a
// burst that takes most of them at once grows it. Every chunk in the ring soon holds a page
// the kernel touched, so a quiet server with a 256-chunk ring held 1 MiB it did not use.
TEST(io_uring_buffer_ring_starts_small_and_grows_with_the_load) {
  if (!Available()) return;
  MockHost host;
  auto loop = MakeLoop(&host, kUring, nullptr, 16);  // 256 chunks: the ring may take 64
  const int kConns = 40;
  auto conns = Accept(loop.get(), &host, kConns);
  size_t mark = host.log.size();
  StartStream(loop.get(), conns[0].id);
  std::string sent;
  for (int i = 0; i < 50; i++) {
    std::string m = "q" + std::to_string(i) + ";";
    CHECK(write(conns[0].peer, m.data(), m.size()) == static_cast<ssize_t>(m.size()));
    sent += m;
    size_t want = sent.size();
    bool ok = PumpUntil(loop.get(), &host, [&] {
      size_t got = 0;
      for (size_t k = mark; k < host.log.size(); k++) {
        const Event& e = host.log[k];
        if (e.kind == kEvRead && e.id == conns[0].id && e.a > 0) got += static_cast<size_t>(e.a);
      }
      return got >= want;
    });
    CHECK(ok, "message %d did not arrive", i);
    for (size_t k = mark; k < host.log.size(); k++) {  // the owner gives each chunk back
      Event& e = host.log[k];
      if (e.kind == kEvRead && e.a > 0 && e.b >= 0) {
        CHECK(loop->ReleaseChunk(e.b) == 0);
        e.b = -1;
      }
    }
  }
  // The ring's 16, and the chunk the owner holds while the ring is stocked again: 2 slabs.
  CHECK(loop->pool()->slabs() <= 2, "one quiet reader made %d slabs of the pool", loop->pool()->slabs());
  CHECK(loop->pool()->in_use() <= 17, "%d chunks in use for one quiet reader", loop->pool()->in_use());
  // A burst: every connection's message at once, no chunk given back while they arrive.
  for (int i = 1; i < kConns; i++) StartStream(loop.get(), conns[i].id);
  Pump(loop.get(), &host, 5);
  size_t burst = host.log.size();
  for (int round = 0; round < 2; round++) {
    for (int i = 1; i < kConns; i++) {
      std::string m = "b" + std::to_string(i) + "r" + std::to_string(round) + ";";
      CHECK(write(conns[i].peer, m.data(), m.size()) == static_cast<ssize_t>(m.size()));
    }
    bool ok = PumpUntil(loop.get(), &host, [&] {
      int reads = 0;
      for (size_t k = burst; k < host.log.size(); k++) reads += host.log[k].kind == kEvRead && host.log[k].a > 0;
      return reads >= (kConns - 1) * (round + 1);
    });
    CHECK(ok, "round %d: not every connection's message arrived", round);
  }
  // What is in use beyond the held reads is the ring, stocked back to its level.
  int ring = loop->pool()->in_use() - 2 * (kConns - 1);
  CHECK(ring > 16, "the ring holds %d chunks after a burst of %d: it did not grow", ring, kConns - 1);
  for (int i = 1; i < kConns; i++) {
    std::string want = "b" + std::to_string(i) + "r0;b" + std::to_string(i) + "r1;";
    std::string got = ReadBytes(loop.get(), &host, conns[i].id, burst);
    CHECK(got == want, "conn %d: got '%s', want '%s'", i, got.c_str(), want.c_str());
  }
  for (size_t k = burst; k < host.log.size(); k++) {
    const Event& e = host.log[k];
    if (e.kind == kEvRead && e.a > 0 && e.b >= 0) CHECK(loop->ReleaseChunk(e.b) == 0);
  }
  for (auto& c : conns) close(c.peer);
  CHECK(host.problems.empty(), "%s", host.problems.empty() ? "" : host.problems[0].c_str());
}

// A TCP dial is the kernel's connect: one submission whose result is the connect's, no
// readiness wait for it and no getsockopt. A write made while connecting goes out once
// connected; a refused connect reports ECONNREFUSED; a close while the connect waits
// cancels it (it would hold the socket in SYN-SENT for minutes) and reports nothing.
TEST(io_uring_connects_through_the_ring) {
  if (!Available()) return;
  MockHost host;
  std::shared_ptr<Counts> counts;
  auto loop = MakeCountingLoop(&host, &counts);
  int port;
  int lid = ListenLocal(loop.get(), &port);
  CHECK(loop->SetAccepting(lid, 1) == 0);
  SockAddr a;
  CHECK(SockAddr::FromIp("127.0.0.1", port, &a) == 0);
  int polls = counts->polls;
  int cid = -1;
  CHECK(loop->Connect(a, &cid) == -EINPROGRESS);
  CHECK(loop->Write(cid, "hello", 5, kNoLimit, MockHost::MakeToken, &host) == 1, "a write while connecting is queued");
  CHECK(PumpUntil(loop.get(), &host, [&] { return host.Find(kEvConnected, cid) && host.Find(kEvWritten, cid); }),
        "no kEvConnected and kEvWritten");
  CHECK(host.Find(kEvConnected, cid)->a == 0, "kEvConnected a=%d", host.Find(kEvConnected, cid)->a);
  CHECK(counts->connects == 1 && counts->polls == polls, "%d connects submitted, %d descriptors watched",
        counts->connects, counts->polls - polls);
  CHECK(PumpUntil(loop.get(), &host, [&] { return host.Find(kEvAccept, lid) != nullptr; }));
  int sid = host.Find(kEvAccept, lid)->a;
  std::string got = ReadChunks(loop.get(), &host, sid, 5, 50);
  CHECK(got == "hello", "the accepted side read '%s'", got.c_str());
  CHECK(loop->Close(sid) == 0 && loop->Close(cid) == 0);

  // Refused: the listener is gone. (Ids are reused: events are looked for after a mark.)
  auto connected_after = [&](size_t mark, int id) -> const Event* {
    for (size_t i = mark; i < host.log.size(); i++)
      if (host.log[i].kind == kEvConnected && host.log[i].id == id) return &host.log[i];
    return nullptr;
  };
  CHECK(loop->Close(lid) == 0);
  Pump(loop.get(), &host, 5);
  size_t mark = host.log.size();
  CHECK(loop->Connect(a, &cid) == -EINPROGRESS);
  CHECK(PumpUntil(loop.get(), &host, [&] { return connected_after(mark, cid) != nullptr; }));
  CHECK(connected_after(mark, cid)->a == -ECONNREFUSED, "refused: kEvConnected a=%d", connected_after(mark, cid)->a);
  CHECK(loop->Close(cid) == 0);

  // Pending: a listener whose accept queue is full drops the SYN, so the connect waits.
  int full = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  SockAddr any;
  CHECK(SockAddr::FromIp("127.0.0.1", 0, &any) == 0);
  CHECK(bind(full, reinterpret_cast<const sockaddr*>(&any.storage), any.len) == 0 && listen(full, 0) == 0);
  SockAddr fa;
  CHECK(LocalAddr(full, &fa) == 0);
  int queued = RawConnect(fa.Port());  // fills the queue of one
  size_t results = counts->connected.size();
  mark = host.log.size();
  CHECK(loop->Connect(fa, &cid) == -EINPROGRESS);
  Pump(loop.get(), &host, 50);
  CHECK(connected_after(mark, cid) == nullptr, "the connect to a full queue did not wait");
  CHECK(loop->Close(cid) == 0);
  CHECK(PumpUntil(loop.get(), &host, [&] { return counts->connected.size() > results; }),
        "the closed socket's connect never ended");
  CHECK(counts->connected.back() == -ECANCELED, "the closed socket's connect ended with %d", counts->connected.back());
  Pump(loop.get(), &host, 5);
  CHECK(connected_after(mark, cid) == nullptr, "a closed socket's connect was reported");
  close(queued);
  close(full);
  CHECK(host.problems.empty(), "%s", host.problems.empty() ? "" : host.problems[0].c_str());
}

// An owner that stops reading stops the taking: a stopped stream read's receive is
// cancelled (nothing more leaves the kernel), and an abandoned single read (a deadline)
// takes one chunk at most. A read later gets every byte, in order.
TEST(io_uring_unread_data_stays_in_the_kernel_and_in_order) {
  if (!Available()) return;
  for (int mode : {kReadStream, kReadChunk}) {
    MockHost host;
    auto loop = MakeLoop(&host, kUring);
    auto conns = Accept(loop.get(), &host, 1);
    int id = conns[0].id, peer = conns[0].peer;
    int chunk;
    CHECK(loop->ReadStart(id, mode, nullptr, 0, nullptr, nullptr, &chunk) == -EINPROGRESS);
    Pump(loop.get(), &host, 5);
    CHECK(loop->ReadStop(id) == 0);
    int before = loop->pool()->in_use();
    std::string sent = SendMessages(loop.get(), &host, peer, 40);
    // Chunks out of the ring for this connection: the ring is stocked back to its level
    // after each batch, so what is held shows as chunks in use above it.
    int held = loop->pool()->in_use() - before;
    CHECK(held <= 1, "mode %d: %d chunks held for an owner that reads nothing", mode, held);
    CHECK(host.Count(kEvRead, id) == 0, "mode %d: a stopped read was reported", mode);
    std::string got = ReadChunks(loop.get(), &host, id, sent.size(), 200);
    CHECK(got == sent, "mode %d: got %zu bytes '%s...', sent %zu", mode, got.size(), got.substr(0, 20).c_str(),
          sent.size());
    close(peer);
  }
}

// A stream read that stops cancels its receive, which has no byte limit; when that
// cancellation does not reach the kernel (a full ring whose io_uring_enter fails), nor the
// one made when kMaxReceived results wait unread, the next unread result tries again: the
// owner that reads nothing holds a few chunks, not the ring. Every byte is read later, in
// order.
TEST(io_uring_stopped_stream_read_cancels_again_when_a_cancel_is_lost) {
  if (!Available()) return;
  MockHost host;
  std::shared_ptr<Counts> counts;
  auto loop = MakeCountingLoop(&host, &counts);
  auto conns = Accept(loop.get(), &host, 1);
  int id = conns[0].id, peer = conns[0].peer;
  StartStream(loop.get(), id);
  Pump(loop.get(), &host, 5);
  counts->lose_receive_cancels = 2;
  CHECK(loop->ReadStop(id) == 0);
  int before = loop->pool()->in_use();
  std::string sent = SendMessages(loop.get(), &host, peer, 40);
  int held = loop->pool()->in_use() - before;
  CHECK(counts->receive_cancels == 3, "%d cancellations of the receive (want 3: two lost, one taken)",
        counts->receive_cancels);
  CHECK(held <= static_cast<int>(Loop::kMaxReceived) + 2, "%d chunks held for an owner that reads nothing", held);
  CHECK(host.Count(kEvRead, id) == 0, "a stopped read was reported");
  std::string got = ReadChunks(loop.get(), &host, id, sent.size(), 200);
  CHECK(got == sent, "got %zu bytes '%s...', sent %zu", got.size(), got.substr(0, 20).c_str(), sent.size());
  close(peer);
}

// Where the kernel limits a multishot receive (Linux 6.16+), a Go-style reader's reads share
// one: ten messages read one by one arm one receive, not ten. A reader that then stops
// reading (no read started, no ReadStop) has taken at most the limit out of the kernel,
// whatever the peer sends. Where it cannot (MUXNET_IO_URING_RECEIVE_LIMIT=0, the third run of
// scripts/test-native.sh) each read arms a receive of its own, and a reader that stops takes
// nothing. Either way a read later gets every byte, in order.
TEST(io_uring_single_reads_share_one_limited_receive) {
  if (!Available()) return;
  MockHost host;
  std::shared_ptr<Counts> counts;
  auto loop = MakeCountingLoop(&host, &counts);
  const bool limited = counts->receive_limit;
  const char* knob = getenv("MUXNET_IO_URING_RECEIVE_LIMIT");
  CHECK(!(limited && knob != nullptr && strcmp(knob, "0") == 0),
        "MUXNET_IO_URING_RECEIVE_LIMIT=0 and the backend still limits its receives");
  printf("  (%s)\n", limited ? "limited multishot receive" : "no receive limit: a receive per read");
  auto conns = Accept(loop.get(), &host, 1);
  int id = conns[0].id, peer = conns[0].peer;
  char buf[16];
  MockHost::BufferRef ref{&host, buf, sizeof buf};
  int chunk;
  for (int i = 0; i < 10; i++) {
    size_t mark = host.log.size();
    ssize_t n = loop->ReadStart(id, kReadBuffer, buf, sizeof buf, MockHost::MakeBufferToken, &ref, &chunk);
    CHECK(n == -EINPROGRESS, "read %d: ReadStart -> %zd", i, n);
    std::string m = "m" + std::to_string(i);
    CHECK(write(peer, m.data(), m.size()) == static_cast<ssize_t>(m.size()));
    CHECK(PumpUntil(loop.get(), &host, [&] { return host.Count(kEvRead, id) == i + 1; }), "read %d never came", i);
    const Event* e = nullptr;
    for (size_t j = mark; j < host.log.size(); j++)
      if (host.log[j].kind == kEvRead && host.log[j].id == id) e = &host.log[j];
    CHECK(e != nullptr && e->a == static_cast<int>(m.size()) && memcmp(buf, m.data(), m.size()) == 0,
          "read %d: %d bytes", i, e == nullptr ? -1 : e->a);
  }
  CHECK(counts->receives == (limited ? 1 : 10), "%d receives armed for 10 single reads", counts->receives);

  // The owner stops reading; the peer sends more than the limit, in one go.
  int64_t before = counts->received_bytes;
  std::string sent(2 * Loop::kReceiveLimit, '\0');
  for (size_t i = 0; i < sent.size(); i++) sent[i] = static_cast<char>('a' + i % 23);
  size_t off = 0;
  for (int i = 0; i < 200 && off < sent.size(); i++) {
    ssize_t w = write(peer, sent.data() + off, sent.size() - off);
    if (w > 0) off += static_cast<size_t>(w);
    Pump(loop.get(), &host, 5);
  }
  for (int i = 0; i < 5; i++) Pump(loop.get(), &host, 5);
  int64_t taken = counts->received_bytes - before;
  CHECK(limited ? taken > 0 && taken <= static_cast<int64_t>(Loop::kReceiveLimit) : taken == 0,
        "%lld bytes taken from the kernel for an owner that stopped reading (limit %u)",
        static_cast<long long>(taken), Loop::kReceiveLimit);
  std::string got = ReadChunks(loop.get(), &host, id, sent.size(), 2000, [&] {
    if (off < sent.size()) {
      ssize_t w = write(peer, sent.data() + off, sent.size() - off);
      if (w > 0) off += static_cast<size_t>(w);
    }
  });
  CHECK(off == sent.size() && got == sent, "got %zu bytes of %zu sent (%zu written)", got.size(), sent.size(), off);
  close(peer);
  CHECK(host.live_tokens.empty(), "a read token was kept");
}

// A stream read (onData) keeps one receive for as long as it reads: four times the single
// reads' limit arrives, chunks given back as they come, without arming again (a receive
// ended every 192 KiB put an echoed stream in step with its peer, at up to twice the CPU).
TEST(io_uring_stream_read_keeps_one_receive_past_the_single_reads_limit) {
  if (!Available()) return;
  MockHost host;
  std::shared_ptr<Counts> counts;
  auto loop = MakeCountingLoop(&host, &counts);
  auto conns = Accept(loop.get(), &host, 1);
  int id = conns[0].id, peer = conns[0].peer;
  size_t mark = host.log.size();
  StartStream(loop.get(), id);
  std::string sent(4 * Loop::kReceiveLimit, '\0');
  for (size_t i = 0; i < sent.size(); i++) sent[i] = static_cast<char>('a' + i % 19);
  std::string got;
  size_t off = 0, seen = mark;
  int64_t end = NowMs() + 10000;
  while (got.size() < sent.size() && NowMs() < end) {
    if (off < sent.size()) {
      ssize_t w = write(peer, sent.data() + off, std::min<size_t>(sent.size() - off, 64 << 10));
      if (w > 0) off += static_cast<size_t>(w);
    }
    Pump(loop.get(), &host, 5);
    for (; seen < host.log.size(); seen++) {
      const Event& e = host.log[seen];
      if (e.kind != kEvRead || e.id != id) continue;
      CHECK(e.a > 0, "kEvRead %d", e.a);
      got.append(loop->pool()->Data(e.b), e.a);
      CHECK(loop->ReleaseChunk(e.b) == 0);
    }
  }
  CHECK(got == sent, "got %zu of %zu bytes%s", got.size(), sent.size(), got.size() == sent.size() ? ", out of order" : "");
  CHECK(counts->receives == 1, "%d receives armed for one stream read of %zu bytes", counts->receives, sent.size());
  close(peer);
  CHECK(host.problems.empty(), "%s", host.problems.empty() ? "" : host.problems[0].c_str());
}

// A buffer read smaller than what was received takes the start; the rest is the next read's.
TEST(io_uring_short_buffer_read_keeps_the_rest_first) {
  if (!Available()) return;
  MockHost host;
  auto loop = MakeLoop(&host, kUring);
  auto conns = Accept(loop.get(), &host, 1);
  int id = conns[0].id, peer = conns[0].peer;
  char buf[2];
  MockHost::BufferRef ref{&host, buf, sizeof buf};
  int chunk;
  // Drain the first, direct read path: the receive is armed from the second read on.
  ssize_t n = loop->ReadStart(id, kReadBuffer, buf, sizeof buf, MockHost::MakeBufferToken, &ref, &chunk);
  CHECK(n == -EINPROGRESS, "ReadStart -> %zd", n);
  CHECK(write(peer, "abcdef", 6) == 6);
  CHECK(PumpUntil(loop.get(), &host, [&] { return host.Count(kEvRead, id) == 1; }));
  CHECK(host.Find(kEvRead, id)->a == 2 && memcmp(buf, "ab", 2) == 0, "first read: %d", host.Find(kEvRead, id)->a);
  n = loop->ReadStart(id, kReadChunk, nullptr, 0, nullptr, nullptr, &chunk);
  CHECK(n == 4 && memcmp(loop->pool()->Data(chunk), "cdef", 4) == 0, "second read -> %zd", n);
  CHECK(loop->ReleaseChunk(chunk) == 0);
  close(peer);
  CHECK(host.live_tokens.empty(), "a read token was kept");
}

// A stream read restarted while its stopped receive is being cancelled is armed again when
// the cancellation ends; if the peer's last bytes and its end are both in the socket by
// then, the read gets the bytes and then the end, on TCP and on a Unix stream socket.
TEST(io_uring_rearmed_stream_read_gets_the_last_bytes_and_the_end) {
  if (!Available()) return;
  for (bool unix_socket : {false, true}) {
    MockHost host;
    auto loop = MakeLoop(&host, kUring);
    int id, peer;
    if (unix_socket) {
      int sv[2];
      CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
      CHECK(loop->Adopt(sv[0], HandleKind::kStream, &id) == 0);
      peer = sv[1];
    } else {
      auto conns = Accept(loop.get(), &host, 1);
      id = conns[0].id;
      peer = conns[0].peer;
    }
    const char* kind = unix_socket ? "unix" : "tcp";
    StartStream(loop.get(), id);
    Pump(loop.get(), &host, 5);  // armed, waiting
    CHECK(loop->ReadStop(id) == 0);
    StartStream(loop.get(), id);  // waits for the cancellation to end
    CHECK(write(peer, "bye", 3) == 3);
    CHECK(shutdown(peer, SHUT_WR) == 0);
    size_t mark = 0;
    int eof = 0;
    bool ok = PumpUntil(loop.get(), &host, [&] {
      eof = 0;
      ReadBytes(loop.get(), &host, id, mark, &eof);
      return eof > 0;
    }, 2000);
    std::string got = ReadBytes(loop.get(), &host, id, mark);
    CHECK(ok, "%s: no end of stream after '%s'", kind, got.c_str());
    CHECK(got == "bye", "%s: got '%s'", kind, got.c_str());
    for (const Event& e : host.log)
      if (e.kind == kEvRead && e.id == id && e.a > 0) CHECK(loop->ReleaseChunk(e.b) == 0);
    close(peer);
  }
}

// Closing a socket whose receive is armed cancels the receive, so the socket really closes
// (the peer sees the end) although the kernel held it for the receive; a result the kernel
// made before the close gives its chunk back to the pool.
TEST(io_uring_close_cancels_the_receive_and_late_results_return_their_chunk) {
  if (!Available()) return;
  MockHost host;
  auto loop = MakeLoop(&host, kUring);
  auto conns = Accept(loop.get(), &host, 2);
  for (auto& c : conns) StartStream(loop.get(), c.id);
  Pump(loop.get(), &host, 5);
  int ring = loop->pool()->in_use();
  // conns[0]: data arrives (the kernel fills a chunk) and the handle closes before the loop
  // reaps that result. conns[1]: closed with nothing received.
  CHECK(write(conns[0].peer, "late", 4) == 4);
  usleep(20000);
  size_t mark = host.log.size();
  CHECK(loop->Close(conns[0].id) == 0);
  CHECK(loop->Close(conns[1].id) == 0);
  for (int i = 0; i < 5; i++) Pump(loop.get(), &host, 5);
  CHECK(host.log.size() == mark, "an event for a closed handle was delivered");
  CHECK(loop->pool()->in_use() == ring, "%d chunks in use after the close, %d before",
        loop->pool()->in_use(), ring);
  for (auto& c : conns) {
    pollfd p{c.peer, POLLIN, 0};
    CHECK(poll(&p, 1, 2000) == 1, "the peer never saw the close");
    // The end, or a reset where the data was still in the socket at the close (with
    // DEFER_TASKRUN, the default, the kernel receives only when the loop enters the ring).
    char b;
    CHECK(read(c.peer, &b, 1) <= 0, "the peer read data, not the close");
    close(c.peer);
  }
}

namespace {

// The ids of the kEvAccept events for listener `lid` in the log from `mark`.
std::vector<int> AcceptedIds(MockHost* host, int lid, size_t mark) {
  std::vector<int> ids;
  for (size_t i = mark; i < host->log.size(); i++)
    if (host->log[i].kind == kEvAccept && host->log[i].id == lid) ids.push_back(host->log[i].a);
  return ids;
}

}  // namespace

// Connections come from the ring's accepts, never more at once than the owner's budget:
// the rest wait in the kernel's backlog. Accepts that complete after the owner paused wait
// in the loop (not handed out, not lost, not reset) until it accepts again, then come in
// order.
TEST(io_uring_accept_keeps_the_budget_and_what_completes_after_a_pause) {
  if (!Available()) return;
  MockHost host;
  std::shared_ptr<Counts> counts;
  auto loop = MakeCountingLoop(&host, &counts);
  int port;
  int lid = ListenLocal(loop.get(), &port);
  constexpr int kPeers = 4;
  int peers[kPeers];
  for (int i = 0; i < kPeers; i++) {
    peers[i] = RawConnect(port);
    char tag = static_cast<char>('a' + i);
    CHECK(write(peers[i], &tag, 1) == 1);
  }
  CHECK(loop->SetAccepting(lid, 1) == 0);
  CHECK(PumpUntil(loop.get(), &host, [&] { return !AcceptedIds(&host, lid, 0).empty(); }), "no accept");
  for (int i = 0; i < 5; i++) Pump(loop.get(), &host, 5);
  CHECK(AcceptedIds(&host, lid, 0).size() == 1, "%zu connections handed out on a budget of 1",
        AcceptedIds(&host, lid, 0).size());
  CHECK(counts->accepted == 1, "the kernel accepted %d connections on a budget of 1", counts->accepted);
  // Accepting, then paused before the loop runs: the accepts complete at their submission
  // (the backlog has the connections), their results come after the pause.
  CHECK(loop->SetAccepting(lid, 3) == 0);
  CHECK(loop->SetAccepting(lid, 0) == 0);
  for (int i = 0; i < 5; i++) Pump(loop.get(), &host, 5);
  CHECK(AcceptedIds(&host, lid, 0).size() == 1, "%zu connections handed out while paused",
        AcceptedIds(&host, lid, 0).size());
  CHECK(loop->SetAccepting(lid, 10) == 0);
  CHECK(PumpUntil(loop.get(), &host, [&] { return AcceptedIds(&host, lid, 0).size() == kPeers; }),
        "%zu of %d connections handed out after accepting again", AcceptedIds(&host, lid, 0).size(), kPeers);
  CHECK(counts->accepted == kPeers, "%d connections came from the ring's accepts", counts->accepted);
  std::vector<int> ids = AcceptedIds(&host, lid, 0);
  for (int i = 0; i < kPeers; i++) {
    char tag = 0;
    CHECK(WaitFd(loop->Fd(ids[i]), false, 2000), "connection %d: no byte", i);
    CHECK(read(loop->Fd(ids[i]), &tag, 1) == 1);
    CHECK(tag == 'a' + i, "connection %d carries peer %c's byte", i, tag);
    CHECK(loop->Close(ids[i]) == 0);
    close(peers[i]);
  }
  CHECK(loop->Close(lid) == 0);
  Pump(loop.get(), &host, 5);
}

// Closing a listener whose accept is armed and whose accepted connections wait for the
// owner: the waiting ones are closed (the peers see the end), nothing leaks (the test
// runner counts descriptors), and the port is free at once (the kernel let go of the
// listening socket: the accept was cancelled).
TEST(io_uring_closed_listener_closes_what_waits_and_frees_the_port) {
  if (!Available()) return;
  MockHost host;
  auto loop = MakeLoop(&host, kUring);
  int port;
  int lid = ListenLocal(loop.get(), &port);
  int peers[3];
  for (int& p : peers) p = RawConnect(port);
  CHECK(loop->SetAccepting(lid, 1) == 0);
  CHECK(PumpUntil(loop.get(), &host, [&] { return !AcceptedIds(&host, lid, 0).empty(); }), "no accept");
  for (int i = 0; i < 5; i++) Pump(loop.get(), &host, 5);
  int first = AcceptedIds(&host, lid, 0)[0];
  CHECK(loop->SetAccepting(lid, 1) == 0);  // armed again, with two waiting to be handed out
  CHECK(loop->Close(lid) == 0);
  // At once, before the loop runs again (as a server that closes a listener and listens
  // anew in one step).
  SockAddr a;
  CHECK(SockAddr::FromIp("127.0.0.1", port, &a) == 0);
  int again = -1;
  int err = loop->Listen(a, ListenOptions{}, &again);
  CHECK(err == 0, "listening again on the closed listener's port -> %d", err);
  for (int i = 0; i < 5; i++) Pump(loop.get(), &host, 5);
  CHECK(AcceptedIds(&host, lid, 0).size() == 1, "a closed listener handed out a connection");
  for (int i = 1; i < 3; i++) {
    CHECK(WaitFd(peers[i], false, 2000), "peer %d never saw its connection closed", i);
    char b;
    CHECK(read(peers[i], &b, 1) <= 0, "peer %d read data", i);
  }
  // The same with accepts in flight (the backlog is empty): they hold the listening socket
  // until they are cancelled.
  CHECK(loop->SetAccepting(again, 4) == 0);
  CHECK(loop->Close(again) == 0);
  err = loop->Listen(a, ListenOptions{}, &again);
  CHECK(err == 0, "listening again after closing a listener with accepts in flight -> %d", err);
  CHECK(loop->Close(again) == 0);
  CHECK(loop->Close(first) == 0);
  for (int p : peers) close(p);
  Pump(loop.get(), &host, 5);
}

namespace {

// A connection whose peer reads nothing yet and whose buffers are small, so that a large
// write waits in the kernel: {peer, server-side id}.
std::pair<int, int> SlowPeer(Loop* loop, MockHost* host) {
  int port;
  int lid = ListenLocal(loop, &port);
  int peer = RawConnect(port, 4096);
  CHECK(loop->SetAccepting(lid, 1) == 0);
  CHECK(PumpUntil(loop, host, [&] { return host->Count(kEvAccept) == 1; }));
  int sid = host->Find(kEvAccept)->a;
  CHECK(SetBufferSize(loop->Fd(sid), false, 4096) == 0);
  return {peer, sid};
}

// Reads from raw socket `peer` until its end (or a reset) or `want` bytes, pumping the loop
// (if there still is one).
std::string DrainPeer(Loop* loop, MockHost* host, int peer, size_t want = SIZE_MAX) {
  std::string got;
  char buf[65536];
  int64_t end = NowMs() + 10000;
  while (got.size() < want && NowMs() < end) {
    // Nothing to read yet: the loop may have to take the send further first (with
    // DEFER_TASKRUN the kernel does that work only in the loop's io_uring_enter).
    if (!WaitFd(peer, false, 5)) {
      if (loop != nullptr) Pump(loop, host, 0);
      continue;
    }
    ssize_t n = RawRead(peer, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN)) break;
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    if (loop != nullptr) Pump(loop, host, 0);
  }
  return got;
}

}  // namespace

// Writes are sends from the writer's memory, one in flight per socket: eight large writes
// to a slow peer arrive whole and in order, and no request's memory is let go of (here:
// overwritten) before the kernel took all of it.
TEST(io_uring_sends_keep_order_and_the_memory_until_written) {
  if (!Available()) return;
  MockHost host;
  host.poison_released = true;
  std::shared_ptr<Counts> counts;
  auto loop = MakeCountingLoop(&host, &counts);
  auto [peer, sid] = SlowPeer(loop.get(), &host);
  std::vector<std::string> data(8);
  std::vector<MockHost::BufferRef> refs;
  refs.reserve(data.size());
  std::string want;
  for (size_t k = 0; k < data.size(); k++) {
    data[k].assign(256 << 10, '\0');
    for (size_t i = 0; i < data[k].size(); i++) data[k][i] = static_cast<char>('a' + (i * 7 + k) % 26);
    want += data[k];
    refs.push_back({&host, data[k].data(), data[k].size()});
    int rc = loop->Write(sid, data[k].data(), data[k].size(), kNoLimit, MockHost::MakeBufferToken, &refs[k]);
    CHECK(rc == 1, "write %zu -> %d (a send: completed by its result)", k, rc);
  }
  std::string got = DrainPeer(loop.get(), &host, peer, want.size());
  CHECK(got.size() == want.size() && got == want, "the peer got %zu of %zu bytes, %s", got.size(), want.size(),
        got.find('X') != std::string::npos ? "some from memory let go of" : "out of order");
  CHECK(PumpUntil(loop.get(), &host, [&] { return host.live_tokens.empty(); }), "tokens kept after all was read");
  int written = WritesCompleted(host, sid);
  CHECK(written == 8, "kEvWritten for %d of 8 writes", written);
  CHECK(counts->most_in_flight == 1, "at most %d sends in flight at once", counts->most_in_flight);
  RawClose(peer);
  CHECK(host.problems.empty(), "%s", host.problems.empty() ? "" : host.problems[0].c_str());
}

// Writes made while a send is in the kernel wait behind it and then go out together: one
// send takes every queued request (a send per request let the queue of an echoed stream
// grow until the pool ran dry). Each request's memory is kept until the kernel took it all,
// and each completes once, in order.
TEST(io_uring_writes_queued_behind_a_send_go_out_in_one) {
  if (!Available()) return;
  std::vector<std::string> data(11);  // before the loop: a failed CHECK ends the loop first
  std::vector<MockHost::BufferRef> refs;
  refs.reserve(data.size());
  MockHost host;
  host.poison_released = true;
  std::shared_ptr<Counts> counts;
  auto loop = MakeCountingLoop(&host, &counts);
  auto [peer, sid] = SlowPeer(loop.get(), &host);
  std::string want;
  for (size_t k = 0; k < data.size(); k++) {
    // The first is large: the peer takes it a little at a time, and the other ten wait.
    data[k].assign(k == 0 ? 512 << 10 : 1000 + k, static_cast<char>('A' + k));
    want += data[k];
    refs.push_back({&host, data[k].data(), data[k].size()});
    CHECK(loop->Write(sid, data[k].data(), data[k].size(), kNoLimit, MockHost::MakeBufferToken, &refs[k]) == 1,
          "write %zu", k);
  }
  CHECK(counts->sends == 1, "%d sends before the first's result", counts->sends);
  std::string got = DrainPeer(loop.get(), &host, peer, want.size());
  CHECK(got == want, "the peer got %zu of %zu bytes, %s", got.size(), want.size(),
        got.find('X') != std::string::npos ? "some from memory let go of" : "out of order");
  CHECK(PumpUntil(loop.get(), &host, [&] { return host.live_tokens.empty(); }), "tokens kept after all was read");
  CHECK(counts->most_buffers == 11, "at most %d requests in one send (the first's rest and the ten queued: 11)",
        counts->most_buffers);
  CHECK(counts->most_in_flight == 1, "at most %d sends in flight at once", counts->most_in_flight);
  int written = WritesCompleted(host, sid);
  CHECK(written == 11, "kEvWritten for %d of 11 writes", written);
  RawClose(peer);
  CHECK(host.problems.empty(), "%s", host.problems.empty() ? "" : host.problems[0].c_str());
}

// More gathered sends in one batch than the backend has room for their headers: each
// connection's first write goes out alone and two more wait behind it; the firsts' results
// come in one batch, and each connection's two go out in one send then, 40 of them. The
// backend submits what is queued when its headers are all in use and reuses them, so every
// peer gets its own bytes, in order (a header reused before its submission was taken would
// send one connection's requests on another).
TEST(io_uring_more_gathered_sends_in_a_batch_than_headers_all_arrive) {
  if (!Available()) return;
  constexpr int kConns = 40;  // more than the backend's 32 headers
  std::vector<std::string> data(kConns * 3);
  std::vector<MockHost::BufferRef> refs;
  refs.reserve(data.size());
  MockHost host;
  host.poison_released = true;
  std::shared_ptr<Counts> counts;
  auto loop = MakeCountingLoop(&host, &counts);
  std::vector<Conn> conns = Accept(loop.get(), &host, kConns);
  std::vector<std::string> want(kConns);
  for (int i = 0; i < kConns; i++) {
    for (int k = 0; k < 3; k++) {
      std::string& d = data[i * 3 + k];
      char tag[48];
      snprintf(tag, sizeof tag, "<conn %02d write %d>", i, k);
      for (int r = 0; r < 20; r++) d += tag;
      want[i] += d;
      refs.push_back({&host, d.data(), d.size()});
      CHECK(loop->Write(conns[i].id, d.data(), d.size(), kNoLimit, MockHost::MakeBufferToken, &refs.back()) == 1,
            "write %d on connection %d", k, i);
    }
  }
  CHECK(counts->sends == kConns, "%d sends before the firsts' results (one per connection)", counts->sends);
  CHECK(PumpUntil(loop.get(), &host, [&] { return host.live_tokens.empty(); }), "tokens kept");
  CHECK(counts->most_gathered == kConns, "at most %d gathered sends in one batch (want all %d)",
        counts->most_gathered, kConns);
  CHECK(counts->sends == kConns * 2, "%d sends (want %d: each connection's first, then its other two together)",
        counts->sends, kConns * 2);
  for (int i = 0; i < kConns; i++) {
    std::string got = DrainPeer(loop.get(), &host, conns[i].peer, want[i].size());
    CHECK(got == want[i], "connection %d's peer got %zu of %zu bytes: %.40s", i, got.size(), want[i].size(),
          got.c_str());
    RawClose(conns[i].peer);
  }
  CHECK(host.problems.empty(), "%s", host.problems.empty() ? "" : host.problems[0].c_str());
}

// Closing a socket whose send waits in the kernel (the peer reads nothing) cancels the send,
// so the socket really closes; the write's memory is let go of only when the cancelled
// send's result comes, and nothing the peer receives was sent from it after that. The same
// when the whole loop goes away with the send in the kernel.
TEST(io_uring_close_cancels_the_send_and_keeps_its_memory_until_it_ends) {
  if (!Available()) return;
  for (bool destroy : {false, true}) {
    const char* how = destroy ? "loop destroyed" : "closed";
    MockHost host;
    host.poison_released = true;
    auto loop = MakeLoop(&host, kUring);
    auto [peer, sid] = SlowPeer(loop.get(), &host);
    std::string data(4 << 20, 'd');
    MockHost::BufferRef ref{&host, data.data(), data.size()};
    CHECK(loop->Write(sid, data.data(), data.size(), kNoLimit, MockHost::MakeBufferToken, &ref) == 1);
    for (int i = 0; i < 5; i++) Pump(loop.get(), &host, 5);  // the send waits for room now
    CHECK(host.live_tokens.size() == 1, "%s: the write's token went before its send ended", how);
    if (destroy) {
      loop.reset();
    } else {
      CHECK(loop->Close(sid) == 0);
      CHECK(host.live_tokens.size() == 1, "%s: the token was let go of while the send was in the kernel", how);
      CHECK(PumpUntil(loop.get(), &host, [&] { return host.live_tokens.empty(); }),
            "%s: the cancelled send's token was never let go of", how);
    }
    CHECK(host.live_tokens.empty(), "%s: the token was kept", how);
    std::string got = DrainPeer(loop.get(), &host, peer);  // to the end: the socket closed
    CHECK(!got.empty() && got.size() < data.size(), "%s: the peer got %zu bytes", how, got.size());
    CHECK(got.find_first_not_of('d') == std::string::npos, "%s: the peer got bytes sent from memory let go of", how);
    CHECK(host.Count(kEvWritten) == 0, "%s: a dropped write was reported written", how);
    RawClose(peer);
  }
}

// Writes cancelled while a send of several of them is in the kernel keep their memory until
// that send's result comes, whatever the cancellation does: here it never reaches the kernel,
// and the send goes on when the peer reads. Every request the send took keeps its token, and
// a pool chunk one of them was written from (an echoed read) stays out of the pool when its
// owner gives it back, so nothing is sent from memory let go of or from a chunk handed out
// again. Before, only the first request's memory was kept.
TEST(io_uring_cancelled_writes_keep_their_memory_until_the_send_ends) {
  if (!Available()) return;
  std::vector<std::string> data{std::string(100, 'a'), std::string(100, 'b'), std::string(256 << 10, 'd')};
  std::vector<MockHost::BufferRef> refs;
  refs.reserve(data.size() + 1);
  MockHost host;
  host.poison_released = true;
  std::shared_ptr<Counts> counts;
  auto loop = MakeCountingLoop(&host, &counts);
  auto [peer, sid] = SlowPeer(loop.get(), &host);
  BufferPool* pool = loop->pool();
  int chunk = pool->Acquire();  // what an echo writes: a received chunk
  CHECK(chunk >= 0);
  memset(pool->Data(chunk), 'c', BufferPool::kChunkSize);
  int in_use = pool->in_use();
  // A goes out alone; B, the chunk C and D wait behind it and go out together after it,
  // more than the small buffers take: the send ends short, and the next takes what is left.
  const std::vector<std::pair<const char*, size_t>> writes{{data[0].data(), data[0].size()},
                                                           {data[1].data(), data[1].size()},
                                                           {pool->Data(chunk), BufferPool::kChunkSize},
                                                           {data[2].data(), data[2].size()}};
  std::string want;
  for (const auto& [p, len] : writes) {
    refs.push_back({&host, const_cast<char*>(p), len});
    CHECK(loop->Write(sid, p, len, kNoLimit, MockHost::MakeBufferToken, &refs.back()) == 1);
    want.append(p, len);
  }
  CHECK(PumpUntil(loop.get(), &host, [&] { return counts->most_buffers == 3; }), "no send took B, C and D");
  for (int i = 0; i < 5; i++) Pump(loop.get(), &host, 5);  // a send waits for room now
  int written = WritesCompleted(host, sid);
  const size_t unsent = writes.size() - static_cast<size_t>(written);
  CHECK(unsent >= 2, "%zu requests left for the send in the kernel (the test wants C and D there)", unsent);
  counts->lose_cancels = true;
  CHECK(loop->CancelWrites(sid) == 0);
  CHECK(host.live_tokens.size() == unsent, "%zu of the send's %zu tokens kept after CancelWrites",
        host.live_tokens.size(), unsent);
  // The owner gives the chunk back, as a failed write's owner does; the pool must not hand
  // it out while the send reads from it.
  CHECK(loop->ReleaseChunk(chunk) == 0);
  CHECK(loop->ReleaseChunk(chunk) == -EINVAL, "a chunk given back twice was taken");
  CHECK(loop->ReleaseChunk(-1) == -EINVAL, "chunk -1 was taken");
  CHECK(pool->in_use() == in_use, "the chunk went back to the pool while the send read from it");
  int other = pool->Acquire();
  CHECK(other >= 0 && other != chunk, "the pool handed out the chunk the send reads from");
  memset(pool->Data(other), 'X', BufferPool::kChunkSize);
  CHECK(pool->Release(other) == 0);
  // The peer reads: the send takes what fits and ends (short), and nothing follows it.
  std::string got;
  char buf[65536];
  int64_t end = NowMs() + 5000;
  while (NowMs() < end && !host.live_tokens.empty()) {
    if (WaitFd(peer, false, 5)) {
      ssize_t n = RawRead(peer, buf, sizeof buf);
      if (n > 0) got.append(buf, static_cast<size_t>(n));
    }
    Pump(loop.get(), &host, 0);
  }
  CHECK(host.live_tokens.empty(), "tokens kept after the send ended");
  while (WaitFd(peer, false, 50)) {
    ssize_t n = RawRead(peer, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  CHECK(got.size() > 200 && got.size() < want.size() && got == want.substr(0, got.size()),
        "the peer got %zu of %zu bytes, %s", got.size(), want.size(),
        got.find('X') != std::string::npos ? "some from memory let go of" : "not what was written");
  CHECK(pool->in_use() == in_use - 1, "the chunk never went back to the pool (%d in use, %d before)",
        pool->in_use(), in_use);
  RawClose(peer);
  CHECK(host.problems.empty(), "%s", host.problems.empty() ? "" : host.problems[0].c_str());
}

// A send the kernel gives back with -EAGAIN (nothing sent, not waiting for room: seen under
// the API fuzz) is not a write error: the queue is flushed on readiness, and a shutdown
// asked for meanwhile follows it. Before, every queued write failed with EAGAIN and the
// shutdown never came, so the peer waited for the end of the stream for ever.
TEST(io_uring_send_given_back_with_eagain_is_flushed_on_readiness) {
  if (!Available()) return;
  std::string data(100000, '\0');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>('a' + i % 17);
  MockHost host;
  MockHost::BufferRef ref{&host, data.data(), data.size()};
  std::shared_ptr<Counts> counts;
  auto loop = MakeCountingLoop(&host, &counts);
  auto conns = Accept(loop.get(), &host, 1);
  int id = conns[0].id, peer = conns[0].peer;
  counts->eagain_sends = 1;
  CHECK(loop->Write(id, data.data(), data.size(), kNoLimit, MockHost::MakeBufferToken, &ref) == 1);
  CHECK(loop->ShutdownWrite(id) == 0);
  loop->RunInline();  // the send's result: -EAGAIN
  CHECK(counts->eagain_sends == 0);
  std::string got = DrainPeer(loop.get(), &host, peer);  // to the end of the stream
  CHECK(got == data, "the peer got %zu of %zu bytes%s", got.size(), data.size(),
        got.size() == data.size() ? ", not what was written" : "");
  CHECK(host.Count(kEvWriteError, id) == 0, "the write failed");
  CHECK(PumpUntil(loop.get(), &host, [&] { return host.Count(kEvWritten, id) == 1 && host.live_tokens.empty(); }),
        "the write was not reported written, or its token kept");
  RawClose(peer);
  CHECK(host.problems.empty(), "%s", host.problems.empty() ? "" : host.problems[0].c_str());
}

#endif  // MUXNET_HAVE_IO_URING
