#include "dermcds/result.hpp"

#include <cmath>

namespace dermcds {

namespace {
// Probabilities and timings are reported to a precision that is meaningful, so that JSON
// stays readable and diffs between runs show real changes, not float noise.
double rounded(double value, double scale) { return std::round(value * scale) / scale; }
}  // namespace

nlohmann::ordered_json to_json(const ClassificationResult& r) {
  using json = nlohmann::ordered_json;
  json classes = json::array();
  for (std::size_t i = 0; i < r.labels.size(); ++i)
    classes.push_back({{"code", r.labels[i].code}, {"name", r.labels[i].name}, {"probability", rounded(r.probabilities[i], 1e7)}});

  json out;
  out["model_name"] = r.model_name;
  out["model_version"] = r.model_version;
  out["runtime"] = r.runtime;
  out["runtime_version"] = r.runtime_version;
  out["execution_provider"] = r.provider;
  out["precision"] = r.precision;
  out["probabilities"] = std::move(classes);
  if (r.top1 >= 0 && static_cast<std::size_t>(r.top1) < r.labels.size()) {
    const auto i = static_cast<std::size_t>(r.top1);
    out["top1"] = {{"code", r.labels[i].code}, {"name", r.labels[i].name}, {"probability", rounded(r.probabilities[i], 1e7)}};
  }
  json reasons = json::array();
  for (const AssessmentReason& reason : r.assessment.reasons)
    reasons.push_back({{"code", reason.code},
                       {"score", rounded(reason.score, 1e6)},
                       {"threshold", rounded(reason.threshold, 1e6)},
                       {"message", reason.message}});
  out["assessment"] = {{"status", r.assessment.status()}, {"reasons", std::move(reasons)}};
  out["ood_score"] = r.ood_score ? json(rounded(*r.ood_score, 1e6)) : json(nullptr);
  out["triage"] = {{"tier", r.triage.tier},
                   {"rule", r.triage.rule_tier.empty() ? json(nullptr) : json(r.triage.rule_tier)},
                   {"score", rounded(r.triage.score, 1e7)},
                   {"margin", rounded(r.triage.margin, 1e7)},
                   {"nearest_threshold_rule", r.triage.nearest_rule_tier}};
  out["timings_ms"] = {{"decode", rounded(r.timings.decode_ms, 1e3)},
                       {"preprocess", rounded(r.timings.preprocess_ms, 1e3)},
                       {"inference", rounded(r.timings.inference_ms, 1e3)},
                       {"postprocess", rounded(r.timings.postprocess_ms, 1e3)},
                       {"total", rounded(r.timings.total_ms(), 1e3)}};
  out["batch_size"] = r.batch_size;
  out["fallbacks"] = r.fallbacks;
  return out;
}

}  // namespace dermcds
