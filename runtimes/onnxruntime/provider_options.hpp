// Typed CUDA and TensorRT settings, read from ExecutionOptions (configuration, --device,
// --provider-option) and mapped onto ONNX Runtime's documented provider option names.
//
// ExecutionOptions::provider_options keys are "<provider>:<name>":
//   cuda:<ONNX Runtime CUDA option>          passed through verbatim, e.g. cuda:gpu_mem_limit
//   tensorrt:<ONNX Runtime TensorRT option>  passed through verbatim, e.g. tensorrt:trt_max_workspace_size
//   tensorrt:trt_fp16_enable, tensorrt:trt_int8_enable
//                                            read as booleans: they change the precision the
//                                            result reports and the engine-cache key
//   tensorrt:engine_cache_dir                root of the engine cache; derm-cds keys it by model
//                                            sha256, GPU, TensorRT and ONNX Runtime version
//                                            (tensorrt_engine_cache.hpp)
//   tensorrt:int8_calibration_table          calibration table file for INT8 on an fp32 model
//   tensorrt:max_batch                       builds engines for batches 1..N (explicit profiles)
// The device comes from ExecutionOptions::device_id for both providers.
//
// Option names are checked here, on every machine, against the names ONNX Runtime documents, so
// a typo in a Jetson's configuration fails on the developer's laptop too, not only on the device.
// Options that derm-cds sets itself (device_id, the cache paths, the optimization profiles,
// pointers such as user_compute_stream) are refused with the setting to use instead.
// Errors: parse_gpu_options throws kInvalidArgument naming the key and what is wrong.
// Thread safety: reentrant.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "dermcds/runtime.hpp"

namespace dermcds::runtimes::onnxruntime {

// One option by ONNX Runtime's name, as UpdateCUDAProviderOptions/UpdateTensorRTProviderOptions take it.
struct ProviderOption {
  std::string name;
  std::string value;
  bool operator==(const ProviderOption&) const = default;
};
using ProviderOptionList = std::vector<ProviderOption>;

struct CudaOptions {
  int device_id = 0;
  ProviderOptionList passthrough;  // other documented CUDA options, verbatim
};

struct TensorRTOptions {
  int device_id = 0;
  bool fp16 = false;
  bool int8 = false;
  std::filesystem::path int8_calibration_table;  // empty: none
  std::filesystem::path engine_cache_dir;        // empty: engines are built for every session
  int max_batch = 0;                             // 0: no explicit profile (ONNX Runtime's default)
  ProviderOptionList passthrough;                // other documented trt_* options, verbatim
};

struct GpuOptions {
  CudaOptions cuda;
  TensorRTOptions tensorrt;
};

// `artifact_precision` is the manifest's precision of the ONNX artifact: INT8 on an fp32 model
// needs a calibration table, on an int8 (QDQ) model it must not have one.
GpuOptions parse_gpu_options(const ExecutionOptions& options, std::string_view artifact_precision);

// The precision TensorRT computes in with these options: "int8", "fp16" or the artifact's own.
std::string tensorrt_precision(const TensorRTOptions& options, std::string_view artifact_precision);

// Where TensorRT reads and writes its files for one session (tensorrt_engine_cache.hpp decides).
struct TensorRTFiles {
  std::filesystem::path engine_dir;  // empty: no engine cache
  std::filesystem::path timing_dir;  // empty: no timing cache
  // As ONNX Runtime resolves it: relative to engine_dir when there is one, else a full path.
  std::string calibration_table_name;
};

// The ONNX Runtime option lists, device_id first.
ProviderOptionList cuda_provider_options(const CudaOptions& options);
// `input_name` and `input_size` describe the model's image input [N,3,S,S], for the profiles.
ProviderOptionList tensorrt_provider_options(const TensorRTOptions& options, const TensorRTFiles& files, std::string_view input_name,
                                             int input_size);

}  // namespace dermcds::runtimes::onnxruntime
