// int8 post-training quantization of an ONNX model into ONNX's QDQ form, for ONNX Runtime on
// the server (docs/converter.md, "ONNX int8 (QDQ)").
//
// The model stays an ONNX model of the same operators; what changes:
//  - every quantized convolution reads DequantizeLinear(int8 weights), per output channel and
//    symmetric (zero point 0, values in [-63, 63]: kWeightLevels, onnx_qdq.cpp), and an int32 bias with scale
//    input_scale * weight_scale[c] behind a DequantizeLinear of its own;
//  - the activation tensors around those convolutions (their input and output) pass through a
//    QuantizeLinear -> DequantizeLinear pair: per-tensor asymmetric uint8 over the calibrated range,
//    widened to contain 0 exactly.
// That is the pattern ONNX Runtime's graph optimizer rewrites into int8 kernels (QLinearConv,
// and QLinearAdd / QLinearMul / QLinearSigmoid where their inputs and outputs are quantized too:
// a Sigmoid reading a quantized tensor has its output quantized over [0, 1]); operators between
// quantized tensors that are not rewritten (a Mul whose output is not quantized, HardSwish,
// GlobalAveragePool) run in float on dequantized values. Convolutions and Sigmoids named in
// `float_nodes` stay float, with their tensors, as do Gemm and everything else.
//
// Ranges come from the TFLite int8 path's calibration (calibration.hpp) run on the converter's
// float lowering of the same graph, whose tensors carry the ONNX value names; a tensor that the
// lowering fused away (a convolution's output under a fused Relu) takes the range of the tensor
// it was fused into, which is where its quantization belongs anyway.
//
// Errors: kInvalidArgument (not an ONNX model, no calibration samples), kUnsupportedModel
// (opset below 13, which lacks per-channel DequantizeLinear), kRuntimeFailure (calibration).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "dermcds/converter.hpp"

namespace dermcds::converter {

struct OnnxQdqOptions {
  CalibrationOptions calibration;     // NHWC samples, as load_calibration_images gives them
  std::set<std::string> float_nodes;  // ONNX node names of convolutions kept float
  std::function<void(const std::string&)> progress;
};

struct OnnxQdqReport {
  std::int64_t opset = 0;
  std::size_t convolutions = 0;  // Conv nodes in the model
  std::size_t quantized_convolutions = 0;
  std::size_t quantized_activations = 0;  // QuantizeLinear/DequantizeLinear pairs inserted
  std::size_t calibration_samples = 0;
  std::vector<std::string> unquantized;  // convolutions left float, and why
};

struct OnnxQdqResult {
  std::vector<std::uint8_t> model;  // serialized ModelProto
  OnnxQdqReport report;
};

OnnxQdqResult quantize_onnx_qdq(std::span<const std::uint8_t> onnx_bytes, const std::string& origin, const OnnxQdqOptions& options);

}  // namespace dermcds::converter
