// select(2) backend. The fd sets grow past FD_SETSIZE (as libevent does): Linux's select
// takes any nfds up to RLIMIT_NOFILE, so the only cost of a large fd is the O(maxfd) scan.
// Tokens sit in an array indexed by fd, beside the interest.
#ifndef _WIN32  // Winsock's select takes lists of sockets, not bitmaps: poller_select_win.cc
// macOS's select takes sets past FD_SETSIZE only with this, defined before any header.
#define _DARWIN_UNLIMITED_SELECT 1
#include <sys/select.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "poller.h"
#include "waker.h"

namespace muxnet {
namespace {

// fd_set is a fixed 1024-bit array; these helpers work on a growable array of the same
// word type and layout, so FD_SET's fortify check (which aborts at fd >= 1024) is avoided.
using Word = unsigned long;  // NOLINT: the kernel's fd_set word
constexpr int kBitsPerWord = 8 * sizeof(Word);

inline void SetBit(std::vector<Word>& set, int fd) {
  set[fd / kBitsPerWord] |= Word{1} << (fd % kBitsPerWord);
}
inline void ClearBit(std::vector<Word>& set, int fd) {
  set[fd / kBitsPerWord] &= ~(Word{1} << (fd % kBitsPerWord));
}
inline bool TestBit(const std::vector<Word>& set, int fd) {
  return (set[fd / kBitsPerWord] >> (fd % kBitsPerWord)) & 1;
}

class SelectPoller final : public Poller {
 public:
  int Init() {
    int err = waker_.Open();
    return err != 0 ? err : Add(waker_.fd(), kWakeToken, kReadable);
  }

  const char* Name() const override { return "select"; }
  PollerCaps Caps() const override { return PollerCaps{}; }
  void Wake() override { waker_.Signal(); }

  int Add(int fd, Token token, uint32_t interest) override {
    if (fd < 0) return -EBADF;
    Grow(fd);
    if (interest_[fd] != 0) return -EEXIST;
    Set(fd, token, interest);
    return 0;
  }

  int Modify(int fd, Token token, uint32_t interest) override {
    if (fd < 0 || fd >= static_cast<int>(interest_.size()) || interest_[fd] == 0) return -ENOENT;
    Set(fd, token, interest);
    return 0;
  }

  int Remove(int fd) override {
    if (fd < 0 || fd >= static_cast<int>(interest_.size()) || interest_[fd] == 0) return -ENOENT;
    Set(fd, 0, 0);
    while (max_fd_ >= 0 && interest_[max_fd_] == 0) max_fd_--;
    return 0;
  }

  int Wait(int timeout_ms, PollEvent* events, int max) override {
    // select overwrites its sets, so each wait works on copies: O(maxfd) per call.
    size_t words = max_fd_ >= 0 ? max_fd_ / kBitsPerWord + 1 : 0;
    read_out_.assign(read_set_.begin(), read_set_.begin() + words);
    write_out_.assign(write_set_.begin(), write_set_.begin() + words);
    timeval tv{};
    timeval* tvp = nullptr;
    if (timeout_ms >= 0) {
      tv.tv_sec = timeout_ms / 1000;
      tv.tv_usec = (timeout_ms % 1000) * 1000;
      tvp = &tv;
    }
    // Nothing watched yet: select with no sets just sleeps for the timeout.
    int n = select(max_fd_ + 1, words > 0 ? reinterpret_cast<fd_set*>(read_out_.data()) : nullptr,
                   words > 0 ? reinterpret_cast<fd_set*>(write_out_.data()) : nullptr, nullptr, tvp);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    int count = 0;
    // When more are ready than fit, start the next scan where this one stopped: a fixed
    // start would report the same first `max` descriptors forever.
    int span = max_fd_ + 1;
    int start = span > 0 ? next_ % span : 0;
    for (int k = 0; k < span && count < max && n > 0; k++) {
      int fd = (start + k) % span;
      uint32_t fired = 0;
      if (TestBit(read_out_, fd)) fired |= kReadable;
      if (TestBit(write_out_, fd)) fired |= kWritable;
      if (fired == 0) continue;
      n--;
      next_ = fd + 1;
      if (tokens_[fd] == kWakeToken) {
        waker_.Drain();
        continue;
      }
      events[count++] = PollEvent{tokens_[fd], fired};
    }
    return count;
  }

 private:
  void Grow(int fd) {
    if (fd < static_cast<int>(interest_.size())) return;
    size_t size = interest_.empty() ? 1024 : interest_.size();
    while (static_cast<int>(size) <= fd) size *= 2;
    interest_.resize(size, 0);
    tokens_.resize(size, 0);
    read_set_.resize(size / kBitsPerWord, 0);
    write_set_.resize(size / kBitsPerWord, 0);
  }

  void Set(int fd, Token token, uint32_t interest) {
    interest_[fd] = interest;
    tokens_[fd] = token;
    if (interest & kReadable) SetBit(read_set_, fd); else ClearBit(read_set_, fd);
    if (interest & kWritable) SetBit(write_set_, fd); else ClearBit(write_set_, fd);
    if (interest != 0 && fd > max_fd_) max_fd_ = fd;
  }

  Waker waker_;
  std::vector<uint32_t> interest_;  // by fd; 0 = not watched
  std::vector<Token> tokens_;       // by fd
  std::vector<Word> read_set_, write_set_;
  std::vector<Word> read_out_, write_out_;
  int max_fd_ = -1;
  int next_ = 0;  // where the next scan of the result sets starts
};

}  // namespace

int NewSelectPoller(std::unique_ptr<Poller>* out) {
  auto poller = std::make_unique<SelectPoller>();
  int err = poller->Init();
  if (err != 0) return err;
  *out = std::move(poller);
  return 0;
}

}  // namespace muxnet

#endif  // !_WIN32
