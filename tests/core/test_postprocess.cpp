#include <cmath>

#include <gtest/gtest.h>

#include "dermcds/error.hpp"
#include "dermcds/postprocess.hpp"

namespace dermcds {
namespace {

std::vector<Label> isic_labels() {
  return {{"MEL", ""}, {"NV", ""}, {"BCC", ""}, {"AK", ""}, {"BKL", ""}, {"DF", ""}, {"VASC", ""}, {"SCC", ""}};
}

TriagePolicy default_policy() {
  return {{{"urgent_referral", {"MEL", "BCC", "SCC"}, 0.30}, {"dermatology_review", {"MEL", "BCC", "SCC", "AK"}, 0.15}}, "routine"};
}

TEST(Softmax, MatchesHandComputedValues) {
  // exp(0) : exp(ln 2) : exp(ln 3) = 1 : 2 : 3
  const std::vector<float> p = softmax(std::vector<float>{0.0f, std::log(2.0f), std::log(3.0f)});
  EXPECT_NEAR(p[0], 1.0 / 6, 1e-7);
  EXPECT_NEAR(p[1], 2.0 / 6, 1e-7);
  EXPECT_NEAR(p[2], 3.0 / 6, 1e-7);
}

TEST(Softmax, StaysFiniteForLargeLogits) {
  const std::vector<float> p = softmax(std::vector<float>{1000.0f, 1001.0f, -1000.0f});
  EXPECT_NEAR(p[0], 1.0 / (1.0 + std::exp(1.0)), 1e-6);
  EXPECT_NEAR(p[1], std::exp(1.0) / (1.0 + std::exp(1.0)), 1e-6);
  EXPECT_EQ(p[2], 0.0f);
}

TEST(TopK, OrdersByProbabilityAndBreaksTiesByIndex) {
  const std::vector<float> p{0.1f, 0.4f, 0.1f, 0.4f};
  EXPECT_EQ(top_k(p, 4), (std::vector<int>{1, 3, 0, 2}));
  EXPECT_EQ(top_k(p, 1), (std::vector<int>{1}));
  EXPECT_TRUE(top_k(p, 0).empty());
  EXPECT_EQ(top_k(p, 9).size(), 4u);
}

TEST(Triage, FirstRuleThatReachesItsThresholdDecides) {
  //                            MEL   NV    BCC   AK    BKL   DF    VASC  SCC
  const std::vector<float> p{0.20f, 0.40f, 0.05f, 0.00f, 0.20f, 0.05f, 0.05f, 0.05f};
  const TriageDecision d = decide_triage(p, isic_labels(), default_policy());
  EXPECT_EQ(d.tier, "urgent_referral");  // 0.20 + 0.05 + 0.05 = 0.30 reaches 0.30
  EXPECT_NEAR(d.score, 0.30, 1e-6);
  EXPECT_NEAR(d.margin, 0.0, 1e-6);
  EXPECT_EQ(d.nearest_rule_tier, "urgent_referral");
}

TEST(Triage, SecondRuleAndMarginToTheNearestThreshold) {
  //                            MEL   NV    BCC   AK    BKL   DF    VASC  SCC
  const std::vector<float> p{0.10f, 0.60f, 0.02f, 0.08f, 0.10f, 0.05f, 0.03f, 0.02f};
  const TriageDecision d = decide_triage(p, isic_labels(), default_policy());
  // malignant 0.14 < 0.30; malignant + AK = 0.22 >= 0.15
  EXPECT_EQ(d.tier, "dermatology_review");
  EXPECT_EQ(d.rule_tier, "dermatology_review");
  EXPECT_NEAR(d.score, 0.22, 1e-6);
  // distances: |0.14 - 0.30| = 0.16, |0.22 - 0.15| = 0.07
  EXPECT_NEAR(d.margin, 0.07, 1e-6);
  EXPECT_EQ(d.nearest_rule_tier, "dermatology_review");
}

TEST(Triage, DefaultTierWhenNoRuleFires) {
  const std::vector<float> p{0.01f, 0.90f, 0.01f, 0.01f, 0.04f, 0.01f, 0.01f, 0.01f};
  const TriageDecision d = decide_triage(p, isic_labels(), default_policy());
  EXPECT_EQ(d.tier, "routine");
  EXPECT_TRUE(d.rule_tier.empty());
  EXPECT_NEAR(d.margin, 0.15 - 0.04, 1e-6);
}

TEST(Triage, RuleNamingAnUnknownClassIsAPackageError) {
  TriagePolicy policy{{{"urgent_referral", {"XYZ"}, 0.3}}, "routine"};
  const std::vector<float> p(8, 0.125f);
  EXPECT_THROW(decide_triage(p, isic_labels(), policy), Error);
}

}  // namespace
}  // namespace dermcds
