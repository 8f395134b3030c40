// `dermcds models build`: checkpoint -> a new, fully evidenced package version, or nothing when
// nothing changed (docs/lifecycle.md).
//
// The inputs that decide a package are resolved first: the checkpoint's content hash (the demo
// checkpoint is trained or taken from its cache), the export pipeline's version, the converter's
// version, the requested TFLite precisions and ONNX int8, the calibration set's digest and the
// parity policy the package will carry.
// Their fingerprint is compared with the one every lifecycle-built version records in its
// manifest; a match means the build is a no-op. Otherwise the next version is built in a hidden
// staging directory inside the model's folder (invisible to the repository): export with the
// ONNX Runtime vs PyTorch check, conversions, the package's parity policy, a parity run on the
// validation images (report files under parity/ in the package, summary in the manifest), and the
// verdict ("lifecycle": {"status": "accepted" | "rejected", ...}). Only then is it renamed into
// place; a rejected candidate is kept as evidence and never made active. With `promote`, an
// accepted version becomes active.
// Errors: those of export, conversion and parity (a failed step installs nothing);
// kRuntimeUnavailable when TFLite or ONNX int8 artifacts are asked of a build without the converter.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dermcds/pipeline/image_set.hpp"
#include "dermcds/pipeline/parity.hpp"
#include "dermcds/pipeline/python_pipeline.hpp"

namespace dermcds::pipeline {

struct BuildRequest {
  std::filesystem::path repository;
  std::string architecture;                    // "mobilenet_v3_large", ...
  std::filesystem::path checkpoint;            // a state_dict; empty: the demo checkpoint
  std::string name;                            // empty: default_package_name(architecture)
  std::vector<std::string> tflite_precisions;  // any of "fp32", "fp16", "int8"
  bool onnx_int8 = false;                      // also an ONNX Runtime int8 (QDQ) artifact
  std::filesystem::path calibration_dir;       // int8 (TFLite or ONNX) and TFLite fp16
  std::size_t calibration_limit = 0;           // 0: every image in the directory
  std::filesystem::path validation_dir;        // images for the parity gate
  std::optional<nlohmann::json> policy;        // "policy.parity" written into the package
  bool promote = false;                        // make an accepted version active
  bool force = false;                          // build even if a version has these inputs
  int check_samples = 4;                       // ONNX Runtime vs PyTorch check at export
  int threads = 0;                             // inference threads during parity
  PythonPipeline python = PythonPipeline::from_environment();
  std::function<void(const std::string&)> progress = [](const std::string&) {};
};

struct BuildInputs {
  std::string architecture;
  std::string package_name;
  nlohmann::ordered_json checkpoint;  // {"source", "file", "sha256"[, "path"]}
  std::string exporter_version;
  std::string converter_version;  // "" when no TFLite artifact is asked for
  std::vector<std::string> tflite_precisions;
  bool onnx_int8 = false;
  std::optional<ImageSet> calibration;  // int8 and fp16 only
  std::size_t calibration_limit = 0;
  // The parity policy written into the package: part of what the package is, and what its
  // verdict depends on, so a changed policy builds (and judges) a new version.
  std::optional<nlohmann::json> policy;

  nlohmann::ordered_json to_json() const;
  // sha256 of to_json(): equal fingerprints mean the same artifacts would be built.
  std::string fingerprint() const;
};

enum class BuildResult { kUpToDate, kAccepted, kRejected };

struct BuildOutcome {
  BuildResult result = BuildResult::kUpToDate;
  std::string version;  // the version built, or the existing one whose inputs match
  std::filesystem::path package_dir;
  std::string fingerprint;
  std::string reason;  // rejected: the broken bounds; up to date: which version matched
  // Up to date: the matched version's lifecycle status ("accepted" or "rejected").
  std::string matched_status;
  bool promoted = false;
  // Accepted: artifacts whose own check failed and that were dropped from the version
  // ("tflite/int8 (model_int8.tflite): <violations>"); the rest of the version may serve.
  std::vector<std::string> rejected_artifacts;
  std::optional<ParityReport> parity;  // when a version was built
};

// Resolves the inputs without building (the demo checkpoint is trained if not cached).
BuildInputs resolve_build_inputs(const BuildRequest& request);

BuildOutcome build_model(const BuildRequest& request);

// The converter's version as recorded in lifecycle inputs: a digest of its sources, taken when
// this program was configured ("" in a build without the converter).
std::string converter_version();

}  // namespace dermcds::pipeline
