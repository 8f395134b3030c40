// Where TensorRT engines built from our ONNX artifacts are cached, and under which key.
//
// A TensorRT engine is only valid for the model, the GPU (its compute capability, and in practice
// the exact device), the TensorRT version, the ONNX Runtime version that partitioned the graph and
// the build settings (precision, calibration table, optimization profile). ONNX Runtime's own
// cache files are named after a hash of the graph and the compute capability only, and its
// documentation leaves invalidation to the user; so derm-cds gives every combination its own
// directory and never has to invalidate anything:
//
//   <root>/engines/<model sha256>/<gpu>_sm<cc>/trt<version>_ort<version>/<precision>[_calib<sha>]_<batch>/
//       key.json            the key, for people and tools
//       *.engine, *.profile ONNX Runtime's files
//   <root>/timing/<gpu>_sm<cc>/trt<version>/   TensorRT's timing cache, shared by all models
//
// Errors: prepare_engine_cache throws kIoError naming the directory or file it could not write.
// Thread safety: reentrant; concurrent preparation of the same key is safe (atomic renames).
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "gpu_probe.hpp"
#include "provider_options.hpp"

namespace dermcds::runtimes::onnxruntime {

struct EngineCacheKey {
  std::string model_sha256;
  GpuIdentity gpu;
  LibraryVersion tensorrt;
  std::string onnxruntime_version;
  std::string precision;           // what TensorRT computes in: "fp32", "fp16", "int8"
  std::string calibration_sha256;  // INT8 with a calibration table; empty otherwise
  int max_batch = 0;               // 0: the profile ONNX Runtime chooses ("dynamic")
};

struct EngineCacheLayout {
  std::filesystem::path engine_dir;
  std::filesystem::path timing_dir;
};

// "NVIDIA GeForce RTX 4090" -> "nvidia-geforce-rtx-4090": safe as one path component.
std::string gpu_slug(std::string_view gpu_name);

EngineCacheLayout engine_cache_layout(const std::filesystem::path& root, const EngineCacheKey& key);

nlohmann::ordered_json to_json(const EngineCacheKey& key);

// Creates both directories, writes key.json the first time, and copies the calibration table (if
// any) into the engine directory, where ONNX Runtime reads it. Returns the files to give TensorRT.
TensorRTFiles prepare_engine_cache(const std::filesystem::path& root, const EngineCacheKey& key,
                                   const std::filesystem::path& calibration_table);

}  // namespace dermcds::runtimes::onnxruntime
