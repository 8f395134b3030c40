// The service's endpoints, one file per group. Each add_*_routes registers its handlers on the
// server; handlers share the state in ServiceContext, which outlives the server.
#pragma once

#include <atomic>
#include <future>

#include "config.hpp"
#include "dermcds/clinical/audit_log.hpp"
#include "http_server.hpp"
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
InferredTensor infer_in_batch(const LoadedVersion& version, const ServedInstance& instance, Tensor images,
                              const ServiceContext& context, Deadline deadline);

Deadline request_deadline(const ServiceConfig& config);

}  // namespace dermcds::service
