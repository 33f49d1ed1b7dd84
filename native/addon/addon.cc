// Module entry: one instance per Node environment (main thread or worker).
#include <napi.h>

#include "../core/poller.h"
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
