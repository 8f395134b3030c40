#include "quantize.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <set>

#include "dermcds/error.hpp"

namespace dermcds::converter {

namespace {

struct Params {
  float scale = 1.0f;
  std::int64_t zero_point = 0;
};

// Calibrated ranges narrower than this are widened (upwards). A tensor that was (nearly) always
// zero in calibration would otherwise get a vanishing scale, and XNNPACK's int8 operators refuse
// the extreme requantization factors that produces (the whole delegate then fails to prepare).
// In networks whose activations are O(1), values below 1e-3 are noise.
constexpr double kMinimumSpan = 1e-3;

// Asymmetric int8 over [lo, hi], widened to contain 0, with 0 exactly representable.
Params asymmetric(double lo, double hi) {
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  if (hi - lo < kMinimumSpan) hi = lo + kMinimumSpan;
  const double scale = (hi - lo) / 255.0;
  const double zero_point = std::clamp(std::round(-128.0 - lo / scale), -128.0, 127.0);
  return {static_cast<float>(scale), static_cast<std::int64_t>(zero_point)};
}

// Output scales TFLite's int8 kernels require.
std::optional<Params> fixed_output(BuiltinOperator code) {
  switch (code) {
    case BuiltinOperator::LOGISTIC:
    case BuiltinOperator::SOFTMAX: return Params{1.0f / 256.0f, -128};
    case BuiltinOperator::TANH: return Params{1.0f / 128.0f, 0};
    case BuiltinOperator::LOG_SOFTMAX: return Params{16.0f / 256.0f, 127};
    default: return std::nullopt;
  }
}

bool has_int8_kernel(BuiltinOperator code) {
  switch (code) {
    case BuiltinOperator::CONV_2D:
    case BuiltinOperator::DEPTHWISE_CONV_2D:
    case BuiltinOperator::FULLY_CONNECTED:
    case BuiltinOperator::ADD:
    case BuiltinOperator::SUB:
    case BuiltinOperator::MUL:
    case BuiltinOperator::AVERAGE_POOL_2D:
    case BuiltinOperator::MAX_POOL_2D:
    case BuiltinOperator::CONCATENATION:
    case BuiltinOperator::RESHAPE:
    case BuiltinOperator::SQUEEZE:
    case BuiltinOperator::TRANSPOSE:
    case BuiltinOperator::SOFTMAX:
    case BuiltinOperator::LOG_SOFTMAX:
    case BuiltinOperator::LOGISTIC:
    case BuiltinOperator::TANH:
    case BuiltinOperator::RELU:
    case BuiltinOperator::RELU6:
    case BuiltinOperator::RELU_N1_TO_1:
    case BuiltinOperator::LEAKY_RELU:
    case BuiltinOperator::HARD_SWISH:
    case BuiltinOperator::MEAN:
    case BuiltinOperator::SUM:
    case BuiltinOperator::REDUCE_MAX:
    case BuiltinOperator::PAD:
    case BuiltinOperator::PADV2:
    case BuiltinOperator::MIRROR_PAD:
    case BuiltinOperator::STRIDED_SLICE:
    case BuiltinOperator::SPLIT:
    case BuiltinOperator::SPLIT_V:
    case BuiltinOperator::MAXIMUM:
    case BuiltinOperator::MINIMUM:
      return true;
    default:
      return false;
  }
}

// The float tensors of an operator that must share quantization parameters (operators that move
// or select values without arithmetic), or empty.
std::vector<int> tied_tensors(const TflOperator& op) {
  std::vector<int> tied;
  auto add = [&](int t) {
    if (t >= 0) tied.push_back(t);
  };
  switch (op.code) {
    case BuiltinOperator::RESHAPE:
    case BuiltinOperator::SQUEEZE:
    case BuiltinOperator::TRANSPOSE:
    case BuiltinOperator::STRIDED_SLICE:
    case BuiltinOperator::PAD:
    case BuiltinOperator::MIRROR_PAD:
    case BuiltinOperator::AVERAGE_POOL_2D:
    case BuiltinOperator::MAX_POOL_2D:
    case BuiltinOperator::REDUCE_MAX:
    case BuiltinOperator::SPLIT_V:
      add(op.inputs.at(0));
      break;
    case BuiltinOperator::PADV2:
      add(op.inputs.at(0));
      add(op.inputs.at(2));  // the padding value
      break;
    case BuiltinOperator::SPLIT:
      add(op.inputs.at(1));
      break;
    case BuiltinOperator::CONCATENATION:
    case BuiltinOperator::MAXIMUM:
    case BuiltinOperator::MINIMUM:
      for (int t : op.inputs) add(t);
      break;
    default:
      return tied;
  }
  for (int t : op.outputs) add(t);
  return tied;
}

class UnionFind {
 public:
  explicit UnionFind(std::size_t n) : parent_(n) { std::iota(parent_.begin(), parent_.end(), 0); }
  int find(int x) {
    while (parent_[static_cast<std::size_t>(x)] != x) x = parent_[static_cast<std::size_t>(x)] = parent_[static_cast<std::size_t>(parent_[static_cast<std::size_t>(x)])];
    return x;
  }
  void unite(int a, int b) { parent_[static_cast<std::size_t>(find(a))] = find(b); }

 private:
  std::vector<int> parent_;
};

void set_int8(TflTensor& t, const Params& p) {
  t.type = TensorType::INT8;
  t.quantization = Quantization{{p.scale}, {p.zero_point}, 0};
}

std::vector<std::uint8_t> int8_bytes(const std::vector<std::int8_t>& values) {
  std::vector<std::uint8_t> bytes(values.size());
  std::memcpy(bytes.data(), values.data(), values.size());
  return bytes;
}

// Symmetric int8 weights, one scale per slice along `dimension` (or one for the whole tensor
// when dimension < 0). Returns the scales.
std::vector<float> quantize_weights(TflTensor& t, int dimension) {
  const std::vector<float> w = float_values(t);
  const std::size_t channels = dimension < 0 ? 1 : static_cast<std::size_t>(t.shape.at(static_cast<std::size_t>(dimension)));
  std::size_t inner = 1;
  if (dimension >= 0)
    for (std::size_t d = static_cast<std::size_t>(dimension) + 1; d < t.shape.size(); ++d) inner *= static_cast<std::size_t>(t.shape[d]);
  auto channel_of = [&](std::size_t i) { return dimension < 0 ? 0 : (i / inner) % channels; };

  std::vector<float> max_abs(channels, 0.0f);
  for (std::size_t i = 0; i < w.size(); ++i) max_abs[channel_of(i)] = std::max(max_abs[channel_of(i)], std::fabs(w[i]));
  std::vector<float> scales(channels);
  for (std::size_t c = 0; c < channels; ++c) scales[c] = max_abs[c] > 0 ? max_abs[c] / 127.0f : 1.0f;
  std::vector<std::int8_t> q(w.size());
  for (std::size_t i = 0; i < w.size(); ++i)
    q[i] = static_cast<std::int8_t>(std::clamp(std::round(w[i] / scales[channel_of(i)]), -127.0f, 127.0f));
  t.type = TensorType::INT8;
  t.data = int8_bytes(q);
  t.quantization = Quantization{scales, std::vector<std::int64_t>(channels, 0), dimension < 0 ? 0 : dimension};
  return scales;
}

void quantize_bias(TflTensor& t, float input_scale, const std::vector<float>& weight_scales) {
  const std::vector<float> b = float_values(t);
  std::vector<float> scales(b.size());
  std::vector<std::int32_t> q(b.size());
  for (std::size_t c = 0; c < b.size(); ++c) {
    scales[c] = input_scale * weight_scales[weight_scales.size() == 1 ? 0 : c];
    const double v = std::round(static_cast<double>(b[c]) / scales[c]);
    q[c] = static_cast<std::int32_t>(std::clamp(v, static_cast<double>(std::numeric_limits<std::int32_t>::min()),
                                                static_cast<double>(std::numeric_limits<std::int32_t>::max())));
  }
  t.type = TensorType::INT32;
  t.data.resize(q.size() * sizeof(std::int32_t));
  std::memcpy(t.data.data(), q.data(), t.data.size());
  if (weight_scales.size() == 1) scales.assign(1, input_scale * weight_scales[0]);
  t.quantization = Quantization{scales, std::vector<std::int64_t>(scales.size(), 0), 0};
}

void quantize_constant(TflTensor& t, const Params& p) {
  const std::vector<float> v = float_values(t);
  std::vector<std::int8_t> q(v.size());
  for (std::size_t i = 0; i < v.size(); ++i)
    q[i] = static_cast<std::int8_t>(std::clamp(std::round(v[i] / p.scale) + static_cast<float>(p.zero_point), -128.0f, 127.0f));
  t.data = int8_bytes(q);
  set_int8(t, p);
}

std::pair<double, double> constant_range(const TflTensor& t) {
  const std::vector<float> v = float_values(t);
  double lo = 0, hi = 0;
  for (float x : v) {
    // The lowest float marks max-pool padding; it only has to quantize to the bottom of the range.
    if (x == std::numeric_limits<float>::lowest()) continue;
    lo = std::min(lo, static_cast<double>(x));
    hi = std::max(hi, static_cast<double>(x));
  }
  return {lo, hi};
}

}  // namespace

QuantizeReport quantize_int8(TflModel& model, const std::map<int, TensorRange>& ranges, bool int8_io) {
  QuantizeReport report;
  const std::size_t count = model.tensors.size();
  auto is_float = [&](int t) { return t >= 0 && model.tensors[static_cast<std::size_t>(t)].type == TensorType::FLOAT32; };

  for (const TflOperator& op : model.operators)
    if (!has_int8_kernel(op.code))
      throw Error(ErrorCode::kUnsupportedModel, "operator " + std::string(operator_name(op.code)) + " (writing '" +
                                                    model.tensors[static_cast<std::size_t>(op.outputs.at(0))].name +
                                                    "') has no int8 kernel in TensorFlow Lite 2.9; convert this model at fp16 or fp32");

  // Which float tensors share parameters, and which have them fixed by their producer.
  UnionFind groups(count);
  for (const TflOperator& op : model.operators) {
    const std::vector<int> tied = tied_tensors(op);
    for (std::size_t i = 1; i < tied.size(); ++i)
      if (is_float(tied[0]) && is_float(tied[i])) groups.unite(tied[0], tied[i]);
  }
  std::map<int, Params> fixed;
  for (const TflOperator& op : model.operators)
    if (const auto p = fixed_output(op.code)) {
      const int root = groups.find(op.outputs.at(0));
      if (fixed.count(root) && (fixed[root].scale != p->scale || fixed[root].zero_point != p->zero_point))
        throw Error(ErrorCode::kUnsupportedModel, "two fixed int8 scales meet at tensor '" + model.tensors[static_cast<std::size_t>(op.outputs[0])].name + "'");
      fixed[root] = *p;
    }

  // Group ranges: the union of their members' calibrated ranges (and constant values).
  std::map<int, std::pair<double, double>> group_range;
  for (std::size_t i = 0; i < count; ++i) {
    const int t = static_cast<int>(i);
    if (!is_float(t)) continue;
    std::pair<double, double> r;
    if (model.tensors[i].is_constant()) {
      r = constant_range(model.tensors[i]);
    } else {
      const auto it = ranges.find(t);
      if (it == ranges.end()) continue;  // not read by anything calibrated; checked below
      r = {it->second.min, it->second.max};
    }
    const int root = groups.find(t);
    auto [g, added] = group_range.try_emplace(root, r);
    if (!added) g->second = {std::min(g->second.first, r.first), std::max(g->second.second, r.second)};
  }
  auto params_of = [&](int t) -> Params {
    const int root = groups.find(t);
    if (const auto f = fixed.find(root); f != fixed.end()) return f->second;
    const auto g = group_range.find(root);
    if (g == group_range.end())
      throw Error(ErrorCode::kInternal, "no calibrated range for tensor '" + model.tensors[static_cast<std::size_t>(t)].name + "'");
    return asymmetric(g->second.first, g->second.second);
  };

  // Weights and biases of the operators that have them, per their kernels' rules.
  std::set<int> done;
  for (const TflOperator& op : model.operators) {
    const bool conv = op.code == BuiltinOperator::CONV_2D, depthwise = op.code == BuiltinOperator::DEPTHWISE_CONV_2D;
    if (!conv && !depthwise && op.code != BuiltinOperator::FULLY_CONNECTED) continue;
    const int weights = op.inputs.at(1);
    if (!model.tensors[static_cast<std::size_t>(weights)].is_constant())
      throw Error(ErrorCode::kUnsupportedModel, std::string(operator_name(op.code)) + " with non-constant weights cannot be quantized");
    if (done.count(weights)) throw Error(ErrorCode::kInternal, "weights shared between operators");
    const std::vector<float> weight_scales = quantize_weights(model.tensors[static_cast<std::size_t>(weights)], conv ? 0 : depthwise ? 3 : -1);
    done.insert(weights);
    ++report.quantized_weights;
    if (op.inputs.size() > 2 && op.inputs[2] >= 0) {
      quantize_bias(model.tensors[static_cast<std::size_t>(op.inputs[2])], params_of(op.inputs[0]).scale, weight_scales);
      done.insert(op.inputs[2]);
    }
  }

  // Activations and the remaining constants.
  for (std::size_t i = 0; i < count; ++i) {
    const int t = static_cast<int>(i);
    if (!is_float(t) || done.count(t)) continue;
    TflTensor& tensor = model.tensors[i];
    const Params p = params_of(t);
    if (tensor.is_constant()) {
      quantize_constant(tensor, p);
    } else {
      set_int8(tensor, p);
      ++report.quantized_activations;
    }
  }

  if (int8_io) return report;

  // Float interface: QUANTIZE after each input, DEQUANTIZE before each output.
  std::vector<TflOperator> prologue;
  for (int& input : model.inputs) {
    TflTensor quantized = model.tensors[static_cast<std::size_t>(input)];
    quantized.name += "_int8";
    quantized.dynamic_batch = false;
    const int q = model.add_tensor(std::move(quantized));
    for (TflOperator& op : model.operators)
      for (int& t : op.inputs)
        if (t == input) t = q;
    TflTensor& original = model.tensors[static_cast<std::size_t>(input)];
    original.type = TensorType::FLOAT32;
    original.quantization = {};
    prologue.push_back(TflOperator{BuiltinOperator::QUANTIZE, {input}, {q}, {}});
    prologue.back().options.Set(tflite::QuantizeOptionsT{});
  }
  model.operators.insert(model.operators.begin(), std::make_move_iterator(prologue.begin()), std::make_move_iterator(prologue.end()));
  for (int& output : model.outputs) {
    TflTensor dequantized = model.tensors[static_cast<std::size_t>(output)];
    dequantized.type = TensorType::FLOAT32;
    dequantized.quantization = {};
    model.tensors[static_cast<std::size_t>(output)].name += "_int8";
    model.tensors[static_cast<std::size_t>(output)].dynamic_batch = false;
    const int d = model.add_tensor(std::move(dequantized));
    model.add_operator(BuiltinOperator::DEQUANTIZE, {output}, {d}, tflite::DequantizeOptionsT{});
    output = d;
  }
  return report;
}

}  // namespace dermcds::converter
