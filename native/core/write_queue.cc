// Write queue: see write_queue.h.
#include "write_queue.h"

#include <cerrno>

#include "socket.h"

namespace muxnet {

namespace {
// Linux's IOV_MAX; more iovecs than this make sendmsg fail with EMSGSIZE.
constexpr int kMaxIov = 1024;
}  // namespace

void WriteQueue::Push(const char* data, size_t len, void* token) {
  Append(Request{data, len, token});
}

void WriteQueue::PushFile(int file, int64_t offset, size_t len, void* token) {
  Append(Request{nullptr, len, token, file, offset});
}

void WriteQueue::Append(const Request& r) {
  // Drop written requests once they are half the vector: bounded memory, O(1) amortized.
  if (head_ > 0 && head_ * 2 >= requests_.size()) {
    requests_.erase(requests_.begin(), requests_.begin() + head_);
    head_ = 0;
  }
  requests_.push_back(r);
  bytes_ += r.len;
}

int WriteQueue::FlushFile(int fd, std::vector<void*>* done) {
  Request& front = requests_[head_];
  while (head_offset_ < front.len) {
    int64_t offset = front.offset + static_cast<int64_t>(head_offset_);
    ssize_t n = SendFile(fd, front.file, &offset, front.len - head_offset_);
    if (n == 0) return -ENODATA;  // the file is shorter than it was when queued
    if (n < 0) return static_cast<int>(n);
    head_offset_ += static_cast<size_t>(n);
    bytes_ -= static_cast<size_t>(n);
  }
  head_offset_ = 0;
  done->push_back(front.token);
  head_++;
  return 0;
}

int WriteQueue::Flush(int fd, std::vector<void*>* done) {
  iovec iov[kMaxIov];
  while (!empty()) {
    if (requests_[head_].file >= 0) {
      if (int err = FlushFile(fd, done); err != 0) return err;
      continue;
    }
    // Memory requests up to the next file request go in one writev.
    int count = Gather(iov, kMaxIov);
    size_t asked = 0;
    for (int i = 0; i < count; i++) asked += iov[i].iov_len;
    ssize_t n = Writev(fd, iov, count);
    if (n < 0) return static_cast<int>(n);
    Advance(static_cast<size_t>(n), done);
    if (static_cast<size_t>(n) < asked) return -EAGAIN;  // a short write: the socket buffer is full
  }
  requests_.clear();
  head_ = 0;
  return 0;
}

int WriteQueue::Gather(iovec* iov, int max) const {
  int count = 0;
  for (size_t i = head_; i < requests_.size() && count < max && requests_[i].file < 0; i++, count++) {
    size_t skip = count == 0 ? head_offset_ : 0;
    iov[count].iov_base = const_cast<char*>(requests_[i].data + skip);
    iov[count].iov_len = requests_[i].len - skip;
  }
  return count;
}

void WriteQueue::Advance(size_t n, std::vector<void*>* done) {
  bytes_ -= n;
  while (n > 0) {
    const Request& front = requests_[head_];
    size_t remaining = front.len - head_offset_;
    if (n < remaining) {
      head_offset_ += n;
      return;
    }
    n -= remaining;
    head_offset_ = 0;
    done->push_back(front.token);
    head_++;
  }
  if (head_ == requests_.size()) {
    requests_.clear();
    head_ = 0;
  }
}

void WriteQueue::Clear(std::vector<void*>* dropped) {
  for (size_t i = head_; i < requests_.size(); i++) dropped->push_back(requests_[i].token);
  requests_.clear();
  head_ = 0;
  head_offset_ = 0;
  bytes_ = 0;
}

}  // namespace muxnet
