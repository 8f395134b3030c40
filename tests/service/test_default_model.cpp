// The service as `make run` starts it: the repository `make models` builds, default settings.
// Its answers must be the library's answers for the same photographs, through /v1/classify and
// through the Open Inference Protocol. (The repository is only read.)
#include "dermcds/classifier.hpp"
#include "dermcds/model_repository.hpp"
#include "service_test_support.hpp"

namespace dermcds::test {
namespace {

TEST(DefaultModel, ServesTheLibrarysAnswersOutOfTheBox) {
  const auto package = test_repository() / "derm-effnet-b4";
  ASSERT_TRUE(std::filesystem::exists(package)) << package << " is missing: run `make models` first";
  // Only the default model, to keep start-up short; every other setting is the default.
  const auto server = start_server({test_repository(), {"--model", "derm-effnet-b4"}, {}, true});
  const auto client = client_for(*server);

  ClassifierOptions options;
  options.package = resolve_package_dir(package);
  const auto classifier = Classifier::create(options);
  const auto photos = real_photographs();
  std::vector<std::vector<double>> answers;
  // A portrait and a cat: the demo network, trained on synthetic lesions only, saturates on most
  // real photographs (VASC 1.0 for the portrait and four others); the cat is one it tells apart.
  for (const auto& photo : {photos[0], photos[2]}) {
    const auto result = post_image(*client, photo);
    ASSERT_EQ(status_of(result), 200) << (result ? result->body : "");
    const json body = body_of(result);
    EXPECT_EQ(body["model_name"], "derm-effnet-b4");
    EXPECT_EQ(body["model_version"], classifier->manifest().version);
    const ClassificationResult direct = classifier->classify(read_file_bytes(photo));
    const std::vector<double> expected(direct.probabilities.begin(), direct.probabilities.end());
    EXPECT_LE(max_abs_difference(probabilities_of(body), expected), 1e-5) << photo;
    answers.push_back(probabilities_of(body));
  }
  // Demo weights still answer differently for different photographs.
  EXPECT_GT(max_abs_difference(answers[0], answers[1]), 1e-4);

  const PreparedImage prepared = classifier->prepare(read_file_bytes(photos[0]));
  const std::int64_t s = classifier->manifest().input.crop_size;
  const Tensor input{{1, 3, s, s}, prepared.input};
  const json request = {
      {"inputs", {{{"name", classifier->manifest().input_name}, {"shape", input.shape}, {"datatype", "FP32"}, {"data", input.data}}}}};
  const auto result = client->Post("/v2/models/derm-effnet-b4/infer", request.dump(), "application/json");
  ASSERT_EQ(status_of(result), 200) << (result ? result->body.substr(0, 300) : "");
  const auto logits = body_of(result)["outputs"][0]["data"].get<std::vector<float>>();
  const Tensor direct = classifier->infer(input);
  ASSERT_EQ(logits.size(), direct.data.size());
  for (std::size_t i = 0; i < logits.size(); ++i) EXPECT_NEAR(logits[i], direct.data[i], 1e-4) << i;
}

}  // namespace
}  // namespace dermcds::test
