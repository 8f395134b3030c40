// Reductions (ReduceMean, ReduceSum, ReduceMax) and Softmax / LogSoftmax. Axes are mapped
// through the input's layout; TFLite's softmax works on the last dimension only, so the softmax
// axis is moved last when it is not already.
#include <algorithm>
#include <numeric>

#include "attributes.hpp"
#include "lowering.hpp"

namespace dermcds::converter {

namespace {

void lower_reduce(LoweringContext& ctx, const Node& node, BuiltinOperator code) {
  Attributes attributes(node);
  const bool keep_dims = attributes.get_int("keepdims", 1) != 0;
  std::vector<std::int64_t> axes;
  bool noop_with_empty_axes = false;
  // ReduceSum takes axes as an input from opset 13; the others from opset 18 (beyond ours).
  if (node.op_type == "ReduceSum" && ctx.graph().opset >= 13) {
    noop_with_empty_axes = attributes.get_int("noop_with_empty_axes", 0) != 0;
    if (node.has_input(1)) axes = require_constant(ctx, node, 1, "axes").to_ints();
  } else {
    axes = attributes.get_ints("axes", {});
  }
  attributes.check_all_read();

  const std::string& x = node.inputs.at(0);
  const Shape in = ctx.shape_of(x);
  if (axes.empty() && noop_with_empty_axes) {
    ctx.alias(node.outputs.at(0), ctx.tensor_as_is(x), ctx.layout_of(x), in);
    return;
  }
  std::vector<bool> reduced(in.size(), axes.empty());
  for (std::int64_t a : axes) {
    try {
      reduced[static_cast<std::size_t>(normalize_axis(a, in.size()))] = true;
    } catch (const std::out_of_range& e) {
      malformed(node, e.what());
    }
  }
  const Perm perm = ctx.layout_of(x);
  std::vector<std::int32_t> tfl_axes;
  for (std::size_t d = 0; d < in.size(); ++d)
    if (reduced[d]) tfl_axes.push_back(tflite_axis(perm, static_cast<int>(d)));
  std::sort(tfl_axes.begin(), tfl_axes.end());

  Shape out;
  Perm out_perm;
  if (keep_dims) {
    out = in;
    for (std::size_t d = 0; d < in.size(); ++d)
      if (reduced[d]) out[d] = 1;
    out_perm = perm;
  } else {
    std::vector<int> renumber(in.size(), -1);
    for (std::size_t d = 0; d < in.size(); ++d)
      if (!reduced[d]) {
        renumber[d] = static_cast<int>(out.size());
        out.push_back(in[d]);
      }
    for (int d : perm)
      if (!reduced[static_cast<std::size_t>(d)]) out_perm.push_back(renumber[static_cast<std::size_t>(d)]);
  }
  tflite::ReducerOptionsT o;
  o.keep_dims = keep_dims;
  ctx.model().add_operator(code, {ctx.tensor_as_is(x), ctx.int32_vector(node.name + "_axes", tfl_axes)},
                           {ctx.define(node.outputs.at(0), out, out_perm)}, std::move(o));
}

void emit_softmax(LoweringContext& ctx, bool log, int input, int output) {
  if (log) {
    ctx.model().add_operator(BuiltinOperator::LOG_SOFTMAX, {input}, {output}, tflite::LogSoftmaxOptionsT{});
  } else {
    tflite::SoftmaxOptionsT o;
    o.beta = 1.0f;
    ctx.model().add_operator(BuiltinOperator::SOFTMAX, {input}, {output}, std::move(o));
  }
}

void lower_softmax(LoweringContext& ctx, const Node& node, bool log) {
  Attributes attributes(node);
  const bool coerce_2d = ctx.graph().opset < 13;  // before 13: softmax over the flattened [axis:] block
  const std::int64_t axis_attr = attributes.get_int("axis", coerce_2d ? 1 : -1);
  attributes.check_all_read();
  const std::string& x = node.inputs.at(0);
  const Shape in = ctx.shape_of(x);
  int axis;
  try {
    axis = normalize_axis(axis_attr, in.size());
  } catch (const std::out_of_range& e) {
    malformed(node, e.what());
  }
  const std::string& out_name = node.outputs.at(0);

  if (coerce_2d && axis != static_cast<int>(in.size()) - 1) {
    const std::int64_t outer = std::accumulate(in.begin(), in.begin() + axis, std::int64_t{1}, std::multiplies<>());
    const std::int64_t inner = element_count(in) / outer;
    const int flat = ctx.reshape(ctx.tensor_identity(x), {outer, inner}, node.name + "_2d");
    const int soft = ctx.intermediate(node.name + "_softmax", {outer, inner});
    emit_softmax(ctx, log, flat, soft);
    ctx.reshape(soft, in, node.name, ctx.define(out_name, in, identity_perm(in.size())));
    return;
  }
  Perm perm = ctx.layout_of(x);
  if (tflite_axis(perm, axis) != static_cast<int>(in.size()) - 1) {
    perm.erase(std::find(perm.begin(), perm.end(), axis));
    perm.push_back(axis);
  }
  const int input = ctx.tensor_in_layout(x, perm);
  emit_softmax(ctx, log, input, ctx.define(out_name, in, perm));
}

}  // namespace

void register_reduce_lowerings(LoweringTable& table) {
  table["ReduceMean"] = [](LoweringContext& c, const Node& n) { lower_reduce(c, n, BuiltinOperator::MEAN); };
  table["ReduceSum"] = [](LoweringContext& c, const Node& n) { lower_reduce(c, n, BuiltinOperator::SUM); };
  table["ReduceMax"] = [](LoweringContext& c, const Node& n) { lower_reduce(c, n, BuiltinOperator::REDUCE_MAX); };
  table["Softmax"] = [](LoweringContext& c, const Node& n) { lower_softmax(c, n, false); };
  table["LogSoftmax"] = [](LoweringContext& c, const Node& n) { lower_softmax(c, n, true); };
}

}  // namespace dermcds::converter
