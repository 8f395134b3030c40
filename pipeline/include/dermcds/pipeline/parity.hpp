// The parity validator: every image through every runtime, precision and execution provider a
// package carries and this machine can run, and through the PyTorch source model, compared
// against ONNX Runtime fp32 on the CPU (docs/parity.md).
//
//   ParityRequest request{.package_dir = "models/derm-mnv3-large/1", .images_dir = "validation"};
//   ParityReport report = run_parity(request);
//   if (!report.passed) ...
//
// Subjects: for each artifact, each execution provider of its runtime is tried ("cpu", "cuda",
// "tensorrt" for ONNX Runtime; "xnnpack", "builtin", "nnapi" for TensorFlow Lite); a provider that
// is not present here (the runtime fell back to another) is listed as skipped with the reason.
// Each image is decoded once and given to every subject, so the runtimes differ only in what
// they compute. The reference must be present: a package without an ONNX fp32 artifact cannot be
// checked.
// Errors: kNotFound / kInvalidArgument (no package, no images), kInvalidPackage (the package does
// not verify, malformed policy), kRuntimeUnavailable (no ONNX Runtime), kRuntimeFailure (the
// PyTorch runner failed). A subject that fails on an image is recorded, not thrown.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dermcds/pipeline/image_set.hpp"
#include "dermcds/pipeline/parity_metrics.hpp"
#include "dermcds/pipeline/parity_policy.hpp"
#include "dermcds/pipeline/python_pipeline.hpp"

namespace dermcds::pipeline {

inline constexpr std::string_view kReferenceSubject = "onnxruntime/fp32/cpu";
inline constexpr std::string_view kGroundTruthSubject = "pytorch/fp32/cpu";

struct ParityRequest {
  std::filesystem::path package_dir;
  std::filesystem::path images_dir;
  // Run the PyTorch source model as ground truth for the ONNX export.
  bool torch_reference = true;
  std::filesystem::path checkpoint;  // for the PyTorch run; empty: from the manifest's provenance
  // Subject ids to run besides the reference, by prefix ("tflite", "tflite/int8",
  // "onnxruntime/fp32/cuda"); empty: all.
  std::vector<std::string> only;
  std::optional<nlohmann::json> policy;  // laid over the package's policy ("policy.parity" shape)
  int threads = 0;                       // per runtime; 0: the runtime's default
  // For the GPU subjects (onnxruntime on cuda and tensorrt) only, so that the engines that serve
  // (e.g. "tensorrt:trt_fp16_enable" = "1", an engine cache) are the ones checked; the CPU
  // reference and TFLite always run with their defaults.
  int device_id = 0;
  std::map<std::string, std::string> gpu_provider_options;
  std::filesystem::path work_dir;  // scratch files; empty: a temporary directory
  PythonPipeline python = PythonPipeline::from_environment();
  std::function<void(const std::string&)> progress = [](const std::string&) {};
};

struct SubjectRun {
  std::string id;  // "tflite/int8/xnnpack"
  std::string runtime, precision, provider;
  std::string runtime_version;
  std::string artifact;  // file inside the package, or the checkpoint for PyTorch
  std::string sha256;
  std::vector<std::optional<Answer>> answers;  // parallel to ParityReport::images
  std::vector<std::string> errors;             // "" where answered
  double seconds = 0;
};

struct SkippedSubject {
  std::string id;
  std::string reason;
};

struct PairResult {
  std::string reference;
  std::string candidate;
  std::string bound_key;  // the policy entry that bounds this pair: a precision or "pytorch"
  std::optional<ParityBounds> bounds;
  PairMetrics metrics;  // on the lesion images: what the bounds check
  BoundCheck check;
  // On the real photographs of the set (out of distribution for a lesion model): reported in a
  // section of their own, never checked against the bounds.
  std::optional<PairMetrics> photographs;
};

// An image close to a triage threshold, with every subject's tier: where runtimes could disagree.
struct NearThresholdImage {
  std::string image;
  std::string reference_tier;
  std::string nearest_rule;
  double reference_margin = 0;
  std::vector<std::pair<std::string, std::string>> tiers;  // subject id -> tier
  bool disagreement = false;
};

struct ParityReport {
  std::string package_name, package_version;
  std::filesystem::path package_dir;
  ImageSet image_set;
  std::vector<std::string> images;        // file names, the order of every answers vector
  std::vector<std::string> image_errors;  // why the reference could not answer an image ("" if it did)
  // Per image: a real photograph (the set's image-set.json says origin "real photograph").
  std::vector<bool> real_photograph;
  std::vector<Label> labels;
  ParityPolicy policy;
  std::vector<SubjectRun> subjects;  // the reference first
  std::vector<SkippedSubject> skipped;
  std::vector<PairResult> pairs;
  std::vector<NearThresholdImage> near_threshold;
  // Largest change of a reference probability between any two images: ~0 means the model answers
  // the same whatever it is shown, and agreement between runtimes would prove nothing.
  double reference_spread = 0;
  std::string created;  // UTC, ISO 8601
  bool passed = false;
};

ParityReport run_parity(const ParityRequest& request);

}  // namespace dermcds::pipeline
