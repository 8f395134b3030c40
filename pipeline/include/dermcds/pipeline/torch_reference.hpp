// The PyTorch source model as ground truth: runs `python -m dermcds_export torch-reference`,
// which loads the checkpoint a package was exported from (verified against the sha256 in its
// provenance), decodes and preprocesses each image with the training pipeline's own code
// (Pillow + torchvision, python/dermcds_export/reference_transform.py) and returns the logits.
// Nothing of our C++ image code is on that path, so the comparison covers the whole chain.
// Errors: kRuntimeFailure (the runner failed: its own message is on stderr, e.g. the checkpoint
// cannot be found), kInvalidPackage (its output is malformed).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "dermcds/pipeline/python_pipeline.hpp"

namespace dermcds::pipeline {

struct TorchReferenceRequest {
  std::filesystem::path package_dir;
  std::vector<std::filesystem::path> images;
  std::filesystem::path checkpoint;  // empty: the one the manifest's provenance names
  std::filesystem::path work_dir;    // the image list and the runner's output go here
  PythonPipeline python = PythonPipeline::from_environment();
};

struct TorchReference {
  std::string torch_version;
  std::string checkpoint_file;
  std::string checkpoint_sha256;
  // Parallel to the request's images: the logits, or nothing where PyTorch's pipeline refused the
  // image (the reason is in errors[i]).
  std::vector<std::optional<std::vector<float>>> logits;
  // Parallel to logits: the guard output, for a package with the safety guard (docs/safety.md).
  std::vector<std::optional<float>> ood_scores;
  std::vector<std::string> errors;
};

TorchReference run_torch_reference(const TorchReferenceRequest& request);

}  // namespace dermcds::pipeline
