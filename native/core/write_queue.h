// Per-connection queue of write requests that the kernel did not take at once. Requests
// are held by reference (no copy) and flushed with one writev per wake-up.
#ifndef MUXNET_CORE_WRITE_QUEUE_H_
#define MUXNET_CORE_WRITE_QUEUE_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "socket_platform.h"  // iovec, also on Windows

namespace muxnet {

class WriteQueue {
 public:
  // One write request. `data` stays valid until the token is handed back by Flush or Clear;
  // the token is the owner's handle on the memory (the addon keeps the JS buffer alive).
  // A file request (file >= 0) sends `len` bytes of the file from `offset` with SendFile;
  // the file must stay open until its token is handed back.
  struct Request {
    const char* data;
    size_t len;
    void* token;
    int file = -1;
    int64_t offset = 0;
  };

  bool empty() const { return head_ == requests_.size(); }
  // Bytes still to be written.
  size_t bytes() const { return bytes_; }

  void Push(const char* data, size_t len, void* token);
  void PushFile(int file, int64_t offset, size_t len, void* token);

  // Writes as much as fd takes. Appends the tokens of completed requests to *done and
  // returns 0 (queue empty), -EAGAIN (the kernel is full) or another negative errno
  // (-ENODATA: a file request's file ended before its length).
  int Flush(int fd, std::vector<void*>* done);

  // Drops every request, appending their tokens to *dropped (the head's first).
  void Clear(std::vector<void*>* dropped);

  // The unwritten memory requests from the head, up to the next file request and at most
  // `max`, as iovecs (the head's from its unwritten part): their count, 0 when the queue is
  // empty or its head is a file. Flush writes them; a completion backend sends them.
  int Gather(iovec* iov, int max) const;
  // For a backend that sends: marks n bytes (at most what the last Gather gave) written,
  // appending the tokens of the requests that complete to *done, in order.
  void Advance(size_t n, std::vector<void*>* done);

 private:
  // A vector consumed from head_ rather than a deque: an empty std::deque allocates about
  // 600 bytes up front, which every idle connection would pay.
  void Append(const Request& r);
  // Sends from the file request at the head: 0 when it completed, else as Flush returns.
  int FlushFile(int fd, std::vector<void*>* done);

  std::vector<Request> requests_;
  size_t head_ = 0;         // first unwritten request
  size_t head_offset_ = 0;  // bytes of requests_[head_] already written
  size_t bytes_ = 0;
};

}  // namespace muxnet

#endif  // MUXNET_CORE_WRITE_QUEUE_H_
