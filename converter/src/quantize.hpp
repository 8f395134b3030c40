// Full-integer int8 post-training quantization of a float TflModel, following TFLite's int8
// quantization specification:
//  - activations: per-tensor asymmetric int8 over their calibrated range (which is widened to
//    contain 0 exactly); operators that move values without arithmetic (RESHAPE, TRANSPOSE,
//    CONCATENATION, SPLIT, PAD, pools, MAXIMUM/MINIMUM ...) share one scale across their inputs
//    and outputs, and LOGISTIC / SOFTMAX / TANH outputs get the fixed scales their kernels need;
//  - weights: symmetric int8 (zero point 0, values in [-127, 127]), per output channel for
//    CONV_2D and DEPTHWISE_CONV_2D, per tensor for FULLY_CONNECTED (TFLite 2.9's kernel takes
//    nothing else; int8_rewrites.hpp turns fully connected layers into 1x1 convolutions first);
//    other constants per-tensor asymmetric;
//  - biases: int32 with scale input_scale * weight_scale;
//  - model input and output: float with QUANTIZE / DEQUANTIZE inside the model, or int8 tensors.
// Throws kUnsupportedModel naming an operator TFLite cannot run in int8 (DIV, EXP, ...).
#pragma once

#include <map>

#include "calibration.hpp"
#include "tflite_model.hpp"

namespace dermcds::converter {

struct QuantizeReport {
  std::size_t quantized_activations = 0;
  std::size_t quantized_weights = 0;
};

QuantizeReport quantize_int8(TflModel& model, const std::map<int, TensorRange>& ranges, bool int8_io);

}  // namespace dermcds::converter
