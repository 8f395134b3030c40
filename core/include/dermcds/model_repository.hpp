// A model repository: <root>/<name>/<version>/ package directories (docs/model-package.md).
//
// Which version of a model serves is recorded in <root>/<name>/ACTIVE (one line: the version);
// without that file the highest version that may serve (serving_rule.hpp) does. Beside it,
// <root>/<name>/lifecycle.json keeps the history every activation path shares (the CLI's promote
// and rollback, the service's admin activate and rollback): the stack of versions made active,
// oldest first, and an event log (docs/lifecycle.md). Both files are replaced atomically and
// durably (write_file_atomically), ACTIVE first: a process killed between the two leaves ACTIVE
// ahead of the stack, and the next change reconciles the stack with ACTIVE before it acts.
//
// Every choice of a serving version goes through the serving rule: active_version refuses an
// ACTIVE marker naming a version that may not serve, activate and rollback never make one active.
// Thread safety: the object holds only a path and a policy; every call reads the file system
// afresh; changes to one model are serialised across processes by a lock file
// (<root>/<name>/.lifecycle.lock).
// Errors: kNotFound (missing models and versions, nothing to roll back to), kInvalidArgument
// (malformed names), kFailedPrecondition (a version that may not serve, naming why),
// kInvalidPackage (a malformed lifecycle.json), and the file-system codes of error.hpp.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dermcds/serving_rule.hpp"

namespace dermcds {

inline constexpr std::string_view kActiveVersionFileName = "ACTIVE";
inline constexpr std::string_view kLifecycleFileName = "lifecycle.json";
inline constexpr std::string_view kLifecycleFormat = "dermcds-model-lifecycle";

struct LifecycleEvent {
  std::string at;       // UTC ISO 8601
  std::string action;   // "build", "promote", "activate", "rollback", "pin"
  std::string version;  // the version built or made active
  std::string from;     // promote/activate/rollback: the version active before ("" if none)
  std::string detail;   // build: "accepted" or "rejected: <why>"; others: who did it, free text
};

struct LifecycleState {
  std::vector<std::string> stack;  // versions made active, oldest first
  std::vector<LifecycleEvent> events;
};

// Runs while the model's lock is held, after the checks and before ACTIVE is written: the
// service loads and warms up the target there, so that a failed load changes nothing.
using BeforeSwitch = std::function<void(const std::string& version)>;

class ModelRepository {
 public:
  explicit ModelRepository(std::filesystem::path root, ServingPolicy policy = {});

  const std::filesystem::path& root() const noexcept { return root_; }
  const ServingPolicy& policy() const noexcept { return policy_; }
  std::vector<std::string> model_names() const;
  // Version directories of the model, in numeric order; empty when the model has none.
  std::vector<std::string> versions(std::string_view model) const;
  // The version ACTIVE names, unjudged; nullopt without the file.
  std::optional<std::string> active_marker(std::string_view model) const;
  // ACTIVE when present (the version must exist, kNotFound, and may serve, kFailedPrecondition),
  // else the highest version that may serve; nullopt if none may.
  std::optional<std::string> active_version(std::string_view model) const;
  ServingVerdict serving_verdict(std::string_view model, std::string_view version) const;
  // Throws kNotFound (no such version) or kFailedPrecondition naming why it may not serve.
  void require_servable(std::string_view model, std::string_view version) const;

  // Makes `version` active: the serving rule, then `before_switch`, then ACTIVE and the history,
  // under the model's lock. `action` and `detail` go into the event log. Returns the version
  // active before ("" if none); making the active version active again only writes a missing
  // ACTIVE marker.
  std::string activate(std::string_view model, std::string_view version, std::string_view action = "activate", std::string_view detail = {},
                       const BeforeSwitch& before_switch = {}) const;
  void set_active_version(std::string_view model, std::string_view version) const { activate(model, version); }
  // The version active before the current one, passing over versions since removed or no longer
  // servable. Throws kNotFound when there is none.
  std::string rollback_target(std::string_view model) const;
  // Makes rollback_target active (popping the history). Returns it.
  std::string rollback(std::string_view model, std::string_view detail = {}, const BeforeSwitch& before_switch = {}) const;

  LifecycleState lifecycle_state(std::string_view model) const;
  void record_event(std::string_view model, LifecycleEvent event) const;
  std::filesystem::path lock_path(std::string_view model) const;

  // One more than the highest version present ("1" for a new model).
  std::string next_version(std::string_view model) const;
  std::filesystem::path package_dir(std::string_view model, std::string_view version) const;
  // Whether the version's manifest marks it a rejected candidate (it must never serve).
  bool is_rejected(std::string_view model, std::string_view version) const;

 private:
  void save_state(std::string_view model, const LifecycleState& state) const;
  // Brings the stack in line with ACTIVE (a process may have died between the two writes).
  void reconcile(std::string_view model, LifecycleState& state) const;
  std::string rollback_target(std::string_view model, const LifecycleState& state) const;

  std::filesystem::path root_;
  ServingPolicy policy_;
};

// Accepts either a package (version) directory or a model directory <root>/<name>, which
// resolves to that model's active version (the serving rule applies; kFailedPrecondition or
// kNotFound naming why). A package directory given as such is taken as it is: it is the
// caller's explicit choice, and a warning is logged when it may not serve.
std::filesystem::path resolve_package_dir(const std::filesystem::path& path, const ServingPolicy& policy = {});

// UTC now, ISO 8601 with seconds ("2026-01-02T03:04:05Z").
std::string utc_timestamp();

}  // namespace dermcds
