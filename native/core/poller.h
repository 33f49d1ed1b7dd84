// The backend contract: one small interface, one file per backend (select, poll, epoll,
// kqueue, io_uring, afd).
// Read this header and one backend file (poller_poll.cc is the simplest) to add another.
#ifndef MUXNET_CORE_POLLER_H_
#define MUXNET_CORE_POLLER_H_

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "socket_platform.h"  // iovec, also on Windows

namespace muxnet {

// Interest and fired-event bits. Backends translate to and from their own flags.
enum : uint32_t {
  kReadable = 1u << 0,
  kWritable = 1u << 1,
  kHangup = 1u << 2,  // peer hung up or the socket has an error: reads/writes will tell
  kEdge = 1u << 3,    // interest only: report changes of state once (epoll EPOLLET)
  kReadHangup = 1u << 4,  // fired only: the peer shut down its side (EPOLLRDHUP)
  // Completion backends, fired only: a Receive() of the token's socket completed. The event's
  // result is the bytes received (> 0, into pool chunk `chunk`), 0 at end of stream or -errno.
  kReceived = 1u << 5,
  kMore = 1u << 6,  // with kReceived: the receive stays armed; more results follow
  // Completion backends, fired only: an Accept() of the token's listener completed. The
  // event's result is the accepted connection's descriptor (>= 0) or -errno.
  kAccepted = 1u << 7,
  // Completion backends, fired only: a Send() of the token's socket completed. The event's
  // result is the bytes the kernel took (> 0, maybe fewer than asked) or -errno.
  kSent = 1u << 8,
  // Completion backends, fired only: a Connect() of the token's socket completed. The
  // event's result is 0 (connected) or -errno.
  kConnected = 1u << 9,
};

// What the loop registers with a descriptor and gets back with each of its events: the
// handle's id in the low 32 bits, its generation in the high 32. It is opaque to a backend,
// which stores it where the kernel keeps per-registration data (epoll's data.u64, kqueue's
// udata, io_uring's user_data, an IOCP completion key) or beside its own fd table. The
// loop recognises stale events by the generation, so no backend keeps an fd-to-owner map.
using Token = uint64_t;

// Never a handle's token (ids are below 2^31): backends may use it for their waker.
constexpr Token kWakeToken = ~Token{0};

// One fired event, normalized so that dispatch rules live once, in the loop.
struct PollEvent {
  Token token;
  uint32_t events;
  int32_t result = 0;  // kReceived: bytes, 0 or -errno
  int32_t chunk = -1;  // kReceived: the pool chunk the kernel filled, or -1
};

// What a backend can do; the loop, the addon and the tests ask instead of naming backends.
struct PollerCaps {
  bool edge = false;        // honours kEdge (edge-triggered interest)
  bool pollable = false;    // PollableFd() >= 0: can be nested inline in Node's loop
  bool completion = false;  // does the I/O itself (io_uring, IOCP): Receive() and friends
  bool inline_only = false;  // Wait() must run on the thread that made it (io_uring's
                             // SINGLE_ISSUER ring): no helper-thread mode
  bool receive_limit = false;  // Receive() honours a multishot receive's byte limit
  bool send = false;           // Send() works: stream writes go through the backend
  bool connect = false;        // Connect() works: TCP connects go through the backend
};

// A readiness backend. Not thread-safe: one thread calls every method (the loop makes sure
// of that, also when Wait() runs on a helper thread), except Wake(), which any thread may
// call. Every method returns 0 (or a count) on success and a negative errno; none throws.
class Poller {
 public:
  virtual ~Poller() = default;

  // Short stable name for logs, tests and benchmarks: "select", "poll", "epoll", "kqueue",
  // "io_uring", "afd".
  virtual const char* Name() const = 0;
  virtual PollerCaps Caps() const = 0;

  // Starts watching fd for `interest` (kReadable | kWritable [| kEdge], never 0); its
  // events carry `token`.
  virtual int Add(int fd, Token token, uint32_t interest) = 0;
  // Changes the interest (never 0: use Remove) and token of a watched fd.
  virtual int Modify(int fd, Token token, uint32_t interest) = 0;
  // Stops watching fd. Must be called before fd is closed.
  virtual int Remove(int fd) = 0;

  // Waits up to timeout_ms (-1 = forever, 0 = poll) and fills at most max events. Returns
  // the number filled, or a negative errno (-EINTR is returned as 0). A Wake() ends the
  // wait and is consumed here: it is never reported as an event.
  virtual int Wait(int timeout_ms, PollEvent* events, int max) = 0;

  // Ends a Wait() in progress on another thread, or the next one. Thread-safe.
  virtual void Wake() = 0;

  // A descriptor that becomes readable when Wait() would report events, so the backend
  // can be nested in another loop (epoll, kqueue); -1 when the backend has none.
  virtual int PollableFd() const { return -1; }

  // --- Completion backends only (caps.completion); readiness backends keep these defaults.
  // Between Defer(true) and Defer(false) the backend may hold what it has to submit (the
  // loop defers while it processes a batch: one io_uring_enter for all of it); outside,
  // and at Defer(false), it submits at once.
  virtual void Defer(bool on) {}
  // Hands pool chunk `chunk` (`len` bytes at `data`) to the kernel to receive into: the
  // kernel picks one when data arrives, so a socket waiting for data holds none.
  virtual int ProvideChunk(int chunk, char* data, size_t len) { return -EOPNOTSUPP; }
  // Chunks handed over with ProvideChunk and not yet filled; at most ChunkCapacity().
  virtual int ProvidedChunks() const { return 0; }
  virtual int ChunkCapacity() const { return 0; }
  // Starts a receive on stream socket fd into a provided chunk: one result, or, when
  // `multishot`, results that go on. Each is a kReceived event for `token`, the last without
  // kMore (a single receive's only one; the end of stream, an error, -ENOBUFS when no
  // provided chunk was left, -ECANCELED after CancelReceive). A multishot receive with a
  // `limit` (caps.receive_limit; 0: none) also ends, with a result that has bytes and no
  // kMore, once it has received `limit` bytes or more: the kernel checks after each result,
  // so the last one may go past the limit by less than a chunk.
  virtual int Receive(int fd, Token token, bool multishot, uint32_t limit = 0) { return -EOPNOTSUPP; }
  // Asks the kernel to end the receive of `token`; results already made still come.
  virtual int CancelReceive(Token token) { return -EOPNOTSUPP; }
  // Starts one accept on listening socket fd (several may be in flight): its connection
  // (non-blocking, close-on-exec) or error is a kAccepted event for `token` (-ECANCELED
  // after CancelAccept). -EOPNOTSUPP: the loop accepts on readiness instead.
  virtual int Accept(int fd, Token token) { return -EOPNOTSUPP; }
  // Asks the kernel to end every accept of `token`; connections already made still come.
  virtual int CancelAccept(Token token) { return -EOPNOTSUPP; }
  // Starts one send of the `count` buffers of `iov` (one after the other, as writev) on
  // stream socket fd (never SIGPIPE: -EPIPE); its result is a kSent event for `token`
  // (-ECANCELED after CancelSend, or the bytes sent before it). The kernel may read the
  // buffers until that event comes, also after CancelSend or a close of fd: their memory
  // must outlive it (the iovec array itself only this call). One at a time per socket keeps
  // the order.
  virtual int Send(int fd, Token token, const iovec* iov, int count) { return -EOPNOTSUPP; }
  // Asks the kernel to end the send of `token`; its event still comes.
  virtual int CancelSend(Token token) { return -EOPNOTSUPP; }
  // Starts connecting stream socket fd (non-blocking, not yet connecting) to the `len`-byte
  // address at `addr`, which must stay valid until the result: a kConnected event for
  // `token` (-ECANCELED after CancelConnect). The socket is held open until then.
  virtual int Connect(int fd, Token token, const void* addr, uint32_t len) { return -EOPNOTSUPP; }
  // Asks the kernel to end the connect of `token`; its event still comes.
  virtual int CancelConnect(Token token) { return -EOPNOTSUPP; }
};

// Creates the backend called `name`. Returns 0, -ENOENT for an unknown or unavailable
// name, or the errno of the backend's own set-up.
int CreatePoller(const std::string& name, std::unique_ptr<Poller>* out);

// The backends compiled into this build, default first.
const std::vector<std::string>& AvailableBackends();

// The per-backend factories; each lives in its backend's file. 0 or -errno.
int NewSelectPoller(std::unique_ptr<Poller>* out);
int NewPollPoller(std::unique_ptr<Poller>* out);
int NewEpollPoller(std::unique_ptr<Poller>* out);
int NewKqueuePoller(std::unique_ptr<Poller>* out);
int NewIoUringPoller(std::unique_ptr<Poller>* out);
int NewAfdPoller(std::unique_ptr<Poller>* out);  // Windows only
// Empty when this machine can run the io_uring backend, else why not (for error messages).
const std::string& IoUringUnavailable();

}  // namespace muxnet

#endif  // MUXNET_CORE_POLLER_H_
