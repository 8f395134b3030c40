// The Classifier end to end on tiny ONNX packages (make_tiny_packages.py), whose outputs have
// an independent numpy + Pillow reference.
#include <algorithm>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "dermcds/classifier.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/manifest.hpp"
#include "test_support.hpp"

namespace dermcds {
namespace {

std::filesystem::path tiny_dir() { return test::work_dir() / "core"; }
std::filesystem::path tiny_package(const std::string& name = "tiny") { return tiny_dir() / "repository" / name / "1"; }

std::unique_ptr<Classifier> open_tiny(const std::string& provider = "cpu") {
  ClassifierOptions options;
  options.package = tiny_package();
  options.execution.provider = provider;
  return Classifier::create(options);
}

ErrorCode create_error(ClassifierOptions options, std::string* message = nullptr) {
  try {
    Classifier::create(options);
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "Classifier::create succeeded";
  return ErrorCode::kInternal;
}

TEST(Classifier, MatchesNumpyReferenceOnRealPhotographs) {
  const nlohmann::json references = nlohmann::json::parse(std::ifstream(tiny_dir() / "tiny_reference.json"));
  ASSERT_GE(references.size(), 4u);
  const auto classifier = open_tiny();
  std::vector<std::vector<float>> seen;
  for (const auto& reference : references) {
    const auto result = classifier->classify(read_file_bytes(reference["image"].get<std::string>()));
    const auto expected = reference["probabilities"].get<std::vector<double>>();
    ASSERT_EQ(result.probabilities.size(), expected.size());
    double worst = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) worst = std::max(worst, std::abs(result.probabilities[i] - expected[i]));
    EXPECT_LE(worst, 1e-4) << reference["image"];
    seen.push_back(result.probabilities);
  }
  // The reference is only meaningful if the model answers differently for different images.
  double spread = 0;
  for (std::size_t c = 0; c < seen[0].size(); ++c)
    for (const auto& p : seen) spread = std::max(spread, double(std::abs(p[c] - seen[0][c])));
  EXPECT_GT(spread, 0.1);
}

TEST(Classifier, GuardOutputDecidesTheAssessmentAndWithholdsTheTier) {
  const nlohmann::json references = nlohmann::json::parse(std::ifstream(tiny_dir() / "tiny_reference.json"));
  ClassifierOptions options;
  options.package = tiny_package("tiny-guarded");
  options.execution.provider = "cpu";
  const auto classifier = Classifier::create(options);
  ASSERT_TRUE(classifier->manifest().ood);
  const double threshold = classifier->manifest().ood->threshold;
  int flagged = 0, passed = 0;
  for (const auto& reference : references) {
    const auto result = classifier->classify(read_file_bytes(reference["image"].get<std::string>()));
    const double expected = reference["ood_score"].get<double>();
    ASSERT_TRUE(result.ood_score);
    EXPECT_NEAR(*result.ood_score, expected, 1e-4 * std::max(1.0, expected)) << reference["image"];
    const bool ood = std::any_of(result.assessment.reasons.begin(), result.assessment.reasons.end(),
                                 [](const AssessmentReason& r) { return r.code == "out_of_distribution"; });
    EXPECT_EQ(ood, expected > threshold) << reference["image"];
    if (!result.assessment.assessable()) {
      EXPECT_EQ(result.triage.tier, kNotAssessableTier);
      EXPECT_TRUE(result.triage.rule_tier.empty());
      const auto json = to_json(result);
      EXPECT_EQ(json["assessment"]["status"], "not_assessable");
      EXPECT_EQ(json["triage"]["tier"], "not assessable: retake the photograph");
      EXPECT_FALSE(json["assessment"]["reasons"].empty());
    }
    (ood ? flagged : passed) += 1;
  }
  EXPECT_GT(flagged, 0);
  EXPECT_GT(passed, 0);
  // The raw tensor path returns the guard output too.
  const InferenceOutputs outputs = classifier->infer_outputs(Tensor::zeros({2, 3, 64, 64}));
  EXPECT_EQ(outputs.ood_score.shape, (std::vector<std::int64_t>{2, 1}));
}

TEST(Classifier, PackageWithoutGuardHasNoOodScore) {
  const auto result = open_tiny()->classify(read_file_bytes(test::real_photographs().front()));
  EXPECT_FALSE(result.ood_score);
  EXPECT_TRUE(to_json(result)["ood_score"].is_null());
}

TEST(Classifier, ResultNamesWhatRan) {
  const auto classifier = open_tiny();
  const auto result = classifier->classify(read_file_bytes(test::real_photographs()[0]));
  EXPECT_EQ(result.model_name, "tiny");
  EXPECT_EQ(result.model_version, "1");
  EXPECT_EQ(result.runtime, "onnxruntime");
  EXPECT_EQ(result.runtime_version.rfind("1.30", 0), 0u) << result.runtime_version;
  EXPECT_EQ(result.provider, "cpu");
  EXPECT_EQ(result.precision, "fp32");
  EXPECT_TRUE(result.fallbacks.empty());
  EXPECT_GT(result.timings.decode_ms, 0);
  EXPECT_GT(result.timings.inference_ms, 0);

  const auto json = to_json(result);
  for (const char* key : {"model_name", "model_version", "runtime", "runtime_version", "execution_provider", "precision", "probabilities",
                          "top1", "triage", "timings_ms", "fallbacks"})
    EXPECT_TRUE(json.contains(key)) << key;
  EXPECT_EQ(json["probabilities"].size(), 8u);
  EXPECT_EQ(json["top1"]["code"], result.labels[static_cast<std::size_t>(result.top1)].code);
  EXPECT_EQ(json["triage"]["tier"], result.triage.tier);
  double sum = 0;
  for (const auto& c : json["probabilities"]) sum += c["probability"].get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-5);
}

TEST(Classifier, CudaRequestFallsBackToCpuAndSaysSo) {
  // No machine this test runs on in CI has a GPU, and this ONNX Runtime build has no CUDA
  // provider: the request must still be served, on the CPU, with the reason reported.
  const auto classifier = open_tiny("cuda");
  const auto result = classifier->classify(read_file_bytes(test::real_photographs()[0]));
  EXPECT_EQ(result.provider, "cpu");
  ASSERT_FALSE(result.fallbacks.empty());
  EXPECT_EQ(result.fallbacks.front().rfind("cuda:", 0), 0u) << result.fallbacks.front();
}

TEST(Classifier, AutoProviderOnCpuMachineReportsNoFallback) {
  const auto classifier = open_tiny("auto");
  EXPECT_EQ(classifier->backend_info().provider, "cpu");
  EXPECT_TRUE(classifier->backend_info().fallbacks.empty());
}

TEST(Classifier, BadExecutionOptionsAreRefused) {
  ClassifierOptions options;
  options.package = tiny_package();
  options.execution.provider = "quantum";
  std::string message;
  EXPECT_EQ(create_error(options, &message), ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("quantum"), std::string::npos);
  options.execution.provider = "cpu";
  options.execution.provider_options["cuda_mem_limit"] = "1";
  EXPECT_EQ(create_error(options), ErrorCode::kInvalidArgument);
}

TEST(Classifier, WrongShapedModelsAreModelMismatch) {
  for (const char* name : {"tiny-wrong-size", "tiny-wrong-classes", "tiny-wrong-names"}) {
    ClassifierOptions options;
    options.package = tiny_package(name);
    std::string message;
    EXPECT_EQ(create_error(options, &message), ErrorCode::kModelMismatch) << name;
    EXPECT_NE(message.find("model.onnx"), std::string::npos) << message;
  }
}

TEST(Classifier, UnknownOrAbsentRuntimeIsRefused) {
  ClassifierOptions options;
  options.package = tiny_package();
  options.runtime = "coreml";
  EXPECT_EQ(create_error(options), ErrorCode::kRuntimeUnavailable);
  options.runtime = "onnxruntime";
  options.precision = "int8";
  EXPECT_EQ(create_error(options), ErrorCode::kNotFound);
}

TEST(Classifier, TamperedPackageIsNeverLoaded) {
  test::TemporaryDirectory tmp;
  const auto copy = tmp.path() / "tiny" / "1";
  std::filesystem::create_directories(copy);
  std::filesystem::copy(tiny_package(), copy, std::filesystem::copy_options::recursive);
  {
    std::fstream model(copy / "model.onnx", std::ios::in | std::ios::out | std::ios::binary);
    model.seekp(-3, std::ios::end);
    model.put('\x7f');
  }
  ClassifierOptions options;
  options.package = copy;
  std::string message;
  EXPECT_EQ(create_error(options, &message), ErrorCode::kInvalidPackage);
  EXPECT_NE(message.find("model.onnx"), std::string::npos) << message;
}

TEST(Classifier, BatchGivesTheSameAnswersAsSingleImages) {
  const auto classifier = open_tiny();
  std::vector<PreparedImage> prepared;
  std::vector<ClassificationResult> singles;
  for (const auto& photo : test::real_photographs()) {
    const auto bytes = read_file_bytes(photo);
    prepared.push_back(classifier->prepare(bytes));
    singles.push_back(classifier->classify(bytes));
  }
  const auto batch = classifier->classify_batch(prepared);
  ASSERT_EQ(batch.size(), singles.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ(batch[i].batch_size, static_cast<int>(singles.size()));
    for (std::size_t c = 0; c < 8; ++c) EXPECT_NEAR(batch[i].probabilities[c], singles[i].probabilities[c], 1e-6);
  }
}

TEST(Classifier, ConcurrentCallersGetConsistentAnswers) {
  const auto classifier = open_tiny();
  const auto photos = test::real_photographs();
  std::vector<std::vector<float>> expected;
  for (const auto& photo : photos) expected.push_back(classifier->classify(read_file_bytes(photo)).probabilities);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        const std::size_t i = static_cast<std::size_t>(t + round) % photos.size();
        if (classifier->classify(read_file_bytes(photos[i])).probabilities != expected[i]) ++mismatches;
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Classifier, InferChecksTheTensorShape) {
  const auto classifier = open_tiny();
  Tensor wrong = Tensor::zeros({1, 3, 32, 32});
  try {
    classifier->infer(wrong);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("[N,3,64,64]"), std::string::npos) << e.what();
  }
  const Tensor logits = classifier->infer(Tensor::zeros({2, 3, 64, 64}));
  EXPECT_EQ(logits.shape, (std::vector<std::int64_t>{2, 8}));
}

TEST(Classifier, BadImagesAreErrorsNotCrashes) {
  const auto classifier = open_tiny();
  const std::vector<std::pair<std::string, ErrorCode>> cases = {
      {"", ErrorCode::kInvalidImage},
      {"hello, this is text", ErrorCode::kUnsupportedFormat},
      {std::string("\xff\xd8\xff\xe0\x00\x10JFIF", 10), ErrorCode::kInvalidImage},
      {std::string("\x89PNG\r\n\x1a\n\x00\x00", 10), ErrorCode::kInvalidImage},
  };
  for (const auto& [bytes, code] : cases) {
    try {
      classifier->classify(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
      ADD_FAILURE() << "accepted " << bytes.size() << " bytes";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
    }
  }
}

// ---- the automatic precision choice and int8 (docs/service.md, "Which artifact serves") ----

// A copy of the tiny package with a second ONNX Runtime artifact declared int8 (the same graph:
// what is tested is which artifact is chosen, and that the result says so), and parity evidence
// in which the int8 subject `int8_evidence` ("passed", "failed", "skipped", "absent").
std::filesystem::path package_with_int8(const std::filesystem::path& root, const std::string& int8_evidence) {
  const std::filesystem::path dir = root / "tiny" / "1";
  std::filesystem::create_directories(dir.parent_path());
  std::filesystem::copy(tiny_package(), dir, std::filesystem::copy_options::recursive);
  std::filesystem::copy_file(dir / "model.onnx", dir / "model_int8.onnx");
  nlohmann::json m = read_manifest(dir).document;
  nlohmann::json int8 = m["artifacts"][0];
  int8["precision"] = "int8";
  int8["file"] = "model_int8.onnx";
  m["artifacts"].push_back(int8);
  const std::string reference = "onnxruntime/fp32/cpu";
  nlohmann::json parity = {
      {"reference", reference},
      {"subjects", {{{"id", reference}, {"runtime", "onnxruntime"}, {"precision", "fp32"}, {"sha256", int8["sha256"]}}}},
      {"skipped", nlohmann::json::array()},
      {"pairs", nlohmann::json::array()}};
  if (int8_evidence == "passed" || int8_evidence == "failed") {
    parity["subjects"].push_back(
        {{"id", "onnxruntime/int8/cpu"}, {"runtime", "onnxruntime"}, {"precision", "int8"}, {"sha256", int8["sha256"]}});
    const bool passed = int8_evidence == "passed";
    parity["pairs"].push_back({{"reference", reference},
                               {"candidate", "onnxruntime/int8/cpu"},
                               {"bound_key", "int8"},
                               {"passed", passed},
                               {"violations", passed ? nlohmann::json::array() : nlohmann::json{"top-1 agreement 0.8542 < 0.9700"}}});
  } else if (int8_evidence == "skipped") {
    parity["skipped"].push_back({{"id", "onnxruntime/int8"}, {"reason", "runtime onnxruntime cannot be loaded on this machine"}});
  }
  parity["pairs"].push_back({{"reference", reference}, {"candidate", "pytorch/fp32/cpu"}, {"bound_key", "pytorch"}, {"passed", true}});
  m["parity"] = parity;
  write_manifest(dir, m);
  return dir;
}

bool mentions(const std::vector<std::string>& lines, const std::string& text) {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(text) != std::string::npos; });
}

// The int8 rule is a server's. On an ARM CPU without a GPU (the arm64 suite under qemu) ONNX
// Runtime ranks its fp32 artifact first and TFLite's int8 model is what `auto` wants there
// (RuntimePreference.*): the ONNX int8 artifact is never preferred, so nothing is passed over.
bool on_a_server() { return this_machine() == MachineKind::kServer; }
void expect_fp32_without_a_word(const Manifest& manifest) {
  const RuntimeChoice choice = choose_runtime(manifest, "auto", "auto", "cpu");
  ASSERT_NE(choice.artifact, nullptr);
  EXPECT_EQ(choice.artifact->file, "model.onnx");
  EXPECT_TRUE(choice.passed_over.empty()) << testing::PrintToString(choice.passed_over);
}

TEST(ChooseRuntime, Int8ServesOnTheCpuWhenItsEvidencePassed) {
  test::TemporaryDirectory tmp;
  const auto dir = package_with_int8(tmp.path(), "passed");
  const Manifest manifest = read_manifest(dir);  // the choice points into it
  if (!on_a_server()) return expect_fp32_without_a_word(manifest);
  const RuntimeChoice choice = choose_runtime(manifest, "auto", "auto", "cpu");
  ASSERT_NE(choice.artifact, nullptr);
  EXPECT_EQ(choice.artifact->file, "model_int8.onnx");
  EXPECT_TRUE(choice.passed_over.empty());
  EXPECT_EQ(choose_runtime(manifest, "onnxruntime", "auto", "cpu").artifact->file, "model_int8.onnx");
  if (!this_machine_has_nvidia_gpu()) {
    EXPECT_EQ(choose_runtime(manifest, "auto", "auto", "auto").artifact->file, "model_int8.onnx");
  }

  // Through the front door: the answer names the precision that ran.
  ClassifierOptions options;
  options.package = dir;
  options.execution.provider = "cpu";
  const auto result = Classifier::create(options)->classify(read_file_bytes(test::real_photographs()[0]));
  EXPECT_EQ(result.precision, "int8");
  EXPECT_TRUE(result.fallbacks.empty());
}

TEST(ChooseRuntime, Int8WithoutPassingEvidenceFallsBackToFp32AndSaysWhy) {
  const std::pair<const char*, const char*> cases[] = {
      {"failed", "top-1 agreement 0.8542 < 0.9700"},
      {"absent", "never compared"},
      {"skipped", "was not compared where parity ran"},
  };
  for (const auto& [evidence, why] : cases) {
    SCOPED_TRACE(evidence);
    test::TemporaryDirectory tmp;
    const auto dir = package_with_int8(tmp.path(), evidence);
    const Manifest manifest = read_manifest(dir);  // the choice points into it
    if (!on_a_server()) {
      expect_fp32_without_a_word(manifest);
      continue;
    }
    const RuntimeChoice choice = choose_runtime(manifest, "auto", "auto", "cpu");
    ASSERT_NE(choice.artifact, nullptr);
    EXPECT_EQ(choice.artifact->file, "model.onnx");
    EXPECT_TRUE(mentions(choice.passed_over, "onnxruntime/int8 (model_int8.onnx) not served"))
        << testing::PrintToString(choice.passed_over);
    EXPECT_TRUE(mentions(choice.passed_over, why)) << testing::PrintToString(choice.passed_over);

    ClassifierOptions options;
    options.package = dir;
    options.execution.provider = "cpu";
    const auto result = Classifier::create(options)->classify(read_file_bytes(test::real_photographs()[0]));
    EXPECT_EQ(result.precision, "fp32");
    EXPECT_TRUE(mentions(result.fallbacks, why)) << testing::PrintToString(result.fallbacks);
  }
}

TEST(ChooseRuntime, Int8IsNotChosenForAGpuProviderAndAnExplicitPrecisionIsObeyed) {
  test::TemporaryDirectory tmp;
  const auto dir = package_with_int8(tmp.path(), "passed");
  const Manifest manifest = read_manifest(dir);  // the choice points into it
  const RuntimeChoice gpu = choose_runtime(manifest, "auto", "auto", "cuda");
  EXPECT_EQ(gpu.artifact->file, "model.onnx");
  if (on_a_server()) {
    EXPECT_TRUE(mentions(gpu.passed_over, "on the CPU only")) << testing::PrintToString(gpu.passed_over);
  }
  EXPECT_EQ(choose_runtime(manifest, "auto", "fp32", "cpu").artifact->file, "model.onnx");

  // An explicit precision is the caller's decision; whether the version may serve at all is the
  // serving rule's (ServingRule.* in test_model_repository.cpp), not this choice's.
  test::TemporaryDirectory other;
  const auto failed = package_with_int8(other.path(), "failed");
  const Manifest failed_manifest = read_manifest(failed);  // the choice points into it
  const RuntimeChoice asked = choose_runtime(failed_manifest, "auto", "int8", "cpu");
  EXPECT_EQ(asked.artifact->file, "model_int8.onnx");
  EXPECT_TRUE(asked.passed_over.empty());
}

}  // namespace
}  // namespace dermcds
