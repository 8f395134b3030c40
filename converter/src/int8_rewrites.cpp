#include "int8_rewrites.hpp"

#include <optional>
#include <string>

namespace dermcds::converter {

namespace {

int scalar(TflModel& m, const std::string& name, float value) { return m.add_float_constant(name, {}, std::span<const float>(&value, 1)); }

// x * (relu6(x + 3) * 1/6), computed into the HARD_SWISH's own output tensor.
std::vector<TflOperator> expand_hard_swish(TflModel& m, const TflOperator& op) {
  const int x = op.inputs.at(0), y = op.outputs.at(0);
  const std::string base = m.tensors[static_cast<std::size_t>(y)].name;
  const std::vector<std::int32_t> shape = m.tensors[static_cast<std::size_t>(x)].shape;
  const int shifted = m.add_activation(base + "_relu6", shape);
  const int gate = m.add_activation(base + "_gate", shape);
  std::vector<TflOperator> ops(3);
  tflite::AddOptionsT add;
  add.fused_activation_function = tflite::ActivationFunctionType::RELU6;
  ops[0] = TflOperator{BuiltinOperator::ADD, {x, scalar(m, base + "_three", 3.0f)}, {shifted}, {}};
  ops[0].options.Set(std::move(add));
  ops[1] = TflOperator{BuiltinOperator::MUL, {shifted, scalar(m, base + "_sixth", 1.0f / 6.0f)}, {gate}, {}};
  ops[1].options.Set(tflite::MulOptionsT{});
  ops[2] = TflOperator{BuiltinOperator::MUL, {x, gate}, {y}, {}};
  ops[2].options.Set(tflite::MulOptionsT{});
  return ops;
}

// FULLY_CONNECTED(x [M,K], W [N,K]) as a 1x1 CONV_2D over [M,1,1,K]: the same products, but
// TFLite 2.9's int8 CONV_2D takes per-output-channel weight scales and its FULLY_CONNECTED does
// not.
std::optional<std::vector<TflOperator>> fully_connected_as_conv(TflModel& m, const TflOperator& op) {
  const int x = op.inputs.at(0), w = op.inputs.at(1), y = op.outputs.at(0);
  const std::vector<std::int32_t> in = m.tensors[static_cast<std::size_t>(x)].shape;
  const std::vector<std::int32_t> weights = m.tensors[static_cast<std::size_t>(w)].shape;
  const std::vector<std::int32_t> out = m.tensors[static_cast<std::size_t>(y)].shape;
  const auto* options = op.options.AsFullyConnectedOptions();
  if (in.size() != 2 || weights.size() != 2 || !m.tensors[static_cast<std::size_t>(w)].is_constant() || !options || options->keep_num_dims)
    return std::nullopt;
  const std::string base = m.tensors[static_cast<std::size_t>(y)].name;
  const std::int32_t rows = in[0], k = in[1], n = weights[0];
  TflTensor& filter = m.tensors[static_cast<std::size_t>(w)];
  filter.shape = {n, 1, 1, k};
  const int x4 = m.add_activation(base + "_nhwc_in", {rows, 1, 1, k});
  const int y4 = m.add_activation(base + "_nhwc_out", {rows, 1, 1, n});
  std::vector<TflOperator> ops(3);
  tflite::ReshapeOptionsT to4;
  to4.new_shape = {rows, 1, 1, k};
  ops[0] = TflOperator{BuiltinOperator::RESHAPE, {x, m.add_int32_vector(base + "_nhwc_in_shape", to4.new_shape)}, {x4}, {}};
  ops[0].options.Set(std::move(to4));
  tflite::Conv2DOptionsT conv;
  conv.padding = tflite::Padding::VALID;
  conv.stride_h = conv.stride_w = 1;
  conv.fused_activation_function = options->fused_activation_function;
  ops[1] = TflOperator{BuiltinOperator::CONV_2D, {x4, w, op.inputs.size() > 2 ? op.inputs[2] : -1}, {y4}, {}};
  ops[1].options.Set(std::move(conv));
  tflite::ReshapeOptionsT to2;
  to2.new_shape = out;
  ops[2] = TflOperator{BuiltinOperator::RESHAPE, {y4, m.add_int32_vector(base + "_shape", out)}, {y}, {}};
  ops[2].options.Set(std::move(to2));
  return ops;
}

}  // namespace

std::size_t rewrite_for_int8(TflModel& model) {
  std::size_t rewritten_count = 0;
  std::vector<TflOperator> rewritten;
  for (TflOperator& op : model.operators) {
    if (op.code == BuiltinOperator::HARD_SWISH) {
      for (TflOperator& o : expand_hard_swish(model, op)) rewritten.push_back(std::move(o));
      ++rewritten_count;
      continue;
    }
    if (op.code == BuiltinOperator::FULLY_CONNECTED) {
      if (auto ops = fully_connected_as_conv(model, op)) {
        for (TflOperator& o : *ops) rewritten.push_back(std::move(o));
        ++rewritten_count;
        continue;
      }
    }
    rewritten.push_back(std::move(op));
  }
  model.operators = std::move(rewritten);
  return rewritten_count;
}

}  // namespace dermcds::converter
