#include "dermcds/model_package.hpp"

#include <functional>
#include <sstream>

#include "dermcds/error.hpp"
#include "dermcds/sha256.hpp"

namespace dermcds {

namespace {

std::string describe_size(std::uint64_t bytes) {
  std::ostringstream out;
  out.precision(1);
  out << std::fixed << static_cast<double>(bytes) / 1e6 << " MB";
  return out.str();
}

// The single definition of "this package is intact". `report` receives every check; it may
// throw to stop at the first failure (open) or collect them all (verify_package).
// Returns the manifest when it could be parsed.
std::optional<Manifest> check_package(const std::filesystem::path& dir, const std::function<void(PackageCheck)>& report) {
  Manifest manifest;
  try {
    manifest = read_manifest(dir);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kNotFound) throw;
    report({std::string(kManifestFileName), false, e.what()});
    return std::nullopt;
  }
  // A package is addressed as <name>/<version>: its directories must say the same as its
  // manifest, or a request for one version could be answered by another.
  const std::filesystem::path absolute = std::filesystem::absolute(dir).lexically_normal();
  const std::filesystem::path version_dir = absolute.has_filename() ? absolute : absolute.parent_path();
  const std::string dir_version = version_dir.filename().string();
  const std::string dir_name = version_dir.parent_path().filename().string();
  if (dir_version != manifest.version || dir_name != manifest.name) {
    report({std::string(kManifestFileName), false,
            "manifest says " + manifest.name + "/" + manifest.version + " but the package is stored at " + dir_name + "/" + dir_version});
  } else {
    report({std::string(kManifestFileName), true, manifest.name + " version " + manifest.version});
  }

  for (const ArtifactEntry& artifact : manifest.artifacts) {
    const std::filesystem::path path = dir / artifact.file;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      report({artifact.file, false, "listed in the manifest but missing from the package"});
      continue;
    }
    const std::uint64_t size = std::filesystem::file_size(path, ec);
    if (ec || size != artifact.bytes) {
      report({artifact.file, false,
              "size is " + std::to_string(size) + " bytes, manifest says " + std::to_string(artifact.bytes) + " (truncated or replaced)"});
      continue;
    }
    const std::string digest = sha256_file_hex(path);
    if (digest != artifact.sha256) {
      report({artifact.file, false, "sha256 is " + digest + ", manifest says " + artifact.sha256 + " (file altered)"});
      continue;
    }
    report({artifact.file, true, "sha256 ok (" + describe_size(size) + ", " + artifact.runtime + " " + artifact.precision + ")"});
  }
  return manifest;
}

}  // namespace

ModelPackage::ModelPackage(std::filesystem::path directory, Manifest manifest)
    : directory_(std::move(directory)), manifest_(std::move(manifest)) {}

ModelPackage ModelPackage::open(const std::filesystem::path& package_dir) {
  auto manifest = check_package(package_dir, [&](const PackageCheck& check) {
    if (!check.ok) throw Error(ErrorCode::kInvalidPackage, (package_dir / check.subject).string() + ": " + check.detail);
  });
  return ModelPackage(package_dir, std::move(*manifest));
}

std::filesystem::path ModelPackage::artifact_path(const ArtifactEntry& artifact) const { return directory_ / artifact.file; }

std::vector<PackageCheck> verify_package(const std::filesystem::path& package_dir) {
  std::vector<PackageCheck> checks;
  check_package(package_dir, [&](PackageCheck check) { checks.push_back(std::move(check)); });
  return checks;
}

}  // namespace dermcds
