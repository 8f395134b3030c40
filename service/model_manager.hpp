// Which model versions are loaded, which one serves each model, and how that changes while
// requests keep flowing.
//
// A LoadedVersion is one version of one model, loaded and warmed up, with one ServedInstance
// (classifier + batcher) per configured runtime. It is immutable once published, and requests
// hold a shared_ptr to it for as long as they run: swapping the active version, or unloading
// one, never disturbs a request already under way; the old version's batcher finishes its queue
// when the last request lets go.
//
// What may serve is the serving rule's decision (dermcds/serving_rule.hpp), asked of the
// repository on every load, activation and rollback and at start-up; the manager adds no rule.
// Activation and rollback go through the repository (ACTIVE and lifecycle.json, shared with the
// CLI), so a restart serves what was last activated and rollback history survives it. The new
// version is loaded and warmed up, under the repository's lock, before ACTIVE changes; a load
// that fails leaves every version that was serving in place, and the caller is told why.
//
// A model none of whose versions may serve is listed with the reason and does not count against
// readiness (docs/service.md, "Readiness"): a rejected candidate never holds the server hostage.
//
// Thread safety: every member may be called concurrently. Lookups take a shared lock for a few
// instructions and never touch the file system under it; administrative changes (load, unload,
// activate, rollback) run one at a time.
// Errors: dermcds::Error — kNotFound (unknown model, version or runtime), kInvalidArgument
// (malformed names, refusing to unload the serving version), kFailedPrecondition (a version that
// may not serve), kRuntimeUnavailable (a model with no ready version), and whatever loading a
// package throws, translated to an Error (nothing else leaves the manager).
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "batcher.hpp"
#include "dermcds/classifier.hpp"
#include "dermcds/model_repository.hpp"

namespace dermcds::service {

struct ModelManagerOptions {
  std::filesystem::path repository = "models";
  std::vector<std::string> startup_models;  // empty: every model in the repository
  // One instance per entry for every loaded version ("auto" or a runtime name). An entry that
  // does not apply to a package (no artifact for that runtime) is skipped for it.
  std::vector<std::string> runtimes{"auto"};
  std::string precision = "auto";
  ExecutionOptions execution;
  DecodeLimits limits;
  BatchingOptions batching;
  int warmup_runs = 1;    // rounds of warm-up inferences (batch of 1 and a full batch) before ready
  ServingPolicy serving;  // the development override lives here (service/config.hpp)
};

// What the manager tells its owner (the service wires these to metrics: service_metrics.hpp).
struct ModelEvents {
  // Every load attempt ends here once, success or failure, whatever failed.
  std::function<void(const std::string& model, const std::string& version, bool success)> load_finished;
  // An instance is loaded and warm; returns the listener for its batcher's reports.
  std::function<DynamicBatcher::Listener(const std::string& model, const std::string& version, const BackendInfo& info)> instance_ready;
};

struct ServedInstance {
  std::shared_ptr<const Classifier> classifier;
  std::unique_ptr<DynamicBatcher> batcher;  // destroyed first: it drains its queue
};

class LoadedVersion {
 public:
  LoadedVersion(std::string name, std::string version, std::vector<std::unique_ptr<ServedInstance>> instances);

  const std::string& name() const { return name_; }
  const std::string& version() const { return version_; }
  const Manifest& manifest() const { return instances_.front()->classifier->manifest(); }
  // "" or "auto": the first configured instance; else the instance of that runtime.
  // Throws kNotFound naming the runtimes that are loaded.
  const ServedInstance& instance(std::string_view runtime) const;
  const std::vector<std::unique_ptr<ServedInstance>>& instances() const { return instances_; }

 private:
  std::string name_;
  std::string version_;
  std::vector<std::unique_ptr<ServedInstance>> instances_;  // never empty
};

// Triton's repository index entry: state READY, LOADING or UNAVAILABLE.
struct IndexEntry {
  std::string name;
  std::string version;
  std::string state;
  std::string reason;
};

struct VersionStatus {
  std::string version;
  std::string state;  // as in IndexEntry
  bool active = false;
  std::shared_ptr<const LoadedVersion> loaded;  // null unless READY
  std::string reason;                           // why it is UNAVAILABLE, when known
};

struct ModelStatus {
  std::string name;
  std::string active_version;  // "" when none serves
  bool ready = false;
  std::string unservable;  // why no version of it may serve ("" otherwise); not counted for readiness
  std::vector<VersionStatus> versions;
};

class ModelManager {
 public:
  explicit ModelManager(ModelManagerOptions options, ModelEvents events = {});
  ~ModelManager();
  ModelManager(const ModelManager&) = delete;
  ModelManager& operator=(const ModelManager&) = delete;

  // Loads the active version of each startup model. A model that fails to load is logged and
  // stays unready (the server is not ready); a model none of whose versions may serve is logged
  // and set aside (readiness does not wait for it). Returns how many models loaded. Throws only
  // when the repository cannot be listed or holds no model.
  int load_startup_models();

  // The version that serves `model` (its active version when `version` is empty).
  std::shared_ptr<const LoadedVersion> serving(std::string_view model, std::string_view version = {}) const;

  // Triton's load: loads (or reloads) `version`, or without one the version the repository marks
  // active, which then serves. Loading an explicit version leaves the active one as it is.
  // Either must pass the serving rule. Returns the version loaded.
  std::string load(const std::string& model, const std::optional<std::string>& version);
  // Without a version: the whole model goes (requests naming it get 404). With one: that
  // version, unless it is the active one (kInvalidArgument).
  void unload(const std::string& model, const std::optional<std::string>& version);
  // Loads the version if needed, records it in the repository (ACTIVE, history), and switches.
  void activate(const std::string& model, const std::string& version);
  // Back to the version that was active before the current one (the repository's history);
  // returns it.
  std::string rollback(const std::string& model);

  std::vector<IndexEntry> index(bool ready_only) const;
  std::vector<ModelStatus> status() const;
  std::vector<std::shared_ptr<const LoadedVersion>> loaded_versions() const;
  // At least one model serves, and every model this server is meant to serve that has a
  // servable version has its active version loaded and warmed up.
  bool ready() const;
  // nullopt when the model (or version) is unknown here and in the repository.
  std::optional<bool> model_ready(const std::string& model, const std::string& version) const;

  void flush_queues();
  const ModelRepository& repository() const { return repository_; }
  const ModelManagerOptions& options() const { return options_; }

 private:
  struct VersionOrder {
    bool operator()(const std::string& a, const std::string& b) const;
  };
  struct ModelState {
    std::map<std::string, std::shared_ptr<const LoadedVersion>, VersionOrder> loaded;
    std::string active;
    std::map<std::string, std::string> failures;  // version -> why its last load failed ("" key: the model's)
    std::set<std::string> loading;
    std::string unservable;  // why no version may serve; the model does not count for readiness
  };
  class LoadingGuard;

  std::shared_ptr<const LoadedVersion> build_version(const std::string& model, const std::string& version) const;
  std::unique_ptr<ServedInstance> build_instance(const std::string& model, const std::string& version,
                                                 const ClassifierOptions& options) const;
  // Loads (or reloads) one version and publishes it as loaded; the caller holds admin_mutex_.
  void load_version(const std::string& model, const std::string& version);
  void load_unless_loaded(const std::string& model, const std::string& version);
  void switch_active(const std::string& model, const std::string& version);

  ModelManagerOptions options_;
  ModelRepository repository_;
  ModelEvents events_;

  std::mutex admin_mutex_;
  mutable std::shared_mutex state_mutex_;
  std::map<std::string, ModelState, std::less<>> models_;
};

}  // namespace dermcds::service
