#include "dermcds/pipeline/parity_metrics.hpp"

#include <cmath>
#include <cstdio>

#include "dermcds/error.hpp"

namespace dermcds::pipeline {

namespace {

std::string format(const char* pattern, double a, double b) {
  char buffer[128];
  std::snprintf(buffer, sizeof buffer, pattern, a, b);
  return buffer;
}

}  // namespace

Answer make_answer(std::vector<float> probabilities, const Manifest& manifest) {
  if (probabilities.size() != manifest.labels.size())
    throw Error(ErrorCode::kModelMismatch, "an answer has " + std::to_string(probabilities.size()) + " probabilities for " +
                                               std::to_string(manifest.labels.size()) + " labels");
  Answer answer;
  answer.top1 = top_k(probabilities, 1).at(0);
  answer.triage = decide_triage(probabilities, manifest.labels, manifest.triage);
  answer.probabilities = std::move(probabilities);
  return answer;
}

PairMetrics compare_answers(std::span<const std::string> images, std::span<const std::optional<Answer>> reference,
                            std::span<const std::optional<Answer>> candidate, const std::vector<Label>& labels) {
  if (reference.size() != images.size() || candidate.size() != images.size())
    throw Error(ErrorCode::kInternal, "compare_answers: answer lists do not match the image list");
  const std::size_t classes = labels.size();
  PairMetrics m;
  m.per_class.resize(classes);
  for (std::size_t c = 0; c < classes; ++c) m.per_class[c].code = labels[c].code;
  std::vector<double> class_sums(classes, 0.0);
  std::size_t top1_same = 0, triage_same = 0, assessment_same = 0;

  for (std::size_t i = 0; i < images.size(); ++i) {
    if (!reference[i]) continue;
    if (!candidate[i]) {
      ++m.candidate_failures;
      continue;
    }
    const Answer& r = *reference[i];
    const Answer& k = *candidate[i];
    if (r.probabilities.size() != classes || k.probabilities.size() != classes)
      throw Error(ErrorCode::kModelMismatch, images[i] + ": answers do not have one probability per label");
    ++m.images;
    for (std::size_t c = 0; c < classes; ++c) {
      const double d = std::fabs(static_cast<double>(k.probabilities[c]) - static_cast<double>(r.probabilities[c]));
      class_sums[c] += d;
      m.per_class[c].max_abs_diff = std::max(m.per_class[c].max_abs_diff, d);
      if (m.worst_image.empty() || d > m.max_abs_diff) {
        m.max_abs_diff = d;
        m.worst_image = images[i];
      }
    }
    if (r.top1 == k.top1) {
      ++top1_same;
    } else {
      m.top1_disagreements.push_back({images[i], labels[static_cast<std::size_t>(r.top1)].code,
                                      labels[static_cast<std::size_t>(k.top1)].code, r.probabilities[static_cast<std::size_t>(r.top1)],
                                      k.probabilities[static_cast<std::size_t>(k.top1)], r.triage.margin});
    }
    if (!r.assessment.empty() && !k.assessment.empty()) {
      ++m.assessment_images;
      if (r.assessment == k.assessment)
        ++assessment_same;
      else
        m.assessment_disagreements.push_back(
            {images[i], r.assessment, k.assessment, r.ood_score.value_or(0.0f), k.ood_score.value_or(0.0f), r.triage.margin});
    }
    if (r.triage.tier == k.triage.tier) {
      ++triage_same;
    } else {
      m.triage_disagreements.push_back({images[i], r.triage.tier, k.triage.tier, r.triage.score, k.triage.score, r.triage.margin});
    }
  }
  if (m.images > 0) {
    const double n = static_cast<double>(m.images);
    double total = 0;
    for (std::size_t c = 0; c < classes; ++c) {
      m.per_class[c].mean_abs_diff = class_sums[c] / n;
      total += class_sums[c];
    }
    m.mean_abs_diff = total / (n * static_cast<double>(classes));
    m.top1_agreement = static_cast<double>(top1_same) / n;
    m.triage_agreement = static_cast<double>(triage_same) / n;
    if (m.assessment_images > 0) m.assessment_agreement = static_cast<double>(assessment_same) / static_cast<double>(m.assessment_images);
  }
  return m;
}

BoundCheck check_bounds(const PairMetrics& m, const ParityBounds* bounds, const std::string& bound_key) {
  BoundCheck check;
  if (!bounds) check.violations.push_back("no '" + bound_key + "' bounds in the package's parity policy");
  if (m.images == 0) check.violations.push_back("no image was answered by both runtimes");
  if (m.candidate_failures > 0)
    check.violations.push_back(std::to_string(m.candidate_failures) + " image(s) answered by the reference but not by the candidate");
  if (bounds && m.images > 0) {
    if (bounds->max_abs_diff && m.max_abs_diff > *bounds->max_abs_diff)
      check.violations.push_back(format("max |dp| %.6g > %.6g", m.max_abs_diff, *bounds->max_abs_diff));
    if (bounds->mean_abs_diff && m.mean_abs_diff > *bounds->mean_abs_diff)
      check.violations.push_back(format("mean |dp| %.6g > %.6g", m.mean_abs_diff, *bounds->mean_abs_diff));
    if (bounds->min_top1_agreement && m.top1_agreement < *bounds->min_top1_agreement)
      check.violations.push_back(format("top-1 agreement %.4f < %.4f", m.top1_agreement, *bounds->min_top1_agreement));
    if (bounds->min_triage_agreement && m.triage_agreement < *bounds->min_triage_agreement)
      check.violations.push_back(format("triage agreement %.4f < %.4f", m.triage_agreement, *bounds->min_triage_agreement));
  }
  check.passed = check.violations.empty();
  return check;
}

}  // namespace dermcds::pipeline
