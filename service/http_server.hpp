// The service's HTTP layer: request and response values and a server that routes them to
// handlers. Boost.Beast is the engine; this interface is all the rest of the service sees of it
// (only http_server.cpp includes Beast), so the library can be replaced in one file.
//
// Connections cost no thread: a few I/O threads read and write every connection asynchronously,
// and only a complete request is handed to a worker thread (HttpServerOptions::threads) to run
// its handler. A connection that sends its header slowly, or nothing, holds a socket and a few
// kilobytes until header_timeout, never a worker (docs/service.md, "HTTP layer").
//
// Handlers return an HttpResponse or throw. Nothing a handler throws reaches the HTTP library:
// dermcds::Error becomes the status http_status.hpp assigns to its code with a JSON error body,
// anything else a 500 that names no internals. Every response carries X-Request-Id.
//
// Privacy: multipart file names are dropped when a request is read (a photo's file name often
// names the patient), so no handler can log or echo them.
//
// Error messages in bodies are cut to kMaxErrorMessageBytes, so that a client's huge field value
// quoted in a message is never echoed back in full.
//
// Thread safety: routes and the response observer are registered before bind(); handlers then
// run concurrently on the server's worker threads. stop() may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace dermcds::service {

struct FormPart {
  std::string name;          // the form field's name
  std::string content_type;  // as the client declared it ("" when absent)
  std::string_view content;  // into the library's request: valid while the handler runs
  bool is_file = false;      // sent as a file (the name itself is not kept; see above)
};

struct HttpRequest {
  std::string method;
  std::string path;         // without the query string
  std::string route;        // the pattern that matched, e.g. "/v2/models/{name}/infer"
  std::string request_id;   // the client's X-Request-Id when well-formed, else generated
  std::string remote_addr;  // the peer's IP address, for the audit trail ("" when unknown)
  // Views into the library's request, valid while the handler runs (no copy of a photo or a
  // tensor document). Empty for multipart requests, whose content is in parts.
  std::string_view body;
  std::vector<FormPart> parts;
  std::map<std::string, std::string, std::less<>> path_params;  // "{name}" -> value
  std::vector<std::pair<std::string, std::string>> query_params;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case

  // The path parameter named in the route; throws kInternal if the route has no such name.
  const std::string& param(std::string_view name) const;
  std::optional<std::string> query(std::string_view name) const;
  std::optional<std::string> header(std::string_view lower_case_name) const;
  // The Content-Type without parameters, in lower case ("image/jpeg"); "" when absent.
  std::string media_type() const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Fields for this request's access-log line (model, version, batch size, error code); never
  // sent to the client.
  nlohmann::ordered_json log_fields = nlohmann::ordered_json::object();

  static HttpResponse json(const nlohmann::ordered_json& document, int status = 200);
  static HttpResponse text(std::string body, std::string content_type, int status = 200);
  // No body: the Open Inference Protocol's health answers.
  static HttpResponse status_only(int status);
  // {"error": message}, the protocol's error shape.
  static HttpResponse error(int status, std::string_view message);
  // {"error", "code", "request_id"}: the service's own API's error shape.
  static HttpResponse detailed_error(int status, std::string_view message, std::string_view code, std::string_view request_id);
};

// How a route reports a thrown error. kProtocol is the Open Inference Protocol's exact shape,
// {"error": "..."}; kDetailed adds the error code and request id for the service's own API.
enum class ErrorBody { kProtocol, kDetailed };

// What the server knows about each finished request, for logs and metrics.
struct RequestRecord {
  const HttpRequest* request = nullptr;  // method, route, request id; body already consumed
  const HttpResponse* response = nullptr;
  double duration_ms = 0;
  std::size_t request_bytes = 0;
};

inline constexpr std::size_t kMaxErrorMessageBytes = 1024;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                             // 0: any free port (bind() returns it)
  int threads = 32;                            // worker threads: requests whose handlers run at the same time
  std::size_t max_body_bytes = 20u << 20;      // Content-Length or chunked, decoded (larger: 413)
  std::chrono::seconds read_timeout{30};       // to receive a body once its header is in; also each write
  std::chrono::seconds keep_alive_timeout{5};  // idle time between requests on a connection
  // Added with the Beast engine:
  std::chrono::seconds header_timeout{10};   // first byte of a request to the end of its header
  std::size_t max_header_bytes = 16u << 10;  // request line and header fields (larger: 431)
  int max_connections = 1024;                // open at once; more are answered 503 and closed
  int io_threads = 2;                        // threads reading and writing sockets (no handler runs on them)
  // Set on every response, whatever route or error produced it (the development override's stamp).
  std::vector<std::pair<std::string, std::string>> headers;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  using Observer = std::function<void(const RequestRecord&)>;

  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Patterns are paths whose segments may be "{name}" placeholders matching one segment.
  void get(const std::string& pattern, Handler handler, ErrorBody errors = ErrorBody::kDetailed);
  void post(const std::string& pattern, Handler handler, ErrorBody errors = ErrorBody::kDetailed);
  void set_observer(Observer observer);

  // Binds the listening socket; returns the port. Throws kIoError naming host and port.
  int bind();
  // Serves until stop(); returns once every request in progress has been answered.
  void serve();
  void stop();
  bool running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dermcds::service
