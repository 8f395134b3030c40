// Gemm and MatMul. A constant right-hand side becomes FULLY_CONNECTED (weights [N, K], alpha
// folded in, a bias when C broadcasts along N); anything else becomes BATCH_MATMUL.
#include <algorithm>

#include "attributes.hpp"
#include "dermcds/error.hpp"
#include "lowering.hpp"

namespace dermcds::converter {

namespace {

// out = input[M,K] x weights[N,K]^T + bias[N]
int fully_connected(LoweringContext& ctx, const std::string& base, int input, const HostTensor& weights_nk, std::span<const float> bias,
                    int output) {
  const std::int64_t n = weights_nk.shape[0], k = weights_nk.shape[1];
  const int w = ctx.float_constant(base + "_weights", {n, k}, weights_nk.floats);
  const int b = ctx.float_constant(base + "_bias", {n}, bias);
  ctx.model().add_operator(BuiltinOperator::FULLY_CONNECTED, {input, w, b}, {output}, tflite::FullyConnectedOptionsT{});
  return output;
}

int scale_tensor(LoweringContext& ctx, const std::string& base, int input, float factor) {
  const int c = ctx.float_constant(base + "_factor", {}, std::vector<float>{factor});
  const int out = ctx.intermediate(base + "_scaled", ctx.tflite_shape(input));
  ctx.model().add_operator(BuiltinOperator::MUL, {input, c}, {out}, tflite::MulOptionsT{});
  return out;
}

void lower_gemm(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  const float alpha = attributes.get_float("alpha", 1.0f);
  const float beta = attributes.get_float("beta", 1.0f);
  const bool trans_a = attributes.get_int("transA", 0) != 0;
  const bool trans_b = attributes.get_int("transB", 0) != 0;
  attributes.check_all_read();

  const std::string& a = node.inputs.at(0);
  const std::string& b = node.inputs.at(1);
  const Shape as = ctx.shape_of(a), bs = ctx.shape_of(b);
  if (as.size() != 2 || bs.size() != 2) malformed(node, "A and B must be 2-D, they are " + shape_text(as) + " and " + shape_text(bs));
  const std::int64_t m = trans_a ? as[1] : as[0], k = trans_a ? as[0] : as[1];
  const std::int64_t n = trans_b ? bs[0] : bs[1];
  if ((trans_b ? bs[1] : bs[0]) != k) malformed(node, "inner dimensions of A " + shape_text(as) + " and B " + shape_text(bs) + " differ");
  if (ctx.is_constant(a)) unsupported(node, "a constant A input is not supported");

  int input = ctx.tensor_identity(a);
  if (trans_a) input = ctx.transpose(input, {1, 0}, node.name + "_a_transposed");
  TflModel& model = ctx.model();

  // C: a bias when it broadcasts along N only, otherwise an ADD after the product.
  std::vector<float> bias(static_cast<std::size_t>(n), 0.0f);
  bool add_c_after = false;
  if (node.has_input(2)) {
    const Shape cs = ctx.shape_of(node.inputs[2]);
    try {
      if (broadcast_shapes(cs, {m, n}) != Shape{m, n}) throw std::invalid_argument("");
    } catch (const std::invalid_argument&) {
      malformed(node, "C " + shape_text(cs) + " does not broadcast to the output [" + std::to_string(m) + "," + std::to_string(n) + "]");
    }
    const bool row_vector = element_count(cs) == n && (cs.empty() || cs.back() == n || n == 1);
    if (ctx.is_constant(node.inputs[2]) && (row_vector || element_count(cs) == 1)) {
      const HostTensor c = broadcast_to(ctx.constant(node.inputs[2]), {1, n});
      for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = beta * static_cast<float>(c.as_double(static_cast<std::int64_t>(i)));
    } else if (beta != 0.0f) {
      add_c_after = true;
    }
  }

  const std::string& out_name = node.outputs.at(0);
  int product;
  if (ctx.is_constant(b)) {
    const HostTensor& w = ctx.constant(b);
    HostTensor weights = trans_b ? w : transpose(w, {1, 0});  // [N, K]
    if (!weights.is_float()) weights = HostTensor::from_floats(weights.shape, weights.to_floats());
    for (float& v : weights.floats) v *= alpha;
    product = fully_connected(ctx, node.name, input, weights, bias, ctx.intermediate(node.name + "_product", {m, n}));
  } else {
    tflite::BatchMatMulOptionsT o;
    o.adj_y = trans_b;
    product = ctx.intermediate(node.name + "_matmul", {m, n});
    model.add_operator(BuiltinOperator::BATCH_MATMUL, {input, ctx.tensor_identity(b)}, {product}, std::move(o));
    if (alpha != 1.0f) product = scale_tensor(ctx, node.name + "_alpha", product, alpha);
    if (std::any_of(bias.begin(), bias.end(), [](float v) { return v != 0.0f; })) {
      const int biased = ctx.intermediate(node.name + "_biased", {m, n});
      model.add_operator(BuiltinOperator::ADD, {product, ctx.float_constant(node.name + "_bias", {n}, bias)}, {biased},
                         tflite::AddOptionsT{});
      product = biased;
    }
  }

  if (add_c_after) {
    const std::string& c_name = node.inputs[2];
    const Shape cs = ctx.shape_of(c_name);
    int c;
    if (ctx.is_constant(c_name)) {
      std::vector<float> values = broadcast_to(ctx.constant(c_name), {m, n}).to_floats();
      for (float& v : values) v *= beta;
      c = ctx.float_constant(node.name + "_c", {m, n}, values);
    } else {
      c = ctx.tensor_identity(c_name);
      if (cs.size() < 2) c = ctx.reshape(c, {1, cs.empty() ? 1 : cs[0]}, node.name + "_c_2d");
      if (beta != 1.0f) c = scale_tensor(ctx, node.name + "_beta", c, beta);
    }
    const int sum = ctx.intermediate(node.name + "_plus_c", {m, n});
    model.add_operator(BuiltinOperator::ADD, {product, c}, {sum}, tflite::AddOptionsT{});
    product = sum;
  }
  ctx.alias(out_name, product, identity_perm(2), {m, n});
}

void lower_matmul(LoweringContext& ctx, const Node& node) {
  Attributes attributes(node);
  attributes.check_all_read();
  const std::string& a = node.inputs.at(0);
  const std::string& b = node.inputs.at(1);
  const Shape as = ctx.shape_of(a), bs = ctx.shape_of(b);
  if (ctx.is_constant(a)) unsupported(node, "a constant first input is not supported");
  if (as.empty() || bs.empty()) malformed(node, "inputs must have at least one dimension");
  const std::string& out_name = node.outputs.at(0);

  if (ctx.is_constant(b) && bs.size() == 2) {
    const std::int64_t k = bs[0], n = bs[1];
    if (as.back() != k) malformed(node, "inner dimensions of " + shape_text(as) + " and " + shape_text(bs) + " differ");
    Shape out_shape(as.begin(), as.end() - 1);
    out_shape.push_back(n);
    const std::int64_t rows = element_count(as) / k;
    HostTensor weights = transpose(ctx.constant(b), {1, 0});
    if (!weights.is_float()) weights = HostTensor::from_floats(weights.shape, weights.to_floats());
    const std::vector<float> bias(static_cast<std::size_t>(n), 0.0f);
    int input = ctx.tensor_identity(a);
    if (as.size() == 2) {
      fully_connected(ctx, node.name, input, weights, bias, ctx.define(out_name, out_shape, identity_perm(2)));
      return;
    }
    input = ctx.reshape(input, {rows, k}, node.name + "_rows");
    const int product = fully_connected(ctx, node.name, input, weights, bias, ctx.intermediate(node.name + "_product", {rows, n}));
    ctx.reshape(product, out_shape, node.name, ctx.define(out_name, out_shape, identity_perm(out_shape.size())));
    return;
  }

  if (as.size() < 2 || bs.size() < 2) unsupported(node, "1-D operands of a MatMul with a non-constant right side are not supported");
  Shape batch_a(as.begin(), as.end() - 2), batch_b(bs.begin(), bs.end() - 2);
  Shape out_shape;
  try {
    out_shape = broadcast_shapes(batch_a, batch_b);
  } catch (const std::invalid_argument& e) {
    malformed(node, e.what());
  }
  if (as.back() != bs[bs.size() - 2]) malformed(node, "inner dimensions of " + shape_text(as) + " and " + shape_text(bs) + " differ");
  out_shape.push_back(as[as.size() - 2]);
  out_shape.push_back(bs.back());
  const int out = ctx.define(out_name, out_shape, identity_perm(out_shape.size()));
  ctx.model().add_operator(BuiltinOperator::BATCH_MATMUL, {ctx.tensor_identity(a), ctx.tensor_identity(b)}, {out},
                           tflite::BatchMatMulOptionsT{});
}

}  // namespace

void register_linear_lowerings(LoweringTable& table) {
  table["Gemm"] = lower_gemm;
  table["MatMul"] = lower_matmul;
}

}  // namespace dermcds::converter
