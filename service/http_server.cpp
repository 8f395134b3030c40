// The Boost.Beast adapter. Everything specific to the library stays in this file.
//
// Shape (docs/service.md, "HTTP layer"): `io_threads` threads run one io_context; each
// connection is a Session on its own strand that reads one request at a time with explicit
// limits and deadlines (header_timeout, keep_alive_timeout, read_timeout, max_header_bytes,
// max_body_bytes, chunked bodies included), hands the complete request to the worker pool, and
// writes the answer before reading the next. Pipelined requests are therefore answered in order,
// and a connection costs a socket and a buffer, never a thread.
#include "http_server.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <regex>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "dermcds/error.hpp"
#include "http_parsing.hpp"
#include "http_status.hpp"
#include "request_id.hpp"

namespace dermcds::service {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

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
  std::regex regex;
  std::vector<std::string> names;
};

CompiledRoute compile_route(const std::string& pattern) {
  CompiledRoute route{pattern, {}, {}};
  std::string source;
  static const std::string kSpecial = R"(\^$.|?*+()[]{})";
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '{') {
      const std::size_t end = pattern.find('}', i);
      if (end == std::string::npos) throw Error(ErrorCode::kInternal, "route pattern '" + pattern + "' has an unclosed '{'");
      route.names.push_back(pattern.substr(i + 1, end - i - 1));
      source += "([^/]+)";
      i = end;
    } else {
      if (kSpecial.find(pattern[i]) != std::string::npos) source += '\\';
      source += pattern[i];
    }
  }
  route.regex = std::regex(source);
  return route;
}

// A message cut to kMaxErrorMessageBytes at a UTF-8 character boundary, saying how much was
// left out: an error that quotes a client's 1 MB field must not send the megabyte back.
std::string bounded_message(std::string_view message) {
  if (message.size() <= kMaxErrorMessageBytes) return std::string(message);
  std::size_t cut = kMaxErrorMessageBytes;
  while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80) --cut;
  return std::string(message.substr(0, cut)) + "... (" + std::to_string(message.size() - cut) + " more bytes)";
}

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
  // Invalid UTF-8 (a client's bytes quoted in a message) becomes U+FFFD instead of an exception.
  r.body = document.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
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

HttpResponse HttpResponse::error(int status, std::string_view message) { return json({{"error", bounded_message(message)}}, status); }

HttpResponse HttpResponse::detailed_error(int status, std::string_view message, std::string_view code, std::string_view request_id) {
  HttpResponse response = json({{"error", bounded_message(message)}, {"code", code}, {"request_id", request_id}}, status);
  response.log_fields["error_code"] = code;
  return response;
}

// --- the server -----------------------------------------------------------------------------

namespace {

// One route: its method, compiled pattern, handler and error shape.
struct Route {
  std::string method;
  CompiledRoute compiled;
  HttpServer::Handler handler;
  ErrorBody errors;
};

// The status and message for a request the parser refused; nothing from the request is quoted.
std::pair<int, std::string> parse_error_response(const beast::error_code& ec, const HttpServerOptions& options) {
  if (ec == http::error::header_limit)
    return {431, "the request line and header fields are larger than the limit of " + std::to_string(options.max_header_bytes) + " bytes"};
  if (ec == http::error::body_limit)
    return {413, "request body is larger than the limit of " + std::to_string(options.max_body_bytes) + " bytes"};
  if (ec == http::error::bad_content_length || ec == http::error::multiple_content_length)
    return {400, "invalid or repeated Content-Length header"};
  if (ec == http::error::bad_transfer_encoding) return {400, "invalid Transfer-Encoding (only chunked is accepted)"};
  if (ec == http::error::bad_version) return {505, "only HTTP/1.0 and HTTP/1.1 are served"};
  return {400, "malformed HTTP request"};
}

}  // namespace

class Session;

// Everything the server shares with its sessions (HttpServer::Impl is private to the class).
struct ServerCore {
  HttpServerOptions options;
  std::vector<Route> routes;
  HttpServer::Observer observer;

  asio::io_context io{std::max(1, options.io_threads)};
  // The acceptor lives on its own strand: its accept handler and stop() (from any thread) never
  // touch it at the same time.
  tcp::acceptor acceptor{asio::make_strand(io)};
  std::unique_ptr<asio::thread_pool> workers;
  std::atomic<bool> is_running{false};
  std::atomic<bool> stopping{false};
  std::atomic<int> connections{0};

  std::mutex sessions_mutex;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // for stop()

  void accept();
  void refuse_connection(tcp::socket socket);
  // Runs on a worker thread: routes the request and turns anything thrown into a response.
  HttpResponse dispatch(HttpRequest& request, const http::request<http::string_body>& message) const;
  HttpResponse run_handler(const Route& route, HttpRequest& request) const;
  void observe(const HttpRequest& request, const HttpResponse& response, double duration_ms, std::size_t bytes) const {
    if (observer) observer({&request, &response, duration_ms, bytes});
  }
};

namespace {

// Copies a response value into a Beast message, with the headers every response carries.
http::response<http::string_body> to_message(HttpResponse& from, const std::string& request_id, unsigned version, bool keep_alive,
                                             bool head, const HttpServerOptions& options) {
  http::response<http::string_body> to{static_cast<http::status>(from.status), version};
  // Classifications are medical data: no cache between us and the clinician keeps a copy.
  to.set(http::field::cache_control, "no-store");
  to.set("X-Content-Type-Options", "nosniff");
  for (const auto& [name, value] : options.headers) to.set(name, value);
  for (const auto& [name, value] : from.headers) to.set(name, value);
  to.set("X-Request-Id", request_id);
  if (wants_retry_after(from.status) && to.find(http::field::retry_after) == to.end()) to.set(http::field::retry_after, "1");
  if (!from.body.empty() || !from.content_type.empty()) to.set(http::field::content_type, from.content_type);
  const std::size_t length = from.body.size();
  if (!head) to.body() = std::move(from.body);
  to.content_length(length);  // for HEAD: the length a GET would have had, with no body
  to.keep_alive(keep_alive);
  return to;
}

}  // namespace

// One connection. Every member is used on the connection's strand only, except where a worker
// runs the handler: the worker gets its own request and gives back a response by posting it.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(ServerCore& server, tcp::socket socket) : server_(server), stream_(std::move(socket)) {
    beast::error_code ec;
    const auto peer = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_addr_ = peer.address().to_string();
  }

  ~Session() {
    {
      std::lock_guard lock(server_.sessions_mutex);
      server_.sessions.erase(this);
    }
    server_.connections.fetch_sub(1);
  }

  void start() {
    {
      std::lock_guard lock(server_.sessions_mutex);
      server_.sessions.emplace(this, weak_from_this());
    }
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->wait_for_request(); });
  }

  // From stop(): a connection waiting for its next request closes now; one with a request in
  // progress closes after answering it.
  void stop() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      self->stopping_ = true;
      if (self->state_ == State::kIdle) self->stream_.cancel();
    });
  }

 private:
  enum class State { kIdle, kReading, kHandling, kWriting };

  // Waits for the first byte of the next request (pipelined bytes may already be buffered).
  void wait_for_request() {
    if (stopping_ || server_.stopping) return close();
    if (buffer_.size() > 0) return read_header();
    state_ = State::kIdle;
    // A new connection that sends nothing is held no longer than one that sends slowly.
    stream_.expires_after(requests_ == 0 ? server_.options.header_timeout : server_.options.keep_alive_timeout);
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->buffer_.commit(n);
      if (ec || n == 0) return self->close();  // idle timeout, client gone, or stop()
      self->read_header();
    });
  }

  void read_header() {
    state_ = State::kReading;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(server_.options.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(server_.options.max_body_bytes);
    stream_.expires_after(server_.options.header_timeout);
    http::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->refuse(ec);
      self->read_body();
    });
  }

  void read_body() {
    const auto& header = parser_->get();
    // Beast accepts repeated identical values ("2" twice, or "2, 2"), as RFC 9110 8.6 allows; we
    // refuse them, since two parsers on the path (a proxy and us) may disagree about which wins.
    if (header.count(http::field::content_length) > 1 || header[http::field::content_length].find(',') != beast::string_view::npos)
      return refuse(http::error::multiple_content_length);
    // A request whose Transfer-Encoding does not end in chunked has no length a server can know
    // (RFC 9112 6.3): 400, where Beast would take it as having no body.
    if (header.find(http::field::transfer_encoding) != header.end() && !parser_->chunked())
      return refuse(http::error::bad_transfer_encoding);
    stream_.expires_after(server_.options.read_timeout);
    if (parser_->is_done()) return handle();  // no body: no Content-Length, or 0 (RFC 9112 6.3)
    if (beast::iequals(header[http::field::expect], "100-continue")) {
      // The limit was checked against Content-Length with the header; ask for the body now
      // instead of letting the client wait a second before sending it anyway.
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = shared_from_this()](beast::error_code ec, std::size_t) {
                          if (ec) return self->close();
                          self->read_rest();
                        });
      return;
    }
    read_rest();
  }

  void read_rest() {
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->refuse(ec);
      self->handle();
    });
  }

  // A request the parser refused, or one that timed out part-way.
  void refuse(const beast::error_code& ec) {
    if (ec == beast::error::timeout || ec == asio::error::operation_aborted || ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset) {
      // Nothing useful can be said to a client that is too slow or gone; the slot is freed now.
      if (ec == beast::error::timeout) record_refusal(408, "timed out receiving the request");
      return close();
    }
    const auto [status, message] = parse_error_response(ec, server_.options);
    HttpResponse response = HttpResponse::error(status, message);
    const std::string request_id = record_refusal(status, message, &response);
    // After a refused request the stream cannot be trusted to be at a request boundary.
    stopping_ = true;
    write(to_message(response, request_id, 11, false, false, server_.options));
  }

  std::string record_refusal(int status, const std::string& message, HttpResponse* response = nullptr) {
    HttpRequest request;
    request.route = "(unmatched)";
    std::string offered;
    if (parser_ && parser_->is_header_done()) {
      const auto& header = parser_->get();
      request.method = std::string(header.method_string());
      const std::string_view target = header.target();
      request.path = percent_decode(target.substr(0, target.find('?')), false);
      offered = std::string(header["X-Request-Id"]);
    }
    request.request_id = make_request_id(offered);
    HttpResponse local = HttpResponse::error(status, message);
    server_.observe(request, response ? *response : local, 0.0, 0);
    return request.request_id;
  }

  void handle() {
    state_ = State::kHandling;
    ++requests_;
    // The worker owns the message while the handler runs; the response comes back by post.
    auto message = std::make_shared<http::request<http::string_body>>(parser_->release());
    parser_.reset();
    asio::post(*server_.workers, [self = shared_from_this(), message, guard = asio::make_work_guard(server_.io)] {
      HttpRequest request;
      request.remote_addr = self->remote_addr_;  // set once in the constructor, read-only since
      HttpResponse response = self->server_.dispatch(request, *message);
      const bool keep_alive = message->keep_alive();
      const bool head = message->method() == http::verb::head;
      auto reply = std::make_shared<http::response<http::string_body>>(
          to_message(response, request.request_id, message->version(), keep_alive, head, self->server_.options));
      asio::post(self->stream_.get_executor(), [self, reply] { self->write(std::move(*reply)); });
    });
  }

  void write(http::response<http::string_body> message) {
    state_ = State::kWriting;
    if (stopping_ || server_.stopping) message.keep_alive(false);
    response_ = std::move(message);
    stream_.expires_after(server_.options.read_timeout);
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec || !self->response_.keep_alive()) return self->close();
      self->response_ = {};
      self->wait_for_request();
    });
  }

  void close() {
    state_ = State::kIdle;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  ServerCore& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  State state_ = State::kIdle;
  bool stopping_ = false;
  std::uint64_t requests_ = 0;
  std::string remote_addr_;
};

struct HttpServer::Impl : ServerCore {};

HttpServer::HttpServer(HttpServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->workers = std::make_unique<asio::thread_pool>(static_cast<std::size_t>(std::max(1, impl_->options.threads)));
}

HttpServer::~HttpServer() {
  stop();
  if (impl_->workers) impl_->workers->join();
}

void HttpServer::get(const std::string& pattern, Handler handler, ErrorBody errors) {
  impl_->routes.push_back({"GET", compile_route(pattern), std::move(handler), errors});
}

void HttpServer::post(const std::string& pattern, Handler handler, ErrorBody errors) {
  impl_->routes.push_back({"POST", compile_route(pattern), std::move(handler), errors});
}

void HttpServer::set_observer(Observer observer) { impl_->observer = std::move(observer); }

HttpResponse ServerCore::dispatch(HttpRequest& request, const http::request<http::string_body>& message) const {
  const auto start = Clock::now();
  request.method = std::string(message.method_string());
  const std::string_view target = message.target();
  const std::size_t question = target.find('?');
  request.path = percent_decode(target.substr(0, question), false);
  request.route = "(unmatched)";
  request.request_id = make_request_id(std::string(message["X-Request-Id"]));
  HttpResponse response;
  try {
    if (question != std::string_view::npos) request.query_params = parse_query(target.substr(question + 1));
    // HEAD is answered as GET without the body (RFC 9110 9.3.2).
    const std::string_view method = message.method() == http::verb::head ? "GET" : std::string_view(request.method);
    const Route* found = nullptr;
    std::smatch matches;
    for (const Route& route : routes) {
      if (route.method != method || !std::regex_match(request.path, matches, route.compiled.regex)) continue;
      found = &route;
      break;
    }
    if (!found) {
      for (const Route& route : routes)
        if (std::regex_match(request.path, route.compiled.regex)) request.route = route.compiled.pattern;
      response = HttpResponse::error(404, "no such endpoint (see /openapi.yaml)");
    } else {
      request.route = found->compiled.pattern;
      for (std::size_t i = 0; i < found->compiled.names.size() && i + 1 < matches.size(); ++i)
        request.path_params[found->compiled.names[i]] = matches[i + 1].str();
      for (const auto& field : message) request.headers.emplace_back(lower(field.name_string()), std::string(field.value()));
      if (request.media_type() == "multipart/form-data") {
        const auto boundary = multipart_boundary(request.header("content-type").value_or(""));
        if (!boundary) throw Error(ErrorCode::kInvalidArgument, "multipart/form-data without a valid boundary parameter");
        request.parts = parse_multipart(message.body(), *boundary);
      } else {
        request.body = message.body();
      }
      response = run_handler(*found, request);
    }
  } catch (const Error& e) {
    // Only what the adapter itself refuses reaches here (query, multipart): the caller's input.
    response = HttpResponse::error(http_status_for(e.code()), e.what());
    response.log_fields["error_code"] = std::string(to_string(e.code()));
  } catch (const std::exception& e) {
    response = HttpResponse::error(500, "internal server error; request id " + request.request_id);
    response.log_fields["error_code"] = "internal";
    response.log_fields["error"] = e.what();
  }
  const double duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  observe(request, response, duration_ms, message.body().size());
  return response;
}

HttpResponse ServerCore::run_handler(const Route& route, HttpRequest& request) const {
  try {
    return route.handler(request);
  } catch (const Error& e) {
    const int status = http_status_for(e.code());
    const std::string code(to_string(e.code()));
    const std::string message = message_is_public(e.code()) ? std::string(e.what())
                                                            : "the server failed to complete the request (" + code +
                                                                  "); its log has the details under request id " + request.request_id;
    HttpResponse response = route.errors == ErrorBody::kProtocol ? HttpResponse::error(status, message)
                                                                 : HttpResponse::detailed_error(status, message, code, request.request_id);
    response.log_fields["error_code"] = code;
    // Public messages describe the caller's input and are already in the caller's hands; only
    // server-side failures are worth the log's space (they name packages and runtimes, never
    // image content).
    if (!message_is_public(e.code())) response.log_fields["error"] = e.what();
    return response;
  } catch (const std::exception& e) {
    HttpResponse response = HttpResponse::error(500, "internal server error; request id " + request.request_id);
    response.log_fields["error_code"] = "internal";
    response.log_fields["error"] = e.what();
    return response;
  }
}

void ServerCore::accept() {
  acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
    if (stopping || !acceptor.is_open()) return;
    if (ec) {
      // Out of file descriptors (or a connection reset before accept): keep serving the
      // connections there are, and try again shortly rather than spinning.
      spdlog::warn("accepting a connection failed: {}", ec.message());
      auto timer = std::make_shared<asio::steady_timer>(acceptor.get_executor(), std::chrono::milliseconds(50));
      timer->async_wait([this, timer](beast::error_code) {
        if (!stopping) accept();
      });
      return;
    }
    if (connections.fetch_add(1) >= options.max_connections) {
      connections.fetch_sub(1);
      refuse_connection(std::move(socket));
    } else {
      beast::error_code ignored;
      // Headers and body leave in separate segments; without TCP_NODELAY the body would wait
      // for the client's delayed ACK (tens of milliseconds on every keep-alive request).
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(*this, std::move(socket))->start();
    }
    accept();
  });
}

// Over max_connections: one best-effort, non-blocking 503 into the fresh socket's send buffer,
// then close. No session, no timer, no thread.
void ServerCore::refuse_connection(tcp::socket socket) {
  static constexpr std::string_view kRefusal =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
      "Connection: close\r\nContent-Length: 53\r\n\r\n{\"error\":\"too many connections; retry in one second\"}";
  static_assert(kRefusal.size() - kRefusal.find("\r\n\r\n") - 4 == 53);
  beast::error_code ignored;
  socket.non_blocking(true, ignored);
  socket.write_some(asio::buffer(kRefusal.data(), kRefusal.size()), ignored);
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
  spdlog::warn("refused a connection: {} connections are open (max_connections)", options.max_connections);
}

int HttpServer::bind() {
  Impl& impl = *impl_;
  const std::string& host = impl.options.host;
  const int port = impl.options.port;
  const std::string where = host + ":" + (port == 0 ? std::string("(any port)") : std::to_string(port));
  beast::error_code ec;
  tcp::resolver resolver(impl.io);
  const auto endpoints = resolver.resolve(host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) throw Error(ErrorCode::kIoError, "cannot listen on " + where + ": " + ec.message());
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  impl.acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl.acceptor.bind(endpoint, ec);
  if (!ec) impl.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    impl.acceptor.close();
    throw Error(ErrorCode::kIoError,
                "cannot listen on " + where + " (" + ec.message() + ": address in use, or not an address of this machine)");
  }
  return impl.acceptor.local_endpoint().port();
}

void HttpServer::serve() {
  Impl& impl = *impl_;
  if (!impl.acceptor.is_open()) throw Error(ErrorCode::kInternal, "HttpServer::serve() before bind()");
  asio::post(impl.acceptor.get_executor(), [&impl] { impl.accept(); });
  impl.is_running = true;
  // The I/O threads run until no connection, accept or handler is left (stop()).
  std::vector<std::thread> others;
  for (int i = 1; i < std::max(1, impl.options.io_threads); ++i) others.emplace_back([&impl] { impl.io.run(); });
  impl.io.run();
  for (std::thread& t : others) t.join();
  impl.is_running = false;
}

void HttpServer::stop() {
  Impl& impl = *impl_;
  asio::post(impl.acceptor.get_executor(), [&impl] {
    if (impl.stopping.exchange(true)) return;
    beast::error_code ignored;
    impl.acceptor.close(ignored);
    std::vector<std::shared_ptr<Session>> open;
    {
      std::lock_guard lock(impl.sessions_mutex);
      for (auto& [raw, weak] : impl.sessions)
        if (auto session = weak.lock()) open.push_back(std::move(session));
    }
    for (auto& session : open) session->stop();
  });
}

bool HttpServer::running() const { return impl_->is_running; }

}  // namespace dermcds::service
