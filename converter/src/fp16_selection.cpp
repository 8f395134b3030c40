#include "fp16_selection.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "dermcds/error.hpp"
#include "dermcds/tflite_model_runner.hpp"
#include "fp16_weights.hpp"
#include "int8_analysis.hpp"
#include "tflite_int8_evaluator.hpp"
#include "tflite_writer.hpp"

namespace dermcds::converter {

namespace {

std::vector<std::vector<float>> outputs(std::vector<std::uint8_t> bytes, const std::vector<Tensor>& samples, const char* origin) {
  // XNNPACK's float operators, as the mobile backend runs the fp16 artifact.
  runtimes::tflite::ModelRunner runner(std::move(bytes), measurement_runner_options(false, true), origin);
  std::vector<std::vector<float>> out;
  for (const Tensor& s : samples) {
    runner.set_input_values(0, s.data);
    runner.invoke();
    out.push_back(runner.output_values(0));
  }
  return out;
}

}  // namespace

Fp16Selection choose_float32_weights(const TflModel& model, std::int64_t min_elements, const std::vector<Tensor>& samples,
                                     const Fp16Options& options, const std::function<void(const std::string&)>& progress) {
  if (samples.empty()) throw Error(ErrorCode::kInvalidArgument, "the fp16 selection needs at least one calibration sample");
  const std::vector<std::vector<float>> reference = outputs(serialize_tflite(model), samples, "float32 model");

  // Smallest first; among equals, the earlier tensor (nearer the input) first.
  std::vector<int> order = fp16_candidates(model, min_elements);
  const auto elements = [&](int t) { return model.tensors[static_cast<std::size_t>(t)].element_count(); };
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return elements(a) < elements(b); });
  const double total = std::accumulate(order.begin(), order.end(), 0.0, [&](double sum, int t) { return sum + elements(t); });

  const auto measure = [&](const std::set<int>& keep) {
    TflModel candidate = model;
    store_weights_as_fp16(candidate, min_elements, keep);
    const std::vector<std::vector<float>> got = outputs(serialize_tflite(candidate), samples, "fp16 candidate");
    AgreementCounter counter;
    for (std::size_t i = 0; i < samples.size(); ++i) counter.add(reference[i], got[i]);
    return counter.result().max_abs_diff;
  };

  // Each step doubles what may stay float32; the last is the limit itself.
  std::vector<double> fractions{0};
  for (double f = options.max_float32_fraction / 16; f < options.max_float32_fraction; f *= 2) fractions.push_back(f);
  if (options.max_float32_fraction > 0) fractions.push_back(options.max_float32_fraction);

  Fp16Selection best;
  std::size_t previous_kept = 0;
  for (const double fraction : fractions) {
    std::set<int> keep;
    double kept_elements = 0;
    for (const int t : order) {
      if (kept_elements + static_cast<double>(elements(t)) > fraction * total) break;
      kept_elements += static_cast<double>(elements(t));
      keep.insert(t);
    }
    if (fraction > 0 && keep.size() == previous_kept) continue;  // the same set as the step before
    previous_kept = keep.size();
    const double diff = measure(keep);
    if (fraction == 0) best.all_rounded_max_abs_diff = diff;
    if (fraction == 0 || diff < best.chosen_max_abs_diff) {
      best.chosen_max_abs_diff = diff;
      best.float32_tensors = keep;
    }
    if (progress) {
      char line[160];
      std::snprintf(line, sizeof line, "fp16: %zu of %zu weight tensors float32 (%.2f%% of their elements): max |dp| %.2g on %zu samples",
                    keep.size(), order.size(), 100 * kept_elements / std::max(total, 1.0), diff, samples.size());
      progress(line);
    }
    // Within the goal, after steps that were not: the smallest so far, chosen above.
    if (diff <= options.max_abs_diff) {
      best.goal_met = true;
      break;
    }
  }
  return best;
}

}  // namespace dermcds::converter
