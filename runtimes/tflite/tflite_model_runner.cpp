#include "dermcds/tflite_model_runner.hpp"

#include <cstring>
#include <random>

#include <tensorflow/lite/c/common.h>

#include "dermcds/error.hpp"
#include "tflite_api.hpp"

namespace dermcds::runtimes::tflite {

namespace {

// TFLite's BuiltinOperator value of the node a delegate puts in place of the nodes it takes.
constexpr int kBuiltinDelegate = 51;

struct PlanObservation {
  std::vector<UndelegatedNode> undelegated;
  int nodes = 0;
};

// A delegate that takes nothing: its Prepare only reads the execution plan, after the
// accelerator has replaced what it supports by delegate kernels. This is how the C API lets us
// tell which operators would run on TFLite's own kernels.
TfLiteStatus observe_plan(TfLiteContext* context, TfLiteDelegate* delegate) {
  auto* observation = static_cast<PlanObservation*>(delegate->data_);
  TfLiteIntArray* plan = nullptr;
  if (context->GetExecutionPlan(context, &plan) != kTfLiteOk) return kTfLiteError;
  for (int i = 0; i < plan->size; ++i) {
    TfLiteNode* node = nullptr;
    TfLiteRegistration* registration = nullptr;
    if (context->GetNodeAndRegistration(context, plan->data[i], &node, &registration) != kTfLiteOk) return kTfLiteError;
    if (registration->builtin_code == kBuiltinDelegate) {
      const auto* params = static_cast<const TfLiteDelegateParams*>(node->builtin_data);
      observation->nodes += params != nullptr && params->nodes_to_replace != nullptr ? params->nodes_to_replace->size : 1;
      continue;
    }
    ++observation->nodes;
    observation->undelegated.push_back(
        UndelegatedNode{plan->data[i], registration->builtin_code, registration->custom_name ? registration->custom_name : ""});
  }
  return kTfLiteOk;
}

ElementType element_type(TfLiteType type) {
  switch (type) {
    case kTfLiteFloat32:
      return ElementType::kFloat32;
    case kTfLiteInt8:
      return ElementType::kInt8;
    case kTfLiteUInt8:
      return ElementType::kUint8;
    case kTfLiteInt32:
      return ElementType::kInt32;
    case kTfLiteInt64:
      return ElementType::kInt64;
    default:
      return ElementType::kOther;
  }
}

TensorDescription describe(const TfLiteTensor* tensor) {
  return TensorDescription{TfLiteTensorName(tensor) ? TfLiteTensorName(tensor) : "", tensor_shape(tensor),
                           element_type(TfLiteTensorType(tensor)), TfLiteTensorByteSize(tensor)};
}

}  // namespace

struct ModelRunner::State {
  PlanObservation observation;
  TfLiteDelegate observer = TfLiteDelegateCreate();
  std::unique_ptr<Interpreter> interpreter;  // declared last: destroyed before the observer
};

ModelRunner::ModelRunner(std::vector<std::uint8_t> model, const RunnerOptions& options, const std::string& origin)
    : state_(std::make_unique<State>()) {
  state_->observer.data_ = &state_->observation;
  state_->observer.Prepare = observe_plan;
  InterpreterOptions interpreter_options;
  interpreter_options.threads = options.threads;
  interpreter_options.accelerator = options.xnnpack ? Accelerator::kXnnpack : Accelerator::kNone;
  interpreter_options.xnnpack_flags = options.xnnpack_int8 ? kXnnpackFlagQs8 : 0;
  interpreter_options.plan_observer = &state_->observer;
  try {
    state_->interpreter = std::make_unique<Interpreter>(Interpreter::from_buffer(std::move(model), interpreter_options, origin));
  } catch (const Error& e) {
    // TFLite refusing a well-formed flatbuffer is a property of the model, not of this machine.
    if (e.code() == ErrorCode::kRuntimeFailure) throw Error(ErrorCode::kUnsupportedModel, e.what());
    throw;
  }
}

ModelRunner::ModelRunner(ModelRunner&&) noexcept = default;
ModelRunner& ModelRunner::operator=(ModelRunner&&) noexcept = default;
ModelRunner::~ModelRunner() = default;

std::size_t ModelRunner::input_count() const { return static_cast<std::size_t>(state_->interpreter->input_count()); }
std::size_t ModelRunner::output_count() const { return static_cast<std::size_t>(state_->interpreter->output_count()); }

TensorDescription ModelRunner::input(std::size_t index) const {
  if (index >= input_count()) throw Error(ErrorCode::kInvalidArgument, "no input " + std::to_string(index));
  return describe(state_->interpreter->input(static_cast<int>(index)));
}

TensorDescription ModelRunner::output(std::size_t index) const {
  if (index >= output_count()) throw Error(ErrorCode::kInvalidArgument, "no output " + std::to_string(index));
  return describe(state_->interpreter->output(static_cast<int>(index)));
}

void ModelRunner::set_input(std::size_t index, std::span<const std::byte> bytes) {
  if (index >= input_count()) throw Error(ErrorCode::kInvalidArgument, "no input " + std::to_string(index));
  TfLiteTensor* tensor = state_->interpreter->input(static_cast<int>(index));
  if (bytes.size() != TfLiteTensorByteSize(tensor))
    throw Error(ErrorCode::kInvalidArgument, "input " + std::to_string(index) + " takes " + std::to_string(TfLiteTensorByteSize(tensor)) +
                                                 " bytes, not " + std::to_string(bytes.size()));
  if (TfLiteTensorCopyFromBuffer(tensor, bytes.data(), bytes.size()) != kTfLiteOk)
    throw Error(ErrorCode::kRuntimeFailure, "TensorFlow Lite cannot set input " + std::to_string(index));
}

void ModelRunner::set_input_values(std::size_t index, std::span<const float> values) {
  if (index >= input_count()) throw Error(ErrorCode::kInvalidArgument, "no input " + std::to_string(index));
  TfLiteTensor* tensor = state_->interpreter->input(static_cast<int>(index));
  if (values.size() != value_count(tensor))
    throw Error(ErrorCode::kInvalidArgument, "input " + std::to_string(index) + " (" + type_name(TfLiteTensorType(tensor)) + ") takes " +
                                                 std::to_string(value_count(tensor)) + " values, not " + std::to_string(values.size()));
  write_values(tensor, values.data(), values.size());
}

void ModelRunner::set_sample_inputs(std::uint32_t seed) {
  std::mt19937 random(seed);
  for (std::size_t i = 0; i < input_count(); ++i) {
    TfLiteTensor* tensor = state_->interpreter->input(static_cast<int>(i));
    auto* data = static_cast<std::uint8_t*>(TfLiteTensorData(tensor));
    const std::size_t bytes = TfLiteTensorByteSize(tensor);
    if (data == nullptr) continue;
    if (TfLiteTensorType(tensor) == kTfLiteFloat32) {
      std::uniform_real_distribution<float> uniform(-1.0F, 1.0F);
      for (std::size_t k = 0; k + sizeof(float) <= bytes; k += sizeof(float)) {
        const float v = uniform(random);
        std::memcpy(data + k, &v, sizeof v);
      }
    } else if (TfLiteTensorType(tensor) == kTfLiteInt32 || TfLiteTensorType(tensor) == kTfLiteInt64) {
      std::memset(data, 0, bytes);  // index-like inputs: 0 is always in range
    } else {
      for (std::size_t k = 0; k < bytes; ++k) data[k] = static_cast<std::uint8_t>(random());
    }
  }
}

void ModelRunner::invoke() { state_->interpreter->invoke(); }

std::vector<std::byte> ModelRunner::output_bytes(std::size_t index) const {
  if (index >= output_count()) throw Error(ErrorCode::kInvalidArgument, "no output " + std::to_string(index));
  const TfLiteTensor* tensor = state_->interpreter->output(static_cast<int>(index));
  std::vector<std::byte> out(TfLiteTensorByteSize(tensor));
  if (TfLiteTensorCopyToBuffer(tensor, out.data(), out.size()) != kTfLiteOk)
    throw Error(ErrorCode::kRuntimeFailure, "TensorFlow Lite cannot read output " + std::to_string(index));
  return out;
}

std::vector<float> ModelRunner::output_floats(std::size_t index) const {
  if (output(index).type != ElementType::kFloat32)
    throw Error(ErrorCode::kInvalidArgument, "output " + std::to_string(index) + " is not float32");
  const std::vector<std::byte> bytes = output_bytes(index);
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

std::vector<float> ModelRunner::output_values(std::size_t index) const {
  if (index >= output_count()) throw Error(ErrorCode::kInvalidArgument, "no output " + std::to_string(index));
  const TfLiteTensor* tensor = state_->interpreter->output(static_cast<int>(index));
  std::vector<float> out(value_count(tensor));
  read_values(tensor, out.data(), out.size());  // refuses types other than float32 and int8
  return out;
}

const std::vector<UndelegatedNode>& ModelRunner::undelegated() const { return state_->observation.undelegated; }
int ModelRunner::node_count() const { return state_->observation.nodes; }

}  // namespace dermcds::runtimes::tflite
