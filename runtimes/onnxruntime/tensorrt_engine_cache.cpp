#include "tensorrt_engine_cache.hpp"

#include <cctype>

#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/file_util.hpp"

namespace dermcds::runtimes::onnxruntime {

namespace {

std::string compute_capability_component(const GpuIdentity& gpu) {
  return gpu_slug(gpu.name) + "_sm" + std::to_string(gpu.compute_major) + std::to_string(gpu.compute_minor);
}

std::string build_settings_component(const EngineCacheKey& key) {
  std::string settings = key.precision;
  if (!key.calibration_sha256.empty()) settings += "_calib" + key.calibration_sha256.substr(0, 16);
  settings += key.max_batch > 0 ? "_batch" + std::to_string(key.max_batch) : "_dynamic";
  return settings;
}

void make_directories(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(ErrorCode::kIoError, "cannot create TensorRT cache directory " + dir.string() + ": " + ec.message());
}

}  // namespace

std::string gpu_slug(std::string_view gpu_name) {
  std::string slug;
  for (const char c : gpu_name) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u))
      slug += static_cast<char>(std::tolower(u));
    else if (!slug.empty() && slug.back() != '-')
      slug += '-';
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return slug.empty() ? "unnamed-gpu" : slug;
}

EngineCacheLayout engine_cache_layout(const std::filesystem::path& root, const EngineCacheKey& key) {
  const std::string gpu = compute_capability_component(key.gpu);
  const std::string trt = "trt" + key.tensorrt.text();
  return {root / "engines" / key.model_sha256 / gpu / (trt + "_ort" + key.onnxruntime_version) / build_settings_component(key),
          root / "timing" / gpu / trt};
}

nlohmann::ordered_json to_json(const EngineCacheKey& key) {
  nlohmann::ordered_json j;
  j["model_sha256"] = key.model_sha256;
  j["gpu"] = {{"name", key.gpu.name},
              {"compute_capability", std::to_string(key.gpu.compute_major) + "." + std::to_string(key.gpu.compute_minor)}};
  j["tensorrt_version"] = key.tensorrt.text();
  j["onnxruntime_version"] = key.onnxruntime_version;
  j["precision"] = key.precision;
  j["calibration_sha256"] = key.calibration_sha256.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(key.calibration_sha256);
  j["max_batch"] = key.max_batch > 0 ? nlohmann::ordered_json(key.max_batch) : nlohmann::ordered_json("dynamic");
  return j;
}

TensorRTFiles prepare_engine_cache(const std::filesystem::path& root, const EngineCacheKey& key,
                                   const std::filesystem::path& calibration_table) {
  const EngineCacheLayout layout = engine_cache_layout(root, key);
  make_directories(layout.engine_dir);
  make_directories(layout.timing_dir);
  std::error_code ec;
  const std::filesystem::path key_file = layout.engine_dir / "key.json";
  // Files are replaced atomically and durably (core's one implementation), so a reader never sees
  // half a file and several processes or threads preparing the same key all succeed.
  if (!std::filesystem::exists(key_file, ec)) write_file_atomically(key_file, to_json(key).dump(2) + "\n");

  TensorRTFiles files{layout.engine_dir, layout.timing_dir, ""};
  if (!calibration_table.empty()) {
    // The directory name already carries the table's sha256, so an existing copy is this table.
    const std::filesystem::path copy = layout.engine_dir / calibration_table.filename();
    if (!std::filesystem::exists(copy, ec)) write_file_atomically(copy, read_file_bytes(calibration_table));
    files.calibration_table_name = calibration_table.filename().string();
  }
  return files;
}

}  // namespace dermcds::runtimes::onnxruntime
