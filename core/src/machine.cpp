#include <filesystem>

#include "dermcds/runtime.hpp"

namespace dermcds {

bool this_machine_has_nvidia_gpu() {
  static const bool has = [] {
    std::error_code ec;
    // A discrete GPU's driver node, or the integrated GPU of a Jetson.
    return std::filesystem::exists("/dev/nvidia0", ec) || std::filesystem::exists("/dev/nvhost-ctrl-gpu", ec);
  }();
  return has;
}

MachineKind this_machine() {
#if defined(__aarch64__)
  return this_machine_has_nvidia_gpu() ? MachineKind::kServer : MachineKind::kMobileCpu;
#else
  return MachineKind::kServer;
#endif
}

}  // namespace dermcds
