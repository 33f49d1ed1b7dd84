// A backend that refuses interest changes or whose waits fail (FaultPoller): inline, the
// operation that needed the change returns the errno and the handle works once the backend
// recovers; threaded, the failure arrives as the waiting operation's event; a wait that
// keeps failing fails every pending operation instead of hanging it.
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

// A loop over a FaultPoller, a listener and an accepted raw peer (non-blocking).
struct FaultFixture {
  std::string cfg;
  std::shared_ptr<Faults> faults = std::make_shared<Faults>();
  MockHost host;
  std::unique_ptr<Loop> loop;
  int lid = -1, port = 0, peer = -1, sid = -1;
  explicit FaultFixture(const Config& c) : cfg(c.Name()) {
    loop = MakeLoop(&host, c, FaultPoller::Factory(c.backend, faults));
    lid = ListenLocal(loop.get(), &port);
    std::tie(peer, sid) = AcceptRaw(loop.get(), &host, lid, port, cfg);
    SetNonBlocking(peer);
  }
  ~FaultFixture() {
    loop.reset();
    if (peer >= 0) RawClose(peer);
  }
  // Fills the server's socket buffer (and the peer's) until the kernel takes no more.
  void FillSendBuffer() {
    static const std::string big(1 << 20, 'f');
    while (loop->TryWrite(sid, big.data(), big.size()) > 0) {
    }
  }
  // The peer reads everything until the loop reports the queued writes written.
  void DrainUntilWritten() {
    char buf[65536];
    size_t mark = host.log.size();
    bool ok = PumpUntil(loop.get(), &host, [&] {
      while (RawRead(peer, buf, sizeof buf) > 0) {
      }
      for (size_t i = mark; i < host.log.size(); i++)
        if (host.log[i].kind == kEvWritten && host.log[i].id == sid) return true;
      return false;
    });
    CHECK(ok, "%s: queued write never written", cfg.c_str());
  }
  // Pumps until an event of `kind` for id arrives; returns it.
  Event AwaitEvent(int32_t kind, int id, int max_ms = 3000) {
    size_t seen = host.log.size();
    const Event* found = nullptr;
    bool ok = PumpUntil(loop.get(), &host, [&] {
      for (; seen < host.log.size(); seen++)
        if (host.log[seen].kind == kind && host.log[seen].id == id) return (found = &host.log[seen]) != nullptr;
      return false;
    }, max_ms);
    CHECK(ok, "%s: no event kind %d for id %d", cfg.c_str(), kind, id);
    return *found;
  }
};

std::vector<Config> Configs(bool threaded) {
  std::vector<Config> out;
  for (const Config& c : LoopConfigs())
    if (c.threaded == threaded) out.push_back(c);
  return out;
}

}  // namespace

TEST(interest_failure_inline_returns_the_errno_and_the_handle_recovers) {
  for (const Config& c : Configs(false)) {
    FaultFixture f(c);
    Loop* loop = f.loop.get();
    const char* cfg = f.cfg.c_str();
    f.faults->fail_interest = -ENOMEM;
    // Connect needs a registration in every mode: it fails and leaves no handle behind.
    // A backend that connects (io_uring) needs none: that connect goes on.
    size_t open = loop->open_handles();
    SockAddr a;
    SockAddr::FromIp("127.0.0.1", f.port, &a);
    int cid = 5;
    int rc = loop->Connect(a, &cid);
    if (loop->caps().connect) {
      CHECK(rc == -EINPROGRESS && cid >= 0, "%s: Connect -> %d id %d", cfg, rc, cid);
      CHECK(loop->Close(cid) == 0);
    } else {
      CHECK(rc == -ENOMEM && cid == -1, "%s: Connect -> %d id %d", cfg, rc, cid);
    }
    CHECK(loop->open_handles() == open, "%s: a failed Connect left a handle", cfg);
    char buf[16];
    MockHost::BufferRef ref{&f.host, buf, sizeof buf};
    int chunk;
    if (!c.edge) {
      // Level-triggered: reading and queueing writes need new interest, and fail.
      CHECK(loop->WantRead(f.sid) == -ENOMEM, "%s: WantRead", cfg);
      CHECK(loop->Read(f.sid, buf, sizeof buf) == -ENOMEM, "%s: Read that would wait", cfg);
      ssize_t n = loop->ReadStart(f.sid, kReadBuffer, buf, sizeof buf, MockHost::MakeBufferToken, &ref, &chunk);
      if (loop->caps().completion) {
        // A completion backend's read is a receive, not interest: nothing to refuse.
        CHECK(n == -EINPROGRESS, "%s: ReadStart -> %zd", cfg, n);
        CHECK(loop->ReadStop(f.sid) == 0);
      } else {
        CHECK(n == -ENOMEM, "%s: ReadStart -> %zd", cfg, n);
      }
      CHECK(f.host.live_tokens.empty(), "%s: a failed ReadStart kept its token", cfg);
      f.FillSendBuffer();
      rc = loop->Write(f.sid, "w", 1, kNoLimit, MockHost::MakeToken, &f.host);
      if (loop->caps().send) {
        // A completion backend's write is a send, not interest: nothing to refuse. Dropped,
        // its memory is let go of once the cancelled send ends.
        CHECK(rc == 1, "%s: Write that must queue -> %d", cfg, rc);
        CHECK(loop->CancelWrites(f.sid) == 0);
        CHECK(PumpUntil(loop, &f.host, [&] { return f.host.live_tokens.empty(); }), "%s: the dropped send's token", cfg);
      } else {
        CHECK(rc == -ENOMEM, "%s: Write that must queue -> %d", cfg, rc);
      }
      CHECK(f.host.live_tokens.empty(), "%s: a failed Write kept its token", cfg);
      CHECK(loop->PauseRead(f.sid) == 0, "%s: PauseRead", cfg);
    } else {
      // Edge-triggered connections are registered once for both directions: nothing to refuse.
      int refused = f.faults->refused.load();
      CHECK(loop->WantRead(f.sid) == 0, "%s: WantRead", cfg);
      CHECK(loop->PauseRead(f.sid) == 0, "%s: PauseRead", cfg);
      CHECK(f.faults->refused.load() == refused, "%s: an interest change was asked for", cfg);
    }
    CHECK(f.faults->refused.load() > 0);
    // The backend recovers: the same handle reads and writes.
    f.faults->fail_interest = 0;
    ssize_t n = loop->ReadStart(f.sid, kReadBuffer, buf, sizeof buf, MockHost::MakeBufferToken, &ref, &chunk);
    CHECK(n == -EINPROGRESS, "%s: ReadStart after recovery -> %zd", cfg, n);
    CHECK(RawWrite(f.peer, "ok", 2) == 2);
    CHECK(f.AwaitEvent(kEvRead, f.sid).a == 2 && memcmp(buf, "ok", 2) == 0, "%s: read after recovery", cfg);
    f.FillSendBuffer();
    CHECK(loop->Write(f.sid, "w", 1, kNoLimit, MockHost::MakeToken, &f.host) == 1);
    f.DrainUntilWritten();
    CheckClean(&f.host, f.cfg);
  }
}

TEST(interest_failure_threaded_arrives_as_the_waiting_operations_event) {
  for (const Config& c : Configs(true)) {
    FaultFixture f(c);
    Loop* loop = f.loop.get();
    const char* cfg = f.cfg.c_str();
    f.faults->fail_interest = -ENOMEM;
    // A connect whose registration the helper refuses: kEvConnected with the errno.
    SockAddr a;
    SockAddr::FromIp("127.0.0.1", f.port, &a);
    int cid = -1;
    int rc = loop->Connect(a, &cid);
    CHECK(rc == -EINPROGRESS, "%s: Connect -> %d", cfg, rc);
    CHECK(f.AwaitEvent(kEvConnected, cid).a == -ENOMEM, "%s: kEvConnected", cfg);
    CHECK(loop->Close(cid) == 0);
    // A started read: kEvRead with the errno and no chunk.
    int chunk;
    CHECK(loop->ReadStart(f.sid, kReadStream, nullptr, 0, nullptr, nullptr, &chunk) == -EINPROGRESS);
    Event e = f.AwaitEvent(kEvRead, f.sid);
    CHECK(e.a == -ENOMEM && e.b == -1, "%s: kEvRead a=%d b=%d", cfg, e.a, e.b);
    // The backend recovers: a new read is served.
    f.faults->fail_interest = 0;
    CHECK(loop->ReadStart(f.sid, kReadStream, nullptr, 0, nullptr, nullptr, &chunk) == -EINPROGRESS);
    CHECK(RawWrite(f.peer, "ok", 2) == 2);
    e = f.AwaitEvent(kEvRead, f.sid);
    CHECK(e.a == 2 && loop->ReleaseChunk(e.b) == 0, "%s: read after recovery a=%d", cfg, e.a);
    CHECK(loop->ReadStop(f.sid) == 0);
    // A queued write: kEvWriteError with the errno, its token released.
    f.FillSendBuffer();
    f.faults->fail_interest = -ENOMEM;
    CHECK(loop->Write(f.sid, "w", 1, kNoLimit, MockHost::MakeToken, &f.host) == 1);
    CHECK(f.AwaitEvent(kEvWriteError, f.sid).a == -ENOMEM, "%s: kEvWriteError", cfg);
    CHECK(f.host.live_tokens.empty(), "%s: the failed write kept its token", cfg);
    f.faults->fail_interest = 0;
    CHECK(loop->Write(f.sid, "w", 1, kNoLimit, MockHost::MakeToken, &f.host) == 1);
    f.DrainUntilWritten();
    CheckClean(&f.host, f.cfg);
  }
}

// The helper retries a failing wait about a second (10 ms apart), then gives up: every
// handle's pending operation fails with the wait's errno. The bound below only guards
// against a hang; it is not a speed requirement.
TEST(interest_failure_dead_wait_fails_pending_operations) {
  for (const Config& c : Configs(true)) {
    FaultFixture f(c);
    Loop* loop = f.loop.get();
    const char* cfg = f.cfg.c_str();
    int chunk;
    CHECK(loop->ReadStart(f.sid, kReadStream, nullptr, 0, nullptr, nullptr, &chunk) == -EINPROGRESS);
    f.FillSendBuffer();
    CHECK(loop->Write(f.sid, "w", 1, kNoLimit, MockHost::MakeToken, &f.host) == 1);
    CHECK(loop->SetAccepting(f.lid, 1) == 0);
    f.faults->FailWaits(-EIO);
    CHECK(f.AwaitEvent(kEvRead, f.sid, 10000).a == -EIO, "%s: started read", cfg);
    CHECK(f.host.Find(kEvWriteError, f.sid) != nullptr && f.host.Find(kEvWriteError, f.sid)->a == -EIO,
          "%s: queued write not failed", cfg);
    CHECK(f.host.Find(kEvAcceptError, f.lid) != nullptr && f.host.Find(kEvAcceptError, f.lid)->a == -EIO,
          "%s: accepting listener not failed", cfg);
    CHECK(f.host.live_tokens.empty(), "%s: tokens kept", cfg);
    // Operations started after the helper gave up fail at once instead of waiting forever.
    SockAddr a;
    SockAddr::FromIp("127.0.0.1", f.port, &a);
    int cid = 3;
    int rc = loop->Connect(a, &cid);
    CHECK(rc == -EIO && cid == -1, "%s: Connect on a dead backend -> %d", cfg, rc);
    CHECK(loop->ReadStart(f.sid, kReadStream, nullptr, 0, nullptr, nullptr, &chunk) == -EIO,
          "%s: ReadStart on a dead backend", cfg);
    // Closing and destroying the loop still work with the helper gone.
    CHECK(loop->Close(f.sid) == 0 && loop->Close(f.lid) == 0);
    CheckClean(&f.host, f.cfg);
  }
}
