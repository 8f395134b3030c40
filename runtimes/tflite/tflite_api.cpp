#include "tflite_api.hpp"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include <tensorflow/lite/c/common.h>

#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"

#if defined(__ANDROID__)
// Exported by the Android library (c_api_experimental.h, not shipped).
extern "C" void TfLiteInterpreterOptionsSetUseNNAPI(TfLiteInterpreterOptions* options, bool enable);
#endif

namespace dermcds::runtimes::tflite {

namespace {

struct ModelDeleter {
  void operator()(TfLiteModel* p) const { TfLiteModelDelete(p); }
};
struct OptionsDeleter {
  void operator()(TfLiteInterpreterOptions* p) const { TfLiteInterpreterOptionsDelete(p); }
};
struct InterpreterDeleter {
  void operator()(TfLiteInterpreter* p) const { TfLiteInterpreterDelete(p); }
};
struct XnnpackDeleter {
  void operator()(TfLiteDelegate* p) const { TfLiteXNNPackDelegateDelete(p); }
};

void collect_message(void* user_data, const char* format, va_list args) {
  auto* messages = static_cast<std::string*>(user_data);
  char buffer[1024];
  std::vsnprintf(buffer, sizeof buffer, format, args);
  if (!messages->empty()) messages->append("; ");
  messages->append(buffer);
}

}  // namespace

// Members are destroyed bottom-up: interpreter, options, delegate, model, bytes.
struct Interpreter::State {
  std::vector<std::uint8_t> bytes;
  std::string messages;
  std::unique_ptr<TfLiteModel, ModelDeleter> model;
  std::unique_ptr<TfLiteDelegate, XnnpackDeleter> xnnpack;
  std::unique_ptr<TfLiteInterpreterOptions, OptionsDeleter> options;
  std::unique_ptr<TfLiteInterpreter, InterpreterDeleter> interpreter;
};

std::string version() { return TfLiteVersion(); }

bool supported_version(std::string_view version) {
  constexpr std::string_view kSeries = "2.9.";
  if (!version.starts_with(kSeries) || version.size() == kSeries.size()) return false;
  // The patch level: digits, optionally followed by a pre-release or build suffix ("2.9.0-rc1").
  const std::string_view patch = version.substr(kSeries.size());
  return patch.front() >= '0' && patch.front() <= '9';
}

bool library_supported() {
  static const bool supported = supported_version(TfLiteVersion());
  return supported;
}

std::unique_ptr<Interpreter::State> Interpreter::build(std::unique_ptr<State> s, const InterpreterOptions& options,
                                                       const std::string& origin) {
  if (!library_supported())
    throw Error(
        ErrorCode::kRuntimeUnavailable,
        "TensorFlow Lite " + version() + " is loaded; this build is written against the 2.9 C API and XNNPACK options (tflite_api.hpp)");
  if (!s->model)
    throw Error(ErrorCode::kInvalidArgument, origin + ": TensorFlow Lite cannot read it as a model (not a valid .tflite flatbuffer)");
  s->options.reset(TfLiteInterpreterOptionsCreate());
  TfLiteInterpreterOptionsSetErrorReporter(s->options.get(), collect_message, &s->messages);
  if (options.threads < 0) throw Error(ErrorCode::kInvalidArgument, "thread count must be 0 (automatic) or positive");
  if (options.threads > 0) TfLiteInterpreterOptionsSetNumThreads(s->options.get(), options.threads);
  switch (options.accelerator) {
    case Accelerator::kNone:
      break;
    case Accelerator::kXnnpack: {
      const DermcdsXnnpackOptions xnnpack{options.threads > 0 ? options.threads : 1, options.xnnpack_flags};
      s->xnnpack.reset(TfLiteXNNPackDelegateCreate(&xnnpack));
      if (!s->xnnpack) throw Error(ErrorCode::kRuntimeUnavailable, "the XNNPACK delegate cannot be created");
      TfLiteInterpreterOptionsAddDelegate(s->options.get(), s->xnnpack.get());
      break;
    }
    case Accelerator::kNnapi:
#if defined(__ANDROID__)
      TfLiteInterpreterOptionsSetUseNNAPI(s->options.get(), true);
      break;
#else
      throw Error(ErrorCode::kRuntimeUnavailable, "NNAPI exists only in Android builds");
#endif
  }
  if (options.plan_observer) TfLiteInterpreterOptionsAddDelegate(s->options.get(), options.plan_observer);
  s->interpreter.reset(TfLiteInterpreterCreate(s->model.get(), s->options.get()));
  if (!s->interpreter) throw Error(ErrorCode::kRuntimeFailure, origin + ": TensorFlow Lite refuses the model: " + s->messages);
  if (TfLiteInterpreterAllocateTensors(s->interpreter.get()) != kTfLiteOk)
    throw Error(ErrorCode::kRuntimeFailure, origin + ": TensorFlow Lite cannot allocate the model's tensors: " + s->messages);
  return s;
}

Interpreter Interpreter::from_file(const std::filesystem::path& path, const InterpreterOptions& options) {
  return from_buffer(read_file_bytes(path), options, path.string());
}

Interpreter Interpreter::from_buffer(std::vector<std::uint8_t> bytes, const InterpreterOptions& options, const std::string& origin) {
  auto s = std::make_unique<State>();
  s->bytes = std::move(bytes);
  // TfLiteModelCreate verifies the flatbuffer; the bytes must outlive the model.
  s->model.reset(TfLiteModelCreate(s->bytes.data(), s->bytes.size()));
  return Interpreter(build(std::move(s), options, origin));
}

Interpreter::Interpreter(std::unique_ptr<State> state) : state_(std::move(state)) {}
Interpreter::Interpreter(Interpreter&&) noexcept = default;
Interpreter& Interpreter::operator=(Interpreter&&) noexcept = default;
Interpreter::~Interpreter() = default;

int Interpreter::input_count() const { return TfLiteInterpreterGetInputTensorCount(state_->interpreter.get()); }
int Interpreter::output_count() const { return TfLiteInterpreterGetOutputTensorCount(state_->interpreter.get()); }
TfLiteTensor* Interpreter::input(int index) { return TfLiteInterpreterGetInputTensor(state_->interpreter.get(), index); }
const TfLiteTensor* Interpreter::output(int index) const { return TfLiteInterpreterGetOutputTensor(state_->interpreter.get(), index); }

void Interpreter::invoke() {
  if (TfLiteInterpreterInvoke(state_->interpreter.get()) != kTfLiteOk)
    throw Error(ErrorCode::kRuntimeFailure, "TensorFlow Lite inference failed: " + state_->messages);
}

const std::string& Interpreter::messages() const { return state_->messages; }

std::vector<std::int64_t> tensor_shape(const TfLiteTensor* tensor) {
  std::vector<std::int64_t> shape;
  for (int i = 0; i < TfLiteTensorNumDims(tensor); ++i) shape.push_back(TfLiteTensorDim(tensor, i));
  return shape;
}

const char* type_name(TfLiteType type) { return TfLiteTypeGetName(type); }

std::size_t value_count(const TfLiteTensor* tensor) {
  switch (TfLiteTensorType(tensor)) {
    case kTfLiteFloat32:
      return TfLiteTensorByteSize(tensor) / sizeof(float);
    case kTfLiteInt8:
      return TfLiteTensorByteSize(tensor);
    default:
      return 0;
  }
}

namespace {
std::size_t value_capacity(const TfLiteTensor* tensor, const char* what) {
  const TfLiteType type = TfLiteTensorType(tensor);
  if (type != kTfLiteInt8 && type != kTfLiteFloat32)
    throw Error(ErrorCode::kInvalidArgument, std::string(what) + " is " + type_name(type) + ", not float32 or int8");
  return value_count(tensor);
}
}  // namespace

void write_values(TfLiteTensor* tensor, const float* values, std::size_t count) {
  if (count > value_capacity(tensor, "the input tensor"))
    throw Error(ErrorCode::kInvalidArgument, "the input tensor holds fewer than " + std::to_string(count) + " values");
  if (TfLiteTensorType(tensor) == kTfLiteFloat32) {
    std::memcpy(TfLiteTensorData(tensor), values, count * sizeof(float));
    return;
  }
  const TfLiteQuantizationParams q = TfLiteTensorQuantizationParams(tensor);
  auto* data = static_cast<std::int8_t*>(TfLiteTensorData(tensor));
  for (std::size_t i = 0; i < count; ++i)
    data[i] = static_cast<std::int8_t>(std::clamp(std::nearbyint(values[i] / q.scale) + static_cast<float>(q.zero_point), -128.0F, 127.0F));
}

void read_values(const TfLiteTensor* tensor, float* out, std::size_t count) {
  if (count > value_capacity(tensor, "the output tensor"))
    throw Error(ErrorCode::kInvalidArgument, "the output tensor holds fewer than " + std::to_string(count) + " values");
  if (TfLiteTensorType(tensor) == kTfLiteFloat32) {
    std::memcpy(out, TfLiteTensorData(tensor), count * sizeof(float));
    return;
  }
  const TfLiteQuantizationParams q = TfLiteTensorQuantizationParams(tensor);
  const auto* data = static_cast<const std::int8_t*>(TfLiteTensorData(tensor));
  for (std::size_t i = 0; i < count; ++i) out[i] = q.scale * static_cast<float>(data[i] - q.zero_point);
}

}  // namespace dermcds::runtimes::tflite
