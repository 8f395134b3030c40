// Unit tests of the service's parts, in-process: error-to-status mapping, request ids, the
// inference protocol documents, Prometheus text, configuration, and the dynamic batcher on a
// real (tiny) classifier.
#include <cstring>
#include <fstream>
#include <limits>
#include <thread>

#include <gtest/gtest.h>

#include "batcher.hpp"
#include "config.hpp"
#include "dermcds/classifier.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "grpc/grpc_status.hpp"
#include "http_status.hpp"
#include "inference_protocol.hpp"
#include "metrics.hpp"
#include "request_id.hpp"
#include "test_support.hpp"

namespace dermcds::service {
namespace {

using nlohmann::json;

template <typename F>
ErrorCode error_code_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no dermcds::Error thrown";
  return ErrorCode::kInternal;
}

TEST(HttpStatus, EveryErrorCodeHasItsStatus) {
  const std::vector<std::pair<ErrorCode, int>> table = {
      {ErrorCode::kInvalidArgument, 400},  {ErrorCode::kNotFound, 404},          {ErrorCode::kUnsupportedFormat, 400},
      {ErrorCode::kInvalidImage, 400},     {ErrorCode::kImageTooLarge, 400},     {ErrorCode::kInvalidPackage, 500},
      {ErrorCode::kModelMismatch, 500},    {ErrorCode::kUnsupportedModel, 500},  {ErrorCode::kRuntimeUnavailable, 503},
      {ErrorCode::kRuntimeFailure, 500},   {ErrorCode::kIoError, 500},           {ErrorCode::kResourceExhausted, 503},
      {ErrorCode::kDeadlineExceeded, 504}, {ErrorCode::kInternal, 500},          {ErrorCode::kPermissionDenied, 500},
      {ErrorCode::kNoSpace, 507},          {ErrorCode::kFailedPrecondition, 409}};
  // Every code, the ones added later included (error.hpp numbers them from 1 to kLastErrorCode).
  EXPECT_EQ(table.size(), static_cast<std::size_t>(kLastErrorCode));
  for (const auto& [code, status] : table) {
    EXPECT_EQ(http_status_for(code), status) << to_string(code);
    EXPECT_EQ(message_is_public(code), status != 500) << to_string(code);
  }
  EXPECT_TRUE(wants_retry_after(503));
  EXPECT_FALSE(wants_retry_after(504));
}

TEST(GrpcStatus, EveryErrorCodeHasItsStatus) {
  using grpc::StatusCode;
  const std::vector<std::pair<ErrorCode, StatusCode>> table = {{ErrorCode::kInvalidArgument, StatusCode::INVALID_ARGUMENT},
                                                               {ErrorCode::kNotFound, StatusCode::NOT_FOUND},
                                                               {ErrorCode::kUnsupportedFormat, StatusCode::INVALID_ARGUMENT},
                                                               {ErrorCode::kInvalidImage, StatusCode::INVALID_ARGUMENT},
                                                               {ErrorCode::kImageTooLarge, StatusCode::INVALID_ARGUMENT},
                                                               {ErrorCode::kInvalidPackage, StatusCode::INTERNAL},
                                                               {ErrorCode::kModelMismatch, StatusCode::INTERNAL},
                                                               {ErrorCode::kUnsupportedModel, StatusCode::INTERNAL},
                                                               {ErrorCode::kRuntimeUnavailable, StatusCode::UNAVAILABLE},
                                                               {ErrorCode::kRuntimeFailure, StatusCode::INTERNAL},
                                                               {ErrorCode::kIoError, StatusCode::INTERNAL},
                                                               {ErrorCode::kResourceExhausted, StatusCode::RESOURCE_EXHAUSTED},
                                                               {ErrorCode::kDeadlineExceeded, StatusCode::DEADLINE_EXCEEDED},
                                                               {ErrorCode::kInternal, StatusCode::INTERNAL},
                                                               // The server's own files: not a permission the caller lacks (HTTP 500).
                                                               {ErrorCode::kPermissionDenied, StatusCode::INTERNAL},
                                                               // gRPC's code for "the entire file system is out of space" (HTTP 507).
                                                               {ErrorCode::kNoSpace, StatusCode::RESOURCE_EXHAUSTED},
                                                               // The serving rule: a version that may not serve (HTTP 409).
                                                               {ErrorCode::kFailedPrecondition, StatusCode::FAILED_PRECONDITION}};
  EXPECT_EQ(table.size(), static_cast<std::size_t>(kLastErrorCode));
  for (const auto& [code, status] : table) {
    EXPECT_EQ(grpc_code_for(code), status) << to_string(code);
    const grpc::Status sent = grpc_status_for(Error(code, "detail /internal/path"));
    // Internal failures do not send their message, as HTTP's 500 does not.
    EXPECT_EQ(sent.error_message() == "detail /internal/path", message_is_public(code)) << to_string(code);
  }
}

TEST(RequestId, KeepsPlausibleClientIdsAndReplacesOthers) {
  EXPECT_EQ(make_request_id("pms:visit-42_a.b"), "pms:visit-42_a.b");
  for (const std::string& bad :
       {std::string(""), std::string(65, 'a'), std::string("two words"), std::string("a\"b"), std::string("line\nbreak")}) {
    const std::string id = make_request_id(bad);
    EXPECT_EQ(id.size(), 32u) << bad;
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
  }
  EXPECT_NE(make_request_id(""), make_request_id(""));
}

ModelSignature tiny_signature() {
  ModelSignature s;
  s.input_name = "image";
  s.input_shape = {-1, 3, 2, 2};
  s.output_name = "logits";
  s.classes = 3;
  s.labels = {{"MEL", "Melanoma"}, {"NV", "Nevus"}, {"BCC", "Basal cell carcinoma"}};
  return s;
}

TEST(InferenceProtocol, ParsesFlatAndNestedData) {
  std::vector<float> values(12);
  for (int i = 0; i < 12; ++i) values[static_cast<std::size_t>(i)] = 0.5f * static_cast<float>(i);
  const json flat = {{"id", "7"}, {"inputs", {{{"name", "image"}, {"datatype", "FP32"}, {"shape", {1, 3, 2, 2}}, {"data", values}}}}};
  const InferRequest a = parse_infer_request(flat.dump(), tiny_signature());
  EXPECT_EQ(a.id, "7");
  EXPECT_EQ(a.input.shape, (std::vector<std::int64_t>{1, 3, 2, 2}));
  EXPECT_EQ(a.input.data, values);
  json nested = flat;
  nested["inputs"][0]["data"] = {{{{0, 0.5}, {1, 1.5}}, {{2, 2.5}, {3, 3.5}}, {{4, 4.5}, {5, 5.5}}}};
  EXPECT_EQ(parse_infer_request(nested.dump(), tiny_signature()).input.data, values);
}

TEST(InferenceProtocol, RefusesWhatTheModelDoesNotTake) {
  const json good = {{"inputs", {{{"name", "image"}, {"datatype", "FP32"}, {"shape", {2, 3, 2, 2}}, {"data", std::vector<float>(24)}}}}};
  auto refused = [&](const std::function<void(json&)>& change) {
    json request = good;
    change(request);
    return error_code_of([&] { parse_infer_request(request.dump(), tiny_signature()); });
  };
  EXPECT_EQ(refused([](json& r) { r["inputs"][0]["datatype"] = "INT8"; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused([](json& r) { r["inputs"][0]["shape"] = {2, 2, 2, 3}; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused([](json& r) { r["inputs"][0]["shape"] = {0, 3, 2, 2}; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused([](json& r) { r["inputs"][0]["shape"] = {2, 3, 2, -2}; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused([](json& r) { r["inputs"][0]["data"] = std::vector<float>(23); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused([](json& r) { r["inputs"][0]["name"] = "x"; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused([](json& r) { r["inputs"].push_back(r["inputs"][0]); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused([](json& r) { r["outputs"] = {{{"name", "probabilities"}}}; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused([](json& r) { r["parameters"] = {{"binary_data_output", "yes"}}; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused([](json& r) { r["inputs"][0]["data"][3] = 1e39; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused([](json& r) { r["inputs"][0]["shape"] = {1152921504606846977LL, 3, 2, 2}; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused([](json& r) { r["id"] = 7; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { parse_infer_request("[1,2]", tiny_signature()); }), ErrorCode::kInvalidArgument);
}

TEST(InferenceProtocol, ElementCountsAreOverflowChecked) {
  EXPECT_EQ(Tensor::checked_element_count({2, 3, 380, 380}), 866400);
  EXPECT_EQ(Tensor::checked_element_count({}), 1);
  EXPECT_EQ(Tensor::checked_element_count({0, std::numeric_limits<std::int64_t>::max(), 2}), 0);
  // 1152921504606846977 x 433200 wraps to 433200 x (2^60 + 1) mod 2^64: the request's claim
  // would otherwise look like a count for one image.
  EXPECT_EQ(Tensor::checked_element_count({1152921504606846977LL, 3, 380, 380}), std::nullopt);
  EXPECT_EQ(Tensor::checked_element_count({std::int64_t{1} << 40, 3, 380, 380}), (std::int64_t{1} << 40) * 433200);
  EXPECT_EQ(Tensor::checked_element_count({std::numeric_limits<std::int64_t>::max(), 2}), std::nullopt);
  EXPECT_EQ(Tensor::checked_element_count({4, -1}), std::nullopt);
}

TEST(InferenceProtocol, BatchesBeyondTheLimitAreRefusedBeforeTheirData) {
  const json request = {{"inputs", {{{"name", "image"}, {"datatype", "FP32"}, {"shape", {2, 3, 2, 2}}, {"data", std::vector<float>(24)}}}}};
  EXPECT_NO_THROW(parse_infer_request(request.dump(), tiny_signature(), TensorLimits{2}));
  try {
    parse_infer_request(request.dump(), tiny_signature(), TensorLimits{1});
    FAIL() << "a batch of 2 passed a limit of 1";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("at most 1 (max_request_images)"), std::string::npos) << e.what();
  }
}

TEST(InferenceProtocol, BinaryExtensionSplitsAndChecksTheBody) {
  const std::vector<float> values = {0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f, 9.f, 10.f, 11.f};
  const std::string raw(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  const json header = {
      {"inputs", {{{"name", "image"}, {"datatype", "FP32"}, {"shape", {1, 3, 2, 2}}, {"parameters", {{"binary_data_size", raw.size()}}}}}}};
  const std::string text = header.dump();
  const std::string body = text + raw;
  const RequestBody split = split_request_body(body, std::to_string(text.size()));
  EXPECT_EQ(split.binary.size(), raw.size());
  EXPECT_EQ(read_infer_request(split.document, split.binary, tiny_signature()).input.data, values);

  EXPECT_EQ(error_code_of([&] { split_request_body(body, std::to_string(body.size() + 1)); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { split_request_body(body, "1e3"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { split_request_body(body, ""); }), ErrorCode::kInvalidArgument);
  const std::string_view truncated = std::string_view(raw).substr(0, raw.size() - 1);
  EXPECT_EQ(error_code_of([&] { read_infer_request(split.document, truncated, tiny_signature()); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { read_infer_request(split.document, raw + "x", tiny_signature()); }), ErrorCode::kInvalidArgument);
  // The raw encoding of the answer: FP32 as it is, BYTES length-prefixed.
  OutputTensor fp32{"logits", "FP32", {1, 2}, {1.5f, -2.f}, {}, true};
  EXPECT_EQ(raw_bytes(fp32), std::string("\x00\x00\xc0\x3f\x00\x00\x00\xc0", 8));
  OutputTensor strings{"logits", "BYTES", {1, 2}, {}, {"ab", ""}, true};
  EXPECT_EQ(raw_bytes(strings), std::string("\x02\x00\x00\x00"
                                            "ab"
                                            "\x00\x00\x00\x00",
                                            10));
}

TEST(InferenceProtocol, ResponseCarriesTensorsAndClassifications) {
  InferRequest request;
  request.id = "abc";
  request.outputs = {{"logits", 0}, {"logits", 2}};
  const Tensor logits{{2, 3}, {0.1f, 2.0f, -1.0f, 3.0f, 3.5f, 0.0f}};
  const auto response = infer_response("m", "4", request, logits, tiny_signature());
  EXPECT_EQ(response["model_name"], "m");
  EXPECT_EQ(response["model_version"], "4");
  EXPECT_EQ(response["id"], "abc");
  EXPECT_EQ(response["outputs"][0]["shape"], json::array({2, 3}));
  EXPECT_EQ(response["outputs"][0]["data"].size(), 6u);
  EXPECT_EQ(response["outputs"][1]["datatype"], "BYTES");
  EXPECT_EQ(response["outputs"][1]["data"], json::array({"2.000000:1:NV", "0.100000:0:MEL", "3.500000:1:NV", "3.000000:0:MEL"}));
  InferRequest anonymous;
  EXPECT_FALSE(infer_response("m", "4", anonymous, logits, tiny_signature()).contains("id"));
}

// A package with the safety guard (docs/safety.md) has a second output, the OOD score [N,1]:
// returned with the logits when no output is named, by name otherwise, always as the raw score
// (classification does not apply to it), in JSON and in the binary extension alike.
TEST(InferenceProtocol, GuardOutputComesWithTheLogits) {
  ModelSignature signature = tiny_signature();
  signature.ood_output_name = "ood_score";
  const Tensor logits{{2, 3}, {0.1f, 2.0f, -1.0f, 3.0f, 3.5f, 0.0f}};
  const Tensor ood{{2, 1}, {0.25f, 7.5f}};

  const auto all = infer_response("m", "4", InferRequest{}, logits, signature, &ood);
  ASSERT_EQ(all["outputs"].size(), 2u);
  EXPECT_EQ(all["outputs"][0]["name"], "logits");
  EXPECT_EQ(all["outputs"][1]["name"], "ood_score");
  EXPECT_EQ(all["outputs"][1]["datatype"], "FP32");
  EXPECT_EQ(all["outputs"][1]["shape"], json::array({2, 1}));
  EXPECT_EQ(all["outputs"][1]["data"], json::array({0.25, 7.5}));
  // Without the guard, the logits alone (as before).
  EXPECT_EQ(infer_response("m", "4", InferRequest{}, logits, tiny_signature())["outputs"].size(), 1u);

  // By name, with classification asked of both: top-k for the logits, the raw score for the guard.
  const RequestedOutput guard = check_requested_output("ood_score", 2, false, signature);
  EXPECT_EQ(guard.name, "ood_score");
  EXPECT_EQ(guard.classification, 0);
  EXPECT_EQ(error_code_of([&] { check_requested_output("ood_score", 1, false, tiny_signature()); }), ErrorCode::kInvalidArgument);
  InferRequest named;
  named.outputs = {guard, check_requested_output("logits", 1, false, signature)};
  const auto picked = infer_response("m", "4", named, logits, signature, &ood);
  ASSERT_EQ(picked["outputs"].size(), 2u);
  EXPECT_EQ(picked["outputs"][0]["data"], json::array({0.25, 7.5}));
  EXPECT_EQ(picked["outputs"][1]["data"], json::array({"2.000000:1:NV", "3.500000:1:NV"}));

  // Binary: the JSON header, then the logits' 24 bytes and the score's 8, in output order.
  InferRequest binary;
  binary.binary_outputs = true;
  const ResponseBody body = infer_response_body("m", "4", binary, logits, signature, &ood);
  ASSERT_TRUE(body.header_length);
  const json header = json::parse(body.body.substr(0, *body.header_length));
  EXPECT_EQ(header["outputs"][1]["parameters"]["binary_data_size"], 8);
  ASSERT_EQ(body.body.size(), *body.header_length + 24 + 8);
  float score[2];
  std::memcpy(score, body.body.data() + *body.header_length + 24, sizeof score);
  EXPECT_EQ(score[0], 0.25f);
  EXPECT_EQ(score[1], 7.5f);
}

TEST(InferenceProtocol, MetadataListsTheGuardOutput) {
  ModelSignature signature = tiny_signature();
  signature.ood_output_name = "ood_score";
  const auto metadata = model_metadata("m", {"4"}, "onnxruntime", signature);
  ASSERT_EQ(metadata["outputs"].size(), 2u);
  EXPECT_EQ(metadata["outputs"][1]["name"], "ood_score");
  EXPECT_EQ(metadata["outputs"][1]["shape"], json::array({-1, 1}));
  EXPECT_EQ(metadata["platform"], "onnxruntime_onnx");
}

TEST(Metrics, RendersTheTextExpositionFormat) {
  MetricsRegistry registry;
  Counter& requests = registry.counter("t_requests_total", "Requests", {"route", "status"});
  Gauge& depth = registry.gauge("t_depth", "Depth", {});
  Histogram& latency = registry.histogram("t_seconds", "Latency", {"route"}, {0.1, 1});
  requests.increment({"/v1/classify", "200"});
  requests.increment({"/v1/classify", "200"}, 2);
  requests.increment({"/a\"b\\c", "500"});
  depth.set({}, 3);
  for (double v : {0.05, 0.1, 0.5, 7.0}) latency.observe({"/x"}, v);
  EXPECT_EQ(registry.render(),
            "# HELP t_requests_total Requests\n"
            "# TYPE t_requests_total counter\n"
            "t_requests_total{route=\"/a\\\"b\\\\c\",status=\"500\"} 1\n"
            "t_requests_total{route=\"/v1/classify\",status=\"200\"} 3\n"
            "# HELP t_depth Depth\n"
            "# TYPE t_depth gauge\n"
            "t_depth 3\n"
            "# HELP t_seconds Latency\n"
            "# TYPE t_seconds histogram\n"
            "t_seconds_bucket{route=\"/x\",le=\"0.1\"} 2\n"
            "t_seconds_bucket{route=\"/x\",le=\"1\"} 3\n"
            "t_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n"
            "t_seconds_sum{route=\"/x\"} 7.65\n"
            "t_seconds_count{route=\"/x\"} 4\n");
  EXPECT_EQ(error_code_of([&] { requests.increment({"only one label"}); }), ErrorCode::kInternal);
}

TEST(Config, FileValuesFlagsAndValidation) {
  test::TemporaryDirectory tmp;
  const auto file = tmp.path() / "service.json";
  std::ofstream(file) << R"({"port": 9000, "models": ["a", "b"], "max_batch_size": 16, "batching": false,
                             "provider_options": {"trt_fp16_enable": "1"}, "max_queue_delay_ms": 2.5, "device_id": 1})";
  const ServiceConfig config = read_config_file(file);
  EXPECT_EQ(config.port, 9000);
  EXPECT_EQ(config.models, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(config.max_batch_size, 16);
  EXPECT_EQ(config.provider_options.at("trt_fp16_enable"), "1");
  EXPECT_EQ(config.host, "127.0.0.1");  // untouched keys keep their defaults
  const ModelManagerOptions options = model_manager_options(config);
  EXPECT_EQ(options.execution.device_id, 1);  // reaches the runtime with the provider options
  EXPECT_EQ(options.execution.provider_options.at("trt_fp16_enable"), "1");
  EXPECT_EQ(options.batching.max_batch_size, 1);  // batching off wins over max_batch_size
  EXPECT_EQ(options.batching.max_queue_delay.count(), 0);

  std::ofstream(file) << R"({"prot": 9000})";
  try {
    read_config_file(file);
    ADD_FAILURE() << "unknown key accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("\"prot\""), std::string::npos) << e.what();
  }
  std::ofstream(file) << R"({"port": "9000"})";
  EXPECT_EQ(error_code_of([&] { read_config_file(file); }), ErrorCode::kInvalidArgument);
  std::ofstream(file) << R"({"max_queue_size": 1.5})";
  EXPECT_EQ(error_code_of([&] { read_config_file(file); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { read_config_file(tmp.path() / "absent.json"); }), ErrorCode::kNotFound);

  ServiceConfig bad;
  bad.max_batch_size = 0;
  EXPECT_EQ(error_code_of([&] { validate(bad); }), ErrorCode::kInvalidArgument);
  bad = {};
  bad.device_id = -1;
  EXPECT_EQ(error_code_of([&] { validate(bad); }), ErrorCode::kInvalidArgument);
  bad = {};
  bad.port = 70000;
  EXPECT_EQ(error_code_of([&] { validate(bad); }), ErrorCode::kInvalidArgument);
  validate(ServiceConfig{});  // the defaults are valid
}

TEST(Config, FlagsOverrideTheFileAndTheEnvironmentGivesTheKey) {
  test::TemporaryDirectory tmp;
  const auto file = tmp.path() / "service.json";
  std::ofstream(file) << R"({"port": 9000, "max_queue_size": 7, "admin_key": "from-file"})";
  ::setenv("DERMCDS_ADMIN_KEY", "from-environment", 1);
  std::vector<std::string> args = {"pms-derm-cds",  "--config",  file.string(),        "--port",   "9100",
                                   "--no-batching", "--runtime", "onnxruntime,tflite", "--device", "2"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  ServiceConfig config;
  int exit_code = -1;
  ASSERT_EQ(parse_command_line(static_cast<int>(argv.size()), argv.data(), config, exit_code), ParseOutcome::kRun);
  ::unsetenv("DERMCDS_ADMIN_KEY");
  EXPECT_EQ(config.port, 9100);         // flag over file
  EXPECT_EQ(config.max_queue_size, 7);  // file over default
  EXPECT_FALSE(config.batching);
  EXPECT_EQ(config.device_id, 2);
  EXPECT_EQ(config.runtimes, (std::vector<std::string>{"onnxruntime", "tflite"}));
  EXPECT_EQ(config.admin_key, "from-environment");    // environment over file
  EXPECT_EQ(describe(config)["admin_key"], "(set)");  // the key itself is never shown
}

// --- the batcher on a real classifier ---------------------------------------------------------

std::shared_ptr<const Classifier> tiny_classifier() {
  ClassifierOptions options;
  options.package = test::work_dir() / "service" / "repository" / "tiny" / "1";
  options.execution.provider = "cpu";
  return Classifier::create(options);
}

std::vector<PreparedImage> prepared_photographs(const Classifier& classifier) {
  std::vector<PreparedImage> out;
  for (const auto& photo : test::real_photographs()) out.push_back(classifier.prepare(read_file_bytes(photo)));
  return out;
}

Deadline far_future() { return std::chrono::steady_clock::now() + std::chrono::hours(1); }

struct Reports {
  std::mutex mutex;
  std::vector<BatchReport> batches;
  DynamicBatcher::Listener listener() {
    return [this](const BatchReport& r) {
      std::lock_guard lock(mutex);
      batches.push_back(r);
    };
  }
};

TEST(Batcher, GathersUpToTheBatchSizeAndAnswersEachRequestCorrectly) {
  const auto classifier = tiny_classifier();
  const auto images = prepared_photographs(*classifier);  // six photographs
  Reports reports;
  DynamicBatcher batcher(classifier, {4, std::chrono::seconds(30), 64}, reports.listener());
  std::vector<std::future<ClassifiedImage>> futures;
  for (const auto& image : images) futures.push_back(batcher.submit(image, far_future()));
  // Four fill a batch at once; the last two would wait out the window: flush them.
  while (batcher.queue_depth() > 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  batcher.flush();
  for (std::size_t i = 0; i < images.size(); ++i) {
    const ClassifiedImage answer = futures[i].get();
    const ClassificationResult alone = classifier->classify_batch({&images[i], 1}).front();
    ASSERT_EQ(answer.result.probabilities.size(), alone.probabilities.size());
    for (std::size_t c = 0; c < alone.probabilities.size(); ++c)
      EXPECT_NEAR(answer.result.probabilities[c], alone.probabilities[c], 1e-6) << "image " << i;
    EXPECT_EQ(answer.result.batch_size, i < 4 ? 4 : 2);
  }
  std::lock_guard lock(reports.mutex);
  ASSERT_EQ(reports.batches.size(), 2u);
  EXPECT_EQ(reports.batches[0].images, 4);
  EXPECT_EQ(reports.batches[1].images, 2);
  EXPECT_EQ(reports.batches[1].queue_ms.size(), 2u);
}

TEST(Batcher, FullQueueRefusesAndExpiredRequestsAreNotRun) {
  const auto classifier = tiny_classifier();
  const auto images = prepared_photographs(*classifier);
  DynamicBatcher batcher(classifier, {8, std::chrono::seconds(30), 2});
  auto first = batcher.submit(images[0], far_future());
  auto expired = batcher.submit(images[1], std::chrono::steady_clock::now() - std::chrono::seconds(1));
  EXPECT_FALSE(batcher.accepting());
  EXPECT_EQ(error_code_of([&] { batcher.submit(images[2], far_future()); }), ErrorCode::kResourceExhausted);
  batcher.flush();
  EXPECT_EQ(first.get().result.batch_size, 1);  // the expired request took no place in the batch
  EXPECT_EQ(error_code_of([&] { expired.get(); }), ErrorCode::kDeadlineExceeded);
  EXPECT_TRUE(batcher.accepting());
}

TEST(Batcher, DestructionRunsWhatIsQueued) {
  const auto classifier = tiny_classifier();
  const auto images = prepared_photographs(*classifier);
  std::vector<std::future<ClassifiedImage>> futures;
  {
    DynamicBatcher batcher(classifier, {16, std::chrono::seconds(30), 64});
    for (int i = 0; i < 3; ++i) futures.push_back(batcher.submit(images[static_cast<std::size_t>(i)], far_future()));
  }
  for (auto& f : futures) EXPECT_EQ(f.get().result.batch_size, 3);
}

TEST(Batcher, TensorRequestsAreConcatenatedAndSplitBack) {
  const auto classifier = tiny_classifier();
  const auto images = prepared_photographs(*classifier);
  auto tensor_of = [&](std::size_t first, std::size_t count) {
    Tensor t{{static_cast<std::int64_t>(count), 3, 64, 64}, {}};
    for (std::size_t i = first; i < first + count; ++i) t.data.insert(t.data.end(), images[i].input.begin(), images[i].input.end());
    return t;
  };
  DynamicBatcher batcher(classifier, {8, std::chrono::seconds(30), 64});
  auto a = batcher.submit(tensor_of(0, 2), far_future());
  auto b = batcher.submit(tensor_of(2, 3), far_future());
  batcher.flush();
  const InferredTensor first = a.get(), second = b.get();
  EXPECT_EQ(first.batch_images, 5);
  EXPECT_EQ(first.logits.shape, (std::vector<std::int64_t>{2, 8}));
  EXPECT_EQ(second.logits.shape, (std::vector<std::int64_t>{3, 8}));
  const Tensor direct = classifier->infer(tensor_of(2, 3));
  for (std::size_t i = 0; i < direct.data.size(); ++i) EXPECT_NEAR(second.logits.data[i], direct.data[i], 1e-5);
  EXPECT_EQ(error_code_of([&] { batcher.submit(Tensor::zeros({1, 64, 64, 3}), far_future()); }), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace dermcds::service
