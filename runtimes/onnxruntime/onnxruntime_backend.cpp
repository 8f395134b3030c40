#include "onnxruntime_backend.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "dermcds/error.hpp"
#include "execution_providers.hpp"
#include "ort_api.hpp"

namespace dermcds::runtimes::onnxruntime {

namespace {

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? "," : "") + (shape[i] < 0 ? std::string("?") : std::to_string(shape[i]));
  return out + "]";
}

Ort::SessionOptions base_session_options(const ExecutionOptions& options) {
  Ort::SessionOptions session_options;
  session_options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
  // One model runs one graph at a time; parallelism comes from intra-op threads and batching.
  session_options.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
  if (options.threads == shared_pool_threads()) {
    // The usual case: every session of the process runs on the environment's one pool (ort_api.hpp).
    session_options.DisablePerSessionThreads();
  } else {
    // A thread count other than the shared pool's needs a pool of its own. It must not spin
    // when idle: its spinning threads would take the cores from the shared pool's runs.
    if (options.threads > 0) session_options.SetIntraOpNumThreads(options.threads);
    session_options.SetInterOpNumThreads(1);
    session_options.AddConfigEntry("session.intra_op.allow_spinning", "0");
    spdlog::debug("onnxruntime: {} intra-op threads asked, the shared pool has {}: own pool, spinning off", options.threads,
                  shared_pool_threads());
  }
  return session_options;
}

}  // namespace

// A function-try-block: no Ort::Exception leaves the backend (runtime.hpp), wherever in the
// set-up (memory info, environment, session, signature) the C++ API threw it.
// The C++ API is initialised by hand (ORT_API_MANUAL_INIT): ort_environment() does it, and must
// run before the first Ort:: call, or a caller that skipped the descriptor's available() check
// would crash on a null API table (the int8 benchmark did). It is called with the request's
// thread count, since the first call sizes the process's shared pool.
OnnxRuntimeBackend::OnnxRuntimeBackend(const BackendRequest& request) try
    : cpu_memory_((ort_environment(request.options.threads), Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault))) {
  // As every runtime reports it (runtime.hpp); ONNX Runtime's own message would be a load failure.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(request.model_file, ec))
    throw Error(ErrorCode::kNotFound, request.model_file.string() + ": no such model file");
  if (request.options.threads < 0) throw Error(ErrorCode::kInvalidArgument, "thread count must be 0 (automatic) or positive");
  // The first session of the process sizes the shared pool; the service asks the same count for
  // every model, so all of its sessions share it.
  Ort::Env& env = ort_environment(request.options.threads);
  info_.runtime = "onnxruntime";
  info_.runtime_version = ort_version();
  int provider_max_batch = 0;

  for (const ProviderAttempt& attempt : plan_providers(request, ProviderEnvironment::current())) {
    const std::string name(provider_name(attempt.provider));
    if (!attempt.skip_reason.empty()) {
      if (attempt.report_skip) info_.fallbacks.push_back(name + ": " + attempt.skip_reason);
      spdlog::debug("onnxruntime: skipping {} provider: {}", name, attempt.skip_reason);
      continue;
    }
    try {
      Ort::SessionOptions session_options = base_session_options(request.options);
      append_provider(session_options, attempt);
      session_.emplace(env, request.model_file.c_str(), session_options);
      info_.provider = name;
      info_.precision = attempt.precision;
      provider_max_batch = attempt.max_batch;
      break;
    } catch (const Ort::Exception& e) {
      if (attempt.provider == Provider::kCpu)
        throw Error(ErrorCode::kRuntimeFailure, "ONNX Runtime cannot load " + request.model_file.string() + ": " + e.what());
      // A GPU provider that is built in but cannot start (no device, missing CUDA libraries)
      // is always worth reporting: it is the silent CPU fallback users complain about.
      const std::string reason = concise_failure(e.what());
      info_.fallbacks.push_back(name + ": " + reason);
      spdlog::warn("onnxruntime: {} provider failed, falling back: {}", name, reason);
    }
  }
  check_signature(request);
  // A TensorRT engine built for batches up to N takes no more than N.
  if (provider_max_batch > 0 && (max_batch_ == 0 || provider_max_batch < max_batch_)) max_batch_ = provider_max_batch;
} catch (const Ort::Exception& e) {
  throw Error(ErrorCode::kRuntimeFailure, "ONNX Runtime cannot load " + request.model_file.string() + ": " + e.what());
}

void OnnxRuntimeBackend::check_signature(const BackendRequest& request) {
  const std::string model = request.model_file.string();
  input_size_ = request.input_size;
  // Logits come first; a package with the safety guard has the ood score as a second output.
  const std::size_t expected_outputs = request.ood_output_name.empty() ? 1 : 2;
  if (session_->GetInputCount() != 1 || session_->GetOutputCount() < 1 || session_->GetOutputCount() > 2 ||
      session_->GetOutputCount() < expected_outputs)
    throw Error(ErrorCode::kModelMismatch, model + ": expected one input and " + std::to_string(expected_outputs) + " output(s), found " +
                                               std::to_string(session_->GetInputCount()) + " and " +
                                               std::to_string(session_->GetOutputCount()));
  Ort::AllocatorWithDefaultOptions allocator;
  if (!request.ood_output_name.empty()) {
    ood_output_name_ = session_->GetOutputNameAllocated(1, allocator).get();
    const Ort::TypeInfo ood_type = session_->GetOutputTypeInfo(1);
    const auto ood_info = ood_type.GetTensorTypeAndShapeInfo();
    const std::vector<std::int64_t> shape = ood_info.GetShape();
    if (ood_output_name_ != request.ood_output_name || ood_info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT ||
        shape.size() != 2 || shape[1] != 1)
      throw Error(ErrorCode::kModelMismatch, model + ": second output is '" + ood_output_name_ + "' " + shape_text(shape) +
                                                 ", the manifest says float '" + request.ood_output_name + "' [N,1]");
  }
  input_name_ = session_->GetInputNameAllocated(0, allocator).get();
  output_name_ = session_->GetOutputNameAllocated(0, allocator).get();
  if (input_name_ != request.input_name || output_name_ != request.output_name)
    throw Error(ErrorCode::kModelMismatch, model + ": tensors are named '" + input_name_ + "' -> '" + output_name_ +
                                               "', the manifest says '" + request.input_name + "' -> '" + request.output_name + "'");

  // The shape views borrow from their TypeInfo, which must outlive them.
  const Ort::TypeInfo input_type = session_->GetInputTypeInfo(0);
  const auto input_info = input_type.GetTensorTypeAndShapeInfo();
  const std::vector<std::int64_t> in = input_info.GetShape();
  const std::int64_t s = request.input_size;
  const bool input_ok =
      input_info.GetElementType() == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT && in.size() == 4 && in[1] == 3 && in[2] == s && in[3] == s;
  if (!input_ok)
    throw Error(ErrorCode::kModelMismatch, model + ": input '" + input_name_ + "' is " + shape_text(in) +
                                               ", the manifest needs float [N,3," + std::to_string(s) + "," + std::to_string(s) + "]");

  const Ort::TypeInfo output_type = session_->GetOutputTypeInfo(0);
  const auto output_info = output_type.GetTensorTypeAndShapeInfo();
  const std::vector<std::int64_t> out = output_info.GetShape();
  if (output_info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || out.size() != 2 || out[1] != request.num_classes)
    throw Error(ErrorCode::kModelMismatch, model + ": output '" + output_name_ + "' is " + shape_text(out) + ", the manifest has " +
                                               std::to_string(request.num_classes) + " labels");
  max_batch_ = in[0] > 0 ? static_cast<int>(in[0]) : 0;
}

Tensor OnnxRuntimeBackend::run(const Tensor& images) { return run_outputs(images).logits; }

InferenceOutputs OnnxRuntimeBackend::run_outputs(const Tensor& images) try {
  // A wrong batch is the caller's mistake (kInvalidArgument), not a runtime failure; ONNX Runtime
  // would also read past the data if the shape promised more values than it holds.
  const std::int64_t s = input_size_;
  if (images.shape.size() != 4 || images.shape[0] < 1 || images.shape[1] != 3 || images.shape[2] != s || images.shape[3] != s ||
      static_cast<std::int64_t>(images.data.size()) != Tensor::element_count(images.shape))
    throw Error(ErrorCode::kInvalidArgument,
                "image batch is not [N,3," + std::to_string(s) + "," + std::to_string(s) + "] with " + "as many values as its shape");
  if (max_batch_ > 0 && images.shape[0] > max_batch_)
    throw Error(ErrorCode::kInvalidArgument,
                "batch of " + std::to_string(images.shape[0]) + " exceeds the model's fixed batch " + std::to_string(max_batch_));
  // ONNX Runtime takes a mutable pointer but does not write to inputs.
  Ort::Value input = Ort::Value::CreateTensor<float>(cpu_memory_, const_cast<float*>(images.data.data()), images.data.size(),
                                                     images.shape.data(), images.shape.size());
  const char* input_names[] = {input_name_.c_str()};
  const char* output_names[] = {output_name_.c_str(), ood_output_name_.c_str()};
  const std::size_t output_count = ood_output_name_.empty() ? 1 : 2;
  std::vector<Ort::Value> outputs;
  try {
    outputs = session_->Run(Ort::RunOptions{nullptr}, input_names, &input, 1, output_names, output_count);
  } catch (const Ort::Exception& e) {
    throw Error(ErrorCode::kRuntimeFailure, std::string("ONNX Runtime inference failed: ") + e.what());
  }
  auto copy = [](const Ort::Value& value) {
    const auto info = value.GetTensorTypeAndShapeInfo();
    Tensor tensor;
    tensor.shape = info.GetShape();
    const float* data = value.GetTensorData<float>();
    tensor.data.assign(data, data + info.GetElementCount());
    return tensor;
  };
  InferenceOutputs result;
  result.logits = copy(outputs.front());
  if (output_count == 2) result.ood_score = copy(outputs[1]);
  return result;
} catch (const Ort::Exception& e) {
  // Creating the input tensor or reading the outputs can throw as well as Run itself.
  throw Error(ErrorCode::kRuntimeFailure, std::string("ONNX Runtime inference failed: ") + e.what());
}

}  // namespace dermcds::runtimes::onnxruntime

namespace dermcds {

namespace {

// The server runtime: first choice wherever `auto` serves on a server or a GPU machine, and where
// a phone's package has no TFLite artifact, only behind TFLite's.
// On a server the int8 (QDQ) artifact ranks first: int8 kernels are the point of building one.
// Core takes it only on the CPU and with passing parity evidence for it (choose_runtime), so
// fp32 remains the reference and the fallback.
int onnxruntime_preference(MachineKind machine, std::string_view precision) {
  if (machine == MachineKind::kMobileCpu) return kPreferPortable + (precision == "fp32" ? 0 : 1);
  if (precision == "int8") return kPreferNative;
  return precision == "fp32" ? kPreferNative + 1 : kPreferSecond;
}

// Every provider is worth a parity run: one that cannot load falls back and says so.
constexpr std::string_view kProviders[] = {"cpu", "cuda", "tensorrt"};
constexpr std::string_view kDeviceProviders[] = {"cuda", "tensorrt"};

}  // namespace

const RuntimeDescriptor& dermcds_runtime_onnxruntime() {
  static const RuntimeDescriptor descriptor{
      .name = "onnxruntime",
      .platform = "onnxruntime_onnx",
      .layout = TensorLayout::kNCHW,
      .providers = kProviders,
      .device_providers = kDeviceProviders,
      .preference = onnxruntime_preference,
      .available = [] { return runtimes::onnxruntime::ort_api_available(); },
      .version = [] { return runtimes::onnxruntime::ort_version(); },
      .create = [](const BackendRequest& request) -> std::unique_ptr<InferenceBackend> {
        return std::make_unique<runtimes::onnxruntime::OnnxRuntimeBackend>(request);
      },
  };
  return descriptor;
}

}  // namespace dermcds
