#include "tflite_passes.hpp"

#include <algorithm>

#include "tflite_writer.hpp"

namespace dermcds::converter {

namespace {

using tflite::ActivationFunctionType;
using tflite::BuiltinOptions;

ActivationFunctionType* activation_slot(TflOperator& op) {
  auto& o = op.options;
  switch (o.type) {
    case BuiltinOptions::Conv2DOptions:
      return &o.AsConv2DOptions()->fused_activation_function;
    case BuiltinOptions::DepthwiseConv2DOptions:
      return &o.AsDepthwiseConv2DOptions()->fused_activation_function;
    case BuiltinOptions::FullyConnectedOptions:
      return &o.AsFullyConnectedOptions()->fused_activation_function;
    case BuiltinOptions::AddOptions:
      return &o.AsAddOptions()->fused_activation_function;
    case BuiltinOptions::SubOptions:
      return &o.AsSubOptions()->fused_activation_function;
    case BuiltinOptions::MulOptions:
      return &o.AsMulOptions()->fused_activation_function;
    case BuiltinOptions::Pool2DOptions:
      return &o.AsPool2DOptions()->fused_activation_function;
    default:
      return nullptr;
  }
}

void replace_uses(TflModel& model, int from, int to) {
  for (TflOperator& op : model.operators)
    for (int& t : op.inputs)
      if (t == from) t = to;
}

// TFLite 2.9's CONCATENATION kernel refuses a fused activation ("params->activation !=
// kTfLiteActNone"), so concat has no slot. act(concat(a, b, ...)) = concat(act(a), act(b), ...):
// when every input comes from an operator with a free slot that nothing else reads (the
// convolutions of a grouped convolution), the activation goes into each of them.
bool push_into_concat_inputs(TflModel& model, const TflOperator& concat, ActivationFunctionType type) {
  std::vector<ActivationFunctionType*> slots;
  for (int t : concat.inputs) {
    const int p = model.producer(t);
    if (p < 0 || model.is_model_output(t) || model.consumers(t).size() != 1) return false;
    TflOperator& producer = model.operators[static_cast<std::size_t>(p)];
    ActivationFunctionType* slot = activation_slot(producer);
    if (!slot || *slot != ActivationFunctionType::NONE || producer.outputs.size() != 1) return false;
    slots.push_back(slot);
  }
  for (ActivationFunctionType* slot : slots) *slot = type;
  return true;
}

std::size_t fuse_activations(TflModel& model) {
  std::size_t fused = 0;
  for (std::size_t i = 0; i < model.operators.size();) {
    const TflOperator& act = model.operators[i];
    ActivationFunctionType type;
    if (act.code == BuiltinOperator::RELU)
      type = ActivationFunctionType::RELU;
    else if (act.code == BuiltinOperator::RELU6)
      type = ActivationFunctionType::RELU6;
    else if (act.code == BuiltinOperator::RELU_N1_TO_1)
      type = ActivationFunctionType::RELU_N1_TO_1;
    else {
      ++i;
      continue;
    }
    const int t = act.inputs.at(0);
    const int p = model.producer(t);
    if (p < 0 || model.is_model_output(t) || model.consumers(t).size() != 1) {
      ++i;
      continue;
    }
    TflOperator& producer = model.operators[static_cast<std::size_t>(p)];
    if (producer.code == BuiltinOperator::CONCATENATION && push_into_concat_inputs(model, producer, type)) {
      producer.outputs[0] = act.outputs.at(0);
      model.operators.erase(model.operators.begin() + static_cast<std::ptrdiff_t>(i));
      ++fused;
      continue;
    }
    ActivationFunctionType* slot = activation_slot(producer);
    if (!slot || *slot != ActivationFunctionType::NONE || producer.outputs.size() != 1) {
      ++i;
      continue;
    }
    *slot = type;
    producer.outputs[0] = act.outputs.at(0);
    model.operators.erase(model.operators.begin() + static_cast<std::ptrdiff_t>(i));
    ++fused;
  }
  return fused;
}

std::size_t simplify_reshapes(TflModel& model) {
  std::size_t removed = 0;
  bool changed = true;
  while (changed) {
    changed = false;
    for (std::size_t i = 0; i < model.operators.size(); ++i) {
      const TflOperator& op = model.operators[i];
      if (op.code != BuiltinOperator::RESHAPE) continue;
      const int in = op.inputs.at(0), out = op.outputs.at(0);
      // RESHAPE(RESHAPE(x)) = RESHAPE(x) when the middle tensor is not needed elsewhere.
      const int p = model.producer(in);
      if (p >= 0 && model.operators[static_cast<std::size_t>(p)].code == BuiltinOperator::RESHAPE && model.consumers(in).size() == 1 &&
          !model.is_model_output(in)) {
        model.operators[i].inputs[0] = model.operators[static_cast<std::size_t>(p)].inputs.at(0);
        model.operators.erase(model.operators.begin() + p);
        ++removed;
        changed = true;
        break;
      }
      // A RESHAPE to the shape it already has.
      if (model.tensors[static_cast<std::size_t>(in)].shape == model.tensors[static_cast<std::size_t>(out)].shape) {
        if (!model.is_model_output(out)) {
          replace_uses(model, out, in);
        } else if (p >= 0 && !model.is_model_output(in) && !model.is_model_input(in)) {
          replace_uses(model, in, out);
          for (int& t : model.operators[static_cast<std::size_t>(p)].outputs)
            if (t == in) t = out;
        } else {
          continue;
        }
        model.operators.erase(model.operators.begin() + static_cast<std::ptrdiff_t>(i));
        ++removed;
        changed = true;
        break;
      }
    }
  }
  return removed;
}

std::size_t remove_dead_operators(TflModel& model) {
  std::size_t removed = 0;
  std::vector<bool> needed(model.tensors.size(), false);
  for (int t : model.outputs) needed[static_cast<std::size_t>(t)] = true;
  std::vector<bool> keep(model.operators.size(), false);
  for (std::size_t i = model.operators.size(); i-- > 0;) {
    const TflOperator& op = model.operators[i];
    keep[i] = std::any_of(op.outputs.begin(), op.outputs.end(), [&](int t) { return needed[static_cast<std::size_t>(t)]; });
    if (!keep[i]) {
      ++removed;
      continue;
    }
    for (int t : op.inputs)
      if (t >= 0) needed[static_cast<std::size_t>(t)] = true;
  }
  std::vector<TflOperator> kept;
  for (std::size_t i = 0; i < model.operators.size(); ++i)
    if (keep[i]) kept.push_back(std::move(model.operators[i]));
  model.operators = std::move(kept);
  return removed;
}

}  // namespace

TflPassReport optimize_tflite(TflModel& model) {
  TflPassReport report;
  report.removed_reshapes = simplify_reshapes(model);
  report.fused_activations = fuse_activations(model);
  report.removed_dead = remove_dead_operators(model);
  remove_unused_tensors(model);
  return report;
}

}  // namespace dermcds::converter
