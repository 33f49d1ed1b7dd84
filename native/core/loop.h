// One event loop: a backend, the handles it serves (by token), deadlines, and the rules
// that turn readiness into completed operations. Plain C++: the addon plugs it into Node
// through LoopHost. The methods are defined by concern, as libuv splits src/unix:
//   loop.cc      the handle table, interest, dispatch, batches, timers, driving
//   waiter.cc    waiting inline or on a helper thread (Waiter)
//   stream.cc    connections: connect, reads that complete, writes, shutdown
//   listener.cc  accepting, EMFILE shedding, services
//   datagram.cc  UDP, unixgram and raw sockets
//   passing.cc   descriptor passing over Unix streams
//   receive.cc   stream reads on a completion backend (io_uring): receives into pool chunks
#ifndef MUXNET_CORE_LOOP_H_
#define MUXNET_CORE_LOOP_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "buffer_pool.h"
#include "poller.h"
#include "socket.h"
#include "timer_heap.h"
#include "write_queue.h"

namespace muxnet {

class Waiter;

// What the loop reports, four int32 each, in one batch per wake-up. The addon exports
// these numbers to JS (constants()); lib/native.ts is checked against them by a test.
enum EventKind : int32_t {
  kEvReadable = 1,     // id, a = 1 once the peer has hung up: the socket may have data,
                       // EOF or an error to read (WantRead's report; datagrams and sync
                       // reads). After a hang-up a short read does not mean drained.
  kEvWritten = 2,      // id, a = write requests completed (in order)
  kEvWriteError = 3,   // id, a = -errno: every queued write request failed
  kEvAccept = 4,       // id = listener, a = id of the accepted connection; a host that
                       // drops it as stale (listener closed earlier in the batch) must
                       // Close(a), or the connection stays open with no owner
  kEvAcceptError = 5,  // id = listener, a = -errno (EMFILE: the connection was shed)
  kEvConnected = 6,    // id, a = 0 or -errno
  kEvDeadline = 7,     // id, a = 1 (read) or 2 (write), b = tag: that deadline has passed
  kEvWritable = 8,     // id: a datagram socket that WantWrite was called for has room
  kEvRead = 9,         // id, a = bytes read (> 0), 0 at EOF or -errno; b = the pool chunk
                       // read into, or -1: a read started by ReadStart has completed
};

struct Event {
  int32_t kind, id, a, b;
};

enum DeadlineKind : int32_t { kReadDeadline = 1, kWriteDeadline = 2 };

// What a read started by ReadStart reads into.
enum ReadMode : int32_t {
  kReadNone = 0,
  kReadBuffer = 1,  // the caller's memory, once
  kReadChunk = 2,   // a pool chunk, once
  kReadStream = 3,  // pool chunks, one kEvRead per read, until ReadStop, EOF or an error
};

// The loop's view of its embedder. Every call comes on the loop's (JS) thread, except
// WakeFromHelper, which the helper thread calls.
class LoopHost {
 public:
  virtual ~LoopHost() = default;
  // Events [0, count) of the batch buffer are ready; they are overwritten after return.
  virtual void DeliverBatch(int count) = 0;
  // A token made for a write or a read is no longer used by the loop.
  virtual void ReleaseToken(void* token) = 0;
  // The memory behind a read's token, looked up right before the read(2) (the owner may
  // have let it go meanwhile: a detached ArrayBuffer). False when it is gone.
  virtual bool ResolveBuffer(void* token, char** data, size_t* len) = 0;
  // Memory for pool slab `slab` (BufferPool::kSlabSize bytes), alive as long as the host.
  virtual char* AllocateSlab(int slab) = 0;
  // Chunks the host let go of since the last call: give them back with ReleaseChunk now.
  virtual void ReturnChunks() {}
  // The earliest deadline is now delay_ms away (-1: there is none).
  virtual void ArmTimer(int64_t delay_ms) = 0;
  // The loop went from no open handle to some (true) or back (false).
  virtual void SetActive(bool active) = 0;
  // Helper thread: a batch is ready; the loop thread should call RunReady() soon.
  virtual void WakeFromHelper() = 0;
};

class Loop;

// Connections served in C++ instead of JS (the benchmark's native floors live in bench/):
// they get every readiness event of their socket and drive it with the Service* methods.
class NativeService {
 public:
  virtual ~NativeService() = default;
  // A connection of a listener with this service was accepted.
  virtual void OnAccepted(Loop* loop, int id, int fd) = 0;
  // Its socket fired `events` (kReadable, kWritable, kHangup bits).
  virtual void OnReady(Loop* loop, int id, int fd, uint32_t events) = 0;
  // It was closed (by the service or with the loop): forget its state.
  virtual void OnClosed(int id) = 0;
};

// Running totals of one loop, for monitoring.
struct LoopStats {
  uint64_t accepted = 0;   // connections accepted
  uint64_t dialed = 0;     // connections started by Connect
  uint64_t bytes_in = 0;   // read by Read/ReadChunk/ReadStart
  uint64_t bytes_out = 0;  // taken by the kernel from Write and the write queues
};

// What one connection has moved, and when it was opened (steady clock, ms).
struct HandleCounters {
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  int64_t opened_ms = 0;
};

struct LoopOptions {
  std::string backend;        // "epoll", "io_uring", "poll", "select", "kqueue"
  bool edge_triggered = false;  // needs a backend whose caps have edge
  bool threaded = false;        // wait on a helper thread (select and poll always do)
  int max_slabs = 64;           // pool bound: 64 x 1 MiB
  // Tests only: makes the backend instead of CreatePoller(backend), e.g. a wrapper that
  // injects failures (native/test/fault_poller.h). 0 or -errno, as CreatePoller.
  std::function<int(std::unique_ptr<Poller>*)> make_poller;
};

// Also what recvHandles reports for each adopted socket (lib/unix-conn.ts reads it).
enum class HandleKind : uint8_t { kStream = 1, kListener = 2, kDatagram = 3 };

class Loop {
 public:
  // Completion backends that can limit a multishot receive: what one takes before it ends
  // and the next read arms another, a bound on what an owner that stops reading has taken
  // out of the kernel (4 chunks).
  static constexpr uint32_t kReceiveLimit = 256 * 1024;
  // Completion backends: results of a receive that wait unread for a read, at most, before
  // the receive is cancelled (its cancellation may let a few more through).
  static constexpr size_t kMaxReceived = 4;

  // batch: where events are written, capacity entries; owned by the host.
  Loop(LoopHost* host, Event* batch, int capacity);
  // Closes every handle and stops the helper thread.
  ~Loop();

  // Returns 0, -ENOENT (unknown backend), -EINVAL (edge without support), -ENOTSUP
  // (threaded with a backend that waits only inline), or -errno.
  int Init(const LoopOptions& options);
  const char* BackendName() const { return poller_->Name(); }
  PollerCaps caps() const { return poller_->Caps(); }
  bool threaded() const { return threaded_; }
  bool edge_triggered() const { return edge_; }
  // Inline mode: the fd to watch for readability, then call RunInline().
  int PollableFd() const { return poller_->PollableFd(); }

  // --- Handles. Ids are small integers, reused only after the batch that closed them.
  int Listen(const SockAddr& addr, const ListenOptions& options, int* id);
  // 0: connected at once; -EINPROGRESS: kEvConnected follows; both set *id.
  int Connect(const SockAddr& addr, int* id);
  // Accepts on readiness, at most `budget` connections (0 stops), then stops by itself, so
  // the owner's queue of accepted connections stays bounded. kEvAcceptError stops it too.
  int SetAccepting(int id, int budget);
  // The listener's connections are served by `service` (not owned; it outlives the loop's
  // use of it): no events reach the host for them. The listener still needs SetAccepting.
  int SetService(int id, NativeService* service);
  // For a service: the interest of one of its connections (kReadable | kWritable, 0 = none).
  int ServiceInterest(int id, uint32_t interest);

  // --- Datagram sockets (UDP, unixgram): readiness to read works as for WantRead
  // (RecvFrom/RecvMany arm it on -EAGAIN); a send that gets -EAGAIN asks WantWrite for one
  // kEvWritable (streams too: SendWithHandles).
  int BindPacket(const SockAddr& addr, bool reuse_addr, int* id);
  int BindRaw(const SockAddr& addr, int protocol, int* id);
  int DialPacket(const SockAddr& addr, int* id);
  ssize_t RecvFrom(int id, void* data, size_t len, SockAddr* from, bool* truncated);
  ssize_t SendTo(int id, const void* data, size_t len, const SockAddr* to);
  int RecvMany(int id, Datagram* batch, int count);
  int SendMany(int id, const Datagram* batch, int count);
  int WantWrite(int id);

  // --- Passing descriptors over Unix stream sockets.
  // Takes ownership of fd (a socket received from elsewhere): makes it non-blocking and a
  // handle of this loop of `kind`. 0 with *id set, or -errno (fd is then closed).
  int Adopt(int fd, HandleKind kind, int* id);
  // sendmsg with the descriptors of handles `ids` attached; only when no write is queued
  // (-EBUSY otherwise). Bytes sent or -errno.
  ssize_t SendWithHandles(int id, const void* data, size_t len, const int32_t* ids, int count);
  // RecvWithFds on the handle (-EAGAIN arms readiness as Read does); the received
  // descriptors are the caller's.
  ssize_t RecvWithFds(int id, void* data, size_t len, int* fds, int max, int* count);

  // --- Reads that complete (the seam a completion backend implements natively).
  // Makes the token that keeps a read's or write's memory alive while the loop holds it.
  using MakeToken = void* (*)(void* context);
  // Starts a read of `mode` on a stream. When the socket may hold data (readiness seen since
  // the last EAGAIN) it reads at once and returns the bytes (> 0; *chunk set for the chunk
  // modes), 0 at EOF or -errno; kReadStream stays started after such a read (call again to
  // read on). Otherwise it asks for a token for kReadBuffer's memory, returns -EINPROGRESS,
  // and the result comes as kEvRead when the socket is ready. -EBUSY: another read is
  // started (a kReadStream start on a kReadStream read reads on); -ENOBUFS: the pool is out.
  ssize_t ReadStart(int id, int mode, char* data, size_t len, MakeToken make_token,
                    void* context, int* chunk);
  // Cancels a started read (its token is released); no kEvRead follows for it, except one
  // already emitted and still to be delivered in the batch being delivered (a ReadStop from
  // inside DeliverBatch): the host drops those, giving back their chunk, as it drops events
  // of an id it closed. A read started after the stop reports in a later batch.
  int ReadStop(int id);

  // read(2) into caller memory. -EAGAIN arms readiness: kEvReadable follows.
  ssize_t Read(int id, void* data, size_t len);
  // Reports readiness with kEvReadable, sticky until PauseRead.
  int WantRead(int id);
  // Stops reporting readiness.
  int PauseRead(int id);
  // Reads into a pooled chunk. Returns bytes (> 0) with *chunk set, 0 at EOF, -EAGAIN
  // (readiness is then reported, as for Read), -ENOBUFS (pool exhausted) or -errno.
  ssize_t ReadChunk(int id, int* chunk);
  // Gives a chunk back to the pool: 0 or -EINVAL. A chunk that a dropped send still in the
  // kernel reads from (parked_sends_) goes back when that send's result comes.
  int ReleaseChunk(int chunk);
  BufferPool* pool() { return pool_.get(); }

  // Writes data now if the queue is empty and queues the rest by reference, asking for a
  // token only then. Returns 0 (all written), 1 (queued; the token is released through
  // LoopHost::ReleaseToken once written or dropped; kEvWritten or kEvWriteError follows),
  // 2 (queue at `limit` bytes; nothing done) or -errno.
  int Write(int id, const char* data, size_t len, size_t limit, MakeToken make_token,
            void* context);
  // Like Write, for `len` bytes of open file `file` from `offset` (SendFile: no copy through
  // user space where the platform can). The file must stay open until the write completes
  // or is dropped. -ENODATA: the file ended before `len` bytes.
  int SendFile(int id, int file, int64_t offset, size_t len, size_t limit, MakeToken make_token,
               void* context);
  // --- Splicing (Linux): bytes from one socket to another through a kernel pipe, never in
  // user space. A pipe is the loop's, by a small id; open ones close with the loop.
  // A new pipe's id (>= 0), or -errno (-ENOSYS off Linux, -EOPNOTSUPP on a completion
  // backend, whose receives would race the splices; -EMFILE).
  int OpenPipe();
  // Closes pipe `pipe` (bytes in it are dropped): 0 or -EBADF.
  int ClosePipe(int pipe);
  // Moves up to `len` bytes from socket `id` into pipe `pipe`: bytes (counted as read), 0
  // at the socket's end, -EAGAIN (socket drained, or the pipe full: readiness is armed as
  // for Read), -EBUSY while a read is started, or -errno.
  ssize_t SpliceIn(int id, int pipe, size_t len);
  // Moves up to `len` bytes from pipe `pipe` to socket `id`: bytes (counted as written),
  // -EAGAIN (socket buffer full: ask WantWrite), -EBUSY while writes are queued or the
  // connect is pending, -EPIPE after ShutdownWrite, or -errno. Never raises SIGPIPE.
  ssize_t SpliceOut(int pipe, int id, size_t len);

  // Writes what the kernel takes now and queues nothing: bytes written (0 when the socket
  // buffer is full), -EBUSY while writes are queued or the connect is pending (the bytes
  // would overtake them), or -errno. For data the caller cannot keep (a reused buffer).
  ssize_t TryWrite(int id, const char* data, size_t len);
  // Drops queued writes (their tokens are released).
  int CancelWrites(int id);
  // shutdown(SHUT_WR), after the queued writes.
  int ShutdownWrite(int id);
  // Closes the socket now; queued writes and a started read are dropped; the id stays
  // reserved until the end of the current batch so stale events in it are recognised.
  int Close(int id);
  // delay_ms < 0 clears the deadline; tag comes back in its kEvDeadline.
  int SetDeadline(int id, int kind, int64_t delay_ms, int32_t tag);
  // A socket option (SocketOption) on the handle's socket: 0 or -errno.
  int SetOption(int id, int option, int a, int b, int c, int d);
  // Multicast on a datagram socket: op 1 joins `group`, 2 leaves it, 3 sets the outgoing
  // interface (`iface`). 0 or -errno.
  int Multicast(int id, int op, const std::string& group, const std::string& iface);
  // The socket descriptor, or -EBADF.
  int Fd(int id) const;
  // The handle's counters; 0 or -EBADF.
  int Counters(int id, HandleCounters* out) const;
  const LoopStats& stats() const { return stats_; }
  // Handles open now: listeners and connections.
  size_t open_handles() const { return open_; }
  int64_t NowMs() const;

  // Stops waiting (joins the helper thread); after it only the destructor may be called.
  // Lets a host close what watches the backend's descriptor before the loop closes it.
  void StopWaiting();

  // --- Driving.
  void RunInline();  // inline: the pollable fd is readable
  void RunReady();   // threaded: the helper has a batch
  void RunTimers();  // the host's timer fired

 private:
  struct Handle {
    int32_t id = -1;
    uint32_t generation = 0;
    int fd = -1;
    HandleKind kind;
    bool closed = false;
    bool registered = false;
    bool read_wanted = false;  // report readiness with kEvReadable (WantRead)
    bool read_hangup = false;  // the peer hung up: EOF follows the data
    bool write_wanted = false;  // report kEvWritable once (WantWrite)
    uint32_t interest = 0;
    HandleCounters counters;
    NativeService* service = nullptr;  // a listener's or a served connection's
    uint32_t service_interest = 0;
    explicit Handle(HandleKind k) : kind(k) {}
    virtual ~Handle() = default;
    Token token() const { return (Token{generation} << 32) | static_cast<uint32_t>(id); }
  };
  struct ListenerHandle final : Handle {
    ListenerHandle() : Handle(HandleKind::kListener) {}
    bool accepting = false;
    int accept_budget = 0;  // connections still to accept before stopping
    // Completion backend (listener.cc): the backend's accepts in flight (and being
    // cancelled); connections they made while the owner was not accepting, in order, to be
    // handed out at the next wake-up once it accepts again (accepted_due).
    bool ring_accept = true;  // false: the backend has no accept, readiness as elsewhere
    int accepts = 0;
    bool accept_cancelled = false;
    bool accepted_before = false;
    bool accepted_due = false;
    std::vector<int> accepted;  // front first (a deque allocates ~600 bytes even empty)
  };
  struct StreamHandle final : Handle {
    StreamHandle() : Handle(HandleKind::kStream) {}
    bool connecting = false;
    bool shutdown_pending = false;
    bool may_read = true;  // readiness seen since the last EAGAIN (or never looked)
    int32_t read_mode = kReadNone;
    void* read_token = nullptr;  // kReadBuffer: the caller's memory
    WriteQueue writes;
    // Completion backend (receive.cc): the socket's receive is armed (multishot: for a
    // stream read, going on); what it received that no read has taken yet, in order
    // (bounded: a multishot receive is cancelled when its read stops, and at kMaxReceived).
    bool receiving = false;
    bool multishot = false;
    bool receive_cancelled = false;  // its cancellation reached the backend (not retried)
    int8_t receive_shots = 0;  // 0 not known yet, 1 one result per arming, 2 multishot
    struct Received {
      int32_t n;      // bytes, 0 (end of stream) or -errno
      int32_t chunk;  // the pool chunk holding them from its start, or -1
    };
    // A vector, front first, not a deque: an empty std::deque allocates about 600 bytes,
    // which every connection on every backend paid (a handful of entries at most are here).
    std::vector<Received> received;
    // Completion backend (receive.cc): a send of the first `send_requests` requests of
    // `writes` is in the kernel (readiness then does not flush the queue); dropped: they
    // left the queue (CancelWrites, a close), and their memory waits in parked_sends_ for
    // the send's result.
    bool sending = false;
    uint8_t send_requests = 0;
    bool send_dropped = false;
    bool write_closed = false;  // shut down for writing (ShutWrite): writes fail with EPIPE
    // Completion backend: `connecting` by the backend's Connect (its kConnected event ends
    // it), not by connect(2) and writable readiness.
    bool connect_sent = false;
  };
  struct DatagramHandle final : Handle {
    DatagramHandle() : Handle(HandleKind::kDatagram) {}
  };

  Handle* Get(int id) const;
  StreamHandle* GetStream(int id) const;
  ListenerHandle* GetListener(int id) const;
  DatagramHandle* GetDatagram(int id) const;
  Handle* FromToken(Token token) const;
  int AddHandle(std::unique_ptr<Handle> h, int fd);
  uint32_t DesiredInterest(const Handle& h) const;
  // Brings the backend's interest in line with the handle's state. On failure nothing
  // changed (the old interest stays registered) and the caller fails its operation.
  int UpdateInterest(Handle* h);
  // An interest change the backend refused after the fact (threaded mode), or a dead
  // backend: fails what the handle was waiting for, with err, through its events.
  void FailHandle(Handle* h, int err);
  void Process(const PollEvent* events, int n);
  void OnListenerReady(ListenerHandle* h);
  // A connection accepted for h: counted and handed to the owner (kEvAccept) or its service.
  void HandOut(ListenerHandle* h, int fd);
  // Accepting failed with err: sheds the backlog on EMFILE, stops, emits kEvAcceptError.
  void AcceptFailed(ListenerHandle* h, int err);
  // --- A completion backend's accept (listener.cc).
  bool UsesAccept(const ListenerHandle& h) const { return completion_ && h.ring_accept; }
  // Arms or cancels the backend's accept as h->accepting says; 0 or -errno.
  int UpdateAccept(ListenerHandle* h);
  // Brings accepting in line with h->accepting: the backend's accept or readiness interest.
  int ApplyAccepting(ListenerHandle* h) { return UsesAccept(*h) ? UpdateAccept(h) : UpdateInterest(h); }
  void OnAccepted(Handle* h, const PollEvent& e);
  // Hands out the connections accepted while their listener's owner was not accepting.
  void DeliverAccepted();
  static constexpr int kAcceptsInFlight = 16;
  void OnStreamReady(StreamHandle* h, uint32_t events);
  void OnDatagramReady(DatagramHandle* h, uint32_t events);
  // Serves the started read while the socket has data; see ReadStart.
  void CompleteReads(StreamHandle* h);
  // One read(2) for the started read: bytes, 0, -EAGAIN, -ENOBUFS or -errno; *chunk set.
  ssize_t ReadOnce(StreamHandle* h, char* data, size_t len, int* chunk);
  void EndRead(StreamHandle* h);
  void FlushWrites(StreamHandle* h);
  // shutdown(SHUT_WR) now; later writes fail with -EPIPE before reaching the kernel.
  int ShutWrite(StreamHandle* h);
  // The one kEvWritable a WantWrite owner asked for. Emit may run JS: callers look the
  // handle up again after it.
  void EmitWritable(Handle* h);
  // After a receive: counts bytes, or arms readiness on -EAGAIN. Returns n or an error.
  ssize_t AfterReceive(Handle* h, ssize_t n, size_t bytes);
  void Count(Handle* h, size_t in, size_t out) {
    h->counters.bytes_in += in;
    h->counters.bytes_out += out;
    stats_.bytes_in += in;
    stats_.bytes_out += out;
  }
  void ReleaseTokens();
  void Emit(int32_t kind, int32_t id, int32_t a, int32_t b);
  // A completed read of n bytes: its kEvRead, and the batch is handed over early once
  // kBatchBytes have been read into it, so the owner writes them on while they are
  // still in the CPU's cache (a bulk echo reading every ready socket first, then writing,
  // copied from cold memory: 0.70x the floor's throughput over 8 connections).
  void EmitRead(int32_t id, ssize_t n, int32_t chunk);
  static constexpr size_t kBatchBytes = 64 * 1024;
  void FlushBatch();
  void Enter() {
    if (depth_++ == 0 && completion_) poller_->Defer(true);
  }
  // Write and SendFile: on an idle socket `send(h, &done)` sends what the kernel takes now
  // (done: bytes, counted) and returns 0 or -errno; `push(h, skip, token)` queues the request
  // from byte `skip` on. Returns as Write does. `by_send`: a memory request, which goes to
  // the backend's Send() where the stream uses it.
  template <typename Send, typename Push>
  int StartWrite(int id, size_t len, size_t limit, MakeToken make_token, void* context, bool by_send, Send send,
                 Push push);
  bool PipeOpen(int pipe) const {
    return pipe >= 0 && static_cast<size_t>(pipe) < pipes_.size() && pipes_[pipe].first >= 0;
  }
  void Leave();
  void UpdateTimer();

  // --- receive.cc: stream reads on a completion backend.
  // The stream reads through the backend's receive (not a service's connection).
  bool UsesReceive(const StreamHandle& h) const { return completion_ && h.service == nullptr; }
  // A receive is armed or its results wait: the next bytes are its, not the socket's.
  static bool Received(const StreamHandle& h) { return h.receiving || !h.received.empty(); }
  // ReadStart's waiting path there: the read waits for a receive's result (-EINPROGRESS).
  ssize_t ReceiveStart(StreamHandle* h, int mode, MakeToken make_token, void* context);
  // Read/ReadChunk while the receive owns the socket: what it received, or -EAGAIN (then
  // kEvReadable follows when something comes, for a WantRead owner).
  ssize_t TakeReceived(StreamHandle* h, char* data, size_t len, int* chunk);
  // One multishot receive for any read where the backend can limit it (kReceiveLimit),
  // else one receive for a single read and a multishot one for a stream read.
  int ArmReceive(StreamHandle* h);
  void OnReceived(Handle* h, const PollEvent& e);
  // Hands the started read result n (chunk or -1); copies into kReadBuffer's memory.
  void CompleteReceived(StreamHandle* h, int32_t n, int32_t chunk);
  // Stocks the backend's buffer ring with pool chunks, up to its share of the pool.
  void ProvideChunks();
  void DropReceived(StreamHandle* h);
  // The most queued write requests one send takes (the poller may take fewer).
  static constexpr int kSendIov = 64;
  // The stream's writes go through the backend's sends (a completion backend's own sockets).
  bool UsesSend(const StreamHandle& h) const { return send_ && h.service == nullptr; }
  // Bytes written now would overtake queued ones, or a dropped send still in the kernel.
  static bool WritesPending(const StreamHandle& h) { return !h.writes.empty() || h.sending; }
  // Starts the send of the head of the write queue when none is in flight; a file request
  // there (or a backend that refuses) is flushed on readiness instead; an emptied queue
  // does its pending shutdown.
  void PumpSends(StreamHandle* h);
  void OnSent(Handle* h, const PollEvent& e);
  // The connect of h ended with err (0: connected): kEvConnected, then what waited for it
  // (queued writes, a pending shutdown, a started read). nullptr when the owner closed h.
  StreamHandle* FinishConnect(StreamHandle* h, int err);
  void OnConnected(Handle* h, const PollEvent& e);
  // Cancels the connect the backend does for h, if any: its result is then nobody's.
  void DropConnect(StreamHandle* h) {
    if (h->connect_sent) poller_->CancelConnect(h->token());
    h->connect_sent = false;
  }
  // Drops h's queued writes and cancels a send in flight, whose request keeps its memory
  // (its token, parked) until the send's result comes (h may be gone by then).
  void DropWrites(StreamHandle* h);
  // The memory parked for the send of handle token `owner` (DropWrites), let go of: its
  // tokens released, and the chunks their owners gave back meanwhile returned to the pool.
  void ReleaseParked(Token owner);
  // Ends h's multishot receive; a cancellation the backend did not take is tried again at
  // the next result that waits unread (OnReceived).
  void CancelReceive(StreamHandle* h);

  LoopHost* host_;
  Event* batch_;
  int capacity_;
  int count_ = 0;
  size_t batch_bytes_ = 0;  // read into the events of the batch not yet delivered
  int depth_ = 0;  // > 0 while a batch is being processed

  // The addresses of connects in the kernel (caps.connect), by the handle's token, until
  // their results; before poller_, so they outlive the ring. As many as dials in flight.
  std::unordered_map<Token, std::unique_ptr<SockAddr>> connect_addrs_;
  std::unique_ptr<Poller> poller_;
  std::unique_ptr<Waiter> waiter_;
  bool threaded_ = false;
  bool edge_ = false;
  bool completion_ = false;   // the backend receives (caps.completion)
  bool receiving_ = false;    // some receive was armed: keep the buffer ring stocked
  bool receive_limit_ = false;  // the backend limits a multishot receive (caps.receive_limit)
  int ring_target_ = 0;  // chunks ProvideChunks keeps in the buffer ring (grows with need)
  std::unique_ptr<BufferPool> pool_;
  TimerHeap timers_;
  int64_t armed_when_ = -1;

  std::vector<std::unique_ptr<Handle>> handles_;  // by id
  std::vector<int32_t> free_ids_;
  std::vector<int32_t> closed_ids_;  // freed when the current batch ends
  uint32_t generation_ = 0;          // of the last handle made
  size_t open_ = 0;
  LoopStats stats_;
  std::vector<PollEvent> events_;
  std::vector<void*> tokens_;  // scratch for released write tokens
  bool send_ = false;          // the backend sends (caps.send)
  bool connect_ = false;       // the backend connects TCP sockets (caps.connect)
  // The memory of sends still in the kernel whose requests left their queue (a close,
  // CancelWrites): each request's token and the pool chunk its bytes lie in (-1: the
  // writer's own memory), by the handle's token; `returned`: the owner gave that chunk back
  // meanwhile, and the pool takes it when the send ends. At most kSendIov entries a send.
  struct ParkedSend {
    Token owner;
    void* token;
    int chunk;
    bool returned;
  };
  std::vector<ParkedSend> parked_sends_;
  std::vector<int32_t> accepted_due_;  // listeners whose accepted wait for DeliverAccepted
  int reserve_fd_ = -1;         // spare descriptor, given up to shed a connection on EMFILE
  std::vector<std::pair<int, int>> pipes_;  // by pipe id: read end, write end; -1 when free
};

}  // namespace muxnet

#endif  // MUXNET_CORE_LOOP_H_
