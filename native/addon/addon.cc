// Module entry: one instance per Node environment (main thread or worker).
#include <napi.h>

#include <cerrno>
#include <iterator>
#include <memory>
#include <string>
#include <utility>

#include "../core/loop.h"
#include "../core/poller.h"
#include "../core/socket.h"
#include "loop_wrap.h"

namespace muxnet {

namespace {

// backends() -> the backends compiled into this build, default first.
napi_value Backends(napi_env env, napi_callback_info) {
  const auto& names = AvailableBackends();
  napi_value out, name;
  if (napi_create_array_with_length(env, names.size(), &out) != napi_ok) return nullptr;
  for (size_t i = 0; i < names.size(); i++) {
    if (napi_create_string_utf8(env, names[i].data(), names[i].size(), &name) != napi_ok ||
        napi_set_element(env, out, static_cast<uint32_t>(i), name) != napi_ok) {
      return nullptr;
    }
  }
  return out;
}

// unavailable() -> { name: why } for the backends compiled in that cannot run on this machine.
napi_value Unavailable(napi_env env, napi_callback_info) {
  napi_value out;
  if (napi_create_object(env, &out) != napi_ok) return nullptr;
#ifdef MUXNET_HAVE_IO_URING
  napi_value why;
  const std::string& reason = IoUringUnavailable();
  if (!reason.empty() && (napi_create_string_utf8(env, reason.data(), reason.size(), &why) != napi_ok ||
                          napi_set_named_property(env, out, "io_uring", why) != napi_ok)) {
    return nullptr;
  }
#endif
  return out;
}

struct Named {
  const char* name;
  int32_t value;
};

// The core's enums by the names lib/ gives them (lib/native.ts, lib/info.ts), so one test
// (test/addon-constants.test.ts) checks every TypeScript const enum member against them.
constexpr Named kEventKinds[] = {
    {"Readable", kEvReadable}, {"Written", kEvWritten}, {"WriteError", kEvWriteError},
    {"Accept", kEvAccept}, {"AcceptError", kEvAcceptError}, {"Connected", kEvConnected},
    {"Deadline", kEvDeadline}, {"Writable", kEvWritable}, {"Read", kEvRead},
};
static_assert(kEventKinds[std::size(kEventKinds) - 1].value == kEvRead, "a new EventKind goes here too");

constexpr Named kSocketOptions[] = {
    {"NoDelay", kOptNoDelay}, {"KeepAlive", kOptKeepAlive}, {"Linger", kOptLinger},
    {"ReadBuffer", kOptReadBuffer}, {"WriteBuffer", kOptWriteBuffer}, {"Broadcast", kOptBroadcast},
    {"MulticastHops", kOptMulticastHops}, {"MulticastLoop", kOptMulticastLoop},
};
static_assert(kSocketOptions[std::size(kSocketOptions) - 1].value == kOptMulticastLoop, "a new SocketOption goes here too");

constexpr Named kSubmitOps[] = {{"Write", kOpWrite}, {"Read", kOpRead}, {"ReadStop", kOpReadStop}};
constexpr Named kReadModes[] = {{"Buffer", kReadBuffer}, {"Chunk", kReadChunk}, {"Stream", kReadStream}};
constexpr Named kHandleKinds[] = {
    {"Stream", static_cast<int32_t>(HandleKind::kStream)},
    {"Listener", static_cast<int32_t>(HandleKind::kListener)},
    {"Datagram", static_cast<int32_t>(HandleKind::kDatagram)},
};

constexpr Named kDeadlineKinds[] = {{"Read", kReadDeadline}, {"Write", kWriteDeadline}};

constexpr Named kTcpInfoTable[] = {
    {"State", kTcpState}, {"CaState", kTcpCaState}, {"Retransmits", kTcpRetransmits},
    {"Probes", kTcpProbes}, {"Backoff", kTcpBackoff}, {"RtoUs", kTcpRtoUs}, {"AtoUs", kTcpAtoUs},
    {"SndMss", kTcpSndMss}, {"RcvMss", kTcpRcvMss}, {"Unacked", kTcpUnacked},
    {"Sacked", kTcpSacked}, {"Lost", kTcpLost}, {"Retrans", kTcpRetrans}, {"Pmtu", kTcpPmtu},
    {"RcvSsthresh", kTcpRcvSsthresh}, {"RttUs", kTcpRttUs}, {"RttVarUs", kTcpRttVarUs},
    {"SndSsthresh", kTcpSndSsthresh}, {"SndCwnd", kTcpSndCwnd}, {"AdvMss", kTcpAdvMss},
    {"Reordering", kTcpReordering}, {"RcvRttUs", kTcpRcvRttUs}, {"RcvSpace", kTcpRcvSpace},
    {"TotalRetrans", kTcpTotalRetrans}, {"BytesAcked", kTcpBytesAcked},
    {"BytesReceived", kTcpBytesReceived}, {"SegsOut", kTcpSegsOut}, {"SegsIn", kTcpSegsIn},
    {"NotsentBytes", kTcpNotsentBytes}, {"MinRttUs", kTcpMinRttUs},
    {"DeliveryRate", kTcpDeliveryRate}, {"BytesSent", kTcpBytesSent}, {"Count", kTcpInfoFields},
};
static_assert(std::size(kTcpInfoTable) == kTcpInfoFields + 1, "every TcpInfoField, and Count");

template <size_t N>
Napi::Object Table(Napi::Env env, const Named (&entries)[N]) {
  Napi::Object table = Napi::Object::New(env);
  for (const Named& e : entries) table.Set(e.name, Napi::Number::New(env, e.value));
  table.Freeze();
  return table;
}

// constants -> { eventKind, deadlineKind, tcpInfoField, socketOption, submitOp, readMode,
// handleKind }: the core's enums, read-only.
Napi::Object Constants(Napi::Env env) {
  Napi::Object constants = Napi::Object::New(env);
  constants.Set("socketOption", Table(env, kSocketOptions));
  constants.Set("submitOp", Table(env, kSubmitOps));
  constants.Set("readMode", Table(env, kReadModes));
  constants.Set("handleKind", Table(env, kHandleKinds));
  constants.Set("eventKind", Table(env, kEventKinds));
  constants.Set("deadlineKind", Table(env, kDeadlineKinds));
  constants.Set("tcpInfoField", Table(env, kTcpInfoTable));
  constants.Freeze();
  return constants;
}

// capabilities(name) -> { edge, pollable, completion, inlineOnly } of a compiled backend, or
// -ENOENT.
napi_value Capabilities(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, out, v;
  char name[32];
  size_t len = 0;
  std::unique_ptr<Poller> poller;
  if (napi_get_cb_info(env, info, &argc, &arg, nullptr, nullptr) != napi_ok ||
      napi_get_value_string_utf8(env, arg, name, sizeof name, &len) != napi_ok) {
    napi_create_int32(env, -EINVAL, &out);
    return out;
  }
  int err = CreatePoller(std::string(name, len), &poller);
  if (err != 0) {
    napi_create_int32(env, err, &out);
    return out;
  }
  PollerCaps caps = poller->Caps();
  if (napi_create_object(env, &out) != napi_ok) return nullptr;
  for (auto [key, on] : {std::pair<const char*, bool>{"edge", caps.edge}, {"pollable", caps.pollable},
                         {"completion", caps.completion}, {"inlineOnly", caps.inline_only}}) {
    if (napi_get_boolean(env, on, &v) != napi_ok || napi_set_named_property(env, out, key, v) != napi_ok) {
      return nullptr;
    }
  }
  return out;
}

}  // namespace

// node-addon-api makes the module context-aware (an instance per environment). The
// functions it exports are raw Node-API callbacks: node-addon-api built without C++
// exceptions aborts the process when a call fails, and calls do fail while a worker is
// being terminated.
class MuxnetAddon : public Napi::Addon<MuxnetAddon> {
 public:
  MuxnetAddon(Napi::Env env, Napi::Object exports) {
    Export(env, exports, "backends", Backends);
    Export(env, exports, "createLoop", LoopWrap::Create);
    Export(env, exports, "capabilities", Capabilities);
    Export(env, exports, "unavailable", Unavailable);
    exports.Set("constants", Constants(env));
  }

 private:
  static void Export(Napi::Env env, Napi::Object exports, const char* name, napi_callback fn) {
    napi_value value;
    NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, nullptr, &value));
    exports.Set(name, Napi::Value(env, value));
  }
};

}  // namespace muxnet

using muxnet::MuxnetAddon;
NODE_API_ADDON(MuxnetAddon)
