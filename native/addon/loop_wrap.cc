// LoopWrap: see loop_wrap.h. Every method returns a number: >= 0 on success, -errno on
// failure (-EINVAL for arguments of the wrong type); lib/ turns errnos into errors, so the
// hot path never builds an exception. Second results go to out-arrays the caller passes.
#include "loop_wrap.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>


namespace muxnet {

namespace {

// A Node-API call that can only fail through a bug here: stop loudly, as Node's CHECK()
// does, rather than turn it into a silent hang later.
#define MUXNET_NAPI_CHECK(call)                                                       \
  do {                                                                                \
    napi_status muxnet_status_ = (call);                                              \
    if (muxnet_status_ != napi_ok) {                                                  \
      std::fprintf(stderr, "muxnet: %s failed (%d) at %s:%d\n", #call,                \
                   static_cast<int>(muxnet_status_), __FILE__, __LINE__);             \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)

constexpr int kEventInts = sizeof(Event) / sizeof(int32_t);

// --- Argument types. Each Parse returns false instead of throwing.

struct Bytes {  // a Uint8Array
  char* data = nullptr;
  size_t len = 0;
  napi_value value = nullptr;
};
struct Int32s {  // an Int32Array
  int32_t* data = nullptr;
  size_t len = 0;
};
struct Float64s {  // a Float64Array
  double* data = nullptr;
  size_t len = 0;
};
struct Array {  // a JS array
  napi_value value = nullptr;
  uint32_t len = 0;
};
struct Any {  // any value, null or undefined included
  napi_value value = nullptr;
};
struct Optional {  // an int32 that may be left out (0)
  int32_t value = 0;
};
using Text = std::string;  // an address: an IP or a Unix path, under 128 bytes

bool Parse(napi_env env, napi_value v, int32_t* out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}
bool Parse(napi_env env, napi_value v, double* out) {
  return napi_get_value_double(env, v, out) == napi_ok;
}
bool Parse(napi_env env, napi_value v, bool* out) {
  napi_value b;
  return napi_coerce_to_bool(env, v, &b) == napi_ok && napi_get_value_bool(env, b, out) == napi_ok;
}
bool Parse(napi_env env, napi_value v, Text* out) {
  char buf[128];
  size_t len = 0;
  // A longer string fails rather than being cut.
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok || len >= sizeof buf ||
      napi_get_value_string_utf8(env, v, buf, sizeof buf, &len) != napi_ok) {
    return false;
  }
  out->assign(buf, len);
  return true;
}
template <typename T>
bool TypedArray(napi_env env, napi_value v, napi_typedarray_type want, T** data, size_t* len) {
  napi_typedarray_type type;
  void* p = nullptr;
  if (napi_get_typedarray_info(env, v, &type, len, &p, nullptr, nullptr) != napi_ok || type != want) {
    return false;
  }
  *data = static_cast<T*>(p);
  return true;
}
bool Parse(napi_env env, napi_value v, Bytes* out) {
  out->value = v;
  return TypedArray(env, v, napi_uint8_array, &out->data, &out->len);
}
bool Parse(napi_env env, napi_value v, Int32s* out) {
  return TypedArray(env, v, napi_int32_array, &out->data, &out->len);
}
bool Parse(napi_env env, napi_value v, Float64s* out) {
  return TypedArray(env, v, napi_float64_array, &out->data, &out->len);
}
bool Parse(napi_env env, napi_value v, Array* out) {
  bool is_array = false;
  out->value = v;
  return napi_is_array(env, v, &is_array) == napi_ok && is_array &&
         napi_get_array_length(env, v, &out->len) == napi_ok;
}
bool Parse(napi_env env, napi_value v, Any* out) {
  out->value = v;
  return true;
}
bool Parse(napi_env env, napi_value v, Optional* out) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok) return false;
  return type == napi_undefined || Parse(env, v, &out->value);
}

napi_value Number(napi_env env, double v) {
  napi_value out = nullptr;
  napi_create_double(env, v, &out);
  return out;
}
napi_value ToJs(napi_env env, napi_value v) { return v; }
template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T>>>
napi_value ToJs(napi_env env, T v) {
  return Number(env, static_cast<double>(v));
}

// [ip, port] ([path, 0] for a Unix address), or nullptr if Node-API fails.
napi_value AddrPair(napi_env env, const SockAddr& addr) {
  std::string ip = addr.Ip();
  napi_value out, ip_value;
  if (napi_create_array_with_length(env, 2, &out) != napi_ok ||
      napi_create_string_utf8(env, ip.data(), ip.size(), &ip_value) != napi_ok ||
      napi_set_element(env, out, 0, ip_value) != napi_ok ||
      napi_set_element(env, out, 1, Number(env, addr.Port())) != napi_ok) {
    return nullptr;
  }
  return out;
}

// Sets out[i] = host, out[i + 1] = port.
bool SetAddr(napi_env env, napi_value out, uint32_t i, const SockAddr& addr) {
  std::string host = addr.Ip();
  napi_value h;
  return napi_create_string_utf8(env, host.data(), host.size(), &h) == napi_ok &&
         napi_set_element(env, out, i, h) == napi_ok &&
         napi_set_element(env, out, i + 1, Number(env, addr.Port())) == napi_ok;
}

napi_value Element(napi_env env, napi_value array, uint32_t i) {
  napi_value v;
  return napi_get_element(env, array, i, &v) == napi_ok ? v : nullptr;
}

// An IP and port, or with port -1 a Unix socket path ("@name": abstract).
int ParseAddr(const std::string& host, int32_t port, SockAddr* addr) {
  return port == -1 ? SockAddr::FromUnix(host, addr) : SockAddr::FromIp(host, port, addr);
}

// A handle scope for one run of the loop from a libuv callback (which has none).
class Scope {
 public:
  explicit Scope(napi_env env) : env_(env) { ok_ = napi_open_handle_scope(env, &scope_) == napi_ok; }
  ~Scope() {
    if (ok_) napi_close_handle_scope(env_, scope_);
  }

 private:
  napi_env env_;
  napi_handle_scope scope_ = nullptr;
  bool ok_;
};

struct TokenContext {
  napi_env env;
  napi_value value;
};

// The token that keeps a queued write's (or a started read's) buffer alive.
void* MakeRefToken(void* context) {
  auto* c = static_cast<TokenContext*>(context);
  napi_ref ref = nullptr;
  MUXNET_NAPI_CHECK(napi_create_reference(c->env, c->value, 1, &ref));
  return ref;
}

bool SetNamed(napi_env env, napi_value object, const char* name, napi_value value) {
  return value != nullptr && napi_set_named_property(env, object, name, value) == napi_ok;
}

}  // namespace

// One JS call: the environment and the loop it is for.
struct Call {
  napi_env env;
  LoopWrap* wrap;
  Loop* loop;
};

// Turns `R Fn(Call&, A...)` into a Node-API callback: each argument is parsed by its type
// (a wrong type returns -EINVAL), the result converted to JS. Written once for every method.
template <typename F>
struct FnTraits;
template <typename R, typename... A>
struct FnTraits<R (*)(Call&, A...)> {
  using Args = std::tuple<std::decay_t<A>...>;
};

template <typename Tuple, size_t... I>
bool ParseAll([[maybe_unused]] napi_env env, napi_value* argv, Tuple& args, std::index_sequence<I...>) {
  return (Parse(env, argv[I], &std::get<I>(args)) && ...);
}

template <auto Fn>
napi_value Thunk(napi_env env, napi_callback_info info) {
  using Args = typename FnTraits<decltype(Fn)>::Args;
  constexpr size_t kArgs = std::tuple_size_v<Args>;
  napi_value argv[kArgs > 0 ? kArgs : 1];
  size_t argc = kArgs;
  void* data = nullptr;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, &data) != napi_ok) return Number(env, -EINVAL);
  auto* wrap = static_cast<LoopWrap*>(data);
  Call call{env, wrap, wrap->loop()};
  if (call.loop == nullptr) return Number(env, -EBADF);
  Args args;
  if (!ParseAll(env, argv, args, std::make_index_sequence<kArgs>{})) return Number(env, -EINVAL);
  return ToJs(env, std::apply([&](auto&... a) { return Fn(call, a...); }, args));
}

// The JS-visible methods of one loop (declared in lib/native.ts).
struct LoopMethods {
  static int Listen(Call& c, Text ip, int32_t port, int32_t backlog, bool reuse_addr,
                    bool reuse_port, bool ipv6_only) {
    ListenOptions options;
    options.backlog = backlog;
    options.reuse_addr = reuse_addr;
    options.reuse_port = reuse_port;
    options.ipv6_only = ipv6_only;
    SockAddr addr;
    int err = ParseAddr(ip, port, &addr);
    int id = -1;
    if (err == 0) err = c.loop->Listen(addr, options, &id);
    return err != 0 ? err : id;
  }

  static int Connect(Call& c, Text ip, int32_t port, Int32s out) {
    if (out.len < 1) return -EINVAL;
    SockAddr addr;
    int err = ParseAddr(ip, port, &addr);
    if (err != 0) return err;
    int id = -1;
    err = c.loop->Connect(addr, &id);
    out.data[0] = id;
    return err;
  }

  static int SetAccepting(Call& c, int32_t id, int32_t budget) {
    return c.loop->SetAccepting(id, budget);
  }

  static int SetNativeEcho(Call& c, int32_t id, bool discard) {
    auto& service = discard ? c.wrap->discard_ : c.wrap->echo_;
    if (!service) service = std::make_unique<NativeEcho>(discard);
    return c.loop->SetService(id, service.get());
  }

  static double Read(Call& c, int32_t id, Bytes buf) {
    return static_cast<double>(c.loop->Read(id, buf.data, buf.len));
  }
  static int WantRead(Call& c, int32_t id) { return c.loop->WantRead(id); }
  static int PauseRead(Call& c, int32_t id) { return c.loop->PauseRead(id); }

  static napi_value Slab(Call& c, int32_t slab) {
    napi_value value = nullptr;
    if (slab >= 0 && slab < static_cast<int>(c.wrap->slabs_.size())) {
      napi_get_reference_value(c.env, c.wrap->slabs_[slab], &value);
    }
    return value;
  }

  static int Write(Call& c, int32_t id, Bytes data, double limit) {
    if (!(limit >= 0)) return -EINVAL;
    TokenContext context{c.env, data.value};
    return c.loop->Write(id, data.data, data.len, static_cast<size_t>(limit), MakeRefToken,
                         &context);
  }

  // sendFile(id, fd, offset, length, limit, holder): as write, for a file's bytes; holder is
  // kept referenced until the request completes (the caller closes the file after that).
  static int SendFile(Call& c, int32_t id, int32_t fd, double offset, double len, double limit, Any holder) {
    if (!(limit >= 0) || !(offset >= 0) || !(len >= 0) || offset > 9007199254740991.0 || len > 9007199254740991.0) {
      return -EINVAL;
    }
#ifdef _WIN32
    // Node's fs descriptors index node.exe's C runtime, not the one linked into the addon:
    // the core takes the file's HANDLE instead (Windows keeps handle values within 32 bits).
    uv_os_fd_t handle = uv_get_osfhandle(fd);
    if (handle == INVALID_HANDLE_VALUE) return -EBADF;
    fd = static_cast<int32_t>(reinterpret_cast<intptr_t>(handle));
#endif
    TokenContext context{c.env, holder.value};
    return c.loop->SendFile(id, fd, static_cast<int64_t>(offset), static_cast<size_t>(len),
                            static_cast<size_t>(limit), MakeRefToken, &context);
  }

  static int OpenPipe(Call& c) { return c.loop->OpenPipe(); }
  static int ClosePipe(Call& c, int32_t pipe) { return c.loop->ClosePipe(pipe); }
  static double SpliceIn(Call& c, int32_t id, int32_t pipe, int32_t len) {
    return len > 0 ? static_cast<double>(c.loop->SpliceIn(id, pipe, static_cast<size_t>(len))) : -EINVAL;
  }
  static double SpliceOut(Call& c, int32_t pipe, int32_t id, int32_t len) {
    return len > 0 ? static_cast<double>(c.loop->SpliceOut(pipe, id, static_cast<size_t>(len))) : -EINVAL;
  }

  // submit(count) -> count: runs entries [0, count) of the ops array in order, each
  // [op, id, arg, result] with its buffer in opBuffers; writes each result back in place.
  static int Submit(Call& c, int32_t count) {
    LoopWrap* w = c.wrap;
    if (count < 0 || static_cast<size_t>(count) * 4 > w->ops_len_) return -EINVAL;
    napi_value buffers;
    if (napi_get_reference_value(c.env, w->op_buffers_ref_, &buffers) != napi_ok) return -EINVAL;
    for (int32_t i = 0; i < count; i++) {
      int32_t* op = w->ops_ + 4 * i;
      Bytes buf;
      bool has_buf = false;
      if (op[0] == kOpWrite || (op[0] == kOpRead && op[2] == kReadBuffer)) {
        napi_value v = Element(c.env, buffers, static_cast<uint32_t>(i));
        has_buf = v != nullptr && Parse(c.env, v, &buf);
      }
      TokenContext context{c.env, buf.value};
      switch (op[0]) {
        case kOpWrite:
          op[3] = has_buf ? c.loop->Write(op[1], buf.data, buf.len, static_cast<size_t>(op[2] > 0 ? op[2] : 0),
                                          MakeRefToken, &context)
                          : -EINVAL;
          break;
        case kOpRead: {
          if (op[2] == kReadBuffer && !has_buf) {
            op[3] = -EINVAL;
            break;
          }
          int chunk = -1;
          ssize_t n = c.loop->ReadStart(op[1], op[2], buf.data, buf.len, MakeRefToken, &context, &chunk);
          op[2] = chunk;
          op[3] = static_cast<int32_t>(n);
          break;
        }
        case kOpReadStop:
          op[3] = c.loop->ReadStop(op[1]);
          break;
        default:
          op[3] = -EINVAL;
      }
    }
    return count;
  }

  static int CancelWrites(Call& c, int32_t id) { return c.loop->CancelWrites(id); }
  static int Shutdown(Call& c, int32_t id) { return c.loop->ShutdownWrite(id); }
  static int Close(Call& c, int32_t id) { return c.loop->Close(id); }

  static int SetDeadline(Call& c, int32_t id, int32_t kind, double delay, int32_t tag) {
    return c.loop->SetDeadline(id, kind, static_cast<int64_t>(delay), tag);
  }

  // info(id, out) -> 0 or -errno. out: [bytes in, bytes out, age ms, SO_RCVBUF, SO_SNDBUF,
  // has TCP_INFO (0/1), then the TcpInfoField values].
  static int Info(Call& c, int32_t id, Float64s out) {
    constexpr size_t kHead = 6;
    if (out.len < kHead + kTcpInfoFields) return -EINVAL;
    HandleCounters counters;
    int err = c.loop->Counters(id, &counters);
    if (err != 0) return err;
    int fd = c.loop->Fd(id);
    out.data[0] = static_cast<double>(counters.bytes_in);
    out.data[1] = static_cast<double>(counters.bytes_out);
    out.data[2] = static_cast<double>(c.loop->NowMs() - counters.opened_ms);
    int rcv = BufferSize(fd, true);
    int snd = BufferSize(fd, false);
    out.data[3] = rcv >= 0 ? rcv : NAN;
    out.data[4] = snd >= 0 ? snd : NAN;
    err = ReadTcpInfo(fd, out.data + kHead);
    out.data[5] = err == 0 ? 1 : 0;
    return err == 0 || err == -EOPNOTSUPP ? 0 : err;
  }

  // stats(out) -> 0. out: [open handles, accepted, dialed, bytes in, bytes out].
  static int Stats(Call& c, Float64s out) {
    if (out.len < 5) return -EINVAL;
    const LoopStats& s = c.loop->stats();
    out.data[0] = static_cast<double>(c.loop->open_handles());
    out.data[1] = static_cast<double>(s.accepted);
    out.data[2] = static_cast<double>(s.dialed);
    out.data[3] = static_cast<double>(s.bytes_in);
    out.data[4] = static_cast<double>(s.bytes_out);
    return 0;
  }

  // addr(id, peer) -> [ip, port] or -errno.
  static napi_value Addr(Call& c, int32_t id, bool peer) {
    int fd = c.loop->Fd(id);
    if (fd < 0) return Number(c.env, fd);
    SockAddr addr;
    int err = peer ? PeerAddr(fd, &addr) : LocalAddr(fd, &addr);
    if (err != 0) return Number(c.env, err);
    return AddrPair(c.env, addr);
  }

  // --- Datagram sockets.

  static int BindPacket(Call& c, Text host, int32_t port, bool reuse_addr) {
    SockAddr addr;
    int err = ParseAddr(host, port, &addr);
    int id = -1;
    if (err == 0) err = c.loop->BindPacket(addr, reuse_addr, &id);
    return err != 0 ? err : id;
  }

  static int BindRaw(Call& c, Text host, int32_t protocol) {
    SockAddr addr;
    int err = SockAddr::FromIp(host, 0, &addr);
    int id = -1;
    if (err == 0) err = c.loop->BindRaw(addr, protocol, &id);
    return err != 0 ? err : id;
  }

  static int DialPacket(Call& c, Text host, int32_t port) {
    SockAddr addr;
    int err = ParseAddr(host, port, &addr);
    int id = -1;
    if (err == 0) err = c.loop->DialPacket(addr, &id);
    return err != 0 ? err : id;
  }

  // recvFrom(id, buf, out, from) -> bytes or -errno; out[0] = 1 when truncated; from gets
  // [host, port] of the sender.
  static double RecvFrom(Call& c, int32_t id, Bytes buf, Int32s out, Array from) {
    if (out.len < 1) return -EINVAL;
    bool truncated = false;
    SockAddr sender;
    ssize_t n = c.loop->RecvFrom(id, buf.data, buf.len, &sender, &truncated);
    out.data[0] = truncated ? 1 : 0;
    if (n >= 0 && !SetAddr(c.env, from.value, 0, sender)) return -ENOMEM;
    return static_cast<double>(n);
  }

  // sendTo(id, data, host, port) -> bytes or -errno; host '' sends to the connected peer.
  static double SendTo(Call& c, int32_t id, Bytes data, Text host, int32_t port) {
    if (host.empty()) return static_cast<double>(c.loop->SendTo(id, data.data, data.len, nullptr));
    SockAddr to;
    int err = ParseAddr(host, port, &to);
    if (err != 0) return err;
    return static_cast<double>(c.loop->SendTo(id, data.data, data.len, &to));
  }

  // The Uint8Arrays of `bufs` as the datagrams of one batch (recvMany's buffers, sendMany's
  // payloads): 0, or -EINVAL for anything else in the array.
  static int FillDatagrams(Call& c, const Array& bufs, std::vector<Datagram>* batch) {
    batch->assign(bufs.len, Datagram{});
    for (uint32_t i = 0; i < bufs.len; i++) {
      napi_value v = Element(c.env, bufs.value, i);
      Bytes b;
      if (v == nullptr || !Parse(c.env, v, &b)) return -EINVAL;
      (*batch)[i].data = b.data;
      (*batch)[i].len = b.len;
    }
    return 0;
  }

  // recvMany(id, bufs, out, froms) -> count or -errno; out[2i] = bytes, out[2i + 1] = 1
  // when truncated; froms gets [host0, port0, host1, port1, ...].
  static int RecvMany(Call& c, int32_t id, Array bufs, Int32s out, Array froms) {
    if (bufs.len == 0 || out.len < 2 * static_cast<size_t>(bufs.len)) return -EINVAL;
    std::vector<Datagram>& batch = c.wrap->datagrams_;
    if (FillDatagrams(c, bufs, &batch) != 0) return -EINVAL;
    int n = c.loop->RecvMany(id, batch.data(), static_cast<int>(bufs.len));
    for (int i = 0; i < n; i++) {
      out.data[2 * i] = static_cast<int32_t>(batch[i].received);
      out.data[2 * i + 1] = batch[i].truncated ? 1 : 0;
      if (!SetAddr(c.env, froms.value, 2 * i, batch[i].addr)) return -ENOMEM;
    }
    return n;
  }

  // sendMany(id, datas, hosts | null, ports | null) -> datagrams sent (from the first, in
  // order) or -errno. No hosts: the connected peer.
  static int SendMany(Call& c, int32_t id, Array datas, Any hosts, Any ports) {
    if (datas.len == 0) return -EINVAL;
    napi_valuetype hosts_type;
    if (napi_typeof(c.env, hosts.value, &hosts_type) != napi_ok) return -EINVAL;
    const bool to_hosts = hosts_type != napi_null && hosts_type != napi_undefined;
    Array host_list;
    Int32s port_list;
    if (to_hosts && (!Parse(c.env, hosts.value, &host_list) || host_list.len < datas.len ||
                     !Parse(c.env, ports.value, &port_list) || port_list.len < datas.len)) {
      return -EINVAL;
    }
    std::vector<Datagram>& batch = c.wrap->datagrams_;
    if (FillDatagrams(c, datas, &batch) != 0) return -EINVAL;
    for (uint32_t i = 0; to_hosts && i < datas.len; i++) {
      napi_value h = Element(c.env, host_list.value, i);
      Text host;
      if (h == nullptr || !Parse(c.env, h, &host)) return -EINVAL;
      int err = ParseAddr(host, port_list.data[i], &batch[i].addr);
      if (err != 0) return err;
    }
    int n = c.loop->SendMany(id, batch.data(), static_cast<int>(datas.len));
    batch.clear();
    return n;
  }

  // sendHandles(id, data, ids) -> bytes sent or -errno (-EBUSY while writes are queued):
  // data with the descriptors of handles `ids` attached (SCM_RIGHTS).
  static double SendHandles(Call& c, int32_t id, Bytes data, Int32s ids) {
    return static_cast<double>(
        c.loop->SendWithHandles(id, data.data, data.len, ids.data, static_cast<int>(ids.len)));
  }

  // recvHandles(id, buf, out) -> bytes or -errno. Received descriptors become handles of
  // this loop: out[0] = how many, then per handle its id and its kind (1 stream
  // connection, 2 listener, 3 datagram) + 256 * address family. Non-sockets are closed.
  static double RecvHandles(Call& c, int32_t id, Bytes buf, Int32s out) {
    if (out.len < 1) return -EINVAL;
    int max = static_cast<int>((out.len - 1) / 2);
    int fds[kMaxPassedFds];
    int count = 0;
    ssize_t n = c.loop->RecvWithFds(id, buf.data, buf.len, fds,
                                    max < kMaxPassedFds ? max : kMaxPassedFds, &count);
    int adopted = 0;
    for (int i = 0; i < count; i++) {
      int sock_type = 0, family = 0;
      bool listening = false;
      if (DescribeSocket(fds[i], &sock_type, &listening, &family) != 0 ||
          (sock_type != SOCK_STREAM && sock_type != SOCK_DGRAM)) {
        muxnet::Close(fds[i]);
        continue;
      }
      HandleKind kind = sock_type == SOCK_DGRAM ? HandleKind::kDatagram
                        : listening             ? HandleKind::kListener
                                                : HandleKind::kStream;
      int new_id;
      if (c.loop->Adopt(fds[i], kind, &new_id) != 0) continue;
      out.data[1 + 2 * adopted] = new_id;
      out.data[2 + 2 * adopted] = static_cast<int32_t>(kind) + 256 * family;
      adopted++;
    }
    out.data[0] = adopted;
    return static_cast<double>(n);
  }

  static int WantWrite(Call& c, int32_t id) { return c.loop->WantWrite(id); }

  // setOption(id, option, a, b?, c?, d?) -> 0 or -errno.
  static int SetOption(Call& c, int32_t id, int32_t option, int32_t a, Optional b, Optional cc,
                       Optional d) {
    return c.loop->SetOption(id, option, a, b.value, cc.value, d.value);
  }

  // multicast(id, op, group, iface) -> 0 or -errno; op 1 join, 2 leave, 3 set the outgoing
  // interface (iface; group ignored).
  static int Multicast(Call& c, int32_t id, int32_t op, Text group, Text iface) {
    return c.loop->Multicast(id, op, group, iface);
  }
};

napi_value LoopWrap::Create(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return Number(env, -EINVAL);
  LoopOptions options;
  napi_value backend, edge, threaded;
  Int32s batch, ops, releases;
  Array op_buffers;
  napi_valuetype fn_type;
  Text name;
  if (napi_get_named_property(env, argv[0], "backend", &backend) != napi_ok ||
      !Parse(env, backend, &name) ||
      napi_get_named_property(env, argv[0], "edge", &edge) != napi_ok ||
      !Parse(env, edge, &options.edge_triggered) ||
      napi_get_named_property(env, argv[0], "threaded", &threaded) != napi_ok ||
      !Parse(env, threaded, &options.threaded) || !Parse(env, argv[1], &batch) ||
      !Parse(env, argv[2], &ops) || !Parse(env, argv[3], &op_buffers) ||
      !Parse(env, argv[4], &releases) || releases.len < 1 ||
      napi_typeof(env, argv[5], &fn_type) != napi_ok || fn_type != napi_function) {
    return Number(env, -EINVAL);
  }
  options.backend = name;
  int capacity = static_cast<int>(batch.len / kEventInts);
  if (capacity < 1) return Number(env, -EINVAL);
  // Every chunk can be out at once, and each is let go of once: the list never overflows.
  if (releases.len < 1 + static_cast<size_t>(options.max_slabs) * BufferPool::kChunksPerSlab) {
    return Number(env, -EINVAL);
  }

  uv_loop_t* uv_loop = nullptr;
  // Each worker thread has a loop of its own: always ask Node for this environment's loop.
  if (napi_get_uv_event_loop(env, &uv_loop) != napi_ok) return Number(env, -EINVAL);
  auto* w = new LoopWrap(env, uv_loop);
  napi_value resource_name;
  if (napi_create_string_utf8(env, "muxnet:loop", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &w->batch_ref_) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &w->ops_ref_) != napi_ok ||
      napi_create_reference(env, argv[3], 1, &w->op_buffers_ref_) != napi_ok ||
      napi_create_reference(env, argv[4], 1, &w->releases_ref_) != napi_ok ||
      napi_create_reference(env, argv[5], 1, &w->on_batch_) != napi_ok ||
      napi_async_init(env, nullptr, resource_name, &w->async_context_) != napi_ok) {
    w->ReleaseRefs();
    delete w;
    return Number(env, -ENOMEM);
  }
  w->ops_ = ops.data;
  w->ops_len_ = ops.len;
  w->releases_ = releases.data;
  w->releases_len_ = releases.len;
  int err = w->Start(options, reinterpret_cast<Event*>(batch.data), capacity);
  if (err != 0) {
    // Nothing was started: no uv handle is open, so the wrap can go at once.
    w->ReleaseRefs();
    delete w;
    return Number(env, err);
  }
  napi_value methods = w->Methods();
  if (methods == nullptr ||
      napi_add_async_cleanup_hook(env, Cleanup, w, &w->cleanup_) != napi_ok) {
    // The environment is going away under us: let the cleanup path free what started.
    Cleanup(nullptr, w);
    return Number(env, -ENOMEM);
  }
  return methods;
}

int LoopWrap::Start(const LoopOptions& options, Event* batch, int capacity) {
  loop_ = std::make_unique<Loop>(this, batch, capacity);
  int err = loop_->Init(options);
  // The waker first: if it cannot start, no uv handle is open and the wrap can go at once.
  if (err == 0 && loop_->threaded()) {
    err = uv_async_init(uv_loop_, &async_, [](uv_async_t* a) {
      auto* w = static_cast<LoopWrap*>(a->data);
      Scope scope(w->env_);  // ResolveBuffer makes handles while the loop runs
      w->loop_->RunReady();
    });
    async_.data = this;
  } else if (err == 0) {
    inline_ = true;
    err = uv_poll_init(uv_loop_, &poll_, loop_->PollableFd());
    poll_.data = this;
    if (err == 0) {
      // Fails only for a bad descriptor, which the backend just made: a bug if it does.
      int rc = uv_poll_start(&poll_, UV_READABLE, [](uv_poll_t* p, int status, int events) {
        auto* w = static_cast<LoopWrap*>(p->data);
        Scope scope(w->env_);
        w->loop_->RunInline();
      });
      if (rc != 0) {
        std::fprintf(stderr, "muxnet: uv_poll_start failed: %s\n", uv_strerror(rc));
        std::abort();
      }
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
      {"listen", Thunk<&LoopMethods::Listen>},
      {"connect", Thunk<&LoopMethods::Connect>},
      {"setAccepting", Thunk<&LoopMethods::SetAccepting>},
      {"setNativeEcho", Thunk<&LoopMethods::SetNativeEcho>},
      {"read", Thunk<&LoopMethods::Read>},
      {"wantRead", Thunk<&LoopMethods::WantRead>},
      {"pauseRead", Thunk<&LoopMethods::PauseRead>},
      {"slab", Thunk<&LoopMethods::Slab>},
      {"write", Thunk<&LoopMethods::Write>},
      {"sendFile", Thunk<&LoopMethods::SendFile>},
      {"openPipe", Thunk<&LoopMethods::OpenPipe>},
      {"closePipe", Thunk<&LoopMethods::ClosePipe>},
      {"spliceIn", Thunk<&LoopMethods::SpliceIn>},
      {"spliceOut", Thunk<&LoopMethods::SpliceOut>},
      {"submit", Thunk<&LoopMethods::Submit>},
      {"cancelWrites", Thunk<&LoopMethods::CancelWrites>},
      {"shutdown", Thunk<&LoopMethods::Shutdown>},
      {"close", Thunk<&LoopMethods::Close>},
      {"setDeadline", Thunk<&LoopMethods::SetDeadline>},
      {"addr", Thunk<&LoopMethods::Addr>},
      {"setOption", Thunk<&LoopMethods::SetOption>},
      {"info", Thunk<&LoopMethods::Info>},
      {"stats", Thunk<&LoopMethods::Stats>},
      {"bindPacket", Thunk<&LoopMethods::BindPacket>},
      {"dialPacket", Thunk<&LoopMethods::DialPacket>},
      {"bindRaw", Thunk<&LoopMethods::BindRaw>},
      {"recvFrom", Thunk<&LoopMethods::RecvFrom>},
      {"sendTo", Thunk<&LoopMethods::SendTo>},
      {"recvMany", Thunk<&LoopMethods::RecvMany>},
      {"sendMany", Thunk<&LoopMethods::SendMany>},
      {"wantWrite", Thunk<&LoopMethods::WantWrite>},
      {"multicast", Thunk<&LoopMethods::Multicast>},
      {"sendHandles", Thunk<&LoopMethods::SendHandles>},
      {"recvHandles", Thunk<&LoopMethods::RecvHandles>},
  };
  for (const Method& m : methods) {
    napi_value fn;
    if (napi_create_function(env_, m.name, NAPI_AUTO_LENGTH, m.fn, this, &fn) != napi_ok ||
        !SetNamed(env_, o, m.name, fn)) {
      return nullptr;
    }
  }
  PollerCaps caps = loop_->caps();
  napi_value v;
  bool ok = napi_create_string_utf8(env_, loop_->BackendName(), NAPI_AUTO_LENGTH, &v) == napi_ok &&
            SetNamed(env_, o, "backend", v) &&
            napi_get_boolean(env_, loop_->threaded(), &v) == napi_ok && SetNamed(env_, o, "threaded", v) &&
            napi_get_boolean(env_, loop_->edge_triggered(), &v) == napi_ok && SetNamed(env_, o, "edge", v) &&
            napi_get_boolean(env_, caps.completion, &v) == napi_ok && SetNamed(env_, o, "completion", v) &&
            SetNamed(env_, o, "chunkSize", Number(env_, BufferPool::kChunkSize)) &&
            SetNamed(env_, o, "chunksPerSlab", Number(env_, BufferPool::kChunksPerSlab));
  return ok ? o : nullptr;
}

void LoopWrap::DeliverBatch(int count) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(env_, &scope) != napi_ok) return;  // the environment is going away
  napi_value argv[1], fn, recv, result;
  if (napi_create_int32(env_, count, &argv[0]) == napi_ok &&
      napi_get_reference_value(env_, on_batch_, &fn) == napi_ok && fn != nullptr &&
      napi_get_global(env_, &recv) == napi_ok) {  // napi_make_callback wants an object as `this`
    // One call per batch, as a top-level callback: microtasks (promise reactions, and the
    // submit() of what they started) run when it returns, before the next batch.
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

bool LoopWrap::ResolveBuffer(void* token, char** data, size_t* len) {
  napi_value value;
  Bytes b;
  // A detached ArrayBuffer (transferred away) leaves its views with no memory: length 0.
  if (napi_get_reference_value(env_, static_cast<napi_ref>(token), &value) != napi_ok ||
      value == nullptr || !Parse(env_, value, &b) || b.len == 0 || b.data == nullptr) {
    return false;
  }
  *data = b.data;
  *len = b.len;
  return true;
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

void LoopWrap::ReturnChunks() {
  int32_t n = releases_[0];
  if (n <= 0) return;
  if (static_cast<size_t>(n) >= releases_len_) n = static_cast<int32_t>(releases_len_ - 1);
  for (int32_t i = 1; i <= n; i++) loop_->ReleaseChunk(releases_[i]);
  releases_[0] = 0;
}

void LoopWrap::ArmTimer(int64_t delay_ms) {
  if (delay_ms < 0) {
    uv_timer_stop(&timer_);
    return;
  }
  uv_timer_start(&timer_, [](uv_timer_t* t) {
    auto* w = static_cast<LoopWrap*>(t->data);
    Scope scope(w->env_);
    w->loop_->RunTimers();
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
  for (napi_ref* ref : {&batch_ref_, &ops_ref_, &op_buffers_ref_, &releases_ref_, &on_batch_}) {
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
  // The environment is going away (worker exit or process exit). Stop the helper thread
  // (it may wake the async handle), close the uv handles, and only in their close callback
  // destroy the loop: a uv_poll_t's descriptor (the backend's) must stay open until then.
  if (w->inline_) uv_poll_stop(&w->poll_);
  w->loop_->StopWaiting();
  uv_close(reinterpret_cast<uv_handle_t*>(&w->timer_), OnHandleClosed);
  uv_close(w->inline_ ? reinterpret_cast<uv_handle_t*>(&w->poll_)
                      : reinterpret_cast<uv_handle_t*>(&w->async_),
           OnHandleClosed);
}

void LoopWrap::OnHandleClosed(uv_handle_t* handle) {
  auto* w = static_cast<LoopWrap*>(handle->data);
  if (--w->open_uv_handles_ > 0) return;
  w->loop_.reset();  // closes every socket and releases the tokens it held
  w->ReleaseRefs();
  if (w->cleanup_ != nullptr) napi_remove_async_cleanup_hook(w->cleanup_);
  delete w;
}

}  // namespace muxnet
