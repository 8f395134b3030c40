#include "op_versions.hpp"

namespace dermcds::converter {

int operator_version(const TflModel& model, const TflOperator& op) {
  const auto type_of = [&](int index) { return index < 0 ? TensorType::FLOAT32 : model.tensors[static_cast<std::size_t>(index)].type; };
  const TensorType input = op.inputs.empty() ? TensorType::FLOAT32 : type_of(op.inputs[0]);
  const bool int8 = input == TensorType::INT8;

  switch (op.code) {
    case BuiltinOperator::CONV_2D:
      return int8 ? 3 : 1;
    case BuiltinOperator::DEPTHWISE_CONV_2D: {
      if (int8) return 3;
      const auto* o = op.options.AsDepthwiseConv2DOptions();
      return o && (o->dilation_w_factor != 1 || o->dilation_h_factor != 1) ? 2 : 1;
    }
    case BuiltinOperator::FULLY_CONNECTED: {
      const auto* o = op.options.AsFullyConnectedOptions();
      if (o && o->keep_num_dims) return 5;
      return int8 ? 4 : 1;
    }
    case BuiltinOperator::DEQUANTIZE:
      if (input == TensorType::FLOAT16) return 3;
      return int8 ? 2 : 1;
    case BuiltinOperator::QUANTIZE:
      return int8 ? 2 : 1;  // int8 -> int8 requantization is version 2
    case BuiltinOperator::ADD:
    case BuiltinOperator::SUB:
    case BuiltinOperator::MUL:
    case BuiltinOperator::AVERAGE_POOL_2D:
    case BuiltinOperator::MAX_POOL_2D:
    case BuiltinOperator::CONCATENATION:
    case BuiltinOperator::SOFTMAX:
    case BuiltinOperator::LOG_SOFTMAX:
    case BuiltinOperator::LOGISTIC:
    case BuiltinOperator::TANH:
    case BuiltinOperator::RELU:
    case BuiltinOperator::RELU6:
    case BuiltinOperator::LEAKY_RELU:
    case BuiltinOperator::MEAN:
    case BuiltinOperator::SUM:
    case BuiltinOperator::REDUCE_MAX:
    case BuiltinOperator::PAD:
    case BuiltinOperator::PADV2:
    case BuiltinOperator::TRANSPOSE:
    case BuiltinOperator::STRIDED_SLICE:
    case BuiltinOperator::SPLIT:
    case BuiltinOperator::SPLIT_V:
    case BuiltinOperator::MAXIMUM:
    case BuiltinOperator::MINIMUM:
    case BuiltinOperator::BATCH_MATMUL:
      return int8 ? 2 : 1;
    default:
      return 1;
  }
}

}  // namespace dermcds::converter
