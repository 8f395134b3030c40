// Whole parity runs on tiny packages (make_parity_packages.py): the validator's figures must equal
// what numpy computes for the same images, and a perturbed artifact must break the gate.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "dermcds/error.hpp"
#include "dermcds/model_package.hpp"
#include "dermcds/pipeline/lifecycle.hpp"
#include "dermcds/pipeline/parity.hpp"
#include "dermcds/pipeline/parity_report.hpp"
#include "test_support.hpp"

namespace dermcds::pipeline {
namespace {

std::filesystem::path fixture() { return test::work_dir() / "parity"; }
std::filesystem::path package(const std::string& name) { return fixture() / "repository" / name / "1"; }

nlohmann::json expected(const std::string& name) {
  std::ifstream in(fixture() / "expected.json");
  if (!in) throw std::runtime_error("no parity/expected.json (fixture parity_packages)");
  return nlohmann::json::parse(in).at(name);
}

ParityReport run(const std::filesystem::path& dir, const std::filesystem::path& images = fixture() / "images") {
  ParityRequest request;
  request.package_dir = dir;
  request.images_dir = images;
  request.torch_reference = false;  // the tiny model has no PyTorch source
  request.threads = 1;
  return run_parity(request);
}

const PairResult& only_pair(const ParityReport& report) {
  if (report.pairs.size() != 1) throw std::runtime_error("expected one pair, got " + std::to_string(report.pairs.size()));
  return report.pairs.front();
}

void expect_matches_numpy(const PairMetrics& m, const nlohmann::json& numpy) {
  EXPECT_EQ(m.images, numpy["images"].get<std::size_t>());
  EXPECT_NEAR(m.max_abs_diff, numpy["max_abs_diff"].get<double>(), 2e-6);
  EXPECT_NEAR(m.mean_abs_diff, numpy["mean_abs_diff"].get<double>(), 2e-7);
  for (std::size_t c = 0; c < m.per_class.size(); ++c) {
    EXPECT_NEAR(m.per_class[c].max_abs_diff, numpy["per_class_max"][c].get<double>(), 2e-6) << m.per_class[c].code;
    EXPECT_NEAR(m.per_class[c].mean_abs_diff, numpy["per_class_mean"][c].get<double>(), 2e-7) << m.per_class[c].code;
  }
  EXPECT_DOUBLE_EQ(m.top1_agreement, numpy["top1_agreement"].get<double>());
  EXPECT_DOUBLE_EQ(m.triage_agreement, numpy["triage_agreement"].get<double>());
}

TEST(ParityRun, HonestFp16ArtifactMatchesNumpyAndPasses) {
  const ParityReport report = run(package("tiny-parity"));
  const nlohmann::json numpy = expected("tiny-parity");
  ASSERT_EQ(report.subjects.front().id, kReferenceSubject);
  const PairResult& pair = only_pair(report);
  EXPECT_EQ(pair.candidate, "onnxruntime/fp16/cpu");
  EXPECT_EQ(pair.bound_key, "fp16");
  expect_matches_numpy(pair.metrics, numpy["pair"]);
  EXPECT_GT(pair.metrics.max_abs_diff, 0.0);  // fp16 weights do change the answers, a little
  // Each subject's probabilities are numpy's for its weights.
  for (std::size_t i = 0; i < report.images.size(); ++i)
    for (std::size_t c = 0; c < 8; ++c) {
      EXPECT_NEAR(report.subjects[0].answers[i]->probabilities[c], numpy["fp32"][i][c].get<double>(), 2e-6);
      EXPECT_NEAR(report.subjects[1].answers[i]->probabilities[c], numpy["fp16"][i][c].get<double>(), 2e-6);
    }
  EXPECT_TRUE(pair.check.passed) << (pair.check.violations.empty() ? "" : pair.check.violations[0]);
  EXPECT_TRUE(report.passed);
  EXPECT_GT(report.reference_spread, 0.3) << "the tiny model's answers must depend on the image";
}

TEST(ParityRun, PerturbedArtifactBreaksTheGate) {
  // The package verifies (its manifest has the perturbed file's sha256): only parity can tell.
  for (const PackageCheck& check : verify_package(package("tiny-perturbed"))) EXPECT_TRUE(check.ok) << check.subject;
  const ParityReport report = run(package("tiny-perturbed"));
  const nlohmann::json numpy = expected("tiny-perturbed");
  const PairResult& pair = only_pair(report);
  expect_matches_numpy(pair.metrics, numpy["pair"]);
  EXPECT_FALSE(report.passed);
  EXPECT_FALSE(pair.check.passed);
  ASSERT_FALSE(pair.check.violations.empty());
  EXPECT_NE(pair.check.violations.front().find("max |dp|"), std::string::npos);
  // The images whose tier changes are the ones numpy finds.
  std::vector<std::string> numpy_disagreements;
  for (std::size_t i = 0; i < report.images.size(); ++i)
    if (numpy["pair"]["reference_tiers"][i] != numpy["pair"]["candidate_tiers"][i]) numpy_disagreements.push_back(report.images[i]);
  ASSERT_FALSE(numpy_disagreements.empty());
  std::vector<std::string> ours;
  for (const Disagreement& d : pair.metrics.triage_disagreements) ours.push_back(d.image);
  EXPECT_EQ(ours, numpy_disagreements);
  // Such an image is listed among those near a threshold, with both tiers.
  const auto near = std::find_if(report.near_threshold.begin(), report.near_threshold.end(),
                                 [&](const NearThresholdImage& n) { return n.image == numpy_disagreements[0]; });
  ASSERT_NE(near, report.near_threshold.end());
  EXPECT_TRUE(near->disagreement);
}

TEST(ParityRun, TighterPolicyOverrideFailsTheHonestArtifact) {
  ParityRequest request;
  request.package_dir = package("tiny-parity");
  request.images_dir = fixture() / "images";
  request.torch_reference = false;
  request.policy = nlohmann::json::parse(R"({"bounds": {"fp16": {"max_abs_diff": 1e-6}}})");
  const ParityReport report = run_parity(request);
  EXPECT_FALSE(report.passed);
  EXPECT_EQ(report.pairs.at(0).bounds->max_abs_diff, 1e-6);
}

TEST(ParityRun, OnlyTheReferenceMeansNothingWasCompared) {
  ParityRequest request;
  request.package_dir = package("tiny-parity");
  request.images_dir = fixture() / "images";
  request.torch_reference = false;
  request.only = {"tflite"};  // the package has none
  const ParityReport report = run_parity(request);
  EXPECT_EQ(report.subjects.size(), 1u);
  EXPECT_TRUE(report.pairs.empty());
  EXPECT_FALSE(report.passed);
}

TEST(ParityRun, GpuProviderOptionsReachTheGpuSubjectsOnly) {
  // An option name ONNX Runtime does not document: the backend refuses it while planning its
  // providers, before it looks for a GPU, so the refusal shows which subjects received it. The
  // CPU reference must run with its defaults (else the whole run would fail), the GPU subjects
  // must be skipped with the option named.
  ParityRequest request;
  request.package_dir = package("tiny-parity");
  request.images_dir = fixture() / "images";
  request.torch_reference = false;
  request.device_id = 3;
  request.gpu_provider_options = {{"tensorrt:trt_no_such_option", "1"}};
  const ParityReport report = run_parity(request);
  EXPECT_TRUE(report.passed);
  ASSERT_EQ(report.subjects.front().id, kReferenceSubject);
  std::vector<std::string> refused;
  for (const SkippedSubject& s : report.skipped)
    if (s.reason.find("trt_no_such_option") != std::string::npos) refused.push_back(s.id);
  std::sort(refused.begin(), refused.end());
  EXPECT_EQ(refused, (std::vector<std::string>{"onnxruntime/fp16/cuda", "onnxruntime/fp16/tensorrt", "onnxruntime/fp32/cuda",
                                               "onnxruntime/fp32/tensorrt"}));
}

TEST(ParityRun, UnreadableImageIsReportedAndLeftOut) {
  test::TemporaryDirectory tmp;
  for (const auto& entry : std::filesystem::directory_iterator(fixture() / "images"))
    std::filesystem::copy_file(entry.path(), tmp.path() / entry.path().filename());
  std::ofstream(tmp.path() / "zz_broken.jpg", std::ios::binary) << "\xff\xd8\xff\xe0 not a whole jpeg";
  const ParityReport report = run(package("tiny-parity"), tmp.path());
  ASSERT_EQ(report.images.back(), "zz_broken.jpg");
  EXPECT_FALSE(report.image_errors.back().empty());
  EXPECT_EQ(only_pair(report).metrics.images, report.images.size() - 1);
  EXPECT_EQ(only_pair(report).metrics.candidate_failures, 0u);
  EXPECT_TRUE(report.passed);
}

TEST(ParityRun, BadRequestsAreRefused) {
  test::TemporaryDirectory tmp;
  try {
    run(package("tiny-parity"), tmp.path());  // no images
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
  try {
    run(tmp.path() / "no-package");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

TEST(ParityRun, EvidenceIsRecordedInTheManifestAndCoversTheArtifacts) {
  test::TemporaryDirectory tmp;
  const auto dir = tmp.path() / "tiny-parity" / "1";
  std::filesystem::create_directories(dir.parent_path());
  std::filesystem::copy(package("tiny-parity"), dir);
  const ParityReport report = run(dir);
  record_in_manifest(report, std::nullopt);

  const Manifest manifest = ModelPackage::open(dir).manifest();  // still verifies
  const nlohmann::json& parity = manifest.document.at("parity");
  EXPECT_TRUE(parity.at("passed").get<bool>());
  EXPECT_EQ(parity.at("images").at("count"), report.images.size());
  EXPECT_EQ(parity.at("images").at("sha256"), report.image_set.sha256);
  EXPECT_NEAR(parity.at("pairs")[0].at("max_abs_diff").get<double>(), report.pairs[0].metrics.max_abs_diff, 1e-12);
  EXPECT_FALSE(parity.contains("per_image"));
  std::string why;
  EXPECT_TRUE(has_covering_evidence(manifest, &why)) << why;

  // Evidence about other bytes than the manifest lists is refused.
  ParityReport stale = report;
  stale.subjects[1].sha256 = std::string(64, '0');
  EXPECT_THROW(record_in_manifest(stale, std::nullopt), Error);
}

}  // namespace
}  // namespace dermcds::pipeline
