// A valid manifest document and a package writer, for tests that need a package without
// running the exporter.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "dermcds/manifest.hpp"
#include "dermcds/sha256.hpp"

namespace dermcds::test {

inline nlohmann::json valid_manifest(const std::string& name = "derm-test", const std::string& version = "1") {
  return nlohmann::json::parse(R"({
    "format": "dermcds-model-package", "format_version": 1,
    "name": ")" + name + R"(", "version": ")" +
                               version + R"(", "architecture": "efficientnet_b4",
    "input": {"name": "image", "layout": "NCHW", "color": "RGB", "size": 380,
              "resize": {"policy": "shorter_side_then_center_crop", "shorter_side": 384, "interpolation": "bilinear"},
              "scale": 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    "output": {"name": "logits", "kind": "logits"},
    "labels": [{"code": "MEL", "name": "Melanoma"}, {"code": "NV", "name": "Melanocytic nevus"},
               {"code": "BCC", "name": "Basal cell carcinoma"}, {"code": "AK", "name": "Actinic keratosis"},
               {"code": "BKL", "name": "Benign keratosis"}, {"code": "DF", "name": "Dermatofibroma"},
               {"code": "VASC", "name": "Vascular lesion"}, {"code": "SCC", "name": "Squamous cell carcinoma"}],
    "triage": {"rules": [{"tier": "urgent_referral", "classes": ["MEL", "BCC", "SCC"], "threshold": 0.30},
                         {"tier": "dermatology_review", "classes": ["MEL", "BCC", "SCC", "AK"], "threshold": 0.15}],
               "default_tier": "routine"},
    "artifacts": [{"runtime": "onnxruntime", "precision": "fp32", "file": "model.onnx",
                   "sha256": "0000000000000000000000000000000000000000000000000000000000000000", "bytes": 1, "layout": "NCHW"}],
    "provenance": {"created": "2026-01-01T00:00:00Z"}
  })");
}

// Writes <repository>/<name>/<version>/ with an artifact holding `content` and a manifest whose
// sha256 and size are those of `content`. Returns the package directory.
inline std::filesystem::path write_package(const std::filesystem::path& repository, const std::string& content,
                                           const std::string& name = "derm-test", const std::string& version = "1") {
  const std::filesystem::path dir = repository / name / version;
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "model.onnx", std::ios::binary) << content;
  nlohmann::json manifest = valid_manifest(name, version);
  manifest["artifacts"][0]["sha256"] = sha256_hex({reinterpret_cast<const std::uint8_t*>(content.data()), content.size()});
  manifest["artifacts"][0]["bytes"] = content.size();
  write_manifest(dir, manifest);
  return dir;
}

// Parity evidence for the package's current artifacts, standing in for a `dermcds parity` run
// (the serving rule, serving_rule.hpp, needs it before a repository serves the package).
inline void add_covering_evidence(const std::filesystem::path& dir) {
  nlohmann::json manifest = read_manifest(dir).document;
  nlohmann::json subjects = nlohmann::json::array();
  for (const auto& a : manifest["artifacts"])
    subjects.push_back({{"id", a["runtime"].get<std::string>() + "/" + a["precision"].get<std::string>() + "/cpu"},
                        {"runtime", a["runtime"]},
                        {"precision", a["precision"]},
                        {"sha256", a["sha256"]}});
  manifest["parity"] = {
      {"passed", true},
      {"reference", "onnxruntime/fp32/cpu"},
      {"subjects", subjects},
      {"skipped", nlohmann::json::array()},
      {"pairs", {{{"reference", "onnxruntime/fp32/cpu"}, {"candidate", "pytorch/fp32/cpu"}, {"bound_key", "pytorch"}, {"passed", true}}}}};
  write_manifest(dir, manifest);
}

}  // namespace dermcds::test
