// The entry point: open a model package, classify lesion images.
//
//   auto classifier = dermcds::Classifier::create({.package = "models/derm-effnet-b4/1"});
//   dermcds::ClassificationResult r = classifier->classify(jpeg_bytes);
//
// create() verifies the package, chooses the runtime and precision (ClassifierOptions), loads
// the model and checks its input and output shapes against the manifest. The returned object
// owns the backend; results hold no references into it.
// Thread safety: every const member may be called concurrently. Decoding and preprocessing run
// on the caller's thread; inference calls are serialized inside the classifier.
// Errors: throws dermcds::Error (see error.hpp) for bad packages, bad images, runtime failures.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "dermcds/assessment.hpp"
#include "dermcds/image.hpp"
#include "dermcds/model_package.hpp"
#include "dermcds/result.hpp"
#include "dermcds/runtime.hpp"

namespace dermcds {

struct ClassifierOptions {
  std::filesystem::path package;   // a version directory: <repository>/<name>/<version>
  std::string runtime = "auto";    // "auto" or a compiled runtime's name
  std::string precision = "auto";  // "auto", "fp32", "fp16", "int8"
  ExecutionOptions execution;
  DecodeLimits limits;
};

// An image decoded and preprocessed, ready to join a batch.
struct PreparedImage {
  std::vector<float> input;  // 3 * S * S floats in the classifier's input_layout()
  // Photograph checks on the decoded image; none for an image given as a tensor.
  std::vector<AssessmentReason> quality;
  StageTimings timings;  // decode and preprocess filled in
};

class Classifier {
 public:
  static std::unique_ptr<Classifier> create(const ClassifierOptions& options);
  ~Classifier();
  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;

  ClassificationResult classify(std::span<const std::uint8_t> encoded_image) const;
  ClassificationResult classify(const RgbImage& image) const;

  // The two halves of classify(), for callers that batch: prepare() in parallel on many
  // threads, then classify_batch() once for the gathered images (one inference).
  PreparedImage prepare(std::span<const std::uint8_t> encoded_image) const;
  PreparedImage prepare(const RgbImage& image) const;
  std::vector<ClassificationResult> classify_batch(std::span<const PreparedImage> images) const;

  // Raw tensor in, logits out: [N,3,S,S] or [N,S,S,3] in input_layout(). For protocol
  // endpoints that carry tensors instead of images. Throws kInvalidArgument on a wrong shape.
  Tensor infer(const Tensor& images) const;
  // infer() with the guard output as well (ood_score empty for a package without the guard).
  InferenceOutputs infer_outputs(const Tensor& images) const;

  const Manifest& manifest() const noexcept { return package_.manifest(); }
  const ModelPackage& package() const noexcept { return package_; }
  // The backend's own report, plus the artifacts the automatic choice passed over and why.
  const BackendInfo& backend_info() const noexcept { return info_; }
  TensorLayout input_layout() const noexcept { return backend_->input_layout(); }
  int max_batch() const noexcept { return backend_->max_batch(); }

 private:
  Classifier(ModelPackage package, std::unique_ptr<InferenceBackend> backend, DecodeLimits limits, std::vector<std::string> passed_over);
  InferenceOutputs run_serialized(const Tensor& images) const;

  ModelPackage package_;
  std::unique_ptr<InferenceBackend> backend_;
  BackendInfo info_;
  DecodeLimits limits_;
  mutable std::mutex run_mutex_;
};

// Which artifact ClassifierOptions would pick in this package on this machine, and why; used
// by create() and reported by `dermcds models verify` and GET /v1/models.
struct RuntimeChoice {
  const ArtifactEntry* artifact = nullptr;
  const RuntimeDescriptor* runtime = nullptr;
  // Artifacts `auto` ranked higher but did not take, and why ("onnxruntime/int8 (model_int8.onnx)
  // not served: ..."); they join the classifier's BackendInfo::fallbacks.
  std::vector<std::string> passed_over;
};
// `provider` is ExecutionOptions::provider: an int8 artifact is taken automatically only where
// it executes on the CPU (classifier.cpp, why_not_automatically). The choice points into
// `manifest`, which must outlive it.
RuntimeChoice choose_runtime(const Manifest& manifest, std::string_view runtime, std::string_view precision,
                             std::string_view provider = "auto");

// Runtimes of this build that could run some artifact of the package here.
std::vector<std::string> usable_runtimes(const Manifest& manifest);

}  // namespace dermcds
