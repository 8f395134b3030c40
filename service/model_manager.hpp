// Which model versions are loaded, which one serves each model, and how that changes while
// requests keep flowing.
//
// A LoadedVersion is one version of one model, loaded and warmed up, with one ServedInstance
// (classifier + batcher) per configured runtime. It is immutable once published, and requests
// hold a shared_ptr to it for as long as they run: swapping the active version, or unloading
// one, never disturbs a request already under way; the old version's batcher finishes its queue
// when the last request lets go.
//
// Hot swap: a new version is loaded and warmed up completely before anything points at it; only
// then does the active version change, in one step under a lock. A load that fails leaves every
// version that was serving in place, and the error is reported to the caller.
// Activation follows the repository's ACTIVE marker (written before the switch), so a restart
// serves what was last activated.
//
// Thread safety: every member may be called concurrently. Lookups take a shared lock for a few
// instructions; administrative changes (load, unload, activate, rollback) run one at a time.
// Errors: dermcds::Error — kNotFound (unknown model, version or runtime), kInvalidArgument
// (malformed names, refusing to unload the serving version), kRuntimeUnavailable (a model with
// no ready version), and whatever loading a package throws.
#pragma once

#include <filesystem>
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
#include "service_metrics.hpp"

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
  int warmup_runs = 1;  // rounds of warm-up inferences (batch of 1 and a full batch) before ready
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
  std::vector<VersionStatus> versions;
};

class ModelManager {
 public:
  ModelManager(ModelManagerOptions options, ServiceMetrics& metrics);
  ~ModelManager();
  ModelManager(const ModelManager&) = delete;
  ModelManager& operator=(const ModelManager&) = delete;

  // Loads the active version of each startup model. A model that fails to load is logged and
  // stays unready (the server is not ready); returns how many models loaded.
  int load_startup_models();

  // The version that serves `model` (its active version when `version` is empty).
  std::shared_ptr<const LoadedVersion> serving(std::string_view model, std::string_view version = {}) const;

  // Triton's load: loads (or reloads) `version`, or without one the version the repository marks
  // active, which then serves. Loading an explicit version leaves the active one as it is.
  // Returns the version loaded.
  std::string load(const std::string& model, const std::optional<std::string>& version);
  // Without a version: the whole model goes (requests naming it get 404). With one: that
  // version, unless it is the active one (kInvalidArgument).
  void unload(const std::string& model, const std::optional<std::string>& version);
  // Loads the version if needed, records it in the repository's ACTIVE marker, and switches.
  void activate(const std::string& model, const std::string& version);
  // Back to the version that was active before the current one; returns it.
  std::string rollback(const std::string& model);

  std::vector<IndexEntry> index(bool ready_only) const;
  std::vector<ModelStatus> status() const;
  std::vector<std::shared_ptr<const LoadedVersion>> loaded_versions() const;
  // Every model this server is meant to serve has its active version loaded and warmed up.
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
    std::vector<std::string> history;           // previously active versions, latest last
    std::map<std::string, std::string> failures;  // version -> why its last load failed
    std::set<std::string> loading;
  };

  std::shared_ptr<const LoadedVersion> build_version(const std::string& model, const std::string& version) const;
  std::unique_ptr<ServedInstance> build_instance(const std::string& model, const std::string& version,
                                                 const ClassifierOptions& options) const;
  void warm_up(const Classifier& classifier, int batch) const;
  // Loads (or reloads) one version and publishes it as loaded; the caller holds admin_mutex_.
  void load_version(const std::string& model, const std::string& version);
  void require_version_in_repository(const std::string& model, const std::string& version) const;
  void switch_active(const std::string& model, const std::string& version, bool remember_previous);

  ModelManagerOptions options_;
  ModelRepository repository_;
  ServiceMetrics& metrics_;

  std::mutex admin_mutex_;
  mutable std::shared_mutex state_mutex_;
  std::map<std::string, ModelState, std::less<>> models_;
};

}  // namespace dermcds::service
