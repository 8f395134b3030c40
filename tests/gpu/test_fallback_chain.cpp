// The fallback chain with the real ONNX Runtime of this build, on a machine without a GPU: asked
// for TensorRT (with every GPU option set), the classifier still answers, on the CPU, with the
// numpy reference's probabilities, and every result names the provider that ran and why each
// provider before it did not.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dermcds/classifier.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "test_support.hpp"

namespace dermcds {
namespace {

std::filesystem::path tiny_dir() { return test::work_dir() / "core"; }

std::unique_ptr<Classifier> open_tiny(ExecutionOptions execution) {
  ClassifierOptions options;
  options.package = tiny_dir() / "repository" / "tiny" / "1";
  options.execution = std::move(execution);
  return Classifier::create(options);
}

ExecutionOptions tensorrt_with_every_option(const std::filesystem::path& cache) {
  ExecutionOptions execution;
  execution.provider = "tensorrt";
  execution.device_id = 0;
  execution.provider_options = {{"tensorrt:engine_cache_dir", cache.string()},
                                {"tensorrt:trt_fp16_enable", "1"},
                                {"tensorrt:max_batch", "4"},
                                {"tensorrt:trt_builder_optimization_level", "3"},
                                {"cuda:gpu_mem_limit", "1073741824"}};
  return execution;
}

// A reason ONNX Runtime's own state explains: the provider is not in this build (the arm64
// library) or its library is not installed (the x86_64 library lists CUDA and TensorRT).
bool explains_absence(const std::string& reason) {
  return reason.find("not part of this ONNX Runtime build") != std::string::npos ||
         reason.find("is not installed next to the ONNX Runtime library") != std::string::npos;
}

TEST(FallbackChain, TensorRTRequestFallsBackThroughCudaToCpuWithReasons) {
  test::TemporaryDirectory tmp;
  const auto classifier = open_tiny(tensorrt_with_every_option(tmp.path() / "cache"));
  EXPECT_EQ(classifier->backend_info().provider, "cpu");
  // FP16 is what TensorRT would have computed in; the CPU ran the fp32 model.
  EXPECT_EQ(classifier->backend_info().precision, "fp32");
  const auto& fallbacks = classifier->backend_info().fallbacks;
  ASSERT_EQ(fallbacks.size(), 2u);
  EXPECT_EQ(fallbacks[0].rfind("tensorrt: ", 0), 0u) << fallbacks[0];
  EXPECT_EQ(fallbacks[1].rfind("cuda: ", 0), 0u) << fallbacks[1];
  EXPECT_TRUE(explains_absence(fallbacks[0])) << fallbacks[0];
  EXPECT_TRUE(explains_absence(fallbacks[1])) << fallbacks[1];
  // Nothing was keyed or built for a provider that never ran.
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "cache"));
  // No TensorRT profile limits the batch when TensorRT is not what runs.
  EXPECT_EQ(classifier->max_batch(), 0);
}

TEST(FallbackChain, FallenBackResultsMatchTheNumpyReference) {
  test::TemporaryDirectory tmp;
  const auto classifier = open_tiny(tensorrt_with_every_option(tmp.path() / "cache"));
  const nlohmann::json references = nlohmann::json::parse(std::ifstream(tiny_dir() / "tiny_reference.json"));
  ASSERT_GE(references.size(), 4u);
  std::vector<PreparedImage> prepared;
  for (const auto& reference : references) {
    const auto result = classifier->classify(read_file_bytes(reference["image"].get<std::string>()));
    const auto expected = reference["probabilities"].get<std::vector<double>>();
    ASSERT_EQ(result.probabilities.size(), expected.size());
    for (std::size_t c = 0; c < expected.size(); ++c)
      EXPECT_NEAR(result.probabilities[c], expected[c], 1e-4) << reference["image"] << " class " << c;
    prepared.push_back(classifier->prepare(read_file_bytes(reference["image"].get<std::string>())));
  }
  // Every result of a batch, not only the first, says what ran and what did not.
  for (const ClassificationResult& result : classifier->classify_batch(prepared)) {
    EXPECT_EQ(result.provider, "cpu");
    EXPECT_EQ(result.fallbacks, classifier->backend_info().fallbacks);
    const auto json = to_json(result);
    EXPECT_EQ(json["execution_provider"], "cpu");
    EXPECT_EQ(json["fallbacks"].size(), 2u);
  }
}

TEST(FallbackChain, CudaRequestSkipsTensorRTEntirely) {
  ExecutionOptions execution;
  execution.provider = "cuda";
  const auto classifier = open_tiny(execution);
  ASSERT_EQ(classifier->backend_info().fallbacks.size(), 1u);
  EXPECT_EQ(classifier->backend_info().fallbacks[0].rfind("cuda: ", 0), 0u);
}

TEST(FallbackChain, ConfigurationMistakesAreErrorsOnEveryMachine) {
  // A Jetson's configuration with a typo fails here, on a machine that would never use it.
  ExecutionOptions execution;
  execution.provider = "cpu";
  execution.provider_options = {{"tensorrt:trt_engine_cache_path", "/var/cache/trt"}};
  try {
    open_tiny(execution);
    FAIL() << "accepted an option derm-cds sets itself";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("tensorrt:engine_cache_dir"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dermcds
