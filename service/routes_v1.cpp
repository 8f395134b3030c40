// The service's own API: POST /v1/classify and GET /v1/models (docs/service.md).
#include <cmath>

#include "audit_events.hpp"
#include "dermcds/error.hpp"
#include "dermcds/manifest.hpp"
#include "dermcds/result.hpp"
#include "fhir_response.hpp"
#include "image_upload.hpp"
#include "logging.hpp"
#include "routes.hpp"

namespace dermcds::service {

namespace {

using ordered_json = nlohmann::ordered_json;

double rounded_ms(double ms) { return std::round(ms * 1e3) / 1e3; }

HttpResponse classify_image(const HttpRequest& request, ServiceContext& context) {
  // The FHIR answer's subject is checked before any inference is spent on the request.
  const std::string subject = wants_fhir(request) ? fhir_subject(request) : std::string();
  MediaTypeRefusal refusal;
  const std::optional<ImageUpload> upload = read_image_upload(request, refusal);
  if (!upload) {
    audit(context, request, "classify", {{"status", 415}, {"error_code", "unsupported_media_type"}});
    return HttpResponse::detailed_error(415, refusal.message, "unsupported_media_type", request.request_id);
  }
  const std::string model = upload->model.empty() ? context.config.default_model : upload->model;
  const std::shared_ptr<const LoadedVersion> version = context.models.serving(model, upload->version);
  const ServedInstance& instance = version->instance(upload->runtime);
  require_queue_space(*version, instance, context.metrics);

  const Deadline deadline = request_deadline(context.config);
  PreparedImage prepared =
      instance.classifier->prepare(std::span(reinterpret_cast<const std::uint8_t*>(upload->bytes.data()), upload->bytes.size()));
  const ClassifiedImage answer = classify_in_batch(*version, instance, std::move(prepared), context, deadline);

  const ClassificationResult& result = answer.result;
  Histogram& stages = context.metrics.stage_duration;
  stages.observe({version->name(), version->version(), "decode"}, result.timings.decode_ms / 1e3);
  stages.observe({version->name(), version->version(), "preprocess"}, result.timings.preprocess_ms / 1e3);
  stages.observe({version->name(), version->version(), "postprocess"}, result.timings.postprocess_ms / 1e3);

  ordered_json body = {{"request_id", request.request_id}};
  ordered_json document = to_json(result);
  for (auto& [key, value] : document.items()) body[key] = std::move(value);
  body["timings_ms"]["queue"] = rounded_ms(answer.queue_ms);

  const auto image = std::span(reinterpret_cast<const std::uint8_t*>(upload->bytes.data()), upload->bytes.size());
  HttpResponse response =
      subject.empty() ? HttpResponse::json(body) : fhir_classification_response(result, version->manifest(), subject, image);
  nlohmann::ordered_json audited = {{"status", response.status},
                                    {"format", subject.empty() ? "json" : "fhir"},
                                    {"model", audit_model(result, version->manifest())},
                                    {"image_sha256", sha256_text(upload->bytes)},
                                    {"triage_tier", result.triage.tier},
                                    {"result_sha256", sha256_text(response.body)}};
  if (context.config.audit_patient_ids && !subject.empty()) audited["subject"] = subject;
  audit(context, request, "classify", std::move(audited));  // before the answer leaves
  response.log_fields = {{"model", result.model_name},
                         {"version", result.model_version},
                         {"runtime", result.runtime},
                         {"batch_size", result.batch_size},
                         {"queue_ms", rounded_ms(answer.queue_ms)}};
  return response;
}

HttpResponse classify(const HttpRequest& request, ServiceContext& context) {
  try {
    return classify_image(request, context);
  } catch (const Error& e) {
    // A refused or failed classification is audited too. If that line cannot be written either,
    // the request still fails with its own error: no result leaves unaudited either way.
    try {
      audit_failure(context, request, "classify", e);
    } catch (const Error& audit_error) {
      log_event(spdlog::level::err, "audit_failed", {{"request_id", request.request_id}, {"error", audit_error.what()}});
    }
    throw;
  }
}

ordered_json instance_json(const ServedInstance& instance) {
  const BackendInfo& info = instance.classifier->backend_info();
  return {{"runtime", info.runtime},
          {"runtime_version", info.runtime_version},
          {"execution_provider", info.provider},
          {"precision", info.precision},
          {"input_layout", to_string(instance.classifier->input_layout())},
          {"fallbacks", info.fallbacks},
          {"queue_depth", instance.batcher->queue_depth()}};
}

ordered_json version_json(const ModelRepository& repository, const ModelStatus& model, const VersionStatus& v) {
  ordered_json out = {{"version", v.version}, {"state", v.state}, {"active", v.active}};
  try {
    // Loaded versions describe themselves; others are read from their manifest.
    const Manifest manifest = v.loaded ? v.loaded->manifest() : read_manifest(repository.package_dir(model.name, v.version));
    out["architecture"] = manifest.architecture;
    out["input_size"] = manifest.input.crop_size;
    ordered_json labels = ordered_json::array();
    for (const Label& label : manifest.labels) labels.push_back(label.code);
    out["labels"] = std::move(labels);
    out["usable_runtimes"] = usable_runtimes(manifest);
  } catch (const Error& e) {
    out["manifest_error"] = std::string(to_string(e.code()));
  }
  ordered_json instances = ordered_json::array();
  if (v.loaded)
    for (const auto& instance : v.loaded->instances()) instances.push_back(instance_json(*instance));
  out["loaded_runtimes"] = std::move(instances);
  if (!v.reason.empty() && v.state != "READY") out["reason"] = v.reason;
  return out;
}

HttpResponse list_models(ServiceContext& context) {
  ordered_json models = ordered_json::array();
  for (const ModelStatus& model : context.models.status()) {
    ordered_json versions = ordered_json::array();
    for (const VersionStatus& v : model.versions) versions.push_back(version_json(context.models.repository(), model, v));
    models.push_back({{"name", model.name},
                      {"active_version", model.active_version.empty() ? ordered_json(nullptr) : ordered_json(model.active_version)},
                      {"ready", model.ready},
                      {"default", model.name == context.config.default_model},
                      {"versions", std::move(versions)}});
  }
  return HttpResponse::json({{"default_model", context.config.default_model}, {"models", std::move(models)}});
}

}  // namespace

void add_v1_routes(HttpServer& server, ServiceContext& context) {
  server.post("/v1/classify", [&context](const HttpRequest& request) { return classify(request, context); });
  server.get("/v1/models", [&context](const HttpRequest&) { return list_models(context); });
}

}  // namespace dermcds::service
