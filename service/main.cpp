// pms-derm-cds: the derm-cds classification service (docs/service.md).
#include <atomic>
#include <cstdio>
#include <exception>

#include "config.hpp"
#include "dermcds/error.hpp"
#include "logging.hpp"
#include "service.hpp"
#include "signal_watcher.hpp"

namespace {
// Exit statuses: 0 after a requested shutdown, 2 for bad flags or configuration, 1 for a
// service that could not start (no repository, port in use).
constexpr int kExitConfiguration = 2;
constexpr int kExitFailure = 1;
}  // namespace

int main(int argc, char** argv) {
  using namespace dermcds::service;
  std::atomic<Service*> running{nullptr};
  std::atomic<bool> signalled{false};
  // First, before any thread exists (see signal_watcher.hpp).
  SignalWatcher signals([&](int) {
    signalled = true;
    if (Service* service = running.load()) service->shutdown();
  });

  ServiceConfig config;
  try {
    int exit_code = 0;
    if (parse_command_line(argc, argv, config, exit_code) == ParseOutcome::kExit) return exit_code;
    install_json_logging(config.log_level);
  } catch (const dermcds::Error& e) {
    std::fprintf(stderr, "pms-derm-cds: %s\n", e.what());
    return kExitConfiguration;
  }

  try {
    Service service(config);
    running = &service;
    if (signalled) service.shutdown();  // a signal that came before `running` was set
    service.run();
    running = nullptr;
  } catch (const dermcds::Error& e) {
    running = nullptr;
    log_event(spdlog::level::critical, "startup_failed", {{"error_code", to_string(e.code())}, {"error", e.what()}});
    return e.code() == dermcds::ErrorCode::kInvalidArgument ? kExitConfiguration : kExitFailure;
  } catch (const std::exception& e) {
    running = nullptr;
    log_event(spdlog::level::critical, "startup_failed", {{"error", e.what()}});
    return kExitFailure;
  }
  return 0;
}
