#include "execution_providers.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "dermcds/error.hpp"

namespace dermcds::onnxruntime {

namespace {

// provider_options keys are "<provider>:<ONNX Runtime option name>", passed through verbatim
// (e.g. "tensorrt:trt_fp16_enable" = "1"), so every documented option is reachable from
// configuration without this file knowing each one.
constexpr std::string_view kCudaPrefix = "cuda:";
constexpr std::string_view kTensorRTPrefix = "tensorrt:";

std::string_view ort_provider_name(Provider provider) {
  switch (provider) {
    case Provider::kTensorRT: return "TensorrtExecutionProvider";
    case Provider::kCuda: return "CUDAExecutionProvider";
    case Provider::kCpu: return "CPUExecutionProvider";
  }
  return "";
}

// GPU providers are separate shared libraries that ONNX Runtime loads from its own directory;
// builds list them as available whether or not they are installed.
std::string_view provider_library(Provider provider) {
  switch (provider) {
    case Provider::kTensorRT: return "libonnxruntime_providers_tensorrt.so";
    case Provider::kCuda: return "libonnxruntime_providers_cuda.so";
    case Provider::kCpu: return "";
  }
  return "";
}

std::filesystem::path onnxruntime_library_dir() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<const void*>(&OrtGetApiBase), &info) == 0 || !info.dli_fname) return {};
  return std::filesystem::path(info.dli_fname).parent_path();
}

struct ProviderKeyValues {
  std::vector<std::string> keys, values;
  void add(std::string key, std::string value) {
    keys.push_back(std::move(key));
    values.push_back(std::move(value));
  }
  std::vector<const char*> key_pointers() const { return pointers(keys); }
  std::vector<const char*> value_pointers() const { return pointers(values); }

 private:
  static std::vector<const char*> pointers(const std::vector<std::string>& strings) {
    std::vector<const char*> out;
    for (const std::string& s : strings) out.push_back(s.c_str());
    return out;
  }
};

ProviderKeyValues options_for(std::string_view prefix, const ExecutionOptions& options) {
  ProviderKeyValues kv;
  kv.add("device_id", std::to_string(options.device_id));
  for (const auto& [key, value] : options.provider_options)
    if (key.starts_with(prefix)) kv.add(key.substr(prefix.size()), value);
  return kv;
}

void throw_on_status(OrtStatus* status) {
  if (status) {
    const std::string message = Ort::GetApi().GetErrorMessage(status);
    const OrtErrorCode code = Ort::GetApi().GetErrorCode(status);
    Ort::GetApi().ReleaseStatus(status);
    throw Ort::Exception(std::string(message), code);
  }
}

void append_cuda(Ort::SessionOptions& session_options, const ExecutionOptions& options) {
  const OrtApi& api = Ort::GetApi();
  OrtCUDAProviderOptionsV2* raw = nullptr;
  throw_on_status(api.CreateCUDAProviderOptions(&raw));
  std::unique_ptr<OrtCUDAProviderOptionsV2, decltype(api.ReleaseCUDAProviderOptions)> cuda(raw, api.ReleaseCUDAProviderOptions);
  const ProviderKeyValues kv = options_for(kCudaPrefix, options);
  throw_on_status(api.UpdateCUDAProviderOptions(cuda.get(), kv.key_pointers().data(), kv.value_pointers().data(), kv.keys.size()));
  session_options.AppendExecutionProvider_CUDA_V2(*cuda);
}

void append_tensorrt(Ort::SessionOptions& session_options, const ExecutionOptions& options) {
  const OrtApi& api = Ort::GetApi();
  OrtTensorRTProviderOptionsV2* raw = nullptr;
  throw_on_status(api.CreateTensorRTProviderOptions(&raw));
  std::unique_ptr<OrtTensorRTProviderOptionsV2, decltype(api.ReleaseTensorRTProviderOptions)> trt(raw, api.ReleaseTensorRTProviderOptions);
  const ProviderKeyValues kv = options_for(kTensorRTPrefix, options);
  throw_on_status(api.UpdateTensorRTProviderOptions(trt.get(), kv.key_pointers().data(), kv.value_pointers().data(), kv.keys.size()));
  session_options.AppendExecutionProvider_TensorRT_V2(*trt);
}

}  // namespace

std::string_view provider_name(Provider provider) noexcept {
  switch (provider) {
    case Provider::kTensorRT: return "tensorrt";
    case Provider::kCuda: return "cuda";
    case Provider::kCpu: return "cpu";
  }
  return "unknown";
}

std::vector<ProviderAttempt> provider_chain(const ExecutionOptions& options) {
  std::vector<Provider> chain;
  bool explicit_request = true;
  if (options.provider == "auto") {
    chain = {Provider::kTensorRT, Provider::kCuda, Provider::kCpu};
    explicit_request = false;
  } else if (options.provider == "tensorrt") {
    chain = {Provider::kTensorRT, Provider::kCuda, Provider::kCpu};
  } else if (options.provider == "cuda") {
    chain = {Provider::kCuda, Provider::kCpu};
  } else if (options.provider == "cpu") {
    chain = {Provider::kCpu};
  } else {
    throw Error(ErrorCode::kInvalidArgument,
                "unknown ONNX Runtime execution provider '" + options.provider + "' (use auto, tensorrt, cuda or cpu)");
  }

  const std::vector<std::string> built_in = Ort::GetAvailableProviders();
  std::string built_in_list;
  for (const std::string& p : built_in) built_in_list += (built_in_list.empty() ? "" : ", ") + p;

  std::vector<ProviderAttempt> attempts;
  for (Provider p : chain) {
    ProviderAttempt attempt{p, "", explicit_request};
    const std::string_view library = provider_library(p);
    std::error_code ec;
    if (std::find(built_in.begin(), built_in.end(), ort_provider_name(p)) == built_in.end())
      attempt.skip_reason = "not part of this ONNX Runtime build (it has " + built_in_list + ")";
    else if (!library.empty() && !std::filesystem::exists(onnxruntime_library_dir() / library, ec))
      attempt.skip_reason = std::string(library) + " is not installed next to the ONNX Runtime library";
    attempts.push_back(std::move(attempt));
  }
  return attempts;
}

void append_provider(Ort::SessionOptions& session_options, Provider provider, const ExecutionOptions& options) {
  switch (provider) {
    case Provider::kTensorRT: append_tensorrt(session_options, options); break;
    case Provider::kCuda: append_cuda(session_options, options); break;
    case Provider::kCpu: break;  // always present: nodes no other provider takes run here
  }
}

void check_provider_options(const ExecutionOptions& options) {
  for (const auto& [key, value] : options.provider_options)
    if (!key.starts_with(kCudaPrefix) && !key.starts_with(kTensorRTPrefix))
      throw Error(ErrorCode::kInvalidArgument, "unknown ONNX Runtime provider option '" + key +
                                                   "' (options are 'cuda:<name>' or 'tensorrt:<name>')");
}

}  // namespace dermcds::onnxruntime
