// Which versions of a model may serve, and which one does (docs/lifecycle.md).
//
// The state lives in the repository (ModelRepository): ACTIVE, which the service follows, and
// lifecycle.json beside it, the history every activation path shares. ModelLifecycle is the
// lifecycle's view of it: each version's status, promotion and rollback, the build log. Each
// version's own verdict lives in its manifest: "lifecycle" (inputs, fingerprint, status
// "accepted" or "rejected") and "parity" (the evidence).
//
// Rules: the serving rule (dermcds/serving_rule.hpp) decides which versions may be made active;
// ModelLifecycle adds none of its own.
// Errors: kNotFound (no such model or version, nothing to roll back to), kFailedPrecondition (a
// version that may not serve), and the file-system codes (writing state).
// Thread safety: one process at a time per model, enforced by a lock file beside ACTIVE.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dermcds/manifest.hpp"
#include "dermcds/model_repository.hpp"
#include "dermcds/serving_rule.hpp"

namespace dermcds::pipeline {

using dermcds::kLifecycleFileName;
using dermcds::kLifecycleFormat;
using dermcds::LifecycleEvent;

struct VersionState {
  std::string version;
  // "active", "rejected", "candidate" (may serve, never active), "retired" (was active),
  // "unverified" (no parity evidence covering its current artifacts).
  std::string status;
  std::optional<bool> parity_passed;  // the manifest's parity verdict, if it has one
  std::string reason;                 // why rejected or unverified
  std::string fingerprint;            // lifecycle inputs fingerprint ("" if not built by the lifecycle)
  std::string created;
  // Artifacts the build dropped because their check failed (lifecycle.rejected_artifacts).
  std::vector<std::string> rejected_artifacts;
};

class ModelLifecycle {
 public:
  ModelLifecycle(std::filesystem::path repository, std::string model, ServingPolicy policy = {});

  std::vector<VersionState> versions() const;
  std::vector<LifecycleEvent> events() const;
  // The version ACTIVE names (unjudged), else the one serving implicitly; nullopt if none.
  std::optional<std::string> active_version() const;

  // Makes `version` active. Returns the version active before ("" if none). Promoting the
  // active version changes nothing and returns it.
  std::string promote(const std::string& version, const std::string& detail = {});
  // Makes the version that was active before the current one active again; skips versions that
  // have since been removed or may no longer serve. Returns the version now active.
  std::string rollback(const std::string& detail = {});
  // Without ACTIVE the highest servable version serves implicitly, so installing a new one
  // would switch the service unasked. Writes ACTIVE for the implicitly serving version and
  // returns it; nullopt when ACTIVE exists or nothing serves.
  std::optional<std::string> pin_active_version(const std::string& detail);
  // Appends an event to the log (builds record themselves here).
  void record(LifecycleEvent event);

  const std::filesystem::path& model_dir() const noexcept { return model_dir_; }

 private:
  ModelRepository repository_;
  std::string model_;
  std::filesystem::path model_dir_;
};

}  // namespace dermcds::pipeline
