#include <gtest/gtest.h>

#include "dermcds/error.hpp"
#include "dermcds/manifest.hpp"
#include "manifest_fixture.hpp"

namespace dermcds {
namespace {

using nlohmann::json;

TEST(Manifest, ValidDocumentIsReadCompletely) {
  const Manifest m = parse_manifest(test::valid_manifest(), "test");
  EXPECT_EQ(m.name, "derm-test");
  EXPECT_EQ(m.version, "1");
  EXPECT_EQ(m.input.crop_size, 380);
  EXPECT_EQ(m.input.resize_size, 384);
  EXPECT_EQ(m.input.interpolation, Interpolation::kBilinear);
  EXPECT_FLOAT_EQ(m.input.mean[1], 0.456f);
  EXPECT_FLOAT_EQ(m.input.std[2], 0.225f);
  ASSERT_EQ(m.labels.size(), 8u);
  EXPECT_EQ(m.labels[7].code, "SCC");
  ASSERT_EQ(m.triage.rules.size(), 2u);
  EXPECT_DOUBLE_EQ(m.triage.rules[1].threshold, 0.15);
  EXPECT_EQ(m.triage.default_tier, "routine");
  ASSERT_EQ(m.artifacts.size(), 1u);
  EXPECT_EQ(m.artifacts[0].layout, TensorLayout::kNCHW);
  EXPECT_EQ(m.label_index("BCC"), 2u);
  EXPECT_EQ(m.label_index("UNK"), std::nullopt);
  EXPECT_NE(m.find_artifact("onnxruntime", "fp32"), nullptr);
  EXPECT_EQ(m.find_artifact("tflite"), nullptr);
}

struct Corruption {
  const char* what;
  void (*apply)(json&);
  const char* expected_in_message;
};

class ManifestCorruption : public ::testing::TestWithParam<Corruption> {};

TEST_P(ManifestCorruption, IsRefusedNamingTheField) {
  json document = test::valid_manifest();
  GetParam().apply(document);
  try {
    parse_manifest(document, "pkg/manifest.json");
    FAIL() << GetParam().what << " was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidPackage);
    EXPECT_NE(std::string(e.what()).find(GetParam().expected_in_message), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("pkg/manifest.json"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fields, ManifestCorruption,
    ::testing::Values(
        Corruption{"not an object", [](json& d) { d = json::array(); }, "JSON object"},
        Corruption{"other format", [](json& d) { d["format"] = "onnx"; }, "format"},
        Corruption{"future format version", [](json& d) { d["format_version"] = 2; }, "format_version"},
        Corruption{"no name", [](json& d) { d.erase("name"); }, "name is missing"},
        Corruption{"upper-case name", [](json& d) { d["name"] = "Derm"; }, "name"},
        Corruption{"version with leading zero", [](json& d) { d["version"] = "01"; }, "version"},
        Corruption{"numeric version", [](json& d) { d["version"] = 1; }, "version"},
        Corruption{"size not integer", [](json& d) { d["input"]["size"] = 380.5; }, "input.size"},
        Corruption{"resize smaller than crop", [](json& d) { d["input"]["resize"]["shorter_side"] = 300; }, "input.resize.shorter_side"},
        Corruption{"unknown interpolation", [](json& d) { d["input"]["resize"]["interpolation"] = "lanczos"; }, "lanczos"},
        Corruption{"zero std", [](json& d) { d["input"]["std"][0] = 0; }, "input.std"},
        Corruption{"two means",
                   [](json& d) {
                     d["input"]["mean"] = {0.5, 0.5};
                   },
                   "input.mean"},
        Corruption{"probabilities output", [](json& d) { d["output"]["kind"] = "probabilities"; }, "output.kind"},
        Corruption{"no labels", [](json& d) { d["labels"] = json::array(); }, "labels"},
        Corruption{"duplicate label", [](json& d) { d["labels"][1]["code"] = "MEL"; }, "appears twice"},
        Corruption{"triage names unknown class", [](json& d) { d["triage"]["rules"][0]["classes"][0] = "UNK"; }, "UNK"},
        Corruption{"threshold above one", [](json& d) { d["triage"]["rules"][0]["threshold"] = 1.5; }, "threshold"},
        Corruption{"no artifacts", [](json& d) { d["artifacts"] = json::array(); }, "artifacts"},
        Corruption{"absolute artifact path", [](json& d) { d["artifacts"][0]["file"] = "/etc/passwd"; }, "relative path"},
        Corruption{"escaping artifact path", [](json& d) { d["artifacts"][0]["file"] = "../other/model.onnx"; }, "relative path"},
        Corruption{"short sha256", [](json& d) { d["artifacts"][0]["sha256"] = "abc"; }, "sha256"},
        Corruption{"upper-case sha256", [](json& d) { d["artifacts"][0]["sha256"] = std::string(64, 'A'); }, "sha256"},
        Corruption{"unknown precision", [](json& d) { d["artifacts"][0]["precision"] = "int4"; }, "int4"},
        Corruption{"negative size", [](json& d) { d["artifacts"][0]["bytes"] = -5; }, "bytes"},
        Corruption{"artifact listed twice", [](json& d) { d["artifacts"].push_back(d["artifacts"][0]); }, "listed twice"}),
    [](const auto& info) {
      std::string name = info.param.what;
      for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      return name;
    });

TEST(Manifest, SafetyGuardIsReadAndCheckedWhenPresent) {
  json document = test::valid_manifest();
  EXPECT_FALSE(parse_manifest(document, "test").ood);  // older packages have none
  document["safety"]["ood"] = {
      {"output", "ood_score"}, {"method", "mahalanobis"}, {"direction", "higher_is_out_of_distribution"}, {"threshold", 1.75}};
  const Manifest m = parse_manifest(document, "test");
  ASSERT_TRUE(m.ood);
  EXPECT_EQ(m.ood->output, "ood_score");
  EXPECT_EQ(m.ood->method, "mahalanobis");
  EXPECT_DOUBLE_EQ(m.ood->threshold, 1.75);
  // Every score the export may choose (python/dermcds_export/safety.py, METHODS).
  for (const char* method : {"mahalanobis", "feature_residual", "block_mahalanobis", "normalized_residual", "energy", "max_logit"}) {
    json other = document;
    other["safety"]["ood"]["method"] = method;
    EXPECT_EQ(parse_manifest(other, "test").ood->method, method);
  }
  for (const auto& [field, value] : std::vector<std::pair<std::string, json>>{
           {"method", "vibes"}, {"direction", "lower_is_worse"}, {"threshold", "high"}, {"output", "logits"}}) {
    json bad = document;
    bad["safety"]["ood"][field] = value;
    try {
      parse_manifest(bad, "test");
      ADD_FAILURE() << field << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidPackage);
      EXPECT_NE(std::string(e.what()).find(field == "output" ? "output" : field), std::string::npos) << e.what();
    }
  }
}

TEST(Manifest, UnknownFieldsSurviveInTheDocument) {
  json document = test::valid_manifest();
  document["parity"] = {{"passed", true}};
  const Manifest m = parse_manifest(document, "test");
  EXPECT_EQ(m.document["parity"]["passed"], true);
}

}  // namespace
}  // namespace dermcds
