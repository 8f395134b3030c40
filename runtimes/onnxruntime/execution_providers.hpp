// Which ONNX Runtime execution providers to try, in which order, and how to attach each.
//
// A request names a provider ("auto", "tensorrt", "cuda", "cpu"); it expands into a chain that
// always ends with the CPU provider, so a model that loads at all runs somewhere. The backend
// tries the chain in order and records, for every provider it passes over, why.
#pragma once

#include <string>
#include <vector>

#include <onnxruntime_cxx_api.h>

#include "dermcds/runtime.hpp"

namespace dermcds::onnxruntime {

enum class Provider { kTensorRT, kCuda, kCpu };

std::string_view provider_name(Provider provider) noexcept;  // "tensorrt", "cuda", "cpu"

struct ProviderAttempt {
  Provider provider;
  // Set when the provider is known not to be usable before trying (not in this build, or its
  // provider library is not installed).
  std::string skip_reason;
  // Whether passing over it is worth reporting: true when the caller asked for it (or for a
  // provider further up the chain), false for "auto" probing providers this machine lacks.
  // A provider that is installed but fails to start is always reported.
  bool report_skip = true;
};

// Throws kInvalidArgument for an unknown provider name.
std::vector<ProviderAttempt> provider_chain(const ExecutionOptions& options);

// Adds the provider to the session options; throws Ort::Exception if ONNX Runtime refuses.
void append_provider(Ort::SessionOptions& session_options, Provider provider, const ExecutionOptions& options);

// Throws kInvalidArgument naming any provider_options key no provider understands.
void check_provider_options(const ExecutionOptions& options);

}  // namespace dermcds::onnxruntime
