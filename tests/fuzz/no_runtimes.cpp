// The fuzz build's runtime registry (runtimes/registry.cpp.in lists the compiled runtimes): the
// fuzz build compiles no runtime, since no target runs a model, so the registry is empty.
// service/inference_protocol.cpp's platform_of() needs find_runtime() to link; the targets never
// call it.
#include "dermcds/runtime.hpp"

namespace dermcds {

std::span<const RuntimeDescriptor* const> compiled_runtimes() { return {}; }

const RuntimeDescriptor* find_runtime(std::string_view) { return nullptr; }

}  // namespace dermcds
