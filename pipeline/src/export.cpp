#include "dermcds/pipeline/export.hpp"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "dermcds/classifier.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/file_util.hpp"
#include "dermcds/manifest.hpp"
#include "dermcds/model_repository.hpp"
#include "dermcds/postprocess.hpp"

namespace dermcds::pipeline {

namespace {

static_assert(std::endian::native == std::endian::little, "check tensors are stored little-endian");

std::vector<float> read_floats(const std::filesystem::path& path, std::size_t expected_count) {
  const std::vector<std::uint8_t> bytes = read_file_bytes(path);
  if (bytes.size() != expected_count * sizeof(float))
    throw Error(ErrorCode::kInvalidPackage, path.string() + " has " + std::to_string(bytes.size()) + " bytes, expected " +
                                                std::to_string(expected_count * sizeof(float)));
  std::vector<float> out(expected_count);
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

std::vector<std::int64_t> read_shape(const nlohmann::json& check, const char* key, const std::filesystem::path& origin) {
  if (!check.contains(key) || !check[key].is_array()) throw Error(ErrorCode::kInvalidPackage, origin.string() + ": missing " + key);
  return check[key].get<std::vector<std::int64_t>>();
}

// A staging directory inside the repository, so that the final move is a rename on one file
// system; removed on destruction unless released.
class StagingDirectory {
 public:
  StagingDirectory(const std::filesystem::path& repository, const std::string& name, const std::string& version) {
    std::random_device random;
    root_ = repository / (".staging-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
    package_ = root_ / name / version;
    std::filesystem::create_directories(package_);
    check_ = root_ / "export-check";
    std::filesystem::create_directories(check_);
  }
  ~StagingDirectory() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  StagingDirectory(const StagingDirectory&) = delete;
  StagingDirectory& operator=(const StagingDirectory&) = delete;
  const std::filesystem::path& package() const { return package_; }
  const std::filesystem::path& check() const { return check_; }

 private:
  std::filesystem::path root_, package_, check_;
};

}  // namespace

std::string default_package_name(std::string_view architecture) {
  if (architecture == "efficientnet_b4") return "derm-effnet-b4";
  if (architecture == "mobilenet_v3_large") return "derm-mnv3-large";
  std::string name = "derm-" + std::string(architecture);
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

ExportCheck check_export(const std::filesystem::path& package_dir, const std::filesystem::path& check_dir) {
  const std::filesystem::path check_path = check_dir / "check.json";
  nlohmann::json check;
  try {
    check = nlohmann::json::parse(read_file_bytes(check_path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kInvalidPackage, check_path.string() + ": " + e.what());
  }
  Tensor inputs;
  inputs.shape = read_shape(check, "input_shape", check_path);
  const std::vector<std::int64_t> output_shape = read_shape(check, "output_shape", check_path);
  inputs.data = read_floats(check_dir / "inputs.f32", static_cast<std::size_t>(Tensor::element_count(inputs.shape)));
  const std::vector<float> reference =
      read_floats(check_dir / "torch_logits.f32", static_cast<std::size_t>(Tensor::element_count(output_shape)));

  ClassifierOptions options;
  options.package = package_dir;
  options.runtime = "onnxruntime";
  options.execution.provider = "cpu";
  const std::unique_ptr<Classifier> classifier = Classifier::create(options);
  const Tensor logits = classifier->infer(inputs);
  if (logits.shape != output_shape) throw Error(ErrorCode::kModelMismatch, "ONNX Runtime output shape differs from PyTorch's");

  ExportCheck result;
  result.samples = static_cast<int>(inputs.shape[0]);
  result.runtime_version = classifier->backend_info().runtime_version;
  const auto classes = static_cast<std::size_t>(output_shape[1]);
  std::vector<float> lowest(classes, 1.0f), highest(classes, 0.0f);
  for (std::size_t n = 0; n < static_cast<std::size_t>(result.samples); ++n) {
    const std::span<const float> ours(logits.data.data() + n * classes, classes);
    const std::span<const float> theirs(reference.data() + n * classes, classes);
    const std::vector<float> p_ours = softmax(ours), p_theirs = softmax(theirs);
    for (std::size_t c = 0; c < classes; ++c) {
      result.max_abs_diff_logit = std::max(result.max_abs_diff_logit, std::abs(double(ours[c]) - theirs[c]));
      result.max_abs_diff_probability = std::max(result.max_abs_diff_probability, std::abs(double(p_ours[c]) - p_theirs[c]));
      lowest[c] = std::min(lowest[c], p_theirs[c]);
      highest[c] = std::max(highest[c], p_theirs[c]);
    }
  }
  for (std::size_t c = 0; c < classes; ++c) result.output_spread = std::max(result.output_spread, double(highest[c] - lowest[c]));
  return result;
}

namespace {

ExportOutcome export_package_unchecked(const ExportRequest& request) {
  const std::string name = request.name.empty() ? default_package_name(request.architecture) : request.name;
  std::filesystem::create_directories(request.repository);
  const ModelRepository repository(request.repository);
  const std::string version = request.version.empty() ? repository.next_version(name) : request.version;
  const std::filesystem::path destination = repository.package_dir(name, version);
  if (std::filesystem::exists(destination))
    throw Error(ErrorCode::kInvalidArgument, destination.string() + " already exists; versions are never overwritten");
  if (!request.checkpoint.empty() && !std::filesystem::is_regular_file(request.checkpoint))
    throw Error(ErrorCode::kNotFound, "no checkpoint file at " + request.checkpoint.string());

  StagingDirectory staging(request.repository, name, version);
  request.progress("exporting " + request.architecture + " as " + name + "/" + version +
                   (request.checkpoint.empty() ? " (demo checkpoint)" : " from " + request.checkpoint.string()));
  std::vector<std::string> arguments = {"export",
                                        "--arch",
                                        request.architecture,
                                        "--out",
                                        staging.package().string(),
                                        "--name",
                                        name,
                                        "--version",
                                        version,
                                        "--check-dir",
                                        staging.check().string(),
                                        "--check-samples",
                                        std::to_string(request.check_samples)};
  if (!request.checkpoint.empty()) {
    arguments.push_back("--checkpoint");
    arguments.push_back(std::filesystem::absolute(request.checkpoint).string());
  }
  request.python.run(arguments);

  request.progress("checking ONNX Runtime against PyTorch on " + std::to_string(request.check_samples) + " samples");
  const ExportCheck check = check_export(staging.package(), staging.check());
  if (check.max_abs_diff_probability > request.max_probability_difference)
    throw Error(ErrorCode::kModelMismatch, "ONNX Runtime and PyTorch disagree by " + std::to_string(check.max_abs_diff_probability) +
                                               " in probability (bound " + std::to_string(request.max_probability_difference) + ")");

  Manifest manifest = read_manifest(staging.package());
  nlohmann::json document = manifest.document;
  document["provenance"]["export_check"] = {{"runtime", "onnxruntime"},
                                            {"runtime_version", check.runtime_version},
                                            {"samples", check.samples},
                                            {"max_abs_diff_logit", check.max_abs_diff_logit},
                                            {"max_abs_diff_probability", check.max_abs_diff_probability},
                                            {"output_spread", check.output_spread},
                                            {"bound_probability", request.max_probability_difference}};
  write_manifest(staging.package(), document);

  std::filesystem::create_directories(destination.parent_path());
  std::filesystem::rename(staging.package(), destination);
  sync_directory(destination.parent_path());
  request.progress("installed " + destination.string());
  return {destination, check};
}

}  // namespace

ExportOutcome export_package(const ExportRequest& request) {
  // The module's edge (see build_model): file-system errors leave with their named code.
  try {
    return export_package_unchecked(request);
  } catch (...) {
    throw current_exception_as_error();
  }
}

}  // namespace dermcds::pipeline
