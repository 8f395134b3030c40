// Running the same inputs through ONNX Runtime (the reference) and TensorFlow Lite (the
// converted model), for the converter tests.
//
// Inputs and outputs are in ONNX layout. The converter stores rank-4 inputs channels-last, so
// run_tflite() transposes those inputs NCHW -> NHWC; outputs come back in ONNX layout already
// (the converter's contract for model outputs).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "dermcds/tensor.hpp"

namespace dermcds::test {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

// An ONNX model loaded in ONNX Runtime (CPU provider, all graph optimizations).
class OrtModel {
 public:
  // `optimized_model`, when given, receives ONNX Runtime's optimized graph (which kernels run).
  explicit OrtModel(const std::filesystem::path& onnx_file, const std::filesystem::path& optimized_model = {});
  ~OrtModel();
  OrtModel(const OrtModel&) = delete;
  OrtModel& operator=(const OrtModel&) = delete;
  std::vector<Tensor> run(const std::vector<NamedTensor>& inputs);

 private:
  struct Session;
  std::unique_ptr<Session> session_;
};

// kXnnpack: float operators on XNNPACK; kXnnpackInt8: int8 operators too (TFLITE_XNNPACK_DELEGATE_FLAG_QS8).
enum class TfliteKernels { kBuiltin, kXnnpack, kXnnpackInt8 };

// A converted model loaded once in a TFLite interpreter, for many runs.
class TfliteModel {
 public:
  TfliteModel(const std::vector<std::uint8_t>& model, TfliteKernels kernels, int threads = 1);
  ~TfliteModel();
  TfliteModel(const TfliteModel&) = delete;
  TfliteModel& operator=(const TfliteModel&) = delete;
  std::vector<Tensor> run(const std::vector<Tensor>& onnx_layout_inputs);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::vector<Tensor> run_tflite(const std::vector<std::uint8_t>& model, const std::vector<Tensor>& onnx_layout_inputs,
                               TfliteKernels kernels = TfliteKernels::kBuiltin, int threads = 1);

Tensor nchw_to_nhwc(const Tensor& t);
Tensor random_tensor(const std::vector<std::int64_t>& shape, std::uint32_t seed, float low, float high);
double max_abs_difference(const Tensor& a, const Tensor& b);
// max |a - b| / (atol + rtol |b|) over elements: <= 1 means within tolerance.
double tolerance_ratio(const Tensor& actual, const Tensor& expected, double atol, double rtol);

std::vector<std::uint8_t> read_bytes(const std::filesystem::path& path);

}  // namespace dermcds::test
