// SIGTERM and SIGINT handled on a thread of their own instead of in a signal handler, so that
// the reaction (a graceful shutdown) may lock, log and wait like any other code.
//
// Construct it first in main(), before any other thread exists: it blocks the signals in the
// calling thread, and threads created later inherit that mask, so the signals reach only the
// watcher. The first signal runs `on_signal`; a second one ends the process at once (exit 130),
// for an operator who does not want to wait for in-flight work.
#pragma once

#include <functional>
#include <thread>

namespace dermcds::service {

class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void(int signal)> on_signal);
  ~SignalWatcher();  // stops watching; joins the thread
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  void watch();
  std::function<void(int)> on_signal_;
  std::thread thread_;
};

}  // namespace dermcds::service
