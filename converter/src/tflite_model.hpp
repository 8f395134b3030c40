// The TFLite model under construction: one subgraph of tensors and operators, in the terms of
// the TFLite format (NHWC activations, TFLite operator codes and options), before it is
// serialized by tflite_writer.hpp. Lowering builds it; TFLite-level passes (activation fusion,
// fp16 weights, int8 quantization) rewrite it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tflite_subset_generated.h"

namespace dermcds::converter {

using tflite::BuiltinOperator;
using tflite::TensorType;

struct Quantization {
  std::vector<float> scale;  // one per tensor, or one per channel of `dimension`
  std::vector<std::int64_t> zero_point;
  int dimension = 0;
  bool empty() const { return scale.empty(); }
};

struct TflTensor {
  std::string name;
  TensorType type = TensorType::FLOAT32;
  std::vector<std::int32_t> shape;
  bool constant = false;           // true: `data` holds the contents (possibly zero elements)
  std::vector<std::uint8_t> data;  // constant contents, little-endian
  Quantization quantization;
  bool dynamic_batch = false;  // written as shape_signature [-1, ...]

  bool is_constant() const { return constant; }
  std::int64_t element_count() const;
};

struct TflOperator {
  BuiltinOperator code = BuiltinOperator::ADD;
  std::vector<int> inputs;  // tensor indices; -1 for an omitted optional input
  std::vector<int> outputs;
  tflite::BuiltinOptionsUnion options;
};

class TflModel {
 public:
  std::vector<TflTensor> tensors;
  std::vector<TflOperator> operators;  // execution order
  std::vector<int> inputs;
  std::vector<int> outputs;
  std::string description;

  int add_tensor(TflTensor tensor);
  int add_activation(std::string name, std::vector<std::int32_t> shape, TensorType type = TensorType::FLOAT32);
  int add_float_constant(std::string name, std::vector<std::int32_t> shape, std::span<const float> values);
  int add_int32_constant(std::string name, std::vector<std::int32_t> shape, std::span<const std::int32_t> values);
  // A 1-D int32 constant (shapes, axes, permutations).
  int add_int32_vector(std::string name, std::span<const std::int32_t> values);

  // Appends an operator; `options` is one of the generated *OptionsT tables, or omitted.
  template <typename Options>
  void add_operator(BuiltinOperator code, std::vector<int> inputs, std::vector<int> outputs, Options options) {
    TflOperator op{code, std::move(inputs), std::move(outputs), {}};
    op.options.Set(std::move(options));
    operators.push_back(std::move(op));
  }
  void add_operator(BuiltinOperator code, std::vector<int> inputs, std::vector<int> outputs) {
    operators.push_back(TflOperator{code, std::move(inputs), std::move(outputs), {}});
  }

  // Indices of the operators that read tensor `t`.
  std::vector<std::size_t> consumers(int t) const;
  // Index of the operator that writes tensor `t`, or -1.
  int producer(int t) const;
  bool is_model_output(int t) const;
  bool is_model_input(int t) const;
};

// Reading and writing constant contents.
std::vector<float> float_values(const TflTensor& tensor);
std::vector<std::int32_t> int32_values(const TflTensor& tensor);
void set_float_values(TflTensor& tensor, std::span<const float> values);

std::string_view operator_name(BuiltinOperator code);

}  // namespace dermcds::converter
