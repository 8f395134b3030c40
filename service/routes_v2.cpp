// The Open Inference Protocol (KServe v2) REST endpoints: health, server and model metadata,
// readiness and inference with JSON tensors or the binary tensor extension. Field names and the
// error shape {"error": "..."} are the protocol's; health answers by status code (200 true,
// empty body; false is 400, and an unknown model 404, each with an error object, as every
// 4xx/5xx of this API carries one).
#include "dermcds/error.hpp"
#include "inference_protocol.hpp"
#include "routes.hpp"

namespace dermcds::service {

namespace {

HttpResponse health(bool value, const char* what) { return value ? HttpResponse::status_only(200) : HttpResponse::error(400, what); }

HttpResponse model_ready(ServiceContext& context, const HttpRequest& request, const std::string& version) {
  const std::string& name = request.param("name");
  const std::optional<bool> ready = context.models.model_ready(name, version);
  if (!ready) return HttpResponse::error(404, "unknown model \"" + name + "\"" + (version.empty() ? "" : " version " + version));
  return health(*ready && !context.shutting_down.load(), "the model is not ready (loading, unloaded or failed)");
}

HttpResponse metadata(ServiceContext& context, const HttpRequest& request, const std::string& version) {
  return HttpResponse::json(served_model_metadata(context, request.param("name"), version));
}

HttpResponse infer(ServiceContext& context, const HttpRequest& request, const std::string& version) {
  // The binary tensor extension: the JSON header is followed by raw tensors; its length is here.
  const std::optional<std::string> header_length = request.header("inference-header-content-length");
  const RequestBody body = split_request_body(request.body, header_length);
  const ProtocolAnswer answer = run_protocol_inference(
      context, header_length ? "rest_binary" : "rest_json", request.param("name"), version, requested_runtime(body.document),
      [&](const ModelSignature& signature, const TensorLimits& limits) {
        return read_infer_request(body.document, body.binary, signature, limits);
      },
      request_deadline(context.config));
  const LoadedVersion& loaded = *answer.version;
  ResponseBody encoded = infer_response_body(loaded.name(), loaded.version(), answer.request, answer.answer.logits, answer.signature,
                                             &answer.answer.ood_score);
  HttpResponse response =
      HttpResponse::text(std::move(encoded.body), encoded.header_length ? "application/octet-stream" : "application/json");
  if (encoded.header_length) response.headers.emplace_back("Inference-Header-Content-Length", std::to_string(*encoded.header_length));
  response.log_fields = {{"model", loaded.name()},
                         {"version", loaded.version()},
                         {"runtime", answer.runtime},
                         {"images", answer.answer.logits.shape.at(0)},
                         {"batch_size", answer.answer.batch_images}};
  return response;
}

}  // namespace

nlohmann::ordered_json served_model_metadata(const ServiceContext& context, const std::string& name, const std::string& version) {
  const auto loaded = context.models.serving(name, version);
  std::vector<std::string> versions;
  for (const auto& v : context.models.loaded_versions())
    if (v->name() == name) versions.push_back(v->version());
  const ServedInstance& instance = loaded->instance("");
  const ModelSignature signature = signature_of(loaded->manifest(), instance.classifier->input_layout());
  return model_metadata(name, versions, instance.classifier->backend_info().runtime, signature);
}

void add_v2_routes(HttpServer& server, ServiceContext& context) {
  constexpr ErrorBody kProtocol = ErrorBody::kProtocol;
  server.get(
      "/v2/health/live", [](const HttpRequest&) { return health(true, ""); }, kProtocol);
  server.get(
      "/v2/health/ready",
      [&context](const HttpRequest&) {
        return health(context.ready(), "the server is not ready (models loading, failed, or shutting down)");
      },
      kProtocol);
  const auto server_metadata = [](const HttpRequest&) {
    return HttpResponse::json({{"name", "pms-derm-cds"},
                               {"version", DERMCDS_VERSION},
                               {"extensions", {"model_repository", "classification", "binary_tensor_data"}}});
  };
  // The specification's path is /v2/; clients also call /v2.
  server.get("/v2", server_metadata, kProtocol);
  server.get("/v2/", server_metadata, kProtocol);

  server.get(
      "/v2/models/{name}", [&context](const HttpRequest& r) { return metadata(context, r, ""); }, kProtocol);
  server.get(
      "/v2/models/{name}/versions/{version}", [&context](const HttpRequest& r) { return metadata(context, r, r.param("version")); },
      kProtocol);
  server.get(
      "/v2/models/{name}/ready", [&context](const HttpRequest& r) { return model_ready(context, r, ""); }, kProtocol);
  server.get(
      "/v2/models/{name}/versions/{version}/ready",
      [&context](const HttpRequest& r) { return model_ready(context, r, r.param("version")); }, kProtocol);
  server.post(
      "/v2/models/{name}/infer", [&context](const HttpRequest& r) { return infer(context, r, ""); }, kProtocol);
  server.post(
      "/v2/models/{name}/versions/{version}/infer", [&context](const HttpRequest& r) { return infer(context, r, r.param("version")); },
      kProtocol);
}

}  // namespace dermcds::service
