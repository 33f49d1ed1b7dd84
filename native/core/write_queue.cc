// Write queue: see write_queue.h.
#include "write_queue.h"

#include <sys/uio.h>

#include <cerrno>

#include "socket.h"

namespace muxnet {

namespace {
// Linux's IOV_MAX; more iovecs than this make sendmsg fail with EMSGSIZE.
constexpr int kMaxIov = 1024;
}  // namespace

void WriteQueue::Push(const char* data, size_t len, void* token) {
  requests_.push_back(Request{data, len, token});
  bytes_ += len;
}

int WriteQueue::Flush(int fd, std::vector<void*>* done) {
  iovec iov[kMaxIov];
  while (!requests_.empty()) {
    int count = 0;
    for (auto it = requests_.begin(); it != requests_.end() && count < kMaxIov; ++it, ++count) {
      size_t skip = count == 0 ? head_offset_ : 0;
      iov[count].iov_base = const_cast<char*>(it->data + skip);
      iov[count].iov_len = it->len - skip;
    }
    ssize_t n = Writev(fd, iov, count);
    if (n < 0) return static_cast<int>(n);
    size_t left = static_cast<size_t>(n);
    bytes_ -= left;
    while (left > 0) {
      Request& front = requests_.front();
      size_t remaining = front.len - head_offset_;
      if (left < remaining) {
        head_offset_ += left;
        return -EAGAIN;  // a short write: the socket buffer is full
      }
      left -= remaining;
      head_offset_ = 0;
      done->push_back(front.token);
      requests_.pop_front();
    }
  }
  return 0;
}

void WriteQueue::Clear(std::vector<void*>* dropped) {
  for (const Request& r : requests_) dropped->push_back(r.token);
  requests_.clear();
  head_offset_ = 0;
  bytes_ = 0;
}

}  // namespace muxnet
