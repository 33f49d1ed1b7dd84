// Backends against a reference model: what Wait() reports must be exactly what the model
// says is ready, for descriptors above 1024 too, and across remove-then-add of one fd.
#ifndef _WIN32
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <chrono>

#include "../core/poller.h"
#include "check.h"
#include "test_util.h"

using namespace muxnet;
using namespace muxtest;

namespace {

std::vector<std::string> Backends() { return AvailableBackends(); }

std::unique_ptr<Poller> Make(const std::string& name) {
  std::unique_ptr<Poller> p;
  int err = CreatePoller(name, &p);
  CHECK(err == 0 && p, "CreatePoller(%s) -> %d", name.c_str(), err);
  CHECK(name == p->Name(), "Name() %s", p->Name());
  return p;
}

struct Pair {
  int a = -1, b = -1;   // watched end, peer end
  bool readable = false;  // one byte pending on a
  uint32_t interest = 0;
};

Pair NewPair() {
  int sv[2];
  CHECK(StreamPair(sv, true) == 0, "socketpair errno %d", errno);
  return Pair{sv[0], sv[1], false, 0};
}

// Compares one Wait(0) with the model; returns a description of the first mismatch.
// io_uring's and AFD's readiness is a poll that fired at some moment since it was armed, not
// the state at Wait(): a byte read after the poll fired still shows as readable once (the loop
// meets -EAGAIN and waits again). There, readiness the model lacks is allowed; missing is not.
std::string Compare(Poller* p, const std::vector<Pair>& pairs) {
  const bool exact = std::string(p->Name()) != "io_uring" && std::string(p->Name()) != "afd";
  std::vector<PollEvent> ev(8192);
  int n = p->Wait(0, ev.data(), static_cast<int>(ev.size()));
  if (n < 0) return "Wait -> " + std::to_string(n);
  std::map<int, uint32_t> got;
  for (int i = 0; i < n; i++) {
    if (got.count(static_cast<int>(ev[i].token))) return "fd " + std::to_string(static_cast<int>(ev[i].token)) + " reported twice";
    got[static_cast<int>(ev[i].token)] = ev[i].events;
  }
  for (const Pair& q : pairs) {
    uint32_t want = 0;
    if ((q.interest & kReadable) && q.readable) want |= kReadable;
    if (q.interest & kWritable) want |= kWritable;
    auto it = got.find(q.a);
    uint32_t g = it == got.end() ? 0 : it->second & (kReadable | kWritable);
    if (it != got.end() && (it->second & kHangup))
      return "fd " + std::to_string(q.a) + " reported a hang-up";
    if (!exact && (q.interest & kReadable)) g &= want | ~uint32_t{kReadable};
    if (g != want)
      return "fd " + std::to_string(q.a) + " want " + std::to_string(want) + " got " +
             std::to_string(g);
    if (it != got.end()) got.erase(it);
  }
  if (!got.empty()) return "unwatched fd " + std::to_string(got.begin()->first) + " reported";
  return "";
}

void ModelRun(const std::string& name) {
  std::mt19937 rng(12345);
  auto p = Make(name);
  FdFiller filler(1100);  // every pair below is numbered above 1024
  std::vector<Pair> pairs;
  for (int i = 0; i < 64; i++) pairs.push_back(NewPair());
  // One registration before the first Wait (see poller_select_wait_before_any_add).
  CHECK(p->Add(pairs[0].a, static_cast<Token>(pairs[0].a), kReadable | kWritable) == 0);
  pairs[0].interest = kReadable | kWritable;
  bool above = false;
  int reused = 0;
  for (int op = 0; op < 6000; op++) {
    Pair& pr = pairs[rng() % pairs.size()];
    above = above || pr.a > 1024;
    switch (rng() % 7) {
      case 0: {
        uint32_t in = 1 + rng() % 3;
        int e = pr.interest ? p->Modify(pr.a, static_cast<Token>(pr.a), in) : p->Add(pr.a, static_cast<Token>(pr.a), in);
        CHECK(e == 0, "%s: Add/Modify fd %d -> %d", name.c_str(), pr.a, e);
        pr.interest = in;
        break;
      }
      case 1:
        if (pr.interest) {
          int e = p->Remove(pr.a);
          CHECK(e == 0, "%s: Remove fd %d -> %d", name.c_str(), pr.a, e);
          pr.interest = 0;
        }
        break;
      case 2:
        if (!pr.readable) {
          CHECK(RawWrite(pr.b, "x", 1) == 1);
          pr.readable = true;
        }
        break;
      case 3:
        if (pr.readable) {
          char c;
          CHECK(RawRead(pr.a, &c, 1) == 1);
          pr.readable = false;
        }
        break;
      case 4: {
        // Remove, close, and open again: the lowest free numbers come back at once.
        int old = pr.a;
        if (pr.interest) CHECK(p->Remove(pr.a) == 0);
        RawClose(pr.a);
        RawClose(pr.b);
        pr = NewPair();
        reused += pr.a == old;
        break;
      }
      default: {
        std::string why = Compare(p.get(), pairs);
        CHECK(why.empty(), "%s: op %d: %s", name.c_str(), op, why.c_str());
      }
    }
  }
  std::string why = Compare(p.get(), pairs);
  CHECK(why.empty(), "%s: final: %s", name.c_str(), why.c_str());
#ifndef _WIN32  // Windows socket handles are neither small numbers nor reused lowest-first
  CHECK(above, "%s: no fd above 1024 was exercised", name.c_str());
  CHECK(reused > 0, "%s: no fd number was reused", name.c_str());
#endif
  for (Pair& q : pairs) {
    if (q.interest) CHECK(p->Remove(q.a) == 0);
    RawClose(q.a);
    RawClose(q.b);
  }
}

// Remove-then-add of one fd (kept open, and closed-then-reused): no stale interest or
// readiness from the earlier registration.
void RemoveThenAdd(const std::string& name) {
  auto p = Make(name);
  FdFiller filler(1030);
  std::vector<PollEvent> ev(16);
  Pair x = NewPair();
#ifndef _WIN32  // see ModelRun
  CHECK(x.a > 1024, "fd %d not above 1024", x.a);
#endif
  CHECK(RawWrite(x.b, "x", 1) == 1);
  CHECK(p->Add(x.a, static_cast<Token>(x.a), kReadable) == 0);
  int n = p->Wait(0, ev.data(), 16);
  CHECK(n == 1 && static_cast<int>(ev[0].token) == x.a && (ev[0].events & kReadable), "%s: n=%d", name.c_str(), n);
  CHECK(p->Add(x.a, static_cast<Token>(x.a), kReadable) != 0, "%s: double Add accepted", name.c_str());
  // Same fd, still open: remove, then add with write interest only.
  CHECK(p->Remove(x.a) == 0);
  CHECK(p->Remove(x.a) != 0, "%s: double Remove accepted", name.c_str());
  n = p->Wait(0, ev.data(), 16);
  CHECK(n == 0, "%s: removed fd reported (n=%d)", name.c_str(), n);
  CHECK(p->Add(x.a, static_cast<Token>(x.a), kWritable) == 0);
  n = p->Wait(0, ev.data(), 16);
  CHECK(n == 1 && static_cast<int>(ev[0].token) == x.a && ev[0].events == kWritable, "%s: n=%d events=%u",
        name.c_str(), n, n > 0 ? ev[0].events : 0);
  // Close it and let a new descriptor take the same number.
  int old = x.a;
  CHECK(p->Remove(x.a) == 0);
  RawClose(x.a);
  RawClose(x.b);
  Pair y = NewPair();
#ifndef _WIN32  // see ModelRun: there a new socket may or may not take the old value
  CHECK(y.a == old, "%s: fd %d not reused (got %d)", name.c_str(), old, y.a);
#else
  (void)old;
#endif
  n = p->Wait(0, ev.data(), 16);
  CHECK(n == 0, "%s: fd reported before it was added (n=%d)", name.c_str(), n);
  CHECK(p->Add(y.a, static_cast<Token>(y.a), kReadable) == 0);
  n = p->Wait(0, ev.data(), 16);
  CHECK(n == 0, "%s: fresh fd reported readable with no data (n=%d)", name.c_str(), n);
  CHECK(RawWrite(y.b, "y", 1) == 1);
  n = p->Wait(0, ev.data(), 16);
  CHECK(n == 1 && static_cast<int>(ev[0].token) == y.a && ev[0].events == kReadable, "%s: n=%d", name.c_str(), n);
  CHECK(p->Remove(y.a) == 0);
  RawClose(y.a);
  RawClose(y.b);
}

// More ready descriptors than one Wait() takes: every one is reported within a few waits
// (the scan resumes where it stopped rather than at the lowest fd).
void Rotation(const std::string& name) {
  auto p = Make(name);
  constexpr int kPipes = 1500, kMax = 1024;
  std::vector<int> fds;
  for (int i = 0; i < kPipes; i++) {
    int pp[2];
    CHECK(StreamPair(pp, true) == 0, "socket pair errno %d at %d", errno, i);
    CHECK(RawWrite(pp[1], "x", 1) == 1);
    CHECK(p->Add(pp[0], static_cast<Token>(pp[0]), kReadable) == 0);
    fds.push_back(pp[0]);
    fds.push_back(pp[1]);
  }
  std::vector<PollEvent> ev(kMax);
  std::set<int> seen;
  int waits = 0;
  while (seen.size() < kPipes && waits < 4) {
    int n = p->Wait(0, ev.data(), kMax);
    CHECK(n > 0 && n <= kMax, "%s: Wait -> %d", name.c_str(), n);
    for (int i = 0; i < n; i++) seen.insert(static_cast<int>(ev[i].token));
    waits++;
  }
  CHECK(seen.size() == kPipes, "%s: %zu of %d ready fds reported in %d waits", name.c_str(),
        seen.size(), kPipes, waits);
  for (size_t i = 0; i < fds.size(); i += 2) {
    p->Remove(fds[i]);
    RawClose(fds[i]);
    RawClose(fds[i + 1]);
  }
}

}  // namespace

TEST(poller_backends_available) {
  auto names = Backends();
#ifdef _WIN32
  CHECK(names.size() == 2 && names[0] == "afd" && names[1] == "select", "Windows backends %s...",
        names[0].c_str());
#else
  CHECK(names.size() >= 2);
#endif
#ifdef MUXNET_HAVE_EPOLL
  CHECK(names[0] == "epoll", "default backend %s", names[0].c_str());
#endif
  std::unique_ptr<Poller> p;
  CHECK(CreatePoller("nope", &p) == -ENOENT);
}

// Wait() on a backend that never had a descriptor added must return 0 (nothing ready).
// Run in a child process: a crash there is reported as a failure, not a dead run.
static void WaitBeforeAnyAdd(const std::string& name) {
#ifdef _WIN32
  // No fork: the wait runs in this process (a crash ends the run, which the script reports).
  std::unique_ptr<Poller> p;
  CHECK(CreatePoller(name, &p) == 0);
  PollEvent ev[4];
  int n = p->Wait(0, ev, 4);
  CHECK(n == 0, "%s: Wait() with nothing ever added -> %d", name.c_str(), n);
#else
  fflush(stdout);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    // Keep a sanitizer's report of the child out of the log: the FAIL line says it all.
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 2);
    std::unique_ptr<Poller> p;
    if (CreatePoller(name, &p) != 0) _exit(3);
    PollEvent ev[4];
    int n = p->Wait(0, ev, 4);
    _exit(n == 0 ? 0 : 4);
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(!WIFSIGNALED(status), "%s: Wait() with nothing ever added killed the process (signal %d)",
        name.c_str(), WTERMSIG(status));
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "%s: Wait() with nothing ever added: child exit status %d (1: a sanitizer error, "
        "4: Wait did not return 0)", name.c_str(), WEXITSTATUS(status));
#endif
}

TEST(poller_select_wait_before_any_add) { WaitBeforeAnyAdd("select"); }
#ifdef _WIN32
TEST(poller_afd_wait_before_any_add) { WaitBeforeAnyAdd("afd"); }
#else  // no poll backend on Windows (poller_registry.cc says why)
TEST(poller_poll_wait_before_any_add) { WaitBeforeAnyAdd("poll"); }
#endif
#ifdef MUXNET_HAVE_EPOLL
TEST(poller_epoll_wait_before_any_add) { WaitBeforeAnyAdd("epoll"); }
#endif
#ifdef MUXNET_HAVE_KQUEUE
TEST(poller_kqueue_wait_before_any_add) { WaitBeforeAnyAdd("kqueue"); }
#endif

TEST(poller_select_model_above_1024) { ModelRun("select"); }
#ifdef _WIN32
TEST(poller_afd_model_above_1024) { ModelRun("afd"); }
#else
TEST(poller_poll_model_above_1024) { ModelRun("poll"); }
#endif
#ifdef MUXNET_HAVE_EPOLL
TEST(poller_epoll_model_above_1024) { ModelRun("epoll"); }
#endif
#ifdef MUXNET_HAVE_KQUEUE
TEST(poller_kqueue_model_above_1024) { ModelRun("kqueue"); }
#endif

TEST(poller_select_remove_then_add_same_fd) { RemoveThenAdd("select"); }
#ifdef _WIN32
TEST(poller_afd_remove_then_add_same_fd) { RemoveThenAdd("afd"); }
#else
TEST(poller_poll_remove_then_add_same_fd) { RemoveThenAdd("poll"); }
#endif
#ifdef MUXNET_HAVE_EPOLL
TEST(poller_epoll_remove_then_add_same_fd) { RemoveThenAdd("epoll"); }
#endif
#ifdef MUXNET_HAVE_KQUEUE
TEST(poller_kqueue_remove_then_add_same_fd) { RemoveThenAdd("kqueue"); }
#endif

TEST(poller_select_scan_rotation) { Rotation("select"); }
#ifdef _WIN32
TEST(poller_afd_many_ready_all_reported) { Rotation("afd"); }
#else
TEST(poller_poll_scan_rotation) { Rotation("poll"); }
#endif
#ifdef MUXNET_HAVE_EPOLL
TEST(poller_epoll_many_ready_all_reported) { Rotation("epoll"); }
#endif
#ifdef MUXNET_HAVE_KQUEUE
TEST(poller_kqueue_many_ready_all_reported) { Rotation("kqueue"); }
#endif

namespace {

// A token is the loop's, not an fd: it comes back as given, also after Modify changed it.
void TokensComeBack(const std::string& name) {
  auto p = Make(name);
  Pair x = NewPair();
  const Token first = (Token{7} << 32) | 3, second = (Token{8} << 32) | 3;
  CHECK(p->Add(x.a, first, kWritable) == 0);
  PollEvent ev[4];
  int n = p->Wait(0, ev, 4);
  CHECK(n == 1 && ev[0].token == first, "%s: n=%d token=%llx", name.c_str(), n,
        static_cast<unsigned long long>(n > 0 ? ev[0].token : 0));
  CHECK(p->Modify(x.a, second, kWritable) == 0);
  n = p->Wait(0, ev, 4);
  CHECK(n == 1 && ev[0].token == second, "%s: after Modify n=%d", name.c_str(), n);
  p->Remove(x.a);
  RawClose(x.a);
  RawClose(x.b);
}

// Wake() from another thread ends a Wait(-1) with nothing ready, and is not an event.
void WakeEndsWait(const std::string& name) {
  auto p = Make(name);
  std::thread waker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    p->Wake();
  });
  PollEvent ev[4];
  int n = p->Wait(5000, ev, 4);
  waker.join();
  CHECK(n == 0, "%s: Wait after Wake -> %d", name.c_str(), n);
  // Consumed: the next wait does not return at once.
  n = p->Wait(0, ev, 4);
  CHECK(n == 0, "%s: second Wait -> %d", name.c_str(), n);
}

}  // namespace

TEST(poller_tokens_come_back_as_registered) {
  for (const auto& name : Backends()) TokensComeBack(name);
}

TEST(poller_wake_ends_a_wait_unreported) {
  for (const auto& name : Backends()) WakeEndsWait(name);
}

TEST(poller_caps_match_the_backend) {
  for (const auto& name : Backends()) {
    auto p = Make(name);
    PollerCaps caps = p->Caps();
    CHECK(caps.pollable == (p->PollableFd() >= 0), "%s: pollable cap vs PollableFd", name.c_str());
    CHECK(caps.completion == (name == "io_uring"), "%s: completion cap", name.c_str());
    CHECK(caps.inline_only == (name == "io_uring"), "%s: inline-only cap", name.c_str());
    CHECK(caps.edge == (name == "epoll" || name == "kqueue"), "%s: edge cap", name.c_str());
  }
}

// Every backend, the contract's edges: a refused Add changes nothing (the descriptor can
// be added once it is valid), a socket ready both ways is one event with both bits, and a
// peer that hangs up is reported on a socket watched only for writing.
namespace {

void RefusedAddChangesNothing(const std::string& name) {
  auto p = Make(name);
  Pair x = NewPair();
  int closed = ClosedDescriptor(x.a);
  // select and poll check nothing at Add: only the kernel-backed backends can refuse.
  int r = p->Add(closed, 1, kReadable | kWritable);
  if (r == 0) {
    CHECK(p->Remove(closed) == 0);
  } else {
    CHECK(r == -EBADF, "%s: Add(closed fd) -> %d", name.c_str(), r);
    int m = p->Modify(closed, 1, kReadable);
    CHECK(m == -ENOENT || m == -EBADF, "%s: a refused Add left state (Modify -> %d)", name.c_str(), m);
  }
  CHECK(RawWrite(x.b, "r", 1) == 1);
  CHECK(p->Add(x.a, 2, kReadable | kWritable) == 0);  // after the byte: io_uring polls at Add
  PollEvent ev[8];
  int n = p->Wait(1000, ev, 8);
  CHECK(n == 1 && ev[0].token == 2 && ev[0].events == (kReadable | kWritable),
        "%s: ready both ways -> n=%d events=%x", name.c_str(), n, n > 0 ? ev[0].events : 0);
  CHECK(p->Modify(x.a, 2, kWritable) == 0);
  RawClose(x.b);  // the peer goes: a writer learns it too
  n = p->Wait(1000, ev, 8);
  // select(2) has no hang-up: it reports the socket writable, and the write fails then. On
  // Windows the pair is TCP and the peer's close a FIN, which AFD reports only to a reader
  // (as epoll's EPOLLRDHUP): a writer's socket is still writable.
  uint32_t want = name == "select" || name == "afd" ? kWritable : kHangup;
  // io_uring polls when the interest changes: that poll's "writable" may come first, and
  // the hang-up with the next one.
  if (name == "io_uring" && n == 1 && !(ev[0].events & want)) n = p->Wait(1000, ev, 8);
  CHECK(n == 1 && (ev[0].events & want), "%s: hang-up to a writer -> n=%d events=%x",
        name.c_str(), n, n > 0 ? ev[0].events : 0);
  CHECK(p->Remove(x.a) == 0);
  RawClose(x.a);
}

}  // namespace

TEST(poller_refused_add_then_both_ways_then_hangup) {
  for (const auto& name : Backends()) RefusedAddChangesNothing(name);
}
