#include "model_manager.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <spdlog/spdlog.h>

#include "dermcds/error.hpp"
#include "dermcds/manifest.hpp"
#include "logging.hpp"

namespace dermcds::service {

namespace {

using Clock = std::chrono::steady_clock;

// A textured synthetic photograph a little larger than the model's resize target, so that
// warm-up runs the same decode-free path (resize, crop, normalize, infer) real images take.
RgbImage warm_up_image(const InputSpec& input) {
  RgbImage image;
  image.width = input.resize_size + 24;
  image.height = input.resize_size + 8;
  image.pixels.resize(static_cast<std::size_t>(3) * image.width * image.height);
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < image.width; ++x)
      for (int c = 0; c < 3; ++c)
        image.pixels[(static_cast<std::size_t>(y) * image.width + x) * 3 + c] =
            static_cast<std::uint8_t>((x * (3 + c) + y * (5 - c) + c * 61) & 0xff);
  return image;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

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
  throw Error(ErrorCode::kNotFound, "runtime '" + std::string(runtime) + "' is not loaded for " + name_ + "/" + version_ +
                                        " (loaded: " + joined(names) + ")");
}

// --- ModelManager -----------------------------------------------------------------------------

bool ModelManager::VersionOrder::operator()(const std::string& a, const std::string& b) const {
  // Versions are decimal integers (model_repository.hpp): shorter is smaller, then lexical.
  return a.size() != b.size() ? a.size() < b.size() : a < b;
}

ModelManager::ModelManager(ModelManagerOptions options, ServiceMetrics& metrics)
    : options_(std::move(options)), repository_(options_.repository), metrics_(metrics) {
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
      if (version.empty())
        throw Error(ErrorCode::kRuntimeUnavailable, "model '" + std::string(model) + "' has no version ready to serve");
      throw Error(ErrorCode::kNotFound,
                  "version " + std::string(version) + " of model '" + std::string(model) + "' is not loaded");
    }
  }
  throw Error(ErrorCode::kNotFound, "model '" + std::string(model) + "' is not loaded (GET /v1/models lists those that are)");
}

void ModelManager::require_version_in_repository(const std::string& model, const std::string& version) const {
  repository_.package_dir(model, version);  // validates both names
  const auto versions = repository_.versions(model);
  if (versions.empty()) throw Error(ErrorCode::kNotFound, "the repository has no model '" + model + "'");
  if (std::find(versions.begin(), versions.end(), version) == versions.end())
    throw Error(ErrorCode::kNotFound, "the repository has no version " + version + " of model '" + model + "'");
  // Loaded, a version could answer requests that name it; a rejected one must never answer.
  if (repository_.is_rejected(model, version))
    throw Error(ErrorCode::kInvalidArgument, "version " + version + " of model '" + model +
                                                 "' is a rejected candidate (its parity gate failed) and cannot be loaded");
}

std::string ModelManager::load(const std::string& model, const std::optional<std::string>& version) {
  std::lock_guard admin(admin_mutex_);
  std::string target;
  if (version) {
    target = *version;
  } else {
    const auto active = repository_.active_version(model);
    if (!active) throw Error(ErrorCode::kNotFound, "the repository has no model '" + model + "'");
    target = *active;
  }
  require_version_in_repository(model, target);
  load_version(model, target);
  bool serves = !version;
  {
    std::shared_lock lock(state_mutex_);
    serves = serves || models_.at(model).active.empty();
  }
  if (serves) switch_active(model, target, true);
  return target;
}

void ModelManager::load_version(const std::string& model, const std::string& version) {
  {
    std::unique_lock lock(state_mutex_);
    models_[model].loading.insert(version);
  }
  const auto start = Clock::now();
  std::shared_ptr<const LoadedVersion> loaded;
  try {
    loaded = build_version(model, version);
  } catch (const Error& e) {
    {
      std::unique_lock lock(state_mutex_);
      ModelState& state = models_[model];
      state.loading.erase(version);
      state.failures[version] = e.what();
    }
    metrics_.model_loads.increment({model, version, "failure"});
    log_event(spdlog::level::err, "model_load_failed",
              {{"model", model}, {"version", version}, {"error_code", to_string(e.code())}, {"error", e.what()}});
    throw;
  }
  const double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  std::shared_ptr<const LoadedVersion> replaced;
  {
    std::unique_lock lock(state_mutex_);
    ModelState& state = models_[model];
    state.loading.erase(version);
    state.failures.erase(version);
    state.failures.erase("");
    auto& slot = state.loaded[version];
    replaced = std::move(slot);  // a reload: the old copy drains once its requests finish
    slot = loaded;
  }
  metrics_.model_loads.increment({model, version, "success"});
  nlohmann::ordered_json runtimes = nlohmann::ordered_json::array();
  for (const auto& instance : loaded->instances()) {
    const BackendInfo& info = instance->classifier->backend_info();
    runtimes.push_back({{"runtime", info.runtime}, {"provider", info.provider}, {"precision", info.precision}});
  }
  log_event(spdlog::level::info, "model_loaded",
            {{"model", model}, {"version", version}, {"instances", runtimes}, {"load_ms", std::round(load_ms)}});
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
      artifact = choose_runtime(manifest, runtime, options_.precision).artifact;
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
    throw Error(ErrorCode::kRuntimeUnavailable, "no configured runtime (" + joined(options_.runtimes) + ") can run " +
                                                    model + "/" + version + " here");
  return std::make_shared<const LoadedVersion>(model, version, std::move(instances));
}

std::unique_ptr<ServedInstance> ModelManager::build_instance(const std::string& model, const std::string& version,
                                                             const ClassifierOptions& options) const {
  auto instance = std::make_unique<ServedInstance>();
  instance->classifier = Classifier::create(options);
  const Classifier& classifier = *instance->classifier;
  const BackendInfo& info = classifier.backend_info();
  for (const std::string& fallback : info.fallbacks)
    metrics_.fallback_events.increment({model, version, info.runtime, fallback.substr(0, fallback.find(':'))});
  const int full_batch = classifier.max_batch() > 0 ? std::min(options_.batching.max_batch_size, classifier.max_batch())
                                                    : options_.batching.max_batch_size;
  warm_up(classifier, full_batch);
  auto listener = [&metrics = metrics_, model, version, runtime = info.runtime, provider = info.provider](const BatchReport& r) {
    metrics.batch_size.observe({model, version, runtime}, r.images);
    metrics.stage_duration.observe({model, version, "inference"}, r.inference_ms / 1e3);
    for (double queue_ms : r.queue_ms) metrics.stage_duration.observe({model, version, "queue"}, queue_ms / 1e3);
    metrics.images.increment({model, version, runtime, provider}, r.images);
  };
  instance->batcher = std::make_unique<DynamicBatcher>(instance->classifier, options_.batching, std::move(listener));
  return instance;
}

void ModelManager::warm_up(const Classifier& classifier, int batch) const {
  const PreparedImage prepared = classifier.prepare(warm_up_image(classifier.manifest().input));
  const std::vector<PreparedImage> full(static_cast<std::size_t>(std::max(batch, 1)), prepared);
  for (int round = 0; round < options_.warmup_runs; ++round) {
    // Both shapes the batcher will use most: a lone request and a full batch.
    const auto single = classifier.classify_batch({&prepared, 1});
    const auto many = batch > 1 ? classifier.classify_batch(full) : single;
    for (const auto* results : {&single, &many})
      for (const ClassificationResult& r : *results)
        for (float p : r.probabilities)
          if (!std::isfinite(p))
            throw Error(ErrorCode::kModelMismatch, classifier.manifest().name + "/" + classifier.manifest().version +
                                                       ": warm-up inference produced non-finite probabilities");
  }
}

void ModelManager::switch_active(const std::string& model, const std::string& version, bool remember_previous) {
  std::string previous;
  {
    std::unique_lock lock(state_mutex_);
    ModelState& state = models_.at(model);
    previous = state.active;
    if (previous == version) return;
    if (remember_previous && !previous.empty()) state.history.push_back(previous);
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
      if (found == state.loaded.end())
        throw Error(ErrorCode::kNotFound, "version " + *version + " of model '" + model + "' is not loaded");
      if (*version == state.active)
        throw Error(ErrorCode::kInvalidArgument, "version " + *version + " of model '" + model +
                                                     "' is the active version; activate another first, or unload the model");
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
  require_version_in_repository(model, version);
  bool loaded = false;
  {
    std::shared_lock lock(state_mutex_);
    const auto it = models_.find(model);
    loaded = it != models_.end() && it->second.loaded.count(version) > 0;
  }
  if (!loaded) load_version(model, version);
  // The marker first: if it cannot be written, nothing has switched and the caller is told.
  repository_.set_active_version(model, version);
  switch_active(model, version, true);
}

std::string ModelManager::rollback(const std::string& model) {
  std::lock_guard admin(admin_mutex_);
  std::string previous;
  bool loaded = false;
  {
    std::shared_lock lock(state_mutex_);
    const auto it = models_.find(model);
    if (it == models_.end()) throw Error(ErrorCode::kNotFound, "model '" + model + "' is not loaded");
    if (it->second.history.empty())
      throw Error(ErrorCode::kNotFound, "model '" + model + "' has no earlier active version to roll back to");
    previous = it->second.history.back();
    loaded = it->second.loaded.count(previous) > 0;
  }
  if (!loaded) {
    require_version_in_repository(model, previous);
    load_version(model, previous);
  }
  repository_.set_active_version(model, previous);
  {
    std::unique_lock lock(state_mutex_);
    models_.at(model).history.pop_back();
  }
  switch_active(model, previous, false);
  return previous;
}

std::vector<IndexEntry> ModelManager::index(bool ready_only) const {
  std::set<std::string> names;
  for (const auto& name : repository_.model_names()) names.insert(name);
  std::shared_lock lock(state_mutex_);
  for (const auto& [name, state] : models_) names.insert(name);
  std::vector<IndexEntry> entries;
  for (const auto& name : names) {
    const auto it = models_.find(name);
    const ModelState* state = it == models_.end() ? nullptr : &it->second;
    std::set<std::string, VersionOrder> versions;
    for (const auto& v : repository_.versions(name)) versions.insert(v);
    if (state)
      for (const auto& [v, loaded] : state->loaded) versions.insert(v);
    for (const auto& version : versions) {
      IndexEntry entry{name, version, "UNAVAILABLE", ""};
      if (state && state->loaded.count(version)) entry.state = "READY";
      else if (state && state->loading.count(version)) entry.state = "LOADING";
      if (state && entry.state == "UNAVAILABLE") {
        if (const auto f = state->failures.find(version); f != state->failures.end()) entry.reason = f->second;
        else entry.reason = "unloaded";
      } else if (!state) {
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
    if (out.empty() || out.back().name != entry.name) out.push_back({entry.name, "", false, {}});
    out.back().versions.push_back({entry.version, entry.state, false, nullptr, entry.reason});
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
  if (models_.empty()) return false;
  return std::all_of(models_.begin(), models_.end(), [](const auto& entry) {
    const ModelState& state = entry.second;
    return !state.active.empty() && state.loaded.count(state.active) > 0;
  });
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
