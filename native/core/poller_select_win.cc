// select() backend on Windows (Winsock). An fd_set there is not a bitmap but a count and a
// list of SOCKETs, and the kernel reads as many as the count says: the lists are built per
// wait in buffers that grow past FD_SETSIZE (64), as libevent's win32select does, so there
// is no cap but memory and the O(n) build and scan. Watched sockets sit in a dense array
// with a socket-to-index map beside it.
// A non-blocking connect that fails is reported in the *except* list, not the write list:
// a socket with write interest is in both, and that report comes back as kWritable |
// kHangup (the loop then reads the error with ConnectResult).
#ifdef _WIN32
#include "socket_platform.h"

#include <cerrno>
#include <cstddef>
#include <unordered_map>
#include <vector>

#include "poller.h"
#include "waker.h"

namespace muxnet {
namespace {

// An fd_set of any size: element 0 is the count (fd_set's u_int, padded to a SOCKET), then
// the sockets.
static_assert(offsetof(fd_set, fd_array) == sizeof(SOCKET), "fd_set layout");

class SocketList {
 public:
  void Clear() { words_.assign(1, 0); }
  void Push(int fd) { words_.push_back(static_cast<SOCKET>(fd)); }
  fd_set* Get() {
    u_int count = static_cast<u_int>(words_.size() - 1);
    *reinterpret_cast<u_int*>(words_.data()) = count;
    return count > 0 ? reinterpret_cast<fd_set*>(words_.data()) : nullptr;
  }
  // After select: the sockets it left in the list.
  u_int size() const { return *reinterpret_cast<const u_int*>(words_.data()); }
  int at(u_int i) const { return static_cast<int>(words_[i + 1]); }

 private:
  std::vector<SOCKET> words_{0};
};

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
    if (index_.count(fd) != 0) return -EEXIST;
    index_[fd] = entries_.size();
    entries_.push_back(Entry{fd, token, interest});
    return 0;
  }

  int Modify(int fd, Token token, uint32_t interest) override {
    auto it = index_.find(fd);
    if (it == index_.end()) return -ENOENT;
    entries_[it->second].token = token;
    entries_[it->second].interest = interest;
    return 0;
  }

  int Remove(int fd) override {
    auto it = index_.find(fd);
    if (it == index_.end()) return -ENOENT;
    size_t i = it->second;
    index_.erase(it);
    if (i != entries_.size() - 1) {  // the last entry fills the hole
      entries_[i] = entries_.back();
      index_[entries_[i].fd] = i;
    }
    entries_.pop_back();
    return 0;
  }

  int Wait(int timeout_ms, PollEvent* events, int max) override {
    reads_.Clear();
    writes_.Clear();
    excepts_.Clear();
    for (const Entry& e : entries_) {
      if (e.interest & kReadable) reads_.Push(e.fd);
      if (e.interest & kWritable) {
        writes_.Push(e.fd);
        excepts_.Push(e.fd);
      }
    }
    timeval tv{};
    timeval* tvp = nullptr;
    if (timeout_ms >= 0) {
      tv.tv_sec = timeout_ms / 1000;
      tv.tv_usec = (timeout_ms % 1000) * 1000;
      tvp = &tv;
    }
    // The waker is always in the read list, so the lists are never all empty (which
    // Winsock's select refuses with WSAEINVAL instead of sleeping).
    int n = select(0, reads_.Get(), writes_.Get(), excepts_.Get(), tvp);
    if (n == SOCKET_ERROR) {
      int err = WSAGetLastError();
      return err == WSAEINTR ? 0 : (err == WSAENOTSOCK ? -EBADF : -EINVAL);
    }
    fired_.assign(entries_.size(), 0);
    Mark(reads_, kReadable);
    Mark(writes_, kWritable);
    Mark(excepts_, kWritable | kHangup);
    int count = 0;
    // When more are ready than fit, the next scan starts where this one stopped.
    size_t span = entries_.size();
    size_t start = span > 0 ? next_ % span : 0;
    for (size_t k = 0; k < span && count < max; k++) {
      size_t i = (start + k) % span;
      if (fired_[i] == 0) continue;
      next_ = i + 1;
      if (entries_[i].token == kWakeToken) {
        waker_.Drain();
        continue;
      }
      events[count++] = PollEvent{entries_[i].token, fired_[i]};
    }
    return count;
  }

 private:
  struct Entry {
    int fd;
    Token token;
    uint32_t interest;
  };

  void Mark(const SocketList& list, uint32_t bits) {
    for (u_int k = 0; k < list.size(); k++) {
      auto it = index_.find(list.at(k));
      if (it != index_.end()) fired_[it->second] |= bits;
    }
  }

  Waker waker_;
  std::vector<Entry> entries_;
  std::unordered_map<int, size_t> index_;  // socket -> its entry
  SocketList reads_, writes_, excepts_;
  std::vector<uint32_t> fired_;  // by entry, per wait
  size_t next_ = 0;  // where the next scan of the entries starts
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

#endif  // _WIN32
