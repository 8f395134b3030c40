// dermcds_result_*: read-only views of a ClassificationResult. A NULL result or an index out of
// range gives NULL (strings), 0 (counts) or -1 (probabilities): these accessors cannot fail in a
// way a status would help with.
#include <limits>

#include "objects.hpp"

extern "C" {

void dermcds_result_free(dermcds_result* result) { delete result; }

size_t dermcds_result_class_count(const dermcds_result* result) { return result ? result->result.labels.size() : 0; }

const char* dermcds_result_class_code(const dermcds_result* result, size_t index) {
  if (!result || index >= result->result.labels.size()) return nullptr;
  return result->result.labels[index].code.c_str();
}

const char* dermcds_result_class_name(const dermcds_result* result, size_t index) {
  if (!result || index >= result->result.labels.size()) return nullptr;
  return result->result.labels[index].name.c_str();
}

float dermcds_result_probability(const dermcds_result* result, size_t index) {
  if (!result || index >= result->result.probabilities.size()) return -1.0f;
  return result->result.probabilities[index];
}

const float* dermcds_result_probabilities(const dermcds_result* result) { return result ? result->result.probabilities.data() : nullptr; }

size_t dermcds_result_top1(const dermcds_result* result) {
  return result && result->result.top1 >= 0 ? static_cast<size_t>(result->result.top1) : 0;
}

const char* dermcds_result_triage_tier(const dermcds_result* result) { return result ? result->result.triage.tier.c_str() : nullptr; }
const char* dermcds_result_model_name(const dermcds_result* result) { return result ? result->result.model_name.c_str() : nullptr; }
const char* dermcds_result_model_version(const dermcds_result* result) { return result ? result->result.model_version.c_str() : nullptr; }
const char* dermcds_result_runtime(const dermcds_result* result) { return result ? result->result.runtime.c_str() : nullptr; }
const char* dermcds_result_runtime_version(const dermcds_result* result) {
  return result ? result->result.runtime_version.c_str() : nullptr;
}
const char* dermcds_result_provider(const dermcds_result* result) { return result ? result->result.provider.c_str() : nullptr; }
const char* dermcds_result_precision(const dermcds_result* result) { return result ? result->result.precision.c_str() : nullptr; }

size_t dermcds_result_fallback_count(const dermcds_result* result) { return result ? result->result.fallbacks.size() : 0; }

const char* dermcds_result_fallback(const dermcds_result* result, size_t index) {
  if (!result || index >= result->result.fallbacks.size()) return nullptr;
  return result->result.fallbacks[index].c_str();
}

int dermcds_result_assessable(const dermcds_result* result) { return result && result->result.assessment.assessable() ? 1 : 0; }

const char* dermcds_result_assessment_status(const dermcds_result* result) {
  // status() views a string literal: safe to hand out for the result's lifetime.
  return result ? result->result.assessment.status().data() : nullptr;
}

size_t dermcds_result_reason_count(const dermcds_result* result) { return result ? result->result.assessment.reasons.size() : 0; }

namespace {
const dermcds::AssessmentReason* reason_at(const dermcds_result* result, size_t index) {
  if (!result || index >= result->result.assessment.reasons.size()) return nullptr;
  return &result->result.assessment.reasons[index];
}
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

const char* dermcds_result_reason_code(const dermcds_result* result, size_t index) {
  const auto* reason = reason_at(result, index);
  return reason ? reason->code.c_str() : nullptr;
}
double dermcds_result_reason_score(const dermcds_result* result, size_t index) {
  const auto* reason = reason_at(result, index);
  return reason ? reason->score : kNaN;
}
double dermcds_result_reason_threshold(const dermcds_result* result, size_t index) {
  const auto* reason = reason_at(result, index);
  return reason ? reason->threshold : kNaN;
}
const char* dermcds_result_reason_message(const dermcds_result* result, size_t index) {
  const auto* reason = reason_at(result, index);
  return reason ? reason->message.c_str() : nullptr;
}
double dermcds_result_ood_score(const dermcds_result* result) {
  return result && result->result.ood_score ? static_cast<double>(*result->result.ood_score) : kNaN;
}

const char* dermcds_result_json(const dermcds_result* result) { return result ? result->json.c_str() : nullptr; }

}  // extern "C"
