// The TFLite side of the int8 analysis (int8_analysis.hpp): builds a quantized TflModel for a
// candidate (quantize.hpp) and measures it in TensorFlow Lite 2.9, with XNNPACK's int8
// operators and with TFLite's own int8 kernels, against the float model run in TFLite.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "calibration.hpp"
#include "dermcds/tflite_model_runner.hpp"
#include "int8_analysis.hpp"
#include "quantize.hpp"
#include "tflite_model.hpp"

namespace dermcds::converter {

// How the converter's measurements run TFLite (the int8 search, the fp16 selection): xnnpack:
// XNNPACK with its int8 operators (QS8); else TFLite's own kernels, or for a float model
// XNNPACK's float operators (`float_reference`), which are faster.
runtimes::tflite::RunnerOptions measurement_runner_options(bool xnnpack, bool float_reference);

// Quantizes a copy of `float_model` per `plan`; float operators' large weights are stored as
// float16 (as at fp16: XNNPACK folds the DEQUANTIZE into its packed weights).
TflModel build_int8_model(const TflModel& float_model, const std::map<int, TensorRange>& ranges, const Int8Plan& plan,
                          QuantizeReport* report = nullptr);

// Operators XNNPACK in TF 2.9 runs in float but not in int8 (measured with ModelRunner's
// undelegated list: an int8 MEAN or RESHAPE stays on TFLite's own kernels).
inline bool xnnpack_lacks_int8(BuiltinOperator code) { return code == BuiltinOperator::MEAN || code == BuiltinOperator::RESHAPE; }

class TfliteInt8Evaluator final : public QuantizationEvaluator {
 public:
  // `float_model` after rewrite_for_int8; `samples` NHWC model inputs. `int8_io`: every candidate
  // gets int8 input and output tensors (--int8-io), measured as shipped.
  TfliteInt8Evaluator(const TflModel& float_model, const std::map<int, TensorRange>& ranges, const std::vector<Tensor>& samples,
                      std::function<int(std::span<const double>)> triage, bool int8_io = false);

  const std::vector<QuantizationUnit>& units() const override { return units_; }
  Int8Agreement evaluate(const QuantizationCandidate& candidate, bool all_kernels, std::size_t sample_limit) override;
  Int8Agreement evaluate_only_quantized(std::size_t only_int8, std::size_t sample_limit) override;
  std::size_t model_bytes(const QuantizationCandidate& candidate) override;

  Int8Plan plan_for(const QuantizationCandidate& candidate) const;
  // Operators kept float whatever the candidate: those XNNPACK in TF 2.9 takes in float but not
  // in int8 (MEAN, RESHAPE: int8 would leave them on TFLite's own kernels; in float XNNPACK takes
  // them, with DEQUANTIZE / QUANTIZE around), and those that feed only the model's secondary
  // outputs (the out-of-distribution score, docs/safety.md), which the goal does not measure
  // and which must keep the float model's verdicts.
  const std::vector<std::size_t>& forced_float_operators() const { return forced_float_; }
  std::size_t operator_of(std::size_t unit) const { return unit_operator_[unit]; }

 private:
  Int8Agreement measure(const Int8Plan& plan, bool all_kernels, std::size_t sample_limit);

  const TflModel& model_;
  const std::map<int, TensorRange>& ranges_;
  const std::vector<Tensor>& samples_;
  std::function<int(std::span<const double>)> triage_;
  bool int8_io_;
  std::vector<QuantizationUnit> units_;
  std::vector<std::size_t> unit_operator_;
  std::vector<std::size_t> forced_float_;
  std::vector<std::vector<float>> reference_;  // float model output per sample
};

}  // namespace dermcds::converter
