#include "layout.hpp"

#include <stdexcept>
#include <string>

namespace dermcds::converter {

Perm identity_perm(std::size_t rank) {
  Perm p(rank);
  for (std::size_t i = 0; i < rank; ++i) p[i] = static_cast<int>(i);
  return p;
}

Perm channels_last_perm(std::size_t rank) {
  if (rank == 4) return {0, 2, 3, 1};
  return identity_perm(rank);
}

bool is_identity(const Perm& perm) {
  for (std::size_t i = 0; i < perm.size(); ++i)
    if (perm[i] != static_cast<int>(i)) return false;
  return true;
}

Perm inverse(const Perm& perm) {
  Perm inv(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) inv[static_cast<std::size_t>(perm[i])] = static_cast<int>(i);
  return inv;
}

Shape to_tflite_order(const Shape& onnx_shape, const Perm& perm) {
  Shape out(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) out[i] = onnx_shape.at(static_cast<std::size_t>(perm[i]));
  return out;
}

Shape to_onnx_order(const Shape& tflite_shape, const Perm& perm) {
  Shape out(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) out[static_cast<std::size_t>(perm[i])] = tflite_shape.at(i);
  return out;
}

int tflite_axis(const Perm& perm, int onnx_axis) {
  for (std::size_t i = 0; i < perm.size(); ++i)
    if (perm[i] == onnx_axis) return static_cast<int>(i);
  throw std::out_of_range("axis " + std::to_string(onnx_axis) + " is not in the layout");
}

bool same_element_order(const Shape& onnx_shape, const Perm& a, const Perm& b) {
  std::vector<int> order_a, order_b;
  for (int d : a)
    if (onnx_shape.at(static_cast<std::size_t>(d)) != 1) order_a.push_back(d);
  for (int d : b)
    if (onnx_shape.at(static_cast<std::size_t>(d)) != 1) order_b.push_back(d);
  return order_a == order_b;
}

int normalize_axis(std::int64_t axis, std::size_t rank) {
  const auto r = static_cast<std::int64_t>(rank);
  if (axis < -r || axis >= r) throw std::out_of_range("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return static_cast<int>(axis < 0 ? axis + r : axis);
}

}  // namespace dermcds::converter
