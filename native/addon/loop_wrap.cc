// LoopWrap: see loop_wrap.h. Every method returns a number: >= 0 on success, -errno on
// failure (-EINVAL for arguments of the wrong type); lib/ turns errnos into errors, so the
// hot path never builds an exception.
#include "loop_wrap.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>

namespace muxnet {

namespace {

constexpr int kEventInts = sizeof(Event) / sizeof(int32_t);

enum Option : int32_t {
  kOptNoDelay = 1,
  kOptKeepAlive = 2,
  kOptLinger = 3,
  kOptReadBuffer = 4,
  kOptWriteBuffer = 5,
  kOptBroadcast = 6,
  kOptMulticastHops = 7,
  kOptMulticastLoop = 8,
};

// The arguments of one call. Each getter returns false instead of throwing.
class Args {
 public:
  static constexpr size_t kMax = 6;

  Args(napi_env env, napi_callback_info info) : env_(env) {
    size_t argc = kMax;
    void* data = nullptr;
    ok_ = napi_get_cb_info(env, info, &argc, argv_, nullptr, &data) == napi_ok;
    self_ = static_cast<LoopWrap*>(data);
  }

  bool ok() const { return ok_; }
  LoopWrap* self() const { return self_; }
  napi_value arg(size_t i) const { return argv_[i]; }

  bool Int(size_t i, int32_t* out) const {
    return napi_get_value_int32(env_, argv_[i], out) == napi_ok;
  }
  bool Double(size_t i, double* out) const {
    return napi_get_value_double(env_, argv_[i], out) == napi_ok;
  }
  bool Bool(size_t i, bool* out) const {
    napi_value b;
    return napi_coerce_to_bool(env_, argv_[i], &b) == napi_ok &&
           napi_get_value_bool(env_, b, out) == napi_ok;
  }
  // A short string (an IP address).
  // Addresses only (an IP, a Unix path): a longer string fails rather than being cut.
  bool String(size_t i, std::string* out) const {
    char buf[128];
    size_t len = 0;
    if (napi_get_value_string_utf8(env_, argv_[i], nullptr, 0, &len) != napi_ok || len >= sizeof buf ||
        napi_get_value_string_utf8(env_, argv_[i], buf, sizeof buf, &len) != napi_ok) {
      return false;
    }
    out->assign(buf, len);
    return true;
  }
  bool Doubles(size_t i, double** data, size_t n) const {
    napi_typedarray_type type;
    size_t len = 0;
    void* p = nullptr;
    if (napi_get_typedarray_info(env_, argv_[i], &type, &len, &p, nullptr, nullptr) != napi_ok ||
        type != napi_float64_array || len < n) {
      return false;
    }
    *data = static_cast<double*>(p);
    return true;
  }
  bool Bytes(size_t i, void** data, size_t* len) const {
    napi_typedarray_type type;
    return napi_get_typedarray_info(env_, argv_[i], &type, len, data, nullptr, nullptr) == napi_ok &&
           type == napi_uint8_array;
  }
  // [ip, port] ([path, 0] for a Unix address), or nullptr if Node-API fails.
  napi_value AddrPair(const SockAddr& addr) const {
    std::string ip = addr.Ip();
    napi_value out, ip_value;
    if (napi_create_array_with_length(env_, 2, &out) != napi_ok ||
        napi_create_string_utf8(env_, ip.data(), ip.size(), &ip_value) != napi_ok ||
        napi_set_element(env_, out, 0, ip_value) != napi_ok ||
        napi_set_element(env_, out, 1, Number(addr.Port())) != napi_ok) {
      return nullptr;
    }
    return out;
  }
  // Element i of an array argument, or nullptr.
  napi_value Element(size_t arg, uint32_t i) const {
    napi_value v;
    return napi_get_element(env_, argv_[arg], i, &v) == napi_ok ? v : nullptr;
  }
  bool Length(size_t arg, uint32_t* len) const {
    bool is_array = false;
    return napi_is_array(env_, argv_[arg], &is_array) == napi_ok && is_array &&
           napi_get_array_length(env_, argv_[arg], len) == napi_ok;
  }
  napi_value Number(double v) const {
    napi_value out = nullptr;
    napi_create_double(env_, v, &out);
    return out;
  }

 private:
  napi_env env_;
  napi_value argv_[kMax] = {};
  LoopWrap* self_ = nullptr;
  bool ok_;
};

struct WriteContext {
  napi_env env;
  napi_value value;
};

void* MakeWriteToken(void* context) {
  auto* c = static_cast<WriteContext*>(context);
  napi_ref ref = nullptr;
  napi_create_reference(c->env, c->value, 1, &ref);
  return ref;
}

bool SetNamed(napi_env env, napi_value object, const char* name, napi_value value) {
  return value != nullptr && napi_set_named_property(env, object, name, value) == napi_ok;
}

}  // namespace

// The JS-visible methods of one loop; the callback data is the LoopWrap.
struct LoopMethods {
  // Reads the loop and argument i as an id, or returns -EINVAL/-EBADF from the method.
#define MUXNET_LOOP_AND_ID(a, loop, id)                    \
  Args a(env, info);                                       \
  int32_t id = -1;                                         \
  if (!a.ok() || !a.Int(0, &id)) return a.Number(-EINVAL); \
  Loop* loop = a.self()->loop_.get();                      \
  if (loop == nullptr) return a.Number(-EBADF)

  // An IP and port, or with port -1 a Unix socket path ("@name": abstract).
  static int ParseAddr(const std::string& host, int32_t port, SockAddr* addr) {
    return port == -1 ? SockAddr::FromUnix(host, addr) : SockAddr::FromIp(host, port, addr);
  }

  static napi_value Listen(napi_env env, napi_callback_info info) {
    Args a(env, info);
    std::string ip;
    int32_t port, backlog;
    ListenOptions options;
    if (!a.ok() || !a.String(0, &ip) || !a.Int(1, &port) || !a.Int(2, &backlog) ||
        !a.Bool(3, &options.reuse_addr) || !a.Bool(4, &options.reuse_port) ||
        !a.Bool(5, &options.ipv6_only)) {
      return a.Number(-EINVAL);
    }
    options.backlog = backlog;
    SockAddr addr;
    int err = ParseAddr(ip, port, &addr);
    if (err != 0) return a.Number(err);
    int id;
    err = a.self()->loop_->Listen(addr, options, &id);
    return a.Number(err != 0 ? err : id);
  }

  static napi_value Connect(napi_env env, napi_callback_info info) {
    Args a(env, info);
    std::string ip;
    int32_t port;
    if (!a.ok() || !a.String(0, &ip) || !a.Int(1, &port)) return a.Number(-EINVAL);
    SockAddr addr;
    int err = ParseAddr(ip, port, &addr);
    if (err != 0) return a.Number(err);
    int id = -1;
    err = a.self()->loop_->Connect(addr, &id);
    a.self()->scratch_[0] = id;
    return a.Number(err);
  }

  static napi_value SetAccepting(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    int32_t budget;
    if (!a.Int(1, &budget)) return a.Number(-EINVAL);
    return a.Number(loop->SetAccepting(id, budget));
  }

  // setNativeEcho(id, discard)
  static napi_value SetNativeEcho(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    bool discard;
    if (!a.Bool(1, &discard)) return a.Number(-EINVAL);
    return a.Number(loop->SetNativeEcho(id, discard));
  }

  static napi_value Read(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    void* data;
    size_t len;
    if (!a.Bytes(1, &data, &len)) return a.Number(-EINVAL);
    return a.Number(static_cast<double>(loop->Read(id, data, len)));
  }

  static napi_value WantRead(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    return a.Number(loop->WantRead(id));
  }

  static napi_value PauseRead(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    return a.Number(loop->PauseRead(id));
  }

  static napi_value ReadChunk(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    int chunk = -1;
    ssize_t n = loop->ReadChunk(id, &chunk);
    a.self()->scratch_[0] = chunk;
    return a.Number(static_cast<double>(n));
  }

  static napi_value ReleaseChunk(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, chunk);
    return a.Number(loop->pool()->Release(chunk));
  }

  static napi_value Slab(napi_env env, napi_callback_info info) {
    Args a(env, info);
    int32_t slab;
    LoopWrap* w = a.self();
    if (!a.ok() || !a.Int(0, &slab) || slab < 0 || slab >= static_cast<int>(w->slabs_.size())) {
      return nullptr;
    }
    napi_value value = nullptr;
    napi_get_reference_value(env, w->slabs_[slab], &value);
    return value;
  }

  static napi_value Write(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    void* data;
    size_t len;
    double limit;
    if (!a.Bytes(1, &data, &len) || !a.Double(2, &limit) || !(limit >= 0)) return a.Number(-EINVAL);
    WriteContext context{env, a.arg(1)};
    return a.Number(loop->Write(id, static_cast<const char*>(data), len, static_cast<size_t>(limit),
                                MakeWriteToken, &context));
  }

  static napi_value TryWrite(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    void* data;
    size_t len;
    if (!a.Bytes(1, &data, &len)) return a.Number(-EINVAL);
    return a.Number(static_cast<double>(loop->TryWrite(id, static_cast<const char*>(data), len)));
  }

  static napi_value CancelWrites(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    return a.Number(loop->CancelWrites(id));
  }

  static napi_value Shutdown(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    return a.Number(loop->ShutdownWrite(id));
  }

  static napi_value Close(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    return a.Number(loop->Close(id));
  }

  static napi_value SetDeadline(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    int32_t kind, tag;
    double delay;
    if (!a.Int(1, &kind) || !a.Double(2, &delay) || !a.Int(3, &tag)) return a.Number(-EINVAL);
    return a.Number(loop->SetDeadline(id, kind, static_cast<int64_t>(delay), tag));
  }

  // info(id, out: Float64Array) -> 0 or -errno. out: [bytes in, bytes out, age ms,
  // SO_RCVBUF, SO_SNDBUF, has TCP_INFO (0/1), then the TcpInfoField values].
  static napi_value Info(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    constexpr size_t kHead = 6;
    double* out;
    if (!a.Doubles(1, &out, kHead + kTcpInfoFields)) return a.Number(-EINVAL);
    HandleCounters counters;
    int err = loop->Counters(id, &counters);
    if (err != 0) return a.Number(err);
    int fd = loop->Fd(id);
    out[0] = static_cast<double>(counters.bytes_in);
    out[1] = static_cast<double>(counters.bytes_out);
    out[2] = static_cast<double>(loop->NowMs() - counters.opened_ms);
    int rcv = BufferSize(fd, true);
    int snd = BufferSize(fd, false);
    out[3] = rcv >= 0 ? rcv : NAN;
    out[4] = snd >= 0 ? snd : NAN;
    err = ReadTcpInfo(fd, out + kHead);
    out[5] = err == 0 ? 1 : 0;
    return a.Number(err == 0 || err == -EOPNOTSUPP ? 0 : err);
  }

  // stats(out: Float64Array) -> 0. out: [open handles, accepted, dialed, bytes in, bytes out].
  static napi_value Stats(napi_env env, napi_callback_info info) {
    Args a(env, info);
    double* out;
    if (!a.ok() || !a.Doubles(0, &out, 5)) return a.Number(-EINVAL);
    Loop* loop = a.self()->loop_.get();
    if (loop == nullptr) return a.Number(-EBADF);
    const LoopStats& s = loop->stats();
    out[0] = static_cast<double>(loop->open_handles());
    out[1] = static_cast<double>(s.accepted);
    out[2] = static_cast<double>(s.dialed);
    out[3] = static_cast<double>(s.bytes_in);
    out[4] = static_cast<double>(s.bytes_out);
    return a.Number(0);
  }

  // addr(id, peer) -> [ip, port] or -errno.
  static napi_value Addr(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    bool peer;
    if (!a.Bool(1, &peer)) return a.Number(-EINVAL);
    int fd = loop->Fd(id);
    if (fd < 0) return a.Number(fd);
    SockAddr addr;
    int err = peer ? PeerAddr(fd, &addr) : LocalAddr(fd, &addr);
    if (err != 0) return a.Number(err);
    return a.AddrPair(addr);
  }

  // --- Datagram sockets.

  // bindPacket(host, port, reuseAddr) / dialPacket(host, port) -> id or -errno (port -1:
  // host is a Unix socket path).
  static napi_value BindPacket(napi_env env, napi_callback_info info) {
    Args a(env, info);
    std::string host;
    int32_t port;
    bool reuse_addr;
    if (!a.ok() || !a.String(0, &host) || !a.Int(1, &port) || !a.Bool(2, &reuse_addr)) return a.Number(-EINVAL);
    SockAddr addr;
    int err = ParseAddr(host, port, &addr);
    int id = -1;
    if (err == 0) err = a.self()->loop_->BindPacket(addr, reuse_addr, &id);
    return a.Number(err != 0 ? err : id);
  }

  // bindRaw(ip, protocol) -> id or -errno (-EPERM without CAP_NET_RAW).
  static napi_value BindRaw(napi_env env, napi_callback_info info) {
    Args a(env, info);
    std::string host;
    int32_t protocol;
    if (!a.ok() || !a.String(0, &host) || !a.Int(1, &protocol)) return a.Number(-EINVAL);
    SockAddr addr;
    int err = SockAddr::FromIp(host, 0, &addr);
    int id = -1;
    if (err == 0) err = a.self()->loop_->BindRaw(addr, protocol, &id);
    return a.Number(err != 0 ? err : id);
  }

  static napi_value DialPacket(napi_env env, napi_callback_info info) {
    Args a(env, info);
    std::string host;
    int32_t port;
    if (!a.ok() || !a.String(0, &host) || !a.Int(1, &port)) return a.Number(-EINVAL);
    SockAddr addr;
    int err = ParseAddr(host, port, &addr);
    int id = -1;
    if (err == 0) err = a.self()->loop_->DialPacket(addr, &id);
    return a.Number(err != 0 ? err : id);
  }

  // recvFrom(id, buf) -> bytes or -errno; scratch[0] = 1 when truncated; the sender via fromAddr().
  static napi_value RecvFrom(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    void* data;
    size_t len;
    if (!a.Bytes(1, &data, &len)) return a.Number(-EINVAL);
    bool truncated = false;
    ssize_t n = loop->RecvFrom(id, data, len, &a.self()->last_from_, &truncated);
    a.self()->scratch_[0] = truncated ? 1 : 0;
    return a.Number(static_cast<double>(n));
  }

  static napi_value FromAddr(napi_env env, napi_callback_info info) {
    Args a(env, info);
    if (!a.ok()) return a.Number(-EINVAL);
    return a.AddrPair(a.self()->last_from_);
  }

  // sendTo(id, data, host, port) -> bytes or -errno; host '' sends to the connected peer.
  static napi_value SendTo(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    void* data;
    size_t len;
    std::string host;
    int32_t port;
    if (!a.Bytes(1, &data, &len) || !a.String(2, &host) || !a.Int(3, &port)) return a.Number(-EINVAL);
    if (host.empty()) return a.Number(static_cast<double>(loop->SendTo(id, data, len, nullptr)));
    SockAddr to;
    int err = ParseAddr(host, port, &to);
    if (err != 0) return a.Number(err);
    return a.Number(static_cast<double>(loop->SendTo(id, data, len, &to)));
  }

  // recvMany(id, bufs: Uint8Array[], out: Int32Array) -> count or -errno; out[2i] = bytes,
  // out[2i + 1] = 1 when truncated; the senders via fromAddrs().
  static napi_value RecvMany(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    uint32_t count;
    napi_typedarray_type type;
    size_t out_len;
    void* out_data;
    if (!a.Length(1, &count) || count == 0 ||
        napi_get_typedarray_info(env, a.arg(2), &type, &out_len, &out_data, nullptr, nullptr) != napi_ok ||
        type != napi_int32_array || out_len < 2 * static_cast<size_t>(count)) {
      return a.Number(-EINVAL);
    }
    std::vector<Datagram>& batch = a.self()->batch_;
    batch.assign(count, Datagram{});
    for (uint32_t i = 0; i < count; i++) {
      napi_value buf = a.Element(1, i);
      if (buf == nullptr ||
          napi_get_typedarray_info(env, buf, &type, &batch[i].len, &batch[i].data, nullptr, nullptr) != napi_ok ||
          type != napi_uint8_array) {
        return a.Number(-EINVAL);
      }
    }
    int n = loop->RecvMany(id, batch.data(), static_cast<int>(count));
    auto* out = static_cast<int32_t*>(out_data);
    for (int i = 0; i < n; i++) {
      out[2 * i] = static_cast<int32_t>(batch[i].received);
      out[2 * i + 1] = batch[i].truncated ? 1 : 0;
    }
    batch.resize(n > 0 ? n : 0);
    return a.Number(n);
  }

  // fromAddrs() -> [host0, port0, host1, port1, ...] of the last recvMany.
  static napi_value FromAddrs(napi_env env, napi_callback_info info) {
    Args a(env, info);
    if (!a.ok()) return a.Number(-EINVAL);
    const std::vector<Datagram>& batch = a.self()->batch_;
    napi_value out;
    if (napi_create_array_with_length(env, batch.size() * 2, &out) != napi_ok) return nullptr;
    for (size_t i = 0; i < batch.size(); i++) {
      std::string host = batch[i].addr.Ip();
      napi_value h;
      if (napi_create_string_utf8(env, host.data(), host.size(), &h) != napi_ok ||
          napi_set_element(env, out, 2 * i, h) != napi_ok ||
          napi_set_element(env, out, 2 * i + 1, a.Number(batch[i].addr.Port())) != napi_ok) {
        return nullptr;
      }
    }
    return out;
  }

  // sendMany(id, datas: Uint8Array[], hosts: string[] | null, ports: Int32Array | null)
  // -> datagrams sent (from the first, in order) or -errno. No hosts: the connected peer.
  static napi_value SendMany(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    uint32_t count;
    if (!a.Length(1, &count) || count == 0) return a.Number(-EINVAL);
    napi_valuetype hosts_type;
    if (napi_typeof(env, a.arg(2), &hosts_type) != napi_ok) return a.Number(-EINVAL);
    const bool to_hosts = hosts_type != napi_null && hosts_type != napi_undefined;
    int32_t* ports = nullptr;
    if (to_hosts) {
      uint32_t hosts_len;
      napi_typedarray_type type;
      size_t ports_len;
      void* ports_data;
      if (!a.Length(2, &hosts_len) || hosts_len < count ||
          napi_get_typedarray_info(env, a.arg(3), &type, &ports_len, &ports_data, nullptr, nullptr) != napi_ok ||
          type != napi_int32_array || ports_len < count) {
        return a.Number(-EINVAL);
      }
      ports = static_cast<int32_t*>(ports_data);
    }
    std::vector<Datagram>& batch = a.self()->batch_;
    batch.assign(count, Datagram{});
    for (uint32_t i = 0; i < count; i++) {
      napi_value buf = a.Element(1, i);
      napi_typedarray_type type;
      if (buf == nullptr ||
          napi_get_typedarray_info(env, buf, &type, &batch[i].len, &batch[i].data, nullptr, nullptr) != napi_ok ||
          type != napi_uint8_array) {
        return a.Number(-EINVAL);
      }
      if (to_hosts) {
        napi_value host_value = a.Element(2, i);
        char host[128];
        size_t host_len = 0;
        if (host_value == nullptr ||
            napi_get_value_string_utf8(env, host_value, nullptr, 0, &host_len) != napi_ok || host_len >= sizeof host ||
            napi_get_value_string_utf8(env, host_value, host, sizeof host, &host_len) != napi_ok) {
          return a.Number(-EINVAL);
        }
        int err = ParseAddr(std::string(host, host_len), ports[i], &batch[i].addr);
        if (err != 0) return a.Number(err);
      }
    }
    int n = loop->SendMany(id, batch.data(), static_cast<int>(count));
    batch.clear();
    return a.Number(n);
  }

  // sendHandles(id, data, ids: Int32Array) -> bytes sent or -errno (-EBUSY while writes
  // are queued): data with the descriptors of handles `ids` attached (SCM_RIGHTS).
  static napi_value SendHandles(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    void* data;
    size_t len;
    napi_typedarray_type type;
    size_t count;
    void* ids;
    if (!a.Bytes(1, &data, &len) ||
        napi_get_typedarray_info(env, a.arg(2), &type, &count, &ids, nullptr, nullptr) != napi_ok ||
        type != napi_int32_array) {
      return a.Number(-EINVAL);
    }
    return a.Number(static_cast<double>(
        loop->SendWithHandles(id, data, len, static_cast<int32_t*>(ids), static_cast<int>(count))));
  }

  // recvHandles(id, buf, out: Int32Array) -> bytes or -errno. Received descriptors become
  // handles of this loop: out[0] = how many, then per handle its id and its kind (1 stream
  // connection, 2 listener, 3 datagram) + 256 * address family. Non-sockets are closed.
  static napi_value RecvHandles(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    void* data;
    size_t len;
    napi_typedarray_type type;
    size_t out_len;
    void* out_data;
    if (!a.Bytes(1, &data, &len) ||
        napi_get_typedarray_info(env, a.arg(2), &type, &out_len, &out_data, nullptr, nullptr) != napi_ok ||
        type != napi_int32_array || out_len < 1) {
      return a.Number(-EINVAL);
    }
    auto* out = static_cast<int32_t*>(out_data);
    int max = static_cast<int>((out_len - 1) / 2);
    int fds[kMaxPassedFds];
    int count = 0;
    ssize_t n = loop->RecvWithFds(id, data, len, fds, max < kMaxPassedFds ? max : kMaxPassedFds, &count);
    int adopted = 0;
    for (int i = 0; i < count; i++) {
      int sock_type = 0, family = 0;
      bool listening = false;
      if (DescribeSocket(fds[i], &sock_type, &listening, &family) != 0 ||
          (sock_type != SOCK_STREAM && sock_type != SOCK_DGRAM)) {
        close(fds[i]);
        continue;
      }
      int new_id;
      if (loop->Adopt(fds[i], listening, &new_id) != 0) continue;
      out[1 + 2 * adopted] = new_id;
      out[2 + 2 * adopted] = (sock_type == SOCK_DGRAM ? 3 : listening ? 2 : 1) + 256 * family;
      adopted++;
    }
    out[0] = adopted;
    return a.Number(static_cast<double>(n));
  }

  static napi_value WantWrite(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    return a.Number(loop->WantWrite(id));
  }

  // setOption(id, option, a, b, c, d) -> 0 or -errno.
  static napi_value SetOption(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    int32_t option, v[4] = {0, 0, 0, 0};
    if (!a.Int(1, &option) || !a.Int(2, &v[0])) return a.Number(-EINVAL);
    for (int i = 1; i < 4; i++) a.Int(2 + i, &v[i]);  // optional: 0 when absent
    int fd = loop->Fd(id);
    if (fd < 0) return a.Number(fd);
    switch (option) {
      case kOptNoDelay: return a.Number(SetNoDelay(fd, v[0] != 0));
      case kOptKeepAlive: return a.Number(SetKeepAlive(fd, v[0] != 0, v[1], v[2], v[3]));
      case kOptLinger: return a.Number(SetLinger(fd, v[0]));
      case kOptReadBuffer: return a.Number(SetBufferSize(fd, true, v[0]));
      case kOptWriteBuffer: return a.Number(SetBufferSize(fd, false, v[0]));
      case kOptBroadcast: return a.Number(SetBroadcast(fd, v[0] != 0));
      case kOptMulticastHops: return a.Number(SetMulticastHops(fd, v[0]));
      case kOptMulticastLoop: return a.Number(SetMulticastLoop(fd, v[0] != 0));
      default: return a.Number(-EINVAL);
    }
  }

  // multicast(id, op, group, iface) -> 0 or -errno; op 1 join, 2 leave, 3 set the outgoing
  // interface (iface; group ignored).
  static napi_value Multicast(napi_env env, napi_callback_info info) {
    MUXNET_LOOP_AND_ID(a, loop, id);
    int32_t op;
    std::string group, iface;
    if (!a.Int(1, &op) || !a.String(2, &group) || !a.String(3, &iface)) return a.Number(-EINVAL);
    int fd = loop->Fd(id);
    if (fd < 0) return a.Number(fd);
    if (op == 3) return a.Number(SetMulticastInterface(fd, iface));
    if (op != 1 && op != 2) return a.Number(-EINVAL);
    return a.Number(MulticastMembership(fd, op == 1, group, iface));
  }
#undef MUXNET_LOOP_AND_ID
};

napi_value LoopWrap::Create(napi_env env, napi_callback_info info) {
  Args a(env, info);
  napi_value opts = a.arg(0);
  LoopOptions options;
  napi_value backend, edge, threaded, on_batch = a.arg(3);
  void* batch_data = nullptr;
  void* scratch_data = nullptr;
  size_t batch_len = 0, scratch_len = 0;
  napi_typedarray_type type;
  napi_valuetype fn_type;
  char name[32];
  size_t name_len = 0;
  if (!a.ok() || napi_get_named_property(env, opts, "backend", &backend) != napi_ok ||
      napi_get_value_string_utf8(env, backend, name, sizeof name, &name_len) != napi_ok ||
      napi_get_named_property(env, opts, "edge", &edge) != napi_ok ||
      napi_get_named_property(env, opts, "threaded", &threaded) != napi_ok ||
      napi_get_typedarray_info(env, a.arg(1), &type, &batch_len, &batch_data, nullptr, nullptr) != napi_ok ||
      type != napi_int32_array ||
      napi_get_typedarray_info(env, a.arg(2), &type, &scratch_len, &scratch_data, nullptr, nullptr) != napi_ok ||
      type != napi_int32_array || scratch_len < 1 ||
      napi_typeof(env, on_batch, &fn_type) != napi_ok || fn_type != napi_function) {
    return a.Number(-EINVAL);
  }
  options.backend.assign(name, name_len);
  napi_value b;
  napi_coerce_to_bool(env, edge, &b);
  napi_get_value_bool(env, b, &options.edge_triggered);
  napi_coerce_to_bool(env, threaded, &b);
  napi_get_value_bool(env, b, &options.threaded);
  int capacity = static_cast<int>(batch_len / kEventInts);
  if (capacity < 1) return a.Number(-EINVAL);

  uv_loop_t* uv_loop = nullptr;
  // Each worker thread has a loop of its own: always ask Node for this environment's loop.
  if (napi_get_uv_event_loop(env, &uv_loop) != napi_ok) return a.Number(-EINVAL);
  auto* w = new LoopWrap(env, uv_loop);
  napi_value resource_name;
  napi_create_string_utf8(env, "muxnet:loop", NAPI_AUTO_LENGTH, &resource_name);
  if (napi_create_reference(env, a.arg(1), 1, &w->batch_ref_) != napi_ok ||
      napi_create_reference(env, a.arg(2), 1, &w->scratch_ref_) != napi_ok ||
      napi_create_reference(env, on_batch, 1, &w->on_batch_) != napi_ok ||
      napi_async_init(env, nullptr, resource_name, &w->async_context_) != napi_ok) {
    w->ReleaseRefs();
    delete w;
    return a.Number(-ENOMEM);
  }
  w->scratch_ = static_cast<int32_t*>(scratch_data);
  int err = w->Start(options, static_cast<Event*>(batch_data), capacity);
  if (err != 0) {
    // Nothing was started: no uv handle is open, so the wrap can go at once.
    w->ReleaseRefs();
    delete w;
    return a.Number(err);
  }
  napi_add_async_cleanup_hook(env, Cleanup, w, &w->cleanup_);
  return w->Methods();
}

int LoopWrap::Start(const LoopOptions& options, Event* batch, int capacity) {
  loop_ = std::make_unique<Loop>(this, batch, capacity);
  int err = loop_->Init(options);
  // The waker first: if it cannot start, no uv handle is open and the wrap can go at once.
  if (err == 0 && loop_->threaded()) {
    err = uv_async_init(uv_loop_, &async_, [](uv_async_t* a) {
      static_cast<LoopWrap*>(a->data)->loop_->RunReady();
    });
    async_.data = this;
  } else if (err == 0) {
    inline_ = true;
    err = uv_poll_init(uv_loop_, &poll_, loop_->PollableFd());
    poll_.data = this;
    if (err == 0) {
      uv_poll_start(&poll_, UV_READABLE, [](uv_poll_t* p, int status, int events) {
        static_cast<LoopWrap*>(p->data)->loop_->RunInline();
      });
    }
  }
  if (err != 0) {
    loop_.reset();
    return err;
  }
  uv_unref(inline_ ? reinterpret_cast<uv_handle_t*>(&poll_) : reinterpret_cast<uv_handle_t*>(&async_));
  uv_timer_init(uv_loop_, &timer_);  // cannot fail
  timer_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
  open_uv_handles_ = 2;
  return 0;
}

napi_value LoopWrap::Methods() {
  napi_value o;
  if (napi_create_object(env_, &o) != napi_ok) return nullptr;
  struct Method {
    const char* name;
    napi_callback fn;
  };
  static const Method methods[] = {
      {"listen", LoopMethods::Listen},
      {"connect", LoopMethods::Connect},
      {"setAccepting", LoopMethods::SetAccepting},
      {"setNativeEcho", LoopMethods::SetNativeEcho},
      {"read", LoopMethods::Read},
      {"wantRead", LoopMethods::WantRead},
      {"pauseRead", LoopMethods::PauseRead},
      {"readChunk", LoopMethods::ReadChunk},
      {"releaseChunk", LoopMethods::ReleaseChunk},
      {"slab", LoopMethods::Slab},
      {"write", LoopMethods::Write},
      {"tryWrite", LoopMethods::TryWrite},
      {"cancelWrites", LoopMethods::CancelWrites},
      {"shutdown", LoopMethods::Shutdown},
      {"close", LoopMethods::Close},
      {"setDeadline", LoopMethods::SetDeadline},
      {"addr", LoopMethods::Addr},
      {"setOption", LoopMethods::SetOption},
      {"info", LoopMethods::Info},
      {"bindPacket", LoopMethods::BindPacket},
      {"dialPacket", LoopMethods::DialPacket},
      {"bindRaw", LoopMethods::BindRaw},
      {"recvFrom", LoopMethods::RecvFrom},
      {"fromAddr", LoopMethods::FromAddr},
      {"sendTo", LoopMethods::SendTo},
      {"recvMany", LoopMethods::RecvMany},
      {"fromAddrs", LoopMethods::FromAddrs},
      {"sendMany", LoopMethods::SendMany},
      {"wantWrite", LoopMethods::WantWrite},
      {"multicast", LoopMethods::Multicast},
      {"sendHandles", LoopMethods::SendHandles},
      {"recvHandles", LoopMethods::RecvHandles},
      {"stats", LoopMethods::Stats},
  };
  for (const Method& m : methods) {
    napi_value fn;
    if (napi_create_function(env_, m.name, NAPI_AUTO_LENGTH, m.fn, this, &fn) != napi_ok ||
        !SetNamed(env_, o, m.name, fn)) {
      return nullptr;
    }
  }
  napi_value v;
  napi_create_string_utf8(env_, loop_->BackendName(), NAPI_AUTO_LENGTH, &v);
  SetNamed(env_, o, "backend", v);
  napi_get_boolean(env_, loop_->threaded(), &v);
  SetNamed(env_, o, "threaded", v);
  napi_get_boolean(env_, loop_->edge_triggered(), &v);
  SetNamed(env_, o, "edge", v);
  napi_create_double(env_, BufferPool::kChunkSize, &v);
  SetNamed(env_, o, "chunkSize", v);
  napi_create_double(env_, BufferPool::kChunksPerSlab, &v);
  SetNamed(env_, o, "chunksPerSlab", v);
  return o;
}

void LoopWrap::DeliverBatch(int count) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(env_, &scope) != napi_ok) return;
  napi_value argv[1], fn, recv, result;
  if (napi_create_int32(env_, count, &argv[0]) == napi_ok &&
      napi_get_reference_value(env_, on_batch_, &fn) == napi_ok && fn != nullptr &&
      napi_get_global(env_, &recv) == napi_ok) {  // napi_make_callback wants an object as `this`
    // One call per batch, as a top-level callback: microtasks (promise reactions) run when
    // it returns, before the next batch.
    napi_status status = napi_make_callback(env_, async_context_, recv, fn, 1, argv, &result);
    if (status == napi_pending_exception) {
      napi_value error;
      if (napi_get_and_clear_last_exception(env_, &error) == napi_ok) napi_fatal_exception(env_, error);
    }
  }
  napi_close_handle_scope(env_, scope);
}

void LoopWrap::ReleaseToken(void* token) {
  napi_delete_reference(env_, static_cast<napi_ref>(token));
}

char* LoopWrap::AllocateSlab(int slab) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(env_, &scope) != napi_ok) return nullptr;
  void* data = nullptr;
  napi_value buffer;
  napi_ref ref = nullptr;
  // An ordinary (not external) ArrayBuffer: its memory never moves, and runtimes that
  // forbid external buffers (Electron) accept it, so no copying fallback is needed.
  if (napi_create_arraybuffer(env_, BufferPool::kSlabSize, &data, &buffer) != napi_ok ||
      napi_create_reference(env_, buffer, 1, &ref) != napi_ok) {
    data = nullptr;
  } else {
    if (static_cast<int>(slabs_.size()) <= slab) slabs_.resize(slab + 1, nullptr);
    slabs_[slab] = ref;
  }
  napi_close_handle_scope(env_, scope);
  return static_cast<char*>(data);
}

void LoopWrap::ArmTimer(int64_t delay_ms) {
  if (delay_ms < 0) {
    uv_timer_stop(&timer_);
    return;
  }
  uv_timer_start(&timer_, [](uv_timer_t* t) {
    static_cast<LoopWrap*>(t->data)->loop_->RunTimers();
  }, static_cast<uint64_t>(delay_ms), 0);
}

void LoopWrap::SetActive(bool active) {
  // Like Node's sockets: the process stays alive while the loop has an open socket.
  auto* handle = inline_ ? reinterpret_cast<uv_handle_t*>(&poll_)
                         : reinterpret_cast<uv_handle_t*>(&async_);
  if (active) uv_ref(handle); else uv_unref(handle);
}

void LoopWrap::WakeFromHelper() { uv_async_send(&async_); }

void LoopWrap::ReleaseRefs() {
  for (napi_ref* ref : {&batch_ref_, &scratch_ref_, &on_batch_}) {
    if (*ref != nullptr) napi_delete_reference(env_, *ref);
    *ref = nullptr;
  }
  for (napi_ref ref : slabs_) {
    if (ref != nullptr) napi_delete_reference(env_, ref);
  }
  slabs_.clear();
  if (async_context_ != nullptr) napi_async_destroy(env_, async_context_);
  async_context_ = nullptr;
}

void LoopWrap::Cleanup(napi_async_cleanup_hook_handle, void* arg) {
  auto* w = static_cast<LoopWrap*>(arg);
  // The environment is going away (worker exit or process exit): close every socket, stop
  // the helper thread, then close the uv handles; the wrap is freed when they are closed.
  if (w->inline_) uv_poll_stop(&w->poll_);
  w->loop_.reset();
  w->ReleaseRefs();
  uv_close(reinterpret_cast<uv_handle_t*>(&w->timer_), OnHandleClosed);
  uv_close(w->inline_ ? reinterpret_cast<uv_handle_t*>(&w->poll_)
                      : reinterpret_cast<uv_handle_t*>(&w->async_),
           OnHandleClosed);
}

void LoopWrap::OnHandleClosed(uv_handle_t* handle) {
  auto* w = static_cast<LoopWrap*>(handle->data);
  if (--w->open_uv_handles_ > 0) return;
  napi_remove_async_cleanup_hook(w->cleanup_);
  delete w;
}

}  // namespace muxnet
