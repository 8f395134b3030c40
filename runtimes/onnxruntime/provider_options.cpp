#include "provider_options.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include "dermcds/error.hpp"

namespace dermcds::runtimes::onnxruntime {

namespace {

constexpr std::string_view kCudaPrefix = "cuda:";
constexpr std::string_view kTensorRTPrefix = "tensorrt:";

// Option names from ONNX Runtime's CUDA and TensorRT execution-provider documentation (and their
// option parsers), up to 1.30. A name ONNX Runtime added later is refused here until it is added.
using namespace std::string_view_literals;
constexpr std::array kCudaPassthrough = {
    "gpu_mem_limit"sv,
    "arena_extend_strategy"sv,
    "cudnn_conv_algo_search"sv,
    "do_copy_in_default_stream"sv,
    "cudnn_conv_use_max_workspace"sv,
    "cudnn_conv1d_pad_to_nc1d"sv,
    "enable_cuda_graph"sv,
    "tunable_op_enable"sv,
    "tunable_op_tuning_enable"sv,
    "tunable_op_max_tuning_duration_ms"sv,
    "enable_skip_layer_norm_strict_mode"sv,
    "prefer_nhwc"sv,
    "use_ep_level_unified_stream"sv,
    "use_tf32"sv,
    "sdpa_kernel"sv,
    "fuse_conv_bias"sv,
};
constexpr std::array kTensorRTPassthrough = {
    "trt_max_partition_iterations"sv,
    "trt_min_subgraph_size"sv,
    "trt_max_workspace_size"sv,
    "trt_int8_use_native_calibration_table"sv,
    "trt_dla_enable"sv,
    "trt_dla_core"sv,
    "trt_dump_subgraphs"sv,
    "trt_engine_cache_prefix"sv,
    "trt_engine_decryption_enable"sv,
    "trt_engine_decryption_lib_path"sv,
    "trt_force_sequential_engine_build"sv,
    "trt_context_memory_sharing_enable"sv,
    "trt_layer_norm_fp32_fallback"sv,
    "trt_force_timing_cache"sv,
    "trt_detailed_build_log"sv,
    "trt_build_heuristics_enable"sv,
    "trt_sparsity_enable"sv,
    "trt_builder_optimization_level"sv,
    "trt_auxiliary_streams"sv,
    "trt_tactic_sources"sv,
    "trt_extra_plugin_lib_paths"sv,
    "trt_cuda_graph_enable"sv,
    "trt_dump_ep_context_model"sv,
    "trt_ep_context_file_path"sv,
    "trt_ep_context_embed_mode"sv,
    "trt_engine_hw_compatible"sv,
    "trt_weight_stripped_engine_enable"sv,
    "trt_onnx_model_folder_path"sv,
    "trt_op_types_to_exclude"sv,
    "trt_preview_features"sv,
    "trt_bf16_enable"sv,
};

// Options derm-cds sets itself, and what to configure instead.
struct Reserved {
  std::string_view name;
  std::string_view instead;
};
constexpr std::array kCudaReserved = {
    Reserved{"device_id", "the device id (--device, ExecutionOptions::device_id)"},
    Reserved{"has_user_compute_stream", "nothing: streams are process pointers, not configuration"},
    Reserved{"user_compute_stream", "nothing: streams are process pointers, not configuration"},
    Reserved{"gpu_external_alloc", "nothing: allocators are process pointers, not configuration"},
    Reserved{"gpu_external_free", "nothing: allocators are process pointers, not configuration"},
    Reserved{"gpu_external_empty_cache", "nothing: allocators are process pointers, not configuration"},
};
constexpr std::array kTensorRTReserved = {
    Reserved{"device_id", "the device id (--device, ExecutionOptions::device_id)"},
    Reserved{"has_user_compute_stream", "nothing: streams are process pointers, not configuration"},
    Reserved{"user_compute_stream", "nothing: streams are process pointers, not configuration"},
    Reserved{"trt_engine_cache_enable", "tensorrt:engine_cache_dir (derm-cds keys the cache by model, GPU and versions)"},
    Reserved{"trt_engine_cache_path", "tensorrt:engine_cache_dir (derm-cds keys the cache by model, GPU and versions)"},
    Reserved{"trt_timing_cache_enable", "tensorrt:engine_cache_dir (the timing cache lives under it)"},
    Reserved{"trt_timing_cache_path", "tensorrt:engine_cache_dir (the timing cache lives under it)"},
    Reserved{"trt_int8_calibration_table_name", "tensorrt:int8_calibration_table (a file path)"},
    Reserved{"trt_profile_min_shapes", "tensorrt:max_batch"},
    Reserved{"trt_profile_opt_shapes", "tensorrt:max_batch"},
    Reserved{"trt_profile_max_shapes", "tensorrt:max_batch"},
};

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

template <std::size_t N>
const Reserved* find_reserved(const std::array<Reserved, N>& reserved, std::string_view name) {
  for (const Reserved& r : reserved)
    if (r.name == name) return &r;
  return nullptr;
}

[[noreturn]] void refuse(const std::string& key, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, "provider option '" + key + "': " + why);
}

bool parse_bool(const std::string& key, const std::string& value) {
  if (value == "1" || value == "true" || value == "True") return true;
  if (value == "0" || value == "false" || value == "False") return false;
  refuse(key, "'" + value + "' is not a boolean (use 1/0 or true/false)");
}

int parse_int(const std::string& key, const std::string& value, int low, int high) {
  int parsed = 0;
  const char* end = value.data() + value.size();
  const auto [ptr, ec] = std::from_chars(value.data(), end, parsed);
  if (ec != std::errc() || ptr != end || parsed < low || parsed > high)
    refuse(key, "'" + value + "' is not an integer in [" + std::to_string(low) + ", " + std::to_string(high) + "]");
  return parsed;
}

std::string bool_text(bool value) { return value ? "1" : "0"; }

void parse_cuda(const std::string& key, std::string_view name, const std::string& value, CudaOptions& out) {
  if (const Reserved* r = find_reserved(kCudaReserved, name)) refuse(key, "set by derm-cds; configure " + std::string(r->instead));
  if (!contains(kCudaPassthrough, name)) refuse(key, "not an ONNX Runtime CUDA provider option (see docs/edge.md for the accepted names)");
  out.passthrough.push_back({std::string(name), value});
}

void parse_tensorrt(const std::string& key, std::string_view name, const std::string& value, TensorRTOptions& out) {
  if (name == "trt_fp16_enable") {
    out.fp16 = parse_bool(key, value);
  } else if (name == "trt_int8_enable") {
    out.int8 = parse_bool(key, value);
  } else if (name == "engine_cache_dir") {
    if (value.empty()) refuse(key, "the engine cache directory is empty");
    out.engine_cache_dir = std::filesystem::absolute(value);
  } else if (name == "int8_calibration_table") {
    // Whether the file exists is a property of the machine, checked when TensorRT is tried.
    if (value.empty()) refuse(key, "the calibration table path is empty");
    out.int8_calibration_table = std::filesystem::absolute(value);
  } else if (name == "max_batch") {
    out.max_batch = parse_int(key, value, 1, 4096);
  } else if (const Reserved* r = find_reserved(kTensorRTReserved, name)) {
    refuse(key, "set by derm-cds; configure " + std::string(r->instead));
  } else if (contains(kTensorRTPassthrough, name)) {
    out.passthrough.push_back({std::string(name), value});
  } else {
    refuse(key, "not an ONNX Runtime TensorRT provider option nor one of derm-cds's (see docs/edge.md)");
  }
}

}  // namespace

GpuOptions parse_gpu_options(const ExecutionOptions& options, std::string_view artifact_precision) {
  if (options.device_id < 0) throw Error(ErrorCode::kInvalidArgument, "device id must be 0 or positive");
  GpuOptions out;
  out.cuda.device_id = options.device_id;
  out.tensorrt.device_id = options.device_id;
  for (const auto& [key, value] : options.provider_options) {
    if (key.starts_with(kCudaPrefix))
      parse_cuda(key, std::string_view(key).substr(kCudaPrefix.size()), value, out.cuda);
    else if (key.starts_with(kTensorRTPrefix))
      parse_tensorrt(key, std::string_view(key).substr(kTensorRTPrefix.size()), value, out.tensorrt);
    else
      refuse(key, "unknown ONNX Runtime provider option (options are 'cuda:<name>' or 'tensorrt:<name>')");
  }

  const TensorRTOptions& trt = out.tensorrt;
  const bool quantized_model = artifact_precision == "int8";
  if (trt.int8 && !quantized_model && trt.int8_calibration_table.empty())
    throw Error(ErrorCode::kInvalidArgument, "TensorRT INT8 on an " + std::string(artifact_precision) +
                                                 " model needs a calibration table: set tensorrt:int8_calibration_table (docs/edge.md)");
  if (!trt.int8_calibration_table.empty() && !trt.int8)
    throw Error(ErrorCode::kInvalidArgument, "tensorrt:int8_calibration_table is set but tensorrt:trt_int8_enable is not");
  if (!trt.int8_calibration_table.empty() && quantized_model)
    throw Error(ErrorCode::kInvalidArgument,
                "tensorrt:int8_calibration_table cannot be used with an int8 (Q/DQ) model: TensorRT refuses "
                "a calibration table when the model carries its own quantization");
  return out;
}

std::string tensorrt_precision(const TensorRTOptions& options, std::string_view artifact_precision) {
  if (options.int8) return "int8";
  if (options.fp16) return "fp16";
  return std::string(artifact_precision);
}

ProviderOptionList cuda_provider_options(const CudaOptions& options) {
  ProviderOptionList list{{"device_id", std::to_string(options.device_id)}};
  list.insert(list.end(), options.passthrough.begin(), options.passthrough.end());
  return list;
}

ProviderOptionList tensorrt_provider_options(const TensorRTOptions& options, const TensorRTFiles& files, std::string_view input_name,
                                             int input_size) {
  ProviderOptionList list{{"device_id", std::to_string(options.device_id)},
                          {"trt_fp16_enable", bool_text(options.fp16)},
                          {"trt_int8_enable", bool_text(options.int8)}};
  if (!files.calibration_table_name.empty()) list.push_back({"trt_int8_calibration_table_name", files.calibration_table_name});
  if (!files.engine_dir.empty()) {
    list.push_back({"trt_engine_cache_enable", "1"});
    list.push_back({"trt_engine_cache_path", files.engine_dir.string()});
  }
  if (!files.timing_dir.empty()) {
    list.push_back({"trt_timing_cache_enable", "1"});
    list.push_back({"trt_timing_cache_path", files.timing_dir.string()});
  }
  if (options.max_batch > 0) {
    // One profile covering every batch the classifier may send; engines never rebuild at run time.
    const std::string chw = "x3x" + std::to_string(input_size) + "x" + std::to_string(input_size);
    const std::string name(input_name);
    list.push_back({"trt_profile_min_shapes", name + ":1" + chw});
    list.push_back({"trt_profile_opt_shapes", name + ":" + std::to_string(options.max_batch) + chw});
    list.push_back({"trt_profile_max_shapes", name + ":" + std::to_string(options.max_batch) + chw});
  }
  list.insert(list.end(), options.passthrough.begin(), options.passthrough.end());
  return list;
}

}  // namespace dermcds::runtimes::onnxruntime
