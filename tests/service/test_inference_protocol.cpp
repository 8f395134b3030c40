// The Open Inference Protocol (KServe v2) endpoints: field names, status codes, error shape, and
// an infer call whose output equals the library's own output for the same tensor.
#include "dermcds/classifier.hpp"
#include "dermcds/postprocess.hpp"
#include "service_test_support.hpp"

namespace dermcds::test {
namespace {

const std::vector<std::string> kTinyServer = {"--model", "tiny", "--default-model", "tiny"};

// Exactly the protocol's error object: {"error": "<message>"} and nothing else.
void expect_protocol_error(const httplib::Result& result, int status) {
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, status) << result->body;
  const json body = body_of(result);
  ASSERT_TRUE(body.is_object());
  EXPECT_EQ(body.size(), 1u) << body;
  ASSERT_TRUE(body.contains("error")) << body;
  EXPECT_TRUE(body["error"].is_string());
  EXPECT_FALSE(body["error"].get<std::string>().empty());
}

std::unique_ptr<Classifier> fixture_classifier() {
  ClassifierOptions options;
  options.package = fixture_repository() / "tiny" / "1";
  options.execution.provider = "cpu";
  return Classifier::create(options);
}

// Two real photographs prepared by the library: the tensor a client would send.
Tensor prepared_batch(const Classifier& classifier, const std::vector<std::filesystem::path>& images) {
  Tensor batch;
  const std::int64_t s = classifier.manifest().input.crop_size;
  batch.shape = {static_cast<std::int64_t>(images.size()), 3, s, s};
  for (const auto& image : images) {
    const PreparedImage prepared = classifier.prepare(read_file_bytes(image));
    batch.data.insert(batch.data.end(), prepared.input.begin(), prepared.input.end());
  }
  return batch;
}

json infer_body(const Tensor& tensor, const json& data) {
  return {{"id", "case-17"},
          {"inputs", {{{"name", "image"}, {"shape", tensor.shape}, {"datatype", "FP32"}, {"data", data}}}},
          {"outputs", {{{"name", "logits"}}}}};
}

TEST(InferenceProtocol, HealthAnswersByStatusCodeWithEmptyBody) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  for (const char* path : {"/v2/health/live", "/v2/health/ready", "/v2/models/tiny/ready", "/v2/models/tiny/versions/1/ready"}) {
    const auto result = client->Get(path);
    EXPECT_EQ(status_of(result), 200) << path;
    EXPECT_TRUE(result->body.empty()) << path;
  }
  // Known to the repository but not loaded: false (4xx); unknown: 404. Still no body.
  const auto not_loaded = client->Get("/v2/models/tiny/versions/2/ready");
  EXPECT_EQ(status_of(not_loaded), 400);
  EXPECT_TRUE(not_loaded->body.empty());
  EXPECT_EQ(status_of(client->Get("/v2/models/tiny-conv/ready")), 400);
  EXPECT_EQ(status_of(client->Get("/v2/models/nonexistent/ready")), 404);
  EXPECT_EQ(status_of(client->Get("/v2/models/tiny/versions/9/ready")), 404);
}

TEST(InferenceProtocol, ServerAndModelMetadata) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  const json server_metadata = body_of(client->Get("/v2"));
  EXPECT_EQ(server_metadata["name"], "pms-derm-cds");
  EXPECT_TRUE(server_metadata["version"].is_string());
  EXPECT_EQ(server_metadata["extensions"], json::array({"model_repository", "classification"}));

  const json expected = {{"name", "tiny"},
                         {"versions", {"1"}},
                         {"platform", "onnxruntime_onnx"},
                         {"inputs", {{{"name", "image"}, {"datatype", "FP32"}, {"shape", {-1, 3, 64, 64}}}}},
                         {"outputs", {{{"name", "logits"}, {"datatype", "FP32"}, {"shape", {-1, 8}}}}}};
  EXPECT_EQ(body_of(client->Get("/v2/models/tiny")), expected);
  EXPECT_EQ(body_of(client->Get("/v2/models/tiny/versions/1")), expected);
  expect_protocol_error(client->Get("/v2/models/tiny/versions/2"), 404);
  expect_protocol_error(client->Get("/v2/models/unknown"), 404);
}

TEST(InferenceProtocol, InferOutputEqualsTheLibrarysDirectOutput) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  const auto classifier = fixture_classifier();
  const auto photos = real_photographs();
  const Tensor input = prepared_batch(*classifier, {photos[0], photos[2]});
  const Tensor direct = classifier->infer(input);

  const auto result = client->Post("/v2/models/tiny/infer", infer_body(input, input.data).dump(), "application/json");
  ASSERT_EQ(status_of(result), 200) << (result ? result->body.substr(0, 300) : "");
  const json body = body_of(result);
  EXPECT_EQ(body["model_name"], "tiny");
  EXPECT_EQ(body["model_version"], "1");
  EXPECT_EQ(body["id"], "case-17");
  ASSERT_EQ(body["outputs"].size(), 1u);
  const json& output = body["outputs"][0];
  EXPECT_EQ(output["name"], "logits");
  EXPECT_EQ(output["datatype"], "FP32");
  EXPECT_EQ(output["shape"], json::array({2, 8}));
  const auto logits = output["data"].get<std::vector<float>>();
  ASSERT_EQ(logits.size(), direct.data.size());
  for (std::size_t i = 0; i < logits.size(); ++i) EXPECT_FLOAT_EQ(logits[i], direct.data[i]) << i;

  // And through softmax, the independent numpy reference for the same photographs.
  const json references = service_references();
  for (int row = 0; row < 2; ++row) {
    const auto probabilities = softmax({logits.data() + row * 8, 8});
    const auto expected = references[row == 0 ? 0 : 2]["probabilities"]["1"].get<std::vector<double>>();
    EXPECT_LE(max_abs_difference(std::vector<double>(probabilities.begin(), probabilities.end()), expected), 1e-4);
  }
  EXPECT_NE(logits[0], logits[8]);  // two photographs, two different answers

  // The same tensor written nested ([N][3][S][S]) is the same request.
  json nested = json::array();
  for (std::int64_t n = 0, k = 0; n < 2; ++n) {
    json channels = json::array();
    for (int c = 0; c < 3; ++c) {
      json rows = json::array();
      for (int y = 0; y < 64; ++y, k += 64)
        rows.push_back(std::vector<float>(input.data.begin() + k, input.data.begin() + k + 64));
      channels.push_back(std::move(rows));
    }
    nested.push_back(std::move(channels));
  }
  const json nested_body = body_of(client->Post("/v2/models/tiny/versions/1/infer", infer_body(input, nested).dump(), "application/json"));
  EXPECT_EQ(nested_body["outputs"][0]["data"], output["data"]);
}

TEST(InferenceProtocol, ClassificationExtensionReturnsTopClasses) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  const auto classifier = fixture_classifier();
  const Tensor input = prepared_batch(*classifier, {real_photographs()[0]});
  const Tensor direct = classifier->infer(input);
  json request = infer_body(input, input.data);
  request["outputs"] = {{{"name", "logits"}, {"parameters", {{"classification", 3}}}}};
  const json body = body_of(client->Post("/v2/models/tiny/infer", request.dump(), "application/json"));
  const json& output = body["outputs"][0];
  EXPECT_EQ(output["datatype"], "BYTES");
  EXPECT_EQ(output["shape"], json::array({1, 3}));
  std::vector<int> order(8);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return direct.data[a] > direct.data[b]; });
  const char* codes[] = {"MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC"};
  for (int k = 0; k < 3; ++k) {
    const std::string entry = output["data"][k];
    const std::string suffix = ":" + std::to_string(order[k]) + ":" + codes[order[k]];
    ASSERT_GT(entry.size(), suffix.size());
    EXPECT_EQ(entry.substr(entry.size() - suffix.size()), suffix) << entry;
    EXPECT_NEAR(std::stod(entry), direct.data[order[k]], 1e-5) << entry;
  }
}

TEST(InferenceProtocol, BadRequestsGetTheProtocolErrorShape) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  const Tensor ok = Tensor::zeros({1, 3, 64, 64});
  auto post = [&](const std::string& body, const char* path = "/v2/models/tiny/infer") {
    return client->Post(path, body, "application/json");
  };
  expect_protocol_error(post("{not json"), 400);
  expect_protocol_error(post(R"({"inputs": []})"), 400);

  json wrong_type = infer_body(ok, ok.data);
  wrong_type["inputs"][0]["datatype"] = "FP64";
  expect_protocol_error(post(wrong_type.dump()), 400);
  json wrong_shape = infer_body(Tensor::zeros({1, 3, 32, 32}), Tensor::zeros({1, 3, 32, 32}).data);
  expect_protocol_error(post(wrong_shape.dump()), 400);
  json nhwc = infer_body(ok, ok.data);
  nhwc["inputs"][0]["shape"] = {1, 64, 64, 3};
  expect_protocol_error(post(nhwc.dump()), 400);
  json short_data = infer_body(ok, std::vector<float>(100, 0.f));
  expect_protocol_error(post(short_data.dump()), 400);
  json strings = infer_body(ok, json::array({"a"}));
  expect_protocol_error(post(strings.dump()), 400);
  json wrong_name = infer_body(ok, ok.data);
  wrong_name["inputs"][0]["name"] = "pixels";
  expect_protocol_error(post(wrong_name.dump()), 400);
  json wrong_output = infer_body(ok, ok.data);
  wrong_output["outputs"][0]["name"] = "probabilities";
  expect_protocol_error(post(wrong_output.dump()), 400);
  json binary = infer_body(ok, ok.data);
  binary["inputs"][0]["parameters"] = {{"binary_data_size", 49152}};
  expect_protocol_error(post(binary.dump()), 400);
  expect_protocol_error(post(infer_body(ok, ok.data).dump(), "/v2/models/unknown/infer"), 404);
  expect_protocol_error(post(infer_body(ok, ok.data).dump(), "/v2/models/tiny/versions/2/infer"), 404);
}

}  // namespace
}  // namespace dermcds::test
