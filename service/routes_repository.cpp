// Model repository administration, on the paths of Triton's model-repository extension
// (POST /v2/repository/index, /v2/repository/models/{name}/load, .../unload) plus our own
// .../activate and .../rollback. Every endpoint here needs the admin API key:
//   no key configured          -> 403 (the API is disabled)
//   key missing or wrong       -> 401 with WWW-Authenticate
// The key travels as "Authorization: Bearer <key>" or "X-API-Key: <key>".
#include "audit_events.hpp"
#include "dermcds/error.hpp"
#include "dermcds/sha256.hpp"
#include "http_status.hpp"
#include "routes.hpp"

namespace dermcds::service {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

// Compares digests rather than the strings themselves, XOR-accumulated over their whole
// (fixed) length: the time taken says nothing about how much of a guess was right.
bool same_secret(std::string_view offered, std::string_view key) {
  const auto digest = [](std::string_view s) { return sha256_hex(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size())); };
  const std::string a = digest(offered), b = digest(key);
  unsigned char difference = 0;
  for (std::size_t i = 0; i < a.size(); ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i]);
  return difference == 0;
}

std::optional<HttpResponse> refuse_unauthorized(const HttpRequest& request, const ServiceConfig& config) {
  if (config.admin_key.empty())
    return HttpResponse::error(403, "the repository API is disabled: no admin key is configured (set DERMCDS_ADMIN_KEY)");
  std::string offered = request.header("x-api-key").value_or("");
  if (const auto authorization = request.header("authorization"); authorization && authorization->rfind("Bearer ", 0) == 0)
    offered = authorization->substr(7);
  if (same_secret(offered, config.admin_key)) return std::nullopt;
  HttpResponse response =
      HttpResponse::error(401, offered.empty() ? "the repository API needs the admin key" : "the admin key is not valid");
  response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"pms-derm-cds repository\"");
  return response;
}

// The body is optional; when present it must be a JSON object.
json body_object(const HttpRequest& request) {
  if (request.body.empty()) return json::object();
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) throw Error(ErrorCode::kInvalidArgument, "the request body must be a JSON object");
  return body;
}

// "version" from {"parameters": {"version": "2"}} (Triton's style) or {"version": "2"}.
std::optional<std::string> version_parameter(const json& body) {
  const json* value = nullptr;
  if (const auto p = body.find("parameters"); p != body.end()) {
    if (!p->is_object()) throw Error(ErrorCode::kInvalidArgument, "\"parameters\" must be an object");
    if (const auto v = p->find("version"); v != p->end()) value = &*v;
  }
  if (const auto v = body.find("version"); !value && v != body.end()) value = &*v;
  if (!value) return std::nullopt;
  if (value->is_string()) return value->get<std::string>();
  if (value->is_number_unsigned()) return std::to_string(value->get<std::uint64_t>());
  throw Error(ErrorCode::kInvalidArgument, "\"version\" must be a string such as \"2\"");
}

ordered_json model_summary(ServiceContext& context, const std::string& name) {
  for (const ModelStatus& model : context.models.status())
    if (model.name == name) {
      ordered_json loaded = ordered_json::array();
      for (const VersionStatus& v : model.versions)
        if (v.state == "READY") loaded.push_back(v.version);
      return {{"name", name}, {"active_version", model.active_version}, {"loaded_versions", loaded}, {"ready", model.ready}};
    }
  return {{"name", name}, {"active_version", nullptr}, {"loaded_versions", ordered_json::array()}, {"ready", false}};
}

using AdminAction = std::function<HttpResponse(const HttpRequest&, const json& body)>;

void admin_route(HttpServer& server, ServiceContext& context, const std::string& pattern, AdminAction action) {
  server.post(
      pattern,
      [&context, action = std::move(action)](const HttpRequest& request) {
        if (auto refusal = refuse_unauthorized(request, context.config)) {
          audit_admin_action(context, request, refusal->status);
          return *refusal;
        }
        HttpResponse response;
        try {
          response = action(request, body_object(request));
        } catch (const Error& e) {
          // Callers here are authenticated operators acting on the repository: they get the whole
          // message (which file failed which check) that the public API keeps to the log.
          response = HttpResponse::error(http_status_for(e.code()), e.what());
          response.log_fields["error_code"] = to_string(e.code());
          response.log_fields["error"] = e.what();
        }
        response.log_fields["admin"] = true;
        audit_admin_action(context, request, response.status);  // before the answer leaves
        return response;
      },
      ErrorBody::kProtocol);
}

}  // namespace

void add_repository_routes(HttpServer& server, ServiceContext& context) {
  admin_route(server, context, "/v2/repository/index", [&context](const HttpRequest&, const json& body) {
    bool ready_only = false;
    if (const auto r = body.find("ready"); r != body.end()) {
      if (!r->is_boolean()) throw Error(ErrorCode::kInvalidArgument, "\"ready\" must be true or false");
      ready_only = r->get<bool>();
    }
    ordered_json entries = ordered_json::array();
    for (const IndexEntry& e : context.models.index(ready_only))
      entries.push_back({{"name", e.name}, {"version", e.version}, {"state", e.state}, {"reason", e.reason}});
    return HttpResponse::json(entries);
  });
  admin_route(server, context, "/v2/repository/models/{name}/load", [&context](const HttpRequest& r, const json& body) {
    const std::string& name = r.param("name");
    const std::string version = context.models.load(name, version_parameter(body));
    ordered_json summary = model_summary(context, name);
    summary["loaded"] = version;
    return HttpResponse::json(summary);
  });
  admin_route(server, context, "/v2/repository/models/{name}/unload", [&context](const HttpRequest& r, const json& body) {
    const std::string& name = r.param("name");
    context.models.unload(name, version_parameter(body));
    return HttpResponse::json(model_summary(context, name));
  });
  admin_route(server, context, "/v2/repository/models/{name}/activate", [&context](const HttpRequest& r, const json& body) {
    const std::string& name = r.param("name");
    const auto version = version_parameter(body);
    if (!version) throw Error(ErrorCode::kInvalidArgument, "activate needs a version: {\"parameters\": {\"version\": \"2\"}}");
    context.models.activate(name, *version);
    return HttpResponse::json(model_summary(context, name));
  });
  admin_route(server, context, "/v2/repository/models/{name}/rollback", [&context](const HttpRequest& r, const json&) {
    const std::string& name = r.param("name");
    context.models.rollback(name);
    return HttpResponse::json(model_summary(context, name));
  });
}

}  // namespace dermcds::service
