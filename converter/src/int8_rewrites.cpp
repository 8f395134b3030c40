#include "int8_rewrites.hpp"

#include <string>

namespace dermcds::converter {

namespace {

int scalar(TflModel& m, const std::string& name, float value) {
  return m.add_float_constant(name, {}, std::span<const float>(&value, 1));
}

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

}  // namespace

std::size_t rewrite_for_int8(TflModel& model) {
  std::size_t rewritten_count = 0;
  std::vector<TflOperator> rewritten;
  for (TflOperator& op : model.operators) {
    if (op.code != BuiltinOperator::HARD_SWISH) {
      rewritten.push_back(std::move(op));
      continue;
    }
    for (TflOperator& o : expand_hard_swish(model, op)) rewritten.push_back(std::move(o));
    ++rewritten_count;
  }
  model.operators = std::move(rewritten);
  return rewritten_count;
}

}  // namespace dermcds::converter
