// Sensitivity analysis and automatic mixed precision for int8, independent of the model format.
//
// The search works on "units" (operators that compute, numbered by the caller) and an evaluator
// that, given which units stay float and how a few tensors take their range, builds the
// quantized model and measures how far its outputs are from the float model's on the analysis
// samples. The TFLite converter supplies one (tflite_int8_evaluator.hpp); an ONNX QDQ writer
// can supply another and reuse everything here.
//
// What is measured (Agreement) is what the product promises: mean |p_int8 - p_float| over all
// classes of all samples, top-1 agreement and triage agreement (when the caller gives a triage
// function). The goal (dermcds::converter::Int8Goal) is met when all three hold.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "dermcds/converter.hpp"

namespace dermcds::converter {

// Probabilities from a model output: softmax, unless the output already is a distribution.
std::vector<double> output_probabilities(std::span<const float> output);

// Accumulates the agreement between reference and candidate outputs, sample by sample.
class AgreementCounter {
 public:
  explicit AgreementCounter(std::function<int(std::span<const double>)> triage = {}) : triage_(std::move(triage)) {}
  void add(std::span<const float> reference_output, std::span<const float> candidate_output);
  Int8Agreement result() const;

 private:
  std::function<int(std::span<const double>)> triage_;
  Int8Agreement a_;
  double total_abs_ = 0;
  std::size_t values_ = 0, top1_ = 0, triage_same_ = 0;
};

bool meets(const Int8Agreement& a, const Int8Goal& goal);
// The goal tightened by `margin` (0..1): the selection runs on the calibration samples, so it
// aims further than the goal it must hold on unseen images.
Int8Goal tightened(const Int8Goal& goal, double margin);
// One number for ordering candidates: the worst ratio of a figure to its allowance in the goal.
double badness(const Int8Agreement& a, const Int8Goal& goal);

struct QuantizationUnit {
  std::string op;      // operator type, e.g. CONV_2D
  std::string output;  // name of the tensor it writes
  int output_tensor = -1;
};

struct QuantizationCandidate {
  std::set<std::size_t> float_units;
  std::map<std::size_t, CalibrationMethod> output_methods;  // unit -> range method of its output
  // Range method of every other activation; unset: the calibration's (CalibrationOptions::method).
  std::optional<CalibrationMethod> method;
  bool bias_correction = false;
};

class QuantizationEvaluator {
 public:
  virtual ~QuantizationEvaluator() = default;
  virtual const std::vector<QuantizationUnit>& units() const = 0;
  // Agreement of the candidate with the float model. `all_kernels`: the worst over every kernel
  // set the model must hold on (XNNPACK and the runtime's own), else the fastest one only.
  // `sample_limit` (0 = all) trades precision for time in the sensitivity sweep.
  virtual Int8Agreement evaluate(const QuantizationCandidate& candidate, bool all_kernels, std::size_t sample_limit) = 0;
  // The same candidate with every unit float except `only_int8` (the sweep's other half).
  virtual Int8Agreement evaluate_only_quantized(std::size_t only_int8, std::size_t sample_limit) = 0;
  // Bytes the model written for `candidate` takes (what the size limit bounds).
  virtual std::size_t model_bytes(const QuantizationCandidate& candidate) = 0;
};

struct AnalysisOptions {
  Int8Goal goal;
  double margin = 0.7;                                             // selection aims at goal tightened by this much
  bool mixed_precision = true;                                     // keep units float until the goal is met
  bool full_table = false;                                         // also "only this unit float" for every unit (the report)
  std::size_t sweep_samples = 16;                                  // samples per evaluation in the sensitivity sweep (ordering only)
  std::size_t tuned_tensors = 4;                                   // most sensitive outputs whose range method is chosen by measurement
  std::size_t max_float_units = 0;                                 // 0: half of the units
  std::size_t max_model_bytes = 0;                                 // 0: no limit; a unit whose float weights would pass it stays int8
  CalibrationMethod calibration_method = CalibrationMethod::kMse;  // the one TensorRange::min/max hold
  std::function<void(const std::string&)> progress;
};

struct AnalysisResult {
  QuantizationCandidate chosen;
  Int8Agreement full_int8;  // every unit int8, default ranges, all kernels
  Int8Agreement chosen_agreement;
  bool goal_met = false;
  std::vector<Int8Sensitivity> table;  // by unit
};

AnalysisResult analyse_and_choose(QuantizationEvaluator& evaluator, const AnalysisOptions& options);

}  // namespace dermcds::converter
