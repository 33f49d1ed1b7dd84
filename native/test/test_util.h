// Shared helpers for the native tests: descriptors, a mock LoopHost and a loop driver.
#ifndef MUXNET_TEST_TEST_UTIL_H_
#define MUXNET_TEST_TEST_UTIL_H_

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "../core/loop.h"
#include "../core/waker.h"
#include "check.h"
#include "test_sys.h"

namespace muxtest {

// A write queue limit that no test reaches.
constexpr size_t kNoLimit = size_t{1} << 40;

inline int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// Occupies the lowest descriptors so that the next ones are numbered above `above`.
// Windows: nothing (socket handles are not the lowest free small integers).
struct FdFiller {
  std::vector<int> fds;
  explicit FdFiller(int above) {
#ifndef _WIN32
    int base = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (base < 0) return;
    fds.push_back(base);
    while (true) {
      int fd = dup(base);
      if (fd < 0) break;
      fds.push_back(fd);
      if (fd >= above) break;
    }
#endif
  }
  ~FdFiller() {
    for (int fd : fds) RawClose(fd);
  }
};

struct MockHost : muxnet::LoopHost {
  muxnet::Loop* loop = nullptr;
  std::vector<muxnet::Event> batch;
  std::vector<muxnet::Event> log;             // every event delivered, in order
  std::function<void(const muxnet::Event&)> on_event;  // may call back into the loop
  std::set<void*> live_tokens;
  // Read tokens: the memory each stands for (nullptr: let go of, like a detached buffer).
  std::map<void*, std::pair<char*, size_t>> buffers;
  std::vector<std::string> problems;  // recorded here: never CHECK inside a callback
  std::vector<char*> slabs;
  int64_t timer_delay = -2;  // last ArmTimer argument (-2: never called)
  int active_changes = 0;
  bool active = false;
  muxnet::Waker wake;  // WakeFromHelper signals it; Pump waits on it
  int depth = 0;
  int deliveries = 0;  // DeliverBatch calls
  int tokens_made = 0, tokens_released = 0;

  explicit MockHost(int capacity = 64) : batch(capacity) { wake.Open(); }
  ~MockHost() override {
    for (char* s : slabs) free(s);
    for (void* t : live_tokens) delete[] static_cast<char*>(t);
  }

  void DeliverBatch(int count) override {
    deliveries++;
    depth++;
    for (int i = 0; i < count; i++) {
      muxnet::Event e = batch[i];
      log.push_back(e);
      if (on_event) on_event(e);
    }
    depth--;
  }
  // Overwrite a buffer token's memory with 'X' when the loop lets go of it, as a reused or
  // collected buffer would be: bytes the kernel took from it afterwards show.
  bool poison_released = false;
  void ReleaseToken(void* token) override {
    tokens_released++;
    if (live_tokens.erase(token) == 0) {
      problems.push_back("unknown or twice-released token");
      return;
    }
    if (poison_released) {
      auto it = buffers.find(token);
      if (it != buffers.end()) memset(it->second.first, 'X', it->second.second);
    }
    buffers.erase(token);
    delete[] static_cast<char*>(token);
  }
  char* AllocateSlab(int) override {
    char* p = static_cast<char*>(malloc(muxnet::BufferPool::kSlabSize));
    slabs.push_back(p);
    return p;
  }
  bool ResolveBuffer(void* token, char** data, size_t* len) override {
    auto it = buffers.find(token);
    if (it == buffers.end() || it->second.first == nullptr) return false;
    *data = it->second.first;
    *len = it->second.second;
    return true;
  }
  void ArmTimer(int64_t delay_ms) override { timer_delay = delay_ms; }
  void SetActive(bool on) override {
    if (on == active) problems.push_back("SetActive without a change");
    active = on;
    active_changes++;
  }
  void WakeFromHelper() override { wake.Signal(); }

  static void* MakeToken(void* context) {
    auto* host = static_cast<MockHost*>(context);
    void* token = new char[1];
    host->live_tokens.insert(token);
    host->tokens_made++;
    return token;
  }

  // A read buffer's token (ReadStart's make_token, with a BufferRef as context).
  struct BufferRef {
    MockHost* host;
    char* data;
    size_t len;
  };
  static void* MakeBufferToken(void* context) {
    auto* ref = static_cast<BufferRef*>(context);
    void* token = MakeToken(ref->host);
    ref->host->buffers[token] = {ref->data, ref->len};
    return token;
  }

  int Count(int32_t kind, int32_t id = -1) const {
    int n = 0;
    for (const auto& e : log) n += e.kind == kind && (id < 0 || e.id == id);
    return n;
  }
  const muxnet::Event* Find(int32_t kind, int32_t id = -1) const {
    for (const auto& e : log)
      if (e.kind == kind && (id < 0 || e.id == id)) return &e;
    return nullptr;
  }
};

struct Config {
  const char* backend;
  bool threaded;
  bool edge;
  std::string Name() const {
    return std::string(backend) + (threaded ? "/threaded" : "/inline") + (edge ? "/edge" : "");
  }
};

inline std::vector<Config> LoopConfigs() {
  std::vector<Config> out;
#ifdef MUXNET_HAVE_EPOLL
  out.push_back({"epoll", false, false});
  out.push_back({"epoll", false, true});
  out.push_back({"epoll", true, false});
#endif
#ifdef MUXNET_HAVE_IO_URING
  // Inline only (SINGLE_ISSUER), and only where the kernel lets this process use it.
  for (const auto& name : muxnet::AvailableBackends()) {
    if (name == "io_uring") out.push_back({"io_uring", false, false});
  }
#endif
#ifdef MUXNET_HAVE_KQUEUE
  out.push_back({"kqueue", false, false});
  out.push_back({"kqueue", false, true});
  out.push_back({"kqueue", true, false});
#endif
#ifdef _WIN32  // AFD polling has no pollable fd: it always waits on a helper thread
  out.push_back({"afd", true, false});
#else  // no poll backend on Windows (poller_registry.cc says why)
  out.push_back({"poll", true, false});
#endif
  out.push_back({"select", true, false});
  return out;
}

// One turn of the host's event loop: waits up to timeout_ms for the loop's descriptor,
// then runs whatever is ready, and the timers when they are due.
inline void Pump(muxnet::Loop* loop, MockHost* host, int timeout_ms) {
  int fd = loop->threaded() ? host->wake.fd() : loop->PollableFd();
  if (WaitFd(fd, false, timeout_ms)) {
    if (loop->threaded()) {
      host->wake.Drain();
      loop->RunReady();
    } else {
      loop->RunInline();
    }
  }
}

// Pumps until pred() holds or max_ms pass; returns pred().
inline bool PumpUntil(muxnet::Loop* loop, MockHost* host, const std::function<bool()>& pred,
                      int max_ms = 3000) {
  int64_t end = NowMs() + max_ms;
  while (!pred()) {
    if (NowMs() >= end) return false;
    Pump(loop, host, 10);
  }
  return true;
}

// A loop on `host`, initialised for `config`; CHECKs that Init succeeds.
// make_poller: LoopOptions::make_poller (a FaultPoller), or empty for the named backend.
// max_slabs: the pool's bound (2 slabs, 32 chunks, unless a test needs more).
inline std::unique_ptr<muxnet::Loop> MakeLoop(
    MockHost* host, const Config& config,
    std::function<int(std::unique_ptr<muxnet::Poller>*)> make_poller = nullptr, int max_slabs = 2) {
  auto loop = std::make_unique<muxnet::Loop>(host, host->batch.data(),
                                             static_cast<int>(host->batch.size()));
  muxnet::LoopOptions o;
  o.backend = config.backend;
  o.threaded = config.threaded;
  o.edge_triggered = config.edge;
  o.max_slabs = max_slabs;
  o.make_poller = std::move(make_poller);
  int err = loop->Init(o);
  CHECK(err == 0, "%s: Init -> %d", config.Name().c_str(), err);
  host->loop = loop.get();
  return loop;
}

// Listens on 127.0.0.1:0 and returns the id; *port gets the port.
inline int ListenLocal(muxnet::Loop* loop, int* port) {
  muxnet::SockAddr a;
  CHECK(muxnet::SockAddr::FromIp("127.0.0.1", 0, &a) == 0);
  int id = -1;
  int err = loop->Listen(a, muxnet::ListenOptions{}, &id);
  CHECK(err == 0, "Listen -> %d", err);
  muxnet::SockAddr la;
  CHECK(muxnet::LocalAddr(loop->Fd(id), &la) == 0);
  *port = la.Port();
  return id;
}

// A blocking client socket connected to 127.0.0.1:port (the kernel completes the
// handshake from its backlog, before any accept).
inline int RawConnect(int port, int rcvbuf = 0) {
  int fd = RawTcpSocket();
  CHECK(fd >= 0);
  if (rcvbuf > 0) RawSetInt(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf);
  muxnet::SockAddr a;
  muxnet::SockAddr::FromIp("127.0.0.1", port, &a);
  int rc = RawConnectTo(fd, a);
  CHECK(rc == 0, "connect: errno %d", errno);
  return fd;
}

// Connects a loop client to a loop listener; returns {client id, server id}.
inline std::pair<int, int> ConnectPair(muxnet::Loop* loop, MockHost* host, int lid, int port,
                                       const std::string& cfg) {
  muxnet::SockAddr a;
  muxnet::SockAddr::FromIp("127.0.0.1", port, &a);
  int cid = -1;
  int rc = loop->Connect(a, &cid);
  CHECK(rc == 0 || rc == -EINPROGRESS, "%s: Connect -> %d", cfg.c_str(), rc);
  CHECK(loop->SetAccepting(lid, 1) == 0);
  size_t start = host->log.size();
  int sid = -1;
  bool ok = PumpUntil(loop, host, [&] {
    for (size_t i = start; i < host->log.size(); i++) {
      const muxnet::Event& e = host->log[i];
      if (e.kind == muxnet::kEvAccept && e.id == lid) sid = e.a;
    }
    bool connected = rc == 0;
    for (size_t i = start; i < host->log.size(); i++)
      if (host->log[i].kind == muxnet::kEvConnected && host->log[i].id == cid) connected = true;
    return sid >= 0 && connected;
  });
  CHECK(ok, "%s: no accept/connect (sid=%d)", cfg.c_str(), sid);
  for (size_t i = start; i < host->log.size(); i++)
    if (host->log[i].kind == muxnet::kEvConnected)
      CHECK(host->log[i].a == 0, "%s: kEvConnected a=%d", cfg.c_str(), host->log[i].a);
  CHECK(sid != cid && sid != lid);
  return {cid, sid};
}

// No host problems and no token left unreleased.
inline void CheckClean(MockHost* host, const std::string& cfg) {
  CHECK(host->problems.empty(), "%s: host saw: %s", cfg.c_str(), host->problems[0].c_str());
  CHECK(host->live_tokens.empty(), "%s: %zu tokens never released", cfg.c_str(),
        host->live_tokens.size());
}

// Accepts one raw peer on the loop's listener: returns {peer fd (blocking), server id}.
inline std::pair<int, int> AcceptRaw(muxnet::Loop* loop, MockHost* host, int lid, int port,
                                     const std::string& cfg) {
  int peer = RawConnect(port);
  CHECK(loop->SetAccepting(lid, 1) == 0);
  size_t start = host->log.size();
  int sid = -1;
  bool ok = PumpUntil(loop, host, [&] {
    for (size_t i = start; i < host->log.size(); i++)
      if (host->log[i].kind == muxnet::kEvAccept && host->log[i].id == lid) sid = host->log[i].a;
    return sid >= 0;
  });
  CHECK(ok, "%s: no accept", cfg.c_str());
  return {peer, sid};
}

}  // namespace muxtest

#endif  // MUXNET_TEST_TEST_UTIL_H_
