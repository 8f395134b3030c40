// The GPU and TensorRT probes against stand-in libraries (fake_cuda_driver.c, fake_tensorrt.c)
// with the C ABI of the CUDA driver API and libnvinfer's version functions.
#include <filesystem>

#include <gtest/gtest.h>

#include "gpu_probe.hpp"

namespace dermcds::runtimes::onnxruntime {
namespace {

const std::filesystem::path kInstallation = DERMCDS_FAKE_INSTALLATION;
const std::filesystem::path kFakes = DERMCDS_FAKE_ROOT;

TEST(GpuProbe, ReadsNameAndComputeCapabilityFromTheDriver) {
  const auto gpu = probe_cuda_device(0, (kInstallation / "libcuda.so.1").string());
  ASSERT_TRUE(gpu.value) << gpu.error;
  EXPECT_EQ(gpu.value->name, "NVIDIA Jetson AGX Orin (fake)");
  EXPECT_EQ(gpu.value->compute_major, 8);
  EXPECT_EQ(gpu.value->compute_minor, 7);
}

TEST(GpuProbe, SaysWhyThereIsNoGpu) {
  const auto missing = probe_cuda_device(0, "/nonexistent/libcuda.so.1");
  EXPECT_FALSE(missing.value);
  EXPECT_NE(missing.error.find("no CUDA driver"), std::string::npos) << missing.error;
  EXPECT_NE(missing.error.find("/nonexistent/libcuda.so.1"), std::string::npos) << missing.error;

  const auto no_device = probe_cuda_device(0, (kFakes / "no-device" / "libcuda.so.1").string());
  EXPECT_FALSE(no_device.value);
  EXPECT_NE(no_device.error.find("cuInit failed with CUDA_ERROR_NO_DEVICE (100)"), std::string::npos) << no_device.error;

  const auto second = probe_cuda_device(1, (kInstallation / "libcuda.so.1").string());
  EXPECT_FALSE(second.value);
  EXPECT_NE(second.error.find("no CUDA device 1 (the driver reports 1)"), std::string::npos) << second.error;

  // A library that is not the CUDA driver.
  const auto wrong = probe_cuda_device(0, (kInstallation / "libnvinfer.so.10").string());
  EXPECT_FALSE(wrong.value);
  EXPECT_NE(wrong.error.find("lacks the CUDA driver API"), std::string::npos) << wrong.error;
}

TEST(TensorRTProbe, ReadsTheVersionOfTheFirstLibraryThatLoads) {
  const auto trt10 = probe_tensorrt_version({"/nonexistent/libnvinfer.so.10", (kInstallation / "libnvinfer.so.10").string()});
  ASSERT_TRUE(trt10.value) << trt10.error;
  EXPECT_EQ(trt10.value->text(), "10.3.0");

  // TensorRT 8 has only the single encoded integer.
  const auto trt8 = probe_tensorrt_version({(kFakes / "tensorrt-8" / "libnvinfer.so.8").string()});
  ASSERT_TRUE(trt8.value) << trt8.error;
  EXPECT_EQ(trt8.value->text(), "8.6.1");

  const auto none = probe_tensorrt_version({"/nonexistent/a.so", "/nonexistent/b.so"});
  EXPECT_FALSE(none.value);
  EXPECT_NE(none.error.find("/nonexistent/a.so"), std::string::npos) << none.error;
  EXPECT_NE(none.error.find("/nonexistent/b.so"), std::string::npos) << none.error;

  const auto not_tensorrt = probe_tensorrt_version({(kInstallation / "libcuda.so.1").string()});
  EXPECT_FALSE(not_tensorrt.value);
  EXPECT_NE(not_tensorrt.error.find("getInferLibVersion"), std::string::npos) << not_tensorrt.error;
}

TEST(TensorRTProbe, DecodesBothVersionEncodings) {
  // NvInferRuntimeBase.h: major*1000 + minor*100 + patch up to TensorRT 9; NvInferVersion.h of
  // TensorRT 10: (major*100 + minor)*100 + patch.
  EXPECT_EQ(decode_tensorrt_version(8601).text(), "8.6.1");
  EXPECT_EQ(decode_tensorrt_version(8502).text(), "8.5.2");
  EXPECT_EQ(decode_tensorrt_version(100300).text(), "10.3.0");
  EXPECT_EQ(decode_tensorrt_version(101201).text(), "10.12.1");
}

}  // namespace
}  // namespace dermcds::runtimes::onnxruntime
