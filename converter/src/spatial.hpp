// The sliding-window geometry shared by Conv, MaxPool and AveragePool: ONNX's auto_pad, pads,
// strides, dilations and ceil_mode resolved into explicit per-side padding and output sizes,
// and how TFLite can express that padding.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "attributes.hpp"

namespace dermcds::converter {

struct Window2D {
  std::array<std::int64_t, 2> input{};  // H, W
  std::array<std::int64_t, 2> kernel{};
  std::array<std::int64_t, 2> stride{1, 1};
  std::array<std::int64_t, 2> dilation{1, 1};
  std::array<std::int64_t, 2> pad_begin{};
  std::array<std::int64_t, 2> pad_end{};  // may exceed what the output needs
  std::array<std::int64_t, 2> output{};
  // ceil_mode produced a last window starting in the end padding, which ONNX Runtime (like
  // PyTorch) drops; the ONNX 1.12 shape inference keeps it, so the shapes disagree from here on.
  bool dropped_padding_window = false;

  std::int64_t effective_kernel(int d) const {
    return (kernel[static_cast<std::size_t>(d)] - 1) * dilation[static_cast<std::size_t>(d)] + 1;
  }
  // End padding that the last window actually reaches (can be less than pad_end, or more with
  // ceil_mode); never negative.
  std::int64_t used_pad_end(int d) const;
};

struct WindowRules {
  bool dilations = true;   // the operator has a dilations attribute
  bool ceil_mode = false;  // the operator has a ceil_mode attribute
};

// Reads auto_pad, pads, strides, dilations (and ceil_mode) from `attributes` and computes the
// output size as ONNX Runtime does. `kernel` comes from the weights (Conv) or kernel_shape.
// Throws kUnsupportedModel / kInvalidArgument naming the node for invalid values.
Window2D read_window(Attributes& attributes, const Node& node, std::array<std::int64_t, 2> input, std::array<std::int64_t, 2> kernel,
                     const WindowRules& rules);

enum class PadMode {
  kValid,     // no padding
  kSame,      // exactly TFLite's SAME padding (extra row/column at the end)
  kExplicit,  // anything else: pad explicitly, then run VALID
};

PadMode choose_pad_mode(const Window2D& window);

class LoweringContext;
// The window's padding as an explicit PAD (value 0) or PADV2 (any other value, e.g. -inf for
// MaxPool) of the NHWC tensor `input`, for ONNX pads that SAME and VALID cannot express. Returns
// the padded tensor; `base` names the tensors it adds.
int pad_nhwc(LoweringContext& ctx, int input, const Window2D& w, float value, const std::string& base);

}  // namespace dermcds::converter
