// One event loop: a poller, the sockets it watches (by id), deadlines, and the rules that
// turn readiness into results. Plain C++: the addon plugs it into Node through LoopHost.
#ifndef MUXNET_CORE_LOOP_H_
#define MUXNET_CORE_LOOP_H_

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "buffer_pool.h"
#include "poller.h"
#include "socket.h"
#include "timer_heap.h"
#include "write_queue.h"

namespace muxnet {

// What the loop reports, four int32 each, in one batch per wake-up.
enum EventKind : int32_t {
  kEvReadable = 1,     // id, a = 1 once the peer has hung up: the socket may have data,
                       // EOF or an error to read. After a hang-up a short read does not
                       // mean drained: an edge-triggered socket reports EOF only once.
  kEvWritten = 2,      // id, a = write requests completed (in order)
  kEvWriteError = 3,   // id, a = -errno: every queued write request failed
  kEvAccept = 4,       // id = listener, a = id of the accepted connection; a host that
                       // drops it as stale (listener closed earlier in the batch) must
                       // Close(a), or the connection stays open with no owner
  kEvAcceptError = 5,  // id = listener, a = -errno (EMFILE: the connection was shed)
  kEvConnected = 6,    // id, a = 0 or -errno
  kEvDeadline = 7,     // id, a = 1 (read) or 2 (write), b = tag: that deadline has passed
  kEvWritable = 8,     // id: a datagram socket that WantWrite was called for has room
};

struct Event {
  int32_t kind, id, a, b;
};

enum DeadlineKind : int32_t { kReadDeadline = 1, kWriteDeadline = 2 };

// The loop's view of its embedder. Every call comes on the loop's (JS) thread, except
// WakeFromHelper, which the helper thread calls.
class LoopHost {
 public:
  virtual ~LoopHost() = default;
  // Events [0, count) of the batch buffer are ready; they are overwritten after return.
  virtual void DeliverBatch(int count) = 0;
  // A write request's token is no longer used by the loop.
  virtual void ReleaseToken(void* token) = 0;
  // Memory for pool slab `slab` (BufferPool::kSlabSize bytes), alive as long as the host.
  virtual char* AllocateSlab(int slab) = 0;
  // The earliest deadline is now delay_ms away (-1: there is none).
  virtual void ArmTimer(int64_t delay_ms) = 0;
  // The loop went from no open handle to some (true) or back (false).
  virtual void SetActive(bool active) = 0;
  // Helper thread: a batch is ready; the loop thread should call RunReady() soon.
  virtual void WakeFromHelper() = 0;
};

// Running totals of one loop, for monitoring.
struct LoopStats {
  uint64_t accepted = 0;   // connections accepted
  uint64_t dialed = 0;     // connections started by Connect
  uint64_t bytes_in = 0;   // read by Read/ReadChunk
  uint64_t bytes_out = 0;  // taken by the kernel from Write and the write queues
};

// What one connection has moved, and when it was opened (steady clock, ms).
struct HandleCounters {
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  int64_t opened_ms = 0;
};

struct LoopOptions {
  std::string backend;        // "epoll", "poll", "select"
  bool edge_triggered = false;  // needs a backend that supports kEdge
  bool threaded = false;        // wait on a helper thread (select and poll always do)
  int max_slabs = 64;           // pool bound: 64 x 1 MiB
};

class Loop {
 public:
  // batch: where events are written, capacity entries; owned by the host.
  Loop(LoopHost* host, Event* batch, int capacity);
  // Closes every handle and stops the helper thread.
  ~Loop();

  // Returns 0, -ENOENT (unknown backend), -EINVAL (edge without support), or -errno.
  int Init(const LoopOptions& options);
  const char* BackendName() const { return poller_->Name(); }
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
  // Benchmark floors: the listener's connections echo (discard = false) or drop what they
  // read, in C++, with no JavaScript and no events; they close at EOF or on error.
  int SetNativeEcho(int id, bool discard);

  // --- Datagram sockets (UDP, unixgram): a handle like a connection's, for one message
  // at a time. Readiness to read works as for streams (RecvFrom/RecvMany arm it on
  // -EAGAIN); a send that gets -EAGAIN asks WantWrite for one kEvWritable.
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
  // handle of this loop, a listener when it is listening. 0 with *id set, or -errno (fd is
  // then closed).
  int Adopt(int fd, bool listener, int* id);
  // sendmsg with the descriptors of handles `ids` attached; only when no write is queued
  // (-EBUSY otherwise). Bytes sent or -errno.
  ssize_t SendWithHandles(int id, const void* data, size_t len, const int32_t* ids, int count);
  // RecvWithFds on the handle (-EAGAIN arms readiness as Read does); the received
  // descriptors are the caller's.
  ssize_t RecvWithFds(int id, void* data, size_t len, int* fds, int max, int* count);

  // read(2) into caller memory. -EAGAIN arms readiness: kEvReadable follows.
  ssize_t Read(int id, void* data, size_t len);
  // Reports readiness with kEvReadable, sticky until PauseRead. The reads themselves
  // (Read or ReadChunk) are the owner's: one place decides which pending read gets data.
  int WantRead(int id);
  // Stops reporting readiness.
  int PauseRead(int id);
  // Reads into a pooled chunk. Returns bytes (> 0) with *chunk set, 0 at EOF, -EAGAIN
  // (readiness is then reported, as for Read), -ENOBUFS (pool exhausted) or -errno.
  ssize_t ReadChunk(int id, int* chunk);
  BufferPool* pool() { return pool_.get(); }

  // Makes the token that keeps a write's memory alive while it is queued.
  using MakeToken = void* (*)(void* context);
  // Writes data now if the queue is empty and queues the rest by reference, asking for a
  // token only then. Returns 0 (all written), 1 (queued; the token is released through
  // LoopHost::ReleaseToken once written or dropped), 2 (queue at `limit` bytes; nothing
  // done) or -errno.
  int Write(int id, const char* data, size_t len, size_t limit, MakeToken make_token,
            void* context);
  // Writes what the kernel takes now and queues nothing: bytes written (0 when the socket
  // buffer is full), -EBUSY while writes are queued or the connect is pending (the bytes
  // would overtake them), or -errno. For data the caller cannot keep (a reused buffer).
  ssize_t TryWrite(int id, const char* data, size_t len);
  // Drops queued writes (their tokens are released).
  int CancelWrites(int id);
  // shutdown(SHUT_WR), after the queued writes.
  int ShutdownWrite(int id);
  // Closes the socket now; queued writes are dropped; the id stays reserved until the
  // end of the current batch so stale events in it are recognised.
  int Close(int id);
  // delay_ms < 0 clears the deadline; tag comes back in its kEvDeadline.
  int SetDeadline(int id, int kind, int64_t delay_ms, int32_t tag);
  // The socket descriptor, or -EBADF.
  int Fd(int id) const;
  // The handle's counters; 0 or -EBADF.
  int Counters(int id, HandleCounters* out) const;
  const LoopStats& stats() const { return stats_; }
  // Handles open now: listeners and connections.
  size_t open_handles() const { return open_; }
  int64_t NowMs() const;

  // --- Driving.
  void RunInline();  // inline: the pollable fd is readable
  void RunReady();   // threaded: the helper has a batch
  void RunTimers();  // the host's timer fired

 private:
  struct Handle {
    int32_t id = -1;
    int fd = -1;
    bool listener = false;
    bool closed = false;
    bool accepting = false;
    int accept_budget = 0;  // connections still to accept before stopping
    bool connecting = false;
    bool read_wanted = false;
    bool write_wanted = false;  // datagram: report kEvWritable once
    bool shutdown_pending = false;
    bool read_hangup = false;  // the peer hung up: EOF follows the data
    bool native_echo = false;  // see SetNativeEcho
    bool native_discard = false;
    std::string echo_pending;  // echo bytes the kernel did not take yet
    bool registered = false;
    uint32_t interest = 0;
    uint64_t add_no = 0;  // which registration: events from waits before it are stale
    HandleCounters counters;
    WriteQueue writes;
  };
  struct Change {
    int fd;
    uint32_t interest;  // 0 = remove
    bool add;
    uint64_t add_no;
  };

  Handle* Get(int id) const;
  int NewHandle(int fd, bool listener);
  uint32_t DesiredInterest(const Handle& h) const;
  int UpdateInterest(Handle* h);
  int ApplyChange(const Change& c);
  void Stage(const Change& c);
  void Process(const PollEvent* events, int n, uint64_t adds_at_wait);
  void OnListenerReady(Handle* h);
  void OnConnReady(Handle* h, uint32_t events);
  void FlushWrites(Handle* h);
  // After a receive: counts bytes, or arms readiness on -EAGAIN. Returns n or an error.
  ssize_t AfterReceive(Handle* h, ssize_t n, size_t bytes);
  void Count(Handle* h, size_t in, size_t out) {
    h->counters.bytes_in += in;
    h->counters.bytes_out += out;
    stats_.bytes_in += in;
    stats_.bytes_out += out;
  }
  void Echo(Handle* h, uint32_t events);
  void ReleaseTokens();
  void Emit(int32_t kind, int32_t id, int32_t a, int32_t b);
  void FlushBatch();
  void Enter() { depth_++; }
  void Leave();
  void UpdateTimer();
  void HelperMain();
  void ApplyStagedLocked();       // mu_ held, helper out of Wait()
  void CloseWatched(int fd);      // threaded: remove fd from the poller, then close it

  LoopHost* host_;
  Event* batch_;
  int capacity_;
  int count_ = 0;
  int depth_ = 0;  // > 0 while a batch is being processed

  std::unique_ptr<Poller> poller_;
  bool threaded_ = false;
  bool edge_ = false;
  std::unique_ptr<BufferPool> pool_;
  TimerHeap timers_;
  int64_t armed_when_ = -1;

  std::vector<std::unique_ptr<Handle>> handles_;  // by id
  std::vector<int32_t> fd_to_id_;                 // by fd, -1 when none
  std::vector<int32_t> free_ids_;
  std::vector<int32_t> closed_ids_;  // freed when the current batch ends
  size_t open_ = 0;
  LoopStats stats_;
  uint64_t adds_ = 0;
  std::vector<PollEvent> events_;
  std::vector<void*> tokens_;  // scratch for released write tokens
  std::vector<char> echo_buffer_;
  int reserve_fd_ = -1;         // spare descriptor, given up to shed a connection on EMFILE

  // Threaded mode: the helper waits; everything else happens on the loop thread.
  std::thread helper_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Change> staged_;     // interest changes for the helper to apply
  std::vector<PollEvent> ready_;   // the helper's batch
  uint64_t ready_adds_ = 0;    // registrations applied before the batch's wait
  uint64_t applied_adds_ = 0;  // helper thread only
  bool batch_ready_ = false;
  bool helper_waiting_ = false;
  bool wake_pending_ = false;
  bool stop_ = false;
  int poller_users_ = 0;  // loop-thread callers waiting to use the poller directly
  int wake_fd_ = -1;
};

}  // namespace muxnet

#endif  // MUXNET_CORE_LOOP_H_
