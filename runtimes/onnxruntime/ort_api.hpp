// Access to the ONNX Runtime C/C++ API, initialised once and checked.
//
// The headers are ONNX Runtime 1.21's and the library is 1.30's; the C API is versioned and
// backward compatible, so a newer library serves an older header's API version. If a library
// too old for the headers is loaded instead, ort_api_available() is false and nothing touches
// the API (the C++ wrapper would otherwise dereference a null table).
#pragma once

#include <string>

#include <onnxruntime_cxx_api.h>

namespace dermcds::runtimes::onnxruntime {

bool ort_api_available();
std::string ort_version();

// The process-wide ONNX Runtime environment, which owns the process's one intra-op thread pool
// (ONNX Runtime's "global thread pools"). Every session that asks for the pool's thread count
// runs on it (DisablePerSessionThreads), so any number of loaded models, or a hot swap warming
// version 2 while version 1 serves, keeps one set of threads for the cores instead of one
// spinning set per session, which slow each other down ~1.9x.
//
// The first call fixes the pool's thread count for the life of the process: `threads` is the
// intra-op count asked for (0: ONNX Runtime's choice, one per physical core). Later calls return
// the same environment whatever they pass. Throws kRuntimeUnavailable if the API is unavailable.
Ort::Env& ort_environment(int threads = 0);

// The intra-op thread count the shared pool was created for, as asked (0: ONNX Runtime's
// choice); -1 before the environment exists.
int shared_pool_threads();

}  // namespace dermcds::runtimes::onnxruntime
