// Structured libFuzzer target: drives muxnet::Loop through the mock host with a sequence of
// operations decoded from the input, over real loopback TCP sockets: dial, accept, raw peers
// (write/shutdown/close from outside the loop), loop writes of any size with any queue
// limit, reads (plain and pooled), close, shutdown, cancelWrites, deadlines, pause/want
// read, listener close, and reactions run inside DeliverBatch (close self or another, write,
// cancel, dial) with a batch capacity of 1 to 8, so closes happen mid-batch.
//
// Input: byte 0 picks the loop config and batch capacity, bytes 1..8 are the script of the
// in-callback reactions, the rest are operations (one opcode byte and its argument bytes).
// Invariants (abort = a finding):
//   - no event names an id after Close(id) returned 0, until that id is handed out again,
//     except later events of the batch being delivered when it was closed: those the host
//     drops (as lib/loop.ts does), closing the connection of a dropped kEvAccept;
//   - every write token is released exactly once (completed or dropped), none is left
//     when the loop is gone, and kEvWritten never reports more requests than were queued;
//   - return values stay in their contracts (Write 0/1/2/-errno, Close 0/-EBADF, ...);
//   - the process's descriptor count is back to its baseline after each input;
//   - no SIGPIPE (its default action is kept: it would end the run as a crash).
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "../core/loop.h"
#include "../test/test_util.h"
#include "fuzz_assert.h"

using namespace muxnet;
using namespace muxtest;


namespace {

// Write payloads point here: it outlives every token.
char g_payload[256 * 1024];

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>(Byte() | (Byte() << 8)); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

struct FuzzHost : MockHost {
  explicit FuzzHost(int capacity) : MockHost(capacity) {}
  int64_t timer_due = -1;  // when the host's timer would fire (-1: not armed)
  void ArmTimer(int64_t delay_ms) override {
    MockHost::ArmTimer(delay_ms);
    timer_due = delay_ms < 0 ? -1 : NowMs() + delay_ms;
  }
  uint64_t batch_no = 0;  // which DeliverBatch call is running (or ran last)
  void DeliverBatch(int count) override {
    batch_no++;
    depth++;
    for (int i = 0; i < count; i++)
      if (on_event) on_event(batch[i]);
    depth--;
  }
};

struct Session {
  explicit Session(int capacity) : host(capacity) {}

  FuzzHost host;
  std::unique_ptr<Loop> loop;
  int lid = -1;
  int port = 0;
  std::vector<int> conns;                 // open loop connection ids
  std::vector<int> raw;                   // peer descriptors outside the loop
  std::map<int, bool> open;               // id -> open (false: closed, not handed out again)
  std::map<int, long> queued, written;    // id -> write requests queued / reported written
  std::map<int, uint64_t> closed_in;      // id -> batch_no it was closed in (0: outside one)
  uint8_t script[8] = {};
  int script_pos = 0;
  int reactions = 0;  // bounds work done inside callbacks

  void Opened(int id) {
    FUZZ_ASSERT(id >= 0);
    FUZZ_ASSERT(!open[id], "id %d handed out while still open", id);
    open[id] = true;
    queued[id] = written[id] = 0;
  }

  void Closed(int id) {
    open[id] = false;
    closed_in[id] = host.depth > 0 ? host.batch_no : 0;
    for (size_t i = 0; i < conns.size(); i++) {
      if (conns[i] == id) {
        conns.erase(conns.begin() + i);
        break;
      }
    }
    if (id == lid) lid = -1;
  }

  int Pick(uint8_t b) const { return conns.empty() ? -1 : conns[b % conns.size()]; }

  void CloseId(int id) {
    int rc = loop->Close(id);
    FUZZ_ASSERT(rc == 0 || rc == -EBADF, "Close -> %d", rc);
    if (id >= 0 && open.count(id) && open[id]) {
      FUZZ_ASSERT(rc == 0, "Close of open id %d -> %d", id, rc);
    } else {
      FUZZ_ASSERT(rc == -EBADF, "Close of a closed id %d -> %d", id, rc);
    }
    if (rc == 0) Closed(id);
  }

  void Dial() {
    SockAddr a;
    SockAddr::FromIp("127.0.0.1", port, &a);
    int id = -1;
    int rc = loop->Connect(a, &id);
    if (rc == 0 || rc == -EINPROGRESS) {
      Opened(id);
      conns.push_back(id);
    }
  }

  void WriteOn(int id, size_t len, size_t limit) {
    int rc = loop->Write(id, g_payload, len, limit, MockHost::MakeToken, &host);
    FUZZ_ASSERT(rc == 0 || rc == 1 || rc == 2 || rc < 0, "Write -> %d", rc);
    if (rc == 1) queued[id]++;
    if (id < 0 || !open[id]) FUZZ_ASSERT(rc == -EBADF, "Write on closed id %d -> %d", id, rc);
  }

  void ReadOn(int id, bool pooled) {
    char buf[4096];
    ssize_t n;
    if (pooled) {
      int chunk = -1;
      n = loop->ReadChunk(id, &chunk);
      if (n > 0) FUZZ_ASSERT(loop->pool()->Release(chunk) == 0);
    } else {
      n = loop->Read(id, buf, sizeof buf);
    }
    FUZZ_ASSERT(n >= -4095);
    if (id < 0 || !open[id]) FUZZ_ASSERT(n == -EBADF, "Read on closed id %d -> %zd", id, n);
  }

  void OnEvent(const Event& e) {
    int id = e.id;
    if (!open.count(id) || !open[id]) {
      // A host drops the events of an id it closed earlier in the same batch (the loop keeps
      // the id reserved until the batch ends, so they cannot belong to anyone else), and
      // closes the connection a dropped kEvAccept carries. Anything else is a finding.
      FUZZ_ASSERT(open.count(id) && closed_in[id] == host.batch_no && host.depth > 0,
                  "event kind %d for id %d, closed before this batch", e.kind, id);
      if (e.kind == kEvAccept) {
        Opened(e.a);
        CloseId(e.a);
      }
      return;
    }
    if (e.kind == kEvAccept) {
      Opened(e.a);
      conns.push_back(e.a);
    }
    if (e.kind == kEvWritten) {
      written[id] += e.a;
      FUZZ_ASSERT(written[id] <= queued[id], "id %d: %ld written of %ld queued", id, written[id],
                  queued[id]);
    }
    if (e.kind == kEvDeadline) FUZZ_ASSERT(e.a == kReadDeadline || e.a == kWriteDeadline);
    if (reactions >= 64) return;
    reactions++;
    uint8_t s = script[script_pos++ % 8];
    switch (s % 8) {
      case 0: break;
      case 1: CloseId(id); break;                           // close self mid-batch
      case 2: {                                             // close another mid-batch
        int other = Pick(s >> 3);
        if (other >= 0) CloseId(other);
        break;
      }
      case 3: if (e.kind != kEvAccept) WriteOn(id, 1 + (s >> 3) * 1024, size_t{1} << 20); break;
      case 4: loop->CancelWrites(id); break;
      case 5: if (e.kind == kEvReadable) ReadOn(id, s & 8); break;
      case 6: Dial(); break;
      case 7: if (e.kind == kEvAccept) CloseId(e.a); break;  // reject the new connection
    }
  }

  void Pump(int timeout_ms) {
    muxtest::Pump(loop.get(), &host, timeout_ms);
    if (host.timer_due >= 0 && NowMs() >= host.timer_due) loop->RunTimers();
  }
};

const Config kConfigs[] = {
    {"epoll", false, false}, {"epoll", false, true}, {"epoll", true, false},
    {"poll", true, false},   {"select", true, false},
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  for (size_t i = 0; i < sizeof g_payload; i++) g_payload[i] = static_cast<char>(i * 7);
  // SIGPIPE keeps its default action on purpose: the loop writes with MSG_NOSIGNAL (and the
  // raw peers here too), so a SIGPIPE that kills the fuzzer is a finding.
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 9) return 0;
  int fds_before = OpenFdCount();
  Reader in(data, size);
  uint8_t head = in.Byte();
  const Config& config = kConfigs[head % 5];
  {
    Session s(1 + (head >> 5));  // batch capacity 1..8
    for (uint8_t& b : s.script) b = in.Byte();
    s.loop = MakeLoop(&s.host, config);
    s.host.on_event = [&s](const Event& e) { s.OnEvent(e); };
    s.lid = ListenLocal(s.loop.get(), &s.port);
    s.Opened(s.lid);
    int ops = 0;
    while (!in.empty() && ops++ < 200) {
      uint8_t op = in.Byte();
      uint8_t arg = in.Byte();
      int id = s.Pick(arg);
      switch (op % 16) {
        case 0: s.Dial(); break;
        case 1:
          if (s.lid >= 0) {
            int rc = s.loop->SetAccepting(s.lid, arg % 5);
            FUZZ_ASSERT(rc == 0, "SetAccepting -> %d", rc);
          }
          break;
        case 2:
          if (s.raw.size() < 8 && s.lid >= 0) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            SockAddr a;
            SockAddr::FromIp("127.0.0.1", s.port, &a);
            connect(fd, reinterpret_cast<sockaddr*>(&a.storage), a.len);
            if (arg & 1) {
              int small = 4096;
              setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
            }
            s.raw.push_back(fd);
          }
          break;
        case 3: {  // a raw peer acts: write, shutdown, or close (a reset when unread data)
          if (s.raw.empty()) break;
          size_t k = arg % s.raw.size();
          uint8_t how = in.Byte();
          if (how % 3 == 0) {
            ssize_t ignored = send(s.raw[k], g_payload, 1 + how * 64, MSG_NOSIGNAL);
            (void)ignored;
          } else if (how % 3 == 1) {
            shutdown(s.raw[k], SHUT_WR);
          } else {
            if (how & 4) {
              linger l{1, 0};
              setsockopt(s.raw[k], SOL_SOCKET, SO_LINGER, &l, sizeof l);
            }
            close(s.raw[k]);
            s.raw.erase(s.raw.begin() + k);
          }
          break;
        }
        case 4: {
          size_t len = in.U16() % (sizeof g_payload) + 1;
          uint8_t l = in.Byte();
          size_t limit = l == 0 ? size_t{1} << 40 : size_t{l} * 1024;
          s.WriteOn(id, len, limit);
          break;
        }
        case 5: s.ReadOn(id, arg & 0x80); break;
        case 6: if (id >= 0) s.CloseId(id); break;
        case 7: {
          int rc = s.loop->ShutdownWrite(id);
          FUZZ_ASSERT(id >= 0 || rc == -EBADF, "ShutdownWrite(-1) -> %d", rc);
          break;
        }
        case 8: {
          int rc = s.loop->CancelWrites(id);
          FUZZ_ASSERT(id >= 0 || rc == -EBADF, "CancelWrites(-1) -> %d", rc);
          break;
        }
        case 9: {
          uint8_t d = in.Byte();
          int rc = s.loop->SetDeadline(id, 1 + (d & 1), (d & 2) ? -1 : (d >> 2) % 4, d);
          if (id >= 0) FUZZ_ASSERT(rc == 0, "SetDeadline -> %d", rc);
          break;
        }
        case 10: {
          int rc = s.loop->PauseRead(id);
          FUZZ_ASSERT(id >= 0 ? rc == 0 : rc == -EBADF, "PauseRead(%d) -> %d", id, rc);
          break;
        }
        case 11: {
          int rc = s.loop->WantRead(id);
          FUZZ_ASSERT(id >= 0 ? rc == 0 : rc == -EBADF, "WantRead(%d) -> %d", id, rc);
          break;
        }
        case 12: case 13: s.Pump(arg % 3); break;
        case 14: if (s.lid >= 0 && (arg & 0x0f) == 0) s.CloseId(s.lid); break;
        case 15: s.CloseId(static_cast<int>(arg) - 8); break;  // ids never handed out, closed ones
      }
    }
    for (int i = 0; i < 3; i++) s.Pump(0);
    s.host.on_event = nullptr;
    s.loop.reset();  // closes whatever is still open
    for (int fd : s.raw) close(fd);
    FUZZ_ASSERT(s.host.problems.empty(), "host: %s", s.host.problems[0].c_str());
    FUZZ_ASSERT(s.host.live_tokens.empty(), "%zu tokens never released", s.host.live_tokens.size());
    FUZZ_ASSERT(s.host.tokens_made == s.host.tokens_released);
  }
  int fds_after = OpenFdCount();
  FUZZ_ASSERT(fds_after == fds_before, "descriptors: %d before, %d after", fds_before, fds_after);
  return 0;
}
