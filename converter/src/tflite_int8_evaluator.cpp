#include "tflite_int8_evaluator.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <thread>

#include <tensorflow/lite/c/common.h>

#include "dermcds/error.hpp"
#include "fp16.hpp"
#include "tflite_api.hpp"
#include "tflite_writer.hpp"

namespace dermcds::converter {

namespace {

// xnnpack_int8: XNNPACK with its int8 operators (QS8); else TFLite's own kernels, or for the
// float reference XNNPACK's float operators (`float_reference`), which are faster.
tflite_runtime::InterpreterOptions kernels_options(bool xnnpack, bool float_reference = false) {
  tflite_runtime::InterpreterOptions o;
  o.threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
  if (xnnpack || float_reference) o.accelerator = tflite_runtime::Accelerator::kXnnpack;
  if (xnnpack) o.xnnpack_flags = tflite_runtime::kXnnpackFlagQs8;
  return o;
}

std::vector<float> run(tflite_runtime::Interpreter& interpreter, const Tensor& sample) {
  TfLiteTensor* in = interpreter.input(0);
  if (TfLiteTensorByteSize(in) != sample.data.size() * sizeof(float))
    throw Error(ErrorCode::kInvalidArgument, "an analysis sample does not fit the model input");
  std::memcpy(TfLiteTensorData(in), sample.data.data(), sample.data.size() * sizeof(float));
  interpreter.invoke();
  const TfLiteTensor* out = interpreter.output(0);
  const auto* values = static_cast<const float*>(TfLiteTensorData(out));
  return std::vector<float>(values, values + TfLiteTensorByteSize(out) / sizeof(float));
}

}  // namespace

TflModel build_int8_model(const TflModel& float_model, const std::map<int, TensorRange>& ranges, const Int8Plan& plan,
                          QuantizeReport* report) {
  TflModel model = float_model;
  const QuantizeReport r = quantize_int8(model, ranges, plan);
  if (report) *report = r;
  if (!plan.float_operators.empty()) store_weights_as_fp16(model, 1024);
  remove_unused_tensors(model);
  return model;
}

namespace {

// Stand-in kernels for the delegation check: every operator XNNPACK does not take keeps its
// registration from the op resolver, and TFLite prepares it when tensors are allocated; these
// count the preparations and never run.
struct StandInKernels {
  std::map<std::pair<int, int>, TfLiteRegistration> registrations;
  int prepared = 0;
  std::vector<std::string> left;
};
thread_local StandInKernels* active_stand_ins = nullptr;

TfLiteStatus stand_in_prepare(TfLiteContext*, TfLiteNode*) {
  if (active_stand_ins) ++active_stand_ins->prepared;
  return kTfLiteOk;
}
TfLiteStatus stand_in_invoke(TfLiteContext*, TfLiteNode*) { return kTfLiteError; }

const TfLiteRegistration* stand_in_builtin(void* user_data, int op, int version) {
  auto* k = static_cast<StandInKernels*>(user_data);
  TfLiteRegistration& r = k->registrations[{op, version}];
  r.prepare = stand_in_prepare;
  r.invoke = stand_in_invoke;
  r.builtin_code = op;
  r.version = version;
  return &r;
}
const TfLiteRegistration* stand_in_custom(void*, const char*, int) { return nullptr; }

}  // namespace

}  // namespace dermcds::converter

// TFLite 2.9's experimental C API (c_api_experimental.h, not shipped with the library; the
// symbol is exported): an op resolver made of callbacks. The operator argument is the C enum
// TfLiteBuiltinOperator (builtin_ops.h, not shipped either), passed as an int.
extern "C" void TfLiteInterpreterOptionsSetOpResolver(
    TfLiteInterpreterOptions* options, const TfLiteRegistration* (*find_builtin_op)(void*, int, int),
    const TfLiteRegistration* (*find_custom_op)(void*, const char*, int), void* op_resolver_user_data);

namespace dermcds::converter {

std::pair<bool, std::string> xnnpack_delegates_all(const std::vector<std::uint8_t>& flatbuffer, std::size_t operator_count) {
  // The model is built with XNNPACK (int8 operators on) and an op resolver whose kernels only
  // count how often TFLite prepares them: after the delegate has taken what it supports, every
  // preparation is an operator left to TFLite's own kernels.
  StandInKernels kernels;
  std::unique_ptr<TfLiteModel, void (*)(TfLiteModel*)> model(TfLiteModelCreate(flatbuffer.data(), flatbuffer.size()), TfLiteModelDelete);
  if (!model) return {false, "TFLite cannot read the model"};
  const DermcdsXnnpackOptions xnnpack_options{1, tflite_runtime::kXnnpackFlagQs8};
  std::unique_ptr<TfLiteDelegate, void (*)(TfLiteDelegate*)> delegate(TfLiteXNNPackDelegateCreate(&xnnpack_options), TfLiteXNNPackDelegateDelete);
  std::unique_ptr<TfLiteInterpreterOptions, void (*)(TfLiteInterpreterOptions*)> options(TfLiteInterpreterOptionsCreate(),
                                                                                       TfLiteInterpreterOptionsDelete);
  if (!delegate || !options) return {false, "the XNNPACK delegate cannot be created"};
  TfLiteInterpreterOptionsAddDelegate(options.get(), delegate.get());
  TfLiteInterpreterOptionsSetOpResolver(options.get(), stand_in_builtin, stand_in_custom, &kernels);
  active_stand_ins = &kernels;
  std::unique_ptr<TfLiteInterpreter, void (*)(TfLiteInterpreter*)> interpreter(TfLiteInterpreterCreate(model.get(), options.get()),
                                                                             TfLiteInterpreterDelete);
  const bool allocated = interpreter && TfLiteInterpreterAllocateTensors(interpreter.get()) == kTfLiteOk;
  active_stand_ins = nullptr;
  if (!interpreter) return {false, "TFLite refuses the model with the XNNPACK delegate"};
  if (!allocated) return {false, "TFLite cannot allocate the model's tensors with the XNNPACK delegate"};
  const std::string counts = std::to_string(operator_count - std::min<std::size_t>(operator_count, static_cast<std::size_t>(kernels.prepared))) +
                             " of " + std::to_string(operator_count) + " operators on XNNPACK";
  return {kernels.prepared == 0, kernels.prepared == 0 ? counts : counts + ", " + std::to_string(kernels.prepared) + " on TFLite's own kernels"};
}

TfliteInt8Evaluator::TfliteInt8Evaluator(const TflModel& float_model, const std::map<int, TensorRange>& ranges,
                                         const std::vector<Tensor>& samples, std::function<int(std::span<const double>)> triage)
    : model_(float_model), ranges_(ranges), samples_(samples), triage_(std::move(triage)) {
  for (std::size_t i = 0; i < model_.operators.size(); ++i) {
    const TflOperator& op = model_.operators[i];
    if (moves_values_only(op.code) || op.code == BuiltinOperator::QUANTIZE || op.code == BuiltinOperator::DEQUANTIZE) continue;
    if (op.code == BuiltinOperator::MEAN) {
      forced_float_.push_back(i);
      continue;
    }
    const int out = op.outputs.at(0);
    units_.push_back({std::string(operator_name(op.code)), model_.tensors[static_cast<std::size_t>(out)].name, out});
    unit_operator_.push_back(i);
  }
  tflite_runtime::Interpreter reference = tflite_runtime::Interpreter::from_buffer(serialize_tflite(model_), kernels_options(false, true), "float model");
  for (const Tensor& s : samples_) reference_.push_back(run(reference, s));
}

Int8Plan TfliteInt8Evaluator::plan_for(const QuantizationCandidate& candidate) const {
  Int8Plan plan;
  for (std::size_t u : candidate.float_units) plan.float_operators.insert(unit_operator_.at(u));
  plan.float_operators.insert(forced_float_.begin(), forced_float_.end());
  for (const auto& [u, method] : candidate.output_methods) plan.methods[units_.at(u).output_tensor] = method;
  plan.bias_correction = candidate.bias_correction;
  return plan;
}

Int8Agreement TfliteInt8Evaluator::measure(const Int8Plan& plan, bool all_kernels, std::size_t sample_limit) {
  const std::vector<std::uint8_t> bytes = serialize_tflite(build_int8_model(model_, ranges_, plan));
  const std::size_t count = sample_limit ? std::min(sample_limit, samples_.size()) : samples_.size();
  Int8Agreement worst;
  bool first = true;
  for (bool xnnpack : {true, false}) {
    if (!xnnpack && !all_kernels) break;
    tflite_runtime::Interpreter interpreter = tflite_runtime::Interpreter::from_buffer(bytes, kernels_options(xnnpack), "int8 candidate");
    AgreementCounter counter(triage_);
    for (std::size_t i = 0; i < count; ++i) counter.add(reference_[i], run(interpreter, samples_[i]));
    const Int8Agreement a = counter.result();
    if (first) {
      worst = a;
      first = false;
    } else {
      worst.mean_abs_diff = std::max(worst.mean_abs_diff, a.mean_abs_diff);
      worst.max_abs_diff = std::max(worst.max_abs_diff, a.max_abs_diff);
      worst.top1_agreement = std::min(worst.top1_agreement, a.top1_agreement);
      worst.triage_agreement = std::min(worst.triage_agreement, a.triage_agreement);
    }
  }
  return worst;
}

Int8Agreement TfliteInt8Evaluator::evaluate(const QuantizationCandidate& candidate, bool all_kernels, std::size_t sample_limit) {
  return measure(plan_for(candidate), all_kernels, sample_limit);
}

Int8Agreement TfliteInt8Evaluator::evaluate_only_quantized(std::size_t only_int8, std::size_t sample_limit) {
  Int8Plan plan;
  for (std::size_t u = 0; u < units_.size(); ++u)
    if (u != only_int8) plan.float_operators.insert(unit_operator_[u]);
  plan.float_operators.insert(forced_float_.begin(), forced_float_.end());
  return measure(plan, false, sample_limit);
}

}  // namespace dermcds::converter
