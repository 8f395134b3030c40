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
    case BuiltinOperator::SOFTMAX:
      return Params{1.0f / 256.0f, -128};
    case BuiltinOperator::TANH:
      return Params{1.0f / 128.0f, 0};
    case BuiltinOperator::LOG_SOFTMAX:
      return Params{16.0f / 256.0f, 127};
    default:
      return std::nullopt;
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
    while (parent_[static_cast<std::size_t>(x)] != x)
      x = parent_[static_cast<std::size_t>(x)] = parent_[static_cast<std::size_t>(parent_[static_cast<std::size_t>(x)])];
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

bool moves_values_only(BuiltinOperator code) {
  switch (code) {
    case BuiltinOperator::RESHAPE:
    case BuiltinOperator::SQUEEZE:
    case BuiltinOperator::TRANSPOSE:
    case BuiltinOperator::STRIDED_SLICE:
    case BuiltinOperator::PAD:
    case BuiltinOperator::PADV2:
    case BuiltinOperator::MIRROR_PAD:
    case BuiltinOperator::MAX_POOL_2D:
    case BuiltinOperator::REDUCE_MAX:
    case BuiltinOperator::SPLIT:
    case BuiltinOperator::SPLIT_V:
    case BuiltinOperator::CONCATENATION:
    case BuiltinOperator::MAXIMUM:
    case BuiltinOperator::MINIMUM:
      return true;
    default:
      return false;
  }
}

namespace {

// (W_q - W) . E[x] per output channel: the mean error the rounded weights add to the output.
// Weights are [O, H, W, I] (CONV_2D) or [1, H, W, C * multiplier] (DEPTHWISE_CONV_2D).
std::vector<double> weight_rounding_bias(const TflTensor& quantized, const std::vector<float>& original, bool depthwise,
                                         const std::vector<double>& input_mean) {
  const std::vector<float>& scales = quantized.quantization.scale;
  const auto* q = reinterpret_cast<const std::int8_t*>(quantized.data.data());
  const std::size_t n = original.size();
  if (depthwise) {
    const auto channels = static_cast<std::size_t>(quantized.shape.back());
    const std::size_t multiplier = channels / std::max<std::size_t>(1, input_mean.size());
    if (multiplier == 0 || input_mean.size() * multiplier != channels) return {};
    std::vector<double> delta(channels, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t o = i % channels;
      delta[o] += (static_cast<double>(q[i]) * scales[o] - original[i]) * input_mean[o / multiplier];
    }
    return delta;
  }
  const auto outputs = static_cast<std::size_t>(quantized.shape.front());
  const auto inputs = static_cast<std::size_t>(quantized.shape.back());
  if (inputs != input_mean.size()) return {};
  std::vector<double> delta(outputs, 0.0);
  const std::size_t per_output = n / outputs;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t o = i / per_output;
    delta[o] += (static_cast<double>(q[i]) * scales[scales.size() == 1 ? 0 : o] - original[i]) * input_mean[i % inputs];
  }
  return delta;
}

}  // namespace

QuantizeReport quantize_int8(TflModel& model, const std::map<int, TensorRange>& calibrated, const Int8Plan& plan) {
  QuantizeReport report;
  const bool int8_io = plan.int8_io;
  std::map<int, TensorRange> ranges = calibrated;
  if (plan.method)
    for (auto& [t, r] : ranges) std::tie(r.min, r.max) = r.range(*plan.method);
  for (const auto& [t, method] : plan.methods)
    if (auto it = ranges.find(t); it != ranges.end()) std::tie(it->second.min, it->second.max) = it->second.range(method);

  // ---- which operators stay float ----
  const std::size_t op_count = model.operators.size();
  std::vector<bool> float_op(op_count, false);
  for (std::size_t i = 0; i < op_count; ++i) {
    const TflOperator& op = model.operators[i];
    float_op[i] = plan.float_operators.count(i) > 0;
    if (!float_op[i] && moves_values_only(op.code)) {
      // A value mover follows the producers of its activation inputs: float if all of them are.
      bool any = false, all = true;
      for (int t : op.inputs) {
        if (t < 0 || model.tensors[static_cast<std::size_t>(t)].is_constant()) continue;
        const int p = model.producer(t);
        const bool f = p >= 0 ? float_op[static_cast<std::size_t>(p)] : !int8_io && model.is_model_input(t);
        any = true;
        all = all && f;
      }
      float_op[i] = any && all;
    }
    if (!float_op[i] && !has_int8_kernel(op.code))
      throw Error(ErrorCode::kUnsupportedModel, "operator " + std::string(operator_name(op.code)) + " (writing '" +
                                                    model.tensors[static_cast<std::size_t>(op.outputs.at(0))].name +
                                                    "') has no int8 kernel in TensorFlow Lite 2.9; convert this model at fp16 or fp32");
    report.float_operators += float_op[i];
  }

  // ---- the float domain: float operators' outputs and constants, and a float model input ----
  std::vector<bool> float_tensor(model.tensors.size(), false);
  for (std::size_t i = 0; i < op_count; ++i)
    if (float_op[i])
      for (int t : model.operators[i].outputs) float_tensor[static_cast<std::size_t>(t)] = true;
  if (!int8_io)
    for (int t : model.inputs) float_tensor[static_cast<std::size_t>(t)] = true;
  // Constants read by float operators stay float; one also read by an int8 operator is copied.
  std::map<int, int> float_constant_copy;
  for (std::size_t i = 0; i < op_count; ++i) {
    if (!float_op[i]) continue;
    for (int& t : model.operators[i].inputs) {
      if (t < 0 || !model.tensors[static_cast<std::size_t>(t)].is_constant()) continue;
      bool read_by_int8 = false;
      for (std::size_t c : model.consumers(t)) read_by_int8 = read_by_int8 || !float_op[c];
      if (!read_by_int8) {
        float_tensor[static_cast<std::size_t>(t)] = true;
        continue;
      }
      auto [it, added] = float_constant_copy.try_emplace(t, -1);
      if (added) {
        TflTensor copy = model.tensors[static_cast<std::size_t>(t)];
        copy.name += "_float";
        it->second = model.add_tensor(std::move(copy));
        float_tensor.push_back(true);
      }
      t = it->second;
    }
  }

  // ---- boundaries: QUANTIZE / DEQUANTIZE in front of the operators that cross them ----
  std::map<int, int> quantized_copy, float_copy;
  std::vector<TflOperator> ordered;
  auto boundary = [&](int t, bool to_float) {
    std::map<int, int>& copies = to_float ? float_copy : quantized_copy;
    if (auto it = copies.find(t); it != copies.end()) return it->second;
    TflTensor copy = model.tensors[static_cast<std::size_t>(t)];
    copy.name += to_float ? "_float" : "_int8";
    copy.dynamic_batch = false;
    const int c = model.add_tensor(std::move(copy));
    float_tensor.push_back(to_float);
    if (!to_float) {
      const auto r = ranges.find(t);
      if (r == ranges.end())
        throw Error(ErrorCode::kInternal, "no calibrated range for tensor '" + model.tensors[static_cast<std::size_t>(t)].name + "'");
      ranges[c] = r->second;
    }
    TflOperator op{to_float ? BuiltinOperator::DEQUANTIZE : BuiltinOperator::QUANTIZE, {t}, {c}, {}};
    if (to_float)
      op.options.Set(tflite::DequantizeOptionsT{});
    else
      op.options.Set(tflite::QuantizeOptionsT{});
    ordered.push_back(std::move(op));
    ++report.boundary_operators;
    copies[t] = c;
    return c;
  };
  for (std::size_t i = 0; i < op_count; ++i) {
    TflOperator op = std::move(model.operators[i]);
    for (int& t : op.inputs) {
      if (t < 0 || model.tensors[static_cast<std::size_t>(t)].is_constant()) continue;
      const bool is_float = float_tensor[static_cast<std::size_t>(t)];
      if (float_op[i] && !is_float)
        t = boundary(t, true);
      else if (!float_op[i] && is_float)
        t = boundary(t, false);
    }
    ordered.push_back(std::move(op));
  }
  model.operators = std::move(ordered);
  std::vector<bool> int8_op_now;  // per operator of the rewritten list
  for (const TflOperator& op : model.operators) {
    const bool boundary_op = op.code == BuiltinOperator::QUANTIZE || op.code == BuiltinOperator::DEQUANTIZE;
    int8_op_now.push_back(!boundary_op && !float_tensor[static_cast<std::size_t>(op.outputs.at(0))]);
  }

  const std::size_t count = model.tensors.size();
  auto is_float = [&](int t) {
    return t >= 0 && !float_tensor[static_cast<std::size_t>(t)] && model.tensors[static_cast<std::size_t>(t)].type == TensorType::FLOAT32;
  };

  // Which float tensors share parameters, and which have them fixed by their producer.
  UnionFind groups(count);
  for (std::size_t i = 0; i < model.operators.size(); ++i) {
    if (!int8_op_now[i]) continue;
    const std::vector<int> tied = tied_tensors(model.operators[i]);
    for (std::size_t k = 1; k < tied.size(); ++k)
      if (is_float(tied[0]) && is_float(tied[k])) groups.unite(tied[0], tied[k]);
  }
  std::map<int, Params> fixed;
  for (std::size_t i = 0; i < model.operators.size(); ++i) {
    const TflOperator& op = model.operators[i];
    if (!int8_op_now[i]) continue;
    if (const auto p = fixed_output(op.code)) {
      const int root = groups.find(op.outputs.at(0));
      if (fixed.count(root) && (fixed[root].scale != p->scale || fixed[root].zero_point != p->zero_point))
        throw Error(ErrorCode::kUnsupportedModel,
                    "two fixed int8 scales meet at tensor '" + model.tensors[static_cast<std::size_t>(op.outputs[0])].name + "'");
      fixed[root] = *p;
    }
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

  // Weights and biases of the int8 operators that have them, per their kernels' rules.
  std::set<int> done;
  for (std::size_t i = 0; i < model.operators.size(); ++i) {
    const TflOperator& op = model.operators[i];
    if (!int8_op_now[i]) continue;
    const bool conv = op.code == BuiltinOperator::CONV_2D, depthwise = op.code == BuiltinOperator::DEPTHWISE_CONV_2D;
    if (!conv && !depthwise && op.code != BuiltinOperator::FULLY_CONNECTED) continue;
    const int weights = op.inputs.at(1);
    TflTensor& w = model.tensors[static_cast<std::size_t>(weights)];
    if (!w.is_constant())
      throw Error(ErrorCode::kUnsupportedModel, std::string(operator_name(op.code)) + " with non-constant weights cannot be quantized");
    if (done.count(weights)) throw Error(ErrorCode::kInternal, "weights shared between operators");
    const std::vector<float> original = float_values(w);
    const std::vector<float> weight_scales = quantize_weights(w, conv ? 0 : depthwise ? 3 : -1);
    done.insert(weights);
    ++report.quantized_weights;
    if (op.inputs.size() > 2 && op.inputs[2] >= 0) {
      TflTensor& bias = model.tensors[static_cast<std::size_t>(op.inputs[2])];
      const auto in = ranges.find(op.inputs[0]);
      if (plan.bias_correction && (conv || depthwise) && in != ranges.end() && !in->second.channel_mean.empty()) {
        const std::vector<double> delta = weight_rounding_bias(w, original, depthwise, in->second.channel_mean);
        std::vector<float> b = float_values(bias);
        if (delta.size() == b.size()) {
          for (std::size_t c = 0; c < b.size(); ++c) b[c] = static_cast<float>(b[c] - delta[c]);
          set_float_values(bias, b);
          ++report.bias_corrections;
        }
      }
      quantize_bias(bias, params_of(op.inputs[0]).scale, weight_scales);
      done.insert(op.inputs[2]);
    }
  }

  // Activations and the remaining constants of the int8 domain.
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

  // The interface: float input and output (DEQUANTIZE after an int8 output), or int8 ones
  // (QUANTIZE after a float output, DEQUANTIZE after an int8 input that a float operator reads
  // is already in place).
  for (int& output : model.outputs) {
    const bool output_is_int8 = !float_tensor[static_cast<std::size_t>(output)];
    if (output_is_int8 == int8_io) continue;
    TflTensor converted = model.tensors[static_cast<std::size_t>(output)];
    converted.dynamic_batch = false;
    if (int8_io) {
      const auto r = ranges.find(output);
      if (r == ranges.end()) throw Error(ErrorCode::kInternal, "no calibrated range for the model output");
      const Params p = asymmetric(r->second.min, r->second.max);
      // The interface keeps its name (the manifest's output name): the float tensor behind the
      // QUANTIZE is the one renamed, as the DEQUANTIZE case below renames the int8 one.
      model.tensors[static_cast<std::size_t>(output)].name += "_float";
      model.tensors[static_cast<std::size_t>(output)].dynamic_batch = false;
      set_int8(converted, p);
      const int q = model.add_tensor(std::move(converted));
      model.add_operator(BuiltinOperator::QUANTIZE, {output}, {q}, tflite::QuantizeOptionsT{});
      output = q;
    } else {
      converted.type = TensorType::FLOAT32;
      converted.quantization = {};
      model.tensors[static_cast<std::size_t>(output)].name += "_int8";
      model.tensors[static_cast<std::size_t>(output)].dynamic_batch = false;
      const int d = model.add_tensor(std::move(converted));
      model.add_operator(BuiltinOperator::DEQUANTIZE, {output}, {d}, tflite::DequantizeOptionsT{});
      output = d;
    }
  }
  return report;
}

}  // namespace dermcds::converter
