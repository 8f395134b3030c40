// A dense float tensor: the currency between preprocessing, runtimes and postprocessing.
#pragma once

#include <cstdint>
#include <functional>
#include <numeric>
#include <optional>
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
  // The element count of a shape someone else wrote (a client's request): nullopt when a
  // dimension is negative or the product does not fit in int64, where element_count() would
  // wrap and a later allocation or runtime would be handed a number unrelated to the data.
  static std::optional<std::int64_t> checked_element_count(const std::vector<std::int64_t>& shape) {
    std::int64_t count = 1;
    for (const std::int64_t d : shape)
      if (d < 0 || __builtin_mul_overflow(count, d, &count)) return std::nullopt;
    return count;
  }
};

}  // namespace dermcds
