// Whole-model test inputs: real photographs and synthetic lesion images, decoded and
// preprocessed by the core exactly as at inference, in both layouts (NCHW for ONNX Runtime, NHWC
// for TFLite; the core writes each layout itself, so the comparison does not depend on the
// converter's own transposition code).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "dermcds/preprocess.hpp"
#include "dermcds/tensor.hpp"

namespace dermcds::test {

struct PreparedInput {
  std::string source;  // file name
  Tensor nchw;         // [1,3,S,S]
  Tensor nhwc;         // [1,S,S,3]
};

// The images in `dir` (*.png, *.jpg, sorted), at most `limit` of them.
std::vector<std::filesystem::path> images_in(const std::filesystem::path& dir, std::size_t limit);

std::vector<PreparedInput> prepare_inputs(const std::vector<std::filesystem::path>& images, const InputSpec& spec);

// Softmax of a [1, classes] logits tensor.
std::vector<float> probabilities(const Tensor& logits);

}  // namespace dermcds::test
