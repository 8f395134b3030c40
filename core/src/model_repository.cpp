#include "dermcds/model_repository.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "dermcds/error.hpp"
#include "dermcds/manifest.hpp"

namespace dermcds {

namespace {

bool is_version_name(const std::string& s) {
  static const std::regex kVersion("[1-9][0-9]{0,8}");
  return std::regex_match(s, kVersion);
}

void check_model_name(std::string_view model) {
  static const std::regex kName("[a-z0-9][a-z0-9._-]*");
  if (!std::regex_match(std::string(model), kName))
    throw Error(ErrorCode::kInvalidArgument, "'" + std::string(model) + "' is not a model name ([a-z0-9][a-z0-9._-]*)");
}

// A version the lifecycle refused (its parity gate failed) carries "lifecycle": {"status":
// "rejected"} in its manifest (docs/lifecycle.md); it stays in the repository as evidence but
// must never serve. A manifest that cannot be read is not judged here: opening it fails later.
bool manifest_marks_rejected(const std::filesystem::path& package_dir) {
  std::ifstream in(package_dir / kManifestFileName);
  const nlohmann::json document = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object()) return false;
  const auto lifecycle = document.find("lifecycle");
  return lifecycle != document.end() && lifecycle->is_object() && lifecycle->value("status", "") == "rejected";
}

}  // namespace

ModelRepository::ModelRepository(std::filesystem::path root) : root_(std::move(root)) {}

std::vector<std::string> ModelRepository::model_names() const {
  std::vector<std::string> names;
  std::error_code ec;
  if (!std::filesystem::is_directory(root_, ec))
    throw Error(ErrorCode::kNotFound, "no model repository at " + root_.string());
  for (const auto& entry : std::filesystem::directory_iterator(root_, ec))
    // Hidden directories are tools' staging areas, never models.
    if (entry.is_directory() && !entry.path().filename().string().starts_with(".") &&
        !versions(entry.path().filename().string()).empty())
      names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> ModelRepository::versions(std::string_view model) const {
  check_model_name(model);
  std::vector<std::string> out;
  std::error_code ec;
  const std::filesystem::path dir = root_ / std::string(model);
  if (!std::filesystem::is_directory(dir, ec)) return out;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && is_version_name(name) && std::filesystem::exists(entry.path() / kManifestFileName, ec))
      out.push_back(name);
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) { return std::stoll(a) < std::stoll(b); });
  return out;
}

std::optional<std::string> ModelRepository::active_version(std::string_view model) const {
  const std::vector<std::string> present = versions(model);
  std::ifstream marker(root_ / std::string(model) / kActiveVersionFileName);
  std::string version;
  if (marker >> version) {
    if (std::find(present.begin(), present.end(), version) == present.end())
      throw Error(ErrorCode::kNotFound, (root_ / std::string(model) / kActiveVersionFileName).string() + " names version " +
                                            version + ", which is not in the repository");
    if (is_rejected(model, version))
      throw Error(ErrorCode::kInvalidPackage, (root_ / std::string(model) / kActiveVersionFileName).string() +
                                                  " names version " + version + ", a rejected candidate that must not serve");
    return version;
  }
  for (auto it = present.rbegin(); it != present.rend(); ++it)
    if (!is_rejected(model, *it)) return *it;
  return std::nullopt;
}

void ModelRepository::set_active_version(std::string_view model, std::string_view version) const {
  const std::vector<std::string> present = versions(model);
  if (std::find(present.begin(), present.end(), version) == present.end())
    throw Error(ErrorCode::kNotFound, "model " + std::string(model) + " has no version " + std::string(version));
  if (is_rejected(model, version))
    throw Error(ErrorCode::kInvalidPackage, "version " + std::string(version) + " of model " + std::string(model) +
                                                " is a rejected candidate (its parity gate failed) and cannot be made active");
  const std::filesystem::path marker = root_ / std::string(model) / kActiveVersionFileName;
  const std::filesystem::path temporary = marker.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << version << "\n";
    out.flush();
    if (!out) throw Error(ErrorCode::kIoError, "cannot write " + temporary.string());
  }
  std::error_code ec;
  std::filesystem::rename(temporary, marker, ec);
  if (ec) {
    std::filesystem::remove(temporary, ec);
    throw Error(ErrorCode::kIoError, "cannot replace " + marker.string());
  }
}

std::string ModelRepository::next_version(std::string_view model) const {
  const std::vector<std::string> present = versions(model);
  return present.empty() ? "1" : std::to_string(std::stoll(present.back()) + 1);
}

bool ModelRepository::is_rejected(std::string_view model, std::string_view version) const {
  return manifest_marks_rejected(package_dir(model, version));
}

std::filesystem::path ModelRepository::package_dir(std::string_view model, std::string_view version) const {
  check_model_name(model);
  if (!is_version_name(std::string(version)))
    throw Error(ErrorCode::kInvalidArgument, "'" + std::string(version) + "' is not a version (a positive integer)");
  return root_ / std::string(model) / std::string(version);
}

std::filesystem::path resolve_package_dir(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path / kManifestFileName, ec)) return path;
  if (!std::filesystem::is_directory(path, ec))
    throw Error(ErrorCode::kNotFound, "no model package or model directory at " + path.string());
  const std::filesystem::path normal = std::filesystem::absolute(path).lexically_normal();
  const std::filesystem::path model_dir = normal.has_filename() ? normal : normal.parent_path();
  const ModelRepository repository(model_dir.parent_path());
  const std::string model = model_dir.filename().string();
  const auto version = repository.active_version(model);
  if (!version) throw Error(ErrorCode::kNotFound, path.string() + " holds neither a manifest.json nor any model version");
  return repository.package_dir(model, *version);
}

}  // namespace dermcds
