// The runtime conformance suite: one set of cases, instantiated once per runtime this build
// compiles (compiled_runtimes()), so a new runtime folder is held to the same contract as the
// others without writing a test (docs/architecture.md, "How to add a runtime").
//
// Every runtime runs the same tiny network (tests/core/make_tiny_packages.py: channel means
// through a fixed 8x3 layer) from its own artifact in one package (make_packages.sh).
//
// Golden outputs (golden/tiny.json) are the probabilities of numpy's fp32 reference for that
// network on six real photographs, committed so that a numeric regression anywhere between the
// bytes and the probabilities (decoding, resizing, normalization, layout, runtime, softmax) fails
// here even if the reference script changed with it. Tolerance 1e-4 absolute per probability:
// the network averages 64*64 = 4096 values per channel; with the blocked or pairwise summation
// the runtimes' mean kernels use, float32 rounding is about log2(4096) * 2^-24 ~ 7e-7 relative,
// which through weights summing to at most 12 per logit is ~2e-5 on a logit and less on a
// probability (softmax's derivative is at most 1/4). 1e-4 leaves a factor of five for other
// instruction sets and summation orders, and is far below what a real regression moves (a
// swapped channel, a wrong mean or an off-by-one resize changes probabilities by 1e-2 or more).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dermcds/classifier.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/runtime.hpp"
#include "test_support.hpp"

namespace dermcds {
namespace {

constexpr double kGoldenTolerance = 1e-4;

std::filesystem::path package_dir() { return test::work_dir() / "runtimes" / "repository" / "tiny" / "1"; }

struct Golden {
  std::filesystem::path image;
  std::vector<double> probabilities;
};

std::vector<Golden> golden_answers() {
  const nlohmann::json document = nlohmann::json::parse(std::ifstream(std::filesystem::path(DERMCDS_GOLDEN_DIR) / "tiny.json"));
  std::map<std::string, std::filesystem::path> photos;
  for (const auto& path : test::real_photographs()) photos[path.filename().string()] = path;
  std::vector<Golden> out;
  for (const auto& entry : document.at("images"))
    out.push_back({photos.at(entry.at("image").get<std::string>()), entry.at("probabilities").get<std::vector<double>>()});
  return out;
}

double worst_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = a.size() == b.size() ? 0.0 : INFINITY;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, double(std::abs(a[i] - b[i])));
  return worst;
}

ErrorCode error_of(const std::function<void()>& call, std::string* message = nullptr) {
  try {
    call();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "a non-dermcds exception escaped the runtime: " << e.what();
    return ErrorCode::kInternal;
  }
  ADD_FAILURE() << "the call succeeded";
  return ErrorCode::kInternal;
}

class RuntimeConformance : public ::testing::TestWithParam<const RuntimeDescriptor*> {
 protected:
  void SetUp() override {
    runtime_ = GetParam();
    ASSERT_TRUE(runtime_->available()) << runtime_->name << " is compiled in but cannot load here";
    package_ = ModelPackage::open(package_dir());
    artifact_ = package_->manifest().find_artifact(runtime_->name, "fp32");
    if (!artifact_)
      GTEST_SKIP() << "the conformance package has no " << runtime_->name
                   << " fp32 artifact: this build has no converter to make it (make_packages.sh)";
  }

  ClassifierOptions options(const std::string& provider = "auto", int threads = 0) const {
    ClassifierOptions o;
    o.package = package_dir();
    o.runtime = std::string(runtime_->name);
    o.precision = "fp32";
    o.execution.provider = provider;
    o.execution.threads = threads;
    return o;
  }

  BackendRequest request() const {
    const Manifest& m = package_->manifest();
    BackendRequest r;
    r.model_file = package_->artifact_path(*artifact_);
    r.precision = artifact_->precision;
    r.input_name = m.input_name;
    r.output_name = m.output_name;
    r.input_size = m.input.crop_size;
    r.num_classes = static_cast<int>(m.labels.size());
    return r;
  }

  const RuntimeDescriptor* runtime_ = nullptr;
  std::optional<ModelPackage> package_;
  const ArtifactEntry* artifact_ = nullptr;
};

TEST_P(RuntimeConformance, DescriptorIsComplete) {
  EXPECT_FALSE(runtime_->name.empty());
  EXPECT_FALSE(runtime_->platform.empty());
  EXPECT_FALSE(runtime_->providers.empty());
  EXPECT_FALSE(runtime_->version().empty());
  EXPECT_EQ(find_runtime(runtime_->name), runtime_);
  for (const MachineKind machine : {MachineKind::kServer, MachineKind::kMobileCpu})
    for (const char* precision : {"fp32", "fp16", "int8", "other"}) EXPECT_GE(runtime_->preference(machine, precision), 0);
  // The artifact the converter or exporter wrote says the layout the descriptor promises.
  EXPECT_EQ(artifact_->layout, runtime_->layout);
}

TEST_P(RuntimeConformance, MatchesGoldenOutputs) {
  const auto classifier = Classifier::create(options());
  EXPECT_EQ(classifier->backend_info().runtime, runtime_->name);
  EXPECT_EQ(classifier->input_layout(), runtime_->layout);
  const std::vector<Golden> golden = golden_answers();
  ASSERT_GE(golden.size(), 4u);
  std::vector<std::vector<float>> seen;
  for (const Golden& g : golden) {
    const ClassificationResult result = classifier->classify(read_file_bytes(g.image));
    ASSERT_EQ(result.probabilities.size(), g.probabilities.size());
    double worst = 0;
    for (std::size_t i = 0; i < g.probabilities.size(); ++i)
      worst = std::max(worst, std::abs(double(result.probabilities[i]) - g.probabilities[i]));
    EXPECT_LE(worst, kGoldenTolerance) << g.image;
    seen.push_back(result.probabilities);
  }
  // Golden outputs only mean something if the network tells the photographs apart.
  double spread = 0;
  for (const auto& p : seen) spread = std::max(spread, worst_difference(p, seen.front()));
  EXPECT_GT(spread, 0.1);
}

TEST_P(RuntimeConformance, BatchesAgreeWithSingleImages) {
  const auto classifier = Classifier::create(options());
  std::vector<PreparedImage> prepared;
  std::vector<ClassificationResult> singles;
  for (const auto& photo : test::real_photographs()) {
    prepared.push_back(classifier->prepare(read_file_bytes(photo)));
    singles.push_back(classifier->classify_batch({&prepared.back(), 1}).front());
  }
  for (const std::size_t size : {std::size_t{2}, prepared.size()}) {
    const auto batch = classifier->classify_batch({prepared.data(), size});
    ASSERT_EQ(batch.size(), size);
    for (std::size_t i = 0; i < size; ++i) {
      EXPECT_LE(worst_difference(batch[i].probabilities, singles[i].probabilities), 1e-6) << "image " << i << " of " << size;
      EXPECT_EQ(batch[i].batch_size, classifier->max_batch() > 0 ? std::min<int>(size, classifier->max_batch()) : int(size));
    }
  }
}

TEST_P(RuntimeConformance, ThreadCountsAgree) {
  const auto one = Classifier::create(options("auto", 1));
  const auto two = Classifier::create(options("auto", 2));
  for (const auto& photo : test::real_photographs()) {
    const auto bytes = read_file_bytes(photo);
    EXPECT_LE(worst_difference(one->classify(bytes).probabilities, two->classify(bytes).probabilities), 1e-5) << photo;
  }
}

TEST_P(RuntimeConformance, InputTensorShapesAreChecked) {
  const auto classifier = Classifier::create(options());
  const int s = classifier->manifest().input.crop_size;
  Tensor good = Tensor::zeros(runtime_->layout == TensorLayout::kNCHW ? std::vector<std::int64_t>{1, 3, s, s}
                                                                      : std::vector<std::int64_t>{1, s, s, 3});
  EXPECT_EQ(classifier->infer(good).shape, (std::vector<std::int64_t>{1, 8}));
  Tensor transposed = Tensor::zeros(runtime_->layout == TensorLayout::kNCHW ? std::vector<std::int64_t>{1, s, s, 3}
                                                                            : std::vector<std::int64_t>{1, 3, s, s});
  EXPECT_EQ(error_of([&] { classifier->infer(transposed); }), ErrorCode::kInvalidArgument);
  Tensor short_data = good;
  short_data.data.pop_back();
  EXPECT_EQ(error_of([&] { classifier->infer(short_data); }), ErrorCode::kInvalidArgument);
}

TEST_P(RuntimeConformance, BackendRejectsARunOfTheWrongSize) {
  const auto backend = runtime_->create(request());
  Tensor images = Tensor::zeros({1, 1, 1, 1});
  EXPECT_EQ(error_of([&] { backend->run(images); }), ErrorCode::kInvalidArgument);
}

TEST_P(RuntimeConformance, ModelsThatDisagreeWithTheManifestAreRefused) {
  BackendRequest wrong_size = request();
  wrong_size.input_size += 16;
  EXPECT_EQ(error_of([&] { runtime_->create(wrong_size); }), ErrorCode::kModelMismatch);
  BackendRequest wrong_classes = request();
  wrong_classes.num_classes = 5;
  EXPECT_EQ(error_of([&] { runtime_->create(wrong_classes); }), ErrorCode::kModelMismatch);
  BackendRequest wrong_names = request();
  wrong_names.input_name = "pixels";
  EXPECT_EQ(error_of([&] { runtime_->create(wrong_names); }), ErrorCode::kModelMismatch);
}

TEST_P(RuntimeConformance, BadFilesAreErrorsNotCrashes) {
  test::TemporaryDirectory dir;
  BackendRequest missing = request();
  missing.model_file = dir.path() / "absent.model";
  EXPECT_EQ(error_of([&] { runtime_->create(missing); }), ErrorCode::kNotFound);
  BackendRequest garbage = request();
  garbage.model_file = dir.path() / "garbage.model";
  std::ofstream(garbage.model_file) << "this is not a model of any runtime";
  const ErrorCode code = error_of([&] { runtime_->create(garbage); });
  EXPECT_TRUE(code == ErrorCode::kInvalidArgument || code == ErrorCode::kModelMismatch || code == ErrorCode::kRuntimeFailure)
      << to_string(code);
}

TEST_P(RuntimeConformance, BadExecutionOptionsAreInvalidArguments) {
  std::string message;
  EXPECT_EQ(error_of([&] { Classifier::create(options("no-such-provider")); }, &message), ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("no-such-provider"), std::string::npos) << message;
  EXPECT_EQ(error_of([&] { Classifier::create(options("auto", -1)); }), ErrorCode::kInvalidArgument);
  ClassifierOptions unknown_option = options();
  unknown_option.execution.provider_options["no_such_option"] = "1";
  EXPECT_EQ(error_of([&] { Classifier::create(unknown_option); }, &message), ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("no_such_option"), std::string::npos) << message;
}

// Each provider the descriptor lists either runs, or falls back to one that does and says why;
// never silently.
TEST_P(RuntimeConformance, ProvidersRunOrReportTheirFallback) {
  const auto photo = read_file_bytes(test::real_photographs().front());
  std::vector<float> first;
  for (const std::string_view name : runtime_->providers) {
    const std::string provider(name);
    std::unique_ptr<Classifier> classifier;
    try {
      classifier = Classifier::create(options(provider));
    } catch (const Error& e) {
      // A provider may also be refused outright, as long as it says so with a runtime code.
      EXPECT_EQ(e.code(), ErrorCode::kRuntimeUnavailable) << provider << ": " << e.what();
      continue;
    }
    const BackendInfo& info = classifier->backend_info();
    if (info.provider == provider) {
      EXPECT_TRUE(info.fallbacks.empty()) << provider;
    } else {
      ASSERT_FALSE(info.fallbacks.empty()) << provider << " ran on " << info.provider << " without a recorded fallback";
      EXPECT_NE(info.fallbacks.front().find(provider), std::string::npos) << info.fallbacks.front();
    }
    EXPECT_NE(std::find(runtime_->providers.begin(), runtime_->providers.end(), info.provider), runtime_->providers.end()) << info.provider;
    const auto result = classifier->classify(photo);
    if (first.empty()) first = result.probabilities;
    EXPECT_LE(worst_difference(result.probabilities, first), kGoldenTolerance) << provider;
  }
  const auto automatic = Classifier::create(options("auto"));
  EXPECT_NE(std::find(runtime_->providers.begin(), runtime_->providers.end(), automatic->backend_info().provider),
            runtime_->providers.end())
      << automatic->backend_info().provider;
}

std::string runtime_name(const ::testing::TestParamInfo<const RuntimeDescriptor*>& info) { return std::string(info.param->name); }

INSTANTIATE_TEST_SUITE_P(Compiled, RuntimeConformance, ::testing::ValuesIn(compiled_runtimes().begin(), compiled_runtimes().end()),
                         runtime_name);

// What `auto` prefers, per kind of machine (docs/cli.md, "--runtime auto"): on servers and GPU
// machines the ONNX model on ONNX Runtime, its int8 (QDQ) artifact first (taken only on the CPU
// and with passing evidence: choose_runtime, ChooseRuntime.* in tests/core), then TFLite float
// before int8; on ARM CPUs without a GPU the int8 TFLite model first. The descriptors' ranks must reproduce these orders for the
// runtimes this build has.
TEST(RuntimePreference, DescriptorsRankArtifactsInTheDocumentedOrder) {
  using Order = std::vector<std::pair<std::string, std::string>>;
  const std::map<MachineKind, Order> documented = {
      {MachineKind::kServer,
       {{"onnxruntime", "int8"},
        {"onnxruntime", "fp32"},
        {"onnxruntime", "fp16"},
        {"tflite", "fp32"},
        {"tflite", "fp16"},
        {"tflite", "int8"}}},
      {MachineKind::kMobileCpu,
       {{"tflite", "int8"}, {"tflite", "fp16"}, {"tflite", "fp32"}, {"onnxruntime", "fp32"}, {"onnxruntime", "fp16"}}},
  };
  for (const auto& [machine, order] : documented) {
    Order expected, ranked;
    for (const auto& entry : order)
      if (find_runtime(entry.first)) expected.push_back(entry);
    ranked = expected;
    std::stable_sort(ranked.begin(), ranked.end(), [machine](const auto& a, const auto& b) {
      return find_runtime(a.first)->preference(machine, a.second) < find_runtime(b.first)->preference(machine, b.second);
    });
    EXPECT_EQ(ranked, expected) << (machine == MachineKind::kServer ? "server" : "mobile CPU");
  }
}

// On the conformance package (every compiled runtime's fp32 artifact) `auto` takes what the
// documented order puts first for this machine.
TEST(RuntimePreference, AutoFollowsTheRanks) {
  const ModelPackage package = ModelPackage::open(package_dir());
  const RuntimeChoice choice = choose_runtime(package.manifest(), "auto", "auto");
  ASSERT_NE(choice.runtime, nullptr);
  const bool both = package.manifest().find_artifact("onnxruntime", "fp32") && package.manifest().find_artifact("tflite", "fp32") &&
                    find_runtime("onnxruntime") && find_runtime("tflite");
  if (!both) GTEST_SKIP() << "needs both runtimes and both artifacts";
  EXPECT_EQ(choice.runtime->name, this_machine() == MachineKind::kServer ? "onnxruntime" : "tflite");
  EXPECT_EQ(choose_runtime(package.manifest(), "tflite", "auto").runtime->name, "tflite");
}

}  // namespace
}  // namespace dermcds
