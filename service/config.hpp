// Configuration of pms-derm-cds: defaults that serve `make models`' repository out of the box,
// overridden by a JSON file (--config), then by the environment (DERMCDS_ADMIN_KEY), then by
// flags. docs/service.md lists every key.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model_manager.hpp"

namespace dermcds::service {

struct ServiceConfig {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port
  std::filesystem::path repository = "models";
  std::vector<std::string> models;               // loaded at start-up; empty: all in the repository
  std::string default_model = "derm-effnet-b4";  // for requests that name none
  std::vector<std::string> runtimes{"auto"};
  std::string precision = "auto";
  std::string provider = "auto";
  int threads = 0;    // inference threads per model; 0: the runtime's choice
  int device_id = 0;  // GPU for the cuda and tensorrt providers
  std::map<std::string, std::string> provider_options;

  bool batching = true;
  int max_batch_size = 8;
  double max_queue_delay_ms = 5;
  int max_queue_size = 64;

  int request_timeout_ms = 30000;
  std::uint64_t max_body_bytes = 20u << 20;
  std::uint64_t max_image_pixels = 64ull * 1000 * 1000;
  int http_threads = 64;
  // The HTTP layer's defences (docs/service.md, "HTTP layer").
  int header_timeout_s = 10;                   // first byte of a request to the end of its header
  int keep_alive_timeout_s = 5;                // idle time between requests on one connection
  int body_timeout_s = 30;                     // to receive a body once its header is in; also each write
  std::uint64_t max_header_bytes = 16u << 10;  // request line + header fields (larger: 431)
  int max_connections = 1024;                  // open at once; more are answered 503 and closed
  int http_io_threads = 2;                     // threads reading and writing sockets
  // Open Inference Protocol tensors: most images one request may carry, checked (with the
  // element count, overflow-checked) before anything is allocated for its data.
  int max_request_images = 64;
  int grpc_port = -1;                    // the gRPC endpoint (service/grpc/); -1: off, 0: any free port
  std::filesystem::path grpc_port_file;  // when set, the bound gRPC port is written there
  int warmup_runs = 1;
  // Rescan the repository every N seconds and follow it (new versions, a changed ACTIVE), as one
  // replica of several that share it (docs/deploy.md); 0: only at start-up and on admin calls.
  int repository_poll_secs = 0;

  std::string admin_key;  // empty: the repository API answers 403

  // Clinical interoperability (docs/fhir-cds-hooks.md, docs/audit.md).
  std::filesystem::path audit_log;                                  // empty: no audit trail
  std::uint64_t audit_max_bytes = 64ull << 20;                      // rotate the audit log before it passes this size
  bool audit_fsync = true;                                          // fdatasync each audit line before answering
  bool audit_patient_ids = false;                                   // record FHIR subjects / CDS patient ids in the audit log
  std::string public_url;                                           // absolute base URL of this service, for CDS Hooks card links
  std::string cds_hook = "org.pms-derm-cds.lesion-image-captured";  // the CDS service's (custom) hook
  std::string log_level = "info";
  std::filesystem::path port_file;  // when set, the bound port is written there once listening
  bool banner = true;               // print how to call the service once it is ready
  // Development override of the serving rule (docs/service.md, "Development override"): serve
  // versions without covering parity evidence. A command-line flag only, never read from a
  // config file, so that it is always explicit; logged at every start, stamped on every answer.
  bool allow_unverified_models = false;
};

// The header every answer carries while the development override is on.
inline constexpr std::string_view kUnverifiedHeader = "X-Dermcds-Unverified-Models";

// Reads a JSON object of the keys above. Unknown keys and values of the wrong type are
// kInvalidArgument naming the file and key; a missing file is kNotFound.
ServiceConfig read_config_file(const std::filesystem::path& path, ServiceConfig base = {});

// Ranges and combinations; throws kInvalidArgument naming the setting.
void validate(const ServiceConfig& config);

// The effective configuration, for the start-up log (the admin key shows only whether it is set).
nlohmann::ordered_json describe(const ServiceConfig& config);

ModelManagerOptions model_manager_options(const ServiceConfig& config);

enum class ParseOutcome { kRun, kExit };

// Parses argv into `config` (file, environment and flags applied in that order). kExit means
// --help, --version or --print-config was answered (exit_code 0), or the flags were wrong and
// the error printed (exit_code 2). A configuration that parses but is wrong (a bad file, an out
// of range value) throws kInvalidArgument naming the setting.
ParseOutcome parse_command_line(int argc, char** argv, ServiceConfig& config, int& exit_code);

}  // namespace dermcds::service
