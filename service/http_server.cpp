// The cpp-httplib adapter. Everything specific to the library stays in this file.
#include "http_server.hpp"

#include <algorithm>
#include <cctype>
#include <regex>

#include <sys/socket.h>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "dermcds/error.hpp"
#include "http_status.hpp"
#include "request_id.hpp"

namespace dermcds::service {

namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A route pattern compiled for matching: "/v2/models/{name}" -> ^/v2/models/([^/]+)$.
struct CompiledRoute {
  std::string pattern;
  std::string regex_source;
  std::regex regex;
  std::vector<std::string> names;
};

CompiledRoute compile_route(const std::string& pattern) {
  CompiledRoute route{pattern, {}, {}, {}};
  static const std::string kSpecial = R"(\^$.|?*+()[]{})";
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '{') {
      const std::size_t end = pattern.find('}', i);
      if (end == std::string::npos) throw Error(ErrorCode::kInternal, "route pattern '" + pattern + "' has an unclosed '{'");
      route.names.push_back(pattern.substr(i + 1, end - i - 1));
      route.regex_source += "([^/]+)";
      i = end;
    } else {
      if (kSpecial.find(pattern[i]) != std::string::npos) route.regex_source += '\\';
      route.regex_source += pattern[i];
    }
  }
  route.regex = std::regex(route.regex_source);
  return route;
}

void apply(const HttpResponse& from, httplib::Response& to, const std::string& request_id, const HttpServerOptions& options) {
  to.status = from.status;
  for (const auto& [name, value] : options.headers) to.set_header(name, value);
  for (const auto& [name, value] : from.headers) to.set_header(name, value);
  to.set_header("X-Request-Id", request_id);
  if (wants_retry_after(from.status) && !to.has_header("Retry-After")) to.set_header("Retry-After", "1");
  if (!from.body.empty() || !from.content_type.empty()) to.set_content(from.body, from.content_type);
}

// Statuses cpp-httplib produces itself, before any route runs.
std::string library_error_message(int status, std::size_t max_body_bytes) {
  switch (status) {
    case 400: return "malformed HTTP request";
    case 404: return "no such endpoint (see /openapi.yaml)";
    case 413: return "request body is larger than the limit of " + std::to_string(max_body_bytes) + " bytes";
    case 414: return "request URI is too long";
    case 416: return "unsatisfiable range";
    default: return "HTTP error " + std::to_string(status);
  }
}

// cpp-httplib 0.11 listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, fixed when Debian
// compiled the library). A burst of new connections overflows it: the kernel drops handshakes
// and falls back to SYN cookies, and under load clients see connections reset. listen() on a
// listening socket only changes its backlog, so the adapter repeats it with the system maximum.
class Engine final : public httplib::Server {
 public:
  void widen_backlog() { ::listen(svr_sock_, SOMAXCONN); }
};

}  // namespace

// --- request and response values ------------------------------------------------------------

const std::string& HttpRequest::param(std::string_view name) const {
  const auto it = path_params.find(name);
  if (it == path_params.end()) throw Error(ErrorCode::kInternal, "route " + route + " has no parameter " + std::string(name));
  return it->second;
}

std::optional<std::string> HttpRequest::query(std::string_view name) const {
  for (const auto& [key, value] : query_params)
    if (key == name) return value;
  return std::nullopt;
}

std::optional<std::string> HttpRequest::header(std::string_view lower_case_name) const {
  for (const auto& [key, value] : headers)
    if (key == lower_case_name) return value;
  return std::nullopt;
}

std::string HttpRequest::media_type() const {
  std::string type = header("content-type").value_or("");
  type = type.substr(0, type.find(';'));
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  type.erase(type.begin(), std::find_if(type.begin(), type.end(), not_space));
  type.erase(std::find_if(type.rbegin(), type.rend(), not_space).base(), type.end());
  return lower(type);
}

HttpResponse HttpResponse::json(const nlohmann::ordered_json& document, int status) {
  HttpResponse r;
  r.status = status;
  r.body = document.dump();
  return r;
}

HttpResponse HttpResponse::text(std::string body, std::string content_type, int status) {
  HttpResponse r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::status_only(int status) {
  HttpResponse r;
  r.status = status;
  r.content_type.clear();
  return r;
}

HttpResponse HttpResponse::error(int status, std::string_view message) {
  return json({{"error", message}}, status);
}

HttpResponse HttpResponse::detailed_error(int status, std::string_view message, std::string_view code,
                                          std::string_view request_id) {
  HttpResponse response = json({{"error", message}, {"code", code}, {"request_id", request_id}}, status);
  response.log_fields["error_code"] = code;
  return response;
}

// --- the server -----------------------------------------------------------------------------

struct HttpServer::Impl {
  HttpServerOptions options;
  Engine server;
  std::vector<CompiledRoute> routes;  // for naming the route of requests the library refuses
  Observer observer;

  void add(const std::string& method, const std::string& pattern, Handler handler, ErrorBody errors);
  void handle(const CompiledRoute& route, const Handler& handler, ErrorBody errors, const httplib::Request& req,
              httplib::Response& res) const;
  httplib::Server::HandlerResponse library_error(const httplib::Request& req, httplib::Response& res) const;
  void observe(const HttpRequest& request, const HttpResponse& response, double duration_ms, std::size_t bytes) const {
    if (observer) observer({&request, &response, duration_ms, bytes});
  }
};

HttpServer::HttpServer(HttpServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  httplib::Server& server = impl_->server;
  const auto threads = static_cast<std::size_t>(std::max(1, impl_->options.threads));
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_payload_max_length(impl_->options.max_body_bytes);
  server.set_read_timeout(impl_->options.read_timeout);
  server.set_write_timeout(impl_->options.read_timeout);
  server.set_keep_alive_timeout(impl_->options.keep_alive_timeout.count());
  // The library's default closes a keep-alive connection after 5 requests; clients of an
  // inference service send thousands over one connection.
  server.set_keep_alive_max_count(100000);
  // Headers and body leave in separate writes; with Nagle's algorithm the body would wait for
  // the client's delayed ACK of the headers (tens of milliseconds on every keep-alive request).
  server.set_tcp_nodelay(true);
  // Classifications are medical data: no cache between us and the clinician keeps a copy.
  server.set_default_headers({{"Cache-Control", "no-store"}, {"X-Content-Type-Options", "nosniff"}});
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [impl = impl_.get()](const httplib::Request& req, httplib::Response& res) { return impl->library_error(req, res); }));
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    // Handlers catch everything (handle()); this only guards the library's own code paths.
    res.status = 500;
    res.set_content(R"({"error":"internal server error"})", "application/json");
  });
  // A client announcing a body over the limit is refused before it sends the body.
  server.set_expect_100_continue_handler([limit = impl_->options.max_body_bytes](const httplib::Request& req,
                                                                                  httplib::Response& res) {
    if (req.get_header_value<std::uint64_t>("Content-Length") <= limit) return 100;
    res.status = 413;  // the library answers with `res` (through library_error) for anything but 100 and 417
    return 413;
  });
}

HttpServer::~HttpServer() = default;

void HttpServer::get(const std::string& pattern, Handler handler, ErrorBody errors) {
  impl_->add("GET", pattern, std::move(handler), errors);
}

void HttpServer::post(const std::string& pattern, Handler handler, ErrorBody errors) {
  impl_->add("POST", pattern, std::move(handler), errors);
}

void HttpServer::set_observer(Observer observer) { impl_->observer = std::move(observer); }

void HttpServer::Impl::add(const std::string& method, const std::string& pattern, Handler handler, ErrorBody errors) {
  routes.push_back(compile_route(pattern));
  const CompiledRoute& route = routes.back();
  // The handler keeps its own copy of the route: `routes` may reallocate as more are added.
  auto wrapped = [this, route, handler = std::move(handler), errors](const httplib::Request& req, httplib::Response& res) {
    handle(route, handler, errors, req, res);
  };
  if (method == "GET") server.Get(route.regex_source, std::move(wrapped));
  else server.Post(route.regex_source, std::move(wrapped));
}

void HttpServer::Impl::handle(const CompiledRoute& route, const Handler& handler, ErrorBody errors,
                              const httplib::Request& req, httplib::Response& res) const {
  const auto start = Clock::now();
  HttpRequest request;
  HttpResponse response;
  const std::size_t request_bytes = req.body.size();
  try {
    request.method = req.method;
    request.path = req.path;
    request.route = route.pattern;
    request.request_id = make_request_id(req.get_header_value("X-Request-Id"));
    request.remote_addr = req.remote_addr;
    for (std::size_t i = 0; i < route.names.size() && i + 1 < req.matches.size(); ++i)
      request.path_params[route.names[i]] = req.matches[i + 1].str();
    for (const auto& [key, value] : req.params) request.query_params.emplace_back(key, value);
    for (const auto& [key, value] : req.headers) request.headers.emplace_back(lower(key), value);
    request.body = req.body;
    for (const auto& [name, file] : req.files)
      request.parts.push_back({name, file.content_type, file.content, !file.filename.empty()});

    response = handler(request);
  } catch (const Error& e) {
    const int status = http_status_for(e.code());
    const std::string code(to_string(e.code()));
    const std::string message = message_is_public(e.code())
                                    ? std::string(e.what())
                                    : "the server failed to complete the request (" + code +
                                          "); its log has the details under request id " + request.request_id;
    response = errors == ErrorBody::kProtocol ? HttpResponse::error(status, message)
                                              : HttpResponse::detailed_error(status, message, code, request.request_id);
    response.log_fields["error_code"] = code;
    // Public messages describe the caller's input and are already in the caller's hands; only
    // server-side failures are worth the log's space (they name packages and runtimes, never
    // image content).
    if (!message_is_public(e.code())) response.log_fields["error"] = e.what();
  } catch (const std::exception& e) {
    response = HttpResponse::error(500, "internal server error; request id " + request.request_id);
    response.log_fields["error_code"] = "internal";
    response.log_fields["error"] = e.what();
  }
  apply(response, res, request.request_id, options);
  const double duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  observe(request, response, duration_ms, request_bytes);
}

httplib::Server::HandlerResponse HttpServer::Impl::library_error(const httplib::Request& req,
                                                                 httplib::Response& res) const {
  // Responses made by our handlers already carry a request id; leave them as they are.
  if (res.has_header("X-Request-Id")) return httplib::Server::HandlerResponse::Unhandled;
  HttpRequest request;
  request.method = req.method;
  request.path = req.path;
  request.route = "(unmatched)";
  for (const CompiledRoute& route : routes)
    if (std::regex_match(req.path, route.regex)) request.route = route.pattern;
  request.request_id = make_request_id(req.get_header_value("X-Request-Id"));
  HttpResponse response = HttpResponse::error(res.status, library_error_message(res.status, options.max_body_bytes));
  apply(response, res, request.request_id, options);
  observe(request, response, 0.0, 0);
  return httplib::Server::HandlerResponse::Handled;
}

int HttpServer::bind() {
  Engine& server = impl_->server;
  const std::string& host = impl_->options.host;
  int port = impl_->options.port;
  if (port == 0) {
    port = server.bind_to_any_port(host);
    if (port < 0) throw Error(ErrorCode::kIoError, "cannot listen on " + host + " (any port)");
  } else if (!server.bind_to_port(host, port)) {
    throw Error(ErrorCode::kIoError, "cannot listen on " + host + ":" + std::to_string(port) +
                                         " (address in use, or not an address of this machine)");
  }
  server.widen_backlog();
  return port;
}

void HttpServer::serve() { impl_->server.listen_after_bind(); }

void HttpServer::stop() { impl_->server.stop(); }

bool HttpServer::running() const { return impl_->server.is_running(); }

}  // namespace dermcds::service
