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
// Mixed precision: the operators listed in Int8Plan::float_operators stay float32 (their
// constants too); a QUANTIZE is put in front of an int8 operator that reads a float tensor and a
// DEQUANTIZE in front of a float operator that reads an int8 one. Operators that only move values
// follow the operator that produced their input (a RESHAPE of a float tensor stays float).
// Bias correction (Int8Plan::bias_correction): the expected error that rounding the weights of a
// convolution adds to each output channel, (W_q - W) . E[x] with E[x] the calibrated per-channel
// mean of its input, is subtracted from its bias. Only the layer's own weight error is corrected,
// not error arriving from upstream (docs/converter.md says why that distinction matters).
// Throws kUnsupportedModel naming an operator TFLite cannot run in int8 (DIV, EXP, ...) unless
// it is kept float.
#pragma once

#include <map>
#include <optional>
#include <set>

#include "calibration.hpp"
#include "tflite_model.hpp"

namespace dermcds::converter {

struct QuantizeReport {
  std::size_t quantized_activations = 0;
  std::size_t quantized_weights = 0;
  std::size_t float_operators = 0;     // kept float (including value movers that follow them)
  std::size_t boundary_operators = 0;  // QUANTIZE / DEQUANTIZE between the two domains
  std::size_t bias_corrections = 0;    // convolutions whose bias was corrected
};

struct Int8Plan {
  std::set<std::size_t> float_operators;  // indices into the float model's operators
  // Range method per activation tensor; tensors not listed take `method`, or TensorRange::min/max
  // when that is unset.
  std::map<int, CalibrationMethod> methods;
  std::optional<CalibrationMethod> method;
  bool bias_correction = false;
  bool int8_io = false;
};

// The operators of a float model that only move values (they share one scale in int8).
bool moves_values_only(BuiltinOperator code);

QuantizeReport quantize_int8(TflModel& model, const std::map<int, TensorRange>& ranges, const Int8Plan& plan);
inline QuantizeReport quantize_int8(TflModel& model, const std::map<int, TensorRange>& ranges, bool int8_io) {
  Int8Plan plan;
  plan.int8_io = int8_io;
  return quantize_int8(model, ranges, plan);
}

}  // namespace dermcds::converter
