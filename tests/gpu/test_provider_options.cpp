// Typed CUDA/TensorRT options: what configuration may say, and the ONNX Runtime option names and
// values it becomes (names as in ONNX Runtime's TensorRT/CUDA execution-provider documentation).
#include <gtest/gtest.h>

#include "dermcds/error.hpp"
#include "provider_options.hpp"

namespace dermcds::runtimes::onnxruntime {
namespace {

ExecutionOptions with(std::map<std::string, std::string> provider_options, int device_id = 0) {
  ExecutionOptions options;
  options.provider = "tensorrt";
  options.device_id = device_id;
  options.provider_options = std::move(provider_options);
  return options;
}

// The message of the kInvalidArgument error parse_gpu_options throws ("" if it does not).
std::string refusal(const ExecutionOptions& options, std::string_view precision = "fp32") {
  try {
    parse_gpu_options(options, precision);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    return e.what();
  }
  return "";
}

TEST(GpuOptions, TypedSettingsAreRead) {
  const GpuOptions gpu = parse_gpu_options(with({{"tensorrt:trt_fp16_enable", "true"},
                                                 {"tensorrt:engine_cache_dir", "/var/cache/dermcds/trt"},
                                                 {"tensorrt:max_batch", "8"},
                                                 {"tensorrt:trt_builder_optimization_level", "3"},
                                                 {"cuda:gpu_mem_limit", "2147483648"}},
                                                /*device_id=*/1),
                                           "fp32");
  EXPECT_EQ(gpu.cuda.device_id, 1);
  EXPECT_EQ(gpu.tensorrt.device_id, 1);
  EXPECT_TRUE(gpu.tensorrt.fp16);
  EXPECT_FALSE(gpu.tensorrt.int8);
  EXPECT_EQ(gpu.tensorrt.engine_cache_dir, "/var/cache/dermcds/trt");
  EXPECT_EQ(gpu.tensorrt.max_batch, 8);
  EXPECT_EQ(gpu.tensorrt.passthrough, (ProviderOptionList{{"trt_builder_optimization_level", "3"}}));
  EXPECT_EQ(gpu.cuda.passthrough, (ProviderOptionList{{"gpu_mem_limit", "2147483648"}}));
}

TEST(GpuOptions, DefaultsRequestPlainFp32WithoutCache) {
  const GpuOptions gpu = parse_gpu_options(with({}), "fp32");
  EXPECT_FALSE(gpu.tensorrt.fp16);
  EXPECT_FALSE(gpu.tensorrt.int8);
  EXPECT_TRUE(gpu.tensorrt.engine_cache_dir.empty());
  EXPECT_EQ(gpu.tensorrt.max_batch, 0);
  EXPECT_EQ(tensorrt_precision(gpu.tensorrt, "fp32"), "fp32");
  EXPECT_EQ(cuda_provider_options(gpu.cuda), (ProviderOptionList{{"device_id", "0"}}));
  EXPECT_EQ(tensorrt_provider_options(gpu.tensorrt, {}, "image", 380),
            (ProviderOptionList{{"device_id", "0"}, {"trt_fp16_enable", "0"}, {"trt_int8_enable", "0"}}));
}

TEST(GpuOptions, TensorRTOptionsMapOntoOnnxRuntimeNames) {
  TensorRTOptions trt;
  trt.device_id = 2;
  trt.fp16 = true;
  trt.max_batch = 8;
  trt.passthrough = {{"trt_max_workspace_size", "1073741824"}};
  const TensorRTFiles files{"/cache/engines/x", "/cache/timing/y", ""};
  const ProviderOptionList expected = {
      {"device_id", "2"},
      {"trt_fp16_enable", "1"},
      {"trt_int8_enable", "0"},
      {"trt_engine_cache_enable", "1"},
      {"trt_engine_cache_path", "/cache/engines/x"},
      {"trt_timing_cache_enable", "1"},
      {"trt_timing_cache_path", "/cache/timing/y"},
      // One profile: every batch from 1 to max_batch of [N,3,380,380] images.
      {"trt_profile_min_shapes", "image:1x3x380x380"},
      {"trt_profile_opt_shapes", "image:8x3x380x380"},
      {"trt_profile_max_shapes", "image:8x3x380x380"},
      {"trt_max_workspace_size", "1073741824"},
  };
  EXPECT_EQ(tensorrt_provider_options(trt, files, "image", 380), expected);
}

TEST(GpuOptions, Int8NeedsACalibrationTableForAnFp32Model) {
  EXPECT_NE(refusal(with({{"tensorrt:trt_int8_enable", "1"}})).find("tensorrt:int8_calibration_table"), std::string::npos);

  const GpuOptions gpu = parse_gpu_options(
      with({{"tensorrt:trt_int8_enable", "1"}, {"tensorrt:int8_calibration_table", "/models/calibration.flatbuffers"}}), "fp32");
  EXPECT_EQ(gpu.tensorrt.int8_calibration_table, "/models/calibration.flatbuffers");
  EXPECT_EQ(tensorrt_precision(gpu.tensorrt, "fp32"), "int8");
  const ProviderOptionList list = tensorrt_provider_options(gpu.tensorrt, {"", "", "/models/calibration.flatbuffers"}, "image", 224);
  EXPECT_NE(std::find(list.begin(), list.end(), ProviderOption{"trt_int8_calibration_table_name", "/models/calibration.flatbuffers"}),
            list.end());
  EXPECT_NE(std::find(list.begin(), list.end(), ProviderOption{"trt_int8_enable", "1"}), list.end());

  // A model quantized with Q/DQ nodes carries its own scales: no table, and none allowed.
  EXPECT_EQ(refusal(with({{"tensorrt:trt_int8_enable", "1"}}), "int8"), "");
  EXPECT_NE(refusal(with({{"tensorrt:trt_int8_enable", "1"}, {"tensorrt:int8_calibration_table", "/t"}}), "int8"), "");
  // A table without INT8 is a configuration mistake, not something to ignore.
  EXPECT_NE(refusal(with({{"tensorrt:int8_calibration_table", "/t"}})).find("trt_int8_enable"), std::string::npos);
}

TEST(GpuOptions, PrecisionReportedIsWhatTensorRTComputesIn) {
  TensorRTOptions trt;
  EXPECT_EQ(tensorrt_precision(trt, "fp32"), "fp32");
  trt.fp16 = true;
  EXPECT_EQ(tensorrt_precision(trt, "fp32"), "fp16");
  trt.int8 = true;  // INT8 with FP16 enabled: layers TensorRT cannot run in INT8 may use FP16
  EXPECT_EQ(tensorrt_precision(trt, "fp32"), "int8");
}

TEST(GpuOptions, UnknownNamesAreRefusedNamingTheKey) {
  for (const char* key : {"tensorrt:trt_fp16", "cuda:gpu_memory_limit", "openvino:device_type", "cuda_mem_limit", "tensorrt:"}) {
    const std::string message = refusal(with({{key, "1"}}));
    EXPECT_NE(message.find(std::string("'") + key + "'"), std::string::npos) << message;
  }
}

TEST(GpuOptions, OptionsDermcdsSetsItselfPointToTheSettingToUse) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"tensorrt:trt_engine_cache_path", "tensorrt:engine_cache_dir"},
      {"tensorrt:trt_engine_cache_enable", "tensorrt:engine_cache_dir"},
      {"tensorrt:trt_timing_cache_path", "tensorrt:engine_cache_dir"},
      {"tensorrt:trt_profile_max_shapes", "tensorrt:max_batch"},
      {"tensorrt:trt_int8_calibration_table_name", "tensorrt:int8_calibration_table"},
      {"tensorrt:device_id", "--device"},
      {"cuda:device_id", "--device"},
      {"cuda:user_compute_stream", "pointers"},
  };
  for (const auto& [key, instead] : cases) {
    const std::string message = refusal(with({{key, "1"}}));
    EXPECT_NE(message.find(instead), std::string::npos) << key << ": " << message;
  }
}

TEST(GpuOptions, BadValuesAreRefused) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{{"tensorrt:trt_fp16_enable", "yes"},
                                                                                   {"tensorrt:trt_int8_enable", ""},
                                                                                   {"tensorrt:max_batch", "0"},
                                                                                   {"tensorrt:max_batch", "8x"},
                                                                                   {"tensorrt:max_batch", "100000"},
                                                                                   {"tensorrt:engine_cache_dir", ""}}) {
    const std::string message = refusal(with({{key, value}}));
    EXPECT_NE(message.find(key), std::string::npos) << key << "=" << value << ": " << message;
  }
  ExecutionOptions negative_device = with({});
  negative_device.device_id = -1;
  EXPECT_NE(refusal(negative_device), "");
}

}  // namespace
}  // namespace dermcds::runtimes::onnxruntime
