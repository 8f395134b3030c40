#include "model_manager.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>

#include <spdlog/spdlog.h>

#include "dermcds/error.hpp"
#include "dermcds/file_util.hpp"
#include "dermcds/manifest.hpp"
#include "logging.hpp"
#include "warm_up.hpp"

namespace dermcds::service {

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

// --- LoadedVersion ----------------------------------------------------------------------------

LoadedVersion::LoadedVersion(std::string name, std::string version, std::vector<std::unique_ptr<ServedInstance>> instances)
    : name_(std::move(name)), version_(std::move(version)), instances_(std::move(instances)) {
  if (instances_.empty()) throw Error(ErrorCode::kInternal, "a loaded version needs at least one instance");
}

const ServedInstance& LoadedVersion::instance(std::string_view runtime) const {
  if (runtime.empty() || runtime == "auto") return *instances_.front();
  std::vector<std::string> names;
  for (const auto& instance : instances_) {
    if (instance->classifier->backend_info().runtime == runtime) return *instance;
    names.push_back(instance->classifier->backend_info().runtime);
  }
  throw Error(ErrorCode::kNotFound,
              "runtime '" + std::string(runtime) + "' is not loaded for " + name_ + "/" + version_ + " (loaded: " + join(names) + ")");
}

// --- ModelManager -----------------------------------------------------------------------------

bool ModelManager::VersionOrder::operator()(const std::string& a, const std::string& b) const {
  // Versions are decimal integers (model_repository.hpp): shorter is smaller, then lexical.
  return a.size() != b.size() ? a.size() < b.size() : a < b;
}

// Marks a version LOADING for its lifetime: whatever way the load ends, the mark goes.
class ModelManager::LoadingGuard {
 public:
  LoadingGuard(ModelManager& manager, std::string model, std::string version)
      : manager_(manager), model_(std::move(model)), version_(std::move(version)) {
    std::unique_lock lock(manager_.state_mutex_);
    manager_.models_[model_].loading.insert(version_);
  }
  ~LoadingGuard() {
    std::unique_lock lock(manager_.state_mutex_);
    manager_.models_[model_].loading.erase(version_);
  }
  LoadingGuard(const LoadingGuard&) = delete;
  LoadingGuard& operator=(const LoadingGuard&) = delete;

 private:
  ModelManager& manager_;
  std::string model_, version_;
};

ModelManager::ModelManager(ModelManagerOptions options, ModelEvents events)
    : options_(std::move(options)), repository_(options_.repository, options_.serving), events_(std::move(events)) {
  if (options_.runtimes.empty()) throw Error(ErrorCode::kInvalidArgument, "at least one runtime must be configured");
  if (options_.warmup_runs < 0) throw Error(ErrorCode::kInvalidArgument, "warm-up runs must not be negative");
}

ModelManager::~ModelManager() {
  // Versions go one at a time, each draining its queue, outside the lock.
  std::map<std::string, ModelState, std::less<>> models;
  {
    std::unique_lock lock(state_mutex_);
    models.swap(models_);
  }
}

int ModelManager::load_startup_models() {
  std::vector<std::string> names = options_.startup_models;
  if (names.empty()) names = repository_.model_names();
  if (names.empty()) throw Error(ErrorCode::kNotFound, "the model repository " + repository_.root().string() + " holds no model");
  {
    // Every startup model counts for readiness from the start, loaded or not.
    std::unique_lock lock(state_mutex_);
    for (const auto& name : names) models_[name];
  }
  int loaded = 0;
  for (const auto& name : names) {
    // Which version serves is the serving rule's choice; a model with none is set aside with
    // its reason (a rejected int8 candidate must not keep the server from being ready).
    std::string unservable;
    try {
      if (!repository_.active_version(name)) {
        const auto versions = repository_.versions(name);
        unservable = versions.empty() ? "the repository has no version of it"
                                      : "none of its versions may serve (rejected, or without parity evidence covering its "
                                        "artifacts; `dermcds models list` names the reason for each)";
      }
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kFailedPrecondition) {
        std::unique_lock lock(state_mutex_);
        models_[name].failures[""] = e.what();
        continue;
      }
      unservable = e.what();
    }
    if (!unservable.empty()) {
      {
        std::unique_lock lock(state_mutex_);
        models_[name].unservable = unservable;
      }
      log_event(spdlog::level::warn, "model_not_servable",
                {{"model", name}, {"reason", unservable}, {"hint", "not loaded; readiness does not wait for it"}});
      continue;
    }
    try {
      load(name, std::nullopt);
      ++loaded;
    } catch (const Error& e) {
      // load() logged it; the model stays unready and the index shows why.
      std::unique_lock lock(state_mutex_);
      if (models_[name].failures.empty()) models_[name].failures[""] = e.what();
    }
  }
  return loaded;
}

std::shared_ptr<const LoadedVersion> ModelManager::serving(std::string_view model, std::string_view version) const {
  {
    std::shared_lock lock(state_mutex_);
    const auto it = models_.find(model);
    if (it != models_.end()) {
      const ModelState& state = it->second;
      const std::string wanted = version.empty() ? state.active : std::string(version);
      if (const auto found = state.loaded.find(wanted); found != state.loaded.end()) return found->second;
      if (version.empty()) throw Error(ErrorCode::kRuntimeUnavailable, "model '" + std::string(model) + "' has no version ready to serve");
      throw Error(ErrorCode::kNotFound, "version " + std::string(version) + " of model '" + std::string(model) + "' is not loaded");
    }
  }
  throw Error(ErrorCode::kNotFound, "model '" + std::string(model) + "' is not loaded (GET /v1/models lists those that are)");
}

std::string ModelManager::load(const std::string& model, const std::optional<std::string>& version) {
  std::lock_guard admin(admin_mutex_);
  std::string target;
  if (version) {
    target = *version;
  } else {
    const auto active = repository_.active_version(model);
    if (!active) {
      if (repository_.versions(model).empty()) throw Error(ErrorCode::kNotFound, "the repository has no model '" + model + "'");
      throw Error(ErrorCode::kFailedPrecondition, "no version of model '" + model +
                                                      "' may serve (rejected, or without parity "
                                                      "evidence covering its artifacts)");
    }
    target = *active;
  }
  // Loaded, a version answers requests that name it: the same rule as for serving unnamed ones.
  repository_.require_servable(model, target);
  load_version(model, target);
  bool serves = !version;
  {
    std::shared_lock lock(state_mutex_);
    serves = serves || models_.at(model).active.empty();
  }
  if (serves) switch_active(model, target);
  return target;
}

void ModelManager::load_version(const std::string& model, const std::string& version) {
  const auto start = Clock::now();
  std::shared_ptr<const LoadedVersion> loaded;
  {
    LoadingGuard loading(*this, model, version);
    try {
      loaded = build_version(model, version);
    } catch (...) {
      // The manager's edge: whatever a runtime or the file system threw leaves as an Error, and
      // the failure is recorded and counted before it does.
      const Error e = current_exception_as_error();
      {
        std::unique_lock lock(state_mutex_);
        models_[model].failures[version] = e.what();
      }
      if (events_.load_finished) events_.load_finished(model, version, false);
      log_event(spdlog::level::err, "model_load_failed",
                {{"model", model}, {"version", version}, {"error_code", to_string(e.code())}, {"error", e.what()}});
      throw e;
    }
  }
  const double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  std::shared_ptr<const LoadedVersion> replaced;
  {
    std::unique_lock lock(state_mutex_);
    ModelState& state = models_[model];
    state.failures.erase(version);
    state.failures.erase("");
    state.unservable.clear();
    auto& slot = state.loaded[version];
    replaced = std::move(slot);  // a reload: the old copy drains once its requests finish
    slot = loaded;
  }
  if (events_.load_finished) events_.load_finished(model, version, true);
  nlohmann::ordered_json runtimes = nlohmann::ordered_json::array();
  for (const auto& instance : loaded->instances()) {
    const BackendInfo& info = instance->classifier->backend_info();
    runtimes.push_back(
        {{"runtime", info.runtime}, {"provider", info.provider}, {"precision", info.precision}, {"fallbacks", info.fallbacks}});
  }
  log_event(spdlog::level::info, "model_loaded",
            {{"model", model}, {"version", version}, {"instances", runtimes}, {"load_ms", std::round(load_ms)}});
}

void ModelManager::load_unless_loaded(const std::string& model, const std::string& version) {
  {
    std::shared_lock lock(state_mutex_);
    const auto it = models_.find(model);
    if (it != models_.end() && it->second.loaded.count(version) > 0) return;
  }
  load_version(model, version);
}

std::shared_ptr<const LoadedVersion> ModelManager::build_version(const std::string& model, const std::string& version) const {
  const std::filesystem::path dir = repository_.package_dir(model, version);
  const Manifest manifest = read_manifest(dir);
  std::vector<std::unique_ptr<ServedInstance>> instances;
  std::set<const ArtifactEntry*> chosen;
  for (const std::string& runtime : options_.runtimes) {
    ClassifierOptions options;
    options.package = dir;
    options.runtime = runtime;
    options.precision = options_.precision;
    options.execution = options_.execution;
    options.limits = options_.limits;
    const ArtifactEntry* artifact = nullptr;
    try {
      artifact = choose_runtime(manifest, runtime, options_.precision, options_.execution.provider).artifact;
    } catch (const Error& e) {
      // With several runtimes configured, a package need not carry an artifact for each.
      if (options_.runtimes.size() == 1) throw;
      spdlog::info("{}/{}: runtime {} skipped: {}", model, version, runtime, e.what());
      continue;
    }
    if (!chosen.insert(artifact).second) continue;  // "auto" and a runtime name that pick the same artifact
    instances.push_back(build_instance(model, version, options));
  }
  if (instances.empty())
    throw Error(ErrorCode::kRuntimeUnavailable,
                "no configured runtime (" + join(options_.runtimes) + ") can run " + model + "/" + version + " here");
  return std::make_shared<const LoadedVersion>(model, version, std::move(instances));
}

std::unique_ptr<ServedInstance> ModelManager::build_instance(const std::string& model, const std::string& version,
                                                             const ClassifierOptions& options) const {
  auto instance = std::make_unique<ServedInstance>();
  instance->classifier = Classifier::create(options);
  const Classifier& classifier = *instance->classifier;
  const BackendInfo& info = classifier.backend_info();
  const int full_batch =
      classifier.max_batch() > 0 ? std::min(options_.batching.max_batch_size, classifier.max_batch()) : options_.batching.max_batch_size;
  warm_up(classifier, full_batch, options_.warmup_runs);
  DynamicBatcher::Listener listener = events_.instance_ready ? events_.instance_ready(model, version, info) : nullptr;
  instance->batcher = std::make_unique<DynamicBatcher>(instance->classifier, options_.batching, std::move(listener));
  return instance;
}

void ModelManager::switch_active(const std::string& model, const std::string& version) {
  std::string previous;
  {
    std::unique_lock lock(state_mutex_);
    ModelState& state = models_.at(model);
    previous = state.active;
    if (previous == version) return;
    state.active = version;
  }
  log_event(spdlog::level::info, "model_activated", {{"model", model}, {"version", version}, {"previous", previous}});
}

void ModelManager::unload(const std::string& model, const std::optional<std::string>& version) {
  std::lock_guard admin(admin_mutex_);
  // What leaves the table is destroyed after the lock is released: destroying a version waits
  // for its queued requests, and lookups must not wait for that.
  std::vector<std::shared_ptr<const LoadedVersion>> leaving;
  {
    std::unique_lock lock(state_mutex_);
    const auto it = models_.find(model);
    if (it == models_.end()) throw Error(ErrorCode::kNotFound, "model '" + model + "' is not loaded");
    ModelState& state = it->second;
    if (version) {
      const auto found = state.loaded.find(*version);
      if (found == state.loaded.end()) throw Error(ErrorCode::kNotFound, "version " + *version + " of model '" + model + "' is not loaded");
      if (*version == state.active)
        throw Error(ErrorCode::kInvalidArgument,
                    "version " + *version + " of model '" + model + "' is the active version; activate another first, or unload the model");
      leaving.push_back(std::move(found->second));
      state.loaded.erase(found);
    } else {
      for (auto& [v, loaded] : state.loaded) leaving.push_back(std::move(loaded));
      models_.erase(it);
    }
  }
  log_event(spdlog::level::info, "model_unloaded", {{"model", model}, {"version", version.value_or("all")}});
}

void ModelManager::activate(const std::string& model, const std::string& version) {
  std::lock_guard admin(admin_mutex_);
  // The repository checks the serving rule, then (under its lock) we load and warm up, then it
  // writes ACTIVE and the history; a failed load leaves all of it as it was.
  repository_.activate(model, version, "activate", "admin API", [&](const std::string& v) { load_unless_loaded(model, v); });
  switch_active(model, version);
}

std::string ModelManager::rollback(const std::string& model) {
  std::lock_guard admin(admin_mutex_);
  {
    std::shared_lock lock(state_mutex_);
    if (models_.find(model) == models_.end()) throw Error(ErrorCode::kNotFound, "model '" + model + "' is not loaded");
  }
  const std::string target = repository_.rollback(model, "admin API", [&](const std::string& v) { load_unless_loaded(model, v); });
  switch_active(model, target);
  return target;
}

std::vector<IndexEntry> ModelManager::index(bool ready_only) const {
  // The repository is read first, without the lock: lookups must never wait for a disk. A
  // repository that cannot be read (removed, unmounted, no permission) still leaves what is
  // loaded listed, with the reason on the versions that are not.
  std::map<std::string, std::set<std::string, VersionOrder>> on_disk;
  std::map<std::string, std::string> verdicts;  // "model/version" -> why it may not serve
  std::string repository_error;
  try {
    for (const auto& name : repository_.model_names())
      for (const auto& v : repository_.versions(name)) {
        on_disk[name].insert(v);
        if (const ServingVerdict verdict = repository_.serving_verdict(name, v); !verdict) verdicts[name + "/" + v] = verdict.reason;
      }
  } catch (const Error& e) {
    repository_error = e.what();
  }
  std::shared_lock lock(state_mutex_);
  std::set<std::string> names;
  for (const auto& [name, versions] : on_disk) names.insert(name);
  for (const auto& [name, state] : models_) names.insert(name);
  std::vector<IndexEntry> entries;
  for (const auto& name : names) {
    const auto it = models_.find(name);
    const ModelState* state = it == models_.end() ? nullptr : &it->second;
    std::set<std::string, VersionOrder> versions = on_disk[name];
    if (state)
      for (const auto& [v, loaded] : state->loaded) versions.insert(v);
    if (versions.empty() && state && !ready_only) {
      // A startup model with nothing on disk to list: the model itself says why.
      std::string reason = !state->unservable.empty() ? state->unservable : repository_error;
      if (const auto f = state->failures.find(""); reason.empty() && f != state->failures.end()) reason = f->second;
      entries.push_back({name, "", "UNAVAILABLE", reason.empty() ? "not in the repository" : reason});
      continue;
    }
    for (const auto& version : versions) {
      IndexEntry entry{name, version, "UNAVAILABLE", ""};
      if (state && state->loaded.count(version))
        entry.state = "READY";
      else if (state && state->loading.count(version))
        entry.state = "LOADING";
      if (entry.state == "UNAVAILABLE") {
        if (const auto v = verdicts.find(name + "/" + version); v != verdicts.end())
          entry.reason = "may not serve: " + v->second;
        else if (state && state->failures.count(version))
          entry.reason = state->failures.at(version);
        else if (state && !state->unservable.empty())
          entry.reason = state->unservable;
        else
          entry.reason = "unloaded";
      }
      if (!ready_only || entry.state == "READY") entries.push_back(std::move(entry));
    }
  }
  return entries;
}

std::vector<ModelStatus> ModelManager::status() const {
  std::vector<ModelStatus> out;
  for (const IndexEntry& entry : index(false)) {
    if (out.empty() || out.back().name != entry.name) out.push_back({entry.name, "", false, "", {}});
    // A model-level entry (no version on disk) describes the model, not a version.
    if (!entry.version.empty()) out.back().versions.push_back({entry.version, entry.state, false, nullptr, entry.reason});
  }
  std::shared_lock lock(state_mutex_);
  for (ModelStatus& model : out) {
    const auto it = models_.find(model.name);
    if (it == models_.end()) continue;
    model.active_version = it->second.active;
    for (VersionStatus& v : model.versions) {
      v.active = v.version == model.active_version;
      if (const auto found = it->second.loaded.find(v.version); found != it->second.loaded.end()) v.loaded = found->second;
    }
    model.ready = !model.active_version.empty() && it->second.loaded.count(model.active_version) > 0;
    model.unservable = it->second.unservable;
  }
  return out;
}

std::vector<std::shared_ptr<const LoadedVersion>> ModelManager::loaded_versions() const {
  std::vector<std::shared_ptr<const LoadedVersion>> out;
  std::shared_lock lock(state_mutex_);
  for (const auto& [name, state] : models_)
    for (const auto& [version, loaded] : state.loaded) out.push_back(loaded);
  return out;
}

bool ModelManager::ready() const {
  std::shared_lock lock(state_mutex_);
  bool any_serving = false;
  for (const auto& [name, state] : models_) {
    const bool serving = !state.active.empty() && state.loaded.count(state.active) > 0;
    any_serving = any_serving || serving;
    // A model none of whose versions may serve is set aside (it is listed with its reason);
    // one whose servable version failed to load is a real failure and keeps the server unready.
    if (!serving && state.unservable.empty()) return false;
  }
  return any_serving;
}

std::optional<bool> ModelManager::model_ready(const std::string& model, const std::string& version) const {
  {
    std::shared_lock lock(state_mutex_);
    const auto it = models_.find(model);
    if (it != models_.end()) {
      const std::string wanted = version.empty() ? it->second.active : version;
      if (it->second.loaded.count(wanted)) return true;
    }
  }
  // Not serving: known to the repository (false), or unknown altogether (nullopt).
  try {
    const auto versions = repository_.versions(model);
    if (versions.empty()) return std::nullopt;
    if (!version.empty() && std::find(versions.begin(), versions.end(), version) == versions.end()) return std::nullopt;
    return false;
  } catch (const Error&) {
    return std::nullopt;  // a malformed name is no model of ours
  }
}

void ModelManager::flush_queues() {
  for (const auto& loaded : loaded_versions())
    for (const auto& instance : loaded->instances()) instance->batcher->flush();
}

}  // namespace dermcds::service
