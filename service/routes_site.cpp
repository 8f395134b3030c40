// What is not an API call: the clinician's web page, the OpenAPI document, Prometheus metrics.
#include <algorithm>

#include "dermcds/error.hpp"
#include "routes.hpp"
#include "web_assets.hpp"

namespace dermcds::service {

namespace {

std::string_view asset(std::string_view name) {
  const auto assets = web_assets();
  const auto it = std::find_if(assets.begin(), assets.end(), [name](const WebAsset& a) { return a.name == name; });
  if (it == assets.end()) throw Error(ErrorCode::kInternal, "web asset " + std::string(name) + " was not compiled in");
  return it->content;
}

HttpResponse page_file(std::string_view name, std::string content_type) {
  HttpResponse response = HttpResponse::text(std::string(asset(name)), std::move(content_type));
  // The page loads nothing from elsewhere and previews the photo from a local blob: a strict
  // policy costs nothing and keeps injected content from running or phoning home.
  response.headers.emplace_back("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
                                "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
  response.headers.emplace_back("Referrer-Policy", "no-referrer");
  return response;
}

// Refreshes the gauges that mirror current state, just before a scrape renders them.
void collect_model_gauges(ServiceContext& context) {
  std::map<LabelValues, double> depth, ready, info, active;
  for (const auto& loaded : context.models.loaded_versions()) {
    ready[{loaded->name(), loaded->version()}] = 1;
    for (const auto& instance : loaded->instances()) {
      const BackendInfo& b = instance->classifier->backend_info();
      depth[{loaded->name(), loaded->version(), b.runtime}] = instance->batcher->queue_depth();
      info[{loaded->name(), loaded->version(), b.runtime, b.runtime_version, b.provider, b.precision}] = 1;
    }
  }
  for (const ModelStatus& model : context.models.status()) {
    if (!model.active_version.empty()) active[{model.name}] = std::stod(model.active_version);
    for (const VersionStatus& v : model.versions) ready.try_emplace({model.name, v.version}, 0.0);
  }
  context.metrics.queue_depth.replace_all(std::move(depth));
  context.metrics.model_ready.replace_all(std::move(ready));
  context.metrics.model_info.replace_all(std::move(info));
  context.metrics.active_version.replace_all(std::move(active));
}

}  // namespace

void add_site_routes(HttpServer& server, ServiceContext& context) {
  server.get("/", [](const HttpRequest&) { return page_file("index.html", "text/html; charset=utf-8"); });
  server.get("/app.js", [](const HttpRequest&) { return page_file("app.js", "text/javascript; charset=utf-8"); });
  server.get("/style.css", [](const HttpRequest&) { return page_file("style.css", "text/css; charset=utf-8"); });
  server.get("/openapi.yaml",
             [](const HttpRequest&) { return HttpResponse::text(std::string(asset("openapi.yaml")), "application/yaml; charset=utf-8"); });
  context.metrics.registry.add_collector([&context] { collect_model_gauges(context); });
  server.get("/metrics", [&context](const HttpRequest&) {
    return HttpResponse::text(context.metrics.registry.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

}  // namespace dermcds::service
