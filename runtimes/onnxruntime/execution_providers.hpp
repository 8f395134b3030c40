// Which ONNX Runtime execution providers to try, in which order, and with which options.
//
// A request names a provider ("auto", "tensorrt", "cuda", "cpu"); it expands into a chain that
// always ends with the CPU provider (tensorrt -> cuda -> cpu), so a model that loads at all runs
// somewhere. plan_providers() settles beforehand what can be known about each provider on this
// machine (built into this ONNX Runtime? its provider library installed? for a TensorRT engine
// cache: which GPU and which TensorRT?) and prepares its options (provider_options.hpp,
// tensorrt_engine_cache.hpp). The backend tries the plan in order, creating a session with each
// provider until one loads, and records for every provider it passes over why.
//
// Errors: plan_providers throws kInvalidArgument for an unknown provider name or a bad provider
// option, on every machine; what a machine lacks is never an error, only a skip reason.
// Thread safety: reentrant.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <onnxruntime_cxx_api.h>

#include "dermcds/runtime.hpp"
#include "provider_options.hpp"

namespace dermcds::runtimes::onnxruntime {

enum class Provider { kTensorRT, kCuda, kCpu };

std::string_view provider_name(Provider provider) noexcept;  // "tensorrt", "cuda", "cpu"

// What this process's ONNX Runtime and machine offer. Tests substitute their own.
struct ProviderEnvironment {
  std::vector<std::string> built_in;  // Ort::GetAvailableProviders()
  // Where ONNX Runtime loads provider libraries from: the directory of libonnxruntime.so itself.
  std::filesystem::path library_dir;
  std::string onnxruntime_version;
  std::string cuda_driver_library;              // probed for the GPU's name and compute capability
  std::vector<std::string> tensorrt_libraries;  // probed for TensorRT's version

  static ProviderEnvironment current();
};

struct ProviderAttempt {
  Provider provider = Provider::kCpu;
  // Set when the provider cannot be used, known before trying: not in this build, its library
  // not installed, its engine cache cannot be keyed or written.
  std::string skip_reason;
  // Whether passing over it is worth reporting in results: false only for "auto" probing
  // providers this ONNX Runtime does not have at all. A provider that is installed but cannot
  // start is always reported: it is the silent CPU fallback users complain about.
  bool report_skip = true;
  ProviderOptionList options;  // by ONNX Runtime's names
  // TensorRT only: CUDA registered behind it (when installed) for the nodes TensorRT does not
  // take, as ONNX Runtime recommends; empty otherwise.
  ProviderOptionList cuda_behind_tensorrt;
  std::string precision;             // what the provider computes in ("fp16" for TensorRT FP16)
  int max_batch = 0;                 // largest batch the provider was built for; 0: no limit
  std::filesystem::path engine_dir;  // TensorRT with an engine cache: where its engines live
};

std::vector<ProviderAttempt> plan_providers(const BackendRequest& request, const ProviderEnvironment& environment);

// Adds the attempt's provider to the session options; throws Ort::Exception if ONNX Runtime
// refuses (a provider library that does not load, an option it rejects, no device).
void append_provider(Ort::SessionOptions& session_options, const ProviderAttempt& attempt);

// ONNX Runtime's error message without its source location and status prefix
// ("/onnxruntime_src/...cc:1988 ...Get() [ONNXRuntimeError] : 1 : FAIL : "), for fallback reasons.
std::string concise_failure(std::string_view ort_message);

}  // namespace dermcds::runtimes::onnxruntime
