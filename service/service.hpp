// pms-derm-cds put together: configuration -> model manager, metrics, HTTP server and routes,
// and the gRPC server when grpc_port is set.
//
// Lifecycle: run() binds, starts answering (live at once, ready once every model is loaded and
// warmed up), loads the models, prints how to call the service, and returns after shutdown().
// shutdown() (from the signal watcher) makes readiness false, stops accepting connections,
// lets every request in progress finish (batch queues stop waiting for stragglers), gRPC calls
// included, and only then are the models released.
// Thread safety: shutdown() may be called from any thread, at any time, more than once.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>

#include "config.hpp"
#include "grpc/grpc_server.hpp"
#include "http_server.hpp"
#include "logging.hpp"
#include "model_manager.hpp"
#include "repository_watcher.hpp"
#include "routes.hpp"
#include "service_metrics.hpp"

namespace dermcds::service {

class Service {
 public:
  explicit Service(ServiceConfig config);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Returns when the server has stopped; throws kIoError if it cannot listen, kNotFound if the
  // repository has no model.
  void run();
  void shutdown();

 private:
  void observe(const RequestRecord& record);
  void report_refusal(const std::string& route);
  void print_banner(int port) const;

  ServiceConfig config_;
  ServiceMetrics metrics_;
  std::atomic<bool> shutting_down_{false};
  std::mutex serving_mutex_;
  bool serving_ = false;  // the HTTP server runs, so stop() takes effect
  LogRateLimiter error_log_limiter_;
  std::mutex refusals_mutex_;
  long refusals_since_report_ = 0;
  std::chrono::steady_clock::time_point last_refusal_report_{};
  std::unique_ptr<clinical::AuditLog> audit_;   // null without audit_log; outlives the routes that write it
  ModelManager models_;                         // after metrics_, which its batchers report to
  std::unique_ptr<RepositoryWatcher> watcher_;  // with repository_poll_secs; stopped before models_ goes
  ServiceContext context_;
  std::unique_ptr<GrpcServer> grpc_;  // null when grpc_port is -1; destroyed before what it uses
  HttpServer http_;                   // last: destroyed first, before what its handlers use
};

}  // namespace dermcds::service
