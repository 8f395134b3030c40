// Comparing two runtimes' answers on the same images: the numbers a parity report is made of.
//
// Pure functions over probabilities already computed, so they can be checked against
// hand-computed values without any runtime. Thread safety: reentrant.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dermcds/manifest.hpp"
#include "dermcds/pipeline/parity_policy.hpp"
#include "dermcds/postprocess.hpp"

namespace dermcds::pipeline {

// One runtime's answer for one image.
struct Answer {
  std::vector<float> probabilities;  // manifest label order
  int top1 = -1;
  TriageDecision triage;  // from the probabilities alone, whatever the assessment says
  // "assessable" / "not_assessable" (docs/safety.md); empty where the subject gives none.
  std::string assessment;
  bool quality_flagged = false;    // some photograph check failed (the same for every runtime)
  std::optional<float> ood_score;  // the guard output behind `assessment`, where there is one
};

// Probabilities -> top-1 and triage with the package's labels and triage policy.
Answer make_answer(std::vector<float> probabilities, const Manifest& manifest);

struct ClassDifference {
  std::string code;
  double max_abs_diff = 0;
  double mean_abs_diff = 0;
};

// An image on which the two runtimes gave different top-1 classes or triage tiers.
struct Disagreement {
  std::string image;
  std::string reference;  // the reference's class code or tier
  std::string candidate;
  // top-1 probability, the firing rule's summed probability, or (assessment) the guard score
  double reference_score = 0;
  double candidate_score = 0;
  double reference_margin = 0;  // triage: the reference's distance to the nearest threshold
};

struct PairMetrics {
  std::size_t images = 0;              // compared: both runtimes answered
  std::size_t candidate_failures = 0;  // images the reference answered and the candidate did not
  double max_abs_diff = 0;
  double mean_abs_diff = 0;
  std::string worst_image;  // where max_abs_diff was seen
  std::vector<ClassDifference> per_class;
  double top1_agreement = 0;    // fraction of compared images
  double triage_agreement = 0;  // fraction of compared images
  std::vector<Disagreement> top1_disagreements;
  std::vector<Disagreement> triage_disagreements;
  // Images where both subjects gave an assessment status, and the fraction where it was the same.
  std::size_t assessment_images = 0;
  double assessment_agreement = 1.0;
  std::vector<Disagreement> assessment_disagreements;
};

// Compares answers image by image. `reference` and `candidate` are parallel to `images`; an empty
// optional is an image that runtime could not answer. Images the reference could not answer are
// left out; those only the candidate could not answer count as candidate_failures.
PairMetrics compare_answers(std::span<const std::string> images, std::span<const std::optional<Answer>> reference,
                            std::span<const std::optional<Answer>> candidate, const std::vector<Label>& labels);

struct BoundCheck {
  bool passed = false;
  std::vector<std::string> violations;  // "max |dp| 0.0213 > 0.01", one per broken bound
};

// A pair with no bounds, no compared images or candidate failures does not pass.
BoundCheck check_bounds(const PairMetrics& metrics, const ParityBounds* bounds, const std::string& bound_key);

}  // namespace dermcds::pipeline
