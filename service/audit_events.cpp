#include "audit_events.hpp"

#include "dermcds/clinical/audit_log.hpp"
#include "dermcds/clinical/fhir_bundle.hpp"
#include "dermcds/sha256.hpp"
#include "http_status.hpp"

namespace dermcds::service {

using ordered_json = nlohmann::ordered_json;

std::string sha256_text(std::string_view bytes) {
  return sha256_hex(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

ordered_json audit_client(const HttpRequest& request, const ServiceConfig& config) {
  std::string offered = request.header("x-api-key").value_or("");
  if (const auto authorization = request.header("authorization"); authorization && authorization->rfind("Bearer ", 0) == 0)
    offered = authorization->substr(7);
  std::string id = "anonymous";
  // Digests, not keys, are compared and kept: the log names which key acted without holding it.
  if (!config.admin_key.empty() && !offered.empty()) {
    const std::string key_digest = sha256_text(config.admin_key);
    if (sha256_text(offered) == key_digest) id = "admin:" + key_digest.substr(0, 12);
  }
  return {{"id", id}, {"address", request.remote_addr}};
}

ordered_json audit_model(const ClassificationResult& r, const Manifest& manifest) {
  return {{"name", r.model_name},
          {"version", r.model_version},
          {"runtime", r.runtime},
          {"runtime_version", r.runtime_version},
          {"provider", r.provider},
          {"precision", r.precision},
          {"artifact_sha256", clinical::artifact_sha256_for(manifest, r)}};
}

void audit(const ServiceContext& context, const HttpRequest& request, std::string_view action, ordered_json fields) {
  if (!context.audit) return;
  ordered_json record = {
      {"action", action}, {"request_id", request.request_id}, {"route", request.route}, {"client", audit_client(request, context.config)}};
  for (auto& [key, value] : fields.items()) record[key] = std::move(value);
  context.audit->append(record);
}

void audit_failure(const ServiceContext& context, const HttpRequest& request, std::string_view action, const Error& error,
                   ordered_json fields) {
  fields["status"] = http_status_for(error.code());
  fields["error_code"] = to_string(error.code());
  audit(context, request, action, std::move(fields));
}

void audit_admin_action(const ServiceContext& context, const HttpRequest& request, int status) {
  const std::string verb = request.path.substr(request.path.rfind('/') + 1);
  ordered_json fields = {{"status", status}};
  if (const auto name = request.path_params.find("name"); name != request.path_params.end()) fields["model"] = name->second;
  audit(context, request, "admin." + verb, std::move(fields));
}

}  // namespace dermcds::service
