#include "config.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>

#include <CLI/CLI.hpp>

#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/file_util.hpp"

namespace dermcds::service {

namespace {

using json = nlohmann::json;

[[noreturn]] void bad_value(const std::string& where, const char* expected) {
  throw Error(ErrorCode::kInvalidArgument, where + " must be " + expected);
}

template <typename T>
T read_value(const json& v, const std::string& where);

template <>
std::string read_value<std::string>(const json& v, const std::string& where) {
  if (!v.is_string()) bad_value(where, "a string");
  return v.get<std::string>();
}
template <>
std::filesystem::path read_value<std::filesystem::path>(const json& v, const std::string& where) {
  return read_value<std::string>(v, where);
}
template <>
int read_value<int>(const json& v, const std::string& where) {
  if (!v.is_number_integer()) bad_value(where, "an integer");
  const auto value = v.get<std::int64_t>();
  if (value < INT32_MIN || value > INT32_MAX) bad_value(where, "an integer of ordinary size");
  return static_cast<int>(value);
}
template <>
std::uint64_t read_value<std::uint64_t>(const json& v, const std::string& where) {
  if (!v.is_number_unsigned()) bad_value(where, "a non-negative integer");
  return v.get<std::uint64_t>();
}
template <>
double read_value<double>(const json& v, const std::string& where) {
  if (!v.is_number()) bad_value(where, "a number");
  return v.get<double>();
}
template <>
bool read_value<bool>(const json& v, const std::string& where) {
  if (!v.is_boolean()) bad_value(where, "true or false");
  return v.get<bool>();
}
template <>
std::vector<std::string> read_value<std::vector<std::string>>(const json& v, const std::string& where) {
  if (!v.is_array()) bad_value(where, "an array of strings");
  std::vector<std::string> out;
  for (const json& item : v) out.push_back(read_value<std::string>(item, where + " (each entry)"));
  return out;
}
template <>
std::map<std::string, std::string> read_value<std::map<std::string, std::string>>(const json& v, const std::string& where) {
  if (!v.is_object()) bad_value(where, "an object of string values");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : v.items()) out[key] = read_value<std::string>(value, where + "." + key);
  return out;
}

template <typename T>
json to_value(const T& v) {
  if constexpr (std::is_same_v<T, std::filesystem::path>)
    return v.string();
  else
    return v;
}

// One configuration key: how to read it from the file and how to show it.
struct Field {
  const char* key;
  std::function<void(ServiceConfig&, const json&, const std::string&)> read;
  std::function<void(const ServiceConfig&, nlohmann::ordered_json&)> show;
};

template <typename T>
Field field(const char* key, T ServiceConfig::*member) {
  return {key,
          [member, key](ServiceConfig& c, const json& v, const std::string& origin) {
            c.*member = read_value<T>(v, origin + ": \"" + key + "\"");
          },
          [member, key](const ServiceConfig& c, nlohmann::ordered_json& out) { out[key] = to_value(c.*member); }};
}

const std::vector<Field>& fields() {
  static const std::vector<Field> kFields = {
      field("host", &ServiceConfig::host),
      field("port", &ServiceConfig::port),
      field("repository", &ServiceConfig::repository),
      field("models", &ServiceConfig::models),
      field("default_model", &ServiceConfig::default_model),
      field("runtimes", &ServiceConfig::runtimes),
      field("precision", &ServiceConfig::precision),
      field("provider", &ServiceConfig::provider),
      field("threads", &ServiceConfig::threads),
      field("device_id", &ServiceConfig::device_id),
      field("provider_options", &ServiceConfig::provider_options),
      field("batching", &ServiceConfig::batching),
      field("max_batch_size", &ServiceConfig::max_batch_size),
      field("max_queue_delay_ms", &ServiceConfig::max_queue_delay_ms),
      field("max_queue_size", &ServiceConfig::max_queue_size),
      field("request_timeout_ms", &ServiceConfig::request_timeout_ms),
      field("max_body_bytes", &ServiceConfig::max_body_bytes),
      field("max_image_pixels", &ServiceConfig::max_image_pixels),
      field("http_threads", &ServiceConfig::http_threads),
      field("header_timeout_s", &ServiceConfig::header_timeout_s),
      field("keep_alive_timeout_s", &ServiceConfig::keep_alive_timeout_s),
      field("body_timeout_s", &ServiceConfig::body_timeout_s),
      field("max_header_bytes", &ServiceConfig::max_header_bytes),
      field("max_connections", &ServiceConfig::max_connections),
      field("http_io_threads", &ServiceConfig::http_io_threads),
      field("max_request_images", &ServiceConfig::max_request_images),
      field("grpc_port", &ServiceConfig::grpc_port),
      field("grpc_port_file", &ServiceConfig::grpc_port_file),
      field("warmup_runs", &ServiceConfig::warmup_runs),
      field("repository_poll_secs", &ServiceConfig::repository_poll_secs),
      field("admin_key", &ServiceConfig::admin_key),
      field("audit_log", &ServiceConfig::audit_log),
      field("audit_max_bytes", &ServiceConfig::audit_max_bytes),
      field("audit_fsync", &ServiceConfig::audit_fsync),
      field("audit_patient_ids", &ServiceConfig::audit_patient_ids),
      field("public_url", &ServiceConfig::public_url),
      field("cds_hook", &ServiceConfig::cds_hook),
      field("log_level", &ServiceConfig::log_level),
      field("port_file", &ServiceConfig::port_file),
      field("banner", &ServiceConfig::banner),
  };
  return kFields;
}

std::string read_secret_file(const std::filesystem::path& path) {
  const auto bytes = read_file_bytes(path, 4096);
  std::string key(bytes.begin(), bytes.end());
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
  if (key.empty()) throw Error(ErrorCode::kInvalidArgument, "admin key file " + path.string() + " is empty");
  return key;
}

void require(bool ok, const std::string& message) {
  if (!ok) throw Error(ErrorCode::kInvalidArgument, message);
}

}  // namespace

ServiceConfig read_config_file(const std::filesystem::path& path, ServiceConfig base) {
  const auto bytes = read_file_bytes(path, 1u << 20);
  const json document = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (document.is_discarded() || !document.is_object())
    throw Error(ErrorCode::kInvalidArgument, "config file " + path.string() + " is not a JSON object");
  const std::string origin = "config file " + path.string();
  for (const auto& [key, value] : document.items()) {
    const Field* match = nullptr;
    for (const Field& f : fields())
      if (key == f.key) match = &f;
    if (!match)
      throw Error(ErrorCode::kInvalidArgument, origin + ": unknown key \"" + key + "\" (known: " + join(fields(), ", ", &Field::key) + ")");
    match->read(base, value, origin);
  }
  return base;
}

void validate(const ServiceConfig& c) {
  require(c.port >= 0 && c.port <= 65535, "port must be between 0 and 65535");
  require(!c.repository.empty(), "repository must name a directory");
  require(!c.runtimes.empty(), "at least one runtime must be configured");
  require(c.threads >= 0 && c.threads <= 256, "threads must be between 0 (automatic) and 256");
  require(c.device_id >= 0, "device_id must be 0 or more");
  require(c.max_batch_size >= 1 && c.max_batch_size <= 256, "max_batch_size must be between 1 and 256");
  require(c.max_queue_delay_ms >= 0 && c.max_queue_delay_ms <= 10000, "max_queue_delay_ms must be between 0 and 10000");
  require(c.max_queue_size >= 1 && c.max_queue_size <= 100000, "max_queue_size must be between 1 and 100000");
  require(c.request_timeout_ms >= 1, "request_timeout_ms must be positive");
  require(c.max_body_bytes >= 1024, "max_body_bytes must be at least 1024");
  require(c.max_image_pixels >= 1, "max_image_pixels must be positive");
  require(c.http_threads >= 1 && c.http_threads <= 4096, "http_threads must be between 1 and 4096");
  require(c.header_timeout_s >= 1 && c.header_timeout_s <= 3600, "header_timeout_s must be between 1 and 3600");
  require(c.keep_alive_timeout_s >= 1 && c.keep_alive_timeout_s <= 3600, "keep_alive_timeout_s must be between 1 and 3600");
  require(c.body_timeout_s >= 1 && c.body_timeout_s <= 3600, "body_timeout_s must be between 1 and 3600");
  require(c.max_header_bytes >= 1024 && c.max_header_bytes <= (1u << 30), "max_header_bytes must be between 1024 and 2^30");
  require(c.max_connections >= 1 && c.max_connections <= 1000000, "max_connections must be between 1 and 1000000");
  require(c.http_io_threads >= 1 && c.http_io_threads <= 64, "http_io_threads must be between 1 and 64");
  require(c.max_request_images >= 1 && c.max_request_images <= 4096, "max_request_images must be between 1 and 4096");
  require(c.grpc_port >= -1 && c.grpc_port <= 65535, "grpc_port must be between -1 (off) and 65535");
  require(c.grpc_port < 0 || c.port == 0 || c.grpc_port == 0 || c.grpc_port != c.port, "grpc_port must differ from port");
  require(c.warmup_runs >= 0 && c.warmup_runs <= 100, "warmup_runs must be between 0 and 100");
  require(c.repository_poll_secs >= 0 && c.repository_poll_secs <= 86400, "repository_poll_secs must be between 0 (off) and 86400");
  require(c.audit_max_bytes >= 4096, "audit_max_bytes must be at least 4096");
  require(c.public_url.empty() || c.public_url.rfind("http://", 0) == 0 || c.public_url.rfind("https://", 0) == 0,
          "public_url must be an absolute http:// or https:// URL");
  // CDS Hooks 2.0: a custom hook has a reverse-domain name (it contains a dot); patient-view is standard.
  require(c.cds_hook == "patient-view" || c.cds_hook.find('.') != std::string::npos,
          "cds_hook must be patient-view or a reverse-domain name such as org.example.lesion-image-captured");
}

nlohmann::ordered_json describe(const ServiceConfig& config) {
  nlohmann::ordered_json out;
  for (const Field& f : fields()) f.show(config, out);
  out["admin_key"] = config.admin_key.empty() ? "(not set: repository API disabled)" : "(set)";
  out["allow_unverified_models"] = config.allow_unverified_models;
  return out;
}

ModelManagerOptions model_manager_options(const ServiceConfig& c) {
  ModelManagerOptions options;
  options.repository = c.repository;
  options.startup_models = c.models;
  options.runtimes = c.runtimes;
  options.precision = c.precision;
  options.execution.provider = c.provider;
  options.execution.threads = c.threads;
  options.execution.device_id = c.device_id;
  options.execution.provider_options = c.provider_options;
  options.limits.max_pixels = c.max_image_pixels;
  options.batching.max_batch_size = c.batching ? c.max_batch_size : 1;
  options.batching.max_queue_delay =
      c.batching ? std::chrono::microseconds(static_cast<std::int64_t>(c.max_queue_delay_ms * 1000)) : std::chrono::microseconds(0);
  options.batching.max_queue_size = c.max_queue_size;
  options.warmup_runs = c.warmup_runs;
  options.serving.allow_unverified = c.allow_unverified_models;
  return options;
}

ParseOutcome parse_command_line(int argc, char** argv, ServiceConfig& config, int& exit_code) {
  CLI::App app{
      "pms-derm-cds: the derm-cds classification service. Serves the models of a model repository over HTTP: "
      "POST /v1/classify, the Open Inference Protocol (/v2), repository administration, /metrics and a web page "
      "at /. Configuration: defaults < --config FILE < environment (DERMCDS_ADMIN_KEY) < flags."};
  app.set_version_flag("--version", "pms-derm-cds " DERMCDS_VERSION);

  // Flags are parsed into their own copy, and only those given override the file.
  ServiceConfig flags;
  std::vector<std::pair<CLI::Option*, std::function<void(ServiceConfig&)>>> overrides;
  auto option = [&](const std::string& name, auto ServiceConfig::*member, const std::string& help) {
    CLI::Option* opt = app.add_option(name, flags.*member, help)->capture_default_str();
    overrides.emplace_back(opt, [member, &flags](ServiceConfig& to) { to.*member = flags.*member; });
    return opt;
  };

  std::filesystem::path config_file, admin_key_file;
  std::vector<std::string> provider_options;
  bool no_batching = false, no_banner = false, print_config = false, allow_unverified_models = false;
  app.add_option("-c,--config", config_file, "JSON configuration file (keys: docs/service.md)")->check(CLI::ExistingFile);
  option("--host", &ServiceConfig::host, "Address to listen on");
  option("-p,--port", &ServiceConfig::port, "Port to listen on (0: any free port)");
  option("-r,--repository", &ServiceConfig::repository, "Model repository directory");
  option("--model", &ServiceConfig::models, "Model to load at start-up (repeatable; default: every model)")->delimiter(',');
  option("--default-model", &ServiceConfig::default_model, "Model for requests that name none");
  option("--runtime", &ServiceConfig::runtimes, "Runtime instance per loaded version: auto, onnxruntime, tflite (repeatable)")
      ->delimiter(',');
  option("--precision", &ServiceConfig::precision, "Artifact precision: auto, fp32, fp16, int8");
  option("--provider", &ServiceConfig::provider, "Execution provider (onnxruntime: auto, cpu, cuda, tensorrt)");
  option("--threads", &ServiceConfig::threads, "Inference threads per model instance (0: the runtime's choice)");
  option("--device", &ServiceConfig::device_id, "GPU device id for the cuda and tensorrt providers");
  app.add_option("--provider-option", provider_options, "Provider option KEY=VALUE (repeatable)");
  option("--max-batch-size", &ServiceConfig::max_batch_size, "Most images per inference");
  option("--max-queue-delay-ms", &ServiceConfig::max_queue_delay_ms, "Longest a request waits for others to fill its batch");
  option("--max-queue-size", &ServiceConfig::max_queue_size, "Requests that may wait per model before 503");
  app.add_flag("--no-batching", no_batching, "One image per inference (same as --max-batch-size 1)");
  option("--request-timeout-ms", &ServiceConfig::request_timeout_ms, "Time limit for a request's queueing and inference");
  option("--max-body-bytes", &ServiceConfig::max_body_bytes, "Largest request body accepted (larger: 413)");
  option("--max-image-pixels", &ServiceConfig::max_image_pixels, "Largest decoded image accepted, in pixels");
  option("--http-threads", &ServiceConfig::http_threads, "HTTP worker threads (requests handled at the same time)");
  option("--header-timeout", &ServiceConfig::header_timeout_s, "Seconds from a request's first byte to the end of its header");
  option("--keep-alive-timeout", &ServiceConfig::keep_alive_timeout_s, "Seconds a connection may idle between requests");
  option("--body-timeout", &ServiceConfig::body_timeout_s, "Seconds to receive a request body (and to send a response)");
  option("--max-header-bytes", &ServiceConfig::max_header_bytes, "Largest request line + header fields (larger: 431)");
  option("--max-connections", &ServiceConfig::max_connections, "Connections open at once (more: 503 and closed)");
  option("--http-io-threads", &ServiceConfig::http_io_threads, "Threads reading and writing sockets");
  option("--max-request-images", &ServiceConfig::max_request_images,
         "Most images one Open Inference Protocol request may carry (larger: 400)");
  option("--grpc-port", &ServiceConfig::grpc_port, "Open Inference Protocol gRPC port (-1: off, 0: any free port)");
  option("--grpc-port-file", &ServiceConfig::grpc_port_file, "Write the listening gRPC port to this file");
  option("--warmup-runs", &ServiceConfig::warmup_runs, "Warm-up rounds per loaded model before it is ready");
  option("--repository-poll-secs", &ServiceConfig::repository_poll_secs,
         "Rescan the repository every N seconds and follow its versions and ACTIVE markers (0: off)");
  app.add_option("--admin-key-file", admin_key_file, "File holding the API key of the repository endpoints")->check(CLI::ExistingFile);
  option("--audit-log", &ServiceConfig::audit_log, "Append a hash-chained audit line per request to this file (docs/audit.md)");
  option("--public-url", &ServiceConfig::public_url, "Absolute base URL of this service, for CDS Hooks card links");
  option("--log-level", &ServiceConfig::log_level, "trace, debug, info, warn, error, critical or off");
  option("--port-file", &ServiceConfig::port_file, "Write the listening port to this file once listening");
  app.add_flag("--no-banner", no_banner, "Do not print usage examples once ready");
  app.add_flag("--allow-unverified-models", allow_unverified_models,
               "DEVELOPMENT ONLY: serve versions whose parity evidence does not cover their artifacts (rejected ones never "
               "serve). Logged at start; every answer carries the header X-Dermcds-Unverified-Models: allowed");
  app.add_flag("--print-config", print_config, "Print the effective configuration as JSON and exit");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version arrive here too, as "successes" (0); every real parse error is 2.
    exit_code = app.exit(e) == 0 ? 0 : 2;
    return ParseOutcome::kExit;
  }

  config = config_file.empty() ? ServiceConfig{} : read_config_file(config_file);
  if (const char* key = std::getenv("DERMCDS_ADMIN_KEY"); key && *key) config.admin_key = key;
  for (const auto& [opt, apply] : overrides)
    if (opt->count() > 0) apply(config);
  for (const std::string& kv : provider_options) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw Error(ErrorCode::kInvalidArgument, "--provider-option '" + kv + "' is not KEY=VALUE");
    config.provider_options[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (no_batching) config.batching = false;
  if (no_banner) config.banner = false;
  config.allow_unverified_models = allow_unverified_models;  // the flag alone decides, never a file
  if (!admin_key_file.empty()) config.admin_key = read_secret_file(admin_key_file);
  validate(config);

  if (print_config) {
    std::cout << describe(config).dump(2) << std::endl;
    exit_code = 0;
    return ParseOutcome::kExit;
  }
  return ParseOutcome::kRun;
}

}  // namespace dermcds::service
