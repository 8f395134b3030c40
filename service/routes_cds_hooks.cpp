// CDS Hooks 2.0 (docs/fhir-cds-hooks.md): GET /cds-services (discovery),
// POST /cds-services/derm-lesion-triage (the hook call) and .../feedback. Errors use the same
// {"error", "code", "request_id"} bodies as /v1; missing prefetch data is 412, as the spec says.
#include "audit_events.hpp"
#include "cds_hooks.hpp"
#include "dermcds/clinical/audit_log.hpp"
#include "dermcds/error.hpp"
#include "logging.hpp"
#include "routes.hpp"

namespace dermcds::service {

namespace {

using ordered_json = nlohmann::ordered_json;

// The clinician page, absolute: public_url when configured, else the Host the EHR called.
std::string page_url(const HttpRequest& request, const ServiceConfig& config) {
  std::string base = config.public_url;
  if (base.empty()) base = "http://" + request.header("host").value_or(config.host + ":" + std::to_string(config.port));
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/";
}

HttpResponse call_service(const HttpRequest& request, ServiceContext& context) {
  CdsRequest cds;
  try {
    cds = parse_cds_request(request.body, context.config.cds_hook);
  } catch (const CdsPreconditionFailed& e) {
    audit(context, request, "cds.call", {{"status", 412}, {"error_code", "precondition_failed"}});
    HttpResponse response = HttpResponse::detailed_error(412, e.what(), "precondition_failed", request.request_id);
    response.log_fields["error_code"] = "precondition_failed";
    return response;
  }
  const std::shared_ptr<const LoadedVersion> version = context.models.serving(context.config.default_model, "");
  const ServedInstance& instance = version->instance("");
  require_queue_space(*version, instance, context.metrics);
  const Deadline deadline = request_deadline(context.config);
  const auto bytes = std::span(reinterpret_cast<const std::uint8_t*>(cds.image.data()), cds.image.size());
  PreparedImage prepared = instance.classifier->prepare(bytes);
  const ClassifiedImage answer = classify_in_batch(*version, instance, std::move(prepared), context, deadline);
  const ClassificationResult& result = answer.result;

  const std::string image_sha256 = sha256_text(cds.image);
  const ordered_json body = cds_response({.result = &result,
                                          .manifest = &version->manifest(),
                                          .request = &cds,
                                          .page_url = page_url(request, context.config),
                                          .occurrence = clinical::utc_now_iso8601(),
                                          .image_sha256 = image_sha256});
  HttpResponse response = HttpResponse::json(body);
  ordered_json cards = ordered_json::array();
  for (const auto& card : body["cards"]) cards.push_back(card["uuid"]);
  ordered_json audited = {{"status", response.status},
                          {"hook", cds.hook},
                          {"hook_instance", cds.hook_instance},
                          {"cards", std::move(cards)},
                          {"model", audit_model(result, version->manifest())},
                          {"image_sha256", image_sha256},
                          {"triage_tier", result.triage.tier},
                          {"result_sha256", sha256_text(response.body)}};
  if (context.config.audit_patient_ids) audited["patient_id"] = cds.patient_id;
  audit(context, request, "cds.call", std::move(audited));  // before the answer leaves
  response.log_fields = {{"model", result.model_name}, {"version", result.model_version}, {"hook", cds.hook}};
  return response;
}

HttpResponse feedback(const HttpRequest& request, ServiceContext& context) {
  const std::vector<CdsFeedback> entries = parse_cds_feedback(request.body);
  for (const CdsFeedback& f : entries) {
    ordered_json audited = {{"status", 200},
                            {"card", f.card},
                            {"outcome", f.outcome},
                            {"accepted_suggestions", f.accepted_suggestions},
                            {"override_reason", f.override_reason},
                            {"outcome_timestamp", f.outcome_timestamp}};
    // A clinician's free text may name the patient: kept only where patient identifiers are.
    if (!f.user_comment.empty())
      audited["user_comment"] = context.config.audit_patient_ids
                                    ? ordered_json(f.user_comment)
                                    : ordered_json("(" + std::to_string(f.user_comment.size()) + " bytes, not recorded)");
    audit(context, request, "cds.feedback", std::move(audited));
  }
  HttpResponse response = HttpResponse::json(ordered_json::object());
  response.log_fields["feedback_entries"] = entries.size();
  return response;
}

HttpResponse with_audited_failure(const HttpRequest& request, ServiceContext& context, std::string_view action,
                                  HttpResponse (*handler)(const HttpRequest&, ServiceContext&)) {
  try {
    return handler(request, context);
  } catch (const Error& e) {
    try {
      audit_failure(context, request, action, e);
    } catch (const Error& audit_error) {
      log_event(spdlog::level::err, "audit_failed", {{"request_id", request.request_id}, {"error", audit_error.what()}});
    }
    throw;
  }
}

}  // namespace

void add_cds_hooks_routes(HttpServer& server, ServiceContext& context) {
  server.get("/cds-services", [&context](const HttpRequest&) { return HttpResponse::json(cds_discovery(context.config.cds_hook)); });
  const std::string service = "/cds-services/" + std::string(kCdsServiceId);
  server.post(service, [&context](const HttpRequest& request) { return with_audited_failure(request, context, "cds.call", call_service); });
  server.post(service + "/feedback",
              [&context](const HttpRequest& request) { return with_audited_failure(request, context, "cds.feedback", feedback); });
}

}  // namespace dermcds::service
