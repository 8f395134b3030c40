#include "service_metrics.hpp"

namespace dermcds::service {

namespace {
// Seconds, from sub-millisecond preprocessing of small images to a B4 batch under load.
const std::vector<double> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0};
const std::vector<double> kBatchBuckets = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64};
}  // namespace

ServiceMetrics::ServiceMetrics()
    : http_requests(registry.counter("dermcds_http_requests_total", "HTTP requests answered, by endpoint and status",
                                     {"endpoint", "method", "status"})),
      http_duration(registry.histogram("dermcds_http_request_duration_seconds",
                                       "Time from a request's arrival at its handler to its response", {"endpoint"}, kLatencyBuckets)),
      stage_duration(
          registry.histogram("dermcds_stage_duration_seconds",
                             "Time per stage: decode, preprocess and queue per request; inference per batch; postprocess per image",
                             {"model", "version", "stage"}, kLatencyBuckets)),
      batch_size(registry.histogram("dermcds_batch_size", "Images per inference run", {"model", "version", "runtime"}, kBatchBuckets)),
      images(registry.counter("dermcds_images_total", "Images inferred, by the runtime and provider that ran them",
                              {"model", "version", "runtime", "provider"})),
      queue_rejections(registry.counter("dermcds_queue_rejections_total", "Requests refused with 503 because the model's queue was full",
                                        {"model", "version"})),
      fallback_events(
          registry.counter("dermcds_cpu_fallback_events_total",
                           "Model loads on which a requested or preferred execution provider was unavailable and another (the CPU) ran",
                           {"model", "version", "runtime", "requested"})),
      model_loads(registry.counter("dermcds_model_loads_total", "Model version loads, by result", {"model", "version", "result"})),
      protocol_requests(registry.counter("dermcds_inference_requests_total",
                                         "Open Inference Protocol inference requests, by transport and outcome",
                                         {"model", "protocol", "result"})),
      protocol_duration(registry.histogram("dermcds_inference_request_duration_seconds",
                                           "Open Inference Protocol inference requests, end to end in the server", {"protocol"},
                                           kLatencyBuckets)),
      queue_depth(registry.gauge("dermcds_queue_depth", "Requests waiting for a batch", {"model", "version", "runtime"})),
      active_version(registry.gauge("dermcds_model_active_version", "Version number that serves requests naming no version", {"model"})),
      model_ready(registry.gauge("dermcds_model_ready", "1 when the version is loaded and warmed up", {"model", "version"})),
      model_info(registry.gauge("dermcds_model_info", "Loaded model instances and what runs them (always 1)",
                                {"model", "version", "runtime", "runtime_version", "provider", "precision"})) {}

}  // namespace dermcds::service

namespace dermcds::service {

ModelEvents model_events(ServiceMetrics& metrics) {
  ModelEvents events;
  events.load_finished = [&metrics](const std::string& model, const std::string& version, bool success) {
    metrics.model_loads.increment({model, version, success ? "success" : "failure"});
  };
  events.instance_ready = [&metrics](const std::string& model, const std::string& version,
                                     const BackendInfo& info) -> DynamicBatcher::Listener {
    for (const std::string& fallback : info.fallbacks)
      metrics.fallback_events.increment({model, version, info.runtime, fallback.substr(0, fallback.find(':'))});
    return [&metrics, model, version, runtime = info.runtime, provider = info.provider](const BatchReport& r) {
      metrics.batch_size.observe({model, version, runtime}, r.images);
      metrics.stage_duration.observe({model, version, "inference"}, r.inference_ms / 1e3);
      for (double queue_ms : r.queue_ms) metrics.stage_duration.observe({model, version, "queue"}, queue_ms / 1e3);
      metrics.images.increment({model, version, runtime, provider}, r.images);
    };
  };
  return events;
}

}  // namespace dermcds::service
