// The provider plan for simulated installations: a CPU-only ONNX Runtime, a GPU build without its
// provider libraries, a complete installation without a GPU, and one with a (stand-in) GPU and
// TensorRT whose engine cache gets keyed and created.
#include <fstream>

#include <gtest/gtest.h>

#include "dermcds/error.hpp"
#include "execution_providers.hpp"
#include "test_support.hpp"

namespace dermcds::runtimes::onnxruntime {
namespace {

const std::filesystem::path kInstallation = DERMCDS_FAKE_INSTALLATION;
// sha256("abc"), FIPS 180-2 appendix B.1: the model file below holds "abc".
const std::string kModelSha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

class ProviderPlan : public ::testing::Test {
 protected:
  void SetUp() override {
    request_.model_file = tmp_.path() / "model.onnx";
    std::ofstream(request_.model_file) << "abc";
    request_.precision = "fp32";
    request_.input_name = "image";
    request_.input_size = 380;
    request_.num_classes = 8;
  }

  // An ONNX Runtime build with every provider whose libraries sit in `library_dir`.
  ProviderEnvironment gpu_build(const std::filesystem::path& library_dir) const {
    return {{"TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"},
            library_dir,
            "1.30.0",
            "/nonexistent/libcuda.so.1",
            {"/nonexistent/libnvinfer.so.10"}};
  }
  // A directory with the provider libraries present (their contents do not matter to the plan).
  std::filesystem::path installed_providers() const {
    const auto dir = tmp_.path() / "onnxruntime";
    std::filesystem::create_directories(dir);
    for (const char* name : {"libonnxruntime_providers_tensorrt.so", "libonnxruntime_providers_cuda.so"}) std::ofstream(dir / name) << "";
    return dir;
  }
  std::vector<ProviderAttempt> plan(const std::string& provider, const ProviderEnvironment& environment) {
    request_.options.provider = provider;
    return plan_providers(request_, environment);
  }

  test::TemporaryDirectory tmp_;
  BackendRequest request_;
};

std::vector<Provider> providers_of(const std::vector<ProviderAttempt>& attempts) {
  std::vector<Provider> out;
  for (const ProviderAttempt& a : attempts) out.push_back(a.provider);
  return out;
}

TEST_F(ProviderPlan, ChainsEndWithTheCpu) {
  const ProviderEnvironment cpu_only{{"CPUExecutionProvider"}, tmp_.path(), "1.30.0", "", {}};
  EXPECT_EQ(providers_of(plan("auto", cpu_only)), (std::vector{Provider::kTensorRT, Provider::kCuda, Provider::kCpu}));
  EXPECT_EQ(providers_of(plan("tensorrt", cpu_only)), (std::vector{Provider::kTensorRT, Provider::kCuda, Provider::kCpu}));
  EXPECT_EQ(providers_of(plan("cuda", cpu_only)), (std::vector{Provider::kCuda, Provider::kCpu}));
  EXPECT_EQ(providers_of(plan("cpu", cpu_only)), (std::vector{Provider::kCpu}));
  try {
    plan("coreml", cpu_only);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("coreml"), std::string::npos);
  }
}

TEST_F(ProviderPlan, CpuOnlyBuildSkipsGpuProvidersQuietlyForAutoAndAudiblyWhenAsked) {
  const ProviderEnvironment cpu_only{{"CPUExecutionProvider"}, tmp_.path(), "1.30.0", "", {}};
  const auto automatic = plan("auto", cpu_only);
  for (int i : {0, 1}) {
    EXPECT_EQ(automatic[i].skip_reason, "not part of this ONNX Runtime build (it has CPUExecutionProvider)");
    EXPECT_FALSE(automatic[i].report_skip);
  }
  EXPECT_TRUE(automatic[2].skip_reason.empty());
  EXPECT_EQ(automatic[2].precision, "fp32");

  const auto asked = plan("tensorrt", cpu_only);
  EXPECT_TRUE(asked[0].report_skip);
  EXPECT_TRUE(asked[1].report_skip);
}

TEST_F(ProviderPlan, GpuBuildWithoutProviderLibrariesNamesTheMissingFile) {
  const auto attempts = plan("tensorrt", gpu_build(tmp_.path()));
  EXPECT_NE(attempts[0].skip_reason.find("libonnxruntime_providers_tensorrt.so is not installed"), std::string::npos)
      << attempts[0].skip_reason;
  EXPECT_NE(attempts[1].skip_reason.find("libonnxruntime_providers_cuda.so is not installed"), std::string::npos)
      << attempts[1].skip_reason;
  EXPECT_NE(attempts[0].skip_reason.find(tmp_.path().string()), std::string::npos);
}

TEST_F(ProviderPlan, InstalledProvidersGetTheirOptionsAndCudaBehindTensorRT) {
  request_.options.device_id = 1;
  request_.options.provider_options = {{"tensorrt:trt_fp16_enable", "1"}, {"cuda:gpu_mem_limit", "1073741824"}};
  const auto attempts = plan("tensorrt", gpu_build(installed_providers()));
  ASSERT_EQ(attempts.size(), 3u);
  for (const ProviderAttempt& a : attempts) EXPECT_TRUE(a.skip_reason.empty()) << a.skip_reason;
  EXPECT_EQ(attempts[0].options, (ProviderOptionList{{"device_id", "1"}, {"trt_fp16_enable", "1"}, {"trt_int8_enable", "0"}}));
  EXPECT_EQ(attempts[0].precision, "fp16");
  EXPECT_EQ(attempts[0].cuda_behind_tensorrt, (ProviderOptionList{{"device_id", "1"}, {"gpu_mem_limit", "1073741824"}}));
  EXPECT_EQ(attempts[1].options, attempts[0].cuda_behind_tensorrt);
  EXPECT_EQ(attempts[1].precision, "fp32");  // FP16 is a TensorRT build setting; CUDA runs the fp32 model
  EXPECT_TRUE(attempts[2].options.empty());
}

TEST_F(ProviderPlan, EngineCacheWithoutAGpuSkipsTensorRTButNotCuda) {
  request_.options.provider_options = {{"tensorrt:engine_cache_dir", (tmp_.path() / "cache").string()}};
  // Installed but unusable is reported even for "auto": the provider exists, the machine fails it.
  const auto attempts = plan("auto", gpu_build(installed_providers()));
  EXPECT_NE(attempts[0].skip_reason.find("cannot key the engine cache to GPU 0: no CUDA driver"), std::string::npos)
      << attempts[0].skip_reason;
  EXPECT_TRUE(attempts[0].report_skip);
  EXPECT_TRUE(attempts[1].skip_reason.empty());
  EXPECT_FALSE(std::filesystem::exists(tmp_.path() / "cache"));
}

TEST_F(ProviderPlan, EngineCacheIsKeyedByModelGpuAndVersionsAndCreated) {
  const auto cache = tmp_.path() / "cache";
  request_.options.provider_options = {
      {"tensorrt:engine_cache_dir", cache.string()}, {"tensorrt:trt_fp16_enable", "1"}, {"tensorrt:max_batch", "8"}};
  ProviderEnvironment environment = gpu_build(installed_providers());
  environment.cuda_driver_library = (kInstallation / "libcuda.so.1").string();
  environment.tensorrt_libraries = {(kInstallation / "libnvinfer.so.10").string()};
  const auto attempts = plan("tensorrt", environment);
  ASSERT_TRUE(attempts[0].skip_reason.empty()) << attempts[0].skip_reason;

  const auto engine_dir = cache / "engines" / kModelSha / "nvidia-jetson-agx-orin-fake_sm87" / "trt10.3.0_ort1.30.0" / "fp16_batch8";
  const auto timing_dir = cache / "timing" / "nvidia-jetson-agx-orin-fake_sm87" / "trt10.3.0";
  EXPECT_EQ(attempts[0].engine_dir, engine_dir);
  EXPECT_TRUE(std::filesystem::exists(engine_dir / "key.json"));
  EXPECT_TRUE(std::filesystem::is_directory(timing_dir));
  EXPECT_EQ(attempts[0].max_batch, 8);
  const ProviderOptionList& options = attempts[0].options;
  for (const ProviderOption& expected :
       {ProviderOption{"trt_engine_cache_enable", "1"}, ProviderOption{"trt_engine_cache_path", engine_dir.string()},
        ProviderOption{"trt_timing_cache_path", timing_dir.string()}, ProviderOption{"trt_profile_max_shapes", "image:8x3x380x380"}})
    EXPECT_NE(std::find(options.begin(), options.end(), expected), options.end()) << expected.name;
}

TEST_F(ProviderPlan, MissingCalibrationTableSkipsTensorRTWithTheReason) {
  request_.options.provider_options = {{"tensorrt:trt_int8_enable", "1"},
                                       {"tensorrt:int8_calibration_table", "/nonexistent/calibration.flatbuffers"}};
  const auto attempts = plan("tensorrt", gpu_build(installed_providers()));
  EXPECT_EQ(attempts[0].skip_reason, "the INT8 calibration table /nonexistent/calibration.flatbuffers does not exist");
  EXPECT_EQ(attempts[0].precision, "int8");
  EXPECT_TRUE(attempts[1].skip_reason.empty());
}

TEST_F(ProviderPlan, BadOptionsAreErrorsEvenWhenOnlyTheCpuIsRequested) {
  request_.options.provider_options = {{"tensorrt:trt_fp16_enabled", "1"}};
  const ProviderEnvironment cpu_only{{"CPUExecutionProvider"}, tmp_.path(), "1.30.0", "", {}};
  EXPECT_THROW(plan("cpu", cpu_only), Error);
}

TEST(ProviderFailure, ReasonIsOnnxRuntimesMessageWithoutItsSourceLocation) {
  // As ONNX Runtime 1.30 words a provider library without its entry point.
  const std::string message =
      "/onnxruntime_src/onnxruntime/core/session/provider_bridge_ort.cc:1988 onnxruntime::Provider& "
      "onnxruntime::ProviderLibrary::Get() [ONNXRuntimeError] : 1 : FAIL : Failed to get symbol GetProvider with error: "
      "/opt/ort/libonnxruntime_providers_tensorrt.so: undefined symbol: GetProvider\n";
  EXPECT_EQ(concise_failure(message),
            "Failed to get symbol GetProvider with error: /opt/ort/libonnxruntime_providers_tensorrt.so: undefined symbol: GetProvider");
  EXPECT_EQ(concise_failure("OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library"),
            "OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library");
}

}  // namespace
}  // namespace dermcds::runtimes::onnxruntime
