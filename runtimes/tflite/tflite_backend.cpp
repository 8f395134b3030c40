#include "tflite_backend.hpp"

#include <spdlog/spdlog.h>
#include <tensorflow/lite/c/common.h>

#include "dermcds/error.hpp"

namespace dermcds::runtimes::tflite {

namespace {

struct ProviderAttempt {
  std::string name;
  Accelerator accelerator;
};

// The requested provider first, then the ones it falls back to.
std::vector<ProviderAttempt> provider_chain(const std::string& provider) {
  const ProviderAttempt nnapi{"nnapi", Accelerator::kNnapi}, xnnpack{"xnnpack", Accelerator::kXnnpack},
      builtin{"builtin", Accelerator::kNone};
  if (provider == "auto" || provider == "xnnpack") return {xnnpack, builtin};
  if (provider == "builtin") return {builtin};
  if (provider == "nnapi") return {nnapi, xnnpack, builtin};
  throw Error(ErrorCode::kInvalidArgument, "unknown TensorFlow Lite provider '" + provider + "' (auto, xnnpack, builtin, nnapi)");
}

// provider_options the backend understands: xnnpack_int8 = auto | 1 | 0 (whether XNNPACK runs
// int8 operators; auto: when the artifact is int8).
std::uint32_t xnnpack_flags(const BackendRequest& request) {
  std::string int8 = "auto";
  for (const auto& [key, value] : request.options.provider_options) {
    if (key != "xnnpack_int8")
      throw Error(ErrorCode::kInvalidArgument, "unknown TensorFlow Lite provider option '" + key + "' (known: xnnpack_int8)");
    if (value != "auto" && value != "0" && value != "1")
      throw Error(ErrorCode::kInvalidArgument, "provider option xnnpack_int8 must be auto, 0 or 1, not '" + value + "'");
    int8 = value;
  }
  const bool on = int8 == "1" || (int8 == "auto" && request.precision == "int8");
  return on ? kXnnpackFlagQs8 : 0u;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? "," : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace

TfliteBackend::TfliteBackend(const BackendRequest& request) {
  info_.runtime = "tflite";
  info_.runtime_version = version();
  info_.precision = request.precision;
  const std::uint32_t flags = xnnpack_flags(request);

  for (const ProviderAttempt& attempt : provider_chain(request.options.provider)) {
    InterpreterOptions options;
    options.threads = request.options.threads;
    options.accelerator = attempt.accelerator;
    options.xnnpack_flags = flags;
    try {
      interpreter_.emplace(Interpreter::from_file(request.model_file, options));
      info_.provider = attempt.name;
      break;
    } catch (const Error& e) {
      // A model TFLite itself cannot load is not a provider problem.
      if (attempt.accelerator == Accelerator::kNone || e.code() == ErrorCode::kInvalidArgument || e.code() == ErrorCode::kNotFound) throw;
      info_.fallbacks.push_back(attempt.name + ": " + e.what());
      spdlog::warn("tflite: {} provider failed, falling back: {}", attempt.name, e.what());
    }
  }
  check_signature(request);
}

void TfliteBackend::check_signature(const BackendRequest& request) {
  const std::string model = request.model_file.string();
  // Logits come first; a package with the safety guard has the ood score as a second output.
  const int expected_outputs = request.ood_output_name.empty() ? 1 : 2;
  if (interpreter_->input_count() != 1 || interpreter_->output_count() < expected_outputs || interpreter_->output_count() > 2)
    throw Error(ErrorCode::kModelMismatch, model + ": expected one input and " + std::to_string(expected_outputs) + " output(s), found " +
                                               std::to_string(interpreter_->input_count()) + " and " +
                                               std::to_string(interpreter_->output_count()));
  if (expected_outputs == 2) {
    const TfLiteTensor* ood = interpreter_->output(1);
    const TfLiteType ood_type = TfLiteTensorType(ood);
    if (TfLiteTensorName(ood) != request.ood_output_name || (ood_type != kTfLiteFloat32 && ood_type != kTfLiteInt8) ||
        tensor_shape(ood) != std::vector<std::int64_t>{1, 1})
      throw Error(ErrorCode::kModelMismatch, model + ": second output is '" + std::string(TfLiteTensorName(ood)) + "' " +
                                                 type_name(ood_type) + " " + shape_text(tensor_shape(ood)) + ", the manifest says '" +
                                                 request.ood_output_name + "' [1,1]");
    reads_ood_ = true;
  }
  const TfLiteTensor* input = interpreter_->input(0);
  const TfLiteTensor* output = interpreter_->output(0);
  const std::string input_name = TfLiteTensorName(input), output_name = TfLiteTensorName(output);
  if (input_name != request.input_name || output_name != request.output_name)
    throw Error(ErrorCode::kModelMismatch, model + ": tensors are named '" + input_name + "' -> '" + output_name +
                                               "', the manifest says '" + request.input_name + "' -> '" + request.output_name + "'");
  const std::vector<std::int64_t> in = tensor_shape(input), out = tensor_shape(output);
  const std::int64_t s = request.input_size;
  const TfLiteType in_type = TfLiteTensorType(input), out_type = TfLiteTensorType(output);
  if ((in_type != kTfLiteFloat32 && in_type != kTfLiteInt8) || in != std::vector<std::int64_t>{1, s, s, 3})
    throw Error(ErrorCode::kModelMismatch, model + ": input '" + input_name + "' is " + type_name(in_type) + " " + shape_text(in) +
                                               ", the manifest needs float or int8 [1," + std::to_string(s) + "," + std::to_string(s) +
                                               ",3]");
  if ((out_type != kTfLiteFloat32 && out_type != kTfLiteInt8) || out != std::vector<std::int64_t>{1, request.num_classes})
    throw Error(ErrorCode::kModelMismatch, model + ": output '" + output_name + "' is " + type_name(out_type) + " " + shape_text(out) +
                                               ", the manifest has " + std::to_string(request.num_classes) + " labels");
  image_values_ = static_cast<std::size_t>(s * s * 3);
  classes_ = static_cast<std::size_t>(request.num_classes);
}

Tensor TfliteBackend::run(const Tensor& images) { return run_outputs(images).logits; }

InferenceOutputs TfliteBackend::run_outputs(const Tensor& images) {
  if (images.shape.empty() || images.data.size() != static_cast<std::size_t>(images.shape[0]) * image_values_)
    throw Error(ErrorCode::kInvalidArgument, "image batch does not have " + std::to_string(image_values_) + " values per image");
  const auto batch = static_cast<std::size_t>(images.shape[0]);
  InferenceOutputs result;
  Tensor& logits = result.logits;
  logits = Tensor::zeros({static_cast<std::int64_t>(batch), static_cast<std::int64_t>(classes_)});
  if (reads_ood_) result.ood_score = Tensor::zeros({static_cast<std::int64_t>(batch), 1});
  TfLiteTensor* input = interpreter_->input(0);
  for (std::size_t n = 0; n < batch; ++n) {
    write_values(input, images.data.data() + n * image_values_, image_values_);
    interpreter_->invoke();
    read_values(interpreter_->output(0), logits.data.data() + n * classes_, classes_);
    if (reads_ood_) read_values(interpreter_->output(1), result.ood_score.data.data() + n, 1);
  }
  return result;
}

}  // namespace dermcds::runtimes::tflite

namespace dermcds {

namespace {

// The mobile runtime: its int8 model is the one built for ARM CPUs without a GPU; on servers it
// serves only packages without an ONNX artifact, float before int8.
int tflite_preference(MachineKind machine, std::string_view precision) {
  const std::string_view order[] = {machine == MachineKind::kMobileCpu ? "int8" : "fp32", "fp16",
                                    machine == MachineKind::kMobileCpu ? "fp32" : "int8"};
  const int band = machine == MachineKind::kMobileCpu ? kPreferNative : kPreferPortable;
  for (int i = 0; i < 3; ++i)
    if (precision == order[i]) return band + i;
  return machine == MachineKind::kMobileCpu ? kPreferLast : kPreferPortable + 9;
}

#if defined(__ANDROID__)
constexpr std::string_view kProviders[] = {"xnnpack", "builtin", "nnapi"};
#else
constexpr std::string_view kProviders[] = {"xnnpack", "builtin"};  // NNAPI exists only on Android
#endif

}  // namespace

const RuntimeDescriptor& dermcds_runtime_tflite() {
  static const RuntimeDescriptor descriptor{
      .name = "tflite",
      .platform = "tflite",
      .layout = TensorLayout::kNHWC,
      .providers = kProviders,
      .preference = tflite_preference,
      .available = [] { return runtimes::tflite::library_supported(); },
      .version = [] { return runtimes::tflite::version(); },
      .create = [](const BackendRequest& request) -> std::unique_ptr<InferenceBackend> {
        return std::make_unique<runtimes::tflite::TfliteBackend>(request);
      },
  };
  return descriptor;
}

}  // namespace dermcds
