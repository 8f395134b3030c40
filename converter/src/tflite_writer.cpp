#include "tflite_writer.hpp"

#include <map>
#include <memory>
#include <set>

#include "dermcds/error.hpp"
#include "op_versions.hpp"

namespace dermcds::converter {

namespace {

void check_model(const TflModel& model) {
  const int count = static_cast<int>(model.tensors.size());
  auto check_index = [&](int t, bool optional_allowed) {
    if ((t == -1 && optional_allowed) || (t >= 0 && t < count)) return;
    throw Error(ErrorCode::kInternal, "TFLite model refers to tensor " + std::to_string(t) + " of " + std::to_string(count));
  };
  std::set<int> written(model.inputs.begin(), model.inputs.end());
  for (int t : model.inputs) check_index(t, false);
  for (const TflOperator& op : model.operators) {
    for (int t : op.inputs) {
      check_index(t, true);
      if (t >= 0 && !model.tensors[static_cast<std::size_t>(t)].is_constant() && !written.count(t))
        throw Error(ErrorCode::kInternal, std::string(operator_name(op.code)) + " reads tensor '" +
                                              model.tensors[static_cast<std::size_t>(t)].name + "' before anything writes it");
    }
    for (int t : op.outputs) {
      check_index(t, false);
      if (!written.insert(t).second)
        throw Error(ErrorCode::kInternal, "tensor '" + model.tensors[static_cast<std::size_t>(t)].name + "' is written twice");
    }
  }
  for (int t : model.outputs) {
    check_index(t, false);
    if (!written.count(t))
      throw Error(ErrorCode::kInternal, "model output '" + model.tensors[static_cast<std::size_t>(t)].name + "' is never written");
  }
}

std::unique_ptr<tflite::QuantizationParametersT> quantization_of(const Quantization& q) {
  if (q.empty()) return nullptr;
  auto out = std::make_unique<tflite::QuantizationParametersT>();
  out->scale = q.scale;
  out->zero_point = q.zero_point;
  out->quantized_dimension = q.dimension;
  return out;
}

}  // namespace

std::vector<std::uint8_t> serialize_tflite(const TflModel& model) {
  check_model(model);

  tflite::ModelT out;
  out.version = 3;
  out.description = model.description;
  out.buffers.push_back(std::make_unique<tflite::BufferT>());  // the empty sentinel, buffer 0

  auto subgraph = std::make_unique<tflite::SubGraphT>();
  subgraph->name = "main";
  for (const TflTensor& t : model.tensors) {
    auto tensor = std::make_unique<tflite::TensorT>();
    tensor->name = t.name;
    tensor->type = t.type;
    tensor->shape = t.shape;
    if (t.dynamic_batch && !t.shape.empty()) {
      tensor->shape_signature = t.shape;
      tensor->shape_signature[0] = -1;
    }
    tensor->quantization = quantization_of(t.quantization);
    if (t.is_constant()) {
      auto buffer = std::make_unique<tflite::BufferT>();
      buffer->data = t.data;
      tensor->buffer = static_cast<std::uint32_t>(out.buffers.size());
      out.buffers.push_back(std::move(buffer));
    }
    subgraph->tensors.push_back(std::move(tensor));
  }

  std::map<std::pair<BuiltinOperator, int>, std::uint32_t> opcode_index;
  for (const TflOperator& op : model.operators) {
    const int version = operator_version(model, op);
    auto [it, added] = opcode_index.try_emplace({op.code, version}, static_cast<std::uint32_t>(out.operator_codes.size()));
    if (added) {
      auto code = std::make_unique<tflite::OperatorCodeT>();
      code->builtin_code = op.code;
      // Readers that predate the 32-bit field take the 8-bit one; every code we emit fits.
      code->deprecated_builtin_code = static_cast<std::int8_t>(static_cast<int>(op.code));
      code->version = version;
      out.operator_codes.push_back(std::move(code));
    }
    auto o = std::make_unique<tflite::OperatorT>();
    o->opcode_index = it->second;
    o->inputs = op.inputs;
    o->outputs = op.outputs;
    o->builtin_options = op.options;
    subgraph->operators.push_back(std::move(o));
  }
  subgraph->inputs = model.inputs;
  subgraph->outputs = model.outputs;
  out.subgraphs.push_back(std::move(subgraph));

  flatbuffers::FlatBufferBuilder builder(1 << 20);
  builder.Finish(tflite::Model::Pack(builder, &out), tflite::ModelIdentifier());
  return std::vector<std::uint8_t>(builder.GetBufferPointer(), builder.GetBufferPointer() + builder.GetSize());
}

void remove_unused_tensors(TflModel& model) {
  std::vector<char> used(model.tensors.size(), 0);
  auto mark = [&](int t) {
    if (t >= 0) used[static_cast<std::size_t>(t)] = 1;
  };
  for (int t : model.inputs) mark(t);
  for (int t : model.outputs) mark(t);
  for (const TflOperator& op : model.operators) {
    for (int t : op.inputs) mark(t);
    for (int t : op.outputs) mark(t);
  }
  std::vector<int> renumber(model.tensors.size(), -1);
  std::vector<TflTensor> kept;
  for (std::size_t i = 0; i < model.tensors.size(); ++i) {
    if (!used[i]) continue;
    renumber[i] = static_cast<int>(kept.size());
    kept.push_back(std::move(model.tensors[i]));
  }
  model.tensors = std::move(kept);
  auto remap = [&](std::vector<int>& indices) {
    for (int& t : indices)
      if (t >= 0) t = renumber[static_cast<std::size_t>(t)];
  };
  remap(model.inputs);
  remap(model.outputs);
  for (TflOperator& op : model.operators) {
    remap(op.inputs);
    remap(op.outputs);
  }
}

}  // namespace dermcds::converter
