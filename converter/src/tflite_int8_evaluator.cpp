#include "tflite_int8_evaluator.hpp"

#include <algorithm>
#include <map>
#include <thread>

#include "dermcds/error.hpp"
#include "dermcds/tflite_model_runner.hpp"
#include "fp16_weights.hpp"
#include "tflite_writer.hpp"

namespace dermcds::converter {

runtimes::tflite::RunnerOptions measurement_runner_options(bool xnnpack, bool float_reference) {
  runtimes::tflite::RunnerOptions o;
  o.threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
  o.xnnpack = xnnpack || float_reference;
  o.xnnpack_int8 = xnnpack;
  return o;
}

namespace {

// Runs one sample. An int8 interface (--int8-io) is quantized and dequantized by the runner with
// the TFLite backend's own rule, so the search measures the artifact that is shipped.
std::vector<float> run(runtimes::tflite::ModelRunner& runner, const Tensor& sample) {
  runner.set_input_values(0, sample.data);
  runner.invoke();
  return runner.output_values(0);
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

TfliteInt8Evaluator::TfliteInt8Evaluator(const TflModel& float_model, const std::map<int, TensorRange>& ranges,
                                         const std::vector<Tensor>& samples, std::function<int(std::span<const double>)> triage,
                                         bool int8_io)
    : model_(float_model), ranges_(ranges), samples_(samples), triage_(std::move(triage)), int8_io_(int8_io) {
  // Which operators the first output (the logits) depends on.
  std::vector<bool> feeds_first(model_.operators.size(), false);
  std::vector<int> pending;
  if (!model_.outputs.empty()) pending.push_back(model_.outputs[0]);
  std::vector<bool> seen(model_.tensors.size(), false);
  while (!pending.empty()) {
    const int t = pending.back();
    pending.pop_back();
    if (t < 0 || seen[static_cast<std::size_t>(t)]) continue;
    seen[static_cast<std::size_t>(t)] = true;
    const int p = model_.producer(t);
    if (p < 0) continue;
    feeds_first[static_cast<std::size_t>(p)] = true;
    for (int in : model_.operators[static_cast<std::size_t>(p)].inputs) pending.push_back(in);
  }
  for (std::size_t i = 0; i < model_.operators.size(); ++i) {
    const TflOperator& op = model_.operators[i];
    if (op.code == BuiltinOperator::QUANTIZE || op.code == BuiltinOperator::DEQUANTIZE) continue;
    if (xnnpack_lacks_int8(op.code) || !feeds_first[i]) {
      forced_float_.push_back(i);
      continue;
    }
    if (moves_values_only(op.code)) continue;
    const int out = op.outputs.at(0);
    units_.push_back({std::string(operator_name(op.code)), model_.tensors[static_cast<std::size_t>(out)].name, out});
    unit_operator_.push_back(i);
  }
  runtimes::tflite::ModelRunner reference(serialize_tflite(model_), measurement_runner_options(false, true), "float model");
  for (const Tensor& s : samples_) reference_.push_back(run(reference, s));
}

Int8Plan TfliteInt8Evaluator::plan_for(const QuantizationCandidate& candidate) const {
  Int8Plan plan;
  for (std::size_t u : candidate.float_units) plan.float_operators.insert(unit_operator_.at(u));
  plan.float_operators.insert(forced_float_.begin(), forced_float_.end());
  for (const auto& [u, method] : candidate.output_methods) plan.methods[units_.at(u).output_tensor] = method;
  plan.method = candidate.method;
  plan.bias_correction = candidate.bias_correction;
  plan.int8_io = int8_io_;
  return plan;
}

Int8Agreement TfliteInt8Evaluator::measure(const Int8Plan& plan, bool all_kernels, std::size_t sample_limit) {
  const std::vector<std::uint8_t> bytes = serialize_tflite(build_int8_model(model_, ranges_, plan));
  const std::size_t count = sample_limit ? std::min(sample_limit, samples_.size()) : samples_.size();
  Int8Agreement worst;
  bool first = true;
  for (bool xnnpack : {true, false}) {
    if (!xnnpack && !all_kernels) break;
    runtimes::tflite::ModelRunner runner(bytes, measurement_runner_options(xnnpack, false), "int8 candidate");
    AgreementCounter counter(triage_);
    for (std::size_t i = 0; i < count; ++i) counter.add(reference_[i], run(runner, samples_[i]));
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

std::size_t TfliteInt8Evaluator::model_bytes(const QuantizationCandidate& candidate) {
  return serialize_tflite(build_int8_model(model_, ranges_, plan_for(candidate))).size();
}

Int8Agreement TfliteInt8Evaluator::evaluate(const QuantizationCandidate& candidate, bool all_kernels, std::size_t sample_limit) {
  return measure(plan_for(candidate), all_kernels, sample_limit);
}

Int8Agreement TfliteInt8Evaluator::evaluate_only_quantized(std::size_t only_int8, std::size_t sample_limit) {
  Int8Plan plan;
  for (std::size_t u = 0; u < units_.size(); ++u)
    if (u != only_int8) plan.float_operators.insert(unit_operator_[u]);
  plan.float_operators.insert(forced_float_.begin(), forced_float_.end());
  plan.int8_io = int8_io_;
  return measure(plan, false, sample_limit);
}

}  // namespace dermcds::converter
