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

// The process-wide ONNX Runtime environment (logging, thread pools). Throws
// kRuntimeUnavailable if the API is unavailable.
Ort::Env& ort_environment();

}  // namespace dermcds::runtimes::onnxruntime
