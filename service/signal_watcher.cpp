#include "signal_watcher.hpp"

#include <csignal>
#include <cstdlib>

#include <pthread.h>
#include <unistd.h>

#include "dermcds/error.hpp"

namespace dermcds::service {

namespace {

// SIGUSR2 only ever comes from our own destructor, to end the watch.
sigset_t watched_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR2);
  return set;
}

}  // namespace

SignalWatcher::SignalWatcher(std::function<void(int)> on_signal) : on_signal_(std::move(on_signal)) {
  const sigset_t set = watched_signals();
  if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) throw Error(ErrorCode::kInternal, "cannot block SIGTERM/SIGINT");
  thread_ = std::thread([this] { watch(); });
}

SignalWatcher::~SignalWatcher() {
  pthread_kill(thread_.native_handle(), SIGUSR2);
  thread_.join();
}

void SignalWatcher::watch() {
  const sigset_t set = watched_signals();
  int received = 0;
  bool shutting_down = false;
  while (sigwait(&set, &received) == 0) {
    if (received == SIGUSR2) return;
    if (shutting_down) std::_Exit(130);  // the second signal: the operator will not wait
    shutting_down = true;
    on_signal_(received);
  }
}

}  // namespace dermcds::service
