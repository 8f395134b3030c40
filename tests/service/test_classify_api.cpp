// POST /v1/classify and GET /v1/models against the real server, checked against numpy + Pillow
// references (make_service_repository.py) that share no code with derm-cds.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "service_test_support.hpp"

namespace dermcds::test {
namespace {

const std::vector<std::string> kTinyServer = {"--model", "tiny,tiny-conv", "--default-model", "tiny"};

// The triage tier the fixture manifest's rules give these probabilities (labels in ISIC order:
// MEL NV BCC AK BKL DF VASC SCC), computed here independently of the library.
std::string expected_tier(const std::vector<double>& p) {
  if (p[0] + p[2] + p[7] >= 0.30) return "urgent_referral";
  if (p[0] + p[2] + p[7] + p[3] >= 0.15) return "dermatology_review";
  return "routine";
}

TEST(ClassifyApi, ImageBodiesMatchTheNumpyReference) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  std::vector<std::string> top_classes;
  for (const auto& reference : service_references()) {
    const std::filesystem::path image = reference["image"].get<std::string>();
    const auto result = post_image(*client, image);
    ASSERT_EQ(status_of(result), 200) << image << ": " << (result ? result->body : "");
    EXPECT_EQ(result->get_header_value("Content-Type"), "application/json");
    const json body = body_of(result);
    const auto expected = reference["probabilities"]["1"].get<std::vector<double>>();
    EXPECT_LE(max_abs_difference(probabilities_of(body), expected), 1e-4) << image;

    EXPECT_EQ(body["model_name"], "tiny");
    EXPECT_EQ(body["model_version"], "1");
    EXPECT_EQ(body["runtime"], "onnxruntime");
    EXPECT_EQ(body["execution_provider"], "cpu");
    EXPECT_EQ(body["precision"], "fp32");
    const auto argmax = std::max_element(expected.begin(), expected.end()) - expected.begin();
    EXPECT_EQ(body["top1"]["code"], body["probabilities"][argmax]["code"]) << image;
    EXPECT_EQ(body["triage"]["tier"], expected_tier(expected)) << image;
    EXPECT_EQ(body["request_id"], result->get_header_value("X-Request-Id"));
    for (const char* stage : {"decode", "preprocess", "inference", "postprocess", "total", "queue"})
      EXPECT_TRUE(body["timings_ms"].contains(stage)) << stage;
    top_classes.push_back(body["top1"]["code"]);
  }
  // The comparison means something only if the answers depend on the image.
  EXPECT_GT(std::set<std::string>(top_classes.begin(), top_classes.end()).size(), 1u);
}

TEST(ClassifyApi, MultipartFormCarriesImageAndModelFields) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  const auto reference = service_references()[1];  // coffee.png
  const std::filesystem::path image = reference["image"].get<std::string>();
  httplib::MultipartFormDataItems form = {
      {"image", file_text(image), "lesion.png", "image/png"}, {"model", "tiny", "", ""}, {"version", "1", "", ""}};
  const auto result = client->Post("/v1/classify", form);
  ASSERT_EQ(status_of(result), 200) << (result ? result->body : "");
  const json body = body_of(result);
  EXPECT_LE(max_abs_difference(probabilities_of(body), reference["probabilities"]["1"].get<std::vector<double>>()), 1e-4);

  // A form whose single file is not named "image" is still read; one with no file is refused.
  httplib::MultipartFormDataItems unnamed = {{"photo", file_text(image), "x.png", "application/octet-stream"}};
  EXPECT_EQ(status_of(client->Post("/v1/classify", unnamed)), 200);
  httplib::MultipartFormDataItems no_file = {{"model", "tiny", "", ""}};
  const auto refused = client->Post("/v1/classify", no_file);
  EXPECT_EQ(status_of(refused), 415);
  EXPECT_EQ(body_of(refused)["code"], "unsupported_media_type");
}

TEST(ClassifyApi, QueryParametersChooseModelAndRuntime) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  const auto image = real_photographs()[0];
  const json conv = body_of(post_image(*client, image, "?model=tiny-conv"));
  EXPECT_EQ(conv["model_name"], "tiny-conv");
  EXPECT_EQ(conv["model_version"], "1");
  const json tiny = body_of(post_image(*client, image, "?model=tiny&version=1&runtime=onnxruntime"));
  EXPECT_EQ(tiny["model_name"], "tiny");
  EXPECT_EQ(tiny["runtime"], "onnxruntime");
  EXPECT_GT(max_abs_difference(probabilities_of(conv), probabilities_of(tiny)), 1e-3);

  // A runtime this server did not load for the model is "not found", naming what is loaded.
  const auto other_runtime = post_image(*client, image, "?runtime=tflite");
  EXPECT_EQ(status_of(other_runtime), 404);
  EXPECT_NE(body_of(other_runtime)["error"].get<std::string>().find("onnxruntime"), std::string::npos);
}

TEST(ClassifyApi, RequestIdIsEchoedWhenPlausibleElseGenerated) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  const auto image = real_photographs()[0];
  const auto echoed = post_image(*client, image, "", {{"X-Request-Id", "pms-visit-0042"}});
  EXPECT_EQ(echoed->get_header_value("X-Request-Id"), "pms-visit-0042");
  EXPECT_EQ(body_of(echoed)["request_id"], "pms-visit-0042");

  const auto replaced = post_image(*client, image, "", {{"X-Request-Id", "<script>alert(1)</script>"}});
  const std::string generated = replaced->get_header_value("X-Request-Id");
  EXPECT_EQ(generated.size(), 32u);
  EXPECT_EQ(generated.find_first_not_of("0123456789abcdef"), std::string::npos) << generated;
  const auto another = post_image(*client, image);
  EXPECT_NE(another->get_header_value("X-Request-Id"), generated);
}

TEST(ClassifyApi, WrongMediaTypeIs415) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  for (const char* type : {"text/plain", "application/json", "image/gif"}) {
    const auto result = client->Post("/v1/classify", file_text(real_photographs()[0]), type);
    EXPECT_EQ(status_of(result), 415) << type;
    const json body = body_of(result);
    EXPECT_EQ(body["code"], "unsupported_media_type");
    EXPECT_NE(body["error"].get<std::string>().find(type), std::string::npos) << body;
  }
}

TEST(ClassifyApi, UndecodableImagesAre400WithTheReason) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  const auto not_an_image = client->Post("/v1/classify", std::string(4096, 'x'), "image/jpeg");
  EXPECT_EQ(status_of(not_an_image), 400);
  EXPECT_EQ(body_of(not_an_image)["code"], "unsupported_format");

  const auto truncated = post_image(*client, std::filesystem::path(DERMCDS_DEPS_DIR) / "photos" / "truncated.jpg");
  EXPECT_EQ(status_of(truncated), 400);
  const json body = body_of(truncated);
  EXPECT_EQ(body["code"], "invalid_image");
  EXPECT_FALSE(body["error"].get<std::string>().empty());

  const auto empty = client->Post("/v1/classify", "", "image/png");
  EXPECT_EQ(status_of(empty), 400);
}

TEST(ClassifyApi, ImageOverThePixelLimitIs400) {
  const auto server = start_server_with({"--model", "tiny", "--default-model", "tiny", "--max-image-pixels", "10000"});
  const auto client = client_for(*server);
  const auto result = post_image(*client, real_photographs()[0]);  // 512 x 600
  EXPECT_EQ(status_of(result), 400);
  EXPECT_EQ(body_of(result)["code"], "image_too_large");
}

// Sends only the headers of a request announcing `content_length` bytes with "Expect:
// 100-continue" (as curl does for large uploads) and returns the status line of the answer: a
// body over the limit is refused before the client sends it.
std::string status_line_for_announced_body(int port, std::size_t content_length) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return "connect failed";
  }
  const std::string head =
      "POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nExpect: 100-continue\r\n"
      "Content-Length: " +
      std::to_string(content_length) + "\r\n\r\n";
  ::send(fd, head.data(), head.size(), 0);
  std::string response(4096, '\0');
  const ssize_t n = ::recv(fd, response.data(), response.size(), 0);
  ::close(fd);
  response.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return response.substr(0, response.find("\r\n"));
}

TEST(ClassifyApi, BodyOverTheLimitIs413) {
  const auto server = start_server_with({"--model", "tiny", "--default-model", "tiny", "--max-body-bytes", "100000"});
  EXPECT_EQ(status_line_for_announced_body(server->port(), 5'000'000), "HTTP/1.1 413 Payload Too Large");
  // A body just under the limit is read and judged on its content.
  const auto client = client_for(*server);
  EXPECT_EQ(status_of(client->Post("/v1/classify", std::string(99'000, 'x'), "image/jpeg")), 400);
  // One over it, sent whole without asking first, is read, discarded and refused.
  const auto over = client->Post("/v1/classify", std::string(150'000, 'x'), "image/jpeg");
  EXPECT_EQ(status_of(over), 413);
  EXPECT_TRUE(body_of(over).contains("error"));
}

TEST(ClassifyApi, UnknownModelOrVersionIs404) {
  const auto server = start_server_with(kTinyServer);
  const auto client = client_for(*server);
  const auto image = real_photographs()[0];
  const auto unknown_model = post_image(*client, image, "?model=no-such-model");
  EXPECT_EQ(status_of(unknown_model), 404);
  EXPECT_EQ(body_of(unknown_model)["code"], "not_found");
  EXPECT_EQ(status_of(post_image(*client, image, "?model=tiny&version=7")), 404);
  // Version 2 exists in the repository but is not loaded.
  EXPECT_EQ(status_of(post_image(*client, image, "?model=tiny&version=2")), 404);
  EXPECT_EQ(status_of(post_image(*client, image, "?model=../etc")), 404);
}

TEST(ClassifyApi, ModelsListsVersionsActiveAndRuntimes) {
  const auto server = start_server_with(kTinyServer);
  const json listing = body_of(client_for(*server)->Get("/v1/models"));
  EXPECT_EQ(listing["default_model"], "tiny");
  std::map<std::string, json> models;
  for (const auto& m : listing["models"]) models[m["name"]] = m;
  ASSERT_TRUE(models.count("tiny") && models.count("tiny-conv")) << listing;
  const json& tiny = models["tiny"];
  EXPECT_EQ(tiny["active_version"], "1");
  EXPECT_EQ(tiny["ready"], true);
  ASSERT_EQ(tiny["versions"].size(), 2u);
  const json& v1 = tiny["versions"][0];
  const json& v2 = tiny["versions"][1];
  EXPECT_EQ(v1["version"], "1");
  EXPECT_EQ(v1["state"], "READY");
  EXPECT_EQ(v1["active"], true);
  EXPECT_EQ(v1["usable_runtimes"], json::array({"onnxruntime"}));
  ASSERT_EQ(v1["loaded_runtimes"].size(), 1u);
  EXPECT_EQ(v1["loaded_runtimes"][0]["runtime"], "onnxruntime");
  EXPECT_EQ(v1["loaded_runtimes"][0]["execution_provider"], "cpu");
  EXPECT_EQ(v1["input_size"], 64);
  EXPECT_EQ(v2["state"], "UNAVAILABLE");
  EXPECT_EQ(v2["active"], false);
  EXPECT_EQ(v2["usable_runtimes"], json::array({"onnxruntime"}));
  EXPECT_TRUE(v2["loaded_runtimes"].empty());
  EXPECT_EQ(models["tiny-conv"]["versions"][0]["input_size"], 128);
}

}  // namespace
}  // namespace dermcds::test
