// Checkpoint -> verified ONNX model package in a repository.
//
// export_package() runs the Python exporter into a staging directory inside the repository,
// runs the ONNX artifact with ONNX Runtime on the sample inputs the exporter saved, compares
// with PyTorch's logits for the same inputs, records the comparison in the manifest
// (provenance.export_check), and only then moves the package to <repository>/<name>/<version>.
// A failed export leaves the repository as it was.
// Errors: kRuntimeFailure (exporter failed), kModelMismatch (ONNX Runtime and PyTorch disagree
// beyond the bound), kInvalidArgument (version already present), plus those of the core.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "dermcds/pipeline/python_pipeline.hpp"

namespace dermcds::pipeline {

struct ExportRequest {
  std::string architecture;          // "efficientnet_b4", "mobilenet_v3_large", ...
  std::filesystem::path checkpoint;  // a state_dict; empty: the (cached) demo checkpoint
  std::filesystem::path repository;
  std::string name;     // empty: default_package_name(architecture)
  std::string version;  // empty: the next free version
  int check_samples = 4;
  double max_probability_difference = 1e-4;
  PythonPipeline python = PythonPipeline::from_environment();
  std::function<void(const std::string&)> progress = [](const std::string&) {};
};

struct ExportCheck {
  int samples = 0;
  double max_abs_diff_logit = 0;
  double max_abs_diff_probability = 0;
  // Largest change of any class probability between sample images: a model that answers the
  // same for every input (untrained batch-norm statistics) shows ~0 here.
  double output_spread = 0;
  std::string runtime_version;
};

struct ExportOutcome {
  std::filesystem::path package_dir;
  ExportCheck check;
};

std::string default_package_name(std::string_view architecture);

ExportOutcome export_package(const ExportRequest& request);

// Compares ONNX Runtime with PyTorch on the tensors an exporter wrote into check_dir
// (check.json, inputs.f32, torch_logits.f32), running the package's ONNX artifact.
ExportCheck check_export(const std::filesystem::path& package_dir, const std::filesystem::path& check_dir);

}  // namespace dermcds::pipeline
