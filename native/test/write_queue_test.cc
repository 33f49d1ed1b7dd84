// WriteQueue through a small socket buffer: partial writes keep the bytes in order, and
// every token comes back exactly once, in request order.
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <random>
#include <string>

#include "../core/write_queue.h"
#include "check.h"
#include "test_sys.h"

using muxnet::WriteQueue;
using namespace muxtest;

namespace {
struct SmallPair {
  int w = -1, r = -1;
  SmallPair() {
    int sv[2];
    CHECK(StreamPair(sv, true) == 0);
    w = sv[0];
    r = sv[1];
    int size = 4096;
    RawSetInt(w, SOL_SOCKET, SO_SNDBUF, size);
    RawSetInt(r, SOL_SOCKET, SO_RCVBUF, size);
  }
  ~SmallPair() {
    if (w >= 0) RawClose(w);
    if (r >= 0) RawClose(r);
  }
};

void* Tok(int i) { return reinterpret_cast<void*>(static_cast<intptr_t>(i + 1)); }
}  // namespace

TEST(write_queue_partial_writes_ordered_tokens_once) {
  std::mt19937 rng(7);
  int total_short_writes = 0;
#ifdef _WIN32
  constexpr bool kPerRound = false;
#else
  constexpr bool kPerRound = true;  // checked in each round instead
#endif
  for (int round = 0; round < 30; round++) {
    SmallPair sp;
    WriteQueue q;
    int nreq = 1 + rng() % (round % 3 == 0 ? 2500 : 300);  // > 1024: more than one writev
    std::vector<std::string> bufs(nreq);
    std::string expect, got;
    for (int i = 0; i < nreq; i++) {
      bufs[i].resize(1 + rng() % 700);
      for (auto& c : bufs[i]) c = static_cast<char>('a' + rng() % 26);
      expect += bufs[i];
    }
    std::vector<void*> done;
    int pushed = 0;
    char rb[65536];
    int flushes = 0, short_writes = 0;
    while (pushed < nreq || !q.empty()) {
      // Interleave pushes with flushes, as the loop does.
      int more = std::min(nreq - pushed, 1 + static_cast<int>(rng() % 200));
      for (int i = 0; i < more; i++, pushed++) q.Push(bufs[pushed].data(), bufs[pushed].size(), Tok(pushed));
      size_t before = q.bytes();
      int err = q.Flush(sp.w, &done);
      flushes++;
      CHECK(err == 0 || err == -EAGAIN, "round %d: Flush -> %d", round, err);
      if (err == -EAGAIN) short_writes++;
      CHECK((err == 0) == q.empty(), "round %d: Flush result and empty() disagree", round);
      CHECK(q.bytes() <= before, "round %d: bytes() grew", round);
      ssize_t n = RawRead(sp.r, rb, 1 + rng() % sizeof rb);
      if (n > 0) got.append(rb, n);
    }
    ReadUntil(sp.r, &got, expect.size(), 5000);
    CHECK(q.bytes() == 0, "round %d: bytes() %zu after drain", round, q.bytes());
    CHECK(got.size() == expect.size(), "round %d: %zu bytes arrived, %zu sent", round,
          got.size(), expect.size());
    CHECK(got == expect, "round %d: bytes out of order or corrupted", round);
    CHECK(static_cast<int>(done.size()) == nreq, "round %d: %zu tokens back for %d requests",
          round, done.size(), nreq);
    for (int i = 0; i < nreq; i++)
      CHECK(done[i] == Tok(i), "round %d: token %d out of order", round, i);
#ifdef _WIN32
    // Windows buffers past a 4 KiB SO_SNDBUF as it sees fit: partial writes must happen in
    // the run, not in every large round.
    total_short_writes += short_writes;
#else
    if (expect.size() > 16384) CHECK(short_writes > 0, "round %d: no partial write exercised", round);
#endif
  }
  CHECK(total_short_writes > 0 || kPerRound, "no partial write exercised in any round");
}

TEST(write_queue_clear_releases_rest_once) {
  SmallPair sp;
  WriteQueue q;
  static std::string big(200000, 'z');
  for (int i = 0; i < 10; i++) q.Push(big.data(), 20000, Tok(i));
  std::vector<void*> done;
  int err = q.Flush(sp.w, &done);
  CHECK(err == -EAGAIN, "Flush -> %d (expected a full socket)", err);
  size_t written = done.size();
  CHECK(written < 10);
  std::vector<void*> dropped;
  q.Clear(&dropped);
  CHECK(q.empty() && q.bytes() == 0);
  CHECK(done.size() + dropped.size() == 10, "%zu + %zu tokens for 10 requests", done.size(),
        dropped.size());
  for (size_t i = 0; i < dropped.size(); i++) CHECK(dropped[i] == Tok(static_cast<int>(written + i)));
  std::vector<void*> again;
  q.Clear(&again);
  CHECK(again.empty(), "Clear twice released tokens again");
  CHECK(q.Flush(sp.w, &again) == 0 && again.empty());
}

// Windows: a send to a closed loopback peer is taken until the peer's reset arrives, then
// fails with ECONNRESET or ECONNABORTED; EPIPE without SIGPIPE is the POSIX promise.
#ifndef _WIN32
TEST(write_queue_peer_closed_gives_epipe_not_sigpipe) {
  SmallPair sp;
  RawClose(sp.r);
  sp.r = -1;
  WriteQueue q;
  char data[100] = {};
  q.Push(data, sizeof data, Tok(0));
  std::vector<void*> done;
  int err = q.Flush(sp.w, &done);
  CHECK(err == -EPIPE, "Flush -> %d", err);
  CHECK(done.empty());
  std::vector<void*> dropped;
  q.Clear(&dropped);
  CHECK(dropped.size() == 1 && dropped[0] == Tok(0));
}
#endif  // !_WIN32

namespace {
// A temporary file holding `bytes`, removed when done.
struct TempFile {
  int fd = -1;
  explicit TempFile(const std::string& bytes) {
    fd = TempFileWith(bytes);
    CHECK(fd >= 0);
  }
  ~TempFile() { CloseFile(fd); }
};
}  // namespace

TEST(write_queue_file_requests_keep_their_place_among_writes) {
  std::string file_bytes(100000, '\0');
  for (size_t i = 0; i < file_bytes.size(); i++) file_bytes[i] = static_cast<char>('A' + i % 23);
  TempFile f(file_bytes);
  SmallPair sp;
  WriteQueue q;
  std::string head = "head:", tail = ":tail";
  q.Push(head.data(), head.size(), Tok(0));
  q.PushFile(f.fd, 1000, 50000, Tok(1));  // bytes [1000, 51000) of the file
  q.Push(tail.data(), tail.size(), Tok(2));
  q.PushFile(f.fd, 0, 10, Tok(3));
  std::string expect = head + file_bytes.substr(1000, 50000) + tail + file_bytes.substr(0, 10);
  CHECK(q.bytes() == expect.size());
  std::string got;
  std::vector<void*> done;
  char rb[65536];
  for (int i = 0; i < 100000 && !q.empty(); i++) {
    int err = q.Flush(sp.w, &done);
    CHECK(err == 0 || err == -EAGAIN, "Flush -> %d", err);
    ssize_t n = RawRead(sp.r, rb, sizeof rb);
    if (n > 0) got.append(rb, static_cast<size_t>(n));
  }
  CHECK(q.empty() && q.bytes() == 0);
  ReadUntil(sp.r, &got, expect.size(), 5000);
  CHECK(got == expect, "got %zu bytes, expected %zu", got.size(), expect.size());
  CHECK(done.size() == 4 && done[0] == Tok(0) && done[1] == Tok(1) && done[2] == Tok(2) && done[3] == Tok(3));
}

TEST(write_queue_file_shorter_than_its_request_gives_enodata) {
  TempFile f("twelve bytes");
  SmallPair sp;
  WriteQueue q;
  q.PushFile(f.fd, 4, 100, Tok(0));
  std::vector<void*> done;
  int err = q.Flush(sp.w, &done);
  CHECK(err == -ENODATA, "Flush -> %d", err);
  CHECK(done.empty());
  char rb[64];
  CHECK(RawRead(sp.r, rb, sizeof rb) == 8, "the 8 bytes the file had were sent");
  std::vector<void*> dropped;
  q.Clear(&dropped);
  CHECK(dropped.size() == 1 && dropped[0] == Tok(0));
}

#ifndef _WIN32  // as write_queue_peer_closed_gives_epipe_not_sigpipe
TEST(write_queue_file_to_closed_peer_gives_epipe_not_sigpipe) {
  // The test runner ignores SIGPIPE; with the default action a raised one would kill it.
  auto old = signal(SIGPIPE, SIG_DFL);
  {
    TempFile f(std::string(1000, 'x'));
    SmallPair sp;
    RawClose(sp.r);
    sp.r = -1;
    WriteQueue q;
    q.PushFile(f.fd, 0, 1000, Tok(0));
    std::vector<void*> done;
    int err = q.Flush(sp.w, &done);
    CHECK(err == -EPIPE, "Flush -> %d", err);
    CHECK(done.empty());
  }
  signal(SIGPIPE, old);
}
#endif  // !_WIN32
