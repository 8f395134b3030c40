// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.
//
// TFLite pools know only SAME and VALID padding, no dilation and no ceil_mode, and SAME average
// pooling never counts padded cells. Everything else ONNX allows is rebuilt exactly:
//  - other padding: an explicit PAD (zeros for averages, the lowest float for maxima) + VALID;
//  - average divisors that differ from kernel_h * kernel_w (count_include_pad = 0 with explicit
//    padding, windows cut short by ceil_mode): a MUL by a constant map of kernel_area / divisor;
//  - dilated max pooling: the maximum of kernel_h * kernel_w strided slices of the padded input.
#include <algorithm>
#include <limits>

#include "lowering.hpp"
#include "spatial.hpp"

namespace dermcds::converter {

namespace {

std::array<std::int64_t, 2> kernel_shape(Attributes& attributes, const Node& node) {
  const auto k = attributes.find_ints("kernel_shape");
  if (!k) malformed(node, "has no kernel_shape");
  if (k->size() != 2) unsupported(node, "only 2-D pooling is supported, kernel_shape has " + std::to_string(k->size()) + " values");
  if ((*k)[0] < 1 || (*k)[1] < 1) malformed(node, "kernel_shape must be positive");
  return {(*k)[0], (*k)[1]};
}

void check_single_output(LoweringContext& ctx, const Node& node) {
  if (node.outputs.size() > 1 && !node.outputs[1].empty() &&
      (!ctx.graph().consumers(node.outputs[1]).empty() || ctx.graph().is_graph_output(node.outputs[1])))
    unsupported(node, "the Indices output of MaxPool is not supported");
}

tflite::Pool2DOptionsT pool_options(const Window2D& w, tflite::Padding padding) {
  tflite::Pool2DOptionsT o;
  o.padding = padding;
  o.stride_h = static_cast<std::int32_t>(w.stride[0]);
  o.stride_w = static_cast<std::int32_t>(w.stride[1]);
  o.filter_height = static_cast<std::int32_t>(w.kernel[0]);
  o.filter_width = static_cast<std::int32_t>(w.kernel[1]);
  return o;
}

// max over (i, j) of padded[:, i*dh : ... : sh, j*dw : ... : sw, :], each slice out_h x out_w.
void dilated_max_pool(LoweringContext& ctx, const Node& node, int padded, const Window2D& w, int output) {
  TflModel& m = ctx.model();
  const Shape in = ctx.tflite_shape(padded);
  const Shape out{in[0], w.output[0], w.output[1], in[3]};
  int running = -1;
  for (std::int64_t i = 0; i < w.kernel[0]; ++i) {
    for (std::int64_t j = 0; j < w.kernel[1]; ++j) {
      const std::int64_t top = i * w.dilation[0], left = j * w.dilation[1];
      const std::vector<std::int32_t> begin{0, static_cast<std::int32_t>(top), static_cast<std::int32_t>(left), 0};
      const std::vector<std::int32_t> end{
          static_cast<std::int32_t>(in[0]), static_cast<std::int32_t>(top + (w.output[0] - 1) * w.stride[0] + 1),
          static_cast<std::int32_t>(left + (w.output[1] - 1) * w.stride[1] + 1), static_cast<std::int32_t>(in[3])};
      const std::vector<std::int32_t> strides{1, static_cast<std::int32_t>(w.stride[0]), static_cast<std::int32_t>(w.stride[1]), 1};
      const int slice = ctx.intermediate(node.name + "_tap", out);
      m.add_operator(BuiltinOperator::STRIDED_SLICE,
                     {padded, ctx.int32_vector(node.name + "_begin", begin), ctx.int32_vector(node.name + "_end", end),
                      ctx.int32_vector(node.name + "_strides", strides)},
                     {slice}, tflite::StridedSliceOptionsT{});
      if (running < 0) {
        running = slice;
        continue;
      }
      const bool last = i == w.kernel[0] - 1 && j == w.kernel[1] - 1;
      const int result = last ? output : ctx.intermediate(node.name + "_max", out);
      m.add_operator(BuiltinOperator::MAXIMUM, {running, slice}, {result}, tflite::MaximumMinimumOptionsT{});
      running = result;
    }
  }
  if (running != output) ctx.reshape(running, out, node.name, output);  // a 1x1 kernel
}

// Whether ONNX value `name` is never negative because of the node computing it (Relu, Sigmoid,
// Clip with a constant minimum >= 0). Max pooling over such a value may pad with zeros instead
// of the lowest float: every window holds at least one real element, which is >= 0, so the
// maximum is the same, and zero padding is a PAD, which XNNPACK 2.9 delegates (PADV2 it does not).
bool never_negative(LoweringContext& ctx, const std::string& name) {
  for (const Node& n : ctx.graph().nodes) {
    if (std::find(n.outputs.begin(), n.outputs.end(), name) == n.outputs.end()) continue;
    if (n.op_type == "Relu" || n.op_type == "Sigmoid") return true;
    if (n.op_type == "Clip" && n.has_input(1) && ctx.is_constant(n.inputs[1]) && ctx.constant(n.inputs[1]).size() == 1)
      return ctx.constant(n.inputs[1]).as_double(0) >= 0.0;
    return false;
  }
  return false;
}

void lower_max_pool(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  check_single_output(ctx, node);
  const std::string& x = node.inputs.at(0);
  const Shape xs = ctx.shape_of(x);
  if (xs.size() != 4) unsupported(node, "only 2-D pooling (4-D input) is supported, this input is " + shape_text(xs));
  const auto k = kernel_shape(attributes, node);
  const Window2D w = read_window(attributes, node, {xs[2], xs[3]}, k, WindowRules{.dilations = true, .ceil_mode = true});
  attributes.get_int("storage_order", 0);  // only affects the Indices output, refused above
  attributes.check_all_read();

  int input = ctx.tensor_channels_last(x);
  const int output = ctx.define(node.outputs.at(0), {xs[0], xs[1], w.output[0], w.output[1]}, channels_last_perm(4));
  if (w.dropped_padding_window) ctx.mark_shape_divergence(node.outputs.at(0));
  const PadMode mode = choose_pad_mode(w);
  // A window lying wholly in the padding cannot occur: ONNX Runtime drops such windows
  // (dropped_padding_window) and pads are smaller than the kernel in every exporter we read;
  // zero padding is used only when that holds.
  const bool pads_within_kernel = w.pad_begin[0] < k[0] && w.used_pad_end(0) < k[0] && w.pad_begin[1] < k[1] && w.used_pad_end(1) < k[1];
  const float lowest = pads_within_kernel && never_negative(ctx, x) ? 0.0f : std::numeric_limits<float>::lowest();
  if (w.dilation[0] != 1 || w.dilation[1] != 1) {
    if (mode != PadMode::kValid) input = pad_nhwc(ctx, input, w, lowest, node.name);
    dilated_max_pool(ctx, node, input, w, output);
    return;
  }
  tflite::Padding padding = tflite::Padding::VALID;
  if (mode == PadMode::kSame) padding = tflite::Padding::SAME;
  if (mode == PadMode::kExplicit) input = pad_nhwc(ctx, input, w, lowest, node.name);
  ctx.model().add_operator(BuiltinOperator::MAX_POOL_2D, {input}, {output}, pool_options(w, padding));
}

// ONNX Runtime's divisor for the window at output position `o` along one dimension.
std::int64_t window_count(const Window2D& w, int d, std::int64_t o, bool count_include_pad) {
  const auto i = static_cast<std::size_t>(d);
  const std::int64_t start = o * w.stride[i] - w.pad_begin[i];
  if (count_include_pad) return std::min(start + w.kernel[i], w.input[i] + w.pad_end[i]) - start;
  return std::min(start + w.kernel[i], w.input[i]) - std::max<std::int64_t>(start, 0);
}

void lower_average_pool(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  const std::string& x = node.inputs.at(0);
  const Shape xs = ctx.shape_of(x);
  if (xs.size() != 4) unsupported(node, "only 2-D pooling (4-D input) is supported, this input is " + shape_text(xs));
  const auto k = kernel_shape(attributes, node);
  const Window2D w = read_window(attributes, node, {xs[2], xs[3]}, k, WindowRules{.dilations = false, .ceil_mode = true});
  const bool count_include_pad = attributes.get_int("count_include_pad", 0) != 0;
  attributes.check_all_read();

  int input = ctx.tensor_channels_last(x);
  const std::string& out_name = node.outputs.at(0);
  if (w.dropped_padding_window) ctx.mark_shape_divergence(out_name);
  const Shape out_onnx{xs[0], xs[1], w.output[0], w.output[1]};
  const PadMode mode = choose_pad_mode(w);
  TflModel& m = ctx.model();

  if (mode == PadMode::kValid || (mode == PadMode::kSame && !count_include_pad)) {
    const int output = ctx.define(out_name, out_onnx, channels_last_perm(4));
    m.add_operator(BuiltinOperator::AVERAGE_POOL_2D, {input}, {output},
                   pool_options(w, mode == PadMode::kSame ? tflite::Padding::SAME : tflite::Padding::VALID));
    return;
  }

  input = pad_nhwc(ctx, input, w, 0.0f, node.name);
  const double area = static_cast<double>(w.kernel[0] * w.kernel[1]);
  std::vector<float> correction(static_cast<std::size_t>(w.output[0] * w.output[1]));
  bool needed = false;
  for (std::int64_t oh = 0; oh < w.output[0]; ++oh)
    for (std::int64_t ow = 0; ow < w.output[1]; ++ow) {
      const auto count = static_cast<double>(window_count(w, 0, oh, count_include_pad) * window_count(w, 1, ow, count_include_pad));
      correction[static_cast<std::size_t>(oh * w.output[1] + ow)] = static_cast<float>(area / count);
      if (count != area) needed = true;
    }
  const Shape pooled_shape{xs[0], w.output[0], w.output[1], xs[1]};
  if (!needed) {
    const int output = ctx.define(out_name, out_onnx, channels_last_perm(4));
    m.add_operator(BuiltinOperator::AVERAGE_POOL_2D, {input}, {output}, pool_options(w, tflite::Padding::VALID));
    return;
  }
  const int pooled = ctx.intermediate(node.name + "_sum_over_area", pooled_shape);
  m.add_operator(BuiltinOperator::AVERAGE_POOL_2D, {input}, {pooled}, pool_options(w, tflite::Padding::VALID));
  const int factors = ctx.float_constant(node.name + "_divisor_correction", {1, w.output[0], w.output[1], 1}, correction);
  const int output = ctx.define(out_name, out_onnx, channels_last_perm(4));
  m.add_operator(BuiltinOperator::MUL, {pooled, factors}, {output}, tflite::MulOptionsT{});
}

// Global pools reduce every spatial axis, whatever layout the input is in.
void lower_global_pool(LoweringContext& ctx, const Node& node, BuiltinOperator reducer) {
  Attributes attributes(node);
  attributes.check_all_read();
  const std::string& x = node.inputs.at(0);
  const Shape xs = ctx.shape_of(x);
  if (xs.size() < 3) malformed(node, "input must have spatial dimensions, it is " + shape_text(xs));
  const Perm perm = ctx.layout_of(x);
  const int input = ctx.tensor_as_is(x);
  std::vector<std::int32_t> axes;
  for (std::size_t d = 2; d < xs.size(); ++d) axes.push_back(tflite_axis(perm, static_cast<int>(d)));
  std::sort(axes.begin(), axes.end());
  Shape out = xs;
  for (std::size_t d = 2; d < xs.size(); ++d) out[d] = 1;
  const int output = ctx.define(node.outputs.at(0), out, perm);
  tflite::ReducerOptionsT o;
  o.keep_dims = true;
  ctx.model().add_operator(reducer, {input, ctx.int32_vector(node.name + "_axes", axes)}, {output}, std::move(o));
}

}  // namespace

void register_pool_lowerings(LoweringTable& table) {
  table["MaxPool"] = lower_max_pool;
  table["AveragePool"] = lower_average_pool;
  table["GlobalAveragePool"] = [](LoweringContext& ctx, const Node& node) { lower_global_pool(ctx, node, BuiltinOperator::MEAN); };
  table["GlobalMaxPool"] = [](LoweringContext& ctx, const Node& node) { lower_global_pool(ctx, node, BuiltinOperator::REDUCE_MAX); };
}

}  // namespace dermcds::converter
