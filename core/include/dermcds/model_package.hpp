// A model package: one version directory <repository>/<name>/<version>/ holding manifest.json
// and the artifacts it lists. Opening a package verifies it completely: a package that cannot
// be proven intact is never handed to a runtime.
//
// Errors: ModelPackage::open throws kNotFound (no such directory or manifest) or kInvalidPackage
// (malformed manifest, missing artifact, size or sha256 mismatch), naming the file and problem.
// Thread safety: a ModelPackage is immutable after open() and safe to share.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "dermcds/manifest.hpp"

namespace dermcds {

class ModelPackage {
 public:
  static ModelPackage open(const std::filesystem::path& package_dir);

  const Manifest& manifest() const noexcept { return manifest_; }
  const std::filesystem::path& directory() const noexcept { return directory_; }
  std::filesystem::path artifact_path(const ArtifactEntry& artifact) const;

 private:
  ModelPackage(std::filesystem::path directory, Manifest manifest);
  std::filesystem::path directory_;
  Manifest manifest_;
};

// One line per check, for `dermcds models verify`: what was checked and whether it passed.
struct PackageCheck {
  std::string subject;  // "manifest.json", "model.onnx"
  bool ok = false;
  std::string detail;  // "sha256 ok (77.3 MB)" or what is wrong
};

// Checks everything open() checks, but reports every problem instead of stopping at the first.
std::vector<PackageCheck> verify_package(const std::filesystem::path& package_dir);

}  // namespace dermcds
