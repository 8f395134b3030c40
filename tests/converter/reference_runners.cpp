#include "reference_runners.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>

#include <onnxruntime_cxx_api.h>
#include <tensorflow/lite/c/c_api.h>

#include "ort_api.hpp"
#include "tflite_api.hpp"

namespace dermcds::test {

struct OrtModel::Session {
  Ort::Session session;
  std::vector<std::string> output_names;
};

OrtModel::OrtModel(const std::filesystem::path& onnx_file, const std::filesystem::path& optimized_model) {
  Ort::Env& env = runtimes::onnxruntime::ort_environment();  // also initializes the C++ API table
  Ort::SessionOptions options;
  options.SetIntraOpNumThreads(1);
  if (!optimized_model.empty()) options.SetOptimizedModelFilePath(optimized_model.c_str());
  Ort::Session session(env, onnx_file.c_str(), options);
  std::vector<std::string> names;
  Ort::AllocatorWithDefaultOptions allocator;
  for (std::size_t i = 0; i < session.GetOutputCount(); ++i) names.emplace_back(session.GetOutputNameAllocated(i, allocator).get());
  session_ = std::make_unique<Session>(Session{std::move(session), std::move(names)});
}

OrtModel::~OrtModel() = default;

std::vector<Tensor> OrtModel::run(const std::vector<NamedTensor>& inputs) {
  const Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<Ort::Value> values;
  std::vector<const char*> input_names;
  for (const NamedTensor& in : inputs) {
    values.push_back(Ort::Value::CreateTensor<float>(memory, const_cast<float*>(in.tensor.data.data()), in.tensor.data.size(),
                                                     in.tensor.shape.data(), in.tensor.shape.size()));
    input_names.push_back(in.name.c_str());
  }
  std::vector<const char*> output_names;
  for (const std::string& n : session_->output_names) output_names.push_back(n.c_str());
  std::vector<Ort::Value> outputs = session_->session.Run(Ort::RunOptions{nullptr}, input_names.data(), values.data(), values.size(),
                                                          output_names.data(), output_names.size());
  std::vector<Tensor> result;
  for (Ort::Value& v : outputs) {
    const auto info = v.GetTensorTypeAndShapeInfo();
    Tensor t;
    t.shape = info.GetShape();
    const float* data = v.GetTensorData<float>();
    t.data.assign(data, data + info.GetElementCount());
    result.push_back(std::move(t));
  }
  return result;
}

Tensor nchw_to_nhwc(const Tensor& t) {
  if (t.shape.size() != 4) return t;
  const std::int64_t n = t.shape[0], c = t.shape[1], h = t.shape[2], w = t.shape[3];
  Tensor out = Tensor::zeros({n, h, w, c});
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t y = 0; y < h; ++y)
        for (std::int64_t x = 0; x < w; ++x)
          out.data[static_cast<std::size_t>(((i * h + y) * w + x) * c + ch)] =
              t.data[static_cast<std::size_t>(((i * c + ch) * h + y) * w + x)];
  return out;
}

struct TfliteModel::State {
  runtimes::tflite::Interpreter interpreter;
};

TfliteModel::TfliteModel(const std::vector<std::uint8_t>& model, TfliteKernels kernels, int threads) {
  runtimes::tflite::InterpreterOptions options;
  options.threads = threads;
  options.accelerator = kernels == TfliteKernels::kBuiltin ? runtimes::tflite::Accelerator::kNone : runtimes::tflite::Accelerator::kXnnpack;
  options.xnnpack_flags = kernels == TfliteKernels::kXnnpackInt8 ? runtimes::tflite::kXnnpackFlagQs8 : 0u;
  state_ = std::make_unique<State>(State{runtimes::tflite::Interpreter::from_buffer(model, options, "converted model")});
}

TfliteModel::~TfliteModel() = default;

std::vector<Tensor> TfliteModel::run(const std::vector<Tensor>& onnx_layout_inputs) {
  runtimes::tflite::Interpreter& interpreter = state_->interpreter;
  if (interpreter.input_count() != static_cast<int>(onnx_layout_inputs.size())) throw std::runtime_error("input count differs");
  for (std::size_t i = 0; i < onnx_layout_inputs.size(); ++i) {
    const Tensor in = nchw_to_nhwc(onnx_layout_inputs[i]);
    TfLiteTensor* tensor = interpreter.input(static_cast<int>(i));
    if (runtimes::tflite::tensor_shape(tensor) != in.shape) throw std::runtime_error("TFLite input shape differs");
    if (TfLiteTensorType(tensor) != kTfLiteFloat32) throw std::runtime_error("TFLite input is not float32");
    std::memcpy(TfLiteTensorData(tensor), in.data.data(), in.data.size() * sizeof(float));
  }
  interpreter.invoke();
  std::vector<Tensor> outputs;
  for (int i = 0; i < interpreter.output_count(); ++i) {
    const TfLiteTensor* tensor = interpreter.output(i);
    Tensor t;
    t.shape = runtimes::tflite::tensor_shape(tensor);
    if (TfLiteTensorType(tensor) != kTfLiteFloat32) throw std::runtime_error("TFLite output is not float32");
    const auto* data = static_cast<const float*>(TfLiteTensorData(tensor));
    t.data.assign(data, data + Tensor::element_count(t.shape));
    outputs.push_back(std::move(t));
  }
  return outputs;
}

std::vector<Tensor> run_tflite(const std::vector<std::uint8_t>& model, const std::vector<Tensor>& onnx_layout_inputs, TfliteKernels kernels,
                               int threads) {
  return TfliteModel(model, kernels, threads).run(onnx_layout_inputs);
}

Tensor random_tensor(const std::vector<std::int64_t>& shape, std::uint32_t seed, float low, float high) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> uniform(low, high);
  Tensor t = Tensor::zeros(shape);
  for (float& v : t.data) v = uniform(generator);
  return t;
}

double max_abs_difference(const Tensor& a, const Tensor& b) {
  if (a.data.size() != b.data.size()) return INFINITY;
  double worst = 0;
  for (std::size_t i = 0; i < a.data.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(a.data[i]) - b.data[i]));
  return worst;
}

double tolerance_ratio(const Tensor& actual, const Tensor& expected, double atol, double rtol) {
  if (actual.data.size() != expected.data.size()) return INFINITY;
  double worst = 0;
  for (std::size_t i = 0; i < actual.data.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(actual.data[i]) - expected.data[i]);
    if (std::isnan(diff)) return INFINITY;
    worst = std::max(worst, diff / (atol + rtol * std::fabs(static_cast<double>(expected.data[i]))));
  }
  return worst;
}

std::vector<std::uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

}  // namespace dermcds::test
