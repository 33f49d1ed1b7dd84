// The AFD backend's own rules (every loop and poller test runs on it too): a poll in flight
// is cancelled and submitted again when the interest grows, a socket removed with its poll
// in flight is never reported, and a failed connect, a reset or a socket closed under its
// registration reaches the loop as a hang-up.
#ifdef _WIN32
#include <string>

#include "../core/poller.h"
#include "check.h"
#include "test_util.h"

using namespace muxnet;
using namespace muxtest;

namespace {

std::unique_ptr<Poller> MakeAfd() {
  std::unique_ptr<Poller> p;
  int err = CreatePoller("afd", &p);
  CHECK(err == 0 && p, "CreatePoller(afd) -> %d", err);
  return p;
}

// A socket pair whose first end is watched for reading, idle: its poll is in flight.
void WatchIdle(Poller* p, Token token, int sv[2]) {
  CHECK(StreamPair(sv, true) == 0);
  CHECK(p->Add(sv[0], token, kReadable) == 0);
  PollEvent ev[4];
  int n = p->Wait(0, ev, 4);
  CHECK(n == 0, "idle socket reported (n=%d)", n);
}

// The next Wait() (up to timeout_ms) reports exactly `token`, as a hang-up.
void ExpectHangup(Poller* p, Token token, int timeout_ms, const char* what) {
  PollEvent ev[4];
  int n = p->Wait(timeout_ms, ev, 4);
  CHECK(n == 1 && ev[0].token == token && (ev[0].events & kHangup), "%s: n=%d events=%x", what, n,
        n > 0 ? ev[0].events : 0);
}

}  // namespace

// Read interest on an idle socket leaves a poll for receive in flight; adding write interest
// must not wait for that poll (it would never come): it is cancelled and asked again.
TEST(afd_poll_resubmitted_when_interest_grows) {
  auto p = MakeAfd();
  int sv[2];
  WatchIdle(p.get(), 5, sv);
  CHECK(p->Modify(sv[0], 6, kReadable | kWritable) == 0);
  PollEvent ev[4];
  int n = p->Wait(5000, ev, 4);
  CHECK(n == 1 && ev[0].token == 6 && ev[0].events == kWritable, "after Modify: n=%d events=%x", n,
        n > 0 ? ev[0].events : 0);
  // Shrunk back to reading: the writable socket is not reported again.
  CHECK(p->Modify(sv[0], 7, kReadable) == 0);
  n = p->Wait(0, ev, 4);
  CHECK(n == 0, "write interest dropped, still reported (n=%d events=%x)", n, n > 0 ? ev[0].events : 0);
  CHECK(RawWrite(sv[1], "x", 1) == 1);
  n = p->Wait(5000, ev, 4);
  CHECK(n == 1 && ev[0].token == 7 && ev[0].events == kReadable, "byte: n=%d events=%x", n,
        n > 0 ? ev[0].events : 0);
  CHECK(p->Remove(sv[0]) == 0);
  RawClose(sv[0]);
  RawClose(sv[1]);
}

// Removed (and closed, as the loop does) while its poll is in flight: whatever that poll
// comes back with belongs to nobody. A poller destroyed with polls in flight leaks nothing
// (the run's descriptor check counts the process's handles).
TEST(afd_removed_with_poll_in_flight_is_never_reported) {
  auto p = MakeAfd();
  int a[2], b[2];
  WatchIdle(p.get(), 1, a);
  WatchIdle(p.get(), 2, b);
  CHECK(p->Remove(a[0]) == 0);
  CHECK(RawWrite(a[1], "x", 1) == 1);  // would complete a's poll, were it still asked
  RawClose(a[0]);
  RawClose(a[1]);
  PollEvent ev[4];
  int n = p->Wait(300, ev, 4);
  CHECK(n == 0, "removed socket reported: n=%d token=%llu events=%x", n,
        static_cast<unsigned long long>(n > 0 ? ev[0].token : 0), n > 0 ? ev[0].events : 0);
  CHECK(RawWrite(b[1], "y", 1) == 1);
  n = p->Wait(5000, ev, 4);
  CHECK(n == 1 && ev[0].token == 2, "the other socket: n=%d", n);
  p.reset();  // b's poll is in flight again
  RawClose(b[0]);
  RawClose(b[1]);
}

// A non-blocking connect to a closed port: write interest learns of it as a hang-up, and
// SO_ERROR says why (the loop's connect path reads it with ConnectResult).
TEST(afd_failed_connect_is_a_hangup) {
  SockAddr closed;
  CHECK(SockAddr::FromIp("127.0.0.1", 0, &closed) == 0);
  int l = -1;
  CHECK(Listen(closed, ListenOptions{}, &l) == 0);
  CHECK(LocalAddr(l, &closed) == 0);
  Close(l);  // nobody listens on that port now
  auto p = MakeAfd();
  int fd = -1;
  int rc = Connect(closed, &fd);
  CHECK(rc == -EINPROGRESS, "Connect -> %d", rc);
  CHECK(p->Add(fd, 9, kWritable) == 0);
  ExpectHangup(p.get(), 9, 10000, "refused connect");
  CHECK(ConnectResult(fd) == -ECONNREFUSED, "SO_ERROR -> %d", ConnectResult(fd));
  CHECK(p->Remove(fd) == 0);
  Close(fd);
}

// A reset (a close with linger 0) is a hang-up to a reader, not merely a readable socket.
TEST(afd_reset_is_a_hangup) {
  auto p = MakeAfd();
  int sv[2];
  WatchIdle(p.get(), 3, sv);
  CHECK(SetLinger(sv[1], 0) == 0);
  RawClose(sv[1]);
  ExpectHangup(p.get(), 3, 5000, "reset");
  CHECK(p->Remove(sv[0]) == 0);
  RawClose(sv[0]);
}

// A socket closed while still registered (the loop removes first; a bug might not): its
// poll cannot be asked, and the owner hears a hang-up rather than nothing, ever.
TEST(afd_closed_while_registered_is_a_hangup) {
  auto p = MakeAfd();
  int sv[2];
  CHECK(StreamPair(sv, true) == 0);
  CHECK(p->Add(sv[0], 4, kReadable) == 0);
  RawClose(sv[0]);
  ExpectHangup(p.get(), 4, 5000, "closed");
  CHECK(p->Remove(sv[0]) == 0);
  RawClose(sv[1]);
}

#endif  // _WIN32
