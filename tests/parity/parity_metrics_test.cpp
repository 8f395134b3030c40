// Parity metrics and policy against values computed by hand.
#include <gtest/gtest.h>

#include <fstream>

#include "dermcds/error.hpp"
#include "dermcds/pipeline/parity_metrics.hpp"
#include "dermcds/pipeline/parity_policy.hpp"
#include "dermcds/pipeline/parity_report.hpp"
#include "manifest_fixture.hpp"
#include "test_support.hpp"

namespace dermcds::pipeline {
namespace {

Manifest isic_manifest() { return parse_manifest(test::valid_manifest(), "test"); }

// Probabilities in label order MEL NV BCC AK BKL DF VASC SCC.
Answer answer(const std::vector<float>& p) { return make_answer(p, isic_manifest()); }

struct Fixture {
  std::vector<std::string> images{"a.jpg", "b.png", "c.jpg", "d.jpg"};
  std::vector<std::optional<Answer>> reference, candidate;
  Fixture() {
    // a: urgent referral on both sides (MEL+BCC+SCC 0.57 vs 0.56); MEL and NV move by 0.01.
    reference.push_back(answer({0.50f, 0.30f, 0.05f, 0.05f, 0.04f, 0.02f, 0.02f, 0.02f}));
    candidate.push_back(answer({0.49f, 0.31f, 0.05f, 0.05f, 0.04f, 0.02f, 0.02f, 0.02f}));
    // b: review (MEL+BCC+SCC+AK = 0.17) against routine (0.14); MEL and NV move by 0.03.
    reference.push_back(answer({0.12f, 0.78f, 0.02f, 0.02f, 0.03f, 0.01f, 0.01f, 0.01f}));
    candidate.push_back(answer({0.09f, 0.81f, 0.02f, 0.02f, 0.03f, 0.01f, 0.01f, 0.01f}));
    // c: the reference could not answer: left out.
    reference.emplace_back(std::nullopt);
    candidate.push_back(answer({0.9f, 0.1f, 0, 0, 0, 0, 0, 0}));
    // d: only the candidate failed.
    reference.push_back(answer({0.1f, 0.9f, 0, 0, 0, 0, 0, 0}));
    candidate.emplace_back(std::nullopt);
  }
};

TEST(ParityMetrics, MatchHandComputedValues) {
  const Fixture f;
  const PairMetrics m = compare_answers(f.images, f.reference, f.candidate, isic_manifest().labels);
  EXPECT_EQ(m.images, 2u);
  EXPECT_EQ(m.candidate_failures, 1u);
  EXPECT_NEAR(m.max_abs_diff, 0.03, 1e-6);
  EXPECT_EQ(m.worst_image, "b.png");
  // Four differences of 0.01 and 0.03 over 2 images x 8 classes: (0.01 + 0.01 + 0.03 + 0.03) / 16.
  EXPECT_NEAR(m.mean_abs_diff, 0.08 / 16, 1e-7);
  ASSERT_EQ(m.per_class.size(), 8u);
  EXPECT_EQ(m.per_class[0].code, "MEL");
  EXPECT_NEAR(m.per_class[0].max_abs_diff, 0.03, 1e-6);
  EXPECT_NEAR(m.per_class[0].mean_abs_diff, 0.02, 1e-6);
  EXPECT_NEAR(m.per_class[1].mean_abs_diff, 0.02, 1e-6);
  for (std::size_t c = 2; c < 8; ++c) EXPECT_EQ(m.per_class[c].max_abs_diff, 0.0) << c;
  EXPECT_DOUBLE_EQ(m.top1_agreement, 1.0);
  EXPECT_DOUBLE_EQ(m.triage_agreement, 0.5);
  ASSERT_EQ(m.triage_disagreements.size(), 1u);
  const Disagreement& d = m.triage_disagreements[0];
  EXPECT_EQ(d.image, "b.png");
  EXPECT_EQ(d.reference, "dermatology_review");
  EXPECT_EQ(d.candidate, "routine");
  EXPECT_NEAR(d.reference_score, 0.17, 1e-6);
  EXPECT_NEAR(d.reference_margin, 0.02, 1e-6);  // 0.17 against the 0.15 threshold
  EXPECT_TRUE(m.top1_disagreements.empty());
}

TEST(ParityMetrics, TopOneDisagreementNamesBothClasses) {
  const std::vector<std::string> images{"x.png"};
  const std::vector<std::optional<Answer>> reference{answer({0.40f, 0.38f, 0.05f, 0.05f, 0.04f, 0.04f, 0.02f, 0.02f})};
  const std::vector<std::optional<Answer>> candidate{answer({0.38f, 0.40f, 0.05f, 0.05f, 0.04f, 0.04f, 0.02f, 0.02f})};
  const PairMetrics m = compare_answers(images, reference, candidate, isic_manifest().labels);
  ASSERT_EQ(m.top1_disagreements.size(), 1u);
  EXPECT_EQ(m.top1_disagreements[0].reference, "MEL");
  EXPECT_EQ(m.top1_disagreements[0].candidate, "NV");
  EXPECT_DOUBLE_EQ(m.top1_agreement, 0.0);
  EXPECT_DOUBLE_EQ(m.triage_agreement, 1.0);  // 0.49 and 0.47 are both urgent
}

TEST(ParityMetrics, AssessmentAgreementCountsOnlyImagesWithAStatusOnBothSides) {
  const std::vector<std::string> images{"a.png", "b.png", "c.png", "d.png"};
  const std::vector<float> p{0.1f, 0.9f, 0, 0, 0, 0, 0, 0};
  std::vector<std::optional<Answer>> reference(4, answer(p)), candidate(4, answer(p));
  const char* ref[] = {"assessable", "not_assessable", "not_assessable", ""};
  const char* cand[] = {"assessable", "not_assessable", "assessable", "assessable"};
  for (std::size_t i = 0; i < 4; ++i) {
    reference[i]->assessment = ref[i];
    candidate[i]->assessment = cand[i];
  }
  reference[2]->ood_score = 2.5f;  // over a threshold between the two
  candidate[2]->ood_score = 1.5f;
  const PairMetrics m = compare_answers(images, reference, candidate, isic_manifest().labels);
  // d has no reference status: 3 compared, c disagrees.
  EXPECT_EQ(m.assessment_images, 3u);
  EXPECT_DOUBLE_EQ(m.assessment_agreement, 2.0 / 3.0);
  ASSERT_EQ(m.assessment_disagreements.size(), 1u);
  EXPECT_EQ(m.assessment_disagreements[0].image, "c.png");
  EXPECT_EQ(m.assessment_disagreements[0].reference, "not_assessable");
  EXPECT_EQ(m.assessment_disagreements[0].candidate, "assessable");
  EXPECT_DOUBLE_EQ(m.assessment_disagreements[0].reference_score, 2.5);  // the guard scores behind the statuses
  EXPECT_DOUBLE_EQ(m.assessment_disagreements[0].candidate_score, 1.5);
  EXPECT_EQ(ParityPolicy::kMinAssessmentAgreement, 0.99);
}

TEST(ParityBounds, EveryBrokenBoundIsNamed) {
  const Fixture f;
  const PairMetrics m = compare_answers(f.images, f.reference, f.candidate, isic_manifest().labels);
  ParityBounds bounds;
  bounds.max_abs_diff = 0.02;
  bounds.mean_abs_diff = 0.001;
  bounds.min_top1_agreement = 1.0;
  bounds.min_triage_agreement = 1.0;
  const BoundCheck check = check_bounds(m, &bounds, "fp16");
  EXPECT_FALSE(check.passed);
  ASSERT_EQ(check.violations.size(), 4u);  // candidate failure, max, mean, triage (top-1 holds)
  EXPECT_NE(check.violations[0].find("1 image(s)"), std::string::npos);
  EXPECT_NE(check.violations[1].find("max |dp| 0.03"), std::string::npos);
  EXPECT_NE(check.violations[2].find("mean |dp| 0.005"), std::string::npos);
  EXPECT_NE(check.violations[3].find("triage agreement 0.5"), std::string::npos);
}

TEST(ParityBounds, WithinBoundsPassesAndMissingBoundsFail) {
  const Fixture f;
  std::vector<std::optional<Answer>> candidate = f.candidate;
  candidate[3] = f.reference[3];  // no failure
  const PairMetrics m = compare_answers(f.images, f.reference, candidate, isic_manifest().labels);
  ParityBounds loose;
  loose.max_abs_diff = 0.05;
  loose.min_triage_agreement = 0.5;
  EXPECT_TRUE(check_bounds(m, &loose, "fp16").passed);
  const BoundCheck none = check_bounds(m, nullptr, "int8");
  EXPECT_FALSE(none.passed);
  ASSERT_EQ(none.violations.size(), 1u);
  EXPECT_NE(none.violations[0].find("no 'int8' bounds"), std::string::npos);
  // Nothing compared is not a pass either.
  const std::vector<std::optional<Answer>> nothing(4);
  EXPECT_FALSE(check_bounds(compare_answers(f.images, nothing, candidate, isic_manifest().labels), &loose, "fp16").passed);
}

TEST(ParityPolicy, DefaultsCoverFloatPrecisionsOnly) {
  const ParityPolicy policy = ParityPolicy::defaults();
  for (const char* key : {"fp32", "fp16", "pytorch"}) {
    const ParityBounds* b = policy.find(key);
    ASSERT_NE(b, nullptr) << key;
    EXPECT_EQ(b->max_abs_diff, 0.01);
    EXPECT_EQ(b->min_triage_agreement, 1.0);
  }
  EXPECT_EQ(policy.find("int8"), nullptr);
}

TEST(ParityPolicy, ManifestPolicyOverlaysTheDefaults) {
  nlohmann::json document = test::valid_manifest();
  document["policy"]["parity"] = nlohmann::json::parse(R"({
      "bounds": {"int8": {"max_abs_diff": 0.1, "mean_abs_diff": 0.01, "min_triage_agreement": 0.95},
                 "fp16": {"max_abs_diff": 0.005}},
      "near_threshold_margin": 0.05, "source": "docs/parity.md"})");
  const ParityPolicy policy = ParityPolicy::for_manifest(parse_manifest(document, "test"));
  ASSERT_NE(policy.find("int8"), nullptr);
  EXPECT_EQ(policy.find("int8")->mean_abs_diff, 0.01);
  EXPECT_FALSE(policy.find("int8")->min_top1_agreement.has_value());
  EXPECT_EQ(policy.find("fp16")->max_abs_diff, 0.005);
  EXPECT_EQ(policy.find("fp16")->min_triage_agreement, 1.0);  // kept from the defaults
  EXPECT_EQ(policy.near_threshold_margin, 0.05);
}

TEST(ParityPolicy, MalformedPoliciesAreRefusedNamingTheField) {
  auto refused = [](const char* text) {
    nlohmann::json document = test::valid_manifest();
    document["policy"]["parity"] = nlohmann::json::parse(text);
    try {
      ParityPolicy::for_manifest(parse_manifest(document, "test"));
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidPackage);
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(refused(R"({"bounds": {"int8": {"max_abs_diff": 2}}})").find("bounds.int8.max_abs_diff"), std::string::npos);
  EXPECT_NE(refused(R"({"bounds": {"int8": {"max_diff": 0.1}}})").find("unknown bound 'max_diff'"), std::string::npos);
  EXPECT_NE(refused(R"({"bound": {}})").find("unknown field 'bound'"), std::string::npos);
  EXPECT_NE(refused(R"({"bounds": []})").find("bounds must be an object"), std::string::npos);
}

TEST(ParityPolicy, PolicyFileMayWrapTheObject) {
  test::TemporaryDirectory tmp;
  const auto path = tmp.path() / "policy.json";
  std::ofstream(path) << R"({"parity": {"bounds": {"int8": {"max_abs_diff": 0.2}}}})";
  const nlohmann::json policy = read_policy_file(path);
  EXPECT_EQ(policy["bounds"]["int8"]["max_abs_diff"], 0.2);
  std::ofstream(path) << "not json";
  EXPECT_THROW(read_policy_file(path), Error);
  EXPECT_THROW(read_policy_file(tmp.path() / "missing.json"), Error);
}

TEST(ParityReport, MarkdownAndEvidenceCarryTheVerdict) {
  const Fixture f;
  ParityReport report;
  report.package_name = "derm-test";
  report.package_version = "3";
  report.images = f.images;
  report.image_errors = {"", "", "truncated", ""};
  report.labels = isic_manifest().labels;
  report.policy = ParityPolicy::defaults();
  report.subjects.push_back(
      {"onnxruntime/fp32/cpu", "onnxruntime", "fp32", "cpu", "1.30.0", "model.onnx", "aa", f.reference, {"", "", "x", ""}, 0.1});
  report.subjects.push_back(
      {"onnxruntime/fp16/cpu", "onnxruntime", "fp16", "cpu", "1.30.0", "model_fp16.onnx", "bb", f.candidate, {"", "", "", "y"}, 0.1});
  PairResult pair;
  pair.reference = report.subjects[0].id;
  pair.candidate = report.subjects[1].id;
  pair.bound_key = "fp16";
  pair.bounds = *report.policy.find("fp16");
  pair.metrics = compare_answers(f.images, f.reference, f.candidate, report.labels);
  pair.check = check_bounds(pair.metrics, &*pair.bounds, "fp16");
  report.pairs.push_back(pair);
  report.passed = false;

  const std::string md = to_markdown(report);
  EXPECT_NE(md.find("**FAILED**"), std::string::npos);
  EXPECT_NE(md.find("| onnxruntime/fp32/cpu | onnxruntime/fp16/cpu | 2 | 0.03 |"), std::string::npos) << md;
  EXPECT_NE(md.find("b.png | triage | dermatology_review"), std::string::npos) << md;
  EXPECT_NE(md.find("ground truth for the ONNX export: not run"), std::string::npos);

  const nlohmann::ordered_json full = to_json(report, true);
  EXPECT_EQ(full["format"], "dermcds-parity-report");
  ASSERT_EQ(full["per_image"].size(), 4u);
  EXPECT_TRUE(full["per_image"][2]["probabilities"]["onnxruntime/fp32/cpu"].is_null());
  EXPECT_EQ(full["failures"].size(), 2u);
  const nlohmann::ordered_json evidence = manifest_evidence(report);
  EXPECT_FALSE(evidence.contains("per_image"));
  EXPECT_FALSE(evidence["passed"].get<bool>());
  EXPECT_EQ(evidence["pairs"][0]["triage_disagreements"][0]["image"], "b.png");
}

}  // namespace
}  // namespace dermcds::pipeline
