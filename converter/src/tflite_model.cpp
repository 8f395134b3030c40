#include "tflite_model.hpp"

#include <algorithm>
#include <cstring>

#include "dermcds/error.hpp"
#include "float16.hpp"

namespace dermcds::converter {

std::int64_t TflTensor::element_count() const {
  std::int64_t n = 1;
  for (std::int32_t d : shape) n *= d;
  return n;
}

int TflModel::add_tensor(TflTensor tensor) {
  tensors.push_back(std::move(tensor));
  return static_cast<int>(tensors.size()) - 1;
}

int TflModel::add_activation(std::string name, std::vector<std::int32_t> shape, TensorType type) {
  TflTensor t;
  t.name = std::move(name);
  t.type = type;
  t.shape = std::move(shape);
  return add_tensor(std::move(t));
}

int TflModel::add_float_constant(std::string name, std::vector<std::int32_t> shape, std::span<const float> values) {
  TflTensor t;
  t.name = std::move(name);
  t.type = TensorType::FLOAT32;
  t.shape = std::move(shape);
  if (t.element_count() != static_cast<std::int64_t>(values.size()))
    throw Error(ErrorCode::kInternal, "constant '" + t.name + "': value count does not match its shape");
  set_float_values(t, values);
  t.constant = true;
  return add_tensor(std::move(t));
}

int TflModel::add_int32_constant(std::string name, std::vector<std::int32_t> shape, std::span<const std::int32_t> values) {
  TflTensor t;
  t.name = std::move(name);
  t.type = TensorType::INT32;
  t.shape = std::move(shape);
  if (t.element_count() != static_cast<std::int64_t>(values.size()))
    throw Error(ErrorCode::kInternal, "constant '" + t.name + "': value count does not match its shape");
  t.data.resize(values.size() * sizeof(std::int32_t));
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), t.data.size());
  t.constant = true;
  return add_tensor(std::move(t));
}

int TflModel::add_int32_vector(std::string name, std::span<const std::int32_t> values) {
  return add_int32_constant(std::move(name), {static_cast<std::int32_t>(values.size())}, values);
}

std::vector<std::size_t> TflModel::consumers(int t) const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < operators.size(); ++i)
    if (std::find(operators[i].inputs.begin(), operators[i].inputs.end(), t) != operators[i].inputs.end()) out.push_back(i);
  return out;
}

int TflModel::producer(int t) const {
  for (std::size_t i = 0; i < operators.size(); ++i)
    if (std::find(operators[i].outputs.begin(), operators[i].outputs.end(), t) != operators[i].outputs.end()) return static_cast<int>(i);
  return -1;
}

bool TflModel::is_model_output(int t) const { return std::find(outputs.begin(), outputs.end(), t) != outputs.end(); }
bool TflModel::is_model_input(int t) const { return std::find(inputs.begin(), inputs.end(), t) != inputs.end(); }

std::vector<float> float_values(const TflTensor& tensor) {
  const auto n = static_cast<std::size_t>(tensor.element_count());
  std::vector<float> out(n);
  if (tensor.type == TensorType::FLOAT32) {
    if (tensor.data.size() != n * sizeof(float)) throw Error(ErrorCode::kInternal, "tensor '" + tensor.name + "' has no float data");
    std::memcpy(out.data(), tensor.data.data(), tensor.data.size());
  } else if (tensor.type == TensorType::FLOAT16) {
    for (std::size_t i = 0; i < n; ++i) {
      std::uint16_t h;
      std::memcpy(&h, tensor.data.data() + 2 * i, 2);
      out[i] = half_to_float(h);
    }
  } else {
    throw Error(ErrorCode::kInternal, "tensor '" + tensor.name + "' is not a float constant");
  }
  return out;
}

std::vector<std::int32_t> int32_values(const TflTensor& tensor) {
  if (tensor.type != TensorType::INT32) throw Error(ErrorCode::kInternal, "tensor '" + tensor.name + "' is not an int32 constant");
  std::vector<std::int32_t> out(tensor.data.size() / sizeof(std::int32_t));
  if (!out.empty()) std::memcpy(out.data(), tensor.data.data(), tensor.data.size());
  return out;
}

void set_float_values(TflTensor& tensor, std::span<const float> values) {
  tensor.type = TensorType::FLOAT32;
  tensor.data.resize(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(tensor.data.data(), values.data(), tensor.data.size());
}

std::string_view operator_name(BuiltinOperator code) { return tflite::EnumNameBuiltinOperator(code); }

}  // namespace dermcds::converter
