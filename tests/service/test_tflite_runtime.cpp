// Serving a package on both runtimes (--runtime auto,tflite): TFLite answers when asked, with its
// own provenance, the numpy reference's probabilities, and NHWC tensors on the protocol endpoint.
#include "dermcds/classifier.hpp"
#include "service_test_support.hpp"

namespace dermcds::test {
namespace {

std::filesystem::path tflite_repository() { return service_fixture_dir() / "tflite-repository"; }

std::unique_ptr<ServerProcess> start_both_runtimes() {
  return start_server({tflite_repository(), {"--model", "tiny", "--default-model", "tiny", "--runtime", "auto,tflite"}, {}, true});
}

TEST(TfliteRuntime, ServesBothRuntimesAndSaysWhichAnswered) {
  const auto server = start_both_runtimes();
  const auto client = client_for(*server);
  const json listing = body_of(client->Get("/v1/models"));
  const json& version = listing["models"][0]["versions"][0];
  EXPECT_EQ(version["usable_runtimes"], json::array({"onnxruntime", "tflite"}));
  ASSERT_EQ(version["loaded_runtimes"].size(), 2u);
  EXPECT_EQ(version["loaded_runtimes"][1]["runtime"], "tflite");
  EXPECT_EQ(version["loaded_runtimes"][1]["input_layout"], "NHWC");

  for (const auto& reference : service_references()) {
    const std::filesystem::path image = reference["image"].get<std::string>();
    const json tflite = body_of(post_image(*client, image, "?runtime=tflite"));
    EXPECT_EQ(tflite["runtime"], "tflite");
    EXPECT_EQ(tflite["runtime_version"], "2.9.0");
    EXPECT_EQ(tflite["precision"], "fp32");
    EXPECT_EQ(tflite["execution_provider"], "xnnpack");
    const auto expected = reference["probabilities"]["1"].get<std::vector<double>>();
    EXPECT_LE(max_abs_difference(probabilities_of(tflite), expected), 1e-4) << image;
    // Without a runtime, the first configured instance (auto: ONNX Runtime on this machine).
    EXPECT_EQ(body_of(post_image(*client, image))["runtime"], "onnxruntime");
  }
}

TEST(TfliteRuntime, InferOnTfliteTakesItsNhwcLayout) {
  const auto server = start_both_runtimes();
  const auto client = client_for(*server);
  ClassifierOptions options;
  options.package = tflite_repository() / "tiny" / "1";
  options.runtime = "tflite";
  const auto classifier = Classifier::create(options);
  ASSERT_EQ(classifier->input_layout(), TensorLayout::kNHWC);
  const PreparedImage prepared = classifier->prepare(read_file_bytes(real_photographs()[3]));
  const Tensor input{{1, 64, 64, 3}, prepared.input};
  const Tensor direct = classifier->infer(input);

  json request = {{"parameters", {{"runtime", "tflite"}}},
                  {"inputs", {{{"name", "image"}, {"shape", input.shape}, {"datatype", "FP32"}, {"data", input.data}}}}};
  const auto result = client->Post("/v2/models/tiny/infer", request.dump(), "application/json");
  ASSERT_EQ(status_of(result), 200) << (result ? result->body : "");
  const auto logits = body_of(result)["outputs"][0]["data"].get<std::vector<float>>();
  ASSERT_EQ(logits.size(), direct.data.size());
  for (std::size_t i = 0; i < logits.size(); ++i) EXPECT_NEAR(logits[i], direct.data[i], 1e-5) << i;

  // The same NHWC tensor sent to the default (NCHW) instance is refused, naming the shape it takes.
  request.erase("parameters");
  const auto refused = client->Post("/v2/models/tiny/infer", request.dump(), "application/json");
  EXPECT_EQ(status_of(refused), 400);
  EXPECT_NE(body_of(refused)["error"].get<std::string>().find("[-1,3,64,64]"), std::string::npos);
}

}  // namespace
}  // namespace dermcds::test
