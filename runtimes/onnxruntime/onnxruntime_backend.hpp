// The ONNX Runtime backend: one Ort::Session over an ONNX artifact.
//
// Construction tries the execution-provider chain (execution_providers.hpp) until a session
// loads, checks the model's input and output against the manifest, and records the provider
// that runs it and every provider it passed over. The session is released with the backend.
// run() relies on Ort::Session::Run, which ONNX Runtime documents as safe to call concurrently,
// but callers serialize it anyway (runtime.hpp).
#pragma once

#include <optional>
#include <string>

#include <onnxruntime_cxx_api.h>

#include "dermcds/runtime.hpp"

namespace dermcds::runtimes::onnxruntime {

class OnnxRuntimeBackend final : public InferenceBackend {
 public:
  explicit OnnxRuntimeBackend(const BackendRequest& request);

  const BackendInfo& info() const override { return info_; }
  TensorLayout input_layout() const override { return TensorLayout::kNCHW; }
  int max_batch() const override { return max_batch_; }
  Tensor run(const Tensor& images) override;
  InferenceOutputs run_outputs(const Tensor& images) override;

 private:
  void check_signature(const BackendRequest& request);

  std::optional<Ort::Session> session_;
  Ort::MemoryInfo cpu_memory_;
  BackendInfo info_;
  std::string input_name_;
  std::string output_name_;
  std::string ood_output_name_;  // empty: the model's guard output is not read
  int max_batch_ = 0;
  int input_size_ = 0;  // S of the [N,3,S,S] input
};

}  // namespace dermcds::runtimes::onnxruntime
