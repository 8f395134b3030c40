// A model repository: <root>/<name>/<version>/ package directories (docs/model-package.md).
//
// Which version of a model serves is recorded in <root>/<name>/ACTIVE (one line: the version);
// without that file the highest version serves. Writes to ACTIVE are atomic. A version whose
// manifest marks it a rejected candidate ("lifecycle": {"status": "rejected"}, docs/lifecycle.md)
// is never active: it is skipped when choosing the highest, refused by set_active_version
// (kInvalidPackage), and an ACTIVE marker naming it is an error (kInvalidPackage).
// Thread safety: the object holds only a path; every call reads the file system afresh.
// Errors: kNotFound for missing models and versions, kInvalidArgument for malformed names.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace dermcds {

inline constexpr std::string_view kActiveVersionFileName = "ACTIVE";

class ModelRepository {
 public:
  explicit ModelRepository(std::filesystem::path root);

  const std::filesystem::path& root() const noexcept { return root_; }
  std::vector<std::string> model_names() const;
  // Version directories of the model, in numeric order; empty when the model has none.
  std::vector<std::string> versions(std::string_view model) const;
  // ACTIVE when present (and that version exists), else the highest version that is not a
  // rejected candidate; nullopt if none.
  std::optional<std::string> active_version(std::string_view model) const;
  void set_active_version(std::string_view model, std::string_view version) const;
  // One more than the highest version present ("1" for a new model).
  std::string next_version(std::string_view model) const;
  std::filesystem::path package_dir(std::string_view model, std::string_view version) const;
  // Whether the version's manifest marks it a rejected candidate (it must never serve).
  bool is_rejected(std::string_view model, std::string_view version) const;

 private:
  std::filesystem::path root_;
};

// Accepts either a package (version) directory or a model directory <root>/<name>, which
// resolves to that model's active version. Throws kNotFound naming what is missing.
std::filesystem::path resolve_package_dir(const std::filesystem::path& path);

}  // namespace dermcds
