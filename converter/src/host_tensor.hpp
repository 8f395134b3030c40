// A constant tensor held in memory while converting: ONNX initializers, folded constants,
// transformed weights. Floating-point ONNX types (float, double, float16) are held as float;
// integer and boolean types as int64. That is all the precision the converter needs: weights
// are float32 in every model we convert, and integer tensors are shapes, axes and indices.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dermcds::converter {

using Shape = std::vector<std::int64_t>;

std::int64_t element_count(const Shape& shape);
std::string shape_text(const Shape& shape);  // "[1,3,224,224]"

struct HostTensor {
  enum class Kind { kFloat, kInt };

  Kind kind = Kind::kFloat;
  Shape shape;
  std::vector<float> floats;       // kFloat
  std::vector<std::int64_t> ints;  // kInt

  static HostTensor from_floats(Shape shape, std::vector<float> values);
  static HostTensor from_ints(Shape shape, std::vector<std::int64_t> values);
  static HostTensor scalar(float value) { return from_floats({}, {value}); }

  bool is_float() const { return kind == Kind::kFloat; }
  std::int64_t size() const { return element_count(shape); }
  // Element i as a double / an integer, whatever the kind.
  double as_double(std::int64_t i) const;
  std::int64_t as_int(std::int64_t i) const;
  // All elements converted to float / int64.
  std::vector<float> to_floats() const;
  std::vector<std::int64_t> to_ints() const;
};

// Moves dimensions: out.shape[i] = in.shape[perm[i]].
HostTensor transpose(const HostTensor& in, const std::vector<int>& perm);

// The same elements under another shape with the same element count.
HostTensor reshape(HostTensor in, Shape shape);

// Numpy-style broadcasting of two shapes; throws std::invalid_argument when they do not
// broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b);

// Materializes `in` broadcast to `shape` (which it must broadcast to).
HostTensor broadcast_to(const HostTensor& in, const Shape& shape);

}  // namespace dermcds::converter
