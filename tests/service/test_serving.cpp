// Serving behaviour: dynamic batching, the bounded queue (503 + Retry-After), per-request time
// limits (504), graceful shutdown on SIGTERM, Prometheus metrics and the JSON log.
//
// No assertion here depends on timing. Where a test needs requests to be waiting in a queue, the
// batch window is set far longer than the test needs and the test watches the queue depth in
// /metrics before acting.
#include <csignal>
#include <future>
#include <regex>
#include <sstream>

#include "service_test_support.hpp"

namespace dermcds::test {
namespace {

// Classifies `count` photographs concurrently, one connection each.
std::vector<std::future<httplib::Result>> classify_concurrently(const ServerProcess& server, int count) {
  std::vector<std::future<httplib::Result>> results;
  for (int i = 0; i < count; ++i)
    results.push_back(std::async(std::launch::async, [&server, i] {
      const auto photos = real_photographs();
      return post_image(*client_for(server), photos[static_cast<std::size_t>(i) % photos.size()]);
    }));
  return results;
}

// The value of one series in a Prometheus text exposition; NaN when absent.
double metric(const std::string& exposition, const std::string& series) {
  std::istringstream lines(exposition);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return std::nan("");
}

double scrape(httplib::Client& client, const std::string& series) {
  const auto result = client.Get("/metrics");
  return result ? metric(result->body, series) : std::nan("");
}

// Waits (without a time limit of its own: ctest's timeout bounds it) until the model's queue
// holds `depth` requests.
void wait_for_queue_depth(httplib::Client& client, const std::string& model, int depth) {
  const std::string series = "dermcds_queue_depth{model=\"" + model + "\",version=\"1\",runtime=\"onnxruntime\"}";
  while (scrape(client, series) != depth) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

TEST(Serving, ConcurrentRequestsAreAnsweredByOneBatch) {
  const auto server =
      start_server_with({"--model", "tiny", "--default-model", "tiny", "--max-batch-size", "4", "--max-queue-delay-ms", "10000"});
  auto results = classify_concurrently(*server, 4);
  std::set<double> inference_times;
  for (auto& future : results) {
    const auto result = future.get();
    ASSERT_EQ(status_of(result), 200);
    const json body = body_of(result);
    EXPECT_EQ(body["batch_size"], 4);
    inference_times.insert(body["timings_ms"]["inference"].get<double>());
  }
  EXPECT_EQ(inference_times.size(), 1u);  // one inference answered all four
  const auto client = client_for(*server);
  EXPECT_EQ(scrape(*client, "dermcds_batch_size_count{model=\"tiny\",version=\"1\",runtime=\"onnxruntime\"}"), 1);
  EXPECT_EQ(scrape(*client, "dermcds_batch_size_sum{model=\"tiny\",version=\"1\",runtime=\"onnxruntime\"}"), 4);
}

TEST(Serving, WithoutBatchingEachRequestRunsAlone) {
  const auto server = start_server_with({"--model", "tiny", "--default-model", "tiny", "--no-batching"});
  for (auto& future : classify_concurrently(*server, 4)) {
    const auto result = future.get();
    ASSERT_EQ(status_of(result), 200);
    EXPECT_EQ(body_of(result)["batch_size"], 1);
  }
  const auto client = client_for(*server);
  EXPECT_EQ(scrape(*client, "dermcds_batch_size_count{model=\"tiny\",version=\"1\",runtime=\"onnxruntime\"}"), 4);
}

TEST(Serving, FullQueueAnswers503WithRetryAfter) {
  const auto server = start_server_with(
      {"--model", "tiny", "--default-model", "tiny", "--max-batch-size", "64", "--max-queue-delay-ms", "3000", "--max-queue-size", "2"});
  const auto client = client_for(*server);
  auto waiting = classify_concurrently(*server, 2);
  wait_for_queue_depth(*client, "tiny", 2);

  const auto refused = post_image(*client, real_photographs()[0]);
  ASSERT_EQ(status_of(refused), 503);
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  const json body = body_of(refused);
  EXPECT_EQ(body["code"], "resource_exhausted");
  EXPECT_EQ(body["request_id"], refused->get_header_value("X-Request-Id"));

  for (auto& future : waiting) {
    const auto result = future.get();
    ASSERT_EQ(status_of(result), 200);  // the queued requests are not harmed
    EXPECT_EQ(body_of(result)["batch_size"], 2);
  }
  EXPECT_EQ(scrape(*client, "dermcds_queue_rejections_total{model=\"tiny\",version=\"1\"}"), 1);
  EXPECT_EQ(scrape(*client, "dermcds_http_requests_total{endpoint=\"/v1/classify\",method=\"POST\",status=\"503\"}"), 1);
}

TEST(Serving, RequestPastItsTimeLimitIs504) {
  const auto server = start_server_with({"--model", "tiny", "--default-model", "tiny", "--max-batch-size", "8", "--max-queue-delay-ms",
                                         "2000", "--request-timeout-ms", "200"});
  const auto result = post_image(*client_for(*server), real_photographs()[0]);
  ASSERT_EQ(status_of(result), 504);
  EXPECT_EQ(body_of(result)["code"], "deadline_exceeded");
}

TEST(Serving, SigtermFinishesRequestsInProgress) {
  const auto server =
      start_server_with({"--model", "tiny", "--default-model", "tiny", "--max-batch-size", "64", "--max-queue-delay-ms", "10000"});
  auto in_progress = classify_concurrently(*server, 3);
  wait_for_queue_depth(*client_for(*server), "tiny", 3);

  server->send_signal(SIGTERM);
  for (auto& future : in_progress) {
    const auto result = future.get();
    ASSERT_EQ(status_of(result), 200);
    EXPECT_EQ(body_of(result)["batch_size"], 3);  // the shutdown ran the queue without waiting for the window
  }
  EXPECT_EQ(server->wait_for_exit(std::chrono::seconds(60)), 0);
  const std::string log = server->log();
  EXPECT_LT(log.find("\"event\":\"shutting_down\""), log.find("\"event\":\"stopped\""));
  // Gone: new connections are refused.
  httplib::Client late("127.0.0.1", server->port());
  EXPECT_FALSE(late.Get("/v2/health/live"));
}

TEST(Serving, MetricsAreValidPrometheusText) {
  const auto server = start_server_with({"--model", "tiny", "--default-model", "tiny", "--provider", "cuda"});
  const auto client = client_for(*server);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(status_of(post_image(*client, real_photographs()[static_cast<std::size_t>(i)])), 200);
  EXPECT_EQ(status_of(client->Post("/v1/classify", "not an image", "image/png")), 400);
  const auto result = client->Get("/metrics");
  ASSERT_EQ(status_of(result), 200);
  EXPECT_EQ(result->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string text = result->body;

  // Every line is a comment or `name{labels} value`, and every family is declared before use.
  const std::regex sample(R"(^([a-z_:][a-z0-9_:]*)(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|\+Inf|NaN)$)");
  const std::regex type(R"(^# TYPE ([a-z_:][a-z0-9_:]*) (counter|gauge|histogram)$)");
  std::set<std::string> declared;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, type))
      declared.insert(m[1]);
    else if (line.rfind("# HELP ", 0) == 0)
      continue;
    else if (std::regex_match(line, m, sample)) {
      const std::string family = std::regex_replace(m[1].str(), std::regex("_(bucket|sum|count)$"), "");
      EXPECT_TRUE(declared.count(m[1]) || declared.count(family)) << line;
    } else
      ADD_FAILURE() << "not exposition format: " << line;
  }

  EXPECT_EQ(metric(text, "dermcds_http_requests_total{endpoint=\"/v1/classify\",method=\"POST\",status=\"200\"}"), 3);
  EXPECT_EQ(metric(text, "dermcds_http_requests_total{endpoint=\"/v1/classify\",method=\"POST\",status=\"400\"}"), 1);
  EXPECT_EQ(metric(text, "dermcds_http_request_duration_seconds_count{endpoint=\"/v1/classify\"}"), 4);
  for (const char* stage : {"decode", "preprocess", "queue", "postprocess"})
    EXPECT_EQ(metric(text, std::string("dermcds_stage_duration_seconds_count{model=\"tiny\",version=\"1\",stage=\"") + stage + "\"}"), 3)
        << stage;
  EXPECT_GE(metric(text, "dermcds_stage_duration_seconds_count{model=\"tiny\",version=\"1\",stage=\"inference\"}"), 1);
  EXPECT_EQ(metric(text, "dermcds_images_total{model=\"tiny\",version=\"1\",runtime=\"onnxruntime\",provider=\"cpu\"}"), 3);
  EXPECT_EQ(metric(text, "dermcds_queue_depth{model=\"tiny\",version=\"1\",runtime=\"onnxruntime\"}"), 0);
  EXPECT_EQ(metric(text, "dermcds_model_active_version{model=\"tiny\"}"), 1);
  EXPECT_EQ(metric(text, "dermcds_model_ready{model=\"tiny\",version=\"1\"}"), 1);
  EXPECT_EQ(metric(text, "dermcds_model_ready{model=\"tiny\",version=\"2\"}"), 0);
  EXPECT_EQ(metric(text, "dermcds_model_loads_total{model=\"tiny\",version=\"1\",result=\"success\"}"), 1);
  // This ONNX Runtime build has no CUDA provider: the CUDA request fell back to the CPU, once
  // per load, and the result documents say so too.
  EXPECT_EQ(metric(text, "dermcds_cpu_fallback_events_total{model=\"tiny\",version=\"1\",runtime=\"onnxruntime\",requested=\"cuda\"}"), 1);
  const json listing = body_of(client->Get("/v1/models"));
  EXPECT_FALSE(listing["models"][0]["versions"][0]["loaded_runtimes"][0]["fallbacks"].empty());
}

TEST(Serving, LogIsJsonLinesWithRequestIdsAndNothingAboutThePatient) {
  const auto server = start_server_with({"--model", "tiny", "--default-model", "tiny"});
  const auto client = client_for(*server);
  const std::string photo = file_text(real_photographs()[0]);  // a JPEG: its header says "JFIF"
  ASSERT_NE(photo.find("JFIF"), std::string::npos);
  httplib::MultipartFormDataItems form = {{"image", photo, "Doe_Jane_1961-04-02_left_forearm.jpg", "image/jpeg"}};
  const auto ok = client->Post("/v1/classify", {{"X-Request-Id", "visit-4711"}}, form);
  ASSERT_EQ(status_of(ok), 200);
  const auto bad = client->Post("/v1/classify", {{"X-Request-Id", "visit-4712"}}, photo.substr(0, photo.size() / 3), "image/jpeg");
  ASSERT_EQ(status_of(bad), 400);
  EXPECT_EQ(server->stop(), 0);  // flushes and closes the log

  std::istringstream lines(server->log());
  std::map<std::string, json> requests;
  for (std::string line; std::getline(lines, line);) {
    const json entry = json::parse(line, nullptr, false);
    ASSERT_FALSE(entry.is_discarded()) << "not JSON: " << line;
    EXPECT_TRUE(entry.contains("ts") && entry.contains("level")) << line;
    if (entry.value("event", "") == "request") requests[entry["request_id"]] = entry;
  }
  ASSERT_TRUE(requests.count("visit-4711") && requests.count("visit-4712"));
  EXPECT_EQ(requests["visit-4711"]["status"], 200);
  EXPECT_EQ(requests["visit-4711"]["model"], "tiny");
  EXPECT_EQ(requests["visit-4712"]["status"], 400);
  EXPECT_EQ(requests["visit-4712"]["error_code"], "invalid_image");

  const std::string log = server->log();
  EXPECT_EQ(log.find("Doe_Jane"), std::string::npos);
  EXPECT_EQ(log.find("1961-04-02"), std::string::npos);
  EXPECT_EQ(log.find("JFIF"), std::string::npos);
}

TEST(Serving, PageAndApiDocumentAreServed) {
  const auto server = start_server_with({"--model", "tiny", "--default-model", "tiny"});
  const auto client = client_for(*server);
  const auto page = client->Get("/");
  ASSERT_EQ(status_of(page), 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'self'"), std::string::npos);
  EXPECT_EQ(page->body, file_text(source_dir() / "service" / "web" / "index.html"));
  EXPECT_EQ(client->Get("/app.js")->body, file_text(source_dir() / "service" / "web" / "app.js"));
  const auto api = client->Get("/openapi.yaml");
  ASSERT_EQ(status_of(api), 200);
  EXPECT_EQ(api->body, file_text(source_dir() / "docs" / "api" / "openapi.yaml"));
  // Every route the document lists exists on the server (no 404 from the router).
  std::istringstream lines(api->body);
  int paths = 0;
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (!std::regex_match(line, m, std::regex(R"(^  (/[^:]*):$)"))) continue;
    ++paths;
    std::string path = std::regex_replace(m[1].str(), std::regex(R"(\{name\})"), "tiny");
    path = std::regex_replace(path, std::regex(R"(\{version\})"), "1");
    const bool post = path.find("/infer") != std::string::npos || path.find("/repository") != std::string::npos || path == "/v1/classify" ||
                      path.rfind("/cds-services/", 0) == 0;
    const auto result = post ? client->Post(path.c_str(), "{}", "application/json") : client->Get(path.c_str());
    ASSERT_TRUE(result) << path;
    EXPECT_TRUE(result->status != 404 || body_of(result)["error"] != "no such endpoint (see /openapi.yaml)") << path;
  }
  EXPECT_GE(paths, 19);
}

}  // namespace
}  // namespace dermcds::test
