#include "spatial.hpp"

#include <algorithm>

#include "lowering.hpp"

namespace dermcds::converter {

std::int64_t Window2D::used_pad_end(int d) const {
  const auto i = static_cast<std::size_t>(d);
  return std::max<std::int64_t>(0, (output[i] - 1) * stride[i] + effective_kernel(d) - input[i] - pad_begin[i]);
}

namespace {

std::array<std::int64_t, 2> read_pair(Attributes& attributes, const Node& node, const std::string& name, std::int64_t fallback) {
  const std::vector<std::int64_t> v = attributes.get_ints(name, {fallback, fallback});
  if (v.size() != 2) malformed(node, "attribute '" + name + "' has " + std::to_string(v.size()) + " values, a 2-D window needs 2");
  for (std::int64_t x : v)
    if (x < 1) malformed(node, "attribute '" + name + "' must be positive");
  return {v[0], v[1]};
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

}  // namespace

Window2D read_window(Attributes& attributes, const Node& node, std::array<std::int64_t, 2> input, std::array<std::int64_t, 2> kernel,
                     const WindowRules& rules) {
  Window2D w;
  w.input = input;
  w.kernel = kernel;
  w.stride = read_pair(attributes, node, "strides", 1);
  if (rules.dilations) w.dilation = read_pair(attributes, node, "dilations", 1);
  const bool ceil_mode = rules.ceil_mode && attributes.get_int("ceil_mode", 0) != 0;
  const std::string auto_pad = attributes.get_string("auto_pad", "NOTSET");

  if (auto_pad == "NOTSET") {
    const std::vector<std::int64_t> pads = attributes.get_ints("pads", {0, 0, 0, 0});
    if (pads.size() != 4) malformed(node, "attribute 'pads' has " + std::to_string(pads.size()) + " values, a 2-D window needs 4");
    for (std::int64_t p : pads)
      if (p < 0) unsupported(node, "negative pads are not supported");
    w.pad_begin = {pads[0], pads[1]};
    w.pad_end = {pads[2], pads[3]};
    for (int d = 0; d < 2; ++d) {
      const auto i = static_cast<std::size_t>(d);
      const std::int64_t span = w.input[i] + w.pad_begin[i] + w.pad_end[i] - w.effective_kernel(d);
      if (span < 0) malformed(node, "the window is larger than the padded input");
      w.output[i] = (ceil_mode ? ceil_div(span, w.stride[i]) : floor_div(span, w.stride[i])) + 1;
      // ONNX Runtime (like PyTorch) drops a last window that would start in the end padding.
      if (ceil_mode && (w.output[i] - 1) * w.stride[i] >= w.input[i] + w.pad_begin[i]) {
        --w.output[i];
        w.dropped_padding_window = true;
      }
    }
  } else if (auto_pad == "VALID") {
    attributes.accept("pads");
    for (int d = 0; d < 2; ++d) {
      const auto i = static_cast<std::size_t>(d);
      const std::int64_t span = w.input[i] - w.effective_kernel(d);
      if (span < 0) malformed(node, "the window is larger than the input");
      w.output[i] = (ceil_mode ? ceil_div(span, w.stride[i]) : floor_div(span, w.stride[i])) + 1;
      w.pad_end[i] = std::max<std::int64_t>(0, (w.output[i] - 1) * w.stride[i] + w.effective_kernel(d) - w.input[i]);
    }
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    attributes.accept("pads");
    for (int d = 0; d < 2; ++d) {
      const auto i = static_cast<std::size_t>(d);
      w.output[i] = ceil_div(w.input[i], w.stride[i]);
      const std::int64_t total = std::max<std::int64_t>(0, (w.output[i] - 1) * w.stride[i] + w.effective_kernel(d) - w.input[i]);
      const std::int64_t smaller = total / 2;
      w.pad_begin[i] = auto_pad == "SAME_UPPER" ? smaller : total - smaller;
      w.pad_end[i] = total - w.pad_begin[i];
    }
  } else {
    malformed(node, "auto_pad '" + auto_pad + "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
  }
  for (std::int64_t o : w.output)
    if (o < 1) malformed(node, "the output would be empty");
  return w;
}

PadMode choose_pad_mode(const Window2D& w) {
  bool any_padding = false;
  bool same = true;
  for (int d = 0; d < 2; ++d) {
    const auto i = static_cast<std::size_t>(d);
    const std::int64_t end = w.used_pad_end(d);
    if (w.pad_begin[i] != 0 || end != 0) any_padding = true;
    // TFLite SAME: output ceil(in / stride), total padding split with the extra one at the end.
    const std::int64_t out = (w.input[i] + w.stride[i] - 1) / w.stride[i];
    const std::int64_t total = std::max<std::int64_t>(0, (out - 1) * w.stride[i] + w.effective_kernel(d) - w.input[i]);
    if (w.output[i] != out || w.pad_begin[i] != total / 2 || end != total - total / 2) same = false;
  }
  if (!any_padding) return PadMode::kValid;
  return same ? PadMode::kSame : PadMode::kExplicit;
}

int pad_nhwc(LoweringContext& ctx, int input, const Window2D& w, float value, const std::string& base) {
  const Shape in = ctx.tflite_shape(input);
  const std::int64_t top = w.pad_begin[0], bottom = w.used_pad_end(0), left = w.pad_begin[1], right = w.used_pad_end(1);
  const std::vector<std::int32_t> paddings{0,
                                           0,
                                           static_cast<std::int32_t>(top),
                                           static_cast<std::int32_t>(bottom),
                                           static_cast<std::int32_t>(left),
                                           static_cast<std::int32_t>(right),
                                           0,
                                           0};
  TflModel& m = ctx.model();
  const int paddings_tensor = m.add_int32_constant(ctx.unique_name(base + "_paddings"), {4, 2}, paddings);
  const int output = ctx.intermediate(base + "_padded", {in[0], in[1] + top + bottom, in[2] + left + right, in[3]});
  if (value == 0.0f) {
    m.add_operator(BuiltinOperator::PAD, {input, paddings_tensor}, {output}, tflite::PadOptionsT{});
  } else {
    const int value_tensor = ctx.scalar_constant(base + "_pad_value", value);
    m.add_operator(BuiltinOperator::PADV2, {input, paddings_tensor, value_tensor}, {output}, tflite::PadV2OptionsT{});
  }
  return output;
}

}  // namespace dermcds::converter
