// HTTP-level faults against the real pms-derm-cds on loopback (issue 13): slow clients, bodies
// over the limit (chunked too), header floods, pipelining with bodies, Content-Length cases, a
// POST without Content-Length, connection limits and a huge field in an error. Requests are
// written byte for byte on raw sockets, since an HTTP client library would refuse to send most
// of them. Every case is bounded: a fixed number of connections and bytes, and a socket timeout
// that turns a hung server into a failure rather than a hung test.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <thread>

#include "service_test_support.hpp"

namespace dermcds::test {
namespace {

constexpr const char* kKey = "s3cret-admin-key-for-fault-tests";
constexpr std::size_t kMaxBody = 1u << 20;  // --max-body-bytes of the shared server
constexpr std::size_t kMaxHeader = 8192;    // --max-header-bytes of the shared server

struct RawResponse {
  int status = -1;                             // -1: the connection closed or timed out before a whole response came
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

// A plain TCP connection with a receive timeout; reads responses with Content-Length, which is
// how pms-derm-cds sends every response.
class RawConnection {
 public:
  explicit RawConnection(int port, std::chrono::seconds timeout = std::chrono::seconds(20)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{static_cast<time_t>(timeout.count()), 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }

  // False once the server has closed the connection (a send then fails).
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  RawResponse read_response() {
    RawResponse response;
    std::size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return response;
    const std::string head = buffer_.substr(0, header_end);
    buffer_.erase(0, header_end + 4);
    std::istringstream lines(head);
    std::string line;
    std::getline(lines, line);
    if (line.rfind("HTTP/1.", 0) != 0 || line.size() < 12) return response;
    const int status = std::stoi(line.substr(9, 3));
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      response.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    }
    const std::size_t length = std::stoul(response.headers.count("content-length") ? response.headers["content-length"] : "0");
    while (buffer_.size() < length)
      if (!fill()) return response;
    response.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    response.status = status;
    return response;
  }

  // Whether the server closes the connection (EOF or reset) within `limit`; bytes it sends
  // first (an error response) are read and dropped.
  bool closed_within(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (::poll(&p, 1, static_cast<int>(std::max<long>(1, left.count()))) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return true;
    }
    return false;
  }

  // Whether the server still holds the connection open without having answered anything.
  bool open_and_silent() {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }

 private:
  bool fill() {
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

std::string request(const std::string& method, const std::string& target, const std::string& extra_headers = "",
                    const std::string& body = "", bool content_length = true) {
  std::string out = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers;
  if (content_length) out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return out + "\r\n" + body;
}

std::string chunked(const std::string& body, std::size_t chunk_size) {
  std::string out;
  for (std::size_t at = 0; at < body.size(); at += chunk_size) {
    const std::size_t n = std::min(chunk_size, body.size() - at);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", n);
    out += size + body.substr(at, n) + "\r\n";
  }
  return out + "0\r\n\r\n";
}

std::vector<double> probabilities_in(const std::string& body) { return probabilities_of(json::parse(body)); }

class HttpFaults : public ::testing::Test {
 protected:
  // One server for the suite, started by the first test (start_server names its work directory
  // after the running test, which SetUpTestSuite does not have).
  void SetUp() override {
    if (server_) return;
    StartOptions options;
    options.arguments = {"--model",
                         "tiny",
                         "--default-model",
                         "tiny",
                         "--max-body-bytes",
                         std::to_string(kMaxBody),
                         "--max-header-bytes",
                         std::to_string(kMaxHeader),
                         "--header-timeout",
                         "6"};
    options.environment["DERMCDS_ADMIN_KEY"] = kKey;
    server_ = start_server(options).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static int port() { return server_->port(); }
  // Reference 0 of the fixture (make_service_repository.py): an image and numpy's probabilities.
  static json reference(std::size_t i) { return service_references()[i]; }
  static std::string image_bytes(std::size_t i) { return file_text(reference(i)["image"].get<std::string>()); }
  static std::string image_type(std::size_t i) { return content_type_of(reference(i)["image"].get<std::string>()); }
  static std::vector<double> expected(std::size_t i) { return reference(i)["probabilities"]["1"].get<std::vector<double>>(); }

  static ServerProcess* server_;
};

ServerProcess* HttpFaults::server_ = nullptr;

// 200 connections, more than the old server's 64 threads, each sending its header one line at a
// time: liveness and classification are still answered while every one of them is held open,
// and each is closed once its header has taken longer than --header-timeout.
TEST_F(HttpFaults, SlowHeaderClientsHoldNoWorker) {
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 200; ++i) {
    slow.push_back(std::make_unique<RawConnection>(port()));
    ASSERT_TRUE(slow.back()->connected()) << "connection " << i;
    ASSERT_TRUE(slow.back()->send("GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  }
  for (auto& c : slow) ASSERT_TRUE(c->send("X-Slow: 1\r\n"));

  RawConnection probe(port(), std::chrono::seconds(5));
  ASSERT_TRUE(probe.send(request("GET", "/v2/health/live")));
  EXPECT_EQ(probe.read_response().status, 200);
  RawConnection classify(port());
  ASSERT_TRUE(classify.send(request("POST", "/v1/classify", "Content-Type: " + image_type(0) + "\r\n", image_bytes(0))));
  const RawResponse answer = classify.read_response();
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_LE(max_abs_difference(probabilities_in(answer.body), expected(0)), 1e-4);
  // The answers above came while the slow clients were still connected, not after they were dropped.
  int still_open = 0;
  for (auto& c : slow) still_open += c->open_and_silent() ? 1 : 0;
  EXPECT_EQ(still_open, 200);

  // Each keeps sending, but its header never ends: the server closes it (6 s + margin).
  int closed = 0;
  for (auto& c : slow) {
    c->send("X-Slow: 2\r\n");
    closed += c->closed_within(std::chrono::seconds(30)) ? 1 : 0;
  }
  EXPECT_EQ(closed, 200);
}

// A connection that sends nothing at all is closed as well.
TEST_F(HttpFaults, SilentConnectionIsClosed) {
  RawConnection silent(port());
  EXPECT_TRUE(silent.closed_within(std::chrono::seconds(30)));
}

TEST_F(HttpFaults, ChunkedBodyOverTheLimitIs413) {
  RawConnection c(port());
  const std::string body(kMaxBody + 4096, 'x');
  c.send(request("POST", "/v1/classify", "Content-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n", "", false));
  c.send(chunked(body, 65536));  // may fail part-way once the server has refused and closed
  const RawResponse r = c.read_response();
  EXPECT_EQ(r.status, 413);
  EXPECT_TRUE(json::parse(r.body).contains("error"));
  EXPECT_TRUE(c.closed_within(std::chrono::seconds(20)));
}

TEST_F(HttpFaults, ContentLengthOverTheLimitIs413BeforeTheBody) {
  RawConnection c(port());
  c.send("POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: " + std::to_string(kMaxBody + 1) +
         "\r\n\r\n");
  EXPECT_EQ(c.read_response().status, 413);  // answered without a byte of the body
}

// Chunked bodies within the limit are served like any other: the same answer as numpy's.
TEST_F(HttpFaults, ChunkedImageIsClassified) {
  RawConnection c(port());
  c.send(request("POST", "/v1/classify", "Content-Type: " + image_type(1) + "\r\nTransfer-Encoding: chunked\r\n", "", false) +
         chunked(image_bytes(1), 1000));
  const RawResponse r = c.read_response();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_LE(max_abs_difference(probabilities_in(r.body), expected(1)), 1e-4);
}

TEST_F(HttpFaults, HeaderFloodIs431) {
  {
    RawConnection c(port());
    std::string flood = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 20000; ++i) flood += "X-Flood-" + std::to_string(i) + ": y\r\n";
    c.send(flood + "\r\n");
    EXPECT_EQ(c.read_response().status, 431);
    EXPECT_TRUE(c.closed_within(std::chrono::seconds(20)));
  }
  {
    RawConnection c(port());
    c.send("GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Long: " + std::string(kMaxHeader * 4, 'a') + "\r\n\r\n");
    EXPECT_EQ(c.read_response().status, 431);
  }
  {
    RawConnection c(port());  // a request line alone over the limit
    c.send("GET /" + std::string(kMaxHeader * 2, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(c.read_response().status, 431);
  }
  RawConnection after(port());
  after.send(request("GET", "/v2/health/live"));
  EXPECT_EQ(after.read_response().status, 200);
}

// Several requests in one write, with bodies: answered in order, none lost, none parsed out of
// another's body.
TEST_F(HttpFaults, PipelinedRequestsWithBodiesAreAnsweredInOrder) {
  RawConnection c(port());
  std::string burst;
  const std::vector<std::size_t> images = {0, 1, 2, 0};
  for (std::size_t i : images) {
    burst += request("POST", "/v1/classify", "Content-Type: " + image_type(i) + "\r\nX-Request-Id: pipe-" + std::to_string(i) + "\r\n",
                     image_bytes(i));
    burst += request("GET", "/v2/health/live");
  }
  ASSERT_TRUE(c.send(burst));
  for (std::size_t i : images) {
    const RawResponse classified = c.read_response();
    ASSERT_EQ(classified.status, 200) << classified.body;
    EXPECT_EQ(classified.headers.at("x-request-id"), "pipe-" + std::to_string(i));
    EXPECT_LE(max_abs_difference(probabilities_in(classified.body), expected(i)), 1e-4) << "image " << i;
    EXPECT_EQ(c.read_response().status, 200);
  }
}

TEST_F(HttpFaults, KeepAliveServesManyRequestsOnOneConnection) {
  RawConnection c(port());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(c.send(request("GET", "/v2/health/ready")));
    ASSERT_EQ(c.read_response().status, 200) << "request " << i;
  }
  ASSERT_TRUE(c.send(request("GET", "/v2/health/live", "Connection: close\r\n")));
  EXPECT_EQ(c.read_response().status, 200);
  EXPECT_TRUE(c.closed_within(std::chrono::seconds(20)));
}

TEST_F(HttpFaults, InvalidOrRepeatedContentLengthIs400) {
  const std::vector<std::string> cases = {
      "Content-Length: 2\r\nContent-Length: 3\r\n",
      "Content-Length: 2\r\nContent-Length: 2\r\n",
      "Content-Length: 2, 3\r\n",
      "Content-Length: abc\r\n",
      "Content-Length: -1\r\n",
      "Content-Length: 99999999999999999999999999\r\n",
      "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
      "Transfer-Encoding: gzip\r\n",
  };
  for (const std::string& headers : cases) {
    RawConnection c(port());
    c.send("POST /v2/repository/index HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + std::string(kKey) + "\r\n" + headers + "\r\n{}");
    const RawResponse r = c.read_response();
    EXPECT_EQ(r.status, 400) << headers;
    EXPECT_TRUE(c.closed_within(std::chrono::seconds(20))) << headers;
  }
}

// issue 12 item 3: how `curl -X POST` sends it. An empty body, answered at once.
TEST_F(HttpFaults, PostWithoutContentLengthIsAnEmptyBody) {
  RawConnection c(port(), std::chrono::seconds(10));
  c.send("POST /v2/repository/index HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + std::string(kKey) + "\r\n\r\n");
  const RawResponse r = c.read_response();
  ASSERT_EQ(r.status, 200) << r.body;
  const json index = json::parse(r.body);
  ASSERT_TRUE(index.is_array());
  bool tiny = false;
  for (const auto& entry : index) tiny = tiny || entry.value("name", "") == "tiny";
  EXPECT_TRUE(tiny) << r.body;
  // The connection stays usable: the next request on it is answered too.
  c.send(request("GET", "/v2/health/live"));
  EXPECT_EQ(c.read_response().status, 200);
}

// A 900 kB form field that an error message quotes comes back cut, not in full.
TEST_F(HttpFaults, HugeFieldIsNotEchoed) {
  const std::string boundary = "----dermcds-fault-test";
  const std::string model(900000, 'm');
  const std::string body = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n" + model + "\r\n--" + boundary +
                           "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n"
                           "Content-Type: image/jpeg\r\n\r\n" +
                           image_bytes(0) + "\r\n--" + boundary + "--\r\n";
  RawConnection c(port());
  c.send(request("POST", "/v1/classify", "Content-Type: multipart/form-data; boundary=" + boundary + "\r\n", body));
  const RawResponse r = c.read_response();
  EXPECT_GE(r.status, 400);
  EXPECT_LT(r.status, 500);
  EXPECT_LE(r.body.size(), 4096u);
  EXPECT_TRUE(json::parse(r.body).contains("error"));
}

TEST_F(HttpFaults, MalformedMultipartIs400) {
  RawConnection c(port());
  c.send(request("POST", "/v1/classify", "Content-Type: multipart/form-data; boundary=abc\r\n",
                 "--abc\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nno closing delimiter"));
  EXPECT_EQ(c.read_response().status, 400);
}

TEST_F(HttpFaults, HeadAnswersWithoutBody) {
  RawConnection c(port());
  c.send(request("HEAD", "/v2/health/live", "", "", false) + request("GET", "/v2/health/live"));
  EXPECT_EQ(c.read_response().status, 200);
  EXPECT_EQ(c.read_response().status, 200);  // nothing of a body was left to confuse the second
}

// Beyond --max-connections a new connection is answered 503 and closed; the others still work.
TEST(HttpConnectionLimit, ExtraConnectionsAre503) {
  auto server = start_server_with({"--model", "tiny", "--default-model", "tiny", "--max-connections", "16"});
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 16; ++i) held.push_back(std::make_unique<RawConnection>(server->port()));
  // Accepted in order after those 16: over the limit.
  RawConnection extra(server->port());
  const RawResponse refused = extra.read_response();
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.headers.count("retry-after"), 1u);
  // The held ones are served.
  held.front()->send(request("GET", "/v2/health/live"));
  EXPECT_EQ(held.front()->read_response().status, 200);
  held.clear();
  // Once they are closed, new connections are served again (the server notices the closes
  // asynchronously, so a bounded number of attempts).
  int status = -1;
  for (int attempt = 0; attempt < 100 && status != 200; ++attempt) {
    RawConnection again(server->port());
    again.send(request("GET", "/v2/health/live"));
    status = again.read_response().status;
    if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, 200);
}

}  // namespace
}  // namespace dermcds::test
