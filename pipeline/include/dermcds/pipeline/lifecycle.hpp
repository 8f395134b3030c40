// Which versions of a model may serve, and which one does (docs/lifecycle.md).
//
// The service follows <repository>/<name>/ACTIVE (ModelRepository). The lifecycle keeps, beside
// it, <repository>/<name>/lifecycle.json: the stack of versions that were made active (so that
// rollback returns to the one before, and a second rollback to the one before that) and an event
// log of builds, promotions and rollbacks. Each version's own verdict lives in its manifest:
// "lifecycle" (inputs, fingerprint, status "accepted" or "rejected") and "parity" (the evidence).
//
// Rules: a rejected candidate is never made active; a version is promoted only if its manifest
// carries passing parity evidence that covers every artifact it lists now. ACTIVE may also be
// changed by others (the service's admin API); the lifecycle treats ACTIVE as the truth and
// reconciles its stack with it before each change.
// Errors: kNotFound (no such model or version, nothing to roll back to), kInvalidPackage (a
// rejected version, or one without passing evidence), kIoError (writing state).
// Thread safety: one process at a time per model, enforced by a lock file beside ACTIVE.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dermcds/manifest.hpp"
#include "dermcds/model_repository.hpp"

namespace dermcds::pipeline {

inline constexpr std::string_view kLifecycleFileName = "lifecycle.json";
inline constexpr std::string_view kLifecycleFormat = "dermcds-model-lifecycle";

struct LifecycleEvent {
  std::string at;       // UTC ISO 8601
  std::string action;   // "build", "promote", "rollback", "pin"
  std::string version;  // the version built or made active
  std::string from;     // promote/rollback: the version active before ("" if none)
  std::string detail;   // build: "accepted" or "rejected: <why>"; others: free text
};

struct VersionState {
  std::string version;
  // "active", "rejected", "candidate" (passing evidence, never active), "retired" (was active),
  // "unverified" (no passing parity evidence for its current artifacts).
  std::string status;
  std::optional<bool> parity_passed;  // the manifest's parity verdict, if it has one
  std::string reason;                 // why rejected or unverified
  std::string fingerprint;            // lifecycle inputs fingerprint ("" if not built by the lifecycle)
  std::string created;
};

// Whether the manifest's "parity" evidence passed and describes exactly the artifacts it lists
// (every artifact compared with its current sha256, or reported as not runnable on the machine
// that ran parity). `why` says what is missing when it returns false.
bool has_passing_evidence(const Manifest& manifest, std::string* why = nullptr);

// "rejected" when the manifest's lifecycle.status says so.
bool is_rejected(const Manifest& manifest);

class ModelLifecycle {
 public:
  ModelLifecycle(std::filesystem::path repository, std::string model);

  std::vector<VersionState> versions() const;
  std::vector<LifecycleEvent> events() const;
  std::optional<std::string> active_version() const;

  // Makes `version` active (ACTIVE first, then the lifecycle record). Returns the version active
  // before ("" if none). Promoting the active version changes nothing and returns it.
  std::string promote(const std::string& version, const std::string& detail = {});
  // Makes the version that was active before the current one active again; skips versions that
  // have since been removed. Returns the version now active.
  std::string rollback(const std::string& detail = {});
  // Without ACTIVE the highest non-rejected version serves implicitly, so installing a new one
  // would switch the service unasked. Writes ACTIVE for the implicitly serving version (no
  // evidence check: it already serves) and returns it; nullopt when ACTIVE exists or nothing serves.
  std::optional<std::string> pin_active_version(const std::string& detail);
  // Appends an event to the log (builds record themselves here).
  void record(LifecycleEvent event);

  const std::filesystem::path& model_dir() const noexcept { return model_dir_; }

 private:
  struct State {
    std::vector<std::string> stack;  // versions made active, oldest first
    std::vector<LifecycleEvent> events;
  };
  State load() const;
  void save(const State& state) const;
  // Brings the stack in line with ACTIVE (someone else may have changed it).
  void reconcile(State& state) const;

  ModelRepository repository_;
  std::string model_;
  std::filesystem::path model_dir_;
};

// The lock every lifecycle change of one model holds (also held by builds).
std::filesystem::path lifecycle_lock_path(const std::filesystem::path& model_dir);

}  // namespace dermcds::pipeline
