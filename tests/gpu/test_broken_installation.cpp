// The fallback chain through an installation that has everything on disk and still cannot run
// on a GPU: this program loads ONNX Runtime from tests/gpu's fake installation directory, where
// the provider libraries are stand-ins that do not load and libcuda.so.1/libnvinfer.so.10 answer
// like a Jetson AGX Orin with TensorRT 10.3. So the TensorRT attempt gets as far as keying and
// creating its engine cache, then ONNX Runtime itself refuses the provider library; the reason is
// ONNX Runtime's, CUDA fails the same way, and the CPU serves the request.
#include <dlfcn.h>

#include <fstream>

#include <gtest/gtest.h>
#include <onnxruntime_cxx_api.h>
#include <nlohmann/json.hpp>

#include "dermcds/classifier.hpp"
#include "dermcds/file_bytes.hpp"
#include "test_support.hpp"

namespace dermcds {
namespace {

const std::filesystem::path kInstallation = DERMCDS_FAKE_INSTALLATION;
std::filesystem::path tiny_package() { return test::work_dir() / "core" / "repository" / "tiny" / "1"; }

class BrokenInstallation : public ::testing::Test {
 protected:
  void SetUp() override {
    // The classifier initialises the API; do the same before asking what this build has.
    Ort::InitApi(OrtGetApiBase()->GetApi(ORT_API_VERSION));
    const auto providers = Ort::GetAvailableProviders();
    if (std::find(providers.begin(), providers.end(), "TensorrtExecutionProvider") == providers.end())
      GTEST_SKIP() << "this ONNX Runtime build has no TensorRT provider whose installation could be broken";
  }
};

std::unique_ptr<Classifier> open_tiny(const std::string& provider, std::map<std::string, std::string> provider_options = {}) {
  ClassifierOptions options;
  options.package = tiny_package();
  options.execution.provider = provider;
  options.execution.provider_options = std::move(provider_options);
  return Classifier::create(options);
}

TEST_F(BrokenInstallation, OnnxRuntimeLoadsFromTheFakeInstallation) {
  // The premise of every other test here.
  Dl_info info{};
  ASSERT_NE(::dladdr(reinterpret_cast<const void*>(&OrtGetApiBase), &info), 0);
  EXPECT_EQ(std::filesystem::path(info.dli_fname).parent_path(), kInstallation);
}

TEST_F(BrokenInstallation, ProvidersThatFailToLoadAreReportedWithOnnxRuntimesReason) {
  test::TemporaryDirectory tmp;
  const auto cache = tmp.path() / "trt-cache";
  const auto classifier = open_tiny(
      "tensorrt", {{"tensorrt:engine_cache_dir", cache.string()}, {"tensorrt:trt_fp16_enable", "1"}, {"tensorrt:max_batch", "4"}});
  const BackendInfo& info = classifier->backend_info();
  EXPECT_EQ(info.provider, "cpu");
  EXPECT_EQ(info.precision, "fp32");
  ASSERT_EQ(info.fallbacks.size(), 2u);
  EXPECT_EQ(info.fallbacks[0].rfind("tensorrt: ", 0), 0u) << info.fallbacks[0];
  EXPECT_EQ(info.fallbacks[1].rfind("cuda: ", 0), 0u) << info.fallbacks[1];
  for (const std::string& reason : info.fallbacks) {
    // ONNX Runtime names the library of the fake installation it could not use.
    EXPECT_NE(reason.find(kInstallation.string() + "/libonnxruntime_providers_"), std::string::npos) << reason;
    EXPECT_EQ(reason.find("not installed"), std::string::npos) << reason;
    EXPECT_EQ(reason.find("onnxruntime_src"), std::string::npos) << "reason keeps ONNX Runtime's source location: " << reason;
  }
  EXPECT_EQ(classifier->max_batch(), 0);  // the profile was TensorRT's, and TensorRT did not run

  // The engine cache was keyed and created before ONNX Runtime refused: model sha256 as the
  // manifest records it (Python's hashlib), the stand-in GPU and TensorRT, this ONNX Runtime.
  const auto manifest = nlohmann::json::parse(std::ifstream(tiny_package() / "manifest.json"));
  const std::string model_sha = manifest["artifacts"][0]["sha256"];
  const auto engine_dir =
      cache / "engines" / model_sha / "nvidia-jetson-agx-orin-fake_sm87" / ("trt10.3.0_ort" + info.runtime_version) / "fp16_batch4";
  ASSERT_TRUE(std::filesystem::exists(engine_dir / "key.json")) << engine_dir;
  const auto key = nlohmann::json::parse(std::ifstream(engine_dir / "key.json"));
  EXPECT_EQ(key["model_sha256"], model_sha);
  EXPECT_EQ(key["gpu"]["compute_capability"], "8.7");
  EXPECT_EQ(key["tensorrt_version"], "10.3.0");
  EXPECT_EQ(key["precision"], "fp16");
}

TEST_F(BrokenInstallation, AutoReportsInstalledProvidersThatFail) {
  // "auto" is quiet about providers an installation lacks, never about ones it has that fail.
  const auto classifier = open_tiny("auto");
  EXPECT_EQ(classifier->backend_info().provider, "cpu");
  ASSERT_EQ(classifier->backend_info().fallbacks.size(), 2u);
}

TEST_F(BrokenInstallation, AnswersStillMatchTheNumpyReference) {
  const auto classifier = open_tiny("tensorrt");
  const auto references = nlohmann::json::parse(std::ifstream(test::work_dir() / "core" / "tiny_reference.json"));
  for (const auto& reference : references) {
    const auto result = classifier->classify(read_file_bytes(reference["image"].get<std::string>()));
    EXPECT_EQ(result.provider, "cpu");
    const auto expected = reference["probabilities"].get<std::vector<double>>();
    for (std::size_t c = 0; c < expected.size(); ++c) EXPECT_NEAR(result.probabilities[c], expected[c], 1e-4);
  }
}

}  // namespace
}  // namespace dermcds
