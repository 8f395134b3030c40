// Operators that move or relabel elements: Flatten, Reshape, Squeeze, Unsqueeze, Transpose,
// Concat, Split, Slice, Pad.
//
// Transpose emits nothing: it only changes which ONNX dimension each TFLite dimension holds
// (layout.hpp). Squeeze and Unsqueeze keep the element order, so they are RESHAPEs in whatever
// layout the input has. Flatten and Reshape are defined on the ONNX (row-major NCHW) element
// order, so they need the input in identity layout first.
#include <algorithm>
#include <numeric>

#include "attributes.hpp"
#include "lowering.hpp"

namespace dermcds::converter {

namespace {

// RESHAPE of ONNX value `x` (in ONNX element order) to `out_shape`, defining `out_name`.
void reshape_value(LoweringContext& ctx, const Node& node, const std::string& x, const Shape& out_shape, const std::string& out_name) {
  const Shape in_shape = ctx.shape_of(x);
  const Perm current = ctx.layout_of(x);
  // When the stored layout already has ONNX element order, reshape straight from it.
  const int input = same_element_order(in_shape, current, identity_perm(in_shape.size())) ? ctx.tensor_as_is(x) : ctx.tensor_identity(x);
  ctx.reshape(input, out_shape, node.name, ctx.define(out_name, out_shape, identity_perm(out_shape.size())));
}

void lower_flatten(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  const std::int64_t axis_attr = attributes.get_int("axis", 1);
  attributes.check_all_read();
  const std::string& x = node.inputs.at(0);
  const Shape s = ctx.shape_of(x);
  const auto rank = static_cast<std::int64_t>(s.size());
  if (axis_attr < -rank || axis_attr > rank) malformed(node, "axis " + std::to_string(axis_attr) + " is out of range");
  const std::int64_t axis = axis_attr < 0 ? axis_attr + rank : axis_attr;
  const std::int64_t outer = std::accumulate(s.begin(), s.begin() + axis, std::int64_t{1}, std::multiplies<>());
  const std::int64_t inner = std::accumulate(s.begin() + axis, s.end(), std::int64_t{1}, std::multiplies<>());
  reshape_value(ctx, node, x, {outer, inner}, node.outputs.at(0));
}

void lower_reshape(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  const bool allow_zero = attributes.get_int("allowzero", 0) != 0;
  attributes.check_all_read();
  const std::string& x = node.inputs.at(0);
  const Shape in = ctx.shape_of(x);
  const std::vector<std::int64_t> requested = require_constant(ctx, node, 1, "shape").to_ints();
  Shape out(requested.size());
  std::int64_t known = 1;
  int infer = -1;
  for (std::size_t i = 0; i < requested.size(); ++i) {
    std::int64_t d = requested[i];
    if (d == 0 && !allow_zero) {
      if (i >= in.size()) malformed(node, "shape copies dimension " + std::to_string(i) + ", which the input does not have");
      d = in[i];
    }
    if (d == -1) {
      if (infer >= 0) malformed(node, "shape has more than one -1");
      infer = static_cast<int>(i);
      continue;
    }
    if (d < 0) malformed(node, "shape has the negative dimension " + std::to_string(d));
    out[i] = d;
    known *= d;
  }
  if (infer >= 0) {
    if (known == 0 || element_count(in) % known != 0) malformed(node, "cannot infer the -1 dimension of " + shape_text(Shape(requested)));
    out[static_cast<std::size_t>(infer)] = element_count(in) / known;
  }
  if (element_count(out) != element_count(in)) malformed(node, "cannot reshape " + shape_text(in) + " to " + shape_text(out));
  reshape_value(ctx, node, x, out, node.outputs.at(0));
}

std::vector<std::int64_t> axes_of(LoweringContext& ctx, const Node& node, Attributes& attributes, std::size_t input) {
  if (ctx.graph().opset >= 13) {
    attributes.check_all_read();
    if (!node.has_input(input)) return {};
    return require_constant(ctx, node, input, "axes").to_ints();
  }
  std::vector<std::int64_t> axes = attributes.get_ints("axes", {});
  attributes.check_all_read();
  return axes;
}

void lower_squeeze(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  const std::string& x = node.inputs.at(0);
  const Shape in = ctx.shape_of(x);
  std::vector<std::int64_t> axes = axes_of(ctx, node, attributes, 1);
  attributes.check_all_read();
  std::vector<bool> removed(in.size(), false);
  if (axes.empty()) {
    for (std::size_t d = 0; d < in.size(); ++d) removed[d] = in[d] == 1;
  } else {
    for (std::int64_t a : axes) {
      int d;
      try {
        d = normalize_axis(a, in.size());
      } catch (const std::out_of_range& e) {
        malformed(node, e.what());
      }
      if (in[static_cast<std::size_t>(d)] != 1)
        malformed(node, "cannot squeeze axis " + std::to_string(a) + " of size " + std::to_string(in[static_cast<std::size_t>(d)]));
      removed[static_cast<std::size_t>(d)] = true;
    }
  }
  Shape out;
  std::vector<int> renumber(in.size(), -1);
  for (std::size_t d = 0; d < in.size(); ++d)
    if (!removed[d]) {
      renumber[d] = static_cast<int>(out.size());
      out.push_back(in[d]);
    }
  Perm perm;
  for (int d : ctx.layout_of(x))
    if (!removed[static_cast<std::size_t>(d)]) perm.push_back(renumber[static_cast<std::size_t>(d)]);
  ctx.reshape(ctx.tensor_as_is(x), to_tflite_order(out, perm), node.name, ctx.define(node.outputs.at(0), out, perm));
}

void lower_unsqueeze(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  const std::string& x = node.inputs.at(0);
  const Shape in = ctx.shape_of(x);
  const std::vector<std::int64_t> axes = axes_of(ctx, node, attributes, 1);
  attributes.check_all_read();
  if (axes.empty()) malformed(node, "has no axes");
  const std::size_t out_rank = in.size() + axes.size();
  std::vector<bool> inserted(out_rank, false);
  for (std::int64_t a : axes) {
    int d;
    try {
      d = normalize_axis(a, out_rank);
    } catch (const std::out_of_range& e) {
      malformed(node, e.what());
    }
    if (inserted[static_cast<std::size_t>(d)]) malformed(node, "axis " + std::to_string(a) + " is repeated");
    inserted[static_cast<std::size_t>(d)] = true;
  }
  Shape out;
  std::vector<int> renumber;  // old ONNX dim -> new ONNX dim
  for (std::size_t d = 0, old = 0; d < out_rank; ++d) {
    if (inserted[d]) {
      out.push_back(1);
    } else {
      renumber.push_back(static_cast<int>(d));
      out.push_back(in[old++]);
    }
  }
  Perm perm;
  for (int d : ctx.layout_of(x)) perm.push_back(renumber[static_cast<std::size_t>(d)]);
  for (std::size_t d = 0; d < out_rank; ++d)
    if (inserted[d]) perm.push_back(static_cast<int>(d));  // size-1 dimensions can sit anywhere
  ctx.reshape(ctx.tensor_as_is(x), to_tflite_order(out, perm), node.name, ctx.define(node.outputs.at(0), out, perm));
}

void lower_transpose(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  const std::string& x = node.inputs.at(0);
  const Shape in = ctx.shape_of(x);
  std::vector<std::int64_t> p = attributes.get_ints("perm", {});
  attributes.check_all_read();
  if (p.empty())
    for (std::size_t i = in.size(); i-- > 0;) p.push_back(static_cast<std::int64_t>(i));
  if (p.size() != in.size()) malformed(node, "perm has " + std::to_string(p.size()) + " entries for rank " + std::to_string(in.size()));
  Perm onnx_perm(p.begin(), p.end());
  std::vector<int> sorted = onnx_perm;
  std::sort(sorted.begin(), sorted.end());
  if (sorted != identity_perm(in.size())) malformed(node, "perm is not a permutation");
  // Output ONNX dim j is input dim p[j]; TFLite dim i holds input dim L[i], i.e. output dim p^-1[L[i]].
  const Perm p_inverse = inverse(onnx_perm);
  Perm relabeled;
  for (int d : ctx.layout_of(x)) relabeled.push_back(p_inverse[static_cast<std::size_t>(d)]);
  Shape out(in.size());
  for (std::size_t j = 0; j < in.size(); ++j) out[j] = in[static_cast<std::size_t>(onnx_perm[j])];
  if (ctx.is_constant(x)) unsupported(node, "transposes a constant (constant folding should have removed it)");
  ctx.alias(node.outputs.at(0), ctx.tensor_as_is(x), relabeled, out);
}

void lower_concat(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  const std::int64_t axis_attr = attributes.get_int("axis", 0);
  attributes.check_all_read();
  std::vector<std::string> inputs;
  for (const std::string& in : node.inputs)
    if (!in.empty() && element_count(ctx.shape_of(in)) > 0) inputs.push_back(in);  // empty tensors contribute nothing
  if (inputs.empty()) malformed(node, "has no non-empty inputs");
  const Shape first = ctx.shape_of(inputs[0]);
  int axis;
  try {
    axis = normalize_axis(axis_attr, first.size());
  } catch (const std::out_of_range& e) {
    malformed(node, e.what());
  }
  Shape out = first;
  out[static_cast<std::size_t>(axis)] = 0;
  for (const std::string& in : inputs) {
    const Shape s = ctx.shape_of(in);
    for (std::size_t d = 0; d < s.size(); ++d)
      if (s.size() != first.size() || (static_cast<int>(d) != axis && s[d] != first[d]))
        malformed(node, "input " + shape_text(s) + " does not match " + shape_text(first) + " outside the concatenation axis");
    out[static_cast<std::size_t>(axis)] += s[static_cast<std::size_t>(axis)];
  }
  Perm perm = identity_perm(first.size());
  for (const std::string& in : inputs)
    if (!ctx.is_constant(in)) {
      perm = ctx.layout_of(in);
      break;
    }
  std::vector<int> tensors;
  for (const std::string& in : inputs) tensors.push_back(ctx.tensor_in_layout(in, perm));
  const int output = ctx.define(node.outputs.at(0), out, perm);
  if (tensors.size() == 1) {
    ctx.reshape(tensors[0], to_tflite_order(out, perm), node.name, output);
    return;
  }
  tflite::ConcatenationOptionsT o;
  o.axis = tflite_axis(perm, axis);
  ctx.model().add_operator(BuiltinOperator::CONCATENATION, tensors, {output}, std::move(o));
}

void lower_split(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  const std::int64_t axis_attr = attributes.get_int("axis", 0);
  std::vector<std::int64_t> sizes;
  if (ctx.graph().opset >= 13) {
    if (node.has_input(1)) sizes = require_constant(ctx, node, 1, "split").to_ints();
  } else {
    sizes = attributes.get_ints("split", {});
  }
  attributes.check_all_read();
  const std::string& x = node.inputs.at(0);
  const Shape in = ctx.shape_of(x);
  int axis;
  try {
    axis = normalize_axis(axis_attr, in.size());
  } catch (const std::out_of_range& e) {
    malformed(node, e.what());
  }
  const std::int64_t length = in[static_cast<std::size_t>(axis)];
  const auto parts = static_cast<std::int64_t>(node.outputs.size());
  if (sizes.empty()) {
    if (length % parts != 0)
      malformed(node, "axis of size " + std::to_string(length) + " does not split into " + std::to_string(parts) + " equal parts");
    sizes.assign(static_cast<std::size_t>(parts), length / parts);
  }
  if (static_cast<std::int64_t>(sizes.size()) != parts || std::accumulate(sizes.begin(), sizes.end(), std::int64_t{0}) != length)
    malformed(node, "split sizes do not add up to the axis length " + std::to_string(length));
  const Perm perm = ctx.layout_of(x);
  const int input = ctx.tensor_as_is(x);
  const std::int32_t tfl_axis = tflite_axis(perm, axis);
  std::vector<int> outputs;
  for (std::size_t i = 0; i < node.outputs.size(); ++i) {
    Shape s = in;
    s[static_cast<std::size_t>(axis)] = sizes[i];
    outputs.push_back(node.outputs[i].empty() ? ctx.intermediate(node.name + "_unused", to_tflite_order(s, perm))
                                              : ctx.define(node.outputs[i], s, perm));
  }
  TflModel& m = ctx.model();
  const int axis_tensor = m.add_int32_constant(ctx.unique_name(node.name + "_axis"), {}, std::span<const std::int32_t>(&tfl_axis, 1));
  if (std::all_of(sizes.begin(), sizes.end(), [&](std::int64_t v) { return v == sizes[0]; })) {
    tflite::SplitOptionsT o;
    o.num_splits = static_cast<std::int32_t>(parts);
    m.add_operator(BuiltinOperator::SPLIT, {axis_tensor, input}, outputs, std::move(o));
  } else {
    std::vector<std::int32_t> size_values;
    for (std::int64_t v : sizes) size_values.push_back(static_cast<std::int32_t>(v));
    tflite::SplitVOptionsT o;
    o.num_splits = static_cast<std::int32_t>(parts);
    m.add_operator(BuiltinOperator::SPLIT_V, {input, ctx.int32_vector(node.name + "_sizes", size_values), axis_tensor}, outputs,
                   std::move(o));
  }
}

void lower_slice(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  attributes.check_all_read();
  const std::string& x = node.inputs.at(0);
  const Shape in = ctx.shape_of(x);
  const std::vector<std::int64_t> starts = require_constant(ctx, node, 1, "starts").to_ints();
  const std::vector<std::int64_t> ends = require_constant(ctx, node, 2, "ends").to_ints();
  std::vector<std::int64_t> axes(starts.size());
  std::iota(axes.begin(), axes.end(), 0);
  if (node.has_input(3)) axes = require_constant(ctx, node, 3, "axes").to_ints();
  std::vector<std::int64_t> steps(starts.size(), 1);
  if (node.has_input(4)) steps = require_constant(ctx, node, 4, "steps").to_ints();
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    malformed(node, "starts, ends, axes and steps differ in length");

  const std::size_t rank = in.size();
  std::vector<std::int64_t> begin(rank, 0), end(in.begin(), in.end()), stride(rank, 1);
  std::vector<bool> end_to_front(rank, false);
  Shape out = in;
  for (std::size_t i = 0; i < starts.size(); ++i) {
    int d;
    try {
      d = normalize_axis(axes[i], rank);
    } catch (const std::out_of_range& e) {
      malformed(node, e.what());
    }
    const auto di = static_cast<std::size_t>(d);
    const std::int64_t dim = in[di], step = steps[i];
    if (step == 0) malformed(node, "a step is 0");
    std::int64_t s = starts[i] < 0 ? starts[i] + dim : starts[i];
    std::int64_t e = ends[i] < 0 ? ends[i] + dim : ends[i];
    if (step > 0) {
      s = std::clamp<std::int64_t>(s, 0, dim);
      e = std::clamp<std::int64_t>(e, 0, dim);
      out[di] = e > s ? (e - s + step - 1) / step : 0;
    } else {
      s = std::clamp<std::int64_t>(s, 0, dim - 1);
      e = std::clamp<std::int64_t>(e, -1, dim - 1);
      out[di] = s > e ? (s - e + (-step) - 1) / (-step) : 0;
      end_to_front[di] = e == -1;  // TFLite would read -1 as "the last element"
    }
    begin[di] = s;
    end[di] = e;
    stride[di] = step;
  }
  if (element_count(out) == 0) unsupported(node, "the slice is empty");
  const Perm perm = ctx.layout_of(x);
  std::vector<std::int32_t> b, e, st;
  std::int32_t end_mask = 0;
  for (std::size_t i = 0; i < rank; ++i) {
    const auto d = static_cast<std::size_t>(perm[i]);
    b.push_back(static_cast<std::int32_t>(begin[d]));
    e.push_back(static_cast<std::int32_t>(end_to_front[d] ? 0 : end[d]));
    st.push_back(static_cast<std::int32_t>(stride[d]));
    if (end_to_front[d]) end_mask |= 1 << i;
  }
  tflite::StridedSliceOptionsT o;
  o.end_mask = end_mask;
  ctx.model().add_operator(BuiltinOperator::STRIDED_SLICE,
                           {ctx.tensor_as_is(x), ctx.int32_vector(node.name + "_begin", b), ctx.int32_vector(node.name + "_end", e),
                            ctx.int32_vector(node.name + "_strides", st)},
                           {ctx.define(node.outputs.at(0), out, perm)}, std::move(o));
}

// Gather of an activation at constant indices: a scalar index (ViT's class token, x[:, 0]) or a
// run of consecutive indices is a STRIDED_SLICE (then a RESHAPE dropping the axis for a scalar).
// Other index patterns are refused.
void lower_gather(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  const std::int64_t axis_attribute = attributes.get_int("axis", 0);
  attributes.check_all_read();
  const std::string& x = node.inputs.at(0);
  const Shape in = ctx.shape_of(x);
  const HostTensor& indices = require_constant(ctx, node, 1, "indices");
  if (indices.is_float()) malformed(node, "indices must be integers");
  if (indices.shape.size() > 1) unsupported(node, "only scalar or 1-D indices are supported");
  int axis;
  try {
    axis = normalize_axis(axis_attribute, in.size());
  } catch (const std::out_of_range& e) {
    malformed(node, e.what());
  }
  const std::int64_t dim = in[static_cast<std::size_t>(axis)];
  std::vector<std::int64_t> picked = indices.to_ints();
  if (picked.empty()) unsupported(node, "empty indices");
  for (std::int64_t& i : picked) {
    if (i < -dim || i >= dim) malformed(node, "index " + std::to_string(i) + " is out of range for a dimension of " + std::to_string(dim));
    if (i < 0) i += dim;
  }
  for (std::size_t k = 1; k < picked.size(); ++k)
    if (picked[k] != picked[k - 1] + 1) unsupported(node, "only consecutive indices are supported");
  const Perm perm = ctx.layout_of(x);
  std::vector<std::int32_t> b, e, st;
  Shape sliced = in;
  sliced[static_cast<std::size_t>(axis)] = static_cast<std::int64_t>(picked.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const auto d = static_cast<std::size_t>(perm[i]);
    const bool gathered = static_cast<int>(d) == axis;
    b.push_back(gathered ? static_cast<std::int32_t>(picked.front()) : 0);
    e.push_back(static_cast<std::int32_t>(gathered ? picked.back() + 1 : in[d]));
    st.push_back(1);
  }
  const bool scalar = indices.shape.empty();
  const int slice_out =
      scalar ? ctx.intermediate(node.name + "_slice", to_tflite_order(sliced, perm)) : ctx.define(node.outputs.at(0), sliced, perm);
  ctx.model().add_operator(BuiltinOperator::STRIDED_SLICE,
                           {ctx.tensor_as_is(x), ctx.int32_vector(node.name + "_begin", b), ctx.int32_vector(node.name + "_end", e),
                            ctx.int32_vector(node.name + "_strides", st)},
                           {slice_out}, tflite::StridedSliceOptionsT{});
  if (!scalar) return;
  // Dropping a size-1 axis keeps the element order: the layout loses that axis, renumbered.
  Shape out;
  for (std::size_t d = 0; d < in.size(); ++d)
    if (static_cast<int>(d) != axis) out.push_back(in[d]);
  Perm out_perm;
  for (int d : perm)
    if (d != axis) out_perm.push_back(d > axis ? d - 1 : d);
  ctx.reshape(slice_out, to_tflite_order(out, out_perm), node.name, ctx.define(node.outputs.at(0), out, out_perm));
}

void lower_pad(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  const std::string mode = attributes.get_string("mode", "constant");
  attributes.check_all_read();
  const std::string& x = node.inputs.at(0);
  const Shape in = ctx.shape_of(x);
  const std::vector<std::int64_t> pads = require_constant(ctx, node, 1, "pads").to_ints();
  if (pads.size() != 2 * in.size())
    malformed(node, "pads has " + std::to_string(pads.size()) + " values for rank " + std::to_string(in.size()));
  for (std::int64_t p : pads)
    if (p < 0) unsupported(node, "negative pads (cropping) are not supported");
  float value = 0.0f;
  if (node.has_input(2)) {
    const HostTensor& v = require_constant(ctx, node, 2, "constant_value");
    if (v.size() != 1) malformed(node, "constant_value must be a scalar");
    value = static_cast<float>(v.as_double(0));
  }
  const Perm perm = ctx.layout_of(x);
  Shape out = in;
  std::vector<std::int32_t> paddings;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const auto d = static_cast<std::size_t>(perm[i]);
    paddings.push_back(static_cast<std::int32_t>(pads[d]));
    paddings.push_back(static_cast<std::int32_t>(pads[d + in.size()]));
  }
  for (std::size_t d = 0; d < in.size(); ++d) out[d] += pads[d] + pads[d + in.size()];
  TflModel& m = ctx.model();
  const int paddings_tensor =
      m.add_int32_constant(ctx.unique_name(node.name + "_paddings"), {static_cast<std::int32_t>(in.size()), 2}, paddings);
  const int input = ctx.tensor_as_is(x);
  const int output = ctx.define(node.outputs.at(0), out, perm);
  if (mode == "constant") {
    if (value == 0.0f)
      m.add_operator(BuiltinOperator::PAD, {input, paddings_tensor}, {output}, tflite::PadOptionsT{});
    else
      m.add_operator(BuiltinOperator::PADV2, {input, paddings_tensor, ctx.scalar_constant(node.name + "_value", value)}, {output},
                     tflite::PadV2OptionsT{});
  } else if (mode == "reflect") {
    for (std::size_t d = 0; d < in.size(); ++d)
      if (pads[d] >= in[d] || pads[d + in.size()] >= in[d]) unsupported(node, "reflect padding as large as the dimension");
    tflite::MirrorPadOptionsT o;
    o.mode = tflite::MirrorPadMode::REFLECT;
    m.add_operator(BuiltinOperator::MIRROR_PAD, {input, paddings_tensor}, {output}, std::move(o));
  } else {
    unsupported(node, "pad mode '" + mode + "' is not supported (constant and reflect are)");
  }
}

}  // namespace

void register_shape_lowerings(LoweringTable& table) {
  table["Flatten"] = lower_flatten;
  table["Reshape"] = lower_reshape;
  table["Squeeze"] = lower_squeeze;
  table["Unsqueeze"] = lower_unsqueeze;
  table["Transpose"] = lower_transpose;
  table["Concat"] = lower_concat;
  table["Split"] = lower_split;
  table["Slice"] = lower_slice;
  table["Pad"] = lower_pad;
  table["Gather"] = lower_gather;
}

}  // namespace dermcds::converter
