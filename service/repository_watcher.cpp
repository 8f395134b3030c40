#include "repository_watcher.hpp"

#include <algorithm>

#include "dermcds/error.hpp"
#include "logging.hpp"

namespace dermcds::service {

RepositoryWatcher::RepositoryWatcher(ModelManager& models, std::chrono::milliseconds period)
    : models_(models), period_(period), thread_([this] { run(); }) {}

RepositoryWatcher::~RepositoryWatcher() {
  {
    std::lock_guard lock(stop_mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void RepositoryWatcher::run() {
  std::unique_lock lock(stop_mutex_);
  while (!wake_.wait_for(lock, period_, [this] { return stop_; })) {
    lock.unlock();
    poll_once();
    lock.lock();
  }
}

void RepositoryWatcher::report(const std::string& model, const std::string& problem) {
  std::string& last = reported_[model];
  if (last == problem) return;
  last = problem;
  if (!problem.empty())
    log_event(spdlog::level::warn, "repository_poll",
              {{"model", model}, {"problem", problem}, {"hint", "the version being served keeps serving"}});
}

int RepositoryWatcher::poll_once() {
  std::lock_guard poll(poll_mutex_);
  const ModelRepository& repository = models_.repository();
  std::vector<std::string> names;
  try {
    names = repository.model_names();
  } catch (const std::exception& e) {
    report("", std::string("the repository cannot be read: ") + e.what());
    return 0;
  }
  report("", "");
  const std::vector<std::string>& wanted_models = models_.options().startup_models;
  std::map<std::string, std::string> serving;
  for (const ModelStatus& m : models_.status()) serving[m.name] = m.active_version;

  int switched = 0;
  for (const std::string& name : names) {
    if (!wanted_models.empty() && std::find(wanted_models.begin(), wanted_models.end(), name) == wanted_models.end()) continue;
    std::optional<std::string> wanted;
    try {
      wanted = repository.active_version(name);
    } catch (const std::exception& e) {
      report(name, e.what());  // e.g. ACTIVE names a version that may not serve: keep what serves
      continue;
    }
    if (!wanted) continue;  // no version may serve; the manager's index says why
    const auto current = serving.find(name);
    if (current != serving.end() && current->second == *wanted) {
      failed_.erase(name);
      report(name, "");
      continue;
    }
    // A version whose load failed is not retried every period: only once the repository wants
    // another version (or an admin loads it).
    if (failed_.count(name) && failed_[name] == *wanted) continue;
    const std::string from = current != serving.end() ? current->second : "";
    try {
      const std::string loaded = models_.load(name, std::nullopt);
      failed_.erase(name);
      report(name, "");
      log_event(spdlog::level::info, "repository_change", {{"model", name}, {"from", from}, {"to", loaded}});
      ++switched;
    } catch (const std::exception& e) {
      failed_[name] = *wanted;
      report(name, "version " + *wanted + " was not switched to: " + e.what());
    }
  }
  return switched;
}

}  // namespace dermcds::service
