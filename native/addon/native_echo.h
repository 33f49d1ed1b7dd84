// The benchmark's in-Node native floor: connections that echo (or discard) in C++, on the
// loop's own backend, with no JavaScript and no events. Not part of the core; here rather than
// in bench/ because the published package builds the addon and holds no bench/ file.
#ifndef MUXNET_ADDON_NATIVE_ECHO_H_
#define MUXNET_ADDON_NATIVE_ECHO_H_

#include <string>
#include <unordered_map>
#include <vector>

#include "../core/loop.h"

namespace muxnet {

class NativeEcho final : public NativeService {
 public:
  // discard: drop what is read instead of echoing it (the one-way stream floor).
  explicit NativeEcho(bool discard) : discard_(discard) {}

  void OnAccepted(Loop* loop, int id, int fd) override;
  void OnReady(Loop* loop, int id, int fd, uint32_t events) override;
  void OnClosed(int id) override { pending_.erase(id); }

 private:
  bool discard_;
  std::vector<char> buffer_;
  std::unordered_map<int, std::string> pending_;  // echo bytes the kernel did not take yet
};

}  // namespace muxnet

#endif  // MUXNET_ADDON_NATIVE_ECHO_H_
