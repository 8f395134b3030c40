// Conv -> CONV_2D (group 1), DEPTHWISE_CONV_2D (one group per input channel), or SPLIT +
// CONV_2D per group + CONCATENATION (other groupings, which TFLite 2.9 kernels do not take).
#include "lowering.hpp"
#include "spatial.hpp"

namespace dermcds::converter {

namespace {

struct ConvGeometry {
  Window2D window;
  tflite::Padding padding = tflite::Padding::VALID;
};

template <typename Options>
void set_window_options(Options& o, const ConvGeometry& g) {
  o.padding = g.padding;
  o.stride_h = static_cast<std::int32_t>(g.window.stride[0]);
  o.stride_w = static_cast<std::int32_t>(g.window.stride[1]);
  o.dilation_h_factor = static_cast<std::int32_t>(g.window.dilation[0]);
  o.dilation_w_factor = static_cast<std::int32_t>(g.window.dilation[1]);
}

// Filter [M, C/g, kH, kW] -> the rows [first, first + count) as TFLite CONV_2D's [O, kH, kW, I].
std::vector<float> conv_filter(const HostTensor& w, std::int64_t first, std::int64_t count) {
  const Shape& s = w.shape;
  const std::int64_t per_output = s[1] * s[2] * s[3];
  HostTensor rows = HostTensor::from_floats({count, s[1], s[2], s[3]}, std::vector<float>(w.floats.begin() + first * per_output,
                                                                                          w.floats.begin() + (first + count) * per_output));
  return transpose(rows, {0, 2, 3, 1}).floats;
}

void lower_conv(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  const std::string& x = node.inputs.at(0);
  const Shape xs = ctx.shape_of(x);
  if (xs.size() != 4) unsupported(node, "only 2-D convolutions (4-D input) are supported, this input is " + shape_text(xs));
  const HostTensor& w = require_constant(ctx, node, 1, "weight");
  if (!w.is_float() || w.shape.size() != 4) malformed(node, "weight must be a 4-D float tensor, it is " + shape_text(w.shape));
  const std::int64_t channels = xs[1], outputs = w.shape[0], group = attributes.get_int("group", 1);
  if (group < 1 || channels % group != 0 || w.shape[1] * group != channels || outputs % group != 0)
    malformed(node, "group " + std::to_string(group) + " does not fit input channels " + std::to_string(channels) + " and weight " +
                        shape_text(w.shape));
  if (auto kernel_shape = attributes.find_ints("kernel_shape"); kernel_shape && *kernel_shape != Shape{w.shape[2], w.shape[3]})
    malformed(node, "kernel_shape does not match the weight's " + shape_text(w.shape));

  std::vector<float> bias(static_cast<std::size_t>(outputs), 0.0f);
  if (node.has_input(2)) {
    const HostTensor& b = require_constant(ctx, node, 2, "bias");
    if (b.size() != outputs)
      malformed(node, "bias has " + std::to_string(b.size()) + " values for " + std::to_string(outputs) + " outputs");
    bias = b.to_floats();
  }

  ConvGeometry g;
  g.window = read_window(attributes, node, {xs[2], xs[3]}, {w.shape[2], w.shape[3]}, WindowRules{.dilations = true, .ceil_mode = false});
  attributes.check_all_read();

  int input = ctx.tensor_channels_last(x);
  switch (choose_pad_mode(g.window)) {
    case PadMode::kValid:
      g.padding = tflite::Padding::VALID;
      break;
    case PadMode::kSame:
      g.padding = tflite::Padding::SAME;
      break;
    case PadMode::kExplicit:
      input = pad_nhwc(ctx, input, g.window, 0.0f, node.name);
      g.padding = tflite::Padding::VALID;
      break;
  }

  const Shape out_onnx{xs[0], outputs, g.window.output[0], g.window.output[1]};
  const int output = ctx.define(node.outputs.at(0), out_onnx, channels_last_perm(4));
  TflModel& m = ctx.model();
  const std::int64_t kh = w.shape[2], kw = w.shape[3];

  if (group == 1) {
    const int filter = ctx.float_constant(node.name + "_filter", {outputs, kh, kw, channels}, conv_filter(w, 0, outputs));
    const int bias_tensor = ctx.float_constant(node.name + "_bias", {outputs}, bias);
    tflite::Conv2DOptionsT o;
    set_window_options(o, g);
    m.add_operator(BuiltinOperator::CONV_2D, {input, filter, bias_tensor}, {output}, std::move(o));
  } else if (group == channels) {
    // Depthwise: output channel o reads input channel o / multiplier, in ONNX and in TFLite.
    const std::int64_t multiplier = outputs / channels;
    const HostTensor filter_data = transpose(w, {1, 2, 3, 0});  // [1, kH, kW, M]
    const int filter = ctx.float_constant(node.name + "_filter", {1, kh, kw, outputs}, filter_data.floats);
    const int bias_tensor = ctx.float_constant(node.name + "_bias", {outputs}, bias);
    tflite::DepthwiseConv2DOptionsT o;
    set_window_options(o, g);
    o.depth_multiplier = static_cast<std::int32_t>(multiplier);
    m.add_operator(BuiltinOperator::DEPTHWISE_CONV_2D, {input, filter, bias_tensor}, {output}, std::move(o));
  } else {
    const std::int64_t per_group_in = channels / group, per_group_out = outputs / group;
    Shape in_part = ctx.tflite_shape(input);
    in_part[3] = per_group_in;
    std::vector<int> parts;
    for (std::int64_t i = 0; i < group; ++i) parts.push_back(ctx.intermediate(node.name + "_group_input", in_part));
    const std::int32_t axis = 3;
    const int axis_tensor = m.add_int32_constant(ctx.unique_name(node.name + "_split_axis"), {}, std::span<const std::int32_t>(&axis, 1));
    tflite::SplitOptionsT split;
    split.num_splits = static_cast<std::int32_t>(group);
    m.add_operator(BuiltinOperator::SPLIT, {axis_tensor, input}, parts, std::move(split));

    std::vector<int> results;
    const Shape out_part{xs[0], g.window.output[0], g.window.output[1], per_group_out};
    for (std::int64_t i = 0; i < group; ++i) {
      const int filter = ctx.float_constant(node.name + "_filter", {per_group_out, kh, kw, per_group_in},
                                            conv_filter(w, i * per_group_out, per_group_out));
      const std::vector<float> part_bias(bias.begin() + i * per_group_out, bias.begin() + (i + 1) * per_group_out);
      const int bias_tensor = ctx.float_constant(node.name + "_bias", {per_group_out}, part_bias);
      const int result = ctx.intermediate(node.name + "_group_output", out_part);
      tflite::Conv2DOptionsT o;
      set_window_options(o, g);
      m.add_operator(BuiltinOperator::CONV_2D, {parts[static_cast<std::size_t>(i)], filter, bias_tensor}, {result}, std::move(o));
      results.push_back(result);
    }
    tflite::ConcatenationOptionsT concat;
    concat.axis = 3;
    m.add_operator(BuiltinOperator::CONCATENATION, results, {output}, std::move(concat));
  }
}

}  // namespace

void register_conv_lowerings(LoweringTable& table) { table["Conv"] = lower_conv; }

}  // namespace dermcds::converter
