// Rewrites of the float model before int8 calibration, for a faster and more accurate int8 model.
//
// 1. XNNPACK in TF 2.9 has no int8 HARD_SWISH: each one splits the delegated graph and runs on
// TFLite's own int8 kernel, which made MobileNetV3-Large's int8 model about 4x slower than fp32
// (docs/converter.md has the measurements). It is rebuilt from operators XNNPACK runs in int8:
//   HARD_SWISH(x) -> x * (relu6(x + 3) * 1/6)       (ADD with fused RELU6, MUL, MUL)
// Applied before calibration, so the new intermediate tensors get calibrated ranges too; the
// float function is the same up to rounding. (Global average pooling, MEAN, also lacks an int8
// XNNPACK operator; the alternatives measured — a depthwise convolution with a 1/(H W) kernel,
// an AVERAGE_POOL_2D over the whole image — were slower than TFLite's int8 MEAN. MEAN stays
// float instead, with DEQUANTIZE / QUANTIZE around it, which XNNPACK takes: the int8 analysis
// does that, tflite_int8_evaluator.hpp.)
//
// 2. TFLite 2.9's int8 FULLY_CONNECTED takes one weight scale per tensor (per-channel scales give
// wrong results: the int8 single-operator tests caught it), while int8 CONV_2D takes one per
// output channel. A classifier's last layers have rows of very different magnitude, so
//   FULLY_CONNECTED(x [M,K]) -> RESHAPE [M,1,1,K] -> CONV_2D 1x1 -> RESHAPE [M,N]
// gives them per-channel weights.
#pragma once

#include <cstddef>

#include "tflite_model.hpp"

namespace dermcds::converter {

// Returns the number of operators rewritten.
std::size_t rewrite_for_int8(TflModel& model);

}  // namespace dermcds::converter
