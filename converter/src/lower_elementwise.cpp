// Element-wise operators: broadcasting binaries (Add, Sub, Mul, Div, Max, Min, Pow), activations
// (Relu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh, LeakyRelu, Exp, Sqrt), pass-throughs
// (Identity, Dropout) and a batch normalization that could not be folded into a convolution.
//
// Element-wise operators work in any layout, so they keep their input's; constant operands are
// broadcast to the output rank and permuted into that layout at conversion time.
#include <cmath>
#include <limits>
#include <optional>

#include "attributes.hpp"
#include "dermcds/error.hpp"
#include "lowering.hpp"

namespace dermcds::converter {

namespace {

// An operand of a binary operator: an ONNX value, or a constant the lowering made up.
struct Operand {
  std::string name;  // ONNX value, when `constant` is empty
  std::optional<HostTensor> constant;
};

Shape operand_shape(LoweringContext& ctx, const Operand& o) { return o.constant ? o.constant->shape : ctx.shape_of(o.name); }

bool is_constant_operand(LoweringContext& ctx, const Operand& o) { return o.constant || ctx.is_constant(o.name); }

// The operand as a TFLite tensor of rank `rank` in layout `perm` (ONNX broadcasting prepends
// size-1 dimensions).
int operand_tensor(LoweringContext& ctx, const Operand& o, std::size_t rank, const Perm& perm, const std::string& base) {
  if (is_constant_operand(ctx, o)) {
    HostTensor c = o.constant ? *o.constant : ctx.constant(o.name);
    Shape expanded(rank - c.shape.size(), 1);
    expanded.insert(expanded.end(), c.shape.begin(), c.shape.end());
    c = transpose(reshape(std::move(c), expanded), perm);
    if (!c.is_float()) c = HostTensor::from_floats(c.shape, c.to_floats());
    return ctx.float_constant(base, c.shape, c.floats);
  }
  const Shape shape = ctx.shape_of(o.name);
  if (shape.size() == rank) return ctx.tensor_in_layout(o.name, perm);
  // Lower-rank activation: view it with leading 1s, then bring it into `perm`.
  const std::size_t extra = rank - shape.size();
  const Perm current = ctx.layout_of(o.name);
  Perm widened = identity_perm(extra);
  for (int d : current) widened.push_back(d + static_cast<int>(extra));
  Shape expanded(extra, 1);
  expanded.insert(expanded.end(), shape.begin(), shape.end());
  int t = ctx.reshape(ctx.tensor_as_is(o.name), to_tflite_order(expanded, widened), base + "_widened");
  if (!same_element_order(expanded, widened, perm)) {
    const Perm position = inverse(widened);
    Perm q(rank);
    for (std::size_t i = 0; i < rank; ++i) q[i] = position[static_cast<std::size_t>(perm[i])];
    t = ctx.transpose(t, q, base + "_transposed");
  } else if (widened != perm) {
    t = ctx.reshape(t, to_tflite_order(expanded, perm), base + "_relaid");
  }
  return t;
}

// Emits `code` over two broadcasting operands into ONNX value `output` (or, when `output` is
// empty, a new intermediate returned with its layout in `out_perm`).
int emit_binary(LoweringContext& ctx, const Node& node, BuiltinOperator code, const Operand& a, const Operand& b, const std::string& output,
                tflite::ActivationFunctionType activation = tflite::ActivationFunctionType::NONE, Perm* out_perm = nullptr,
                Shape* out_shape = nullptr) {
  Shape shape;
  try {
    shape = broadcast_shapes(operand_shape(ctx, a), operand_shape(ctx, b));
  } catch (const std::invalid_argument& e) {
    malformed(node, e.what());
  }
  // Work in the layout of the full-rank activation operand, so it needs no conversion.
  Perm perm = identity_perm(shape.size());
  for (const Operand* o : {&a, &b})
    if (!is_constant_operand(ctx, *o) && ctx.rank_of(o->name) == shape.size()) {
      perm = ctx.layout_of(o->name);
      break;
    }
  const int ta = operand_tensor(ctx, a, shape.size(), perm, node.name + "_lhs");
  const int tb = operand_tensor(ctx, b, shape.size(), perm, node.name + "_rhs");
  const int result = output.empty() ? ctx.intermediate(node.name + "_" + std::string(operator_name(code)), to_tflite_order(shape, perm))
                                    : ctx.define(output, shape, perm);
  TflModel& m = ctx.model();
  switch (code) {
    case BuiltinOperator::ADD: {
      tflite::AddOptionsT o;
      o.fused_activation_function = activation;
      m.add_operator(code, {ta, tb}, {result}, std::move(o));
      break;
    }
    case BuiltinOperator::SUB: {
      tflite::SubOptionsT o;
      o.fused_activation_function = activation;
      m.add_operator(code, {ta, tb}, {result}, std::move(o));
      break;
    }
    case BuiltinOperator::MUL: {
      tflite::MulOptionsT o;
      o.fused_activation_function = activation;
      m.add_operator(code, {ta, tb}, {result}, std::move(o));
      break;
    }
    case BuiltinOperator::DIV: {
      tflite::DivOptionsT o;
      o.fused_activation_function = activation;
      m.add_operator(code, {ta, tb}, {result}, std::move(o));
      break;
    }
    case BuiltinOperator::MAXIMUM:
    case BuiltinOperator::MINIMUM:
      m.add_operator(code, {ta, tb}, {result}, tflite::MaximumMinimumOptionsT{});
      break;
    default:
      throw Error(ErrorCode::kInternal, "emit_binary: not a binary operator");
  }
  if (out_perm) *out_perm = perm;
  if (out_shape) *out_shape = shape;
  return result;
}

Operand value(const std::string& name) { return Operand{name, std::nullopt}; }
Operand scalar(float v) { return Operand{"", HostTensor::scalar(v)}; }

void lower_binary(LoweringContext& ctx, const Node& node, BuiltinOperator code) {
  Attributes attributes(node);
  attributes.check_all_read();
  if (node.inputs.size() != 2) unsupported(node, "needs exactly two inputs, it has " + std::to_string(node.inputs.size()));
  Operand a = value(node.inputs[0]), b = value(node.inputs[1]);
  // Division by a constant is multiplication by its reciprocal, which every backend (and int8)
  // handles better than DIV.
  if (code == BuiltinOperator::DIV && ctx.is_constant(b.name) && ctx.constant(b.name).is_float()) {
    HostTensor reciprocal = ctx.constant(b.name);
    for (float& v : reciprocal.floats) v = 1.0f / v;
    b = Operand{"", std::move(reciprocal)};
    code = BuiltinOperator::MUL;
  }
  emit_binary(ctx, node, code, a, b, node.outputs.at(0));
}

void lower_pow(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  attributes.check_all_read();
  const HostTensor& exponent = require_constant(ctx, node, 1, "exponent");
  if (exponent.size() != 1) unsupported(node, "only a scalar constant exponent is supported");
  const double e = exponent.as_double(0);
  const std::string& x = node.inputs[0];
  if (e == 2.0) {
    emit_binary(ctx, node, BuiltinOperator::MUL, value(x), value(x), node.outputs.at(0));
  } else if (e == 1.0) {
    ctx.alias(node.outputs.at(0), ctx.tensor_as_is(x), ctx.layout_of(x), ctx.shape_of(x));
  } else if (e == 0.5) {
    const int out = ctx.define(node.outputs.at(0), ctx.shape_of(x), ctx.layout_of(x));
    ctx.model().add_operator(BuiltinOperator::SQRT, {ctx.tensor_as_is(x)}, {out});
  } else {
    unsupported(node, "exponent " + std::to_string(e) + " is not supported (only 0.5, 1 and 2)");
  }
}

// One-input, one-output operators that keep the layout.
void lower_unary(LoweringContext& ctx, const Node& node, BuiltinOperator code) {
  Attributes attributes(node);
  float alpha = 0.0f;
  if (code == BuiltinOperator::LEAKY_RELU) alpha = attributes.get_float("alpha", 0.01f);
  attributes.check_all_read();
  const std::string& x = node.inputs.at(0);
  const int input = ctx.tensor_as_is(x);
  const int out = ctx.define(node.outputs.at(0), ctx.shape_of(x), ctx.layout_of(x));
  if (code == BuiltinOperator::LEAKY_RELU) {
    tflite::LeakyReluOptionsT o;
    o.alpha = alpha;
    ctx.model().add_operator(code, {input}, {out}, std::move(o));
  } else if (code == BuiltinOperator::HARD_SWISH) {
    ctx.model().add_operator(code, {input}, {out}, tflite::HardSwishOptionsT{});
  } else if (code == BuiltinOperator::EXP) {
    ctx.model().add_operator(code, {input}, {out}, tflite::ExpOptionsT{});
  } else {
    ctx.model().add_operator(code, {input}, {out});
  }
}

// Gelu: ONNX's (opset 20) and what graph_passes.cpp recognizes in the Div/Erf/Add/Mul/Mul form
// torch.onnx writes for nn.GELU at older opsets. TFLite 2.9's GELU computes the exact erf form
// (approximate = false) or the tanh approximation.
void lower_gelu(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  const std::string approximate = attributes.get_string("approximate", "none");
  attributes.check_all_read();
  if (approximate != "none" && approximate != "tanh") malformed(node, "approximate must be 'none' or 'tanh', not '" + approximate + "'");
  const std::string& x = node.inputs.at(0);
  const int input = ctx.tensor_as_is(x);
  const int out = ctx.define(node.outputs.at(0), ctx.shape_of(x), ctx.layout_of(x));
  tflite::GeluOptionsT o;
  o.approximate = approximate == "tanh";
  ctx.model().add_operator(BuiltinOperator::GELU, {input}, {out}, std::move(o));
}

void lower_pass_through(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  if (node.op_type == "Dropout") {
    attributes.get_int("seed", 0);  // randomness does not exist at inference
    if (node.has_input(2)) {
      const HostTensor& training = require_constant(ctx, node, 2, "training_mode");
      if (training.size() == 1 && training.as_int(0) != 0) unsupported(node, "training_mode is true");
    }
    if (node.outputs.size() > 1 && !node.outputs[1].empty() && !ctx.graph().consumers(node.outputs[1]).empty())
      unsupported(node, "the mask output is used");
  }
  attributes.check_all_read();
  const std::string& x = node.inputs.at(0);
  if (ctx.is_constant(x)) unsupported(node, "passes a constant through (constant folding should have removed it)");
  ctx.alias(node.outputs.at(0), ctx.tensor_as_is(x), ctx.layout_of(x), ctx.shape_of(x));
}

float clip_bound(LoweringContext& ctx, const Node& node, std::size_t input, float fallback, const char* what) {
  if (!node.has_input(input)) return fallback;
  const HostTensor& t = require_constant(ctx, node, input, what);
  if (t.size() != 1) malformed(node, std::string(what) + " must be a scalar");
  return static_cast<float>(t.as_double(0));
}

void lower_clip(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  attributes.check_all_read();  // opset >= 11: bounds are inputs
  const float inf = std::numeric_limits<float>::infinity();
  const float lo = clip_bound(ctx, node, 1, -inf, "min");
  const float hi = clip_bound(ctx, node, 2, inf, "max");
  const std::string& x = node.inputs.at(0);
  const std::string& out = node.outputs.at(0);
  TflModel& m = ctx.model();
  std::optional<BuiltinOperator> relu;
  if (lo == 0.0f && hi == 6.0f) relu = BuiltinOperator::RELU6;
  if (lo == 0.0f && hi == inf) relu = BuiltinOperator::RELU;
  if (lo == -1.0f && hi == 1.0f) relu = BuiltinOperator::RELU_N1_TO_1;
  if (relu) {
    const int input = ctx.tensor_as_is(x);
    m.add_operator(*relu, {input}, {ctx.define(out, ctx.shape_of(x), ctx.layout_of(x))});
    return;
  }
  if (lo == -inf && hi == inf) {
    ctx.alias(out, ctx.tensor_as_is(x), ctx.layout_of(x), ctx.shape_of(x));
    return;
  }
  if (lo != -inf && hi != inf) {
    Perm perm;
    Shape shape;
    const int lower =
        emit_binary(ctx, node, BuiltinOperator::MAXIMUM, value(x), scalar(lo), "", tflite::ActivationFunctionType::NONE, &perm, &shape);
    const int upper_bound = ctx.float_constant(node.name + "_max", Shape(shape.size(), 1), std::vector<float>{hi});
    m.add_operator(BuiltinOperator::MINIMUM, {lower, upper_bound}, {ctx.define(out, shape, perm)}, tflite::MaximumMinimumOptionsT{});
  } else if (lo != -inf) {
    emit_binary(ctx, node, BuiltinOperator::MAXIMUM, value(x), scalar(lo), out);
  } else {
    emit_binary(ctx, node, BuiltinOperator::MINIMUM, value(x), scalar(hi), out);
  }
}

// y = clamp(alpha * x + beta, 0, 1), computed as relu6(6 alpha x + 6 beta) / 6 so that the
// clamp is a fused activation (and torch's hardsigmoid, alpha = 1/6, needs no first MUL).
void lower_hard_sigmoid(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  const float alpha = attributes.get_float("alpha", 0.2f);
  const float beta = attributes.get_float("beta", 0.5f);
  attributes.check_all_read();
  const std::string& x = node.inputs.at(0);
  const Shape shape = ctx.shape_of(x);
  const Perm perm = ctx.layout_of(x);
  TflModel& m = ctx.model();
  const Shape tfl = to_tflite_order(shape, perm);
  const Shape ones(shape.size(), 1);

  int scaled = ctx.tensor_as_is(x);
  const float gain = 6.0f * alpha;
  if (std::fabs(gain - 1.0f) > 1e-7f) {
    const int t = ctx.intermediate(node.name + "_scaled", tfl);
    m.add_operator(BuiltinOperator::MUL, {scaled, ctx.float_constant(node.name + "_gain", ones, std::vector<float>{gain})}, {t},
                   tflite::MulOptionsT{});
    scaled = t;
  }
  const int clamped = ctx.intermediate(node.name + "_relu6", tfl);
  tflite::AddOptionsT add;
  add.fused_activation_function = tflite::ActivationFunctionType::RELU6;
  m.add_operator(BuiltinOperator::ADD, {scaled, ctx.float_constant(node.name + "_offset", ones, std::vector<float>{6.0f * beta})},
                 {clamped}, std::move(add));
  const int out = ctx.define(node.outputs.at(0), shape, perm);
  m.add_operator(BuiltinOperator::MUL, {clamped, ctx.float_constant(node.name + "_sixth", ones, std::vector<float>{1.0f / 6.0f})}, {out},
                 tflite::MulOptionsT{});
}

void lower_batch_norm(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  const float epsilon = attributes.get_float("epsilon", 1e-5f);
  attributes.get_float("momentum", 0.9f);  // only used in training
  if (attributes.get_int("training_mode", 0) != 0) unsupported(node, "training_mode is set");
  attributes.check_all_read();
  if (node.outputs.size() > 1)
    for (std::size_t i = 1; i < node.outputs.size(); ++i)
      if (!node.outputs[i].empty() && !ctx.graph().consumers(node.outputs[i]).empty()) unsupported(node, "training outputs are used");
  const std::string& x = node.inputs.at(0);
  const Shape shape = ctx.shape_of(x);
  if (shape.size() < 2) malformed(node, "input needs a channel dimension");
  const std::vector<float> scale = require_constant(ctx, node, 1, "scale").to_floats();
  const std::vector<float> bias = require_constant(ctx, node, 2, "B").to_floats();
  const std::vector<float> mean = require_constant(ctx, node, 3, "mean").to_floats();
  const std::vector<float> var = require_constant(ctx, node, 4, "var").to_floats();
  const auto channels = static_cast<std::size_t>(shape[1]);
  if (scale.size() != channels || bias.size() != channels || mean.size() != channels || var.size() != channels)
    malformed(node, "parameters do not have one value per channel");
  std::vector<float> k(channels), b(channels);
  for (std::size_t c = 0; c < channels; ++c) {
    k[c] = scale[c] / std::sqrt(var[c] + epsilon);
    b[c] = bias[c] - mean[c] * k[c];
  }
  Shape param_shape(shape.size(), 1);
  param_shape[1] = shape[1];
  Perm perm;
  Shape out_shape;
  const int scaled = emit_binary(ctx, node, BuiltinOperator::MUL, value(x), Operand{"", HostTensor::from_floats(param_shape, k)}, "",
                                 tflite::ActivationFunctionType::NONE, &perm, &out_shape);
  HostTensor shift = transpose(HostTensor::from_floats(param_shape, b), perm);
  const int shift_tensor = ctx.float_constant(node.name + "_shift", shift.shape, shift.floats);
  tflite::AddOptionsT add;
  ctx.model().add_operator(BuiltinOperator::ADD, {scaled, shift_tensor}, {ctx.define(node.outputs.at(0), out_shape, perm)}, std::move(add));
}

}  // namespace

void register_elementwise_lowerings(LoweringTable& table) {
  table["Add"] = [](LoweringContext& c, const Node& n) { lower_binary(c, n, BuiltinOperator::ADD); };
  table["Sub"] = [](LoweringContext& c, const Node& n) { lower_binary(c, n, BuiltinOperator::SUB); };
  table["Mul"] = [](LoweringContext& c, const Node& n) { lower_binary(c, n, BuiltinOperator::MUL); };
  table["Div"] = [](LoweringContext& c, const Node& n) { lower_binary(c, n, BuiltinOperator::DIV); };
  table["Max"] = [](LoweringContext& c, const Node& n) { lower_binary(c, n, BuiltinOperator::MAXIMUM); };
  table["Min"] = [](LoweringContext& c, const Node& n) { lower_binary(c, n, BuiltinOperator::MINIMUM); };
  table["Pow"] = lower_pow;
  table["Relu"] = [](LoweringContext& c, const Node& n) { lower_unary(c, n, BuiltinOperator::RELU); };
  table["Sigmoid"] = [](LoweringContext& c, const Node& n) { lower_unary(c, n, BuiltinOperator::LOGISTIC); };
  table["Tanh"] = [](LoweringContext& c, const Node& n) { lower_unary(c, n, BuiltinOperator::TANH); };
  table["HardSwish"] = [](LoweringContext& c, const Node& n) { lower_unary(c, n, BuiltinOperator::HARD_SWISH); };
  table["LeakyRelu"] = [](LoweringContext& c, const Node& n) { lower_unary(c, n, BuiltinOperator::LEAKY_RELU); };
  table["Exp"] = [](LoweringContext& c, const Node& n) { lower_unary(c, n, BuiltinOperator::EXP); };
  table["Sqrt"] = [](LoweringContext& c, const Node& n) { lower_unary(c, n, BuiltinOperator::SQRT); };
  table["Gelu"] = lower_gelu;
  table["Clip"] = lower_clip;
  table["HardSigmoid"] = lower_hard_sigmoid;
  table["Identity"] = lower_pass_through;
  table["Dropout"] = lower_pass_through;
  table["BatchNormalization"] = lower_batch_norm;
}

}  // namespace dermcds::converter
