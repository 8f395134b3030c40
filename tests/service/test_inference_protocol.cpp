// The Open Inference Protocol (KServe v2) endpoints: field names, status codes, error shape, an
// infer call whose output equals the library's own output for the same tensor, the binary
// tensor extension (bit-for-bit the JSON answer), and sizes and numbers checked before use.
#include <cstring>
#include <future>
#include <limits>

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
  // Known to the repository but not loaded: false (4xx); unknown: 404. Like every 4xx of the
  // protocol, each carries the error object.
  expect_protocol_error(client->Get("/v2/models/tiny/versions/2/ready"), 400);
  expect_protocol_error(client->Get("/v2/models/tiny-conv/ready"), 400);
  expect_protocol_error(client->Get("/v2/models/nonexistent/ready"), 404);
  expect_protocol_error(client->Get("/v2/models/tiny/versions/9/ready"), 404);
}

TEST(InferenceProtocol, ServerAndModelMetadata) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  const json server_metadata = body_of(client->Get("/v2"));
  EXPECT_EQ(server_metadata["name"], "pms-derm-cds");
  EXPECT_TRUE(server_metadata["version"].is_string());
  EXPECT_EQ(server_metadata["extensions"], json::array({"model_repository", "classification", "binary_tensor_data"}));
  EXPECT_EQ(body_of(client->Get("/v2/")), server_metadata);  // the specification's own path

  const json expected = {{"name", "tiny"},
                         {"versions", {"1"}},
                         {"platform", "onnxruntime_onnx"},
                         {"inputs",
                          {{{"name", "image"}, {"datatype", "FP32"}, {"shape", {-1, 3, 64, 64}}},
                           {{"name", "image_bytes"}, {"datatype", "BYTES"}, {"shape", {-1}}}}},
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
      for (int y = 0; y < 64; ++y, k += 64) rows.push_back(std::vector<float>(input.data.begin() + k, input.data.begin() + k + 64));
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

// --- the binary tensor extension ------------------------------------------------------------

namespace dermcds::test {
namespace {

std::string raw_floats(const std::vector<float>& values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());  // the test host is little-endian, as the wire
  return bytes;
}

// A binary request: the JSON header, then the raw input.
struct BinaryRequest {
  std::string body;
  std::size_t header_length = 0;
};
BinaryRequest binary_request(json header, const std::string& binary) {
  BinaryRequest out;
  out.body = header.dump();
  out.header_length = out.body.size();
  out.body += binary;
  return out;
}

httplib::Result post_binary(httplib::Client& client, const BinaryRequest& request, const std::string& header_length = "",
                            const char* path = "/v2/models/tiny/infer") {
  const httplib::Headers headers = {
      {"Inference-Header-Content-Length", header_length.empty() ? std::to_string(request.header_length) : header_length}};
  return client.Post(path, headers, request.body, "application/octet-stream");
}

json binary_header(const Tensor& tensor, std::size_t binary_size) {
  return {
      {"id", "case-18"},
      {"inputs", {{{"name", "image"}, {"shape", tensor.shape}, {"datatype", "FP32"}, {"parameters", {{"binary_data_size", binary_size}}}}}},
      {"outputs", {{{"name", "logits"}, {"parameters", {{"binary_data", true}}}}}}};
}

// The JSON header and the binary section of a binary response, split by its own header length.
std::pair<json, std::string> split_binary_response(const httplib::Result& result) {
  const std::size_t length = std::stoul(result->get_header_value("Inference-Header-Content-Length"));
  return {json::parse(result->body.substr(0, length)), result->body.substr(length)};
}

std::vector<float> floats_of(const std::string& bytes) {
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

TEST(BinaryTensors, BinaryInAndOutEqualsTheJsonAnswerBitForBit) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  const auto classifier = fixture_classifier();
  const auto photos = real_photographs();
  const Tensor input = prepared_batch(*classifier, {photos[0], photos[2]});

  const json by_json = body_of(client->Post("/v2/models/tiny/infer", infer_body(input, input.data).dump(), "application/json"));
  const auto expected = by_json["outputs"][0]["data"].get<std::vector<float>>();
  ASSERT_EQ(expected.size(), 16u);
  EXPECT_NE(expected[0], expected[8]);  // two photographs, two answers

  const std::string raw = raw_floats(input.data);
  const auto result = post_binary(*client, binary_request(binary_header(input, raw.size()), raw));
  ASSERT_EQ(status_of(result), 200) << (result ? result->body.substr(0, 300) : "");
  EXPECT_EQ(result->get_header_value("Content-Type"), "application/octet-stream");
  const auto [header, binary] = split_binary_response(result);
  EXPECT_EQ(header["id"], "case-18");
  const json& output = header["outputs"][0];
  EXPECT_EQ(output["datatype"], "FP32");
  EXPECT_EQ(output["shape"], json::array({2, 8}));
  EXPECT_FALSE(output.contains("data"));
  EXPECT_EQ(output["parameters"]["binary_data_size"], 16 * 4);
  ASSERT_EQ(binary.size(), 16u * 4);
  EXPECT_EQ(floats_of(binary), expected);

  // Binary in, JSON out; and JSON in, binary out (binary_data_output for every output).
  json json_out = binary_header(input, raw.size());
  json_out.erase("outputs");
  const auto mixed = post_binary(*client, binary_request(json_out, raw));
  ASSERT_EQ(status_of(mixed), 200);
  EXPECT_FALSE(mixed->has_header("Inference-Header-Content-Length"));
  EXPECT_EQ(body_of(mixed)["outputs"][0]["data"].get<std::vector<float>>(), expected);
  json binary_out = infer_body(input, input.data);
  binary_out.erase("outputs");
  binary_out["parameters"] = {{"binary_data_output", true}};
  const auto reverse = client->Post("/v2/models/tiny/infer", binary_out.dump(), "application/json");
  ASSERT_EQ(status_of(reverse), 200);
  EXPECT_EQ(floats_of(split_binary_response(reverse).second), expected);
}

TEST(BinaryTensors, ClassificationOutputInBinaryIsLengthPrefixedStrings) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  const Tensor input = prepared_batch(*fixture_classifier(), {real_photographs()[1]});
  json request = infer_body(input, input.data);
  request["outputs"] = {{{"name", "logits"}, {"parameters", {{"classification", 2}}}}};
  const auto strings = body_of(client->Post("/v2/models/tiny/infer", request.dump(), "application/json"))["outputs"][0]["data"];
  ASSERT_EQ(strings.size(), 2u);
  request["outputs"][0]["parameters"]["binary_data"] = true;
  const auto result = client->Post("/v2/models/tiny/infer", request.dump(), "application/json");
  ASSERT_EQ(status_of(result), 200);
  const auto [header, binary] = split_binary_response(result);
  EXPECT_EQ(header["outputs"][0]["datatype"], "BYTES");
  // BYTES elements: a 4-byte little-endian length, then the bytes.
  std::string expected;
  for (const auto& s : strings) {
    const std::string text = s.get<std::string>();
    const auto length = static_cast<std::uint32_t>(text.size());
    expected.append(reinterpret_cast<const char*>(&length), 4);
    expected += text;
  }
  EXPECT_EQ(binary, expected);
  EXPECT_EQ(header["outputs"][0]["parameters"]["binary_data_size"], expected.size());
}

TEST(BinaryTensors, EverySizeIsCheckedAgainstTheBody) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  const Tensor ok = Tensor::zeros({1, 3, 64, 64});
  const std::string raw = raw_floats(ok.data);
  const BinaryRequest good = binary_request(binary_header(ok, raw.size()), raw);
  ASSERT_EQ(status_of(post_binary(*client, good)), 200);

  // The header length beyond the body, not a number, or negative.
  expect_protocol_error(post_binary(*client, good, std::to_string(good.body.size() + 1)), 400);
  expect_protocol_error(post_binary(*client, good, "12abc"), 400);
  expect_protocol_error(post_binary(*client, good, "-5"), 400);
  // Truncated binary part: fewer bytes than binary_data_size.
  BinaryRequest truncated = good;
  truncated.body.resize(truncated.body.size() - 100);
  const auto short_result = post_binary(*client, truncated);
  expect_protocol_error(short_result, 400);
  EXPECT_NE(body_of(short_result)["error"].get<std::string>().find("binary_data_size"), std::string::npos);
  // More bytes than the inputs claim.
  expect_protocol_error(post_binary(*client, binary_request(binary_header(ok, raw.size()), raw + "xxxx")), 400);
  // binary_data_size that matches the body but not the shape.
  const std::string half = raw.substr(0, raw.size() / 2);
  const auto mismatch = post_binary(*client, binary_request(binary_header(ok, half.size()), half));
  expect_protocol_error(mismatch, 400);
  EXPECT_NE(body_of(mismatch)["error"].get<std::string>().find("needs 49152"), std::string::npos);
  // binary_data_size and data at once; a binary_data_size that is no count.
  json both = binary_header(ok, raw.size());
  both["inputs"][0]["data"] = ok.data;
  expect_protocol_error(post_binary(*client, binary_request(both, raw)), 400);
  json negative = binary_header(ok, 0);
  negative["inputs"][0]["parameters"]["binary_data_size"] = -4;
  expect_protocol_error(post_binary(*client, binary_request(negative, raw)), 400);
  // The JSON header cut short by its length.
  expect_protocol_error(post_binary(*client, good, std::to_string(good.header_length - 1)), 400);
  // Non-finite values in the binary data.
  std::vector<float> with_inf = ok.data;
  with_inf[7] = std::numeric_limits<float>::infinity();
  expect_protocol_error(post_binary(*client, binary_request(binary_header(ok, raw.size()), raw_floats(with_inf))), 400);
  with_inf[7] = std::numeric_limits<float>::quiet_NaN();
  expect_protocol_error(post_binary(*client, binary_request(binary_header(ok, raw.size()), raw_floats(with_inf))), 400);
  ASSERT_EQ(status_of(post_binary(*client, good)), 200);  // and the server is none the worse
}

// Encoded photographs as the BYTES input image_bytes: a 4-byte little-endian length, the bytes.
std::string bytes_tensor(const std::vector<std::filesystem::path>& images) {
  std::string out;
  for (const auto& image : images) {
    const std::string bytes = file_text(image);
    const auto length = static_cast<std::uint32_t>(bytes.size());
    out.append(reinterpret_cast<const char*>(&length), 4);
    out += bytes;
  }
  return out;
}

json image_bytes_header(std::int64_t count, std::size_t size) {
  return {{"inputs", {{{"name", "image_bytes"}, {"shape", {count}}, {"datatype", "BYTES"}, {"parameters", {{"binary_data_size", size}}}}}}};
}

TEST(BinaryTensors, ImageBytesAreDecodedAndPreprocessedAsV1Does) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  const auto photos = real_photographs();
  const std::vector<std::filesystem::path> images = {photos[0], photos[1]};  // a JPEG and a PNG
  // The tensor the library prepares from the same files: the same logits, bit for bit.
  const Tensor input = prepared_batch(*fixture_classifier(), images);
  const auto expected =
      body_of(client->Post("/v2/models/tiny/infer", infer_body(input, input.data).dump(), "application/json"))["outputs"][0]["data"]
          .get<std::vector<float>>();
  const std::string encoded = bytes_tensor(images);
  const auto result = post_binary(*client, binary_request(image_bytes_header(2, encoded.size()), encoded));
  ASSERT_EQ(status_of(result), 200) << (result ? result->body.substr(0, 300) : "");
  EXPECT_EQ(body_of(result)["outputs"][0]["data"].get<std::vector<float>>(), expected);
  EXPECT_NE(expected[0], expected[8]);

  // And through softmax, the independent numpy reference (Pillow + torchvision decoding and
  // preprocessing of the same files, as for /v1/classify).
  const json references = service_references();
  for (int row = 0; row < 2; ++row) {
    const auto probabilities = softmax({expected.data() + row * 8, 8});
    EXPECT_LE(max_abs_difference(std::vector<double>(probabilities.begin(), probabilities.end()),
                                 references[row]["probabilities"]["1"].get<std::vector<double>>()),
              1e-4);
  }

  // Refused: JSON strings, a corrupt photograph, lengths that disagree with the body, a count
  // that disagrees with the shape, a wrong datatype.
  json as_json = {{"inputs", {{{"name", "image_bytes"}, {"shape", {1}}, {"datatype", "BYTES"}, {"data", {"abc"}}}}}};
  expect_protocol_error(client->Post("/v2/models/tiny/infer", as_json.dump(), "application/json"), 400);
  const std::string corrupt = std::string("\x04\x00\x00\x00", 4) + "\xff\xd8\xff\x00";
  expect_protocol_error(post_binary(*client, binary_request(image_bytes_header(1, corrupt.size()), corrupt)), 400);
  std::string overlong = encoded;
  overlong[0] = '\xff';
  overlong[3] = '\x7f';
  expect_protocol_error(post_binary(*client, binary_request(image_bytes_header(2, overlong.size()), overlong)), 400);
  expect_protocol_error(post_binary(*client, binary_request(image_bytes_header(3, encoded.size()), encoded)), 400);
  expect_protocol_error(post_binary(*client, binary_request(image_bytes_header(1, encoded.size()), encoded)), 400);
  json wrong_type = image_bytes_header(2, encoded.size());
  wrong_type["inputs"][0]["datatype"] = "FP32";
  expect_protocol_error(post_binary(*client, binary_request(wrong_type, encoded)), 400);
}

// --- sizes and numbers checked before anything is allocated ---------------------------------

TEST(SizeChecks, HugeShapesAreRefusedBeforeAllocationOnJsonAndBinary) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  const std::vector<float> one_image(3 * 64 * 64, 0.5f);
  const std::string raw = raw_floats(one_image);
  struct Case {
    std::int64_t batch;
    const char* says;
  };
  // 1152921504606846977 x 3 x 64 x 64 wraps to a small number in 64 bits; 2^40 does not wrap
  // but exceeds any memory; both are refused by what they claim, not by what they would cost.
  const std::vector<Case> cases = {{1152921504606846977LL, "64-bit"},
                                   {std::int64_t{1} << 40, "max_request_images"},
                                   {std::int64_t{1} << 31, "max_request_images"},
                                   {std::numeric_limits<std::int64_t>::max(), "64-bit"},
                                   {100000, "max_request_images"},
                                   {65, "max_request_images"}};
  for (const Case& c : cases) {
    Tensor claimed;
    claimed.shape = {c.batch, 3, 64, 64};
    const auto by_json = client->Post("/v2/models/tiny/infer", infer_body(claimed, one_image).dump(), "application/json");
    expect_protocol_error(by_json, 400);
    EXPECT_NE(body_of(by_json)["error"].get<std::string>().find(c.says), std::string::npos) << body_of(by_json);
    const auto by_binary = post_binary(*client, binary_request(binary_header(claimed, raw.size()), raw));
    expect_protocol_error(by_binary, 400);
    EXPECT_NE(body_of(by_binary)["error"].get<std::string>().find(c.says), std::string::npos) << body_of(by_binary);
  }
  // The limit is the configuration's; the shape's element count against the data sent.
  Tensor two;
  two.shape = {2, 3, 64, 64};
  const auto short_data = client->Post("/v2/models/tiny/infer", infer_body(two, one_image).dump(), "application/json");
  expect_protocol_error(short_data, 400);
  EXPECT_NE(body_of(short_data)["error"].get<std::string>().find("12288 values; its shape [2,3,64,64] needs 24576"), std::string::npos)
      << body_of(short_data);
}

TEST(SizeChecks, NonFiniteJsonNumbersAreRefused) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  const Tensor ok = Tensor::zeros({1, 3, 64, 64});
  json request = infer_body(ok, ok.data);
  request["inputs"][0]["data"][5] = 1e39;  // beyond FP32: would be infinity, and the logits NaN
  const auto result = client->Post("/v2/models/tiny/infer", request.dump(), "application/json");
  expect_protocol_error(result, 400);
  EXPECT_NE(body_of(result)["error"].get<std::string>().find("not a finite FP32"), std::string::npos);
  request["inputs"][0]["data"][5] = -3.5e38;
  expect_protocol_error(client->Post("/v2/models/tiny/infer", request.dump(), "application/json"), 400);
  request["inputs"][0]["data"][5] = 3.4e38;  // the largest FP32 numbers are still numbers
  EXPECT_EQ(status_of(client->Post("/v2/models/tiny/infer", request.dump(), "application/json")), 200);
}

TEST(SizeChecks, BadRequestsNeverFailTheRequestsBatchedWithThem) {
  // A long batch window and a big batch: good and bad requests arrive inside one window, so a
  // bad one that reached the batch would share an inference with the good ones.
  const auto server =
      start_server_with({"--model", "tiny", "--default-model", "tiny", "--max-batch-size", "64", "--max-queue-delay-ms", "200"});
  const Tensor input = prepared_batch(*fixture_classifier(), {real_photographs()[0]});
  const std::string good = infer_body(input, input.data).dump();
  Tensor wrapped;
  wrapped.shape = {1152921504606846977LL, 3, 64, 64};
  const std::string bad = infer_body(wrapped, input.data).dump();
  std::vector<std::future<int>> goods, bads;
  for (int i = 0; i < 8; ++i) {
    goods.push_back(std::async(std::launch::async,
                               [&] { return status_of(client_for(*server)->Post("/v2/models/tiny/infer", good, "application/json")); }));
    bads.push_back(std::async(std::launch::async,
                              [&] { return status_of(client_for(*server)->Post("/v2/models/tiny/infer", bad, "application/json")); }));
  }
  for (auto& f : goods) EXPECT_EQ(f.get(), 200);
  for (auto& f : bads) EXPECT_EQ(f.get(), 400);
}

}  // namespace
}  // namespace dermcds::test
