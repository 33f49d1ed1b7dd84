// Native services (Loop::SetService): a listener's connections are served in C++ by the
// benchmark's NativeEcho, over every backend and mode, and the host sees no event for them.
#include <string>

#include "../addon/native_echo.h"
#include "../core/loop.h"
#include "check.h"
#include "test_util.h"

using namespace muxnet;
using namespace muxtest;

TEST(service_echoes_without_events_to_the_host) {
  for (const Config& c : LoopConfigs()) {
    std::string cfg = c.Name();
    MockHost host;
    auto loop = MakeLoop(&host, c);
    NativeEcho echo(false);
    int port;
    int lid = ListenLocal(loop.get(), &port);
    CHECK(loop->SetService(lid, &echo) == 0);
    CHECK(loop->SetService(lid + 1, &echo) == -EBADF, "%s: SetService on no listener", cfg.c_str());
    CHECK(loop->SetAccepting(lid, 1) == 0);
    // A small receive buffer and 1 MiB each way: the echo has to hold bytes the client is
    // not reading yet (its write-interest path), not only echo at once.
    int client = RawConnect(port, 4096);
    SetNonBlocking(client);
    std::string sent(1 << 20, '\0');
    for (size_t i = 0; i < sent.size(); i++) sent[i] = static_cast<char>(i * 37 >> 5);
    std::string got;
    size_t off = 0;
    char buf[65536];
    bool ok = PumpUntil(loop.get(), &host, [&] {
      if (off < sent.size()) {
        ssize_t n = RawWrite(client, sent.data() + off, std::min<size_t>(65536, sent.size() - off));
        if (n > 0) off += n;
      }
      ssize_t n;
      while ((n = RawRead(client, buf, sizeof buf)) > 0) got.append(buf, n);
      return got.size() == sent.size();
    }, 10000);
    CHECK(ok, "%s: %zu of %zu bytes echoed", cfg.c_str(), got.size(), sent.size());
    CHECK(got == sent, "%s: echo differs", cfg.c_str());
    CHECK(loop->stats().accepted == 1 && loop->open_handles() == 2, "%s: accepted %llu, %zu open",
          cfg.c_str(), static_cast<unsigned long long>(loop->stats().accepted), loop->open_handles());
    // The client leaves: the service closes its connection (EOF), still without events.
    RawClose(client);
    CHECK(PumpUntil(loop.get(), &host, [&] { return loop->open_handles() == 1; }),
          "%s: the service kept the connection after EOF", cfg.c_str());
    CHECK(host.log.empty(), "%s: %zu events reached the host, first kind %d", cfg.c_str(),
          host.log.size(), host.log.empty() ? 0 : host.log[0].kind);
    CHECK(loop->Close(lid) == 0);
    CheckClean(&host, cfg);
  }
}
