#include "tflite_int8_evaluator.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <regex>
#include <thread>

#include "dermcds/error.hpp"
#include "fp16.hpp"
#include "tflite_api.hpp"
#include "tflite_writer.hpp"

namespace dermcds::converter {

namespace {

tflite_runtime::InterpreterOptions kernels_options(bool xnnpack) {
  tflite_runtime::InterpreterOptions o;
  o.threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
  if (xnnpack) {
    o.accelerator = tflite_runtime::Accelerator::kXnnpack;
    o.xnnpack_flags = tflite_runtime::kXnnpackFlagQs8;
  }
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

std::pair<bool, std::string> xnnpack_delegates_all(const std::vector<std::uint8_t>& flatbuffer, std::size_t operator_count) {
  std::string log;
  std::fflush(stderr);
  const int saved = dup(STDERR_FILENO);
  std::FILE* capture = std::tmpfile();
  if (saved < 0 || !capture) {
    if (saved >= 0) close(saved);
    if (capture) std::fclose(capture);
    return {false, "stderr could not be captured"};
  }
  dup2(fileno(capture), STDERR_FILENO);
  std::string failure;
  try {
    tflite_runtime::Interpreter interpreter = tflite_runtime::Interpreter::from_buffer(flatbuffer, kernels_options(true), "int8 model");
    log = interpreter.messages();
  } catch (const Error& e) {
    failure = e.what();
  }
  std::fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::rewind(capture);
  char buffer[4096];
  std::size_t n;
  std::string captured;
  while ((n = std::fread(buffer, 1, sizeof buffer, capture)) > 0) captured.append(buffer, n);
  std::fclose(capture);
  log = captured + log;
  if (!failure.empty()) return {false, failure};
  static const std::regex replacing(R"(Replacing (\d+) node\(s\) with delegate \(TfLiteXNNPackDelegate\) node, yielding (\d+) partitions)");
  std::smatch m;
  if (!std::regex_search(log, m, replacing)) return {false, "TFLite reported no XNNPACK partitioning: " + log};
  const std::size_t replaced = std::stoul(m[1]), partitions = std::stoul(m[2]);
  const std::string text = m[0].str();
  return {replaced == operator_count && partitions == 1, text + " (" + std::to_string(operator_count) + " operators in the model)"};
}

TfliteInt8Evaluator::TfliteInt8Evaluator(const TflModel& float_model, const std::map<int, TensorRange>& ranges,
                                         const std::vector<Tensor>& samples, std::function<int(std::span<const double>)> triage)
    : model_(float_model), ranges_(ranges), samples_(samples), triage_(std::move(triage)) {
  for (std::size_t i = 0; i < model_.operators.size(); ++i) {
    const TflOperator& op = model_.operators[i];
    if (moves_values_only(op.code) || op.code == BuiltinOperator::QUANTIZE || op.code == BuiltinOperator::DEQUANTIZE) continue;
    const int out = op.outputs.at(0);
    units_.push_back({std::string(operator_name(op.code)), model_.tensors[static_cast<std::size_t>(out)].name, out});
    unit_operator_.push_back(i);
  }
  tflite_runtime::Interpreter reference = tflite_runtime::Interpreter::from_buffer(serialize_tflite(model_), kernels_options(false), "float model");
  for (const Tensor& s : samples_) reference_.push_back(run(reference, s));
}

Int8Plan TfliteInt8Evaluator::plan_for(const QuantizationCandidate& candidate) const {
  Int8Plan plan;
  for (std::size_t u : candidate.float_units) plan.float_operators.insert(unit_operator_.at(u));
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
  return measure(plan, false, sample_limit);
}

}  // namespace dermcds::converter
