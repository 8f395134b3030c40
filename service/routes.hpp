// The service's endpoints, one file per group. Each add_*_routes registers its handlers on the
// server; handlers share the state in ServiceContext, which outlives the server.
#pragma once

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <string_view>

#include "config.hpp"
#include "dermcds/clinical/audit_log.hpp"
#include "http_server.hpp"
#include "inference_protocol.hpp"
#include "model_manager.hpp"
#include "service_metrics.hpp"

namespace dermcds::service {

struct ServiceContext {
  const ServiceConfig& config;
  ModelManager& models;
  ServiceMetrics& metrics;
  const std::atomic<bool>& shutting_down;
  clinical::AuditLog* audit = nullptr;  // the audit trail (audit_events.hpp); null when none is configured

  // The server is ready for traffic: not shutting down, every model it serves loaded and warm.
  bool ready() const { return !shutting_down.load() && models.ready(); }
};

void add_v1_routes(HttpServer& server, ServiceContext& context);          // routes_v1.cpp
void add_v2_routes(HttpServer& server, ServiceContext& context);          // routes_v2.cpp (Open Inference Protocol)
void add_repository_routes(HttpServer& server, ServiceContext& context);  // routes_repository.cpp (admin)
void add_site_routes(HttpServer& server, ServiceContext& context);        // routes_site.cpp (page, OpenAPI, metrics)
void add_cds_hooks_routes(HttpServer& server, ServiceContext& context);   // routes_cds_hooks.cpp (CDS Hooks 2.0)

// Shared by the inference endpoints (routes_inference.cpp).

// Refuses at once (kResourceExhausted, counted) when the instance's queue is full, before the
// request spends time on decoding.
void require_queue_space(const LoadedVersion& version, const ServedInstance& instance, ServiceMetrics& metrics);

// Submits to the instance's batcher and waits for the answer until the request's deadline;
// counts queue rejections; kDeadlineExceeded when the deadline passes first.
ClassifiedImage classify_in_batch(const LoadedVersion& version, const ServedInstance& instance, PreparedImage image,
                                  const ServiceContext& context, Deadline deadline);
InferredTensor infer_in_batch(const LoadedVersion& version, const ServedInstance& instance, Tensor images, const ServiceContext& context,
                              Deadline deadline);

Deadline request_deadline(const ServiceConfig& config);

// The Open Inference Protocol's model metadata of a served version (routes_v2.cpp), for every
// transport. Throws kNotFound when nothing by that name and version serves.
nlohmann::ordered_json served_model_metadata(const ServiceContext& context, const std::string& model, const std::string& version);

// One Open Inference Protocol inference, whatever the transport (REST JSON, REST binary, gRPC):
// finds the version, has `read` parse the request against the signature of the instance
// `runtime` names, refuses at once when its queue is full, runs it in the batch queue until
// `deadline`, and counts it in the metrics under `protocol`. Errors are dermcds::Error, for the
// transport to translate.
struct ProtocolAnswer {
  std::shared_ptr<const LoadedVersion> version;
  std::string runtime;  // the instance's runtime
  ModelSignature signature;
  InferRequest request;
  InferredTensor answer;
};
using ProtocolReader = std::function<InferRequest(const ModelSignature&, const TensorLimits&)>;
ProtocolAnswer run_protocol_inference(const ServiceContext& context, std::string_view protocol, const std::string& model,
                                      const std::string& version, const std::string& runtime, const ProtocolReader& read,
                                      Deadline deadline);

}  // namespace dermcds::service
