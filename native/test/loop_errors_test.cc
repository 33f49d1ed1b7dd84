// The loop over every backend, where the platforms differ most: a refused connect comes back
// as kEvConnected with -ECONNREFUSED (Windows' select reports it in the except set, which a
// backend that watched only writability would miss), and datagrams go through the loop.
#include <cstring>
#include <string>

#include "../core/loop.h"
#include "check.h"
#include "test_util.h"

using namespace muxnet;
using namespace muxtest;

TEST(loop_errors_refused_connect_reports_econnrefused) {
  for (const Config& c : LoopConfigs()) {
    std::string cfg = c.Name();
    MockHost host;
    auto loop = MakeLoop(&host, c);
    int port;
    int lid = ListenLocal(loop.get(), &port);
    CHECK(loop->Close(lid) == 0);  // nobody listens on port now
    SockAddr a;
    CHECK(SockAddr::FromIp("127.0.0.1", port, &a) == 0);
    int cid = -1;
    int rc = loop->Connect(a, &cid);
    int result = rc;
    if (rc == -EINPROGRESS) {
      // Generous: under wine a refusal takes a while to arrive.
      bool done = PumpUntil(loop.get(), &host, [&] { return host.Find(kEvConnected, cid) != nullptr; }, 10000);
      CHECK(done, "%s: no kEvConnected for a refused connect", cfg.c_str());
      result = host.Find(kEvConnected, cid)->a;
      CHECK(loop->Close(cid) == 0);
    }
    CHECK(result == -ECONNREFUSED, "%s: refused connect -> %d, want %d", cfg.c_str(), result, -ECONNREFUSED);
    CheckClean(&host, cfg);
  }
}

TEST(loop_errors_datagrams_round_trip_with_readiness) {
  for (const Config& c : LoopConfigs()) {
    std::string cfg = c.Name();
    MockHost host;
    auto loop = MakeLoop(&host, c);
    SockAddr any;
    CHECK(SockAddr::FromIp("127.0.0.1", 0, &any) == 0);
    int a = -1, b = -1;
    CHECK(loop->BindPacket(any, false, &a) == 0 && loop->BindPacket(any, false, &b) == 0, "%s", cfg.c_str());
    SockAddr a_addr, b_addr;
    CHECK(LocalAddr(loop->Fd(a), &a_addr) == 0 && LocalAddr(loop->Fd(b), &b_addr) == 0);
    char buf[64];
    SockAddr from;
    bool truncated = true;
    // Nothing yet: -EAGAIN arms readiness, which fires once a datagram arrives.
    CHECK(loop->RecvFrom(a, buf, sizeof buf, &from, &truncated) == -EAGAIN, "%s: empty socket", cfg.c_str());
    CHECK(loop->SendTo(b, "ping", 4, &a_addr) == 4, "%s: SendTo", cfg.c_str());
    CHECK(PumpUntil(loop.get(), &host, [&] { return host.Find(kEvReadable, a) != nullptr; }, 10000),
          "%s: no kEvReadable for a datagram", cfg.c_str());
    ssize_t n = loop->RecvFrom(a, buf, sizeof buf, &from, &truncated);
    CHECK(n == 4 && memcmp(buf, "ping", 4) == 0 && !truncated, "%s: RecvFrom -> %zd", cfg.c_str(), n);
    CHECK(from.Port() == b_addr.Port() && from.Ip() == "127.0.0.1", "%s: sender %s:%d", cfg.c_str(),
          from.Ip().c_str(), from.Port());
    CHECK(loop->PauseRead(a) == 0);
    CHECK(loop->Close(a) == 0 && loop->Close(b) == 0);
    CheckClean(&host, cfg);
  }
}
