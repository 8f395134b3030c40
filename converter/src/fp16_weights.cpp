#include "fp16_weights.hpp"

#include <algorithm>
#include <cstring>

#include "float16.hpp"

namespace dermcds::converter {

namespace {

// A filter or matrix: at least two dimensions above 1. Per-channel vectors (biases, the scales
// and shifts of an unfolded batch normalization, broadcast as [1, 1, 1, C]) stay float32: they are
// small, and rounding a product of parameters differs from rounding each (export_zoo.py rounds
// the ONNX reference by this same rule).
bool is_weight_tensor(const TflTensor& t) {
  return std::count_if(t.shape.begin(), t.shape.end(), [](std::int32_t d) { return d > 1; }) >= 2;
}

}  // namespace

std::vector<int> fp16_candidates(const TflModel& model, std::int64_t min_elements) {
  std::vector<int> candidates;
  for (std::size_t i = 0; i < model.tensors.size(); ++i) {
    const TflTensor& t = model.tensors[i];
    if (t.is_constant() && t.type == TensorType::FLOAT32 && t.element_count() >= min_elements && is_weight_tensor(t))
      candidates.push_back(static_cast<int>(i));
  }
  return candidates;
}

std::size_t store_weights_as_fp16(TflModel& model, std::int64_t min_elements, const std::set<int>& keep_float32) {
  std::vector<TflOperator> dequantizes;
  for (const int index : fp16_candidates(model, min_elements)) {
    if (keep_float32.count(index)) continue;
    const auto i = static_cast<std::size_t>(index);
    const std::vector<float> values = float_values(model.tensors[i]);
    TflTensor half;
    half.name = model.tensors[i].name + "_fp16";
    half.type = TensorType::FLOAT16;
    half.shape = model.tensors[i].shape;
    half.constant = true;
    half.data.resize(values.size() * sizeof(std::uint16_t));
    for (std::size_t j = 0; j < values.size(); ++j) {
      const std::uint16_t h = float_to_half(values[j]);
      std::memcpy(half.data.data() + 2 * j, &h, sizeof h);
    }
    const int half_index = model.add_tensor(std::move(half));
    // The float32 tensor becomes the DEQUANTIZE's output; its readers are unchanged.
    TflTensor& full = model.tensors[i];
    full.constant = false;
    full.data.clear();
    full.data.shrink_to_fit();
    dequantizes.push_back(TflOperator{BuiltinOperator::DEQUANTIZE, {half_index}, {static_cast<int>(i)}, {}});
    dequantizes.back().options.Set(tflite::DequantizeOptionsT{});
  }
  // Dequantizations first: every operator after them may read their outputs.
  model.operators.insert(model.operators.begin(), std::make_move_iterator(dequantizes.begin()), std::make_move_iterator(dequantizes.end()));
  return dequantizes.size();
}

}  // namespace dermcds::converter
