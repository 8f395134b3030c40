#include "onnx_qdq.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <unordered_map>

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include "calibration.hpp"
#include "dermcds/error.hpp"
#include "graph_passes.hpp"
#include "lowering.hpp"
#include "onnx_import.hpp"
#include "tflite_passes.hpp"

namespace dermcds::converter {

namespace {

// Per-channel DequantizeLinear (the axis attribute) arrived in opset 13.
constexpr std::int64_t kMinQdqOpset = 13;

// Weights use 7 bits ([-63, 63]), not 8. On x86-64 without AVX-512 VNNI (an AVX2-only AMD EPYC,
// say), ONNX Runtime runs int8 convolutions through VPMADDUBSW, which adds two u8 x s8 products
// into a saturating int16: 255 * 127 * 2 overflows it, 255 * 63 * 2 does not. Measured: with
// 8-bit weights 9 of the 27 single-operator QDQ cases missed their error bound by 2-10x on such a
// machine while passing on one with VNNI. ONNX Runtime's own quantizer calls this reduce_range.
constexpr float kWeightLevels = 63.0f;

struct ActivationQuant {
  float scale = 1.0f;
  std::uint8_t zero_point = 0;
};

// Activations are unsigned 8-bit (u8 activations x s8 weights, ONNX Runtime's U8S8 form),
// asymmetric over [lo, hi] widened to contain 0, so that 0 (padding, Relu) is exact. Unsigned, not
// signed: on x86-64 ONNX Runtime's QDQ fusion turns every convolution with u8 activations into
// QLinearConv, but with s8 activations it left many as DequantizeLinear feeding a float Conv.
// Measured on EfficientNet-B4 (2026-12-04): s8 gave 57 of 160 convolutions QLinearConv (none of
// the depthwise or squeeze-and-excitation ones), u8 gives all 160 and halves the int8 model's
// latency; of the single-operator cases, s8 left conv_grouped_32_then_add, concat_channels and
// small_network unfused (OnnxQdqOpTest counts the QLinearConv nodes). The values represented are
// the same (q_u8 = q_s8 + 128, with the zero point moved alike).
ActivationQuant activation_quant(const TensorRange& range) {
  const double lo = std::min(0.0, static_cast<double>(range.min));
  double hi = std::max(0.0, static_cast<double>(range.max));
  if (hi - lo < 1e-8) hi = lo + 1e-8;
  const double scale = (hi - lo) / 255.0;
  const double zero_point = std::clamp(std::round(-lo / scale), 0.0, 255.0);
  return {static_cast<float>(scale), static_cast<std::uint8_t>(zero_point)};
}

std::vector<float> float_values(const onnx::TensorProto& t, const std::string& origin) {
  if (t.data_type() != onnx::TensorProto::FLOAT)
    throw Error(ErrorCode::kUnsupportedModel, origin + ": initializer '" + t.name() + "' is not float32");
  std::size_t count = 1;
  for (const auto d : t.dims()) count *= static_cast<std::size_t>(d);
  std::vector<float> values(count);
  if (!t.raw_data().empty()) {
    if (t.raw_data().size() != count * sizeof(float))
      throw Error(ErrorCode::kInvalidArgument, origin + ": initializer '" + t.name() + "' has the wrong number of bytes");
    std::memcpy(values.data(), t.raw_data().data(), t.raw_data().size());
  } else {
    if (static_cast<std::size_t>(t.float_data_size()) != count)
      throw Error(ErrorCode::kInvalidArgument, origin + ": initializer '" + t.name() + "' has the wrong number of values");
    std::copy(t.float_data().begin(), t.float_data().end(), values.begin());
  }
  return values;
}

template <typename T>
onnx::TensorProto make_tensor(const std::string& name, int data_type, const std::vector<std::int64_t>& dims, const std::vector<T>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(data_type);
  for (const auto d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));  // little-endian, as ONNX stores it
  return t;
}

onnx::NodeProto make_node(const std::string& op, const std::string& name, std::vector<std::string> inputs, const std::string& output,
                          std::optional<std::int64_t> axis = std::nullopt) {
  onnx::NodeProto n;
  n.set_op_type(op);
  n.set_name(name);
  for (auto& i : inputs) n.add_input(std::move(i));
  n.add_output(output);
  if (axis) {
    onnx::AttributeProto* a = n.add_attribute();
    a->set_name("axis");
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(*axis);
  }
  return n;
}

std::int64_t default_opset(const onnx::ModelProto& model) {
  for (const auto& o : model.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") return o.version();
  return 0;
}

// Activation ranges by ONNX value name: the TFLite path's calibration of the same graph.
std::unordered_map<std::string, TensorRange> calibrated_ranges(std::span<const std::uint8_t> bytes, const std::string& origin,
                                                               const OnnxQdqOptions& options) {
  Graph graph = import_onnx(bytes, origin);
  simplify_graph(graph);
  TflModel model = lower_graph(graph);
  optimize_tflite(model);
  const std::map<int, TensorRange> ranges = calibrate(model, options.calibration, options.progress);
  std::unordered_map<std::string, TensorRange> by_name;
  for (const auto& [index, range] : ranges) by_name[model.tensors[static_cast<std::size_t>(index)].name] = range;
  return by_name;
}

}  // namespace

OnnxQdqResult quantize_onnx_qdq(std::span<const std::uint8_t> onnx_bytes, const std::string& origin, const OnnxQdqOptions& options) {
  if (options.calibration.samples.empty())
    throw Error(ErrorCode::kInvalidArgument, "ONNX int8 quantization needs calibration samples (images preprocessed as at inference)");
  onnx::ModelProto model;
  if (onnx_bytes.empty() || !model.ParseFromArray(onnx_bytes.data(), static_cast<int>(onnx_bytes.size())))
    throw Error(ErrorCode::kInvalidArgument, origin + " is not an ONNX model");
  OnnxQdqResult result;
  OnnxQdqReport& report = result.report;
  report.opset = default_opset(model);
  if (report.opset < kMinQdqOpset)
    throw Error(ErrorCode::kUnsupportedModel, origin + " has opset " + std::to_string(report.opset) +
                                                  "; per-channel int8 (QDQ) needs opset " + std::to_string(kMinQdqOpset) + " or later");
  report.calibration_samples = options.calibration.samples.size();
  const auto ranges = calibrated_ranges(onnx_bytes, origin, options);
  auto range_of = [&](const std::string& name) -> const TensorRange* {
    const auto it = ranges.find(name);
    return it == ranges.end() ? nullptr : &it->second;
  };

  onnx::GraphProto& graph = *model.mutable_graph();
  std::unordered_map<std::string, int> initializer_index;
  for (int i = 0; i < graph.initializer_size(); ++i) initializer_index[graph.initializer(i).name()] = i;
  std::unordered_map<std::string, std::vector<int>> consumers;
  for (int i = 0; i < graph.node_size(); ++i)
    for (const auto& input : graph.node(i).input()) consumers[input].push_back(i);

  // Which tensors get a QuantizeLinear/DequantizeLinear pair, and which convolutions int8 weights.
  std::map<std::string, ActivationQuant> activations;
  struct ConvWeights {
    int node;
    float input_scale;
  };
  std::vector<ConvWeights> convs;
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& node = graph.node(i);
    if (node.op_type() != "Conv") continue;
    ++report.convolutions;
    const std::string label = "'" + node.name() + "'";
    if (options.float_nodes.count(node.name())) {
      report.unquantized.push_back(label + ": kept float as asked");
      continue;
    }
    if (node.input_size() < 2 || !initializer_index.count(node.input(1))) {
      report.unquantized.push_back(label + ": its weights are not a constant");
      continue;
    }
    if (node.input_size() > 2 && !node.input(2).empty() && !initializer_index.count(node.input(2))) {
      report.unquantized.push_back(label + ": its bias is not a constant");
      continue;
    }
    const TensorRange* in = range_of(node.input(0));
    // The output's range; under a Relu/Clip the lowering fused in, the range after it.
    std::string out_name = node.output(0);
    const TensorRange* out = range_of(out_name);
    if (!out) {
      const auto& users = consumers[out_name];
      if (users.size() == 1) {
        const onnx::NodeProto& next = graph.node(users[0]);
        if ((next.op_type() == "Relu" || next.op_type() == "Clip") && (out = range_of(next.output(0)))) out_name = next.output(0);
      }
    }
    if (!in || !out) {
      report.unquantized.push_back(label + ": no calibrated range for its " + std::string(in ? "output" : "input"));
      continue;
    }
    const ActivationQuant input_quant = activation_quant(*in);
    activations[node.input(0)] = input_quant;
    activations[out_name] = activation_quant(*out);
    convs.push_back({i, input_quant.scale});
  }

  // A Sigmoid that reads a quantized tensor gets its output quantized too, over the range every
  // sigmoid has, [0, 1], so no calibration is needed. ONNX Runtime then runs it as
  // QLinearSigmoid, and the swish or squeeze-and-excitation Mul reading it as QLinearMul, instead
  // of dequantizing and requantizing around each (EfficientNet-B4 has 128: docs/converter.md).
  for (const auto& node : graph.node())
    if (node.op_type() == "Sigmoid" && activations.count(node.input(0)) && !options.float_nodes.count(node.name()))
      activations[node.output(0)] = {1.0f / 255.0f, 0};

  // Weights and biases: int8 / int32 initializers behind per-channel DequantizeLinear nodes.
  std::vector<onnx::NodeProto> weight_nodes;
  std::vector<onnx::TensorProto> new_initializers;
  std::set<std::string> replaced;
  for (const ConvWeights& c : convs) {
    onnx::NodeProto& node = *graph.mutable_node(c.node);
    const onnx::TensorProto& w = graph.initializer(initializer_index.at(node.input(1)));
    const std::vector<float> weights = float_values(w, origin);
    if (w.dims_size() < 2 || w.dims(0) <= 0)
      throw Error(ErrorCode::kInvalidArgument,
                  origin + ": Conv '" + node.name() + "' has weights of rank " + std::to_string(w.dims_size()));
    const auto channels = static_cast<std::size_t>(w.dims(0));
    const std::size_t per_channel = weights.size() / channels;
    std::vector<float> scales(channels);
    std::vector<std::int8_t> q(weights.size());
    for (std::size_t ch = 0; ch < channels; ++ch) {
      float amax = 0;
      for (std::size_t k = 0; k < per_channel; ++k) amax = std::max(amax, std::abs(weights[ch * per_channel + k]));
      scales[ch] = amax > 0 ? amax / kWeightLevels : 1.0f;
      for (std::size_t k = 0; k < per_channel; ++k)
        q[ch * per_channel + k] =
            static_cast<std::int8_t>(std::clamp(std::round(weights[ch * per_channel + k] / scales[ch]), -kWeightLevels, kWeightLevels));
    }
    const std::vector<std::int64_t> dims(w.dims().begin(), w.dims().end());
    const std::vector<std::int64_t> channel_dims{static_cast<std::int64_t>(channels)};
    const std::string base = node.name() + "_weight";
    new_initializers.push_back(make_tensor(base + "_quantized", onnx::TensorProto::INT8, dims, q));
    new_initializers.push_back(make_tensor(base + "_scale", onnx::TensorProto::FLOAT, channel_dims, scales));
    new_initializers.push_back(
        make_tensor(base + "_zero_point", onnx::TensorProto::INT8, channel_dims, std::vector<std::int8_t>(channels, 0)));
    weight_nodes.push_back(make_node("DequantizeLinear", base + "_DequantizeLinear",
                                     {base + "_quantized", base + "_scale", base + "_zero_point"}, base + "_dequantized", 0));
    replaced.insert(node.input(1));
    node.set_input(1, base + "_dequantized");

    if (node.input_size() > 2 && !node.input(2).empty()) {
      const onnx::TensorProto& b = graph.initializer(initializer_index.at(node.input(2)));
      const std::vector<float> bias = float_values(b, origin);
      if (bias.size() != channels)
        throw Error(ErrorCode::kInvalidArgument, origin + ": Conv '" + node.name() + "' has " + std::to_string(bias.size()) +
                                                     " biases for " + std::to_string(channels) + " output channels");
      std::vector<float> bias_scales(channels);
      std::vector<std::int32_t> qb(channels);
      for (std::size_t ch = 0; ch < channels; ++ch) {
        bias_scales[ch] = c.input_scale * scales[ch];
        const double v = std::round(static_cast<double>(bias[ch]) / bias_scales[ch]);
        qb[ch] = static_cast<std::int32_t>(
            std::clamp(v, double(std::numeric_limits<std::int32_t>::min()), double(std::numeric_limits<std::int32_t>::max())));
      }
      const std::string bbase = node.name() + "_bias";
      new_initializers.push_back(make_tensor(bbase + "_quantized", onnx::TensorProto::INT32, channel_dims, qb));
      new_initializers.push_back(make_tensor(bbase + "_scale", onnx::TensorProto::FLOAT, channel_dims, bias_scales));
      new_initializers.push_back(
          make_tensor(bbase + "_zero_point", onnx::TensorProto::INT32, channel_dims, std::vector<std::int32_t>(channels, 0)));
      weight_nodes.push_back(make_node("DequantizeLinear", bbase + "_DequantizeLinear",
                                       {bbase + "_quantized", bbase + "_scale", bbase + "_zero_point"}, bbase + "_dequantized", 0));
      replaced.insert(node.input(2));
      node.set_input(2, bbase + "_dequantized");
    }
  }
  report.quantized_convolutions = convs.size();

  // Activation pairs: consumers read the dequantized tensor; the producer keeps its output (a
  // graph output stays float and exact).
  auto pair_for = [&](const std::string& tensor, const ActivationQuant& a, std::vector<onnx::NodeProto>& out) {
    const std::string base = tensor + "_q";
    new_initializers.push_back(make_tensor(base + "_scale", onnx::TensorProto::FLOAT, {}, std::vector<float>{a.scale}));
    new_initializers.push_back(make_tensor(base + "_zero_point", onnx::TensorProto::UINT8, {}, std::vector<std::uint8_t>{a.zero_point}));
    out.push_back(
        make_node("QuantizeLinear", base + "_QuantizeLinear", {tensor, base + "_scale", base + "_zero_point"}, base + "_quantized"));
    out.push_back(make_node("DequantizeLinear", base + "_DequantizeLinear", {base + "_quantized", base + "_scale", base + "_zero_point"},
                            base + "_dequantized"));
  };
  std::vector<onnx::NodeProto> nodes = std::move(weight_nodes);
  for (const auto& input : graph.input())
    if (const auto it = activations.find(input.name()); it != activations.end()) pair_for(it->first, it->second, nodes);
  for (int i = 0; i < graph.node_size(); ++i) {
    onnx::NodeProto node = graph.node(i);
    for (int k = 0; k < node.input_size(); ++k)
      if (activations.count(node.input(k))) node.set_input(k, node.input(k) + "_q_dequantized");
    nodes.push_back(node);
    for (const auto& output : graph.node(i).output())
      if (const auto it = activations.find(output); it != activations.end()) pair_for(it->first, it->second, nodes);
  }
  report.quantized_activations = activations.size();
  graph.clear_node();
  for (auto& n : nodes) *graph.add_node() = std::move(n);

  // Float weights no node reads any more leave the model (and its inputs, in old-style models).
  std::set<std::string> still_read;
  for (const auto& n : graph.node())
    for (const auto& input : n.input()) still_read.insert(input);
  google::protobuf::RepeatedPtrField<onnx::TensorProto> kept;
  for (auto& t : *graph.mutable_initializer())
    if (!replaced.count(t.name()) || still_read.count(t.name())) *kept.Add() = std::move(t);
  for (auto& t : new_initializers) *kept.Add() = std::move(t);
  graph.mutable_initializer()->Swap(&kept);
  google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> inputs;
  for (auto& v : *graph.mutable_input())
    if (!replaced.count(v.name()) || still_read.count(v.name())) *inputs.Add() = std::move(v);
  graph.mutable_input()->Swap(&inputs);

  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kInternal, "the quantized model of " + origin + " fails the ONNX checker: " + e.what());
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) throw Error(ErrorCode::kInternal, "cannot serialize the quantized model of " + origin);
  result.model.assign(bytes.begin(), bytes.end());
  if (options.progress)
    options.progress("ONNX int8 (QDQ): " + std::to_string(report.quantized_convolutions) + " of " + std::to_string(report.convolutions) +
                     " convolutions int8, " + std::to_string(report.quantized_activations) + " activations quantized");
  return result;
}

}  // namespace dermcds::converter
