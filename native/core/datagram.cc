// Datagram sockets (UDP, unixgram, raw IP): one message at a time or in batches, with
// readiness reported (kEvReadable, kEvWritable) rather than completed: a datagram owner
// reads with RecvFrom/RecvMany when told, as a stream's WantRead owner does.
#include <cerrno>

#include "loop.h"

namespace muxnet {

int Loop::BindPacket(const SockAddr& addr, bool reuse_addr, int* id) {
  int fd;
  int err = BindDatagram(addr, reuse_addr, &fd);
  if (err != 0) return err;
  return Adopt(fd, HandleKind::kDatagram, id);
}

int Loop::BindRaw(const SockAddr& addr, int protocol, int* id) {
  int fd;
  int err = muxnet::BindRaw(addr, protocol, &fd);
  if (err != 0) return err;
  return Adopt(fd, HandleKind::kDatagram, id);
}

int Loop::DialPacket(const SockAddr& addr, int* id) {
  int fd;
  int err = ConnectDatagram(addr, &fd);
  if (err != 0) return err;
  err = Adopt(fd, HandleKind::kDatagram, id);
  if (err == 0) stats_.dialed++;
  return err;
}

ssize_t Loop::RecvFrom(int id, void* data, size_t len, SockAddr* from, bool* truncated) {
  DatagramHandle* h = GetDatagram(id);
  if (h == nullptr) return -EBADF;
  ssize_t n = muxnet::RecvFrom(h->fd, data, len, from, truncated);
  return AfterReceive(h, n, n > 0 ? static_cast<size_t>(n) : 0);
}

int Loop::RecvMany(int id, Datagram* batch, int count) {
  DatagramHandle* h = GetDatagram(id);
  if (h == nullptr) return -EBADF;
  int n = muxnet::RecvMany(h->fd, batch, count);
  size_t bytes = 0;
  for (int i = 0; i < n; i++) bytes += batch[i].received;
  return static_cast<int>(AfterReceive(h, n, bytes));
}

ssize_t Loop::SendTo(int id, const void* data, size_t len, const SockAddr* to) {
  DatagramHandle* h = GetDatagram(id);
  if (h == nullptr) return -EBADF;
  ssize_t n = muxnet::SendTo(h->fd, data, len, to);
  if (n > 0) Count(h, 0, n);
  return n;
}

int Loop::SendMany(int id, const Datagram* batch, int count) {
  DatagramHandle* h = GetDatagram(id);
  if (h == nullptr) return -EBADF;
  int n = muxnet::SendMany(h->fd, batch, count);
  for (int i = 0; i < n; i++) Count(h, 0, batch[i].len);
  return n;
}

int Loop::Multicast(int id, int op, const std::string& group, const std::string& iface) {
  DatagramHandle* h = GetDatagram(id);
  if (h == nullptr) return -EBADF;
  if (op == 3) return SetMulticastInterface(h->fd, iface);
  if (op != 1 && op != 2) return -EINVAL;
  return MulticastMembership(h->fd, op == 1, group, iface);
}

void Loop::OnDatagramReady(DatagramHandle* h, uint32_t events) {
  int32_t id = h->id;
  if (events & kHangup) events |= kReadable | kWritable;
  if ((events & kWritable) && h->write_wanted) {
    EmitWritable(h);
    if ((h = GetDatagram(id)) == nullptr) return;
  }
  if (!(events & kReadable)) return;
  if (events & (kHangup | kReadHangup)) h->read_hangup = true;
  if (h->read_wanted || edge_) {  // an edge is reported whether asked for or not
    Emit(kEvReadable, id, h->read_hangup ? 1 : 0, 0);
  } else {
    UpdateInterest(h);  // readiness nobody asked for: stop watching, or it fires forever
  }
}

}  // namespace muxnet
