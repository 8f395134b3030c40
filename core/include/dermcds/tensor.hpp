// A dense float tensor: the currency between preprocessing, runtimes and postprocessing.
#pragma once

#include <cstdint>
#include <functional>
#include <numeric>
#include <string_view>
#include <utility>
#include <vector>

namespace dermcds {

// Memory order of an image batch. PyTorch and ONNX use NCHW; TensorFlow Lite uses NHWC.
enum class TensorLayout { kNCHW, kNHWC };

std::string_view to_string(TensorLayout layout) noexcept;

struct Tensor {
  std::vector<std::int64_t> shape;
  std::vector<float> data;  // row-major, shape's product elements

  static Tensor zeros(std::vector<std::int64_t> shape) {
    Tensor t{std::move(shape), {}};
    t.data.assign(static_cast<std::size_t>(element_count(t.shape)), 0.0f);
    return t;
  }
  static std::int64_t element_count(const std::vector<std::int64_t>& shape) {
    return std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
  }
};

}  // namespace dermcds
