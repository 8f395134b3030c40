#include "ort_api.hpp"

#include <atomic>

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

std::atomic<int> pool_threads{-1};

Ort::Env make_environment(int threads) {
  Ort::ThreadingOptions threading;
  threading.SetGlobalIntraOpNumThreads(threads);
  // One graph runs at a time per session (sequential execution); inter-op parallelism would only
  // add a second set of threads competing for the same cores.
  threading.SetGlobalInterOpNumThreads(1);
  // Spinning stays on, as in ONNX Runtime's default: with one pool there is no other pool for
  // its spinning to steal from, and back-to-back runs (batches, the next request) start sooner.
  threading.SetGlobalSpinControl(1);
  Ort::Env env(threading, ORT_LOGGING_LEVEL_WARNING, "dermcds");
  pool_threads = threads;
  return env;
}
}  // namespace

bool ort_api_available() { return load_api() != nullptr; }

std::string ort_version() { return OrtGetApiBase()->GetVersionString(); }

Ort::Env& ort_environment(int threads) {
  if (!ort_api_available())
    throw Error(ErrorCode::kRuntimeUnavailable,
                "the ONNX Runtime library " + ort_version() + " does not provide C API version " + std::to_string(ORT_API_VERSION));
  static Ort::Env env = make_environment(threads);  // thread-safe: C++ static initialisation
  return env;
}

int shared_pool_threads() { return pool_threads.load(); }

}  // namespace dermcds::runtimes::onnxruntime
