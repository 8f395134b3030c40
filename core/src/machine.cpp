#include <filesystem>

#include "dermcds/runtime.hpp"

namespace dermcds {

MachineKind this_machine() {
#if defined(__aarch64__)
  static const MachineKind kind = [] {
    std::error_code ec;
    // A discrete GPU's driver node, or the integrated GPU of a Jetson.
    const bool has_nvidia_gpu = std::filesystem::exists("/dev/nvidia0", ec) || std::filesystem::exists("/dev/nvhost-ctrl-gpu", ec);
    return has_nvidia_gpu ? MachineKind::kServer : MachineKind::kMobileCpu;
  }();
  return kind;
#else
  return MachineKind::kServer;
#endif
}

}  // namespace dermcds
