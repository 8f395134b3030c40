#include "ort_api.hpp"

#include <mutex>

#include "dermcds/error.hpp"

namespace dermcds::runtimes::onnxruntime {

namespace {
const OrtApi* load_api() {
  static const OrtApi* api = [] {
    const OrtApi* found = OrtGetApiBase()->GetApi(ORT_API_VERSION);
    if (found) Ort::InitApi(found);
    return found;
  }();
  return api;
}
}  // namespace

bool ort_api_available() { return load_api() != nullptr; }

std::string ort_version() { return OrtGetApiBase()->GetVersionString(); }

Ort::Env& ort_environment() {
  if (!ort_api_available())
    throw Error(ErrorCode::kRuntimeUnavailable, "the ONNX Runtime library " + ort_version() +
                                                    " does not provide C API version " + std::to_string(ORT_API_VERSION));
  static Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "dermcds");
  return env;
}

}  // namespace dermcds::runtimes::onnxruntime
