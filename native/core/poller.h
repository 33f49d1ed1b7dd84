// The backend contract: one small interface, one file per backend (select, poll, epoll).
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

// One fired event, normalized so that dispatch rules live once, in the loop.
struct PollEvent {
  int fd;
  uint32_t events;
};

// A readiness backend. Not thread-safe: one thread calls every method (the loop makes
// sure of that, also when Wait() runs on a helper thread). Every method returns 0 (or a
// count) on success and a negative errno on failure; none throws.
class Poller {
 public:
  virtual ~Poller() = default;

  // Short stable name for logs, tests and benchmarks: "select", "poll", "epoll".
  virtual const char* Name() const = 0;

  // Starts watching fd for `interest` (kReadable | kWritable, never 0).
  virtual int Add(int fd, uint32_t interest) = 0;
  // Changes the interest of a watched fd (never 0: use Remove).
  virtual int Modify(int fd, uint32_t interest) = 0;
  // Stops watching fd. Must be called before fd is closed.
  virtual int Remove(int fd) = 0;

  // Waits up to timeout_ms (-1 = forever, 0 = poll) and fills at most max events.
  // Returns the number filled, or a negative errno (-EINTR is returned as 0).
  virtual int Wait(int timeout_ms, PollEvent* events, int max) = 0;

  // A descriptor that becomes readable when Wait() would report events, so the backend
  // can be nested in another loop (epoll, kqueue); -1 when the backend has none.
  virtual int PollableFd() const { return -1; }

  // True when the backend honours kEdge (epoll's EPOLLET); others ignore the bit.
  virtual bool SupportsEdge() const { return false; }
};

// Creates the backend called `name`. Returns 0, -ENOENT for an unknown or unavailable
// name, or the errno of the backend's own set-up.
int CreatePoller(const std::string& name, std::unique_ptr<Poller>* out);

// The backends compiled into this build, default first.
const std::vector<std::string>& AvailableBackends();

// The per-backend factories; each lives in its backend's file.
std::unique_ptr<Poller> NewSelectPoller();
std::unique_ptr<Poller> NewPollPoller();
std::unique_ptr<Poller> NewEpollPoller(int* err);

}  // namespace muxnet

#endif  // MUXNET_CORE_POLLER_H_
