// The Open Inference Protocol (KServe v2) REST endpoints: health, server and model metadata,
// readiness and inference with JSON tensors. Field names and the error shape {"error": "..."}
// are the protocol's; health answers by status code alone (200 true, 4xx false, empty body).
#include "dermcds/error.hpp"
#include "inference_protocol.hpp"
#include "routes.hpp"

namespace dermcds::service {

namespace {

HttpResponse health(bool value) { return HttpResponse::status_only(value ? 200 : 400); }

HttpResponse model_ready(ServiceContext& context, const HttpRequest& request, const std::string& version) {
  const std::optional<bool> ready = context.models.model_ready(request.param("name"), version);
  if (!ready) return HttpResponse::status_only(404);
  return health(*ready && !context.shutting_down.load());
}

HttpResponse metadata(ServiceContext& context, const HttpRequest& request, const std::string& version) {
  const std::string& name = request.param("name");
  const auto loaded = context.models.serving(name, version);
  std::vector<std::string> versions;
  for (const auto& v : context.models.loaded_versions())
    if (v->name() == name) versions.push_back(v->version());
  const ServedInstance& instance = loaded->instance("");
  const ModelSignature signature = signature_of(loaded->manifest(), instance.classifier->input_layout());
  return HttpResponse::json(model_metadata(name, versions, instance.classifier->backend_info().runtime, signature));
}

HttpResponse infer(ServiceContext& context, const HttpRequest& request, const std::string& version) {
  const auto loaded = context.models.serving(request.param("name"), version);
  const nlohmann::json document = parse_request_document(request.body);
  // The runtime decides the instance, and the instance the input layout the tensor must have.
  const ServedInstance& instance = loaded->instance(requested_runtime(document));
  const ModelSignature signature = signature_of(loaded->manifest(), instance.classifier->input_layout());
  InferRequest parsed = read_infer_request(document, signature);
  require_queue_space(*loaded, instance, context.metrics);
  const Deadline deadline = request_deadline(context.config);
  const InferredTensor answer = infer_in_batch(*loaded, instance, std::move(parsed.input), context, deadline);
  HttpResponse response = HttpResponse::json(infer_response(loaded->name(), loaded->version(), parsed, answer.logits, signature, &answer.ood_score));
  response.log_fields = {{"model", loaded->name()},
                         {"version", loaded->version()},
                         {"runtime", instance.classifier->backend_info().runtime},
                         {"images", answer.logits.shape.at(0)},
                         {"batch_size", answer.batch_images}};
  return response;
}

}  // namespace

void add_v2_routes(HttpServer& server, ServiceContext& context) {
  constexpr ErrorBody kProtocol = ErrorBody::kProtocol;
  server.get("/v2/health/live", [](const HttpRequest&) { return health(true); }, kProtocol);
  server.get("/v2/health/ready", [&context](const HttpRequest&) { return health(context.ready()); }, kProtocol);
  server.get("/v2", [](const HttpRequest&) {
    return HttpResponse::json({{"name", "pms-derm-cds"}, {"version", DERMCDS_VERSION}, {"extensions", {"model_repository", "classification"}}});
  }, kProtocol);

  server.get("/v2/models/{name}", [&context](const HttpRequest& r) { return metadata(context, r, ""); }, kProtocol);
  server.get("/v2/models/{name}/versions/{version}",
             [&context](const HttpRequest& r) { return metadata(context, r, r.param("version")); }, kProtocol);
  server.get("/v2/models/{name}/ready", [&context](const HttpRequest& r) { return model_ready(context, r, ""); }, kProtocol);
  server.get("/v2/models/{name}/versions/{version}/ready",
             [&context](const HttpRequest& r) { return model_ready(context, r, r.param("version")); }, kProtocol);
  server.post("/v2/models/{name}/infer", [&context](const HttpRequest& r) { return infer(context, r, ""); }, kProtocol);
  server.post("/v2/models/{name}/versions/{version}/infer",
              [&context](const HttpRequest& r) { return infer(context, r, r.param("version")); }, kProtocol);
}

}  // namespace dermcds::service
