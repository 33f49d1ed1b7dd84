// Connection churn for the leak check: one muxnet::Loop (mock host) dials, accepts, echoes
// a small message (clients read it in turn with Read, ReadChunk, and reads that complete into
// a buffer or a stream of chunks) and closes N loopback TCP connections, a few dozen at a
// time, per backend
// and mode. Run under LeakSanitizer (scripts/test-leaks.sh): anything the loop allocates per
// connection and never frees is reported at exit; what it keeps but should have dropped
// (growth while idle) is caught by comparing the heap between two idle points.
//
//   churn [count] [count for the other configs]   (defaults: 100000 and 20000)
//
// The server side closes first, so TIME_WAIT lands on the listener's port and the client's
// ephemeral ports are never exhausted (a 100k run would otherwise need ~28k ports at once).
#include <signal.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "../core/loop.h"
#include "../test/check.h"
#include "../test/test_util.h"

using namespace muxnet;
using namespace muxtest;

// From the sanitizer runtime (GCC does not install <sanitizer/allocator_interface.h>).
extern "C" size_t __sanitizer_get_current_allocated_bytes();

namespace {

constexpr size_t kNoLimit = size_t{1} << 40;
constexpr int kInFlight = 48;      // connections open at once
constexpr int kMessage = 24;       // bytes echoed per connection
constexpr int kStallMs = 10000;    // no progress for this long fails the run

enum Role : uint8_t { kNone, kClient, kServer };

struct ConnState {
  Role role = kNone;
  int got = 0;             // bytes read so far
  bool written = false;    // server: echo fully handed to the kernel
  // Client: how it reads: Read, ReadChunk, ReadStart(kReadBuffer) into `in`, or
  // ReadStart(kReadStream), in turn by connection.
  uint8_t reads = 0;
  char data[kMessage];
  char in[kMessage + 8];  // kReadBuffer's memory: room past the message to see EOF
};

// The mock host without the event log (100k connections would grow it without bound,
// which the heap-growth check would then blame on the loop).
struct ChurnHost : MockHost {
  explicit ChurnHost(int capacity) : MockHost(capacity) {}
  void DeliverBatch(int count) override {
    for (int i = 0; i < count; i++)
      if (on_event) on_event(batch[i]);
  }
};

struct Churn {
  Config config;
  ChurnHost host{16};  // a small batch capacity: events are delivered mid-Process
  std::unique_ptr<Loop> loop;
  int lid = -1;
  SockAddr addr;
  // By id. A deque: growing it keeps the other entries in place, and queued writes point
  // into them.
  std::deque<ConnState> conns;
  int started = 0, finished = 0, open_clients = 0;
  uint64_t seq = 0;

  ConnState& At(int id) {
    if (id >= static_cast<int>(conns.size())) conns.resize(id + 1);
    return conns[id];
  }

  void Problem(const std::string& what) {
    if (host.problems.size() < 20) host.problems.push_back(what);
  }

  void Fill(char* out, uint64_t n) {
    for (int i = 0; i < kMessage; i++) out[i] = static_cast<char>('a' + (n * 7 + i) % 26);
  }

  void Dial() {
    int id = -1;
    int rc = loop->Connect(addr, &id);
    if (rc != 0 && rc != -EINPROGRESS) {
      Problem("Connect -> " + std::to_string(rc));
      return;
    }
    ConnState& c = At(id);
    c = ConnState{};
    c.role = kClient;
    c.reads = static_cast<uint8_t>(seq % 4);
    Fill(c.data, seq++);
    started++;
    open_clients++;
    // While connecting, the write is queued and flushed on kEvConnected.
    int w = loop->Write(id, c.data, kMessage, kNoLimit, MockHost::MakeToken, &host);
    if (w != 0 && w != 1) Problem("client Write -> " + std::to_string(w));
    if (c.reads >= 2) {
      ClientStartRead(id);
    } else if (loop->WantRead(id) != 0) {
      Problem("client WantRead failed");
    }
  }

  // Starts reads that complete until one has to wait (-EINPROGRESS: kEvRead follows).
  void ClientStartRead(int id) {
    for (;;) {
      ConnState& c = At(id);
      int mode = c.reads == 2 ? kReadBuffer : kReadStream;
      MockHost::BufferRef ref{&host, c.in + c.got, sizeof c.in - c.got};
      int chunk = -1;
      ssize_t n = loop->ReadStart(id, mode, ref.data, ref.len, MockHost::MakeBufferToken, &ref, &chunk);
      if (n == -EINPROGRESS || !ClientGot(id, n, chunk)) return;
    }
  }

  // A completed read of n bytes (in c.in, or in the pool chunk); false once it closed.
  bool ClientGot(int id, ssize_t n, int chunk) {
    ConnState& c = At(id);
    if (n > 0 && chunk >= 0) {
      memcpy(c.in + c.got, loop->pool()->Data(chunk), std::min<size_t>(n, sizeof c.in - c.got));
      if (loop->ReleaseChunk(chunk) != 0) Problem("chunk release failed");
    }
    if (n < 0) Problem("client ReadStart/kEvRead -> " + std::to_string(n));
    if (n <= 0) {
      if (n == 0 && c.got != kMessage) Problem("EOF after " + std::to_string(c.got) + " bytes");
      CloseConn(id);
      return false;
    }
    if (c.got + n > kMessage || memcmp(c.in + c.got, c.data + c.got, n) != 0) Problem("echo differs");
    c.got += static_cast<int>(n);
    return true;
  }

  void CloseConn(int id) {
    ConnState& c = At(id);
    if (c.role == kClient) {
      open_clients--;
      finished++;
    }
    c.role = kNone;
    int rc = loop->Close(id);
    if (rc != 0) Problem("Close -> " + std::to_string(rc));
  }

  void ServerRead(int id) {
    ConnState& c = At(id);
    while (c.got < kMessage) {
      ssize_t n = loop->Read(id, c.data + c.got, kMessage - c.got);
      if (n == -EAGAIN) return;
      if (n <= 0) {
        Problem("server Read -> " + std::to_string(n) + " after " + std::to_string(c.got));
        CloseConn(id);
        return;
      }
      c.got += static_cast<int>(n);
    }
    loop->PauseRead(id);
    int w = loop->Write(id, c.data, kMessage, kNoLimit, MockHost::MakeToken, &host);
    if (w == 0) {
      CloseConn(id);  // the server closes first: see the top of the file
    } else if (w != 1) {
      Problem("server Write -> " + std::to_string(w));
      CloseConn(id);
    }
  }

  void ClientRead(int id) {
    ConnState& c = At(id);
    for (;;) {
      char buf[64];
      ssize_t n;
      if (c.reads == 1) {
        int chunk = -1;
        n = loop->ReadChunk(id, &chunk);
        if (n > 0) {
          memcpy(buf, loop->pool()->Data(chunk), std::min<size_t>(n, sizeof buf));
          if (loop->pool()->Release(chunk) != 0) Problem("chunk release failed");
        }
      } else {
        n = loop->Read(id, buf, sizeof buf);
      }
      if (n == -EAGAIN) return;
      if (n < 0) {
        Problem("client Read -> " + std::to_string(n));
        CloseConn(id);
        return;
      }
      if (n == 0) {
        if (c.got != kMessage) Problem("EOF after " + std::to_string(c.got) + " bytes");
        CloseConn(id);
        return;
      }
      if (c.got + n > kMessage || memcmp(buf, c.data + c.got, n) != 0) Problem("echo differs");
      c.got += static_cast<int>(n);
    }
  }

  void OnEvent(const Event& e) {
    switch (e.kind) {
      case kEvAccept: {
        ConnState& c = At(e.a);
        c = ConnState{};
        c.role = kServer;
        // A deadline that never fires: Close must take it out of the timer heap.
        loop->SetDeadline(e.a, kReadDeadline, 60000, 1);
        if (loop->WantRead(e.a) != 0) Problem("server WantRead failed");
        ServerRead(e.a);
        break;
      }
      case kEvConnected:
        if (e.a != 0) Problem("connect failed: " + std::to_string(e.a));
        break;
      case kEvReadable:
        if (e.id >= static_cast<int>(conns.size()) || conns[e.id].role == kNone) {
          Problem("event for a closed id " + std::to_string(e.id));
        } else if (conns[e.id].role == kServer) {
          ServerRead(e.id);
        } else {
          ClientRead(e.id);
        }
        break;
      case kEvRead:
        if (e.id >= static_cast<int>(conns.size()) || conns[e.id].role != kClient) {
          Problem("kEvRead for a closed id or a server " + std::to_string(e.id));
        } else if (ClientGot(e.id, e.a, e.b) && conns[e.id].reads == 2) {
          ClientStartRead(e.id);  // a buffer read completes once: start the next
        }
        break;
      case kEvWritten:
        if (e.id < static_cast<int>(conns.size()) && conns[e.id].role == kServer) CloseConn(e.id);
        break;
      case kEvDeadline:
        Problem("a 60 s deadline fired");
        break;
      default:
        Problem("unexpected event kind " + std::to_string(e.kind) + " a=" + std::to_string(e.a));
    }
  }

  // Churns `count` more connections; returns when every one of them is closed.
  void Run(int count) {
    int target = started + count;
    int64_t last_progress = NowMs();
    int last_finished = finished;
    while (finished < target) {
      while (open_clients < kInFlight && started < target) Dial();
      Pump(loop.get(), &host, 50);
      CHECK(host.problems.empty(), "%s: %s", config.Name().c_str(), host.problems[0].c_str());
      if (finished != last_finished) {
        last_finished = finished;
        last_progress = NowMs();
      }
      CHECK(NowMs() - last_progress < kStallMs, "%s: stalled at %d of %d (%d open)",
            config.Name().c_str(), finished, target, open_clients);
    }
    // The last server closes may still wait for a kEvWritten.
    for (int i = 0; i < 20 && !host.live_tokens.empty(); i++) Pump(loop.get(), &host, 10);
  }
};

size_t HeapBytes() { return __sanitizer_get_current_allocated_bytes(); }

void RunConfig(const Config& config, int count) {
  int fds_before = OpenFdCount();
  size_t heap_start = HeapBytes();
  int64_t t0 = NowMs();
  char report[160] = "";
  {
    Churn churn;
    churn.config = config;
    churn.loop = MakeLoop(&churn.host, config);
    churn.host.on_event = [&churn](const Event& e) { churn.OnEvent(e); };
    int port;
    churn.lid = ListenLocal(churn.loop.get(), &port);
    CHECK(SockAddr::FromIp("127.0.0.1", port, &churn.addr) == 0);
    CHECK(churn.loop->SetAccepting(churn.lid, INT_MAX) == 0);
    // Warm up: every container reaches its working size.
    int warm = std::min(count, 2000);
    churn.Run(warm);
    size_t heap_warm = HeapBytes();
    churn.Run(count - warm);
    size_t heap_end = HeapBytes();
    // Idle after each phase, so the heap should be the same: the loop keeps nothing per
    // closed connection. The slack covers allocator-level noise (vectors that grew once).
    const size_t kSlack = 64 * 1024;
    CHECK(heap_end <= heap_warm + kSlack,
          "%s: heap grew by %zu bytes over %d connections while idle at both ends",
          config.Name().c_str(), heap_end - heap_warm, count - warm);
    CHECK(churn.host.live_tokens.empty(), "%s: %zu tokens never released",
          config.Name().c_str(), churn.host.live_tokens.size());
    CHECK(churn.host.tokens_made == churn.host.tokens_released);
    CHECK(churn.loop->Close(churn.lid) == 0);
    CHECK(!churn.host.active, "%s: loop still active with nothing open", config.Name().c_str());
    snprintf(report, sizeof report, "%6d connections in %5.1f s, heap %+lld bytes after warm-up",
             churn.finished, (NowMs() - t0) / 1000.0,
             static_cast<long long>(heap_end) - static_cast<long long>(heap_warm));
  }
  int fds_after = OpenFdCount();
  CHECK(fds_after == fds_before, "%s: %d descriptors open before, %d after",
        config.Name().c_str(), fds_before, fds_after);
  CHECK(HeapBytes() <= heap_start + 4096, "%s: %zu bytes still allocated after the loop is gone",
        config.Name().c_str(), HeapBytes() - heap_start);
  printf("ok churn %-22s %s\n", config.Name().c_str(), report);
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IONBF, 0);
  signal(SIGPIPE, SIG_IGN);
  RaiseNoFile();
  int first = argc > 1 ? atoi(argv[1]) : 100000;
  int others = argc > 2 ? atoi(argv[2]) : 20000;
  int failed = 0;
  bool is_first = true;
  for (const Config& c : LoopConfigs()) {
    int count = is_first ? first : others;
    is_first = false;
    try {
      RunConfig(c, count);
    } catch (const Failure& f) {
      printf("FAIL churn %s: %s\n", c.Name().c_str(), f.why.c_str());
      failed++;
    }
  }
  return failed == 0 ? 0 : 1;
}
