#include "lowering.hpp"

#include <algorithm>
#include <limits>

#include "dermcds/error.hpp"
#include "dermcds/file_util.hpp"

namespace dermcds::converter {

std::int32_t to_int32(std::int64_t value, const Node& node, const std::string& what) {
  if (value < std::numeric_limits<std::int32_t>::min() || value > std::numeric_limits<std::int32_t>::max())
    unsupported(node, what + " " + std::to_string(value) + " does not fit TFLite's 32-bit integers");
  return static_cast<std::int32_t>(value);
}

std::vector<std::int32_t> to_int32(const Shape& shape) {
  std::vector<std::int32_t> out;
  for (std::int64_t d : shape) {
    if (d < 0 || d > std::numeric_limits<std::int32_t>::max())
      throw Error(ErrorCode::kUnsupportedModel, "dimension " + std::to_string(d) + " does not fit a TFLite shape");
    out.push_back(static_cast<std::int32_t>(d));
  }
  return out;
}

void unsupported(const Node& node, const std::string& why) { throw Error(ErrorCode::kUnsupportedModel, node.label() + ": " + why); }

void malformed(const Node& node, const std::string& why) { throw Error(ErrorCode::kInvalidArgument, node.label() + ": " + why); }

const HostTensor& require_constant(LoweringContext& ctx, const Node& node, std::size_t input, const std::string& what) {
  if (!node.has_input(input)) malformed(node, "has no " + what + " input");
  if (!ctx.is_constant(node.inputs[input]))
    unsupported(node, what + " ('" + node.inputs[input] + "') must be a constant (an initializer or computable from them)");
  return ctx.constant(node.inputs[input]);
}

Shape LoweringContext::shape_of(const std::string& name) const {
  if (graph_.is_constant(name)) return graph_.constant(name).shape;
  const auto it = lowered_.find(name);
  if (it == lowered_.end()) throw Error(ErrorCode::kInvalidArgument, "value '" + name + "' is read before any node computes it");
  return it->second.onnx_shape;
}

Perm LoweringContext::layout_of(const std::string& name) const {
  if (graph_.is_constant(name)) return identity_perm(graph_.constant(name).shape.size());
  const auto it = lowered_.find(name);
  if (it == lowered_.end()) throw Error(ErrorCode::kInvalidArgument, "value '" + name + "' is read before any node computes it");
  return it->second.perm;
}

int LoweringContext::tensor_as_is(const std::string& name) {
  if (graph_.is_constant(name)) return tensor_identity(name);
  const auto it = lowered_.find(name);
  if (it == lowered_.end()) throw Error(ErrorCode::kInvalidArgument, "value '" + name + "' is read before any node computes it");
  return it->second.tensor;
}

int LoweringContext::tensor_in_layout(const std::string& name, const Perm& perm) {
  const auto key = std::make_pair(name, perm);
  if (const auto cached = layout_cache_.find(key); cached != layout_cache_.end()) return cached->second;

  int tensor = -1;
  if (graph_.is_constant(name)) {
    const HostTensor& c = graph_.constant(name);
    if (c.shape.size() != perm.size()) throw Error(ErrorCode::kInternal, "constant '" + name + "' asked for in a layout of another rank");
    const HostTensor t = is_identity(perm) ? c : converter::transpose(c, perm);
    const std::string base = is_identity(perm) ? name : name + "_permuted";
    if (t.is_float()) {
      tensor = float_constant(base, t.shape, t.floats);
    } else {
      std::vector<std::int32_t> values;
      for (std::int64_t v : t.ints) {
        if (v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max())
          throw Error(ErrorCode::kUnsupportedModel, "integer constant '" + name + "' holds " + std::to_string(v) + ", beyond int32");
        values.push_back(static_cast<std::int32_t>(v));
      }
      tensor = model_.add_int32_constant(unique_name(base), to_int32(t.shape), values);
    }
  } else {
    const auto it = lowered_.find(name);
    if (it == lowered_.end()) throw Error(ErrorCode::kInvalidArgument, "value '" + name + "' is read before any node computes it");
    const Lowered& l = it->second;
    if (l.perm.size() != perm.size()) throw Error(ErrorCode::kInternal, "value '" + name + "' asked for in a layout of another rank");
    if (l.perm == perm) {
      tensor = l.tensor;
    } else if (same_element_order(l.onnx_shape, l.perm, perm)) {
      tensor = reshape(l.tensor, to_tflite_order(l.onnx_shape, perm), name + "_relaid");
    } else {
      const Perm position = inverse(l.perm);  // position[onnx dim] = TFLite dim holding it now
      Perm q(perm.size());
      for (std::size_t i = 0; i < perm.size(); ++i) q[i] = position[static_cast<std::size_t>(perm[i])];
      tensor = transpose(l.tensor, q, name + "_transposed");
    }
  }
  layout_cache_[key] = tensor;
  return tensor;
}

int LoweringContext::define(const std::string& name, const Shape& onnx_shape, const Perm& perm) {
  if (onnx_shape.size() != perm.size()) throw Error(ErrorCode::kInternal, "value '" + name + "' defined with a layout of another rank");
  const int tensor = model_.add_activation(unique_name(name), to_int32(to_tflite_order(onnx_shape, perm)));
  lowered_[name] = Lowered{tensor, perm, onnx_shape};
  return tensor;
}

void LoweringContext::alias(const std::string& name, int tensor, const Perm& perm, const Shape& onnx_shape) {
  if (to_int32(to_tflite_order(onnx_shape, perm)) != model_.tensors.at(static_cast<std::size_t>(tensor)).shape)
    throw Error(ErrorCode::kInternal, "alias '" + name + "' does not match its tensor's shape");
  lowered_[name] = Lowered{tensor, perm, onnx_shape};
}

int LoweringContext::intermediate(const std::string& base, const Shape& tflite_shape) {
  return model_.add_activation(unique_name(base), to_int32(tflite_shape));
}

int LoweringContext::float_constant(const std::string& base, const Shape& tflite_shape, std::span<const float> values) {
  return model_.add_float_constant(unique_name(base), to_int32(tflite_shape), values);
}

int LoweringContext::int32_vector(const std::string& base, std::span<const std::int32_t> values) {
  return model_.add_int32_vector(unique_name(base), values);
}

int LoweringContext::reshape(int input, const Shape& tflite_shape, const std::string& base, int output) {
  if (output < 0) output = intermediate(base, tflite_shape);
  const std::vector<std::int32_t> dims = to_int32(tflite_shape);
  const int shape_tensor = int32_vector(base + "_shape", dims);
  tflite::ReshapeOptionsT options;
  options.new_shape = dims;
  model_.add_operator(BuiltinOperator::RESHAPE, {input, shape_tensor}, {output}, std::move(options));
  return output;
}

int LoweringContext::transpose(int input, const Perm& tflite_perm, const std::string& base, int output) {
  const Shape in = tflite_shape(input);
  Shape out_shape(tflite_perm.size());
  for (std::size_t i = 0; i < tflite_perm.size(); ++i) out_shape[i] = in.at(static_cast<std::size_t>(tflite_perm[i]));
  if (output < 0) output = intermediate(base, out_shape);
  const std::vector<std::int32_t> perm(tflite_perm.begin(), tflite_perm.end());
  const int perm_tensor = int32_vector(base + "_perm", perm);
  model_.add_operator(BuiltinOperator::TRANSPOSE, {input, perm_tensor}, {output}, tflite::TransposeOptionsT{});
  return output;
}

Shape LoweringContext::tflite_shape(int tensor) const {
  const auto& s = model_.tensors.at(static_cast<std::size_t>(tensor)).shape;
  return Shape(s.begin(), s.end());
}

std::string LoweringContext::unique_name(const std::string& base) {
  const int n = name_counts_[base]++;
  return n == 0 ? base : base + "_" + std::to_string(n);
}

namespace {

const LoweringTable& lowering_table() {
  static const LoweringTable table = [] {
    LoweringTable t;
    register_conv_lowerings(t);
    register_pool_lowerings(t);
    register_elementwise_lowerings(t);
    register_linear_lowerings(t);
    register_shape_lowerings(t);
    register_reduce_lowerings(t);
    return t;
  }();
  return table;
}

std::string joined_supported_operators() { return join(supported_operators()); }

}  // namespace

std::vector<std::string> supported_operators() {
  std::vector<std::string> ops;
  for (const auto& [name, fn] : lowering_table()) ops.push_back(name);
  std::sort(ops.begin(), ops.end());
  return ops;
}

TflModel lower_graph(const Graph& graph, const LoweringOptions& options) {
  TflModel model;
  LoweringContext ctx(graph, model);

  for (const std::string& input : graph.inputs) {
    const Value& v = graph.value(input);
    if (!v.shape_known) throw Error(ErrorCode::kUnsupportedModel, "input '" + input + "' has no static shape");
    const Perm perm = options.channels_first_inputs ? identity_perm(v.shape.size()) : channels_last_perm(v.shape.size());
    const int t = ctx.define(input, v.shape, perm);
    model.tensors[static_cast<std::size_t>(t)].dynamic_batch =
        std::find(graph.dynamic_batch_inputs.begin(), graph.dynamic_batch_inputs.end(), input) != graph.dynamic_batch_inputs.end();
    model.inputs.push_back(t);
  }

  const LoweringTable& table = lowering_table();
  for (const Node& node : graph.nodes) {
    const auto fn = table.find(node.op_type);
    if (fn == table.end())
      unsupported(node,
                  "operator " + node.op_type + " is not supported by the converter (supported: " + joined_supported_operators() + ")");
    fn->second(ctx, node);
    const bool inputs_diverged =
        std::any_of(node.inputs.begin(), node.inputs.end(), [&](const std::string& in) { return ctx.shape_diverged(in); });
    for (const std::string& output : node.outputs) {
      if (inputs_diverged && !output.empty()) ctx.mark_shape_divergence(output);
      if (output.empty() || graph.is_constant(output)) continue;
      const Value& v = graph.value(output);
      Shape lowered_shape;
      try {
        lowered_shape = ctx.shape_of(output);
      } catch (const Error&) {
        if (graph.consumers(output).empty() && !graph.is_graph_output(output)) continue;  // an unused optional output
        throw Error(ErrorCode::kInternal, node.label() + ": lowering did not produce output '" + output + "'");
      }
      if (v.shape_known && v.shape != lowered_shape && !ctx.shape_diverged(output))
        throw Error(ErrorCode::kInternal, node.label() + ": lowered output '" + output + "' has shape " + shape_text(lowered_shape) +
                                              ", ONNX shape inference says " + shape_text(v.shape));
    }
  }

  const bool dynamic_batch = !graph.dynamic_batch_inputs.empty();
  for (const std::string& output : graph.outputs) {
    if (graph.is_constant(output))
      throw Error(ErrorCode::kUnsupportedModel, "output '" + output + "' is a constant; the model computes nothing from its input");
    int t = ctx.tensor_identity(output);
    if (model.is_model_input(t) || model.is_model_output(t))  // an output that is an input, or listed twice: copy it
      t = ctx.reshape(t, ctx.tflite_shape(t), output);
    // The TFLite tensor carries the ONNX output's name; whatever held that name steps aside.
    for (TflTensor& other : model.tensors)
      if (other.name == output) other.name = ctx.unique_name(output + "_internal");
    TflTensor& tensor = model.tensors[static_cast<std::size_t>(t)];
    tensor.name = output;
    tensor.dynamic_batch = dynamic_batch && !tensor.shape.empty() && tensor.shape[0] == 1;
    model.outputs.push_back(t);
  }
  return model;
}

}  // namespace dermcds::converter
