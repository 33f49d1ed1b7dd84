// Several loops on several threads at once, as Node workers run them: each thread owns its
// loop (some inline, some with a helper thread), creates it, moves traffic, closes some
// connections mid-traffic and destroys the loop, while the other threads do the same.
// Built under ThreadSanitizer by scripts/test-tsan.sh; under ASan by test-native.sh.
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "../core/loop.h"
#include "check.h"
#include "test_util.h"

using namespace muxnet;
using namespace muxtest;

namespace {

// One worker's life: `rounds` loops in turn, each with `pairs` connected pairs that echo
// `bytes` bytes; every third pair's server side is closed mid-transfer instead.
void WorkerBody(const Config& config, int rounds, int pairs, size_t bytes, int seed) {
  for (int round = 0; round < rounds; round++) {
    MockHost host(8);  // a small batch: events are delivered in the middle of Process
    auto loop = MakeLoop(&host, config);
    int port;
    int lid = ListenLocal(loop.get(), &port);
    SockAddr a;
    CHECK(SockAddr::FromIp("127.0.0.1", port, &a) == 0);
    std::vector<int> clients;
    for (int i = 0; i < pairs; i++) {
      int cid;
      int rc = loop->Connect(a, &cid);
      CHECK(rc == 0 || rc == -EINPROGRESS, "%s: Connect -> %d", config.Name().c_str(), rc);
      clients.push_back(cid);
    }
    CHECK(loop->SetAccepting(lid, pairs) == 0);
    std::vector<int> servers;
    host.on_event = [&](const Event& e) {
      if (e.kind == kEvAccept) servers.push_back(e.a);
    };
    CHECK(PumpUntil(loop.get(), &host, [&] { return static_cast<int>(servers.size()) == pairs; }, 5000),
          "%s: %zu of %d accepted", config.Name().c_str(), servers.size(), pairs);
    host.on_event = nullptr;
    // Clients write; servers read and echo; some servers are closed halfway.
    std::string payload(bytes, '\0');
    for (size_t i = 0; i < bytes; i++) payload[i] = static_cast<char>(i * 31 + seed + round);
    for (int cid : clients) {
      int rc = loop->Write(cid, payload.data(), payload.size(), kNoLimit, MockHost::MakeToken, &host);
      CHECK(rc == 0 || rc == 1, "%s: Write -> %d", config.Name().c_str(), rc);
    }
    std::vector<std::string> echoed(pairs), received(pairs);
    // Queued echo writes point into `echoed`: its storage must never move.
    for (auto& e : echoed) e.reserve(bytes);
    std::vector<bool> server_open(pairs, true), client_done(pairs, false);
    for (int i = 0; i < pairs; i++) {
      CHECK(loop->WantRead(servers[i]) == 0 && loop->WantRead(clients[i]) == 0);
    }
    int64_t end = NowMs() + 10000;
    char buf[16384];
    auto all_done = [&] {
      for (int i = 0; i < pairs; i++)
        if (!client_done[i]) return false;
      return true;
    };
    while (!all_done()) {
      CHECK(NowMs() < end, "%s: traffic stalled", config.Name().c_str());
      Pump(loop.get(), &host, 10);
      for (int i = 0; i < pairs; i++) {
        if (server_open[i]) {
          ssize_t n;
          while ((n = loop->Read(servers[i], buf, sizeof buf)) > 0) {
            CHECK(echoed[i].size() + n <= bytes, "%s: server read too much", config.Name().c_str());
            echoed[i].append(buf, n);
            int rc = loop->Write(servers[i], echoed[i].data() + echoed[i].size() - n, n, kNoLimit,
                                 MockHost::MakeToken, &host);
            CHECK(rc == 0 || rc == 1, "%s: echo Write -> %d", config.Name().c_str(), rc);
          }
          if (i % 3 == 0 && echoed[i].size() >= bytes / 2) {
            CHECK(loop->Close(servers[i]) == 0);  // mid-transfer, writes may be queued
            server_open[i] = false;
          }
        }
        if (!client_done[i]) {
          ssize_t n;
          while ((n = loop->Read(clients[i], buf, sizeof buf)) > 0) received[i].append(buf, n);
          if (n == 0 || (n < 0 && n != -EAGAIN)) {
            CHECK(i % 3 == 0, "%s: pair %d ended early (%zd) after %zu bytes",
                  config.Name().c_str(), i, n, received[i].size());
            client_done[i] = true;
          } else if (received[i].size() == bytes) {
            CHECK(received[i] == payload, "%s: pair %d echo differs", config.Name().c_str(), i);
            client_done[i] = true;
          }
        }
      }
    }
    // Destroy with some handles still open (the loop closes them), as a worker exit does.
    if (round % 2 == 0) {
      for (int i = 0; i < pairs; i++) {
        if (server_open[i]) loop->Close(servers[i]);
        loop->Close(clients[i]);
      }
      loop->Close(lid);
    }
    loop.reset();
    CHECK(host.problems.empty(), "%s: %s", config.Name().c_str(), host.problems[0].c_str());
    CHECK(host.live_tokens.empty(), "%s: %zu tokens never released", config.Name().c_str(),
          host.live_tokens.size());
  }
}

}  // namespace

TEST(loop_threads_many_loops_on_many_threads_at_once) {
  std::vector<Config> configs = LoopConfigs();
  constexpr int kThreads = 6;
  std::mutex mu;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      const Config& config = configs[t % configs.size()];
      try {
        WorkerBody(config, 4, 4, 96 * 1024, t);
      } catch (const Failure& f) {
        std::lock_guard<std::mutex> lock(mu);
        failures.push_back(f.why);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures.empty(), "%zu thread(s) failed, first: %s", failures.size(), failures[0].c_str());
}
