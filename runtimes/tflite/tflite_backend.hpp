// The TensorFlow Lite backend: one TFLite interpreter over a .tflite artifact (docs/tflite-runtime.md).
//
// Providers: "auto" and "xnnpack" run through the XNNPACK delegate (float operators, and int8
// operators when the model is int8), "builtin" uses TFLite's own kernels, "nnapi" hands the model
// to Android's NNAPI (Android builds only). A provider that cannot start falls back to the next
// one (nnapi -> xnnpack -> builtin), and the fallback is recorded in BackendInfo::fallbacks.
//
// Images are NHWC. A model with int8 input or output tensors (converted with int8 I/O) is fed and
// read through its quantization parameters, so callers always pass floats and get float logits.
// A batch runs as consecutive single-image invocations: the converted models have batch 1, and on
// the CPUs TFLite targets batching brings nothing.
#pragma once

#include <optional>

#include "dermcds/runtime.hpp"
#include "tflite_api.hpp"

namespace dermcds::runtimes::tflite {

class TfliteBackend final : public InferenceBackend {
 public:
  explicit TfliteBackend(const BackendRequest& request);

  const BackendInfo& info() const override { return info_; }
  TensorLayout input_layout() const override { return TensorLayout::kNHWC; }
  Tensor run(const Tensor& images) override;
  InferenceOutputs run_outputs(const Tensor& images) override;

 private:
  void check_signature(const BackendRequest& request);

  std::optional<Interpreter> interpreter_;
  BackendInfo info_;
  std::size_t image_values_ = 0;  // S * S * 3
  std::size_t classes_ = 0;
  bool reads_ood_ = false;  // the manifest names a guard output (second output tensor)
};

}  // namespace dermcds::runtimes::tflite
