// From logits to a clinical reading: probabilities, top-k, triage tier.
// Thread safety: reentrant.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "dermcds/manifest.hpp"

namespace dermcds {

// Numerically stable softmax (max subtracted, accumulated in double).
std::vector<float> softmax(std::span<const float> logits);

// Indices of the k largest probabilities, largest first; ties keep the lower index first.
std::vector<int> top_k(std::span<const float> probabilities, int k);

struct TriageDecision {
  std::string tier;
  std::string rule_tier;  // the rule that fired ("" when the default tier applies)
  double score = 0.0;     // summed probability of the firing rule's classes (0 for the default)
  // Distance from the nearest rule's score to that rule's threshold: how far the probabilities
  // would have to move before some rule changes its verdict. Small margins are the images on
  // which two runtimes might disagree.
  double margin = 0.0;
  std::string nearest_rule_tier;
};

// Throws kInvalidPackage if a rule names a class the labels do not have.
TriageDecision decide_triage(std::span<const float> probabilities, const std::vector<Label>& labels, const TriagePolicy& policy);

}  // namespace dermcds
