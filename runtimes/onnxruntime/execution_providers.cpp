#include "execution_providers.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include <spdlog/spdlog.h>

#include "dermcds/error.hpp"
#include "dermcds/file_util.hpp"
#include "dermcds/sha256.hpp"
#include "gpu_probe.hpp"
#include "tensorrt_engine_cache.hpp"

namespace dermcds::runtimes::onnxruntime {

namespace {

std::string_view ort_provider_name(Provider provider) {
  switch (provider) {
    case Provider::kTensorRT:
      return "TensorrtExecutionProvider";
    case Provider::kCuda:
      return "CUDAExecutionProvider";
    case Provider::kCpu:
      return "CPUExecutionProvider";
  }
  return "";
}

// GPU providers are separate shared libraries that ONNX Runtime loads from its own directory;
// builds list them as available whether or not they are installed.
std::string_view provider_library(Provider provider) {
  switch (provider) {
    case Provider::kTensorRT:
      return "libonnxruntime_providers_tensorrt.so";
    case Provider::kCuda:
      return "libonnxruntime_providers_cuda.so";
    case Provider::kCpu:
      return "";
  }
  return "";
}

std::filesystem::path onnxruntime_library_dir() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<const void*>(&OrtGetApiBase), &info) == 0 || !info.dli_fname) return {};
  return std::filesystem::path(info.dli_fname).parent_path();
}

std::vector<Provider> requested_chain(const std::string& provider) {
  if (provider == "auto" || provider == "tensorrt") return {Provider::kTensorRT, Provider::kCuda, Provider::kCpu};
  if (provider == "cuda") return {Provider::kCuda, Provider::kCpu};
  if (provider == "cpu") return {Provider::kCpu};
  throw Error(ErrorCode::kInvalidArgument, "unknown ONNX Runtime execution provider '" + provider + "' (use auto, tensorrt, cuda or cpu)");
}

// Why the provider cannot be used at all on this machine, or "" if it might be.
std::string installation_problem(Provider provider, const ProviderEnvironment& environment) {
  const auto& built_in = environment.built_in;
  if (std::find(built_in.begin(), built_in.end(), ort_provider_name(provider)) == built_in.end())
    return "not part of this ONNX Runtime build (it has " + join(built_in) + ")";
  const std::string_view library = provider_library(provider);
  std::error_code ec;
  if (!library.empty() && !std::filesystem::exists(environment.library_dir / library, ec))
    return std::string(library) + " is not installed next to the ONNX Runtime library (in " + environment.library_dir.string() + ")";
  return "";
}

// Fills in the TensorRT attempt's options, or its skip reason when this machine cannot key or
// write the engine cache.
void plan_tensorrt(ProviderAttempt& attempt, const TensorRTOptions& trt, const BackendRequest& request,
                   const ProviderEnvironment& environment) {
  std::error_code ec;
  if (!trt.int8_calibration_table.empty() && !std::filesystem::is_regular_file(trt.int8_calibration_table, ec)) {
    attempt.skip_reason = "the INT8 calibration table " + trt.int8_calibration_table.string() + " does not exist";
    return;
  }
  TensorRTFiles files;
  if (trt.engine_cache_dir.empty()) {
    files.calibration_table_name = trt.int8_calibration_table.string();
  } else {
    const auto gpu = probe_cuda_device(trt.device_id, environment.cuda_driver_library);
    if (!gpu.value) {
      attempt.skip_reason = "cannot key the engine cache to GPU " + std::to_string(trt.device_id) + ": " + gpu.error;
      return;
    }
    const auto version = probe_tensorrt_version(environment.tensorrt_libraries);
    if (!version.value) {
      attempt.skip_reason = "cannot key the engine cache to a TensorRT version: " + version.error;
      return;
    }
    EngineCacheKey key;
    key.model_sha256 = sha256_file_hex(request.model_file);
    key.gpu = *gpu.value;
    key.tensorrt = *version.value;
    key.onnxruntime_version = environment.onnxruntime_version;
    key.precision = attempt.precision;
    if (!trt.int8_calibration_table.empty()) key.calibration_sha256 = sha256_file_hex(trt.int8_calibration_table);
    key.max_batch = trt.max_batch;
    try {
      files = prepare_engine_cache(trt.engine_cache_dir, key, trt.int8_calibration_table);
    } catch (const Error& e) {
      attempt.skip_reason = e.what();
      return;
    }
    attempt.engine_dir = files.engine_dir;
    spdlog::info("onnxruntime: TensorRT engine cache for {} on {} (sm{}{}): {}", request.model_file.filename().string(), key.gpu.name,
                 key.gpu.compute_major, key.gpu.compute_minor, files.engine_dir.string());
  }
  attempt.options = tensorrt_provider_options(trt, files, request.input_name, request.input_size);
  attempt.max_batch = trt.max_batch;
}

std::vector<const char*> names_of(const ProviderOptionList& options) {
  std::vector<const char*> out;
  for (const ProviderOption& o : options) out.push_back(o.name.c_str());
  return out;
}

std::vector<const char*> values_of(const ProviderOptionList& options) {
  std::vector<const char*> out;
  for (const ProviderOption& o : options) out.push_back(o.value.c_str());
  return out;
}

void throw_on_status(OrtStatus* status) {
  if (status) {
    const std::string message = Ort::GetApi().GetErrorMessage(status);
    const OrtErrorCode code = Ort::GetApi().GetErrorCode(status);
    Ort::GetApi().ReleaseStatus(status);
    throw Ort::Exception(std::string(message), code);
  }
}

// ONNX Runtime loads the provider library when the options are first updated, so a missing or
// broken library (or TensorRT/CUDA underneath it) surfaces here with ONNX Runtime's reason.
void append_cuda(Ort::SessionOptions& session_options, const ProviderOptionList& options) {
  const OrtApi& api = Ort::GetApi();
  OrtCUDAProviderOptionsV2* raw = nullptr;
  throw_on_status(api.CreateCUDAProviderOptions(&raw));
  const std::unique_ptr<OrtCUDAProviderOptionsV2, decltype(api.ReleaseCUDAProviderOptions)> cuda(raw, api.ReleaseCUDAProviderOptions);
  throw_on_status(api.UpdateCUDAProviderOptions(cuda.get(), names_of(options).data(), values_of(options).data(), options.size()));
  session_options.AppendExecutionProvider_CUDA_V2(*cuda);
}

void append_tensorrt(Ort::SessionOptions& session_options, const ProviderOptionList& options) {
  const OrtApi& api = Ort::GetApi();
  OrtTensorRTProviderOptionsV2* raw = nullptr;
  throw_on_status(api.CreateTensorRTProviderOptions(&raw));
  const std::unique_ptr<OrtTensorRTProviderOptionsV2, decltype(api.ReleaseTensorRTProviderOptions)> trt(raw,
                                                                                                        api.ReleaseTensorRTProviderOptions);
  throw_on_status(api.UpdateTensorRTProviderOptions(trt.get(), names_of(options).data(), values_of(options).data(), options.size()));
  session_options.AppendExecutionProvider_TensorRT_V2(*trt);
}

}  // namespace

std::string_view provider_name(Provider provider) noexcept {
  switch (provider) {
    case Provider::kTensorRT:
      return "tensorrt";
    case Provider::kCuda:
      return "cuda";
    case Provider::kCpu:
      return "cpu";
  }
  return "unknown";
}

ProviderEnvironment ProviderEnvironment::current() {
  return {Ort::GetAvailableProviders(), onnxruntime_library_dir(), OrtGetApiBase()->GetVersionString(), std::string(kCudaDriverLibrary),
          default_tensorrt_libraries()};
}

std::vector<ProviderAttempt> plan_providers(const BackendRequest& request, const ProviderEnvironment& environment) {
  const std::vector<Provider> chain = requested_chain(request.options.provider);
  // Parsed first and on every machine: a bad option is a configuration error even where the
  // provider it configures does not exist.
  const GpuOptions gpu = parse_gpu_options(request.options, request.precision);
  const bool explicit_request = request.options.provider != "auto";

  std::vector<ProviderAttempt> attempts;
  for (const Provider provider : chain) {
    ProviderAttempt attempt;
    attempt.provider = provider;
    attempt.precision = provider == Provider::kTensorRT ? tensorrt_precision(gpu.tensorrt, request.precision) : request.precision;
    attempt.skip_reason = installation_problem(provider, environment);
    // "auto" passes over providers this installation lacks without comment; anything that goes
    // wrong with an installed provider, or with one the caller named, is reported.
    attempt.report_skip = explicit_request || attempt.skip_reason.empty();
    if (attempt.skip_reason.empty()) {
      switch (provider) {
        case Provider::kTensorRT:
          plan_tensorrt(attempt, gpu.tensorrt, request, environment);
          if (installation_problem(Provider::kCuda, environment).empty()) attempt.cuda_behind_tensorrt = cuda_provider_options(gpu.cuda);
          break;
        case Provider::kCuda:
          attempt.options = cuda_provider_options(gpu.cuda);
          break;
        case Provider::kCpu:
          break;
      }
    }
    attempts.push_back(std::move(attempt));
  }
  return attempts;
}

std::string concise_failure(std::string_view ort_message) {
  std::string_view message = ort_message;
  // "[ONNXRuntimeError] : <code> : <CODE NAME> : <what happened>"
  constexpr std::string_view kMarker = "[ONNXRuntimeError] : ";
  if (const auto at = message.rfind(kMarker); at != std::string_view::npos) {
    std::string_view rest = message.substr(at + kMarker.size());
    for (int field = 0; field < 2; ++field) {
      const auto separator = rest.find(" : ");
      if (separator == std::string_view::npos) break;
      rest = rest.substr(separator + 3);
    }
    message = rest;
  }
  while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) message.remove_suffix(1);
  return std::string(message);
}

void append_provider(Ort::SessionOptions& session_options, const ProviderAttempt& attempt) {
  switch (attempt.provider) {
    case Provider::kTensorRT:
      append_tensorrt(session_options, attempt.options);
      if (!attempt.cuda_behind_tensorrt.empty()) append_cuda(session_options, attempt.cuda_behind_tensorrt);
      break;
    case Provider::kCuda:
      append_cuda(session_options, attempt.options);
      break;
    case Provider::kCpu:
      break;  // always present: nodes no other provider takes run here
  }
}

}  // namespace dermcds::runtimes::onnxruntime
