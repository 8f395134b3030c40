// The answer derm-cds gives for one image, and its JSON form (documented in docs/result.md).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "dermcds/assessment.hpp"
#include "dermcds/manifest.hpp"
#include "dermcds/postprocess.hpp"

namespace dermcds {

struct StageTimings {
  double decode_ms = 0;
  double preprocess_ms = 0;
  double inference_ms = 0;  // for a batched run: the whole batch's inference time
  double postprocess_ms = 0;
  double total_ms() const { return decode_ms + preprocess_ms + inference_ms + postprocess_ms; }
};

struct ClassificationResult {
  std::string model_name;
  std::string model_version;
  std::string runtime;
  std::string runtime_version;
  std::string provider;  // execution provider that actually ran
  std::string precision;
  std::vector<Label> labels;         // manifest order
  std::vector<float> probabilities;  // same order as labels
  int top1 = -1;                     // index into labels
  TriageDecision triage;             // tier is kNotAssessableTier when the assessment says so
  Assessment assessment;
  std::optional<float> ood_score;  // the model's guard output; none for a package without it
  StageTimings timings;
  int batch_size = 1;                  // images in the inference that produced this result
  std::vector<std::string> fallbacks;  // providers asked for but not used, and why
};

nlohmann::ordered_json to_json(const ClassificationResult& result);

}  // namespace dermcds
