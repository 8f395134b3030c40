#include "service.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "dermcds/error.hpp"
#include "dermcds/file_util.hpp"
#include "logging.hpp"

namespace dermcds::service {

namespace {

HttpServerOptions http_options(const ServiceConfig& config) {
  HttpServerOptions options;
  options.host = config.host;
  options.port = config.port;
  options.threads = config.http_threads;
  options.max_body_bytes = static_cast<std::size_t>(config.max_body_bytes);
  if (config.allow_unverified_models) options.headers.emplace_back(std::string(kUnverifiedHeader), "allowed");
  options.header_timeout = std::chrono::seconds(config.header_timeout_s);
  options.keep_alive_timeout = std::chrono::seconds(config.keep_alive_timeout_s);
  options.read_timeout = std::chrono::seconds(config.body_timeout_s);
  options.max_header_bytes = static_cast<std::size_t>(config.max_header_bytes);
  options.max_connections = config.max_connections;
  options.io_threads = config.http_io_threads;
  return options;
}

// Probes and scrapes arrive every few seconds; their log lines would bury the requests.
bool is_routine(const std::string& route) {
  return route == "/metrics" || route.rfind("/v2/health/", 0) == 0 || route.find("/ready") != std::string::npos;
}

void write_port_file(const std::filesystem::path& path, int port) {
  write_file_atomically(path, std::to_string(port) + "\n");  // readers never see a half-written number
}

std::unique_ptr<clinical::AuditLog> open_audit_log(const ServiceConfig& config) {
  if (config.audit_log.empty()) return nullptr;
  return std::make_unique<clinical::AuditLog>(clinical::AuditLogOptions{config.audit_log, config.audit_max_bytes, config.audit_fsync});
}

}  // namespace

Service::Service(ServiceConfig config)
    : config_(std::move(config)),
      audit_(open_audit_log(config_)),
      models_(model_manager_options(config_), model_events(metrics_)),
      context_{config_, models_, metrics_, shutting_down_, audit_.get()},
      grpc_(config_.grpc_port >= 0 ? std::make_unique<GrpcServer>(context_, config_.host, config_.grpc_port) : nullptr),
      http_(http_options(config_)) {
  add_v1_routes(http_, context_);
  add_v2_routes(http_, context_);
  add_repository_routes(http_, context_);
  add_site_routes(http_, context_);
  add_cds_hooks_routes(http_, context_);
  http_.set_observer([this](const RequestRecord& record) { observe(record); });
}

Service::~Service() = default;

void Service::observe(const RequestRecord& record) {
  const HttpRequest& request = *record.request;
  const HttpResponse& response = *record.response;
  const std::string status = std::to_string(response.status);
  metrics_.http_requests.increment({request.route, request.method, status});
  metrics_.http_duration.observe({request.route}, record.duration_ms / 1e3);

  if (response.log_fields.value("error_code", "") == "resource_exhausted") {
    report_refusal(request.route);
    return;
  }
  nlohmann::ordered_json fields = {{"request_id", request.request_id},
                                   {"method", request.method},
                                   {"route", request.route},
                                   {"status", response.status},
                                   {"duration_ms", std::round(record.duration_ms * 1000) / 1000},
                                   {"request_bytes", record.request_bytes}};
  for (const auto& [key, value] : response.log_fields.items()) fields[key] = value;
  if (response.status >= 500) {
    // One line per second per distinct failure, with the count of those held back.
    const auto held_back = error_log_limiter_.admit(request.route + "|" + status + "|" + response.log_fields.value("error_code", "") + "|" +
                                                    response.log_fields.value("error", ""));
    if (!held_back) return;
    if (*held_back > 0) fields["repeated"] = *held_back;
  }
  const auto level = response.status >= 500                               ? spdlog::level::err
                     : is_routine(request.route) && response.status < 400 ? spdlog::level::debug
                                                                          : spdlog::level::info;
  log_event(level, "request", fields);
}

void Service::report_refusal(const std::string& route) {
  // Under overload thousands of requests a second are refused, each one line saying the same;
  // one line a second with the count says it too, without the log becoming the bottleneck.
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(refusals_mutex_);
  ++refusals_since_report_;
  if (now - last_refusal_report_ < std::chrono::seconds(1)) return;
  log_event(spdlog::level::warn, "overloaded",
            {{"route", route}, {"refused", refusals_since_report_}, {"hint", "queue full: answered 503 with Retry-After"}});
  refusals_since_report_ = 0;
  last_refusal_report_ = now;
}

void Service::run() {
  const int port = http_.bind();
  const int grpc_port = grpc_ ? grpc_->start() : -1;
  if (grpc_ && !config_.grpc_port_file.empty()) write_port_file(config_.grpc_port_file, grpc_port);
  if (!config_.port_file.empty()) write_port_file(config_.port_file, port);
  nlohmann::ordered_json listening = {{"host", config_.host}, {"port", port}};
  if (grpc_) listening["grpc_port"] = grpc_port;
  listening["config"] = describe(config_);
  log_event(spdlog::level::info, "listening", listening);
  if (config_.allow_unverified_models)
    log_event(spdlog::level::warn, "unverified_models_allowed",
              {{"hint",
                "--allow-unverified-models: versions without parity evidence for their artifacts may serve; "
                "development only. Every answer carries " +
                    std::string(kUnverifiedHeader) + ": allowed"}});
  // Serving starts before the models load: liveness answers at once, readiness once they are warm.
  std::atomic<bool> serve_returned{false};
  std::thread serving([this, &serve_returned] {
    http_.serve();
    serve_returned = true;
  });
  // stop() only takes effect on a running server, so shutdown() leaves stopping to us until the
  // server runs (or has given up: serve() returns at once if the socket fails).
  while (!http_.running() && !serve_returned) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  {
    std::lock_guard lock(serving_mutex_);
    serving_ = true;
    if (shutting_down_) http_.stop();
  }

  try {
    const int loaded = models_.load_startup_models();
    const std::vector<ModelStatus> status = models_.status();
    const bool default_known =
        std::any_of(status.begin(), status.end(), [&](const ModelStatus& m) { return m.name == config_.default_model; });
    if (!default_known)
      log_event(spdlog::level::warn, "default_model_missing",
                {{"default_model", config_.default_model}, {"hint", "requests that name no model will get 404; set --default-model"}});
    if (config_.repository_poll_secs > 0 && !shutting_down_)
      watcher_ = std::make_unique<RepositoryWatcher>(models_, std::chrono::seconds(config_.repository_poll_secs));
    if (models_.ready() && !shutting_down_) {
      log_event(spdlog::level::info, "ready", {{"models_loaded", loaded}});
      if (config_.banner) print_banner(port);
    } else {
      log_event(spdlog::level::err, "not_ready",
                {{"models_loaded", loaded}, {"hint", "POST /v2/repository/index shows why; the server keeps running"}});
    }
  } catch (...) {
    // A repository that cannot be read at all: nothing to serve.
    shutdown();
    serving.join();
    if (grpc_) grpc_->wait();
    throw;
  }
  serving.join();
  watcher_.reset();          // no version switch may start while the process winds down
  if (grpc_) grpc_->wait();  // shutdown() began it; calls in progress finish first
  log_event(spdlog::level::info, "stopped");
}

void Service::shutdown() {
  if (shutting_down_.exchange(true)) return;
  log_event(spdlog::level::info, "shutting_down", {{"note", "finishing requests in progress"}});
  models_.flush_queues();
  // gRPC refuses new calls at once and gives those in progress as long as a request may take.
  if (grpc_) grpc_->stop(std::chrono::milliseconds(config_.request_timeout_ms) + std::chrono::seconds(1));
  std::lock_guard lock(serving_mutex_);
  if (serving_) http_.stop();  // else run() stops it as soon as it is running
}

void Service::print_banner(int port) const {
  const std::string host = config_.host == "0.0.0.0" || config_.host == "::" ? "127.0.0.1" : config_.host;
  const std::string url = "http://" + host + ":" + std::to_string(port);
  std::string image = "lesion.jpg";
  for (const char* sample : {"/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg"})
    if (std::filesystem::exists(sample)) image = sample;
  std::string models;
  for (const ModelStatus& m : models_.status())
    if (m.ready) models += "  " + m.name + " version " + m.active_version + (m.name == config_.default_model ? " (default)" : "") + "\n";
  for (const ModelStatus& m : models_.status())
    if (!m.unservable.empty()) models += "  WARNING: not serving " + m.name + ": " + m.unservable + "\n";
  std::printf(
      "\npms-derm-cds is ready at %s serving:\n%s\n"
      "  web page       %s/\n"
      "  classify       curl -s -H 'Content-Type: image/jpeg' --data-binary @%s %s/v1/classify\n"
      "  as a form      curl -s -F image=@%s -F model=%s %s/v1/classify\n"
      "  models         curl -s %s/v1/models\n"
      "  KServe v2      curl -s %s/v2/models/%s   (POST .../infer with JSON tensors)\n"
      "  metrics        curl -s %s/metrics\n"
      "  API reference  %s/openapi.yaml\n"
      "  admin          %s\n\n"
      "Stop with Ctrl-C or SIGTERM: requests in progress are finished first.\n\n",
      url.c_str(), models.c_str(), url.c_str(), image.c_str(), url.c_str(), image.c_str(), config_.default_model.c_str(), url.c_str(),
      url.c_str(), url.c_str(), config_.default_model.c_str(), url.c_str(), url.c_str(),
      config_.admin_key.empty()
          ? "disabled; set DERMCDS_ADMIN_KEY to load, unload, activate and roll back versions"
          : ("curl -s -X POST -H 'Authorization: Bearer $DERMCDS_ADMIN_KEY' " + url + "/v2/repository/index").c_str());
  std::fflush(stdout);
}

}  // namespace dermcds::service
