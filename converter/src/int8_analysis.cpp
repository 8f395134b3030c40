#include "int8_analysis.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace dermcds::converter {

std::vector<double> output_probabilities(std::span<const float> output) {
  std::vector<double> p(output.begin(), output.end());
  double sum = 0;
  bool distribution = !p.empty();
  for (double v : p) {
    distribution = distribution && v >= 0 && v <= 1;
    sum += v;
  }
  if (distribution && std::fabs(sum - 1) < 1e-3) return p;
  const double top = p.empty() ? 0 : *std::max_element(p.begin(), p.end());
  sum = 0;
  for (double& v : p) sum += (v = std::exp(v - top));
  for (double& v : p) v /= sum;
  return p;
}

void AgreementCounter::add(std::span<const float> reference_output, std::span<const float> candidate_output) {
  const std::vector<double> p = output_probabilities(reference_output), q = output_probabilities(candidate_output);
  for (std::size_t k = 0; k < p.size() && k < q.size(); ++k) {
    const double d = std::fabs(p[k] - q[k]);
    total_abs_ += d;
    a_.max_abs_diff = std::max(a_.max_abs_diff, d);
    ++values_;
  }
  const auto argmax = [](const std::vector<double>& v) { return std::max_element(v.begin(), v.end()) - v.begin(); };
  top1_ += argmax(p) == argmax(q);
  triage_same_ += triage_ ? triage_(p) == triage_(q) : 1;
  ++a_.samples;
}

Int8Agreement AgreementCounter::result() const {
  Int8Agreement a = a_;
  if (a.samples == 0) return a;
  a.mean_abs_diff = values_ ? total_abs_ / static_cast<double>(values_) : 0;
  a.top1_agreement = static_cast<double>(top1_) / static_cast<double>(a.samples);
  a.triage_agreement = static_cast<double>(triage_same_) / static_cast<double>(a.samples);
  return a;
}

bool meets(const Int8Agreement& a, const Int8Goal& goal) {
  return a.mean_abs_diff <= goal.max_mean_abs_diff && a.top1_agreement >= goal.min_top1_agreement &&
         a.triage_agreement >= goal.min_triage_agreement;
}

Int8Goal tightened(const Int8Goal& goal, double margin) {
  Int8Goal g = goal;
  g.max_mean_abs_diff *= 1 - margin;
  g.min_top1_agreement = 1 - (1 - goal.min_top1_agreement) * (1 - margin);
  g.min_triage_agreement = 1 - (1 - goal.min_triage_agreement) * (1 - margin);
  return g;
}

double badness(const Int8Agreement& a, const Int8Goal& goal) {
  // The mean is the smooth figure that orders candidates; the agreements (counts of flips) break
  // ties and dominate once they exceed their allowance.
  const double mean = a.mean_abs_diff / std::max(1e-9, goal.max_mean_abs_diff);
  const double top1 = (1 - a.top1_agreement) / std::max(1e-9, 1 - goal.min_top1_agreement);
  const double triage = (1 - a.triage_agreement) / std::max(1e-9, 1 - goal.min_triage_agreement);
  return std::max({mean, top1, triage}) + 1e-3 * (mean + top1 + triage);
}

namespace {

void say(const AnalysisOptions& o, const std::string& line) {
  if (o.progress) o.progress(line);
}

std::string figures(const Int8Agreement& a) {
  char text[160];
  std::snprintf(text, sizeof text, "mean |dp| %.4f, top-1 %.1f%%, triage %.1f%%", a.mean_abs_diff, 100 * a.top1_agreement,
                100 * a.triage_agreement);
  return text;
}

}  // namespace

AnalysisResult analyse_and_choose(QuantizationEvaluator& evaluator, const AnalysisOptions& options) {
  AnalysisResult result;
  const std::vector<QuantizationUnit>& units = evaluator.units();
  const Int8Goal aim = tightened(options.goal, options.margin);
  result.table.resize(units.size());
  for (std::size_t u = 0; u < units.size(); ++u) {
    result.table[u].unit = u;
    result.table[u].op = units[u].op;
    result.table[u].output = units[u].output;
  }

  QuantizationCandidate current;
  result.full_int8 = evaluator.evaluate(current, true, 0);
  say(options, "int8 analysis: full integer: " + figures(result.full_int8));
  Int8Agreement now = evaluator.evaluate(current, false, 0);
  say(options, "int8 analysis: full integer, XNNPACK: " + figures(now));

  // Bias correction: kept when it measures better.
  {
    QuantizationCandidate corrected = current;
    corrected.bias_correction = true;
    const Int8Agreement a = evaluator.evaluate(corrected, false, 0);
    say(options, "int8 analysis: with bias correction: " + figures(a));
    if (badness(a, aim) < badness(now, aim)) current = corrected, now = a;
  }

  // Nothing to search when full integer already meets the goal (and no table is asked for).
  const bool sweep = options.full_table || (options.mixed_precision && !meets(now, aim));
  // Sensitivity: the error each unit adds when it alone is int8 (every other unit float). Its
  // own rounding is measured with nothing else in the way, which orders the units far more
  // clearly than the small change of the whole model's error when one unit alone stays float
  // (measured on MobileNetV3-Large: 0.0000-0.0071 against noise of +-0.002, docs/converter.md).
  std::vector<double> benefit(units.size(), 0.0);
  if (sweep) {
    for (std::size_t u = 0; u < units.size(); ++u) {
      result.table[u].only_quantized = evaluator.evaluate_only_quantized(u, options.sweep_samples);
      benefit[u] = result.table[u].only_quantized.mean_abs_diff + 1e-3 * (1 - result.table[u].only_quantized.top1_agreement);
      if (options.full_table) {
        QuantizationCandidate c = current;
        c.float_units.insert(u);
        result.table[u].only_float = evaluator.evaluate(c, false, options.sweep_samples);
      }
      if ((u + 1) % 20 == 0 || u + 1 == units.size())
        say(options, "int8 analysis: sensitivity " + std::to_string(u + 1) + "/" + std::to_string(units.size()) + " operators");
    }
  }
  std::vector<std::size_t> order(units.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return benefit[a] > benefit[b]; });

  // Range method per tensor, by measured error, for the outputs that matter most.
  if (sweep) {
    for (std::size_t k = 0; k < std::min(options.tuned_tensors, order.size()); ++k) {
      const std::size_t u = order[k];
      if (benefit[u] <= 0) break;
      CalibrationMethod best_method = CalibrationMethod::kMse;
      bool found = false;
      for (CalibrationMethod m : {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile, CalibrationMethod::kMse}) {
        QuantizationCandidate c = current;
        c.output_methods[u] = m;
        const Int8Agreement a = evaluator.evaluate(c, false, 0);
        if (badness(a, aim) < badness(now, aim)) now = a, best_method = m, found = true;
      }
      if (found) current.output_methods[u] = best_method;
    }
    say(options, "int8 analysis: per-tensor range methods chosen: " + figures(now));
  }

  // Mixed precision: the units float in order of their own error, the shortest prefix of that
  // order that meets the aim on all kernels. The error falls roughly monotonically with the
  // prefix, so the prefix is found by bisection (about log2(units) measurements; adding units
  // one at a time took 81 measurements and 12 minutes on MobileNetV3-Large). Units whose float
  // weights would pass the size limit are passed over.
  bool now_all_kernels = false;  // whether `now` was measured on every kernel set
  if (options.mixed_precision && !meets(now, aim)) {
    const std::size_t limit = options.max_float_units ? options.max_float_units : std::max<std::size_t>(1, units.size() / 2);
    std::vector<std::size_t> eligible;  // the order, without units of no measured benefit
    for (std::size_t u : order)
      if (benefit[u] > 0 && !current.float_units.count(u) && eligible.size() < limit) eligible.push_back(u);
    // Greedily, in that order, the units whose float weights still fit the size limit: prefix k
    // is the first k of them (one pass of size checks instead of one per prefix and step).
    std::vector<std::size_t> fitting;
    {
      QuantizationCandidate c = current;
      for (std::size_t u : eligible) {
        QuantizationCandidate next = c;
        next.float_units.insert(u);
        if (options.max_model_bytes && evaluator.model_bytes(next) > options.max_model_bytes) continue;
        c = std::move(next);
        fitting.push_back(u);
      }
    }
    QuantizationCandidate base = current;
    const auto prefix = [&](std::size_t k) {
      QuantizationCandidate c = base;
      c.float_units.insert(fitting.begin(), fitting.begin() + static_cast<std::ptrdiff_t>(std::min(k, fitting.size())));
      return c;
    };
    std::size_t lo = 0, hi = fitting.size();  // aim missed at lo (measured above); hi is the bound
    // The range method of the activations, measured where it matters: with the most units float.
    // Which method clips best depends on the checkpoint (seed 2 of the demo recipe, 65 units
    // float: mse 0.0119, min/max 0.0284, percentile 0.0061 mean |dp|; docs/converter.md), and
    // the full-integer figures point elsewhere (there mse was the best of the three).
    QuantizationCandidate best = prefix(hi);
    Int8Agreement best_agreement = evaluator.evaluate(best, true, 0);
    say(options, "int8 analysis: " + std::to_string(best.float_units.size()) + " operators float (the most allowed), " +
                     std::string(to_string(options.calibration_method)) + " ranges: " + figures(best_agreement));
    for (CalibrationMethod m : {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile, CalibrationMethod::kMse}) {
      if (m == options.calibration_method) continue;
      QuantizationCandidate c = best;
      c.method = m;
      const Int8Agreement a = evaluator.evaluate(c, true, 0);
      say(options, "int8 analysis: the same, " + std::string(to_string(m)) + " ranges: " + figures(a));
      if (badness(a, aim) < badness(best_agreement, aim)) best = c, best_agreement = a, base.method = m;
    }
    if (meets(best_agreement, aim)) {
      while (hi - lo > 1) {
        const std::size_t mid = (lo + hi) / 2;
        const QuantizationCandidate c = prefix(mid);
        const Int8Agreement a = evaluator.evaluate(c, true, 0);
        say(options, "int8 analysis: " + std::to_string(c.float_units.size()) + " operators float: " + figures(a));
        if (meets(a, aim))
          hi = mid, best = c, best_agreement = a;
        else
          lo = mid;
      }
    }
    current = best;
    now = best_agreement;
    now_all_kernels = true;
  }

  result.chosen = current;
  result.chosen_agreement = now_all_kernels ? now : evaluator.evaluate(current, true, 0);
  result.goal_met = meets(result.chosen_agreement, aim);
  for (std::size_t u : current.float_units) result.table[u].kept_float = true;
  say(options, "int8 analysis: " + std::to_string(current.float_units.size()) + " operator(s) float: " + figures(result.chosen_agreement) +
                   (result.goal_met ? " (goal met with margin)" : " (goal NOT met)"));
  return result;
}

}  // namespace dermcds::converter
