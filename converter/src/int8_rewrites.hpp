// Rewrites of the float model before int8 calibration, so that more of its int8 version runs on
// XNNPACK's int8 (QS8) operators.
//
// XNNPACK in TF 2.9 has no int8 HARD_SWISH: each one splits the delegated graph and runs on
// TFLite's own int8 kernel, which made MobileNetV3-Large's int8 model about 4x slower than fp32
// (docs/converter.md has the measurements). It is rebuilt from operators XNNPACK runs in int8:
//   HARD_SWISH(x) -> x * (relu6(x + 3) * 1/6)       (ADD with fused RELU6, MUL, MUL)
// Applied before calibration, so the new intermediate tensors get calibrated ranges too; the
// float function is the same up to rounding. (Global average pooling, MEAN, also lacks an int8
// XNNPACK operator; the alternatives measured — a depthwise convolution with a 1/(H W) kernel,
// an AVERAGE_POOL_2D over the whole image — were slower than TFLite's int8 MEAN, so it stays.)
#pragma once

#include <cstddef>

#include "tflite_model.hpp"

namespace dermcds::converter {

// Returns the number of HARD_SWISH operators rewritten.
std::size_t rewrite_for_int8(TflModel& model);

}  // namespace dermcds::converter
