// Follows a model repository that other processes change, so that several replicas sharing one
// repository converge on the same active version (docs/deploy.md).
//
// Every period it asks the repository, for each model this server serves, which version should
// serve (ModelRepository::active_version: the ACTIVE marker, judged by the serving rule), and
// when that is not the version being served, has the ModelManager load it. ModelManager::load
// loads and warms the version up before it takes traffic, and the version it replaces finishes
// the requests it holds; a version that may not serve, or fails to load, is never switched to,
// its reason is logged once and the repository index shows it. The watcher adds no rule of its
// own: what may serve is the serving rule's, how a switch happens is the manager's.
//
// Thread safety: one thread of its own; poll_once() may also be called directly (tests), and is
// serialised with that thread. Errors: none escape; each is logged with the model it concerns.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "model_manager.hpp"

namespace dermcds::service {

class RepositoryWatcher {
 public:
  // Starts polling every `period` (> 0). The manager must outlive the watcher.
  RepositoryWatcher(ModelManager& models, std::chrono::milliseconds period);
  ~RepositoryWatcher();  // stops the thread; a rescan under way finishes first
  RepositoryWatcher(const RepositoryWatcher&) = delete;
  RepositoryWatcher& operator=(const RepositoryWatcher&) = delete;

  // One rescan. Returns how many models switched version.
  int poll_once();

 private:
  void run();
  // Logs `problem` for `model` unless it is the one already logged for it ("" clears).
  void report(const std::string& model, const std::string& problem);

  ModelManager& models_;
  const std::chrono::milliseconds period_;
  std::mutex poll_mutex_;                        // one rescan at a time
  std::map<std::string, std::string> reported_;  // model -> the problem last logged
  std::map<std::string, std::string> failed_;    // model -> the version whose load failed
  std::mutex stop_mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace dermcds::service
