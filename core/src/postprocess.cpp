#include "dermcds/postprocess.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "dermcds/error.hpp"

namespace dermcds {

std::vector<float> softmax(std::span<const float> logits) {
  std::vector<float> out(logits.size());
  if (logits.empty()) return out;
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  std::vector<double> exps(logits.size());
  for (std::size_t i = 0; i < logits.size(); ++i) sum += exps[i] = std::exp(static_cast<double>(logits[i]) - max);
  for (std::size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<float>(exps[i] / sum);
  return out;
}

std::vector<int> top_k(std::span<const float> probabilities, int k) {
  std::vector<int> order(probabilities.size());
  std::iota(order.begin(), order.end(), 0);
  const auto count = static_cast<std::size_t>(std::clamp<int>(k, 0, static_cast<int>(order.size())));
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(count), order.end(),
                    [&](int a, int b) { return probabilities[a] > probabilities[b] || (probabilities[a] == probabilities[b] && a < b); });
  order.resize(count);
  return order;
}

TriageDecision decide_triage(std::span<const float> probabilities, const std::vector<Label>& labels, const TriagePolicy& policy) {
  if (probabilities.size() != labels.size())
    throw Error(ErrorCode::kInternal,
                "triage got " + std::to_string(probabilities.size()) + " probabilities for " + std::to_string(labels.size()) + " labels");
  TriageDecision decision;
  decision.tier = policy.default_tier;
  decision.margin = std::numeric_limits<double>::infinity();
  for (const TriageRule& rule : policy.rules) {
    double score = 0.0;
    for (const std::string& code : rule.classes) {
      auto it = std::find_if(labels.begin(), labels.end(), [&](const Label& l) { return l.code == code; });
      if (it == labels.end()) throw Error(ErrorCode::kInvalidPackage, "triage rule '" + rule.tier + "' names unknown class " + code);
      score += probabilities[static_cast<std::size_t>(it - labels.begin())];
    }
    if (decision.rule_tier.empty() && score >= rule.threshold) {
      decision.tier = decision.rule_tier = rule.tier;
      decision.score = score;
    }
    const double distance = std::abs(score - rule.threshold);
    if (distance < decision.margin) {
      decision.margin = distance;
      decision.nearest_rule_tier = rule.tier;
    }
  }
  if (policy.rules.empty()) decision.margin = 1.0;  // nothing to cross: the tier cannot change
  return decision;
}

}  // namespace dermcds
