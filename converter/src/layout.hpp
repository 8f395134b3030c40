// Where ONNX dimensions live in a TFLite tensor.
//
// ONNX vision models are NCHW; TFLite's convolutions and pools are NHWC. Rather than transposing
// around every such operator, the converter records for each lowered value a permutation
// `perm`: TFLite dimension i holds ONNX dimension perm[i]. A value computed by an NHWC operator
// has perm [0,2,3,1]; most values never need any other. Operators that care about axes (Concat,
// Softmax, reductions, Pad, Slice ...) map their ONNX axes through the permutation; operators
// that care about element order (Reshape, Flatten, MatMul) ask for the identity layout, and a
// TRANSPOSE is inserted only then, or a RESHAPE when the two layouts order the elements the same
// way (when the dimensions that differ are of size 1, as after a global pool).
#pragma once

#include <cstdint>
#include <vector>

#include "host_tensor.hpp"

namespace dermcds::converter {

using Perm = std::vector<int>;

Perm identity_perm(std::size_t rank);
// [0,2,3,1] for rank 4 (NCHW -> NHWC); identity for other ranks.
Perm channels_last_perm(std::size_t rank);
bool is_identity(const Perm& perm);
Perm inverse(const Perm& perm);

// The TFLite shape of an ONNX shape under `perm`, and back.
Shape to_tflite_order(const Shape& onnx_shape, const Perm& perm);
Shape to_onnx_order(const Shape& tflite_shape, const Perm& perm);

// The TFLite axis that holds ONNX axis `onnx_axis` (already normalized to be non-negative).
int tflite_axis(const Perm& perm, int onnx_axis);

// True when a tensor of `onnx_shape` has the same elements in the same memory order under both
// permutations, so converting between them is a RESHAPE rather than a TRANSPOSE.
bool same_element_order(const Shape& onnx_shape, const Perm& a, const Perm& b);

// Normalizes an ONNX axis attribute (negative counts from the end); throws std::out_of_range.
int normalize_axis(std::int64_t axis, std::size_t rank);

}  // namespace dermcds::converter
