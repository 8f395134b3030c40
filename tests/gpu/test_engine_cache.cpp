// The TensorRT engine-cache key and layout: every input that invalidates an engine gets its own
// directory, and the directory says what it holds.
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dermcds/error.hpp"
#include "tensorrt_engine_cache.hpp"
#include "test_support.hpp"

namespace dermcds::runtimes::onnxruntime {
namespace {

const std::string kSha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

EngineCacheKey orin_key() {
  EngineCacheKey key;
  key.model_sha256 = kSha;
  key.gpu = {"NVIDIA Jetson AGX Orin", 8, 7};
  key.tensorrt = {10, 3, 0};
  key.onnxruntime_version = "1.30.0";
  key.precision = "fp16";
  key.max_batch = 8;
  return key;
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(EngineCache, LayoutNamesModelGpuVersionsAndSettings) {
  const EngineCacheLayout layout = engine_cache_layout("/var/cache/dermcds/trt", orin_key());
  EXPECT_EQ(layout.engine_dir, std::filesystem::path("/var/cache/dermcds/trt/engines/" + kSha +
                                                     "/nvidia-jetson-agx-orin_sm87/trt10.3.0_ort1.30.0/fp16_batch8"));
  EXPECT_EQ(layout.timing_dir, std::filesystem::path("/var/cache/dermcds/trt/timing/nvidia-jetson-agx-orin_sm87/trt10.3.0"));

  EngineCacheKey int8 = orin_key();
  int8.precision = "int8";
  int8.calibration_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  int8.max_batch = 0;
  EXPECT_EQ(engine_cache_layout("/c", int8).engine_dir.filename(), "int8_calib0123456789abcdef_dynamic");
}

TEST(EngineCache, EveryInputThatInvalidatesAnEngineChangesTheDirectory) {
  std::vector<EngineCacheKey> keys(8, orin_key());
  keys[1].model_sha256[0] = 'c';
  keys[2].gpu.name = "NVIDIA GeForce RTX 4090";
  keys[3].gpu.compute_minor = 9;
  keys[4].tensorrt.minor = 4;
  keys[5].onnxruntime_version = "1.31.0";
  keys[6].precision = "fp32";
  keys[7].max_batch = 16;
  std::set<std::filesystem::path> dirs;
  for (const EngineCacheKey& key : keys) dirs.insert(engine_cache_layout("/c", key).engine_dir);
  EXPECT_EQ(dirs.size(), keys.size());
  EXPECT_EQ(engine_cache_layout("/c", orin_key()).engine_dir, engine_cache_layout("/c", keys[0]).engine_dir);

  // The timing cache depends on the GPU and TensorRT only, so models share it.
  EXPECT_EQ(engine_cache_layout("/c", keys[1]).timing_dir, engine_cache_layout("/c", keys[0]).timing_dir);
  EXPECT_NE(engine_cache_layout("/c", keys[4]).timing_dir, engine_cache_layout("/c", keys[0]).timing_dir);
}

TEST(EngineCache, GpuNamesBecomeOnePathComponent) {
  EXPECT_EQ(gpu_slug("NVIDIA GeForce RTX 4090"), "nvidia-geforce-rtx-4090");
  EXPECT_EQ(gpu_slug("Orin (nvgpu)"), "orin-nvgpu");
  EXPECT_EQ(gpu_slug("../../etc/passwd"), "etc-passwd");
  EXPECT_EQ(gpu_slug("  "), "unnamed-gpu");
}

TEST(EngineCache, PrepareCreatesTheDirectoriesAndDescribesTheKey) {
  test::TemporaryDirectory tmp;
  const TensorRTFiles files = prepare_engine_cache(tmp.path(), orin_key(), {});
  const EngineCacheLayout layout = engine_cache_layout(tmp.path(), orin_key());
  EXPECT_EQ(files.engine_dir, layout.engine_dir);
  EXPECT_EQ(files.timing_dir, layout.timing_dir);
  EXPECT_TRUE(files.calibration_table_name.empty());
  EXPECT_TRUE(std::filesystem::is_directory(layout.timing_dir));

  const auto key = nlohmann::json::parse(read_text(layout.engine_dir / "key.json"));
  EXPECT_EQ(key["model_sha256"], kSha);
  EXPECT_EQ(key["gpu"]["name"], "NVIDIA Jetson AGX Orin");
  EXPECT_EQ(key["gpu"]["compute_capability"], "8.7");
  EXPECT_EQ(key["tensorrt_version"], "10.3.0");
  EXPECT_EQ(key["onnxruntime_version"], "1.30.0");
  EXPECT_EQ(key["precision"], "fp16");
  EXPECT_EQ(key["max_batch"], 8);

  // Preparing again (a restart) keeps what is there, engines included.
  std::ofstream(layout.engine_dir / "model.engine") << "engine bytes";
  prepare_engine_cache(tmp.path(), orin_key(), {});
  EXPECT_EQ(read_text(layout.engine_dir / "model.engine"), "engine bytes");
}

TEST(EngineCache, CalibrationTableIsCopiedWhereOnnxRuntimeReadsIt) {
  test::TemporaryDirectory tmp;
  const auto table = tmp.path() / "calibration.flatbuffers";
  std::ofstream(table) << "calibration";
  EngineCacheKey key = orin_key();
  key.precision = "int8";
  key.calibration_sha256 = std::string(64, 'a');
  const TensorRTFiles files = prepare_engine_cache(tmp.path() / "cache", key, table);
  EXPECT_EQ(files.calibration_table_name, "calibration.flatbuffers");
  EXPECT_EQ(read_text(files.engine_dir / "calibration.flatbuffers"), "calibration");
}

TEST(EngineCache, UnwritableRootIsAnIoErrorNamingTheDirectory) {
  test::TemporaryDirectory tmp;
  const auto not_a_directory = tmp.path() / "file";
  std::ofstream(not_a_directory) << "x";
  try {
    prepare_engine_cache(not_a_directory, orin_key(), {});
    FAIL() << "prepared a cache under a regular file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIoError);
    EXPECT_NE(std::string(e.what()).find(not_a_directory.string()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dermcds::runtimes::onnxruntime
