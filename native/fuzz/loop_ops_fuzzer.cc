// Structured libFuzzer target: drives muxnet::Loop through the mock host with a sequence of
// operations decoded from the input, over real loopback TCP sockets: dial, accept, raw peers
// (write/shutdown/close from outside the loop), loop writes of any size with any queue
// limit, reads (plain and pooled), reads that complete (ReadStart into a buffer, a chunk or a
// stream; ReadStop; buffers detached while a read waits), chunks held by the host and given
// back when the loop asks (ReturnChunks), close, shutdown, cancelWrites, deadlines, pause/want
// read, listener close, and reactions run inside DeliverBatch (close self or another, write,
// cancel, dial, stop or restart a read) with a batch capacity of 1 to 8, so closes and read
// stops happen mid-batch.
//
// Input: byte 0 picks the loop config and batch capacity, bytes 1..8 are the script of the
// in-callback reactions, the rest are operations (one opcode byte and its argument bytes).
// Invariants (abort = a finding):
//   - no event names an id after Close(id) returned 0, until that id is handed out again,
//     except later events of the batch being delivered when it was closed: those the host
//     drops (as lib/loop.ts does), closing the connection of a dropped kEvAccept;
//   - every write and read token is released exactly once (completed or dropped), none is
//     left when the loop is gone, and kEvWritten never reports more requests than were queued;
//   - kEvRead comes only for a started read (or, later in the batch in which the host stopped
//     or closed it, for the stopped one: the host drops it and gives its chunk back); its b
//     is a chunk exactly for the chunk modes' data, and that chunk is not out already;
//   - when every chunk the host holds is given back, the whole pool is free (no chunk lost);
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
#include <algorithm>
#include <iterator>
#include <map>
#include <memory>
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
  std::vector<int> held;       // chunks the host keeps (a JS Buffer still referenced)
  std::vector<int> let_go;     // chunks it let go of: given back at the loop's next ask
  std::vector<bool> chunk_out;  // by chunk index: handed to the host, not given back yet
  void GotChunk(int chunk) {
    FUZZ_ASSERT(chunk >= 0);
    if (chunk_out.size() <= static_cast<size_t>(chunk)) chunk_out.resize(chunk + 1);
    FUZZ_ASSERT(!chunk_out[chunk], "chunk %d handed out twice", chunk);
    chunk_out[chunk] = true;
  }
  void GiveBack(int chunk) {
    chunk_out[chunk] = false;
    int rc = loop->ReleaseChunk(chunk);
    FUZZ_ASSERT(rc == 0, "ReleaseChunk(%d) -> %d", chunk, rc);
  }
  void ReturnChunks() override {
    for (int c : let_go) GiveBack(c);
    let_go.clear();
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
  std::map<int, int> reading;             // id -> mode of its started read (kReadNone: none)
  std::map<int, uint64_t> stopped_in;     // id -> batch_no its read was stopped in
  std::vector<std::unique_ptr<char[]>> read_bufs;  // kReadBuffer memory, kept to the end
  uint8_t script[8] = {};
  int script_pos = 0;
  int reactions = 0;  // bounds work done inside callbacks

  void Opened(int id) {
    FUZZ_ASSERT(id >= 0);
    FUZZ_ASSERT(!open[id], "id %d handed out while still open", id);
    open[id] = true;
    queued[id] = written[id] = 0;
    reading[id] = kReadNone;
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

  // A chunk the host got: kept (then let go of at some later point) or given back at once.
  void TakeChunk(int chunk, bool keep) {
    host.GotChunk(chunk);
    if (keep) {
      host.held.push_back(chunk);
    } else {
      host.GiveBack(chunk);
    }
  }

  void StartRead(int id, int mode, uint8_t arg) {
    char* buf = nullptr;
    size_t len = 0;
    if (mode == kReadBuffer) {
      len = 1 + (arg & 0x3f) * 64;
      read_bufs.push_back(std::make_unique<char[]>(len));
      buf = read_bufs.back().get();
    }
    MockHost::BufferRef ref{&host, buf, len};
    int chunk = -1;
    ssize_t n = loop->ReadStart(id, mode, buf, len, MockHost::MakeBufferToken, &ref, &chunk);
    FUZZ_ASSERT(n >= -4095, "ReadStart -> %zd", n);
    if (id < 0 || !open[id]) {
      FUZZ_ASSERT(n == -EBADF, "ReadStart on closed id %d -> %zd", id, n);
      return;
    }
    if (n > 0 && mode != kReadBuffer) {
      TakeChunk(chunk, arg & 0x40);
    } else {
      FUZZ_ASSERT(chunk == -1, "ReadStart -> %zd with chunk %d", n, chunk);
    }
    if (n == -EINPROGRESS || (n > 0 && mode == kReadStream)) {
      reading[id] = mode;
    } else if (n != -EBUSY && n != -EINVAL) {
      reading[id] = kReadNone;  // completed in the call (or failed): nothing follows
    }
  }

  void StopRead(int id) {
    int rc = loop->ReadStop(id);
    FUZZ_ASSERT(id >= 0 && open[id] ? rc == 0 : rc == -EBADF, "ReadStop(%d) -> %d", id, rc);
    if (rc != 0) return;
    reading[id] = kReadNone;
    stopped_in[id] = host.depth > 0 ? host.batch_no : 0;
  }

  // A kEvRead for an open id: checks it against the read the host started. Later in the
  // batch in which the host stopped a read come only that read's results (a read started
  // after the stop reports in a later batch): the host drops them and gives chunks back.
  void OnRead(const Event& e, bool keep) {
    if (stopped_in[e.id] == host.batch_no && host.depth > 0) {
      if (e.b >= 0) TakeChunk(e.b, false);
      return;
    }
    int mode = reading[e.id];
    FUZZ_ASSERT(mode != kReadNone, "kEvRead for id %d with no read started", e.id);
    bool chunked = e.a > 0 && mode != kReadBuffer;
    FUZZ_ASSERT(chunked ? e.b >= 0 : e.b == -1, "kEvRead a=%d b=%d for mode %d", e.a, e.b, mode);
    if (e.b >= 0) TakeChunk(e.b, keep);
    if (mode != kReadStream || e.a <= 0) reading[e.id] = kReadNone;
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
      if (e.kind == kEvRead && e.b >= 0) TakeChunk(e.b, false);
      return;
    }
    if (e.kind == kEvRead) OnRead(e, script[script_pos % 8] & 0x40);
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
      case 5:
        if (e.kind == kEvReadable) ReadOn(id, s & 8);
        if (e.kind != kEvRead) break;
        if (reading[id] == kReadNone) {
          StartRead(id, kReadBuffer + (s >> 4) % 3, s);
        } else if (s & 8) {
          StopRead(id);
        }
        break;
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
      // Opcodes below 16 keep the meaning the committed corpus was written with.
      switch (op % 24) {
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
        case 16: case 17: case 18:
          s.StartRead(op % 24 == 18 ? static_cast<int>(arg) - 8 : id, kReadBuffer + (in.Byte() % 3), arg);
          break;
        case 19: if (id >= 0 || (arg & 1)) s.StopRead(id); break;
        case 20: {  // the owner of a waiting buffer read lets its memory go (detached)
          if (s.host.buffers.empty()) break;
          auto it = s.host.buffers.begin();
          std::advance(it, arg % s.host.buffers.size());
          it->second.first = nullptr;
          break;
        }
        case 21: {  // the host lets go of held chunks: given back when the loop asks
          size_t k = s.host.held.size() - std::min<size_t>(s.host.held.size(), 1 + arg % 8);
          s.host.let_go.insert(s.host.let_go.end(), s.host.held.begin() + k, s.host.held.end());
          s.host.held.resize(k);
          break;
        }
        case 22: s.Pump(arg % 3); break;
        case 23: if (id >= 0) s.CloseId(id); break;
      }
    }
    for (int i = 0; i < 3; i++) s.Pump(0);
    s.host.on_event = nullptr;
    // Every chunk back: then the whole pool must be free, or the loop lost one.
    s.host.let_go.insert(s.host.let_go.end(), s.host.held.begin(), s.host.held.end());
    s.host.held.clear();
    s.host.ReturnChunks();
    std::vector<int> all;
    for (int c; (c = s.loop->pool()->Acquire()) >= 0;) all.push_back(c);
    constexpr size_t kPoolChunks = 2 * BufferPool::kSlabSize / BufferPool::kChunkSize;  // MakeLoop: 2 slabs
    FUZZ_ASSERT(all.size() == kPoolChunks, "%zu of %zu chunks free at the end", all.size(), kPoolChunks);
    for (int c : all) s.loop->pool()->Release(c);
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
