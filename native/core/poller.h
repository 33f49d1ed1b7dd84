// The backend contract: one small interface, one file per backend (select, poll, epoll,
// kqueue).
// Read this header and one backend file (poller_poll.cc is the simplest) to add another.
#ifndef MUXNET_CORE_POLLER_H_
#define MUXNET_CORE_POLLER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace muxnet {

// Interest and fired-event bits. Backends translate to and from their own flags.
enum : uint32_t {
  kReadable = 1u << 0,
  kWritable = 1u << 1,
  kHangup = 1u << 2,  // peer hung up or the socket has an error: reads/writes will tell
  kEdge = 1u << 3,    // interest only: report changes of state once (epoll EPOLLET)
  kReadHangup = 1u << 4,  // fired only: the peer shut down its side (EPOLLRDHUP)
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
};

// What a backend can do; the loop, the addon and the tests ask instead of naming backends.
struct PollerCaps {
  bool edge = false;        // honours kEdge (edge-triggered interest)
  bool pollable = false;    // PollableFd() >= 0: can be nested inline in Node's loop
  bool completion = false;  // does the I/O itself (io_uring, IOCP); none of these yet
};

// A readiness backend. Not thread-safe: one thread calls every method (the loop makes sure
// of that, also when Wait() runs on a helper thread), except Wake(), which any thread may
// call. Every method returns 0 (or a count) on success and a negative errno; none throws.
class Poller {
 public:
  virtual ~Poller() = default;

  // Short stable name for logs, tests and benchmarks: "select", "poll", "epoll", "kqueue".
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

}  // namespace muxnet

#endif  // MUXNET_CORE_POLLER_H_
