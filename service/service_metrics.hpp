// The metrics pms-derm-cds exports at GET /metrics (names and meaning: docs/service.md).
#pragma once

#include "metrics.hpp"
#include "model_manager.hpp"

namespace dermcds::service {

struct ServiceMetrics {
  ServiceMetrics();

  MetricsRegistry registry;
  // Per HTTP request.
  Counter& http_requests;    // {endpoint, method, status}
  Histogram& http_duration;  // {endpoint}, seconds
  // Per classified image or tensor request, by stage; "inference" is observed once per batch.
  Histogram& stage_duration;  // {model, version, stage}, seconds
  Histogram& batch_size;      // {model, version, runtime}, images per inference
  Counter& images;            // {model, version, runtime, provider}
  Counter& queue_rejections;  // {model, version}: answered 503 because the queue was full
  Counter& fallback_events;   // {model, version, runtime, requested}: a provider fell back to another
  Counter& model_loads;       // {model, version, result}
  // Open Inference Protocol inference requests by transport: "rest_json", "rest_binary" (the
  // binary tensor extension) or "grpc", and outcome ("ok" or the error code's name).
  Counter& protocol_requests;    // {model, protocol, result}
  Histogram& protocol_duration;  // {protocol}, seconds: parse + queue + inference + encode
  // Mirrors of current state, refreshed at each scrape.
  Gauge& queue_depth;     // {model, version, runtime}
  Gauge& active_version;  // {model}: the version number serving unversioned requests
  Gauge& model_ready;     // {model, version}
  Gauge& model_info;      // {model, version, runtime, runtime_version, provider, precision} = 1
};

// How ModelManager's loads, fallbacks and batches reach these metrics (the manager knows none).
ModelEvents model_events(ServiceMetrics& metrics);

}  // namespace dermcds::service
